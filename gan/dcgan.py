"""A DCGAN for 28 x 28 images from the convolution pairs, with a plain or a Cascading Rejection head.

  G: z (B, Z) -> linear to 2W x 7 x 7, batch norm, ReLU -> conv_transpose 4x4 s2 p1 to W x 14 x 14,
     batch norm, ReLU -> conv_transpose 4x4 s2 p1 to 1 x 28 x 28, tanh                  x in [-1, 1]
  D: x (B, 1, 28, 28) -> conv 4x4 s2 p1 to W x 14 x 14, LeakyReLU(0.2) -> conv 4x4 s2 p1 to 2W x 7 x 7,
     LeakyReLU(0.2) = features v (B, 2W * 49) -> cascade scores (B, N) (gan/cascade.py; N = 1: <v, w>)
   With mbstd_group = M > 0, conv2 also sees one more channel: the minibatch standard deviation of
   Karras et al. 2018 (ProGAN, section 3), the average over the W x 14 x 14 features of their standard
   deviation across each group of M consecutive images, constant over the channel. A batch of fakes
   that all look alike has a small one, so D can tell it from real images and G is pushed to vary.
Spectral norm (gan/nn.py) on D's two convolutions, each weight seen as the (Cout, Cin KH KW) matrix
PyTorch uses; batch norm (Ioffe & Szegedy 2015) in G, as in DCGAN (Radford et al. 2016), always with
the statistics of the batch at hand (samples are drawn in batches of 500). Each step updates D once
on a real and a fake batch, then G once on a fresh fake batch, as gan/train.py does for the 2-D GAN;
D's dx is what carries the signal into G. The convolutions come from a module passed in (`conv`:
gan.conv by default, gan.conv_fast in the demo).
"""
from dataclasses import dataclass

import numpy as np

from smoothing import get_xp

from . import conv as plain_conv
from .cascade import (cascade_backward, cascade_forward, cascade_init, cr_d_loss_backward,
                      cr_d_loss_forward, cr_g_loss_backward, cr_g_loss_forward)
from .nn import (leaky_relu_backward, leaky_relu_forward, linear_backward, linear_forward, relu_backward,
                 relu_forward, spectral_norm_backward, spectral_norm_forward, tanh_backward, tanh_forward)


@dataclass
class DCGANConfig:
    """Everything that defines a run; two runs with equal configs give equal numbers."""
    n_stages: int = 1           # N, the cascade scores; 1 = plain head
    g_stages: str = "all"       # G's loss over "all" N scores or the "first" only
    loss: str = "ns"            # "ns" (non-saturating) or "hinge"
    steps: int = 3000
    batch: int = 64
    z_dim: int = 64
    width: int = 32             # W: channels of G's and D's first convolutions
    lr_d: float = 1e-3          # DCGAN's 2e-4 learned far less in 3,000 steps (gan/README.md)
    lr_g: float = 1e-3
    spectral_norm: bool = True  # on D's convolutions
    batch_norm: bool = True     # in G
    mbstd_group: int = 4        # M > 0: D's minibatch standard deviation over groups of M images; 0: none
    seed: int = 0

    def __post_init__(self):
        if self.mbstd_group < 0 or (self.mbstd_group and self.batch % self.mbstd_group):
            raise ValueError(f"mbstd_group must be 0 or divide the batch {self.batch}, got {self.mbstd_group}")


def _normal(rng, shape, std, dtype=np.float32):
    return (rng.standard_normal(shape) * std).astype(dtype)


