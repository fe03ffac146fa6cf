"""leaves.shared_merge: inside it, merge() of any subset of a tree's leaves is taken from one merge of them all. On
randomized trees (leaves whose optional fields make their dtypes differ or not, identities unique or shared across
sites, clones, MIG slices, rows measured after the as-of date) every subset's merge is the frame and duplicates that
merging it alone gives (less the merge's own columns, leaves.MERGE_ONLY, where a level asks so), or the same refusal; and a tree built and verified with the shared merge gives the documents
byte for byte and the findings that building and verifying each level on its own give."""

import datetime as dt
import json
import random
import shutil

import pandas as pd
import pytest

from bench.disclosure import document as dd
from bench.disclosure import leaves as lv
from bench.disclosure import tree
from bench.disclosure.leaves import DisclosureError, Store
from bench.report import pool
from tests.disclosure import world

AS_OF = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
STALE = dt.timedelta(days=3)
PLACES = [("R1", "C1", "S1", "a"), ("R1", "C1", "S1", "b"), ("R1", "C1", "S2", "main"), ("R1", "C2", "S3", "main"),
          ("R2", "C3", "S4", "main"), ("R2", "C3", "S5", "x"), ("R2", "C4", "S6", "main")]  # fmt: skip


def _row(r: random.Random, n: int, mode: int, shared: bool) -> dict:
    """Device row number `n` of a tree; `mode` (one per tree, or per leaf) decides which optional fields are filled
    (so dtypes agree between leaves or not); `shared` lets identities repeat across leaves (duplicates, clones, MIG)."""

    def maybe(value):
        return None if mode == 0 else value if mode == 1 else r.choice([None, value])

    ident = r.randrange(40) if shared else n
    serial = f"S{ident}" + (f"/mig{r.randrange(2)}" if shared and r.random() < 0.2 else "")
    return {"device": f"GPU-{ident if shared and r.random() < 0.5 else n}",
            "precision": r.choice(["bfloat16", "float16", "float32"]), "kind": maybe("cuda"),
            "model": maybe(r.choice(["NVIDIA H100", "NVIDIA A100"])), "node": f"n{n // 8}", "host": maybe(f"h{n // 8}"),
            "mamf_tflops": 700.0 + r.random() * (400 if r.random() < 0.9 else 2000),
            "msmf_tflops": maybe(650.5 + r.random()), "peak_tflops": maybe(989.4),
            "memory_bytes": maybe(80 * 2**30), "measured_utc": f"2026-11-{r.randrange(20, 29)}T1{r.randrange(3)}:00:00Z",
            "tier": r.choice(["bounded", "reported"]), "why": maybe("a reason"), "serial": maybe(serial), "board": None,
            "pci": maybe(f"h{ident}/0000:{n % 8}"), "samples": maybe(f"{ident * 7919 + n * (0 if shared else 1):x}")}  # fmt: skip


def _tree(r: random.Random) -> list[tuple[lv.Leaf, lv.Rows]]:
    mode, shared = r.choice([0, 1, 1, 2, None]), r.random() < 0.3
    n = 0
    out = []
    for i, (region, city, site, cluster) in enumerate(r.sample(PLACES, r.randrange(2, len(PLACES) + 1))):
        rows = lv.Rows()
        for _ in range(r.randrange(0, 40)):
            rows.append(_row(r, n, r.randrange(3) if mode is None else mode, shared))
            n += 1
        defective = [{"device": x["device"], "precision": x["precision"]} for x in rows if r.random() < 0.1]
        leaf = lv.Leaf(("Land", region, city, site), cluster, f"d{i}", f"s{i}", None, {"defective": defective})
        out.append((leaf, rows))
    return out


def _subsets(leaves: list) -> list[list]:
    """Each level's leaves: every site, city and region, the whole, and a few arbitrary subsets."""
    out = [leaves]
    for depth in (2, 3, 4):
        groups: dict = {}
        for lf, rows in leaves:
            groups.setdefault(lf.path[:depth], []).append((lf, rows))
        out += groups.values()
    return out


def _merge(leaves, as_of, without=()):
    try:
        return lv.merge(leaves, trusted_aggregator=True, as_of=as_of, stale_after=STALE, without=without)
    except DisclosureError as exc:
        return str(exc)


