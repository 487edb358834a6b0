"""WordPiece vocabularies: read and write vocab.txt, build one from a corpus, and bert4keras's simplified one.

A vocabulary is a list of tokens; a token's id is its line number. "##" marks a piece that continues a word.

Simplified vocabulary (bert4keras, load_vocab(simplified=True)): the tokenizer puts every CJK ideograph and
every punctuation character in a word of its own, so a token longer than one character whose text (without
"##") holds one of them can never come out of it ("##的", "[unused1]", "..."). bert-base-uncased's 30,522
tokens become 29,190. keep_tokens lists the old id of every new row, to slice the checkpoint's embedding
matrix and MLM output bias to match (slice_token_rows; load_pretrained(dir, keep_tokens=...)).
"""
import collections
import dataclasses
import os

import numpy as np

from smoothing import get_xp

from .basic_tokenizer import basic_tokenize, is_cjk, is_punctuation

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_vocab(path):
    """vocab.txt -> list of tokens, one per line (the line ending removed, nothing else stripped)."""
    path = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(path, str):
        raise ValueError(f"vocab_path: expected a path (str) or a list of tokens, got {type(path).__name__}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocab_path: no vocabulary file at {path!r}")
    try:
        with open(path, encoding="utf-8") as f:               # universal newlines, as transformers reads it
            tokens = [line.rstrip("\n") for line in f.readlines()]
    except UnicodeDecodeError as err:
        raise ValueError(f"vocab_path: expected a UTF-8 text file, {path!r} is not ({err})") from None
    if not tokens:
        raise ValueError(f"vocab_path: expected one token per line, {path!r} is empty")
    return tokens


def vocab_index(tokens):
    """token -> id; a token on several lines gets its last line's id (as transformers does)."""
    return {t: i for i, t in enumerate(tokens)}


def save_vocab(tokens, path):
    """Write tokens one per line (UTF-8, "\\n"), after checking load_vocab will read them back."""
    for i, t in enumerate(tokens):
        if not isinstance(t, str) or not t or any(c in t for c in "\r\n"):
            raise ValueError(f"tokens[{i}]: expected a non-empty str without line breaks, got {t!r}")
    if len(set(tokens)) != len(tokens):
        dup = [t for t, n in collections.Counter(tokens).items() if n > 1][:5]
        raise ValueError(f"tokens: expected distinct tokens, got repeats of {dup}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in tokens))


def build_vocab(texts, size, lowercase=True, min_pair_count=2):
    """A WordPiece vocabulary for a corpus: list of at most `size` tokens, to save with save_vocab.

    texts: iterable of str, tokenized like the Tokenizer does (same normalization, same words)
    size: the most tokens to keep, special tokens included
    Order: the special tokens (ids 0-4: [PAD] [UNK] [CLS] [SEP] [MASK]); every character seen, most frequent
    first (CJK ideographs and punctuation alone; other characters both word-initial "c" and continuing
    "##c", so that any word of seen characters can be cut without [UNK]); then word pieces, merged from
    pairs of neighbouring pieces with the largest score = count(ab) / (count(a) count(b)) (the WordPiece
    criterion as described in Hugging Face's NLP course), among pairs seen at least min_pair_count times.
    """
    if isinstance(texts, str):
        raise ValueError("texts: expected an iterable of str (one per line or document), got one str")
    if isinstance(size, bool) or not isinstance(size, int) or size <= len(SPECIAL_TOKENS):
        raise ValueError(f"size: expected an int > {len(SPECIAL_TOKENS)} (the special tokens), got {size!r}")
    words = collections.Counter()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}]: expected a str, got {type(text).__name__}")
        words.update(w for w, _, _ in basic_tokenize(text, lowercase))
    chars, splits = collections.Counter(), {}
    for w, n in words.items():
        symbols = [w[0]] + ["##" + c for c in w[1:]]
        for sym in symbols:
            chars[sym] += n
        if len(symbols) > 1:
            splits[w] = symbols
    alphabet = sorted(chars, key=lambda t: (-chars[t], t))
    budget = size - len(SPECIAL_TOKENS)
    merged = _learn_merges(splits, words, budget - len(alphabet), min_pair_count, set(alphabet))
    return list(SPECIAL_TOKENS) + (alphabet + merged)[:budget]


