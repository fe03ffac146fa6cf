"""bench.planning.train: a suite's [train] section as specs per device kind."""

import pytest

from bench import suite
from bench.planning import train as train_plan


@pytest.mark.parametrize(("kind", "precision", "presets"), [("cpu", "float32", ["tiny"]),
                                                           ("cuda", "bfloat16", ["small", "gpt2-124m"])])  # fmt: skip
def test_train_specs_default_per_device_kind(kind, precision, presets):
    specs = train_plan.specs(suite.defaults()["train"], kind)
    assert [(s.model, s.preset) for s in specs] == [(m, p) for m in ("gpt", "mlp") for p in presets]
    assert {s.precision for s in specs} == {precision}


def test_train_specs_take_the_config_overrides():
    tc = {**suite.defaults()["train"], "models": ["mlp"], "presets": ["small"], "steps": 3, "warmup_steps": 0,
          "precision": "bfloat16"}  # fmt: skip
    (spec,) = train_plan.specs(tc, "cpu")
    assert (spec.model, spec.preset, spec.steps, spec.warmup, spec.precision) == ("mlp", "small", 3, 0, "bfloat16")
