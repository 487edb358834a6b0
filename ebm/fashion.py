"""The IGEBM recipe on Fashion-MNIST: a convolutional energy trained by Langevin chains from a replay buffer.

Each update (Du & Mordatch 2019, official code's settings where the budget allows):
  1. draw B chains from the replay buffer (ebm/buffer.py): 95% resume stored samples, 5% start from
     fresh uniform noise on [0, 1]^784;
  2. run K Langevin steps on them with ebm.samplers.practical_langevin at IGEBM's settings:
     x <- clamp(x - 10 clip(dE/dx, +-0.01) + 0.005 xi, 0, 1)  (a pixel moves at most 0.1 a step);
  3. push the chains back into the buffer; they are x-, a data batch is x+;
  4. one Adam step (gan/optim.py, beta1 = 0 as IGEBM) on
        L = mean E(x+) - mean E(x-) + alpha (mean E(x+)^2 + mean E(x-)^2)
     with x- held constant (no gradient flows through the sampler).
Where this departs from IGEBM, for a budget of about a thousand updates on a CPU: K = 20 steps (IGEBM 60),
lr 2e-3 (3e-4), alpha = 0.1 (1). The regulariser holds |E| to about 1 / (2 alpha); a chain moves a pixel
by 10 clip(dE/dx), so an energy confined to a narrow range moves its chains slowly. In 200-update
runs (the quick budget of the time; seed 0, 1,000 buffer samples) alpha = 1 at lr 1e-3 gave a buffer
FID of 248.5, alpha = 0.1 190.7, and alpha = 0.1 at lr 3e-3 169.2.
The budget is a number of updates. Afterwards the buffer's samples and fresh chains started from noise
are scored by gan's evaluator (FID on our classifier's features, class shares); images live in [0, 1]
here and are mapped to the evaluator's [-1, 1] by 2 x - 1.
"""
import argparse
import json
import math
import os
import sys
from dataclasses import asdict, dataclass

import numpy as np

from gan import conv as plain_conv
from gan.arguments import natural, number_type, positive_float, positive_int
from gan.optim import Adam
from gan.progress import Progress

from .buffer import ReplayBuffer
from .conv_energy import conv_energy, energy_backward, energy_forward, energy_init
from .samplers import practical_langevin


@dataclass
class FashionConfig:
    """Everything a run depends on besides the data: equal configs give equal numbers."""
    steps: int = 1200                # updates (about 10 min on one loaded core, see ebm/README.md)
    batch: int = 64
    width: int = 16                  # W: channels of the first convolution
    spectral_norm: bool = True
    langevin_steps: int = 20         # K per update (IGEBM: 60)
    step_size: float = 10.0          # eta (IGEBM)
    noise: float = 0.005             # sigma (IGEBM)
    clip_grad: float = 0.01          # elementwise bound on dE/dx (IGEBM)
    alpha: float = 0.1               # weight of the energy-magnitude regulariser (IGEBM: 1)
    lr: float = 2e-3                 # Adam, betas (0, 0.999) (IGEBM: 3e-4 over far more updates)
    buffer_size: int = 10000
    reinit: float = 0.05
    sample_steps: int = 200          # Langevin steps of the chains drawn from noise after training
    seed: int = 0


def cd_loss_forward(params, x_pos, x_neg, alpha, state, conv=plain_conv):
    """The contrastive-divergence loss with the energy-magnitude regulariser.

    x_pos, x_neg: (B, 1, 28, 28); both go through the network together (one spectral norm).
    returns (loss, E+ mean, E- mean, cache)
    """
    B = x_pos.shape[0]
    E, cache = energy_forward(params, np.concatenate([x_pos, x_neg]), state, conv)
    E_pos, E_neg = E[:B], E[B:]
    with np.errstate(over="ignore", invalid="ignore"):               # a diverged run is refused below
        loss = E_pos.mean() - E_neg.mean() + alpha * ((E_pos ** 2).mean() + (E_neg ** 2).mean())
    return float(loss), float(E_pos.mean()), float(E_neg.mean()), (cache, E_pos, E_neg, alpha)


def cd_loss_backward(cache):
    """Gradients of the loss with params' keys, and the new spectral-norm state."""
    net_cache, E_pos, E_neg, alpha = cache
    # dL/dE+_i = (1 + 2 alpha E+_i) / B,   dL/dE-_i = (-1 + 2 alpha E-_i) / B
    dE = np.concatenate([(1 + 2 * alpha * E_pos) / E_pos.shape[0], (-1 + 2 * alpha * E_neg) / E_neg.shape[0]])
    _, grads = energy_backward(dE.astype(E_pos.dtype), net_cache)
    return grads, net_cache["state"]


def langevin(params, state, cfg, x0, n_steps, rng, conv):
    """n_steps of IGEBM's sampler from x0 (B, 784) at the current energy: (B, 784) in [0, 1]."""
    return practical_langevin(conv_energy(params, state, conv), x0, cfg.step_size, cfg.noise, n_steps, rng,
                              clip_grad=cfg.clip_grad, clamp=(0.0, 1.0))


