"""File formats: PFM, 16-bit PNG / npy disparity, image reading, colour previews."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rtstereo.errors import InputError, OutputError
from rtstereo.io import (
    colorize,
    read_disparity,
    read_grey,
    read_image,
    read_pfm,
    write_disparity,
    write_image,
    write_pfm,
)
from rtstereo.io.calibration import read_calibration
from rtstereo.io.disparity import PNG16_MAX_PX, preview_top_px, to_png16


def _ramp(height: int = 5, width: int = 7) -> np.ndarray:
    values = np.arange(height * width, dtype=np.float32).reshape(height, width)
    return (values * 0.37 + 0.5).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# PFM


def test_pfm_grey_round_trip_keeps_nan_and_inf(tmp_path):
    d = _ramp()
    d[1, 2], d[3, 4] = np.nan, np.inf

    write_pfm(tmp_path / "d.pfm", d)
    back = read_pfm(tmp_path / "d.pfm")

    assert back.dtype == np.float32 and back.shape == d.shape
    np.testing.assert_array_equal(back, d)  # nan compares equal in assert_array_equal
    assert (tmp_path / "d.pfm").read_bytes().startswith(b"Pf\n7 5\n-1.0\n")


def test_pfm_colour_round_trip(tmp_path):
    rgb = np.random.default_rng(0).normal(size=(4, 6, 3)).astype(np.float32)

    write_pfm(tmp_path / "c.pfm", rgb)

    assert (tmp_path / "c.pfm").read_bytes().startswith(b"PF\n6 4\n")
    np.testing.assert_array_equal(read_pfm(tmp_path / "c.pfm"), rgb)


def test_pfm_rows_are_stored_bottom_to_top(tmp_path):
    # Written by hand: width 2, height 3, little-endian; the first stored row is the image's last.
    stored_rows = [[5.0, 6.0], [3.0, 4.0], [1.0, 2.0]]
    path = tmp_path / "hand.pfm"
    path.write_bytes(b"Pf\n2 3\n-1.0\n" + np.array(stored_rows, "<f4").tobytes())

    np.testing.assert_array_equal(read_pfm(path), [[1, 2], [3, 4], [5, 6]])
    write_pfm(tmp_path / "again.pfm", read_pfm(path))
    assert (tmp_path / "again.pfm").read_bytes() == path.read_bytes()


def test_pfm_big_endian(tmp_path):
    # A positive scale means big-endian data.
    path = tmp_path / "be.pfm"
    path.write_bytes(b"Pf\n3 1\n1.0\n" + np.array([1.5, -2.25, 1e6], ">f4").tobytes())

    d = read_pfm(path)

    assert d.dtype == np.float32 and d.dtype.byteorder in ("=", "<", "|")
    np.testing.assert_array_equal(d, [[1.5, -2.25, 1e6]])


def test_pfm_header_may_hold_blank_lines_and_scale_magnitude(tmp_path):
    path = tmp_path / "blank.pfm"
    path.write_bytes(b"Pf\n\n2 1\n-0.5\n" + np.array([7.0, 8.0], "<f4").tobytes())

    np.testing.assert_array_equal(read_pfm(path), [[7.0, 8.0]])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"P6\n2 1\n255\n\x00\x00\x00\x00\x00\x00", "not a PFM"),
        (b"Pf\ntwo one\n-1.0\n", "damaged PFM header"),
        (b"Pf\n2\n-1.0\n" + bytes(8), "damaged PFM header"),
        (b"Pf\n2 1\nlittle\n" + bytes(8), "damaged PFM header"),
        (b"", "not a PFM"),
        (b"Pf\n-3 -2\n-1.0\n" + bytes(24), r"damaged PFM header \(size -3x-2"),
        (b"Pf\n0 0\n-1.0\n", r"damaged PFM header \(size 0x0"),
        (b"Pf\n2 1\nnan\n" + bytes(8), "damaged PFM header .*scale nan"),
        (b"Pf\n2 1\n0.0\n" + bytes(8), "damaged PFM header .*scale 0.0"),  # no sign: no byte order
    ],
    ids=[
        *("ppm", "words", "one-dimension", "bad-scale", "empty"),
        *("negative-size", "zero-size", "nan-scale", "zero-scale"),
    ],
)
def test_pfm_damaged_header(tmp_path, content, match):
    path = tmp_path / "bad.pfm"
    path.write_bytes(content)

    with pytest.raises(InputError, match=match):
        read_pfm(path)


@pytest.mark.parametrize("n_values", [5, 7], ids=["short", "long"])
def test_pfm_wrong_data_size(tmp_path, n_values):
    path = tmp_path / "size.pfm"
    path.write_bytes(b"Pf\n3 2\n-1.0\n" + np.zeros(n_values, "<f4").tobytes())

    with pytest.raises(InputError, match=r"holds \d+ values, expected 3x2x1=6"):
        read_pfm(path)


class _EndlessReadGuard(io.BytesIO):
    """An in-memory file that fails loudly when read line by line long past its end."""

    def readline(self, *args):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 50:
            raise RuntimeError("read_pfm keeps reading past the end of the file (it would loop forever)")
        return super().readline(*args)


def test_pfm_truncated_header_raises_instead_of_hanging(tmp_path, monkeypatch):
    path = tmp_path / "truncated.pfm"
    path.write_bytes(b"Pf\n")
    content = path.read_bytes()
    # On the real file the reader spins forever; this file object turns the endless loop into an error.
    monkeypatch.setattr(Path, "open", lambda self, *args, **kwargs: _EndlessReadGuard(content))

    with pytest.raises(InputError, match="damaged PFM header"):
        read_pfm(path)


def test_a_pfm_of_negative_size_is_one_line_through_the_cli(tmp_path, capsys):
    """Its 6 values matched (-3) x (-2): numpy's reshape raised a bare ValueError, a traceback for the user."""
    from rtstereo.cli import main

    (tmp_path / "neg.pfm").write_bytes(b"Pf\n-3 -2\n-1.0\n" + np.ones(6, "<f4").tobytes())
    (tmp_path / "ok.pfm").write_bytes(b"Pf\n3 2\n-1.0\n" + np.ones(6, "<f4").tobytes())
    code = main(["compare", str(tmp_path / "neg.pfm"), str(tmp_path / "ok.pfm")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"rtstereo compare: error: {tmp_path / 'neg.pfm'}: damaged PFM header (size -3x-2")


def test_pfm_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_pfm(tmp_path / "none.pfm")


def test_pfm_write_refuses_other_shapes(tmp_path):
    with pytest.raises(InputError, match=r"\(H, W\) or \(H, W, 3\)"):
        write_pfm(tmp_path / "x.pfm", np.zeros((2, 3, 2), np.float32))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 4, 3)])
