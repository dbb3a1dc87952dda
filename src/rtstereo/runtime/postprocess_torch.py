"""The post-processing of :mod:`.postprocess` and :mod:`.refine` as torch code, for the GPU.

On CUDA the disparity never has to leave the device: the left-border fill, the edge refinement and
the left-right difference run here on the same tensors, and only the result is copied back. Each
function equals its numpy/OpenCV counterpart within float rounding (the tests hold them to 1e-3 px
on the CPU): the 8-bit steps of :class:`~.refine.PhotometricCost` are reproduced exactly (OpenCV's
15-bit fixed-point grey conversion, the rounded and saturated 8-bit Sobel, and the bilinear
sampling of the installed OpenCV: float weights rounded to 8 bits in OpenCV 5, 1/32-pixel fixed
point in OpenCV 4), so every decision of the propagation is the same.

Shapes: one map ``(H, W)`` float32, ``nan`` where invalid; images ``(H, W, 3)`` uint8 tensors on the
same device.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import InputError, torch_missing

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from ..types import StereoPair
from .postprocess import BORDER_MARGIN_PX
from .refine import (
    COLOUR_TRUNCATION,
    COST_WINDOW_PX,
    GRADIENT_TRUNCATION,
    GRADIENT_WEIGHT,
    MEDIAN_PX,
    NEIGHBOUR_OFFSETS,
    PROPAGATION_ROUNDS,
    SWITCH_PENALTY,
    PhotometricCost,
)

# OpenCV's RGB -> grey for 8-bit images: 15-bit fixed-point luma weights, rounded.
_GREY_WEIGHTS = (9798, 19235, 3735)
_GREY_SHIFT = 15
# OpenCV 4 samples 8-bit images at coordinates rounded to 1/32 px with integer weights; OpenCV 5
# interpolates in float. Both are reproduced; the installed version decides.
_FIXED_POINT_REMAP = int(cv2.__version__.split(".")[0]) < 5
_REMAP_STEPS = 32


def fill_left_border(disparity_px: torch.Tensor, margin_px: float = BORDER_MARGIN_PX) -> torch.Tensor:
    """:func:`.postprocess.fill_left_border` on a tensor: each row's unmatched left band takes the
    disparity of the row's first pixel whose match lies ``margin_px`` inside the right image.

    Args:
        disparity_px: float ``(H, W)``, ``nan`` where invalid.
        margin_px: as in the numpy function.

    Returns:
        A new ``(H, W)`` float32 tensor; rows without a matched pixel are unchanged.
    """
    d = disparity_px.float()
    cols = torch.arange(d.shape[1], device=d.device, dtype=d.dtype).view(1, -1)
    matched = (cols - d) >= margin_px  # nan compares False
    first = matched.to(torch.uint8).argmax(dim=1)  # the first True (0 when none)
    first = torch.where(matched.any(dim=1), first, torch.zeros_like(first))
    value = d.gather(1, first.view(-1, 1))
    return torch.where(cols < first.view(-1, 1).to(d.dtype), value, d)


def _grey(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., 3+)`` RGB(A) -> int32 grey, OpenCV's 8-bit ``COLOR_RGB2GRAY`` exactly."""
    channels = image[..., :3].to(torch.int32)
    r, g, b = channels.unbind(-1)
    weights = _GREY_WEIGHTS
    return (r * weights[0] + g * weights[1] + b * weights[2] + (1 << (_GREY_SHIFT - 1))) >> _GREY_SHIFT


