"""Langevin samplers for q(x) = exp(-U(x)) / Z on batches of independent chains.

All three share one update, `langevin_step`:

    x <- clamp(x - eta * clip(dU/dx) + sigma * xi),    xi ~ N(0, I)

which, without clip and clamp and for small eta, samples exp(-U / T) with T = sigma^2 / (2 eta)
(the stationary Fokker-Planck density of dx = -dU dt + sqrt(2 T) dW, with dt = eta).

  ula                 Su's form (kexue.fm 6612): eta = eps / 2, sigma = sqrt(eps), so T = 1. Biased
                      by O(eps) for any eps > 0, exact only as eps -> 0.
  mala                the same proposal, accepted with the Metropolis-Hastings probability, so
                      q is exactly stationary for every eps; reports its acceptance rate.
  practical_langevin  the IGEBM variant (Du & Mordatch 2019): step eta and noise sigma chosen
                      separately, elementwise gradient clipping, clamping to the data range. With
                      their eta = 10, sigma = 0.005 it samples at T = 1.25e-6: noisy gradient
                      descent on U, not calibrated MCMC.

An energy is any callable x (B, D) -> (U (B,), dU/dx (B, D)). Every sampler takes its random numbers
from a passed-in rng (numpy.random.Generator, or CuPy's for CuPy arrays) and stops with a ValueError
naming the step when an energy or gradient stops being finite.
"""
import math

import numpy as np

from smoothing import check_positive, get_xp


def effective_temperature(step, noise_scale):
    """T = sigma^2 / (2 eta): the update x - eta dU + sigma xi samples exp(-U / T) as eta -> 0."""
    return check_positive(noise_scale, "noise_scale") ** 2 / (2 * check_positive(step, "step"))


def langevin_step(x, grad, step, noise_scale, noise, clip_grad=None, clamp=None):
    """One Langevin update of every chain.

    x, grad, noise: (B, D) (grad = dU/dx at x, noise ~ N(0, I) drawn by the caller)
    step: eta > 0   noise_scale: sigma >= 0   clip_grad: None or c > 0   clamp: None or (lo, hi)
    x_new = clamp(x - eta * clip(grad, -c, c) + sigma * noise, lo, hi)     returns (B, D)
    """
    xp = get_xp(x)
    if clip_grad is not None:
        grad = xp.clip(grad, -clip_grad, clip_grad)
    x_new = x - step * grad
    x_new += noise_scale * noise
    if clamp is not None:
        x_new = xp.clip(x_new, clamp[0], clamp[1], out=x_new)
    return x_new


def _start(x0):
    """Check the initial chains: a finite float (B, D) array; returns a copy."""
    if not hasattr(x0, "ndim") or x0.ndim != 2:
        raise ValueError(f"x0 must be a (B, D) array of chains, got {getattr(x0, 'shape', type(x0).__name__)}")
    if x0.dtype.kind != "f":
        raise ValueError(f"x0 must be a floating-point array, got dtype {x0.dtype}")
    if not bool(get_xp(x0).isfinite(x0).all()):
        raise ValueError("x0 must be finite; it holds NaN or inf")
    return x0.copy()


def _check_steps(n_steps):
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    return int(n_steps)


def _check_finite_chains(x, step_index):
    bad = int((~get_xp(x).isfinite(x).all(axis=1)).sum())
    if bad:
        raise ValueError(f"sampling stopped at step {step_index}: {bad} of {x.shape[0]} chains "
                         "left the finite numbers (step too large for this energy?)")


def _evaluate(energy, x, step_index):
    """U, dU = energy(x), refusing NaN or inf with a message that names the step."""
    _check_finite_chains(x, step_index)
    with np.errstate(over="ignore", invalid="ignore"):       # reported as a ValueError below
        U, grad = energy(x)
    xp = get_xp(x)
    if U.shape != x.shape[:1] or grad.shape != x.shape:
        raise ValueError(f"energy must return U of shape {x.shape[:1]} and dU/dx of shape {x.shape}, "
                         f"got {U.shape} and {grad.shape}")
    bad_u = int((~xp.isfinite(U)).sum())
    bad_g = int((~xp.isfinite(grad).all(axis=1)).sum())
    if bad_u or bad_g:
        raise ValueError(f"sampling stopped at step {step_index}: the energy is not finite for {bad_u} "
                         f"and its gradient for {bad_g} of {x.shape[0]} chains")
    return U, grad


