"""View-dependent effects of the synthetic stereo generator: specular spots and the two cameras.

These are what make the two views differ beyond geometry, as real stereo pairs do: highlights that
do not stick to the surface, unequal gain, white balance, gamma, vignetting, blur and sensor noise.
"""

from __future__ import annotations

import math
import threading

from ..errors import torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .synthetic_random import GOLDEN, MASK32, mix32
from .synthetic_table import Rows, Table


def specular_glow(winner: torch.Tensor, spots: Table, view: str) -> torch.Tensor:
    """Brightness added by Gaussian highlights, each only where its layer is the visible surface.

    Args:
        winner: ``(B, H, W)`` visible layer index in this view.
        spots: table ``(B, S)`` from :func:`~.synthetic_material.sample_spots`.
        view: ``"left"`` or ``"right"``.

    Returns:
        ``(B, H, W)`` float32, 0 away from highlights.
    """
    batch, height, width = winner.shape
    glow = torch.zeros(batch * height * width, device=winner.device)
    b, s = (spots["active"] > 0).nonzero(as_tuple=True)
    if len(b) == 0:
        return glow.reshape(batch, height, width)
    p = spots.rows(b * spots.data.shape[1] + s, trailing=2)
    # One window for the batch, as wide as its widest highlight needs; each highlight is cut to its own
    # (3 sigma, rounded up) so that a scene's pixels do not depend on the scenes beside it in the batch.
    radius = int(math.ceil(3 * float(spots["sigma"].max())))
    offsets = torch.arange(-radius, radius + 1, device=winner.device, dtype=torch.float32)
    own = torch.ceil(3 * p["sigma"])
    centre_x, centre_y = p[f"x_{view}"], p["y"]
    xi = torch.round(centre_x) + offsets[None, None, :]
    yi = torch.round(centre_y) + offsets[None, :, None]
    xi, yi = torch.broadcast_tensors(xi, yi)
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    inside &= (offsets[None, None, :].abs() <= own) & (offsets[None, :, None].abs() <= own)
    flat = (b[:, None, None] * height + yi.clamp(0, height - 1).long()) * width + xi.clamp(0, width - 1).long()
    on_layer = winner.reshape(-1)[flat] == p["layer"].long()
    r2 = (xi - centre_x) ** 2 + (yi - centre_y) ** 2
    value = p[f"intensity_{view}"] * torch.exp(-r2 / (2 * p["sigma"] ** 2)) * (inside & on_layer)
    glow.scatter_add_(0, flat.reshape(-1), value.reshape(-1))
    return glow.reshape(batch, height, width)


def photometric(
    rgb: torch.Tensor,
    items: Rows | Table,
    x: torch.Tensor,
    y: torch.Tensor,
    height: int,
    width: int,
    view: str,
):
    """One camera's gain, white balance, offset, vignetting and gamma, on points, in place.

    Args:
        rgb: ``(3, *S)`` linear colour (overwritten).
        items: per-scene settings of each point's scene, columns that broadcast against ``S``.
        x, y: pixel position of each point, broadcasting to ``S``.
        height, width: image size.
        view: ``"left"`` or ``"right"`` (which camera).

    Returns:
        ``rgb``, now in 0..1.
    """
    rx, ry = x * (2.0 / max(width - 1, 1)) - 1.0, y * (2.0 / max(height - 1, 1)) - 1.0
    falloff = 1.0 - items[f"{view}_vignette"] * (rx * rx + ry * ry) * 0.5
    balance = torch.stack([items[f"{view}_balance_{c}"] for c in "rgb"]) * items[f"{view}_gain"]
    rgb = rgb.mul_(falloff).mul_(balance).add_(items[f"{view}_offset"]).clamp_(1e-6, 1.0)
    return rgb.log_().mul_(items[f"{view}_gamma"]).exp_()


BLUR_RADIUS_PX = 3  # taps each side: covers 2 sigma of the widest blur a scene can draw (sigma <= 1.375 px)
NOISE_BANK_SIZE = 1 << 22  # standard normal draws shared by all scenes; a power of two
_NOISE: dict[str, torch.Tensor] = {}
_NOISE_LOCK = threading.Lock()


def gaussian_noise_bank(device: torch.device | str) -> torch.Tensor:
    """``NOISE_BANK_SIZE`` standard normal numbers from a fixed seed, the same on every call (cached)."""
    key = str(device)
    with _NOISE_LOCK:
        if key not in _NOISE:
            generator = torch.Generator().manual_seed(20261204)
            _NOISE[key] = torch.randn(NOISE_BANK_SIZE, generator=generator).to(device)
    return _NOISE[key]


