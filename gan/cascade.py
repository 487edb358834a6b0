"""Cascading Rejection (Shin et al. 2019, arXiv 1911.10979; kexue.fm 7105): N scores from one feature vector.

A discriminator that ends in D(x) = <v, w> judges its features v only along w; the part of v orthogonal
to w, the vector rejection v - (<v, w> / |w|^2) w, is never looked at. Cascading Rejection scores that
remainder again with a new weight vector, N times:

    v_1 = v,   s_k = <v_k, w_k>,   v_{k+1} = v_k - (s_k / |w_k|^2) w_k,   k = 1..N

so v_{k+1} is orthogonal to w_k (not, in general, to the earlier w's: the rejections do not commute).
Each s_k gets the usual D loss; D's loss is their weighted average. G is trained against all N scores
(same weights) or against s_1 only. With N = 1 this is exactly the plain discriminator <v, w_1>.
"""
import numpy as np

from smoothing import get_xp

from .losses import d_loss_backward, d_loss_forward, g_loss_backward, g_loss_forward

G_STAGES = ("all", "first")


def cascade_init(n_stages, d, rng):
    """N weight vectors w: (N, d) ~ N(0, 1 / d). N must be >= 1."""
    if not isinstance(n_stages, (int, np.integer)) or n_stages < 1:
        raise ValueError(f"n_stages (N) must be an integer >= 1, got {n_stages!r}")
    return rng.standard_normal((int(n_stages), int(d))) / np.sqrt(d)


def _check_cascade_inputs(v, w):
    """Shapes and values for cascade_forward; returns |w_k|^2: (N,)."""
    xp = get_xp(v, w)
    if not hasattr(v, "ndim") or v.ndim != 2:
        raise ValueError(f"v must be a 2-D feature array (B, d), got {getattr(v, 'shape', None)}")
    if not hasattr(w, "ndim") or w.ndim != 2 or w.shape[1] != v.shape[1]:
        raise ValueError(f"w must have shape (N, d) = (N, {v.shape[1]}) to match v {v.shape}, "
                         f"got {getattr(w, 'shape', None)}")
    if w.shape[0] < 1:
        raise ValueError(f"w must hold N >= 1 weight vectors, got shape {w.shape}")
    if not bool(xp.isfinite(v).all()):
        raise ValueError("v (the discriminator features) contains non-finite values (inf or NaN)")
    if not bool(xp.isfinite(w).all()):
        raise ValueError("w contains non-finite values (inf or NaN)")
    wsq = (w * w).sum(axis=1)                             # (N,)
    bad = xp.nonzero(wsq <= np.finfo(w.dtype).tiny)[0]
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"w[{k}] is a zero vector: the rejection divides by |w_{k + 1}|^2 = 0, "
                         f"so every w_k must be nonzero")
    return wsq


def cascade_forward(v, w):
    """All N cascade scores of a batch of feature vectors.

    v: (B, d) features   w: (N, d) one weight vector per stage
    returns (scores (B, N) with scores[:, k] = <v_k, w_k>, cache)
    """
    wsq = _check_cascade_inputs(v, w)
    xp = get_xp(v, w)
    N = w.shape[0]
    vs, s = [v], []                                       # v_1 .. v_N, each (B, d); s_1 .. s_N
    for k in range(N):
        s.append(vs[k] @ w[k])                            # s_k = <v_k, w_k>      (B,)
        if k < N - 1:                                     # the last rejection is never scored
            vs.append(vs[k] - (s[k] / wsq[k])[:, None] * w[k])
    scores = xp.stack(s, axis=1)                          # (B, N)
    return scores, (vs, w, wsq, scores)


def cascade_backward(dscores, cache):
    """dscores: (B, N) -> dv (B, d), dw (N, d), through every rejection."""
    vs, w, wsq, scores = cache
    xp = get_xp(dscores)
    N = w.shape[0]
    dw = xp.zeros_like(w)
    dv_next = xp.zeros_like(vs[0])                        # gradient w.r.t. v_{k+1}
    for k in reversed(range(N)):
        ds = dscores[:, k]                                # (B,)
        dv = dv_next
        if k < N - 1:
            # forward was: v_{k+1} = v_k - a w_k,  a = s_k / q_k,  q_k = |w_k|^2
            a = scores[:, k] / wsq[k]                     # (B,)
            da = -(dv_next @ w[k])                        # (B,)
            dw[k] -= a @ dv_next
            ds = ds + da / wsq[k]
            dq = -(da * a).sum() / wsq[k]                 # d(s/q)/dq = -s / q^2 = -a / q
            dw[k] += 2.0 * dq * w[k]
        # forward was: s_k = v_k @ w_k
        dv = dv + ds[:, None] * w[k]
        dw[k] += ds @ vs[k]
        dv_next = dv
    return dv_next, dw


