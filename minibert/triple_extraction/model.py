"""The triple extractor: BERT, a subject pointer head, and per-predicate object pointers after a
conditional LayerNorm that is conditioned on the subject.

    H_pre = the last block's output before its final LayerNorm               (B, T, C)
    H_out = LN(H_pre) with the checkpoint's final gamma, beta                 (the usual BERT output)
    p_s   = sigmoid(H_out W_s + b_s) ** 2                                     (B, T, 2) subject start/end
    v     = [H_pre[start]; H_pre[end]]                                        (B, 2C) the subject
    p_o   = sigmoid(CLN(H_pre, v) W_o + b_o) ** 4                             (B, T, P, 2) object start/end
The conditional LayerNorm replaces the final LayerNorm on the object branch; it starts with gamma = 1,
beta = 0 and W_g = W_b = 0. loss = BCE(p_s) + BCE(p_o), both masked at padding (see ops.py).
"""
import numpy as np

from ..layers import dropout_backward, dropout_forward, linear_backward, linear_forward
from ..model import (as_attention_mask, embeddings_backward, embeddings_forward, encoder_layer_backward,
                     encoder_layer_forward, init_params)
from ..ops import PLAIN
from .ops import (conditional_layernorm_backward, conditional_layernorm_forward, powered_bce_backward,
                  powered_bce_forward, powered_sigmoid_forward, subject_vector_backward,
                  subject_vector_forward)

SUBJECT_POWER, OBJECT_POWER = 2, 4


def init_extractor_params(config, n_predicates, rng, dtype=np.float32):
    """BERT encoder parameters plus the heads: subject (C, 2), cln.* (W_g, W_b zero), object (C, 2P)."""
    C = config.hidden_size
    params = init_params(config, rng, dtype, heads=False)
    r = config.initializer_range
    params.update({
        "subject.weight": (rng.standard_normal((C, 2)) * r).astype(dtype),
        "subject.bias": np.zeros(2, dtype),
        "cln.weight": np.ones(C, dtype), "cln.bias": np.zeros(C, dtype),
        "cln.gamma_dense.weight": np.zeros((2 * C, C), dtype),     # bias-free, zero: CLN starts as LN
        "cln.beta_dense.weight": np.zeros((2 * C, C), dtype),
        "object.weight": (rng.standard_normal((C, 2 * n_predicates)) * r).astype(dtype),
        "object.bias": np.zeros(2 * n_predicates, dtype)})
    return params


def last_block_pre_ln_forward(x, params, i, config, mask=None, rng=None, ops=PLAIN):
    """Encoder block i up to, not including, its output LayerNorm: h + drop(W2 gelu(W1 h)), h = LN1(x + attn).

    x: (B, T, C)   ops: the ops table (minibert/ops.py)
    returns H_pre (B, T, C) and the cache. Same code as encoder_layer_forward without ln2.
    """
    p = f"encoder.layer.{i}."
    a, attn = ops.attention_forward(x, params, p + "attention", config, mask, rng)
    a, drop1 = dropout_forward(a, config.hidden_dropout_prob, rng)
    a += x
    h, ln1 = ops.layernorm_forward(a, params[p + "attention.output.LayerNorm.weight"],
                                   params[p + "attention.output.LayerNorm.bias"], config.layer_norm_eps)
    f, lin1 = ops.linear_forward(h, params[p + "intermediate.dense.weight"], params[p + "intermediate.dense.bias"])
    g, act = ops.gelu_forward(f, config.gelu_kind)
    o, lin2 = ops.linear_forward(g, params[p + "output.dense.weight"], params[p + "output.dense.bias"])
    o, drop2 = dropout_forward(o, config.hidden_dropout_prob, rng)
    o += h
    return o, (p, attn, drop1, ln1, lin1, act, lin2, drop2, ops)


def last_block_pre_ln_backward(dout, cache):
    """Returns dx (B, T, C) and the block's gradients except its output LayerNorm."""
    p, attn, drop1, ln1, lin1, act, lin2, drop2, ops = cache
    g = {}
    # forward was: o = h + drop(W2 gelu(W1 h + b1) + b2)
    dg, g[p + "output.dense.weight"], g[p + "output.dense.bias"] = \
        ops.linear_backward(dropout_backward(dout, drop2), lin2)
    dh, g[p + "intermediate.dense.weight"], g[p + "intermediate.dense.bias"] = \
        ops.linear_backward(ops.gelu_backward(dg, act), lin1)
    dh += dout
    da, g[p + "attention.output.LayerNorm.weight"], g[p + "attention.output.LayerNorm.bias"] = \
        ops.layernorm_backward(dh, ln1)
    dx, attn_grads = ops.attention_backward(dropout_backward(da, drop1), attn)
    dx += da
    g.update(attn_grads)
    return dx, g


