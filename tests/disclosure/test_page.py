"""Issue 26 item 4: the page a reader trusts at a glance. Figures in units people read (never an exponent), CPUs kept
apart from accelerators, every figure short of bounded or proven with its reason, and the signer's key id with the
exact `bench verify` command, which passes when run as the page says."""

import json
import re
import shlex

import pytest

from bench.disclosure import render
from tests.disclosure import world
from tests.disclosure.test_cli import AS_OF, K, _pem, _run
from tests.disclosure.test_verifier import _pub

#: Python's exponent notation ("4.907e-05", "1e+06"): a hex key id never has the sign.
EXPONENT = re.compile(r"\d\.?\d*[eE][+-]\d")


@pytest.mark.parametrize(("pflops", "text"), [(4.907e-05, "49.07 GFLOPS"), (563820.0, "563.8 EFLOPS"),
                                              (8.41782, "8.418 PFLOPS"), (0.4292, "429.2 TFLOPS"), (0.0, "0 PFLOPS"),
                                              (1234567.0, "1,235 EFLOPS"), (1e-9, "0.001 GFLOPS")])  # fmt: skip
def test_flops_are_written_in_the_unit_that_keeps_them_readable(pflops, text):
    assert render.flops(pflops) == text


def test_no_magnitude_is_ever_written_with_an_exponent():
    for exp in range(-12, 13):
        for mantissa in (1.0, 4.907, 9.9996):
            x = mantissa * 10.0**exp
            assert not EXPONENT.search(render.flops(x)) and not EXPONENT.search(render._n(x)), x


@pytest.fixture(scope="module")
def country(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    world.write_site(tmp / "in", "North", "Alpha", "A1", [1, 2])
    world.write_cpu_site(tmp / "in", "South", "Beta", "C1", [10, 11], host_model="Intel Xeon Platinum 8480+")
    files = {"nodes.keys": "node", "aggregators.keys": "aggregator", "operators.keys": "operator"}
    for file, who in files.items():
        (tmp / file).write_text(K.kid(who) + "\n")
    auditor = _pem(tmp / "auditor.pem", K.auditor)
    result = _run("disclose", "tree", tmp / "in", "--trusted-keys", tmp / "nodes.keys", "--aggregator-keys",
                  tmp / "aggregators.keys", "--operator-keys", tmp / "operators.keys", "--auditor-key", auditor,
                  "--key", _pem(tmp / "discloser.pem", K.discloser), *AS_OF)  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp, tmp / "in/disclosure/Freedonia"


def _pages(folder):
    return (folder / "disclosure.md").read_text(), (folder / "disclosure.html").read_text()


def test_pages_hold_no_exponent_and_say_why_a_figure_is_not_bounded(country):
    _, out = country
    for folder in (out, out / "South/Beta/C1", out / "North/Alpha/A1"):
        md, page = _pages(folder)
        assert not EXPONENT.search(md) and not EXPONENT.search(page), folder
    doc = json.loads((out / "South/Beta/C1/disclosure.json").read_text())
    fp32 = next(c for c in doc["capacity"] if c["category"] == "fp32")
    capacity = json.loads((country[0] / "in/South/Beta/C1/capacity.json").read_text())
    # the reason is the aggregator's, row by row, as `bench verify` gives it for each figure
    whys = {r["why"] for r in capacity["devices"] if r["tier"] != "bounded"}
    assert fp32["bounded_pflops"] == 0 and {r["why"] for r in fp32["why_not_bounded"]} == whys and whys
    assert fp32["why_not_proven"]
    md, page = _pages(out / "South/Beta/C1")
    for why in whys:
        assert f"2 devices: {why}" in md and f"not bounded: 2 devices: {why}" in page
    assert "429.2 GFLOPS" in md and "PFLOPS" in page


def test_cpus_are_kept_apart_from_accelerators(country):
    _, out = country
    md, page = _pages(out / "South/Beta/C1")
    assert "Accelerators by model" not in md + page and "Accelerator memory" not in md + page
    assert "## CPUs by model" in md and "<h2>CPUs by model</h2>" in page
    md, page = _pages(out)  # the country holds both, in their own tables
    accelerators = md.split("## Accelerators by model")[1].split("## CPUs by model")[0]
    assert "NVIDIA H100" in accelerators and "Xeon" not in accelerators and "Accelerator memory" in accelerators
    assert "Xeon" in md.split("## CPUs by model")[1].split("## Readiness")[0]


def test_the_page_names_its_signer_and_a_verify_command_that_passes_as_written(country):
    tmp, out = country
    doc = json.loads((out / "disclosure.json").read_text())
    md, page = _pages(out)
    command = render.verify_command(doc)
    assert command in md and command in page and doc["signature"]["key_id"] in md + page
    assert f"{render.DOCS}" in md and f"href='{render.DOCS}'" in page
    _pub(tmp / "auditor.pub", K.auditor)
    args = shlex.split(command)[1:]
    args = [str(out / "disclosure.json") if a == "disclosure.json" else str(tmp / "in") if a == "DIR"
            else str(tmp / a) if a.endswith((".keys", ".pub")) else a for a in args]  # fmt: skip
    result = _run(*args)
    assert result.exit_code == 0, result.output
