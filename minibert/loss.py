"""Cross-entropy over the vocabulary: the one loss of the MLM head, forward and backward.

    loss = -mean_n log softmax(logits_n)[label_n]        dlogits = (softmax(logits) - onehot) / N

`cross_entropy_*` takes the scored rows only (N, V); `masked_cross_entropy_*` takes logits of every
position with labels of IGNORE_INDEX (-100, as Hugging Face) where nothing is scored, picks the scored
rows and calls the former. The MLM and seq2seq training steps score a few rows of the hidden states
(heads.scored_rows_forward_backward), so their logits are never made for the other positions.
"""
import numpy as np

from smoothing import get_xp, log_softmax

IGNORE_INDEX = -100


def cross_entropy_forward(logits, labels):
    """Mean cross-entropy of rows of logits.

    logits: (N, V) floats   labels: (N,) ints in [0, V)
    loss = -mean_n log softmax(logits_n)[labels_n]; 0 when N = 0. returns loss (0-d array), cache
    """
    xp = get_xp(logits)
    N = labels.shape[0]
    if N == 0:
        return xp.zeros((), logits.dtype), (None, labels, logits.shape, logits.dtype)
    logp = log_softmax(logits, axis=-1)                   # (N, V)
    loss = -logp[xp.arange(N), labels].mean()
    return loss, (logp, labels, logits.shape, logits.dtype)


def cross_entropy_backward(dloss, cache):
    """Returns dlogits (N, V) = dloss * (softmax(logits) - onehot(labels)) / N."""
    logp, labels, shape, dtype = cache
    xp = get_xp(labels)
    N = labels.shape[0]
    if N == 0:
        return xp.zeros(shape, dtype=dtype)
    # forward was: loss = -mean_n logp[n, y_n],  logp = log_softmax(z)
    dlogits = xp.exp(logp)
    dlogits[xp.arange(N), labels] -= 1.0
    return dlogits * (dloss / N)


def scored_rows(labels, V, ignore_index=IGNORE_INDEX):
    """The flat positions whose label is not ignore_index, and their labels (checked to lie in [0, V))."""
    xp = get_xp(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    flat = labels.reshape(-1)
    rows = xp.flatnonzero(flat != ignore_index)           # (N,)
    y = flat[rows]
    if y.size and (int(y.min()) < 0 or int(y.max()) >= V):
        raise ValueError(f"labels must lie in [0, {V}) or be {ignore_index}, got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    return rows, y


def masked_cross_entropy_forward(logits, labels, ignore_index=IGNORE_INDEX):
    """Mean cross-entropy over the positions whose label is not ignore_index.

    logits: (..., V) floats   labels: (...) ints in [0, V) or ignore_index
    returns the loss (a 0-d array; 0 when nothing is labelled) and the cache
    """
    xp = get_xp(logits)
    V = logits.shape[-1]
    labels = xp.asarray(labels)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have shape {tuple(logits.shape[:-1])}, got {tuple(labels.shape)}")
    rows, y = scored_rows(labels, V, ignore_index)
    loss, ce = cross_entropy_forward(logits.reshape(-1, V)[rows], y)
    return loss, (ce, rows, logits.shape)


def masked_cross_entropy_rows_backward(dloss, cache):
    """The non-zero rows of masked_cross_entropy_backward: (rows (N,) flat positions, d (N, V))."""
    ce, rows, _ = cache
    return rows, cross_entropy_backward(dloss, ce)


def masked_cross_entropy_backward(dloss, cache):
    """Returns dlogits (..., V): (softmax - onehot) / N on scored rows, 0 elsewhere."""
    shape = cache[2]
    rows, d = masked_cross_entropy_rows_backward(dloss, cache)
    dlogits = get_xp(rows).zeros((int(np.prod(shape[:-1])), shape[-1]), dtype=d.dtype)
    dlogits[rows] = d
    return dlogits.reshape(shape)
