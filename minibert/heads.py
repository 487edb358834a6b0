"""The heads on top of the encoder, the MLM loss, and a model-level forward/backward over all of it.

    pooler:  pooled = tanh(hidden[:, 0] Wp + bp)                     ([CLS] summary, (B, C))
    MLM:     logits = LN(gelu(hidden Wt + bt)) E_tok^T + bias          (B, T, V), decoder tied to E_tok
    loss:    mean over labelled positions of -log softmax(logits)[label], label -100 = not scored

Keys follow Hugging Face: 'pooler.dense.*', 'cls.predictions.transform.dense.*',
'cls.predictions.transform.LayerNorm.*', 'cls.predictions.bias'. The decoder matrix is not a
parameter of its own: it is 'embeddings.word_embeddings.weight', and its gradient from the head is
added to the gradient from the embedding lookup (model_backward).
"""
import numpy as np

from smoothing import get_xp, log_softmax

from .layers import (gelu_backward, gelu_forward, layernorm_backward, layernorm_forward,
                     linear_backward, linear_forward, matmul_tall)
from .model import bert_backward, bert_forward

IGNORE_INDEX = -100


def head_param_shapes(config):
    """{name: shape} of the pooler and MLM head parameters."""
    C, V = config.hidden_size, config.vocab_size
    return {"pooler.dense.weight": (C, C), "pooler.dense.bias": (C,),
            "cls.predictions.transform.dense.weight": (C, C),
            "cls.predictions.transform.dense.bias": (C,),
            "cls.predictions.transform.LayerNorm.weight": (C,),
            "cls.predictions.transform.LayerNorm.bias": (C,),
            "cls.predictions.bias": (V,)}


def pooler_forward(hidden, params):
    """pooled = tanh(hidden[:, 0] @ W + b).   hidden: (B, T, C)   returns (B, C)"""
    z, lin = linear_forward(hidden[:, 0], params["pooler.dense.weight"], params["pooler.dense.bias"])
    pooled = get_xp(z).tanh(z, out=z)
    return pooled, (pooled, lin, hidden.shape)


def pooler_backward(dpooled, cache):
    """Returns dhidden (B, T, C) (non-zero only at position 0) and the pooler's gradients."""
    pooled, lin, shape = cache
    # forward was: pooled = tanh(z);  dz = dpooled * (1 - pooled^2)
    dz = dpooled * (1.0 - pooled * pooled)
    dh0, dW, db = linear_backward(dz, lin)
    dhidden = get_xp(dz).zeros(shape, dz.dtype)
    dhidden[:, 0] = dh0
    return dhidden, {"pooler.dense.weight": dW, "pooler.dense.bias": db}


def mlm_head_forward(hidden, params, config):
    """MLM logits over the vocabulary.   hidden: (B, T, C)   returns (B, T, V)"""
    p = "cls.predictions.transform."
    t, lin = linear_forward(hidden, params[p + "dense.weight"], params[p + "dense.bias"])
    a, act = gelu_forward(t, config.gelu_kind)
    h, ln = layernorm_forward(a, params[p + "LayerNorm.weight"], params[p + "LayerNorm.bias"],
                              config.layer_norm_eps)
    E = params["embeddings.word_embeddings.weight"]                      # (V, C), tied decoder
    C, V = E.shape[1], E.shape[0]
    # one (B*T, C) @ (C, V) product: a 3-D h @ E^T would run as B separate, slower ones
    logits = (h.reshape(-1, C) @ E.T).reshape(*h.shape[:-1], V)         # (B, T, V)
    logits += params["cls.predictions.bias"]
    return logits, (lin, act, ln, h, E)


def mlm_head_backward(dlogits, cache):
    """Returns dhidden (B, T, C) and the head's gradients; the decoder's gradient of the word
    embeddings is returned under 'decoder' so the caller adds it to the lookup's gradient."""
    lin, act, ln, h, E = cache
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
    dh = matmul_tall(d2, E).reshape(*dlogits.shape[:-1], C)              # (B, T, C)
    da, g[p + "LayerNorm.weight"], g[p + "LayerNorm.bias"] = layernorm_backward(dh, ln)
    dt = gelu_backward(da, act)
    dhidden, g[p + "dense.weight"], g[p + "dense.bias"] = linear_backward(dt, lin)
    return dhidden, g


