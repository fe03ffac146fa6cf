"""Roll-up: site -> city -> region -> country, each level signed and re-derivable from the level below, each device
counted once across the whole tree; and the attacks on it, written first."""

import copy

import jsonschema
import pytest

from bench.disclosure import document as dd
from bench.disclosure.leaves import DisclosureError, Store
from bench.model import sign
from bench.report.store import dumps
from tests.disclosure import world


@pytest.fixture(scope="module")
def country(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("freedonia")
    return tmp, world.country(tmp)


def _headline(doc):
    return next(c for c in doc["capacity"] if c["category"] == "bf16/fp16")


def test_every_level_verifies_from_the_level_below(country):
    tmp, d = country
    store = Store(tmp)
    for name in ("A1", "Alpha", "North", "Freedonia"):
        assert dd.verify(world.read(d[name]), store) == [], name


def test_the_country_is_the_sum_of_its_sites_and_the_tree_adds_up(country):
    _tmp, d = country
    sites = [_headline(world.read(d[s])) for s in ("A1", "A2", "B1")]
    top = world.read(d["Freedonia"])
    assert _headline(top)["devices"] == sum(s["devices"] for s in sites) == 6 * 4
    assert _headline(top)["reported_pflops"] == pytest.approx(sum(s["reported_pflops"] for s in sites))
    assert _headline(top)["bounded_pflops"] == pytest.approx(
        _headline(top)["reported_pflops"]
    )  # trusted, fresh, unique
    regions = top["tree"]["children"]
    assert [r["name"] for r in regions] == ["North", "South"]
    assert sum(r["pflops"]["bf16/fp16"]["reported_pflops"] for r in regions) == pytest.approx(
        _headline(top)["reported_pflops"]
    )
    assert top["path"] == ["Freedonia"] and world.read(d["Alpha"])["path"] == ["Freedonia", "North", "Alpha"]
    # declared figures stay apart, never in a measured total
    assert top["declared"]["tier"] == "declared" and len(top["declared"]["sites"]) == 3
    assert top["declared"]["planned_by_date"] == [{"date": "2027-06-30", "precision": "bf16", "pflops": 150.0}]


def test_attack_a_site_listing_another_sites_devices_is_counted_once(tmp_path):
    store = Store()
    honest = world.write_site(tmp_path, "North", "Alpha", "A1", [1, 2])
    # A2's operator builds its node reports for A1's nodes: the same GPU UUIDs, re-measured and re-signed
    thief = world.write_site(tmp_path, "North", "Alpha", "A2", [1, 2, 3], tflops=710.0)
    a1 = world.site_disclosure(tmp_path, honest, store)
    a2 = world.site_disclosure(tmp_path, thief, store)
    city = world.read(world.rollup("city", "Alpha", [a1, a2], store, tmp_path / "alpha.json"))
    assert _headline(city)["devices"] == 3 * 4  # nodes 1, 2, 3 once each, not 5 nodes
    assert len(city["duplicates"]) == 2 * 4
    assert all(dup["dropped_from"] for dup in city["duplicates"])
    assert dd.verify(city, store) == []


def test_attack_a_forged_tier_in_a_capacity_report_is_refused(tmp_path):
    store = Store()
    files = world.write_site(tmp_path, "North", "Alpha", "A1", [1])
    cap = world.read(files["capacity"])
    cap["devices"][0]["tier"] = "proven"  # not a tier a capacity report gives: and signed by someone else
    cap["signature"] = sign.sign({k: x for k, x in cap.items() if k != "signature"}, world.KEYS.node)
    files["capacity"].write_text(dumps(cap))
    with pytest.raises(DisclosureError, match="not in the aggregator trust list|not one of"):
        world.site_disclosure(tmp_path, files, store)


def test_attack_a_capacity_report_edited_after_signing_is_refused(tmp_path):
    files = world.write_site(tmp_path, "North", "Alpha", "A1", [1])
    cap = world.read(files["capacity"])
    cap["devices"][0]["mamf_tflops"] *= 10
    files["capacity"].write_text(dumps(cap))
    with pytest.raises(DisclosureError, match="signature does not match"):
        world.site_disclosure(tmp_path, files, Store())


def test_without_an_aggregator_trust_list_nothing_is_more_than_reported(tmp_path):
    files = world.write_site(tmp_path, "North", "Alpha", "A1", [1])
    out = world.site_disclosure(tmp_path, files, Store(), policy=world.KEYS.policy(aggregator_ids=None))
    head = _headline(world.read(out))
    assert head["reported_pflops"] > 0 and head["bounded_pflops"] == 0


@pytest.mark.parametrize("section", ["capacity", "tree", "inventory", "declared"])
def test_attack_an_edited_and_re_signed_level_fails_re_derivation(country, section):
    tmp, d = country
    doc = copy.deepcopy(world.read(d["Freedonia"]))
    if section == "capacity":
        _headline(doc)["bounded_pflops"] *= 100
    elif section == "tree":
        doc["tree"]["children"][0]["pflops"]["bf16/fp16"]["reported_pflops"] *= 2
    elif section == "inventory":
        doc["inventory"][0]["healthy"] += 1000
    else:
        doc["declared"]["sites"][0]["open_access"]["share"] = 1.0
    doc = world.resign_doc(doc)
    findings = dd.verify(doc, Store(tmp))
    assert [f.code for f in findings] == ["disclosure-mismatch"] and section in findings[0].message


def test_attack_an_edited_level_without_re_signing_fails_its_signature(country):
    tmp, d = country
    doc = copy.deepcopy(world.read(d["Alpha"]))
    _headline(doc)["reported_pflops"] *= 2
    findings = dd.verify(doc, Store(tmp))
    assert findings and "signature" in findings[0].message


def test_a_child_from_another_city_is_refused(country):
    tmp, d = country
    store = Store(tmp)
    with pytest.raises(DisclosureError, match="can hold only that city"):
        dd.rollup("city", "Alpha", [store.add(d["A1"]), store.add(d["B1"])], store, policy=world.KEYS.policy(),
                  proof_docs=[], as_of=world.AS_OF, claims_input=[], audit_input=None)  # fmt: skip


def test_a_missing_input_is_a_finding(country, tmp_path):
    _tmp, d = country
    store = Store()
    store.add(d["Alpha"])  # the folder has the city but none of its capacity reports
    findings = dd.verify(world.read(d["Alpha"]), store)
    assert findings and "is not in the folder" in findings[0].message


def test_produced_documents_validate_against_the_published_schema(country):
    _, d = country
    validator = jsonschema.Draft202012Validator(dd.schema())
    for name in ("A1", "Alpha", "North", "Freedonia"):
        validator.validate(world.read(d[name]))
    bad = copy.deepcopy(world.read(d["A1"]))
    bad["capacity"][0]["reported_pflops"] = -1.0
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)
    bad = {**world.read(d["A1"]), "extra": 1}
    with pytest.raises(DisclosureError, match="schema"):
        dd.check(bad, "x")


