"""Left-right consistency: occlusion masks from ground truth, the flipped-pair trick, lr_check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import rtstereo
from rtstereo.confidence import (
    confidence_from_difference,
    consistency_mask,
    lr_check,
    lr_difference_px,
    right_disparity,
)
from rtstereo.errors import InputError
from rtstereo.io.disparity import read_disparity
from rtstereo.io.images import read_grey
from rtstereo.types import StereoPair


def _square_scene(height=40, width=80, background_px=4.0, square_px=12.0, seed=0):
    """Random texture with a nearer square: the strip left of it is occluded in the right view."""
    rng = np.random.default_rng(seed)
    far = rng.integers(0, 256, (height, width + 32, 3), dtype=np.uint8)
    near = rng.integers(0, 256, (height, width + 32, 3), dtype=np.uint8)
    rows, cols = slice(10, 30), slice(40, 60)
    x = np.arange(width)
    left = far[:, x + int(background_px)].copy()
    right = far[:, x + 2 * int(background_px)].copy()  # right x shows the background point at left x + d
    left[rows, cols] = near[rows, cols]
    right[rows, 40 - int(square_px) : 60 - int(square_px)] = near[rows, cols]
    disparity_left = np.full((height, width), background_px, np.float32)
    disparity_left[rows, cols] = square_px
    return left, right, disparity_left


# --- feature --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scene", ["cones", "teddy"])
def test_ground_truth_left_right_check_finds_the_occlusions(shared, scene):
    """Middlebury 2003 has ground truth for both views: the check must reproduce the non-occluded mask."""
    folder = shared("data", "real", "middlebury2003", scene)
    left, right = read_disparity(folder / "disp2.png", scale=4), read_disparity(folder / "disp6.png", scale=4)
    nonocc = read_grey(folder / "eval_masks" / "nonocc.png") == 255
    known = read_grey(folder / "eval_masks" / "all.png") == 255
    mask = consistency_mask(left, right, 1.0)
    agreement = (mask[known] == nonocc[known]).mean()
    occluded_found = (~mask[known & ~nonocc]).mean()
    visible_kept = mask[known & nonocc].mean()
    # measured: cones 98.7 % / 92.7 % / 99.5 %, teddy 99.2 % / 95.7 % / 99.6 %
    assert agreement > 0.97 and occluded_found > 0.9 and visible_kept > 0.99, (
        agreement,
        occluded_found,
        visible_kept,
    )


def test_right_disparity_from_the_flipped_pair_and_the_occluded_strip():
    left, right, truth = _square_scene()
    predictor = rtstereo.load("sgbm", max_disp=16)
    disparity_right = right_disparity(predictor, left, right)
    assert np.nanmedian(disparity_right[:, 20:]) == pytest.approx(4.0, abs=0.25)  # positive, right view pixels
    result, mask = lr_check(predictor, StereoPair(left, right))
    # The background strip just left of the square (x = 40-12+4 .. 40) is hidden from the right camera.
    strip = mask[12:28, 34:38]
    assert strip.mean() < 0.2, strip.mean()
    assert mask[12:28, 44:56].mean() > 0.9 and mask[2:8, 20:70].mean() > 0.9
    assert np.isnan(result.disparity_px[~mask]).all()
    assert "lr_check" in result.timings_ms and result.settings["lr_max_diff_px"] == 1.0
    assert result.timings_ms["total"] >= result.timings_ms["lr_check"]


def test_lr_difference_handles_the_border_and_holes():
    left = np.array([[1.0, 1.0, 1.0, 5.0, np.nan]], np.float32)
    right = np.array([[1.0, np.nan, 1.0, 1.0, 1.0]], np.float32)
    difference = lr_difference_px(left, right)
    assert np.isnan(difference[0, 0])  # matches x = -1: outside the right image
    assert difference[0, 1] == 0 and difference[0, 2] == 0  # a hole at one of the two neighbours is skipped
    assert np.isnan(difference[0, 3])  # matches x = -2
    assert np.isnan(difference[0, 4])
    # a match landing exactly on the last column is inside: x = 2 with d = 0.5 lands at 1.5; x = 3, d = 0 at 3
    left = np.array([[1.0, 1.0, 0.5, 0.0]], np.float32)
    right = np.array([[1.0, 1.0, 0.75, 0.25]], np.float32)
    np.testing.assert_allclose(lr_difference_px(left, right), [[np.nan, 0.0, 0.25, 0.25]])


def test_soft_confidence():
    confidence = confidence_from_difference(np.array([0.0, 1.0, np.nan]), 1.0)
    np.testing.assert_allclose(confidence, [1.0, np.exp(-1), 0.0], rtol=1e-6)
    np.testing.assert_allclose(confidence_from_difference(np.array([1.0, 4.0]), 2.0), np.exp([-0.5, -2.0]), rtol=1e-6)


def test_the_mask_keeps_a_disagreement_of_exactly_the_threshold():
    left = np.full((1, 6), 2.0, np.float32)
    right = np.array([[3.0, 3.0, 3.0, 3.5, 3.5, 3.5]], np.float32)  # left x matches right x - 2
    # differences: outside, outside, 1, 1, 1, 1.5
    assert consistency_mask(left, right, 1.0).tolist() == [[False, False, True, True, True, False]]
    assert consistency_mask(left, right, 1.5).tolist() == [[False, False, True, True, True, True]]


def test_lr_check_adds_its_time_to_the_total_of_the_result_it_is_given(textured_pair):
    predictor = rtstereo.load("sgbm", max_disp=16)
    pair = StereoPair(*textured_pair)
    given = dataclasses.replace(predictor.predict_pair(pair), timings_ms={"inference": 3.0, "total": 5.0})
    checked, _ = lr_check(predictor, pair, given)
    assert checked.timings_ms["inference"] == 3.0
    assert checked.timings_ms["total"] == pytest.approx(5.0 + checked.timings_ms["lr_check"])


# --- exceptions -----------------------------------------------------------------------------------


def test_confidence_errors():
    with pytest.raises(InputError, match="one size"):
        lr_difference_px(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match="max_diff_px must be > 0"):
        consistency_mask(np.zeros((2, 2)), np.zeros((2, 2)), 0)
    with pytest.raises(InputError, match="scale_px must be > 0"):
        confidence_from_difference(np.zeros(2), -1)


def test_integer_maps_are_refused_not_compared_as_pixels():
    """OpenCV's StereoSGBM gives int16 d * 16: two such maps moved each match 16 times too far and judged against a
    threshold of 1/16 px, and the check's mask came back without a word."""
    left_px = np.full((2, 40), 2.0, np.float32)
    right_px = np.full((2, 40), 2.5, np.float32)
    assert consistency_mask(left_px, right_px, 1.0)[:, 2:].all()  # in pixels, 0.5 apart: consistent
    fixed = [(m * 16).astype(np.int16) for m in (left_px, right_px)]
    with pytest.raises(InputError) as refused:
        consistency_mask(*fixed, 1.0)
    assert str(refused.value) == (
        "left disparity: expected a float (H, W) array of pixels, got int16; OpenCV's StereoBM and StereoSGBM give "
        "int16 d * 16 and 16-bit disparity PNGs d * 256 (rtstereo.io.read_disparity reads them in pixels): divide by "
        "that first, or for a map of whole pixels, .astype(np.float32)"
    )
    with pytest.raises(InputError, match=r"^right disparity: expected a float \(H, W\) array of pixels, got uint16"):
        lr_difference_px(left_px, right_px.astype(np.uint16))


