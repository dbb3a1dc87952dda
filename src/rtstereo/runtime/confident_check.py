"""A second look at SGBM's confident matches: where the hybrid's network disagrees, which one to show.

The hybrid shows SGBM's value wherever its uniqueness test and left-right check hold. Those pixels are
not always right: on the 9 design scenes of the selection set 9.6 % of them are off by more than 2 px
(the guided network at the same pixels 11.8 %, a per-pixel oracle between the two 7.1 %), most where the
two views are lit differently (PianoL) and in repeated or weak texture. Where the network's value
differs from SGBM's by more than :data:`DISAGREE_PX`, a small perceptron (:class:`ConfidentSelector`,
the hole selector's kind) over 22 local measures (:data:`CHECK_FEATURE_NAMES`) judges whether the
network is the right one; the network's value is shown where its log-odds exceed
:data:`NETWORK_LOGIT_MARGIN`. SGBM's value is the incumbent: the margin asks the selector to be fairly
sure (it was fit on rendered scenes, where the network is right more often than on real ones).

Besides the hole choice's measures (the photometric costs of both answers, the texture, the network's
spread), the check compares the two answers by the grey-level difference, the horizontal-derivative
difference and the grey difference with each window's mean removed separately (the last two ignore a
change of exposure or lighting between the views), and looks at how SGBM's confident values and the
disagreement are spread around the pixel. Fit: :mod:`rtstereo.train.hole_selector` ``--which
confident``; record ``training/hole_selector/``; weights ``rtstereo/weights/confident-check.json``
(numpy and OpenCV at run time, no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .hole_choice import HolePreparation, HoleSelector, as_rows, contrast, measured_in_parts
from .refine import warp_rows

DISAGREE_PX = 1.0  # the network is a candidate where it differs from SGBM's confident value by more
NETWORK_LOGIT_MARGIN = 1.0  # log-odds the network needs: chosen among 0.5, 1 and 1.5 on the design subset
WIDE_WINDOW_PX = 21
GREY_TRUNCATION = 60.0  # grey levels
DERIVATIVE_TRUNCATION = 12.0  # quarter grey levels per pixel (the Sobel derivative scaled by 1/4)

CHECK_FEATURE_NAMES = (
    "cost_contrast",  # (SGBM's cost - network's) / (sum + 1), the hole choice's costs over the window
    "log_network_cost",
    "log_sgbm_cost",
    "sgbm_minus_network",  # px, clipped to +-32, / 8
    "log_abs_difference",
    "log_texture",  # the hole choice's texture measure
    "confident_share",  # of the window's pixels
    "log_confident_spread",  # standard deviation of the confident values in the window, px
    "log_sgbm_off_mean",  # |SGBM's value - the mean confident value of the window|, px
    "log_network_off_mean",  # |the network's value - that mean|, px
    "log_network_spread",  # standard deviation of the network's map over the window, px
    "pixel_cost_contrast",  # as cost_contrast, unaveraged (the cost's own 5 px window)
    "left_band",  # x / searched range, at most 1
    "sgbm_over_range",  # SGBM's value / searched range
    "grey_contrast",  # as cost_contrast, from the truncated grey-level difference alone
    "derivative_contrast",  # from the truncated horizontal-derivative difference alone
    "zero_mean_contrast",  # from the grey difference with each window's mean removed
    "log_sgbm_zero_mean",
    "log_sgbm_derivative",
    "brightness",  # mean grey level of the window / 255
    "confident_share_wide",  # over WIDE_WINDOW_PX
    "disagreeing_share_wide",  # share of the wide window's pixels where the two differ by > DISAGREE_PX
)

CHECK_FILE = Path(__file__).resolve().parent.parent / "weights" / "confident-check.json"


class ConfidentSelector(HoleSelector):
    """A perceptron with one hidden layer of ``tanh`` units: the log-odds that the network, not SGBM,
    is right at a confident pixel where they disagree (the weights' layout is :class:`HoleSelector`'s)."""

    FEATURES = CHECK_FEATURE_NAMES
    WHAT = "confident check"
    PACKAGED_FILE = CHECK_FILE


def packaged_check() -> ConfidentSelector:
    """The check's selector shipped with the package (read once)."""
    return ConfidentSelector.packaged()


@dataclass(frozen=True)
class CheckPreparation:
    """What the check needs of the images and SGBM's map alone (:func:`prepare_check`), made while the
    network runs.

    Attributes:
        holes: the hole choice's :class:`~rtstereo.runtime.hole_choice.HolePreparation` of the same map.
        images: the grey levels and derivatives of both views and the sampling grid (see :func:`_matching`).
        sgbm: float32 ``(H, W)``: SGBM's map with its row-wise fill (0 in rows without a confident pixel).
        sgbm_match: SGBM's grey, derivative and zero-mean differences over the window.
        grey_mean, share, share_wide, confident_values, confident_squares: float32 ``(H, W)`` window means
            of the left view's grey levels, of the confident pixels (the share of them), of their values and
            of their squares (0 elsewhere); the confident values' mean and spread, and the brightness, are
            finished at the checked pixels only (:func:`_measures`).
    """

    holes: HolePreparation
    images: tuple
    sgbm: np.ndarray
    sgbm_match: tuple
    grey_mean: np.ndarray
    share: np.ndarray
    share_wide: np.ndarray
    confident_values: np.ndarray
    confident_squares: np.ndarray


