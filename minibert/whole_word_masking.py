"""Whole-word masking on a corpus's own word boundaries (the Chinese-BERT-wwm method).

Chinese BERT with whole-word masking (Cui et al., 2019, "Pre-Training with Whole Word Masking for Chinese
BERT") tokenizes Chinese into characters but masks words: when a word is chosen, every one of its
characters is masked. The selection here is that of Google's `create_pretraining_data.py` with
`do_whole_word_mask` (BERT's own whole-word masking, which that work carried to Chinese words):

  1. a row of T real tokens gets a budget of n = max(1, round(rate * T)) predictions;
  2. its words are taken in a random order, and a word is chosen when all its tokens still fit in the
     budget (a word that would overflow it is skipped and the next one tried), until the budget is met;
  3. each token of a chosen word, independently: [MASK] with probability 0.8, a uniformly random id
     with 0.1, unchanged with 0.1; every chosen token is predicted, whatever it became.

So every row has close to `rate` of its tokens masked. `mlm.whole_word_mask` instead draws each word
independently with probability `rate` (bert4keras's data_utils), so the count varies from row to row;
both return the same arrays and either feeds `mlm.mlm_forward_backward`.

Here the words are the corpus's own: in the People's Daily corpus a word is what its annotators
segmented ("中共中央", "一九九七年", "江"), not jieba's guess. `word_pieces` turns one paragraph into
WordPiece ids and word indices; `mlm.pack_lines` packs such lines into rows.
"""
import numpy as np

from .mlm import pack_lines


def word_pieces(tokenizer, words):
    """WordPiece ids of a list of words, and the index of the word each piece belongs to.

    tokenizer: minibert Tokenizer (tokenize(text) -> pieces, vocab: piece -> id)
    words: list of str, the corpus's segmentation of one paragraph
    returns (ids list, word index list), word indices 0, 1, 2, ... with every piece of words[k] given
    the same index (a word the tokenizer drops entirely, e.g. only whitespace, gets no index)
    """
    if isinstance(words, str):
        raise ValueError("words: expected a list of words (str), got one str")
    unk = tokenizer.vocab["[UNK]"]
    ids, index = [], []
    for w in words:
        pieces = tokenizer.tokenize(w)
        if not pieces:
            continue
        k = index[-1] + 1 if index else 0
        ids.extend(tokenizer.vocab.get(p, unk) for p in pieces)
        index.extend([k] * len(pieces))
    return ids, index


def choose_words(word_ids, rng, rate):
    """Google's whole-word selection for one row: bool (T,) mask of the chosen tokens.

    word_ids: (T,) int, -1 where nothing may be chosen ([CLS], [SEP], padding)
    budget n = max(1, round(rate * number of real tokens)); words in the order rng.permutation gives,
    each taken when its tokens fit in what is left of n.
    """
    real = word_ids >= 0
    chosen = np.zeros(word_ids.shape, dtype=bool)
    if not real.any():
        return chosen
    budget = max(1, int(round(rate * int(real.sum()))))
    words, sizes = np.unique(word_ids[real], return_counts=True)
    taken = 0
    for k in rng.permutation(len(words)):
        if taken >= budget:
            break
        if taken + sizes[k] > budget:
            continue                                      # this word would overflow: try the next
        chosen |= word_ids == words[k]
        taken += int(sizes[k])
    return chosen


def wwm_mask(token_ids, word_ids, rng, vocab_size, mask_id, rate=0.15):
    """Whole-word masking, Chinese-BERT-wwm style; same arguments and outputs as mlm.whole_word_mask.

    token_ids, word_ids: (B, T) int; word ids -1 where nothing may be masked, and equal ids within a row
             mark the tokens of one word
    rng: numpy Generator (rows in order: one permutation each, then one draw of (B, T) for 80/10/10 and
         one of (B, T) random ids, so the same seed gives the same masks)
    returns inputs (B, T) int64 and is_masked (B, T) bool (true also for the 10% left unchanged)
    """
    token_ids, word_ids = np.asarray(token_ids), np.asarray(word_ids)
    if token_ids.ndim != 2 or token_ids.shape != word_ids.shape:
        raise ValueError(f"word_ids: expected token_ids' shape (B, T) = {token_ids.shape}, "
                         f"got {word_ids.shape}")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate: expected a number in (0, 1), got {rate!r}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id: expected an id in [0, vocab_size={vocab_size}), got {mask_id!r}")
    B, T = token_ids.shape
    is_masked = np.stack([choose_words(word_ids[b], rng, rate) for b in range(B)]) if B else \
        np.zeros((0, T), dtype=bool)                                  # (B, T)
    r = rng.random((B, T))                                            # which of the 80/10/10
    random_ids = rng.integers(0, vocab_size, size=(B, T))
    inputs = token_ids.astype(np.int64, copy=True)
    inputs[is_masked & (r < 0.8)] = mask_id
    swap = is_masked & (r >= 0.8) & (r < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, is_masked


def split_line(ids, index, length):
    """Cut one paragraph's (ids, word index) into pieces of at most `length` tokens at word boundaries
    (a single word longer than `length` stays whole here; pack_lines cuts it)."""
    out, start = [], 0
    while start < len(ids):
        end = min(start + length, len(ids))
        while end < len(ids) and end > start and index[end] == index[end - 1]:
            end -= 1                                      # back off to the start of the cut word
        if end == start:                                  # one word longer than length
            end = start + 1
            while end < len(ids) and index[end] == index[start]:
                end += 1
        out.append((ids[start:end], index[start:end]))
        start = end
    return out


def corpus_rows(tokenizer, paragraphs, maxlen):
    """Pack paragraphs (peoples_daily.Paragraph, or anything with .words) into MLM rows.

    A paragraph longer than maxlen - 2 tokens is first cut at word boundaries, so nothing is lost.
    returns token_ids (N, maxlen) and word_ids (N, maxlen), int64, as mlm.pack_lines gives them: each
    row [CLS] paragraph paragraph ... [SEP] [PAD]...
    """
    if not isinstance(maxlen, (int, np.integer)) or maxlen < 3:
        raise ValueError(f"maxlen: expected an int >= 3, got {maxlen!r}")
    lines = []
    for p in paragraphs:
        ids, index = word_pieces(tokenizer, p.words)
        lines.extend(split_line(ids, index, maxlen - 2))
    return pack_lines(lines, maxlen, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
