"""Decoding: greedy, beam search, top-k / top-p sampling, over any incremental decoder state.

A decoder state holds R rows (sources, or beams of one source) and offers:
    state.next_log_probs() -> (R, V)   log-probabilities of the next token of every row
    state.step(tokens)                 append tokens (R,) ints, one per row
    state.select(rows)                 keep/duplicate rows: row i of the new state is old row rows[i]
`UniLMCache` (kv_cache.py) computes one new row per step against cached keys and values; `FullRecompute`
re-encodes the whole sequence each step, as bert4keras does. Both give the same numbers.

Constraints every search takes:
    end_id    the token that ends a sequence (it is not included in the returned tokens)
    max_len   at most this many generated tokens (end token included)
    min_len   the end token is forbidden before this many tokens have been generated
    allowed   optional hook allowed(prefix, row) -> None (anything), a bool mask (V,) or an array of
              allowed ids; every other token gets log-probability -inf for that row (no renormalization)
"""
import numpy as np

from smoothing import get_xp, log_softmax


def _check_lengths(max_len, min_len):
    if not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be an int >= 1, got {max_len!r}")
    if not isinstance(min_len, (int, np.integer)) or not 0 <= min_len <= max_len:
        raise ValueError(f"min_len must be an int in [0, max_len={max_len}], got {min_len!r}")


def constrain(log_probs, prefixes, end_id, min_len, allowed=None):
    """Apply min_len and the allowed-tokens hook to (R, V) log-probs in place; prefixes: R token lists."""
    xp = get_xp(log_probs)
    V = log_probs.shape[1]
    for r, prefix in enumerate(prefixes):
        if len(prefix) < min_len:
            log_probs[r, end_id] = -np.inf
        if allowed is None:
            continue
        ok = allowed(prefix, r)
        if ok is None:
            continue
        ok = np.asarray(ok)
        if ok.dtype == bool:
            if ok.shape != (V,):
                raise ValueError(f"allowed() returned a bool mask of shape {ok.shape}, expected ({V},)")
            log_probs[r, ~xp.asarray(ok)] = -np.inf
        else:
            if ok.size and (ok.min() < 0 or ok.max() >= V):
                raise ValueError(f"allowed() returned token ids outside [0, {V})")
            keep = np.zeros(V, dtype=bool)
            keep[ok.astype(np.int64)] = True
            log_probs[r, ~xp.asarray(keep)] = -np.inf
    return log_probs


def greedy(state, end_id, max_len, min_len=0, allowed=None):
    """Most likely token at every step, for every row of the state. Returns a list of token lists."""
    _check_lengths(max_len, min_len)
    R = state.next_log_probs().shape[0]
    out = [[] for _ in range(R)]
    alive = list(range(R))                                # original row of each state row
    for _ in range(max_len):
        lp = constrain(state.next_log_probs().copy(), [out[i] for i in alive], end_id, min_len, allowed)
        tokens = lp.argmax(axis=1)                        # first maximum on ties
        # a row stops when nothing is allowed or it chose the end token
        stopped = (lp[get_xp(lp).arange(len(tokens)), tokens] == -np.inf) | (tokens == end_id)
        alive = _extend(state, alive, out, tokens, stopped, max_len)
        if alive is None:
            break
    return out


def _extend(state, alive, out, tokens, stopped, max_len):
    """Append each live row's token unless it stopped, and move the state on by one step.

    alive: indices into `out` of the rows in `state`    tokens, stopped: (R,) per row
    Returns the indices still alive, or None when decoding is over.
    """
    xp = get_xp(tokens)
    keep = [r for r in range(len(alive)) if not bool(stopped[r])]
    for r in keep:
        out[alive[r]].append(int(tokens[r]))
    if not keep or len(out[alive[keep[0]]]) >= max_len:
        return None
    keep = xp.asarray(keep)
    if len(keep) < len(alive):
        state.select(keep)
    state.step(tokens[keep])
    return [alive[int(r)] for r in keep]


