"""``--fit crop`` (``fit="crop"``): a network fixed at one size runs the centred window of its aspect ratio, cut alike
from both views, as RT-Stereo's live_stereo.py ran 720p frames on its 480x672 file.

The network here is a tiny ONNX block matcher in the signature of RT-Stereo's ``model.onnx`` (``left``, ``right``
``(1, 3, H, W)`` to ``output`` ``(1, H, W)``): for each pixel the shift ``0 .. LEVELS - 1`` with the least colour
difference. Pairs at twice its size shrink by exactly 2 (2x2 averages), so an even disparity ``d`` of the pair is
``d / 2`` to it, matched exactly, and comes back as ``d``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.conftest import run_cli

import rtstereo
from rtstereo.errors import InputError
from rtstereo.geometry import CalibrationWarning, result_point_cloud
from rtstereo.io import read_disparity, write_image
from rtstereo.runtime.predictor import ResizeWarning, crop_window, window_of
from rtstereo.types import Calibration

NET_HW = (32, 48)
LEVELS = 8


def matcher_onnx(path: Path, size_hw: tuple[int, int] = NET_HW, levels: int = LEVELS) -> Path:
    """A block matcher of one pixel in the seed's signature: ``argmin_k sum_c |left(x) - right(x - k)|``."""
    height, width = size_hw
    nodes, costs = [], []
    initializers = [
        numpy_helper.from_array(np.array([0, 0, 0, 0], np.int64), "zero_starts"),
        numpy_helper.from_array(np.array([1, 3, height, width], np.int64), "ends"),
        numpy_helper.from_array(np.arange(levels, dtype=np.float32).reshape(1, levels, 1, 1), "levels"),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    for k in range(levels):
        initializers.append(numpy_helper.from_array(np.array([0, 0, 0, k, 0, 0, 0, 0], np.int64), f"pads{k}"))
        nodes += [
            helper.make_node("Pad", ["right", f"pads{k}"], [f"padded{k}"]),
            helper.make_node("Slice", [f"padded{k}", "zero_starts", "ends"], [f"shifted{k}"]),
            helper.make_node("Sub", ["left", f"shifted{k}"], [f"diff{k}"]),
            helper.make_node("Abs", [f"diff{k}"], [f"abs{k}"]),
            helper.make_node("ReduceSum", [f"abs{k}"], [f"cost{k}"], axes=[1], keepdims=1),
        ]
        costs.append(f"cost{k}")
    nodes += [
        helper.make_node("Concat", costs, ["costs"], axis=1),
        helper.make_node("ArgMin", ["costs"], ["best"], axis=1, keepdims=0),
        helper.make_node("Cast", ["best"], ["shift"], to=TensorProto.FLOAT),
        # the soft-argmin's levels, where rtstereo reads the file's range from
        helper.make_node("ReduceSum", ["levels"], ["levels_sum"], keepdims=0),
        helper.make_node("Mul", ["levels_sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["shift", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "matcher",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, height, width]) for n in ("left", "right")],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, height, width])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def shifted_pair(size_hw: tuple[int, int], disparity_px, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noise pair whose left pixel at column ``x`` shows in the right view at ``x - disparity_px(x)`` (nearer
    surfaces, of larger disparity, drawn over farther ones); what no left pixel covers is fresh noise."""
    height, width = size_hw
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    right = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    columns = np.arange(width)
    shifts = np.array([disparity_px(x) for x in columns])
    for x in columns[np.argsort(shifts, kind="stable")]:  # farthest first
        if x - shifts[x] >= 0:
            right[:, x - shifts[x]] = left[:, x]
    return left, right


@pytest.fixture(scope="module")
def matcher(tmp_path_factory) -> Path:
    return matcher_onnx(tmp_path_factory.mktemp("matcher") / "model.onnx")


def _load(path: Path, fit: str = "crop"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the seed file's one warning: no metadata
        return rtstereo.load(str(path), fit=fit)


def test_crop_window_keeps_the_networks_aspect_ratio_and_the_middle():
    assert crop_window((720, 1280), (480, 672)) == (136, 0, 1008, 720)  # live_stereo.py's 720p on model.onnx
    assert crop_window((64, 160), NET_HW) == (32, 0, 96, 64)
    assert crop_window((80, 96), NET_HW) == (0, 8, 96, 64)
    assert crop_window((64, 96), NET_HW) == (0, 0, 96, 64)
    assert crop_window((65, 96), NET_HW) == (0, 0, 96, 64)  # 32.5 rows to the network: one cut
    assert crop_window((33, 49), NET_HW) == (0, 0, 49, 33)  # the network's aspect ratio to a pixel: nothing cut
    assert crop_window((1, 100), (672, 48)) == (49, 0, 1, 1)  # a window of one pixel at least, not of none
    for size_hw in ((720, 1280), (81, 97), (31, 1000), (500, 49)):
        x0, y0, width, height = crop_window(size_hw, NET_HW)
        assert crop_window((height, width), NET_HW) == (0, 0, width, height), size_hw  # a window is kept whole


def test_a_constant_disparity_at_twice_the_networks_width_comes_back(matcher):
    """80x96: twice the network's width, taller than its aspect ratio: the middle 64 rows run, each row's d = 8 px
    (4 px to the network) comes back as 8 px on the window's pixels."""
    left, right = shifted_pair((80, 96), lambda x: 8)
    with pytest.warns(ResizeWarning, match=r"cuts the centred 64x96 window at x=0, y=8 of the 80x96 input"):
        result = _load(matcher).predict(left, right)
    assert result.disparity_px.shape == (64, 96)
    assert result.preparation["crop"] == {"input_size_hw": [80, 96], "x0_px": 0, "y0_px": 8, "width_px": 96,
                                          "height_px": 64}  # fmt: skip
    assert result.input_size_hw == (64, 96) and result.network_size_hw == NET_HW and result.disparity_scale == 2.0
    np.testing.assert_array_equal(result.left, left[8:72])
    # columns right of the shift (the band left of it has no match in the right view) and of the upsampling's edge
    np.testing.assert_allclose(result.disparity_px[:, 12:-2], 8.0, atol=1e-4)


def test_live_stereo_py_sizes_720p_on_a_480x672_file(tmp_path):
    """RT-Stereo's case: 720x1280 frames on a 480x672 file run their 720x1008 middle scaled by 2/3; 12 px of the
    pair are 8 px to the network (the 3-to-2 area weights repeat every 3 px, so the shift is exact) and 12 px back."""
    model = _load(matcher_onnx(tmp_path / "model.onnx", (480, 672), levels=12))
    left, right = shifted_pair((720, 1280), lambda x: 12)
    with pytest.warns(ResizeWarning, match="window at x=136, y=0 of the 720x1280 input.*rescaled by 1.5000"):
        result = model.predict(left, right)
    assert result.disparity_px.shape == (720, 1008) and result.preparation["crop"]["x0_px"] == 136
    np.testing.assert_allclose(result.disparity_px[:, 30:-3], 12.0, atol=1e-4)


def test_the_window_is_the_middle_of_the_pair_not_shifted(matcher):
    """64x160: the window is columns 32..127; the left half of the pair lies at 4 px, the right half at 10 px: the map's
    column j is the pair's column 32 + j. (Resized, the pair is stretched to 48 columns, 0.3 of its width.)"""
    left, right = shifted_pair((64, 160), lambda x: 4 if x < 80 else 10)
    with pytest.warns(ResizeWarning, match=r"window at x=32, y=0 of the 64x160 input"):
        result = _load(matcher).predict(left, right)
    assert result.disparity_px.shape == (64, 96) and result.preparation["crop"]["x0_px"] == 32
    np.testing.assert_array_equal(result.left, left[:, 32:128])
    # pair columns 40..69 (those right of them, up to 79, are hidden in the right view by the nearer half)
    np.testing.assert_allclose(result.disparity_px[:, 8:38], 4.0, atol=1e-4)
    np.testing.assert_allclose(result.disparity_px[:, 60:94], 10.0, atol=1e-4)  # pair columns 92..125


def test_depth_and_points_use_the_principal_point_moved_with_the_window(matcher):
    """By hand, pixel (row 10, column 60) of the window, the pair's (10, 92): d = 10 px, Z = 0.1 m * 100 px / 10 px
    = 1 m, X = (92 - 80) px * Z / 100 px = 0.12 m, Y = (10 - 20) px * Z / 100 px = -0.1 m."""
    left, right = shifted_pair((64, 160), lambda x: 4 if x < 80 else 10)
    calibration = Calibration(100, 100, 80, 80, 20, 0.1, width_px=160, height_px=64)
    with pytest.warns(ResizeWarning):
        result = _load(matcher).predict(left, right, calibration)
    assert (result.calibration.cx0_px, result.calibration.cx1_px, result.calibration.cy_px) == (48, 48, 20)
    assert (result.calibration.width_px, result.calibration.height_px) == (96, 64)
    cloud = result_point_cloud(result)
    index = 10 * 96 + 60
    (point,) = cloud.points_m[cloud.pixel_index == index]
    np.testing.assert_allclose(point, [0.12, -0.1, 1.0], atol=1e-5)


def test_resize_stays_the_default_and_crop_is_refused_for_models_of_any_size(matcher):
    left, right = shifted_pair((64, 160), lambda x: 4)
    with pytest.warns(ResizeWarning, match="the views are stretched.*or --fit crop"):
        result = _load(matcher, fit="resize").predict(left, right)
    assert result.disparity_px.shape == (64, 160) and result.preparation == {}
    with pytest.raises(InputError, match=r"^--fit crop \(fit='crop'\) is for a network fixed at one size.*sgbm takes"):
        rtstereo.load("sgbm", fit="crop")
    with pytest.raises(InputError, match=r"^fit: expected one of resize, crop, got 'centre'"):
        rtstereo.load("sgbm", fit="centre")
    with pytest.warns(ResizeWarning) as caught:  # the window at the network's size: nothing resized
        result = _load(matcher).predict(left[:32], right[:32])
    assert str(caught[-1].message).endswith("of the 32x160 input from both views; the disparity is that window's (at "
                                            "its own resolution)")  # fmt: skip
    assert result.disparity_px.shape == NET_HW and result.disparity_scale == 1.0
    sgbm = rtstereo.load("sgbm")
    with pytest.raises(InputError, match="sgbm takes pairs of any size"):
        sgbm.fit = "crop"
    assert sgbm.fit == "resize"


def test_the_hybrid_refuses_crop_set_on_it_rather_than_ignoring_it():
    hybrid = rtstereo.load("default")
    with pytest.raises(InputError, match="takes pairs of any size"):
        hybrid.fit = "crop"
    assert hybrid.fit == "resize"


def test_a_hybrid_with_a_network_of_one_size_neither_offers_nor_misnames_crop(matcher):
    """A hybrid whose network is fixed at one size warned "or --fit crop (...) runs their centred window", and refused
    fit="crop" as "hybrid takes pairs of any size, nothing to crop": each sent the user to the other."""
    left, right = shifted_pair((64, 160), lambda x: 4)
    hybrid = rtstereo.load("hybrid", network=str(matcher), max_disp=16)
    with pytest.warns(ResizeWarning, match="the views are stretched") as caught:
        hybrid.predict(left, right)
    assert not [w for w in caught if "--fit crop" in str(w.message)]
    said = (
        "--fit crop (fit='crop') is not for the hybrid: its SGBM matches the whole pair, and its network, fixed at "
        "32x48 (HxW), runs the pair resized to that size (stretched where the aspect ratio differs): "
    )
    with pytest.raises(InputError) as refused:
        hybrid.fit = "crop"
    assert str(refused.value).startswith(said) and str(refused.value).endswith(" (rtstereo export)")
    with pytest.raises(InputError) as refused:
        rtstereo.load("hybrid", network=str(matcher), max_disp=16, fit="crop")
    assert str(refused.value).startswith(said)
    with pytest.warns(ResizeWarning, match="or --fit crop"):  # alone, it offers it
        _load(matcher, fit="resize").predict(left, right)


def test_lr_check_with_crop_checks_the_windows_maps(matcher):
    left, right = shifted_pair((64, 160), lambda x: 4 if x < 80 else 10)
    model = _load(matcher)
    with pytest.warns(ResizeWarning) as caught:
        checked, mask = rtstereo.confidence.lr_check(model, rtstereo.StereoPair(left, right))
    # the mirrored window's pass was said to resize "the 64x96 input" as well
    assert [str(w.message) for w in caught if w.category is ResizeWarning] == [
        "gwcnet-gc runs at a fixed 32x48 (HxW): --fit crop cuts the centred 64x96 window at x=32, y=0 of the 64x160 "
        "input from both views and resizes it; the disparity is that window's (at its own resolution), rescaled by "
        "2.0000"
    ]
    assert checked.disparity_px.shape == mask.shape == (64, 96)
    assert mask[:, 8:38].all()


def test_the_window_of_a_pair_whose_calibration_records_half_its_size_is_scaled_then_cut():
    """The calibration of 32x80 images, the pair 64x160: scaled by 2 first (fx 100, cx (39.5 + 0.5) * 2 - 0.5 = 79.5,
    cy 19.5), then cut at x = 32 (cx 47.5). It was cut at its own size: cx 7.5, and a 96-wide window of 80."""
    left, right = shifted_pair((64, 160), lambda x: 4)
    half = Calibration(50, 50, 39.5, 39.5, 9.5, 0.1, width_px=80, height_px=32)
    crop = {"input_size_hw": [64, 160], "x0_px": 32, "y0_px": 0, "width_px": 96, "height_px": 64}
    window = window_of(rtstereo.StereoPair(left, right, calibration=half), crop).calibration
    assert (window.fx_px, window.cx0_px, window.cx1_px, window.cy_px) == (100, 47.5, 47.5, 19.5)
    assert (window.width_px, window.height_px) == (96, 64)


def test_a_crop_past_the_recorded_images_is_refused():
    cal = Calibration(100, 100, 79.5, 79.5, 19.5, 0.1, width_px=160, height_px=64)
    with pytest.raises(InputError, match=r"^a 64x96 \(HxW\) crop at \(80, 0\) runs past the 64x160 images the calibr"):
        cal.cropped(80, 0, 96, 64)
    with pytest.raises(InputError, match=r"a 65x96 \(HxW\) crop at \(0, 0\) runs past the 64x160 images"):
        cal.cropped(0, 0, 96, 65)
    assert cal.cropped(64, 0, 96, 64).cx0_px == 15.5  # up to the last column


def test_lr_check_with_crop_on_a_calibration_of_half_the_pairs_size(matcher):
    """lr_check cut the pair again with its calibration as given, at its recorded 32x80: past its images."""
    left, right = shifted_pair((64, 160), lambda x: 4 if x < 80 else 10)
    half = Calibration(50, 50, 39.5, 39.5, 9.5, 0.1, width_px=80, height_px=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResizeWarning)
        warnings.simplefilter("ignore", CalibrationWarning)
        pair = rtstereo.StereoPair(left, right, calibration=half)
        checked, mask = rtstereo.confidence.lr_check(_load(matcher), pair)
    assert checked.disparity_px.shape == mask.shape == (64, 96) and mask[:, 8:38].all()
    assert (checked.calibration.cx0_px, checked.calibration.width_px) == (47.5, 96)


def _pair_files(folder: Path, size_hw, disparity_px) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    left, right = shifted_pair(size_hw, disparity_px)
    write_image(folder / "left.png", left)
    write_image(folder / "right.png", right)
    return folder / "left.png", folder / "right.png"


def test_predict_fit_crop_writes_the_windows_map_and_says_where_it_lies(matcher, tmp_path, capsys):
    left, right = _pair_files(tmp_path / "pair", (64, 160), lambda x: 4 if x < 80 else 10)
    calib = tmp_path / "calib.txt"
    calib.write_text("cam0=[100 0 80; 0 100 20; 0 0 1]\ncam1=[100 0 80; 0 100 20; 0 0 1]\ndoffs=0\nbaseline=100\n"
                     "width=160\nheight=64\n")  # fmt: skip
    with pytest.warns(ResizeWarning, match="--fit crop cuts the centred 64x96 window at x=32, y=0 of the 64x160 input"):
        code, _, err = run_cli(
            capsys, "predict", left, right, "--model", matcher, "--fit", "crop", "--calib", calib,
            "--format", "pfm,json,depth_npy", "-o", tmp_path / "out/",
        )  # fmt: skip
    assert code == 0, err
    disparity = read_disparity(tmp_path / "out" / "left.pfm")
    assert disparity.shape == (64, 96)
    np.testing.assert_allclose(disparity[:, 60:94], 10.0, atol=1e-4)
    record = json.loads((tmp_path / "out" / "left.json").read_text())
    assert record["preparation"]["crop"] == {"input_size_hw": [64, 160], "x0_px": 32, "y0_px": 0, "width_px": 96,
                                             "height_px": 64}  # fmt: skip
    assert record["calibration"]["cx0_px"] == 48
    depth = np.load(tmp_path / "out" / "left_depth.npy")
    np.testing.assert_allclose(depth[10, 60], 1.0, rtol=1e-5)  # 0.1 m * 100 px / 10 px


def test_predict_fit_crop_with_a_model_of_any_size_is_a_usage_error(tmp_path, capsys):
    left, right = _pair_files(tmp_path / "pair", (32, 96), lambda x: 4)
    code, _, err = run_cli(capsys, "predict", left, right, "--model", "sgbm", "--fit", "crop")
    assert code == 2
    assert err.count("\n") == 1 and "rtstereo predict: error: --fit crop (fit='crop') is for a network fixed" in err


def test_a_batch_rerun_with_another_fit_is_refused_not_skipped(matcher, tmp_path, capsys):
    """A batch skips the pairs whose outputs exist: without --fit in their record, a rerun without --fit crop kept
    the windows' maps as the whole pairs'."""
    left, right = _pair_files(tmp_path / "pair", (64, 160), lambda x: 4)
    (tmp_path / "L").mkdir(), (tmp_path / "R").mkdir()
    left.rename(tmp_path / "L" / "a.png"), right.rename(tmp_path / "R" / "a.png")
    argv = ["predict", tmp_path / "L", tmp_path / "R", "--model", matcher, "-o", tmp_path / "out/"]
    assert run_cli(capsys, *argv, "--fit", "crop")[0] == 0
    code, out, err = run_cli(capsys, *argv, "--fit", "crop")
    assert code == 0 and "1 skipped" in out, err  # the same options: skipped
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "made with another fit to a fixed-size network (--fit)" in err, err


def test_video_fit_crop_writes_the_windows_maps_and_records_the_window(matcher, tmp_path, run_cli):
    for index in range(2):
        left, right = shifted_pair((64, 160), lambda x: 4 if x < 80 else 10, seed=index)
        for side, image in (("L", left), ("R", right)):
            (tmp_path / side).mkdir(exist_ok=True)
            write_image(tmp_path / side / f"frame{index}.png", image)
    code, _, err = run_cli(
        "video", tmp_path / "L", tmp_path / "R", "--model", matcher, "--fit", "crop", "-o", tmp_path / "o.mp4",
        "--output-prefix", tmp_path / "png" / "d", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    disparity = read_disparity(tmp_path / "png" / "d_00001.png")
    assert disparity.shape == (64, 96)
    np.testing.assert_allclose(disparity[:, 60:94], 10.0, atol=1 / 256)
    summary = json.loads((tmp_path / "o.json").read_text())
    assert summary["frame_size_hw"] == [64, 96]
    assert summary["preparation"]["crop"] == {"input_size_hw": [64, 160], "x0_px": 32, "y0_px": 0, "width_px": 96,
                                              "height_px": 64}  # fmt: skip


def test_live_fit_crop_on_a_recording_writes_the_windows_maps(matcher, tmp_path, run_cli):
    import cv2

    left, right = shifted_pair((64, 160), lambda x: 10)
    writer = cv2.VideoWriter(str(tmp_path / "sbs.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 64))
    for _ in range(3):
        writer.write(np.concatenate([left, right], axis=1)[:, :, ::-1])
    writer.release()
    code, _, err = run_cli(
        "live", "--camera", f"uvc:{tmp_path / 'sbs.avi'}", "--model", matcher, "--fit", "crop",
        "-o", tmp_path / "live.mp4", "--output-prefix", tmp_path / "png" / "d", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert read_disparity(tmp_path / "png" / "d_00000.png").shape == (64, 96)
    summary = json.loads((tmp_path / "live.json").read_text())
    assert summary["frame_size_hw"] == [64, 96] and summary["preparation"]["crop"]["x0_px"] == 32


def test_the_rectifications_unseen_pixels_are_cut_to_the_window_a_cropped_map_is_of():
    """With --rectify and --fit crop the map is the window's, while the mask of the rectification's black fill is the
    frame's: the mask was squeezed whole into the window (its 20-px left band became 10 px of a 40-px window), so
    pixels the camera saw lost their disparity and the window's own fill kept it."""
    from rtstereo.rectify import without_unseen_pixels
    from rtstereo.types import DisparityResult

    valid = np.ones((20, 80), bool)
    valid[:, :30] = False  # the fill: the frame's first 30 columns, of which the window (x 20..59) holds 10
    crop = {"input_size_hw": [20, 80], "x0_px": 20, "y0_px": 0, "width_px": 40, "height_px": 20}
    result = DisparityResult(disparity_px=np.full((20, 40), 5.0, np.float32), preparation={"crop": crop})
    masked = without_unseen_pixels(result, valid).disparity_px
    assert np.isnan(masked[:, :10]).all() and np.isfinite(masked[:, 10:]).all()
    # at half the frame's size (--size after --rectify): the mask is brought to the frame's size, then cut
    crop_half = {"input_size_hw": [10, 40], "x0_px": 10, "y0_px": 0, "width_px": 20, "height_px": 10}
    result = DisparityResult(disparity_px=np.full((10, 20), 5.0, np.float32), preparation={"crop": crop_half})
    masked = without_unseen_pixels(result, valid).disparity_px
    assert np.isnan(masked[:, :5]).all() and np.isfinite(masked[:, 5:]).all()
