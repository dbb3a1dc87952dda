"""View-dependent effects of the synthetic stereo generator: specular spots and the two cameras.

These are what make the two views differ beyond geometry, as real stereo pairs do: highlights that
do not stick to the surface, unequal gain, white balance, gamma, vignetting, blur and sensor noise.
"""

from __future__ import annotations

import math

import torch

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
    radius = int(math.ceil(3 * float(spots["sigma"].max())))
    offsets = torch.arange(-radius, radius + 1, device=winner.device, dtype=torch.float32)
    centre_x, centre_y = p[f"x_{view}"], p["y"]
    xi = torch.round(centre_x) + offsets[None, None, :]
    yi = torch.round(centre_y) + offsets[None, :, None]
    xi, yi = torch.broadcast_tensors(xi, yi)
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
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
    """One camera's gain, white balance, offset, vignetting and gamma, on points.

    Args:
        rgb: ``(3, N)`` linear colour.
        items: per-scene settings of each point's scene, columns ``(N,)`` or scalars.
        x, y: pixel position of each point ``(N,)``.
        height, width: image size.
        view: ``"left"`` or ``"right"`` (which camera).

    Returns:
        ``(3, N)`` in 0..1.
    """
    rx, ry = x * (2.0 / max(width - 1, 1)) - 1.0, y * (2.0 / max(height - 1, 1)) - 1.0
    falloff = 1.0 - items[f"{view}_vignette"] * (rx * rx + ry * ry) * 0.5
    gain = items[f"{view}_gain"] * falloff
    channels = []
    for index, c in enumerate("rgb"):
        value = rgb[index] * (gain * items[f"{view}_balance_{c}"]) + items[f"{view}_offset"]
        channels.append(value.clamp(1e-6, 1.0).log().mul(items[f"{view}_gamma"]).exp())
    return torch.stack(channels)


def _gaussian_blur(image: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of one image ``(C, H, W)``, edges replicated, truncated at 2 sigma.

    Shifted-slice sums with scalar weights: much faster on the CPU than a grouped convolution.
    """
    radius = max(1, math.ceil(2 * sigma_px))
    weights = [math.exp(-(t * t) / (2 * max(sigma_px, 1e-3) ** 2)) for t in range(-radius, radius + 1)]
    weights = [w / sum(weights) for w in weights]
    x = image
    for axis in (2, 1):
        size = x.shape[axis]
        edges = ([x.narrow(axis, 0, 1)] * radius, [x.narrow(axis, size - 1, 1)] * radius)
        padded = torch.cat([*edges[0], x, *edges[1]], axis)
        out = padded.narrow(axis, 0, size) * weights[0]
        for tap in range(1, 2 * radius + 1):
            out.add_(padded.narrow(axis, tap, size), alpha=weights[tap])
        x = out
    return x


def blur_and_noise(
    image: torch.Tensor,
    items: Table,
    view: str,
    *,
    blur: bool,
    noise: bool,
    noise_seeds: list[int],
    noise_scale: float = 1.0,
):
    """Lens blur, then sensor shot and read noise and 8-bit quantisation.

    Args:
        image: ``(B, 3, H, W)`` in 0..1.
        items: per-scene settings, columns ``(B,)``.
        view: ``"left"`` or ``"right"`` (which camera).
        blur: apply the blur.
        noise: add the noise and quantise.
        noise_seeds: one seed per item for the noise; both views may share a seed.
        noise_scale: multiplies the noise's standard deviation (quantisation stays).

    Returns:
        ``(B, 3, H, W)`` float32 in 0..1.
    """
    out = torch.empty_like(image)
    for b in range(image.shape[0]):
        x = image[b]
        if blur:
            x = _gaussian_blur(x, float(items[f"{view}_blur"][b]))
        if noise:
            generator = torch.Generator(device=image.device).manual_seed(noise_seeds[b])
            field = torch.randn(x.shape, generator=generator, device=image.device)
            if view == "right":  # the same draws, mirrored: independent of the left view's noise
                field = field.flip(1, 2)
            shot, read = items[f"{view}_shot_noise"][b], items[f"{view}_read_noise"][b]
            x = x + field * ((x * shot + read * read).sqrt() * noise_scale)
            x = torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
        out[b] = x
    return out.clamp_(0.0, 1.0)
