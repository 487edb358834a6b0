"""The generated corpus, the training labels, and a smoke run of the demo (train, predict, evaluate)."""
import json

import numpy as np
import pytest

from minibert.config import BertConfig
from minibert.optim import AdamW
from minibert.tokenizer import Tokenizer
from minibert.vocab import build_vocab
from minibert.triple_extraction.__main__ import main
from minibert.triple_extraction.data import (PREDICATES, encode_example, generate_corpus, load_examples,
                                             training_batch)
from minibert.triple_extraction.model import init_extractor_params, loss_backward, loss_forward


def _names(examples):
    return {x for ex in examples for s, _, o in ex["spo_list"] for x in (s, o)}


def test_generated_corpus_has_the_hard_cases():
    train, test = generate_corpus(800, 200, seed=1)
    assert generate_corpus(800, 200, seed=1) == (train, test)
    assert generate_corpus(800, 200, seed=2)[0] != train
    for ex in train + test:
        for s, p, o in ex["spo_list"]:
            assert s in ex["text"] and o in ex["text"] and p in PREDICATES
    assert any(not ex["spo_list"] for ex in train), "sentences with no triple"
    assert any(len({p for s2, p, _ in ex["spo_list"] if s2 == s}) >= 2
               for ex in train for s, _, _ in ex["spo_list"]), "one subject with several relations"
    assert any(len([1 for s2, p, _ in ex["spo_list"] if s2 == s and p == "主演"]) >= 2
               for ex in train for s, _, _ in ex["spo_list"]), "one subject, one predicate, several objects"
    overlap = lambda ex: any(a != b and a in b for a in _names([ex]) for b in _names([ex]))  # noqa: E731
    assert any(overlap(ex) for ex in train), "overlapping entities"
    persons = lambda exs: {o for ex in exs for _, p, o in ex["spo_list"] if p in ("导演", "作者")}  # noqa
    assert not persons(train) & persons(test), "held-out person names never appear in training triples"
    assert any(any(c.isascii() and c.isalpha() for c in ex["text"]) for ex in train)


def test_training_batch_labels_and_sampled_subjects():
    train, _ = generate_corpus(60, 0, seed=3)
    tok = Tokenizer(build_vocab([ex["text"] for ex in train], 2000))
    encoded = [encode_example(tok, ex, PREDICATES, 64) for ex in train]
    rng = np.random.default_rng(0)
    batch = training_batch(encoded, len(PREDICATES), tok.pad_id, rng)
    for b, e in enumerate(encoded):
        n = len(e["ids"])
        assert batch["mask"][b].sum() == n and np.all(batch["ids"][b, :n] == e["ids"])
        assert batch["subject_labels"][b, :, 0].sum() == len({s for s, _ in e["triples"]})
        st, en = batch["starts"][b], batch["ends"][b]
        if not e["triples"]:
            assert st == en == 0 and batch["object_labels"][b].sum() == 0
            continue
        assert st <= en and batch["subject_labels"][b, st, 0] == 1 and batch["subject_labels"][b, en, 1] == 1
        expected = 2 * len(e["triples"].get((st, en), []))
        assert batch["object_labels"][b].sum() == expected   # 0 when the sampled span is no real subject


