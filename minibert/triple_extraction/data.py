"""Data for triple extraction: the DuIE / LIC2019 layout, a generated Chinese corpus in it, and labels.

A data file has one JSON object per line: {"text": str, "spo_list": [{"subject": str, "predicate": str,
"object": str, "subject_type": str, "object_type": str}, ...]} (other fields are ignored). The schema
file (all_50_schemas) has one {"subject_type", "predicate", "object_type"} per line.
Examples here are dicts {"text": str, "spo_list": [(subject, predicate, object), ...]}.
"""
import itertools
import json
import os

import numpy as np

from ..tokenizer import pad_batch


def _read_json_lines(path, what):
    """Yields (line number, parsed object) for every non-blank line; ValueError naming the line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path} line {n}: not UTF-8 text ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {n}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path} line {n}: expected a JSON object, got {type(obj).__name__}")
            yield n, obj


def load_examples(path):
    """A DuIE data file -> list of {"text", "spo_list": [(s, p, o)]}; ValueError naming a bad line."""
    examples = []
    for n, obj in _read_json_lines(path, "data"):
        if not isinstance(obj.get("text"), str) or not obj["text"]:
            raise ValueError(f"{path} line {n}: 'text' must be a non-empty string, got {obj.get('text')!r}")
        spo = obj.get("spo_list", [])
        if not isinstance(spo, list):
            raise ValueError(f"{path} line {n}: 'spo_list' must be a list, got {type(spo).__name__}")
        triples = []
        for k, item in enumerate(spo):
            if not isinstance(item, dict):
                raise ValueError(f"{path} line {n}: spo_list[{k}] must be an object, got {item!r}")
            for key in ("subject", "predicate", "object"):
                if not isinstance(item.get(key), str) or not item[key]:
                    raise ValueError(f"{path} line {n}: spo_list[{k}].{key} must be a non-empty string, "
                                     f"got {item.get(key)!r}")
            triples.append((item["subject"], item["predicate"], item["object"]))
        examples.append({"text": obj["text"], "spo_list": triples})
    return examples


def load_schema(path):
    """all_50_schemas -> sorted list of predicate names; ValueError naming a bad line."""
    predicates = set()
    for n, obj in _read_json_lines(path, "schema"):
        if not isinstance(obj.get("predicate"), str) or not obj["predicate"]:
            raise ValueError(f"{path} line {n}: 'predicate' must be a non-empty string, "
                             f"got {obj.get('predicate')!r}")
        predicates.add(obj["predicate"])
    if not predicates:
        raise ValueError(f"{path}: the schema lists no predicate")
    return sorted(predicates)


def save_examples(examples, path):
    """Writes examples in the DuIE layout (types as in SCHEMA when known)."""
    types = {p: (s, o) for s, p, o in SCHEMA}
    with open(path, "w", encoding="utf-8") as f:
        for ex in examples:
            spo = [{"subject": s, "predicate": p, "object": o,
                    "subject_type": types.get(p, ("", ""))[0], "object_type": types.get(p, ("", ""))[1]}
                   for s, p, o in ex["spo_list"]]
            f.write(json.dumps({"text": ex["text"], "spo_list": spo}, ensure_ascii=False) + "\n")


# ---- the generated corpus ---------------------------------------------------------------------

SCHEMA = [("人物", "出生地", "地点"), ("人物", "毕业院校", "学校"), ("人物", "出生日期", "日期"),
          ("人物", "国籍", "国家"), ("影视作品", "导演", "人物"), ("影视作品", "主演", "人物"),
          ("图书作品", "作者", "人物"), ("人物", "妻子", "人物"), ("企业", "成立日期", "日期"),
          ("企业", "创始人", "人物"), ("企业", "总部地点", "地点")]
PREDICATES = sorted(p for _, p, _ in SCHEMA)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鑫宇浩然子轩梓涵一诺欣怡晨曦思远嘉豪雨桐"
_PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "武汉", "成都", "西安", "重庆", "天津", "苏州",
           "长沙", "郑州", "青岛", "大连", "厦门", "昆明", "合肥", "济南", "福州", "沈阳", "哈尔滨", "兰州"]
_NATIONS = ["中国", "美国", "日本", "法国", "英国", "德国", "加拿大", "新加坡", "韩国", "意大利"]
_WORD_A = "星月山海风云花雪光影梦江河城春秋夜歌心路天"
_LATIN = ["Nova", "Alpha", "K2", "Zeta", "Orbit", "Delta", "Pixel", "Vega", "Aurora", "Neo", "Quark", "Lumen",
          "X9", "Sigma", "Helix", "Atlas", "Echo", "Titan", "Polar", "Cobalt"]
_TRADES = ["科技", "网络", "智能", "云计算", "生物", "能源", "传媒", "汽车"]


def _pools(rng, held_out):
    """Entity names, split into a training pool and a disjoint held-out pool."""
    persons = sorted({s + "".join(rng.choice(list(_GIVEN), rng.integers(1, 3))) for s in _SURNAMES
                      for _ in range(12)})
    works = sorted({"".join(rng.choice(list(_WORD_A), rng.integers(2, 5))) for _ in range(600)})
    companies = sorted({f"{a}{t}" for a in _LATIN for t in _TRADES})
    pools = {}
    for name, items in (("person", persons), ("work", works), ("company", companies)):
        items = list(rng.permutation(items))
        k = max(1, int(len(items) * held_out))
        pools[name] = (items[k:], items[:k])
    return pools


def _values(rng, pick):
    """The names and values one sentence may use: persons p, q, r, two places, a year, a nation."""
    place, place2 = (str(x) for x in rng.choice(_PLACES, 2, replace=False))
    return {"p": pick("person"), "q": pick("person"), "r": pick("person"), "place": place, "place2": place2,
            "year": f"{rng.integers(1950, 2021)}年", "nation": str(rng.choice(_NATIONS))}


def _birth_school(rng, pick, v):      # one subject, two objects; the school's name may hold the birthplace
    school = f"{v['place'] if rng.random() < 0.5 else v['place2']}大学"
    return f"{v['p']}出生于{v['place']}，毕业于{school}。", [(v["p"], "出生地", v["place"]),
                                                         (v["p"], "毕业院校", school)]


def _nation_birth(rng, pick, v):      # three relations of one person, one of them a date
    return (f"{v['p']}，{v['nation']}人，{v['year']}出生于{v['place']}。",
            [(v["p"], "国籍", v["nation"]), (v["p"], "出生日期", v["year"]), (v["p"], "出生地", v["place"])])


def _film(rng, pick, v):              # one work, a director and two actors
    w = pick("work")
    return (f"《{w}》是由{v['p']}执导，{v['q']}、{v['r']}主演的电影。",
            [(w, "导演", v["p"]), (w, "主演", v["q"]), (w, "主演", v["r"])])


def _wife_biography(rng, pick, v):    # overlapping subjects: the person is inside the book's title. The
    book = f"{v['p']}传"               # person comes first: two subjects sharing a start cannot both be decoded
    return (f"{v['p']}的妻子是{v['r']}，《{book}》是{v['q']}创作的传记。",
            [(book, "作者", v["q"]), (v["p"], "妻子", v["r"])])


def _company(rng, pick, v):           # a company with a Latin/digit name, three relations
    c = pick("company")
    return (f"{c}成立于{v['year']}，创始人是{v['p']}，总部位于{v['place']}。",
            [(c, "成立日期", v["year"]), (c, "创始人", v["p"]), (c, "总部地点", v["place"])])


def _two_subjects(rng, pick, v):      # two subjects in one sentence
    school = f"{v['place2']}大学"
    return (f"{v['p']}毕业于{school}，他的妻子{v['q']}出生于{v['place']}。",
            [(v["p"], "毕业院校", school), (v["p"], "妻子", v["q"]), (v["q"], "出生地", v["place"])])


def _no_relation(rng, pick, v):       # names and places, but no relation of the schema
    return str(rng.choice([f"{v['p']}和{v['q']}昨天在{v['place']}见面了。", f"{v['p']}很喜欢{v['place']}的天气。",
                           f"《{pick('work')}》的票房超过了预期。", "今天的天气很好，适合出门散步。"])), []


def _book_and_film(rng, pick, v):     # a book and a film of the same people
    w = pick("work")
    return (f"{v['p']}写了《{w}》，{v['q']}主演了同名电影《{w}》。", [(w, "作者", v["p"]), (w, "主演", v["q"])])


# Clause sentences: a subject, then some of its clauses in some order, joined by "，". Each (kind,
# clauses in order) is a template of its own; every fourth of them, in a fixed order, is held out of
# training and makes the unseen-template test sentences, whose clauses the model has read, but never
# in that company or order.
CLAUSES = {
    "person": {"birthplace": ("出生于{place}", "出生地", "place"), "school": ("毕业于{school}", "毕业院校", "school"),
               "nation": ("是{nation}人", "国籍", "nation"), "birthdate": ("{year}出生", "出生日期", "year")},
    "company": {"founded": ("成立于{year}", "成立日期", "year"), "founder": ("创始人是{p}", "创始人", "p"),
                "seat": ("总部位于{place}", "总部地点", "place")},
}


def _clause_templates():
    """(seen, unseen): lists of (kind, clause names in order), two clauses or more."""
    combos = [(kind, order) for kind in sorted(CLAUSES) for k in range(2, len(CLAUSES[kind]) + 1)
              for order in itertools.permutations(sorted(CLAUSES[kind]), k)]
    return [c for i, c in enumerate(combos) if i % 4 != 1], [c for i, c in enumerate(combos) if i % 4 == 1]


def _clause_sentence(kind, order):
    def make(rng, pick, v):
        v = dict(v, school=f"{v['place2']}大学")
        subject = v["p"] if kind == "person" else pick("company")
        if kind == "person":
            v["p"] = v["q"]                                   # the subject is no object of its own
        parts = [CLAUSES[kind][c][0].format(**v) for c in order]
        spo = [(subject, CLAUSES[kind][c][1], v[CLAUSES[kind][c][2]]) for c in order]
        return subject + "，".join(parts) + "。", spo
    return make


_SEEN_CLAUSES, _UNSEEN_CLAUSES = _clause_templates()
# Training sentences come from SEEN_TEMPLATES only; UNSEEN_TEMPLATES appear only among the test sentences
SEEN_TEMPLATES = {"birth_school": _birth_school, "nation_birth": _nation_birth, "film": _film,
                  "wife_biography": _wife_biography, "company": _company, "two_subjects": _two_subjects,
                  "no_relation": _no_relation, "book_and_film": _book_and_film,
                  **{f"{k}:{'+'.join(o)}": _clause_sentence(k, o) for k, o in _SEEN_CLAUSES}}
UNSEEN_TEMPLATES = {f"{k}:{'+'.join(o)}": _clause_sentence(k, o) for k, o in _UNSEEN_CLAUSES}


def _sentence(rng, pick, templates):
    """One generated sentence, its triples and its template's name; pick(kind) draws a name of that kind."""
    # half the time one of the clause sentences, half the time one of the other templates (when both exist)
    groups = [g for g in ([n for n in sorted(templates) if ":" in n], [n for n in sorted(templates) if ":" not in n])
              if g]
    names = groups[int(rng.integers(len(groups)))]
    name = names[int(rng.integers(len(names)))]
    text, spo = templates[name](rng, pick, _values(rng, pick))
    return text, spo, name


