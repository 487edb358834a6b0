"""Mode metrics, the full D/G gradient path, a short training run, the energy view and the demo."""
import json

import numpy as np
import pytest

from gan.__main__ import main
from gan.data import get_dataset, grid_modes, mode_metrics, ring_modes, sample_data
from gan.energy import discriminator_energy, energy_grid
from gan.train import GANConfig, discriminate, discriminate_backward, init_gan, sample, train
from tests.gradcheck import check_grad


def test_modes_and_metrics_on_known_samples():
    assert ring_modes().shape == (8, 2) and grid_modes().shape == (25, 2)
    np.testing.assert_allclose(np.linalg.norm(ring_modes(), axis=1), 2.0)
    rng = np.random.default_rng(0)
    for name in ("ring", "grid"):
        modes, sigma = get_dataset(name)
        m = mode_metrics(sample_data(name, 2500, rng), modes, sigma)
        assert m["modes_covered"] == len(modes)
        assert m["high_quality"] > 0.97                   # 3 sigma in 2-D holds 98.9 %
        assert m["kl"] < 0.02
    modes, sigma = get_dataset("ring")
    collapsed = modes[[0]] + sigma * rng.standard_normal((2500, 2))
    m = mode_metrics(collapsed, modes, sigma)
    assert m["modes_covered"] == 1
    np.testing.assert_allclose(m["kl"], np.log(8), rtol=1e-12)
    far = mode_metrics(modes * 0.5, modes, sigma)         # nearest mode right, but 1 unit away
    assert far["high_quality"] == 0.0 and far["modes_covered"] == 0 and far["kl"] < 1e-12


def test_metrics_bad_input():
    modes, sigma = get_dataset("grid")
    with pytest.raises(ValueError, match="non-finite"):
        mode_metrics(np.array([[np.nan, 0.0]]), modes, sigma)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        mode_metrics(np.zeros((4, 3)), modes, sigma)
    with pytest.raises(ValueError, match="dataset"):
        get_dataset("spiral")


@pytest.mark.parametrize("sn", [False, True])
def test_discriminator_gradcheck_x_and_params(sn):
    """The whole D (MLP body + CR head) to its inputs and every parameter, in float64."""
    rng = np.random.default_rng(1)
    cfg = GANConfig(n_stages=3, hidden=6, spectral_norm=sn)
    model = init_gan(cfg, rng)
    if sn:  # start converged, where the constant-u, v gradient of spectral norm is exact
        from gan.nn import spectral_norm_forward
        model["D_state"] = {k: spectral_norm_forward(model["D"]["W" + k[1:]], u, 500)[1]
                            for k, u in model["D_state"].items()}
    x = rng.standard_normal((5, 2))
    names = sorted(model["D"])

    def f(x, *arrays):
        return discriminate({"D": dict(zip(names, arrays)), "D_state": model["D_state"]}, x)[0]

    def analytic(dout):
        dx, grads = discriminate_backward(dout, discriminate(model, x)[1])
        assert set(grads) == set(model["D"])
        return [dx] + [grads[k] for k in names]

    check_grad(f, [x] + [model["D"][k] for k in names], analytic, rng, names=["x"] + names,
               rtol=1e-5, atol=1e-7)


def _mean_distance_to_modes(model, cfg):
    modes, _ = get_dataset(cfg.data)
    x = sample(model, 500, np.random.default_rng(0), cfg.z_dim)
    return np.sqrt(((x[:, None] - modes[None]) ** 2).sum(-1)).min(1).mean()


def test_training_is_deterministic_and_learns():
    cfg = GANConfig(data="ring", n_stages=4, steps=150, batch=64, hidden=32, n_eval=500, seed=3)
    _, a = train(cfg)
    model, b = train(cfg)
    assert a["modes_covered"] == b["modes_covered"] and a["kl"] == b["kl"] and a["d_loss"] == b["d_loss"]
    assert len(a["d_loss_per_stage"]) == 4 and np.isfinite(a["d_loss_per_stage"]).all()
    # the generated points have moved towards the modes: mean distance to the nearest one shrinks
    before = _mean_distance_to_modes(init_gan(cfg, np.random.default_rng(cfg.seed)), cfg)
    after = _mean_distance_to_modes(model, cfg)
    assert after < 0.75 * before, (before, after)     # measured: 1.66 -> 0.74


def test_energy_grid_matches_discriminator():
    rng = np.random.default_rng(4)
    model = init_gan(GANConfig(n_stages=3, hidden=8), rng)
    X, Y, U = energy_grid(model, (-1, 1), (-2, 2), n=5)
    assert X.shape == Y.shape == U.shape == (5, 5)
    point = np.array([[X[1, 3], Y[1, 3]]])
    scores = discriminate(model, point)[0]
    np.testing.assert_allclose(U[1, 3], -scores.mean(), rtol=1e-12)
    np.testing.assert_allclose(discriminator_energy(model, point, stage=2), -scores[:, 2])
    with pytest.raises(ValueError, match="stage"):
        discriminator_energy(model, point, stage=3)
    with pytest.raises(ValueError, match="xlim"):
        energy_grid(model, (1, -1), (0, 1))


def test_demo_quick_train_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the demo's PNG needs matplotlib")
    png = tmp_path / "s.png"
    main(["--quick", "--steps", "30", "--batch", "32", "--stages", "2", "--png", str(png)])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_stages"] == 2 and out["png"] == str(png) and png.stat().st_size > 10_000
    assert np.isfinite(out["kl"]) and 0 <= out["modes_covered"] <= 8


def test_demo_compare_table(capsys):
    main(["compare", "--steps", "10", "--batch", "32", "--seeds", "2", "--stages", "1", "2", "--data", "ring"])
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    assert set(out["mean_std"]["ring"]) == {"plain N=1", "CR N=2 G:all", "CR N=2 G:first"}
    assert any(line.startswith("| ring (8) | CR N=2 G:first | 2 |") for line in lines)
    with pytest.raises(SystemExit):
        main(["compare", "--stages", "0"])
