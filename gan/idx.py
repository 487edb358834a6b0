"""IDX files (the MNIST / Fashion-MNIST format), read and checked, and where to find Fashion-MNIST.

An IDX file is a header and the raw array, all numbers big-endian (LeCun et al., the MNIST page):

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d >= 1
    4 d bytes   the d sizes, uint32 each
    the rest    prod(sizes) elements, row-major

Fashion-MNIST (Xiao et al. 2017) ships four of them, gzipped: {train,t10k}-images-idx3-ubyte.gz
((N, 28, 28) uint8, N = 60,000 / 10,000) and {train,t10k}-labels-idx1-ubyte.gz ((N,) uint8 in 0..9).
Every check below raises a ValueError that names the file; nothing is allocated before the header has
been checked against the file's length.
"""
import gzip
import os
import zlib

import numpy as np

DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_BYTES = 1 << 32                     # no IDX file of ours holds more than 4 GiB of data
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"       # Debian's package dataset-fashion-mnist
ENV_VAR = "FASHION_MNIST_DIR"
SPLITS = {"train": 60000, "test": 10000}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_exactly(f, n, path, what):
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: the file ends inside the {what} ({len(data)} of {n} bytes)")
    return data


def _open(path):
    """A binary file object for path, gunzipping when it starts with gzip's magic bytes."""
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb"), True
    f.seek(0)
    return f, False


def read_idx(path):
    """The array stored in an IDX file (gzipped or not), in native byte order.

    returns an ndarray of the header's shape and type; ValueError naming the file when the magic
    bytes, the type code, the sizes or the length do not fit together, or the gzip stream is broken.
    """
    path = os.fspath(path)
    f, zipped = _open(path)
    try:
        with f:
            magic = _read_exactly(f, 4, path, "header")
            if magic[:2] != b"\x00\x00" or magic[2] not in DTYPES or magic[3] == 0:
                raise ValueError(f"{path}: not an IDX file (magic bytes {magic.hex()}, expected 0000 then "
                                 f"a type code in {sorted(f'{c:02x}' for c in DTYPES)} and d >= 1)")
            dtype, ndim = np.dtype(DTYPES[magic[2]]), magic[3]
            shape = tuple(int(v) for v in np.frombuffer(_read_exactly(f, 4 * ndim, path, "sizes"), ">u4"))
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes > MAX_BYTES:
                raise ValueError(f"{path}: the header's sizes {shape} make {nbytes} bytes, more than an "
                                 f"IDX file here may hold ({MAX_BYTES})")
            if not zipped and os.path.getsize(path) != 4 + 4 * ndim + nbytes:
                raise ValueError(f"{path}: {os.path.getsize(path)} bytes, but a header of sizes {shape} "
                                 f"and type {dtype.name} needs {4 + 4 * ndim + nbytes}")
            data = _read_exactly(f, nbytes, path, "data")
            if f.read(1):
                raise ValueError(f"{path}: data continues after the {nbytes} bytes of sizes {shape}")
    except (OSError, EOFError, zlib.error) as err:          # gzip.BadGzipFile is an OSError
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot be read as a gzipped IDX file: {err}") from None
    return np.frombuffer(data, dtype).astype(dtype.newbyteorder("=")).reshape(shape)   # a writable copy


def find_folder(folder=None):
    """The folder holding Fashion-MNIST: `folder` if given, else $FASHION_MNIST_DIR, else Debian's."""
    for candidate in (folder, os.environ.get(ENV_VAR), DEBIAN_DIR):
        if candidate:
            return candidate
    return DEBIAN_DIR


def _file_in(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"Fashion-MNIST is not in {folder} (no {stem}.gz or {stem}). Install it with "
        f"`apt-get install dataset-fashion-mnist` (it goes to {DEBIAN_DIR}), or put the four files of "
        f"https://github.com/zalandoresearch/fashion-mnist in a folder named by --data-dir or ${ENV_VAR}")


def load_fashion_mnist(split="train", folder=None):
    """Images (N, 28, 28) uint8 and labels (N,) uint8 in 0..9 of one split ("train" or "test").

    folder: see find_folder. FileNotFoundError (saying how to get the files) when they are missing,
    ValueError naming the file when one is malformed or the two do not match.
    """
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, got {split!r}")
    folder = find_folder(folder)
    image_path, label_path = (_file_in(folder, stem) for stem in FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_path}: expected uint8 images of shape (N, 28, 28), got "
                         f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{label_path}: expected uint8 labels of shape (N,), got "
                         f"{labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{label_path}: {len(labels)} labels for the {len(images)} images of {image_path}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_path}: labels must lie in 0..9, found {int(labels.max())}")
    return images, labels


def write_idx(path, array, compress=None):
    """Write `array` as an IDX file (gzipped when compress, or when path ends in .gz). For tests and tools."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("=").str)
    if code is None or array.ndim < 1:
        raise ValueError(f"array: IDX stores {sorted(codes)} arrays of >= 1 dimension, got {array.dtype} "
                         f"{array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = np.ascontiguousarray(array, DTYPES[code]).tobytes()
    zipped = compress if compress is not None else os.fspath(path).endswith(".gz")
    with (gzip.open(path, "wb") if zipped else open(path, "wb")) as f:
        f.write(header + body)
