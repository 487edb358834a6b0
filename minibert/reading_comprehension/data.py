"""Reading-comprehension data: the WebQA / SogouQA JSON layout, a checked loader, a synthetic corpus.

A data file is a JSON list of records

    {"id": str | int, "question": str, "passages": [{"passage": str, "answer": str}, ...]}

where `answer` is "" when that passage does not answer the question, and the parts of a multi-part
answer are separated by spaces ("游泳 下棋"). The accepted answers of a question are the distinct
non-empty passage answers; a question none of whose passages answers it has the accepted answer "".

The synthetic corpus is Chinese, from templates: people with made-up names and facts (birthplace,
job, school, colleague, two hobbies). Each question asks one fact of one person; it has 2-4 passages
of four sentences, some stating that fact (with the answer) and some another fact of that person, and
every passage carries distractors: the same kind of fact about other people. Test
questions are about people whose names never occur in the training split, and the facts are drawn
afresh for every question, so a model can only answer by reading. Easier passages
(two sentences) make the first stage of the demo's curriculum.
"""
import json
import os

import numpy as np

SURNAMES = list("王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰")
# The values of each relation share no character with one another: a wrong value of the asked kind
# gets no partial credit from the metric's character F1, so guessing among them is worth what it wins.
CITIES = ["临江", "青石", "云川", "白沙", "东港", "北原", "南湖", "西岭", "龙泉", "金山", "凤城", "宁远",
          "安平", "长乐", "玉溪", "松阳"]
JOBS = ["医生", "教师", "画家", "记者", "歌手", "农民", "警察", "飞行员", "会计", "司机", "保安"]
SCHOOLS = ["清风", "明德", "海川", "启航", "南山", "北辰", "星河", "东方"]
HOBBIES = ["游泳", "下棋", "爬山", "钓鱼", "唱歌", "跳舞", "绘画", "读书", "摄影", "骑车", "滑冰", "射箭",
           "打球", "种花"]
# relation: (fact template, question templates)
RELATIONS = {
    "birthplace": ("{e}出生于{v}。", ["{e}出生在哪里？", "{e}的出生地是哪里？"]),
    "job": ("{e}是一名{v}。", ["{e}的职业是什么？", "{e}是做什么工作的？"]),
    "school": ("{e}毕业于{v}大学。", ["{e}毕业于哪所大学？", "{e}是哪个大学毕业的？"]),
    "colleague": ("{e}的同事是{v}。", ["{e}的同事是谁？"]),
    "hobbies": ("{e}喜欢{v}。", ["{e}有哪些爱好？", "{e}喜欢做什么？"]),
}
# a question's people (the asked one and rivals), the sentences of a passage (one person each) and how
# many of them state the asked relation: the same in passages that answer and passages that do not
PEOPLE_PER_QUESTION, SENTENCES, ASKED_SENTENCES = 7, 4, 4


def _fail(path, where, msg):
    raise ValueError(f"{path}: {where}: {msg}")


def check_records(records, path="data"):
    """Check a loaded data file; ValueError naming the record id (and index) and the field that is wrong."""
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    seen = set()
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            _fail(path, f"record at index {i}", f"expected an object, got {type(rec).__name__}")
        rid = rec.get("id")
        where = f"record id {rid!r} (index {i})"
        if isinstance(rid, bool) or not isinstance(rid, (str, int)):
            _fail(path, where, "field 'id': expected a string or an integer")
        if any(c in str(rid) for c in "\t\n\r"):
            _fail(path, where, "field 'id': holds a tab or a line break (ids are written one a line)")
        if str(rid) in seen:
            _fail(path, where, "field 'id': repeated id")
        seen.add(str(rid))
        if not isinstance(rec.get("question"), str) or not rec["question"].strip():
            _fail(path, where, f"field 'question': expected a non-empty string, got {rec.get('question')!r:.60}")
        ps = rec.get("passages")
        if not isinstance(ps, list) or not ps:
            _fail(path, where, f"field 'passages': expected a non-empty list, got {ps!r:.60}")
        for j, p in enumerate(ps):
            if not isinstance(p, dict):
                _fail(path, where, f"field 'passages[{j}]': expected an object, got {type(p).__name__}")
            for key in ("passage", "answer"):
                if not isinstance(p.get(key), str):
                    _fail(path, where, f"field 'passages[{j}].{key}': expected a string, got {p.get(key)!r:.60}")
    return records


