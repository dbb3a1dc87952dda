"""Training loss and the validation metrics computed on tensors.

The loss is smooth-L1 on pixels with valid ground truth inside the network's disparity range, summed
over the network's predictions (coarse to fine) with weights. The ``matchable`` loss region also
leaves out each row's left band whose points fall left of the right image (:func:`left_band`): no
match exists there, and the packaged predictors fill it after the network
(:func:`rtstereo.runtime.postprocess.fill_left_border`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..text import counted
from .config import LOSS_REGIONS, ConfigSettingError


def valid_mask(gt_px: torch.Tensor, max_disp: float) -> torch.Tensor:
    """Pixels whose ground truth can be learned: finite, positive, below ``max_disp``.

    Args:
        gt_px: ``(N, H, W)`` ground-truth disparity, pixels; ``nan``/``inf``/``<= 0`` where unknown.
        max_disp: the network's disparity range, pixels.

    Returns:
        Bool ``(N, H, W)``.
    """
    return torch.isfinite(gt_px) & (gt_px > 0) & (gt_px < max_disp)


def left_band(gt_px: torch.Tensor) -> torch.Tensor:
    """Pixels whose match ``x - d`` falls left of the right image's first pixel: ``x < d``.

    Examples:
        >>> left_band(torch.full((1, 1, 4), 2.0)).tolist()
        [[[True, True, False, False]]]
    """
    cols = torch.arange(gt_px.shape[-1], device=gt_px.device, dtype=gt_px.dtype)
    return cols < gt_px  # nan compares False


def training_mask(gt_px: torch.Tensor, max_disp: float, region: str = "all") -> torch.Tensor:
    """The pixels the loss and the validation score: :func:`valid_mask`, less the left band when
    ``region`` is ``matchable``.
    """
    if region not in LOSS_REGIONS:
        raise InputError(f"loss region must be one of {', '.join(LOSS_REGIONS)}, got {region!r}")
    mask = valid_mask(gt_px, max_disp)
    return mask & ~left_band(gt_px) if region == "matchable" else mask


def check_weight_count(weights: Sequence[float], predictions: int) -> None:
    """Refuse loss weights whose count is not the network's number of training-mode predictions.

    Raises:
        ConfigSettingError: for ``loss_weights`` (the CLI names ``--loss-weights``), with both counts.

    Examples:
        >>> check_weight_count([0.5, 1.0], 2)
    """
    if len(weights) != predictions:
        raise ConfigSettingError(
            "loss_weights",
            f"{counted(len(weights), 'weight')}, but the network returns {predictions} predictions in training "
            f"mode; give {predictions} weights, coarse to fine",
        )


def multiscale_loss(
    predictions: Sequence[torch.Tensor], gt_px: torch.Tensor, valid: torch.Tensor, weights: Sequence[float]
) -> torch.Tensor:
    """Weighted sum of smooth-L1 losses of each prediction on the valid pixels.

    Args:
        predictions: ``(N, H, W)`` disparities in pixels, coarse to fine.
        gt_px: ``(N, H, W)`` ground truth, pixels.
        valid: bool ``(N, H, W)`` pixels to learn from.
        weights: one weight per prediction.

    Returns:
        Scalar loss (0 with a gradient when no pixel is valid, so a step never fails).

    Raises:
        ConfigSettingError: the weights are not one per prediction (setting ``loss_weights``).

    Examples:
        >>> gt = torch.full((1, 2, 2), 4.0)
        >>> float(multiscale_loss([gt + 1.0], gt, gt > 0, [1.0]))
        0.5
    """
    check_weight_count(weights, len(predictions))
    target = torch.where(valid, gt_px, torch.zeros_like(gt_px))  # no nan reaches the gradient
    count = valid.sum().clamp(min=1)
    total = predictions[0].new_zeros(())
    for prediction, weight in zip(predictions, weights):
        if prediction.shape != gt_px.shape:
            raise InputError(
                f"prediction {tuple(prediction.shape)} and ground truth {tuple(gt_px.shape)} differ in shape"
            )
        error = F.smooth_l1_loss(prediction.float(), target, reduction="none")
        total = total + weight * (error * valid).sum() / count
    return total


def batch_errors(pred_px: torch.Tensor, gt_px: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Sums for validation metrics over a batch (combine batches, then divide by ``pixels``).

    Args:
        pred_px: ``(N, H, W)`` prediction, pixels.
        gt_px: ``(N, H, W)`` ground truth, pixels.
        valid: bool ``(N, H, W)`` evaluated pixels.

    Returns:
        ``abs_error`` (sum of ``|d - gt|``; ``inf`` when a prediction is not finite), ``bad1``, ``bad2``,
        ``bad3`` (counts of errors over 1, 2, 3 px) and ``pixels`` (count evaluated).
    """
    error = (pred_px.float() - torch.where(valid, gt_px, torch.zeros_like(gt_px))).abs()[valid]
    error = torch.nan_to_num(error, nan=math.inf)  # a broken prediction counts as wrong, not as absent
    return {
        "abs_error": float(error.sum()),
        "bad1": float((error > 1).sum()),
        "bad2": float((error > 2).sum()),
        "bad3": float((error > 3).sum()),
        "pixels": float(valid.sum()),
    }


def summarize_errors(sums: dict[str, float]) -> dict[str, float]:
    """``epe`` (px) and ``bad-1/2/3`` (%) from the sums of :func:`batch_errors`."""
    pixels = max(sums["pixels"], 1.0)
    return {
        "epe": sums["abs_error"] / pixels,
        "bad-1": 100.0 * sums["bad1"] / pixels,
        "bad-2": 100.0 * sums["bad2"] / pixels,
        "bad-3": 100.0 * sums["bad3"] / pixels,
        "pixels": int(sums["pixels"]),
    }
