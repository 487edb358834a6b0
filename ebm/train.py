"""Training an energy by contrastive divergence, as in IGEBM's official code.

The maximum-likelihood gradient of q = exp(-U) / Z is E_data[dU/dtheta] - E_q[dU/dtheta]: push the
energy of data (x+) down and of the model's own samples (x-) up. The samples come from Langevin
chains started from the replay buffer. The loss, with the official code's sign for the regulariser
(it penalises the size of both energies, so neither can run off to -inf or +inf):

    L = mean U(x+) - mean U(x-) + lambda (mean U(x+)^2 + mean U(x-)^2)
    dL/dU(x+_i) = (1 + 2 lambda U(x+_i)) / B,   dL/dU(x-_i) = (-1 + 2 lambda U(x-_i)) / B

x- is treated as a constant (no gradient flows through the sampler). A sample stuck where the data
is not gets pushed up only until -1 + 2 lambda U = 0, i.e. U = 1 / (2 lambda): lambda caps the range
of the energy at about 1 / (2 lambda) nats. IGEBM's lambda = 1 is harmless at its temperature of
about 1e-6 (a range of 1 is a factor exp(1e6) in density), but at temperature 1 it flattens the
model to within a factor e; here the default is lambda = 0.01 (a range of about 50). Adam with beta1 = 0: the
sampler's distribution moves with theta, so momentum carries stale gradients (IGEBM uses 0).
"""
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np

from gan.optim import Adam
from gan.progress import Progress
from smoothing import get_xp

from .buffer import ReplayBuffer
from .neural import energy_backward, energy_forward, neural_energy, neural_energy_init
from .samplers import effective_temperature, practical_langevin


@dataclass
class TrainConfig:
    """Everything a training run depends on (besides the data and the rng)."""
    hidden: tuple = (128, 128)
    spectral_norm: bool = False
    batch: int = 256
    iters: int = 3000
    lr: float = 2e-3
    lr_final: float = 2e-4            # lr decays linearly to this: damps the mode-weight oscillation
    beta2: float = 0.999
    lam: float = 0.01                 # weight of the L2 energy regulariser (official code: 1, see below)
    langevin_steps: int = 20          # K steps per training iteration
    step: float = 0.005               # eta of x <- x - eta dU + sigma xi
    noise: float = 0.1                # sigma; sqrt(2 eta) = 0.1 gives temperature 1
    clip_grad: float = None           # elementwise clip of dU/dx in the sampler (IGEBM: 0.01)
    buffer_size: int = 10000
    reinit: float = 0.05
    box: float = 4.5                  # data, noise and chains live in [-box, box]^2
    dtype: str = "float32"            # of parameters and chains (float32: about 3x faster exp)

    @property
    def temperature(self):
        return effective_temperature(self.step, self.noise)


def cd_loss_forward(params, x_pos, x_neg, lam, state=None):
    """Contrastive-divergence loss with the L2 energy regulariser.

    x_pos: (B+, D) data   x_neg: (B-, D) model samples   returns (loss, cache)
    Both batches go through the network together, so they see the same (spectrally normalised) W.
    """
    B = x_pos.shape[0]
    U, net_cache = energy_forward(params, get_xp(x_pos).concatenate([x_pos, x_neg]), state)
    U_pos, U_neg = U[:B], U[B:]
    with np.errstate(over="ignore", invalid="ignore"):          # a diverged run is refused by train()
        loss = U_pos.mean() - U_neg.mean() + lam * ((U_pos ** 2).mean() + (U_neg ** 2).mean())
    return float(loss), (net_cache, U_pos, U_neg, lam)


def cd_loss_backward(cache):
    """Gradients of the CD loss with params' keys, and the updated spectral-norm state."""
    net_cache, U_pos, U_neg, lam = cache
    dU = get_xp(U_pos).concatenate([(1 + 2 * lam * U_pos) / U_pos.shape[0],
                         (-1 + 2 * lam * U_neg) / U_neg.shape[0]])
    _, grads = energy_backward(dU, net_cache)
    return grads, net_cache["state"]


def train(data, cfg, rng, log_every=0, fused=False):
    """Fit an MLP energy to data (N, 2) by persistent CD with a replay buffer.

    fused: the sampler runs the tuned Swish energy (ebm.swish_energy) instead of the plain pairs.
    Returns (params, state, buffer, history) with history a list of per-log-point dicts.
    """
    if data.ndim != 2 or data.shape[1] != 2:
        raise ValueError(f"data must have shape (N, 2), got {data.shape}")
    dtype = np.dtype(cfg.dtype)
    params, state = neural_energy_init(rng, dim=2, hidden=cfg.hidden, spectral_norm=cfg.spectral_norm,
                                       dtype=dtype)
    opt = Adam(params, lr=cfg.lr, betas=(0.0, cfg.beta2))
    buffer = ReplayBuffer(cfg.buffer_size, 2, -cfg.box, cfg.box, reinit=cfg.reinit, dtype=dtype)
    data = data.astype(dtype, copy=False)
    history = []
    clock = Progress(cfg.iters, word="iter")
    for it in range(1, cfg.iters + 1):
        x_pos = data[rng.integers(0, data.shape[0], cfg.batch)]           # (B, 2)
        x_neg = practical_langevin(neural_energy(params, state, fused=fused), buffer.sample(cfg.batch, rng),
                                   cfg.step, cfg.noise, cfg.langevin_steps, rng,
                                   clip_grad=cfg.clip_grad, clamp=(-cfg.box, cfg.box))
        buffer.push(x_neg)
        loss, cache = cd_loss_forward(params, x_pos, x_neg, cfg.lam, state)
        if not math.isfinite(loss):
            raise ValueError(f"training diverged at iteration {it}: loss {loss}")
        grads, state = cd_loss_backward(cache)
        opt.lr = cfg.lr + (cfg.lr_final - cfg.lr) * (it - 1) / max(1, cfg.iters - 1)
        opt.step(params, grads)
        if log_every and (it % log_every == 0 or it == cfg.iters):
            _, U_pos, U_neg, _ = cache
            history.append({"iter": it, "loss": loss, "U_data": float(U_pos.mean()),
                            "U_samples": float(U_neg.mean())})
            print(f"{clock.line(it)}  loss {loss:+.4f}  U(data) {float(U_pos.mean()):+.3f}  "
                  f"U(samples) {float(U_neg.mean()):+.3f}", file=sys.stderr, flush=True)
    return params, state, buffer, history


def config_dict(cfg):
    """The config as plain JSON-able values."""
    d = asdict(cfg)
    d["hidden"] = list(d["hidden"])
    d["temperature"] = cfg.temperature
    return d
