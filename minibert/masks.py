"""Attention masks: which key each query may look at.

Every builder returns a boolean array of shape (B, T, T) with mask[b, i, j] = True when query i of
sequence b may attend to key j. `bert_forward` takes such an array (or a (B, T) padding mask, which it
turns into one with `padding_mask`). Padding keys are never visible; padding queries still get a row
(they see the real keys), so no softmax row is empty unless a whole sequence is padding.
"""
import numpy as np

from smoothing import get_xp


def _as_real(attention_mask, name="attention_mask"):
    """(B, T) 0/1 or boolean array -> (B, T) bool, True at real tokens."""
    xp = get_xp(attention_mask)
    m = xp.asarray(attention_mask)
    if m.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T), got shape {tuple(m.shape)}")
    if m.dtype == bool:
        return m
    if m.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be boolean or 0/1 numbers, got dtype {m.dtype}")
    if m.size and not bool(((m == 0) | (m == 1)).all()):
        raise ValueError(f"{name} must hold only 0 and 1, got values outside {{0, 1}}")
    return m != 0


def padding_mask(attention_mask):
    """Every query sees every real key.

    attention_mask: (B, T) 1 (or True) at real tokens, 0 at padding   returns (B, T, T) bool
    """
    real = _as_real(attention_mask)
    B, T = real.shape
    return get_xp(real).broadcast_to(real[:, None, :], (B, T, T)).copy()


def causal_mask(attention_mask):
    """Left-to-right language model: query i sees keys j <= i that are real.

    attention_mask: (B, T) 1 at real tokens, 0 at padding   returns (B, T, T) bool
    """
    real = _as_real(attention_mask)
    xp = get_xp(real)
    T = real.shape[1]
    lower = xp.tril(xp.ones((T, T), dtype=bool))          # (T, T), [i, j] = j <= i
    return lower[None, :, :] & real[:, None, :]


def seq2seq_mask(segment_ids, attention_mask=None):
    """UniLM mask: the source (segment 0) sees the whole source; target token m sees the source and
    targets 1..m.

    segment_ids: (B, T) 0 on the source, 1 on the target   attention_mask: (B, T) or None (all real)
    returns (B, T, T) bool: query i sees key j iff cumsum(segment)[j] <= cumsum(segment)[i] and j is real
    """
    xp = get_xp(segment_ids)
    seg = xp.asarray(segment_ids)
    if seg.ndim != 2:
        raise ValueError(f"segment_ids must have shape (B, T), got shape {tuple(seg.shape)}")
    if seg.dtype.kind not in "iub":
        raise ValueError(f"segment_ids must be integers, got dtype {seg.dtype}")
    if seg.size and not bool(((seg == 0) | (seg == 1)).all()):
        raise ValueError("segment_ids must hold only 0 (source) and 1 (target) for a seq2seq mask")
    rank = seg.astype(np.int64).cumsum(axis=1)            # 0 on the source, 1, 2, ... on the target
    mask = rank[:, None, :] <= rank[:, :, None]           # (B, T, T), key rank <= query rank
    if attention_mask is not None:
        real = _as_real(attention_mask)
        if real.shape != seg.shape:
            raise ValueError(f"attention_mask shape {tuple(real.shape)} must match segment_ids "
                             f"shape {tuple(seg.shape)}")
        mask &= real[:, None, :]
    return mask
