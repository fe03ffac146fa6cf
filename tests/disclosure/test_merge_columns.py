"""The columns _merge lays out per leaf (leaf, report, site, cluster, each row's leaf rank) and shared_merge's leaf
numbers, built by numpy from each leaf's value and row count, are those the lists and the dict look-ups they replace
gave: the same values, the same inferred dtypes, on randomized trees (leaves without rows included)."""

import random

import numpy as np
import pandas as pd

from bench.disclosure import leaves as lv
from tests.disclosure.test_shared_merge import AS_OF, STALE, _tree


def _lists(ordered):
    """The former form: each column a list of every row's value, a Series inferred from it."""
    out = {c: [] for c in ("leaf", "report", "site", "cluster")}
    for lf, rows in ordered:
        n = len(rows)
        out["leaf"] += [lf.label] * n
        out["report"] += [lf.label] * n
        out["site"] += ["/".join(lf.path)] * n
        out["cluster"] += [lf.cluster] * n
    return out


def test_per_leaf_columns_are_the_lists_they_replace():
    r = random.Random("per leaf")
    for _ in range(60):
        ordered = sorted(_tree(r), key=lambda x: x[0].label)
        lengths = [len(rows) for _, rows in ordered]
        got, want = lv._per_leaf(ordered, lengths), _lists(ordered)
        for c, values in want.items():
            a, b = pd.Series(got[c], dtype=None), pd.Series(values, dtype=None)
            assert a.dtype == b.dtype and a.tolist() == b.tolist(), c
            assert len({id(x) for x in got[c]}) <= len(ordered)  # one object a leaf's value
        rank = {label: i for i, label in enumerate(sorted({lf.label for lf, _ in ordered}))}
        ranks = lv._repeated([rank[lf.label] for lf, _ in ordered], lengths, np.int64)
        assert ranks.dtype == np.int64
        assert ranks.tolist() == pd.Series(want["leaf"], dtype=object).map(rank).astype("int64").tolist()


def test_shared_merge_numbers_rows_by_their_leaf():
    r = random.Random("leaf numbers")
    held = 0
    for _ in range(40):
        tree = _tree(r)
        with lv.shared_merge(tree, trusted_aggregator=True, as_of=AS_OF, stale_after=STALE):
            for shared in lv._SHARED:
                want = shared.counted["leaf"].map(shared.number).to_numpy(dtype=np.int64)
                assert shared.codes.dtype == np.int64 and shared.codes.tolist() == want.tolist()
                held += 1
    assert held > 10