def mlm_head_backward_rows(d_rows, rows, cache):
    """mlm_head_backward for a dlogits that is zero except at the given flat positions.

    d_rows: (n, V), the non-zero rows   rows: (n,) their indices among the B*T positions
    returns dhidden (B, T, C), zero outside rows, and the head's gradients as mlm_head_backward
    """
    lin, act, ln, h, E = cache
    xp = get_xp(E)
    V, C = E.shape
    p = "cls.predictions.transform."
    g = {"cls.predictions.bias": d_rows.sum(axis=0)}
    # forward was: logits = h @ E^T + bias, here on the n rows only
    g["decoder"] = d_rows.T @ h.reshape(-1, C)[rows]                    # (V, C), dL/dE via the decoder
    # not a plain d @ E: two-thread OpenBLAS ran (n, V) @ (V, C) with n ~ 150 about 5x slower
    dh = matmul_tall(d_rows, E)                                          # (n, C)
    # the transform's caches, cut to the same rows: LN (xhat, rstd), GELU (x, saved), linear (x, W)
    flat = lambda a: a.reshape(-1, a.shape[-1])[rows]                    # noqa: E731
    xhat, rstd, gamma = ln
    da, g[p + "LayerNorm.weight"], g[p + "LayerNorm.bias"] = \
        layernorm_backward(dh, (flat(xhat), flat(rstd), gamma))
    dt = gelu_backward(da, (flat(act[0]), flat(act[1]), act[2]))
    dh_rows, g[p + "dense.weight"], g[p + "dense.bias"] = linear_backward(dt, (flat(lin[0]), lin[1]))
    x = lin[0]
    dhidden = xp.zeros((x.size // x.shape[-1], x.shape[-1]), dtype=dh_rows.dtype)
    dhidden[rows] = dh_rows
    return dhidden.reshape(x.shape), g


def masked_cross_entropy_forward(logits, labels, ignore_index=IGNORE_INDEX):
    """Mean cross-entropy over the positions whose label is not ignore_index.

    logits: (..., V) floats   labels: (...) ints in [0, V) or ignore_index
    returns the loss (a 0-d array; 0 when nothing is labelled) and the cache
    """
    xp = get_xp(logits)
    V = logits.shape[-1]
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have shape {tuple(logits.shape[:-1])}, got {tuple(labels.shape)}")
    flat = labels.reshape(-1)
    rows = xp.flatnonzero(flat != ignore_index)                          # (N,) scored positions
    y = flat[rows]
    if y.size and (int(y.min()) < 0 or int(y.max()) >= V):
        raise ValueError(f"labels must lie in [0, {V}) or be {ignore_index}, got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    if rows.size == 0:
        return xp.zeros((), logits.dtype), (None, rows, y, logits.shape)
    logp = log_softmax(logits.reshape(-1, V)[rows], axis=-1)             # (N, V), only scored rows
    loss = -logp[xp.arange(rows.size), y].mean()
    return loss, (logp, rows, y, logits.shape)


def masked_cross_entropy_rows_backward(dloss, cache):
    """The non-zero rows of masked_cross_entropy_backward: (rows (N,) flat positions, d (N, V))."""
    logp, rows, y, shape = cache
    xp = get_xp(rows)
    if logp is None:
        return rows, xp.zeros((0, shape[-1]), dtype=np.float64)
    # forward was: loss = -mean_n logp[n, y_n],  logp = log_softmax(z)
    d = xp.exp(logp)
    d[xp.arange(rows.size), y] -= 1.0
    d *= dloss / rows.size
    return rows, d


def masked_cross_entropy_backward(dloss, cache):
    """Returns dlogits (..., V): (softmax - onehot) / N on scored rows, 0 elsewhere."""
    logp, _, _, shape = cache
    rows, d = masked_cross_entropy_rows_backward(dloss, cache)
    xp = get_xp(rows)
    dlogits = xp.zeros((int(np.prod(shape[:-1])), shape[-1]), dtype=d.dtype)
    dlogits[rows] = d
    return dlogits.reshape(shape)


def model_forward(params, config, token_ids, segment_ids=None, mask=None, labels=None, rng=None):
    """Encoder + whichever heads params holds (+ the MLM loss when labels are given).

    Arguments as bert_forward, plus labels: (B, T) ints, -100 where not scored.
    returns outputs {'hidden', 'pooled'?, 'logits'?, 'loss'?} and the cache for model_backward
    """
    hidden, enc = bert_forward(params, config, token_ids, segment_ids, mask, rng)
    out, cache = {"hidden": hidden}, {"encoder": enc, "params": params, "hidden": hidden}
    if "pooler.dense.weight" in params:
        out["pooled"], cache["pooler"] = pooler_forward(hidden, params)
    if "cls.predictions.bias" in params:
        out["logits"], cache["mlm"] = mlm_head_forward(hidden, params, config)
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
