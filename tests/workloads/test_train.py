import math

import pytest

from bench import figures
from bench.hardware.devices import DeviceFacts
from bench.hardware.peaks import Peak
from bench.model.reports import Measurement
from bench.workloads import train as tr
from tests.fakes.timer import FakeTimer

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp", 0, None, ("avx2", "fma"))


@pytest.mark.parametrize("model", ["gpt", "mlp"])
@pytest.mark.parametrize("name", list(tr.PRESETS["gpt"]))
def test_analytic_flops_match_flop_counter_on_every_preset(model, name):
    spec = tr.preset(model, name)
    assert tr.counted_flops(spec) == pytest.approx(tr.flops_per_step(spec), rel=0.05)


@pytest.mark.parametrize(
    "spec",
    [tr.TrainSpec("gpt", "x", layers=3, width=96, heads=3, seq_len=40, batch=5, vocab=77),
     tr.TrainSpec("gpt", "x", layers=1, width=64, heads=8, seq_len=128, batch=2, vocab=1000),
     tr.TrainSpec("mlp", "x", layers=2, width=300, batch=7, vocab=33),
     tr.TrainSpec("mlp", "x", layers=6, width=128, batch=3, vocab=512)],
)  # fmt: skip
def test_analytic_flops_are_exact_on_odd_shapes(spec):
    assert tr.counted_flops(spec) == tr.flops_per_step(spec)


def test_gpt2_preset_is_gpt2_small_and_1b_is_a_billion():
    assert tr.parameters(tr.preset("gpt", "gpt2-124m")) == pytest.approx(124.4e6, rel=0.01)
    # GPT-2's 50,257 tokens padded to the next multiple of 64, as nanoGPT's 50,304
    assert tr.preset("gpt", "gpt2-124m").vocab == tr.preset("gpt", "1b").vocab == 50304
    assert tr.parameters(tr.preset("gpt", "1b")) == pytest.approx(1.0e9, rel=0.05)


@pytest.mark.parametrize("model", ["gpt", "mlp"])
def test_tiny_preset_learns_and_reports_honest_figures(model):
    spec = tr.preset(model, "tiny")
    peak = Peak(1.0, "theoretical", "test", "test")
    m = tr.run(spec, CPU, peak=peak)
    assert m.status == "ok", m.reason
    d = m.details
    assert d["final_loss"] <= tr.LOSS_DROP * d["initial_loss"] and len(d["losses"]) == spec.warmup + spec.steps
    assert len(m.samples_s) == spec.steps and len(m.warmup_s) == spec.warmup
    assert m.summary == figures.train_summary(m.samples_s, tr.flops_per_step(spec), spec.items_per_step, 1.0)
    assert m.summary["mfu"] == pytest.approx(m.summary["tflops_median"])
    assert d["flop_counter_ratio"] == pytest.approx(1.0) and d["peak_memory_bytes"] > 0
    Measurement.from_dict(m.to_dict())


def test_nan_loss_makes_the_run_invalid():
    m = tr.run(tr.preset("mlp", "tiny", steps=5, warmup=1), CPU, corrupt_loss_at=3)
    assert m.status == "invalid" and "not finite from step 3" in m.reason


@pytest.mark.parametrize(
    "losses, passed, why",
    [([5.0, 4.0, 3.0, 2.0, 1.0], True, None), ([5.0, 5.0, 4.9, 4.8, 4.7], False, "did not fall"),
     ([5.0, math.inf, 1.0], False, "not finite from step 1"), ([5.0, 1.0, float("nan")], False, "not finite")],
)  # fmt: skip
def test_loss_validity(losses, passed, why):
    v = tr.loss_validity(losses)
    assert v["passed"] is passed
    if why:
        assert why in v["reason"]


def test_figures_from_a_fake_timer():
    spec = tr.preset("mlp", "tiny", steps=3, warmup=1)
    timer = FakeTimer([0.5, 0.2, 0.4, 0.1])
    m = tr.run(spec, CPU, timer=timer)
    assert m.samples_s == [0.2, 0.4, 0.1] and m.summary["median_s"] == 0.2
    assert m.summary["items_per_s"] == spec.items_per_step / 0.2
    assert m.summary["tflops_best"] == pytest.approx(tr.flops_per_step(spec) / 0.1 / 1e12)


def test_a_preset_too_big_for_memory_is_skipped():
    spec = tr.TrainSpec("mlp", "huge", layers=2, width=2**20, batch=1, vocab=2**20, steps=1, warmup=0)
    m = tr.run(spec, CPU)
    assert m.status == "skipped" and "out of memory" in m.reason


@pytest.mark.parametrize(
    "kwargs, message",
    [({"model": "cnn"}, "unknown model"), ({"precision": "float16"}, "train precision"),
     ({"heads": 5}, "not divisible"), ({"steps": 0}, "positive")],
)  # fmt: skip
def test_bad_specs(kwargs, message):
    base = {"model": "gpt", "preset": "x", "layers": 1, "width": 64, "heads": 4}
    with pytest.raises(ValueError, match=message):
        tr.TrainSpec(**{**base, **kwargs})
    with pytest.raises(ValueError, match="valid: tiny"):
        tr.preset("gpt", "huge")


def test_mamf_ratio_is_added_when_the_report_has_a_matmul_figure():
    train = tr.run(tr.preset("mlp", "tiny", steps=3, warmup=1), CPU, timer=FakeTimer([0.1] * 4))
    matmul = Measurement("matmul", {"precision": "float32"}, {"uuid": "fp"}, "ok", summary={"tflops_median": 0.1})
    tr.annotate_mamf_ratio([matmul, train])
    assert train.details["mamf_ratio"] == pytest.approx(train.summary["tflops_median"] / 0.1)


def test_compile_runs_the_same_workload_through_torch_compile():
    """~30 s on 2 cores (inductor compiles C++), so one small case only."""
    m = tr.run(tr.preset("mlp", "tiny", compile=True), CPU)
    assert m.status == "ok", m.reason
    assert m.spec["compile"] is True and m.details["flop_counter_ratio"] == pytest.approx(1.0)


def test_progress_is_reported_from_a_watcher_until_every_step_is_done():
    from bench.hardware import devices as devs
    from bench.workloads import train as tr_

    seen: list[tuple[int, int]] = []
    spec = tr_.preset("mlp", "tiny", steps=6, warmup=1)
    m = tr_.run(spec, devs.facts("cpu", {}), progress=lambda done, total: seen.append((done, total)))
    assert m.status in ("ok", "invalid")
    assert seen and seen[-1] == (7, 7)  # the final report comes after the last step
    assert all(total == 7 and 0 <= done <= 7 for done, total in seen)
