"""Hugging Face BERT checkpoints: load_pretrained(dir) and save_pretrained(dir, config, params).

A directory holds config.json and model.safetensors (or shards listed in model.safetensors.index.json).
Names map one to one to ours after dropping the 'bert.' prefix; the only other change is that linear
weights are stored (C_out, C_in) by PyTorch and (C_in, C_out) here, so the names in TRANSPOSED are
transposed on the way in and on the way out.

A folder this package writes (save_pretrained, and the task models through save_folder) appears all at
once: its files are written into a temporary sibling, listed with their sizes and sha256 in manifest.json,
and the sibling is renamed into place. An existing folder is replaced only when it is empty or one that
save_folder wrote; anything else is left alone. check_folder verifies a folder against its manifest, and
load_pretrained checks the vocabulary file (when there is one) against the embedding.
"""
import hashlib
import json
import os
import re
import shutil

import numpy as np

from .config import BertConfig
from .params import TRANSPOSED, check_params, encoder_param_shapes, head_param_shapes
from .safetensors import read_safetensors, write_safetensors
from .vocab import keep_token_rows
# In checkpoints but not parameters of ours: a buffer, the tied decoder (checked below), the NSP head.
SKIPPED = ("embeddings.position_ids", "cls.predictions.decoder.weight",
           "cls.predictions.decoder.bias", "cls.seq_relationship.weight", "cls.seq_relationship.bias")
# Older checkpoints (converted from TensorFlow) name LayerNorm parameters gamma / beta.
RENAMED = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}
POOLER = ("pooler.dense.weight", "pooler.dense.bias")
_CONVERT = ("convert it once with transformers: BertModel.from_pretrained(dir)"
            ".save_pretrained(dir, safe_serialization=True) (BertForMaskedLM to keep the MLM head)")


def our_name(hf_name):
    """Hugging Face name -> our key (no 'bert.' prefix, LayerNorm weight/bias)."""
    name = hf_name[5:] if hf_name.startswith("bert.") else hf_name
    for old, new in RENAMED.items():
        if name.endswith(old):
            name = name[: -len(old)] + new
    return name


def is_transposed(name):
    return name.endswith(TRANSPOSED)


def _read_weights(path):
    """{hf name: array} from model.safetensors or its shards; refuses pickles with a message."""
    single = os.path.join(path, "model.safetensors")
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(single):
        return read_safetensors(single)[0]
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            raise ValueError(f"{index}: not a valid safetensors index ({err})") from None
        tensors = {}
        for shard in shards:
            if not isinstance(shard, str) or os.path.basename(shard) != shard:
                raise ValueError(f"{index}: shard name {shard!r} must be a plain file name")
            tensors.update(read_safetensors(os.path.join(path, shard))[0])
        return tensors
    for other in ("pytorch_model.bin", "tf_model.h5", "model.ckpt.index", "flax_model.msgpack"):
        if os.path.isfile(os.path.join(path, other)):
            raise ValueError(f"{path} holds {other} but no model.safetensors; minibert reads only "
                             f"safetensors (a .bin is a pickle and is never unpickled): {_CONVERT}")
    raise FileNotFoundError(f"no model.safetensors in {path}")


MANIFEST = "manifest.json"
FOLDER_FORMAT = "minibert-folder-1"
UNFINISHED = ".unfinished"        # marks a temporary folder of save_folder until its manifest is written


