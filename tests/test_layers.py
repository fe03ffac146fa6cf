"""The house reads top to bottom: the report layer and the figures under it import no torch and nothing above them.

CLI -> suite/runner/plans -> workloads -> measure/hardware, and report/verify/aggregate over the pure bottom layer
(bench.figures, bench.model.reports). An import running back up (report -> workloads) is what made verify load torch.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Modules above the report layer, which nothing in it (or in bench.figures) may import.
UPWARD = (
    "torch",
    "bench.workloads",
    "bench.cli",
    "bench.plans",
    "bench.runner",
    "bench.challenge",
    "bench.disclosure",
    "bench.audit",
    "bench.orchestrate",
)
#: Report-layer files allowed a heavy import, each with why (none: the challenge's torch check lives in bench.challenge).
EXEMPT: dict[str, str] = {}


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at module level or inside a function; not those under `if TYPE_CHECKING:`
    (annotations only, never run)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.extend([node.module] + [f"{node.module}.{a.name}" for a in node.names])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


BOTTOM = [
    *sorted((ROOT / "bench" / "report").glob("*.py")),
    *sorted((ROOT / "bench" / "registry").glob("*.py")),
    ROOT / "bench" / "figures.py",
    ROOT / "bench" / "suite.py",
]


@pytest.mark.parametrize("path", [p for p in BOTTOM if p.name not in EXEMPT], ids=lambda p: p.name)
def test_no_import_runs_back_up(path):
    """Every import, module level or inside a function (a lazy import is still a dependency)."""
    bad = [n for n in _imports(path) if any(n == u or n.startswith(u + ".") for u in UPWARD)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


#: The whole house, top to bottom: what each part may not import (the layers above it). The CLI is the top.
ABOVE = {
    "bench/orchestrate.py": ("bench.cli",),
    "bench/audit.py": ("bench.cli", "bench.orchestrate", "bench.workloads", "bench.plans", "bench.runner", "torch"),
    "bench/plans.py": ("bench.cli", "bench.orchestrate"),
    "bench/runner.py": ("bench.cli", "bench.orchestrate", "bench.plans"),
    "bench/suite.py": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.runner", "bench.workloads", "torch"),
    "bench/workloads": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.runner", "bench.suite"),
    "bench/measure": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.runner", "bench.suite",
                      "bench.workloads", "bench.report", "bench.registry"),
    "bench/hardware": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.runner", "bench.suite",
                       "bench.workloads", "bench.report", "bench.registry", "bench.measure"),
    "bench/registry": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.runner", "bench.workloads", "torch"),
    "bench/figures.py": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.runner", "bench.workloads",
                         "bench.report", "bench.registry", "torch"),
    "bench/challenge": ("bench.cli", "bench.orchestrate"),
    "bench/disclosure": ("bench.cli", "bench.orchestrate", "bench.plans", "bench.workloads"),
}  # fmt: skip


@pytest.mark.parametrize("part", sorted(ABOVE))
def test_each_layer_imports_only_below_it(part):
    root = ROOT / part
    files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
    bad = [f"{f.relative_to(ROOT)}: {n}" for f in files for n in _imports(f)
           if any(n == u or n.startswith(u + ".") for u in ABOVE[part])]  # fmt: skip
    assert not bad, bad


def test_the_walk_finds_an_upward_import(tmp_path):
    """The check above can fail: a module that imports a workload inside a function is caught."""
    f = tmp_path / "bad.py"
    f.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n"
        "def f():\n    from bench.workloads import matmul\n    import torch\n"
    )
    assert {"bench.workloads.matmul", "torch"} <= set(_imports(f))
    assert "pandas" not in _imports(f)  # an annotation-only import is not a dependency


def _loaded(modules: list[str]) -> dict[str, bool]:
    code = (f"import sys, json\nfor m in {modules!r}: __import__(m)\n"
            "print(json.dumps({k: k in sys.modules for k in ('torch', 'matplotlib', 'bench.workloads')}))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_verify_and_aggregate_load_neither_torch_nor_matplotlib():
    loaded = _loaded(["bench.figures", "bench.model.reports", "bench.report.verify", "bench.report.aggregate",
                      "bench.registry", "bench.suite"])  # fmt: skip
    assert loaded == {"torch": False, "matplotlib": False, "bench.workloads": False}


def test_an_audit_loads_neither_torch_nor_matplotlib():
    """bench verify's library half (bench.audit, over report and disclosure) runs on an auditor's laptop."""
    loaded = _loaded(["bench.audit", "bench.disclosure.document", "bench.disclosure.sampling"])
    assert loaded == {"torch": False, "matplotlib": False, "bench.workloads": False}


def test_report_and_export_load_no_torch():
    loaded = _loaded(["bench.report.render", "bench.report.export", "bench.report.metrics", "bench.report.html",
                      "bench.report.plots", "bench.report.capacity", "bench.report.gates"])  # fmt: skip
    assert not loaded["torch"] and not loaded["bench.workloads"]


def test_the_subprocess_check_sees_torch():
    """The check can fail: importing a workload does load torch."""
    assert _loaded(["bench.workloads.matmul"])["torch"]
