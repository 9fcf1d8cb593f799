#!/usr/bin/env bash
# On a CUDA machine: the seed's Breakout example with its model on GPU 0 for a time budget
# (its games in results/gpu_breakout/games.csv, the curve in results/gpu_breakout/), then
# the throughput benchmark with both FLARE's and SB3's models on the GPU
# (results/atari_gpu.json). The seed reports a mean reward of 250 after 100k games.
#   benchmarks/gpu_atari.sh [SECONDS]     (default 3600 for the example)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SECONDS_BUDGET=${1:-3600}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
OUT=benchmarks/results/gpu_breakout
mkdir -p "$OUT"
# (the example runs until its games are played; the budget ends it with SIGTERM, which
# stops a run cleanly: games.csv and the model are kept)
timeout --signal=TERM --kill-after=60 "$SECONDS_BUDGET" \
    "$PY" examples/img_ac_example.py --gpu-id 0 --log-dir "$OUT" --model-dir "$OUT" || true
"$PY" -m flare plot "$OUT" || true
"$PY" benchmarks/atari.py --gpu-id 0 --out benchmarks/results/atari_gpu.json
