"""Classical baselines through OpenCV: semi-global (SGBM) and plain block matching (BM).

The defaults reproduce the reference settings of ``../shared/data/README.md``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, RtStereoWarning, warn
from ..text import shortened

# OpenCV's matchers take their settings as C ints: a larger value failed with a bare ValueError ("integer
# won't fit into a C int") instead of an InputError.
OPENCV_INT_MAX = 2**31 - 1


def num_disparities(max_disp_px: int) -> int:
    """OpenCV wants a multiple of 16 searched disparities.

    Examples:
        >>> num_disparities(100), num_disparities(192)
        (112, 192)
    """
    if max_disp_px < 1:
        raise InputError(f"max_disp must be >= 1 pixel, got {shortened(max_disp_px)}")
    if max_disp_px > OPENCV_INT_MAX - 15:
        raise InputError(
            f"max_disp must be at most {OPENCV_INT_MAX - 15} pixels (OpenCV's limit), got {shortened(max_disp_px)}"
        )
    return int(math.ceil(max_disp_px / 16) * 16)


def hole_runs(holes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of holes along the rows of a bool ``(H, W)`` map, in row-major order: each run's row,
    first column and the column after its last (int ``(R,)`` arrays).

    A run's pixels share their nearest non-hole pixels in the row: the column before the run (-1: none)
    and the one after it (``W``: none). Found where the row's mask changes, they take a tenth of the time
    of running a maximum and a minimum along every row (0.14 against 1.8 ms at 640x480).

    Examples:
        >>> rows, first, stop = hole_runs(np.array([[True, False, True, True], [False, False, True, False]]))
        >>> rows.tolist(), first.tolist(), stop.tolist()
        ([0, 0, 1], [0, 2, 2], [1, 4, 3])
    """
    height, width = holes.shape
    padded = np.zeros((height, width + 2), np.int8)  # a non-hole before and after every row
    padded[:, 1:-1] = holes
    change = np.diff(padded, axis=1)  # (H, W + 1): 1 at a run's first column, -1 at the column after it
    rows, first = np.divmod(np.flatnonzero(change == 1), width + 1)
    stop = np.flatnonzero(change == -1) - rows * (width + 1)
    return rows, first, stop


def fill_holes_rowwise(disparity_px: np.ndarray) -> np.ndarray:
    """Fill ``nan`` pixels with the smaller of the nearest valid values to their left and right.

    The smaller disparity is the farther surface, which is what an occluded pixel usually shows.
    Rows with no valid pixel stay ``nan``.

    Examples:
        >>> fill_holes_rowwise(np.array([[np.nan, 3.0, np.nan, 5.0, np.nan]], np.float32)).tolist()
        [[3.0, 3.0, 3.0, 5.0, 5.0]]
    """
    d = np.asarray(disparity_px, dtype=np.float32)
    width = d.shape[1]
    holes = ~np.isfinite(d)
    rows, first, stop = hole_runs(holes)
    flat, row_start = d.reshape(-1), rows * width
    # the values beside each run (inf where the row ends there); one value per run, spread over its pixels
    farther = np.minimum(
        np.where(first > 0, flat.take(row_start + np.maximum(first - 1, 0)), np.inf),
        np.where(stop < width, flat.take(row_start + np.minimum(stop, width - 1)), np.inf),
    )
    out = d.copy()
    out[holes] = np.repeat(np.where(np.isfinite(farther), farther, np.nan), stop - first)
    return out


class UnmatchedBandWarning(RtStereoWarning):
    """A disparity range too wide for the image: OpenCV's matcher searched over half its width (most of the map is
    unmatched), or a network over its whole width (that part of the range has no match and costs time for nothing)."""


