"""The heads on top of the encoder, the loss on the scored rows, and a model-level forward/backward.

    pooler:  pooled = tanh(hidden[:, 0] Wp + bp)                     ([CLS] summary, (B, C))
    MLM:     logits = LN(gelu(hidden Wt + bt)) E_tok^T + bias          (B, T, V), decoder tied to E_tok
    loss:    mean over scored positions of -log softmax(logits)[label] (loss.py); model_forward scores
             the positions whose label is not -100, the MLM and seq2seq training steps the rows they pick

Keys follow Hugging Face: 'pooler.dense.*', 'cls.predictions.transform.dense.*',
'cls.predictions.transform.LayerNorm.*', 'cls.predictions.bias'. The decoder matrix is not a
parameter of its own: it is 'embeddings.word_embeddings.weight', and its gradient from the head is
added to the gradient from the embedding lookup (model_backward). `ops` chooses the plain layers
or their tuned twins (ops.py).
"""
from smoothing import get_xp

from .loss import (IGNORE_INDEX, masked_cross_entropy_backward, masked_cross_entropy_forward,  # noqa: F401
                   masked_cross_entropy_rows_backward)
from .model import bert_backward, bert_forward
from .ops import PLAIN
from .params import head_param_shapes  # noqa: F401 (re-exported)


def pooler_forward(hidden, params, ops=PLAIN):
    """pooled = tanh(hidden[:, 0] @ W + b).   hidden: (B, T, C)   returns (B, C)"""
    z, lin = ops.linear_forward(hidden[:, 0], params["pooler.dense.weight"], params["pooler.dense.bias"])
    pooled = get_xp(z).tanh(z)
    return pooled, (pooled, lin, hidden.shape, ops)


def pooler_backward(dpooled, cache):
    """Returns dhidden (B, T, C) (non-zero only at position 0) and the pooler's gradients."""
    pooled, lin, shape, ops = cache
    # forward was: pooled = tanh(z);  dz = dpooled * (1 - pooled^2)
    dz = dpooled * (1.0 - pooled * pooled)
    dh0, dW, db = ops.linear_backward(dz, lin)
    dhidden = get_xp(dz).zeros(shape, dz.dtype)
    dhidden[:, 0] = dh0
    return dhidden, {"pooler.dense.weight": dW, "pooler.dense.bias": db}


def mlm_head_forward(hidden, params, config, ops=PLAIN):
    """MLM logits over the vocabulary.   hidden: (..., C), e.g. (B, T, C)   returns (..., V)"""
    p = "cls.predictions.transform."
    t, lin = ops.linear_forward(hidden, params[p + "dense.weight"], params[p + "dense.bias"])
    a, act = ops.gelu_forward(t, config.gelu_kind)
    h, ln = ops.layernorm_forward(a, params[p + "LayerNorm.weight"], params[p + "LayerNorm.bias"],
                                  config.layer_norm_eps)
    E = params["embeddings.word_embeddings.weight"]                      # (V, C), tied decoder
    C, V = E.shape[1], E.shape[0]
    # one (B*T, C) @ (C, V) product: a 3-D h @ E^T would run as B separate, slower ones
    logits = (h.reshape(-1, C) @ E.T + params["cls.predictions.bias"]).reshape(*h.shape[:-1], V)
    return logits, (lin, act, ln, h, E, ops)


