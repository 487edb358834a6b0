"""The SogouQA metric: normalization, accuracy (exact match), character-level F1, score = (acc + F1) / 2.

As Sogou's evaluation script (evaluate_tool/ of bojone/dgcnn_for_reading_comprehension) defines it:
    normalize(s): full-width characters to half-width, ASCII letters to lowercase, every character of
                  the script's own punctuation list (PUNCTUATION below, not Unicode's categories) to a
                  space, then every whitespace character removed
    EM  = 0 for an empty prediction; else 1 if normalize(pred) is an accepted answer (raw or normalized);
          else 1 if parts(pred) == parts(original answer), where parts(s) turns the list's punctuation
          in the raw s into spaces, lowercases, splits on single spaces and normalizes each piece (so
          "下棋，游泳" matches "游泳 下棋", and two spaces in a row leave an empty piece that must match too)
    F1  = max over accepted answers g of 2 P R / (P + R), with overlap = size of the character multiset
          intersection, P = overlap / len(pred), R = overlap / len(g)   (both normalized); 0 when empty
The "original answer" is the record's first accepted answer, the others are its variants.
One addition for data with answerless questions (Sogou's have none): when the only accepted answer is ""
the question is scored 1 for an empty prediction and 0 for any other.
No-answer precision: of the questions answered "", the share whose accepted answer is "";
no-answer recall: of the questions whose accepted answer is "", the share answered "".
"""
import os
import re
from collections import Counter

from .data import accepted_answers

# The evaluation script's punctuation file, one mark per line (its blank lines add nothing)
PUNCTUATION = frozenset(
    "`^~<=>|_-,;:!?/.'\"()[]{}@$*\\&#%+"
    "…‰※•—‖‘’“”№←↑→↓∴∨∵∶∩∈∑√∞≯≡≮≤≥≈≌⊥⊙⌒□◆◇◎●★☆♀♂¨°·§¤±\u3000、。〃々〈〉《》「」『』【】〓〔〕〖〗÷×′▲″△∠≠■ˇˉ"
    "￣￥＿！＄（），．：；？～﹑￠")
_BLANKS = re.compile(r"\s+")


def full_to_half(s):
    """Full-width ASCII (U+FF01..U+FF5E) and the ideographic space to their half-width forms."""
    out = []
    for c in s:
        code = ord(c)
        if code == 0x3000:
            code = 0x20
        elif 0xFF01 <= code <= 0xFF5E:
            code -= 0xFEE0
        out.append(chr(code))
    return "".join(out)


def ascii_lower(s):
    """Lowercase A-Z only (the script lowercases UTF-8 bytes, which leaves other letters alone)."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def drop_punctuation(s):
    """Every character of PUNCTUATION becomes a space."""
    return "".join(" " if c in PUNCTUATION else c for c in s)


def normalize(s):
    return _BLANKS.sub("", drop_punctuation(ascii_lower(full_to_half(s)))).strip()


def parts(s):
    """{normalize(piece)} over the pieces of the raw s split on single spaces after its punctuation
    became spaces (empty pieces included, as in the script)."""
    return {normalize(x) for x in ascii_lower(drop_punctuation(s)).split(" ")}


def _answerless(golds):
    return golds == [""] or not any(g.strip() for g in golds)


def exact_match(pred, golds):
    """1.0 or 0.0; golds: the accepted answers, the first being the original one."""
    if _answerless(golds):
        return float(normalize(pred) == "")
    if not pred.strip():
        return 0.0
    npred = normalize(pred)
    if npred in set(golds) | {normalize(g) for g in golds}:
        return 1.0
    return float(parts(pred.strip()) == parts(golds[0]))


def char_f1(pred, golds):
    if _answerless(golds):
        return float(normalize(pred) == "")
    npred = normalize(pred)
    if not pred.strip() or not npred:
        return 0.0
    best = 0.0
    for g in golds:
        ng = normalize(g)
        overlap = sum((Counter(npred) & Counter(ng)).values())
        if overlap and ng:
            p, r = overlap / len(npred), overlap / len(ng)
            best = max(best, 2 * p * r / (p + r))
    return best


def score_predictions(records, predictions):
    """records: checked data records; predictions: id (str) -> answer (a missing id counts as "").

    returns {accuracy, f1, score, no_answer_precision, no_answer_recall, questions, missing_ids (records
    without a prediction), unknown_ids (predictions for ids the records lack, not scored) and unknown_example}
    """
    if not records:
        raise ValueError("records: expected at least one record, got none")
    ids = {str(r["id"]) for r in records}
    unknown = [k for k in predictions if k not in ids]
    em = f1 = 0.0
    pred_empty = gold_empty = both = 0
    for r in records:
        golds = accepted_answers(r)
        pred = predictions.get(str(r["id"]), "")
        em += exact_match(pred, golds)
        f1 += char_f1(pred, golds)
        pe, ge = normalize(pred) == "", golds == [""]
        pred_empty, gold_empty, both = pred_empty + pe, gold_empty + ge, both + (pe and ge)
    n = len(records)
    return {"accuracy": em / n, "f1": f1 / n, "score": (em + f1) / (2 * n),
            "no_answer_precision": both / pred_empty if pred_empty else None,
            "no_answer_recall": both / gold_empty if gold_empty else None, "questions": n,
            "missing_ids": len(ids - set(predictions)), "unknown_ids": len(unknown),
            "unknown_example": unknown[0] if unknown else None}


def read_predictions(path):
    """id<TAB>answer lines (the answer may be empty) -> {id: answer}; ValueError naming the file and line
    of a malformed one, of bytes that are not UTF-8, or of an id given twice."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"predictions file not found: {path}")
    out = {}
    with open(path, "rb") as f:
        for k, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}: line {k}: not UTF-8 text ({err.reason} at byte {err.start})") from None
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(f"{path}: line {k}: expected 'id<TAB>answer', got {line!r:.60}")
            qid, ans = line.split("\t", 1)
            if qid in out:
                raise ValueError(f"{path}: line {k}: id {qid!r} has a prediction already")
            out[qid] = ans
    return out


def write_predictions(predictions, path):
    """id<TAB>answer lines. An id holding a tab or a line break is refused (it would split its line); the
    answer's tabs and line breaks become spaces."""
    for qid in predictions:
        if any(c in str(qid) for c in "\t\n\r"):
            raise ValueError(f"predictions: id {qid!r} holds a tab or a line break; it cannot be written as "
                             "an id<TAB>answer line")
    with open(path, "w", encoding="utf-8") as f:
        for qid, ans in predictions.items():
            f.write(f"{qid}\t{' '.join(ans.replace(chr(9), ' ').splitlines())}\n")
