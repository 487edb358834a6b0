"""Compile a kernel source (.cu) with g++ through cuda_emu.h and launch its kernels from Python.

The source is compiled unchanged; a small generated shim adds, for every `extern "C" __global__` kernel,
a C function `emu_<name>(grid, block, shared_bytes, <the kernel's own parameters>)` that runs the launch.
The shared library is cached in a temporary folder keyed by the hash of everything that went into it.

EmuBackend has the interface the kernel wrappers expect from a backend (`xp` and `kernel(...)`), so the
wrappers in minibert.kernels and ebm.kernels run here exactly as they would on CuPy. Every argument is
checked against the kernel's declared parameter type (a float32 scalar for `float`, an int32 array for
`const int*`, ...): a wrong dtype that would silently corrupt a GPU launch fails here.
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "cuda_emu.h")
CACHE = os.path.join(tempfile.gettempdir(), "minibert_blogs_cuda_emu")

KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')

# declared C type -> (ctypes type, expected NumPy dtype)
SCALARS = {"float": (ctypes.c_float, np.float32), "double": (ctypes.c_double, np.float64),
           "int": (ctypes.c_int, np.int32), "u32": (ctypes.c_uint, np.uint32),
           "unsigned int": (ctypes.c_uint, np.uint32), "long long": (ctypes.c_longlong, np.int64),
           "u64": (ctypes.c_ulonglong, np.uint64),
           "unsigned long long": (ctypes.c_ulonglong, np.uint64)}
POINTEES = {"float": np.float32, "double": np.float64, "int": np.int32, "u32": np.uint32,
            "u64": np.uint64, "long long": np.int64}


def parse_kernels(source):
    """{name: [(c_type, param_name), ...]} for every extern "C" __global__ kernel in the source text."""
    kernels = {}
    for name, params in KERNEL_RE.findall(source):
        parsed = []
        for p in params.split(","):
            p = " ".join(p.replace("*", " * ").split())
            ctype, pname = p.rsplit(" ", 1)
            parsed.append((ctype.replace("const ", "").replace("__restrict__", "").strip(), pname))
        kernels[name] = parsed
    return kernels


def _shim(kernels):
    lines = []
    for name, params in kernels.items():
        decl = ", ".join(f"{t} {n}" for t, n in params)
        names = ", ".join(n for _, n in params)
        lines.append(
            f'extern "C" void emu_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,'
            f' unsigned bz, unsigned long long shared_bytes, {decl}) {{\n'
            f"    cuda_emu::launch(dim3(gx, gy, gz), dim3(bx, by, bz), shared_bytes,"
            f" [=]() {{ {name}({names}); }});\n}}\n")
    return "\n".join(lines)


def build(source_path, defines=()):
    """Compile the source into a shared library (cached); returns (library path, parsed kernels)."""
    if shutil.which("g++") is None:
        raise RuntimeError("g++ is not installed: the CPU emulation of the CUDA kernels needs it")
    src_dir = os.path.dirname(os.path.abspath(source_path))
    with open(source_path) as f:
        source = f.read()
    kernels = parse_kernels(source)
    h = hashlib.sha256()
    for path in [HEADER, source_path] + sorted(
            os.path.join(src_dir, n) for n in os.listdir(src_dir) if n.endswith(".cuh")):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(repr(sorted(defines)).encode())
    key = h.hexdigest()[:20]
    os.makedirs(CACHE, exist_ok=True)
    lib = os.path.join(CACHE, f"{os.path.basename(source_path)}.{key}.so")
    if not os.path.exists(lib):
        shim = os.path.join(CACHE, f"shim.{key}.cpp")
        with open(shim, "w") as f:
            f.write(f'#include "{os.path.abspath(source_path)}"\n\n{_shim(kernels)}')
        tmp = lib + f".{os.getpid()}.tmp"
        cmd = ["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-DCUDA_EMULATION",
               "-include", HEADER, "-I", src_dir] + [f"-D{d}" for d in defines] + [shim, "-o", tmp]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"g++ failed on {source_path}:\n{run.stderr[-4000:]}")
        os.replace(tmp, lib)  # atomic: a parallel build never sees half a library
    return lib, kernels


class EmuKernel:
    """One kernel of a compiled library: call as kernel(grid, block, args, shared_mem=0), like CuPy."""

    def __init__(self, lib, name, params):
        self.name, self.params = name, params
        self.fn = getattr(lib, f"emu_{name}")
        self.fn.restype = None

    def _convert(self, ctype, pname, value):
        if ctype.endswith("*"):
            want = POINTEES[ctype[:-1].strip()]
            if not isinstance(value, np.ndarray) or value.dtype != want or not value.flags.c_contiguous:
                raise TypeError(f"{self.name}: {pname} must be a C-contiguous {np.dtype(want)} array, "
                                f"got {type(value).__name__} {getattr(value, 'dtype', '')}")
            return ctypes.c_void_p(value.ctypes.data)
        c_type, want = SCALARS[ctype]
        if not isinstance(value, np.generic) or value.dtype != want:
            raise TypeError(f"{self.name}: {pname} must be a NumPy {np.dtype(want)} scalar, got {value!r}")
        return c_type(value.item())

    def __call__(self, grid, block, args, shared_mem=0):
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        grid, block = tuple(grid) + (1,) * (3 - len(grid)), tuple(block) + (1,) * (3 - len(block))
        cargs = [self._convert(t, n, a) for (t, n), a in zip(self.params, args)]
        self.fn(*(ctypes.c_uint(int(g)) for g in grid), *(ctypes.c_uint(int(b)) for b in block),
                ctypes.c_ulonglong(int(shared_mem)), *cargs)


class EmuBackend:
    """The backend interface of the kernel wrappers, on NumPy arrays and the CPU emulation."""

    xp = np

    def __init__(self):
        self._libs = {}

    def kernel(self, source_path, name, defines=()):
        key = (source_path, tuple(sorted(defines)))
        if key not in self._libs:
            path, kernels = build(source_path, defines)
            self._libs[key] = (ctypes.CDLL(path), kernels)
        lib, kernels = self._libs[key]
        if name not in kernels:
            raise KeyError(f"no kernel {name!r} in {source_path}")
        return EmuKernel(lib, name, kernels[name])
