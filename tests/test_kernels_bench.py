"""The GPU benchmarks end with a JSON record; without a GPU it says why they were skipped (and so does
.ci/gpu, which runs the gpu tests and both benchmarks)."""
import json
import os
import shutil
import subprocess
import sys

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
