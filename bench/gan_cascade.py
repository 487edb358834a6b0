"""Time cost of Cascading Rejection: training steps with an N-stage head against the plain head (N = 1).

`python -m bench gan_cascade [--quick] [--stages N]`. Both sides run the same networks, batch and number
of D + G steps; "ours" is CR with N stages (default 8), "reference" the plain discriminator.
"""
import argparse

import numpy as np

from bench.harness import result, time_pair
from gan.optim import Adam
from gan.train import GANConfig, d_step, g_step, init_gan


def _stepper(cfg):
    rng = np.random.default_rng(cfg.seed)
    model = init_gan(cfg, rng)
    opt_d, opt_g = Adam(model["D"], cfg.lr_d), Adam(model["G"], cfg.lr_g)

    def run():
        for _ in range(cfg.steps):
            d_step(model, opt_d, cfg, rng)
            g_step(model, opt_g, cfg, rng)
    return run


def run(args):
    p = argparse.ArgumentParser(prog="python -m bench gan_cascade")
    p.add_argument("--stages", type=int, default=8)
    extra = p.parse_args(args.extra)
    steps = 20 if args.quick else 100
    repeats = args.repeats or (3 if args.quick else 7)
    base = GANConfig(steps=steps)
    cr = GANConfig(steps=steps, n_stages=extra.stages)
    ours, ref = time_pair(_stepper(cr), _stepper(base), repeats=repeats, label=f"N={extra.stages} vs N=1")
    return result("gan_cascade", ours, ref, args.threads, n_stages=extra.stages, steps=steps,
                  batch=base.batch, hidden=base.hidden,
                  ms_per_step_cr=round(1000 * ours / steps, 3), ms_per_step_plain=round(1000 * ref / steps, 3))