def generate_corpus(n_train, n_test, seed=0, held_out=0.2):
    """Generated sentences in the DuIE layout: (train, test) lists of examples.

    Training sentences use SEEN_TEMPLATES; the first half of the test sentences (rounded up) uses
    SEEN_TEMPLATES too, the second half UNSEEN_TEMPLATES, never seen in training. Test sentences use only
    held-out person, work and company names. Every example carries its "template" name.
    """
    rng = np.random.default_rng(seed)
    pools = _pools(rng, held_out)
    out = []
    n_seen_test = (n_test + 1) // 2
    for side, parts in ((0, [(n_train, SEEN_TEMPLATES)]),
                        (1, [(n_seen_test, SEEN_TEMPLATES), (n_test - n_seen_test, UNSEEN_TEMPLATES)])):
        def pick(kind, side=side):
            names = pools[kind][side]
            return str(names[rng.integers(len(names))])
        examples = []
        for n, templates in parts:
            for _ in range(n):
                text, spo, name = _sentence(rng, pick, templates)
                examples.append({"text": text, "spo_list": sorted(set(spo)), "template": name})
        out.append(examples)
    return out[0], out[1]


# ---- labels ------------------------------------------------------------------------------------


def find_sublist(seq, sub):
    """Index of the first occurrence of sub in seq, or -1."""
    n = len(sub)
    for i in range(len(seq) - n + 1):
        if seq[i:i + n] == sub:
            return i
    return -1