def _learn_merges(splits, counts, n_new, min_pair_count, known):
    """Merge neighbouring pieces until n_new new tokens exist; splits: word -> list of pieces (updated)."""
    pairs, where, freq = collections.Counter(), collections.defaultdict(set), collections.Counter()
    for w, syms in splits.items():
        for sym in syms:
            freq[sym] += counts[w]
        for p in zip(syms, syms[1:]):
            pairs[p] += counts[w]
            where[p].add(w)
    new = []
    while len(new) < n_new:
        candidates = [(n / (freq[a] * freq[b]), n, a, b)
                      for (a, b), n in pairs.items() if n >= min_pair_count]
        if not candidates:
            break
        _, _, a, b = max(candidates)
        token = a + b[2:]                                       # "un" + "##aff" -> "unaff"
        for w in where.pop((a, b)):
            syms, n = splits[w], counts[w]
            out, i = [], 0
            while i < len(syms):                                # merge every (a, b) in this word
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(token)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            for p in zip(syms, syms[1:]):
                pairs[p] -= n
            for sym in syms:
                freq[sym] -= n
            for p in zip(out, out[1:]):
                pairs[p] += n
                where[p].add(w)
            for sym in out:
                freq[sym] += n
            splits[w] = out
        for p in [p for p, n in pairs.items() if n <= 0]:
            del pairs[p]
        if token not in known:
            known.add(token)
            new.append(token)
    return new


def simplify_vocab(tokens, startswith=("[PAD]", "[UNK]", "[CLS]", "[SEP]")):
    """bert4keras's simplified vocabulary: (new_tokens, keep_tokens).

    new_tokens: `startswith` first, then every other token in its old order, except those longer than one
    character whose text without "##" contains a CJK ideograph or a punctuation character.
    keep_tokens: list of int, the old id of each new token (new_tokens[i] == tokens[keep_tokens[i]]).
    """
    index = vocab_index(tokens)
    missing = [t for t in startswith if t not in index]
    if missing:
        raise ValueError(f"startswith: tokens {missing} are not in the vocabulary")
    new, keep, seen = list(startswith), [index[t] for t in startswith], set(startswith)
    for i, t in enumerate(tokens):
        if t in seen or index[t] != i:                          # kept already, or a repeated line
            continue
        stem = t[2:] if t.startswith("##") else t
        if len(t) > 1 and any(is_cjk(c) or is_punctuation(c) for c in stem):
            continue
        new.append(t)
        keep.append(i)
        seen.add(t)
    return new, keep


# parameter names (Hugging Face's, with or without "bert.") whose first axis runs over the vocabulary
TOKEN_ROW_PARAMS = ("embeddings.word_embeddings.weight", "cls.predictions.bias",
                    "cls.predictions.decoder.bias", "cls.predictions.decoder.weight")


def slice_token_rows(params, keep_tokens):
    """A copy of params whose vocabulary-sized tensors keep only the rows keep_tokens, in that order.

    params: dict name -> array; the word embeddings (V, C), the MLM output bias (V,) (and the tied decoder
    weight/bias when stored) are sliced, everything else is passed through unchanged.
    keep_tokens: sequence of int in [0, V), e.g. from simplify_vocab
    """
    keep = np.asarray(keep_tokens)
    if keep.ndim != 1 or keep.size == 0 or keep.dtype.kind not in "iu":
        raise ValueError(f"keep_tokens: expected a non-empty 1-D list of int, got shape {keep.shape} "
                         f"dtype {keep.dtype}")
    names = [k for k in params if (k[5:] if k.startswith("bert.") else k) in TOKEN_ROW_PARAMS]
    if not any(n.endswith("word_embeddings.weight") for n in names):
        raise ValueError("params: expected a word embedding matrix (embeddings.word_embeddings.weight, "
                         f"optionally with 'bert.'), got keys {sorted(params)[:8]}...")
    out = dict(params)
    for name in names:
        rows = params[name].shape[0]
        if keep.min() < 0 or keep.max() >= rows:
            raise ValueError(f"keep_tokens: expected ids in [0, {rows}) for {name} of shape "
                             f"{tuple(params[name].shape)}, got min {keep.min()} max {keep.max()}")
        out[name] = params[name][get_xp(params[name]).asarray(keep)]
    return out


def keep_token_rows(config, params, keep_tokens):
    """(config, params) of a checkpoint cut down to a simplified vocabulary.

    params: sliced by slice_token_rows; config (a BertConfig dataclass): vocab_size = len(keep_tokens), and
    pad_token_id moved to the new id of the old padding row (None when that row is dropped).
    """
    params = slice_token_rows(params, keep_tokens)
    keep = [int(k) for k in keep_tokens]
    pad = config.pad_token_id
    return dataclasses.replace(config, vocab_size=len(keep),
                               pad_token_id=keep.index(pad) if pad in keep else None), params
