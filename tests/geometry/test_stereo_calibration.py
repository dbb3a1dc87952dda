"""Stereo calibration round trip on board views rendered with a known rig, and rectification maps."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings

import cv2
import numpy as np
import pytest
from board_views import default_rig, render_stereo_views, small_rig

from rtstereo.errors import InputError, OutputError
from rtstereo.io.calibration import read_calibration
from rtstereo.rectify import (
    MIN_AGREEING_SHARE,
    Board,
    Rectifier,
    _fixing_the_pose,
    align_rows,
    calibrate_stereo,
    check_rectification,
)


@pytest.fixture(scope="module")
def chessboard_views():
    """Twelve chessboard pairs (9x6 inner corners, 30 mm squares) of the default rig."""
    board = Board.parse("chessboard:9x6:0.03")
    lefts, rights, rig = render_stereo_views(board, 12, seed=1)
    return board, lefts, rights, rig


@pytest.fixture(scope="module")
def chessboard_result(chessboard_views):
    board, lefts, rights, rig = chessboard_views
    return calibrate_stereo(lefts, rights, board), rig


# The rendered views keep the board near the middle of the images (their corners reach 40-46 % of the way to the
# images' corners; without lens distortion, the rectified rows there come out 0.6-1.3 px apart): tests that want no
# warning but the one they are about leave this one out.
NEAR_THE_MIDDLE = r"the board's corners reach only \d+ % of the way"


def _relative(a: float, b: float) -> float:
    return abs(a / b - 1)


# --- feature --------------------------------------------------------------------------------------


def test_chessboard_round_trip_recovers_focal_and_baseline(chessboard_result):
    result, rig = chessboard_result
    # measured (12 views, seed 1): fx left +0.02 %, right -0.03 %, baseline -0.07 %, RMS 0.055 px
    assert _relative(result.K1[0, 0], rig.k_left[0, 0]) < 0.01
    assert _relative(result.K2[0, 0], rig.k_right[0, 0]) < 0.01
    assert _relative(result.K1[1, 1], rig.k_left[1, 1]) < 0.01
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.01
    assert _relative(float(np.linalg.norm(result.T)), rig.baseline_m) < 0.01
    assert result.rms_px < 0.2 and len(result.pairs_used) == 12
    # principal points within 1.5 px (measured 0.3 and 1.0 px), the rotation within 0.3 degrees of the rig's 0.86
    # (measured 0.09), the translation's direction within 1 degree (its z, 2 mm of 120, is the least determined)
    assert np.abs(result.K1[:2, 2] - rig.k_left[:2, 2]).max() < 1.5
    assert np.abs(result.K2[:2, 2] - rig.k_right[:2, 2]).max() < 1.5
    assert np.degrees(np.linalg.norm(cv2.Rodrigues(result.R @ rig.rotation.T)[0])) < 0.3
    cosine = float(result.T.ravel() @ rig.translation_m) / (np.linalg.norm(result.T) * rig.baseline_m)
    assert np.degrees(np.arccos(min(cosine, 1.0))) < 1.0
    c = result.calibration
    assert c.cx0_px == c.cx1_px and (c.width_px, c.height_px) == rig.size_wh


def test_chessboard_rectification_aligns_the_rows(chessboard_result, chessboard_views):
    result, _ = chessboard_result
    board, lefts, rights, _ = chessboard_views
    rectifier = result.rectifier()
    for left, right in zip(lefts[:3], rights[:3]):
        rect_left, rect_right, calibration = rectifier.rectify(left, right)
        assert rect_left.shape == left.shape and rect_left.dtype == np.uint8
        found_left, found_right = board.detect(rect_left), board.detect(rect_right)
        assert found_left is not None and found_right is not None
        dy = found_left[1][:, 1] - found_right[1][:, 1]
        assert np.abs(dy).max() < 0.5, np.abs(dy).max()  # measured: 0.25 px
        assert calibration == result.calibration
    check = check_rectification(*rectifier.rectify(lefts[0], rights[0])[:2])
    assert check.is_rectified(), check  # the raw views are off by several pixels:
    assert not check_rectification(lefts[0], rights[0]).is_rectified()


def test_the_raw_views_of_a_rig_are_reported_though_no_one_set_of_rows_fits_their_matches(chessboard_views):
    """The check's fit holds 31 % of these raw views' matches (their rows bend beyond a plane, and the board's
    repeats match wrongly): it called the pair inconclusive, and so rectified. Nearly all of its matches lie
    well off their rows, so it is reported, without a fit for --align-rows to resample by."""
    from rtstereo.cli.rectification import rectification_findings
    from rtstereo.types import StereoPair

    _, lefts, rights, _ = chessboard_views
    check = check_rectification(lefts[0], rights[0])
    assert check.judged_without_fit and check.agreeing_share < MIN_AGREEING_SHARE and check.row_plane is None, check
    assert check.conclusive and check.median_abs_dy_px > 3 and not check.sideways(), check
    assert "does not look rectified" in check.warning() and "at the median matched feature" in check.warning()
    assert align_rows(lefts[0], rights[0], check)[0] is rights[0]
    findings, conclusive = rectification_findings(StereoPair(lefts[0], rights[0]))
    assert conclusive and "Calibrate the rig" in findings["rows"] and "--align-rows" not in findings["rows"], findings


def test_a_pair_judged_without_a_fit_is_worded_by_its_median_and_as_not_aligned(chessboard_views, caplog):
    """Its rows are measured by the median |dy| of its matches: adapt and the stream said "rows off by up to"
    that median, and --align-rows, which resampled nothing, "after --align-rows ..., this pair needs calibrating"."""
    import logging
    from types import SimpleNamespace

    from rtstereo.cli.adapt import refuse_unrectified
    from rtstereo.cli.rectification import rectification_findings
    from rtstereo.sources.base import FramePreparer
    from rtstereo.types import StereoPair

    _, lefts, rights, _ = chessboard_views
    check = check_rectification(lefts[0], rights[0])
    median = f"rows off by {check.median_abs_dy_px:.1f} px at the median matched feature"
    assert check.judged_without_fit and check.rows_off() == median, check
    findings, _ = rectification_findings(StereoPair(lefts[0], rights[0]), align_rows=True)
    assert "after --align-rows" not in findings["rows"] and "--align-rows left the pair as it was" in findings["rows"]
    with pytest.raises(InputError, match=f"pair p: {re.escape(median)}, expected < "):
        refuse_unrectified([SimpleNamespace(name="p", left=lefts[0], right=rights[0])])
    prepare = FramePreparer(align_rows=True)
    with caplog.at_level(logging.INFO, logger="rtstereo.stream"):
        assert prepare(StereoPair(lefts[0], rights[0])).right is rights[0]
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--align-rows")]
    assert said.startswith(f"--align-rows: {median} (") and said.endswith(": nothing aligned"), said


def test_charuco_round_trip():
    board = Board.parse("charuco:7x5:0.04:0.03")
    lefts, rights, rig = render_stereo_views(board, 16, seed=1)
    result = calibrate_stereo(lefts, rights, board)
    # measured (16 views, seed 1): fx left -0.46 %, right +0.01 %, baseline +0.54 %, RMS 0.10 px
    assert _relative(result.K1[0, 0], rig.k_left[0, 0]) < 0.01
    assert _relative(result.K2[0, 0], rig.k_right[0, 0]) < 0.01
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.01
    assert result.rms_px < 0.3


def test_a_charuco_marker_size_given_wrong_gets_a_warning():
    """Markers of 0.02 m given for 0.03 m: the views fitted at 0.38 px RMS (0.11 px at the right size), no word said;
    0.01 m, 3.2 px and focal lengths 17 % off, with only a warning that the rectified views are clipped."""
    from rtstereo.rectify import calibrate_from_views, find_board_views

    lefts, rights, _ = render_stereo_views(Board.parse("charuco:7x5:0.04:0.03"), 6, seed=1)
    for given, seen in ((0.03, None), (0.035, None), (0.02, "0.029"), (0.01, "0.029")):
        board = Board.parse(f"charuco:7x5:0.04:{given}")
        found = [find_board_views(board, left, right, str(i)) for i, (left, right) in enumerate(zip(lefts, rights))]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.suppress(InputError):  # 0.01 m: "the cameras sit one above the other", after the warning
                calibrate_from_views(found, board)
        said = [str(w.message) for w in caught if "ArUco markers" in str(w.message)]
        if seen is None:
            assert not said, said
        else:
            assert said == [
                f"the ArUco markers measure about {seen} m in the views, not the {given:g} m given with --board "
                "(median of 6 pairs); OpenCV places the board's corners from its markers, and a wrong marker size "
                "moves them, and so the focal length and the baseline: give the side of a marker as printed, in metres "
                "(the square's is 0.04 m)"
            ], said


def test_a_charuco_board_of_the_layout_before_opencv_4_6_is_told_of_and_taken_with_legacy():
    """An 11x8 board printed with OpenCV before 4.6 (an even number of rows: the other layout) was found in 2 of 8 left
    views and no right one, and the error said only "check --board", whose numbers were right."""
    legacy = Board.parse("charuco:11x8:0.025:0.018:DICT_5X5_100:legacy")
    assert legacy == dataclasses.replace(Board.parse("charuco:11x8:0.025:0.018:legacy"), dictionary="DICT_5X5_100")
    lefts, rights, rig = render_stereo_views(legacy, 8, seed=2)
    with pytest.raises(InputError) as newer:
        calibrate_stereo(lefts, rights, Board.parse("charuco:11x8:0.025:0.018"))
    # the markers tell the layout: it said "... made with OpenCV before 4.6 ...: add :legacy to --board", a guess
    # from the even number of rows given
    assert re.search(
        r"the markers seen in \d+ views fit the layout of OpenCV before 4.6 \(kept by some generators, a marker in the "
        r"top-left square\): give --board charuco:11x8:0.025:0.018:DICT_5X5_100:legacy$",
        str(newer.value),
    ), newer.value
    result = calibrate_stereo(lefts, rights, legacy)
    assert len(result.pairs_used) >= 6 and _relative(result.calibration.baseline_m, rig.baseline_m) < 0.02
    with pytest.raises(InputError, match=r"check --board \(charuco 11x7: inner corners") as odd:
        calibrate_stereo(lefts, rights, Board.parse("charuco:11x7:0.025:0.018"))
    assert "legacy" not in str(odd.value)  # boards of an odd number of rows have one layout


def test_a_charuco_board_given_with_its_columns_and_rows_swapped_is_told_the_board_its_markers_fit():
    """A 7x5 board given as 5x7: OpenCV finds its markers and no corner, and the error guessed at the board's
    corners, its dictionary and its layout; it now gives the board the markers fit, which then calibrates."""
    lefts, rights, _ = render_stereo_views(Board.parse("charuco:7x5:0.04:0.03"), 4, seed=1)
    with pytest.raises(InputError) as swapped:
        calibrate_stereo(lefts, rights, Board.parse("charuco:5x7:0.04:0.03"))
    assert str(swapped.value) == (
        "the board was found in both images of only 0 of 4 pairs (left: 0, right: 0); need at least 4, better 15-30 "
        "views covering the whole image at several tilts: the markers seen in 8 views fit a board of 7x5 squares "
        "(across x down), not 5x7: give --board charuco:7x5:0.04:0.03:DICT_5X5_100"
    )
    assert len(calibrate_stereo(lefts, rights, Board.parse("charuco:7x5:0.04:0.03:DICT_5X5_100")).pairs_used) == 4


def test_a_charuco_board_given_with_another_dictionary_is_told_to_check_the_dictionary():
    """A board printed with DICT_5X5_100 given as DICT_4X4_50 is found in no view, and the error named the board's
    size and its layout, both right, but not the dictionary."""
    lefts, rights, _ = render_stereo_views(Board.parse("charuco:7x5:0.04:0.03"), 4, seed=1)
    with pytest.raises(InputError, match="found in both images of only 0 of 4 pairs") as wrong:
        calibrate_stereo(lefts, rights, Board.parse("charuco:7x5:0.04:0.03:DICT_4X4_50"))
    assert str(wrong.value).endswith(
        "; the ArUco dictionary must be the one the board was printed with (DICT_4X4_50 here: "
        "charuco:7x5:0.04:0.03:DICT_...)"
    )


def test_a_charuco_view_that_shows_one_row_of_corners_is_left_out_not_a_traceback():
    """The board mostly covered, or out of the image: its corners on one line failed inside cv2.calibrateCamera
    (an assertion in initIntrinsicParams2D), a traceback from `rtstereo calibrate`."""
    board = Board.parse("charuco:7x5:0.04:0.03")
    lefts, rights, rig = render_stereo_views(board, 9, seed=1)
    strip_left, strip_right, _ = render_stereo_views(board, 1, seed=5, square_rows=(1, 3))
    assert board.detect(strip_right[0])[0].tolist() == [6, 7, 8, 9, 10, 11]  # one row of corners
    with pytest.warns(UserWarning, match=r"pair 9 \(right\): the board's 6 corners lie along one straight line"):
        result = calibrate_stereo(lefts + strip_left, rights + strip_right, board)
    assert "9" not in result.pairs_used and len(result.pairs_used) == 9
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.01


def test_a_stereo_view_whose_shared_corners_lie_on_one_line_but_one_is_left_out():
    """Six ChArUco corners both cameras saw in one pair, five in a row: stereoCalibrate's guess of that view's pose
    sent the stereo RMS error to 58 px, refused as views not taken at the same instant."""
    board = Board.parse("charuco:11x8:0.025:0.018")
    lefts, rights, rig = render_stereo_views(board, 8, seed=1)
    with pytest.warns(UserWarning, match=r"pair 4 \(the corners both views show\): the board's 6 corners lie along"):
        result = calibrate_stereo(lefts, rights, board)
    assert "4" not in result.pairs_used and result.rms_px < 0.5
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.02


def test_a_rectification_that_clips_the_views_to_their_middle_gets_a_warning():
    """Views of a board seen small and always in the middle of the images: their lens distortion, fitted there, grew
    wild beyond, and the maps (written at 0.06 px RMS, without a word) zoomed into the middle 4 % of the images."""
    board = Board.parse("chessboard:7x5:0.03")
    lefts, rights, _ = render_stereo_views(board, 10, rig=small_rig(), seed=2, distance_m=(1.3, 1.5), spread=0)
    with pytest.warns(UserWarning, match=r"the rectified views show only the middle 3.6 % of the raw ones \(a rect"):
        result = calibrate_stereo(lefts, rights, board)
    assert result.calibration.fx_px > 5 * result.K1[0, 0] and result.rms_px < 0.1
    with pytest.warns(UserWarning, match=r"the raw views fill only 14 % of the rectified ones .*, alpha 1\): the lens"):
        calibrate_stereo(lefts, rights, board, alpha=1.0)
    # moved over the images, at 0.55-0.9 m: rectified focal lengths 1.04-1.14 times the cameras'
    lefts, rights, rig = render_stereo_views(board, 10, rig=small_rig(), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=NEAR_THE_MIDDLE)
        result = calibrate_stereo(lefts, rights, board)
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.02


def test_a_rectification_whose_focal_length_comes_out_negative_says_why():
    """It said only "focal lengths in the projection matrix must be > 0, got -629.69"."""
    board = Board.parse("chessboard:7x5:0.03")
    lefts, rights, _ = render_stereo_views(board, 10, rig=small_rig(), seed=1, distance_m=(1.3, 1.5), spread=0.2)
    with pytest.raises(InputError, match=r"must be > 0, got -6.*: the lens distortion was fitted where the board was"):
        calibrate_stereo(lefts, rights, board, alpha=1.0)


@pytest.mark.parametrize(
    "ids, on_one_line",
    [
        ([0, 1, 2, 3, 4, 5], True),  # a row
        ([0, 11, 22, 33, 44, 55], True),  # a diagonal
        ([4, 5, 6, 7, 8, 15], True),  # a row and one corner off it
        ([15, 4, 5, 6, 7, 8], True),  # the same, the corner off the line listed first
        ([4, 5, 6, 7, 8, 15, 16], False),  # two off it
        ([0, 1, 2, 10, 11, 12], False),  # 3x2
        ([0, 1, 2, 3, 10, 20], False),  # an L
    ],
)
def test_corners_on_one_line_are_told_apart_from_those_that_fix_the_pose(ids, on_one_line):
    board = Board.parse("charuco:11x8:0.025:0.018")
    found = np.array(ids), np.zeros((len(ids), 2), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = _fixing_the_pose(found, board.object_points(), "calibration pair a (left)")
    assert (kept is None) == on_one_line and len(caught) == on_one_line, [str(w.message) for w in caught]


def _row_angles_deg(*found) -> list[float]:
    """The direction of the first listed row of 7x7 chessboard corners, in each detection."""
    return [float(np.degrees(np.arctan2(*(corners[6] - corners[0])[::-1]))) for _, corners in found]


def test_a_square_chessboard_listed_from_a_side_in_one_view_pairs_the_right_corners(monkeypatch):
    board = Board.parse("chessboard:7x7:0.035")
    lefts, rights, rig = render_stereo_views(board, 10, seed=1, tilt_rad=0.9)
    detect = Board.detect

    def listed_from_a_side(self, image):  # as OpenCV 5.1 and 4.14 list them in this view; 4.8 did not
        found = detect(self, image)
        if image is rights[5] and abs(np.subtract(*_row_angles_deg(found, detect(self, lefts[5])))) < 60:
            found = found[0], np.rot90(found[1].reshape(7, 7, 2)).reshape(-1, 2)
        return found

    monkeypatch.setattr(Board, "detect", listed_from_a_side)
    turned = _row_angles_deg(board.detect(rights[5]), board.detect(lefts[5]))
    assert abs(turned[0] - turned[1]) > 60, turned  # the right view's corners listed from a side
    result = calibrate_stereo(lefts, rights, board)
    # measured (10 views, seed 1): baseline -0.08 %, RMS 0.05 px; 12.9 px and half the baseline with the
    # right view's corners paired turned by 90 degrees
    assert result.rms_px < 0.3
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.01


def test_save_writes_opencv_json_and_maps_that_load_back(chessboard_result, chessboard_views, tmp_path):
    result, _ = chessboard_result
    _, lefts, rights, _ = chessboard_views
    files = result.save(tmp_path / "rig")
    assert sorted(p.name for p in files.values()) == ["calibration.json", "maps.npz", "stereo.yaml"]
    assert read_calibration(files["calibration"]) == result.calibration
    from_yaml = read_calibration(files["opencv"])
    assert from_yaml.baseline_m == pytest.approx(result.calibration.baseline_m)
    expected = result.rectifier().rectify(lefts[0], rights[0])
    for source in (files["maps"], files["opencv"]):  # maps.npz, or recomputed from the YAML's matrices
        rectified = Rectifier.from_file(source).rectify(lefts[0], rights[0])
        np.testing.assert_array_equal(rectified[0], expected[0])
        np.testing.assert_array_equal(rectified[1], expected[1])
        assert rectified[2].baseline_m == pytest.approx(result.calibration.baseline_m)


def test_save_expands_a_leading_tilde(chessboard_result, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a "~" folder was made
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    files = chessboard_result[0].save("~/rig")
    assert {path.parent for path in files.values()} == {tmp_path / "home" / "rig"}
    assert not (tmp_path / "~").exists()


def test_a_save_that_fails_leaves_the_earlier_rig_whole(chessboard_result, tmp_path, monkeypatch):
    """The maps (the largest file) failing on a full disk left the new stereo.yaml and calibration.json beside the
    earlier calibration's maps.npz, which --rectify then used."""
    result, _ = chessboard_result
    files = result.save(tmp_path / "rig")
    before = {name: path.read_bytes() for name, path in files.items()}

    def full_disk(self, path):  # Rectifier.save writes whole or not at all
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(Rectifier, "save", full_disk)
    moved = dataclasses.replace(result, calibration=dataclasses.replace(result.calibration, baseline_m=0.2))
    with pytest.raises(OutputError, match=r"cannot write .*rig/maps.npz: No space left on device"):
        moved.save(tmp_path / "rig")
    assert {name: path.read_bytes() for name, path in files.items()} == before
    assert sorted(p.name for p in (tmp_path / "rig").iterdir()) == ["calibration.json", "maps.npz", "stereo.yaml"]


