"""`python -m minibert.reading_comprehension [train | predict | evaluate]`.

With no subcommand: generate the synthetic corpus, train --members small models from scratch side by side
(two by default, one process each: members.py), choose on development questions about training people
between them read as one model and each alone, answer the held-out questions with the chosen reader,
print a few of them, then accuracy, F1, score, no-answer precision / recall and questions/s;
the last line of stdout is one JSON object. Progress goes to stderr. With `--corpus peoples-daily`: the
same for cloze questions of People's Daily, pretrained against from scratch (peoples_daily_demo.py).
"""
import os

# The matrices here are at most a few hundred wide: one thread is faster than two fighting over
# them on a small shared machine. This reaches our own thread pools (smoothing.threads.thread_count);
# OpenBLAS reads it only when it loads, and `python -m minibert...` has loaded NumPy already (the
# package imports it), so for one BLAS thread too, set OPENBLAS_NUM_THREADS=1 in the environment.
# A value already set is kept.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from ..cli import Parser, in_range  # noqa: E402
from ..kv_cache import FullRecompute, UniLMCache  # noqa: E402
import numpy as np  # noqa: E402

from . import peoples_daily_demo  # noqa: E402
from .baseline import baseline_score  # noqa: E402
from .data import (EASY_KINDS, accepted_answers, dev_records, load_records, save_records,  # noqa: E402
                   synthetic_corpus)
from .members import (fit, load_model, load_models, member_dir, note_cut_passages, predict,  # noqa: E402, F401
                      read_side_by_side, save_model, train_members)
from .metric import exact_match, read_predictions, score_predictions, write_predictions  # noqa: E402


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _model_args(p):
    p.add_argument("--max-p-len", type=in_range(3), default=96, help="passage tokens with [CLS] and [SEP]")
    p.add_argument("--max-q-len", type=in_range(2), default=24, help="question tokens with its [SEP]")
    p.add_argument("--max-a-len", type=in_range(1), default=12, help="answer tokens with the final [SEP]")


