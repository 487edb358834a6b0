"""Safetensors files in NumPy: an 8-byte little-endian header length N, N bytes of JSON, raw data.

    {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}

Offsets count from the first byte after the header. The reader trusts nothing: every size is checked
against the file's real length before anything is allocated, so a malformed or truncated file gives a
ValueError naming the tensor and the problem, never a crash, a hang or a huge allocation. Nothing is
ever unpickled; a pickle or zip file (PyTorch's .bin) is recognised and refused.
"""
import json
import os
import struct

import numpy as np

# safetensors dtype -> (numpy dtype, bytes per element); BF16 is read as raw uint16 and widened
DTYPES = {"F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2),
          "BF16": (np.uint16, 2), "I64": (np.int64, 8), "I32": (np.int32, 4),
          "I16": (np.int16, 2), "I8": (np.int8, 1), "U8": (np.uint8, 1), "BOOL": (np.bool_, 1)}
_WRITABLE = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
             np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
             np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
MAX_HEADER = 100 << 20          # 100 MB of JSON is far more than any real header


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_header(header_bytes, data_size, path="<bytes>"):
    """Validate a header against the size of the data that follows it.

    returns ({name: (dtype code, shape tuple, begin, end)}, metadata dict)
    """
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ValueError(f"{path}: header is not valid UTF-8 JSON ({type(err).__name__}: {err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    entries = {}
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{where}: entry must be an object with exactly dtype, shape, "
                             f"data_offsets; got {info!r:.200}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str) or code not in DTYPES:
            raise ValueError(f"{where}: dtype {code!r:.50} is not one of {sorted(DTYPES)}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r:.200}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_int, offsets))
                or not 0 <= offsets[0] <= offsets[1]):
            raise ValueError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                             f"got {offsets!r:.200}")
        begin, end = offsets
        if end > data_size:
            raise ValueError(f"{where}: data_offsets end {end} is past the end of the data "
                             f"({data_size} bytes; the file is truncated or the header is wrong)")
        count = 1
        for s in shape:
            count *= s                                    # Python int: no overflow, checked next
        if count >= 2**62 or any(s >= 2**62 for s in shape):   # e.g. [2**64, 0]: no bytes, no array
            raise ValueError(f"{where}: shape {shape} is too large for an array (a dimension or "
                             f"the element count reaches 2^62)")
        if count * DTYPES[code][1] != end - begin:
            raise ValueError(f"{where}: shape {shape} of {code} needs {count * DTYPES[code][1]} bytes, "
                             f"data_offsets span {end - begin}")
        entries[name] = (code, tuple(shape), begin, end)
    spans = sorted((b, e, n) for n, (_, _, b, e) in entries.items() if e > b)
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{path}: tensors {n0!r} and {n1!r} overlap (bytes {b0}-{e0} and {b1}-{e1})")
    return entries, metadata


def _refuse_pickle(first_bytes, path):
    """A zip (torch.save) or a raw pickle (protocol 2-5) gets a message on how to convert it."""
    if first_bytes[:4] == b"PK\x03\x04" or (first_bytes[:1] == b"\x80" and 2 <= first_bytes[1] <= 5):
        raise ValueError(f"{path} looks like a PyTorch pickle/zip checkpoint, not safetensors; "
                         "it is never unpickled here. Convert it once with transformers: "
                         "BertModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)")


def read_safetensors(path):
    """Read every tensor of a .safetensors file.

    returns ({name: numpy array}, metadata dict); BF16 tensors are returned as float32
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"safetensors file not found: {path}")
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: file of {file_size} bytes is too short for the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if not 2 <= n <= min(MAX_HEADER, file_size - 8):
            _refuse_pickle(head, path)
            raise ValueError(f"{path}: header length {n} is impossible for a file of {file_size} bytes "
                             f"(must be 2..{min(MAX_HEADER, file_size - 8)})")
        header_bytes = f.read(n)
        data_size = file_size - 8 - n
        entries, metadata = parse_header(header_bytes, data_size, path)
        data = f.read(data_size)
    if len(data) != data_size:
        raise ValueError(f"{path}: file changed while being read")
    tensors = {}
    for name, (code, shape, begin, end) in entries.items():
        dtype, _ = DTYPES[code]
        if end == begin:
            tensors[name] = np.zeros(shape, np.float32 if code == "BF16" else dtype)
            continue
        a = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"), count=(end - begin)
                          // np.dtype(dtype).itemsize, offset=begin).reshape(shape)
        if code == "BF16":
            # bfloat16 is the top half of a float32: shift the 16 bits into place
            a = (a.astype(np.uint32) << 16).view(np.float32)
        elif code == "BOOL":
            if a.view(np.uint8).max(initial=0) > 1:
                raise ValueError(f"{path}: tensor {name!r} is BOOL but holds bytes other than 0 and 1")
            a = a.copy()
        else:
            a = a.astype(a.dtype.newbyteorder("="), copy=True)   # own, writable, native order
        tensors[name] = a
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Write {name: array} atomically (a temporary file, then a rename).

    Names are sorted, data is packed in that order, little-endian, C order.
    """
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"tensor names must be strings other than '__metadata__', got {name!r}")
        a = np.asarray(tensors[name])
        if a.dtype not in _WRITABLE:
            raise ValueError(f"tensor {name!r}: dtype {a.dtype} cannot be written to safetensors")
        raw = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _WRITABLE[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)                       # pad so the data starts 8-byte aligned
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in chunks:
                f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)                             # the old file stays whole until this instant
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
