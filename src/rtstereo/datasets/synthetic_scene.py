"""Random scene descriptions for the synthetic stereo generator.

A scene is a stack of layers. Layer 0 is a back wall and layer 1 an optional ground plane, both
covering the whole frame; the others are objects (solid shapes, bars, wires, fences, slanted panels).
Each layer has

- a region in *surface coordinates* (the left-view position ``(x, y)`` of each of its points): a
  rotated, optionally bent superellipse with a wobbly outline, optional straight cuts and an optional
  lattice of holes;
- a disparity function of its surface point, quadratic and separable around its centre
  ``d = c + a x' + b y' + qx x'^2 + qy y'^2`` with ``x' = x - cx, y' = y - cy``, constrained so that
  ``|dd/dx| <= 0.6`` over the layer's bounding box (the surface never folds over in the right view,
  so each right-view position ``x - d`` has exactly one surface point) and ``0 <= d <= max_disp``
  (except the ground plane above the horizon, always hidden behind the wall);
- a material (see :mod:`.synthetic_material`).

Everything is drawn from one uniform vector per item, generated from that item's own seed, and then
turned into parameters with batched tensor arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .synthetic_material import sample_items, sample_materials, sample_spots
from .synthetic_table import Table, build_table

MIN_OBJECTS = 10
MAX_OBJECTS = 40
FIRST_OBJECT = 2  # layer 0: back wall, layer 1: ground plane
NUM_LAYERS = FIRST_OBJECT + MAX_OBJECTS
LAYER_DRAWS = 64  # uniform numbers per layer for its geometry
MATERIAL_DRAWS = 64  # ... and for its material
ITEM_DRAWS = 80
SPOT_DRAWS = 12
NUM_SPOTS = 4

# Largest |dd/dx| over a layer: keeps 1 - dd/dx >= 0.4, so the right-view inverse map is unique.
MAX_X_SLOPE = 0.6

WALL, GROUND, SOLID, BAR, WIRE, FENCE, PANEL = range(7)
# Probabilities of the object kinds SOLID, BAR, WIRE, FENCE, PANEL.
OBJECT_KIND_PROBS = (0.62, 0.14, 0.08, 0.1, 0.06)


@dataclass
class Scenes:
    """A batch of scene descriptions.

    Attributes:
        layers: table ``(B, K, C)``: one row per layer (geometry and material).
        items: table ``(B, C)``: per-scene settings (lighting, camera, photometric differences).
        spots: table ``(B, S, C)``: view-dependent specular spots.
        height, width: image size in pixels.
    """

    layers: Table
    items: Table
    spots: Table
    height: int
    width: int

    def to(self, device: torch.device | str) -> Scenes:
        return Scenes(
            Table(self.layers.names, self.layers.data.to(device)),
            Table(self.items.names, self.items.data.to(device)),
            Table(self.spots.names, self.spots.data.to(device)),
            self.height,
            self.width,
        )


def item_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for item ``index`` of the stream ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFF, int(index)]).generate_state(2, np.uint64)[0] >> 1)


class Draws:
    """Hands out the columns of a ``(..., N)`` uniform tensor one at a time."""

    def __init__(self, uniform: torch.Tensor) -> None:
        self.uniform = uniform
        self.used = 0

    def __call__(self) -> torch.Tensor:
        assert self.used < self.uniform.shape[-1], f"out of draws ({self.uniform.shape[-1]})"
        self.used += 1
        return self.uniform[..., self.used - 1]


def lerp(u: torch.Tensor, lo: float | torch.Tensor, hi: float | torch.Tensor) -> torch.Tensor:
    return lo + (hi - lo) * u


def loguniform(u: torch.Tensor, lo: float | torch.Tensor, hi: float | torch.Tensor) -> torch.Tensor:
    lo_t = torch.as_tensor(lo, dtype=u.dtype)
    return lo_t * (torch.as_tensor(hi, dtype=u.dtype) / lo_t) ** u


def choice(u: torch.Tensor, probs: tuple[float, ...]) -> torch.Tensor:
    """Index drawn with the given probabilities (they need not sum to one)."""
    cumulative = torch.tensor(probs, dtype=u.dtype).cumsum(0)
    return (u[..., None] * cumulative[-1] > cumulative[:-1]).sum(-1)


def quadratic_range(lin: torch.Tensor, quad: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Min and max of ``lin * t + quad * t^2`` for ``t`` in ``[lo, hi]`` (elementwise)."""
    safe_quad = torch.where(quad.abs() < 1e-12, torch.full_like(quad, 1e-12), quad)
    vertex = torch.minimum(torch.maximum(-lin / (2 * safe_quad), lo), hi)
    values = torch.stack([lin * t + quad * t * t for t in (lo, hi, vertex)])
    return values.amin(0), values.amax(0)


