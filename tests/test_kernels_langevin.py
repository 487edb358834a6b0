"""ebm/kernels/langevin.cu against a NumPy reference on the same Philox stream (CPU emulation; GPU too).

The reference is ebm.samplers.langevin_step, x <- clamp(x - step * clip(grad U(x)) + noise * z, lo, hi),
in float64 with the energies' closed-form gradients, fed the kernel's normals recomputed by
tests/cuda_emu/philox_ref.
"""
import numpy as np
import pytest

from ebm.kernels import (banana_params, gaussian_params, langevin_chains, langevin_update, mixture_params,
                         ring_params)
from ebm import energies as en
from ebm.samplers import langevin_step
from tests.cuda_emu import philox_ref as P
from tests.cuda_emu.conftest_helpers import cupy_backend_or_skip, emu_backend_or_skip

KEY = 0x1234_5678_9ABC_DEF0_1111_2222


@pytest.fixture(scope="module")
def emu():
    return emu_backend_or_skip()


def grad_reference(e, x):
    """dU/dx in float64 for an AnalyticEnergy (the formulas of ebm/kernels/langevin.py's docstrings)."""
    p = e.params.astype(np.float64)
    D = e.dim
    if e.kind == "gaussian":
        return (x - p[:D]) @ p[D:].reshape(D, D).T
    if e.kind == "mixture":
        rows = p.reshape(e.n_components, 1 + D + D * D)
        c, mu, Pk = rows[:, 0], rows[:, 1:1 + D], rows[:, 1 + D:].reshape(-1, D, D)
        diff = x[:, None, :] - mu                                   # (N, K, D)
        Pd = np.einsum("kde,nke->nkd", Pk, diff)
        lp = c - 0.5 * (diff * Pd).sum(-1)                          # (N, K)
        r = np.exp(lp - lp.max(1, keepdims=True))
        r /= r.sum(1, keepdims=True)
        return (r[:, :, None] * Pd).sum(1)
    if e.kind == "banana":
        a, b, s1, s2 = p
        r1, r2 = (x[:, 0] - a) / s1**2, (x[:, 1] - b * x[:, 0]**2) / s2**2
        return np.stack([r1 - 2 * b * x[:, 0] * r2, r2], 1)
    radius, width = p
    rho = np.sqrt((x * x).sum(1))
    scale = np.where(rho > 0, (rho - radius) / width**2 / np.where(rho > 0, rho, 1), 0.0)
    return scale[:, None] * x


def chain_noise(key, N, D, n_steps, offset):
    """(N, n_steps, D): the normals chain i uses at step s (stream [0, i, 0, 0], blocks from offset)."""
    nb = (D + 7) // 8
    w = P.words_for_rows(key, np.arange(N), 0, offset + n_steps * nb)[:, offset:]
    return P.normals(w).reshape(N, n_steps, nb * 8)[:, :, :D]


def chains_reference(x0, e, n_steps, step, noise, key, offset=0, grad_clip=np.inf, lo=-np.inf, hi=np.inf):
    z = chain_noise(key, x0.shape[0], x0.shape[1], n_steps, offset).astype(np.float64)
    x = x0.astype(np.float64)
    clip = None if grad_clip == np.inf else grad_clip
    clamp = None if (lo, hi) == (-np.inf, np.inf) else (lo, hi)
    for s in range(n_steps):
        x = langevin_step(x, grad_reference(e, x), step, noise, z[:, s], clip, clamp)
    return x


def energies():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    covs = np.array([[[1.0, 0.6], [0.6, 0.8]], [[0.3, 0.0], [0.0, 0.3]], [[0.5, -0.2], [-0.2, 0.4]]])
    means = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    w = np.array([0.5, 0.3, 0.2])
    log_coef = np.log(w) - 0.5 * np.linalg.slogdet(2 * np.pi * covs)[1]
    return {"gaussian5": gaussian_params(rng.standard_normal(5), A @ A.T / 5 + np.eye(5)),
            "mixture": mixture_params(log_coef, means, np.linalg.inv(covs)),
            "banana": banana_params(0.5, 1.0, 1.0, 0.5),
            "ring": ring_params(2.0, 0.3)}


