#!/usr/bin/env bash
# Train the shipped checkpoints with the project's own `imcnoise train` and copy each result
# (model.pt, MODEL_CARD.md, history.json) into imcnoise/checkpoints/<preset>/.
# Resumable: rerunning continues every unfinished run from runs/<preset>/last.pt.
# Order matters: fmnist-float is the distillation teacher of fmnist-bsnn / fmnist-bnn (kept in
# runs/, not shipped), and the -hw, -t4 and -t16 presets fine-tune the shipped fmnist pair (on sampled
# chips, or at another number of time steps).
# Usage: scripts/train_shipped.sh [preset ...]
#   (default: fmnist-float fmnist-bnn fmnist-bsnn fmnist-bnn-hw fmnist-bsnn-hw fmnist-bsnn-hw-frozen fmnist-bsnn-hw-ideal
#    fmnist-bsnn-hw-frozen-ideal fmnist-bsnn-t4 fmnist-bsnn-t16 cifar10jpeg-bnn cifar10jpeg-bsnn)
set -euo pipefail
cd "$(dirname "$0")/.."
IMCNOISE=${IMCNOISE:-.venv/bin/imcnoise}
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(fmnist-float fmnist-bnn fmnist-bsnn fmnist-bnn-hw fmnist-bsnn-hw fmnist-bsnn-hw-frozen fmnist-bsnn-hw-ideal fmnist-bsnn-hw-frozen-ideal fmnist-bsnn-t4
                                fmnist-bsnn-t16 cifar10jpeg-bnn cifar10jpeg-bsnn)
for p in "${presets[@]}"; do
  echo "== $p ($(date -u +%FT%TZ))"
  "$IMCNOISE" train --preset "$p" --out "runs/$p" --resume ${TRAIN_THREADS:+--threads "$TRAIN_THREADS"}
  if [ "$p" != fmnist-float ]; then
    mkdir -p "imcnoise/checkpoints/$p"
    cp "runs/$p/model.pt" "runs/$p/MODEL_CARD.md" "runs/$p/history.json" "imcnoise/checkpoints/$p/"
  fi
done
