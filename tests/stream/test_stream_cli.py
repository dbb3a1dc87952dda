"""``rtstereo video`` and ``rtstereo live`` from the command line: outputs, options, URLs, Ctrl-C, errors."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import BACKGROUND_PX, read_video, render_scene, write_video
from rtstereo import cli
from rtstereo.errors import OutputError
from rtstereo.io import read_disparity
from rtstereo.stream import StreamSummary
from rtstereo.types import Calibration

FAST = ["--model", "sgbm", "--max-disp", "32"]
REPO = Path(__file__).resolve().parents[2]


def test_two_videos_to_mp4_pngs_and_summary(run_cli, two_videos, tmp_path):
    code, out, err = run_cli(
        "video", *two_videos, "-o", tmp_path / "o.mp4", "--output-prefix", tmp_path / "png" / "d", *FAST
    )
    assert code == 0, err
    assert len(read_video(tmp_path / "o.mp4")) == 6
    assert len(list((tmp_path / "png").glob("d_*.png"))) == 6
    summary = json.loads((tmp_path / "o.json").read_text())
    assert summary["frames_written"] == 6 and summary["stopped_by"] == "end"
    assert summary["colour_max_disp_px"] == 32
    assert summary["video_fps"] == 10.0  # the videos' own rate, stored in the mp4
    assert {"capture", "inference", "write"} == set(summary["stages"])
    assert "fps end to end" in out and "inference" in out and "<- limit" in out and "\n  limit: " in out
    assert "two videos left.mp4 + right.mp4 -> sgbm" in err


def test_the_colour_range_of_max_disp_is_the_range_sgbm_searches(run_cli, two_videos, tmp_path):
    """SGBM at --max-disp 20 searches 32 disparities: the colours topped at 20 px, and 20-31 px all showed the top."""
    code, _, err = run_cli("video", *two_videos, "-o", tmp_path / "o.mp4", "--model", "sgbm", "--max-disp", 20)
    assert code == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["colour_max_disp_px"] == 32


def test_the_colour_range_of_a_range_given_with_set_is_that_of_max_disp(run_cli, two_videos, tmp_path):
    """--set max_disp=20 (as predict takes it) left the colours at the first frames' own range, --max-disp 20 at 32."""
    code, _, err = run_cli("video", *two_videos, "-o", tmp_path / "o.mp4", "--model", "sgbm", "--set", "max_disp=20")
    assert code == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["colour_max_disp_px"] == 32


def test_the_colour_range_of_max_disp_with_the_default_hybrid_is_max_disp_not_its_networks_192_px():
    """--max-disp 20 with the default model coloured 0..192 px (the hybrid's network range): the map looked uniform."""
    import rtstereo
    from rtstereo.cli.video import _colour_top_px

    assert _colour_top_px(20, rtstereo.load("default", max_disp=20)) == 20.0
    assert _colour_top_px(20, rtstereo.load("sgbm", max_disp=20)) == 32.0  # the range OpenCV searches
    assert _colour_top_px(None, rtstereo.load("default")) is None  # measured from the first frames


def test_a_range_given_past_the_frames_width_is_said_and_the_colours_stop_at_the_width(caplog):
    """The default hybrid at --max-disp 100000 on 320-px frames coloured 0-100000 px (one colour), without a word."""
    import logging

    import rtstereo
    from rtstereo.cli.video import _colour_top_px

    log = logging.getLogger("rtstereo.test")
    hybrid = rtstereo.load("default", max_disp=100000)
    with caplog.at_level(logging.WARNING, logger="rtstereo.test"):
        assert _colour_top_px(100000.0, hybrid, 320, log) == 320.0
        assert _colour_top_px(300.0, hybrid, 320, log) == 300.0  # within the width: as given, unsaid
        assert _colour_top_px(400.0, rtstereo.load("sgbm", max_disp=400), 320, log) == 400.0  # SGBM refuses the frames
    said = "--max-disp 100000 (max_disp= in Python) is beyond the frames' width, 320 px, which every disparity stays "
    assert [r.getMessage()[: len(said)] for r in caplog.records] == [said], caplog.text
    assert "the preview's colours span 0-320 px; give a --max-disp near the scene's largest disparity" in caplog.text


def test_mov_and_m4v_outputs_keep_their_own_default_summaries(run_cli, two_videos, tmp_path):
    for name in ("run.mov", "run.m4v", "run.mp4"):  # run.mov and run.m4v both wrote run.json
        code, _, err = run_cli("video", *two_videos, "-o", tmp_path / name, "--max-frames", 1, *FAST)
        assert code == 0, err
    summaries = sorted(p.name for p in tmp_path.glob("run*.json"))
    assert summaries == ["run.json", "run.m4v.json", "run.mov.json"]
    assert json.loads((tmp_path / "run.mov.json").read_text())["outputs"] == [str(tmp_path / "run.mov")]


def test_the_summary_says_which_frame_each_png_is_and_how_it_reads_back(run_cli, tmp_path):
    """PREFIX_summary.json named the model and the rates, not that the PNGs hold disparity x 256 in pixels of the
    frames --size made (half the source's width here), nor that PNG n is source frame start + n x stride: a user
    could not turn disp_00001.png back into the disparity of a known frame."""
    from tests.conftest import make_textured_pair

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for frame in range(5):  # frame i: a disparity of 8 + 4 i px at the source's size
        left, right = make_textured_pair(96, 128, disparity_px=8 + 4 * frame, seed=frame)
        cv2.imwrite(str(tmp_path / "L" / f"f{frame}.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "R" / f"f{frame}.png"), right[:, :, ::-1])
    prefix = tmp_path / "png" / "d"
    argv = [tmp_path / "L", tmp_path / "R", "--output-prefix", prefix, "--start", 1, "--stride", 2, "--size", "48x64"]
    code, _, err = run_cli("video", *argv, *FAST, "--quiet")
    assert code == 0, err
    summary = json.loads((tmp_path / "png" / "d_summary.json").read_text())
    assert summary["frame_size_hw"] == [48, 64] and summary["source_frames"] == {"start": 1, "stride": 2}
    png16 = summary["encodings"]["png16"]
    assert png16["files"] == "d_NNNNN.png" and (png16["unit"], png16["invalid"]) == ("px", 0)
    for n in range(2):
        stored = cv2.imread(str(prefix.parent / png16["files"].replace("NNNNN", f"{n:05d}")), cv2.IMREAD_UNCHANGED)
        assert stored.shape == tuple(summary["frame_size_hw"])
        disparity_px = stored[stored != png16["invalid"]] / png16["divide_by"]
        frame = summary["source_frames"]["start"] + n * summary["source_frames"]["stride"]
        scale = summary["frame_size_hw"][1] / 128  # the source frames' width
        assert np.median(disparity_px) == pytest.approx((8 + 4 * frame) * scale, abs=0.5), n


def test_the_summary_records_the_calibration_the_frames_were_given_as_scaled_to_them(run_cli, tmp_path):
    """video --calib carried the calibration into each frame's result and wrote it nowhere: the PNGs' depths could not
    be worked out as predict --calib's are, least of all after --size had scaled the calibration."""
    from tests.conftest import make_textured_pair

    from rtstereo.geometry import depth_from_disparity
    from rtstereo.io import read_disparity
    from rtstereo.io.calibration import read_calibration
    from rtstereo.types import Calibration

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    left, right = make_textured_pair(96, 128, disparity_px=12, seed=0)
    cv2.imwrite(str(tmp_path / "L" / "f0.png"), left[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "R" / "f0.png"), right[:, :, ::-1])
    calib = tmp_path / "calib.txt"
    calib.write_text(
        "cam0=[200 0 63.5; 0 200 47.5; 0 0 1]\ncam1=[200 0 65.5; 0 200 47.5; 0 0 1]\ndoffs=2\nbaseline=120\n"
        "width=128\nheight=96\nndisp=32\n"
    )
    prefix = tmp_path / "png" / "d"
    argv = [tmp_path / "L", tmp_path / "R", "--output-prefix", prefix, "--calib", calib, "--size", "48x64"]
    code, _, err = run_cli("video", *argv, *FAST, "--quiet")
    assert code == 0, err
    summary = json.loads((tmp_path / "png" / "d_summary.json").read_text())
    recorded = summary["calibration"]
    assert recorded["fx_px"] == 100.0 and (recorded["width_px"], recorded["height_px"]) == (64, 48), recorded
    assert recorded["baseline_m"] == pytest.approx(0.12)
    # the PNG's depth from the recorded calibration is the one the frames' own calibration gives, scaled alike
    disparity_px = read_disparity(tmp_path / "png" / "d_00000.png")
    with pytest.warns(UserWarning, match="scaled"):
        expected = depth_from_disparity(disparity_px, read_calibration(calib))
    np.testing.assert_allclose(depth_from_disparity(disparity_px, Calibration(**recorded)), expected, rtol=1e-6)
    code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", "--output-prefix", prefix, *FAST, "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "png" / "d_summary.json").read_text())["calibration"] is None


def test_the_summary_records_the_hybrids_settings_as_predicts_sidecar_does(run_cli, tmp_path):
    """video's summary recorded the hybrid's own settings only, where predict's sidecar records its network's runtime
    and post-processing too (backend, precision, refine_edges, fill_left_border): the two disagreed on one model."""
    from tests.conftest import make_textured_pair

    import rtstereo

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    left, right = make_textured_pair(64, 128, disparity_px=6, seed=0)
    cv2.imwrite(str(tmp_path / "L" / "f0.png"), left[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "R" / "f0.png"), right[:, :, ::-1])
    code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", "--output-prefix", tmp_path / "d", "--quiet")
    assert code == 0, err
    summary = json.loads((tmp_path / "d_summary.json").read_text())
    with rtstereo.load("default") as model:
        settings = model.predict(left, right).settings
    per_pair = {"sgbm_input_used", "sgbm_searched_disp"}  # what each pair's own run adds
    expected = json.loads(json.dumps({k: v for k, v in settings.items() if k not in per_pair}, default=str))
    assert summary["model"] == "hybrid" and summary["settings"] == expected
    assert summary["settings"]["refine_edges"] is True and summary["settings"]["backend"] == "onnxruntime"


def test_the_summary_records_the_row_shift_align_rows_applied(run_cli, tmp_path):
    """video --align-rows said the misalignment in a log line only: the summary kept no trace of the rows moved."""
    from tests.conftest import make_textured_pair

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for frame in range(3):
        left, right = make_textured_pair(120, 160, disparity_px=5, seed=frame)
        cv2.imwrite(str(tmp_path / "L" / f"f{frame}.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "R" / f"f{frame}.png"), np.roll(right[:, :, ::-1], 2, axis=0))  # rows 2 px down
    for extra, name in ((["--align-rows"], "aligned"), ([], "as_taken")):
        prefix = tmp_path / name / "d"
        code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", *FAST, "--output-prefix", prefix, *extra, "-q")
        assert code == 0, err
    summary = json.loads((tmp_path / "aligned" / "d_summary.json").read_text())
    record = summary["preparation"]["align_rows"]
    assert record["applied"] is True and record["misalignment_px"] == pytest.approx(2.0, abs=0.3), record
    assert record["row_shift_px"]["offset"] == pytest.approx(-2.0, abs=0.3), record  # dy = y_left - y_right
    assert json.loads((tmp_path / "as_taken" / "d_summary.json").read_text())["preparation"] == {}


def test_a_rerun_with_fewer_frames_says_the_earlier_pngs_it_leaves(run_cli, two_videos, tmp_path, recwarn):
    """A warning (printed as one line by the command; recorded here, as pytest records warnings)."""
    prefix = tmp_path / "png" / "d"
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "d_notes.png").write_bytes(b"a file of the user's, not numbered")

    def said() -> list[str]:
        messages = [str(w.message) for w in recwarn.list if "of an earlier run" in str(w.message)]
        recwarn.clear()
        return messages

    code, _, err = run_cli("video", *two_videos, "--output-prefix", prefix, *FAST)
    assert code == 0 and not said(), err  # only this run's PNGs there
    code, _, err = run_cli("video", *two_videos, "--output-prefix", prefix, "--max-frames", 2, *FAST)
    assert code == 0, err
    expected = f"4 PNGs of an earlier run are left beside this run's under {prefix}_ (d_00002.png to d_00005.png)"
    assert [m for m in said() if expected in m], recwarn.list
    assert len(list((tmp_path / "png").glob("d_*.png"))) == 7  # nothing removed
    code, _, err = run_cli("video", *two_videos, "--output-prefix", prefix, *FAST)
    assert code == 0 and not said(), err  # all six replaced


def test_swap_exchanges_two_videos_given_in_the_wrong_order(run_cli, two_videos, tmp_path):
    left, right = two_videos
    code, _, err = run_cli("video", left, right, "--output-prefix", tmp_path / "a", "--max-frames", 2, *FAST)
    assert code == 0, err
    code, _, err = run_cli("video", right, left, "--swap", "--output-prefix", tmp_path / "b", "--max-frames", 2, *FAST)
    assert code == 0, err
    for number in range(2):
        expected = read_disparity(tmp_path / f"a_{number:05d}.png")
        assert np.isfinite(expected).mean() > 0.5
        np.testing.assert_array_equal(read_disparity(tmp_path / f"b_{number:05d}.png"), expected)


def test_side_by_side_with_swap_start_stride_max_frames_and_size(run_cli, sbs_video, tmp_path):
    code, out, err = run_cli(
        "video",
        "--sbs",
        sbs_video,
        "--swap",
        "--start",
        1,
        "--stride",
        2,
        "--max-frames",
        2,
        "--size",
        "32x64",
        "--output-prefix",
        tmp_path / "d",
        *FAST,
    )
    assert code == 0, err
    pngs = sorted(tmp_path.glob("d_*.png"))
    assert [p.name for p in pngs] == ["d_00000.png", "d_00001.png"]
    assert read_disparity(pngs[0]).shape == (32, 64)
    assert "resizing 64x128 frames to 32x64 (--size, HxW): the disparity is in pixels of the 32x64 frames" in err
    summary = json.loads((tmp_path / "d_summary.json").read_text())
    assert summary["stopped_by"] == "max-frames" and "(swapped)" in summary["source"]
    assert "stopped: --max-frames reached)" in out, out  # the option as given; Python's report says max_frames


def test_image_sequence_with_temporal_filter(run_cli, tmp_path):
    _sequence(tmp_path, render_scene(frames=3))
    code, _, err = run_cli(
        "video",
        tmp_path / "L",
        str(tmp_path / "R" / "*.png"),
        "--fps",
        5,
        "--temporal",
        "--temporal-alpha",
        0.5,
        "--temporal-reset-px",
        1.5,
        "--temporal-confirm",
        0,
        "-o",
        tmp_path / "o.mp4",
        "--summary",
        tmp_path / "s.json",
        "-q",
        *FAST,
    )
    assert code == 0, err
    assert err == ""  # --quiet
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["temporal"] == {"alpha": 0.5, "reset_px": 1.5, "confirm_frames": 0, "hold_frames": 2}
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(5)


def test_calibration_and_rectification_maps_are_applied(run_cli, two_videos, tmp_path):
    from rtstereo.io.calibration import write_calibration
    from rtstereo.rectify import Rectifier

    calibration = Calibration(100.0, 100.0, 63.5, 63.5, 31.5, 0.1, 128, 64)
    write_calibration(tmp_path / "calib.json", calibration)
    code, _, err = run_cli("video", *two_videos, "--calib", tmp_path / "calib.json", "--max-frames", 1, *FAST)
    assert code == 0, err
    k = np.array([[100.0, 0, 63.5], [0, 100, 31.5], [0, 0, 1]])
    p = np.hstack([k, np.zeros((3, 1))])
    Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p, p, (128, 64), calibration).save(
        tmp_path / "maps.npz"
    )
    for extra, name in (([], "plain"), (["--rectify", tmp_path / "maps.npz"], "rectified")):
        code, _, err = run_cli(
            "video", *two_videos, "--max-frames", 2, "--output-prefix", tmp_path / name, *extra, *FAST
        )
        assert code == 0, err
    # identity maps: the same frames, so the same disparity
    np.testing.assert_allclose(
        read_disparity(tmp_path / "rectified_00001.png"),
        read_disparity(tmp_path / "plain_00001.png"),
        equal_nan=True,
    )


