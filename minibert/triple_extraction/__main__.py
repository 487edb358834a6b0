"""Triple extraction: train, predict, evaluate.

    python -m minibert.triple_extraction                  # generate a corpus, train, score held-out sentences
    python -m minibert.triple_extraction --quick          # the same pipeline in under a minute
    python -m minibert.triple_extraction train --data train.json --dev dev.json --schema all_50_schemas \
        --init path/to/bert --out model/
    python -m minibert.triple_extraction predict --model model/ --data dev.json --out predictions.json
    python -m minibert.triple_extraction evaluate --data dev.json --predictions predictions.json

Progress goes to stderr; the last line of stdout is one JSON object.
"""
import json
import os
import sys
import time

# the matrices are small: one thread beats several fighting over 2 cores. This reaches our own thread
# pools (smoothing.threads.thread_count); OpenBLAS reads it only when it loads, which importing the package
# has done already, so for one BLAS thread too, set OPENBLAS_NUM_THREADS=1 in the environment
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from ..checkpoint import check_folder, load_pretrained, save_folder  # noqa: E402
from ..cli import Parser, in_range  # noqa: E402
from ..config import BertConfig  # noqa: E402
from ..fast import OPS as FAST  # noqa: E402
from ..optim import EMA, AdamW  # noqa: E402
from ..safetensors import read_safetensors, write_safetensors  # noqa: E402
from ..tokenizer import Tokenizer  # noqa: E402
from ..vocab import build_vocab, save_vocab  # noqa: E402
from .data import (PREDICATES, UNSEEN_TEMPLATES, encode_example, generate_corpus, load_examples,  # noqa: E402
                   load_schema, save_examples, training_batch)
from .decode import extract, micro_prf, score_files, triple_key  # noqa: E402
from .model import init_extractor_params, loss_backward, loss_forward  # noqa: E402


