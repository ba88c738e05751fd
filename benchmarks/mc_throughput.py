#!/usr/bin/env python3
"""Monte Carlo throughput: fast engine vs aihwkit path vs noise-free inference, same run.

    .venv/bin/python benchmarks/mc_throughput.py [--chips 8] [--images 200] [--k auto] [--device cpu|cuda]

Work: `--chips` chip instances x `--images` Fashion-MNIST test images, for the shipped
B-SNN and BNN. Reports chip-trials x images per second of both engines, checks that their
predictions are identical, times the noise-free float model's eval (what `imcnoise eval` runs,
fp32) on the same images, and gives the fast engine's effective MAC rate (XNOR cells read per
second) as a fraction of the fp32 GEMM peak (torch.mm, 2048^3) and of the fastest exact kernel
(int8 ``torch._int_mm`` with int32 sums, or fp32), all measured in the same run (bf16 shown too).
The noise-free baseline is the faster of the float eval and the integer XNOR engine on its best
exact path (``backend="auto"``: int8 or fp32, whichever a measured probe of each layer shape finds faster;
the fixed gemm and int8 paths are timed beside it). The last line is the summary: speed-up of the
fast engine over the aihwkit path, noisy cost per chip-image over noise-free cost per image, and
the shares of the fp32 and the fastest exact peak.

Chips (``--chip``): ``default`` -- the buildable default chip (imcnoise.imc.AnalogConfig(): merged-line
voltage sensing of 63-cell sensings, access transistors, 0.49 Ohm per cell pitch of wire, 6-bit ADCs shared by 8
lines, reference rows + trim read through the noisy path, 4.5 mV comparator offsets, kT/C) at its
measured MTJ spread (sigma 0.05); ``legacy`` -- the chip of the results before 2026-12
(scenarios/chips/legacy_2026_11.yaml) at sigma 0.04 with a 1-LSB comparator offset, the issue-12 setting;
or a chip YAML file.
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import machine, shipped, timed
from imcnoise.data import load_dataset
from imcnoise.imc import (AnalogChip, AnalogConfig, FastChipBatch, SenseAmpConfig, SttMramDevice, XnorEngine, auto_k,
                          evaluate, fold_checkpoint)
from imcnoise.models.checkpoint import load_checkpoint
from imcnoise.training.evaluate import evaluate as evaluate_float
from imcnoise.imc.engines import kernels
from imcnoise.imc.engines.kernels import int8_available


def _best_of(f, device, repeat=5) -> float:
    f()
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        f()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def gemm_peak_macs(device, n=2048, dtype=torch.float32) -> float:
    """MAC/s of one n^3 matrix product: fp32 / bf16 ``torch.mm``, or int8 ``torch._int_mm`` (int32
    accumulation, exact); 0 where the kernel does not exist on this device."""
    try:
        if dtype == torch.int8:
            a = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=device)
            b = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=device)
            return n ** 3 / _best_of(lambda: torch._int_mm(a, b), device)
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        return n ** 3 / _best_of(lambda: torch.mm(a, b), device)
    except (RuntimeError, NotImplementedError):
        return 0.0


def bench_chip(name: str) -> AnalogConfig:
    from imcnoise.training.hw_aware import load_chip

    from _common import REPO

    if name == "default":
        return AnalogConfig()
    if name == "legacy":
        c = load_chip(REPO / "scenarios" / "chips" / "legacy_2026_11.yaml")
        return c.model_copy(update={"device": SttMramDevice(sigma_r_p=0.04, sigma_r_ap=0.04, read_voltage_v=0.25),
                                    "sense_amp": c.sense_amp.model_copy(update={"offset_sigma_v": None, "offset_sigma_lsb": 1.0})})
    return load_chip(name)


def macs_per_image(prog) -> int:
    """XNOR cell reads of one inference: T x positions x slots x rows x cells."""
    return sum(prog.timesteps * l.positions * l.n_slots * l.rows * l.cols for l in prog.xnor_layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chips", type=int, default=4)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--k", default="auto", help="chips per pass of the fast engine (auto: from memory)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-aihwkit", action="store_true", help="fast engine only (e.g. large GPU runs)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--bsnn", default=None, help="checkpoint (default: shipped fmnist-bsnn)")
    ap.add_argument("--bnn", default=None, help="checkpoint (default: shipped fmnist-bnn)")
    ap.add_argument("--chip", default="default", help="default | legacy | a chip YAML")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cfg = bench_chip(args.chip)
    data = load_dataset("fashion-mnist", "test").subset(args.images)
    seeds = list(range(100, 100 + args.chips))
    peaks = {name: gemm_peak_macs(dev, dtype=dt) for name, dt in
             (("fp32", torch.float32), ("bf16", torch.bfloat16), ("int8", torch.int8))}
    peak = peaks["fp32"]
    exact = max(peaks["fp32"], peaks["int8"])  # exact kernels: int8 (int32 sums) and fp32 on integer grids
    print(f"machine: {machine()}; device {dev}; chip {args.chip}\n"
          + "; ".join(f"{n} torch.{'_int_mm' if n == 'int8' else 'mm'} 2048^3: {v / 1e9:.1f} GMAC/s" for n, v in peaks.items())
          + f"\nfastest exact kernel: {exact / 1e9:.1f} GMAC/s (bf16 holds integers only up to 2^8: exact for +-1 weights, "
            "not for the 2^-12 conductance grid; not counted)\n")
    print("| model | engine | K | seconds | chip-trials x images / s | speed-up | effective GMAC/s | % of fp32 GEMM peak | "
          "% of fastest exact | identical |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = {"speedup": {}, "noisy": {}, "peak": {}, "int": {}}
    for kind in ("bsnn", "bnn"):
        path = getattr(args, kind) or shipped(f"fmnist-{kind}")
        prog = fold_checkpoint(path)
        model, _ = load_checkpoint(path, device=dev)
        work = args.chips * len(data)
        k = auto_k(prog, args.batch_size, dev) if args.k == "auto" else int(args.k)
        k = min(k, args.chips)

        programming = []  # seconds spent building (programming + calibrating) the chips, per fast() call

        def fast():
            out, t_prog = [], 0.0
            for i in range(0, len(seeds), k):
                t0 = time.perf_counter()
                fb = FastChipBatch(prog, cfg, seeds[i:i + k], dev)
                t_prog += time.perf_counter() - t0
                out += evaluate(fb, data, batch_size=args.batch_size, keep_predictions=True)
            programming.append(t_prog)
            return out

        fast()  # warm-up: compiles the fused kernels (cached on disk for later processes)
        t_free, _ = timed(lambda: evaluate_float(model, data, batch_size=args.batch_size, precision="fp32", device=dev), 2)
        # the noise-free floor on its best exact path: the integer XNOR engine, whose "auto" backend
        # measures int8 against fp32 per layer shape (kernels.choose); both fixed paths timed beside it
        t_xnor = {}
        for backend in ("gemm", "int8", "auto") if int8_available() and dev.type == "cpu" else ("gemm",):
            xnor = XnorEngine(prog, backend=backend, device=dev)
            t_xnor[backend], _ = timed(lambda: evaluate(xnor, data, batch_size=args.batch_size), 2)
        t_int = t_xnor.get("auto", t_xnor["gemm"])
        t_base = min(t_free, t_int)
        t_fast, r_fast = timed(fast, 2)
        macs = macs_per_image(prog) * work / t_fast
        ident = "n/a"
        t_ai = None
        if not args.skip_aihwkit:
            t_ai, r_ai = timed(lambda: [evaluate(AnalogChip(prog, cfg, s, dev), data, batch_size=50, keep_predictions=True)[0]
                                        for s in seeds])
            ident = all(torch.equal(a.predictions, f.predictions) and a.spike_rates == f.spike_rates for a, f in zip(r_ai, r_fast))
            print(f"| {kind} | aihwkit | 1 | {t_ai:.1f} | {work / t_ai:.1f} | 1.0x | | | | |")
        speed = t_ai / t_fast if t_ai else float("nan")
        print(f"| {kind} | fast | {k} | {t_fast:.2f} | {work / t_fast:.1f} | {speed:.1f}x | {macs / 1e9:.2f} | "
              f"{100 * macs / peak:.1f} % | {100 * macs / exact:.1f} % | {ident} |")
        t_p = min(programming[1:])  # the timed calls (the first one is the warm-up)
        print(f"|   | of which programming and calibrating the {args.chips} chips | - | {t_p:.2f} | "
              f"{100 * t_p / t_fast:.0f} % of the fast engine's time | | | | | |")
        print(f"| {kind} | noise-free float eval (fp32) | - | {t_free:.2f} | {len(data) / t_free:.1f} img/s | | | | | |")
        for backend, t in t_xnor.items():
            print(f"| {kind} | noise-free integer engine ({backend}) | - | {t:.2f} | {len(data) / t:.1f} img/s | | "
                  f"{macs_per_image(prog) * len(data) / t / 1e9:.2f} | | | |")
        chosen = {}
        for key, name in kernels.CHOICES.items():
            chosen.setdefault(key[0], []).append(name)
        print(f"|   | measured choices so far (IMCNOISE_MAC={kernels.mode()}) | "
              + "; ".join(f"{op}: {c.count('int8')} int8 / {c.count('fp32')} fp32 shapes" for op, c in chosen.items())
              + " | | | | | | | |")
        summary["speedup"][kind] = speed
        summary["noisy"][kind] = (t_fast / work) / (t_base / len(data))
        summary["peak"][kind] = 100 * macs / peak
        summary["int"][kind] = 100 * macs / exact
    f = lambda d, fmt: " ".join(f"{m}={fmt.format(d[m])}" for m in ("bsnn", "bnn"))
    print(f"\nsummary: speedup {f(summary['speedup'], '{:.2f}')}; noisy/noise-free {f(summary['noisy'], '{:.2f}')}; "
          f"gemm-peak {f(summary['peak'], '{:.1f}')}; int-peak {f(summary['int'], '{:.1f}')}")


if __name__ == "__main__":
    main()