def encode_example(tokenizer, example, predicates, maxlen):
    """Token ids of [CLS] text [SEP] and the token spans of every located triple.

    returns {"ids": list, "triples": {(s_start, s_end): [(o_start, o_end, predicate id)]}}; a triple is
    kept when its predicate is known and both its subject and object tokens occur in the ids (first
    occurrence, as bert4keras does).
    """
    ids = tokenizer.encode(example["text"], maxlen=maxlen)[0]
    index = {p: i for i, p in enumerate(predicates)}
    triples = {}
    for s, p, o in example["spo_list"]:
        s_ids, o_ids = tokenizer.text_to_ids(s), tokenizer.text_to_ids(o)
        si, oi = find_sublist(ids, s_ids), find_sublist(ids, o_ids)
        if p in index and s_ids and o_ids and si >= 0 and oi >= 0:
            spans = triples.setdefault((si, si + len(s_ids) - 1), [])
            spans.append((oi, oi + len(o_ids) - 1, index[p]))
    return {"ids": ids, "triples": triples}


def training_batch(encoded, n_predicates, pad_id, rng):
    """Arrays for one training step, with one sampled subject per sentence.

    encoded: list of encode_example outputs (B)
    The subject is sampled like bert4keras: a random subject start, then a random subject end at or
    after it; when that span is no real subject, all its object labels are 0 (a negative sample).
    returns dict: ids (B, T) int64, mask (B, T), subject_labels (B, T, 2), starts, ends (B,),
    object_labels (B, T, P, 2)
    """
    ids = pad_batch([e["ids"] for e in encoded], pad_id)                      # (B, T)
    B, T = ids.shape
    mask = pad_batch([[1] * len(e["ids"]) for e in encoded], 0).astype(np.float64)
    subject_labels = np.zeros((B, T, 2))
    object_labels = np.zeros((B, T, n_predicates, 2))
    starts, ends = np.zeros(B, np.int64), np.zeros(B, np.int64)
    for b, e in enumerate(encoded):
        for s, t in e["triples"]:
            subject_labels[b, s, 0] = subject_labels[b, t, 1] = 1.0
        if not e["triples"]:
            continue                                          # no subject: start = end = [CLS], no objects
        s_starts = sorted({s for s, _ in e["triples"]})
        starts[b] = s_starts[rng.integers(len(s_starts))]
        s_ends = sorted({t for _, t in e["triples"] if t >= starts[b]})
        ends[b] = s_ends[rng.integers(len(s_ends))]
        for os_, oe, p in e["triples"].get((starts[b], ends[b]), []):
            object_labels[b, os_, p, 0] = object_labels[b, oe, p, 1] = 1.0
    return {"ids": ids, "mask": mask, "subject_labels": subject_labels, "starts": starts, "ends": ends,
            "object_labels": object_labels}
