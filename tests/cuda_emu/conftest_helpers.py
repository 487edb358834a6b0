"""Fixtures shared by the kernel tests (imported by tests/test_kernels_*.py)."""
import shutil

import pytest


def emu_backend_or_skip():
    """The CPU emulation backend; skips the test when g++ is missing."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the CPU emulation of the CUDA kernels needs it")
    from tests.cuda_emu.emu import EmuBackend
    return EmuBackend()


def cupy_backend_or_skip():
    """The CuPy backend on a working GPU; skips cleanly otherwise (no CuPy, no driver, no device)."""
    try:
        import cupy
        if not cupy.cuda.is_available():
            pytest.skip("no CUDA device available to CuPy")
        cupy.zeros(1)
    except ImportError:
        pytest.skip("CuPy is not installed")
    except Exception as e:  # a driver or runtime error means no usable GPU
        pytest.skip(f"CuPy cannot use a GPU here: {type(e).__name__}: {e}")
    from ebm.kernels._loader import CupyBackend
    return CupyBackend()
