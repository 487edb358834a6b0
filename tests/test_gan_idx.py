"""IDX files: round trips, every malformation refused with a ValueError naming the file, Fashion-MNIST."""
import gzip
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan import idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("zipped", [False, True])
def test_round_trip(tmp_path, dtype, zipped):
    rng = np.random.default_rng(0)
    for shape in [(7,), (3, 5, 4), (2, 0, 3), (1, 1, 1, 9)]:
        a = (rng.standard_normal(shape) * 100).astype(dtype)
        path = tmp_path / f"a-{len(shape)}{'.gz' if zipped else ''}"
        idx.write_idx(path, a)
        with open(path, "rb") as f:
            assert (f.read(2) == b"\x1f\x8b") == zipped
        b = idx.read_idx(path)
        assert b.dtype == np.dtype(dtype) and b.shape == shape and b.flags.writeable
        np.testing.assert_array_equal(b, a, err_msg=f"{np.dtype(dtype).name} {shape}")


def test_the_header_is_big_endian(tmp_path):
    path = tmp_path / "h"
    idx.write_idx(path, np.arange(6, dtype=np.int16).reshape(2, 3))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2]) and raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:16] == bytes([0, 0, 0, 1])                    # 0, 1 as big-endian int16


def _valid(tmp_path):
    path = tmp_path / "ok"
    idx.write_idx(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    return path.read_bytes()


@pytest.mark.parametrize("case,mutate,message", [
    ("not zero first", lambda r: b"\x01" + r[1:], "not an IDX file"),
    ("unknown type", lambda r: r[:2] + b"\x07" + r[3:], "not an IDX file"),
    ("no dimensions", lambda r: r[:3] + b"\x00" + r[4:], "not an IDX file"),
    ("short header", lambda r: r[:3], "ends inside the header"),
    ("short sizes", lambda r: r[:9], "ends inside the sizes"),
    ("short data", lambda r: r[:-1], "needs"),
    ("trailing data", lambda r: r + b"\x00", "needs"),
    ("huge sizes", lambda r: r[:4] + b"\xff\xff\xff\xff" * 3, "more than an IDX file"),
])
@pytest.mark.parametrize("zipped", [False, True])
def test_malformed_files_are_refused_naming_the_file(tmp_path, case, mutate, message, zipped):
    raw = mutate(_valid(tmp_path))
    path = tmp_path / ("bad.gz" if zipped else "bad")
    path.write_bytes(gzip.compress(raw) if zipped else raw)
    if zipped and message == "needs":                           # no file length to compare against
        message = "ends inside the data" if case == "short data" else "continues after"
    with pytest.raises(ValueError, match=message) as err:
        idx.read_idx(path)
    assert str(path) in str(err.value)


def test_broken_gzip_stream_is_a_value_error(tmp_path):
    raw = gzip.compress(_valid(tmp_path))
    path = tmp_path / "cut.gz"
    path.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="cut.gz"):
        idx.read_idx(path)
    path.write_bytes(raw[:10] + bytes(len(raw) - 10))          # the deflate data zeroed
    with pytest.raises(ValueError, match="cut.gz"):
        idx.read_idx(path)
    with pytest.raises(FileNotFoundError):
        idx.read_idx(tmp_path / "missing")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.booleans())
def test_arbitrary_bytes_give_an_array_or_a_value_error(tmp_path_factory, raw, zipped):
    path = tmp_path_factory.mktemp("fuzz") / "f"
    path.write_bytes(gzip.compress(raw) if zipped else raw)
    try:
        a = idx.read_idx(path)
    except ValueError as err:
        assert str(path) in str(err)
    else:
        assert a.nbytes == len(raw) - 4 - 4 * a.ndim


def _fake_fashion(folder, n_train=5, n_test=3, image_shape=(28, 28), labels=None):
    rng = np.random.default_rng(1)
    os.makedirs(folder, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        idx.write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"),
                      rng.integers(0, 256, (n, *image_shape), dtype=np.uint8))
        lab = rng.integers(0, 10, n, dtype=np.uint8) if labels is None else labels
        idx.write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), lab)


def test_fashion_mnist_from_a_folder_or_the_environment(tmp_path, monkeypatch):
    _fake_fashion(tmp_path / "f")
    images, labels = idx.load_fashion_mnist("train", tmp_path / "f")
    assert images.shape == (5, 28, 28) and labels.shape == (5,) and images.dtype == np.uint8
    monkeypatch.setenv(idx.ENV_VAR, str(tmp_path / "f"))
    images, labels = idx.load_fashion_mnist("test")
    assert images.shape == (3, 28, 28) and labels.max() <= 9


def test_fashion_mnist_missing_or_inconsistent(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*FASHION_MNIST_DIR"):
        idx.load_fashion_mnist("train", tmp_path / "empty")
    with pytest.raises(ValueError, match="split"):
        idx.load_fashion_mnist("validation", tmp_path)
    _fake_fashion(tmp_path / "shape", image_shape=(27, 28))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: expected uint8 images"):
        idx.load_fashion_mnist("train", tmp_path / "shape")
    _fake_fashion(tmp_path / "count", labels=np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: 4 labels for the 5 images"):
        idx.load_fashion_mnist("train", tmp_path / "count")
    _fake_fashion(tmp_path / "range", n_train=3, labels=np.array([0, 10, 2], np.uint8))
    with pytest.raises(ValueError, match="labels must lie in 0..9, found 10"):
        idx.load_fashion_mnist("train", tmp_path / "range")


def test_the_real_fashion_mnist():
    folder = idx.find_folder()
    if not os.path.exists(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")):
        pytest.skip(f"Fashion-MNIST is not installed in {folder} (apt-get install dataset-fashion-mnist, "
                    f"or set {idx.ENV_VAR})")
    for split, n in idx.SPLITS.items():
        images, labels = idx.load_fashion_mnist(split)
        assert images.shape == (n, 28, 28) and labels.shape == (n,)
        np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, n // 10),
                                      err_msg=f"{split}: every class holds a tenth of the images")
        assert images.max() == 255 and images.min() == 0
