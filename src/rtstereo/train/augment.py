"""Augmentations of stereo training batches that matter for generalisation to real photographs.

One entry point, :func:`augment_batch`, applies in order:

1. random scale (disparity scaled with the width) and optional horizontal stretch, then a random crop;
2. small rectification errors on the right view only: a sub-pixel vertical shift and a rotation
   (the ground truth is left as it is: the network must tolerate them, as on real rigs);
3. colour jitter (brightness, contrast, saturation down to grey, hue) and gamma, the same for both
   views or, asymmetrically, different for each; random conversion of both views to grey;
4. occluding patches on the right view (rectangles of the image's mean colour): the network must
   fill in those matches from context.

Everything random comes from the ``torch.Generator`` given, so a batch is augmented the same way
every time.

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
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError

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
        invalid_below_px: disparities at or below this are "unknown" (0 in real datasets) and are not
            interpolated with valid neighbours when rescaling.
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

    def between(self, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * self.next()

    def chance(self, prob: float) -> torch.Tensor:
        return self.next() < prob


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
        crop_hw: output size ``(height, width)``.
        settings: ranges and probabilities; default :class:`AugmentSettings()`.

    Returns:
        A new dict with the same keys: images ``(B, 3, h, w)`` in 0..1, disparity ``(B, h, w)`` scaled
        with the width, masks ``(B, h, w)`` resampled with the disparity; ``"occluded"`` also marks the
        pixels whose match ``x - d`` falls left of the cropped right view (as the renderer marks those
        left of its right view).
    """
    settings = settings or AugmentSettings()
    left, right, disparity, masks = _check_batch(batch, crop_hw)
    batch_size = left.shape[0]
    draws = _Uniforms(batch_size, 24 + 4 * settings.max_patches, generator)

    left, right, disparity, masks = _scale_and_crop(left, right, disparity, masks, crop_hw, draws, settings)
    if "occluded" in masks:
        # The right view is cut at the same columns as the left: matches left of the cut are gone too.
        columns = torch.arange(disparity.shape[-1], device=disparity.device, dtype=disparity.dtype)
        masks["occluded"] = masks["occluded"] | (columns < disparity).to(masks["occluded"].device)
    left, right = _colour(left, right, draws, settings)
    right = _occluding_patches(right, draws, settings)

    out = {key: value for key, value in batch.items() if not isinstance(value, torch.Tensor)}
    out.update({"left": left, "right": right, "disparity": disparity, **masks})
    return {key: out[key] for key in batch}


def _check_batch(batch: dict, crop_hw: tuple[int, int]):
    for key in ("left", "right", "disparity"):
        if key not in batch:
            raise InputError(f"augment_batch: the batch has no '{key}' (keys: {sorted(batch)})")
    left, right, disparity = batch["left"], batch["right"], batch["disparity"]
    if left.ndim != 4 or left.shape[1] != 3 or right.shape != left.shape:
        raise InputError(
            f"augment_batch: expected left and right of shape (B, 3, H, W), got {tuple(left.shape)} and "
            f"{tuple(right.shape)}"
        )
    batch_size, _, height, width = left.shape
    if tuple(disparity.shape) != (batch_size, height, width):
        raise InputError(
            f"augment_batch: expected disparity of shape {(batch_size, height, width)}, got {tuple(disparity.shape)}"
        )
    if len(crop_hw) != 2 or min(crop_hw) < 1:
        raise InputError(f"augment_batch: crop_hw must be (height, width) of positive sizes, got {crop_hw!r}")
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
def _scale_and_crop(left, right, disparity, masks, crop_hw, draws: _Uniforms, settings: AugmentSettings):
    batch_size, _, height, width = left.shape
    crop_h, crop_w = crop_hw
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

    outputs = {"left": [], "right": [], "disparity": [], **{key: [] for key in masks}}
    for b in range(batch_size):
        # Never smaller than the crop: a crop is always filled with real pixels.
        new_h = max(crop_h, round(height * float(scale[b])))
        new_w = max(crop_w, round(width * float(scale[b] * stretch[b])))
        y0 = int(float(crop_y[b]) * (new_h - crop_h + 1))
        x0 = int(float(crop_x[b]) * (new_w - crop_w + 1))
        window = (slice(y0, y0 + crop_h), slice(x0, x0 + crop_w))
        left_b = _resize_image(left[b], new_h, new_w)
        right_b = _resize_image(right[b], new_h, new_w)
        outputs["left"].append(left_b[:, window[0], window[1]])
        outputs["right"].append(_right_window(right_b, y0, x0, crop_h, crop_w, float(shift_px[b]), float(angle_rad[b])))
        rows, cols = _source_grid(height, new_h, y0, crop_h), _source_grid(width, new_w, x0, crop_w)
        outputs["disparity"].append(
            _resample_disparity(disparity[b], rows, cols, settings.invalid_below_px) * (new_w / width)
        )
        for key, mask in masks.items():
            pick_rows, pick_cols = (
                _nearest(rows, height).to(mask.device),
                _nearest(cols, width).to(mask.device),
            )
            outputs[key].append(mask[b].index_select(0, pick_rows).index_select(1, pick_cols))
    left_out = torch.stack(outputs.pop("left"))
    right_out = torch.stack(outputs.pop("right"))
    disparity_out = torch.stack(outputs.pop("disparity"))
    return left_out, right_out, disparity_out, {key: torch.stack(value) for key, value in outputs.items()}


def _resize_image(image: torch.Tensor, new_h: int, new_w: int) -> torch.Tensor:
    """Bilinear resize of ``(3, H, W)``, low-passed when shrinking (no aliasing)."""
    height, width = image.shape[-2:]
    if (new_h, new_w) == (height, width):
        return image
    shrinking = new_h < height or new_w < width
    return F.interpolate(image[None], (new_h, new_w), mode="bilinear", align_corners=False, antialias=shrinking)[0]


