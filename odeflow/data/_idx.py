"""MNIST from local IDX files (LeCun's format; plain or gzip-compressed). Nothing is
downloaded: point `mnist` at the folder that holds the four files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# IDX type codes -> big-endian numpy dtypes
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}

MNIST_FILES = {
    "x": "train-images-idx3-ubyte",
    "y": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file at `path` (`.gz` is decompressed).

    Raises `FileNotFoundError` for a missing file and `ValueError` for a wrong magic
    number, an unknown type code, or a file shorter or longer than its header says.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}; check the path")
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: its magic number must start with two zero bytes")
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}; expected one of "
                         + ", ".join(f"0x{c:02x}" for c in _TYPES))
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(_TYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} is {'truncated' if len(raw) < expected else 'too long'}: "
                         f"shape {shape} needs {expected} bytes, the file has {len(raw)}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array) -> None:
    """Write `array` as an IDX file (gzip-compressed if `path` ends in `.gz`)."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("=")
    if dtype not in _CODES:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, "
                        "float32 or float64")
    header = bytes([0, 0, _CODES[dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(_TYPES[_CODES[dtype]]).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} has no {stem} (or {stem}.gz); MNIST needs the files "
                            + ", ".join(MNIST_FILES.values()))


def mnist(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """MNIST from the IDX files in `folder`: `x`, `x_test` as float32 images
    `(n, 1, 28, 28)` scaled to [0, 1] (any image size the files hold is kept),
    `y`, `y_test` as int32 labels. Checks that images and labels match in number."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {folder} does not exist")
    raw = {k: read_idx(_find(folder, stem)) for k, stem in MNIST_FILES.items()}
    out = {}
    for split in ("", "_test"):
        x, y = raw["x" + split], raw["y" + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"MNIST{split or ' train'}: expected images (n, h, w) and labels (n,), "
                             f"got {x.shape} and {y.shape}")
        out["x" + split] = (x[:, None].astype(np.float32) / 255.0)
        out["y" + split] = y.astype(np.int32)
    return out
