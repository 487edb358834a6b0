"""KV-cache decoding under the UniLM mask gives the logits of full recomputation at every step."""
import numpy as np
import pytest

from minibert.config import BertConfig
from minibert.decode import beam_search, greedy, sample
from minibert.kv_cache import FullRecompute, UniLMCache
from minibert.model import init_params


class Recorder:
    """Wraps a decoder state and keeps a copy of the logits it offers at every step."""

    def __init__(self, state):
        self.state, self.seen = state, []

    def next_log_probs(self):
        self.seen.append(self.state.logits.copy())
        return self.state.next_log_probs()

    def step(self, tokens):
        self.state.step(tokens)

    def select(self, rows):
        self.state.select(rows)


@pytest.fixture(scope="module")
def model():
    cfg = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=64, hidden_act="gelu_new")
    params = init_params(cfg, np.random.default_rng(0), dtype=np.float64)
    rng = np.random.default_rng(1)
    for k, w in params.items():                            # larger weights: sharper, more varied logits
        if w.ndim == 1:
            params[k] = w + 0.1 * rng.standard_normal(w.shape)
        elif k.startswith("embeddings."):
            params[k] = rng.standard_normal(w.shape)
        else:
            params[k] = 0.3 * rng.standard_normal(w.shape) / np.sqrt(w.shape[0])
    return cfg, params


END = 24                                                   # a token this model does emit now and then


def _sources(rng, lengths, V=40):
    S = max(lengths)
    ids = rng.integers(5, V, size=(len(lengths), S))
    ids[:, 0] = 2
    for b, n in enumerate(lengths):
        ids[b, n - 1] = 3
        ids[b, n:] = 0                                     # padding
    return ids, np.array(lengths)


def _compare(a, b):
    assert len(a.seen) == len(b.seen) and len(a.seen) > 1
    for step, (x, y) in enumerate(zip(a.seen, b.seen)):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-10, err_msg=f"logits at decoding step {step}")


def test_greedy_cached_equals_full_recomputation_with_padded_batch(model):
    cfg, params = model
    ids, lengths = _sources(np.random.default_rng(2), [7, 4, 9])
    cached = Recorder(UniLMCache(params, cfg, ids, lengths))
    full = Recorder(FullRecompute(params, cfg, ids, lengths))
    out_c = greedy(cached, end_id=END, max_len=12, min_len=3)
    out_f = greedy(full, end_id=END, max_len=12, min_len=3)
    assert out_c == out_f
    assert len({len(o) for o in out_c}) > 1                # rows ended at different steps
    _compare(cached, full)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_cached_equals_full_recomputation(model, alpha):
    cfg, params = model
    ids, lengths = _sources(np.random.default_rng(3), [8])
    cached = Recorder(UniLMCache(params, cfg, ids, lengths))
    full = Recorder(FullRecompute(params, cfg, ids, lengths))
    hyps_c = beam_search(cached, 4, end_id=END, max_len=10, min_len=2, length_penalty=alpha, return_all=True)
    hyps_f = beam_search(full, 4, end_id=END, max_len=10, min_len=2, length_penalty=alpha, return_all=True)
    assert [h for h, _ in hyps_c] == [h for h, _ in hyps_f]
    assert any(len(h) < 10 for h, _ in hyps_c)             # some beams finished with the end token
    np.testing.assert_allclose([s for _, s in hyps_c], [s for _, s in hyps_f], atol=1e-10)
    assert max(x.shape[0] for x in cached.seen) == 4       # the beams ran as one batch
    _compare(cached, full)


def test_beam_one_equals_greedy_on_the_model(model):
    cfg, params = model
    ids, lengths = _sources(np.random.default_rng(4), [6])
    g = greedy(UniLMCache(params, cfg, ids, lengths), END, 15)[0]
    b, _ = beam_search(UniLMCache(params, cfg, ids, lengths), 1, END, 15)
    assert b == g


def test_sampling_cached_equals_full(model):
    cfg, params = model
    ids, lengths = _sources(np.random.default_rng(5), [5, 8])
    a = sample(UniLMCache(params, cfg, ids, lengths), np.random.default_rng(7), 3, 8, top_k=5, top_p=0.9)
    b = sample(FullRecompute(params, cfg, ids, lengths), np.random.default_rng(7), 3, 8, top_k=5, top_p=0.9)
    assert a == b


def test_cache_bad_input(model):
    cfg, params = model
    ids, lengths = _sources(np.random.default_rng(6), [5])
    with pytest.raises(ValueError, match="lengths"):
        UniLMCache(params, cfg, ids, [9])
    with pytest.raises(ValueError, match="token_ids"):
        UniLMCache(params, cfg, ids.astype(float))
    state = UniLMCache(params, cfg, ids, lengths)
    with pytest.raises(ValueError, match="tokens must lie"):
        state.step(np.array([40]))
    long_ids = np.full((1, 63), 7)
    state = UniLMCache(params, cfg, long_ids)
    state.step([5])
    with pytest.raises(ValueError, match="max_position_embeddings"):
        state.step([5])
