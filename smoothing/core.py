"""The numeric base: array module lookup, argument checks, and stable logsumexp / softmax / softplus.

Everything else in the project that needs a softmax or a softplus imports it from here, so these few
functions are written for speed (in place where it is safe, row blocks that stay in cache) as well as
for stability (the maximum is subtracted before exponentiating).

Conventions for a row whose entries are all -inf (nothing to choose from, e.g. a fully masked
attention row): logsumexp is -inf, softmax is all zeros and log_softmax is all -inf. No NaN is
produced and no floating-point warning is raised. A row holding NaN or +inf has no meaningful smooth
maximum and is refused with a ValueError.
"""
import numpy as np

from .threads import thread_count, thread_pool

# Rows are processed in blocks of about this many elements (512 KiB of float32, one core's L2 cache):
# big enough that per-block Python overhead is small, small enough that the block stays cached.
_BLOCK_ELEMS = 1 << 17
# Arrays at least this large are split over threads (one per core, or OMP_NUM_THREADS if set).
_PARALLEL_ELEMS = 1 << 20


def get_xp(*arrays):
    """The array module that the given arrays belong to: cupy, numpy, or another array library's.

    CuPy arrays give the cupy module itself. Any other array type that is not NumPy's names its module
    through the array-API hook `x.__array_namespace__()`. NumPy arrays, Python numbers and anything
    else give numpy. The first array that is not NumPy's decides.
    """
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy  # only reached when a CuPy array was passed in

            return cupy
        if not isinstance(a, (np.ndarray, np.generic)) and hasattr(a, "__array_namespace__"):
            return a.__array_namespace__()
    return np


def as_float_array(x, name):
    """x as a floating-point array of its own module; ValueError naming `name` for anything else.

    Integer and boolean arrays are refused rather than silently converted: a smooth function of an
    integer array is almost always a mistake upstream (labels passed where scores were meant).
    """
    xp = get_xp(x)
    if not hasattr(x, "dtype"):
        try:
            x = xp.asarray(x, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be an array of floats, could not convert: {err}") from None
    x = xp.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def check_positive(value, name):
    """A strictly positive finite scalar (a temperature, a sharpness, a step), else ValueError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (v > 0.0 and np.isfinite(v)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def check_axis(x, axis, name="axis"):
    """axis as a non-negative int valid for x."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ValueError(f"{name} must be an int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}={axis} is out of range for an array of {x.ndim} dimensions")
    return int(axis) % x.ndim


