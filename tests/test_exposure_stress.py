"""benchmarks/exposure_stress.py: methods scored as taken and with the right views re-exposed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rtstereo.bench import synthetic_pair

from .conftest import write_middlebury_scene

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "exposure_stress.py"


@pytest.fixture
def stress(monkeypatch):
    """The benchmark's module, loaded from its file (it imports validation_table beside it)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts benchmarks/ first; undone after
    spec = importlib.util.spec_from_file_location("exposure_stress_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_exposures_are_drawn_per_scene_from_the_seed_in_name_order(stress):
    first = stress.draw_exposures(["b", "a"], 7, (0.6, 1.5), (0.75, 1.33), 0.07)
    again = stress.draw_exposures(["a", "b"], 7, (0.6, 1.5), (0.75, 1.33), 0.07)
    other = stress.draw_exposures(["a", "b"], 8, (0.6, 1.5), (0.75, 1.33), 0.07)
    assert first == again and first != other
    for e in first.values():
        assert 0.6 <= e.gain <= 1.5 and 0.75 <= e.gamma <= 1.33
        assert all(0.93 <= v <= 1.07 for v in e.white_balance)


def test_an_exposure_changes_the_image_as_it_says(stress):
    e = stress.Exposure(gain=1.5, gamma=2.0, white_balance=(1.0, 0.5, 1.0))
    levels = np.array([0, 128, 255])
    out = e.apply(np.repeat(levels.astype(np.uint8)[None, :, None], 3, axis=2))  # 3 grey pixels
    expected = np.clip((levels / 255.0) ** 2 * 1.5, 0, 1) * 255
    np.testing.assert_allclose(out[0, :, 0], expected.round(), atol=1)
    green = np.clip((levels / 255.0) ** 2 * 1.5 * 0.5, 0, 1) * 255  # the white balance's green factor
    np.testing.assert_allclose(out[0, :, 1], green.round(), atol=1)
    assert out[0, 2, 0] == 255 and out[0, 0, 0] == 0  # clipped, as a camera saturates


def test_the_run_scores_both_forms_and_leaves_the_data_alone(stress, tmp_path, monkeypatch):
    scene = write_middlebury_scene(tmp_path / "data" / "scene", *synthetic_pair((64, 128), disparity_px=6), 6.0)
    before = sorted(p.name for p in scene.iterdir())
    monkeypatch.setenv("RTSTEREO_THREADS", "1")
    out = tmp_path / "out"
    code = stress.main(
        ["--models", "sgbm,hybrid:sgbm_input=normalized", "--data", str(tmp_path / "data"), "--output-dir", str(out)]
    )
    assert code == 0 and sorted(p.name for p in scene.iterdir()) == before
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"] == ["sgbm", "hybrid[normalized]"] and summary["seed"] == 2026
    assert set(summary["exposures"]) == {"scene"}
    for key in ("as_taken", "re_exposed"):
        (row,) = summary[key]["groups"]  # im0/im1/disp0GT without calib.txt: read as an ETH3D scene
        assert set(row["mean"]) == {"sgbm", "hybrid[normalized]"} and row["scenes"] == 1
        assert (out / "eval" / key / "sgbm.json").is_file()
    text = (out / "summary.md").read_text()
    assert "## as taken" in text and "## right view re-exposed" in text and "| scene |" in text
    # re-exposed, SGBM sees another image: its figures are its own, not a copy of the first run's
    as_taken = json.loads((out / "eval" / "as_taken" / "sgbm.json").read_text())
    re_exposed = json.loads((out / "eval" / "re_exposed" / "sgbm.json").read_text())
    assert as_taken["scenes"][0]["metrics"] != re_exposed["scenes"][0]["metrics"]
