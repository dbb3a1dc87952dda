"""Calibration readers and writers: KITTI 2012/2015, Middlebury, OpenCV (YAML/XML/JSON), rtstereo JSON."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import cv2
import numpy as np
import pytest

from rtstereo.errors import InputError, OutputError
from rtstereo.geometry import CalibrationWarning
from rtstereo.io.calibration import (
    CalibrationUnitWarning,
    calibration_from_projections,
    calibration_from_q,
    projection_matrices,
    read_calibration,
    write_calibration,
    write_opencv,
)
from rtstereo.rectify import Rectifier
from rtstereo.types import Calibration

# Published calibration of KITTI 2015 training frame 000000 (calib_cam_to_cam), rectified cameras.
_KITTI_2015_P_RECT = {  # the x translations (4th numbers) give the baselines
    "00": "7.215377e+02 0 6.095593e+02 0 0 7.215377e+02 1.728540e+02 0 0 0 1 0",
    "01": "7.215377e+02 0 6.095593e+02 -3.875744e+02 0 7.215377e+02 1.728540e+02 0 0 0 1 0",
    "02": "7.215377e+02 0 6.095593e+02 4.485728e+01 0 7.215377e+02 1.728540e+02 0.2163791 0 0 1 2.745884e-3",
    "03": "7.215377e+02 0 6.095593e+02 -3.395242e+02 0 7.215377e+02 1.728540e+02 2.199936 0 0 1 2.729905e-3",
}
KITTI_2015_CAM_TO_CAM = "calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\n" + "".join(
    f"S_rect_{camera}: 1.242000e+03 3.750000e+02\nP_rect_{camera}: {numbers}\n"
    for camera, numbers in _KITTI_2015_P_RECT.items()
)

MIDDLEBURY_2014 = """cam0=[4161.221 0 1445.577; 0 4161.221 984.686; 0 0 1]
cam1=[4161.221 0 1654.636; 0 4161.221 984.686; 0 0 1]
doffs=209.059
baseline=176.252
width=2880
height=1988
ndisp=280
isint=0
vmin=27
vmax=274
dyavg=0.526
dymax=1.0
"""

CAL = Calibration(
    fx_px=702.5,
    fy_px=701.0,
    cx0_px=321.25,
    cx1_px=329.5,
    cy_px=238.75,
    baseline_m=0.1234,
    width_px=640,
    height_px=480,
)


def _opencv_rig():
    k1 = np.array([[600.0, 0, 320], [0, 605.0, 240], [0, 0, 1]])
    k2 = np.array([[610.0, 0, 315], [0, 612.0, 236], [0, 0, 1]])
    distortion = np.array([-0.1, 0.02, 0.001, -0.0005, 0.0])
    rotation = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]
    translation = np.array([[-0.15], [0.003], [0.002]])
    return k1, distortion, k2, distortion, rotation, translation


# --- feature --------------------------------------------------------------------------------------


def test_kitti_2012_grey_and_colour_cameras(shared):
    path = shared("data", "real", "kitti2012", "000070", "calib", "000070.txt")
    grey = read_calibration(path)
    assert grey.fx_px == pytest.approx(718.856) and grey.cx0_px == pytest.approx(607.1928)
    assert grey.cy_px == pytest.approx(185.2157) and grey.doffs_px == 0
    assert grey.baseline_m == pytest.approx(386.1448 / 718.856)
    colour = read_calibration(path, kitti_cameras=(2, 3))
    # t_x = (P[0,3] - cx * P[2,3]) / fx: cameras 2 and 3 sit 3.8 and 4.9 mm off camera 0 along z
    t2_x = (45.38225 - 607.1928 * 3.779761e-03) / 718.856
    t3_x = (-337.2877 - 607.1928 * 4.915215e-03) / 718.856
    assert colour.baseline_m == pytest.approx(t2_x - t3_x)
    assert (grey.width_px, grey.height_px) == (0, 0)  # KITTI 2012 files carry no image size


def test_kitti_baseline_is_the_distance_of_the_camera_centres_when_they_differ_along_z(tmp_path):
    """P = K [I | t] puts cx * t_z into P[0, 3]: read as fx * t_x, cameras 2 and 3 of KITTI 2012 000070 (4.9 and
    3.8 mm behind camera 0) gave a baseline 0.18 % short, and every depth with it."""
    k = np.array([[700.0, 0, 600], [0, 700, 180], [0, 0, 1]])
    centres_m = {0: (0.0, 0.0, 0.0), 1: (0.54, 0.0, 0.0), 2: (-0.06, 0.0003, -0.004), 3: (0.47, -0.003, -0.006)}
    rows = [
        f"P{i}: " + " ".join(f"{v:.10g}" for v in (k @ np.c_[np.eye(3), -np.array(c)]).ravel()) + "\n"
        for i, c in centres_m.items()
    ]
    path = tmp_path / "000000.txt"
    path.write_text("".join(rows))
    assert read_calibration(path, kitti_cameras=(2, 3)).baseline_m == pytest.approx(0.53, rel=1e-9)
    assert read_calibration(path).baseline_m == pytest.approx(0.54, rel=1e-9)


def test_kitti_2015_cam_to_cam(tmp_path):
    path = tmp_path / "000000.txt"
    path.write_text(KITTI_2015_CAM_TO_CAM)
    colour = read_calibration(path)  # 2015 defaults to the colour cameras 2/3
    assert colour.fx_px == pytest.approx(721.5377)
    t2_x, t3_x = (44.85728 - 609.5593 * 2.745884e-3) / 721.5377, (-339.5242 - 609.5593 * 2.729905e-3) / 721.5377
    assert colour.baseline_m == pytest.approx(t2_x - t3_x)
    assert (colour.width_px, colour.height_px) == (1242, 375)
    grey = read_calibration(path, kitti_cameras=(0, 1))
    assert grey.baseline_m == pytest.approx(387.5744 / 721.5377)


def test_middlebury_2014_calib_txt(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text(MIDDLEBURY_2014)
    cal = read_calibration(path)
    assert (cal.fx_px, cal.cx0_px, cal.cx1_px, cal.cy_px) == (4161.221, 1445.577, 1654.636, 984.686)
    assert cal.baseline_m == pytest.approx(0.176252)
    assert cal.doffs_px == pytest.approx(209.059)
    assert (cal.width_px, cal.height_px) == (2880, 1988)


def test_a_middlebury_baseline_written_in_metres_gets_a_warning(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text(MIDDLEBURY_2014.replace("baseline=176.252", "baseline=0.176252"))
    with pytest.warns(CalibrationUnitWarning, match=r"a rig 0.176252 mm wide is implausible.*\(baseline=176.252\)"):
        assert read_calibration(path).baseline_m == pytest.approx(0.000176252)  # read as given, not guessed
    path.write_text(MIDDLEBURY_2014)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_calibration(path)


@pytest.mark.parametrize("suffix", [".yaml", ".xml", ".json"])
@pytest.mark.parametrize("zero_disparity", [True, False])
def test_opencv_stereo_rectify_output(tmp_path, suffix, zero_disparity):
    k1, d1, k2, d2, rotation, translation = _opencv_rig()
    flags = cv2.CALIB_ZERO_DISPARITY if zero_disparity else 0
    _, _, p1, p2, q, _, _ = cv2.stereoRectify(k1, d1, k2, d2, (640, 480), rotation, translation, flags=flags, alpha=0)
    path = write_opencv(tmp_path / f"stereo{suffix}", {"P1": p1, "P2": p2, "Q": q}, 640, 480)
    cal = read_calibration(path)
    assert cal.baseline_m == pytest.approx(np.linalg.norm(translation), rel=1e-9)
    assert (cal.fx_px, cal.cx0_px, cal.cx1_px, cal.cy_px) == pytest.approx((p1[0, 0], p1[0, 2], p2[0, 2], p1[1, 2]))
    assert (cal.width_px, cal.height_px) == (640, 480)
    only_q = read_calibration(write_opencv(tmp_path / f"q{suffix}", {"Q": q}, 640, 480))
    assert dataclasses.astuple(only_q) == pytest.approx(dataclasses.astuple(cal))


def test_opencv_image_size_as_a_sequence_and_millimetres(tmp_path):
    matrices = projection_matrices(CAL)
    path = tmp_path / "mm.yaml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("imageSize", np.array([[640, 480]], np.float64))
    fs.write("P1", matrices["P1"])
    p2 = matrices["P2"].copy()
    p2[0, 3] *= 1000  # the board was measured in millimetres
    fs.write("P2", p2)
    fs.release()
    with pytest.warns(CalibrationUnitWarning, match="length_unit='mm'"):
        assert read_calibration(path).baseline_m == pytest.approx(123.4)
    cal = read_calibration(path, length_unit="mm")
    assert cal.baseline_m == pytest.approx(0.1234) and (cal.width_px, cal.height_px) == (640, 480)


def test_opencv_length_unit_entry_is_honoured(tmp_path):
    matrices = projection_matrices(CAL)
    matrices["P2"][0, 3] *= 1000
    path = write_opencv(tmp_path / "unit.yaml", matrices, 640, 480, length_unit="mm")
    assert read_calibration(path).baseline_m == pytest.approx(0.1234)
    assert read_calibration(path, length_unit="mm").baseline_m == pytest.approx(0.1234)  # the same unit: fine
    with pytest.raises(InputError, match=r"says its lengths are in mm \(length_unit\), but m was given"):
        read_calibration(path, length_unit="m")
    bad = write_opencv(tmp_path / "bad.yaml", matrices, 640, 480, length_unit="furlong")
    with pytest.raises(InputError, match="unknown length_unit 'furlong'"):
        read_calibration(bad)


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".xml"])
def test_write_read_round_trip(tmp_path, suffix):
    path = write_calibration(tmp_path / f"cal{suffix}", CAL)
    back = read_calibration(path)
    if suffix == ".json":
        assert back == CAL
    else:  # P1/P2 hold one focal length per axis and the rest exactly
        assert dataclasses.astuple(back) == pytest.approx(dataclasses.astuple(CAL))
        with pytest.raises(InputError, match=r"says its lengths are in m \(length_unit\), but mm was given"):
            read_calibration(path, length_unit="mm")  # would have read the metres as millimetres


@pytest.mark.parametrize("fmt", ["middlebury", "kitti", ".json", ".yaml", ".xml"])
@pytest.mark.parametrize(("line_end", "encoding"), [("\n", "utf-8-sig"), ("\r\n", "utf-8-sig"), ("\r\n", "utf-16")])
def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path, fmt, line_end, encoding):
    """A calib.txt saved by a Windows editor with a byte-order mark read as 'unknown calibration format' (the mark
    hid 'cam0='), a KITTI one as 'without P0 (has: ..., \ufeffP0)'; JSON and OpenCV refused theirs. So did the
    UTF-16 files of PowerShell's `>`, whose mark says so."""
    if fmt == "middlebury":
        text, expected = MIDDLEBURY_2014, read_calibration(_written(tmp_path / "plain.txt", MIDDLEBURY_2014))
    elif fmt == "kitti":
        text = "".join(f"P{i}: {_KITTI_2015_P_RECT[f'0{i}']}\n" for i in range(4))
        expected = read_calibration(_written(tmp_path / "plain.txt", text))
    else:
        text, expected = write_calibration(tmp_path / f"plain{fmt}", CAL).read_text(), CAL
    path = tmp_path / f"calib{'.txt' if fmt in ('middlebury', 'kitti') else fmt}"
    path.write_bytes(text.replace("\n", line_end).encode(encoding))  # both write their byte-order mark
    back = read_calibration(path)
    assert dataclasses.astuple(back) == pytest.approx(dataclasses.astuple(expected))