def train_energy(cfg, images, progress=None, log_every=50, conv=plain_conv):
    """Fit the energy to images (N, 784) float32 in [0, 1] for cfg.steps updates.

    Returns (params, state, buffer, info) with info: updates done, completed (False when the loss or a
    chain stopped being finite, which ends the run early), the last losses and energies.
    """
    if cfg.steps < 1 or cfg.batch < 1 or cfg.batch > cfg.buffer_size:
        raise ValueError(f"steps and batch must be >= 1 and batch <= buffer_size, got steps={cfg.steps}, "
                         f"batch={cfg.batch}, buffer_size={cfg.buffer_size}")
    if images.ndim != 2 or images.shape[1] != 784:
        raise ValueError(f"images must have shape (N, 784), got {images.shape}")
    rng = np.random.default_rng(cfg.seed)
    params, state = energy_init(rng, cfg.width, cfg.spectral_norm)
    opt = Adam(params, cfg.lr, betas=(0.0, 0.999))
    buffer = ReplayBuffer(cfg.buffer_size, 784, 0.0, 1.0, reinit=cfg.reinit, dtype=np.float32)
    clock = Progress(cfg.steps, word="update")
    info = {"updates": 0, "completed": False, "loss": None, "E_data": None, "E_samples": None, "stopped": None}
    for step in range(1, cfg.steps + 1):
        x_pos = images[rng.integers(0, len(images), cfg.batch)]               # (B, 784)
        try:
            x_neg = langevin(params, state, cfg, buffer.sample(cfg.batch, rng), cfg.langevin_steps, rng, conv)
        except ValueError as err:                                             # the sampler saw NaN / inf
            info["stopped"] = f"update {step}: {err}"
            break
        buffer.push(x_neg)
        loss, e_pos, e_neg, cache = cd_loss_forward(params, x_pos.reshape(-1, 1, 28, 28),
                                                    x_neg.reshape(-1, 1, 28, 28), cfg.alpha, state, conv)
        if not math.isfinite(loss):
            info["stopped"] = f"update {step}: loss {loss}"
            break
        grads, state = cd_loss_backward(cache)
        opt.step(params, grads)
        info.update(updates=step, loss=loss, E_data=e_pos, E_samples=e_neg)
        if progress is not None and (step % log_every == 0 or step == cfg.steps):
            progress(f"{clock.line(step)}  loss {loss:+.4f}  E(data) {e_pos:+.4f}  E(samples) {e_neg:+.4f}")
    info["completed"] = info["updates"] == cfg.steps
    info["train_seconds"] = round(clock.clock() - clock.start, 1)
    return params, state, buffer, info


def to_evaluator(x):
    """(N, 784) in [0, 1] -> (N, 1, 28, 28) float32 in [-1, 1], the evaluator's scale."""
    return (2 * x - 1).astype(np.float32).reshape(-1, 1, 28, 28)


def samples_from_noise(params, state, cfg, n, rng, conv, chunk=500):
    """n chains from uniform noise on [0, 1]^784, cfg.sample_steps Langevin steps each: (n, 784)."""
    out = [langevin(params, state, cfg, rng.random((min(chunk, n - i), 784), dtype=np.float32),
                    cfg.sample_steps, rng, conv) for i in range(0, n, chunk)]
    return np.concatenate(out)


