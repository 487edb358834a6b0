"""smoothing.elementwise: smooth abs / ReLU / sign / step / floor / round, Swish and GELU."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import smoothing as S
from tests.gradcheck import check_grad

finite = st.floats(-1e4, 1e4, allow_nan=False, width=64)
xs = arrays(np.float64, array_shapes(min_dims=0, max_dims=3, max_side=5), elements=finite)
temps = st.sampled_from([1e-3, 0.05, 0.3, 1.0, 4.0])


def floor_bound(x, t):
    """(exp(-d/T) + exp(-(1-d)/T)) / (1 - exp(-1/T)), d = distance to the nearest integer."""
    d = np.abs(x - np.round(x))
    return (np.exp(-d / t) + np.exp(-(1 - d) / t)) / (-np.expm1(-1.0 / t))


# (name, exact function, bound on |smooth - exact| as a function of (x, T))
BOUNDS = [
    ("smooth_abs", np.abs, lambda x, t: np.full_like(x, t * math.log(2))),
    ("smooth_relu", lambda x: np.maximum(x, 0), lambda x, t: np.full_like(x, t * math.log(2))),
    ("smooth_sign", np.sign, lambda x, t: np.where(x == 0, 0.0, 2 * np.exp(-2 * np.abs(x) / t))),
    ("smooth_step", lambda x: (x > 0) + 0.5 * (x == 0), lambda x, t: np.exp(-np.abs(x) / t)),
    ("swish", lambda x: np.maximum(x, 0), lambda x, t: np.full_like(x, S.SWISH_GAP * t)),
    ("gelu", lambda x: np.maximum(x, 0), lambda x, t: np.full_like(x, S.GELU_GAP * t)),
    ("smooth_floor", np.floor, floor_bound),
    ("smooth_round", lambda x: np.floor(x + 0.5), lambda x, t: floor_bound(x + 0.5, t)),
]


@pytest.mark.parametrize("name,exact,bound", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_bound_on_arbitrary_inputs(name, exact, bound):
    fn = getattr(S, name)

    @settings(max_examples=40)
    @given(xs, temps)
    def check(x, t):
        if name in ("smooth_floor", "smooth_round"):
            x, t = np.clip(x, -50, 50), min(t, 1.0)               # keep the (2W+1)-term sum small
        y = fn(x, temperature=t)
        assert y.shape == np.shape(x) and np.isfinite(y).all()
        err = np.abs(y - exact(x))
        slack = 1e-12 * (1 + np.abs(x))                           # round-off of the final sums
        assert np.all(err <= bound(x, t) + slack), f"{name}: error above its bound"
        if name in ("smooth_abs", "smooth_relu"):
            assert np.all(y - exact(x) >= -slack), "smooth version lies above"
        if name in ("swish", "gelu"):
            assert np.all(exact(x) - y >= -slack), "smooth version lies below ReLU"
    check()


def test_limits_as_t_goes_to_zero():
    x = np.array([-3.7, -2.01, -0.4, -0.01, 0.02, 0.3, 0.49, 0.51, 1.2, 2.51, 8.3])
    exact = {"smooth_abs": np.abs(x), "smooth_relu": np.maximum(x, 0), "smooth_sign": np.sign(x),
             "smooth_step": (x > 0) * 1.0, "swish": np.maximum(x, 0), "gelu": np.maximum(x, 0),
             "smooth_floor": np.floor(x), "smooth_round": np.floor(x + 0.5)}
    for name, want in exact.items():
        errs = [np.abs(getattr(S, name)(x, temperature=t) - want).max() for t in (0.1, 1e-2, 1e-3)]
        assert errs[2] < 1e-3 and errs[2] <= errs[0], f"{name}: errors {errs} do not shrink to 0"


def test_special_values():
    assert S.smooth_floor(np.array(2.0), 0.05) == pytest.approx(1.5)     # midpoint of the jump
    assert S.smooth_round(np.array(2.5), 0.05) == pytest.approx(2.5)
    np.testing.assert_allclose(S.gelu(np.array([1.0, -1.0])), [0.8413447460685429, -0.15865525393145707],
                               rtol=1e-15)
    assert S.smooth_sign(np.array(0.0)) == 0.0 and S.smooth_step(np.array(0.0)) == 0.5
    x32 = np.linspace(-3, 3, 7, dtype=np.float32)
    for name, _, _ in BOUNDS:
        assert getattr(S, name)(x32, temperature=0.5).dtype == np.float32, name


@pytest.mark.parametrize("name", [b[0] for b in BOUNDS])
def test_gradients_match_finite_differences(name):
    rng = np.random.default_rng(3)
    # away from the kinks of floor / round, where the smooth version is steep at small T
    x = rng.uniform(-3, 3, size=(3, 4)) + 0.23
    fwd, bwd, fn = (getattr(S, name + "_forward"), getattr(S, name + "_backward"), getattr(S, name))
    for t in (1.0, 0.3):
        _, cache = fwd(x, t)
        check_grad(lambda a: fn(a, t), [x], lambda d: [bwd(d, cache)], rng, names=[f"x ({name}, T={t})"])


def test_against_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(20) * 3
    tx = torch.tensor(x)
    pairs = {"gelu": torch.nn.functional.gelu(tx), "swish": torch.nn.functional.silu(tx),
             "smooth_relu": torch.nn.functional.softplus(tx), "smooth_sign": torch.tanh(tx),
             "smooth_step": torch.sigmoid(tx)}
    for name, ref in pairs.items():
        np.testing.assert_allclose(getattr(S, name)(x, temperature=1.0), ref.numpy(), rtol=1e-13,
                                   atol=1e-15, err_msg=name)
        tx2 = torch.tensor(x, requires_grad=True)
        fn = {"gelu": torch.nn.functional.gelu, "swish": torch.nn.functional.silu,
              "smooth_relu": torch.nn.functional.softplus, "smooth_sign": torch.tanh,
              "smooth_step": torch.sigmoid}[name]
        d = rng.standard_normal(20)
        (fn(tx2) * torch.tensor(d)).sum().backward()
        _, cache = getattr(S, name + "_forward")(x, 1.0)
        np.testing.assert_allclose(getattr(S, name + "_backward")(d, cache), tx2.grad.numpy(),
                                   rtol=1e-12, atol=1e-15, err_msg=f"d{name}")


def test_bad_arguments():
    for name, _, _ in BOUNDS:
        fn = getattr(S, name)
        with pytest.raises(ValueError, match="temperature"):
            fn(np.ones(3), temperature=0.0)
        with pytest.raises(ValueError, match="temperature"):
            fn(np.ones(3), temperature=-2.0)
        with pytest.raises(ValueError, match="x must be a floating-point"):
            fn(np.arange(3))
