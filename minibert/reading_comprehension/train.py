"""Training as bert4keras's task_reading_comprehension_by_seq2seq does it.

Every epoch draws one random passage per question. The passage's spaces and the characters 、；， become
",". The label is the first non-empty answer, among the answers of ALL the question's passages, whose
space-separated parts all occur in passage[:max_p_len - 2] (spaces changed to ","); "" (no answer) when
none does. One example is

    [CLS] passage [SEP] question [SEP] answer [SEP]        segment 0 ... 0 | 1 on "answer [SEP]"

with the passage cut to max_p_len tokens and question + answer to max_q_len + max_a_len (the longer of
the two loses tokens), and the UniLM loss (seq2seq.py) scores the answer tokens and the final [SEP]: a
passage without the answer teaches the model to say [SEP] first.
"""
import sys
import time

import numpy as np

from ..config import BertConfig
from ..model import init_params
from ..ops import PLAIN
from ..optim import AdamW
from ..params import sinusoidal_positions
from ..seq2seq import seq2seq_forward_backward
from ..tokenizer import pad_batch

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def clean_passage(text):
    """bert4keras's passage cleaning: spaces and 、；， become ','."""
    for c in " 、；，":
        text = text.replace(c, ",")
    return text


def choose_label(passage, answers, max_p_len):
    """The first answer all of whose parts occur in passage[:max_p_len - 2], with spaces as ','; else ''."""
    head = passage[:max_p_len - 2]
    for a in answers:
        parts = a.split()
        if parts and all(p in head for p in parts):
            return ",".join(parts)
    return ""


def vocab_tokens(chars):
    """Special tokens, ',' and every character given, one per line of a vocabulary."""
    chars = sorted(set(chars) - set(" \t\n") | {","})
    return SPECIALS + [c for c in chars if c not in SPECIALS]


def encode_source(tok, passage, question, max_p_len, max_q_len):
    """[CLS] passage [SEP] question [SEP] ids (inference input) and whether the passage was cut.

    As bert4keras: the question is encoded as [CLS] question [SEP] within max_q_len + 1 tokens and its
    [CLS] dropped, so "question [SEP]" takes at most max_q_len tokens."""
    p_ids, _ = tok.encode(passage, maxlen=max_p_len)
    q_ids, _ = tok.encode(question, maxlen=max_q_len + 1)
    cut = len(tok.text_to_ids(passage)) > max_p_len - 2
    return p_ids + q_ids[1:], cut


def encode_example(tok, passage, question, answer, max_p_len, max_q_len, max_a_len):
    """(token ids, segment ids, passage was cut) of one training example (see the module docstring)."""
    p_ids, _ = tok.encode(passage, maxlen=max_p_len)
    qa_ids, qa_seg = tok.encode(question, answer, maxlen=max_q_len + max_a_len + 1)
    cut = len(tok.text_to_ids(passage)) > max_p_len - 2
    return p_ids + qa_ids[1:], [0] * len(p_ids) + qa_seg[1:], cut


def pad_examples(examples, pad_id):
    """Right-pad (ids, segments) lists into token_ids, segment_ids, real: (B, T) int64."""
    token_ids = pad_batch([ids for ids, _ in examples], pad_id)
    segment_ids = pad_batch([seg for _, seg in examples], 0)
    real = pad_batch([[1] * len(ids) for ids, _ in examples], 0)
    return token_ids, segment_ids, real


def epoch_examples(records, rng):
    """One (passage, question, answers) per question, in a random order, with a random passage each."""
    out = []
    for i in rng.permutation(len(records)):
        r = records[i]
        p = r["passages"][int(rng.integers(len(r["passages"])))]["passage"]
        answers = [q["answer"] for q in r["passages"] if q["answer"].strip()]
        out.append((clean_passage(p), r["question"], answers))
    return out


def small_config(vocab_size, layers=2, hidden=128, heads=4, intermediate=256, max_positions=160, dropout=0.0,
                 init_range=0.02):
    """A BertConfig of the given size; init_range: the std of the random starting weights (BERT's 0.02
    by default)."""
    return BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=intermediate,
                      max_position_embeddings=max_positions, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout, initializer_range=init_range)


