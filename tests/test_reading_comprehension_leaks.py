"""The synthetic corpus tells whether a passage answers only through the asked name.

A name-blind probe (logistic regression on what a passage shows once every name is masked: its masked
characters, its sentence, relation and name counts, where each relation sits, how often its values
recur across the question's passages) must not beat the base rate; the same probe does beat it on a
corpus with a planted leak, so it can see one. The name-blind readers of baseline.py score low.
"""
from collections import Counter

import numpy as np
import pytest

from minibert.reading_comprehension.baseline import asked_relation, baseline_scores, values
from minibert.reading_comprehension.data import RELATIONS, synthetic_corpus

HEADS = {rel: RELATIONS[rel][0].split("{e}")[1].split("{v}") for rel in RELATIONS}   # (middle, tail)
CHARS = sorted(set("".join(f for f, _ in RELATIONS.values()).replace("{e}", "").replace("{v}", "")) | {"X"})


def _masked_sentences(passage):
    """(relation, value or 'X' for a name) of each sentence, the person masked."""
    out = []
    for sent in filter(None, passage.split("。")):
        sent += "。"
        rel = next(r for r, (mid, tail) in HEADS.items() if mid in sent and sent.endswith(tail))
        mid, tail = HEADS[rel]
        value = sent[sent.index(mid) + len(mid):len(sent) - len(tail)]
        out.append((rel, "X" if rel == "colleague" else value))
    return out


def _features(record, passage, n_passages):
    """A name-blind feature vector of one (question, passage) pair."""
    rel = asked_relation(record["question"])
    sents = _masked_sentences(passage)
    masked = "".join("X" + HEADS[r][0] + v + HEADS[r][1] for r, v in sents)
    chars = Counter(c for c in masked if c in CHARS)
    counts = Counter(r for r, _ in sents)
    first = {r: next((i for i, (s, _) in enumerate(sents) if s == r), -1) for r in RELATIONS}
    seen = Counter(v for p in record["passages"] for v in set(values(p["passage"], rel)))
    recur = [seen[v] for v in values(passage, rel)] or [0]
    f = [len(sents), counts[rel], len(passage), n_passages, max(recur), float(np.mean(recur)),
         sum(v == "X" for _, v in sents) + len(sents), float(max(recur) == max(seen.values(), default=0))]
    f += [float(r == rel) for r in RELATIONS] + [counts[r] for r in RELATIONS] + [first[r] for r in RELATIONS]
    f += [float(r == rel) * counts[r] for r in RELATIONS] + [chars[c] for c in CHARS]
    return f


def _pairs(records):
    X, y = [], []
    for r in records:
        for p in r["passages"]:
            X.append(_features(r, p["passage"], len(r["passages"])))
            y.append(float(bool(p["answer"])))
    return np.array(X, dtype=np.float64), np.array(y)


def _probe_gain(train, test, steps=400, lr=0.5, l2=1e-3):
    """Test accuracy of a logistic regression trained on train's pairs, minus the test base rate."""
    Xtr, ytr = _pairs(train)
    Xte, yte = _pairs(test)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-9
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    w, b = np.zeros(Xtr.shape[1]), 0.0
    for _ in range(steps):                                  # full-batch gradient descent on the log loss
        p = 1.0 / (1.0 + np.exp(-(Xtr @ w + b)))
        w -= lr * (Xtr.T @ (p - ytr) / len(ytr) + l2 * w)
        b -= lr * float(np.mean(p - ytr))
    acc = float(np.mean(((Xte @ w + b) > 0) == (yte > 0.5)))
    base = max(float(yte.mean()), 1 - float(yte.mean()))
    return acc - base, len(yte)


def _plant_length_leak(records):
    """A leaky copy: every answerless passage loses its last sentence (the earlier generator's leak)."""
    out = []
    for r in records:
        ps = [p if p["answer"] else dict(p, passage="。".join(p["passage"].split("。")[:-2]) + "。")
              for p in r["passages"]]
        out.append(dict(r, passages=ps))
    return out


@pytest.fixture(scope="module")
def corpus():
    train, test, _ = synthetic_corpus(1000, 1750, seed=11, n_people=2000)
    return train, test


def test_name_blind_probe_does_not_beat_the_base_rate(corpus):
    train, test = corpus
    gain, n = _probe_gain(train, test)
    assert n >= 5000, n
    assert gain <= 0.02, f"a name-blind probe beats the base rate by {gain:.3f} on {n} pairs"


def test_the_probe_finds_a_planted_leak(corpus):
    train, test = corpus
    gain, _ = _probe_gain(_plant_length_leak(train), _plant_length_leak(test))
    assert gain > 0.2, f"the probe should see the planted length leak, gain {gain:.3f}"


def test_name_blind_readers_score_low(corpus):
    _, test = corpus
    scores = baseline_scores(test)
    assert max(s["score"] for s in scores.values()) <= 0.20, scores
    # the most frequent value of the asked kind is right about as often as a guess among the 7 people
    assert 0.08 <= scores["most frequent value of the asked kind"]["accuracy"] <= 0.20