def test_rectified_pixels_that_show_none_of_the_raw_frames_get_no_disparity(run_cli, tmp_path):
    # The black fill beyond the raw frames (a rectification with --alpha over 0) had the disparity the model made up
    from tests.conftest import make_textured_pair

    from rtstereo.rectify import Rectifier

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    left, right = make_textured_pair(96, 128, disparity_px=12, seed=0)
    cv2.imwrite(str(tmp_path / "L" / "f0.png"), left[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "R" / "f0.png"), right[:, :, ::-1])
    k = np.array([[100.0, 0, 63.5], [0, 100, 47.5], [0, 0, 1]])
    p1 = np.hstack([k, np.zeros((3, 1))])
    p1[0, 2] -= 10  # the rectified frames show the raw ones 10 px to the left: their last 10 columns show nothing
    p2 = p1.copy()
    p2[0, 3] = -10.0
    Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p1, p2, (128, 96)).save(
        tmp_path / "maps.npz"
    )
    for extra, name in (([], "full"), (["--size", "48x64"], "half")):
        prefix = tmp_path / name / "d"
        argv = [tmp_path / "L", tmp_path / "R", "--rectify", tmp_path / "maps.npz", "--output-prefix", prefix]
        code, _, err = run_cli("video", *argv, *extra, *FAST, "--quiet")
        assert code == 0, err
        disparity = read_disparity(tmp_path / name / "d_00000.png")
        unseen = 10 * disparity.shape[1] // 128
        assert np.isnan(disparity[:, -unseen:]).all(), name
        assert np.isfinite(disparity[:, 40 * disparity.shape[1] // 128 : -unseen]).mean() > 0.9, name


def test_a_sequence_frame_of_another_size_than_the_maps_is_named(run_cli, tmp_path):
    """A folder whose frames change size midway, with --rectify: the stream stopped at the first frame of the other
    size with "left image is 48x64 but the rectification maps are for 96x128", which named neither the frame nor
    its files among a sequence's thousands."""
    from tests.conftest import make_textured_pair

    from rtstereo.rectify import Rectifier

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for index, (height, width) in enumerate([(96, 128), (96, 128), (48, 64)]):
        left, right = make_textured_pair(height, width, disparity_px=6, seed=index)
        cv2.imwrite(str(tmp_path / "L" / f"f{index}.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "R" / f"f{index}.png"), right[:, :, ::-1])
    k = np.array([[100.0, 0, 63.5], [0, 100, 47.5], [0, 0, 1]])
    p = np.hstack([k, np.zeros((3, 1))])
    calibration = Calibration(100.0, 100.0, 63.5, 63.5, 47.5, 0.1, 128, 96)
    Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p, p, (128, 96), calibration).save(
        tmp_path / "maps.npz"
    )
    prefix = tmp_path / "out" / "d"
    for size in ([], ["--size", "48x64"]):
        argv = [tmp_path / "L", tmp_path / "R", "--rectify", tmp_path / "maps.npz", "--output-prefix", prefix, *size]
        code, _, err = run_cli("video", *argv, *FAST, "--quiet")
        assert code == 2, err
        assert (
            f"rtstereo video: error: frame 2 ({tmp_path / 'L' / 'f2.png'}, {tmp_path / 'R' / 'f2.png'}): the frames "
            "are 48x64 but the rectification maps are for 96x128 (HxW) images" in err
        ), err
        assert sorted(path.name for path in prefix.parent.glob("d_0*.png")) == ["d_00000.png", "d_00001.png"]


def test_a_high_speed_video_keeps_its_frame_rate(run_cli, scene, tmp_path):
    """A 1200 fps video (a high-speed camera's) was taken for one without a rate (believed up to 1000 fps): its mp4
    was recorded at the rate the model ran at, not at 1200 fps over --stride."""
    left, right = (
        write_video(tmp_path / f"{side}.mp4", views, fps=1200)
        for side, views in (("l", scene.lefts), ("r", scene.rights))
    )
    assert cv2.VideoCapture(str(left)).get(cv2.CAP_PROP_FPS) == 1200  # as the test needs
    code, _, err = run_cli("video", left, right, "--stride", 2, "-o", tmp_path / "o.mp4", *FAST, "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["video_fps"] == 600
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FPS) == 600


def test_calib_unit_reads_opencv_files_in_millimetres(run_cli, two_videos, tmp_path):
    from rtstereo.io.calibration import projection_matrices, write_opencv

    matrices = projection_matrices(Calibration(100.0, 100.0, 63.5, 63.5, 31.5, 0.1, 128, 64))
    matrices["P2"][0, 3] *= 1000  # the board was measured in millimetres
    untagged = write_opencv(tmp_path / "mm.yaml", matrices, 128, 64)
    tagged = write_opencv(tmp_path / "mm_tagged.yaml", matrices, 128, 64, length_unit="mm")
    code, _, err = run_cli("video", *two_videos, "--calib", untagged, "--calib-unit", "mm", "--max-frames", 1, *FAST)
    assert code == 0 and "baseline of" not in err, err
    code, _, err = run_cli("video", *two_videos, "--calib", tagged, "--calib-unit", "m", "--max-frames", 1, *FAST)
    assert code == 2 and "says its lengths are in mm (length_unit), but m was given" in err, err
    # where it would change nothing, it is refused rather than ignored
    code, _, err = run_cli("video", *two_videos, "--calib-unit", "mm", "--max-frames", 1, *FAST)
    assert code == 2 and "--calib-unit is the length unit of an OpenCV calibration file" in err, err


def test_live_uvc_file_with_max_frames_shows_its_progress_out_of_the_frames_it_reads(run_cli, sbs_video, tmp_path):
    """--max-frames 3 of a 6-frame recording drew the bar out of 6 (its count) and stopped at 50 %."""
    code, _, err = run_cli("live", "--camera", f"uvc:{sbs_video}", "--max-frames", 3, "-o", tmp_path / "o.mp4", *FAST)
    bar = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("live:")]
    assert code == 0 and bar and all("/3 " in line for line in bar), bar
    assert bar[-1].startswith("live: 100%") and " 3/3 " in bar[-1], bar


@pytest.mark.parametrize("verb", ["video", "live"])
def test_the_progress_bar_is_named_by_the_verb_as_predicts_is(run_cli, sbs_video, tmp_path, verb):
    """video and live labelled their bars "stream:", where predict and eval label theirs with their names."""
    given = ["--sbs", sbs_video] if verb == "video" else ["--camera", f"uvc:{sbs_video}", "--camera-fps", 100]
    code, _, err = run_cli(verb, *given, "--max-frames", 2, *FAST)
    lines = err.replace("\r", "\n").splitlines()
    assert code == 0 and any(line.startswith(f"{verb}: 100%") for line in lines), lines
    assert not any(line.startswith("stream:") for line in lines), lines


def test_live_uvc_camera_on_a_side_by_side_file(run_cli, sbs_video, tmp_path):
    code, out, err = run_cli("live", "--camera", f"uvc:{sbs_video}", "-o", tmp_path / "live.mp4", *FAST)
    assert code == 0, err
    written = json.loads((tmp_path / "live.json").read_text())
    assert written["source_stats"]["camera_frames"] == 6
    stored = cv2.VideoCapture(str(tmp_path / "live.mp4"))
    assert written["video_fps"] > 0 and written["video_fps"] == pytest.approx(stored.get(cv2.CAP_PROP_FPS), abs=0.01)
    stored.release()
    assert len(read_video(tmp_path / "live.mp4")) == written["frames_written"] >= 1
    # every frame the capture stage took was either processed or replaced by a newer one
    assert written["frames_read"] == written["frames_processed"] + written["frames_dropped"]
    assert "camera_fps" in out and "\n  limit: " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["video", "a.mp4"],
            "expected LEFT_VIDEO RIGHT_VIDEO, got 1 input; for one side-by-side video add --sbs",
        ),
        (["video", "--sbs", "a.mp4", "b.mp4"], "--sbs takes one side-by-side video"),
        (["video", "--sbs", "missing.mp4"], "side-by-side video not found: missing.mp4"),
        (["video", "--sbs", "{sbs}", "--size", "64"], "size '64' not understood"),
        (["video", "--sbs", "{sbs}", "--max-frames", "0"], "--max-frames must be >= 1"),
        # worded as predict words it (video said "give --rectify or --calib", predict "give --calib or --rectify")
        (
            ["video", "--sbs", "{sbs}", "--rectify", "m.npz", "--calib", "c.json"],
            "give --calib or --rectify, not both: the rectification maps carry the calibration of the rectified images",
        ),
        (["video", "--sbs", "{sbs}", "--stride", "0"], "--stride must be >= 1"),
        (["live", "--camera", "kinect"], "unknown camera 'kinect'"),
        (["live", "--camera", "uvc:99"], "cannot open camera uvc:99"),
    ],
)
def test_bad_arguments_give_one_clear_line(run_cli, sbs_video, args, message):
    code, _, err = run_cli(*[a.format(sbs=sbs_video) for a in args], *FAST)
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("verb", ["video", "adapt"])
def test_a_still_image_given_as_a_side_by_side_video_is_refused(run_cli, tmp_path, scene, verb):
    """FFmpeg opens a still image as a one-frame video: `video --sbs photo.png` ran one frame and exited 0."""
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.concatenate([scene.lefts[0], scene.rights[0]], axis=1))
    options = FAST if verb == "video" else ["--steps", "1"]
    code, out, err = run_cli(verb, "--sbs", photo, "-o", tmp_path / ("o.mp4" if verb == "video" else "o.pt"), *options)
    assert code == 2, err
    # Named after the command that was run where it takes image pairs (adapt said "use rtstereo predict").
    command = "predict" if verb == "video" else "adapt"
    assert (
        f"side-by-side video {photo} is a still image, not a video: for a pair of images use rtstereo {command} "
        "LEFT RIGHT (cut a side-by-side photo into its left and right halves first)"
    ) in err
    assert not list(tmp_path.glob("o.*"))


