"""The claims ledger: claims parsed strictly, ambiguous ones shown at every precision, gaps and inflations named."""

import pytest

from bench.disclosure import claims as cl

CAPACITY = [
    {"category": "bf16/fp16", "reported_pflops": 100.0, "bounded_pflops": 90.0, "proven_pflops": 40.0},
    {"category": "fp8", "reported_pflops": 190.0, "bounded_pflops": 180.0, "proven_pflops": 0.0},
    {"category": "fp32", "reported_pflops": 8.0, "bounded_pflops": 8.0, "proven_pflops": 0.0},
]
PEAK = {"bf16/fp16": 150.0, "fp8": 300.0, "fp32": 10.0}
DECLARED = [{"planned": [{"date": "2025-06-30", "pflops": 900.0, "precision": None}]}]


def _one(text, declared=()):
    (entry,) = cl.ledger([{"text": text, "source": "press", "date": "2024-01-01"}], CAPACITY, PEAK, list(declared))
    return entry


@pytest.mark.parametrize(
    "text, pflops, category, by",
    [
        ("788 EFLOPS", 788_000.0, None, None),
        ("100 EFLOPS by 2025", 100_000.0, None, "2025-12-31"),
        ("30 PFLOPS bf16", 30.0, "bf16/fp16", None),
        ("2.5 pflops FP8 by 2026-02", 2.5, "fp8", "2026-02-28"),
        ("500 TFLOPS int8 by 2027-01-15", 0.5, "int8", "2027-01-15"),
    ],
)
def test_claims_parse(text, pflops, category, by):
    c = cl.parse(text)
    assert c["pflops"] == pytest.approx(pflops) and c["category"] == category and c["by"] == by


@pytest.mark.parametrize(
    "text",
    ["", "lots", "1e3 EFLOPS", "-5 PFLOPS", "0 PFLOPS", "5 PFLOPS fp99", "__import__('os').system('x')", "5 MIPS",
     "100 EFLOPS by 2025-13", "100 EFLOPS by tomorrow", "9" * 40 + " PFLOPS"],
)  # fmt: skip
def test_attack_claims_are_parsed_strictly_never_evaluated(text):
    with pytest.raises(cl.ClaimError):
        cl.parse(text)


def test_a_claim_without_a_precision_is_ambiguous_and_shown_at_each_precision():
    c = _one("788 EFLOPS")
    assert c["ambiguous"] and "ambiguous" in c["verdict"]
    assert [x["category"] for x in c["comparisons"]] == ["fp64", "fp32", "tf32", "bf16/fp16", "fp8", "int8"]
    bf16 = next(x for x in c["comparisons"] if x["category"] == "bf16/fp16")
    assert bf16["gap_to_proven_pflops"] == pytest.approx(788_000.0 - 40.0) and not bf16["supported"]


def test_attack_an_inflated_claim_names_the_inflations_that_explain_it():
    c = _one("180 PFLOPS bf16")  # measured 100 dense bf16: sparse (200), fp8 (190) and peak sparse (300) reach it
    explained = {i["inflation"] for i in c["comparisons"][0]["inflations"] if i["explains"]}
    assert "sparse figures count 2x the dense ones" in explained
    assert "fp8 figures instead of bf16/fp16" in explained
    assert "vendor peak instead of measured" not in explained  # 150 < 180
    assert not c["comparisons"][0]["supported"] and c["verdict"] == "unproven"


def test_planned_capacity_is_compared_as_declared_by_the_claims_date():
    c = _one("950 PFLOPS bf16 by 2025", DECLARED)
    x = c["comparisons"][0]
    assert x["declared_planned_pflops"] == 900.0
    assert any(i["explains"] and i["inflation"].startswith("planned") for i in x["inflations"])
    assert _one("950 PFLOPS bf16 by 2024", DECLARED)["comparisons"][0]["declared_planned_pflops"] == 0.0


def test_only_the_proven_tier_supports_a_claim():
    assert _one("40 PFLOPS bf16")["comparisons"][0]["supported"]
    assert not _one("41 PFLOPS bf16")["comparisons"][0]["supported"]  # reported 100, bounded 90: not enough


def test_claim_files_are_strict(tmp_path):
    good = '[[claim]]\ntext = "788 EFLOPS"\nsource = "ministry"\ndate = "2024-04"\n'
    assert cl.read_entries(good, "c.toml") == [{"text": "788 EFLOPS", "source": "ministry", "date": "2024-04"}]
    for bad in [
        '[[claim]]\ntext = "788 EFLOPS"\nextra = 1\n',
        'claim = "788"\n',
        '[[claim]]\ntext = "lots"\n',
        "x = 1",
    ]:
        with pytest.raises(cl.ClaimError):
            cl.read_entries(bad, "c.toml")
