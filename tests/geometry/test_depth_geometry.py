"""Disparity -> depth -> points: the closed form on real calibrations, resize invariance, cleaning."""

from __future__ import annotations

import dataclasses
import re
import warnings

import cv2
import numpy as np
import pytest

from rtstereo.errors import InputError
from rtstereo.geometry import (
    CalibrationWarning,
    calibration_for_size,
    depth_from_disparity,
    disparity_from_depth,
    flying_pixel_mask,
    point_cloud,
    points_from_depth,
    require_calibration,
    result_point_cloud,
)
from rtstereo.io.calibration import read_calibration
from rtstereo.io.disparity import read_disparity
from rtstereo.types import Calibration, DisparityResult

# Realistic Middlebury-2014-style calibration for a 450x375 view (the shared 2003 scenes have none):
# focal length and principal points in pixels, doffs = cx1 - cx0, baseline in millimetres.
MIDDLEBURY_CALIB = """cam0=[1038.018 0 225.308; 0 1038.018 187.413; 0 0 1]
cam1=[1038.018 0 257.826; 0 1038.018 187.413; 0 0 1]
doffs=32.518
baseline=193.001
width=450
height=375
ndisp=64
isint=0
vmin=10
vmax=55
"""


def _cal(**kw) -> Calibration:
    values = dict(
        fx_px=700.0,
        fy_px=700.0,
        cx0_px=320.0,
        cx1_px=320.0,
        cy_px=240.0,
        baseline_m=0.1,
    )  # no recorded size: toy maps of any shape take it as it is
    values.update(kw)
    return Calibration(**values)


