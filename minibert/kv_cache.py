"""Incremental UniLM decoding with a key/value cache, and the full-recomputation decoder it replaces.

Under the UniLM mask (query i sees key j iff cumsum(segment)[j] <= cumsum(segment)[i]) nothing that
comes later changes an earlier position: the source sees only the source, and target token m sees the
source and targets 1..m. So the source is encoded once, bidirectionally, and every layer's keys and
values are kept; each new target token then runs through the layers as a single row, attending to the
cached keys/values plus its own, and its keys/values are appended. Per step that is O(layers * T * C)
work for the attention plus O(layers * C^2) for the rest, instead of re-encoding all T positions.

Both classes below implement the decoder-state interface of decode.py (next_log_probs, step, select)
and also expose `logits` (R, V), so a test can compare them step by step.
"""
from smoothing import get_xp, log_softmax

from .heads import mlm_head_forward
from .masks import seq2seq_mask
from .model import bert_forward, encoder_layer_forward
from .ops import PLAIN
from .tokenizer import pad_batch


def _check_sources(token_ids, lengths, config):
    xp = get_xp(token_ids)
    token_ids = xp.asarray(token_ids)
    if token_ids.ndim != 2 or token_ids.dtype.kind not in "iu":
        raise ValueError(f"token_ids must be a (B, S) integer array, got shape {token_ids.shape}, "
                         f"dtype {token_ids.dtype}")
    B, S = token_ids.shape
    lengths = xp.full(B, S) if lengths is None else xp.asarray(lengths, dtype=xp.int64)
    if lengths.shape != (B,) or int(lengths.min()) < 1 or int(lengths.max()) > S:
        raise ValueError(f"lengths must be (B,) = ({B},) ints in [1, {S}], got {lengths!r}")
    return token_ids, lengths


def _next_logits(params, config, h, ops):
    """MLM-head logits of one row per sequence.   h: (R, C)   returns (R, V)"""
    return mlm_head_forward(h, params, config, ops)[0]


class UniLMCache:
    """Decoder state that encodes the sources once and then adds one position per step.

    params: with the MLM head   config: BertConfig
    token_ids: (B, S) sources "[CLS] source [SEP]", right-padded   lengths: (B,) real lengths or None
    ops: the ops table (ops.py)
    The first next_log_probs() are those of the first target token, read at each source's last position.
    """

    def __init__(self, params, config, token_ids, lengths=None, ops=PLAIN):
        token_ids, lengths = _check_sources(token_ids, lengths, config)
        xp = get_xp(token_ids)
        B, S = token_ids.shape
        self.params, self.config, self.ops = params, config, ops
        real = xp.arange(S)[None, :] < lengths[:, None]                    # (B, S)
        hidden, cache = bert_forward(params, config, token_ids, None, real.astype(xp.int64), ops=ops)
        self.keys = [c["attention"]["key"] for c in cache["layers"]]       # L x (B, NH, S, HS)
        self.values = [c["attention"]["value"] for c in cache["layers"]]
        self.visible = real                                                # (B, Tk) keys a new row may see
        self.position = lengths.copy()                                     # (B,) next position id
        self.logits = _next_logits(params, config, hidden[xp.arange(B), lengths - 1], ops)

    def next_log_probs(self):
        return log_softmax(self.logits, axis=-1)

    def step(self, tokens):
        """Append one target token (segment 1) per row: tokens (R,) ints."""
        p, cfg, ops = self.params, self.config, self.ops
        xp = get_xp(self.position)
        tokens = xp.asarray(tokens, dtype=xp.int64)
        if tokens.shape != self.position.shape:
            raise ValueError(f"tokens must have shape {self.position.shape}, got {tokens.shape}")
        if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= cfg.vocab_size):
            raise ValueError(f"tokens must lie in [0, {cfg.vocab_size})")
        if int(self.position.max()) >= cfg.max_position_embeddings:
            raise ValueError(f"sequence would exceed max_position_embeddings {cfg.max_position_embeddings}")
        # the embeddings of the new row: token + segment 1 + its own position, then LayerNorm
        e = p["embeddings.word_embeddings.weight"][tokens]                 # (R, C)
        e = e + p["embeddings.token_type_embeddings.weight"][1]
        e += p["embeddings.position_embeddings.weight"][self.position]
        x, _ = ops.layernorm_forward(e[:, None, :], p["embeddings.LayerNorm.weight"],
                                     p["embeddings.LayerNorm.bias"], cfg.layer_norm_eps)   # (R, 1, C)
        self.visible = xp.concatenate([self.visible, xp.ones((len(tokens), 1), dtype=bool)], axis=1)
        mask = self.visible[:, None, :]                                    # (R, 1, Tk): all cached + itself
        for i in range(cfg.num_hidden_layers):
            x, c = encoder_layer_forward(x, p, i, cfg, mask, None, (self.keys[i], self.values[i]), ops=ops)
            self.keys[i], self.values[i] = c["attention"]["key"], c["attention"]["value"]
        self.position = self.position + 1
        self.logits = _next_logits(p, cfg, x[:, 0], ops)

    def select(self, rows):
        """Keep (or duplicate) rows: new row i is old row rows[i]."""
        xp = get_xp(self.position)
        rows = xp.asarray(rows, dtype=xp.int64)
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]
        self.visible, self.position, self.logits = self.visible[rows], self.position[rows], self.logits[rows]


class FullRecompute:
    """The same decoder state, re-encoding source + target prefix from scratch at every step.

    This is how bert4keras decodes; it is the reference the cache is tested and timed against.
    """

    def __init__(self, params, config, token_ids, lengths=None, ops=PLAIN):
        token_ids, lengths = _check_sources(token_ids, lengths, config)
        self.params, self.config, self.ops, self.xp = params, config, ops, get_xp(token_ids)
        self.sources = [[int(t) for t in token_ids[b, :int(n)]] for b, n in enumerate(lengths)]
        self.targets = [[] for _ in self.sources]
        self._run()

    def _run(self):
        """Encode every row's source + target prefix, right-padded; logits at each row's last token."""
        xp, seqs = self.xp, [s + t for s, t in zip(self.sources, self.targets)]
        ids = xp.asarray(pad_batch(seqs, 0))                               # (R, T)
        seg = xp.asarray(pad_batch([[0] * len(s) + [1] * len(t) for s, t in zip(self.sources, self.targets)], 0))
        real = xp.asarray(pad_batch([[1] * len(s) for s in seqs], 0))
        hidden, _ = bert_forward(self.params, self.config, ids, seg, seq2seq_mask(seg, real), ops=self.ops)
        last = xp.asarray([len(s) - 1 for s in seqs])
        self.logits = _next_logits(self.params, self.config, hidden[xp.arange(len(seqs)), last], self.ops)

    def next_log_probs(self):
        return log_softmax(self.logits, axis=-1)

    def step(self, tokens):
        for t, tok in zip(self.targets, tokens):
            t.append(int(tok))
        self._run()

    def select(self, rows):
        self.sources = [self.sources[r] for r in rows]
        self.targets = [list(self.targets[r]) for r in rows]
        self.logits = self.logits[self.xp.asarray(rows)]
