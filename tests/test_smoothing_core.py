"""smoothing.core: logsumexp, softmax, log_softmax, sigmoid, softplus and the argument checks."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from smoothing import (as_float_array, check_axis, check_positive, get_xp, log_softmax,
                       log_softmax_backward, logsumexp, sigmoid, softmax, softmax_backward, softplus,
                       softplus_backward)
from tests.gradcheck import check_grad

finite = st.floats(-1e4, 1e4, allow_nan=False, width=64)
with_neg_inf = st.one_of(finite, st.just(-np.inf))


def exact_lse(row, t=1.0):
    """Reference logsumexp of a 1-D row in plain Python floats (math.fsum, no NumPy tricks)."""
    finite_vals = [v for v in row if v != -math.inf]
    if not finite_vals:
        return -math.inf
    m = max(finite_vals)
    return m + t * math.log(math.fsum(math.exp((v - m) / t) for v in finite_vals))


@settings(max_examples=60)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=6), elements=with_neg_inf),
       st.sampled_from([0.01, 0.5, 1.0, 7.0]), st.data())
def test_logsumexp_matches_exact_formula_and_bound(x, t, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    got = logsumexp(x, axis=axis, temperature=t)
    assert got.shape == np.max(x, axis=axis).shape
    rows = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    want = np.array([exact_lse(r, t) for r in rows]).reshape(got.shape)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9, err_msg="logsumexp vs fsum formula")
    m, n = np.max(x, axis=axis), x.shape[axis]
    fin = np.isfinite(m)
    assert np.all(got[fin] >= m[fin] - 1e-9 * (1 + np.abs(m[fin])))
    assert np.all(got[fin] <= m[fin] + t * math.log(n) + 1e-9 * (1 + np.abs(m[fin])))
    assert np.all(got[~fin] == -np.inf)
    kept = logsumexp(x, axis=axis, keepdims=True, temperature=t)
    assert kept.shape == np.max(x, axis=axis, keepdims=True).shape


@settings(max_examples=60)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=6), elements=with_neg_inf),
       st.sampled_from([0.05, 1.0, 3.0]), st.data())
def test_softmax_and_log_softmax_rows(x, t, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    p = softmax(x, axis=axis, temperature=t)
    lp = log_softmax(x, axis=axis, temperature=t)
    assert p.shape == x.shape and lp.shape == x.shape
    assert not np.isnan(p).any() and not np.isnan(lp).any()
    sums = p.sum(axis=axis)
    all_neg_inf = np.all(x == -np.inf, axis=axis)
    np.testing.assert_allclose(sums[~all_neg_inf], 1.0, rtol=1e-12, err_msg="softmax row sums")
    assert np.all(sums[all_neg_inf] == 0.0)
    assert np.all(p[x == -np.inf] == 0.0) and np.all(lp[x == -np.inf] == -np.inf)
    np.testing.assert_allclose(np.exp(lp), p, rtol=1e-9, atol=1e-300, err_msg="exp(log_softmax)")


def test_all_neg_inf_rows_and_huge_values():
    x = np.array([[-np.inf, -np.inf, -np.inf], [1e4, -1e4, 1e4 - 1.0], [-1e300, 1e300, 0.0]])
    np.testing.assert_array_equal(softmax(x)[0], 0.0)
    assert logsumexp(x)[0] == -np.inf and np.all(log_softmax(x)[0] == -np.inf)
    np.testing.assert_allclose(logsumexp(x)[1], 1e4 + math.log(1 + math.exp(-1.0)), rtol=1e-15)
    np.testing.assert_allclose(softmax(x)[2], [0.0, 1.0, 0.0])
    assert np.isfinite(logsumexp(x, temperature=1e-3)[1:]).all()
    x32 = x[:2].astype(np.float32)
    assert softmax(x32).dtype == np.float32 and logsumexp(x32).dtype == np.float32


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_pos_inf_refused(bad):
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        softmax(np.array([[0.0, bad], [1.0, 2.0]]))


def test_large_array_uses_blocks_like_small():
    """Many rows (several cache blocks) give the same numbers as one row at a time."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 1000)) * 30
    x[5] = -np.inf
    ref = np.array([exact_lse(r) for r in x])
    np.testing.assert_allclose(logsumexp(x), ref, rtol=1e-12)
    p = softmax(x, temperature=2.0)
    np.testing.assert_allclose(p[6], np.exp((x[6] - x[6].max()) / 2) / np.exp((x[6] - x[6].max()) / 2).sum())


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5))
    for axis in (0, 1):
        for t in (1.0, 0.7):
            p = softmax(x, axis=axis, temperature=t)
            check_grad(lambda a: softmax(a, axis=axis, temperature=t), [x],
                       lambda d: [softmax_backward(d, p, axis=axis, temperature=t)], rng, names=["x"])
            lp = log_softmax(x, axis=axis, temperature=t)
            check_grad(lambda a: log_softmax(a, axis=axis, temperature=t), [x],
                       lambda d: [log_softmax_backward(d, lp, axis=axis, temperature=t)], rng, names=["x"])
    for t in (1.0, 0.3):
        check_grad(lambda a: softplus(a, t), [x], lambda d: [softplus_backward(d, x, t)], rng, names=["x"])


