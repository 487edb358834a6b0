"""Training checkpoints that resume exactly: weights, optimizer moments, EMA, RNG state, step, data position.

A run directory holds numbered checkpoints and a pointer to the newest complete one:

    run_dir/LATEST                    "step-00000120"
    run_dir/step-00000120/config.json         the model config (Hugging Face format)
                          model.safetensors   the weights, as the training code holds them
                          optimizer.safetensors   Adam moments "m.<name>", "v.<name>", EMA "ema.<name>"
                          state.json          step, data position, RNG state, options, fingerprint, sha256s

A checkpoint is written into a temporary directory, flushed to disk, renamed into place, and only then
is LATEST replaced (os.replace is atomic), so a crash at any moment leaves the previous checkpoint
intact and LATEST pointing at a complete one. Loading verifies every file's sha256.
"""
import hashlib
import json
import os
import shutil

import numpy as np

from .config import BertConfig
from .optim import EMA, AdamW
from .safetensors import read_safetensors, write_safetensors

FORMAT = "minibert-train-state-1"


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def rng_state(rng):
    """A numpy Generator's state as JSON-ready data."""
    return rng.bit_generator.state


def rng_from_state(state):
    """A numpy Generator restored from rng_state()."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"):
        raise ValueError(f"rng state must name a numpy bit generator, got {name!r}")
    bitgen = getattr(np.random, name)()
    bitgen.state = state
    return np.random.Generator(bitgen)


def save_train_state(run_dir, *, config, params, optimizer, rng, step, data_position, fingerprint,
                     ema=None, keep=2):
    """Write a complete checkpoint for `step` atomically and point LATEST at it; keep the newest `keep`.

    config: BertConfig     params: dict name -> array     optimizer: AdamW     rng: numpy Generator
    data_position: JSON-ready dict (where the data stream continues)
    fingerprint: JSON-ready dict of the settings a resumed run must share (config, data, options)
    Refuses (ValueError, nothing written) if a parameter or moment is not finite.
    Returns the checkpoint's directory.
    """
    for name, p in params.items():
        if not np.all(np.isfinite(p)):
            raise ValueError(f"parameter {name} has non-finite values at step {step}; checkpoint not written "
                             "(the previous one is kept)")
    os.makedirs(run_dir, exist_ok=True)
    name = f"step-{int(step):08d}"
    final = os.path.join(run_dir, name)
    tmp = os.path.join(run_dir, f".tmp-{name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        config.to_json(os.path.join(tmp, "config.json"))
        write_safetensors(os.path.join(tmp, "model.safetensors"),
                          {k: np.ascontiguousarray(p) for k, p in params.items()})
        slots = {f"m.{k}": a for k, a in optimizer.m.items()}
        slots.update({f"v.{k}": a for k, a in optimizer.v.items()})
        if ema is not None:
            slots.update({f"ema.{k}": a for k, a in ema.shadow.items()})
        write_safetensors(os.path.join(tmp, "optimizer.safetensors"),
                          {k: np.ascontiguousarray(a) for k, a in slots.items()})
        files = ["config.json", "model.safetensors", "optimizer.safetensors"]
        for f in files:
            _fsync_file(os.path.join(tmp, f))
        state = {
            "format": FORMAT, "step": int(step), "data_position": data_position, "rng": rng_state(rng),
            "optimizer": {"step": optimizer.step, "options": optimizer.options},
            "ema": None if ema is None else {"step": ema.step, "decay": ema.decay},
            "fingerprint": fingerprint,
            "sha256": {f: _sha256(os.path.join(tmp, f)) for f in files},
        }
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if os.path.exists(final):                # same step written before (e.g. a run resumed earlier)
            old = os.path.join(run_dir, f".old-{name}-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_latest(run_dir, name)
    _prune(run_dir, keep)
    return final


def _point_latest(run_dir, name):
    tmp = os.path.join(run_dir, f".LATEST-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(run_dir, "LATEST"))
    _fsync_dir(run_dir)


def _prune(run_dir, keep):
    """Remove all but the newest `keep` checkpoints, and leftovers of interrupted writes."""
    latest = latest_checkpoint(run_dir)
    names = sorted(n for n in os.listdir(run_dir) if n.startswith("step-"))
    for n in names[:-keep] if keep > 0 else []:
        if os.path.join(run_dir, n) != latest:
            shutil.rmtree(os.path.join(run_dir, n), ignore_errors=True)
    for n in os.listdir(run_dir):
        if n.startswith((".tmp-", ".old-")) and not n.endswith(f"-{os.getpid()}"):
            shutil.rmtree(os.path.join(run_dir, n), ignore_errors=True)


def latest_checkpoint(run_dir):
    """Directory of the newest complete checkpoint in run_dir, or None if there is none."""
    pointer = os.path.join(run_dir, "LATEST")
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    if not name.startswith("step-") or os.sep in name:
        raise ValueError(f"{pointer} must name a step-NNNNNNNN directory, got {name!r}")
    return os.path.join(run_dir, name)


def _fingerprint_diff(saved, wanted, prefix=""):
    """Paths where two nested JSON-like dicts differ."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        out = []
        for k in sorted(set(saved) | set(wanted)):
            out += _fingerprint_diff(saved.get(k), wanted.get(k), f"{prefix}{k}.")
        return out
    return [] if saved == wanted else [f"{prefix[:-1]}: checkpoint has {saved!r}, this run has {wanted!r}"]


def load_train_state(run_dir, fingerprint):
    """Read the newest checkpoint of run_dir, checking its files and that it belongs to this run.

    fingerprint: the dict this run would save; any difference raises ValueError listing the fields.
    Returns a dict with config, params, optimizer (AdamW), ema (EMA or None), rng, step, data_position;
    or None when run_dir holds no checkpoint yet.
    """
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        return None
    state_path = os.path.join(ckpt, "state.json")
    try:
        with open(state_path) as f:
            state = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"checkpoint {ckpt} is unreadable: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{state_path} is not a {FORMAT} file")
    for f, digest in state["sha256"].items():
        path = os.path.join(ckpt, f)
        if not os.path.isfile(path) or _sha256(path) != digest:
            raise ValueError(f"checkpoint file {path} is missing or does not match its recorded sha256")
    diff = _fingerprint_diff(_jsonable(state["fingerprint"]), _jsonable(fingerprint))
    if diff:
        raise ValueError(f"resume directory {run_dir} was written by a different run setup; differences: "
                         + "; ".join(diff[:8]))
    config = BertConfig.from_json(os.path.join(ckpt, "config.json"))
    params, _ = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    slots, _ = read_safetensors(os.path.join(ckpt, "optimizer.safetensors"))
    opts = dict(state["optimizer"]["options"])
    opts["betas"] = tuple(opts["betas"])
    optimizer = AdamW(params, **opts)
    optimizer.step = state["optimizer"]["step"]
    optimizer.m = {k: slots[f"m.{k}"] for k in params}
    optimizer.v = {k: slots[f"v.{k}"] for k in params}
    ema = None
    if state["ema"] is not None:
        ema = EMA(params, decay=state["ema"]["decay"])
        ema.step = state["ema"]["step"]
        ema.shadow = {k: slots[f"ema.{k}"] for k in params}
    return {"config": config, "params": params, "optimizer": optimizer, "ema": ema,
            "rng": rng_from_state(state["rng"]), "step": state["step"],
            "data_position": state["data_position"], "path": ckpt}


def _jsonable(obj):
    """obj as it reads back from JSON (tuples become lists), so saved and fresh fingerprints compare."""
    return json.loads(json.dumps(obj))
