"""Decoding on hand-made probabilities, offsets, the metric, the evaluate command, the loader."""
import json

import numpy as np
import pytest

from minibert.tokenizer import Tokenizer
from minibert.vocab import build_vocab
from minibert.triple_extraction import decode as dec
from minibert.triple_extraction.__main__ import main
from minibert.triple_extraction.decode import micro_prf, triple_key
from minibert.triple_extraction.data import encode_example, find_sublist, load_examples, load_schema


def test_subject_spans_thresholds_and_nearest_end():
    p = np.zeros((9, 2))
    p[[0, 8], :] = 0.99                # [CLS] and [SEP]: ignored
    p[1, 0], p[3, 1], p[5, 1] = 0.61, 0.51, 0.9      # start 1 -> nearest end 3, not 5
    p[4, 0], p[4, 1] = 0.7, 0.2                      # start 4 -> end 5
    p[6, 0] = 0.6                                    # not above 0.6: no start
    p[7, 0], p[7, 1] = 0.95, 0.5                     # end not above 0.5, no end after: dropped
    assert dec.subject_spans(p, 9) == [(1, 3), (4, 5)]
    # a shorter length moves [SEP] and hides what follows it
    assert dec.subject_spans(p, 5) == [(1, 3)]


def test_object_spans_pair_ends_of_the_same_predicate():
    p = np.zeros((8, 3, 2))
    p[2, 0, 0], p[3, 1, 1], p[4, 0, 1] = 0.9, 0.9, 0.9    # predicate 0: 2..4 (end 3 is predicate 1's)
    p[5, 2, 0], p[5, 2, 1] = 0.8, 0.8                     # single-token object of predicate 2
    p[6, 1, 0] = 0.9                                      # start without an end of its predicate
    p[7, 1, 1] = 0.9                                      # [SEP]: ignored
    assert sorted(dec.object_spans(p, 8)) == [(2, 4, 0), (5, 5, 2)]


TEXT = "Nova科技于2003年成立，CEO是Tom Lee，总部在上海。"


def _tokenizer():
    return Tokenizer(build_vocab([TEXT, "上海大学 Nova Tom"], 300))


def test_offsets_give_exact_substrings_of_mixed_text():
    tok = _tokenizer()
    example = {"text": TEXT, "spo_list": [("Nova科技", "成立日期", "2003年"), ("Nova科技", "创始人", "Tom Lee"),
                                          ("Nova科技", "总部地点", "上海")]}
    enc = encode_example(tok, example, ["创始人", "总部地点", "成立日期"], 64)
    offsets = tok.tokenize_with_offsets(TEXT)[1]
    (s, e), = enc["triples"]
    assert dec.span_text(TEXT, offsets, s, e) == "Nova科技"           # case kept, though tokens are lowercase
    objects = {dec.span_text(TEXT, offsets, a, b) for a, b, _ in enc["triples"][(s, e)]}
    assert objects == {"2003年", "Tom Lee", "上海"}


def test_extract_batches_subjects_and_cuts_text(monkeypatch):
    tok = _tokenizer()
    texts = [TEXT, "今天很好。"]
    ids = tok.encode(TEXT)[0]
    sub = tok.text_to_ids("Nova科技")
    s = find_sublist(ids, sub)
    e = s + len(sub) - 1
    o = find_sublist(ids, tok.text_to_ids("Tom Lee"))
    o_end = o + len(tok.text_to_ids("Tom Lee")) - 1
    calls = []

    def fake_subject_probs(params, config, ids_, mask):
        p = np.zeros(ids_.shape + (2,))
        p[0, s, 0] = p[0, e, 1] = 0.9
        p[1, 1, 0] = p[1, 2, 1] = 0.9
        return p, np.zeros(ids_.shape + (4,))

    def fake_object_probs(params, config, h_pre, starts, ends):
        calls.append((h_pre.shape[0], list(starts), list(ends)))
        p = np.zeros(h_pre.shape[:2] + (2, 2))
        p[0, o, 1, 0] = p[0, o_end, 1, 1] = 0.95
        return p

    monkeypatch.setattr(dec, "subject_probs", fake_subject_probs)
    monkeypatch.setattr(dec, "object_probs", fake_object_probs)
    out = dec.extract(None, None, tok, texts, ["x", "创始人"])
    assert calls == [(2, [s, 1], [e, 2])], "all candidate subjects in one object call"
    assert out == [[("Nova科技", "创始人", "Tom Lee")], []]


def test_micro_prf_by_hand():
    pred = [[("a", "r", "b"), ("a", "r", "c")], [], [("x", "r", "y")]]
    gold = [[("a", "r", "b")], [("p", "q", "r")], [("x", "r", "y"), ("x", "s", "y")]]
    m = dec.micro_prf(pred, gold)
    assert (m["correct"], m["predicted"], m["gold"]) == (2, 3, 4)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(4 / 7)
    with pytest.raises(ValueError, match="same length"):
        dec.micro_prf(pred, gold[:2])


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")


