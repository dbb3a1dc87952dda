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

import math
import numbers
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import InputError, torch_missing
from ..pools import wait_through_interrupts
from ..runtime.heap import keep_freed_memory

try:  # before the renderer's modules, which need it too
    import torch
except ImportError as exc:  # one line naming the extra, not "No module named 'torch'" from one of them
    torch_missing("rendering synthetic scenes (rtstereo.datasets.synthetic)", exc)

from .synthetic_camera import blur_and_noise, photometric, specular_glow
from .synthetic_geometry import layer_at, layer_disparity, surface_x, zbuffer
from .synthetic_random import hash_bits, item_seeds
from .synthetic_scene import Scenes, sample_scenes
from .synthetic_table import Table
from .synthetic_texture import noise_bank, surface_colour

# The version of the stream of pairs: raise it with every change that makes any seed render other pixels,
# so that a folder of written pairs (``rtstereo synth``'s synth.json) tells which renderer wrote them.
# 2: a rolled ground plane is bounded to the disparity range over the whole view (367c635).
# 3: each specular highlight is cut at its own 3 sigma, not at the batch's widest (an item's pixels no longer
#    depend on the other scenes of its batch, nor on how many threads split it).
# 4: stripes and grids no longer vanish where their phase is below -100 periods (far from a layer's centre).
RENDERER_VERSION = 4

NOISE_STREAM = 5  # random stream of the sensor-noise keys (see synthetic_random)

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
        for name in ("photometric", "specular", "noise", "blur"):
            value = getattr(self, name)
            if not isinstance(value, bool):  # noise="false" rendered the noise: any non-empty string is true
                raise InputError(f"{name}: expected True or False, got {value!r}")
        if (
            isinstance(self.noise_scale, bool)
            or not isinstance(self.noise_scale, (int, float))
            # inf rendered images of two grey levels without a word, and 1e200 failed squared (an OverflowError)
            or not (self.noise_scale >= 0 and math.isfinite(self.noise_scale * self.noise_scale))
        ):
            raise InputError(f"noise_scale: expected a finite number >= 0 (below 1e154), got {self.noise_scale!r}")

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
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise InputError(f"batch_size: expected a positive integer, got {batch_size!r}")
    _check_seed(seed)
    return render_scenes(
        item_seeds(seed, int(batch_size)), height, width, device=device, max_disp_px=max_disp_px, settings=settings
    )


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
        # numpy's integers as the sizes are (a count from numpy refused); True is no count
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
            raise InputError(f"length: expected a non-negative integer, got {length!r}")
        _check_size(height, width, max_disp_px)
        _check_seed(seed)
        self.length, self.height, self.width = int(length), int(height), int(width)
        self.seed, self.max_disp_px, self.settings = seed, max_disp_px, settings

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):  # a slice failed in a comparison
            raise TypeError(f"SyntheticStereo items are indexed by an integer, got {index!r}")
        index = int(index)
        if not -self.length <= index < self.length:
            raise IndexError(f"item {index} of a SyntheticStereo of length {self.length}")
        index %= self.length
        batch = render_scenes(
            item_seeds(self.seed, 1, start=index),
            self.height,
            self.width,
            max_disp_px=self.max_disp_px,
            settings=self.settings,
        )
        return {key: value[0] for key, value in batch.items()}


def _check_seed(seed: int) -> None:
    # item_seeds takes int(seed): seed=1.5 (or "1", or True) rendered the pairs of seed 1 without a word
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputError(f"seed: expected an integer, got {seed!r}")


def _check_seeds(seeds: torch.Tensor | list[int]) -> torch.Tensor:
    """The item seeds as a ``(B,)`` int64 CPU tensor; anything else raises :class:`InputError`."""
    try:
        values = torch.as_tensor(seeds)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"seeds: expected a list or 1-D tensor of integers, got {seeds!r}") from None
    # seeds 1.5 and 2.7 rendered the scenes of 1 and 2 without a word; a (1, 2) tensor failed deep in the renderer
    whole = not (values.is_floating_point() or values.is_complex() or values.dtype == torch.bool)
    if values.ndim != 1 or (values.numel() and not whole):
        shown = f"shape {tuple(values.shape)}" if values.ndim != 1 else f"{values.dtype} values"
        raise InputError(f"seeds: expected a list or 1-D tensor of integers, got {shown}")
    return values.to(torch.int64).cpu()


def _check_size(height: int, width: int, max_disp_px: float) -> None:
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 16:
            raise InputError(f"{name}: expected an integer of at least 16 px, got {value!r}")
    # inf reached the scene sampler, which failed with an IndexError on its NaN parameters
    if isinstance(max_disp_px, bool) or not isinstance(max_disp_px, numbers.Real) or not 0 < max_disp_px < math.inf:
        raise InputError(f"max_disp_px: expected a positive, finite number of pixels, got {max_disp_px!r}")