def _relative_error_of_half_size(disparity_px: np.ndarray, calibration: Calibration):
    """Depth at full size vs depth after resizing the input by 0.5 (disparity x 0.5, calibration scaled).

    Returns ``(nearest, area)``: relative depth differences for a nearest-neighbour resize (exactly the
    same pixels: the convention must agree exactly) and an area resize (averaging 2x2 blocks, as
    cv2.resize does to images) compared with the mean full-size depth of each block.
    """
    full = depth_from_disparity(disparity_px, calibration)
    height, width = disparity_px.shape
    size = (width // 2, height // 2)
    # Exactly half (what INTER_NEAREST samples); the map is (W // 2, H // 2), which the half size
    # recorded (rounded) can miss by a pixel, so the recorded size is dropped.
    half_cal = dataclasses.replace(calibration.scaled(0.5), width_px=0, height_px=0)
    nearest = cv2.resize(np.nan_to_num(disparity_px, nan=0.0), size, interpolation=cv2.INTER_NEAREST) * 0.5
    depth_nearest = depth_from_disparity(np.where(nearest > 0, nearest, np.nan), half_cal)
    reference_nearest = full[: size[1] * 2 : 2, : size[0] * 2 : 2]
    # Area: only blocks whose four pixels are all valid, so no hole is averaged in.
    valid = np.isfinite(disparity_px[: size[1] * 2, : size[0] * 2]).reshape(size[1], 2, size[0], 2).all(axis=(1, 3))
    area = cv2.resize(np.nan_to_num(disparity_px, nan=0.0), size, interpolation=cv2.INTER_AREA) * 0.5
    depth_area = depth_from_disparity(np.where(valid, area, np.nan), half_cal)
    block_depth = full[: size[1] * 2, : size[0] * 2].reshape(size[1], 2, size[0], 2).mean(axis=(1, 3))
    rel_nearest = np.abs(depth_nearest / reference_nearest - 1)
    rel_area = np.abs(depth_area / block_depth - 1)
    return rel_nearest[np.isfinite(rel_nearest)], rel_area[np.isfinite(rel_area)]


# --- feature: the closed form on real calibration files ------------------------------------------------


def _cones_ground_truth(shared, tmp_path):
    """Middlebury 2003 cones' ground truth (``../shared``), and :data:`MIDDLEBURY_CALIB` read from a calib.txt."""
    calib_file = tmp_path / "calib.txt"
    calib_file.write_text(MIDDLEBURY_CALIB)
    gt = read_disparity(shared("data", "real", "middlebury2003", "cones") / "disp2.png", scale=4)
    return gt, read_calibration(calib_file)


def test_middlebury_gt_depth_matches_closed_form_and_survives_half_size(shared, tmp_path):
    gt, calibration = _cones_ground_truth(shared, tmp_path)
    depth = depth_from_disparity(gt, calibration)
    closed_form = 193.001 / 1000 * 1038.018 / (gt.astype(np.float64) + 32.518)
    valid = np.isfinite(gt)
    np.testing.assert_allclose(depth[valid], closed_form[valid], rtol=1e-6)
    assert np.isnan(depth[~valid]).all()
    rel_nearest, rel_area = _relative_error_of_half_size(gt, calibration)
    assert rel_nearest.max() < 1e-5  # the same pixels: exact up to float32
    # Area-averaged blocks: median and 95th percentile within 1 % (edges of objects average two depths).
    assert np.median(rel_area) < 0.01 and np.percentile(rel_area, 95) < 0.01, (
        np.median(rel_area),
        np.percentile(rel_area, 95),
    )


def test_middlebury_doffs_must_scale_with_the_image(shared, tmp_path):
    """The classic mistake: halving disparity but not doffs puts depth off by far more than 1 %."""
    gt, calibration = _cones_ground_truth(shared, tmp_path)
    # Halved disparities kept at full size (not resized): without its recorded size, the half
    # calibration is taken as it is rather than scaled back to the map's size.
    half = dataclasses.replace(calibration.scaled(0.5), width_px=0, height_px=0)
    wrong = Calibration(
        fx_px=half.fx_px,
        fy_px=half.fy_px,
        cx0_px=half.cx0_px,
        cx1_px=half.cx0_px + calibration.doffs_px,
        cy_px=half.cy_px,
        baseline_m=half.baseline_m,
    )
    right_depth = depth_from_disparity(gt * 0.5, half)
    wrong_depth = depth_from_disparity(gt * 0.5, wrong)
    np.testing.assert_allclose(right_depth, depth_from_disparity(gt, calibration), rtol=1e-5)
    assert np.nanmedian(np.abs(wrong_depth / right_depth - 1)) > 0.1


def test_kitti_gt_depth_matches_closed_form_and_survives_half_size(shared):
    frame = shared("data", "real", "kitti2012", "000070")
    calibration = read_calibration(frame / "calib" / "000070.txt")
    gt = read_disparity(frame / "disp_occ" / "000070_10.png")
    depth = depth_from_disparity(gt, calibration)
    closed_form = (386.1448 / 718.856) * 718.856 / gt.astype(np.float64)  # -P1[0,3]/P1[0,0] * fx / d
    valid = np.isfinite(gt)
    np.testing.assert_allclose(depth[valid], closed_form[valid], rtol=1e-6)
    assert 3.0 < np.nanmedian(depth) < 40.0  # a street scene
    rel_nearest, rel_area = _relative_error_of_half_size(gt, calibration)
    assert rel_nearest.max() < 1e-5
    assert np.median(rel_area) < 0.01, np.median(rel_area)


def test_a_calibration_without_its_size_warns_on_images_it_cannot_belong_to(tmp_path):
    """A KITTI calib file records no image size: a downscaled copy would get depths twice too far, unsaid."""
    rows = [f"P{i}: 700 0 610 {-700 * 0.54 * i:g} 0 700 185 0 0 0 1 0" for i in range(4)]
    (tmp_path / "000000.txt").write_text("\n".join(rows) + "\n")
    calibration = read_calibration(tmp_path / "000000.txt")
    assert (calibration.width_px, calibration.height_px) == (0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)  # the images it was made for: nothing to say
        full = depth_from_disparity(np.full((376, 1241), 20.0, np.float32), calibration)
    with pytest.warns(
        CalibrationWarning,
        match=r"principal point \(610.0, 185.0\) px is far from the centre of "
        r"these 188x620 \(HxW\) images \(it is the centre of about 370x1220 ones\).*off by about 1.97x",
    ):
        half = depth_from_disparity(np.full((188, 620), 10.0, np.float32), calibration)
    np.testing.assert_allclose(half, 2 * full[:188, :620])  # taken as it is: only the warning tells


@pytest.mark.parametrize(("cx0_px", "cy_px"), [(0.5, 0.5), (0.0, 240.0), (-20.0, 240.0)])
def test_a_principal_point_at_the_corner_or_beyond_is_not_said_to_be_the_centre_of_other_images(cx0_px, cy_px):
    """It was 'the centre of about 1x1 ones (...) off by about 0.00x', or of '480x-40 ones' for one left of them."""
    calibration = _cal(cx0_px=cx0_px, cx1_px=cx0_px, cy_px=cy_px)
    with pytest.warns(CalibrationWarning) as caught:
        depth_from_disparity(np.full((480, 640), 10.0, np.float32), calibration)
    (message,) = [str(w.message) for w in caught]
    assert f"principal point ({cx0_px:g}, {cy_px:g}) px lies at the top-left corner of these 480x640" in message
    assert "centre of about" not in message and "off by" not in message


def test_scaling_keeps_pixel_centres_and_each_axis_its_own_factor():
    cal = _cal(fx_px=700.0, fy_px=710.0, cx0_px=319.5, cx1_px=329.5, cy_px=239.5, width_px=640, height_px=480)
    # pixel centres: x -> (x + 0.5) s - 0.5, so the image's centre (W / 2 - 0.5) stays its centre
    half = cal.scaled(0.5)
    assert (half.fx_px, half.fy_px, half.cx0_px, half.cx1_px, half.cy_px) == (350.0, 355.0, 159.5, 164.5, 119.5)
    assert (half.width_px, half.height_px, half.baseline_m) == (320, 240, 0.1) and half.doffs_px == 5.0
    squeezed = cal.scaled(0.5, 0.25)
    assert (squeezed.fx_px, squeezed.fy_px, squeezed.cx0_px, squeezed.cy_px) == (350.0, 177.5, 159.5, 59.5)
    assert (squeezed.width_px, squeezed.height_px) == (320, 120)


def test_cropping_moves_both_principal_points_and_keeps_depth():
    cal = _cal(cx0_px=319.5, cx1_px=329.5, cy_px=239.5, width_px=640, height_px=480)
    crop = cal.cropped(100, 50, 200, 100)
    assert (crop.cx0_px, crop.cx1_px, crop.cy_px, crop.doffs_px) == (219.5, 229.5, 189.5, 10.0)
    assert (crop.fx_px, crop.fy_px, crop.baseline_m, crop.width_px, crop.height_px) == (700.0, 700.0, 0.1, 200, 100)
    disparity = np.full((480, 640), 60.0, np.float32)  # a crop keeps each pixel's disparity, and so its depth
    np.testing.assert_array_equal(
        depth_from_disparity(disparity[50:150, 100:300], crop), depth_from_disparity(disparity, cal)[50:150, 100:300]
    )


def test_a_crop_keeps_the_rest_of_the_recorded_size_so_that_the_crop_resized_is_scaled_to():
    # cropped(x0, y0) recorded no size: the crop at half size was taken as it was, its depths twice too far
    cal = _cal(cx0_px=319.5, cx1_px=329.5, cy_px=239.5, width_px=640, height_px=480)
    crop = cal.cropped(100, 50)
    assert (crop.cx0_px, crop.cy_px, crop.width_px, crop.height_px) == (219.5, 189.5, 540, 430)
    disparity = np.full((430, 540), 60.0, np.float32)
    with pytest.warns(CalibrationWarning, match="scaled by 0.5000"):
        half = depth_from_disparity(cv2.resize(disparity, (270, 215), interpolation=cv2.INTER_NEAREST) / 2, crop)
    np.testing.assert_allclose(half, depth_from_disparity(disparity, crop)[::2, ::2], rtol=1e-6)
    assert _cal().cropped(100, 50).width_px == 0  # no size recorded: none made up
    with pytest.raises(InputError, match=r"a crop at \(640, 0\) starts beyond the 480x640 \(HxW\) images"):
        cal.cropped(640, 0)


def test_a_crop_that_starts_before_the_images_is_refused():
    """A corner at -10 moved the principal point the other way and recorded a width of 650, over the images'."""
    cal = _cal(cx0_px=319.5, cx1_px=329.5, cy_px=239.5, width_px=640, height_px=480)
    with pytest.raises(InputError, match=r"^a crop at \(-10, 0\) starts before the images' top-left corner \(0, 0\)$"):
        cal.cropped(-10, 0)
    with pytest.raises(InputError, match=r"^a crop at \(0, -0.5\) starts before the images' top-left corner"):
        _cal().cropped(0, -0.5)
    assert cal.cropped(0, 0).cx0_px == 319.5


def test_depth_round_trips_through_disparity():
    cal = _cal(cx1_px=331.0)
    disparity = np.array([[1.0, 10.0, 100.0, np.nan]], np.float32)
    np.testing.assert_allclose(
        disparity_from_depth(depth_from_disparity(disparity, cal), cal), disparity, rtol=1e-5, equal_nan=True
    )


def test_depths_beyond_what_the_principal_points_allow_give_no_disparity():
    """With cx1 > cx0 (doffs 11 px), depths at or beyond baseline * fx / doffs = 70 / 11 m gave disparities <= 0, which
    depth_from_disparity and the metrics take for no match: nan now, as the depth is no match either way."""
    cal = _cal(cx1_px=331.0)
    disparity = disparity_from_depth(np.array([[70.0 / 21, 70.0 / 11, 10.0, np.inf]]), cal)
    assert disparity[0, 0] == pytest.approx(10.0) and np.isnan(disparity[0, 1:]).all()
    assert np.isnan(depth_from_disparity(np.array([[0.0, -4.0]]), cal)).all()  # the convention it keeps to


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_whose_result_float32_cannot_hold_are_nan_as_documented_without_a_warning(dtype):
    """Below about 1e-37 (px or m) the result overflowed float32: inf, with "overflow encountered in cast"."""
    cal = _cal()
    tiny = np.array([[1e-38, 1e-45, 1e-30, 70.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        depth = depth_from_disparity(tiny, cal)
        disparity = disparity_from_depth(tiny, cal)
    for result in (depth, disparity):
        assert result.dtype == np.float32 and np.isnan(result[0, :2]).all()
        np.testing.assert_allclose(result[0, 2:], [70.0 / 1e-30, 1.0], rtol=1e-6)  # 0.1 m * 700 px / value
    if dtype is np.float64:  # float64's own overflow in the division (a subnormal disparity)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            assert np.isnan(depth_from_disparity(np.array([[5e-324, 1e-300]]), cal)).all()


def test_integer_maps_are_refused_with_their_usual_scale_not_read_as_pixels_or_metres(tmp_path):
    """A 16-bit disparity PNG read with cv2.imread (d * 256) gave depths 256 times too near, and predict's own depth_mm
    PNG read back gave points 1000 times too far, without a word."""
    cal = _cal(width_px=4, height_px=2)
    disparity = np.full((2, 4), 10.0, np.float32)
    png = tmp_path / "d.png"
    cv2.imwrite(str(png), (disparity * 256).astype(np.uint16))
    as_stored = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    for call in (depth_from_disparity, point_cloud):
        with pytest.raises(
            InputError, match=r"^disparity: expected a float \(H, W\) array of pixels, got uint16; 16-bi"
        ):
            call(as_stored, cal)
    with pytest.raises(InputError, match=r"got int16; .*OpenCV's StereoBM and StereoSGBM give int16 d \* 16"):
        depth_from_disparity((disparity * 16).astype(np.int16), cal)
    depth_mm = np.full((2, 4), 1500, np.uint16)
    for call in (points_from_depth, disparity_from_depth):
        with pytest.raises(InputError, match=r"^depth: expected a float .* of metres, got uint16; .* / 1000\)"):
            call(depth_mm, cal)
    with pytest.raises(InputError, match=r"got bool; .*, or for a map of whole pixels, \.astype\(np\.float32\)$"):
        depth_from_disparity(np.ones((2, 4), bool), cal)
    # as the messages say
    np.testing.assert_allclose(depth_from_disparity(read_disparity(png), cal), depth_from_disparity(disparity, cal))
    np.testing.assert_allclose(points_from_depth(depth_mm.astype(np.float32) / 1000, cal)[..., 2], 1.5)


def test_points_follow_the_pinhole_model():
    cal = _cal(cx0_px=2.0, cy_px=1.0, fx_px=10.0, fy_px=20.0)
    depth = np.full((3, 5), 4.0, np.float32)
    points = points_from_depth(depth, cal)
    assert points.shape == (3, 5, 3)
    np.testing.assert_allclose(points[1, 2], [0, 0, 4])  # the principal point lies on the axis
    np.testing.assert_allclose(points[2, 4], [(4 - 2) * 4 / 10, (2 - 1) * 4 / 20, 4])


def test_points_of_a_depth_pfm_read_back_are_nan_where_it_marks_invalid_pixels(tmp_path):
    """The depth PFM predict writes marks invalid pixels inf: back-projected, they gave points at infinity (nan on
    the principal point's column, with numpy's 'invalid value' warnings), and a negative depth a point behind."""
    from rtstereo.io.pfm import read_pfm
    from rtstereo.sinks.files import save_result
    from rtstereo.sinks.pointcloud import make_writers

    cal = _cal(cx0_px=2.0, cy_px=0.0, fx_px=10.0, fy_px=10.0, width_px=5, height_px=1)
    result = DisparityResult(np.array([[1.0, np.nan, 0.0, 2.0, -3.0]], np.float32), calibration=cal)
    (path,) = save_result(result, tmp_path, "pair", ("depth",), make_writers())
    depth = read_pfm(path)
    assert np.isinf(depth[0, [1, 2, 4]]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        points = points_from_depth(depth, cal)
    assert np.isnan(points[0, [1, 2, 4]]).all()
    np.testing.assert_allclose(
        points[0, [0, 3]], points_from_depth(depth_from_disparity(result.disparity_px, cal), cal)[0, [0, 3]]
    )
    assert np.isnan(points_from_depth(np.array([[-1.0, 0.0]]), _cal(width_px=2, height_px=1))).all()


# --- feature: cleaning -------------------------------------------------------------------------------


def test_flying_pixels_are_marked_on_both_sides_of_a_depth_edge_only():
    depth = np.full((5, 8), 2.0)
    depth[:, 4:] = 4.0
    depth[2, 4] = np.nan  # an unknown neighbour neither marks nor clears
    mask = flying_pixel_mask(depth, 0.1)
    assert mask[:, 3].all() and mask[[0, 1, 3, 4], 4].all()
    assert not mask[:, :3].any() and not mask[:, 5:].any() and not mask[2, 4]


def test_an_inf_neighbour_is_unknown_as_a_nan_one_is():
    """inf marks invalid pixels in depth PFMs: read back, every pixel beside one was a flying pixel."""
    depth = np.array([[1.0, 1.0, np.inf, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]], np.float32)
    assert not flying_pixel_mask(depth, 0.1).any()


def test_flying_pixels_keep_a_slanted_plane():
    rows = np.linspace(20.0, 40.0, 60)[:, None] * np.ones((1, 10))  # 0.3-0.6 m per row at 20-40 m
    assert not flying_pixel_mask(rows, 0.1).any()


def test_a_flying_pixel_jumps_by_more_than_the_limit_relative_to_its_own_depth():
    z = np.array([[1.0, 1.5]])
    assert flying_pixel_mask(z, 0.5).tolist() == [[False, False]]  # |1.5 - 1| = 0.5 x 1.0: not more
    assert flying_pixel_mask(z, 0.4).tolist() == [[True, False]]  # 0.5 > 0.4 x 1.0, but not > 0.4 x 1.5


def test_point_cloud_applies_max_depth_flying_pixels_mask_and_colours():
    cal = _cal(fx_px=100.0, fy_px=100.0, cx0_px=3.5, cx1_px=3.5, cy_px=2.5, baseline_m=0.1, width_px=8, height_px=6)
    disparity = np.full((6, 8), 5.0, np.float32)  # 2 m
    disparity[:, 5:] = 1.0  # 10 m, with an edge at column 4/5
    disparity[0, 0] = np.nan
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    everything = point_cloud(disparity, cal, image, max_jump_rel=None)
    assert len(everything) == 47 and everything.colors.shape == (47, 3)
    np.testing.assert_array_equal(everything.colors, image.reshape(-1, 3)[everything.pixel_index])
    near = point_cloud(disparity, cal, max_depth_m=5.0, max_jump_rel=None)
    assert len(near) == 6 * 5 - 1 and near.colors is None
    # "farther than" the maximum: the points at exactly 2 m stay
    assert len(point_cloud(disparity, cal, max_depth_m=2.0, max_jump_rel=None)) == 6 * 5 - 1
    clean = point_cloud(disparity, cal)
    assert set(np.unique(clean.pixel_index % 8)) == {0, 1, 2, 3, 6, 7}
    mask = np.zeros((6, 8), bool)
    mask[3, 2] = True
    only = point_cloud(disparity, cal, mask=mask)
    np.testing.assert_array_equal(only.pixel_index, [3 * 8 + 2])
    np.testing.assert_allclose(only.points_m[0], [(2 - 3.5) * 2 / 100, (3 - 2.5) * 2 / 100, 2.0], rtol=1e-6)


def test_a_grey_or_rgba_image_colours_a_cloud_as_predict_takes_it():
    """A mono camera's grey left view, which predict takes, was refused: "expected uint8 RGB of shape (6, 8, 3)"."""
    cal = _cal(fx_px=100.0, fy_px=100.0, cx0_px=3.5, cx1_px=3.5, cy_px=2.5, baseline_m=0.1, width_px=8, height_px=6)
    disparity = np.full((6, 8), 5.0, np.float32)
    disparity[0, 0] = np.nan
    grey = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    expected = point_cloud(disparity, cal, rgb).colors
    for image in (grey, grey[:, :, None], np.dstack([rgb, np.full((6, 8), 255, np.uint8)])):
        np.testing.assert_array_equal(point_cloud(disparity, cal, image).colors, expected)
    with pytest.raises(
        InputError, match=r"expected uint8 RGB of shape \(6, 8, 3\) \(or grey \(6, 8\)\) like the dispar"
    ):
        point_cloud(disparity, cal, grey[:, :5])


def test_a_large_cloud_is_back_projected_at_its_kept_pixels_only():
    import tracemalloc

    height, width = 600, 800
    cal = _cal(fx_px=600.0, fy_px=610.0, cx0_px=399.5, cx1_px=401.0, cy_px=299.5, baseline_m=0.1)
    disparity = np.tile(np.linspace(20, 60, width, dtype=np.float32), (height, 1))
    disparity[:50] = np.nan
    image = np.zeros((height, width, 3), np.uint8)
    tracemalloc.start()
    try:
        cloud = point_cloud(disparity, cal, image)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the same points as back-projecting the whole map; the whole map's float64 X, Y, Z made the peak 91 bytes
    # per pixel (1.1 GB at 12 megapixels), the kept pixels' 58
    expected = points_from_depth(depth_from_disparity(disparity, cal), cal).reshape(-1, 3)[cloud.pixel_index]
    np.testing.assert_array_equal(cloud.points_m, expected)
    assert len(cloud) == (height - 50) * width and peak_bytes < 70 * height * width, peak_bytes / (height * width)


def test_calibration_for_size_scales_with_a_warning_and_refuses_another_aspect():
    cal = _cal(width_px=640, height_px=480)
    assert calibration_for_size(cal, 480, 640) is cal
    assert calibration_for_size(_cal(width_px=0, height_px=0), 100, 100).fx_px == 700.0
    with pytest.warns(CalibrationWarning, match="scaled by 0.5000"):
        half = calibration_for_size(cal, 240, 320)
    assert half.fx_px == 350.0 and (half.width_px, half.height_px) == (320, 240)
    with pytest.raises(InputError, match="another aspect ratio"):
        calibration_for_size(cal, 480, 600)


def test_a_resize_is_told_from_a_crop_or_padding_by_whole_pixels_not_by_a_share():
    """1080p frames cropped or padded by 8 rows (a codec's 1088) passed the old 1 % test as a resize: fy and cy were
    scaled by 0.7 %, with a warning saying 'scaled by 1.0000'. A KITTI frame shrunk to 78x23, whose sides rounding
    moves 2 % apart, was refused as another aspect ratio."""
    full_hd = _cal(width_px=1920, height_px=1080)
    for height in (1072, 1088):
        said = rf"1080x1920 \(HxW\) images but these are {height}x1920 .another aspect ratio"
        with pytest.raises(InputError, match=said):
            calibration_for_size(full_hd, height, 1920)
    kitti = _cal(width_px=1242, height_px=375)
    for hw in ((188, 621), (23, 78)):  # 187.5 and 23.4 rows rounded
        with pytest.warns(CalibrationWarning, match="scaled by"):
            scaled = calibration_for_size(kitti, *hw)
        assert (scaled.height_px, scaled.width_px) == hw
        assert scaled.fx_px == pytest.approx(700.0 * hw[1] / 1242) and scaled.fy_px == pytest.approx(
            700.0 * hw[0] / 375
        )


@pytest.mark.parametrize("hw", [(640, 480), (1280, 960)])
def test_images_turned_90_degrees_from_the_calibration_are_said_to_be_turned_not_another_camera(hw):
    with pytest.raises(
        InputError, match=rf"these are {hw[0]}x{hw[1]}, the same turned 90 degrees.*EXIF orientation"
    ) as turned:
        calibration_for_size(_cal(width_px=640, height_px=480), *hw)
    assert "width_px and height_px are the other way round" not in str(turned.value)  # its principal point: 640x480's


def test_a_calibration_whose_size_fields_are_swapped_is_said_to_be_so_beside_a_turned_photo():
    """width_px 480 and height_px 640 written for 640x480 images: the error named only photos turned by EXIF."""
    swapped = _cal(width_px=480, height_px=640)  # its principal point (320, 240): the centre of 640x480 images
    with pytest.raises(InputError) as refused:
        calibration_for_size(swapped, 480, 640)
    assert str(refused.value).endswith(
        "Calibrate with the images as rtstereo reads them (rtstereo calibrate); or the calibration's width_px and "
        "height_px are the other way round: its principal point (320.0, 240.0) px lies near the centre of these images"
    )


# --- feature: a calibration made at another size, in the Python API --------------------------------------


# The 160x120 textured pair's calibration: 5 px of disparity at fx 200 px and a 0.1 m baseline is 4 m.
PAIR_CAL = Calibration(
    fx_px=200.0, fy_px=200.0, cx0_px=79.5, cx1_px=79.5, cy_px=59.5, baseline_m=0.1, width_px=160, height_px=120
)


@pytest.mark.parametrize("model, settings", [("sgbm", {"max_disp": 16}), ("default", {})])
def test_predict_scales_a_calibration_made_at_another_size_as_the_cli_does(model, settings):
    from tests.conftest import make_textured_pair

    import rtstereo
    from rtstereo.sinks.pointcloud import depth_of

    left, right = make_textured_pair(120, 160, disparity_px=5)
    predictor = rtstereo.load(model, **settings)
    with pytest.warns(CalibrationWarning, match=r"the calibration is for 240x320 \(HxW\) images; scaled by 0.5000"):
        result = predictor.predict(left, right, calibration=PAIR_CAL.scaled(2.0))
    assert dataclasses.astuple(result.calibration) == pytest.approx(dataclasses.astuple(PAIR_CAL))
    assert np.nanmedian(depth_of(result)) == pytest.approx(4.0, rel=0.02)
    cloud = result_point_cloud(result)
    assert np.median(cloud.points_m[:, 2]) == pytest.approx(4.0, rel=0.02)
    assert np.median(cloud.points_m[:, 0]) == pytest.approx(0.0, abs=0.05)  # centred: cx scaled too
    with pytest.raises(InputError, match="another aspect ratio"):
        predictor.predict(left, right, calibration=dataclasses.replace(PAIR_CAL, height_px=100))


def test_predict_warns_about_a_size_less_calibration_whose_principal_point_is_outside_the_images():
    from tests.conftest import make_textured_pair

    import rtstereo

    left, right = make_textured_pair(120, 160, disparity_px=5)
    predictor = rtstereo.load("sgbm", max_disp=16)
    sizeless = dataclasses.replace(PAIR_CAL, width_px=0, height_px=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)  # inside the images: nothing to say
        predictor.predict(left, right, calibration=sizeless)
    kitti_like = dataclasses.replace(sizeless, cx0_px=607.2, cx1_px=607.2, cy_px=185.2)
    with pytest.warns(
        CalibrationWarning, match=r"principal point \(607.2, 185.2\) px is far from the centre of these 120x160 \(HxW\)"
    ):
        result = predictor.predict(left, right, calibration=kitti_like)
    assert result.calibration == kitti_like


def test_hybrid_under_a_memory_budget_keeps_the_calibration_of_its_input(monkeypatch):
    from tests.conftest import make_textured_pair

    import rtstereo
    from rtstereo.runtime import memory
    from rtstereo.runtime.predictor import ResizeWarning

    monkeypatch.setenv(memory.BUDGET_ENV, "40M")
    left, right = make_textured_pair(240, 320, disparity_px=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)  # the input's calibration fits: nothing to scale
        warnings.simplefilter("ignore", ResizeWarning)
        result = rtstereo.load("default").predict(left, right, calibration=PAIR_CAL.scaled(2.0))
    assert result.network_size_hw[1] < 320, "the budget should have made it run smaller"
    assert result.calibration == PAIR_CAL.scaled(2.0)


def test_geometry_scales_a_calibration_made_at_another_size():
    disparity = np.full((120, 160), 5.0, np.float32)
    with pytest.warns(CalibrationWarning, match="scaled by 0.5000"):
        depth = depth_from_disparity(disparity, PAIR_CAL.scaled(2.0))
    np.testing.assert_allclose(depth, depth_from_disparity(disparity, PAIR_CAL), rtol=1e-6)
    with pytest.warns(CalibrationWarning, match="scaled by 0.5000"):
        cloud = point_cloud(disparity, PAIR_CAL.scaled(2.0))
    np.testing.assert_allclose(cloud.points_m, point_cloud(disparity, PAIR_CAL).points_m, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="another aspect ratio"):
        points_from_depth(depth, dataclasses.replace(PAIR_CAL, width_px=100))


# --- exceptions -----------------------------------------------------------------------------------


def test_geometry_input_errors():
    cal = _cal()
    with pytest.raises(InputError, match=r"expected shape \(H, W\)"):
        depth_from_disparity(np.zeros((2, 2, 2)), cal)
    with pytest.raises(InputError, match=r"expected shape \(H, W\)"):
        points_from_depth(np.zeros(3), cal)
    with pytest.raises(InputError, match=r"expected shape \(H, W\)"):
        flying_pixel_mask(np.zeros(3))
    with pytest.raises(InputError, match="max_jump_rel must be > 0"):
        flying_pixel_mask(np.zeros((2, 2)), 0.0)
    with pytest.raises(InputError, match="max_depth_m must be > 0"):
        point_cloud(np.ones((2, 2)), cal, max_depth_m=-1)
    # a string (a value read from a text file) failed with a bare TypeError from the comparison
    with pytest.raises(
        InputError, match="max_depth_m: expected a depth in metres > 0, or None to keep all points, got str '5'"
    ):
        point_cloud(np.ones((2, 2)), cal, max_depth_m="5")
    with pytest.raises(InputError, match="max_jump_rel: expected a relative depth jump > 0, e.g. 0.1, got str"):
        point_cloud(np.ones((2, 2)), cal, max_jump_rel="0.1")
    assert len(point_cloud(np.ones((2, 2)), cal, max_depth_m=np.float32(1e4), max_jump_rel=None)) == 4
    # a map instead of the result: an AttributeError ('numpy.ndarray' object has no attribute 'disparity_px')
    with pytest.raises(InputError, match=r"expected a DisparityResult \(what predict\(\) returns\), got ndarray"):
        result_point_cloud(np.ones((2, 2)))
    with pytest.raises(InputError, match="mask: expected shape"):
        point_cloud(np.ones((2, 2)), cal, mask=np.ones((3, 3), bool))
    with pytest.raises(
        InputError, match=r"mask: expected bool \(2, 2\).*got float32; threshold a confidence map first"
    ):
        point_cloud(np.ones((2, 2)), cal, mask=np.full((2, 2), 0.2, np.float32))  # a soft confidence
    with pytest.raises(InputError, match="image: expected uint8 RGB"):
        point_cloud(np.ones((2, 2)), cal, np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputError, match="--calib FILE"):
        require_calibration(DisparityResult(np.ones((2, 2), np.float32)))
    with pytest.raises(InputError, match="--calib FILE"):
        result_point_cloud(DisparityResult(np.ones((2, 2), np.float32)))


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (2, 4, 4)])
def test_empty_maps_and_maps_of_more_dimensions_are_input_errors(shape):
    """An empty map raised ZeroDivisionError (its height of 0 px divided a principal point); disparity_from_depth
    took a stack of maps (2, H, W) without a word, never checking the calibration's size against it."""
    cal = _cal()
    size_less = _cal(width_px=0, height_px=0)
    for call in (
        lambda: depth_from_disparity(np.ones(shape), size_less),
        lambda: point_cloud(np.ones(shape), size_less),
        lambda: points_from_depth(np.ones(shape), size_less),
        lambda: disparity_from_depth(np.ones(shape), cal),
    ):
        with pytest.raises(InputError, match=re.escape(f"expected shape (H, W) of at least 1x1 pixels, got {shape}")):
            call()


def test_depth_is_nan_where_disparity_is_invalid_or_beyond_infinity():
    cal = _cal(cx0_px=330.0, cx1_px=320.0)  # doffs = -10: d <= 10 px is at or beyond infinity
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warnings either
        warnings.simplefilter("ignore", CalibrationWarning)  # a 640x480 calibration on a row of 6 samples
        depth = depth_from_disparity(np.array([[0.0, -1.0, 5.0, 10.0, 20.0, np.inf]]), cal)
    assert np.isnan(depth[0, :4]).all()
    assert depth[0, 4] == pytest.approx(0.1 * 700 / 10)
    assert np.isnan(depth[0, 5])
    # doffs = +10: d + doffs > 0 everywhere, yet a disparity of 0 or below is still no match
    depth = depth_from_disparity(np.array([[0.0, -1.0, 60.0]]), _cal(cx1_px=330.0))
    assert np.isnan(depth[0, :2]).all() and depth[0, 2] == pytest.approx(0.1 * 700 / 70)


def test_numpy_calibration_values_are_stored_as_python_numbers_so_the_sidecar_is_json():
    import json

    k = np.array([[400, 0, 159.5], [0, 400, 119.5], [0, 0, 1]], np.float32)
    cal = Calibration(k[0, 0], k[1, 1], k[0, 2], k[0, 2], k[1, 2], np.float32(0.1), np.int64(320), np.int64(240))
    assert all(type(getattr(cal, f)) is float for f in ("fx_px", "fy_px", "cx0_px", "cx1_px", "cy_px", "baseline_m"))
    assert (type(cal.width_px), type(cal.height_px)) == (int, int)
    result = DisparityResult(np.ones((240, 320), np.float32), calibration=cal)
    assert json.loads(json.dumps(result.sidecar()))["calibration"]["fx_px"] == 400.0


@pytest.mark.parametrize(
    "field", ["fx_px", "fy_px", "cx0_px", "cx1_px", "cy_px", "baseline_m", "width_px", "height_px"]
)
def test_a_one_element_array_is_refused_for_every_field_whatever_the_numpy(field):
    """NumPy before 2.4 took np.array([300.]) as 300.0 with a DeprecationWarning shown to the user (width_px too); 2.4
    refuses it: one message for every field, whichever NumPy is installed. A 0-d array is a number."""
    cal = Calibration(100, 100, 10, 10, 10, 0.1, 320, 240)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=rf"calibration: {field} must be a number, got an array of shape \(1,\)"):
            dataclasses.replace(cal, **{field: np.array([getattr(cal, field)])})
        assert dataclasses.replace(cal, **{field: np.array(getattr(cal, field))}) == cal


@pytest.mark.parametrize(("field", "value"), [("width_px", "640"), ("height_px", -1), ("width_px", 320.5)])
def test_an_image_size_that_is_not_a_whole_number_of_pixels_is_refused(field, value):
    with pytest.raises(InputError, match=rf"calibration: {field} must be a whole number of pixels >= 0"):
        dataclasses.replace(Calibration(100, 100, 10, 10, 10, 0.1), **{field: value})


@pytest.mark.parametrize(("width_px", "height_px"), [(640, 0), (0, 480)])
def test_an_image_size_of_one_side_is_refused_not_taken_for_no_size(width_px, height_px):
    """width_px alone was taken for no size at all: half-size images got the full-size intrinsics, depths twice
    too far, with a warning that the calibration 'records no image size'."""
    with pytest.raises(InputError, match=r"width_px and height_px go together .*got width_px=\d+, height_px=\d+"):
        Calibration(100, 100, 10, 10, 10, 0.1, width_px, height_px)


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        (None, r"a calibration is needed .*read_calibration\(PATH\)"),
        ({"fx_px": 100}, r"expected an rtstereo Calibration, got dict \(make one with Calibration\(\*\*values\)"),
    ],
)
def test_geometry_without_a_calibration_object_is_an_input_error(calibration, message):
    disparity = np.full((4, 4), 5.0, np.float32)
    for call in (depth_from_disparity, disparity_from_depth, points_from_depth, point_cloud):
        with pytest.raises(InputError, match=message):
            call(disparity, calibration)