def test_still_images_given_as_two_videos_or_as_a_camera_recording_are_refused(run_cli, tmp_path, scene):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.concatenate([scene.lefts[0], scene.rights[0]], axis=1))
    (tmp_path / "other.png").write_bytes(photo.read_bytes())
    code, _, err = run_cli("video", photo, tmp_path / "other.png", "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and f"left video {photo} is a still image, not a video" in err, err
    code, _, err = run_cli("live", "--camera", f"uvc:{photo}", "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and f"camera uvc:{photo} is a still image, not a video" in err, err
    assert not (tmp_path / "o.mp4").exists()


def test_a_damaged_image_given_as_a_video_is_said_to_be_one(run_cli, tmp_path):
    """A valid .png is "a still image, not a video"; a damaged one read "it reports no frame size (no video
    stream?)"."""
    (tmp_path / "l.png").write_bytes(b"not a png")
    (tmp_path / "r.png").write_bytes(b"not a png either")
    code, _, err = run_cli("video", tmp_path / "l.png", tmp_path / "r.png", "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2, err
    assert (
        f"cannot read left video {tmp_path / 'l.png'}: named as an image, not a video, and not an image OpenCV can "
        "decode either (damaged?); for a pair of images use rtstereo predict LEFT RIGHT"
    ) in err
    assert not (tmp_path / "o.mp4").exists()


def test_start_past_the_end_of_a_video_cut_short_is_an_error_not_an_empty_run(run_cli, tmp_path):
    """Its header claims 12 frames, so --start 11 passed the up-front check: 0 frames, exit code 0."""
    from test_stream_sources import cut_video

    scene = render_scene(frames=12)
    frames = [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    video, held = cut_video(tmp_path / "sbs.avi", frames)
    left, _ = cut_video(tmp_path / "left.avi", scene.lefts)
    right = write_video(tmp_path / "right.mp4", scene.rights)
    for inputs, label in (([video, "--sbs"], "side-by-side video sbs.avi"), ([left, right], "left video left.avi")):
        code, out, err = run_cli("video", *inputs, "--start", 11, "-o", tmp_path / "o.mp4", *FAST)
        assert code == 2, err
        said = f"error: --start 11 is past the end of the {label} (it holds {held} frames; its header claims 12: "
        assert said + "the file is cut short or damaged); give a smaller --start" in err, err
        assert not (tmp_path / "o.mp4").exists()
    code, _, err = run_cli("video", video, "--sbs", "--start", held - 1, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 0 and len(read_video(tmp_path / "o.mp4")) == 1, err  # the last frame it holds


def test_a_damaged_frame_mid_video_is_passed_over_and_keeps_the_numbers(run_cli, tmp_path):
    """One MJPEG frame that does not decode ended the run there ("the file is cut short or damaged"), and the 7
    good frames after it were never used. PNG n and mp4 frame n stay the video's frame n: a gap and a black frame."""
    from test_stream_sources import damaged_video

    scene = render_scene(frames=12)
    left = damaged_video(tmp_path / "left.avi", scene.lefts, damaged=(4,))
    right = write_video(tmp_path / "right.mp4", scene.rights)
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "d_00004.png").write_bytes(b"an earlier run's")  # would pass for this run's frame 4
    argv = ["video", left, right, "-o", tmp_path / "o.mp4", "--output-prefix", tmp_path / "png" / "d", *FAST]
    code, out, err = run_cli(*argv, "--max-frames", 10)
    assert code == 0, err
    assert "warning: frame 4 of the left video left.avi does not decode (damaged): passed over" in err, err
    assert "cut short" not in err and "earlier run" not in err, err
    pngs = sorted(p.name for p in (tmp_path / "png").glob("d_0*.png"))
    assert pngs == [f"d_{n:05d}.png" for n in (0, 1, 2, 3, 5, 6, 7, 8, 9)]
    for n in (3, 5, 9):  # each PNG the disparity of the video's frame of its number
        expected = np.full(scene.lefts[n].shape[:2], float(BACKGROUND_PX))
        disparity = read_disparity(tmp_path / "png" / f"d_{n:05d}.png")
        assert np.nanmedian(np.abs(disparity - expected)) < 0.5
    previews = read_video(tmp_path / "o.mp4")
    assert len(previews) == 10 and previews[4].max() == 0 and previews[5].max() > 0
    summary = json.loads((tmp_path / "o.json").read_text())
    assert summary["frames_written"] == 9 and summary["source_stats"] == {"damaged_frames": [4]}
    assert "source: damaged_frames [4]" in out


def test_a_video_that_gives_no_frame_fails_with_nothing_written(run_cli, tmp_path):
    """A header and no frame ran as an empty stream: '0 frames', a summary written and exit code 0."""
    from test_stream_sources import frameless_video

    scene = render_scene(frames=12)
    right = frameless_video(tmp_path / "right.avi", scene.rights)
    left = write_video(tmp_path / "left.mp4", scene.lefts)
    code, _, err = run_cli("video", left, right, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2, err
    assert "error: the right video right.avi gives no frame (its header claims 12: the file is cut short" in err, err
    assert not list(tmp_path.glob("o.*"))


def test_ffmpegs_own_lines_about_a_damaged_file_are_held_back(tmp_path):
    """Zeroed bytes in an mp4 made FFmpeg print hundreds of "[mpeg4 @ 0x...] marker does not match f_code" lines;
    rtstereo's own warning names the file and the frames that did not decode. OPENCV_FFMPEG_LOGLEVEL=16 shows them
    again."""
    scene = render_scene(frames=12)
    video = write_video(tmp_path / "sbs.mp4", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(3000)
    video.write_bytes(bytes(data))
    argv = [sys.executable, "-m", "rtstereo", "video", "--sbs", str(video), "-o", str(tmp_path / "o.mp4"), *FAST, "-q"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_FFMPEG")}
    env["PYTHONPATH"] = str(REPO / "src")
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert lines and all(line.startswith("rtstereo video: ") for line in lines), lines[:5]
    assert " of the side-by-side video sbs.mp4 do" in quiet.stderr and "not decode (damaged)" in quiet.stderr
    loud = subprocess.run(
        argv, env={**env, "OPENCV_FFMPEG_LOGLEVEL": "16"}, capture_output=True, text=True, timeout=120
    )
    # FFmpeg's lines when asked for (OpenCV's own logger prints them, on stdout)
    assert (loud.stdout + loud.stderr).count("marker does not match f_code") > 10, loud.stdout[-300:]
    assert "f_code" not in quiet.stdout


def test_ffmpegs_fatal_level_lines_about_a_damaged_frame_are_held_back_too(tmp_path):
    """FFmpeg's Motion JPEG decoder logs a frame without data at its fatal level, which the quiet level (8) let
    through: "[OPENCV:FFMPEG:08] No JPEG data found in image", twice, on stdout among rtstereo's own lines."""
    from test_stream_sources import frameless_video

    scene = render_scene(frames=12)
    video = frameless_video(tmp_path / "sbs.avi", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    argv = [sys.executable, "-m", "rtstereo", "video", "--sbs", str(video), "-o", str(tmp_path / "o.mp4"), *FAST]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_FFMPEG")}
    env["PYTHONPATH"] = str(REPO / "src")
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2, quiet.stderr
    assert quiet.stdout == "" and "FFMPEG" not in quiet.stderr and "JPEG" not in quiet.stderr, quiet.stderr
    loud = subprocess.run(argv, env={**env, "OPENCV_FFMPEG_LOGLEVEL": "8"}, capture_output=True, text=True, timeout=120)
    assert "No JPEG data found in image" in loud.stdout + loud.stderr  # what the test would miss: FFmpeg said it


def test_videos_of_different_sizes_fail_before_any_output(run_cli, tmp_path, scene):
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", [cv2.resize(f, (64, 32)) for f in scene.rights])
    code, _, err = run_cli("video", left, right, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and "differ in frame size" in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("option", ["--calib", "--rectify"])
def test_live_oak_refuses_a_calibration_or_maps_of_its_own(run_cli, monkeypatch, tmp_path, option):
    """The OAK's pairs carry the device's calibration: --calib was ignored, --rectify rectified them twice."""
    from rtstereo.sources.oak import OakSource

    def never_started(dai):
        raise AssertionError("the camera started before the options were checked")

    monkeypatch.setattr("rtstereo.cli.live.open_camera", lambda *a, **k: OakSource(start_device=never_started))
    calib = tmp_path / "calib.txt"
    calib.write_text("cam0=[100 0 32; 0 100 24; 0 0 1]\ncam1=[100 0 32; 0 100 24; 0 0 1]\ndoffs=0\nbaseline=100\n")
    code, _, err = run_cli("live", "--camera", "oak", option, calib, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and f"{option}: camera oak " in err and f"drop {option}" in err, err
    assert not (tmp_path / "o.mp4").exists()


def test_live_oak_without_a_device(run_cli):
    pytest.importorskip("depthai", reason="depthai is not installed (extra camera)")
    code, _, err = run_cli("live", "--camera", "oak", *FAST)
    assert code == 2 and "no OAK device found" in err


# -- video URLs through yt-dlp (a local HTTP server; no external network) ----------------------------


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_video_url_is_downloaded_once_with_yt_dlp(run_cli, sbs_video, http_server, stream_cache, tmp_path, monkeypatch):
    pytest.importorskip("yt_dlp", reason="yt-dlp is not installed (extra video)")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    url = f"{http_server}/{sbs_video.name}"
    code, _, err = run_cli("video", "--sbs", url, "--output-prefix", tmp_path / "d", *FAST)
    assert code == 0, err
    assert len(list(tmp_path.glob("d_*.png"))) == 6
    cached = list((stream_cache / "videos").iterdir())
    assert len(cached) == 1 and cached[0].read_bytes() == sbs_video.read_bytes()
    code, _, err = run_cli("video", "--sbs", url, "--max-frames", 1, *FAST)
    assert code == 0 and "using the cached download" in err


def test_two_video_urls_are_read_like_a_side_by_side_one(
    run_cli, two_videos, http_server, stream_cache, tmp_path, monkeypatch
):
    pytest.importorskip("yt_dlp", reason="yt-dlp is not installed (extra video)")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    left, right = two_videos
    code, _, err = run_cli(
        "video", f"{http_server}/{left.name}", right.as_uri(), "--output-prefix", tmp_path / "d", *FAST
    )
    assert code == 0, err
    assert "two videos left.mp4 + right.mp4 -> sgbm" in err
    assert len(list(tmp_path.glob("d_*.png"))) == 6
    assert [p.read_bytes() for p in (stream_cache / "videos").iterdir()] == [left.read_bytes()]


def test_a_video_url_that_fails_says_so(run_cli, http_server, stream_cache, monkeypatch):
    pytest.importorskip("yt_dlp", reason="yt-dlp is not installed (extra video)")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run_cli("video", "--sbs", f"{http_server}/missing.mp4", *FAST)
    assert code == 2
    assert f"cannot fetch the video at {http_server}/missing.mp4" in err and "404" in err


def test_a_video_url_that_gives_no_frame_is_not_kept(run_cli, http_server, stream_cache, tmp_path, monkeypatch):
    """A download that opens but gives no frame at all (a header and no data) stayed in the cache: every later run
    read the cached copy and failed, whatever the server served by then."""
    pytest.importorskip("yt_dlp", reason="yt-dlp is not installed (extra video)")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    writer = cv2.VideoWriter(str(tmp_path / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 24))
    writer.release()
    url = f"{http_server}/empty.avi"
    code, _, err = run_cli("video", "--sbs", url, *FAST)
    assert code == 2 and f"the side-by-side video {url} gives no frame" in err, err
    assert list((stream_cache / "videos").glob("*.avi")) == []


def test_a_video_url_that_is_no_video_is_named_by_its_url_and_not_kept(
    run_cli, two_videos, http_server, stream_cache, tmp_path, monkeypatch
):
    pytest.importorskip("yt_dlp", reason="yt-dlp is not installed (extra video)")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    cv2.imwrite(str(tmp_path / "photo.png"), np.full((24, 64, 3), 128, np.uint8))
    url = f"{http_server}/photo.png"
    for _ in range(2):  # the second run fetches it again instead of failing on a cached still image
        code, _, err = run_cli("video", "--sbs", url, *FAST)
        assert code == 2
        assert f"side-by-side video {url} is a still image, not a video" in err, err
        error = [line for line in err.splitlines() if "error:" in line]
        assert "using the cached download" not in err and len(error) == 1 and str(stream_cache) not in error[0]
        assert list((stream_cache / "videos").iterdir()) == []
    (tmp_path / "notes.txt").write_text("not a video")
    left = two_videos[0]
    code, _, err = run_cli("video", f"{http_server}/{left.name}", f"{http_server}/notes.txt", *FAST)
    assert code == 2 and f"cannot read right video {http_server}/notes.txt: not a video" in err, err
    assert [p.read_bytes() for p in (stream_cache / "videos").iterdir()] == [left.read_bytes()]


def test_a_video_url_without_yt_dlp_names_the_extra(run_cli, stream_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "yt_dlp", None)  # as if not installed
    code, _, err = run_cli("video", "--sbs", "https://www.youtube.com/watch?v=abc", *FAST)
    assert code == 2 and "pip install 'rtstereo[video]'" in err


# -- Ctrl-C ----------------------------------------------------------------------------------------


def _signalled_at_the_first_png(tmp_path, script: str, args: list[str], number: int) -> tuple[int, str]:
    """``python -c SCRIPT ARGS...`` in a process of its own, sent ``number`` once its first ``d_*.png`` is in
    ``tmp_path`` (or after 60 s): its exit code and stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("d_*.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(number)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_ctrl_c_keeps_a_playable_mp4_and_complete_pngs(tmp_path):
    """A real SIGINT to a real `rtstereo video` process, once it has written its first frame."""
    # Far more frames than the interrupt needs: on a loaded machine this process may look for the first
    # PNG late, and the video must still be running then (60 frames once ran out first in CI).
    frames = 300
    scene = render_scene(frames=frames, step_px=1)
    video = write_video(
        tmp_path / "sbs.mp4", [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    )
    # A shell that starts a job in the background without job control (`cmd &` in a script, as a CI
    # runner may do) hands it SIGINT ignored, and Python keeps an inherited "ignore": restore the
    # handler a terminal's foreground process has, which is the case this test is about.
    script = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from rtstereo import cli; cli.VERBS += ['video'] * ('video' not in cli.VERBS); "
        "sys.exit(cli.main())"
    )
    # Upscaling makes each frame slow enough (tens of ms) to be interrupted midway.
    args = [
        "video",
        "--sbs",
        str(video),
        "--size",
        "512x1024",
        "-o",
        str(tmp_path / "o.mp4"),
        "--output-prefix",
        str(tmp_path / "d"),
        *FAST,
    ]
    code, err = _signalled_at_the_first_png(tmp_path, script, args, signal.SIGINT)
    assert code == 130, err
    pngs = sorted(tmp_path.glob("d_*.png"))
    assert f"rtstereo video: interrupted: {len(pngs)} of {frames} frames written; what was written is complete" in err
    assert 1 <= len(pngs) < frames
    for png in pngs:
        assert read_disparity(png).shape == (512, 1024)
    assert len(read_video(tmp_path / "o.mp4")) == len(pngs)
    assert json.loads((tmp_path / "o.json").read_text())["stopped_by"] == "interrupt"


def test_kill_stops_a_live_stream_as_ctrl_c_does(tmp_path):
    """SIGTERM (`kill`, a service manager, `timeout`) ended the process at once: the mp4 was never finished."""
    frames = 200  # played as a camera at 20 fps: 10 s, far longer than the test waits
    scene = render_scene(frames=frames, step_px=1)
    video = write_video(
        tmp_path / "sbs.mp4", [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)], fps=20
    )
    script = (
        "import sys; from rtstereo import cli; cli.VERBS += ['live'] * ('live' not in cli.VERBS); sys.exit(cli.main())"
    )
    args = ["live", "--camera", f"uvc:{video}", "-o", str(tmp_path / "o.mp4"), "--output-prefix", str(tmp_path / "d")]
    code, err = _signalled_at_the_first_png(tmp_path, script, [*args, *FAST], signal.SIGTERM)
    assert code == 130, err
    pngs = sorted(tmp_path.glob("d_*.png"))
    assert f"rtstereo live: interrupted: {len(pngs)} frames written; what was written is complete" in err
    assert 1 <= len(pngs) < frames and len(read_video(tmp_path / "o.mp4")) == len(pngs)
    assert json.loads((tmp_path / "o.json").read_text())["stopped_by"] == "interrupt"


def test_ctrl_c_before_the_first_frame_leaves_no_video_and_says_so(run_cli, sbs_video, tmp_path, monkeypatch):
    from rtstereo.sources.video import VideoReader
    from rtstereo.stream import Stream

    read = VideoReader.read

    def slow_read(reader):
        time.sleep(0.3)  # the first frame is still being decoded when Ctrl-C comes
        return read(reader)

    def ctrl_c(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(VideoReader, "read", slow_read)
    monkeypatch.setattr(Stream, "_supervise", ctrl_c)
    (tmp_path / "o.mp4").write_bytes(b"an earlier run's video")
    code, _, err = run_cli(
        "video", "--sbs", sbs_video, "-o", tmp_path / "o.mp4", "--output-prefix", tmp_path / "d", *FAST
    )
    assert code == 130
    assert (
        err.splitlines()[-1]
        == "rtstereo video: interrupted before the first frame was written: no video or PNG written"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.mp4", "sbs.mp4"]  # no partial, no PNG
    assert (tmp_path / "o.mp4").read_bytes() == b"an earlier run's video"  # left as it was
    summary = json.loads((tmp_path / "o.json").read_text())
    assert summary["stopped_by"] == "interrupt" and summary["frames_written"] == 0 and summary["outputs"] == []


def test_a_full_disk_stops_the_video_with_exit_code_1_not_the_usage_errors_2(run_cli, sbs_video, tmp_path, monkeypatch):
    """video exited 2, its usage-error code, when the disk filled halfway; predict's batch exits 1 for it."""
    import errno

    from rtstereo.io import images

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(images, "_write_bytes", full)
    code, _, err = run_cli("video", "--sbs", sbs_video, "--output-prefix", tmp_path / "d", "--max-frames", 2, *FAST)
    assert code == 1, err
    assert f"cannot write {tmp_path / 'd'}_00000.png: No space left on device" in err, err


def _stop_after_two_frames(monkeypatch, stop) -> None:
    """``stop(stream)`` called by the stream's supervisor once two frames are written (or the writer is done); each
    frame is read 0.1 s late, so that the third is not written before."""
    from rtstereo.sources.video import VideoReader
    from rtstereo.stream import Stream

    read = VideoReader.read

    def supervise(self):
        while self._written < 2 and not self._writer_done.is_set():
            time.sleep(0.005)
        stop(self)

    monkeypatch.setattr(VideoReader, "read", lambda reader: (time.sleep(0.1), read(reader))[1])
    monkeypatch.setattr(Stream, "_supervise", supervise)


def test_ctrl_c_says_how_many_frames_of_how_many_were_written(run_cli, sbs_video, tmp_path, monkeypatch):
    """As --engine ray says it: one process said only "interrupted; what was written is complete"."""

    def ctrl_c(stream):
        raise KeyboardInterrupt

    _stop_after_two_frames(monkeypatch, ctrl_c)
    code, _, err = run_cli("video", "--sbs", sbs_video, "--output-prefix", tmp_path / "d", "--stride", 2, *FAST)
    assert code == 130, err
    written = json.loads((tmp_path / "d_summary.json").read_text())["frames_written"]
    assert written == len(list(tmp_path.glob("d_*.png"))) == 2
    assert f"rtstereo video: interrupted: {written} of 3 frames written; what was written is complete" in err, err


def test_sigterm_stops_the_video_as_ctrl_c_does_with_a_finished_mp4(run_cli, sbs_video, tmp_path, monkeypatch):
    """`kill PID` (a scheduler's stop) ended the process at once: no count, no summary, an mp4 without its index."""
    from tests.conftest import sigterm_stand_in

    def terminate(stream):
        os.kill(os.getpid(), signal.SIGTERM)
        stream._writer_done.wait(5.0)  # the handler raises here; without it, the stream ran to its end

    _stop_after_two_frames(monkeypatch, terminate)
    with sigterm_stand_in():  # and the process's own handler is back after
        code, _, err = run_cli(
            "video", "--sbs", sbs_video, "-o", tmp_path / "o.mp4", "--output-prefix", tmp_path / "d", *FAST
        )
    assert code == 130, err
    summary = json.loads((tmp_path / "o.json").read_text())
    written = summary["frames_written"]
    assert summary["stopped_by"] == "interrupt" and written >= 2
    assert f"rtstereo video: interrupted: {written} of " in err and "what was written is complete" in err, err
    assert len(read_video(tmp_path / "o.mp4")) == written == len(list(tmp_path.glob("d_*.png")))


@pytest.mark.parametrize("fps", ["0", "-5", "nan", "inf"])
def test_fps_must_be_positive_before_anything_starts(run_cli, tmp_path, sbs_video, fps):
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "0.png"), np.zeros((32, 48, 3), np.uint8))
    for inputs in ([tmp_path / "L", tmp_path / "R"], ["--sbs", sbs_video]):
        code, _, err = run_cli("video", *inputs, "--fps", fps, "-o", tmp_path / "o.mp4", "-q", *FAST)
        finite = "a finite number " if fps == "inf" else ""  # "must be > 0, got inf" read as a contradiction
        assert code == 2 and err == f"rtstereo video: error: --fps must be {finite}> 0 (frames per second), got {fps}\n"
        assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    "fps, stride, mp4_fps",
    [("0.001", 1, "0.001"), ("0.003", 3, "0.001"), ("70000", 1, "70000"), (None, 10000, "0.001")],
)
def test_an_fps_the_mp4_cannot_store_is_refused_before_anything_starts(run_cli, tmp_path, fps, stride, mp4_fps):
    """--fps 0.001 was refused at the first frame, by OpenCV's writer, after the model had loaded and the run's
    summary said it stopped on an error."""
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "0.png"), np.zeros((32, 48, 3), np.uint8))
    rate = ["--fps", fps] if fps is not None else []
    args = ["video", tmp_path / "L", tmp_path / "R", *rate, "--stride", stride, "-o", tmp_path / "o.mp4"]
    code, _, err = run_cli(*args, "-q", *FAST)
    said = f"--fps {fps}" if fps is not None else "the sequence's 10 fps (no --fps)"
    at_stride = f" at --stride {stride}" if stride != 1 else ""
    assert code == 2 and err == (
        f"rtstereo video: error: {said}{at_stride} makes {tmp_path / 'o.mp4'} a {mp4_fps} fps video, and an mp4 "
        "stores a rate over 0.001 fps (OpenCV's steps) and up to 65535 fps: give another --fps or --stride, or leave "
        "out -o\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["L", "R"]
    code, _, err = run_cli(*args[:-2], "--output-prefix", tmp_path / "d", "-q", *FAST)  # no mp4: any rate
    assert code == 0, err


def test_a_stride_that_slows_a_video_below_an_mp4s_rates_is_refused_naming_the_stride(run_cli, sbs_video, tmp_path):
    """The refusal named an mp4 'of 0.0005 fps' (OpenCV's steps) without the --stride that made it."""
    code, _, err = run_cli("video", "--sbs", sbs_video, "--stride", 20000, "-o", tmp_path / "o.mp4", "-q", *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: --stride 20000 makes {tmp_path / 'o.mp4'} a 0.0005 fps video (the video's 10 fps over "
        "the stride), and an mp4 stores a rate over 0.001 fps (OpenCV's steps): give a smaller --stride, or leave out "
        "-o\n"
    ), err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("sbs", [False, True])
def test_fps_with_videos_is_refused_not_ignored(run_cli, two_videos, sbs_video, tmp_path, sbs):
    inputs = ["--sbs", sbs_video] if sbs else two_videos
    code, _, err = run_cli("video", *inputs, "--fps", 30, "-o", tmp_path / "o.mp4", "-q", *FAST)
    assert code == 2 and err == (
        "rtstereo video: error: --fps 30 sets the frame rate of image sequences, but the input is a video, whose "
        "mp4 keeps the video's own frame rate (divided by --stride): drop --fps\n"
    )
    assert not (tmp_path / "o.mp4").exists()
    code, _, err = run_cli("video", *inputs, "--stride", 2, "-o", tmp_path / "o.mp4", "-q", *FAST)
    assert code == 0, err
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)


def test_an_image_sequence_without_fps_is_recorded_at_10_fps(run_cli, tmp_path):
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for i in range(2):
            cv2.imwrite(str(tmp_path / side / f"{i}.png"), np.zeros((32, 48, 3), np.uint8))
    code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "o.mp4", "-q", *FAST)
    assert code == 0, err
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)


def test_image_folders_given_as_file_urls_play_as_a_sequence(run_cli, tmp_path):
    """predict takes a folder's file:// URL; video read it as a video: "left video /data/L is a folder"."""
    _sequence(tmp_path, render_scene(frames=3))
    urls = [(tmp_path / side).resolve().as_uri() for side in ("L", "R")]
    code, _, err = run_cli("video", *urls, "--output-prefix", tmp_path / "d", "-q", *FAST)
    assert code == 0, err
    assert len(list(tmp_path.glob("d_*.png"))) == 3


@pytest.mark.parametrize("summary", ["folder", "blocked", "slash"])
def test_a_summary_that_cannot_be_written_is_refused_before_the_first_frame(run_cli, sbs_video, tmp_path, summary):
    (tmp_path / "folder").mkdir()
    (tmp_path / "blocked").write_text("a file where a folder should be")
    path = {"folder": tmp_path / "folder", "blocked": tmp_path / "blocked" / "s.json", "slash": f"{tmp_path}/s.json/"}
    path = path[summary]
    code, _, err = run_cli("video", "--sbs", sbs_video, "--summary", path, "-o", tmp_path / "o.mp4", "-q", *FAST)
    expected = {
        "folder": f"the summary {path} is a folder: give a file name, e.g. {tmp_path / 'folder' / 'summary.json'}",
        "blocked": f"cannot write the summary {path}: {tmp_path / 'blocked'} is a file, not a folder",
        # it wrote the file s.json, where predict's `-o x/` is a folder
        "slash": f"the summary {path} ends with a folder separator, which names a folder: give a file name, e.g. "
        f"{tmp_path / 's.json'}",
    }[summary]
    assert code == 2 and err == f"rtstereo video: error: {expected}\n"
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "s.json").exists()  # said before any frame


def test_an_mp4_in_a_folder_that_is_a_file_is_named_as_given(run_cli, sbs_video, tmp_path):
    """-o afile/o.mp4 was refused as "cannot write the summary afile/o.json", a file the user never named."""
    (tmp_path / "afile").write_text("a file where a folder should be")
    video = tmp_path / "afile" / "o.mp4"
    code, _, err = run_cli("video", "--sbs", sbs_video, "-o", video, "-q", *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: cannot write the video {video}: {tmp_path / 'afile'} is a file, not a folder\n"
    )


def test_pngs_in_a_folder_that_is_a_file_are_named_as_given(run_cli, sbs_video, tmp_path):
    """--output-prefix afile/d was refused as "cannot write the summary afile/d_summary.json", a file never named."""
    (tmp_path / "afile").write_text("a file where a folder should be")
    prefix = tmp_path / "afile" / "d"
    code, _, err = run_cli("video", "--sbs", sbs_video, "--output-prefix", prefix, "-q", *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: cannot write the PNGs {prefix}_*.png of --output-prefix: {tmp_path / 'afile'} is a "
        "file, not a folder\n"
    )


@pytest.mark.parametrize("summary", [False, True])
def test_a_run_without_outputs_says_so_without_denying_its_summary(run_cli, sbs_video, tmp_path, summary):
    """'nothing is written or shown' was said of a run whose report then listed its --summary as written."""
    given = ["--summary", tmp_path / "s.json"] if summary else []
    code, out, err = run_cli("video", "--sbs", sbs_video, *given, *FAST)
    assert code == 0, err
    said = "rtstereo video: no disparity is written or shown (give -o FILE.mp4, --output-prefix PREFIX or --show): "
    said += f"measuring speed only (and the summary {tmp_path / 's.json'})" if summary else "measuring speed only"
    assert said + "\n" in err, err
    assert "nothing is written" not in err
    assert (f"written: {tmp_path / 's.json'}" in out) == summary, out


@pytest.mark.parametrize("mp4", [False, True])
def test_a_frame_of_another_size_is_named_by_the_sequences_number(run_cli, tmp_path, mp4):
    """With --start 1 the sequence's frame 2 (of another size) was 'frame 1', the number of its PNG, beside warnings
    that name the sequence's frames by their own numbers."""
    texture = np.random.default_rng(0).integers(0, 256, (32, 96), dtype=np.uint8)
    for side, shift in (("L", 0), ("R", 4)):
        (tmp_path / side).mkdir()
        for i in range(4):
            image = texture[:, shift : shift + 80]
            cv2.imwrite(str(tmp_path / side / f"f{i}.png"), image if i < 2 else cv2.resize(image, (40, 16)))
    outputs = ["-o", tmp_path / "o.mp4"] if mp4 else ["--output-prefix", tmp_path / "p" / "d"]
    code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", "--start", 1, *outputs, "-q", *FAST)
    said = "frame size changed mid-stream from 32x80 to 16x40 (HxW) at frame 2:" if mp4 else "frame 2 is 16x40 (HxW)"
    assert said in err and (code == 2) == mp4, err


@pytest.mark.parametrize("given", ["folder", "glob"])
def test_pngs_written_among_a_sequences_images_are_refused(run_cli, tmp_path, given):
    """--output-prefix L/disp wrote the PNGs into the folder of left images: the next run read them as frames and
    stopped on "left gives 6 images and right gives 3"."""
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / side / f"f{i}.png"), np.zeros((32, 48, 3), np.uint8))
    left = tmp_path / "L" if given == "folder" else tmp_path / "L" / "*.PNG"
    prefix = tmp_path / "L" / "disp"
    code, _, err = run_cli("video", left, tmp_path / "R", "--output-prefix", prefix, "-q", *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: --output-prefix {prefix} writes its PNGs among the left images {left}, which would "
        f"read them as frames the next time: give a prefix in another folder, e.g. {tmp_path / 'L' / 'disparity' / 'd'}"
        "\n"
    ), err
    assert sorted(path.name for path in (tmp_path / "L").iterdir()) == ["f0.png", "f1.png", "f2.png"]
    code, _, err = run_cli("video", tmp_path / "L" / "f*.png", tmp_path / "R", "--output-prefix", prefix, "-q", *FAST)
    assert code == 0, err  # a glob that does not list them


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["video", "l.mp4", "r.mp4", "--every", "2"], "; did you mean --stride?"),
        (["video", "l.mp4", "r.mp4", "--limit", "100"], "; did you mean --max-frames?"),
        (["video", "l.mp4", "r.mp4", "--start-frame", "300"], "; did you mean --start?"),
        (["live", "--camera", "uvc:0", "--fps", "15"], "; did you mean --camera-fps?"),
        (["live", "--camera", "uvc:0", "--stride", "2"], "; a live camera has no --stride or --start: its newest"),
    ],
)
def test_other_tools_names_of_the_stream_options_get_the_option_meant(capsys, argv, hint):
    """`--every 2` (adapt's name for it, and other tools'), `--fps` for a camera and the like got "unrecognized
    arguments" alone: no option is spelled close to them."""
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"unrecognized arguments: {' '.join(argv[-2:])}{hint}" in err, err