def sample_scenes(seeds: list[int], height: int, width: int, max_disp_px: float) -> Scenes:
    """Draw one scene per seed (on the CPU; the parameters are small).

    Args:
        seeds: one seed per item; item ``i`` depends only on ``seeds[i]``.
        height, width: image size in pixels.
        max_disp_px: no disparity exceeds this.

    Returns:
        The batch of scene descriptions.
    """
    layer_draws, material_draws, item_draws, spot_draws = [], [], [], []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        layer_draws.append(torch.rand(NUM_LAYERS, LAYER_DRAWS, generator=generator, dtype=torch.float64))
        material_draws.append(torch.rand(NUM_LAYERS, MATERIAL_DRAWS, generator=generator, dtype=torch.float64))
        item_draws.append(torch.rand(ITEM_DRAWS, generator=generator, dtype=torch.float64))
        spot_draws.append(torch.rand(NUM_SPOTS, SPOT_DRAWS, generator=generator, dtype=torch.float64))
    items_u = Draws(torch.stack(item_draws))
    items = sample_items(items_u, height, width, max_disp_px)
    geometry = _sample_geometry(Draws(torch.stack(layer_draws)), items, height, width)
    materials = sample_materials(Draws(torch.stack(material_draws)), items, geometry)
    layers = build_table({**geometry, **materials})
    spots = sample_spots(Draws(torch.stack(spot_draws)), layers, items)
    return Scenes(layers, build_table(items), spots, height, width)


