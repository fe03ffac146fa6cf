#!/usr/bin/env bash
# The device check: set up .venv through ./run_bench.sh, then run every GPU path of bench as its own step, with its
# own timeout and verdict (tests/gpu/check.py). Not part of the CPU test suite.
#
#   bash tests/gpu/run_on_gpu.sh OUT_DIR [RETURN_DIR]
#   python tests/gpu/check.py OUT_DIR --dry-run          # the plan: every step's command, budget and timeout
#
# OUT_DIR gets logs/ (each step's stdout and stderr, apart), r/ (every signed report), fixtures/ (the real NVML
# inventory and the suite's report, to commit under tests/data/gpu/) and check.json (the PASS/FAIL table). RETURN_DIR,
# if given (the device tool's $OUT), gets four files: check.json, inventory.json, report.json, check-logs.tar.gz.
# Exit 0 when set-up and every required step passed, else 1.
#
# A machine that cannot reach PyPI but has a CUDA torch in python3 (the lent H200): carry the wheels bench needs beyond
# that image in .whl/ (bash tests/gpu/fetch_wheels.sh makes them here); .venv is then made offline from python3's
# packages plus .whl before ./run_bench.sh runs, and run_bench.sh finds it ready.
#
# Environment: PYTHON (default python3), BENCH_VENV (default .venv), BENCH_CHECK_TOTAL_S (the whole run, set-up
# included, default 540: the steps' deadline is cut so that set-up + steps + final verify end within it).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:?usage: bash tests/gpu/run_on_gpu.sh OUT_DIR [RETURN_DIR]}
RETURN_DIR=${2:-}
VENV=${BENCH_VENV:-.venv}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR/logs"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
SETUP_OUT="$OUT_DIR/logs/setup.stdout" SETUP_ERR="$OUT_DIR/logs/setup.stderr"
export PYTHONUNBUFFERED=1 BENCH_KEY="$OUT_DIR/node.pem"
# no pip retries against an index that cannot be reached
export PIP_RETRIES=${PIP_RETRIES:-1} PIP_TIMEOUT=${PIP_TIMEOUT:-20} PIP_DISABLE_PIP_VERSION_CHECK=1
say() { printf '[run_on_gpu] %s\n' "$*" >&2; }

# .venv from $PY's own packages (torch with CUDA, numpy, ...) and this checkout, both visible through a .pth file, plus
# the wheels in .whl/ installed with no index and nothing built; a `bench` script; then run_bench.sh's install stamp,
# so that run_bench.sh finds the venv ready and does not reinstall from PyPI.
seed_offline() {
  "$PY" -c 'import torch' || { say "$PY has no torch: no offline set-up"; return 1; }
  # --without-pip: a system python may lack ensurepip; $PY's own pip installs the wheels
  "$PY" -m venv --without-pip "$VENV" || return 1
  local own
  own=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
  { pwd; "$PY" -c 'import site; print("\n".join(site.getsitepackages()))'; } >"$own/_bench_offline.pth" || return 1
  if compgen -G '.whl/*.whl' >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --target "$own" .whl/*.whl || return 1
  fi
  printf '#!%s\nimport sys\nfrom bench.cli import main\nsys.exit(main())\n' "$(cd "$VENV" && pwd)/bin/python" >"$VENV/bin/bench"
  chmod +x "$VENV/bin/bench"
  "$VENV/bin/python" -c 'import torch, bench.cli, cryptography, rfc8785' || return 1
  sha256sum pyproject.toml | cut -d' ' -f1 >"$VENV/.bench-installed"
}

t0=$SECONDS
if [ -d .whl ] && [ ! -x "$VENV/bin/python" ]; then
  say "offline set-up: $VENV from $PY's packages and the wheels in .whl/"
  seed_offline >>"$SETUP_OUT" 2>>"$SETUP_ERR" || say "offline set-up failed; see $SETUP_ERR"
fi
say "set-up: ./run_bench.sh inventory"
./run_bench.sh inventory >>"$SETUP_OUT" 2>>"$SETUP_ERR"
setup_rc=$?
setup_s=$((SECONDS - t0))
say "set-up exit $setup_rc after ${setup_s} s"
[ "$setup_rc" -eq 0 ] || tail -n 20 "$SETUP_ERR" >&2

# the steps' deadline: what is left of the total after set-up, the final verify (60 s) and packing (15 s); 465 s at most.
# The total, 540 s, leaves 60 s of the device tool's 600 s per command unused (check.py's SLACK_S).
deadline=$((${BENCH_CHECK_TOTAL_S:-540} - setup_s - 75))
[ "$deadline" -gt 465 ] && deadline=465
[ "$deadline" -lt 0 ] && deadline=0  # a slow set-up leaves the steps less: they read "not run: time", the slack holds
CHECK_PY="$VENV/bin/python"
[ -x "$CHECK_PY" ] || CHECK_PY=$PY  # check.py is stdlib only: it still reports a failed set-up
args=("$OUT_DIR" --setup-rc "$setup_rc" --setup-seconds "$setup_s" --deadline "$deadline")
[ -n "$RETURN_DIR" ] && args+=(--return-dir "$RETURN_DIR")
exec "$CHECK_PY" tests/gpu/check.py "${args[@]}"
