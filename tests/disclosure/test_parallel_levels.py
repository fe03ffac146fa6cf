"""A tree's levels built and verified by worker processes (bench.report.pool.map_forked) give what building and
verifying them in turn gives: the same documents byte for byte, and the same findings in the same order, for an intact
tree and for broken ones (a tampered site, a missing child, a child listed twice, subtrees that overlap)."""

import itertools
import json
import shutil

import pytest

from bench.disclosure import document as dd
from bench.disclosure import tree
from bench.disclosure.leaves import Store
from bench.report import pool
from bench.report.store import dumps
from tests.disclosure import world

SITES = (("North", "Alpha", "A1", [1, 2]), ("North", "Alpha", "A2", [3]), ("North", "Gamma", "G1", [7]),
         ("South", "Beta", "B1", [4, 5, 6]), ("South", "Beta", "B2", [8]))  # fmt: skip
CLAIMS = [{"text": "1 EFLOPS", "source": "synthetic", "date": "2024"}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Site folders of capacity reports and declarations alone (no node reports): every level built by workers."""
    return world.site_folders(tmp_path_factory.mktemp("levels"), SITES)


@pytest.fixture
def forks(monkeypatch):
    """Cores as the test says (1: every level in this process), and the number of tasks each fork pool was given."""
    calls = []
    real = pool._map_parallel

    def counted(fn, items, jobs=None):
        calls.append(len(items))
        return real(fn, items, jobs)

    monkeypatch.setattr(pool, "_map_parallel", counted)

    def cores(n):
        monkeypatch.setattr(pool, "usable_cores", lambda: n)
        calls.clear()
        return calls

    return cores


def _build(root, output, **kw):
    return tree.build(root, policy=world.KEYS.policy(), as_of=world.AS_OF, write=world.write_disclosure, output=output, now=world.NOW,
                      claims_input=CLAIMS, **kw)  # fmt: skip


def test_levels_built_by_workers_are_the_documents_built_in_turn(folder, forks, tmp_path):
    forks(1)
    # an aggregator key sends the sites through the loop that builds them in turn, reading each site's node reports (here
    # none, and every cluster has its capacity report: nothing is aggregated)
    serial = _build(folder / "in", tmp_path / "serial", aggregator_key=world.KEYS.aggregator)
    calls = forks(2)
    parallel = _build(folder / "in", tmp_path / "parallel")
    # every roll-up's figures from its rows at once (3 cities, 2 regions, the country: dd.precomputed) and the 5
    # sites by the same workers, then the cities, then the regions (one country: built here)
    assert calls == [6 + 5, 3, 2]
    assert [(b.level, b.name) for b in serial] == [(b.level, b.name) for b in parallel]
    for a, b in zip(serial, parallel, strict=True):
        assert a.doc.raw == b.doc.raw, (a.level, a.name)
    assert json.loads(serial[0].doc.raw)["inventory"][0]["devices"] == 8 * 4


def _tree(folder, tmp_path, forks):
    """The tree built (in turn) inside a copy of the folder, as `bench verify --from` reads one."""
    forks(1)
    root = tmp_path / "in"
    shutil.copytree(folder / "in", root)
    return root, {(b.level, b.name): b for b in _build(root, root / "disclosure")}


def _verify(data, root, forks, cores):
    calls = forks(cores)
    return dd.verify(data, Store(root), "country"), calls


def _resign(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(dumps(world.resign_doc(data)))
    return json.loads(path.read_text())


def _repoint(built, *chain):
    """Each document of `chain` (child first) re-signed, and its parent's entry for it pointed at its new bytes."""
    for child, parent in itertools.pairwise(chain):
        entry = dd.child_entry(Store().add(built[child].path))

        def cite(data, entry=entry):
            data["inputs"]["children"] = [entry if (e["level"], e["name"]) == (entry["level"], entry["name"]) else e
                                          for e in data["inputs"]["children"]]  # fmt: skip

        _resign(built[parent].path, cite)


def _tamper_site(built):
    def more(data):
        data["capacity"][3]["reported_pflops"] *= 2

    _resign(built["site", "A1"].path, more)
    _repoint(built, ("site", "A1"), ("city", "Alpha"), ("region", "North"), ("country", "Freedonia"))


def _drop_child(built):
    built["city", "Gamma"].path.unlink()


def _list_twice(built):
    def twice(data):
        data["inputs"]["children"].append(data["inputs"]["children"][0])

    _resign(built["country", "Freedonia"].path, twice)


def _overlap(built):
    """Region South also lists city Alpha (whose site A1 is tampered): in turn Alpha is verified once."""
    _tamper_site(built)
    alpha = json.loads(built["region", "North"].path.read_text())["inputs"]["children"][0]

    def adopt(data):
        data["inputs"]["children"].append(alpha)

    _resign(built["region", "South"].path, adopt)
    _repoint(built, ("region", "South"), ("country", "Freedonia"))


@pytest.mark.parametrize("breaking", [None, _tamper_site, _drop_child, _list_twice, _overlap])
def test_levels_verified_by_workers_find_what_verifying_in_turn_finds(folder, forks, tmp_path, breaking):
    root, built = _tree(folder, tmp_path, forks)
    if breaking is not None:
        breaking(built)
    data = json.loads(built["country", "Freedonia"].path.read_text())
    serial, calls = _verify(data, root, forks, 1)
    assert calls == []
    parallel, calls = _verify(data, root, forks, 2)
    assert parallel == serial
    assert bool(serial) == (breaking is not None), serial
    if breaking in (None, _tamper_site, _drop_child):
        assert 2 in calls  # the two regions verified by workers


@pytest.mark.parametrize("tamper", [False, True])
def test_below_a_single_child_the_first_level_that_branches_is_verified_by_workers(folder, forks, tmp_path, tamper):
    """A country of one region: its two cities are the first level with siblings, verified by workers."""
    forks(1)
    root = tmp_path / "in"
    shutil.copytree(folder / "in" / "North", root / "North")
    built = {(b.level, b.name): b for b in _build(root, root / "disclosure")}
    if tamper:
        _resign(built["site", "A1"].path, lambda data: data["capacity"][3].update(reported_pflops=1.0))
        _repoint(built, ("site", "A1"), ("city", "Alpha"), ("region", "North"), ("country", "Freedonia"))
    data = json.loads(built["country", "Freedonia"].path.read_text())
    serial, _ = _verify(data, root, forks, 1)
    parallel, calls = _verify(data, root, forks, 2)
    assert parallel == serial and bool(serial) == tamper
    assert 2 in calls  # Alpha and Gamma
