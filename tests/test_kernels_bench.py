"""The GPU benchmarks end with a JSON record; without a GPU it says why they were skipped."""
import json
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
