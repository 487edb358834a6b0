"""Tuned twins of smoothing.core's logsumexp, softmax, log_softmax and sigmoid: same signatures, same numbers.

The plain versions in core.py make several passes over whole arrays (max, subtract, divide, exp, sum,
divide), each one a fresh temporary array as large as the input. Here the rows are cut into blocks of
about _BLOCK_ELEMS elements (512 KiB of float32, one core's L2 cache); each block goes through all the
passes while it stays in cache, in place in one buffer, and large arrays hand their blocks out to
threads (NumPy's ufuncs release the GIL) through smoothing.threads.run_pieces.

What it buys (python -m bench smoothing, 4096 x 4096 float32, 2 threads): see bench/RESULTS.md.
What it costs the reader: the formula is spread over a block loop and `out=` arguments.

Equal to core.py, within rounding. Where the row maxes of a block are moderate (|max / T| <= 64 in
float32, 512 in float64) the block is exponentiated without subtracting the max: exp(x / T) cannot
overflow there, and the pass it saves is 8 to 10% of the time here (NumPy's exp costs about ten of
the other passes, and the max is needed anyway, to refuse NaN and +inf). Those rows agree with
core.py's within a few units in the last place (tested to rtol 1e-5 / 1e-13); other blocks apply
the same elementwise operations in the same order as the plain formula, and a row's sum is NumPy's
sum of the same contiguous row, so there logsumexp and log_softmax give core.py's bits, and sigmoid
always does (tested). softmax multiplies by the reciprocal of the row sum instead of dividing by it
(5 to 10% faster here). Along another axis core.py sums in another order; the two agree to a few
units in the last place. The conventions are the same: an all -inf row gives -inf / zeros / -inf,
NaN or +inf is refused with a ValueError. The bits do not depend on the number of threads: the
blocks depend only on the array's shape, and whether a block is shifted only on its own rows.
"""
import threading

import numpy as np

from .core import as_float_array, check_axis, check_temperature, get_xp
from .threads import row_pieces, run_pieces

# Rows are processed in blocks of about this many elements: big enough that per-block Python
# overhead is small, small enough that the block stays in a core's L2 cache.
_BLOCK_ELEMS = 1 << 17
# Arrays at least this large are split over threads (smoothing.threads.thread_count of them).
_PARALLEL_ELEMS = 1 << 20
# Blocks whose row maxes all lie within +-T times this are exponentiated without the shift
# (see _block_pass): exp(64) and exp(512) leave room for any row sum, exp(-64) and exp(-512) are normal.
_NO_SHIFT = {np.dtype(np.float32): 64.0, np.dtype(np.float64): 512.0}


def _block_pass(x2d, rows, temperature, row_max, row_shift, row_sum, buf):
    """max, shift, divide, exp and sum of the rows `rows` of x2d, in `buf` (r, n); softmax if asked.

    The shift is skipped (row_shift 0) when every row max m of the block has |m / T| <= _NO_SHIFT:
    then no exp and no row sum can overflow (n exp(64) is far below float32's largest number), and
    the largest entry's exp(m / T) is a normal number, so the sum is > 0. It saves a pass over the
    block; an entry more than about 87 below its row max (float32) may come out subnormal instead
    of exactly 0 or a normal number, a change of less than 1e-10 in its probability.
    """
    xb = x2d[rows]
    m = row_max[rows]
    xb.max(axis=1, keepdims=True, out=m)                          # (r, 1)
    xp = get_xp(x2d)
    shift = row_shift[rows]
    src = xb
    if bool((xp.abs(m) <= _NO_SHIFT.get(x2d.dtype, -1.0) * temperature).all()):
        shift[...] = 0                                            # NaN / inf maxes never get here
    else:
        # an all -inf row has m = -inf; shifting it by 0 instead keeps exp(-inf) = 0, not NaN
        xp.copyto(shift, xp.where(m == -xp.inf, 0, m))
        xp.subtract(xb, shift, out=buf)
        src = buf
    if temperature != 1.0:
        xp.divide(src, temperature, out=buf)
        src = buf
    xp.exp(src, out=buf)
    s = row_sum[rows]
    buf.sum(axis=1, keepdims=True, out=s)                         # > 0 unless the row is all -inf