def test_scaling_or_cropping_a_calibration_by_a_value_of_the_wrong_type_is_an_input_error():
    """Bare TypeErrors before ("can't multiply sequence by non-int of type 'float'")."""
    calibration = Calibration(fx_px=100, fy_px=100, cx0_px=50, cx1_px=50, cy_px=40, baseline_m=0.1)
    assert calibration.scaled(np.float64(0.5)).fx_px == 50.0
    with pytest.raises(InputError, match="sx: expected a scale factor > 0, got str '0.5'"):
        calibration.scaled("0.5")
    with pytest.raises(InputError, match="sy: expected a scale factor > 0, got str .x."):
        calibration.scaled(0.5, "x")
    with pytest.raises(InputError, match="y0_px: expected the crop's top row, pixels, got str '4'"):
        calibration.cropped(0, "4")


@pytest.mark.parametrize(
    ("factors", "message"), [((float("nan"),), "sx: .* got nan"), ((1.0, float("inf")), "sy: .* got inf")]
)
def test_a_scale_factor_that_is_not_finite_or_not_positive_is_named(factors, message):
    # nan and inf raised a bare ValueError and OverflowError from round(); 0 and -1 said "focal lengths must be > 0"
    calibration = Calibration(fx_px=100, fy_px=100, cx0_px=50, cx1_px=50, cy_px=40, baseline_m=0.1)
    with pytest.raises(InputError, match=message):
        calibration.scaled(*factors)
    for factor in (0, -1):
        with pytest.raises(InputError, match=rf"sx: expected a scale factor > 0 \(a finite number\), got {factor}"):
            calibration.scaled(factor)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda cal: depth_from_disparity([["5"]], cal), r"disparity: expected a float \(H, W\) array of pixels"),
        (lambda cal: point_cloud(None, cal), "disparity: expected .* got NoneType None"),
        (lambda cal: disparity_from_depth("z.pfm", cal), r"depth: expected a float \(H, W\) array of metres, got str"),
        (lambda cal: points_from_depth(None, cal), "depth: expected .* got NoneType None"),
        (lambda cal: flying_pixel_mask("z"), "depth: expected .* got str 'z'"),
    ],
)
def test_maps_of_the_wrong_type_are_input_errors(call, match):
    """numpy's bare ValueError ("could not convert string to float") before; None read as a 0-d map."""
    calibration = Calibration(fx_px=100, fy_px=100, cx0_px=50, cx1_px=50, cy_px=40, baseline_m=0.1)
    with pytest.raises(InputError, match=match):
        call(calibration)


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        ((10.5, 0), "x0_px: a crop is of whole pixels, got 10.5"),
        ((0, 2.25), "y0_px: a crop is of whole pixels, got 2.25"),
        ((0, 0, 100.5, 40), "width_px: a crop is of whole pixels, got 100.5"),
        ((0, 0, 8, 0.5), "height_px: a crop is of whole pixels, got 0.5"),
    ],
)
def test_a_crop_of_fractional_pixels_is_refused_naming_it(crop, message):
    """cropped(10.5, 0) of a 640-pixel-wide calibration failed on its own result's width_px of 629.5."""
    cal = _cal(cx0_px=319.5, cx1_px=329.5, cy_px=239.5, width_px=640, height_px=480)
    for calibration in (cal, _cal()):  # recording its size or not
        with pytest.raises(InputError) as info:
            calibration.cropped(*crop)
        assert str(info.value) == message
    window = cal.cropped(10.0, 0, np.float64(100), 40)  # whole numbers written as floats are pixels too
    assert (window.cx0_px, window.width_px, window.height_px) == (309.5, 100, 40)
