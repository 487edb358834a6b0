"""Reading comprehension inference: the vote, the extractive constraint, no-answer, cache = recompute, demo."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.kv_cache import FullRecompute, UniLMCache
from minibert.model import init_params
from minibert.reading_comprehension.data import load_records
from minibert.reading_comprehension.infer import (MeanState, VotingState, answer, encode_question,
                                                  ngram_continuations, vote)
from minibert.reading_comprehension.train import (choose_label, clean_passage, encode_example, small_config,
                                                  vocab_tokens)
from minibert.tokenizer import Tokenizer

CHARS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥。？"


@pytest.fixture(scope="module")
def model():
    tok = Tokenizer(vocab_tokens(CHARS))
    config = small_config(len(tok.id_to_token), layers=1, hidden=32, heads=2, intermediate=64, max_positions=64)
    params = init_params(config, np.random.default_rng(0), dtype=np.float64)
    params["cls.predictions.bias"] = params["cls.predictions.bias"].copy()
    params["cls.predictions.bias"][tok.sep_id] = -5.0      # a random model that rarely says "no answer"
    return tok, config, params


def test_vote_formula():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    expect = [(0.25 + 1 + 0.04) / (1 + 1.7), (0.25 + 0 + 0.09) / (1 + 0.8), 0.25 / 1.5]
    np.testing.assert_allclose(vote(p), expect, rtol=1e-12)
    assert vote(np.array([[1.0, 0.0]]))[0] == 0.5                       # one sure passage: 1/2
    np.testing.assert_allclose(vote(np.ones((4, 1))), [4 / 5])           # n sure passages: n/(n+1)
    batched = np.stack([p, p[::-1]])                                     # (..., n, V)
    np.testing.assert_allclose(vote(batched)[0], vote(p))


def test_ngram_table():
    table = ngram_continuations([[5, 6, 7], [6, 8]], max_len=3)
    assert table[()] == {5, 6, 7, 8}
    assert table[(6,)] == {7, 8} and table[(5, 6)] == {7}
    assert (5, 6, 7) not in table and (7,) not in table


@settings(max_examples=25)
@given(st.lists(st.text(alphabet=CHARS[:-2], min_size=1, max_size=12), min_size=1, max_size=4),
       st.integers(1, 2), st.sampled_from(["vote", "best"]))
def test_extractive_answers_stay_in_passages(model, passages, beam, combine):
    tok, config, params = model
    text, ids = answer(params, config, tok, "甲是什么？", passages, beam_size=beam, combine=combine,
                       max_p_len=20, max_q_len=10, max_a_len=6)
    if ids:   # the answer's tokens are a contiguous run of one passage's tokens
        runs = [tok.text_to_ids(clean_passage(p))[:18] for p in passages]
        assert any(any(r[i:i + len(ids)] == ids for i in range(len(r))) for r in runs), (text, passages)
        assert text.replace(" ", "") in "".join(passages)


def test_generative_mode_can_leave_the_passages(model):
    tok, config, params = model
    outside = 0
    for k in range(6):
        passages = ["甲乙", "丙丁"]
        text, _ = answer(params, config, tok, CHARS[k] + "？", passages, mode="generative", max_a_len=6,
                         max_p_len=20, max_q_len=10)
        outside += text.replace(" ", "") not in "".join(passages)
    assert outside > 0          # a random model generates freely; the constraint is what holds it in


def test_all_answerless_passages_give_empty_answer(model):
    tok, config, params = model
    params = dict(params)
    params["cls.predictions.bias"] = params["cls.predictions.bias"].copy()
    params["cls.predictions.bias"][tok.sep_id] = 1e3                   # every passage says [SEP] first
    for beam in (1, 2):
        assert answer(params, config, tok, "甲？", ["甲乙丙", "丁戊", "己"], beam_size=beam) == ("", [])


class _FixedDecoder:
    """A decoder state whose every row gives the same next-token distribution at every step."""
    rows = None

    def __init__(self, params, config, token_ids, lengths):
        self.lp = np.log(np.asarray(_FixedDecoder.rows, dtype=np.float64))[:len(token_ids)]

    def next_log_probs(self):
        return self.lp.copy()

    def step(self, tokens):
        pass

    def select(self, rows):
        self.lp = self.lp[np.asarray(rows)]


def test_vote_may_end_at_once_after_the_no_answer_drop(model):
    """min_len 0, as bert4keras: passages that survive the drop (their own first choice is not [SEP])
    can still agree on [SEP] through the vote, and the answer is then empty."""
    tok, config, params = model
    V = len(tok.id_to_token)
    x, y = tok.text_to_ids("甲乙")
    rows = np.full((2, V), 1e-6)
    rows[0, x], rows[1, y], rows[:, tok.sep_id] = 0.5, 0.5, 0.4     # X / Y first, [SEP] second in each
    _FixedDecoder.rows = rows / rows.sum(axis=1, keepdims=True)
    # vote: X and Y get 0.25 / 1.5 = 0.167 each, [SEP] 0.32 / 1.8 = 0.178: the vote says "no answer"
    for beam in (1, 2):
        assert answer(params, config, tok, "丙？", ["甲乙", "乙甲"], beam_size=beam, mode="generative",
                      decoder=_FixedDecoder) == ("", [])


def test_question_cut_as_bert4keras(model):
    """question [SEP] takes max_q_len tokens at inference, as in training (Q + A within max_q_len +
    max_a_len)."""
    tok, _, _ = model
    token_ids, lengths, _, _ = encode_question(tok, "甲" * 30, ["丙"], max_p_len=20, max_q_len=10)
    assert lengths[0] == 3 + 10 and token_ids[0, lengths[0] - 1] == tok.sep_id
    ids, seg, _ = encode_example(tok, "丙", "甲" * 30, "", 20, 10, 4)
    assert len(ids) - 3 <= 10 + 4


def test_empty_passage_list_and_bad_modes(model):
    tok, config, params = model
    with pytest.raises(ValueError, match="passages"):
        answer(params, config, tok, "甲？", [])
    with pytest.raises(ValueError, match="mode"):
        answer(params, config, tok, "甲？", ["甲"], mode="abstractive")
    with pytest.raises(ValueError, match="max_position_embeddings"):
        answer(params, config, tok, "甲？", ["甲" * 100], max_p_len=80, max_a_len=6)


def test_long_passage_is_cut_and_reported(model):
    tok, _, _ = model
    token_ids, lengths, passage_ids, cuts = encode_question(tok, "甲？", ["乙" * 50, "丙"], max_p_len=20,
                                                            max_q_len=10)
    assert cuts == 1 and len(passage_ids[0]) == 18 and lengths[1] == 3 + 3
    ids, seg, cut = encode_example(tok, "乙" * 50, "甲？", "乙乙", 20, 10, 4)
    assert cut and len(ids) == 20 + 3 + 3 and seg == [0] * 23 + [1] * 3


def test_cached_and_recomputed_decoding_agree(model):
    tok, config, params = model
    passages = ["甲乙丙丁戊", "己庚辛", "壬癸子丑"]
    for beam in (1, 2):
        for mode in ("extractive", "generative"):
            kw = dict(beam_size=beam, mode=mode, max_p_len=20, max_q_len=10, max_a_len=5)
            a = answer(params, config, tok, "甲乙？", passages, decoder=UniLMCache, **kw)
            b = answer(params, config, tok, "甲乙？", passages, decoder=FullRecompute, **kw)
            assert a == b


def test_voting_state_rows_are_votes(model):
    tok, config, params = model
    token_ids, lengths, _, _ = encode_question(tok, "甲？", ["甲乙", "丙丁戊"], 20, 10)
    inner = UniLMCache(params, config, token_ids, lengths)
    probs = np.exp(inner.next_log_probs())
    state = VotingState(inner, 2)
    np.testing.assert_allclose(np.exp(state.next_log_probs()[0]), vote(probs) + 1e-12, rtol=1e-9)
    state.select(np.array([0, 0]))                                       # two beams of the same question
    state.step(np.array([5, 6]))
    assert state.next_log_probs().shape == (2, config.vocab_size)
    assert inner.position.tolist() == [lengths[0] + 1, lengths[1] + 1] * 2


def _other_model(model, seed):
    tok, config, _ = model
    params = init_params(config, np.random.default_rng(seed), dtype=np.float64)
    params["cls.predictions.bias"] = params["cls.predictions.bias"].copy()
    params["cls.predictions.bias"][tok.sep_id] = -5.0
    return params


def test_mean_state_is_the_mean_of_its_models(model):
    """An ensemble's rows: the mean of its models' distributions, through select and step."""
    tok, config, params = model
    other = _other_model(model, 1)
    token_ids, lengths, _, _ = encode_question(tok, "甲？", ["甲乙", "丙丁戊", "己"], 20, 10)
    a, b = UniLMCache(params, config, token_ids, lengths), UniLMCache(other, config, token_ids, lengths)
    state = MeanState([UniLMCache(p, config, token_ids, lengths) for p in (params, other)])
    for rows, tokens in ((np.array([0, 2]), np.array([5, 6])), (np.array([1, 1]), np.array([7, 7]))):
        mean = (np.exp(a.next_log_probs()) + np.exp(b.next_log_probs())) / 2
        np.testing.assert_allclose(np.exp(state.next_log_probs()), mean, rtol=1e-12)
        for s in (a, b, state):
            s.select(rows)
            s.step(tokens)
    np.testing.assert_allclose(np.exp(state.next_log_probs()),
                               (np.exp(a.next_log_probs()) + np.exp(b.next_log_probs())) / 2, rtol=1e-12)


@pytest.mark.parametrize("beam", [1, 2])
def test_an_ensemble_answers_as_one_model(model, beam):
    """A list of one model, or of one model twice, answers as the model; two different models answer
    the same through the cache and through recomputation; two models that both say "no answer" give ""."""
    tok, config, params = model
    other = _other_model(model, 2)
    kw = dict(beam_size=beam, max_p_len=20, max_q_len=10, max_a_len=5)
    for passages in (["甲乙丙丁戊", "己庚辛"], ["壬癸子丑", "甲乙", "寅卯"]):
        alone = answer(params, config, tok, "甲乙？", passages, **kw)
        assert answer([params], config, tok, "甲乙？", passages, **kw) == alone
        assert answer([params, params], config, tok, "甲乙？", passages, **kw) == alone
        both = answer([params, other], config, tok, "甲乙？", passages, **kw)
        assert both == answer([params, other], config, tok, "甲乙？", passages, decoder=FullRecompute, **kw)
    silent = dict(params)
    silent["cls.predictions.bias"] = params["cls.predictions.bias"].copy()
    silent["cls.predictions.bias"][tok.sep_id] = 1e3
    assert answer([silent, silent], config, tok, "甲？", ["甲乙"], **kw) == ("", [])


def test_training_label_from_any_passage():
    passages = ["甲喜欢子、丑。", "乙是医生。"]
    answers = ["子 丑"]
    assert choose_label(clean_passage(passages[0]), answers, 96) == "子,丑"
    assert choose_label(clean_passage(passages[1]), answers, 96) == ""


TIME_FIELDS = ("questions_per_second", "seconds_to_train", "seconds_total", "workdir")


def _quick_demo(workdir, env, extra=()):
    out = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "--quick", "--easy-steps", "20",
                          "--steps", "40", "--train-questions", "300", "--test-questions", "20",
                          "--workdir", str(workdir), *extra], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_quick_demo_runs(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = _quick_demo(tmp_path, env)
    lines = out.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["questions"] == 20 and 0.0 <= figures["score"] <= 1.0 and figures["train_steps"] == [60, 60]
    assert figures["members"] == 2 and len(figures["member_scores"]) == 2 and "[member 2/2] step" in out.stderr
    assert figures["completed"] is True and "updates/s" in out.stderr and "s left" in out.stderr
    assert 0.0 <= figures["baseline_score"] <= 0.3 and "name-blind" in out.stdout
    # the budget is in updates: a second run with the same seed prints the same figures and examples
    again = _quick_demo(tmp_path / "again", env)
    assert [ln for ln in again.stdout.splitlines() if ln.startswith("Q: ")] == \
        [ln for ln in lines if ln.startswith("Q: ")]
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert {k: v for k, v in second.items() if k not in TIME_FIELDS} == \
        {k: v for k, v in figures.items() if k not in TIME_FIELDS}
    # an opt-in wall-clock cap that cuts training short says so, in the output and in the JSON
    cut = _quick_demo(tmp_path / "cut", env, ["--minutes", "0.00001"])
    assert json.loads(cut.stdout.strip().splitlines()[-1])["completed"] is False
    assert "cut short" in cut.stdout and "cut short" in cut.stderr
    assert sum(ln.startswith("Q: ") for ln in lines) == 6
    assert os.path.isfile(tmp_path / "model" / "model.safetensors")
    # the saved members answer through the predict subcommand, together and alone; evaluate scores those
    # files: on the held-out questions, the figures of the JSON; on the development questions, the scores
    # that chose the model, which is the one with the best of them (the members read as one on a tie)
    members = [str(tmp_path / "model"), str(tmp_path / "model-2")]
    candidates = [members, members[:1], members[1:]]
    held_out = [figures["score_members_as_one"], *figures["member_scores"]]
    assert figures["dev_questions"] == 30 and len(figures["dev_scores"]) == 3
    chosen = max(range(3), key=lambda i: (figures["dev_scores"][i], -i))
    assert figures["chosen"] == ["members read as one", "member 1 alone", "member 2 alone"][chosen]
    assert figures["score"] == held_out[chosen]

    def evaluated(data, predictions):
        ev = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "evaluate", "--data",
                             str(tmp_path / data), "--predictions", str(tmp_path / predictions)],
                            capture_output=True, text=True, timeout=60, env=env)
        return json.loads(ev.stdout.strip().splitlines()[-1])["score"]

    def score(models, data):
        pred = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "predict", "--model",
                               *models, "--data", str(tmp_path / data), "--out", str(tmp_path / "p2.tsv")],
                              capture_output=True, text=True, timeout=60, env=env)
        assert pred.returncode == 0, pred.stderr[-2000:]
        return evaluated(data, "p2.tsv")
    for models, expect, dev in zip(candidates, held_out, figures["dev_scores"]):
        assert score(models, "test.json") == pytest.approx(expect, abs=1e-4)
        assert score(models, "dev.json") == pytest.approx(dev, abs=1e-4)
    assert evaluated("test.json", "predictions.tsv") == pytest.approx(figures["score"], abs=1e-4)
    # the decoding ablations of the saved members: six rows, the default one equal to the demo's score
    ab = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "ablations", "--model",
                         *members, "--data", str(tmp_path / "test.json")],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ab.returncode == 0, ab.stderr[-2000:]
    rows = json.loads(ab.stdout.strip().splitlines()[-1])["ablations"]
    assert len(rows) == 6 and rows[0]["score"] == pytest.approx(figures["score_members_as_one"], abs=1e-4)
    assert rows[4]["score"] == rows[5]["score"], "cached and recomputed decoding give the same answers"
    # fine-tuning from a saved BERT directory (--init): here the model just trained
    ft = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "train", "--data",
                         str(tmp_path / "test.json"), "--init", str(tmp_path / "model"), "--steps", "3",
                         "--out", str(tmp_path / "tuned")], capture_output=True, text=True, timeout=60, env=env)
    assert ft.returncode == 0, ft.stderr[-2000:]
    assert json.loads(ft.stdout.strip().splitlines()[-1])["steps"] == 3
    # the curriculum: the demo wrote its easy split; 2 updates on it, then 3 on the data mixed with it
    easy = load_records(str(tmp_path / "easy.json"))
    assert easy
    cur = subprocess.run([sys.executable, "-m", "minibert.reading_comprehension", "train", "--data",
                          str(tmp_path / "test.json"), "--curriculum", f"{tmp_path / 'easy.json'}:2", "--steps",
                          "3", "--out", str(tmp_path / "cur")], capture_output=True, text=True, timeout=60, env=env)
    assert cur.returncode == 0, cur.stderr[-2000:]
    assert "stage 1 of 2: 2 updates at lr 0.003" in cur.stderr
    assert f"stage 2 of 2: 3 updates at lr 0.002 on {20 + len(easy)} training and curriculum" in cur.stderr
    assert json.loads(cur.stdout.strip().splitlines()[-1])["steps"] == 5


def test_reading_side_by_side_gives_the_answers_of_one_process(model, tmp_path):
    """Questions cut into pieces and answered by two processes: every reader's answers are those of
    predict in this process, whatever the piece size; one process gives them too."""
    import argparse
    from minibert.reading_comprehension.members import predict, read_side_by_side, save_model
    tok, config, params = model
    folders = [str(tmp_path / "a"), str(tmp_path / "b")]
    for folder, p in zip(folders, (params, _other_model(model, 3))):
        save_model(folder, tok, config, p)
    rng = np.random.default_rng(5)
    records = [{"id": f"q{i}", "question": "甲乙？", "passages": [
        {"passage": "".join(rng.choice(list(CHARS[:-2]), int(rng.integers(3, 12)))), "answer": ""}
        for _ in range(int(rng.integers(1, 4)))]} for i in range(7)]
    args = argparse.Namespace(beam=1, mode="extractive", combine="vote", max_p_len=20, max_q_len=10, max_a_len=5)
    readers = [folders, folders[:1], folders[1:]]
    answers, seconds = read_side_by_side(args, readers, [records[:3], records], processes=2, piece=2)
    alone, _ = read_side_by_side(args, readers, [records[:3], records], processes=1, piece=5)
    for i, models in enumerate([[params, _other_model(model, 3)], params, _other_model(model, 3)]):
        for j, recs in enumerate([records[:3], records]):
            expect, _ = predict(args, tok, config, models, recs, log=None)
            assert answers[i][j] == expect == alone[i][j], (i, j)
            assert seconds[i][j] > 0
    assert any(a for a in answers[0][1].values()), "a random model that rarely says no answer answers"


def test_readers_of_the_members():
    from minibert.reading_comprehension.__main__ import readers_of
    # one model: it reads alone
    assert readers_of(["m"]) == [("the model", ["m"])]
    # two members: as one first, then each alone
    assert readers_of(["m", "m-2"]) == [("members read as one", ["m", "m-2"]), ("member 1 alone", ["m"]),
                                        ("member 2 alone", ["m-2"])]


def test_choose_reader_takes_the_best_development_score():
    from minibert.reading_comprehension.__main__ import choose_reader
    assert choose_reader([]) == 0, "nothing to choose from: the first reader"
    for scores, expect in (([0.5, 0.7, 0.6], 1), ([0.5, 0.6, 0.7], 2), ([0.7, 0.7, 0.7], 0), ([0.6, 0.7, 0.7], 1)):
        assert choose_reader(scores) == expect, scores
