"""Lazy loading of this folder's CUDA sources with CuPy: nothing is compiled, or even imported, before use.

A backend is anything with `xp` (the array module) and `kernel(source_path, name, defines) -> callable`,
where the callable is invoked as `kernel(grid, block, args, shared_mem=0)` (CuPy's convention). The
default is CuPy on the current GPU; the tests pass a CPU emulation backend with the same interface.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def source(name):
    """Absolute path of a kernel source in this folder."""
    return os.path.join(HERE, name)


class CupyBackend:
    """Compile sources with NVRTC through cupy.RawModule, once per (source, defines)."""

    def __init__(self):
        try:
            import cupy
        except ImportError as e:
            raise RuntimeError("the CUDA kernels need CuPy: pip install cupy-cuda12x (or cupy-cuda13x) "
                               "on a machine with an NVIDIA GPU") from e
        self.xp = cupy
        self._modules = {}

    def kernel(self, source_path, name, defines=()):
        key = (source_path, tuple(sorted(defines)))
        if key not in self._modules:
            with open(source_path) as f:
                code = f.read()
            options = ("-I" + os.path.dirname(source_path),) + tuple("-D" + d for d in defines)
            self._modules[key] = self.xp.RawModule(code=code, options=options)
        return self._modules[key].get_function(name)


_default = None


def default_backend():
    """The CuPy backend, created on first use."""
    global _default
    if _default is None:
        _default = CupyBackend()
    return _default


def philox_key(key):
    """A Philox key as two uint64 words (NumPy's convention: an int in [0, 2^128), low word first)."""
    import numpy as np
    if isinstance(key, (int, np.integer)):
        key = int(key)
        if not 0 <= key < 1 << 128:
            raise ValueError(f"key must be an int in [0, 2**128) or two uint64 words, got {key}")
        return np.uint64(key & ((1 << 64) - 1)), np.uint64(key >> 64)
    words = np.asarray(key)
    if words.shape != (2,) or words.dtype.kind not in "ui":
        raise ValueError(f"key must be an int in [0, 2**128) or two uint64 words, got {key!r}")
    return np.uint64(int(words[0])), np.uint64(int(words[1]))
