"""Python side of attention.cu and flash_attention.cu: checks, launches, and the matmuls around them.

Each function is the fused twin of plain attention under a padding, causal or UniLM mask given as
(B,) lengths and (B, T) segment ids (the kernels compute the mask; no (B, T, T) array is made):
- attention_forward / attention_backward: scores -> masked softmax -> dropout in one kernel, its backward
  in another; A @ v and the gradient matmuls go to cuBLAS. For training.
- flash_attention: the whole forward with an online softmax, scores never in global memory. Inference.
- flash_decode: one new query row per sequence against a KV cache. The decoder's step.
A fully masked row (length 0) gives attention weights and output 0.
"""
import numpy as np

from minibert.kernels._loader import default_backend, philox_key, source

MODES = {"padding": 0, "causal": 1, "unilm": 2}
SHARED_LIMIT = 48 * 1024  # bytes of shared memory a block gets without opting in


def _check_qkv(xp, **arrays):
    shape = None
    for name, a in arrays.items():
        if not isinstance(a, xp.ndarray) or a.dtype != np.float32 or a.ndim != 4:
            raise ValueError(f"{name} must be a float32 (B, NH, T, HS) {xp.__name__} array, got "
                             f"{type(a).__name__} {getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
        if shape is not None and a.shape != shape:
            raise ValueError(f"{name} must have the shape of q {shape}, got {a.shape}")
        shape = a.shape
    return shape


def _mask_args(xp, mode, lengths, segment_ids, B, T):
    """Checked (mode code, lengths int32 (B,), segment ids int32 (B, T))."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    lengths = xp.asarray(lengths)
    if lengths.shape != (B,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths must be an integer array of shape ({B},), got {lengths.dtype} {lengths.shape}")
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ValueError(f"lengths must lie in [0, {T}], got min {int(lengths.min())} max {int(lengths.max())}")
    if mode == "unilm":
        if segment_ids is None:
            raise ValueError("segment_ids (B, T) are required for mode 'unilm'")
        segment_ids = xp.asarray(segment_ids)
        if segment_ids.shape != (B, T) or segment_ids.dtype.kind not in "iu":
            raise ValueError(f"segment_ids must be an integer array of shape ({B}, {T}), "
                             f"got {segment_ids.dtype} {segment_ids.shape}")
    else:
        segment_ids = xp.zeros((B, T), dtype=np.int32) if segment_ids is None else xp.asarray(segment_ids)
    return (np.int32(MODES[mode]), xp.ascontiguousarray(lengths, dtype=np.int32),
            xp.ascontiguousarray(segment_ids, dtype=np.int32))


def attention_forward(q, k, v, lengths, segment_ids=None, mode="padding", dropout=0.0, key=0,
                      threads=128, backend=None):
    """Masked softmax attention with dropout; the softmax part is one kernel.

    q, k, v: (B, NH, T, HS) float32   lengths: (B,) real tokens per sequence   segment_ids: (B, T)
    dropout: probability p of zeroing a weight; the kept ones are scaled by 1 / (1 - p)
    key: Philox key of the dropout words (row r of (B*NH*T) rows uses the stream counter [0, r, 0, 0])
    returns out (B, NH, T, HS) = A @ v with A = dropout(softmax(q k^T / sqrt(HS) + mask)), and a cache
    """
    be = backend or default_backend()
    xp = be.xp
    B, NH, T, HS = _check_qkv(xp, q=q, k=k, v=v)
    code, lengths, segment_ids = _mask_args(xp, mode, lengths, segment_ids, B, T)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if threads & (threads - 1) or not 8 <= threads <= 1024:
        raise ValueError(f"threads must be a power of two in [8, 1024], got {threads}")
    shared = 4 * (T + HS + 2 * threads)
    if shared > SHARED_LIMIT:
        raise ValueError(f"T = {T} is too long for this kernel's shared memory ({shared} > {SHARED_LIMIT} bytes)")
    q, k, v = (xp.ascontiguousarray(a) for a in (q, k, v))
    threshold = np.uint32(min(round(dropout * 2.0**32), 2**32 - 1))
    keep_scale = np.float32(1.0 / (1.0 - dropout))
    k0, k1 = philox_key(key)
    probs = xp.empty((B, NH, T, T), dtype=np.float32)
    att = xp.empty((B, NH, T, T), dtype=np.float32)
    fn = be.kernel(source("attention.cu"), "attn_softmax_dropout_fwd")
    scale = np.float32(1.0 / np.sqrt(HS))
    if B * NH * T:
        fn((T, NH, B), (threads,), (q, k, segment_ids, lengths, code, np.int32(NH), np.int32(T), np.int32(HS),
                                    scale, threshold, keep_scale, k0, k1, probs, att), shared_mem=shared)
    out = att @ v                                                   # (B, NH, T, HS)
    return out, (q, k, v, probs, att, scale, threshold, keep_scale, (k0, k1), threads, be)


def attention_backward(dout, cache):
    """Gradients of attention_forward: dout (B, NH, T, HS) -> dq, dk, dv, each (B, NH, T, HS)."""
    q, k, v, probs, att, scale, threshold, keep_scale, (k0, k1), threads, be = cache
    xp = be.xp
    if not isinstance(dout, xp.ndarray) or dout.shape != q.shape or dout.dtype != np.float32:
        raise ValueError(f"dout must be a float32 array of shape {q.shape}, got "
                         f"{getattr(dout, 'dtype', type(dout).__name__)} {getattr(dout, 'shape', '')}")
    B, NH, T, HS = q.shape
    # forward was: out = A @ v
    dv = att.swapaxes(-1, -2) @ dout                                # (B, NH, T, HS)
    datt = xp.ascontiguousarray(dout @ v.swapaxes(-1, -2))          # (B, NH, T, T)
    dscores = xp.empty_like(datt)
    fn = be.kernel(source("attention.cu"), "attn_softmax_dropout_bwd")
    if B * NH * T:
        fn((B * NH * T,), (threads,), (datt, probs, np.int32(T), threshold, keep_scale, k0, k1, dscores),
           shared_mem=4 * threads)
    # forward was: s = scale * q @ k^T
    dq = scale * (dscores @ k)
    dk = scale * (dscores.swapaxes(-1, -2) @ q)
    return dq, dk, dv


# The flash kernel's tile: (query rows per block, keys per shared-memory tile, threads per query row).
# Chosen by `python -m bench gpu_attention --sweep` (bench/RESULTS.md has the figures).
FLASH_TILE = (128, 32, 1)


def _flash_defines(HS, tile=None):
    if HS > 256:
        raise ValueError(f"the flash kernels take head sizes up to 256, got HS = {HS}")
    if tile is None:
        return (f"HEAD_DIM={HS}",)
    rows, keys, split = tile
    return (f"HEAD_DIM={HS}", f"FLASH_BQ={rows}", f"FLASH_BK={keys}", f"FLASH_SPLIT={split}")


def _check_tile(tile, HS):
    """tile: (rows, keys, split) -> the same, checked; split is lowered to a power of two dividing HS."""
    if len(tile) != 3 or not all(isinstance(t, (int, np.integer)) and t > 0 for t in tile):
        raise ValueError(f"tile must be three positive ints (rows, keys, split), got {tile!r}")
    rows, keys, split = (int(t) for t in tile)
    if split & (split - 1) or split > 32:
        raise ValueError(f"tile's split (threads per query row) must be a power of two up to 32, got {split}")
    while HS % split:
        split //= 2
    if rows * split > 1024:
        raise ValueError(f"tile {tile!r} needs {rows * split} threads per block; at most 1024")
    return rows, keys, split


def flash_attention(q, k, v, lengths, segment_ids=None, mode="padding", backend=None, tile=None):
    """Masked softmax attention forward without dropout, scores kept on chip (online softmax).

    q, k, v: (B, NH, T, HS) float32   lengths: (B,)   segment_ids: (B, T) for mode 'unilm'
    tile: (query rows per block, keys per tile, threads per query row), default FLASH_TILE
    returns out (B, NH, T, HS)
    """
    be = backend or default_backend()
    xp = be.xp
    B, NH, T, HS = _check_qkv(xp, q=q, k=k, v=v)
    code, lengths, segment_ids = _mask_args(xp, mode, lengths, segment_ids, B, T)
    rows, keys, split = _check_tile(FLASH_TILE if tile is None else tile, HS)
    threads = rows * split
    shared = 4 * (T + threads) + 4 * 2 * keys * HS    # dynamic (ranks, scan scratch) + static (K, V tiles)
    if shared > SHARED_LIMIT:
        raise ValueError(f"T = {T} with HS = {HS} is too long for the flash kernel's shared memory")
    q, k, v = (xp.ascontiguousarray(a) for a in (q, k, v))
    out = xp.empty_like(q)
    fn = be.kernel(source("flash_attention.cu"), "flash_attention_fwd", _flash_defines(HS, (rows, keys, split)))
    if B * NH * T:
        fn(((T + rows - 1) // rows, NH, B), (threads,),
           (q, k, v, segment_ids, lengths, code, np.int32(NH), np.int32(T), np.float32(1.0 / np.sqrt(HS)), out),
           shared_mem=4 * (T + threads))
    return out


def flash_decode(q, k_cache, v_cache, lengths, backend=None):
    """Attention of one new query row per (b, h) over the first lengths[b] cached keys.

    q: (B, NH, HS) float32   k_cache, v_cache: (B, NH, T_max, HS)   lengths: (B,) in [0, T_max]
    returns out (B, NH, HS)
    """
    be = backend or default_backend()
    xp = be.xp
    B, NH, T, HS = _check_qkv(xp, k_cache=k_cache, v_cache=v_cache)
    if not isinstance(q, xp.ndarray) or q.dtype != np.float32 or q.shape != (B, NH, HS):
        raise ValueError(f"q must be a float32 array of shape {(B, NH, HS)}, got "
                         f"{getattr(q, 'dtype', type(q).__name__)} {getattr(q, 'shape', '')}")
    _, lengths, _ = _mask_args(xp, "padding", lengths, None, B, T)
    q, k_cache, v_cache = (xp.ascontiguousarray(a) for a in (q, k_cache, v_cache))
    out = xp.empty_like(q)
    fn = be.kernel(source("flash_attention.cu"), "flash_decode_fwd", _flash_defines(HS))
    if B * NH:
        fn((NH, B), (128,), (q, k_cache, v_cache, lengths, np.int32(NH), np.int32(T),
                             np.float32(1.0 / np.sqrt(HS)), out))
    return out