def test_pfm_write_refuses_an_empty_array_its_reader_would_call_damaged(tmp_path, shape):
    with pytest.raises(InputError, match=rf"at least 1x1 pixels, got shape {re.escape(str(shape))}"):
        write_pfm(tmp_path / "x.pfm", np.zeros(shape, np.float32))
    assert not (tmp_path / "x.pfm").exists()


@pytest.mark.parametrize("suffix", [".png", ".pfm", ".npy"])
@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_write_disparity_refuses_an_empty_map(tmp_path, suffix, shape):
    """A PFM of 0 rows was written (and read back as 'damaged'), a PNG failed with OpenCV's assertion text."""
    with pytest.raises(OutputError, match=rf"disparity to write is empty: shape {re.escape(str(shape))}"):
        write_disparity(tmp_path / f"d{suffix}", np.zeros(shape, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_read_disparity_pfm_inf_is_nan_and_colour_of_equal_channels_is_one_map(tmp_path):
    rgb = np.stack([_ramp()] * 3, axis=2)
    rgb[0, 0] = np.inf
    write_pfm(tmp_path / "c.pfm", rgb)

    d = read_disparity(tmp_path / "c.pfm")

    assert d.shape == (5, 7) and np.isnan(d[0, 0])
    np.testing.assert_array_equal(d.ravel()[1:], _ramp().ravel()[1:])


def test_read_disparity_refuses_a_colour_pfm_whose_channels_differ(tmp_path):
    """Its first channel was read as the map without a word (an image saved as PFM scored as disparities)."""
    write_pfm(tmp_path / "c.pfm", np.stack([_ramp(), _ramp() + 100, _ramp() + 200], axis=2))

    with pytest.raises(InputError, match=r"c\.pfm: a PFM of 3 channels that differ \(PF: an image or a flow field\?\)"):
        read_disparity(tmp_path / "c.pfm")


# ---------------------------------------------------------------------------------------------
# Disparity files


def test_png16_round_trip_kitti_convention(tmp_path):
    d = _ramp()
    d[0, 0] = np.nan
    d[0, 1] = 255.99  # the top of the range still fits
    d[0, 2] = 1e-4  # a tiny valid disparity must not read back as invalid

    write_disparity(tmp_path / "d.png", d)
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    back = read_disparity(tmp_path / "d.png")

    assert raw.dtype == np.uint16 and raw.shape == d.shape
    assert raw[0, 0] == 0 and raw[0, 1] == round(255.99 * 256) and raw[0, 2] == 1
    np.testing.assert_array_equal(raw[1:], np.round(d[1:] * 256).astype(np.uint16))
    assert back.dtype == np.float32 and np.isnan(back[0, 0])
    assert np.isfinite(back.ravel()[1:]).all()
    np.testing.assert_allclose(back[1:], d[1:], atol=1 / 512)


def test_png16_refuses_disparity_above_range(tmp_path):
    d = np.full((2, 2), 10.0, np.float32)
    d[1, 1] = 256.0

    with pytest.raises(OutputError, match=r"256\.0 px does not fit a 16-bit PNG \(max 255\.99 px"):
        write_disparity(tmp_path / "d.png", d)
    assert not (tmp_path / "d.png").exists()
    assert PNG16_MAX_PX == pytest.approx(255.996, abs=1e-3)


def test_png16_all_invalid_is_all_zero():
    encoded = to_png16(np.full((2, 3), np.nan, np.float32))

    assert encoded.dtype == np.uint16 and not encoded.any()
    # zero and negative disparities (no match) and -inf are invalid too, not the smallest valid value 1/256
    assert to_png16(np.array([[0.0, -3.0, -np.inf, 2.0]], np.float32)).tolist() == [[0, 0, 0, 512]]


def test_png16_warns_with_the_count_of_disparities_it_cannot_store_and_pfm_keeps_them(tmp_path):
    d = np.array([[-1.5, 0.0, 1e-4, 5.0], [np.nan, -np.inf, 2.0, 3.0]], np.float32)
    with pytest.warns(UserWarning, match=r"d\.png: 2 of 8 pixels hold a disparity <= 0 px.*write \.pfm or \.npy"):
        write_disparity(tmp_path / "d.png", d)  # nan and -inf are invalid anyway: not counted
    assert np.isnan(read_disparity(tmp_path / "d.png")[0, :2]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_disparity(tmp_path / "d.pfm", d)  # kept: nothing to say
        write_disparity(tmp_path / "ok.png", np.where(d > 0, d, np.nan))  # only invalid pixels: nothing lost
    assert read_disparity(tmp_path / "d.pfm")[0, :2].tolist() == [-1.5, 0.0]


def test_read_16bit_png_written_elsewhere(tmp_path):
    raw = np.array([[0, 256, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "kitti.png"), raw)

    d = read_disparity(tmp_path / "kitti.png")

    np.testing.assert_array_equal(d, [[np.nan, 1.0, 65535 / 256]])


def test_a_16bit_map_stored_as_rgb_keeps_its_16_bits(tmp_path):
    """PIL opens a 16-bit RGB PNG as 8-bit RGB (the high bytes): KITTI's 1 px (256) read as 1, below 1 px as 0."""
    raw = np.array([[0, 200, 256, 65535]], np.uint16)
    assert cv2.imwrite(str(tmp_path / "kitti_rgb.png"), np.dstack([raw, raw, raw]))
    assert cv2.imwrite(str(tmp_path / "colour16.png"), np.dstack([raw, raw, raw + 1]))

    np.testing.assert_array_equal(read_disparity(tmp_path / "kitti_rgb.png"), [[np.nan, 200 / 256, 1.0, 65535 / 256]])
    with pytest.raises(InputError, match=r"kitti_rgb.png: a 16-bit map where 8-bit ground truth"):
        read_disparity(tmp_path / "kitti_rgb.png", scale=8)  # refused, not read as its high bytes / 8
    with pytest.raises(InputError, match=r"colour16.png: a 16-bit colour image, not a disparity map or mask"):
        read_disparity(tmp_path / "colour16.png")


def test_read_8bit_disparity_needs_scale(tmp_path):
    Image.fromarray(np.array([[0, 16, 32]], np.uint8)).save(tmp_path / "disp.pgm")

    with pytest.raises(InputError, match="needs its scale"):
        read_disparity(tmp_path / "disp.pgm")
    np.testing.assert_array_equal(read_disparity(tmp_path / "disp.pgm", scale=16), [[np.nan, 1.0, 2.0]])


@pytest.mark.parametrize(
    ("file", "scale", "message"),
    [
        ("disp.pgm", 0, r"^scale must be a finite number > 0 \(the divisor of an 8-bit map's values\), got 0$"),
        ("disp.pgm", -4, r"^scale must be a finite number > 0 .* got -4$"),
        ("disp.pgm", float("nan"), r"^scale must be a finite number > 0 .* got nan$"),
        ("disp.pgm", "4", r"^scale: expected the divisor of an 8-bit map's values \(Middlebury: 1 to 16\), got str"),
        ("disp.pgm", True, r"^scale: expected .* got bool True$"),
        ("d.pfm", 4, r"d.pfm: a .pfm map holds disparities as they are; a scale \(value / 4\) divides 8-bit maps only"),
        ("d.npy", 4, r"d.npy: a .npy map holds disparities as they are; a scale \(value / 4\) divides 8-bit maps only"),
    ],
)
def test_a_scale_that_no_map_could_take_is_refused(tmp_path, file, scale, message):
    """scale=0 read a map of inf, a negative one negative disparities, True divided by 1; a .pfm or .npy map read
    with a scale ignored it without a word (a floating-point TIFF refused it)."""
    Image.fromarray(np.array([[0, 16, 32]], np.uint8)).save(tmp_path / "disp.pgm")
    write_disparity(tmp_path / "d.pfm", np.ones((2, 3), np.float32))
    write_disparity(tmp_path / "d.npy", np.ones((2, 3), np.float32))
    with pytest.raises(InputError, match=message):
        read_disparity(tmp_path / file, scale=scale)


def test_a_colour_image_is_refused_as_a_disparity_map_and_grey_stored_as_rgb_is_read(tmp_path):
    """`compare left.png right.png --scale 8` scored the photos' mixed-down grey as disparity maps."""
    colour = np.array([[[0, 0, 0], [16, 40, 200], [32, 32, 32]]], np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    Image.fromarray(np.repeat(np.array([[0, 16, 32]], np.uint8)[..., None], 3, axis=2)).save(tmp_path / "grey.png")

    with pytest.raises(InputError, match=r"colour.png: a colour image, not a disparity map"):
        read_disparity(tmp_path / "colour.png", scale=8)
    np.testing.assert_array_equal(read_disparity(tmp_path / "grey.png", scale=16), [[np.nan, 1.0, 2.0]])


@pytest.mark.parametrize("name", ["disp2.png", "disp2.pgm"])
def test_a_16bit_map_where_8bit_ground_truth_belongs_is_refused(tmp_path, name):
    # e.g. another tool's d x 256 map in a Middlebury folder: / 8 it would read as disparities of thousands
    assert cv2.imwrite(str(tmp_path / name), np.array([[0, 256, 4096]], np.uint16))

    with pytest.raises(InputError, match=rf"{name}: a 16-bit map where 8-bit ground truth \(disparity = value / 8\)"):
        read_disparity(tmp_path / name, scale=8)
    np.testing.assert_array_equal(read_disparity(tmp_path / name), [[np.nan, 1.0, 16.0]])  # KITTI's convention


def test_pfm_written_by_write_disparity_has_inf_for_invalid(tmp_path):
    d = _ramp()
    d[2, 3] = np.nan

    write_disparity(tmp_path / "sub" / "d.pfm", d)

    raw = read_pfm(tmp_path / "sub" / "d.pfm")
    assert np.isposinf(raw[2, 3]) and np.isfinite(np.delete(raw.ravel(), 2 * 7 + 3)).all()
    np.testing.assert_array_equal(read_disparity(tmp_path / "sub" / "d.pfm"), d)


@pytest.mark.parametrize("suffix, copies", [(".pfm", 2.5), (".png", 2.0), (".npy", 0.5)])
def test_writing_a_map_copies_it_no_more_than_its_format_needs(tmp_path, suffix, copies):
    import tracemalloc

    d = (np.random.default_rng(0).random((300, 400)) * 100).astype(np.float32)
    d[::7, ::3] = np.nan
    write_disparity(tmp_path / f"first{suffix}", d)  # imports and caches outside the measure
    tracemalloc.start()
    try:
        write_disparity(tmp_path / f"d{suffix}", d)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # each copy of a 640x480 map cost about 1 ms of page faults per pair: the PFM was copied six times (a peak of five
    # maps), the 16-bit PNG's values made in five steps (4.3), the .npy copied once before it was saved (1.0)
    assert peak_bytes < copies * d.nbytes, peak_bytes / d.nbytes
    assert (tmp_path / f"d{suffix}").read_bytes() == (tmp_path / f"first{suffix}").read_bytes()


def test_npy_round_trip(tmp_path):
    d = _ramp()
    d[4, 6] = np.nan

    write_disparity(tmp_path / "d.npy", d)
    back = read_disparity(tmp_path / "d.npy")

    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, d)


def test_npy_of_another_tool_reads_non_finite_values_as_nan(tmp_path):
    # a PFM's map saved with np.save keeps its inf: read back as inf, it was neither nan nor invalid in memory
    d = _ramp().astype(np.float64)
    d[1, 2], d[3, 4] = np.inf, -np.inf
    np.save(tmp_path / "d.npy", d)

    back = read_disparity(tmp_path / "d.npy")

    assert back.dtype == np.float32 and np.isnan(back[1, 2]) and np.isnan(back[3, 4])
    assert np.isfinite(back).sum() == back.size - 2


def test_npy_under_an_upper_case_suffix_is_written_under_its_own_name(tmp_path, capsys):
    from rtstereo.cli import main

    d = _ramp()
    write_disparity(tmp_path / "d.NPY", d)  # np.save given the name wrote d.NPY.npy
    assert [p.name for p in tmp_path.iterdir()] == ["d.NPY"]
    np.testing.assert_array_equal(read_disparity(tmp_path / "d.NPY"), d)
    views = np.random.default_rng(0).integers(0, 256, (2, 32, 48, 3), np.uint8)  # two: one picture twice is refused
    for name, view in zip(("l.png", "r.png"), views):
        write_image(tmp_path / name, view)
    argv = ["predict", tmp_path / "l.png", tmp_path / "r.png", "-o", tmp_path / "out" / "s.NPY", "-q"]
    assert main([str(a) for a in [*argv, "--model", "sgbm", "--max-disp", "16"]]) == 0, capsys.readouterr().err
    # no partial file left beside it; its made-with record is
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".s.NPY.made-with.json", "s.NPY"]


def test_npy_of_wrong_rank_or_missing(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 3), np.float32))

    with pytest.raises(InputError, match=r"2-D disparity array, got shape \(2, 3, 3\)"):
        read_disparity(tmp_path / "cube.npy")
    with pytest.raises(InputError, match="not found"):
        read_disparity(tmp_path / "none.npy")
    with pytest.raises(InputError, match="not found"):
        read_disparity(tmp_path / "none.png")


def test_write_disparity_errors(tmp_path):
    with pytest.raises(OutputError, match=r"must be \(H, W\)"):
        write_disparity(tmp_path / "d.png", np.zeros((2, 2, 3), np.float32))
    with pytest.raises(OutputError, match=r"unknown disparity format '\.tif'"):
        write_disparity(tmp_path / "new" / "d.tif", _ramp())
    with pytest.raises(OutputError, match="does not fit a 16-bit PNG"):
        write_disparity(tmp_path / "new" / "d.png", _ramp() * 100)
    assert not (tmp_path / "new").exists()  # a refused write leaves no empty folder behind
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="file is a file, not a folder"):
        write_disparity(tmp_path / "file" / "d.npy", _ramp())
    # a folder was "unknown disparity format ''"
    with pytest.raises(OutputError, match=f"{re.escape(str(tmp_path))} is a folder: give a file name, e.g. "):
        write_disparity(tmp_path, _ramp())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: read_disparity(5), "disparity file: expected a path \\(str or Path\\), got int"),
        (lambda: write_disparity(None, _ramp()), "disparity file to write: expected a path .*got NoneType"),
        (lambda: read_calibration(5), "calibration file: expected a path \\(str or Path\\), got int"),
        (lambda: read_pfm(5), "PFM file: expected a path \\(str or Path\\), got int"),
        (lambda: write_pfm(5, _ramp()), "PFM file to write: expected a path \\(str or Path\\), got int"),
    ],
)
def test_a_path_of_the_wrong_type_is_an_input_error(call, match):
    """pathlib's bare TypeError ("expected str, bytes or os.PathLike object, not int") before."""
    with pytest.raises(InputError, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: write_disparity(p / "d.pfm", None), OutputError, "disparity to write: .* got NoneType None"),
        (lambda p: write_disparity(p / "d.png", np.array([["a"]])), OutputError, "to write: .* got <U1 values"),
        (lambda p: write_pfm(p / "d.pfm", np.array([[None]])), InputError, "PFM data: .* got object values"),
        (lambda p: to_png16("d.png"), InputError, r"disparity: expected a float \(H, W\) array, got str 'd.png'"),
        (lambda p: colorize(None), InputError, r"disparity: expected a float \(H, W\) array, got NoneType"),
        (lambda p: colorize(np.zeros((2, 2, 3))), InputError, r"array, got shape \(2, 2, 3\)"),
        (lambda p: colorize(_ramp(), "40"), InputError, "max_disp_px: expected a disparity in pixels.* got str '40'"),
        (lambda p: colorize(_ramp(), 40, None), InputError, "min_disp_px: expected .* got NoneType"),
    ],
)
def test_maps_and_ranges_of_the_wrong_type_are_input_errors(tmp_path, call, error, match):
    """numpy's bare ValueError ("could not convert string to float"), OpenCV's cv2.error for None, a TypeError for
    a string range before; a colour image came out of colorize as (H, W, 3, 3)."""
    with pytest.raises(error, match=match):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_read_disparity_of_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(InputError, match=f"{re.escape(str(tmp_path))} is a folder, not a disparity map"):
        read_disparity(tmp_path)  # was "file not found"