def test_rectifier_from_an_opencv_file_with_only_the_pose(chessboard_result, tmp_path):
    from rtstereo.io.calibration import write_opencv

    result, rig = chessboard_result
    path = write_opencv(
        tmp_path / "pose.yaml",
        {"K1": result.K1, "D1": result.D1, "K2": result.K2, "D2": result.D2, "R": result.R, "T": result.T},
        *rig.size_wh,
    )
    rectifier = Rectifier.from_file(path)
    assert rectifier.calibration.baseline_m == pytest.approx(result.calibration.baseline_m, rel=1e-6)
    assert repr(rectifier).startswith("Rectifier(480x640 (HxW)")


def _plane_view(k, d, rotation, translation, size_wh, depth_m=2.0, seed=0):
    """A camera's raw view (uint8 RGB) of a random texture on the plane z = depth_m of the left camera's frame; the
    camera at ``x_cam = rotation @ x_left + translation``, with lens distortion ``d``."""
    width, height = size_wh
    texture = cv2.GaussianBlur(
        cv2.resize(np.random.default_rng(seed).integers(0, 256, (150, 200), np.uint8), (800, 600)), (0, 0), 1.5
    )
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = cv2.undistortPoints(np.stack([u.ravel(), v.ravel()], 1)[:, None], k, d).reshape(-1, 2)
    directions = np.hstack([rays, np.ones((len(rays), 1))]) @ rotation  # rotation.T @ ray, in the left frame
    centre = -rotation.T @ translation
    points = centre + ((depth_m - centre[2]) / directions[:, 2])[:, None] * directions
    x = ((points[:, 0] + 2.0) / 4.0 * 800).reshape(height, width).astype(np.float32)  # the plane's 4 x 3 m
    y = ((points[:, 1] + 1.5) / 3.0 * 600).reshape(height, width).astype(np.float32)
    return cv2.cvtColor(cv2.remap(texture, x, y, cv2.INTER_LINEAR), cv2.COLOR_GRAY2RGB)


