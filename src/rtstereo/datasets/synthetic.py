"""Procedural stereo pairs with exact ground truth, rendered on the fly (CPU or CUDA, batched).

rtstereo trains its default network on these scenes alone. A scene is a back wall, an optional
ground plane and 10-40 objects (solid shapes, bars, wires, fences, slanted panels), each with its own
planar, slanted or curved disparity surface and a procedural material (flat, gradient, coarse and fine
noise, stripes, grids, checkers, text-like marks). Both views are rendered by exact inverse mapping of
the same surfaces (see :mod:`.synthetic_geometry`), so the disparity is exact to float precision; the
views then differ the way real cameras do: specular spots that do not move with the surface, gain,
white balance, gamma, vignetting, blur and sensor noise.

Outputs follow the project's conventions: disparity in pixels of the left view, positive
``x_left - x_right``; ``occluded`` marks left pixels that the right camera does not see (hidden behind a
nearer surface, or falling left of its first pixel centre).

Examples:
    >>> batch = render_batch(2, 32, 48, seed=0, max_disp_px=16.0)
    >>> batch["left"].shape, batch["disparity"].shape, batch["occluded"].dtype
    (torch.Size([2, 3, 32, 48]), torch.Size([2, 32, 48]), torch.bool)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from ..errors import InputError
from .synthetic_camera import blur_and_noise, photometric, specular_glow
from .synthetic_geometry import CHUNK_POINTS, layer_at, layer_disparity, surface_x, zbuffer
from .synthetic_scene import Scenes, item_seed, sample_scenes
from .synthetic_table import Table
from .synthetic_texture import noise_bank, surface_colour

# Tolerance of the occlusion test: the surface seen at x - d must be nearer by more than this (px).
OCCLUSION_TOLERANCE_PX = 1e-3


@dataclass(frozen=True)
class RenderSettings:
    """Which view-dependent effects to render (all on for training).

    Attributes:
        photometric: unequal gain, white balance, offset, vignetting and gamma in the two cameras.
        specular: highlights that do not move with the surface.
        noise: sensor shot and read noise, and 8-bit quantisation.
        blur: lens blur (also anti-aliases the point-sampled edges).
        noise_scale: multiplies the standard deviation of the sensor noise each scene draws (1: read
            noise of 0.5-8 grey levels and shot noise up to ~18 levels at mid-grey, a dim or cheap
            camera; 0.35: mostly 1-3 levels, a well-lit one).
    """

    photometric: bool = True
    specular: bool = True
    noise: bool = True
    blur: bool = True
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.noise_scale, bool)
            or not isinstance(self.noise_scale, (int, float))
            or not (self.noise_scale >= 0)
        ):
            raise InputError(f"noise_scale: expected a number >= 0, got {self.noise_scale!r}")

    @classmethod
    def geometry_only(cls) -> RenderSettings:
        """Every view-dependent effect off: the views differ by geometry alone."""
        return cls(photometric=False, specular=False, noise=False, blur=False)


def render_batch(
    batch_size: int,
    height: int,
    width: int,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    max_disp_px: float = 192.0,
    settings: RenderSettings | None = None,
) -> dict[str, torch.Tensor]:
    """Render ``batch_size`` random stereo pairs with ground truth.

    Item ``i`` depends only on ``(seed, i)`` (it equals ``SyntheticStereo(..., seed=seed)[i]``), so
    consecutive calls with seeds ``0, 1, 2, ...`` give an endless stream of distinct scenes.

    Args:
        batch_size: number of pairs.
        height, width: image size in pixels (at least 16 each).
        seed: stream seed.
        device: where to render (``"cpu"``, ``"cuda"``, ...).
        max_disp_px: no disparity exceeds this; about a third of the scenes reach it.
        settings: view-dependent effects; default all on.

    Returns:
        ``"left"``, ``"right"``: ``(B, 3, H, W)`` float32 RGB in 0..1; ``"disparity"``: ``(B, H, W)``
        float32 px (left view); ``"occluded"``: ``(B, H, W)`` bool (left pixels the right camera does not
        see).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size: expected a positive integer, got {batch_size!r}")
    seeds = [item_seed(seed, i) for i in range(batch_size)]
    return render_scenes(seeds, height, width, device=device, max_disp_px=max_disp_px, settings=settings)


