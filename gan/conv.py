"""2-D convolution and transposed convolution as forward/backward pairs, by im2col and one matrix product.

Shapes are NCHW: x (B, C, H, W). Weights are laid out as PyTorch lays them out, so a checkpoint's
tensors drop in unchanged:
    conv2d            w (Cout, Cin, KH, KW)    out (B, Cout, OH, OW),  OH = (H + 2P - KH) // S + 1
    conv_transpose2d  w (Cin, Cout, KH, KW)    out (B, Cout, OH, OW),  OH = (H - 1) S - 2P + KH + OP

im2col turns convolution into a matrix product. Every output position (oh, ow) of every image b sees
one window of the padded input; laid out as a column, the window is C * KH * KW numbers, and

    cols[(c, i, j), (b, oh, ow)] = x_padded[b, c, S oh + i, S ow + j]       (C KH KW, B OH OW)
    out[b, :, oh, ow] = w.reshape(Cout, C KH KW) @ cols[:, (b, oh, ow)] + bias

col2im is its adjoint: it adds every column entry back to the input position it was read from. The
backward of conv2d needs col2im for dx; the forward of conv_transpose2d is exactly that backward (the
transposed convolution is the adjoint of the convolution with respect to its input), and its backward
is an im2col. The loops below run over the KH * KW kernel offsets, never over pixels, and the columns of
all images sit side by side, so each product is one matrix product for the whole batch.
"""
import numpy as np

from smoothing import get_xp


def _check(x, w, stride, padding, name_w="w"):
    """Shapes and the two integers; returns stride, padding."""
    if not hasattr(x, "ndim") or x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if not hasattr(w, "ndim") or w.ndim != 4:
        raise ValueError(f"{name_w} must be a 4-D array, got {getattr(w, 'shape', type(w).__name__)}")
    for name, v, low in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return int(stride), int(padding)


def _check_bias(b, n):
    if b is not None and getattr(b, "shape", None) != (n,):
        raise ValueError(f"b must be None or have shape ({n},), got {getattr(b, 'shape', type(b).__name__)}")


def _check_conv(x, w, b, stride, padding):
    """The arguments of conv2d checked; returns stride, padding and the output size OH, OW."""
    stride, padding = _check(x, w, stride, padding)
    (_, C, H, W), (Cout, Cw, KH, KW) = x.shape, w.shape
    if Cw != C:
        raise ValueError(f"w has {Cw} input channels (w: (Cout, Cin, KH, KW)) but x has {C}")
    _check_bias(b, Cout)
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    if OH < 1 or OW < 1:
        raise ValueError(f"the kernel {KH}x{KW} does not fit in the padded input {H + 2 * padding}x"
                         f"{W + 2 * padding}")
    return stride, padding, OH, OW


def _check_transpose(x, w, b, stride, padding, output_padding):
    """The arguments of conv_transpose2d checked; returns stride, padding and the output size OH, OW."""
    stride, padding = _check(x, w, stride, padding)
    if isinstance(output_padding, bool) or not isinstance(output_padding, (int, np.integer)) \
            or not 0 <= output_padding < stride:
        raise ValueError(f"output_padding must be an int in [0, stride) = [0, {stride}), "
                         f"got {output_padding!r}")
    (_, C, H, W), (Cw, Cout, KH, KW) = x.shape, w.shape
    if Cw != C:
        raise ValueError(f"w has {Cw} input channels (w: (Cin, Cout, KH, KW)) but x has {C}")
    _check_bias(b, Cout)
    OH = (H - 1) * stride - 2 * padding + KH + output_padding
    OW = (W - 1) * stride - 2 * padding + KW + output_padding
    if OH < 1 or OW < 1:
        raise ValueError(f"padding {padding} crops the whole {(H - 1) * stride + KH}-pixel output")
    return stride, padding, OH, OW


def im2col(xp_, KH, KW, stride, OH, OW):
    """Windows of a padded input as columns. xp_: (B, C, Hp, Wp) -> cols (C * KH * KW, B * OH * OW)."""
    B, C = xp_.shape[:2]
    cols = get_xp(xp_).empty((C, KH, KW, B, OH, OW), dtype=xp_.dtype)
    for i in range(KH):
        for j in range(KW):
            # the input pixels that kernel tap (i, j) multiplies, one per output position
            window = xp_[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]    # (B, C, OH, OW)
            cols[:, i, j] = window.transpose(1, 0, 2, 3)
    return cols.reshape(C * KH * KW, B * OH * OW)


