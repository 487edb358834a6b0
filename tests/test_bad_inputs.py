"""Bad inputs: text that once made the tokenizer quadratic or hungry, configuration values out of bounds,
and command lines given wrong arguments. Each case asserts the exact behaviour: a bound that the old code
broke by far, a ValueError naming the field, or a refusal with exit status 2, one or two lines on stderr
and no traceback.

Time and memory are measured in a child process (a fresh interpreter, resource.getrusage), so the rest of
the suite does not count; the bounds are loose enough for a loaded 2-core machine and still far below what
the quadratic and per-character versions took (over a minute for a 60,000-character word; about 1.2 GB
for 10 MB of text without spaces).
"""
import json
import os
import subprocess
import sys

import pytest

from minibert.config import BertConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")

# the child: builds a tokenizer on the demo vocabulary and one of these texts, reports seconds and peak RSS
TEXTS = {
    "sigma-word": "'\\u0391' * 60000 + '\\u03a3'",                # one 60,001-letter word ending in a capital sigma
    "marks": "('e' + '\\u0301' * 30000 + ' ') * 2",                 # two letters, each with 30,000 accents
    "sigmas": "'\\u0391\\u03a3,' * 40000",                        # 40,000 two-letter words, each a final sigma
    "one-word": "'a' * 10_000_000",                                 # 10 MB, one word
    "words-and-punctuation": "('hello,world.' * 1_000_000)[:10_000_000]",
    "ideographs": "(''.join(chr(0x4e00 + i) + 'ab' for i in range(50)) * 66_667)[:10_000_000]",
}
CHILD = """
import json, resource, sys, time
from minibert.demo_corpus import demo_vocab
from minibert.tokenizer import Tokenizer
tok = Tokenizer(demo_vocab(), lowercase=sys.argv[2] == "lower")
text = {texts}[sys.argv[1]]()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
out = getattr(tok, sys.argv[3])(text)
seconds = time.perf_counter() - t0
tokens = out[0] if isinstance(out, tuple) else out
print(json.dumps({{"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_mb": before / 1024, "n": len(tokens), "head": tokens[:3], "chars": len(text)}}))
""".format(texts="{" + ", ".join(f"{k!r}: lambda: {v}" for k, v in TEXTS.items()) + "}")


def _measure(name, method="tokenize", lowercase=True, timeout=120):
    proc = subprocess.run([sys.executable, "-c", CHILD, name, "lower" if lowercase else "cased", method],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- the tokenizer: time linear in the text, memory a small multiple of it -------------------------------

@pytest.mark.parametrize("method", ["tokenize", "tokenize_with_offsets"])
def test_one_long_word_with_a_final_sigma_is_fast(method):
    # the quadratic version: 27 s for 20,000 letters, over a minute for 60,000
    r = _measure("sigma-word", method)
    assert r["head"] == ["[UNK]"] and r["n"] == 1
    assert r["seconds"] < 5, r


@pytest.mark.parametrize("lowercase", [True, False])
def test_runs_of_combining_marks_are_fast(lowercase):
    r = _measure("marks", "tokenize_with_offsets", lowercase)
    assert r["seconds"] < 5, r


def test_many_sigmas_in_one_unit_keep_offsets_linear():
    r = _measure("sigmas", "tokenize_with_offsets")
    assert r["n"] == 80000 and r["seconds"] < 10, r


@pytest.mark.parametrize("name", ["one-word", "words-and-punctuation", "ideographs"])
def test_ten_megabytes_without_spaces_stay_under_300_mb(name):
    # per-character regex state and offset tuples once took about 120 bytes a character (1.2 GB here)
    r = _measure(name, timeout=240)
    assert r["chars"] == 10_000_000
    assert r["peak_mb"] < 300, r


def test_long_text_gives_the_same_tokens_as_its_pieces():
    """A long unit takes the path without offsets; its tokens are those of the short path."""
    from minibert.demo_corpus import demo_lines, demo_vocab
    from minibert.tokenizer import LONG_UNIT, Tokenizer
    tok = Tokenizer(demo_vocab())
    words = " ".join(demo_lines(200, 0)).split()
    glued = ",".join(words)                                   # one unit, far longer than LONG_UNIT
    assert len(glued) > 10 * LONG_UNIT
    want = []
    for k, w in enumerate(words):
        want += ([","] if k else []) + tok.tokenize(w)
    assert tok.tokenize(glued) == want
    assert tok.tokenize_with_offsets(glued)[0] == want
    assert tok.text_to_ids(glued) == tok.tokens_to_ids(want)


# ---- configuration values: refused before anything is allocated -------------------------------------

@pytest.mark.parametrize("field, value", [
    ("num_hidden_layers", 10**7), ("num_hidden_layers", -1), ("hidden_size", 10**6), ("vocab_size", 0),
    ("vocab_size", 10**9), ("intermediate_size", -4), ("intermediate_size", 10**7),
    ("num_attention_heads", 10**5), ("max_position_embeddings", 10**8), ("type_vocab_size", 10**6),
    ("layer_norm_eps", float("inf")), ("layer_norm_eps", float("nan")), ("layer_norm_eps", 1.0),
    ("initializer_range", float("inf")), ("hidden_dropout_prob", float("nan")), ("hidden_size", 2.5),
    ("num_hidden_layers", True), ("pad_token_id", -1),
])
def test_config_out_of_bounds_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"config.{field}"):
        BertConfig(**{field: value})


def test_config_json_with_huge_layer_count_is_refused_at_once(tmp_path):
    """load_pretrained reads config.json first: 10^7 layers is refused before any weight is read."""
    from minibert.checkpoint import load_pretrained
    d = BertConfig(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
                   intermediate_size=4, max_position_embeddings=8).to_dict()
    for field, value in [("num_hidden_layers", 10**7), ("layer_norm_eps", "Infinity")]:
        text = json.dumps(dict(d, **{field: 0})).replace(f'"{field}": 0', f'"{field}": {value}')
        (tmp_path / "config.json").write_text(text)
        with pytest.raises(ValueError, match=f"config.{field}"):
            load_pretrained(str(tmp_path))


def test_config_json_nested_100000_deep_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="config.json"):
        BertConfig.from_json(str(tmp_path))