def beam_search(state, beam_size, end_id, max_len, min_len=0, length_penalty=0.0, allowed=None,
                return_all=False):
    """Beam search for a state with one row; the beams are the rows of one batched forward per step.

    score = sum of log-probs / length ** length_penalty (length counts the end token when present).
    At every step the best beam_size extensions of all beams are kept; those ending in end_id are
    finished. Stops when no open beam can still beat the best finished one (scores only fall, and the
    length factor is bounded by max_len ** length_penalty), or at max_len (open beams count as finished).
    Returns (tokens, score), or every finished (tokens, score) best first with return_all=True.
    """
    _check_lengths(max_len, min_len)
    if not isinstance(beam_size, (int, np.integer)) or beam_size < 1:
        raise ValueError(f"beam_size must be an int >= 1, got {beam_size!r}")
    if not length_penalty >= 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty!r}")
    if state.next_log_probs().shape[0] != 1:
        raise ValueError(f"beam_search needs a state with 1 row, got {state.next_log_probs().shape[0]}")

    def norm(score, length):
        return score / float(length) ** length_penalty

    xp = get_xp(state.next_log_probs())
    beams, scores, finished = [[]], xp.zeros(1), []
    for t in range(max_len):
        lp = constrain(state.next_log_probs().copy(), beams, end_id, min_len, allowed)
        cand = (scores[:, None] + lp).ravel()             # (R * V,)
        order = xp.argsort(-cand, kind="stable")[:beam_size]
        order = order[cand[order] > -np.inf]
        V = lp.shape[1]
        rows, toks = order // V, order % V
        keep = []
        for j in range(len(order)):
            r, tok, score = int(rows[j]), int(toks[j]), float(cand[order[j]])
            if tok == end_id:
                finished.append((beams[r], norm(score, t + 1)))
            elif t + 1 == max_len:
                finished.append((beams[r] + [tok], norm(score, t + 1)))
            else:
                keep.append(j)
        if not keep:
            break
        best_open = max(norm(float(cand[order[j]]), max_len) if length_penalty > 0 else float(cand[order[j]])
                        for j in keep)
        if finished and max(s for _, s in finished) >= best_open:
            break
        beams = [beams[int(rows[j])] + [int(toks[j])] for j in keep]
        keep = xp.asarray(keep)
        scores = cand[order[keep]]
        state.select(rows[keep])
        state.step(toks[keep])
    finished.sort(key=lambda f: -f[1])                    # stable: earlier finds win ties
    if return_all:
        return finished
    return finished[0] if finished else ([], -np.inf)


def _filter_top(log_probs, top_k, top_p):
    """-inf outside the top-k tokens and outside the smallest set whose probability reaches top_p."""
    lp, xp = log_probs, get_xp(log_probs)
    if top_k is not None:
        kth = -xp.sort(-lp, axis=1)[:, top_k - 1:top_k]   # (R, 1) the k-th largest
        lp = xp.where(lp < kth, -np.inf, lp)
    if top_p is not None:
        order = xp.argsort(-lp, axis=1, kind="stable")
        p_sorted = xp.exp(xp.take_along_axis(lp, order, axis=1))
        before = xp.cumsum(p_sorted, axis=1) - p_sorted    # probability of the tokens ranked above
        drop_sorted = before >= top_p                      # the first token is always kept
        drop = xp.zeros_like(drop_sorted)
        drop[xp.arange(lp.shape[0])[:, None], order] = drop_sorted        # back to vocabulary order
        lp = xp.where(drop, -np.inf, lp)
    return lp


def sample(state, rng, end_id, max_len, min_len=0, top_k=None, top_p=None, temperature=1.0, allowed=None):
    """Draw every row's tokens from softmax(logits / temperature), restricted to top_k / top_p.

    rng: numpy Generator (one uniform number per row and step). Returns a list of token lists.
    """
    _check_lengths(max_len, min_len)
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")
    R = state.next_log_probs().shape[0]
    out = [[] for _ in range(R)]
    alive = list(range(R))
    for _ in range(max_len):
        lp = constrain(state.next_log_probs().copy(), [out[i] for i in alive], end_id, min_len, allowed)
        lp = log_softmax(_filter_top(lp / temperature, top_k, top_p), axis=1)
        xp = get_xp(lp)
        cdf = xp.cumsum(xp.exp(lp), axis=1)                # (R, V)
        u = rng.random(len(alive)) * cdf[:, -1]
        tokens = xp.minimum((cdf <= u[:, None]).sum(axis=1), lp.shape[1] - 1)
        stopped = (cdf[:, -1] == 0) | (tokens == end_id)  # nothing allowed, or finished
        alive = _extend(state, alive, out, tokens, stopped, max_len)
        if alive is None:
            break
    return out
