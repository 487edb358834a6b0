"""Data-parallel pretraining on MPI: 2 ranks end where 1 rank ends, a run resumes with another rank count,
a killed or hung rank stops every rank within seconds, and the flat-buffer reduction sums exactly."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibert.data_parallel import FlatGradients, rank_share, world
from minibert.optim import GradientAccumulator
from minibert.safetensors import read_safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
# a 1-layer model, 4 micro-batches of 8 rows an update, dropout on, EMA on, a checkpoint every 5 updates
ARGS = ["--quick", "--lines", "300", "--steps", "20", "--batch-size", "8", "--maxlen", "32", "--accum", "4",
        "--seed", "3", "--save-every", "5", "--ema", "0.9", "--data-parallel"]


def _mpiexec():
    """The mpiexec beside this Python (the mpich wheel puts it there), else on PATH; skip without MPI."""
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install '.[mpi]')")
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.access(here, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: install an MPI library (pip install mpich)")
    from mpi4py import MPI
    if "MPICH" not in MPI.Get_library_version():
        # the kill and hang tests read MPICH's messages and its PMI_RANK variable
        pytest.skip("these tests expect MPICH (pip install '.[mpi]'), found: "
                    + MPI.Get_library_version().splitlines()[0])
    return found


def _pretrain(n, out, *extra):
    return [_mpiexec(), "-n", str(n), sys.executable, "-m", "minibert.pretrain", *ARGS, "--out", str(out), *extra]


def _run(n, out, *extra):
    proc = subprocess.run(_pretrain(n, out, *extra), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _final(out):
    """(weights, optimizer slots, state.json) of the checkpoint LATEST names."""
    with open(os.path.join(out, "LATEST")) as f:
        ckpt = os.path.join(out, f.read().strip())
    with open(os.path.join(ckpt, "state.json")) as f:
        state = json.load(f)
    model = read_safetensors(os.path.join(ckpt, "model.safetensors"))[0]
    return model, read_safetensors(os.path.join(ckpt, "optimizer.safetensors"))[0], state


def _assert_same_run(out_a, out_b, rtol, atol):
    """Same step, RNG and data position; every weight, Adam moment and EMA entry within the tolerance."""
    model_a, slots_a, state_a = _final(out_a)
    model_b, slots_b, state_b = _final(out_b)
    assert state_a["step"] == state_b["step"] == 20
    assert state_a["rng"] == state_b["rng"], "saved RNG state differs"
    assert state_a["data_position"] == state_b["data_position"], "saved data position differs"
    assert model_a.keys() == model_b.keys() and slots_a.keys() == slots_b.keys()
    for name in model_a:
        np.testing.assert_allclose(model_b[name], model_a[name], rtol=rtol, atol=atol, err_msg=f"weight {name}")
    for name in slots_a:
        np.testing.assert_allclose(slots_b[name], slots_a[name], rtol=rtol, atol=atol, err_msg=f"slot {name}")


@pytest.fixture(scope="module")
def one_rank_float64(tmp_path_factory):
    """The reference: 20 updates on one rank in float64."""
    out = tmp_path_factory.mktemp("dp") / "one_rank_float64"
    _run(1, out, "--dtype", "float64")
    return out


def test_two_ranks_end_where_one_rank_ends_float64(one_rank_float64, tmp_path):
    proc = _run(2, tmp_path / "two", "--dtype", "float64")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ranks"] == 2
    _assert_same_run(one_rank_float64, tmp_path / "two", rtol=0, atol=1e-10)


def test_two_ranks_end_where_one_rank_ends_float32(tmp_path):
    _run(1, tmp_path / "one")
    _run(2, tmp_path / "two")
    # weights are of order 0.01 to 1; the attention key bias, whose gradient is 0 in exact arithmetic,
    # holds only rounding noise of order 1e-9, hence the small absolute floor
    _assert_same_run(tmp_path / "one", tmp_path / "two", rtol=1e-5, atol=1e-7)


def _rank_pids(launcher):
    """{rank: pid} of the processes started under the mpiexec with pid `launcher` (Linux /proc)."""
    parents = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/stat") as f:
                parents[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    ranks = {}
    for pid in parents:
        p = pid
        while p in parents and p != launcher and p > 1:
            p = parents[p]
        if p != launcher or pid == launcher:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if b"PMI_RANK" in env and b"python" in os.path.basename(os.readlink(f"/proc/{pid}/exe")).encode():
            ranks[int(env[b"PMI_RANK"])] = pid
    return ranks


def _interrupt_rank_1(out, sig, *extra):
    """Start 2 ranks; once the first checkpoint is written send `sig` to rank 1. Returns the seconds from
    the signal until mpiexec has exited, its exit code, and its output (stdout and stderr together:
    mpiexec reports a dead rank on stdout)."""
    if not os.path.isdir("/proc"):
        pytest.skip("finding the rank processes needs Linux /proc")
    proc = subprocess.Popen(_pretrain(2, out, "--dtype", "float64", *extra), cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ranks = {}
    try:
        while proc.poll() is None and not os.path.isfile(os.path.join(out, "LATEST")):
            if len(ranks) < 2:
                ranks = _rank_pids(proc.pid)
            time.sleep(0.005)
        assert proc.poll() is None and 1 in ranks, "the run ended before rank 1 could be interrupted"
        os.kill(ranks[1], sig)
        t0 = time.monotonic()
        output, _ = proc.communicate(timeout=60)
        return time.monotonic() - t0, proc.returncode, output
    finally:
        for pid in ranks.values():                       # nothing of ours may outlive the test
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _resumed_step(stderr):
    line = next(ln for ln in stderr.splitlines() if ln.startswith("resumed from"))
    return int(line.split(" at step ")[1].split()[0])


def test_killed_rank_stops_the_run_and_it_resumes_on_four_ranks(one_rank_float64, tmp_path):
    out = tmp_path / "killed"
    seconds, code, output = _interrupt_rank_1(out, signal.SIGKILL)
    assert seconds < 30, f"the other rank ran on for {seconds:.1f} s after rank 1 was killed"
    assert code != 0 and "BAD TERMINATION" in output and "Killed (signal 9)" in output, output[-2000:]
    proc = _run(4, out, "--dtype", "float64", "--resume")
    assert 5 <= _resumed_step(proc.stderr) < 20
    _assert_same_run(one_rank_float64, out, rtol=0, atol=1e-10)


def test_hung_rank_stops_the_run_with_a_message_and_it_resumes_on_one_rank(one_rank_float64, tmp_path):
    out = tmp_path / "hung"
    seconds, code, output = _interrupt_rank_1(out, signal.SIGSTOP, "--comm-timeout", "4")
    assert seconds < 30, f"rank 0 waited {seconds:.1f} s for a stopped rank"
    assert code != 0
    assert "rank 0 of 2 waited 4 s for the gradient all-reduce of update" in output, output[-2000:]
    assert "another rank has died or hangs" in output and "--resume" in output
    proc = _run(1, out, "--dtype", "float64", "--resume")
    assert 5 <= _resumed_step(proc.stderr) < 20
    _assert_same_run(one_rank_float64, out, rtol=0, atol=1e-10)


def test_uneven_share_is_refused_on_every_rank(tmp_path):
    proc = subprocess.run(_pretrain(3, tmp_path / "r"), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("--accum 4 micro-batches an update cannot be shared evenly by 3 MPI ranks") == 3
    assert not os.path.exists(tmp_path / "r" / "LATEST")


def _ranks_script(n, backend, timeout):
    """tests/data_parallel_ranks.py on n ranks (as a module, so the checkout's own packages are imported)."""
    return subprocess.run([_mpiexec(), "-n", str(n), sys.executable, "-m", "tests.data_parallel_ranks", backend],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_a_problem_only_rank_0_sees_ends_every_rank_with_its_message(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("a user's file")
    proc = subprocess.run(_pretrain(4, tmp_path / "r"), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("holds files that are not this program's checkpoints") == 1, proc.stderr[-2000:]
    assert os.listdir(tmp_path / "r") == ["notes.txt"]


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_bucketed_reduction_sums_exactly_on_two_ranks(backend):
    """Host buffers, and buffers of the strict double that refuses to mix with NumPy as CuPy does (the
    device path through host memory, on a CPU)."""
    proc = _ranks_script(2, backend, 120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(f"{backend} sums match") == 2


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cupy-mpi", "cupy-nccl"])
def test_device_buffers_reduce_on_the_gpu(backend):
    """CuPy buffers: through MPI (staged in host memory unless MPI is CUDA-aware) on 2 ranks sharing a
    GPU, and through NCCL with one rank a GPU (NCCL refuses two ranks on one device)."""
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        devices = cp.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver or no device
        pytest.skip(f"no CUDA device: {err}")
    if devices < 1:
        pytest.skip("no CUDA device")
    if backend == "cupy-nccl":
        pytest.importorskip("cupy.cuda.nccl", reason="CuPy was built without NCCL")
    n = 2 if backend == "cupy-mpi" else min(devices, 2)
    proc = _ranks_script(n, backend, 300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(f"{backend} sums match") == n


@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6), bucket=st.integers(1, 50))
def test_flat_layout_views_and_buckets_cover_the_buffer_once(sizes, bucket):
    params = {f"p{i}": np.zeros(s, np.float32) for i, s in enumerate(sizes)}
    flat = FlatGradients(params, bucket_bytes=4 * bucket)
    assert flat.flat.size == sum(sizes)
    assert [b.size for b in flat.buckets[:-1]] == [bucket] * (len(flat.buckets) - 1)
    assert sum(b.size for b in flat.buckets) == flat.flat.size
    for i, name in enumerate(params):
        flat.views[name][...] = i + 1                    # every view writes its own slice of flat
    assert np.array_equal(flat.flat, np.repeat(np.arange(1, len(sizes) + 1), sizes).astype(np.float32))
    assert all(np.shares_memory(b, flat.flat) for b in flat.buckets)


def test_flat_sum_then_mean_equals_the_gradient_accumulator_bit_for_bit():
    rng = np.random.default_rng(0)
    params = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(3, np.float32)}
    micro = [({k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()}, n)
             for n in (7, 3, 11)]
    acc, flat = GradientAccumulator(), FlatGradients(params, bucket_bytes=16)
    for grads, n in micro:
        acc.add(grads, weight=n)
        flat.add(grads, n)
    want, got = acc.mean(), flat.mean(21)
    for k in params:
        assert got[k].tobytes() == want[k].tobytes(), f"mean gradient {k}"


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="share one dtype"):
        FlatGradients({"a": np.zeros(2, np.float32), "b": np.zeros(2, np.float64)})
    with pytest.raises(ValueError, match="bucket_bytes must be > 0"):
        FlatGradients({"a": np.zeros(2)}, bucket_bytes=0)
    with pytest.raises(ValueError, match="--accum 6 .* evenly by 4 MPI ranks; use a multiple of 4"):
        rank_share(6, 4, 0)
    assert list(rank_share(8, 4, 2)) == [4, 5]


def test_without_mpi4py_the_flag_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)      # import mpi4py now raises ImportError
    with pytest.raises(ValueError, match=r"needs mpi4py .*pip install 'minibert-blogs\[mpi\]'"):
        world()
