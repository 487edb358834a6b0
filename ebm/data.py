"""Toy 2-D data sets for training energies, each drawn with a passed-in rng.

    eight_gaussians   8 Gaussians of std 0.5/sqrt(2) ~ 0.35 on a circle of radius 4/sqrt(2) ~ 2.83
                      (the common "8gaussians" toy); its exact density is a GaussianMixtureEnergy,
                      so the true negative log-likelihood is known
    two_moons         two interleaved half circles with Gaussian noise, rescaled to about [-3, 3]
    checkerboard      uniform on the 8 dark squares of side 2 of a 4 x 4 board on [-4, 4]^2,
                      exact density 1/32 there (entropy log 32)

All return float64 arrays (n, 2) inside [-4.5, 4.5]^2 with overwhelming probability.
"""
import math

import numpy as np

from .energies import GaussianMixtureEnergy

RING_RADIUS = 4 / math.sqrt(2)
RING_STD = 0.5 / math.sqrt(2)


def _check_n(n):
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def eight_gaussians_energy():
    """The exact density of eight_gaussians as an energy (log Z = 0)."""
    angles = np.arange(8) * (2 * math.pi / 8)
    means = RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)     # (8, 2)
    covs = np.tile(RING_STD ** 2 * np.eye(2), (8, 1, 1))
    return GaussianMixtureEnergy(np.full(8, 1 / 8), means, covs)


def eight_gaussians(n, rng):
    """n points: a uniformly chosen circle centre plus N(0, RING_STD^2 I). (n, 2)"""
    n = _check_n(n)
    angle = rng.integers(0, 8, n) * (2 * math.pi / 8)
    centre = RING_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centre + RING_STD * rng.standard_normal((n, 2))


def two_moons(n, rng, noise=0.1):
    """n points on two interleaved half circles (radius 1, noise std `noise`), scaled by 2. (n, 2)"""
    n = _check_n(n)
    t = math.pi * rng.random(n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return 2.0 * (pts - np.array([0.5, 0.25]))                     # centred near the origin


def checkerboard(n, rng):
    """n points uniform on the squares [2i, 2i+2] x [2j, 2j+2] of [-4, 4]^2 with i + j even. (n, 2)"""
    n = _check_n(n)
    col = rng.integers(0, 4, n)
    row = 2 * rng.integers(0, 2, n) + (col % 2)                    # a dark square in that column
    corner = np.stack([col, row], axis=1) * 2.0 - 4.0
    return corner + 2.0 * rng.random((n, 2))


DATASETS = {"8gaussians": eight_gaussians, "moons": two_moons, "checkerboard": checkerboard}


def true_nll(name, x):
    """Mean -log p(x) under the data's own density where it is known in closed form, else None."""
    if name == "8gaussians":
        return float(-eight_gaussians_energy().log_prob(x).mean())
    if name == "checkerboard":
        return math.log(32.0)
    return None
