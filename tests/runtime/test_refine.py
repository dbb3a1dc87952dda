"""Edge refinement: neighbour propagation, occlusion fill, median, and the ``refine_edges`` setting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import rtstereo
from rtstereo.cli import main as rtstereo_cli
from rtstereo.errors import InputError
from rtstereo.models import PACKAGED_NETWORK
from rtstereo.models.sgbm import fill_holes_rowwise
from rtstereo.runtime.postprocess import BORDER_MARGIN_PX, fill_left_border
from rtstereo.runtime.refine import (
    NEIGHBOUR_OFFSETS,
    PhotometricCost,
    fill_occlusions,
    median_valid,
    occluded,
    propagate_neighbours,
    refine_edges,
    shift_into,
    warp_rows,
)

BACK, FRONT = 4.0, 12.0  # disparities of the step-edge scene


def step_edge_scene(height: int = 40, width: int = 96, x0: int = 40, x1: int = 70, seed: int = 3):
    """A textured square at disparity 12 in front of a textured plane at disparity 4.

    Returns the pair, the true disparity of the left view, and the columns of the square.
    """
    rng = np.random.default_rng(seed)
    back = rng.integers(0, 256, (height, width + 16, 3), dtype=np.uint8)
    front = rng.integers(0, 256, (height, width + 16, 3), dtype=np.uint8)
    cols = np.arange(width)
    in_front = (cols >= x0) & (cols < x1)
    left = np.where(in_front[None, :, None], front[:, :width], back[:, :width])
    # right column u shows what the left view shows at u + d: the square where u + 12 lies in it
    u_front = cols + int(FRONT)
    covered = (u_front >= x0) & (u_front < x1)
    right = np.where(covered[None, :, None], front[:, np.minimum(u_front, width + 15)], back[:, cols + int(BACK)])
    truth = np.where(in_front, FRONT, BACK).astype(np.float32)[None, :].repeat(height, axis=0)
    return np.ascontiguousarray(left), np.ascontiguousarray(right), truth, (x0, x1)


def test_shift_into_reads_offsets_with_the_edges_repeated():
    values = np.arange(7 * 9, dtype=np.float32).reshape(7, 9)
    out = np.empty_like(values)
    for dy in (-4, -2, 0, 2, 4):
        for dx in (-4, -2, 0, 2, 4):
            rows = np.clip(np.arange(7) + dy, 0, 6)
            cols = np.clip(np.arange(9) + dx, 0, 8)
            np.testing.assert_array_equal(shift_into(out, values, dy, dx), values[rows][:, cols])


def test_shifts_as_large_as_the_map_and_maps_smaller_than_the_neighbourhood_work():
    values = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert shift_into(np.empty_like(values), values, 4, -4).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    left = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    out = refine_edges(left, left, np.full((3, 5), 0.5, np.float32))
    assert out.shape == (3, 5) and np.isfinite(out).all()


def test_the_true_disparity_costs_less_than_a_wrong_one():
    left, right, truth, _ = step_edge_scene()
    cost = PhotometricCost(left, right)
    true_cost = cost(truth).copy()
    for wrong in (truth + 1.0, truth - 2.0, np.full_like(truth, 8.0)):
        assert np.median(cost(wrong)) > np.median(true_cost) + 20
    # sub-pixel disparities are compared by interpolation, not rounded
    assert np.median(cost(truth + 0.5)) > np.median(true_cost)


def test_a_fattened_edge_is_pulled_back_to_the_images_edge():
    left, right, truth, (x0, x1) = step_edge_scene()
    fattened = truth.copy()
    fattened[:, x1 : x1 + 3] = FRONT  # visible background that took the square's disparity
    fattened[:, x0 + 2 : x0 + 5] = BACK  # and the square's own edge lost to the background
    out = propagate_neighbours(PhotometricCost(left, right), fattened)
    inner = slice(3, -3)  # rows away from the top and bottom, where the window leaves the image
    np.testing.assert_array_equal(out[inner, x0 + 2 : x0 + 5], FRONT)
    # the band's first column still sees some of the square in its 3x3 window: most rows, not all
    assert (out[inner, x1 : x1 + 3] == BACK).mean() > 0.8
    visible = np.ones(truth.shape[1], bool)
    visible[x0 - int(FRONT - BACK) : x0] = False  # background the square hides in the right view
    wrong_before = (np.abs(fattened - truth)[inner][:, visible] > 0.5).mean()
    assert (np.abs(out - truth)[inner][:, visible] > 0.5).mean() < wrong_before / 4


def test_neighbours_outside_the_right_image_are_never_taken():
    left, right, _, _ = step_edge_scene()
    wrong = np.full(left.shape[:2], 2.0, np.float32)
    wrong[:, :12] = 30.0  # values whose match lies left of the right image
    out = propagate_neighbours(PhotometricCost(left, right), wrong)
    cols = np.arange(wrong.shape[1])
    taken = (out != wrong) & (cols[None, :] - out < BORDER_MARGIN_PX)
    assert not taken.any()


def test_a_pixel_takes_the_best_of_its_winning_neighbours_not_the_last():
    class DistanceCost:  # the cost of a disparity: 100 per pixel away from 5 px everywhere
        cols = np.arange(64, dtype=np.float32)[None, :]

        def __call__(self, disparity, finite=False):
            return np.abs(disparity - np.float32(5.0)) * np.float32(100.0)

    d = np.full((1, 64), 20.0, np.float32)  # cost 1500
    d[0, 40] = 0.0  # cost 500
    d[0, 42] = 5.0  # the neighbour 2 px right, asked first: cost 0
    d[0, 36] = 9.0  # 4 px left, asked later: cost 400, which beats the pixel's own 500 but not the 0 of 5 px
    assert propagate_neighbours(DistanceCost(), d, rounds=1)[0, 40] == 5.0


def test_every_neighbour_offset_is_two_or_four_pixels_along_one_axis():
    assert sorted(max(abs(dy), abs(dx)) for dy, dx in NEIGHBOUR_OFFSETS) == [2] * 4 + [4] * 4
    assert all(dy == 0 or dx == 0 for dy, dx in NEIGHBOUR_OFFSETS)


def test_occlusion_fill_gives_hidden_pixels_the_farther_neighbour():
    # a square at disparity 9 (pixels 4-5) in front of a plane at 5, its edge spread over pixels 2-3
    row = np.array([[5.0, 5.0, 6.0, 6.0, 9.0, 9.0, 5.0, 5.0]], np.float32)
    # matches x - d: -5, -4, -4, -3, -5, -4, 1, 2; pixels 1-3 match right of pixel 4's match
    assert occluded(row).tolist() == [[False, True, True, True, False, False, False, False]]
    assert fill_occlusions(row).tolist() == [[5.0, 5.0, 5.0, 5.0, 9.0, 9.0, 5.0, 5.0]]


def test_occlusion_fill_matches_the_rowwise_hole_filling_and_keeps_nan():
    rng = np.random.default_rng(1)
    for _ in range(10):
        d = rng.uniform(1, 20, (12, 40)).astype(np.float32)
        d[rng.random(d.shape) < 0.1] = np.nan
        expected = fill_holes_rowwise(np.where(occluded(d), np.nan, d))
        expected[np.isnan(d)] = np.nan
        np.testing.assert_array_equal(fill_occlusions(d), expected)
    assert not occluded(np.array([[np.nan, 1.0]], np.float32)).any()


def test_the_median_keeps_pixels_next_to_nan():
    d = np.arange(100, dtype=np.float32).reshape(10, 10) % 7
    d[5, 5] = np.nan
    out = median_valid(d)
    np.testing.assert_array_equal(out[3:8, 3:8], d[3:8, 3:8])  # the 5x5 around the hole
    assert np.isfinite(out).sum() == 99 and not np.array_equal(out, d)


def test_refine_edges_keeps_nan_and_checks_sizes():
    left, right, truth, _ = step_edge_scene()
    d = truth.copy()
    d[10:12, 20:30] = np.nan
    out = refine_edges(left, right, d)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(d))
    # ValueError before: the exception family's InputError (still a ValueError) names what was expected
    with pytest.raises(InputError, match="differ in size"):
        refine_edges(left, right, truth[:, :-1])
    with pytest.raises(InputError, match="expected two RGB images of one shape"):
        PhotometricCost(left, right[:, :-1])


def test_a_pair_wider_than_opencvs_remap_takes_is_costed_as_its_parts_are():
    """cv2.remap refuses a side of 32767 px or more: rtnet-v5 and the hybrid on an 8x40000 strip stopped with its
    assertion, a traceback. Such a pair is remapped in tiles, as OpenCV samples its parts."""
    rng = np.random.default_rng(0)
    height, width, shift = 6, 32800, 8
    base = rng.integers(0, 256, (height, width + shift, 3), dtype=np.uint8)
    left, right = base[:, :width], base[:, shift : shift + width]
    # in 1/32 px: the columns sampled are then exact in float32 far along the row too, as in its parts
    d = (shift + np.round(rng.normal(0.0, 1.5, (height, width)) * 32) / 32).astype(np.float32)
    whole = PhotometricCost(left, right)(d).copy()
    for start in (0, 16000, width - 1000):
        part = slice(start, start + 1000)
        alone = PhotometricCost(np.ascontiguousarray(left[:, part]), np.ascontiguousarray(right[:, part]))(d[:, part])
        # where the part samples only itself (its derivative and window end at its edges)
        inside = slice(0 if start == 0 else 20, 1000 if start + 1000 == width else 980)
        np.testing.assert_array_equal(whole[:, part][:, inside], alone[:, inside])
    # a tall grey view (the hybrid's check of SGBM's matches warps grey levels), row by row as OpenCV does its parts
    tall = rng.integers(0, 256, (width, 5), dtype=np.uint8)
    map_x = (np.arange(5, dtype=np.float32) - rng.random((width, 5), dtype=np.float32) * 3).astype(np.float32)
    rows = np.repeat(np.arange(width, dtype=np.float32)[:, None], 5, axis=1)
    warped = warp_rows(tall, map_x, rows)
    band = slice(20000, 20500)
    opencv = cv2.remap(tall[band], map_x[band], rows[band] - 20000, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(warped[band], opencv)


def test_refine_edges_with_a_cost_made_beforehand_gives_the_same_map():
    left, right, truth, _ = step_edge_scene()
    d = truth + np.random.default_rng(1).normal(0.0, 1.5, truth.shape).astype(np.float32)
    cost = PhotometricCost(left, right)
    cost(truth)  # its buffers hold another map's cost: they are overwritten
    np.testing.assert_array_equal(refine_edges(left, right, d, cost), refine_edges(left, right, d))
    with pytest.raises(InputError, match="photometric cost is of"):
        refine_edges(left[:, :-1], right[:, :-1], d[:, :-1], cost)


def test_packaged_network_refines_by_default_and_the_setting_turns_it_off(textured_pair):
    left, right = textured_pair
    on = rtstereo.load(PACKAGED_NETWORK).predict(left, right)
    off = rtstereo.load(PACKAGED_NETWORK, refine_edges=False).predict(left, right)
    assert on.settings["refine_edges"] is True and "refine_edges" not in off.settings
    np.testing.assert_array_equal(on.disparity_px, refine_edges(left, right, off.disparity_px))


def test_other_models_refine_only_when_asked(textured_pair):
    left, right = textured_pair
    raw = rtstereo.load("sgbm", max_disp=16)
    assert raw.refine_edges is False
    asked = rtstereo.load("sgbm", max_disp=16, refine_edges="yes")
    expected = refine_edges(left, right, raw.predict(left, right).disparity_px)
    np.testing.assert_array_equal(asked.predict(left, right).disparity_px, expected)
    with pytest.raises(InputError, match="refine_edges"):
        rtstereo.load("sgbm", refine_edges="sometimes")


def test_models_lists_the_setting(capsys):
    assert rtstereo_cli(["models", PACKAGED_NETWORK]) == 0
    assert "refine_edges = True" in capsys.readouterr().out


def test_left_border_fill_then_refinement_is_what_the_predictor_does(textured_pair):
    left, right = textured_pair
    raw = rtstereo.load(PACKAGED_NETWORK, fill_left_border=False, refine_edges=False).predict(left, right)
    full = rtstereo.load(PACKAGED_NETWORK).predict(left, right)
    expected = refine_edges(left, right, fill_left_border(raw.disparity_px))
    np.testing.assert_array_equal(full.disparity_px, expected)