def encode(params, config, ids, mask, rng=None, ops=PLAIN):
    """H_pre and H_out of the encoder.   ids, mask: (B, T)   returns H_pre, H_out (B, T, C), cache"""
    B, T = ids.shape
    if ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= config.vocab_size:
        raise ValueError(f"ids must be ints in [0, {config.vocab_size}), got dtype {ids.dtype}, "
                         f"range [{ids.min()}, {ids.max()}]")
    if T > config.max_position_embeddings:
        raise ValueError(f"ids length {T} exceeds max_position_embeddings {config.max_position_embeddings}")
    attn_mask = as_attention_mask(mask, B, T)
    x, emb = embeddings_forward(params, config, ids, np.zeros_like(ids), 0, rng, ops=ops)
    layers = []
    N = config.num_hidden_layers
    for i in range(N - 1):
        x, c = encoder_layer_forward(x, params, i, config, attn_mask, rng, ops=ops)
        layers.append(c)
    h_pre, last = last_block_pre_ln_forward(x, params, N - 1, config, attn_mask, rng, ops)
    p = f"encoder.layer.{N - 1}.output.LayerNorm."
    h_out, ln = ops.layernorm_forward(h_pre, params[p + "weight"], params[p + "bias"], config.layer_norm_eps)
    return h_pre, h_out, (emb, layers, last, ln, N, ops)


def encode_backward(dh_pre, dh_out, cache):
    """Encoder gradients from dL/dH_pre and dL/dH_out (both (B, T, C))."""
    emb, layers, last, ln, N, ops = cache
    grads = {}
    p = f"encoder.layer.{N - 1}.output.LayerNorm."
    d, grads[p + "weight"], grads[p + "bias"] = ops.layernorm_backward(dh_out, ln)
    d += dh_pre                                           # H_pre feeds both LN and the object branch
    d, g = last_block_pre_ln_backward(d, last)
    grads.update(g)
    for c in reversed(layers):
        d, g = encoder_layer_backward(d, c)
        grads.update(g)
    grads.update(embeddings_backward(d, emb))
    return grads


def object_logits_forward(params, config, h_pre, v):
    """Object logits (B, T, P, 2) of the subjects v (B, 2C) over H_pre (B, T, C)."""
    c, cln = conditional_layernorm_forward(h_pre, v, params["cln.weight"], params["cln.bias"],
                                           params["cln.gamma_dense.weight"], params["cln.beta_dense.weight"],
                                           config.layer_norm_eps)
    z, lin = linear_forward(c, params["object.weight"], params["object.bias"])
    B, T, P2 = z.shape
    return z.reshape(B, T, P2 // 2, 2), (cln, lin)


def loss_forward(params, config, batch, rng=None, ops=PLAIN):
    """Training loss L_s + L_o of one batch (see data.training_batch) and the cache for loss_backward.

    ops: the ops table of the encoder (minibert/ops.py): PLAIN, or minibert.fast.OPS (the tuned twins)
    """
    h_pre, h_out, enc = encode(params, config, batch["ids"], batch["mask"], rng, ops)
    zs, lin_s = linear_forward(h_out, params["subject.weight"], params["subject.bias"])     # (B, T, 2)
    v, gather = subject_vector_forward(h_pre, batch["starts"], batch["ends"])               # (B, 2C)
    zo, obj = object_logits_forward(params, config, h_pre, v)                               # (B, T, P, 2)
    dt = h_pre.dtype
    ls, bce_s = powered_bce_forward(zs, batch["subject_labels"].astype(dt), batch["mask"], SUBJECT_POWER)
    lo, bce_o = powered_bce_forward(zo, batch["object_labels"].astype(dt), batch["mask"], OBJECT_POWER)
    return ls + lo, {"enc": enc, "lin_s": lin_s, "gather": gather, "obj": obj, "bce_s": bce_s,
                     "bce_o": bce_o, "losses": (ls, lo)}


def loss_backward(cache):
    """Gradients of the loss with respect to every parameter (same keys as the params)."""
    grads = {}
    dzs = powered_bce_backward(1.0, cache["bce_s"])
    dh_out, grads["subject.weight"], grads["subject.bias"] = linear_backward(dzs, cache["lin_s"])
    dzo = powered_bce_backward(1.0, cache["bce_o"])
    cln, lin = cache["obj"]
    dc, grads["object.weight"], grads["object.bias"] = \
        linear_backward(dzo.reshape(dzo.shape[0], dzo.shape[1], -1), lin)
    dh_pre, dv, grads["cln.weight"], grads["cln.bias"], grads["cln.gamma_dense.weight"], \
        grads["cln.beta_dense.weight"] = conditional_layernorm_backward(dc, cln)
    dh_pre += subject_vector_backward(dv, cache["gather"])
    grads.update(encode_backward(dh_pre, dh_out, cache["enc"]))
    return grads


def subject_probs(params, config, ids, mask):
    """p_s = sigmoid(H_out W_s + b_s) ** 2 (B, T, 2) and H_pre (B, T, C), no dropout."""
    h_pre, h_out, _ = encode(params, config, ids, mask)
    zs, _ = linear_forward(h_out, params["subject.weight"], params["subject.bias"])
    return powered_sigmoid_forward(zs, SUBJECT_POWER)[0], h_pre


def object_probs(params, config, h_pre, starts, ends):
    """p_o (S, T, P, 2) for S candidate subjects at once; h_pre: (S, T, C), one row per subject."""
    v, _ = subject_vector_forward(h_pre, starts, ends)
    zo, _ = object_logits_forward(params, config, h_pre, v)
    return powered_sigmoid_forward(zo, OBJECT_POWER)[0]
