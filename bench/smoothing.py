"""logsumexp and softmax over the rows of a large float32 array: the tuned layer against PyTorch.

    python -m bench smoothing [--quick]

Ours is smoothing.fast (row blocks in cache, in place, over --threads threads); the plain formulas of
smoothing.core are timed too, so the JSON shows what the tuning buys. The headline ratio is the tuned
logsumexp's over torch.logsumexp; softmax's ratio is reported beside it.
"""
import sys

import numpy as np

from bench.harness import result, set_torch_threads, time_pair
from smoothing import core, fast


def run(args):
    n = 4096
    repeats = args.repeats or (5 if args.quick else 15)
    torch = set_torch_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    print(f"smoothing: {n}x{n} float32, {args.threads} thread(s), {repeats} runs each",
          file=sys.stderr)
    ref_lse = ref_sm = None
    err = err_sm = None
    if torch is not None:
        tx = torch.from_numpy(x)
        ref_lse = lambda: torch.logsumexp(tx, dim=1)  # noqa: E731
        ref_sm = lambda: torch.softmax(tx, dim=1)  # noqa: E731
        err = float(np.abs(fast.logsumexp(x, axis=1) - ref_lse().numpy()).max())
        err_sm = float(np.abs(fast.softmax(x, axis=1) - ref_sm().numpy()).max())
    else:
        print("torch is not installed: timing ours only", file=sys.stderr)
    lse_ours, lse_ref = time_pair(lambda: fast.logsumexp(x, axis=1), ref_lse, repeats, label="logsumexp")
    sm_ours, sm_ref = time_pair(lambda: fast.softmax(x, axis=1), ref_sm, repeats, label="softmax")
    # the plain layer against the tuned one, on the same input (fewer runs: it is not the headline)
    lse_plain, _ = time_pair(lambda: core.logsumexp(x, axis=1), None, max(3, repeats // 3),
                             label="plain logsumexp")
    sm_plain, _ = time_pair(lambda: core.softmax(x, axis=1), None, max(3, repeats // 3),
                            label="plain softmax")
    return result("smoothing", lse_ours, lse_ref, args.threads, shape=[n, n], dtype="float32",
                  softmax_ours_s=round(sm_ours, 6),
                  softmax_reference_s=None if sm_ref is None else round(sm_ref, 6),
                  softmax_ratio=None if not sm_ref else round(sm_ours / sm_ref, 4),
                  plain_logsumexp_s=round(lse_plain, 6),
                  plain_logsumexp_ratio=None if not lse_ref else round(lse_plain / lse_ref, 4),
                  plain_softmax_s=round(sm_plain, 6),
                  plain_softmax_ratio=None if not sm_ref else round(sm_plain / sm_ref, 4),
                  max_abs_diff_logsumexp=err, max_abs_diff_softmax=err_sm)