def test_loss_falls_when_one_batch_is_overfit():
    train, _ = generate_corpus(8, 0, seed=4)
    tok = Tokenizer(build_vocab([ex["text"] for ex in train], 1000))
    rng = np.random.default_rng(0)
    config = BertConfig(vocab_size=len(tok.id_to_token), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    params = init_extractor_params(config, len(PREDICATES), rng)
    batch = training_batch([encode_example(tok, ex, PREDICATES, 64) for ex in train], len(PREDICATES),
                           tok.pad_id, rng)
    opt = AdamW(params, lr=1e-2, weight_decay=0.0)
    first = loss_forward(params, config, batch)[0]
    for _ in range(25):
        loss, cache = loss_forward(params, config, batch, rng)
        opt.update(params, loss_backward(cache))
    last = loss_forward(params, config, batch)[0]
    assert np.isfinite(last) and last < 0.3 * first, (first, last)


def test_demo_smoke_train_predict_evaluate(tmp_path, capsys):
    assert main(["--steps", "20", "--n-train", "120", "--n-test", "30", "--hidden", "16", "--layers", "1",
                 "--out", str(tmp_path / "model")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["steps"] == 20 and line["dev_sentences"] == 30 and line["sentences_unseen_templates"] == 15
    assert 0.0 <= line["f1"] <= 1.0 and line["seconds"] > 0
    # the budget is in updates: the same seed and flags give the same figures (time fields aside)
    main(["--steps", "20", "--n-train", "120", "--n-test", "30", "--hidden", "16", "--layers", "1"])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    timeless = ("train_seconds", "seconds")
    assert {k: v for k, v in again.items() if k not in timeless} == \
        {k: v for k, v in line.items() if k not in timeless}
    _, test = generate_corpus(120, 30, seed=0)
    from minibert.triple_extraction.data import save_examples
    save_examples(test, str(tmp_path / "dev.json"))
    main(["predict", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "dev.json"),
          "--out", str(tmp_path / "pred.json")])
    assert len(load_examples(str(tmp_path / "pred.json"))) == 30
    capsys.readouterr()
    main(["evaluate", "--data", str(tmp_path / "dev.json"), "--predictions", str(tmp_path / "pred.json")])
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the saved EMA model, reloaded, finds exactly what the training run scored
    assert scored["f1"] == line["f1"], (scored, line)


def test_init_from_a_pretrained_checkpoint(tmp_path, capsys):
    """--init loads the encoder (its final LayerNorm kept for the subject branch) and adds fresh heads."""
    from minibert.checkpoint import save_pretrained
    from minibert.model import init_params
    from minibert.vocab import save_vocab
    train, _ = generate_corpus(200, 0, seed=0)
    vocab = build_vocab([ex["text"] for ex in train], 2000)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    params = init_params(config, np.random.default_rng(0), heads=False)
    save_pretrained(str(tmp_path / "bert"), config, params,
                    extra_files={"vocab.txt": lambda path: save_vocab(vocab, path)})
    assert main(["--init", str(tmp_path / "bert"), "--steps", "3", "--n-train", "40", "--n-test", "10",
                 "--out", str(tmp_path / "model")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 3 and 0.0 <= out["f1"] <= 1.0
    from minibert.safetensors import read_safetensors
    saved, _ = read_safetensors(str(tmp_path / "model" / "extractor.safetensors"))
    assert {"cln.gamma_dense.weight", "object.weight", "encoder.layer.0.output.LayerNorm.weight"} <= set(saved)
    assert saved["object.weight"].shape == (16, 2 * len(PREDICATES))


def test_unseen_templates_stay_out_of_training_and_models_load_checked(tmp_path, capsys):
    from minibert.triple_extraction.data import SEEN_TEMPLATES, UNSEEN_TEMPLATES
    train, test = generate_corpus(600, 201, seed=5)
    assert not set(SEEN_TEMPLATES) & set(UNSEEN_TEMPLATES) and len(UNSEEN_TEMPLATES) >= 4
    assert {ex["template"] for ex in train} <= set(SEEN_TEMPLATES)
    assert [ex["template"] in UNSEEN_TEMPLATES for ex in test] == [False] * 101 + [True] * 100
    train_text = "".join(ex["text"] for ex in train)
    from minibert.triple_extraction.data import _NATIONS, _PLACES
    unseen_names = {x for ex in test[101:] for s, _, o in ex["spo_list"] for x in (s, o) if len(x) >= 3
                    and not x.endswith(("年", "大学")) and x not in _PLACES + _NATIONS}
    assert unseen_names and not any(n in train_text for n in unseen_names), "names of the test never trained on"
    # a saved model folder whose vocabulary does not match its weights is refused
    assert main(["--steps", "2", "--n-train", "40", "--n-test", "4", "--hidden", "16", "--layers", "1",
                 "--out", str(tmp_path / "m")]) == 0
    from minibert.triple_extraction.__main__ import load_model, save_model
    config, params, tok, predicates = load_model(str(tmp_path / "m"))
    tok.id_to_token.append("多")
    save_model(str(tmp_path / "m2"), config, params, tok, predicates)
    with pytest.raises(ValueError, match="do not belong together"):
        load_model(str(tmp_path / "m2"))
