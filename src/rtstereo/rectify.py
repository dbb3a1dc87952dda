"""Rectified input: checking it, calibrating a rig from board images, and rectifying with maps.

Stereo networks assume that a point appears on the same row in both images. A pair that is off by a
pixel or two vertically gives poor disparity that is easily blamed on the network, so:

- :func:`check_rectification` measures the vertical misalignment of a pair from feature matches;
- :func:`calibrate_stereo` calibrates a stereo rig from chessboard or ChArUco views (OpenCV);
- :class:`Rectifier` holds the resulting rectification maps: ``Rectifier.from_file("maps.npz")
  .rectify(left, right) -> (left, right, calibration)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError, OutputError, require_number, require_path, require_whole, warn
from .io.atomic import atomic_path, os_reason
from .io.calibration import (
    FORMAT_TAG,
    PLAUSIBLE_BASELINE_M,
    CalibrationUnitWarning,
    NoNamedEntriesError,
    calibration_from_dict,
    calibration_from_projections,
    check_length_unit,
    opencv_metres_per_unit,
    read_opencv,
    rectified_format,
    rig_folder_hint,
    write_calibration,
    write_opencv,
)
from .io.download import fetch, file_url_path, is_url, read_downloaded, refuse_other_url
from .io.images import opened_with_pil
from .models.sgbm import EXPOSURE_RATIO_LIMIT
from .text import counted
from .types import Calibration, DisparityResult, as_rgb_uint8

# ---------------------------------------------------------------------------------------------------
# Rectification check
# ---------------------------------------------------------------------------------------------------

# A pair is warned about (adapt: refused) beyond this misalignment where features matched: a 1 px offset of
# a rendered scene can read a little under 1 px, a rectified one at most 0.54 px (benchmarks/rectification_check.py).
MAX_MISALIGNMENT_PX = 0.75
LEVEL_PX = 0.5  # a vertical offset below this is "level": the sub-pixel matches scatter by about 0.2 px
MIN_MATCHES = 20
# Matches that move along the columns by this much (median |dy|) but not along the rows (median |dx| below
# the second figure): cameras one above the other, as a rig on its side or its views turned upright by EXIF.
SIDEWAYS_MIN_DY_PX = 3.0
SIDEWAYS_MAX_DX_PX = 1.0
# Brightness of the right view over the left one at matched features beyond which the cameras seem to
# expose differently (the pairs of ../shared/data/validation as taken: 0.94-1.11); the hybrid's
# sgbm_input=auto switches at the same ratio of the whole images' mean grey levels.
MAX_BRIGHTNESS_RATIO = EXPOSURE_RATIO_LIMIT
_BRIGHTNESS_WINDOW_PX = 15  # the grey level compared at a matched feature is this square's mean
_CHECK_MAX_WIDTH_PX = 1280  # larger images are checked at this width (figures scaled back)
# A match is kept by the row fit within this distance of the fitted plane, and by the matcher when its
# Lucas-Kanade refinement, run back from the right view, returns within it of where it started (px).
_INLIER_BAND_PX = 0.75
# ORB's FAST corner threshold: OpenCV's default, 20 grey levels, found so few corners in the example pair with
# its right view 1.4x brighter (the clipped view's texture is faint) that exactly the 20 matches needed to judge
# it were left; ORB keeps its strongest corners anyway, so textured images give much the same matches.
_FAST_THRESHOLD = 10
_ORB_EDGE_PX = 31  # ORB's edgeThreshold (its default): no feature is found within it of a border
_MAX_DX_FRACTION = 0.5  # matches moving further across than this share of the width are taken as wrong
_REGIONS = 4  # no cell of a _REGIONS x _REGIONS grid counts more than _REGION_CAP matches (_region_weights)
_REGION_CAP = 10
_TILT_GAIN = 0.6  # a roll / scale difference is fitted only when it cuts the fit's cost below this share
_MATCH_SCATTER_PX = 0.25  # the sub-pixel matches of a pair scatter by about this much about its rows
_MIN_SLOPE_SPAN = 0.2  # ... and only along a direction in which the matches span this share of the image
# The rows' fit must hold this share of the (weighted) matches for the check to judge the pair: below it,
# wrong matches (repeating texture, noise) outweigh the ones that agree on one set of rows.
MIN_AGREEING_SHARE = 0.5
# ... unless this share of them (weighted) lies more than _OFF_ROW_PX off their rows: then the pair is judged not
# rectified all the same, without a fit (RectificationCheck.judged_without_fit). The raw views of a rig bend their
# rows beyond a plane (the cameras' relative turn; a rendered chessboard rig, its board's repeats also matched
# wrongly: 98-100 %), and a pair on its side moves its matches down by their disparity, which varies with depth
# (100 %); of rectified pairs whose fit held too few, at most 80 % lay so (the 31 rendered ones of
# benchmarks/rectification_check.py --seed 300 with 20 matches or more) and 82 % (the noisy pair of the tests).
OFF_ROWS_MIN_SHARE = 0.9
_OFF_ROW_PX = 2 * MAX_MISALIGNMENT_PX


# What the warning of a pair that does not look rectified advises; said otherwise of a pair --rectify rectified.
CALIBRATE_ADVICE = "Calibrate the rig (rtstereo calibrate) and pass --rectify maps.npz"


@dataclass(frozen=True)
class RectificationCheck:
    """How well the rows of a pair line up, from matched features.

    The vertical offset ``dy = y_left - y_right`` of the matches is fitted robustly with
    ``dy = offset + a * x + b * y`` (x, y from the image centre): a constant offset, a roll between
    the cameras (``a``) and a focal-length difference (``b``), the usual ways a pair is not rectified;
    ``a`` and ``b`` are left at 0 unless the matches need them (see ``_fit_rows``).

    Attributes:
        misalignment_px: largest ``|dy|`` the fit predicts over the image (its corners), pixels.
        offset_px: fitted ``dy`` at the image centre, pixels.
        median_abs_dy_px: median ``|dy|`` of the matches kept by the fit, pixels.
        median_dx_px: median ``x_left - x_right`` of those matches (negative: left and right swapped).
        matches: number of matches kept by the fit.
        brightness_ratio: median over those matches of the right view's mean grey level around the
            match over the left view's (``nan`` when too few are neither dark nor saturated).
        matched_misalignment_px: largest ``|dy|`` the fit predicts over the box the kept matches span,
            pixels (``None``: as ``misalignment_px``); see :attr:`measured_misalignment_px`.
        agreeing_share: share of the matches the fit keeps, each weighted by its region of the image; below
            :data:`MIN_AGREEING_SHARE` the check is not ``conclusive``.
        supported_misalignment_px: largest ``|dy|`` at the image corners less twice the fit's standard error
            there (at least 0), pixels: what :func:`align_rows` goes by (``None``: as ``misalignment_px``).
        judged_without_fit: the fit held under :data:`MIN_AGREEING_SHARE` of the matches, but at least
            :data:`OFF_ROWS_MIN_SHARE` of them (weighted) lie more than ``2 * MAX_MISALIGNMENT_PX`` off their rows:
            the pair is judged all the same, by every match the matcher kept (``matches``), without ``row_plane``;
            ``misalignment_px`` and ``median_abs_dy_px`` are then their median ``|dy|``, ``offset_px`` their
            median ``dy`` and ``median_dx_px`` their median ``dx`` (each weighted by region).
    """

    misalignment_px: float
    offset_px: float
    median_abs_dy_px: float
    median_dx_px: float
    matches: int
    brightness_ratio: float = float("nan")
    row_plane: tuple[float, float, float] | None = None  # dy = offset + a x_right + b y_left, centred full-size px
    matched_misalignment_px: float | None = None
    agreeing_share: float = 1.0
    supported_misalignment_px: float | None = None
    judged_without_fit: bool = False

    @property
    def conclusive(self) -> bool:
        """Whether enough features matched, and agreed, to judge the pair (textureless pairs, and pairs whose
        matches mostly disagree with one another, cannot be judged, unless nearly all of them lie well off
        their rows: :attr:`judged_without_fit`)."""
        enough = self.agreeing_share >= MIN_AGREEING_SHARE or self.judged_without_fit
        return self.matches >= MIN_MATCHES and enough

    @property
    def measured_misalignment_px(self) -> float:
        """The misalignment where features matched, which the verdicts (:meth:`is_rectified`, :meth:`warning`)
        go by: ``misalignment_px`` extrapolates the fit to the image corners, and on rectified pairs whose
        features lie in one part of the image (a textured strip below a plain wall) it read 1-8 px."""
        return self.misalignment_px if self.matched_misalignment_px is None else self.matched_misalignment_px

    def is_rectified(self, max_misalignment_px: float = MAX_MISALIGNMENT_PX) -> bool:
        """True unless the check is conclusive and finds more than ``max_misalignment_px`` where features matched."""
        return not self.conclusive or self.measured_misalignment_px <= max_misalignment_px

    def exposure_warning(self, max_ratio: float = MAX_BRIGHTNESS_RATIO) -> str | None:
        """A one-line warning when the right view is more than ``max_ratio`` times as bright as the left
        one at the matched features, or as much darker; ``None`` otherwise (or when it cannot tell)."""
        ratio = self.brightness_ratio
        if not np.isfinite(ratio) or 1 / max_ratio <= ratio <= max_ratio:
            return None
        how = f"{ratio:.2f}x as bright as" if ratio > 1 else f"{1 / ratio:.2f}x darker than"
        return (
            f"the right view is {how} the left one at {self.matches} matched features: the cameras seem to "
            "expose differently, which costs matching accuracy; default (the hybrid) gives SGBM contrast-normalised "
            f"views itself when the whole images differ by more than {EXPOSURE_RATIO_LIMIT:g}x (sgbm_input=auto; "
            "README: 'Cameras that "
            "expose differently')"
        )

    def rows_off(self) -> str:
        """How far the rows are off, in words that say what was measured: the largest ``|dy|`` the fit gives where
        features matched, or, for a pair judged without a fit (:attr:`judged_without_fit`), the median ``|dy|``
        of its matches, which is no maximum.

        Examples:
            >>> RectificationCheck(2.1, -2.1, 2.0, 30.0, 400).rows_off()
            'rows off by up to 2.1 px'
            >>> RectificationCheck(6.0, 6.0, 6.0, 30.0, 400, judged_without_fit=True).rows_off()
            'rows off by 6.0 px at the median matched feature'
        """
        if self.judged_without_fit:
            return f"rows off by {self.median_abs_dy_px:.1f} px at the median matched feature"
        return f"rows off by up to {self.measured_misalignment_px:.1f} px"

    def lower_view(self) -> str:
        """Which view is lower, in words: what a user turns or shims on the rig (``dy = y_left - y_right``).

        Examples:
            >>> RectificationCheck(2.1, -2.1, 2.0, 30.0, 400).lower_view()
            'the right view lies 2.1 px lower than the left one at the centre'
            >>> RectificationCheck(3.0, 0.1, 1.5, 30.0, 400).lower_view()  # doctest: +ELLIPSIS
            'the views are level at the centre, and which one is lower changes across the image (a roll or ...)'
        """
        offset = self.offset_px
        if self.judged_without_fit:
            lower, higher = ("left", "right") if offset > 0 else ("right", "left")
            return (
                f"the {lower} view lies {abs(offset):.1f} px lower than the {higher} one at the median matched "
                "feature, and no one offset, roll or focal-length difference lines the features up (cameras far "
                "out of line, or a lens's distortion)"
            )
        if abs(offset) >= LEVEL_PX:
            lower, higher = ("left", "right") if offset > 0 else ("right", "left")
            text = f"the {lower} view lies {abs(offset):.1f} px lower than the {higher} one at the centre"
        else:
            text = "the views are level at the centre"
        if self.measured_misalignment_px > abs(offset) + LEVEL_PX:
            text += (
                ", and which one is lower changes across the image (a roll or a focal-length difference between "
                "the cameras)"
            )
        return text

    def sideways(self) -> bool:
        """Whether the matches move along the columns and not along the rows: the cameras sit one above the
        other (a rig on its side), and no rectification of rows can make the pair a horizontal one.

        Examples:
            >>> RectificationCheck(22.0, 22.0, 22.0, 0.1, 40).sideways()
            True
            >>> RectificationCheck(2.1, -2.1, 2.0, 30.0, 400).sideways()
            False
        """
        return self.median_abs_dy_px >= SIDEWAYS_MIN_DY_PX and abs(self.median_dx_px) < SIDEWAYS_MAX_DX_PX

    def warning(self, max_misalignment_px: float = MAX_MISALIGNMENT_PX) -> str | None:
        """A one-line warning for users, or ``None`` when the pair looks rectified."""
        if not self.conclusive:
            return None
        if self.median_dx_px < -1.0:
            return (
                f"left and right look swapped: matched features lie {-self.median_dx_px:.1f} px further "
                "left in the left image than in the right one (a left view sees them further right); swap "
                "the two inputs"
            )
        if self.measured_misalignment_px > max_misalignment_px and self.sideways():
            # dy = y_left - y_right > 0: a pair turned 90 degrees clockwise (x became y), which the opposite turn undoes
            turn = "counter-clockwise" if self.offset_px > 0 else "clockwise"
            return (
                f"the views are offset along the columns, not the rows (matched features {self.median_abs_dy_px:.1f} "
                f"px apart vertically, {abs(self.median_dx_px):.1f} px horizontally): the cameras sit one above the "
                "other in these images, as a rig held on its side gives, or photos that their EXIF orientation tag "
                f"turned upright (rtstereo applies it, as viewers do); turn both views 90 degrees {turn}, so that "
                "the cameras sit side by side"
            )
        if self.measured_misalignment_px > max_misalignment_px and self.judged_without_fit:
            return (
                f"the pair does not look rectified: rows are off by {self.median_abs_dy_px:.1f} px at the median "
                f"of {self.matches} matched features ({self.lower_view()}; expected < {max_misalignment_px:g} px); "
                f"disparity will be poor. {CALIBRATE_ADVICE}"
            )
        if self.measured_misalignment_px > max_misalignment_px:
            return (
                f"the pair does not look rectified: rows are off by up to {self.measured_misalignment_px:.1f} px "
                f"({self.lower_view()}; median |dy| {self.median_abs_dy_px:.2f} px "
                f"over {self.matches} matched features; expected < {max_misalignment_px:g} px); disparity "
                f"will be poor. {CALIBRATE_ADVICE}"
            )
        return None


def check_rectification(
    left: np.ndarray, right: np.ndarray, max_features: int = 1000, ratio: float = 0.75
) -> RectificationCheck:
    """Measure the vertical misalignment of a stereo pair.

    ORB features are matched with a ratio test, refined to sub-pixel with Lucas-Kanade (kept when the
    refinement run back from the right view returns to where it started, and when they move across the
    way most of them do, by at most half the width), and their vertical offsets fitted robustly, no
    region of the image counting more than a few matches (see :class:`RectificationCheck`).

    Args:
        left: uint8 RGB ``(H, W, 3)`` (or grey).
        right: uint8 RGB, same size.
        max_features: ORB features per image.
        ratio: Lowe's ratio test threshold.

    Returns:
        A :class:`RectificationCheck`; with fewer than ``MIN_MATCHES`` matches, or when the fit holds less
        than :data:`MIN_AGREEING_SHARE` of them, its figures are ``nan`` and ``conclusive`` is False, unless
        nearly all the matches lie well off their rows (:attr:`RectificationCheck.judged_without_fit`).
    """
    left, right = as_rgb_uint8(left, "left image"), as_rgb_uint8(right, "right image")
    if require_whole(max_features, "max_features", "a whole number of features >= 1") < 1:
        raise InputError(f"max_features: expected a whole number of features >= 1, got {max_features}")
    if not 0 < require_number(ratio, "ratio", "Lowe's ratio in (0, 1]") <= 1:  # over 1, every match passed
        raise InputError(f"ratio: expected Lowe's ratio in (0, 1], got {ratio}")
    if left.shape != right.shape:
        raise InputError(f"left and right differ in size: {left.shape} vs {right.shape}")
    height, width = left.shape[:2]
    scale = min(1.0, _CHECK_MAX_WIDTH_PX / width)
    # A strip far wider than tall shrinks to one row or none (2x2000, 8x40000), where OpenCV's resize or ORB fail with
    # an assertion (a traceback from predict); ORB finds no feature within 31 px of an edge anyway.
    if round(height * scale) < 2:
        return RectificationCheck(np.nan, np.nan, np.nan, np.nan, 0)
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (left, right)]
    if scale < 1.0:
        grey = [cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for g in grey]
    if min(grey[0].shape) <= 2 * _ORB_EDGE_PX:
        # No feature can be found, and a view 1 px high (a 2x4000 strip at the check's width) failed inside ORB's
        # image pyramid, a traceback from predict.
        return RectificationCheck(np.nan, np.nan, np.nan, np.nan, 0)
    # Matched and refined on the right view with the left one's grey-level histogram: Lucas-Kanade
    # assumes both views equally bright, and a camera exposing differently biased its rows by up to 2 px.
    points_left, points_right = _matched_points(grey[0], match_histogram(grey[1], grey[0]), max_features, ratio)
    points_left, points_right = _within_search_range(points_left, points_right, grey[0].shape[1])
    if len(points_left) < MIN_MATCHES:
        return RectificationCheck(np.nan, np.nan, np.nan, np.nan, len(points_left))
    weights = _region_weights(points_left, grey[0].shape)
    # Back to full-resolution pixels, coordinates from the image centre.
    points_left = points_left / scale - np.array([width / 2, height / 2])
    points_right = points_right / scale - np.array([width / 2, height / 2])
    dy = points_left[:, 1] - points_right[:, 1]
    coefficients, inliers = _fit_rows(points_left, dy, weights, (width, height))
    agreeing_share = float(weights[inliers].sum() / weights.sum())
    if inliers.sum() < MIN_MATCHES or agreeing_share < MIN_AGREEING_SHARE:
        # No one set of rows holds the matches: a rectified pair whose matches are mostly wrong (and scatter about
        # its rows), or rows that are off everywhere but bent (the raw views of a rig, a lens's distortion) or set
        # by depth (a pair on its side). The latter leave hardly a match near its row, so they are still reported,
        # with no plane for align_rows to resample by.
        if weights[np.abs(dy) > _OFF_ROW_PX].sum() < OFF_ROWS_MIN_SHARE * weights.sum():
            return RectificationCheck(np.nan, np.nan, np.nan, np.nan, int(inliers.sum()), agreeing_share=agreeing_share)
        median_abs_dy = _weighted_median(np.abs(dy), weights)
        return RectificationCheck(
            misalignment_px=median_abs_dy,
            offset_px=_weighted_median(dy, weights),
            median_abs_dy_px=median_abs_dy,
            median_dx_px=_weighted_median(points_left[:, 0] - points_right[:, 0], weights),
            matches=len(dy),
            agreeing_share=agreeing_share,
            judged_without_fit=True,
        )
    brightness = _brightness_ratio(
        grey,
        (points_left[inliers] + [width / 2, height / 2]) * scale,
        (points_right[inliers] + [width / 2, height / 2]) * scale,
    )
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]) * np.array([width / 2, height / 2])
    at_corners = coefficients[0] + corners @ coefficients[1:]
    terms = [0] + [i for i in (1, 2) if coefficients[i] != 0]
    corner_error = _standard_error(points_left[inliers], dy[inliers], weights[inliers], coefficients, terms, corners)
    low, high = points_left[inliers].min(axis=0), points_left[inliers].max(axis=0)
    box = np.array([[low[0], low[1]], [high[0], low[1]], [low[0], high[1]], [high[0], high[1]]])
    at_box = coefficients[0] + box @ coefficients[1:]
    return RectificationCheck(
        misalignment_px=float(np.abs(at_corners).max()),
        supported_misalignment_px=float(np.maximum(np.abs(at_corners) - 2 * corner_error, 0).max()),
        matched_misalignment_px=float(np.abs(at_box).max()),
        offset_px=float(coefficients[0]),
        median_abs_dy_px=float(np.median(np.abs(dy[inliers]))),
        median_dx_px=float(np.median(points_left[inliers, 0] - points_right[inliers, 0])),
        matches=int(inliers.sum()),
        brightness_ratio=brightness,
        row_plane=_alignment_plane(points_left[inliers], points_right[inliers], dy[inliers], terms),
        agreeing_share=agreeing_share,
    )


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value below which half of the total weight lies (the lower one on a tie).

    Examples:
        >>> _weighted_median(np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 3.0]))
        2.0
    """
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _alignment_plane(
    points_left: np.ndarray, points_right: np.ndarray, dy: np.ndarray, terms: list[int]
) -> tuple[float, float, float]:
    """``dy`` fitted as ``offset + a * x_right + b * y_left`` (centred pixels) over the kept matches, with the
    ``terms`` the check fitted (0: offset, 1: ``a``, 2: ``b``; the others 0): the aligned right view takes,
    at its column x and the left view's row y, the right view's row ``y - dy``. Fitted at the left view's
    columns instead, a roll left ``a * disparity`` behind (0.3 px at 0.4 degrees on teddy)."""
    design = np.column_stack([np.ones(len(dy)), points_right[:, 0], points_left[:, 1]])
    plane = np.zeros(3)
    plane[terms] = np.linalg.lstsq(design[:, terms], dy, rcond=None)[0]
    return float(plane[0]), float(plane[1]), float(plane[2])


