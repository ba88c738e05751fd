#!/usr/bin/env bash
# Regenerate the reference results under results/ (sweeps of the shipped scenarios, exactness
# report, benchmark tables) and record commands and date in results/README.md.
# Usage: scripts/regenerate_results.sh [scenario ...]   (default: stt_mram rram cifar10_jpeg)
set -euo pipefail
cd "$(dirname "$0")/.."
export IMCNOISE_DATA_DIR=${IMCNOISE_DATA_DIR:-$(cd .. && pwd)/shared/data}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(stt_mram rram cifar10_jpeg)
log=results/README.md
mkdir -p results
for s in "${scenarios[@]}"; do
  rm -rf "results/$s"
  start=$(date +%s)
  .venv/bin/imcnoise sweep "scenarios/$s.yaml" --no-progress | tee "results/$s.log"
  echo "$s $(( $(date +%s) - start ))" >> results/.timings
done
