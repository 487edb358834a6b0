"""PNG figures of a trained energy: the density exp(-U) / Z on the box, and samples beside data.

Needs matplotlib (the `plot` extra); `have_matplotlib()` says whether it is there.
"""
import numpy as np


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def save_density_and_samples(path, U_grid, box, data, samples, title=""):
    """Three panels: the data, exp(-U) normalised on the grid, and Langevin samples.

    U_grid: (n, n) energies on the grid (row = y)   data, samples: (N, 2)   box: half-width
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    density = np.exp(-(U_grid - U_grid.min()))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    extent = (-box, box, -box, box)
    axes[0].scatter(data[:, 0], data[:, 1], s=1, alpha=0.4)
    axes[0].set_title("data")
    axes[1].imshow(density, origin="lower", extent=extent, cmap="viridis")
    axes[1].set_title("exp(-U), model density")
    axes[2].scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.4, color="tab:red")
    axes[2].set_title("Langevin samples")
    for ax in axes:
        ax.set_xlim(-box, box)
        ax.set_ylim(-box, box)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
