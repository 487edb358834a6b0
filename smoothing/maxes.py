"""Smooth max / min, the soft one-hot argmax and the soft argmax index (kexue.fm 6620, 3290, 9070).

The smooth maximum of x_1..x_n at temperature T is

    smax_T(x) = T * log sum_i exp(x_i / T)        (logsumexp, not softmax, is the smooth max)

and its gradient is softmax(x / T), the soft one-hot of the argmax. Contracting that one-hot with the
indices 0..n-1 gives a soft argmax index. Every function here is a reduction or a map along `axis`
and accepts -inf entries (an option that cannot be chosen).

Each idea comes as `name(...)` (the value), `name_forward(...) -> (out, cache)` and
`name_backward(dout, cache) -> dx`.
"""
from .core import as_float_array, check_axis, check_temperature, get_xp, logsumexp, softmax, softmax_backward


def _reduce_prep(x, axis, temperature):
    """Validated float x, non-negative axis (x is flattened when axis is None) and temperature."""
    x = as_float_array(x, "x")
    t = check_temperature(temperature)
    if axis is None:
        return x.reshape(-1), 0, t
    return x, check_axis(x, axis), t


def smooth_max_forward(x, temperature=1.0, *, axis=-1, keepdims=False):
    """Smooth maximum along `axis`: smax = T * log sum_i exp(x_i / T).

    x: any shape, floats, -inf allowed      axis: int, or None for all entries
    returns (out, cache); out has x's shape without `axis` (kept as 1 if keepdims), like np.max
    Bound (9070): 0 <= smax - max(x) <= T * log(n), n = number of entries reduced. Sharper, with
    gap = (largest - second largest): smax - max <= T * log(1 + (n - 1) * exp(-gap / T)).
    A row of all -inf gives -inf (and a zero gradient). NaN or +inf in x raises ValueError.
    """
    x_in = x
    x, ax, t = _reduce_prep(x, axis, temperature)
    if x.shape[ax] == 0:
        raise ValueError(f"x has length 0 along axis {axis}: the smooth max of nothing is undefined")
    xp = get_xp(x)
    out = logsumexp(x, axis=ax, temperature=t)                 # x's shape without `axis`
    p = softmax(x, axis=ax, temperature=t)                      # softmax(x / T), x's shape: the gradient
    if keepdims:
        out = xp.expand_dims(out, ax) if axis is not None else out.reshape((1,) * x_in.ndim)
    return out, (p, ax, axis is None, x_in.shape)


def smooth_max_backward(dout, cache):
    """d smax / dx_i = softmax(x / T)_i, so dx = dout (broadcast along axis) * p."""
    p, ax, flat, in_shape = cache
    xp = get_xp(p)
    dout = xp.asarray(dout).reshape(p.shape[:ax] + p.shape[ax + 1:])  # drop any kept dims
    dx = xp.expand_dims(dout, ax) * p
    return dx.reshape(in_shape) if flat else dx


def smooth_max(x, temperature=1.0, *, axis=-1, keepdims=False):
    """T * log sum exp(x / T) along `axis`; see smooth_max_forward for shapes and the bound."""
    return smooth_max_forward(x, temperature, axis=axis, keepdims=keepdims)[0]


def smooth_min_forward(x, temperature=1.0, *, axis=-1, keepdims=False):
    """Smooth minimum along `axis`: smin = -T * log sum_i exp(-x_i / T) = -smax(-x).

    x: any shape, floats, +inf allowed (an option never chosen by min)
    Bound: 0 <= min(x) - smin <= T * log(n). A row of all +inf gives +inf.
    """
    x = as_float_array(x, "x")
    out, cache = smooth_max_forward(-x, temperature, axis=axis, keepdims=keepdims)
    return -out, cache


def smooth_min_backward(dout, cache):
    """d smin / dx_i = softmax(-x / T)_i (the two minus signs cancel)."""
    return smooth_max_backward(dout, cache)


def smooth_min(x, temperature=1.0, *, axis=-1, keepdims=False):
    """-T * log sum exp(-x / T) along `axis`; see smooth_min_forward."""
    return smooth_min_forward(x, temperature, axis=axis, keepdims=keepdims)[0]


def soft_onehot_argmax_forward(x, temperature=1.0, *, axis=-1):
    """Soft one-hot of the argmax: p = softmax(x / T) along `axis` (6620: [2,1,4,5,3] -> ~[0,0,0,1,0]).

    x: any shape, floats, -inf allowed        returns (p, cache), p shaped like x
    Bound: sum_i |p_i - onehot_i| = 2 * (1 - p_max) <= 2 * (n - 1) * exp(-gap / T), where gap is the
    distance between the two largest entries (at a tie the mass is shared: no limit exists there).
    """
    x = as_float_array(x, "x")
    t = check_temperature(temperature)
    ax = check_axis(x, axis)
    p = softmax(x, axis=ax, temperature=t)
    return p, (p, ax, t)


def soft_onehot_argmax_backward(dout, cache):
    """dx = p * (dout - sum(dout * p)) / T along axis (the softmax Jacobian)."""
    p, ax, t = cache
    return softmax_backward(dout, p, axis=ax, temperature=t)


def soft_onehot_argmax(x, temperature=1.0, *, axis=-1):
    """softmax(x / T) along `axis`, read as a soft one-hot of the argmax."""
    return soft_onehot_argmax_forward(x, temperature, axis=axis)[0]


def soft_argmax_index_forward(x, temperature=1.0, *, axis=-1):
    """Soft argmax index, 0-based like np.argmax: s = sum_i i * softmax(x / T)_i, i = 0..n-1.

    x: any shape, floats, -inf allowed      returns (s, cache), s has x's shape without `axis`
    The post (6620) numbers positions from 1; add 1 to compare with its examples.
    Bound: |s - argmax| <= (n - 1) * (1 - p_max) <= (n - 1)^2 * exp(-gap / T). At a tie s is the mean
    of the tied indices; at T = 1 with spread-out scores s is pulled toward the middle index.
    A row of all -inf gives 0.
    """
    x = as_float_array(x, "x")
    t = check_temperature(temperature)
    ax = check_axis(x, axis)
    xp = get_xp(x)
    p = softmax(x, axis=ax, temperature=t)
    shape = [1] * x.ndim
    shape[ax] = x.shape[ax]
    idx = xp.arange(x.shape[ax], dtype=x.dtype).reshape(shape)   # 0, 1, ..., n-1 along axis
    s = (p * idx).sum(axis=ax)
    return s, (p, idx, s, ax, t)


def soft_argmax_index_backward(dout, cache):
    """ds / dx_j = p_j * (j - s) / T, so dx = dout (broadcast along axis) * p * (idx - s) / T."""
    p, idx, s, ax, t = cache
    xp = get_xp(p)
    # forward was: s = sum_i i * p_i with p = softmax(x / T)
    return xp.expand_dims(xp.asarray(dout), ax) * p * (idx - xp.expand_dims(s, ax)) / t


def soft_argmax_index(x, temperature=1.0, *, axis=-1):
    """sum_i i * softmax(x / T)_i along `axis` (0-based); see soft_argmax_index_forward."""
    return soft_argmax_index_forward(x, temperature, axis=axis)[0]
