"""gan/conv.py: conv2d and conv_transpose2d pairs against float64 finite differences and against PyTorch."""
import itertools

import numpy as np
import pytest

from gan.conv import (conv2d_backward, conv2d_forward, conv_transpose2d_backward,
                      conv_transpose2d_forward)
from tests.gradcheck import check_grad
from tests.strict_arrays import StrictArray, strict, to_numpy, to_strict

STRIDES, PADDINGS, KERNELS = (1, 2), (0, 1, 2), (1, 2, 3, 4, 5)


def _inputs(rng, B, C, H, W, w_shape, n_bias):
    """x (B, C, H, W), w of w_shape, and a bias of n_bias entries (None for no bias)."""
    x = rng.standard_normal((B, C, H, W))
    w = rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))
    return x, w, None if n_bias is None else rng.standard_normal(n_bias)


def _torch_check(torch, fn, our_forward, our_backward, x, w, b, kwargs, what):
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ref = fn(tx, tw, tb, **kwargs)
    out, cache = our_forward(x, w, b, **kwargs)
    assert out.shape == tuple(ref.shape), f"{what}: shape {out.shape} vs torch {tuple(ref.shape)}"
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg=f"out {what}")
    dout = np.random.default_rng(9).standard_normal(out.shape)
    (ref * torch.tensor(dout)).sum().backward()
    dx, dw, db = our_backward(dout, cache)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"dx {what}")
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"dw {what}")
    if b is None:
        assert db is None
    else:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"db {what}")


@pytest.mark.parametrize("stride,padding", list(itertools.product(STRIDES, PADDINGS)))
def test_conv2d_equals_torch(stride, padding):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the convolutions")
    rng = np.random.default_rng(stride * 10 + padding)
    for k, (H, W) in itertools.product(KERNELS, [(7, 9), (5, 6), (11, 5)]):
        if min(H, W) + 2 * padding < k:
            continue
        x, w, b = _inputs(rng, 2, 3, H, W, (4, 3, k, k), 4 if k != 2 else None)
        _torch_check(torch, torch.nn.functional.conv2d, conv2d_forward, conv2d_backward, x, w, b,
                     dict(stride=stride, padding=padding), f"conv2d k={k} s={stride} p={padding} {H}x{W}")
    x, w, b = _inputs(rng, 1, 2, 9, 7, (3, 2, 3, 5), 3)                     # a rectangular kernel
    _torch_check(torch, torch.nn.functional.conv2d, conv2d_forward, conv2d_backward, x, w, b,
                 dict(stride=stride, padding=padding), f"conv2d 3x5 s={stride} p={padding}")


@pytest.mark.parametrize("stride,padding", list(itertools.product(STRIDES, PADDINGS)))
def test_conv_transpose2d_equals_torch(stride, padding):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the convolutions")
    rng = np.random.default_rng(100 + stride * 10 + padding)
    for k, (H, W), op in itertools.product(KERNELS, [(7, 9), (4, 5), (3, 3)], range(stride)):
        if (min(H, W) - 1) * stride - 2 * padding + k + op < 1:
            continue
        x, w, b = _inputs(rng, 2, 3, H, W, (3, 4, k, k), 4 if k != 3 else None)
        _torch_check(torch, torch.nn.functional.conv_transpose2d, conv_transpose2d_forward,
                     conv_transpose2d_backward, x, w, b,
                     dict(stride=stride, padding=padding, output_padding=op),
                     f"conv_transpose2d k={k} s={stride} p={padding} op={op} {H}x{W}")


@pytest.mark.parametrize("stride,padding,k", [(1, 0, 3), (2, 1, 4), (2, 2, 5), (1, 1, 1)])
def test_conv2d_gradients_by_finite_differences(stride, padding, k):
    rng = np.random.default_rng(k)
    x, w, b = _inputs(rng, 2, 2, 7, 6, (3, 2, k, k), 3)
    out, cache = conv2d_forward(x, w, b, stride, padding)
    check_grad(lambda x_, w_, b_: conv2d_forward(x_, w_, b_, stride, padding)[0], [x, w, b],
               lambda d: list(conv2d_backward(d, cache)), rng, names=["dx", "dw", "db"])


