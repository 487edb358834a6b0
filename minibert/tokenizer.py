"""WordPiece tokenizer with character offsets: BERT's own tokens and ids, plus where each came from.

    tok = Tokenizer("vocab.txt", lowercase=True)
    tok.tokenize("Héllo, 世界")            -> ['hello', ',', '世', '界']
    tok.tokenize_with_offsets("Héllo, 世界") -> (tokens, [(0, 5), (5, 6), (7, 8), (8, 9)])
    tok.encode("question", "answer", maxlen=32) -> (token_ids, segment_ids)   # [CLS] a [SEP] b [SEP]

Text is first cut into units (runs between whitespace, and every CJK ideograph alone; see basic_tokenizer),
each unit is normalized and split at punctuation, and each word is cut by WordPiece: the longest vocabulary
entry that starts the word, then the longest "##" entry that starts the rest, and so on; a word with no
such cut, or longer than max_word_chars, becomes [UNK]. A unit's tokens depend on the unit alone, so they
are cached: natural text repeats its words, and most units are found in the cache. A unit longer than
LONG_UNIT characters is not cached, and tokenize() cuts it into words without computing offsets, so time
is linear in the text and memory a small multiple of it, whatever the text holds (no spaces at all, one
huge word, runs of combining marks).
"""
import json
import os
import re

import numpy as np

from .basic_tokenizer import UNIT_RE, clean_unit, is_cjk, normalize, split_unit, words_of_unit
from .vocab import SPECIAL_TOKENS, load_vocab, simplify_vocab, vocab_index

CACHE_SIZE = 1 << 16        # units (and words) kept in a cache before it is emptied
LONG_UNIT = 256             # longer units are not cached (natural text has few, and they are one-offs)
LONG_TEXT = 1 << 16         # longer texts are cut into units one at a time, not all at once
MAX_GROUP = 32              # tokens a shared span grows over before it takes the rest of its unit


def _check_text(text, name):
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected a str, got {type(text).__name__}")


