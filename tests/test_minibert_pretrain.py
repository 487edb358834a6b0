"""The pretraining command: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted
one; bad input gives clear errors and never replaces a good checkpoint; --quick accuracy rises."""
import json
import re
import os
import signal
import subprocess
import sys
import time

import numpy as np

from minibert import pretrain
from minibert.safetensors import read_safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# small and fast: 1-layer model, 300 demo lines, 40 updates, a checkpoint every 4
ARGS = ["--quick", "--lines", "300", "--steps", "40", "--batch-size", "8", "--maxlen", "32",
        "--save-every", "4", "--eval-every", "20", "--ema", "0.9", "--accum", "2", "--seed", "3"]
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "minibert.pretrain", *ARGS, "--out", str(out), *extra],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _latest(out):
    """The checkpoint LATEST names in a run directory, or None before the first one."""
    try:
        with open(os.path.join(out, "LATEST")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def _final_state(out):
    with open(os.path.join(out, "LATEST")) as f:
        ckpt = os.path.join(out, f.read().strip())
    model, _ = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    slots, _ = read_safetensors(os.path.join(ckpt, "optimizer.safetensors"))
    with open(os.path.join(ckpt, "state.json")) as f:
        state = json.load(f)
    return model, slots, state


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    t0 = time.perf_counter()
    ref = _start(tmp_path / "ref")
    stdout, stderr = ref.communicate(timeout=120)
    duration = time.perf_counter() - t0
    assert ref.returncode == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["steps"] == 40

    run = tmp_path / "killed"
    rng = np.random.default_rng(int(time.time()))
    kills, logs = 0, []
    for _ in range(2):                                     # two kills at arbitrary moments, then finish
        before = _latest(run)
        proc = _start(run, "--resume")
        # wait until this run has saved a checkpoint of its own (so it is past start-up and has work
        # left), then kill it a random moment later: wherever it is, mid-update or mid-save
        while proc.poll() is None and _latest(run) == before:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15) * duration)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        logs.append(proc.communicate(timeout=120)[1])
    assert kills >= 1, "the run finished before it could be killed"
    proc = _start(run, "--resume")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert any("resumed from" in log for log in logs + [stderr]), "no run continued from a checkpoint"

    model_a, slots_a, state_a = _final_state(tmp_path / "ref")
    model_b, slots_b, state_b = _final_state(run)
    assert state_a["step"] == state_b["step"] == 40
    assert state_a["rng"] == state_b["rng"] and state_a["data_position"] == state_b["data_position"]
    assert model_a.keys() == model_b.keys() and slots_a.keys() == slots_b.keys()
    for k in model_a:
        assert model_a[k].tobytes() == model_b[k].tobytes(), f"weights {k} differ after kill + resume"
    for k in slots_a:
        assert slots_a[k].tobytes() == slots_b[k].tobytes(), f"optimizer slot {k} differs"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_bad_input_gives_clear_errors_and_keeps_checkpoints(tmp_path, capsys):
    small = ["--lines", "200", "--steps", "4", "--batch-size", "4", "--maxlen", "32", "--layers", "1",
             "--hidden", "16", "--heads", "2", "--intermediate", "32", "--eval-every", "2", "--save-every", "2"]
    out = tmp_path / "run"
    assert pretrain.main(small + ["--out", str(out)]) == 0
    capsys.readouterr()
    latest = (out / "LATEST").read_text()
    snapshot = {n: (out / latest.strip() / n).read_bytes() for n in os.listdir(out / latest.strip())}

    vocab = _write(tmp_path / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    cases = [
        (["--corpus", _write(tmp_path / "empty.txt", "\n  \n"), "--vocab", vocab], "is empty"),
        (["--corpus", str(tmp_path / "missing.txt"), "--vocab", vocab], "not found"),
        (["--corpus", _write(tmp_path / "c.txt", "hello\n")], "--vocab is required"),
        (["--optimizer", "sgd"], "--optimizer must be 'adamw' or 'lamb'"),
        (["--maxlen", "600"], "--maxlen 600 exceeds the model.s max_position_embeddings 128"),
        (["--out", str(out)], "already holds checkpoints; pass --resume"),
        (["--out", str(out), "--resume", "--hidden", "32"],
         "different run setup.*hidden_size: checkpoint has 16, this run has 32"),
        (["--out", str(out), "--resume", "--optimizer", "lamb"], "different run setup.*lamb"),
    ]
    for extra, message in cases:
        assert pretrain.main(small + extra) == 2, extra
        err = capsys.readouterr().err
        assert re.search(message, err), (extra, err)
    assert (out / "LATEST").read_text() == latest
    for n, data in snapshot.items():
        assert (out / latest.strip() / n).read_bytes() == data, n


def test_quick_demo_accuracy_rises():
    """The --quick demo as a user runs it: progress on stderr, the JSON summary as stdout's last line."""
    proc = subprocess.run([sys.executable, "-m", "minibert.pretrain", "--quick", "--steps", "60", "--lines", "600",
                           "--eval-every", "30"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "held-out loss" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 60
    assert summary["heldout_mlm_accuracy_last"] > summary["heldout_mlm_accuracy_first"] + 0.05
    assert np.isfinite(summary["heldout_mlm_loss_last"])
