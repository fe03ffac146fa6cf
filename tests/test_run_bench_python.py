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


# Stand-in interpreters for run_bench.sh's choice of one (pick_python): each answers the probe with what it is
# (implementation, version, libpython shared or linked in), says its version to check_python, and when asked to
# build the venv writes its own name to $MARK and fails, so that nothing is installed.
_FAKE = """#!/bin/sh
case "$2" in
  *bench-python-probe*) echo "{probe}"; exit 0;;
  *print*) echo {version}; exit 0;;
  *exit*) exit 0;;
esac
echo "$0" > "$MARK"
exit 7
"""


def _fakes(tmp_path: Path, **probes: str) -> Path:
    """A PATH folder holding run_bench.sh's tools (bash and the few commands it calls first) and the stand-ins,
    named as keys (python3, python3_11 for python3.11), each answering the probe with its value."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "dirname", "cat", "cut", "sha256sum", "env"):
        real = subprocess.run(["bash", "-c", f"type -P {tool}"], capture_output=True, text=True, check=True)
        (folder / tool).symlink_to(real.stdout.strip())
    for name, probe in probes.items():
        fake = folder / name.replace("_", ".")
        fake.write_text(_FAKE.format(probe=probe, version=probe.split()[1]))
        fake.chmod(0o755)
    return folder


def _setup(tmp_path: Path, path: Path | str, python: str | None = None) -> tuple[subprocess.CompletedProcess, str]:
    env = {"PATH": str(path), "BENCH_VENV": str(tmp_path / "venv"), "MARK": str(tmp_path / "mark")}
    if python is not None:
        env["PYTHON"] = python
    proc = subprocess.run([str(ROOT / "run_bench.sh"), "--help"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)  # fmt: skip
    mark = tmp_path / "mark"
    return proc, mark.read_text().strip() if mark.exists() else ""


def test_a_build_of_the_same_version_with_libpython_linked_in_is_preferred(tmp_path):
    folder = _fakes(tmp_path, python3="cpython 3.11 shared", python3_11="cpython 3.11 static")
    proc, built_by = _setup(tmp_path, folder)
    assert built_by == str(folder / "python3.11"), proc.stderr
    assert "python3 is CPython 3.11 on a shared libpython" in proc.stderr
    assert f"creating {tmp_path / 'venv'} with {folder / 'python3.11'}" in proc.stderr


def test_the_users_python_wins(tmp_path):
    folder = _fakes(tmp_path, python3="cpython 3.11 shared", python3_11="cpython 3.11 static")
    proc, built_by = _setup(tmp_path, folder, python=str(folder / "python3"))
    assert built_by == str(folder / "python3"), proc.stderr
    assert "libpython" not in proc.stderr  # nothing was probed or proposed


def test_python3_is_kept_when_nothing_is_faster_or_it_is_not_the_same_version(tmp_path):
    # another version (its wheels may not be installable here), a shared build like python3's, another
    # implementation: none is taken
    folder = _fakes(tmp_path, python3="cpython 3.11 shared", python3_11="cpython 3.12 static")
    (folder / "other").mkdir()
    for name, probe in (("python3", "cpython 3.11 shared"), ("python3.11", "pypy 3.11 static")):
        fake = folder / "other" / name
        fake.write_text(_FAKE.format(probe=probe, version="3.11"))
        fake.chmod(0o755)
    proc, built_by = _setup(tmp_path, f"{folder}:{folder / 'other'}")
    assert built_by == str(folder / "python3"), proc.stderr
    assert "libpython" not in proc.stderr


def test_a_python3_that_is_already_linked_in_is_kept(tmp_path):
    folder = _fakes(tmp_path, python3="cpython 3.11 static", python3_11="cpython 3.11 static")
    proc, built_by = _setup(tmp_path, folder)
    assert built_by == str(folder / "python3"), proc.stderr
