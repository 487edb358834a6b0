"""The tuned twin of gan/conv.py: the same four functions, signatures and results, in channels-last layout.

What the plain layer (conv.py) spends besides its matrix products, and what this file does instead:
  - conv.py puts a window's (B, C) slice of an NCHW array into a (C KH KW, B OH OW) column matrix, one
    transposing copy per kernel tap, and its products have the few output channels as their rows.
    Here every array is held channels-last, (B, H, W, C), the layout of oneDNN and of cuDNN's fast paths:
    cols is (B OH OW, KH KW C), each product has the many pixels as its rows (OpenBLAS with two threads
    ran the (pixels, channels) orientation up to 1.6x faster than (channels, pixels), and the weight
    gradient's product is turned so that its longer side comes first: the other way round was 3x to
    100x slower), and every window of im2col / col2im moves runs of C contiguous numbers;
  - im2col is one copy of an as_strided view (B, OH, OW, KH, KW, C);
  - col2im adds its KH * KW windows in place, each a strided block of runs of C numbers, or, where
    the stride divides the kernel (4 x 4, stride 2), S x S windows at a time in runs of S C numbers;
  - these copies are cut into batch pieces run on the BLAS threads (smoothing.threads.run_pieces);
    every piece writes its own images, so the result does not depend on the thread count;
  - outputs and input gradients are returned as (B, C, H, W) views of channels-last arrays: the values
    are those of conv.py, and the next layer's move to channels-last is then free. Call
    np.ascontiguousarray on them where a C-ordered NCHW array is needed.
The weights stay in PyTorch's layouts; they are reordered to (.., KH, KW, C) on each call (a copy of the
weights, small beside the activations). The cost to the reader: the layouts and the views
hide the one-line formulas of conv.py, which is where to learn them. tests/test_gan_conv_fast.py checks
this file against conv.py (float64 to 1e-12, float32 to 2e-5) over strides, paddings, kernels, output
paddings and odd sizes. Measured with `python -m bench conv2d` (this file; `--plain` for conv.py) on a
2-core machine: 1.13 times PyTorch's time when quiet (conv.py: 1.64), 1.03-1.30 under a load average of
5 to 8 (conv.py: 2.1-2.6), 1.3-2.0 on an idle AVX-512 machine, where PyTorch's convolutions ran
faster and our copies did not scale with the second thread; bench/RESULTS.md.
"""

from smoothing import get_xp
from smoothing.threads import run_pieces, thread_count

from .conv import _check_conv, _check_transpose


