"""Gradient checks of the triple extractor's ops and of its whole loss, in float64."""
import numpy as np
import pytest

from minibert.config import BertConfig
from minibert.layers import layernorm_forward
from minibert.triple_extraction.model import init_extractor_params, loss_backward, loss_forward
from minibert.triple_extraction.ops import (conditional_layernorm_backward, conditional_layernorm_forward,
                                            powered_bce_backward, powered_bce_forward,
                                            powered_sigmoid_backward, powered_sigmoid_forward,
                                            subject_vector_backward, subject_vector_forward)
from tests.gradcheck import check_grad


def _cln_inputs(rng, B=2, T=4, C=5, D=6):
    return [rng.standard_normal((B, T, C)), rng.standard_normal((B, D)), 1 + 0.1 * rng.standard_normal(C),
            0.1 * rng.standard_normal(C), 0.3 * rng.standard_normal((D, C)), 0.3 * rng.standard_normal((D, C))]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cln_equals_layernorm_when_condition_is_zero(seed):
    rng = np.random.default_rng(seed)
    x, v, gamma, beta, Wg, Wb = _cln_inputs(rng)
    plain = layernorm_forward(x, gamma, beta)[0]
    zero_v = conditional_layernorm_forward(x, np.zeros_like(v), gamma, beta, Wg, Wb)[0]
    zero_w = conditional_layernorm_forward(x, v, gamma, beta, np.zeros_like(Wg), np.zeros_like(Wb))[0]
    np.testing.assert_allclose(zero_v, plain, rtol=0, atol=1e-14, err_msg="CLN with v = 0")
    np.testing.assert_allclose(zero_w, plain, rtol=0, atol=1e-14, err_msg="CLN with W_g = W_b = 0")
    # and a nonzero condition really changes the output
    assert np.abs(conditional_layernorm_forward(x, v, gamma, beta, Wg, Wb)[0] - plain).max() > 1e-2


def test_cln_gradient():
    rng = np.random.default_rng(3)
    inputs = _cln_inputs(rng)

    def f(*a):
        return conditional_layernorm_forward(*a)[0]

    def analytic(dout):
        return conditional_layernorm_backward(dout, conditional_layernorm_forward(*inputs)[1])

    check_grad(f, inputs, analytic, rng, names=["x", "v", "gamma", "beta", "W_g", "W_b"])


def test_cln_matches_torch():
    torch = pytest.importorskip("torch", reason="torch is the autograd reference")
    rng = np.random.default_rng(4)
    arrays = _cln_inputs(rng)
    out, cache = conditional_layernorm_forward(*arrays)
    dout = rng.standard_normal(out.shape)
    ours = conditional_layernorm_backward(dout, cache)
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    x, v, gamma, beta, Wg, Wb = t
    y = torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=1e-12)
    y = y * (gamma + v @ Wg)[:, None] + (beta + v @ Wb)[:, None]
    y.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg="CLN output")
    for name, g, ref in zip(["x", "v", "gamma", "beta", "W_g", "W_b"], ours, t):
        np.testing.assert_allclose(g, ref.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=f"d{name}")


def test_cln_refuses_bad_shapes():
    rng = np.random.default_rng(5)
    x, v, gamma, beta, Wg, Wb = _cln_inputs(rng)
    with pytest.raises(ValueError, match="Wg and Wb"):
        conditional_layernorm_forward(x, v, gamma, beta, Wg[:-1], Wb)
    with pytest.raises(ValueError, match="same B"):
        conditional_layernorm_forward(x, v[:1], gamma, beta, Wg, Wb)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_powered_sigmoid_gradient(n):
    rng = np.random.default_rng(n)
    z = rng.standard_normal((3, 4, 2)) * 2
    np.testing.assert_allclose(powered_sigmoid_forward(z, n)[0], (1 / (1 + np.exp(-z))) ** n, rtol=1e-13)
    check_grad(lambda z: powered_sigmoid_forward(z, n)[0], [z],
               lambda d: [powered_sigmoid_backward(d, powered_sigmoid_forward(z, n)[1])], rng, names=["z"])


@pytest.mark.parametrize("n", [2, 4])
def test_powered_bce_value_and_gradient(n):
    rng = np.random.default_rng(10 + n)
    z = rng.standard_normal((2, 5, 3, 2)) * 2
    y = (rng.random(z.shape) < 0.3).astype(float)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], float)
    loss, cache = powered_bce_forward(z, y, mask, n)
    p = (1 / (1 + np.exp(-z))) ** n
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = (bce.sum(axis=(2, 3)) / 2 * mask).sum() / mask.sum()
    np.testing.assert_allclose(loss, expected, rtol=1e-12, err_msg="masked BCE of sigmoid**n")
    dz = powered_bce_backward(1.0, cache)
    assert np.all(dz[0, 3:] == 0), "padding positions must get no gradient"
    check_grad(lambda z: np.array(powered_bce_forward(z, y, mask, n)[0]), [z],
               lambda d: [powered_bce_backward(float(d), powered_bce_forward(z, y, mask, n)[1])], rng,
               names=["z"])


def test_powered_bce_is_finite_for_large_logits():
    z = np.array([[[60.0, -60.0], [-800.0, 800.0]]])
    y = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    loss, cache = powered_bce_forward(z, y, np.ones((1, 2)), 4)
    assert 0 <= loss < 1e-20
    assert np.all(np.isfinite(powered_bce_backward(1.0, cache)))


def test_subject_vector_gradient_with_start_equal_end():
    rng = np.random.default_rng(20)
    h = rng.standard_normal((3, 6, 4))
    starts, ends = np.array([1, 4, 0]), np.array([3, 4, 5])
    v = subject_vector_forward(h, starts, ends)[0]
    np.testing.assert_array_equal(v[1], np.concatenate([h[1, 4], h[1, 4]]))
    check_grad(lambda h: subject_vector_forward(h, starts, ends)[0], [h],
               lambda d: [subject_vector_backward(d, subject_vector_forward(h, starts, ends)[1])], rng,
               names=["h"])
    with pytest.raises(ValueError, match="ends"):
        subject_vector_forward(h, starts, np.array([0, 1, 6]))


def test_whole_loss_gradient_spot_check():
    """Every parameter's gradient, at three random entries each, against central differences."""
    rng = np.random.default_rng(30)
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=12, max_position_embeddings=10, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    params = init_extractor_params(config, 3, rng, np.float64)
    for k in params:                                       # move away from the zero / unit initial values
        params[k] = params[k] + 0.2 * rng.standard_normal(params[k].shape)
    B, T, P = 2, 7, 3
    batch = {"ids": rng.integers(1, 20, (B, T)), "mask": np.array([[1] * 7, [1] * 5 + [0] * 2], float),
             "subject_labels": (rng.random((B, T, 2)) < 0.3).astype(float),
             "starts": np.array([2, 1]), "ends": np.array([4, 1]),
             "object_labels": (rng.random((B, T, P, 2)) < 0.2).astype(float)}
    loss, cache = loss_forward(params, config, batch)
    grads = loss_backward(cache)
    assert grads.keys() == params.keys()
    eps = 1e-6
    for name, w in params.items():
        flat = w.reshape(-1)
        for i in rng.choice(flat.size, min(3, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = loss_forward(params, config, batch)[0]
            flat[i] = old - eps
            down = loss_forward(params, config, batch)[0]
            flat[i] = old
            np.testing.assert_allclose(grads[name].reshape(-1)[i], (up - down) / (2 * eps), rtol=1e-5,
                                       atol=1e-8, err_msg=f"gradient of {name}[{i}]")
