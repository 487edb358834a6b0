"""Langevin samplers: statistics with fixed seeds, the temperature of the practical variant, bad input.

Tolerances are stated in standard errors (SE) of the estimate from N independent chains, so a test
fails only when the sampler is off by far more than its own sampling noise.
"""
import math

import numpy as np
import pytest

from ebm.buffer import ReplayBuffer
from ebm.energies import BananaEnergy, GaussianEnergy, GaussianMixtureEnergy
from ebm.samplers import (effective_temperature, langevin_step, mala, mala_step,
                          practical_langevin, ula)

MEAN = np.array([1.0, -2.0])
COV = np.array([[2.0, 1.2], [1.2, 1.0]])                         # correlation 0.85


def _cov_se(S, N):
    """Standard error of each entry of a sample covariance of N Gaussian draws with covariance S."""
    d = np.diag(S)
    return np.sqrt((np.outer(d, d) + S * S) / N)


def _ks(samples, cdf):
    """Kolmogorov-Smirnov distance sup |F_N - F| of 1-D samples to an exact CDF."""
    xs = np.sort(samples)
    n, F = xs.size, cdf(xs)
    return max((np.arange(1, n + 1) / n - F).max(), (F - np.arange(n) / n).max())


def test_mala_reproduces_mean_and_covariance_of_a_correlated_gaussian():
    rng = np.random.default_rng(0)
    N = 4000
    energy = GaussianEnergy(MEAN, COV)
    x, rate = mala(energy, 3.0 * rng.standard_normal((N, 2)), 0.5, 300, rng)
    assert 0.5 < rate < 0.95, rate
    se_mean = np.sqrt(np.diag(COV) / N)
    assert np.all(np.abs(x.mean(axis=0) - MEAN) < 5 * se_mean), x.mean(axis=0)
    assert np.all(np.abs(np.cov(x.T) - COV) < 5 * _cov_se(COV, N)), np.cov(x.T)
    # the same step without the accept/reject is visibly biased: its covariance is off by > 5 SE
    x_ula = ula(energy, 3.0 * rng.standard_normal((N, 2)), 0.5, 300, rng)
    assert np.any(np.abs(np.cov(x_ula.T) - COV) > 5 * _cov_se(COV, N)), np.cov(x_ula.T)


def test_ula_bias_shrinks_with_eps_as_the_exact_formula_says():
    # For a Gaussian, ULA is the linear chain x' = (I - eps/2 P) x + sqrt(eps) xi; its stationary
    # covariance solves S = A S A + eps I, i.e. S_eps = inv(P - (eps / 4) P^2), which tends to COV.
    # Along an eigenvector of COV with variance l: l / (1 - eps / (4 l)), a bias of about eps / 4.
    rng = np.random.default_rng(1)
    N = 20000
    energy = GaussianEnergy(MEAN, COV)
    P, L = np.linalg.inv(COV), np.linalg.cholesky(COV)
    lam, V = np.linalg.eigh(COV)                                   # lam[0] ~ 0.2: the stiff direction
    biases = []
    for eps in (0.4, 0.2, 0.1, 0.05):
        x0 = MEAN + rng.standard_normal((N, 2)) @ L.T             # start at the exact law
        x = ula(energy, x0, eps, int(10 / eps), rng)
        S_theory = np.linalg.inv(P - eps / 4 * P @ P)
        assert np.all(np.abs(np.cov(x.T) - S_theory) < 5 * _cov_se(S_theory, N)), (eps, np.cov(x.T))
        var = ((x - MEAN) @ V).var(axis=0)                         # variance along each eigenvector
        var_theory = lam / (1 - eps / (4 * lam))
        se = var_theory * math.sqrt(2 / N)
        assert np.all(np.abs(var - var_theory) < 5 * se), (eps, var, var_theory)
        assert var[0] - lam[0] > 5 * se[0], (eps, var[0], lam[0])  # the bias is really there
        biases.append(var[0] - lam[0])
    assert all(a > b for a, b in zip(biases, biases[1:])), biases  # and shrinks with eps


