"""Python side of langevin.cu: argument checks, parameter packing and launches.

Two kernels, each the fused twin of the plain NumPy sampler step
    x <- clamp(x - step * clip(grad U(x), -c, c) + noise * z,  lo, hi),   z ~ N(0, I):
- langevin_update: one step of any batch of states given its gradient (neural energies);
- langevin_chains: many steps of many chains of an analytic energy, one GPU thread per chain.
Noise comes from Philox4x64-10 streams (see philox.cuh for which counter each number uses), so a run
is reproducible with numpy.random.Philox for the same key.
"""
from collections import namedtuple

import numpy as np

from ebm.kernels._loader import default_backend, philox_key, source

MAX_DIM = 8
ENERGY_CODES = {"gaussian": 0, "mixture": 1, "banana": 2, "ring": 3}

AnalyticEnergy = namedtuple("AnalyticEnergy", "kind params n_components dim")
AnalyticEnergy.__doc__ = "An energy the chain kernel knows: kind, packed float32 params, K, D."


def gaussian_params(mean, precision):
    """U = 1/2 (x - mean)^T precision (x - mean).   mean: (D,)   precision: (D, D)"""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    D = mean.shape[0]
    precision = np.asarray(precision, dtype=np.float64)
    if precision.shape != (D, D):
        raise ValueError(f"precision must have shape ({D}, {D}), got {precision.shape}")
    return AnalyticEnergy("gaussian", np.concatenate([mean, precision.ravel()]).astype(np.float32), 1, D)


