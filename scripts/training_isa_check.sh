#!/usr/bin/env bash
# Is fp32 training bit-reproducible, and across which machines? Trains the same short run (B-SNN, 10 steps of
# 64 images, seed 0, 1 thread) twice with oneDNN's default kernels for this CPU and twice with oneDNN held to
# AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, as on a CPU without AVX-512), and compares every tensor of the four networks.
# Usage: scripts/training_isa_check.sh [workdir]   (~2 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
for run in a b; do
  for isa in default AVX2; do
    if [ "$isa" = default ]; then unset ONEDNN_MAX_CPU_ISA; else export ONEDNN_MAX_CPU_ISA=AVX2; fi
    .venv/bin/imcnoise train --model bsnn --width 0.25 --timesteps 8 --epochs 1 --batch-size 64 --train-limit 640 \
      --eval-limit 100 --precision fp32 --seed 0 --threads 1 --out "$work/$isa-$run" > "$work/$isa-$run.log" 2>&1
  done
done
unset ONEDNN_MAX_CPU_ISA
.venv/bin/python - "$work" <<'PY'
import sys
import torch
from imcnoise.models.checkpoint import machine_description
w = sys.argv[1]
st = {n: torch.load(f"{w}/{n}/model.pt", weights_only=False, map_location="cpu")["state"]
      for n in ("default-a", "default-b", "AVX2-a", "AVX2-b")}
def compare(x, y):
    keys = [k for k in st[x] if torch.is_tensor(st[x][k])]
    if all(torch.equal(st[x][k], st[y][k]) for k in keys):
        return "identical"
    d = max(float((st[x][k].double() - st[y][k].double()).abs().max()) for k in keys if st[x][k].is_floating_point())
    return f"differ (largest |difference| of a parameter {d:.3g})"
print(f"machine: {machine_description()}, torch {torch.__version__}")
for x, y in (("default-a", "default-b"), ("AVX2-a", "AVX2-b"), ("default-a", "AVX2-a")):
    print(f"{x} vs {y}: {compare(x, y)}")
PY