def file_sha256(path):
    """The sha256 of a file's bytes, as hex, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass                                     # some file systems cannot sync a directory
    finally:
        os.close(fd)


def save_folder(path, writers):
    """Write a folder of files that becomes visible all at once, then return path.

    writers: dict file name -> function(file_path) that writes that file (e.g. a lambda around
    write_safetensors or save_vocab). The files go into a temporary sibling .NAME.tmp-PID, manifest.json
    records each file's size and sha256, everything is flushed, and the sibling is renamed to path.
    path may not exist yet, be an empty folder, or be a folder save_folder wrote (it is then replaced: the
    old one is renamed aside first and removed after the new one is in place). Any other existing path
    raises FileExistsError and is left untouched. What a killed save left beside path is cleared first
    (see _recover_leftovers).
    """
    path = os.path.abspath(os.fspath(path))
    for name in writers:
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", "..", MANIFEST):
            raise ValueError(f"writers: file names must be plain names other than {MANIFEST}, got {name!r}")
    _recover_leftovers(path)
    replacing = _check_replaceable(path)
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{base}.tmp-{os.getpid()}")
    old = os.path.join(parent, f".{base}.old-{os.getpid()}")
    if os.path.lexists(tmp) or os.path.lexists(old):
        raise FileExistsError(f"{tmp} or {old} exists (another save of {path} was interrupted); "
                              "move it away and save again")
    os.makedirs(tmp)
    try:
        open(os.path.join(tmp, UNFINISHED), "w").close()
        for name, write in writers.items():
            write(os.path.join(tmp, name))
            _fsync(os.path.join(tmp, name))
        files = {n: {"bytes": os.path.getsize(os.path.join(tmp, n)), "sha256": file_sha256(os.path.join(tmp, n))}
                 for n in sorted(writers)}
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump({"format": FOLDER_FORMAT, "files": files}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.remove(os.path.join(tmp, UNFINISHED))
        _fsync(tmp)
        if replacing:
            os.replace(path, old)                # from here until the next line, only `old` holds it
        os.replace(tmp, path)
        _fsync(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if replacing and os.path.isdir(old) and not os.path.exists(path):
            os.replace(old, path)                # put the previous folder back
        raise
    if replacing:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True                              # it exists (another user's): leave its files alone
    return True


def _recover_leftovers(path):
    """Clear what an interrupted save_folder of path left beside it, once its process is gone: a .tmp-PID
    folder still marked unfinished, or complete but never renamed, is removed; a .old-PID folder (the previous
    version, renamed aside) is put back when path is missing (the crash fell between the two renames),
    and removed when a complete path replaced it. Folders with these names that are not ours stay."""
    parent, base = os.path.split(path)
    if not os.path.isdir(parent):
        return
    for n in sorted(os.listdir(parent)):
        m = re.fullmatch(rf"\.{re.escape(base)}\.(tmp|old)-(\d+)", n)
        if not m or _alive(int(m.group(2))):
            continue
        where = os.path.join(parent, n)
        if m.group(1) == "tmp" and os.path.isfile(os.path.join(where, UNFINISHED)):
            shutil.rmtree(where, ignore_errors=True)
        elif _is_complete(where):
            if m.group(1) == "old" and not os.path.lexists(path):
                os.replace(where, path)
            elif m.group(1) == "tmp" or _is_complete(path):
                shutil.rmtree(where, ignore_errors=True)


def _is_complete(path):
    """True for a folder save_folder finished: a valid manifest, its files intact, nothing else in it."""
    try:
        return check_folder(path) is not None and set(os.listdir(path)) == set(_read_manifest(path)) | {MANIFEST}
    except (ValueError, OSError):
        return False


def _check_replaceable(path):
    """False if path does not exist, True if it may be replaced; FileExistsError otherwise."""
    if not os.path.lexists(path):
        return False
    if not os.path.isdir(path) or os.path.islink(path):
        raise FileExistsError(f"{path} exists and is not a folder; it is left alone (choose another path)")
    names = os.listdir(path)
    if names and MANIFEST not in names:
        raise FileExistsError(f"{path} exists and holds files this package did not write "
                              f"({', '.join(sorted(names)[:4])}); it is left alone (choose another path)")
    if names:
        recorded = set(_read_manifest(path))
        foreign = sorted(set(names) - recorded - {MANIFEST})
        if foreign:
            raise FileExistsError(f"{path} holds files that its manifest does not list ({', '.join(foreign[:4])});"
                                  " it is left alone (choose another path)")
    return True


def _read_manifest(path):
    """{file name: {"bytes", "sha256"}} of a folder's manifest.json; ValueError if it is malformed."""
    where = os.path.join(path, MANIFEST)
    try:
        with open(where, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{where}: unreadable ({type(err).__name__}: {str(err)[:200]})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(manifest, dict) or manifest.get("format") != FOLDER_FORMAT or not isinstance(files, dict)
            or not files or not all(isinstance(n, str) and os.path.basename(n) == n and isinstance(v, dict)
                                    and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
                                    for n, v in files.items())):
        raise ValueError(f"{where}: expected {{'format': '{FOLDER_FORMAT}', 'files': {{name: {{'bytes', "
                         f"'sha256'}}}}}} with at least one file, got {str(manifest)[:200]}")
    return files


