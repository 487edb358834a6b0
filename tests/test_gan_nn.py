"""gan/nn.py, gan/mlp.py, gan/optim.py: every backward by finite differences, SN and Adam against PyTorch."""
import numpy as np
import pytest

from gan.mlp import mlp_backward, mlp_forward, mlp_init
from gan.nn import (ACTIVATIONS, linear_backward, linear_forward, spectral_norm_backward,
                    spectral_norm_forward)
from gan.optim import Adam
from tests.gradcheck import check_grad


def test_linear_gradcheck():
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)

    def analytic(dout):
        return list(linear_backward(dout, linear_forward(x, W, b)[1]))

    check_grad(lambda x, W, b: linear_forward(x, W, b)[0], [x, W, b], analytic, rng,
               names=["x", "W", "b"])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5))
    x[np.abs(x) < 0.05] = 0.3                             # stay away from the kink of relu / leaky relu
    fwd, bwd = ACTIVATIONS[name]
    check_grad(lambda x: fwd(x)[0], [x], lambda d: [bwd(d, fwd(x)[1])], rng, names=[name])


def test_activation_values():
    x = np.array([[-2.0, -0.5, 0.0, 1.5]])
    np.testing.assert_allclose(ACTIVATIONS["relu"][0](x)[0], [[0, 0, 0, 1.5]])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"][0](x)[0], [[-0.4, -0.1, 0, 1.5]])
    np.testing.assert_allclose(ACTIVATIONS["swish"][0](x)[0], x / (1 + np.exp(-x)))
    np.testing.assert_allclose(ACTIVATIONS["tanh"][0](x)[0], np.tanh(x))


def test_spectral_norm_converges_to_largest_singular_value():
    rng = np.random.default_rng(2)
    W, u = rng.standard_normal((7, 4)), rng.standard_normal(7)
    u0 = u.copy()
    W_sn, u_new, _ = spectral_norm_forward(W, u, n_power_iterations=200)
    np.testing.assert_array_equal(u, u0, err_msg="u must not be modified in place")
    np.testing.assert_allclose(np.linalg.svd(W_sn, compute_uv=False)[0], 1.0, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(u_new), 1.0, rtol=1e-12)


def test_spectral_norm_gradcheck_u_v_constant():
    """Finite differences of W / (v @ W @ u) with u, v frozen at the values forward used."""
    rng = np.random.default_rng(3)
    W, u = rng.standard_normal((5, 3)), rng.standard_normal(5)
    _, _, cache = spectral_norm_forward(W, u)
    _, uc, vc, _ = cache
    check_grad(lambda W: W / (uc @ W @ vc), [W], lambda d: [spectral_norm_backward(d, cache)], rng,
               names=["W"])


def test_spectral_norm_gradient_is_exact_at_convergence():
    """At a converged power iteration d sigma_max / dW = outer(v, u): the full map has the same gradient."""
    rng = np.random.default_rng(4)
    W, u = rng.standard_normal((4, 3)), rng.standard_normal(4)
    u_conv = spectral_norm_forward(W, u, 500)[1]
    _, _, cache = spectral_norm_forward(W, u_conv, 1)
    check_grad(lambda W: spectral_norm_forward(W, u_conv, 300)[0], [W],
               lambda d: [spectral_norm_backward(d, cache)], rng, names=["W"], rtol=1e-5, atol=1e-7)