def practical_langevin(energy, x0, step, noise_scale, n_steps, rng, clip_grad=None, clamp=None):
    """The IGEBM sampler: n_steps of x <- clamp(x - step * clip(dU/dx) + noise_scale * xi).

    x0: (B, D) starting chains   step: eta > 0   noise_scale: sigma >= 0
    clip_grad: elementwise bound on dU/dx (IGEBM: 0.01), None for no clipping
    clamp: (lo, hi) data range (IGEBM: (0, 1) for images), None for no clamping
    Samples exp(-U / T) with T = sigma^2 / (2 eta) (see effective_temperature), not exp(-U),
    unless sigma^2 = 2 eta. Returns the final chains (B, D).
    """
    step = check_positive(step, "step")
    noise_scale = float(noise_scale)
    if not (noise_scale >= 0 and math.isfinite(noise_scale)):
        raise ValueError(f"noise_scale must be a finite number >= 0, got {noise_scale!r}")
    if clip_grad is not None:
        clip_grad = check_positive(clip_grad, "clip_grad")
    if clamp is not None and not (len(clamp) == 2 and clamp[0] < clamp[1]):
        raise ValueError(f"clamp must be None or (lo, hi) with lo < hi, got {clamp!r}")
    x = _start(x0)
    n_steps = _check_steps(n_steps)
    for t in range(n_steps):
        _, grad = _evaluate(energy, x, t)
        noise = rng.standard_normal(x.shape, dtype=x.dtype)
        with np.errstate(over="ignore", invalid="ignore"):   # overflow is caught just below
            x = langevin_step(x, grad, step, noise_scale, noise, clip_grad, clamp)
    _check_finite_chains(x, n_steps)
    return x


def ula(energy, x0, eps, n_steps, rng):
    """Unadjusted Langevin algorithm as in the post: x <- x - (eps / 2) dU/dx + sqrt(eps) xi.

    x0: (B, D)   eps > 0   returns the chains after n_steps, (B, D)
    The stationary law is q only as eps -> 0; at finite eps it is off by O(eps) (for a Gaussian
    with variance s^2 the chain's variance is s^2 / (1 - eps / (4 s^2)), see the tests).
    """
    eps = check_positive(eps, "eps")
    return practical_langevin(energy, x0, eps / 2, math.sqrt(eps), n_steps, rng)


def _log_proposal(x_to, x_from, grad_from, eps):
    """log q(x_to | x_from) up to a constant: -|x_to - x_from + (eps/2) grad_from|^2 / (2 eps). (B,)"""
    d = x_to - x_from + (eps / 2) * grad_from
    return -(d * d).sum(axis=1) / (2 * eps)


def mala_step(x, U, grad, energy, eps, noise, log_u, step_index=0):
    """One Metropolis-adjusted Langevin step for every chain.

    x, grad, noise: (B, D)   U, log_u: (B,) with log_u = log of Uniform(0, 1) draws
    Proposal y = x - (eps/2) dU(x) + sqrt(eps) xi; accept where
    log u < U(x) - U(y) + log q(x | y) - log q(y | x).
    Returns (x, U, grad, accepted (B,) bool) after the step.
    """
    xp = get_xp(x)
    y = langevin_step(x, grad, eps / 2, math.sqrt(eps), noise)
    U_y, grad_y = _evaluate(energy, y, step_index)
    log_alpha = U - U_y + _log_proposal(x, y, grad_y, eps) - _log_proposal(y, x, grad, eps)
    accept = log_u < log_alpha                                     # (B,)
    x = xp.where(accept[:, None], y, x)
    U = xp.where(accept, U_y, U)
    grad = xp.where(accept[:, None], grad_y, grad)
    return x, U, grad, accept


def mala(energy, x0, eps, n_steps, rng):
    """Metropolis-adjusted Langevin: q(x) is exactly stationary for any eps > 0.

    x0: (B, D)   eps > 0   returns (chains (B, D), acceptance rate over all chains and steps)
    """
    eps = check_positive(eps, "eps")
    n_steps = _check_steps(n_steps)
    x = _start(x0)
    U, grad = _evaluate(energy, x, 0)
    accepted = 0
    for t in range(n_steps):
        noise = rng.standard_normal(x.shape, dtype=x.dtype)
        log_u = get_xp(x).log(1.0 - rng.random(x.shape[0]))       # log Uniform(0, 1], never log 0
        x, U, grad, acc = mala_step(x, U, grad, energy, eps, noise, log_u, t + 1)
        accepted += int(acc.sum())
    return x, accepted / max(1, n_steps * x.shape[0])