def load_records(path):
    """Read and check a data file (see the module docstring)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: expected a JSON file (a list of records), could not parse it: {err}") from None
    return check_records(records, path)


def save_records(records, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f, ensure_ascii=False, indent=0)


def accepted_answers(record):
    """The distinct non-empty passage answers, in order; [""] when no passage answers the question."""
    out = []
    for p in record["passages"]:
        if p["answer"].strip() and p["answer"] not in out:
            out.append(p["answer"])
    return out or [""]


def _names(rng, n):
    """n distinct person names: a surname and one or two given-name characters."""
    names = set()
    while len(names) < n:
        k = 1 + int(rng.integers(2))
        ids = rng.integers(len(GIVEN), size=k)
        names.add(SURNAMES[int(rng.integers(len(SURNAMES)))] + "".join(GIVEN[int(i)] for i in ids))
    return sorted(names)


def _distinct(rng, n, k):
    """k distinct indices below n, in the order drawn (n much larger than k)."""
    out = []
    while len(out) < k:
        i = int(rng.integers(n))
        if i not in out:
            out.append(i)
    return out


def _disjoint_names(rng, pool, n, avoid):
    """n names of the pool sharing no character with one another, none inside or around a name of avoid."""
    out, used = [], set()
    for _ in range(100 * n):
        cand = pool[int(rng.integers(len(pool)))]
        if set(cand) & used or any(cand in a or a in cand for a in avoid):
            continue
        out.append(cand)
        used |= set(cand)
        if len(out) == n:
            return out
    raise ValueError(f"pool: fewer than {n} names sharing no character with one another")


def _values(rng, rel, n, pool, people):
    """n values of one relation, sharing no character with one another (hobbies: two each, 'a b')."""
    if rel == "colleague":
        return _disjoint_names(rng, pool, n, people)
    if rel == "hobbies":
        h = rng.permutation(len(HOBBIES))[:2 * n]
        return [HOBBIES[h[2 * i]] + " " + HOBBIES[h[2 * i + 1]] for i in range(n)]
    values = {"birthplace": CITIES, "job": JOBS, "school": SCHOOLS}[rel]
    return [values[int(i)] for i in rng.permutation(len(values))[:n]]


def _facts(rng, people, pool, relations):
    """person -> relation -> value, for a question's people and the given relations; within a relation,
    no two people's values share a character (so no passage holds the parts of someone else's value)."""
    facts = {p: {} for p in people}
    for rel in relations:
        for p, v in zip(people, _values(rng, rel, len(people), pool, people)):
            facts[p][rel] = v
    return facts


def _sentence(name, rel, value):
    # multi-part answers are written "a、b" in the text; bert4keras turns 、 into "," before encoding
    return RELATIONS[rel][0].format(e=name, v=value.replace(" ", "、"))


def _passage(rng, people, rel, facts, n_sentences=SENTENCES, n_asked=ASKED_SENTENCES):
    """n_sentences shuffled sentences, each about a different person drawn from the question's people,
    n_asked of them (drawn at random) stating the asked relation, the others another relation. The
    asked person is one of the people like any other: a passage answers when it happens to state their
    asked fact, and nothing but their name tells which sentence is theirs."""
    named = [people[int(i)] for i in rng.permutation(len(people))[:n_sentences]]
    others = [r for r in RELATIONS if r != rel]
    sents = []
    for k, p in enumerate(named):
        r = rel if k < n_asked else others[int(rng.integers(len(others)))]
        sents.append(_sentence(p, r, facts[p][r]))
    return "".join(sents[i] for i in rng.permutation(len(sents)))


def _easy_passage(rng, name, rel, facts, people, disjoint):
    """Two shuffled sentences: the asked fact and the asked relation of one other person of the
    question, drawn at random; with disjoint, drawn among those whose name shares no character with
    the asked one where the question's people allow it. Always answering."""
    rivals = [p for p in people if p != name]
    if disjoint:
        rivals = [p for p in rivals if not set(p) & set(name)] or rivals
    sents = [_sentence(name, rel, facts[name][rel])]
    if rivals:
        rival = rivals[int(rng.integers(len(rivals)))]
        sents.append(_sentence(rival, rel, facts[rival][rel]))
    order = rng.permutation(len(sents))
    return "".join(sents[i] for i in order)


