"""The names the verbs offer and the defaults their help states, without importing torch, so that `bench --help`
and `bench VERB --help` answer at once. Where the library's definition lives in a torch-free module (bench.precision,
bench.suite, bench.figures, bench.registry) it is used as is; the few that live beside torch code (the matmul and search
defaults, the suite's default training presets, the challenge's dtypes, the disclosure levels) are restated here, and
tests/cli/test_lazy_cli.py fails when one differs from the library's."""

from __future__ import annotations

from collections.abc import Mapping

from bench import precision, suite
from bench.figures import COMM_OPS
from bench.model import specs as train_specs

#: every precision bench measures (bench.precision.PRECISIONS), in its order
PRECISIONS = tuple(precision.PRECISIONS)
#: the suite's workloads (bench.registry, through bench.suite)
WORKLOADS = tuple(suite.workload_names())
#: training: its precisions, models and their presets (bench.model.specs)
TRAIN_PRECISIONS = tuple(train_specs.PRECISIONS)
TRAIN_MODELS = tuple(train_specs.PRESETS)
TRAIN_PRESETS = tuple(dict.fromkeys(p for presets in train_specs.PRESETS.values() for p in presets))
#: the collectives bench comm times (bench.figures.COMM_OPS)
COMM_OPS = tuple(COMM_OPS)

# Restated (their modules load torch, numpy or pandas): ----------------------------------------------------------------
#: bench.planning.train.DEFAULT_PRESETS
DEFAULT_TRAIN_PRESETS = {"cpu": ("tiny",), "cuda": ("small", "gpt2-124m")}
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