# ---------------------------------------------------------------------------------------------
# Images


def test_read_image_rgb_channel_order(tmp_path):
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0] = 200  # red only
    Image.fromarray(rgb).save(tmp_path / "red.png")

    got = read_image(tmp_path / "red.png")

    assert got.dtype == np.uint8 and got.shape == (3, 4, 3)
    np.testing.assert_array_equal(got, rgb)


def test_read_image_grey_is_repeated(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "grey.png")

    got = read_image(str(tmp_path / "grey.png"))

    assert got.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], grey)


def test_read_image_rgba_drops_alpha(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")

    got = read_image(tmp_path / "rgba.png")

    np.testing.assert_array_equal(got, rgba[..., :3])


@pytest.mark.parametrize("orientation, stored", [(6, lambda a: np.rot90(a, 1)), (3, lambda a: a[::-1, ::-1])])
def test_read_image_turns_a_photo_upright_as_its_exif_orientation_says(tmp_path, orientation, stored):
    """A phone's portrait photo is stored on its side with an EXIF tag that viewers follow: so does rtstereo
    (matched on the stored pixels, an upright rectified pair looked unrectified by 22 px)."""
    upright = np.zeros((40, 64, 3), np.uint8)
    upright[:20, :, 0] = 255  # red top half, green left quarter: any turn or mirror shows
    upright[:, :16, 1] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored(upright))).save(tmp_path / "p.jpg", exif=exif, quality=100)

    got = read_image(tmp_path / "p.jpg")

    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright).mean() < 3