def _question(rng, k, people, pool, prefix, kind):
    """One record: the asked person, six rivals, fresh facts, 2-4 passages (see synthetic_records)."""
    cands = [people[i] for i in _distinct(rng, len(people), PEOPLE_PER_QUESTION + 3)]
    name, group = cands[0], [cands[0]]
    for c in cands[1:]:                   # no person's name inside another's: each sentence has one reading
        if len(group) < PEOPLE_PER_QUESTION and not any(c in g or g in c for g in group):
            group.append(c)
    rel = list(RELATIONS)[int(rng.integers(len(RELATIONS)))]
    # the other relations are drawn only when some sentences state them
    facts = _facts(rng, group, pool, [rel] if ASKED_SENTENCES == SENTENCES else list(RELATIONS))
    question = RELATIONS[rel][1][int(rng.integers(len(RELATIONS[rel][1])))].format(e=name)
    value = facts[name][rel]
    passages = []
    for _ in range(int(rng.integers(2, 5))):
        if kind in EASY_KINDS:
            text = _easy_passage(rng, name, rel, facts, group, disjoint=kind == "easy-disjoint")
        else:
            text = _passage(rng, list(rng.permutation(group)), rel, facts)
        says = _sentence(name, rel, value) in text
        if not says and all(part in text for part in value.split()):
            raise AssertionError(f"a passage that does not answer holds the answer {value!r}: {text}")
        passages.append({"passage": text, "answer": value if says else ""})
    return {"id": f"{prefix}{k}", "question": question, "passages": passages}


EASY_KINDS = ("easy", "easy-disjoint")
PASSAGE_KINDS = ("full",) + EASY_KINDS


def synthetic_records(n, rng, people, prefix, kind="full"):
    """n questions about the given people. Every question draws fresh facts for everyone (consistent
    across its passages), so remembering a person's facts from another question does not help.

    kind 'full' (the test's passages): a question has seven people, the asked one among them; each of
    its 2-4 passages has four sentences about four of the seven, drawn at random, all of the asked
    relation. A passage answers when the asked person is among its four, so answering and answerless
    passages have the same sentences, names, relations and positions; only the asked name tells them
    apart, and no value of the asked kind is more frequent for the asked person than for a rival.
    kind 'easy' (the first stage of the demo's curriculum): two sentences, the asked fact and one
    rival's, always answering: all there is to learn is which person a value belongs to. The rival is
    any other of the question's people, so about one passage in five has two names sharing a character.
    kind 'easy-disjoint' (the demo's easy stage before its second revision of 2026-12-03): the same,
    but the rival's name shares no character with the asked one where the question's people allow it,
    so one character of the name is enough to pick the sentence.
    """
    if kind not in PASSAGE_KINDS:
        raise ValueError(f"kind: expected one of {list(PASSAGE_KINDS)}, got {kind!r}")
    return [_question(rng, k, people, people, prefix, kind) for k in range(n)]


def _people(seed, n_people, held_out):
    """(rng, train_people, test_people): the people of a seed; rng has drawn them and draws on from there."""
    rng = np.random.default_rng(seed)
    names = _names(rng, n_people)
    order = rng.permutation(n_people)
    n_out = max(3, int(round(held_out * n_people)))
    return rng, sorted(names[i] for i in order[n_out:]), sorted(names[i] for i in order[:n_out])


def synthetic_corpus(n_train=4000, n_test=300, seed=0, n_people=4000, held_out=0.25, curriculum=()):
    """(train, test, stages): train and test are 'full' questions, and test questions are about people
    absent from the training split.

    curriculum: (kind, n) pairs, e.g. [("easy", 20000)]; stages: the matching
    [(kind, records)] about the training people, drawn after train. The test questions come from a
    random stream of their own (seeded by (seed, 1)), so neither their number nor the curriculum changes
    what the others hold. A colleague of a training person is always a training person (and likewise
    for test people), so no held-out name ever appears in a training passage.
    """
    rng, train_people, test_people = _people(seed, n_people, held_out)
    train = synthetic_records(n_train, rng, train_people, "train-")
    stages = [(kind, synthetic_records(n, rng, train_people, f"{kind}-", kind)) for kind, n in curriculum]
    test = synthetic_records(n_test, np.random.default_rng([seed, 1]), test_people, "test-")
    return train, test, stages


def dev_records(n, seed=0, n_people=4000, held_out=0.25):
    """n 'full' questions about the training people of synthetic_corpus(seed=seed) (same n_people and
    held_out), from a random stream of their own (seeded by (seed, 2)): a development set to choose
    between trained models without looking at the held-out people. The facts are drawn afresh for every
    question, so a model has not seen these answers, only these names."""
    _, train_people, _ = _people(seed, n_people, held_out)
    return synthetic_records(n, np.random.default_rng([seed, 2]), train_people, "dev-")


def corpus_characters(records):
    """Every character of the questions, passages and answers (to build a vocabulary)."""
    chars = set()
    for r in records:
        chars.update(r["question"])
        for p in r["passages"]:
            chars.update(p["passage"])
            chars.update(p["answer"])
    return chars
