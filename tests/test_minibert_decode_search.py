"""Search algorithms on a small Markov-chain state: exact against brute force, beam 1 = greedy, sampling."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.decode import beam_search, greedy, sample
from smoothing import log_softmax


class MarkovState:
    """Next-token log-probs from a table indexed by (generated length, last token): a stand-in decoder."""

    def __init__(self, table, rows=1):
        self.table = table                                 # (L, V + 1, V): row V means "no token yet"
        self.last = np.full(rows, table.shape[1] - 1)
        self.length = 0
        self.calls = 0

    def next_log_probs(self):
        return self.table[min(self.length, len(self.table) - 1), self.last]

    def step(self, tokens):
        self.calls += 1
        self.last = np.asarray(tokens).copy()
        self.length += 1

    def select(self, rows):
        self.last = self.last[np.asarray(rows)]


def _table(seed, L, V, sharp=2.0):
    rng = np.random.default_rng(seed)
    return log_softmax(sharp * rng.standard_normal((L, V + 1, V)), axis=-1)


def _brute_force(table, end_id, max_len, min_len, alpha):
    """Best score over every sequence: ends with end_id, or is cut at max_len."""
    V = table.shape[2]
    best = (None, -np.inf)
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=n):
            if end_id in seq[:-1] or (seq[-1] == end_id and n - 1 < min_len):
                continue
            if seq[-1] != end_id and n < max_len:
                continue
            last, s = V, 0.0
            for i, t in enumerate(seq):
                s += table[min(i, len(table) - 1), last, t]
                last = t
            s /= n ** alpha
            if s > best[1]:
                best = (list(seq[:-1]) if seq[-1] == end_id else list(seq), s)
    return best


@settings(max_examples=25)
@given(seed=st.integers(0, 10**6), max_len=st.integers(1, 4), min_len=st.integers(0, 2),
       alpha=st.sampled_from([0.0, 0.7, 1.5]))
def test_wide_beam_is_exact(seed, max_len, min_len, alpha):
    V, end = 3, 0
    min_len = min(min_len, max_len)
    table = _table(seed, 4, V)
    tokens, score = beam_search(MarkovState(table), V ** max_len, end, max_len, min_len, alpha)
    want_tokens, want_score = _brute_force(table, end, max_len, min_len, alpha)
    assert score == pytest.approx(want_score, abs=1e-12)
    assert tokens == want_tokens


@settings(max_examples=25)
@given(seed=st.integers(0, 10**6), max_len=st.integers(1, 8), min_len=st.integers(0, 3))
def test_beam_one_is_greedy(seed, max_len, min_len):
    table = _table(seed, 6, 5, sharp=1.0)
    min_len = min(min_len, max_len)
    g = greedy(MarkovState(table), end_id=1, max_len=max_len, min_len=min_len)[0]
    b, _ = beam_search(MarkovState(table), 1, end_id=1, max_len=max_len, min_len=min_len)
    assert b == g


def test_greedy_batch_rows_and_constraints():
    table = _table(7, 6, 6)
    rows = greedy(MarkovState(table, rows=3), end_id=0, max_len=6, min_len=2)
    assert len(rows) == 3 and all(2 <= len(r) <= 6 and 0 not in r for r in rows)
    # allowed hook: only tokens 3 and the end token, given as ids; and as a bool mask
    only3 = greedy(MarkovState(table), end_id=0, max_len=5, allowed=lambda prefix, r: [3, 0])[0]
    assert set(only3) <= {3}
    mask = np.zeros(6, dtype=bool)
    mask[[4, 0]] = True
    assert set(greedy(MarkovState(table), 0, 5, allowed=lambda p, r: mask)[0]) <= {4}
    # the hook sees the prefix: forbid repeating the previous token
    norep = beam_search(MarkovState(table), 3, end_id=0, max_len=6, min_len=6,
                        allowed=lambda p, r: None if not p else np.arange(6) != p[-1])[0]
    assert len(norep) == 6 and all(a != b for a, b in zip(norep, norep[1:]))


def test_beam_stops_early_and_returns_all_sorted():
    table = _table(3, 10, 4)
    state = MarkovState(table)
    hyps = beam_search(state, 3, end_id=2, max_len=30, return_all=True)
    scores = [s for _, s in hyps]
    assert scores == sorted(scores, reverse=True) and len(hyps) >= 1
    assert state.calls < 29                               # stopped before max_len


def test_sampling_follows_the_distribution_and_the_rng():
    with np.errstate(divide="ignore"):                     # the end token 3 has probability 0
        table = np.log(np.array([[[0.5, 0.3, 0.2, 0.0]] * 5]))
    draws = sample(MarkovState(table, rows=4000), np.random.default_rng(0), end_id=3, max_len=1)
    first = np.array([r[0] for r in draws])
    freq = np.bincount(first, minlength=4) / len(first)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.2, 0.0], atol=0.03)
    # top_k=2 keeps tokens 0 and 1 renormalized; top_p=0.6 keeps the same two
    for kw in ({"top_k": 2}, {"top_p": 0.6}):
        d = sample(MarkovState(table, rows=4000), np.random.default_rng(1), end_id=3, max_len=1, **kw)
        f = np.bincount([r[0] for r in d], minlength=4) / 4000
        np.testing.assert_allclose(f, [0.625, 0.375, 0.0, 0.0], atol=0.03, err_msg=str(kw))
    a = sample(MarkovState(_table(5, 6, 6), rows=3), np.random.default_rng(9), 0, 6, temperature=0.7)
    b = sample(MarkovState(_table(5, 6, 6), rows=3), np.random.default_rng(9), 0, 6, temperature=0.7)
    assert a == b


def test_bad_search_arguments():
    t = _table(0, 2, 3)
    with pytest.raises(ValueError, match="temperature"):
        sample(MarkovState(t), np.random.default_rng(0), 0, 3, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        sample(MarkovState(t), np.random.default_rng(0), 0, 3, top_p=1.5)
    with pytest.raises(ValueError, match="max_len"):
        greedy(MarkovState(t), 0, 0)
    with pytest.raises(ValueError, match="min_len"):
        greedy(MarkovState(t), 0, 3, min_len=4)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(MarkovState(t), 0, 0, 3)
    with pytest.raises(ValueError, match="1 row"):
        beam_search(MarkovState(t, rows=2), 2, 0, 3)
    with pytest.raises(ValueError, match="allowed"):
        greedy(MarkovState(t), 0, 3, allowed=lambda p, r: [7])
