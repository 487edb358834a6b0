"""Shared timing: warm up, then alternate ours and the reference, and report medians.

Alternating (ours, reference, ours, reference, ...) spreads the machine's noise over both sides, so
the ratio of the medians is more trustworthy than either time alone.
"""
import statistics
import sys
import time


def set_torch_threads(threads):
    """Give PyTorch the same intra-op thread count as BLAS; None if torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def time_pair(ours, reference, repeats=5, warmup=1, label=""):
    """Median seconds of ours() and reference(), run alternately `repeats` times after `warmup`.

    ours, reference: callables with no arguments; reference may be None (then its time is None).
    """
    for _ in range(warmup):
        ours()
        if reference is not None:
            reference()
    t_ours, t_ref = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - t0)
        if reference is not None:
            t0 = time.perf_counter()
            reference()
            t_ref.append(time.perf_counter() - t0)
        print(f"  {label} run {i + 1}/{repeats}: ours {t_ours[-1]:.4f} s"
              + (f", reference {t_ref[-1]:.4f} s" if t_ref else ""), file=sys.stderr, flush=True)
    med_ours = statistics.median(t_ours)
    med_ref = statistics.median(t_ref) if t_ref else None
    return med_ours, med_ref


def result(bench, ours_s, reference_s, threads, **extra):
    """The benchmark's JSON record: times, ratio ours / reference (< 1 means we are faster)."""
    ratio = None if not reference_s else round(ours_s / reference_s, 4)
    out = {"bench": bench, "ours_s": round(ours_s, 6),
           "reference_s": None if reference_s is None else round(reference_s, 6),
           "ratio": ratio, "threads": threads}
    out.update(extra)
    return out
