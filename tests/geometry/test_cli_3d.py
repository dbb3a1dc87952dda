"""The command line for 3D: `predict --calib/--rectify/--lr-check --format depth,ply` and `calibrate`."""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from board_views import render_stereo_views, small_rig
from tests.conftest import make_textured_pair, run_cli

import rtstereo.cli
from rtstereo.cli import main
from rtstereo.geometry import CalibrationWarning
from rtstereo.io.calibration import projection_matrices, read_calibration, write_calibration, write_opencv
from rtstereo.io.pfm import read_pfm
from rtstereo.rectify import Board
from rtstereo.sinks.pointcloud import NEEDS_CALIBRATION, read_ply
from rtstereo.types import Calibration

# A calibration for the 160x120 test pair: 5 px of disparity at fx 200 px and 0.1 m baseline is 4 m.
CAL = Calibration(
    fx_px=200.0,
    fy_px=200.0,
    cx0_px=79.5,
    cx1_px=79.5,
    cy_px=59.5,
    baseline_m=0.1,
    width_px=160,
    height_px=120,
)
DEPTH_M = 0.1 * 200 / 5


@pytest.fixture(autouse=True)
def _calibrate_verb(monkeypatch):
    if "calibrate" not in rtstereo.cli.VERBS:
        monkeypatch.setattr(rtstereo.cli, "VERBS", [*rtstereo.cli.VERBS, "calibrate"])


@pytest.fixture
def pair_files(tmp_path):
    left, right = make_textured_pair(120, 160, disparity_px=5)
    paths = tmp_path / "l.png", tmp_path / "r.png"
    for path, image in zip(paths, (left, right)):
        cv2.imwrite(str(path), image[:, :, ::-1])
    return paths


@pytest.fixture
def calib_file(tmp_path):
    return write_calibration(tmp_path / "calib.json", CAL)


SGBM = ("--model", "sgbm", "--max-disp", "16")


# --- feature --------------------------------------------------------------------------------------


def test_predict_writes_metric_depth_and_point_cloud(capsys, tmp_path, pair_files, calib_file):
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys,
        "predict",
        *pair_files,
        *SGBM,
        "--calib",
        calib_file,
        "--format",
        "depth,depth_mm,ply",
        "-o",
        out,
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".l.made-with.json", "l.ply", "l_depth.pfm", "l_depth_mm.png"]
    depth = read_pfm(out / "l_depth.pfm")
    assert np.median(depth[np.isfinite(depth)]) == pytest.approx(DEPTH_M, rel=0.02)
    points, colors = read_ply(out / "l.ply")
    assert len(points) > 0.5 * 120 * 160 and np.median(points[:, 2]) == pytest.approx(DEPTH_M, rel=0.02)
    assert f"median depth {DEPTH_M:.2f} m" in stdout
    assert "warning" not in err


def test_the_median_depth_of_a_near_scene_is_said_in_a_unit_that_shows_it(capsys, tmp_path, pair_files):
    """A scene 4 mm away (a 0.1 mm baseline: a microscope's) was summed up as "median depth 0.00 m"."""
    calib_file = write_calibration(tmp_path / "near.json", dataclasses.replace(CAL, baseline_m=1e-4))
    code, stdout, _ = run_cli(capsys, "predict", *pair_files, *SGBM, "--calib", calib_file, "-o", tmp_path / "out")
    assert code == 0 and "median depth 4.00 mm" in stdout, stdout


def test_predict_max_depth_applies_to_its_run_only(capsys, tmp_path, pair_files, calib_file):
    args = ("predict", *pair_files, *SGBM, "--calib", calib_file, "--format", "ply")
    from rtstereo.sinks.pointcloud import EmptyCloudWarning

    with pytest.warns(EmptyCloudWarning, match="beyond the maximum depth"):
        code, _, err = run_cli(capsys, *args, "--max-depth", DEPTH_M * 0.9, "-o", tmp_path / "near")
    assert code == 0, err
    assert len(read_ply(tmp_path / "near" / "l.ply")[0]) == 0  # every point is 4 m away
    assert run_cli(capsys, *args, "-o", tmp_path / "all")[0] == 0
    assert len(read_ply(tmp_path / "all" / "l.ply")[0]) > 0


def test_glb_is_written_without_trimesh(capsys, tmp_path, pair_files, calib_file, monkeypatch):
    """--format glb was refused without the 3d extra (trimesh), which the GLB writer no longer uses."""
    import sys

    monkeypatch.setitem(sys.modules, "trimesh", None)  # makes `import trimesh` fail
    argv = ["predict", *pair_files, *SGBM, "--calib", calib_file, "--format", "glb"]
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "l.glb").read_bytes()[:4] == b"glTF"


def test_predict_lr_check_invalidates_the_unmatched_border(capsys, tmp_path, pair_files):
    plain, checked = tmp_path / "plain.pfm", tmp_path / "checked.pfm"
    assert run_cli(capsys, "predict", *pair_files, *SGBM, "-o", plain)[0] == 0
    code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, "--lr-check", "-o", checked)
    assert code == 0, err
    invalid_plain, invalid_checked = (np.isinf(read_pfm(p)) for p in (plain, checked))
    assert invalid_checked.sum() > invalid_plain.sum()
    assert invalid_checked[:, :5].all()  # the first 5 columns have no match in the right image


def test_predict_warns_about_an_unrectified_pair(capsys, tmp_path, pair_files):
    left, right = pair_files
    shifted = tmp_path / "r_shift.png"
    cv2.imwrite(str(shifted), np.roll(cv2.imread(str(right)), 3, axis=0))
    code, _, err = run_cli(capsys, "predict", left, shifted, *SGBM, "-o", tmp_path / "d.pfm")
    assert code == 0
    assert "warning: l: the pair does not look rectified" in err and "rtstereo calibrate" in err
    code, _, err = run_cli(
        capsys, "predict", left, shifted, *SGBM, "-o", tmp_path / "d.pfm", "--no-rectification-check"
    )
    assert code == 0 and "warning" not in err


def test_an_unrectified_pair_with_a_raw_rig_file_given_to_calib_points_to_rectify(capsys, tmp_path, pair_files):
    left, right = pair_files
    shifted = tmp_path / "r_shift.png"
    cv2.imwrite(str(shifted), np.roll(cv2.imread(str(right)), 3, axis=0))
    rectified = projection_matrices(CAL)
    k = rectified["P1"][:, :3]
    rig = write_opencv(tmp_path / "stereo.yaml", {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), **rectified})
    only_rectified = write_opencv(tmp_path / "rectified.yaml", rectified, 160, 120)
    hint = "stereo.yaml also holds the raw cameras (K1, D1, K2, D2): if these images are not rectified yet, give it"
    for calib, pair, expected in ((rig, shifted, True), (only_rectified, shifted, False), (rig, right, False)):
        code, _, err = run_cli(
            capsys, "predict", left, pair, *SGBM, "--calib", calib, "--format", "depth", "-o", tmp_path
        )
        assert code == 0, err
        assert (hint in err) == expected, err
        assert ("not look rectified" in err) == (pair == shifted), err


