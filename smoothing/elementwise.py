"""Smooth abs, ReLU, sign, step, floor / round, Swish and GELU, each with a temperature T > 0.

The common recipe (kexue.fm 3290, 8718): write the kink or jump with the step function theta(x) and
replace theta by a smooth S-curve of width T, usually sigmoid(x / T); equivalently convolve the
function with a smooth kernel of width T (a smoothed Dirac delta). Every function is elementwise,
maps any shape to the same shape, and tends to the exact function as T -> 0 (at a jump it tends to
the midpoint). Bounds are stated per function; they are all uniform in x except where noted.

Each idea comes as `name(x, temperature)`, `name_forward(x, temperature) -> (y, cache)` and
`name_backward(dout, cache) -> dx`.
"""
import math

from .core import as_float_array, check_positive, erf, get_xp, sigmoid, softplus


def _argmax_of_gap(slope, lo=0.0, hi=10.0):
    """Root of the derivative `slope` of y * cdf(-y) on [lo, hi] by bisection (scalar, at import)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


# The largest gap between ReLU and Swish / GELU at T = 1: max over y >= 0 of y * cdf(-y).
# Swish (logistic cdf): the slope vanishes where y * sigmoid(y) = 1, and there the gap is y - 1.
_Y_SWISH = _argmax_of_gap(lambda y: 1.0 / (1.0 + math.exp(y)) - y * math.exp(y) / (1.0 + math.exp(y)) ** 2)
SWISH_GAP = _Y_SWISH / (1.0 + math.exp(_Y_SWISH))                                # ~0.27846
# GELU (Gaussian cdf Phi): the slope Phi(-y) - y * phi(y) vanishes at y ~ 0.7518.
_Y_GELU = _argmax_of_gap(lambda y: 0.5 * math.erfc(y / math.sqrt(2.0))
                         - y * math.exp(-0.5 * y * y) / math.sqrt(2.0 * math.pi))
GELU_GAP = _Y_GELU * 0.5 * math.erfc(_Y_GELU / math.sqrt(2.0))                   # ~0.16997


def _prep(x, temperature):
    return as_float_array(x, "x"), check_positive(temperature, "temperature")


# ---- |x| --------------------------------------------------------------------------------------
def smooth_abs_forward(x, temperature=1.0):
    """|x| ~ T * log(exp(x / T) + exp(-x / T)), the smooth max of x and -x (3290).

    Bound: 0 < y - |x| <= T * log 2 (largest at x = 0). Computed as |x| + T * log1p(exp(-2|x| / T)).
    """
    x, t = _prep(x, temperature)
    xp = get_xp(x)
    y = xp.abs(x) + t * xp.log1p(xp.exp(-2.0 * xp.abs(x) / t))
    return y, (x, t)


def smooth_abs_backward(dout, cache):
    """dy/dx = tanh(x / T), the smooth sign."""
    x, t = cache
    return dout * get_xp(x).tanh(x / t)


def smooth_abs(x, temperature=1.0):
    return smooth_abs_forward(x, temperature)[0]


# ---- ReLU -------------------------------------------------------------------------------------
def smooth_relu_forward(x, temperature=1.0):
    """max(0, x) ~ softplus: T * log(1 + exp(x / T)), ReLU convolved with the kernel sigmoid'(x/T)/T.

    Bound: 0 < y - relu(x) <= T * log 2 (largest at x = 0).
    """
    x, t = _prep(x, temperature)
    return softplus(x, temperature=t), (x, t)


def smooth_relu_backward(dout, cache):
    """dy/dx = sigmoid(x / T), the smooth step."""
    x, t = cache
    return dout * sigmoid(x / t)


def smooth_relu(x, temperature=1.0):
    return smooth_relu_forward(x, temperature)[0]


# ---- sign and step ----------------------------------------------------------------------------
def smooth_sign_forward(x, temperature=1.0):
    """sign(x) ~ tanh(x / T) = 2 * sigmoid(2x / T) - 1, the derivative of smooth_abs.

    Bound: |y - sign(x)| = 2 / (1 + exp(2|x| / T)) <= 2 * exp(-2|x| / T) for x != 0; y(0) = 0 = sign(0).
    """
    x, t = _prep(x, temperature)
    y = get_xp(x).tanh(x / t)
    return y, (y, t)


def smooth_sign_backward(dout, cache):
    """dy/dx = (1 - y^2) / T."""
    y, t = cache
    return dout * (1.0 - y * y) / t


def smooth_sign(x, temperature=1.0):
    return smooth_sign_forward(x, temperature)[0]


def smooth_step_forward(x, temperature=1.0):
    """Heaviside theta(x) ~ sigmoid(x / T).

    Bound: |y - theta(x)| = sigmoid(-|x| / T) <= exp(-|x| / T) for x != 0; y(0) = 1/2.
    """
    x, t = _prep(x, temperature)
    y = sigmoid(x / t)
    return y, (y, t)


def smooth_step_backward(dout, cache):
    """dy/dx = y * (1 - y) / T."""
    y, t = cache
    return dout * y * (1.0 - y) / t


def smooth_step(x, temperature=1.0):
    return smooth_step_forward(x, temperature)[0]


# ---- floor and round (8718) -------------------------------------------------------------------
def _floor_window(temperature):
    """Half-width W of the sum: the terms left out add up to less than T * exp(-45), below 1e-18
    for any T <= 30."""
    return int(math.ceil(45.0 * temperature)) + 1


def smooth_floor_forward(x, temperature=0.1):
    """floor(x) as a sum of smoothed steps (8718): floor(x) = sum_{n >= 1} theta(x - n) - sum_{n <= 0}
    theta(n - x), with theta ~ sigmoid(. / T), i.e. floor convolved with the kernel sigmoid'(x/T)/T.

    Centred at c = round(x), u = x - c in [-1/2, 1/2]:
        y = c + sum_{j=1..W} sigmoid((u - j) / T) - sum_{j=0..W} sigmoid((j - u) / T)
    (W = ceil(45 T) + 1 terms each side; the rest is below 1e-18).
    Bound, with d = distance from x to the nearest integer:
        |y - floor(x)| <= (exp(-d / T) + exp(-(1 - d) / T)) / (1 - exp(-1 / T)),
    so y -> floor(x) as T -> 0 away from integers; at an integer y = x - 1/2 (the midpoint of the jump).
    """
    x, t = _prep(x, temperature)
    xp = get_xp(x)
    w = _floor_window(t)
    c = xp.round(x)                                                 # piecewise constant: no gradient
    j = xp.arange(-w, w + 1, dtype=x.dtype)                         # (2W+1,)
    a = (x - c)[..., None] - j                                      # (..., 2W+1), a = u - j
    s = sigmoid(a / t)
    ups = xp.where(j >= 1, s, 0.0).sum(axis=-1)                     # sum_{j>=1} sigmoid((u - j)/T)
    downs = xp.where(j <= 0, 1.0 - s, 0.0).sum(axis=-1)             # sum_{j<=0} sigmoid((j - u)/T)
    y = (c + ups - downs).astype(x.dtype, copy=False)
    return y, (s, t)


def smooth_floor_backward(dout, cache):
    """dy/dx = sum_j sigmoid'((u - j) / T) / T: a bump of area 1 at every integer."""
    s, t = cache
    return dout * (s * (1.0 - s)).sum(axis=-1) / t