def _sample_geometry(u: Draws, items: dict, height: int, width: int) -> dict[str, torch.Tensor]:
    """Shapes and disparity functions of all layers, ``(B, K)`` each."""
    batch = u.uniform.shape[0]
    extent = float(max(height, width))
    scene_max = items["scene_max"][:, None]
    d_back = items["d_back"][:, None]
    layer = torch.arange(NUM_LAYERS)[None].expand(batch, -1)
    n_objects = items["n_objects"][:, None]
    is_object = layer >= FIRST_OBJECT
    active = (layer == 0) | ((layer == GROUND) & (items["has_ground"][:, None] > 0))
    active |= is_object & (layer < FIRST_OBJECT + n_objects)

    kind = torch.where(is_object, choice(u(), OBJECT_KIND_PROBS) + SOLID, layer)

    # --- region ---------------------------------------------------------------------------------
    cx = lerp(u(), -0.1, 1.1) * width
    cy = lerp(u(), -0.1, 1.1) * height
    size = loguniform(u(), 10.0, 0.35 * extent)  # log-uniform sizes: many small, few large objects
    aspect = loguniform(u(), 1 / 3, 3.0)
    rx, ry = size * aspect.sqrt(), size / aspect.sqrt()
    # Superellipse powers 1 (diamond), 2 (ellipse), 4 (rounded box), 8 (box): powers of two keep
    # the region test free of transcendental functions.
    power = 2.0 ** choice(u(), (0.1, 0.45, 0.2, 0.25)).double()
    axis_aligned = u() < 0.4  # man-made things are often upright
    angle = torch.where(axis_aligned, torch.zeros_like(cx), lerp(u(), 0.0, math.pi))
    wobbly = u() < 0.4
    amp2, amp3 = wobbly * lerp(u(), 0.0, 0.22), wobbly * lerp(u(), 0.0, 0.15)
    phase2, phase3 = lerp(u(), 0, 2 * math.pi), lerp(u(), 0, 2 * math.pi)
    bend = torch.zeros_like(cx)
    cut_draws = [(u(), u()) for _ in range(2)]
    n_cuts = torch.where(u() < 0.35, 1 + (u() < 0.5).long(), torch.zeros_like(layer))
    hole_freq_u = torch.zeros_like(cx)
    hole_freq_v = torch.zeros_like(cx)
    hole_duty_u = torch.ones_like(cx)
    hole_duty_v = torch.ones_like(cx)
    hole_phase_u, hole_phase_v = u(), u()

    # Bars: poles and beams, mostly upright or level.
    bar = kind == BAR
    bar_angle = choice(u(), (0.45, 0.35, 0.2))
    bar_tilt = lerp(u(), -0.05, 0.05)
    bar_angle = torch.where(bar_angle == 0, math.pi / 2 + bar_tilt, torch.where(bar_angle == 1, bar_tilt, angle))
    angle = torch.where(bar, bar_angle, angle)
    rx = torch.where(bar, loguniform(u(), 0.05, 0.6) * extent, rx)
    ry = torch.where(bar, loguniform(u(), 1.25, 8.0), ry)
    power = torch.where(bar, torch.full_like(power, 8.0), power)

    # Wires: long, two to four pixels thick, sagging.
    wire = kind == WIRE
    angle = torch.where(wire, torch.where(u() < 0.7, lerp(u(), -0.4, 0.4), lerp(u(), 0.0, math.pi)), angle)
    rx = torch.where(wire, lerp(u(), 0.3, 1.0) * extent, rx)
    ry = torch.where(wire, lerp(u(), 0.9, 1.8), ry)  # half-widths; thinner would break up into dots
    sag_px = lerp(u(), -0.15, 0.15) * rx
    bend = torch.where(wire, sag_px / rx**2, bend)
    power = torch.where(wire, torch.full_like(power, 8.0), power)

    # Fences, grilles, shelves: a rectangle with a lattice of holes.
    fence = kind == FENCE
    rx = torch.where(fence, loguniform(u(), 0.06, 0.45) * extent, rx)
    ry = torch.where(fence, rx / loguniform(u(), 0.3, 3.0), ry)
    power = torch.where(fence, torch.full_like(power, 8.0), power)
    bars_only = u() < 0.4
    hole_freq_u = torch.where(fence, lerp(u(), 2.0, 12.0), hole_freq_u)
    hole_freq_v = torch.where(fence & ~bars_only, lerp(u(), 1.0, 12.0), hole_freq_v)
    hole_duty_u = torch.where(fence, lerp(u(), 0.12, 0.5), hole_duty_u)
    # duty -1 makes every phase count as a hole: vertical slats only.
    hole_duty_v = torch.where(fence, torch.where(bars_only, -torch.ones_like(cx), lerp(u(), 0.12, 0.5)), hole_duty_v)

    # Panels: large, strongly slanted planes (side walls, table tops, facades).
    panel = kind == PANEL
    rx = torch.where(panel, lerp(u(), 0.15, 0.4) * extent, rx)
    ry = torch.where(panel, lerp(u(), 0.15, 0.5) * extent, ry)
    power = torch.where(panel, torch.full_like(power, 8.0), power)
    angle = torch.where(panel, torch.zeros_like(angle), angle)

    thin = bar | wire
    amp2, amp3 = torch.where(thin | fence | panel, 0.0, amp2), torch.where(thin | fence | panel, 0.0, amp3)
    n_cuts = torch.where(thin | fence, 0, n_cuts)
    cuts = {}
    for i, (u_angle, u_offset) in enumerate(cut_draws):
        cut_angle = lerp(u_angle, 0, 2 * math.pi)
        cuts[f"cut{i}_nx"], cuts[f"cut{i}_ny"] = torch.cos(cut_angle), torch.sin(cut_angle)
        cuts[f"cut{i}_offset"] = torch.where(n_cuts > i, lerp(u_offset, 0.1, 0.9), torch.full_like(cx, 1e6))

    # Conservative half-extent of the region in its own frame, then the axis-aligned box.
    grow = 1.0 / (1.0 - amp2 - amp3)
    ex, ey = rx * grow, ry * grow + bend.abs() * (rx * grow) ** 2
    cos_a, sin_a = torch.cos(angle), torch.sin(angle)
    half_x = cos_a.abs() * ex + sin_a.abs() * ey + 1.0
    half_y = sin_a.abs() * ex + cos_a.abs() * ey + 1.0

    # --- disparity ----------------------------------------------------------------------------------
    depth = u() ** items["depth_gamma"][:, None]
    # The nearest object of every scene touches the scene's largest disparity.
    nearest = torch.where(active & is_object, depth, -1.0).argmax(1, keepdim=True)
    is_nearest = layer == nearest
    d_centre = d_back + (scene_max - d_back) * depth
    slanted = u() < 0.65
    slope_x = slanted * lerp(u(), -0.35, 0.35)
    slope_y = slanted * lerp(u(), -0.35, 0.35)
    curved = u() < 0.25
    curve_x = curved * lerp(u(), -1.0, 1.0) * 0.25 / half_x
    curve_y = curved * lerp(u(), -1.0, 1.0) * 0.25 / half_y
    slope_x = torch.where(panel, torch.sign(u() - 0.5) * lerp(u(), 0.15, 0.5), slope_x)
    slope_y = torch.where(thin, slope_y * 0.2, slope_y)

    # Back wall and ground plane cover the frame (and what the right view sees beyond it).
    full = layer < FIRST_OBJECT
    cx = torch.where(full, width / 2.0, cx)
    horizon = items["horizon"][:, None] * height
    cy = torch.where(layer == GROUND, horizon, torch.where(full, height / 2.0, cy))
    x_lo = torch.where(full, -1.0 - cx, -half_x)
    x_hi = torch.where(full, width + scene_max - cx, half_x)
    y_lo = torch.where(full, -1.0 - cy, -half_y)
    y_hi = torch.where(full, height - cy, half_y)
    d_centre = torch.where(layer == WALL, d_back, d_centre)
    slope_x = torch.where(layer == WALL, items["wall_slope_x"][:, None], slope_x)
    slope_y = torch.where(layer == WALL, items["wall_slope_y"][:, None], slope_y)
    ground_slope = items["ground_bottom"][:, None] * scene_max / (height - horizon).clamp(min=1.0)
    d_centre = torch.where(layer == GROUND, 0.0, d_centre)
    slope_y = torch.where(layer == GROUND, ground_slope, slope_y)
    slope_x = torch.where(layer == GROUND, items["ground_roll"][:, None] * ground_slope, slope_x)
    curve_x = torch.where(full, 0.0, curve_x)  # planar backgrounds: no holes in the right view
    curve_y = torch.where(full, 0.0, curve_y)

    # Never fold over: |dd/dx| <= MAX_X_SLOPE on the whole box.
    reach_x = torch.maximum(x_lo.abs(), x_hi.abs())
    steepest = slope_x.abs() + 2 * curve_x.abs() * reach_x
    fold_scale = (MAX_X_SLOPE / steepest.clamp(min=1e-9)).clamp(max=1.0)
    slope_x, curve_x = slope_x * fold_scale, curve_x * fold_scale

    # Fit the disparity range of each layer into [0, scene_max].
    lo_x, hi_x = quadratic_range(slope_x, curve_x, x_lo, x_hi)
    lo_y, hi_y = quadratic_range(slope_y, curve_y, y_lo, y_hi)
    var_lo, var_hi = lo_x + lo_y, hi_x + hi_y
    squeeze = (0.9 * scene_max / (var_hi - var_lo).clamp(min=1e-9)).clamp(max=1.0)
    # The ground plane only has to stay below scene_max; above the horizon it is hidden by the wall.
    ground = layer == GROUND
    squeeze = torch.where(ground, (scene_max / hi_y.clamp(min=1e-9)).clamp(max=1.0), squeeze)
    slope_x, slope_y, curve_x, curve_y = (v * squeeze for v in (slope_x, slope_y, curve_x, curve_y))
    var_lo, var_hi = var_lo * squeeze, var_hi * squeeze
    d_centre = torch.where(ground, d_centre, torch.minimum(torch.maximum(d_centre, -var_lo), scene_max - var_hi))
    d_centre = torch.where(is_nearest, scene_max - var_hi, d_centre)

    return {
        "active": active,
        "full": full,
        "kind": kind,
        "cx": cx,
        "cy": cy,
        # (u, v): the region's frame, scaled so that the region is |u|^p + |v|^p <= 1 (plus extras).
        "u_x": cos_a / rx,
        "u_y": sin_a / rx,
        "v_x": -sin_a / ry,
        "v_y": cos_a / ry,
        "bend_uv": bend * rx * rx / ry,
        "power": power,
        "obb_u": grow,
        "obb_v": grow + (bend * rx * rx / ry).abs() * grow * grow,
        "wobbly": (amp2 + amp3) > 0,
        "curved_x": curve_x != 0,
        "has_cuts": n_cuts > 0,
        "has_holes": fence,
        "wobble2_c": amp2 * torch.cos(phase2),
        "wobble2_s": amp2 * torch.sin(phase2),
        "wobble3_c": amp3 * torch.cos(phase3),
        "wobble3_s": amp3 * torch.sin(phase3),
        **cuts,
        "hole_freq_u": hole_freq_u,
        "hole_freq_v": hole_freq_v,
        "hole_phase_u": hole_phase_u,
        "hole_phase_v": hole_phase_v,
        "hole_duty_u": hole_duty_u,
        "hole_duty_v": hole_duty_v,
        "box_x0": cx + x_lo,
        "box_x1": cx + x_hi,
        "box_y0": cy + y_lo,
        "box_y1": cy + y_hi,
        "d_c": d_centre,
        "d_a": slope_x,
        "d_b": slope_y,
        "d_qx": curve_x,
        "d_qy": curve_y,
        "d_inv_1ma": 1.0 / (1.0 - slope_x),
        "d_min": d_centre + var_lo,
        "d_max": d_centre + var_hi,
        "depth": depth,
    }