def cascade_effective_weights(w):
    """The N scores are linear in v: scores = v @ U.T, with U computed from the w's alone.

    w: (N, d) -> U: (N, d),  u_k = P_1 P_2 ... P_{k-1} w_k,  P_j x = x - (<w_j, x> / |w_j|^2) w_j
    (each P_j is a symmetric projection, so <P_{k-1}..P_1 v, w_k> = <v, P_1..P_{k-1} w_k>). A reading
    aid and a test oracle; training uses cascade_forward, whose backward goes through each rejection.
    """
    wsq = _check_cascade_inputs(w[:1] * 0.0, w)
    U = w.copy()
    for k in range(1, w.shape[0]):
        for j in reversed(range(k)):                      # apply P_{k-1} first, P_1 last
            U[k] = U[k] - ((w[j] @ U[k]) / wsq[j]) * w[j]
    return U


def _stage_weights(weights, N, xp):
    """Weights of the N stages, normalised to sum to 1 (uniform when None)."""
    if weights is None:
        return xp.full(N, 1.0 / N)
    lam = xp.asarray(weights, dtype=float)
    if lam.shape != (N,) or not bool(xp.isfinite(lam).all()) or bool((lam < 0).any()) \
            or not float(lam.sum()) > 0:
        raise ValueError(f"stage_weights must be {N} finite non-negative numbers with a positive sum, "
                         f"got {weights!r}")
    return lam / lam.sum()


def _check_scores_2d(s, name):
    if not hasattr(s, "ndim") or s.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of cascade scores (B, N), "
                         f"got {getattr(s, 'shape', None)}")


def cr_d_loss_forward(scores_real, scores_fake, kind="ns", stage_weights=None):
    """D loss = sum_k lambda_k * L_D(s_real[:, k], s_fake[:, k]) with sum_k lambda_k = 1.

    scores_real: (B, N)   scores_fake: (B', N)   returns (loss, cache); cache["per_stage"]: (N,) losses
    """
    _check_scores_2d(scores_real, "scores_real")
    _check_scores_2d(scores_fake, "scores_fake")
    if scores_real.shape[1] != scores_fake.shape[1]:
        raise ValueError(f"scores_real and scores_fake must have the same N, got "
                         f"{scores_real.shape} and {scores_fake.shape}")
    N = scores_real.shape[1]
    lam = _stage_weights(stage_weights, N, get_xp(scores_real))
    stages = [d_loss_forward(scores_real[:, k], scores_fake[:, k], kind) for k in range(N)]
    per_stage = [float(loss) for loss, _ in stages]
    loss = sum(lam[k] * stages[k][0] for k in range(N)) if N > 1 else stages[0][0]
    return loss, {"lam": lam, "stages": [c for _, c in stages], "per_stage": per_stage,
                  "shapes": (scores_real.shape, scores_fake.shape)}


def cr_d_loss_backward(dout, cache):
    """dout: scalar -> (dscores_real (B, N), dscores_fake (B', N))."""
    xp = get_xp(cache["lam"])
    ds_real, ds_fake = xp.zeros(cache["shapes"][0]), xp.zeros(cache["shapes"][1])
    for k, c in enumerate(cache["stages"]):
        ds_real[:, k], ds_fake[:, k] = d_loss_backward(dout * cache["lam"][k], c)
    return ds_real, ds_fake


def cr_g_loss_forward(scores_fake, kind="ns", g_stages="all", stage_weights=None):
    """G loss against all N stages (sum_k lambda_k * L_G(s_fake[:, k])) or the first only (L_G(s_fake[:, 0])).

    scores_fake: (B, N)   returns (loss, cache)
    """
    _check_scores_2d(scores_fake, "scores_fake")
    if g_stages not in G_STAGES:
        raise ValueError(f"g_stages must be one of {G_STAGES}, got {g_stages!r}")
    N = scores_fake.shape[1]
    lam = _stage_weights(stage_weights, N, get_xp(scores_fake))
    used = range(N) if g_stages == "all" else range(1)
    if g_stages == "first":
        lam = lam * 0.0
        lam[0] = 1.0
    stages = [g_loss_forward(scores_fake[:, k], kind) for k in used]
    loss = sum(lam[k] * stages[k][0] for k in used) if len(stages) > 1 else stages[0][0]
    return loss, {"lam": lam, "stages": [c for _, c in stages], "shape": scores_fake.shape}


def cr_g_loss_backward(dout, cache):
    """dout: scalar -> dscores_fake (B, N) (zero in the unused stages when g_stages = "first")."""
    ds = get_xp(cache["lam"]).zeros(cache["shape"])
    for k, c in enumerate(cache["stages"]):
        ds[:, k] = g_loss_backward(dout * cache["lam"][k], c)
    return ds
