"""Writing one result as a set of files, by format name.

Formats (``--format``): ``png16`` 16-bit KITTI PNG (d*256, 0 = invalid), ``pfm`` (inf = invalid),
``npy`` (float32, nan = invalid), ``color`` colourised preview PNG, ``json`` sidecar (model,
settings, sizes, per-stage timings). Other modules add formats with :func:`register_format`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ..errors import InputError, OutputError
from ..io.disparity import colorize, write_disparity
from ..io.images import write_image
from ..types import DisparityResult

Writer = Callable[[DisparityResult, Path], Path]
"""A writer takes the result and the output stem (folder / pair name) and returns the file written."""

DEFAULT_FORMATS = ("png16", "pfm", "color", "json")
FILE_SUFFIXES = {".png": "png16", ".pfm": "pfm", ".npy": "npy"}


def _png16(result: DisparityResult, stem: Path) -> Path:
    path = stem.with_suffix(".png")
    write_disparity(path, result.disparity_px)
    return path


def _pfm(result: DisparityResult, stem: Path) -> Path:
    path = stem.with_suffix(".pfm")
    write_disparity(path, result.disparity_px)
    return path


def _npy(result: DisparityResult, stem: Path) -> Path:
    path = stem.with_suffix(".npy")
    write_disparity(path, result.disparity_px)
    return path


def _color(result: DisparityResult, stem: Path) -> Path:
    path = stem.parent / f"{stem.name}_color.png"
    write_image(path, colorize(result.disparity_px, result.settings.get("max_disp")))
    return path


def _json(result: DisparityResult, stem: Path) -> Path:
    path = stem.with_suffix(".json")
    try:
        path.write_text(json.dumps(result.sidecar(), indent=2, default=str) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None
    return path


FORMATS: dict[str, Writer] = {"png16": _png16, "pfm": _pfm, "npy": _npy, "color": _color, "json": _json}


def register_format(name: str, writer: Writer) -> None:
    """Add an output format (for example ``depth`` or ``ply``)."""
    FORMATS[name] = writer


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``"png16,color"`` -> ``("png16", "color")``, refusing unknown names."""
    if not text:
        return DEFAULT_FORMATS
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise InputError(f"unknown output format(s) {', '.join(unknown)} (known: {', '.join(sorted(FORMATS))})")
    return names


def save_result(
    result: DisparityResult,
    folder: str | Path,
    name: str,
    formats: Iterable[str] = DEFAULT_FORMATS,
    writers: Mapping[str, Writer] | None = None,
) -> list[Path]:
    """Write ``result`` into ``folder`` as ``<name>.<ext>`` for each format; returns the files.

    ``writers`` replaces registered writers for this call (e.g. point clouds with a run's cleaning
    options) without changing the registry.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc}") from None
    table = {**FORMATS, **(writers or {})}
    return [table[f](result, folder / name) for f in formats]


def save_single_file(result: DisparityResult, path: str | Path) -> Path:
    """Write the disparity to one file whose suffix picks the format (.png, .pfm, .npy)."""
    path = Path(path)
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise OutputError(f"output file {path} must end in .png, .pfm or .npy (or name a folder)")
    write_disparity(path, result.disparity_px)
    return path
