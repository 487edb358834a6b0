"""A neural energy U(x) = MLP(x), built from the small networks of `gan`, and its two gradients.

    U(x) = W2^T act(W1^T act(W0^T x + b0) + b1) + b2       x: (B, D) -> U: (B,)

The activation is smooth (Swish by default): Langevin dynamics follows dU/dx, and a ReLU network
has a piecewise-constant input gradient. Optional spectral normalisation bounds each layer's
Lipschitz constant (IGEBM trains with it). Training needs dU/dparams (`energy_backward`, which is
gan's `mlp_backward`); sampling needs only dU/dx (`energy_input_grad` walks the same cache and
skips the weight gradients, which would double the work of every Langevin step).
"""
import numpy as np

from gan.mlp import mlp_backward, mlp_forward, mlp_init
from gan.nn import ACTIVATIONS, spectral_norm_forward
from smoothing import get_xp

from .swish_energy import swish_energy_and_input_grad


def neural_energy_init(rng, dim=2, hidden=(128, 128), spectral_norm=False, dtype=np.float64):
    """Parameters of an MLP energy with widths [dim, *hidden, 1].

    Returns (params {"W0", "b0", ...}, state {"u0", ...} or {} without spectral norm).
    """
    params, state = mlp_init([int(dim), *[int(h) for h in hidden], 1], rng, spectral_norm=spectral_norm)
    return ({k: v.astype(dtype) for k, v in params.items()},
            {k: v.astype(dtype) for k, v in state.items()})


def _dim(params):
    return params["W0"].shape[0]


def energy_forward(params, x, state=None, activation="swish"):
    """U(x) for a batch.

    x: (B, D)   returns (U (B,), cache); cache["state"] holds the updated power-iteration vectors.
    """
    D = _dim(params)
    if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != D:
        raise ValueError(f"x must have shape (B, {D}), got {getattr(x, 'shape', type(x).__name__)}")
    out, cache = mlp_forward(params, x, activation=activation, state=state)   # (B, 1)
    return out[:, 0], cache


def energy_backward(dU, cache):
    """dU: (B,) gradient of a loss with respect to U -> (dx (B, D), grads with params' keys)."""
    return mlp_backward(dU[:, None], cache)


def energy_input_grad(dU, cache):
    """The dx half of energy_backward: dU (B,) -> dx (B, D), no weight gradients.

    Each layer was h_out = act(h_in @ W + b) (the last without act): going back,
    dh <- act_backward(dh), then dh <- dh @ W.T, the same lines as gan's linear_backward.
    """
    dh = dU[:, None]                                               # (B, 1)
    for _sn_cache, (_h_in, W), act, act_cache in reversed(cache["layers"]):
        if act is not None:
            dh = ACTIVATIONS[act][1](dh, act_cache)                # (B, H)
        dh = dh @ W.T                                              # forward was: h_in @ W + b
    return dh


def neural_energy(params, state=None, activation="swish", fused=False):
    """The callable a sampler takes: x (B, D) -> (U (B,), dU/dx (B, D)), at the parameters of now.

    With spectral norm every layer uses W / sigma(W) from the given `state` on every call (one fixed
    energy for the whole chain). By default it runs gan's mlp_forward and energy_input_grad, the plain
    pairs; fused=True (Swish only) asks for the tuned twin, ebm.swish_energy's
    swish_energy_and_input_grad (the same numbers to rounding, tested), as the demo and the benchmark do.
    """
    D, n = _dim(params), len(params) // 2
    if fused and activation == "swish":
        weights = [params[f"W{i}"] for i in range(n)]
        if state:
            weights = [spectral_norm_forward(W, state[f"u{i}"])[0] for i, W in enumerate(weights)]
        biases = [params[f"b{i}"] for i in range(n)]

    def energy(x):
        if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != D:
            raise ValueError(f"x must have shape (B, {D}), got {getattr(x, 'shape', type(x).__name__)}")
        if fused and activation == "swish":
            return swish_energy_and_input_grad(weights, biases, x)
        U, cache = energy_forward(params, x, state, activation)
        # upstream gradient dU/dU = 1 for every chain makes dx the input gradient
        return U, energy_input_grad(get_xp(U).ones_like(U), cache)
    return energy
