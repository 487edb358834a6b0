"""The discriminator as an energy landscape (kexue.fm 6316 / 6612, "energy view of GANs").

Read D's score as a negative energy, U(x) = -D(x): training D digs pits (low U) where the real data lies
and raises U where the fakes are; G then moves its samples downhill, dx = -dU/dx, which is exactly the
gradient of G's loss through D. For a Cascading Rejection head the energy is the weighted sum of the N
stage scores (the quantity D's loss averages), or one stage's score when `stage` is given.
"""
import numpy as np

from smoothing import get_xp

from .train import discriminate


def discriminator_energy(model, x, stage=None, stage_weights=None):
    """U(x) = -sum_k lambda_k s_k(x) (uniform lambda by default), or -s_stage(x).

    model: as from gan.train.init_gan   x: (B, 2)   returns U: (B,)
    The spectral-norm vectors are read, not advanced: evaluating a landscape does not change D.
    """
    scores, _ = discriminate(model, x)                    # (B, N)
    N = scores.shape[1]
    if stage is not None:
        if not isinstance(stage, (int, np.integer)) or not 0 <= stage < N:
            raise ValueError(f"stage must be an int in [0, {N}), got {stage!r}")
        return -scores[:, stage]
    lam = np.full(N, 1.0 / N) if stage_weights is None else np.asarray(stage_weights, float)
    if lam.shape != (N,) or (lam < 0).any() or not lam.sum() > 0:
        raise ValueError(f"stage_weights must be {N} non-negative numbers with a positive sum, "
                         f"got {stage_weights!r}")
    xp = get_xp(scores)                                   # the weights are numbers given by the caller
    return -(scores @ xp.asarray(lam / lam.sum()))


def energy_grid(model, xlim, ylim, n=101, stage=None):
    """U evaluated on an n x n grid, for contour plots.

    xlim, ylim: (low, high)   returns (X (n, n), Y (n, n), U (n, n)) with U[i, j] = U(X[i, j], Y[i, j])
    X and Y are NumPy arrays; U is of the model's module (numpy or cupy).
    """
    if int(n) < 2:
        raise ValueError(f"n must be >= 2 grid points per side, got {n}")
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if len(lim) != 2 or not (np.isfinite(lim).all() and lim[0] < lim[1]):
            raise ValueError(f"{name} must be (low, high) with finite low < high, got {lim!r}")
    X, Y = np.meshgrid(np.linspace(*xlim, int(n)), np.linspace(*ylim, int(n)), indexing="xy")
    points = np.stack([X.ravel(), Y.ravel()], axis=1)     # (n*n, 2)
    xp = get_xp(model["D"]["W0"])                         # where D's weights live
    U = discriminator_energy(model, xp.asarray(points), stage=stage)
    return X, Y, U.reshape(X.shape)