def _written(path, text):
    path.write_text(text)
    return path


def test_projection_matrices_agree_with_from_projections_and_q():
    matrices = projection_matrices(CAL)
    from_p = calibration_from_projections(matrices["P1"], matrices["P2"], 640, 480)
    from_q = calibration_from_q(matrices["Q"], 640, 480)
    assert dataclasses.astuple(from_p) == pytest.approx(dataclasses.astuple(CAL))
    assert from_q.baseline_m == pytest.approx(CAL.baseline_m) and from_q.doffs_px == pytest.approx(CAL.doffs_px)


def test_rtstereo_json_with_extra_entries(tmp_path):
    path = write_calibration(tmp_path / "c.json", CAL, rms_px=0.21)
    assert '"rms_px": 0.21' in path.read_text()
    assert read_calibration(path) == CAL


@pytest.mark.parametrize(
    ("calibration", "extra", "message"),
    [
        ({"fx_px": 700.0}, {}, r"^calibration: expected an rtstereo Calibration, got dict \(make one with Calibration"),
        (CAL, {"fx_px": 5.0}, r"^extra entries fx_px would replace the calibration's own: name them otherwise$"),
        (CAL, {"format": "mine"}, r"^extra entries format would replace the calibration's own"),
        (CAL, {"note": object()}, r"^extra entries note: expected values JSON can hold \(numbers, text, lists\)$"),
    ],
)
def test_write_calibration_refuses_what_it_could_not_write_as_given(tmp_path, calibration, extra, message):
    """A dict failed with "asdict() should be called on dataclass instances", an object with json's TypeError, and
    fx_px=5.0 replaced the focal length written, which read back as another calibration without a word."""
    with pytest.raises(InputError, match=message):
        write_calibration(tmp_path / "c.json", calibration, **extra)
    assert not (tmp_path / "c.json").exists()


