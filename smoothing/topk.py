"""Soft top-k: a smooth version of the multi-hot vector marking the k largest entries (kexue.fm 6620, 10373).

Three constructions, all along `axis`, all with temperature T (they see x / T), all summing to k:

- recursive (6620): p <- p + softmax((1 - p) * x), k times, on x shifted so that min(x) = 0. Each
  round suppresses what is already chosen. No [0, 1] bound or monotonicity is proven for it (10373
  says so); in practice entries can leave [0, 1] at moderate T.
- threshold with f = sigmoid (10373): p_i = sigmoid(x_i / T - lam) with lam chosen so that sum p = k,
  found by bisection; the gradient comes from the implicit function theorem, not from the bisection.
- threshold with f = min(1, e^x) (10373): the same with a closed-form lam; at k = 1 it is softmax.

Each comes as `name(x, k, ...)`, `name_forward(x, k, ...) -> (p, cache)`, `name_backward(dout, cache)`.
k must be an integer with 1 <= k < n (k = n is all ones, nothing to smooth). x must be finite.
"""
import math

import numpy as np

from .core import as_float_array, check_axis, check_temperature, get_xp, sigmoid, softmax, softmax_backward


def _prep(x, k, axis, temperature):
    """x moved so `axis` is last, as floats; checked k, axis and T."""
    x = as_float_array(x, "x")
    t = check_temperature(temperature)
    ax = check_axis(x, axis)
    xp = get_xp(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError("x must be finite for soft top-k (no NaN or inf entries)")
    n = x.shape[ax]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int, got {k!r}")
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < n = {n} (length of axis {axis}), got k={k}")
    return xp.moveaxis(x, ax, -1), int(k), ax, t


# ---- recursive construction (6620) -------------------------------------------------------------
def soft_topk_recursive_forward(x, k, temperature=1.0, *, axis=-1):
    """Soft top-k by repeated softmax (6620): xs = x - min(x), p_0 = 0, and for i = 1..k
        q_i = softmax((1 - p_{i-1}) * xs / T),   p_i = p_{i-1} + q_i.

    x: any shape, finite floats     k: int, 1 <= k < n     returns (p_k, cache), p shaped like x
    sum p = k exactly. As T -> 0 (no ties among the k+1 largest) p -> the hard top-k multi-hot: with a
    hard one-hot each round zeroes the chosen entry, so the next largest wins the next round.
    No bound keeps p in [0, 1] at finite T: it is not proven (10373), and it fails in practice.
    """
    x, k, ax, t = _prep(x, k, axis, temperature)
    xp = get_xp(x)
    arg = xp.argmin(x, axis=-1)[..., None]                          # (..., 1), where min(x) sits
    xs = x - xp.take_along_axis(x, arg, axis=-1)                    # (..., n), all >= 0
    p = xp.zeros_like(x)
    qs = []
    for _ in range(k):
        q = softmax((1.0 - p) * xs, axis=-1, temperature=t)
        qs.append(q)
        p = p + q
    return xp.moveaxis(p, -1, ax), (xs, arg, qs, ax, t)


def soft_topk_recursive_backward(dout, cache):
    """Back through the k rounds in reverse, then through the shift xs = x - x[argmin]."""
    xs, arg, qs, ax, t = cache
    xp = get_xp(xs)
    dp = xp.moveaxis(dout, ax, -1)                                  # dL/dp_k
    dxs = xp.zeros_like(xs)
    p = sum(qs)                                                     # p_k; peel rounds off the end
    for q in reversed(qs):
        p = p - q                                                   # p_{i-1}
        # forward was: p_i = p_{i-1} + q,  q = softmax(y / T),  y = (1 - p_{i-1}) * xs
        dy = softmax_backward(dp, q, axis=-1, temperature=t)
        dxs += dy * (1.0 - p)
        dp = dp - dy * xs                                           # dL/dp_{i-1}
    # forward was: xs = x - x[argmin]: the minimum entry receives minus the total
    dx = dxs.copy()
    xp.put_along_axis(dx, arg, xp.take_along_axis(dx, arg, axis=-1) - dxs.sum(axis=-1, keepdims=True),
                      axis=-1)
    return xp.moveaxis(dx, -1, ax)


def soft_topk_recursive(x, k, temperature=1.0, *, axis=-1):
    return soft_topk_recursive_forward(x, k, temperature, axis=axis)[0]


# ---- threshold construction with f = sigmoid (10373) -------------------------------------------
def soft_topk_sigmoid_forward(x, k, temperature=1.0, *, axis=-1, max_iter=200):
    """Soft top-k p_i = sigmoid(z_i - lam), z = x / T, with lam solving sum_i sigmoid(z_i - lam) = k.

    x: any shape, finite floats     k: int, 1 <= k < n     returns (p, cache), p shaped like x
    lam is found by bisection on [min z - logit(k/n), max z - logit(k/n)], where the sum is >= k and
    <= k respectively, until the bracket is a few ulps wide.
    Bounds (derived): 0 <= p <= 1 (0 < p < 1 before rounding); sum p = k up to round-off of order
    n * eps * |x - max x| / T; and with gap = x_(k-1) - x_(k) (0-based, decreasing order),
    sum |p - topk| <= 2 * max(k, n - k) * sigmoid(-gap / (2T)) <= 2 max(k, n-k) e^(-gap/2T)
    (the k chosen miss exactly what the others hold, and each side is bounded by the cut's gap).
    """
    x, k, ax, t = _prep(x, k, axis, temperature)
    xp = get_xp(x)
    z = (x - x.max(axis=-1, keepdims=True)) / t                     # shift-invariant; keeps z small
    n = z.shape[-1]
    shift = math.log(k / (n - k))                                   # logit(k / n)
    lo = z.min(axis=-1, keepdims=True) - shift                      # (..., 1): sum >= k here
    hi = z.max(axis=-1, keepdims=True) - shift                      #           sum <= k here
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        too_many = sigmoid(z - mid).sum(axis=-1, keepdims=True) > k  # threshold must go up
        lo = xp.where(too_many, mid, lo)
        hi = xp.where(too_many, hi, mid)
        tol = 4 * xp.finfo(z.dtype).eps * xp.maximum(1.0, xp.maximum(xp.abs(lo), xp.abs(hi)))
        if bool(((hi - lo) <= tol).all()):
            break
    lam = 0.5 * (lo + hi)
    p = sigmoid(z - lam)
    return xp.moveaxis(p, -1, ax), (p, ax, t)


def soft_topk_sigmoid_backward(dout, cache):
    """Implicit gradient: with s_i = p_i (1 - p_i), d lam / d z_j = s_j / sum_i s_i, so
        dz = s * dout - s * sum(s * dout) / sum(s),   dx = dz / T.
    """
    p, ax, t = cache
    xp = get_xp(p)
    g = xp.moveaxis(dout, ax, -1)
    s = p * (1.0 - p)                                               # sigmoid'(z - lam)
    s_sum = s.sum(axis=-1, keepdims=True)
    # if every entry has saturated (s = 0 in floating point), the gradient is 0, not 0/0
    coef = (s * g).sum(axis=-1, keepdims=True) / xp.where(s_sum > 0, s_sum, 1.0)
    return xp.moveaxis(s * (g - coef) / t, -1, ax)


def soft_topk_sigmoid(x, k, temperature=1.0, *, axis=-1):
    return soft_topk_sigmoid_forward(x, k, temperature, axis=axis)[0]


# ---- threshold construction with f = min(1, e^x): closed form (10373) ---------------------------
def soft_topk_exp_forward(x, k, temperature=1.0, *, axis=-1):
    """Soft top-k p_i = min(1, exp(z_i - lam)), z = x / T, with sum p = k in closed form.

    Sort z decreasingly, z_(0) >= z_(1) >= ...; if the first m entries are clipped at 1, then
        lam_m = log sum_{i >= m} exp(z_(i)) - log(k - m),
    and m is the smallest of 0..k-1 with z_(m) <= lam_m. At k = 1: m = 0, lam = logsumexp(z), p = softmax.
    x: any shape, finite floats     k: int, 1 <= k < n     returns (p, cache), p shaped like x
    Bounds (derived): 0 <= p <= 1, sum p = k (up to n * eps * |x - max x| / T); with
    gap = x_(k-1) - x_(k) (0-based, decreasing order),
    sum |p - topk| <= 2 * (n - k) * exp(-gap / T) (lam > z_(k-1) because the sum would exceed k otherwise).
    """
    x, k, ax, t = _prep(x, k, axis, temperature)
    xp = get_xp(x)
    z = (x - x.max(axis=-1, keepdims=True)) / t                     # shift-invariant; keeps z small
    zs = -xp.sort(-z, axis=-1)                                      # (..., n), decreasing
    # suffix logsumexp: tail[..., m] = log sum_{i >= m} exp(zs_i)
    tail = xp.flip(np.logaddexp.accumulate(xp.flip(zs, axis=-1), axis=-1) if xp is np
                   else _logaddexp_accumulate(xp.flip(zs, axis=-1)), axis=-1)
    m = xp.arange(k, dtype=z.dtype)                                 # candidates 0..k-1
    lam_m = tail[..., :k] - xp.log(k - m)                           # (..., k)
    ok = zs[..., :k] <= lam_m                                       # true at m = k-1 at least
    first = xp.argmax(ok, axis=-1)[..., None]                       # (..., 1) smallest valid m
    lam = xp.take_along_axis(lam_m, first, axis=-1)                 # (..., 1)
    e = xp.exp(xp.minimum(z - lam, 0.0))
    clipped = z - lam >= 0                                          # entries held at 1
    p = xp.where(clipped, 1.0, e).astype(z.dtype, copy=False)
    return xp.moveaxis(p, -1, ax), (p, clipped, first, k, ax, t)


def _logaddexp_accumulate(a):
    """Running logaddexp along the last axis for modules without ufunc.accumulate (CuPy)."""
    xp = get_xp(a)
    out = xp.empty_like(a)
    out[..., 0] = a[..., 0]
    for i in range(1, a.shape[-1]):
        out[..., i] = xp.logaddexp(out[..., i - 1], a[..., i])
    return out


def soft_topk_exp_backward(dout, cache):
    """On the free set U (p < 1), p_U = (k - m) * softmax(z_U), so
        dz_U = p * (dout - sum_U(dout * p) / (k - m)),   dz = 0 on clipped entries,   dx = dz / T.
    """
    p, clipped, first, k, ax, t = cache
    xp = get_xp(p)
    g = xp.moveaxis(dout, ax, -1)
    free_p = xp.where(clipped, 0.0, p)
    room = (k - first).astype(p.dtype)                              # (..., 1) = sum of p over U
    dz = free_p * (g - (g * free_p).sum(axis=-1, keepdims=True) / room)
    return xp.moveaxis(dz / t, -1, ax)


def soft_topk_exp(x, k, temperature=1.0, *, axis=-1):
    return soft_topk_exp_forward(x, k, temperature, axis=axis)[0]


def hard_topk(x, k, *, axis=-1):
    """The exact multi-hot of the k largest entries along `axis` (ties broken by position)."""
    x = as_float_array(x, "x")
    ax = check_axis(x, axis)
    xp = get_xp(x)
    order = xp.argsort(-xp.moveaxis(x, ax, -1), axis=-1, kind="stable")
    out = xp.zeros(order.shape, dtype=x.dtype)
    xp.put_along_axis(out, order[..., :k], 1.0, axis=-1)
    return xp.moveaxis(out, -1, ax)
