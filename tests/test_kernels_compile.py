"""Every CUDA source compiles with nvcc to PTX for sm_80 and sm_90 (skipped when nvcc is absent).

NVRTC, which CuPy uses, has no <math.h>: the sources define what they need themselves, and the
CPU-emulation tests run them; this test catches what only the CUDA compiler rejects.
"""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The flash kernel unrolls a whole key tile of a whole head: at HEAD_DIM=128 nvcc takes about a minute,
# so that size is a slow case; HEAD_DIM=64 compiles the same code in about 15 s.
SOURCES = [("ebm/kernels/langevin.cu", ()),
           ("minibert/kernels/attention.cu", ()),
           ("minibert/kernels/flash_attention.cu", ("HEAD_DIM=64",)),
           ("minibert/kernels/flash_attention.cu", ("HEAD_DIM=64", "FLASH_BQ=32", "FLASH_SPLIT=4")),
           pytest.param("minibert/kernels/flash_attention.cu", ("HEAD_DIM=128",), marks=pytest.mark.slow)]


def test_every_source_is_listed():
    found = {os.path.relpath(os.path.join(d, f), ROOT) for pkg in ("ebm", "minibert")
             for d, _, files in os.walk(os.path.join(ROOT, pkg, "kernels")) for f in files if f.endswith(".cu")}
    assert found == {(s.values if hasattr(s, "values") else s)[0] for s in SOURCES}


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("src,defines", SOURCES, ids=lambda x: x if isinstance(x, str) else "-".join(x))
def test_nvcc_ptx(src, defines, arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    path = os.path.join(ROOT, src)
    cmd = [nvcc, "--ptx", f"-arch={arch}", "-I", os.path.dirname(path), *(f"-D{d}" for d in defines),
           path, "-o", str(tmp_path / "out.ptx")]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"nvcc failed on {src} ({arch}):\n{run.stderr[-3000:]}"
    ptx = (tmp_path / "out.ptx").read_text()
    assert f".target {arch}" in ptx
    for line in open(path):
        if line.startswith('extern "C" __global__'):
            name = line.split("void", 1)[1].split("(")[0].strip()
            assert f".entry {name}(" in ptx, f"kernel {name} missing from the PTX of {src}"
