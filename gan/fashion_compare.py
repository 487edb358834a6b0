"""`python -m gan fashion-compare`: the plain head against Cascading Rejection on Fashion-MNIST, over seeds.

Every setting trains the same DCGAN for the same number of steps with the same batch and learning
rates; only the head (N) changes. Runs are ordered seed by seed, cycling through the settings, so a
slow spell of a shared machine falls on all settings alike. Each CR setting is set against the plain
head with Welch's t (unequal variances) and its Welch-Satterthwaite degrees of freedom.
"""
import json
import math
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace

METRICS = ("fid", "class_min_fraction", "train_seconds")


def welch_t(a, b):
    """Welch's t of mean(a) - mean(b) and its degrees of freedom; (nan, nan) with fewer than 2 each."""
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return float("nan"), float("nan")
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va and vb else float("inf")
    return t, df


def _run(job):
    from .evaluator import load_evaluator
    from .fashion import run_fashion
    cfg, ev_path, n_eval, data_dir, n_train, png = job
    return run_fashion(cfg, load_evaluator(ev_path), n_eval=n_eval, data_dir=data_dir, n_train=n_train,
                       png=png)


def _run_key(cfg, n_eval, n_train, ev_path):
    """What a run's numbers depend on, as one JSON string (the key of the runs file); the evaluator by
    its file name, which holds its settings."""
    return json.dumps({"config": asdict(cfg), "n_eval": n_eval, "n_train": n_train,
                       "evaluator": os.path.basename(ev_path)}, sort_keys=True)


def _load_runs(path):
    """{key: result} from a runs file written by earlier calls ({} when there is none)."""
    done = {}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    done[entry["key"]] = entry["result"]
                except (ValueError, KeyError, TypeError):
                    raise ValueError(f"runs file {path}: line {line_no} is not a run record; "
                                     "remove the file to start over") from None
    return done


def run_fashion_compare(base, stages, seeds, ev_path, n_eval, data_dir=None, n_train=None, jobs=1,
                        png_for=None, progress=None, runs_file=None):
    """Train every (N, seed); returns {N: [result, ...]}. png_for(N) is seed 0's grid path (or None).

    runs_file: a JSON-lines file; every finished run is appended to it, and a run already there with
    the same settings is read back instead of trained again, so a stopped comparison resumes.
    """
    plan = [(replace(base, n_stages=n, seed=seed), ev_path, n_eval, data_dir, n_train,
             png_for(n) if png_for and seed == 0 else None) for seed in range(seeds) for n in stages]
    results = {n: [] for n in stages}
    log = progress or (lambda msg: None)
    done = _load_runs(runs_file)
    keys = [_run_key(job[0], n_eval, n_train, ev_path) for job in plan]

    def record(i, res, fresh=True):
        results[plan[i][0].n_stages].append(res)
        if fresh and runs_file:
            with open(runs_file, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": keys[i], "result": res}) + "\n")
        log(f"run {i + 1}/{len(plan)}: N={res['n_stages']} seed {res['seed']}: FID {res['fid']:.2f}, "
            f"smallest class share {res['class_min_fraction']:.3f}, {res['train_seconds']:.0f} s"
            + ("" if fresh else f" (read back from {runs_file})"))
    todo = [i for i in range(len(plan)) if keys[i] not in done]
    for i in range(len(plan)):
        if keys[i] in done:
            record(i, done[keys[i]], fresh=False)
    if jobs == 1:
        for i in todo:
            record(i, _run(plan[i]))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for i, res in zip(todo, pool.map(_run, [plan[i] for i in todo])):
                record(i, res)
    for runs in results.values():
        runs.sort(key=lambda r: r["seed"])
    return results


def summarize(results):
    """{N: {metric: (mean, sd), "seeds": n, "welch_fid": (t, df) against N = 1 or None}}."""
    out = {}
    for n, runs in results.items():
        row = {"seeds": len(runs)}
        for m in METRICS:
            vals = [r[m] for r in runs]
            row[m] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
        plain = results.get(1)
        row["welch_fid"] = None if n == 1 or not plain else welch_t([r["fid"] for r in runs],
                                                                      [r["fid"] for r in plain])
        out[n] = row
    return out


def format_table(summary):
    lines = ["| head | seeds | FID | smallest class share | Welch t of FID vs plain (df) | train s |",
             "|---|---|---|---|---|---|"]
    for n, row in summary.items():
        welch = "" if row["welch_fid"] is None else f"{row['welch_fid'][0]:.2f} ({row['welch_fid'][1]:.1f})"
        label = "plain N=1" if n == 1 else f"CR N={n}"
        lines.append(f"| {label} | {row['seeds']} | {row['fid'][0]:.2f} +- {row['fid'][1]:.2f} | "
                     f"{row['class_min_fraction'][0]:.3f} +- {row['class_min_fraction'][1]:.3f} | {welch} | "
                     f"{row['train_seconds'][0]:.0f} +- {row['train_seconds'][1]:.0f} |")
    return "\n".join(lines)
