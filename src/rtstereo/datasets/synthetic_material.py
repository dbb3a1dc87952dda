"""Random materials, lighting and camera settings for the synthetic stereo generator.

Colours follow the statistics of natural images loosely: mostly desaturated, a per-scene dominant
hue shared by many surfaces, contrasts from barely visible to black-on-white. Texture kinds cover what
makes stereo easy and hard: flat (textureless) areas, smooth gradients, coarse and fine noise,
stripes and grids (repetitive), and text-like marks.
"""

from __future__ import annotations

import math

import numpy as np

from .synthetic_random import choice, lerp, loguniform
from .synthetic_texture import GRAIN, PINK, RIDGED, SMOOTH

MIN_OBJECTS = 10  # objects in a scene: drawn uniformly from MIN_OBJECTS to MAX_OBJECTS
MAX_OBJECTS = 40

# Texture kinds, drawn with these probabilities.
FLAT, GRADIENT, NOISE, FINE_NOISE, STRIPES, PATTERN = range(6)
TEXTURE_KIND_PROBS = (0.12, 0.08, 0.3, 0.16, 0.15, 0.19)
BACKGROUND_KIND_PROBS = (0.15, 0.12, 0.45, 0.12, 0.06, 0.1)


def sample_items(u, height: int, width: int, max_disp_px: float) -> dict[str, np.ndarray]:
    """Per-scene settings ``(B,)``: disparity range, background, lighting, camera pair.

    Args:
        u: :class:`~.synthetic_scene.Draws` over a ``(B, N)`` uniform tensor.
        height, width: image size in pixels.
        max_disp_px: largest disparity of any scene.
    """
    extent_px = float(max(height, width))
    # A third of the scenes span the full range; the others a log-uniform fraction, so that small
    # disparities (most real scenes at 640 px width) are well covered.
    full_range = u() < 0.35
    scene_max = max_disp_px * np.where(full_range, np.ones_like(u.uniform[:, 0]), loguniform(u(), 0.08, 1.0))
    far_background = u() < 0.3
    d_back = scene_max * np.where(far_background, lerp(u(), 0.0, 0.02), lerp(u(), 0.0, 0.25))
    items = {
        "scene_max": scene_max,
        "d_back": d_back,
        "n_objects": np.floor(lerp(u(), MIN_OBJECTS, MAX_OBJECTS + 0.999)),
        "has_ground": (u() < 0.45).astype(np.float64),
        "horizon": lerp(u(), 0.1, 0.65),
        "ground_bottom": lerp(u(), 0.3, 1.0),
        "ground_roll": lerp(u(), -0.15, 0.15),
        "wall_slope_x": lerp(u(), -0.05, 0.05) * (u() < 0.5),
        "wall_slope_y": lerp(u(), -0.05, 0.05) * (u() < 0.5),
        "depth_gamma": loguniform(u(), 0.5, 2.5),
        "palette_hue": u(),
        "palette_coherence": lerp(u(), 0.0, 0.9),
    }
    light_angle, light_strength = lerp(u(), 0, 2 * math.pi), lerp(u(), 0.0, 1.2)
    warmth = lerp(u(), -0.08, 0.08)
    glow_radius = loguniform(u(), 0.15, 0.8) * extent_px
    items.update(
        {
            # Shading: a directional light (acting on the disparity gradient), a linear illumination
            # gradient and a broad light pool, all functions of the surface point.
            "light_x": light_strength * np.cos(light_angle),
            "light_y": light_strength * np.sin(light_angle),
            "light_gx": lerp(u(), -0.5, 0.5) / extent_px,
            "light_gy": lerp(u(), -0.5, 0.5) / extent_px,
            "light_cx": lerp(u(), 0.0, 1.0) * width,
            "light_cy": lerp(u(), 0.0, 1.0) * height,
            "light_inv_r2": 1.0 / glow_radius**2,
            "light_pool": lerp(u(), -0.2, 0.6) * (u() < 0.6),
            "tint_r": 1 + warmth,
            "tint_g": np.ones_like(warmth),
            "tint_b": 1 - warmth,
            "n_spots": np.floor(lerp(u(), 0.0, 4.999)),
        }
    )
    # The two cameras are alike but not equal: gain, white balance, gamma, blur, vignetting.
    gain, gamma, blur = loguniform(u(), 0.8, 1.25), loguniform(u(), 0.8, 1.25), lerp(u(), 0.25, 1.1)
    balance = [lerp(u(), 0.94, 1.06) for _ in range(3)]
    shot, read = loguniform(u(), 1e-4, 1e-2), loguniform(u(), 0.002, 0.03)
    for view in ("left", "right"):
        differs = view == "right"
        items[f"{view}_gain"] = gain * (loguniform(u(), 0.85, 1.18) if differs else 1.0)
        items[f"{view}_gamma"] = gamma * (loguniform(u(), 0.9, 1.1) if differs else 1.0)
        items[f"{view}_blur"] = blur * (loguniform(u(), 0.8, 1.25) if differs else 1.0)
        for channel, value in zip("rgb", balance, strict=True):
            items[f"{view}_balance_{channel}"] = value * (lerp(u(), 0.96, 1.04) if differs else 1.0)
        items[f"{view}_offset"] = lerp(u(), -0.02, 0.02)
        items[f"{view}_vignette"] = lerp(u(), 0.0, 0.35)
        items[f"{view}_shot_noise"] = shot
        items[f"{view}_read_noise"] = read
    return items


