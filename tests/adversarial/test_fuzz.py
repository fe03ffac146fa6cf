"""500 seeded random mutations of an honest node report (types, values, structure), re-signed as an operator who holds
the key would: verification never raises, and what it says is a one-line error or a finding."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from typing import Any

from bench.model import intake
from bench.report import aggregate as agg
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


def test_random_mutations_of_a_commitment_or_reveal_never_crash_challenge_verify(tmp_path):
    """The same for what nodes drop for a challenge: every mutated commitment or reveal manifest is one finding."""
    from bench import challenge as chl
    from bench.report.store import dumps, write_atomic
    from tests.test_challenge import _answer, _drop, _issue, _receipts, verify

    rng = random.Random(5)
    path, ch = _issue(tmp_path, n=16, products=2)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    files = {suffix: drop / f"{base}{suffix}" for suffix in (chl.COMMIT_SUFFIX, chl.REVEAL_SUFFIX)}
    honest = {suffix: json.loads(f.read_text()) for suffix, f in files.items()}
    for i in range(120):
        suffix = chl.COMMIT_SUFFIX if i % 2 else chl.REVEAL_SUFFIX
        mutated = _mutate(honest[suffix], rng)
        files[suffix].write_text(json.dumps(mutated))
        receipts = _receipts(tmp_path, ch, drop, {base: 1.0})
        verdict = verify(path, drop, receipts)
        json.loads(dumps(verdict.to_dict()))  # finite, serializable
        assert all("\n" not in f.message for f in verdict.findings)
        write_atomic(files[suffix], dumps(honest[suffix]))


def test_random_mutations_of_a_capacity_report_never_crash_capacity_verify():
    from bench.model import sign

    rng = random.Random(9)
    reports = [fleet.node_report(i, [700.0], KEY) for i in range(3)]
    cap = agg.aggregate([(f"r{i}", r) for i, r in enumerate(reports)], now=forge.NOW)
    cap["signature"] = sign.sign(cap, KEY)
    by_digest = {sign.digest(r): r for r in reports}
    for _ in range(150):
        mutated = _mutate(cap, rng)
        findings, _view = agg.audit_capacity(mutated, by_digest, {forge.kid(KEY)}, now=forge.NOW)
        assert all(isinstance(f, v.Finding) for f in findings)
        for claim in ("1 PFLOPS bf16", "1 TFLOPS fp32"):
            assert not agg.check_claim(_view, claim)["supported"]
