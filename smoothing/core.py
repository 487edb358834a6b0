"""The numeric base: array module lookup, argument checks, stable logsumexp / softmax / softplus, and erf.

Everything else in the project that needs a softmax or a softplus imports it from here. Each function
is the plain formula, made stable by subtracting the row maximum before exponentiating:

    logsumexp(x) = m + T * log sum_i exp((x_i - m) / T),   m = max_i x_i
    softmax(x)_i = exp((x_i - m) / T) / sum_j exp((x_j - m) / T)

The tuned twins with the same signatures (row blocks that stay in cache, in-place passes, threads)
are in smoothing/fast.py; benchmarks and demos choose them explicitly, and tests check they agree.

Conventions for a row whose entries are all -inf (nothing to choose from, e.g. a fully masked
attention row): logsumexp is -inf, softmax is all zeros and log_softmax is all -inf. No NaN is
produced and no floating-point warning is raised. A row holding NaN or +inf has no meaningful smooth
maximum and is refused with a ValueError.
"""
import math

import numpy as np


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


def check_temperature(value, name="temperature"):
    """The temperature of a reduction (logsumexp, softmax, smooth_max, ...): a positive finite float.

    Every smoothing function takes its temperature right after its array arguments, f(x, T), with the
    axis by name only (axis=...). An int is refused here, so that a call written the NumPy way,
    f(x, 1) meaning axis 1, fails with this message instead of quietly reducing another axis.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        raise ValueError(f"{name} must be a float, got the int {value!r}: the reductions take "
                         f"(x, temperature, axis=...); pass the axis by name (axis={value!r}) and an "
                         f"integer temperature as a float ({float(value)!r})")
    return check_positive(value, name)


def check_axis(x, axis, name="axis"):
    """axis as a non-negative int valid for x."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ValueError(f"{name} must be an int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}={axis} is out of range for an array of {x.ndim} dimensions")
    return int(axis) % x.ndim


def _shifted_exp(x, axis, temperature):
    """e = exp((x - m) / T) and the shift m = max along `axis` (kept as 1), NaN / +inf refused.

    x: float array   returns e (x's shape, entries in [0, 1]), m (x's shape with `axis` of size 1)
    A row of all -inf is shifted by 0 instead of -inf, so that it gives e = 0 and not NaN.
    """
    xp = get_xp(x)
    m = x.max(axis=axis, keepdims=True)                          # NaN if the row holds a NaN
    bad = ~(m < xp.inf)                                          # NaN or +inf somewhere in the row
    if bool(bad.any()):
        raise ValueError(f"x must not contain NaN or +inf (found in {int(bad.sum())} of {m.size} rows)")
    m = xp.where(m == -xp.inf, 0, m)
    return xp.exp((x - m) / temperature), m


def logsumexp(x, temperature=1.0, *, axis=-1, keepdims=False):
    """Smooth maximum T * log sum_i exp(x_i / T) along `axis`.

    x: any shape, floats (-inf allowed)    returns x's shape without `axis` (kept as 1 if keepdims)
    lse = m + T * log sum_i exp((x_i - m) / T), m = max(x): every exp is at most 1, none overflows.
    Bound (kexue.fm 9070): max(x) <= logsumexp(x) <= max(x) + T * log(n), n = x.shape[axis].
    A row of all -inf gives -inf.
    """
    x = as_float_array(x, "x")
    temperature = check_temperature(temperature)
    axis = check_axis(x, axis)
    if x.shape[axis] == 0:
        raise ValueError(f"x has length 0 along axis {axis}: logsumexp of nothing is undefined")
    e, m = _shifted_exp(x, axis, temperature)
    s = e.sum(axis=axis, keepdims=True)                          # >= 1, or 0 for an all -inf row
    with np.errstate(divide="ignore"):                           # log(0) = -inf for an all -inf row
        lse = m + temperature * get_xp(x).log(s)
    return lse if keepdims else lse.squeeze(axis)