def _hsv_to_rgb(hue, saturation, value):
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = np.remainder(n + hue * 6.0, 6.0)
        channels.append(value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return channels


def sample_materials(u, items: dict, geometry: dict) -> dict[str, np.ndarray]:
    """Texture and colour of every layer, ``(B, K)`` each.

    Args:
        u: :class:`~.synthetic_scene.Draws` over a ``(B, K, N)`` uniform tensor.
        items: per-scene settings from :func:`sample_items`.
        geometry: shapes and disparity functions of the layers.
    """
    kind_draw = u()
    background = geometry["kind"] < 2  # wall and ground: mostly natural textures, rarely patterns
    kind = np.where(background, choice(kind_draw, BACKGROUND_KIND_PROBS), choice(kind_draw, TEXTURE_KIND_PROBS))
    second = choice(u(), TEXTURE_KIND_PROBS)
    second_weight = np.where(u() < 0.3, lerp(u(), 0.15, 0.5), np.zeros_like(u.uniform[..., 0]))
    weights = {}
    for index, name in enumerate(("flat", "grad", "noise", "fine", "stripe", "pattern")):
        weights[name] = (kind == index) * (1 - second_weight) + (second == index) * second_weight
    weights["noise"] = weights["noise"] + weights.pop("fine")  # fine noise = noise at a fine scale

    # Coarse noise: pink, smooth or ridged at 0.03..0.6 texels per pixel; fine: grain at ~1.
    coarse_channel = np.array([PINK, SMOOTH, RIDGED], dtype=np.float64)[choice(u(), (0.5, 0.25, 0.25))]
    fine = kind == FINE_NOISE
    noise_channel = np.where(fine, np.where(u() < 0.7, float(GRAIN), float(PINK)), coarse_channel)
    # At most ~0.8 texels per pixel: finer noise would alias (and differently in the two views).
    noise_scale = np.where(fine, loguniform(u(), 0.35, 0.8), loguniform(u(), 0.03, 0.5))

    # Colours: a scene-wide dominant hue for many surfaces, low saturation more often than high.
    coherent = u() < items["palette_coherence"][:, None]
    hue = np.where(coherent, items["palette_hue"][:, None] + lerp(u(), -0.06, 0.06), u())
    saturation = u() ** 1.8 * 0.85
    value = lerp(u(), 0.12, 0.95)
    contrast = loguniform(u(), 0.03, 0.75) * np.where(u() < 0.5, -1.0, 1.0)
    value2 = np.clip(value + contrast, 0.02, 1.0)
    value2 = np.clip(np.where(abs(value2 - value) < 0.02, value - contrast, value2), 0.0, 1.0)
    hue2 = np.where(u() < 0.25, hue + lerp(u(), 0.15, 0.85), hue + lerp(u(), -0.04, 0.04))
    saturation2 = np.clip(saturation * lerp(u(), 0.5, 1.5), 0.0, 1.0)
    c0, c1 = _hsv_to_rgb(hue, saturation, value), _hsv_to_rgb(hue2, saturation2, value2)

    texture_angle = np.where(u() < 0.5, (u() < 0.5) * (math.pi / 2), lerp(u(), 0.0, math.pi))
    tex_cos, tex_sin = np.cos(texture_angle), np.sin(texture_angle)
    stripe_freq = 1.0 / loguniform(u(), 3.0, 60.0)
    pattern_freq_u = 1.0 / loguniform(u(), 4.0, 64.0)
    pattern_freq_v = pattern_freq_u / loguniform(u(), 0.5, 2.0)
    detail_scale = loguniform(u(), 0.4, 0.8)
    checker = u() < 0.5
    gradient_angle = lerp(u(), 0.0, 2 * math.pi)
    detail = loguniform(u(), 0.004, 0.12) * np.where(kind == FLAT, 0.15, 1.0)

    marked = (u() < 0.12) & (geometry["kind"] >= 2)  # on objects: signs, labels, pages
    mark_value = np.where(value > 0.5, lerp(u(), 0.02, 0.2), lerp(u(), 0.8, 1.0))
    mark_rgb = _hsv_to_rgb(hue + 0.5 * (u() < 0.3), saturation * (u() < 0.3), mark_value)
    mark_angle = np.where(u() < 0.8, lerp(u(), -0.1, 0.1), lerp(u(), 0.0, math.pi))

    # Texture coordinates follow perspective: surface distance ~ 1 / disparity (see texture module).
    ground = geometry["kind"] == 1
    d_ref = np.where(ground, 0.5 * geometry["d_max"], geometry["d_c"])

    tint = [items[f"tint_{c}"][:, None] for c in "rgb"]
    return {
        **{f"w_{name}": weight for name, weight in weights.items()},
        # Texture coordinates are affine in the (perspective-corrected) surface offsets (sx, sy): the
        # texture rotation and each component's scale are folded into one 2x2 matrix per component
        # (for noise and grain a scaled rotation, (u, v) = (ux sx + uy sy, -uy sx + ux sy)).
        "noise_channel": noise_channel,
        "noise_ux": noise_scale * tex_cos,
        "noise_uy": noise_scale * tex_sin,
        "noise_ou": lerp(u(), 0.0, 1024.0),
        "noise_ov": lerp(u(), 0.0, 1024.0),
        # mix = w_flat / 2 + w_grad * gradient + detail * (2 grain - 1): the constant terms in one column.
        "mix_base": weights["flat"] * 0.5 - detail,
        "detail2": 2.0 * detail,
        "grain_ux": detail_scale * tex_cos,
        "grain_uy": detail_scale * tex_sin,
        "grain_ou": lerp(u(), 0.0, 1024.0),
        "grain_ov": lerp(u(), 0.0, 1024.0),
        # perspective = persp_ref / max(d, persp_floor): d_ref / d, at most 4; 1 for far layers.
        "persp_ref": np.where(d_ref > 0.5, d_ref, 1e9),
        "persp_floor": np.where(d_ref > 0.5, 0.25 * d_ref, 1e9),
        "stripe_freq": stripe_freq,
        "stripe_x": stripe_freq * tex_cos,
        "stripe_y": stripe_freq * tex_sin,
        "stripe_phase": u(),
        "stripe_duty": lerp(u(), 0.2, 0.8),
        "stripe_soft": (u() < 0.35).astype(np.float64),
        "pattern_freq_u": pattern_freq_u,
        "pattern_freq_v": pattern_freq_v,
        "pattern_ux": pattern_freq_u * tex_cos,
        "pattern_uy": pattern_freq_u * tex_sin,
        "pattern_vx": -pattern_freq_v * tex_sin,
        "pattern_vy": pattern_freq_v * tex_cos,
        "pattern_duty": np.where(checker, 0.5, lerp(u(), 0.08, 0.3)),
        "pattern_checker": checker.astype(np.float64),
        "pattern_brick": np.where(~checker & (u() < 0.5), 0.5, 0.0),
        "grad_x": np.cos(gradient_angle) / loguniform(u(), 40.0, 900.0),
        "grad_y": np.sin(gradient_angle) / loguniform(u(), 40.0, 900.0),
        # The scene's light tint is folded into every colour here (the renderer mixes colours
        # linearly, so tinting the mixture or its ingredients is the same).
        **{f"c0_{c}": c0[i] * tint[i] for i, c in enumerate("rgb")},
        **{f"c1_{c}": c1[i] * tint[i] for i, c in enumerate("rgb")},
        "mark_on": marked.astype(np.float64),
        # Which optional components the layer uses, one bit each (see synthetic_texture.USES_*).
        "uses": (weights["noise"] > 0) * 1.0
        + (weights["stripe"] > 0) * 2.0
        + (weights["pattern"] > 0) * 4.0
        + marked * 8.0
        + (weights["grad"] > 0) * 16.0,
        "mark_cell": loguniform(u(), 5.0, 16.0),
        "mark_density": lerp(u(), 0.4, 0.9),
        "mark_seed": np.floor(u() * 2**20),
        "mark_cos": np.cos(mark_angle),
        "mark_sin": np.sin(mark_angle),
        **{f"mark_{c}": mark_rgb[i] * tint[i] for i, c in enumerate("rgb")},
    }


def sample_spots(u, layers: dict[str, np.ndarray], items: dict) -> dict[str, np.ndarray]:
    """Specular spots ``(B, S)``: a highlight on a layer that sits at a different disparity than it.

    A highlight is the reflection of a light source, so it does not move with the surface between
    the views: its right-view position is shifted by the surface disparity plus ``shift`` pixels.
    """
    batch, num_spots = u.uniform.shape[:2]
    n_objects = items["n_objects"][:, None]
    first_object = 2
    layer = (first_object + np.floor(u() * n_objects)).astype(np.int64)
    rows = np.broadcast_to(np.arange(batch)[:, None], (batch, num_spots))
    p = {name: layers[name][rows, layer].astype(np.float64) for name in ("box_x0", "box_x1", "box_y0", "box_y1")}
    x = lerp(u(), p["box_x0"], p["box_x1"])
    y = lerp(u(), p["box_y0"], p["box_y1"])
    g = {
        name: layers[name][rows, layer].astype(np.float64) for name in ("cx", "cy", "d_c", "d_a", "d_b", "d_qx", "d_qy")
    }
    dx, dy = x - g["cx"], y - g["cy"]
    d = g["d_c"] + g["d_a"] * dx + g["d_b"] * dy + g["d_qx"] * dx * dx + g["d_qy"] * dy * dy
    shift = np.where(u() < 0.5, -1.0, 1.0) * lerp(u(), 1.0, 10.0)
    intensity = lerp(u(), 0.3, 1.0)
    spots = {
        "active": (np.arange(num_spots)[None] < items["n_spots"][:, None]).astype(np.float64),
        "layer": layer.astype(np.float64),
        "x_left": x,
        "x_right": x - d - shift,
        "y": y,
        "sigma": loguniform(u(), 1.5, 12.0),
        "intensity_left": intensity,
        "intensity_right": intensity * lerp(u(), 0.5, 1.5),
    }
    return spots
