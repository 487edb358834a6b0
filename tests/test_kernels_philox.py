"""Philox4x64-10 in the kernel sources is bit-identical to numpy.random.Philox (CPU emulation)."""
import filecmp
import os

import numpy as np
import pytest

from tests.cuda_emu import philox_ref as P
from tests.cuda_emu.conftest_helpers import emu_backend_or_skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EBM_PHILOX = os.path.join(ROOT, "ebm", "kernels", "philox.cuh")
MINIBERT_PHILOX = os.path.join(ROOT, "minibert", "kernels", "philox.cuh")



@pytest.fixture(scope="module")
def emu():
    return emu_backend_or_skip()


# keys and counters that exercise the carries: word 0 about to wrap into words 1, 2 and 3
CASES = [([0, 0], [0, 0, 0, 0]),
         ([123, 2**63 + 5], [7, 1, 0, 0]),
         ([2**64 - 1, 2**64 - 1], [2**64 - 3, 2**64 - 1, 2**64 - 1, 5]),
         ([0xDEADBEEF, 42], [2**64 - 2, 17, 2**64 - 1, 0])]


def test_reference_matches_numpy_philox():
    """The vectorised NumPy reference reproduces random_raw() and next_uint32 of numpy.random.Philox."""
    for key, ctr in CASES:
        kw = dict(key=np.array(key, dtype=np.uint64), counter=np.array(ctr, dtype=np.uint64))
        raw = np.random.Philox(**kw).random_raw(4 * 6)
        ours = P.philox4x64_10(P.stream_counters(ctr, 6), np.array(key, dtype=np.uint64))
        np.testing.assert_array_equal(ours.reshape(-1), raw, err_msg=f"raw words, key {key} ctr {ctr}")
        # the 32-bit stream: Generator.integers over the full uint32 range returns next_uint32 as is
        u32 = np.random.Generator(np.random.Philox(**kw)).integers(0, 2**32, size=48, dtype=np.uint32)
        np.testing.assert_array_equal(P.stream_words32(key, ctr, 6).reshape(-1), u32,
                                      err_msg=f"32-bit words, key {key} ctr {ctr}")


def test_reference_rows_match_single_streams():
    key = [99, 7]
    rows = P.words_for_rows(key, [0, 5, 2**40], 3, 4)
    for r, c1 in enumerate([0, 5, 2**40]):
        np.testing.assert_array_equal(rows[r], P.stream_words32(key, [0, c1, 3, 0], 4))


def test_kernel_stream_is_numpys(emu):
    """philox_stream_dump (philox.cuh, compiled with g++) gives NumPy's words bit for bit."""
    kernel = emu.kernel(EBM_PHILOX, "philox_stream_dump")
    u = np.uint64
    for key, ctr in CASES:
        n = 37                                                  # not a multiple of the block size
        words = np.zeros((n, 8), np.uint32)
        z = np.zeros((n, 8), np.float32)
        kernel((3,), (16,), (u(key[0]), u(key[1]), *map(u, ctr), np.int64(n), words, z))
        expect = P.stream_words32(key, ctr, n)
        np.testing.assert_array_equal(words, expect, err_msg=f"words, key {key} ctr {ctr}")
        # normals: same formula in float32; expf/logf/sinf may differ in the last bit between libms
        np.testing.assert_allclose(z, P.normals(expect), rtol=2e-6, atol=2e-6,
                                   err_msg=f"normals, key {key} ctr {ctr}")


def test_normals_are_standard():
    """The Box-Muller conversion gives N(0, 1): mean, variance, tails within sampling error."""
    z = P.normals(P.words_for_rows([1, 2], np.arange(50), 0, 500)).reshape(-1)   # 200,000 normals
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)
    assert abs(np.mean(np.abs(z) > 1.96) - 0.05) < 0.003
    assert np.isfinite(z).all()


def test_uniform_conversions_bounds():
    w = np.array([0, 255, 256, 2**32 - 1], dtype=np.uint32)
    assert P.uniform(w)[0] == 0 and P.uniform(w)[-1] < 1
    assert P.uniform_open0(w)[0] > 0 and P.uniform_open0(w)[-1] == 1


def test_the_two_package_copies_are_identical():
    """minibert and ebm each own a copy of philox.cuh (packages do not import each other): same bytes."""
    assert filecmp.cmp(EBM_PHILOX, MINIBERT_PHILOX, shallow=False), \
        "minibert/kernels/philox.cuh and ebm/kernels/philox.cuh differ"
