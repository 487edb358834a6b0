"""Answering: all passages of a question decoded together, answerless passages dropped, a vote per token.

For one question with passages P_1..P_n the rows "[CLS] P_i [SEP] Q [SEP]" are encoded once, together,
by the key/value-cache decoder (kv_cache.UniLMCache). Then, as bert4keras's ReadingComprehension does:
  1. a passage whose most likely first token is [SEP] says "no answer here" and is dropped; when every
     passage says so the answer is "". The vote may still end on [SEP] at once (min_len 0, as
     bert4keras's decoder allows), which also answers "";
  2. at every step the next-token distributions p_i of the surviving passages are combined by
         score(w) = sum_i p_i(w)^2 / (1 + sum_i p_i(w))
     (a confidence-weighted mean that also rewards agreement: one passage at p=1 scores 1/2, n at p=1
     score n/(n+1)), and the search (greedy or beam) runs on log(score + 1e-12);
  3. extractive mode: the next token must extend the answer so far to an n-gram found in a surviving
     passage's tokens, or be [SEP]; every other token gets score 0 (no renormalization). Generative
     mode skips this.
combine="best" is the ablation without the vote: only the passage most sure of its first token is read.

Several models (an ensemble trained on the same corpus, see members.py) answer as one: at every step a
passage's distribution is the mean of the models' distributions for it (MeanState), and 1-3 run on that.
"""
import numpy as np

from smoothing import logsumexp

from ..decode import beam_search, greedy
from ..kv_cache import UniLMCache
from ..tokenizer import pad_batch
from .train import clean_passage, encode_source


def vote(probs):
    """probs: (..., n, V) per-passage distributions -> (..., V) scores sum p^2 / (1 + sum p)."""
    probs = np.asarray(probs, dtype=np.float64)
    return (probs ** 2).sum(axis=-2) / (1.0 + probs.sum(axis=-2))


def ngram_continuations(passages, max_len):
    """tuple(prefix) -> set of tokens that follow it somewhere in a passage (prefix length < max_len).

    passages: lists of token ids. The empty prefix maps to every passage token.
    """
    table = {}
    for ids in passages:
        for i in range(len(ids)):
            for j in range(i, min(i + max_len, len(ids))):
                table.setdefault(tuple(ids[i:j]), set()).add(ids[j])
    return table


class VotingState:
    """Decoder state over beams whose every row is the vote of n passage rows of an inner state.

    inner: a decode.py state (UniLMCache or FullRecompute) with rows beam-major: beam b, passage i is row
    b * n + i. Offers next_log_probs (R, V), step(tokens (R,)), select(rows) over the beams.
    """

    def __init__(self, inner, n_passages):
        self.inner, self.n = inner, n_passages

    def next_log_probs(self):
        lp = self.inner.next_log_probs()                      # (R * n, V)
        p = np.exp(lp.astype(np.float64)).reshape(-1, self.n, lp.shape[-1])
        return np.log(vote(p) + 1e-12)                        # (R, V)

    def step(self, tokens):
        self.inner.step(np.repeat(np.asarray(tokens, dtype=np.int64), self.n))

    def select(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        self.inner.select((rows[:, None] * self.n + np.arange(self.n)[None, :]).reshape(-1))


class MeanState:
    """Decoder state of several models over the same rows whose next-token distribution is the mean of
    theirs: an ensemble read as one model. states: decode.py states built on the same sources."""

    def __init__(self, states):
        self.states = list(states)

    def next_log_probs(self):
        """log mean_k p_k = logsumexp_k log p_k - log K, in log space so that no probability underflows."""
        lps = np.stack([s.next_log_probs().astype(np.float64) for s in self.states])     # (K, R, V)
        return logsumexp(lps, axis=0) - np.log(len(self.states))                        # (R, V)

    def step(self, tokens):
        for s in self.states:
            s.step(tokens)

    def select(self, rows):
        for s in self.states:
            s.select(rows)


def encode_question(tok, question, passages, max_p_len, max_q_len):
    """(n, S) right-padded sources, their lengths, the passages' token ids, how many were cut."""
    if not passages:
        raise ValueError("passages: expected at least one passage for the question, got none")
    rows, cuts = [], 0
    for p in passages:
        ids, cut = encode_source(tok, clean_passage(p), question, max_p_len, max_q_len)
        rows.append(ids)
        cuts += cut
    lengths = np.array([len(r) for r in rows])
    token_ids = pad_batch(rows, tok.pad_id)
    # the passage tokens: between [CLS] and the first [SEP]
    passage_ids = [r[1:r.index(tok.sep_id)] for r in rows]
    return token_ids, lengths, passage_ids, cuts


def answer(params, config, tok, question, passages, beam_size=1, mode="extractive", combine="vote",
           max_p_len=96, max_q_len=24, max_a_len=12, decoder=UniLMCache):
    """The answer text to a question ("" when every passage says it holds none) and its token ids.

    params: one model's parameters, or a list of several models' (same config and vocabulary), read as
    one model whose next-token distributions are the mean of theirs (MeanState)."""
    if mode not in ("extractive", "generative"):
        raise ValueError(f"mode must be 'extractive' or 'generative', got {mode!r}")
    if combine not in ("vote", "best"):
        raise ValueError(f"combine must be 'vote' or 'best', got {combine!r}")
    token_ids, lengths, passage_ids, _ = encode_question(tok, question, passages, max_p_len, max_q_len)
    if lengths.max() + max_a_len > config.max_position_embeddings:
        raise ValueError(f"a source of {lengths.max()} tokens + max_a_len {max_a_len} exceeds the model's "
                         f"max_position_embeddings {config.max_position_embeddings}; lower max_p_len")
    if isinstance(params, (list, tuple)):                          # an ensemble: the mean of its models
        state = MeanState([decoder(p, config, token_ids, lengths) for p in params])
    else:
        state = decoder(params, config, token_ids, lengths)
    lp0 = state.next_log_probs()                                  # (n, V) first-token log-probs
    alive = np.flatnonzero(lp0.argmax(axis=1) != tok.sep_id)
    if alive.size == 0:
        return "", []
    if combine == "best":                                         # the passage surest of its first token
        alive = alive[[int(np.argmax(lp0[alive].max(axis=1)))]]
    state.select(alive)
    voting = VotingState(state, len(alive))
    allowed = None
    if mode == "extractive":
        table = ngram_continuations([passage_ids[i] for i in alive], max_a_len)

        def allowed(prefix, row):
            return np.array(sorted(table.get(tuple(prefix), set()) | {tok.sep_id}), dtype=np.int64)
    if beam_size == 1:
        out = greedy(voting, tok.sep_id, max_a_len, 0, allowed)[0]
    else:
        out, _ = beam_search(voting, beam_size, tok.sep_id, max_a_len, 0, 0.0, allowed)
    return answer_text(tok, out), out


def answer_text(tok, ids):
    """Decoded answer with ',' (the multi-part separator after cleaning) written as a space."""
    return " ".join(tok.decode(list(ids)).replace(",", " ").split())
