"""Post-processing: the left-border fill, as a function and as a predictor setting."""

from __future__ import annotations

import numpy as np
import pytest

import rtstereo
from rtstereo.cli import main as rtstereo_cli
from rtstereo.errors import InputError
from rtstereo.models import PACKAGED_NETWORK
from rtstereo.runtime.postprocess import BORDER_MARGIN_PX, fill_left_border


def test_each_row_takes_the_value_of_its_own_first_matched_pixel():
    d = np.full((3, 12), np.nan, np.float32)
    d[0] = 9.0  # x - 9 >= 2 first at x = 11
    d[1] = np.linspace(0.0, 3.0, 12)  # x - d >= 2 first at x = 3 (3 - 0.82)
    d[2, 5:] = 1.0  # nan band, then matched from x = 5
    out = fill_left_border(d, margin_px=2)
    assert out.tolist()[0] == [9.0] * 12
    np.testing.assert_array_equal(out[1, :3], np.full(3, d[1, 3]))
    np.testing.assert_array_equal(out[1, 3:], d[1, 3:])
    assert out[2].tolist() == [1.0] * 12
    assert np.isnan(d[2, :5]).all()  # the input is not touched


def test_rows_without_a_match_and_pixels_right_of_the_band_are_unchanged():
    d = np.array([[np.nan, np.nan, np.nan], [50.0, 50.0, 50.0]], np.float32)
    np.testing.assert_array_equal(fill_left_border(d), d)
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 20.0, (16, 64)).astype(np.float32)
    out = fill_left_border(d)
    cols = np.arange(64)
    first = np.argmax(cols[None, :] - d >= BORDER_MARGIN_PX, axis=1)
    for y in range(16):
        np.testing.assert_array_equal(out[y, first[y] :], d[y, first[y] :])
        assert (out[y, : first[y]] == d[y, first[y]]).all()


def test_the_margin_moves_the_first_matched_pixel():
    d = np.full((1, 20), 4.0, np.float32)
    assert fill_left_border(d, margin_px=0).tolist() == d.tolist()
    slanted = d + np.arange(20, dtype=np.float32) * 0.1  # x - (4 + 0.1 x) >= 6 first at x = 12
    out = fill_left_border(slanted, margin_px=6)
    assert (out[0, :12] == slanted[0, 12]).all()
    np.testing.assert_array_equal(out[0, 12:], slanted[0, 12:])
    at_margin = np.array([[7, 7, 7, 7, 7, 7, 7, 5, 4, 4]], np.float32)  # x - d = 2 first at x = 7: matched
    assert fill_left_border(at_margin, margin_px=2).tolist() == [[5.0] * 8 + [4.0, 4.0]]


def test_a_map_that_is_not_two_dimensional_is_refused():
    with pytest.raises(InputError, match=r"\(H, W\)"):
        fill_left_border(np.zeros((1, 2, 3), np.float32))


def test_packaged_network_fills_by_default_and_the_setting_turns_it_off(textured_pair):
    left, right = textured_pair
    on = rtstereo.load(PACKAGED_NETWORK, refine_edges=False).predict(left, right)
    off = rtstereo.load(PACKAGED_NETWORK, fill_left_border=False, refine_edges=False).predict(left, right)
    assert on.settings["fill_left_border"] is True and "fill_left_border" not in off.settings
    np.testing.assert_array_equal(on.disparity_px, fill_left_border(off.disparity_px))
    assert not np.array_equal(on.disparity_px, off.disparity_px)  # the fixture's band is wide enough to change


def test_other_models_fill_only_when_asked(textured_pair):
    left, right = textured_pair
    raw = rtstereo.load("sgbm", max_disp=16, fill_holes=False)
    assert raw.fill_left_border is False
    asked = rtstereo.load("sgbm", max_disp=16, fill_holes=False, fill_left_border="true")
    np.testing.assert_array_equal(
        asked.predict(left, right).disparity_px, fill_left_border(raw.predict(left, right).disparity_px)
    )
    with pytest.raises(InputError, match="fill_left_border"):
        rtstereo.load("sgbm", fill_left_border="maybe")


def test_the_cli_takes_the_setting_and_lists_it(textured_pair, tmp_path, capsys):
    import cv2

    left, right = textured_pair
    for name, image in (("l.png", left), ("r.png", right)):
        cv2.imwrite(str(tmp_path / name), image[..., ::-1])
    outputs = {}
    for value in ("true", "false"):
        out = tmp_path / value
        code = rtstereo_cli(
            ["predict", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "-m", PACKAGED_NETWORK, "-o", str(out)]
            + ["--set", f"fill_left_border={value}", "--set", "refine_edges=false", "--format", "npy"]
        )
        assert code == 0
        outputs[value] = np.load(next(out.rglob("*.npy")))
    np.testing.assert_array_equal(outputs["true"], fill_left_border(outputs["false"]))
    capsys.readouterr()
    assert rtstereo_cli(["models", PACKAGED_NETWORK]) == 0
    assert "fill_left_border = True" in capsys.readouterr().out
