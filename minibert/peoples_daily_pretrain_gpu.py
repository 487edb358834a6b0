"""The People's Daily pretraining with CuPy arrays: more updates of larger batches, for a GPU.

    python -m minibert.peoples_daily_pretrain_gpu OUT [--steps 5000] [--batch-size 128] [--lr 2e-3]
                                                   [--warmup 1000] [--seed 0] [--eval-every 500]
                                                   [--save-every 1000] [--numpy]

The same training rows, character vocabulary, whole-word masks, architecture, held-out rows and AdamW as
peoples_daily_pretrain.py (its DEFAULTS), in a plain loop whose parameters, gradients and optimizer
state live on the GPU. OUT becomes a Hugging Face folder (config.json, model.safetensors, vocab.txt,
pretraining.json with the settings and the held-out whole-word MLM curve), rewritten every
--save-every updates, which the reading-comprehension demo reads with --pd-pretrained OUT.

What differs from peoples_daily_pretrain.py: no cache and no resume (a run is one process); the initial
weights and then the masks come from numpy.random.default_rng(seed), but the dropout draws from a
generator of their own (CuPy's on a GPU, seeded seed + 1), where pretrain.train draws all three from one:
a run of this loop does not repeat a run of the CPU pretraining's numbers, on NumPy either.
Without CuPy, or with --numpy, the same loop runs on NumPy (how the tests run it).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from . import peoples_daily_pretrain as pretraining
from .checkpoint import save_pretrained
from .mlm import mlm_forward_backward
from .model import init_params
from .optim import AdamW
from .peoples_daily import load_corpus
from .pretrain_setup import batches, check_args, model_config
from .pretrain_setup import evaluate as held_out_mlm
from .tokenizer import Tokenizer
from .vocab import save_vocab
from .whole_word_masking import wwm_mask


def array_module(numpy_only=False):
    """(xp, dropout generator maker): CuPy when it imports and sees a GPU, else NumPy."""
    if not numpy_only:
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() > 0:
                return cupy, cupy.random.default_rng
        except Exception:                                 # no CuPy, no driver, no device: NumPy
            pass
    return np, np.random.default_rng


def run(documents, out, steps=5000, batch_size=128, lr=2e-3, warmup=1000, seed=0, eval_every=500,
        save_every=1000, setting=None, numpy_only=False, log=None):
    """Pretrain and save to the folder out; returns the history [(update, held-out loss, accuracy)].

    documents: peoples_daily.load_corpus() (or documents in its format; setting["documents"] of them, None: all)
    setting: peoples_daily_pretrain.settings(...) for the rows, sizes, dropout and mask rate (default: its
             DEFAULTS; steps, batch_size, lr, warmup, seed, eval_every and save_every are this function's
             arguments)
    """
    for name, value, least in (("steps", steps, 1), ("batch_size", batch_size, 1), ("eval_every", eval_every, 1),
                               ("save_every", save_every, 1), ("warmup", warmup, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: expected an int >= {least}, got {value!r}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out: {out} exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, "manifest.json")):
        raise ValueError(f"out: {out} holds files of something else; give a new or an earlier run's folder")
    log = sys.stderr if log is None else log
    s = pretraining.settings() if setting is None else setting
    model_args = pretraining.loop_arguments(s, None)
    check_args(model_args)                              # the model's sizes, before any work
    xp, dropout_rng = array_module(numpy_only)
    train_docs, held_docs = pretraining.pretraining_documents(documents, s)
    tok = Tokenizer(pretraining.corpus_tokens(train_docs))
    (train_ids, train_words), (eval_ids, eval_words) = pretraining.pretraining_rows(tok, train_docs, held_docs, s)
    if len(train_ids) < batch_size:
        raise ValueError(f"batch_size: {batch_size} is more than the {len(train_ids)} training rows")
    config = model_config(model_args, len(tok.id_to_token))
    mask_id, V = tok.vocab["[MASK]"], config.vocab_size

    rng = np.random.default_rng(seed)                   # initial weights, then masks (as pretrain.train)
    params = {k: xp.asarray(v) for k, v in init_params(config, rng, dtype=np.float32).items()}
    warmup = min(warmup, steps)
    opt = AdamW(params, lr=lr, weight_decay=0.01, max_grad_norm=1.0, warmup_steps=warmup, total_steps=steps)
    drop = dropout_rng(seed + 1)

    def evaluate():                                     # fixed masks, no dropout
        loss, acc = held_out_mlm(params, config, tok, (eval_ids, eval_words), s["seed"], s["mask_rate"], wwm_mask)
        return float(loss), float(acc)

    record = {"settings": {**s, "steps": steps, "batch_size": batch_size, "lr": lr, "warmup": warmup,
                           "seed": seed, "eval_every": eval_every, "save_every": save_every,
                           "array_module": xp.__name__}, "train_documents": len(train_docs),
              "held_out_documents": len(held_docs)}
    history = [(0, *evaluate())]
    stream = batches(train_ids, batch_size, seed, {"epoch": 0, "index": 0})
    t0 = time.perf_counter()
    print(f"pretraining on {xp.__name__}: {len(train_ids)} rows of {s['maxlen']} tokens, {steps} updates of "
          f"{batch_size} rows; held-out MLM accuracy on {len(eval_ids)} rows", file=log, flush=True)
    for step in range(1, steps + 1):
        sel, _ = next(stream)
        inputs, is_masked = wwm_mask(train_ids[sel], train_words[sel], rng, V, mask_id, s["mask_rate"])
        batch = (xp.asarray(a) for a in (inputs, is_masked, train_ids[sel], train_ids[sel] != tok.pad_id))
        loss, acc, _, grads = mlm_forward_backward(params, config, *batch, drop)
        opt.update(params, grads)
        if step % eval_every == 0 or step == steps:
            history.append((step, *evaluate()))
            print(f"step {step}/{steps}  train loss {float(loss):.3f} acc {float(acc):.3f}  held-out loss "
                  f"{history[-1][1]:.3f} acc {history[-1][2]:.3f}  {time.perf_counter() - t0:.0f} s",
                  file=log, flush=True)
        elif step % max(1, steps // 20) == 0:
            print(f"step {step}/{steps}  train loss {float(loss):.3f}  {time.perf_counter() - t0:.0f} s",
                  file=log, flush=True)
        if step % save_every == 0 or step == steps:
            host = {k: v if xp is np else xp.asnumpy(v) for k, v in params.items()}
            done = {**record, "done_steps": step, "history": [list(h) for h in history]}
            save_pretrained(out, config, host, extra_files={
                "vocab.txt": lambda p: save_vocab(tok.id_to_token, p),
                "pretraining.json": lambda p, d=done: pretraining.write_json(p, d)})
    return history


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m minibert.peoples_daily_pretrain_gpu",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the model folder to write (read by --pd-pretrained)")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--save-every", type=int, default=1000)
    ap.add_argument("--numpy", action="store_true", help="run on NumPy even when a GPU is there")
    args = ap.parse_args(argv)
    try:
        history = run(load_corpus(), args.out, args.steps, args.batch_size, args.lr, args.warmup, args.seed,
                      args.eval_every, args.save_every, numpy_only=args.numpy)
    except (ValueError, OSError, ModuleNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"task": "peoples_daily_pretrain_gpu", "steps": history[-1][0],
                      "pretrain_mlm_accuracy": round(history[-1][2], 4), "model": os.path.abspath(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