def softmax(x, temperature=1.0, *, axis=-1):
    """Soft one-hot of the argmax: p_i = exp(x_i / T) / sum_j exp(x_j / T) along `axis`.

    x: any shape, floats (-inf allowed, giving p_i = 0)    returns the same shape
    Bound: sum |p - onehot(argmax)| = 2 (1 - p_max) and 1 - p_max <= (n - 1) exp(-gap / T), where gap
    is the distance between the two largest entries. A row of all -inf gives all zeros.
    """
    x = as_float_array(x, "x")
    temperature = check_temperature(temperature)
    axis = check_axis(x, axis)
    if x.shape[axis] == 0:
        return x.copy()
    e, _ = _shifted_exp(x, axis, temperature)
    s = e.sum(axis=axis, keepdims=True)
    # an all -inf row has e = 0 and s = 0: divide by 1 there, so the row stays all zeros
    return e / get_xp(x).where(s == 0, 1, s)


def softmax_backward(dout, p, temperature=1.0, *, axis=-1):
    """Gradient through p = softmax(x / T): dx = p * (dout - sum(dout * p)) / T along `axis`.

    dout, p: same shape (p is the forward output)
    """
    # forward was: p_i = exp(x_i / T) / sum_j exp(x_j / T), so dp_i/dx_j = p_i (delta_ij - p_j) / T
    dx = p * (dout - (dout * p).sum(axis=axis, keepdims=True))
    return dx / temperature if temperature != 1.0 else dx


def log_softmax(x, temperature=1.0, *, axis=-1):
    """log p_i = x_i / T - log sum_j exp(x_j / T), computed without forming p.

    x: any shape, floats    returns the same shape; a row of all -inf gives all -inf.
    """
    x = as_float_array(x, "x")
    temperature = check_temperature(temperature)
    lse = logsumexp(x, axis=axis, keepdims=True, temperature=temperature)
    xp = get_xp(x)
    # where lse is -inf the whole row is -inf; subtract 0 there so -inf stays -inf, not NaN
    safe = xp.where(xp.isfinite(lse), lse, 0.0).astype(x.dtype)
    return (x - safe) / temperature


def log_softmax_backward(dout, logp, temperature=1.0, *, axis=-1):
    """Gradient through logp = log_softmax(x / T): dx = (dout - softmax * sum(dout)) / T."""
    xp = get_xp(logp)
    dx = dout - xp.exp(logp) * dout.sum(axis=axis, keepdims=True)
    return dx / temperature if temperature != 1.0 else dx


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x)), stable for large |x| (no overflow warning).

    x: any shape, floats    returns the same shape
    With e = exp(-|x|) in (0, 1]: sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.
    """
    x = as_float_array(x, "x")
    xp = get_xp(x)
    e = xp.exp(-xp.abs(x))                                       # never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


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


# ---- erf ---------------------------------------------------------------------------------------
def erf(x):
    """The error function, elementwise, in the dtype of x.

    NumPy: math.erf of every element (exact to about one ulp of float64, then rounded to x's dtype).
    CuPy: cupyx.scipy.special.erf. Any other array module: erf_series.
    """
    xp = get_xp(x)
    if xp is np:
        return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype)   # 0-d in: a float out
    if getattr(xp, "__name__", "") == "cupy":
        import cupyx.scipy.special  # only reached with CuPy arrays
        return cupyx.scipy.special.erf(x)
    return erf_series(x)


def erf_series(x, terms=100):
    """erf from the array module's own exp alone (Abramowitz & Stegun 7.1.6), in float64 inside:

    erf(z) = 2/sqrt(pi) * exp(-z^2) * sum_n z^(2n+1) 2^n / (1 * 3 * ... * (2n+1)),  |z| clipped to 6
    Every term is positive, so nothing cancels; at |z| = 6 (where erf is 1 in float64) 100 terms are
    enough: against math.erf the error is below 3e-15 (tests/test_minibert_core.py).
    """
    xp = get_xp(x)
    z = xp.clip(x.astype(xp.float64), -6.0, 6.0)
    term, total = z, z                                    # n = 0: z / 1
    for n in range(1, terms):
        term = term * (2.0 * z * z / (2 * n + 1))
        total = total + term
    return (2.0 / math.sqrt(math.pi) * xp.exp(-z * z) * total).astype(x.dtype)