def test_every_subset_merged_from_the_shared_merge_is_its_own_merge():
    r = random.Random("shared merge")
    taken = fallback = 0
    for _ in range(60):
        leaves = _tree(r)
        as_of = AS_OF if r.random() < 0.9 else dt.datetime(2026, 11, 25, tzinfo=dt.UTC)  # some rows in its future
        subsets = _subsets(leaves) + [r.sample(leaves, r.randrange(1, len(leaves) + 1)) for _ in range(3)]
        alone = [_merge(s, as_of) for s in subsets]
        with lv.shared_merge(leaves, trusted_aggregator=True, as_of=as_of, stale_after=STALE):
            held = bool(lv._SHARED)
            shared = [_merge(s, as_of) for s in subsets]
            # as a level takes them (document.from_rows): the same frame less the merge's own columns, by either path
            narrow = [_merge(s, as_of, lv.MERGE_ONLY) for s in subsets]
            # other rules, or rows that are not the same objects, are not taken from it
            assert lv._taken(subsets[0], (False, as_of, STALE)) is None
            assert lv._taken([(lf, lv.Rows(rows)) for lf, rows in leaves], (True, as_of, STALE)) is None
            # nor a report placed elsewhere under the same label ("R/C/S#a" as site "C/S" of region R)
            lf, rows = leaves[0]
            moved = lv.Leaf((*lf.path[:2], "/".join(lf.path[2:])), lf.cluster, lf.digest, lf.sha256, None, lf.data)
            assert moved.label == lf.label and lv._taken([(moved, rows)], (True, as_of, STALE)) is None
        assert not lv._SHARED
        for a, b, c in zip(alone, shared, narrow, strict=True):
            if isinstance(a, str):
                assert a == b == c
                continue
            pd.testing.assert_frame_equal(a[0], b[0])
            assert a[1] == b[1] == c[1]
            assert set(a[0].columns) - set(c[0].columns) == set(lv.MERGE_ONLY)
            pd.testing.assert_frame_equal(a[0][[x for x in a[0].columns if x not in lv.MERGE_ONLY]], c[0])
        taken += held * len(subsets)
        fallback += not held
    assert taken > 200 and fallback > 10  # both paths exercised


def test_the_shared_merge_holds_each_device_id_and_host_anew_with_the_same_values():
    """The shared merge's device ids and host names are new string objects (laid out side by side, leaves._compact),
    equal to the rows' own: the frame a level takes is the one merging alone gives (the test above), and no object of
    those columns is one of the rows' objects."""
    r = random.Random("compact")
    compacted = 0
    for _ in range(20):
        leaves = _tree(r)
        alone = _merge(leaves, AS_OF)  # outside the block: merged here, not taken from the shared merge
        with lv.shared_merge(leaves, trusted_aggregator=True, as_of=AS_OF, stale_after=STALE):
            if not lv._SHARED:
                continue
            counted, alone = lv._SHARED[0].counted, alone[0]
            pd.testing.assert_frame_equal(counted, alone)
            for c in ("device", "host"):
                if set(map(type, alone[c])) != {str}:
                    continue
                mine = {id(row[c]) for _, rows in leaves for row in rows}
                assert not mine & {id(x) for x in counted[c].to_numpy(dtype=object)}
                compacted += 1
    assert compacted > 5


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Capacity reports and declarations of five sites in two regions; site B2 lists node 4 again (as B1 does), so
    that a tree holding both has duplicates across sites and no shared merge."""
    sites = (("North", "Alpha", "A1", [1, 2]), ("North", "Alpha", "A2", [3]), ("North", "Gamma", "G1", [7]),
             ("South", "Beta", "B1", [4, 5, 6]), ("South", "Beta", "B2", [4, 8]))  # fmt: skip
    return world.site_folders(tmp_path_factory.mktemp("shared"), sites)


@pytest.mark.parametrize("duplicates", [False, True])
def test_a_tree_built_and_verified_with_the_shared_merge_is_the_one_built_level_by_level(folder, tmp_path,
                                                                                          monkeypatch, duplicates):  # fmt: skip
    calls = []
    real = lv._taken

    def taken(leaves, key, without=()):
        got = real(leaves, key, without)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(lv, "_taken", taken)
    monkeypatch.setattr(pool, "usable_cores", lambda: 1)  # every level in this process, where the calls are counted
    root = tmp_path / "in"
    shutil.copytree(folder / "in", root)
    if not duplicates:
        shutil.rmtree(root / "South" / "Beta" / "B2")
    built = {}
    for shared in (True, False):
        if not shared:
            monkeypatch.setattr(lv, "_restrictable", lambda leaves: False)
        out = tmp_path / f"out-{shared}"
        built[shared] = tree.build(root, policy=world.KEYS.policy(), as_of=world.AS_OF, write=world.write_disclosure, output=out,
                                   now=world.NOW, claims_input=[])  # fmt: skip
        data = json.loads(built[shared][0].path.read_text())
        store = Store(out)
        for path in root.rglob("capacity.json"):
            store.add(path)
        built[shared, "findings"] = dd.verify(data, store, "country")
        built[shared, "taken"] = sum(calls)
        calls.clear()
    assert [b.doc.raw for b in built[True]] == [b.doc.raw for b in built[False]]
    assert built[True, "findings"] == built[False, "findings"] == []
    assert built[False, "taken"] == 0
    # every level (5 or 4 sites, 3 cities, 2 regions, the country) built and verified from the shared merge, or none
    assert built[True, "taken"] == (0 if duplicates else 2 * (4 + 3 + 2 + 1))
    assert bool(json.loads(built[True][0].doc.raw)["duplicates"]) == duplicates
