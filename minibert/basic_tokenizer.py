"""BERT's basic tokenization, with the span of the original text that every piece came from.

The steps are those of Google's BERT tokenizer (and of transformers' Python one):
  1. drop NUL, U+FFFD and every character whose Unicode category starts with "C" (control, format,
     surrogate, private use, unassigned); turn " ", \\t, \\n, \\r and Zs characters into splits
     (U+2028 and U+2029 split too, as Python's str.split does);
  2. every CJK ideograph is a unit of its own;
  3. each unit is put in NFC; with lowercasing it is then lowercased, put in NFD and stripped of
     combining marks (category Mn);
  4. every punctuation character (category P*, or ASCII that is neither letter nor digit) is a piece
     of its own; the runs between them are the words WordPiece sees.

Offsets: a unit of original text U becomes a normalized string N = norm(U). Most characters normalize on
their own (norm(U) is the concatenation of norm(c)), and then each normalized character points back at the
one it came from. NFC composition (e + U+0301 -> é) and the final-sigma rule of lower() depend on the
neighbours; there the unit is cut into the shortest runs that normalize on their own (see segment_unit).

Every step is linear in the length of the unit, however long it is and whatever it holds (one 10 MB word,
thousands of combining marks): words_of_unit gives the words without offsets for the tokenizer's own path.
"""
import functools
import re
import unicodedata

# the CJK Unified Ideographs blocks as BERT defines them (not Hangul, Hiragana or Katakana)
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_cjk(ch):
    """True for a character in one of BERT's CJK ideograph blocks."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def is_punctuation(ch):
    """True for Unicode punctuation (P*) and for ASCII that is not a letter, a digit, a space or a control."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_control(ch):
    """True for characters BERT drops: categories C* (but \\t, \\n, \\r are whitespace), NUL, U+FFFD."""
    if ch in "\t\n\r":
        return False
    return ch == "\ufffd" or unicodedata.category(ch).startswith("C")


# the C0/C1 controls that str.isspace() calls whitespace; BERT drops them instead of splitting there
SPACE_CONTROLS = "\x0b\x0c\x1c\x1d\x1e\x1f\x85"
ASCII_PUNCT = "".join(chr(c) for c in range(128) if is_punctuation(chr(c)))


def _cjk_class():
    """Regex class of the assigned CJK ideographs: the blocks hold a few unassigned code points, which BERT
    drops as controls (category Cn) before it spaces out the ideographs, so they must not cut a word."""
    runs = []
    for lo, hi in CJK_RANGES:
        start = None
        for cp in range(lo, hi + 2):
            ok = cp <= hi and unicodedata.category(chr(cp))[0] != "C"
            if ok and start is None:
                start = cp
            elif not ok and start is not None:
                runs.append(f"\\U{start:08x}-\\U{cp - 1:08x}")
                start = None
    return "".join(runs)


_CJK_CLASS = _cjk_class()

# the characters units are split at: those of str.isspace() (all below U+3001), that is BERT's whitespace
# (Zs, \t, \n, \r) plus U+2028/U+2029 (where str.split splits too), except SPACE_CONTROLS
SPLIT_CHARS = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in SPACE_CONTROLS)
# unit: one CJK ideograph, or a run of characters that are neither split characters nor CJK. One character
# class repeated, so the regex engine keeps no per-character state (memory stays flat on a 10 MB word)
UNIT_RE = re.compile(f"[{_CJK_CLASS}]|[^{re.escape(SPLIT_CHARS)}{_CJK_CLASS}]+")
# piece of an ASCII unit: one punctuation character or a run of other characters
ASCII_PIECE_RE = re.compile(f"[{re.escape(ASCII_PUNCT)}]|[^{re.escape(ASCII_PUNCT)}]+")


@functools.lru_cache(maxsize=1 << 16)
def _is_punct_cached(ch):
    return is_punctuation(ch)


def split_on_punctuation(word):
    """Pieces of a normalized unit: each punctuation character alone, whitespace dropped.

    returns a list of (piece, start) with start the index of the piece in word.
    """
    if word.isascii():                            # pieces cover the word end to end: starts are running sums
        out, start = [], 0
        for piece in ASCII_PIECE_RE.findall(word):
            out.append((piece, start))
            start += len(piece)
        return out
    out, start = [], None
    for i, ch in enumerate(word):
        if _is_punct_cached(ch) or ch.isspace():
            if start is not None:
                out.append((word[start:i], start))
                start = None
            if not ch.isspace():
                out.append((ch, i))
        elif start is None:
            start = i
    if start is not None:
        out.append((word[start:], start))
    return out


def words_of_unit(unit, lowercase):
    """The words of one unit, normalized, without offsets: a generator, memory a small multiple of the unit.

    Same words as split_unit(unit, lowercase), in the same order.
    """
    text = normalize(clean_unit(unit)[0], lowercase)
    if text.isascii():
        return (m.group() for m in ASCII_PIECE_RE.finditer(text))
    return _non_ascii_words(text)


def _non_ascii_words(text):
    start = None
    for i, ch in enumerate(text):
        if _is_punct_cached(ch) or ch.isspace():
            if start is not None:
                yield text[start:i]
                start = None
            if not ch.isspace():
                yield ch
        elif start is None:
            start = i
    if start is not None:
        yield text[start:]


