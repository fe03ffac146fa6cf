"""run_bench.sh refuses a Python older than 3.11 with a clear message, before it builds anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, python: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHON": python, "BENCH_VENV": str(tmp_path / "venv")}
    return subprocess.run([str(ROOT / "run_bench.sh"), "--help"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)  # fmt: skip


def test_an_old_python_is_refused_with_what_to_do(tmp_path):
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\ncase "$2" in *print*) echo 3.9;; *exit*) exit 1;; esac\n')
    old.chmod(0o755)
    proc = _run(tmp_path, str(old))
    assert proc.returncode == 2
    assert "bench needs Python 3.11 or newer" in proc.stderr and "is Python 3.9" in proc.stderr
    assert not (tmp_path / "venv").exists()


def test_a_missing_python_is_named(tmp_path):
    proc = _run(tmp_path, str(tmp_path / "nope"))
    assert proc.returncode == 2 and "no Python at" in proc.stderr
