"""logsumexp and softmax over the rows of a large float32 array, ours against PyTorch.

    python -m bench smoothing [--quick]

The headline ratio is logsumexp's; softmax's ratio is reported beside it.
"""
import sys

import numpy as np

from bench.harness import result, set_torch_threads, time_pair
from smoothing import logsumexp, softmax


def run(args):
    n = 4096
    repeats = args.repeats or (5 if args.quick else 15)
    torch = set_torch_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    print(f"smoothing: {n}x{n} float32, {args.threads} thread(s), {repeats} runs each",
          file=sys.stderr)
    ref_lse = ref_sm = None
    if torch is not None:
        tx = torch.from_numpy(x)
        ref_lse = lambda: torch.logsumexp(tx, dim=1)  # noqa: E731
        ref_sm = lambda: torch.softmax(tx, dim=1)  # noqa: E731
        err = float(np.abs(logsumexp(x, axis=1) - ref_lse().numpy()).max())
        err_sm = float(np.abs(softmax(x, axis=1) - ref_sm().numpy()).max())
    else:
        print("torch is not installed: timing ours only", file=sys.stderr)
        err = err_sm = None
    lse_ours, lse_ref = time_pair(lambda: logsumexp(x, axis=1), ref_lse, repeats, label="logsumexp")
    sm_ours, sm_ref = time_pair(lambda: softmax(x, axis=1), ref_sm, repeats, label="softmax")
    return result("smoothing", lse_ours, lse_ref, args.threads, shape=[n, n], dtype="float32",
                  softmax_ours_s=round(sm_ours, 6),
                  softmax_reference_s=None if sm_ref is None else round(sm_ref, 6),
                  softmax_ratio=None if not sm_ref else round(sm_ours / sm_ref, 4),
                  max_abs_diff_logsumexp=err, max_abs_diff_softmax=err_sm)