def test_an_unrectified_pair_with_calibrates_json_given_to_calib_points_to_the_maps_beside_it(
    capsys, tmp_path, pair_files
):
    """A rig folder's calibration.json given to --calib with raw pairs: the advice was only 'Calibrate the rig
    (rtstereo calibrate) and pass --rectify maps.npz', the command that had written the file given."""
    from rtstereo.rectify import Rectifier

    left, right = pair_files
    shifted = tmp_path / "r_shift.png"
    cv2.imwrite(str(shifted), np.roll(cv2.imread(str(right)), 3, axis=0))
    k, p = projection_matrices(CAL)["P1"][:, :3], projection_matrices(CAL)["P1"]
    rig = tmp_path / "rig"
    Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p, p, (160, 120), CAL).save(
        rig / "maps.npz"
    )
    calib = write_calibration(rig / "calibration.json", CAL, rms_px=0.1)
    other = write_calibration(tmp_path / "other" / "calibration.json", dataclasses.replace(CAL, baseline_m=0.2))
    Rectifier.from_file(rig / "maps.npz").save(other.with_name("maps.npz"))  # another rig's maps
    maps = rig / "maps.npz"
    hint = (
        f"{calib} is the calibration of rectified images that rtstereo calibrate wrote beside {maps}, which rectifies "
        f"raw pairs: if these images are not rectified yet, give --rectify {maps} instead of --calib"
    )
    for given, pair, expected in ((calib, shifted, True), (other, shifted, False), (calib, right, False)):
        code, _, err = run_cli(
            capsys, "predict", left, pair, *SGBM, "--calib", given, "--format", "depth", "-o", tmp_path
        )
        assert code == 0, err
        assert (hint in err) == expected, err
        assert ("is the calibration of rectified images" in err) == expected, err


def test_a_pair_rectify_left_unrectified_is_not_told_to_pass_rectify(capsys, tmp_path, pair_files):
    """Rectified images given to --rectify again (or maps of another rig) were told 'Calibrate the rig (rtstereo
    calibrate) and pass --rectify maps.npz', which is what had been done."""
    from rtstereo.rectify import CALIBRATE_ADVICE, Rectifier

    left, right = pair_files
    k, p = projection_matrices(CAL)["P1"][:, :3], projection_matrices(CAL)["P1"]
    moved = p.copy()
    moved[1, 2] += 3.0  # these maps move the right view's rows by 3 px
    maps = Rectifier.from_matrices(
        k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p, moved, (160, 120), CAL
    ).save(tmp_path / "rig" / "maps.npz")
    code, _, err = run_cli(capsys, "predict", left, right, *SGBM, "--rectify", maps, "-o", tmp_path / "d.pfm")
    assert code == 0, err
    assert "the pair does not look rectified" in err and CALIBRATE_ADVICE not in err, err
    assert (
        f"The pair went through --rectify {maps}: if its images were rectified already, give the rig's calibration "
        "to --calib instead; if they come from another rig, or another camera mode, than the one calibrated, "
        "calibrate it again (rtstereo calibrate)"
    ) in err, err
    for side, image in (("L", left), ("R", right)):  # video's frames, the same
        (tmp_path / side).mkdir()
        (tmp_path / side / "0.png").write_bytes(Path(image).read_bytes())
    argv = ("video", tmp_path / "L", tmp_path / "R", "--rectify", maps, *SGBM, "--output-prefix", tmp_path / "v" / "f")
    code, _, err = run_cli(capsys, *argv, "-q")
    assert code == 0 and CALIBRATE_ADVICE not in err and f"The pair went through --rectify {maps}: " in err, err
    shifted = tmp_path / "r_shift.png"  # without --rectify, the advice is still to calibrate and pass it
    cv2.imwrite(str(shifted), np.roll(cv2.imread(str(right)), 3, axis=0))
    code, _, err = run_cli(capsys, "predict", left, shifted, *SGBM, "-o", tmp_path / "e.pfm")
    assert code == 0 and CALIBRATE_ADVICE in err and "went through --rectify" not in err, err


def test_predict_align_rows_corrects_a_small_misalignment(capsys, tmp_path, pair_files):
    left, right = pair_files
    shifted = tmp_path / "r_shift.png"
    cv2.imwrite(str(shifted), np.roll(cv2.imread(str(right)), 2, axis=0))
    code, _, err = run_cli(capsys, "predict", left, shifted, *SGBM, "-o", tmp_path / "off.pfm")
    assert code == 0 and "--align-rows, which corrects a pixel or two" in err
    code, _, err = run_cli(capsys, "predict", left, shifted, *SGBM, "--align-rows", "-o", tmp_path / "aligned.pfm")
    assert code == 0 and "does not look rectified" not in err  # checked after the alignment
    truth = 5.0  # make_textured_pair's constant disparity
    errors = {
        name: np.nanmean(np.abs(read_pfm(tmp_path / f"{name}.pfm") - truth)[:, 20:]) for name in ("off", "aligned")
    }
    assert errors["aligned"] < 0.5 * errors["off"], errors


def test_predict_align_rows_records_the_row_shift_it_applied_in_the_sidecar(capsys, tmp_path, pair_files):
    """left.json said nothing of --align-rows: a map of a resampled right view could not be told from one of the
    views as taken, nor by how much its rows had moved."""
    import json

    left, right = pair_files
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    cv2.imwrite(str(tmp_path / "L" / "a.png"), cv2.imread(str(left)))
    cv2.imwrite(str(tmp_path / "R" / "a.png"), np.roll(cv2.imread(str(right)), 2, axis=0))  # rows 2 px down
    cv2.imwrite(str(tmp_path / "L" / "b.png"), cv2.imread(str(left)))
    cv2.imwrite(str(tmp_path / "R" / "b.png"), cv2.imread(str(right)))  # rectified: left alone
    formats = ("--format", "pfm,json")
    for given, out in (
        ((tmp_path / "L" / "a.png", tmp_path / "R" / "a.png"), "one"),
        ((tmp_path / "L", tmp_path / "R"), "batch"),
    ):
        code, _, err = run_cli(capsys, "predict", *given, *SGBM, *formats, "--align-rows", "-o", tmp_path / out)
        assert code == 0, err
        record = json.loads((tmp_path / out / "a.json").read_text())["preparation"]["align_rows"]
        assert record["applied"] is True and record["misalignment_px"] == pytest.approx(2.0, abs=0.3), record
        shift = record["row_shift_px"]
        assert shift["offset"] == pytest.approx(-2.0, abs=0.3), shift  # dy = y_left - y_right
        assert abs(shift["per_column"]) < 1e-3 and abs(shift["per_row"]) < 1e-3, shift
    record = json.loads((tmp_path / "batch" / "b.json").read_text())["preparation"]["align_rows"]
    assert record["applied"] is False and record["row_shift_px"] is None and record["misalignment_px"] < 0.3, record
    code, _, err = run_cli(capsys, "predict", tmp_path / "L", tmp_path / "R", *SGBM, *formats, "-o", tmp_path / "off")
    assert code == 0 and json.loads((tmp_path / "off" / "a.json").read_text())["preparation"] == {}, err


def test_the_sidecar_and_the_video_summary_say_the_pair_was_rectified_and_with_which_file(
    capsys, tmp_path, pair_files, calib_file
):
    """predict --rectify rig.yaml --format json wrote "preparation": {} beside a map of the rectified view, and so did
    video's summary: nothing told it from a map of the pair as taken, nor which rig's file had made it."""
    import json

    k = np.array([[CAL.fx_px, 0, CAL.cx0_px], [0, CAL.fy_px, CAL.cy_px], [0, 0, 1]])
    turned = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "T": np.array([[-0.1], [0.0], [0.0]])}
    turned["R"] = cv2.Rodrigues(np.array([0.0, 0.0, 0.01]))[0]
    rig = write_opencv(tmp_path / "rig.yaml", turned, 160, 120)
    expected = {"rectify": {"file": str(rig.absolute()), "raw_size_hw": [120, 160]}}
    argv = ("predict", *pair_files, *SGBM, "--rectify", rig, "--format", "json", "-o", tmp_path / "o")
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "l.json").read_text())["preparation"] == expected
    for side, path in zip("LR", pair_files):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "f1.png"), cv2.imread(str(path)))
    argv = ("video", tmp_path / "L", tmp_path / "R", *SGBM, "--rectify", rig, "--output-prefix", tmp_path / "v" / "f")
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert json.loads((tmp_path / "v" / "f_summary.json").read_text())["preparation"] == expected
    argv = ("predict", *pair_files, *SGBM, "--calib", calib_file, "--format", "json", "-o", tmp_path / "c")
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and json.loads((tmp_path / "c" / "l.json").read_text())["preparation"] == {}, err


