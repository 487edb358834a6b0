"""Analytic energies: gradients by finite differences, normalisers and moments by quadrature."""
import math

import numpy as np
import pytest

from ebm.data import checkerboard, eight_gaussians, eight_gaussians_energy, two_moons
from ebm.energies import (BananaEnergy, GaussianEnergy, GaussianMixtureEnergy, RingEnergy,
                          normal_cdf)
from ebm.evaluate import grid_cells, kde_fit, kde_log_density, log_partition
from tests.gradcheck import check_grad


def _energies():
    return {
        "gaussian-correlated": GaussianEnergy([1.0, -2.0], [[2.0, 1.2], [1.2, 1.0]]),
        "gaussian-3d": GaussianEnergy([0.5, 0.0, -1.0], [[1.0, 0.3, 0.1], [0.3, 0.5, 0.0],
                                                         [0.1, 0.0, 2.0]]),
        "mixture-2d": GaussianMixtureEnergy([0.2, 0.5, 0.3], [[-1.0, 0.0], [1.0, 1.0], [0.0, -1.5]],
                                            [np.eye(2) * 0.5, [[1.0, 0.4], [0.4, 0.6]], np.eye(2)]),
        "mixture-1d": GaussianMixtureEnergy([0.3, 0.7], [[-1.5], [1.0]], [[[0.25]], [[0.49]]]),
        "banana": BananaEnergy(a=0.5, b=0.8, s1=1.0, s2=0.6),
        "ring": RingEnergy(radius=2.0, width=0.4),
    }


@pytest.mark.parametrize("name", sorted(_energies()))
def test_energy_gradient_matches_finite_differences(name):
    energy = _energies()[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, energy.dim)) * 1.5 + 0.1          # away from the ring's origin
    check_grad(lambda x: energy(x)[0], [x],
               lambda dout: [dout[:, None] * energy(x)[1]], rng, names=[f"dU/dx of {name}"])


@pytest.mark.parametrize("name", ["gaussian-correlated", "mixture-2d", "banana", "ring"])
def test_log_z_matches_quadrature(name):
    energy = _energies()[name]
    box = 12.0 if name != "banana" else 14.0
    lz = log_partition(energy.value, -box, box, n=600)
    assert abs(lz - energy.log_z) < 2e-4, (name, lz, energy.log_z)


@pytest.mark.parametrize("name", ["gaussian-correlated", "mixture-2d", "banana"])
def test_exact_moments_match_quadrature(name):
    energy = _energies()[name]
    box, n = (22.0, 900) if name == "banana" else (12.0, 500)    # the banana's x2 tail is long
    cells, area = grid_cells(-box, box, n)
    p = np.exp(energy.log_prob(cells)) * area                          # cell masses
    mean = p @ cells
    cov = (cells - mean).T @ ((cells - mean) * p[:, None])
    np.testing.assert_allclose(mean, energy.mean, atol=2e-4, err_msg=f"mean of {name}")
    np.testing.assert_allclose(cov, energy.cov, atol=2e-3, err_msg=f"cov of {name}")


def test_mixture_cdf_is_the_integral_of_the_density():
    energy = _energies()["mixture-1d"]
    x = np.linspace(-6, 6, 24001)[:, None]
    dens = np.exp(energy.log_prob(x))
    cdf_num = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * (x[1, 0] - x[0, 0]))])
    np.testing.assert_allclose(energy.cdf(x[:, 0]), cdf_num, atol=1e-6, err_msg="mixture CDF")
    assert abs(float(normal_cdf(1.96)) - 0.9750021) < 1e-6


def test_normal_cdf_on_scalars_and_ring_construction():
    """Regression: normal_cdf of a scalar (RingEnergy's log Z) must give a float64, not an object."""
    for z in (1.96, np.float32(1.96), np.array(1.96)):
        value = normal_cdf(z)
        assert np.asarray(value).dtype == np.float64 and abs(float(value) - 0.9750021) < 1e-6
    np.testing.assert_allclose(normal_cdf(np.array([-1.0, 0.0, 3.0])),
                               [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-1.0, 0.0, 3.0)],
                               rtol=1e-15)
    r, s = 2.0, 0.3
    ring = RingEnergy(r, s)
    phi = 0.5 * (1 + math.erf(r / s / math.sqrt(2)))
    z = 2 * math.pi * (s * s * math.exp(-r * r / (2 * s * s)) + r * s * math.sqrt(2 * math.pi) * phi)
    assert ring.log_z == pytest.approx(math.log(z), rel=1e-14)


def test_float32_input_gives_float32_output():
    energy = _energies()["mixture-2d"]
    U, dU = energy(np.ones((3, 2), dtype=np.float32))
    assert U.dtype == np.float32 and dU.dtype == np.float32


@pytest.mark.parametrize("bad", [np.ones((3, 3)), np.ones(2), np.ones((3, 2), dtype=np.int64)])
def test_wrong_points_are_refused(bad):
    with pytest.raises(ValueError, match="x must"):
        _energies()["banana"](bad)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="positive definite"):
        GaussianEnergy([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        GaussianEnergy([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureEnergy([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    with pytest.raises(ValueError, match="s1 and s2"):
        BananaEnergy(s2=0.0)


def test_datasets_stay_in_the_box_and_match_their_densities():
    rng = np.random.default_rng(0)
    for draw in (eight_gaussians, two_moons, checkerboard):
        x = draw(5000, rng)
        assert x.shape == (5000, 2) and np.abs(x).max() < 4.5, draw.__name__
    # checkerboard: only squares with (i + j) even are occupied, each with about 1/8 of the points
    x = checkerboard(16000, rng)
    ij = np.floor((x + 4) / 2).astype(int)
    assert np.all((ij.sum(axis=1) % 2) == 0)
    counts = np.bincount(ij[:, 0] * 4 + ij[:, 1], minlength=16)[::1]
    assert counts[counts > 0].size == 8 and abs(counts[counts > 0] / 16000 - 1 / 8).max() < 0.015
    # 8 Gaussians: the sample mean of -log p matches the mixture's entropy computed by quadrature
    energy = eight_gaussians_energy()
    cells, area = grid_cells(-6, 6, 500)
    logp = energy.log_prob(cells)
    entropy = float(-(np.exp(logp) * logp).sum() * area)
    nll = float(-energy.log_prob(eight_gaussians(20000, rng)).mean())
    assert abs(nll - entropy) < 0.03, (nll, entropy)


def test_kde_is_normalised_and_picks_a_sensible_bandwidth():
    rng = np.random.default_rng(1)
    train, val = eight_gaussians(600, rng), eight_gaussians(300, rng)
    h = kde_fit(train, val)
    assert 0.05 < h < 0.5
    cells, area = grid_cells(-6, 6, 200)
    mass = float(np.exp(kde_log_density(cells, train, h)).sum() * area)
    assert abs(mass - 1.0) < 1e-3, mass
    assert math.isfinite(float(kde_log_density(val, train, h).mean()))