class Tokenizer:
    """BERT's WordPiece tokenizer over a vocabulary file (one token per line, line number = id).

    vocab_path: path of vocab.txt, or a list of tokens (index = id)
    lowercase: lowercase and strip accents (uncased checkpoints) or keep the text's case (cased ones)
    max_word_chars: words longer than this become [UNK] (100 in Google's BERT and in transformers)
    """

    def __init__(self, vocab_path, lowercase=True, max_word_chars=100):
        tokens = list(vocab_path) if isinstance(vocab_path, (list, tuple)) else load_vocab(vocab_path)
        self.id_to_token = tokens
        self.vocab = vocab_index(tokens)                       # token -> id (a repeated line: the last one)
        missing = [t for t in ("[UNK]", "[CLS]", "[SEP]") if t not in self.vocab]
        if missing:
            raise ValueError(f"vocab_path: the vocabulary has no {', '.join(missing)} token "
                             f"({len(tokens)} tokens read)")
        self.lowercase = bool(lowercase)
        self.max_word_chars = int(max_word_chars)
        self.unk_id, self.cls_id, self.sep_id = (self.vocab[t] for t in ("[UNK]", "[CLS]", "[SEP]"))
        self.pad_id = self.vocab.get("[PAD]", 0)
        self.keep_tokens = None                                # set by from_pretrained(simplified=True)
        # WordPiece never needs to try a candidate longer than the longest entry of its kind
        self._max_head = max((len(t) for t in self.vocab if not t.startswith("##")), default=0)
        self._max_tail = max((len(t) - 2 for t in self.vocab if t.startswith("##")), default=0)
        # special tokens are kept whole wherever they appear in the text, case and all
        specials = sorted((t for t in SPECIAL_TOKENS if t in self.vocab), key=len, reverse=True)
        self._special_re = re.compile("|".join(map(re.escape, specials))) if specials else None
        self._cache = {}                                       # unit -> (tokens, ids, spans)
        self._word_cache = {}                                  # word -> WordPiece cut

    @classmethod
    def from_pretrained(cls, directory, simplified=False, startswith=("[PAD]", "[UNK]", "[CLS]", "[SEP]")):
        """The tokenizer of a checkpoint directory: its vocab.txt and tokenizer_config.json's do_lower_case
        (true when absent). simplified=True keeps only the tokens the tokenizer can produce (see
        vocab.simplify_vocab) and sets .keep_tokens, the rows to keep of the checkpoint's embeddings."""
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"directory: no checkpoint directory at {directory!r}")
        lowercase = True
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.exists(config_path):
            try:
                with open(config_path, encoding="utf-8") as f:
                    config = json.load(f)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
                raise ValueError(f"{config_path}: expected a JSON object, could not parse it "
                                 f"({err})") from None
            if not isinstance(config, dict) or not isinstance(config.get("do_lower_case", True), bool):
                raise ValueError(f"{config_path}: expected an object with a boolean do_lower_case, "
                                 f"got {config!r:.200}")
            lowercase = config.get("do_lower_case", True)
        tokens = load_vocab(os.path.join(directory, "vocab.txt"))
        keep = None
        if simplified:
            tokens, keep = simplify_vocab(tokens, startswith)
        tok = cls(tokens, lowercase=lowercase)
        tok.keep_tokens = keep
        return tok

    # ---- tokens -------------------------------------------------------------------------------------

    def wordpiece(self, word):
        """Greedy longest-match-first cut of one normalized word: list of (token, start, end) in word."""
        if len(word) > self.max_word_chars:                   # [UNK] without a look (nor a cache entry)
            return [("[UNK]", 0, len(word))]
        hit = self._word_cache.get(word)
        if hit is None:
            hit = self._wordpiece(word)
            if len(self._word_cache) >= CACHE_SIZE:
                self._word_cache.clear()
            self._word_cache[word] = hit
        return hit

    def _wordpiece(self, word):
        n, vocab, out, start = len(word), self.vocab, [], 0
        while start < n:
            end = min(n, start + (self._max_tail if start else self._max_head))
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:                                              # nothing matches here: the word is unknown
                return [("[UNK]", 0, n)]
            out.append((self.id_to_token[vocab[piece]], start, end))   # the vocabulary's own str, shared
            start = end
        return out

    def _unit_tokens(self, unit):
        """Tokens of one unit: (tokens, ids, spans) with spans relative to the unit. Cached."""
        hit = self._cache.get(unit)
        if hit is not None:
            return hit
        tokens, texts, spans, one_to_one = [], [], [], True
        for word, where in split_unit(unit, self.lowercase):
            for piece, a, b in self.wordpiece(word):
                tokens.append(piece)
                texts.append(word[a:b])
                if isinstance(where, int):                     # one character in, one character out
                    spans.append((where + a, where + b))
                else:
                    spans.append((where[a][0], where[b - 1][1]))
                    one_to_one = False
        if not one_to_one:
            spans = self._group_spans(unit, texts, spans)
        ids = [self.vocab.get(t, self.unk_id) for t in tokens]
        hit = (tokens, ids, spans)
        if len(unit) <= LONG_UNIT:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[unit] = hit
        return hit

    def _unit_part(self, unit, k):
        """Tokens (k=0) or ids (k=1) of a unit not in the cache. A unit longer than LONG_UNIT is cut into
        words without offsets and is not cached; only the part asked for is built."""
        if len(unit) <= LONG_UNIT:
            return self._unit_tokens(unit)[k]
        pieces = (piece for word in words_of_unit(unit, self.lowercase) for piece, _, _ in self.wordpiece(word))
        return list(pieces) if k == 0 else [self.vocab.get(t, self.unk_id) for t in pieces]

    def _group_spans(self, unit, texts, spans):
        """Give neighbouring tokens one shared span where their own spans do not normalize to them.

        texts[i]: the normalized characters token i stands for; spans[i]: its span in unit. A group grows
        until norm(unit[group span]) is the concatenation of its texts (at the latest: the rest of the unit,
        which a group also takes once it has grown over MAX_GROUP tokens: time stays linear in the unit).
        """
        out, i = [], 0
        while i < len(spans):
            j, start, end = i + 1, spans[i][0], spans[i][1]
            while True:
                if j - i > MAX_GROUP:
                    j, end = len(spans), max(end, max(e for _, e in spans[i:]))
                    start = min(start, min(s for s, _ in spans[i:]))
                if j == len(spans) or normalize(clean_unit(unit[start:end])[0],
                                                self.lowercase) == "".join(texts[i:j]):
                    break
                start, end = min(start, spans[j][0]), max(end, spans[j][1])
                j += 1
            out.extend([(start, end)] * (j - i))
            i = j
        return out

    def _chunks(self, text):
        """(start, end, special) pieces of text: special tokens that appear in it, and the text between."""
        if self._special_re is None or "[" not in text:
            return [(0, len(text), False)]
        out, pos = [], 0
        for m in self._special_re.finditer(text):
            if m.start() > pos:
                out.append((pos, m.start(), False))
            out.append((m.start(), m.end(), True))
            pos = m.end()
        if pos < len(text):
            out.append((pos, len(text), False))
        return out

    @staticmethod
    def _units(text, start, end):
        """The units of text[start:end]: a list for a short text (fast), one at a time for a long one."""
        if end - start <= LONG_TEXT:
            return UNIT_RE.findall(text, start, end)
        return (m.group() for m in UNIT_RE.finditer(text, start, end))

    def tokenize(self, text):
        """text (str) -> list of WordPiece tokens, without [CLS] or [SEP]."""
        _check_text(text, "text")
        tokens, cache = [], self._cache
        for start, end, special in self._chunks(text):
            if special:
                tokens.append(text[start:end])
                continue
            for unit in self._units(text, start, end):
                hit = cache.get(unit)                          # inlined: this loop is the hot path
                tokens.extend(hit[0] if hit else self._unit_part(unit, 0))
        return tokens

    def tokenize_with_offsets(self, text):
        """text -> (tokens, spans): spans[i] = (start, end), the characters of text that tokens[i] came from.

        text[start:end], without its control characters and normalized like the tokenizer does, is the
        token without "##" ([UNK]: the whole unknown word). Where normalization joins characters or WordPiece
        cuts inside one (a Hangul syllable stripped to jamo), neighbouring tokens share one span, and the
        normalized span is their concatenation.
        """
        _check_text(text, "text")
        tokens, spans = [], []
        for start, end, special in self._chunks(text):
            if special:
                tokens.append(text[start:end])
                spans.append((start, end))
                continue
            for m in UNIT_RE.finditer(text, start, end):
                unit_tokens, _, unit_spans = self._unit_tokens(m.group())
                s = m.start()
                tokens.extend(unit_tokens)
                spans.extend((s + a, s + b) for a, b in unit_spans)
        return tokens, spans

    def tokens_to_ids(self, tokens):
        """Tokens -> ids; a token not in the vocabulary is [UNK]."""
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def text_to_ids(self, text):
        """tokenize() then tokens_to_ids(), from the cache directly."""
        _check_text(text, "text")
        ids, cache = [], self._cache
        for start, end, special in self._chunks(text):
            if special:
                ids.append(self.vocab[text[start:end]])
                continue
            for unit in self._units(text, start, end):
                hit = cache.get(unit)
                ids.extend(hit[1] if hit else self._unit_part(unit, 1))
        return ids

    # ---- model inputs -------------------------------------------------------------------------------

    def encode(self, first, second=None, maxlen=None):
        """[CLS] first [SEP] (second [SEP]) as ids: returns (token_ids, segment_ids), lists of int.

        Segment ids are 0 up to and including the first [SEP], 1 after it. With maxlen, the longer side
        loses its last token until the whole fits, as bert4keras does: it compares len(first) + 2 with
        len(second) + 1 (each counted with its [CLS]/[SEP]), and takes from first on a tie.
        """
        _check_text(first, "first")
        if second is not None:
            _check_text(second, "second")
        if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer))
                                   or maxlen < 3):
            raise ValueError(f"maxlen: expected an int >= 3 ([CLS] [SEP] [SEP] need 3) or None, "
                             f"got {maxlen!r}")
        a = self.text_to_ids(first)
        b = self.text_to_ids(second) if second is not None else None
        if maxlen is not None:
            a, b = truncate_pair(a, b, maxlen)
        token_ids = [self.cls_id] + a + [self.sep_id]
        segment_ids = [0] * len(token_ids)
        if b is not None:
            token_ids += b + [self.sep_id]
            segment_ids += [1] * (len(b) + 1)
        return token_ids, segment_ids

    def encode_batch(self, firsts, seconds=None, maxlen=None, length=None):
        """encode() every text (or pair) and pad with [PAD] on the right.

        firsts: list of str (B,); seconds: None or list of str (B,)
        length: pad to this many tokens (default: the longest sequence of the batch)
        returns token_ids, segment_ids: int64 arrays (B, T); padding is (pad_id, 0)
        """
        if isinstance(firsts, str) or not isinstance(firsts, (list, tuple)):
            raise ValueError(f"firsts: expected a list of str, got {type(firsts).__name__}")
        if seconds is not None and (isinstance(seconds, str) or not isinstance(seconds, (list, tuple))
                                    or len(seconds) != len(firsts)):
            got = f"a list of {len(seconds)}" if isinstance(seconds, (list, tuple)) else type(seconds).__name__
            raise ValueError(f"seconds: expected None or a list of {len(firsts)} str, got {got}")
        if seconds is None:
            seconds = [None] * len(firsts)
        pairs = [self.encode(a, b, maxlen) for a, b in zip(firsts, seconds)]
        token_ids = pad_batch([p[0] for p in pairs], self.pad_id, length)
        segment_ids = pad_batch([p[1] for p in pairs], 0, length)
        return token_ids, segment_ids

    def decode(self, ids):
        """Ids -> text: word pieces joined, no space next to a CJK character, [CLS]/[SEP]/[PAD] left out.

        decode(encode(text)) is the normalized text (lowercased, accents stripped when lowercase=True) with
        one space between words and around punctuation, when every word of text is in the vocabulary.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"ids: expected a 1-D sequence of int, got shape {ids.shape} dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.id_to_token)):
            raise ValueError(f"ids: expected ids in [0, {len(self.id_to_token)}), got min {ids.min()} "
                             f"max {ids.max()}")
        skip = {self.cls_id, self.sep_id, self.vocab.get("[PAD]", -1)}
        out = []
        for i in ids.tolist():
            if i in skip:
                continue
            tok = self.id_to_token[i]
            if not tok:                                # an empty line of vocab.txt
                continue
            if tok.startswith("##") and len(tok) > 2 and out:
                out.append(tok[2:])                    # continuation of the previous word
                continue
            if out and not is_cjk(out[-1][-1]) and not is_cjk(tok[0]):
                out.append(" ")
            out.append(tok)
        return "".join(out)


def truncate_pair(a, b, maxlen):
    """Drop tokens from the end of the longer of a, b (lists of ids) until [CLS] a [SEP] b [SEP] fits maxlen.

    Lengths are compared with their special tokens, len(a) + 2 against len(b) + 1, a first on a tie
    (bert4keras's truncate_sequences), but a side with no tokens left is never chosen.
    """
    a = list(a)
    b = None if b is None else list(b)
    extra = 2 if b is None else 3
    while len(a) + (len(b) if b is not None else 0) + extra > maxlen:
        if b is None or (len(a) + 2 >= len(b) + 1 and a) or not b:
            a.pop()
        else:
            b.pop()
    return a, b


def pad_batch(sequences, value, length=None):
    """Right-pad lists of ints to one length: int64 array (B, T), T = length or the longest."""
    longest = max((len(s) for s in sequences), default=0)
    if length is None:
        length = longest
    elif isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < longest:
        raise ValueError(f"length: expected an int >= the longest sequence ({longest}), got {length!r}")
    out = np.full((len(sequences), length), value, dtype=np.int64)
    for i, s in enumerate(sequences):
        out[i, :len(s)] = s
    return out
