"""The tuned twin of minibert.loss.cross_entropy_forward / _backward: the same loss and gradient, fused.

What it buys (bench/RESULTS.md, train_step): the forward computes the gradient as well, in one array
and in place (shift by the row maximum, exp, normalise, subtract the one-hot), so the (N, V) logits of
the scored rows (N ~ 160, V = 30522 in the benchmark) are passed over about half as often as by
log_softmax, exp and a subtraction, in row blocks that stay in cache, over the threads
(smoothing/threads.py). What it costs the reader: the backward is only a scaling of an
array the forward prepared. Against the plain pair: float rounding (tests/test_fast_equals_plain.py).
"""
import numpy as np

from smoothing import get_xp
from smoothing.threads import row_pieces, run_pieces

from .. import loss as plain


# Rows of the (N, V) logits are processed in blocks of about this many entries (an L2 cache's worth),
# spread over the threads.
_CE_BLOCK = 1 << 17


def cross_entropy_forward(logits, labels):
    """minibert.loss.cross_entropy_forward: loss = -mean_n log softmax(logits_n)[labels_n]."""
    N = labels.shape[0]
    if N == 0 or get_xp(logits) is not np:
        return plain.cross_entropy_forward(logits, labels)
    rows = np.arange(N)
    top = np.empty((N, 1), logits.dtype)                  # the row maxima, for a stable exp
    total = np.empty((N, 1), logits.dtype)
    p = np.empty_like(logits)                             # (N, V), the one new array
    pieces = row_pieces(N, logits.shape[-1], _CE_BLOCK)

    def piece(i):
        """Every pass over a block of rows while it is in cache: shift, exp, sum, normalise."""
        r = pieces[i]
        z, pr, t, s = logits[r], p[r], top[r], total[r]
        z.max(axis=-1, keepdims=True, out=t)
        np.subtract(z, t, out=pr)
        np.exp(pr, out=pr)
        pr.sum(axis=-1, keepdims=True, out=s)
        pr *= (1.0 / (s * N)).astype(p.dtype)             # softmax / N

    run_pieces(piece, len(pieces))
    picked = (logits[rows, labels] - top[:, 0]).astype(np.float64)   # z_label - max, before the exp
    # -log softmax(z)[y] = log sum exp(z - max) - (z_y - max)
    loss = float((np.log(total[:, 0].astype(np.float64)) - picked).sum()) / N
    p[rows, labels] -= p.dtype.type(1.0 / N)              # the gradient of the mean loss
    return np.asarray(loss, dtype=logits.dtype), ("fused", p)


def cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax - onehot) / N; with dloss 1, the forward's own array."""
    if not (isinstance(cache[0], str) and cache[0] == "fused"):       # the forward fell back to plain
        return plain.cross_entropy_backward(dloss, cache)
    d = cache[1]
    return d if dloss == 1.0 else d * d.dtype.type(dloss)
