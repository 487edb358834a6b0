"""Demo: every smooth approximation next to the exact function, its measured error and its bound.

    python -m smoothing [--quick] [--out DIR] [--no-plot]

For each function it prints the exact value, then one line per temperature T with the smooth value,
the error |smooth - exact| and the bound from the function's docstring (ok when error <= bound).
With matplotlib installed it also draws the functions and their error curves to DIR/smoothing.png
(DIR/smoothing-quick.png for --quick, so a quick run keeps the full run's picture; DIR is out/smoothing).
The last line of stdout is one JSON object with the totals.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

import smoothing as S

X = np.array([0.3, 2.5, -1.2, 2.1, 0.7, -0.4])                  # top two 2.5 and 2.1: gap 0.4
GRID = np.array([-2.7, -1.3, -0.35, 0.2, 0.6, 1.45, 2.8])       # away from integers and half-integers


def fmt(v):
    """A scalar to 4 decimals, or a short vector to 3."""
    v = np.asarray(v, dtype=float)
    if v.ndim == 0:
        return f"{float(v):.4f}"
    return "[" + " ".join(f"{a:.3f}".rstrip("0").rstrip(".") if abs(a) > 5e-4 else "0" for a in v) + "]"


def gap_of(x, k=1):
    s = np.sort(x)[::-1]
    return s[k - 1] - s[k]


def cases():
    """(name, formula, exact value, smooth(T), error(smooth), bound(T) or None) for every function."""
    n, gap = len(X), gap_of(X)
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((8, 4)) * 2, rng.integers(0, 4, 8)
    sorted_logits = np.sort(logits, axis=1)
    acc_gap = (sorted_logits[:, -1] - sorted_logits[:, -2]).min()
    bin_scores, bin_targets = np.array([1.2, -0.3, 2.0, 0.4, -1.5, -0.8]), np.array([1, 1, 1, 0, 0, 0])
    ml_scores = np.array([[2.0, -1.0, 0.5, -3.0, 1.0], [-0.5, -2.0, 1.5, 0.2, -1.0]])
    ml_targets = np.array([[1, 0, 1, 0, 0], [0, 0, 1, 1, 0]])
    n_pos = ml_targets.sum(1)
    k = 2
    onehot = np.eye(n)[np.argmax(X)]
    topk = S.hard_topk(X, k)
    gap_k = gap_of(X, k)
    l1 = lambda p, q: float(np.abs(p - q).sum())  # noqa: E731
    out = [
        ("smooth_max", "T log sum exp(x/T)", X.max(), lambda t: S.smooth_max(X, temperature=t),
         lambda v: float(v - X.max()), lambda t: t * math.log(n)),
        ("smooth_min", "-T log sum exp(-x/T)", X.min(), lambda t: S.smooth_min(X, temperature=t),
         lambda v: float(X.min() - v), lambda t: t * math.log(n)),
        ("soft_onehot_argmax", "softmax(x/T); error = L1", onehot,
         lambda t: S.soft_onehot_argmax(X, temperature=t), lambda v: l1(v, onehot),
         lambda t: 2 * (n - 1) * math.exp(-gap / t)),
        ("soft_argmax_index", "sum_i i softmax(x/T)_i, 0-based", float(np.argmax(X)),
         lambda t: S.soft_argmax_index(X, temperature=t), lambda v: abs(float(v) - np.argmax(X)),
         lambda t: (n - 1) ** 2 * math.exp(-gap / t)),
        ("soft_accuracy", "mean softmax(z/T)_y, 8 samples", S.hard_accuracy(logits, labels),
         lambda t: S.soft_accuracy(logits, labels, temperature=t),
         lambda v: abs(v - S.hard_accuracy(logits, labels)), lambda t: 3 * math.exp(-acc_gap / t)),
        ("soft_f1 (binary)", "2 sum t p / sum (t + p), biased", S.hard_prf(bin_scores, bin_targets)[2],
         lambda t: S.soft_prf(bin_scores, bin_targets, temperature=t)[2],
         lambda v: abs(v - S.hard_prf(bin_scores, bin_targets)[2]), None),
        ("soft_f1 (macro)", "per-class soft F1, averaged", S.hard_prf(logits, labels, "macro")[2],
         lambda t: S.soft_prf(logits, labels, temperature=t, average="macro")[2],
         lambda v: abs(v - S.hard_prf(logits, labels, "macro")[2]), None),
        ("soft_topk_recursive", f"6620 recursion, k={k}; L1", topk,
         lambda t: S.soft_topk_recursive(X, k, temperature=t), lambda v: l1(v, topk), None),
        ("soft_topk_sigmoid", f"sigmoid(x/T - lam), k={k}; L1", topk,
         lambda t: S.soft_topk_sigmoid(X, k, temperature=t), lambda v: l1(v, topk),
         lambda t: 2 * max(k, n - k) / (1 + math.exp(min(700.0, gap_k / (2 * t))))),
        ("soft_topk_exp", f"min(1, exp(x/T - lam)), k={k}; L1", topk,
         lambda t: S.soft_topk_exp(X, k, temperature=t), lambda v: l1(v, topk),
         lambda t: 2 * (n - k) * math.exp(-gap_k / t)),
        ("multilabel_softmax_ce", "vs hinge, 2 samples", S.multilabel_hinge(ml_scores, ml_targets),
         lambda t: S.multilabel_softmax_ce(ml_scores, ml_targets, temperature=t),
         lambda v: float(np.max(v - S.multilabel_hinge(ml_scores, ml_targets))),
         lambda t: float(np.min(t * (np.log1p(5 - n_pos) + np.log1p(n_pos))))),
    ]
    d_int = np.abs(GRID - np.round(GRID))
    d_half = np.abs(GRID + 0.5 - np.round(GRID + 0.5))
    floor_b = lambda d, t: (np.exp(-d / t) + np.exp(-(1 - d) / t)) / -math.expm1(-1 / t)  # noqa: E731
    elementwise = [
        ("smooth_abs", "T log(e^(x/T) + e^(-x/T))", np.abs, lambda t: t * math.log(2)),
        ("smooth_relu", "T log(1 + e^(x/T))", lambda x: np.maximum(x, 0), lambda t: t * math.log(2)),
        ("smooth_sign", "tanh(x/T)", np.sign, lambda t: 2 * np.exp(-2 * np.abs(GRID) / t)),
        ("smooth_step", "sigmoid(x/T)", lambda x: (x > 0) * 1.0, lambda t: np.exp(-np.abs(GRID) / t)),
        ("smooth_floor", "sum of sigmoid steps (8718)", np.floor, lambda t: floor_b(d_int, t)),
        ("smooth_round", "smooth_floor(x + 1/2)", lambda x: np.floor(x + 0.5), lambda t: floor_b(d_half, t)),
        ("swish", "x sigmoid(x/T)", lambda x: np.maximum(x, 0), lambda t: S.SWISH_GAP * t),
        ("gelu", "x Phi(x/T)", lambda x: np.maximum(x, 0), lambda t: S.GELU_GAP * t),
    ]
    for name, formula, exact, bound in elementwise:
        want = exact(GRID)
        fn = getattr(S, name)
        # pointwise: error_i <= bound_i; the reported figures are the worst point's error and bound
        out.append((name, formula + "; 7 points", want, lambda t, fn=fn: fn(GRID, temperature=t),
                    lambda v, want=want: np.abs(v - want),
                    lambda t, b=bound: np.broadcast_to(b(t), GRID.shape)))
    return out


def report(temps):
    """Print the table; return (checks, within, worst error / bound)."""
    checks = within = 0
    worst = 0.0
    print(f"x = {fmt(X)}   elementwise functions on {fmt(GRID)}")
    print(f"{'':2}{'T':>7}  {'smooth':<46} {'error':>10} {'bound':>10}")
    for name, formula, exact, smooth, error, bound in cases():
        print(f"\n{name}: {formula}")
        print(f"{'':2}{'exact':>7}  {fmt(exact)}")
        for t in temps:
            v = smooth(t)
            err = error(v)
            b = None if bound is None else bound(t)
            if b is None:
                flag, btxt = "(no bound)", "-"
            else:
                checks += 1
                ok = bool(np.all(np.asarray(err) <= np.asarray(b) + 1e-12))
                within += ok
                # below 1e-12 both figures are round-off: leave them out of the ratio
                ratio = np.asarray(err) / np.maximum(np.asarray(b), 1e-12)
                worst = max(worst, float(np.max(ratio)))
                flag, btxt = ("ok" if ok else "OVER BOUND"), f"{float(np.max(b)):.2e}"
            shown = fmt(v)
            shown = shown if len(shown) <= 46 else shown[:43] + "..."
            extra = ""
            if name == "soft_topk_recursive" and np.max(v) > 1:
                extra = f"  max p = {np.max(v):.3f} > 1"
            print(f"{'':2}{t:>7.3g}  {shown:<46} {float(np.max(err)):>10.2e} {btxt:>10}  {flag}{extra}")
    return checks, within, worst


def plot(out_dir, quick):
    """Draw the elementwise functions at three temperatures and the error-vs-T curves of the rest."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    os.makedirs(out_dir, exist_ok=True)
    xs = np.linspace(-3, 3, 301 if quick else 1201)
    names = ["smooth_abs", "smooth_relu", "smooth_sign", "smooth_step", "smooth_floor", "smooth_round",
             "swish", "gelu"]
    exact = {"smooth_abs": np.abs, "smooth_relu": lambda x: np.maximum(x, 0), "smooth_sign": np.sign,
             "smooth_step": lambda x: (x > 0) * 1.0, "smooth_floor": np.floor,
             "smooth_round": lambda x: np.floor(x + 0.5), "swish": lambda x: np.maximum(x, 0),
             "gelu": lambda x: np.maximum(x, 0)}
    fig, axes = plt.subplots(3, 4, figsize=(16, 11))
    for ax, name in zip(axes.flat, names):
        ax.plot(xs, exact[name](xs), "k--", lw=1, label="exact")
        for t in (1.0, 0.3, 0.1):
            ax.plot(xs, getattr(S, name)(xs, temperature=t), lw=1.3, label=f"T={t}")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    temps = np.logspace(-2.5, 0.5, 12 if quick else 40)
    rest = [c for c in cases() if c[0] not in names]
    panels = [("smooth max / min, argmax", rest[:4]), ("accuracy, F1, multi-label", rest[4:7] + rest[10:]),
              ("soft top-k, k=2", rest[7:10])]
    for ax, (title, group) in zip(axes.flat[8:], panels):
        for name, _, _, smooth, error, bound in group:
            errs = np.array([float(np.max(error(smooth(t)))) for t in temps])
            line, = ax.loglog(temps, np.maximum(errs, 1e-18), lw=1.3, label=name)
            if bound is not None:
                bs = np.array([float(np.max(bound(t))) for t in temps])
                ax.loglog(temps, np.maximum(bs, 1e-18), ":", color=line.get_color(), lw=1)
        ax.set_title(title + " (error vs T; dotted: bound)", fontsize=9)
        ax.set_xlabel("T")
        ax.set_ylim(1e-18, 1e2)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes.flat[11].axis("off")
    axes.flat[11].text(0.0, 0.5, "Smooth approximations with temperature T.\nSolid: measured error; "
                       "dotted: its proven bound.\nsoft_topk_recursive and soft F1 have no bound.",
                       fontsize=11, va="center")
    fig.tight_layout()
    path = os.path.join(out_dir, "smoothing-quick.png" if quick else "smoothing.png")
    fig.savefig(path, dpi=80 if quick else 110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m smoothing", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two temperatures and a coarser plot")
    parser.add_argument("--out", default=os.path.join("out", "smoothing"), help="folder for the PNG plot")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot even if matplotlib is here")
    args = parser.parse_args(argv)
    if not args.no_plot:                                  # the folder is checked before any work
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as err:
            parser.error(f"cannot create the output folder {args.out}: {err.strerror}")
        if not os.access(args.out, os.W_OK):
            parser.error(f"the output folder {args.out} is not writable")
    start = time.perf_counter()
    temps = (1.0, 0.01) if args.quick else (1.0, 0.1, 0.01)
    checks, within, worst = report(temps)
    path = None
    if not args.no_plot:
        print("\ndrawing the plot ...", file=sys.stderr, flush=True)
        path = plot(args.out, args.quick)
        print(f"\nplot: {path}" if path else "\nplot: skipped (matplotlib is not installed)")
    print(f"\n{within} of {checks} measured errors are within their bounds "
          f"(largest error / max(bound, 1e-12) = {worst:.3f})")
    print(json.dumps({"demo": "smoothing", "functions": len(cases()), "temperatures": list(temps),
                      "checks": checks, "within_bound": within, "worst_error_over_bound": round(worst, 4),
                      "plot": path, "seconds": round(time.perf_counter() - start, 2)}))
    return 0 if within == checks else 1


if __name__ == "__main__":
    sys.exit(main())
