"""Training the demo's models, one or several side by side, their folders, and reading with them.

The demo trains `--members` models on one corpus, each from its own starting weights and data order
(member m trains with seed `--seed + 1000 m`; member 0 is the single model of `--members 1`), one process
per member so that two of them use two cores in the wall time of one. They then answer as one model
(infer.answer with a list of parameters): at every decoding step a passage's next-token distribution is
the mean of the members' (infer.MeanState), and the no-answer drop and the vote run on that. From
scratch, runs of this corpus learn to read at different updates and to different levels (README), so
two of them disagree mostly where one is unsure, and the mean sides with the surer one.

Reading is spread over processes too (read_side_by_side): every question is answered on its own, so
cutting the questions into pieces and answering the pieces in several processes gives the answers of
one process, in a fraction of its time.
"""
import copy
import multiprocessing
import os
import sys
import time

from ..checkpoint import load_pretrained, save_pretrained
from ..fast import OPS as FAST
from ..tokenizer import Tokenizer
from ..vocab import save_vocab
from .data import corpus_characters, load_records
from .infer import answer, encode_question
from .train import small_config, train_model, vocab_tokens


def member_seed(seed, m):
    """The training seed of member m (0-based): member 0 trains with the demo's own seed."""
    return seed + 1000 * m


def member_dir(work, m):
    """The folder of member m's model: model/, then model-2/, model-3/, ..."""
    return os.path.join(work, "model" if m == 0 else f"model-{m + 1}")