def _standard_error(
    xy: np.ndarray, dy: np.ndarray, weights: np.ndarray, coefficients: np.ndarray, terms: list[int], at: np.ndarray
) -> np.ndarray:
    """Standard error (pixels) of the fitted ``dy`` at the points ``at`` (centred pixels), from the scatter of
    the kept matches about the fit, each counting as its weight of an observation (:func:`_region_weights`)."""
    design = np.column_stack([np.ones(len(dy)), xy])[:, terms]
    residuals = dy - np.column_stack([np.ones(len(dy)), xy]) @ coefficients
    variance = float(weights @ np.square(residuals)) / max(float(weights.sum()) - len(terms), 1.0)
    covariance = variance * np.linalg.pinv(design.T @ (design * weights[:, None]))
    points = np.column_stack([np.ones(len(at)), at])[:, terms]
    return np.sqrt(np.einsum("ij,jk,ik->i", points, covariance, points))


# align_rows corrects a measured misalignment above this at the image corners, less twice the fit's standard
# error there (pixels); below it the fit is mostly noise (rectified pairs of the selection set measure 0.03-0.47 px).
ALIGN_MIN_PX = 0.3


def align_rows(
    left: np.ndarray, right: np.ndarray, check: RectificationCheck | None = None
) -> tuple[np.ndarray, RectificationCheck]:
    """The right view resampled so that its rows meet the left one's, from the misalignment the
    rectification check fits (:class:`RectificationCheck`: a vertical offset, a roll and a focal-length
    difference): a touch-up for a rig whose calibration has drifted by a pixel or two, not a replacement
    for rectification.

    It changes nothing when the check is inconclusive, judges the pair without a fit
    (:attr:`RectificationCheck.judged_without_fit`: no ``row_plane``), finds the views swapped or on their side
    (:meth:`RectificationCheck.sideways`: shifting rows would only slide one camera's view over the other's), or
    measures at most :data:`ALIGN_MIN_PX` at the corners once twice the fit's standard error there is taken off
    (:attr:`RectificationCheck.supported_misalignment_px`). Disparity is unchanged in meaning: only rows move.

    Args:
        left, right: uint8 RGB ``(H, W, 3)`` of one size.
        check: :func:`check_rectification` of this pair, if already made.

    Returns:
        The right view (aligned, or as it was) and the check it was aligned by.
    """
    if check is not None and not isinstance(check, RectificationCheck):
        raise InputError(f"check: expected the RectificationCheck of check_rectification, got {type(check).__name__}")
    check = check if check is not None else check_rectification(left, right)
    maps = row_alignment_maps(check, *right.shape[:2])
    if maps is None:
        return right, check
    return remap_in_tiles(right, *maps), check


# cv2.remap refuses an image or map with a side of SHRT_MAX (32767) px or more: an assertion, as a traceback.
_REMAP_MAX_SIDE_PX = 32766
_REMAP_TILE_PX = 8192


def remap_in_tiles(
    image: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    tile_px: int | None = None,
    border: int = cv2.BORDER_REPLICATE,
) -> np.ndarray:
    """``cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)`` at any size: an image or map with a
    side of 32767 px or more (a panorama, a line-scan strip), which ``cv2.remap`` refuses, is remapped in tiles,
    each from the part of the image its coordinates reach, to the same values.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``.
        map_x, map_y: float32 ``(h, w)``, finite: where each output pixel samples the image.
        tile_px: the side of the tiles (smaller ones where a tile's coordinates spread wider than OpenCV takes);
            ``None``: one call of ``cv2.remap`` where the sizes allow it, else tiles of 8192 px.
        border: ``cv2.BORDER_REPLICATE``, or ``cv2.BORDER_CONSTANT`` (0 beyond the image).

    Examples:
        >>> image = np.arange(48, dtype=np.uint8).reshape(6, 8)
        >>> map_y, map_x = (m.astype(np.float32) for m in np.mgrid[0:6, 0:8])
        >>> opencv = cv2.remap(image, map_x - 0.5, map_y + 0.25, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        >>> bool((remap_in_tiles(image, map_x - 0.5, map_y + 0.25, tile_px=3) == opencv).all())
        True
    """
    if tile_px is None and max(*image.shape[:2], *map_x.shape) <= _REMAP_MAX_SIDE_PX:
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
    out = np.empty(map_x.shape + image.shape[2:], image.dtype)
    tiles = (0, map_x.shape[0]), (0, map_x.shape[1])
    _remap_tiles(image, map_x, map_y, out, *tiles, tile_px or _REMAP_TILE_PX, border)
    return out