def test_predict_align_rows_says_when_it_cannot_measure_the_rows(capsys, tmp_path):
    plain = np.full((120, 160, 3), 128, np.uint8)
    plain[40:50, 40:50] = 200  # one square: too few features to fit the rows
    paths = tmp_path / "l.png", tmp_path / "r.png"
    for path, image in zip(paths, (plain, np.roll(plain, -3, axis=1))):
        cv2.imwrite(str(path), image)
    code, _, err = run_cli(capsys, "predict", *paths, *SGBM, "--align-rows", "-o", tmp_path / "d.pfm")
    assert code == 0 and "--align-rows: too few matched features" in err and "goes through unaligned" in err, err
    code, _, err = run_cli(capsys, "predict", *paths, *SGBM, "-o", tmp_path / "d.pfm")
    assert code == 0 and "matched features" not in err, err  # without --align-rows an unjudged pair is no news


def test_align_rows_says_when_the_matched_features_disagree_on_the_rows(monkeypatch):
    """Enough matches, but the best fit holds under half of them: not "too few matched features"."""
    import rtstereo.rectify
    from rtstereo.cli.rectification import rectification_warnings
    from rtstereo.types import StereoPair

    disagreeing = rtstereo.rectify.RectificationCheck(np.nan, np.nan, np.nan, np.nan, 31, agreeing_share=0.43)
    monkeypatch.setattr(rtstereo.rectify, "check_rectification", lambda left, right: disagreeing)
    image = np.zeros((48, 64, 3), np.uint8)
    messages, conclusive = rectification_warnings(StereoPair(image, image), align_rows=True)
    assert not conclusive and messages == [
        "--align-rows: the matched features disagree on the rows (the best fit holds 43% of them, at least 50%: "
        "repeating texture or noise); the pair goes through unaligned"
    ], messages


def test_predict_warns_when_the_right_camera_exposes_differently(capsys, tmp_path, pair_files):
    left, right = pair_files
    code, _, err = run_cli(capsys, "predict", left, right, *SGBM, "-o", tmp_path / "d.pfm")
    assert code == 0 and "expose" not in err
    brighter = tmp_path / "r_bright.png"
    cv2.imwrite(str(brighter), np.clip(cv2.imread(str(right)) * 1.5, 0, 255).astype(np.uint8))
    code, _, err = run_cli(capsys, "predict", left, brighter, *SGBM, "-o", tmp_path / "d.pfm")
    assert code == 0 and "does not look rectified" not in err
    assert re.search(r"warning: l: the right view is 1\.\d+x as bright as the left one", err), err
    assert "sgbm_input=auto" in err
    hybrid = ("--model", "hybrid", "--max-disp", "16")
    for extra in ((), ("--set", "sgbm_input=normalized")):  # the hybrid already does what the warning says
        code, _, err = run_cli(capsys, "predict", left, brighter, *hybrid, *extra, "-o", tmp_path / "d.pfm")
        assert code == 0 and "expose" not in err
    for raw in ("sgbm_input=raw", "sgbm-input=raw"):  # as --set spells keys either way
        code, _, err = run_cli(capsys, "predict", left, brighter, *hybrid, "--set", raw, "-o", tmp_path / "d")
        assert code == 0 and "expose differently" in err


def test_a_calibration_of_another_aspect_ratio_is_refused_with_advice_for_the_command_line(
    capsys, tmp_path, pair_files
):
    """It told command-line users to call Calibration.cropped(), a Python method."""
    wide = write_calibration(tmp_path / "wide.json", dataclasses.replace(CAL, width_px=CAL.width_px * 2))
    code, _, err = run_cli(
        capsys, "predict", *pair_files, *SGBM, "--calib", wide, "--format", "depth", "-o", tmp_path / "o"
    )
    assert code == 2, err
    size = f"{CAL.height_px}x{CAL.width_px * 2}"
    assert (
        f"(another aspect ratio: cropped, or another camera); give the images at {size} (or resized alike), or " in err
    )
    assert "calibrate at this size (rtstereo calibrate); from Python, Calibration.cropped(x0, y0, width, height)" in err


def test_predict_scales_a_calibration_made_at_another_size(capsys, tmp_path, pair_files):
    double = write_calibration(tmp_path / "double.json", CAL.scaled(2.0))
    with pytest.warns(CalibrationWarning, match="scaled by 0.5000"):
        code, stdout, err = run_cli(
            capsys,
            "predict",
            *pair_files,
            *SGBM,
            "--calib",
            double,
            "--format",
            "depth",
            "-o",
            tmp_path / "out",
        )
    assert code == 0, err
    depth = read_pfm(tmp_path / "out" / "l_depth.pfm")
    assert np.median(depth[np.isfinite(depth)]) == pytest.approx(DEPTH_M, rel=0.02)


def test_a_batch_says_once_per_image_size_what_it_did_to_the_calibration(capsys, tmp_path):
    left, right = make_textured_pair(120, 160, disparity_px=5)
    for side, image in (("l", left), ("r", right)):
        (tmp_path / side).mkdir()
        for name in ("a", "b", "c"):
            cv2.imwrite(str(tmp_path / side / f"{name}.png"), image[:, :, ::-1])
    double = write_calibration(tmp_path / "double.json", CAL.scaled(2.0))
    # no recorded size, principal point of 640x480 images: KITTI calib/NNNNNN.txt files record no size either
    elsewhere = write_calibration(
        tmp_path / "elsewhere.json", dataclasses.replace(CAL.scaled(4.0), width_px=0, height_px=0)
    )
    for calib, message in (
        (double, "scaled by 0.5000"),
        (elsewhere, r"principal point \(319.5, 239.5\) px is far from the centre"),
    ):
        with pytest.warns(CalibrationWarning) as caught:
            code, _, err = run_cli(
                capsys,
                "predict",
                tmp_path / "l",
                tmp_path / "r",
                *SGBM,
                "--calib",
                calib,
                "--format",
                "depth,json",
                "-o",
                tmp_path / calib.stem,
                "-q",
            )
        assert code == 0, err
        said = [str(w.message) for w in caught if issubclass(w.category, CalibrationWarning)]
        assert len(said) == 1 and re.search(message, said[0]), said
    import json

    # the size-less calibration is recorded at the size it was used at
    recorded = json.loads((tmp_path / "elsewhere" / "b.json").read_text())["calibration"]
    assert (recorded["width_px"], recorded["height_px"], recorded["cx0_px"]) == (160, 120, 319.5)


