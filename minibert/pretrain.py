"""MLM pretraining from scratch, with checkpoints that resume exactly.

    python -m minibert.pretrain                       # the demo corpus that ships with the package
    python -m minibert.pretrain --corpus lines.txt --vocab vocab.txt --out runs/mine --resume
    python -m minibert.pretrain --quick               # the same pipeline in well under a minute

The corpus (one text per line) is tokenized and packed once; every micro-batch then draws fresh
whole-word masks. Training is deterministic given --seed: the data order of epoch e comes from
Generator([seed, e]), and masks and dropout come from one Generator whose state is saved with every
checkpoint, together with the weights, Adam moments, EMA, step and data position. A run killed at any
moment and restarted with --resume ends with the same weights, bit for bit, as a run never stopped.
Progress goes to stderr; the last line of stdout is one JSON object, a function of the seed and flags
only (the wall-clock time goes to stderr). Bad arguments and an unusable --out are refused before any
work, with one line on stderr and exit status 2 (--debug shows the traceback instead).
"""
import argparse
import json
import math
import sys
import time

import numpy as np

from .fast import OPS as FAST
from .mlm import mlm_forward_backward, whole_word_mask
from .model import init_params
from .optim import EMA, AdamW, GradientAccumulator
from .pretrain_setup import batches, evaluate, prepare
from .train_state import load_train_state, save_train_state

class UsageError(Exception):
    """A bad argument: reported as one line and exit status 2, never with a traceback."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see --help)")


def int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}")
        return value
    return parse


def number_in(low, high, low_open=False, high_open=False):
    """A finite float in [low, high] (a parenthesis where the bound is open)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (low < value if low_open else low <= value) and (
            value < high if high_open else value <= high)
        if not ok:
            span = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"expected a number in {span}, got {text!r}")
        return value
    return parse


def build_parser():
    ap = Parser(prog="python -m minibert.pretrain", description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="text file, one text per line (default: the generated demo corpus)")
    ap.add_argument("--vocab", help="vocab.txt (default: the demo vocabulary; required with --corpus)")
    ap.add_argument("--out", help="run directory for checkpoints (default: none are written)")
    ap.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    ap.add_argument("--steps", type=int_at_least(1), default=600, help="optimizer updates")
    ap.add_argument("--batch-size", type=int_at_least(1), default=32, help="rows per micro-batch")
    ap.add_argument("--accum", type=int_at_least(1), default=1, help="micro-batches per update")
    ap.add_argument("--maxlen", type=int_at_least(4), default=64, help="tokens per packed row")
    ap.add_argument("--max-positions", type=int_at_least(4), default=128,
                    help="the model's max_position_embeddings")
    ap.add_argument("--layers", type=int_at_least(1), default=2)
    ap.add_argument("--hidden", type=int_at_least(1), default=128)
    ap.add_argument("--heads", type=int_at_least(1), default=4)
    ap.add_argument("--intermediate", type=int_at_least(1), default=512)
    ap.add_argument("--optimizer", default="adamw", help="adamw or lamb")
    ap.add_argument("--lr", type=number_in(0, 10, low_open=True), default=2e-3)
    ap.add_argument("--warmup", type=int_at_least(0), default=100)
    ap.add_argument("--weight-decay", type=number_in(0, 10), default=0.01)
    ap.add_argument("--clip", type=number_in(0, 1e6), default=1.0, help="global gradient-norm limit (0: none)")
    ap.add_argument("--ema", type=number_in(0, 1, high_open=True), default=0.0,
                    help="EMA decay of the weights (0: no EMA)")
    ap.add_argument("--dropout", type=number_in(0, 1, high_open=True), default=0.1)
    ap.add_argument("--mask-rate", type=number_in(0, 1, low_open=True), default=0.15)
    ap.add_argument("--save-every", type=int_at_least(1), default=200, help="checkpoint every N updates")
    ap.add_argument("--eval-every", type=int_at_least(1), default=100,
                    help="held-out MLM accuracy every N updates")
    ap.add_argument("--lines", type=int_at_least(1), default=4000, help="demo corpus size")
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--quick", action="store_true", help="small model and 150 updates")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    from .data_parallel import add_arguments        # --data-parallel: the global batch shared by MPI ranks
    add_arguments(ap)
    return ap


def progress(step, steps, done, seconds):
    """'12.3 updates/s, 1 min 05 s left' from `done` updates in `seconds` this session."""
    rate = done / max(seconds, 1e-9)
    left = round((steps - step) / rate) if rate > 0 else 0
    return f"{rate:.1f} updates/s, {left // 60} min {left % 60:02d} s left"