def smooth_floor(x, temperature=0.1):
    return smooth_floor_forward(x, temperature)[0]


def smooth_round_forward(x, temperature=0.1):
    """round(x) ~ smooth_floor(x + 1/2): jumps at half-integers.

    Bound: as smooth_floor with d = distance from x to the nearest half-integer. Exact rounding here
    sends halves up (floor(x + 1/2)), unlike NumPy's round-half-to-even; the smooth version gives the
    midpoint there.
    """
    x, t = _prep(x, temperature)
    return smooth_floor_forward(x + 0.5, t)


def smooth_round_backward(dout, cache):
    return smooth_floor_backward(dout, cache)


def smooth_round(x, temperature=0.1):
    return smooth_round_forward(x, temperature)[0]


# ---- ReLU = x * theta(x) with a smooth theta: Swish and GELU (8718) ----------------------------
def swish_forward(x, temperature=1.0):
    """Swish / SiLU with temperature: y = x * sigmoid(x / T) (theta replaced by the logistic CDF).

    Bound: 0 <= relu(x) - y = |x| * sigmoid(-|x| / T) <= SWISH_GAP * T, SWISH_GAP ~ 0.2785.
    """
    x, t = _prep(x, temperature)
    s = sigmoid(x / t)
    return x * s, (x, s, t)


def swish_backward(dout, cache):
    """dy/dx = s + (x / T) * s * (1 - s), s = sigmoid(x / T)."""
    x, s, t = cache
    return dout * (s + x / t * s * (1.0 - s))


def swish(x, temperature=1.0):
    return swish_forward(x, temperature)[0]


def gelu_forward(x, temperature=1.0):
    """GELU with temperature: y = x * Phi(x / T), Phi the standard normal CDF (T = 1: the usual,
    exact-erf GELU of BERT). theta replaced by the Gaussian CDF of width T.

    Bound: 0 <= relu(x) - y = |x| * Phi(-|x| / T) <= GELU_GAP * T, GELU_GAP ~ 0.1700.
    """
    x, t = _prep(x, temperature)
    z = x / t
    cdf = 0.5 * (1.0 + erf(z / math.sqrt(2.0)))
    return x * cdf, (z, cdf, t)


def gelu_backward(dout, cache):
    """dy/dx = Phi(z) + z * phi(z), z = x / T, phi the standard normal density."""
    z, cdf, t = cache
    xp = get_xp(z)
    return dout * (cdf + z * xp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))


def gelu(x, temperature=1.0):
    return gelu_forward(x, temperature)[0]