def test_proofs_of_the_sites_carry_up_but_are_never_added(tmp_path):
    import datetime as dt

    from bench import challenge as chl
    from bench.report import proofs

    store = Store()
    paths = {}
    for site, nodes in (("A1", [1, 2]), ("A2", [3])):
        files = world.write_site(tmp_path, "North", "Alpha", site, nodes)
        devices = [d["device"] for d in world.read(files["capacity"])["devices"]]
        ch = chl.issue(world.KEYS.auditor, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5),
                       nodes=None, now=world.NOW)  # fmt: skip
        proof = tmp_path / f"{site}.proof.json"
        proof.write_text(dumps(proofs.document(ch, [world.proven(d, 600.0) for d in devices],
                                               world.KEYS.auditor)))  # fmt: skip
        paths[site] = world.site_disclosure(tmp_path, files, store, proofs=[proof])
    assert _headline(world.read(paths["A1"]))["proven_pflops"] == pytest.approx(8 * 0.6)
    city = world.read(world.rollup("city", "Alpha", [paths["A1"], paths["A2"]], store, tmp_path / "alpha.json"))
    assert len(city["inputs"]["proofs"]) == 2
    assert _headline(city)["proven_pflops"] == pytest.approx(8 * 0.6)  # the larger proof, not 12 x 0.6
    assert dd.verify(city, Store(tmp_path), auditor=world.KEYS.kid("auditor")) == []
