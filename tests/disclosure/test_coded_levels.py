"""leaves.Coded: the place columns (site, cluster, p0..p3) numbered once by the shared merge and taken by every level
(kpis.tree, document.site_pflops) instead of factorizing each level's rows again. On randomized trees (tests/disclosure/
test_shared_merge.py's), every subset's codes name its rows' values, order as they do, and give the tree and site
figures that factorizing the subset gives, equal as Python values (so the same JSON)."""

import random

import numpy as np
import pandas as pd
import pytest

from bench.disclosure import document as dd
from bench.disclosure import kpis
from bench.disclosure import leaves as lv
from tests.disclosure.test_shared_merge import AS_OF, STALE, _subsets, _tree


def _coded_merge(leaves):
    return lv.merge_coded(leaves, trusted_aggregator=True, as_of=AS_OF, stale_after=STALE, without=lv.MERGE_ONLY)


@pytest.mark.parametrize("seed", range(60))
def test_each_levels_codes_name_its_rows_and_give_the_figures_of_its_own_numbering(seed):
    r = random.Random(seed)
    leaves = _tree(r)
    try:
        with lv.shared_merge(leaves, trusted_aggregator=True, as_of=AS_OF, stale_after=STALE):
            taken = [(subset, _coded_merge(subset)) for subset in _subsets(leaves)]
    except lv.DisclosureError:
        return
    for subset, (counted, _, coded) in taken:
        if coded is None:
            continue
        for c in lv.CODED:
            codes, names = coded.codes[c], coded.names[c]
            assert len(codes) == len(counted) and (codes >= 0).all()
            assert list(names[codes]) == counted[c].tolist()
            assert list(names) == sorted(set(names))  # sorted, distinct: codes order as the names
        devices, _ = pd.factorize(counted["device"])
        per_cat = kpis.categories(counted, devices=devices)
        depth = min(len(set(map(tuple, counted[["p0", "p1", "p2", "p3"]].to_numpy().tolist()))), 4)
        for level_depth in {1, depth}:
            if counted[[f"p{i}" for i in range(level_depth)]].drop_duplicates().shape[0] != 1:
                continue
            assert kpis.tree(counted, per_cat, level_depth, devices=devices, coded=coded) == kpis.tree(
                counted, per_cat, level_depth, devices=devices
            )
        assert dd.site_pflops(counted, devices, coded=coded) == dd.site_pflops(counted, devices)


def test_a_column_that_is_not_one_value_per_leaf_is_not_coded():
    r = random.Random(7)
    while True:
        leaves = _tree(r)
        with lv.shared_merge(leaves, trusted_aggregator=True, as_of=AS_OF, stale_after=STALE):
            held = lv._SHARED[0] if lv._SHARED else None
        if held is not None and held.coded is not None and len(held.counted) > 1:
            break
    counted = held.counted.copy()
    assert lv._coded(counted, held.codes, held.runs) is not None
    counted.loc[len(counted) - 1, "cluster"] = "another"  # one row's cluster is not its leaf's
    assert lv._coded(counted, held.codes, held.runs) is None
    counted = held.counted.copy()
    counted["p3"] = None  # not strings
    assert lv._coded(counted, held.codes, held.runs) is None
    assert lv._coded(held.counted, held.codes, None) is None


def test_codes_taken_at_rows_are_the_rows_codes():
    coded = lv.Coded({"site": np.array([2, 0, 1, 1])}, {"site": pd.Index(["a", "b", "c"])})
    assert coded.at(np.array([3, 0])).codes["site"].tolist() == [1, 2]


@pytest.mark.parametrize("seed", range(200))
def test_mixes_kinds_is_the_groupby_it_replaces(seed):
    r = random.Random(seed)
    n = r.randrange(1, 30)
    model = pd.Series([r.choice(["A", "B", "unknown model", "C", None]) for _ in range(n)])
    kind = pd.Series([r.choice(["cuda", "cpu", None, "rocm"][: r.randrange(1, 5)]) for _ in range(n)])
    expected = bool(pd.DataFrame({"model": model, "kind": kind}).groupby("model")["kind"].nunique().max() > 1)
    assert kpis._mixes_kinds(model, kind) is expected


@pytest.mark.parametrize("seed", range(100))
def test_first_last_is_the_groupby_it_replaces(seed):
    r = random.Random(seed)
    n = r.randrange(1, 40)
    groups = r.randrange(1, 6)
    codes = np.array([r.randrange(groups) for _ in range(n)] + list(range(groups)), dtype=np.int64)
    r.shuffle(codes)
    times = [f"2026-11-{r.randrange(20, 23)}T1{r.randrange(3)}:0{r.randrange(2)}:00Z" for _ in codes]
    measured = pd.Series(pd.to_datetime(times, utc=True, format="ISO8601"), index=r.sample(range(1000), len(codes)))
    dates = measured.groupby(codes, sort=True).agg(["min", "max"])
    earliest, latest = kpis._first_last(measured, codes, groups)
    assert earliest == list(dates["min"]) and latest == list(dates["max"])
    assert [kpis._utc(t) for t in earliest + latest] == [kpis._utc(t) for t in [*dates["min"], *dates["max"]]]
