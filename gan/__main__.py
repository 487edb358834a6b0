"""`python -m gan [train]`: train one GAN on 2-D data; `python -m gan compare`: plain against CR.

`python -m gan fashion`: a DCGAN on Fashion-MNIST scored by FID and class coverage with our own
classifier; `python -m gan evaluator`: that classifier (trained once, cached) and the FID floors.

The last line of stdout is one JSON object with the headline figures; progress goes to stderr.
Pictures go to out/gan/<run name>.png (the name says the data set, and -quick for a --quick run).
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

from .arguments import natural, png_path, positive_float, positive_int  # noqa: E402
from .cascade import G_STAGES  # noqa: E402
from .compare import default_config, format_table, run_compare, summarize  # noqa: E402
from .data import DATASETS  # noqa: E402
from .losses import LOSSES  # noqa: E402

COMMANDS = ("train", "compare", "fashion", "fashion-compare", "evaluator")


def _log(msg):
    print(msg, file=sys.stderr, flush=True)




def _common(p):
    p.add_argument("--quick", action="store_true", help="the same pipeline with a small budget (< 1 min)")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (D and G once each)")
    p.add_argument("--loss", choices=LOSSES, default="ns")
    p.add_argument("--batch", type=positive_int, default=None)
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate of both D and G")
    p.add_argument("--spectral-norm", action="store_true", help="spectral norm on D's hidden layers")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m gan", description=__doc__.splitlines()[0],
        epilog="Without a command, `python -m gan [options]` is `python -m gan train [options]`. "
               "`python -m gan COMMAND --help` lists a command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,compare,fashion,fashion-compare,evaluator}")
    t = sub.add_parser("train", help="train one GAN and plot its samples (the default command)")
    _common(t)
    t.add_argument("--data", choices=sorted(DATASETS), default="ring")
    t.add_argument("--stages", type=positive_int, default=4, help="N, the cascade scores (1 = plain D)")
    t.add_argument("--g-stages", choices=G_STAGES, default="all")
    t.add_argument("--seed", type=natural, default=0)
    t.add_argument("--out", default=os.path.join("out", "gan"), help="folder for the picture")
    t.add_argument("--name", default=None, help="the run's name, the picture's file name "
                                                "(default: the data set, -quick for --quick)")
    t.add_argument("--png", default=None, help="the picture's path instead of OUT/NAME.png ('' for none)")
    c = sub.add_parser("compare", help="plain N=1 against CR N=2,4,8 over seeds")
    _common(c)
    c.add_argument("--data", nargs="+", choices=sorted(DATASETS), default=None,
                   help="data sets (default ring grid; quick: ring)")
    c.add_argument("--stages", nargs="+", type=positive_int, default=None,
                   help="values of N (default 1 2 4 8; quick: 1 4)")
    c.add_argument("--g-stages", nargs="+", choices=G_STAGES, default=None,
                   help="G's loss over all stages or the first (default both; quick: all)")
    c.add_argument("--seeds", type=positive_int, default=None, help="seeds per setting (default 5, quick 2)")
    c.add_argument("--jobs", type=positive_int, default=1, help="runs in parallel processes")
    f = sub.add_parser("fashion", help="a DCGAN on Fashion-MNIST (plain or CR head), FID and class coverage")
    _fashion_arguments(f)
    fc = sub.add_parser("fashion-compare", help="the DCGAN's plain head against CR N=2,4 over seeds")
    _dcgan_arguments(fc)
    fc.add_argument("--stages", nargs="+", type=positive_int, default=[1, 2, 4],
                    help="values of N (1 = the plain head, the baseline of the Welch tests)")
    fc.add_argument("--seeds", type=positive_int, default=5, help="seeds per setting")
    fc.add_argument("--jobs", type=positive_int, default=1, help="runs in parallel processes")
    fc.add_argument("--out", default=os.path.join("out", "gan"),
                    help="folder for seed 0's sample grids and the runs file fashion-compare-runs.jsonl "
                         "(finished runs, read back when the command is run again: it resumes)")
    e = sub.add_parser("evaluator", help="train (or load) the Fashion-MNIST classifier; print the FID floors")
    _evaluator_arguments(e)
    return parser


def _evaluator_arguments(p):
    p.add_argument("--quick", action="store_true", help="a small classifier and reference (< 1 min)")
    p.add_argument("--cache", default=None, help="folder of the trained classifier, reused when present "
                                                 "(default: $XDG_CACHE_HOME/gan or ~/.cache/gan)")
    p.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST files (default: "
                                                    "$FASHION_MNIST_DIR, else Debian's folder)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _fashion_arguments(p):
    _dcgan_arguments(p)
    p.add_argument("--stages", type=positive_int, default=1, help="N, the cascade scores (1 = plain head)")
    p.add_argument("--out", default=os.path.join("out", "gan"), help="folder for the sample grid")
    p.add_argument("--name", default=None, help="the run's name, the picture's file name "
                                                "(default: fashion-N<stages>, -quick for --quick)")
    p.add_argument("--png", default=None, help="the picture's path instead of OUT/NAME.png ('' for none)")


def _dcgan_arguments(p):
    _evaluator_arguments(p)
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (D and G once each; "
                                                                    "default 3000, quick 60)")
    p.add_argument("--g-stages", choices=G_STAGES, default="all")
    p.add_argument("--loss", choices=LOSSES, default="ns")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate of D and G (default 1e-3)")
    p.add_argument("--width", type=positive_int, default=32, help="channels of the first convolutions")
    p.add_argument("--no-spectral-norm", action="store_true", help="D without spectral norm")
    p.add_argument("--mbstd-group", type=natural, default=4,
                   help="M > 0: D's minibatch standard deviation over groups of M images (must divide "
                        "--batch; default 4, as ProGAN); 0: none")
    p.add_argument("--n-eval", type=positive_int, default=None, help="samples scored (default 10000, "
                                                                     "quick 1000)")
    p.add_argument("--seed", type=natural, default=0)


def _config(args):
    cfg = replace(default_config(args.quick), loss=args.loss, spectral_norm=args.spectral_norm)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    if args.batch is not None:
        cfg = replace(cfg, batch=args.batch)
    if args.lr is not None:
        cfg = replace(cfg, lr_d=args.lr, lr_g=args.lr)
    return cfg


def main_train(args, png):
    from .plot import plot_samples
    from .train import train

    cfg = replace(_config(args), data=args.data, n_stages=args.stages, g_stages=args.g_stages,
                  seed=args.seed)
    model, res = train(cfg, progress=_log, log_every=max(1, cfg.steps // 10))
    if png is not None:
        png = plot_samples(model, cfg, png, np.random.default_rng([cfg.seed, 2]))
    _log(f"{cfg.data}: {res['modes_covered']}/{res['n_modes']} modes covered (untrained generator: "
         f"{res['start']['modes_covered']}), high-quality fraction {res['high_quality']:.3f} "
         f"(untrained: {res['start']['high_quality']:.3f}), KL to uniform {res['kl']:.3f}, "
         f"{res['train_seconds']:.1f} s" + (f"; samples in {png}" if png else "; no PNG (matplotlib "
                                                                            "missing or --png '')"))
    keys = ("modes_covered", "n_modes", "high_quality", "kl", "d_loss", "g_loss", "train_seconds")
    print(json.dumps({"command": "train", "data": cfg.data, "n_stages": cfg.n_stages,
                      "g_stages": cfg.g_stages, "loss": cfg.loss, "steps": cfg.steps, "batch": cfg.batch,
                      "seed": cfg.seed, **{k: res[k] for k in keys},
                      "untrained": {k: res["start"][k] for k in ("modes_covered", "high_quality", "kl")},
                      "png": png}))


def main_compare(args):
    base = _config(args)
    if args.quick and args.steps is None:
        base = replace(base, steps=1000)                 # four runs, not one: half the quick budget each
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    data = args.data or (["ring"] if args.quick else ["ring", "grid"])
    stages = args.stages or ([1, 4] if args.quick else [1, 2, 4, 8])
    g_stages = args.g_stages or (["all"] if args.quick else list(G_STAGES))
    t0 = time.perf_counter()
    results = run_compare(base, data, stages, g_stages, seeds, args.jobs, _log)
    summary = summarize(results)
    print(f"Equal budget: {base.steps} steps, batch {base.batch}, {base.loss} loss, lr {base.lr_d}, "
          f"{seeds} seeds per setting; mean +- standard deviation over seeds.")
    print(format_table(summary))
    compact = {d: {label: {m: [round(v[0], 4), round(v[1], 4)] for m, v in s.items()
                           if isinstance(v, tuple)} for label, s in by.items()}
               for d, by in summary.items()}
    print(json.dumps({"command": "compare", "steps": base.steps, "batch": base.batch, "loss": base.loss,
                      "seeds": seeds, "total_seconds": round(time.perf_counter() - t0, 1),
                      "mean_std": compact}))


def main_evaluator(args):
    from .evaluator import default_cache, floors, get_evaluator

    t0 = time.perf_counter()
    ev = get_evaluator(args.cache or default_cache(), args.quick, args.data_dir, _log)
    n = 1000 if args.quick else 10000
    _log(f"scoring the reference points ({n} images each)")
    points = floors(ev, args.data_dir, n=n, n_fit=10000 if args.quick else None)
    for name, sc in points.items():
        _log(f"  {name:15s} FID {sc['fid']:9.3f}   smallest class share {sc['class_min_fraction']:.3f}")
    print(json.dumps({"command": "evaluator", "classifier_accuracy": ev.accuracy, "fid_test_set": ev.test_fid,
                      "path": ev.path, "settings": ev.settings, "n": n,
                      "floors": {k: {"fid": round(v["fid"], 3), "class_min_fraction": v["class_min_fraction"]}
                                 for k, v in points.items()},
                      "seconds": round(time.perf_counter() - t0, 1)}))


def _dcgan_config(args, n_stages):
    from .dcgan import DCGANConfig

    quick = args.quick
    return DCGANConfig(n_stages=n_stages, g_stages=args.g_stages, loss=args.loss,
                       steps=args.steps or (60 if quick else 3000), batch=args.batch, width=args.width,
                       lr_d=args.lr or 1e-3, lr_g=args.lr or 1e-3,
                       spectral_norm=not args.no_spectral_norm, mbstd_group=args.mbstd_group,
                       seed=args.seed)


def main_fashion_compare(args):
    from .evaluator import default_cache, get_evaluator
    from .fashion_compare import format_table, run_fashion_compare, summarize

    base = _dcgan_config(args, 1)
    ev = get_evaluator(args.cache or default_cache(), args.quick, args.data_dir, _log)
    os.makedirs(args.out, exist_ok=True)
    n_eval = args.n_eval or (1000 if args.quick else 10000)
    t0 = time.perf_counter()
    results = run_fashion_compare(base, args.stages, args.seeds, ev.path, n_eval, args.data_dir,
                                  5000 if args.quick else None, args.jobs,
                                  lambda n: os.path.join(args.out, f"fashion-compare-N{n}"
                                                         + ("-quick" if args.quick else "") + ".png"), _log,
                                  runs_file=os.path.join(args.out, "fashion-compare-runs"
                                                         + ("-quick" if args.quick else "") + ".jsonl"))
    summary = summarize(results)
    print(f"Equal budget: {base.steps} steps, batch {base.batch}, lr {base.lr_d}, width {base.width}, "
          f"{args.seeds} seeds per setting, {n_eval} samples scored; mean +- standard deviation over seeds; "
          f"test-set FID (the floor) {ev.test_fid:.3f}, classifier accuracy {ev.accuracy:.4f}.")
    print(format_table(summary))
    print(json.dumps({"command": "fashion-compare", "steps": base.steps, "batch": base.batch, "lr": base.lr_d,
                      "width": base.width, "seeds": args.seeds, "n_eval": n_eval,
                      "classifier_accuracy": ev.accuracy, "fid_test_set": ev.test_fid,
                      "total_seconds": round(time.perf_counter() - t0, 1),
                      "runs": {str(n): [{k: r[k] for k in ("seed", "fid", "class_min_fraction", "train_seconds")}
                                        for r in runs] for n, runs in results.items()},
                      "welch_fid": {str(n): row["welch_fid"] for n, row in summary.items() if row["welch_fid"]}}))


def main_fashion(args, png):
    from .evaluator import default_cache, get_evaluator
    from .fashion import run_fashion

    quick = args.quick
    cfg = _dcgan_config(args, args.stages)
    ev = get_evaluator(args.cache or default_cache(), quick, args.data_dir, _log)
    res = run_fashion(cfg, ev, n_eval=args.n_eval or (1000 if quick else 10000), data_dir=args.data_dir,
                      n_train=5000 if quick else None, png=png, progress=_log,
                      log_every=max(1, cfg.steps // 10))
    _log(f"fashion: FID {res['fid']:.2f} (untrained generator {res['untrained']['fid']:.2f}, test set "
         f"{res['fid_test_set']:.2f}), smallest class share {res['class_min_fraction']:.3f}, classifier "
         f"accuracy {res['classifier_accuracy']:.4f}, {res['train_seconds']:.0f} s"
         + (f"; samples in {res['png']}" if res["png"] else "; no PNG (Pillow missing or --png '')"))
    print(json.dumps({"command": "fashion", **res}))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv = ["train"] + argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "fashion":
        args.data = f"fashion-N{args.stages}"              # the picture's default name
    png = png_path(parser, args) if args.command in ("train", "fashion") else None
    try:
        if args.command == "train":
            main_train(args, png)
        elif args.command == "fashion":
            main_fashion(args, png)
        elif args.command == "fashion-compare":
            main_fashion_compare(args)
        elif args.command == "evaluator":
            main_evaluator(args)
        else:
            main_compare(args)
    except (ValueError, FileNotFoundError) as err:  # bad data or settings, missing files found in the run
        if args.debug:
            raise
        print(f"python -m gan: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