class _DropMarks(dict):
    """str.translate table that deletes combining marks (Mn) and keeps every other character; it fills
    itself as characters are met, so a long text costs no list of one-character strings."""

    def __missing__(self, cp):
        self[cp] = None if unicodedata.category(chr(cp)) == "Mn" else cp
        return self[cp]


_DROP_MARKS = _DropMarks()


def normalize(text, lowercase):
    """norm(text) for text without controls: NFC, then (lowercase) lower(), NFD, drop Mn."""
    if text.isascii():
        return text.lower() if lowercase else text
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = unicodedata.normalize("NFD", text.lower()).translate(_DROP_MARKS)
    return text


def segment_unit(unit, lowercase):
    """Cut a control-free unit into runs that normalize on their own.

    returns (normalized, src): normalized = norm(unit); src[k] = (start, end), the run of unit that
    normalized character k came from. The runs are consecutive and norm(unit[start:end]) is exactly the
    slice of `normalized` they produced. Usually every run is one character; a run that normalizes to
    nothing (a stripped accent) joins the run before it (or, at the start, the run after it).
    """
    normalized = normalize(unit, lowercase)
    runs = [(i, i + 1, normalize(c, lowercase)) for i, c in enumerate(unit)]
    if "".join(r[2] for r in runs) != normalized:
        runs = _aligned_runs(unit, normalized, lowercase)     # context matters somewhere
    src, lead, last = [], None, 0
    for a, b, head in runs:
        if head:
            src.extend([(a if lead is None else lead, b)] * len(head))
            lead, last = None, len(head)
        elif src:                                 # normalizes to nothing: the run before takes it in
            src[-last:] = [(src[-1][0], b)] * last
        elif lead is None:                        # ... or, at the start, the run after
            lead = a
    return normalized, src


MAX_RUN = 32        # the longest run of characters that _aligned_runs tries before it gives up


def _aligned_runs(unit, normalized, lowercase):
    """Runs (a, b, text) that cover unit and spell `normalized` (= norm(unit)), left to right.

    From each cut a, the run is the shortest unit[a:b] whose own normalization is the next piece of
    `normalized`. lower() writes a capital sigma as final "ς" or "σ" by its neighbours, so those two count
    as one letter when matching, and a sigma that reads otherwise alone joins the runs before it until it
    reads right. Each cut tries at most MAX_RUN ends, so the time is linear in the unit; if none fits, the
    rest of the unit becomes one run (its offsets coarser, never wrong).
    """
    fold = (lambda s: s.replace("ς", "σ")) if lowercase else (lambda s: s)
    target, runs, a, pos, n = fold(normalized), [], 0, 0, len(unit)
    while a < n:
        for b in range(a + 1, min(n, a + MAX_RUN) + 1):
            head = normalize(unit[a:b], lowercase)
            if target.startswith(fold(head), pos):
                break
        else:
            break
        a0, p0, end = a, pos, pos + len(head)
        while head != normalized[p0:end] and runs and b - runs[-1][0] <= MAX_RUN:
            # a sigma read by its neighbours: join the runs before it until it reads as in the whole
            a0, p0 = runs[-1][0], p0 - len(runs.pop()[2])
            head = normalize(unit[a0:b], lowercase)
        runs.append((a0, b, normalized[p0:end]))
        a, pos = b, end
    if a < n or pos < len(normalized):                         # what is left is one run
        if a == n:                                             # (all of unit used: the last run takes it)
            a, pos = runs[-1][0], pos - len(runs.pop()[2])
        runs.append((a, n, normalized[pos:]))
    return runs


def clean_unit(unit):
    """Drop control characters from a unit; returns (cleaned, kept) with kept[i] = index in unit, or None
    for kept when nothing was dropped."""
    if unit.isprintable() and "\ufffd" not in unit:   # no C* characters (units hold no separators)
        return unit, None
    kept = [i for i, c in enumerate(unit) if not is_control(c)]
    return "".join(unit[i] for i in kept), kept


def split_unit(unit, lowercase):
    """Basic tokenization of one unit: its words (normalized) and where each came from in the unit.

    unit: a match of UNIT_RE. returns a list of (word, where). where is an int `offset` when word[k] came
    from unit[offset + k] one to one (the ASCII case); otherwise a list, where[k] = (start, end) the run
    of the unit that word's k-th character came from.
    """
    cleaned, kept = clean_unit(unit)
    if kept is None and cleaned.isascii():        # the common case: one character in, one character out
        return split_on_punctuation(cleaned.lower() if lowercase else cleaned)
    normalized, src = segment_unit(cleaned, lowercase)
    if kept is not None:                          # point back past the dropped controls
        src = [(kept[a], kept[b - 1] + 1) for a, b in src]
    return [(w, src[i:i + len(w)]) for w, i in split_on_punctuation(normalized)]


def basic_tokenize(text, lowercase=True):
    """BERT's basic tokenization of a str: a list of (word, start, end), word normalized, (start, end)
    its span in text. Used by the vocabulary builder; the Tokenizer runs the same steps unit by unit."""
    out = []
    for m in UNIT_RE.finditer(text):
        for word, where in split_unit(m.group(), lowercase):
            if isinstance(where, int):
                out.append((word, m.start() + where, m.start() + where + len(word)))
            else:
                out.append((word, m.start() + where[0][0], m.start() + where[-1][1]))
    return out