def test_spectral_norm_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for spectral norm")
    rng = np.random.default_rng(5)
    W, u = rng.standard_normal((6, 4)), rng.standard_normal(6)
    u /= np.linalg.norm(u)
    W_sn, u_new, cache = spectral_norm_forward(W, u)
    lin = torch.nn.Linear(6, 4, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W.T))
    lin = torch.nn.utils.parametrizations.spectral_norm(lin)
    with torch.no_grad():
        lin.parametrizations.weight.original.copy_(torch.from_numpy(W.T))
        lin.parametrizations.weight[0]._v.copy_(torch.from_numpy(u))     # torch's _v is our u
    lin.train()
    w_t = lin.weight                                      # runs one power iteration, like ours
    np.testing.assert_allclose(w_t.detach().numpy().T, W_sn, rtol=1e-12, err_msg="W_sn")
    np.testing.assert_allclose(lin.parametrizations.weight[0]._v.numpy(), u_new, rtol=1e-12,
                               err_msg="u after one power iteration")
    dW_sn = rng.standard_normal(W.shape)
    (w_t * torch.from_numpy(dW_sn.T)).sum().backward()
    np.testing.assert_allclose(spectral_norm_backward(dW_sn, cache),
                               lin.parametrizations.weight.original.grad.numpy().T, rtol=1e-10,
                               err_msg="dW through sigma")


def test_spectral_norm_bad_input():
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match="u must have shape"):
        spectral_norm_forward(W, np.ones(2))
    with pytest.raises(ValueError, match="nonzero"):
        spectral_norm_forward(np.zeros((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="W has 3 rows"):
        linear_forward(np.ones((2, 4)), W, np.zeros(2))


@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("final", [None, "tanh"])
def test_mlp_gradcheck(sn, final):
    """With SN the power iteration starts converged, where the u, v-constant gradient is exact."""
    rng = np.random.default_rng(6)
    params, state = mlp_init([3, 5, 4, 2], rng, spectral_norm=sn)
    assert set(state) == ({"u0", "u1", "u2"} if sn else set())
    state = {k: spectral_norm_forward(params["W" + k[1:]], u, 500)[1] for k, u in state.items()}
    x = rng.standard_normal((4, 3))
    names = sorted(params)

    def f(x, *arrays):
        return mlp_forward(dict(zip(names, arrays)), x, "swish", state, final)[0]

    def analytic(dout):
        _, cache = mlp_forward(params, x, "swish", state, final)
        assert set(cache["state"]) == set(state)
        dx, grads = mlp_backward(dout, cache)
        assert set(grads) == set(params)
        return [dx] + [grads[k] for k in names]

    check_grad(f, [x] + [params[k] for k in names], analytic, rng, names=["x"] + names,
               rtol=1e-5, atol=1e-7)


def test_mlp_bad_input():
    rng = np.random.default_rng(7)
    params, _ = mlp_init([2, 3, 1], rng)
    with pytest.raises(ValueError, match="activation"):
        mlp_forward(params, np.ones((1, 2)), activation="gelu")
    with pytest.raises(ValueError, match="x has 3 columns"):
        mlp_forward(params, np.ones((1, 3)))
    with pytest.raises(ValueError, match="sizes"):
        mlp_init([2], rng)


def test_adam_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for Adam")
    rng = np.random.default_rng(8)
    params = {"W0": rng.standard_normal((3, 2)), "b0": rng.standard_normal(2)}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    ours = Adam(params, lr=0.01, betas=(0.5, 0.999))
    ref = torch.optim.Adam(list(tparams.values()), lr=0.01, betas=(0.5, 0.999), eps=1e-8)
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        ours.step(params, grads)
        for k, p in tparams.items():
            p.grad = torch.from_numpy(grads[k])
        ref.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=f"params[{k!r}] after 5 Adam steps")


def test_adam_fits_a_line():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 1))
    y = 3.0 * x - 1.0
    params, _ = mlp_init([1, 1], rng)
    opt = Adam(params, lr=0.05, betas=(0.9, 0.999))
    for _ in range(500):
        out, cache = mlp_forward(params, x)
        _, grads = mlp_backward(2 * (out - y) / len(x), cache)
        opt.step(params, grads)
    np.testing.assert_allclose([params["W0"][0, 0], params["b0"][0]], [3.0, -1.0], atol=1e-3)
    with pytest.raises(ValueError, match="grads must have keys"):
        opt.step(params, {"W0": grads["W0"]})
