"""Cloze questions from real text: People's Daily sentences with one entity asked for.

After Cui et al. (2016, "Consensus Attention-based Neural Networks for Chinese Reading Comprehension"),
who built a cloze benchmark from People's Daily news by blanking one word of a sentence and using the rest
of the document as context; here the blank is an entity and the record is multi-passage, in the WebQA /
SogouQA layout of data.py, so the model, decoder, vote and metric of this package apply unchanged.

One question (rules, in order):
  - a sentence of one paragraph of a document (cut after 。！？ and any closing quote); one entity in it
    of type nr / ns / nt / t / m (peoples_daily.py), a number only if it has a digit ("１２．３％", not
    "一" or "十分"); the entity's text is replaced by the question word of its type:
        nr 谁   ns 哪里   nt 哪个机构   t 什么时候   m 多少
    with `max_question_chars`, only the clauses around the entity that keep the question that short
    (question_window); kept only when the rest of that text has at least `min_context` characters, the
    entity's text appears nowhere else in the question, and some other paragraph of the document has it;
  - passages: up to `max_same` pieces of the document's OTHER paragraphs (at least one containing the
    answer), then `n_other` pieces of other documents of the same list that do not contain it, in a
    random order; a passage's answer is the entity's text when the passage contains it, else "";
    no passage contains the question's own text (the sentence, or the part of it kept);
  - a piece is a whole paragraph, or with `max_chars` consecutive whole sentences of at most that many
    characters (a longer sentence is cut).
At most `per_document` questions per document, at most one per sentence.

Questions from training documents draw their distractors from training documents, held-out ones from
held-out documents (cloze_splits), so no held-out text reaches training.

The baselines read the entity tags of the passages, which a model is not given: the most frequent entity
of the asked type across the passages, and a random one of them (seeded).
"""
import collections

from ..peoples_daily import split_documents

QUESTION_WORDS = {"nr": "谁", "ns": "哪里", "nt": "哪个机构", "t": "什么时候", "m": "多少"}
DIGITS = set("0123456789０１２３４５６７８９")
_ENDS, _CLOSERS = "。！？", "”’』」）"
_CLAUSE_ENDS = "，；：、。！？"


def sentence_spans(text):
    """(start, end) of each sentence: cut after a run of 。！？ and the closing quotes that follow it."""
    spans, start, i = [], 0, 0
    while i < len(text):
        if text[i] in _ENDS:
            while i + 1 < len(text) and (text[i + 1] in _ENDS or text[i + 1] in _CLOSERS):
                i += 1
            spans.append((start, i + 1))
            start = i + 1
        i += 1
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def passage_pieces(paragraph, max_chars=None):
    """A paragraph as passages: [(text, entities)], entities [(text, kind)] lying inside the piece.

    max_chars None: the whole paragraph; else greedy runs of whole sentences of at most max_chars
    characters, a longer sentence cut every max_chars characters (entities cut across are dropped).
    """
    text = paragraph.text
    if max_chars is None:
        cuts = [(0, len(text))]
    else:
        cuts = []
        for a, b in sentence_spans(text):
            if cuts and b - cuts[-1][0] <= max_chars:
                cuts[-1] = (cuts[-1][0], b)               # the sentence joins the current piece
            else:
                cuts.extend((s, min(s + max_chars, b)) for s in range(a, b, max_chars))
    return [(text[a:b], [(e.text, e.kind) for e in paragraph.entities if a <= e.start and e.end <= b])
            for a, b in cuts]


def _asked(entity):
    return entity.kind in QUESTION_WORDS and (entity.kind != "m" or any(c in DIGITS for c in entity.text))