def render_scenes(
    seeds: torch.Tensor | list[int],
    height: int,
    width: int,
    *,
    device: str | torch.device = "cpu",
    max_disp_px: float = 192.0,
    settings: RenderSettings | None = None,
) -> dict[str, torch.Tensor]:
    """Render one scene per item seed; see :func:`render_batch` for the outputs.

    Every tensor operation covers the whole batch (all scenes, all their objects and texture layers):
    the number of launched operations does not grow with the batch size or the number of objects.

    Args:
        seeds: ``(B,)`` int64 item seeds (e.g. from :func:`~.synthetic_random.item_seeds`), or a list.
    """
    _check_size(height, width, max_disp_px)
    height, width = int(height), int(width)
    if settings is not None and not isinstance(settings, RenderSettings):  # an AttributeError deep inside
        raise InputError(f"settings: expected a RenderSettings or None, got {settings!r}")
    settings = settings or RenderSettings()
    device = torch.device(device)
    seeds = _check_seeds(seeds)
    if device.type == "cpu":
        keep_freed_memory()
    threads = torch.get_num_threads()
    if device.type == "cpu" and threads > 1 and len(seeds) > 1:
        # On a CPU, a few big operations split over OpenMP threads lose badly whenever the cores are
        # busy (each operation ends at a barrier that spins): measured 2.5 s against 1.0 s for 8 pairs
        # at 256x512 on this project's loaded 2-core machine. So the batch is cut into one part per
        # thread, each rendered single-threaded in a thread of its own (torch releases the GIL); every
        # item depends on its own seed only, so the parts join into the same batch.
        parts = torch.tensor_split(seeds, min(threads, len(seeds)))
        torch.set_num_threads(1)
        pool = ThreadPoolExecutor(len(parts))
        futures = [
            pool.submit(_render_seeds, part, height, width, device, float(max_disp_px), settings) for part in parts
        ]
        try:
            rendered = [future.result() for future in futures]
        finally:
            try:
                wait_through_interrupts(futures, pool)  # a second Ctrl-C must not leave a part in torch
            finally:
                torch.set_num_threads(threads)
        return {key: torch.cat([part[key] for part in rendered]) for key in rendered[0]}
    return _render_seeds(seeds, height, width, device, float(max_disp_px), settings)


def _render_seeds(
    seeds: torch.Tensor, height: int, width: int, device: torch.device, max_disp_px: float, settings: RenderSettings
) -> dict[str, torch.Tensor]:
    """:func:`render_scenes` on the calling thread: every operation covers the whole batch."""
    scenes = sample_scenes(seeds, height, width, max_disp_px).to(device)
    keys = hash_bits(seeds, NOISE_STREAM, 2).to(device)  # one sensor-noise key per view
    views = {view: _render_view(scenes, view, settings, keys[:, index]) for index, view in enumerate(("left", "right"))}
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
    # The points to check, and both candidate layers of each, evaluated in one pass.
    flat = (~same & ~left_of_frame).reshape(-1).nonzero().squeeze(1)
    b, y = flat // (height * width), (flat // width) % height
    at_x, own = x_right.reshape(-1).index_select(0, flat), disparity.reshape(-1).index_select(0, flat)
    first, second = layer_before.reshape(-1).index_select(0, flat), layer_after.reshape(-1).index_select(0, flat)
    # A point whose two right pixels show the same layer evaluates it once (most of them: inside an
    # occluding surface's shadow both pixels show that surface).
    two = (second != first).nonzero().squeeze(1)
    seen = layer_at(
        scenes.layers,
        torch.cat([b, b.index_select(0, two)]) * n_layers + torch.cat([first, second.index_select(0, two)]),
        torch.cat([at_x, at_x.index_select(0, two)]),
        torch.cat([y, y.index_select(0, two)]).to(at_x.dtype),
        "right",
    )
    nearest = seen[: len(flat)]
    nearest.index_copy_(0, two, torch.maximum(nearest.index_select(0, two), seen[len(flat) :]))
    occluded = left_of_frame.clone()
    occluded.view(-1).index_copy_(0, flat, nearest > own + OCCLUSION_TOLERANCE_PX)
    return occluded


def _render_view(
    scenes: Scenes, view: str, settings: RenderSettings, noise_keys: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One camera's images, and the visible layer and its disparity at every pixel, for the whole batch."""
    layers, height, width = scenes.layers, scenes.height, scenes.width
    batch, n_layers = layers.data.shape[:2]
    device = layers.data.device
    pixels = height * width
    winner = zbuffer(layers, height, width, view)
    # Points are laid out (B, H * W): per-layer columns are gathered at that shape and per-scene
    # settings (B, 1) broadcast against them.
    flat_layer = (winner.reshape(batch, pixels) + torch.arange(batch, device=device)[:, None] * n_layers).reshape(-1)
    p = layers.rows(flat_layer, shape=(batch, pixels))
    items = Table(scenes.items.names, scenes.items.data[:, None, :])
    pixel = torch.arange(pixels, device=device)
    y, x = (pixel // width).float()[None], (pixel % width).float()[None]
    xs, _ = surface_x(p, x, y, view)
    # The right view sees the surface point xs at x = xs - d.
    disparity = layer_disparity(p, xs, y) if view == "left" else xs - x
    colour = surface_colour(p, items, noise_bank(device), xs, y, disparity)
    if settings.specular:
        colour = colour.add_(specular_glow(winner, scenes.spots, view).reshape(1, batch, pixels))
    if settings.photometric:
        colour = photometric(colour, items, x, y, height, width, view)
    image = torch.empty((batch, 3, height, width), device=device)  # channels second, contiguous
    torch.clamp(colour.reshape(3, batch, height, width).transpose(0, 1), 0.0, 1.0, out=image)
    image = blur_and_noise(
        image,
        scenes.items,
        view,
        blur=settings.blur,
        noise=settings.noise,
        noise_keys=noise_keys,
        noise_scale=settings.noise_scale,
    )
    return {"image": image, "winner": winner, "disparity": disparity.reshape(batch, height, width)}
