"""minibert.vocab: vocab.txt files, the corpus builder, bert4keras's simplified vocabulary and keep_tokens."""
import os

import numpy as np
import pytest
from hypothesis import given, settings

from minibert.basic_tokenizer import is_cjk, is_punctuation
from minibert.tokenizer import Tokenizer
from minibert.vocab import (SPECIAL_TOKENS, build_vocab, keep_token_rows, load_vocab, save_vocab,
                            simplify_vocab, slice_token_rows)
from tests.test_minibert_tokenizer import _cached, chinese_corpus, minilm_path, mixed_text  # noqa: F401


# ---- vocab.txt -----------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    tokens = list(SPECIAL_TOKENS) + ["中", "##ing", "café", "ﬁ", " lead", "tab\there"]
    save_vocab(tokens, tmp_path / "v.txt")
    assert load_vocab(tmp_path / "v.txt") == tokens
    assert (tmp_path / "v.txt").read_bytes().count(b"\n") == len(tokens)


def test_load_reads_lines_like_transformers(tmp_path):
    (tmp_path / "crlf.txt").write_bytes(b"[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\nhello\n")
    tok = Tokenizer(str(tmp_path / "crlf.txt"))
    assert tok.id_to_token == ["[UNK]", "[CLS]", "[SEP]", "hello", "hello"]
    assert tok.vocab["hello"] == 4                # a repeated line: the last id, as in transformers


def test_save_refuses_what_would_not_load_back(tmp_path):
    for bad in (["a", "b\nc"], ["a", ""], ["a", "a"], ["a", 3]):
        with pytest.raises(ValueError, match="tokens"):
            save_vocab(bad, tmp_path / "v.txt")


# ---- building from a corpus --------------------------------------------------------------------------

def test_build_vocab_covers_its_corpus():
    lines = chinese_corpus()
    tokens = build_vocab(lines, size=3000)
    assert tokens[:5] == list(SPECIAL_TOKENS) and len(set(tokens)) == len(tokens) <= 3000
    seen = {c for line in lines for c in line if is_cjk(c)}
    assert seen <= set(tokens)                                    # every ideograph of the corpus is a token
    tok = Tokenizer(tokens)
    assert all("[UNK]" not in tok.tokenize(line) for line in lines)
    # word pieces were learned: the Latin words of the corpus are single tokens
    assert {"numpy", "python", "model", "unicode"} <= set(tokens)
    assert build_vocab(lines, size=3000) == tokens                # deterministic


def test_build_vocab_size_limit_keeps_frequent_characters():
    lines = ["aaa bbb 中中中中 文", "aaa 中"]
    tokens = build_vocab(lines, size=7)
    assert tokens == list(SPECIAL_TOKENS) + ["中", "##a"]          # counts: 中 5, ##a 4, a 2, ...
    words = build_vocab(["unaffable unaffable unaffable affable"] * 5, size=60, min_pair_count=2)
    tok = Tokenizer(words)
    assert tok.tokenize("unaffable") == ["unaffable"] and tok.tokenize("affable") == ["affable"]


def test_build_vocab_bad_input():
    with pytest.raises(ValueError, match="texts: expected an iterable of str"):
        build_vocab("one string", size=100)
    with pytest.raises(ValueError, match=r"texts\[1\]: expected a str"):
        build_vocab(["ok", 3], size=100)
    with pytest.raises(ValueError, match="size"):
        build_vocab(["ok"], size=5)


# ---- bert4keras's simplified vocabulary -------------------------------------------------------------

