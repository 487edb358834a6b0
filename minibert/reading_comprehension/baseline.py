"""Name-blind readers: what a reader scores on the synthetic corpus without reading the asked name.

A name-blind reader knows the sentence templates (data.RELATIONS) and the relation a question asks,
but not who it asks about. The corpus is built so that such a reader can do no better than guessing
among the question's people (see data.synthetic_records); these readers measure what guessing wins,
and the demo reports the best of them as `baseline_score`, next to the model's score.

    values(passage, rel)     the values of relation rel stated in the passage (parts joined by spaces)
    most_frequent_value      the value of the asked kind stated in the most passages (ties: first seen)
    always_empty             "" for every question (right on the questions no passage answers)
"""
from collections import Counter

from .data import RELATIONS
from .metric import score_predictions


def asked_relation(question):
    """The relation whose question template matches the question (the name is whatever fills {e})."""
    for rel, (_, questions) in RELATIONS.items():
        for q in questions:
            head, tail = q.split("{e}")
            if question.startswith(head) and question.endswith(tail) and len(question) > len(head + tail):
                return rel
    raise ValueError(f"question: matches no template of the synthetic corpus: {question!r}")


def values(passage, rel):
    """Values of relation rel in a passage: the text between the template's words after the name and
    its end, in each sentence of that relation."""
    middle, tail = RELATIONS[rel][0].split("{e}")[1].split("{v}")
    out = []
    for sent in passage.split("。"):
        sent += "。"
        if middle in sent and sent.endswith(tail):
            out.append(sent[sent.index(middle) + len(middle):len(sent) - len(tail)].replace("、", " "))
    return out


def most_frequent_value(record):
    """The value of the asked kind found in the most passages of the record ("" when there is none)."""
    rel = asked_relation(record["question"])
    counts = Counter()
    for p in record["passages"]:
        counts.update(list(dict.fromkeys(values(p["passage"], rel))))   # once a passage, in reading order
    if not counts:
        return ""
    best = max(counts.values())
    return next(v for v in counts if counts[v] == best)


def always_empty(record):
    return ""


READERS = {"most frequent value of the asked kind": most_frequent_value, "always no answer": always_empty}


def baseline_scores(records):
    """reader name -> score_predictions of that reader on the records."""
    return {name: score_predictions(records, {str(r["id"]): read(r) for r in records})
            for name, read in READERS.items()}


def baseline_score(records):
    """(best score of a name-blind reader, that reader's name)."""
    scores = baseline_scores(records)
    name = max(scores, key=lambda k: scores[k]["score"])
    return scores[name]["score"], name
