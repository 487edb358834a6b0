"""What a pretraining run is made of, before its first update: the flags checked (sizes, --out), the corpus
read and packed, the config, the held-out rows, the data order, and the held-out evaluation.

Shared by the single-process loop (pretrain.py) and the data-parallel one (data_parallel.py).
"""
import os
import tempfile

import numpy as np
from smoothing import get_xp

from .config import BertConfig
from .demo_corpus import demo_lines, demo_vocab
from .mlm import jieba_segmenter, line_to_pieces, mlm_forward_backward, pack_lines, whole_word_mask
from .tokenizer import Tokenizer
from .train_state import holds_checkpoints

# model-size flags and the config fields they set, to name the flag when the config refuses a value
SIZE_FLAGS = {"num_hidden_layers": "--layers", "hidden_size": "--hidden", "num_attention_heads": "--heads",
              "intermediate_size": "--intermediate", "max_position_embeddings": "--max-positions",
              "hidden_dropout_prob": "--dropout", "attention_probs_dropout_prob": "--dropout"}


def load_corpus(args):
    """Lines of text and the tokenizer; ValueError for an empty corpus or a missing vocabulary."""
    if args.corpus is None:
        return demo_lines(args.lines, args.seed), Tokenizer(demo_vocab())
    if args.vocab is None:
        raise ValueError("--vocab is required with --corpus (a vocab.txt that covers the corpus)")
    if not os.path.isfile(args.corpus):
        raise FileNotFoundError(f"--corpus file not found: {args.corpus}")
    with open(args.corpus, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    if not lines:
        raise ValueError(f"--corpus {args.corpus} is empty (no non-blank lines)")
    return lines, Tokenizer(args.vocab)


def model_config(args, vocab_size):
    """The BertConfig the flags ask for; a refused value is reported under its flag's name."""
    try:
        return BertConfig(vocab_size=vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                          num_attention_heads=args.heads, intermediate_size=args.intermediate,
                          max_position_embeddings=args.max_positions, hidden_dropout_prob=args.dropout,
                          attention_probs_dropout_prob=args.dropout)
    except ValueError as err:
        message = str(err)
        for field, flag in SIZE_FLAGS.items():
            message = message.replace(f"config.{field}", f"{flag} (config.{field})")
        raise ValueError(message) from None


def check_args(args):
    """Everything that can be checked before any work: flag combinations, model sizes, --out.

    --out must be a new folder, an empty one, or (with --resume, or to be refused without it) one that
    holds this program's checkpoints; it is created and a file is written and removed there, so that a
    missing permission shows now and not at the first checkpoint.
    """
    if args.optimizer not in ("adamw", "lamb"):
        raise ValueError(f"--optimizer must be 'adamw' or 'lamb', got {args.optimizer!r}")
    if args.maxlen > args.max_positions:
        raise ValueError(f"--maxlen {args.maxlen} exceeds the model's max_position_embeddings "
                         f"{args.max_positions} (--max-positions)")
    model_config(args, 8)
    for flag, path in (("--corpus", args.corpus), ("--vocab", args.vocab)):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"{flag} file not found: {path}")
    out = args.out
    if not out:
        return
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} exists and is not a folder")
    if os.path.isdir(out) and holds_checkpoints(out):
        if not args.resume:
            raise ValueError(f"--out {out} already holds checkpoints; pass --resume to continue it "
                             "or choose another directory")
    elif os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"--out {out} holds files that are not this program's checkpoints; "
                         "choose a new or empty folder")
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write there ({err.strerror or err})") from None


def prepare(args):
    """Everything a run is made of: config, packed rows, held-out rows, optimizer options, fingerprint."""
    check_args(args)
    lines, tok = load_corpus(args)
    segment = jieba_segmenter()
    pieces = [line_to_pieces(tok, ln, segment) for ln in lines]
    token_ids, word_ids = pack_lines(pieces, args.maxlen, tok.cls_id, tok.sep_id, tok.pad_id)
    n_eval = max(1, min(64, len(token_ids) // 10)) if len(token_ids) > 1 else 0
    return prepare_rows(args, tok, (token_ids[n_eval:], word_ids[n_eval:]), (token_ids[:n_eval], word_ids[:n_eval]))


def prepare_rows(args, tok, train_rows, eval_rows):
    """prepare() for rows packed elsewhere: train_rows and eval_rows are (token_ids, word_ids) pairs, (N, T).

    The fingerprint counts and sums the tokens of both, so a resumed run must read the same rows.
    """
    config = model_config(args, len(tok.id_to_token))
    rows = {"train": tuple(train_rows), "eval": tuple(eval_rows)}
    if len(rows["train"][0]) < args.batch_size:
        raise ValueError(f"the corpus packs into {len(rows['train'][0])} training rows, fewer than "
                         f"--batch-size {args.batch_size}")
    options = {"lr": args.lr, "weight_decay": args.weight_decay, "lamb": args.optimizer == "lamb",
               "max_grad_norm": args.clip or None, "warmup_steps": min(args.warmup, args.steps),
               "total_steps": args.steps}
    n_rows = len(rows["train"][0]) + len(rows["eval"][0])
    checksum = int(rows["train"][0].sum()) + int(rows["eval"][0].sum())
    fingerprint = {"config": config.to_dict() if hasattr(config, "to_dict") else vars(config).copy(),
                   "data": {"rows": int(n_rows), "maxlen": args.maxlen, "checksum": checksum,
                            "batch_size": args.batch_size, "accum": args.accum, "mask_rate": args.mask_rate},
                   "optimizer": options, "ema": args.ema, "seed": args.seed}
    return tok, config, rows, options, fingerprint


def batches(train_rows, batch_size, seed, position):
    """Yield (rows, next position) forever, from position {'epoch', 'index'}; epoch order from [seed, epoch]."""
    n = len(train_rows)
    epoch, index = position["epoch"], position["index"]
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        while index + batch_size <= n:
            sel = order[index:index + batch_size]
            index += batch_size
            yield sel, {"epoch": epoch, "index": index}
        epoch, index = epoch + 1, 0


def evaluate(params, config, tok, eval_rows, seed, rate, mask=whole_word_mask):
    """MLM accuracy and loss on the held-out rows with fixed masks (no dropout).

    mask: the masking function (mlm.whole_word_mask, or whole_word_masking.wwm_mask), same signature
    The masks are drawn on the host and the batch moved to the params' array module (NumPy or CuPy).
    """
    token_ids, word_ids = eval_rows
    inputs, is_masked = mask(token_ids, word_ids, np.random.default_rng([seed, 10**6]),
                             config.vocab_size, tok.vocab["[MASK]"], rate)
    xp = get_xp(next(iter(params.values())))
    batch = (xp.asarray(a) for a in (inputs, is_masked, token_ids, token_ids != tok.pad_id))
    loss, acc, n, _ = mlm_forward_backward(params, config, *batch)
    return loss, acc