def test_a_raw_rig_written_by_hand_is_rectified_to_level_rows_and_the_calibration_worked_out_by_hand(tmp_path):
    """Two pinhole cameras with their own intrinsics and distortion, the right one rolled, tilted and panned by about
    a degree and a little off the baseline: the file's K, D, R, T rectify a rendered plane to rows that agree, with
    the calibration and disparity the geometry gives, and maps saved and read back rectify it byte for byte alike."""
    from rtstereo.io.calibration import write_opencv

    size_wh, depth_m = (320, 240), 2.0
    k1, k2 = np.array([[300.0, 0, 161, 0, 302, 119, 0, 0, 1]]).reshape(3, 3), np.eye(3)
    k2[:2] = [[305.0, 0, 158], [0, 306, 121]]
    d1, d2 = np.array([-0.1, 0.02, 0.001, -0.001, 0.0]), np.array([-0.08, 0.01, 0.0, 0.001, 0.0])
    rotation, translation = cv2.Rodrigues(np.array([0.01, -0.02, 0.015]))[0], np.array([-0.12, 0.004, 0.002])
    raw = [
        _plane_view(k, d, r, t, size_wh, depth_m)
        for k, d, r, t in ((k1, d1, np.eye(3), np.zeros(3)), (k2, d2, rotation, translation))
    ]
    matrices = {"K1": k1, "D1": d1, "K2": k2, "D2": d2, "R": rotation, "T": translation}
    rectifier = Rectifier.from_file(write_opencv(tmp_path / "rig.yaml", matrices, *size_wh))
    left, right, calibration = rectifier.rectify(*raw)

    r1, _, p1, _, *_ = cv2.stereoRectify(
        k1, d1, k2, d2, size_wh, rotation, translation.reshape(3, 1), flags=cv2.CALIB_ZERO_DISPARITY, alpha=0
    )
    assert calibration.baseline_m == pytest.approx(np.linalg.norm(translation), rel=1e-9)  # the camera centres
    assert calibration.cx0_px == calibration.cx1_px and calibration.fx_px == calibration.fy_px
    fx, cx, cy = p1[0, 0], p1[0, 2], p1[1, 2]
    assert (calibration.fx_px, calibration.cx0_px, calibration.cy_px) == pytest.approx((fx, cx, cy), rel=1e-9)
    assert (calibration.width_px, calibration.height_px) == size_wh
    check = check_rectification(left, right)
    assert check.conclusive and check.measured_misalignment_px < 0.5 and abs(check.offset_px) < 0.2, check
    raw_check = check_rectification(*raw)
    assert raw_check.conclusive and not raw_check.is_rectified(), raw_check  # measured: 3.3 px
    # the rectified left camera's axis meets the plane at depth_m / R1[2, 2] along it: disparity f B / that depth
    expected_px = fx * calibration.baseline_m * r1[2, 2] / depth_m
    assert check.median_dx_px == pytest.approx(expected_px, abs=0.2), (check, expected_px)  # 18.89, 18.92
    saved = Rectifier.from_file(rectifier.save(tmp_path / "maps.npz"))
    again = saved.rectify(*raw)
    assert np.array_equal(again[0], left) and np.array_equal(again[1], right) and again[2] == calibration