def test_frames_too_wide_for_an_mp4_are_refused_before_the_model_loads(run_cli, tmp_path, monkeypatch):
    """Known from the files' headers, they were refused at the first frame, after the model had loaded, with a report
    of 0 frames and a summary written."""
    from rtstereo.cli import video

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "0.png"), np.zeros((16, 4100, 3), np.uint8))
    monkeypatch.setattr(video, "predictor_from_args", lambda *a, **k: pytest.fail("the model was loaded"))
    code, out, err = run_cli("video", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and out == "", err
    assert err.endswith(
        f"rtstereo video: error: cannot write the video {tmp_path / 'o.mp4'}: its frames, each 16x4100 (HxW) image "
        "beside its coloured disparity, are 16x8200, and MPEG-4 holds at most 8190 px a side: resize the frames "
        "(e.g. --size 14x4094), or leave out -o and write the disparity as 16-bit PNGs at full size (--output-prefix)\n"
    ), err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["L", "R"]


def test_a_calibration_of_the_whole_side_by_side_frame_is_said_to_be_one(run_cli, sbs_video, tmp_path):
    """A side-by-side rig calibrated on its whole frame (64x256 for two 64x128 views) was told only 'another aspect
    ratio: give the calibration of this camera mode', as if it were another camera's."""
    from rtstereo.io.calibration import write_calibration

    write_calibration(tmp_path / "whole.json", Calibration(100.0, 100.0, 127.5, 127.5, 31.5, 0.1, 256, 64))
    code, _, err = run_cli("video", "--sbs", sbs_video, "--calib", tmp_path / "whole.json", "-q", *FAST)
    assert code == 2 and err.endswith(
        "(another aspect ratio): give the calibration of this camera mode (--size resizes the frames after it is "
        "applied); it has the aspect ratio of two frames side by side: a calibration describes one view, 64x128 here, "
        "not the side-by-side frame\n"
    ), err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["video", "--sbs", "x" * 5000], "rtstereo video: error: side-by-side video x"),
        (["video", "x" * 5000, "r.mp4"], "rtstereo video: error: left input x"),
        (["live", "--camera", "uvc:" + "x" * 5000], "rtstereo live: error: camera uvc:x"),
    ],
)
def test_an_input_name_no_file_can_have_is_one_line(run_cli, argv, said):
    """Path.is_dir() and exists() raised OSError (File name too long) on such a name: a traceback."""
    code, _, err = run_cli(*argv, *FAST)
    assert code == 2 and err.startswith(said) and err.count("\n") == 1, err
    assert err.endswith(
        "... (5000 characters): no file can have this name: File name too long (a name of 5000 bytes; the file system "
        "takes at most 255)\n"
    ), err


