"""The pieces of a node report's examination that take a faster form (issue 26, the aggregate phase) decide as the
forms they replace, on randomized inputs: the samples' finite-positive check in C, a device row's samples key
without numpy, and a GPU's table peak shared across reports."""

from __future__ import annotations

import hashlib
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest

from bench.hardware import peaks
from bench.model import reports
from bench.report import devices
from bench.report import verify as v

SPECIAL = [0, 0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 1e308, 1.7976931348623157e308, 5e-324, 10**400, -(10**400),
           2**63, True, 1, 1e-9]  # fmt: skip


def _values(r: random.Random) -> list:
    n = r.randrange(0, 30)
    out = [r.lognormvariate(-7, 1) for _ in range(n)]
    for _ in range(r.choice([0, 0, 1, 2])):
        if out or r.random() < 0.5:
            out.insert(r.randrange(len(out) + 1), r.choice(SPECIAL))
    return out


def test_positive_durations_vouches_only_for_what_the_loop_accepts():
    r = random.Random("positive durations")
    vouched = 0
    for _ in range(20000):
        values = _values(r)
        if reports._positive_durations(values):
            vouched += 1
            assert all(0 < x < math.inf for x in values), values
    assert vouched > 5000  # the usual case is decided in C


@pytest.mark.parametrize("values", [[math.nan, 1.0], [1.0, math.nan], [math.inf, -math.inf], [1e308, 1e308], [],
                                    [1.0, 0.0], [1.0, -0.0], [10**400, 1.0], [2.0, -1.0]])  # fmt: skip
def test_positive_durations_leaves_the_doubtful_to_the_loop(values):
    assert not reports._positive_durations(values)


def test_samples_key_is_numpys_bytes_hashed():
    r = random.Random("samples key")
    for _ in range(2000):
        samples = [r.lognormvariate(-7, 1) for _ in range(r.randrange(0, 40))]
        if samples and r.random() < 0.2:
            samples[r.randrange(len(samples))] = r.randrange(1, 9)  # an integer, as JSON may hold one
        if r.random() < 0.2:
            samples = [r.choice(samples[:4] or [1e-3]) for _ in samples]  # too uniform to identify anything
        if r.random() < 0.3:
            samples = reports.Samples(samples)
        want = (hashlib.sha256(np.asarray(samples, dtype="<f8").tobytes()).hexdigest()
                if len(set(samples)) >= devices.SAMPLES_IDENTITY_MIN_DISTINCT else None)  # fmt: skip
        assert devices._samples_key(samples) == want


def test_the_shared_table_peak_is_peak_for_of_the_same_facts():
    names = [row["model"] for row in peaks.table()] + [
        "NVIDIA H100 80GB HBM3",
        "NVIDIA A100-SXM4-40GB MIG 3g.20gb",
        "x",
    ]
    for name in names:
        for precision in [*peaks.COLUMNS, "", "int4"]:
            for mig, sm in ((False, None), (True, None), (True, 14), (True, 10**6)):
                facts = SimpleNamespace(kind="cuda", name=name, mig=mig, sm_count=sm)
                assert v._table_peak(name, mig, sm, precision) == peaks.peak_for(facts, {}, precision)


def test_indexed_and_retained_blocks_leave_nothing_behind_when_a_check_raises():
    """indexed() and retained() as class blocks: entries pushed on entering are popped on leaving, a raise included, and
    inside retained() a second block over the same inventory takes up the first one's index (the same object)."""
    inventory = {"nvml": {"gpus": [{"uuid": "GPU-a", "name": "NVIDIA H100 80GB HBM3"}]}}
    with pytest.raises(RuntimeError), v.retained(), v.indexed(inventory):
        assert v.inventory_gpu(inventory, "GPU-a")[0] is inventory["nvml"]["gpus"][0]
        raise RuntimeError("a check failed")
    assert v._INDEXED == [] and v._RETAINED == []
    with v.retained():
        with v.indexed(inventory):
            first = v._INDEXED[-1]
        with v.indexed(inventory):
            assert v._INDEXED[-1] is first
        with v.indexed({"nvml": {"gpus": []}}):
            assert v._INDEXED[-1] is not first and v.inventory_gpu(inventory, "GPU-a")[0] is not None
    assert v._INDEXED == [] and v._RETAINED == []
