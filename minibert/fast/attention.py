"""The tuned twin of minibert/attention.py: the same signatures, computed for speed on a CPU.

What it buys (bench/RESULTS.md): the three projections are one (C, 3C) product whose output, seen
as (B, T, 3, NH, HS), already holds every head; the per-head products read those strided views and
write the context straight into (B, T, NH, HS) order, so no head is ever copied out or back. The
1/sqrt(HS) of the scores is folded into q's weights. The scores of a few heads of one batch row, or
for short sequences of all heads of a few rows (about 0.5 MB), go through mask, softmax, dropout and
the product with v while still in cache, and these pieces are spread over the threads
(smoothing/threads.py); small per-head products are cut into blocks that OpenBLAS runs on the calling
thread. What it costs the reader: one buffer per piece holds d(dropped), then d(probs), then
d(scores), and the formula is spread over closures. Against the plain layer: float rounding only
(tests/test_fast_equals_plain.py).
"""
import math

import numpy as np

from smoothing import get_xp
from smoothing.threads import run_pieces

from ..layers import dropout_mask
from .layers import linear_backward, linear_forward


# OpenBLAS runs a product of up to 2^18 multiply-adds (M * K * N) on the calling thread alone;
# above, every small per-head product is handed to its worker threads. A head product is cut into
# blocks of at most that many, of at most _PANEL_COLS columns: on an AVX2 EPYC, one thread, the
# q k^T products of a BERT-base layer (B 8, T 128) took 29 ms in 8-row blocks of all 128 columns,
# 16 ms in (32, 64) blocks (OpenBLAS's kernel runs a 64-wide result faster than a 128-wide one).
_SMALL_GEMM = 1 << 18
_PANEL_COLS = 64
# Scores per attention piece (see _attention_pieces): 512 KiB of float32, an L2 cache's worth.
_PIECE_SCORES = 1 << 17


