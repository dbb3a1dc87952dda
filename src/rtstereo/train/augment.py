"""Augmentations of stereo training batches that matter for generalisation to real photographs.

One entry point, :func:`augment_batch`, applies in order:

1. random scale (disparity scaled with the width) and optional horizontal stretch, then a random crop;
2. small rectification errors on the right view only: a sub-pixel vertical shift and a rotation
   (the ground truth is left as it is: the network must tolerate them, as on real rigs);
3. colour jitter (brightness, contrast, saturation down to grey, hue) and gamma, the same for both
   views or, asymmetrically, different for each; random conversion of both views to grey;
4. occluding patches on the right view (rectangles of the image's mean colour): the network must
   fill in those matches from context.

:func:`random_crop` cuts the items of a batch from the loaded pairs before (padded where a pair is smaller than the
crop, which :func:`say_padded_crops` warns of).

Everything random comes from the ``torch.Generator`` given, so a batch is augmented the same way
every time. Every step works on the whole batch at once (each item's sizes, offsets and angles are
``(B,)`` tensors), so the number of tensor operations does not grow with the batch size.

Examples:
    >>> import torch
    >>> batch = {"left": torch.rand(2, 3, 40, 60), "right": torch.rand(2, 3, 40, 60),
    ...          "disparity": torch.rand(2, 40, 60) * 8, "occluded": torch.zeros(2, 40, 60, dtype=torch.bool)}
    >>> out = augment_batch(batch, torch.Generator().manual_seed(0), (32, 48))
    >>> out["left"].shape, out["disparity"].shape, out["occluded"].dtype
    (torch.Size([2, 3, 32, 48]), torch.Size([2, 32, 48]), torch.bool)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, SettingError, require_number, require_whole, warn
from ..text import counted

# Luma weights (Rec. 601), for grey conversion and contrast.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges and probabilities of the augmentations (defaults follow common stereo training recipes).

    Attributes:
        scale_log2: range of log2 of the scale factor (both axes).
        scale_prob: probability of rescaling an item at all.
        stretch_log2: largest |log2| of the extra horizontal stretch.
        stretch_prob: probability of stretching (0 disables it).
        brightness: gain drawn from ``[1 - b, 1 + b]``.
        contrast: contrast factor drawn from ``[1 - c, 1 + c]``.
        saturation: saturation factor range (0 = grey).
        hue: largest hue rotation, as a fraction of the colour circle.
        gamma: range of the gamma exponent.
        asymmetric_prob: probability that the right view gets its own colour jitter.
        grey_prob: probability of turning both views grey.
        vertical_shift_px: largest vertical shift of the right view (sub-pixel).
        vertical_shift_prob: probability of shifting the right view.
        rotation_deg: largest rotation of the right view, degrees.
        rotation_prob: probability of rotating the right view.
        patch_prob: probability of occluding patches on the right view.
        patch_size_px: range of the side lengths of a patch.
        max_patches: largest number of patches.
        invalid_below_px: disparities at or below this are "unknown" (0 in real datasets), as ``nan`` is,
            and are not interpolated with valid neighbours when rescaling.
    """

    scale_log2: tuple[float, float] = (-0.2, 0.4)
    scale_prob: float = 0.8
    stretch_log2: float = 0.2
    stretch_prob: float = 0.3
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: tuple[float, float] = (0.0, 1.4)
    hue: float = 0.16
    gamma: tuple[float, float] = (0.75, 1.35)
    asymmetric_prob: float = 0.2
    grey_prob: float = 0.1
    vertical_shift_px: float = 2.0
    vertical_shift_prob: float = 0.5
    rotation_deg: float = 0.1
    rotation_prob: float = 0.5
    patch_prob: float = 0.5
    patch_size_px: tuple[float, float] = (50.0, 100.0)
    max_patches: int = 2
    invalid_below_px: float = 0.0

    def __post_init__(self) -> None:
        # Bad values failed deep inside (max_patches=1.5: a TypeError of torch.rand; -1: an assertion) or
        # passed without a word (gamma <= 0 or brightness > 1: images outside 0..1, or black).
        for name in _PROBABILITIES:
            _require_range(self, name, 0.0, 1.0, "a probability in [0, 1]")
        for name in ("brightness", "contrast"):
            _require_range(self, name, 0.0, 1.0, "a number in [0, 1]")
        for name in ("stretch_log2", "hue", "vertical_shift_px", "rotation_deg"):
            _require_range(self, name, 0.0, math.inf, "a number >= 0")
        _require_range(self, "invalid_below_px", -math.inf, math.inf, "a finite number")
        ranges = {
            "scale_log2": (lambda bound: True, "numbers"),
            "saturation": (lambda bound: bound >= 0, "numbers >= 0"),
            "gamma": (lambda bound: bound > 0, "numbers > 0"),
            "patch_size_px": (lambda bound: bound > 0, "sizes > 0"),
        }
        for name, (allowed, what) in ranges.items():
            value = getattr(self, name)
            pair = value if isinstance(value, (tuple, list)) and len(value) == 2 else ()
            bounds = [require_number(bound, name, f"a range (low, high) of {what}") for bound in pair]
            if len(bounds) != 2 or not all(math.isfinite(bound) and allowed(bound) for bound in bounds):
                raise SettingError(name, f"expected a range (low, high) of {what}, got {value!r}")
        if require_whole(self.max_patches, "max_patches", "a whole number >= 0") < 0:
            raise SettingError("max_patches", f"expected a whole number >= 0, got {self.max_patches!r}")

    @classmethod
    def geometry_only(cls, **overrides) -> AugmentSettings:
        """Scale, stretch and crop only: no colour changes, right-view errors or patches."""
        values = dict(
            brightness=0.0,
            contrast=0.0,
            saturation=(1.0, 1.0),
            hue=0.0,
            gamma=(1.0, 1.0),
            grey_prob=0.0,
            vertical_shift_prob=0.0,
            rotation_prob=0.0,
            patch_prob=0.0,
        )
        values.update(overrides)
        return cls(**values)


