"""The neural energy: input and parameter gradients, the fused sampler path, CD training, the demo."""
import json

import numpy as np
import pytest

from ebm.__main__ import main
from ebm.data import eight_gaussians
from ebm.neural import (energy_backward, energy_forward, energy_input_grad, neural_energy,
                        neural_energy_init)
from ebm.samplers import ula
from ebm.train import TrainConfig, cd_loss_backward, cd_loss_forward, train
from tests.gradcheck import check_grad


def _net(seed=0, spectral_norm=False, hidden=(6, 5), dim=2):
    rng = np.random.default_rng(seed)
    params, state = neural_energy_init(rng, dim=dim, hidden=hidden, spectral_norm=spectral_norm)
    # nonzero biases so the check does not sit on a symmetric point
    for k in params:
        if k.startswith("b"):
            params[k] = 0.3 * rng.standard_normal(params[k].shape)
    return params, state, rng


@pytest.mark.parametrize("activation", ["swish", "tanh"])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_input_gradient_matches_finite_differences(activation, spectral_norm):
    params, state, rng = _net(1, spectral_norm)
    x = rng.standard_normal((5, 2))

    def f(x):
        return energy_forward(params, x, state, activation)[0]

    def analytic(dout):
        _, cache = energy_forward(params, x, state, activation)
        dx_only = energy_input_grad(dout, cache)
        dx, _ = energy_backward(dout, cache)
        np.testing.assert_allclose(dx_only, dx, rtol=1e-12, atol=1e-14, err_msg="dx two ways")
        return [dx_only]

    check_grad(f, [x], analytic, rng, names=[f"dU/dx ({activation}, sn={spectral_norm})"])


@pytest.mark.parametrize("activation", ["swish", "tanh"])
def test_parameter_gradients_match_finite_differences(activation):
    params, state, rng = _net(2)
    x = rng.standard_normal((7, 2))
    names = sorted(params)

    def f(*arrays):
        return energy_forward(dict(zip(names, arrays)), x, state, activation)[0]

    def analytic(dout):
        _, grads = energy_backward(dout, energy_forward(params, x, state, activation)[1])
        assert sorted(grads) == names
        return [grads[k] for k in names]

    check_grad(f, [params[k] for k in names], analytic, rng, names=[f"dU/d{k}" for k in names])


def test_cd_loss_gradient_matches_finite_differences():
    params, _, rng = _net(3)
    x_pos, x_neg = rng.standard_normal((6, 2)), 2 * rng.standard_normal((5, 2))
    names = sorted(params)

    def f(*arrays):
        return np.array(cd_loss_forward(dict(zip(names, arrays)), x_pos, x_neg, 0.7)[0])

    def analytic(dout):
        grads, _ = cd_loss_backward(cd_loss_forward(params, x_pos, x_neg, 0.7)[1])
        return [float(dout) * grads[k] for k in names]

    check_grad(f, [params[k] for k in names], analytic, rng, names=[f"dL/d{k}" for k in names])


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_fused_swish_path_equals_the_plain_pairs(spectral_norm):
    params, state, rng = _net(4, spectral_norm, hidden=(32, 16, 8))
    x = 3 * rng.standard_normal((50, 2))
    U1, g1 = neural_energy(params, state, fused=True)(x)
    U2, g2 = neural_energy(params, state, fused=False)(x)
    np.testing.assert_allclose(U1, U2, rtol=1e-12, atol=1e-12, err_msg="U fused vs plain")
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-12, err_msg="dU/dx fused vs plain")
    # float32 and very negative pre-activations (exp(-z) overflows to inf): finite, no warning
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    s32 = {k: v.astype(np.float32) for k, v in state.items()}
    for fused in (True, False):
        U, g = neural_energy(p32, s32, fused=fused)((300 * x).astype(np.float32))
        assert U.dtype == np.float32 and np.isfinite(U).all() and np.isfinite(g).all()
    U32, g32 = neural_energy(p32, s32, fused=True)(x.astype(np.float32))
    np.testing.assert_allclose(U32, U1, rtol=1e-4, atol=1e-4, err_msg="U float32")
    np.testing.assert_allclose(g32, g1, rtol=1e-3, atol=1e-4, err_msg="dU/dx float32")


def test_neural_energy_matches_torch_autograd():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the MLP gradients")
    params, state, rng = _net(5, hidden=(16, 12))
    x = rng.standard_normal((9, 2))
    dout = rng.standard_normal(9)
    U, cache = energy_forward(params, x, state)
    dx, grads = energy_backward(dout, cache)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(x, requires_grad=True)
    h = tx
    for i in range(3):
        h = h @ tp[f"W{i}"] + tp[f"b{i}"]
        if i < 2:
            h = torch.nn.functional.silu(h)
    (h[:, 0] * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(U, h[:, 0].detach().numpy(), rtol=1e-12, atol=1e-12, err_msg="U")
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="dU/dx")
    for k in params:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"dU/d{k}")


def test_bad_input_and_non_finite_network():
    params, state, rng = _net(6)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        neural_energy(params)(np.zeros((4, 3)))
    params["W1"][0, 0] = np.nan
    with pytest.raises(ValueError, match="sampling stopped at step 0"):
        ula(neural_energy(params), np.zeros((4, 2)), 0.01, 5, rng)


def test_contrastive_divergence_lowers_the_energy_of_data():
    rng = np.random.default_rng(7)
    data = eight_gaussians(2000, rng)
    cfg = TrainConfig(hidden=(32, 32), batch=128, iters=150, lr=3e-3, lam=0.1, langevin_steps=10,
                      buffer_size=2000)
    params, state, buffer, history = train(data, cfg, rng, log_every=50)
    assert len(history) == 3 and all(np.isfinite(h["loss"]) for h in history)
    U_data = energy_forward(params, data, state)[0].mean()
    U_noise = energy_forward(params, buffer.noise(2000, rng), state)[0].mean()
    assert U_data < U_noise - 0.5, (U_data, U_noise)
    # the ring's hole: the centre has higher energy than the data
    assert energy_forward(params, np.zeros((1, 2)), state)[0][0] > U_data


def test_demo_quick_prints_json_last(tmp_path, capsys):
    assert main(["--quick", "--iters", "40", "--grid", "120", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["iters"] == 40 and np.isfinite(summary["test_nll_model"])
    assert 2.5 < summary["test_nll_kde"] < 3.5 < summary["test_nll_uniform"]
    assert summary["png"] is None or summary["png"] == str(tmp_path / "8gaussians-quick.png")
    assert summary["png"] is None or (tmp_path / "8gaussians-quick.png").exists()
