"""Training checkpoints that resume exactly: weights, optimizer moments, EMA, RNG state, step, data position.

A run directory holds numbered checkpoints and a pointer to the newest complete one:

    run_dir/LATEST                    "step-00000120"
    run_dir/step-00000120/config.json         the model config (Hugging Face format)
                          model.safetensors   the weights, as the training code holds them
                          optimizer.safetensors   Adam moments "m.<name>", "v.<name>", EMA "ema.<name>"
                          state.json          step, data position, RNG state, options, fingerprint, sha256s

A checkpoint is written into a temporary directory, flushed to disk, renamed into place, and only then
is LATEST replaced (os.replace is atomic), so a crash at any moment leaves the previous checkpoint
intact and LATEST pointing at a complete one. Loading verifies every file's sha256 and every field of
state.json; a damaged newest checkpoint makes it fall back to the newest intact one, and say so.

Nothing here deletes or replaces what it did not write: only folders named step-NNNNNNNN (or the
.tmp-/.old- leftovers of its own interrupted writes) that hold nothing but a checkpoint's files are
pruned or replaced; anything else in the run directory (a user's step-0-notes/, .tmp-mine/) stays.
"""
import json
import os
import re
import shutil
import sys

import numpy as np

from .checkpoint import file_sha256
from .config import BertConfig
from .optim import EMA, AdamW
from .safetensors import read_safetensors, write_safetensors

FORMAT = "minibert-train-state-1"
FILES = ("config.json", "model.safetensors", "optimizer.safetensors")     # recorded in state.json's sha256
STEP_RE = re.compile(r"step-\d{8}")
LEFTOVER_RE = re.compile(r"\.(tmp|old)-step-\d{8}-\d+")
# what a checkpoint folder may hold: its files, state.json, and the temporaries of their atomic writes
OWN_FILE_RE = re.compile(r"(config\.json|model\.safetensors|optimizer\.safetensors|state\.json)"
                         r"(\.tmp\d*)?")