def fit(args, records, curriculum=(), extra_chars="", log=sys.stderr):
    """(tokenizer, config, params, history, completed) trained on records, from scratch or from --init.

    curriculum: (name, records, steps) stages trained on first, in order, at --curriculum-lr; then
    --steps updates at --lr on records with every curriculum stage's records mixed in, so that what the
    easier stages taught is still asked for. Each stage has its own warm-up and linear decay. The budget
    is the updates; an opt-in --minutes cap shared by all stages may cut it short (completed False).
    On the synthetic corpus the easy stage is what teaches the model to tie a value to the person of its
    sentence (see the README): from scratch, the full passages alone do not, within
    the demo's budget.
    """
    if args.init:
        tok = Tokenizer.from_pretrained(args.init, simplified=True)
        config, params = load_pretrained(args.init, keep_tokens=tok.keep_tokens)
    else:
        seen = list(records) + [r for _, recs, _ in curriculum for r in recs]
        tok = Tokenizer(vocab_tokens(corpus_characters(seen) | set(extra_chars)))
        config = small_config(len(tok.id_to_token), layers=args.layers, hidden=args.hidden, heads=args.heads,
                              intermediate=2 * args.hidden, init_range=args.init_range,
                              max_positions=args.max_p_len + args.max_q_len + args.max_a_len + 8)
        params = None
    deadline = None if args.minutes is None else time.perf_counter() + 60 * args.minutes
    stages = [(recs, steps, name, args.curriculum_lr) for name, recs, steps in curriculum if recs and steps > 0]
    mixed = list(records) + [r for recs, *_ in stages for r in recs]
    stages.append((mixed, args.steps, "training and curriculum" if len(mixed) > len(records) else "training",
                   args.lr))
    history, completed = [], True                         # (update counted over all stages, loss, acc)
    for n, (recs, steps, what, lr) in enumerate(stages):
        print(f"stage {n + 1} of {len(stages)}: {steps} updates at lr {lr:g} on {len(recs)} {what} questions",
              file=log, flush=True)
        done = history[-1][0] if history else 0
        params, h = train_model(recs, tok, config, params, steps, args.batch_size, lr,
                                warmup=min(200, steps // 10), seed=args.seed + n, max_p_len=args.max_p_len,
                                max_q_len=args.max_q_len, max_a_len=args.max_a_len, deadline=deadline,
                                later_steps=sum(st[1] for st in stages[n + 1:]), ops=FAST, log=log,
                                position_init=args.position_init, position_scale=args.position_scale)
        history += [(done + step, loss, acc) for step, loss, acc in h]
        if h and h[-1][0] < steps:
            completed = False
            print(f"training cut short by the --minutes {args.minutes:g} cap: {done + h[-1][0]} of "
                  f"{sum(st[1] for st in stages)} planned updates done, later stages skipped", file=log, flush=True)
            break
    return tok, config, params, history, completed


def save_model(path, tok, config, params):
    """config.json, model.safetensors and vocab.txt, written together (checkpoint.save_folder): the folder
    appears all at once with its manifest, so a crash never leaves weights beside another vocabulary."""
    save_pretrained(path, config, params, extra_files={"vocab.txt": lambda p: save_vocab(tok.id_to_token, p)})


def load_model(path):
    """(tokenizer, config, params) of a model folder; ValueError when its vocabulary is not the one its
    embedding was trained with (a different number of tokens), or its files fail the manifest."""
    config, params = load_pretrained(path)
    tok = Tokenizer.from_pretrained(path)
    if len(tok.id_to_token) != config.vocab_size:
        raise ValueError(f"{os.path.join(path, 'vocab.txt')}: {len(tok.id_to_token)} tokens, but the weights "
                         f"have {config.vocab_size} rows: the vocabulary and the weights do not belong together")
    return tok, config, params


class _Prefixed:
    """A text stream that starts every line it is given with a prefix (a member's progress lines)."""

    def __init__(self, stream, prefix):
        self.stream, self.prefix, self.at_line_start = stream, prefix, True

    def write(self, text):
        out = []
        for line in text.splitlines(keepends=True):
            out += [self.prefix] if self.at_line_start else []
            out.append(line)
            self.at_line_start = line.endswith("\n")
        self.stream.write("".join(out))

    def flush(self):
        self.stream.flush()


def _train_member(args, work, kinds, m, n_members):
    """One member, in its own process: reads the corpus files of work, trains, saves member_dir(work, m).

    returns (history, completed) as fit does."""
    log = _Prefixed(sys.stderr, f"[member {m + 1}/{n_members}] ") if n_members > 1 else sys.stderr
    args = copy.copy(args)
    args.seed = member_seed(args.seed, m)
    train = load_records(os.path.join(work, "train.json"))
    test = load_records(os.path.join(work, "test.json"))
    curriculum = [(kind, load_records(os.path.join(work, kind + ".json")), args.easy_steps) for kind in kinds]
    tok, config, params, history, completed = fit(args, train, curriculum, extra_chars=corpus_characters(test),
                                                   log=log)
    save_model(member_dir(work, m), tok, config, params)
    return history, completed


def train_members(args, work, kinds, n_members):
    """Train n_members models on the corpus saved in work (train.json, test.json, KIND.json of each
    curriculum kind), one process each, all at once; returns [(history, completed)] in member order.
    The members' models are in member_dir(work, m). With one member it runs here, in this process."""
    if n_members == 1:
        return [_train_member(args, work, kinds, 0, 1)]
    ctx = multiprocessing.get_context("spawn")            # a fresh interpreter: no state shared by fork
    with ctx.Pool(n_members) as pool:
        jobs = [pool.apply_async(_train_member, (args, work, kinds, m, n_members)) for m in range(n_members)]
        return [j.get() for j in jobs]


def load_models(paths):
    """(tokenizer, config, params) of one model folder, or of several (params then a list: an ensemble,
    read as one model); ValueError when their vocabularies or configurations differ."""
    models = [load_model(p) for p in paths]
    tok, config = models[0][0], models[0][1]
    for path, (t, c, _) in zip(paths[1:], models[1:]):
        if t.id_to_token != tok.id_to_token or c != config:
            raise ValueError(f"--model {path}: its vocabulary or configuration differs from {paths[0]}'s; "
                             "the models of an ensemble must share both")
    return tok, config, models[0][2] if len(models) == 1 else [p for _, _, p in models]


def note_cut_passages(args, tok, records, log=sys.stderr):
    """Say on log how many passages of the records are longer than --max-p-len (they are cut)."""
    cut = sum(encode_question(tok, r["question"], [p["passage"] for p in r["passages"]], args.max_p_len,
                              args.max_q_len)[3] for r in records)
    if cut:
        print(f"note: {cut} passages are longer than --max-p-len {args.max_p_len} tokens and are cut "
              "(the token before [SEP] removed until they fit, as bert4keras does)", file=log, flush=True)


def predict(args, tok, config, params, records, decoder=None, log=sys.stderr):
    """(id -> answer for every record, questions per second), in this process; log: where the note on
    cut passages goes (None: nowhere)."""
    kw = dict(beam_size=args.beam, mode=args.mode, combine=args.combine, max_p_len=args.max_p_len,
              max_q_len=args.max_q_len, max_a_len=args.max_a_len)
    if decoder is not None:
        kw["decoder"] = decoder
    if log is not None:
        note_cut_passages(args, tok, records, log)
    t0, out = time.perf_counter(), {}
    for r in records:
        out[str(r["id"])] = answer(params, config, tok, r["question"], [p["passage"] for p in r["passages"]],
                                   **kw)[0]
    return out, len(records) / max(time.perf_counter() - t0, 1e-9)


_LOADED = {}                          # in a reading process of read_side_by_side: folders -> load_models


def _read_piece(args, folders, records, loaded=_LOADED):
    """(answers, seconds) of the models in folders, read as one, on some records; loaded: the models
    loaded so far (a reading process loads each reader's once)."""
    key = tuple(folders)
    if key not in loaded:
        loaded[key] = load_models(list(folders))
    tok, config, params = loaded[key]
    t0 = time.perf_counter()
    answers, _ = predict(args, tok, config, params, records, log=None)
    return answers, time.perf_counter() - t0


def read_side_by_side(args, readers, record_sets, processes, piece=100):
    """Every reader's answers to every record set, the questions cut into pieces of `piece` and the
    pieces answered by `processes` processes at once (one: here, in this process).

    readers: lists of model folders, each read as one model (a list of one: that model alone)
    returns answers[i][j] (id -> answer of reader i on record_sets[j]) and seconds[i][j], the time one
    process spent on them (the sum over their pieces), the same answers as predict's.
    """
    jobs = [(i, j, recs[k:k + piece]) for i in range(len(readers)) for j, recs in enumerate(record_sets)
            for k in range(0, len(recs), piece)]
    answers = [[{} for _ in record_sets] for _ in readers]
    seconds = [[0.0 for _ in record_sets] for _ in readers]
    if processes == 1:
        loaded = {}
        results = [_read_piece(args, readers[i], recs, loaded) for i, _, recs in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            pending = [pool.apply_async(_read_piece, (args, readers[i], recs)) for i, _, recs in jobs]
            results = [p.get() for p in pending]
    for (i, j, _), (got, secs) in zip(jobs, results):
        answers[i][j].update(got)
        seconds[i][j] += secs
    return answers, seconds