def test_mixture_ks_distance_to_the_exact_cdf():
    # Bound 0.035 for N = 4000: the 0.1% critical value of the KS statistic is 1.95 / sqrt(N) = 0.031.
    rng = np.random.default_rng(2)
    N, bound = 4000, 0.035
    energy = GaussianMixtureEnergy([0.3, 0.7], [[-1.5], [1.0]], [[[0.25]], [[0.49]]])
    x, rate = mala(energy, 3.0 * rng.standard_normal((N, 1)), 0.3, 400, rng)
    assert _ks(x[:, 0], energy.cdf) < bound, (_ks(x[:, 0], energy.cdf), rate)
    x = ula(energy, 3.0 * rng.standard_normal((N, 1)), 0.02, 800, rng)
    assert _ks(x[:, 0], energy.cdf) < bound
    # negative control: ULA with a step far too large for modes of width 0.5 fails the same bound
    x = ula(energy, 3.0 * rng.standard_normal((N, 1)), 0.8, 200, rng)
    assert _ks(x[:, 0], energy.cdf) > 2 * bound


def test_practical_langevin_samples_at_temperature_sigma2_over_2eta():
    # x' = (1 - eta) x + sigma xi on U = x^2 / 2 has stationary variance sigma^2 / (2 eta - eta^2),
    # i.e. T / (1 - eta / 2) with T = sigma^2 / (2 eta): exp(-U / T), not exp(-U).
    rng = np.random.default_rng(3)
    N, eta, T = 20000, 0.02, 0.25
    sigma = math.sqrt(2 * eta * T)
    assert effective_temperature(eta, sigma) == pytest.approx(T)
    energy = GaussianEnergy([0.0], [[1.0]])
    x = practical_langevin(energy, rng.standard_normal((N, 1)), eta, sigma, 600, rng)
    expected = T / (1 - eta / 2)
    assert abs(x.var() - expected) < 5 * expected * math.sqrt(2 / N), (x.var(), expected)
    # the table's figures
    assert effective_temperature(10.0, 0.005) == pytest.approx(1.25e-6)
    assert effective_temperature(1.0, 0.01) == pytest.approx(5e-5)
    assert effective_temperature(0.005, 0.1) == pytest.approx(1.0)


def test_langevin_step_arithmetic_clip_and_clamp():
    x = np.array([[0.0, 1.0], [2.0, -3.0]])
    g = np.array([[1.0, -0.5], [10.0, 0.0]])
    xi = np.array([[0.1, 0.2], [-0.3, 0.4]])
    np.testing.assert_allclose(langevin_step(x, g, 0.5, 2.0, xi), x - 0.5 * g + 2.0 * xi,
                               err_msg="plain step")
    clipped = langevin_step(x, g, 0.5, 2.0, xi, clip_grad=0.6)
    np.testing.assert_allclose(clipped, x - 0.5 * np.clip(g, -0.6, 0.6) + 2.0 * xi, err_msg="clip")
    clamped = langevin_step(x, g, 0.5, 2.0, xi, clamp=(-1.0, 1.0))
    np.testing.assert_allclose(clamped, np.clip(x - 0.5 * g + 2.0 * xi, -1, 1), err_msg="clamp")
    np.testing.assert_array_equal(x, [[0.0, 1.0], [2.0, -3.0]])    # input untouched


