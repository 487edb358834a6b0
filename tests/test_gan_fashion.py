"""gan/dcgan.py, gan/evaluator.py, gan/fashion.py: the DCGAN's backward passes, the evaluator file, and
`python -m gan fashion --quick` / `evaluator --quick` on the real Fashion-MNIST (skipped without it)."""
import json
import os

import numpy as np
import pytest

from gan import conv_fast
from gan import dcgan as dc
from gan.classifier import classifier_init
from gan.evaluator import Evaluator, load_evaluator, save_evaluator
from gan.fashion import image_grid, train_dcgan
from tests.fashion_data import needs_data
from tests.gradcheck import check_grad


def _model64(cfg, seed):
    model = dc.init_dcgan(cfg, np.random.default_rng(seed))
    for part in ("G", "D"):
        model[part] = {k: v.astype(np.float64) for k, v in model[part].items()}
    model["D_state"] = {k: v.astype(np.float64) for k, v in model["D_state"].items()}
    return model


def test_batchnorm_gradient_by_finite_differences():
    rng = np.random.default_rng(12)
    x, gamma, beta = rng.standard_normal((3, 2, 4, 5)) * 2 + 1, rng.standard_normal(2), rng.standard_normal(2)
    y, cache = dc.batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(((y - beta[:, None, None]) / gamma[:, None, None]).mean(axis=(0, 2, 3)), 0,
                               atol=1e-12)
    check_grad(lambda *a: dc.batchnorm_forward(*a)[0], [x, gamma, beta],
               lambda d: list(dc.batchnorm_backward(d, cache)), rng, names=["dx", "dgamma", "dbeta"])


def _directional_check(loss_of, params, grads, rng, eps=1e-6, rel=1e-5):
    """<grad, v> against central differences along two unit directions v per parameter."""
    assert grads.keys() == params.keys()
    for k in params:
        for _ in range(2):
            v = rng.standard_normal(params[k].shape)
            v /= np.sqrt((v * v).sum())
            numeric = (loss_of(dict(params, **{k: params[k] + eps * v}))
                       - loss_of(dict(params, **{k: params[k] - eps * v}))) / (2 * eps)
            assert float((grads[k] * v).sum()) == pytest.approx(numeric, rel=rel, abs=1e-9), k


@pytest.mark.parametrize("n_stages", [1, 3])
def test_discriminator_gradients(n_stages):
    """D without spectral norm (exact) and without the minibatch standard deviation, every parameter and
    the input x, plain and CR heads."""
    cfg = dc.DCGANConfig(width=2, n_stages=n_stages, spectral_norm=False, mbstd_group=0)
    model = _model64(cfg, 0)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 1, 28, 28))
    dscores = rng.standard_normal((3, n_stages))

    def loss_of(D, x_=x):
        return float((dc.discriminate(dict(model, D=D), x_)[0] * dscores).sum())
    scores, cache = dc.discriminate(model, x)
    dx, grads = dc.discriminate_backward(dscores, cache)
    _directional_check(loss_of, model["D"], grads, rng)
    v = rng.standard_normal(x.shape)
    v /= np.sqrt((v * v).sum())
    numeric = (loss_of(model["D"], x + 1e-6 * v) - loss_of(model["D"], x - 1e-6 * v)) / 2e-6
    assert float((dx * v).sum()) == pytest.approx(numeric, rel=1e-5), "dx"


def test_minibatch_stddev_values_and_gradient():
    rng = np.random.default_rng(5)
    h = rng.standard_normal((6, 2, 3, 4))
    out, cache = dc.minibatch_stddev_forward(h, 3)
    np.testing.assert_array_equal(out[:, :2], h)
    for rows in (slice(0, 3), slice(3, 6)):                      # groups of 3 consecutive images
        expect = np.sqrt(h[rows].var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[rows, 2], expect, rtol=1e-12)
    check_grad(lambda x: dc.minibatch_stddev_forward(x, 3)[0], [h],
               lambda d: [dc.minibatch_stddev_backward(d, cache)], rng, names=["dh"])
    with pytest.raises(ValueError, match="mbstd_group"):
        dc.minibatch_stddev_forward(h, 4)


