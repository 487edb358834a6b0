"""Multi-head self-attention with a boolean mask, forward and backward.

    q, k, v = x Wq + bq, x Wk + bk, x Wv + bv, split into NH heads of width HS = C / NH
    A = softmax(q k^T / sqrt(HS), with A[i, j] = 0 wherever mask[i, j] is False)
    out = concat_heads(dropout(A) v) Wo + bo

Parameter keys follow Hugging Face: `{prefix}.self.query.weight`, ..., `{prefix}.output.dense.bias`
with prefix e.g. 'encoder.layer.3.attention'. The residual connection and the LayerNorm after it
belong to the encoder block (model.py), not here.

For incremental decoding, `past_kv` holds the keys and values of earlier positions (B, NH, Tp, HS);
the new ones are appended, and the cache's 'key' / 'value' entries are the full (B, NH, Tp + T, HS)
arrays to pass as past_kv at the next step.
"""
import math

import numpy as np

from smoothing import get_xp, softmax, softmax_backward

from .layers import dropout_backward, dropout_forward, linear_backward, linear_forward


def split_heads(x, num_heads):
    """(B, T, C) -> (B, NH, T, HS), a contiguous copy (batched matmuls run faster on it)."""
    B, T, C = x.shape
    xp = get_xp(x)
    return xp.ascontiguousarray(x.reshape(B, T, num_heads, C // num_heads).transpose(0, 2, 1, 3))


def merge_heads(x):
    """(B, NH, T, HS) -> (B, T, C), the inverse of split_heads."""
    B, NH, T, HS = x.shape
    xp = get_xp(x)
    return xp.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(B, T, NH * HS)


# OpenBLAS runs a product of at most about this many multiply-adds (M * K * N) on the calling
# thread alone; above it, every small per-head product is handed to its worker threads.
_SMALL_GEMM = 1 << 17


def bmm(a, b):
    """a @ b over matching leading axes, as one 3-D matmul.

    a: (..., M, K)   b: (..., K, N)   returns (..., M, N)
    NumPy runs a 4-D matmul whose operand is a transposed view about ten times slower than the same
    product with the leading axes merged (measured at B=8, NH=12, T=128), so they are merged here.
    With NumPy the rows of a are also cut into blocks small enough (block * K * N <= _SMALL_GEMM)
    that OpenBLAS computes each one on the calling thread: with two BLAS threads on a busy 2-core
    machine, waking the second thread for each of the B * NH small products cost up to 1000x the
    arithmetic (2.2 s instead of 2.5 ms for 96 products of (128, 64) @ (64, 128)).
    """
    lead, (M, K), N = a.shape[:-2], a.shape[-2:], b.shape[-1]
    a3, b3 = a.reshape(-1, M, K), b.reshape(-1, K, N)
    rows = M
    if get_xp(a) is np:
        while rows * K * N > _SMALL_GEMM and rows % 2 == 0:
            rows //= 2
    if rows < M:
        # (L, M / rows, rows, K) @ (L, 1, K, N): each block is one small single-threaded product
        out = (a3.reshape(a3.shape[0], M // rows, rows, K) @ b3[:, None]).reshape(-1, M, N)
    else:
        out = a3 @ b3
    return out.reshape(*lead, M, N)


def attention_forward(x, params, prefix, config, mask=None, rng=None, past_kv=None):
    """Multi-head self-attention of one encoder block (without its residual and LayerNorm).

    x: (B, T, C)   params: dict of arrays   prefix: e.g. 'encoder.layer.0.attention'
    config: BertConfig (num_attention_heads, attention_probs_dropout_prob)
    mask: (B, T, Tk) bool or None (all visible); Tk = Tp + T with past_kv, else T
    rng: Generator for attention dropout, or None (no dropout)
    past_kv: (key, value) of earlier positions, each (B, NH, Tp, HS), or None
    returns out (B, T, C) and the cache for attention_backward
    """
    xp = get_xp(x)
    NH = config.num_attention_heads
    p = prefix + ".self."
    q, q_cache = linear_forward(x, params[p + "query.weight"], params[p + "query.bias"])
    k, k_cache = linear_forward(x, params[p + "key.weight"], params[p + "key.bias"])
    v, v_cache = linear_forward(x, params[p + "value.weight"], params[p + "value.bias"])
    q *= 1.0 / math.sqrt(config.head_size)                # the 1/sqrt(HS) folded into q: (B, T, C) not (T, T)
    q, k, v = split_heads(q, NH), split_heads(k, NH), split_heads(v, NH)   # (B, NH, T, HS)
    past_len = 0
    if past_kv is not None:
        past_len = past_kv[0].shape[2]
        k = xp.concatenate([past_kv[0], k], axis=2)       # (B, NH, Tp + T, HS)
        v = xp.concatenate([past_kv[1], v], axis=2)
    scores = bmm(q, k.transpose(0, 1, 3, 2))                 # (B, NH, T, Tk)
    if mask is not None:
        # a masked score is -inf, so its probability is exactly 0 (an all-masked row gives all zeros)
        xp.copyto(scores, -xp.inf, where=~mask[:, None, :, :])
    probs = softmax(scores, axis=-1)                      # (B, NH, T, Tk)
    dropped, drop_cache = dropout_forward(probs, config.attention_probs_dropout_prob, rng)
    ctx = merge_heads(bmm(dropped, v))                       # (B, T, C)
    p = prefix + ".output.dense."
    out, o_cache = linear_forward(ctx, params[p + "weight"], params[p + "bias"])
    cache = {"prefix": prefix, "q": q, "key": k, "value": v, "probs": probs, "dropped": dropped,
             "drop": drop_cache, "q_lin": q_cache, "k_lin": k_cache, "v_lin": v_cache,
             "o_lin": o_cache, "past_len": past_len, "scale": 1.0 / math.sqrt(config.head_size)}
    return out, cache


def attention_backward(dout, cache):
    """Gradients of attention_forward.

    dout: (B, T, C)   returns dx (B, T, C) and a dict of parameter gradients keyed like params.
    Keys and values from past_kv are treated as constants (no gradient flows into them).
    """
    prefix, q, k, v = cache["prefix"], cache["q"], cache["key"], cache["value"]
    NH, past = q.shape[1], cache["past_len"]
    grads = {}
    p = prefix + ".output.dense."
    dctx, grads[p + "weight"], grads[p + "bias"] = linear_backward(dout, cache["o_lin"])
    dctx = split_heads(dctx, NH)                          # (B, NH, T, HS)
    # forward was: ctx = dropped @ v
    ddropped = bmm(dctx, v.transpose(0, 1, 3, 2))            # (B, NH, T, Tk)
    dv = bmm(cache["dropped"].transpose(0, 1, 3, 2), dctx)   # (B, NH, Tk, HS)
    dprobs = dropout_backward(ddropped, cache["drop"])
    # forward was: probs = softmax(scores); masked entries have probs = 0, so their gradient is 0
    dscores = softmax_backward(dprobs, cache["probs"], axis=-1)
    # forward was: scores = q @ k^T with q already scaled by 1/sqrt(HS)
    dq = bmm(dscores, k)                                    # (B, NH, T, HS)
    dq *= cache["scale"]
    dk = bmm(dscores.transpose(0, 1, 3, 2), q)               # (B, NH, Tk, HS)
    dk, dv = dk[:, :, past:], dv[:, :, past:]             # only the new positions came from x
    dx = None
    for name, d in (("query", dq), ("key", dk), ("value", dv)):
        p = f"{prefix}.self.{name}."
        dxi, grads[p + "weight"], grads[p + "bias"] = linear_backward(merge_heads(d),
                                                                      cache[name[0] + "_lin"])
        if dx is None:
            dx = dxi
        else:
            dx += dxi                                     # x fed all three projections
    return dx, grads
