"""gan/conv_fast.py, the tuned twin, gives gan/conv.py's numbers: float64 to rtol 1e-12, float32 to 2e-5.

The twin sums each product in another order (channels-last columns) and returns views of channels-last
arrays; col2im adds the taps in the plain order. Outputs, dx, dw and db are compared over strides 1-3,
paddings 0-2, kernels 1-5 (and a rectangular one), output paddings and odd sizes.
"""
import itertools

import numpy as np
import pytest

from gan import conv, conv_fast

TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5}
SIZES = [(7, 9), (5, 6), (11, 5)]


def close(got, want, dtype, what):
    """got == want to the dtype's rtol, with an absolute floor of rtol times the largest |want|."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    assert got.dtype == want.dtype == dtype, f"{what}: dtype {got.dtype} vs {want.dtype}"
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * float(np.abs(want).max(initial=1.0)),
                               err_msg=what)


def _compare(kind, x, w, b, kwargs, rng, what):
    plain = {"conv": (conv.conv2d_forward, conv.conv2d_backward),
             "transpose": (conv.conv_transpose2d_forward, conv.conv_transpose2d_backward)}[kind]
    fast = {"conv": (conv_fast.conv2d_forward, conv_fast.conv2d_backward),
            "transpose": (conv_fast.conv_transpose2d_forward, conv_fast.conv_transpose2d_backward)}[kind]
    out0, cache0 = plain[0](x, w, b, **kwargs)
    out1, cache1 = fast[0](x, w, b, **kwargs)
    close(out1, out0, x.dtype, f"out {what}")
    dout = rng.standard_normal(out0.shape).astype(x.dtype)
    for name, got, want in zip(("dx", "dw", "db"), fast[1](dout, cache1), plain[1](dout, cache0)):
        if want is None:
            assert got is None, f"{name} {what}: None expected without a bias"
        else:
            close(got, want, x.dtype, f"{name} {what}")


def _draw(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stride,padding", list(itertools.product((1, 2, 3), (0, 1, 2))))
def test_conv2d_twin_equals_plain(dtype, stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    for k, (H, W) in itertools.product((1, 2, 3, 4, 5), SIZES):
        if min(H, W) + 2 * padding < k:
            continue
        x, w = _draw(rng, (3, 5, H, W), dtype), _draw(rng, (4, 5, k, k), dtype)
        b = None if k == 2 else _draw(rng, 4, dtype)
        _compare("conv", x, w, b, dict(stride=stride, padding=padding), rng,
                 f"conv2d k={k} s={stride} p={padding} {H}x{W} {np.dtype(dtype)}")
    x, w, b = _draw(rng, (2, 2, 9, 7), dtype), _draw(rng, (3, 2, 3, 5), dtype), _draw(rng, 3, dtype)
    _compare("conv", x, w, b, dict(stride=stride, padding=padding), rng, f"conv2d 3x5 s={stride} p={padding}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stride,padding", list(itertools.product((1, 2, 3), (0, 1, 2))))
def test_conv_transpose2d_twin_equals_plain(dtype, stride, padding):
    rng = np.random.default_rng(100 + stride * 10 + padding)
    for k, (H, W), op in itertools.product((1, 2, 3, 4, 5), [(7, 9), (4, 5), (3, 3)], range(stride)):
        if (min(H, W) - 1) * stride - 2 * padding + k + op < 1:
            continue
        x, w = _draw(rng, (3, 5, H, W), dtype), _draw(rng, (5, 4, k, k), dtype)
        b = None if k == 3 else _draw(rng, 4, dtype)
        _compare("transpose", x, w, b, dict(stride=stride, padding=padding, output_padding=op), rng,
                 f"conv_transpose2d k={k} s={stride} p={padding} op={op} {H}x{W} {np.dtype(dtype)}")


def test_discriminator_and_generator_shapes_in_float32():
    """The 28 x 28 DCGAN's four layers (batch 5), chained: each takes the previous one's view."""
    rng = np.random.default_rng(7)
    x = _draw(rng, (5, 1, 28, 28), np.float32)
    for kind, w_shape in (("conv", (16, 1, 4, 4)), ("conv", (32, 16, 4, 4)),
                          ("transpose", (32, 16, 4, 4)), ("transpose", (16, 1, 4, 4))):
        w = _draw(rng, w_shape, np.float32) / np.float32(np.sqrt(np.prod(w_shape[1:])))
        b = _draw(rng, w_shape[0] if kind == "conv" else w_shape[1], np.float32)
        _compare(kind, x, w, b, dict(stride=2, padding=1), rng, f"{kind} {x.shape} w{w_shape}")
        fwd = conv_fast.conv2d_forward if kind == "conv" else conv_fast.conv_transpose2d_forward
        x = fwd(x, w, b, 2, 1)[0]                                 # a view of a channels-last array


def test_inputs_that_are_views_and_the_returned_views():
    """Non-contiguous inputs (a slice, a channels-last view) give the plain numbers; outputs are views
    whose values do not change when the next call runs."""
    rng = np.random.default_rng(8)
    base = rng.standard_normal((4, 7, 9, 3))
    x = base.transpose(0, 3, 1, 2)[:, :, ::2]                     # (4, 3, 4, 9), no layout of its own
    w, b = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    _compare("conv", x, w, b, dict(stride=1, padding=1), rng, "conv2d on a strided view")
    out, _ = conv_fast.conv2d_forward(x, w, b, 1, 1)
    kept = out.copy()
    conv_fast.conv2d_forward(x * 2, w, b, 1, 1)
    np.testing.assert_array_equal(out, kept, err_msg="a later call changed an earlier output")
    wt = rng.standard_normal((3, 2, 4, 4))
    _compare("transpose", x, wt, None, dict(stride=2, padding=1, output_padding=1), rng,
             "conv_transpose2d on a strided view")


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((7, 3, 9, 8)), rng.standard_normal((4, 3, 4, 4)), rng.standard_normal(4)
    runs = []
    for threads in ("1", "3"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        out, cache = conv_fast.conv2d_forward(x, w, b, 2, 1)
        dout = np.random.default_rng(1).standard_normal(out.shape)
        t_out, t_cache = conv_fast.conv_transpose2d_forward(out, w, b[:3], 2, 1)
        t_dout = np.random.default_rng(2).standard_normal(t_out.shape)
        runs.append([out, *conv_fast.conv2d_backward(dout, cache), t_out,
                     *conv_fast.conv_transpose2d_backward(t_dout, t_cache)])
    for k, (one, three) in enumerate(zip(*runs)):
        np.testing.assert_array_equal(one, three, err_msg=f"array {k}: 1 thread vs 3 threads")


def test_bad_arguments_name_the_argument():
    x, w = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3))
    for call, match in [
        (lambda: conv_fast.conv2d_forward(x[0], w), "x must be a 4-D"),
        (lambda: conv_fast.conv2d_forward(x, w[0]), "w must be a 4-D"),
        (lambda: conv_fast.conv2d_forward(x, np.zeros((2, 4, 3, 3))), "input channels"),
        (lambda: conv_fast.conv2d_forward(x, w, np.zeros(3)), "b must be None or have shape"),
        (lambda: conv_fast.conv2d_forward(x, w, None, 0), "stride must be an int >= 1"),
        (lambda: conv_fast.conv2d_forward(x, w, None, 1, -1), "padding must be an int >= 0"),
        (lambda: conv_fast.conv2d_forward(x, np.zeros((2, 3, 7, 7))), "does not fit"),
        (lambda: conv_fast.conv_transpose2d_forward(x, np.zeros((3, 2, 3, 3)), None, 2, 0, 2),
         "output_padding"),
        (lambda: conv_fast.conv_transpose2d_forward(x, np.zeros((2, 2, 3, 3))), "input channels"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("stride,kernel,padded,channels", [(2, 4, (16, 16), 64), (2, 4, (16, 18), 3),
                                                           (2, 4, (30, 30), 1), (3, 6, (21, 24), 5),
                                                           (2, 3, (15, 15), 4), (1, 4, (9, 9), 8)])
def test_col2im_adds_the_taps_of_the_plain_layer_in_its_order(stride, kernel, padded, channels):
    """The tuned col2im (taps grouped S x S when S divides the kernel and the padded size) gives the
    plain col2im's bits, its layout aside."""
    rng = np.random.default_rng(stride * 100 + kernel)
    B, (Hp, Wp), C, S, K = 3, padded, channels, stride, kernel
    OH, OW = (Hp - K) // S + 1, (Wp - K) // S + 1
    cols = rng.standard_normal((B * OH * OW, K * K * C)).astype(np.float32)   # rows (b, oh, ow), columns (i, j, c)
    got = conv_fast.col2im_cl(cols, (B, Hp, Wp, C), K, K, S, OH, OW)          # (B, Hp, Wp, C)
    plain_cols = cols.reshape(B, OH, OW, K, K, C).transpose(5, 3, 4, 0, 1, 2).reshape(C * K * K, -1)
    want = conv.col2im(plain_cols, (B, C, Hp, Wp), K, K, S, OH, OW)          # (B, C, Hp, Wp)
    np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), want)


def test_the_benchmark_times_the_products_the_twin_computes():
    """`python -m bench conv2d` reports the matrix products alone as a floor: their shapes must be the
    twin's own (the forward product's rows and inner size, and the output width)."""
    from bench import conv2d as bench_conv2d
    arrays = bench_conv2d._arrays(np.random.default_rng(0), 2)
    shapes = bench_conv2d._product_shapes(arrays)
    assert [s[0] for s in shapes] == ["conv", "conv", "transpose", "transpose"]
    for (kind, x, w, b, dout), (_, M, K, N) in zip(arrays, shapes):
        if kind == "conv":
            out, cache = conv_fast.conv2d_forward(x, w, b, 2, 1)
            assert cache[0].shape == (M, K) and out.shape[1] == N
        else:
            out, cache = conv_fast.conv_transpose2d_forward(x, w, b, 2, 1)
            assert cache[0].shape == (M, K) and N == w.shape[1] * w.shape[2] * w.shape[3]
    bench_conv2d._products(np.random.default_rng(1), shapes)()           # runs on these shapes
