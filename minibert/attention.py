"""Multi-head self-attention with a boolean mask, forward and backward.

    q, k, v = x Wq + bq, x Wk + bk, x Wv + bv, split into NH heads of width HS = C / NH
    A = softmax(q k^T / sqrt(HS)), with A[i, j] = 0 wherever mask[i, j] is False
    out = concat_heads(dropout(A) v) Wo + bo

Parameter keys follow Hugging Face: `{prefix}.self.query.weight`, ..., `{prefix}.output.dense.bias`
with prefix e.g. 'encoder.layer.3.attention'. The residual connection and the LayerNorm after it
belong to the encoder block (model.py), not here.

For incremental decoding, `past_kv` holds the keys and values of earlier positions (B, NH, Tp, HS);
the new ones are appended, and the cache's 'key' / 'value' entries are the full (B, NH, Tp + T, HS)
arrays to pass as past_kv at the next step.

This is the plain layer. The tuned twin with the same signatures (one fused q/k/v product, pieces of
heads that stay in cache, spread over threads) is minibert/fast/attention.py; see ops.py.
"""
import math

from smoothing import get_xp, softmax, softmax_backward

from .layers import dropout_backward, dropout_forward, linear_backward, linear_forward


def split_heads(x, num_heads):
    """(B, T, C) -> (B, NH, T, HS)."""
    B, T, C = x.shape
    return x.reshape(B, T, num_heads, C // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, NH, T, HS) -> (B, T, C), the inverse of split_heads."""
    B, NH, T, HS = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, NH * HS)


def masked_softmax(scores, mask):
    """Softmax over the keys (last axis), counting only the keys the mask shows.

    scores: (B, NH, T, Tk)   mask: (B, T, Tk) bool (True = may attend) or None
    probs = exp(s - max) / sum(exp(s - max)) over visible keys; 0 at hidden keys (exp(-inf) = 0); a row
    with no visible key is all zeros (smoothing.softmax's convention). NaN or +inf raises ValueError.
    """
    if mask is not None:
        scores = get_xp(scores).where(mask[:, None], scores, -math.inf)
    return softmax(scores, axis=-1)


def attention_forward(x, params, prefix, config, mask=None, rng=None, past_kv=None, keep_cache=True):
    """Multi-head self-attention of one encoder block (without its residual and LayerNorm).

    x: (B, T, C)   params: dict of arrays   prefix: e.g. 'encoder.layer.0.attention'
    config: BertConfig (num_attention_heads, attention_probs_dropout_prob)
    mask: (B, T, Tk) bool or None (all visible); Tk = Tp + T with past_kv, else T
    rng: Generator for attention dropout, or None (no dropout)
    past_kv: (key, value) of earlier positions, each (B, NH, Tp, HS), or None
    keep_cache: False when no gradient is wanted: the cache is None
    returns out (B, T, C) and the cache for attention_backward
    """
    xp = get_xp(x)
    NH = config.num_attention_heads
    p = prefix + ".self."
    q, q_lin = linear_forward(x, params[p + "query.weight"], params[p + "query.bias"])  # (B, T, C)
    k, k_lin = linear_forward(x, params[p + "key.weight"], params[p + "key.bias"])
    v, v_lin = linear_forward(x, params[p + "value.weight"], params[p + "value.bias"])
    q, k, v = split_heads(q, NH), split_heads(k, NH), split_heads(v, NH)               # (B, NH, T, HS)
    past = 0 if past_kv is None else past_kv[0].shape[2]
    if past_kv is not None:
        k = xp.concatenate([past_kv[0], k], axis=2)                   # (B, NH, Tp + T, HS)
        v = xp.concatenate([past_kv[1], v], axis=2)
    scale = 1.0 / math.sqrt(config.head_size)
    scores = (q @ k.swapaxes(-1, -2)) * scale                         # (B, NH, T, Tk)
    probs = masked_softmax(scores, mask)
    dropped, drop = dropout_forward(probs, config.attention_probs_dropout_prob, rng)
    ctx = dropped @ v                                                 # (B, NH, T, HS)
    o = prefix + ".output.dense."
    out, o_lin = linear_forward(merge_heads(ctx), params[o + "weight"], params[o + "bias"])
    if not keep_cache:
        return out, None
    return out, {"prefix": prefix, "q": q, "key": k, "value": v, "probs": probs, "dropped": dropped,
                 "drop": drop, "scale": scale, "past_len": past,
                 "lin": {"query": q_lin, "key": k_lin, "value": v_lin, "output": o_lin}}


def attention_backward(dout, cache):
    """Gradients of attention_forward.

    dout: (B, T, C)   returns dx (B, T, C) and a dict of parameter gradients keyed like params.
    Keys and values from past_kv are treated as constants (no gradient flows into them).
    """
    c, prefix = cache, cache["prefix"]
    q, k, v, probs, scale = c["q"], c["key"], c["value"], c["probs"], c["scale"]
    grads = {}
    o = prefix + ".output.dense."
    dctx, grads[o + "weight"], grads[o + "bias"] = linear_backward(dout, c["lin"]["output"])
    dctx = split_heads(dctx, q.shape[1])                              # (B, NH, T, HS)
    # forward was: ctx = dropped @ v
    ddropped = dctx @ v.swapaxes(-1, -2)                              # (B, NH, T, Tk)
    dv = c["dropped"].swapaxes(-1, -2) @ dctx                         # (B, NH, Tk, HS)
    # forward was: dropped = dropout(probs)
    dprobs = dropout_backward(ddropped, c["drop"])
    # forward was: probs = softmax(scores);  dscores = probs * (dprobs - sum_j dprobs * probs)
    dscores = softmax_backward(dprobs, probs, axis=-1)
    # forward was: scores = q @ k^T * scale
    dq = (dscores @ k) * scale                                        # (B, NH, T, HS)
    dk = (dscores.swapaxes(-1, -2) @ q) * scale                       # (B, NH, Tk, HS)
    # only the new positions came from x; the past keys and values are constants
    past = c["past_len"]
    dk, dv = dk[:, :, past:], dv[:, :, past:]
    dx = 0.0
    for name, d in (("query", dq), ("key", dk), ("value", dv)):
        p = f"{prefix}.self.{name}."
        dxi, grads[p + "weight"], grads[p + "bias"] = linear_backward(merge_heads(d), c["lin"][name])
        dx = dx + dxi                                                 # x feeds all three projections
    return dx, grads