def question_window(text, a, b, start, end, budget, word_bounds=None):
    """The part of sentence text[a:b] kept around the entity text[start:end]: (wa, wb), wb - wa <= budget.

    Whole clauses (cut after ，；：、 and the sentence ends): the entity's clause, then the clause before and
    the one after in turn while they fit; a clause longer than budget: budget characters around the entity,
    narrowed to whole words when word_bounds (the set of word start and end offsets) is given.
    """
    cuts = [a] + [k + 1 for k in range(a, b - 1) if text[k] in _CLAUSE_ENDS] + [b]
    wa, wb = max(c for c in cuts if c <= start), min(c for c in cuts if c >= end)
    if wb - wa > budget:                                      # one long clause: a window centred on the entity
        wa = max(a, start - (budget - (end - start)) // 2)
        wb = min(b, wa + budget)
        wa = max(a, wb - budget)
        if word_bounds is not None:                           # the entity's own ends are word bounds
            wa = min(c for c in word_bounds if wa <= c <= start)
            wb = max(c for c in word_bounds if end <= c <= wb)
        return wa, wb
    grown = True
    while grown:
        grown = False
        before, after = [c for c in cuts if c < wa], [c for c in cuts if c > wb]
        if before and wb - before[-1] <= budget:
            wa, grown = before[-1], True
        if after and after[0] - wa <= budget:
            wb, grown = after[0], True
    return wa, wb


def candidates(document, min_context=8, max_question_chars=None):
    """Every possible question of a document: (paragraph index, sentence start, source, question, entity).

    source: the text the question is made from, the whole sentence or (max_question_chars) the part of
    it question_window keeps, so that the question has at most max_question_chars characters.
    """
    out = []
    for i, p in enumerate(document.paragraphs):
        others = [q.text for j, q in enumerate(document.paragraphs) if j != i]
        bounds = {c for span in p.word_spans() for c in span}
        for a, b in sentence_spans(p.text):
            for e in p.entities:
                if not (a <= e.start and e.end <= b and _asked(e)):
                    continue
                word = QUESTION_WORDS[e.kind]
                wa, wb = a, b
                if max_question_chars is not None:
                    wa, wb = question_window(p.text, a, b, e.start, e.end,
                                             max_question_chars - len(word) + len(e.text), bounds)
                source = p.text[wa:wb]
                question = source[:e.start - wa] + word + source[e.end - wa:]
                if len(source) - len(e.text) < min_context or e.text in question:
                    continue
                if any(e.text in t and source not in t for t in others):
                    out.append((i, a, source, question, e))
    return out


def _passages(document, i, sentence, answer, pool, rng, max_same, n_other, max_chars):
    """Passages for one question: [(text, entities)], or None if no other paragraph answers it."""
    own = [piece for j, p in enumerate(document.paragraphs) if j != i
           for piece in passage_pieces(p, max_chars) if sentence not in piece[0]]
    answering = [k for k, (t, _) in enumerate(own) if answer in t]
    if not answering:
        return None
    first = answering[int(rng.integers(len(answering)))]
    rest = [k for k in rng.permutation(len(own)) if k != first][:max_same - 1]
    chosen = [own[first]] + [own[k] for k in rest]
    for _ in range(n_other):
        for _try in range(20):                              # a piece of another document without the answer
            doc = pool[int(rng.integers(len(pool)))]
            if doc.doc_id == document.doc_id:
                continue
            pieces = passage_pieces(doc.paragraphs[int(rng.integers(len(doc.paragraphs)))], max_chars)
            piece = pieces[int(rng.integers(len(pieces)))]
            if answer not in piece[0] and sentence not in piece[0]:
                chosen.append(piece)
                break
    return [chosen[k] for k in rng.permutation(len(chosen))]


def cloze_records(documents, rng, per_document=2, max_same=4, n_other=1, max_chars=None, min_context=8,
                  max_question_chars=None, prefix=""):
    """Cloze questions from a list of documents: (records, facts), aligned lists.

    records: data.py's layout {"id", "question", "passages": [{"passage", "answer"}]}
    max_question_chars: None (a whole sentence) or the longest question, cut to whole clauses around
            the question word (question_window); a model reading 24 question tokens sees about 22
    facts: {"type": the entity's tag, "sentence": the question's own text (its sentence, or the part of it
            kept), "document": its doc_id,
            "passage_entities": [[(text, kind), ...] per passage]}, for the baselines and per-type scores
    rng: numpy Generator (documents in order; the same seed gives the same questions)
    """
    for name, value, low in (("per_document", per_document, 1), ("max_same", max_same, 1),
                             ("n_other", n_other, 0), ("min_context", min_context, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    for name, value, low in (("max_chars", max_chars, 1), ("max_question_chars", max_question_chars, 8)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{name}: expected None or an int >= {low}, got {value!r}")
    records, facts = [], []
    for doc in documents:
        found = candidates(doc, min_context, max_question_chars)
        used, k = set(), 0
        for c in rng.permutation(len(found)):
            i, start, sentence, question, entity = found[c]
            if k >= per_document or (i, start) in used:
                continue
            chosen = _passages(doc, i, sentence, entity.text, documents, rng, max_same, n_other, max_chars)
            if chosen is None:
                continue
            used.add((i, start))
            records.append({"id": f"{prefix}{doc.doc_id}-{k}", "question": question,
                            "passages": [{"passage": t, "answer": entity.text if entity.text in t else ""}
                                         for t, _ in chosen]})
            facts.append({"type": entity.kind, "sentence": sentence, "document": doc.doc_id,
                          "passage_entities": [ents for _, ents in chosen]})
            k += 1
    return records, facts


def cloze_splits(documents, rng, held_out_fraction=0.1, **options):
    """(train_records, train_facts, held_records, held_facts): each split's questions and distractors
    from its own documents (peoples_daily.split_documents); options go to cloze_records."""
    train_docs, held_docs = split_documents(documents, held_out_fraction)
    train, train_facts = cloze_records(train_docs, rng, prefix="train-", **options)
    held, held_facts = cloze_records(held_docs, rng, prefix="test-", **options)
    return train, train_facts, held, held_facts


def frequency_answer(fact):
    """The entity of the asked type mentioned most often across the passages (first seen wins a tie)."""
    counts = collections.Counter(t for ents in fact["passage_entities"] for t, kind in ents
                                 if kind == fact["type"])
    return max(counts, key=counts.get) if counts else ""   # max keeps the first of equal counts


def random_answer(fact, rng):
    """A uniformly random distinct entity of the asked type from the passages ("" when there is none)."""
    seen = list(dict.fromkeys(t for ents in fact["passage_entities"] for t, kind in ents
                              if kind == fact["type"]))
    return seen[int(rng.integers(len(seen)))] if seen else ""


def baseline_predictions(records, facts, which, rng=None):
    """id -> answer of a baseline ('frequency' or 'random', the latter needs rng), for score_predictions."""
    if which not in ("frequency", "random"):
        raise ValueError(f"which: expected 'frequency' or 'random', got {which!r}")
    if which == "random" and rng is None:
        raise ValueError("rng: the random baseline needs a numpy Generator, got None")
    if len(records) != len(facts):
        raise ValueError(f"facts: expected one per record ({len(records)}), got {len(facts)}")
    pick = frequency_answer if which == "frequency" else (lambda f: random_answer(f, rng))
    return {str(r["id"]): pick(f) for r, f in zip(records, facts)}


def question_statistics(records, facts, window=94):
    """Questions per type, passages per question, answering passages, and the share of answering
    passages whose answer ends within the first `window` characters (what a model reading that many
    passage tokens can see)."""
    kinds = collections.Counter(f["type"] for f in facts)
    passages = [p for r in records for p in r["passages"]]
    answering = [p for p in passages if p["answer"]]
    seen = sum(p["passage"].find(p["answer"]) + len(p["answer"]) <= window for p in answering)
    return {"questions": len(records), "per_type": {k: kinds[k] for k in QUESTION_WORDS},
            "passages_per_question": len(passages) / max(len(records), 1),
            "answering_share": len(answering) / max(len(passages), 1),
            f"answer_within_{window}_chars": seen / max(len(answering), 1)}
