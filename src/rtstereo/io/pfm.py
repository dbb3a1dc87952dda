"""Portable Float Map (PFM) reading and writing.

Format: a header line ``Pf`` (one channel) or ``PF`` (three), then ``width height``, then a scale
whose sign gives the byte order (negative = little-endian); rows are stored bottom to top.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import InputError, missing_file_message, require_numbers, require_path


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a PFM file.

    Args:
        path: the file.

    Returns:
        float32 ``(H, W)`` for ``Pf`` files or ``(H, W, 3)`` for ``PF`` files, top row first.
    """
    path = require_path(path, "PFM file")
    if not path.is_file():
        raise InputError(missing_file_message("file", path))
    try:
        return _read_pfm(path)
    except OSError as exc:  # unreadable (permissions, a failing disk): one line naming the file
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_pfm(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        kind = f.readline().strip()
        if kind not in (b"Pf", b"PF"):
            raise InputError(f"{path}: not a PFM file (header {kind[:10]!r}, expected b'Pf' or b'PF')")
        try:
            line = f.readline()
            while line and not line.split():  # tolerate blank lines between header fields
                line = f.readline()
            dims = line.split()
            width, height = int(dims[0]), int(dims[1])
            scale = float(f.readline().strip())
        except (ValueError, IndexError) as exc:
            raise InputError(f"{path}: damaged PFM header ({exc})") from None
        if width < 1 or height < 1 or not math.isfinite(scale) or scale == 0:
            # numpy's reshape refused a negative size with a traceback ("can only specify one unknown dimension")
            raise InputError(
                f"{path}: damaged PFM header (size {width}x{height}, scale {scale}; expected a size of at least "
                "1x1 and a finite, non-zero scale)"
            )
        channels = 3 if kind == b"PF" else 1
        data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4")
    expected = width * height * channels
    if data.size != expected:
        raise InputError(f"{path}: PFM holds {data.size} values, expected {width}x{height}x{channels}={expected}")
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(np.flipud(data.reshape(shape)).astype(np.float32))


def write_pfm(path: str | Path, array: np.ndarray) -> None:
    """Write float32 ``(H, W)`` or ``(H, W, 3)`` as little-endian PFM (``nan`` is written as-is)."""
    path = require_path(path, "PFM file to write")
    array = require_numbers(array, "PFM data", "a float (H, W) or (H, W, 3) array").astype(np.float32, copy=False)
    if array.ndim == 2:
        kind = b"Pf"
    elif array.ndim == 3 and array.shape[2] == 3:
        kind = b"PF"
    else:
        raise InputError(f"PFM holds (H, W) or (H, W, 3) arrays, got shape {array.shape}")
    if array.size == 0:  # read_pfm refuses a size below 1x1 as a damaged header
        raise InputError(f"PFM holds at least 1x1 pixels, got shape {array.shape}")
    height, width = array.shape[:2]
    with path.open("wb") as f:
        f.write(kind + b"\n" + f"{width} {height}\n".encode() + b"-1.0\n")
        # One copy, written as it is: flipped, converted and then turned into bytes, the map was copied thrice
        f.write(np.ascontiguousarray(np.flipud(array), dtype="<f4").data)