def _lse_rows(x2d, temperature, want_softmax):
    """Row-wise logsumexp of a C-contiguous (R, n) array, and its softmax rows when asked.

    returns (lse (R,), p (R, n) or None); ValueError if a row holds NaN or +inf.
    """
    xp = get_xp(x2d)
    R, n = x2d.shape
    row_max = xp.empty((R, 1), dtype=x2d.dtype)
    row_shift = xp.empty((R, 1), dtype=x2d.dtype)
    row_sum = xp.empty((R, 1), dtype=x2d.dtype)
    p = xp.empty_like(x2d) if want_softmax else None
    blocks = row_pieces(R, n, _BLOCK_ELEMS) if xp is np else [slice(0, R)]
    local = threading.local()                                     # one scratch block per thread

    def work(i):
        rows = blocks[i]
        if want_softmax:
            buf = p[rows]
        else:
            if getattr(local, "buf", None) is None:
                local.buf = xp.empty((blocks[0].stop - blocks[0].start, n), dtype=x2d.dtype)
            buf = local.buf[:rows.stop - rows.start]
        # NaN / +inf rows are refused after the loop (from row_max); until then their arithmetic
        # may produce inf - inf, which must not turn into a warning first (errstate is per thread)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            _block_pass(x2d, rows, temperature, row_max, row_shift, row_sum, buf)
            if want_softmax:
                # one reciprocal per row and a multiply per entry, cheaper than a divide per entry;
                # an all -inf row has s = 0 and gets 1 / inf = 0, so it stays all zeros
                s = row_sum[rows]
                buf *= xp.reciprocal(xp.where(s == 0, xp.inf, s))

    if xp is np and R * n >= _PARALLEL_ELEMS:
        run_pieces(work, len(blocks), name="smoothing")
    else:
        for i in range(len(blocks)):
            work(i)
    bad = ~(row_max < xp.inf)                                     # NaN or +inf somewhere in the row
    if bool(bad.any()):
        raise ValueError(f"x must not contain NaN or +inf (found in {int(bad.sum())} of {R} rows)")
    with np.errstate(divide="ignore"):                            # log(0) = -inf for all -inf rows
        lse = row_shift + temperature * xp.log(row_sum)
    return lse[:, 0], p


def _to_rows(x, axis):
    """Move `axis` last and flatten the rest: a C-contiguous (R, n) view or copy, and the moved shape."""
    xp = get_xp(x)
    moved = xp.moveaxis(x, axis, -1)
    return xp.ascontiguousarray(moved).reshape(-1, x.shape[axis]), moved.shape


def logsumexp(x, temperature=1.0, *, axis=-1, keepdims=False):
    """core.logsumexp, in cached row blocks over threads. x: any shape, floats (-inf allowed)."""
    x = as_float_array(x, "x")
    temperature = check_temperature(temperature)
    axis = check_axis(x, axis)
    if x.shape[axis] == 0:
        raise ValueError(f"x has length 0 along axis {axis}: logsumexp of nothing is undefined")
    x2d, moved_shape = _to_rows(x, axis)
    lse, _ = _lse_rows(x2d, temperature, want_softmax=False)
    out = lse.reshape(moved_shape[:-1])
    return get_xp(x).expand_dims(out, axis) if keepdims else out


def softmax(x, temperature=1.0, *, axis=-1):
    """core.softmax, in cached row blocks over threads, written straight into the output."""
    x = as_float_array(x, "x")
    temperature = check_temperature(temperature)
    axis = check_axis(x, axis)
    if x.shape[axis] == 0:
        return x.copy()
    x2d, moved_shape = _to_rows(x, axis)
    _, p = _lse_rows(x2d, temperature, want_softmax=True)
    return get_xp(x).moveaxis(p.reshape(moved_shape), -1, axis)


def log_softmax(x, temperature=1.0, *, axis=-1):
    """core.log_softmax over this module's logsumexp: (x - lse) / T, an all -inf row staying -inf."""
    x = as_float_array(x, "x")
    temperature = check_temperature(temperature)
    lse = logsumexp(x, axis=axis, keepdims=True, temperature=temperature)
    xp = get_xp(x)
    safe = xp.where(xp.isfinite(lse), lse, 0.0).astype(x.dtype)
    return (x - safe) / temperature


def sigmoid(x):
    """core.sigmoid in four in-place passes instead of a masked select over two formulas; same bits.

    For x >= 0 the plain 1 / (1 + e) has numerator 1 = exp(min(x, 0)), for x < 0 the numerator is
    e = exp(x) = exp(min(x, 0)); so sigmoid = exp(min(x, 0)) / (1 + exp(-|x|)) with no select, which
    on random signs is about four exps cheaper.
    """
    x = as_float_array(x, "x")
    xp = get_xp(x)
    e = xp.empty_like(x)                                          # a 0-d array for a 0-d x
    xp.abs(x, out=e)
    xp.negative(e, out=e)
    xp.exp(e, out=e)                                              # e = exp(-|x|) in (0, 1]
    den = e + 1.0
    xp.minimum(x, 0, out=e)
    xp.exp(e, out=e)                                              # the numerator
    return xp.divide(e, den, out=e)
