"""Train an energy on 2-D toy data and score it exactly: `python -m ebm [--data 8gaussians] [--quick]`.

Prints progress to stderr, the test NLL of the model (Z by grid quadrature) beside two baselines (a
KDE, and the uniform density on the box, what an untrained flat energy scores), writes a PNG to
out/ebm/<run name>.png when matplotlib is installed (the name says the data set, and -quick for a
--quick run), and ends with one JSON line of the headline figures.

`python -m ebm fashion [--quick] [--seed N] [--steps N] ...`: the IGEBM recipe on Fashion-MNIST
(ebm/fashion.py, its own flags: `python -m ebm fashion --help`).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from gan.arguments import natural, number_type, png_path, positive_float, positive_int

from .data import DATASETS, true_nll
from .evaluate import grid_energy, kde_fit, kde_log_density, model_nll
from .neural import energy_forward, neural_energy
from .plots import have_matplotlib, save_density_and_samples
from .samplers import practical_langevin
from .train import TrainConfig, config_dict, train

natural_float = number_type(float, 0, strict=False)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ebm", description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=sorted(DATASETS), default="8gaussians")
    p.add_argument("--quick", action="store_true", help="a short run of the same pipeline (< 1 min)")
    p.add_argument("--iters", type=positive_int, default=None,
                   help="training iterations (default 4000, quick 300)")
    p.add_argument("--lam", type=natural_float, default=None, help="weight of lambda (U+^2 + U-^2)")
    p.add_argument("--lr", type=positive_float, default=None)
    p.add_argument("--langevin-steps", type=positive_int, default=None)
    p.add_argument("--spectral-norm", action="store_true")
    p.add_argument("--seed", type=natural, default=0)
    p.add_argument("--grid", type=number_type(int, 2, strict=False), default=300,
                   help="quadrature grid points per axis")
    p.add_argument("--out", default=os.path.join("out", "ebm"), help="folder for the picture")
    p.add_argument("--name", default=None, help="the run's name, the picture's file name "
                                                "(default: the data set, -quick for --quick)")
    p.add_argument("--png", default=None, help="the picture's path instead of OUT/NAME.png ('' for none)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_args(argv)
    args.png = png_path(p, args) if have_matplotlib() else None
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fashion"]:
        from .fashion import main_fashion
        return main_fashion(argv[1:])
    args = parse_args(argv)
    try:
        return run(args)
    except ValueError as err:                       # e.g. a learning rate that makes training diverge
        if args.debug:
            raise
        print(f"python -m ebm: error: {err}", file=sys.stderr)
        return 2


def run(args):
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    draw = DATASETS[args.data]
    n_train = 2000 if args.quick else 20000
    train_x, val_x, test_x = draw(n_train, rng), draw(1000, rng), draw(5000, rng)
    cfg = TrainConfig(iters=300 if args.quick else 4000)
    for name in ("iters", "lam", "lr", "langevin_steps"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.lr is not None:
        cfg.lr_final = args.lr / 10
    cfg.spectral_norm = args.spectral_norm
    print(f"ebm: training on {args.data} ({n_train} points) for {cfg.iters} iterations, "
          f"Langevin at temperature {cfg.temperature:g}", file=sys.stderr)
    # the tuned Swish energy (ebm.swish_energy) for every Langevin step: the same numbers, faster
    params, state, buffer, history = train(train_x, cfg, rng, log_every=max(1, cfg.iters // 10),
                                           fused=True)
    t_train = time.perf_counter() - t0

    def energy_value(x):
        return energy_forward(params, x, state)[0]

    nll, log_z = model_nll(energy_value, test_x, -cfg.box, cfg.box, args.grid)
    kde_train = train_x[:5000]
    h = kde_fit(kde_train, val_x)
    kde_nll = float(-kde_log_density(test_x, kde_train, h).mean())
    # fresh samples: chains from uniform noise, then Langevin at temperature 1
    n_chains, n_steps = (500, 200) if args.quick else (1000, 500)
    samples = practical_langevin(neural_energy(params, state, fused=True), buffer.noise(n_chains, rng),
                                 cfg.step, cfg.noise, n_steps, rng, clamp=(-cfg.box, cfg.box))
    png = args.png
    if png:
        U = grid_energy(energy_value, -cfg.box, cfg.box, args.grid)
        save_density_and_samples(png, U, cfg.box, test_x[:2000], samples,
                                 title=f"{args.data}: test NLL model {nll:.3f}, KDE {kde_nll:.3f}")
    truth = true_nll(args.data, test_x)
    uniform = math.log((2 * cfg.box) ** 2)                   # a flat energy: uniform on the box
    print(f"test NLL (nats): model {nll:.4f}   KDE (h={h:.3f}) {kde_nll:.4f}   uniform on the box "
          f"{uniform:.4f}" + (f"   true density {truth:.4f}" if truth is not None else "")
          + (f"; picture in {png}" if png else ""), file=sys.stderr)
    summary = {"data": args.data, "iters": cfg.iters, "test_nll_model": round(nll, 4),
               "test_nll_kde": round(kde_nll, 4), "test_nll_uniform": round(uniform, 4),
               "kde_bandwidth": h,
               "test_nll_true": None if truth is None else round(truth, 4), "log_z": round(log_z, 4),
               "final_loss": history[-1]["loss"] if history else None, "png": png,
               "train_s": round(t_train, 1), "total_s": round(time.perf_counter() - t0, 1),
               "config": config_dict(cfg)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
