"""The house reads top to bottom: every room imports only the floors below it, no import runs round a circle between
rooms, and the report layer and the figures import no torch.

The floors are written once, in bench/__init__.py's docstring (what a newcomer opens first); this file reads them.
An import running back up (report -> workloads) is what made verify load torch; a circle between two rooms
(registry <-> report, model <-> sign) is what made the data model stand on the report layer.
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bench"


def floors(doc: str) -> list[list[str]]:
    """The floors in bench's docstring, top first: each indented line's room names, before its description (two or
    more spaces on). A name ending in * is torch-free (kept, with its star)."""
    out = []
    for line in doc.splitlines():
        if line.startswith("    ") and line.strip():
            out.append(re.split(r"\s{2,}", line.strip())[0].split())
    return out


FLOORS = floors(bench.__doc__ or "")
#: room -> its floor, counted from the top
FLOOR = {name.rstrip("*"): i for i, rooms in enumerate(FLOORS) for name in rooms}
TORCH_FREE = {name.rstrip("*") for rooms in FLOORS for name in rooms if name.endswith("*")}


def _imports(path: Path, top_level: bool = False) -> list[str]:
    """Every module a file imports, at module level or inside a function; not those under `if TYPE_CHECKING:`
    (annotations only, never run). `top_level`: only what importing the file runs (its top, inside `if` and `try`
    too), not inside a function or class body."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if top_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return
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


def _loads_its_package(path: Path) -> bool:
    """A package __init__ that imports every module beside it by name at run time (pkgutil.iter_modules(__path__),
    as bench.registry finds its descriptors): an import of each, which the walk above cannot see."""
    return path.name == "__init__.py" and "pkgutil.iter_modules(__path__)" in path.read_text()


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (`from a import b` counts as importing a.b when b is a
    module, else a)."""
    mods = modules(package)
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        for imported in _imports(path):
            if imported in mods and imported != name:
                graph[name].add(imported)
        if _loads_its_package(path):
            graph[name] |= {m for m in mods if m.rpartition(".")[0] == name}
    return graph


def room(module: str) -> str:
    """The room a module is in: bench.report.verify -> report, bench.figures -> figures."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root, edges in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(edges)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


GRAPH = import_graph()


def test_every_room_is_on_a_floor():
    """A new folder or top-level module has to be placed in bench/__init__.py's table before it can be imported."""
    rooms = {room(m) for m in GRAPH} - {""}
    assert FLOORS and not rooms - FLOOR.keys(), (
        f"rooms on no floor (add them to bench/__init__.py): {rooms - FLOOR.keys()}"
    )
    assert not FLOOR.keys() - rooms, f"floors name rooms that do not exist: {FLOOR.keys() - rooms}"


@pytest.mark.parametrize("name", sorted(FLOOR))
def test_each_room_imports_only_the_floors_below_it(name):
    """Every import, module level or inside a function (a lazy import is still a dependency)."""
    bad = sorted(f"{m} -> {i} ({room(i)} is on floor {FLOOR[room(i)]}, {name} on {FLOOR[name]})"
                 for m, imported in GRAPH.items() if room(m) == name
                 for i in imported if room(i) not in ("", name) and FLOOR[room(i)] <= FLOOR[name])  # fmt: skip
    assert not bad, bad


def _torch(name: str) -> bool:
    return name == "torch" or name.startswith("torch.")


@pytest.mark.parametrize("name", sorted(TORCH_FREE))
def test_torch_free_rooms_load_no_torch(name):
    """A starred room's files import no torch, anywhere in them; and nothing they import, however deep, imports torch
    at its top (bench.precision may, inside the function that asks for a dtype)."""
    mods = modules()
    loads_torch = {m for m, p in mods.items() if any(map(_torch, _imports(p, top_level=True)))}
    own = [m for m in mods if room(m) == name]
    bad = [f"{m}: {n}" for m in own for n in _imports(mods[m]) if _torch(n)]
    for m in own:
        seen, todo = set(), [m]
        while todo:
            for nxt in GRAPH[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        bad += [f"{m} -> ... -> {t} (imports torch)" for t in sorted(seen & loads_torch)]
    assert not bad, bad


def test_no_circle_runs_between_rooms():
    """Modules of one room may lean on each other (a package and its modules); a circle through two rooms means
    neither is below the other."""
    bad = [sorted(c) for c in circles(GRAPH) if len({room(m) for m in c}) > 1]
    assert not bad, f"import circles between rooms: {bad}"


def test_the_report_layer_names_no_workloads_descriptor():
    """bench.report reads every workload through the registry (workloads(), get()), so a new one needs no edit there:
    no report module imports a descriptor module (bench.registry.<name>) by name; a verb that shows one workload's
    table calls that descriptor itself."""
    descriptors = {m for m in GRAPH if m.startswith("bench.registry.")}
    bad = sorted(f"{m} -> {i}" for m, imported in GRAPH.items() if room(m) == "report" for i in imported & descriptors)
    assert not bad, bad


def test_the_walk_finds_an_upward_import(tmp_path):
    """The checks above can fail: a module that imports a workload inside a function is caught."""
    f = tmp_path / "bad.py"
    f.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n"
        "def f():\n    from bench.workloads import matmul\n    import torch\n"
    )
    assert {"bench.workloads.matmul", "torch"} <= set(_imports(f))
    assert "pandas" not in _imports(f)  # an annotation-only import is not a dependency


def test_the_circle_finder_finds_a_circle_between_rooms(tmp_path):
    """A circle two rooms deep through a lazy import, and a registry that loads its modules by name, are found;
    a chain without a circle is not."""
    pkg = tmp_path / "bench"
    for path, text in {
        "__init__.py": "",
        "model/__init__.py": "",
        "model/reports.py": "def f():\n    from bench.model import sign\n",
        "model/sign.py": "from bench.report import keys\n",
        "report/__init__.py": "",
        "report/keys.py": "import bench.model.reports\n",
        "registry/__init__.py": "import importlib, pkgutil\nfor m in pkgutil.iter_modules(__path__):\n    pass\n",
        "registry/comm.py": "from bench.report import render\n",
        "report/render.py": "from bench import registry\n",
        "figures.py": "from bench.model import reports\n",
    }.items():
        (pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / path).write_text(text)
    found = sorted(sorted(c) for c in circles(import_graph(pkg)))
    assert found == [["bench.model.reports", "bench.model.sign", "bench.report.keys"],
                     ["bench.registry", "bench.registry.comm", "bench.report.render"]]  # fmt: skip
    assert [["x", "y"]] == [sorted(c) for c in circles({"x": {"y"}, "y": {"x"}, "z": {"x"}})]


def test_the_floors_are_read_from_the_docstring():
    assert floors("x\n\n    a b*   what they hold\n    c\n") == [["a", "b*"], ["c"]]
    assert FLOOR["model"] == len(FLOORS) - 1 and "model" in TORCH_FREE and "report" in TORCH_FREE


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
