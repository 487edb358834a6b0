"""The tuned twins of minibert/layers.py: the same signatures and the same formulas, computed for speed.

What they buy (bench/RESULTS.md: bert_forward and train_step, plain layer against this one):
  - linear: the bias added in place, and the weight gradient x^T dout as a product OpenBLAS runs
    fast on two threads (matmul_tall: a wide result is computed transposed, or in column blocks);
  - LayerNorm and GELU: the elementwise passes go block by block over rows that stay in the L2
    cache, spread over the threads (smoothing/threads.py), writing into preallocated outputs; with
    inplace=True they overwrite their input;
  - GELU in float32: erf as tanh(z P(z^2)), a fitted polynomial (error 1.4e-7), instead of math.erf
    per element, computed as Phi(x) = 1 / (1 + exp(x R(x^2))); float64 keeps the exact erf;
  - the lookup gradient: one sort and one add.reduceat instead of add.at row by row.
What they cost the reader: the formula is spread over helpers that work in place on scratch buffers.
Blocks change no number (every element sees the same operations); against the plain layer the
results agree to float rounding (tests/test_fast_equals_plain.py states each tolerance).
"""
import math

import numpy as np

from smoothing import get_xp
from smoothing.threads import row_pieces, run_pieces

from ..layers import erf as plain_erf

# ---- linear ------------------------------------------------------------------------------


def linear_forward(x, W, b):
    """y = x @ W + b.

    x: (..., C_in)   W: (C_in, C_out)   b: (C_out,)   returns (..., C_out)
    """
    # one (N, C_in) @ (C_in, C_out) GEMM: a 3-D x @ W would run as B separate, slower products
    out = x.reshape(-1, x.shape[-1]) @ W
    out += b                                              # in place: no second (..., C_out) array
    return out.reshape(*x.shape[:-1], W.shape[1]), (x, W)


def linear_backward(dout, cache):
    """Returns dx (..., C_in), dW (C_in, C_out), db (C_out,)."""
    x, W = cache
    # forward was: y = x @ W + b
    x2 = x.reshape(-1, x.shape[-1])                       # (N, C_in), N = all leading axes
    d2 = dout.reshape(-1, dout.shape[-1])                 # (N, C_out)
    dx = (d2 @ W.T).reshape(x.shape)
    dW = weight_gradient(x2, d2)
    db = d2.sum(axis=0)
    return dx, dW, db