def test_calibrate_then_predict_with_rectification_maps(capsys, tmp_path):
    board = Board.parse("chessboard:9x6:0.03")
    lefts, rights, rig = render_stereo_views(board, 8, seed=3)
    for side, images in (("L", lefts), ("R", rights)):
        (tmp_path / side).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / side / f"{i:02d}.png"), image[:, :, ::-1])
    code, stdout, err = run_cli(
        capsys,
        "calibrate",
        "--left",
        str(tmp_path / "L" / "*.png"),
        "--right",
        tmp_path / "R",
        "--board",
        "chessboard:9x6:0.03",
        "-o",
        tmp_path / "rig",
    )
    assert code == 0, err
    assert "board found in both images of 8 of 8 pairs" in stdout and "RMS reprojection error" in stdout
    assert f"rectified: {lefts[0].shape[0]}x{lefts[0].shape[1]} (HxW), fx " in stdout  # it read 640x480
    assert sorted(p.name for p in (tmp_path / "rig").iterdir()) == [
        "calibration.json",
        "maps.npz",
        "stereo.yaml",
    ]
    assert read_calibration(tmp_path / "rig" / "calibration.json").baseline_m == pytest.approx(rig.baseline_m, rel=0.01)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys,
        "predict",
        tmp_path / "L" / "00.png",
        tmp_path / "R" / "00.png",
        *SGBM,
        "--rectify",
        tmp_path / "rig" / "maps.npz",
        "--format",
        "ply,json",
        "-o",
        out,
    )
    assert code == 0, err
    assert "not look rectified" not in err
    assert (out / "00.ply").is_file() and '"baseline_m"' in (out / "00.json").read_text()


def test_calibrate_given_globs_the_shell_expanded_says_to_quote_them(capsys, tmp_path):
    """`--left L/*.png --right R/*.png` unquoted listed the files as unrecognized arguments and no more, where
    predict says what happened."""
    image = np.zeros((8, 8, 3), np.uint8)
    files = {side: [tmp_path / side / f"{i}.png" for i in range(3)] for side in ("L", "R")}
    for path in (*files["L"], *files["R"]):
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), image)
    argv = ["calibrate", "--left", *files["L"], "--right", *files["R"], "--board", "chessboard:9x6:0.025"]
    with pytest.raises(SystemExit) as exit_info:
        main([str(word) for word in (*argv, "-o", tmp_path / "rig")])
    stdout, err = capsys.readouterr()
    assert exit_info.value.code == 2 and stdout == "" and err.count("\n") == 1, err
    assert err.rstrip().endswith(
        "; 6 files came in place of --left PATTERN --right PATTERN: the shell expanded them, so quote each for "
        "rtstereo "
        "to match it (--left 'L/*.png' --right 'R/*.png'), or give the folders (see `rtstereo calibrate --help`)"
    ), err


def test_calibrate_holds_one_pair_of_images_at_a_time(capsys, tmp_path, monkeypatch):
    """Every image was read before the board was looked for, and all were held to the end: 2.2 GB for 30 pairs of
    12 MP. What the calibration needs of a pair is its corners and sizes."""
    import gc
    import weakref

    import rtstereo.cli.calibrate as calibrate

    lefts, rights, rig = render_stereo_views(Board.parse("chessboard:9x6:0.03"), 6, seed=3)
    for side, images in (("L", lefts), ("R", rights)):
        (tmp_path / side).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / side / f"{i:02d}.png"), image[:, :, ::-1])
    read, held, read_image = [], [], calibrate.read_image

    def counted_read(path):
        gc.collect()
        held.append(sum(ref() is not None for ref in read))  # images read before this one, still in memory
        image = read_image(path)
        read.append(weakref.ref(image))
        return image

    monkeypatch.setattr(calibrate, "read_image", counted_read)
    argv = ("calibrate", "--left", tmp_path / "L", "--right", tmp_path / "R", "--board", "chessboard:9x6:0.03", "-q")
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "rig")
    assert code == 0, err
    assert len(held) == 12 and max(held) <= 3, held  # at most the pair before and the view being read beside it
    assert read_calibration(tmp_path / "rig" / "calibration.json").baseline_m == pytest.approx(rig.baseline_m, rel=0.01)


def test_calibrate_skips_an_unreadable_pair_and_names_the_pairs_it_did_not_use(capsys, tmp_path):
    lefts, rights, rig = render_stereo_views(Board.parse("chessboard:9x6:0.03"), 5, seed=3)
    blank = np.full_like(lefts[0], 128)
    # 05: no board in either view, 06: damaged, 07: none in the right view, 08: none in the left one
    for side, images in (
        ("L", [*lefts, blank, blank, lefts[0], blank]),
        ("R", [*rights, blank, blank, blank, rights[1]]),
    ):
        (tmp_path / side).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / side / f"{i:02d}.png"), image[:, :, ::-1])
    (tmp_path / "L" / "06.png").write_bytes(b"not a png")  # one damaged view among many
    argv = ("calibrate", "--left", tmp_path / "L", "--right", tmp_path / "R", "--board", "chessboard:9x6:0.03")
    code, stdout, err = run_cli(capsys, *argv, "-o", tmp_path / "rig")
    assert code == 0, err
    assert re.search(r"warning: pair 06.png skipped: cannot read .*06.png", err), err
    assert "board found in both images of 5 of 9 pairs (1 unreadable, skipped)" in stdout
    # "not used (board not found in both images): 05.png, 07.png, 08.png" did not say which camera missed it
    assert "not used (board found in neither image): 05.png\n" in stdout, stdout
    assert "not used (board not found in the right image): 07.png\n" in stdout, stdout
    assert "not used (board not found in the left image): 08.png\n" in stdout, stdout
    assert read_calibration(tmp_path / "rig" / "calibration.json").baseline_m == pytest.approx(rig.baseline_m, rel=0.01)
    assert "replaced" not in err  # a new folder
    (tmp_path / "rig" / "stereo.yaml").unlink()  # an earlier rig, one of whose files was removed
    code, _, again = run_cli(capsys, *argv, "-o", tmp_path / "rig", "--quiet")
    assert code == 0, again  # it was replaced without a word; --quiet keeps the note, as it keeps warnings
    note = (
        f"rtstereo calibrate: note: replaced the earlier calibration in {tmp_path / 'rig'}: calibration.json, maps.npz"
    )
    assert note in again.splitlines(), again
    # reading and detecting (0.5 s each a view) show their progress over the pairs on stderr; --quiet leaves it out
    assert "reading and detecting the chessboard: 100%" in err and "9/9" in err, err  # 9 pairs, 1 unreadable
    code, stdout, err = run_cli(capsys, *argv, "-o", tmp_path / "rig2", "--quiet")
    assert code == 0 and "detecting" not in err and stdout == "", (stdout, err)
    assert "warning: pair 06.png skipped" in err  # --quiet keeps the warnings, as its help says (it said "only errors")
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    assert "no progress bar or summary (warnings and errors are still shown)" in " ".join(
        capsys.readouterr().out.split()
    )


def test_calibrate_refuses_views_that_all_face_the_cameras_squarely_and_writes_nothing(capsys, tmp_path):
    """They gave a baseline of 27.6 m for the rig's 0.12 m, written with exit code 0 and a warning to read the
    file in millimetres."""
    lefts, rights, _ = render_stereo_views(Board.parse("chessboard:9x6:0.03"), 8, seed=2, tilt_rad=0.015)
    for side, images in (("L", lefts), ("R", rights)):
        (tmp_path / side).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / side / f"{i:02d}.png"), image[:, :, ::-1])
    argv = ("calibrate", "--left", tmp_path / "L", "--right", tmp_path / "R", "--board", "chessboard:9x6:0.03")
    code, stdout, err = run_cli(capsys, *argv, "-o", tmp_path / "rig", "-q")
    assert (code, stdout) == (2, ""), err
    assert err.startswith("rtstereo calibrate: error: the board faces the cameras squarely in every view (largest ")
    assert err.count("\n") == 1 and "--calib-unit" not in err, err
    assert not (tmp_path / "rig").exists()


