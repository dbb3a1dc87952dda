"""Left-right consistency: which disparities both views agree on.

A pixel ``x`` of the left image with disparity ``d`` sees the point that the right image shows at
``x - d``. The right view's own disparity there should be ``d`` again; where it is not, the pixel is
occluded in the right image (no match exists) or the match is wrong.

Any method computes disparity for its left input only. The right view's disparity comes from the
mirrored problem: flipping both images left-to-right turns the right image into a left image whose
matches lie to its left again, so ``flip(predict(flip(right), flip(left)))`` is the disparity of the
right image, positive, in its own pixels.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np
import numpy.typing as npt

from .errors import InputError, not_a_predictor, require_number, require_numbers
from .runtime.predictor import ResizeWarning, window_of
from .types import DisparityResult, StereoPair

DEFAULT_MAX_DIFF_PX = 1.0


def right_disparity(predictor, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Disparity of the right image, from the horizontally flipped, swapped pair.

    Args:
        predictor: anything with ``predict(left, right) -> DisparityResult``
            (a :class:`~rtstereo.runtime.predictor.Predictor`).
        left: uint8 RGB ``(H, W, 3)``.
        right: uint8 RGB ``(H, W, 3)``.

    Returns:
        float32 ``(H, W)``: for each right pixel ``x``, the positive disparity ``d`` such that it
        shows the left pixel ``x + d``; ``nan`` where invalid.
    """
    mirrored = predictor.predict(np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]))
    return np.ascontiguousarray(mirrored.disparity_px[:, ::-1])


