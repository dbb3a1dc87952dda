"""From disparity to metric depth and coloured 3D points.

Depth follows from disparity through the rectified calibration (DESIGN.md, "Contracts"):

    depth_m = baseline_m * fx_px / (d + cx1_px - cx0_px)

and a pixel ``(u, v)`` of the left image at depth ``Z`` is the point

    X = (u - cx0_px) * Z / fx_px,   Y = (v - cy_px) * Z / fy_px,   Z

in the left camera's frame, OpenCV convention: x right, y down, z forward, metres; pixel centres at
integer coordinates.

Stereo networks smooth disparity across depth edges, which leaves "flying pixels": points hanging in
the air between a foreground object and the background. :func:`flying_pixel_mask` finds them by the
relative depth jump to their neighbours; :func:`point_cloud` drops them, along with points beyond a
maximum depth and any pixels a confidence mask rejects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import InputError, RtStereoWarning, require_number, require_numbers, warn
from .types import Calibration, DisparityResult, StereoPair, array_summary, require_calibration_type

DEFAULT_MAX_JUMP_REL = 0.1
"""Flying-pixel threshold: a depth jump of more than 10 % to any 8-neighbour. A road seen from a car
(camera 1.65 m high, f = 720 px) changes depth by 3.4 % per row at 40 m and 10 % at 120 m, so the
default keeps slanted surfaces and drops the points smeared across object borders."""


class CalibrationWarning(RtStereoWarning):
    """A calibration was scaled to the images it is used with (it records another size), or one that records no size
    puts its principal point far from their centre (made for images of another size?)."""


# How integer maps are usually encoded, by what they hold: such a map given as it is made depths 256, 16 or 1000
# times off without a word (a 16-bit disparity PNG read with cv2.imread, a depth_mm PNG read back).
_FIXED_POINT = {
    "disparity": "16-bit disparity PNGs hold d * 256 (KITTI's, and the NAME.png of rtstereo predict: "
    "rtstereo.io.read_disparity reads them in pixels), OpenCV's StereoBM and StereoSGBM give int16 d * 16: divide "
    "by that first",
    "depth": "16-bit depth PNGs hold millimetres (the NAME_depth_mm.png of rtstereo predict: "
    "depth_mm.astype(np.float32) / 1000)",
}


def _check_map(values: np.ndarray, name: str, unit: str) -> np.ndarray:
    """A float64 ``(H, W)`` copy of a disparity or depth map of at least one pixel, or an :class:`InputError`
    (for an integer or bool map too: those are fixed-point encodings, read as they are they are off by their scale)."""
    m = require_numbers(values, name, f"a float (H, W) array of {unit}")
    if not np.issubdtype(m.dtype, np.floating):
        raise InputError(
            f"{name}: expected a float (H, W) array of {unit}, got {m.dtype}; {_FIXED_POINT[name]}, or for a map of "
            f"whole {unit}, .astype(np.float32)"
        )
    if m.ndim != 2 or m.size == 0:  # an empty map divided by its height of 0 px (a ZeroDivisionError)
        raise InputError(f"{name}: expected shape (H, W) of at least 1x1 pixels, got {m.shape}")
    return m.astype(np.float64)


def _check_disparity(disparity_px: np.ndarray) -> np.ndarray:
    return _check_map(disparity_px, "disparity", "pixels")


def depth_from_disparity(disparity_px: np.ndarray, calibration: Calibration) -> npt.NDArray[np.float32]:
    """Metric depth of every pixel of the left image.

    Args:
        disparity_px: float ``(H, W)``, pixels, ``nan`` (or ``<= 0``) where invalid.
        calibration: the rectified calibration of the images the disparity belongs to; one that
            records another size of the same aspect ratio is scaled, with a :class:`CalibrationWarning`
            (:func:`calibration_for_size`).

    Returns:
        float32 ``(H, W)`` depth in metres, ``nan`` where the disparity is invalid,
        ``d + cx1_px - cx0_px <= 0`` (a point at or beyond infinity) or the depth beyond float32's range
        (a disparity below about 1e-37 px).

    Raises:
        InputError: the calibration records an image size of another aspect ratio, or the map is of integers (a
            fixed-point encoding, such as a 16-bit PNG's d * 256: divide by its scale first; as every function here).

    Examples:
        >>> cal = Calibration(fx_px=700, fy_px=700, cx0_px=320, cx1_px=330, cy_px=240, baseline_m=0.1)
        >>> depth_from_disparity(np.array([[60.0, np.nan]]), cal)
        array([[ 1., nan]], dtype=float32)
    """
    d = _check_disparity(disparity_px)
    calibration = calibration_for_size(calibration, *d.shape)
    denominator = d + calibration.doffs_px
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        valid = np.isfinite(d) & (d > 0) & (denominator > 0)
        depth = np.where(valid, calibration.baseline_m * calibration.fx_px / np.where(valid, denominator, 1.0), np.nan)
    return _float32_or_nan(depth)


def disparity_from_depth(depth_m: np.ndarray, calibration: Calibration) -> npt.NDArray[np.float32]:
    """The inverse of :func:`depth_from_disparity`: disparity in pixels of a depth map.

    Args:
        depth_m: float ``(H, W)`` metres, ``nan``, ``inf`` or ``<= 0`` where unknown.
        calibration: the rectified calibration (scaled to the map's size as in :func:`depth_from_disparity`).

    Returns:
        float32 ``(H, W)`` disparity in pixels, ``nan`` where the depth is unknown, where the disparity would be
        ``<= 0`` (a depth at or beyond ``baseline_m * fx_px / doffs_px`` when ``cx1_px > cx0_px``, which
        :func:`depth_from_disparity` takes for no match) or beyond float32's range (a depth below about 1e-37 m).

    Examples:
        >>> cal = Calibration(100.0, 100.0, 50.0, 60.0, 50.0, 0.1)  # doffs 10 px: 1 m is as far as it sees
        >>> disparity_from_depth(np.array([[0.5, 1.0, 2.0]]), cal)
        array([[10., nan, nan]], dtype=float32)
    """
    z = _check_map(depth_m, "depth", "metres")
    calibration = calibration_for_size(calibration, *z.shape)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        valid = np.isfinite(z) & (z > 0)
        d = calibration.baseline_m * calibration.fx_px / np.where(valid, z, 1.0) - calibration.doffs_px
        d = np.where(valid & (d > 0), d, np.nan)  # d <= 0: no match, as depth_from_disparity reads it
    return _float32_or_nan(d)


def _float32_or_nan(values: np.ndarray) -> np.ndarray:
    """``values`` as float32, ``nan`` where they lie beyond float32's range: a disparity or depth below about
    1e-37 gave ``inf`` (documented as ``nan``), with numpy's "overflow encountered in cast" warning."""
    with np.errstate(invalid="ignore"):
        beyond = ~(np.abs(values) <= np.finfo(np.float32).max)  # nan stays nan
    return np.where(beyond, np.nan, values).astype(np.float32)


def points_from_depth(depth_m: np.ndarray, calibration: Calibration) -> npt.NDArray[np.float32]:
    """Back-project every pixel of a depth map into the left camera's frame.

    Args:
        depth_m: float ``(H, W)`` metres, ``nan``, ``inf`` (invalid in the depth PFMs ``predict`` writes) or ``<= 0``
            where unknown.
        calibration: the rectified calibration (scaled to the map's size as in :func:`depth_from_disparity`).

    Returns:
        float32 ``(H, W, 3)``: ``X, Y, Z`` in metres (x right, y down, z forward), ``nan`` where the depth is unknown.
    """
    z = _check_map(depth_m, "depth", "metres")
    # inf gave points at infinity (nan on the principal point's column), a negative depth one behind the camera
    with np.errstate(invalid="ignore"):
        z[~(np.isfinite(z) & (z > 0))] = np.nan
    calibration = calibration_for_size(calibration, *z.shape)
    v, u = np.mgrid[0 : z.shape[0], 0 : z.shape[1]]
    points = np.empty((*z.shape, 3), np.float32)
    _back_project(points, u, v, z, calibration)
    return points


def _back_project(out: np.ndarray, u: np.ndarray, v: np.ndarray, z: np.ndarray, calibration: Calibration) -> None:
    """``out[..., :] = X, Y, Z`` of pixels ``(u, v)`` at float64 depths ``z`` (``out`` float32, ``(..., 3)``)."""
    out[..., 0] = (u - calibration.cx0_px) * z / calibration.fx_px
    out[..., 1] = (v - calibration.cy_px) * z / calibration.fy_px
    out[..., 2] = z


def flying_pixel_mask(depth_m: np.ndarray, max_jump_rel: float = DEFAULT_MAX_JUMP_REL) -> np.ndarray:
    """Pixels whose depth jumps by more than ``max_jump_rel`` (relative) to any of its 8 neighbours.

    Both sides of a depth edge and everything smeared between them are marked, so a cloud built
    without them has clean object borders. Neighbours without depth are ignored.

    Args:
        depth_m: float ``(H, W)`` metres, ``nan`` or ``inf`` (as depth PFMs mark it) where unknown.
        max_jump_rel: largest allowed ``|Z - Z_neighbour| / Z``.

    Returns:
        bool ``(H, W)``: True where the pixel is a flying pixel.

    Examples:
        >>> z = np.array([[1.0, 1.0, 2.0, 2.0]])
        >>> flying_pixel_mask(z, 0.1)
        array([[False,  True,  True, False]])
    """
    max_jump_rel = require_number(max_jump_rel, "max_jump_rel", "a relative depth jump > 0, e.g. 0.1")
    if not max_jump_rel > 0:
        raise InputError(f"max_jump_rel must be > 0 (a relative depth jump, e.g. 0.1), got {max_jump_rel}")
    z = require_numbers(depth_m, "depth", "a float (H, W) array of metres").astype(np.float32)
    if z.ndim != 2:
        raise InputError(f"depth: expected shape (H, W), got {z.shape}")
    z = np.where(np.isfinite(z), z, np.nan)  # an inf neighbour jumped by inf and marked every pixel around it
    height, width = z.shape
    padded = np.pad(z, 1, constant_values=np.nan)
    jump = np.zeros_like(z)
    with np.errstate(invalid="ignore"):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy == 0 and dx == 0:
                    continue
                neighbour = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
                # fmax ignores nan: unknown neighbours neither mark nor clear a pixel.
                jump = np.fmax(jump, np.abs(z - neighbour))
        # Compare |dZ| with max_jump_rel * Z instead of dividing: same test, a fraction of the time.
        return np.isfinite(z) & (jump > max_jump_rel * z)


@dataclass(frozen=True, eq=False)  # equal when the same object, as StereoPair (its arrays made == raise)
class PointCloud:
    """Points seen by the left camera, with their colours.

    Attributes:
        points_m: float32 ``(N, 3)`` ``X, Y, Z`` metres, left camera frame (x right, y down, z forward).
        colors: uint8 ``(N, 3)`` RGB, or ``None`` when no image was given.
        pixel_index: int64 ``(N,)`` flat index ``v * W + u`` of the pixel each point comes from.
        size_hw: ``(H, W)`` of the image the points come from.

    Raises:
        InputError: points that are not finite or not ``(N, 3)``, colours that are not uint8 ``(N, 3)``.
    """

    points_m: np.ndarray
    colors: np.ndarray | None
    pixel_index: np.ndarray
    size_hw: tuple[int, int]

    def __post_init__(self) -> None:
        # A cloud made by hand (points filtered or moved) went to the writers as given, and they cast it: colours
        # 0..1 came out black, 300 as 44, one colour was repeated to every point, nan points went into the file.
        points = require_numbers(self.points_m, "points_m", "a float (N, 3) array of X, Y, Z metres")
        if points.ndim != 2 or points.shape[1] != 3:
            raise InputError(f"points_m: expected shape (N, 3) (X, Y, Z metres), got {points.shape}")
        if not np.isfinite(points).all():
            raise InputError(
                f"points_m: {np.count_nonzero(~np.isfinite(points).all(axis=1))} of {len(points)} points are not "
                "finite (nan or inf), which point cloud files cannot hold; keep the others: "
                "points_m[np.isfinite(points_m).all(axis=1)]"
            )
        if self.colors is not None:
            colors = np.asarray(self.colors)
            if colors.dtype != np.uint8 or colors.shape != points.shape:
                hint = "; for 0..1 colours (colors * 255).round().astype(np.uint8)" if colors.dtype.kind == "f" else ""
                raise InputError(
                    f"colors: expected uint8 RGB of shape {points.shape}, one per point, got {colors.dtype} "
                    f"{colors.shape}{hint}"
                )

    def __len__(self) -> int:
        return int(self.points_m.shape[0])

    def __repr__(self) -> str:
        # the arrays by dtype and shape, not their values (a million points' worth of lines, cut by numpy)
        return (
            f"PointCloud(points_m={array_summary(self.points_m)}, colors={array_summary(self.colors)}, "
            f"pixel_index={array_summary(self.pixel_index)}, size_hw={self.size_hw!r})"
        )


def point_cloud(
    disparity_px: np.ndarray,
    calibration: Calibration,
    image: np.ndarray | None = None,
    *,
    max_depth_m: float | None = None,
    max_jump_rel: float | None = DEFAULT_MAX_JUMP_REL,
    mask: np.ndarray | None = None,
) -> PointCloud:
    """Coloured metric points of the valid pixels of a disparity map.

    Args:
        disparity_px: float ``(H, W)`` pixels, ``nan`` where invalid.
        calibration: the rectified calibration of the images (scaled to their size as in
            :func:`depth_from_disparity`).
        image: uint8 RGB ``(H, W, 3)`` left image for colours (grey ``(H, W)`` is repeated to three channels,
            alpha dropped, as :meth:`~rtstereo.runtime.predictor.Predictor.predict` takes them), or ``None``.
        max_depth_m: drop points farther than this (far points carry the largest depth error:
            it grows with the square of the depth); ``None`` keeps all.
        max_jump_rel: flying-pixel threshold (see :func:`flying_pixel_mask`); ``None`` keeps them.
        mask: bool ``(H, W)``, True where a pixel may be used (e.g. a left-right consistency mask).

    Returns:
        A :class:`PointCloud`.

    Examples:
        >>> cal = Calibration(fx_px=100, fy_px=100, cx0_px=1.5, cx1_px=1.5, cy_px=1.5, baseline_m=0.1)
        >>> cloud = point_cloud(np.full((4, 4), 5.0), cal)
        >>> len(cloud), float(cloud.points_m[0, 2])
        (16, 2.0)
    """
    calibration = calibration_for_size(calibration, *_check_disparity(disparity_px).shape)  # warns once
    depth = depth_from_disparity(disparity_px, calibration)
    keep = np.isfinite(depth)
    if max_depth_m is not None:
        max_depth_m = require_number(max_depth_m, "max_depth_m", "a depth in metres > 0, or None to keep all points")
        if not max_depth_m > 0:
            raise InputError(f"max_depth_m must be > 0 metres, got {max_depth_m}")
        keep &= depth <= max_depth_m
    if max_jump_rel is not None:
        keep &= ~flying_pixel_mask(depth, max_jump_rel)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != depth.shape:
            raise InputError(f"mask: expected shape {depth.shape} like the disparity, got {mask.shape}")
        if mask.dtype != np.bool_:
            # a soft confidence (0..1) would keep every pixel above 0: it is thresholded by the caller
            raise InputError(
                f"mask: expected bool {depth.shape} (True where a pixel may be used), got {mask.dtype}; threshold a "
                "confidence map first (mask=confidence > 0.5)"
            )
        keep &= mask
    colors = None
    if image is not None:
        image = np.asarray(image)
        if image.ndim == 2:  # grey, and below RGBA, taken as predict takes them: the grey view of a mono camera
            image = image[:, :, None]
        elif image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        if image.shape[:2] != depth.shape or image.ndim != 3 or image.shape[2] not in (1, 3) or image.dtype != np.uint8:
            raise InputError(
                f"image: expected uint8 RGB of shape {depth.shape + (3,)} (or grey {depth.shape}) like the disparity, "
                f"got {image.dtype} {image.shape}"
            )
        colors = np.ascontiguousarray(np.repeat(image[keep], 3 // image.shape[2], axis=1))
    index = np.flatnonzero(keep)
    # Back-projected at the kept pixels only: the whole map's X, Y, Z in float64 took about 90 bytes per
    # pixel, 1.1 GB for a 12-megapixel pair.
    v, u = np.divmod(index, depth.shape[1])
    points = np.empty((len(index), 3), np.float32)
    _back_project(points, u, v, depth.ravel()[index].astype(np.float64), calibration)
    return PointCloud(points_m=points, colors=colors, pixel_index=index, size_hw=depth.shape)


def result_point_cloud(
    result: DisparityResult,
    *,
    max_depth_m: float | None = None,
    max_jump_rel: float | None = DEFAULT_MAX_JUMP_REL,
    mask: np.ndarray | None = None,
) -> PointCloud:
    """:func:`point_cloud` of a :class:`~rtstereo.types.DisparityResult`, coloured by its left image.

    Raises:
        InputError: the result has no calibration.
    """
    calibration = require_calibration(result)  # checks that it is a result, before its fields are read
    return point_cloud(
        result.disparity_px,
        calibration,
        result.left,
        max_depth_m=max_depth_m,
        max_jump_rel=max_jump_rel,
        mask=mask,
    )


def require_calibration(result: DisparityResult) -> Calibration:
    """The result's calibration, or an error that says how to give one."""
    if not isinstance(result, DisparityResult):  # an AttributeError ('... has no attribute calibration') before
        raise InputError(
            f"expected a DisparityResult (what predict() returns), got {type(result).__name__}; for a bare map, "
            "point_cloud(disparity_px, calibration)"
        )
    if result.calibration is None:
        raise InputError(
            "metric depth and point clouds need the cameras' calibration (focal length, baseline), and this "
            "result has none: pass --calib FILE (KITTI, Middlebury calib.txt, OpenCV YAML, rtstereo JSON) or "
            "--rectify maps.npz on the command line, or calibration= to predict()"
        )
    return result.calibration


def calibration_for_size(calibration: Calibration, height_px: int, width_px: int) -> Calibration:
    """The calibration of images of ``width_px x height_px``, scaled if it was made at another size.

    A calibration without a recorded size (a KITTI ``calib/NNNNNN.txt``) is returned as it is, with a
    :class:`CalibrationWarning` when its principal point is far from the images' centre: then it was
    most likely made for images of another size (a downscaled copy), and depth would be off by that
    ratio. Resized images (same aspect ratio) of a calibration that records its size get scaled
    intrinsics and a :class:`CalibrationWarning`, since resizing is never silent (attributed to the
    first caller outside rtstereo).

    Raises:
        InputError: the images have another aspect ratio (cropped, or another camera), or ``calibration``
            is not a :class:`~rtstereo.types.Calibration`.
    """
    calibration = require_calibration_type(calibration)
    if calibration.width_px <= 0 or calibration.height_px <= 0:
        _warn_if_made_for_another_size(calibration, height_px, width_px)
        return calibration
    if (calibration.width_px, calibration.height_px) == (width_px, height_px):
        return calibration
    factors = calibration_scale(calibration, height_px, width_px)
    if factors is None and calibration_scale(calibration, width_px, height_px) is not None:
        # a file whose width_px and height_px were written the other way round puts the principal point at the centre
        # of the images as given: said, as the EXIF tag was the only cause named
        recorded_hw = (calibration.height_px, calibration.width_px)
        swapped = _off_centre(calibration, height_px, width_px) < _off_centre(calibration, *recorded_hw)
        fields = (
            f"; or the calibration's width_px and height_px are the other way round: its principal point "
            f"({calibration.cx0_px:.1f}, {calibration.cy_px:.1f}) px lies near the centre of these images"
            if swapped
            else ""
        )
        raise InputError(
            f"the calibration is for {calibration.height_px}x{calibration.width_px} (HxW) images but these are "
            f"{height_px}x{width_px}, the same turned 90 degrees: photos turned upright by their EXIF orientation "
            "tag (applied when read, as viewers do), calibrated as stored or the other way round? Calibrate "
            f"with the images as rtstereo reads them (rtstereo calibrate){fields}"
        )
    if factors is None:
        raise InputError(
            f"the calibration is for {calibration.height_px}x{calibration.width_px} (HxW) images but these are "
            f"{height_px}x{width_px} (another aspect ratio: cropped, or another camera); give the images at "
            f"{calibration.height_px}x{calibration.width_px} (or resized alike), or calibrate at this size "
            "(rtstereo calibrate); from Python, Calibration.cropped(x0, y0, width, height) moves the calibration "
            "with a crop"
        )
    warn(
        f"the calibration is for {calibration.height_px}x{calibration.width_px} (HxW) images; scaled by "
        f"{factors[0]:.4f} to these {height_px}x{width_px} images",
        CalibrationWarning,
    )
    return calibration.scaled(*factors)


def _off_centre(calibration: Calibration, height_px: int, width_px: int) -> float:
    """How far the principal point lies from the centre of ``width_px x height_px`` images, in fractions of their
    sides (0: at the centre)."""
    return abs((calibration.cx0_px + 0.5) / width_px - 0.5) + abs((calibration.cy_px + 0.5) / height_px - 0.5)


def calibration_scale(calibration: Calibration, height_px: int, width_px: int) -> tuple[float, float] | None:
    """``(sx, sy)`` that take a calibration made at its recorded size to ``width_px x height_px`` images, or
    ``None`` when those have another aspect ratio (cropped, or another camera).

    Resized images have one scale ``s`` on both sides, each rounded to whole pixels either way: such a scale
    must exist with ``|s * width - width_px| <= 1`` and ``|s * height - height_px| <= 1``. (A tolerance of 1 %
    on ``sx / sy`` took 1920x1080 frames padded or cropped to 1920x1088 or 1920x1072 for a resize, and scaled
    fy and cy by 0.7 %; and refused a KITTI image shrunk to 78x23, whose rounding moves its sides 2 % apart.)

    Examples:
        >>> cal = Calibration(fx_px=721, fy_px=721, cx0_px=609, cx1_px=609, cy_px=172, baseline_m=0.54,
        ...                   width_px=1242, height_px=375)
        >>> calibration_scale(cal, 188, 621)
        (0.5, 0.5013333333333333)
        >>> calibration_scale(cal, 367, 1242) is None
        True
    """
    width, height = calibration.width_px, calibration.height_px
    lowest = max((width_px - 1) / width, (height_px - 1) / height)
    highest = min((width_px + 1) / width, (height_px + 1) / height)
    return (width_px / width, height_px / height) if lowest <= highest else None


# A calibration of these images has its principal point in the middle half of each side (KITTI's at
# 0.48-0.49 of the width and height); a copy resized by 2 puts it near the edge, or beyond.
_CENTRAL_FRACTION = (0.25, 0.75)


def _warn_if_made_for_another_size(calibration: Calibration, height_px: int, width_px: int) -> None:
    """Warn when a calibration that records no image size cannot belong to ``width_px x height_px`` images."""
    at_x, at_y = calibration.cx0_px / width_px, calibration.cy_px / height_px
    low, high = _CENTRAL_FRACTION
    if low <= at_x <= high and low <= at_y <= high:
        return
    made_w, made_h = 2 * calibration.cx0_px, 2 * calibration.cy_px
    if made_w < 2 or made_h < 2:  # within the images' first pixel, or beyond their top-left corner: no size makes it
        warn(
            f"the calibration records no image size, and its principal point ({calibration.cx0_px:.4g}, "
            f"{calibration.cy_px:.4g}) px lies at the top-left corner of these {height_px}x{width_px} (HxW) images or "
            "beyond it, the centre of no image: is it in pixels (not normalised to the image size), and for these "
            "images?",
            CalibrationWarning,
        )
        return
    warn(
        f"the calibration records no image size, and its principal point ({calibration.cx0_px:.1f}, "
        f"{calibration.cy_px:.1f}) px is far from the centre of these {height_px}x{width_px} (HxW) images (it is "
        f"the centre of about {made_h:.0f}x{made_w:.0f} ones): if they are a resized copy, depth and point clouds "
        f"are off by about {made_w / width_px:.2f}x; give a calibration that records its image size (rtstereo's "
        "calibration.json: width_px, height_px), which is then scaled to the images",
        CalibrationWarning,
    )


def pair_with_calibration_for_size(pair: StereoPair) -> StereoPair:
    """The pair with its calibration scaled to its images' size (:func:`calibration_for_size`: a
    :class:`CalibrationWarning` when it is scaled), or the pair itself when nothing changes. A calibration
    that records no size and puts the principal point far from the images' centre gets a
    :class:`CalibrationWarning`.

    Raises:
        InputError: the calibration records an image size of another aspect ratio, or ``pair`` is not a
            :class:`~rtstereo.types.StereoPair`.
    """
    if not isinstance(pair, StereoPair):
        raise InputError(
            f"expected a StereoPair, got {type(pair).__name__}: predict_pair(StereoPair(left, right)), or "
            "predict(left, right)"
        )
    if pair.calibration is None:
        return pair
    calibration = calibration_for_size(pair.calibration, *pair.size_hw)
    return pair if calibration is pair.calibration else dataclasses.replace(pair, calibration=calibration)
