#!/usr/bin/env bash
# The prepared GPU check, for whenever a GPU machine is at hand (after README's install):
#   bash tools/gpu_check.sh                      # CUDA, bf16, <= 8 minutes; figures -> gpu_check.json
#   bash tools/gpu_check.sh --cpu --out x.json   # the CPU mode CI runs: toy sizes, CUDA-only parts skipped, saying so
# Encoder and metrics benchmarks, a ViT-B-32 224 px training run with random weights on a generated QuickDraw-layout
# tree (images per second, peak GPU memory), the full QuickDraw-size evaluation time, and the notebooks' `#| cuda`
# cells. What each step does and the JSON it writes: tools/gpu_check.py. Exit status 1 if a step failed, ran over or found no time left.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg PYTHONUNBUFFERED=1
budget=460
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" = --budget ] && budget=${args[i+1]}; done
# a hard stop a little after the budget, in case a step cannot be interrupted (the JSON holds every finished step)
exec timeout --signal=INT --kill-after=5 $((${budget%.*} + 15)) python tools/gpu_check.py "$@"
