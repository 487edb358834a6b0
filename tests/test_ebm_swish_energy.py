"""The sampler's Swish energy path: equal to the plain pairs, the same bits on any number of threads."""
import numpy as np
import pytest

from ebm.neural import energy_forward, energy_input_grad, neural_energy_init
from ebm.swish_energy import _BLOCK_ROWS, _small_matmul, swish_energy_and_input_grad


def _net(hidden, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params, _ = neural_energy_init(rng, dim=2, hidden=hidden)
    for k in params:                                       # biases away from 0, as after training
        if k.startswith("b"):
            params[k] = 0.3 * rng.standard_normal(params[k].shape)
    params = {k: v.astype(dtype) for k, v in params.items()}
    n = len(params) // 2
    return params, [params[f"W{i}"] for i in range(n)], [params[f"b{i}"] for i in range(n)], rng


def _plain(params, x):
    U, cache = energy_forward(params, x)
    return U, energy_input_grad(np.ones_like(U), cache)


# B is not a multiple of the block, nor of the 8-row stacks of a 128-wide product
@pytest.mark.parametrize("hidden", [(128, 128), (40, 24, 16), (20,), ()])
def test_fast_path_equals_the_plain_pairs(hidden):
    params, W, b, rng = _net(hidden, 1)
    x = 3 * rng.standard_normal((2 * _BLOCK_ROWS + 13, 2))
    U, dx = swish_energy_and_input_grad(W, b, x, threads=2)
    U_ref, dx_ref = _plain(params, x)
    np.testing.assert_allclose(U, U_ref, rtol=1e-12, atol=1e-12, err_msg=f"U, hidden {hidden}")
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12, err_msg=f"dU/dx, hidden {hidden}")
    assert U.shape == (x.shape[0],) and dx.shape == x.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_give_the_same_bits_as_one_thread(dtype):
    _, W, b, rng = _net((128, 64), 2, dtype)
    x = (3 * rng.standard_normal((11 * _BLOCK_ROWS + 5, 2))).astype(dtype)
    U1, dx1 = swish_energy_and_input_grad(W, b, x, threads=1)
    assert U1.dtype == dtype and dx1.dtype == dtype
    for threads in (2, 3, None):
        U, dx = swish_energy_and_input_grad(W, b, x, threads=threads)
        assert np.array_equal(U, U1), f"U with {threads} threads"
        assert np.array_equal(dx, dx1), f"dU/dx with {threads} threads"


def test_float32_matches_float64_and_saturates_without_warnings():
    params, W, b, rng = _net((128, 128), 3)
    x = 3 * rng.standard_normal((1000, 2))
    U64, dx64 = swish_energy_and_input_grad(W, b, x)
    W32, b32 = [w.astype(np.float32) for w in W], [v.astype(np.float32) for v in b]
    U32, dx32 = swish_energy_and_input_grad(W32, b32, x.astype(np.float32), threads=2)
    np.testing.assert_allclose(U32, U64, rtol=1e-5, atol=1e-5, err_msg="U float32")
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5, err_msg="dU/dx float32")
    # tanh saturates to +-1 far out: exact 0 and 2 for c, finite U and gradient, no warning
    with np.errstate(all="raise"):
        U, dx = swish_energy_and_input_grad(W32, b32, (1e4 * x).astype(np.float32), threads=2)
    assert np.isfinite(U).all() and np.isfinite(dx).all()


def test_worker_threads_follow_the_callers_errstate():
    _, W, b, rng = _net((128, 128), 4)
    x = rng.standard_normal((4 * _BLOCK_ROWS, 2))
    x[-1, 0] = np.inf                                      # in the last block, a worker thread's
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        swish_energy_and_input_grad(W, b, x, threads=2)
    with np.errstate(invalid="ignore"):
        U, dx = swish_energy_and_input_grad(W, b, x, threads=2)
    assert np.isfinite(dx[:-1]).all() and not np.isfinite(dx[-1]).all()


@pytest.mark.parametrize("r, K, N", [(256, 128, 128), (261, 128, 128), (5, 128, 128), (300, 128, 1),
                                     (256, 3, 128), (256, 128, 2)])
def test_small_matmul_equals_one_product(r, K, N):
    rng = np.random.default_rng(5)
    a, W = rng.standard_normal((r, K)), rng.standard_normal((K, N))
    out = np.full((r, N), np.nan)
    _small_matmul(a, W, out)
    np.testing.assert_allclose(out, a @ W, rtol=1e-12, atol=1e-12, err_msg=f"({r}, {K}) @ ({K}, {N})")
