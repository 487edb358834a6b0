"""Reading comprehension: the loader's checks, the synthetic corpus, the Sogou metric on hand-made cases."""
import json
import os
import re
from collections import Counter
import subprocess
import sys

import pytest

from minibert.reading_comprehension.data import (RELATIONS, accepted_answers, check_records, dev_records,
                                                 load_records, save_records, synthetic_corpus)
from minibert.reading_comprehension.metric import (char_f1, exact_match, normalize, score_predictions,
                                                   write_predictions)
from minibert.reading_comprehension.train import choose_label, clean_passage


def _rec(rid="q1", question="谁？", passages=None):
    return {"id": rid, "question": question,
            "passages": [{"passage": "甲是医生。", "answer": "医生"}] if passages is None else passages}


@pytest.mark.parametrize("bad, field", [
    (dict(_rec(), id=None), "'id'"),
    (dict(_rec(), question=""), "'question'"),
    (dict(_rec(), passages=[]), "'passages'"),
    (dict(_rec(), passages=[{"passage": "x"}]), "'passages[0].answer'"),
    (dict(_rec(), passages=[{"passage": 3, "answer": ""}]), "'passages[0].passage'"),
    (dict(_rec(), passages=["x"]), "'passages[0]'"),
])
def test_loader_names_record_and_field(tmp_path, bad, field):
    good = _rec("ok-1")
    path = tmp_path / "d.json"
    path.write_text(json.dumps([good, bad]), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_records(str(path))
    msg = str(err.value)
    assert field in msg and "index 1" in msg
    if bad["id"] is not None:
        assert repr(bad["id"]) in msg


def _asked_name(question):
    for _, qs in RELATIONS.values():
        for q in qs:
            m = re.fullmatch(re.escape(q).replace(re.escape("{e}"), "(.+)"), question)
            if m:
                return m.group(1)
    raise AssertionError(f"no template matches {question!r}")


def _asked_relation(question, name):
    return next(rel for rel, (_, qs) in RELATIONS.items() if any(q.format(e=name) == question for q in qs))


def _sentences(passage):
    """(person, relation) of each sentence: the person is the text before the relation's words."""
    heads = {rel: f.split("{e}")[1].split("{v}")[0] for rel, (f, _) in RELATIONS.items()}
    out = []
    for sent in filter(None, passage.split("。")):
        i, rel = min((sent.index(h), rel) for rel, h in heads.items() if h in sent)
        out.append((sent[:i], rel))
    return out


def _subjects(passage):
    return [person for person, _ in _sentences(passage)]


def test_answerless_passages_look_like_answering_ones():
    """Every passage: four sentences about four different people of the question, all of the asked
    relation; it answers exactly when the asked person is one of them (tests/test_reading_comprehension_
    leaks.py checks that nothing else tells)."""
    train, _, _ = synthetic_corpus(400, 10, seed=5, n_people=200)
    shapes = {True: Counter(), False: Counter()}
    for r in train:
        name = _asked_name(r["question"])
        asked = _asked_relation(r["question"], name)
        people = set()
        for p in r["passages"]:
            sents = _sentences(p["passage"])
            subjects = [s for s, _ in sents]
            people |= set(subjects)
            shapes[bool(p["answer"])][(len(sents), len(set(subjects)), sum(rel == asked for _, rel in sents))] += 1
            assert ((name, asked) in sents) == bool(p["answer"]) == (name in subjects)
        assert len(people) <= 7 and name in people | {name}
    assert set(shapes[True]) == set(shapes[False]) == {(4, 4, 4)}


@pytest.mark.parametrize("kind, share_range", [("easy", (0.08, 0.4)), ("easy-disjoint", (0.0, 0.1))])
def test_easy_kinds_of_the_curriculum(kind, share_range):
    """easy: two sentences, the asked fact and one rival of the same relation, always answering, never
    naming a held-out person; the rival is any other person of the question (about one in five shares
    a character with the asked name), or for easy-disjoint mostly one who shares none."""
    train, test, stages = synthetic_corpus(50, 20, seed=4, n_people=120, curriculum=[(kind, 150)])
    (got, easy), = stages
    assert got == kind and len(easy) == 150 and all(r["id"].startswith(kind + "-") for r in easy)
    test_names = {_asked_name(r["question"]) for r in test}
    sharing = n = 0
    for r in easy:
        name = _asked_name(r["question"])
        asked = _asked_relation(r["question"], name)
        for p in r["passages"]:
            sents = _sentences(p["passage"])
            assert p["answer"] and (name, asked) in sents and len(sents) == 2, p["passage"]
            rival, rel = next(x for x in sents if x[0] != name)
            assert rel == asked and rival not in test_names and name not in test_names
            sharing += bool(set(rival) & set(name))
            n += 1
    assert share_range[0] <= sharing / n <= share_range[1], f"{sharing} of {n} rivals share a character"
    with pytest.raises(ValueError, match="kind"):
        synthetic_corpus(5, 5, curriculum=[("hard", 3)])


def test_loader_refuses_non_json_and_non_list(tmp_path):
    p = tmp_path / "d.json"
    p.write_text("not json {", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a JSON file"):
        load_records(str(p))
    p.write_text('{"id": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match="JSON list"):
        load_records(str(p))
    with pytest.raises(FileNotFoundError):
        load_records(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="repeated id"):
        check_records([_rec("a"), _rec("a")])


def test_synthetic_corpus_seeded_held_out_and_varied(tmp_path):
    train, test, none = synthetic_corpus(300, 100, seed=3, n_people=400)
    again, test_again, stages = synthetic_corpus(300, 100, seed=3, n_people=400, curriculum=[("easy", 5)])
    assert train == again and test == test_again, "seeded, and independent of the curriculum"
    assert none == [] and len(stages[0][1]) == 5
    # the held-out questions draw from a stream of their own: their number changes nothing else, and a
    # shorter held-out set is the start of a longer one
    more_train, more_test, more_stages = synthetic_corpus(300, 140, seed=3, n_people=400,
                                                          curriculum=[("easy", 5)])
    assert more_train == train and more_stages == stages and more_test[:100] == test
    # development questions: about training people only, their own stream, seeded
    dev = dev_records(60, seed=3, n_people=400)
    assert dev == dev_records(60, seed=3, n_people=400) and dev[:20] == dev_records(20, seed=3, n_people=400)
    assert all(r["id"].startswith("dev-") for r in dev)
    path = tmp_path / "t.json"
    save_records(test, str(path))
    assert load_records(str(path)) == test
    train_text = "".join(p["passage"] for r in train for p in r["passages"])
    patterns = [re.compile(re.escape(q).replace(re.escape("{e}"), "(.+)"))
                for _, qs in RELATIONS.values() for q in qs]
    test_names = {m.group(1) for r in test for m in (p.fullmatch(r["question"]) for p in patterns) if m}
    assert len(test_names) > 10
    # no held-out person (three-character names: a two-character one may be part of a longer name)
    # appears anywhere in the training passages
    assert not any(n in train_text for n in test_names if len(n) == 3)
    dev_names = {m.group(1) for r in dev for m in (p.fullmatch(r["question"]) for p in patterns) if m}
    assert len(dev_names) > 10 and not dev_names & test_names, "development questions ask about training people"
    counts = [len(r["passages"]) for r in train]
    assert min(counts) >= 2 and max(counts) >= 4
    with_ans = [sum(bool(p["answer"]) for p in r["passages"]) for r in train]
    assert 0 in with_ans and any(0 < k < c for k, c in zip(with_ans, counts))
    multi = [a for r in train for a in accepted_answers(r) if " " in a]
    assert multi, "some answers have several parts"
    for r in train:                          # a passage's answer, when given, is in it (parts joined by 、)
        for p in r["passages"]:
            assert all(part in p["passage"] for part in p["answer"].split())


def test_metric_hand_made_cases():
    assert normalize("ＡＢＣ，１２３！") == "abc123"
    assert normalize(" 北京 市。") == "北京市"
    assert exact_match("ａｂｃ", ["ABC"]) == 1.0                 # full-width, case
    assert exact_match("东港市。", ["东港市"]) == 1.0             # punctuation dropped
    assert exact_match("下棋 游泳", ["游泳 下棋"]) == 1.0          # parts in any order
    assert exact_match("游泳", ["游泳 下棋"]) == 0.0
    assert exact_match("", ["游泳"]) == 0.0 and char_f1("", ["游泳"]) == 0.0
    assert char_f1("游泳", ["游泳 下棋"]) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert char_f1("东港", ["东港市", "港"]) == pytest.approx(0.8)   # best over accepted answers
    assert exact_match("", [""]) == 1.0 and exact_match("医生", [""]) == 0.0


def test_metric_follows_the_sogou_script():
    """The script's own punctuation list becomes spaces, then the parts meet the original answer."""
    assert exact_match("下棋，游泳", ["游泳 下棋"]) == 1.0         # "，" is on the list: two parts
    assert exact_match("下棋、游泳", ["游泳 下棋"]) == 1.0
    assert exact_match("下棋，，游泳", ["游泳 下棋"]) == 0.0        # two marks leave an empty part
    assert exact_match("下棋和游泳", ["游泳 下棋"]) == 0.0          # 和 is no separator
    assert exact_match("下棋 游泳", ["游泳,下棋", "下棋"]) == 1.0    # ASCII ',' is on the list too
    assert exact_match("下棋。游泳", ["下棋", "下棋 游泳"]) == 1.0   # normalized equal to a variant
    assert exact_match("游泳 下棋", ["下棋", "下棋 游泳"]) == 0.0    # parts count against the original only
    # marks outside the list are kept: Unicode calls them punctuation, the script does not
    assert normalize("北京⸮") == "北京⸮" and normalize("a｜b") == "ab"
    assert exact_match("ＡＢ·Ｃ", ["ab c"]) == 1.0                 # full-width, the list's middle dot
    assert normalize("Ä") == "Ä"                                   # only ASCII letters are lowered
    assert exact_match("   ", ["x"]) == 0.0 and char_f1("。", ["x"]) == 0.0
    records = [_rec("a"), _rec("b", passages=[{"passage": "无关。", "answer": ""}])]
    s = score_predictions(records, {"a": "医生", "b": ""})
    assert s["accuracy"] == 1.0 and s["score"] == 1.0 and s["no_answer_precision"] == 1.0
    s = score_predictions(records, {"a": "", "b": ""})            # a missing answer is "no answer"
    assert s["accuracy"] == 0.5 and s["no_answer_precision"] == 0.5 and s["no_answer_recall"] == 1.0


def test_label_choice_and_cleaning():
    assert clean_passage("甲 乙、丙；丁，戊") == "甲,乙,丙,丁,戊"
    passage = clean_passage("张三喜欢游泳、下棋。")
    assert choose_label(passage, ["李四", "游泳 下棋"], 96) == "游泳,下棋"
    assert choose_label(passage, ["李四"], 96) == ""
    assert choose_label(passage, ["下棋"], 8) == ""               # only passage[:max_p_len - 2] counts


def test_evaluate_command(tmp_path):
    data, preds = tmp_path / "d.json", tmp_path / "p.tsv"
    save_records([_rec("a"), _rec("b")], str(data))
    write_predictions({"a": "医生", "b": "护士"}, str(preds))
    out = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "evaluate", "--data", str(data),
                          "--predictions", str(preds)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["accuracy"] == 0.5 and figures["questions"] == 2
    (tmp_path / "bad.json").write_text("[{", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "evaluate", "--data",
                          str(tmp_path / "bad.json"), "--predictions", str(preds)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "JSON" in out.stderr


def _cli(argv, capsys):
    """(exit status, stdout, stderr) of the command line, run in this process."""
    from minibert.reading_comprehension.__main__ import main
    try:
        status = main(argv)
    except SystemExit as stop:                                  # argparse's own exit
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


def _one_error_line(status, err, *words):
    lines = err.strip().splitlines()
    assert status == 2 and 1 <= len(lines) <= 2 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    data, preds = tmp_path / "d.json", tmp_path / "p.tsv"
    save_records([_rec("a"), _rec("b")], str(data))
    write_predictions({"a": "医生"}, str(preds))
    _one_error_line(*_cli(["evaluate", "--data", str(tmp_path / "nope.json"), "--predictions", str(preds)],
                          capsys)[::2], "nope.json")
    (tmp_path / "latin1.json").write_bytes('[{"id": "é"}]'.encode("latin-1"))
    _one_error_line(*_cli(["evaluate", "--data", str(tmp_path / "latin1.json"), "--predictions", str(preds)],
                          capsys)[::2], "latin1.json")
    (tmp_path / "bad.tsv").write_bytes(b"a\t\xff\xfe\n")
    _one_error_line(*_cli(["evaluate", "--data", str(data), "--predictions", str(tmp_path / "bad.tsv")],
                          capsys)[::2], "bad.tsv", "line 1", "UTF-8")
    (tmp_path / "empty.tsv").write_text("\n", encoding="utf-8")
    _one_error_line(*_cli(["evaluate", "--data", str(data), "--predictions", str(tmp_path / "empty.tsv")],
                          capsys)[::2], "empty.tsv", "no prediction")
    for flags, word in ((["--steps", "0"], "--steps"), (["--beam", "0"], "--beam"), (["--lr", "nan"], "--lr"),
                        (["--batch-size", "x"], "--batch-size"), (["--max-p-len", "-1"], "--max-p-len")):
        _one_error_line(*_cli(["--quick", *flags], capsys)[::2], word)
    _one_error_line(*_cli(["predict", "--model", str(tmp_path / "none"), "--data", str(data), "--out",
                           str(tmp_path / "o.tsv")], capsys)[::2], "none")


def test_predictions_file_ids_and_unknown_ids(tmp_path, capsys):
    with pytest.raises(ValueError, match="tab or a line break"):
        check_records([_rec("a\tb")])
    with pytest.raises(ValueError, match="tab or a line break"):
        write_predictions({"a\nb": "医生"}, str(tmp_path / "p.tsv"))
    write_predictions({"a": "医\t生\n了"}, str(tmp_path / "p.tsv"))      # answers keep to their line
    assert (tmp_path / "p.tsv").read_text(encoding="utf-8") == "a\t医 生 了\n"
    data, preds = tmp_path / "d.json", tmp_path / "q.tsv"
    save_records([_rec("a"), _rec("b")], str(data))
    preds.write_text("a\t医生\nzz\t医生\n", encoding="utf-8")
    status, out, err = _cli(["evaluate", "--data", str(data), "--predictions", str(preds)], capsys)
    figures = json.loads(out.strip().splitlines()[-1])
    assert status == 0 and figures["unknown_ids"] == 1 and figures["missing_ids"] == 1
    assert "'zz'" in err and "not scored" in err and "no prediction for 1" in err
    assert figures["accuracy"] == 0.5                           # zz is not scored; b counts as ""


def test_model_folder_saved_whole_and_vocab_checked(tmp_path):
    import numpy as np
    from minibert.model import init_params
    from minibert.reading_comprehension.__main__ import load_model, save_model
    from minibert.reading_comprehension.train import small_config, vocab_tokens
    from minibert.tokenizer import Tokenizer
    tok = Tokenizer(vocab_tokens("甲乙丙"))
    config = small_config(len(tok.id_to_token), layers=1, hidden=8, heads=2, intermediate=16, max_positions=32)
    params = init_params(config, np.random.default_rng(0))
    save_model(str(tmp_path / "m"), tok, config, params)
    assert os.path.isfile(tmp_path / "m" / "manifest.json")
    assert load_model(str(tmp_path / "m"))[0].id_to_token == tok.id_to_token
    save_model(str(tmp_path / "m"), tok, config, params)        # a folder it wrote is replaced whole
    other = Tokenizer(vocab_tokens("甲乙丙丁"))                  # one token more than the embedding has rows
    save_model(str(tmp_path / "bad"), other, config, params)
    with pytest.raises(ValueError, match="do not belong together"):
        load_model(str(tmp_path / "bad"))


def test_members_of_an_ensemble_must_share_vocabulary_and_config(tmp_path):
    import numpy as np
    from minibert.model import init_params
    from minibert.reading_comprehension.__main__ import load_models, save_model
    from minibert.reading_comprehension.train import small_config, vocab_tokens
    from minibert.tokenizer import Tokenizer
    tok, other = Tokenizer(vocab_tokens("甲乙丙")), Tokenizer(vocab_tokens("甲乙丁"))
    config = small_config(len(tok.id_to_token), layers=1, hidden=8, heads=2, intermediate=16, max_positions=32)
    wider = small_config(len(tok.id_to_token), layers=1, hidden=16, heads=2, intermediate=16, max_positions=32)
    for name, t, c, seed in (("a", tok, config, 0), ("b", tok, config, 1), ("c", other, config, 2),
                             ("d", tok, wider, 3)):
        save_model(str(tmp_path / name), t, c, init_params(c, np.random.default_rng(seed)))
    one = load_models([str(tmp_path / "a")])
    assert isinstance(one[2], dict)                               # one folder: one model's parameters
    both = load_models([str(tmp_path / "a"), str(tmp_path / "b")])
    assert isinstance(both[2], list) and len(both[2]) == 2
    for bad in ("c", "d"):
        with pytest.raises(ValueError, match=f"--model {tmp_path / bad}"):
            load_models([str(tmp_path / "a"), str(tmp_path / bad)])
