"""unique_rows (the rows sharing an identity found by pandas, grouped by position) gives the groups of the plain
union-find over every row, which this test keeps as the reference."""

import math
import random
from typing import Any

import pandas as pd

from bench.report.capacity import IDENTITIES, unique_rows


def _reference(df: pd.DataFrame) -> tuple[list[Any], list[dict[str, Any]]]:
    order = list(df.index)
    position = {i: p for p, i in enumerate(order)}
    parent = {i: i for i in order}

    def find(i: Any) -> Any:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges: list[tuple[Any, str]] = []
    precisions, hosts = df["precision"].tolist(), df["host"].tolist()
    for column, label, per_precision in IDENTITIES:
        first: dict[Any, tuple[Any, Any]] = {}
        for i, value, precision, host in zip(order, df[column].tolist(), precisions, hosts, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            key = (value, precision) if per_precision else value
            if key not in first:
                first[key] = (i, host)
                continue
            j, other_host = first[key]
            if column == "board" and host == other_host:
                continue
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b, key=position.__getitem__)] = min(a, b, key=position.__getitem__)
            edges.append((i, label))
    groups: dict[Any, list[Any]] = {}
    for i in order:
        groups.setdefault(find(i), []).append(i)
    labels: dict[Any, set[str]] = {}
    for i, label in edges:
        labels.setdefault(find(i), set()).add(label)
    keep, duplicates = [], []
    for root, members in groups.items():
        keep.append(members[0])
        if len(members) > 1:
            duplicates.append({"device": df.at[members[0], "device"], "precision": df.at[members[0], "precision"],
                               "kept": df.at[members[0], "report"],
                               "dropped": sorted({df.at[m, "report"] for m in members[1:]}),
                               "dropped_devices": sorted({df.at[m, "device"] for m in members[1:]}),
                               "shared": sorted(labels.get(root, set())), "kept_index": members[0]})  # fmt: skip
    duplicates.sort(key=lambda d: (d["device"], d["precision"]))
    return keep, duplicates


def _random_rows(r: random.Random, n: int) -> pd.DataFrame:
    """n device rows with identities drawn from small pools (duplicates likely), some fields missing."""
    pick = lambda k, none=0.3: None if r.random() < none else f"x{r.randrange(k)}"
    rows = [{"device": f"GPU-{r.randrange(n)}", "precision": r.choice(["bfloat16", "float32"]),
             "host": f"h{r.randrange(5)}", "serial": pick(n), "board": pick(8), "pci": pick(n, 0.5),
             "samples": pick(2 * n, 0.6), "report": f"r{r.randrange(6)}"} for _ in range(n)]  # fmt: skip
    return pd.DataFrame(rows)


def test_groups_match_the_union_find_over_every_row():
    r = random.Random("unique rows")
    with_duplicates = 0
    for trial in range(60):
        n = r.randrange(1, 120)
        df = _random_rows(r, n)
        if trial % 3 == 0:
            df["samples"] = [math.nan if x is None else x for x in df["samples"]]
        if trial % 2:
            df.index = [f"row{k}" for k in r.sample(range(1000), n)]  # labels out of order, as after a sort
        got = unique_rows(df)
        assert got == _reference(df)
        with_duplicates += bool(got[1])
    assert with_duplicates > 30


def test_no_shared_identity_keeps_every_row():
    df = pd.DataFrame({"device": ["a", "b"], "precision": ["bfloat16"] * 2, "host": ["h", "h"], "serial": [None, None],
                       "board": [None, None], "pci": [None, None], "samples": [None, None], "report": ["r", "r"]})  # fmt: skip
    assert unique_rows(df) == ([0, 1], [])


def test_rows_that_may_share_hold_every_row_pandas_finds_shared():
    """_maybe_shared (Python's hash of each present value, with the precision's code) marks every present row that
    df.duplicated(keep=False) marks: values of several types that compare equal (1, 1.0, True), NaN and None left
    out, values that cannot be hashed decided by pandas itself."""

    from bench.report.capacity import _maybe_shared

    r = random.Random("maybe shared")
    marked_more = 0
    for trial in range(200):
        n = r.randrange(1, 80)
        pool = [1, 1.0, True, 0, 0.0, -0.0, False, "a", "b", "1", None, math.nan, 2.5, "x" * 40]
        values = [r.choice(pool[: r.randrange(2, len(pool) + 1)]) for _ in range(n)]
        if trial % 10 == 0:
            values[r.randrange(n)] = ["a list"]  # unhashable: pandas decides (and may refuse) as before
        df = pd.DataFrame({"serial": pd.Series(values, dtype=object),
                           "precision": [r.choice(["bfloat16", "float32"]) for _ in range(n)]})  # fmt: skip
        present = df["serial"].notna().to_numpy()
        for per_precision in (True, False):
            try:
                want = df.duplicated(["serial", "precision"] if per_precision else ["serial"], keep=False).to_numpy()
            except TypeError:
                continue
            got = _maybe_shared(df, df["serial"].tolist(), present, "serial", per_precision, [])
            assert not (want & present & ~got).any(), (values, per_precision)
            marked_more += bool((got & ~(want & present)).any())
    assert marked_more == 0  # distinct values of these few do not collide in 64 bits


def test_groups_hold_when_every_hash_collides(monkeypatch):
    """With every value hashing alike, every present row is a candidate: the groups are still the union-find's."""
    from bench.report import capacity

    monkeypatch.setattr(capacity, "hash", lambda x: 7, raising=False)
    r = random.Random("collisions")
    for _ in range(30):
        n = r.randrange(1, 60)
        df = _random_rows(r, n)
        assert unique_rows(df) == _reference(df)
