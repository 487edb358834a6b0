"""The tuned twin of minibert.loss.cross_entropy_forward / _backward: the same loss and gradient, fused.

What it buys (bench/RESULTS.md, train_step): the forward computes the gradient as well, in one array
and in place (shift by the row maximum, exp, normalise, subtract the one-hot), so the (N, V) logits of
the scored rows (N ~ 160, V = 30522 in the benchmark) are passed over about half as often as by
log_softmax, exp and a subtraction. What it costs the reader: the backward is only a scaling of an
array the forward prepared. Against the plain pair: float rounding (tests/test_fast_equals_plain.py).
"""
import numpy as np

from smoothing import get_xp

from .. import loss as plain


def cross_entropy_forward(logits, labels):
    """minibert.loss.cross_entropy_forward: loss = -mean_n log softmax(logits_n)[labels_n]."""
    N = labels.shape[0]
    if N == 0 or get_xp(logits) is not np:
        return plain.cross_entropy_forward(logits, labels)
    rows = np.arange(N)
    top = logits.max(axis=-1, keepdims=True)              # (N, 1), for a stable exp
    p = np.subtract(logits, top)                          # (N, V), the one new array
    picked = p[rows, labels].astype(np.float64)           # z_label - max, before the exp
    np.exp(p, out=p)
    total = p.sum(axis=-1, keepdims=True)                 # (N, 1)
    # -log softmax(z)[y] = log sum exp(z - max) - (z_y - max)
    loss = float((np.log(total[:, 0].astype(np.float64)) - picked).sum()) / N
    p *= (1.0 / (total * N)).astype(p.dtype)              # softmax / N
    p[rows, labels] -= p.dtype.type(1.0 / N)              # the gradient of the mean loss
    return np.asarray(loss, dtype=logits.dtype), ("fused", p)


def cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax - onehot) / N; with dloss 1, the forward's own array."""
    if not (isinstance(cache[0], str) and cache[0] == "fused"):       # the forward fell back to plain
        return plain.cross_entropy_backward(dloss, cache)
    d = cache[1]
    return d if dloss == 1.0 else d * d.dtype.type(dloss)
