"""The gradient checker itself: it passes a right gradient and fails a wrong one."""
import numpy as np
import pytest

from tests.gradcheck import check_grad


def f(x, w):
    return np.tanh(x @ w)


def right(x, w):
    def analytic(dout):
        dz = dout * (1 - np.tanh(x @ w) ** 2)
        return [dz @ w.T, x.T @ dz]
    return analytic


def test_accepts_correct_gradient():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    check_grad(f, [x, w], right(x, w), rng, names=["x", "w"])


@pytest.mark.parametrize("mistake", ["transposed-sign", "scaled", "one-entry"])
def test_rejects_wrong_gradient(mistake):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    good = right(x, w)

    def wrong(dout):
        dx, dw = good(dout)
        if mistake == "transposed-sign":
            dx = -dx
        elif mistake == "scaled":
            dw = 1.01 * dw
        else:
            dw = dw.copy()
            dw[0, 0] += 1e-4
        return [dx, dw]

    with pytest.raises(AssertionError):
        check_grad(f, [x, w], wrong, rng, names=["x", "w"])


def test_rejects_gradient_of_sum_only():
    """A backward that ignores dout's values (correct only for dout = ones) is caught."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))

    def ones_only(dout):
        return right(x, w)(np.ones_like(dout))

    with pytest.raises(AssertionError):
        check_grad(f, [x, w], ones_only, rng, names=["x", "w"])