@pytest.mark.parametrize("stride,padding,k,op", [(1, 0, 3, 0), (2, 1, 4, 0), (2, 2, 5, 1), (2, 0, 1, 1)])
def test_conv_transpose2d_gradients_by_finite_differences(stride, padding, k, op):
    rng = np.random.default_rng(k + 7)
    x, w, b = _inputs(rng, 2, 2, 5, 4, (2, 3, k, k), 3)
    out, cache = conv_transpose2d_forward(x, w, b, stride, padding, op)
    check_grad(lambda x_, w_, b_: conv_transpose2d_forward(x_, w_, b_, stride, padding, op)[0], [x, w, b],
               lambda d: list(conv_transpose2d_backward(d, cache)), rng, names=["dx", "dw", "db"])


def test_the_checker_catches_a_wrong_convolution_gradient():
    rng = np.random.default_rng(3)
    x, w, b = _inputs(rng, 1, 2, 5, 5, (2, 2, 3, 3), 2)
    out, cache = conv2d_forward(x, w, b, 2, 1)
    with pytest.raises(AssertionError, match="dw"):
        check_grad(lambda x_, w_, b_: conv2d_forward(x_, w_, b_, 2, 1)[0], [x, w, b],
                   lambda d: [g[:, :, ::-1] if i == 1 else g                 # dw flipped: wrong
                              for i, g in enumerate(conv2d_backward(d, cache))],
                   rng, names=["dx", "dw", "db"])


def test_transposed_convolution_is_the_adjoint_of_convolution():
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> with the same w, stride and padding (no bias)."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 2, 4, 4))                              # conv2d: 2 -> 3; transposed: 3 -> 2
    x = rng.standard_normal((2, 2, 8, 8))
    out, _ = conv2d_forward(x, w, None, 2, 1)
    y = rng.standard_normal(out.shape)
    back, _ = conv_transpose2d_forward(y, w, None, 2, 1)
    assert back.shape == x.shape
    np.testing.assert_allclose((out * y).sum(), (x * back).sum(), rtol=1e-12)


def test_on_arrays_that_refuse_to_mix_with_numpy():
    rng = np.random.default_rng(5)
    for fwd, bwd, w_shape in ((conv2d_forward, conv2d_backward, (4, 3, 3, 3)),
                              (conv_transpose2d_forward, conv_transpose2d_backward, (3, 4, 4, 4))):
        x, w, b = _inputs(rng, 2, 3, 6, 5, w_shape, 4)
        out, cache = fwd(x, w, b, 2, 1)
        s_out, s_cache = fwd(*to_strict([x, w, b]), 2, 1)
        assert isinstance(s_out, StrictArray)
        np.testing.assert_array_equal(s_out.get(), out)
        dout = rng.standard_normal(out.shape)
        for name, got, want in zip(("dx", "dw", "db"), bwd(strict.asarray(dout), s_cache), bwd(dout, cache)):
            assert isinstance(got, StrictArray), name
            np.testing.assert_array_equal(to_numpy(got), want, err_msg=f"{fwd.__name__} {name}")


def test_bad_arguments_name_the_argument():
    x, w = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3))
    for call, match in [
        (lambda: conv2d_forward(x[0], w), "x must be a 4-D"),
        (lambda: conv2d_forward(x, w[0]), "w must be a 4-D"),
        (lambda: conv2d_forward(x, np.zeros((2, 4, 3, 3))), "input channels"),
        (lambda: conv2d_forward(x, w, np.zeros(3)), "b must be None or have shape"),
        (lambda: conv2d_forward(x, w, None, 0), "stride must be an int >= 1"),
        (lambda: conv2d_forward(x, w, None, 1.0), "stride must be an int"),
        (lambda: conv2d_forward(x, w, None, 1, -1), "padding must be an int >= 0"),
        (lambda: conv2d_forward(x, np.zeros((2, 3, 7, 7))), "does not fit"),
        (lambda: conv_transpose2d_forward(x, np.zeros((3, 2, 3, 3)), None, 2, 0, 2), "output_padding"),
        (lambda: conv_transpose2d_forward(x, np.zeros((2, 2, 3, 3))), "input channels"),
        (lambda: conv_transpose2d_forward(np.zeros((1, 3, 1, 1)), np.zeros((3, 2, 1, 1)), None, 1, 1),
         "crops the whole"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()
