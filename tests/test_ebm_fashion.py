"""ebm/conv_energy.py and ebm/fashion.py: the convolutional energy's gradients (parameters and input) by
finite differences in float64, the sampler's input gradient against the full backward (plain and tuned
convolutions), the CD loss's gradient, and `python -m ebm fashion --quick` on the real Fashion-MNIST
(skipped without it): its JSON line, and the same JSON for the same seed."""
import json
import os

import numpy as np
import pytest

from ebm import conv_energy as ce
from ebm.fashion import FashionConfig, cd_loss_backward, cd_loss_forward, train_energy
from gan import conv as plain_conv
from gan import conv_fast
from tests.fashion_data import needs_data
from tests.gradcheck import check_grad


def _params64(seed, spectral_norm=False, width=2):
    rng = np.random.default_rng(seed)
    params, state = ce.energy_init(rng, width, spectral_norm, dtype=np.float64)
    for k in params:                                          # nonzero biases: every term of the backward
        if k.endswith("bias"):
            params[k] = rng.standard_normal(params[k].shape) * 0.3
    return params, state


def test_parameter_and_input_gradients_by_finite_differences():
    params, _ = _params64(0)
    names = sorted(params)
    x = np.random.default_rng(1).uniform(0, 1, (2, 1, 28, 28))

    def f(x_, *values):
        return ce.energy_forward(dict(zip(names, values)), x_)[0]

    def analytic(dE):
        dx, grads = ce.energy_backward(dE, ce.energy_forward(params, x)[1])
        assert grads.keys() == params.keys()
        return [dx] + [grads[k] for k in names]
    check_grad(f, [x] + [params[k] for k in names], analytic, np.random.default_rng(2),
               names=["dx"] + names, rtol=1e-5, atol=1e-9)


def test_the_gradient_check_fails_on_a_wrong_gradient():
    params, _ = _params64(3)
    x = np.random.default_rng(4).uniform(0, 1, (2, 1, 28, 28))

    def wrong(dE):
        dx, _ = ce.energy_backward(dE, ce.energy_forward(params, x)[1])
        return [dx * 1.001]
    with pytest.raises(AssertionError, match="dx"):
        check_grad(lambda x_: ce.energy_forward(params, x_)[0], [x], wrong, np.random.default_rng(5),
                   names=["dx"], rtol=1e-5, atol=1e-9)


def test_gradients_with_spectral_norm_at_a_converged_power_iteration():
    params, state = _params64(6, spectral_norm=True)
    x = np.random.default_rng(7).uniform(0, 1, (3, 1, 28, 28))
    for _ in range(300):                                      # converge u, then hold it fixed
        state = ce.energy_forward(params, x, state)[1]["state"]
    dE = np.array([0.7, -1.3, 0.4])
    _, cache = ce.energy_forward(params, x, state)
    _, grads = ce.energy_backward(dE, cache)
    rng = np.random.default_rng(8)
    for k in params:
        for _ in range(2):                                    # <grad, v> along unit directions v
            v = rng.standard_normal(params[k].shape)
            v /= np.sqrt((v * v).sum())
            up = ce.energy_forward(dict(params, **{k: params[k] + 1e-6 * v}), x, state)[0] @ dE
            down = ce.energy_forward(dict(params, **{k: params[k] - 1e-6 * v}), x, state)[0] @ dE
            assert float((grads[k] * v).sum()) == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-9), k


@pytest.mark.parametrize("conv", [plain_conv, conv_fast], ids=["plain", "tuned"])
def test_sampler_input_gradient_equals_the_full_backward(conv):
    """dE/dx by transposed convolutions (the sampler's path) = the dx of energy_backward, float64."""
    params, state = _params64(9, spectral_norm=True, width=3)
    x = np.random.default_rng(10).uniform(0, 1, (5, 784))
    E, dx = ce.conv_energy(params, state, conv)(x)
    E_ref, cache = ce.energy_forward(params, x.reshape(-1, 1, 28, 28), state)
    dx_ref, _ = ce.energy_backward(np.ones(5), cache)
    np.testing.assert_allclose(E, E_ref, rtol=1e-12, err_msg="E")
    np.testing.assert_allclose(dx, dx_ref.reshape(5, 784), rtol=1e-12, atol=1e-15, err_msg="dE/dx")


