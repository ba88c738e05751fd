#!/usr/bin/env bash
# Set up everything imcnoise needs, from a fresh clone, with no manual step:
#   * .venv with torch 2.13.0 (the CPU wheel on this kind of machine; pip picks the platform's
#     build elsewhere), aihwkit 1.1.0 WITHOUT its build-time dependencies (torchvision, cmake,
#     pybind11, scikit-build, mypy would drag in a multi-GB CUDA torch), and imcnoise itself;
#   * the Debian package dataset-fashion-mnist (the embedded default data set) where apt-get is
#     available and we are root; elsewhere the loader downloads and verifies the official files;
#   * a check that aihwkit's pure-torch inference tiles run with this torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
start=$(date +%s)
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=".venv/bin/pip --disable-pip-version-check -q"
$PIP install "torch==2.13.0"
$PIP install -e ".[test]"
# last, so that pip's resolver does not warn about aihwkit's (unneeded) declared dependencies
$PIP install --no-deps "aihwkit==1.1.0"
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
  else
    echo "note: dataset-fashion-mnist not installed (needs root + apt); imcnoise will download Fashion-MNIST on first use" >&2
  fi
fi
.venv/bin/python -m imcnoise.imc.aihwkit_check
echo "setup done in $(( $(date +%s) - start )) s"
