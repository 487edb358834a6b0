"""The small layers of BERT as forward/backward pairs: linear, LayerNorm, GELU (erf and tanh), dropout,
and the gradient of a table lookup.

Each `name_forward(...)` returns `(out, cache)` and `name_backward(dout, cache)` returns the gradients
of its inputs and parameters. Weights are stored for `x @ W` (W has shape (C_in, C_out)), the
transpose of PyTorch's Linear. Every function follows the dtype of its inputs and asks its inputs for
their array module (NumPy, or CuPy on a GPU).

This is the plain layer: each function is its formula. The tuned twins with the same signatures
(blocks, threads, in-place passes, a fitted erf) are in minibert/fast/layers.py; ops.py says how a
caller chooses between them.
"""
import math

import numpy as np

from smoothing import erf, get_xp

# ---- linear ------------------------------------------------------------------------------


def linear_forward(x, W, b):
    """y = x @ W + b.

    x: (..., C_in)   W: (C_in, C_out)   b: (C_out,)   returns (..., C_out)
    """
    out = x.reshape(-1, x.shape[-1]) @ W + b              # (N, C_out), N = all leading axes
    return out.reshape(*x.shape[:-1], W.shape[1]), (x, W)


def linear_backward(dout, cache):
    """Returns dx (..., C_in), dW (C_in, C_out), db (C_out,)."""
    x, W = cache
    # forward was: y = x @ W + b, over the N = B*T rows of x
    x2 = x.reshape(-1, x.shape[-1])                       # (N, C_in)
    d2 = dout.reshape(-1, dout.shape[-1])                 # (N, C_out)
    dx = (d2 @ W.T).reshape(x.shape)
    dW = x2.T @ d2                                        # (C_in, C_out), a sum over the N rows
    db = d2.sum(axis=0)
    return dx, dW, db


def matmul(a, b):
    """a @ b for 2-D a (M, K) and b (K, N): the product the MLM decoder's backward needs."""
    return a @ b


# ---- LayerNorm ---------------------------------------------------------------------------


def layernorm_forward(x, gamma, beta, eps=1e-12, inplace=False):
    """LayerNorm over the last axis.

    x: (..., C)   gamma, beta: (C,)
    y = (x - mean) / sqrt(var + eps) * gamma + beta
    inplace: write y over x and keep no cache (inference)
    """
    xp = get_xp(x)
    mean = x.mean(axis=-1, keepdims=True)                 # (..., 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # (..., 1)
    rstd = 1.0 / xp.sqrt(var + eps)
    xhat = (x - mean) * rstd                              # (..., C)
    y = xhat * gamma + beta
    if inplace:
        x[...] = y
        return x, None
    return y, (xhat, rstd, gamma)


def layernorm_backward(dout, cache):
    """Returns dx (..., C), dgamma (C,), dbeta (C,)."""
    xhat, rstd, gamma = cache
    C = xhat.shape[-1]
    # forward was: y = xhat * gamma + beta
    dgamma = (dout * xhat).reshape(-1, C).sum(axis=0)
    dbeta = dout.reshape(-1, C).sum(axis=0)
    dxhat = dout * gamma
    # forward was: xhat = (x - mean) * rstd; xhat depends on x through the mean and the variance
    # of its own row: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dgamma, dbeta


# ---- GELU --------------------------------------------------------------------------------


def gelu_forward(x, kind="erf", inplace=False):
    """GELU, exact or the tanh approximation.

    x: any shape   kind: 'erf' or 'tanh'   returns the same shape
    erf:  y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
    tanh: y = x * (1 + tanh(u)) / 2,  u = sqrt(2/pi) * (x + 0.044715 x^3)
    inplace: write y over x and keep no cache (inference)
    """
    xp = get_xp(x)
    if kind == "erf":
        saved = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))     # Phi(x)
        y = x * saved
    elif kind == "tanh":
        saved = xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x))   # tanh(u)
        y = x * (1.0 + saved) * 0.5
    else:
        raise ValueError(f"kind must be 'erf' or 'tanh', got {kind!r}")
    if inplace:
        x[...] = y
        return x, None
    return y, (x, saved, kind)


def gelu_backward(dout, cache):
    """Returns dx, same shape as dout."""
    x, saved, kind = cache
    xp = get_xp(x)
    if kind == "erf":
        # forward was: y = x * Phi(x);  dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
        phi = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        dydx = saved + x * phi
    else:
        # forward was: y = x (1 + th) / 2, th = tanh(u);  dy/dx = (1 + th) / 2 + x (1 - th^2) u' / 2
        du = math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715 * x * x)                 # u'
        dydx = 0.5 * (1.0 + saved) + 0.5 * x * (1.0 - saved * saved) * du
    return dout * dydx


# ---- dropout -----------------------------------------------------------------------------


def dropout_mask(shape, dtype, p, rng):
    """The scaled keep-mask of inverted dropout: 1 / (1 - p) where kept (probability 1 - p), else 0."""
    u = rng.random(shape, dtype=dtype)                    # one uniform draw per entry
    keep = u >= p                                         # True = kept
    return keep.astype(dtype) * np.dtype(dtype).type(1.0 / (1.0 - p))


def dropout_forward(x, p, rng=None):
    """Inverted dropout: keep each entry with probability 1 - p and scale it by 1 / (1 - p).

    x: any shape   p: drop probability in [0, 1)   rng: numpy (or CuPy) Generator, or None
    With rng None or p == 0 this is the identity (evaluation mode). The mask, already scaled, is
    drawn here and kept in the cache, so backward applies exactly the same one.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p!r}")
    if rng is None or p == 0.0:
        return x, None
    mask = dropout_mask(x.shape, x.dtype, p, rng)
    return x * mask, mask


def dropout_backward(dout, cache):
    """Returns dx: dout through the same scaled mask (dout itself in evaluation mode)."""
    mask = cache
    return dout if mask is None else dout * mask


# ---- table lookup ------------------------------------------------------------------------


def scatter_add_rows(table, ids, rows):
    """The gradient of a lookup E[ids]: table[ids[n]] += rows[n] for every n, in place.

    table: (V, C)   ids: (N,) ints   rows: (N, C)   repeated ids add up (add.at, row by row)
    """
    get_xp(table).add.at(table, ids, rows)
    return table
