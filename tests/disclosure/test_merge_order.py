"""merge() lays out each capacity report once (its columns as a frame, put end to end with the other reports' where
they inferred one dtype) and orders the counted rows by (site, cluster, precision, device) from integers (each leaf's
place among the (site, cluster) pairs, each row's place in its leaf): the same frame and duplicates as inferring every
column from all the rows and sorting the strings, on leaves whose optional fields make their dtypes differ, names whose
order a label ("site#cluster") would get wrong and devices found in several leaves (and clones sharing a serial); and
where two leaves share a (site, cluster) the strings are sorted."""

import datetime as dt
import random

import pandas as pd

from bench.disclosure import leaves as lv

AS_OF = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)


def _row(r: random.Random, device: str, mode: int) -> dict:
    """A device row; `mode` (one per leaf) decides which optional fields the leaf fills, so that a column's dtype
    inferred from one leaf's rows differs between leaves (all null, strings, floats, ints, a mix)."""

    def maybe(value):
        return None if mode == 0 else value if mode == 1 else r.choice([None, value])

    return {"device": device, "precision": r.choice(["bfloat16", "float16", "float32", "Float32"]),
            "kind": maybe("cuda"), "model": maybe("NVIDIA H100"), "node": f"n{r.randrange(9)}", "host": maybe("h1"),
            "mamf_tflops": r.choice([700.0 + r.random(), 700]) if mode == 2 else 700.0 + r.random(),
            "msmf_tflops": maybe(650.5), "peak_tflops": maybe(989.4), "memory_bytes": maybe(80 * 2**30),
            "measured_utc": f"2026-11-2{r.randrange(8)}T10:00:00Z", "tier": r.choice(["bounded", "reported"]),
            "why": maybe("a reason"), "serial": maybe(f"S{r.randrange(500)}"), "board": None,
            "pci": maybe(f"h/{r.randrange(500)}"), "samples": maybe(f"{r.randrange(10**6):x}")}  # fmt: skip


def _leaves(r: random.Random, places: list[tuple[str, str]]) -> list[tuple[lv.Leaf, lv.Rows]]:
    out = []
    for n, (site, cluster) in enumerate(places):
        mode = r.randrange(3)
        rows = lv.Rows(_row(r, r.choice(["GPU-", "gpu-", "GPU-é", "GPU-1", "GPU-10", "Ω"]) + str(r.randrange(60)), mode)
                       for _ in range(r.randrange(0, 80)))  # fmt: skip
        leaf = lv.Leaf(("Land", "R", "C", site), cluster, f"d{n}", f"s{n}", None, {"defective": []})
        out.append((leaf, rows))
    return out


def _merged(leaves: list, *, ranked: bool) -> tuple[pd.DataFrame, list]:
    # plain lists: every column inferred from all the rows, and the strings sorted
    given = [(lf, lv.Rows(rows)) for lf, rows in leaves] if ranked else [(lf, list(rows)) for lf, rows in leaves]
    return lv.merge(given, trusted_aggregator=True, as_of=AS_OF, stale_after=dt.timedelta(days=3))


def test_rows_ordered_by_ranks_as_by_the_strings():
    r = random.Random("merge order")
    # "S1 " sorts after "S1" but its label "…/S1 #b" before "…/S1#a"; clusters below '#' and '/' too
    names = [("S1", "a"), ("S1 ", "b"), ("S1", "!x"), ("S1a", "main"), ("S1", "#"), ("S10", "main"), ("S2", "a")]
    checked = 0
    for _ in range(25):
        places = r.sample(names, r.randrange(1, len(names) + 1))
        leaves = _leaves(r, places)
        fast, slow = _merged(leaves, ranked=True), _merged(leaves, ranked=False)
        pd.testing.assert_frame_equal(fast[0], slow[0])
        assert fast[1] == slow[1]
        checked += len(fast[0])
        order = list(zip(fast[0]["site"], fast[0]["cluster"], fast[0]["precision"], fast[0]["device"], strict=True))
        assert order == sorted(order) and len(set(order)) == len(order)
    assert checked > 500


def test_leaves_sharing_a_site_and_cluster_sort_the_strings():
    r = random.Random("shared")
    leaves = _leaves(r, [("S1", "main"), ("S1", "main"), ("S0", "b")])
    fast, slow = _merged(leaves, ranked=True), _merged(leaves, ranked=False)
    pd.testing.assert_frame_equal(fast[0], slow[0])
    assert fast[1] == slow[1] and fast[1]  # devices found in two leaves: duplicates named
