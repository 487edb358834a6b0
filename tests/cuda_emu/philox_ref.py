"""Philox4x64-10 and the kernels' conversions to uniforms and normals, vectorised in NumPy.

The reference the CUDA kernels' random numbers are compared with, bit for bit. It is itself checked
against numpy.random.Philox (tests/test_kernels_philox.py), so the chain of equalities is
kernel == this file == NumPy's own generator.
"""
import numpy as np

M0, M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
W0, W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
LO32 = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)


def mulhilo64(a, b):
    """(hi, lo) 64-bit halves of the 128-bit products a * b, elementwise on uint64 arrays."""
    a0, a1 = a & LO32, a >> S32
    b0, b1 = b & LO32, b >> S32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1      # each < 2^64: no wrap
    mid = (p00 >> S32) + (p01 & LO32) + (p10 & LO32)
    hi = p11 + (p01 >> S32) + (p10 >> S32) + (mid >> S32)
    return hi, a * b                                               # a * b wraps mod 2^64 = the low half


def philox4x64_10(counter, key):
    """counter: (N, 4) uint64, key: (2,) uint64 -> (N, 4) uint64, ten Philox rounds."""
    c = [np.array(counter[:, i], dtype=np.uint64) for i in range(4)]
    k0 = np.array([key[0]], dtype=np.uint64)   # 1-element arrays: uint64 overflow wraps silently
    k1 = np.array([key[1]], dtype=np.uint64)
    for r in range(10):
        if r > 0:
            k0, k1 = k0 + W0, k1 + W1
        hi0, lo0 = mulhilo64(np.full_like(c[0], M0), c[0])
        hi1, lo1 = mulhilo64(np.full_like(c[2], M1), c[2])
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return np.stack(c, axis=1)


def key_words(key):
    """(2,) uint64 key words from an int in [0, 2^128) (low word first, as NumPy) or two words."""
    if isinstance(key, (int, np.integer)):
        return np.array([int(key) & ((1 << 64) - 1), int(key) >> 64], dtype=np.uint64)
    return np.array([int(k) for k in key], dtype=np.uint64)


def stream_counters(counter, n_blocks):
    """The counters of blocks 0..n_blocks-1 of np.random.Philox(counter=counter): counter + 1 + j."""
    start = sum(int(w) << (64 * i) for i, w in enumerate(counter))
    out = np.empty((n_blocks, 4), dtype=np.uint64)
    for j in range(n_blocks):
        value = (start + 1 + j) % (1 << 256)
        out[j] = [(value >> (64 * i)) & ((1 << 64) - 1) for i in range(4)]
    return out


def stream_words32(key, counter, n_blocks):
    """(n_blocks, 8) uint32: each block's four 64-bit words split low half first."""
    raw = philox4x64_10(stream_counters(counter, n_blocks), key_words(key))
    return raw.view(np.uint32).reshape(n_blocks, 8)   # little-endian: low half first


def words_for_rows(key, c1_values, c2, n_blocks):
    """(R, n_blocks, 8) uint32: the streams counter = [0, c1, c2, 0] for each c1 in c1_values."""
    c1 = np.asarray(c1_values, dtype=np.uint64)
    R = c1.shape[0]
    j = np.arange(1, n_blocks + 1, dtype=np.uint64)
    counters = np.zeros((R, n_blocks, 4), dtype=np.uint64)
    counters[:, :, 0] = j[None, :]
    counters[:, :, 1] = c1[:, None]
    counters[:, :, 2] = np.uint64(c2)
    raw = philox4x64_10(counters.reshape(-1, 4), key_words(key))
    return raw.view(np.uint32).reshape(R, n_blocks, 8)


def uniform_open0(w):
    """uint32 -> float32 in (0, 1]: ((w >> 8) + 1) * 2^-24."""
    return ((w >> np.uint32(8)).astype(np.float32) + np.float32(1)) * np.float32(2.0 ** -24)


def uniform(w):
    """uint32 -> float32 in [0, 1): (w >> 8) * 2^-24."""
    return (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)


def normals(w):
    """(..., 8) uint32 -> (..., 8) float32 standard normals by Box-Muller on word pairs."""
    u1 = uniform_open0(w[..., 0::2])
    u2 = uniform(w[..., 1::2])
    r = np.sqrt(np.float32(-2) * np.log(u1))
    t = np.float32(2 * np.pi) * u2
    z = np.empty(w.shape, dtype=np.float32)
    z[..., 0::2] = r * np.cos(t)
    z[..., 1::2] = r * np.sin(t)
    return z
