"""Float64 central-difference gradient checks against a random upstream gradient.

With a random dout, the scalar checked is L = sum(dout * f(x)); its gradient is exactly what a
backward function receiving dout must return. An all-ones dout would only test the gradient of
sum(f(x)) and miss errors that cancel across outputs.
"""
import numpy as np


def numerical_grad(f, inputs, dout, eps=1e-6):
    """Central differences of L = sum(dout * f(*inputs)) with respect to every input array.

    f: callable taking the arrays in `inputs` and returning one array shaped like dout
    inputs: list of float64 arrays (perturbed in place, then restored)
    """
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = np.sum(dout * f(*inputs))
            flat[i] = old - eps
            down = np.sum(dout * f(*inputs))
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def check_grad(f, inputs, analytic, rng, names=None, eps=1e-6, rtol=1e-6, atol=1e-8):
    """Assert that `analytic(dout)` equals the numerical gradient of f at `inputs`.

    f: callable(*inputs) -> array
    inputs: list of arrays (converted to float64)
    analytic: callable(dout) -> list of gradients, one per input, same shapes
    rng: numpy Generator used to draw dout ~ N(0, 1)
    """
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    out = np.asarray(f(*inputs))
    if out.dtype != np.float64:
        raise AssertionError(f"f returned {out.dtype}, expected float64 for a float64 check")
    dout = rng.standard_normal(out.shape)
    expected = numerical_grad(f, inputs, dout, eps)
    got = analytic(dout)
    if len(got) != len(inputs):
        raise AssertionError(f"analytic returned {len(got)} gradients for {len(inputs)} inputs")
    names = names or [f"input {i}" for i in range(len(inputs))]
    for name, g, e in zip(names, got, expected):
        g = np.asarray(g)
        if g.shape != e.shape:
            raise AssertionError(f"gradient of {name}: shape {g.shape}, expected {e.shape}")
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")
