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
CITIES = ["临江市", "青石镇", "云川县", "白沙市", "东港市", "北原县", "南湖镇", "西岭村", "龙泉市",
          "金山县", "凤城市", "宁远县", "安平镇", "长乐市", "玉溪村", "松阳县"]
JOBS = ["医生", "教师", "律师", "厨师", "画家", "工程师", "记者", "歌手", "飞行员", "农民", "警察", "作家"]
SCHOOLS = ["清风大学", "明德学院", "海川大学", "启航中学", "南山学院", "北辰大学", "星河中学", "东方学院"]
HOBBIES = ["游泳", "下棋", "爬山", "钓鱼", "唱歌", "跳舞", "绘画", "读书", "摄影", "骑车"]
# relation: (fact template, question templates)
RELATIONS = {
    "birthplace": ("{e}出生于{v}。", ["{e}出生在哪里？", "{e}的出生地是哪里？"]),
    "job": ("{e}是一名{v}。", ["{e}的职业是什么？", "{e}是做什么工作的？"]),
    "school": ("{e}毕业于{v}。", ["{e}毕业于哪所学校？", "{e}是哪个学校毕业的？"]),
    "colleague": ("{e}的同事是{v}。", ["{e}的同事是谁？"]),
    "hobbies": ("{e}喜欢{v}。", ["{e}有哪些爱好？", "{e}喜欢做什么？"]),
}


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
        names.add(str(rng.choice(SURNAMES)) + "".join(rng.choice(GIVEN, size=k)))
    return sorted(names)


def _facts(rng, name, pool):
    """One random value per relation for a person (hobbies: two distinct ones, as 'a b')."""
    colleague = name
    while colleague == name:
        colleague = pool[int(rng.integers(len(pool)))]
    c, j, s, h1, h2 = rng.integers(len(CITIES)), rng.integers(len(JOBS)), rng.integers(len(SCHOOLS)), \
        rng.integers(len(HOBBIES)), rng.integers(len(HOBBIES) - 1)
    return {"birthplace": CITIES[c], "job": JOBS[j], "school": SCHOOLS[s], "colleague": colleague,
            "hobbies": HOBBIES[h1] + " " + HOBBIES[h2 + (h2 >= h1)]}


def _sentence(name, rel, value):
    # multi-part answers are written "a、b" in the text; bert4keras turns 、 into "," before encoding
    return RELATIONS[rel][0].format(e=name, v=value.replace(" ", "、"))


def _others(rng, name, rel, facts, people, sents, n_sentences, p_same=0.7):
    """Append facts of other people to sents until it holds n_sentences: the asked relation with
    probability p_same, never the asked value (so a passage without the answer never contains it)."""
    value = facts[name][rel]
    for i in rng.permutation(len(people)):
        if len(sents) >= n_sentences:
            break
        other = people[int(i)]
        r = rel if rng.random() < p_same else str(rng.choice(list(RELATIONS)))
        if facts[other][r] != value:
            sents.append(_sentence(other, r, facts[other][r]))
    order = rng.permutation(len(sents))
    return "".join(sents[i] for i in order)


def _passage(rng, name, rel, facts, people, with_answer, n_sentences=4):
    """Four shuffled sentences: one about the asked person (the asked fact or, without the answer,
    another fact of theirs) and three about other people. Passages with and without the answer look
    alike from outside: as many sentences, the asked person named once, values of the asked kind in
    both; only what the passage says of the asked person tells them apart."""
    mine = rel if with_answer else str(rng.choice([r for r in RELATIONS if r != rel]))
    return _others(rng, name, rel, facts, people, [_sentence(name, mine, facts[name][mine])], n_sentences)


def _easy_passage(rng, name, rel, facts, people, with_answer):
    """Two shuffled sentences: the asked fact and the asked relation of one other person, whose name
    shares no character with the asked one where the question's people allow it. (Easy passages
    always answer; with_answer is there to share _passage's signature.)"""
    value = facts[name][rel]
    rivals = [p for p in people if facts[p][rel] != value]
    rivals = [p for p in rivals if not set(p) & set(name)] or rivals
    sents = [_sentence(name, rel, value)]
    if rivals:
        rival = rivals[int(rng.integers(len(rivals)))]
        sents.append(_sentence(rival, rel, facts[rival][rel]))
    order = rng.permutation(len(sents))
    return "".join(sents[i] for i in order)


# kind -> (passage maker, whether some passages lack the answer)
PASSAGE_KINDS = {"full": (_passage, True), "easy": (_easy_passage, False)}


def synthetic_records(n, rng, people, prefix, kind="full"):
    """n questions about the given people. Every question draws fresh facts for everyone (consistent
    across its passages), so remembering a person's facts from another question does not help.

    kind: 'full' (the test's passages) or 'easy' (two sentences, always answering: all there is to
    learn is which person a value belongs to), the first stage of the demo's curriculum.
    """
    if kind not in PASSAGE_KINDS:
        raise ValueError(f"kind: expected one of {sorted(PASSAGE_KINDS)}, got {kind!r}")
    make, answerless = PASSAGE_KINDS[kind]
    records = []
    for k in range(n):
        name = people[int(rng.integers(len(people)))]
        others = [people[i] for i in rng.choice(len(people), size=7, replace=False) if people[i] != name][:6]
        facts = {p: _facts(rng, p, people) for p in [name] + others}
        rel = str(rng.choice(list(RELATIONS)))
        question = str(rng.choice(RELATIONS[rel][1])).format(e=name)
        n_pass = int(rng.integers(2, 5))
        n_pos = n_pass
        if answerless:
            n_pos = 0 if rng.random() < 0.15 else int(rng.integers(1, n_pass + 1))
        has = rng.permutation([True] * n_pos + [False] * (n_pass - n_pos))
        passages = [{"passage": make(rng, name, rel, facts, others, bool(h)),
                     "answer": facts[name][rel] if h else ""} for h in has]
        records.append({"id": f"{prefix}{k}", "question": question, "passages": passages})
    return records


def synthetic_corpus(n_train=4000, n_test=300, seed=0, n_people=4000, held_out=0.25, curriculum=()):
    """(train, test, stages): train and test are 'full' questions, and test questions are about people
    absent from the training split.

    curriculum: (kind, n) pairs, e.g. [("easy", 20000)]; stages: the matching
    [(kind, records)] about the training people, drawn after train and test, so those two do not
    depend on the curriculum. A colleague of a training person is always a training person (and
    likewise for test people), so no held-out name ever appears in a training passage.
    """
    rng = np.random.default_rng(seed)
    names = _names(rng, n_people)
    order = rng.permutation(n_people)
    n_out = max(3, int(round(held_out * n_people)))
    test_people = sorted(names[i] for i in order[:n_out])
    train_people = sorted(names[i] for i in order[n_out:])
    train = synthetic_records(n_train, rng, train_people, "train-")
    test = synthetic_records(n_test, rng, test_people, "test-")
    stages = [(kind, synthetic_records(n, rng, train_people, f"{kind}-", kind)) for kind, n in curriculum]
    return train, test, stages


def corpus_characters(records):
    """Every character of the questions, passages and answers (to build a vocabulary)."""
    chars = set()
    for r in records:
        chars.update(r["question"])
        for p in r["passages"]:
            chars.update(p["passage"])
            chars.update(p["answer"])
    return chars
