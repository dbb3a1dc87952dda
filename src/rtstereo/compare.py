"""How different two images or two disparity maps are.

The score is ``(1 - SSIM) / 2`` in 0..1 (0 = identical, 0.5 = unrelated, 1 = inverted), computed on
grey levels for images and on disparities scaled to their common range for disparity maps (over the pixels
where the first map, the reference, is valid, as the metrics are). For
disparity maps the EPE and bad-N between them are reported too. A second input of another size is
resized to the first one's size, and its disparities are scaled by the width ratio; the result says so.
A disparity map of another aspect ratio is refused (stretching it would make its scores meaningless).
"""

from __future__ import annotations

import contextlib
import glob
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError, missing_file_message, require_number, require_numbers, require_path
from .io.disparity import is_colour, read_disparity, read_float_tiff
from .io.download import fetch, file_url_path, forget, is_url, refuse_data_uri, refuse_other_url
from .io.images import grey_dtype, header_size_hw, opened_with_pil, read_image_levels
from .metrics import disparity_metrics
from .sinks.pointcloud import FILES as DEPTH_FILES

# Peak bytes per pixel of the first input's size: tracemalloc over compare_images and compare_disparities on
# 1000x1500 random inputs gave 120 and 90 (SSIM's float64 windows), and the inputs as compare_files decodes them
# (float32 levels, float32 maps) add about 24 and 8. The second input's own copies: up to 16 per pixel of its size.
COMPARE_BYTES_PER_PX = {"image": 150, "disparity": 100}
SECOND_INPUT_BYTES_PER_PX = 16
# The image formats that store 16-bit grey, which is what a disparity map in the KITTI convention is.
SIXTEEN_BIT_SUFFIXES = (".png", ".pgm", ".tif", ".tiff")
# The ends of the names of the depth maps predict writes (--format depth, depth_npy, depth_mm).
DEPTH_NAME_ENDS = tuple(DEPTH_FILES[f].removeprefix("{name}") for f in ("depth", "depth_npy", "depth_mm"))


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_files` (``rtstereo compare``) found.

    Attributes:
        kind: ``"image"`` or ``"disparity"``, how the files were read.
        score: ``(1 - SSIM) / 2`` in 0..1: 0 identical, 0.5 unrelated.
        metrics: for images ``mean_abs_diff`` (8-bit grey levels) and ``psnr_db``; for disparity maps ``epe`` (px),
            ``bad-0.5`` ... ``bad-4``, ``d1`` and ``density`` (percent) of the second map against the first
            (:func:`~rtstereo.metrics.disparity_metrics`).
        resized: how the second file was resized to the first's size, or ``None`` when it was not.
        note: a likely mistake the metrics alone do not show (a sign or scale convention), or ``None``.
    """

    kind: str
    score: float
    metrics: dict[str, float] = field(default_factory=dict)
    resized: str | None = None
    note: str | None = None


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, mask: np.ndarray | None = None) -> float:
    """Mean structural similarity of two float ``(H, W)`` arrays (Gaussian window, sigma 1.5), over the pixels of
    ``mask`` (bool ``(H, W)``) where it is given, else over all.

    Examples:
        >>> x = np.random.default_rng(0).random((32, 32))
        >>> round(ssim(x, x), 6)
        1.0
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s[mask].mean() if mask is not None else s.mean())


def looks_like_disparity(path: str | Path) -> bool:
    """PFM, npy, floating-point TIFF and single-channel 16-bit files (PNG, PGM, TIFF: the KITTI convention)
    are disparity maps; 8-bit and colour images are images."""
    path = Path(path)
    if path.suffix.lower() in (".pfm", ".npy"):
        return True
    return _is_16bit_grey(path) or read_float_tiff(path) is not None


def _is_16bit_grey(path: Path) -> bool:
    """A single-channel 16-bit image: a KITTI disparity map, or the photo of a mono camera."""
    return path.suffix.lower() in SIXTEEN_BIT_SUFFIXES and _has_16bit_grey_header(path)


def _has_16bit_grey_header(path: Path) -> bool:
    """Whether the file holds one channel of 16 bits, asked of its header (the pixels are not decoded)."""
    from PIL import UnidentifiedImageError

    try:
        with opened_with_pil(path) as image:
            return image.mode.startswith("I")  # "I;16", "I;16B" (PNG, TIFF), "I" (PGM)
    except (UnidentifiedImageError, OSError):
        return False  # read as an image, whose reader says what is wrong with it


def compare_images(
    a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("the first image", "the second")
) -> Comparison:
    """Compare two RGB images; another size of the same aspect ratio is resized to ``a``'s.

    Args:
        a: the first image, RGB ``(H, W, 3)`` (RGBA: alpha left out; grey ``(H, W)``): uint8, uint16 (all 16
            bits compared, not rounded to 8), or float in 0..1.
        b: the second, of any of these types and layouts.
        names: what the messages call ``a`` and ``b``.

    Returns:
        The score, ``mean_abs_diff`` in 8-bit grey levels (fractions of a level count, for 16-bit images) and
        ``psnr_db``.

    Raises:
        InputError: an array that is not an image (another layout or type, empty, float levels outside 0..1 or not
            finite), ``b`` has another aspect ratio (resizing would stretch it), or ``names`` is not two strings.
    """
    names = _two_names(names)
    a, b = (require_numbers(x, name, "an image array (H, W), (H, W, 3) or (H, W, 4)") for x, name in zip((a, b), names))
    for image, name in zip((a, b), names):
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
            raise InputError(f"{name}: expected an image (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
        if image.size == 0:  # an empty first image had OpenCV's GaussianBlur assert "!_src.empty()"
            raise InputError(f"{name} is empty ({image.shape[1]}x{image.shape[0]}, WxH): nothing to compare")
    _check_memory("image", a.shape, b.shape, names)
    # One grey channel each: the score is of grey levels (a grey view against a colour one is compared in grey).
    a, b = (
        x if x.ndim == 2 else x[..., 0] if x.shape[2] == 1 else x[..., :3]
        for x in (_levels(a, names[0]), _levels(b, names[1]))
    )
    resized = None
    if a.shape[:2] != b.shape[:2]:
        _check_aspect_ratio(a.shape, b.shape, names)
        resized = f"second image resized from {b.shape[0]}x{b.shape[1]} to {a.shape[0]}x{a.shape[1]} (HxW)"
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    grey = lambda x: (x if x.ndim == 2 else cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)).astype(np.float64)  # noqa: E731
    ga, gb = grey(a), grey(b)
    score = (1.0 - ssim(ga, gb)) / 2.0
    metrics = {"mean_abs_diff": float(np.abs(ga - gb).mean() * 255), "psnr_db": _psnr(ga, gb)}
    return Comparison("image", float(np.clip(score, 0, 1)), metrics, resized)


def _two_names(names: Any) -> tuple[str, str]:
    """``names`` of :func:`compare_images` and :func:`compare_disparities`: two strings (None was a bare TypeError,
    one name a ValueError from unpacking, and a string of two letters was taken for two names).

    Raises:
        InputError: anything else.
    """
    if isinstance(names, (tuple, list)) and len(names) == 2 and all(isinstance(n, str) for n in names):
        return names[0], names[1]
    raise InputError(f"names: expected two strings, what the messages call a and b, got {names!r:.80}")


def _levels(image: np.ndarray, name: str) -> np.ndarray:
    """float32 in 0..1: a uint8 or uint16 image divided by its type's largest value, a float one as it is.

    Raises:
        InputError: another integer type, or a float image with values outside 0..1 or not finite (a float photo in
            0..255 against a uint8 one had a mean difference of 35 728 grey levels and a score of 0.5, "unrelated").
    """
    if image.dtype in (np.uint8, np.uint16):
        return image.astype(np.float32) / np.iinfo(image.dtype).max
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if not np.issubdtype(image.dtype, np.floating):  # int64 0..255 was divided by 2**63 - 1: black
        raise InputError(f"{name}: expected a uint8, uint16 or float (0..1) image, got {image.dtype}")
    levels = image.astype(np.float32)
    if not np.isfinite(levels).all():
        raise InputError(f"{name}: a float image holds levels in 0..1, got values that are not finite (nan or inf)")
    if levels.min() < 0 or levels.max() > 1:
        raise InputError(
            f"{name}: a float image holds levels in 0..1, got values from {levels.min():g} to {levels.max():g} "
            "(one in 0..255: divide it by 255, or give it as uint8)"
        )
    return levels


def compare_disparities(
    a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("the first map", "the second map")
) -> Comparison:
    """Compare two float disparity maps (``nan`` = invalid); ``a`` is the reference.

    Args:
        a: the reference, float ``(H, W)`` pixels.
        b: the map scored against it; another size of the same aspect ratio is resized to ``a``'s.
        names: what the messages call ``a`` and ``b`` (file names).

    Raises:
        InputError: ``a`` or ``b`` is not 2-D, ``a`` has no valid pixel (finite and above 0, as the metrics count
            them), ``b`` has another aspect ratio, or ``names`` is not two strings.
    """
    names = _two_names(names)
    a, b = (require_numbers(x, name, "a float (H, W) array of pixels") for x, name in zip((a, b), names))
    for disparity, name in zip((a, b), names):
        if disparity.ndim != 2:
            raise InputError(f"{name}: expected a disparity map (H, W), got shape {disparity.shape}")
    _check_memory("disparity", a.shape, b.shape, names)
    with np.errstate(invalid="ignore"):
        scored = np.isfinite(a) & (a > 0)  # the pixels the metrics score: ground truth <= 0 is unknown
    if not scored.any():
        with np.errstate(invalid="ignore"):
            negative = int((np.isfinite(a) & (a < 0)).sum())
        hint = f": {negative} of its values are below 0 ({SIGN_HINT})" if negative else ""
        raise InputError(f"{names[0]} (the reference) has no valid pixels{hint}")
    resized = None
    if a.shape != b.shape:
        _check_aspect_ratio(a.shape, b.shape, names)
        scale = a.shape[1] / b.shape[1]
        resized = (
            f"second map resized from {b.shape[0]}x{b.shape[1]} to {a.shape[0]}x{a.shape[1]} (HxW), "
            f"disparities scaled by {scale:.4f}"
        )
        # nearest neighbour copies nan along: invalid pixels stay invalid, and valid ones keep their value (0 too);
        # the exact one picks the pixel at each centre (INTER_NEAREST took a map 3x as large from 1 px off: a perfect
        # one scored an EPE of 0.33 px)
        size = (a.shape[1], a.shape[0])
        b = cv2.resize(b.astype(np.float32), size, interpolation=cv2.INTER_NEAREST_EXACT) * scale
    # Below 0 is invalid, as nan is: SSIM of a map and its negation is 1 (both of its factors change sign), "identical".
    # Scored where A is valid, as the metrics are: B's values where A is unknown (most of KITTI's sparse ground truth)
    # made a map exact at every known pixel score 0.48, "unrelated"; in the common range too, where one value of B at a
    # pixel A holds 0 for unknown squeezed all the others towards 0, and two unrelated maps scored 0.009.
    with np.errstate(invalid="ignore"):
        scored_b = scored & np.isfinite(b) & (b > 0)
    top = max(float(a[scored].max()), float(b[scored_b].max()) if scored_b.any() else 0.0)
    na = np.where(scored, a, 0) / max(top, 1e-6)
    nb = np.where(scored_b, b, 0) / max(top, 1e-6)
    score = (1.0 - ssim(na, nb, mask=scored)) / 2.0
    metrics = disparity_metrics(b, a)
    metrics.pop("pixels", None)
    note = "; ".join(filter(None, (_sign_note(a, b, names), _scale_note(a, b, names)))) or None
    return Comparison("disparity", float(np.clip(score, 0, 1)), metrics, resized, note)


# Disparity here is x_left - x_right, positive; some tools store it with the other sign (RAFT-Stereo's flow).
SIGN_HINT = "disparity stored with the other sign, x_right - x_left, as some tools write it? compare its negation"


def _sign_note(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> str | None:
    """A note when ``b`` is below 0 at most of the pixels where ``a`` is above 0: a sign convention mistake, whose
    metrics alone (an EPE of twice the disparities) do not say so."""
    with np.errstate(invalid="ignore"):
        compared = (a > 0) & np.isfinite(b) & (b != 0)
        negative = float((b[compared] < 0).mean()) if compared.any() else 0.0
    if negative <= 0.5:
        return None
    return f"{names[1]} is below 0 at {negative * 100:.0f} % of the pixels where {names[0]} is above 0: {SIGN_HINT}"


# The likely causes of a map whose disparities are a constant factor of the reference's, by that factor (above 1).
SCALE_CAUSES = {
    2.0: "a map of another resolution (half or full) whose disparities were not scaled with its width",
    4.0: "a map of another resolution (a quarter or full) whose disparities were not scaled with its width",
    16.0: "a 16-bit PNG of disparity x 16 read as KITTI's x 256, or the other way round",
    256.0: "16-bit PNG values not divided by 256 (KITTI's convention)",
}


def _constant_factor(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """``(factor, share)`` when ``b`` is ``a`` times one factor outside 0.9..1.1 at most (``share``) of the pixels
    valid in both; ``None`` otherwise. ``a`` and ``b`` are of one size."""
    with np.errstate(invalid="ignore", divide="ignore"):
        both = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
        ratio = (b[both] / a[both]).astype(np.float64)
    if ratio.size == 0:
        return None
    factor = float(np.median(ratio))
    agreeing = float((np.abs(ratio / factor - 1) <= 0.1).mean())
    if 0.9 <= factor <= 1.1 or agreeing <= 0.5:
        return None
    return factor, agreeing


def _scale_note(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> str | None:
    """A note when ``b`` is ``a`` times one factor far from 1 at most of the pixels valid in both: a scale mistake
    (resolution or file convention), which the score, blind to scale, calls close (a map and its double: 0.11)."""
    found = _constant_factor(a, b)
    if found is None:
        return None
    factor, agreeing = found
    above_1 = max(factor, 1 / factor)
    said = f"{above_1:.3g} times" if factor > 1 else f"1/{above_1:.3g} of"
    cause = next((text for known, text in SCALE_CAUSES.items() if abs(above_1 / known - 1) <= 0.05), None)
    return (
        f"the disparities of {names[1]} are {said} those of {names[0]} at {agreeing * 100:.0f} % of the pixels valid "
        f"in both: a scale mistake? likely {cause or 'another resolution, or another file convention'}"
    )


def _check_memory(kind: str, shape_a: tuple[int, ...], shape_b: tuple[int, ...], names: tuple[str, str]) -> None:
    """Refuse a comparison whose estimated peak (:data:`COMPARE_BYTES_PER_PX`) is over the memory budget, as predict
    and eval refuse a pair (:mod:`~rtstereo.runtime.memory`): two 200 MP images had the process killed.

    Raises:
        MemoryBudgetError: the estimate, the budget and what to do.
    """
    from .runtime.memory import BUDGET_ENV, MemoryBudgetError, format_bytes_apart, memory_budget

    (height, width), pixels_b = shape_a[:2], shape_b[0] * shape_b[1]
    needed = COMPARE_BYTES_PER_PX[kind] * height * width + SECOND_INPUT_BYTES_PER_PX * pixels_b
    budget = memory_budget()
    if needed <= budget.bytes:
        return
    shown_needed, shown_allowed = format_bytes_apart(needed, budget.bytes)
    raise MemoryBudgetError(
        f"comparing {names[0]} and {names[1]} at {height}x{width} (HxW) needs about {shown_needed}, more than the "
        f"{shown_allowed} budget ({budget.source}): compare copies of both made smaller alike, or free memory "
        f"({BUDGET_ENV} sets the budget)"
    )


def _check_aspect_ratio(shape_a: tuple[int, ...], shape_b: tuple[int, ...], names: tuple[str, str]) -> None:
    """Refuse a second map that resizing would stretch: its height at the first one's width must match
    the first one's height to within the rounding of one pixel of each size."""
    (height_a, width_a), (height_b, width_b) = shape_a[:2], shape_b[:2]
    if height_b == 0 or width_b == 0:
        raise InputError(f"{names[1]} is empty ({width_b}x{height_b}, WxH): nothing to compare")
    scale = width_a / width_b
    if abs(height_b * scale - height_a) > scale + 1:
        raise InputError(
            f"{names[0]} is {width_a}x{height_a} and {names[1]} is {width_b}x{height_b} (WxH): another aspect "
            "ratio, so the second would be stretched; compare maps or images of one view at one size (or one "
            "scaled alike in both directions)"
        )


def _read_map(path: str | Path, scale: float | None) -> np.ndarray:
    """A disparity map; ``scale`` divides 8-bit files only (16-bit PNGs keep the KITTI convention, float
    TIFFs their values)."""
    if not _is_8bit_map(Path(path)):
        return read_disparity(path)
    if scale is None and not is_colour(Path(path)):  # a colour image is no map: read_disparity says so, not "--scale"
        raise InputError(
            f"{path}: 8-bit disparity needs its scale (disparity = value / scale; Middlebury 2001/2003 ground "
            "truth uses 4, 8 or 16): give it with --scale"
        )
    return read_disparity(path, scale=scale)


# How compare_files reads its files (compare --kind).
KINDS = ("auto", "image", "disparity")


def compare_files(path_a: str | Path, path_b: str | Path, kind: str = "auto", scale: float | None = None) -> Comparison:
    """Compare two files.

    Args:
        path_a: the first file (the reference for disparity metrics); a ``file://`` URL is read in place, an
            http(s) URL downloaded once into the cache, as ``predict`` reads images.
        path_b: the second file, likewise.
        kind: ``auto`` (from the file types), ``image`` or ``disparity``.
        scale: divisor of 8-bit disparity maps (value / scale); given, ``auto`` reads both files as
            disparity maps.

    Raises:
        InputError: a path that is no ``str`` or ``Path``, another ``kind``, a ``scale`` that is no number; a file
            is missing or unreadable, the kinds differ, a scale is given for images, or the maps cannot be compared.
    """
    # pathlib's bare TypeError (a path of 5), numpy's (a scale of "4"), or a kind of None refused once both were read
    for path, name in ((path_a, "path_a"), (path_b, "path_b")):
        require_path(path, name, "a file (str or Path) or its URL")
    if kind not in KINDS:
        raise InputError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r:.80}")
    if scale is not None:
        require_number(scale, "scale", "the divisor of an 8-bit map's values (Middlebury: 1 to 16)")
    local_a, local_b = _local(path_a), _local(path_b)
    # A download is named by its URL in what compare says, as predict names it, not by its file in the cache.
    downloads = {
        str(local): str(given) for local, given in ((local_a, path_a), (local_b, path_b)) if str(local) != str(given)
    }
    downloads = {local: given for local, given in downloads.items() if file_url_path(given) is None}
    try:
        compared = _compare_local_files(local_a, local_b, kind, scale)
    except InputError as exc:
        for local in downloads:
            if _unreadable(Path(local), scale):  # a web page in its place: the next run downloads it again
                forget(Path(local))
        exc.args = (_urls_named(str(exc.args[0]), downloads), *exc.args[1:])
        raise
    return replace(
        compared, resized=_urls_named(compared.resized, downloads), note=_urls_named(compared.note, downloads)
    )


def _unreadable(path: Path, scale: float | None) -> bool:
    """Whether ``path`` is no image or map at all (what a URL gave in place of one: an HTML page), told apart from a
    good file that does not go with the other (another size): the first is not kept in the cache, the second is."""
    if _header_size_hw(path) is not None:
        return False
    try:
        _read_map(path, scale) if looks_like_disparity(path) else read_image_levels(path)
    except InputError:
        return True
    return False


def _urls_named(text: str | None, downloads: dict[str, str]) -> str | None:
    """``text`` with each downloaded file's path in the cache replaced by its URL."""
    for local, url in downloads.items():
        text = text.replace(local, url) if text is not None else None
    return text


def _compare_local_files(path_a: str | Path, path_b: str | Path, kind: str, scale: float | None) -> Comparison:
    """:func:`compare_files` on two local files."""
    for p in (path_a, path_b):
        if Path(p).is_dir():
            raise InputError(f"{p} is a folder: compare takes two files (images or disparity maps)")
        if not Path(p).is_file() and glob.has_magic(str(p)) and glob.glob(str(p)):  # it said "file not found"
            raise InputError(
                f"{p} is a pattern ({len(glob.glob(str(p)))} files match it): compare takes two files, one pair at a "
                "time; loop over the pairs in the shell"
            )
        if not Path(p).is_file():
            raise InputError(missing_file_message("file", p))
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise InputError(f"the scale of 8-bit disparity maps must be > 0, got {scale}")
    depth = [str(p) for p in (path_a, path_b) if Path(p).name.endswith(DEPTH_NAME_ENDS)]
    if depth and kind != "image":  # read as disparity, a half-size depth map came out doubled, "a scale mistake?"
        raise InputError(
            f"{depth[0]} is a depth map of rtstereo predict (--format depth, depth_npy or depth_mm: metres or "
            "millimetres, not pixels): compare scores disparity maps, in pixels, and scales one of another size by "
            "the width ratio, which depth does not follow; compare the disparity maps written beside them (NAME.pfm)"
        )
    if scale is not None and kind == "image":  # it would be ignored: images are read as they are
        raise InputError(f"a scale ({scale:g}) divides 8-bit disparity maps: it has no meaning for images")
    if kind == "auto" and scale is not None:
        kind = "disparity"
    auto_note: str | None = None  # what auto reading took for granted, said beside the result
    if kind == "auto":
        kinds = {looks_like_disparity(path_a), looks_like_disparity(path_b)}
        if len(kinds) != 1:
            # A file no reader can decode (empty, truncated, not an image) is taken for an image: its reader says what
            # is wrong with it, where "not both images or both disparity maps" sent the user to --kind.
            for path in (path_a, path_b):
                if not looks_like_disparity(path):
                    read_image_levels(path)
            raise InputError(
                f"{path_a} and {path_b} are not both images or both disparity maps; {_mixed_advice(path_a, path_b)}"
            )
        kind = "disparity" if kinds.pop() else "image"
        grey16 = [str(p) for p in (path_a, path_b) if kind == "disparity" and _is_16bit_grey(Path(p))]
        if grey16:  # the file alone cannot tell a KITTI map from a mono camera's photo
            auto_note = (
                f"{' and '.join(grey16)} read as disparity (16-bit grey: value / 256, KITTI's convention); "
                "for a mono camera's 16-bit photos give --kind image"
            )
    sizes = [_header_size_hw(Path(p)) for p in (path_a, path_b)]
    # before decoding (16-bit maps too, which were decoded first): the inputs alone are 8-12 B/px each
    if kind in ("image", "disparity") and None not in sizes:
        _check_memory(kind, sizes[0], sizes[1], (str(path_a), str(path_b)))  # type: ignore[arg-type]
    if kind == "image":
        for p in (path_a, path_b):
            _check_readable_as_image(Path(p))
        return compare_images(read_image_levels(path_a), read_image_levels(path_b), (str(path_a), str(path_b)))
    if kind == "disparity":
        compared = _compare_maps(path_a, path_b, scale)
        return replace(compared, note="; ".join(filter(None, (auto_note, compared.note)))) if auto_note else compared
    raise InputError(f"--kind must be auto, image or disparity, got '{kind}'")


def _mixed_advice(path_a: str | Path, path_b: str | Path) -> str:
    """What to do with a disparity map beside an image: "use --kind image|disparity" was said whatever they were, and
    neither helps a PFM beside a colour preview (NAME_color.png), which each kind refuses one of."""
    image, other = (path_b, path_a) if looks_like_disparity(path_a) else (path_a, path_b)
    photos = ""
    if _is_16bit_grey(Path(other)):  # the one file of the two that may be a photo as well as a map
        photos = f"; for two photos ({other}: a mono camera's 16-bit one) give --kind image"
    if is_colour(Path(image)):
        return (
            f"{image} is a colour image, which no disparity map is (a colourised preview such as NAME_color.png cannot "
            f"be read back): compare the .pfm or 16-bit .png written beside it{photos}"
        )
    return (
        f"{image} is an 8-bit grey image: for an 8-bit disparity map (Middlebury's ground truth) give its divisor with "
        f"--scale S{photos}"
    )


def _local(path: str | Path) -> str | Path:
    """The file to read for ``path``: a path as it is, a URL's file (a ``file://`` URL's own, an http(s) URL's
    download); a URL made into a path had been "file not found: http:/host/a.png"."""
    # not predict's call, which refuse_data_uri names by default
    refuse_data_uri(str(path), "file", "rtstereo.compare.compare_images(a, b) or compare_disparities(a, b)")
    refuse_other_url(str(path), "file")
    return fetch(str(path)) if is_url(str(path)) else require_path(path, "file")  # "~/a.pfm" was "file not found"


def _header_size_hw(path: Path) -> tuple[int, int] | None:
    """``(H, W)`` of an image, PFM or npy file from its header (the pixels are not decoded); ``None`` when it cannot be
    read there (the size is then checked once the file is read: two 200 MP PFMs were read whole first)."""
    suffix = path.suffix.lower()
    if suffix in (".pfm", ".npy"):
        with contextlib.suppress(ValueError, IndexError, StopIteration, OSError):  # damaged: its reader says how
            if suffix == ".npy":
                array = np.load(path, mmap_mode="r", allow_pickle=False)  # an .npz under an .npy name: no array
                return (array.shape[0], array.shape[1]) if isinstance(array, np.ndarray) and array.ndim == 2 else None
            with path.open("rb") as f:  # "Pf", then "W H" (blank lines tolerated, as read_pfm does)
                lines = [line.split() for line in f.read(256).splitlines()]
            width, height = (int(v) for v in next(words for words in lines[1:] if words)[:2])
            # a file too short for its header's size is damaged, which read_pfm says better than a memory estimate
            return (height, width) if 0 < height * width * 4 <= path.stat().st_size else None
        return None
    return header_size_hw(path)  # predict's, from which its images' budget is checked too


def _check_readable_as_image(path: Path) -> None:
    """Refuse, with compare's own advice, a file that only a disparity map can be: read as an image, a PFM said
    "unsupported image depth float32" and a .npy advised predict's Python API.

    Raises:
        InputError: a PFM, .npy or floating-point TIFF file.
    """
    suffix = path.suffix.lower()
    if suffix == ".npy" or suffix == ".pfm" or read_float_tiff(path) is not None:
        what = {".npy": "a numpy array", ".pfm": "a PFM file"}.get(suffix, "a floating-point TIFF")
        raise InputError(
            f"{path} is {what}, which compare reads as a disparity map, not as an image: give --kind disparity (or "
            "leave --kind out); to compare images, save them as PNG or TIFF (8 or 16 bit)"
        )


def _compare_maps(path_a: str | Path, path_b: str | Path, scale: float | None) -> Comparison:
    a, b = _read_map(path_a, scale), _read_map(path_b, scale)
    compared = compare_disparities(a, b, (str(path_a), str(path_b)))
    as_they_are = [str(p) for p in (path_a, path_b) if scale is not None and not _is_8bit_map(Path(p))]
    if scale is not None and len(as_they_are) == 1 and a.shape == b.shape:
        a_is_8bit = as_they_are[0] == str(path_b)
        hint = _scale_hint(a, b, scale, a_is_8bit, str(path_a if a_is_8bit else path_b))
        if hint is not None:
            compared = replace(compared, note="; ".join(filter(None, (compared.note, hint))))
    if not as_they_are:
        return compared
    # Documented, but --scale 8 on two PFMs changed nothing without a word: the user may think it applied.
    note = (
        f"the scale ({scale:g}) divides 8-bit maps only: {' and '.join(as_they_are)} "
        f"{'is' if len(as_they_are) == 1 else 'are'} read as {'it is' if len(as_they_are) == 1 else 'they are'} "
        "(PFM, npy and float TIFF hold disparities, 16-bit maps value / 256)"
    )
    return replace(compared, note="; ".join(filter(None, (note, compared.note))))


def _scale_hint(a: np.ndarray, b: np.ndarray, scale: float, a_is_8bit: bool, name: str) -> str | None:
    """The ``--scale`` with which the one 8-bit map of two of one size agrees with the other, when ``b`` is one factor
    times ``a`` (:func:`_constant_factor`): Tsukuba's ground truth (value / 16) read with ``--scale 8`` came out twice
    the predicted map, and the note named only another resolution, which two maps of one size are not."""
    found = _constant_factor(a, b)
    if found is None:
        return None
    # b = factor x a: the 8-bit map's divisor is off by that factor, one way for a, the other for b
    right = scale / found[0] if a_is_8bit else scale * found[0]
    right = round(right) if abs(right - round(right)) <= 0.05 * right else right  # 16, not 16.2: the divisors are whole
    return (
        f"or the scale of the 8-bit map: {name} read with --scale {right:.3g} agrees with the other (Middlebury "
        "2001/2003 ground truth: tsukuba value / 16, the other 2001 scenes / 8, 2003 at 450 px wide / 4)"
    )


def _is_8bit_map(path: Path) -> bool:
    """Whether ``path`` is a map that a scale divides: not PFM, npy, float TIFF or 16-bit (read as they are)."""
    if path.suffix.lower() in (".pfm", ".npy") or read_float_tiff(path) is not None:
        return False
    return grey_dtype(path) == np.uint8


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))
