"""benchmarks/selfsup_loss_at_truth.py: how each error measure ranks the true disparity against a map."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from rtstereo.bench import synthetic_pair

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "selfsup_loss_at_truth.py"


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("selfsup_loss_at_truth_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_on_a_textured_pair_every_measure_prefers_the_truth_where_the_map_is_wrong(probe):
    left, right = synthetic_pair((64, 128), disparity_px=8, seed=3)
    gt = np.full((64, 128), 8.0, np.float32)
    answer = gt.copy()
    answer[20:40, 40:80] += 4.0  # 800 of 8192 pixels off by 4 px
    row = probe.compare(left, right, gt, np.ones(gt.shape, bool), answer)
    assert row["wrong_pct"] == pytest.approx(100 * 800 / gt.size)
    for name in probe.MEASURES:
        assert row[name]["truth_lower_on_wrong_pct"] > 90, name
        assert row[name]["mean_at_truth"] < row[name]["mean_at_answer"], name


def test_pixels_without_ground_truth_or_hidden_from_the_right_view_are_not_counted(probe):
    left, right = synthetic_pair((64, 128), disparity_px=8, seed=3)
    gt = np.full((64, 128), 8.0, np.float32)
    answer = gt + 4.0
    gt[:, :64] = np.inf  # unknown
    shown = np.ones(gt.shape, bool)
    shown[:32] = False  # the right view hides the top half
    row = probe.compare(left, right, gt, shown, answer)
    assert row["wrong_pct"] == pytest.approx(50.0)  # a quarter of the image, half of the known pixels


def test_a_map_equal_to_the_truth_has_no_wrong_pixels_to_rank(probe):
    left, right = synthetic_pair((48, 96), disparity_px=6, seed=1)
    gt = np.full((48, 96), 6.0, np.float32)
    row = probe.compare(left, right, gt, np.ones(gt.shape, bool), gt.copy())
    assert row["wrong_pct"] == 0.0
    assert all(row[name]["truth_lower_on_wrong_pct"] is None for name in probe.MEASURES)


def test_the_table_shows_each_scene_and_map(probe):
    measure = {"truth_lower_on_wrong_pct": 42.4, "mean_at_truth": 0.03, "mean_at_answer": 0.02}
    row = {"scene": "Piano", "map": "default", "wrong_pct": 15.6, **{m: measure for m in probe.MEASURES}}
    text = probe.markdown({"commit": "abc", "seconds": 3.0, "sets": {"MiddEval3": [row]}})
    assert "| Piano | default | 15.60 % | 42 % | 42 % | 42 % | 0.0300 / 0.0200 |" in text
