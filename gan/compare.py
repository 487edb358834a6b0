"""Plain (N = 1) against Cascading Rejection (N = 2, 4, 8) at equal budget, over several seeds.

Every setting trains the same networks for the same number of steps with the same batch and learning
rates; only the head (N) and G's loss (all stages or the first) change. Runs are ordered seed by seed,
cycling through the settings, so a slow spell of a shared machine falls on all settings alike.
"""
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from .train import GANConfig, train

METRICS = ("modes_covered", "high_quality", "kl", "train_seconds")


def settings_for(stages, g_stages):
    """[(label, n_stages, g_stages)]: N = 1 once (both G losses are the same there), then each N x G loss."""
    out = []
    for n in stages:
        for g in (["all"] if n == 1 else g_stages):
            out.append(("plain N=1" if n == 1 else f"CR N={n} G:{g}", n, g))
    return out


def _run(cfg):
    return train(cfg)[1]


def run_compare(base, datasets, stages, g_stages, seeds, jobs=1, progress=None):
    """Train every (dataset, setting, seed); returns {dataset: {label: [result, ...]}}."""
    plan = []
    for data in datasets:
        for seed in range(seeds):
            for label, n, g in settings_for(stages, g_stages):
                plan.append((data, label, replace(base, data=data, n_stages=n, g_stages=g, seed=seed)))
    results = {data: {label: [] for label, _, _ in settings_for(stages, g_stages)} for data in datasets}

    def record(i, res):
        data, label, cfg = plan[i]
        results[data][label].append(res)
        if progress is not None:
            progress(f"[{i + 1}/{len(plan)}] {data} {label} seed {cfg.seed}: modes "
                     f"{res['modes_covered']}/{res['n_modes']} hq {res['high_quality']:.3f} "
                     f"kl {res['kl']:.3f} {res['train_seconds']:.1f} s")

    if jobs <= 1:
        for i, (_, _, cfg) in enumerate(plan):
            record(i, _run(cfg))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for i, res in enumerate(pool.map(_run, [cfg for _, _, cfg in plan])):
                record(i, res)
    return results


def summarize(results):
    """{dataset: {label: {metric: (mean, std over seeds)}}} (std is 0 for a single seed)."""
    out = {}
    for data, by_label in results.items():
        out[data] = {}
        for label, runs in by_label.items():
            stats = {}
            for m in METRICS:
                xs = [float(r[m]) for r in runs]
                stats[m] = (statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)
            stats["n_modes"] = runs[0]["n_modes"]
            stats["seeds"] = len(runs)
            out[data][label] = stats
    return out


def format_table(summary):
    """A Markdown table, one row per dataset and setting, mean +- standard deviation over seeds."""
    lines = ["| data | setting | seeds | modes covered | high quality | KL to uniform | train s |",
             "|---|---|---|---|---|---|---|"]
    for data, by_label in summary.items():
        for label, s in by_label.items():
            mc, hq, kl, sec = (s[m] for m in METRICS)
            lines.append(f"| {data} ({s['n_modes']}) | {label} | {s['seeds']} | "
                         f"{mc[0]:.1f} +- {mc[1]:.1f} | {hq[0]:.3f} +- {hq[1]:.3f} | "
                         f"{kl[0]:.3f} +- {kl[1]:.3f} | {sec[0]:.1f} +- {sec[1]:.1f} |")
    return "\n".join(lines)


QUICK = {"steps": 2000, "batch": 64, "lr_d": 2e-3, "lr_g": 2e-3}


def default_config(quick):
    """The budget of `python -m gan` and `compare`: 2500 steps of batch 128 at lr 1e-3, or with quick
    2000 steps of batch 64 at lr 2e-3 (a quarter of the samples seen, about a fifth of the time).
    """
    return GANConfig(**QUICK) if quick else GANConfig()
