"""A small convolutional energy E(x) for 28 x 28 grey images, and its gradients for parameters and input.

    x (B, 1, 28, 28) in [0, 1]
    -> conv 4x4 stride 2 pad 1 to W x 14 x 14, Swish
    -> conv 4x4 stride 2 pad 1 to 2W x 7 x 7, Swish
    -> conv 3x3 stride 1 pad 1 to 2W x 7 x 7, Swish  = h (B, 2W, 7, 7)
    E(x) = <h, fc.weight> + fc.bias                     (B,)

Swish, not ReLU: Langevin dynamics follows dE/dx, which is piecewise constant through ReLUs. Spectral norm
(Miyato et al. 2018, as IGEBM trains with it) on the three convolutions, each weight seen as PyTorch's
(Cout, Cin KH KW) matrix (as gan/dcgan.py does for its discriminator): W_sn = W / sigma(W).

Training needs dE/dparams (`energy_backward`); sampling needs dE/dx only. Through a convolution
dx is the transposed convolution of dout with the same weight (gan/conv.py: the transposed
convolution is the adjoint of the convolution with respect to its input), so `energy_input_grad`
walks back with conv_transpose2d_forward and skips the weight gradients, a third of the backward
work. The convolutions come from a module passed in: `gan.conv` (the plain pairs, the default) or
`gan.conv_fast` (the tuned twin with the same signatures, chosen by the demo).
"""
import numpy as np

from gan import conv as plain_conv
from gan.nn import spectral_norm_backward, spectral_norm_forward, swish_backward, swish_forward
from smoothing import get_xp

# name, stride, padding of each convolution; the kernel size is in the weight's shape
LAYERS = (("conv1", 2, 1), ("conv2", 2, 1), ("conv3", 1, 1))


def energy_init(rng, width=16, spectral_norm=True, dtype=np.float32):
    """Parameters of the energy with W = width channels, and the spectral-norm state.

    Returns (params {"conv1.weight" (W, 1, 4, 4), "conv1.bias" (W,), "conv2.weight" (2W, W, 4, 4), ...,
    "fc.weight" (2W, 7, 7), "fc.bias" (1,)}, state {"conv1": u (Cin KH KW,), ...} or {} without it).
    """
    if isinstance(width, bool) or int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    W = int(width)
    shapes = {"conv1": (W, 1, 4, 4), "conv2": (2 * W, W, 4, 4), "conv3": (2 * W, 2 * W, 3, 3)}
    params, state = {}, {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:]))
        params[name + ".weight"] = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(dtype)
        params[name + ".bias"] = np.zeros(shape[0], dtype)
        if spectral_norm:
            u = rng.standard_normal(fan_in)
            state[name] = (u / np.sqrt((u * u).sum())).astype(dtype)
    params["fc.weight"] = (rng.standard_normal((2 * W, 7, 7)) / np.sqrt(2 * W * 49)).astype(dtype)
    params["fc.bias"] = np.zeros(1, dtype)
    return params, state


def normalized_weights(params, state):
    """The weights the network runs with: each conv weight divided by its spectral norm when state has its
    power-iteration vector. Returns (weights with params' keys, new state, sn caches)."""
    weights, new_state, sn = dict(params), {}, {}
    for name, _, _ in LAYERS:
        if name not in state:
            continue
        w = params[name + ".weight"]                                      # (Cout, Cin, KH, KW)
        W_sn, new_state[name], sn[name] = spectral_norm_forward(w.reshape(w.shape[0], -1).T, state[name])
        weights[name + ".weight"] = W_sn.T.reshape(w.shape)               # W_sn: (Cin KH KW, Cout)
    return weights, new_state, sn


def normalized_weights_backward(dweights, sn):
    """Gradients of the weights the network ran with -> gradients of params (the same keys)."""
    grads = dict(dweights)
    for name, cache in sn.items():
        dw = dweights[name + ".weight"]
        # forward was: w_run = (W / sigma(W)).T reshaped, W = w as (Cin KH KW, Cout)
        grads[name + ".weight"] = spectral_norm_backward(dw.reshape(dw.shape[0], -1).T, cache).T.reshape(dw.shape)
    return grads