def _train_args(p):
    p.add_argument("--steps", type=in_range(1), default=11000,
                   help="updates on the training questions (with any curriculum questions mixed in)")
    p.add_argument("--minutes", type=in_range(0.0, float), default=None,
                   help="opt-in wall-clock cap on training (default: none; the budget is --steps updates); "
                        "a run it cuts short reports \"completed\": false")
    p.add_argument("--batch-size", type=in_range(1), default=32)
    p.add_argument("--lr", type=in_range(0.0, float), default=2e-3, help="peak learning rate on the training questions")
    p.add_argument("--curriculum-lr", type=in_range(0.0, float), default=3e-3,
                   help="peak learning rate of curriculum stages")
    p.add_argument("--layers", type=in_range(1), default=3)
    p.add_argument("--hidden", type=in_range(1), default=64)
    p.add_argument("--heads", type=in_range(1), default=1)
    p.add_argument("--position-init", choices=["random", "sinusoidal"], default="sinusoidal",
                   help="from scratch, the position embeddings' starting value: sines and cosines "
                        "(params.sinusoidal_positions), or random as every other weight (the default before "
                        "the fourth revision of 2026-12-03); learned either way")
    p.add_argument("--position-scale", type=in_range(0.0, float), default=0.1,
                   help="sinusoidal starting positions: a row's norm is this times sqrt(hidden / 2)")
    p.add_argument("--init-range", type=in_range(0.0, float), default=0.02,
                   help="from scratch, the std of the random starting weights (BERT's initializer_range)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="start from this BERT directory (config.json, model.safetensors, vocab.txt)")


def _decode_args(p):
    p.add_argument("--beam", type=in_range(1), default=1, help="beam size (1: greedy)")
    p.add_argument("--mode", default="extractive", choices=["extractive", "generative"])
    p.add_argument("--combine", default="vote", choices=["vote", "best"],
                   help="vote over passages, or read only the passage surest of its first token")


def build_parser():
    ap = Parser(prog="python -m minibert.reading_comprehension", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the same pipeline in under a minute")
    ap.add_argument("--corpus", choices=["synthetic", "peoples-daily"], default="synthetic",
                    help="the demo's corpus: the synthetic one, or cloze questions of People's Daily, read by a "
                         "model pretrained on it and by one from scratch (the --pd-* flags; peoples_daily_demo.py)")
    ap.add_argument("--train-questions", type=in_range(1), default=40000)
    ap.add_argument("--test-questions", type=in_range(1), default=1000)
    ap.add_argument("--dev-questions", type=in_range(0), default=500,
                    help="questions about training people on which the members, and the members read as one, "
                         "are scored to choose the model that answers the held-out questions (0: no choice, "
                         "the members read as one)")
    ap.add_argument("--easy-questions", type=in_range(0), default=20000,
                    help="curriculum stage 1: questions whose passages are two sentences, always answering")
    ap.add_argument("--easy-steps", type=in_range(0), default=1500, help="updates on them (0: no such stage)")
    ap.add_argument("--easy-kind", choices=EASY_KINDS, default="easy",
                    help="their rival: any other person of the question, or (easy-disjoint, the default "
                         "before the second revision of 2026-12-03) one whose name shares no character "
                         "with the asked one (data.py)")
    ap.add_argument("--members", type=in_range(1), default=2,
                    help="models trained side by side on the corpus (one process each, seeds --seed + 1000 m), "
                         "read as one: the mean of their next-token distributions (members.py)")
    ap.add_argument("--ablations", action="store_true", help="also print the decoding ablation table")
    ap.add_argument("--workdir", help="where the corpus, model and predictions go (default: a temporary one)")
    _model_args(ap), _train_args(ap), _decode_args(ap)
    peoples_daily_demo.add_arguments(ap)
    sub = ap.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train on a data file, save the model")
    t.add_argument("--data", required=True), t.add_argument("--out", required=True)
    t.add_argument("--curriculum", nargs="+", default=[], metavar="FILE:STEPS",
                   help="data files to train on first, in this order, each for its number of updates")
    _model_args(t), _train_args(t)
    pr = sub.add_parser("predict", help="answer the questions of a data file: id<TAB>answer lines")
    pr.add_argument("--model", required=True, nargs="+", help="a model folder, or several read as one (their mean)")
    pr.add_argument("--data", required=True)
    pr.add_argument("--out", required=True)
    _model_args(pr), _decode_args(pr)
    ab = sub.add_parser("ablations", help="the decoding ablation table of a saved model on a data file")
    ab.add_argument("--model", required=True, nargs="+", help="a model folder, or several read as one (their mean)")
    ab.add_argument("--data", required=True)
    _model_args(ab), _decode_args(ab)
    ev = sub.add_parser("evaluate", help="score a predictions file against a data file")
    ev.add_argument("--data", required=True), ev.add_argument("--predictions", required=True)
    return ap


def _stage(arg):
    """'FILE:STEPS' of --curriculum -> (FILE, its records, STEPS)."""
    path, sep, steps = arg.rpartition(":")
    if not sep or not steps.isdigit():
        raise ValueError(f"--curriculum: expected FILE:STEPS, got {arg!r}")
    return path, load_records(path), int(steps)


def _figures(s):
    """The scores of score_predictions without its bookkeeping of missing and unknown ids."""
    return {k: v for k, v in s.items() if k not in ("missing_ids", "unknown_ids", "unknown_example")}


def _rounded(d):
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def run_ablations(args, tok, config, params, test):
    """One row per decoding variant on the same trained model: score, accuracy, F1, questions/s.

    Prints the rows as a Markdown table and returns them as dicts."""
    base, rows = dict(beam=args.beam, mode=args.mode, combine=args.combine), []
    variants = [("vote, extractive, beam 1", {}), ("single most confident passage", {"combine": "best"}),
                ("generative (no n-gram constraint)", {"mode": "generative"}), ("beam 2", {"beam": 2})]
    print("| variant | accuracy | F1 | score | questions/s |\n|---|---|---|---|---|")
    for name, change in variants:
        a = argparse.Namespace(**{**vars(args), **base, **change})
        preds, qps = predict(a, tok, config, params, test)
        s = score_predictions(test, preds)
        rows.append({"variant": name, "questions": len(test), **_rounded(_figures(s)),
                     "questions_per_second": round(qps, 1)})
        print(f"| {name} | {s['accuracy']:.3f} | {s['f1']:.3f} | {s['score']:.3f} | {qps:.1f} |", flush=True)
    subset = test[:max(1, len(test) // 5)]
    for name, decoder in (("cached (UniLMCache)", UniLMCache), ("uncached (FullRecompute)", FullRecompute)):
        preds, qps = predict(argparse.Namespace(**{**vars(args), **base}), tok, config, params, subset, decoder)
        s = score_predictions(subset, preds)
        rows.append({"variant": name, "questions": len(subset), **_rounded(_figures(s)),
                     "questions_per_second": round(qps, 1)})
        print(f"| {name}, {len(subset)} questions | {s['accuracy']:.3f} | {s['f1']:.3f} | {s['score']:.3f} | "
              f"{qps:.1f} |", flush=True)
    return rows


def readers_of(folders):
    """The demo's readers of its member folders: [(name, folders read as one)], the members as one
    first, then each member alone; one member: the model alone."""
    if len(folders) == 1:
        return [("the model", folders)]
    return [("members read as one", folders)] + [(f"member {m + 1} alone", [f]) for m, f in enumerate(folders)]


def choose_reader(dev_scores):
    """The index of the reader with the best development score, the first of the best on a tie (the
    members read as one); 0 when there is nothing to choose from (dev_scores empty)."""
    return max(range(len(dev_scores)), key=lambda i: (dev_scores[i], -i)) if dev_scores else 0


def example_questions(test, preds, seed, n=6):
    """n held-out questions to print, drawn with the seed: half of them wrongly answered ones when there
    are that many, and more when fewer than n - n // 2 are right, so the printout shows the model's
    mistakes as well as its successes and has n lines whenever the test set has n questions."""
    rng = np.random.default_rng(seed)
    wrong = [r for r in test if not exact_match(preds[str(r["id"])], accepted_answers(r))]
    right = [r for r in test if exact_match(preds[str(r["id"])], accepted_answers(r))]
    k = min(len(wrong), max(n // 2, n - len(right)))             # more wrong ones when few are right
    picked = [wrong[i] for i in rng.permutation(len(wrong))[:k]]
    picked += [right[i] for i in rng.permutation(len(right))[:n - k]]
    return [picked[i] for i in rng.permutation(len(picked))]


def run_demo(args):
    if args.quick:
        args.train_questions, args.test_questions = min(args.train_questions, 1500), min(args.test_questions, 60)
        args.dev_questions = min(args.dev_questions, 30)
        args.easy_questions, args.easy_steps = min(args.easy_questions, 800), min(args.easy_steps, 100)
        args.steps = min(args.steps, 150)
    t_start = time.perf_counter()
    work = args.workdir or tempfile.mkdtemp(prefix="rc_demo_")
    os.makedirs(work, exist_ok=True)
    easy = [(args.easy_kind, args.easy_questions)] if args.easy_questions > 0 and args.easy_steps > 0 else []
    train, test, stages = synthetic_corpus(args.train_questions, args.test_questions, seed=args.seed,
                                           curriculum=easy)
    dev = dev_records(args.dev_questions, seed=args.seed)
    for name, recs in [("train", train), ("test", test), ("dev", dev)] + stages:
        save_records(recs, os.path.join(work, name + ".json"))
    _log(f"corpus in {work}: {len(train)} training, {len(test)} held-out, {len(dev)} development"
         + "".join(f", {len(recs)} {kind}" for kind, recs in stages) + " questions")
    _log(f"training {args.members} model(s) side by side, one process each")
    runs = train_members(args, work, [kind for kind, _ in stages], args.members)
    histories, completed = [h for h, _ in runs], all(c for _, c in runs)
    train_seconds = time.perf_counter() - t_start
    # every reader answers the development and the held-out questions, the questions spread over the
    # members' processes; the development questions choose the reader of the held-out ones
    readers = readers_of([member_dir(work, m) for m in range(args.members)])
    choosing = len(readers) > 1 and len(dev) > 0
    _log(f"reading {len(dev) if choosing else 0} development and {len(test)} held-out questions with "
         f"{len(readers)} reader(s), {args.members} process(es)")
    tok, config, params = load_models(readers[0][1])
    note_cut_passages(args, tok, dev + test)
    answers, seconds = read_side_by_side(args, [folders for _, folders in readers], [dev if choosing else [], test],
                                         processes=args.members)
    dev_scores = [score_predictions(dev, a[0])["score"] for a in answers] if choosing else []
    chosen = choose_reader(dev_scores)
    if choosing:
        _log("development questions (training people): " + ", ".join(
            f"{name} {x:.3f}" for (name, _), x in zip(readers, dev_scores)) + f"; chosen: {readers[chosen][0]}")
    preds, qps = answers[chosen][1], len(test) / max(seconds[chosen][1], 1e-9)
    write_predictions(preds, os.path.join(work, "predictions.tsv"))
    s = score_predictions(test, preds)
    test_scores = [score_predictions(test, a[1])["score"] for a in answers]
    member_scores = test_scores[1:] if len(readers) > 1 else test_scores
    for r in example_questions(test, preds, args.seed):
        gold = accepted_answers(r)[0]
        ok = "right" if exact_match(preds[str(r["id"])], accepted_answers(r)) else "WRONG"
        print(f"Q: {r['question']}  passages: {len(r['passages'])}  gold: {gold or '(none)'}  "
              f"model: {preds[str(r['id'])] or '(none)'}  {ok}")
    na = {k: "n/a" if s[k] is None else f"{s[k]:.3f}" for k in ("no_answer_precision", "no_answer_recall")}
    print(f"held-out, {readers[chosen][0]}: accuracy {s['accuracy']:.3f}  F1 {s['f1']:.3f}  score "
          f"{s['score']:.3f}  no-answer precision {na['no_answer_precision']}  recall "
          f"{na['no_answer_recall']}  {qps:.1f} questions/s")
    base, reader = baseline_score(test)
    print(f"best name-blind reader ({reader}): score {base:.3f}")
    if args.members > 1:
        print(f"held-out scores: members read as one {test_scores[0]:.3f}, each model alone "
              + ", ".join(f"{x:.3f}" for x in member_scores))
    if args.ablations:
        run_ablations(args, tok, config, params, test)
    if not completed:
        done = min(h[-1][0] if h else 0 for h in histories)
        print(f"NOTE: training was cut short by --minutes {args.minutes:g} after {done} updates; these figures "
              "are not those of the full budget")
    summary = {"demo": "minibert.reading_comprehension", "quick": args.quick, "seed": args.seed,
               "completed": completed, **_rounded(_figures(s)), "baseline_score": round(base, 4),
               "members": args.members, "chosen": readers[chosen][0],
               "dev_questions": len(dev) if choosing else 0, "dev_scores": [round(x, 4) for x in dev_scores],
               "score_members_as_one": round(test_scores[0], 4),
               "member_scores": [round(x, 4) for x in member_scores],
               "questions_per_second": round(qps, 1),
               "train_steps": [h[-1][0] if h else 0 for h in histories],
               "train_loss_last": [round(h[-1][1], 4) if h else None for h in histories],
               "seconds_to_train": round(train_seconds, 1),
               "seconds_total": round(time.perf_counter() - t_start, 1), "workdir": work}
    print(json.dumps(summary, ensure_ascii=False))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            records, preds = load_records(args.data), read_predictions(args.predictions)
            if not preds:
                raise ValueError(f"{args.predictions}: holds no prediction (expected id<TAB>answer lines)")
            s = score_predictions(records, preds)
            if s["unknown_ids"]:
                _log(f"warning: {args.predictions}: {s['unknown_ids']} predictions are for ids that "
                     f"{args.data} does not have (e.g. {s['unknown_example']!r}); they are not scored")
            if s["missing_ids"]:
                _log(f"warning: {args.predictions}: no prediction for {s['missing_ids']} of the "
                     f"{s['questions']} questions; they are scored as answered \"\"")
            print(json.dumps(_rounded(s), ensure_ascii=False))
        elif args.command == "train":
            records = load_records(args.data)
            stages = [_stage(arg) for arg in args.curriculum]
            tok, config, params, history, completed = fit(args, records, stages)
            save_model(args.out, tok, config, params)
            print(json.dumps({"model": args.out, "completed": completed,
                              "steps": history[-1][0] if history else 0,
                              "train_loss_last": round(history[-1][1], 4) if history else None}))
        elif args.command == "ablations":
            tok, config, params = load_models(args.model)
            rows = run_ablations(args, tok, config, params, load_records(args.data))
            print(json.dumps({"ablations": rows}, ensure_ascii=False))
        elif args.command == "predict":
            tok, config, params = load_models(args.model)
            preds, qps = predict(args, tok, config, params, load_records(args.data))
            write_predictions(preds, args.out)
            print(json.dumps({"predictions": args.out, "questions": len(preds),
                              "questions_per_second": round(qps, 1)}))
        elif args.corpus == "peoples-daily":
            print(json.dumps(peoples_daily_demo.run(args), ensure_ascii=False))
        else:
            run_demo(args)
    except (ValueError, OSError) as err:            # bad input, a missing or unwritable file: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