@pytest.mark.parametrize("name", ["gaussian5", "mixture", "banana", "ring"])
def test_chains_match_numpy(emu, name):
    e = energies()[name]
    N, steps = 70, 25                                 # 70 chains: the last of 3 blocks is partial
    x0 = np.random.default_rng(1).standard_normal((N, e.dim)).astype(np.float32)
    x, nxt = langevin_chains(x0, e, steps, 0.01, np.sqrt(0.02), KEY, block_offset=3, threads=32,
                             backend=emu)
    ref = chains_reference(x0, e, steps, 0.01, np.sqrt(0.02), KEY, offset=3)
    np.testing.assert_allclose(x, ref, rtol=1e-4, atol=1e-4, err_msg=f"chain states, {name} energy")
    assert nxt == 3 + steps


def test_chains_clip_and_clamp(emu):
    e = energies()["mixture"]
    x0 = np.random.default_rng(2).uniform(-3, 3, (40, 2)).astype(np.float32)
    opts = dict(grad_clip=0.5, clamp=(-1.0, 2.0))
    x, _ = langevin_chains(x0, e, 15, 0.3, 0.2, KEY, threads=16, backend=emu, **opts)
    ref = chains_reference(x0, e, 15, 0.3, 0.2, KEY, grad_clip=0.5, lo=-1.0, hi=2.0)
    np.testing.assert_allclose(x, ref, rtol=1e-4, atol=1e-4, err_msg="clipped, clamped chains")
    assert x.min() >= -1.0 and x.max() <= 2.0


def test_chains_continue_where_they_stopped(emu):
    """Two calls of 10 steps, passing the returned block offset, equal one call of 20 steps exactly."""
    e = energies()["banana"]
    x0 = np.zeros((33, 2), np.float32)
    one, _ = langevin_chains(x0, e, 20, 0.05, 0.3, KEY, threads=16, backend=emu)
    half, off = langevin_chains(x0, e, 10, 0.05, 0.3, KEY, threads=16, backend=emu)
    two, _ = langevin_chains(half, e, 10, 0.05, 0.3, KEY, block_offset=off, threads=16, backend=emu)
    np.testing.assert_array_equal(two, one)


def test_chains_sample_the_gaussian(emu):
    """Statistics: eps = 0.02 Langevin on a correlated Gaussian gives its mean and covariance."""
    cov = np.array([[1.0, 0.5], [0.5, 0.5]])
    e = gaussian_params([1.0, -1.0], np.linalg.inv(cov))
    x0 = np.zeros((2048, 2), np.float32)
    eps = 0.02
    x, _ = langevin_chains(x0, e, 400, eps / 2, np.sqrt(eps), KEY, threads=128, backend=emu)
    se = np.sqrt(np.diag(cov) / 2048)
    np.testing.assert_array_less(np.abs(x.mean(0) - [1.0, -1.0]), 5 * se)
    # ULA's bias at eps = 0.02 is about eps / 4 relative; 2048 chains give ~3% sampling error
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.12, atol=0.04, err_msg="covariance")


def test_chains_report_divergence(emu):
    e = gaussian_params([0.0, 0.0], 100 * np.eye(2))
    with pytest.raises(ValueError, match="non-finite at step"):
        langevin_chains(np.ones((4, 2), np.float32), e, 200, 0.5, 0.0, KEY, threads=4, backend=emu)


