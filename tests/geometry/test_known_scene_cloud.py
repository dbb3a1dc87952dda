"""Point clouds of a generated scene with known geometry: a ground plane, a back wall and a box.

The disparity is rendered analytically by casting one ray per pixel from a known camera; the cloud
built from it must lie on the true surfaces. A blurred disparity (as networks produce across depth
edges) must lose its flying pixels to the cleaning step, and disparity noise must give the depth
error that the stereo error model predicts.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtstereo.geometry import depth_from_disparity, disparity_from_depth, point_cloud
from rtstereo.types import Calibration

CAL = Calibration(
    fx_px=400.0,
    fy_px=400.0,
    cx0_px=159.5,
    cx1_px=161.5,
    cy_px=119.5,
    baseline_m=0.12,
    width_px=320,
    height_px=240,
)
WALL_Z_M = 6.0
GROUND_Y_M = 1.2  # the camera is 1.2 m above the ground (y points down)
BOX_MIN_M = np.array([-0.5, 0.4, 2.5])
BOX_MAX_M = np.array([0.3, 1.2, 3.3])
SURFACES = ("wall", "ground", "box")


def render_scene(cal: Calibration = CAL) -> tuple[np.ndarray, np.ndarray]:
    """Depth (metres) and surface id of every pixel, by ray casting (rays have z = 1, so t = depth)."""
    v, u = np.mgrid[0 : cal.height_px, 0 : cal.width_px].astype(np.float64)
    ray = np.stack([(u - cal.cx0_px) / cal.fx_px, (v - cal.cy_px) / cal.fy_px, np.ones_like(u)], axis=-1)
    hits = np.full(u.shape + (3,), np.inf)
    hits[..., 0] = WALL_Z_M
    with np.errstate(divide="ignore", invalid="ignore"):
        hits[..., 1] = np.where(ray[..., 1] > 0, GROUND_Y_M / ray[..., 1], np.inf)
        # Slab test for the axis-aligned box.
        t1, t2 = BOX_MIN_M / ray, BOX_MAX_M / ray
    t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
    hits[..., 2] = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
    surface = hits.argmin(axis=-1)
    return hits.min(axis=-1), surface


def distance_to_surface(points_m: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Distance of each point to the true surface of its pixel."""
    distance = np.empty(len(points_m))
    wall, ground, box = (surface == i for i in range(3))
    distance[wall] = np.abs(points_m[wall, 2] - WALL_Z_M)
    distance[ground] = np.abs(points_m[ground, 1] - GROUND_Y_M)
    # Box: distance to the box surface (points on its visible faces are on or outside it).
    outside = np.maximum(np.maximum(BOX_MIN_M - points_m[box], points_m[box] - BOX_MAX_M), 0)
    inside = np.minimum(points_m[box] - BOX_MIN_M, BOX_MAX_M - points_m[box]).min(axis=1).clip(min=0)
    distance[box] = np.where(np.linalg.norm(outside, axis=1) > 0, np.linalg.norm(outside, axis=1), inside)
    return distance


@pytest.fixture(scope="module")
def scene():
    depth, surface = render_scene()
    return depth, surface, disparity_from_depth(depth, CAL)


def test_the_scene_has_all_three_surfaces(scene):
    depth, surface, disparity = scene
    fractions = np.bincount(surface.ravel(), minlength=3) / surface.size
    assert (fractions > 0.05).all(), dict(zip(SURFACES, fractions))
    assert np.isfinite(depth).all() and np.nanmin(disparity) > 0


def test_exact_disparity_gives_points_on_the_true_surfaces(scene):
    depth, surface, disparity = scene
    cloud = point_cloud(disparity, CAL, max_jump_rel=None)
    assert len(cloud) == disparity.size
    error = distance_to_surface(cloud.points_m.astype(np.float64), surface.ravel()[cloud.pixel_index])
    assert error.max() < 1e-5 * WALL_Z_M, error.max()  # float32 rounding only
    np.testing.assert_allclose(depth_from_disparity(disparity, CAL), depth, rtol=1e-5)


def test_blurred_edges_make_flying_pixels_that_the_cleaning_removes(scene):
    depth, surface, disparity = scene
    blurred = cv2.blur(disparity, (5, 5), borderType=cv2.BORDER_REPLICATE)  # a network's smooth edges
    raw = point_cloud(blurred, CAL, max_jump_rel=None)
    clean = point_cloud(blurred, CAL)  # default cleaning (10 % jump)
    surfaces = surface.ravel()
    raw_error = distance_to_surface(raw.points_m.astype(np.float64), surfaces[raw.pixel_index])
    clean_error = distance_to_surface(clean.points_m.astype(np.float64), surfaces[clean.pixel_index])
    # Flying points hang up to metres away from any surface; the cleaned cloud keeps to the surfaces
    # (the residue is the blur's bias at the ground/wall crease and box corners, centimetres).
    assert raw_error.max() > 1.0, raw_error.max()
    assert clean_error.max() < 0.05, clean_error.max()
    assert np.percentile(clean_error, 99) < 0.01, np.percentile(clean_error, 99)
    assert len(clean) > 0.9 * len(raw)


def test_disparity_noise_gives_the_depth_error_of_the_stereo_error_model(scene):
    depth, surface, disparity = scene
    sigma_px = 0.25
    noisy = disparity + np.random.default_rng(0).normal(0, sigma_px, disparity.shape).astype(np.float32)
    wall = surface == 0
    error = depth_from_disparity(noisy, CAL)[wall] - depth[wall]
    # dZ = Z^2 / (fx * B) * dd: at 6 m, 0.25 px of disparity noise is 0.19 m of depth noise.
    predicted = WALL_Z_M**2 / (CAL.fx_px * CAL.baseline_m) * sigma_px
    assert np.sqrt(np.mean(error**2)) == pytest.approx(predicted, rel=0.1)


def test_max_depth_cut_drops_the_wall(scene):
    depth, surface, disparity = scene
    cloud = point_cloud(disparity, CAL, max_depth_m=5.0, max_jump_rel=None)
    assert cloud.points_m[:, 2].max() <= 5.0
    assert not (surface.ravel()[cloud.pixel_index] == 0).any()
