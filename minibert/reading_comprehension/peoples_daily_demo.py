"""What pretraining buys: cloze reading comprehension on People's Daily, pretrained against from scratch.

    python -m minibert.reading_comprehension --corpus peoples-daily [--seed N] [--quick]

1. Pretraining (peoples_daily_pretrain.py): whole-word MLM on the training documents only, saved as a
   Hugging Face folder under --pd-cache and reused by every later run with the same --pd-pretrain-* flags;
   or --pd-pretrained DIR, a folder saved elsewhere (peoples_daily_pretrain_gpu.py: longer, on a GPU).
2. Questions (cloze.py): cloze questions of the training documents to train on, of the held-out
   documents to score; the questions depend on --seed.
3. Fine-tuning (train.py's examples, UniLM loss and AdamW; by default on a random passage holding the
   answer, see --pd-train-passages), twice with the same seed, updates and batches: from the pretrained
   weights, and from a random initialisation of the same architecture and vocabulary. Every
   --pd-curve-every updates both answer the same --pd-curve-questions held-out questions, for the
   learning curve; at the end both answer all of them (infer.answer: the vote and the
   extractive decoding), scored by metric.score_predictions beside the frequency and random baselines.

Budgets are updates; the numbers depend on the flags and seeds only. run(args) prints progress on stderr
and a few result lines on stdout, and returns the summary dict (the caller prints it as the JSON line).
"""
import json
import os
import sys
import time

import numpy as np

from .. import peoples_daily_pretrain as pretraining
from ..cli import Parser, in_range
from ..fast import OPS as FAST
from ..model import init_params
from ..optim import AdamW
from ..peoples_daily import load_corpus
from ..seq2seq import seq2seq_forward_backward
from . import cloze
from .infer import answer
from .metric import score_predictions
from .train import choose_label, encode_example, epoch_examples, pad_examples

QUICK = {"pd_documents": 400, "pd_pretrain_steps": 30, "pd_maxlen": 64, "pd_layers": 2, "pd_hidden": 64,
         "pd_heads": 2, "pd_intermediate": 128, "pd_finetune_steps": 30, "pd_batch_size": 16,
         "pd_curve_every": 15, "pd_curve_questions": 12, "pd_test_questions": 30}


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def default_cache():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minibert", "peoples-daily")


def add_arguments(parser):
    """The --pd-* flags of --corpus peoples-daily (the shared --seed, --quick, --workdir, --max-p-len,
    --max-q-len, --max-a-len, --beam, --mode, --combine are read too, when the parser has them)."""
    g = parser.add_argument_group("People's Daily (--corpus peoples-daily)")
    g.add_argument("--pd-cache", default=None, help="folder of the pretrained models, reused when present "
                   "(default: $XDG_CACHE_HOME/minibert/peoples-daily or ~/.cache/...)")
    g.add_argument("--pd-pretrained", default=None, metavar="DIR",
                   help="use this saved model (a Hugging Face folder with vocab.txt, as the pretraining writes) "
                        "instead of pretraining; the --pd-pretrain-* and model-size flags are then not read")
    g.add_argument("--pd-pretrain-steps", type=in_range(1), default=pretraining.DEFAULTS["steps"],
                   help="whole-word MLM updates of 32 rows of 128 tokens")
    g.add_argument("--pd-pretrain-seed", type=in_range(0), default=0, help="seed of the pretraining")
    g.add_argument("--pd-pretrain-lr", type=in_range(0.0, float), default=pretraining.DEFAULTS["lr"])
    g.add_argument("--pd-maxlen", type=in_range(8), default=pretraining.DEFAULTS["maxlen"],
                   help="tokens per pretraining row")
    g.add_argument("--pd-layers", type=in_range(1), default=pretraining.DEFAULTS["layers"])
    g.add_argument("--pd-hidden", type=in_range(1), default=pretraining.DEFAULTS["hidden"])
    g.add_argument("--pd-heads", type=in_range(1), default=pretraining.DEFAULTS["heads"])
    g.add_argument("--pd-intermediate", type=in_range(1), default=pretraining.DEFAULTS["intermediate"])
    g.add_argument("--pd-finetune-steps", type=in_range(1), default=400,
                   help="fine-tuning updates, the same for the pretrained and the from-scratch model")
    g.add_argument("--pd-batch-size", type=in_range(1), default=32, help="fine-tuning questions per update")
    g.add_argument("--pd-lr", type=in_range(0.0, float), default=2e-3, help="peak fine-tuning learning rate")
    g.add_argument("--pd-curve-every", type=in_range(1), default=50, help="a learning-curve point every N updates")
    g.add_argument("--pd-curve-questions", type=in_range(1), default=80,
                   help="held-out questions answered at each learning-curve point")
    g.add_argument("--pd-train-passages", choices=["all", "answering"], default="answering",
                   help="fine-tune on a random one of the passages holding the answer (default), or on a random "
                        "passage of each question (all, as bert4keras; within a few hundred updates both models "
                        "then learn to say \"no answer\" to everything)")
    g.add_argument("--pd-test-questions", type=in_range(1), default=None,
                   help="score only this many held-out questions (default: all)")
    g.add_argument("--pd-documents", type=in_range(2), default=None,
                   help="use only the corpus's first N documents (default: all)")
    return parser


