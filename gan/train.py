"""One GAN on 2-D data: an MLP generator, an MLP discriminator with a Cascading Rejection head, Adam.

  G: z (B, Z) -> 2 hidden ReLU layers of H -> x (B, 2)
  D: x (B, 2) -> 2 hidden LeakyReLU layers of H = features v (B, H) -> cascade scores (B, N)
Each step updates D once on a real and a fake batch, then G once on a fresh fake batch. D's gradient
with respect to x (the `dx` of the same backward pairs) is what carries the signal into G.
With n_stages = 1 the head is the plain linear score <v, w>.
"""
from dataclasses import asdict, dataclass

import numpy as np

from smoothing import get_xp

from .cascade import (cascade_backward, cascade_forward, cascade_init, cr_d_loss_backward,
                      cr_d_loss_forward, cr_g_loss_backward, cr_g_loss_forward)
from .data import get_dataset, mode_metrics, sample_data
from .mlp import mlp_backward, mlp_forward, mlp_init
from .optim import Adam
from .progress import Progress


@dataclass
class GANConfig:
    """Everything that defines a run; two runs with equal configs give equal numbers."""
    data: str = "ring"          # "ring" (8 modes) or "grid" (25 modes)
    n_stages: int = 1           # N, the number of cascade scores; 1 = plain discriminator
    g_stages: str = "all"       # G's loss over "all" N scores or the "first" only
    loss: str = "ns"            # "ns" (non-saturating) or "hinge"
    steps: int = 2500
    batch: int = 128
    z_dim: int = 8
    hidden: int = 64
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    spectral_norm: bool = False  # on D's hidden layers
    seed: int = 0
    n_eval: int = 2500           # samples for the mode metrics


def init_gan(cfg, rng):
    """{"G": params, "D": params with the head "cr_w" (N, H), "D_state": spectral-norm vectors}."""
    get_dataset(cfg.data)
    G, _ = mlp_init([cfg.z_dim, cfg.hidden, cfg.hidden, 2], rng)
    D, D_state = mlp_init([2, cfg.hidden, cfg.hidden], rng, spectral_norm=cfg.spectral_norm)
    D["cr_w"] = cascade_init(cfg.n_stages, cfg.hidden, rng)
    return {"G": G, "D": D, "D_state": D_state}


def generate(G, z):
    """x = G(z). z: (B, Z) -> x (B, 2), cache."""
    return mlp_forward(G, z, activation="relu")


def discriminate(model, x):
    """Cascade scores of D. x: (B, 2) -> scores (B, N), cache (cache["state"]: the new SN vectors)."""
    body = {k: p for k, p in model["D"].items() if k != "cr_w"}
    v, body_cache = mlp_forward(body, x, "leaky_relu", model["D_state"], final_activation="leaky_relu")
    scores, head_cache = cascade_forward(v, model["D"]["cr_w"])              # (B, N)
    return scores, {"body": body_cache, "head": head_cache, "state": body_cache["state"]}


def discriminate_backward(dscores, cache):
    """dscores: (B, N) -> dx (B, 2), grads with the keys of model["D"]."""
    dv, dw = cascade_backward(dscores, cache["head"])
    dx, grads = mlp_backward(dv, cache["body"])
    grads["cr_w"] = dw
    return dx, grads


def d_step(model, opt_d, cfg, rng):
    """One discriminator update; returns its loss and the N per-stage losses."""
    real = sample_data(cfg.data, cfg.batch, rng)
    fake, _ = generate(model["G"], rng.standard_normal((cfg.batch, cfg.z_dim)))
    xp = get_xp(real)
    scores, cache = discriminate(model, xp.concatenate([real, fake]))         # (2B, N)
    model["D_state"] = cache["state"]
    loss, lcache = cr_d_loss_forward(scores[:cfg.batch], scores[cfg.batch:], cfg.loss)
    ds_real, ds_fake = cr_d_loss_backward(1.0, lcache)
    _, grads = discriminate_backward(xp.concatenate([ds_real, ds_fake]), cache)
    opt_d.step(model["D"], grads)
    return float(loss), lcache["per_stage"]


def g_step(model, opt_g, cfg, rng):
    """One generator update through the (fixed) discriminator; returns G's loss."""
    fake, gcache = generate(model["G"], rng.standard_normal((cfg.batch, cfg.z_dim)))
    scores, dcache = discriminate(model, fake)
    model["D_state"] = dcache["state"]
    loss, lcache = cr_g_loss_forward(scores, cfg.loss, cfg.g_stages)
    dx, _ = discriminate_backward(cr_g_loss_backward(1.0, lcache), dcache)  # D's grads are dropped
    _, grads = mlp_backward(dx, gcache)
    opt_g.step(model["G"], grads)
    return float(loss)


def sample(model, n, rng, z_dim):
    """n generated points: (n, 2)."""
    return generate(model["G"], rng.standard_normal((n, z_dim)))[0]


def evaluate(model, cfg, rng):
    """Mode metrics of cfg.n_eval generated samples."""
    modes, sigma = get_dataset(cfg.data)
    return mode_metrics(sample(model, cfg.n_eval, rng, cfg.z_dim), modes, sigma)


def train(cfg, progress=None, log_every=500):
    """Train one GAN. Returns (model, result dict with metrics, losses, seconds and the config).

    The numbers depend on cfg alone (the seed included); only train_seconds depends on the machine.
    result["start"] holds the metrics of the untrained generator, the baseline of what was learned.
    progress: optional callable(str) for a progress line every `log_every` steps (with updates per
    second and the time left).
    """
    if cfg.steps < 1 or cfg.batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got steps={cfg.steps}, batch={cfg.batch}")
    rng = np.random.default_rng(cfg.seed)
    model = init_gan(cfg, rng)
    start = evaluate(model, cfg, np.random.default_rng([cfg.seed, 1]))
    opt_d = Adam(model["D"], cfg.lr_d, betas=(0.5, 0.999))
    opt_g = Adam(model["G"], cfg.lr_g, betas=(0.5, 0.999))
    clock = Progress(cfg.steps)
    for step in range(1, cfg.steps + 1):
        d_loss, per_stage = d_step(model, opt_d, cfg, rng)
        g_loss = g_step(model, opt_g, cfg, rng)
        if progress is not None and (step % log_every == 0 or step == cfg.steps):
            progress(f"{clock.line(step)}  D {d_loss:.4f}  G {g_loss:.4f}  "
                     f"per-stage D {' '.join(f'{x:.3f}' for x in per_stage)}")
    seconds = clock.clock() - clock.start
    metrics = evaluate(model, cfg, np.random.default_rng([cfg.seed, 1]))
    return model, {"config": asdict(cfg), **metrics, "start": start, "d_loss": d_loss, "g_loss": g_loss,
                   "d_loss_per_stage": per_stage, "train_seconds": round(seconds, 3)}
