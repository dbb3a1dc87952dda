"""Disparity error metrics: EPE, bad-N and KITTI's D1, over all valid ground truth or a mask.

Definitions (as in ``../shared/data/README.md``): EPE = mean ``|d - gt|``; bad-N = % of pixels with
``|d - gt| > N``; D1 = % of pixels with ``|d - gt| > 3`` **and** ``> 5 %`` of ``gt``.

A pixel where the prediction is invalid (``nan``) but the ground truth is valid counts as wrong in
bad-N and D1 and as predicting 0 in EPE, so that sparse methods cannot look better by abstaining;
``density`` reports how much was predicted: the percent of the pixels scored where the prediction is finite, 0 and
below included (scored as the errors they are), unlike :attr:`~rtstereo.types.DisparityResult.density`, predict's
fraction of all the map's pixels with a disparity above 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError, require_numbers

BAD_THRESHOLDS_PX = (0.5, 1.0, 2.0, 3.0, 4.0)


def bad_key(threshold_px: float) -> str:
    """Metric name of a bad-N threshold: ``bad-0.5``, ``bad-2``."""
    return f"bad-{threshold_px:g}"


def disparity_metrics(pred_px: np.ndarray, gt_px: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Error metrics of a predicted disparity map against ground truth.

    Args:
        pred_px: float ``(H, W)`` prediction, ``nan`` where invalid.
        gt_px: float ``(H, W)`` ground truth, ``nan``/``inf``/``<= 0`` where unknown.
        mask: optional bool ``(H, W)`` region (e.g. non-occluded), or 0/1 numbers; combined with valid GT.

    Returns:
        ``epe``, ``bad-0.5`` ... ``bad-4`` and ``d1`` in percent, ``density`` (percent of the
        evaluated pixels with a finite prediction, 0 and below included), ``pixels`` (count evaluated).

    Raises:
        InputError: maps or a mask of different shapes, or a mask with values other than 0 and 1 (a dataset's mask
            image as read: Middlebury's ``mask0nocc.png`` is 255 where non-occluded and 128 where occluded).

    Examples:
        >>> gt = np.full((2, 2), 10.0, np.float32)
        >>> m = disparity_metrics(gt + np.array([[0, 1], [2, 5]], np.float32), gt)
        >>> m["epe"], m["bad-1"], m["d1"]
        (2.0, 50.0, 25.0)
    """
    pred = require_numbers(pred_px, "prediction", "a float (H, W) array of pixels").astype(np.float32)
    gt = require_numbers(gt_px, "ground truth", "a float (H, W) array of pixels").astype(np.float32)
    if pred.shape != gt.shape:
        raise InputError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    region = np.isfinite(gt) & (gt > 0)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != gt.shape:
            raise InputError(f"mask {mask.shape} and ground truth {gt.shape} differ in shape")
        region &= _region_mask(mask)
    count = int(region.sum())
    if count == 0:
        return {
            "epe": float("nan"),
            **{bad_key(t): float("nan") for t in BAD_THRESHOLDS_PX},
            "d1": float("nan"),
            "density": float("nan"),
            "pixels": 0,
        }
    g = gt[region]
    p = pred[region]
    predicted = np.isfinite(p)
    error = np.abs(np.where(predicted, p, 0.0) - g)
    wrong = lambda threshold: ~predicted | (error > threshold)  # noqa: E731 - local shorthand
    metrics = {"epe": float(error.mean())}
    for t in BAD_THRESHOLDS_PX:
        metrics[bad_key(t)] = float(wrong(t).mean() * 100)
    metrics["d1"] = float((~predicted | ((error > 3.0) & (error > 0.05 * g))).mean() * 100)
    metrics["density"] = float(predicted.mean() * 100)
    metrics["pixels"] = count
    return metrics


def _region_mask(mask: np.ndarray) -> np.ndarray:
    """A mask as bool: bool, or numbers 0 and 1. Other values are refused: cast to bool, a Middlebury mask image as
    read (255 non-occluded, 128 occluded) made every occluded pixel count as non-occluded, and a soft confidence
    (0..1) every pixel above 0."""
    if mask.dtype == np.bool_:
        return mask
    if np.issubdtype(mask.dtype, np.number):
        with np.errstate(invalid="ignore"):
            other = ~((mask == 0) | (mask == 1))
        if not other.any():
            return mask == 1
        values = ", ".join(f"{v:g}" for v in np.unique(mask[other])[:4].astype(np.float64))
        raise InputError(
            f"mask: expected bool (H, W), True where a pixel is scored (or 0 and 1), got {mask.dtype} with the values "
            f"{values}: make it bool first, e.g. mask=(image == 255) for Middlebury's mask0nocc.png (255 non-occluded, "
            "128 occluded), or mask=(confidence > 0.5)"
        )
    raise InputError(f"mask: expected bool (H, W), True where a pixel is scored, got {mask.dtype}")


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-key mean over scenes (each scene weighs the same), skipping ``nan``.

    A key that only some scenes have (``noc/...`` where a dataset has a non-occluded mask) is the mean
    over those scenes, whichever scene comes first. Pixel counts (``pixels``, ``noc/pixels``) are not
    averaged.

    Examples:
        >>> mean_metrics([{"epe": 1.0, "pixels": 4}, {"epe": 3.0, "noc/epe": 2.0, "pixels": 4, "noc/pixels": 2}])
        {'epe': 2.0, 'noc/epe': 2.0}
    """
    keys = dict.fromkeys(k for row in rows for k in row if k.rpartition("/")[2] != "pixels")
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([r[key] for r in rows if key in r], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[key] = float(values.mean()) if values.size else float("nan")
    return out


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (a metric over no pixels, an identical pair's PSNR) as
    ``None``, in nested dicts and lists too: JSON has no ``NaN`` or ``Infinity``, and strict readers
    (``jq``, JavaScript) refuse what ``json.dumps`` writes for them.

    Examples:
        >>> finite_or_none({"epe": float("nan"), "d1": [1.5, float("inf")]})
        {'epe': None, 'd1': [1.5, None]}
    """
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value
