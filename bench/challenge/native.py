"""C kernels for a node's CPU work inside the window, compiled where they run (issue 23).

Each kernel is a small C file next to this module, compiled by the platform's C compiler for this CPU (so the
compiler may use its vector units) when the node warms up, and loaded through ctypes (which releases the GIL while
a kernel runs). Callers keep a kernel only after a probe shows it gives the torch path's bits, and fall back to the
torch path (same bits, slower) where no compiler is found: tests/challenge/test_fold.py and test_generator.py."""

from __future__ import annotations

import ctypes
import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path

#: A library compiled from each source (by file name), or why it could not be.
_LIBRARIES: dict[str, ctypes.CDLL | str] = {}


def compile_library(source: Path) -> tuple[ctypes.CDLL | None, str | None]:
    """`source` compiled by CC (else Python's compiler, else cc) for this CPU and loaded, its file removed once
    loaded; or (None, why not). Once per process and source."""
    got = _LIBRARIES.get(str(source))
    if got is None:
        got = _LIBRARIES[str(source)] = _compile(source)
    return (got, None) if isinstance(got, ctypes.CDLL) else (None, got)


def _compile(source: Path) -> ctypes.CDLL | str:
    """`source` compiled and loaded, or why not. The compiler: CC from the environment (the user's, the only one then
    tried), else the interpreter's own (sysconfig), else cc, and cc too where the interpreter's is not found: an
    interpreter built elsewhere names its build machine's compiler (conda's x86_64-conda-linux-gnu-cc,
    python-build-standalone's clang under /tools), absent on a node, and run_bench.sh may build the venv with such a
    CPython (its pick_python): every kernel was refused as "no C compiler" though cc was on PATH."""
    given = os.environ.get("CC")
    cc = shlex.split(given or sysconfig.get_config_var("CC") or "cc")
    try:
        return _compile_with(cc, source)
    except FileNotFoundError as exc:
        if given or cc[:1] == ["cc"]:
            return f"no C compiler ({exc})"
        try:
            return _compile_with(["cc"], source)
        except FileNotFoundError as again:
            return f"no C compiler ({exc}; {again})"


def _compile_with(cc: list[str], source: Path) -> ctypes.CDLL | str:
    with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
        so = Path(tmp) / f"{source.stem}.so"
        for arch in (["-march=native"], []):  # -march=native: the CPU's widest vectors where the compiler knows it
            cmd = [*cc, "-O3", *arch, "-ffp-contract=off", "-shared", "-fPIC", "-o", str(so), str(source)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            except FileNotFoundError:
                raise  # _compile may try cc
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"no C compiler ({exc})"
            if done.returncode == 0:
                return ctypes.CDLL(str(so))  # loaded: the file may go
        return f"{cc[0]} failed: {done.stderr.strip()[:200]}"