def test_a_summary_on_the_mp4_is_refused(run_cli, sbs_video, tmp_path):
    video = tmp_path / "o.mp4"
    code, _, err = run_cli("video", "--sbs", sbs_video, "--summary", video, "-o", video, "-q", *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: --summary {video} is the -o video: the summary would replace it; give a .json "
        "file name\n"
    )
    assert not video.exists()


@pytest.mark.parametrize("engine", ["local", "ray"])
@pytest.mark.parametrize("name", ["s.csv", "s.parquet", "summary"])
def test_a_summary_that_is_no_json_file_name_is_refused(run_cli, sbs_video, tmp_path, name, engine):
    """`--summary s.csv`, as predict takes it, wrote the JSON document under a table's name (exit code 0)."""
    path = tmp_path / name
    outputs = ["-o", tmp_path / "o.mp4"] if engine == "local" else ["--output-prefix", tmp_path / "d"]
    code, _, err = run_cli("video", "--sbs", sbs_video, "--summary", path, *outputs, "--engine", engine, "-q", *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: --summary {path}: the stream's summary is a JSON document: give a .json file name "
        "(predict's --summary writes .csv or .parquet tables)\n"
    )
    assert not path.exists() and not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob("d_*"))
    code, _, err = run_cli("live", "--camera", f"uvc:{sbs_video}", "--summary", path, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and "the stream's summary is a JSON document" in err and not path.exists()


def test_a_video_at_a_rate_mpeg4_cannot_store_after_stride_is_written(run_cli, scene, tmp_path):
    """200 fps at --stride 3 is 66.667 fps, which MPEG-4's 16-bit time base cannot store: OpenCV's writer did not
    open, its lines went to stderr and the run ended with "folder not writable?" (exit code 2)."""
    videos = [
        write_video(tmp_path / f"{side}.mp4", frames, fps=200)
        for side, frames in (("L", scene.lefts), ("R", scene.rights))
    ]
    code, _, err = run_cli("video", *videos, "--stride", 3, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 0, err
    assert (
        f"rtstereo video: {tmp_path / 'o.mp4'}: MPEG-4 cannot store 66.66666667 fps (its time base has 16 bits): "
        "recorded at 66.67 fps\n" in err
    )
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(66.67) and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 2
    capture.release()


@pytest.mark.parametrize("flag", ["-o", "--output-prefix", "--summary", "ray"])
def test_an_output_name_too_long_for_the_file_system_is_one_line(run_cli, sbs_video, tmp_path, flag):
    """Path.is_dir() raised on a name over 255 bytes: the stream ended in a traceback of OSError [Errno 36]."""
    long = str(tmp_path / ("a" * 252))
    if flag == "-o":  # 256 bytes with .mp4, 257 with .json
        argv, given, name = ["-o", f"{long}.mp4"], f"{long}.mp4", None
    elif flag == "--summary":
        argv, given, name = ["-o", tmp_path / "o.mp4", "--summary", f"{long}.json"], f"{long}.json", None
    else:  # its PNGs' names are 10 bytes longer: 262
        argv, given, name = ["--output-prefix", long], long, f"{'a' * 252}_00000.png"
        argv += ["--engine", "ray"] if flag == "ray" else []
    code, out, err = run_cli("video", "--sbs", sbs_video, *argv, "-q", *FAST)
    size = len(Path(given).name if name is None else name)
    what = "cannot write it" if name is None else f"cannot write {name}"
    shown = "--output-prefix" if flag == "ray" else flag
    assert (
        code == 2
        and out == ""
        and err
        == (
            f"rtstereo video: error: {shown} {given}: {what}: File name too long (a name of {size} bytes; the file "
            "system takes at most 255)\n"
        )
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sbs.mp4"]
    code, _, err = run_cli("live", "--camera", f"uvc:{sbs_video}", *argv[: 4 if flag != "ray" else 2], *FAST)
    assert code == 2 and err.count("\n") == 1 and "File name too long" in err


def test_image_sequence_source_refuses_a_frame_rate_below_zero(tmp_path):
    from rtstereo.errors import InputError
    from rtstereo.sources.sequence import ImageSequenceSource

    with pytest.raises(InputError, match="--fps must be > 0"):
        ImageSequenceSource(str(tmp_path / "none"), str(tmp_path / "none"), fps=0)


def test_video_help_lists_every_frame_option_in_one_group(monkeypatch, capsys):
    monkeypatch.setattr(cli, "VERBS", [*cli.VERBS, *(v for v in ("video", "live") if v not in cli.VERBS)])
    for verb in ("video", "live"):
        with pytest.raises(SystemExit):
            cli.main([verb, "--help"])
        text = capsys.readouterr().out
        assert text.count("\nframes:\n") == 1, text
        group = text.split("\nframes:\n")[1].split("\n\n")[0]
        assert "--max-frames" in group and "--size" in group and "--calib" in group
        assert ("--start" in group and "--fps" in group) == (verb == "video")


@pytest.mark.parametrize("target", ["-o", "--summary"])
def test_an_output_that_names_an_input_video_is_refused(run_cli, two_videos, sbs_video, tmp_path, target):
    left, right = two_videos
    before = right.read_bytes()
    code, _, err = run_cli("video", left, right, target, right, *FAST)
    assert code == 2 and f"{target} {right} is the input video {right}" in err
    assert right.read_bytes() == before
    recording = sbs_video.read_bytes()
    for camera in (f"uvc:{sbs_video}", f"uvc:{sbs_video.resolve().as_uri()}"):  # the URL's file was replaced
        code, _, err = run_cli("live", "--camera", camera, "-o", sbs_video, *FAST)
        assert code == 2 and "would destroy the input" in err, err
        assert sbs_video.read_bytes() == recording


def _image_sequence(folder: Path, scene) -> Path:
    """``folder/left_00000.png``... and ``folder/right_00000.png``...: a camera's frames as many tools save them."""
    folder.mkdir()
    for side, frames in (("left", scene.lefts), ("right", scene.rights)):
        for i, frame in enumerate(frames[:3]):
            cv2.imwrite(str(folder / f"{side}_{i:05d}.png"), frame[:, :, ::-1])
    return folder


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_an_output_prefix_whose_pngs_are_the_input_images_is_refused(run_cli, scene, tmp_path, engine):
    """`--output-prefix frames/left` over frames/left_00000.png...: the input images were replaced by the
    disparity PNGs, silently (exit code 0)."""
    frames = _image_sequence(tmp_path / "frames", scene)
    before = {path: path.read_bytes() for path in frames.iterdir()}
    code, _, err = run_cli(
        "video",
        frames / "left_*.png",
        frames / "right_*.png",
        "--output-prefix",
        frames / "left",
        "--engine",
        engine,
        *FAST,
    )
    assert code == 2, err
    assert (
        f"--output-prefix {frames / 'left'} would write its PNGs (left_00000.png, ...) over the input images "
        f"({frames / 'left_00000.png'} and 2 more): writing them would destroy the input" in err
    )
    assert {path: path.read_bytes() for path in frames.iterdir()} == before  # nothing written, nothing replaced


def test_a_python_stream_refuses_png_outputs_that_are_its_input_images(scene, tmp_path):
    import rtstereo
    from rtstereo.errors import InputError
    from rtstereo.sinks.video import DisparityPngSink
    from rtstereo.sources.sequence import ImageSequenceSource
    from rtstereo.stream import Stream

    frames = _image_sequence(tmp_path / "frames", scene)
    source = ImageSequenceSource(str(frames / "left_*.png"), str(frames / "right_*.png"))
    model = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(InputError, match=r"PNG prefix .*frames/right would write its PNGs .* over the input images"):
        Stream(source, model, sinks=[DisparityPngSink(frames / "right")])
    Stream(source, model, sinks=[DisparityPngSink(frames / "disp")])  # a prefix of its own: no input is named so
    assert len(source.input_files) == 6


def test_a_python_stream_refuses_a_video_output_that_is_its_input(two_videos, sbs_video, tmp_path):
    """Only the command line checked: Stream(source, model, sinks=[VideoSink(input)]).run() replaced the input
    video with the disparity preview when the finished mp4 was renamed into place."""
    import rtstereo
    from rtstereo.errors import InputError
    from rtstereo.sinks.video import VideoSink
    from rtstereo.sources.cameras import UVCSource
    from rtstereo.sources.video import SideBySideVideoSource, TwoVideoSource
    from rtstereo.stream import Stream

    left, right = two_videos
    (tmp_path / "link.mp4").symlink_to(sbs_video)
    before = {path: path.read_bytes() for path in (left, right, sbs_video)}
    model = rtstereo.load("sgbm", max_disp=16)
    for source, output in [
        (TwoVideoSource(left, right), right),
        (SideBySideVideoSource(sbs_video), tmp_path / "link.mp4"),  # the same file under another name
        (UVCSource(str(sbs_video)), sbs_video),  # a recording played as a camera
    ]:
        with pytest.raises(InputError, match=f"video output {output} is the input video .*would destroy the input"):
            Stream(source, model, sinks=[VideoSink(output, fps=10)])
    assert {path: path.read_bytes() for path in before} == before
    assert SideBySideVideoSource(sbs_video).input_files == (sbs_video,) and UVCSource(0).input_files == ()


def test_a_python_stream_refuses_two_outputs_that_write_the_same_files(sbs_video, tmp_path):
    """Two VideoSinks on one path were accepted: both wrote into one partial file, and one mp4 replaced the other."""
    import rtstereo
    from rtstereo.errors import InputError
    from rtstereo.sinks.video import DisparityPngSink, VideoSink
    from rtstereo.sources.video import SideBySideVideoSource
    from rtstereo.stream import Stream

    source, model = SideBySideVideoSource(sbs_video), rtstereo.load("sgbm", max_disp=16)
    (tmp_path / "sub").mkdir()
    video = VideoSink(tmp_path / "out.mp4", fps=10)
    for sinks, match in [
        ([video, VideoSink(tmp_path / "out.mp4", fps=10)], r"two outputs write the video .*out\.mp4: give each"),
        ([video, VideoSink(tmp_path / "sub" / ".." / "out.mp4", fps=10)], r"sub/\.\./out\.mp4 \(also named"),
        ([video, video], "two outputs write the video"),
        ([DisparityPngSink(tmp_path / "d"), DisparityPngSink(tmp_path / "d")], r"the PNGs .*d_\*\.png"),
    ]:
        with pytest.raises(InputError, match=match):
            Stream(source, model, sinks=sinks)
    Stream(source, model, sinks=[video, VideoSink(tmp_path / "out2.mp4", fps=10), DisparityPngSink(tmp_path / "out")])


def test_a_summary_that_cannot_be_written_does_not_hide_the_streams_error(run_cli, two_videos, tmp_path, monkeypatch):
    class ClosedWriter:  # an FFmpeg writer that refuses the file
        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

    def disk_full(self, path):  # the summary's folder was writable at the start (checked), not at the end
        raise OutputError(f"cannot write the summary {path}: No space left on device")

    monkeypatch.setattr(cv2, "VideoWriter", ClosedWriter)
    monkeypatch.setattr(StreamSummary, "write_json", disk_full)
    code, _, err = run_cli("video", *two_videos, "-o", tmp_path / "o.mp4", "--summary", tmp_path / "s.json", *FAST)
    assert code == 2
    assert err.splitlines()[-1].startswith(f"rtstereo video: error: cannot write the video {tmp_path / 'o.mp4'}")
    assert f"warning: cannot write the summary {tmp_path / 's.json'}: No space left on device" in err


def test_mp4_on_a_folder_fails_before_the_model_runs(run_cli, two_videos, tmp_path):
    (tmp_path / "o.mp4").mkdir()
    code, out, err = run_cli("video", *two_videos, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and "o.mp4 is a folder" in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["left.mp4", "o.mp4", "right.mp4"]


def test_mixed_or_shell_expanded_inputs_are_named_in_one_line(run_cli, two_videos, tmp_path):
    left_video, _ = two_videos
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for n in range(2):
            cv2.imwrite(str(tmp_path / side / f"{n}.png"), np.zeros((32, 48, 3), np.uint8))
    code, _, err = run_cli("video", tmp_path / "L", left_video, *FAST)
    said = "is a folder or glob, read as a sequence of images, but"
    assert code == 2 and f"{tmp_path / 'L'} {said} {left_video} is a video" in err
    (tmp_path / "empty").mkdir()  # said to "hold images", as was a glob matching nothing
    for other in (tmp_path / "empty", tmp_path / "no" / "*.mp4"):
        code, _, err = run_cli("video", left_video, other, *FAST)
        assert code == 2 and f"error: {other} {said} {left_video} is a video: give two videos" in err, err
    image = tmp_path / "L" / "0.png"
    code, _, err = run_cli("video", left_video, image, *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: {left_video} is a video but {image} is an image: give two videos, or two folders "
        "or globs of images (for one pair of images: rtstereo predict LEFT RIGHT)\n"
    )
    expanded = sorted((tmp_path / "L").glob("*.png")) + sorted((tmp_path / "R").glob("*.png"))
    code, _, err = run_cli("video", *expanded, *FAST)
    assert code == 2 and "got 4 images: the shell expanded the globs; quote them" in err
    code, _, err = run_cli("video", "--sbs", tmp_path / "L", *FAST)
    assert code == 2 and f"side-by-side video {tmp_path / 'L'} is a folder, not a video file" in err
    glob = tmp_path / "L" / "*.png"  # was "side-by-side video not found", of a glob that matches files
    code, _, err = run_cli("video", "--sbs", glob, *FAST)
    assert code == 2 and err == (
        f"rtstereo video: error: side-by-side video {glob} is a glob of images, not a video file: --sbs reads one "
        "video (file or URL); for images, give the left and the right ones as two folders or globs, without --sbs\n"
    )


def test_one_video_given_as_both_views_is_refused_as_predict_refuses_one_image(run_cli, two_videos, tmp_path):
    left_video, _ = two_videos
    (tmp_path / "link.mp4").symlink_to(left_video)
    # it ran, every frame matched with itself; a file:// URL of the file too
    for second in (left_video, tmp_path / "link.mp4", Path(left_video).resolve().as_uri()):
        code, out, err = run_cli("video", left_video, second, "-o", tmp_path / "o.mp4", *FAST)
        assert code == 2 and out == "" and not (tmp_path / "o.mp4").exists()
        assert err == (
            f"rtstereo video: error: left and right give the same video {left_video}: a stereo pair needs its two "
            f"views (two videos, one per camera; for one side-by-side video: --sbs {left_video})\n"
        )


def test_temporal_settings_without_temporal_are_refused_and_defaults_fill_the_rest(run_cli, sbs_video, tmp_path):
    code, _, err = run_cli("video", "--sbs", sbs_video, "--temporal-alpha", 0.5, "--temporal-confirm", 2, *FAST)
    assert code == 2
    assert "--temporal-alpha and --temporal-confirm without --temporal: the temporal filter is off" in err
    code, _, err = run_cli(
        "video", "--sbs", sbs_video, "--temporal", "--temporal-alpha", 0.5, "-o", tmp_path / "o.mp4", *FAST
    )
    assert code == 0, err
    temporal = json.loads((tmp_path / "o.json").read_text())["temporal"]
    assert temporal == {"alpha": 0.5, "reset_px": 2.0, "confirm_frames": 1, "hold_frames": 2}


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--temporal-alpha", "0", "--temporal-alpha must be over 0 and at most 1 (the weight of the new frame), got 0"),
        ("--temporal-alpha", "1.5", "--temporal-alpha must be over 0 and at most 1"),
        ("--temporal-reset-px", "inf", "--temporal-reset-px must be > 0 pixels (a finite number), got inf"),
        ("--temporal-confirm", "-1", "--temporal-confirm must be >= 0 frames, got -1"),
    ],
)
def test_bad_temporal_settings_name_their_flag(run_cli, sbs_video, tmp_path, flag, value, said):
    # They said the filter's parameter names: "temporal filter: confirm_frames must be >= 0, got -1".
    code, _, err = run_cli("video", "--sbs", sbs_video, "--temporal", flag, value, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and f"error: {said}" in err, err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_an_output_prefix_that_is_a_folder_path_is_refused(run_cli, sbs_video, tmp_path, engine):
    prefix = f"{tmp_path / 'frames'}/"
    code, _, err = run_cli("video", "--sbs", sbs_video, "--output-prefix", prefix, "--engine", engine, *FAST)
    assert code == 2 and f"--output-prefix {prefix} ends with a folder separator" in err
    assert f"e.g. {prefix}disp" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sbs.mp4"]
    (tmp_path / "frames").mkdir()  # the folder, named without the separator: frames_00000.png beside it before
    code, _, err = run_cli(
        "video", "--sbs", sbs_video, "--output-prefix", tmp_path / "frames", "--engine", engine, *FAST
    )
    assert code == 2 and f"--output-prefix {tmp_path / 'frames'} is a folder" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "sbs.mp4"] and not any(
        (tmp_path / "frames").iterdir()
    )


def test_show_without_a_display_does_not_then_suggest_show(run_cli, two_videos, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code, _, err = run_cli("video", *two_videos, "--show", "--max-frames", "2", *FAST)
    assert code == 0, err
    assert "--show: no display" in err
    assert "(give -o FILE.mp4 or --output-prefix PREFIX): measuring speed only" in err


def test_ctrl_c_as_tqdm_makes_its_lock_cannot_leave_the_writer_thread_waiting_for_ever(monkeypatch, capsys):
    """Ctrl-C as the first notice made tqdm's lock (importing multiprocessing, its class lock held) became a
    "--- Logging error ---", the Ctrl-C lost, and the lock stayed held: the writer thread's progress bar waited for
    it for ever, and the stream hung past every further Ctrl-C."""
    import io
    import logging

    from tqdm import tqdm
    from tqdm.std import TqdmDefaultWriteLock

    from rtstereo.cli.video import STREAM_LOGGER, stream_logging
    from rtstereo.progress import progress_bar

    calls = []
    real_create = TqdmDefaultWriteLock.create_mp_lock

    def interrupted(cls):  # Ctrl-C while tqdm imports multiprocessing for its lock, the first time
        calls.append(cls)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_create()

    monkeypatch.delattr(tqdm, "_lock", raising=False)  # as in a fresh process: made at the first line or bar
    monkeypatch.setattr(TqdmDefaultWriteLock, "create_mp_lock", classmethod(interrupted))
    made = threading.Event()

    def writer_thread_bar():
        progress_bar(total=1, desc="video", file=io.StringIO()).close()
        made.set()

    try:
        with stream_logging("video", quiet=False):
            logging.getLogger(STREAM_LOGGER).info("two videos l.mp4 + r.mp4 -> sgbm")
            threading.Thread(target=writer_thread_bar, daemon=True).start()
            assert made.wait(10), "the writer thread's bar waits for tqdm's lock"
    finally:
        while TqdmDefaultWriteLock.th_lock._is_owned():  # what the failure left held, for the tests after this one
            TqdmDefaultWriteLock.th_lock.release()
    assert capsys.readouterr().err == "rtstereo video: two videos l.mp4 + r.mp4 -> sgbm\n"


def test_stream_notices_are_lines_of_their_own_while_the_progress_bar_is_drawn(capsys):
    """The capture thread's notices (--size, --align-rows) were written straight after the bar's text, on its line."""
    import logging
    import re

    from tqdm import tqdm

    from rtstereo.cli.video import STREAM_LOGGER, stream_logging

    with stream_logging("video", quiet=False):
        bar = tqdm(total=2, desc="video", unit="frame", file=sys.stderr)
        bar.update(1)
        logging.getLogger(STREAM_LOGGER).info("resizing 640x480 frames to 320x240 (--size)")
        bar.close()
    segments = re.split(r"[\r\n]", capsys.readouterr().err)
    assert "rtstereo video: resizing 640x480 frames to 320x240 (--size)" in segments, segments


def _sequence(tmp_path: Path, scene, shift_rows_px: int = 0) -> tuple[Path, Path]:
    for side, frames in (("L", scene.lefts), ("R", scene.rights)):
        (tmp_path / side).mkdir()
        for i, image in enumerate(frames):
            image = np.roll(image, shift_rows_px, axis=0) if side == "R" else image
            cv2.imwrite(str(tmp_path / side / f"{i}.png"), image[:, :, ::-1])
    return tmp_path / "L", tmp_path / "R"


@pytest.mark.parametrize("verb", ["video", "live"])
def test_unrectified_frames_are_warned_about_once_as_predict_does(run_cli, tmp_path, verb):
    scene = render_scene(frames=4, height=120, width=192)
    left, right = _sequence(tmp_path, scene, shift_rows_px=3)
    if verb == "video":
        args = ["video", left, right]
    else:  # a side-by-side recording played as a camera
        write_video(
            tmp_path / "sbs.mp4", [np.hstack([a, np.roll(b, 3, axis=0)]) for a, b in zip(scene.lefts, scene.rights)]
        )
        args = ["live", "--camera", f"uvc:{tmp_path / 'sbs.mp4'}"]
    code, _, err = run_cli(*args, *FAST)
    assert code == 0, err
    assert err.count("the pair does not look rectified") == 1, err
    assert f"rtstereo {verb}: warning: frame 0: the pair does not look rectified: rows are off by up to" in err, err
    assert "Calibrate the rig (rtstereo calibrate) and pass --rectify maps.npz" in err
    code, _, err = run_cli(*args, *FAST, "--no-rectification-check")
    assert code == 0 and "look rectified" not in err, err


@pytest.mark.parametrize("swap", [False, True])
def test_swapped_views_of_a_side_by_side_video_are_answered_with_swap(run_cli, tmp_path, swap):
    """A cross-eye video (right|left) was told to "swap the two inputs", but --sbs takes one: --swap is the way."""
    scene = render_scene(frames=3, height=120, width=192)
    halves = (lambda a, b: np.hstack([a, b])) if swap else (lambda a, b: np.hstack([b, a]))
    video = write_video(tmp_path / "sbs.mp4", [halves(a, b) for a, b in zip(scene.lefts, scene.rights)])
    code, _, err = run_cli("video", "--sbs", video, *(["--swap"] if swap else []), *FAST)
    assert code == 0, err
    advice = "--swap is given: drop it" if swap else "--swap exchanges them"
    assert err.count("left and right look swapped") == 1 and f"swap the two inputs ({advice})" in err, err


def test_align_rows_on_a_stream_too_short_to_measure_says_so(run_cli, tmp_path):
    """Five plain frames: nothing was said, and the user took the frames for aligned."""
    flat = [np.full((64, 128, 3), 128, np.uint8)] * 5
    left, right = write_video(tmp_path / "l.mp4", flat), write_video(tmp_path / "r.mp4", flat)
    code, _, err = run_cli("video", left, right, "-o", tmp_path / "o.mp4", *FAST, "--align-rows")
    assert code == 0, err
    assert (
        "rtstereo video: warning: --align-rows: the stream's 5 frames gave too few matched features (or too few "
        "that agree on the rows) to measure the rows; frames went through unaligned"
    ) in err, err


@pytest.mark.parametrize("verb", ["video", "predict"])
def test_swapped_views_under_align_rows_get_the_same_advice_as_without(run_cli, tmp_path, verb):
    """--align-rows told --sbs users to "swap the inputs" (one video: --swap is the way), and the check after it
    told them the swapped pair "needs calibrating"."""
    scene = render_scene(frames=3, height=120, width=192)
    if verb == "video":
        video = write_video(tmp_path / "sbs.mp4", [np.hstack([b, a]) for a, b in zip(scene.lefts, scene.rights)])
        args, advice = ["video", "--sbs", video], "swap the two inputs (--swap exchanges them)"
    else:
        right, left = _sequence(tmp_path, scene)
        args, advice = ["predict", left / "0.png", right / "0.png", "-o", tmp_path / "out"], "swap the two inputs"
    code, _, err = run_cli(*args, *FAST, "--align-rows")
    assert code == 0, err
    if verb == "video":
        assert f"--align-rows: left and right look swapped; nothing aligned: {advice}" in err, err
    said = [line for line in err.splitlines() if "look swapped" in line and "--align-rows:" not in line]
    assert len(said) == 1 and said[0].endswith(advice), err


@pytest.mark.parametrize("verb", ["video", "live"])
def test_colour_frames_with_a_kitti_2012_file_read_for_the_grey_cameras_get_predicts_warning(run_cli, tmp_path, verb):
    kitti = tmp_path / "000000.txt"  # grey cameras 0,1 0.105 m apart, colour cameras 2,3 0.1 m apart
    rows = "0 200 59.5 0 0 0 1 0"
    kitti.write_text("".join(f"P{i}: 200 0 95.5 {x} {rows}\n" for i, x in enumerate((0, -21.0, 1.0, -19.0))))
    scene = render_scene(frames=3, height=120, width=192)
    if verb == "video":
        args = ["video", *_sequence(tmp_path, scene)]
    else:
        write_video(tmp_path / "sbs.mp4", [np.hstack([a, b]) for a, b in zip(scene.lefts, scene.rights)])
        args = ["live", "--camera", f"uvc:{tmp_path / 'sbs.mp4'}"]
    advice = "KITTI's colour pairs are cameras 2,3 (baseline 0.1000 m), whose depths this makes 5.0 % too far"
    for extra, warned in (((), True), (("--kitti-cameras", "2,3"), False)):
        code, _, err = run_cli(*args, *FAST, "--calib", kitti, *extra)
        assert code == 0, err
        assert (err.count(advice) == 1 and "add --kitti-cameras 2,3" in err) == warned, (extra, err)


def test_one_sequence_given_for_both_views_is_warned_about(run_cli, tmp_path):
    """A copy of the left video (or folder) given as the right one ran to the end at disparity 0 without a word:
    its rows are aligned and nothing is swapped, so the rectification check had nothing to say."""
    left, _ = _sequence(tmp_path, render_scene(frames=3, height=120, width=192))
    (tmp_path / "copy").mkdir()
    for image in left.iterdir():
        (tmp_path / "copy" / image.name).write_bytes(image.read_bytes())
    code, _, err = run_cli("video", left, tmp_path / "copy", *FAST)
    assert code == 0, err
    assert err.count("warning: frame 0: left and right are the same picture (identical pixels: one video") == 1, err
    flat = [np.full((64, 128, 3), 128, np.uint8)] * 3  # blank frames alike are no copy
    videos = write_video(tmp_path / "l.mp4", flat), write_video(tmp_path / "r.mp4", flat)
    code, _, err = run_cli("video", *videos, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 0 and "same picture" not in err, err


def test_rectified_frames_give_no_rectification_warning(run_cli, tmp_path):
    left, right = _sequence(tmp_path, render_scene(frames=3, height=120, width=192))
    code, _, err = run_cli("video", left, right, *FAST)
    assert code == 0 and "warning" not in err, err


def test_the_rectification_check_of_a_stream_never_holds_up_the_capture_stage(monkeypatch):
    from rtstereo.cli import rectification
    from rtstereo.types import StereoPair

    release = threading.Event()
    monkeypatch.setattr(rectification, "rectification_findings", lambda *a: (release.wait(5), ({}, True))[1])
    checked = rectification.StreamRectificationCheck(None)
    frame = np.zeros((8, 8, 3), np.uint8)
    started = time.perf_counter()
    for index in range(20):
        checked(StereoPair(frame, frame, index=index))
    assert time.perf_counter() - started < 0.5 and checked.tries == 1  # one check in flight, none queued
    release.set()
    checked.wait()
    assert checked.done


def test_the_checks_around_a_streams_preparation_pass_on_what_it_records_and_its_valid_area():
    """The rectification check and the first-frame warning wrap the stream's preparation: the summary's record of it
    (align_rows) and the rectified view's valid area reach the stream through both, and a check around no
    preparation tells nothing."""
    from rtstereo.cli.rectification import StreamRectificationCheck
    from rtstereo.cli.video import _FirstFrameWarning

    class Preparer:
        preparation = {"align_rows": {"applied": True}}

        def __call__(self, pair):
            return pair

        def left_valid_mask(self):
            return np.ones((2, 3), bool)

    wrapped = _FirstFrameWarning(StreamRectificationCheck(Preparer()), lambda left: None, None)
    assert wrapped.preparation == {"align_rows": {"applied": True}} and wrapped.left_valid_mask().shape == (2, 3)
    bare = _FirstFrameWarning(StreamRectificationCheck(None), lambda left: None, None)
    assert bare.preparation == {} and bare.left_valid_mask() is None


def test_a_video_whose_second_half_is_misaligned_is_warned_about_when_it_changes(run_cli, tmp_path, monkeypatch):
    """Only the first judgeable frame was checked: a camera knocked mid-run (here the right video's frames from
    25 on lie 3 rows lower) was never flagged. Frames are checked again every RECHECK_S seconds of the stream."""
    from rtstereo.cli.rectification import StreamRectificationCheck

    monkeypatch.setattr(StreamRectificationCheck, "RECHECK_S", 1.0)  # 10 frames of a 10 fps video
    scene = render_scene(frames=50, height=120, width=192, step_px=0)
    rights = [np.roll(image, 3, axis=0) if i >= 25 else image for i, image in enumerate(scene.rights)]
    left, right = write_video(tmp_path / "l.mp4", scene.lefts), write_video(tmp_path / "r.mp4", rights)
    code, _, err = run_cli("video", left, right, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 0, err
    assert err.count("the pair does not look rectified") == 1, err  # once, not at every later check
    said = re.search(r"rtstereo video: warning: frame (\d+), checked again: the pair does not look rectified", err)
    assert said and 25 <= int(said.group(1)) <= 40, err
    assert "frame 0: " not in err
    assert len(read_video(tmp_path / "o.mp4")) == 50


def test_the_stream_check_says_each_change_once(monkeypatch, caplog):
    from rtstereo.cli import rectification
    from rtstereo.rectify import MAX_MISALIGNMENT_PX
    from rtstereo.types import StereoPair

    verdicts = iter([({}, False), ({}, True), ({"rows": "off"}, True), ({"rows": "off by more"}, True), ({}, True)])
    monkeypatch.setattr(rectification, "rectification_findings", lambda *a: next(verdicts))
    checked = rectification.StreamRectificationCheck(None)
    frame = np.zeros((8, 8, 3), np.uint8)
    with caplog.at_level("INFO", logger="rtstereo.stream"):
        for index in range(40):  # frame 0 cannot be judged, frame 1 is; then every 5 s (10 frames): 11, 21, 31
            checked(StereoPair(frame, frame, index=index, timestamp_s=index * 0.5))
            checked.wait()
    assert checked.checks == 5
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "frame 11, checked again: off"),  # frame 21's reading of the same misalignment is not repeated
        ("INFO", f"frame 31, checked again: the rows line up again (within {MAX_MISALIGNMENT_PX:g} px)"),
    ]


def _ground_plane_sequences(folder: Path, frames: int) -> tuple[Path, Path]:
    """Folders L and R of ``frames`` copies of a pair whose disparity runs from 8 px (top row) to 50 px (bottom)."""
    height, width = 120, 192
    coarse = np.random.default_rng(0).integers(0, 256, (height // 2, width // 2, 3), dtype=np.uint8)
    left = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    # a ground plane: 8 px at the top row to 50 px at the bottom one (the right view sees left's x at x - d)
    xs = np.arange(width, dtype=np.float32)[None, :] + np.linspace(8, 50, height, dtype=np.float32)[:, None]
    ys = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, 1)
    right = cv2.remap(left, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    for side, image in (("L", left), ("R", right)):
        (folder / side).mkdir()
        for index in range(frames):
            cv2.imwrite(str(folder / side / f"{index}.png"), image)
    return folder / "L", folder / "R"


def test_a_stream_whose_maps_pile_up_at_the_top_of_the_range_gets_predicts_warning_once(run_cli, tmp_path):
    args = ["video", *_ground_plane_sequences(tmp_path, 3), "--model", "sgbm", "--no-rectification-check"]
    code, _, err = run_cli(*args, "--max-disp", "32")
    assert code == 0, err
    assert err.count("of the map sits at the top of the searched range") == 1, err
    assert "frame 0: " in err and "(30-31 px; --max-disp 32)" in err and "larger --max-disp" in err, err
    code, _, err = run_cli(*args, "--max-disp", "64")
    assert code == 0 and "top of the searched range" not in err, err


def test_the_range_is_checked_on_the_first_frame_written_when_frame_0_did_not_decode(caplog):
    """The check ran on the frames numbered 0, 30, 60...: a video whose frame 0 did not decode (its number left unused)
    was first checked at frame 30, and a shorter one never."""
    from rtstereo.cli.video import _RangeCeilingCheck
    from rtstereo.sinks.video import OutputFrame
    from rtstereo.types import DisparityResult, StereoPair

    disparity = np.full((32, 96), 31.5, np.float32)  # every pixel at the top of a 32 px range
    image = np.zeros((32, 96, 3), np.uint8)
    check = _RangeCeilingCheck(32.0, logging.getLogger("rtstereo.stream"))
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        for number in (1, 2, 3):
            check.write(OutputFrame(number, StereoPair(image, image, index=number), DisparityResult(disparity)))
    assert [m for m in caplog.messages if "top of the searched range" in m][0].startswith("frame 1: "), caplog.text


def test_the_range_warning_names_the_frame_by_the_sources_number_as_the_other_warnings_do(run_cli, tmp_path):
    # With --start 2 the first frame checked is the sequence's frame 2: the warning said "frame 0" (the PNG's number)
    # where the rectification and damaged-frame warnings of the same run name frame 2.
    left, right = _ground_plane_sequences(tmp_path, 3)
    code, _, err = run_cli("video", left, right, "--model", "sgbm", "--max-disp", "32", "--start", "2", "-q")
    assert code == 0, err
    assert "warning: frame 2: " in err and "of the map sits at the top of the searched range" in err, err
    assert "frame 0: " not in err, err


class _Device:
    """A cv2.VideoCapture stand-in for a USB camera: plugged in (or not), never read here."""

    def __init__(self, opened: bool):
        self.opened, self.released = opened, False

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self.opened

    def set(self, prop, value):
        return False

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def test_live_without_its_camera_says_so_before_the_model_loads(run_cli, monkeypatch):
    """`live --camera uvc:0` with no camera loaded the model, printed two notes and a progress bar, then the error."""
    from rtstereo.cli import video
    from rtstereo.sources.cameras import UVCSource

    loaded = []
    real_stream_predictor = video.stream_predictor

    def stream_predictor(*args, **kwargs):
        loaded.append(True)
        return real_stream_predictor(*args, **kwargs)

    monkeypatch.setattr(video, "stream_predictor", stream_predictor)
    monkeypatch.setattr(
        "rtstereo.cli.live.open_camera", lambda *a, **k: UVCSource(0, capture_factory=lambda d: _Device(False))
    )
    code, out, err = run_cli("live", "--camera", "uvc:0", *FAST)
    assert code == 2 and loaded == []
    assert err == "rtstereo live: error: cannot open camera uvc:0: is it plugged in, and not used by another program?\n"
    # A camera opened ahead of a model that then fails to load is released (no iteration took it over).
    device = _Device(True)
    monkeypatch.setattr("rtstereo.cli.live.open_camera", lambda *a, **k: UVCSource(0, capture_factory=lambda d: device))
    code, out, err = run_cli("live", "--camera", "uvc:0", "--model", "anynet")
    assert code == 2 and "needs its weights" in err and loaded == [True] and device.released


def test_an_mp4_of_frames_of_odd_size_says_the_black_line_it_adds(run_cli, two_videos, tmp_path, caplog):
    """`video -o out.mp4` of 63x47 frames (previews 126x47) wrote 126x48 with a black row without a word."""
    from types import SimpleNamespace

    from rtstereo.sinks.video import VideoSink

    code, out, err = run_cli("video", *two_videos, "-o", tmp_path / "o.mp4", "--size", "47x63", *FAST)
    assert code == 0, err
    note = (
        f"{tmp_path / 'o.mp4'}: the previews are 47x126 (HxW) and MPEG-4 needs even sizes: written 48x126, with a "
        "black row at the bottom (every pixel of the preview kept; frames of even sizes, e.g. --size HxW, avoid it)"
    )
    assert err.count(note) == 1 and read_video(tmp_path / "o.mp4")[0].shape[:2] == (48, 126)
    code, out, err = run_cli("video", *two_videos, "-o", tmp_path / "even.mp4", "--size", "48x64", *FAST)
    assert code == 0 and "MPEG-4 needs even sizes" not in err
    # from Python, a preview of odd width and height: both lines said, once
    sink = VideoSink(tmp_path / "py.mp4", fps=5)
    preview = np.zeros((15, 21, 3), np.uint8)
    with caplog.at_level("INFO", logger="rtstereo.stream"):
        for number in range(2):
            sink.write(SimpleNamespace(preview=preview, pair=SimpleNamespace(left=preview), number=number))
    sink.close()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{tmp_path / 'py.mp4'}: ")]
    assert len(said) == 1 and "written 16x22, with a black column at the right and a black row at the bottom" in said[0]


def test_a_ray_summary_under_a_file_names_the_file_in_the_way(tmp_path):
    """It said "cannot write the summary taken/s.json: [Errno 17] File exists: 'taken'"."""
    from rtstereo.cli.video import _write_ray_summary

    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        _write_ray_summary(blocker / "s.json", [], 0, 0.0, False)
    assert str(info.value) == f"cannot write the summary {blocker / 's.json'}: {blocker} is a file, not a folder"


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_a_size_no_memory_holds_is_refused_before_a_frame_is_resized(run_cli, two_videos, tmp_path, monkeypatch, model):
    """The frames were resized to --size before the model's memory budget was asked: --size 40000x60000 (a zero too
    many) had the process killed by the kernel, out of memory. The budget now refuses the size first, in one line."""
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # 400x600 needs about 13 MB with SGBM
    code, out, err = run_cli(
        "video", *two_videos, "--output-prefix", tmp_path / "png" / "d", "--size", "400x600", "--model", model
    )
    name = "sgbm" if model == "sgbm" else "hybrid"
    assert code == 2 and out == "", err
    assert err.startswith(f"rtstereo video: error: --size 400x600: {name} on a 400x600 (HxW) pair needs about "), err
    assert err.count("\n") == 1 and "more than the 1 MB budget (RTSTEREO_MEMORY_BUDGET=1M)" in err
    assert not (tmp_path / "png").exists()
    # a size the budget holds, as it is or at a lower resolution, runs
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "40M")
    code, _, err = run_cli("video", *two_videos, "--output-prefix", tmp_path / "png" / "d", "--size", "48x64", *FAST)
    assert code == 0 and len(list((tmp_path / "png").glob("d_*.png"))) == 6, err


@pytest.mark.parametrize("videos", ["two", "sbs"])
def test_a_video_file_no_memory_holds_is_refused_before_anything_is_written(
    run_cli, two_videos, sbs_video, tmp_path, monkeypatch, videos
):
    """Without --size the budget was asked at the first frame, after an empty table and a summary of 0 frames had
    been written: a video file reports its frame size when it opens."""
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    inputs = two_videos if videos == "two" else ["--sbs", sbs_video]
    code, out, err = run_cli("video", *inputs, "-o", tmp_path / "o.mp4", "--model", "sgbm")
    assert code == 2 and out == "", err
    assert err.startswith("rtstereo video: error: sgbm on a "), err
    assert err.count("\n") == 1 and "more than the 1 KB budget (RTSTEREO_MEMORY_BUDGET=1K)" in err, err
    assert not list(tmp_path.glob("o.*"))


@pytest.mark.parametrize("verb", ["video", "live"])
@pytest.mark.parametrize("size", [None, "400x600"])
def test_a_frame_size_no_memory_holds_is_refused_before_the_model_loads(
    run_cli, sbs_video, tmp_path, monkeypatch, verb, size
):
    """The budget was asked of the loaded model: a video of large frames (or --size) waited for the model to load,
    seconds, more with torch, to be refused. The registry's plan is asked first, from the video's header or the open
    camera's size; the words are the loaded model's (test_the_plan_known_before_loading_is_the_loaded_models)."""
    import rtstereo.cli.video as video_cli

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(video_cli, "stream_predictor", loaded)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    inputs = ["--sbs", sbs_video] if verb == "video" else ["--camera", f"uvc:{sbs_video}"]
    sized = ["--size", size] if size else []
    code, out, err = run_cli(verb, *inputs, "-o", tmp_path / "o.mp4", "--model", "gwcnet-g", "--max-disp", 16, *sized)
    assert code == 2 and out == "", err
    said = f"rtstereo {verb}: error: {'--size 400x600: ' if size else ''}gwcnet-g on a "
    assert said in err and "more than the 1 KB budget (RTSTEREO_MEMORY_BUDGET=1K)" in err, err
    assert err.endswith("\n") and not err.split(said)[1].count("\n") - 1, err
    assert not list(tmp_path.glob("o.*"))


@pytest.mark.parametrize(
    "output, said",
    [
        ("o.avi", "expected a .mp4, .m4v, .mov file name (an MPEG-4 video), got '.avi'"),
        ("taken.mp4", "is a folder: give a file name, e.g. "),
        # it wrote the file o.mp4, where predict's `-o x/` is a folder
        ("o.mp4/", "ends with a folder separator, which names a folder: give a file name, e.g. "),
    ],
)
def test_an_mp4_output_that_cannot_be_written_is_refused_before_the_model_loads(
    run_cli, two_videos, tmp_path, monkeypatch, output, said
):
    """-o out.avi (or a folder) was refused as its writer was made, after the model had loaded (seconds with torch)."""
    import rtstereo.cli.video as video_cli

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(video_cli, "stream_predictor", loaded)
    (tmp_path / "taken.mp4").mkdir()
    code, out, err = run_cli("video", *two_videos, "-o", f"{tmp_path}/{output}", *FAST)
    assert code == 2 and out == "", err
    assert err.startswith(f"rtstereo video: error: video output {tmp_path}/{output}") and said in err, err
    assert not (tmp_path / "o.mp4").exists()
    assert err.count("\n") == 1


@pytest.mark.parametrize("videos", ["two", "sbs", "sequence"])
def test_a_calibration_of_another_frame_size_is_refused_before_the_model_loads(
    run_cli, two_videos, sbs_video, tmp_path, monkeypatch, videos
):
    """A camera's size is checked against --calib once it opens; a video file's, known from its header, and an image
    sequence's, from its first files', were refused at the first frame, after the model had loaded."""
    import rtstereo.cli.video as video_cli
    from rtstereo.io.calibration import write_calibration
    from rtstereo.types import Calibration

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(video_cli, "stream_predictor", loaded)
    write_calibration(tmp_path / "tall.json", Calibration(100.0, 100.0, 4.5, 4.5, 499.5, 0.1, 1000, 10))
    inputs = {"two": two_videos, "sbs": ["--sbs", sbs_video], "sequence": _sized_sequence(tmp_path, [(32, 48)] * 2)}
    code, out, err = run_cli("video", *inputs[videos], "-o", tmp_path / "o.mp4", "--calib", tmp_path / "tall.json")
    assert code == 2 and out == "", err
    assert "error: the calibration is for 10x1000 (HxW) images but the frames are " in err, err
    assert err.count("\n") == 1 and not list(tmp_path.glob("o.*"))


def _sized_sequence(folder: Path, sizes_hw: list[tuple[int, int]]) -> tuple[Path, Path]:
    """Two folders of textured frames of the given sizes, named f0, f1...: their paths."""
    texture = np.random.default_rng(0).integers(0, 256, (max(h for h, _ in sizes_hw), 4 + max(w for _, w in sizes_hw)))
    for side in ("L", "R"):
        (folder / side).mkdir()
    for i, (height, width) in enumerate(sizes_hw):
        cv2.imwrite(str(folder / "L" / f"f{i}.png"), texture[:height, 4 : 4 + width].astype(np.uint8))
        cv2.imwrite(str(folder / "R" / f"f{i}.png"), texture[:height, :width].astype(np.uint8))
    return folder / "L", folder / "R"


def test_a_frame_of_an_image_sequence_no_memory_holds_is_named_and_not_decoded(run_cli, tmp_path, monkeypatch):
    """A folder whose third frame was too large for the budget was decoded whole (gigabytes for 20000x20000) and
    then refused without a word of which frame it was: the frame is now refused from its files' headers, named."""
    from rtstereo.sources.pairs import PairSource

    decoded = []
    load = PairSource.load
    monkeypatch.setattr(
        PairSource, "load", lambda self, *a, **k: decoded.append(Path(self.left).name) or load(self, *a, **k)
    )
    monkeypatch.setenv(
        "RTSTEREO_MEMORY_BUDGET", "2M"
    )  # 32x48 frames fit; 300x400 ones need 56 B/px, 6.4 MiB, with SGBM
    left, right = _sized_sequence(tmp_path, [(32, 48), (32, 48), (300, 400), (32, 48)])
    code, out, err = run_cli("video", left, right, "--output-prefix", tmp_path / "o" / "d", *FAST, "--quiet")
    assert code == 2 and out == "", err
    assert err == (
        f"rtstereo video: error: frame 2 ({left / 'f2.png'}, {right / 'f2.png'}): sgbm on a 300x400 (HxW) pair needs "
        "about 6 MB, more than the 2 MB budget (RTSTEREO_MEMORY_BUDGET=2M): resize the images to at most 167x223 "
        "(HxW), the largest size that fits, or set RTSTEREO_MEMORY_BUDGET if the machine has more memory\n"
    ), err
    assert "f2.png" not in decoded and len(list((tmp_path / "o").glob("d_*.png"))) == 2


def test_an_image_sequence_whose_first_frame_no_memory_holds_is_refused_before_the_model_loads(
    run_cli, tmp_path, monkeypatch
):
    """As a video file's header gives its frame size, the first frame's files give it: refused at that frame, after
    the model had loaded."""
    import rtstereo.cli.video as video_cli

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(video_cli, "stream_predictor", loaded)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "2M")
    left, right = _sized_sequence(tmp_path, [(300, 400), (32, 48)])
    code, out, err = run_cli("video", left, right, "--output-prefix", tmp_path / "o" / "d", *FAST)
    assert code == 2 and out == "", err
    assert (
        err.startswith("rtstereo video: error: sgbm on a 300x400 (HxW) pair needs about 6 MB, more")
        and err.count("\n") == 1
    )
    assert not (tmp_path / "o").exists()


def test_a_frame_of_an_image_sequence_whose_views_differ_in_size_is_named(run_cli, tmp_path):
    """'left and right images differ in size: left 40x32, right 36x32' said which of the sequence's frames only by
    its sizes."""
    texture = np.random.default_rng(0).integers(0, 256, (32, 48), dtype=np.uint8)
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "L" / f"f{i}.png"), texture[:, :40])
        cv2.imwrite(str(tmp_path / "R" / f"f{i}.png"), texture[:, 4:44] if i != 1 else texture[:, 4:40])
    code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", "--output-prefix", tmp_path / "o" / "d", *FAST)
    assert code == 2, err
    assert err.endswith(
        f"rtstereo video: error: frame 1 ({tmp_path / 'L' / 'f1.png'}, {tmp_path / 'R' / 'f1.png'}): left and right "
        "images differ in size: left 40x32, right 36x32 (WxH); a rectified pair has one size\n"
    ), err


@pytest.mark.parametrize("with_mp4", [False, True])
def test_a_frame_beyond_the_png_range_is_said_to_be_in_the_mp4_only_when_there_is_one(
    run_cli, tmp_path, recwarn, with_mp4
):
    """The mp4 was said to show the frames without a PNG in a run that wrote PNGs alone. (A warning: printed as one
    line by the command, recorded here, as pytest records warnings.)"""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (24, 150), dtype=np.uint8), (600, 48), interpolation=cv2.INTER_CUBIC)
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i, shift_px in enumerate((10, 272)):
        cv2.imwrite(str(tmp_path / "L" / f"{i}.png"), texture)
        cv2.imwrite(str(tmp_path / "R" / f"{i}.png"), np.roll(texture, -shift_px, axis=1))
    argv = ["video", tmp_path / "L", tmp_path / "R", "--output-prefix", tmp_path / "f" / "d", "-q"]
    argv += ["-o", tmp_path / "o.mp4"] if with_mp4 else []
    code, _, err = run_cli(*argv, "--model", "sgbm", "--max-disp", "288", "--no-rectification-check")
    assert code == 0, err
    (said,) = [str(w.message) for w in recwarn.list if "frame 1: disparity up to" in str(w.message)]
    assert "get no PNG" in said and ("the mp4 still shows them" in said) == with_mp4, said
    assert sorted(p.name for p in (tmp_path / "f").glob("d_*.png")) == ["d_00000.png"]


