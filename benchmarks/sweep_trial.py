#!/usr/bin/env python3
"""A sweep's chip-trial: this checkout against another revision, same run.

    .venv/bin/python benchmarks/sweep_trial.py [--images 200] [--chips 2] [--rounds 2] [--against REV] [--chip default]

What a sweep runs per chip instance and model (``runner._evaluate``): the fast engine on the scenario's
images with the array activity recorded for the energy model (``evaluate(..., activity=True)``), after
programming. Unlike ``mc_throughput.py`` (which times the engine without the activity), this is the
per-point cost of every sweep table. The script exports ``imcnoise/`` as it is at ``--against`` (``git
archive``) and times, in child processes run alternately (baseline, this checkout, ...), one warm-up
and then the best of 2 evaluations of ``--chips`` chips of the shipped B-SNN and BNN on ``--images``
test images, with and without the activity; each child also prints a SHA-256 of every chip's
predictions, spike rates and activity per inference, and the script checks both revisions agree.
"""

from __future__ import annotations

from _common import CHILD_PRELUDE, REPO, against_revision_parser, alternating_children, best_of, identical, machine

CHILD = CHILD_PRELUDE + r"""
from imcnoise.data import load_dataset
images, chips, cfg = int(sys.argv[1]), int(sys.argv[2]), chip_config(sys.argv[3])
data = load_dataset("fashion-mnist", "test").subset(images)
out = {}
for kind in ("bsnn", "bnn"):
    fb = FastChipBatch(fold_checkpoint(sys.argv[4] + f"/fmnist-{kind}/model.pt"), cfg, list(range(100, 100 + chips)), "cpu")
    res = {}
    for act in (True, False):
        evaluate(fb, data, batch_size=100, activity=act)  # warm-up: compiles every kernel at these sizes
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            r = evaluate(fb, data, batch_size=100, activity=act, keep_predictions=True)
            best = min(best, time.perf_counter() - t)
        res[act] = (best, r)
    h = hashlib.sha256()
    for r in res[True][1]:
        h.update(r.predictions.numpy().tobytes())
        h.update(json.dumps(r.spike_rates, sort_keys=True).encode())
        h.update(json.dumps({k: vars(v) for k, v in r.activity.items()}, sort_keys=True, default=str).encode())
    out[kind] = {"activity": res[True][0], "plain": res[False][0], "sha256": h.hexdigest()}
print(json.dumps(out))
"""


def main():
    ap = against_revision_parser(__doc__, "HEAD", "the last commit")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--chips", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {machine()}\n{args.chips} chips x {args.images} images per evaluation, best of 2 per child, {args.rounds} "
          f"alternating rounds; baseline imcnoise/ at {args.against}; chip {args.chip}\n")
    runs = alternating_children(args.against, CHILD, [args.images, args.chips, args.chip, REPO / "imcnoise" / "checkpoints"], args.rounds)
    work = args.chips * args.images
    print("| model | ms per chip-image, baseline: with activity / without | this checkout: with / without | "
          "speed-up with activity | identical |\n|---|---|---|---|---|")
    for kind in ("bsnn", "bnn"):
        b, c = ({k: 1e3 * best_of(runs, name, kind, k) / work for k in ("activity", "plain")}
                for name in ("baseline", "checkout"))
        print(f"| {kind} | {b['activity']:.2f} / {b['plain']:.2f} | {c['activity']:.2f} / {c['plain']:.2f} | "
              f"{b['activity'] / c['activity']:.2f}x | {identical(runs, kind)} |")


if __name__ == "__main__":
    main()