def test_cd_loss_gradient_by_finite_differences():
    params, _ = _params64(11)
    rng = np.random.default_rng(12)
    x_pos, x_neg = rng.uniform(0, 1, (3, 1, 28, 28)), rng.uniform(0, 1, (2, 1, 28, 28))
    _, _, _, cache = cd_loss_forward(params, x_pos, x_neg, 0.3, {})
    grads, _ = cd_loss_backward(cache)
    for k in ("conv2.weight", "fc.weight", "fc.bias"):
        v = rng.standard_normal(params[k].shape)
        v /= np.sqrt((v * v).sum())
        up = cd_loss_forward(dict(params, **{k: params[k] + 1e-6 * v}), x_pos, x_neg, 0.3, {})[0]
        down = cd_loss_forward(dict(params, **{k: params[k] - 1e-6 * v}), x_pos, x_neg, 0.3, {})[0]
        assert float((grads[k] * v).sum()) == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-10), k


def test_bad_inputs_are_named():
    params, state = ce.energy_init(np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="x must have shape"):
        ce.energy_forward(params, np.zeros((2, 28, 28), np.float32), state)
    with pytest.raises(ValueError, match="x must have shape"):
        ce.conv_energy(params, state)(np.zeros((2, 783), np.float32))
    with pytest.raises(ValueError, match="width"):
        ce.energy_init(np.random.default_rng(0), 0)
    with pytest.raises(ValueError, match="batch"):
        train_energy(FashionConfig(batch=20, buffer_size=10), np.zeros((5, 784), np.float32))


def test_training_is_deterministic_and_moves_energies():
    images = np.random.default_rng(13).uniform(0, 0.3, (50, 784)).astype(np.float32)
    cfg = FashionConfig(steps=3, batch=8, width=2, langevin_steps=2, buffer_size=40)
    a, b = train_energy(cfg, images), train_energy(cfg, images)
    tuned = train_energy(cfg, images, conv=conv_fast)
    assert a[3]["completed"] and a[3]["updates"] == 3 and np.isfinite(a[3]["loss"])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)
        np.testing.assert_allclose(tuned[0][k], a[0][k], rtol=1e-3, atol=1e-5, err_msg=f"tuned {k}")
    np.testing.assert_array_equal(a[2].data[:len(a[2])], b[2].data[:len(b[2])], err_msg="buffer")


@pytest.fixture(scope="module")
def evaluator_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("evaluator-cache"))


def _last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@needs_data
def test_quick_command_on_fashion_mnist(evaluator_cache, tmp_path, capsys):
    from ebm.__main__ import main
    assert main(["fashion", "--quick", "--cache", evaluator_cache, "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    res = _last_json(out)
    assert "updates/s" in err
    for key in ("fid", "class_min_fraction", "classifier_accuracy", "fid_pixel_gaussian", "completed",
                "fid_buffer", "fid_noise", "fid_source"):
        assert key in res, key
    assert res["completed"] and res["updates"] == res["steps"]
    assert np.isfinite(res["fid"]) and 0 <= res["class_min_fraction"] <= 0.1
    for kind, path in res["pngs"].items():
        if path is not None:
            assert os.path.exists(path) and path.endswith(f"fashion-{kind}-quick.png")


@needs_data
def test_same_seed_same_json(evaluator_cache, capsys):
    from ebm.__main__ import main
    argv = ["fashion", "--quick", "--steps", "4", "--sample-steps", "3", "--n-eval", "100", "--n-noise", "50",
            "--cache", evaluator_cache, "--png", "", "--seed", "3"]
    runs = []
    for _ in range(2):
        assert main(argv) == 0
        res = _last_json(capsys.readouterr().out)
        res.pop("train_seconds")
        runs.append(res)
    assert runs[0] == runs[1]