@pytest.mark.parametrize(
    ("suffix", "said"),
    [
        (".gif", "an animated GIF of 3 frames: only its first frame"),
        (".tif", "a multi-page TIFF of 3 pages: only its first page"),
    ],
)
def test_an_image_file_of_several_frames_or_pages_says_only_the_first_is_read(tmp_path, suffix, said):
    """The first frame of an animated GIF, or page of a TIFF, was read, and the others left without a word."""
    frames = [Image.fromarray(np.full((4, 6, 3), 60 * i, np.uint8)) for i in range(3)]
    path, single = tmp_path / f"a{suffix}", tmp_path / f"one{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    frames[0].save(single)
    with pytest.warns(UserWarning, match=re.escape(f"{path} is {said} is read; to read another, save that")):
        assert (read_image(path) == 0).all()  # the first one, as before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(single)  # one frame: no word


def test_a_pair_whose_one_photo_has_an_exif_turn_and_the_other_not_is_told_so(tmp_path):
    """The sizes' refusal named 320x240 and 240x320 and said only that a rectified pair has one size."""
    from rtstereo.types import StereoPair

    upright = np.random.default_rng(0).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(tmp_path / "l.png", exif=exif)
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(tmp_path / "r.png")  # its tag lost
    with pytest.raises(InputError, match=r"left 64x40, right 40x64 \(WxH\); .*; one view is turned by 90 degrees"):
        StereoPair(read_image(tmp_path / "l.png"), read_image(tmp_path / "r.png"))
    with pytest.raises(InputError, match=r"one size$"):  # sizes that are not a turn of each other: no such advice
        StereoPair(upright, upright[:, :40])