def mixture_params(log_coef, means, precisions):
    """U = -logsumexp_k (log_coef_k - 1/2 (x - mu_k)^T P_k (x - mu_k)).

    log_coef: (K,) = log w_k - 1/2 log det(2 pi Sigma_k)   means: (K, D)   precisions: (K, D, D)
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (K, D), got {means.shape}")
    K, D = means.shape
    log_coef = np.asarray(log_coef, dtype=np.float64).reshape(-1)
    precisions = np.asarray(precisions, dtype=np.float64)
    if log_coef.shape != (K,) or precisions.shape != (K, D, D):
        raise ValueError(f"log_coef must be ({K},) and precisions ({K}, {D}, {D}), "
                         f"got {log_coef.shape} and {precisions.shape}")
    packed = np.concatenate([log_coef[:, None], means, precisions.reshape(K, D * D)], axis=1)
    return AnalyticEnergy("mixture", packed.ravel().astype(np.float32), K, D)


def banana_params(a, b, s1, s2):
    """U = (x1 - a)^2 / (2 s1^2) + (x2 - b x1^2)^2 / (2 s2^2), in 2-D."""
    return AnalyticEnergy("banana", np.array([a, b, s1, s2], dtype=np.float32), 1, 2)


def ring_params(radius, width):
    """U = (|x| - radius)^2 / (2 width^2), in 2-D."""
    return AnalyticEnergy("ring", np.array([radius, width], dtype=np.float32), 1, 2)


def params_from_energy(energy):
    """The AnalyticEnergy of an ebm.energies object (Gaussian, mixture, banana or ring)."""
    if isinstance(energy, AnalyticEnergy):
        return energy
    host = lambda a: a.get() if hasattr(a, "get") else np.asarray(a)  # noqa: E731  CuPy -> NumPy
    if hasattr(energy, "precisions") and hasattr(energy, "log_coef"):
        return mixture_params(host(energy.log_coef), host(energy.means), host(energy.precisions))
    if hasattr(energy, "precision"):
        return gaussian_params(host(energy.mean), host(energy.precision))
    if all(hasattr(energy, n) for n in ("a", "b", "s1", "s2")):
        return banana_params(energy.a, energy.b, energy.s1, energy.s2)
    if hasattr(energy, "radius") and hasattr(energy, "width"):
        return ring_params(energy.radius, energy.width)
    raise ValueError(f"energy must be a Gaussian, mixture, banana or ring energy (or an AnalyticEnergy), "
                     f"got {type(energy).__name__}")


def _options(step, noise, grad_clip, clamp):
    """Checked scalars as float32: step, noise, clip bound, lo, hi (inf where an option is off)."""
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
    lo, hi = (-np.inf, np.inf) if clamp is None else clamp
    if not lo < hi:
        raise ValueError(f"clamp must be (lo, hi) with lo < hi, got {clamp}")
    c = np.inf if grad_clip is None else grad_clip
    return tuple(np.float32(v) for v in (step, noise, c, lo, hi))


def _check_states(x, name, xp):
    if not isinstance(x, xp.ndarray) or x.dtype != np.float32:
        raise ValueError(f"{name} must be a float32 {xp.__name__} array, got "
                         f"{type(x).__name__} {getattr(x, 'dtype', '')}")
    return xp.ascontiguousarray(x)


def langevin_update(x, grad, step, noise, key, step_index, grad_clip=None, clamp=None, out=None,
                    threads=256, backend=None):
    """One fused Langevin step for states of any shape, given the energy's gradient at x.

    x, grad: same shape, float32   key: Philox key (int)   step_index: selects the noise stream
    returns x_out = clamp(x - step * clip(grad) + noise * z) (written into `out` if given, may be x)
    """
    be = backend or default_backend()
    x, grad = _check_states(x, "x", be.xp), _check_states(grad, "grad", be.xp)
    if grad.shape != x.shape:
        raise ValueError(f"grad must have the shape of x {x.shape}, got {grad.shape}")
    if not bool(be.xp.isfinite(grad).all()):
        raise ValueError(f"grad is not finite at step {step_index}: the sampler diverged")
    opts = _options(step, noise, grad_clip, clamp)
    if out is None:
        out = be.xp.empty_like(x)
    elif out.shape != x.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a contiguous float32 array of shape {x.shape}")
    k0, k1 = philox_key(key)
    n = x.size
    blocks = ((n + 7) // 8 + threads - 1) // threads
    fn = be.kernel(source("langevin.cu"), "langevin_update")
    fn((max(blocks, 1),), (threads,), (x, grad, out, np.int64(n), *opts, k0, k1, np.uint64(step_index)))
    return out


def langevin_chains(x0, energy, n_steps, step, noise, key, block_offset=0, grad_clip=None, clamp=None,
                    threads=128, backend=None):
    """Run n_steps of Langevin dynamics on every chain of an analytic energy, one GPU thread per chain.

    x0: (N, D) float32 starting states, D <= 8   energy: an ebm.energies object or an AnalyticEnergy
    key: Philox key; chain i uses the stream counter [0, i, 0, 0] from block `block_offset` on
    returns (x, next_block_offset): the final states (N, D) and the offset that continues the streams
    """
    be = backend or default_backend()
    xp = be.xp
    e = params_from_energy(energy)
    x = _check_states(x0, "x0", xp).copy()
    if x.ndim != 2 or x.shape[1] != e.dim:
        raise ValueError(f"x0 must have shape (N, {e.dim}) for this energy, got {x.shape}")
    if e.dim > MAX_DIM:
        raise ValueError(f"the chain kernel handles D <= {MAX_DIM}, got D = {e.dim}")
    if int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be an int >= 0, got {n_steps}")
    opts = _options(step, noise, grad_clip, clamp)
    N, D = x.shape
    k0, k1 = philox_key(key)
    bad = xp.full(N, -1, dtype=np.int32)
    params = xp.asarray(e.params)
    fn = be.kernel(source("langevin.cu"), "langevin_chains")
    fn((max((N + threads - 1) // threads, 1),), (threads,),
       (x, np.int32(N), np.int32(D), np.int32(ENERGY_CODES[e.kind]), params, np.int32(e.n_components),
        np.int32(n_steps), *opts, k0, k1, np.uint64(block_offset), bad))
    bad_host = bad.get() if hasattr(bad, "get") else bad
    hit = np.flatnonzero(bad_host >= 0)
    if hit.size:
        chain = int(hit[np.argmin(bad_host[hit])])
        raise ValueError(f"Langevin chain {chain} became non-finite at step {int(bad_host[chain])} "
                         f"(step {step} too large for this energy?)")
    return x, int(block_offset) + int(n_steps) * ((D + 7) // 8)
