"""The new ops of the triple extractor, as forward/backward pairs.

- conditional LayerNorm: y = xhat * (gamma + v W_g) + (beta + v W_b), the LayerNorm of x re-scaled and
  re-shifted by a condition vector v (here: the subject vector), W_g and W_b bias-free and zero at start;
- subject vector: v = [h[start]; h[end]], a gather of two rows per sentence;
- powered sigmoid: p = sigmoid(z) ** n (n = 2 for subjects, 4 for objects);
- masked binary cross-entropy of p = sigmoid(z) ** n, computed from the logits z without ever forming
  log(p) of a rounded p.
"""

from smoothing import get_xp

from ..layers import layernorm_backward, layernorm_forward

# ---- conditional LayerNorm ---------------------------------------------------------------


def conditional_layernorm_forward(x, v, gamma, beta, Wg, Wb, eps=1e-12):
    """LayerNorm of x whose scale and shift depend on a per-sentence condition v.

    x: (B, T, C)   v: (B, D)   gamma, beta: (C,)   Wg, Wb: (D, C)
    y = (x - mean) / sqrt(var + eps) * (gamma + v @ Wg) + (beta + v @ Wb)     returns (B, T, C)
    With v = 0 (or Wg = Wb = 0) this is the plain LayerNorm with gamma, beta.
    """
    if x.ndim != 3 or v.ndim != 2 or v.shape[0] != x.shape[0]:
        raise ValueError(f"x must be (B, T, C) and v (B, D) with the same B, got x {x.shape}, v {v.shape}")
    if Wg.shape != (v.shape[1], x.shape[2]) or Wb.shape != Wg.shape:
        raise ValueError(f"Wg and Wb must be (D, C) = {(v.shape[1], x.shape[2])}, got {Wg.shape}, {Wb.shape}")
    xp = get_xp(x)
    ones, zeros = xp.ones_like(gamma), xp.zeros_like(beta)
    xhat, ln = layernorm_forward(x, ones, zeros, eps)      # (B, T, C), the normalized rows
    g = gamma + v @ Wg                                     # (B, C), scale of each sentence
    b = beta + v @ Wb                                      # (B, C), shift of each sentence
    out = xhat * g[:, None, :] + b[:, None, :]
    return out, (ln, xhat, v, g, Wg, Wb)


def conditional_layernorm_backward(dout, cache):
    """Returns dx (B, T, C), dv (B, D), dgamma (C,), dbeta (C,), dWg (D, C), dWb (D, C)."""
    ln, xhat, v, g, Wg, Wb = cache
    # forward was: out = xhat * g[:, None] + b[:, None], g = gamma + v Wg, b = beta + v Wb
    dg = (dout * xhat).sum(axis=1)                         # (B, C)
    db = dout.sum(axis=1)                                  # (B, C)
    # xhat = LN(x) with unit scale and zero shift: the plain LayerNorm backward with dxhat as dout
    dx = layernorm_backward(dout * g[:, None, :], ln)[0]
    dv = dg @ Wg.T + db @ Wb.T                             # (B, D)
    return dx, dv, dg.sum(axis=0), db.sum(axis=0), v.T @ dg, v.T @ db


# ---- subject vector: a gather of two rows -------------------------------------------------


def subject_vector_forward(h, starts, ends):
    """v[b] = [h[b, starts[b]]; h[b, ends[b]]].

    h: (B, T, C)   starts, ends: (B,) ints in [0, T)   returns (B, 2C)
    """
    B, T, _ = h.shape
    xp = get_xp(h)
    starts, ends = xp.asarray(starts), xp.asarray(ends)
    for name, idx in (("starts", starts), ("ends", ends)):
        if idx.shape != (B,) or idx.dtype.kind not in "iu" or (B and (idx.min() < 0 or idx.max() >= T)):
            raise ValueError(f"{name} must be (B,) = ({B},) ints in [0, {T}), got shape {idx.shape} "
                             f"dtype {idx.dtype}")
    rows = xp.arange(B)
    v = xp.concatenate([h[rows, starts], h[rows, ends]], axis=1)
    return v, (h.shape, starts, ends)


def subject_vector_backward(dv, cache):
    """Returns dh (B, T, C): the two row gradients scattered back (added where start == end)."""
    shape, starts, ends = cache
    xp = get_xp(dv)
    C = shape[2]
    dh = xp.zeros(shape, dv.dtype)
    rows = xp.arange(shape[0])
    # forward was a gather; a start equal to its end receives both halves
    xp.add.at(dh, (rows, starts), dv[:, :C])
    xp.add.at(dh, (rows, ends), dv[:, C:])
    return dh


# ---- powered sigmoid and its binary cross-entropy -----------------------------------------


def log_sigmoid(z):
    """log sigmoid(z) = -softplus(-z), without overflow."""
    return -get_xp(z).logaddexp(0.0, -z)


def powered_sigmoid_forward(z, n):
    """p = sigmoid(z) ** n, elementwise.   z: any shape   n: positive int"""
    s = get_xp(z).exp(log_sigmoid(z))
    p = s ** n
    return p, (s, p, n)


def powered_sigmoid_backward(dout, cache):
    """Returns dz: dp/dz = n s^(n-1) * s (1 - s) = n p (1 - s)."""
    s, p, n = cache
    return dout * n * p * (1.0 - s)


def powered_bce_forward(z, labels, mask, n):
    """Masked binary cross-entropy of p = sigmoid(z) ** n against 0/1 labels.

    z, labels: (B, T, ..., 2)   mask: (B, T) 1 at real tokens, 0 at padding
    loss = sum_{b,t} mask * sum_{...} mean_{2} BCE / sum mask    (bert4keras's L_s and L_o)
    log p = -n softplus(-z);  log(1 - p) = log(-expm1(log p))
    """
    xp = get_xp(z)
    if labels.shape != z.shape or mask.shape != z.shape[:2]:
        raise ValueError(f"labels must be {z.shape} and mask {z.shape[:2]}, got {labels.shape}, {mask.shape}")
    logp = n * log_sigmoid(z)
    q = -xp.expm1(logp)                                    # 1 - p, accurate when p is near 1
    tiny = xp.finfo(z.dtype).tiny
    log1mp = xp.log(xp.maximum(q, tiny))
    bce = -(labels * logp + (1.0 - labels) * log1mp)
    m = mask.astype(z.dtype).reshape(mask.shape + (1,) * (z.ndim - 2))
    denom = max(float(mask.sum()), 1.0) * z.shape[-1]
    loss = float((bce * m).sum() / denom)
    return loss, (z, labels, m, n, logp, q, tiny, denom)


def powered_bce_backward(dloss, cache):
    """Returns dz with the shape of z."""
    z, labels, m, n, logp, q, tiny, denom = cache
    s1 = get_xp(z).exp(log_sigmoid(-z))                    # 1 - sigmoid(z) = sigmoid(-z)
    p = 1.0 - q
    # d/dz log p = n (1 - s);  d/dz log(1 - p) = -n p (1 - s) / (1 - p)
    dlogp = n * s1
    dlog1mp = -n * p * s1 / (q + (q <= tiny) * 1.0)
    dz = -(labels * dlogp + (1.0 - labels) * dlog1mp)
    return dz * m * (dloss / denom)