def test_board_parsing():
    board = Board.parse("charuco:11x8:0.03:0.022:dict_4x4_50")
    assert (board.kind, board.cols, board.rows, board.dictionary) == ("charuco", 11, 8, "DICT_4X4_50")
    assert len(board.object_points()) == 10 * 7
    assert Board.parse("chessboard:9x6:0.025").object_points()[-1].tolist() == pytest.approx([0.2, 0.125, 0.0])


# --- exceptions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("chessboard:9x6", "not understood"),
        ("circles:9x6:0.02", "not understood"),
        ("chessboard:9by6:0.02", "not understood"),
        ("chessboard:1x6:0.02", "at least 2x2"),
        ("chessboard:9x6:0", "must be > 0"),
        ("chessboard:9x6:25", "implausible"),
        # a unit or a decimal comma: "not understood (could not convert string to float: '25mm')"
        (
            "chessboard:9x6:25mm",
            r"^board 'chessboard:9x6:25mm': give the square size as a number of metres, without "
            r"a unit and with a decimal point: 0.025, not '25mm'$",
        ),
        ("chessboard:9x6:0,025", r"the square size as a number of metres, .* 0.025, not '0,025'$"),
        ("charuco:11x8:0.03:2.2 cm", r"the marker size as a number of metres, .* 0.022, not '2.2 cm'$"),
        ("chessboard:9x6:abc", r"not understood \(square size 'abc' is no number\)"),
        ("charuco:5x7:0.04:0.05", "must be smaller"),
        ("charuco:5x7:0.04:0.03:DICT_9X9_1", "unknown ArUco dictionary"),
        # more markers than the dictionary holds: OpenCV made the board, then searched views for minutes
        (
            "charuco:16x12:0.03:0.02:DICT_4X4_50",
            r"^board: a ChArUco board of 16x12 squares holds 96 markers, more than the 50 of DICT_4X4_50: give the "
            r"dictionary it was made with \(such as DICT_4X4_100\), or check its squares across x down$",
        ),
        (
            "charuco:1000x1000:0.01:0.007",
            r"holds 500000 markers, more than the 100 of DICT_5X5_100: give the dictionary",
        ),
        # never found (fewer than 6 corners), or found only with its corners on one line: "check --board"
        ("charuco:3x3:0.04:0.03", r"3x3 squares has 4 inner corners; a view needs at least 6, not on one line"),
        ("charuco:2x8:0.04:0.03", r"2x8 squares has 7 inner corners on one line; .*at least 3x4 squares"),
    ],
)
def test_board_errors(text, message):
    with pytest.raises(InputError, match=message):
        Board.parse(text)


def test_a_board_too_fine_for_the_images_is_refused_not_a_memory_error():
    """chessboard:100000x100000 ended in numpy's 'Unable to allocate 149. GiB' traceback."""
    from rtstereo.rectify import find_board_views

    view = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(InputError) as refused:
        find_board_views(Board.parse("chessboard:100000x100000:0.001"), view, view + 1, "07.png")
    assert str(refused.value) == (
        "calibration pair 07.png: a chessboard of 100000x100000 inner corners cannot show in 48x64 (HxW) images: its "
        "100001x100001 squares would need 3x3 px each at least; check --board"
    )
    with pytest.raises(
        InputError, match=r"a ChArUco board of 30x20 squares cannot show in 48x64 \(HxW\) images: its 30x20"
    ):
        find_board_views(Board.parse("charuco:30x20:0.01:0.007:DICT_4X4_1000"), view, view + 1, "07.png")
    assert find_board_views(Board.parse("chessboard:20x15:0.01"), view, view + 1, "07.png").left is None  # fits


def test_calibration_errors(chessboard_views):
    board, lefts, rights, _ = chessboard_views
    with pytest.raises(InputError, match="same number"):
        calibrate_stereo(lefts[:2], rights[:3], board)
    with pytest.raises(InputError, match="no calibration images"):
        calibrate_stereo([], [], board)
    with pytest.raises(InputError, match="alpha must be"):
        calibrate_stereo(lefts, rights, board, alpha=2)
    with pytest.raises(InputError, match=r"2 sizes: most are 480x640 \(HxW\), but 100x640: 1 \(left\); all views"):
        calibrate_stereo([lefts[0], lefts[1][:100]], rights[:2], board)
    blank = [np.full_like(lefts[0], 128)] * 5
    with pytest.raises(InputError, match=r"only 0 of 5 pairs .*: check --board \(chessboard 9x6: inner corners"):
        calibrate_stereo(blank, blank, board)
    # the board found as given by one camera: not its size but the other camera's view of it (it said check --board)
    advice = r"--board is right \(found as given in 5 views\), but both cameras must see the whole board in the same"
    with pytest.raises(InputError, match=rf"only 0 of 5 pairs \(left: 5, right: 0\).*: {advice} .*the right camera"):
        calibrate_stereo(lefts[:5], blank, board)
    with pytest.raises(InputError, match=r"only 3 of 3 pairs .*: take more pairs$"):  # the board is not in doubt
        calibrate_stereo(lefts[:3], rights[:3], board)
    with pytest.raises(InputError, match="swap the left and right"):
        calibrate_stereo(rights[:6], lefts[:6], board)
    # views paired one apart (a view missing on one side): a baseline of 0.68 m for 0.12 m, written with a warning,
    # or advice to swap the images or to turn them by 90 degrees
    for lefts_shifted, rights_shifted in ((lefts[:-1], rights[1:]), (lefts[:-2], rights[2:]), (lefts[1:], rights[:-1])):
        with pytest.raises(InputError, match=r"agree on no one rig: stereo RMS error \d+\.\d px, where each camera"):
            calibrate_stereo(lefts_shifted, rights_shifted, board)
    with pytest.raises(InputError, match="calibration pair 2: left and right are the same picture"):
        calibrate_stereo(lefts[:6], [*rights[:2], lefts[2].copy(), *rights[3:6]], board)  # was "swap the left ..."
    with pytest.raises(InputError, match=r"of 5 of 5 pairs, but in only 1 different place \(the same"):
        calibrate_stereo(lefts[:1] * 5, rights[:1] * 5, board)  # five frames of a board held still


