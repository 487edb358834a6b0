"""The BERT encoder: embeddings, post-LN encoder blocks, and the whole stack, forward and backward.

    e = E_tok[token] + E_seg[segment] + E_pos[position];  x = dropout(LayerNorm(e))
    per block (post-LN):  x = LN(x + dropout(attention(x)));  x = LN(x + dropout(W2 gelu(W1 x)))

Parameters are a flat dict keyed by Hugging Face names without the 'bert.' prefix
('embeddings.word_embeddings.weight', 'encoder.layer.0.attention.self.query.weight', ...), with
linear weights stored (C_in, C_out) for `x @ W`. Dropout is active only when an rng is passed.
"""
import numpy as np

from smoothing import get_xp

from .attention import attention_backward, attention_forward
from .layers import (dropout_backward, dropout_forward, gelu_backward, gelu_forward,
                     layernorm_backward, layernorm_forward, linear_backward, linear_forward)
from .masks import padding_mask


def encoder_param_shapes(config):
    """{name: shape} of every parameter bert_forward uses, in checkpoint order."""
    C, F = config.hidden_size, config.intermediate_size
    shapes = {"embeddings.word_embeddings.weight": (config.vocab_size, C),
              "embeddings.position_embeddings.weight": (config.max_position_embeddings, C),
              "embeddings.token_type_embeddings.weight": (config.type_vocab_size, C),
              "embeddings.LayerNorm.weight": (C,), "embeddings.LayerNorm.bias": (C,)}
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[p + f"attention.self.{name}.weight"] = (C, C)
            shapes[p + f"attention.self.{name}.bias"] = (C,)
        shapes.update({p + "attention.output.dense.weight": (C, C),
                       p + "attention.output.dense.bias": (C,),
                       p + "attention.output.LayerNorm.weight": (C,),
                       p + "attention.output.LayerNorm.bias": (C,),
                       p + "intermediate.dense.weight": (C, F), p + "intermediate.dense.bias": (F,),
                       p + "output.dense.weight": (F, C), p + "output.dense.bias": (C,),
                       p + "output.LayerNorm.weight": (C,), p + "output.LayerNorm.bias": (C,)})
    return shapes


def check_params(params, shapes):
    """ValueError naming the first missing or wrongly shaped parameter."""
    for name, shape in shapes.items():
        if name not in params:
            raise ValueError(f"params is missing {name!r} (expected shape {shape})")
        if tuple(params[name].shape) != tuple(shape):
            raise ValueError(f"params[{name!r}] has shape {tuple(params[name].shape)}, "
                             f"expected {tuple(shape)}")


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


def init_params(config, rng, dtype=np.float32, heads=True):
    """Random parameters like Hugging Face's: N(0, initializer_range) weights, zero biases, unit LN.

    heads: also make the pooler and the MLM head (whose decoder is tied to the word embeddings)
    """
    shapes = dict(encoder_param_shapes(config))
    if heads:
        from .heads import head_param_shapes
        shapes.update(head_param_shapes(config))
    params = {}
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):
            params[name] = np.ones(shape, dtype)
        elif len(shape) == 1:
            params[name] = np.zeros(shape, dtype)
        else:
            params[name] = (rng.standard_normal(shape) * config.initializer_range).astype(dtype)
    return params


def embeddings_forward(params, config, token_ids, segment_ids, position_offset=0, rng=None,
                       keep_cache=True):
    """Token + segment + position embeddings, then LayerNorm and dropout.

    token_ids, segment_ids: (B, T) ints (already checked)   position_offset: first position (for
    decoding with cached keys)   keep_cache: False for inference (the cache is None)
    returns (B, T, C)
    """
    T = token_ids.shape[1]
    e = params["embeddings.word_embeddings.weight"][token_ids]          # (B, T, C), a gather
    e += params["embeddings.token_type_embeddings.weight"][segment_ids]
    e += params["embeddings.position_embeddings.weight"][position_offset:position_offset + T]
    x, ln = layernorm_forward(e, params["embeddings.LayerNorm.weight"],
                              params["embeddings.LayerNorm.bias"], config.layer_norm_eps,
                              inplace=not keep_cache)
    x, drop = dropout_forward(x, config.hidden_dropout_prob, rng)
    if not keep_cache:
        return x, None
    return x, (token_ids, segment_ids, position_offset, ln, drop, config)


def scatter_add_rows(table, ids, rows):
    """table[ids[n]] += rows[n] for every n, repeated ids adding up in order; in place.

    table: (V, C)   ids: (N,) ints   rows: (N, C)
    With NumPy: one sort, one add.reduceat over each id's run of rows, one write per distinct id
    (the same sums, in the same order, as add.at, which goes row by row).
    """
    xp = get_xp(table)
    if xp is not np:
        xp.add.at(table, ids, rows)
        return table
    order = np.argsort(ids, kind="stable")                # equal ids keep their order
    ids_sorted = ids[order]
    starts = np.flatnonzero(np.concatenate([[True], ids_sorted[1:] != ids_sorted[:-1]]))
    if starts.size:
        table[ids_sorted[starts]] += np.add.reduceat(rows[order], starts, axis=0)
    return table