def test_video_says_once_when_a_map_has_disparities_of_the_frames_width_or_more(run_cli, tmp_path, shared):
    """As predict says of a pair: default gave 24 pixels of 33-38 px on Middlebury's cones at 17x33."""
    folder = shared("data", "real", "middlebury2003", "cones")
    for name, side in (("im2.png", "L"), ("im6.png", "R")):
        (tmp_path / side).mkdir()
        small = cv2.resize(cv2.imread(str(folder / name)), (33, 17), interpolation=cv2.INTER_AREA)
        for index in range(31):  # frames 0 and 30 are checked
            cv2.imwrite(str(tmp_path / side / f"{index}.png"), small)
    code, _, err = run_cli("video", tmp_path / "L", tmp_path / "R", "--output-prefix", tmp_path / "d", "-q")
    assert code == 0, err
    beyond = int(np.count_nonzero(read_disparity(tmp_path / "d_00000.png") >= 33))
    assert beyond > 0 and err.count("the width of the image: their match would lie outside the right view") == 1, err
    assert f"rtstereo video: warning: frame 0: {beyond} pixels of the map (" in err


# The rectification check's thread in OpenCV until the stream's end has said that it waits for it (never, before it
# did: it waited 10 s, then the process exited with the thread inside OpenCV and aborted, "terminate called without an
# active exception", exit code 134), then, with a signal named, sends it (Ctrl-C or kill during that wait), and goes on
# in OpenCV a while: the process must wait for it.
_SLOW_RECTIFICATION_CHECK = """
import logging, os, signal, sys, threading, time
import cv2, numpy as np
from rtstereo import cli, rectify
from rtstereo.cli.rectification import StreamRectificationCheck

said = threading.Event()

class Said(logging.Handler):
    def emit(self, record):
        if "waiting for the rectification check" in record.getMessage():
            said.set()

logging.getLogger("rtstereo.stream").addHandler(Said())
original_check, original_wait = rectify.check_rectification, StreamRectificationCheck.wait
number = getattr(signal, sys.argv[1]) if sys.argv[1] != "none" else None

def slow_check(left, right):
    image = np.random.default_rng(0).random((300, 300), np.float32)
    while not said.is_set():
        cv2.GaussianBlur(image, (0, 0), 5)
    if number is not None:
        os.kill(os.getpid(), number)
    until = time.perf_counter() + 0.5
    while time.perf_counter() < until:
        cv2.GaussianBlur(image, (0, 0), 5)
    return original_check(left, right)

rectify.check_rectification = slow_check
StreamRectificationCheck.wait = lambda self, timeout_s=10.0: original_wait(self, 0.1)
signal.signal(signal.SIGINT, signal.default_int_handler)
cli.VERBS += ["video"] * ("video" not in cli.VERBS)
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("stop, code", [("none", 0), ("SIGINT", 130), ("SIGTERM", 130)])
def test_a_rectification_check_still_in_opencv_at_the_end_is_waited_for(two_videos, tmp_path, stop, code):
    """The check still running when the stream ended was waited for 10 s, then left inside OpenCV as the process
    exited: it aborted (exit code 134), also when Ctrl-C or kill came during that wait, which skipped the summary."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = ["video", *map(str, two_videos), *FAST, "--output-prefix", str(tmp_path / "d")]
    done = subprocess.run(
        [sys.executable, "-c", _SLOW_RECTIFICATION_CHECK, stop, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, (done.returncode, done.stderr[-3000:])
    assert "terminate called" not in done.stderr
    assert "rtstereo video: waiting for the rectification check of a frame to end" in done.stderr
    assert " frames in " in done.stdout and "stopped: end of input" in done.stdout  # the summary
    if code == 130:
        assert "rtstereo video: interrupted after the last frame: the outputs are complete" in done.stderr


# Part of the child scripts below: whether the main thread waits for the stream's threads, in Python's own wait at
# exit or in Stream.wait_for_the_stages.
_MAIN_THREAD_WAITS = """
import sys, threading

def main_thread_waits_for_the_stages():
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        code = frame.f_code
        exiting = code.co_name == "_shutdown" and code.co_filename.endswith("threading.py")
        if exiting or code.co_name == "wait_for_the_stages":
            return True
        frame = frame.f_back
    return False
"""


# A model inside OpenCV when Ctrl-C stops the stream (frame 1), still in it when the process waits for it, and then
# killed (SIGTERM): Python's own wait at exit gave exit code 143.
_SLOW_MODEL_THEN_KILL = (
    _MAIN_THREAD_WAITS
    + """
import os, signal, sys, threading, time
import cv2, numpy as np
from rtstereo import cli
from rtstereo.cli import video

original = video.predictor_from_args

def slow_predictor(args):
    predictor = original(args)
    predict = predictor.predict_pair
    def slow(pair, *more, **settings):
        if pair.index == 1:
            os.kill(os.getpid(), signal.SIGINT)
            image = np.random.default_rng(0).random((300, 300), np.float32)
            while not main_thread_waits_for_the_stages():
                cv2.GaussianBlur(image, (0, 0), 5)
            os.kill(os.getpid(), signal.SIGTERM)
            until = time.perf_counter() + 0.3
            while time.perf_counter() < until:
                cv2.GaussianBlur(image, (0, 0), 5)
        return predict(pair, *more, **settings)
    predictor.predict_pair = slow
    return predictor

video.predictor_from_args = slow_predictor
signal.signal(signal.SIGINT, signal.default_int_handler)
cli.VERBS += ["video"] * ("video" not in cli.VERBS)
sys.exit(cli.main(sys.argv[1:]))
"""
)


def test_kill_while_the_process_waits_for_a_model_still_inside_a_frame_is_ctrl_c(two_videos, tmp_path):
    """Ctrl-C stopped the stream while the model was inside a frame; the process then waited for it at exit, where
    kill ended it with exit code 143 instead of the 130 of the Ctrl-C the stream had reported."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = ["video", *map(str, two_videos), *FAST, "--no-rectification-check", "--output-prefix", str(tmp_path / "d")]
    done = subprocess.run(
        [sys.executable, "-c", _SLOW_MODEL_THEN_KILL, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130, (done.returncode, done.stderr[-3000:])
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    assert "the model is still inside a frame" in done.stderr
    assert "rtstereo video: interrupted: 1 of " in done.stderr and " fps end to end" in done.stdout


# The capture stage inside OpenCV (preparing frame 1) when the model's error on frame 0 stops the stream, and still
# in it until the process waits for it; then, with a signal named, killed during that wait. The capture thread was a
# daemon, which the process did not wait for: it aborted ("terminate called without an active exception", 134).
_SLOW_PREPARE_AT_AN_ERROR = (
    _MAIN_THREAD_WAITS
    + """
import os, signal, sys, threading, time
import cv2, numpy as np
from rtstereo import cli
from rtstereo.sources import base

original = base.FramePreparer.__call__

def slow(self, pair):
    if pair.index == 1:
        image = np.random.default_rng(0).random((300, 300), np.float32)
        deadline = time.perf_counter() + 30.0  # a daemon thread whose process is gone never sees the main thread
        while not main_thread_waits_for_the_stages() and time.perf_counter() < deadline:
            cv2.GaussianBlur(image, (0, 0), 5)
        if sys.argv[1] != "none":
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        until = time.perf_counter() + 0.3
        while time.perf_counter() < until:
            cv2.GaussianBlur(image, (0, 0), 5)
    return original(self, pair)

base.FramePreparer.__call__ = slow
cli.VERBS += ["video"] * ("video" not in cli.VERBS)
sys.exit(cli.main(sys.argv[2:]))
"""
)


@pytest.mark.parametrize("stop", ["none", "SIGTERM"])
def test_a_frame_still_being_prepared_when_the_model_fails_is_waited_for(two_videos, tmp_path, stop):
    """The model failed on frame 0 (--max-disp beyond the frame's width) while capture prepared frame 1 in OpenCV:
    the process exited with its thread inside OpenCV and aborted (exit code 134, not the error's 2); killed while
    it waits for that frame, it exited with 143."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = ["video", *map(str, two_videos), "--model", "sgbm", "--max-disp", "4096", "--no-rectification-check"]
    done = subprocess.run(
        [sys.executable, "-c", _SLOW_PREPARE_AT_AN_ERROR, stop, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    assert "a frame is still being read or prepared: it finishes in the background" in done.stderr
    assert "rtstereo video: error: " in done.stderr and "must exceed the searched disparities" in done.stderr