@pytest.mark.parametrize("wrong", [(5,), (1, 5)])
def test_pairs_whose_views_are_of_different_moments_are_left_out_and_named(wrong):
    """One such pair of 10 (its right view the next pair's) gave a stereo RMS error of 2.5 px and a baseline 44 % wide,
    two 3.7 px and 176 %, written with a warning about the RMS error that named no pair."""
    board = Board.parse("chessboard:7x5:0.03")
    lefts, rights, rig = render_stereo_views(board, 10, rig=small_rig(), seed=1)
    for i in wrong:
        rights[i] = rights[i + 1]
    with pytest.warns(
        UserWarning, match=rf"{len(wrong)} pairs? not used, whose two views disagree with the rig the ot"
    ):
        result = calibrate_stereo(lefts, rights, board)
    assert result.pairs_disagreeing == tuple(str(i) for i in wrong)
    assert len(result.pairs_used) == 10 - len(wrong) and not set(result.pairs_used) & set(result.pairs_disagreeing)
    assert result.rms_px < 0.2 and _relative(result.calibration.baseline_m, rig.baseline_m) < 0.02


def test_a_chessboard_given_for_a_charuco_board_is_named_as_a_cause_beside_the_timing():
    """The chessboard's corners found on a ChArUco board fit each camera to 2-2.8 px and the two together to 19 px,
    refused as pairs not taken at the same instant, without a word about --board."""
    lefts, rights, _ = render_stereo_views(Board.parse("charuco:5x4:0.05:0.037"), 10, rig=small_rig(), seed=1)
    with pytest.raises(InputError, match=r"agree on no one rig: .*; each camera fits its views poorly too, so the "):
        calibrate_stereo(lefts, rights, Board.parse("chessboard:4x3:0.05"))


@pytest.mark.parametrize("down_m, turn, k", [(0.1, "counter-clockwise", 1), (-0.1, "clockwise", -1)])
def test_a_rig_whose_cameras_sit_one_above_the_other_is_told_which_way_to_turn_the_images(down_m, turn, k):
    """The right camera 0.1 m below the left one and 3 mm to its left was told to swap the left and right images."""
    board = Board.parse("chessboard:7x5:0.03")
    rig = dataclasses.replace(small_rig(), translation_m=np.array([0.003, -down_m, 0.002]))
    lefts, rights, _ = render_stereo_views(board, 10, rig=rig, seed=1)
    where = "below" if down_m > 0 else "above"
    with pytest.raises(InputError) as raised:
        calibrate_stereo(lefts, rights, board)
    message = str(raised.value)
    assert (
        message.startswith("the cameras sit one above the other (the one given as right 0.10") and "swap" not in message
    )
    assert (
        f" m {where} the one given as left, 0.00" in message and f"turn every image 90 degrees {turn}, which" in message
    )
    turned = [[np.ascontiguousarray(np.rot90(image, k)) for image in images] for images in (lefts, rights)]
    result = calibrate_stereo(*turned, board)  # as told: a horizontal rig
    assert _relative(result.calibration.baseline_m, rig.baseline_m) < 0.02


def test_the_corners_found_in_a_view_do_not_depend_on_what_opencv_drew_before():
    """The SB detector draws from OpenCV's global random generator: one view (the corners of a ChArUco board read as
    a chessboard) came out in three orderings in a row, and the same views calibrated twice in one session refused
    at 19.1 px, then went through with two pairs left out."""
    lefts, _, _ = render_stereo_views(Board.parse("charuco:5x4:0.05:0.037"), 10, rig=small_rig(), seed=1)
    board = Board.parse("chessboard:4x3:0.05")
    found = [board.detect(lefts[6])[1] for _ in range(2)]  # each draw moves the generator on
    cv2.setRNGSeed(12345)
    found.append(board.detect(lefts[6])[1])
    for other in found[1:]:
        np.testing.assert_array_equal(other, found[0])


def test_views_of_another_size_are_named_before_the_board_is_looked_for(chessboard_views, monkeypatch):
    """A first pair of another size was taken for the right size, the next view named as the odd one, after the
    board had been looked for in the views before it."""
    board, lefts, rights, _ = chessboard_views
    monkeypatch.setattr(Board, "detect", lambda *args: pytest.fail("the board was looked for"))
    small = [cv2.resize(image, (320, 240)) for image in (lefts[0], rights[0])]
    with pytest.raises(InputError) as caught:
        calibrate_stereo([small[0], *lefts[1:5]], [small[1], *rights[1:5]], board, names=list("abcde"))
    said = str(caught.value)
    assert said.startswith("calibration images of 2 sizes: most are 480x640 (HxW), but 240x320: a (left), a (right);")
    with pytest.raises(InputError, match=r"the left images are 480x640 \(HxW\) and the right ones 240x320: calibrate"):
        calibrate_stereo(lefts[:2], [cv2.resize(image, (320, 240)) for image in rights[:2]], board)


def test_calibration_and_rectification_refuse_values_of_the_wrong_type(chessboard_views, chessboard_result):
    """They were bare AttributeError, TypeError or cv2.error (a float image, inside OpenCV's corner detector)."""
    board, lefts, rights, _ = chessboard_views
    cases = [
        ((lefts[:4], rights[:4], "chessboard:9x6:0.03"), {}, r"^board: expected a Board, such as Board.parse\("),
        ((None, None, board), {}, "^lefts: expected a list of images"),
        (("l.png", "r.png", board), {}, "^lefts: expected a list of images .*got str"),
        (([lefts[0] / 255.0] * 4, rights[:4], board), {}, r"^calibration image 0 \(left\): expected dtype uint8"),
        ((lefts[:4], ["r.png"] * 4, board), {}, r"^calibration image 0 \(right\): expected a numpy array, got str"),
        ((lefts[:4], rights[:4], board), {"alpha": "0.5"}, "^alpha: expected a number in"),
        ((lefts[:4], rights[:4], board), {"names": ["a", "b"]}, "^2 names for 4 pairs"),  # left 2 pairs out
    ]
    for args, kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            calibrate_stereo(*args, **kwargs)
    with pytest.raises(InputError, match="^board: expected text, chessboard:COLSxROWS"):
        Board.parse(5)
    rectifier = chessboard_result[0].rectifier()
    with pytest.raises(InputError, match="^rectification maps file: expected a path"):
        rectifier.save(5)
    for image, got in ((None, "NoneType"), ("left.png", "str"), (lefts[0][0, 0], r"an array of shape \(3,\)")):
        with pytest.raises(
            InputError, match=rf"^left image: expected a numpy array \(H, W, 3\) or \(H, W\), got {got}"
        ):
            rectifier.rectify(image, rights[0])
    for dtype in (bool, np.int64, np.float16):  # cv2.error tracebacks from remap
        with pytest.raises(InputError, match=rf"^right image: expected dtype uint8 .*, got {np.dtype(dtype)}$"):
            rectifier.rectify(lefts[0], rights[0].astype(dtype))
    one_channel = lefts[0][..., :1]  # came back (H, W): "the same dtype and channels", says the docstring
    assert rectifier.rectify(one_channel, one_channel)[0].shape == one_channel.shape
    assert rectifier.rectify(lefts[0].astype(np.uint16), rights[0])[0].dtype == np.uint16


def test_views_of_a_board_facing_the_cameras_squarely_get_a_warning(chessboard_views):
    board, lefts, rights, _ = chessboard_views
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=NEAR_THE_MIDDLE)
        calibrate_stereo(lefts, rights, board)
    square_lefts, square_rights, _ = render_stereo_views(board, 8, seed=1, tilt_rad=0.1)  # largest tilt 5.5 degrees
    with pytest.warns(UserWarning, match=r"faces the cameras squarely in every view \(largest tilt \d\.\d degrees\)"):
        try:  # calibrated on OpenCV 5.1; another version's solver may end with the left camera on the right (below)
            calibrate_stereo(square_lefts, square_rights, board)
        except InputError as exc:
            assert "faces the cameras squarely" in str(exc) and "swap" not in str(exc), exc


def test_views_of_a_board_seen_small_get_a_warning(chessboard_views):
    """Twelve views of the board 1.2-1.6 m away, spanning 12-13 % of the 640x480 images: focal lengths 1.8 % and 2.3 %
    off and a baseline 1.5 % off at 0.07 px RMS, written without a word (the rectification's zoom 1.06, no warning)."""
    board, lefts, rights, rig = chessboard_views
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=NEAR_THE_MIDDLE)
        calibrate_stereo(lefts, rights, board)  # 0.55-0.9 m: the median view's corners span 22 %
    far_lefts, far_rights, _ = render_stereo_views(board, 12, seed=1, distance_m=(1.2, 1.6))
    with pytest.warns(UserWarning, match=r"the board is small in the images: its corners span 12 % of the image"):
        result = calibrate_stereo(far_lefts, far_rights, board)
    assert _relative(result.K1[0, 0], rig.k_left[0, 0]) > 0.01  # what the warning is for