def test_practical_langevin_moves_at_most_eta_c_plus_noise_and_stays_in_the_box():
    rng = np.random.default_rng(4)
    energy = BananaEnergy()
    x0 = rng.uniform(-1, 1, (500, 2))
    x1 = practical_langevin(energy, x0, 10.0, 0.0, 1, rng, clip_grad=0.01)
    assert np.abs(x1 - x0).max() <= 10.0 * 0.01 + 1e-12
    x = practical_langevin(energy, x0, 10.0, 0.005, 60, rng, clip_grad=0.01, clamp=(0.0, 1.0))
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_samplers_are_reproducible_from_the_seed():
    energy = GaussianEnergy(MEAN, COV)
    x0 = np.zeros((10, 2))
    a, ra = mala(energy, x0, 0.3, 20, np.random.default_rng(7))
    b, rb = mala(energy, x0, 0.3, 20, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert ra == rb
    c = ula(energy, x0, 0.3, 20, np.random.default_rng(8))
    assert not np.array_equal(a, c)


def test_mala_step_rejects_everything_when_the_proposal_is_worse_than_log_u():
    energy = GaussianEnergy([0.0], [[1.0]])
    x = np.array([[0.0], [0.0]])
    U, g = energy(x)
    noise = np.array([[3.0], [3.0]])
    x_new, U_new, _, acc = mala_step(x, U, g, energy, 1.0, noise, np.array([0.0, -50.0]))
    # proposal y = 3: log alpha = 0 - 4.5 + log q(x|y) - log q(y|x) = -4.5 - 1.125 + 4.5 < 0
    assert acc.tolist() == [False, True]
    np.testing.assert_allclose(x_new[:, 0], [0.0, 3.0])
    np.testing.assert_allclose(U_new, [0.0, 4.5])


@pytest.mark.parametrize("eps", [0.0, -0.1, float("nan"), float("inf")])
def test_non_positive_eps_is_refused(eps):
    energy = GaussianEnergy([0.0], [[1.0]])
    rng = np.random.default_rng(0)
    for sampler in (ula, mala):
        with pytest.raises(ValueError, match="eps"):
            sampler(energy, np.zeros((3, 1)), eps, 5, rng)
    with pytest.raises(ValueError, match="step"):
        practical_langevin(energy, np.zeros((3, 1)), eps, 0.1, 5, rng)


def test_non_finite_energy_stops_with_the_step_number():
    calls = []

    def energy(x):                        # U = x^2 / 2, but NaN from the 4th evaluation on
        calls.append(1)
        U = 0.5 * (x * x).sum(axis=1)
        if len(calls) >= 4:
            U[1] = np.nan
        return U, x.copy()

    with pytest.raises(ValueError, match="at step 3: the energy is not finite for 1 "):
        ula(energy, np.zeros((4, 2)), 0.1, 10, np.random.default_rng(0))
    # a banana's cubic gradient throws large steps out to infinity: caught, not returned
    with pytest.raises(ValueError, match="sampling stopped at step"):
        ula(BananaEnergy(), np.random.default_rng(1).normal(0, 3, (2000, 2)), 0.1, 200,
            np.random.default_rng(1))


def test_bad_chains_and_steps_are_refused():
    energy = GaussianEnergy([0.0, 0.0], np.eye(2))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="x0"):
        ula(energy, np.zeros(2), 0.1, 5, rng)
    with pytest.raises(ValueError, match="x0 must be finite"):
        ula(energy, np.array([[0.0, np.inf]]), 0.1, 5, rng)
    with pytest.raises(ValueError, match="n_steps"):
        ula(energy, np.zeros((2, 2)), 0.1, -1, rng)
    with pytest.raises(ValueError, match="clamp"):
        practical_langevin(energy, np.zeros((2, 2)), 0.1, 0.1, 5, rng, clamp=(1.0, 0.0))


def test_replay_buffer_mixes_95_percent_old_samples_with_5_percent_noise():
    rng = np.random.default_rng(5)
    buf = ReplayBuffer(1000, 2, -1.0, 1.0, reinit=0.05)
    first = buf.sample(100, rng)                                    # empty buffer: all noise
    assert first.shape == (100, 2) and np.abs(first).max() <= 1.0
    buf.push(np.full((1000, 2), 7.0))
    x = buf.sample(1000, rng)
    fresh = np.mean(np.abs(x).max(axis=1) <= 1.0)
    assert abs(fresh - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 1000), fresh
    # a ring: pushing 300 more overwrites the 300 oldest
    buf.push(np.full((300, 2), -7.0))
    assert len(buf) == 1000 and (buf.data[:300] == -7.0).all() and (buf.data[300:] == 7.0).all()


def test_replay_buffer_bad_input():
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(10, 2, -1.0, 1.0)
    with pytest.raises(ValueError, match="capacity 10"):
        buf.sample(11, rng)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, 2, -1.0, 1.0)
    with pytest.raises(ValueError, match="x must have shape"):
        buf.push(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="reinit"):
        ReplayBuffer(10, 2, -1.0, 1.0, reinit=1.5)
