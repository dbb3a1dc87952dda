"""Disparity metrics (EPE, bad-N, D1) on tiny arrays whose values are worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rtstereo.errors import InputError
from rtstereo.metrics import BAD_THRESHOLDS_PX, bad_key, disparity_metrics, mean_metrics

NAN = np.nan
KEYS = {"epe", "bad-0.5", "bad-1", "bad-2", "bad-3", "bad-4", "d1", "density", "pixels"}


def test_hand_computed_metrics():
    gt = np.array([[10, 10, 10, 50], [100, 100, 2, 0]], np.float32)  # gt 0 = unknown: not scored
    pred = np.array([[10, 10.5, 10.75, 52.5], [104, 107, NAN, 5]], np.float32)
    # errors on the 7 scored pixels: 0, 0.5, 0.75, 2.5, 4, 7, and 2 for the missing prediction (as if 0)

    m = disparity_metrics(pred, gt)

    assert set(m) == KEYS
    assert m["pixels"] == 7
    assert m["epe"] == pytest.approx(16.75 / 7)
    assert m["bad-0.5"] == pytest.approx(100 * 5 / 7)  # 0.75, 2.5, 4, 7, missing
    assert m["bad-1"] == pytest.approx(100 * 4 / 7)  # 2.5, 4, 7, missing
    assert m["bad-2"] == pytest.approx(100 * 4 / 7)
    assert m["bad-3"] == pytest.approx(100 * 3 / 7)  # 4, 7, missing
    assert m["bad-4"] == pytest.approx(100 * 2 / 7)  # 7, missing
    assert m["d1"] == pytest.approx(100 * 2 / 7)  # 4 px is under 5 % of 100 px: not a D1 outlier
    assert m["density"] == pytest.approx(100 * 6 / 7)


@pytest.mark.parametrize("threshold", BAD_THRESHOLDS_PX)
def test_bad_n_counts_errors_strictly_above_n(threshold):
    gt = np.full((1, 2), 20.0, np.float32)
    pred = np.array([[20 + threshold, 20 - threshold - 0.125]], np.float32)

    m = disparity_metrics(pred, gt)

    assert m[bad_key(threshold)] == 50.0


@pytest.mark.parametrize(
    ("gt_px", "error_px", "is_outlier"),
    [(100.0, 4.0, False), (10.0, 4.0, True), (40.0, 2.5, False), (40.0, 3.5, True)],
    ids=["under-5-percent", "over-both", "under-3-px", "over-3-px-and-5-percent"],
)
def test_d1_needs_both_three_px_and_five_percent(gt_px, error_px, is_outlier):
    gt = np.full((1, 1), gt_px, np.float32)

    m = disparity_metrics(gt - error_px, gt)

    assert m["d1"] == (100.0 if is_outlier else 0.0)


def test_unknown_ground_truth_is_not_scored():
    gt = np.array([[NAN, np.inf, 0.0, -3.0, 8.0]], np.float32)
    pred = np.full_like(gt, 9.0)

    m = disparity_metrics(pred, gt)

    assert m["pixels"] == 1 and m["epe"] == 1.0 and m["bad-0.5"] == 100.0


def test_mask_restricts_the_region():
    gt = np.full((2, 2), 10.0, np.float32)
    pred = np.array([[10, 10], [20, 20]], np.float32)
    top = np.array([[True, True], [False, False]])

    assert disparity_metrics(pred, gt, mask=top)["epe"] == 0.0
    assert disparity_metrics(pred, gt, mask=~top)["epe"] == 10.0
    assert disparity_metrics(pred, gt, mask=top.astype(np.uint8))["pixels"] == 2  # 0/1 masks work too
    assert disparity_metrics(pred, gt)["epe"] == 5.0


@pytest.mark.parametrize(
    ("mask", "values"),
    [
        (np.array([[255, 255], [128, 0]], np.uint8), "128, 255"),  # Middlebury's mask0nocc.png as read
        (np.array([[0.9, 0.2], [0.0, 0.0]], np.float32), "0.2, 0.9"),  # a soft confidence
    ],
)
def test_a_mask_of_other_values_than_0_and_1_is_refused(mask, values):
    """Cast to bool, 128 (occluded) counted as non-occluded: noc scores equal to all-pixel ones, unsaid."""
    gt = np.full((2, 2), 10.0, np.float32)
    pred = np.array([[10, 10], [20, 20]], np.float32)

    with pytest.raises(InputError, match=rf"mask: expected bool .* with the values {values}: make it bool first"):
        disparity_metrics(pred, gt, mask=mask)
    with pytest.raises(InputError, match="mask: expected bool .* got <U1"):
        disparity_metrics(pred, gt, mask=np.full((2, 2), "a"))


def test_missing_predictions_count_as_wrong():
    gt = np.full((2, 2), 6.0, np.float32)
    pred = np.array([[NAN, np.inf], [6.0, 6.0]], np.float32)

    m = disparity_metrics(pred, gt)

    assert m["density"] == 50.0
    assert m["epe"] == 3.0  # (6 + 6 + 0 + 0) / 4: missing pixels are scored as predicting 0
    for threshold in BAD_THRESHOLDS_PX:
        assert m[bad_key(threshold)] == 50.0
    assert m["d1"] == 50.0  # even where |0 - gt| would not be a D1 outlier (6 px > 3 px and > 5 %)


def test_no_prediction_at_all():
    gt = np.full((2, 3), 2.0, np.float32)  # |0 - 2| = 2 px is under 3 px, yet every pixel is an outlier

    m = disparity_metrics(np.full_like(gt, NAN), gt)

    assert (m["density"], m["d1"], m["bad-4"], m["epe"]) == (0.0, 100.0, 100.0, 2.0)


@pytest.mark.parametrize("case", ["no-valid-gt", "empty-mask"])
def test_empty_region_gives_nan(case):
    gt = np.full((2, 2), NAN if case == "no-valid-gt" else 5.0, np.float32)
    mask = np.zeros((2, 2), bool) if case == "empty-mask" else None

    m = disparity_metrics(np.ones((2, 2), np.float32), gt, mask=mask)

    assert set(m) == KEYS and m["pixels"] == 0
    assert all(math.isnan(v) for k, v in m.items() if k != "pixels")


def test_shape_mismatch_raises():
    with pytest.raises(InputError, match=r"prediction \(2, 3\) and ground truth \(3, 2\) differ"):
        disparity_metrics(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"mask \(2, 2\) and ground truth \(2, 3\) differ"):
        disparity_metrics(np.zeros((2, 3)), np.ones((2, 3)), mask=np.ones((2, 2), bool))


def test_bad_key_names():
    assert [bad_key(t) for t in BAD_THRESHOLDS_PX] == ["bad-0.5", "bad-1", "bad-2", "bad-3", "bad-4"]


def test_mean_metrics_weighs_scenes_equally_and_skips_nan():
    big = disparity_metrics(np.full((10, 10), 11.0, np.float32), np.full((10, 10), 10.0, np.float32))
    small = disparity_metrics(np.full((1, 1), 13.0, np.float32), np.full((1, 1), 10.0, np.float32))
    empty = disparity_metrics(np.ones((1, 1), np.float32), np.full((1, 1), NAN, np.float32))

    mean = mean_metrics([big, small, empty])

    assert "pixels" not in mean and set(mean) == KEYS - {"pixels"}
    assert mean["epe"] == 2.0  # (1 + 3) / 2 scenes, not weighted by the 100 vs 1 pixels
    assert mean["bad-2"] == 50.0 and mean["d1"] == 0.0 and mean["density"] == 100.0


def test_mean_metrics_all_nan_key_and_no_rows():
    mean = mean_metrics([{"epe": NAN, "d1": 1.0}, {"epe": NAN, "d1": 3.0}])

    assert math.isnan(mean["epe"]) and mean["d1"] == 2.0
    assert mean_metrics([]) == {}


def test_mean_metrics_covers_keys_the_first_scene_lacks_and_no_pixel_counts():
    no_mask = {"epe": 1.0, "pixels": 10}  # e.g. a SceneFlow scene first, then KITTI with its noc mask
    masked = {"epe": 3.0, "noc/epe": 2.0, "noc/d1": 5.0, "pixels": 10, "noc/pixels": 8}

    mean = mean_metrics([no_mask, masked])

    assert mean == {"epe": 2.0, "noc/epe": 2.0, "noc/d1": 5.0}


def test_maps_of_the_wrong_type_are_input_errors():
    """numpy's bare ValueError ("could not convert string to float") before."""
    with pytest.raises(InputError, match=r"prediction: expected a float \(H, W\) array of pixels, got str 'a.pfm'"):
        disparity_metrics("a.pfm", np.ones((2, 2)))
    with pytest.raises(InputError, match="ground truth: expected .* got NoneType None"):
        disparity_metrics(np.ones((2, 2)), None)