WIDE_ANGLE_LENSES = (np.array([-0.28, 0.09, 0.0005, -0.0004, 0.0]), np.array([-0.26, 0.08, -0.0003, 0.0006, 0.0]))


def _rows_off_px(result, rig, lenses, depth_m: float = 3.0) -> float:
    """The largest row misalignment, within the rectified left image, of a plane ``depth_m`` away seen through the true
    lenses and rectified with the calibration ``result``."""
    xs, ys = np.meshgrid(np.linspace(8, rig.size_wh[0] - 8, 40), np.linspace(8, rig.size_wh[1] - 8, 30))
    left_px = np.column_stack([xs.ravel(), ys.ravel()]).reshape(-1, 1, 2)
    rays = cv2.undistortPoints(left_px, rig.k_left, lenses[0]).reshape(-1, 2)
    points = np.column_stack([rays * depth_m, np.full(len(rays), depth_m)])
    turn = cv2.Rodrigues(rig.rotation)[0]
    right_px = cv2.projectPoints(points, turn, rig.translation_m, rig.k_right, lenses[1])[0]
    exact = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    r = result
    left = cv2.undistortPoints(left_px, r.K1, r.D1, R=r.R1, P=r.P1, criteria=exact).reshape(-1, 2)
    right = cv2.undistortPoints(right_px, r.K2, r.D2, R=r.R2, P=r.P2, criteria=exact).reshape(-1, 2)
    inside = ((left >= 0) & (left < rig.size_wh)).all(axis=1) & ((right >= 0) & (right < rig.size_wh)).all(axis=1)
    return float(np.abs(left[inside, 1] - right[inside, 1]).max())


def test_views_whose_corners_stay_near_the_middle_of_the_images_get_a_warning():
    """Views of a rig with wide-angle lenses, the board always in the middle: their corners reached a third of the way
    to the images' corners, the distortion beyond was a guess, and the rectified rows came out up to 21 px apart, at
    0.07 px RMS and without a word (12 views of 3 seeds: 28-42 px, a tenth of the depths 65-194 % off)."""
    board = Board.parse("chessboard:9x6:0.03")
    lefts, rights, rig = render_stereo_views(board, 10, seed=2, spread=0, distortion=WIDE_ANGLE_LENSES)
    with pytest.warns(UserWarning, match=r"the board's corners reach only 3\d % of the way .* \(left camera, over all"):
        result = calibrate_stereo(lefts, rights, board)
    assert _rows_off_px(result, rig, WIDE_ANGLE_LENSES) > 5 and result.rms_px < 0.1
    # moved out towards the images' corners (0.4-0.6 m away): 61 % of the way, rows within 0.8 px
    lefts, rights, rig = render_stereo_views(
        board, 10, seed=3, spread=2.5, distance_m=(0.4, 0.6), distortion=WIDE_ANGLE_LENSES
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = calibrate_stereo(lefts, rights, board)
    assert _rows_off_px(result, rig, WIDE_ANGLE_LENSES) < 2.5


@pytest.mark.parametrize("seed", [1, 2])
def test_views_of_a_board_facing_the_cameras_squarely_all_but_exactly_are_refused(seed):
    """Views within 1 degree of facing the cameras gave a warning and a calibration written with exit code 0: a
    baseline of 0.19 m (seed 1) or 27.6 m (seed 2) for the rig's 0.12 m, the latter with a warning to read the
    file in millimetres (--calib-unit mm), which calibrate does not write."""
    board = Board.parse("chessboard:9x6:0.03")
    lefts, rights, _ = render_stereo_views(board, 8, seed=seed, tilt_rad=0.015)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error alone: no warning before it
        with pytest.raises(InputError) as raised:
            calibrate_stereo(lefts, rights, board)
    assert re.fullmatch(
        r"the board faces the cameras squarely in every view \(largest tilt [01]\.\d degrees, under 5\): such views "
        r"cannot tell the focal length from the distance, so the focal length and the baseline come out arbitrary "
        r"\(metres wide, or tens of % off\) whatever the RMS error; add views with the board tilted by 20-45 degrees",
        str(raised.value),
    ), raised.value


def test_a_baseline_metres_wide_is_not_said_to_be_a_file_in_millimetres(chessboard_views, monkeypatch):
    """calibrate warned "if the file's lengths are in millimetres read it with length_unit='mm' (--calib-unit mm)"
    of the calibration it was computing, whose unit is --board's."""
    import rtstereo.rectify as rectify

    board, lefts, rights, _ = chessboard_views
    solved = cv2.stereoCalibrateExtended

    def metres_wide(*args, **kwargs):
        fit = list(solved(*args, **kwargs))  # rms, K1, D1, K2, D2, R, T, E, F, rvecs, tvecs, per-view errors
        fit[6] = fit[6] * 100
        return tuple(fit)

    monkeypatch.setattr(cv2, "stereoCalibrateExtended", metres_wide)
    with pytest.warns(rectify.CalibrationUnitWarning) as said:
        result = calibrate_stereo(lefts[:6], rights[:6], board)
    assert [str(w.message) for w in said if not re.match(NEAR_THE_MIDDLE, str(w.message))] == [
        f"stereo calibration: baseline of {result.calibration.baseline_m:.4g} m, wider than stereo rigs usually are: "
        "check the square size given with --board (0.03 m), and add views with the board tilted by 20-45 degrees"
    ]


@pytest.mark.parametrize("ending", ["left camera on the right", "negative focal length"])
def test_a_calibration_left_undetermined_by_square_views_says_so_not_swap(monkeypatch, ending):
    """Views of a board facing the cameras squarely leave the rig undetermined, and where the solver ends depends
    on OpenCV's version and the views: on 4.8 these views gave 'the camera given as left is 0.0028 m to the right
    of the other one: swap the left and right images', on 5.1 others 'focal lengths in the projection matrix must
    be > 0'. Both are forced here, so that the test holds on every version."""
    import rtstereo.rectify as rectify

    board = Board.parse("chessboard:9x6:0.03")
    lefts, rights, _ = render_stereo_views(board, 8, seed=1, tilt_rad=0.1)  # largest tilt 5.5: warned, not refused
    solved = cv2.stereoCalibrateExtended
    left_on_the_right = ending == "left camera on the right"

    def stereo_calibrate(*args, **kwargs):
        fit = list(solved(*args, **kwargs))  # rms, K1, D1, K2, D2, R, T, E, F, rvecs, tvecs, per-view errors
        translation = fit[6].copy()
        translation[0] = abs(translation[0]) if left_on_the_right else -abs(translation[0])
        fit[6] = translation
        return tuple(fit)

    monkeypatch.setattr(cv2, "stereoCalibrateExtended", stereo_calibrate)
    if left_on_the_right:
        expected = r"the camera given as left is \d\.\d{4} m to the right of the other one: the board faces"
    else:

        def projections(p1, p2, *args, **kwargs):
            raise InputError("stereo calibration: focal lengths in the projection matrix must be > 0, got -1.8, -1.8")

        monkeypatch.setattr(rectify, "calibration_from_projections", projections)
        expected = r"focal lengths in the projection matrix must be > 0, got -1.8, -1.8: the board faces"
    with pytest.warns(UserWarning, match="faces the cameras squarely"), pytest.raises(InputError) as raised:
        calibrate_stereo(lefts, rights, board)
    message = str(raised.value)
    assert re.search(expected, message) and "swap" not in message, message
    assert re.search(
        r"the cameras squarely in every view \(largest tilt \d\.\d degrees\), so the views cannot determine the "
        "rig; add views with the board tilted by 20-45 degrees$",
        message,
    ), message


def test_rectifier_errors(chessboard_result, tmp_path):
    result, _ = chessboard_result
    rectifier = result.rectifier()
    small = np.zeros((100, 120, 3), np.uint8)
    with pytest.raises(InputError, match=r"left image is 100x120 but the rectification maps are for 480x640 \(HxW\)"):
        rectifier.rectify(small, small)
    with pytest.raises(InputError, match="not found"):
        Rectifier.from_file(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(InputError, match="not an rtstereo rectification-maps file"):
        Rectifier.from_file(other)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(InputError, match="cannot read rectification maps"):
        Rectifier.from_file(damaged)
    from rtstereo.io.calibration import write_opencv

    incomplete = write_opencv(tmp_path / "k.yaml", {"K1": result.K1}, 640, 480)
    with pytest.raises(InputError, match="needs K1, D1, K2, D2"):
        Rectifier.from_file(incomplete)
    no_pose = write_opencv(
        tmp_path / "np.yaml", {"K1": result.K1, "D1": result.D1, "K2": result.K2, "D2": result.D2}, 640, 480
    )
    with pytest.raises(InputError, match="R, T"):
        Rectifier.from_file(no_pose)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError) as info:  # it said "[Errno 17] File exists: '.../file'"
        rectifier.save(blocker / "maps.npz")
    assert str(info.value) == f"cannot write {blocker / 'maps.npz'}: {blocker} is a file, not a folder"
    with pytest.raises(OutputError) as info:
        result.save(blocker / "rig")
    assert str(info.value) == f"cannot create output folder {blocker / 'rig'}: {blocker} is a file, not a folder"
    for name in ("maps", "maps.NPZ.bak"):  # numpy would have written maps.npz and returned "maps"
        with pytest.raises(OutputError, match=rf"maps file .*{name} must end in .npz"):
            rectifier.save(tmp_path / name)
    assert not list(tmp_path.glob("maps*"))
    upper = rectifier.save(tmp_path / "MAPS.NPZ")
    assert sorted(p.name for p in tmp_path.glob("MAPS*")) == ["MAPS.NPZ"]
    assert Rectifier.from_file(upper).calibration == rectifier.calibration


def _damaged_maps(saved, tmp_path, **changes):
    with np.load(saved) as data:
        fields = {key: data[key] for key in data.files}
    fields.update(changes)
    np.savez(tmp_path / "damaged_maps.npz", **fields)
    return tmp_path / "damaged_maps.npz"


def test_a_damaged_maps_file_is_refused_in_one_line(chessboard_result, tmp_path):
    import json

    result, _ = chessboard_result
    saved = result.rectifier().save(tmp_path / "maps.npz")
    with np.load(saved) as data:
        map1, map2 = data["left_map1"], data["left_map2"]
        recorded = json.loads(str(data["calibration"]))
    halved = json.dumps({**recorded, "width_px": 320, "height_px": 240})
    for changes, message in (
        # each was a cv2.error traceback at the first pair, or (the calibration) depths scaled by 2 without a word
        ({"left_map1": map1.astype(np.float64)}, r"the left camera's maps are float64 \(480, 640, 2\) and uint16"),
        ({"right_map1": map1[:100], "right_map2": map2[:100]}, r"right camera's maps are int16 \(100, 640, 2\)"),
        (
            {"calibration": np.array(halved)},
            r"its calibration is for 240x320 \(HxW\) images but its maps make 480x640 ones",
        ),
        ({"calibration": np.array("{damaged")}, "its calibration entry is not valid JSON"),
    ):
        with pytest.raises(InputError, match=message):
            Rectifier.from_file(_damaged_maps(saved, tmp_path, **changes))
    floats = cv2.convertMaps(map1, map2, cv2.CV_32FC1)  # the other layout cv2.remap takes is read
    rectifier = Rectifier.from_file(_damaged_maps(saved, tmp_path, left_map1=floats[0], left_map2=floats[1]))
    assert rectifier.calibration == result.calibration


def test_default_rig_is_a_horizontal_pair():
    rig = default_rig()
    assert rig.translation_m[0] < 0 and rig.baseline_m == pytest.approx(0.12, rel=0.01)


def _pose_file(tmp_path, name, translation_scale=1.0, **scalars):
    """An OpenCV YAML with only ``K1 D1 K2 D2 R T`` of an ideal 0.12 m rig, ``T`` times ``translation_scale``."""
    from rtstereo.io.calibration import write_opencv

    k = np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]])
    t = np.array([[-0.12 * translation_scale], [0.0], [0.0]])
    matrices = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "R": np.eye(3), "T": t}
    return write_opencv(tmp_path / name, matrices, 160, 120, **scalars)