# --- exceptions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--format", "depth,ply"), "--format depth,ply needs the cameras' calibration"),
        (("--calib", "CALIB", "--rectify", "CALIB"), "give --calib or --rectify, not both"),
        (("--max-jump", "-1"), "--max-jump must be >= 0"),
        (("--max-jump", "nan"), "--max-jump must be >= 0"),
        (("--max-depth", "nan"), "--max-depth must be > 0"),
        (("--max-depth", "0"), "--max-depth must be > 0"),
        # options that clean point clouds, where none is written: refused rather than ignored
        (("--calib-unit", "mm"), "--calib-unit is the length unit of an OpenCV calibration file"),
        (("--max-depth", "5"), r"--max-depth cleans point clouds, and --format png16,pfm,color,json writes none"),
        (("--calib", "CALIB", "--format", "depth", "--max-jump", "0.2"), r"--max-jump cleans .*add ply or glb"),
        (("--rectify", "CALIB"), "not an rtstereo rectification-maps file|needs K1"),
        # options that would change nothing are refused, not ignored
        (("--max-depth", "5"), "--max-depth cleans point clouds, and --format png16,pfm,color,json writes none"),
        (
            ("--calib", "CALIB", "--format", "depth", "--max-jump", "0.2", "--max-depth", "5"),
            "--max-depth and --max-jump",
        ),
        (("--calib-unit", "mm"), "--calib-unit is the length unit of an OpenCV calibration file: give that file"),
        (("--calib", "CALIB", "--calib-unit", "mm"), r"calib.json \(rtstereo JSON\) states its lengths in metres"),
        (
            ("--calib", "MIDDLEBURY", "--calib-unit", "cm"),
            r"\(Middlebury calib.txt\) states its lengths in millimetres",
        ),
    ],
)
def test_predict_3d_errors(capsys, tmp_path, pair_files, calib_file, extra, message):
    middlebury = tmp_path / "calib.txt"
    middlebury.write_text("cam0=[200 0 79.5; 0 200 59.5; 0 0 1]\ncam1=[200 0 79.5; 0 200 59.5; 0 0 1]\nbaseline=100\n")
    extra = [{"CALIB": str(calib_file), "MIDDLEBURY": str(middlebury)}.get(a, a) for a in extra]
    if "--rectify" in extra and "--calib" not in extra:
        np.savez(tmp_path / "bogus.npz", x=np.zeros(1))
        extra[extra.index("--rectify") + 1] = str(tmp_path / "bogus.npz")
    code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, *extra, "-o", tmp_path / "out")
    assert code == 2
    assert err.startswith("rtstereo predict: error:")
    assert re.search(message, err), err


def test_the_help_of_calib_names_every_format_it_enables(capsys):
    """It named depth/ply/glb: depth_npy and depth_mm need the calibration too."""
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    calib_help = re.search(r"^  --calib FILE(.*?)\n  --", capsys.readouterr().out, re.S | re.M)[1]
    assert all(re.search(rf"\b{f}\b", calib_help) for f in NEEDS_CALIBRATION), calib_help


def test_calibrate_errors(capsys, tmp_path, pair_files):
    left, right = pair_files
    (tmp_path / "two").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "two" / name).write_bytes(Path(right).read_bytes())
    code, _, err = run_cli(
        capsys,
        "calibrate",
        "--left",
        left,
        "--right",
        tmp_path / "two" / "*.png",
        "--board",
        "chessboard:9x6:0.03",
        "-o",
        tmp_path / "rig",
    )
    assert code == 2 and "left gives 1 image and right gives 2: pairs are matched by position" in err
    code, _, err = run_cli(
        capsys, "calibrate", "--left", left, "--right", right, "--board", "chess:9x6", "-o", tmp_path / "rig"
    )
    assert code == 2 and "board 'chess:9x6' not understood" in err
    code, _, err = run_cli(
        capsys,
        "calibrate",
        "--left",
        left,
        "--right",
        right,
        "--board",
        "chessboard:9x6:0.03",
        "-o",
        tmp_path / "rig",
    )
    assert code == 2 and "found in both images of only 0 of 1 pairs" in err
    board = ("--board", "chessboard:9x6:0.03")
    (tmp_path / "taken").write_text("")
    code, _, err = run_cli(capsys, "calibrate", "--left", left, "--right", right, *board, "-o", tmp_path / "taken")
    assert code == 2 and "-o " in err and "taken is a file" in err and "detecting" not in err
    code, _, err = run_cli(
        capsys, "calibrate", "--left", left, "--right", right, *board, "-o", tmp_path / "taken" / "rig"
    )
    assert code == 2 and "cannot write the calibration there" in err and "taken is a file" in err, err
    assert "detecting" not in err  # said before the work, not after it
    for named in ("rig2/maps.npz", "calib.yaml"):  # made the folder rig2/maps.npz/ and wrote maps.npz into it
        code, _, err = run_cli(capsys, "calibrate", "--left", left, "--right", right, *board, "-o", tmp_path / named)
        assert code == 2 and "names a file, but the calibration is three files" in err and "detecting" not in err
        assert f"such as -o {tmp_path / Path(named).parent}/" in err and not (tmp_path / named).exists(), err
    (tmp_path / "damaged.png").write_bytes(b"")
    damaged = ("--left", tmp_path / "damaged.png", "--right", right)
    code, _, err = run_cli(capsys, "calibrate", *damaged, *board, "-o", tmp_path / "rig")
    assert code == 2 and "none of the 1 pair could be read" in err
    for alpha in ("2", "nan", "-0.1"):  # "alpha must be in [0, 1]", once the images were read
        code, _, err = run_cli(capsys, "calibrate", *damaged, *board, "-o", tmp_path / "rig", "--alpha", alpha)
        assert code == 2 and err.startswith("rtstereo calibrate: error: --alpha must be in [0, 1] (0 keeps"), err


def _pose_yaml(path, translation, **scalars):
    """``K1 D1 K2 D2 R T`` of an ideal rig for the 160x120 pair (``CAL``), ``T`` as given."""
    k = np.array([[CAL.fx_px, 0, CAL.cx0_px], [0, CAL.fy_px, CAL.cy_px], [0, 0, 1]])
    matrices = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "R": np.eye(3), "T": np.array(translation)}
    return write_opencv(path, matrices, 160, 120, **scalars)


def test_predict_rectify_reads_lengths_in_the_given_or_recorded_unit(capsys, tmp_path, pair_files):
    untagged = _pose_yaml(tmp_path / "mm.yaml", [[-100.0], [0.0], [0.0]])
    tagged = _pose_yaml(tmp_path / "mm_tagged.yaml", [[-100.0], [0.0], [0.0]], length_unit="mm")
    for name, extra in (("given", ("--rectify", untagged, "--calib-unit", "mm")), ("recorded", ("--rectify", tagged))):
        out = tmp_path / name
        code, stdout, err = run_cli(capsys, "predict", *pair_files, *SGBM, *extra, "--format", "depth", "-o", out)
        assert code == 0, err
        assert "baseline of" not in err
        depth = read_pfm(out / "l_depth.pfm")
        assert np.median(depth[np.isfinite(depth)]) == pytest.approx(DEPTH_M, rel=0.02)
    code, _, err = run_cli(
        capsys, "predict", *pair_files, *SGBM, "--rectify", tagged, "--calib-unit", "m", "-o", tmp_path / "x"
    )
    assert code == 2 and "says its lengths are in mm (length_unit), but m was given" in err, err