def test_evaluate_command(tmp_path, capsys):
    spo = lambda s, p, o: {"subject": s, "predicate": p, "object": o, "subject_type": "", "object_type": ""}  # noqa
    _write(tmp_path / "gold.json", [{"text": "甲乙", "spo_list": [spo("甲", "r", "乙"), spo("乙", "r", "甲")]},
                                    {"text": "丙", "spo_list": []}])
    _write(tmp_path / "pred.json", [{"text": "甲乙", "spo_list": [spo("甲", "r", "乙")]},
                                    {"text": "丙", "spo_list": [spo("丙", "r", "丙")]}])
    main(["evaluate", "--data", str(tmp_path / "gold.json"), "--predictions", str(tmp_path / "pred.json")])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["precision"] == 0.5 and result["recall"] == 0.5 and result["f1"] == 0.5
    _write(tmp_path / "other.json", [{"text": "甲", "spo_list": []}, {"text": "丙", "spo_list": []}])
    assert main(["evaluate", "--data", str(tmp_path / "gold.json"), "--predictions",
                 str(tmp_path / "other.json")]) == 2
    err = capsys.readouterr().err
    assert "example 1" in err and len(err.strip().splitlines()) == 1


def test_loader_names_the_bad_line(tmp_path):
    good = json.dumps({"text": "甲是乙", "spo_list": [{"subject": "甲", "predicate": "r", "object": "乙"}]},
                      ensure_ascii=False)
    cases = [("{not json", "line 3: not valid JSON"),
             (json.dumps({"spo_list": []}), "line 3: 'text'"),
             (json.dumps({"text": "a", "spo_list": [{"subject": "a", "predicate": "r"}]}),
              r"line 3: spo_list\[0\].object"),
             (json.dumps({"text": "a", "spo_list": {}}), "line 3: 'spo_list' must be a list"),
             ("[1, 2]", "line 3: expected a JSON object")]
    for bad, message in cases:
        (tmp_path / "d.json").write_text(f"{good}\n\n{bad}\n{good}\n", encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_examples(str(tmp_path / "d.json"))
    (tmp_path / "d.json").write_text(f"{good}\n{good}\n", encoding="utf-8")
    assert load_examples(str(tmp_path / "d.json"))[1] == {"text": "甲是乙", "spo_list": [("甲", "r", "乙")]}
    (tmp_path / "s.json").write_text('{"subject_type": "a", "predicate": "p", "object_type": "b"}\n'
                                     '{"subject_type": "a", "object_type": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: 'predicate'"):
        load_schema(str(tmp_path / "s.json"))
    with pytest.raises(FileNotFoundError):
        load_examples(str(tmp_path / "missing.json"))


def test_triples_compare_as_bert4keras_tokenized():
    """Equal when the tokenized subject, the predicate and the tokenized object are (case, spacing at
    punctuation); a different predicate or another word is another triple."""
    assert triple_key(("Nova科技", "创始人", "Tom Lee")) == triple_key(("nova科技", "创始人", "tom lee"))
    assert triple_key(("《秋江》", "导演", "甲")) == triple_key(("《 秋江 》", "导演", "甲"))
    assert triple_key(("秋江", "导演", "甲")) != triple_key(("秋江", "主演", "甲"))
    assert triple_key(("Tom Lee", "p", "x")) != triple_key(("TomLee", "p", "x"))
    s = micro_prf([[("NOVA科技", "创始人", "甲")]], [[("Nova科技", "创始人", "甲")]])
    assert s["f1"] == 1.0


def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys):
    (tmp_path / "latin1.json").write_bytes('{"text": "é"}\n'.encode("latin-1"))
    bad = [(["evaluate", "--data", str(tmp_path / "nope.json"), "--predictions", "x"], "nope.json"),
           (["evaluate", "--data", str(tmp_path / "latin1.json"), "--predictions", "x"], "UTF-8"),
           (["predict", "--model", str(tmp_path / "none"), "--data", "x", "--out", "y"], "none"),
           (["--steps", "0"], "--steps"), (["--ema", "1.5"], "--ema"), (["--lr", "x"], "--lr"),
           (["--data", str(tmp_path / "latin1.json")], "--dev")]
    for argv, word in bad:
        try:
            status = main(argv)
        except SystemExit as stop:
            status = stop.code
        err = capsys.readouterr().err
        assert status == 2 and 1 <= len(err.strip().splitlines()) <= 2 and word in err, (argv, err)
        assert "Traceback" not in err
