"""Whole-word-masking MLM pretraining on the People's Daily training documents, kept as a Hugging Face folder.

The steps, all on the TRAINING documents of peoples_daily.split_documents (the held-out ones only measure):
  1. the character vocabulary (peoples_daily.character_vocab) plus ",", the character the
     reading-comprehension passages are cleaned to (train.clean_passage), which the corpus never has;
  2. paragraphs packed into rows of `maxlen` tokens cut between words (whole_word_masking.corpus_rows);
  3. pretrain.train, the project's resumable MLM loop, with whole_word_masking.wwm_mask: the corpus's own
     annotated words are masked whole (Chinese-BERT-wwm); every `eval_every` updates the masked-token
     accuracy on `eval_rows` rows of the held-out documents, masked with a fixed seed;
  4. the weights, vocab.txt and pretraining.json (the settings and that curve) saved with
     checkpoint.save_pretrained, and the curve drawn to mlm_accuracy.png when matplotlib is installed.

Everything lives in ROOT/pretrain-<key>/, the key a hash of the settings, so a second call with the same
settings loads the saved model instead of training, a run killed half way resumes from its newest
checkpoint (run/) to the same weights, and other settings never collide with it.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np

from .checkpoint import load_pretrained, save_pretrained
from .peoples_daily import character_vocab, split_documents
from .pretrain import train
from .pretrain_setup import check_args, prepare_rows
from .tokenizer import Tokenizer
from .vocab import save_vocab
from .whole_word_masking import corpus_rows, wwm_mask

FORMAT = "peoples-daily-wwm-1"
# the default run: 1,000 updates, measured at 1,581 s of CPU time on one thread (setup included) on a
# 2-core machine loaded by other jobs (load 5-7), so under 30 minutes on a quiet one
DEFAULTS = {"steps": 1000, "batch_size": 32, "maxlen": 128, "layers": 4, "hidden": 128, "heads": 4,
            "intermediate": 512, "max_positions": 140, "lr": 1e-3, "warmup": 100, "dropout": 0.1,
            "mask_rate": 0.15, "seed": 0, "eval_rows": 128, "eval_every": 50, "save_every": 50,
            "documents": None}


def settings(**changes):
    """DEFAULTS with changes; ValueError naming an unknown setting. documents: None (all) or the number
    of the corpus's first documents to use (the quick run's subset)."""
    unknown = sorted(set(changes) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"changes: unknown pretraining settings {unknown}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **changes}


def cache_folder(root, setting):
    """ROOT/pretrain-<first 12 hex digits of sha1 of the settings as sorted JSON>."""
    key = hashlib.sha1(json.dumps({"format": FORMAT, **setting}, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(root, f"pretrain-{key}")


def loop_arguments(setting, run_dir):
    """The argparse namespace pretrain.train reads, from the settings (the rest as pretrain.py's flags)."""
    s = setting
    return argparse.Namespace(
        corpus=None, vocab=None, out=run_dir, resume=True, steps=s["steps"], batch_size=s["batch_size"],
        accum=1, maxlen=s["maxlen"], max_positions=s["max_positions"], layers=s["layers"],
        hidden=s["hidden"], heads=s["heads"], intermediate=s["intermediate"], optimizer="adamw", lr=s["lr"],
        warmup=s["warmup"], weight_decay=0.01, clip=1.0, ema=0.0, dropout=s["dropout"],
        mask_rate=s["mask_rate"], save_every=s["save_every"], eval_every=s["eval_every"], seed=s["seed"])


def write_json(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)                                   # never half a file


def _read_json(path, default):
    if not os.path.isfile(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def corpus_tokens(train_docs):
    """The training documents' character vocabulary plus ","."""
    tokens = character_vocab(train_docs)
    return tokens + ([","] if "," not in tokens else [])


def corpus_tokenizer(train_docs, folder):
    """corpus_tokens, kept in folder/vocab.txt once built."""
    path = os.path.join(folder, "vocab.txt")
    if not os.path.isfile(path):
        tokens = corpus_tokens(train_docs)
        tmp = f"{path}.tmp-{os.getpid()}"
        save_vocab(tokens, tmp)
        os.replace(tmp, path)
    return Tokenizer(path)


def held_out_rows(tok, held_docs, maxlen, n_rows):
    """n_rows rows of the held-out documents, evenly spaced through them (token_ids, word_ids)."""
    token_ids, word_ids = corpus_rows(tok, [p for d in held_docs for p in d.paragraphs], maxlen)
    pick = np.unique(np.linspace(0, len(token_ids) - 1, min(n_rows, len(token_ids))).astype(int))
    return token_ids[pick], word_ids[pick]


def pretraining_documents(documents, setting):
    """(training documents, held-out documents) of setting["documents"] of them (None: all); both needed."""
    docs = documents if setting["documents"] is None else documents[:setting["documents"]]
    train_docs, held_docs = split_documents(docs)
    if not train_docs or not held_docs:
        raise ValueError(f"documents: {len(docs)} documents split into {len(train_docs)} training and "
                         f"{len(held_docs)} held-out ones; pretraining needs both")
    return train_docs, held_docs


def pretraining_rows(tok, train_docs, held_docs, setting):
    """(train_rows, eval_rows): every training paragraph's rows and setting["eval_rows"] held-out rows,
    each (token_ids, word_ids)."""
    train_rows = corpus_rows(tok, [p for d in train_docs for p in d.paragraphs], setting["maxlen"])
    return train_rows, held_out_rows(tok, held_docs, setting["maxlen"], setting["eval_rows"])


def _curve_title(train_documents):
    return f"whole-word MLM on People's Daily, {train_documents} training documents"


def plot_curve(history, path, title):
    """Held-out MLM accuracy against updates to path; None (nothing drawn) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([h[0] for h in history], [h[2] for h in history], marker=".")
    ax.set_xlabel("pretraining updates")
    ax.set_ylabel("held-out whole-word MLM accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def saved_model(model_dir, png=None, log=None, redraw=False):
    """A saved pretrained model: a Hugging Face folder (config.json, model.safetensors, vocab.txt) and,
    when present, its pretraining.json (the held-out MLM curve, drawn to png if that is not there yet,
    or always with redraw: png may hold another model's curve then).

    returns what pretrained_model returns, with reused True, folder the model folder's parent and steps
    the record's number of updates (None without pretraining.json)
    """
    log = sys.stderr if log is None else log
    model_dir = os.path.abspath(model_dir)
    vocab = os.path.join(model_dir, "vocab.txt")
    if not os.path.isfile(vocab):
        raise ValueError(f"model_dir: {model_dir} has no vocab.txt (a pretrained model folder holds "
                         "config.json, model.safetensors and vocab.txt)")
    config, params = load_pretrained(model_dir)
    record = _read_json(os.path.join(model_dir, "pretraining.json"), {})
    history = [tuple(h) for h in record.get("history", [])]
    folder = os.path.dirname(model_dir)
    png = os.path.join(folder, "mlm_accuracy.png") if png is None else png
    print(f"pretrained model reused: {model_dir}", file=log, flush=True)
    if history and (redraw or not os.path.isfile(png)):   # saved without matplotlib, or png is not this model's
        png = plot_curve(history, png, _curve_title(record.get("train_documents", "?")))
    elif redraw:                                          # no curve of this model: an older picture is not its
        png = None
    # the GPU loop records how far it got (done_steps); the cached pretraining saves only when done
    steps = record.get("done_steps", record.get("settings", {}).get("steps"))
    return {"config": config, "params": params, "tokenizer": Tokenizer(vocab), "history": history,
            "reused": True, "folder": folder, "model_dir": model_dir, "steps": steps,
            "png": png if png and os.path.isfile(png) else None}


def pretrained_model(documents, setting, root, log=None):
    """The pretrained (config, params, tokenizer) for these settings: loaded when saved, else trained.

    documents: peoples_daily.load_corpus() (setting["documents"] of them are used, None: all)
    returns dict config, params, tokenizer, history [(update, held-out loss, accuracy)], reused (bool),
    folder, model_dir (folder/model), steps (pretraining updates), png (path or None)
    """
    log = sys.stderr if log is None else log
    folder = cache_folder(root, setting)
    model_dir, curve_path = os.path.join(folder, "model"), os.path.join(folder, "curve.json")
    png = os.path.join(folder, "mlm_accuracy.png")
    if os.path.isdir(model_dir):
        return saved_model(model_dir, png, log)
    os.makedirs(folder, exist_ok=True)
    args = loop_arguments(setting, os.path.join(folder, "run"))
    check_args(args)
    train_docs, held_docs = pretraining_documents(documents, setting)
    tok = corpus_tokenizer(train_docs, folder)
    train_rows, eval_rows = pretraining_rows(tok, train_docs, held_docs, setting)
    print(f"pretraining on {len(train_docs)} training documents ({len(train_rows[0])} rows of "
          f"{setting['maxlen']} tokens, vocabulary {len(tok.id_to_token)}); held-out MLM accuracy on "
          f"{len(eval_rows[0])} rows of {len(held_docs)} held-out documents; in {folder}", file=log, flush=True)
    prepared = prepare_rows(args, tok, train_rows, eval_rows)
    prepared[4]["masking"] = FORMAT                         # the fingerprint a resumed run must match
    earlier = [tuple(h) for h in _read_json(curve_path, [])]

    def keep_curve(step, history):                          # points of this process after earlier ones
        first = history[0][0] if history else step + 1
        write_json(curve_path, [h for h in earlier if h[0] < first] + [list(h) for h in history])

    out = train(args, log, prepared, wwm_mask, keep_curve)
    first = out["history"][0][0] if out["history"] else out["steps"] + 1
    history = [h for h in earlier if h[0] < first] + [tuple(h) for h in out["history"]]
    record = {"format": FORMAT, "settings": setting, "history": [list(h) for h in history],
              "train_documents": len(train_docs), "held_out_documents": len(held_docs)}
    save_pretrained(model_dir, out["config"], out["weights"], extra_files={
        "vocab.txt": lambda p: save_vocab(tok.id_to_token, p),
        "pretraining.json": lambda p: write_json(p, record)})
    drawn = plot_curve(history, png, _curve_title(len(train_docs)))
    return {"config": out["config"], "params": out["weights"], "tokenizer": tok, "history": history,
            "reused": False, "folder": folder, "model_dir": model_dir, "steps": setting["steps"], "png": drawn}