def train(args, log=None, prepared=None, mask=whole_word_mask, on_save=None):
    """The pretraining loop: --steps updates, resumed from --out with --resume.

    prepared: None (prepare(args) reads --corpus), or what pretrain_setup.prepare_rows returns
    mask: the masking function, mlm.whole_word_mask or whole_word_masking.wwm_mask (same signature)
    on_save: None or f(step, history), called after each checkpoint (a caller keeping the curve of a
             run that may be resumed)
    returns steps, parameter count, seconds, history [(update, held-out loss, held-out accuracy)] of
    this process, out, and the final config, weights and tokenizer
    """
    log = sys.stderr if log is None else log
    tok, config, rows, options, fingerprint = prepare(args) if prepared is None else prepared
    start = load_train_state(args.out, fingerprint, log=log) if (args.out and args.resume) else None
    if start is None:
        rng = np.random.default_rng(args.seed)
        params = init_params(config, rng, dtype=np.float32)
        optimizer, step, position = AdamW(params, **options), 0, {"epoch": 0, "index": 0}
        ema = EMA(params, args.ema) if args.ema else None
    else:
        params, optimizer, ema, rng = start["params"], start["optimizer"], start["ema"], start["rng"]
        step, position = start["step"], start["data_position"]
        print(f"resumed from {start['path']} at step {step}", file=log, flush=True)
    mask_id, train_ids, train_words = tok.vocab["[MASK]"], rows["train"][0], rows["train"][1]
    history, t0 = [], time.perf_counter()
    if step == 0:
        history.append((0, *evaluate(params, config, tok, rows["eval"], args.seed, args.mask_rate, mask)))
    stream = batches(train_ids, args.batch_size, args.seed, position)
    acc_grads = GradientAccumulator()
    first, every = step, max(1, args.steps // 20)
    while step < args.steps:
        for _ in range(args.accum):
            sel, position = next(stream)
            inputs, is_masked = mask(train_ids[sel], train_words[sel], rng, config.vocab_size, mask_id,
                                     args.mask_rate)
            loss, acc, n, grads = mlm_forward_backward(params, config, inputs, is_masked, train_ids[sel],
                                                       train_ids[sel] != tok.pad_id, rng, ops=FAST)
            acc_grads.add(grads, weight=n)
        optimizer.update(params, acc_grads.mean())
        if ema is not None:
            ema.update(params)
        step += 1
        if step % args.eval_every == 0 or step == args.steps:
            ev_loss, ev_acc = evaluate(params, config, tok, rows["eval"], args.seed, args.mask_rate, mask)
            history.append((step, ev_loss, ev_acc))
            print(f"step {step}/{args.steps}  train loss {loss:.3f} acc {acc:.3f}  held-out loss {ev_loss:.3f} "
                  f"acc {ev_acc:.3f}  {progress(step, args.steps, step - first, time.perf_counter() - t0)}",
                  file=log, flush=True)
        elif step % every == 0:
            print(f"step {step}/{args.steps}  train loss {loss:.3f}  "
                  f"{progress(step, args.steps, step - first, time.perf_counter() - t0)}", file=log, flush=True)
        if args.out and (step % args.save_every == 0 or step == args.steps):
            save_train_state(args.out, config=config, params=params, optimizer=optimizer, rng=rng, step=step,
                             data_position=position, fingerprint=fingerprint, ema=ema)
            if on_save is not None:
                on_save(step, history)
    return {"steps": step, "params": int(sum(p.size for p in params.values())),
            "seconds": time.perf_counter() - t0, "history": history, "out": args.out,
            "config": config, "weights": params, "tokenizer": tok}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(err, file=sys.stderr)
        return 2
    if args.quick:
        args.steps, args.lines, args.layers, args.hidden = min(args.steps, 150), min(args.lines, 1000), 1, 64
        args.intermediate, args.heads, args.eval_every, args.warmup = 128, 2, 50, 20
    try:
        if args.data_parallel:
            from .data_parallel import train_data_parallel
            out = train_data_parallel(args)
        else:
            out = train(args)
    except (ValueError, OSError) as err:               # bad input, a full disk: said in one line
        if args.debug:
            raise
        message = (str(err).splitlines() or [repr(err)])[0]
        print(f"python -m minibert.pretrain: error: {message}", file=sys.stderr)
        return 2
    if out is None:                                      # a data-parallel rank other than 0
        return 0
    hist = out["history"]
    print(f"done in {out['seconds']:.1f} s", file=sys.stderr)
    summary = {"demo": "minibert.pretrain", "steps": out["steps"], "parameters": out["params"],
               "heldout_mlm_accuracy_first": None if not hist else round(hist[0][2], 4),
               "heldout_mlm_accuracy_last": None if not hist else round(hist[-1][2], 4),
               "heldout_mlm_loss_last": None if not hist else round(hist[-1][1], 4),
               "accuracy_curve": [[s, round(a, 3)] for s, _, a in hist], "out": out["out"],
               **out.get("data_parallel", {})}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
