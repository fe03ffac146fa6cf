"""The command line only parses: `bench --help` and every `bench VERB --help` load no torch, pandas, matplotlib,
numpy or scipy (checked by what is in sys.modules, not by timing); the names the help offers are the library's own;
no help shows a Python dict, list or tuple as a default; verbs share helpers only through bench/cli's shared modules."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench.cli import VERBS, choices, main

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pandas", "matplotlib", "numpy", "scipy")
#: the modules of bench/cli that every verb may import; a verb module never imports another verb's
SHARED = {"choices", "inputs", "options", "output", "params", "progress", "ranks", "repeat"}


def _commands(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, click.Context(cmd, info_name=name, parent=ctx), (*prefix, name))
    return out


def every_command() -> list[tuple[str, ...]]:
    return _commands(main, click.Context(main, info_name="bench"))


def _in_fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False
    )


def test_bench_help_loads_none_of_the_heavy_libraries():
    code = ("import runpy, sys\nsys.argv = ['bench', '--help']\ntry:\n    runpy.run_module('bench', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
            f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)")  # fmt: skip
    result = _in_fresh_python(code)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stderr, result.stderr
    assert "Commands:" in result.stdout and all(f"  {verb} " in result.stdout for verb in VERBS)


def test_every_verb_and_sub_verb_help_loads_none_of_the_heavy_libraries():
    """One fresh interpreter shows every verb's help in turn; after each, none of HEAVY may be loaded."""
    code = f"""
import json, sys
from click.testing import CliRunner
from bench.cli import main
seen = {{}}
for argv in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, [*argv, "--help"])
    assert result.exit_code == 0, (argv, result.output)
    seen[" ".join(argv)] = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps(seen))
"""
    commands = every_command()
    assert ("challenge", "answer") in commands and ("export", "csv") in commands and ("keys", "init") in commands
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", code, json.dumps(commands)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert len(seen) == len(commands)
    assert {verb: loaded for verb, loaded in seen.items() if loaded} == {}


def test_the_lazy_table_names_every_verb_once_and_each_entry_is_its_command():
    for name, target in VERBS.items():
        module, _, attr = target.partition(":")
        assert module.startswith("bench.cli.") and attr
        assert main.get_command(click.Context(main), name) is not None
    assert main.get_command(click.Context(main), "no-such-verb") is None
    bad = CliRunner().invoke(main, ["no-such-verb"])
    assert bad.exit_code == 2 and "No such command" in bad.output


def test_the_names_the_help_offers_are_the_librarys_own():
    from bench import challenge, precision, suite
    from bench.model import keys
    from bench.planning import train as train_plan
    from bench.workloads import comm, matmul, matmul_search, train

    assert choices.PRECISIONS == tuple(precision.PRECISIONS) and "bfloat16" in choices.PRECISIONS
    assert choices.WORKLOADS == tuple(suite.workload_names()) and "comm" in choices.WORKLOADS
    assert choices.TRAIN_PRECISIONS == tuple(train.PRECISIONS)
    assert choices.TRAIN_MODELS == tuple(train.PRESETS)
    assert all(choices.TRAIN_PRESETS == tuple(presets) for presets in train.PRESETS.values())
    assert choices.DEFAULT_TRAIN_PRESETS == train_plan.DEFAULT_PRESETS
    assert choices.COMM_OPS == tuple(comm.OPS)
    assert choices.MATMUL_DEFAULT_SIZE == matmul.DEFAULT_SIZE
    assert (choices.SEARCH_BUDGET_S, choices.SEARCH_WINDOW_S, choices.SEARCH_SETTLE_S) == (
        matmul_search.BUDGET_S, matmul_search.WINDOW_S, matmul_search.SETTLE_S)  # fmt: skip
    assert choices.CHALLENGE_DTYPES == tuple(challenge.DTYPES)
    from bench.disclosure import document

    assert choices.DISCLOSURE_LEVELS == tuple(document.LEVELS)
    from bench.cli.options import KEY_ENV

    assert KEY_ENV == keys.KEY_ENV


#: a Python container shown as a default or in help: {'cpu': 1}, ('tiny',), ['a', 'b'], {1: 2}
REPR = re.compile(r"""[{\[(]\s*(?:'[^']*'|"[^"]*"|[\d.]+)\s*[,:)\]}]""")


@pytest.mark.parametrize("argv", every_command(), ids=" ".join)
def test_help_shows_defaults_as_people_write_them(argv):
    """Every option of every verb: no dict/list/tuple repr in its help or its shown default; a number with a unit."""
    ctx = click.Context(main, info_name="bench")
    cmd: click.Command = main
    for name in argv:
        assert isinstance(cmd, click.Group)
        cmd = cmd.get_command(ctx, name)  # type: ignore[assignment]
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    for param in cmd.params:
        record = param.get_help_record(ctx)
        if record is None:
            continue
        text = " ".join(record)
        assert not REPR.search(text), f"{' '.join(argv)} {record[0]}: {text}"
        if isinstance(param, click.Option) and param.show_default and not param.is_flag and param.default is not None:
            assert isinstance(param.default, (str, int, float, Path)), f"{record[0]} default {param.default!r}"


