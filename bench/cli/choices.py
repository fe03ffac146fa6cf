"""The names the verbs offer and the defaults their help states, held without importing torch so that `bench --help`
and `bench VERB --help` answer at once. Each is the library's own definition, restated: tests/cli/test_lazy_cli.py
fails when one differs from bench.precision, bench.suite, bench.plans, bench.workloads.* or bench.challenge."""

from __future__ import annotations

from collections.abc import Mapping

#: bench.precision.PRECISIONS, in its order
PRECISIONS = ("float64", "float32", "tf32", "bfloat16", "float16", "float8_e4m3", "int8")
#: bench.suite.WORKLOADS
WORKLOADS = ("matmul", "membw", "train", "comm")
#: bench.workloads.train: PRECISIONS, the models and presets of PRESETS, and bench.plans.DEFAULT_TRAIN_PRESETS
TRAIN_PRECISIONS = ("float32", "bfloat16")
TRAIN_MODELS = ("gpt", "mlp")
TRAIN_PRESETS = ("tiny", "small", "gpt2-124m", "1b")
DEFAULT_TRAIN_PRESETS = {"cpu": ("tiny",), "cuda": ("small", "gpt2-124m")}
#: bench.workloads.comm.OPS
COMM_OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "sendrecv")
#: bench.workloads.matmul.DEFAULT_SIZE and bench.workloads.matmul_search's BUDGET_S, WINDOW_S, SETTLE_S
MATMUL_DEFAULT_SIZE = {"cpu": 2048, "cuda": 8192}
SEARCH_BUDGET_S = {"cpu": 30.0, "cuda": 300.0}
SEARCH_WINDOW_S = {"cpu": 2.0, "cuda": 10.0}
SEARCH_SETTLE_S = {"cpu": 0.0, "cuda": 20.0}
#: bench.disclosure.document.LEVELS, widest first
DISCLOSURE_LEVELS = ("country", "region", "city", "site")
#: bench.challenge.DTYPES
CHALLENGE_DTYPES = ("float64", "float32", "bfloat16", "float16")

_KINDS = {"cpu": "CPU", "cuda": "GPU"}


def per_kind(values: Mapping[str, object], unit: str = "") -> str:
    """A per-device-kind default as help text: {'cpu': 30.0, 'cuda': 300.0} -> '30 s on CPU, 300 s on GPU'."""

    def show(v: object) -> str:
        text = (
            " and ".join(map(str, v)) if isinstance(v, (tuple, list)) else f"{v:g}" if isinstance(v, float) else str(v)
        )
        return f"{text} {unit}".rstrip()

    return ", ".join(f"{show(v)} on {_KINDS.get(k, k)}" for k, v in values.items())
