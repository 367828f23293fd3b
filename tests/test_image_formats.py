"""Readers for MNIST IDX, CIFAR pickles and ImageFolder, on tiny files written to tmp_path."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distillkit.data.image_formats import (
    cifar_class_names,
    load_cifar,
    load_idx_dataset,
    load_image_folder,
    read_idx,
)
from distillkit.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist(root: Path, prefix: str, n: int, seed: int, gz: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


# ------------------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_read_idx_roundtrip_raw_and_gz(tmp_path: Path, name: str) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / name, array))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, array)


def test_read_idx_big_endian_int32(tmp_path: Path) -> None:
    array = np.array([1, -2, 70000], dtype=np.int32)
    out = read_idx(write_idx(tmp_path / "ints-idx1", array))
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path: Path, gz: bool) -> None:
    data = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[: 16 + 1000]
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert path.name in str(info.value)
    assert "10×28×28" in str(info.value) and "1000" in str(info.value)


def test_read_idx_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "extra-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00")
    with pytest.raises(DataError, match="trailing"):
        read_idx(path)


@pytest.mark.parametrize(
    ("name", "magic", "match"),
    [
        ("bad-idx1-ubyte", b"\x01\x02\x08\x01", "magic"),  # wrong magic
        ("code-idx1-ubyte", b"\x00\x00\x07\x01", "0x07"),  # unknown dtype code
    ],
)
def test_read_idx_bad_header(tmp_path: Path, name: str, magic: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(magic + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    assert name in str(info.value)


def test_read_idx_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "broken-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match="broken-idx1-ubyte.gz"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_dataset_train_and_test(tmp_path: Path, gz: bool) -> None:
    train_x, train_y = write_mnist(tmp_path, "train", 7, seed=0, gz=gz)
    test_x, test_y = write_mnist(tmp_path, "t10k", 3, seed=1, gz=gz)
    images, labels = load_idx_dataset(tmp_path, train=True)
    assert images.shape == (7, 5, 4, 1) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(images[..., 0], train_x)
    np.testing.assert_array_equal(labels, train_y)
    images, labels = load_idx_dataset(tmp_path, train=False)
    np.testing.assert_array_equal(images[..., 0], test_x)
    np.testing.assert_array_equal(labels, test_y)


def test_load_idx_dataset_label_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte") as info:
        load_idx_dataset(tmp_path, train=True)
    assert "3 labels" in str(info.value) and "4 images" in str(info.value)


def test_load_idx_dataset_missing_files(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 2, 2), dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_idx_dataset(tmp_path, train=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and "t10k-images" not in message
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*train-labels-idx1-ubyte"):
        load_idx_dataset(tmp_path, train=True)


def test_load_idx_dataset_rejects_wrong_rank(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(4, dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*3-D"):
        load_idx_dataset(tmp_path, train=True)


# ----------------------------------------------------------------------------------------------------- CIFAR
def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(folder: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        write_pickle(folder / name, {b"data": data, b"labels": labels, b"batch_label": b"x"})
        written[name] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(labels)
    write_pickle(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return written


@pytest.mark.parametrize("use_parent", [True, False])
def test_load_cifar10_roundtrip(tmp_path: Path, use_parent: bool) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    written = write_cifar10(folder)
    root = tmp_path if use_parent else folder
    images, labels = load_cifar(root, train=True, num_classes=10)
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    expected = [written[f"data_batch_{i}"] for i in range(1, 6)]
    np.testing.assert_array_equal(images, np.concatenate([e[0] for e in expected]))
    np.testing.assert_array_equal(labels, np.concatenate([e[1] for e in expected]))
    images, labels = load_cifar(root, train=False, num_classes=10)
    np.testing.assert_array_equal(images, written["test_batch"][0])
    np.testing.assert_array_equal(labels, written["test_batch"][1])
    assert cifar_class_names(root, 10) == [f"c{i}" for i in range(10)]


def test_cifar_pixel_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    data = np.zeros((1, 3072), dtype=np.uint8)
    data[0, 1024 + 32 * 2 + 5] = 200  # green channel, row 2, column 5
    write_pickle(folder / "test_batch", {b"data": data, b"labels": [4]})
    images, _ = load_cifar(folder, train=False, num_classes=10)
    assert images[0, 2, 5, 1] == 200 and images.sum() == 200


def test_load_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    data = np.random.default_rng(1).integers(0, 256, (4, 3072), dtype=np.uint8)
    write_pickle(folder / "train", {b"data": data, b"fine_labels": [0, 99, 5, 7], b"coarse_labels": [0] * 4})
    write_pickle(folder / "test", {b"data": data[:2], b"fine_labels": [1, 2], b"coarse_labels": [0] * 2})
    images, labels = load_cifar(tmp_path, train=True, num_classes=100)
    np.testing.assert_array_equal(images, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(labels, [0, 99, 5, 7])
    _, labels = load_cifar(folder, train=False, num_classes=100)
    np.testing.assert_array_equal(labels, [1, 2])
    assert cifar_class_names(folder, 100) == [str(i) for i in range(100)]  # no meta file


def test_load_cifar_missing_key(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    write_pickle(folder / "data_batch_3", {b"data": np.zeros((2, 3072), dtype=np.uint8)})
    with pytest.raises(DataError, match="data_batch_3.*labels"):
        load_cifar(tmp_path, train=True, num_classes=10)


def test_load_cifar_wrong_shape(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    write_pickle(folder / "test_batch", {b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError, match="test_batch.*3072"):
        load_cifar(tmp_path, train=False, num_classes=10)


def test_load_cifar_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar-100-python"):
        load_cifar(tmp_path, train=True, num_classes=100)


def test_load_cifar_corrupt_pickle(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="test_batch"):
        load_cifar(tmp_path, train=False, num_classes=10)


class RunsCode:
    """Pickles as a call of `function(*args)`: how a malicious pickle runs code when it is loaded."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize(("function", "refused"), [(os.system, f"{os.name}.system"), (exec, "builtins.exec")])