class SyntheticStereo(torch.utils.data.Dataset):
    """A map-style dataset of ``length`` synthetic pairs; item ``i`` is deterministic from ``(seed, i)``.

    Items are the dictionaries of :func:`render_batch` without the batch axis. Rendering happens in
    ``__getitem__``, so use DataLoader workers for throughput, or call :func:`render_batch` directly
    (faster: one batched render).

    Args:
        length: number of items.
        height, width: image size in pixels.
        seed: stream seed.
        max_disp_px: largest disparity.
        settings: view-dependent effects; default all on.
    """

    def __init__(
        self,
        length: int,
        height: int,
        width: int,
        seed: int = 0,
        max_disp_px: float = 192.0,
        settings: RenderSettings | None = None,
    ) -> None:
        if not isinstance(length, int) or length < 0:
            raise InputError(f"length: expected a non-negative integer, got {length!r}")
        _check_size(height, width, max_disp_px)
        self.length, self.height, self.width = length, height, width
        self.seed, self.max_disp_px, self.settings = seed, max_disp_px, settings

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"item {index} of a SyntheticStereo of length {self.length}")
        index %= self.length
        batch = render_scenes(
            [item_seed(self.seed, index)],
            self.height,
            self.width,
            max_disp_px=self.max_disp_px,
            settings=self.settings,
        )
        return {key: value[0] for key, value in batch.items()}


def _check_size(height: int, width: int, max_disp_px: float) -> None:
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or value < 16:
            raise InputError(f"{name}: expected an integer of at least 16 px, got {value!r}")
    if not max_disp_px > 0:
        raise InputError(f"max_disp_px: expected a positive number of pixels, got {max_disp_px!r}")


def render_scenes(
    seeds: list[int],
    height: int,
    width: int,
    *,
    device: str | torch.device = "cpu",
    max_disp_px: float = 192.0,
    settings: RenderSettings | None = None,
) -> dict[str, torch.Tensor]:
    """Render one scene per item seed; see :func:`render_batch` for the outputs.

    On the CPU, items are rendered in parallel threads (as many as torch's intra-op threads), each
    running its operations single-threaded: the renderer issues many small operations, which
    intra-op parallelism speeds up little and slows down badly when the cores are busy.
    """
    _check_size(height, width, max_disp_px)
    settings = settings or RenderSettings()
    device = torch.device(device)
    if device.type != "cpu":
        return _render(seeds, height, width, device, float(max_disp_px), settings)
    threads = torch.get_num_threads()
    groups = [seeds[i :: min(threads, len(seeds))] for i in range(min(threads, len(seeds)))]
    torch.set_num_threads(1)
    try:
        if len(groups) == 1:
            return _render(seeds, height, width, device, float(max_disp_px), settings)
        with ThreadPoolExecutor(len(groups)) as pool:
            parts = list(pool.map(lambda g: _render(g, height, width, device, float(max_disp_px), settings), groups))
    finally:
        torch.set_num_threads(threads)
    # Group i holds items i, i + n, i + 2n, ...: interleave them back into seed order.
    out = {}
    for key in parts[0]:
        stacked = torch.empty((len(seeds), *parts[0][key].shape[1:]), dtype=parts[0][key].dtype)
        for i, part in enumerate(parts):
            stacked[i :: len(groups)] = part[key]
        out[key] = stacked
    return out


def _render(
    seeds: list[int],
    height: int,
    width: int,
    device: torch.device,
    max_disp_px: float,
    settings: RenderSettings,
) -> dict[str, torch.Tensor]:
    scenes = sample_scenes(seeds, height, width, max_disp_px).to(device)
    views = {view: _render_view(scenes, view, settings, seeds) for view in ("left", "right")}
    disparity = views["left"]["disparity"]
    occluded = _occlusion(scenes, disparity, views["left"]["winner"], views["right"]["winner"])
    return {
        "left": views["left"]["image"],
        "right": views["right"]["image"],
        "disparity": disparity,
        "occluded": occluded,
    }


