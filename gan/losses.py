"""GAN losses on discriminator scores, for D and for G, as forward/backward pairs.

s_real, s_fake: (B,) raw scores (logits), higher = "more real".
  non-saturating ("ns", Goodfellow et al. 2014, written with softplus so it never overflows):
      L_D = mean softplus(-s_real) + mean softplus(s_fake)      (= -log sigmoid(s_real) - log(1 - sigmoid(s_fake)))
      L_G = mean softplus(-s_fake)                              (= -log sigmoid(s_fake))
  hinge (Lim & Ye 2017; Miyato et al. 2018):
      L_D = mean relu(1 - s_real) + mean relu(1 + s_fake)
      L_G = -mean s_fake
Backward functions take dout, the gradient of the final objective with respect to the loss (1.0 for
the loss itself), and return the gradients of the score arrays.
"""
from smoothing import get_xp, softplus, softplus_backward

LOSSES = ("ns", "hinge")


def _check_scores(s, name):
    xp = get_xp(s)
    if not hasattr(s, "ndim") or s.ndim != 1 or s.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of scores (B,), "
                         f"got {getattr(s, 'shape', type(s).__name__)}")
    if not bool(xp.isfinite(s).all()):
        raise ValueError(f"{name} contains non-finite values (inf or NaN)")


def _check_kind(kind):
    if kind not in LOSSES:
        raise ValueError(f"loss kind must be one of {LOSSES}, got {kind!r}")


def d_loss_forward(s_real, s_fake, kind="ns"):
    """Discriminator loss. s_real: (B,)  s_fake: (B',)  returns (scalar loss, cache)."""
    _check_kind(kind)
    _check_scores(s_real, "s_real")
    _check_scores(s_fake, "s_fake")
    if kind == "ns":
        loss = softplus(-s_real).mean() + softplus(s_fake).mean()
    else:
        xp = get_xp(s_real)
        loss = xp.maximum(1.0 - s_real, 0).mean() + xp.maximum(1.0 + s_fake, 0).mean()
    return loss, (kind, s_real, s_fake)


def d_loss_backward(dout, cache):
    """dout: scalar -> (ds_real (B,), ds_fake (B',))."""
    kind, s_real, s_fake = cache
    n_real, n_fake = s_real.shape[0], s_fake.shape[0]
    if kind == "ns":
        # d softplus(-s) / ds = -sigmoid(-s);  d softplus(s) / ds = sigmoid(s)
        ds_real = -softplus_backward(dout / n_real, -s_real)
        ds_fake = softplus_backward(dout / n_fake, s_fake)
    else:
        # relu(1 - s) has slope -1 where s < 1; relu(1 + s) has slope 1 where s > -1
        ds_real = -(dout / n_real) * (s_real < 1.0)
        ds_fake = (dout / n_fake) * (s_fake > -1.0)
    return ds_real, ds_fake


def g_loss_forward(s_fake, kind="ns"):
    """Generator loss. s_fake: (B,)  returns (scalar loss, cache)."""
    _check_kind(kind)
    _check_scores(s_fake, "s_fake")
    loss = softplus(-s_fake).mean() if kind == "ns" else -s_fake.mean()
    return loss, (kind, s_fake)


def g_loss_backward(dout, cache):
    """dout: scalar -> ds_fake (B,)."""
    kind, s_fake = cache
    n = s_fake.shape[0]
    if kind == "ns":
        return -softplus_backward(dout / n, -s_fake)
    return -(dout / n) * get_xp(s_fake).ones_like(s_fake)