def build_parser():
    ap = Parser(prog="python -m minibert.triple_extraction", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command")
    tr = sub.add_parser("train", help="train (default: on a generated corpus) and score the dev set")
    for p in (ap, tr):
        p.add_argument("--data", help="DuIE train file (default: generated)")
        p.add_argument("--dev", help="DuIE dev file (required with --data)")
        p.add_argument("--schema", help="all_50_schemas (required with --data)")
        p.add_argument("--init", help="pretrained BERT directory (config.json, model.safetensors, vocab.txt)")
        p.add_argument("--out", help="directory to save the trained model (EMA weights)")
        p.add_argument("--steps", type=in_range(1), default=1000)
        p.add_argument("--batch-size", type=in_range(1), default=32)
        p.add_argument("--lr", type=in_range(0.0, float), default=2e-3)
        p.add_argument("--ema", type=in_range(0.0, float, 1.0), default=0.99,
                       help="EMA decay (bert4keras: 0.999 over 5000+ steps)")
        p.add_argument("--layers", type=in_range(1), default=2)
        p.add_argument("--hidden", type=in_range(1), default=128)
        p.add_argument("--maxlen", type=in_range(3), default=64)
        p.add_argument("--n-train", type=in_range(1), default=6000)
        p.add_argument("--n-test", type=in_range(1), default=500)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--quick", action="store_true", help="a small run of the same pipeline (< 1 minute)")
    pr = sub.add_parser("predict", help="write the triples a saved model finds")
    pr.add_argument("--model", required=True)
    pr.add_argument("--data", required=True, help="JSON lines with 'text'")
    pr.add_argument("--out", required=True)
    ev = sub.add_parser("evaluate", help="micro P/R/F1 of a predictions file against a data file")
    ev.add_argument("--data", required=True)
    ev.add_argument("--predictions", required=True)
    return ap


def load_data(args):
    """(train, dev, predicates) from DuIE files or the generator."""
    if args.data is None:
        train, dev = generate_corpus(args.n_train, args.n_test, args.seed)
        return train, dev, PREDICATES
    if args.dev is None or args.schema is None:
        raise ValueError("--dev and --schema are required with --data")
    return load_examples(args.data), load_examples(args.dev), load_schema(args.schema)


def make_model(args, train, predicates, rng):
    """(config, params, tokenizer): from --init, or a fresh small BERT over a vocabulary of the train texts."""
    if args.init:
        config, params = load_pretrained(args.init)
        tok = Tokenizer.from_pretrained(args.init)
        params = {k: v for k, v in params.items() if not k.startswith(("cls.", "pooler."))}
        fresh = init_extractor_params(config, len(predicates), rng)
        params.update({k: v for k, v in fresh.items() if k not in params})
        return config, params, tok
    vocab = build_vocab([ex["text"] for ex in train], 3000)
    config = BertConfig(vocab_size=len(vocab), hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=max(1, args.hidden // 32), intermediate_size=2 * args.hidden,
                        max_position_embeddings=max(args.maxlen, 16))
    return config, init_extractor_params(config, len(predicates), rng), Tokenizer(vocab)


def predict_all(params, config, tok, texts, predicates, maxlen, chunk=64):
    out = []
    for i in range(0, len(texts), chunk):
        out.extend(extract(params, config, tok, texts[i:i + chunk], predicates, maxlen))
    return out


def train(args):
    if args.quick:
        args.steps, args.n_train, args.n_test = min(args.steps, 400), min(args.n_train, 1500), min(args.n_test, 200)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train_set, dev_set, predicates = load_data(args)
    config, params, tok = make_model(args, train_set, predicates, rng)
    encoded = [encode_example(tok, ex, predicates, args.maxlen) for ex in train_set]
    # as bert4keras: a sentence none of whose triples is found in its tokens teaches nothing and is dropped
    # (the generated ones without triples among them); the test sentences keep theirs
    kept = [e for e in encoded if e["triples"]]
    if not kept:
        raise ValueError(f"{args.data or 'the generated corpus'}: no training sentence has a triple found in it")
    print(f"{len(encoded) - len(kept)} of {len(encoded)} training sentences have no triple found in their "
          "tokens and are left out, as bert4keras does", file=sys.stderr)
    encoded = kept
    opt = AdamW(params, ops=FAST, lr=args.lr, weight_decay=0.0, warmup_steps=min(100, args.steps // 10),
                total_steps=args.steps)
    ema = EMA(params, args.ema)
    order, pos = rng.permutation(len(encoded)), 0
    t_train = time.perf_counter()
    for step in range(1, args.steps + 1):
        if pos + args.batch_size > len(order):
            order, pos = rng.permutation(len(encoded)), 0
        batch = training_batch([encoded[i] for i in order[pos:pos + args.batch_size]], len(predicates),
                               tok.pad_id, rng)
        pos += args.batch_size
        loss, cache = loss_forward(params, config, batch, rng, ops=FAST)
        opt.update(params, loss_backward(cache))
        ema.update(params)
        if step % 100 == 0 or step == args.steps:
            ls, lo = cache["losses"]
            rate = step / max(time.perf_counter() - t_train, 1e-9)
            print(f"step {step}/{args.steps}  loss {loss:.4f} (subjects {ls:.4f}, objects {lo:.4f})  "
                  f"{rate:.1f} updates/s  {time.perf_counter() - t0:.0f} s, about "
                  f"{(args.steps - step) / rate:.0f} s left", file=sys.stderr, flush=True)
    train_seconds = time.perf_counter() - t0
    ema.swap_in(params)                                   # evaluate (and save) the averaged weights
    texts = [ex["text"] for ex in dev_set]
    predicted = predict_all(params, config, tok, texts, predicates, args.maxlen)
    if args.out:
        save_model(args.out, config, params, tok, predicates)
    show_examples(dev_set, predicted, args.seed)
    result = {"command": "train", "data": args.data or "generated", "seed": args.seed,
              "train_sentences": len(train_set), "train_sentences_used": len(encoded),
              "dev_sentences": len(dev_set), "steps": args.steps,
              **_figures(micro_prf(predicted, [ex["spo_list"] for ex in dev_set]))}
    if args.data is None:                                 # the generated test: seen and unseen templates
        for part, unseen in (("seen_templates", False), ("unseen_templates", True)):
            rows = [i for i, ex in enumerate(dev_set) if (ex["template"] in UNSEEN_TEMPLATES) == unseen]
            s = _figures(micro_prf([predicted[i] for i in rows], [dev_set[i]["spo_list"] for i in rows]))
            result.update({f"{k}_{part}": v for k, v in s.items()})
            result[f"sentences_{part}"] = len(rows)
    print("held-out: " + "  ".join(f"{k} {v}" for k, v in result.items() if k.startswith(("precision", "recall",
                                                                                             "f1"))))
    return {**result, "train_seconds": round(train_seconds, 1), "seconds": round(time.perf_counter() - t0, 1)}


def _figures(s):
    return {"precision": round(s["precision"], 4), "recall": round(s["recall"], 4), "f1": round(s["f1"], 4)}


def show_examples(dev_set, predicted, seed, n=4):
    """Print n held-out sentences drawn with the seed, half of them wrongly extracted when there are any."""
    rng = np.random.default_rng(seed)
    keys = lambda triples: set(map(triple_key, triples))  # noqa: E731
    wrong = [i for i, ex in enumerate(dev_set) if keys(predicted[i]) != keys(ex["spo_list"])]
    right = [i for i in range(len(dev_set)) if i not in set(wrong)]
    k = min(len(wrong), n // 2)
    picked = [wrong[i] for i in rng.permutation(len(wrong))[:k]] + \
        [right[i] for i in rng.permutation(len(right))[:n - k]]
    for i in sorted(picked):
        ok = "right" if keys(predicted[i]) == keys(dev_set[i]["spo_list"]) else "WRONG"
        print(f"{dev_set[i]['text']}\n  gold {dev_set[i]['spo_list']}\n  model {predicted[i]}  {ok}")


def save_model(directory, config, params, tok, predicates):
    """config.json, vocab.txt, extractor.safetensors and extractor.json written together through
    checkpoint.save_folder: the folder appears all at once with its manifest."""
    def meta(path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"predicates": predicates, "lowercase": tok.lowercase}, f, ensure_ascii=False)
    save_folder(directory, {"config.json": config.to_json,
                            "vocab.txt": lambda path: save_vocab(tok.id_to_token, path),
                            "extractor.safetensors": lambda path: write_safetensors(path, params),
                            "extractor.json": meta})


def load_model(directory):
    """(config, params, tokenizer, predicates) of a saved model; ValueError when a file fails the folder's
    manifest or the vocabulary, the predicates and the weights do not belong together."""
    check_folder(directory)
    for name in ("extractor.json", "config.json", "vocab.txt", "extractor.safetensors"):
        if not os.path.isfile(os.path.join(directory, name)):
            raise FileNotFoundError(f"{os.path.join(directory, name)}: missing; not a triple extraction model")
    try:
        with open(os.path.join(directory, "extractor.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{directory}/extractor.json: not JSON ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("predicates"), list) or not meta["predicates"]:
        raise ValueError(f"{directory}/extractor.json: expected {{'predicates': [...], 'lowercase': bool}}")
    config = BertConfig.from_json(os.path.join(directory, "config.json"))
    tok = Tokenizer(os.path.join(directory, "vocab.txt"), lowercase=bool(meta.get("lowercase", True)))
    params, _ = read_safetensors(os.path.join(directory, "extractor.safetensors"))
    rows = params.get("embeddings.word_embeddings.weight", np.zeros((0, 0))).shape[0]
    if not len(tok.id_to_token) == rows == config.vocab_size:
        raise ValueError(f"{directory}: vocab.txt has {len(tok.id_to_token)} tokens, the embedding {rows} rows, "
                         f"config.json vocab_size {config.vocab_size}: they do not belong together")
    width = params.get("object.weight", np.zeros((0, 0))).shape[-1]
    if width != 2 * len(meta["predicates"]):
        raise ValueError(f"{directory}: {len(meta['predicates'])} predicates in extractor.json, but the object "
                         f"head has {width} outputs (2 a predicate)")
    return config, params, tok, meta["predicates"]


def predict(args):
    config, params, tok, predicates = load_model(args.model)
    examples = load_examples(args.data)
    texts = [ex["text"] for ex in examples]
    predicted = predict_all(params, config, tok, texts, predicates, config.max_position_embeddings)
    save_examples([{"text": t, "spo_list": p} for t, p in zip(texts, predicted)], args.out)
    return {"command": "predict", "sentences": len(texts), "triples": sum(map(len, predicted)), "out": args.out}


def main(argv=None):
    """Run the command line; returns the exit status (2 with one line on stderr for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            s = score_files(args.data, args.predictions)
            result = {"command": "evaluate", **{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}}
        elif args.command == "predict":
            result = predict(args)
        else:
            result = train(args)
    except (ValueError, OSError) as err:            # bad input, a missing or unwritable file: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
