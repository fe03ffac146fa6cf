"""Issue 26 item 3: every verdict of `bench verify` on a disclosure is pass or fail. Not re-deriving it (no --from)
fails unless --signature-only asks for that check by name; the verifier's own aggregator and operator key lists hold
the document's signatures; a CPU node class on the page must be a CPU the inventory counts."""

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.disclosure import document as dd
from bench.disclosure.leaves import DisclosureError, Store
from tests.disclosure import world

K = world.KEYS


def _verify(*args):
    return CliRunner().invoke(main, ["verify", *map(str, args)])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decisive")
    files = world.write_site(tmp / "in", "North", "Alpha", "A1", [1, 2])
    out = world.site_disclosure(tmp, files, Store())
    for name in ("aggregator", "operator"):
        (tmp / f"{name}.ids").write_text(K.kid(name) + "\n")
        (tmp / f"other-{name}.ids").write_text(world.Keys().kid(name) + "\n")
    return tmp, out


def test_without_from_a_disclosure_fails_unless_signature_only_is_asked_for(site):
    tmp, out = site
    result = _verify(out)
    assert result.exit_code == 1 and "not-recomputed" in result.output and "--signature-only" in result.output
    assert "NOT RECOMPUTED" not in result.output
    result = _verify(out, "--signature-only")
    assert result.exit_code == 0 and "pass (signature only)" in result.output, result.output
    assert _verify(out, "--from", tmp / "in").exit_code == 0


def test_a_capacity_report_without_its_node_reports_fails_unless_signature_only(site):
    tmp, _ = site
    capacity = tmp / "in/North/Alpha/A1/capacity.json"
    assert _verify(capacity).exit_code == 1
    assert _verify(capacity, "--signature-only").exit_code == 0
    assert _verify(capacity, "--reports", tmp / "in/North/Alpha/A1/nodes").exit_code == 0


@pytest.mark.parametrize("what", ["aggregator", "operator"])
def test_the_verifiers_own_aggregator_and_operator_keys_hold_the_document(site, what):
    tmp, out = site
    option = f"--{what}-keys"
    result = _verify(out, "--from", tmp / "in", option, tmp / f"{what}.ids")
    assert result.exit_code == 0, result.output
    result = _verify(out, "--from", tmp / "in", option, tmp / f"other-{what}.ids")
    assert result.exit_code == 1 and f"untrusted-{what}" in result.output, result.output
    # the signatures are the verifier's business even when nothing is re-derived
    result = _verify(out, "--signature-only", option, tmp / f"other-{what}.ids")
    assert result.exit_code == 1 and f"untrusted-{what}" in result.output


def test_a_disclosure_with_no_key_list_fails_a_verifier_that_names_one(tmp_path):
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1])
    out = world.site_disclosure(tmp_path, files, Store(), policy=K.policy(operator_ids=None))
    (tmp_path / "operator.ids").write_text(K.kid("operator") + "\n")
    result = _verify(out, "--from", tmp_path / "in", "--operator-keys", tmp_path / "operator.ids", "--json")
    assert result.exit_code == 1 and "names no operator keys" in result.output, result.output


def test_a_cpu_node_class_must_be_a_cpu_the_inventory_counts(tmp_path):
    honest = world.write_cpu_site(
        tmp_path / "ok", "North", "Alpha", "C1", [1, 2], host_model="Intel Xeon Platinum 8480+"
    )
    doc = world.read(world.site_disclosure(tmp_path, honest, Store(), node_reports=True))
    assert [c["node_class"] for c in doc["readiness_by_class"]["classes"]] == ["CPU Intel Xeon Platinum 8480+"]
    unknown = world.write_cpu_site(tmp_path / "unknown", "North", "Alpha", "C1", [3], host_model=None)
    doc = world.read(world.site_disclosure(tmp_path, unknown, Store(), node_reports=True))
    assert [c["node_class"] for c in doc["readiness_by_class"]["classes"]] == ["CPU Intel Xeon Platinum 8480+"]
    # the host says one CPU, the device measured (and counted) is another: the class would name a CPU nobody measured
    lying = world.write_cpu_site(tmp_path / "lying", "North", "Alpha", "C1", [4], host_model="AMD EPYC 9965")
    with pytest.raises(DisclosureError, match="names no CPU model the inventory counts"):
        world.site_disclosure(tmp_path, lying, Store(), node_reports=True)
    assert dd.DERIVED  # (the same check runs when verify re-derives a disclosure: compute() raises there too)
