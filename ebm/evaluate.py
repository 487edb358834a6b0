"""Exact evaluation in 2-D: the partition function by quadrature, test NLL, and a KDE baseline.

In two dimensions Z = int exp(-U(x)) dx can be computed on a grid, so an energy model trained by
contrastive divergence (which never sees Z) can still be scored by held-out log-likelihood:

    log Z ~ log sum_cells exp(-U(c)) h^2          (midpoint rule on an n x n grid over the box)
    NLL   = mean_test U(x) + log Z

The model is taken to live on the box (the samplers clamp to it), so the box must cover the data.
The baseline is a Gaussian kernel density estimate, normalised exactly,
    log p(x) = logsumexp_i(-|x - x_i|^2 / (2 h^2)) - log N - (D / 2) log(2 pi h^2),
with h chosen by likelihood on a validation split.
"""
import math

import numpy as np

from smoothing import get_xp, logsumexp


def grid_cells(low, high, n):
    """Midpoints of an n x n grid on [low, high]^2: (n * n, 2) and the cell area h^2."""
    if not float(low) < float(high) or int(n) < 2:
        raise ValueError(f"need low < high and n >= 2, got low={low}, high={high}, n={n}")
    h = (high - low) / n
    c = low + h * (np.arange(n) + 0.5)                             # (n,)
    gx, gy = np.meshgrid(c, c, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1), h * h


def grid_energy(energy_value, low, high, n, batch=65536):
    """U on the grid cells, as an (n, n) image (row = y, column = x). energy_value: (B, 2) -> (B,)."""
    cells, _ = grid_cells(low, high, n)
    U = np.concatenate([np.asarray(energy_value(cells[i:i + batch]), dtype=np.float64)
                        for i in range(0, len(cells), batch)])
    if not np.isfinite(U).all():
        raise ValueError("the energy is not finite on the whole grid; cannot compute Z")
    return U.reshape(n, n)


def log_partition(energy_value, low, high, n=400):
    """log Z = log int_box exp(-U) by the midpoint rule on an n x n grid."""
    U = grid_energy(energy_value, low, high, n)
    _, area = grid_cells(low, high, n)
    return float(logsumexp(-U.ravel())) + math.log(area)


def model_nll(energy_value, x_test, low, high, n=400):
    """Mean negative log-likelihood of x_test (B, 2) under exp(-U) / Z on the box, and log Z."""
    outside = int(((x_test < low) | (x_test > high)).any(axis=1).sum())
    if outside:
        raise ValueError(f"{outside} test points lie outside the box [{low}, {high}]^2")
    log_z = log_partition(energy_value, low, high, n)
    return float(np.mean(energy_value(x_test))) + log_z, log_z


def kde_log_density(x, centres, bandwidth, batch=2048):
    """log of the Gaussian KDE with the given centres (N, D) and bandwidth h at x (B, D): (B,)."""
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    xp = get_xp(x)
    N, D = centres.shape
    c2 = (centres * centres).sum(axis=1)                            # (N,)
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        d2 = (xb * xb).sum(axis=1)[:, None] + c2[None, :] - 2 * xb @ centres.T   # (b, N)
        d2 = xp.maximum(d2, 0.0)
        out.append(logsumexp(-d2 / (2 * bandwidth ** 2), axis=1))
    const = math.log(N) + 0.5 * D * math.log(2 * math.pi * bandwidth ** 2)
    return xp.concatenate(out) - const


def kde_fit(train, val, bandwidths=None):
    """The bandwidth (from a log-spaced list) with the best validation log-likelihood."""
    if bandwidths is None:
        bandwidths = np.geomspace(0.03, 1.0, 15)
    scores = [float(kde_log_density(val, train, h).mean()) for h in bandwidths]
    return float(bandwidths[int(np.argmax(scores))])
