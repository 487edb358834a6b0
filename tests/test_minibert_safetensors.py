"""Safetensors reader/writer: round trips, agreement with the safetensors package, and fuzzing.

Malformed input of every kind must give ValueError: never another exception, a hang or a huge
allocation (the reader checks every size against the file's length before allocating).
"""
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibert as mb
from minibert.safetensors import parse_header


def sample_tensors():
    rng = np.random.default_rng(0)
    return {"a.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "b": rng.standard_normal(5), "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
            "half": rng.standard_normal((2, 2)).astype(np.float16), "empty": np.zeros((0, 3), np.float32),
            "flags": np.array([True, False])}


def test_round_trip_and_reference_package(tmp_path):
    path = str(tmp_path / "t.safetensors")
    t = sample_tensors()
    mb.write_safetensors(path, t, {"format": "pt"})
    back, meta = mb.read_safetensors(path)
    assert meta == {"format": "pt"} and back.keys() == t.keys()
    for k in t:
        np.testing.assert_array_equal(back[k], t[k], err_msg=k)
        assert back[k].dtype == t[k].dtype
    st_numpy = pytest.importorskip("safetensors.numpy", reason="cross-check needs safetensors")
    theirs = st_numpy.load_file(path)
    for k in t:
        np.testing.assert_array_equal(theirs[k], t[k], err_msg=f"safetensors reads our {k}")
    st_numpy.save_file({k: v for k, v in t.items() if k != "empty"}, str(tmp_path / "s.safetensors"))
    ours, _ = mb.read_safetensors(str(tmp_path / "s.safetensors"))
    for k in ours:
        np.testing.assert_array_equal(ours[k], t[k], err_msg=f"we read safetensors' {k}")


def test_bf16_is_widened_to_float32(tmp_path):
    x = np.array([1.0, -2.5, 3.140625], np.float32)
    raw = (x.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    path = tmp_path / "bf.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw)
    got, _ = mb.read_safetensors(str(path))
    np.testing.assert_array_equal(got["x"], x)


def _file_bytes():
    buf = {}
    t = sample_tensors()
    header, data, off = {}, b"", 0
    for k in sorted(t):
        raw = np.ascontiguousarray(t[k]).tobytes()
        header[k] = {"dtype": {"float32": "F32", "float64": "F64", "int64": "I64", "float16": "F16",
                               "bool": "BOOL"}[str(t[k].dtype)],
                     "shape": list(t[k].shape), "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    buf["header"] = header
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data, header, data


def _read_bytes(tmp_path, blob):
    path = tmp_path / "f.safetensors"
    path.write_bytes(blob)
    return mb.read_safetensors(str(path))


def test_truncation_at_every_position(tmp_path):
    blob, _, _ = _file_bytes()
    for n in range(len(blob)):
        with pytest.raises(ValueError):
            _read_bytes(tmp_path, blob[:n])
    _read_bytes(tmp_path, blob)                                  # the whole file is fine


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_or_are_a_valid_file(tmp_path_factory, blob):
    """Random bytes raise ValueError (no other exception), unless they happen to be a valid file: then
    they hold a header length n, a JSON object in the next n bytes, and the tensors it lists."""
    tmp = tmp_path_factory.mktemp("fuzz")
    try:
        tensors, meta = _read_bytes(tmp, blob)
    except ValueError:
        return
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    assert isinstance(header, dict) and 8 + n <= len(blob)
    assert set(tensors) == set(header) - {"__metadata__"}
    assert meta == header.get("__metadata__", {})


@settings(max_examples=200)
@given(st.binary(min_size=8, max_size=8))
def test_huge_header_length_is_refused_before_allocating(tmp_path_factory, prefix):
    with pytest.raises(ValueError):
        _read_bytes(tmp_path_factory.mktemp("len"), prefix + b"{}")


BAD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                       st.text(max_size=5), st.lists(st.integers(-5, 2**40), max_size=4),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300)
@given(st.data())
def test_random_header_edits_raise_value_error(tmp_path_factory, data):
    """Replace one field of one entry with anything: either the file still reads as valid (and then
    every tensor has the bytes its shape needs), or ValueError."""
    blob, header, raw = _file_bytes()
    name = data.draw(st.sampled_from(sorted(header)))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra", "__metadata__"]))
    value = data.draw(BAD_VALUES)
    h = json.loads(json.dumps(header))
    if field == "__metadata__":
        h["__metadata__"] = value
    else:
        h[name][field] = value
    text = json.dumps(h).encode()
    try:
        got, _ = _read_bytes(tmp_path_factory.mktemp("edit"), struct.pack("<Q", len(text)) + text + raw)
    except ValueError:
        return
    for k, arr in got.items():
        assert arr.size * arr.dtype.itemsize <= len(raw), k


@pytest.mark.parametrize("edit, word", [
    (lambda h: h["a.weight"].update(dtype="F8"), "dtype"),
    (lambda h: h["a.weight"].update(shape=[3, 5]), "bytes"),
    (lambda h: h["a.weight"].update(data_offsets=[0, 10 ** 9]), "past the end"),
    (lambda h: h["b"].update(data_offsets=h["a.weight"]["data_offsets"], shape=[6], dtype="F64"), "overlap"),
    (lambda h: h["b"].update(shape=[-5]), "non-negative"),
])
def test_named_header_errors(tmp_path, edit, word):
    _, header, raw = _file_bytes()
    edit(header)
    text = json.dumps(header).encode()
    with pytest.raises(ValueError, match=word):
        _read_bytes(tmp_path, struct.pack("<Q", len(text)) + text + raw)


def test_deeply_nested_header_is_a_value_error():
    with pytest.raises(ValueError):
        parse_header(b"[" * 100000 + b"]" * 100000, 0)


def test_pickles_are_refused_with_a_conversion_hint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ValueError, match="safe_serialization"):
        mb.load_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="pickle"):
        mb.read_safetensors(str(tmp_path / "pytorch_model.bin"))
    (tmp_path / "legacy.bin").write_bytes(b"\x80\x02}q\x00." + b"\x00" * 20)
    with pytest.raises(ValueError, match="pickle"):
        mb.read_safetensors(str(tmp_path / "legacy.bin"))


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    """A save that dies after writing its data but before the rename leaves the old file whole and
    no temporary behind; a save that meets an unwritable dtype touches nothing."""
    import minibert.safetensors as sft
    path = str(tmp_path / "m.safetensors")
    mb.write_safetensors(path, {"x": np.ones(3, np.float32)})
    before = (tmp_path / "m.safetensors").read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(sft.os, "fsync", crash)
    with pytest.raises(OSError):
        mb.write_safetensors(path, {"x": np.zeros(1000, np.float32)})
    monkeypatch.undo()
    with pytest.raises(ValueError, match="dtype"):
        mb.write_safetensors(path, {"a": np.ones(3), "z": np.array(["text"])})
    assert (tmp_path / "m.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
