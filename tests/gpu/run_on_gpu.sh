#!/usr/bin/env bash
# The GPU paths, for real, in one short run (for a lent GPU machine or any GPU node). Not part of the CPU test suite.
#
#   bash tests/gpu/run_on_gpu.sh [OUT_DIR]        # default OUT_DIR: $OUT (device tool) or ./gpu-check
#
# Runs inventory, fixed-shape matmul on every precision, a short bf16 + fp8 MAMF/MSMF search, GPT-2-124M bf16
# training, STREAM membw with H2D/D2H, a one-rank NCCL comm sanity, a short `bench run` suite and a bf16 auditor
# challenge answered on the GPU and verified on the CPU; every report is signed, then verified.
# Copy a report into tests/data/ as a real-hardware fixture and note the figures on the issues.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:-${OUT:-./gpu-check}}
mkdir -p "$OUT_DIR"
export BENCH_KEY="$OUT_DIR/key.pem" PYTHONUNBUFFERED=1
BENCH=${BENCH:-bench}
command -v "$BENCH" >/dev/null || BENCH="python3 -m bench"
run() { echo "+ $*" >&2; "$@" 2>&1 | tee -a "$OUT_DIR/log.txt"; }

run $BENCH inventory --json > "$OUT_DIR/inventory.json"
run $BENCH matmul --device cuda:0 --budget 1 --results-dir "$OUT_DIR/r" --quiet
run $BENCH matmul --device cuda:0 --search auto --dtype bfloat16 --dtype float8_e4m3 --budget 60 --window 10 \
  --results-dir "$OUT_DIR/r" --quiet
run $BENCH train --device cuda:0 --model gpt --preset gpt2-124m --dtype bfloat16 --results-dir "$OUT_DIR/r" --quiet
run $BENCH membw --device cuda:0 --results-dir "$OUT_DIR/r" --quiet
run $BENCH comm --device cuda:0 --max-bytes 268435456 --factor 8 --iterations 10 --results-dir "$OUT_DIR/r" --quiet
# the suite (short budgets) and an auditor challenge answered by the GPU, verified on the CPU
run $BENCH run --config configs/node.toml --device cuda:0 --set matmul.budget_s=20 --set matmul.window_s=5 \
  --set 'matmul.precisions=["bfloat16"]' --set 'train.presets=["small"]' --results-dir "$OUT_DIR/r" --quiet
mkdir -p "$OUT_DIR/drop"
run $BENCH challenge issue -o "$OUT_DIR/challenge.json" --dtype bfloat16 --n 8192 --products 4 --window 5m
$BENCH challenge collect "$OUT_DIR/drop" --challenge "$OUT_DIR/challenge.json" -o "$OUT_DIR/receipts.json" --expect 1 &
sleep 1
run $BENCH challenge answer "$OUT_DIR/challenge.json" --drop "$OUT_DIR/drop" --device cuda:0
wait
run $BENCH challenge verify "$OUT_DIR/challenge.json" "$OUT_DIR/drop" --receipts "$OUT_DIR/receipts.json"
rm -rf "$OUT_DIR/drop"/*/  # the revealed products are large; the commitments and receipts stay
run $BENCH verify "$OUT_DIR"/r/*/report.json