def prepare_check(right: np.ndarray, holes: HolePreparation) -> CheckPreparation:
    """The part of :func:`check_candidates` that does not need the network's map (``holes`` was made
    from the left image, whose grey levels it keeps, and the same ``right``)."""
    window = (holes.window_px, holes.window_px)
    greys = [holes.grey.astype(np.float32), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY).astype(np.float32)]
    derivatives = [holes.derivative, cv2.Sobel(greys[1], cv2.CV_32F, 1, 0, ksize=3, scale=0.25)]
    left_mean = cv2.blur(greys[0], window)
    zero_mean = greys[0] - left_mean
    # the sampling grid of the photometric cost: columns (1, W), rows (H, W)
    images = (greys[0], derivatives[0], greys[1], derivatives[1], zero_mean, holes.cost.cols, holes.cost.rows)
    sgbm = np.where(np.isfinite(holes.fill), holes.fill, np.float32(0.0)).astype(np.float32, copy=False)
    confident = ~holes.holes
    confident_share = confident.astype(np.float32)
    share = cv2.blur(confident_share, window)
    values = np.where(confident, holes.confident, np.float32(0.0)).astype(np.float32, copy=False)
    return CheckPreparation(
        holes=holes,
        images=images,
        sgbm=sgbm,
        sgbm_match=_matching(images, sgbm, window),
        grey_mean=left_mean,
        share=share,
        share_wide=cv2.blur(confident_share, (WIDE_WINDOW_PX, WIDE_WINDOW_PX)),
        confident_values=cv2.blur(values, window),
        confident_squares=cv2.blur(values * values, window),
    )


def _matching(images: tuple, disparity: np.ndarray, window: tuple[int, int]) -> tuple:
    """How the right view, warped by ``disparity``, differs from the left over the window: by the
    truncated grey level, by the truncated horizontal derivative, and by the grey level with each
    window's mean removed (float32 ``(H, W)`` each)."""
    grey_left, derivative_left, grey_right, derivative_right, left_zero_mean, columns, rows = images
    map_x = columns - disparity
    warped_grey, warped_derivative = (warp_rows(image, map_x, rows) for image in (grey_right, derivative_right))
    grey = cv2.blur(np.minimum(cv2.absdiff(grey_left, warped_grey), GREY_TRUNCATION), window)
    derivative = cv2.blur(np.minimum(cv2.absdiff(derivative_left, warped_derivative), DERIVATIVE_TRUNCATION), window)
    warped_zero_mean = warped_grey - cv2.blur(warped_grey, window)
    zero_mean = cv2.blur(cv2.absdiff(left_zero_mean, warped_zero_mean), window)
    return grey, derivative, zero_mean


@dataclass(frozen=True)
class CheckCandidates:
    """The confident pixels where the network disagrees, with their measures or a selector's log-odds.

    Attributes:
        points: ``(N,)`` flat positions (``y * W + x``), row-major.
        sgbm, network: float32 ``(N,)`` the two values there.
        features: float32 ``(N, len(CHECK_FEATURE_NAMES))``, or None when not kept.
        logits: float32 ``(N,)`` log-odds that the network is right, or None without a selector.
    """

    points: np.ndarray
    sgbm: np.ndarray
    network: np.ndarray
    features: np.ndarray | None
    logits: np.ndarray | None