def lr_difference_px(disparity_left_px: np.ndarray, disparity_right_px: np.ndarray) -> np.ndarray:
    """``|d_left(x) - d_right(x - d_left(x))|`` for every left pixel, in pixels.

    The match ``x - d_left`` usually falls between two right pixels; the smaller difference to
    their two disparities counts, so a correct pixel next to a right-view depth edge is not blamed
    for the edge.

    Args:
        disparity_left_px: float ``(H, W)``, left view, ``nan`` where invalid.
        disparity_right_px: float ``(H, W)``, right view (see :func:`right_disparity`).

    Returns:
        float32 ``(H, W)``; ``nan`` where the left disparity is invalid, the match falls outside the
        right image (occluded by the image border), or the right disparity there is invalid.

    Examples:
        >>> dl = np.array([[np.nan, 1.0, 1.0, 1.0]])
        >>> dr = np.array([[1.0, 1.0, 3.0, np.nan]])
        >>> lr_difference_px(dl, dr)
        array([[nan,  0.,  0.,  2.]], dtype=float32)
    """
    dl, dr = (
        _float_map(disparity, side) for disparity, side in ((disparity_left_px, "left"), (disparity_right_px, "right"))
    )
    if dl.ndim != 2 or dl.shape != dr.shape:
        raise InputError(f"left and right disparity must both be (H, W) of one size, got {dl.shape} and {dr.shape}")
    height, width = dl.shape
    x_right = np.arange(width)[None, :] - dl
    inside = np.isfinite(x_right) & (x_right >= 0) & (x_right <= width - 1)
    xs = np.where(inside, x_right, 0.0)
    x0 = np.clip(np.floor(xs).astype(np.int64), 0, width - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    rows = np.arange(height)[:, None]
    with np.errstate(invalid="ignore"):
        difference = np.fmin(np.abs(dl - dr[rows, x0]), np.abs(dl - dr[rows, x1]))
        difference = np.where(inside, difference, np.nan)
    return difference.astype(np.float32)


def _float_map(disparity_px: np.ndarray, side: str) -> np.ndarray:
    """A disparity map as float64, or an :class:`InputError` for one of integers: OpenCV's StereoBM and StereoSGBM give
    int16 d * 16, 16-bit PNGs d * 256, which taken as pixels moved each match 16 or 256 times too far and judged every
    pixel against a threshold in the wrong unit, without a word."""
    disparity = require_numbers(disparity_px, f"{side} disparity", "a float (H, W) array")
    if not np.issubdtype(disparity.dtype, np.floating):
        raise InputError(
            f"{side} disparity: expected a float (H, W) array of pixels, got {disparity.dtype}; OpenCV's StereoBM and "
            "StereoSGBM give int16 d * 16 and 16-bit disparity PNGs d * 256 (rtstereo.io.read_disparity reads them in "
            "pixels): divide by that first, or for a map of whole pixels, .astype(np.float32)"
        )
    return disparity.astype(np.float64)


def consistency_mask(
    disparity_left_px: np.ndarray, disparity_right_px: np.ndarray, max_diff_px: float = DEFAULT_MAX_DIFF_PX
) -> np.ndarray:
    """Bool ``(H, W)``: True where left and right disparities agree within ``max_diff_px``.

    False marks occluded pixels, mismatches and pixels without a disparity.
    """
    check_max_diff_px(max_diff_px)
    difference = lr_difference_px(disparity_left_px, disparity_right_px)
    with np.errstate(invalid="ignore"):
        return np.isfinite(difference) & (difference <= max_diff_px)


def check_max_diff_px(max_diff_px: float, name: str = "max_diff_px") -> None:
    """Refuse a left-right threshold that is not a finite number of pixels > 0 (``name`` says whose)."""
    # a string failed in math.isfinite with a bare TypeError
    max_diff_px = require_number(max_diff_px, name, "a number of pixels > 0")
    # inf passes no judgement, and lands as "Infinity" (not JSON) in the result's settings
    if not (math.isfinite(max_diff_px) and max_diff_px > 0):
        raise InputError(f"{name} must be > 0 pixels (a finite number), got {max_diff_px}")


def confidence_from_difference(difference_px: np.ndarray, scale_px: float = DEFAULT_MAX_DIFF_PX) -> np.ndarray:
    """A soft confidence in ``0..1``: ``exp(-difference / scale)``, 0 where the difference is unknown.

    Args:
        difference_px: float, pixels, ``>= 0`` (:func:`lr_difference_px`), ``nan`` where unknown.
        scale_px: the difference at which the confidence falls to ``1/e``, pixels, finite and ``> 0``.

    Raises:
        InputError: a scale that is not a finite number > 0 (inf gave a confidence of 1 to every pixel, a string a
            bare TypeError), or a negative difference (a signed one: its confidence came out above 1).
    """
    scale_px = require_number(scale_px, "scale_px", "a number of pixels > 0")
    if not (math.isfinite(scale_px) and scale_px > 0):
        raise InputError(f"scale_px must be > 0 pixels (a finite number), got {scale_px}")
    difference = require_numbers(difference_px, "difference_px", "a float array of pixels").astype(np.float32)
    with np.errstate(invalid="ignore"):
        negative = difference < 0
    if negative.any():
        raise InputError(
            f"difference_px: expected differences >= 0 pixels (lr_difference_px gives their size), got "
            f"{float(difference[negative].min()):g}: pass np.abs(...) of a signed difference"
        )
    return np.where(np.isfinite(difference), np.exp(-difference / scale_px), 0.0).astype(np.float32)


def lr_check(
    predictor,
    pair: StereoPair,
    result: DisparityResult | None = None,
    max_diff_px: float = DEFAULT_MAX_DIFF_PX,
) -> tuple[DisparityResult, npt.NDArray[np.bool_]]:
    """Run the left-right check for one pair and mark the inconsistent disparities invalid.

    Args:
        predictor: a :class:`~rtstereo.runtime.predictor.Predictor`.
        pair: the stereo pair.
        result: the left disparity already computed for ``pair``; computed when ``None``.
        max_diff_px: largest disagreement kept, pixels.

    Returns:
        ``(result, mask)``: the result with ``nan`` where the check fails (its timings gain
        ``lr_check``, its settings ``lr_max_diff_px``), and the bool ``(H, W)`` consistency mask.

    Raises:
        InputError: a predictor, pair, result or threshold of the wrong type, or a threshold that is not > 0.
    """
    if not callable(getattr(predictor, "predict_pair", None)):  # a model name failed with an AttributeError
        raise not_a_predictor(predictor)
    if not isinstance(pair, StereoPair):  # with a result given, pair.left failed with an AttributeError
        raise InputError(
            f"pair: expected a StereoPair, got {type(pair).__name__}: lr_check(model, StereoPair(left, right))"
        )
    if result is not None and not isinstance(result, DisparityResult):
        raise InputError(f"result: expected a DisparityResult of the pair (or None), got {type(result).__name__}")
    check_max_diff_px(max_diff_px)  # before the model runs, not after its first pass
    if result is None:
        result = predictor.predict_pair(pair)
    crop = result.preparation.get("crop")
    if crop is not None:  # --fit crop: the map is its window's, and the right view's must be too
        pair = window_of(pair, crop)
    t0 = time.perf_counter()
    if getattr(getattr(predictor, "backend", None), "device_postprocess", False):
        mask = _device_consistency_mask(predictor, pair, result.disparity_px, max_diff_px)
    else:
        with warnings.catch_warnings():
            if crop is not None:  # the window's resize, said of the pair by the first pass in other words
                warnings.simplefilter("ignore", ResizeWarning)
            right_px = right_disparity(predictor, pair.left, pair.right)
        mask = consistency_mask(result.disparity_px, right_px, max_diff_px)
    elapsed_ms = (time.perf_counter() - t0) * 1e3
    disparity = np.where(mask, result.disparity_px, np.nan).astype(np.float32)
    timings = {
        **result.timings_ms,
        "lr_check": elapsed_ms,
        "total": result.timings_ms.get("total", 0.0) + elapsed_ms,
    }
    checked = dataclasses.replace(
        result,
        disparity_px=disparity,
        timings_ms=timings,
        settings={**result.settings, "lr_max_diff_px": max_diff_px},
    )
    return checked, mask


def _device_consistency_mask(
    predictor, pair: StereoPair, disparity_left_px: np.ndarray, max_diff_px: float
) -> np.ndarray:
    """:func:`consistency_mask` with the right view's map kept on the predictor's device (a torch
    backend on CUDA): only the left map goes up and the bool mask comes back."""
    import torch

    from .runtime import postprocess_torch

    check_max_diff_px(max_diff_px)
    right_px = postprocess_torch.right_disparity(predictor, pair.left, pair.right)
    left_px = torch.from_numpy(np.asarray(disparity_left_px, dtype=np.float32)).to(right_px.device)
    return postprocess_torch.consistency_mask(left_px, right_px, max_diff_px).cpu().numpy()