@pytest.mark.parametrize("shape", [(5, 13), (3, 8), (1,)])
def test_update_matches_numpy(emu, shape):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    out = langevin_update(x, g, 10.0, 0.005, KEY, 7, grad_clip=0.01, clamp=(0.0, 1.0), threads=4,
                          backend=emu)
    n = x.size
    z = P.normals(P.words_for_rows(KEY_WORDS, [7], 1, (n + 7) // 8))[0].reshape(-1)[:n].reshape(shape)
    ref = langevin_step(x.astype(np.float64), g.astype(np.float64), 10.0, 0.005, z.astype(np.float64),
                        clip_grad=0.01, clamp=(0.0, 1.0))
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6, err_msg=f"updated states {shape}")


KEY_WORDS = [KEY & (2**64 - 1), KEY >> 64]


def test_update_noise_is_the_philox_stream(emu):
    """With x = grad = 0 and noise 1 the output is the stream's normals; other step_index, other noise."""
    x = np.zeros(100, np.float32)
    z7 = langevin_update(x, x, 1.0, 1.0, KEY, 7, threads=8, backend=emu)
    z8 = langevin_update(x, x, 1.0, 1.0, KEY, 8, threads=8, backend=emu)
    ref = P.normals(P.words_for_rows(KEY_WORDS, [7], 1, 13))[0].reshape(-1)[:100]
    np.testing.assert_allclose(z7, ref, rtol=2e-6, atol=2e-6, err_msg="noise of step 7")
    assert not np.allclose(z7, z8)


def test_bad_input(emu):
    x = np.zeros((4, 2), np.float32)
    e = energies()["ring"]
    with pytest.raises(ValueError, match="step"):
        langevin_chains(x, e, 5, 0.0, 1.0, KEY, backend=emu)
    with pytest.raises(ValueError, match="x0 must have shape"):
        langevin_chains(np.zeros((4, 3), np.float32), e, 5, 0.1, 1.0, KEY, backend=emu)
    with pytest.raises(ValueError, match="float32"):
        langevin_chains(x.astype(np.float64), e, 5, 0.1, 1.0, KEY, backend=emu)
    with pytest.raises(ValueError, match="clamp"):
        langevin_update(x, x, 0.1, 1.0, KEY, 0, clamp=(1.0, 0.0), backend=emu)
    with pytest.raises(ValueError, match="grad is not finite"):
        langevin_update(x, np.full_like(x, np.nan), 0.1, 1.0, KEY, 3, backend=emu)
    with pytest.raises(ValueError, match="key"):
        langevin_update(x, x, 0.1, 1.0, -1, 0, backend=emu)


def test_params_from_ebm_energies(emu):
    """The chain kernel's gradients agree with ebm.energies' (noise 0, one step: x - step * grad U)."""
    objs = [en.GaussianEnergy([0.5, -1.0], [[1.0, 0.3], [0.3, 0.5]]),
            en.GaussianMixtureEnergy([0.3, 0.7], [[-1.0, 0.0], [1.5, 0.5]],
                                     [[[0.5, 0.1], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.6]]]),
            en.BananaEnergy(0.3, 1.2, 1.0, 0.5), en.RingEnergy(2.0, 0.3)]
    x0 = np.random.default_rng(4).standard_normal((24, 2)).astype(np.float32)
    for obj in objs:
        x, _ = langevin_chains(x0, obj, 1, 0.1, 0.0, KEY, threads=8, backend=emu)
        ref = x0 - 0.1 * obj(x0.astype(np.float64))[1]
        np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5, err_msg=type(obj).__name__)


@pytest.mark.gpu
def test_gpu_kernels_match_reference():
    cp_be = cupy_backend_or_skip()
    cp = cp_be.xp
    e = energies()["mixture"]
    x0 = np.random.default_rng(5).standard_normal((1000, 2)).astype(np.float32)
    x, _ = langevin_chains(cp.asarray(x0), e, 30, 0.01, np.sqrt(0.02), KEY, backend=cp_be)
    ref = chains_reference(x0, e, 30, 0.01, np.sqrt(0.02), KEY)
    np.testing.assert_allclose(cp.asnumpy(x), ref, rtol=1e-4, atol=1e-4, err_msg="GPU chains")
    g = np.random.default_rng(6).standard_normal((300, 7)).astype(np.float32)
    out = langevin_update(cp.asarray(x0[:300, :1].repeat(7, 1)), cp.asarray(g), 0.1, 0.5, KEY, 2,
                          backend=cp_be)
    z = P.normals(P.words_for_rows(KEY_WORDS, [2], 1, (2100 + 7) // 8))[0].reshape(-1)[:2100]
    ref = x0[:300, :1].repeat(7, 1) - 0.1 * g + 0.5 * z.reshape(300, 7)
    np.testing.assert_allclose(cp.asnumpy(out), ref, rtol=1e-5, atol=1e-5, err_msg="GPU update")
