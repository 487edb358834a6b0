"""minibert.Tokenizer against transformers' Python BERT tokenizer: the same tokens, ids and model inputs.

In transformers 5.x `BertTokenizer` is the Rust-backed one (BertTokenizerFast is an alias of it) and the
Python implementation is `BertTokenizerLegacy`; in 4.x `BertTokenizer` is the Python one. The Python one is the
reference: it applies NFC to the text and lower() to whole words (the final-sigma rule), which the Rust one
does not, and it drops every character of category C*, where the Rust one keeps some.
"""
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.tokenizer import Tokenizer
from tests.test_minibert_tokenizer import (_cached, check_offsets, chinese_corpus,  # noqa: F401
                                           chinese_vocabs, minilm_path, mixed_text)

transformers = pytest.importorskip("transformers", reason="transformers is the reference for parity")


def python_bert_tokenizer(path, lowercase):
    """transformers' pure-Python BERT tokenizer over a vocab.txt."""
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Slow  # 5.x
    except ImportError:
        from transformers import BertTokenizer as Slow                                           # 4.x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Slow(vocab_file=path, do_lower_case=lowercase)


_REFERENCES = {}


def reference(path, lowercase):
    if (path, lowercase) not in _REFERENCES:
        _REFERENCES[path, lowercase] = python_bert_tokenizer(path, lowercase)
    return _REFERENCES[path, lowercase]


def assert_same(ours, ref, text, second):
    tokens = ref.tokenize(text)
    assert ours.tokenize(text) == tokens, f"tokens of {text!r}"
    assert ours.text_to_ids(text) == ref.convert_tokens_to_ids(tokens), f"ids of {text!r}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(text, second, return_token_type_ids=True)     # [CLS] a [SEP] b [SEP], no truncation
    ids, segments = ours.encode(text, second)
    assert ids == want["input_ids"] and segments == want["token_type_ids"], f"encode({text!r}, {second!r})"


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=400)
@given(text=mixed_text, second=mixed_text)
def test_parity_real_vocab(minilm_path, lowercase, text, second):  # noqa: F811
    """The 30,522-token vocabulary of all-MiniLM-L6-v2 (bert-base-uncased's)."""
    assert_same(_cached(minilm_path, lowercase), reference(minilm_path, lowercase), text, second)


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=300)
@given(text=mixed_text, second=st.one_of(st.sampled_from(chinese_corpus(20, seed=2)), mixed_text))
def test_parity_built_chinese_vocab(chinese_vocabs, lowercase, text, second):  # noqa: F811
    """A vocabulary build_vocab made from a generated Chinese corpus."""
    path = chinese_vocabs[lowercase]
    assert_same(_cached(path, lowercase), reference(path, lowercase), text, second)


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=60, deadline=None)
@given(texts=st.lists(mixed_text, min_size=8, max_size=20), glue=st.sampled_from(["", ",", "\u0301", "x"]))
def test_parity_on_long_units(minilm_path, lowercase, texts, glue):  # noqa: F811
    """Units longer than LONG_UNIT take the path without offsets: the units of the texts (ideographs left
    out: each is a unit of its own) glued without spaces, repeated until long, tokenize as the reference;
    tokenize_with_offsets gives the same tokens with spans that pass check_offsets."""
    from minibert.basic_tokenizer import UNIT_RE, is_cjk
    from minibert.tokenizer import LONG_UNIT
    units = [u for t in texts for u in UNIT_RE.findall(t) if not is_cjk(u[0])]
    text = glue.join(units) + glue + "a"
    text *= 1 + 2 * LONG_UNIT // len(text)
    assert max(len(u) for u in UNIT_RE.findall(text)) > LONG_UNIT
    ours, ref = _cached(minilm_path, lowercase), reference(minilm_path, lowercase)
    tokens = ref.tokenize(text)
    assert ours.tokenize(text) == tokens, f"tokens of {text!r}"
    assert ours.text_to_ids(text) == ref.convert_tokens_to_ids(tokens)
    check_offsets(ours, text)                    # the offsets path, on the same long units


def test_parity_on_corpus_lines(chinese_vocabs):  # noqa: F811
    """The corpus the vocabulary was built from: same tokens, and none of them [UNK]."""
    for lowercase, path in chinese_vocabs.items():
        ours, ref = Tokenizer(path, lowercase=lowercase), reference(path, lowercase)
        for line in chinese_corpus()[:100]:
            assert ours.tokenize(line) == ref.tokenize(line)
            assert "[UNK]" not in ours.tokenize(line)


def test_known_differences_of_the_rust_tokenizer(minilm_path):  # noqa: F811
    """Where transformers' Rust BertTokenizer and its Python one part ways, we follow the Python one."""
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy  # noqa: F401
    except ImportError:
        pytest.skip("transformers 4.x: BertTokenizer is the Python one; nothing to compare here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rust = transformers.BertTokenizer(vocab=minilm_path)
        ignored = transformers.BertTokenizer(vocab_file=minilm_path)
    assert len(ignored.get_vocab()) == 5                          # vocab_file= is silently ignored in 5.x
    ours, ref = _cached(minilm_path, True), reference(minilm_path, True)
    for text, rust_tokens in [("xΑΣ.", ["x", "##α", "##σ", "."]),          # lower() per character
                              ("\U000bce72", ["[UNK]"])]:                   # an unassigned code point is kept
        assert rust.tokenize(text) == rust_tokens
        assert ours.tokenize(text) == ref.tokenize(text) != rust_tokens
    plain = "The Quick brown fox, naïve café 中文字! 3.14 [SEP] unaffable"
    assert ours.tokenize(plain) == ref.tokenize(plain) == rust.tokenize(plain)


def test_bench_smoke(minilm_path):  # noqa: F811
    """`python -m bench tokenizer` on 20,000 characters: runs, and agrees with the Python tokenizer line by line."""
    import argparse

    from bench import tokenizer as bench_tokenizer
    args = argparse.Namespace(quick=True, repeats=1, threads=1, extra=["--mb", "0.02"])
    out = bench_tokenizer.run(args)
    assert out["bench"] == "tokenizer" and out["characters"] >= 20000 and out["tokens"] > 5000
    assert out["lines_same_as_python"] == 1.0
    assert out["ours_s"] > 0 and out["reference_s"] > 0 and out["rust_tokens_per_s"] > 0