def test_discriminator_gradients_with_minibatch_stddev():
    """Every parameter and x, the group statistic included (groups of 2 in a batch of 4)."""
    cfg = dc.DCGANConfig(width=2, n_stages=2, spectral_norm=False, mbstd_group=2)
    model = _model64(cfg, 4)
    assert model["D"]["conv2.weight"].shape == (4, 3, 4, 4)
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, (4, 1, 28, 28))
    dscores = rng.standard_normal((4, 2))

    def loss_of(D, x_=x):
        return float((dc.discriminate(dict(model, D=D), x_, mbstd_group=2)[0] * dscores).sum())
    dx, grads = dc.discriminate_backward(dscores, dc.discriminate(model, x, mbstd_group=2)[1])
    _directional_check(loss_of, model["D"], grads, rng)
    v = rng.standard_normal(x.shape)
    v /= np.sqrt((v * v).sum())
    numeric = (loss_of(model["D"], x + 1e-6 * v) - loss_of(model["D"], x - 1e-6 * v)) / 2e-6
    assert float((dx * v).sum()) == pytest.approx(numeric, rel=1e-5), "dx"
    with pytest.raises(ValueError, match="mbstd_group"):          # the model has the extra channel
        dc.discriminate(model, x)


def test_discriminator_gradients_with_spectral_norm_at_a_converged_power_iteration():
    cfg = dc.DCGANConfig(width=2, spectral_norm=True, mbstd_group=0)
    model = _model64(cfg, 2)
    x = np.random.default_rng(3).uniform(-1, 1, (2, 1, 28, 28))
    for _ in range(200):                                  # converge u, then hold it fixed
        model["D_state"] = dc.discriminate(model, x)[1]["state"]
    frozen = dict(model["D_state"])
    dscores = np.array([[0.7], [-1.3]])

    def loss_of(D):
        return float((dc.discriminate(dict(model, D=D, D_state=frozen), x)[0] * dscores).sum())
    _, cache = dc.discriminate(model, x)
    _, grads = dc.discriminate_backward(dscores, cache)
    _directional_check(loss_of, model["D"], grads, np.random.default_rng(4), rel=1e-4)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_generator_gradients(batch_norm):
    cfg = dc.DCGANConfig(width=2, z_dim=5, batch_norm=batch_norm)
    model = _model64(cfg, 5)
    rng = np.random.default_rng(6)
    for k in model["G"]:                                  # biases away from zero: ReLUs off their kinks
        if k.endswith("bias"):
            model["G"][k] = rng.standard_normal(model["G"][k].shape) * 0.1
    z = rng.standard_normal((3, 5))
    dx_out = rng.standard_normal((3, 1, 28, 28))

    def loss_of(G):
        return float((dc.generate(G, z)[0] * dx_out).sum())
    x, cache = dc.generate(model["G"], z)
    assert x.shape == (3, 1, 28, 28) and np.abs(x).max() <= 1
    _directional_check(loss_of, model["G"], dc.generate_backward(dx_out, cache), rng)


def test_tuned_convolutions_give_the_plain_run():
    """A few training steps with gan.conv and with gan.conv_fast end at the same parameters (float32)."""
    images = np.random.default_rng(7).uniform(-1, 1, (40, 1, 28, 28)).astype(np.float32)
    cfg = dc.DCGANConfig(width=4, steps=3, batch=8, n_stages=2)
    plain, _, _ = train_dcgan(cfg, images, conv=dc.plain_conv)
    fast, losses, _ = train_dcgan(cfg, images, conv=conv_fast)
    assert np.isfinite(losses["d_loss"]) and np.isfinite(losses["g_loss"])
    for part in ("G", "D"):
        for k in plain[part]:
            np.testing.assert_allclose(fast[part][k], plain[part][k], rtol=1e-3, atol=1e-5, err_msg=f"{part} {k}")
            assert fast[part][k].dtype == np.float32, f"{part} {k} left float32"


def test_training_is_deterministic_per_seed():
    images = np.random.default_rng(8).uniform(-1, 1, (30, 1, 28, 28)).astype(np.float32)
    cfg = dc.DCGANConfig(width=4, steps=2, batch=8)
    a, _, _ = train_dcgan(cfg, images)
    b, _, _ = train_dcgan(cfg, images)
    for k in a["G"]:
        np.testing.assert_array_equal(a["G"][k], b["G"][k], err_msg=k)


def test_evaluator_file_round_trip_and_bad_files(tmp_path):
    params = classifier_init(np.random.default_rng(9))
    ev = Evaluator(params, np.zeros(128), np.eye(128), 0.9, 1.5, {"steps": 1})
    path = str(tmp_path / "ev.npz")
    save_evaluator(path, ev)
    back = load_evaluator(path)
    assert back.accuracy == 0.9 and back.test_fid == 1.5 and back.settings == {"steps": 1}
    for k in params:
        np.testing.assert_array_equal(back.params[k], params[k], err_msg=k)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="bad.npz"):
        load_evaluator(str(bad))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        load_evaluator(str(tmp_path / "other.npz"))


def test_image_grid():
    grid = image_grid(-np.ones((3, 1, 28, 28), np.float32), rows=2, cols=2)
    assert grid.shape == (59, 59)
    assert grid[1:29, 1:29].max() == 0 and grid[0].min() == 1 and grid[30:58, 30:58].min() == 1