def is_own_folder(path):
    """True when path is a folder that holds only files a checkpoint write makes (nothing of a user's)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return all(OWN_FILE_RE.fullmatch(n) and os.path.isfile(os.path.join(path, n)) for n in names)


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
    try:
        bitgen.state = state
    except (TypeError, KeyError, ValueError, OverflowError) as err:
        raise ValueError(f"rng state for {name} rejected: {type(err).__name__}: {err}") from None
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
    if os.path.exists(final) and not is_own_folder(final):
        raise FileExistsError(f"{final} exists and holds files that are not a checkpoint's; "
                              "it is left alone (move it away, or choose another --out)")
    if os.path.isdir(tmp) and is_own_folder(tmp):              # an earlier process with our pid
        shutil.rmtree(tmp)
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
            "sha256": {f: file_sha256(os.path.join(tmp, f)) for f in files},
        }
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        _move_into_place(tmp, final, os.path.join(run_dir, f".old-{name}-{os.getpid()}"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_latest(run_dir, name)
    _prune(run_dir, keep)
    return final


def _move_into_place(tmp, final, old):
    """Rename the finished folder tmp to final; a final written before (the same step, e.g. by a run
    resumed earlier; checked to be a checkpoint's folder) is renamed to old first, then removed."""
    if os.path.exists(final):
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _point_latest(run_dir, name):
    tmp = os.path.join(run_dir, f".LATEST-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(run_dir, "LATEST"))
    _fsync_dir(run_dir)


def _prune(run_dir, keep):
    """Remove all but the newest `keep` checkpoints, and leftovers of interrupted writes: only folders
    with our names (step-NNNNNNNN, .tmp-step-NNNNNNNN-PID, .old-...) holding only a checkpoint's files."""
    latest = latest_checkpoint(run_dir)
    names = sorted(n for n in os.listdir(run_dir) if STEP_RE.fullmatch(n))
    doomed = [n for n in (names[:-keep] if keep > 0 else []) if os.path.join(run_dir, n) != latest]
    doomed += [n for n in os.listdir(run_dir)
               if LEFTOVER_RE.fullmatch(n) and not n.endswith(f"-{os.getpid()}")]
    for n in doomed:
        if is_own_folder(os.path.join(run_dir, n)):
            shutil.rmtree(os.path.join(run_dir, n), ignore_errors=True)


def latest_checkpoint(run_dir):
    """Directory of the newest complete checkpoint in run_dir, or None if there is none."""
    pointer = os.path.join(run_dir, "LATEST")
    if not os.path.isfile(pointer):
        return None
    with open(pointer, "rb") as f:
        name = f.read(64).decode("utf-8", "replace").strip()
    if not STEP_RE.fullmatch(name):
        raise ValueError(f"{pointer} must name a step-NNNNNNNN directory, got {name!r}")
    return os.path.join(run_dir, name)


def holds_checkpoints(run_dir):
    """True when run_dir has a LATEST pointer or a step-NNNNNNNN checkpoint folder."""
    return os.path.isdir(run_dir) and any(n == "LATEST" or (STEP_RE.fullmatch(n) and is_own_folder(
        os.path.join(run_dir, n))) for n in os.listdir(run_dir))


def _fingerprint_diff(saved, wanted, prefix=""):
    """Paths where two nested JSON-like dicts differ."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        out = []
        for k in sorted(set(saved) | set(wanted)):
            out += _fingerprint_diff(saved.get(k), wanted.get(k), f"{prefix}{k}.")
        return out
    return [] if saved == wanted else [f"{prefix[:-1]}: checkpoint has {saved!r}, this run has {wanted!r}"]


def load_train_state(run_dir, fingerprint, log=None):
    """Read the newest intact checkpoint of run_dir, checking its files and that it belongs to this run.

    fingerprint: the dict this run would save; any difference raises ValueError listing the fields.
    log: where to say that a damaged newer checkpoint was passed over (default stderr; the result's
    "skipped" lists them too).
    Returns a dict with config, params, optimizer (AdamW), ema (EMA or None), rng, step, data_position,
    path, skipped (list of (folder, reason)); or None when run_dir holds no checkpoint yet.
    Raises ValueError when checkpoints exist but none is intact (the reason for each is in the message).
    """
    candidates, skipped = _candidates(run_dir)
    if not candidates:
        if skipped:
            raise ValueError(f"no checkpoint in {run_dir}: " + "; ".join(r for _, r in skipped))
        return None
    for ckpt in candidates:
        try:
            state = _read_state(ckpt)
        except ValueError as err:
            skipped.append((ckpt, str(err)))
            continue
        diff = _fingerprint_diff(_jsonable(state["fingerprint"]), _jsonable(fingerprint))
        if diff:
            raise ValueError(f"resume directory {run_dir} was written by a different run setup; differences: "
                             + "; ".join(diff[:8]))
        out = _restore(ckpt, state)
        out["skipped"] = skipped
        for folder, reason in skipped:
            print(f"skipped damaged checkpoint {folder}: {reason}; resuming from {ckpt}",
                  file=sys.stderr if log is None else log, flush=True)
        return out
    raise ValueError(f"no intact checkpoint in {run_dir}: " + "; ".join(r for _, r in skipped))


def _candidates(run_dir):
    """(checkpoint folders to try, newest first: the one LATEST names, then every other step-NNNNNNNN;
    [(LATEST, what is wrong with it)] or [])."""
    if not os.path.isdir(run_dir):
        return [], []
    names = sorted((n for n in os.listdir(run_dir) if STEP_RE.fullmatch(n)), reverse=True)
    first, notes = [], []
    try:
        latest = latest_checkpoint(run_dir)
        if latest is not None:
            first = [latest]
    except (ValueError, OSError) as err:          # a damaged pointer: the folders themselves are tried
        notes.append((os.path.join(run_dir, "LATEST"), str(err)))
    rest = [os.path.join(run_dir, n) for n in names if [os.path.join(run_dir, n)] != first]
    return first + rest, notes


def _read_state(ckpt):
    """state.json of a checkpoint, every field checked, every file's sha256 verified; ValueError if not."""
    state_path = os.path.join(ckpt, "state.json")
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{state_path} is unreadable ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{state_path} is not a {FORMAT} file")
    problem = _state_problem(state)
    if problem:
        raise ValueError(f"{state_path}: {problem}")
    for f, digest in state["sha256"].items():
        path = os.path.join(ckpt, f)
        if not os.path.isfile(path) or file_sha256(path) != digest:
            raise ValueError(f"checkpoint file {path} is missing or does not match its recorded sha256")
    return state


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _state_problem(state):
    """What is wrong with the fields of a state.json (a str), or None."""
    sha = state.get("sha256")
    if not isinstance(sha, dict) or sorted(sha) != sorted(FILES) or not all(
            isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in sha.values()):
        return f"sha256 must map exactly {list(FILES)} to hex digests, got {sha!r:.200}"
    pos = state.get("data_position")
    if not _is_count(state.get("step")):
        return f"step must be a non-negative int, got {state.get('step')!r:.80}"
    if not (isinstance(pos, dict) and _is_count(pos.get("epoch")) and _is_count(pos.get("index"))):
        return f"data_position must be {{'epoch': int, 'index': int}}, got {pos!r:.200}"
    opt = state.get("optimizer")
    if not (isinstance(opt, dict) and _is_count(opt.get("step")) and isinstance(opt.get("options"), dict)
            and isinstance(opt["options"].get("betas"), list) and len(opt["options"]["betas"]) == 2):
        return f"optimizer must be {{'step': int, 'options': {{..., 'betas': [b1, b2]}}}}, got {opt!r:.200}"
    ema = state.get("ema")
    if ema is not None and not (isinstance(ema, dict) and _is_count(ema.get("step"))
                                and isinstance(ema.get("decay"), float) and 0 <= ema["decay"] < 1):
        return f"ema must be null or {{'step': int, 'decay': float in [0, 1)}}, got {ema!r:.200}"
    if not isinstance(state.get("rng"), dict) or not isinstance(state.get("fingerprint"), dict):
        return "rng and fingerprint must be objects"
    return None


def _restore(ckpt, state):
    """The training objects of a checkpoint whose state.json passed _read_state."""
    config = BertConfig.from_json(os.path.join(ckpt, "config.json"))
    params, _ = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    slots, _ = read_safetensors(os.path.join(ckpt, "optimizer.safetensors"))
    names = [f"{p}.{k}" for k in params for p in ("m", "v") + (("ema",) if state["ema"] else ())]
    missing = [n for n in names if n not in slots or slots[n].shape != params[n.split(".", 1)[1]].shape]
    if missing:
        raise ValueError(f"{ckpt}/optimizer.safetensors lacks (or has the wrong shape for) {missing[:3]}")
    try:
        opts = dict(state["optimizer"]["options"], betas=tuple(state["optimizer"]["options"]["betas"]))
        optimizer = AdamW(params, **opts)
        rng = rng_from_state(state["rng"])
    except (TypeError, KeyError, ValueError) as err:
        raise ValueError(f"{ckpt}/state.json: optimizer options or rng state rejected ({err})") from None
    optimizer.step = state["optimizer"]["step"]
    optimizer.m = {k: slots[f"m.{k}"] for k in params}
    optimizer.v = {k: slots[f"v.{k}"] for k in params}
    ema = None
    if state["ema"] is not None:
        ema = EMA(params, decay=state["ema"]["decay"])
        ema.step = state["ema"]["step"]
        ema.shadow = {k: slots[f"ema.{k}"] for k in params}
    return {"config": config, "params": params, "optimizer": optimizer, "ema": ema, "rng": rng,
            "step": state["step"], "data_position": state["data_position"], "path": ckpt}


def _jsonable(obj):
    """obj as it reads back from JSON (tuples become lists), so saved and fresh fingerprints compare."""
    return json.loads(json.dumps(obj))