def test_summary_of_a_map_without_any_depth_says_so_without_numpy_warnings():
    from rtstereo.cli.predict import _summary
    from rtstereo.types import DisparityResult

    beyond_infinity = dataclasses.replace(CAL, cx0_px=CAL.cx1_px + 10)  # d + cx1 - cx0 <= 0 for d <= 10 px
    result = DisparityResult(np.full((120, 160), 5.0, np.float32), {"total": 1.0}, calibration=beyond_infinity)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = _summary("pair", "sgbm", result)
    assert line.endswith("density 100.0 %, no finite depth"), line


def test_an_empty_cloud_is_a_warning_and_every_output_is_written(capsys, tmp_path, pair_files, calib_file):
    from rtstereo.sinks.pointcloud import EmptyCloudWarning

    out = tmp_path / "out"
    # On a terminal the warning is one "rtstereo predict: warning: ..." line (test_messages checks the format).
    with pytest.warns(EmptyCloudWarning) as record:
        code, _, err = run_cli(
            capsys,
            "predict",
            *pair_files,
            *SGBM,
            "--calib",
            calib_file,
            "--max-depth",
            "2",
            "--format",
            "glb,ply,depth",
            "-o",
            out,
        )
    assert code == 0, err
    (message,) = [str(w.message) for w in record if w.category is EmptyCloudWarning]  # once for glb and ply
    assert message.startswith("l: no point left for the point cloud: all 19200 points with a depth are beyond "), (
        message
    )
    assert "the maximum depth of 2 m (--max-depth)" in message
    assert sorted(p.name for p in out.iterdir()) == [".l.made-with.json", "l.glb", "l.ply", "l_depth.pfm"]


@pytest.mark.parametrize(
    "output, formats, message",
    [
        ("depth.npy", "depth_npy", "depth.npy writes one disparity file (npy): --format depth_npy asks for"),
        ("single.pfm", "ply,depth", "(--format ply,depth -o OUT/)"),
        ("d.png", "png16,color", "(--format png16,color -o OUT/)"),
    ],
)
def test_a_one_file_output_refuses_other_formats(capsys, tmp_path, pair_files, calib_file, output, formats, message):
    code, _, err = run_cli(
        capsys, "predict", *pair_files, *SGBM, "--calib", calib_file, "--format", formats, "-o", tmp_path / output
    )
    assert code == 2 and message in err, err
    assert not (tmp_path / output).exists()


def test_a_one_file_output_takes_its_own_format(capsys, tmp_path, pair_files):
    code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, "--format", "pfm", "-o", tmp_path / "d.pfm")
    assert code == 0 and (tmp_path / "d.pfm").is_file(), err


@pytest.mark.parametrize("name, fmt", [("cloud.ply", "ply"), ("cloud.glb", "glb"), ("depth.tiff", "depth")])
def test_a_3d_file_name_for_o_points_to_the_format_option(capsys, tmp_path, pair_files, name, fmt):
    code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, "-o", tmp_path / name)
    assert code == 2 and f"--format {fmt} -o OUT/" in err, err


@pytest.mark.parametrize(
    "name, fmt", [("depth.npy", "depth_npy"), ("scene_Depth.pfm", "depth"), ("depth.png", "depth_mm")]
)
def test_a_depth_file_name_for_o_with_a_calibration_is_refused_not_filled_with_disparity(
    capsys, tmp_path, pair_files, name, fmt
):
    """-o depth.npy with --calib wrote the disparity in pixels into depth.npy, without a word."""
    calib = write_calibration(tmp_path / "c.json", CAL)
    code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, "--calib", calib, "-o", tmp_path / name)
    assert code == 2 and "writes one pair's disparity, in pixels, not its depth" in err, err
    assert f"(--format {fmt} -o OUT/)" in err and not (tmp_path / name).exists()
    # without a calibration no depth can be asked for: the name is the user's
    code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, "-o", tmp_path / name)
    assert code == 0 and (tmp_path / name).is_file(), err


