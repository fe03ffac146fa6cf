#!/usr/bin/env bash
# Download, here (where PyPI is reachable), the wheels bench needs on the lent H200 beyond its image, into .whl/ (git
# ignores it). That image's python3 (3.12) already holds torch with CUDA, numpy, pandas, click, psutil, nvidia-ml-py,
# rich, matplotlib, prometheus-client, scipy, pytest and pyyaml; it lacks cryptography (with cffi, pycparser) and
# rfc8785. Carry .whl to the device run (carry: [".whl"]) and tests/gpu/run_on_gpu.sh installs them offline.
#
#   bash tests/gpu/fetch_wheels.sh [PYTHON_VERSION]      # default 3.12
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${1:-3.12}
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  'cryptography>=42' 'cffi>=2.0' pycparser 'rfc8785>=0.1.4'
ls -l .whl
