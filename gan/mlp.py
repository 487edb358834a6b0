"""A multilayer perceptron built from the pairs in gan/nn.py, with optional spectral normalization.

params = {"W0", "b0", "W1", "b1", ...}; layer i computes h = act(h @ Wi + bi), with no activation after
the last layer unless `final_activation` names one. With spectral normalization every Wi is divided by
its estimated largest singular value; the power-iteration vectors live in `state` = {"u0", "u1", ...}
and the updated ones come back as cache["state"] (keep them for the next call).
"""
import numpy as np

from smoothing import get_xp

from .nn import (ACTIVATIONS, linear_backward, linear_forward, spectral_norm_backward,
                 spectral_norm_forward)


def mlp_init(sizes, rng, spectral_norm=False):
    """Weights for an MLP with layer widths `sizes` = [Din, H1, ..., Dout].

    Wi: (sizes[i], sizes[i+1]) and bi: (sizes[i+1],) ~ U(-1/sqrt(sizes[i]), 1/sqrt(sizes[i])), PyTorch's
    nn.Linear default. Nonzero biases matter on 2-D data: with zero biases a ReLU net is positively
    homogeneous (f(a x) = a f(x)) and its landscape starts as rays from the origin.
    Returns (params, state); state holds unit vectors ui: (sizes[i],) when spectral_norm, else {}.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
    params, state = {}, {}
    for i, (din, dout) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / np.sqrt(din)
        params[f"W{i}"] = rng.uniform(-bound, bound, (din, dout))
        params[f"b{i}"] = rng.uniform(-bound, bound, dout)
        if spectral_norm:
            u = rng.standard_normal(din)
            state[f"u{i}"] = u / get_xp(u).linalg.norm(u)
    return params, state


def _n_layers(params):
    n = len(params) // 2
    if sorted(params) != sorted([f"W{i}" for i in range(n)] + [f"b{i}" for i in range(n)]):
        raise ValueError(f"params must have keys W0, b0, ..., W{n - 1}, b{n - 1}; got {sorted(params)}")
    return n


def mlp_forward(params, x, activation="leaky_relu", state=None, final_activation=None):
    """Run the MLP on a batch.

    x: (B, Din)   returns (out (B, Dout), cache)
    state: None / {} for plain weights, or {"ui": (Din_i,)} for spectral normalization of every layer.
    cache["state"] is the updated state (the new power-iteration vectors); the input state is untouched.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if final_activation is not None and final_activation not in ACTIVATIONS:
        raise ValueError(f"final_activation must be None or one of {sorted(ACTIVATIONS)}, "
                         f"got {final_activation!r}")
    n = _n_layers(params)
    state = state or {}
    new_state, layers = {}, []
    h = x
    for i in range(n):
        W, sn_cache = params[f"W{i}"], None
        if state:
            W, new_state[f"u{i}"], sn_cache = spectral_norm_forward(W, state[f"u{i}"])
        h, lin_cache = linear_forward(h, W, params[f"b{i}"])       # (B, H_i)
        act = activation if i < n - 1 else final_activation
        act_cache = None
        if act is not None:
            h, act_cache = ACTIVATIONS[act][0](h)
        layers.append((sn_cache, lin_cache, act, act_cache))
    return h, {"layers": layers, "state": new_state}


def mlp_backward(dout, cache):
    """dout: (B, Dout) -> (dx (B, Din), grads) with grads.keys() == params.keys()."""
    grads = {}
    dh = dout
    for i in reversed(range(len(cache["layers"]))):
        sn_cache, lin_cache, act, act_cache = cache["layers"][i]
        if act is not None:
            dh = ACTIVATIONS[act][1](dh, act_cache)
        dh, dW, grads[f"b{i}"] = linear_backward(dh, lin_cache)
        # with spectral norm the layer used W / sigma(W): chain through the normalization
        grads[f"W{i}"] = dW if sn_cache is None else spectral_norm_backward(dW, sn_cache)
    return dh, grads


def mlp_to(params, xp):
    """A copy of params (or state) as arrays of module xp (numpy or cupy)."""
    return {k: xp.asarray(v) for k, v in params.items()}