def test_read_image_16bit_is_scaled_to_8bit(tmp_path):
    bgr16 = np.zeros((2, 3, 3), np.uint16)
    bgr16[..., 2] = 65535  # red in OpenCV's channel order
    bgr16[..., 1] = 257 * 100
    cv2.imwrite(str(tmp_path / "c16.png"), bgr16)
    cv2.imwrite(str(tmp_path / "g16.png"), np.full((2, 3), 257 * 7, np.uint16))
    between = np.array([[256 * 200, 257 * 100 + 256]], np.uint16)  # divided by 257, not 256: 199 and 100
    cv2.imwrite(str(tmp_path / "between.png"), between)

    colour = read_image(tmp_path / "c16.png")
    grey = read_image(tmp_path / "g16.png")

    assert colour.dtype == np.uint8 and grey.dtype == np.uint8
    np.testing.assert_array_equal(colour[0, 0], [255, 100, 0])
    assert grey.shape == (2, 3, 3) and (grey == 7).all()
    assert read_image(tmp_path / "between.png")[0, :, 0].tolist() == [199, 100]


def test_read_image_refuses_a_floating_point_image(tmp_path):
    """A float TIFF (a disparity or depth map given as an image) is no photo: refused, not cast to uint8."""
    assert cv2.imwrite(str(tmp_path / "d.tif"), np.full((4, 6), 12.5, np.float32))
    with pytest.raises(InputError, match=r"d\.tif: unsupported image depth float32 \(expected 8 or 16 bit\)"):
        read_image(tmp_path / "d.tif")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty \\(0 bytes\\)"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "not an image OpenCV can decode, or the file is damaged"),
        (b"plain text, not an image", "not an image OpenCV can decode"),
    ],
    ids=["empty", "truncated-png", "text"],
)
def test_read_image_corrupt(tmp_path, content, why):
    (tmp_path / "bad.png").write_bytes(content)

    with pytest.raises(InputError, match=f"cannot read {re.escape(str(tmp_path / 'bad.png'))}: {why}"):
        read_image(tmp_path / "bad.png")


def test_read_image_of_a_numpy_file_says_arrays_go_through_the_python_api(tmp_path):
    np.save(tmp_path / "left.npy", np.zeros((4, 5, 3), np.uint8))

    with pytest.raises(InputError, match=r"numpy array file is not read as an image; .* rtstereo.load\(...\).predict"):
        read_image(tmp_path / "left.npy")
    with (tmp_path / "pair.NPZ").open("wb") as file:  # an archive, and a suffix in capitals
        np.savez(file, left=np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(InputError, match=r"pair\.NPZ: a numpy array file is not read as an image"):
        read_image(tmp_path / "pair.NPZ")


def test_read_image_missing(tmp_path):
    with pytest.raises(InputError, match="image not found"):
        read_image(tmp_path / "none.png")


def test_read_image_of_a_folder_says_it_is_a_folder(tmp_path):
    (tmp_path / "lefts").mkdir()
    with pytest.raises(InputError, match=f"{re.escape(str(tmp_path / 'lefts'))} is a folder, not an image"):
        read_image(tmp_path / "lefts")


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (5, r"image: expected a path or URL \(str or Path\), got int$"),
        (None, "got NoneType"),
        (np.zeros((4, 5, 3), np.uint8), r"got ndarray; arrays go to rtstereo.load\(...\).predict\(left, right\)"),
    ],
)
def test_read_image_of_no_path_is_an_input_error(source, match):
    """A bare TypeError from pathlib ("expected str, bytes or os.PathLike object, not int") before."""
    with pytest.raises(InputError, match=match):
        read_image(source)


