"""The TF32 switch as each torch version treats TORCH_ALLOW_TF32_CUBLAS_OVERRIDE (tests/fakes/tf32.py), held to what
the installed torch (2.13, CPU build) does where it can show it."""

import subprocess
import sys

import pytest
import torch

from tests.fakes import tf32 as fake

FORCED = {"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1"}


def test_before_2_9_the_variable_wins_over_an_explicit_setting():
    knob = fake.LegacyKnob(FORCED)
    knob.allow_tf32 = False
    assert knob.tf32() and knob.allow_tf32 is True
    assert not hasattr(knob, "fp32_precision")  # the new API does not exist yet
    assert not fake.LegacyKnob({}).tf32()


def test_from_2_9_the_variable_only_sets_the_initial_value():
    knob = fake.Knob(FORCED)
    assert knob.fp32_precision == "tf32" and knob.allow_tf32 is True and knob.tf32()
    knob.fp32_precision = "ieee"
    assert not knob.tf32()
    knob = fake.Knob({})
    assert knob.fp32_precision == "none" and knob.allow_tf32 is False and not knob.tf32()


def test_from_2_9_mixing_the_legacy_and_new_apis_raises():
    knob = fake.Knob(FORCED)
    knob.fp32_precision = "ieee"  # the new API moved, the legacy flag still says True
    with pytest.raises(RuntimeError, match="mix of the legacy and new APIs"):
        _ = knob.allow_tf32
    knob.allow_tf32 = False  # the legacy setter sets both: consistent again
    assert knob.fp32_precision == "ieee" and knob.allow_tf32 is False


def test_nvidia_tf32_override_0_forbids_tf32_on_every_version():
    for knob in (fake.LegacyKnob({**FORCED, "NVIDIA_TF32_OVERRIDE": "0"}), fake.Knob({"NVIDIA_TF32_OVERRIDE": "0"})):
        knob.allow_tf32 = True
        assert not knob.tf32()


@pytest.mark.parametrize("forced", [False, True])
def test_the_2_9_model_matches_the_installed_torch(forced):
    """The installed torch (>= 2.9) shows the same initial values, the same explicit-setting-wins rule and the same
    error for mixed APIs; run in a fresh process, as torch reads the variable once."""
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= fake.NEW_API
    code = (
        "import torch\n"
        "m = torch.backends.cuda.matmul\n"
        "out = [m.fp32_precision, m.allow_tf32]\n"
        "m.fp32_precision = 'ieee'\n"
        "try:\n    out.append(m.allow_tf32)\nexcept RuntimeError as e:\n    out.append('mixed' if 'mix of the' in str(e) else str(e))\n"
        "m.allow_tf32 = False\n"
        "out += [m.fp32_precision, m.allow_tf32]\n"
        "print(out)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"}
    if forced:
        env.update(FORCED)
    real = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    knob = fake.Knob(FORCED if forced else {})
    out = [knob.fp32_precision, knob.allow_tf32]
    knob.fp32_precision = "ieee"
    try:
        out.append(knob.allow_tf32)
    except RuntimeError:
        out.append("mixed")
    knob.allow_tf32 = False
    out += [knob.fp32_precision, knob.allow_tf32]
    assert real.strip() == str(out)