def _split_rows(a, rows):
    """(..., M, K) -> (..., M // rows, rows, K): a strided view of the same memory, never a copy."""
    *lead, M, K = a.shape
    *lead_strides, sM, sK = a.strides
    return np.lib.stride_tricks.as_strided(a, (*lead, M // rows, rows, K),
                                           (*lead_strides, rows * sM, sM, sK))


def _split_cols(a, cols):
    """(..., M, N) -> (..., N // cols, M, cols): a strided view of the same memory, never a copy."""
    *lead, M, N = a.shape
    *lead_strides, sM, sN = a.strides
    return np.lib.stride_tricks.as_strided(a, (*lead, N // cols, M, cols),
                                           (*lead_strides, cols * sN, sM, sN))


def matmul_rows(a, b, out):
    """out = a @ b over matching leading axes, any of the three possibly a strided view.

    a: (..., M, K)   b: (..., K, N)   out: (..., M, N)
    With NumPy the result is cut into blocks of at most _PANEL_COLS columns and of rows few enough
    (rows * K * cols <= _SMALL_GEMM) that OpenBLAS computes each one on the calling thread: waking a
    second BLAS thread for each small per-head product cost up to 1000x the arithmetic on a busy
    2-core machine, and the threads here already share the pieces between the cores.
    """
    xp = get_xp(a)
    (M, K), N = a.shape[-2:], b.shape[-1]
    if xp is not np:
        xp.matmul(a, b, out=out)
        return
    cols = _PANEL_COLS if N > _PANEL_COLS and N % _PANEL_COLS == 0 else N
    rows = M
    while rows * K * cols > _SMALL_GEMM and rows % 2 == 0:
        rows //= 2
    if rows < M:
        # (..., M / rows, 1, rows, K) @ (..., 1, K, N): views of the same memory, never copies
        a, out = _split_rows(a, rows)[..., None, :, :], _split_rows(out, rows)
        b = b[..., None, :, :]
    else:
        a = a[..., None, :, :]
    if cols < N:
        # column panels: (..., 1, rows, K) @ (..., N / cols, K, cols) -> (..., N / cols, rows, cols)
        b, out = _split_cols(b, cols), _split_cols(out, cols)
    else:
        b, out = b[..., None, :, :], out[..., None, :, :]
    xp.matmul(a, b, out=out)


def _attention_pieces(B, NH, T, Tk, xp):
    """(batch slice, head slice) pieces of about _PIECE_SCORES scores: a few heads of one batch row
    or, when one row's heads fit with room to spare (short sequences), all heads of a few rows."""
    if xp is not np:
        return [(slice(None), slice(None))]
    heads = max(1, min(NH, _PIECE_SCORES // max(1, T * Tk)))
    if heads < NH:
        return [(slice(b, b + 1), slice(h, min(h + heads, NH))) for b in range(B) for h in range(0, NH, heads)]
    rows = max(1, _PIECE_SCORES // max(1, NH * T * Tk))
    return [(slice(b, min(b + rows, B)), slice(None)) for b in range(0, B, rows)]


def _softmax_rows(s):
    """softmax along the last axis of scores s, in place; a row that is all -inf becomes all zeros.

    Same operations as smoothing.softmax (so the same numbers), on a piece that is in cache.
    """
    xp = get_xp(s)
    m = s.max(axis=-1, keepdims=True)                     # (..., 1)
    if not bool((m < xp.inf).all()):
        raise ValueError("attention scores contain NaN or +inf")
    m[m == -xp.inf] = 0.0                                 # all masked: exp(-inf - 0) = 0, no NaN
    s -= m
    xp.exp(s, out=s)
    z = s.sum(axis=-1, keepdims=True)                     # >= 1 unless the row is all masked
    z[z == 0.0] = xp.inf                                  # 1 / inf = 0 keeps a masked row at zero
    s *= xp.reciprocal(z, out=z)


def qkv_weights(params, p, scale):
    """The three projections side by side: W (C_in, 3C) and b (3C,), q's columns times `scale`."""
    Wq, Wk, Wv = (params[p + name + ".weight"] for name in ("query", "key", "value"))
    bq, bk, bv = (params[p + name + ".bias"] for name in ("query", "key", "value"))
    xp = get_xp(Wq)
    C_in, C = Wq.shape
    W = xp.empty((C_in, 3 * C), dtype=xp.result_type(Wq, Wk, Wv))
    b = xp.empty(3 * C, dtype=xp.result_type(bq, bk, bv))
    # the 1/sqrt(HS) of the scores folded into q: a (C_in, C) pass instead of one over (B, NH, T, T)
    xp.multiply(Wq, scale, out=W[:, :C])
    xp.multiply(bq, scale, out=b[:C])
    W[:, C:2 * C], W[:, 2 * C:] = Wk, Wv
    b[C:2 * C], b[2 * C:] = bk, bv
    return W, b


def attention_forward(x, params, prefix, config, mask=None, rng=None, past_kv=None, keep_cache=True):
    """Multi-head self-attention of one encoder block (without its residual and LayerNorm).

    x: (B, T, C)   params: dict of arrays   prefix: e.g. 'encoder.layer.0.attention'
    config: BertConfig (num_attention_heads, attention_probs_dropout_prob)
    mask: (B, T, Tk) bool or None (all visible); Tk = Tp + T with past_kv, else T
    rng: Generator for attention dropout, or None (no dropout)
    past_kv: (key, value) of earlier positions, each (B, NH, Tp, HS), or None
    keep_cache: False for inference: no probabilities are stored and the cache is None
    returns out (B, T, C) and the cache for attention_backward
    """
    xp = get_xp(x)
    B, T = x.shape[:2]
    NH, HS = config.num_attention_heads, config.head_size
    scale = 1.0 / math.sqrt(HS)
    W, b = qkv_weights(params, prefix + ".self.", scale)
    qkv, qkv_cache = linear_forward(x, W, b)              # (B, T, 3C), q already scaled
    q, k, v = qkv.reshape(B, T, 3, NH, HS).transpose(2, 0, 3, 1, 4)   # each (B, NH, T, HS), views
    past_len = 0
    if past_kv is not None:
        past_len = past_kv[0].shape[2]
        k = xp.concatenate([past_kv[0], k], axis=2)       # (B, NH, Tp + T, HS)
        v = xp.concatenate([past_kv[1], v], axis=2)
    Tk = k.shape[2]
    hidden = None if mask is None else ~mask[:, None]     # (B, 1, T, Tk), True = may not attend
    p_drop = config.attention_probs_dropout_prob
    drop = dropout_mask((B, NH, T, Tk), q.dtype, p_drop, rng) if rng is not None and p_drop > 0 else None
    probs = xp.empty((B, NH, T, Tk), q.dtype) if keep_cache else None
    dropped = probs if drop is None or not keep_cache else xp.empty_like(probs)
    ctx = xp.empty((B, T, NH, HS), q.dtype)
    ctx_heads = ctx.transpose(0, 2, 1, 3)                 # (B, NH, T, HS), a view
    pieces = _attention_pieces(B, NH, T, Tk, xp)

    def piece(i):
        bs, hs = pieces[i]
        s = probs[bs, hs] if keep_cache else xp.empty(q[bs, hs].shape[:-1] + (Tk,), q.dtype)
        matmul_rows(q[bs, hs], k[bs, hs].swapaxes(-1, -2), s)            # scores (., ., T, Tk)
        if hidden is not None:
            # a masked score is -inf, so its probability is exactly 0 (an all-masked row gives zeros)
            xp.copyto(s, -xp.inf, where=hidden[bs])
        _softmax_rows(s)
        d = s
        if drop is not None:
            d = dropped[bs, hs] if keep_cache else s
            xp.multiply(s, drop[bs, hs], out=d)
        matmul_rows(d, v[bs, hs], ctx_heads[bs, hs])

    run_pieces(piece, len(pieces))
    p = prefix + ".output.dense."
    out, o_cache = linear_forward(ctx.reshape(B, T, NH * HS), params[p + "weight"], params[p + "bias"])
    if not keep_cache:
        return out, None
    cache = {"prefix": prefix, "q": q, "key": k, "value": v, "probs": probs, "dropped": dropped,
             "drop": drop, "qkv_lin": qkv_cache, "o_lin": o_cache, "past_len": past_len,
             "scale": scale}
    return out, cache


def attention_backward(dout, cache):
    """Gradients of attention_forward.

    dout: (B, T, C)   returns dx (B, T, C) and a dict of parameter gradients keyed like params.
    Keys and values from past_kv are treated as constants (no gradient flows into them).
    """
    prefix, q, k, v = cache["prefix"], cache["q"], cache["key"], cache["value"]
    probs, dropped, drop, past = cache["probs"], cache["dropped"], cache["drop"], cache["past_len"]
    xp = get_xp(q)
    B, NH, T, HS = q.shape
    Tk = k.shape[2]
    grads = {}
    p = prefix + ".output.dense."
    dctx, grads[p + "weight"], grads[p + "bias"] = linear_backward(dout, cache["o_lin"])
    dctx = dctx.reshape(B, T, NH, HS).transpose(0, 2, 1, 3)          # (B, NH, T, HS), a view
    dqkv = xp.empty((B, T, 3, NH, HS), dtype=q.dtype)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)                        # each (B, NH, T, HS), views
    pieces = _attention_pieces(B, NH, T, Tk, xp)

    def piece(i):
        bs, hs = pieces[i]
        # forward was: ctx = dropped @ v
        ds = xp.empty(q[bs, hs].shape[:-1] + (Tk,), q.dtype)          # (., ., T, Tk)
        matmul_rows(dctx[bs, hs], v[bs, hs].swapaxes(-1, -2), ds)    # d dropped
        kv_shape = k[bs, hs].shape                                    # (., ., Tk, HS)
        dv_all = dv[bs, hs] if past == 0 else xp.empty(kv_shape, q.dtype)
        matmul_rows(dropped[bs, hs].swapaxes(-1, -2), dctx[bs, hs], dv_all)
        if drop is not None:
            ds *= drop[bs, hs]                                        # d probs
        # forward was: probs = softmax(scores); dscores = p * (dprobs - sum(dprobs * p)), masked p = 0
        pr = probs[bs, hs]
        ds *= pr
        ds -= pr * ds.sum(axis=-1, keepdims=True)
        # forward was: scores = q @ k^T with q already scaled by 1/sqrt(HS)
        matmul_rows(ds, k[bs, hs], dq[bs, hs])
        dk_all = dk[bs, hs] if past == 0 else xp.empty(kv_shape, q.dtype)
        matmul_rows(ds.swapaxes(-1, -2), q[bs, hs], dk_all)
        if past:
            dk[bs, hs], dv[bs, hs] = dk_all[:, :, past:], dv_all[:, :, past:]   # only new positions

    run_pieces(piece, len(pieces))
    # forward was: qkv = x W + b, W = [Wq * scale, Wk, Wv] side by side
    C = NH * HS
    dx, dW, db = linear_backward(dqkv.reshape(B, T, 3 * C), cache["qkv_lin"])   # dW (C_in, 3C)
    for n, name in enumerate(("query", "key", "value")):
        p = f"{prefix}.self.{name}."
        grads[p + "weight"] = xp.ascontiguousarray(dW[:, n * C:(n + 1) * C])    # (C_in, C)
        grads[p + "bias"] = db[n * C:(n + 1) * C].copy()
    # q's weights and bias were multiplied by the scale in the forward
    grads[prefix + ".self.query.weight"] *= cache["scale"]
    grads[prefix + ".self.query.bias"] *= cache["scale"]
    return dx, grads