def _box_sum(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Unnormalised ``size`` x ``size`` window sum of ``(H, W)``, borders padded with ``mode``."""
    half = size // 2
    padded = F.pad(x[None, None], (half, half, half, half), mode=mode)
    return F.conv2d(padded, torch.ones(1, 1, size, size, device=x.device, dtype=x.dtype))[0, 0]


class TorchPhotometricCost:
    """:class:`~.refine.PhotometricCost` on tensors (same cost, exactly).

    Args:
        left, right: uint8 RGB ``(H, W, 3)`` tensors on one device.
    """

    def __init__(self, left: torch.Tensor, right: torch.Tensor):
        if left.shape != right.shape or left.dim() != 3 or left.shape[2] != 3:
            raise InputError(f"expected two RGB images of one shape, got {tuple(left.shape)} and {tuple(right.shape)}")
        self.left = self._features(left)
        self.right = self._features(right)
        height, width = left.shape[:2]
        self.cols = torch.arange(width, device=left.device, dtype=torch.float32).view(1, width)
        self.row_index = torch.arange(height, device=left.device).view(height, 1).expand(height, width)
        units = PhotometricCost._DERIVATIVE_UNITS
        truncation = (COLOUR_TRUNCATION,) * 3 + (GRADIENT_TRUNCATION * units,)
        self.truncation = torch.tensor(truncation, device=left.device, dtype=torch.float32)
        self.gradient_weight = GRADIENT_WEIGHT / units

    @staticmethod
    def _features(image: torch.Tensor) -> torch.Tensor:
        """float ``(H, W, 4)`` of 8-bit values: R, G, B and the derivative (Sobel / 2 + 128, rounded)."""
        grey = _grey(image).float()
        kernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=image.device)
        padded = F.pad(grey[None, None], (1, 1, 1, 1), mode="reflect")  # OpenCV's BORDER_REFLECT_101
        sobel = F.conv2d(padded, kernel.view(1, 1, 3, 3))[0, 0]
        derivative = torch.round(sobel * (PhotometricCost._DERIVATIVE_UNITS / 4) + 128.0).clamp(0, 255)
        return torch.cat((image.float(), derivative[..., None]), dim=-1)

    def __call__(self, disparity: torch.Tensor) -> torch.Tensor:
        """float32 ``(H, W)`` window cost of ``disparity`` (meaningless where it is nan)."""
        map_x = torch.nan_to_num(self.cols - disparity, nan=-1.0)
        width = self.right.shape[1]
        # cv2.remap INTER_LINEAR, BORDER_REPLICATE, rows exact: two taps along the row, clamped.
        if _FIXED_POINT_REMAP:
            # OpenCV 4: the coordinate rounded to 1/32 px, integer weights, the sum rounded half up.
            steps = torch.round(map_x * _REMAP_STEPS)
            base = torch.floor(steps / _REMAP_STEPS)
            fraction = (steps - base * _REMAP_STEPS)[..., None]
        else:
            # OpenCV 5: float weights, the result rounded to 8 bits (half to even, as torch.round).
            base = torch.floor(map_x)
            fraction = (map_x - base)[..., None]
        first = self.right[self.row_index, base.long().clamp(0, width - 1)]
        second = self.right[self.row_index, (base.long() + 1).clamp(0, width - 1)]
        if _FIXED_POINT_REMAP:
            weighted = first * (_REMAP_STEPS - fraction) + second * fraction  # integers below 2**13: exact
            sampled = torch.floor((weighted + _REMAP_STEPS / 2) / _REMAP_STEPS)
        else:
            sampled = torch.round(first * (1 - fraction) + second * fraction)
        difference = torch.minimum((self.left - sampled).abs(), self.truncation)
        colour = _grey(difference.to(torch.uint8)).float()
        pixel_cost = colour + difference[..., 3] * self.gradient_weight
        return _box_sum(pixel_cost, COST_WINDOW_PX, mode="reflect")


def _shifted(values: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[y, x] = values[y + dy, x + dx]`` with the edge repeated (:func:`.refine.shift_into`)."""
    height, width = values.shape
    rows = (torch.arange(height, device=values.device) + dy).clamp(0, height - 1)
    cols = (torch.arange(width, device=values.device) + dx).clamp(0, width - 1)
    return values[rows][:, cols]


def propagate_neighbours(
    cost: TorchPhotometricCost, disparity: torch.Tensor, rounds: int = PROPAGATION_ROUNDS
) -> torch.Tensor:
    """:func:`.refine.propagate_neighbours` on tensors."""
    d = disparity.float()
    invalid = ~torch.isfinite(d)
    limit = cost.cols - BORDER_MARGIN_PX
    penalty = SWITCH_PENALTY * COST_WINDOW_PX**2
    for _ in range(rounds):
        best = d
        bar = cost(d) - penalty
        for dy, dx in NEIGHBOUR_OFFSETS:
            candidate = _shifted(d, dy, dx)
            candidate_cost = cost(candidate)
            wins = (candidate_cost < bar) & (candidate <= limit)  # nan compares False
            best = torch.where(wins, candidate, best)
            bar = torch.where(wins, candidate_cost, bar)
        d = torch.where(invalid, torch.full_like(best, float("nan")), best)
    return d


def _running(values: torch.Tensor, largest: bool, reverse: bool) -> torch.Tensor:
    """Running maximum (or minimum) along rows, from the left (or from the right)."""
    x = values.flip(1) if reverse else values
    x = torch.cummax(x, dim=1).values if largest else torch.cummin(x, dim=1).values
    return x.flip(1) if reverse else x


def occluded(disparity: torch.Tensor) -> torch.Tensor:
    """:func:`.refine.occluded` on a tensor: bool ``(H, W)``."""
    valid = torch.isfinite(disparity)
    cols = torch.arange(disparity.shape[1], device=disparity.device, dtype=torch.float32).view(1, -1)
    match = torch.where(valid, cols - disparity, torch.full_like(disparity, float("inf")))
    nearest_right = _running(match, largest=False, reverse=True)  # min over x' >= x
    hidden = torch.zeros_like(valid)
    hidden[:, :-1] = match[:, :-1] > nearest_right[:, 1:]
    return hidden & valid


def fill_holes_rowwise(disparity: torch.Tensor) -> torch.Tensor:
    """:func:`rtstereo.models.sgbm.fill_holes_rowwise` on a tensor: the smaller of the nearest valid
    values to the left and right of each ``nan``."""
    d = disparity.float()
    width = d.shape[1]
    hole = ~torch.isfinite(d)
    cols = torch.arange(width, device=d.device).view(1, -1).expand_as(d)
    last_left = _running(torch.where(hole, torch.full_like(cols, -1), cols), largest=True, reverse=False)
    next_right = _running(torch.where(hole, torch.full_like(cols, width), cols), largest=False, reverse=True)
    inf = torch.full_like(d, float("inf"))
    from_left = torch.where(last_left >= 0, d.gather(1, last_left.clamp(min=0)), inf)
    from_right = torch.where(next_right < width, d.gather(1, next_right.clamp(max=width - 1)), inf)
    farther = torch.minimum(from_left, from_right)
    farther = torch.where(torch.isfinite(farther), farther, torch.full_like(d, float("nan")))
    return torch.where(hole, farther, d)


def fill_occlusions(disparity: torch.Tensor) -> torch.Tensor:
    """:func:`.refine.fill_occlusions` on a tensor."""
    nan = torch.full_like(disparity, float("nan"))
    filled = fill_holes_rowwise(torch.where(occluded(disparity), nan, disparity))
    return torch.where(torch.isfinite(disparity), filled, nan)


def _median(x: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` x ``size`` median with the edge repeated (cv2.medianBlur on float32)."""
    half = size // 2
    padded = F.pad(x[None, None], (half, half, half, half), mode="replicate")
    return F.unfold(padded, size).view(size * size, *x.shape).median(dim=0).values


def median_valid(disparity: torch.Tensor, size: int = MEDIAN_PX) -> torch.Tensor:
    """:func:`.refine.median_valid` on a tensor: a median, pixels near a ``nan`` kept."""
    invalid = ~torch.isfinite(disparity)
    smoothed = _median(torch.where(invalid, torch.zeros_like(disparity), disparity), size)
    near_invalid = F.max_pool2d(invalid.float()[None, None], size, stride=1, padding=size // 2)[0, 0] > 0
    return torch.where(near_invalid, disparity, smoothed)


def refine_edges(left: torch.Tensor, right: torch.Tensor, disparity_px: torch.Tensor) -> torch.Tensor:
    """:func:`.refine.refine_edges` on tensors: propagation, occlusion fill, median.

    Args:
        left, right: uint8 RGB ``(H, W, 3)`` tensors on the device of ``disparity_px``.
        disparity_px: float ``(H, W)`` disparity of the left view, ``nan`` where invalid.

    Returns:
        A float32 ``(H, W)`` tensor, ``nan`` where the input is.
    """
    if tuple(disparity_px.shape) != tuple(left.shape[:2]):
        raise InputError(f"disparity {tuple(disparity_px.shape)} and images {tuple(left.shape[:2])} differ in size")
    d = propagate_neighbours(TorchPhotometricCost(left, right), disparity_px.float())
    return median_valid(fill_occlusions(d))


def lr_difference_px(disparity_left_px: torch.Tensor, disparity_right_px: torch.Tensor) -> torch.Tensor:
    """:func:`rtstereo.confidence.lr_difference_px` on tensors (float32 instead of float64).

    Returns:
        ``(H, W)``: the smaller disagreement with the right map's two pixels around ``x - d``, ``nan``
        where ``x - d`` leaves the image or either value is missing.
    """
    dl, dr = disparity_left_px.float(), disparity_right_px.float()
    width = dl.shape[1]
    x_right = torch.arange(width, device=dl.device, dtype=torch.float32).view(1, -1) - dl
    inside = torch.isfinite(x_right) & (x_right >= 0) & (x_right <= width - 1)
    xs = torch.where(inside, x_right, torch.zeros_like(x_right))
    x0 = torch.floor(xs).long().clamp(0, width - 1)
    x1 = (x0 + 1).clamp(max=width - 1)
    difference = torch.fmin((dl - dr.gather(1, x0)).abs(), (dl - dr.gather(1, x1)).abs())
    return torch.where(inside, difference, torch.full_like(difference, float("nan")))


def consistency_mask(
    disparity_left_px: torch.Tensor, disparity_right_px: torch.Tensor, max_diff_px: float
) -> torch.Tensor:
    """:func:`rtstereo.confidence.consistency_mask` on tensors: bool ``(H, W)``, True where the two
    views agree within ``max_diff_px`` (``max_diff_px > 0`` is checked by the caller)."""
    difference = lr_difference_px(disparity_left_px, disparity_right_px)
    return torch.isfinite(difference) & (difference <= max_diff_px)


def right_disparity(predictor: Any, left: np.ndarray, right: np.ndarray) -> torch.Tensor:
    """:func:`rtstereo.confidence.right_disparity` kept on the device: the mirrored, swapped pair
    predicted with ``predictor.predict_on_device`` and flipped back.

    Args:
        predictor: a :class:`~rtstereo.runtime.predictor.Predictor` whose backend post-processes on
            its device.
        left, right: uint8 RGB ``(H, W, 3)`` images.

    Returns:
        float32 ``(H, W)`` tensor on the device, ``nan`` where invalid.
    """
    mirrored = StereoPair(np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]))
    return predictor.predict_on_device(mirrored).flip(1)
