#!/usr/bin/env bash
# Train the four shipped checkpoints with the project's own `imcnoise train` and copy each
# result (model.pt, MODEL_CARD.md, history.json) into imcnoise/checkpoints/<preset>/.
# Resumable: rerunning continues every unfinished run from runs/<preset>/last.pt.
# Usage: scripts/train_shipped.sh [preset ...]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
IMCNOISE=${IMCNOISE:-.venv/bin/imcnoise}
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(fmnist-bnn fmnist-bsnn cifar10jpeg-bnn cifar10jpeg-bsnn)
for p in "${presets[@]}"; do
  echo "== $p ($(date -u +%FT%TZ))"
  "$IMCNOISE" train --preset "$p" --out "runs/$p" --resume
  mkdir -p "imcnoise/checkpoints/$p"
  cp "runs/$p/model.pt" "runs/$p/MODEL_CARD.md" "runs/$p/history.json" "imcnoise/checkpoints/$p/"
done