class OpenCVMatcher:
    """An OpenCV stereo matcher with rtstereo's contract: uint8 RGB in, float32 disparity (nan) out.

    Each thread that calls it matches with a matcher of its own, made by ``make``: OpenCV's StereoBM and StereoSGBM
    keep their work buffers in the matcher, so that two threads computing with one at once corrupted each other's
    maps (bm on the example pair, 4 threads: up to 72 000 pixels off by up to 185 px).
    """

    def __init__(self, make: Callable[[], Any], settings: Mapping[str, Any], grey: bool):
        self._make = make
        self._per_thread = threading.local()
        self.settings = dict(settings)
        self.grey = grey
        self.num_disparities = self.matcher.getNumDisparities()
        #: warn when a narrow image leaves the map without a match, or mostly unmatched (:meth:`_say_nothing_matched`,
        #: :meth:`_say_unmatched_band`)
        self.say_when_empty = True

    @property
    def matcher(self) -> Any:
        """The calling thread's OpenCV matcher (made on its first call)."""
        matcher = getattr(self._per_thread, "matcher", None)
        if matcher is None:
            matcher = self._per_thread.matcher = self._make()
        return matcher

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Disparity of the left view, float32 ``(H, W)`` pixels, ``nan`` where invalid."""
        self._check_size(*left.shape[:2])
        if self.grey:
            a, b = (cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (left, right))
        else:  # the per-channel costs are summed, so RGB vs BGR order does not matter
            a, b = left, right
        raw = self.matcher.compute(a, b)
        disparity = raw.astype(np.float32) / 16.0  # OpenCV returns fixed point with 4 fractional bits
        # 0 and below mark pixels without a match (the reference settings count d <= 0 as invalid).
        disparity[raw <= 0] = np.nan
        if self.say_when_empty and not (raw > 0).any():
            self._say_nothing_matched(left.shape[1])
        elif self.say_when_empty and 2 * self.num_disparities > left.shape[1]:
            self._say_unmatched_band(left.shape[1])
        if self.settings.get("fill_holes", True):
            disparity = fill_holes_rowwise(disparity)
        return disparity

    def _say_nothing_matched(self, width: int) -> None:
        """Warn about a map without a single match from an image barely wider than the searched range: only the
        columns beyond the range can be matched, and the block and the checks leave none of a few (SGBM,
        block_size 5, 64 disparities: no match at 67 px on a 32-row textured pair), which gave an empty map without
        a word. A wider image without a match (a blank one) is not the range's doing: nothing to say."""
        searched, block = self.num_disparities, int(self.settings.get("block_size", 5))
        if width - searched >= 2 * block:
            return
        fits = 16 * ((width - 2 * block) // 16)  # OpenCV searches a multiple of 16
        lower = f"lower --max-disp ({fits} or less; max_disp= in Python)" if fits >= 16 else "use a wider image"
        warn(
            f"{'bm' if self.grey else 'sgbm'} matched no pixel: the image is {width} px wide, only {width - searched} "
            f"px more than the {searched} disparities it searches, and its block ({block} px) and checks leave no "
            f"column of those matched; {lower}"
        )

    def _say_unmatched_band(self, width: int) -> None:
        """Warn (:class:`UnmatchedBandWarning`) when the searched range covers more than half the width: OpenCV
        matches no pixel in the first ``num_disparities`` columns, and the row fill makes most of the map up
        (the example pair, 320 px wide, at the default 192: 4.70 px mean error, against 0.54 px at 32), which
        only ``eval`` said."""
        searched = self.num_disparities
        filled = "its row fill makes up the map there" if self.settings.get("fill_holes", True) else "left invalid"
        share = 100 * searched / width
        warn(
            f"{'bm' if self.grey else 'sgbm'} matches no pixel in the first {searched} columns ({share:.0f} % of the "
            f"{width}-px width) when it searches {searched} disparities ({filled}); a --max-disp (max_disp= in "
            "Python) near the scene's largest disparity leaves more of it matched",
            UnmatchedBandWarning,
        )

    def _check_size(self, height: int, width: int) -> None:
        """Refuse, in one line, the image sizes OpenCV's matchers reject with an assertion (or, for
        SGBM's 3-direction mode at widths up to the searched range, a crash)."""
        searched = self.num_disparities
        lower = "lower --max-disp (max_disp= in Python)" if searched > 16 else "16 is the least OpenCV searches"
        if width <= searched:
            raise InputError(f"image width {width} px must exceed the searched disparities ({searched}); {lower}")
        block = int(self.settings.get("block_size", 5))
        if self.grey:  # StereoBM: the block must fit inside the image
            if block >= min(height, width):
                raise InputError(
                    f"bm: block_size {block} must be smaller than the image ({height}x{width} px, HxW); "
                    "lower --set block_size (block_size= in Python)"
                )
        elif not self.settings.get("three_way", False) and width - searched <= block // 2:
            raise InputError(
                f"image width {width} px is too small for SGBM searching {searched} disparities with block_size "
                f"{block}: it must exceed {searched + block // 2} px; "
                + (
                    "lower --max-disp or --set block_size (max_disp=, block_size= in Python)"
                    if searched > 16
                    else f"lower --set block_size (block_size= in Python; {lower})"
                )
            )


# StereoSGBM adds its block costs and path penalties (P1, P2: 24 and 96 x block², below) in 16-bit integers.
# Above 11 px they overflow on textured scenes and the maps go wrong silently (measured with these
# penalties on ../shared/data/real: KITTI 2012 000070 at 13 px, 72 % of the matches off by more than 3 px;
# cones at 17 px, 19 %; at 11 px, 3.9 % and 3.3 %). OpenCV's own advice is 3 to 11.
SGBM_MAX_BLOCK_PX = 11


def build_sgbm(settings: Mapping[str, Any]) -> OpenCVMatcher:
    """OpenCV StereoSGBM with P1/P2 scaled to the block size for three channels.

    ``settings["three_way"]`` (optional, default false) selects OpenCV's ``MODE_SGBM_3WAY``: three
    aggregation directions instead of five, run in parallel strips (at 640x480 on 2 threads 35 ms
    against 85 ms), with slightly different matches.
    """
    block = _odd_block(settings["block_size"])
    if block > SGBM_MAX_BLOCK_PX:
        raise InputError(
            f"block_size for sgbm must be an odd number from 1 to {SGBM_MAX_BLOCK_PX}, got {block}: OpenCV's SGBM sums "
            "its costs in 16 bits, which larger blocks overflow without an error (at 13, 72 % of the matches of KITTI "
            "2012 000070 are off by more than 3 px, against 4 % at 11)"
        )
    _check_not_negative(settings, ("uniqueness", "speckle_window", "speckle_range"))
    _check_opencv_ints(settings, ("disp12_max_diff", "speckle_window", "speckle_range"))
    check_sgbm_uniqueness(settings["uniqueness"])
    searched, settings = num_disparities(settings["max_disp"]), dict(settings)  # each thread's matcher alike

    def make() -> Any:
        return cv2.StereoSGBM_create(
            minDisparity=0,
            numDisparities=searched,
            blockSize=block,
            P1=8 * 3 * block * block,
            P2=32 * 3 * block * block,
            disp12MaxDiff=settings["disp12_max_diff"],
            uniquenessRatio=settings["uniqueness"],
            speckleWindowSize=settings["speckle_window"],
            speckleRange=settings["speckle_range"],
            mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY if settings.get("three_way", False) else cv2.STEREO_SGBM_MODE_SGBM,
        )

    return OpenCVMatcher(make, settings, grey=False)


def build_bm(settings: Mapping[str, Any]) -> OpenCVMatcher:
    """OpenCV StereoBM on grey images."""
    block = _odd_block(settings["block_size"])
    _check_not_negative(settings, ("uniqueness", "speckle_window", "speckle_range"))
    _check_opencv_ints(settings, ("disp12_max_diff", "uniqueness", "speckle_window", "speckle_range"))
    if not 5 <= block <= 255:
        raise InputError(f"block_size for bm must be an odd number from 5 to 255, got {block}")
    searched, settings = num_disparities(settings["max_disp"]), dict(settings)  # each thread's matcher alike

    def make() -> Any:
        matcher = cv2.StereoBM_create(numDisparities=searched, blockSize=block)
        matcher.setUniquenessRatio(settings["uniqueness"])
        matcher.setSpeckleWindowSize(settings["speckle_window"])
        matcher.setSpeckleRange(settings["speckle_range"])
        matcher.setDisp12MaxDiff(settings["disp12_max_diff"])
        return matcher

    return OpenCVMatcher(make, settings, grey=True)


# Local contrast normalisation (:func:`normalize_local_contrast`), chosen in session 18 on the 9 design
# scenes of the selection set, as they are and with the right view's exposure changed
# (training/default/README.md, "Session 18").
CONTRAST_WINDOW_PX = 7
CONTRAST_FLOOR = 4.0  # grey levels added to the window's standard deviation: flat areas stay flat
CONTRAST_SCALE = 40.0  # grey levels per standard deviation in the output
SGBM_INPUTS = ("raw", "normalized", "auto")
# ``auto``: normalised views when the right view's mean grey level is more than this many times the left
# one's, or less than its inverse (the 23 pairs of the selection set as taken: 0.90-1.06).
EXPOSURE_RATIO_LIMIT = 1.2


def brightness_ratio(left: np.ndarray, right: np.ndarray) -> float:
    """The right view's mean grey level (luma) over the left one's (uint8 RGB ``(H, W, 3)`` or grey
    ``(H, W)`` / ``(H, W, 1)`` images).

    Examples:
        >>> dark = np.full((4, 4, 3), 50, np.uint8)
        >>> round(brightness_ratio(dark, dark * 2), 3)
        2.0
    """
    means = [float(cv2.mean(_grey(image))[0]) for image in (left, right)]
    return (means[1] + 1e-3) / (means[0] + 1e-3)


def _grey(image: np.ndarray) -> np.ndarray:
    """One channel of grey levels: luma of an RGB image, the image itself when it has one channel."""
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image.reshape(image.shape[:2])


def resolved_sgbm_input(setting: str, left: np.ndarray, right: np.ndarray) -> str:
    """What SGBM matches for the hybrid's ``sgbm_input`` setting: ``"raw"`` or ``"normalized"``
    (``"auto"``: normalized when :func:`brightness_ratio` lies beyond :data:`EXPOSURE_RATIO_LIMIT`)."""
    if setting not in SGBM_INPUTS:
        raise InputError(f"setting 'sgbm_input' must be one of {', '.join(SGBM_INPUTS)}, got {setting!r}")
    if setting != "auto":
        return setting
    return "normalized" if _beyond(brightness_ratio(left, right), EXPOSURE_RATIO_LIMIT) else "raw"


def _beyond(ratio: float, limit: float) -> bool:
    return not 1 / limit <= ratio <= limit


# A stream's frames (:class:`ExposureLatch`): once normalised, the views go back to raw only when their
# brightness ratio is within this, so that a ratio hovering at 1.2x does not switch SGBM's input, and
# the depth with it, from one frame to the next.
EXPOSURE_RATIO_RETURN = 1.15


class ExposureLatch:
    """``sgbm_input=auto`` over the frames of one stream, with hysteresis.

    A single pair is decided as :func:`resolved_sgbm_input` decides it: normalised beyond
    :data:`EXPOSURE_RATIO_LIMIT`. After a normalised frame the next ones stay normalised until the ratio
    is back within :data:`EXPOSURE_RATIO_RETURN`. A camera pair whose auto-exposure hovers around 1.2x
    would otherwise flicker between SGBM's two inputs. Pairs of a batch are decided alone (the order of
    a batch must not change its results); only a stream keeps a latch.

    Examples:
        >>> grey = lambda level: np.full((4, 4), level, np.uint8)
        >>> latch = ExposureLatch()
        >>> [latch(grey(100), grey(level)) for level in (110, 125, 118, 110)]
        ['raw', 'normalized', 'normalized', 'raw']
        >>> latch.switches
        2
    """

    def __init__(self) -> None:
        self.normalized = False
        self.switches = 0
        self.last_ratio: float | None = None

    def __call__(self, left: np.ndarray, right: np.ndarray) -> str:
        """``"raw"`` or ``"normalized"`` for this frame."""
        self.last_ratio = brightness_ratio(left, right)
        limit = EXPOSURE_RATIO_RETURN if self.normalized else EXPOSURE_RATIO_LIMIT
        normalized = _beyond(self.last_ratio, limit)
        self.switches += normalized != self.normalized
        self.normalized = normalized
        return "normalized" if normalized else "raw"


def normalize_local_contrast(image: np.ndarray, window_px: int = CONTRAST_WINDOW_PX) -> np.ndarray:
    """Each channel with its local mean removed and divided by its local standard deviation.

    ``out = 128 + CONTRAST_SCALE * (x - mean) / (std + CONTRAST_FLOOR)`` over a ``window_px`` square,
    rounded and clipped to uint8. A gain or an offset of the whole image leaves it unchanged (up to
    the floor and rounding), so two cameras that expose differently give SGBM images that agree.

    Args:
        image: uint8 ``(H, W)`` or ``(H, W, C)``.

    Returns:
        uint8, the shape of ``image``.

    Examples:
        >>> flat = np.full((9, 9, 3), 90, np.uint8)
        >>> int(normalize_local_contrast(flat)[4, 4, 0])
        128
    """
    if image.dtype != np.uint8:
        raise InputError(f"normalize_local_contrast takes uint8 images, got {image.dtype}")
    x = image.astype(np.float32)
    window = (window_px, window_px)
    mean = cv2.blur(x, window).reshape(x.shape)  # OpenCV drops a single channel's axis
    spread = np.sqrt(np.maximum(cv2.blur(x * x, window).reshape(x.shape) - mean * mean, 0.0))
    out = (x - mean) / (spread + np.float32(CONTRAST_FLOOR)) * np.float32(CONTRAST_SCALE) + np.float32(128.0)
    return np.clip(out, 0.0, 255.0).round().astype(np.uint8).reshape(image.shape)


# Confident matches (:func:`confident_disparity`): a stricter uniqueness than the reference's 10, and a
# left-right check against the right view's own SGBM map.
CONFIDENT_UNIQUENESS = 15
CONFIDENT_LR_TOLERANCE_PX = 1.0


def confident_search_range(width_px: int, max_disp_px: float, quarter_width_cap: bool = True) -> int:
    """Disparities :func:`confident_disparity` searches: ``max_disp_px`` or (with ``quarter_width_cap``)
    a quarter of the width, whichever is less, rounded up to a multiple of 16 (at least 16).

    A range near the width would leave most of the image in the unmatched left band; real pairs rarely
    have disparities over a quarter of their width.

    Examples:
        >>> confident_search_range(1000, 192), confident_search_range(320, 192), confident_search_range(40, 192)
        (192, 80, 16)
    """
    bound = min(max_disp_px, width_px / 4) if quarter_width_cap else max_disp_px
    return int(max(16, -(-bound // 16) * 16))


def check_lr_tolerance(lr_tolerance_px: float, mirrored_check: bool, owner: str = "") -> None:
    """Refuse a left-right tolerance that OpenCV would round: its ``disp12MaxDiff`` is whole pixels (2.5 acted
    as 2). With ``mirrored_check`` the second pass checks any tolerance exactly.

    Raises:
        InputError: a tolerance below 0 or not finite, or not a whole number without the mirrored check.

    Examples:
        >>> check_lr_tolerance(2.0, False), check_lr_tolerance(2.5, True)
        (None, None)
    """
    if not 0 <= lr_tolerance_px < float("inf"):  # nan fails too
        raise InputError(f"{owner}setting 'lr_tolerance' must be a number >= 0, got {lr_tolerance_px}")
    if lr_tolerance_px > OPENCV_INT_MAX:  # it becomes OpenCV's disp12MaxDiff, a C int
        raise InputError(f"{owner}setting 'lr_tolerance' must be at most {OPENCV_INT_MAX} px, got {lr_tolerance_px}")
    if not mirrored_check and lr_tolerance_px != int(lr_tolerance_px):
        whole = math.floor(lr_tolerance_px)
        raise InputError(
            f"{owner}setting 'lr_tolerance' is {lr_tolerance_px:g} px, and OpenCV's left-right check "
            f"(disp12MaxDiff) takes whole pixels: give {whole} or {whole + 1}, or add mirrored_check=true, whose "
            "second pass checks any tolerance exactly"
        )


def confident_disparity(
    left: np.ndarray,
    right: np.ndarray,
    max_disp_px: float = 192.0,
    uniqueness: int = CONFIDENT_UNIQUENESS,
    lr_tolerance_px: float = CONFIDENT_LR_TOLERANCE_PX,
    mirrored_check: bool = True,
    quarter_width_cap: bool = True,
    three_way: bool = False,
) -> np.ndarray:
    """SGBM's disparity of the left view where it is confident, ``nan`` elsewhere.

    A pixel is kept when SGBM's uniqueness test and its own left-right check (OpenCV's
    ``disp12MaxDiff``, in whole pixels) pass and, with ``mirrored_check``, when the right
    view's disparity from a second SGBM pass on the mirrored pair agrees at its match within
    ``lr_tolerance_px`` too. With the second pass (the proxy labels of training) it keeps about half
    of the pixels of the 22 Middlebury scenes of the selection set at 5 % bad-2 (SGBM's full maps:
    20 %); without it (the hybrid method) 72 % of them, at half the time. Low-texture areas and
    occlusions are left out: that is where the hybrid method uses its network instead.

    Args:
        left, right: uint8 RGB ``(H, W, 3)``.
        max_disp_px: largest disparity searched (see :func:`confident_search_range`).
        uniqueness: OpenCV's ``uniquenessRatio``, percent.
        lr_tolerance_px: left-right check tolerance, pixels: whole, unless ``mirrored_check``
            (:func:`check_lr_tolerance`); 0 acts as 1 without the mirrored check (OpenCV's).
        mirrored_check: also check against a second SGBM pass on the mirrored pair.
        quarter_width_cap: search no more than a quarter of the width (:func:`confident_search_range`);
            without it ``max_disp_px`` rounded up to a multiple of 16 (rendered training scenes, whose
            disparities often pass a quarter of their width).
        three_way: OpenCV's ``MODE_SGBM_3WAY`` (see :func:`build_sgbm`).

    Returns:
        float32 ``(H, W)``, pixels.

    Raises:
        InputError: see :func:`check_lr_tolerance`.
    """
    check_lr_tolerance(lr_tolerance_px, mirrored_check)
    width = left.shape[1]
    match = build_sgbm(
        {
            "max_disp": confident_search_range(width, max_disp_px, quarter_width_cap),
            "block_size": 5,
            # whole pixels; with the mirrored check, rounded up so that the exact check below decides
            "disp12_max_diff": max(0, math.ceil(lr_tolerance_px)),
            "uniqueness": int(uniqueness),
            "speckle_window": 100,
            "speckle_range": 2,
            "fill_holes": False,
            "three_way": three_way,
        }
    )
    match.say_when_empty = False  # its users fill what it leaves (the hybrid's network, training hints)
    d_left = match(left, right)
    if not mirrored_check:
        return d_left
    # The right view's disparity: match the mirrored pair, whose left view is the mirrored right one.
    d_right = match(np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]))[:, ::-1]
    cols = np.arange(width, dtype=np.float32)[None, :]
    x_right = np.round(cols - np.nan_to_num(d_left, nan=0.0)).astype(np.int64).clip(0, width - 1)
    back = np.take_along_axis(d_right, x_right, axis=1)
    keep = np.isfinite(d_left) & np.isfinite(back) & (np.abs(d_left - back) <= lr_tolerance_px)
    return np.where(keep, d_left, np.nan).astype(np.float32)


def _check_not_negative(settings: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """OpenCV takes negative values of these without a word and matches as if they were 0 or off."""
    for key in keys:
        if key in settings and not settings[key] >= 0:  # nan fails too
            raise InputError(f"setting '{key}' must be >= 0, got {shortened(settings[key])}")


def _check_opencv_ints(settings: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Refuse values that OpenCV's C ints cannot hold."""
    for key in keys:
        if key in settings and not -OPENCV_INT_MAX <= settings[key] <= OPENCV_INT_MAX:
            raise InputError(
                f"setting '{key}' must lie within +-{OPENCV_INT_MAX} (OpenCV's limit), got {shortened(settings[key])}"
            )


# StereoSGBM keeps a match when its cost times (100 - uniqueness) / 100 beats every other: at 100 its
# 3-direction mode divides by zero (the process dies of SIGFPE), above it the test inverts (more pixels
# pass at 150 than at 99) and the 5-direction mode rejects nearly every pixel.
SGBM_UNIQUENESS_LIMIT = 100


def check_sgbm_uniqueness(uniqueness: float, owner: str = "") -> None:
    """Refuse a uniqueness ratio OpenCV's StereoSGBM cannot apply (percent, 0 to 99).

    Examples:
        >>> check_sgbm_uniqueness(10)
        >>> check_sgbm_uniqueness(100, owner="hybrid: ")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: hybrid: setting 'uniqueness' must be a percentage below 100 (SGBM's ...), got 100
    """
    if not 0 <= uniqueness < SGBM_UNIQUENESS_LIMIT:  # nan fails too
        raise InputError(
            f"{owner}setting 'uniqueness' must be a percentage below {SGBM_UNIQUENESS_LIMIT} (SGBM's uniqueness "
            f"ratio), got {uniqueness}"
        )


def _odd_block(size: int) -> int:
    if size < 1 or size % 2 == 0:
        raise InputError(f"block_size must be a positive odd number, got {size}")
    return size
