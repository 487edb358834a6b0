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

Several models (an ensemble trained on the same corpus, see members.py) answer together: every (model,
passage) pair is one voter, dropped in step 1 when that model says its passage holds no answer.
"""
import numpy as np

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


class StackedState:
    """Decoder state whose rows are the rows of several inner states side by side.

    states: decode.py states over the same sources; counts[k]: rows per beam of states[k]. Row layout,
    beam-major: beam b holds counts[0] rows of states[0], then counts[1] rows of states[1], ...; each
    inner state keeps its own beam-major rows (beam b, row i is its row b * counts[k] + i).
    """

    def __init__(self, states, counts):
        self.states, self.counts, self.n = list(states), list(counts), sum(counts)

    def next_log_probs(self):
        parts = [s.next_log_probs() for s in self.states]                 # (B * counts[k], V) each
        V = parts[0].shape[-1]
        parts = [lp.reshape(-1, c, V) for lp, c in zip(parts, self.counts)]
        return np.concatenate(parts, axis=1).reshape(-1, V)               # (B * n, V)

    def step(self, tokens):
        tokens, start = np.asarray(tokens, dtype=np.int64).reshape(-1, self.n), 0
        for s, c in zip(self.states, self.counts):
            s.step(tokens[:, start:start + c].reshape(-1))
            start += c

    def select(self, rows):
        """rows: whole beams, as VotingState.select passes them (beam b = rows b * n ... b * n + n - 1)."""
        beams = np.asarray(rows, dtype=np.int64).reshape(-1, self.n)[:, 0] // self.n
        for s, c in zip(self.states, self.counts):
            s.select((beams[:, None] * c + np.arange(c)[None, :]).reshape(-1))


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

    params: one model's parameters, or a list of several models' (same config and vocabulary), which
    then vote together: every (model, passage) pair is one voter."""
    if mode not in ("extractive", "generative"):
        raise ValueError(f"mode must be 'extractive' or 'generative', got {mode!r}")
    if combine not in ("vote", "best"):
        raise ValueError(f"combine must be 'vote' or 'best', got {combine!r}")
    token_ids, lengths, passage_ids, _ = encode_question(tok, question, passages, max_p_len, max_q_len)
    if lengths.max() + max_a_len > config.max_position_embeddings:
        raise ValueError(f"a source of {lengths.max()} tokens + max_a_len {max_a_len} exceeds the model's "
                         f"max_position_embeddings {config.max_position_embeddings}; lower max_p_len")
    models = params if isinstance(params, (list, tuple)) else [params]
    states = [decoder(p, config, token_ids, lengths) for p in models]
    firsts = [st.next_log_probs() for st in states]                 # (n, V) first-token log-probs each
    alive = [np.flatnonzero(lp0.argmax(axis=1) != tok.sep_id) for lp0 in firsts]
    if combine == "best" and any(a.size for a in alive):           # the (model, passage) surest of itself
        sure = [lp0[a].max(axis=1).max() if a.size else -np.inf for lp0, a in zip(firsts, alive)]
        k = int(np.argmax(sure))
        alive = [a[[int(np.argmax(firsts[k][a].max(axis=1)))]] if j == k else a[:0] for j, a in enumerate(alive)]
    voters = [(st, a) for st, a in zip(states, alive) if a.size]
    if not voters:
        return "", []
    for st, a in voters:
        st.select(a)
    states = [st for st, _ in voters]
    inner = states[0] if len(states) == 1 else StackedState(states, [a.size for _, a in voters])
    voting = VotingState(inner, sum(a.size for _, a in voters))
    alive = sorted({int(i) for _, a in voters for i in a})          # passages some model reads
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