def _remap_tiles(
    image: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    out: np.ndarray,
    rows: tuple[int, int],
    cols: tuple[int, int],
    tile_px: int,
    border: int,
) -> None:
    """Fill ``out[rows, cols]`` tile by tile (see :func:`remap_in_tiles`)."""
    height, width = image.shape[:2]
    for y0 in range(rows[0], rows[1], tile_px):
        for x0 in range(cols[0], cols[1], tile_px):
            y1, x1 = min(y0 + tile_px, rows[1]), min(x0 + tile_px, cols[1])
            tile_x, tile_y = map_x[y0:y1, x0:x1], map_y[y0:y1, x0:x1]
            # The image pixels the tile's coordinates reach, with the second tap of each: a part cut at the image's
            # edges only, so that its border is the image's. Integer offsets keep the coordinates exact in float32.
            left, top = (int(np.clip(np.floor(m.min()), 0, n - 1)) for m, n in ((tile_x, width), (tile_y, height)))
            right, bottom = (int(np.clip(np.floor(m.max()) + 2, 1, n)) for m, n in ((tile_x, width), (tile_y, height)))
            if max(right - left, bottom - top) > _REMAP_MAX_SIDE_PX and tile_px > 1:  # coordinates spread wide
                _remap_tiles(image, map_x, map_y, out, (y0, y1), (x0, x1), max(1, tile_px // 4), border)
                continue
            part = image[top:bottom, left:right]
            out[y0:y1, x0:x1] = cv2.remap(
                part, tile_x - np.float32(left), tile_y - np.float32(top), cv2.INTER_LINEAR, borderMode=border
            )


def row_alignment_maps(check: RectificationCheck, height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``cv2.remap`` maps that align a right view of ``height`` x ``width`` by ``check``'s fitted rows
    (see :func:`align_rows`), or ``None`` when there is nothing to align (inconclusive, judged without a fit,
    swapped, on their side, or at most :data:`ALIGN_MIN_PX` beyond the fit's uncertainty). A stream computes
    them once and applies them to every frame."""
    supported_px = check.misalignment_px if check.supported_misalignment_px is None else check.supported_misalignment_px
    if (
        check.row_plane is None
        or not check.conclusive
        or check.median_dx_px < -1.0
        or check.sideways()
        or not supported_px > ALIGN_MIN_PX
    ):
        return None
    offset, a, b = check.row_plane
    xs = np.arange(width, dtype=np.float32)[None, :] - np.float32(width / 2)
    ys = np.arange(height, dtype=np.float32)[:, None] - np.float32(height / 2)
    # dy = y_left - y_right, fitted at the right view's columns and the left view's rows: the aligned right
    # view's pixel (x, y) is the right view's (x, y - dy).
    map_y = (ys + np.float32(height / 2)) - (np.float32(offset) + np.float32(a) * xs + np.float32(b) * ys)
    map_x = np.broadcast_to(xs + np.float32(width / 2), (height, width))
    return np.ascontiguousarray(map_x), np.ascontiguousarray(map_y, dtype=np.float32)


def row_alignment_record(check: RectificationCheck, applied: bool) -> dict[str, Any]:
    """What ``--align-rows`` did to a pair (``predict``'s JSON sidecar) or a stream (``video``'s summary): without
    it, a map made from a resampled right view could not be told from one of the views as they were.

    Args:
        check: the :class:`RectificationCheck` it went by.
        applied: whether the right view was resampled.

    Returns:
        ``applied``; ``misalignment_px``: the largest row misalignment measured before (pixels, ``None`` when the
        check could not judge the pair); ``row_shift_px``: when applied, the rows' shift ``dy = offset +
        per_column * (x - W / 2) + per_row * (y - H / 2)`` (the aligned right view's pixel ``(x, y)`` is the
        right view's ``(x, y - dy)``), else ``None``.

    Examples:
        >>> check = RectificationCheck(1.2, 1.0, 0.8, 30.0, 200, row_plane=(1.0, 0.001, -0.0005))
        >>> row_alignment_record(check, applied=True)["row_shift_px"]
        {'offset': 1.0, 'per_column': 0.001, 'per_row': -0.0005}
    """
    measured = check.measured_misalignment_px if check.conclusive else None
    shift = None
    if applied and check.row_plane is not None:
        offset, per_column, per_row = (float(v) for v in check.row_plane)
        shift = {"offset": offset, "per_column": per_column, "per_row": per_row}
    return {
        "applied": bool(applied),
        "misalignment_px": None if measured is None or not np.isfinite(measured) else round(float(measured), 4),
        "row_shift_px": shift,
    }


def match_histogram(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """uint8 ``image`` mapped grey level by grey level so that its histogram follows ``reference``'s
    (both uint8 of one channel; a monotone map, so image structure and positions are kept).

    Examples:
        >>> dark = np.array([[10, 20], [30, 40]], np.uint8)
        >>> match_histogram(dark, dark * 2).tolist()
        [[20, 40], [60, 80]]
    """
    source = np.cumsum(np.bincount(image.ravel(), minlength=256)) / image.size
    target = np.cumsum(np.bincount(reference.ravel(), minlength=256)) / reference.size
    lut = np.searchsorted(target, source - 1e-9).clip(0, 255).astype(np.uint8)
    return lut[image]


def _brightness_ratio(grey: list[np.ndarray], points_left: np.ndarray, points_right: np.ndarray) -> float:
    """Median, over matched points (pixels of the grey images), of the right image's mean grey level
    around its point over the left one's; points whose means are dark or saturated are left out."""
    window = (_BRIGHTNESS_WINDOW_PX, _BRIGHTNESS_WINDOW_PX)
    means = []
    for image, points in zip(grey, (points_left, points_right), strict=True):
        blurred = cv2.blur(image.astype(np.float32), window)
        xy = points.astype(np.float32)
        # in tiles: a strip 40000 px tall (checked at its own size) is more than cv2.remap takes
        means.append(remap_in_tiles(blurred, xy[None, :, 0], xy[None, :, 1], border=cv2.BORDER_CONSTANT)[0])
    left, right = means
    usable = (left > 10) & (left < 245) & (right > 10) & (right < 245)
    if usable.sum() < MIN_MATCHES:
        return float("nan")
    return float(np.median(right[usable] / left[usable]))


def _matched_points(
    grey_left: np.ndarray, grey_right: np.ndarray, max_features: int, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    orb = cv2.ORB_create(nfeatures=max_features, fastThreshold=_FAST_THRESHOLD, edgeThreshold=_ORB_EDGE_PX)
    keys_left, desc_left = orb.detectAndCompute(grey_left, None)
    keys_right, desc_right = orb.detectAndCompute(grey_right, None)
    empty = np.zeros((0, 2), np.float32)
    if desc_left is None or desc_right is None or len(keys_left) < 2 or len(keys_right) < 2:
        return empty, empty
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(desc_left, desc_right, k=2)
    good = [pair[0] for pair in knn if len(pair) == 2 and pair[0].distance < ratio * pair[1].distance]
    if not good:
        return empty, empty
    points_left = np.array([keys_left[m.queryIdx].pt for m in good], np.float32)
    points_right = np.array([keys_right[m.trainIdx].pt for m in good], np.float32)
    # ORB positions are quantised by its pyramid (steps of up to ~2 px): refine them to sub-pixel,
    # starting from the ORB match, with a small Lucas-Kanade step.
    refined, status = _lucas_kanade_step(grey_left, grey_right, points_left.reshape(-1, 1, 2), points_right)
    # Forward-backward check (Kalal et al. 2010): refined back from the right view, a true match returns
    # to where it started; a wrong ORB match that the fit could take in by tilting does not.
    returned, status_back = _lucas_kanade_step(grey_right, grey_left, refined, points_left)
    refined = refined.reshape(-1, 2)
    round_trip_px = np.linalg.norm(returned.reshape(-1, 2) - points_left, axis=1)
    ok = (
        (status.ravel() == 1)
        & (status_back.ravel() == 1)
        & (np.abs(refined - points_right).max(axis=1) < 3.0)
        & (round_trip_px <= _INLIER_BAND_PX)
    )
    return points_left[ok].astype(np.float64), refined[ok].astype(np.float64)


def _lucas_kanade_step(
    grey_from: np.ndarray, grey_to: np.ndarray, points_from: np.ndarray, guesses_to: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where ``points_from`` (float32 ``(n, 1, 2)``) of one view lie in the other, found by a small Lucas-Kanade step
    (15x15 windows, one pyramid level) from ``guesses_to`` (``(n, 2)``): the points ``(n, 1, 2)`` and whether each
    was found ``(n, 1)``."""
    found, status, _ = cv2.calcOpticalFlowPyrLK(
        grey_from,
        grey_to,
        points_from,
        guesses_to.reshape(-1, 1, 2).copy(),
        winSize=(15, 15),
        maxLevel=1,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
    )
    return found, status


def _within_search_range(
    points_left: np.ndarray, points_right: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The matches whose horizontal displacement ``x_left - x_right`` has the sign most of them have (at most
    1 px the other way) and is at most :data:`_MAX_DX_FRACTION` of the width. A true match of a rectified pair
    lies so; wrong matches along repeating slanted stripes slide across as well as down (in rendered scenes, up
    to 205 px the wrong way). The sign is the majority's, not positive, so that swapped views are still found
    and reported."""
    dx = points_left[:, 0] - points_right[:, 0]
    if not len(dx):
        return points_left, points_right
    sign = 1.0 if np.median(dx) >= 0 else -1.0
    keep = (sign * dx >= -1.0) & (sign * dx <= _MAX_DX_FRACTION * width)
    return points_left[keep], points_right[keep]


def _region_weights(points: np.ndarray, shape_hw: tuple[int, ...]) -> np.ndarray:
    """Per-match weights under which no cell of the image's ``_REGIONS x _REGIONS`` grid holds more than
    :data:`_REGION_CAP` matches' worth: repeating texture gives many consistent wrong matches in one patch,
    which must not outvote the rest of the image."""
    height, width = shape_hw[:2]
    column = np.clip((points[:, 0] * _REGIONS / width).astype(int), 0, _REGIONS - 1)
    row = np.clip((points[:, 1] * _REGIONS / height).astype(int), 0, _REGIONS - 1)
    cell = row * _REGIONS + column
    counts = np.bincount(cell, minlength=_REGIONS * _REGIONS)[cell]
    return np.minimum(1.0, _REGION_CAP / counts)


def _fit_rows(
    xy: np.ndarray,
    dy: np.ndarray,
    weights: np.ndarray,
    size_wh: tuple[int, int],
    iterations: int = 200,
    band: float = _INLIER_BAND_PX,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the vertical offsets ``dy = c0 + c1 x + c2 y`` robustly, with a roll and scale difference only
    where the matches need them.

    Two models are fitted by MSAC (each match's squared residual capped at ``band^2`` and weighted by
    :func:`_region_weights`): a constant offset (every match's ``dy`` tried) and a plane (``iterations``
    random triples). The plane is taken only when it costs less than :data:`_TILT_GAIN` times the offset's
    cost, each with the matches' own scatter (:data:`_MATCH_SCATTER_PX` each) added: a roll of 0.5 degrees
    leaves most matches beyond the band of a constant offset, while a plane tilted to take in a few wrong
    matches gains little, and so tilted read rectified rendered scenes up to 3.9 px off. MSAC rather than
    counting the matches within ``band``: a count let a plane tilted just enough to take in two wrong
    matches far from the rest beat the flat one (the example pair, right view 1.3x brighter, read 1.8 px
    off). A slope is kept only where the plane's matches span at least
    :data:`_MIN_SLOPE_SPAN` of the image's width (roll) or height (scale; ``size_wh``, pixels). Least squares
    over the matches within ``band`` gives the figures.

    Returns:
        ``(coefficients, inliers)``: ``(c0, c1, c2)`` (``c1 = c2 = 0`` for an offset) and the matches kept.
    """
    design = np.column_stack([np.ones(len(xy)), xy])

    def cost(residuals: np.ndarray) -> np.ndarray:
        return np.square(np.minimum(np.abs(residuals), band)) @ weights

    offsets = np.unique(dy)
    offset_costs = cost(dy[None, :] - offsets[:, None])
    rng = np.random.default_rng(0)  # deterministic: the same pair always gives the same figure
    samples = rng.choice(len(xy), (iterations, 3), p=weights / weights.sum())
    matrices = design[samples]
    # Triples that repeat a match, or lie on one line, define no plane.
    usable = np.abs(np.linalg.det(matrices)) > 1e-6 * np.abs(xy).max() ** 2
    planes = np.linalg.solve(matrices[usable], dy[samples[usable]][..., None])[..., 0]
    plane_costs = cost(dy[None, :] - planes @ design.T) if len(planes) else np.array([np.inf])
    # Both costs carry the matches' own scatter, so that a plane fitting the noise of an offset that already
    # fits does not count as a gain.
    floor = _MATCH_SCATTER_PX**2 * weights.sum()
    if plane_costs.min() + floor < _TILT_GAIN * (offset_costs.min() + floor):
        coefficients = planes[int(np.argmin(plane_costs))].copy()
        inliers = np.abs(dy - design @ coefficients) <= band
        # A slope is fitted only where the matches span a fifth of the image or more (5-95 %): measured over a
        # narrow patch it is mostly noise, and extrapolated to the image corners it read a rectified rendered
        # scene 7.3 px off (from matches 29 px wide), which --align-rows then resampled by as much.
        spread = np.percentile(xy[inliers], 95, axis=0) - np.percentile(xy[inliers], 5, axis=0)
        terms = [0] + [1 + axis for axis in (0, 1) if spread[axis] >= size_wh[axis] * _MIN_SLOPE_SPAN]
        coefficients[[axis for axis in (1, 2) if axis not in terms]] = 0.0
    else:
        terms, coefficients = [0], np.array([offsets[int(np.argmin(offset_costs))], 0.0, 0.0])
        inliers = np.abs(dy - design @ coefficients) <= band
    for _ in range(2):  # refitted on the matches of the chosen model, then on those of the refit
        if inliers.sum() <= len(terms):
            break
        root = np.sqrt(weights[inliers])
        coefficients[terms] = np.linalg.lstsq(
            design[inliers][:, terms] * root[:, None], dy[inliers] * root, rcond=None
        )[0]
        inliers = np.abs(dy - design @ coefficients) <= band
    return coefficients, inliers


# ---------------------------------------------------------------------------------------------------
# Calibration boards
# ---------------------------------------------------------------------------------------------------

ARUCO_DICTIONARIES = (
    "DICT_4X4_50",
    "DICT_4X4_100",
    "DICT_4X4_250",
    "DICT_4X4_1000",
    "DICT_5X5_50",
    "DICT_5X5_100",
    "DICT_5X5_250",
    "DICT_5X5_1000",
    "DICT_6X6_50",
    "DICT_6X6_100",
    "DICT_6X6_250",
    "DICT_6X6_1000",
    "DICT_7X7_50",
    "DICT_7X7_100",
    "DICT_7X7_250",
    "DICT_7X7_1000",
    "DICT_ARUCO_ORIGINAL",
)
DEFAULT_ARUCO_DICTIONARY = "DICT_5X5_100"
_MIN_CHARUCO_CORNERS = 6  # a ChArUco view with fewer corners found is not used
_SB_DETECTOR_SEED = 0
BOARD_HELP = (
    "chessboard:COLSxROWS:SQUARE_M (inner corners, e.g. chessboard:9x6:0.025) or "
    f"charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT][:legacy] (squares, e.g. charuco:11x8:0.03:0.022; DICT default "
    f"{DEFAULT_ARUCO_DICTIONARY}; legacy: a board of an even number of rows made with OpenCV before 4.6)"
)
# OpenCV 4.6 changed the layout of ChArUco boards with an even number of rows (their top-left square is black, where
# it was white and held a marker); a board printed before, or by a generator that kept the old layout, is found by the
# new one in few views or none (rendered views of an 11x8 board of the old layout: 2 of 8 left views, 0 right).
_LEGACY_ADVICE = (
    "; a ChArUco board of an even number of rows made with OpenCV before 4.6, or a generator that kept its layout, "
    "has a marker in its top-left square (the newer layout prints it black): add :legacy to --board"
)


@dataclass(frozen=True)
class Board:
    """A planar calibration target.

    Attributes:
        kind: ``chessboard`` or ``charuco``.
        cols, rows: inner corners (chessboard) or squares (ChArUco) across and down.
        square_m: side of one square, metres (sets the unit of the baseline).
        marker_m: side of an ArUco marker, metres (ChArUco only).
        dictionary: ArUco dictionary name (ChArUco only).
        legacy: the layout of ChArUco boards made with OpenCV before 4.6, which differs from the newer one where
            the board has an even number of rows.
    """

    kind: str
    cols: int
    rows: int
    square_m: float
    marker_m: float = 0.0
    dictionary: str = DEFAULT_ARUCO_DICTIONARY
    legacy: bool = False

    @classmethod
    def parse(cls, text: str) -> Board:
        """Parse ``chessboard:9x6:0.025`` or ``charuco:11x8:0.03:0.022[:DICT_5X5_100][:legacy]``.

        Examples:
            >>> Board.parse("chessboard:9x6:0.025")  # doctest: +NORMALIZE_WHITESPACE
            Board(kind='chessboard', cols=9, rows=6, square_m=0.025, marker_m=0.0, dictionary='DICT_5X5_100',
                  legacy=False)
            >>> Board.parse("charuco:11x8:0.03:0.022:legacy").legacy
            True
        """
        if not isinstance(text, str):  # a bare AttributeError: 'int' object has no attribute 'strip'
            raise InputError(f"board: expected text, {BOARD_HELP}; got {type(text).__name__}")
        parts = text.strip().split(":")
        kind = parts[0].lower()
        legacy = kind == "charuco" and len(parts) > 4 and parts[-1].lower() == "legacy"
        if legacy:
            parts = parts[:-1]
        try:
            if kind == "chessboard" and len(parts) == 3:
                cols, rows = (int(v) for v in parts[1].lower().split("x"))
                board = cls(kind, cols, rows, _length_m(parts[2], "square", text))
            elif kind == "charuco" and len(parts) in (4, 5):
                cols, rows = (int(v) for v in parts[1].lower().split("x"))
                dictionary = parts[4].upper() if len(parts) == 5 else DEFAULT_ARUCO_DICTIONARY
                square_m, marker_m = _length_m(parts[2], "square", text), _length_m(parts[3], "marker", text)
                board = cls(kind, cols, rows, square_m, marker_m, dictionary, legacy)
            else:
                raise ValueError("wrong number of fields")
        except InputError:  # a length with a unit: said as it is (an InputError is a ValueError too)
            raise
        except ValueError as exc:
            raise InputError(f"board '{text}' not understood ({exc}); expected {BOARD_HELP}") from None
        board._check()
        return board

    def _check(self) -> None:
        if self.cols < 2 or self.rows < 2:
            raise InputError(f"board: needs at least 2x2 corners/squares, got {self.cols}x{self.rows}")
        if not self.square_m > 0:
            raise InputError(f"board: square size must be > 0 metres, got {self.square_m}")
        if self.square_m > 1.0:
            raise InputError(
                f"board: a square of {self.square_m} m is implausible; give the size in metres (e.g. 0.025 for 25 mm)"
            )
        if self.kind == "charuco":
            corners = (self.cols - 1) * (self.rows - 1)
            if min(self.cols, self.rows) < 3 or corners < _MIN_CHARUCO_CORNERS:
                # a view is used from 6 corners on, not all on one line: such a board was never found, "check --board"
                raise InputError(
                    f"board: a ChArUco board of {self.cols}x{self.rows} squares has {corners} inner corners"
                    f"{' on one line' if min(self.cols, self.rows) < 3 else ''}; a view needs at least "
                    f"{_MIN_CHARUCO_CORNERS}, not on one line: give one of at least 3x4 squares"
                )
            if not 0 < self.marker_m < self.square_m:
                raise InputError(
                    f"board: the marker ({self.marker_m} m) must be smaller than the square ({self.square_m} m)"
                )
            if self.dictionary not in ARUCO_DICTIONARIES:
                raise InputError(
                    f"board: unknown ArUco dictionary '{self.dictionary}' (known: {', '.join(ARUCO_DICTIONARIES)})"
                )
            # OpenCV made such a board without a word, and then searched views for markers no dictionary holds:
            # minutes a view for 1000x1000 squares, and never a board found
            markers, held = self.cols * self.rows // 2, _dictionary_size(self.dictionary)
            if markers > held:
                larger = [
                    name
                    for name in ARUCO_DICTIONARIES
                    if name.rsplit("_", 1)[0] == self.dictionary.rsplit("_", 1)[0] and _dictionary_size(name) >= markers
                ]
                instead = f" (such as {larger[0]})" if larger else ""
                raise InputError(
                    f"board: a ChArUco board of {self.cols}x{self.rows} squares holds {markers} markers, more than the "
                    f"{held} of {self.dictionary}: give the dictionary it was made with{instead}, or check its squares "
                    "across x down"
                )

    @property
    def text(self) -> str:
        """The board as ``--board`` gives it (:meth:`parse` reads it back).

        Examples:
            >>> Board.parse("charuco:11x8:0.03:0.022:legacy").text
            'charuco:11x8:0.03:0.022:DICT_5X5_100:legacy'
        """
        if self.kind == "chessboard":
            return f"chessboard:{self.cols}x{self.rows}:{self.square_m:g}"
        legacy = ":legacy" if self.legacy else ""
        return f"charuco:{self.cols}x{self.rows}:{self.square_m:g}:{self.marker_m:g}:{self.dictionary}{legacy}"

    def _other_layouts(self) -> list[Board]:
        """ChArUco boards of the same squares and markers that a print of this one may be instead: its columns and rows
        the other way round, and the other of OpenCV's two layouts (before and since 4.6; they differ for an even
        number of rows only)."""
        if self.kind != "charuco":
            return []
        c, r, legacy_given = self.cols, self.rows, self.legacy
        # an odd number of rows has one layout, given without :legacy
        layouts = [
            (cols, rows, legacy and rows % 2 == 0)
            for cols, rows, legacy in ((r, c, legacy_given), (c, r, not legacy_given), (r, c, not legacy_given))
        ]
        given = (c, r, legacy_given and r % 2 == 0)
        return [
            dataclasses.replace(self, cols=cols, rows=rows, legacy=legacy)
            for cols, rows, legacy in dict.fromkeys(layouts)
            if (cols, rows, legacy) != given
        ]

    def opencv_charuco(self):
        """The ``cv2.aruco.CharucoBoard`` of a ChArUco board."""
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, dictionary)
        board.setLegacyPattern(self.legacy)
        return board

    def object_points(self) -> np.ndarray:
        """float32 ``(N, 3)``: every corner on the board plane ``z = 0``, metres, in detection order."""
        if self.kind == "charuco":
            return np.asarray(self.opencv_charuco().getChessboardCorners(), np.float32).reshape(-1, 3)
        grid = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2)
        return np.column_stack([grid * self.square_m, np.zeros(len(grid))]).astype(np.float32)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Find the board's corners in an image.

        Args:
            image: uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``.

        Returns:
            ``(corner_ids, image_points)``: int ``(N,)`` indices into :meth:`object_points` and float32
            ``(N, 2)`` pixel positions; ``None`` when the board is not found.
        """
        return self._detect(image)[0]

    def _detect(self, image: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray] | None, float | None, Board | None]:
        """:meth:`detect`'s result; for a ChArUco board found, the markers' size as seen over the one given
        (:func:`_marker_scale`; ``None`` for a chessboard, or where it cannot be told); and for a ChArUco board not
        found where its markers are seen, the board of another layout they fit (:meth:`_other_layouts`), or ``None``.
        """
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if self.kind == "charuco":
            charuco = self.opencv_charuco()
            corners, ids, marker_corners, marker_ids = cv2.aruco.CharucoDetector(charuco).detectBoard(grey)
            if ids is None or len(ids) < _MIN_CHARUCO_CORNERS:
                return None, None, self._layout_of(grey, marker_corners, marker_ids)
            found = np.asarray(ids).ravel().astype(np.int64), np.asarray(corners, np.float32).reshape(-1, 2)
            return found, _marker_scale(charuco, found, marker_corners, marker_ids), None
        size = (self.cols, self.rows)
        # The classic detector with sub-pixel refinement is the more accurate on sharp views; the
        # sector-based one (SB) finds boards the classic one misses (blur, strong perspective).
        found, corners = cv2.findChessboardCorners(
            grey,
            size,
            flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK,
        )
        if found:
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
            corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
        else:
            # The SB detector draws from OpenCV's global random generator: seeded, a view gives the same corners (and
            # the same first corner) whatever was detected before (one ChArUco view gave three orderings in a row).
            cv2.setRNGSeed(_SB_DETECTOR_SEED)
            found, corners = cv2.findChessboardCornersSB(grey, size)
            if not found:
                return None, None, None
        return (np.arange(self.cols * self.rows), np.asarray(corners, np.float32).reshape(-1, 2)), None, None

    def _layout_of(self, grey: np.ndarray, marker_corners, marker_ids) -> Board | None:
        """The first of :meth:`_other_layouts` whose corners the markers seen give, or ``None``. OpenCV finds the
        markers of a board given with its columns and rows the other way round, or in the other layout, and then no
        corner, without a word; the markers found are reused, so each layout tried costs well under a millisecond."""
        if marker_ids is None or len(marker_ids) < _MIN_CHARUCO_CORNERS:
            return None
        for other in self._other_layouts():
            detector = cv2.aruco.CharucoDetector(other.opencv_charuco())
            _, ids, _, _ = detector.detectBoard(grey, markerCorners=marker_corners, markerIds=marker_ids)
            if ids is not None and len(ids) >= _MIN_CHARUCO_CORNERS:
                return other
        return None


_LENGTH_UNITS_M = {"mm": 0.001, "cm": 0.01, "m": 1.0}


def _length_m(field: str, what: str, board: str) -> float:
    """A ``--board`` length in metres, a plain number; one with a unit or a decimal comma (``25mm``, ``0,025``) is
    refused with the number to give (it was "could not convert string to float: '25mm'").

    Raises:
        ValueError: a field that is no number (the board is then not understood).
        InputError: a length written with a unit or a decimal comma.
    """
    try:
        return float(field)
    except ValueError:
        pass
    written = re.fullmatch(r"\s*(\d+(?:[.,]\d*)?|[.,]\d+)\s*(mm|cm|m)?\s*", field, re.IGNORECASE)
    if written is None or (written[2] is None and "," not in field):
        raise ValueError(f"{what} size '{field}' is no number")
    metres = float(written[1].replace(",", ".")) * _LENGTH_UNITS_M[(written[2] or "m").lower()]
    raise InputError(
        f"board '{board}': give the {what} size as a number of metres, without a unit and with a decimal point: "
        f"{metres:g}, not '{field}'"
    )


def _marker_scale(charuco, found: tuple[np.ndarray, np.ndarray], marker_corners, marker_ids) -> float | None:
    """The size of a ChArUco board's ArUco markers in a view over the size given (1 when it is right), or ``None``.

    The chessboard corners found fix the board plane's homography into the image; each marker's corners, mapped back
    onto the plane, lie about its square's centre at the marker's true size. The calibration itself uses only the
    chessboard corners, but OpenCV places them from the markers before refining them: with markers 0.02 m given for
    0.03 m, rendered views fitted at 0.38 px RMS instead of 0.11, with nothing said; 0.01 m, 3.2 px and focal lengths
    17 % off."""
    if marker_ids is None or len(marker_ids) == 0:
        return None
    board_xy = np.asarray(charuco.getChessboardCorners(), np.float64)[found[0], :2]
    homography, _ = cv2.findHomography(board_xy, found[1].astype(np.float64))
    if homography is None:
        return None
    given = dict(zip(np.asarray(charuco.getIds()).ravel().tolist(), charuco.getObjPoints(), strict=True))
    ratios = []
    for marker_id, corners in zip(np.asarray(marker_ids).ravel().tolist(), marker_corners, strict=True):
        if marker_id not in given:
            continue
        outline = np.asarray(given[marker_id], np.float64)[:, :2]
        centre = outline.mean(axis=0)
        seen = cv2.perspectiveTransform(np.asarray(corners, np.float64).reshape(-1, 1, 2), np.linalg.inv(homography))
        ratios.append(
            np.linalg.norm(seen.reshape(-1, 2) - centre, axis=1).mean()
            / np.linalg.norm(outline - centre, axis=1).mean()
        )
    return float(np.median(ratios)) if ratios else None


# ---------------------------------------------------------------------------------------------------
# Stereo calibration
# ---------------------------------------------------------------------------------------------------

MIN_PAIRS = 4
# Two views show the board in the same place when its centre moved by less than this fraction of its distance
# and its normal turned by less than this angle (frames of a video while the board is held still).
BOARD_SAME_PLACE_REL = 0.01
BOARD_SAME_PLACE_DEG = 1.0
# Views whose board is tilted less than this (degrees) towards or away from the camera cannot separate the
# focal length from the distance (Zhang's method needs non-parallel planes).
MIN_TILT_DEG = 10.0
# Below this largest tilt the calibration is refused, not only warned about: on rendered views of a known rig
# (8 views, 5 seeds each) a largest tilt of 1.5-4.6 degrees gave baselines 14-134 % off in 8 of 10 runs (27.6 m for
# 0.12 m at 0.9 degrees) or focal lengths 22-26 % off, at a stereo RMS error of 0.1-1.5 px; 5.5-12 degrees gave
# baselines within 4 %.
DEGENERATE_TILT_DEG = 5.0
# A stereo RMS error above this, and above DISAGREEING_RMS_RATIO times each camera's own, means that the two views of
# a pair show the board at different moments: pairs matched wrongly by name (a view missing on one side), or cameras
# not triggered together. Rendered views of a known rig paired one view apart gave 15-20 px (each camera alone
# 0.06 px), then a baseline 5x too wide written with a warning, or advice to swap the images or to turn them by 90
# degrees.
DISAGREEING_RMS_PX = 5.0
DISAGREEING_RMS_RATIO = 5.0
# A pair whose stereo reprojection error is above this many times what each camera alone fits its views to, and above
# OUTLIER_PAIR_MIN_PX, shows the board at different moments in its two views: it is left out (_stereo_calibrate).
OUTLIER_PAIR_RATIO = 5.0
OUTLIER_PAIR_MIN_PX = 1.0
# A rectified focal length more than this many times the cameras' own, or less than its inverse, means rectified
# views that show a small middle part of the raw ones (or the raw ones shrunk into the middle): the lens distortion
# fitted where the board was seen grows wild beyond it. Rendered views of a 320x240 rig with a board of 7x5 corners
# 45-75 px wide, in the middle of the images, gave 2.7-15x in 5 of 9 runs (at 0.06-0.14 px RMS; their focal lengths
# up to 9.5 % off, baselines up to 28 %), 1.2-1.5x in the others; views moved over the images, 1.04-1.14x.
MAX_RECTIFIED_ZOOM = 2.0
# A board whose corners span less than this share of the image across (the square root of the share of its area they
# cover) in the median view is seen too small for its perspective to fix the focal length: 12 chessboard views (9x6
# corners) of a 640x480 rig spanning 0.12-0.13 of it (1.2-1.6 m away) gave focal lengths 1.7-3.5 % off, 0.06-0.10
# (1.6-3 m), up to 7 %, at 0.05-0.15 px RMS and mostly within the MAX_RECTIFIED_ZOOM warning's bounds; 0.16-0.24
# (0.55-1.2 m), within 0.2 %. (The same views at twice the resolution gave 0.3 %: more pixels a square help, but the
# lens distortion of a real camera is fitted only where the board was seen, so small boards are worth a word anyway.)
MIN_BOARD_SPAN = 0.15
# The board's corners, over all views, must reach this share of the way from a camera's principal point to the image's
# farthest corner: beyond them the fitted lens distortion is extrapolated. Views of a rendered 640x480 rig through
# wide-angle lenses (k1 -0.28, k2 0.09) reaching 0.33-0.49 of the way (the board kept near the middle) gave rectified
# views with rows off by 7-42 px and a tenth of the depths 13-194 % off, at 0.06-0.07 px RMS and without a word (the
# MAX_RECTIFIED_ZOOM warning's zoom 0.95-1.07); reaching 0.57-0.66, rows within 2.4 px and nine tenths of the depths
# within 5 %.
MIN_CORNER_REACH = 0.5
# A ChArUco board's markers as seen may differ from the size given by this share before it is warned about. Rendered
# views of boards given at their size measured 4-10 % small (OpenCV's marker outlines lie about half a pixel inside the
# black border; the smaller the markers, the more). Markers given 10 % off fitted a 7x5 board's views at 0.10-0.14 px
# RMS for 0.11 px (an 11x8 board's, 0.26-0.33 px for 0.28), a third off at 0.38 px (0.62 px), two thirds off at 3.2 px.
MARKER_SIZE_TOLERANCE = 0.2
# Why a calibration's rectification can clip or shrink the images, or fail: advice for both.
_DISTORTION_BEYOND_THE_BOARD = (
    "the lens distortion was fitted where the board was seen and grows wild beyond it, most likely as the board "
    "was seen small or only in the middle of the images; add views with the board nearer, filling more of the "
    "images, and near their corners and edges"
)


@dataclass(frozen=True)
class StereoCalibration:
    """The result of :func:`calibrate_stereo`: OpenCV's matrices and the rectified calibration.

    Attributes:
        K1, D1, K2, D2: camera matrices and distortion coefficients of the left and right cameras.
        R, T: rotation and translation (metres) from the left camera's frame to the right one's.
        R1, R2, P1, P2, Q: ``cv2.stereoRectify`` outputs.
        image_size_wh: ``(width, height)`` of the calibration images.
        rms_px: RMS reprojection error of the stereo calibration, pixels.
        rms_left_px, rms_right_px: RMS reprojection errors of the single-camera calibrations.
        pairs_used: names of the pairs in which both cameras saw the board.
        calibration: the rectified :class:`~rtstereo.types.Calibration`.
        pairs_disagreeing: names of the pairs in which both cameras saw the board, left out as their two views
            disagree with the rig the others agree on (not taken at the same instant).
    """

    K1: np.ndarray
    D1: np.ndarray
    K2: np.ndarray
    D2: np.ndarray
    R: np.ndarray
    T: np.ndarray
    R1: np.ndarray
    R2: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    Q: np.ndarray
    image_size_wh: tuple[int, int]
    rms_px: float
    rms_left_px: float
    rms_right_px: float
    pairs_used: tuple[str, ...]
    calibration: Calibration
    pairs_disagreeing: tuple[str, ...] = ()

    def rectifier(self) -> Rectifier:
        """The rectification maps of this calibration."""
        return Rectifier.from_matrices(
            self.K1,
            self.D1,
            self.K2,
            self.D2,
            self.R1,
            self.R2,
            self.P1,
            self.P2,
            self.image_size_wh,
            self.calibration,
        )

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``stereo.yaml`` (OpenCV), ``calibration.json`` (rtstereo) and ``maps.npz`` into a folder."""
        folder = require_path(folder, "folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create output folder {folder}: {os_reason(exc, folder / 'stereo.yaml')}"
            ) from None
        matrices = {
            name: getattr(self, name) for name in ("K1", "D1", "K2", "D2", "R", "T", "R1", "R2", "P1", "P2", "Q")
        }
        files = {
            "opencv": folder / "stereo.yaml",
            "calibration": folder / "calibration.json",
            "maps": folder / "maps.npz",
        }
        # The three replace those of an earlier calibration together or not at all: written one after the other, a
        # write that failed (a full disk, met first by the maps, the largest) left the new stereo.yaml and
        # calibration.json beside the old rig's maps.npz.
        with contextlib.ExitStack() as stack:
            partial = {kind: stack.enter_context(atomic_path(path)) for kind, path in files.items()}
            write_opencv(partial["opencv"], matrices, *self.image_size_wh, rms_px=self.rms_px, length_unit="m")
            write_calibration(
                partial["calibration"],
                self.calibration,
                rms_px=round(self.rms_px, 6),
                pairs_used=len(self.pairs_used),
            )
            self.rectifier().save(partial["maps"])
        return files


def calibrate_stereo(
    lefts: Sequence[np.ndarray],
    rights: Sequence[np.ndarray],
    board: Board,
    names: Sequence[str] | None = None,
    alpha: float = 0.0,
    fix_k3: bool = True,
    on_pair: Callable[[str], None] | None = None,
) -> StereoCalibration:
    """Calibrate a stereo rig from views of a board and compute its rectification.

    Each camera is calibrated on its own first (from every view where it sees the board), then the
    pose between them with those intrinsics fixed (from the views both see), then rectified with
    ``cv2.stereoRectify`` (principal points made equal, so ``cx0_px == cx1_px``). Views whose corners lie on one
    line are left out, and so are, up to a third of them, pairs whose two views disagree with the rig the others
    agree on (:attr:`StereoCalibration.pairs_disagreeing`), each with a warning; a rectification that keeps less
    than a quarter of the images gets a warning too (:data:`MAX_RECTIFIED_ZOOM`).

    Args:
        lefts, rights: uint8 images, matched by position, all of one size.
        board: the calibration target.
        names: labels of the pairs for messages (default: their index).
        alpha: 0 crops the rectified images to valid pixels only, 1 keeps every source pixel.
        fix_k3: keep the third radial distortion coefficient at 0 (it overfits with ordinary lenses
            and few views).
        on_pair: called with each pair's name once the board was looked for in it (the detection takes
            about 0.5 s a view at 1080p): a progress bar's step.

    Returns:
        A :class:`StereoCalibration`.

    Raises:
        InputError: images that are not uint8 arrays (grey, RGB or RGBA) or of different sizes, a board that is
            not a :class:`Board`, a pair whose two images are one picture, too few views with the board, views of a
            board that faces the cameras squarely in all of them (tilted less than :data:`DEGENERATE_TILT_DEG`),
            pairs whose two views disagree on the rig (a stereo RMS error above :data:`DISAGREEING_RMS_PX` and
            :data:`DISAGREEING_RMS_RATIO` times each camera's own), a rig whose "left" camera is on the right or
            whose cameras sit one above the other, or a rectification with a focal length below 0.
    """
    if not isinstance(board, Board):  # a bare AttributeError ('str' object has no attribute 'object_points')
        raise InputError(
            f"board: expected a Board, such as Board.parse('chessboard:9x6:0.025'), got {type(board).__name__}"
        )
    for side, images in (("lefts", lefts), ("rights", rights)):
        if isinstance(images, (str, bytes)) or not isinstance(images, (Sequence, np.ndarray)):
            raise InputError(f"{side}: expected a list of images (numpy arrays), got {type(images).__name__}")
    if len(lefts) != len(rights):
        raise InputError(
            f"{len(lefts)} left and {len(rights)} right images: they are matched by position, so "
            "both sides need the same number"
        )
    names = [str(i) for i in range(len(lefts))] if names is None else [str(name) for name in names]
    if len(names) != len(lefts):  # zip() would have left the pairs beyond the names out without a word
        raise InputError(f"{len(names)} names for {len(lefts)} pairs: give one name a pair")
    if not lefts:
        raise InputError("no calibration images given")
    alpha = require_number(alpha, "alpha", "a number in [0, 1]")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    # Checked as every image at the public boundary (a float image failed inside OpenCV's corner detector), grey
    # and RGBA views taken as predict takes them.
    lefts = [as_rgb_uint8(image, f"calibration image {name} (left)") for name, image in zip(names, lefts)]
    rights = [as_rgb_uint8(image, f"calibration image {name} (right)") for name, image in zip(names, rights)]
    _require_one_size(names, [image.shape[:2] for image in lefts], [image.shape[:2] for image in rights])
    found = []
    for name, left, right in zip(names, lefts, rights):
        found.append(find_board_views(board, left, right, name))
        if on_pair is not None:
            on_pair(name)
    return calibrate_from_views(found, board, alpha=alpha, fix_k3=fix_k3)


@dataclass(frozen=True)
class BoardViews:
    """What a calibration keeps of one pair once the board was looked for in it (:func:`find_board_views`): the
    corners and the images' sizes, not the images (30 pairs of 12 MP held 2.2 GB until the rig was solved).

    Attributes:
        name: the pair's label, for messages.
        left_hw, right_hw: the sizes of its two images ``(H, W)``, pixels.
        left, right: ``(corner_ids, image_points)`` of the board in each view, where it fixes a pose, else ``None``.
        shared: ``(corner_ids, left_points, right_points)`` of the corners both views show, where they fix a pose,
            else ``None``.
        marker_scale: a ChArUco board's markers as seen over the size given, median of the two views (``None``: a
            chessboard, or not found).
        other_layouts: for each view (up to two) in which a ChArUco board's markers were seen but not the board, a
            board of another layout they fit (its columns and rows the other way round, or OpenCV's layout before or
            since 4.6).
    """

    name: str
    left_hw: tuple[int, int]
    right_hw: tuple[int, int]
    left: tuple[np.ndarray, np.ndarray] | None
    right: tuple[np.ndarray, np.ndarray] | None
    shared: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    marker_scale: float | None = None
    other_layouts: tuple[Board, ...] = ()


def find_board_views(board: Board, left: np.ndarray, right: np.ndarray, name: str = "0") -> BoardViews:
    """Look for ``board`` in the two images of one calibration pair (about 0.5 s a view at 1080p).

    Args:
        board: the calibration target.
        left, right: the pair's images, uint8 grey, RGB or RGBA.
        name: the pair's label, for messages.

    Returns:
        What :func:`calibrate_from_views` needs of the pair; the images can go.

    Raises:
        InputError: an image that is not a uint8 array, or two images that are one picture.
    """
    left = as_rgb_uint8(left, f"calibration image {name} (left)")
    right = as_rgb_uint8(right, f"calibration image {name} (right)")
    # One picture given for both cameras (a folder named twice, or a copy) calibrates a rig without a
    # baseline, which the solver then read as "the left camera is on the right: swap the images". (Two
    # blank views, a lens cap, are alike without being one picture: they only show no board.)
    if left.min() != left.max() and np.array_equal(left, right):
        raise InputError(
            f"calibration pair {name}: left and right are the same picture (identical pixels: one file or "
            "folder given for both cameras, or a copy); the views of the two cameras are needed"
        )
    _require_board_fits(board, left.shape, f"calibration pair {name}")
    object_points = board.object_points()
    (found_left, scale_left, other_left), (found_right, scale_right, other_right) = map(board._detect, (left, right))
    found_left = _fixing_the_pose(found_left, object_points, f"calibration pair {name} (left)")
    found_right = _fixing_the_pose(found_right, object_points, f"calibration pair {name} (right)")
    scales = [scale for scale in (scale_left, scale_right) if scale is not None]
    shared = None
    if found_left is not None and found_right is not None:
        common = _common_corners(found_left, found_right, board)
        where = f"calibration pair {name} (the corners both views show)"
        if common is not None and _fixing_the_pose(common[:2], object_points, where) is not None:
            shared = common
    marker_scale = float(np.median(scales)) if scales else None
    others = tuple(other for other in (other_left, other_right) if other is not None)
    return BoardViews(name, left.shape[:2], right.shape[:2], found_left, found_right, shared, marker_scale, others)


def _dictionary_size(name: str) -> int:
    """How many markers the ArUco dictionary ``name`` holds."""
    return int(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)).bytesList.shape[0])


# A board's square must cover at least this many pixels across to be found: a board with more squares than the
# images' pixels so allow cannot be in them (100000x100000 corners ended in numpy's MemoryError traceback).
MIN_SQUARE_PX = 3


def _require_board_fits(board: Board, shape_hw: tuple[int, ...], name: str) -> None:
    """Refuse a board whose squares cannot all show in images of ``shape_hw``, each :data:`MIN_SQUARE_PX` across."""
    squares_x, squares_y = (board.cols + 1, board.rows + 1) if board.kind == "chessboard" else (board.cols, board.rows)
    height, width = shape_hw[:2]
    if squares_x * squares_y * MIN_SQUARE_PX**2 > height * width:
        kind, counted_as = (
            ("chessboard", "inner corners") if board.kind == "chessboard" else ("ChArUco board", "squares")
        )
        raise InputError(
            f"{name}: a {kind} of {board.cols}x{board.rows} {counted_as} cannot show in {height}x{width} (HxW) "
            f"images: its {squares_x}x{squares_y} squares would need {MIN_SQUARE_PX}x{MIN_SQUARE_PX} px each at least; "
            "check --board"
        )


def _layout_difference(given: Board, other: Board) -> str:
    """How a ChArUco board of another layout differs from the one given, for advice."""
    differences = []
    other_legacy = other.legacy and other.rows % 2 == 0  # an odd number of rows has one layout
    if (other.cols, other.rows) != (given.cols, given.rows):
        differences.append(
            f"a board of {other.cols}x{other.rows} squares (across x down), not {given.cols}x{given.rows}"
        )
    if other_legacy != (given.legacy and given.rows % 2 == 0):
        differences.append(
            "the layout of OpenCV before 4.6 (kept by some generators, a marker in the top-left square)"
            if other_legacy
            else "the layout of OpenCV 4.6 and later (the top-left square black)"
        )
    return ", in ".join(differences)


def calibrate_from_views(
    found: Sequence[BoardViews], board: Board, alpha: float = 0.0, fix_k3: bool = True
) -> StereoCalibration:
    """:func:`calibrate_stereo` from the corners :func:`find_board_views` found in each pair, so that a caller
    reading many large images holds one pair at a time.

    Raises:
        InputError: as :func:`calibrate_stereo`.
    """
    if not found:
        raise InputError("no calibration images given")
    alpha = require_number(alpha, "alpha", "a number in [0, 1]")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    names = [pair.name for pair in found]
    _require_one_size(names, [pair.left_hw for pair in found], [pair.right_hw for pair in found])
    height, width = found[0].left_hw
    object_points = board.object_points()
    views: dict[str, list] = {"left": [], "right": [], "stereo": []}
    for pair in found:
        for side, corners in (("left", pair.left), ("right", pair.right)):
            if corners is not None:
                views[side].append((object_points[corners[0]], corners[1]))
        if pair.shared is not None:
            views["stereo"].append((pair.name, object_points[pair.shared[0]], pair.shared[1], pair.shared[2]))
    marker_scales = [pair.marker_scale for pair in found if pair.marker_scale is not None]
    if marker_scales and abs(np.median(marker_scales) - 1) > MARKER_SIZE_TOLERANCE:
        seen_m = board.marker_m * float(np.median(marker_scales))
        warn(
            f"the ArUco markers measure about {seen_m:.2g} m in the views, not the {board.marker_m:g} m given with "
            f"--board (median of {counted(len(marker_scales), 'pair')}); OpenCV places the board's corners from its "
            "markers, and a wrong marker size moves them, and so the focal length and the baseline: give the side of "
            "a marker as printed, in metres (the square's is "
            f"{board.square_m:g} m)"
        )
    if len(views["stereo"]) < MIN_PAIRS:
        # The board's size is worth checking only when views went unused: in every pair, it was found as given; and
        # not when one camera found it in enough views (the other does not see all of it in the same pairs).
        seen = {side: len(views[side]) for side in ("left", "right")}
        fewer = min(seen, key=seen.get)
        if len(views["stereo"]) == len(found):
            advice = "take more pairs"
        elif max(seen.values()) >= MIN_PAIRS:
            which = "either camera" if seen["left"] == seen["right"] else f"the {fewer} camera"
            advice = (
                f"--board is right (found as given in {max(seen.values())} views), but both cameras must see the whole "
                f"board in the same pairs: retake the pairs in which {which} does not see all of it"
            )
        else:
            advice = (
                f"check --board ({board.kind} {board.cols}x{board.rows}: inner corners for a chessboard, squares "
                "for ChArUco)"
            )
            if board.kind == "charuco":  # markers of another dictionary are not seen at all, nor is the board
                advice += (
                    f"; the ArUco dictionary must be the one the board was printed with ({board.dictionary} here"
                    f"{', the default' if board.dictionary == DEFAULT_ARUCO_DICTIONARY else ''}: "
                    f"charuco:{board.cols}x{board.rows}:{board.square_m:g}:{board.marker_m:g}:DICT_...)"
                )
            if board.kind == "charuco" and board.rows % 2 == 0 and not board.legacy:
                advice += _LEGACY_ADVICE
            # The markers say which board it is, where another layout fits more views than the one given: that, not
            # the guesses above (a view showing a corner of the board may fit another layout by chance).
            fits = [other for pair in found for other in pair.other_layouts]
            other = max(dict.fromkeys(fits), key=fits.count) if fits else None  # a tie: the first seen
            if other is not None and fits.count(other) > max(seen.values()):
                advice = (
                    f"the markers seen in {counted(fits.count(other), 'view')} fit {_layout_difference(board, other)}: "
                    f"give --board {other.text}"
                )
        raise InputError(
            f"the board was found in both images of only {len(views['stereo'])} of {len(found)} pairs "
            f"(left: {len(views['left'])}, right: {len(views['right'])}); need at least {MIN_PAIRS}, better "
            f"15-30 views covering the whole image at several tilts: {advice}"
        )
    size = (width, height)
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    rms_left, k1, d1 = _calibrate_camera(views["left"], size, flags)
    rms_right, k2, d2 = _calibrate_camera(views["right"], size, flags)
    pair_names, objects, image_left, image_right = zip(*views["stereo"])
    tilt_deg = _check_board_poses(objects, image_left, k1, d1, len(found))
    if tilt_deg < DEGENERATE_TILT_DEG:
        raise InputError(
            f"the board faces the cameras squarely in every view (largest tilt {tilt_deg:.1f} degrees, under "
            f"{DEGENERATE_TILT_DEG:g}): such views cannot tell the focal length from the distance, so the focal "
            "length and the baseline come out arbitrary (metres wide, or tens of % off) whatever the RMS error; "
            "add views with the board tilted by 20-45 degrees"
        )
    if tilt_deg < MIN_TILT_DEG:
        warn(
            f"the board faces the cameras squarely in every view (largest tilt {tilt_deg:.1f} degrees): such views "
            "cannot tell the focal length from the distance, so the depth scale may be wrong whatever the RMS "
            "error; add views with the board tilted by 20-45 degrees"
        )
    reach, side = min(
        (_corner_reach([image for _, image in views["left"]], k1, size), "left"),
        (_corner_reach([image for _, image in views["right"]], k2, size), "right"),
    )
    if reach < MIN_CORNER_REACH:
        warn(
            f"the board's corners reach only {100 * reach:.0f} % of the way from the image centre to its corners "
            f"({side} camera, over all views; under {100 * MIN_CORNER_REACH:.0f} %): the lens distortion beyond them "
            "is a guess, so rectified rows may be off and depths wrong towards the edges and corners of the images; "
            "add views with the board near the images' corners and edges"
        )
    span = _median_board_span([image for _, image in views["left"] + views["right"]], size)
    if span < MIN_BOARD_SPAN:
        warn(
            f"the board is small in the images: its corners span {100 * span:.0f} % of the image across in the "
            f"median view (under {100 * MIN_BOARD_SPAN:.0f} %): a board seen this small leaves the focal length, and "
            "so the depth scale, several % off whatever the RMS error; add views with the board nearer, filling a "
            "third to half of the image"
        )
    threshold_px = max(OUTLIER_PAIR_MIN_PX, OUTLIER_PAIR_RATIO * max(rms_left, rms_right))
    rms, rotation, translation, kept, dropped = _stereo_calibrate(views["stereo"], k1, d1, k2, d2, size, threshold_px)
    if dropped:
        pair_names = tuple(view[0] for view in kept)
        listed = ", ".join(f"{name} ({error_px:.1f} px)" for name, error_px in dropped)
        warn(
            f"{counted(len(dropped), 'pair')} not used, whose two views disagree with the rig the other "
            f"{len(kept)} agree on (stereo reprojection errors over {threshold_px:.2g} px; {rms:.2f} px RMS without "
            f"them): {listed}; the two images of such a pair were not taken at the same instant, or are not a pair"
        )
    translation = translation.reshape(3, 1)
    if rms > DISAGREEING_RMS_PX and rms > DISAGREEING_RMS_RATIO * max(rms_left, rms_right):
        # Each camera's own fit over 1 px as well: the corners found are not the board's as given (a chessboard's
        # corners found on a ChArUco board gave 2.0-2.8 px alone, 19 px stereo), whatever the pairs' timing.
        board_advice = (
            f"; each camera fits its views poorly too, so the corners found may not be those of the board given: "
            f"check --board ({board.kind} {board.cols}x{board.rows})"
            if max(rms_left, rms_right) > OUTLIER_PAIR_MIN_PX
            else ""
        )
        raise InputError(
            f"the views of the two cameras agree on no one rig: stereo RMS error {rms:.1f} px, where each camera "
            f"alone fits its views to {rms_left:.2f} px (left) and {rms_right:.2f} px (right): the two images of a "
            "pair were not taken at the same instant, or the pairs are matched wrongly (by position after sorting "
            f"by name: check that no view is missing on one side){board_advice}"
        )
    # Views of a board facing the cameras squarely leave the rig undetermined: whatever the solver then ends
    # in (a camera on the wrong side, a focal length < 0, or a rig metres wide) says nothing about the images.
    squarely = (
        f"the board faces the cameras squarely in every view (largest tilt {tilt_deg:.1f} degrees), so the views "
        "cannot determine the rig; add views with the board tilted by 20-45 degrees"
    )
    # Where the right camera sits in the left one's frame (x right, y down): one above the other (a rig on its side,
    # or cameras turned to portrait) was told to swap the images when the right one sat a millimetre to the left.
    across_m, down_m = (-rotation.T @ translation).ravel()[:2]
    if abs(down_m) > abs(across_m) and tilt_deg >= MIN_TILT_DEG:
        # turned counter-clockwise, a view's bottom goes right: the camera below comes to lie on the right
        turn, where = ("counter-clockwise", "below") if down_m > 0 else ("clockwise", "above")
        raise InputError(
            f"the cameras sit one above the other (the one given as right {abs(down_m):.4f} m {where} the one given "
            f"as left, {abs(across_m):.4f} m across): rtstereo matches along rows, so turn every image 90 degrees "
            f"{turn}, which puts the cameras side by side, and calibrate the turned images"
        )
    if translation[0, 0] > 0:
        where = f"the camera given as left is {translation[0, 0]:.4f} m to the right of the other one"
        if tilt_deg < MIN_TILT_DEG:
            raise InputError(f"{where}: {squarely}")
        raise InputError(f"{where}: swap the left and right images")
    r1, r2, p1, p2, q, _, _ = cv2.stereoRectify(
        k1, d1, k2, d2, size, rotation, translation, flags=cv2.CALIB_ZERO_DISPARITY, alpha=alpha
    )
    try:
        with warnings.catch_warnings():
            # its advice (a file in millimetres, --calib-unit mm) is not for a calibration whose unit is --board's
            warnings.simplefilter("ignore", CalibrationUnitWarning)
            calibration = calibration_from_projections(p1, p2, width, height, "stereo calibration")
    except InputError as exc:
        if tilt_deg < MIN_TILT_DEG:
            raise InputError(f"{exc}: {squarely}") from None
        if p1[0, 0] > 0 and p2[0, 0] > 0:
            raise
        # a focal length < 0: the rectification of a distortion that folds over within the images
        raise InputError(f"{exc}: {_DISTORTION_BEYOND_THE_BOARD}") from None
    camera_fx_px = max(float(k1[0, 0]), float(k2[0, 0]))
    zoom = calibration.fx_px / camera_fx_px
    if not 1 / MAX_RECTIFIED_ZOOM <= zoom <= MAX_RECTIFIED_ZOOM:
        shown = (
            f"the rectified views show only the middle {100 / zoom**2:.2g} % of the raw ones"
            if zoom > 1
            else f"the raw views fill only {100 * zoom**2:.2g} % of the rectified ones"
        )
        warn(
            f"stereo calibration: {shown} (a rectified focal length of {calibration.fx_px:.0f} px for the cameras' "
            f"{camera_fx_px:.0f} px, alpha {alpha:g}): {_DISTORTION_BEYOND_THE_BOARD}"
        )
    if calibration.baseline_m > PLAUSIBLE_BASELINE_M:
        warn(
            f"stereo calibration: baseline of {calibration.baseline_m:.4g} m, wider than stereo rigs usually are: "
            f"check the square size given with --board ({board.square_m:g} m), and add views with the board tilted "
            "by 20-45 degrees",
            CalibrationUnitWarning,
        )
    return StereoCalibration(
        K1=k1,
        D1=d1,
        K2=k2,
        D2=d2,
        R=rotation,
        T=translation,
        R1=r1,
        R2=r2,
        P1=p1,
        P2=p2,
        Q=q,
        image_size_wh=size,
        rms_px=float(rms),
        rms_left_px=rms_left,
        rms_right_px=rms_right,
        pairs_used=tuple(pair_names),
        calibration=calibration,
        pairs_disagreeing=tuple(name for name, _ in dropped),
    )


def _stereo_calibrate(views: list, k1, d1, k2, d2, size: tuple[int, int], threshold_px: float):
    """``cv2.stereoCalibrate`` with the intrinsics fixed, leaving out, one at a time and worst first, the pairs whose
    stereo reprojection error exceeds ``threshold_px`` (their two views show the board at different moments), at
    most a third of them: beyond that, no one rig holds most pairs, and all are kept, for the caller to judge.

    One pair of 10 whose right view came from the next pair gave 7.4 px where the others gave 0.6-2.0 px, a stereo
    RMS error of 2.5 px and a baseline 44 % wide; two such pairs, 3.7 px and 176 %; each with a warning about the RMS
    error alone, naming no pair.

    Returns:
        ``(rms_px, R, T, views_kept, dropped)``, ``dropped`` the ``(name, error_px)`` of the pairs left out.
    """
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    kept, dropped, first = list(views), [], None
    while True:
        _, objects, image_left, image_right = zip(*kept)
        fit = cv2.stereoCalibrateExtended(
            list(objects),
            list(image_left),
            list(image_right),
            k1,
            d1,
            k2,
            d2,
            size,
            None,
            None,
            flags=cv2.CALIB_FIX_INTRINSIC,
            criteria=criteria,
        )
        rms, rotation, translation, errors_px = float(fit[0]), fit[5], fit[6], fit[-1].max(axis=1)
        first = first or (rms, rotation, translation)
        worst = int(np.argmax(errors_px))
        if errors_px[worst] <= threshold_px or len(kept) <= MIN_PAIRS:
            return rms, rotation, translation, kept, dropped
        if len(dropped) == len(views) // 3:
            return *first, list(views), []
        dropped.append((kept[worst][0], float(errors_px[worst])))
        del kept[worst]


def _check_board_poses(objects, images, k: np.ndarray, d: np.ndarray, pairs: int) -> float:
    """Refuse views that show the board in fewer than ``MIN_PAIRS`` different places, and measure how far it
    turns from facing the camera squarely (the caller refuses or warns about views that all face it): either way
    the calibration fits its views (a low RMS error) with a wrong focal length, and so a wrong depth scale (five
    copies of one view gave 1137 px for 545).

    Returns:
        The board's largest tilt towards or away from the camera, in degrees.
    """
    centres, normals = [], []
    for obj, image in zip(objects, images, strict=True):
        _, rvec, tvec = cv2.solvePnP(obj, image, k, d)
        rotation = cv2.Rodrigues(rvec)[0]
        # The board's centre and normal in the camera frame; unlike the pose they do not depend on which
        # corner a chessboard detection starts from.
        centres.append(rotation @ obj.mean(axis=0) + tvec.ravel())
        normals.append(rotation[:, 2])
    distinct: list[int] = []
    for i, (centre, normal) in enumerate(zip(centres, normals, strict=True)):
        if not any(
            np.linalg.norm(centre - centres[j]) < BOARD_SAME_PLACE_REL * np.linalg.norm(centre)
            and abs(normal @ normals[j]) > np.cos(np.radians(BOARD_SAME_PLACE_DEG))
            for j in distinct
        ):
            distinct.append(i)
    if len(distinct) < MIN_PAIRS:
        places = counted(len(distinct), "different place")
        raise InputError(
            f"the board was found in both images of {len(objects)} of {counted(pairs, 'pair')}, but in only {places} "
            f"(the same view repeated); need at least {MIN_PAIRS}, better 15-30 views covering "
            "the whole image at several tilts: move the board between pairs"
        )
    return max(np.degrees(np.arccos(min(1.0, abs(float(n[2]))))) for n in normals)


def _corner_reach(images: Sequence[np.ndarray], k: np.ndarray, size_wh: tuple[int, int]) -> float:
    """How far the corners of all views reach from the principal point of camera matrix ``k``, as a share of its
    distance to the image's farthest corner (``images`` float32 ``(N, 2)`` corner positions, pixels)."""
    centre = np.asarray(k, np.float64)[:2, 2]
    width, height = size_wh
    farthest = max(
        np.hypot(*(np.array(corner) - centre)) for corner in ((0, 0), (width, 0), (0, height), (width, height))
    )
    return float(max(np.linalg.norm(np.asarray(points) - centre, axis=1).max() for points in images) / farthest)


def _median_board_span(images: Sequence[np.ndarray], size_wh: tuple[int, int]) -> float:
    """The median over views of how far a board's corners span the image across: the square root of the share of the
    image's area their convex hull covers (``images`` float32 ``(N, 2)`` corner positions, pixels)."""
    area_px = float(size_wh[0] * size_wh[1])
    shares = [cv2.contourArea(cv2.convexHull(np.asarray(points, np.float32))) / area_px for points in images]
    return float(np.sqrt(np.median(shares)))


def _require_one_size(names: list[str], lefts: list[tuple[int, int]], rights: list[tuple[int, int]]) -> None:
    """Refuse views of more than one size before the board is looked for, naming the views of the sizes fewer views
    have. (Each view was held against the first one, in the detection loop: a first pair of another size was taken
    for the right size, and the first of the others named as the odd one, after the views before it were searched.)
    """
    sizes: dict[tuple[int, int], list[str]] = {}
    for side, sides_hw in (("left", lefts), ("right", rights)):
        for name, size_hw in zip(names, sides_hw, strict=True):
            sizes.setdefault(tuple(size_hw), []).append(f"{name} ({side})")
    if len(sizes) == 1:
        return
    shapes = {side: {tuple(hw) for hw in sides_hw} for side, sides_hw in (("left", lefts), ("right", rights))}
    if all(len(found) == 1 for found in shapes.values()):
        (left_hw,), (right_hw,) = shapes["left"], shapes["right"]
        raise InputError(
            f"the left images are {left_hw[0]}x{left_hw[1]} (HxW) and the right ones {right_hw[0]}x{right_hw[1]}: "
            "calibrate both cameras at one image size, the one the pairs to rectify will have"
        )
    (usual, _), *others = sorted(sizes.items(), key=lambda item: -len(item[1]))
    odd = "; ".join(
        f"{h}x{w}: " + ", ".join(views[:5]) + (f" and {len(views) - 5} more" if len(views) > 5 else "")
        for (h, w), views in others
    )
    raise InputError(
        f"calibration images of {len(sizes)} sizes: most are {usual[0]}x{usual[1]} (HxW), but {odd}; all views "
        "must have one size, the one the pairs to rectify will have"
    )


def _fixing_the_pose(found, object_points: np.ndarray, where: str):
    """``found`` (a :meth:`Board.detect` result), or ``None`` with a warning when its corners lie on one straight line,
    all but at most one of them: a ChArUco board mostly outside the image or covered shows a row of corners or two.

    Such corners leave the board's turn about that line undetermined, and OpenCV's first guess of each view's pose
    with it: all on one line failed inside ``cv2.calibrateCamera`` (an assertion, a traceback), and all but one gave
    focal lengths of 7-520 px for 520 (36 of 60 rendered trials more than 2 % off) and stereo RMS errors of 4-80 px
    (21 of 90). Two corners off the line gave neither (60 and 40 trials)."""
    if found is None:
        return None
    xy = object_points[found[0], :2].astype(np.float64)
    tolerance = 1e-3 * float(np.ptp(xy, axis=0).max())
    # All but one on a line: two of the first three are on it, so it runs through one of their pairs.
    for i, j in ((0, 1), (0, 2), (1, 2)):
        direction = xy[j] - xy[i]
        across = direction[0] * (xy[:, 1] - xy[i, 1]) - direction[1] * (xy[:, 0] - xy[i, 0])
        if np.count_nonzero(np.abs(across) > tolerance * np.linalg.norm(direction)) <= 1:
            warn(
                f"{where}: the board's {len(xy)} corners lie along one straight line (all but at most one of them), "
                "which leaves its pose undetermined: not used; views that show more of the board are needed"
            )
            return None
    return found


def _calibrate_camera(views: list, size: tuple[int, int], flags: int) -> tuple[float, np.ndarray, np.ndarray]:
    objects, images = zip(*views)
    rms, matrix, distortion, _, _ = cv2.calibrateCamera(list(objects), list(images), size, None, None, flags=flags)
    return float(rms), matrix, distortion


def _common_corners(found_left, found_right, board: Board):
    """Corner ids seen in both views and their positions, or ``None`` when too few are shared."""
    ids_left, points_left = found_left
    ids_right, points_right = found_right
    if board.kind == "chessboard":
        return ids_left, points_left, _in_left_order(points_left, points_right, board)
    shared, index_left, index_right = np.intersect1d(ids_left, ids_right, return_indices=True)
    if len(shared) < _MIN_CHARUCO_CORNERS:
        return None
    return shared, points_left[index_left], points_right[index_right]


def _in_left_order(points_left: np.ndarray, points_right: np.ndarray, board: Board) -> np.ndarray:
    """The right view's chessboard corners listed in the order of the left view's.

    A chessboard has no marked origin: OpenCV may list a view's corners from the opposite end, and on a
    square board (as many corners across as down) from a side, turned by 90 degrees. The two cameras see
    the board alike, so the right view's order is the turn of its grid that lies closest to the left view's
    corners once both are centred (a 90-degree turn missed by a test of the grid's diagonal alone paired
    wrong corners: 12.9 px RMS and half the baseline on a 7x7 board).
    """
    grid = points_right.reshape(board.rows, board.cols, 2)
    turns = [grid, grid[::-1, ::-1]]
    if board.rows == board.cols:
        turns += [np.rot90(grid, 1), np.rot90(grid, 3)]
    centred_left = points_left - points_left.mean(axis=0)

    def distance(turn: np.ndarray) -> float:
        points = turn.reshape(-1, 2)
        return float(np.square(points - points.mean(axis=0) - centred_left).sum())

    return np.ascontiguousarray(min(turns, key=distance).reshape(-1, 2))


# ---------------------------------------------------------------------------------------------------
# Rectification maps
# ---------------------------------------------------------------------------------------------------

MAPS_FORMAT = "rtstereo.rectification-maps"
_RECTIFY_TAKES = (
    "--rectify takes the maps.npz written by `rtstereo calibrate`, or an OpenCV YAML/XML/JSON file with K1, D1, K2, D2 "
    "and R1, R2, P1, P2 or R, T"
)


def _binary_kind(path: Path) -> str | None:
    """What ``path`` is when it is no text, so no OpenCV YAML/XML/JSON file (``a PNG image``, ``a binary file``), or
    ``None`` for a text file."""
    import codecs

    from PIL import UnidentifiedImageError

    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:  # unreadable: the reader of OpenCV files says why
        return None
    try:
        if b"\0" not in head:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character cut at 4096 bytes is text
            return None
    except UnicodeDecodeError:
        pass
    try:
        with opened_with_pil(path) as image:
            return f"a {image.format} image"
    except (UnidentifiedImageError, OSError, InputError):
        return "a binary file (not text)"


_FOR_CALIB = (
    "it describes images rectified already, so give it to --calib (rtstereo.io.calibration.read_calibration); "
    "--rectify takes the maps.npz of `rtstereo calibrate` or an OpenCV file with K1, D1, K2, D2 and R, T"
)


# The shapes OpenCV's rectification takes (a wrong one failed deep inside OpenCV, with a traceback);
# distortion vectors hold 4, 5, 8, 12 or 14 coefficients.
_RIG_SHAPES = {"K1": (3, 3), "K2": (3, 3), "R": (3, 3), "R1": (3, 3), "R2": (3, 3), "P1": (3, 4), "P2": (3, 4)}
_DISTORTION_SIZES = (4, 5, 8, 12, 14)
_ROTATION_TOLERANCE = 5e-3  # |R R^T - I| beyond it is no rotation (one rounded to 3 decimals reaches 1.5e-3)


# What the text entries of rig files (ROS camera_info, Kalibr, hand-written) call OpenCV's two lens models: a
# 4-coefficient D of cv2.fisheye (k1..k4) reads as pinhole k1, k2, p1, p2, so only such an entry tells them apart.
_MODEL_KEYS = ("distortion_model", "model", "camera_model", "lens_model")
_FISHEYE_MODELS = {"fisheye", "equidistant", "kannala_brandt", "kannala-brandt", "kb4", "opencv_fisheye"}
_PINHOLE_MODELS = {"pinhole", "plumb_bob", "radtan", "radial_tangential", "rational_polynomial", "opencv", "brown"}


def _lens_is_fisheye(path: Path, texts: dict[str, str], matrices: dict[str, np.ndarray]) -> bool:
    """Whether an OpenCV rig file's ``D1``, ``D2`` are ``cv2.fisheye``'s (k1..k4), as its model entry says
    (``distortion_model: equidistant``); pinhole without one.

    Raises:
        InputError: a model entry naming neither model, or a fisheye model with ``D`` of another length than 4.
    """
    named = {key: texts[key].strip().lower() for key in _MODEL_KEYS if key in texts}
    fisheye = any(name in _FISHEYE_MODELS for name in named.values())
    # "model" and "camera_model" may name a product ("ZED 2"): only the distortion's own entries must be known
    unknown = [
        name
        for key, name in named.items()
        if key in ("distortion_model", "lens_model") and name not in _FISHEYE_MODELS | _PINHOLE_MODELS
    ]
    if unknown:
        raise InputError(
            f"{path}: lens model '{unknown[0]}' is not one rtstereo rectifies: expected pinhole (plumb_bob, radtan, "
            "rational_polynomial) or fisheye (equidistant, cv2.fisheye's k1..k4)"
        )
    if fisheye:
        for name in ("D1", "D2"):
            if matrices[name].size != 4:
                raise InputError(
                    f"{path}: its lens model is fisheye, whose distortion is 4 coefficients (k1..k4 of cv2.fisheye), "
                    f"but {name} holds {matrices[name].size}"
                )
    return fisheye


def _warn_if_cameras_of_another_size(path: Path, matrices: dict[str, np.ndarray], size_wh: tuple[int, int]) -> None:
    """Warn when a camera's principal point lies outside the middle half of the image size the file records (as
    for a calibration that records no size): matrices of another camera mode or of a resized copy, whose maps
    rectify images of the recorded size wrongly, and give depths off by the ratio of the sizes, without an error."""
    from .geometry import _CENTRAL_FRACTION, CalibrationWarning

    width, height = size_wh
    low, high = _CENTRAL_FRACTION
    for name in ("K1", "K2"):
        cx, cy = matrices[name][0, 2], matrices[name][1, 2]
        if low <= cx / width <= high and low <= cy / height <= high:
            continue
        warn(
            f"{path}: {name}'s principal point ({cx:.1f}, {cy:.1f}) px is far from the centre of the {height}x{width} "
            f"(HxW) images the file records (it is the centre of about {2 * cy + 1:.0f}x{2 * cx + 1:.0f} ones): if its "
            "matrices are of another camera mode or image size, the rectified views are wrong and depths off by "
            "about that ratio; give the file its cameras' own image_width and image_height",
            CalibrationWarning,
        )
        return


def _check_rig_matrices(path: Path, matrices: dict[str, np.ndarray]) -> None:
    """Refuse an OpenCV rig file whose matrices OpenCV cannot rectify with: a wrong shape, a value that is
    not finite (nan would make black images without a word), a focal length that is not positive, a camera
    matrix whose last row is not ``0, 0, 1``, a rotation that is not one, or a translation of 0."""
    shapes = {**_RIG_SHAPES, "T": (3,)}
    for name in [*shapes, "D1", "D2"]:
        if name not in matrices:
            continue
        value = matrices[name]
        if name in ("D1", "D2"):
            if sum(n > 1 for n in value.shape) > 1 or value.size not in _DISTORTION_SIZES:
                raise InputError(
                    f"{path}: {name} holds {counted(value.size, 'distortion coefficient')} (shape {value.shape}); "
                    f"expected a vector of {', '.join(map(str, _DISTORTION_SIZES))}"
                )
        elif (value.ravel().shape if name == "T" else value.shape) != shapes[name]:
            expected = "3 numbers" if name == "T" else "x".join(map(str, shapes[name]))
            raise InputError(f"{path}: {name} has shape {value.shape}; expected {expected}")
        if not np.isfinite(value).all():
            raise InputError(f"{path}: {name} holds values that are not finite (nan or inf)")
    for name in ("K1", "K2"):
        if not (matrices[name][0, 0] > 0 and matrices[name][1, 1] > 0):
            raise InputError(
                f"{path}: {name}'s focal lengths must be > 0, got {matrices[name][0, 0]:g}, {matrices[name][1, 1]:g}"
            )
        if not np.allclose(matrices[name][2], (0.0, 0.0, 1.0), rtol=0.0, atol=1e-6):
            # no pinhole camera: OpenCV rectified with it all the same, into another calibration, without a word
            raise InputError(f"{path}: {name}'s last row must be 0, 0, 1, got {_numbers(matrices[name][2])}")
    for name in ("R", "R1", "R2"):
        # A singular or scaled matrix, or a mirror, was taken as a rotation: a rectified calibration thousands of
        # pixels off, and black or mirrored images, without a word.
        if name in matrices and not _is_rotation(matrices[name]):
            raise InputError(
                f"{path}: {name} is not a rotation (its rows must be orthonormal and its determinant +1, got "
                f"{np.linalg.det(matrices[name]):.4g}): {_numbers(matrices[name].ravel())}"
            )
    if "T" in matrices and not np.linalg.norm(matrices["T"]) > 0:  # OpenCV failed with an assertion traceback
        raise InputError(f"{path}: T is 0, 0, 0: the two cameras are at one place, with no baseline between them")


# The maps ``cv2.initUndistortRectifyMap`` makes (CV_16SC2: an int16 pair and a uint16 per pixel) for both cameras.
_MAPS_BYTES_PER_PX = 2 * (4 + 2)


def _check_maps_fit(source: str, size_wh: tuple[int, int]) -> None:
    """Refuse an image size whose maps the memory budget cannot hold (:mod:`~rtstereo.runtime.memory`): a rig file
    saying 100000x100000 ended in OpenCV's out-of-memory traceback while the maps were built.

    Raises:
        MemoryBudgetError: the size, the maps' bytes and the budget.
    """
    from .runtime.memory import BUDGET_ENV, MemoryBudgetError, format_bytes_apart, memory_budget

    needed, budget = _MAPS_BYTES_PER_PX * size_wh[0] * size_wh[1], memory_budget()
    if needed <= budget.bytes:
        return
    shown_needed, shown_allowed = format_bytes_apart(needed, budget.bytes)
    raise MemoryBudgetError(
        f"{source}: rectification maps for {size_wh[0]}x{size_wh[1]} (WxH) images need about {shown_needed}, more "
        f"than the {shown_allowed} budget ({budget.source}): check the image size (image_width, image_height), or "
        f"free memory ({BUDGET_ENV} sets the budget)"
    )


def _is_rotation(matrix: np.ndarray) -> bool:
    """Whether a 3x3 matrix is a rotation, to :data:`_ROTATION_TOLERANCE` (files round their values)."""
    orthonormal = np.allclose(matrix @ matrix.T, np.eye(3), rtol=0.0, atol=_ROTATION_TOLERANCE)
    return orthonormal and np.linalg.det(matrix) > 0


def _numbers(values: np.ndarray) -> str:
    return ", ".join(f"{value:.6g}" for value in np.ravel(values))


def _check_maps(path: Path, maps: list[tuple[np.ndarray, np.ndarray]], calibration: Calibration) -> None:
    """Refuse a maps file whose maps ``cv2.remap`` cannot take (a traceback at the first pair), whose two
    cameras' maps differ in size, or whose calibration is for another image size than its maps (which would
    have been scaled to the rectified images without a word, and depth with it)."""
    height, width = maps[0][0].shape[:2]
    for side, (map1, map2) in zip(("left", "right"), maps, strict=True):
        fixed = map1.dtype == np.int16 and map1.shape == (height, width, 2) and map2.dtype == np.uint16
        floats = map1.dtype == np.float32 and map2.dtype == np.float32 and map1.shape == (height, width)
        if not ((fixed or floats) and map2.shape == (height, width)):
            raise InputError(
                f"{path}: the {side} camera's maps are {map1.dtype} {map1.shape} and {map2.dtype} {map2.shape}; "
                f"expected int16 (H, W, 2) and uint16 (H, W), or two float32 (H, W), of the first map's "
                f"{height}x{width} (HxW): the file is damaged; run `rtstereo calibrate` again"
            )
    recorded = (calibration.height_px, calibration.width_px)
    if 0 not in recorded and recorded != (height, width):
        raise InputError(
            f"{path}: its calibration is for {recorded[0]}x{recorded[1]} (HxW) images but its maps make "
            f"{height}x{width} ones: the file is damaged; run `rtstereo calibrate` again"
        )


_REMAP_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32, np.float64))


def rectification_record(rectifier: Any) -> dict[str, Any]:
    """What a result's ``preparation`` records of ``rectifier`` (:attr:`Rectifier.record`); of another object with
    a ``rectify`` method, that it rectified, and its size when it has one."""
    record = getattr(rectifier, "record", None)
    if isinstance(record, dict):
        return dict(record)
    size_hw = getattr(rectifier, "size_hw", None)
    return {"file": None, "raw_size_hw": [int(n) for n in size_hw] if size_hw is not None else None}


class Rectifier:
    """Rectifies raw pairs of one stereo rig with precomputed maps.

    Args:
        maps_left, maps_right: ``(map1, map2)`` as ``cv2.remap`` takes them (fixed-point
            ``int16 (H, W, 2)`` + ``uint16 (H, W)``, or float32 ``x`` and ``y`` maps).
        calibration: the calibration of the rectified images.
        source: the file the maps were read from or made of (:meth:`from_file` records it, absolute, or the URL
            given), which a result's ``preparation`` names (:attr:`record`); ``None``: made in memory.

    Examples:
        >>> cal = Calibration(fx_px=50, fy_px=50, cx0_px=15.5, cx1_px=15.5, cy_px=11.5, baseline_m=0.1,
        ...                   width_px=32, height_px=24)
        >>> k = np.array([[50, 0, 15.5], [0, 50, 11.5], [0, 0, 1.0]])
        >>> p = np.hstack([k, np.zeros((3, 1))])
        >>> d = np.zeros(5)
        >>> r = Rectifier.from_matrices(k, d, k, d, np.eye(3), np.eye(3), p, p, (32, 24), cal)
        >>> left, right, c = r.rectify(np.zeros((24, 32, 3), np.uint8), np.zeros((24, 32, 3), np.uint8))
        >>> left.shape, c.baseline_m
        ((24, 32, 3), 0.1)
    """

    def __init__(
        self,
        maps_left: tuple[np.ndarray, np.ndarray],
        maps_right: tuple[np.ndarray, np.ndarray],
        calibration: Calibration,
        source: str | None = None,
    ):
        self.maps_left = maps_left
        self.maps_right = maps_right
        self.calibration = calibration
        self.source = source
        self.size_hw = tuple(maps_left[0].shape[:2])
        self._left_valid: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Rectifier({self.size_hw[0]}x{self.size_hw[1]} (HxW), {self.calibration})"

    @classmethod
    def from_matrices(
        cls,
        k1,
        d1,
        k2,
        d2,
        r1,
        r2,
        p1,
        p2,
        size_wh: tuple[int, int],
        calibration: Calibration | None = None,
        source: str = "rectification",
        fisheye: bool = False,
    ) -> Rectifier:
        """Maps from OpenCV's calibration (``K``, ``D``) and rectification (``R``, ``P``) matrices; with ``fisheye``,
        of ``cv2.fisheye``'s lens model (``D`` = k1..k4), else of the pinhole one.

        Raises:
            MemoryBudgetError: maps of ``size_wh`` (named by ``source``) that the memory budget cannot hold.
        """
        size_wh = (int(size_wh[0]), int(size_wh[1]))
        _check_maps_fit(source, size_wh)
        if calibration is None:
            calibration = calibration_from_projections(p1, p2, *size_wh, source="rectification")
        undistort = cv2.fisheye.initUndistortRectifyMap if fisheye else cv2.initUndistortRectifyMap
        maps = [
            undistort(
                np.asarray(k, np.float64),
                np.asarray(d, np.float64).reshape(4, 1) if fisheye else np.asarray(d, np.float64),
                np.asarray(r, np.float64),
                np.asarray(p, np.float64)[:3, :3],
                size_wh,
                cv2.CV_16SC2,
            )
            for k, d, r, p in ((k1, d1, r1, p1), (k2, d2, r2, p2))
        ]
        return cls(tuple(maps[0]), tuple(maps[1]), calibration)

    @classmethod
    def from_file(cls, path: str | Path, length_unit: str | None = None) -> Rectifier:
        """Load ``maps.npz`` (from :meth:`save` / ``rtstereo calibrate``) or an OpenCV YAML/XML/JSON with
        ``K1, D1, K2, D2`` and either ``R1, R2, P1, P2`` or ``R, T`` (then rectified here, ``alpha=0``).

        ``D1``, ``D2`` are of the pinhole lens model unless a text entry ``distortion_model`` (or ``model``,
        ``camera_model``, ``lens_model``) names a fisheye one (``equidistant``, ``fisheye``, ``kannala_brandt``):
        then they are ``cv2.fisheye``'s k1..k4, rectified with ``cv2.fisheye``. Without that entry, a fisheye
        rig's 4 coefficients cannot be told from pinhole k1, k2, p1, p2, and are read as those.

        Args:
            path: the file.
            length_unit: unit of the lengths (``T``, ``P2``) in an OpenCV file, as
                :func:`~rtstereo.io.calibration.read_calibration` takes it: ``None`` takes the file's
                ``length_unit`` entry, else metres; a unit that contradicts the entry is refused.
                ``maps.npz`` records metres and ignores it.

        Raises:
            InputError: a missing or unreadable file, a rectified calibration (for images rectified
                already, read by :func:`~rtstereo.io.calibration.read_calibration`), missing matrices.
        """
        rectifier = cls._from_file(path, length_unit)
        given = str(path)
        rectifier.source = given if is_url(given) else str(Path(given).absolute())
        return rectifier

    @property
    def record(self) -> dict[str, Any]:
        """What a result's ``preparation`` records of the rectification (``{"rectify": ...}`` of ``predict``'s sidecar,
        of ``video``'s and ``live``'s summaries): the file of the maps (``None``: made in memory) and the size
        ``[H, W]`` of the raw images they take, which the disparity is not of: it is of the rectified view."""
        return {"file": getattr(self, "source", None), "raw_size_hw": [int(n) for n in self.size_hw]}

    @classmethod
    def _from_file(cls, path: str | Path, length_unit: str | None) -> Rectifier:
        if isinstance(path, str):  # as a path, a URL was "rectification file not found: http:/host/maps.npz"
            refuse_other_url(path, "rectification file")
            if is_url(path) and file_url_path(path) is None:  # a web page in its place named the cache's file, kept
                return read_downloaded(path, lambda local: cls.from_file(local, length_unit))
            path = fetch(path) if is_url(path) else path
        path = require_path(path, "rectification file")
        if not path.is_file():
            kind = "is a folder, not a file" if path.is_dir() else "not found"
            raise InputError(f"rectification file {kind}: {path}{rig_folder_hint(path) if path.is_dir() else ''}")
        check_length_unit(length_unit)
        if path.suffix.lower() == ".npz":
            return cls._from_npz(path)
        other = _binary_kind(path)
        if other is not None:  # a PNG was "OpenCV cannot parse it as YAML/XML/JSON (OpenCV(5.1.0) /io/opencv/...)"
            raise InputError(f"{path} is {other}, not a rectification file: {_RECTIFY_TAKES}")
        rectified = rectified_format(path)
        if rectified is not None:
            raise InputError(f"{path} is a rectified calibration ({rectified}): {_FOR_CALIB}")
        try:
            matrices, size_wh, texts = read_opencv(path)
        except NoNamedEntriesError as exc:  # it named --calib's matrices (P1, P2 or Q) first, and no maps.npz
            raise InputError(f"{path} {exc.what}: {_RECTIFY_TAKES}") from None
        except InputError as exc:
            if "OpenCV cannot parse it" not in str(exc):
                raise
            raise InputError(f"{exc}; {_RECTIFY_TAKES}") from None
        for name, older in (("K1", "M1"), ("K2", "M2")):  # older OpenCV samples name camera matrices M1/M2
            if older in matrices and name not in matrices:
                matrices[name] = matrices[older]
        needed = {"K1", "D1", "K2", "D2"}
        if not needed <= matrices.keys() and ({"P1", "P2"} <= matrices.keys() or "Q" in matrices):
            found = ", ".join(sorted(matrices.keys() & {"P1", "P2", "Q"}))
            raise InputError(
                f"{path} is a rectified calibration ({found}) without the raw cameras (K1, D1, K2, D2) that "
                f"rectifying needs: {_FOR_CALIB}"
            )
        if needed <= matrices.keys() and 0 in size_wh:
            # It listed the K1, D1, K2, D2 it had found as what was needed, the size last, as if the matrices lacked
            raise InputError(
                f"{path} holds both cameras (their matrices and distortion) but not the size of the images they were "
                "calibrated at, which the rectification maps are made for: add image_width and image_height (or "
                "image_size: [width, height]) to it"
            )
        if not needed <= matrices.keys():
            raise InputError(
                f"{path}: rectification needs K1, D1, K2, D2 and the image size (image_width, "
                f"image_height); found {', '.join(sorted(matrices)) or 'no matrices'} and size "
                f"{size_wh[1]}x{size_wh[0]} (HxW)"
            )
        _check_rig_matrices(path, matrices)
        _warn_if_cameras_of_another_size(path, matrices, size_wh)
        fisheye = _lens_is_fisheye(path, texts, matrices)
        metres_per_unit = opencv_metres_per_unit(path, texts, length_unit)
        if not {"R1", "R2", "P1", "P2"} <= matrices.keys():
            if not {"R", "T"} <= matrices.keys():
                raise InputError(f"{path}: needs R1, R2, P1, P2 (rectification) or R, T (camera pose)")
            # R1, R2 depend on T's direction only and P2's translation on its length: the unit is applied
            # to the baseline below.
            if fisheye:  # balance 0, as alpha 0 below: only pixels that both views show
                d1, d2 = (matrices[name].reshape(4, 1) for name in ("D1", "D2"))
                r1, r2, p1, p2, _ = cv2.fisheye.stereoRectify(
                    matrices["K1"],
                    d1,
                    matrices["K2"],
                    d2,
                    size_wh,
                    matrices["R"],
                    matrices["T"].reshape(3, 1),
                    flags=cv2.CALIB_ZERO_DISPARITY,
                    balance=0.0,
                )
            else:
                r1, r2, p1, p2, *_ = cv2.stereoRectify(
                    matrices["K1"],
                    matrices["D1"],
                    matrices["K2"],
                    matrices["D2"],
                    size_wh,
                    matrices["R"],
                    matrices["T"].reshape(3, 1),
                    flags=cv2.CALIB_ZERO_DISPARITY,
                    alpha=0,
                )
            matrices.update(R1=r1, R2=r2, P1=p1, P2=p2)
            horizontal = abs(p2[0, 3] - p1[0, 3]) >= abs(p2[1, 3] - p1[1, 3])  # else: refused as vertical below
            if horizontal and not p1[0, 3] > p2[0, 3]:  # P[0,3] is no value of the file: say it in T's terms
                raise InputError(
                    f"{path}: T = {_numbers(matrices['T'])} puts the right camera to the left of the left one (a "
                    f"baseline of {(p1[0, 3] - p2[0, 3]) / p1[0, 0]:.6g} in T's unit): left and right are swapped, or "
                    "T's sign is (OpenCV's T takes left-camera points to the right camera's, so a right camera B to "
                    "the right has T = -B, 0, 0)"
                )
        m = matrices
        calibration = calibration_from_projections(
            m["P1"], m["P2"], *size_wh, source=str(path), metres_per_unit=metres_per_unit
        )
        return cls.from_matrices(
            m["K1"],
            m["D1"],
            m["K2"],
            m["D2"],
            m["R1"],
            m["R2"],
            m["P1"],
            m["P2"],
            size_wh,
            calibration,
            str(path),
            fisheye,
        )

    @classmethod
    def _from_npz(cls, path: Path) -> Rectifier:
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # ValueError: "pickled data", for any other file
            loaded = None
        # An empty file raised EOFError, a .npy under the name a TypeError, other files "contains pickled (object)
        # data ... load it unsafely using allow_pickle=" (which the caller cannot give, and should not)
        if not isinstance(loaded, Mapping):
            raise InputError(
                f"cannot read rectification maps {path}: not a NumPy .npz archive, or damaged (expected the maps.npz "
                "written by `rtstereo calibrate`)"
            )
        try:
            with loaded as data:
                fields = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"cannot read rectification maps {path}: {exc}") from None
        needed = {"format", "left_map1", "left_map2", "right_map1", "right_map2", "calibration"}
        if str(fields.get("format", "")) != MAPS_FORMAT or not needed <= fields.keys():
            raise InputError(
                f"{path}: not an rtstereo rectification-maps file (expected the maps.npz written by "
                f"`rtstereo calibrate`; found keys {', '.join(sorted(fields))})"
            )
        try:
            recorded = json.loads(str(fields["calibration"]))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: its calibration entry is not valid JSON ({exc}): the file is damaged") from None
        if not isinstance(recorded, dict):
            raise InputError(f"{path}: its calibration entry holds a {type(recorded).__name__}: the file is damaged")
        calibration = calibration_from_dict(recorded, source=str(path))
        maps = [(fields[f"{side}_map1"], fields[f"{side}_map2"]) for side in ("left", "right")]
        _check_maps(path, maps, calibration)
        return cls(maps[0], maps[1], calibration)

    def save(self, path: str | Path) -> Path:
        """Write the maps and calibration as one ``.npz`` file (written whole or not at all).

        Raises:
            OutputError: a path that does not end in ``.npz``, or one that cannot be written.
        """
        from .io.atomic import atomic_path

        path = require_path(path, "rectification maps file")
        if path.suffix.lower() != ".npz":  # numpy would add .npz itself, to a file other than the one returned
            raise OutputError(f"rectification maps file {path} must end in .npz")
        calibration = json.dumps({"format": FORMAT_TAG, **dataclasses.asdict(self.calibration)})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as partial, partial.open("wb") as file:
                np.savez_compressed(
                    file,
                    format=np.array(MAPS_FORMAT),
                    calibration=np.array(calibration),
                    left_map1=self.maps_left[0],
                    left_map2=self.maps_left[1],
                    right_map1=self.maps_right[0],
                    right_map2=self.maps_right[1],
                )
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {os_reason(exc, path)}") from None
        return path

    @property
    def left_valid_mask(self) -> np.ndarray:
        """bool ``(H, W)`` of the rectified left view: True where it shows the raw left image, False where its map
        reaches beyond it (the black fill of a rectification that keeps every source pixel, ``--alpha`` over 0), whose
        disparity, depth and points would be made up (:func:`without_unseen_pixels`).

        Examples:
            >>> cal = Calibration(fx_px=50, fy_px=50, cx0_px=15.5, cx1_px=15.5, cy_px=11.5, baseline_m=0.1)
            >>> k, d = np.array([[50, 0, 15.5], [0, 50, 11.5], [0, 0, 1.0]]), np.zeros(5)
            >>> p = np.hstack([k, np.zeros((3, 1))])
            >>> p[0, 2] += 4  # the rectified view shows the raw one 4 px to the right: its first 4 columns unseen
            >>> r = Rectifier.from_matrices(k, d, k, d, np.eye(3), np.eye(3), p, p, (32, 24), cal)
            >>> r.left_valid_mask[0, :6]
            array([False, False, False, False,  True,  True])
        """
        if getattr(self, "_left_valid", None) is None:  # also a Rectifier unpickled from before the attribute
            # Remapped with the pairs' own sampling: a pixel short of full white blends in some of the fill
            raw = np.full(self.size_hw, 255, np.uint8)
            seen = cv2.remap(raw, *self.maps_left, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            self._left_valid = seen == 255
        return self._left_valid

    def rectify(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray, Calibration]:
        """Rectify one raw pair.

        Args:
            left, right: uint8 images ``(H, W, 3)`` or ``(H, W)`` of the size the rig was calibrated at.

        Returns:
            ``(left, right, calibration)``: the rectified images (same dtype and channels) and their
            calibration.

        Raises:
            InputError: an image that is not a numpy array of 2 or 3 dimensions, not of the calibrated size, or of
                a dtype other than uint8, uint16, int16, float32 or float64.
        """
        height, width = self.size_hw
        for side, image in (("left", left), ("right", right)):
            if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
                got = f"an array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
                raise InputError(f"{side} image: expected a numpy array (H, W, 3) or (H, W), got {got}")
            if image.shape[:2] != (height, width):
                # as --calib says of a calibration of the turned size: a photo's EXIF tag turns it when read
                turned = (
                    ", the same turned 90 degrees: photos turned upright by their EXIF orientation tag (applied when "
                    "read, as viewers do), calibrated as stored or the other way round? Calibrate with the images as "
                    "rtstereo reads them (rtstereo calibrate)"
                    if image.shape[:2] == (width, height)
                    else ": use images of the calibrated size (same camera mode), or calibrate at this size"
                )
                raise InputError(
                    f"{side} image is {image.shape[0]}x{image.shape[1]} but the rectification maps are "
                    f"for {height}x{width} (HxW) images{turned}"
                )
            if image.dtype not in _REMAP_DTYPES:  # a bool or int64 image was a cv2.error traceback from remap
                raise InputError(
                    f"{side} image: expected dtype uint8 (or uint16, int16, float32, float64), got {image.dtype}"
                )
        rectified = [
            # remap drops the channel axis of an (H, W, 1) image: given back as it came
            cv2.remap(image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT).reshape(image.shape)
            for image, (m1, m2) in ((left, self.maps_left), (right, self.maps_right))
        ]
        return rectified[0], rectified[1], self.calibration


def without_unseen_pixels(result: DisparityResult, valid: np.ndarray) -> DisparityResult:
    """``result`` with ``nan`` (invalid) disparity where the rectified left view shows none of the raw one.

    The network matches the black fill of such pixels too, and its disparities there became depths and black points
    of the cloud (5 % of the points of a rig rectified with ``alpha`` 1).

    Args:
        result: the disparity of a pair rectified with a :class:`Rectifier`.
        valid: its :attr:`Rectifier.left_valid_mask`; resized (nearest pixel) to the map when the frames were
            resized after rectifying (``--size``), and cut to the window the map is of with ``--fit crop``
            (``result.preparation["crop"]``).

    Returns:
        ``result`` itself when every pixel is seen, else a copy with ``nan`` in the unseen ones.
    """
    disparity = result.disparity_px
    valid = np.asarray(valid, dtype=bool)
    crop = result.preparation.get("crop") if isinstance(result.preparation, dict) else None
    if crop is not None:  # --fit crop: the map is the window's, so the mask is cut to it (it was squeezed whole)
        height, width = (int(n) for n in crop["input_size_hw"])
        if valid.shape != (height, width):
            valid = cv2.resize(valid.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        x0, y0, win_w, win_h = (int(crop[key]) for key in ("x0_px", "y0_px", "width_px", "height_px"))
        valid = valid[y0 : y0 + win_h, x0 : x0 + win_w]
    if valid.shape != disparity.shape:
        height, width = disparity.shape
        valid = cv2.resize(valid.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    if valid.all():
        return result
    return dataclasses.replace(result, disparity_px=np.where(valid, disparity, np.nan).astype(np.float32))
