#!/usr/bin/env python3
"""Chip programming and calibration: this checkout against another revision, same run.

    .venv/bin/python benchmarks/chip_programming.py [--chips 4] [--repeat 3] [--against REV] [--chip default]

Building a ``FastChipBatch`` draws every device of every sub-array of each chip, converts the devices
to cells (access transistors), solves every line's IR-drop weights, draws the periphery and
calibrates: the fixed cost of each chip instance of a sweep (``benchmarks/mc_throughput.py`` prints
its share of the fast engine's time). The script exports ``imcnoise/`` as it is at ``--against``
(``git archive``) and times, in child processes run alternately (baseline, this checkout, baseline,
...), the best of ``--repeat`` builds of ``--chips`` chips of the shipped B-SNN and BNN, after one
warm-up build of the same size (compilation); each child also prints a SHA-256 of every layer's
static state (weights, periphery, calibration), and the script checks both revisions give the
same bits.
"""

from __future__ import annotations

from _common import CHILD_PRELUDE, REPO, against_revision_parser, alternating_children, best_of, identical, machine

CHILD = CHILD_PRELUDE + r"""
chips, repeat, cfg = int(sys.argv[1]), int(sys.argv[2]), chip_config(sys.argv[3])
out = {}
for kind in ("bsnn", "bnn"):
    prog = fold_checkpoint(sys.argv[4] + f"/fmnist-{kind}/model.pt")
    FastChipBatch(prog, cfg, list(range(1000, 1000 + chips)), "cpu")  # warm-up: compiles every kernel at these sizes
    best, fb = float("inf"), None
    for r in range(repeat):
        t = time.perf_counter()
        fb = FastChipBatch(prog, cfg, list(range(100 + r, 100 + r + chips)), "cpu")
        best = min(best, time.perf_counter() - t)
    h = hashlib.sha256()
    for st in fb.state.values():
        w = st.weights
        for x in (w.w_a, w.w_b, w.sq_a, w.sq_b, w.vpu, st.periphery.offset_v, st.periphery.buffer_gain,
                  st.calibration.baseline, st.calibration.lsb, st.calibration.correction_lsb):
            if isinstance(x, torch.Tensor):
                h.update(x.contiguous().numpy().tobytes())
    out[kind] = {"seconds": best, "sha256": h.hexdigest()}
print(json.dumps(out))
"""


def main():
    ap = against_revision_parser(__doc__, "2300a8c", "before the table-lookup programming")
    ap.add_argument("--chips", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}\n{args.chips} chips per build, best of {args.repeat} builds per child, {args.rounds} "
          f"alternating rounds; baseline imcnoise/ at {args.against}; chip {args.chip}\n")
    runs = alternating_children(args.against, CHILD, [args.chips, args.repeat, args.chip, REPO / "imcnoise" / "checkpoints"], args.rounds)
    print("| model | baseline s per chip | this checkout s per chip | speed-up | identical |\n|---|---|---|---|---|")
    for kind in ("bsnn", "bnn"):
        b, c = (best_of(runs, name, kind, "seconds") / args.chips for name in ("baseline", "checkout"))
        print(f"| {kind} | {b:.3f} | {c:.3f} | {b / c:.2f}x | {identical(runs, kind)} |")


if __name__ == "__main__":
    main()
