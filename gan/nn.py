"""Small layers as forward/backward pairs: linear, four activations, and spectral normalization.

Every `*_forward` returns (out, cache) and its `*_backward(dout, cache)` returns the gradients of the
inputs (and parameters) in the same order. Shapes use B for the batch, Din / Dout for widths.
`ebm` imports these pairs too, so their names and signatures stay as they are.
"""
import numpy as np

from smoothing import get_xp, sigmoid


def _check_2d(a, name):
    if not hasattr(a, "ndim") or a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got {getattr(a, 'shape', type(a).__name__)}")


def linear_forward(x, W, b):
    """Affine map y = x @ W + b.

    x: (B, Din)   W: (Din, Dout)   b: (Dout,)   returns y: (B, Dout)
    """
    _check_2d(x, "x")
    _check_2d(W, "W")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"x has {x.shape[1]} columns but W has {W.shape[0]} rows (W: (Din, Dout))")
    if b.shape != (W.shape[1],):
        raise ValueError(f"b must have shape ({W.shape[1]},), got {b.shape}")
    return x @ W + b, (x, W)


def linear_backward(dout, cache):
    """dout: (B, Dout) -> dx (B, Din), dW (Din, Dout), db (Dout,)."""
    x, W = cache
    # forward was: y = x @ W + b
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def relu_forward(x):
    """y = max(x, 0), elementwise."""
    mask = x > 0
    return x * mask, mask


def relu_backward(dout, cache):
    # forward was: y = x * (x > 0); the kink at 0 gets gradient 0
    return dout * cache


def leaky_relu_forward(x, slope=0.2):
    """y = x for x > 0, slope * x otherwise."""
    mask = x > 0
    return get_xp(x).where(mask, x, slope * x), (mask, slope)


def leaky_relu_backward(dout, cache):
    mask, slope = cache
    # forward was: y = x where x > 0, slope * x elsewhere
    return get_xp(dout).where(mask, dout, slope * dout)


def tanh_forward(x):
    """y = tanh(x)."""
    y = get_xp(x).tanh(x)
    return y, y


def tanh_backward(dout, cache):
    # d tanh / dx = 1 - tanh^2
    return dout * (1.0 - cache * cache)


def swish_forward(x):
    """y = x * sigmoid(x): smooth everywhere, which Langevin dynamics on an energy needs."""
    s = sigmoid(x)
    return x * s, (x, s)


def swish_backward(dout, cache):
    x, s = cache
    # forward was: y = x * s(x); dy/dx = s + x * s * (1 - s)
    return dout * (s * (1.0 + x * (1.0 - s)))


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "swish": (swish_forward, swish_backward),
}


def _normalize(a, eps=1e-12):
    return a / max(float((a * a).sum()) ** 0.5, eps)


def spectral_norm_forward(W, u, n_power_iterations=1):
    """W divided by an estimate of its largest singular value (Miyato et al. 2018).

    W: (Din, Dout)   u: (Din,) the persistent power-iteration vector from the previous call
    Power iteration:  v = normalize(W.T @ u)  (Dout,),  u = normalize(W @ v)  (Din,)
    sigma = u @ W @ v,  W_sn = W / sigma   (u, v estimate the top left / right singular vectors).
    Returns (W_sn, u_new, cache); u is not modified, the caller keeps u_new for the next call.
    This is PyTorch's update order: its (out, in) weight is our W.T, its _v is our u, its _u our v.
    """
    _check_2d(W, "W")
    if getattr(u, "shape", None) != (W.shape[0],):
        raise ValueError(f"u must have shape ({W.shape[0]},) for W of shape {W.shape}, "
                         f"got {getattr(u, 'shape', None)}")
    if int(n_power_iterations) < 1:
        raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
    for _ in range(int(n_power_iterations)):
        v = _normalize(W.T @ u)                           # (Dout,)
        u = _normalize(W @ v)                             # (Din,)
    sigma = u @ W @ v
    if not (float(sigma) > 0 and np.isfinite(float(sigma))):
        raise ValueError(f"spectral norm of W is {float(sigma)}: W must be finite and nonzero")
    return W / sigma, u, (W, u, v, sigma)


def spectral_norm_backward(dW_sn, cache):
    """Gradient through W_sn = W / sigma with sigma = u @ W @ v, u and v held constant.

    dW_sn: (Din, Dout) -> dW: (Din, Dout)
    dW = dW_sn / sigma - (sum(dW_sn * W) / sigma^2) * outer(u, v)
    """
    W, u, v, sigma = cache
    # d sigma / dW = outer(u, v) when u, v do not move (exact at a converged power iteration)
    xp = get_xp(W)
    return dW_sn / sigma - ((dW_sn * W).sum() / (sigma * sigma)) * xp.outer(u, v)
