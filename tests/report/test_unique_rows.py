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


def test_groups_match_the_union_find_over_every_row():
    r = random.Random("unique rows")
    with_duplicates = 0
    for trial in range(60):
        n = r.randrange(1, 120)
        pick = lambda k, none=0.3: None if r.random() < none else f"x{r.randrange(k)}"
        rows = [{"device": f"GPU-{r.randrange(n)}", "precision": r.choice(["bfloat16", "float32"]),
                 "host": f"h{r.randrange(5)}", "serial": pick(n), "board": pick(8), "pci": pick(n, 0.5),
                 "samples": pick(2 * n, 0.6), "report": f"r{r.randrange(6)}"} for _ in range(n)]  # fmt: skip
        df = pd.DataFrame(rows)
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