def test_read_grey_palette_16bit_and_errors(tmp_path):
    palette = Image.fromarray(np.array([[0, 1, 1]], np.uint8))
    palette.putpalette([0, 0, 0, 255, 255, 255])
    palette.save(tmp_path / "mask.png")
    cv2.imwrite(str(tmp_path / "d16.png"), np.array([[0, 300, 65535]], np.uint16))
    (tmp_path / "bad.png").write_bytes(b"garbage")

    np.testing.assert_array_equal(read_grey(tmp_path / "mask.png"), [[0, 255, 255]])
    d16 = read_grey(tmp_path / "d16.png")
    assert d16.dtype == np.uint16
    np.testing.assert_array_equal(d16, [[0, 300, 65535]])
    with pytest.raises(InputError) as info:
        read_grey(tmp_path / "bad.png")
    assert str(info.value) == f"cannot read {tmp_path / 'bad.png'}: not an image file, or the file is damaged"
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"cannot read .*empty.png: the file is empty \(0 bytes\)$"):
        read_grey(tmp_path / "empty.png")
    with pytest.raises(InputError, match="not found"):
        read_grey(tmp_path / "none.png")


def test_write_image_errors(tmp_path):
    with pytest.raises(OutputError, match="cannot write .*: OpenCV has no encoder for '.unknownsuffix' files$"):
        write_image(tmp_path / "x.unknownsuffix", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(OutputError, match="cannot write .*x.png: .*is a file, not a folder"):
        (tmp_path / "taken").write_text("")
        write_image(tmp_path / "taken" / "x.png", np.zeros((2, 2, 3), np.uint8))


def test_write_image_to_a_path_that_is_not_utf8_writes_it(tmp_path):
    """Linux names are bytes: cv2.imwrite crashed the process (a segmentation fault) on such a name, so the
    write runs in a child process here."""
    import os
    import subprocess
    import sys

    name = os.fsdecode(b"left\xff.png")
    try:
        (tmp_path / name).touch()
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes valid UTF-8 names only")
    (tmp_path / name).unlink()
    code = (
        "import sys, os, numpy as np; from rtstereo.io import write_image, read_image; "
        "p = os.path.join(os.fsdecode(sys.argv[1]), os.fsdecode(b'left\\xff.png')); "
        "write_image(p, np.full((3, 4, 3), 7, np.uint8)); print(read_image(p).sum())"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == str(3 * 4 * 3 * 7), (run.returncode, run.stderr[-2000:])


def test_write_image_says_why_the_system_refused_the_file(tmp_path):
    """cv2.imwrite's bare False became 'unknown image suffix or the folder is not writable' for a .png whose
    name was too long (a batch pair's manifest name) or whose disk was full."""
    long_name = tmp_path / f"{'x' * 300}.png"
    with pytest.raises(OutputError) as info:
        write_image(long_name, np.zeros((2, 2, 3), np.uint8))
    assert str(info.value) == f"cannot write {long_name}: File name too long"
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputError) as info:
        write_image(tmp_path / "taken" / "x.png", np.zeros((2, 2, 3), np.uint8))
    assert (
        str(info.value) == f"cannot write {tmp_path / 'taken' / 'x.png'}: {tmp_path / 'taken'} is a file, not a folder"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ([[0, 255], [255, 0]], "expected a numpy array, got list"),
        (np.full((2, 2, 3), 0.5, np.float32), r"expected dtype uint8 \(or uint16\), got float32; .*\* 255"),
        (np.zeros((2, 2, 1), np.uint8), r"expected shape \(H, W, 3\) or \(H, W\), got \(2, 2, 1\)"),
        # a bare cv2.error ('!_src.empty()') for an empty RGB image
        (np.zeros((0, 4, 3), np.uint8), r"expected at least 1x1 pixels, got shape \(0, 4, 3\)"),
        (np.zeros((4, 0), np.uint16), r"expected at least 1x1 pixels, got shape \(4, 0\)"),
    ],
)
def test_write_image_refuses_what_it_would_write_wrongly_or_crash_on(tmp_path, image, message):
    with pytest.raises(InputError, match=f"image to write: {message}"):
        write_image(tmp_path / "x.png", image)
    assert not (tmp_path / "x.png").exists()  # a 0..1 float image was written black


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp"])
def test_a_16bit_image_is_not_clipped_into_an_8bit_format(tmp_path, suffix):
    # OpenCV wrote 1000 as 255 (its "fallbacked to CV_8U" on stderr aside), and the file looked fine
    image = np.full((4, 4), 1000, np.uint16)
    with pytest.raises(InputError, match=rf"a 16-bit image cannot be written as '\{suffix}' .*write .png or .tif"):
        write_image(tmp_path / f"x{suffix}", image)
    assert not (tmp_path / f"x{suffix}").exists()
    for kept in (".png", ".TIF"):
        write_image(tmp_path / f"x{kept}", image)
        assert cv2.imread(str(tmp_path / f"x{kept}"), cv2.IMREAD_UNCHANGED).max() == 1000


# ---------------------------------------------------------------------------------------------
# Colour previews


def test_colorize_fixed_range_is_stable_across_maps():
    a = np.array([[0.0, 10.0, 20.0, 40.0]], np.float32)
    b = np.array([[20.0, 90.0, 3.0, 10.0]], np.float32)  # different content, different own percentile

    ca, cb = colorize(a, max_disp_px=40.0), colorize(b, max_disp_px=40.0)

    assert ca.dtype == np.uint8 and ca.shape == (1, 4, 3)
    np.testing.assert_array_equal(ca[0, 1], cb[0, 3])  # 10 px
    np.testing.assert_array_equal(ca[0, 2], cb[0, 0])  # 20 px
    np.testing.assert_array_equal(ca[0, 3], cb[0, 1])  # 40 px and 90 px both at the top (clipped)
    assert not np.array_equal(ca[0, 0], ca[0, 3])


def test_colorize_near_is_warm_and_far_is_cool():
    near, far = colorize(np.array([[40.0, 4.0]], np.float32), max_disp_px=40.0)[0].astype(int)

    assert near[0] > 2 * near[2] and far[2] > 2 * far[0]  # RGB: near red, far blue (turbo), not swapped as BGR


def test_colorize_invalid_is_black_and_valid_is_not():
    """Invalid is what the 16-bit PNG and density call invalid, as the sidecar says (black): a finite 0 px or below
    was drawn in colour."""
    d = np.array([[np.nan, np.inf, -3.0, 0.0, 0.01, 5.0, 10.0]], np.float32)

    rgb = colorize(d, max_disp_px=10.0)

    assert (rgb[0, :4] == 0).all()
    assert (rgb[0, 4:].max(axis=1) > 0).all()  # the colour of the smallest disparity is dark, not black
    assert preview_top_px(np.array([[-50.0, -50.0, 2.0]], np.float32)) == 2.0  # the range is of valid pixels too


