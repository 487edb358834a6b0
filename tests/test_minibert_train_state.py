"""Training checkpoints: exact round trip, atomic writes, refusal of broken or foreign checkpoints."""
import json
import os

import numpy as np
import pytest

import minibert.train_state as ts
from minibert.config import BertConfig
from minibert.model import init_params
from minibert.optim import EMA, AdamW


def _run_parts(seed=0):
    cfg = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng)
    opt = AdamW(params, lr=1e-2, warmup_steps=2, total_steps=10, max_grad_norm=1.0)
    ema = EMA(params, 0.9)
    for _ in range(3):
        opt.update(params, {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()})
        ema.update(params)
    return cfg, params, opt, ema, rng


FP = {"config": "tiny", "data": {"rows": 10}}


def _save(run_dir, cfg, params, opt, ema, rng, step=3, fp=FP):
    return ts.save_train_state(run_dir, config=cfg, params=params, optimizer=opt, rng=rng, step=step,
                               data_position={"epoch": 1, "index": 4}, fingerprint=fp, ema=ema)


def test_round_trip_is_exact(tmp_path):
    cfg, params, opt, ema, rng = _run_parts()
    _save(tmp_path, cfg, params, opt, ema, rng)
    st = ts.load_train_state(tmp_path, FP)
    assert st["step"] == 3 and st["data_position"] == {"epoch": 1, "index": 4}
    assert st["config"].hidden_size == 16
    for k in params:
        assert np.array_equal(st["params"][k], params[k]) and st["params"][k].dtype == params[k].dtype, k
        assert np.array_equal(st["optimizer"].m[k], opt.m[k]) and np.array_equal(st["optimizer"].v[k], opt.v[k])
        assert np.array_equal(st["ema"].shadow[k], ema.shadow[k])
    assert st["optimizer"].step == opt.step and st["optimizer"].options == opt.options
    assert st["ema"].step == ema.step
    assert np.array_equal(st["rng"].random(5), rng.random(5))          # the stream continues where it was
    # a further update from the loaded state equals one from the live state
    g = {k: np.full(p.shape, 0.5, p.dtype) for k, p in params.items()}
    st["optimizer"].update(st["params"], {k: v.copy() for k, v in g.items()})
    opt.update(params, g)
    for k in params:
        assert np.array_equal(st["params"][k], params[k]), k


def test_keeps_newest_and_latest_pointer(tmp_path):
    cfg, params, opt, ema, rng = _run_parts()
    for step in (1, 2, 3, 4):
        _save(tmp_path, cfg, params, opt, ema, rng, step=step)
    names = sorted(n for n in os.listdir(tmp_path) if n.startswith("step-"))
    assert names == ["step-00000003", "step-00000004"]
    assert open(tmp_path / "LATEST").read().strip() == "step-00000004"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    _save(tmp_path, cfg, params, opt, ema, rng, step=4)                 # the same step again replaces it
    assert ts.load_train_state(tmp_path, FP)["step"] == 4


def test_crash_during_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg, params, opt, ema, rng = _run_parts()
    _save(tmp_path, cfg, params, opt, ema, rng, step=3)
    before = {n: open(os.path.join(tmp_path, "step-00000003", n), "rb").read()
              for n in os.listdir(tmp_path / "step-00000003")}
    calls = []

    def failing_write(path, tensors, metadata=None):
        calls.append(path)
        if len(calls) == 2:                                              # the optimizer file
            raise OSError("disk full (simulated)")
        return real_write(path, tensors, metadata)

    real_write = ts.write_safetensors
    monkeypatch.setattr(ts, "write_safetensors", failing_write)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path, cfg, params, opt, ema, rng, step=4)
    monkeypatch.undo()
    assert open(tmp_path / "LATEST").read().strip() == "step-00000003"
    assert sorted(n for n in os.listdir(tmp_path)) == ["LATEST", "step-00000003"]
    for n, data in before.items():
        assert open(os.path.join(tmp_path, "step-00000003", n), "rb").read() == data, n
    assert ts.load_train_state(tmp_path, FP)["step"] == 3


def test_non_finite_weights_are_never_saved(tmp_path):
    cfg, params, opt, ema, rng = _run_parts()
    _save(tmp_path, cfg, params, opt, ema, rng, step=3)
    params["encoder.layer.0.output.dense.weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match="encoder.layer.0.output.dense.weight.*non-finite"):
        _save(tmp_path, cfg, params, opt, ema, rng, step=4)
    assert ts.load_train_state(tmp_path, FP)["step"] == 3


def test_foreign_or_damaged_checkpoints_are_refused(tmp_path):
    cfg, params, opt, ema, rng = _run_parts()
    ckpt = _save(tmp_path, cfg, params, opt, ema, rng)
    other = {"config": "tiny", "data": {"rows": 12}}
    with pytest.raises(ValueError, match=r"different run setup.*data\.rows: checkpoint has 10, this run has 12"):
        ts.load_train_state(tmp_path, other)
    assert ts.load_train_state(tmp_path / "nothing-here", FP) is None
    with open(os.path.join(ckpt, "model.safetensors"), "r+b") as f:      # flip one byte of the weights
        f.seek(-3, os.SEEK_END)
        b = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(ValueError, match="model.safetensors.*sha256"):
        ts.load_train_state(tmp_path, FP)
    with open(os.path.join(ckpt, "state.json"), "w") as f:
        json.dump({"format": "something else"}, f)
    with pytest.raises(ValueError, match="not a minibert-train-state"):
        ts.load_train_state(tmp_path, FP)
    (tmp_path / "LATEST").write_text("../elsewhere\n")
    with pytest.raises(ValueError, match="LATEST"):
        ts.load_train_state(tmp_path, FP)
    with pytest.raises(ValueError, match="bit generator"):
        ts.rng_from_state({"bit_generator": "os.system"})