def test_simplify_rule_on_the_real_vocab(minilm_path):  # noqa: F811
    tokens = load_vocab(minilm_path)
    new, keep = simplify_vocab(tokens)
    assert len(tokens) == 30522 and new[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert all(new[i] == tokens[k] for i, k in enumerate(keep)) and len(set(keep)) == len(keep)
    dropped = set(tokens) - set(new)
    assert "[MASK]" in dropped and "[unused5]" in dropped and "##的" not in new and "..." not in new
    for t in dropped:                                             # only what the tokenizer cannot produce
        stem = t[2:] if t.startswith("##") else t
        assert len(t) > 1 and any(is_cjk(c) or is_punctuation(c) for c in stem), t
    assert all(len(t) == 1 or not any(is_cjk(c) or is_punctuation(c) for c in t.removeprefix("##"))
               for t in new[4:])


_SIMPLIFIED = {}


@settings(max_examples=200)
@given(text=mixed_text)
def test_simplified_vocab_tokenizes_the_same(minilm_path, text):  # noqa: F811
    """Same tokens as with the full vocabulary, and keep_tokens maps the new ids back to the old ones."""
    full = _cached(minilm_path, True)
    if "small" not in _SIMPLIFIED:
        new, keep = simplify_vocab(full.id_to_token)
        _SIMPLIFIED["small"] = (Tokenizer(new), np.array(keep))
    small, keep = _SIMPLIFIED["small"]
    text = text.replace("[MASK]", "")                             # a special token the simplification drops
    assert small.tokenize(text) == full.tokenize(text)
    assert keep[small.text_to_ids(text)].tolist() == full.text_to_ids(text)


def test_from_pretrained_simplified(minilm_path):  # noqa: F811
    tok = Tokenizer.from_pretrained(os.path.dirname(minilm_path), simplified=True)
    new, keep = simplify_vocab(load_vocab(minilm_path))
    assert tok.id_to_token == new and tok.keep_tokens == keep and tok.lowercase is True
    with pytest.raises(ValueError, match="startswith"):
        simplify_vocab(["[UNK]", "[CLS]", "[SEP]"])               # no [PAD]


# ---- slicing a checkpoint by keep_tokens ------------------------------------------------------------

def test_slice_token_rows():
    rng = np.random.default_rng(0)
    params = {"bert.embeddings.word_embeddings.weight": rng.standard_normal((10, 4)),
              "cls.predictions.bias": rng.standard_normal(10),
              "cls.predictions.decoder.bias": rng.standard_normal(10),
              "bert.embeddings.position_embeddings.weight": rng.standard_normal((10, 4))}
    keep = [0, 3, 9, 4]
    out = slice_token_rows(params, keep)
    np.testing.assert_array_equal(out["bert.embeddings.word_embeddings.weight"],
                                  params["bert.embeddings.word_embeddings.weight"][keep])
    np.testing.assert_array_equal(out["cls.predictions.bias"], params["cls.predictions.bias"][keep])
    np.testing.assert_array_equal(out["cls.predictions.decoder.bias"],
                                  params["cls.predictions.decoder.bias"][keep])
    name = "bert.embeddings.position_embeddings.weight"
    assert out[name] is params[name]
    assert params["cls.predictions.bias"].shape == (10,)          # the input is left alone
    for bad, match in (([0, 10], r"keep_tokens: expected ids in \[0, 10\)"), ([], "non-empty"),
                       ([[0, 1]], "1-D"), ([0.5], "int")):
        with pytest.raises(ValueError, match=match):
            slice_token_rows(params, bad)
    with pytest.raises(ValueError, match="word embedding"):
        slice_token_rows({"cls.predictions.bias": np.zeros(3)}, [0])


def test_load_pretrained_with_keep_tokens(tmp_path):
    from minibert.checkpoint import load_pretrained, save_pretrained
    from minibert.config import BertConfig
    from minibert.model import init_params
    config = BertConfig(vocab_size=12, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16, pad_token_id=3)
    params = init_params(config, np.random.default_rng(0))
    params["cls.predictions.bias"] = np.arange(12, dtype=np.float32)
    save_pretrained(str(tmp_path), config, params)
    keep = [3, 0, 1, 2, 7, 11]
    small_config, small = load_pretrained(str(tmp_path), keep_tokens=keep)
    assert small_config.vocab_size == 6 and small_config.pad_token_id == 0   # old row 3 is new row 0
    np.testing.assert_array_equal(small["embeddings.word_embeddings.weight"],
                                  params["embeddings.word_embeddings.weight"][keep])
    np.testing.assert_array_equal(small["cls.predictions.bias"], np.array(keep, dtype=np.float32))
    np.testing.assert_array_equal(small["embeddings.position_embeddings.weight"],
                                  params["embeddings.position_embeddings.weight"])
    config2, _ = keep_token_rows(config, params, [0, 1])
    assert config2.vocab_size == 2 and config2.pad_token_id is None           # the padding row was dropped
