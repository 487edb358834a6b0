"""Masked-language-model data and loss: packing, whole-word masking (15%, 80/10/10), loss on masked tokens.

Pipeline (as bert4keras' pretraining does it, RoBERTa style, no next-sentence task):
  1. each corpus line is split into words: whitespace for Latin text, `jieba` for Chinese when it is
     installed, otherwise every CJK character is a word of its own; each word becomes word pieces, and a
     piece starting with "##" stays in the word of the piece before it;
  2. lines are packed into fixed-length rows [CLS] line line ... [SEP] [PAD]...;
  3. for every row drawn, each word is chosen with probability 0.15, and every token of a chosen word
     becomes [MASK] (80%), a uniformly random token (10%) or stays (10%); all of them are predicted;
  4. loss = sum over chosen tokens of cross-entropy / number of chosen tokens; accuracy likewise.
"""
import numpy as np

from smoothing import get_xp

from .basic_tokenizer import is_cjk
from .heads import scored_rows_step
from .ops import PLAIN

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def jieba_segmenter():
    """jieba.lcut if the optional `jieba` package is installed, else None (character fallback)."""
    try:
        import jieba
    except ImportError:
        return None
    return jieba.lcut


def line_to_pieces(tokenizer, line, segment=None):
    """Word pieces of one line and the word each belongs to.

    tokenizer: has tokenize(text) -> list of str and vocab (str -> id)
    segment: optional text -> list of words (e.g. jieba.lcut); a segment with CJK characters is one word
    returns (ids list, word index list) with word indices 0, 1, 2, ... in order
    """
    chunks = segment(line) if segment is not None else line.split()
    ids, words, w = [], [], -1
    for chunk in chunks:
        whole = segment is not None and any(is_cjk(c) for c in chunk)
        for i, piece in enumerate(tokenizer.tokenize(chunk)):
            if not (piece.startswith("##") or (whole and i > 0)):
                w += 1                                    # a new word starts here
            ids.append(tokenizer.vocab.get(piece, tokenizer.vocab["[UNK]"]))
            words.append(max(w, 0))
    return ids, words


def pack_lines(lines, maxlen, cls_id, sep_id, pad_id=0):
    """Pack tokenized lines into rows of length maxlen: [CLS] line line ... [SEP] then padding.

    lines: list of (ids, word_ids); a line longer than maxlen - 2 is cut. A row is closed when the next
    line would not fit. Returns token_ids (N, maxlen) int64 and word_ids (N, maxlen) int64, where word
    ids are unique within a row and -1 on [CLS], [SEP] and padding.
    """
    if not isinstance(maxlen, (int, np.integer)) or maxlen < 3:
        raise ValueError(f"maxlen must be an int >= 3, got {maxlen!r}")
    rows, row, row_words, next_word = [], [], [], 0

    def close():
        nonlocal row, row_words, next_word
        if row:
            ids = [cls_id] + row + [sep_id] + [pad_id] * (maxlen - 2 - len(row))
            wds = [-1] + row_words + [-1] * (maxlen - 1 - len(row))
            rows.append((ids, wds))
        row, row_words, next_word = [], [], 0

    for ids, words in lines:
        ids, words = ids[:maxlen - 2], words[:maxlen - 2]
        if not ids:
            continue
        if len(row) + len(ids) > maxlen - 2:
            close()
        base = next_word - words[0]
        row += ids
        row_words += [base + w for w in words]
        next_word = row_words[-1] + 1
    close()
    if not rows:
        raise ValueError("corpus gave no tokens to pack: it is empty or has only blank lines")
    token_ids = np.array([r[0] for r in rows], dtype=np.int64)
    word_ids = np.array([r[1] for r in rows], dtype=np.int64)
    return token_ids, word_ids


def whole_word_mask(token_ids, word_ids, rng, vocab_size, mask_id, rate=0.15):
    """Choose words with probability `rate`; each token of a chosen word: 80% [MASK], 10% random, 10% kept.

    token_ids, word_ids: (B, T) int, word ids -1 where nothing may be masked
    rng: a Generator of the arrays' module (three draws per call, in a fixed order, so runs repeat exactly)
    returns inputs (B, T) int64 and is_masked (B, T) bool (true also for the 10% left unchanged)
    """
    if token_ids.shape != word_ids.shape:
        raise ValueError(f"word_ids must have token_ids' shape {token_ids.shape}, got {word_ids.shape}")
    B, T = token_ids.shape
    n_words = int(word_ids.max()) + 1 if word_ids.size else 0
    chosen = rng.random((B, max(n_words, 1))) < rate               # (B, W) one draw per word
    xp = get_xp(token_ids, word_ids)
    is_masked = (word_ids >= 0) & xp.take_along_axis(chosen, xp.maximum(word_ids, 0), axis=1)
    r = rng.random((B, T))                                         # which of the 80/10/10
    random_ids = rng.integers(0, vocab_size, size=(B, T))
    inputs = token_ids.copy()
    inputs[is_masked & (r < 0.8)] = mask_id
    swap = is_masked & (r >= 0.8) & (r < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, is_masked


def mlm_forward_backward(params, config, inputs, is_masked, labels, real, rng=None, ops=PLAIN):
    """MLM loss on the masked positions of a batch, and the gradient of every parameter.

    inputs: (B, T) ids after masking   is_masked: (B, T) bool   labels: (B, T) original ids
    real: (B, T) bool, False at padding (taken from the rows before masking: a random replacement
          may be the [PAD] id)   rng: Generator for dropout or None
    ops: the ops table (ops.py): PLAIN, or minibert.fast.OPS for the tuned twins
    The MLM head runs only on the N masked rows (heads.scored_rows_forward_backward).
    returns loss, accuracy, N, grads (same keys as params; the pooler, if present, gets zeros)
    """
    xp = get_xp(inputs)
    rows = xp.flatnonzero(is_masked.reshape(-1))                       # (N,) flat positions
    loss, acc, grads = scored_rows_step(params, config, inputs, None, real.astype(xp.int64),
                                        rows, labels.reshape(-1)[rows], rng, ops)
    return loss, acc, int(rows.size), grads
