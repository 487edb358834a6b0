"""The GPU benchmarks end with a JSON record; without a GPU it says why they were skipped (and so does
.ci/gpu, which runs the gpu tests and both benchmarks)."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from bench.gpu_attention import _gpu_or_reason


@pytest.mark.parametrize("name", ["gpu_attention", "gpu_langevin"])
def test_gpu_bench_without_gpu_skips_with_a_reason(name):
    cp, reason = _gpu_or_reason()
    if cp is not None:
        pytest.skip("a GPU is present: the benchmark would run for real")
    run = subprocess.run([sys.executable, "-m", "bench", name, "--quick"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout.strip().splitlines()[-1])
    assert record["bench"] == name and record["skipped"] == reason
    assert "skipped" in run.stderr


def test_attention_sweep_reads_its_tiles_and_lengths():
    from bench.gpu_attention import SWEEP_TILES, _sweep_options

    assert _sweep_options([]) == (SWEEP_TILES, (512, 2048))
    assert _sweep_options(["--tiles=64,32,4;32,32,4", "--lengths=512,1024"]) == ([(64, 32, 4), (32, 32, 4)],
                                                                                 (512, 1024))


def test_gpu_script_without_gpu_skips_and_records_why(tmp_path):
    """.ci/gpu on a machine without a GPU: every gpu test skips, both benchmarks record why, exit 0."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    cp, reason = _gpu_or_reason()
    if cp is not None:
        pytest.skip("a GPU is present: the script would run the device tests for real")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    logs = tmp_path / "logs"
    run = subprocess.run(["bash", os.path.join(root, ".ci", "gpu"), "--quick", str(logs)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert " passed" not in (logs / "pytest-gpu.log").read_text()
    assert "skipped" in (logs / "pytest-gpu.log").read_text()
    records = [json.loads(line) for line in (logs / "results.jsonl").read_text().splitlines()]
    assert [r["bench"] for r in records] == ["gpu_attention", "gpu_langevin"]
    assert all(r["skipped"] == reason for r in records)


class _HostCuda:
    """The part of cupy.cuda the sweep uses, on the host clock."""

    class Event:
        def record(self):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

    @staticmethod
    def get_elapsed_time(start, stop):
        return 1e3 * (stop.t - start.t)

    class runtime:
        @staticmethod
        def getDeviceProperties(device):
            return {"name": b"CPU emulation"}


def test_attention_sweep_on_the_cpu_emulation(monkeypatch):
    """The sweep's loop and JSON record, with NumPy standing in for CuPy and the kernels emulated."""
    from functools import partial
    from types import SimpleNamespace

    from bench.gpu_attention import sweep
    from minibert.kernels import attention as ka
    from tests.cuda_emu.conftest_helpers import emu_backend_or_skip

    emu = emu_backend_or_skip()
    monkeypatch.setattr(ka, "flash_attention", partial(ka.flash_attention, backend=emu))
    fake_cp = SimpleNamespace(**{n: getattr(np, n) for n in ("abs", "arange", "array", "exp", "float32", "inf",
                                                            "int32", "where")},
                              random=np.random, cuda=_HostCuda)
    args = SimpleNamespace(repeats=2, threads=1, extra=["--tiles=128,32,1;16,32,4", "--lengths=24"])
    record = sweep(fake_cp, args, B=2, NH=1, HS=16)
    assert record["bench"] == "gpu_attention_sweep" and record["T"] == 24
    assert set(record["tiles"]) == {"(128, 32, 1)", "(16, 32, 4)"} and record["best_tile"] in record["tiles"]
    assert all(row["24"]["max_abs_diff"] < 1e-5 for row in record["tiles"].values())
    assert record["ratio"] == pytest.approx(record["ours_s"] / record["reference_s"], rel=0.05)   # times rounded
