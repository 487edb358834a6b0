"""The tuned twin of minibert.optim.adamw_steps: the same AdamW step, in blocks over threads, in place.

What it buys (bench/RESULTS.md, train_step): every tensor is cut into blocks of _ADAM_BLOCK entries,
and the dozen elementwise passes of one block (moments, direction, decay, step) run while the block
stays in the L2 cache, writing into one scratch buffer; the blocks of all tensors are spread over the
threads (smoothing/threads.py). What it costs the reader: the formula becomes a sequence of in-place
ufuncs. The weight decay is applied as w (1 - lr decay) before the step, the same number up to float
rounding (tests/test_fast_equals_plain.py).
"""
import numpy as np

from smoothing import get_xp
from smoothing.threads import row_pieces, run_pieces

# The dozen passes of a block of this many entries stay in the L2 cache.
_ADAM_BLOCK = 1 << 16


def adamw_steps(steps, lr, b1, b2, c1, c2, eps):
    """minibert.optim.adamw_steps: one AdamW step of every (w, g, m, v, decay) in steps, in place."""
    pieces = []                                           # (flat arrays, block slice, decay)
    for w, g, m, v, decay in steps:
        if get_xp(w) is np and all(a.flags.c_contiguous for a in (w, g, m, v)):
            flat = [a.reshape(-1) for a in (w, g, m, v)]
            pieces += [(flat, b, decay) for b in row_pieces(w.size, 1, _ADAM_BLOCK)]
        else:
            _adamw_step(w, g, m, v, get_xp(w).empty_like(w), lr, decay, b1, b2, c1, c2, eps)

    def piece(i):
        (w, g, m, v), b, decay = pieces[i]
        _adamw_step(w[b], g[b], m[b], v[b], np.empty(b.stop - b.start, w.dtype), lr, decay,
                    b1, b2, c1, c2, eps)

    run_pieces(piece, len(pieces))


def _adamw_step(w, g, m, v, u, lr, decay, b1, b2, c1, c2, eps):
    """One AdamW step of w in place: w = w (1 - lr decay) - lr direction; u is scratch like w."""
    t = w.dtype.type
    _adam_direction(m, v, g, b1, b2, c1, c2, eps, u)
    if decay:
        w *= t(1.0 - lr * decay)                          # w - lr wd w, before the Adam step
    u *= t(lr)
    w -= u


def _adam_direction(m, v, g, b1, b2, c1, c2, eps, out):
    """Update the moments in place and write (m / c1) / (sqrt(v / c2) + eps) into out.

    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2   (out serves as scratch first)
    """
    xp, t = get_xp(m), m.dtype.type
    m *= t(b1)
    xp.multiply(g, t(1.0 - b1), out=out)
    m += out
    xp.multiply(g, g, out=out)
    out *= t(1.0 - b2)
    v *= t(b2)
    v += out
    xp.multiply(v, t(1.0 / c2), out=out)
    xp.sqrt(out, out=out)
    out += t(eps)                                         # out = sqrt(v / c2) + eps
    xp.divide(m, out, out=out)
    out *= t(1.0 / c1)
