"""Whole-word masking on corpus word boundaries: whole words only, the budget, the 80/10/10 rates, and the
MLM step consuming its output."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibert import peoples_daily as pd
from minibert.config import BertConfig
from minibert.mlm import mlm_forward_backward, whole_word_mask
from minibert.model import init_params
from minibert.tokenizer import Tokenizer
from minibert.whole_word_masking import corpus_rows, split_line, word_pieces, wwm_mask

LINES = ["新华社/nt  北京/ns  １２月/t  ３１日/t  电/n  国务院/nt  总理/n  李/nr  鹏/nr  今天/t  考察/v  了/u  "
         "首都/n  钢铁/n  公司/n  。/w",
         "他/r  说/v  ，/w  产量/n  增长/v  １２．３％/m  。/w"]


def _rows(word_sizes, length):
    """word_ids rows from lists of word sizes: [CLS] words... [SEP] padding, -1 outside the words."""
    out = np.full((len(word_sizes), length), -1, dtype=np.int64)
    for b, sizes in enumerate(word_sizes):
        ids = np.repeat(np.arange(len(sizes)), sizes)[:length - 2]
        out[b, 1:1 + len(ids)] = ids
    return out


def test_word_pieces_give_every_piece_of_a_corpus_word_one_index():
    paragraphs = [pd.parse_line(x) for x in LINES]
    tok = Tokenizer(pd.character_vocab([pd.Document("d", tuple(paragraphs))]))
    ids, index = word_pieces(tok, paragraphs[1].words)
    # 他 说 ， 产 量 增 长 １ ##２ ． ３ ％ 。: "１２．３％" is one word of five tokens
    assert index == [0, 1, 2, 3, 3, 4, 4, 5, 5, 5, 5, 5, 6]
    assert tok.decode(ids).replace(" ", "") == paragraphs[1].text
    with pytest.raises(ValueError, match="words"):
        word_pieces(tok, "他说")


@given(st.lists(st.integers(1, 5), min_size=1, max_size=30), st.integers(1, 9))
def test_split_line_cuts_only_between_words(sizes, length):
    index = list(np.repeat(np.arange(len(sizes)), sizes))
    ids = list(range(len(index)))
    pieces = split_line(ids, index, length)
    assert [i for p, _ in pieces for i in p] == ids                       # nothing lost or reordered
    for p, w in pieces:
        assert len(p) <= length or len(set(w)) == 1                      # too long only for one long word
    for (_, a), (_, b) in zip(pieces, pieces[1:]):
        assert a[-1] != b[0]                                              # no word cut in two


def test_corpus_rows_pack_every_token():
    paragraphs = [pd.parse_line(x) for x in LINES]
    tok = Tokenizer(pd.character_vocab([pd.Document("d", tuple(paragraphs))]))
    token_ids, word_ids = corpus_rows(tok, paragraphs, maxlen=12)
    real = word_ids >= 0
    flat = [i for p in paragraphs for i in word_pieces(tok, p.words)[0]]
    assert token_ids[real].tolist() == flat
    assert (token_ids[:, 0] == tok.cls_id).all() and token_ids.shape[1] == 12
    with pytest.raises(ValueError, match="maxlen"):
        corpus_rows(tok, paragraphs, maxlen=2)


@given(st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=25), min_size=1, max_size=4),
       st.integers(0, 2**31), st.floats(0.05, 0.5))
def test_whole_words_and_the_budget(word_sizes, seed, rate):
    word_ids = _rows(word_sizes, 48)
    token_ids = np.random.default_rng(seed).integers(5, 50, size=word_ids.shape)
    inputs, is_masked = wwm_mask(token_ids, word_ids, np.random.default_rng(seed), 50, 4, rate)
    assert inputs.dtype == np.int64 and is_masked.dtype == bool and inputs.shape == token_ids.shape
    assert not is_masked[word_ids < 0].any()
    assert (inputs[~is_masked] == token_ids[~is_masked]).all()            # untouched outside the mask
    for b in range(len(word_sizes)):
        real = int((word_ids[b] >= 0).sum())
        budget = max(1, round(rate * real))
        n = int(is_masked[b].sum())
        assert n <= budget
        sizes = {}
        for w in word_ids[b][word_ids[b] >= 0]:
            sizes[w] = sizes.get(w, 0) + 1
        chosen = set(word_ids[b][is_masked[b]].tolist())
        for w, size in sizes.items():                                     # a word is masked whole or not at all
            assert is_masked[b][word_ids[b] == w].all() == (w in chosen)
            if w not in chosen:                                           # stopping short: nothing else fit
                assert n == budget or size > budget - n
    again = wwm_mask(token_ids, word_ids, np.random.default_rng(seed), 50, 4, rate)
    assert (again[0] == inputs).all() and (again[1] == is_masked).all()


def test_rates_with_a_fixed_seed():
    rng = np.random.default_rng(0)
    sizes = [list(rng.integers(1, 4, size=60)) for _ in range(400)]
    word_ids = _rows(sizes, 128)
    V, MASK = 1000, 4
    token_ids = rng.integers(5, V, size=word_ids.shape)
    inputs, is_masked = wwm_mask(token_ids, word_ids, np.random.default_rng(1), V, MASK)
    real = word_ids >= 0
    budgets = np.maximum(1, np.round(0.15 * real.sum(axis=1)))
    assert (is_masked.sum(axis=1) == budgets).mean() > 0.95  # the budget met exactly in nearly every row
    share = is_masked.sum() / real.sum()
    assert abs(share - 0.15) < 0.003
    n = is_masked.sum()                                      # about 7,000 tokens: sd of a share <= 0.006
    masked = inputs[is_masked] == MASK
    kept = inputs[is_masked] == token_ids[is_masked]
    assert abs(masked.mean() - 0.8) < 0.02, masked.mean()
    assert abs(kept.mean() - (0.1 + 0.1 / V)) < 0.015, kept.mean()
    assert abs((~masked & ~kept).mean() - 0.1 * (1 - 1 / V)) < 0.015
    assert n > 6000
    # words are chosen without regard to their place in the row
    first_half = is_masked[:, 1:32].sum() / real[:, 1:32].sum()
    assert abs(first_half - share) < 0.02


def test_same_layout_as_mlm_and_the_mlm_step_consumes_it():
    rng = np.random.default_rng(0)
    word_ids = _rows([list(rng.integers(1, 4, size=12)) for _ in range(3)], 24)
    token_ids = np.where(word_ids >= 0, rng.integers(5, 40, size=word_ids.shape), 0)
    token_ids[:, 0] = 2
    ours = wwm_mask(token_ids, word_ids, np.random.default_rng(3), 40, 4)
    theirs = whole_word_mask(token_ids, word_ids, np.random.default_rng(3), 40, 4)
    assert [(a.shape, a.dtype) for a in ours] == [(a.shape, a.dtype) for a in theirs]
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    params = init_params(config, np.random.default_rng(0), dtype=np.float64)
    inputs, is_masked = ours
    loss, acc, n, grads = mlm_forward_backward(params, config, inputs, is_masked, token_ids, token_ids != 0)
    assert n == is_masked.sum() > 0 and np.isfinite(loss) and abs(loss - np.log(40)) < 1.0
    assert grads.keys() == params.keys()


@pytest.mark.parametrize("kwargs, name", [({"word_ids": np.zeros((2, 5), int)}, "word_ids"),
                                          ({"rate": 1.5}, "rate"), ({"mask_id": 99}, "mask_id")])
def test_bad_arguments_are_named(kwargs, name):
    args = {"token_ids": np.zeros((2, 4), int), "word_ids": np.zeros((2, 4), int),
            "rng": np.random.default_rng(0), "vocab_size": 10, "mask_id": 4, "rate": 0.15}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        wwm_mask(**args)
