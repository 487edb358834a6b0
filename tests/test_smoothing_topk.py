"""smoothing.topk: recursive (6620), threshold-sigmoid and threshold-exp (10373) soft top-k."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import smoothing as S
from tests.gradcheck import check_grad

finite = st.floats(-1e4, 1e4, allow_nan=False, width=64)
NAMES = ["soft_topk_recursive", "soft_topk_sigmoid", "soft_topk_exp"]


def kth_gap(x, k, axis):
    """x_(k-1) - x_(k) in decreasing order: the distance between the k-th and (k+1)-th largest."""
    s = -np.sort(-x, axis=axis)
    return np.take(s, k - 1, axis=axis) - np.take(s, k, axis=axis)


@settings(max_examples=60)
@given(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=6), elements=finite),
       st.sampled_from([1e-3, 0.1, 1.0, 30.0]), st.data())
def test_threshold_versions_bounds(x, t, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    n = x.shape[axis]
    k = data.draw(st.integers(1, n - 1), label="k")
    hard = S.hard_topk(x, k, axis=axis)
    gap = kth_gap(x, k, axis)
    for name in NAMES:
        p = getattr(S, name)(x, k, axis=axis, temperature=t)
        assert p.shape == x.shape and np.isfinite(p).all(), name
        # round-off grows with the spread of x / T (the threshold is found to a few ulps of it)
        tol = 1e-12 + 1e-15 * n * (np.ptp(x, axis=axis) / t)
        assert np.all(np.abs(p.sum(axis=axis) - k) <= tol), f"{name}: sum p = k"
        if name == "soft_topk_recursive":
            continue                                               # no [0, 1] bound to test
        assert np.all(p >= 0) and np.all(p <= 1), f"{name}: p in [0, 1]"
        l1 = np.abs(p - hard).sum(axis=axis)
        if name == "soft_topk_exp":
            bound = 2 * (n - k) * np.exp(-gap / t)
        else:
            bound = 2 * max(k, n - k) * S.sigmoid(-gap / (2 * t))
        ok = gap > 0                                               # a tie at the cut has no limit
        assert np.all(l1[ok] <= bound[ok] + 1e-8), f"{name}: ||p - topk||_1 above its bound"


@settings(max_examples=40)
@given(st.integers(3, 8), st.data())
def test_recursive_tends_to_hard_topk_without_ties(n, data):
    """All three tend to the hard top-k as T -> 0 when the k+1 largest entries are well separated."""
    k = data.draw(st.integers(1, n - 1), label="k")
    x = np.array(data.draw(st.permutations(list(range(n))), label="order"), dtype=float) * 0.5
    hard = S.hard_topk(x, k)
    for name in NAMES:
        errs = [np.abs(getattr(S, name)(x, k, temperature=t) - hard).max() for t in (0.5, 0.05, 0.01)]
        assert errs[-1] < 1e-6, f"{name}: max error {errs[-1]} at T = 0.01"


def test_exp_version_at_k1_is_softmax_and_recursive_leaves_unit_interval():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 7))
    np.testing.assert_allclose(S.soft_topk_exp(x, 1, temperature=0.7), S.softmax(x, temperature=0.7),
                               rtol=1e-13)
    # the documented defect of the recursive construction: entries above 1 at moderate T
    p = S.soft_topk_recursive(np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.6]), 3, temperature=1.0)
    assert p.max() > 1.0


def test_huge_inputs_no_nan():
    x = np.array([[1e4, -1e4, 0.0, 3.0, -2.0], [1e4, 1e4, 1e4, -1e4, -1e4]])
    for name in NAMES:
        for t in (1e-3, 1.0, 1e3):
            p = getattr(S, name)(x, 2, temperature=t)
            assert np.isfinite(p).all(), f"{name} at T={t}"
            np.testing.assert_allclose(p.sum(-1), 2.0, rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6)) * 2                          # away from ties and from clipping
    fwd, bwd, fn = (getattr(S, name + "_forward"), getattr(S, name + "_backward"), getattr(S, name))
    for axis, k, t in ((-1, 2, 1.0), (1, 1, 0.5), (-1, 4, 0.8)):
        _, cache = fwd(x, k, t, axis=axis)
        check_grad(lambda a: fn(a, k, t, axis=axis), [x], lambda d: [bwd(d, cache)], rng,
                   names=[f"x ({name}, axis={axis}, k={k})"], rtol=1e-5, atol=1e-8)


def test_sigmoid_gradient_against_torch_autograd_of_unrolled_solution():
    """torch differentiates sigmoid(z - lam) with lam from the same equation solved by Newton in torch."""
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    rng = np.random.default_rng(2)
    x, k, t = rng.standard_normal(6), 2, 0.6
    d = rng.standard_normal(6)
    tx = torch.tensor(x, requires_grad=True)
    z = tx / t
    lam = torch.zeros((), dtype=torch.float64)
    for _ in range(60):                                             # Newton on sum sigmoid(z - lam) = k
        s = torch.sigmoid(z - lam)
        lam = lam + (s.sum() - k) / (s * (1 - s)).sum()
    (torch.sigmoid(z - lam) * torch.tensor(d)).sum().backward()
    p, cache = S.soft_topk_sigmoid_forward(x, k, temperature=t)
    np.testing.assert_allclose(p, torch.sigmoid(z - lam).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(S.soft_topk_sigmoid_backward(d, cache), tx.grad.numpy(), rtol=1e-8,
                               atol=1e-12, err_msg="implicit gradient vs unrolled Newton")


def test_bad_arguments():
    x = np.ones((2, 4)) * np.arange(4)
    for name in NAMES:
        fn = getattr(S, name)
        for k in (0, 4, -1):
            with pytest.raises(ValueError, match="k must satisfy"):
                fn(x, k)
        with pytest.raises(ValueError, match="k must be an int"):
            fn(x, 1.5)
        with pytest.raises(ValueError, match="temperature"):
            fn(x, 2, temperature=0)
        with pytest.raises(ValueError, match="x must be a floating-point"):
            fn(np.ones((2, 4), dtype=int), 2)
        with pytest.raises(ValueError, match="x must be finite"):
            fn(np.array([0.0, -np.inf, 1.0]), 1)
        with pytest.raises(ValueError, match="axis"):
            fn(x, 1, axis=2)