def _source_grid(size: int, new_size: int, start: int, count: int) -> torch.Tensor:
    """Source coordinates (pixel centres, align_corners=False) of output pixels ``start .. start+count``."""
    out = torch.arange(start, start + count, dtype=torch.float64)
    return ((out + 0.5) * (size / new_size) - 0.5).clamp(0.0, size - 1.0)


def _nearest(coords: torch.Tensor, size: int) -> torch.Tensor:
    return torch.round(coords).long().clamp(0, size - 1)


def _resample_disparity(disparity: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, invalid_below: float):
    """Disparity at source positions ``rows x cols``: bilinear on smooth surfaces, nearest across edges.

    Interpolating across a depth edge would invent disparities of neither surface; where the four
    neighbours differ by more than 2 px, or one of them is unknown, the nearest one is taken instead.
    """
    height, width = disparity.shape
    r0, c0 = rows.floor().long(), cols.floor().long()
    r1, c1 = (r0 + 1).clamp(max=height - 1), (c0 + 1).clamp(max=width - 1)
    wr = (rows - r0).to(disparity.dtype).to(disparity.device)[:, None]
    wc = (cols - c0).to(disparity.dtype).to(disparity.device)[None, :]
    device = disparity.device
    r0, r1, c0, c1 = (index.to(device) for index in (r0, r1, c0, c1))
    top, bottom = disparity.index_select(0, r0), disparity.index_select(0, r1)
    d00, d01 = top.index_select(1, c0), top.index_select(1, c1)
    d10, d11 = bottom.index_select(1, c0), bottom.index_select(1, c1)
    smooth = torch.lerp(torch.lerp(d00, d01, wc), torch.lerp(d10, d11, wc), wr)
    lowest = torch.minimum(torch.minimum(d00, d01), torch.minimum(d10, d11))
    spread = torch.maximum(torch.maximum(d00, d01), torch.maximum(d10, d11)) - lowest
    unknown = lowest <= invalid_below
    nearest = torch.where(wr < 0.5, torch.where(wc < 0.5, d00, d01), torch.where(wc < 0.5, d10, d11))
    return torch.where((spread > 2.0) | unknown, nearest, smooth)


def _right_window(right: torch.Tensor, y0: int, x0: int, crop_h: int, crop_w: int, shift_px: float, angle_rad: float):
    """The crop window of the right view, optionally shifted down by ``shift_px`` and rotated by
    ``angle_rad`` about the window centre (sampled from the whole resized image, edges replicated)."""
    if shift_px == 0.0 and angle_rad == 0.0:
        return right[:, y0 : y0 + crop_h, x0 : x0 + crop_w]
    height, width = right.shape[-2:]
    ys = torch.arange(crop_h, device=right.device, dtype=torch.float32)[:, None] - (crop_h - 1) / 2
    xs = torch.arange(crop_w, device=right.device, dtype=torch.float32)[None, :] - (crop_w - 1) / 2
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    src_x = x0 + (crop_w - 1) / 2 + cos * xs - sin * ys
    src_y = y0 + (crop_h - 1) / 2 + sin * xs + cos * ys - shift_px
    # Sampling the source at y - shift moves the content down by shift.
    grid = torch.stack([src_x * (2.0 / (width - 1)) - 1.0, src_y * (2.0 / (height - 1)) - 1.0], -1)
    return F.grid_sample(right[None], grid[None], mode="bilinear", padding_mode="border", align_corners=True)[0]


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
        # Contrast pulls towards the mean grey of the brightened image: offset (1 - c) b mean.
        mean = _grey(image).mean((1, 2, 3)).double().cpu()
        offset = (1 - params["contrast"].double()) * params["brightness"].double() * mean
        x = torch.einsum("bij,bjhw->bihw", matrix.to(image), image) + offset.to(image)[:, None, None, None]
        x = x.clamp(0.0, 1.0)
    if settings.gamma != (1.0, 1.0):
        x = x.clamp(1e-6, 1.0) ** params["gamma"].to(image)[:, None, None, None]
    return x


# -------------------------------------------------------------------------------------- patches
def _occluding_patches(right: torch.Tensor, draws: _Uniforms, settings: AugmentSettings) -> torch.Tensor:
    """Fill up to ``max_patches`` random rectangles of the right view with its mean colour."""
    batch_size, _, height, width = right.shape
    active = draws.chance(settings.patch_prob)
    count = torch.floor(draws.next() * settings.max_patches) + 1
    mean = right.mean((2, 3), keepdim=True)
    ys = torch.arange(height, device=right.device)[None, :, None]
    xs = torch.arange(width, device=right.device)[None, None, :]
    covered = torch.zeros(batch_size, height, width, dtype=torch.bool, device=right.device)
    for index in range(settings.max_patches):
        patch_h = torch.minimum(draws.between(*settings.patch_size_px), torch.tensor(float(height))).round()
        patch_w = torch.minimum(draws.between(*settings.patch_size_px), torch.tensor(float(width))).round()
        top = torch.floor(draws.next() * (height - patch_h + 1))
        left = torch.floor(draws.next() * (width - patch_w + 1))
        on = (active & (count > index)).to(right.device)[:, None, None]
        top, left, patch_h, patch_w = (v.to(right.device)[:, None, None] for v in (top, left, patch_h, patch_w))
        covered |= on & (ys >= top) & (ys < top + patch_h) & (xs >= left) & (xs < left + patch_w)
    return torch.where(covered[:, None], mean, right)
