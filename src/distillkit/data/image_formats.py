"""Readers for on-disk image classification formats: MNIST IDX, CIFAR python pickles, ImageFolder.

Every loader returns `images` as uint8 arrays in HWC layout (C=1 for grayscale) and `labels` as int64, and
raises `DataError` naming the offending file when the data on disk is not what the format promises. CIFAR
pickles are read by a restricted unpickler that builds only builtin containers and numpy arrays: a pickle that
names any other global (the way a pickle runs code) is refused, not executed.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from distillkit.errors import DataError

# IDX type code → (numpy big-endian dtype, name)
_IDX_DTYPES: dict[int, tuple[str, str]] = {
    0x08: (">u1", "ubyte"),
    0x09: (">i1", "byte"),
    0x0B: (">i2", "short"),
    0x0C: (">i4", "int"),
    0x0D: (">f4", "float"),
    0x0E: (">f8", "double"),
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


# -------------------------------------------------------------------------------------------------- MNIST IDX
def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed when the name ends in `.gz`) into a native-endian array."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None

    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file: only {len(data)} bytes, no header")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file: bad magic number 0x{data[:4].hex()} (expected 0x0000TTNN)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: header declares {ndim} dimensions, file has {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code][0])
    expected = int(np.prod(shape)) * dtype.itemsize
    payload = len(data) - header
    if payload != expected:
        what = "truncated" if payload < expected else "trailing bytes"
        dims = "×".join(str(s) for s in shape)
        kind = _IDX_DTYPES[code][1]
        raise DataError(f"{path}: {what}: header says {dims} {kind} = {expected} bytes, file has {payload}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def load_idx_dataset(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST-style split from `root`: images (N, H, W, 1) uint8 and labels (N,) int64."""
    root = Path(root)
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    found = [_find_idx(root, s) for s in stems]
    missing = [s for s, p in zip(stems, found, strict=True) if p is None]
    if missing:
        looked = ", ".join(f"{s}[.gz]" for s in missing)
        raise DataError(f"{root}: missing IDX file(s): looked for {looked}")
    image_path, label_path = found
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{image_path}: expected 3-D ubyte images got {images.ndim}-D {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{label_path}: expected 1-D ubyte labels, got {labels.ndim}-D {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(f"{label_path}: {len(labels)} labels but {image_path.name} has {len(images)} images")
    return images[..., None], labels.astype(np.int64)


# ------------------------------------------------------------------------------------------------------ CIFAR
def _cifar_dir(root: Path, num_classes: int) -> Path:
    folder = "cifar-10-batches-py" if num_classes == 10 else "cifar-100-python"
    marker = "test_batch" if num_classes == 10 else "test"
    for candidate in (root / folder, root):
        if (candidate / marker).is_file():
            return candidate
    looked = f"{root / folder / marker} and {root / marker}"
    raise DataError(f"{root}: no CIFAR-{num_classes} data: looked for {looked}")


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as Python 3 pickles bytes at protocol 2, limited to that use (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _RefusedGlobal(f"_codecs.encode (with encoding {encoding!r})")
    return text.encode("latin-1")


def _cifar_globals() -> dict[tuple[str, str], object]:
    """The globals a CIFAR pickle may name: numpy's array, dtype and scalar rebuilders (under their numpy 1.x
    and 2.x module names, resolved to the installed numpy's objects without importing those modules), a few
    builtin types, and `_codecs.encode` for bytes pickled by Python 3 at protocol 2."""
    reconstruct = np.ndarray((0,)).__reduce__()[0]
    scalar = np.int64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    for module in ("builtins", "__builtin__"):
        for kind in (set, frozenset, bytes, bytearray, str, int, float, complex, bool, list, dict, tuple):
            allowed[(module, kind.__name__)] = kind
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only builtin containers, numbers, strings and numpy arrays: any other global a
    pickle names (a function to call, a class to instantiate) is refused, so loading runs no code from the
    file."""

    _allowed: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str) -> object:
        if _CifarUnpickler._allowed is None:
            _CifarUnpickler._allowed = _cifar_globals()
        found = _CifarUnpickler._allowed.get((module, name))
        if found is None:
            raise _RefusedGlobal(f"{module}.{name}")
        return found


def _unpickle(path: Path) -> dict:
    """A CIFAR pickle, read by `_CifarUnpickler`: a file naming any other global is refused (`DataError`)."""
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except _RefusedGlobal as exc:
        raise DataError(
            f"{path}: refused to load '{exc.name}' from a CIFAR pickle (only builtin containers and numpy "
            "arrays are allowed)"
        ) from None
    except Exception as exc:  # any unpickling failure means a corrupt or foreign file
        raise DataError(f"{path}: not a readable CIFAR pickle ({exc.__class__.__name__})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    for key in (b"data", label_key):
        if key not in batch:
            keys = ", ".join(sorted(k.decode() if isinstance(k, bytes) else str(k) for k in batch))
            raise DataError(f"{path}: missing key '{key.decode()}' (has: {keys})")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise DataError(f"{path}: 'data' must be N×3072 uint8, got shape {data.shape} {data.dtype}")
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {labels.size} labels for {len(data)} images")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def load_cifar(root: Path, train: bool, num_classes: Literal[10, 100]) -> tuple[np.ndarray, np.ndarray]:
    """Load a CIFAR-10/100 split: images (N, 32, 32, 3) uint8 and labels (N,) int64 (fine labels for 100).

    `root` may be the batches folder (`cifar-10-batches-py`, `cifar-100-python`) or its parent.
    """
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 or 100, got {num_classes}")
    folder = _cifar_dir(Path(root), num_classes)
    if num_classes == 10:
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        label_key = b"labels"
    else:
        names = ["train" if train else "test"]
        label_key = b"fine_labels"
    parts = [_read_cifar_batch(folder / name, label_key) for name in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.min() < 0 or labels.max() >= num_classes:
        lo, hi = labels.min(), labels.max()
        raise DataError(f"{folder}: labels outside 0..{num_classes - 1} (min {lo}, max {hi})")
    return images, labels


def cifar_class_names(root: Path, num_classes: Literal[10, 100]) -> list[str]:
    """Class names from the CIFAR meta file (`batches.meta` / `meta`), or '0'..'N-1' when it is absent."""
    folder = _cifar_dir(Path(root), num_classes)
    meta_path = folder / ("batches.meta" if num_classes == 10 else "meta")
    key = b"label_names" if num_classes == 10 else b"fine_label_names"
    if meta_path.is_file():
        names = _unpickle(meta_path).get(key)
        if names is not None and len(names) == num_classes:
            return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return [str(i) for i in range(num_classes)]


# ------------------------------------------------------------------------------------------------ ImageFolder
def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(class_dir: Path) -> list[Path]:
    return sorted(p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image ({exc.__class__.__name__})") from None


def load_image_folder(root: Path, train: bool) -> tuple[np.ndarray | list[np.ndarray], np.ndarray, list[str]]:
    """Load `root/train/<class>/*` or `root/test/<class>/*` (.png/.jpg/.jpeg) as RGB, without resizing.

    Returns (images, labels, class_names). Classes are the sorted subfolders of `root/train`, shared by both
    splits. `images` is an (N, H, W, 3) uint8 array when all images share a size, else a list of HWC arrays.
    """
    root = Path(root)
    layout = "expected root/train/<class>/*.png|jpg|jpeg and root/test/<class>/..."
    train_dir, split_dir = root / "train", root / ("train" if train else "test")
    if not train_dir.is_dir() or not split_dir.is_dir():
        missing = train_dir if not train_dir.is_dir() else split_dir
        raise DataError(f"{root}: not an image folder: {missing} does not exist ({layout})")
    class_names = _class_dirs(train_dir)
    if not class_names:
        raise DataError(f"{train_dir}: no class subfolders ({layout})")
    unknown = sorted(set(_class_dirs(split_dir)) - set(class_names))
    if unknown:
        raise DataError(f"{split_dir}: class folder(s) {', '.join(unknown)} not present in {train_dir}")

    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        class_dir = split_dir / name
        files = _image_files(class_dir) if class_dir.is_dir() else []
        if train and not files:
            raise DataError(f"{class_dir}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        images.extend(_load_rgb(f) for f in files)
        labels.extend([index] * len(files))
    if not images:
        raise DataError(f"{split_dir}: no images found ({layout})")
    label_array = np.asarray(labels, dtype=np.int64)
    if len({im.shape for im in images}) == 1:
        return np.stack(images), label_array, class_names
    return images, label_array, class_names