def matmul_tall(a, b):
    """a @ b for 2-D a (M, K) and b (K, N), C-contiguous, as products at least twice as tall as wide.

    With two threads, OpenBLAS runs long products (large K) several times slower unless the result
    has at least twice as many rows as columns (measured on a busy 2-core machine: (256, 1024) 36 ms,
    its transpose 12 ms; (256, 256) 36 ms, as two (256, 128) halves 4.5 ms). So a wide result is
    computed transposed, and one that is still not tall enough in column blocks.
    """
    xp = get_xp(a)
    M, N = a.shape[0], b.shape[1]
    if N > M:
        return xp.ascontiguousarray(matmul_tall(b.T, a.T).T)
    if xp is not np or 2 * N <= M:
        return a @ b
    r = np.empty((M, N), dtype=np.result_type(a, b))
    width = max(1, M // 2)
    for j in range(0, N, width):
        np.matmul(a, b[:, j:j + width], out=r[:, j:j + width])        # (M, width) blocks, tall
    return r


def weight_gradient(x2, d2):
    """dW = x2^T d2, (C_in, C_out), C-contiguous.   x2: (N, C_in)   d2: (N, C_out), N = B*T terms"""
    return matmul_tall(x2.T, d2)


# ---- LayerNorm ---------------------------------------------------------------------------


def _layernorm_rows(x, xhat, out, rstd, gamma, beta, eps):
    """LayerNorm of the rows of x (R, C) into xhat and out (both (R, C), may be one array, may be x)."""
    xp = get_xp(x)
    xp.subtract(x, x.mean(axis=-1, keepdims=True), out=xhat)           # centred
    # row variance as a dot product of each row with itself: no (R, C) square temporary
    var = xp.einsum("...i,...i->...", xhat, xhat)[..., None] / x.shape[-1]
    rstd[...] = 1.0 / xp.sqrt(var + eps)                                # (R, 1)
    xhat *= rstd
    xp.multiply(xhat, gamma, out=out)
    out += beta


def layernorm_forward(x, gamma, beta, eps=1e-12, inplace=False):
    """LayerNorm over the last axis.

    x: (..., C)   gamma, beta: (C,)
    y = (x - mean) / sqrt(var + eps) * gamma + beta
    inplace: write y over x (C-contiguous) and keep no cache, for inference
    With NumPy, rows go in blocks that stay in cache, spread over the threads (same numbers).
    """
    xp = get_xp(x)
    C = x.shape[-1]
    if inplace and not x.flags.c_contiguous:
        raise ValueError("layernorm_forward(inplace=True) needs a C-contiguous x")
    x = xp.ascontiguousarray(x)
    out = x if inplace else xp.empty_like(x)
    xhat = out if inplace else xp.empty_like(x)
    x2, h2, o2 = x.reshape(-1, C), xhat.reshape(-1, C), out.reshape(-1, C)
    rstd = xp.empty((x2.shape[0], 1), dtype=x.dtype)
    pieces = row_pieces(x2.shape[0], C, 1 << 20) if xp is np else [slice(None)]
    run_pieces(lambda i: _layernorm_rows(x2[pieces[i]], h2[pieces[i]], o2[pieces[i]],
                                         rstd[pieces[i]], gamma, beta, eps), len(pieces))
    if inplace:
        return out, None
    return out, (xhat, rstd.reshape(*x.shape[:-1], 1), gamma)


def layernorm_backward(dout, cache):
    """Returns dx (..., C), dgamma (C,), dbeta (C,)."""
    xhat, rstd, gamma = cache
    xp = get_xp(xhat)
    C = xhat.shape[-1]
    # forward was: y = xhat * gamma + beta
    x2, d2 = xhat.reshape(-1, C), dout.reshape(-1, C)
    dgamma = xp.einsum("ni,ni->i", x2, d2)
    dbeta = d2.sum(axis=0)
    # xhat depends on x through the mean and the variance of its own row:
    # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dxhat = dout * gamma
    proj = xp.einsum("...i,...i->...", dxhat, xhat)[..., None] / C    # mean(dxhat * xhat), (..., 1)
    dx = dxhat
    dx -= dxhat.mean(axis=-1, keepdims=True)
    dx -= xhat * proj
    dx *= rstd
    return dx, dgamma, dbeta


# ---- GELU --------------------------------------------------------------------------------

# erf(z) = tanh(z P(z^2)), P of degree 6: the coefficients were fitted to atanh(erf(z)) / z on
# [0, 4] (minimax of the error in erf, by reweighted least squares in float64). |error| <= 6e-8 in
# exact arithmetic, about 1.4e-7 evaluated in float32, as good as float32 holds; z P(z^2) rises with
# z, so beyond the fit tanh goes to +-1 as erf does. One tanh and 14 multiply-adds, no branches.
_ERF_TANH = (1.1283797054285856, 0.10276548191369861, -1.843849736661795e-04,
             -6.257182031794708e-04, 8.971194528860173e-05, -5.985558981175468e-06,
             1.5895064313204784e-07)
# GELU's Phi(x) = (1 + erf(x / sqrt 2)) / 2 = (1 + tanh(x Q(x^2))) / 2, Q_k = P_k / (sqrt 2 * 2^k),
# and (1 + tanh(s)) / 2 = 1 / (1 + exp(-2 s)): Phi(x) = 1 / (1 + exp(x R(x^2))) with R = -2 Q. One
# exp (NumPy's float32 exp costs about half its tanh) and no 1 + tanh, which lost the small Phi of
# negative x to cancellation.
_PHI_EXP = tuple(-2.0 * c / (math.sqrt(2.0) * 2.0 ** k) for k, c in enumerate(_ERF_TANH))


def _odd_tanh_argument(x, u, s, coefs):
    """s = x * (c0 + c1 u + c2 u^2 + ...) with u = x * x, by Horner's rule in place."""
    np.multiply(x, x, out=u)
    np.multiply(u, coefs[-1], out=s)
    for c in coefs[-2:0:-1]:
        s += c
        s *= u
    s += coefs[0]
    s *= x


def erf(x):
    """The error function, elementwise, in the dtype of x.

    float32 / float16 NumPy arrays: tanh(x P(x^2)) (see _ERF_TANH), |error| <= 1.4e-7 in float32.
    float64 (used by every gradient and reference check) and other array modules: the plain erf.
    """
    if get_xp(x) is not np or x.dtype == np.float64:
        return plain_erf(x)
    u, s = np.empty_like(x), np.empty_like(x)
    _odd_tanh_argument(x, u, s, _ERF_TANH)
    return np.tanh(s, out=s)


def _gelu_values(x, kind):
    """(y, saved) of gelu_forward in plain array operations: float64 (exact erf) and CuPy."""
    xp = get_xp(x)
    if kind == "erf":
        cdf = erf(x * (1.0 / math.sqrt(2.0)))
        cdf += 1.0
        cdf *= 0.5                                        # Phi(x)
        return x * cdf, cdf
    th = _tanh_u(x, xp.empty_like(x))
    return x * ((th + 1.0) * 0.5), th


def _tanh_u(x, u):
    """u = tanh(sqrt(2/pi) (x + 0.044715 x^3)), in place in u; x*x*x, never x**3 (slow on float32)."""
    xp = get_xp(x)
    xp.multiply(x, x, out=u)
    u *= 0.044715
    u += 1.0
    u *= x
    u *= math.sqrt(2.0 / math.pi)
    return xp.tanh(u, out=u)


def _gelu_block(x, y, saved, scratch, kind, keep=True):
    """GELU of one contiguous block: y = gelu(x), saved = Phi(x) ('erf') or tanh(u) ('tanh').

    y may be x itself (in place); scratch: a block-sized buffer, or y when y is not x.
    keep: False when saved is only scratch (inference): then 'erf' does not keep Phi.
    """
    if kind == "erf":
        _odd_tanh_argument(x, scratch, saved, _PHI_EXP)   # saved = x R(x^2) = -2 s
        # far on the negative side exp overflows to inf and Phi = 1 / inf = 0, as it should
        with np.errstate(over="ignore", under="ignore"):
            np.exp(saved, out=saved)
        saved += 1.0                                      # 1 / Phi(x)
        np.divide(x, saved, out=y)                        # x Phi(x), the same bits kept or not
        if keep:
            np.reciprocal(saved, out=saved)               # Phi(x), for the backward pass
    else:
        _tanh_u(x, saved)
        np.add(saved, 1.0, out=scratch)
        scratch *= 0.5                                    # (1 + tanh u) / 2
        np.multiply(x, scratch, out=y)


# Elementwise GELU work goes block by block: each of its ~18 passes then reads and writes a block
# that stays in the L2 cache instead of a (B*T, 3072) array in main memory; blocks are spread over
# the threads. Blocks change nothing in the numbers (every element sees the same operations).
_GELU_BLOCK = 1 << 16


def gelu_forward(x, kind="erf", inplace=False):
    """GELU, exact or the tanh approximation.

    x: any shape   kind: 'erf' or 'tanh'   returns the same shape
    erf:  y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
    tanh: y = x * (1 + tanh(u)) / 2,  u = sqrt(2/pi) * (x + 0.044715 x^3)
    inplace: write y over x (C-contiguous) and keep no cache, for inference
    """
    if kind not in ("erf", "tanh"):
        raise ValueError(f"kind must be 'erf' or 'tanh', got {kind!r}")
    if inplace and not x.flags.c_contiguous:
        raise ValueError("gelu_forward(inplace=True) needs a C-contiguous x")
    if get_xp(x) is not np or (kind == "erf" and x.dtype == np.float64):
        y, saved = _gelu_values(x, kind)
        if inplace:
            x[...] = y
            return x, None
        return y, (x, saved, kind)
    x = np.ascontiguousarray(x)
    y = x if inplace else np.empty_like(x)
    saved = None if inplace else np.empty_like(x)
    xf, yf, sf = x.reshape(-1), y.reshape(-1), None if inplace else saved.reshape(-1)
    pieces = row_pieces(xf.size, 1, _GELU_BLOCK)

    def piece(i):
        b = pieces[i]
        if inplace:
            s, scratch = np.empty((2, b.stop - b.start), x.dtype)
        else:
            s, scratch = sf[b], yf[b]
        _gelu_block(xf[b], yf[b], s, scratch, kind, keep=not inplace)

    run_pieces(piece, len(pieces))
    return y, None if inplace else (x, saved, kind)


def _gelu_grad_values(dout, x, saved, kind, g):
    """g = dout * dgelu/dx (see gelu_backward), g: an output array of x's shape."""
    xp = get_xp(x)
    if kind == "erf":
        cdf = saved
        # forward was: y = x * Phi(x);  dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
        xp.multiply(x, x, out=g)
        g *= -0.5
        xp.exp(g, out=g)
        g *= x
        g *= 1.0 / math.sqrt(2.0 * math.pi)
        g += cdf
    else:
        th = saved
        # forward was: y = x (1 + th) / 2, th = tanh(u);  dy/dx = (1 + th) / 2 + x (1 - th^2) u' / 2
        # with u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
        du = x * x
        du *= 3 * 0.044715
        du += 1.0
        du *= math.sqrt(2.0 / math.pi) * 0.5
        du *= x
        xp.multiply(th, th, out=g)
        xp.subtract(1.0, g, out=g)
        g *= du
        g += 0.5
        g += 0.5 * th
    g *= dout
    return g


def gelu_backward(dout, cache):
    """Returns dx, same shape as dout."""
    x, saved, kind = cache
    xp = get_xp(x)
    dout = xp.broadcast_to(dout, x.shape)
    g = xp.empty(x.shape, dtype=x.dtype)                  # x's dtype, as in-place passes give
    if xp is not np:
        return _gelu_grad_values(dout, x, saved, kind, g)
    df, gf = np.ascontiguousarray(dout).reshape(-1), g.reshape(-1)
    xf, sf = x.reshape(-1), saved.reshape(-1)
    pieces = row_pieces(xf.size, 1, _GELU_BLOCK)
    run_pieces(lambda i: _gelu_grad_values(df[pieces[i]], xf[pieces[i]], sf[pieces[i]], kind,
                                           gf[pieces[i]]), len(pieces))
    return g


# ---- table lookup ------------------------------------------------------------------------


def scatter_add_rows(table, ids, rows):
    """table[ids[n]] += rows[n] for every n, repeated ids adding up in order; in place.

    table: (V, C)   ids: (N,) ints   rows: (N, C)
    With NumPy: one sort, one add.reduceat over each id's run of rows, one write per distinct id
    (the same sums, in the same order, as add.at, which goes row by row).
    """
    xp = get_xp(table)
    if xp is not np:
        xp.add.at(table, ids, rows)
        return table
    order = np.argsort(ids, kind="stable")                # equal ids keep their order
    ids_sorted = ids[order]
    starts = np.flatnonzero(np.concatenate([[True], ids_sorted[1:] != ids_sorted[:-1]]))
    if starts.size:
        table[ids_sorted[starts]] += np.add.reduceat(rows[order], starts, axis=0)
    return table


matmul = matmul_tall