def _get(args, name, default):
    value = getattr(args, name, None)
    return default if value is None else value


def pretrain_setting(args, quick=False):
    """The pretraining settings the flags ask for (peoples_daily_pretrain.settings); quick: smaller batches
    and held-out sample."""
    steps = args.pd_pretrain_steps
    return pretraining.settings(
        steps=steps, seed=args.pd_pretrain_seed, lr=args.pd_pretrain_lr, maxlen=args.pd_maxlen,
        layers=args.pd_layers, hidden=args.pd_hidden, heads=args.pd_heads, intermediate=args.pd_intermediate,
        batch_size=16 if quick else 32, eval_rows=32 if quick else 128, warmup=min(100, steps // 10),
        eval_every=min(50, max(1, steps // 3)), save_every=min(50, steps), documents=args.pd_documents,
        max_positions=max(args.pd_maxlen, _lengths(args)[3] + 8))


def _lengths(args):
    p, q, a = _get(args, "max_p_len", 96), _get(args, "max_q_len", 24), _get(args, "max_a_len", 12)
    return p, q, a, p + q + a


def fullwidth_comma_row(params, tok):
    """A copy of params where "," (what train.clean_passage writes for ，、；) starts as "，" does.

    The pretraining text never has ",", so its embedding row and MLM bias are still random; bert4keras
    builds rows for new tokens from existing ones in the same way (compound_tokens)."""
    comma, full = tok.vocab.get(","), tok.vocab.get("，")
    if comma is None or full is None:
        return params
    out = dict(params)
    for name in ("embeddings.word_embeddings.weight", "cls.predictions.bias"):
        if name in out:
            out[name] = out[name].copy()
            out[name][comma] = out[name][full]
    return out


def answering_passages(records):
    """The records with only their passages that hold the answer (every cloze question has one)."""
    return [dict(r, passages=[p for p in r["passages"] if p["answer"]]) for r in records]


def predict(params, config, tok, records, args):
    """id -> answer of every record (infer.answer: vote over passages, greedy or beam search)."""
    p, q, a, _ = _lengths(args)
    kw = dict(beam_size=_get(args, "beam", 1), mode=_get(args, "mode", "extractive"),
              combine=_get(args, "combine", "vote"), max_p_len=p, max_q_len=q, max_a_len=a)
    return {str(r["id"]): answer(params, config, tok, r["question"], [x["passage"] for x in r["passages"]],
                                 **kw)[0] for r in records}


def finetune(records, tok, config, params, args, on_point=None, name="model"):
    """args.pd_finetune_steps updates on records, from params (None: a fresh init); returns new params.

    The batches and dropout come from Generator([seed, 2]) and a fresh init from Generator([seed, 1]), so
    the pretrained and the from-scratch run see the same questions, passages and order.
    on_point: f(update, params), called every args.pd_curve_every updates and after the last one.
    The examples are train.train_model's (one random passage per question per epoch, the first answer in
    its first max_p_len - 2 characters, "" when none); the loop is written here for the curve points.
    """
    seed, steps = _get(args, "seed", 0), args.pd_finetune_steps
    p_len, q_len, a_len, _ = _lengths(args)
    if params is None:
        params = init_params(config, np.random.default_rng([seed, 1]), dtype=np.float32)
    params = {k: v.copy() for k, v in params.items()}      # the update is in place: keep the caller's
    rng = np.random.default_rng([seed, 2])
    opt = AdamW(params, ops=FAST, lr=args.pd_lr, weight_decay=0.01, max_grad_norm=1.0,
                warmup_steps=min(200, steps // 10), total_steps=steps)
    pool, losses, t0 = [], [], time.perf_counter()
    for step in range(1, steps + 1):
        batch = []
        while len(batch) < args.pd_batch_size:
            if not pool:
                pool = epoch_examples(records, rng)
            passage, question, answers = pool.pop()
            ids, seg, _ = encode_example(tok, passage, question, choose_label(passage, answers, p_len), p_len,
                                         q_len, a_len)
            batch.append((ids, seg))
        token_ids, segment_ids, real = pad_examples(batch, tok.pad_id)
        drop = rng if config.hidden_dropout_prob > 0 else None
        loss, _, _, grads = seq2seq_forward_backward(params, config, token_ids, segment_ids, real, drop, ops=FAST)
        opt.update(params, grads)
        losses.append(loss)
        if step % max(1, steps // 10) == 0 or step == steps:
            rate = step / max(time.perf_counter() - t0, 1e-9)
            _log(f"{name}: update {step}/{steps}  loss {np.mean(losses):.3f}  {rate:.2f} updates/s")
            losses = []
        if on_point is not None and (step % args.pd_curve_every == 0 or step == steps):
            on_point(step, params)
    return params


def plot_learning_curve(curve, baselines, path, title):
    """Score against fine-tuning updates, pretrained and from scratch, baselines as lines; None without
    matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.8))
    steps = [c[0] for c in curve]
    ax.plot(steps, [c[1] for c in curve], marker="o", label="pretrained (whole-word MLM)")
    ax.plot(steps, [c[2] for c in curve], marker="s", label="from scratch")
    for (label, value), style in zip(baselines.items(), ("--", ":")):
        ax.axhline(value, color="gray", linestyle=style, label=label)
    ax.set_xlabel("fine-tuning updates")
    ax.set_ylabel("held-out score (accuracy + F1) / 2")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _quick(args):
    for name, value in QUICK.items():
        current = getattr(args, name)
        setattr(args, name, value if current is None else min(current, value))


def run(args):
    """The whole pipeline (module docstring); returns the summary dict, printed by the caller as JSON."""
    t_start = time.perf_counter()
    quick, seed = bool(_get(args, "quick", False)), _get(args, "seed", 0)
    if quick:
        _quick(args)
    cache = args.pd_cache or default_cache()
    work = _get(args, "workdir", None) or os.path.join(cache, f"finetune-seed{seed}{'-quick' if quick else ''}")
    os.makedirs(work, exist_ok=True)
    pre = None
    if _get(args, "pd_pretrained", None):                # checked before the corpus is read
        try:
            pre = pretraining.saved_model(args.pd_pretrained, os.path.join(work, "mlm_accuracy.png"), redraw=True)
        except (ValueError, OSError) as err:
            raise ValueError(f"--pd-pretrained {args.pd_pretrained}: {err}") from None
    try:
        documents = load_corpus()
    except ModuleNotFoundError as err:                   # said in one line, as a bad flag is
        raise ValueError(f"--corpus peoples-daily: {err}") from None
    setting = pretrain_setting(args, quick)
    if pre is None:
        pre = pretraining.pretrained_model(documents, setting, cache)
    tok, config = pre["tokenizer"], pre["config"]
    docs = documents if args.pd_documents is None else documents[:args.pd_documents]
    train_q, _, test_q, test_facts = cloze.cloze_splits(docs, np.random.default_rng(seed),
                                                        max_question_chars=max(8, _lengths(args)[1] - 2))
    if args.pd_test_questions is not None:
        test_q, test_facts = test_q[:args.pd_test_questions], test_facts[:args.pd_test_questions]
    if not train_q or not test_q:
        raise ValueError(f"--pd-documents {args.pd_documents}: too few documents for training and held-out "
                         f"questions ({len(train_q)} and {len(test_q)})")
    curve_q = [test_q[i] for i in sorted(np.random.default_rng([seed, 3]).permutation(len(test_q))
                                         [:args.pd_curve_questions])]
    _log(f"{len(train_q)} training and {len(test_q)} held-out cloze questions; learning curve on "
         f"{len(curve_q)} of them every {args.pd_curve_every} updates; outputs in {work}")
    points = {}
    fine_q = answering_passages(train_q) if _get(args, "pd_train_passages", "all") == "answering" else train_q

    def point(which):
        def record(step, params):
            s = score_predictions(curve_q, predict(params, config, tok, curve_q, args))["score"]
            points.setdefault(step, {})[which] = s
            _log(f"  {which} after {step} updates: score {s:.3f} on {len(curve_q)} held-out questions")
        return record

    results = {}
    for which, start in (("pretrained", fullwidth_comma_row(pre["params"], tok)), ("from scratch", None)):
        params = finetune(fine_q, tok, config, start, args, point(which), which)
        preds = predict(params, config, tok, test_q, args)
        results[which] = (score_predictions(test_q, preds), preds)
        with open(os.path.join(work, f"predictions-{which.replace(' ', '-')}.tsv"), "w", encoding="utf-8") as f:
            f.writelines(f"{k}\t{v}\n" for k, v in preds.items())
    base = {w: score_predictions(test_q, cloze.baseline_predictions(test_q, test_facts, w,
                                                                     np.random.default_rng([seed, 4])))["score"]
            for w in ("frequency", "random")}
    curve = [[k, round(v["pretrained"], 4), round(v["from scratch"], 4)] for k, v in sorted(points.items())]
    png = plot_learning_curve(curve, {"most frequent entity of the type": base["frequency"],
                                      "random entity of the type": base["random"]},
                              os.path.join(work, "learning_curve.png"),
                              f"People's Daily cloze, seed {seed}: the curve on {len(curve_q)} held-out\n"
                              f"questions, the baselines on all {len(test_q)}")
    s, z = results["pretrained"][0], results["from scratch"][0]
    print(f"held-out cloze questions ({len(test_q)}): pretrained score {s['score']:.3f} (accuracy "
          f"{s['accuracy']:.3f}, F1 {s['f1']:.3f}); from scratch {z['score']:.3f} (accuracy {z['accuracy']:.3f}, "
          f"F1 {z['f1']:.3f}); baselines: most frequent entity {base['frequency']:.3f}, random entity "
          f"{base['random']:.3f}")
    history = pre["history"]
    pre_steps = pre["steps"]
    print(f"pretraining: held-out whole-word MLM accuracy {history[-1][2] if history else float('nan'):.3f} "
          f"after {'an unknown number of' if pre_steps is None else pre_steps} updates")
    for kind, path in (("MLM accuracy curve", pre["png"]), ("learning curve", png)):
        print(f"{kind}: {path or 'not drawn (matplotlib is not installed)'}")
    _log(f"done in {time.perf_counter() - t_start:.0f} s")
    r4 = lambda x: None if x is None else round(float(x), 4)             # noqa: E731
    return {"demo": "minibert.reading_comprehension", "corpus": "peoples-daily", "quick": quick, "seed": seed,
            "completed": True, "score": r4(s["score"]), "accuracy": r4(s["accuracy"]), "f1": r4(s["f1"]),
            "score_from_scratch": r4(z["score"]), "accuracy_from_scratch": r4(z["accuracy"]),
            "f1_from_scratch": r4(z["f1"]), "baseline_score": r4(base["frequency"]),
            "random_baseline_score": r4(base["random"]),
            "pretrain_mlm_accuracy": r4(history[-1][2]) if history else None,
            "pretrain_mlm_accuracy_first": r4(history[0][2]) if history else None,
            "pretrain_steps": pre_steps, "finetune_steps": args.pd_finetune_steps,
            "train_questions": len(train_q), "test_questions": len(test_q), "curve_questions": len(curve_q),
            "learning_curve": curve, "pretrain_curve": [[h[0], r4(h[2])] for h in history],
            "figures": {"mlm_accuracy": pre["png"], "learning_curve": png}, "pretrained_model":
                pre["model_dir"], "workdir": work}


def build_parser():
    """A parser of this pipeline alone: the --pd-* flags and the shared ones it reads."""
    ap = Parser(prog="python -m minibert.reading_comprehension.peoples_daily_demo",
                description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the same pipeline in under a minute")
    ap.add_argument("--seed", type=in_range(0), default=0)
    ap.add_argument("--workdir", help="where questions' predictions and the learning curve go")
    return add_arguments(ap)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