def test_lr_check_before_the_images_says_that_it_took_the_left_image_for_its_px(capsys, tmp_path, pair_files):
    left, right = pair_files
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage error
        main(["predict", "--lr-check", str(left), str(right), *SGBM, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"expected a number of pixels, got '{left}'" in err, err
    assert "put --lr-check after LEFT RIGHT" in err, err


def test_lr_check_is_checked_before_the_model_runs(capsys, tmp_path, pair_files, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr("rtstereo.cli.predict.predictor_from_args", no_model)
    for value in ("0", "-1", "inf", "nan"):  # inf wrote "Infinity" into each pair's JSON
        code, _, err = run_cli(capsys, "predict", *pair_files, *SGBM, "--lr-check", value, "-o", tmp_path / "out")
        assert code == 2 and f"--lr-check must be > 0 pixels (a finite number), got {float(value)}" in err, err


def test_default_says_so_when_its_own_switch_kept_raw_views_the_features_find_exposed_differently(
    capsys, tmp_path, pair_files
):
    left, right = pair_files
    image = cv2.imread(str(right))
    image[:, :40] = 0  # a black border: the whole image's brightness stays close, the matched features' does not
    image[:, 40:] = np.clip(image[:, 40:] * 1.5, 0, 255)
    brighter = tmp_path / "r_edge.png"
    cv2.imwrite(str(brighter), image)
    code, _, err = run_cli(capsys, "predict", left, brighter, "--max-disp", "16", "-o", tmp_path / "d.pfm")
    assert code == 0
    assert "so default kept SGBM on the raw images: --set sgbm_input=normalized normalises them" in err, err


def test_kitti_cameras_pick_the_colour_pair_of_a_kitti_file_and_nothing_else(capsys, tmp_path, pair_files, shared):
    kitti = shared("data", "real", "kitti2012", "000070", "calib", "000070.txt")
    left, right = pair_files
    out = tmp_path / "k"
    # KITTI's, on a toy pair
    with pytest.warns(CalibrationWarning, match=r"is far from the centre of these 120x160 \(HxW\) images"):
        code, _, err = run_cli(
            capsys,
            "predict",
            left,
            right,
            *SGBM,
            "--calib",
            kitti,
            "--kitti-cameras",
            "2,3",
            "--format",
            "json",
            "-o",
            out,
        )
    assert code == 0, err
    import json

    assert json.loads((out / "l.json").read_text())["calibration"]["baseline_m"] == pytest.approx(0.53329, abs=1e-5)
    json_calib = write_calibration(tmp_path / "c.json", CAL)
    for extra, message in (
        (("--calib", json_calib), "is not a KITTI calibration file"),
        ((), "--kitti-cameras names the cameras of a KITTI --calib file"),
    ):
        code, _, err = run_cli(capsys, "predict", left, right, *SGBM, *extra, "--kitti-cameras", "2,3", "-o", out)
        assert code == 2 and message in err, err


def test_colour_images_with_a_kitti_2012_file_read_for_the_grey_cameras_get_a_warning(capsys, tmp_path, pair_files):
    kitti = tmp_path / "000000.txt"  # grey cameras 0,1 0.105 m apart, colour cameras 2,3 0.1 m apart
    rows = "0 200 59.5 0 0 0 1 0"
    kitti.write_text("".join(f"P{i}: 200 0 79.5 {x} {rows}\n" for i, x in enumerate((0, -21.0, 1.0, -19.0))))
    left, right = pair_files
    grey = tmp_path / "grey"
    grey.mkdir()
    for path in pair_files:
        cv2.imwrite(str(grey / path.name), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    advice = "KITTI's colour pairs are cameras 2,3 (baseline 0.1000 m), whose depths this makes 5.0 % too far"
    for inputs, extra, warned in (
        ((left, right), (), True),
        ((left, right), ("--kitti-cameras", "2,3"), False),
        ((left, right), ("--kitti-cameras", "0,1"), False),  # said outright: taken as meant
        ((grey / "l.png", grey / "r.png"), (), False),
        ((tmp_path / "l*.png", tmp_path / "r*.png"), ("--no-rectification-check",), True),  # a batch's first pair
    ):
        code, _, err = run_cli(
            capsys, "predict", *inputs, *SGBM, "--calib", kitti, *extra, "--format", "json", "-o", tmp_path / "o"
        )
        assert code == 0, err
        assert (advice in err and "add --kitti-cameras 2,3" in err) == warned, (inputs, extra, err)


def test_grey_images_with_a_cam_to_cam_file_read_for_the_colour_cameras_get_a_warning(capsys, tmp_path, pair_files):
    """KITTI raw's grey image_00/01 with its calib_cam_to_cam.txt, read for the colour cameras 2,3 by default: the
    colour pair's baseline made the depths off without a word (colour images with a KITTI 2012 file were warned of)."""
    cam_to_cam = tmp_path / "calib_cam_to_cam.txt"  # grey cameras 0,1 0.105 m apart, colour cameras 2,3 0.1 m apart
    rows = "0 200 59.5 0 0 0 1 0"
    cam_to_cam.write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        + "".join(f"P_rect_0{i}: 200 0 79.5 {x} {rows}\n" for i, x in enumerate((0, -21.0, 1.0, -19.0)))
    )
    grey = tmp_path / "grey"
    grey.mkdir()
    for path in pair_files:
        cv2.imwrite(str(grey / path.name), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    advice = (
        f"the images are in grey, but {cam_to_cam} is read for KITTI's colour cameras 2,3 (the default for "
        "calib_cam_to_cam files of KITTI 2015 and raw, baseline 0.1000 m); KITTI's grey pairs are cameras 0,1 "
        "(baseline 0.1050 m), whose depths this makes 4.8 % too near: add --kitti-cameras 0,1"
    )
    for inputs, extra, warned in (
        ((grey / "l.png", grey / "r.png"), (), True),
        ((grey / "l.png", grey / "r.png"), ("--kitti-cameras", "2,3"), False),  # said outright: taken as meant
        (pair_files, (), False),  # colour images: the default's cameras
    ):
        code, _, err = run_cli(
            capsys, "predict", *inputs, *SGBM, "--calib", cam_to_cam, *extra, "--format", "json", "-o", tmp_path / "o"
        )
        assert code == 0, err
        assert (advice in err) == warned, (inputs, extra, err)


def test_calibrate_given_videos_says_to_save_frames_of_them_not_to_compute_their_disparity(capsys, tmp_path):
    """Two videos of the board were read as images, 'pair left.mp4 skipped: ... a video file, not an image; `rtstereo
    video LEFT RIGHT` ... computes the disparity of a video's frames', then 'none of the 1 pair could be read'."""
    (tmp_path / "left.mp4").write_bytes(b"\0\0\0\x18ftypmp42")  # refused by its name, before anything is read
    (tmp_path / "right.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    board = ("--board", "chessboard:9x6:0.025", "-o", tmp_path / "rig")
    code, out, err = run_cli(
        capsys, "calibrate", "--left", tmp_path / "left.mp4", "--right", tmp_path / "right.mp4", *board
    )
    assert (code, out) == (2, "")
    assert err == (
        f"rtstereo calibrate: error: --left {tmp_path / 'left.mp4'} is a video: calibrate reads still images of the "
        "board, a pair per position; save frames of the two videos taken at the same instants, the board held still "
        "in a new place in each (e.g. ffmpeg -i left.mp4 -vf fps=1 left/%04d.png, and the same for the right one), "
        "and give their folders to --left and --right\n"
    )
    (tmp_path / "lefts").mkdir()
    code, _, err = run_cli(capsys, "calibrate", "--left", tmp_path / "lefts", "--right", tmp_path / "right.mp4", *board)
    assert code == 2 and f"--right {tmp_path / 'right.mp4'} is a video: " in err
    assert not (tmp_path / "rig").exists()


def test_calibrate_refuses_one_folder_given_for_both_cameras(capsys, tmp_path):
    """The views of one camera given twice were calibrated into a rig without a baseline, refused with advice
    to swap the left and right images."""
    lefts, _, _ = render_stereo_views(Board.parse("chessboard:9x6:0.03"), 5, seed=3)
    (tmp_path / "L").mkdir()
    for i, image in enumerate(lefts):
        cv2.imwrite(str(tmp_path / "L" / f"{i:02d}.png"), image[:, :, ::-1])
    board = ("--board", "chessboard:9x6:0.03")
    code, stdout, err = run_cli(
        capsys, "calibrate", "--left", tmp_path / "L", "--right", tmp_path / "L", *board, "-o", tmp_path / "rig", "-q"
    )
    assert (code, stdout) == (2, ""), err
    assert err.startswith("rtstereo calibrate: error: left and right give the same image ")
    assert "swap" not in err and err.count("\n") == 1, err
    (tmp_path / "copy").mkdir()
    for image in (tmp_path / "L").iterdir():
        (tmp_path / "copy" / image.name).write_bytes(image.read_bytes())
    code, stdout, err = run_cli(
        capsys,
        "calibrate",
        "--left",
        tmp_path / "L",
        "--right",
        tmp_path / "copy",
        *board,
        "-o",
        tmp_path / "rig",
        "-q",
    )
    assert (code, stdout) == (2, ""), err
    assert err.startswith("rtstereo calibrate: error: calibration pair 00.png: left and right are the same picture")
    assert not (tmp_path / "rig").exists()


def test_calibrate_warns_when_the_numbers_in_the_pairs_names_stop_agreeing(capsys, tmp_path):
    """A view missing on one side paired the views of different instants without a word (predict warns), and the
    calibration then failed with advice about vertical stereo or swapped cameras."""
    lefts, rights, _ = render_stereo_views(Board.parse("chessboard:9x6:0.03"), 5, seed=3)
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i, (left, right) in enumerate(zip(lefts, rights, strict=True)):
        cv2.imwrite(str(tmp_path / "L" / f"l_{i + 1}.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "R" / f"r_{i + 1 + (i >= 2)}.png"), right[:, :, ::-1])  # r_3 is missing
    board = ("--board", "chessboard:9x6:0.03")
    argv = ("calibrate", "--left", tmp_path / "L", "--right", tmp_path / "R", *board, "-o", tmp_path / "rig", "-q")
    with pytest.warns(UserWarning, match=r"numbers in 3 pairs' names do not follow the first pair's") as said:
        run_cli(capsys, *argv)
    assert any("(l_1.png with r_1.png; e.g. l_3.png with r_4.png)" in str(w.message) for w in said)


def test_calibrate_names_the_pairs_it_did_not_use_where_every_view_has_one_file_name(capsys, tmp_path):
    """views/03/left.png, views/04/left.png, ...: every pair was "left.png", and the pairs without the board went
    unnamed (their name was among those used)."""
    lefts, rights, rig = render_stereo_views(Board.parse("chessboard:9x6:0.03"), 5, seed=3)
    rights.insert(2, np.full_like(rights[0], 128))  # the board not seen by the right camera in pair 02
    lefts.insert(2, lefts[0][::-1].copy())
    for i, (left, right) in enumerate(zip(lefts, rights, strict=True)):
        (tmp_path / f"{i:02d}").mkdir()
        cv2.imwrite(str(tmp_path / f"{i:02d}" / "left.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / f"{i:02d}" / "right.png"), right[:, :, ::-1])
    (tmp_path / "04" / "left.png").write_bytes(b"damaged")
    board = ("--board", "chessboard:9x6:0.03")
    code, stdout, err = run_cli(
        capsys,
        "calibrate",
        "--left",
        tmp_path / "*" / "left.png",
        "--right",
        tmp_path / "*" / "right.png",
        *board,
        "-o",
        tmp_path / "rig",
    )
    assert code == 0, err
    assert f"not used (board not found in the right image): {tmp_path / '02' / 'left.png'}\n" in stdout, stdout
    assert f"warning: pair {tmp_path / '04' / 'left.png'} skipped: cannot read" in err, err
    assert read_calibration(tmp_path / "rig" / "calibration.json").baseline_m == pytest.approx(rig.baseline_m, rel=0.01)


def test_calibrate_names_a_pair_whose_two_views_disagree_with_the_others(capsys, tmp_path):
    """Its right view taken at another moment: a baseline 44 % wide, with a warning about the RMS error alone."""
    lefts, rights, rig = render_stereo_views(Board.parse("chessboard:7x5:0.03"), 10, rig=small_rig(), seed=1)
    rights[5] = rights[6]
    for side, images in (("L", lefts), ("R", rights)):
        (tmp_path / side).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / side / f"{i:02d}.png"), image[:, :, ::-1])
    argv = ("calibrate", "--left", tmp_path / "L", "--right", tmp_path / "R", "--board", "chessboard:7x5:0.03")
    with pytest.warns(UserWarning, match=r"1 pair not used, whose two views disagree .*: 05.png \(7.4 px\); the two"):
        code, stdout, err = run_cli(capsys, *argv, "-o", tmp_path / "rig")
    assert code == 0 and "is above 1 px" not in err, err
    said = "board found in both images of 10 of 10 pairs\nnot used (the two views disagree on the rig): 05.png\n"
    assert said in stdout, stdout
    assert read_calibration(tmp_path / "rig" / "calibration.json").baseline_m == pytest.approx(rig.baseline_m, rel=0.02)


def test_calibrate_prints_the_lines_of_the_readme_example(capsys, tmp_path, monkeypatch):
    """The README's example output left out two lines the command prints: the pair not used, which its "24 of 25"
    implies, and the `next:` command."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```text\n(\s*board found in both images.*?)```", readme, re.S)
    assert example, "the README's example output of calibrate"
    lefts, rights, _ = render_stereo_views(Board.parse("chessboard:9x6:0.025"), 8, rig=small_rig(), seed=1)
    blank = np.full_like(lefts[0], 128)  # the last pair's board is seen by the left camera only, as in the example
    for side, images in (("left", lefts), ("right", [*rights[:-1], blank])):
        (tmp_path / "calib" / side).mkdir(parents=True)
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / "calib" / side / f"{i:02d}.png"), image[:, :, ::-1])
    monkeypatch.chdir(tmp_path)
    argv = ("--left", "calib/left/*.png", "--right", "calib/right/*.png", "--board", "chessboard:9x6:0.025")
    code, stdout, err = run_cli(capsys, "calibrate", *argv, "-o", "rig/")
    assert code == 0, err

    def shape(lines: str) -> list[str]:  # the lines with their figures left out
        return [re.sub(r"\d+(\.\d+)?", "N", line.strip()) for line in lines.strip().splitlines()]

    assert shape(stdout) == shape(example.group(1))


@pytest.mark.parametrize("rectify", [False, True])
def test_the_point_cloud_of_a_colour_left_view_beside_a_grey_right_one_keeps_its_colours(
    capsys, tmp_path, pair_files, calib_file, rectify
):
    """Matched in grey, the left view was also shown grey: every point of a colour camera's cloud came out grey."""
    left = cv2.imread(str(pair_files[0]))[:, :, ::-1].copy()
    left[:, :, 2] = 255 - left[:, :, 0]  # channels that differ everywhere
    cv2.imwrite(str(pair_files[0]), left[:, :, ::-1])
    grey_right = tmp_path / "grey_r.png"
    cv2.imwrite(str(grey_right), cv2.imread(str(pair_files[1]), cv2.IMREAD_GRAYSCALE))
    if rectify:  # a rig turned a little: the maps move every pixel, so the colours must be rectified with the view
        k = np.array([[CAL.fx_px, 0, CAL.cx0_px], [0, CAL.fy_px, CAL.cy_px], [0, 0, 1]])
        turned = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "T": np.array([[-0.1], [0.0], [0.0]])}
        turned["R"] = cv2.Rodrigues(np.array([0.0, 0.0, 0.01]))[0]
        geometry = ("--rectify", write_opencv(tmp_path / "rig.yaml", turned, 160, 120))
    else:
        geometry = ("--calib", calib_file)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run_cli(
            capsys, "predict", pair_files[0], grey_right, *SGBM, *geometry, "--format", "ply", "-o", out
        )
    assert code == 0, err
    # said once, not again when the pair is rectified
    assert sum("matched in grey" in str(w.message) for w in caught) + err.count("matched in grey") == 1, err
    points, colors = read_ply(out / "l.ply")
    assert len(points) > 0.5 * 120 * 160
    assert (colors[:, 0] != colors[:, 2]).mean() > 0.9  # not grey
    if not rectify:  # each point has its own pixel's colour
        u = np.round(points[:, 0] * CAL.fx_px / points[:, 2] + CAL.cx0_px).astype(int)
        v = np.round(points[:, 1] * CAL.fy_px / points[:, 2] + CAL.cy_px).astype(int)
        np.testing.assert_array_equal(colors, left[v, u])


def _maps_whose_last_columns_show_nothing(path: Path, columns: int) -> Path:
    """maps.npz for the 160x120 test pair whose rectified views show the raw ones ``columns`` px to the left: their
    last ``columns`` columns lie beyond the raw images (the black fill of a rectification with ``--alpha`` over 0)."""
    from rtstereo.rectify import Rectifier

    k = np.array([[CAL.fx_px, 0, CAL.cx0_px], [0, CAL.fy_px, CAL.cy_px], [0, 0, 1.0]])
    p1 = np.hstack([k, np.zeros((3, 1))])
    p1[0, 2] -= columns
    p2 = p1.copy()
    p2[0, 3] = -CAL.fx_px * CAL.baseline_m
    d = np.zeros(5)
    return Rectifier.from_matrices(k, d, k, d, np.eye(3), np.eye(3), p1, p2, (160, 120)).save(path)


def test_rectified_pixels_that_show_none_of_the_raw_view_get_no_depth_and_no_points(capsys, tmp_path, pair_files):
    # They had the disparity the model made up on the black fill: black points in the cloud, depths in the maps.
    maps = _maps_whose_last_columns_show_nothing(tmp_path / "maps.npz", 12)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "predict", *pair_files, *SGBM, "--rectify", maps, "--format", "pfm,depth,ply", "-o", out
    )
    assert code == 0, err
    disparity, depth = read_pfm(out / "l.pfm"), read_pfm(out / "l_depth.pfm")
    assert np.isinf(disparity[:, -12:]).all() and np.isinf(depth[:, -12:]).all()
    assert np.isfinite(depth[:, 20:-12]).mean() > 0.9  # the seen pixels keep theirs
    points, colours = read_ply(out / "l.ply")
    assert len(points) > 0.5 * 120 * 160
    # the points' x over z is (u - cx0) / fx: no point comes from the unseen columns
    columns = points[:, 0] / points[:, 2] * CAL.fx_px + (CAL.cx0_px - 12)
    assert columns.max() < 160 - 12 + 0.5, columns.max()
    assert (colours.max(axis=1) > 0).mean() > 0.99  # none of them is the fill's black