def test_cifar_pickle_cannot_run_code(tmp_path: Path, function, refused: str) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w').close()"
    data = np.zeros((1, 3072), dtype=np.uint8)
    write_pickle(folder / "data_batch_1", {b"data": data, b"labels": [0], b"x": RunsCode(function, command)})
    with pytest.raises(DataError) as info:
        load_cifar(tmp_path, train=True, num_classes=10)
    assert str(info.value) == (
        f"{folder / 'data_batch_1'}: refused to load '{refused}' from a CIFAR pickle (only builtin containers "
        "and numpy arrays are allowed)"
    )
    assert not marker.exists()
    write_pickle(folder / "batches.meta", RunsCode(function, command))  # the meta file is read the same way
    with pytest.raises(DataError, match="batches.meta: refused to load"):
        cifar_class_names(tmp_path, 10)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5, "numpy1"])
def test_cifar_real_format_pickles_load(tmp_path: Path, protocol: int | str) -> None:
    """Batches as CIFAR holds them (a dict of a uint8 array, a label list, bytes, numpy scalars), pickled by
    the installed numpy at each protocol, and at protocol 2 with numpy 1.x's module names
    (`numpy.core.multiarray`), all read through `load_cifar`."""
    folder = tmp_path / "cifar-10-batches-py"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    batch = {
        b"data": data,
        b"labels": [3, 1, 4, 1],
        b"batch_label": b"testing batch 1 of 1",
        b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png"],
        b"extra": (np.int64(7), np.float32(0.5), {b"set"}, 1.5, "text", None, True),
    }
    blob = pickle.dumps(batch, protocol=2 if protocol == "numpy1" else protocol)
    if protocol == "numpy1":
        assert b"numpy._core.multiarray\n" in blob
        blob = blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    folder.mkdir()
    (folder / "test_batch").write_bytes(blob)
    images, labels = load_cifar(tmp_path, train=False, num_classes=10)
    np.testing.assert_array_equal(images, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(labels, [3, 1, 4, 1])


# ----------------------------------------------------------------------------------------------- ImageFolder
def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_folder(root: Path, sizes: dict[str, tuple[int, int]] | None = None) -> dict[str, np.ndarray]:
    """Two classes in train, one in test; returns the arrays written, keyed by relative path."""
    rng = np.random.default_rng(0)
    sizes = sizes or {}
    written = {}
    for rel in ["train/cat/a.png", "train/cat/b.png", "train/dog/c.png", "test/dog/d.png"]:
        h, w = sizes.get(rel, (6, 5))
        written[rel] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        write_png(root / rel, written[rel])
    return written


def test_load_image_folder_roundtrip(tmp_path: Path) -> None:
    written = make_folder(tmp_path)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    images, labels, classes = load_image_folder(tmp_path, train=True)
    assert classes == ["cat", "dog"]
    assert isinstance(images, np.ndarray) and images.shape == (3, 6, 5, 3)
    np.testing.assert_array_equal(
        images, np.stack([written[k] for k in ["train/cat/a.png", "train/cat/b.png", "train/dog/c.png"]])
    )
    np.testing.assert_array_equal(labels, [0, 0, 1])
    images, labels, classes = load_image_folder(tmp_path, train=False)
    assert classes == ["cat", "dog"]
    np.testing.assert_array_equal(images[0], written["test/dog/d.png"])
    np.testing.assert_array_equal(labels, [1])


def test_load_image_folder_mixed_sizes_and_grayscale(tmp_path: Path) -> None:
    written = make_folder(tmp_path, sizes={"train/cat/b.png": (9, 7)})
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    write_png(tmp_path / "train" / "dog" / "g.png", gray)
    images, labels, _ = load_image_folder(tmp_path, train=True)
    assert isinstance(images, list) and [im.shape for im in images] == [
        (6, 5, 3),
        (9, 7, 3),
        (6, 5, 3),
        (3, 4, 3),
    ]
    np.testing.assert_array_equal(images[1], written["train/cat/b.png"])
    np.testing.assert_array_equal(images[3], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])


def test_load_image_folder_bad_image(tmp_path: Path) -> None:
    make_folder(tmp_path)
    (tmp_path / "train" / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_image_folder(tmp_path, train=True)


def test_load_image_folder_unknown_test_class(tmp_path: Path) -> None:
    make_folder(tmp_path)
    write_png(tmp_path / "test" / "bird" / "e.png", np.zeros((6, 5, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="bird"):
        load_image_folder(tmp_path, train=False)


def test_load_image_folder_needs_split_folders(tmp_path: Path) -> None:
    write_png(tmp_path / "cat" / "a.png", np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="train/<class>") as info:
        load_image_folder(tmp_path, train=True)
    assert str(tmp_path / "train") in str(info.value)