@pytest.mark.parametrize(
    ("difference", "scale", "match"),
    [
        # inf gave every pixel a confidence of 1, whatever its disagreement
        (np.array([1.0, 4.0]), float("inf"), r"scale_px must be > 0 pixels \(a finite number\), got inf"),
        (np.zeros(2), float("nan"), "scale_px must be > 0 pixels"),
        (np.zeros(2), "1", "scale_px: expected a number of pixels > 0, got str '1'"),  # was a bare TypeError
        (np.zeros(2), True, "scale_px: expected .* got bool"),
        ("abc", 1.0, "difference_px: expected a float array of pixels, got str 'abc'"),  # was a bare ValueError
        # a signed difference: exp(2) = 7.39 came out as a "confidence in 0..1"
        (np.array([-2.0, 0.0, np.nan]), 1.0, "expected differences >= 0 pixels .* got -2: pass np.abs"),
    ],
)
def test_soft_confidence_refuses_what_would_leave_0_to_1(difference, scale, match):
    with pytest.raises(InputError, match=match):
        confidence_from_difference(difference, scale)


def test_lr_check_refuses_an_infinite_threshold_before_the_model_runs():
    class NoModel:
        def predict_pair(self, pair):
            raise AssertionError("the model ran before the threshold was checked")

    pair = StereoPair(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    for value in (float("inf"), float("nan"), 0.0):  # inf was taken: "lr_max_diff_px": Infinity in the JSON
        with pytest.raises(InputError, match="max_diff_px must be > 0 pixels"):
            lr_check(NoModel(), pair, max_diff_px=value)


def test_lr_check_of_no_pair_or_no_result_is_an_input_error():
    """With a result given, a tuple as the pair failed with an AttributeError ('tuple' ... 'left')."""
    model = rtstereo.load("sgbm", max_disp=16)
    image = np.zeros((16, 32, 3), np.uint8)
    result = model.predict(image, image)
    with pytest.raises(InputError, match=r"pair: expected a StereoPair, got tuple: lr_check\(model, StereoPair"):
        lr_check(model, (image, image), result)
    with pytest.raises(InputError, match="result: expected a DisparityResult of the pair \\(or None\\), got ndarray"):
        lr_check(model, StereoPair(image, image), result.disparity_px)
    # a model's name (the README's lr_check(model, ...) with model = "default") failed with an AttributeError
    with pytest.raises(InputError, match="predictor: expected a model from rtstereo.load\\(...\\), got str"):
        lr_check("sgbm", StereoPair(image, image))


def test_a_threshold_of_the_wrong_type_is_an_input_error():
    """math.isfinite's bare TypeError ("must be real number, not str") before."""
    model = rtstereo.load("sgbm", max_disp=16)
    pair = StereoPair(np.zeros((20, 40, 3), np.uint8), np.zeros((20, 40, 3), np.uint8))
    with pytest.raises(InputError, match="max_diff_px: expected a number of pixels > 0, got str '1'"):
        lr_check(model, pair, max_diff_px="1")
    with pytest.raises(InputError, match="max_diff_px: expected a number of pixels > 0, got NoneType"):
        consistency_mask(np.zeros((2, 2)), np.zeros((2, 2)), None)
