"""Turning uint8 RGB images into network input, and padding to a size divisor.

numpy and OpenCV: the ONNX Runtime path uses it without torch.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize(image: np.ndarray, mode: str) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` to float32 ``(1, 3, H, W)`` network input.

    Args:
        image: ``uint8`` RGB ``(H, W, 3)``.
        mode: ``imagenet`` (0..1, then ImageNet mean/std), ``raw255`` (float 0..255) or ``unit`` (0..1).

    Returns:
        float32 array ``(1, 3, H, W)``.

    Examples:
        >>> normalize(np.full((2, 2, 3), 255, np.uint8), "unit").shape
        (1, 3, 2, 2)
    """
    if mode == "imagenet":
        scale, offset = 1.0 / (255.0 * IMAGENET_STD), -IMAGENET_MEAN / IMAGENET_STD
    elif mode == "unit":
        scale, offset = np.full(3, 1.0 / 255.0), np.zeros(3)
    elif mode == "raw255":
        scale, offset = np.ones(3), np.zeros(3)
    else:
        raise InputError(f"unknown normalization '{mode}' (expected imagenet, raw255 or unit)")
    height, width = image.shape[:2]
    out = np.empty((1, 3, height, width), np.float32)
    levels = np.arange(256, dtype=np.float64)
    # One OpenCV table look-up per colour plane (layout change included): a uint8 image has 256 levels, each
    # rounded once from float64. cv2.addWeighted, used before, rounded the pixels its vector code left over
    # differently, and which ones were left over depended on OpenCV's thread count: a network's map changed
    # by up to 0.06 px between --threads 1 and 2.
    for channel, plane in enumerate(cv2.split(np.ascontiguousarray(image))):
        table = (levels * float(scale[channel]) + float(offset[channel])).astype(np.float32)
        cv2.LUT(plane, table, dst=out[0, channel])
    return out


def pad_amounts(height: int, width: int, divisor: int, min_size: int = 0) -> tuple[int, int]:
    """Rows and columns to add at the bottom and right so both sizes divide by ``divisor`` and reach
    ``min_size`` (a multiple of ``divisor``).

    Examples:
        >>> pad_amounts(376, 1241, 16), pad_amounts(24, 100, 32, min_size=64)
        ((8, 7), (40, 28))
    """
    return max((-height) % divisor, min_size - height), max((-width) % divisor, min_size - width)


def pad_to_divisor(batch: np.ndarray, divisor: int, min_size: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` at the bottom and right by edge replication, to multiples of ``divisor`` of at
    least ``min_size`` (:func:`pad_amounts`).

    Padding at the bottom/right keeps pixel (0, 0) where it was, so unpadding is a plain crop and
    disparities need no shift. Edge replication (rather than zeros) gives the network plausible
    texture to match instead of a step.

    Returns:
        The padded batch and ``(pad_bottom, pad_right)``.
    """
    pad_h, pad_w = pad_amounts(batch.shape[-2], batch.shape[-1], divisor, min_size)
    if pad_h or pad_w:
        batch = np.pad(batch, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="edge")
    return batch, (pad_h, pad_w)