def _row_blocks(n_rows, row_len):
    """Slices of rows, each block holding about _BLOCK_ELEMS elements."""
    step = max(1, _BLOCK_ELEMS // max(1, row_len))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _lse_last_axis(x2d, temperature, want_softmax):
    """Row-wise T * log sum exp(x / T) of a C-contiguous (R, n) array, optionally with softmax rows.

    Works block by block so that max, subtract, scale, exp, sum and rescale all touch a buffer that
    stays in the L2 cache; per block there are only a handful of NumPy calls, because with 4096-long
    rows a block is just 16 rows and Python overhead per block would otherwise show.
    Returns (lse (R,), p (R, n) or None). ValueError if a row holds NaN or +inf.
    """
    xp = get_xp(x2d)
    R, n = x2d.shape
    row_max = xp.empty((R, 1), dtype=x2d.dtype)
    row_sum = xp.empty((R, 1), dtype=x2d.dtype)
    p = xp.empty_like(x2d) if want_softmax else None
    inv_t = x2d.dtype.type(1.0 / temperature)

    def run_blocks(blocks):
        scratch = None if want_softmax else xp.empty_like(x2d[:max(1, _BLOCK_ELEMS // max(1, n))])
        # NaN / +inf rows are detected after the loop (from row_max) and refused; until then their
        # arithmetic may produce inf * 0, which must not turn into a warning first. (errstate is
        # per thread, so it is set here, inside each worker.)
        with np.errstate(invalid="ignore", over="ignore"):
            for rows in blocks:
                xb = x2d[rows]
                m = row_max[rows]
                xb.max(axis=1, keepdims=True, out=m)                  # (r, 1)
                buf = p[rows] if want_softmax else scratch[:xb.shape[0]]
                # an all -inf row has m = -inf; shifting it by 0 instead keeps exp(-inf) = 0, not NaN
                xp.subtract(xb, xp.where(m == -xp.inf, 0, m), out=buf)
                if inv_t != 1.0:
                    buf *= inv_t
                xp.exp(buf, out=buf)                                  # entries in [0, 1]
                s = row_sum[rows]
                buf.sum(axis=1, keepdims=True, out=s)                 # >= 1 unless the row is all -inf
                if want_softmax:
                    # all -inf row: s = 0, use 1 / inf = 0 so the row stays all zeros
                    buf *= xp.reciprocal(xp.where(s == 0, xp.inf, s))

    if xp is not np:
        run_blocks([slice(0, R)])
    else:
        blocks = _row_blocks(R, n)
        workers = min(thread_count(), len(blocks)) if R * n >= _PARALLEL_ELEMS else 1
        if workers == 1:
            run_blocks(blocks)
        else:
            # NumPy's ufuncs release the GIL, so contiguous shares of the row blocks (disjoint rows of
            # row_max, row_sum and p) run truly in parallel, as many as BLAS is given threads
            share = -(-len(blocks) // workers)
            parts = [blocks[i:i + share] for i in range(0, len(blocks), share)]
            list(thread_pool(len(parts)).map(run_blocks, parts))
    bad = ~(row_max < xp.inf)                                     # NaN or +inf somewhere in the row
    if bad.any():
        raise ValueError(f"x must not contain NaN or +inf (found in {int(bad.sum())} of {R} rows)")
    with np.errstate(divide="ignore"):                            # log(0) = -inf for all -inf rows
        lse = (xp.where(row_max == -xp.inf, 0, row_max) + temperature * xp.log(row_sum))[:, 0]
    return lse.astype(x2d.dtype, copy=False), p


def _to_rows(x, axis):
    """Move `axis` last and flatten the rest: (R, n) contiguous view/copy, and how to undo it."""
    xp = get_xp(x)
    moved = xp.moveaxis(x, axis, -1)
    x2d = xp.ascontiguousarray(moved).reshape(-1, x.shape[axis])
    return x2d, moved.shape


def logsumexp(x, axis=-1, keepdims=False, temperature=1.0):
    """Smooth maximum T * log sum_i exp(x_i / T) along `axis`.

    x: any shape, floats (-inf allowed)    returns x's shape without `axis` (kept as 1 if keepdims)
    Bound (kexue.fm 9070): max(x) <= logsumexp(x) <= max(x) + T * log(n), n = x.shape[axis].
    A row of all -inf gives -inf.
    """
    x = as_float_array(x, "x")
    temperature = check_positive(temperature, "temperature")
    axis = check_axis(x, axis)
    if x.shape[axis] == 0:
        raise ValueError(f"x has length 0 along axis {axis}: logsumexp of nothing is undefined")
    x2d, moved_shape = _to_rows(x, axis)
    lse, _ = _lse_last_axis(x2d, temperature, want_softmax=False)
    out = lse.reshape(moved_shape[:-1])
    return get_xp(x).expand_dims(out, axis) if keepdims else out


def softmax(x, axis=-1, temperature=1.0):
    """Soft one-hot of the argmax: p_i = exp(x_i / T) / sum_j exp(x_j / T) along `axis`.

    x: any shape, floats (-inf allowed, giving p_i = 0)    returns the same shape
    Bound: sum |p - onehot(argmax)| = 2 (1 - p_max) and 1 - p_max <= (n - 1) exp(-gap / T), where gap
    is the distance between the two largest entries. A row of all -inf gives all zeros.
    """
    x = as_float_array(x, "x")
    temperature = check_positive(temperature, "temperature")
    axis = check_axis(x, axis)
    x2d, moved_shape = _to_rows(x, axis)
    _, p = _lse_last_axis(x2d, temperature, want_softmax=True)
    return get_xp(x).moveaxis(p.reshape(moved_shape), -1, axis)


def softmax_backward(dout, p, axis=-1, temperature=1.0):
    """Gradient through p = softmax(x / T): dx = p * (dout - sum(dout * p)) / T along `axis`.

    dout, p: same shape (p is the forward output)
    """
    dx = dout * p
    dx -= p * dx.sum(axis=axis, keepdims=True)
    if temperature != 1.0:
        dx /= temperature
    return dx


def log_softmax(x, axis=-1, temperature=1.0):
    """log p_i = x_i / T - log sum_j exp(x_j / T), computed without forming p.

    x: any shape, floats    returns the same shape; a row of all -inf gives all -inf.
    """
    x = as_float_array(x, "x")
    temperature = check_positive(temperature, "temperature")
    lse = logsumexp(x, axis=axis, keepdims=True, temperature=temperature)
    xp = get_xp(x)
    # where lse is -inf the whole row is -inf; subtract 0 there so -inf stays -inf, not NaN
    safe = xp.where(xp.isfinite(lse), lse, 0.0).astype(x.dtype)
    return (x - safe) / temperature


def log_softmax_backward(dout, logp, axis=-1, temperature=1.0):
    """Gradient through logp = log_softmax(x / T): dx = (dout - softmax * sum(dout)) / T."""
    xp = get_xp(logp)
    dx = dout - xp.exp(logp) * dout.sum(axis=axis, keepdims=True)
    return dx / temperature if temperature != 1.0 else dx


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x)), stable for large |x| (no overflow warning)."""
    x = as_float_array(x, "x")
    xp = get_xp(x)
    # the same two formulas as xp.where(x >= 0, 1 / (1 + e), e / (1 + e)), same bits, in far fewer
    # passes; the numerator (1 for x >= 0, e otherwise) is exp(min(x, 0)), because a masked
    # select on random signs costs about four exps
    e = xp.empty_like(x)                                    # a 0-d array for a 0-d x, as before
    xp.abs(x, out=e)
    xp.negative(e, out=e)
    xp.exp(e, out=e)                                        # e = exp(-|x|) in (0, 1], never overflows
    den = e + 1.0
    xp.minimum(x, 0, out=e)
    xp.exp(e, out=e)                                        # numerator
    return xp.divide(e, den, out=e)


def softplus(x, temperature=1.0):
    """Smooth ReLU T * log(1 + exp(x / T)) (kexue.fm 8718: ReLU convolved with a logistic kernel).

    x: any shape, floats    returns the same shape
    Bound: 0 < softplus(x) - relu(x) <= T * log 2, largest at x = 0.
    Written as relu(x) + T * log1p(exp(-|x| / T)) so it never overflows.
    """
    x = as_float_array(x, "x")
    t = check_positive(temperature, "temperature")
    xp = get_xp(x)
    return (xp.maximum(x, 0) + t * xp.log1p(xp.exp(-xp.abs(x) / t))).astype(x.dtype)


def softplus_backward(dout, x, temperature=1.0):
    """d softplus / dx = sigmoid(x / T)."""
    return dout * sigmoid(as_float_array(x, "x") / check_positive(temperature, "temperature"))