_PROBABILITIES = (
    "scale_prob",
    "stretch_prob",
    "asymmetric_prob",
    "grey_prob",
    "vertical_shift_prob",
    "rotation_prob",
    "patch_prob",
)


def _require_range(settings: AugmentSettings, name: str, low: float, high: float, expected: str) -> None:
    value = require_number(getattr(settings, name), name, expected)
    if not (low <= value <= high and math.isfinite(value)):
        raise SettingError(name, f"expected {expected}, got {value!r}")


class _Uniforms:
    """Per-item uniform numbers in [0, 1), drawn up front in one call so the stream never depends on
    which branches run; ``next()`` hands out one column ``(B,)`` at a time."""

    def __init__(self, batch: int, columns: int, generator: torch.Generator) -> None:
        self.values = torch.rand(batch, columns, generator=generator, device=generator.device).cpu().double()
        self.used = 0

    def next(self) -> torch.Tensor:
        assert self.used < self.values.shape[1], f"out of uniforms ({self.values.shape[1]})"
        self.used += 1
        return self.values[:, self.used - 1]

    def block(self, count: int) -> torch.Tensor:
        """The next ``count`` columns at once, ``(B, count)``."""
        assert self.used + count <= self.values.shape[1], f"out of uniforms ({self.values.shape[1]})"
        self.used += count
        return self.values[:, self.used - count : self.used]

    def between(self, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * self.next()

    def chance(self, prob: float) -> torch.Tensor:
        return self.next() < prob


def _draws(batch_size: int, generator: torch.Generator, settings: AugmentSettings) -> _Uniforms:
    """All the uniform numbers of one call of :func:`augment_batch`, in the order its steps take them."""
    return _Uniforms(batch_size, 24 + 4 * settings.max_patches, generator)


def augment_batch(
    batch: dict,
    generator: torch.Generator,
    crop_hw: tuple[int, int],
    settings: AugmentSettings | None = None,
) -> dict:
    """Augment a stereo training batch.

    Args:
        batch: ``"left"``, ``"right"``: ``(B, 3, H, W)`` float RGB in 0..1; ``"disparity"``: ``(B, H, W)``
            float px (left view); optional bool masks ``(B, H, W)`` (e.g. ``"occluded"``); other
            values (not tensors) are passed through.
        generator: source of all randomness (any device).
        crop_hw: output size ``(height, width)``, whole pixels. An item that its random scale would make
            smaller than the crop is scaled no further than to cover it (a pair smaller than the crop is
            enlarged to it), so that a crop holds image pixels only.
        settings: ranges and probabilities; default :class:`AugmentSettings()`.

    Returns:
        A new dict with the same keys: images ``(B, 3, h, w)`` in 0..1, disparity ``(B, h, w)`` scaled
        with the width, masks ``(B, h, w)`` resampled with the disparity; ``"occluded"`` also marks the
        pixels whose match ``x - d`` falls left of the cropped right view (as the renderer marks those
        left of its right view).

    Raises:
        InputError: a missing key; views that are not float tensors (8-bit images are refused rather
            than clipped); shapes that disagree; an empty batch; a bad ``crop_hw`` or ``generator``.
    """
    settings = settings or AugmentSettings()
    left, right, disparity, masks = _check_batch(batch, generator, crop_hw)
    draws = _draws(left.shape[0], generator, settings)

    geometry = _draw_geometry(draws, settings, left.shape[-2:], crop_hw)
    left, right, disparity, masks = _scale_and_crop(left, right, disparity, masks, crop_hw, geometry, settings)
    if "occluded" in masks:
        # The right view is cut at the same columns as the left: matches left of the cut are gone too.
        columns = torch.arange(disparity.shape[-1], device=disparity.device, dtype=disparity.dtype)
        masks["occluded"] = masks["occluded"] | (columns < disparity).to(masks["occluded"].device)
    left, right = _colour(left, right, draws, settings)
    right = _occluding_patches(right, draws, settings)

    out = {key: value for key, value in batch.items() if not isinstance(value, torch.Tensor)}
    out.update({"left": left, "right": right, "disparity": disparity, **masks})
    return {key: out[key] for key in batch}


def _check_batch(batch: dict, generator, crop_hw: tuple[int, int]):
    for key in ("left", "right", "disparity"):
        if key not in batch:
            raise InputError(f"augment_batch: the batch has no '{key}' (keys: {sorted(batch)})")
        if not isinstance(batch[key], torch.Tensor):
            raise InputError(f"augment_batch: '{key}' must be a torch tensor, got {type(batch[key]).__name__}")
    left, right, disparity = batch["left"], batch["right"], batch["disparity"]
    for key, image in (("left", left), ("right", right)):
        # 8-bit images would be taken as 0..255 and clipped to white by the colour steps.
        if not image.is_floating_point():
            raise InputError(f"augment_batch: '{key}' must be float RGB in 0..1, got {image.dtype} (divide by 255?)")
    if left.ndim != 4 or left.shape[1] != 3 or right.shape != left.shape:
        raise InputError(
            f"augment_batch: expected left and right of shape (B, 3, H, W), got {tuple(left.shape)} and "
            f"{tuple(right.shape)}"
        )
    batch_size, _, height, width = left.shape
    if batch_size == 0:
        raise InputError("augment_batch: the batch is empty (0 pairs)")
    if tuple(disparity.shape) != (batch_size, height, width):
        raise InputError(
            f"augment_batch: expected disparity of shape {(batch_size, height, width)}, got {tuple(disparity.shape)}"
        )
    sides = tuple(crop_hw) if isinstance(crop_hw, (tuple, list)) else ()
    whole = [isinstance(side, numbers.Integral) and not isinstance(side, bool) for side in sides]
    if len(sides) != 2 or not all(whole) or min(sides) < 1:
        raise InputError(f"augment_batch: crop_hw must be (height, width) of positive whole sizes, got {crop_hw!r}")
    if not isinstance(generator, torch.Generator):
        raise InputError(f"augment_batch: generator must be a torch.Generator, got {type(generator).__name__}")
    masks = {}
    for key, value in batch.items():
        if key in ("left", "right", "disparity") or not isinstance(value, torch.Tensor):
            continue
        if value.dtype != torch.bool or tuple(value.shape) != (batch_size, height, width):
            raise InputError(
                f"augment_batch: '{key}' must be a bool mask of shape {(batch_size, height, width)} to be "
                f"transformed with the disparity, got {value.dtype} {tuple(value.shape)}"
            )
        masks[key] = value
    return left.float(), right.float(), disparity.float(), masks


# ------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Geometry:
    """Each item's geometry, ``(B,)`` float64 CPU tensors: the size it is resized to (whole pixels), the top
    left corner of its crop in the resized image, and the right view's downward shift and rotation."""

    new_h: torch.Tensor
    new_w: torch.Tensor
    y0: torch.Tensor
    x0: torch.Tensor
    shift_px: torch.Tensor
    angle_rad: torch.Tensor


def _draw_geometry(draws: _Uniforms, settings: AugmentSettings, size_hw: tuple[int, int], crop_hw: tuple[int, int]):
    """Scale, stretch, crop position, shift and rotation of every item of a batch of ``size_hw`` pairs."""
    height, width = size_hw
    crop_h, crop_w = crop_hw
    batch_size = draws.values.shape[0]
    scaled = draws.chance(settings.scale_prob)
    scale = torch.where(scaled, 2.0 ** draws.between(*settings.scale_log2), torch.ones(batch_size, dtype=torch.float64))
    stretched = draws.chance(settings.stretch_prob)
    stretch = torch.where(stretched, 2.0 ** draws.between(-settings.stretch_log2, settings.stretch_log2), 1.0)
    crop_y, crop_x = draws.next(), draws.next()
    shift_px = torch.where(
        draws.chance(settings.vertical_shift_prob),
        draws.between(-settings.vertical_shift_px, settings.vertical_shift_px),
        0.0,
    )
    angle_rad = torch.where(
        draws.chance(settings.rotation_prob),
        draws.between(-settings.rotation_deg, settings.rotation_deg) * (math.pi / 180.0),
        0.0,
    )
    # Never smaller than the crop: a crop is always filled with real pixels.
    new_h = (height * scale).round().clamp(min=crop_h)
    new_w = (width * (scale * stretch)).round().clamp(min=crop_w)
    y0 = (crop_y * (new_h - crop_h + 1)).floor()
    x0 = (crop_x * (new_w - crop_w + 1)).floor()
    return _Geometry(new_h, new_w, y0, x0, shift_px, angle_rad)


def _scale_and_crop(left, right, disparity, masks, crop_hw, geometry: _Geometry, settings: AugmentSettings):
    """Rescale, stretch and crop every item, and shift and rotate its right view, in one set of tensor
    operations for the whole batch (each item's sizes and offsets are ``(B,)`` tensors, not Python numbers)."""
    height, width = left.shape[-2:]
    crop_h, crop_w = crop_hw
    new_h, new_w, y0, x0 = geometry.new_h, geometry.new_w, geometry.y0, geometry.x0
    shift_px, angle_rad = geometry.shift_px, geometry.angle_rad

    # The right view's shift and rotation sample around its window: resize a margin that covers them.
    warps = settings.vertical_shift_prob > 0 or settings.rotation_prob > 0
    margin = _warp_margin(crop_h, crop_w, shift_px, angle_rad) if warps else 0
    rows = y0[:, None] + torch.arange(-margin, crop_h + margin, dtype=torch.float64)
    cols = x0[:, None] + torch.arange(-margin, crop_w + margin, dtype=torch.float64)
    row_taps, row_weights = _resize_taps(height, new_h, rows)
    col_taps, col_weights = _resize_taps(width, new_w, cols)
    inner = (slice(margin, margin + crop_h), slice(margin, margin + crop_w))
    left_out = _separable(
        left, row_taps[:, inner[0]], row_weights[:, inner[0]], col_taps[:, inner[1]], col_weights[:, inner[1]]
    )
    right_out = _separable(right, row_taps, row_weights, col_taps, col_weights)
    if warps:
        warped = ((shift_px != 0) | (angle_rad != 0)).to(right.device)[:, None, None, None]
        turned = _warp_right(right_out, crop_h, crop_w, shift_px, angle_rad)
        right_out = torch.where(warped, turned, right_out[:, :, inner[0], inner[1]])

    source_rows = _source_grid(height, new_h, y0, crop_h)
    source_cols = _source_grid(width, new_w, x0, crop_w)
    width_factor = (new_w / width).to(disparity)[:, None, None]
    disparity_out = _resample_disparity(disparity, source_rows, source_cols, settings.invalid_below_px) * width_factor
    pick_rows, pick_cols = _nearest(source_rows, height), _nearest(source_cols, width)
    masks_out = {key: _pick(mask, pick_rows, pick_cols) for key, mask in masks.items()}
    return left_out, right_out, disparity_out, masks_out


def _warp_margin(crop_h: int, crop_w: int, shift_px: torch.Tensor, angle_rad: torch.Tensor) -> int:
    """Whole pixels by which the right view's shift and rotation (``(B,)``) move any pixel of the window,
    plus one for the bilinear neighbour."""
    half = (crop_h - 1) / 2, (crop_w - 1) / 2
    sin, slack = angle_rad.sin().abs(), 1 - angle_rad.cos()
    along_x = slack * half[1] + sin * half[0]
    along_y = sin * half[1] + slack * half[0] + shift_px.abs()
    return math.ceil(float(torch.maximum(along_x, along_y).max())) + 1


def _resize_taps(size: int, new_size: torch.Tensor, out_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Source pixels ``(B, N, K)`` and weights ``(B, N, K)`` (float64, summing to 1) of output pixels
    ``out_index`` ``(B, N)`` of an axis of ``size`` px resized to ``new_size`` ``(B,)`` px.

    PyTorch's antialiased bilinear filter: output pixel ``i`` is centred at ``scale (i + 0.5)`` in the
    source (align_corners=False) and takes the source pixels within ``support = max(scale, 1)`` of it,
    weighted by a triangle of that half-width and normalised over the pixels inside the image.
    """
    scale = torch.full_like(new_size, float(size)).div(new_size)[:, None, None]
    support = scale.clamp(min=1.0)
    out_index = torch.minimum(out_index.clamp(min=0.0), new_size[:, None] - 1)
    centre = scale * (out_index[..., None] + 0.5)
    first = (centre - support + 0.5).trunc().clamp(min=0.0)
    end = (centre + support + 0.5).trunc().clamp(max=float(size))
    taps = first + torch.arange(int((end - first).max()), dtype=torch.float64)
    weights = (1.0 - ((taps + 0.5 - centre) / support).abs()).clamp(min=0.0) * (taps < end)
    return taps.clamp(max=size - 1).long(), weights / weights.sum(-1, keepdim=True)


def _separable(images: torch.Tensor, row_taps, row_weights, col_taps, col_weights) -> torch.Tensor:
    """A separable filter with per-item taps, ``(B, C, H, W)`` to ``(B, C, N, M)``: ``out[b, c, n, m]`` is the sum
    over ``k, l`` of ``row_weights[b, n, k] col_weights[b, m, l] images[b, c, row_taps[b, n, k], col_taps[b, m, l]]``
    (taps: ``(B, N, K)`` and ``(B, M, L)`` long, weights float64).

    A weight of exactly 1 and the others 0 copies the source pixel bit for bit.
    """
    batch, channels, height, width = images.shape
    device = images.device
    row_taps, col_taps = row_taps.to(device), col_taps.to(device)
    # Rows: whole source rows, one index_select per tap over the flattened (item, channel, row) axis.
    flat = images.reshape(-1, width)
    planes = height * torch.arange(batch * channels, device=device).view(batch, channels, 1)

    def row_tap(tap: int) -> torch.Tensor:
        picks = (planes + row_taps[:, None, :, tap]).reshape(-1)
        return flat.index_select(0, picks).view(batch, channels, -1, width)

    rows = _weighted_taps(row_tap, row_weights.to(images)[:, None, :, None])

    # Columns: a gather along those rows per tap.
    def col_tap(tap: int) -> torch.Tensor:
        return rows.gather(3, col_taps[:, None, None, :, tap].expand(-1, channels, rows.shape[2], -1))

    return _weighted_taps(col_tap, col_weights.to(images)[:, None, None])


def _weighted_taps(tap: Callable[[int], torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """The sum over taps ``k`` of ``tap(k) * weights[..., k]``, one tap at a time: a shrink by a large factor
    has many taps, and all of them at once would take that many copies of the image."""
    if weights.shape[-1] == 2:  # weights 1 - w and w (they sum to 1): one pass, as bilinear interpolation
        return torch.lerp(tap(0), tap(1), weights[..., 1])
    out = tap(0) * weights[..., 0]
    for index in range(1, weights.shape[-1]):
        out.addcmul_(tap(index), weights[..., index])
    return out


def _pick(values: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``values[b, rows[b, i], cols[b, j]]``, ``(B, h, w)``, of ``(B, H, W)``; ``rows``: ``(B, h)``, ``cols``:
    ``(B, w)`` (whole rows first, then a gather along them)."""
    batch, height, width = values.shape
    device = values.device
    flat_rows = (rows.to(device) + height * torch.arange(batch, device=device)[:, None]).reshape(-1)
    picked = values.reshape(-1, width).index_select(0, flat_rows).view(batch, -1, width)
    return picked.gather(2, cols.to(device)[:, None, :].expand(-1, picked.shape[1], -1))


def _source_grid(size: int, new_size, start, count: int) -> torch.Tensor:
    """Source coordinates (pixel centres, align_corners=False) of output pixels ``start .. start+count``
    of an axis of ``size`` px resized to ``new_size``; ``new_size`` and ``start`` are numbers or ``(B,)``
    (then the result is ``(B, count)``)."""
    new_size = torch.as_tensor(new_size, dtype=torch.float64)[..., None]
    out = torch.as_tensor(start, dtype=torch.float64)[..., None] + torch.arange(count, dtype=torch.float64)
    return ((out + 0.5) * torch.full_like(new_size, float(size)).div(new_size) - 0.5).clamp(0.0, size - 1.0)


def _nearest(coords: torch.Tensor, size: int) -> torch.Tensor:
    return torch.round(coords).long().clamp(0, size - 1)


def _resample_disparity(disparity: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, invalid_below: float):
    """Disparity ``(B, H, W)`` at source positions ``rows x cols`` (``(B, h)``, ``(B, w)``): bilinear on
    smooth surfaces, nearest across edges.

    Interpolating across a depth edge would invent disparities of neither surface; where the four
    neighbours differ by more than 2 px, or one of them is unknown (at most ``invalid_below`` or ``nan``),
    the nearest one is taken instead.
    """
    _, height, width = disparity.shape
    r0, c0 = rows.floor().long(), cols.floor().long()
    r1, c1 = (r0 + 1).clamp(max=height - 1), (c0 + 1).clamp(max=width - 1)
    wr = (rows - r0).to(disparity)[:, :, None]
    wc = (cols - c0).to(disparity)[:, None, :]
    # The four neighbours in one pick: rows (r0, r1) by columns (c0, c1).
    four = _pick(disparity, torch.cat([r0, r1], 1), torch.cat([c0, c1], 1)).unflatten(2, (2, -1)).unflatten(1, (2, -1))
    d00, d01, d10, d11 = four[:, 0, :, 0], four[:, 0, :, 1], four[:, 1, :, 0], four[:, 1, :, 1]
    smooth = torch.lerp(torch.lerp(d00, d01, wc), torch.lerp(d10, d11, wc), wr)
    lowest = torch.minimum(torch.minimum(d00, d01), torch.minimum(d10, d11))
    spread = torch.maximum(torch.maximum(d00, d01), torch.maximum(d10, d11)) - lowest
    unknown = ~(lowest > invalid_below)  # nan too: a nan neighbour would make the blend nan
    nearest = torch.where(wr < 0.5, torch.where(wc < 0.5, d00, d01), torch.where(wc < 0.5, d10, d11))
    return torch.where((spread > 2.0) | unknown, nearest, smooth)


def _warp_right(window: torch.Tensor, crop_h: int, crop_w: int, shift_px, angle_rad) -> torch.Tensor:
    """The crop window of each right view (``window``: ``(B, 3, crop_h + 2 margin, crop_w + 2 margin)``,
    the window and a margin around it, edges replicated) shifted down by ``shift_px`` and rotated by
    ``angle_rad`` (``(B,)``) about the window centre."""
    batch, _, size_h, size_w = window.shape
    device = window.device
    # Pixels from the centre, which the window and the crop share (the grid's 0 with align_corners=True).
    xs = torch.arange(crop_w, device=device, dtype=torch.float32) - (crop_w - 1) / 2
    ys = torch.arange(crop_h, device=device, dtype=torch.float32) - (crop_h - 1) / 2
    cos, sin = angle_rad.cos(), angle_rad.sin()
    to_x, to_y = 2.0 / (size_w - 1), 2.0 / (size_h - 1)

    def per_item(value: torch.Tensor) -> torch.Tensor:
        return value.to(device=device, dtype=torch.float32)[:, None, None]

    grid = torch.empty(batch, crop_h, crop_w, 2, device=device)
    # The source of (x, y) is R (x, y) - (0, shift): sampling the source at y - shift moves the content down.
    torch.add(per_item(cos * to_x) * xs, per_item(-sin * to_x) * ys[:, None], out=grid[..., 0])
    torch.add(
        per_item(sin * to_y) * xs, per_item(cos * to_y) * ys[:, None] - per_item(shift_px * to_y), out=grid[..., 1]
    )
    return F.grid_sample(window, grid, mode="bilinear", padding_mode="border", align_corners=True)


# --------------------------------------------------------------------------------------- colour
def _colour(left, right, draws: _Uniforms, settings: AugmentSettings):
    """Colour jitter and gamma per view (shared unless asymmetric), then optional grey."""
    left_params = _jitter_params(draws, settings)
    own_params = _jitter_params(draws, settings)
    asymmetric = draws.chance(settings.asymmetric_prob)
    right_params = {key: torch.where(asymmetric, own_params[key], left_params[key]) for key in left_params}
    grey = draws.chance(settings.grey_prob)
    out = []
    for image, params in ((left, left_params), (right, right_params)):
        image = _jitter(image, params, settings)
        if settings.grey_prob > 0:
            image = torch.where(grey.to(image.device)[:, None, None, None], _grey(image).expand_as(image), image)
        out.append(image)
    return out


def _jitter_params(draws: _Uniforms, settings: AugmentSettings) -> dict[str, torch.Tensor]:
    return {
        "brightness": draws.between(1.0 - settings.brightness, 1.0 + settings.brightness),
        "contrast": draws.between(1.0 - settings.contrast, 1.0 + settings.contrast),
        "saturation": draws.between(*settings.saturation),
        "hue": draws.between(-settings.hue, settings.hue),
        "gamma": draws.between(*settings.gamma),
    }


def _grey(image: torch.Tensor) -> torch.Tensor:
    return image[:, 0:1] * _LUMA[0] + image[:, 1:2] * _LUMA[1] + image[:, 2:3] * _LUMA[2]


# RGB -> YIQ and back: hue rotation turns the (I, Q) chroma plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _jitter(image: torch.Tensor, params: dict[str, torch.Tensor], settings: AugmentSettings) -> torch.Tensor:
    """Brightness, contrast, saturation, hue and gamma on ``(B, 3, H, W)`` with per-item factors
    (``params``: ``(B,)`` float64 CPU tensors).

    The first four are linear in RGB and compose into one 3x3 matrix and offset per item, applied in
    one pass (clamping once, after all four). Steps that the settings switch off leave the image
    bit-exact.
    """
    linear = settings.brightness > 0 or settings.contrast > 0 or settings.saturation != (1.0, 1.0) or settings.hue > 0
    x = image
    if linear:
        batch = image.shape[0]
        eye = torch.eye(3, dtype=torch.float64).expand(batch, 3, 3)
        luma = torch.tensor(_LUMA, dtype=torch.float64)
        gain = params["brightness"].double() * params["contrast"].double()
        # Saturation: s x + (1 - s) luma(x) (1, 1, 1); it keeps grey, so the contrast offset passes.
        sat = params["saturation"].double()[:, None, None]
        saturation = sat * eye + (1 - sat) * luma[None, None, :].expand(batch, 3, 3)
        angle = params["hue"].double() * (2 * math.pi)
        rotation = torch.zeros(batch, 3, 3, dtype=torch.float64)
        rotation[:, 0, 0] = 1.0
        rotation[:, 1, 1], rotation[:, 1, 2] = torch.cos(angle), -torch.sin(angle)
        rotation[:, 2, 1], rotation[:, 2, 2] = torch.sin(angle), torch.cos(angle)
        yiq = _RGB_TO_YIQ.double()
        hue = torch.linalg.inv(yiq) @ rotation @ yiq
        matrix = gain[:, None, None] * hue @ saturation
        # Contrast pulls towards the mean grey of the brightened image: offset (1 - c) b mean. The mean stays
        # on the images' device: copying it to the host would make a GPU wait for every view.
        mean = _grey(image).mean((1, 2, 3)).double()
        offset = ((1 - params["contrast"].double()) * params["brightness"].double()).to(mean.device) * mean
        x = torch.einsum("bij,bjhw->bihw", matrix.to(image), image) + offset.to(image)[:, None, None, None]
        x = x.clamp(0.0, 1.0)
    if settings.gamma != (1.0, 1.0):
        x = x.clamp(1e-6, 1.0) ** params["gamma"].to(image)[:, None, None, None]
    return x


# -------------------------------------------------------------------------------------- patches
def _occluding_patches(right: torch.Tensor, draws: _Uniforms, settings: AugmentSettings) -> torch.Tensor:
    """Fill up to ``max_patches`` random rectangles of the right view with its mean colour (every patch of
    every item at once)."""
    batch_size, _, height, width = right.shape
    device = right.device
    active = draws.chance(settings.patch_prob)
    count = torch.floor(draws.next() * settings.max_patches) + 1
    mean = right.mean((2, 3), keepdim=True)
    # Four numbers per patch, patch after patch: height, width, top, left. Sizes and corners: (B, patches, 2).
    numbers = draws.block(4 * settings.max_patches).view(batch_size, settings.max_patches, 4)
    size_hw = torch.tensor([float(height), float(width)], dtype=torch.float64)
    low, high = settings.patch_size_px
    sides = torch.minimum(low + (high - low) * numbers[..., :2], size_hw).round()
    first = torch.floor(numbers[..., 2:] * (size_hw - sides + 1))
    first, end = first.to(device), (first + sides).to(device)
    on = (active[:, None] & (count[:, None] > torch.arange(settings.max_patches))).to(device)
    ys, xs = torch.arange(height, device=device), torch.arange(width, device=device)
    rows = on[..., None] & (ys >= first[..., 0, None]) & (ys < end[..., 0, None])  # (B, patches, H)
    cols = (xs >= first[..., 1, None]) & (xs < end[..., 1, None])  # (B, patches, W)
    covered = (rows[..., :, None] & cols[..., None, :]).any(1)
    return torch.where(covered[:, None], mean, right)


def say_padded_crops(sizes: list[tuple[str, tuple[int, ...]]], crop_hw: tuple[int, int]) -> bool:
    """Warn when pairs (``(name, (height, width))``) are smaller than the crop: their crops are padded with
    pixels without ground truth, which teach nothing. Returns whether it warned."""
    small = [(name, hw) for name, hw in sizes if hw[0] < crop_hw[0] or hw[1] < crop_hw[1]]
    if not small:
        return False
    name, (height, width) = small[0]
    padded = 1 - min(height, crop_hw[0]) * min(width, crop_hw[1]) / (crop_hw[0] * crop_hw[1])
    others = f" (and {counted(len(small) - 1, 'other pair')})" if len(small) > 1 else ""
    warn(
        f"training pair {name} is {height}x{width}, smaller than the {crop_hw[0]}x{crop_hw[1]} crop{others}: "
        f"its crops are padded with pixels that have no label ({100 * padded:.0f} % of each), which teach "
        "nothing; give a --crop no larger than the images"
    )
    return True


def random_crop(
    left: np.ndarray,
    right: np.ndarray,
    gt: np.ndarray | None,
    nonocc: np.ndarray | None,
    crop_hw: tuple[int, int],
    rng: np.random.Generator,
    hints: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """One random crop of a loaded sample as float tensors (RGB 0..1, disparity with 0 = unknown); with
    ``hints`` (a guided network's, pixels, ``nan`` where none) also ``"hints"`` ``(1, h, w)``, 0 where none."""
    height, width = crop_hw
    if gt is None:
        gt = np.full(left.shape[:2], np.nan, np.float32)
    occluded = np.zeros(left.shape[:2], bool) if nonocc is None else ~nonocc
    pad_h, pad_w = max(0, height - left.shape[0]), max(0, width - left.shape[1])
    if pad_h or pad_w:
        pad = ((0, pad_h), (0, pad_w))
        left, right = (np.pad(im, (*pad, (0, 0))) for im in (left, right))
        gt, occluded = np.pad(gt, pad, constant_values=np.nan), np.pad(occluded, pad)
        hints = None if hints is None else np.pad(hints, pad, constant_values=np.nan)
    y0 = int(rng.integers(left.shape[0] - height + 1))
    x0 = int(rng.integers(left.shape[1] - width + 1))
    window = (slice(y0, y0 + height), slice(x0, x0 + width))
    disparity = np.nan_to_num(gt[window], nan=0.0, posinf=0.0, neginf=0.0)
    crop = {
        "left": torch.from_numpy(np.ascontiguousarray(left[window])).permute(2, 0, 1).float() / 255.0,
        "right": torch.from_numpy(np.ascontiguousarray(right[window])).permute(2, 0, 1).float() / 255.0,
        "disparity": torch.from_numpy(np.ascontiguousarray(disparity, np.float32)),
        "occluded": torch.from_numpy(np.ascontiguousarray(occluded[window])),
    }
    if hints is not None:
        crop["hints"] = torch.from_numpy(np.nan_to_num(hints[window], nan=0.0).astype(np.float32))[None]
    return crop
