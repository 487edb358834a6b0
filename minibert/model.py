"""The BERT encoder: embeddings, post-LN encoder blocks, and the whole stack, forward and backward.

    e = E_tok[token] + E_seg[segment] + E_pos[position];  x = dropout(LayerNorm(e))
    per block (post-LN):  x = LN(x + dropout(attention(x)));  x = LN(x + dropout(W2 gelu(W1 x)))

Parameters are a flat dict keyed by Hugging Face names without the 'bert.' prefix
('embeddings.word_embeddings.weight', 'encoder.layer.0.attention.self.query.weight', ...), with
linear weights stored (C_in, C_out) for `x @ W` (the table of names and shapes: params.py).
Dropout is active only when an rng is passed. `ops` chooses the plain layers or their tuned twins
(ops.py); a backward pass uses the table its forward pass was given.
"""
import numpy as np

from smoothing import get_xp

from .layers import dropout_backward, dropout_forward
from .masks import padding_mask
from .ops import PLAIN
from .params import check_params, encoder_param_shapes, init_params  # noqa: F401 (init_params: re-exported)


def _check_ids(ids, name, upper, shape=None):
    """An integer (B, T) array with 0 <= ids < upper, or ValueError."""
    xp = get_xp(ids)
    ids = xp.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {ids.dtype}")
    if ids.ndim != 2 or (shape is not None and ids.shape != shape):
        want = "(B, T)" if shape is None else str(shape)
        raise ValueError(f"{name} must have shape {want}, got {tuple(ids.shape)}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= upper):
        raise ValueError(f"{name} must lie in [0, {upper}), got values in "
                         f"[{int(ids.min())}, {int(ids.max())}]")
    return ids


def as_attention_mask(mask, B, T, Tk=None):
    """None, a (B, T) padding mask or a (B, T, Tk) boolean mask -> (B, T, Tk) bool or None."""
    Tk = T if Tk is None else Tk
    if mask is None:
        return None
    xp = get_xp(mask)
    mask = xp.asarray(mask)
    if mask.ndim == 2 and mask.shape == (B, Tk):
        return padding_mask(mask)[:, -T:, :] if Tk != T else padding_mask(mask)
    if mask.ndim == 3 and mask.shape == (B, T, Tk):
        if mask.dtype != bool:
            raise ValueError(f"a (B, T, T) mask must be boolean (True = may attend), got {mask.dtype}")
        return mask
    raise ValueError(f"mask must have shape (B, Tk) = {(B, Tk)} (padding) or (B, T, Tk) = "
                     f"{(B, T, Tk)} (boolean), got {tuple(mask.shape)}")


def embeddings_forward(params, config, token_ids, segment_ids, position_offset=0, rng=None,
                       keep_cache=True, ops=PLAIN):
    """Token + segment + position embeddings, then LayerNorm and dropout.

    token_ids, segment_ids: (B, T) ints (already checked)   position_offset: first position (for
    decoding with cached keys)   keep_cache: False for inference (the cache is None)
    ops: the ops table (ops.py)   returns (B, T, C)
    """
    T = token_ids.shape[1]
    e = params["embeddings.word_embeddings.weight"][token_ids]          # (B, T, C), a gather
    e += params["embeddings.token_type_embeddings.weight"][segment_ids]
    e += params["embeddings.position_embeddings.weight"][position_offset:position_offset + T]
    x, ln = ops.layernorm_forward(e, params["embeddings.LayerNorm.weight"],
                                  params["embeddings.LayerNorm.bias"], config.layer_norm_eps,
                                  inplace=not keep_cache)
    x, drop = dropout_forward(x, config.hidden_dropout_prob, rng)
    if not keep_cache:
        return x, None
    return x, (token_ids, segment_ids, position_offset, ln, drop, config, ops)


def embeddings_backward(dout, cache, dword=None):
    """Returns a dict with the gradients of the three embedding tables and the LayerNorm.

    dword: (V, C) gradient of the word embeddings from elsewhere (the tied MLM decoder), which the
    lookup's gradient is added into, in place; None starts from zeros
    """
    token_ids, segment_ids, offset, ln, drop, config, ops = cache
    xp = get_xp(dout)
    C, T = dout.shape[-1], dout.shape[1]
    de, dgamma, dbeta = ops.layernorm_backward(dropout_backward(dout, drop), ln)
    de2 = de.reshape(-1, C)
    ids = token_ids.reshape(-1)
    # forward was a gather E[ids]; its gradient scatters rows back, adding where an id repeats
    dtok = xp.zeros((config.vocab_size, C), de.dtype) if dword is None else dword
    if config.pad_token_id is not None:
        # Hugging Face's embedding has padding_idx = pad_token_id: that row never learns from the lookup
        keep = ids != config.pad_token_id
        ids, de2_tok = ids[keep], de2[keep]
    else:
        de2_tok = de2
    ops.scatter_add_rows(dtok, ids, de2_tok)
    dseg = ops.scatter_add_rows(xp.zeros((config.type_vocab_size, C), de.dtype), segment_ids.reshape(-1), de2)
    dpos = xp.zeros((config.max_position_embeddings, C), de.dtype)
    dpos[offset:offset + T] = de.sum(axis=0)
    return {"embeddings.word_embeddings.weight": dtok,
            "embeddings.token_type_embeddings.weight": dseg,
            "embeddings.position_embeddings.weight": dpos,
            "embeddings.LayerNorm.weight": dgamma, "embeddings.LayerNorm.bias": dbeta}


def encoder_layer_forward(x, params, i, config, mask=None, rng=None, past_kv=None, keep_cache=True,
                          ops=PLAIN):
    """Encoder block i (post-LN): x = LN(x + drop(attn(x))); x = LN(x + drop(W2 gelu(W1 x))).

    x: (B, T, C)   mask: (B, T, Tk) bool or None   past_kv: see attention_forward
    keep_cache: False for inference: intermediates are overwritten in place and the cache is None
    ops: the ops table (ops.py)
    returns (B, T, C) and the cache; cache['attention']['key'/'value'] are this block's keys/values
    """
    p, eps, inplace = f"encoder.layer.{i}.", config.layer_norm_eps, not keep_cache
    a, attn = ops.attention_forward(x, params, p + "attention", config, mask, rng, past_kv, keep_cache)
    a, drop1 = dropout_forward(a, config.hidden_dropout_prob, rng)
    a += x                                                            # residual, in place
    h, ln1 = ops.layernorm_forward(a, params[p + "attention.output.LayerNorm.weight"],
                                   params[p + "attention.output.LayerNorm.bias"], eps, inplace)
    f, lin1 = ops.linear_forward(h, params[p + "intermediate.dense.weight"],
                                 params[p + "intermediate.dense.bias"])  # (B, T, F)
    g, act = ops.gelu_forward(f, config.gelu_kind, inplace)
    o, lin2 = ops.linear_forward(g, params[p + "output.dense.weight"], params[p + "output.dense.bias"])
    o, drop2 = dropout_forward(o, config.hidden_dropout_prob, rng)
    o += h
    out, ln2 = ops.layernorm_forward(o, params[p + "output.LayerNorm.weight"],
                                     params[p + "output.LayerNorm.bias"], eps, inplace)
    if not keep_cache:
        return out, None
    return out, {"i": i, "ops": ops, "attention": attn, "drop1": drop1, "ln1": ln1, "lin1": lin1,
                 "act": act, "lin2": lin2, "drop2": drop2, "ln2": ln2}


def encoder_layer_backward(dout, cache):
    """Returns dx (B, T, C) and the block's parameter gradients (Hugging Face keys)."""
    p, ops = f"encoder.layer.{cache['i']}.", cache["ops"]
    g = {}
    # forward was: out = LN2(h + drop(W2 gelu(W1 h + b1) + b2))
    do, g[p + "output.LayerNorm.weight"], g[p + "output.LayerNorm.bias"] = \
        ops.layernorm_backward(dout, cache["ln2"])
    dg, g[p + "output.dense.weight"], g[p + "output.dense.bias"] = \
        ops.linear_backward(dropout_backward(do, cache["drop2"]), cache["lin2"])
    df = ops.gelu_backward(dg, cache["act"])
    dh, g[p + "intermediate.dense.weight"], g[p + "intermediate.dense.bias"] = \
        ops.linear_backward(df, cache["lin1"])
    dh += do                                                          # the residual path
    # forward was: h = LN1(x + drop(attention(x)))
    da, g[p + "attention.output.LayerNorm.weight"], g[p + "attention.output.LayerNorm.bias"] = \
        ops.layernorm_backward(dh, cache["ln1"])
    dx, attn_grads = ops.attention_backward(dropout_backward(da, cache["drop1"]), cache["attention"])
    dx += da
    g.update(attn_grads)
    return dx, g


def bert_forward(params, config, token_ids, segment_ids=None, mask=None, rng=None, keep_cache=True,
                 ops=PLAIN):
    """The BERT encoder: final hidden states of every position.

    params: dict (see encoder_param_shapes)   config: BertConfig
    token_ids: (B, T) ints in [0, vocab_size)   segment_ids: (B, T) ints in [0, type_vocab_size), or None (all 0)
    mask: None, a (B, T) padding mask (1 = real token) or a (B, T, T) bool mask (True = may attend)
    rng: Generator for dropout, or None (evaluation: no dropout)
    keep_cache: False when no gradient is wanted (as torch.no_grad): the cache is None, and the
    layers work in place instead of keeping every intermediate
    ops: the ops table: PLAIN (default) or minibert.fast.OPS, the tuned twins (see ops.py)
    returns hidden (B, T, C) and the cache for bert_backward
    """
    check_params(params, encoder_param_shapes(config))
    token_ids = _check_ids(token_ids, "token_ids", config.vocab_size)
    B, T = token_ids.shape
    if T > config.max_position_embeddings:
        raise ValueError(f"token_ids length {T} exceeds max_position_embeddings "
                         f"{config.max_position_embeddings}")
    xp = get_xp(token_ids)
    if segment_ids is None:
        segment_ids = xp.zeros((B, T), dtype=np.int64)
    segment_ids = _check_ids(segment_ids, "segment_ids", config.type_vocab_size, (B, T))
    mask = as_attention_mask(mask, B, T)
    x, emb = embeddings_forward(params, config, token_ids, segment_ids, 0, rng, keep_cache, ops)
    layers = []
    for i in range(config.num_hidden_layers):
        x, c = encoder_layer_forward(x, params, i, config, mask, rng, keep_cache=keep_cache, ops=ops)
        layers.append(c)
    return x, ({"embeddings": emb, "layers": layers} if keep_cache else None)


def bert_backward(dhidden, cache, dword=None):
    """Gradients of every parameter bert_forward used, from dL/dhidden (B, T, C).

    dword: (V, C) gradient of the word embeddings from the tied MLM decoder, or None; the lookup's
    gradient is added into it (in place), so the returned word-embedding gradient is their sum
    returns a dict with the same keys and shapes as encoder_param_shapes(config)
    """
    grads = {}
    d = dhidden
    for c in reversed(cache["layers"]):
        d, g = encoder_layer_backward(d, c)
        grads.update(g)
    grads.update(embeddings_backward(d, cache["embeddings"], dword))
    return grads
