"""Tuned twins of smoothing.core's logsumexp, softmax, log_softmax and sigmoid: same signatures, same numbers.

The plain versions in core.py make several passes over whole arrays (max, subtract, divide, exp, sum,
divide), each one a fresh temporary array as large as the input. Here the rows are cut into blocks of
about _BLOCK_ELEMS elements (1 MiB of float32, one core's L2 cache on the machine of bench/RESULTS.md);
each block goes through all its passes while it stays in cache, in place in one buffer, and large
arrays hand their blocks out to threads (NumPy's ufuncs release the GIL) through
smoothing.threads.run_pieces.

What it buys (python -m bench smoothing, 4096 x 4096 float32, 2 threads): see bench/RESULTS.md.
What it costs the reader: the formula is spread over a block loop, `out=` arguments and two passes.

Equal to core.py, within rounding. Every row is first exponentiated without the shift by its max
(exp(x / T) directly): NumPy's exp costs about ten of the other passes, so the max pass it saves
and the few small operations per block it avoids are most of what is left to save. A row is kept
when its sum shows that nothing overflowed or fell out of the normal range (see _lse_rows); such
rows agree with core.py's within a few units in the last place of the result and of log(sum)
(tested: rtol 1e-5 / 1e-13 plus a few eps times the input's size). The other rows are done again
in the plain order, shifted by their max, so there logsumexp and log_softmax give core.py's bits;
sigmoid always does (tested). softmax multiplies by the reciprocal of the row sum instead of
dividing by it (5 to 10% faster here). Along another axis core.py sums in another order; the two
agree to a few units in the last place. The conventions are the same: an all -inf row gives -inf /
zeros / -inf, NaN or +inf is refused with a ValueError. The bits do not depend on the number of
threads: the blocks depend only on the array's shape, and whether a row is redone only on the row.
"""
import threading

import numpy as np

from .core import as_float_array, check_axis, check_temperature, get_xp
from .threads import row_pieces, run_pieces

# Rows are processed in blocks of about this many elements: big enough that per-block Python
# overhead is small, small enough that the block stays in a core's L2 cache.
_BLOCK_ELEMS = 1 << 18
# Arrays at least this large are split over threads (smoothing.threads.thread_count of them).
_PARALLEL_ELEMS = 1 << 20
# Rows are first exponentiated without the shift by their max; a row is kept when its sum lies within
# exp(-L) .. exp(L), L below (see _lse_rows), and done again the plain way otherwise.
_NO_SHIFT = {np.dtype(np.float32): 64.0, np.dtype(np.float64): 512.0}


def _exp_pass(x2d, temperature, row_sum, p=None, row_shift=None):
    """exp((x - shift) / T) of every row of a C-contiguous (R, n) array, in cached row blocks.

    row_sum (R, 1) receives the row sums; p (R, n), when given, the rows divided by them (softmax).
    row_shift None: no shift. row_shift (R, 1): each row is shifted by its max, which is written there
    (an all -inf row by 0, so that exp(-inf) = 0 and not NaN; NaN and +inf stay as found), in the plain
    order of operations: max, subtract, divide, exp, sum.
    """
    xp = get_xp(x2d)
    R, n = x2d.shape
    blocks = row_pieces(R, n, _BLOCK_ELEMS) if xp is np else [slice(0, R)]
    local = threading.local()                                     # one scratch block per thread

    def work(i):
        rows = blocks[i]
        if p is not None:
            buf = p[rows]
        else:
            if getattr(local, "buf", None) is None:
                local.buf = xp.empty((blocks[0].stop - blocks[0].start, n), dtype=x2d.dtype)
            buf = local.buf[:rows.stop - rows.start]
        # overflow, 0 * inf and inf - inf are expected here and sorted out by the caller from the
        # sums and maxes; they must not turn into warnings first (errstate is per thread)
        with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
            src = x2d[rows]
            if row_shift is not None:
                m = row_shift[rows]
                src.max(axis=1, keepdims=True, out=m)
                m[m == -xp.inf] = 0
                src = xp.subtract(src, m, out=buf)
            if temperature != 1.0:
                src = xp.divide(src, temperature, out=buf)
            xp.exp(src, out=buf)
            s = row_sum[rows]
            buf.sum(axis=1, keepdims=True, out=s)
            if p is not None:
                # one reciprocal per row and a multiply per entry, cheaper than a divide per entry;
                # an all -inf row has s = 0 and gets 1 / inf = 0, so it stays all zeros
                buf *= xp.reciprocal(s if row_shift is None else xp.where(s == 0, xp.inf, s))

    if xp is np and R * n >= _PARALLEL_ELEMS:
        run_pieces(work, len(blocks), name="smoothing")
    else:
        for i in range(len(blocks)):
            work(i)


def _lse_rows(x2d, temperature, want_softmax):
    """Row-wise logsumexp of a C-contiguous (R, n) array, and its softmax rows when asked.

    returns (lse (R,), p (R, n) or None); ValueError if a row holds NaN or +inf.

    Every row is first exponentiated without the shift by its max, which saves the max pass. A row
    is kept when its sum s lies within exp(-L) .. exp(L) (L = 64 in float32, 512 in float64). Then no
    exp has overflowed (each is at most s), the row held no NaN or +inf (s would be NaN or inf),
    1 / s and log s are ordinary numbers, and an entry whose exp fell below the normal range (more
    than about 87 below 0 in float32) has a probability under exp(L) * 1.2e-38 = 7.5e-11, carried
    with an absolute error under 1e-17. The other rows (large or very negative entries, NaN, +inf,
    all -inf) are done again in the plain order, shifted by their max, which gives the plain
    layer's bits, and their maxes show NaN and +inf.
    """
    xp = get_xp(x2d)
    R, n = x2d.shape
    row_sum = xp.empty((R, 1), dtype=x2d.dtype)
    p = xp.empty_like(x2d) if want_softmax else None
    row_shift = xp.zeros((R, 1), dtype=x2d.dtype)
    limit = _NO_SHIFT.get(x2d.dtype)
    if limit is None:                                             # float16: every row the plain way
        redo = xp.ones(R, dtype=bool)
    else:
        _exp_pass(x2d, temperature, row_sum, p)
        redo = ~((row_sum >= np.exp(-limit)) & (row_sum <= np.exp(limit)))[:, 0]   # True for NaN
    if bool(redo.any()):
        idx = xp.flatnonzero(redo)
        x_r = xp.ascontiguousarray(x2d[idx])
        sum_r, shift_r = xp.empty((idx.size, 1), dtype=x2d.dtype), xp.empty((idx.size, 1), dtype=x2d.dtype)
        p_r = xp.empty_like(x_r) if want_softmax else None
        _exp_pass(x_r, temperature, sum_r, p_r, shift_r)
        bad = ~(shift_r < xp.inf)                                 # NaN or +inf somewhere in the row
        if bool(bad.any()):
            raise ValueError(f"x must not contain NaN or +inf (found in {int(bad.sum())} of {R} rows)")
        row_sum[idx], row_shift[idx] = sum_r, shift_r
        if want_softmax:
            p[idx] = p_r
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