def test_a_swapped_raw_rig_is_refused_in_the_terms_of_its_file(tmp_path):
    """A rig of R, T with T's sign turned: the error quoted P[0,3] = 0, 24, values that are not in the file."""
    with pytest.raises(InputError, match=r"T = 0.12, 0, 0 puts the right camera to the left .*swapped") as swapped:
        Rectifier.from_file(_pose_file(tmp_path, "swapped.yaml", -1.0))
    assert "P[0,3]" not in str(swapped.value)


def test_a_raw_rig_without_its_image_size_is_told_to_add_it_not_the_matrices_it_has(tmp_path):
    """It said 'rectification needs K1, D1, K2, D2 and the image size; found D1, D2, K1, K2, R, T and size 0x0'."""
    from rtstereo.io.calibration import read_opencv, write_opencv

    matrices = read_opencv(_pose_file(tmp_path, "sized.yaml")).matrices
    unsized = write_opencv(tmp_path / "unsized.yaml", matrices)
    with pytest.raises(InputError) as refused:
        Rectifier.from_file(unsized)
    assert str(refused.value) == (
        f"{unsized} holds both cameras (their matrices and distortion) but not the size of the images they were "
        "calibrated at, which the rectification maps are made for: add image_width and image_height (or "
        "image_size: [width, height]) to it"
    )
    # what the message says to add is read
    sized = tmp_path / "image_size.yaml"
    sized.write_text(unsized.read_text() + "image_size: [160, 120]\n")
    assert Rectifier.from_file(sized).size_hw == (120, 160)


def test_a_rig_with_an_absurd_image_size_is_refused_before_its_maps_are_built(tmp_path, monkeypatch):
    """100000x100000 ended in OpenCV's out-of-memory traceback; 12 B per pixel of maps against the budget."""
    from rtstereo.io.calibration import write_opencv
    from rtstereo.runtime.memory import MemoryBudgetError

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")
    k = np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]])
    matrices = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "R": np.eye(3), "T": np.array([-0.12, 0, 0])}
    huge = write_opencv(tmp_path / "huge.yaml", matrices, 1000, 100)  # 1.2 MB of maps
    with pytest.raises(
        MemoryBudgetError,
        match=r"huge.yaml: rectification maps for 1000x100 \(WxH\) images need about 1.1 MB, more than the 1.0 MB",
    ):
        Rectifier.from_file(huge)
    assert Rectifier.from_file(write_opencv(tmp_path / "fits.yaml", matrices, 160, 120)).size_hw == (120, 160)