def check_candidates(
    network: np.ndarray,
    prepared: CheckPreparation,
    search_px: float,
    maps: dict | None = None,
    selector: ConfidentSelector | None = None,
    keep_features: bool = True,
    threads: int | None = None,
) -> CheckCandidates:
    """The confident pixels where ``network`` differs from SGBM by more than :data:`DISAGREE_PX`, and
    their measures (:data:`CHECK_FEATURE_NAMES`) or ``selector``'s log-odds.

    Args:
        network: float32 ``(H, W)``, the network's map (``nan`` where invalid: never a candidate).
        prepared: :func:`prepare_check` of the same images and SGBM map.
        search_px: SGBM's searched range (scales two measures).
        maps: the hole choice's ``Candidates.maps`` of the same network map, if already made.
        selector, keep_features, threads: as for :func:`~rtstereo.runtime.hole_choice.hole_candidates`.
    """
    if not keep_features and selector is None:
        raise ValueError("keep_features=False needs a selector: nothing would come out")
    holes = prepared.holes
    window = (holes.window_px, holes.window_px)
    network = np.ascontiguousarray(network, dtype=np.float32)
    if maps is None:
        network_ok = np.where(np.isfinite(network), network, np.float32(0.0))
        network_pixel = holes.cost(network, out=np.empty_like(network))
        maps = {
            "network": network_ok,
            "network_pixel": network_pixel,
            "network_cost": cv2.blur(network_pixel, window),
            "mean": cv2.blur(network_ok, window),
            "mean_square": cv2.blur(network_ok * network_ok, window),
        }
    with np.errstate(invalid="ignore"):
        disagree = np.abs(holes.confident - network) > DISAGREE_PX  # nan on either side: False
    points = np.flatnonzero(disagree)
    width = network.shape[1]
    xs = (points % width).astype(np.float32)
    network_match = _matching(prepared.images, maps["network"], window)
    wide = (WIDE_WINDOW_PX, WIDE_WINDOW_PX)
    flat = {
        "sgbm": holes.confident,
        "network": maps["network"],
        "sgbm_cost": holes.fill_cost,
        "network_cost": maps["network_cost"],
        "sgbm_pixel": holes.fill_pixel,
        "network_pixel": maps["network_pixel"],
        "texture": holes.texture,
        "share": prepared.share,
        "share_wide": prepared.share_wide,
        "confident_values": prepared.confident_values,
        "confident_squares": prepared.confident_squares,
        "mean": maps["mean"],
        "mean_square": maps["mean_square"],
        "grey_mean": prepared.grey_mean,
        "disagreeing": cv2.blur(disagree.astype(np.float32), wide),
        **dict(zip(("sgbm_grey", "sgbm_derivative", "sgbm_zero_mean"), prepared.sgbm_match, strict=True)),
        **dict(zip(("network_grey", "network_derivative", "network_zero_mean"), network_match, strict=True)),
    }
    flat = {key: value.reshape(-1) for key, value in flat.items()}
    sgbm_values = flat["sgbm"].take(points)
    network_values = flat["network"].take(points)
    band = np.float32(max(float(search_px), 1.0))
    features, logits = measured_in_parts(
        flat,
        points,
        len(CHECK_FEATURE_NAMES),
        lambda at, part: _measures(at, xs[part], band),
        selector,
        keep_features,
        threads,
    )
    return CheckCandidates(points=points, sgbm=sgbm_values, network=network_values, features=features, logits=logits)


def _measures(at: dict[str, np.ndarray], xs: np.ndarray, band: np.float32) -> np.ndarray:
    """The :data:`CHECK_FEATURE_NAMES` of some points, ``(F, n)``, from their map values ``at``."""
    sgbm, net = at["sgbm"], at["network"]
    difference = sgbm - net
    mean = at["mean"]
    spread = np.sqrt(np.clip(at["mean_square"] - mean * mean, 0.0, None))
    # The confident values' mean and spread over the window, from the means of them and their squares
    # (0 elsewhere) and the share of them: per point, as the same arithmetic over whole maps did.
    some = np.maximum(at["share"], np.float32(1e-6))
    confident_mean = at["confident_values"] / some
    confident_spread = np.sqrt(np.clip(at["confident_squares"] / some - confident_mean * confident_mean, 0.0, None))
    columns = (
        contrast(at["sgbm_cost"], at["network_cost"]),
        np.log1p(at["network_cost"]),
        np.log1p(at["sgbm_cost"]),
        np.clip(difference, -32.0, 32.0) / 8.0,
        np.log1p(np.abs(difference)),
        np.log1p(at["texture"]),
        at["share"],
        np.log1p(confident_spread),
        np.log1p(np.abs(sgbm - confident_mean)),
        np.log1p(np.abs(net - confident_mean)),
        np.log1p(spread),
        contrast(at["sgbm_pixel"], at["network_pixel"]),
        np.minimum(xs / band, np.float32(1.0)),
        sgbm / band,
        contrast(at["sgbm_grey"], at["network_grey"]),
        contrast(at["sgbm_derivative"], at["network_derivative"]),
        contrast(at["sgbm_zero_mean"], at["network_zero_mean"]),
        np.log1p(at["sgbm_zero_mean"]),
        np.log1p(at["sgbm_derivative"]),
        at["grey_mean"] * np.float32(1.0 / 255.0),
        at["share_wide"],
        at["disagreeing"],
    )
    return as_rows(columns, len(sgbm))


def check_confident(
    fused: np.ndarray,
    network: np.ndarray,
    prepared: CheckPreparation,
    search_px: float,
    maps: dict | None = None,
    selector: ConfidentSelector | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """``fused`` with the network's value at the confident pixels where the check takes it (log-odds
    above :data:`NETWORK_LOGIT_MARGIN`); a new float32 ``(H, W)`` map, the rest unchanged.

    Args:
        fused: float32 ``(H, W)``, the hybrid's map so far (SGBM's values at its confident pixels).
        network: float32 ``(H, W)``, the network's map.
        prepared: :func:`prepare_check` of the same images and SGBM map.
        search_px: SGBM's searched range.
        maps: the hole choice's ``Candidates.maps`` of the same network map, if already made.
        selector: the packaged one unless given.
        threads: the most threads its measures may run on (:func:`~rtstereo.runtime.hole_choice.part_threads`).
    """
    selector = selector or packaged_check()
    candidates = check_candidates(
        network, prepared, search_px, maps=maps, selector=selector, keep_features=False, threads=threads
    )
    take = candidates.logits > NETWORK_LOGIT_MARGIN
    checked = np.array(fused, dtype=np.float32, copy=True)
    checked.reshape(-1).put(candidates.points[take], candidates.network[take])
    return checked
