"""Hugging Face BERT checkpoints: load_pretrained(dir) and save_pretrained(dir, config, params).

A directory holds config.json and model.safetensors (or shards listed in model.safetensors.index.json).
Names map one to one to ours after dropping the 'bert.' prefix; the only other change is that linear
weights are stored (C_out, C_in) by PyTorch and (C_in, C_out) here, so the names in TRANSPOSED are
transposed on the way in and on the way out.
"""
import json
import os

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
        except (ValueError, KeyError, TypeError, AttributeError) as err:
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


def load_pretrained(path, dtype=np.float32, keep_tokens=None):
    """Read a Hugging Face BERT directory.

    path: directory with config.json and model.safetensors   dtype: float dtype of the parameters
    keep_tokens: None, or the old ids of a simplified vocabulary (vocab.simplify_vocab): only those rows
    of the word embeddings and the MLM bias are kept, and config.vocab_size follows
    returns (BertConfig, params) with params keyed like encoder_param_shapes / head_param_shapes;
    the pooler and the MLM head are included when the checkpoint has them.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint directory not found: {path}")
    config = BertConfig.from_json(os.path.join(path, "config.json"))
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


def save_pretrained(path, config, params):
    """Write config.json and model.safetensors that transformers loads into BertModel and
    BertForMaskedLM. Each file is replaced atomically (weights first, then the config)."""
    shapes = dict(encoder_param_shapes(config))
    shapes.update({n: s for n, s in head_param_shapes(config).items() if n in params})
    check_params(params, shapes)
    os.makedirs(path, exist_ok=True)
    tensors = {}
    for name in shapes:
        a = np.asarray(params[name])
        hf = name if name.startswith("cls.") else "bert." + name
        tensors[hf] = np.ascontiguousarray(a.T if is_transposed(name) else a)
    if "cls.predictions.bias" in params:
        # transformers also keeps the decoder's own bias entry; it is the same vector
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    write_safetensors(os.path.join(path, "model.safetensors"), tensors, {"format": "pt"})
    has_mlm = "cls.predictions.bias" in params
    if "architectures" not in config.extra:
        config = BertConfig.from_dict(dict(config.to_dict(), architectures=[
            "BertForMaskedLM" if has_mlm else "BertModel"]))
    config.to_json(os.path.join(path, "config.json"))
    return path
