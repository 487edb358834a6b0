"""MLM and UniLM training steps: losses and gradients against the model-level reference, masking
statistics, packing, accumulation with the real model, and overfitting pairs then generating them."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.config import BertConfig
from minibert.demo_corpus import demo_lines, demo_vocab
from minibert.heads import IGNORE_INDEX, model_backward, model_forward
from minibert.masks import seq2seq_mask
from minibert.mlm import line_to_pieces, mlm_forward_backward, pack_lines, whole_word_mask
from minibert.model import init_params
from minibert.optim import AdamW, GradientAccumulator
from minibert.seq2seq import generate, seq2seq_batch, seq2seq_forward_backward
from minibert.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(demo_vocab())


def _model(tok, dtype=np.float64, seed=0, **kw):
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    sizes.update(kw)
    cfg = BertConfig(vocab_size=len(tok.id_to_token), max_position_embeddings=64, **sizes)
    return cfg, init_params(cfg, np.random.default_rng(seed), dtype=dtype)


def _rows(tok, n_lines=60, maxlen=32):
    pieces = [line_to_pieces(tok, ln) for ln in demo_lines(n_lines, seed=1)]
    return pack_lines(pieces, maxlen, tok.cls_id, tok.sep_id, tok.pad_id)


def test_mlm_step_matches_model_level_loss_and_grads(tok):
    cfg, params = _model(tok)
    ids, words = _rows(tok)
    ids, words = ids[:4], words[:4]
    inputs, masked = whole_word_mask(ids, words, np.random.default_rng(0), cfg.vocab_size, tok.vocab["[MASK]"])
    assert masked.sum() > 3
    real = ids != tok.pad_id
    loss, acc, n, grads = mlm_forward_backward(params, cfg, inputs, masked, ids, real)
    labels = np.where(masked, ids, IGNORE_INDEX)
    out, cache = model_forward(params, cfg, inputs, None, real.astype(np.int64), labels)
    ref = model_backward(cache)
    assert n == masked.sum()
    assert loss == pytest.approx(float(out["loss"]), abs=1e-12)
    assert grads.keys() == params.keys()
    for k in params:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=f"d{k}")


def test_seq2seq_loss_scores_target_and_final_sep_only(tok):
    cfg, params = _model(tok)
    pairs = [("the cat lives in the house", "fish"), ("count one two", "three four five six ."),
             ("a dog says", "")]
    ids, seg, real = seq2seq_batch(tok, pairs)
    loss, acc, n, grads = seq2seq_forward_backward(params, cfg, ids, seg, real)
    # reference: the model-level MLM loss with label[t] = token[t + 1] where token t + 1 is a target token
    labels = np.full(ids.shape, IGNORE_INDEX)
    for b in range(len(pairs)):
        for t in range(ids.shape[1] - 1):
            if seg[b, t + 1] == 1 and real[b, t + 1]:
                labels[b, t] = ids[b, t + 1]
    assert n == (labels != IGNORE_INDEX).sum() == sum(seg.sum(1))        # targets + one [SEP] each
    assert n == 2 + 6 + 1                     # "fish" [SEP]; four words, "." and [SEP]; the lone [SEP]
    out, cache = model_forward(params, cfg, ids, seg, seq2seq_mask(seg, real), labels)
    ref = model_backward(cache)
    assert loss == pytest.approx(float(out["loss"]), abs=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=f"d{k}")


def test_accumulation_with_the_model_equals_one_large_batch(tok):
    cfg, params = _model(tok)
    ids, words = _rows(tok, n_lines=80)
    ids, words = ids[:6], words[:6]
    inputs, masked = whole_word_mask(ids, words, np.random.default_rng(3), cfg.vocab_size, tok.vocab["[MASK]"])
    real = ids != tok.pad_id
    acc = GradientAccumulator()
    for part in (slice(0, 1), slice(1, 3), slice(3, 6)):                # 3 micro-batches of unequal size
        _, _, n, g = mlm_forward_backward(params, cfg, inputs[part], masked[part], ids[part], real[part])
        acc.add(g, weight=n)
    _, _, _, big = mlm_forward_backward(params, cfg, inputs, masked, ids, real)
    mean = acc.mean()
    for k in params:
        np.testing.assert_allclose(mean[k], big[k], rtol=1e-9, atol=1e-13, err_msg=f"accumulated d{k}")


def test_whole_word_masking_statistics(tok):
    ids, words = _rows(tok, n_lines=3000, maxlen=64)
    inputs, masked = whole_word_mask(ids, words, np.random.default_rng(5), len(tok.id_to_token),
                                     tok.vocab["[MASK]"], rate=0.15)
    assert not masked[words < 0].any()                                  # [CLS], [SEP], padding never
    # a word is masked as a whole or not at all
    for b in range(0, len(ids), 7):
        for w in np.unique(words[b][words[b] >= 0]):
            sel = masked[b][words[b] == w]
            assert sel.all() or not sel.any()
    n_words = sum(len(np.unique(w[w >= 0])) for w in words)
    chosen = sum(len(np.unique(w[m])) for w, m in zip(words, masked))
    assert chosen / n_words == pytest.approx(0.15, abs=0.01)
    m = inputs[masked]
    orig = ids[masked]
    frac_mask = np.mean(m == tok.vocab["[MASK]"])
    frac_same = np.mean(m == orig)
    assert frac_mask == pytest.approx(0.8, abs=0.02)
    assert frac_same == pytest.approx(0.1, abs=0.02)                   # (a random draw rarely equals it)
    assert (inputs[~masked] == ids[~masked]).all()


def test_words_group_word_pieces_and_segments(tok):
    ids, words = line_to_pieces(tok, "yesterday the cat jumped , now it is playing .")
    pieces = [tok.id_to_token[i] for i in ids]
    assert pieces[3:5] == ["jump", "##ed"] and words[3] == words[4]     # one word, two pieces
    assert words == sorted(words) and len(set(words)) == len(words) - 2
    # without a segmenter every CJK character is a word; with one, a segmented word is one unit
    _, w_chars = line_to_pieces(tok, "熊猫喜欢吃竹子。")
    _, w_seg = line_to_pieces(tok, "熊猫喜欢吃竹子。", segment=lambda s: ["熊猫", "喜欢", "吃", "竹子", "。"])
    assert len(set(w_chars)) == 8 and len(set(w_seg)) == 5


@settings(max_examples=40)
@given(lengths=st.lists(st.integers(0, 20), min_size=1, max_size=12), maxlen=st.integers(3, 16))
def test_packing_properties(lengths, maxlen):
    lines = [(list(range(10, 10 + n)), list(range(n))) for n in lengths]
    if all(n == 0 for n in lengths):
        with pytest.raises(ValueError, match="empty"):
            pack_lines(lines, maxlen, 2, 3)
        return
    ids, words = pack_lines(lines, maxlen, cls_id=2, sep_id=3, pad_id=0)
    assert ids.shape[1] == maxlen and (ids[:, 0] == 2).all()
    for row, w in zip(ids, words):
        n = int((row != 0).sum())
        assert row[n - 1] == 3 and (row[n:] == 0).all()                 # [CLS] ... [SEP] then padding
        assert (w[1:n - 1] >= 0).all() and (w[n - 1:] == -1).all() and w[0] == -1
    kept = sum(min(n, maxlen - 2) for n in lengths)
    assert (ids >= 10).sum() == kept                                    # nothing lost except cuts


def test_overfit_pairs_then_generate_them_exactly(tok):
    pairs = [("the cat lives in the", "house and eats fish"), ("count one two", "three four five ."),
             ("a cow says", "moo"), ("猫喜欢吃", "鱼。"), ("yesterday the dog", "walked , today it walks")]
    cfg, params = _model(tok, dtype=np.float32, seed=2, hidden_size=48)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    ids, seg, real = seq2seq_batch(tok, pairs, max_positions=cfg.max_position_embeddings)
    opt = AdamW(params, lr=3e-3, weight_decay=0.0, warmup_steps=10, total_steps=400)
    for step in range(400):
        loss, acc, n, grads = seq2seq_forward_backward(params, cfg, ids, seg, real)
        opt.update(params, grads)
        if acc == 1.0 and loss < 0.02:
            break
    assert acc == 1.0, f"did not overfit: loss {loss:.3f} accuracy {acc:.3f} after {step + 1} updates"
    for source, target in pairs:
        text, _ = generate(params, cfg, tok, source, max_len=12)
        assert text == tok.decode(tok.encode(target)[0]), source
        beam_text, _ = generate(params, cfg, tok, source, max_len=12, beam_size=3)
        assert beam_text == text


def test_seq2seq_bad_input(tok):
    cfg, params = _model(tok)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        seq2seq_batch(tok, [("the cat " * 40, "fish")], max_positions=64)
    with pytest.raises(ValueError, match="at least one"):
        seq2seq_batch(tok, [])
    with pytest.raises(ValueError, match="max_position_embeddings"):
        generate(params, cfg, tok, "the cat " * 20, max_len=40)


def test_whole_word_mask_on_arrays_that_refuse_to_mix_with_numpy():
    """Masking asks its arrays for their module: the strict double (as CuPy) gives the NumPy run's masks."""
    from tests.strict_arrays import StrictArray, StrictGenerator, strict

    token_ids = np.arange(20).reshape(2, 10) + 5
    word_ids = np.tile(np.arange(10) // 2, (2, 1))
    word_ids[:, 0] = -1
    want = whole_word_mask(token_ids, word_ids, np.random.default_rng(0), 50, 4, 0.5)
    got = whole_word_mask(strict.asarray(token_ids), strict.asarray(word_ids), StrictGenerator(0), 50, 4, 0.5)
    assert all(isinstance(g, StrictArray) for g in got)
    np.testing.assert_array_equal(got[0].get(), want[0], err_msg="inputs after masking")
    np.testing.assert_array_equal(got[1].get(), want[1], err_msg="is_masked")