def _batch_pieces(B):
    """Slices of the batch axis for run_pieces: a few per thread, none empty."""
    n = max(1, min(B, 2 * thread_count()))
    bounds = [B * k // n for k in range(n + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(n)]


def _by_batch(work, B):
    """work(batch slice) over pieces of the batch, on the BLAS threads."""
    pieces = _batch_pieces(B)
    run_pieces(lambda k: work(pieces[k]), len(pieces), name="gan")


def _product(a, b):
    """a @ b, computed as (b.T @ a.T).T when that puts the longer side of the result first."""
    if a.shape[0] >= b.shape[1]:
        return a @ b
    return (b.T @ a.T).T


def _channels_last_padded(x, P, Hp, Wp):
    """x (B, C, H, W) -> (B, Hp, Wp, C) with x at rows P..P+H, columns P..P+W, zeros elsewhere."""
    B, C, H, W = x.shape
    out = get_xp(x).zeros((B, Hp, Wp, C), dtype=x.dtype)
    xl = x.transpose(0, 2, 3, 1)                                          # (B, H, W, C) view

    def work(sl):
        out[sl, P:P + H, P:P + W] = xl[sl]
    _by_batch(work, B)
    return out


def _rows(x):
    """x (B, C, H, W) -> (B H W, C), channels last; free when x is a view of a channels-last array."""
    B, C, H, W = x.shape
    xl = x.transpose(0, 2, 3, 1)
    if xl.flags.c_contiguous:
        return xl.reshape(B * H * W, C)
    out = get_xp(x).empty((B, H, W, C), dtype=x.dtype)

    def work(sl):
        out[sl] = xl[sl]
    _by_batch(work, B)
    return out.reshape(B * H * W, C)


def im2col_cl(xl, KH, KW, stride, OH, OW):
    """Windows of a channels-last padded input as rows.

    xl: (B, Hp, Wp, C) -> cols (B * OH * OW, KH * KW * C),  cols[(b, oh, ow), (i, j, c)] = xl[b, S oh + i, S ow + j, c]
    """
    xp = get_xp(xl)
    B, C = xl.shape[0], xl.shape[3]
    sB, sH, sW, sC = xl.strides
    cols = xp.empty((B, OH, OW, KH, KW, C), dtype=xl.dtype)

    def work(sl):
        src = xl[sl]
        cols[sl] = xp.lib.stride_tricks.as_strided(
            src, shape=(src.shape[0], OH, OW, KH, KW, C),
            strides=(sB, stride * sH, stride * sW, sH, sW, sC))
    _by_batch(work, B)
    return cols.reshape(B * OH * OW, KH * KW * C)


def col2im_cl(cols, shape, KH, KW, stride, OH, OW):
    """The adjoint of im2col_cl: cols (B * OH * OW, KH * KW * C) summed into a (B, Hp, Wp, C) array.

    Channels last, a stride-S window still moves runs of C contiguous numbers, so the windows are added
    in place one tap at a time, in the order of conv.col2im: the sums are the same. When S divides the
    kernel and the padded size (the 4 x 4, stride 2 layers of a DCGAN), the taps go S x S at a time:
    tap (S a + p, S b + q) of window (oh, ow) lands on row S (oh + a) + p, column S (ow + b) + q, so
    for one (a, b) the S x S taps (p, q) fill disjoint places, and one addition of runs of S C numbers
    does what S * S additions of runs of C did. Each place still receives its taps in conv.col2im's
    order (a, then b, outermost), so the sums keep their bits.
    """
    B, Hp, Wp, C = shape
    S = stride
    out = get_xp(cols).zeros(shape, dtype=cols.dtype)
    if S > 1 and C > 1 and KH % S == 0 and KW % S == 0 and Hp % S == 0 and Wp % S == 0:
        taps = cols.reshape(B, OH, OW, KH // S, S, KW // S, S, C)         # [.., a, p, b, q, c]
        places = out.reshape(B, Hp // S, S, Wp // S, S, C)                # [b, r, p, s, q, c]

        def work(sl):
            for a in range(KH // S):
                for b in range(KW // S):
                    places[sl, a:a + OH, :, b:b + OW] += taps[sl, :, :, a, :, b].transpose(0, 1, 3, 2, 4, 5)
    else:
        cols = cols.reshape(B, OH, OW, KH, KW, C)

        def work(sl):
            for i in range(KH):
                for j in range(KW):
                    out[sl, i:i + S * OH:S, j:j + S * OW:S] += cols[sl, :, :, i, j]
    _by_batch(work, B)
    return out


def _weights_last(w):
    """w (A, D, KH, KW) -> (A, KH KW D): the tap-major column order of im2col_cl."""
    A, D, KH, KW = w.shape
    return get_xp(w).ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(A, KH * KW * D)


def _weights_back(d2, shape):
    """The inverse of _weights_last: d2 (A, KH KW D) -> (A, D, KH, KW), C-ordered."""
    A, D, KH, KW = shape
    return get_xp(d2).ascontiguousarray(d2.reshape(A, KH, KW, D).transpose(0, 3, 1, 2))


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """conv.conv2d_forward, tuned. x (B, Cin, H, W), w (Cout, Cin, KH, KW) -> (out (B, Cout, OH, OW), cache)"""
    stride, padding, OH, OW = _check_conv(x, w, b, stride, padding)
    B, C, H, W = x.shape
    Cout, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    padded = (B, H + 2 * padding, W + 2 * padding, C)
    cols = im2col_cl(_channels_last_padded(x, padding, *padded[1:3]), KH, KW, stride, OH, OW)
    out_rows = cols @ _weights_last(w).T                                  # (B OH OW, Cout)
    if b is not None and b.dtype == out_rows.dtype:
        out_rows += b                                                     # in place: a fresh array
    elif b is not None:
        out_rows = out_rows + b
    out = out_rows.reshape(B, OH, OW, Cout).transpose(0, 3, 1, 2)         # (B, Cout, OH, OW) view
    return out, (cols, w, padded, stride, padding, b is not None)


def conv2d_backward(dout, cache):
    """conv.conv2d_backward, tuned. dout (B, Cout, OH, OW) -> dx (B, Cin, H, W), dw, db (Cout,) or None"""
    cols, w, padded, stride, padding, has_bias = cache
    B, Cout, OH, OW = dout.shape
    _, Hp, Wp, C = padded
    KH, KW = w.shape[2:]
    dout_rows = _rows(dout)                                               # (B OH OW, Cout)
    # forward was: out_rows = cols @ W2.T + bias, W2 = w as (Cout, KH KW C)
    db = dout_rows.sum(axis=0) if has_bias else None
    dw = _weights_back(_product(dout_rows.T, cols), w.shape)              # (Cout, C, KH, KW)
    dcols = dout_rows @ _weights_last(w)                                  # (B OH OW, KH KW C)
    dxl = col2im_cl(dcols, padded, KH, KW, stride, OH, OW)                # (B, Hp, Wp, C)
    H, W = Hp - 2 * padding, Wp - 2 * padding
    dx = dxl[:, padding:padding + H, padding:padding + W].transpose(0, 3, 1, 2)   # (B, C, H, W) view
    return dx, dw, db


def conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0):
    """conv.conv_transpose2d_forward, tuned. x (B, Cin, H, W), w (Cin, Cout, KH, KW) -> (out, cache)"""
    stride, padding, OH, OW = _check_transpose(x, w, b, stride, padding, output_padding)
    B, C, H, W = x.shape
    Cout, KH, KW = w.shape[1:]
    full = (B, max((H - 1) * stride + KH, padding + OH), max((W - 1) * stride + KW, padding + OW), Cout)
    x_rows = _rows(x)                                                     # (B H W, Cin)
    cols = x_rows @ _weights_last(w)                                      # (B H W, KH KW Cout)
    fulll = col2im_cl(cols, full, KH, KW, stride, H, W)                   # (B, Hf, Wf, Cout)
    outl = fulll[:, padding:padding + OH, padding:padding + OW]
    if b is not None:
        outl = outl + b
    return outl.transpose(0, 3, 1, 2), (x_rows, (H, W), w, full, stride, padding, b is not None)


def conv_transpose2d_backward(dout, cache):
    """conv.conv_transpose2d_backward, tuned. dout (B, Cout, OH, OW) -> dx (B, Cin, H, W), dw, db"""
    x_rows, (H, W), w, full, stride, padding, has_bias = cache
    B, Cout, OH, OW = dout.shape
    C, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    doutl = dout.transpose(0, 2, 3, 1)                                    # (B, OH, OW, Cout) view
    db = doutl.sum(axis=(0, 1, 2)) if has_bias else None
    # forward was: out = crop(col2im(x_rows @ W2)); the crop's adjoint puts dout into a zero full array
    dfull = get_xp(dout).zeros(full, dtype=dout.dtype)

    def work(sl):
        dfull[sl, padding:padding + OH, padding:padding + OW] = doutl[sl]
    _by_batch(work, B)
    dcols = im2col_cl(dfull, KH, KW, stride, H, W)                        # (B H W, KH KW Cout)
    W2 = _weights_last(w)                                                 # (Cin, KH KW Cout)
    dx = (dcols @ W2.T).reshape(B, H, W, C).transpose(0, 3, 1, 2)         # (B, Cin, H, W) view
    dw = _weights_back(_product(x_rows.T, dcols), w.shape)                # (Cin, Cout, KH, KW)
    return dx, dw, db
