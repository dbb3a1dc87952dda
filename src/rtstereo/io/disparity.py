"""Disparity maps on disk: 16-bit PNG (KITTI convention), PFM, npy, float TIFF; and colourised previews.

In memory invalid pixels are ``nan``; in 16-bit PNG they are 0 (value = d * 256); in PFM and float TIFF
any value that is not finite.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import (
    DisparityRangeError,
    InputError,
    OutputError,
    missing_file_message,
    require_number,
    require_numbers,
    require_path,
    warn,
)
from .atomic import atomic_path, make_parent
from .images import opened_with_pil, read_grey, write_image
from .pfm import read_pfm, write_pfm

PNG16_SCALE = 256.0
PNG16_MAX_PX = 65535 / PNG16_SCALE
DISPARITY_SUFFIXES = (".png", ".pfm", ".npy")
TIFF_SUFFIXES = (".tif", ".tiff")


def read_float_tiff(path: str | Path) -> np.ndarray | None:
    """A one-channel floating-point TIFF (32 or 64 bit) as float32 ``(H, W)`` pixels, non-finite ones ``nan``;
    ``None`` for any other file (an integer TIFF, another suffix).

    Raises:
        InputError: a floating-point TIFF of several channels (a disparity map has one).
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file() or _tiff_header_says_integer(path):
        return None
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None or not np.issubdtype(image.dtype, np.floating):
        return None
    if image.ndim == 3:
        raise InputError(f"{path}: a floating-point TIFF of {image.shape[2]} channels; a disparity map has one")
    d = image.astype(np.float32)
    d[~np.isfinite(d)] = np.nan
    return d


def _tiff_header_says_integer(path: Path) -> bool:
    """Whether PIL, from the header alone, reads the TIFF as integers (8 or 16 bit, colour or grey): each TIFF photo
    was decoded whole to learn that it is not floating point, before compare asked its memory budget. PIL opens
    one-channel float32 TIFFs as ``F`` and no float64 or multi-channel float ones: those are decoded to be sure."""
    from PIL import UnidentifiedImageError

    try:
        with opened_with_pil(path) as image:
            return image.mode != "F"
    except (UnidentifiedImageError, OSError, InputError):
        return False


