"""The rectification check: rectified real pairs pass, shifted / rotated / swapped ones are reported."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtstereo.errors import InputError
from rtstereo.io.images import read_image
from rtstereo.rectify import (
    ALIGN_MIN_PX,
    MIN_MATCHES,
    RectificationCheck,
    align_rows,
    check_rectification,
    remap_in_tiles,
    row_alignment_maps,
)


def _shift_down(image: np.ndarray, dy_px: float) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image,
        np.float32([[1, 0, 0], [0, 1, dy_px]]),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def pairs():
    from tests.conftest import shared_path

    kitti = shared_path("data", "real", "kitti2012", "000070")
    teddy = shared_path("data", "real", "middlebury2003", "teddy")
    return {
        "kitti": (
            read_image(kitti / "colored_0" / "000070_10.png"),
            read_image(kitti / "colored_1" / "000070_10.png"),
        ),
        "teddy": (read_image(teddy / "im2.png"), read_image(teddy / "im6.png")),
    }


# --- feature --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kitti", "teddy"])
def test_rectified_real_pairs_pass(pairs, name):
    check = check_rectification(*pairs[name])
    # measured: KITTI 0.68 px at the corners (a real ~0.06 degree roll), teddy 0.22 px
    assert check.conclusive and check.is_rectified() and check.warning() is None, check
    assert abs(check.offset_px) < 0.2 and check.median_abs_dy_px < 0.2 and check.median_dx_px > 5


@pytest.mark.parametrize("name", ["kitti", "teddy"])
def test_a_two_pixel_vertical_shift_is_measured(pairs, name):
    left, right = pairs[name]
    check = check_rectification(left, _shift_down(right, 2.0))
    assert check.offset_px == pytest.approx(-2.0, abs=0.15), check  # dy = y_left - y_right
    assert not check.is_rectified()
    message = check.warning()
    assert "does not look rectified" in message and f"{check.measured_misalignment_px:.1f} px" in message


@pytest.mark.parametrize(
    ("view", "shifted", "said"), [("right", 2.0, "right view lies 2.0"), ("left", 2.0, "left view lies 2.0")]
)
def test_the_warning_says_which_view_is_lower(pairs, view, shifted, said):
    """It gave a signed "offset" only, which did not say which camera to raise."""
    left, right = pairs["teddy"]
    if view == "right":
        right = _shift_down(right, shifted)
    else:
        left = _shift_down(left, shifted)
    message = check_rectification(left, right).warning()
    other = "left" if view == "right" else "right"
    assert f"the {said} px lower than the {other} one at the centre" in message, message


def test_a_small_roll_is_measured_at_the_image_corners(pairs):
    left, right = pairs["teddy"]
    check = check_rectification(left, _rotate(right, 0.5))
    # A roll by a small angle moves rows by angle * (x - centre): |dy| at the left/right borders.
    expected = np.deg2rad(0.5) * left.shape[1] / 2
    assert check.misalignment_px == pytest.approx(expected, rel=0.2), (check, expected)
    assert "which one is lower changes across the image (a roll" in check.warning()


def test_features_in_one_strip_are_judged_where_they_are_not_extrapolated_to_the_corners(pairs):
    left, right = pairs["teddy"]
    plain = int(left.shape[0] * 0.85)  # a plain wall over the top 85 %: features only in the bottom strip
    strip_left, strip_right = left.copy(), right.copy()
    strip_left[:plain] = strip_right[:plain] = 128
    check = check_rectification(strip_left, strip_right)
    # extrapolated from the strip to the top corners, the fit read 8.7 px on this rectified pair (and 13.7 px
    # for the 2 px shift below)
    assert check.conclusive and check.measured_misalignment_px < 0.6, check
    assert check.is_rectified() and check.warning() is None
    assert check.misalignment_px >= check.measured_misalignment_px
    check = check_rectification(strip_left, _shift_down(strip_right, 2.0))
    assert check.measured_misalignment_px == pytest.approx(2.0, abs=0.5) and not check.is_rectified(), check  # 2.4


def test_swapped_inputs_are_reported(pairs):
    left, right = pairs["teddy"]
    check = check_rectification(right, left)
    assert check.median_dx_px < -5
    assert "swapped" in check.warning()
    assert "further left in the left image than in the right one" in check.warning()  # as swapped views are


def _expose(image: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """The image as a camera with another gain and response would have taken it (clipped)."""
    return (np.clip((image / 255.0) ** gamma * gain, 0, 1) * 255).round().astype(np.uint8)


@pytest.mark.parametrize("gain, gamma", [(1.45, 0.9), (0.6, 1.2)])
def test_a_right_camera_exposing_differently_is_reported_and_still_rectified(pairs, gain, gamma):
    left, right = pairs["teddy"]
    assert check_rectification(left, right).exposure_warning() is None  # as taken: 1.01x
    check = check_rectification(left, _expose(right, gain, gamma))
    # Matched on the raw right view, Lucas-Kanade read the brightness change as motion: 1.8 and 14.5 px
    # of false misalignment (the check now matches on the right view with the left one's histogram).
    assert check.conclusive and check.is_rectified() and check.warning() is None, check
    expected = 1.45 if gain > 1 else 0.55  # measured
    assert abs(check.brightness_ratio - expected) < 0.1, check
    message = check.exposure_warning()
    assert message and "sgbm_input=auto" in message
    assert ("as bright as" if gain > 1 else "darker than") in message


@pytest.mark.parametrize("dy_px, roll_degrees", [(1.5, 0.0), (-0.8, 0.0), (0.0, 0.4), (0.0, 1.6)])
def test_align_rows_takes_out_an_offset_or_a_roll(pairs, dy_px, roll_degrees):
    left, right = pairs["teddy"]
    height, width = right.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), roll_degrees, 1.0)
    matrix[1, 2] += dy_px
    off = cv2.warpAffine(right, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    aligned, before = align_rows(left, off)
    assert before.misalignment_px > 0.7
    after = check_rectification(left, aligned)
    # fitted at the right view's columns (at the left view's, a 0.4 degree roll kept 0.32 px of it)
    assert after.misalignment_px < 0.15 and after.median_abs_dy_px < 0.1, after
    if roll_degrees == 0:  # a pure offset taken out: the right view as it was, but for the edge rows
        inside = slice(4, -4)
        assert (
            np.abs(aligned[inside].astype(int) - right[inside]).mean()
            < 0.4 * np.abs(off[inside].astype(int) - right[inside]).mean()
        )


def test_align_rows_leaves_rectified_swapped_and_featureless_pairs_alone(pairs):
    left, right = pairs["teddy"]
    same, check = align_rows(left, right)
    assert check.misalignment_px <= ALIGN_MIN_PX and same is right
    swapped, check = align_rows(right, _shift_down(left, 2.0))
    assert check.median_dx_px < -1 and swapped is not None and np.array_equal(swapped, _shift_down(left, 2.0))
    flat = np.full((64, 96, 3), 128, np.uint8)
    unchanged, check = align_rows(flat, flat)
    assert not check.conclusive and unchanged is flat


def test_textureless_pairs_are_inconclusive():
    flat = np.full((60, 80, 3), 128, np.uint8)
    check = check_rectification(flat, flat)
    assert not check.conclusive and check.matches < MIN_MATCHES
    assert check.is_rectified() and check.warning() is None and np.isnan(check.misalignment_px)


@pytest.mark.parametrize("shape", [(2, 4000, 3), (4, 4000, 3), (62, 1000, 3), (1000, 62, 3)])
def test_strips_too_thin_for_features_are_inconclusive_not_an_opencv_error(shape):
    """A 2x4000 pair, checked at 1x1280, failed inside ORB's image pyramid (a traceback from predict)."""
    strip = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    check = check_rectification(strip, np.roll(strip, -3, axis=1))
    assert not check.conclusive and check.matches == 0 and check.warning() is None


