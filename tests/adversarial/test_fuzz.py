"""500 seeded random mutations of an honest node report (types, values, structure), re-signed as an operator who holds
the key would: verification never raises, and what it says is a one-line error or a finding."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from typing import Any

from bench.report import aggregate as agg
from bench.report import intake
from bench.report import verify as v
from tests.adversarial import forge
from tests.report import fleet

KEY = forge.fresh_keys(1)[0]
MUTATIONS = 500


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, child in node.items():
            out += _paths(child, (*prefix, k))
    elif isinstance(node, list):
        for i, child in enumerate(node[:4]):  # a few samples are enough
            out += _paths(child, (*prefix, i))
    return out


def _value(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 1, 2**62, 10**30, -(2**70), 0.0, -0.5, 1e-320, 1e308, float("nan"), float("inf"),
        "", "x", "2", "2026-11-28T10:00:00", "2026-13-45T99:00:00Z", "GPU-" + "f" * 32, [], [1, "a", None], {}, {"a": {}},
        [[[[[[]]]]]], {"tflops": "fast"}, [0.1] * 3,
    ])  # fmt: skip


def _mutate(data: dict, rng: random.Random) -> dict:
    data = copy.deepcopy(data)
    path = rng.choice(_paths(data)[1:])
    parent = data
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    action = rng.choice(["replace", "replace", "replace", "delete", "add", "wrap"])
    if action == "replace":
        parent[key] = _value(rng)
    elif action == "delete":
        del parent[key]
    elif action == "add" and isinstance(parent[key], dict):
        parent[key][rng.choice(["world_size", "msmf", "uuid", "serial", "extra", "role"])] = _value(rng)
    elif action == "add" and isinstance(parent[key], list):
        parent[key].append(_value(rng))
    else:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"value": parent[key]}
    if rng.random() < 0.8:  # the operator holds the node key: most forgeries are re-signed
        try:
            data = forge.signed(data, KEY)
        except (TypeError, ValueError, OverflowError):
            pass
    return data


def test_500_random_mutations_never_crash_verification(tmp_path):
    rng = random.Random(12)
    honest = fleet.node_report(3, [700.0, 650.0], KEY)
    trusted = {forge.kid(KEY)}
    outcomes = {"error": 0, "finding": 0, "clean": 0}
    path = tmp_path / "report.json"
    for _ in range(MUTATIONS):
        mutated = _mutate(honest, rng)
        path.write_text(json.dumps(mutated))  # NaN and Infinity become the non-JSON tokens they would be on disk
        try:
            data = intake.read_json(path).data
        except intake.InputError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
            continue
        findings = v.verify_node_report(data, trusted=trusted, max_age=dt.timedelta(days=7), now=forge.NOW)
        assert all(isinstance(f, v.Finding) and "\n" not in f.message for f in findings)
        entry, _rows = agg._examine((str(path), data), now=forge.NOW)
        assert not any(r.startswith("unchecked:") for r in entry["reasons"]), entry["reasons"]
        outcomes["finding" if v.errors(findings) else "clean"] += 1
    assert outcomes["error"] > 10 and outcomes["finding"] > 200, outcomes