def embeddings_backward(dout, cache, dword=None):
    """Returns a dict with the gradients of the three embedding tables and the LayerNorm.

    dword: (V, C) gradient of the word embeddings from elsewhere (the tied MLM decoder), which the
    lookup's gradient is added into, in place; None starts from zeros
    """
    token_ids, segment_ids, offset, ln, drop, config = cache
    xp = get_xp(dout)
    C, T = dout.shape[-1], dout.shape[1]
    de, dgamma, dbeta = layernorm_backward(dropout_backward(dout, drop), ln)
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
    scatter_add_rows(dtok, ids, de2_tok)
    dseg = scatter_add_rows(xp.zeros((config.type_vocab_size, C), de.dtype), segment_ids.reshape(-1), de2)
    dpos = xp.zeros((config.max_position_embeddings, C), de.dtype)
    dpos[offset:offset + T] = de.sum(axis=0)
    return {"embeddings.word_embeddings.weight": dtok,
            "embeddings.token_type_embeddings.weight": dseg,
            "embeddings.position_embeddings.weight": dpos,
            "embeddings.LayerNorm.weight": dgamma, "embeddings.LayerNorm.bias": dbeta}


def encoder_layer_forward(x, params, i, config, mask=None, rng=None, past_kv=None, keep_cache=True):
    """Encoder block i (post-LN): x = LN(x + drop(attn(x))); x = LN(x + drop(W2 gelu(W1 x))).

    x: (B, T, C)   mask: (B, T, Tk) bool or None   past_kv: see attention_forward
    keep_cache: False for inference: intermediates are overwritten in place and the cache is None
    returns (B, T, C) and the cache; cache['attention']['key'/'value'] are this block's keys/values
    """
    p, eps, inplace = f"encoder.layer.{i}.", config.layer_norm_eps, not keep_cache
    a, attn = attention_forward(x, params, p + "attention", config, mask, rng, past_kv, keep_cache)
    a, drop1 = dropout_forward(a, config.hidden_dropout_prob, rng)
    a += x                                                            # residual, in place
    h, ln1 = layernorm_forward(a, params[p + "attention.output.LayerNorm.weight"],
                               params[p + "attention.output.LayerNorm.bias"], eps, inplace)
    f, lin1 = linear_forward(h, params[p + "intermediate.dense.weight"],
                             params[p + "intermediate.dense.bias"])  # (B, T, F)
    g, act = gelu_forward(f, config.gelu_kind, inplace)
    o, lin2 = linear_forward(g, params[p + "output.dense.weight"], params[p + "output.dense.bias"])
    o, drop2 = dropout_forward(o, config.hidden_dropout_prob, rng)
    o += h
    out, ln2 = layernorm_forward(o, params[p + "output.LayerNorm.weight"],
                                 params[p + "output.LayerNorm.bias"], eps, inplace)
    if not keep_cache:
        return out, None
    return out, {"i": i, "attention": attn, "drop1": drop1, "ln1": ln1, "lin1": lin1,
                 "act": act, "lin2": lin2, "drop2": drop2, "ln2": ln2}


def encoder_layer_backward(dout, cache):
    """Returns dx (B, T, C) and the block's parameter gradients (Hugging Face keys)."""
    p = f"encoder.layer.{cache['i']}."
    g = {}
    # forward was: out = LN2(h + drop(W2 gelu(W1 h + b1) + b2))
    do, g[p + "output.LayerNorm.weight"], g[p + "output.LayerNorm.bias"] = \
        layernorm_backward(dout, cache["ln2"])
    dg, g[p + "output.dense.weight"], g[p + "output.dense.bias"] = \
        linear_backward(dropout_backward(do, cache["drop2"]), cache["lin2"])
    df = gelu_backward(dg, cache["act"])
    dh, g[p + "intermediate.dense.weight"], g[p + "intermediate.dense.bias"] = \
        linear_backward(df, cache["lin1"])
    dh += do                                                          # the residual path
    # forward was: h = LN1(x + drop(attention(x)))
    da, g[p + "attention.output.LayerNorm.weight"], g[p + "attention.output.LayerNorm.bias"] = \
        layernorm_backward(dh, cache["ln1"])
    dx, attn_grads = attention_backward(dropout_backward(da, cache["drop1"]), cache["attention"])
    dx += da
    g.update(attn_grads)
    return dx, g


def bert_forward(params, config, token_ids, segment_ids=None, mask=None, rng=None, keep_cache=True):
    """The BERT encoder: final hidden states of every position.

    params: dict (see encoder_param_shapes)   config: BertConfig
    token_ids: (B, T) ints in [0, vocab_size)   segment_ids: (B, T) ints in [0, type_vocab_size), or None (all 0)
    mask: None, a (B, T) padding mask (1 = real token) or a (B, T, T) bool mask (True = may attend)
    rng: Generator for dropout, or None (evaluation: no dropout)
    keep_cache: False when no gradient is wanted (as torch.no_grad): the cache is None, and the
    layers work in place instead of keeping every intermediate
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
    x, emb = embeddings_forward(params, config, token_ids, segment_ids, 0, rng, keep_cache)
    layers = []
    for i in range(config.num_hidden_layers):
        x, c = encoder_layer_forward(x, params, i, config, mask, rng, keep_cache=keep_cache)
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