def test_eval_and_predict_densities_count_what_their_descriptions_say():
    """eval's and compare's density counts a prediction of 0 or below as made, predict's counts it as invalid; the
    README presented them as one figure. The numbers stay; the README and eval's JSON say what each counts."""
    from rtstereo.eval import EvalReport
    from rtstereo.types import DisparityResult

    gt = np.full((4, 5), 10.0, np.float32)
    pred = gt.copy()
    pred[0], pred[1, :2], pred[2, 0] = 0.0, -3.0, np.nan  # 5 zeros, 2 negative, 1 nan of 20 pixels
    assert disparity_metrics(pred, gt)["density"] == pytest.approx(100 * 19 / 20)  # finite, 0 and below included
    assert DisparityResult(pred).density == pytest.approx(12 / 20)  # finite and above 0
    definitions = EvalReport("m", []).to_json()["metric_definitions"]
    assert "density = % with a finite prediction, 0 and below included" in definitions, definitions
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert "`density`: the fraction, 0..1, of all the map's pixels whose disparity is finite and above 0" in readme
    assert "density counting those where B is finite, 0 or below included" in readme
    assert "`density` is the percent of the pixels with ground truth where the prediction is finite" in readme


def test_eval_shows_an_anynet_scenes_range_which_its_architecture_fixes():
    """AnyNet's range is no setting: eval's max disp read "-", though its stage fixes it (200 px at stage 3)."""
    from rtstereo.eval import _range_cell

    assert _range_cell({"stage": 3, "backend": "onnxruntime"}) == "200"
    assert _range_cell({"stage": 3}, (128, 192), (64, 96)) == "400 (200 at 64x96)"  # a fixed-size export, resized
    assert _range_cell({"backend": "opencv"}) == "-"
