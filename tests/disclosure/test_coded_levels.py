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


def _capacity_filtered_by_frames(per_cat):
    """kpis.capacity's bounded figures and kpis.readiness_of_rows' shares as they were computed, by filtering every
    column of the rows (the reference the column filters are held to)."""
    out = []
    for category, _ in kpis.CATEGORIES:
        rows = per_cat[category]
        if rows.empty:
            continue
        bounded = rows[rows["tier"] == "bounded"]
        out.append(("bounded", category, kpis._pf(bounded["mamf_tflops"].sum()), len(bounded)))
        peak = pd.to_numeric(rows["peak_tflops"], errors="coerce")
        with_peak = rows[peak.notna() & (peak > 0)]
        if with_peak.empty:
            continue
        psum = float(pd.to_numeric(with_peak["peak_tflops"]).sum())
        out.append(("mamf_over_peak", category, float(with_peak["mamf_tflops"].sum()) / psum))
        msmf = pd.to_numeric(with_peak["msmf_tflops"], errors="coerce")
        both = with_peak[msmf.notna()]
        if not both.empty:
            out.append(("sustained_over_peak", category, float(pd.to_numeric(both["msmf_tflops"]).sum())
                        / float(pd.to_numeric(both["peak_tflops"]).sum())))  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(80))
def test_column_filters_give_the_figures_of_frame_filters(seed):
    from bench.report.proofs import Proven

    r = random.Random(seed)
    n = r.randrange(0, 60)
    values = [0.1, 1e16, 1.0, 1e-300, 700.5]
    counted = pd.DataFrame({
        "device": [f"GPU-{r.randrange(40)}" for _ in range(n)],
        "precision": [r.choice(["bfloat16", "float16", "float32", "int8"]) for _ in range(n)],
        "mamf_tflops": [r.choice(values) if r.random() < 0.8 else r.randrange(1, 900) for _ in range(n)],
        "msmf_tflops": [r.choice([None, *values]) for _ in range(n)],
        "peak_tflops": [r.choice([None, 0.0, 0, 989.4, 1e16]) for _ in range(n)],
        "tier": [r.choice(["bounded", "reported"]) for _ in range(n)],
        "why": [r.choice([None, "", "a reason", "another"]) for _ in range(n)],
        "stale": [r.random() < 0.3 for _ in range(n)],
        "measured": pd.to_datetime(["2026-11-20T10:00:00Z"] * n, utc=True),
    })  # fmt: skip
    counted.index = r.sample(range(1000), n)
    per_cat = kpis.categories(counted)
    capacity = kpis.capacity(counted, Proven(), per_cat)
    readiness = {x["id"]: x["value"] for x in kpis.readiness_of_rows(per_cat, [])}
    for expected in _capacity_filtered_by_frames(per_cat):
        if expected[0] == "bounded":
            (row,) = [c for c in capacity if c["category"] == expected[1]]
            assert (row["bounded_pflops"], row["bounded_devices"]) == expected[2:]
        else:
            assert readiness.pop(f"{expected[0]}.{expected[1]}") == expected[2]
    assert set(readiness) == {"healthy_share"}
    for trusted in (True, False):
        kpis.reasons(capacity, per_cat, trusted_aggregator=trusted, auditor=False)
        for c in capacity:
            rows = per_cat[c["category"]]
            rest = rows[rows["tier"] != "bounded"]
            if rest.empty:
                assert c["why_not_bounded"] == []
                continue
            if not trusted:
                why = pd.Series(kpis.WHY_NO_AGGREGATOR, index=rest.index)
            else:
                given = rest["why"].where(rest["why"].notna() & (rest["why"] != ""), kpis.WHY_UNKNOWN)
                why = given.where(~rest["stale"].astype(bool), kpis.WHY_STALE)
            counts = why.value_counts(sort=False)
            assert c["why_not_bounded"] == [{"why": str(w), "devices": int(k)}
                                            for w, k in sorted(counts.items(), key=lambda x: (-x[1], str(x[0])))]  # fmt: skip
