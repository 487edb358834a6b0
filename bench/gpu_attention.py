"""Fused flash attention vs the unfused CuPy path (matmul, masked softmax, matmul) vs PyTorch's SDPA.

    python -m bench gpu_attention [--quick] [--sweep]

B = 8, NH = 12, HS = 64, float32, padding mask (one sequence in four shortened by a quarter),
T in {128, 512, 2048} ({128, 512} with --quick). The headline ratio is flash / unfused at T = 512.
--sweep times the flash kernel's tiles (minibert.kernels.attention.FLASH_TILE is the default) at
T = 512 and 2048 instead, one line each, and checks each against the unfused path; --tiles=64,32,1;32,32,4
and --lengths=512 choose other tiles and lengths.
Without a GPU (or CuPy) it says so and prints a JSON line with "skipped".
"""
import sys

import numpy as np

from bench.harness import result, time_pair


def _gpu_or_reason():
    try:
        import cupy
        if not cupy.cuda.is_available():
            return None, "no CUDA device available to CuPy"
        cupy.zeros(1)
        return cupy, None
    except ImportError:
        return None, "CuPy is not installed"
    except Exception as e:  # driver or runtime errors: no usable GPU
        return None, f"CuPy cannot use a GPU here: {type(e).__name__}: {e}"


def unfused(cp, q, k, v, lengths):
    """The plain path: scores in global memory, masked softmax, then A @ v."""
    T, HS = q.shape[2], q.shape[3]
    s = (q @ k.swapaxes(-1, -2)) * np.float32(1 / np.sqrt(HS))           # (B, NH, T, T)
    real = cp.arange(T)[None, :] < lengths[:, None]                         # (B, T)
    s = cp.where(real[:, None, None, :], s, -cp.inf)
    s = cp.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)) @ v


# (query rows per block, keys per tile, threads per query row)
SWEEP_TILES = [(64, 32, 1), (32, 32, 1), (128, 32, 1), (64, 16, 1), (64, 64, 1),
               (64, 32, 2), (32, 32, 2), (64, 16, 2), (128, 32, 2),
               (64, 32, 4), (32, 32, 4), (16, 32, 4), (32, 16, 4), (32, 64, 4),
               (32, 32, 8), (16, 32, 8), (16, 64, 8)]


def _event_median(cp, fn, repeats, warmup=3):
    """Median milliseconds of fn() between two CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def _sweep_options(extra):
    """--tiles=R,K,S;R,K,S;... and --lengths=T,T,... from the flags the bench runner did not know."""
    tiles, sizes = SWEEP_TILES, (512, 2048)
    for flag in extra:
        if flag.startswith("--tiles="):
            tiles = [tuple(int(n) for n in t.split(",")) for t in flag[len("--tiles="):].split(";") if t]
        elif flag.startswith("--lengths="):
            sizes = tuple(int(n) for n in flag[len("--lengths="):].split(","))
    return tiles, sizes


def sweep(cp, args, B=8, NH=12, HS=64):
    """Tiles (SWEEP_TILES or --tiles) at T = 512 and 2048 (or --lengths): milliseconds, over the unfused
    path, max abs diff. Each tile is a separate compilation (NVRTC, tens of seconds for the larger ones)."""
    from minibert.kernels import attention as ka
    repeats = args.repeats or 20
    tiles, sizes = _sweep_options(args.extra)
    rows, unfused_ms = {}, {}
    for T in sizes:
        rng = cp.random.default_rng(0)
        q, k, v = (rng.standard_normal((B, NH, T, HS), dtype=cp.float32) for _ in range(3))
        lengths = cp.array([T if b % 4 else (3 * T) // 4 for b in range(B)], dtype=cp.int32)
        want = unfused(cp, q, k, v, lengths)
        t_unfused = unfused_ms[T] = _event_median(cp, lambda: unfused(cp, q, k, v, lengths), repeats)
        for tile in tiles:
            err = float(cp.abs(ka.flash_attention(q, k, v, lengths, tile=tile) - want).max())
            ms = _event_median(cp, lambda: ka.flash_attention(q, k, v, lengths, tile=tile), repeats)
            rows.setdefault(str(tile), {})[str(T)] = {"ms": round(ms, 4), "over_unfused": round(ms / t_unfused, 4),
                                                       "max_abs_diff": err}
            print(f"  T={T} tile={tile}: {ms:.4f} ms, {ms / t_unfused:.3f} of unfused ({t_unfused:.4f} ms), "
                  f"max abs diff {err:.1e}", file=sys.stderr, flush=True)
    # the headline: the fastest tile at the first length against the unfused path there
    best = min(rows, key=lambda t: rows[t][str(sizes[0])]["ms"])
    return result("gpu_attention_sweep", rows[best][str(sizes[0])]["ms"] / 1e3, unfused_ms[sizes[0]] / 1e3,
                  args.threads, T=sizes[0], best_tile=best, default_tile=str(ka.FLASH_TILE),
                  device=cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), tiles=rows)


def run(args):
    cp, reason = _gpu_or_reason()
    if cp is None:
        print(f"gpu_attention: skipped, {reason}", file=sys.stderr)
        return {"bench": "gpu_attention", "skipped": reason}
    if "--sweep" in args.extra:
        return sweep(cp, args)
    from minibert.kernels import flash_attention
    try:
        import torch
        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    B, NH, HS = 8, 12, 64
    sizes = (128, 512) if args.quick else (128, 512, 2048)
    repeats = args.repeats or (5 if args.quick else 20)
    sync = cp.cuda.Device().synchronize
    per_T = {}
    for T in sizes:
        rng = cp.random.default_rng(0)
        q, k, v = (rng.standard_normal((B, NH, T, HS), dtype=cp.float32) for _ in range(3))
        lengths = cp.array([T if b % 4 else (3 * T) // 4 for b in range(B)], dtype=cp.int32)
        ours = lambda: (flash_attention(q, k, v, lengths), sync())  # noqa: E731
        plain = lambda: (unfused(cp, q, k, v, lengths), sync())  # noqa: E731
        err = float(cp.abs(flash_attention(q, k, v, lengths) - unfused(cp, q, k, v, lengths)).max())
        t_ours, t_plain = time_pair(ours, plain, repeats, warmup=2, label=f"T={T} flash vs unfused")
        row = {"flash_s": round(t_ours, 6), "unfused_s": round(t_plain, 6),
               "flash_over_unfused": round(t_ours / t_plain, 4), "max_abs_diff": err}
        if torch is not None:
            tq, tk, tv = (torch.from_dlpack(a) for a in (q, k, v))
            tl = torch.from_dlpack(lengths)
            tmask = (torch.arange(T, device=tq.device)[None, :] < tl[:, None])[:, None, None, :]
            sdpa = torch.nn.functional.scaled_dot_product_attention
            ref = lambda: (sdpa(tq, tk, tv, attn_mask=tmask), torch.cuda.synchronize())  # noqa: E731
            _, t_sdpa = time_pair(ours, ref, repeats, warmup=2, label=f"T={T} flash vs SDPA")
            row.update(sdpa_s=round(t_sdpa, 6), flash_over_sdpa=round(t_ours / t_sdpa, 4))
        per_T[str(T)] = row
    head = per_T["512"]
    return result("gpu_attention", head["flash_s"], head["unfused_s"], args.threads,
                  device=cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), B=B, NH=NH, HS=HS,
                  sdpa=torch is not None, per_T=per_T)