def train_model(records, tok, config, params=None, steps=1000, batch_size=32, lr=1e-3, warmup=100, seed=0,
                max_p_len=96, max_q_len=24, max_a_len=12, log=sys.stderr, every=100, deadline=None,
                later_steps=0, ops=PLAIN, position_init="random", position_scale=0.1):
    """Fine-tune (or train from scratch when params is None) on the records; returns params, history.

    The budget is `steps` updates: the result depends on the seed and the arguments alone.
    deadline: opt-in wall-clock cap; once time.perf_counter() passes it training stops early (keeping
    the model), and the last history entry's step is then below `steps`.
    later_steps: updates still planned after this call (other stages), for the progress line's time left.
    ops: the ops table of the training step and the optimizer (minibert/ops.py): PLAIN, or the tuned
    minibert.fast.OPS, which the demo passes (same numbers up to float rounding, faster).
    position_init: from scratch, the position embeddings' starting value: "random" (N(0,
    initializer_range), as every other weight) or "sinusoidal" (params.sinusoidal_positions at
    position_scale; the random draw is made all the same, so the other weights are those of "random").
    history: list of (step, mean train loss, mean answer-token accuracy) every `every` steps.
    """
    if not records:
        raise ValueError("records: expected at least one training record, got none")
    if position_init not in ("random", "sinusoidal"):
        raise ValueError(f"position_init: expected 'random' or 'sinusoidal', got {position_init!r}")
    if position_init == "sinusoidal" and params is None and config.hidden_size % 2:
        raise ValueError(f"position_init: 'sinusoidal' needs an even hidden size, got {config.hidden_size} "
                         "(--hidden; or --position-init random)")
    if max_p_len + max_q_len + max_a_len > config.max_position_embeddings:
        raise ValueError(f"max_p_len + max_q_len + max_a_len = {max_p_len + max_q_len + max_a_len} exceeds "
                         f"the model's max_position_embeddings {config.max_position_embeddings}")
    rng = np.random.default_rng(seed)
    if params is None:
        params = init_params(config, rng, dtype=np.float32)
        if position_init == "sinusoidal":
            key = "embeddings.position_embeddings.weight"
            params[key] = sinusoidal_positions(*params[key].shape, scale=position_scale)
    opt = AdamW(params, ops=ops, lr=lr, weight_decay=0.01, max_grad_norm=1.0, warmup_steps=min(warmup, steps),
                total_steps=steps)
    pool, history, sums, n_cut, t0 = [], [], [0.0, 0.0, 0], 0, time.perf_counter()
    for step in range(1, steps + 1):
        batch = []
        while len(batch) < batch_size:
            if not pool:
                pool = epoch_examples(records, rng)
            passage, question, answers = pool.pop()
            label = choose_label(passage, answers, max_p_len)
            ids, seg, cut = encode_example(tok, passage, question, label, max_p_len, max_q_len, max_a_len)
            n_cut += cut
            batch.append((ids, seg))
        token_ids, segment_ids, real = pad_examples(batch, tok.pad_id)
        drop = rng if config.hidden_dropout_prob > 0 else None
        loss, acc, _, grads = seq2seq_forward_backward(params, config, token_ids, segment_ids, real, drop,
                                                          ops=ops)
        opt.update(params, grads)
        sums = [sums[0] + loss, sums[1] + acc, sums[2] + 1]
        stop = deadline is not None and time.perf_counter() > deadline
        if step % every == 0 or step == steps or stop:
            history.append((step, sums[0] / sums[2], sums[1] / sums[2]))
            rate = step / max(time.perf_counter() - t0, 1e-9)
            print(f"step {step}/{steps}  loss {history[-1][1]:.3f}  answer-token acc {history[-1][2]:.3f}  "
                  f"{rate:.1f} updates/s  {time.perf_counter() - t0:.0f} s, about "
                  f"{(steps - step + later_steps) / rate:.0f} s left", file=log, flush=True)
            sums = [0.0, 0.0, 0]
        if stop:
            print(f"--minutes cap reached at update {step} of {steps}: training stopped short", file=log,
                  flush=True)
            break
    if n_cut:
        print(f"note: {n_cut} training passages were longer than max_p_len={max_p_len} tokens and were cut "
              "(the token before [SEP] removed until they fit, as bert4keras does)", file=log, flush=True)
    return params, history
