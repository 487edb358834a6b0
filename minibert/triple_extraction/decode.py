"""Decoding pointer probabilities into triples, and the micro precision / recall / F1.

Starts are positions with p > 0.6, ends positions with p > 0.5 (thresholds on sigmoid**2 for subjects,
sigmoid**4 for objects); each start is paired with the nearest end at or after it. Token spans are cut
out of the original text with the tokenizer's character offsets, never by decoding ids.
"""
import numpy as np

from ..basic_tokenizer import basic_tokenize
from .model import object_probs, subject_probs

START_THRESHOLD, END_THRESHOLD = 0.6, 0.5


def subject_spans(p, length):
    """Subject token spans from p (T, 2) = start/end probabilities; positions 0 and length-1 ([CLS],
    [SEP]) and beyond are ignored.   returns list of (start, end)"""
    p = np.array(p[:length], dtype=np.float64)
    p[0] = p[length - 1] = 0.0
    starts = np.flatnonzero(p[:, 0] > START_THRESHOLD)
    ends = np.flatnonzero(p[:, 1] > END_THRESHOLD)
    spans = []
    for s in starts:
        after = ends[ends >= s]
        if after.size:
            spans.append((int(s), int(after[0])))
    return spans


def object_spans(p, length):
    """Object (start, end, predicate id) from p (T, P, 2); pairs a start with the first end at or after
    it with the same predicate; [CLS], [SEP] and padding ignored."""
    p = np.array(p[:length], dtype=np.float64)
    p[0] = p[length - 1] = 0.0
    out = []
    for s, k in zip(*np.nonzero(p[:, :, 0] > START_THRESHOLD)):
        ends = np.flatnonzero(p[s:, k, 1] > END_THRESHOLD)
        if ends.size:
            out.append((int(s), int(s + ends[0]), int(k)))
    return out


def span_text(text, offsets, start, end):
    """The characters of text under tokens start..end of [CLS] x [SEP] (offsets: spans of x's tokens)."""
    return text[offsets[start - 1][0]:offsets[end - 1][1]]


def extract(params, config, tokenizer, texts, predicates, maxlen=128):
    """Triples of each text: list (one per text) of sorted lists of (subject, predicate, object)."""
    ids, _ = tokenizer.encode_batch(list(texts), maxlen=maxlen)
    lengths = np.array([len(tokenizer.encode(t, maxlen=maxlen)[0]) for t in texts])
    mask = (np.arange(ids.shape[1])[None] < lengths[:, None]).astype(np.float32)
    ps, h_pre = subject_probs(params, config, ids, mask)
    # every candidate subject of every sentence goes through the object branch in one batch
    rows, starts, ends = [], [], []
    for b in range(len(texts)):
        for s, e in subject_spans(ps[b], lengths[b]):
            rows.append(b), starts.append(s), ends.append(e)
    results = [set() for _ in texts]
    if rows:
        rows = np.array(rows)
        po = object_probs(params, config, h_pre[rows], np.array(starts), np.array(ends))
        offsets = [tokenizer.tokenize_with_offsets(t)[1] for t in texts]
        for k, b in enumerate(rows):
            subject = span_text(texts[b], offsets[b], starts[k], ends[k])
            for os_, oe, p in object_spans(po[k], lengths[b]):
                results[b].add((subject, predicates[p], span_text(texts[b], offsets[b], os_, oe)))
    return [sorted(r) for r in results]


def triple_key(triple):
    """What two triples must share to count as equal: as bert4keras's SPO, the tokenized subject, the
    predicate and the tokenized object. The tokens here are BERT's basic ones (lowercase, split at
    whitespace and punctuation, one token per CJK character), which need no vocabulary, so `evaluate`
    needs no model and two unknown characters never compare equal as [UNK]."""
    s, p, o = triple
    return (tuple(w for w, _, _ in basic_tokenize(s)), p, tuple(w for w, _, _ in basic_tokenize(o)))


def micro_prf(predicted, gold):
    """Micro P, R, F1 over lists of triple collections: X = sum |R & T|, Y = sum |R|, Z = sum |T|,
    P = X / Y, R = X / Z, F1 = 2X / (Y + Z) (0 where a denominator is 0); triples compared by triple_key.
    returns dict"""
    if len(predicted) != len(gold):
        raise ValueError(f"predicted and gold must have the same length, got {len(predicted)} and {len(gold)}")
    X = Y = Z = 0
    for r, t in zip(predicted, gold):
        r, t = set(map(triple_key, r)), set(map(triple_key, t))
        X, Y, Z = X + len(r & t), Y + len(r), Z + len(t)
    return {"precision": X / Y if Y else 0.0, "recall": X / Z if Z else 0.0,
            "f1": 2 * X / (Y + Z) if Y + Z else 0.0, "correct": X, "predicted": Y, "gold": Z}


def score_files(data_path, predictions_path):
    """micro_prf of a predictions file (the data layout) against a data file, matched line by line."""
    from .data import load_examples
    gold, pred = load_examples(data_path), load_examples(predictions_path)
    if len(gold) != len(pred):
        raise ValueError(f"--predictions has {len(pred)} examples, --data has {len(gold)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if g["text"] != p["text"]:
            raise ValueError(f"--predictions example {i + 1} has text {p['text'][:30]!r}, "
                             f"--data has {g['text'][:30]!r}")
    return micro_prf([p["spo_list"] for p in pred], [g["spo_list"] for g in gold])