def _occlusion(scenes: Scenes, disparity: torch.Tensor, left_winner: torch.Tensor, right_winner: torch.Tensor):
    """Left pixels that the right camera does not see (bool ``(B, H, W)``).

    A left pixel lands at ``xr = x - d`` in the right view. Where both right pixels around ``xr`` show
    its own layer, it is visible. Elsewhere the layers shown by those two pixels are evaluated exactly
    at ``xr``: the point is occluded if one of them is there and nearer. (A nearer surface under 1 px
    wide that neither pixel shows would be missed.)
    """
    batch, height, width = disparity.shape
    n_layers = scenes.layers.data.shape[1]
    x_right = torch.arange(width, device=disparity.device, dtype=disparity.dtype) - disparity
    left_of_frame = x_right < 0
    before = torch.floor(x_right).clamp(0, width - 1).long()
    after = (before + 1).clamp(max=width - 1)
    layer_before, layer_after = right_winner.gather(2, before), right_winner.gather(2, after)
    same = (layer_before == left_winner) & (layer_after == left_winner)
    b, y, x = (~same & ~left_of_frame).nonzero(as_tuple=True)
    at_x, at_y, own = x_right[b, y, x], y.to(disparity.dtype), disparity[b, y, x]
    nearest = torch.maximum(
        layer_at(scenes.layers, b * n_layers + layer_before[b, y, x], at_x, at_y, "right"),
        layer_at(scenes.layers, b * n_layers + layer_after[b, y, x], at_x, at_y, "right"),
    )
    occluded = left_of_frame.clone()
    occluded[b, y, x] = nearest > own + OCCLUSION_TOLERANCE_PX
    return occluded


def _render_view(scenes: Scenes, view: str, settings: RenderSettings, seeds: list[int]) -> dict[str, torch.Tensor]:
    """One camera's image, and the visible layer and its disparity at every pixel."""
    layers, height, width = scenes.layers, scenes.height, scenes.width
    batch, n_layers = layers.data.shape[:2]
    device = layers.data.device
    winner = zbuffer(layers, height, width, view).reshape(-1)
    glow = (
        specular_glow(winner.reshape(batch, height, width), scenes.spots, view).reshape(-1)
        if settings.specular
        else None
    )
    bank = noise_bank(device)
    disparity = torch.empty(batch * height * width, device=device)
    rgb = torch.empty(3, batch * height * width, device=device)
    pixels = height * width
    # Chunks of one item's pixels: the many per-point temporaries stay in the CPU cache (several
    # times faster), and the item's settings are scalars.
    for b in range(batch):
        items = Table(scenes.items.names, scenes.items.data[b])
        for start in range(b * pixels, (b + 1) * pixels, CHUNK_POINTS):
            stop = min(start + CHUNK_POINTS, (b + 1) * pixels)
            pixel = torch.arange(start - b * pixels, stop - b * pixels, device=device)
            y, x = (pixel // width).float(), (pixel % width).float()
            p = layers.rows(b * n_layers + winner[start:stop])
            xs, _ = surface_x(p, x, y, view)
            d = layer_disparity(p, xs, y)
            colour = surface_colour(p, items, bank, xs, y, d)
            if glow is not None:
                colour += glow[start:stop]
            if settings.photometric:
                colour = photometric(colour, items, x, y, height, width, view)
            disparity[start:stop] = d
            rgb[:, start:stop] = colour
    image = rgb.reshape(3, batch, height, width).transpose(0, 1).clamp(0.0, 1.0)
    noise_seeds = [seed ^ 0x5DEECE66D for seed in seeds]
    image = blur_and_noise(
        image,
        scenes.items,
        view,
        blur=settings.blur,
        noise=settings.noise,
        noise_seeds=noise_seeds,
        noise_scale=settings.noise_scale,
    )
    return {
        "image": image,
        "winner": winner.reshape(batch, height, width),
        "disparity": disparity.reshape(batch, height, width),
    }