def init_dcgan(cfg, rng):
    """{"G": params, "D": params with the head "cr_w" (N, 2W * 49), "D_state": spectral-norm vectors}.

    He-normal weights for the ReLU layers (fan-in of a stride-2 transposed convolution: Cin KH KW / 4).
    """
    W, Z = cfg.width, cfg.z_dim
    G = {"fc.weight": _normal(rng, (Z, 2 * W * 49), np.sqrt(2 / Z)),
         "fc.bias": np.zeros(2 * W * 49, np.float32),
         "deconv1.weight": _normal(rng, (2 * W, W, 4, 4), np.sqrt(2 / (2 * W * 4))),
         "deconv1.bias": np.zeros(W, np.float32),
         "deconv2.weight": _normal(rng, (W, 1, 4, 4), np.sqrt(1 / (W * 4))),
         "deconv2.bias": np.zeros(1, np.float32)}
    if cfg.batch_norm:                # batch norm's beta replaces the biases before it
        del G["fc.bias"], G["deconv1.bias"]
        for name, C in (("bn0", 2 * W), ("bn1", W)):
            G[name + ".weight"], G[name + ".bias"] = np.ones(C, np.float32), np.zeros(C, np.float32)
    D = {"conv1.weight": _normal(rng, (W, 1, 4, 4), np.sqrt(2 / 16)), "conv1.bias": np.zeros(W, np.float32),
         "conv2.weight": _normal(rng, (2 * W, W + (cfg.mbstd_group > 0), 4, 4), np.sqrt(2 / (W * 16))),
         "conv2.bias": np.zeros(2 * W, np.float32),
         "cr_w": cascade_init(cfg.n_stages, 2 * W * 49, rng).astype(np.float32)}
    state = {}
    if cfg.spectral_norm:
        for name in ("conv1", "conv2"):
            din = int(np.prod(D[name + ".weight"].shape[1:]))
            state[name] = _normal(rng, din, 1.0)
            state[name] /= np.sqrt((state[name] ** 2).sum())
    return {"G": G, "D": D, "D_state": state}


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm per channel with the batch's statistics.

    x: (B, C, H, W)   gamma, beta: (C,)   mean, var over (B, H, W) of each channel
    y = (x - mean) / sqrt(var + eps) * gamma + beta
    """
    mean = x.mean(axis=(0, 2, 3), keepdims=True)                          # (1, C, 1, 1)
    rstd = 1 / (x.var(axis=(0, 2, 3), keepdims=True) + eps) ** 0.5
    xhat = (x - mean) * rstd                                              # (B, C, H, W)
    return xhat * gamma[:, None, None] + beta[:, None, None], (xhat, rstd, gamma)


def batchnorm_backward(dout, cache):
    """dout (B, C, H, W) -> dx, dgamma (C,), dbeta (C,)."""
    xhat, rstd, gamma = cache
    # forward was: y = xhat * gamma + beta
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    # xhat depends on x through the mean and the variance of its own channel
    dxhat = dout * gamma[:, None, None]
    dx = rstd * (dxhat - dxhat.mean(axis=(0, 2, 3), keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True))
    return dx, dgamma, dbeta


def _norm_relu(G, name, h):
    """ReLU(batch norm(h)), or ReLU(h) when G has no batch norm: (out, cache)."""
    bn = None
    if name + ".weight" in G:
        h, bn = batchnorm_forward(h, G[name + ".weight"], G[name + ".bias"])
    h, r = relu_forward(h)
    return h, (bn, r)


def _norm_relu_backward(dout, cache, g, name):
    bn, r = cache
    dh = relu_backward(dout, r)
    if bn is not None:
        dh, g[name + ".weight"], g[name + ".bias"] = batchnorm_backward(dh, bn)
    return dh


def generate(G, z, conv=plain_conv):
    """x = G(z). z: (B, Z) -> x (B, 1, 28, 28) in [-1, 1], cache."""
    B = z.shape[0]
    C = G["deconv1.weight"].shape[0]
    fc_bias = G["fc.bias"] if "fc.bias" in G else get_xp(z).zeros(G["fc.weight"].shape[1], z.dtype)
    h, l0 = linear_forward(z, G["fc.weight"], fc_bias)                                    # (B, 2W 49)
    h, n0 = _norm_relu(G, "bn0", h.reshape(B, C, 7, 7))                                   # (B, 2W, 7, 7)
    h, d1 = conv.conv_transpose2d_forward(h, G["deconv1.weight"], G.get("deconv1.bias"), 2, 1)
    h, n1 = _norm_relu(G, "bn1", h)                                                       # (B, W, 14, 14)
    h, d2 = conv.conv_transpose2d_forward(h, G["deconv2.weight"], G["deconv2.bias"], 2, 1)  # (B, 1, 28, 28)
    x, t = tanh_forward(h)
    biases = [name for name in ("deconv1.bias", "fc.bias") if name in G]
    return x, (conv, l0, n0, d1, n1, d2, t, biases)


def generate_backward(dx, cache):
    """dx (B, 1, 28, 28) -> grads with the keys of G."""
    conv, l0, n0, d1, n1, d2, t, biases = cache
    g = {}
    dh, g["deconv2.weight"], g["deconv2.bias"] = conv.conv_transpose2d_backward(tanh_backward(dx, t), d2)
    dh = _norm_relu_backward(dh, n1, g, "bn1")
    dh, g["deconv1.weight"], db = conv.conv_transpose2d_backward(dh, d1)
    dh = _norm_relu_backward(dh, n0, g, "bn0")
    _, g["fc.weight"], dfc_bias = linear_backward(dh.reshape(dh.shape[0], -1), l0)
    for name, grad in (("deconv1.bias", db), ("fc.bias", dfc_bias)):
        if name in biases:
            g[name] = grad
    return g


def minibatch_stddev_forward(h, group):
    """h with one more channel: each group's average standard deviation across its images.

    h: (B, C, H, W), B a multiple of group M; images b = g M .. g M + M - 1 form group g
    s_g = mean over (C, H, W) of sqrt(var over the group's M images + 1e-8)          (B / M,)
    returns (B, C + 1, H, W) whose last channel is s_g at every pixel of every image of group g
    """
    B, C, H, W = h.shape
    if group < 1 or B % group:
        raise ValueError(f"mbstd_group must divide the batch: batch {B}, group {group}")
    xp = get_xp(h)
    hg = h.reshape(B // group, group, C, H, W)
    centred = hg - hg.mean(axis=1, keepdims=True)                          # (B/M, M, C, H, W)
    sigma = ((centred ** 2).mean(axis=1) + 1e-8) ** 0.5                    # (B/M, C, H, W)
    s = sigma.mean(axis=(1, 2, 3))                                         # (B/M,)
    channel = xp.broadcast_to(xp.repeat(s, group)[:, None, None, None], (B, 1, H, W))    # a view
    return xp.concatenate([h, channel], axis=1), (centred, sigma, group)


def minibatch_stddev_backward(dout, cache):
    """dout (B, C + 1, H, W) -> dh (B, C, H, W): the direct part plus the path through every s_g."""
    centred, sigma, group = cache
    n_groups, _, C, H, W = centred.shape
    ds = dout[:, C].reshape(n_groups, group, H * W).sum(axis=(1, 2))      # (B/M,)
    # s_g = mean_chw sigma, sigma = sqrt(mean_m centred^2 + eps): d sigma / d h_m = centred_m / (M sigma)
    dsigma = ds[:, None, None, None] / (C * H * W)                          # (B/M, 1, 1, 1)
    dh_s = centred * (dsigma / (group * sigma))[:, None]                    # (B/M, M, C, H, W)
    return dout[:, :C] + dh_s.reshape(n_groups * group, C, H, W)


def _conv_weight(D, state, name):
    """D's weight `name`, spectrally normalised when state has its vector: (w, new u, cache or None)."""
    w = D[name + ".weight"]
    if name not in state:
        return w, None, None
    W_sn, u, cache = spectral_norm_forward(w.reshape(w.shape[0], -1).T, state[name])   # (Cin KK, Cout)
    return W_sn.T.reshape(w.shape), u, cache


def discriminate(model, x, conv=plain_conv, mbstd_group=0):
    """Cascade scores of D. x (B, 1, 28, 28) -> scores (B, N), cache (cache["state"]: the new SN vectors).

    mbstd_group: M > 0 appends the minibatch standard deviation over groups of M images before conv2
    (conv2's weight must then have one more input channel, as init_dcgan makes it).
    """
    D, state = model["D"], model["D_state"]
    new_state, sn = {}, {}
    h = x
    convs = []
    mbstd = None
    for name in ("conv1", "conv2"):
        if name == "conv2":
            if mbstd_group:
                h, mbstd = minibatch_stddev_forward(h, mbstd_group)         # (B, W + 1, 14, 14)
            if D["conv2.weight"].shape[1] != h.shape[1]:                    # conv2d's own error, with the cause
                raise ValueError(f"conv2.weight takes {D['conv2.weight'].shape[1]} channels but gets "
                                 f"{h.shape[1]}: pass the mbstd_group the model was made with")
        w, u, sn[name] = _conv_weight(D, state, name)
        if u is not None:
            new_state[name] = u
        h, c = conv.conv2d_forward(h, w, D[name + ".bias"], 2, 1)          # (B, W, 14, 14), (B, 2W, 7, 7)
        h, a = leaky_relu_forward(h)
        convs.append((c, a))
    v = h.reshape(h.shape[0], -1)                                           # (B, 2W 49)
    scores, head = cascade_forward(v, D["cr_w"])                            # (B, N)
    return scores, {"conv": conv, "convs": convs, "sn": sn, "head": head, "h_shape": h.shape,
                    "mbstd": mbstd, "state": new_state}


def discriminate_backward(dscores, cache):
    """dscores (B, N) -> dx (B, 1, 28, 28), grads with the keys of model["D"]."""
    conv = cache["conv"]
    dv, dw_head = cascade_backward(dscores, cache["head"])
    grads = {"cr_w": dw_head.astype(dv.dtype)}
    dh = dv.reshape(cache["h_shape"])
    for name, (c, a) in reversed(list(zip(("conv1", "conv2"), cache["convs"]))):
        dh, dw, grads[name + ".bias"] = conv.conv2d_backward(leaky_relu_backward(dh, a), c)
        if cache["sn"][name] is not None:
            # forward was: w = (W_sn).T reshaped, W_sn = spectral_norm(W), W = w as (Cin KK, Cout)
            dW = spectral_norm_backward(dw.reshape(dw.shape[0], -1).T, cache["sn"][name])
            dw = dW.T.reshape(dw.shape)
        grads[name + ".weight"] = dw
        if name == "conv2" and cache["mbstd"] is not None:
            dh = minibatch_stddev_backward(dh, cache["mbstd"])
    return dh, grads


def d_step(model, opt_d, cfg, real, rng, conv=plain_conv):
    """One D update on a real batch (B, 1, 28, 28) and as many fakes; returns its loss and per-stage losses."""
    B = real.shape[0]
    fake, _ = generate(model["G"], _normal(rng, (B, cfg.z_dim), 1.0), conv)
    xp = get_xp(real)
    # real and fake halves each a whole number of mbstd groups: no group mixes the two
    scores, cache = discriminate(model, xp.concatenate([real, fake]), conv, cfg.mbstd_group)  # (2B, N)
    model["D_state"] = cache["state"]
    loss, lcache = cr_d_loss_forward(scores[:B], scores[B:], cfg.loss)
    ds_real, ds_fake = cr_d_loss_backward(1.0, lcache)
    _, grads = discriminate_backward(xp.concatenate([ds_real, ds_fake]).astype(scores.dtype), cache)
    opt_d.step(model["D"], grads)
    return float(loss), lcache["per_stage"]


def g_step(model, opt_g, cfg, rng, conv=plain_conv):
    """One G update through the (fixed) discriminator; returns G's loss."""
    fake, gcache = generate(model["G"], _normal(rng, (cfg.batch, cfg.z_dim), 1.0), conv)
    scores, dcache = discriminate(model, fake, conv, cfg.mbstd_group)
    model["D_state"] = dcache["state"]
    loss, lcache = cr_g_loss_forward(scores, cfg.loss, cfg.g_stages)
    dx, _ = discriminate_backward(cr_g_loss_backward(1.0, lcache).astype(scores.dtype), dcache)
    opt_g.step(model["G"], generate_backward(dx, gcache))
    return float(loss)


def sample_images(G, n, rng, z_dim, conv=plain_conv, batch=500):
    """n generated images (n, 1, 28, 28) float32 in [-1, 1]."""
    out = [generate(G, _normal(rng, (min(batch, n - i), z_dim), 1.0), conv)[0] for i in range(0, n, batch)]
    return get_xp(out[0]).concatenate(out)
