"""The small layers of BERT as forward/backward pairs: linear, LayerNorm, GELU (erf and tanh), dropout.

Each `name_forward(...)` returns `(out, cache)` and `name_backward(dout, cache)` returns the gradients
of its inputs and parameters. Weights are stored for `x @ W` (W has shape (C_in, C_out)), the
transpose of PyTorch's Linear. Every function follows the dtype of its inputs.

Elementwise work is done in place where the forward value is not needed again: on the BERT-base
benchmark a new (B*T, 3072) temporary per operation costs more than the arithmetic itself.
"""
import math

import numpy as np

from smoothing import get_xp

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
    dW = x2.T @ d2
    db = d2.sum(axis=0)
    return dx, dW, db


# ---- LayerNorm ---------------------------------------------------------------------------


def layernorm_forward(x, gamma, beta, eps=1e-12):
    """LayerNorm over the last axis.

    x: (..., C)   gamma, beta: (C,)
    y = (x - mean) / sqrt(var + eps) * gamma + beta
    """
    xp = get_xp(x)
    C = x.shape[-1]
    xhat = x - x.mean(axis=-1, keepdims=True)             # (..., C), centred
    # row variance as a dot product of each row with itself: no (..., C) square temporary
    var = xp.einsum("...i,...i->...", xhat, xhat)[..., None] / C
    rstd = 1.0 / xp.sqrt(var + eps)                       # (..., 1)
    xhat *= rstd
    out = xhat * gamma
    out += beta
    return out, (xhat, rstd, gamma)


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

# Abramowitz & Stegun 7.1.26: for z >= 0, erf(z) = 1 - (a1 t + ... + a5 t^5) exp(-z^2) + e(z),
# t = 1 / (1 + p z), |e(z)| <= 1.5e-7: as good as float32 can hold, with one exp and no branches.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x):
    """The error function, elementwise, in the dtype of x.

    float64 (used by every gradient and reference check): math.erf per element, exact to about one
    ulp but slow. float32 / float16: Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7 (about 4e-7
    once evaluated in float32), fast.
    CuPy arrays use cupyx.scipy.special.erf.
    """
    xp = get_xp(x)
    if xp is not np:
        import cupyx.scipy.special  # only reached with CuPy arrays
        return cupyx.scipy.special.erf(x)
    if x.dtype == np.float64:
        return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)
    a = np.abs(x)
    t = a * _AS_P
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * _AS_A[4]                                   # Horner, in place: ((a5 t + a4) t + ...) t
    for coef in _AS_A[3::-1]:
        poly += coef
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)                                      # exp(-z^2)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)


# Elementwise GELU work is done block by block on NumPy arrays: each of its ~20 passes then reads
# and writes a block that stays in the L2 cache instead of a (B*T, 3072) array in main memory.
# Blocks change nothing in the numbers (every element sees the same operations).
_GELU_BLOCK = 1 << 15


def _blocks(x):
    """Slices of x.reshape(-1) of _GELU_BLOCK elements, or None where blocking does not apply."""
    if get_xp(x) is not np or x.size <= _GELU_BLOCK or not x.flags.c_contiguous:
        return None
    return [slice(i, i + _GELU_BLOCK) for i in range(0, x.size, _GELU_BLOCK)]


def _gelu_forward_values(x, kind):
    """(y, saved) of gelu_forward on one array; saved is Phi(x) for 'erf', tanh(u) for 'tanh'."""
    xp = get_xp(x)
    if kind == "erf":
        cdf = erf(x * (1.0 / math.sqrt(2.0)))
        cdf += 1.0
        cdf *= 0.5                                        # Phi(x)
        return x * cdf, cdf
    u = x * x                                             # x*x*x, never x**3 (a slow path on float32)
    u *= 0.044715
    u += 1.0
    u *= x
    u *= math.sqrt(2.0 / math.pi)
    th = xp.tanh(u, out=u)
    half = th + 1.0
    half *= 0.5                                           # (1 + tanh u) / 2
    return x * half, th


def gelu_forward(x, kind="erf"):
    """GELU, exact or the tanh approximation.

    x: any shape   kind: 'erf' or 'tanh'   returns the same shape
    erf:  y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
    tanh: y = x * (1 + tanh(u)) / 2,  u = sqrt(2/pi) * (x + 0.044715 x^3)
    """
    if kind not in ("erf", "tanh"):
        raise ValueError(f"kind must be 'erf' or 'tanh', got {kind!r}")
    blocks = _blocks(x)
    if blocks is None:
        y, saved = _gelu_forward_values(x, kind)
        return y, (x, saved, kind)
    y, saved = np.empty_like(x), np.empty_like(x)
    xf, yf, sf = x.reshape(-1), y.reshape(-1), saved.reshape(-1)
    for b in blocks:
        yf[b], sf[b] = _gelu_forward_values(xf[b], kind)
    return y, (x, saved, kind)


def _gelu_grad_values(dout, x, saved, kind):
    """dout * dgelu/dx on one array (see gelu_backward)."""
    xp = get_xp(x)
    if kind == "erf":
        cdf = saved
        # forward was: y = x * Phi(x);  dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
        g = x * x
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
        g = th * th
        xp.subtract(1.0, g, out=g)
        g *= du
        g += 0.5
        g += 0.5 * th
    g *= dout
    return g


def gelu_backward(dout, cache):
    """Returns dx, same shape as dout."""
    x, saved, kind = cache
    blocks = _blocks(x)
    if blocks is None or dout.shape != x.shape:
        return _gelu_grad_values(dout, x, saved, kind)
    g = np.empty_like(x)                                  # x's dtype, as the in-place passes give
    df, gf = np.ascontiguousarray(dout).reshape(-1), g.reshape(-1)
    xf, sf = x.reshape(-1), saved.reshape(-1)
    for b in blocks:
        gf[b] = _gelu_grad_values(df[b], xf[b], sf[b], kind)
    return g


# ---- dropout -----------------------------------------------------------------------------


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
    keep = rng.random(x.shape, dtype=x.dtype) >= p        # (same shape), True = kept
    mask = keep.astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    """Returns dx: dout through the same scaled mask (dout itself in evaluation mode)."""
    mask = cache
    return dout if mask is None else dout * mask