def _last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@needs_data
def test_quick_commands_on_fashion_mnist(tmp_path, capsys):
    from gan.__main__ import main
    cache = str(tmp_path / "cache")
    assert main(["evaluator", "--quick", "--cache", cache]) == 0
    ev = _last_json(capsys.readouterr().out)
    floors = ev["floors"]
    assert ev["classifier_accuracy"] > 0.6
    assert floors["test_set"]["fid"] < floors["pixel_gaussian"]["fid"] < floors["noise"]["fid"]
    assert main(["fashion", "--quick", "--cache", cache, "--out", str(tmp_path)]) == 0
    res = _last_json(capsys.readouterr().out)
    for key in ("fid", "class_min_fraction", "classifier_accuracy", "fid_test_set", "untrained"):
        assert key in res, key
    assert res["classifier_accuracy"] == ev["classifier_accuracy"]          # the cached evaluator reused
    assert 0 <= res["class_min_fraction"] <= 0.1 and np.isfinite(res["fid"])
    assert res["fid"] < res["untrained"]["fid"], "the quick budget learns something"
    if res["png"]:
        assert os.path.exists(res["png"]) and res["png"].endswith("fashion-N1-quick.png")


def test_missing_data_is_an_error_line(tmp_path, capsys):
    from gan.__main__ import main
    assert main(["evaluator", "--quick", "--cache", str(tmp_path), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m gan: error:") and "apt-get install dataset-fashion-mnist" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_a_group_that_does_not_divide_the_batch_is_refused_before_any_work(tmp_path, capsys):
    from gan.__main__ import main
    with pytest.raises(ValueError, match="mbstd_group"):
        dc.DCGANConfig(batch=64, mbstd_group=3)
    # an empty cache: the evaluator would be trained first if the flags were not checked before
    assert main(["fashion", "--quick", "--mbstd-group", "3", "--cache", str(tmp_path / "c"),
                 "--data-dir", str(tmp_path), "--png", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m gan: error: mbstd_group must be 0 or divide")
    assert not (tmp_path / "c").exists()


def test_welch_t_and_the_comparison_table():
    from gan.fashion_compare import format_table, summarize, welch_t
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    t, df = welch_t(a, b)
    assert t == pytest.approx((2.5 - 4.0) / np.sqrt(va + vb), rel=1e-12)
    assert df == pytest.approx((va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2), rel=1e-12)
    assert all(np.isnan(welch_t([1.0], b)))
    runs = {n: [{"fid": f, "class_min_fraction": 0.05, "train_seconds": 10.0} for f in fids]
            for n, fids in ((1, a), (4, b))}
    summary = summarize(runs)
    assert summary[1]["welch_fid"] is None and summary[4]["welch_fid"] == pytest.approx((-t, df))
    table = format_table(summary)
    assert "| plain N=1 | 4 | 2.50 +- 1.29 |" in table and "| CR N=4 | 3 | 4.00 +- 2.00 |" in table


def test_the_comparison_resumes_from_its_runs_file(tmp_path, monkeypatch):
    """Finished runs are appended to the runs file and read back, not trained again; a run with other
    settings is trained; a damaged file is refused by name."""
    from gan import fashion_compare
    from gan.dcgan import DCGANConfig

    trained = []

    def fake_run(job):
        cfg = job[0]
        trained.append((cfg.n_stages, cfg.seed, cfg.steps))
        return {"n_stages": cfg.n_stages, "seed": cfg.seed, "fid": 100.0 + 10 * cfg.n_stages + cfg.seed,
                "class_min_fraction": 0.05, "train_seconds": 1.0}

    monkeypatch.setattr(fashion_compare, "_run", fake_run)
    runs = tmp_path / "runs.jsonl"
    base = DCGANConfig(steps=7)

    def compare(cfg, ev_path="ev.npz"):
        return fashion_compare.run_fashion_compare(cfg, [1, 4], 2, ev_path, 100, runs_file=str(runs))
    first = compare(base)
    assert sorted(trained) == [(1, 0, 7), (1, 1, 7), (4, 0, 7), (4, 1, 7)]
    assert len(runs.read_text().splitlines()) == 4
    trained.clear()
    again = compare(base)
    assert trained == [] and again == first                       # all four read back
    compare(DCGANConfig(steps=8))                                  # other settings: trained anew
    assert sorted(trained) == [(1, 0, 8), (1, 1, 8), (4, 0, 8), (4, 1, 8)]
    trained.clear()
    compare(base, "other-evaluator.npz")                           # another evaluator: scored anew
    assert len(trained) == 4
    with open(runs, "a", encoding="utf-8") as f:
        f.write("not json\n")
    with pytest.raises(ValueError, match="runs.jsonl: line 13 is not a run record"):
        compare(base)