@pytest.mark.parametrize("size_hw", [(2, 2000), (8, 40000)])
def test_strips_far_wider_than_tall_are_inconclusive(size_hw):
    """Checked at 1280 px wide, such a strip shrank to one row (ORB's pyramid failed on it) or none (the resize
    failed): predict stopped with OpenCV's assertion, a traceback."""
    texture = np.random.default_rng(0).integers(0, 256, (size_hw[0], size_hw[1] + 8, 3), dtype=np.uint8)
    check = check_rectification(texture[:, 8:], texture[:, :-8])
    assert not check.conclusive and check.matches == 0 and check.warning() is None


def test_rows_of_a_panorama_wider_than_opencvs_remap_takes_are_aligned():
    """cv2.remap refuses a side of 32767 px or more: --align-rows on such a panorama stopped with its assertion, a
    traceback. The rows are remapped in tiles, each from the part of the image it reaches, to the same values."""
    rng = np.random.default_rng(0)
    check = RectificationCheck(2.0, 2.0, 2.0, 10.0, 100, row_plane=(2.0, 0.0, 0.0))  # rows 2 px off
    right = rng.integers(0, 256, (6, 33000, 3), dtype=np.uint8)
    aligned, _ = align_rows(right, right, check)
    map_x, map_y = row_alignment_maps(check, 6, 33000)
    part = slice(16000, 17000)
    alone = cv2.remap(
        np.ascontiguousarray(right[:, part]),
        map_x[:, part] - 16000,
        map_y[:, part],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    np.testing.assert_array_equal(aligned[:, part], alone)
    # tiles of any size give what one call gives, also where coordinates leave the image
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    map_y, map_x = (m.astype(np.float32) for m in np.mgrid[0:70, 0:90])
    map_x += rng.normal(0.0, 3.0, map_x.shape).astype(np.float32)
    map_y += rng.normal(-2.3, 2.0, map_y.shape).astype(np.float32)
    map_x[0, :4] = [-50.0, -1e6, 1e6, 95.0]
    whole = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    for tile_px in (1, 3, 16, 100):
        np.testing.assert_array_equal(remap_in_tiles(image, map_x, map_y, tile_px=tile_px), whole)
    zero_beyond = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    for tile_px in (1, 3, 16):
        tiled = remap_in_tiles(image, map_x, map_y, tile_px=tile_px, border=cv2.BORDER_CONSTANT)
        np.testing.assert_array_equal(tiled, zero_beyond)


def test_a_strip_taller_than_opencvs_remap_takes_is_checked():
    """A 40000x128 strip is checked at its own size, and the brightness of its matches was sampled with cv2.remap,
    which refuses a side of 32767 px or more: predict stopped with its assertion, a traceback."""
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (40000, 140), dtype=np.uint8), (5, 5), 0)
    left, right = (np.dstack([texture[:, start : start + 128]] * 3) for start in (0, 6))
    check = check_rectification(left, right)
    assert check.conclusive and check.is_rectified() and check.brightness_ratio == pytest.approx(1.0, abs=0.01)


