"""A store reads a folder (and add_many its files) in worker processes, each capacity report's signature checked by the
worker that parsed it: the same documents, the same refusals and the same verification as reading them here."""

import json
import os

import pandas as pd
import pytest

from bench.disclosure import document as dd
from bench.disclosure import leaves as lv
from bench.model import intake, sign
from bench.model.reports import CAPACITY_KIND
from tests.disclosure import world


def _store(monkeypatch, folder, *, parallel):
    monkeypatch.setattr(lv, "PARALLEL_FROM", 2 if parallel else 10**9)
    monkeypatch.setattr(lv, "usable_cores", lambda: 2)  # a worker and this process, on any machine
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
        if a.data.get("kind") == CAPACITY_KIND:
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


def _capacity_docs(store):
    return [store.get(sha) for sha in store.paths if store.get(sha).data.get("kind") == CAPACITY_KIND]


@pytest.mark.parametrize("parallel", [True, False])
def test_rows_laid_out_by_the_reader_are_the_rows_check_capacity_gives(tmp_path, monkeypatch, parallel):
    """A capacity report's rows are checked and laid out (columns, frame, ranks) by the worker that read it, for the
    leaf that places it: the same rows, frame and ranks as checking them here."""
    world.country(tmp_path)
    store = _store(monkeypatch, tmp_path, parallel=parallel)
    docs = _capacity_docs(store)
    assert len(docs) == 3 and all(sha in store._laid for sha in (d.sha256 for d in docs))
    for doc in docs:
        held = store._laid[doc.sha256]
        _, rows = lv.leaf(doc, ("Freedonia", "North", "Alpha", "A1"), "a", store, aggregator_ids=None)
        assert rows is held  # the reader's rows, not checked again
        fresh = lv.check_capacity(doc.data, "x", aggregator_ids=None, verified=True)
        assert list(rows) == list(fresh) and rows.ranks() == fresh.ranks()
        pd.testing.assert_frame_equal(rows.frame(), fresh.frame())


@pytest.mark.parametrize("parallel", [True, False])
def test_a_report_whose_rows_the_reader_refused_is_refused_as_check_capacity_refuses_it(tmp_path, monkeypatch,
                                                                                         parallel):  # fmt: skip
    """Rows a reader refuses (here a negative MAMF, re-signed, so the signature holds) are not laid out: the leaf
    checks them itself and refuses the report in check_capacity's words; and laid-out rows still answer to the
    aggregator trust list."""
    world.country(tmp_path)
    cap_path = tmp_path / "North" / "Alpha" / "A1" / "capacity.json"
    cap = json.loads(cap_path.read_text())
    cap["devices"][0]["mamf_tflops"] = -1.0
    cap = {k: x for k, x in cap.items() if k != "signature"}
    cap["signature"] = sign.sign(cap, world.KEYS.aggregator)
    cap_path.write_text(json.dumps(cap, indent=2, sort_keys=True))
    store = _store(monkeypatch, tmp_path, parallel=parallel)
    doc = next(store.get(sha) for sha, p in store.paths.items() if p == cap_path)
    assert doc.sha256 not in store._laid
    with pytest.raises(lv.DisclosureError) as exc:
        lv.leaf(doc, ("Freedonia", "North", "Alpha", "A1"), "a", store, aggregator_ids=None)
    with pytest.raises(lv.DisclosureError) as slow:
        lv.check_capacity(doc.data, intake.safe_name(str(doc.path)), aggregator_ids=None, verified=True)
    assert str(exc.value) == str(slow.value) and "devices[0].mamf_tflops" in str(exc.value)
    other = next(d for d in _capacity_docs(store) if d is not doc)
    assert other.sha256 in store._laid
    with pytest.raises(lv.DisclosureError, match="not in the aggregator trust list"):
        lv.leaf(other, ("Freedonia", "North", "Alpha", "A2"), "a", store, aggregator_ids={"someone else"})
    assert not store.checked(other.sha256)


_READ_HERE: list[int] = []
_read_one = lv._read_one


def _counted(task):
    """lv._read_one, counting the files read by the process that ran the test (a forked worker counts into its copy)."""
    _READ_HERE.append(os.getpid())
    return _read_one(task)


def test_read_many_shares_the_files_between_its_worker_and_this_process(tmp_path, monkeypatch):
    """The worker reads from the first file on, this process from the last back (what it reads is not pickled): each
    file's result lands in its own place, as reading them all here in order gives."""
    world.country(tmp_path)
    for i in range(12):
        (tmp_path / f"extra{i:02d}.json").write_text(json.dumps({"n": i, "pad": "x" * 20_000 * i}))
    (tmp_path / "junk.json").write_text("{not json")
    paths = sorted(tmp_path.rglob("*.json"))
    here = [lv._read_one((p, tmp_path)) for p in paths]
    monkeypatch.setattr(lv, "usable_cores", lambda: 2)
    monkeypatch.setattr(lv, "_read_one", _counted)
    _READ_HERE.clear()
    shared = lv.read_many(paths, root=tmp_path)
    assert 1 <= _READ_HERE.count(os.getpid()) < len(paths)  # the last file at least: never queued for the worker
    assert len(shared) == len(here)
    for a, b in zip(shared, here, strict=True):
        if isinstance(b, intake.InputError):
            assert type(a) is type(b) and str(a) == str(b)
            continue
        assert (a[0].path, a[0].data, a[0].sha256, a[1]) == (b[0].path, b[0].data, b[0].sha256, b[1])
        assert (a[2] is None) == (b[2] is None)
        if b[2] is not None:
            assert list(a[2]) == list(b[2]) and a[2].ranks() == b[2].ranks()
