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

# unit: one CJK ideograph, or a run of characters that are neither whitespace nor CJK. Python's \s is
# BERT's whitespace (Zs, \t, \n, \r) plus U+2028/U+2029 (where str.split splits too) plus SPACE_CONTROLS
UNIT_RE = re.compile(f"[{_CJK_CLASS}]|(?:[^\\s{_CJK_CLASS}]|[{SPACE_CONTROLS}])+")
# piece of an ASCII unit: one punctuation character or a run of other characters
ASCII_PIECE_RE = re.compile(f"[{re.escape(ASCII_PUNCT)}]|[^{re.escape(ASCII_PUNCT)}]+")


@functools.lru_cache(maxsize=1 << 16)
def _is_mark(ch):
    return unicodedata.category(ch) == "Mn"


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


def normalize(text, lowercase):
    """norm(text) for text without controls: NFC, then (lowercase) lower(), NFD, drop Mn."""
    if text.isascii():
        return text.lower() if lowercase else text
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if not _is_mark(c))
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
        # context matters somewhere: from each cut a, the shortest b with norm(a:b) + norm(b:) == norm(a:)
        runs, a, rest = [], 0, normalized
        while a < len(unit):
            b = a + 1
            while b < len(unit) and normalize(unit[a:b], lowercase) + normalize(unit[b:], lowercase) != rest:
                b += 1
            head = normalize(unit[a:b], lowercase)
            runs.append((a, b, head))
            rest = rest[len(head):]
            a = b
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