def test_colorize_default_range_and_all_invalid():
    d = np.linspace(0, 100, 200, dtype=np.float32).reshape(10, 20)

    np.testing.assert_array_equal(colorize(d), colorize(d, max_disp_px=float(np.percentile(d, 99))))
    assert not colorize(np.full((2, 2), np.nan, np.float32)).any()


def test_colorize_min_disp_shifts_the_range():
    d = np.array([[21.0, 30.0]], np.float32)  # minus 20: 1 px, not 0 px, which is invalid (black)

    np.testing.assert_array_equal(colorize(d, max_disp_px=30.0, min_disp_px=20.0), colorize(d - 20.0, max_disp_px=10.0))


@pytest.mark.parametrize("limits", [{"max_disp_px": float("nan")}, {"min_disp_px": float("inf")}])
def test_colorize_refuses_a_range_limit_that_is_not_finite(limits):
    """max_disp_px=nan (np.nanmax of a map without a match) painted every pixel one colour without a word."""
    name, value = next(iter(limits.items()))
    with pytest.raises(InputError, match=rf"^{name} must be a finite number of pixels, got {value}$"):
        colorize(np.array([[20.0, 30.0]], np.float32), **limits)


def test_a_16bit_image_holding_12bit_values_is_pointed_out_once(tmp_path, monkeypatch):
    import rtstereo.io.images as images

    monkeypatch.setattr(images.LOW_BIT_DEPTH_SAID, "said", False)
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((4, 6), np.uint16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "black.png")  # says nothing of the bit depth, and does not use up the warning
    twelve = (np.random.default_rng(0).random((4, 6)) * 4095).astype(np.uint16)  # a 12-bit sensor's values
    cv2.imwrite(str(tmp_path / "a.png"), twelve)
    cv2.imwrite(str(tmp_path / "b.png"), twelve)
    cv2.imwrite(str(tmp_path / "full.png"), twelve * 16)
    with pytest.warns(
        UserWarning, match=r"a.png is a 16-bit image whose values stay at or below \d+ \(10-, 12- or 14-b"
    ):
        dark = read_image(tmp_path / "a.png")
    assert dark.max() <= 15  # what /257 leaves of them: the reason for the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "b.png")  # said once for the run
        monkeypatch.setattr(images.LOW_BIT_DEPTH_SAID, "said", False)
        read_image(tmp_path / "full.png")  # the whole 16-bit range: nothing to say


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        (0, 16383, r"stay at or below 16383 \(10-, 12- or 14-bit camera data\?\): .* at most 64 of 256 grey levels"),
        (30000, 33000, r"span only 30000\.\.33000: read at 8 bits \(divided by 257\) it keeps only 13 of 256 grey"),
    ],
)
def test_a_16bit_image_that_keeps_few_levels_at_8_bits_is_pointed_out(tmp_path, monkeypatch, low, high, match):
    """14-bit data (64 of the 256 levels) and values in a narrow band (30000..33000: 13 levels) were read at 8 bits
    unsaid: only data below 4096 was pointed out."""
    import rtstereo.io.images as images

    monkeypatch.setattr(images.LOW_BIT_DEPTH_SAID, "said", False)
    values = np.linspace(low, high, 24).reshape(4, 6).round().astype(np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), values)
    with pytest.warns(UserWarning, match=match):
        read = read_image(tmp_path / "a.png")
    assert len(np.unique(read)) <= 64
    # a band of 64 levels or more, and a blank image at any level, have nothing to say
    cv2.imwrite(str(tmp_path / "wide.png"), values + np.linspace(0, 257 * 64, 24).reshape(4, 6).astype(np.uint16))
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((4, 6), 30000, np.uint16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(images.LOW_BIT_DEPTH_SAID, "said", False)
        read_image(tmp_path / "blank.png")
        read_image(tmp_path / "wide.png")


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda p: p.write_text("not an array\n"), r"cannot read .*bad\.npy: not a numpy \.npy file, or damaged"),
        (lambda p: np.save(p, np.array([["a", "b"]])), r"cannot read .*bad\.npy: it holds <U1 values, not numbers"),
        (lambda p: np.save(p, np.array([[1, "b"]], dtype=object)), r"not a numpy \.npy file, or damaged"),
        # read as 1 px where True, 0 (unknown) elsewhere; complex values lost their imaginary part
        (lambda p: np.save(p, np.ones((4, 4), bool)), r"bad\.npy: it holds bool values \(a mask\?\), not disparities"),
        (lambda p: np.save(p, np.ones((4, 4), np.complex64)), r"bad\.npy: it holds complex64 values, not disparities"),
        (lambda p: p.write_bytes(_npy_bytes()[:-5]), r"not a numpy \.npy file, or damaged"),
        (lambda p: np.savez(p.with_suffix(".npz"), a=1) or p.with_suffix(".npz").rename(p), r"not a numpy \.npy"),
    ],
)
def test_npy_damaged_or_not_numbers_is_one_input_error(tmp_path, write, match):
    path = tmp_path / "bad.npy"
    write(path)

    with pytest.raises(InputError, match=match):
        read_disparity(path)


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((4, 4), np.float32))
    return buffer.getvalue()


def test_an_unreadable_pfm_is_one_line_naming_it(tmp_path, monkeypatch):
    from rtstereo.io.pfm import read_pfm, write_pfm

    path = tmp_path / "d.pfm"
    write_pfm(path, np.ones((2, 3), np.float32))

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)  # chmod 000 does not stop root, who runs these tests
    with pytest.raises(InputError, match=r"cannot read .*d\.pfm: Permission denied"):
        read_pfm(path)