def test_rectifier_reads_lengths_in_the_unit_of_the_file_or_the_one_given(tmp_path):
    metres = _pose_file(tmp_path, "m.yaml")
    tagged = _pose_file(tmp_path, "mm_tagged.yaml", 1000.0, length_unit="mm")
    untagged = _pose_file(tmp_path, "mm.yaml", 1000.0)
    assert Rectifier.from_file(metres).calibration.baseline_m == pytest.approx(0.12)
    assert Rectifier.from_file(tagged).calibration.baseline_m == pytest.approx(0.12)
    assert Rectifier.from_file(tagged, length_unit="mm").calibration.baseline_m == pytest.approx(0.12)
    assert Rectifier.from_file(untagged, length_unit="mm").calibration.baseline_m == pytest.approx(0.12)
    with pytest.raises(InputError, match=r"says its lengths are in mm \(length_unit\), but m was given"):
        Rectifier.from_file(tagged, length_unit="m")
    with pytest.raises(InputError, match="unknown length unit 'inch'"):
        Rectifier.from_file(metres, length_unit="inch")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"K1": np.eye(2)}, r"K1 has shape \(2, 2\); expected 3x3"),
        ({"K2": np.zeros((3, 3))}, "K2's focal lengths must be > 0, got 0, 0"),
        # OpenCV 4 has no 1-D matrices: the vector of 3 written is read back as a 3x1 column
        ({"D1": np.zeros(3)}, r"D1 holds 3 distortion coefficients \(shape \(3,( 1)?\)\); expected a vector of 4, 5"),
        ({"D2": np.zeros((3, 3))}, "D2 holds 9 distortion coefficient"),
        ({"R": np.eye(2)}, r"R has shape \(2, 2\)"),
        ({"R": np.full((3, 3), np.nan)}, "R holds values that are not finite"),
        ({"T": np.array([[-0.12], [0.0]])}, r"T has shape \(2, 1\); expected 3 numbers"),
        ({"T": np.zeros((3, 1))}, "T is 0, 0, 0: the two cameras are at one place"),
        ({"R": np.zeros((3, 3))}, r"R is not a rotation \(.*determinant \+1, got 0\): 0, 0, 0,"),
        ({"R": np.diag([1.0, 1.0, 2.0])}, r"R is not a rotation \(.*got 2\)"),
        ({"R": np.diag([1.0, 1.0, -1.0])}, r"R is not a rotation \(.*got -1\)"),  # a mirror
        ({"R1": np.eye(3), "R2": np.eye(3) * 0.9, "P1": np.eye(3, 4), "P2": np.eye(3, 4)}, "R2 is not a rotation"),
        (
            {"K1": np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 0]])},
            "K1's last row must be 0, 0, 1, got 0, 0, 0",
        ),
    ],
)
def test_rectifier_refuses_rig_matrices_opencv_cannot_rectify_with(tmp_path, changes, message):
    """A zero T failed inside OpenCV with an assertion traceback; a singular, scaled or mirroring R, and a K
    whose last row is not 0, 0, 1, gave a rectified calibration (thousands of px off for R = 0) without a word."""
    from rtstereo.io.calibration import read_opencv, write_opencv

    matrices = {**read_opencv(_pose_file(tmp_path, "m.yaml")).matrices, **changes}
    with pytest.raises(InputError, match=message):  # was a cv2.error or ValueError traceback, or black images
        Rectifier.from_file(write_opencv(tmp_path / "bad.yaml", matrices, 160, 120))


def test_a_rotation_rounded_to_three_decimals_is_still_a_rotation(tmp_path):
    from rtstereo.io.calibration import read_opencv, write_opencv

    matrices = read_opencv(_pose_file(tmp_path, "m.yaml")).matrices
    rounded = np.round(cv2.Rodrigues(np.array([0.2, -0.3, 0.25]))[0], 3)  # |R R^T - I| up to 1.2e-3
    matrices["R"] = rounded
    assert Rectifier.from_file(write_opencv(tmp_path / "rounded.yaml", matrices, 160, 120)).calibration.fx_px > 0


def test_a_rig_file_with_m1_but_no_m2_is_refused_in_one_line(tmp_path):
    import subprocess
    import sys

    from rtstereo.io.calibration import read_opencv, write_opencv

    matrices = read_opencv(_pose_file(tmp_path, "m.yaml")).matrices
    matrices["M1"] = matrices.pop("K1")
    del matrices["K2"]
    path = write_opencv(tmp_path / "m1.yaml", matrices, 160, 120)
    # in a process of its own: OpenCV given the missing M2 as None crashed (segmentation fault)
    code = f"from rtstereo.rectify import Rectifier; Rectifier.from_file({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "rectification needs K1, D1, K2, D2" in done.stderr.strip().splitlines()[-1], done.stderr


def test_rectifier_says_which_option_takes_a_rectified_calibration(tmp_path):
    from rtstereo.io.calibration import write_calibration, write_opencv

    cal = Rectifier.from_file(_pose_file(tmp_path, "m.yaml")).calibration
    json_file = write_calibration(tmp_path / "calibration.json", cal)
    p1_p2 = write_calibration(tmp_path / "p.yaml", cal)
    q_only = write_opencv(tmp_path / "q.yaml", {"Q": np.eye(4)}, 160, 120)
    middlebury = tmp_path / "calib.txt"
    middlebury.write_text("cam0=[200 0 79.5; 0 200 59.5; 0 0 1]\ncam1=[200 0 79.5; 0 200 59.5; 0 0 1]\nbaseline=120\n")
    kitti = tmp_path / "000000.txt"
    kitti.write_text("P0: 200 0 79.5 0 0 200 59.5 0 0 0 1 0\nP1: 200 0 79.5 -24 0 200 59.5 0 0 0 1 0\n")
    for path in (json_file, p1_p2, q_only, middlebury, kitti):
        with pytest.raises(InputError, match=r"rectified calibration.*--calib"):
            Rectifier.from_file(path)


def test_a_rectification_file_of_the_wrong_type_or_a_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"rectification file: expected a path \(str or Path\), got int"):
        Rectifier.from_file(5)  # pathlib's bare TypeError before
    with pytest.raises(InputError, match="rectification file is a folder, not a file"):
        Rectifier.from_file(tmp_path)


def test_the_folder_calibrate_wrote_given_for_a_file_names_the_files_to_give(tmp_path, chessboard_result):
    """--rectify rig/ (calibrate's -o) was only 'rectification file is a folder, not a file: rig'."""
    from rtstereo.io.calibration import read_calibration

    result, _ = chessboard_result
    rig = tmp_path / "rig"
    result.save(rig)
    files = (
        f"; it holds the output of rtstereo calibrate: --rectify {rig / 'maps.npz'} for raw pairs, --calib "
        f"{rig / 'calibration.json'} for pairs rectified already"
    )
    with pytest.raises(InputError) as rectify:
        Rectifier.from_file(rig)
    assert str(rectify.value) == f"rectification file is a folder, not a file: {rig}{files}"
    with pytest.raises(InputError) as calib:
        read_calibration(rig)
    assert str(calib.value) == f"calibration file is a folder, not a file: {rig}{files}"
    with pytest.raises(InputError) as other:  # a folder without them: as before
        Rectifier.from_file(tmp_path)
    assert str(other.value) == f"rectification file is a folder, not a file: {tmp_path}"


def test_a_maps_file_that_is_no_npz_archive_is_one_input_error(tmp_path):
    # an empty file raised EOFError, a .npy under the name TypeError ("does not support the context manager
    # protocol"), and any other file numpy's advice to load it "unsafely using the allow_pickle= keyword argument"
    empty, array, text = tmp_path / "empty.npz", tmp_path / "array.npz", tmp_path / "text.npz"
    empty.write_bytes(b"")
    with array.open("wb") as file:
        np.save(file, np.zeros(3))
    text.write_text("not maps")
    for path in (empty, array, text):
        with pytest.raises(
            InputError, match=rf"cannot read rectification maps .*{path.name}: not a NumPy .npz archive"
        ):
            Rectifier.from_file(path)


def test_a_rectify_file_that_is_no_opencv_text_says_what_it_is_and_what_rectify_takes(tmp_path):
    # a PNG was "OpenCV cannot parse it as YAML/XML/JSON (OpenCV(5.1.0) /io/opencv/.../persistence_yml.cpp:857: ...)"
    takes = "--rectify takes the maps.npz written by `rtstereo calibrate`, or an OpenCV YAML/XML/JSON file with K1"
    png = tmp_path / "left.png"
    cv2.imwrite(str(png), np.zeros((8, 8, 3), np.uint8))
    binary = tmp_path / "maps.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    for path, what in ((png, "a PNG image"), (binary, "a binary file (not text)")):
        with pytest.raises(InputError) as info:
            Rectifier.from_file(path)
        assert str(info.value).startswith(f"{path} is {what}, not a rectification file: {takes}"), info.value
    text = tmp_path / "notes.txt"
    text.write_text("hi\n")
    with pytest.raises(InputError) as info:
        Rectifier.from_file(text)
    message = str(info.value)
    assert message.startswith(f"{text}: OpenCV cannot parse it as YAML/XML/JSON (line 1: ") and takes in message
    assert "persistence" not in message and "OpenCV(" not in message, message
