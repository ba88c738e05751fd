#!/usr/bin/env python3
"""Images/s of the integer XNOR engine vs the float model's eval, same checkpoint, same run.

    .venv/bin/python benchmarks/xnor_throughput.py [--checkpoint PATH] [--images 1000] [--threads N]

Float model: fp32 eval (what `imcnoise eval --engine float` runs) and the fp64 reference used for
the spike-exact comparison. XNOR engine: the complementary-pair 0/1 product (`gemm`, default) and
XOR + popcount on packed 64-bit words (`popcount`, numpy.bitwise_count -> VPOPCNTDQ).
"""

from __future__ import annotations

import argparse

import torch

from _common import machine, shipped, timed
from imcnoise.data import load_dataset
from imcnoise.imc import evaluate_xnor, fold_checkpoint
from imcnoise.models.checkpoint import load_checkpoint
from imcnoise.training.evaluate import evaluate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", nargs="*", default=None)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpts = args.checkpoint or [str(shipped("fmnist-bsnn")), str(shipped("fmnist-bnn"))]
    print(f"machine: {machine()}\n")
    print("| checkpoint | engine | images/s | ratio vs float fp32 | accuracy |\n|---|---|---|---|---|")
    for ck in ckpts:
        model, meta = load_checkpoint(ck, device=args.device)
        data = load_dataset(meta["data"]["dataset"], "test").subset(args.images)
        prog = fold_checkpoint(ck)
        rows = []
        t32, r32 = timed(lambda: evaluate(model, data, batch_size=args.batch_size, precision="fp32", device=args.device))
        rows.append(("float fp32 (eval)", t32, r32.accuracy))
        t64, r64 = timed(lambda: evaluate(model, data, batch_size=args.batch_size, precision="fp64", device=args.device))
        rows.append(("float fp64 (reference)", t64, r64.accuracy))
        for be in ("gemm", "popcount"):
            t, r = timed(lambda: evaluate_xnor(prog, data, batch_size=args.batch_size, backend=be, device=args.device))
            rows.append((f"XNOR {be}", t, r.accuracy))
        for name, t, acc in rows:
            print(f"| {meta['model_config']['kind']} {meta['data']['dataset']} | {name} | {len(data) / t:.1f} | "
                  f"{t32 / t:.2f}x | {100 * acc:.2f} % |")


if __name__ == "__main__":
    main()