def run_fashion(cfg, evaluator, n_eval=10000, n_noise=1000, data_dir=None, n_train=None, pngs=None,
                progress=None, log_every=50, conv=plain_conv):
    """Train, sample, score: the demo's result dict (the JSON line's fields).

    n_eval: buffer samples scored (at most the buffer's size)   n_noise: chains drawn from noise and scored
    pngs: (buffer grid path, noise grid path) or None. The pixel-Gaussian baseline is scored at both sizes,
    since a smaller sample has a larger FID (its covariance estimate is noisier).
    """
    from gan.classifier import to_inputs
    from gan.fashion import save_grid
    from gan.fid import pixel_gaussian_samples
    from gan.idx import load_fashion_mnist

    log = progress or (lambda msg: None)
    images, _ = load_fashion_mnist("train", data_dir)
    images = images[:n_train] if n_train else images
    x = (images.astype(np.float32) / np.float32(255)).reshape(-1, 784)              # (N, 784) in [0, 1]
    params, state, buffer, info = train_energy(cfg, x, log, log_every, conv)
    res = {**asdict(cfg), "n_train": len(x), **info, "classifier_accuracy": evaluator.accuracy,
           "fid_test_set": evaluator.test_fid}
    eval_rng = np.random.default_rng([cfg.seed, 1])
    n_buf = min(n_eval, len(buffer))
    buf = buffer.data[eval_rng.choice(len(buffer), n_buf, replace=False)]
    scores = {"buffer": evaluator.score(to_evaluator(buf))}
    grids = {"buffer": buf}
    if info["completed"]:
        noise = samples_from_noise(params, state, cfg, n_noise, eval_rng, conv)
        scores["noise"] = evaluator.score(to_evaluator(noise))
        grids["noise"] = noise
    reference = to_inputs(images)
    for name, n in (("buffer", n_buf), ("noise", n_noise)):
        base = evaluator.score(pixel_gaussian_samples(reference, n, np.random.default_rng([cfg.seed, 2])))
        res[f"fid_pixel_gaussian_{name}"] = round(base["fid"], 3)
    for name, sc in scores.items():
        res[f"fid_{name}"] = round(sc["fid"], 3)
        res[f"class_min_fraction_{name}"] = sc["class_min_fraction"]
        res[f"class_fractions_{name}"] = sc["class_fractions"]
        log(f"{name} samples: FID {sc['fid']:.2f} (pixel Gaussian at the same size "
            f"{res[f'fid_pixel_gaussian_{name}']:.2f}), smallest class share {sc['class_min_fraction']:.3f}")
    res.update(n_buffer_scored=n_buf, n_noise_scored=n_noise if "noise" in scores else 0,
               fid_source="buffer", fid=res["fid_buffer"], class_min_fraction=res["class_min_fraction_buffer"],
               fid_pixel_gaussian=res["fid_pixel_gaussian_buffer"])
    res["pngs"] = {name: save_grid(to_evaluator(grids[name]), path)
                   for name, path in zip(("buffer", "noise"), pngs or ()) if name in grids}
    return res


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_fashion_args(argv):
    p = argparse.ArgumentParser(prog="python -m ebm fashion",
                                description="The IGEBM recipe on Fashion-MNIST: train, sample, score.")
    p.add_argument("--quick", action="store_true", help="5,000 images, a small energy, few updates (< 1 min)")
    p.add_argument("--steps", type=positive_int, default=None, help=f"updates (default {FashionConfig.steps}, "
                                                                    f"quick {QUICK['steps']})")
    p.add_argument("--batch", type=positive_int, default=None)
    p.add_argument("--width", type=positive_int, default=None, help="channels of the first convolution")
    p.add_argument("--langevin-steps", type=positive_int, default=None, help="K per update")
    p.add_argument("--sample-steps", type=positive_int, default=None, help="steps of the chains from noise")
    p.add_argument("--lr", type=positive_float, default=None)
    p.add_argument("--alpha", type=number_type(float, 0, strict=False), default=None,
                   help="weight of alpha (E+^2 + E-^2)")
    p.add_argument("--no-spectral-norm", action="store_true")
    p.add_argument("--plain-conv", action="store_true", help="the plain convolutions (gan.conv), not the "
                                                             "tuned twin (gan.conv_fast)")
    p.add_argument("--seed", type=natural, default=0)
    p.add_argument("--n-eval", type=positive_int, default=None, help="buffer samples scored "
                                                                     "(default 10000, quick 1000)")
    p.add_argument("--n-noise", type=positive_int, default=None, help="chains from noise scored "
                                                                      "(default 1000, quick 500)")
    p.add_argument("--cache", default=None, help="folder of gan's cached evaluator")
    p.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST files")
    p.add_argument("--out", default=os.path.join("out", "ebm"), help="folder for the two sample grids")
    p.add_argument("--png", default=None, help="'' for no pictures")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_args(argv)
    if args.png is None:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as err:
            p.error(f"cannot create the output folder {args.out}: {err.strerror}")
    return args


# --quick: the cheap evaluator, 5,000 training images, a narrow energy and short chains
QUICK = dict(steps=100, batch=32, width=8, langevin_steps=10, sample_steps=50, buffer_size=2000)


def fashion_config(args):
    """The run's FashionConfig from the defaults, --quick, then the flags given."""
    cfg = FashionConfig(**QUICK) if args.quick else FashionConfig()
    for name in ("steps", "batch", "width", "langevin_steps", "sample_steps", "lr", "alpha"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    cfg.spectral_norm = not args.no_spectral_norm
    cfg.seed = args.seed
    return cfg


def main_fashion(argv):
    """`python -m ebm fashion ...`: progress on stderr, the last stdout line one JSON object; exit status."""
    from gan import conv_fast
    from gan.evaluator import default_cache, get_evaluator

    args = parse_fashion_args(argv)
    cfg = fashion_config(args)
    suffix = "-quick" if args.quick else ""
    pngs = None if args.png == "" else [os.path.join(args.out, f"fashion-{kind}{suffix}.png")
                                        for kind in ("buffer", "noise")]
    try:
        ev = get_evaluator(args.cache or default_cache(), args.quick, args.data_dir, _log)
        _log(f"ebm fashion: {cfg.steps} updates of batch {cfg.batch}, {cfg.langevin_steps} Langevin steps "
             f"each, width {cfg.width}")
        res = run_fashion(cfg, ev, args.n_eval or (1000 if args.quick else 10000),
                          args.n_noise or (500 if args.quick else 1000), args.data_dir,
                          5000 if args.quick else None, pngs, _log, max(1, cfg.steps // 20),
                          plain_conv if args.plain_conv else conv_fast)
    except (ValueError, FileNotFoundError) as err:
        if args.debug:
            raise
        print(f"python -m ebm fashion: error: {err}", file=sys.stderr)
        return 2
    if res["stopped"]:
        _log(f"training stopped early at {res['stopped']}")
    print(json.dumps({"command": "fashion", **res}))
    return 0
