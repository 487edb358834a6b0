"""UniLM seq2seq on BERT: one encoder, the seq2seq attention mask, loss on the target only.

A (source, target) pair is one sequence  [CLS] source [SEP] target [SEP]  with segment 0 on
"[CLS] source [SEP]" and segment 1 on "target [SEP]". The mask lets the source attend to all of the
source and the m-th target token to the source and targets 1..m, so the encoder is a left-to-right
decoder on the target. Position t predicts token t + 1 through the tied MLM head, and the loss counts
it only when token t + 1 is in the target: the target tokens and the final [SEP] (the first target
token is predicted from the source's [SEP]). Padding is never attended to and never scored.

    loss = sum_t s[t+1] * CE(token[t+1], logits[t]) / sum_t s[t+1]      (s: segment id, 0 at padding)

Generation (generate) encodes "[CLS] source [SEP]" once and decodes with the key/value cache.
"""
import numpy as np

from smoothing import get_xp

from .decode import beam_search, greedy
from .heads import scored_rows_step
from .kv_cache import UniLMCache
from .masks import seq2seq_mask
from .ops import PLAIN
from .tokenizer import pad_batch


def seq2seq_batch(tokenizer, pairs, maxlen=None, max_positions=None):
    """Encode (source, target) pairs as right-padded arrays.

    maxlen: truncate each pair to this many tokens (the longer side loses tokens, as encode does)
    max_positions: the model's max_position_embeddings; a longer sequence raises ValueError
    returns token_ids, segment_ids, real (all (B, T); real is 1 at tokens, 0 at padding)
    """
    if not pairs:
        raise ValueError("pairs must hold at least one (source, target) pair, got none")
    encoded = [tokenizer.encode(s, t, maxlen=maxlen) for s, t in pairs]
    T = max(len(ids) for ids, _ in encoded)
    if max_positions is not None and T > max_positions:
        raise ValueError(f"a pair encodes to {T} tokens, more than the model's max_position_embeddings "
                         f"{max_positions}; pass maxlen to truncate")
    token_ids = pad_batch([ids for ids, _ in encoded], tokenizer.pad_id)
    segment_ids = pad_batch([seg for _, seg in encoded], 0)
    real = pad_batch([[1] * len(ids) for ids, _ in encoded], 0)
    return token_ids, segment_ids, real


def seq2seq_forward_backward(params, config, token_ids, segment_ids, real, rng=None, ops=PLAIN):
    """UniLM loss and the gradient of every parameter.

    token_ids, segment_ids, real: (B, T) as from seq2seq_batch   rng: dropout Generator or None
    ops: the ops table (ops.py): PLAIN, or minibert.fast.OPS for the tuned twins
    returns loss (mean over scored tokens), accuracy of those predictions, their number, grads
    """
    xp = get_xp(token_ids)
    token_ids, segment_ids, real = xp.asarray(token_ids), xp.asarray(segment_ids), xp.asarray(real)
    B, T = token_ids.shape
    # position t is scored when token t + 1 is a real target token (segment 1)
    scored = xp.zeros((B, T), dtype=bool)
    scored[:, :-1] = (segment_ids[:, 1:] == 1) & (real[:, 1:] == 1)
    rows = xp.flatnonzero(scored.reshape(-1))                          # (N,) flat positions t
    labels = token_ids.reshape(-1)[rows + 1]                           # token t + 1 (same row: t < T - 1)
    mask = seq2seq_mask(segment_ids, real)
    loss, acc, grads = scored_rows_step(params, config, token_ids, segment_ids, mask, rows, labels, rng, ops)
    return loss, acc, int(rows.size), grads


def generate(params, config, tokenizer, source, max_len=32, beam_size=1, min_len=0, length_penalty=0.0,
             allowed=None, maxlen_source=None, ops=PLAIN):
    """Decode a target for one source text with the key/value cache; returns (text, token ids).

    beam_size 1 is greedy. The target ends at [SEP]; allowed: see decode.constrain. ops: see ops.py
    """
    ids, _ = tokenizer.encode(source, maxlen=maxlen_source)
    if len(ids) + max_len > config.max_position_embeddings:
        raise ValueError(f"source of {len(ids)} tokens + max_len {max_len} exceeds max_position_embeddings "
                         f"{config.max_position_embeddings}")
    state = UniLMCache(params, config, np.array([ids], dtype=np.int64), ops=ops)
    if beam_size == 1:
        out = greedy(state, tokenizer.sep_id, max_len, min_len, allowed)[0]
    else:
        out, _ = beam_search(state, beam_size, tokenizer.sep_id, max_len, min_len, length_penalty, allowed)
    return tokenizer.decode(out), out