def test_the_audit_catches_a_repr():
    assert REPR.search("Default {'cpu': 2048, 'cuda': 8192}.") and REPR.search("Default ('tiny',)")
    assert REPR.search("[default: ['a', 'b']]") and not REPR.search("[default: 300.0; x>=1.0]")
    assert REPR.search("(default {'cpu': 30.0})") and REPR.search("[default: (1, 2)]")
    assert not REPR.search("Default 2048 on CPU, 8192 on GPU (h:mm:ss)") and not REPR.search("('#' comments)")


def test_a_verb_imports_no_other_verb():
    """Helpers verbs share live in SHARED modules; a verb importing another verb's module would drag it in."""
    verbs = {target.partition(":")[0].rsplit(".", 1)[1] for target in VERBS.values()}
    for path in sorted((ROOT / "bench" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []  # fmt: skip
            if isinstance(node, ast.ImportFrom) and node.module == "bench.cli":
                names = [f"bench.cli.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("bench.cli."):
                    imported = name.split(".")[2]
                    assert imported in SHARED, f"{path.name} imports {name}"
                    assert imported not in verbs


def test_membw_array_size_takes_a_plain_mib_or_a_human_size(tmp_path):
    from bench.cli.params import MebibyteParam

    p = MebibyteParam()
    assert p.convert("256", None, None) == 256.0 and p.convert("512M", None, None) == 512.0
    assert p.convert("1G", None, None) == 1024.0 and p.convert("64KiB", None, None) == 0.0625
    bad = CliRunner().invoke(main, ["membw", "--array-mib", "1Q"])
    assert bad.exit_code == 2 and "not a size" in bad.output
    bad = CliRunner().invoke(main, ["membw", "--array-mib", "-3"])
    assert bad.exit_code == 2 and "positive" in bad.output
    result = CliRunner().invoke(main, ["membw", "--device", "cpu", "--array-mib", "1M", "--budget", "0.01",
                                       "--results-dir", str(tmp_path), "--json", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["array_mib"] == 1.0


def test_the_terminal_bar_and_the_log_lines_show_one_estimate_of_what_is_left():
    from bench import runner
    from bench.cli import progress

    now = [100.0]
    steps = [runner.Step(f"cpu step {i}", list, device={"id": "cpu", "kind": "cpu"}) for i in range(3)]
    eta = progress.Eta(steps, [10.0, 10.0, 10.0], True, now=lambda: now[0])
    assert eta.begin(steps[0]) == 30.0 and eta.left() == 30.0
    now[0] += 5  # halfway through a step estimated at 10 s: 25 s left
    assert eta.left() == 25.0
    now[0] += 15  # the first step took 20 s, twice its estimate: the 20 s planned for the rest become 40 s
    assert eta.begin(steps[1]) == 40.0
    now[0] += 50  # the running step overran its 20 s: it still needs a quarter of its 50 s, then the last step
    assert eta.left() == 12.5 + 20.0
    bar = progress.Progress(quiet=True)
    assert bar.left_text() == ""
    bar.plan(steps)
    bar.eta = eta
    bar.step(steps[2])  # 70 s for 20 s of estimates: the last 10 s planned become 35 s, but 32.5 s were shown just now
    assert bar.left_text() == "~0:00:32 left" and bar.bars.tasks[0].completed == 0  # what is left never jumps up
    now[0] += 10  # the bar's column reads the Eta at every refresh: 35 - 10 s
    assert bar.left_text() == "~0:00:25 left"
    bar._show()  # the bar moves inside a step: 10 s of the 35 expected
    assert 0.2 < bar.bars.tasks[0].completed < 0.3


def test_a_gpu_node_whose_torch_sees_no_gpu_is_refused_in_one_line_not_measured_as_a_cpu(monkeypatch, tmp_path):
    import torch

    from bench.hardware import nvml
    from tests.fakes.nvml import H100, FakeNvml

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(nvml, "load_nvml", lambda: FakeNvml([H100, H100]))
    for verb in (["matmul", "--size", "16"], ["membw"]):
        result = CliRunner().invoke(main, [*verb, "--results-dir", str(tmp_path), "--quiet"])
        assert result.exit_code == 1 and "the driver sees 2 GPU" in result.output, result.output
        assert "Traceback" not in result.output and not list(tmp_path.glob("*/report.json"))


def test_device_means_the_same_in_every_verb_and_one_rank_takes_one(monkeypatch):
    """--device takes cpu, cuda:N or all everywhere; where a rank measures one device (train, comm), naming several is
    a usage error that says how to launch instead."""
    from bench.hardware import devices

    monkeypatch.setattr(devices, "cuda_count", lambda: 2)
    for verb in ("train", "comm"):
        result = CliRunner().invoke(main, [verb, "--device", "all"])
        assert result.exit_code == 2 and "names 2 devices (cuda:0, cuda:1)" in result.output, result.output
        assert "one rank per GPU" in result.output
    from bench.cli.params import DeviceParam, OneDeviceParam

    assert OneDeviceParam().convert("cuda:1", None, None) == "cuda:1"
    assert DeviceParam().convert("all", None, None) == ["cuda:0", "cuda:1"]