def network_forward(weights, x, conv=plain_conv):
    """E(x) with the given (already normalised) weights.

    x: (B, 1, 28, 28)   returns (E (B,), cache)
    """
    if not hasattr(x, "ndim") or x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"x must have shape (B, 1, 28, 28), got {getattr(x, 'shape', type(x).__name__)}")
    h, layers = x, []
    for name, stride, padding in LAYERS:
        h, c = conv.conv2d_forward(h, weights[name + ".weight"], weights[name + ".bias"], stride, padding)
        h, a = swish_forward(h)                                           # (B, W, 14, 14) ... (B, 2W, 7, 7)
        layers.append((c, a))
    fc = weights["fc.weight"]                                             # (2W, 7, 7)
    E = (h * fc).sum(axis=(1, 2, 3)) + weights["fc.bias"][0]              # (B,)
    return E, {"conv": conv, "layers": layers, "h": h, "fc": fc, "weights": weights}


def network_backward(dE, cache):
    """dE (B,) -> dx (B, 1, 28, 28) and the gradients of the weights (their keys)."""
    conv, h, fc = cache["conv"], cache["h"], cache["fc"]
    g = {}
    # forward was: E = sum(h * fc) + fc.bias
    g["fc.weight"] = (dE[:, None, None, None] * h).sum(axis=0)            # (2W, 7, 7)
    g["fc.bias"] = dE.sum(keepdims=True)                                  # (1,)
    dh = dE[:, None, None, None] * fc                                     # (B, 2W, 7, 7)
    for (name, _, _), (c, a) in reversed(list(zip(LAYERS, cache["layers"]))):
        # forward was: h = swish(conv2d(h_in, w) + b)
        dh, g[name + ".weight"], g[name + ".bias"] = conv.conv2d_backward(swish_backward(dh, a), c)
    return dh, g


def network_input_grad(dE, cache):
    """The dx half of network_backward, by transposed convolutions: dE (B,) -> dx (B, 1, 28, 28)."""
    conv, weights = cache["conv"], cache["weights"]
    dh = dE[:, None, None, None] * cache["fc"]                            # (B, 2W, 7, 7)
    for (name, stride, padding), (_, a) in reversed(list(zip(LAYERS, cache["layers"]))):
        # forward was: h = conv2d(h_in, w) with h_in (B, Cin, H, W); its adjoint in h_in is
        # conv_transpose2d(dh, w), w read as (Cin_t = Cout, Cout_t = Cin, KH, KW)
        dz = swish_backward(dh, a)
        dh, _ = conv.conv_transpose2d_forward(dz, weights[name + ".weight"], None, stride, padding)
    return dh


def energy_forward(params, x, state=None, conv=plain_conv):
    """E(x) at params, with spectral norm when state holds its vectors.

    x: (B, 1, 28, 28)   returns (E (B,), cache); cache["state"] holds the updated power-iteration vectors.
    """
    weights, new_state, sn = normalized_weights(params, state or {})
    E, cache = network_forward(weights, x, conv)
    cache.update(sn=sn, state=new_state)
    return E, cache


def energy_backward(dE, cache):
    """dE (B,) gradient of a loss with respect to E -> (dx (B, 1, 28, 28), grads with params' keys)."""
    dx, dweights = network_backward(dE, cache)
    return dx, normalized_weights_backward(dweights, cache["sn"])


def conv_energy(params, state=None, conv=plain_conv):
    """The callable a sampler takes: x (B, 784) -> (E (B,), dE/dx (B, 784)), one fixed energy.

    The spectral norm is taken once, from `state`, for every call: the chain samples one energy.
    """
    weights, _, _ = normalized_weights(params, state or {})

    def energy(x):
        if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != 784:
            raise ValueError(f"x must have shape (B, 784), got {getattr(x, 'shape', type(x).__name__)}")
        E, cache = network_forward(weights, x.reshape(-1, 1, 28, 28), conv)
        # upstream gradient dE/dE = 1 for every chain makes dx the input gradient
        dx = network_input_grad(get_xp(E).ones_like(E), cache)
        return E, dx.reshape(x.shape[0], 784)
    return energy
