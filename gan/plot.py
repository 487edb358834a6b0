"""A PNG of generated samples over the data, on D's energy landscape (needs matplotlib)."""
import numpy as np

from .data import get_dataset, sample_data, to_numpy
from .energy import energy_grid
from .train import sample


def plot_samples(model, cfg, path, rng, n=2500):
    """Write `path`: D's energy U = -D as filled contours, real points (grey), generated ones (red).

    Returns path, or None when matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    modes, sigma = get_dataset(cfg.data)
    fake = to_numpy(sample(model, n, rng, cfg.z_dim))                     # matplotlib draws host arrays
    real = to_numpy(sample_data(cfg.data, n, rng))
    lim = float(np.abs(modes).max()) + 1.0
    X, Y, U = energy_grid(model, (-lim, lim), (-lim, lim), n=121)
    U = to_numpy(U)
    fig, ax = plt.subplots(figsize=(6, 6))
    filled = ax.contourf(X, Y, U, levels=30, cmap="viridis")
    fig.colorbar(filled, ax=ax, shrink=0.8, label="energy U(x) = -D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=2, c="lightgrey", label="data")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="red", alpha=0.5, label="generated")
    ax.scatter(modes[:, 0], modes[:, 1], s=30, facecolors="none", edgecolors="white", linewidths=0.8)
    head = "plain D" if cfg.n_stages == 1 else \
        f"CR N={cfg.n_stages}, G on {'all stages' if cfg.g_stages == 'all' else 'stage 1'}"
    outside = int((np.abs(fake) > lim).any(axis=1).sum())
    ax.set_title(f"{cfg.data}, {head}, {cfg.loss} loss, {cfg.steps} steps, seed {cfg.seed}"
                 + (f"\n{outside} of {n} generated points lie outside the frame" if outside else ""),
                 fontsize=9)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
