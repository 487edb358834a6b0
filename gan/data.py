"""2-D mixtures of Gaussians for measuring mode collapse, and the usual metrics on them.

  ring: 8 Gaussians evenly spaced on a circle of radius 2, sigma = 0.02 (Metz et al. 2017, Unrolled GANs)
  grid: 25 Gaussians on the 5 x 5 grid {-4, -2, 0, 2, 4}^2, sigma = 0.05 (Srivastava et al. 2017, VEEGAN;
        Lin et al. 2018, PacGAN)
Metrics on n generated samples, each assigned to its nearest mode:
  high_quality:  fraction of samples within 3 sigma of their nearest mode
  modes_covered: modes holding at least a fraction `min_share` of the samples as high-quality ones
                 (0.008, i.e. PacGAN's 20 of 2500)
  kl:            KL(p || uniform) of the histogram p of all samples over their nearest modes,
                 sum_k p_k log(K p_k); 0 when every mode gets the same share, log K when one gets all
"""
import numpy as np

from smoothing import get_xp


def ring_modes(n=8, radius=2.0):
    """Centres on a circle: (n, 2)."""
    angle = 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def grid_modes(k=5, spacing=2.0):
    """Centres on a k x k grid centred at 0: (k * k, 2)."""
    ticks = (np.arange(k) - (k - 1) / 2) * spacing
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


DATASETS = {"ring": (ring_modes(), 0.02), "grid": (grid_modes(), 0.05)}


def get_dataset(name):
    """(modes (K, 2), sigma) of a named dataset."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name]


def sample_data(name, n, rng):
    """n points from the equal-weight mixture: (n, 2), arrays of the rng's module (numpy or cupy)."""
    modes, sigma = get_dataset(name)
    which = rng.integers(0, len(modes), size=n)                          # (n,)
    return get_xp(which).asarray(modes)[which] + sigma * rng.standard_normal((n, 2))


def mode_metrics(samples, modes, sigma, min_share=0.008):
    """Mode coverage, quality and balance of generated samples.

    samples: (n, 2) finite, of any module (copied to the host)   modes: (K, 2)   sigma: the mixture's std
    returns {"modes_covered": int, "n_modes": K, "high_quality": float in [0, 1], "kl": float >= 0}
    """
    samples = to_numpy(samples)
    if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must have shape (n, 2) with n >= 1, got {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples contain non-finite values (inf or NaN): the generator diverged")
    d2 = ((samples[:, None, :] - modes[None, :, :]) ** 2).sum(axis=2)     # (n, K)
    nearest = d2.argmin(axis=1)                                           # (n,)
    good = d2[np.arange(len(samples)), nearest] <= (3 * sigma) ** 2
    good_counts = np.bincount(nearest[good], minlength=len(modes))
    p = np.bincount(nearest, minlength=len(modes)) / len(samples)
    nz = p > 0
    kl = float((p[nz] * np.log(p[nz] * len(modes))).sum())
    min_count = max(1, int(np.ceil(min_share * len(samples))))
    return {"modes_covered": int((good_counts >= min_count).sum()), "n_modes": len(modes),
            "high_quality": float(good.mean()), "kl": max(kl, 0.0)}


def to_numpy(a):
    """A host copy of a NumPy or CuPy array."""
    return a.get() if get_xp(a) is not np else np.asarray(a)