def mlm_head_backward(dlogits, cache):
    """Returns dhidden (B, T, C) and the head's gradients; the decoder's gradient of the word
    embeddings is returned under 'decoder' so the caller adds it to the lookup's gradient."""
    lin, act, ln, h, E, ops = cache
    xp = get_xp(E)
    V, C = E.shape
    d2 = dlogits.reshape(-1, V)                                          # (N, V)
    # Under the MLM loss only the labelled rows of dlogits (about 15%) are non-zero: the head's
    # backward then runs over those rows alone (a zero row adds nothing to any gradient).
    rows = xp.flatnonzero(d2.any(axis=1))                                # NaN counts as non-zero
    if rows.size < d2.shape[0]:
        return mlm_head_backward_rows(d2[rows], rows, cache)
    p = "cls.predictions.transform."
    g = {"cls.predictions.bias": d2.sum(axis=0)}
    # forward was: logits = h @ E^T + bias
    g["decoder"] = d2.T @ h.reshape(-1, C)                               # (V, C), dL/dE via the decoder
    dh = ops.matmul(d2, E).reshape(*dlogits.shape[:-1], C)              # (B, T, C)
    da, g[p + "LayerNorm.weight"], g[p + "LayerNorm.bias"] = ops.layernorm_backward(dh, ln)
    dt = ops.gelu_backward(da, act)
    dhidden, g[p + "dense.weight"], g[p + "dense.bias"] = ops.linear_backward(dt, lin)
    return dhidden, g


