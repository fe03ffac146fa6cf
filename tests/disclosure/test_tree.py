"""`bench disclose tree`: a whole country from a folder of site folders in one command, each level the document the
per-level verbs (`disclose site`, `disclose rollup`) build, and verified from the same folder."""

import json

import pytest

from bench.disclosure import tree
from bench.model import sign
from bench.model.reports import CAPACITY_KIND
from bench.report import store
from tests.disclosure import world
from tests.disclosure.test_cli import AS_OF, K, _pem, _run

SITES = (("North", "Alpha", "A1", [1, 2]), ("North", "Alpha", "A2", [3]), ("South", "Beta", "B1", [4, 5, 6]))


@pytest.fixture(scope="module")
def country(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tree")
    for region, city, site, nodes in SITES:
        world.write_site(tmp / "in", region, city, site, nodes)
    for name in ("aggregator", "operator", "node"):
        (tmp / f"{name}.ids").write_text(K.kid(name) + "\n")
    policy = ["--aggregator-keys", tmp / "aggregator.ids", "--operator-keys", tmp / "operator.ids",
              "--trusted-keys", tmp / "node.ids", "--auditor-key", _pem(tmp / "auditor.pem", K.auditor),
              "--key", _pem(tmp / "discloser.pem", K.discloser), *AS_OF]  # fmt: skip
    result = _run("disclose", "tree", tmp / "in", *policy)
    assert result.exit_code == 0, result.output
    return tmp, policy, result.output


def _doc(path):
    data = json.loads(path.read_text())
    return {k: x for k, x in data.items() if k not in ("created_utc", "signature")}


def test_every_level_is_what_the_per_level_verbs_build(country):
    tmp, policy, output = country
    out = tmp / "in" / "disclosure" / "Freedonia"
    assert "1 country, 2 region, 2 city, 3 site" in output and f"bench verify {out}/disclosure.json" in output
    by_hand = tmp / "by-hand"
    for region, city, site, _ in SITES:
        base = tmp / "in" / region / city / site
        result = _run("disclose", "site", "--declaration", base / "declaration.toml", "--capacity",
                      f"a={base / 'capacity.json'}", "--reports", base / "nodes", *policy, "-o", by_hand / site)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert _doc(by_hand / site / "disclosure.json") == _doc(out / region / city / site / "disclosure.json")
    # the roll-ups cite their children by the bytes' digest (signatures differ), so each is built on the tree's own
    for level, name, children in (("city", "Alpha", ["North/Alpha/A1", "North/Alpha/A2"]), ("city", "Beta", ["South/Beta/B1"]),
                                  ("region", "North", ["North/Alpha"]), ("region", "South", ["South/Beta"]),
                                  ("country", "Freedonia", ["North", "South"])):  # fmt: skip
        mine = out.joinpath(*children[0].split("/")).parents[0] / "disclosure.json"
        result = _run("disclose", "rollup", "--level", level, "--name", name, "--from", tmp / "in",
                      *[out / c / "disclosure.json" for c in children], *policy, "-o", by_hand / name)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert _doc(by_hand / name / "disclosure.json") == _doc(mine), (level, name)
    country_doc = _doc(out / "disclosure.json")
    assert country_doc["inventory"][0]["devices"] == 6 * 4 and len(country_doc["tree"]) > 0


def test_the_tree_verifies_from_its_folder(country):
    tmp, _, _ = country
    national = tmp / "in" / "disclosure" / "Freedonia" / "disclosure.json"
    result = _run("verify", national, "--from", tmp / "in", "--auditor-key", tmp / "auditor.pem",
                  "--trusted-keys", tmp / "node.ids")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (national.parent / "disclosure.html").exists() and (
        national.parent / "North/Alpha/A1/disclosure.md"
    ).exists()


def test_a_site_folder_without_its_capacity_report_is_refused(tmp_path, country):
    _, policy, _ = country
    world.write_site(tmp_path, "North", "Alpha", "A9", [7])
    (tmp_path / "North/Alpha/A9/capacity.json").rename(tmp_path / "North/Alpha/A9/capacity-b.json")
    result = _run("disclose", "tree", tmp_path, *policy)
    assert result.exit_code == 2 and "names none of a" in result.output


def test_output_outside_the_folder_is_a_usage_error(tmp_path, country):
    tmp, policy, _ = country
    result = _run("disclose", "tree", tmp / "in", *policy, "-o", tmp_path / "elsewhere")
    assert result.exit_code == 2 and "not inside" in result.output


@pytest.mark.parametrize(("name", "why"), [("notes.json", "neither a capacity report nor a node report"),
                                           ("capacity-a.json", "named as a capacity report")])  # fmt: skip
def test_a_file_that_is_no_input_is_refused_by_name(tmp_path, country, name, why):
    _, policy, _ = country
    world.write_site(tmp_path, "North", "Alpha", "A9", [7])
    (tmp_path / "North/Alpha/A9" / name).write_text('{"kind": "something else"}')
    result = _run("disclose", "tree", tmp_path, *policy)
    assert result.exit_code == 2 and why in result.output and name in result.output, result.output


def test_a_site_of_node_reports_alone_is_aggregated_on_the_way_with_the_aggregators_key(tmp_path, country,
                                                                                       monkeypatch):  # fmt: skip
    tmp, policy, _ = country
    for region, city, site, nodes in SITES:
        world.write_site(tmp_path / "in", region, city, site, nodes)
    (tmp_path / "in/North/Alpha/A1/capacity.json").unlink()
    result = _run("disclose", "tree", tmp_path / "in", *policy)
    assert result.exit_code == 2 and "no capacity report for cluster" in result.output
    aggregator = _pem(tmp_path / "aggregator.pem", K.aggregator)
    signed = []

    def spy(data, key):
        signed.append(data.get("kind"))
        return store.signed_dumps(data, key)

    monkeypatch.setattr(tree, "signed_dumps", spy)
    result = _run("disclose", "tree", tmp_path / "in", *policy, "--aggregate-key", aggregator)
    assert result.exit_code == 0, result.output
    assert signed == [CAPACITY_KIND]  # signed and written in one walk, as bench aggregate does
    out = tmp_path / "in/disclosure/Freedonia"
    written = (out / "North/Alpha/A1/capacity.json").read_text()
    made = json.loads(written)
    assert made["signature"]["key_id"] == K.kid("aggregator")
    # the bytes sign.sign and dumps write (Ed25519 signs deterministically)
    unsigned = {k: x for k, x in made.items() if k != "signature"}
    assert written == store.dumps({**unsigned, "signature": sign.sign(unsigned, K.aggregator)})
    # the same figures as the tree built on the aggregator's own capacity report
    mine, theirs = _doc(out / "disclosure.json"), _doc(tmp / "in/disclosure/Freedonia/disclosure.json")
    for section in ("capacity", "inventory", "readiness_by_class", "accelerator_memory_bytes"):
        assert mine[section] == theirs[section], section
    result = _run("verify", out / "disclosure.json", "--from", tmp_path / "in")
    assert result.exit_code == 0, result.output
