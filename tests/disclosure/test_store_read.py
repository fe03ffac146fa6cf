"""A store reads a folder (and add_many its files) in worker processes, each capacity report's signature checked by the
worker that parsed it: the same documents, the same refusals and the same verification as reading them here."""

import json

import pytest

from bench.disclosure import document as dd
from bench.disclosure import leaves as lv
from bench.model import sign
from tests.disclosure import world


def _store(monkeypatch, folder, *, parallel):
    monkeypatch.setattr(lv, "PARALLEL_FROM", 2 if parallel else 10**9)
    return lv.Store(folder)


def test_a_folder_read_by_workers_is_the_folder_read_here(tmp_path, monkeypatch):
    d = world.country(tmp_path)
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "dup.json").write_text('{"a": 1, "a": 2}')
    pooled, serial = _store(monkeypatch, tmp_path, parallel=True), _store(monkeypatch, tmp_path, parallel=False)
    assert pooled.paths == serial.paths and len(pooled.paths) > 8
    for sha in serial.paths:
        a, b = pooled.get(sha), serial.get(sha)
        assert (a.path, a.raw, a.data, a.sha256) == (b.path, b.raw, b.data, b.sha256)
        if a.data.get("kind") == "bench.capacity":
            assert pooled._inspected[sha] == sign.inspect(b.data) and pooled._inspected[sha][0]
        # the canonical body that checked the signature is not kept (3 MB a site's report: 0.6 GB for a country)
        assert a.signed_body is None and b.signed_body is None
    national = world.read(d["Freedonia"])
    assert dd.verify(national, pooled) == dd.verify(national, serial) == []


def test_a_forged_capacity_report_read_by_a_worker_is_refused_as_here(tmp_path, monkeypatch):
    world.country(tmp_path)
    cap_path = tmp_path / "North" / "Alpha" / "A1" / "capacity.json"
    cap = json.loads(cap_path.read_text())
    cap["devices"][0]["mamf_tflops"] *= 10  # after signing
    cap_path.write_text(json.dumps(cap))
    refusals = []
    for parallel in (True, False):
        store = _store(monkeypatch, tmp_path, parallel=parallel)
        doc = next(store.get(sha) for sha, p in store.paths.items() if p == cap_path)
        with pytest.raises(lv.DisclosureError, match="signature does not match") as exc:
            lv.leaf(doc, ("Freedonia", "North", "Alpha", "A1"), "a", store, aggregator_ids=None)
        refusals.append(str(exc.value))
    assert refusals[0] == refusals[1]


def test_add_many_names_a_file_it_cannot_read(tmp_path, monkeypatch):
    monkeypatch.setattr(lv, "PARALLEL_FROM", 2)
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps({"n": i}))
    paths[2].write_text("[1, 2")
    store = lv.Store()
    with pytest.raises(lv.DisclosureError, match="2.json"):
        store.add_many(paths)
    paths[2].write_text("[]")
    assert [d.data for d in store.add_many(paths)] == [{"n": 0}, {"n": 1}, [], {"n": 3}]