def test_large_images_are_checked_at_reduced_size_in_full_size_pixels(pairs):
    left, right = pairs["kitti"]
    big_left, big_right = (
        cv2.resize(im, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR) for im in (left, _shift_down(right, 2.0))
    )
    check = check_rectification(big_left, big_right)
    assert check.offset_px == pytest.approx(-3.0, abs=0.3), check


def test_warning_thresholds_are_adjustable():
    check = RectificationCheck(misalignment_px=1.5, offset_px=1.5, median_abs_dy_px=1.5, median_dx_px=10.0, matches=100)
    assert check.warning(2.0) is None and check.warning(1.0) is not None


# --- exceptions -----------------------------------------------------------------------------------


def test_check_input_errors():
    with pytest.raises(InputError, match="differ in size"):
        check_rectification(np.zeros((20, 30, 3), np.uint8), np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(InputError, match="dtype uint8"):
        check_rectification(np.zeros((20, 30, 3), np.float32), np.zeros((20, 30, 3), np.float32))
    # bare TypeError or AttributeError before; a ratio over 1 let every match through
    image = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(InputError, match=r"^max_features: expected a whole number of features >= 1, got str"):
        check_rectification(image, image, max_features="500")
    with pytest.raises(InputError, match=r"^max_features: .* got 0$"):
        check_rectification(image, image, max_features=0)
    with pytest.raises(InputError, match=r"^ratio: expected Lowe's ratio in \(0, 1\], got 2$"):
        check_rectification(image, image, ratio=2)
    with pytest.raises(InputError, match="^check: expected the RectificationCheck of check_rectification, got str"):
        align_rows(image, image, check="x")


def _brighter(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def example_pair():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    return read_image(examples / "left.png"), read_image(examples / "right.png")


def test_two_wrong_matches_far_from_the_rest_do_not_tilt_the_rows_of_a_rectified_pair(example_pair):
    """The example pair with its right view 1.3x brighter: of 30 matches, two consistent wrong ones lie
    far from the others, and a plane tilted just enough to take them in held one point more within the
    band than the flat one. Scored by capped squared residuals, the flat plane wins (it read 1.8 px)."""
    left, right = example_pair
    check = check_rectification(left, _brighter(right, 1.3))
    assert check.conclusive and check.is_rectified(), check
    assert check.measured_misalignment_px < 0.3 and check.misalignment_px < 1.0, check


@pytest.mark.parametrize("gain", [1.35, 1.4])
def test_a_wrong_match_that_does_not_survive_the_round_trip_does_not_tilt_the_rows(example_pair, gain):
    """The example pair with its right view 1.35x / 1.4x brighter: a channel clips in 43-49 % of its pixels,
    the background's texture is lost, and of the 26 (22) matches 25 (20) lie in one 63 x 68 px patch. The
    rest, one wrong ORB match 121 px from the patch (at 1.4x found at two ORB scales; dy -2.1 px), set
    the tilt of the plane fitted through the patch: 1.8 / 2.0 px "where features matched". Refined back
    from the right view it lands 3.1 / 3.2 px from where it started (true matches: at most 0.15 px), and
    is dropped."""
    left, right = example_pair
    check = check_rectification(left, _brighter(right, gain))
    assert check.conclusive and check.is_rectified() and check.warning() is None, check
    assert check.measured_misalignment_px < 0.5 and check.median_abs_dy_px < 0.2, check  # 0.34 / 0.36


def test_the_example_pair_keeps_enough_matches_to_be_judged_with_its_right_view_1_4x_brighter(example_pair):
    """With ORB's default corner threshold it kept exactly the 20 matches needed to judge it (at 1.0x, 34);
    with the lower one, 61 (at 1.0x, 129)."""
    left, right = example_pair
    check = check_rectification(left, _brighter(right, 1.4))
    assert check.conclusive and check.matches >= 2 * MIN_MATCHES, check


@pytest.mark.parametrize("gain", [1.0, 1.35])
@pytest.mark.parametrize("dy_px", [1.5, -1.5])
def test_a_shift_of_the_example_pair_is_measured_however_bright_its_right_view(example_pair, dy_px, gain):
    left, right = example_pair
    check = check_rectification(left, _brighter(_shift_down(right, dy_px), gain))
    assert check.conclusive and not check.is_rectified(), check
    assert check.median_abs_dy_px == pytest.approx(1.5, abs=0.1), check
    assert check.offset_px == pytest.approx(-dy_px, abs=0.3), check  # dy = y_left - y_right


@pytest.mark.parametrize("degrees", [0.3, 0.4, 0.5, -0.5])
def test_a_roll_of_the_example_pair_is_measured(example_pair, degrees):
    left, right = example_pair
    check = check_rectification(left, _rotate(right, degrees))
    # a roll by a small angle moves rows by angle * x: the fitted slope of dy across the image
    assert check.conclusive and check.row_plane is not None, check
    assert check.row_plane[1] == pytest.approx(np.deg2rad(degrees), rel=0.2), check
    assert abs(check.row_plane[2]) < 0.1 * abs(check.row_plane[1]), check


@pytest.fixture(scope="module")
def rendered_pair():
    """A rendered 480 x 640 scene (all view-dependent effects on) whose features cover the image."""
    pytest.importorskip("torch")
    from rtstereo.datasets.synthetic import render_batch

    batch = render_batch(2, 480, 640, seed=0)
    views = [
        (batch[key][1].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        for key in ("left", "right")
    ]
    return views[0], views[1]


@pytest.mark.parametrize("gain", [1.0, 1.35])
def test_a_rendered_rectified_pair_passes_and_its_shifts_and_rolls_are_measured(rendered_pair, gain):
    left, right = rendered_pair
    right = _brighter(right, gain)
    check = check_rectification(left, right)
    assert check.conclusive and check.is_rectified() and check.measured_misalignment_px < 0.3, check
    shifted = check_rectification(left, _shift_down(right, 1.5))
    assert shifted.offset_px == pytest.approx(-1.5, abs=0.15) and not shifted.is_rectified(), shifted
    for degrees in (0.3, 0.5):
        rolled = check_rectification(left, _rotate(right, degrees))
        assert rolled.row_plane[1] == pytest.approx(np.deg2rad(degrees), rel=0.15), rolled
        assert not rolled.is_rectified() and "(a roll" in rolled.warning(), rolled


@pytest.mark.parametrize("dy_px", [1.5, -1.5])
def test_align_rows_takes_out_a_shift_of_the_example_and_rendered_pairs(example_pair, rendered_pair, dy_px):
    for left, right in (example_pair, rendered_pair):
        aligned, before = align_rows(left, _shift_down(right, dy_px))
        assert before.offset_px == pytest.approx(-dy_px, abs=0.1), before
        after = check_rectification(left, aligned)
        assert after.misalignment_px < 0.15 and after.median_abs_dy_px < 0.1, after


@pytest.mark.parametrize(("k", "turn"), [(1, "clockwise"), (-1, "counter-clockwise")])
def test_a_pair_on_its_side_is_told_which_way_to_turn_not_to_calibrate(pairs, k, turn):
    """Views turned 90 degrees (a rig held on its side, or photos turned upright by EXIF) were called
    'not rectified: calibrate the rig', which cannot make cameras one above the other a horizontal pair."""
    left, right = (np.ascontiguousarray(np.rot90(view, k)) for view in pairs["kitti"])
    check = check_rectification(left, right)
    assert check.sideways(), check
    message = check.warning()
    assert "the cameras sit one above the other" in message and f"turn both views 90 degrees {turn}," in message
    assert "Calibrate" not in message
    undo = -1 if turn == "clockwise" else 1  # np.rot90's positive k turns counter-clockwise
    assert check_rectification(np.rot90(left, undo).copy(), np.rot90(right, undo).copy()).warning() is None
    assert not check_rectification(*pairs["kitti"]).sideways()


def test_align_rows_leaves_a_pair_on_its_side_alone(pairs):
    """It slid the right view by the views' vertical disparity, which made the pair look aligned and its map
    all but zero, without a word."""
    left, right = (np.ascontiguousarray(np.rot90(view)) for view in pairs["kitti"])
    same, check = align_rows(left, right)
    assert check.sideways() and same is right


@pytest.mark.parametrize("align", [[], ["--align-rows"]])
def test_photos_turned_on_their_side_by_exif_get_the_turn_advice_alone(pairs, tmp_path, capsys, align):
    from PIL import Image

    from rtstereo.cli import main

    paths = []
    for name, view in zip(("left", "right"), pairs["teddy"]):
        exif = Image.Exif()
        exif[0x0112] = 6  # stored as taken, shown turned 90 degrees clockwise: the cameras end up one above the other
        paths.append(tmp_path / f"{name}.jpg")
        Image.fromarray(view).save(paths[-1], quality=95, exif=exif.tobytes())
    code = main(
        [
            "predict",
            *map(str, paths),
            "--model",
            "sgbm",
            "--max-disp",
            "64",
            "-q",
            "-o",
            str(tmp_path / "d.pfm"),
            *align,
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "the cameras sit one above the other" in err and "counter-clockwise" in err, err
    assert "--align-rows" not in err and "Calibrate" not in err and err.count("\n") == 1


def _views(batch, item: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(
        (batch[key][item].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        for key in ("left", "right")
    )


@pytest.fixture(scope="module")
def false_alarm_scenes():
    """Rectified rendered 480 x 640 scenes that the check read as not rectified (benchmarks/rectification_check.py
    found the last four)."""
    pytest.importorskip("torch")
    from rtstereo.datasets.synthetic import RenderSettings, render_batch

    noisier = render_batch(5, 480, 640, seed=101, settings=RenderSettings(noise_scale=2.0))
    return {
        "slanted stripes": _views(render_batch(1, 480, 640, seed=12), 0),
        "noisy": _views(render_batch(1, 480, 640, seed=0), 0),
        "twice the noise": _views(noisier, 2),
        "twice the noise, one strip": _views(noisier, 4),
        "geometry only": _views(render_batch(2, 480, 640, seed=102, settings=RenderSettings.geometry_only()), 1),
        "one wrong patch": _views(render_batch(2, 480, 640, seed=200), 1),
    }


@pytest.mark.parametrize(
    ("scene", "gain", "read_px"),
    [
        ("slanted stripes", 0.7, 1.2),
        ("slanted stripes", 1.0, 1.9),
        ("slanted stripes", 1.4, 3.9),
        ("noisy", 1.35, 1.12),
        ("twice the noise", 1.35, 2.44),
        ("geometry only", 1.4, 1.49),
    ],
)
def test_rectified_rendered_scenes_with_repeating_texture_or_noise_pass(false_alarm_scenes, scene, gain, read_px):
    """Wrong matches that agree with one another (along repeating slanted stripes, or a few lone ones far
    from the rest) tilted the plane fitted to all matches: these rectified pairs read ``read_px`` off where
    features matched, and --align-rows resampled them. The fit now gives no region of the image more than a
    few matches' say and takes a roll or scale difference only when the matches need one."""
    left, right = false_alarm_scenes[scene]
    check = check_rectification(left, _brighter(right, gain))
    assert check.conclusive and check.is_rectified() and check.warning() is None, check
    assert check.measured_misalignment_px < 0.3 and row_alignment_maps(check, *left.shape[:2]) is None, check


def test_the_rows_are_not_extrapolated_to_the_corners_from_a_narrow_strip_of_matches(false_alarm_scenes):
    """With its right view 1.4x brighter this rectified scene keeps 22 matches, in a strip 29 px wide whose
    rows tilt by noise: extrapolated to the corners the fit read 7.3 px, and --align-rows resampled the view
    by as much. A roll is now fitted only across a fifth of the width or more (the corners then read 0.47
    px, from a scale term over 165 px of height), and --align-rows goes by the corners less twice the fit's
    standard error there."""
    left, right = false_alarm_scenes["twice the noise, one strip"]
    brighter = _brighter(right, 1.4)
    check = check_rectification(left, brighter)
    assert check.conclusive and check.is_rectified() and check.misalignment_px < 1.0, check
    assert check.row_plane[1] == 0.0, check
    aligned, _ = align_rows(left, brighter, check)
    assert aligned is brighter and check.supported_misalignment_px <= ALIGN_MIN_PX, check


@pytest.mark.parametrize("gain", [0.7, 1.0, 1.4])
def test_a_plane_that_fits_the_noise_of_a_fitting_offset_is_not_taken(false_alarm_scenes, gain):
    """7 of this rectified scene's 23 matches, in one patch 10 x 16 px, agree on rows 0.6-1.05 px off: a plane
    tilted to take them in cost under 0.6 times a constant offset, and read the pair 0.87-1.01 px off (and
    --align-rows resampled it). Both costs now include the matches' own scatter (0.25 px each): the offset
    is taken, and holding 17-19 matches, under the 20 needed, it leaves the pair unjudged."""
    left, right = false_alarm_scenes["one wrong patch"]
    check = check_rectification(left, _brighter(right, gain))
    assert check.is_rectified() and check.warning() is None, check
    assert row_alignment_maps(check, *left.shape[:2]) is None, check


def test_a_pair_just_short_of_the_agreeing_share_is_inconclusive_not_nan():
    """The share the fit holds was rounded to 3 decimals after the pair was found short of 0.5: this one,
    rendered with twice the noise and shifted by 1.5 px, came back conclusive with every figure nan."""
    pytest.importorskip("torch")
    from rtstereo.datasets.synthetic import RenderSettings, render_batch

    left, right = _views(render_batch(5, 480, 640, seed=201, settings=RenderSettings(noise_scale=2.0)), 4)
    check = check_rectification(left, _brighter(_shift_down(right, 1.5), 1.35))
    assert check.conclusive == np.isfinite(check.offset_px), check


@pytest.mark.parametrize("dy_px", [1.0, -1.0])
def test_a_shift_of_the_stripes_scene_is_measured(false_alarm_scenes, dy_px):
    left, right = false_alarm_scenes["slanted stripes"]
    check = check_rectification(left, _shift_down(right, dy_px))
    assert check.conclusive and check.offset_px == pytest.approx(-dy_px, abs=0.25), check


def test_a_pair_whose_matches_mostly_disagree_is_inconclusive_not_far_off():
    """Rendered with twice the sensor noise and its right view 0.7x as bright, most of its 71 matches were
    wrong; 20 of them, fitted by a tilted plane, read 36.7 px off."""
    pytest.importorskip("torch")
    from rtstereo.datasets.synthetic import RenderSettings, render_batch

    left, right = _views(render_batch(1, 480, 640, seed=101, settings=RenderSettings(noise_scale=2.0)), 0)
    check = check_rectification(left, _brighter(right, 0.7))
    assert not check.conclusive and check.is_rectified() and check.warning() is None, check


@pytest.mark.parametrize("gain", [1.2, 1.25, 1.3, 1.35, 1.4])
def test_align_rows_leaves_the_rectified_example_pair_alone_however_bright_its_right_view(example_pair, gain):
    """--align-rows decided from the fit extrapolated to the image corners, which a few wrong matches had
    tilted: 0.5-2.2 px there, so it resampled this rectified pair."""
    left, right = example_pair
    brighter = _brighter(right, gain)
    aligned, check = align_rows(left, brighter)
    assert aligned is brighter and check.misalignment_px <= ALIGN_MIN_PX, check


@pytest.mark.parametrize("gain", [1.0, 1.35])
@pytest.mark.parametrize("dy_px", [1.0, -1.0])
def test_a_one_pixel_shift_is_reported(example_pair, rendered_pair, dy_px, gain):
    """A 1 px shift of the example pair reads 1.00 px, which a warning above 1 px missed."""
    for left, right in (example_pair, rendered_pair):
        check = check_rectification(left, _brighter(_shift_down(right, dy_px), gain))
        assert check.offset_px == pytest.approx(-dy_px, abs=0.25), check
        assert not check.is_rectified() and "does not look rectified" in check.warning(), check


def test_adapt_does_not_call_the_pairs_it_could_not_judge_rectified(pairs, capsys):
    """One pair off among pairs rectified and pairs too plain to be judged: the warning said "the other checked pairs
    are rectified", of pairs the check had said nothing about."""
    from types import SimpleNamespace

    from rtstereo.cli.adapt import refuse_unrectified

    left, right = pairs["teddy"]
    plain = np.full_like(left, 120)
    views = [(left, right), (left, _shift_down(right, 2.0)), (plain, plain + 1), (left, right), (plain, plain + 1)]
    refuse_unrectified([SimpleNamespace(name=str(i), left=a, right=b) for i, (a, b) in enumerate(views)])
    err = capsys.readouterr().err
    assert "warning: pair 1: rows off by up to 2.0 px" in err, err
    said = "the other judged pairs are rectified (2 of the 5 checked could not be judged: too few matched features)"
    assert said in err and "other checked pairs" not in err, err
    refuse_unrectified([SimpleNamespace(name=str(i), left=a, right=b) for i, (a, b) in enumerate(views[:2] * 2)])
    assert "; the other checked pairs are rectified\n" in capsys.readouterr().err  # all judged: as before