def test_against_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 5)) * 3
    x[1, 2, :] = -np.inf
    x[0, 0, 3] = -np.inf
    tx = torch.tensor(x, requires_grad=True)
    for dim in (0, 1, 2):
        np.testing.assert_allclose(logsumexp(x, axis=dim), torch.logsumexp(tx, dim).detach().numpy(),
                                   rtol=1e-12, err_msg=f"logsumexp dim {dim}")
    np.testing.assert_allclose(softmax(x, axis=0), torch.softmax(tx, 0).detach().numpy(), atol=1e-15)
    xf = rng.standard_normal((4, 6))
    tf = torch.tensor(xf, requires_grad=True)
    d = rng.standard_normal((4, 6))
    (torch.softmax(tf / 0.5, 1) * torch.tensor(d)).sum().backward()
    p = softmax(xf, axis=1, temperature=0.5)
    np.testing.assert_allclose(softmax_backward(d, p, 0.5, axis=1), tf.grad.numpy(), rtol=1e-10,
                               err_msg="softmax backward")
    tf.grad = None
    (torch.nn.functional.softplus(tf, beta=1 / 0.5) * torch.tensor(d)).sum().backward()
    np.testing.assert_allclose(softplus(xf, 0.5), torch.nn.functional.softplus(
        torch.tensor(xf), beta=2.0, threshold=1e9).numpy(), rtol=1e-12, err_msg="softplus")
    np.testing.assert_allclose(softplus_backward(d, xf, 0.5), tf.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(sigmoid(xf * 40), torch.sigmoid(torch.tensor(xf * 40)).numpy(), rtol=1e-14)


def test_sigmoid_softplus_extremes_no_warnings():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    s = sigmoid(x)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    sp = softplus(x, temperature=0.01)
    np.testing.assert_allclose(sp, [0.0, 0.0, 0.01 * math.log(2), 50.0, 1e4], atol=1e-300)
    assert np.all(sp - np.maximum(x, 0) <= 0.01 * math.log(2) + 1e-15)


def test_bad_arguments_name_the_argument():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="x must be a floating-point"):
        softmax(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="temperature"):
        logsumexp(x, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        softplus(x, temperature=-1.0)
    with pytest.raises(ValueError, match="axis"):
        logsumexp(x, axis=2)
    with pytest.raises(ValueError, match="axis"):
        check_axis(x, 1.0)
    with pytest.raises(ValueError, match="length 0"):
        logsumexp(np.ones((2, 0)))
    with pytest.raises(ValueError, match="weights"):
        as_float_array("abc", "weights")
    assert check_positive(2, "t") == 2.0 and get_xp(x) is np