def col2im(cols, shape, KH, KW, stride, OH, OW):
    """The adjoint of im2col: cols (C * KH * KW, B * OH * OW) summed back into an array of `shape`."""
    B, C, Hp, Wp = shape
    cols = cols.reshape(C, KH, KW, B, OH, OW)
    out = get_xp(cols).zeros(shape, dtype=cols.dtype)
    for i in range(KH):
        for j in range(KW):
            window = cols[:, i, j].transpose(1, 0, 2, 3)                              # (B, C, OH, OW)
            out[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] += window
    return out


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """out = conv2d(x, w) + b, as torch.nn.functional.conv2d (cross-correlation, zero padding).

    x: (B, Cin, H, W)   w: (Cout, Cin, KH, KW)   b: (Cout,) or None   stride S, padding P: ints
    out[b, o, oh, ow] = bias[o] + sum_{c, i, j} w[o, c, i, j] * x_padded[b, c, S oh + i, S ow + j]
    returns (out (B, Cout, OH, OW), cache)
    """
    stride, padding, OH, OW = _check_conv(x, w, b, stride, padding)
    B, C, H, W = x.shape
    Cout, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    xp = get_xp(x)
    x_padded = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = im2col(x_padded, KH, KW, stride, OH, OW)                       # (C KH KW, B OH OW)
    out = w.reshape(Cout, -1) @ cols                                      # (Cout, B OH OW)
    out = xp.ascontiguousarray(out.reshape(Cout, B, OH, OW).transpose(1, 0, 2, 3))   # (B, Cout, OH, OW)
    if b is not None:
        out = out + b[:, None, None]
    return out, (cols, w, x_padded.shape, stride, padding, b is not None)


def conv2d_backward(dout, cache):
    """dout: (B, Cout, OH, OW) -> dx (B, Cin, H, W), dw (Cout, Cin, KH, KW), db (Cout,) or None."""
    cols, w, padded_shape, stride, padding, has_bias = cache
    B, Cout, OH, OW = dout.shape
    KH, KW = w.shape[2:]
    dout2 = dout.transpose(1, 0, 2, 3).reshape(Cout, B * OH * OW)        # the layout of out2 below
    # forward was: out2 = W2 @ cols + bias, W2 = w.reshape(Cout, C KH KW), out2 (Cout, B OH OW)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    dw = (dout2 @ cols.T).reshape(w.shape)                                # (Cout, C KH KW)
    dcols = w.reshape(Cout, -1).T @ dout2                                 # (C KH KW, B OH OW)
    dx_padded = col2im(dcols, padded_shape, KH, KW, stride, OH, OW)       # (B, C, Hp, Wp)
    H, W = padded_shape[2] - 2 * padding, padded_shape[3] - 2 * padding
    dx = dx_padded[:, :, padding:padding + H, padding:padding + W]
    return dx, dw, db


def conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0):
    """out = conv_transpose2d(x, w) + b, as torch.nn.functional.conv_transpose2d.

    x: (B, Cin, H, W)   w: (Cin, Cout, KH, KW)   b: (Cout,) or None   output_padding OP < S adds rows at
    the bottom and columns at the right. Every input pixel scatters w[c] times itself into a KH x KW patch:
    full[b, o, S h + i, S w' + j] += x[b, c, h, w'] w[c, o, i, j];  out = full cropped by P (and OP) + bias
    returns (out (B, Cout, OH, OW), cache)
    """
    stride, padding, OH, OW = _check_transpose(x, w, b, stride, padding, output_padding)
    B, C, H, W = x.shape
    Cout, KH, KW = w.shape[1:]
    # the full, uncropped output: tall enough for the scatter and for the crop P .. P + OH
    full_shape = (B, Cout, max((H - 1) * stride + KH, padding + OH),
                  max((W - 1) * stride + KW, padding + OW))
    x2 = x.transpose(1, 0, 2, 3).reshape(C, B * H * W)                    # one column per input pixel
    cols = w.reshape(C, -1).T @ x2                                        # (Cout KH KW, B H W)
    full = col2im(cols, full_shape, KH, KW, stride, H, W)                 # (B, Cout, Hf, Wf)
    out = full[:, :, padding:padding + OH, padding:padding + OW]
    if b is not None:
        out = out + b[:, None, None]
    return out, (x, w, full_shape, stride, padding, b is not None)


def conv_transpose2d_backward(dout, cache):
    """dout: (B, Cout, OH, OW) -> dx (B, Cin, H, W), dw (Cin, Cout, KH, KW), db (Cout,) or None."""
    x, w, full_shape, stride, padding, has_bias = cache
    B, C, H, W = x.shape
    KH, KW = w.shape[2:]
    OH, OW = dout.shape[2:]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    # forward was: out = crop(col2im(W2.T @ x)); the crop's adjoint puts dout back into a zero full array
    dfull = get_xp(dout).zeros(full_shape, dtype=dout.dtype)
    dfull[:, :, padding:padding + OH, padding:padding + OW] = dout
    dcols = im2col(dfull, KH, KW, stride, H, W)                           # (Cout KH KW, B H W)
    # forward was: cols = W2.T @ x2, W2 = w.reshape(Cin, Cout KH KW), x2 (Cin, B H W)
    x2 = x.transpose(1, 0, 2, 3).reshape(C, B * H * W)
    dx = (w.reshape(C, -1) @ dcols).reshape(C, B, H, W).transpose(1, 0, 2, 3)   # (B, Cin, H, W)
    dx = get_xp(dx).ascontiguousarray(dx)
    dw = (x2 @ dcols.T).reshape(w.shape)                                  # (Cin, Cout KH KW)
    return dx, dw, db
