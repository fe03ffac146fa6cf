#!/usr/bin/env bash
# bench's two commands:
#   ./run_bench.sh [BENCH ARGS...]   set up .venv if needed, then run configs/node.toml (or `bench BENCH ARGS...`)
#   ./run_bench.sh test [PYTEST ARGS...]   the same set-up, then the test suite
# Environment: PYTHON (interpreter for the venv; default python3, or a faster build of the same version: see
#              pick_python), BENCH_VENV (default .venv),
#              BENCH_TORCH_VERSION (CPU torch to install on machines without an NVIDIA GPU, default 2.13.0).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON_GIVEN=${PYTHON:-}
PYTHON=${PYTHON:-python3}
VENV=${BENCH_VENV:-.venv}
TORCH_VERSION=${BENCH_TORCH_VERSION:-2.13.0}
CPU_INDEX=https://download.pytorch.org/whl/cpu
# What `./run_bench.sh` with no arguments runs: the full node suite on every GPU, or the CPU when there is none.
DEFAULT_BENCH=(run --config configs/node.toml)

say() { printf '[run_bench] %s\n' "$*" >&2; }

has_nvidia_gpu() {
  { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; } || compgen -G '/dev/nvidia[0-9]*' >/dev/null
}

pip() { "$VENV/bin/python" -m pip "$@"; }

# bench needs Python 3.11 or newer (tomllib, and typing the code uses); say so before a venv is built with an older one.
check_python() {
  local py=$1 version
  if ! version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
    say "error: no Python at '$py'; install Python 3.11 or newer, or point PYTHON at one (PYTHON=python3.12 ./run_bench.sh)"
    exit 2
  fi
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "error: bench needs Python 3.11 or newer; '$py' is Python $version. Install a newer one and run" \
        "PYTHON=python3.11 ./run_bench.sh (or remove $VENV if it was built with the old one)"
    exit 2
  fi
}

# What an interpreter is, printed by itself: implementation, version, and whether libpython is linked into its
# executable ("static") or loaded as a shared library ("shared"); nothing when it cannot build a venv (no ensurepip).
# The marker comment lets the tests' stand-in interpreters recognise the question.
PROBE='# bench-python-probe
import sys, ensurepip, venv
maps = open("/proc/self/maps").read()
print(sys.implementation.name, "%d.%d" % sys.version_info[:2], "shared" if "/libpython" in maps else "static")'

# The interpreter a new venv is built with. The user's PYTHON always. Otherwise python3, unless python3 is CPython
# running from a shared libpython (as pyenv builds it, without PGO or LTO) and another interpreter on PATH, named
# python3 or python3.N, is CPython of the same version with libpython linked into its executable (as Debian,
# Ubuntu, conda and python-build-standalone ship it, built with PGO and LTO): bench's verification is pure Python,
# and on the project's machines Debian's build checked node reports with about a fifth less CPU (docs/disclosure.md).
# The same version, so that the same wheels install (a local CPU torch wheel above all).
pick_python() {
  local info impl version link py
  if [ -n "$PYTHON_GIVEN" ]; then echo "$PYTHON_GIVEN"; return; fi
  info=$(python3 -c "$PROBE" 2>/dev/null) || info=""
  read -r impl version link <<<"$info" || true
  if [ "${impl:-}" != cpython ] || [ "${link:-}" != shared ]; then echo python3; return; fi
  while IFS= read -r py; do
    if [ "$("$py" -c "$PROBE" 2>/dev/null)" = "cpython $version static" ]; then
      say "python3 is CPython $version on a shared libpython; $py is CPython $version with libpython linked in" \
          "(a distribution's build: faster; PYTHON=python3 ./run_bench.sh keeps python3)"
      echo "$py"
      return
    fi
  done < <(type -ap python3 "python$version" 2>/dev/null || true)
  echo python3
}

# PyPI's default torch for Linux is the multi-GB CUDA build. A machine without an NVIDIA GPU gets the CPU build,
# installed before the project so that the project's torch requirement is already met. A GPU node skips this and
# gets the CUDA build through the project's own requirement.
install_cpu_torch() {
  # 1. a CPU wheel pip can already see (a local wheelhouse or find-links, as on the CI machines)
  if pip install -q "torch==${TORCH_VERSION}+cpu" 2>/dev/null; then return; fi
  # 2. PyTorch's CPU index (any version, so the newest CPU build that pip's constraints allow)
  say "no local CPU wheel of torch ${TORCH_VERSION}; trying ${CPU_INDEX}"
  if pip install -q --timeout 60 --index-url "$CPU_INDEX" torch; then return; fi
  say "warning: no CPU build of torch could be installed; the project's default (CUDA) build will be"
}

# PyPI's default torch follows the newest CUDA (13.0 from torch 2.11), which needs driver 580+. On an older driver that
# torch sees no GPU at all, and the node would be benchmarked as a CPU (bench refuses that, naming the mismatch). Take
# the newest torch built for a CUDA the driver runs, from PyTorch's index for it.
install_cuda_torch() {
  local driver major index=""
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1)
  major=${driver%%.*}
  case "$major" in ''|*[!0-9]*) return ;; esac
  if [ "$major" -ge 580 ]; then return
  elif [ "$major" -ge 570 ]; then index=cu128
  elif [ "$major" -ge 560 ]; then index=cu126
  elif [ "$major" -ge 550 ]; then index=cu124
  elif [ "$major" -ge 530 ]; then index=cu121
  else index=cu118
  fi
  say "NVIDIA driver $driver: installing torch built for ${index} (PyPI's default needs driver 580+)"
  pip install -q --timeout 60 --index-url "https://download.pytorch.org/whl/${index}" "torch>=2.4" ||
    say "warning: no torch for ${index}; the project's default build will be tried"
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then PYTHON=$(pick_python); fi
  check_python "$([ -x "$VENV/bin/python" ] && echo "$VENV/bin/python" || echo "$PYTHON")"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    if has_nvidia_gpu; then
      install_cuda_torch
    else
      say "no NVIDIA GPU: installing the CPU build of torch"
      install_cpu_torch
    fi
  fi
  # Reinstall the project only when its dependency list changed since the last install into this venv.
  local stamp="$VENV/.bench-installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing bench and its dependencies into $VENV"
    pip install -q -e '.[dev]'
    echo "$want" >"$stamp"
  fi
}

setup
if [ "${1:-}" = "test" ]; then
  shift
  exec "$VENV/bin/python" -m pytest "$@"
fi
if [ $# -eq 0 ]; then
  set -- "${DEFAULT_BENCH[@]}"
fi
exec "$VENV/bin/bench" "$@"
