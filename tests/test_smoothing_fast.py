"""smoothing.fast (row blocks, in place, threads) against smoothing.core (the plain formulas).

Claimed and tested: along the last axis of a C-contiguous array, rows that the tuned code redoes in
the plain order (those whose unshifted row sum leaves exp(-64) .. exp(64) in float32, exp(+-512) in
float64: large maxes, all -inf rows) give the same bits as the plain logsumexp and log_softmax, and
sigmoid always does; the other rows, exponentiated without the shift, agree within a few units in
the last place (float32 rtol 1e-5, float64 1e-13, plus an absolute term of a few eps times the
input's size for logsumexp and log_softmax, and 1e-12 / 1e-20 for probabilities, whose smallest
entries take the rounding of exp at large arguments). The tuned softmax multiplies by 1 / sum where
the plain one divides by the sum. The bits never depend on the number of threads (whether a row is
redone depends on that row only). Along another axis the plain version sums in another order; there
they agree within the same tolerance. Both keep the same conventions: an all -inf row gives -inf /
zeros / -inf, NaN or +inf is refused with a ValueError naming it.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from smoothing import core, fast

PAIRS = [("logsumexp", core.logsumexp, fast.logsumexp), ("softmax", core.softmax, fast.softmax),
         ("log_softmax", core.log_softmax, fast.log_softmax)]
RTOL = {np.float32: 1e-5, np.float64: 1e-13}
PROB_ATOL = {np.float32: 1e-12, np.float64: 1e-20}


def _odd_input(shape, dtype, seed):
    """Random values of both signs and large spread, some -inf entries and one all -inf row."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 20).astype(dtype)
    x[rng.random(shape) < 0.05] = -np.inf
    x.reshape(-1, shape[-1])[0] = -np.inf
    return x


def _same_bits(a, b, what):
    """The same bits; for softmax (multiply by 1 / s against divide by s) within 2 ulp (subnormal ulps
    near zero)."""
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    if what.startswith("softmax"):
        info = np.finfo(a.dtype)
        np.testing.assert_allclose(a, b, rtol=2 * info.eps, atol=2 * info.smallest_subnormal, err_msg=what)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def _agree(a, b, what, x, t):
    """Within the stated tolerance (see the module docstring); -inf exactly where the plain one has it."""
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    dtype = a.dtype.type
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b), err_msg=f"{what}: -inf")
    fin = np.isfinite(b)
    if what.startswith("softmax"):
        atol = PROB_ATOL[dtype]
    else:
        finite_x = x[np.isfinite(x)]
        size = float(np.abs(finite_x).max()) / t if finite_x.size else 0.0
        atol = 8 * np.finfo(dtype).eps * (1.0 + size)
    np.testing.assert_allclose(a[fin], b[fin], rtol=RTOL[dtype], atol=atol, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (5, 3, 31), (131, 1001)])
@pytest.mark.parametrize("t", [1.0, 0.37])
def test_along_the_last_axis(dtype, shape, t):
    x = _odd_input(shape, dtype, seed=sum(shape))
    for name, plain, tuned in PAIRS:
        _agree(tuned(x, axis=-1, temperature=t), plain(x, axis=-1, temperature=t),
               f"{name} {np.dtype(dtype).name} {shape} T={t}", x, t)
    _agree(fast.logsumexp(x, keepdims=True, temperature=t),
           core.logsumexp(x, keepdims=True, temperature=t), "logsumexp keepdims", x, t)
    # row sums beyond exp(+-64) / exp(+-512): the tuned code redoes the rows as the plain one does, same bits
    for shifted, what in ((x * 100 + 1000, "large maxes"), (x * 0.01 - 1000, "very negative rows")):
        for name, plain, tuned in PAIRS:
            _same_bits(tuned(shifted, axis=-1, temperature=t), plain(shifted, axis=-1, temperature=t),
                       f"{name} {np.dtype(dtype).name} {shape} T={t}, {what}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_close_along_other_axes(dtype):
    x = _odd_input((9, 17, 5), dtype, seed=3)
    x[:, 0, :] = np.where(np.isinf(x[:, 0, :]), 0.0, x[:, 0, :])
    for axis in (0, 1):
        for name, plain, tuned in PAIRS:
            _agree(tuned(x, axis=axis, temperature=0.8), plain(x, axis=axis, temperature=0.8),
                   f"{name} axis {axis} {np.dtype(dtype).name}", x, 0.8)


@settings(max_examples=50)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=9),
              elements=st.one_of(st.floats(-1e4, 1e4, width=64), st.just(-np.inf))),
       st.sampled_from([0.01, 1.0, 5.0]))
def test_agree_on_arbitrary_rows(x, t):
    for name, plain, tuned in PAIRS:
        _agree(tuned(x, temperature=t), plain(x, temperature=t), name, x, t)


def test_threads_and_blocks_do_not_change_the_bits(monkeypatch):
    """Many blocks handed out to 3 threads give the bits of one thread, and the plain numbers; some
    rows redone shifted (an all -inf row, large maxes), most not."""
    x = _odd_input((700, 1500), np.float32, seed=5) * np.float32(0.5)   # row maxes about 32
    x[600, ::7] = -np.inf
    x[300:310] *= 10
    monkeypatch.setattr(fast, "_BLOCK_ELEMS", 1 << 14)         # 10 rows a block: 70 blocks
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = {name: tuned(x, axis=1) for name, _, tuned in PAIRS}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(fast, "_PARALLEL_ELEMS", 1)
    for name, plain, tuned in PAIRS:
        got = tuned(x, axis=1)
        np.testing.assert_array_equal(got, one[name], err_msg=f"{name}, 3 threads against 1")
        _agree(got, plain(x, axis=1), f"{name}, threaded", x, 1.0)
    assert np.all(fast.softmax(x)[0] == 0) and fast.logsumexp(x)[0] == -np.inf
    assert np.all(fast.softmax(x)[x == -np.inf] == 0), "an option that cannot be chosen gets exactly 0"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("threaded", [False, True])
def test_nan_and_pos_inf_refused_by_both(bad, threaded, monkeypatch):
    x = _odd_input((40, 30), np.float64, seed=7)
    x[33, 2] = bad
    if threaded:
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        monkeypatch.setattr(fast, "_PARALLEL_ELEMS", 1)
        monkeypatch.setattr(fast, "_BLOCK_ELEMS", 64)
    for name, plain, tuned in PAIRS:
        for fn in (plain, tuned):
            with pytest.raises(ValueError, match=r"NaN or \+inf \(found in 1 of 40 rows\)"):
                fn(x, axis=1)


def test_bad_arguments_refused_alike():
    for fn in (fast.logsumexp, core.logsumexp):
        with pytest.raises(ValueError, match="length 0"):
            fn(np.ones((2, 0)))
        with pytest.raises(ValueError, match="temperature"):
            fn(np.ones(3), temperature=0.0)
        with pytest.raises(ValueError, match="axis"):
            fn(np.ones(3), axis=1)
        with pytest.raises(ValueError, match="floating-point"):
            fn(np.ones(3, dtype=np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_same_bits(dtype):
    x = np.concatenate([np.random.default_rng(8).standard_normal(1001) * 30,
                        [-1e4, -50.0, -0.0, 0.0, 50.0, 1e4, -np.inf, np.inf]]).astype(dtype)
    _same_bits(fast.sigmoid(x), core.sigmoid(x), f"sigmoid {np.dtype(dtype).name}")
    _same_bits(fast.sigmoid(x[:7].reshape(7, 1)), core.sigmoid(x[:7].reshape(7, 1)), "sigmoid 2-D")