def test_a_baseline_in_millimetres_made_in_python_gets_the_warning_a_json_file_gets(tmp_path):
    """Calibration(300, 300, 160, 160, 120, 120.0) was taken without a word, where read_calibration warns of the same
    baseline in a JSON file; its scaled and cropped copies say nothing more."""
    with pytest.warns(CalibrationUnitWarning) as caught:
        calibration = Calibration(300, 300, 160, 160, 120, 120.0, width_px=320, height_px=240)
    assert [str(w.message) for w in caught] == [
        "calibration: baseline_m = 120 m; if it is in millimetres, write it in metres (0.12)"
    ]
    assert [w.filename for w in caught] == [__file__]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(dataclasses.asdict(calibration)))
    with pytest.warns(CalibrationUnitWarning) as caught:  # once, naming the file
        read_calibration(path)
    assert [str(w.message) for w in caught] == [
        f"{path}: baseline_m = 120 m; if it is in millimetres, write it in metres (0.12)"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibration.scaled(2.0)
        calibration.cropped(10, 10)
        Calibration(300, 300, 160, 160, 120, 0.12)


def test_a_json_baseline_in_millimetres_gets_a_warning_as_an_opencv_one_does(tmp_path):
    """baseline_m: 120 (millimetres, written by hand) put every depth 1000x too far without a word."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**dataclasses.asdict(CAL), "baseline_m": 120}))
    with pytest.warns(
        CalibrationUnitWarning, match=r"c.json: baseline_m = 120 m; if it is in millimetres, write it in"
    ):
        assert read_calibration(path).baseline_m == 120.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_calibration(write_calibration(tmp_path / "ok.json", CAL))


# --- exceptions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, text, said",
    [
        ("fx_px", "true", "got true or false for fx_px"),
        ("width_px", "false", "got true or false for width_px"),
        ("width_px", "1" + "0" * 400, "(int too large to convert to float)"),
    ],
)
def test_json_fields_of_true_false_or_beyond_any_float_are_refused_in_one_line(tmp_path, field, text, said):
    """true was read as 1.0 (a focal length of 1 px); a whole number beyond any float raised OverflowError."""
    values = {k: str(v) for k, v in dataclasses.asdict(CAL).items()} | {field: text}
    path = tmp_path / "c.json"
    path.write_text("{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}")
    with pytest.raises(InputError, match=f"c.json: calibration fields must be numbers.*{re.escape(said)}"):
        read_calibration(path)


def test_reader_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_calibration(tmp_path / "missing.txt")
    unknown = tmp_path / "u.txt"
    unknown.write_text("hello\n")
    with pytest.raises(InputError, match="unknown calibration format"):
        read_calibration(unknown)
    with pytest.raises(InputError, match="unknown length unit"):
        read_calibration(unknown, length_unit="inch")
    bad_json = tmp_path / "b.json"
    bad_json.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_calibration(bad_json)
    partial = tmp_path / "p.json"
    partial.write_text('{"format": "rtstereo.calibration", "fx_px": 1}')
    with pytest.raises(InputError, match="missing calibration field") as missing:
        read_calibration(partial)
    # the image size is optional: it must not be listed among the fields a file needs
    assert "required: fx_px, fy_px, cx0_px, cx1_px, cy_px, baseline_m; optional: width_px, height_px" in str(
        missing.value
    )
    wrong_type = tmp_path / "w.json"
    wrong_type.write_text('{"fx_px": "a", "fy_px": 1, "cx0_px": 1, "cx1_px": 1, "cy_px": 1, "baseline_m": 1}')
    with pytest.raises(InputError, match="must be numbers"):
        read_calibration(wrong_type)


def test_a_kitti_file_of_the_other_cameras_names_the_option_that_reads_it(tmp_path):
    """A file of P2 and P3 alone (the colour cameras) was refused for P0 without a word of --kitti-cameras."""
    colour = tmp_path / "colour.txt"
    colour.write_text("P2: 700 0 600 45 0 700 180 0 0 0 1 0\nP3: 700 0 600 -330 0 700 180 0 0 0 1 0\n")
    with pytest.raises(InputError) as refused:
        read_calibration(colour)
    assert str(refused.value) == (
        f"{colour}: KITTI calibration without P0 (has: P2, P3); it holds cameras 2 and 3: --kitti-cameras 2,3 "
        "(kitti_cameras=(2, 3))"
    )
    assert read_calibration(colour, kitti_cameras=(2, 3)).baseline_m == pytest.approx(375 / 700)
    grey = tmp_path / "calib_cam_to_cam.txt"  # KITTI 2015's, whose default is the colour cameras
    grey.write_text("P_rect_00: 700 0 600 0 0 700 180 0 0 0 1 0\nP_rect_01: 700 0 600 -378 0 700 180 0 0 0 1 0\n")
    with pytest.raises(InputError, match=r"without P_rect_02 .*: --kitti-cameras 0,1 \(kitti_cameras=\(0, 1\)\)$"):
        read_calibration(grey)
    single = tmp_path / "single.txt"  # no pair to offer
    single.write_text("P1: 700 0 600 0 0 700 180 0 0 0 1 0\nP3: 700 0 600 -330 0 700 180 0 0 0 1 0\n")
    with pytest.raises(InputError, match=r"without P0 \(has: P1, P3\)$"):
        read_calibration(single)


def test_kitti_and_middlebury_errors(tmp_path):
    kitti = tmp_path / "k.txt"
    kitti.write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(InputError, match="without P1"):
        read_calibration(kitti)
    kitti.write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\nP1: 1 0 0\n")
    with pytest.raises(InputError, match="expected 12"):
        read_calibration(kitti)
    kitti.write_text("P0: 700 0 600 0 0 700 180 0 0 0 1 0\nP1: 700 0 600 380 0 700 180 0 0 0 1 0\n")
    with pytest.raises(InputError, match="left and right are swapped"):
        read_calibration(kitti)
    kitti.write_text("P0: 700 0 600 0 0 700 180 0 0 0 1 0\nP1: 700 0 600 nan 0 700 180 0 0 0 1 0\n")
    with pytest.raises(InputError, match=r"k.txt: the projection matrix P1 holds values that are not finite") as nan:
        read_calibration(kitti)
    assert "swapped" not in str(nan.value)  # it was "the baseline comes out as nan ...: left and right are swapped"
    middlebury = tmp_path / "calib.txt"
    middlebury.write_text("cam0=[1 0 1; 0 1 1; 0 0 1]\n")
    with pytest.raises(InputError, match="without cam1, baseline"):
        read_calibration(middlebury)
    middlebury.write_text("cam0=[1 0 1; 0 1 1]\ncam1=[1 0 1; 0 1 1; 0 0 1]\nbaseline=100\n")
    with pytest.raises(InputError, match="3x3 matrix"):
        read_calibration(middlebury)
    middlebury.write_text("cam0=[1 0 1; 0 1 1; 0 0 1]\ncam1=[1 0 5; 0 1 1; 0 0 1]\nbaseline=abc\n")
    with pytest.raises(InputError, match="not a number"):
        read_calibration(middlebury)
    middlebury.write_text("cam0=[1 0 1; 0 1 1; 0 0 1]\ncam1=[1 0 5; 0 1 1; 0 0 1]\nbaseline=100\ndoffs=3\n")
    with pytest.raises(InputError, match="disagrees"):
        read_calibration(middlebury)
    for cam1 in ("[2 0 5; 0 2 1; 0 0 1]", "[1 0 5; 0 1 3; 0 0 1]"):  # another focal length, another row
        middlebury.write_text(f"cam0=[1 0 1; 0 1 1; 0 0 1]\ncam1={cam1}\nbaseline=100\n")
        with pytest.raises(InputError, match=r"calib.txt: cam0 and cam1 differ .*: these cameras are not rectified"):
            read_calibration(middlebury)


def test_a_file_that_gives_one_side_of_the_image_size_is_refused(tmp_path):
    """A calibration.json with width_px but no height_px was read as having no size, and not scaled to resized
    images; a Middlebury calib.txt with width= alone, or an OpenCV file with image_width alone, alike."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**dataclasses.asdict(CAL), "height_px": 0}))
    with pytest.raises(InputError, match=r"c.json: width_px and height_px go together .*width_px=640, height_px=0"):
        read_calibration(path)
    path = tmp_path / "calib.txt"
    path.write_text(MIDDLEBURY_2014.replace("height=1988\n", ""))
    with pytest.raises(InputError, match=r"calib.txt: Middlebury calib.txt with width= but no height="):
        read_calibration(path)
    path = write_opencv(tmp_path / "rig.yaml", projection_matrices(CAL), image_width=640)
    with pytest.raises(InputError, match=r"rig.yaml: image_width and image_height go together, and it holds only"):
        read_calibration(path)


@pytest.mark.parametrize("fmt", ["json", "middlebury"])
def test_an_image_size_that_is_not_whole_is_refused_not_cut(tmp_path, fmt):
    if fmt == "json":
        path = tmp_path / "c.json"
        path.write_text(json.dumps({**dataclasses.asdict(CAL), "width_px": 640.5}))
    else:
        path = tmp_path / "calib.txt"
        cam = "[500 0 159.5; 0 500 119.5; 0 0 1]"
        path.write_text(f"cam0={cam}\ncam1={cam}\nbaseline=100\nwidth=640.5\nheight=480\n")
    with pytest.raises(InputError, match=rf"{path.name}: width_px must be a whole number of pixels.*640.5"):
        read_calibration(path)


def test_a_json_file_of_another_tool_is_refused_in_one_line(tmp_path):
    """A nested map that is not an opencv-matrix (a video summary given as --calib) raised cv2.error."""
    other = tmp_path / "summary.json"
    other.write_text(json.dumps({"source": "two videos", "settings": {"max_disp": 128}, "frames": 8}))
    with pytest.raises(InputError, match="no P1/P2 or Q matrix found"):
        read_calibration(other)


@pytest.mark.parametrize(
    "text, said",
    [("", "is empty"), ("%YAML:1.0\n---\n", "is empty"), ("- 1\n- 2\n", "holds a list or a value, not named entries")],
)
def test_an_empty_opencv_file_or_one_of_a_list_is_an_input_error_not_an_opencv_assertion(tmp_path, text, said):
    """An empty calib.yaml (an export that failed) raised cv2.error "Assertion failed isMap() in function 'keys'",
    a traceback with exit code 1, from --calib and --rectify alike."""
    path = tmp_path / "calib.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=f"calib.yaml {said}: expected an OpenCV FileStorage file of named"):
        read_calibration(path)
    # it named --calib's matrices (P1, P2 or Q) first, and no maps.npz
    with pytest.raises(InputError) as info:
        Rectifier.from_file(path)
    assert str(info.value) == (
        f"{path} {said}: --rectify takes the maps.npz written by `rtstereo calibrate`, or an OpenCV YAML/XML/JSON "
        "file with K1, D1, K2, D2 and R1, R2, P1, P2 or R, T"
    )


def test_opencv_errors(tmp_path):
    k1, d1, k2, d2, rotation, translation = _opencv_rig()
    raw = write_opencv(
        tmp_path / "raw.yaml",
        {"K1": k1, "D1": d1, "K2": k2, "D2": d2, "R": rotation, "T": translation},
        640,
        480,
    )
    with pytest.raises(InputError, match="unrectified calibration"):
        read_calibration(raw)
    empty = write_opencv(tmp_path / "empty.yaml", {"X": np.eye(3)})
    with pytest.raises(InputError, match="no P1/P2 or Q"):
        read_calibration(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("%YAML:1.0\nP1: !!opencv-matrix\n  rows: [\n")
    with pytest.raises(InputError, match="OpenCV cannot"):
        read_calibration(broken)
    p1 = projection_matrices(CAL)["P1"]
    with pytest.raises(InputError, match="must be 3x4"):
        calibration_from_projections(p1[:, :3], p1)
    bad_focal = p1.copy()
    bad_focal[0, 0] = -1
    with pytest.raises(InputError, match="must be > 0"):
        calibration_from_projections(bad_focal, p1)
    other = p1.copy()
    other[0, 0] *= 1.1
    with pytest.raises(InputError, match="not rectified"):
        calibration_from_projections(p1, other)
    for infinite in (np.nan, np.inf):
        other = p1.copy()
        other[1, 2] = infinite
        with pytest.raises(InputError, match="projection matrix P1 holds values that are not finite"):
            calibration_from_projections(other, p1)
    vertical = p1.copy()
    vertical[1, 3] = -50
    with pytest.raises(InputError, match="vertical stereo"):
        calibration_from_projections(p1, vertical)
    vertical[0, 3] = p1[0, 3] - 40  # displaced diagonally, more down (50) than across (40): vertical still
    with pytest.raises(InputError, match="vertical stereo"):
        calibration_from_projections(p1, vertical)
    with pytest.raises(InputError, match="Q must be 4x4"):
        calibration_from_q(np.eye(3))
    with pytest.raises(InputError, match="holds no baseline"):
        calibration_from_q(np.eye(4))


def test_a_read_error_without_a_system_reason_says_the_error_not_none(tmp_path, monkeypatch):
    """It said "cannot read broken.yaml: None" for an OSError that carries no strerror."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("P1: [\n")

    def read_bytes(self):
        raise OSError("the share went away")

    monkeypatch.setattr(type(broken), "read_bytes", read_bytes)
    with pytest.raises(InputError, match=f"^cannot read {re.escape(str(broken))}: the share went away$"):
        read_calibration(broken)


ROS_CAMERA_INFO = """image_width: 640
image_height: 480
camera_name: narrow_stereo/left
camera_matrix:
  rows: 3
  cols: 3
  data: [700.0, 0.0, 320.0, 0.0, 700.0, 240.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
projection_matrix:
  rows: 3
  cols: 4
  data: [700.0, 0.0, 320.0, 0.0, 0.0, 700.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_a_ros_camera_info_file_is_an_input_error_not_an_opencv_assertion(tmp_path):
    ros = tmp_path / "left.yaml"
    ros.write_text(ROS_CAMERA_INFO)  # its rows/cols/data maps have no dt: cv2's FileNode.mat() asserted
    with pytest.raises(InputError, match="looks like a ROS camera_info file, which holds one camera"):
        read_calibration(ros)
    with pytest.raises(InputError, match="rectification needs K1, D1, K2, D2"):
        Rectifier.from_file(ros)
    damaged = tmp_path / "damaged.yaml"
    damaged.write_text("%YAML:1.0\n---\nP1: !!opencv-matrix\n   rows: 3\n   cols: 4\n   dt: d\n   data: [ 1., 2. ]\n")
    with pytest.raises(InputError, match="damaged.yaml: P1 is not a readable matrix"):
        read_calibration(damaged)


RECTIFIED_WITHOUT_DIRECTIVE = """# written by hand: no %YAML line
image_width: 640
image_height: 480
P1: !!opencv-matrix
   rows: 3
   cols: 4
   dt: d
   data: [ 700., 0., 320., 0., 0., 700., 240., 0., 0., 0., 1., 0. ]
P2: !!opencv-matrix
   rows: 3
   cols: 4
   dt: d
   data: [ 700., 0., 320., -84., 0., 700., 240., 0., 0., 0., 1., 0. ]
"""


@pytest.fixture(params=["installed", "opencv4"])
def file_storage(request, monkeypatch):
    """The installed OpenCV's FileStorage, and one that tells formats as OpenCV 4 does: by the text's first
    characters, a text without '%YAML', '<?xml' or '{' refused as invalid (OpenCV 5 reads it as YAML)."""
    if request.param == "opencv4":
        real = cv2.FileStorage

        def opencv4(source, flags):
            text = source if flags & cv2.FILE_STORAGE_MEMORY else open(source, encoding="utf-8").read()
            if not text.lstrip().startswith(("%YAML", "<?xml", "{")):
                raise SystemError("returned a result with an exception set") from cv2.error(
                    "OpenCV(4.14.0) (-5:Bad argument) Input file is invalid in function 'open'"
                )
            return real(source, flags)

        monkeypatch.setattr(cv2, "FileStorage", opencv4)
    return request.param


def test_yaml_without_a_directive_is_read_on_opencv_4_too(tmp_path, file_storage):
    # OpenCV 4 (which pyproject.toml admits) refused these as 'Input file is invalid': ROS camera_info files and
    # YAML written by hand or by other tools have no %YAML line
    plain = tmp_path / "stereo.yaml"
    plain.write_text(RECTIFIED_WITHOUT_DIRECTIVE)
    calibration = read_calibration(plain)
    assert (calibration.fx_px, calibration.baseline_m, calibration.width_px) == (700.0, pytest.approx(0.12), 640)
    ros = tmp_path / "left.yaml"
    ros.write_text(ROS_CAMERA_INFO)
    with pytest.raises(InputError, match="looks like a ROS camera_info file, which holds one camera"):
        read_calibration(ros)
    broken = tmp_path / "broken.yaml"
    broken.write_text("image_width: 640\nP1: [1, 2\n  image_height: : 480\n")
    with pytest.raises(InputError, match=r"broken.yaml: OpenCV cannot parse it as YAML/XML/JSON \(line 3: [A-Z]"):
        read_calibration(broken)  # the file's line, not that of the text with a %YAML line put first
    xml = tmp_path / "broken.xml"
    xml.write_text('<?xml version="1.0"?>\n<opencv_storage>\n<P1>1 2</P2>\n')
    with pytest.raises(InputError, match="broken.xml: OpenCV cannot parse it as YAML/XML/JSON"):
        read_calibration(xml)


def test_an_opencv_error_without_text_is_named_by_its_type(tmp_path, monkeypatch):
    # the reason was str(exc).strip().splitlines()[-1]: an IndexError traceback on an error with no text
    def storage(*args):
        raise SystemError()

    monkeypatch.setattr(cv2, "FileStorage", storage)
    path = tmp_path / "stereo.yaml"
    path.write_text("image_width: 640\n")
    with pytest.raises(InputError, match=r"stereo.yaml: OpenCV cannot parse it as YAML/XML/JSON \(SystemError\)$"):
        read_calibration(path)


def test_a_zip_under_another_name_and_an_opencv_file_with_a_byte_order_mark_are_told_by_their_first_bytes(tmp_path):
    maps = tmp_path / "maps.npz"
    np.savez(maps, x=np.zeros(1))
    renamed = maps.rename(tmp_path / "maps.bin")
    with pytest.raises(InputError, match=r"maps.bin is a zip/npz archive.*go to --rectify"):
        read_calibration(renamed)
    plain = write_opencv(tmp_path / "rig.yaml", projection_matrices(CAL), 640, 480)
    marked = tmp_path / "marked.yaml"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())  # as a Windows editor saves it: OpenCV refuses the mark
    assert read_calibration(marked) == read_calibration(plain)


def test_a_file_for_the_other_option_says_which_option_takes_it(tmp_path):
    maps = tmp_path / "maps.npz"
    np.savez(maps, x=np.zeros(1))
    with pytest.raises(InputError, match=r"maps.npz is a zip/npz archive.*go to --rectify"):
        read_calibration(maps)
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_calibration(folder)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(InputError, match="the JSON holds a list, not a calibration"):
        read_calibration(listing)


def test_focal_lengths_normalised_to_the_image_size_get_a_warning(tmp_path):
    """fx 0.58 (a fraction of the width, as some tools keep intrinsics) was read as 0.58 px: depths of 8.7 mm where
    the scene lay 1 m away, without a word."""
    normalised = {"fx_px": 0.58, "fy_px": 0.77, "cx0_px": 0.5, "cx1_px": 0.5, "cy_px": 0.5, "baseline_m": 0.12}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**normalised, "width_px": 640, "height_px": 480}))
    with pytest.warns(CalibrationUnitWarning, match=r"c.json: focal lengths of 0.58 px \(fx\) and 0.77 px \(fy\)"):
        assert read_calibration(path).fx_px == 0.58
    matrices = projection_matrices(Calibration(**normalised))
    with pytest.warns(CalibrationUnitWarning, match="fx and cx times the width, fy and cy times the height"):
        read_calibration(write_opencv(tmp_path / "c.yaml", {"Q": matrices["Q"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_calibration(write_calibration(tmp_path / "ok.json", CAL))


def test_a_negative_baseline_names_the_file_and_its_unit(tmp_path):
    middlebury = tmp_path / "calib.txt"
    cam = "[500 0 159.5; 0 500 119.5; 0 0 1]"
    middlebury.write_text(f"cam0={cam}\ncam1={cam}\nbaseline=-100\n")
    with pytest.raises(InputError, match=r"calib.txt: baseline=-100 .*millimetres.*must be > 0"):
        read_calibration(middlebury)
    q = projection_matrices(CAL)["Q"]
    q[3, 2] *= -1  # the other sign convention, or left and right swapped
    path = write_opencv(tmp_path / "q.yaml", {"Q": q}, 640, 480)
    with pytest.raises(InputError, match=r"q.yaml: Q gives a baseline of -0.1234 .*swapped"):
        read_calibration(path)


@pytest.mark.parametrize("field", ["fx_px", "fy_px", "cx0_px", "cx1_px", "cy_px", "baseline_m"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_calibration_values_are_refused_by_name(field, value):
    with pytest.raises(InputError, match=rf"calibration: {field} must be a finite number, got {value}"):
        dataclasses.replace(CAL, **{field: value})


def test_a_calibration_value_too_large_for_a_float_is_refused_by_name():
    with pytest.raises(InputError, match="calibration: baseline_m must be a finite number"):  # was an OverflowError
        dataclasses.replace(CAL, baseline_m=10**400)


def test_a_file_with_non_finite_values_is_refused_naming_the_file_and_field(tmp_path):
    good, nan_cx = "[500 0 159.5; 0 500 119.5; 0 0 1]", "[500 0 nan; 0 500 119.5; 0 0 1]"
    path = tmp_path / "calib.txt"
    path.write_text(f"cam0={nan_cx}\ncam1={nan_cx}\nbaseline=100\n")
    with pytest.raises(InputError, match=r"calib.txt: cx0_px must be a finite number, got nan"):
        read_calibration(path)
    path.write_text(f"cam0={good}\ncam1={good}\nbaseline=inf\n")
    with pytest.raises(InputError, match=r"calib.txt: baseline_m must be a finite number, got inf"):
        read_calibration(path)
    matrices = projection_matrices(CAL)
    matrices["P1"][1, 2] = matrices["P2"][1, 2] = np.nan
    yaml = write_opencv(tmp_path / "p.yaml", matrices, 640, 480)
    with pytest.raises(InputError, match=r"p.yaml: the projection matrix P1 holds values that are not finite"):
        read_calibration(yaml)
    json_file = tmp_path / "c.json"
    json_file.write_text('{"fx_px": 1, "fy_px": 1, "cx0_px": "nan", "cx1_px": 1, "cy_px": 1, "baseline_m": 1}')
    with pytest.raises(InputError, match=r"c.json: cx0_px must be a finite number, got nan"):
        read_calibration(json_file)


def test_writer_errors(tmp_path, capfd):
    with pytest.raises(OutputError, match="must end in .json, .yaml"):
        write_calibration(tmp_path / "c.txt", CAL)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError) as info:  # it said "[Errno 17] File exists: '.../file'"
        write_calibration(blocker / "c.json", CAL)
    assert str(info.value) == f"cannot write {blocker / 'c.json'}: {blocker} is a file, not a folder"
    capfd.readouterr()
    missing = tmp_path / "missing_dir" / "x" / "c.yaml"
    with pytest.raises(OutputError) as info:  # OpenCV also printed "Can't open file: '.../.c.partial-...yaml'"
        write_opencv(missing, {"P1": np.eye(3)})
    assert str(info.value) == f"cannot write {missing}: No such file or directory"
    with pytest.raises(OutputError) as info:
        write_opencv(blocker / "c.yaml", {"P1": np.eye(3)})
    assert str(info.value) == f"cannot write {blocker / 'c.yaml'}: {blocker} is a file, not a folder"
    assert capfd.readouterr().err == ""


def test_an_opencv_file_that_fails_halfway_is_not_left_under_its_name(tmp_path):
    # written in place, what FileStorage had written before the error stayed as stereo.yaml (rtstereo calibrate's)
    matrices = {"P1": np.eye(3, 4), "P2": "not a matrix"}
    with pytest.raises(ValueError):
        write_opencv(tmp_path / "stereo.yaml", matrices, 640, 480)
    assert list(tmp_path.iterdir()) == []


NOT_UTF8_SCRIPT = """
import os, sys
from pathlib import Path
import numpy as np
from rtstereo.io.calibration import read_opencv, write_opencv

folder = Path(os.fsdecode(os.fsencode(sys.argv[1]) + b"/caf\\xe9"))
folder.mkdir()
for suffix in (".yaml", ".xml", ".json"):
    path = write_opencv(folder / f"rig{suffix}", {"Q": np.arange(16.0).reshape(4, 4)}, 640, 480)
    found = read_opencv(path)
    listed = os.listdir(os.fsencode(folder)).count(os.fsencode(path.name))
    print(suffix, found.size_wh, float(found.matrices["Q"][3, 3]), listed)
"""


def test_opencv_files_under_a_path_that_is_not_utf8_are_written_and_read_not_a_crash(tmp_path):
    """Linux names are bytes: cv2.FileStorage crashed (a segmentation fault) on a name that is not UTF-8."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", NOT_UTF8_SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.splitlines() == [f"{suffix} (640, 480) 15.0 1" for suffix in (".yaml", ".xml", ".json")]


def test_a_q_file_of_a_vertical_rig_that_keeps_its_pose_t_is_refused_as_vertical(tmp_path):
    """Q with T of cameras one above the other was read as a horizontal rig of the same baseline, with no word (the
    P1/P2 of the same rig are refused): T tells them apart where Q cannot, as OpenCV writes one Q for both."""
    k, d = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), np.zeros(5)
    read = {}
    for axis, t in (("horizontal", [-0.1, 0.0, 0.0]), ("vertical", [0.0, -0.1, 0.0])):
        t = np.array(t).reshape(3, 1)
        q = cv2.stereoRectify(k, d, k, d, (640, 480), np.eye(3), t, flags=cv2.CALIB_ZERO_DISPARITY)[4]
        read[axis] = read_calibration(write_opencv(tmp_path / f"{axis}_q.yaml", {"Q": q}, 640, 480))
        with_pose = write_opencv(tmp_path / f"{axis}.yaml", {"Q": q, "R": np.eye(3), "T": t}, 640, 480)
        if axis == "horizontal":
            assert read_calibration(with_pose).baseline_m == pytest.approx(0.1)
        else:
            with pytest.raises(InputError, match=r"displaced vertically \(T = 0, -0.1, 0\).*vertical stereo"):
                read_calibration(with_pose)
    assert read["vertical"] == read["horizontal"]  # Q alone cannot tell them: documented, not guessed


def _fisheye_rig(tmp_path, name: str, **entries: str):
    """A 320x240 fisheye rig (cv2.fisheye's k1..k4, strong), side by side and parallel, as an OpenCV file."""
    k = np.array([[160.0, 0, 159.5], [0, 160.0, 119.5], [0, 0, 1]])
    d = np.array([0.3, -0.05, 0.02, -0.004])
    rig = {"K1": k, "D1": d, "K2": k, "D2": d, "R": np.eye(3), "T": np.array([[-0.1], [0.0], [0.0]])}
    return write_opencv(tmp_path / name, rig, 320, 240, **entries), k, d


def test_rectify_reads_a_fisheye_rig_whose_file_names_its_lens_model(tmp_path):
    """D1/D2 of cv2.fisheye (k1..k4) were read as pinhole k1, k2, p1, p2 whatever the file said: the rectified views
    sampled the raw ones pixels away from where each rectified pixel looks. A distortion_model entry now tells."""
    named, k, d = _fisheye_rig(tmp_path, "fisheye.yaml", distortion_model="equidistant")
    unnamed = _fisheye_rig(tmp_path, "unnamed.yaml")[0]
    off_px = {}
    for path in (named, unnamed):
        rectifier = Rectifier.from_file(path)
        cal = rectifier.calibration
        rows, columns = np.mgrid[20:240:40, 20:320:40]
        rays = np.stack([(columns - cal.cx0_px) / cal.fx_px, (rows - cal.cy_px) / cal.fy_px, np.ones(rows.shape)], -1)
        # the parallel rig's rectification turns neither camera: each rectified pixel looks along its own ray
        raw = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, d)[0].reshape(-1, 2)
        map_x, map_y = cv2.convertMaps(*rectifier.maps_left, cv2.CV_32FC1)
        sampled = np.stack([map_x[rows, columns].ravel(), map_y[rows, columns].ravel()], -1)
        off_px[path.name] = np.abs(sampled - raw).max()
    assert off_px["fisheye.yaml"] < 0.1, off_px
    assert off_px["unnamed.yaml"] > 2, off_px  # read as pinhole: what the docs warn of


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"distortion_model": "omnidir"}, "lens model 'omnidir' is not one rtstereo rectifies"),
        ({"distortion_model": "fisheye", "D1": np.zeros(5)}, "fisheye, whose distortion is 4 coefficients.*D1 holds 5"),
    ],
)
def test_rectify_refuses_a_lens_model_it_cannot_use(tmp_path, entries, message):
    k = np.array([[160.0, 0, 159.5], [0, 160.0, 119.5], [0, 0, 1]])
    rig = {"K1": k, "D1": np.zeros(4), "K2": k, "D2": np.zeros(4), "R": np.eye(3), "T": np.array([-0.1, 0.0, 0.0])}
    rig.update({name: value for name, value in entries.items() if name.startswith("D")})
    texts = {name: value for name, value in entries.items() if not name.startswith("D")}
    path = write_opencv(tmp_path / "rig.yaml", rig, 320, 240, **texts)
    with pytest.raises(InputError, match=message):
        Rectifier.from_file(path)


def test_rectify_names_photos_turned_by_their_exif_tag_for_images_of_the_turned_size():
    """Photos of a rig calibrated as stored, read upright by their EXIF tag, were told only to use 'images of the
    calibrated size' where --calib names the turn: the maps now say it too, and keep the old advice otherwise."""
    k, d = np.array([[100.0, 0, 79.5], [0, 100.0, 59.5], [0, 0, 1]]), np.zeros(5)
    p1 = np.hstack([k, np.zeros((3, 1))])
    p2 = p1.copy()
    p2[0, 3] = -10.0
    rectifier = Rectifier.from_matrices(k, d, k, d, np.eye(3), np.eye(3), p1, p2, (160, 120))
    turned = np.zeros((160, 120, 3), np.uint8)
    with pytest.raises(InputError, match=r"is 160x120 but .* for 120x160 \(HxW\) images, the same turned 90 "):
        rectifier.rectify(turned, turned)
    with pytest.raises(InputError, match=r"for 120x160 \(HxW\) images: use images of the calibrated size"):
        rectifier.rectify(np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320, 3), np.uint8))


def test_rectify_warns_of_cameras_whose_principal_point_belongs_to_another_image_size(tmp_path):
    """A rig file of 160x120 cameras recording 320x240 images rectified 320x240 pairs wrongly, with depths 2x too near,
    without a word; a principal point outside the middle half of the size recorded now gets a warning."""
    k = np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]])
    rig = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "R": np.eye(3), "T": np.array([-0.1, 0.0, 0.0])}
    with pytest.warns(
        CalibrationWarning,
        match=r"K1's principal point \(79.5, 59.5\) px .* the 240x320 \(HxW\) "
        r"images the file records \(it is the centre of about 120x160 ones\)",
    ):
        Rectifier.from_file(write_opencv(tmp_path / "other.yaml", rig, 320, 240))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Rectifier.from_file(write_opencv(tmp_path / "own.yaml", rig, 160, 120))
