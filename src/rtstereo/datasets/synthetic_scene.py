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

Everything is drawn from one uniform vector per item, generated from that item's own seed by a
counter-based hash (:mod:`.synthetic_random`), and then turned into parameters with numpy arithmetic
vectorised over the batch: the parameters are small, so they are computed on the host and sent to the
rendering device as three tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .synthetic_material import MAX_OBJECTS, sample_items, sample_materials, sample_spots
from .synthetic_random import choice, lerp, loguniform, uniform
from .synthetic_table import Table, build_table

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


SCENE_STREAM = 1  # the random stream of the scene parameters (see :mod:`.synthetic_random`)


class Draws:
    """Hands out the columns of a ``(..., N)`` uniform tensor one at a time."""

    def __init__(self, uniform: np.ndarray) -> None:
        self.uniform = uniform
        self.used = 0

    def __call__(self) -> np.ndarray:
        assert self.used < self.uniform.shape[-1], f"out of draws ({self.uniform.shape[-1]})"
        self.used += 1
        return self.uniform[..., self.used - 1]


def quadratic_range(lin: np.ndarray, quad: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Min and max of ``lin * t + quad * t^2`` for ``t`` in ``[lo, hi]`` (elementwise)."""
    safe_quad = np.where(abs(quad) < 1e-12, np.full_like(quad, 1e-12), quad)
    vertex = np.minimum(np.maximum(-lin / (2 * safe_quad), lo), hi)
    values = np.stack([lin * t + quad * t * t for t in (lo, hi, vertex)])
    return values.min(0), values.max(0)


def sample_scenes(seeds: torch.Tensor | list[int], height: int, width: int, max_disp_px: float) -> Scenes:
    """Draw one scene per seed (on the CPU in float64; the parameters are small).

    Args:
        seeds: one seed per item (int64 tensor ``(B,)`` or a list); item ``i`` depends only on
            ``seeds[i]``.
        height, width: image size in pixels.
        max_disp_px: no disparity exceeds this.

    Returns:
        The batch of scene descriptions.
    """
    seeds = torch.as_tensor(seeds, dtype=torch.int64).cpu()
    # All draws of an item in one hash call, then split: the scene parameters are a few thousand numbers
    # per scene, computed on the host with numpy, vectorised over the batch (nothing here runs per scene).
    sizes = {"items": ITEM_DRAWS, "layers": NUM_LAYERS * LAYER_DRAWS, "materials": NUM_LAYERS * MATERIAL_DRAWS}
    sizes["spots"] = NUM_SPOTS * SPOT_DRAWS
    draws = uniform(seeds, SCENE_STREAM, (sum(sizes.values()),)).numpy()
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name], start = draws[:, start : start + size], start + size
    batch = len(seeds)
    items = sample_items(Draws(parts["items"]), height, width, max_disp_px)
    geometry = _sample_geometry(Draws(parts["layers"].reshape(batch, NUM_LAYERS, LAYER_DRAWS)), items, height, width)
    materials = sample_materials(Draws(parts["materials"].reshape(batch, NUM_LAYERS, MATERIAL_DRAWS)), items, geometry)
    spots = sample_spots(Draws(parts["spots"].reshape(batch, NUM_SPOTS, SPOT_DRAWS)), geometry, items)
    return Scenes(build_table({**geometry, **materials}), build_table(items), build_table(spots), height, width)


def _sample_geometry(u: Draws, items: dict, height: int, width: int) -> dict[str, np.ndarray]:
    """Shapes and disparity functions of all layers, ``(B, K)`` each."""
    batch = u.uniform.shape[0]
    extent = float(max(height, width))
    scene_max = items["scene_max"][:, None]
    d_back = items["d_back"][:, None]
    layer = np.broadcast_to(np.arange(NUM_LAYERS)[None], (batch, NUM_LAYERS))
    n_objects = items["n_objects"][:, None]
    is_object = layer >= FIRST_OBJECT
    active = (layer == 0) | ((layer == GROUND) & (items["has_ground"][:, None] > 0))
    active |= is_object & (layer < FIRST_OBJECT + n_objects)

    kind = np.where(is_object, choice(u(), OBJECT_KIND_PROBS) + SOLID, layer)

    # --- region ---------------------------------------------------------------------------------
    cx = lerp(u(), -0.1, 1.1) * width
    cy = lerp(u(), -0.1, 1.1) * height
    size = loguniform(u(), 10.0, 0.35 * extent)  # log-uniform sizes: many small, few large objects
    aspect = loguniform(u(), 1 / 3, 3.0)
    rx, ry = size * np.sqrt(aspect), size / np.sqrt(aspect)
    # Superellipse powers 1 (diamond), 2 (ellipse), 4 (rounded box), 8 (box): powers of two keep
    # the region test free of transcendental functions.
    power = 2.0 ** choice(u(), (0.1, 0.45, 0.2, 0.25)).astype(np.float64)
    axis_aligned = u() < 0.4  # man-made things are often upright
    angle = np.where(axis_aligned, np.zeros_like(cx), lerp(u(), 0.0, math.pi))
    wobbly = u() < 0.4
    amp2, amp3 = wobbly * lerp(u(), 0.0, 0.22), wobbly * lerp(u(), 0.0, 0.15)
    phase2, phase3 = lerp(u(), 0, 2 * math.pi), lerp(u(), 0, 2 * math.pi)
    bend = np.zeros_like(cx)
    cut_draws = [(u(), u()) for _ in range(2)]
    n_cuts = np.where(u() < 0.35, 1 + (u() < 0.5).astype(np.int64), np.zeros_like(layer))
    hole_freq_u = np.zeros_like(cx)
    hole_freq_v = np.zeros_like(cx)
    hole_duty_u = np.ones_like(cx)
    hole_duty_v = np.ones_like(cx)
    hole_phase_u, hole_phase_v = u(), u()

    # Bars: poles and beams, mostly upright or level.
    bar = kind == BAR
    bar_angle = choice(u(), (0.45, 0.35, 0.2))
    bar_tilt = lerp(u(), -0.05, 0.05)
    bar_angle = np.where(bar_angle == 0, math.pi / 2 + bar_tilt, np.where(bar_angle == 1, bar_tilt, angle))
    angle = np.where(bar, bar_angle, angle)
    rx = np.where(bar, loguniform(u(), 0.05, 0.6) * extent, rx)
    ry = np.where(bar, loguniform(u(), 1.25, 8.0), ry)
    power = np.where(bar, np.full_like(power, 8.0), power)

    # Wires: long, two to four pixels thick, sagging.
    wire = kind == WIRE
    angle = np.where(wire, np.where(u() < 0.7, lerp(u(), -0.4, 0.4), lerp(u(), 0.0, math.pi)), angle)
    rx = np.where(wire, lerp(u(), 0.3, 1.0) * extent, rx)
    ry = np.where(wire, lerp(u(), 0.9, 1.8), ry)  # half-widths; thinner would break up into dots
    sag_px = lerp(u(), -0.15, 0.15) * rx
    bend = np.where(wire, sag_px / rx**2, bend)
    power = np.where(wire, np.full_like(power, 8.0), power)

    # Fences, grilles, shelves: a rectangle with a lattice of holes.
    fence = kind == FENCE
    rx = np.where(fence, loguniform(u(), 0.06, 0.45) * extent, rx)
    ry = np.where(fence, rx / loguniform(u(), 0.3, 3.0), ry)
    power = np.where(fence, np.full_like(power, 8.0), power)
    bars_only = u() < 0.4
    hole_freq_u = np.where(fence, lerp(u(), 2.0, 12.0), hole_freq_u)
    hole_freq_v = np.where(fence & ~bars_only, lerp(u(), 1.0, 12.0), hole_freq_v)
    hole_duty_u = np.where(fence, lerp(u(), 0.12, 0.5), hole_duty_u)
    # duty -1 makes every phase count as a hole: vertical slats only.
    hole_duty_v = np.where(fence, np.where(bars_only, -np.ones_like(cx), lerp(u(), 0.12, 0.5)), hole_duty_v)

    # Panels: large, strongly slanted planes (side walls, table tops, facades).
    panel = kind == PANEL
    rx = np.where(panel, lerp(u(), 0.15, 0.4) * extent, rx)
    ry = np.where(panel, lerp(u(), 0.15, 0.5) * extent, ry)
    power = np.where(panel, np.full_like(power, 8.0), power)
    angle = np.where(panel, np.zeros_like(angle), angle)

    thin = bar | wire
    amp2, amp3 = np.where(thin | fence | panel, 0.0, amp2), np.where(thin | fence | panel, 0.0, amp3)
    n_cuts = np.where(thin | fence, 0, n_cuts)
    cuts = {}
    for i, (u_angle, u_offset) in enumerate(cut_draws):
        cut_angle = lerp(u_angle, 0, 2 * math.pi)
        cuts[f"cut{i}_nx"], cuts[f"cut{i}_ny"] = np.cos(cut_angle), np.sin(cut_angle)
        cuts[f"cut{i}_offset"] = np.where(n_cuts > i, lerp(u_offset, 0.1, 0.9), np.full_like(cx, 1e6))

    # Conservative half-extent of the region in its own frame, then the axis-aligned box.
    grow = 1.0 / (1.0 - amp2 - amp3)
    ex, ey = rx * grow, ry * grow + abs(bend) * (rx * grow) ** 2
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    half_x = abs(cos_a) * ex + abs(sin_a) * ey + 1.0
    half_y = abs(sin_a) * ex + abs(cos_a) * ey + 1.0

    # --- disparity ----------------------------------------------------------------------------------
    depth = u() ** items["depth_gamma"][:, None]
    # The nearest object of every scene touches the scene's largest disparity.
    nearest = np.where(active & is_object, depth, -1.0).argmax(1)[:, None]
    is_nearest = layer == nearest
    d_centre = d_back + (scene_max - d_back) * depth
    slanted = u() < 0.65
    slope_x = slanted * lerp(u(), -0.35, 0.35)
    slope_y = slanted * lerp(u(), -0.35, 0.35)
    curved = u() < 0.25
    curve_x = curved * lerp(u(), -1.0, 1.0) * 0.25 / half_x
    curve_y = curved * lerp(u(), -1.0, 1.0) * 0.25 / half_y
    slope_x = np.where(panel, np.sign(u() - 0.5) * lerp(u(), 0.15, 0.5), slope_x)
    slope_y = np.where(thin, slope_y * 0.2, slope_y)

    # Back wall and ground plane cover the frame (and what the right view sees beyond it).
    full = layer < FIRST_OBJECT
    cx = np.where(full, width / 2.0, cx)
    horizon = items["horizon"][:, None] * height
    cy = np.where(layer == GROUND, horizon, np.where(full, height / 2.0, cy))
    x_lo = np.where(full, -1.0 - cx, -half_x)
    x_hi = np.where(full, width + scene_max - cx, half_x)
    y_lo = np.where(full, -1.0 - cy, -half_y)
    y_hi = np.where(full, height - cy, half_y)
    d_centre = np.where(layer == WALL, d_back, d_centre)
    slope_x = np.where(layer == WALL, items["wall_slope_x"][:, None], slope_x)
    slope_y = np.where(layer == WALL, items["wall_slope_y"][:, None], slope_y)
    ground_slope = items["ground_bottom"][:, None] * scene_max / np.maximum(height - horizon, 1.0)
    d_centre = np.where(layer == GROUND, 0.0, d_centre)
    slope_y = np.where(layer == GROUND, ground_slope, slope_y)
    slope_x = np.where(layer == GROUND, items["ground_roll"][:, None] * ground_slope, slope_x)
    curve_x = np.where(full, 0.0, curve_x)  # planar backgrounds: no holes in the right view
    curve_y = np.where(full, 0.0, curve_y)

    # Never fold over: |dd/dx| <= MAX_X_SLOPE on the whole box.
    reach_x = np.maximum(abs(x_lo), abs(x_hi))
    steepest = abs(slope_x) + 2 * abs(curve_x) * reach_x
    fold_scale = np.minimum(MAX_X_SLOPE / np.maximum(steepest, 1e-9), 1.0)
    slope_x, curve_x = slope_x * fold_scale, curve_x * fold_scale

    # Fit the disparity range of each layer into [0, scene_max].
    lo_x, hi_x = quadratic_range(slope_x, curve_x, x_lo, x_hi)
    lo_y, hi_y = quadratic_range(slope_y, curve_y, y_lo, y_hi)
    var_lo, var_hi = lo_x + lo_y, hi_x + hi_y
    squeeze = np.minimum(0.9 * scene_max / np.maximum(var_hi - var_lo, 1e-9), 1.0)
    # The ground plane only has to stay below scene_max; above the horizon it is hidden by the wall.
    # Its roll tilts it along x as well: at the left view's pixels (planar, d = 0 at (cx, horizon)) it
    # peaks in a bottom corner, which the bound must include.
    ground = layer == GROUND
    seen_max = (
        quadratic_range(slope_x, curve_x, -cx, width - 1.0 - cx)[1]
        + quadratic_range(slope_y, curve_y, -cy, height - 1.0 - cy)[1]
    )
    ground_squeeze = np.minimum(scene_max / np.maximum(hi_y, 1e-9), scene_max / np.maximum(seen_max, 1e-9))
    squeeze = np.where(ground, np.minimum(ground_squeeze, 1.0), squeeze)
    slope_x, slope_y, curve_x, curve_y = (v * squeeze for v in (slope_x, slope_y, curve_x, curve_y))
    var_lo, var_hi = var_lo * squeeze, var_hi * squeeze
    d_centre = np.where(ground, d_centre, np.minimum(np.maximum(d_centre, -var_lo), scene_max - var_hi))
    d_centre = np.where(is_nearest, scene_max - var_hi, d_centre)

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
        "obb_v": grow + abs(bend * rx * rx / ry) * grow * grow,
        "wobbly": (amp2 + amp3) > 0,
        "curved_x": curve_x != 0,
        "has_cuts": n_cuts > 0,
        "has_holes": fence,
        "wobble2_c": amp2 * np.cos(phase2),
        "wobble2_s": amp2 * np.sin(phase2),
        "wobble3_c": amp3 * np.cos(phase3),
        "wobble3_s": amp3 * np.sin(phase3),
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