def read_disparity(path: str | Path, scale: float | None = None) -> npt.NDArray[np.float32]:
    """Read a disparity map as float32 ``(H, W)`` pixels with ``nan`` where invalid.

    Args:
        path: ``.pfm`` (``inf`` = invalid), ``.npy`` (non-finite = invalid), a floating-point ``.tif`` (read
            as stored, non-finite = invalid), or ``.png``/``.pgm``/``.tif``: 16-bit files use the KITTI
            convention (value / 256, 0 = invalid); 8-bit files need ``scale``.
        scale: divisor for 8-bit files (Middlebury ground truth: 1 to 16).

    Returns:
        float32 ``(H, W)``.

    Raises:
        InputError: a missing or damaged file, a colour PFM whose channels differ, an 8-bit file without ``scale``,
            or a 16-bit or floating-point one (``.pfm``, ``.npy``, float ``.tif``) with it (a map of another tool
            where an 8-bit one belongs: guessing its encoding would score nonsense); a ``scale`` that is not a finite
            number > 0.
    """
    path = require_path(path, "disparity file")
    if path.is_dir():  # it said "file not found"
        raise InputError(f"{path} is a folder, not a disparity map: name a .pfm, .png or .npy file in it")
    suffix = path.suffix.lower()
    if scale is not None:
        # 0 gave a map of inf, a negative one negative disparities, True divided by 1: each read without a word
        scale = require_number(scale, "scale", "the divisor of an 8-bit map's values (Middlebury: 1 to 16)")
        if not (math.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a finite number > 0 (the divisor of an 8-bit map's values), got {scale:g}")
        if suffix in (".pfm", ".npy"):  # read as stored, the scale left unsaid, as a floating-point TIFF refuses it
            raise InputError(
                f"{path}: a {suffix} map holds disparities as they are; a scale (value / {scale:g}) divides 8-bit "
                "maps only: leave it out"
            )
    if suffix == ".pfm":
        d = read_pfm(path)
        if d.ndim == 3:  # a colour PFM (PF): a map only where its three channels agree, as a grey PNG stored as RGB
            if not (
                np.array_equal(d[..., 0], d[..., 1], equal_nan=True)
                and np.array_equal(d[..., 1], d[..., 2], equal_nan=True)
            ):
                # its first channel was taken without a word: an image or a flow field scored as disparities
                raise InputError(
                    f"{path}: a PFM of 3 channels that differ (PF: an image or a flow field?); a disparity map has one "
                    "(Pf): save the channel that holds disparities as .npy or as a one-channel PFM"
                )
            d = d[:, :, 0]
        d = d.copy()
        d[~np.isfinite(d)] = np.nan
        return d
    if suffix == ".npy":
        if not path.is_file():
            raise InputError(missing_file_message("file", path))
        try:
            raw = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):  # not the .npy format, truncated, or pickled objects
            raw = None
        if not isinstance(raw, np.ndarray):  # also an .npz archive under an .npy name
            raise InputError(f"cannot read {path}: not a numpy .npy file, or damaged")
        if not (np.issubdtype(raw.dtype, np.number) or raw.dtype == np.bool_):
            raise InputError(f"cannot read {path}: it holds {raw.dtype} values, not numbers")
        if raw.dtype == np.bool_ or np.issubdtype(raw.dtype, np.complexfloating):
            # a mask read as 1 px wherever True (eval scored a map of 5 px as 4 px off everywhere), or complex values
            # cut to their real part with a NumPy warning
            raise InputError(
                f"{path}: it holds {raw.dtype} values{' (a mask?)' if raw.dtype == np.bool_ else ''}, not disparities "
                "in pixels: save the map as real numbers (float32)"
            )
        d = raw.astype(np.float32)
        if d.ndim != 2:
            raise InputError(f"{path}: expected a 2-D disparity array, got shape {d.shape}")
        d[~np.isfinite(d)] = np.nan  # inf (a PFM's invalid pixels saved with np.save) is invalid too, as in a PFM
        return d
    floating = read_float_tiff(path)
    if floating is not None:
        if scale is not None:  # as for a 16-bit map: dividing disparities stored as they are would score nonsense
            raise InputError(
                f"{path}: a floating-point map holds disparities as they are; a scale (value / {scale:g}) divides "
                "8-bit maps only: leave it out"
            )
        return floating
    raw = read_grey(path)
    if raw.dtype != np.uint16 and is_colour(path):  # read_grey would mix its channels into a grey "map"
        raise InputError(
            f"{path}: a colour image, not a disparity map (an 8-bit map has one grey level per pixel; a colourised "
            "preview such as NAME_color.png cannot be read back: use the .pfm or 16-bit .png written beside it)"
        )
    if scale is None:
        if raw.dtype != np.uint16:
            raise InputError(f"{path}: 8-bit disparity needs its scale (value / scale); 16-bit KITTI PNGs need none")
        scale = PNG16_SCALE
    elif raw.dtype == np.uint16:  # divided by an 8-bit map's scale, d x 256 would read as disparities of thousands
        raise InputError(
            f"{path}: a 16-bit map where 8-bit ground truth (disparity = value / {scale:g}) belongs; the 16-bit "
            f"convention (value / {PNG16_SCALE:g}) is KITTI's: convert the map to 8 bits (value = disparity x "
            f"{scale:g}) or to .pfm"
        )
    d = raw.astype(np.float32) / float(scale)
    d[raw == 0] = np.nan
    return d


def is_colour(path: Path) -> bool:
    """Whether an 8-bit image file holds colour: channels that differ somewhere (grey stored as RGB does not)."""
    with opened_with_pil(path) as im:
        if im.mode in ("L", "1", "I", "I;16", "I;16B", "F", "LA"):
            return False
        rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


def write_disparity(path: str | Path, disparity_px: np.ndarray) -> None:
    """Write ``(H, W)`` float disparity by suffix: ``.png`` 16-bit (d*256, 0 = invalid), ``.pfm``, ``.npy``;
    atomically (under a temporary name, then renamed).

    A 16-bit PNG stores positive disparities only: a negative or zero value is written as 0, which reads back
    as invalid (``nan``), with a warning that counts them; ``.pfm`` and ``.npy`` keep them.

    Raises:
        OutputError: another suffix or shape, or the file cannot be written (nothing is created then,
            not even its folder).
        DisparityRangeError: a ``.png`` for a disparity above 255.99 px (:func:`to_png16`).
    """
    path = require_path(path, "disparity file to write")
    if path.is_dir():  # it said "unknown disparity format ''"
        raise OutputError(f"{path} is a folder: give a file name, e.g. {path / 'left.pfm'}")
    suffix = path.suffix.lower()
    # read only here and below: a float32 map is not copied (each format's writer made up to six copies of it)
    d = require_numbers(disparity_px, "disparity to write", "a float (H, W) array", OutputError)
    d = d.astype(np.float32, copy=False)
    if d.ndim != 2:
        raise OutputError(f"disparity to write must be (H, W), got shape {d.shape}")
    if d.size == 0:  # a PFM of 0 rows was written, which read_disparity then called damaged
        raise OutputError(f"disparity to write is empty: shape {d.shape}, expected at least 1x1 pixels")
    if suffix not in DISPARITY_SUFFIXES:
        raise OutputError(f"unknown disparity format '{suffix}' for {path} (expected .png, .pfm or .npy)")
    encoded = to_png16(d) if suffix == ".png" else None  # refused before a folder is made for it
    make_parent(path)
    if encoded is not None:
        write_image(path, encoded)  # atomic itself
        lost = png16_unstored(d)
        if lost:
            warn(f"{path}: {png16_unstored_message(lost, d.size)}")
        return
    with atomic_path(path) as partial:  # an interrupted write leaves no truncated map under the real name
        if suffix == ".pfm":
            _guard(write_pfm, partial, np.where(np.isfinite(d), d, np.float32(np.inf)))
        else:
            _guard(_save_npy, partial, d)


def to_png16(disparity_px: np.ndarray) -> np.ndarray:
    """float disparity -> uint16 KITTI encoding.

    Raises:
        DisparityRangeError: a value above 255.99 px, which the encoding cannot store (refused, not clipped).
        InputError: not an array of numbers.
    """
    d = require_numbers(disparity_px, "disparity", "a float (H, W) array").astype(np.float32, copy=False)
    valid = np.isfinite(d) & (d > 0)
    if valid.any() and float(d[valid].max()) > PNG16_MAX_PX:
        top = float(d[valid].max())
        raise DisparityRangeError(
            f"disparity up to {top:.1f} px does not fit a 16-bit PNG (max 255.99 px at d*256); "
            "write .pfm or .npy instead",
            top,
        )
    # A valid disparity below 1/256 px would round to 0 and read back as invalid: keep it at 1.
    scaled = d * np.float32(PNG16_SCALE)  # the steps in place: a map's worth of memory each was a tenth of the write
    np.maximum(np.round(scaled, out=scaled), 1, out=scaled)
    scaled[~valid] = 0
    return scaled.astype(np.uint16)


def png16_unstored(disparity_px: np.ndarray) -> int:
    """How many finite pixels a 16-bit PNG cannot store: those ``<= 0`` px, written as 0 (= invalid)."""
    d = np.asarray(disparity_px)
    return int(np.count_nonzero(np.isfinite(d) & (d <= 0)))


def png16_unstored_message(count: int, total: int) -> str:
    """The warning for :func:`png16_unstored`'s pixels (without the file's name)."""
    return (
        f"{count} of {total} pixels hold a disparity <= 0 px, which a 16-bit PNG cannot store: written as 0, "
        "they read back as invalid; write .pfm or .npy to keep them"
    )


def colorize(disparity_px: np.ndarray, max_disp_px: float | None = None, min_disp_px: float = 0.0) -> np.ndarray:
    """A colour preview (uint8 RGB ``(H, W, 3)``), near = warm; invalid pixels (not finite, or 0 px and below) black.

    Args:
        disparity_px: float ``(H, W)``.
        max_disp_px: top of the colour range; a fixed value keeps colours stable across video
            frames. ``None`` uses the 99th percentile of this map.
        min_disp_px: bottom of the colour range.

    Raises:
        InputError: not a float ``(H, W)`` array of numbers, or a range limit that is not a finite number.
    """
    d = require_numbers(disparity_px, "disparity", "a float (H, W) array").astype(np.float32, copy=False)
    if d.ndim != 2:  # a colour image came out (H, W, 3, 3), a scalar an OpenCV error
        raise InputError(f"disparity: expected a float (H, W) array, got shape {d.shape}")
    min_disp_px = require_number(min_disp_px, "min_disp_px", "a disparity in pixels")
    if max_disp_px is not None:
        max_disp_px = require_number(max_disp_px, "max_disp_px", "a disparity in pixels, or None for its percentile")
    for name, limit in (("min_disp_px", min_disp_px), ("max_disp_px", max_disp_px)):
        if limit is not None and not math.isfinite(limit):  # nan painted every pixel one colour, without a word
            raise InputError(f"{name} must be a finite number of pixels, got {limit}")
    # the pixels the map files and density call valid: a finite 0 or below was drawn in colour, its "invalid" black
    valid = np.isfinite(d) & (d > 0)
    if max_disp_px is None:
        max_disp_px = preview_top_px(d)
    span = max(max_disp_px - min_disp_px, 1e-6)
    scaled = np.where(valid, d, np.float32(0))  # then each step in place
    scaled -= min_disp_px
    scaled /= span
    np.clip(scaled, 0, 1, out=scaled)
    scaled *= 255
    rgb = cv2.cvtColor(cv2.applyColorMap(scaled.astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def preview_top_px(disparity_px: np.ndarray) -> float:
    """The disparity at the top of :func:`colorize`'s colours when it is given no range: the map's own 99th
    percentile of its valid pixels, finite and above 0 (1 px for a map without any).

    Examples:
        >>> preview_top_px(np.array([[np.nan, 2.0], [4.0, 4.0]], np.float32))
        4.0
    """
    d = np.asarray(disparity_px, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    return float(np.percentile(d[valid], 99)) if valid.any() else 1.0


def given_range_top_px(max_disp_px: float | None, searched_disp_px: float | None = None) -> float | None:
    """The top of a preview's colours when the user gave the range (``--max-disp``): that range, or the range the
    method searches when it is larger (OpenCV's matchers round it up to a multiple of 16: ``--max-disp 20`` searches
    32); ``None`` when no range was given (the map's own is measured: :func:`preview_top_px`). A network whose output
    reaches past it (the hybrid's, up to 192 px) is drawn against it all the same, values above in the top colour:
    against 192 px a 20 px range showed in one colour.

    Examples:
        >>> given_range_top_px(20, 32), given_range_top_px(20), given_range_top_px(None, 32)
        (32.0, 20.0, None)
    """
    if max_disp_px is None:
        return None
    return float(max(max_disp_px, searched_disp_px or 0))


def _save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` through a file object: given a name, it adds ``.npy`` to one that does not end in it
    exactly (``disp.NPY`` became ``disp.NPY.npy``, and so did the temporary name of an atomic write)."""
    with path.open("wb") as f:
        np.save(f, array)


def _guard(writer, path: Path, array: np.ndarray) -> None:
    try:
        writer(path, array)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
