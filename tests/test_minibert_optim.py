"""Optimizers: AdamW against torch.optim.AdamW, LAMB by its formula, schedules, clipping, accumulation, EMA."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.optim import (EMA, AdamW, GradientAccumulator, clip_by_global_norm, global_norm,
                            skips_weight_decay, warmup_linear_decay)


def _params(rng, dtype=np.float64):
    shapes = {"encoder.layer.0.attention.self.query.weight": (6, 5),
              "encoder.layer.0.attention.self.query.bias": (5,),
              "encoder.layer.0.output.LayerNorm.weight": (5,),
              "embeddings.word_embeddings.weight": (9, 6)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def test_skips_weight_decay_names():
    assert skips_weight_decay("encoder.layer.3.output.LayerNorm.weight")
    assert skips_weight_decay("cls.predictions.bias")
    assert skips_weight_decay("encoder.layer.3.output.dense.bias")
    assert not skips_weight_decay("encoder.layer.3.output.dense.weight")
    assert not skips_weight_decay("embeddings.word_embeddings.weight")


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_adamw_matches_torch_with_decay_clipping_and_warmup(dtype, tol):
    torch = pytest.importorskip("torch", reason="the reference optimizer is torch.optim.AdamW")
    rng = np.random.default_rng(0)
    params = _params(rng, dtype)
    tparams = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    decay = [p for k, p in tparams.items() if not skips_weight_decay(k)]
    plain = [p for k, p in tparams.items() if skips_weight_decay(k)]
    lr, warmup, total = 0.05, 3, 10
    topt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}],
                             lr=lr, betas=(0.8, 0.95), eps=1e-6)
    ours = AdamW(params, lr=lr, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, max_grad_norm=1.0,
                 warmup_steps=warmup, total_steps=total)
    for step in range(6):
        grads = {k: (3.0 * rng.standard_normal(p.shape)).astype(dtype) for k, p in params.items()}
        for k, t in tparams.items():
            t.grad = torch.tensor(grads[k].copy())
        tnorm = float(torch.nn.utils.clip_grad_norm_(list(tparams.values()), 1.0))
        for group in topt.param_groups:
            group["lr"] = lr * warmup_linear_decay(step, warmup, total)
        topt.step()
        norm = ours.update(params, grads)
        assert norm == pytest.approx(tnorm, rel=1e-5)
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=tol, atol=tol,
                                       err_msg=f"{k} after update {step + 1}")
    assert ours.step == 6


def test_schedule_matches_transformers():
    torch = pytest.importorskip("torch", reason="the reference schedule is in transformers")
    transformers = pytest.importorskip("transformers", reason="reference schedule")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, num_warmup_steps=4, num_training_steps=11)
    for step in range(14):
        assert warmup_linear_decay(step, 4, 11) == pytest.approx(sched.get_last_lr()[0], abs=1e-12), step
        opt.step()
        sched.step()


def test_lamb_step_follows_its_formula():
    rng = np.random.default_rng(1)
    params = _params(rng)
    before = {k: p.copy() for k, p in params.items()}
    grads = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    opt = AdamW(params, lr=0.01, weight_decay=0.01, lamb=True, bias_correction=False, eps=1e-6)
    opt.update(params, grads)
    for k, w0 in before.items():
        g = grads[k]
        m, v = 0.1 * g, 0.001 * g * g                      # first moments without bias correction
        u = m / (np.sqrt(v) + 1e-6)
        if skips_weight_decay(k):
            expected = w0 - 0.01 * u                       # no decay and no trust ratio
        else:
            u = u + 0.01 * w0
            expected = w0 - 0.01 * np.linalg.norm(w0) / np.linalg.norm(u) * u
        np.testing.assert_allclose(params[k], expected, rtol=1e-13, atol=1e-15, err_msg=k)


def test_clip_by_global_norm_matches_torch():
    torch = pytest.importorskip("torch", reason="reference clipping")
    rng = np.random.default_rng(2)
    grads = {f"g{i}": rng.standard_normal((4, i + 1)) for i in range(3)}
    tg = [torch.tensor(g.copy(), requires_grad=True) for g in grads.values()]
    for t, g in zip(tg, grads.values()):
        t.grad = torch.tensor(g.copy())
    tnorm = torch.nn.utils.clip_grad_norm_(tg, 0.5)
    norm = clip_by_global_norm(grads, 0.5)
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    for t, g in zip(tg, grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    assert global_norm(grads) == pytest.approx(0.5, rel=1e-5)


@settings(max_examples=30)
@given(k=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_accumulation_equals_one_larger_batch(k, seed):
    """Least squares with a mean loss: k micro-batches of unequal size equal the concatenated batch."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 2))
    sizes = rng.integers(1, 6, size=k)
    xs = [rng.standard_normal((n, 3)) for n in sizes]
    ys = [rng.standard_normal((n, 2)) for n in sizes]

    def grad(x, y):                                        # d/dw of mean_i |x_i w - y_i|^2
        return {"w": 2.0 * x.T @ (x @ w - y) / len(x)}

    acc = GradientAccumulator()
    for x, y in zip(xs, ys):
        acc.add(grad(x, y), weight=len(x))
    big = grad(np.concatenate(xs), np.concatenate(ys))
    np.testing.assert_allclose(acc.mean()["w"], big["w"], rtol=1e-12, atol=1e-14)
    # and the updates that follow are the same
    p1, p2 = {"w": w.copy()}, {"w": w.copy()}
    acc2 = GradientAccumulator()
    for x, y in zip(xs, ys):
        acc2.add(grad(x, y), weight=len(x))
    AdamW(p1, lr=0.1).update(p1, acc2.mean())
    AdamW(p2, lr=0.1).update(p2, big)
    np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-12, atol=1e-14)


def test_ema_bias_correction_and_swap():
    rng = np.random.default_rng(3)
    params = _params(rng)
    ema = EMA(params, decay=0.9)
    ema.update(params)
    for k, a in ema.average().items():                      # one update: the average is the weight itself
        np.testing.assert_allclose(a, params[k], rtol=1e-14, err_msg=k)
    history = [{k: p.copy() for k, p in params.items()}]
    for _ in range(4):
        for p in params.values():
            p += rng.standard_normal(p.shape)
        ema.update(params)
        history.append({k: p.copy() for k, p in params.items()})
    trained = {k: p.copy() for k, p in params.items()}
    weights = np.array([0.1 * 0.9 ** (4 - i) for i in range(5)])
    ema.swap_in(params)
    for k in params:
        expected = sum(wt * h[k] for wt, h in zip(weights, history)) / weights.sum()
        np.testing.assert_allclose(params[k], expected, rtol=1e-12, err_msg=k)
    with pytest.raises(ValueError, match="already swapped in"):
        ema.swap_in(params)
    ema.swap_out(params)
    for k in params:
        assert np.array_equal(params[k], trained[k]), k


def test_bad_options_are_refused():
    params = {"w": np.zeros(3)}
    with pytest.raises(ValueError, match="unknown optimizer option.*'lr_decay'"):
        AdamW(params, lr_decay=0.5)
    with pytest.raises(ValueError, match="betas"):
        AdamW(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="warmup_steps"):
        AdamW(params, warmup_steps=10, total_steps=5)
    with pytest.raises(ValueError, match="keys"):
        AdamW(params).update(params, {"v": np.zeros(3)})
    with pytest.raises(ValueError, match="decay"):
        EMA(params, decay=1.0)
    with pytest.raises(ValueError, match="nothing accumulated"):
        GradientAccumulator().mean()
