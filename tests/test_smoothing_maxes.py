"""smoothing.maxes: smooth max / min, soft one-hot argmax, soft argmax index."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from smoothing import (smooth_max, smooth_max_backward, smooth_max_forward, smooth_min,
                       smooth_min_backward, smooth_min_forward, soft_argmax_index,
                       soft_argmax_index_backward, soft_argmax_index_forward, soft_onehot_argmax,
                       soft_onehot_argmax_backward, soft_onehot_argmax_forward)
from tests.gradcheck import check_grad

finite = st.floats(-1e4, 1e4, allow_nan=False, width=64)
shapes = array_shapes(min_dims=1, max_dims=3, max_side=6)
temps = st.sampled_from([1e-3, 0.1, 1.0, 10.0])


def top_two_gap(x, axis):
    s = np.sort(x, axis=axis)
    n = x.shape[axis]
    if n < 2:
        return np.full(np.max(x, axis=axis).shape, np.inf)
    return np.take(s, n - 1, axis=axis) - np.take(s, n - 2, axis=axis)


@settings(max_examples=80)
@given(arrays(np.float64, shapes, elements=st.one_of(finite, st.just(-np.inf))), temps, st.data())
def test_smooth_max_min_bounds_and_shapes(x, t, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)), label="axis")
    keep = data.draw(st.booleans(), label="keepdims")
    m = np.max(x, axis=axis, keepdims=keep)
    n = x.size if axis is None else x.shape[axis]
    sm = smooth_max(x, axis=axis, temperature=t, keepdims=keep)
    assert sm.shape == m.shape
    fin = np.isfinite(m)
    slack = 1e-12 * (1 + np.abs(m[fin]))
    d = sm[fin] - m[fin]
    assert np.all(d >= -slack) and np.all(d <= t * math.log(n) + slack), "0 <= smax - max <= T log n"
    assert np.all(sm[~fin] == -np.inf)
    y = np.where(np.isfinite(x), x, 0.0)                           # smooth_min refuses -inf
    smn = smooth_min(y, axis=axis, temperature=t, keepdims=keep)
    mn = np.min(y, axis=axis, keepdims=keep)
    assert smn.shape == mn.shape
    dmin = mn - smn
    slack = 1e-12 * (1 + np.abs(mn))
    assert np.all(dmin >= -slack) and np.all(dmin <= t * math.log(n) + slack), "0 <= min - smin <= T log n"


@settings(max_examples=60)
@given(arrays(np.float64, shapes, elements=finite), st.data())
def test_limit_t_to_zero_and_argmax_bounds(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    n = x.shape[axis]
    gap = top_two_gap(x, axis)
    for t in (1.0, 0.1, 0.01):
        p = soft_onehot_argmax(x, axis=axis, temperature=t)
        onehot = np.zeros_like(x)
        np.put_along_axis(onehot, np.expand_dims(np.argmax(x, axis=axis), axis), 1.0, axis=axis)
        l1 = np.abs(p - onehot).sum(axis=axis)
        bound = 2 * (n - 1) * np.exp(-gap / t)
        ok = gap > 0                                                # away from ties
        assert np.all(l1[ok] <= bound[ok] + 1e-12), "||softmax - onehot||_1 <= 2 (n-1) exp(-gap/T)"
        idx = soft_argmax_index(x, axis=axis, temperature=t)
        err = np.abs(idx - np.argmax(x, axis=axis))
        assert np.all(err[ok] <= ((n - 1) ** 2 * np.exp(-gap / t))[ok] + 1e-9)
        sharp = (n - 1) * np.exp(-gap / t)
        sm = smooth_max(x, axis=axis, temperature=t) - np.max(x, axis=axis)
        assert np.all(sm <= t * np.log1p(sharp) + 1e-9 * (1 + np.abs(np.max(x, axis=axis))))


def test_article_examples():
    x = np.array([2.0, 1.0, 4.0, 5.0, 3.0])
    np.testing.assert_allclose(soft_onehot_argmax(x, temperature=0.01), [0, 0, 0, 1, 0], atol=1e-40)
    assert abs(soft_argmax_index(x, temperature=0.01) - 3.0) < 1e-40   # 0-based; the post's 4 is 1-based
    assert abs(soft_argmax_index(np.array([1.0, 3.0, 3.0, 0.0]), temperature=1e-3) - 1.5) < 1e-12
    assert smooth_max(np.array([-np.inf, -np.inf])) == -np.inf
    assert soft_argmax_index(np.array([-np.inf, -np.inf])) == 0.0


def test_huge_inputs_no_nan():
    x = np.array([[1e4, -1e4, 0.0, -np.inf], [-1e4, -1e4, -1e4, -1e4]])
    for t in (1e-3, 1.0, 1e3):
        for f in (smooth_max, soft_onehot_argmax, soft_argmax_index):
            assert np.isfinite(f(x, temperature=t)).all(), f.__name__
        assert np.isfinite(smooth_min(x[:, :3], temperature=t)).all()


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    for axis in (0, -1, None):
        for keep in (False, True):
            _, c = smooth_max_forward(x, 0.7, axis=axis, keepdims=keep)
            check_grad(lambda a: smooth_max(a, 0.7, axis=axis, keepdims=keep), [x],
                       lambda d: [smooth_max_backward(d, c)], rng, names=[f"x (max, axis={axis})"])
            _, c = smooth_min_forward(x, 0.4, axis=axis, keepdims=keep)
            check_grad(lambda a: smooth_min(a, 0.4, axis=axis, keepdims=keep), [x],
                       lambda d: [smooth_min_backward(d, c)], rng, names=[f"x (min, axis={axis})"])
    for axis in (0, 1):
        _, c = soft_onehot_argmax_forward(x, 0.5, axis=axis)
        check_grad(lambda a: soft_onehot_argmax(a, 0.5, axis=axis), [x],
                   lambda d: [soft_onehot_argmax_backward(d, c)], rng, names=["x (onehot)"])
        _, c = soft_argmax_index_forward(x, 0.5, axis=axis)
        check_grad(lambda a: soft_argmax_index(a, 0.5, axis=axis), [x],
                   lambda d: [soft_argmax_index_backward(d, c)], rng, names=["x (index)"])


def test_against_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6))
    d = rng.standard_normal(3)
    tx = torch.tensor(x, requires_grad=True)
    ((0.3 * torch.logsumexp(tx / 0.3, 1)) * torch.tensor(d)).sum().backward()
    out, c = smooth_max_forward(x, 0.3, axis=1)
    np.testing.assert_allclose(out, (0.3 * torch.logsumexp(torch.tensor(x) / 0.3, 1)).numpy(), rtol=1e-13)
    np.testing.assert_allclose(smooth_max_backward(d, c), tx.grad.numpy(), rtol=1e-12, err_msg="dx smax")


def test_bad_arguments():
    x = np.ones((2, 3))
    for f in (smooth_max, smooth_min, soft_onehot_argmax, soft_argmax_index):
        with pytest.raises(ValueError, match="temperature"):
            f(x, temperature=0)
        with pytest.raises(ValueError, match="x must be a floating-point"):
            f(np.ones((2, 3), dtype=int))
        with pytest.raises(ValueError, match="axis"):
            f(x, axis=-3)
    with pytest.raises(ValueError, match="length 0"):
        smooth_max(np.ones((0, 2)), axis=0)