def check_folder(path):
    """Verify a folder against its manifest.json: every listed file present, of its size and sha256.

    Returns the list of files checked, or None for a folder without a manifest (one from elsewhere, such
    as a Hugging Face download). Raises ValueError naming the first file that does not match, or
    FileNotFoundError (mentioning an interrupted replacement, when one left its old folder aside).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        parent, base = os.path.split(os.path.abspath(path))
        aside = [n for n in os.listdir(parent) if n.startswith(f".{base}.old-")] if os.path.isdir(parent) else []
        hint = f"; a save that replaced it was interrupted, the previous one is {aside[0]}" if aside else ""
        raise FileNotFoundError(f"no folder at {path}{hint}")
    if not os.path.isfile(os.path.join(path, MANIFEST)):
        return None
    files = _read_manifest(path)
    for name, info in files.items():
        where = os.path.join(path, name)
        if not os.path.isfile(where):
            raise ValueError(f"{where} is missing; the folder's manifest lists it (the folder is incomplete)")
        if os.path.getsize(where) != info["bytes"] or file_sha256(where) != info["sha256"]:
            raise ValueError(f"{where} does not match the size and sha256 the folder's manifest records "
                             "(changed or damaged after it was saved)")
    return sorted(files)


def check_vocab_size(path, config):
    """When the folder has a vocab.txt, its line count must not exceed the embedding's rows (vocab_size):
    ids past the embedding would index nothing. ValueError naming both otherwise."""
    vocab = os.path.join(path, "vocab.txt")
    if not os.path.isfile(vocab):
        return
    with open(vocab, "rb") as f:
        lines = sum(1 for _ in f)
    if lines > config.vocab_size:
        raise ValueError(f"{vocab} has {lines} tokens but the model's embedding has {config.vocab_size} rows "
                         f"(config.vocab_size): the vocabulary and the weights do not belong together")


def load_pretrained(path, dtype=np.float32, keep_tokens=None):
    """Read a Hugging Face BERT directory.

    path: directory with config.json and model.safetensors   dtype: float dtype of the parameters
    keep_tokens: None, or the old ids of a simplified vocabulary (vocab.simplify_vocab): only those rows
    of the word embeddings and the MLM bias are kept, and config.vocab_size follows
    returns (BertConfig, params) with params keyed like encoder_param_shapes / head_param_shapes;
    the pooler and the MLM head are included when the checkpoint has them.
    """
    check_folder(path)                           # FileNotFoundError (with a hint after an interrupted save)
    config = BertConfig.from_json(os.path.join(path, "config.json"))
    check_vocab_size(path, config)
    raw = _read_weights(path)
    params, decoder = {}, None
    for hf_name, a in raw.items():
        name = our_name(hf_name)
        if name == "cls.predictions.decoder.weight":
            decoder = a
        if name in SKIPPED:
            continue
        if a.dtype.kind != "f":
            raise ValueError(f"checkpoint tensor {hf_name!r} has dtype {a.dtype}, expected floats")
        params[name] = np.ascontiguousarray((a.T if is_transposed(name) else a).astype(dtype))
    wanted = dict(encoder_param_shapes(config))
    heads = head_param_shapes(config)
    for group in (POOLER, tuple(n for n in heads if n not in POOLER)):
        present = [n for n in group if n in params]
        if present and len(present) < len(group):
            missing = sorted(set(group) - set(present))
            raise ValueError(f"checkpoint has part of a head: {present} but not {missing}")
        wanted.update({n: heads[n] for n in present})
    check_params(params, wanted)
    unexpected = sorted(set(params) - set(wanted))
    if unexpected:
        raise ValueError(f"checkpoint has tensors that are not part of a BERT: {unexpected[:5]}")
    if decoder is not None and not np.array_equal(decoder, raw.get(
            "bert.embeddings.word_embeddings.weight", raw.get("embeddings.word_embeddings.weight"))):
        raise ValueError("cls.predictions.decoder.weight differs from the word embeddings; "
                         "only the tied MLM decoder is supported")
    if keep_tokens is not None:
        config, params = keep_token_rows(config, params, keep_tokens)
    return config, params


def save_pretrained(path, config, params, extra_files=None):
    """Write config.json and model.safetensors that transformers loads into BertModel and
    BertForMaskedLM, through save_folder: the folder appears all at once, with a manifest.

    extra_files: dict name -> function(file_path) for more files of the same folder (e.g. vocab.txt:
    lambda p: save_vocab(tokens, p)), written with the weights so they can never disagree.
    """
    shapes = dict(encoder_param_shapes(config))
    shapes.update({n: s for n, s in head_param_shapes(config).items() if n in params})
    check_params(params, shapes)
    tensors = {}
    for name in shapes:
        a = np.asarray(params[name])
        hf = name if name.startswith("cls.") else "bert." + name
        tensors[hf] = np.ascontiguousarray(a.T if is_transposed(name) else a)
    if "cls.predictions.bias" in params:
        # transformers also keeps the decoder's own bias entry; it is the same vector
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    has_mlm = "cls.predictions.bias" in params
    if "architectures" not in config.extra:
        config = BertConfig.from_dict(dict(config.to_dict(), architectures=[
            "BertForMaskedLM" if has_mlm else "BertModel"]))
    writers = {"model.safetensors": lambda p: write_safetensors(p, tensors, {"format": "pt"}),
               "config.json": config.to_json}
    writers.update(extra_files or {})
    return save_folder(path, writers)