def _blur_weights(sigma_px: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian taps ``(B, 2R + 1)``, truncated at ``ceil(2 sigma)`` and normalised."""
    taps = torch.arange(-BLUR_RADIUS_PX, BLUR_RADIUS_PX + 1, device=sigma_px.device, dtype=torch.float32)
    sigma = sigma_px.float().clamp(min=1e-3)[:, None]
    weights = torch.exp(-(taps * taps) / (2 * sigma * sigma))
    weights = weights * (taps.abs() <= torch.ceil(2 * sigma).clamp(min=1.0))
    return weights / weights.sum(1, keepdim=True)


def _gaussian_blur(image: torch.Tensor, sigma_px: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of a batch ``(B, C, H, W)`` with one sigma per image, edges replicated.

    Shifted-slice sums with per-image weights: a fixed number of operations for any batch, and much
    faster on the CPU than a grouped convolution. No padded copy is made: each tap adds its shifted
    slice to the output's inner part and the edge pixel to the few outputs whose tap falls outside,
    in the same order for every output pixel as a sum over a replicate-padded image.
    """
    weights = _blur_weights(sigma_px)[:, :, None, None, None]  # (B, taps, 1, 1, 1)
    radius = BLUR_RADIUS_PX
    x = image
    for axis in (3, 2):
        size = x.shape[axis]
        out = torch.empty_like(x)
        first, last = x.narrow(axis, 0, 1), x.narrow(axis, size - 1, 1)
        for tap in range(2 * radius + 1):
            shift, weight = tap - radius, weights[:, tap]
            inner = size - abs(shift)  # the outputs whose source pixel (shifted by `shift`) lies inside
            start = max(-shift, 0)
            target, source = out.narrow(axis, start, inner), x.narrow(axis, start + shift, inner)
            # The other |shift| outputs read the edge pixel on the side the shift points to.
            edge, value = (out.narrow(axis, 0, -shift), first) if shift < 0 else (out.narrow(axis, inner, shift), last)
            if tap == 0:
                torch.mul(source, weight, out=target)
                edge.copy_(value).mul_(weight)
            else:
                target.addcmul_(source, weight)
                if shift:
                    edge.addcmul_(value, weight)
        x = out
    return x


def sensor_noise(shape: tuple[int, ...], keys: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Standard normal noise ``shape = (B, ..., W)``, one independent-looking field per image.

    Every row of every image reads ``W`` consecutive numbers of the shared bank from a start of its own
    (a hash of ``keys[b]``, the image's 32-bit random integer, and the row's index), so the field
    depends on that image's key alone. Consecutive reads are one copied window per row: scattered
    reads of the whole bank (16 MiB) took 25x longer on a CPU, missing the cache at every number.
    """
    bank = gaussian_noise_bank(device)
    width = shape[-1]
    assert width <= NOISE_BANK_SIZE, (width, NOISE_BANK_SIZE)
    rows_per_image = 1
    for size in shape[1:-1]:
        rows_per_image *= size
    starts = NOISE_BANK_SIZE - width + 1
    windows = bank.as_strided((starts, width), (1, 1))  # row s: bank[s : s + width], no copy
    row = torch.arange(rows_per_image, device=device)
    start = mix32(keys[:, None] ^ ((row * GOLDEN) & MASK32)) % starts  # a bijective hash of (key, row)
    return windows.index_select(0, start.reshape(-1)).reshape(shape)


def blur_and_noise(
    image: torch.Tensor,
    items: Table,
    view: str,
    *,
    blur: bool,
    noise: bool,
    noise_keys: torch.Tensor,
    noise_scale: float = 1.0,
):
    """Lens blur, then sensor shot and read noise and 8-bit quantisation, for a whole batch.

    Args:
        image: ``(B, 3, H, W)`` in 0..1.
        items: per-scene settings, columns ``(B,)``.
        view: ``"left"`` or ``"right"`` (which camera).
        blur: apply the blur.
        noise: add the noise and quantise.
        noise_keys: ``(B,)`` int64 random 32-bit keys, one per image of this view.
        noise_scale: multiplies the noise's standard deviation (quantisation stays).

    Returns:
        ``(B, 3, H, W)`` float32 in 0..1.
    """
    if blur:
        image = _gaussian_blur(image, items[f"{view}_blur"])  # a new tensor: the steps below may work in place
    else:
        image = image.clone()
    if noise:
        field = sensor_noise(tuple(image.shape), noise_keys.to(image.device), image.device)
        # Standard deviation sqrt(shot x + read^2), scaled: the scale goes under the root squared.
        shot = items[f"{view}_shot_noise"].float()[:, None, None, None] * noise_scale**2
        read = items[f"{view}_read_noise"].float()[:, None, None, None] * noise_scale
        spread = torch.addcmul(read * read, image, shot).sqrt_()
        image = image.addcmul_(field, spread).clamp_(0.0, 1.0)
        return image.mul_(255.0).round_().div_(255.0)
    return image.clamp_(0.0, 1.0)