def test_the_written_preview_spans_the_maps_own_range_not_the_models_search_range(tmp_path):
    """A pair of 0-36 px disparities from a model that searches 192 px: the nearest pixels get the top
    colour of the map, not a colour a fifth of the way up (the whole preview was one blue)."""
    from rtstereo.sinks.files import save_result
    from rtstereo.types import DisparityResult

    d = np.tile(np.linspace(0.0, 36.0, 64, dtype=np.float32), (8, 1))
    result = DisparityResult(disparity_px=d, timings_ms={}, model="m", settings={"max_disp": 192})
    written = save_result(result, tmp_path, "p", ("color",))
    preview = cv2.cvtColor(cv2.imread(str(written[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(preview, colorize(d))
    assert not np.array_equal(preview, colorize(d, max_disp_px=192.0))


# ---- atomic writes of the public writers ---------------------------------------------------------


class _Interrupted(BaseException):
    pass


@pytest.mark.parametrize("suffix", [".png", ".pfm", ".npy"])
def test_an_interrupted_write_disparity_leaves_the_earlier_file_as_it_was(tmp_path, monkeypatch, suffix):
    # written in place, a Ctrl-C halfway left a truncated map under the real name (the CLI's staging did not cover
    # rtstereo.io.write_disparity, which the README's Python API uses)
    from rtstereo.io import disparity, images

    path = tmp_path / f"d{suffix}"
    write_disparity(path, _ramp())
    before = path.read_bytes()

    def halfway(target, *args, **kwargs):
        with open(target, "wb") as file:
            file.write(b"trunc")
        raise _Interrupted

    monkeypatch.setattr(images, "_write_bytes", halfway)
    monkeypatch.setattr(disparity, "write_pfm", halfway)
    monkeypatch.setattr(disparity, "_save_npy", halfway)
    with pytest.raises(_Interrupted):
        write_disparity(path, _ramp() + 1)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def _png_header(path: Path, width: int, height: int, depth: int) -> Path:
    """A grey PNG that says it is ``width`` x ``height`` and holds no pixels: its readers stop at the header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


def test_images_over_the_pixel_limits_of_opencv_and_pil_are_one_line_each(tmp_path):
    """A 1.2-gigapixel image stopped predict with OpenCV's assertion (CV_IO_MAX_IMAGE_PIXELS), a 200 MP disparity
    map compare with PIL's DecompressionBombError: tracebacks both; a 90 MP map was warned to be 'a decompression
    bomb DOS attack'."""
    from rtstereo.compare import looks_like_disparity
    from rtstereo.io.disparity import is_colour

    with pytest.raises(InputError, match=r"giga\.png: the image has more than the 1073741824 pixels OpenCV decodes"):
        read_image(_png_header(tmp_path / "giga.png", 40000, 30000, 8))
    over_pil = _png_header(tmp_path / "map200.png", 20000, 10000, 16)
    with pytest.raises(InputError, match=r"map200\.png: the image has more than the 178956970 pixels PIL opens$"):
        read_disparity(over_pil)
    with pytest.raises(InputError, match=r"more than the 178956970 pixels PIL opens"):
        looks_like_disparity(over_pil)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning is a warning of its own
        assert looks_like_disparity(_png_header(tmp_path / "map90.png", 10000, 9000, 16))
        assert not is_colour(tmp_path / "map90.png")


# ---------------------------------------------------------------------------------------------
# Paths: "~" and URLs


def test_a_leading_tilde_in_output_folders_is_the_home_folder(tmp_path, monkeypatch):
    from rtstereo.batch.job import BatchJob
    from rtstereo.bench import BenchReport
    from rtstereo.sinks.files import save_result
    from rtstereo.types import DisparityResult

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # where a "~" folder was made
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    written = save_result(DisparityResult(np.ones((4, 6), np.float32)), "~/out", "a", formats=("pfm",))
    assert written == [home / "out" / "a.pfm"] and written[0].is_file()
    assert BatchJob(output="~/batch").output == home / "batch"
    assert all(path.parent == home / "sweep" for path in BenchReport([], {}, {}).save("~/sweep"))
    assert not (tmp_path / "work" / "~").exists()


def test_a_leading_tilde_is_the_home_folder_as_the_shell_makes_it(tmp_path, monkeypatch):
    from rtstereo.io.calibration import write_calibration
    from rtstereo.sources.pairs import resolve_pairs
    from rtstereo.types import Calibration

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # where a "~" folder would be made
    tmp_path = tmp_path / "home"
    tmp_path.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    image = np.full((4, 6, 3), 80, np.uint8)
    write_image("~/l.png", image)  # was written into a folder named "~" under the working folder
    write_image("~/r.png", image)
    write_disparity("~/d.pfm", _ramp())
    write_calibration("~/rig.json", Calibration(400.0, 400.0, 1.0, 1.0, 0.5, 0.1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pfm", "l.png", "r.png", "rig.json"]
    np.testing.assert_array_equal(read_image("~/l.png"), image)  # was "image not found: ~/l.png"
    np.testing.assert_array_equal(read_disparity("~/d.pfm"), _ramp())
    assert read_grey("~/l.png").shape == (4, 6)
    assert read_calibration("~/rig.json").baseline_m == pytest.approx(0.1)
    assert [pair.left for pair in resolve_pairs("~/l.png", "~/r.png")] == [str(tmp_path / "l.png")]
    with pytest.raises(InputError, match=re.escape(f"image not found: {tmp_path / 'none.png'}")):
        read_image("~/none.png")


@pytest.mark.parametrize("url", ["ftp://example.org/l.png", "s3://bucket/l.png", "sftp://host/data/l.png"])
def test_an_unsupported_url_scheme_is_refused_in_one_line_naming_it(url):
    from rtstereo.sources.pairs import resolve_pairs

    scheme = url.split(":", 1)[0]
    expected = rf"image {re.escape(url)}: {scheme}:// URLs are not read \(only http://, https:// and file://\)"
    with pytest.raises(InputError, match=expected):  # was "image not found: ftp:/example.org/l.png"
        read_image(url)
    with pytest.raises(InputError, match="left " + expected):
        resolve_pairs(url, url.replace("l.png", "r.png"))
    with pytest.raises(InputError, match="image not found: C:"):  # a Windows drive letter is no scheme
        read_image("C://data/l.png")
