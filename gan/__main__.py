"""`python -m gan [train]`: train one GAN on 2-D data; `python -m gan compare`: plain against CR.

The last line of stdout is one JSON object with the headline figures; progress goes to stderr.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import replace

# The matrices here are at most 256 x 64: one BLAS thread is faster than several fighting over them
# (use --jobs for parallel runs). Set before NumPy loads; an OMP_NUM_THREADS already set is kept.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from .cascade import G_STAGES  # noqa: E402
from .compare import default_config, format_table, run_compare, summarize  # noqa: E402
from .data import DATASETS  # noqa: E402
from .losses import LOSSES  # noqa: E402


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _common(p):
    p.add_argument("--quick", action="store_true", help="the same pipeline with a small budget")
    p.add_argument("--steps", type=int, default=None, help="training steps (D and G once each)")
    p.add_argument("--loss", choices=LOSSES, default="ns")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="learning rate of both D and G")
    p.add_argument("--spectral-norm", action="store_true", help="spectral norm on D's hidden layers")


def _config(args):
    cfg = replace(default_config(args.quick), loss=args.loss, spectral_norm=args.spectral_norm)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    if args.batch is not None:
        cfg = replace(cfg, batch=args.batch)
    if args.lr is not None:
        cfg = replace(cfg, lr_d=args.lr, lr_g=args.lr)
    return cfg


def main_train(args):
    from .plot import plot_samples
    from .train import train

    cfg = replace(_config(args), data=args.data, n_stages=args.stages, g_stages=args.g_stages,
                  seed=args.seed)
    model, res = train(cfg, progress=_log, log_every=max(1, cfg.steps // 10))
    png = None if args.png == "" else plot_samples(model, cfg, args.png, np.random.default_rng([cfg.seed, 2]))
    _log(f"{cfg.data}: {res['modes_covered']}/{res['n_modes']} modes covered, high-quality fraction "
         f"{res['high_quality']:.3f}, KL to uniform {res['kl']:.3f}, {res['train_seconds']:.1f} s"
         + (f"; samples in {png}" if png else "; no PNG (matplotlib missing or --png '')"))
    keys = ("modes_covered", "n_modes", "high_quality", "kl", "d_loss", "g_loss", "train_seconds")
    print(json.dumps({"command": "train", "data": cfg.data, "n_stages": cfg.n_stages,
                      "g_stages": cfg.g_stages, "loss": cfg.loss, "steps": cfg.steps, "seed": cfg.seed,
                      **{k: res[k] for k in keys}, "png": png}))


def main_compare(args):
    base = _config(args)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    t0 = time.perf_counter()
    results = run_compare(base, args.data, args.stages, args.g_stages, seeds, args.jobs, _log)
    summary = summarize(results)
    print(f"Equal budget: {base.steps} steps, batch {base.batch}, {base.loss} loss, lr {base.lr_d}, "
          f"{seeds} seeds per setting; mean +- standard deviation over seeds.")
    print(format_table(summary))
    compact = {data: {label: {m: [round(v[0], 4), round(v[1], 4)] for m, v in s.items()
                              if isinstance(v, tuple)} for label, s in by.items()}
               for data, by in summary.items()}
    print(json.dumps({"command": "compare", "steps": base.steps, "batch": base.batch, "loss": base.loss,
                      "seeds": seeds, "total_seconds": round(time.perf_counter() - t0, 1),
                      "mean_std": compact}))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv = ["train"] + argv
    parser = argparse.ArgumentParser(prog="python -m gan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one GAN and plot its samples")
    _common(t)
    t.add_argument("--data", choices=sorted(DATASETS), default="ring")
    t.add_argument("--stages", type=int, default=4, help="N, the cascade scores (1 = plain D)")
    t.add_argument("--g-stages", choices=G_STAGES, default="all")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--png", default="gan_samples.png", help="output image ('' for none)")
    c = sub.add_parser("compare", help="plain N=1 against CR N=2,4,8 over seeds")
    _common(c)
    c.add_argument("--data", nargs="+", choices=sorted(DATASETS), default=["ring", "grid"])
    c.add_argument("--stages", nargs="+", type=int, default=[1, 2, 4, 8])
    c.add_argument("--g-stages", nargs="+", choices=G_STAGES, default=list(G_STAGES))
    c.add_argument("--seeds", type=int, default=None, help="seeds per setting (default 5, quick 2)")
    c.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    args = parser.parse_args(argv)
    if args.command == "train" and args.stages < 1 or args.command == "compare" and min(args.stages) < 1:
        parser.error("--stages: N must be >= 1")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    (main_train if args.command == "train" else main_compare)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