def mlm_head_backward_rows(d_rows, rows, cache):
    """mlm_head_backward for a dlogits that is zero except at the given flat positions.

    d_rows: (n, V), the non-zero rows   rows: (n,) their indices among the B*T positions
    returns dhidden (B, T, C), zero outside rows, and the head's gradients as mlm_head_backward
    """
    lin, act, ln, h, E, ops = cache
    xp = get_xp(E)
    V, C = E.shape
    p = "cls.predictions.transform."
    g = {"cls.predictions.bias": d_rows.sum(axis=0)}
    # forward was: logits = h @ E^T + bias, here on the n rows only
    g["decoder"] = d_rows.T @ h.reshape(-1, C)[rows]                    # (V, C), dL/dE via the decoder
    dh = ops.matmul(d_rows, E)                                           # (n, C)
    # the transform's caches, cut to the same rows: LN (xhat, rstd), GELU (x, saved), linear (x, W)
    flat = lambda a: a.reshape(-1, a.shape[-1])[rows]                    # noqa: E731
    xhat, rstd, gamma = ln
    da, g[p + "LayerNorm.weight"], g[p + "LayerNorm.bias"] = \
        ops.layernorm_backward(dh, (flat(xhat), flat(rstd), gamma))
    dt = ops.gelu_backward(da, (flat(act[0]), flat(act[1]), act[2]))
    dh_rows, g[p + "dense.weight"], g[p + "dense.bias"] = ops.linear_backward(dt, (flat(lin[0]), lin[1]))
    x = lin[0]
    dhidden = xp.zeros((x.size // x.shape[-1], x.shape[-1]), dtype=dh_rows.dtype)
    dhidden[rows] = dh_rows
    return dhidden.reshape(x.shape), g


def scored_rows_forward_backward(hidden, rows, labels, params, config, ops=PLAIN):
    """The loss on the scored rows: the MLM head's mean cross-entropy at some positions, and its gradients.

    hidden: (B, T, C)   rows: (N,) flat positions in [0, B*T)   labels: (N,) ids in [0, V)
    loss = -mean_n log softmax(mlm_head(hidden_flat[rows[n]]))[labels[n]]
    The head runs on the N rows only (N x V logits instead of B x T x V).
    returns loss (float), accuracy (float), dhidden (B, T, C) (zero outside rows) and the head's
    gradients, with the decoder's gradient of the word embeddings under 'decoder'
    """
    xp = get_xp(hidden)
    B, T, C = hidden.shape
    if rows.size == 0:
        return 0.0, 0.0, xp.zeros_like(hidden), {}
    logits, head = mlm_head_forward(hidden.reshape(-1, C)[rows], params, config, ops)   # (N, V)
    loss, ce = ops.cross_entropy_forward(logits, labels)
    acc = float((logits.argmax(axis=-1) == labels).mean())
    dh, grads = mlm_head_backward(ops.cross_entropy_backward(1.0, ce), head)           # (N, C)
    dhidden = xp.zeros((B * T, C), hidden.dtype)
    dhidden[rows] = dh                                                   # scatter back to positions
    return float(loss), acc, dhidden.reshape(B, T, C), grads


def scored_rows_step(params, config, token_ids, segment_ids, mask, rows, labels, rng=None, ops=PLAIN):
    """Encoder, the loss on the scored rows, and the gradient of every parameter: a training step's work.

    token_ids, segment_ids, mask: as bert_forward   rows, labels: as scored_rows_forward_backward
    returns loss, accuracy, grads (same keys as params; parameters the loss does not reach get zeros)
    """
    hidden, enc = bert_forward(params, config, token_ids, segment_ids, mask, rng, ops=ops)
    loss, acc, dhidden, grads = scored_rows_forward_backward(hidden, rows, labels, params, config, ops)
    # the tied matrix: the embedding lookup's gradient is added into the MLM decoder's (bert_backward)
    grads.update(bert_backward(dhidden, enc, dword=grads.pop("decoder", None)))
    for name, p in params.items():
        if name not in grads:
            grads[name] = get_xp(p).zeros_like(p)
    return loss, acc, grads


def model_forward(params, config, token_ids, segment_ids=None, mask=None, labels=None, rng=None,
                  ops=PLAIN):
    """Encoder + whichever heads params holds (+ the MLM loss when labels are given).

    Arguments as bert_forward, plus labels: (B, T) ints, -100 where not scored.
    returns outputs {'hidden', 'pooled'?, 'logits'?, 'loss'?} and the cache for model_backward
    """
    hidden, enc = bert_forward(params, config, token_ids, segment_ids, mask, rng, ops=ops)
    out, cache = {"hidden": hidden}, {"encoder": enc, "params": params, "hidden": hidden}
    if "pooler.dense.weight" in params:
        out["pooled"], cache["pooler"] = pooler_forward(hidden, params, ops)
    if "cls.predictions.bias" in params:
        out["logits"], cache["mlm"] = mlm_head_forward(hidden, params, config, ops)
        if labels is not None:
            out["loss"], cache["loss"] = masked_cross_entropy_forward(out["logits"], labels)
    elif labels is not None:
        raise ValueError("labels were given but params has no MLM head ('cls.predictions.*')")
    return out, cache


def model_backward(cache, dloss=1.0, dhidden=None, dpooled=None, dlogits=None):
    """Gradients of every parameter (same keys and shapes as params) from the given upstream
    gradients: dloss (scalar, used when labels were given), dhidden (B, T, C), dpooled (B, C),
    dlogits (B, T, V). Parameters that received no gradient get zeros."""
    params, hidden = cache["params"], cache["hidden"]
    xp = get_xp(hidden)
    dh = xp.zeros_like(hidden) if dhidden is None else xp.array(dhidden, dtype=hidden.dtype)
    grads = {}
    decoder = None
    if "mlm" in cache:
        dh_mlm, g = None, None
        if dlogits is not None:
            dz = xp.array(dlogits, dtype=hidden.dtype)
            if "loss" in cache:
                dz += masked_cross_entropy_backward(dloss, cache["loss"])
            dh_mlm, g = mlm_head_backward(dz, cache["mlm"])
        elif "loss" in cache and cache["loss"][1].size:
            # only the loss: its gradient is non-zero on the scored rows alone, never made dense
            rows, d = masked_cross_entropy_rows_backward(dloss, cache["loss"])
            dh_mlm, g = mlm_head_backward_rows(d, rows, cache["mlm"])
        if g is not None:
            decoder = g.pop("decoder")
            dh += dh_mlm
            grads.update(g)
    if "pooler" in cache and dpooled is not None:
        dh_pool, g = pooler_backward(xp.asarray(dpooled, dtype=hidden.dtype), cache["pooler"])
        dh += dh_pool
        grads.update(g)
    # the tied matrix: one gradient from the MLM decoder, one from the embedding lookup, which
    # bert_backward adds into the first
    grads.update(bert_backward(dh, cache["encoder"], dword=decoder))
    for name, value in params.items():
        if name not in grads:
            grads[name] = xp.zeros_like(value)
    return grads
