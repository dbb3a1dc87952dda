"""Dataset layout detection and Sample loading, on small files written in the real layouts.

Each test builds a tiny copy of one dataset's folder tree in ``tmp_path`` (images a few dozen pixels
wide unless the reader infers the scale from the width) and checks what :func:`find_samples` makes of
it: dataset name, label, ground-truth scale, disparity hint, and the decoded ground truth and mask.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rtstereo.datasets import LAYOUTS, Sample, find_samples
from rtstereo.errors import DatasetError, InputError, RtStereoWarning

HEIGHT, WIDTH = 40, 60


# ---------------------------------------------------------------------------------------------
# Writers for the test files. They use PIL/OpenCV directly (not rtstereo.io) so that a bug in the
# package's own writers cannot hide a bug in its readers.


def _save_rgb(path: Path, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def _save_grey8(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8)).save(path)


def _save_png16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), values.astype(np.uint16))


def _save_palette_mask(path: Path, inside: np.ndarray) -> None:
    """A Middlebury eval mask: palette PNG whose index 1 is white (255 = in region)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(inside.astype(np.uint8))
    image.putpalette([0, 0, 0, 255, 255, 255])
    assert image.mode == "P"
    image.save(path)


def _save_pfm(path: Path, values: np.ndarray) -> None:
    """Little-endian grey PFM, rows bottom to top."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = values.shape
    header = f"Pf\n{width} {height}\n-1.0\n".encode()
    path.write_bytes(header + np.flipud(values).astype("<f4").tobytes())


def _raw_8bit_gt(scale: int, height: int = HEIGHT, width: int = WIDTH, seed: int = 1) -> np.ndarray:
    """8-bit ground-truth values (disparity * scale), with a band of 0 = unknown; x 16 (tsukuba) holds whole
    pixels, as the real map does."""
    rng = np.random.default_rng(seed)
    if scale == 16:
        raw = (rng.integers(1, 16, (height, width)) * 16).astype(np.uint8)
    else:
        raw = rng.integers(1, 256, (height, width)).astype(np.uint8)
    raw[:, :3] = 0
    return raw


def _expected(raw: np.ndarray, scale: float) -> np.ndarray:
    return np.where(raw == 0, np.nan, raw.astype(np.float32) / scale).astype(np.float32)


def _only(samples: list[Sample]) -> Sample:
    assert len(samples) == 1, [s.name for s in samples]
    return samples[0]


def _assert_gt(sample: Sample, expected: np.ndarray) -> None:
    gt = sample.load_gt()
    assert gt.dtype == np.float32 and gt.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(gt), np.isnan(expected))
    np.testing.assert_allclose(gt, expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Middlebury


@pytest.mark.parametrize(
    ("scene", "left", "right", "gt", "scale"),
    [("tsukuba", "im3", "im4", "disp3", 16), ("venus", "im2", "im6", "disp2", 8)],
)
def test_middlebury_2001_scale_hint_mask_and_unknown(tmp_path, scene, left, right, gt, scale):
    folder = tmp_path / "middlebury2001" / scene
    left_rgb = _save_rgb(folder / f"{left}.png", seed=0)
    right_rgb = _save_rgb(folder / f"{right}.png", seed=1)
    raw = _raw_8bit_gt(scale)
    _save_grey8(folder / f"{gt}.pgm", raw)
    inside = np.zeros((HEIGHT, WIDTH), bool)
    inside[5:30, 10:50] = True
    _save_palette_mask(folder / "eval_masks" / "nonocc.png", inside)
    with Image.open(folder / "eval_masks" / "nonocc.png") as im:
        assert im.mode == "P"  # the real masks are palette PNGs: the reader must map them to 255

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset) == (scene, "middlebury2001")
    assert (sample.left_path.name, sample.right_path.name, sample.gt_path.name) == (
        f"{left}.png",
        f"{right}.png",
        f"{gt}.pgm",
    )
    assert sample.gt_scale == scale
    assert sample.max_disp_hint_px == 256 // scale
    _assert_gt(sample, _expected(raw, scale))
    np.testing.assert_array_equal(sample.load_nonocc(), inside)
    got_left, got_right, got_gt, got_mask = sample.load()
    np.testing.assert_array_equal(got_left, left_rgb)
    np.testing.assert_array_equal(got_right, right_rgb)
    assert np.isnan(got_gt[:, :3]).all() and np.isfinite(got_gt[:, 3:]).all()
    assert got_mask.dtype == bool


def test_middlebury_2001_without_eval_masks_has_no_mask(tmp_path):
    folder = tmp_path / "tsukuba"
    _save_rgb(folder / "im3.png")
    _save_rgb(folder / "im4.png", seed=1)
    _save_grey8(folder / "disp3.pgm", _raw_8bit_gt(16))

    sample = _only(find_samples(folder))  # a scene folder given directly

    assert sample.name == "tsukuba" and sample.nonocc_path is None
    assert sample.load_nonocc() is None


@pytest.mark.parametrize("gt_suffix", [".png", ".pgm"])  # the PPM version of 2003 has PGM ground truth
@pytest.mark.parametrize(("width", "scale"), [(450, 4), (900, 2), (1800, 1)])
def test_middlebury_2003_scale_from_image_width(tmp_path, width, scale, gt_suffix):
    folder = tmp_path / "cones"
    _save_rgb(folder / "im2.png", height=4, width=width)
    _save_rgb(folder / "im6.png", height=4, width=width, seed=1)
    raw = _raw_8bit_gt(scale, height=4, width=width)
    _save_grey8(folder / f"disp2{gt_suffix}", raw)

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset) == ("cones", "middlebury2003")
    assert sample.gt_scale == scale
    assert sample.max_disp_hint_px == 256 // scale
    _assert_gt(sample, _expected(raw, scale))


@pytest.mark.parametrize(
    ("folder_name", "names", "size_wh", "suffix", "scale"),
    [
        ("copy_1", ("im3", "im4", "disp3"), (WIDTH, HEIGHT), ".pgm", 16),  # tsukuba's own file names
        ("copy_2", ("im2", "im6", "disp2"), (384, 288), ".pgm", 16),  # tsukuba's size
        ("Tsukuba", ("im2", "im6", "disp2"), (WIDTH, HEIGHT), ".png", 16),  # its name, any case
        ("copy_3", ("im2", "im6", "disp2"), (434, 383), ".png", 8),  # venus as PNG is no 2003 scene
        ("copy_4", ("im2", "im6", "disp2"), (WIDTH, HEIGHT), ".png", 8),
    ],
)
def test_middlebury_2001_scale_does_not_hang_on_the_folder_name_or_file_type(
    tmp_path, folder_name, names, size_wh, suffix, scale
):
    folder = tmp_path / folder_name
    width, height = size_wh
    _save_rgb(folder / f"{names[0]}.png", height=height, width=width)
    _save_rgb(folder / f"{names[1]}.png", height=height, width=width, seed=1)
    raw = _raw_8bit_gt(scale, height=height, width=width)
    _save_grey8(folder / f"{names[2]}{suffix}", raw)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # values that agree with the scale: no warning
        sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset, sample.gt_scale) == (folder_name, "middlebury2001", scale)
    assert sample.max_disp_hint_px == 256 // scale
    _assert_gt(sample, _expected(raw, scale))


@pytest.mark.parametrize(
    ("scene", "names", "suffixes", "size_wh", "scale"),
    [
        # tsukuba as the 2001 page publishes it: views 3 and 4 of its 5x5 grid, whole pixels x 16
        ("tsukuba", ("scene1.row3.col3", "scene1.row3.col4", "truedisp.row3.col3"), (".ppm", ".pgm"), (384, 288), 16),
        ("copy", ("scene1.row3.col3", "scene1.row3.col4", "truedisp.row3.col3"), (".ppm", ".pgm"), (WIDTH, HEIGHT), 16),
        ("map", ("im0", "im1", "disp0"), (".pgm", ".pgm"), (284, 216), 8),  # map: two grey views, x 8
    ],
)
def test_middlebury_2001_scenes_in_the_file_names_of_the_2001_page(tmp_path, scene, names, suffixes, size_wh, scale):
    """They were no known layout: eval on the official tsukuba or map download said so and stopped."""
    folder = tmp_path / "middlebury2001" / scene
    width, height = size_wh
    for view, seed in ((1, 0), (2, 1), (3, 2), (4, 3), (5, 4)) if scene != "map" else ():
        _save_rgb(folder / f"scene1.row3.col{view}.ppm", height=height, width=width, seed=seed)
    for stem, seed in zip(names[:2], (0, 1)):
        if not (folder / f"{stem}{suffixes[0]}").exists():
            _save_grey8(folder / f"{stem}{suffixes[0]}", np.random.default_rng(seed).integers(0, 256, (height, width)))
    raw = _raw_8bit_gt(scale, height=height, width=width)
    _save_grey8(folder / f"{names[2]}{suffixes[1]}", raw)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # values that agree with the scale: no warning
        sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset, sample.gt_scale) == (scene, "middlebury2001", scale)
    assert (sample.left_path.stem, sample.right_path.stem, sample.gt_path.stem) == names
    assert sample.max_disp_hint_px == 256 // scale
    _assert_gt(sample, _expected(raw, scale))


def test_a_disp0_image_beside_a_two_view_scene_is_no_middlebury_2001_map(tmp_path):
    """im0, im1 and disp0 are map's names; in a MiddEval3 or ETH3D folder a disp0.png (a preview) makes no second scene
    of its images (the two-view layout claims them first)."""
    folder = tmp_path / "Adirondack"
    _save_rgb(folder / "im0.png")
    _save_rgb(folder / "im1.png", seed=1)
    _save_pfm(folder / "disp0GT.pfm", np.full((HEIGHT, WIDTH), 4.0, np.float32))
    _save_grey8(folder / "disp0.png", np.full((HEIGHT, WIDTH), 32))
    (folder / "calib.txt").write_text("ndisp=32\n")

    assert _only(find_samples(tmp_path)).dataset == "middlebury2014"


def test_middlebury_2001_values_that_disagree_with_the_scale_are_warned_about(tmp_path):
    # tsukuba's whole pixels x 16 in a folder that nothing else marks as tsukuba: read / 8, with a warning
    whole_x16 = tmp_path / "renamed"
    _save_rgb(whole_x16 / "im2.png")
    _save_rgb(whole_x16 / "im6.png", seed=1)
    _save_grey8(whole_x16 / "disp2.pgm", _raw_8bit_gt(16))
    with pytest.warns(UserWarning, match=r"renamed: every value of .*disp2.pgm is a multiple of 16.* value / 8"):
        assert _only(find_samples(whole_x16)).gt_scale == 8
    # eighths of a pixel in a folder named tsukuba: read / 16, with a warning
    eighths = tmp_path / "tsukuba"
    _save_rgb(eighths / "im2.png")
    _save_rgb(eighths / "im6.png", seed=1)
    _save_grey8(eighths / "disp2.pgm", _raw_8bit_gt(8))
    with pytest.warns(UserWarning, match=r"tsukuba: the scene is read as tsukuba .* not multiples of 16"):
        assert _only(find_samples(eighths)).gt_scale == 16


def test_real_tsukuba_and_venus_under_other_names_keep_their_scale(tmp_path, shared):
    real = shared("data", "real", "middlebury2001")
    # Both copies renamed, folder and files (tsukuba's im3/im4/disp3 become im2/im6/disp2): its size still tells.
    for scene, copy, stems in (
        ("tsukuba", "scene_a", ("im3", "im4", "disp3")),
        ("venus", "scene_b", ("im2", "im6", "disp2")),
    ):
        (tmp_path / copy).mkdir()
        for stem, new_stem, suffix in zip(stems, ("im2", "im6", "disp2"), (".png", ".png", ".pgm")):
            (tmp_path / copy / f"{new_stem}{suffix}").symlink_to(real / scene / f"{stem}{suffix}")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copies = {s.name: s for s in find_samples(tmp_path)}
    originals = {s.name: s for s in find_samples(real)}

    for scene, copy in (("tsukuba", "scene_a"), ("venus", "scene_b")):
        assert copies[copy].gt_scale == originals[scene].gt_scale
        np.testing.assert_array_equal(copies[copy].load_gt(), originals[scene].load_gt())


# 2006 scenes are up to 1396 px wide at full size (Midd1): 698 and 465 at half and third size
@pytest.mark.parametrize(("width", "scale"), [(1390, 1), (695, 2), (463, 3), (1396, 1), (698, 2), (465, 3)])
def test_middlebury_2005_scale_and_dmin(tmp_path, width, scale):
    folder = tmp_path / "Art"
    _save_rgb(folder / "view1.png", height=4, width=width)
    _save_rgb(folder / "view5.png", height=4, width=width, seed=1)
    raw = _raw_8bit_gt(scale, height=4, width=width)
    _save_grey8(folder / "disp1.png", raw)
    (folder / "dmin.txt").write_text("270\n")

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset) == ("Art", "middlebury2005")
    assert sample.gt_scale == scale and sample.max_disp_hint_px == 256 // scale
    assert sample.disparity_offset_px == 270.0
    _assert_gt(sample, _expected(raw, scale))


def test_middlebury_2005_without_dmin_has_zero_offset(tmp_path):
    folder = tmp_path / "Aloe"
    _save_rgb(folder / "view1.png", height=4, width=695)
    _save_rgb(folder / "view5.png", height=4, width=695, seed=1)
    _save_grey8(folder / "disp1.png", _raw_8bit_gt(2, height=4, width=695))

    assert _only(find_samples(tmp_path)).disparity_offset_px == 0.0


def test_middlebury_2005_download_of_all_views_reads_the_two_view_downloads_pair(tmp_path):
    """Its views under Illum1-3/Exp0-2 beside disp1.png were no known layout."""
    folder = tmp_path / "Aloe"
    for illumination, exposure in (("Illum1", "Exp0"), ("Illum2", "Exp1"), ("Illum3", "Exp2")):
        for view in range(7):
            _save_rgb(folder / illumination / exposure / f"view{view}.png", height=4, width=427, seed=view)
    raw = _raw_8bit_gt(3, height=4, width=427)
    _save_grey8(folder / "disp1.png", raw)
    _save_grey8(folder / "disp5.png", raw)
    (folder / "dmin.txt").write_text("270\n")

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset, sample.gt_scale) == ("Aloe", "middlebury2005", 3)
    assert sample.disparity_offset_px == 270
    assert (sample.left_path, sample.right_path) == (folder / "Illum2/Exp1/view1.png", folder / "Illum2/Exp1/view5.png")
    _assert_gt(sample, _expected(raw, 3))


def _write_two_view_scene(folder: Path, calib: str | None) -> tuple[np.ndarray, np.ndarray]:
    """im0/im1, disp0GT.pfm (inf = invalid) and mask0nocc.png (255 non-occluded, 128 occluded)."""
    _save_rgb(folder / "im0.png")
    _save_rgb(folder / "im1.png", seed=1)
    gt = np.random.default_rng(2).uniform(1, 80, (HEIGHT, WIDTH)).astype(np.float32)
    gt[0, :] = np.inf
    _save_pfm(folder / "disp0GT.pfm", gt)
    mask = np.full((HEIGHT, WIDTH), 255, np.uint8)
    mask[:, :8] = 128
    mask[0, :] = 0
    _save_grey8(folder / "mask0nocc.png", mask)
    if calib is not None:
        (folder / "calib.txt").write_text(calib)
    return np.where(np.isinf(gt), np.nan, gt).astype(np.float32), mask == 255


MIDDEVAL3_CALIB = (
    "cam0=[1038.018 0 322.037; 0 1038.018 243.393; 0 0 1]\n"
    "cam1=[1038.018 0 375.308; 0 1038.018 243.393; 0 0 1]\n"
    "doffs=53.271\nbaseline=176.252\nwidth=60\nheight=40\nndisp=73\nisint=0\nvmin=8\nvmax=65\n"
)


def test_middlebury_2014_midd_eval3(tmp_path):
    folder = tmp_path / "MiddEval3" / "trainingQ" / "Adirondack"
    expected_gt, expected_mask = _write_two_view_scene(folder, MIDDEVAL3_CALIB)

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset) == ("Adirondack", "middlebury2014")
    assert sample.max_disp_hint_px == 73  # ndisp of calib.txt
    assert sample.disparity_offset_px == pytest.approx(53.271)
    assert sample.calib_path == folder / "calib.txt"
    assert sample.gt_scale is None
    _assert_gt(sample, expected_gt)  # inf in the PFM reads as nan
    np.testing.assert_array_equal(sample.load_nonocc(), expected_mask)  # 128 (occluded) is not 255


def test_full_size_middlebury_2014_scene_reads_its_disp0_pfm(tmp_path):
    # The full-size 2014 (and 2021) downloads, e.g. Adirondack-perfect: disp0.pfm, no mask, calib.txt with ndisp.
    folder = tmp_path / "Adirondack-perfect"
    expected_gt, _ = _write_two_view_scene(folder, MIDDEVAL3_CALIB)
    (folder / "disp0GT.pfm").rename(folder / "disp0.pfm")
    (folder / "mask0nocc.png").unlink()
    _save_rgb(folder / "im1E.png")  # the other exposures and lightings: not pairs of their own

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset, sample.max_disp_hint_px) == ("Adirondack-perfect", "middlebury2014", 73)
    assert sample.gt_path == folder / "disp0.pfm" and sample.nonocc_path is None
    _assert_gt(sample, expected_gt)


def test_eth3d_two_view_has_no_ndisp(tmp_path):
    folder = tmp_path / "eth3d_two_view_training" / "delivery_area_1l"
    calib = "cam0=[541.7 0 553.8; 0 541.7 232.3; 0 0 1]\ncam1=[541.7 0 553.8; 0 541.7 232.3; 0 0 1]\n"
    calib += "doffs=0\nbaseline=59.9\nwidth=60\nheight=40\n"
    expected_gt, expected_mask = _write_two_view_scene(folder, calib)

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset) == ("delivery_area_1l", "eth3d")
    assert sample.max_disp_hint_px == 192  # no ndisp: the default range
    assert sample.disparity_offset_px == 0.0
    _assert_gt(sample, expected_gt)
    np.testing.assert_array_equal(sample.load_nonocc(), expected_mask)


def test_eth3d_given_by_its_own_folder_is_eth3d_though_its_calib_gives_ndisp(tmp_path):
    # the real ETH3D calib.txt gives ndisp (terrace: ndisp=713), so only the folder tells it from MiddEval3
    root = tmp_path / "two_view_training"
    _write_two_view_scene(root / "terrace", MIDDEVAL3_CALIB.replace("ndisp=73", "ndisp=60"))

    assert [(s.name, s.dataset) for s in find_samples(root)] == [("terrace", "eth3d")]


ETH3D_CALIB = (  # as ETH3D writes it: the two principal points one (doffs=0), ndisp, no vmin or vmax
    "cam0=[711.499 0 376.135; 0 711.499 227.447; 0 0 1]\ncam1=[711.499 0 376.135; 0 711.499 227.447; 0 0 1]\n"
    "doffs=0\nbaseline=59.9432\nwidth=60\nheight=40\nndisp=60"
)


def test_an_eth3d_scene_given_by_its_own_folder_is_eth3d(tmp_path):
    """`rtstereo eval .../two_view_training/terrace_1s` labelled it middlebury2014: no folder named it, and its
    calib.txt gives ndisp; its doffs of 0 without vmin and vmax is what no Middlebury calib.txt has."""
    _write_two_view_scene(tmp_path / "terrace_1s", ETH3D_CALIB)
    _write_two_view_scene(tmp_path / "Adirondack", MIDDEVAL3_CALIB)
    _write_two_view_scene(
        tmp_path / "Zero", MIDDEVAL3_CALIB.replace("doffs=53.271", "doffs=0")
    )  # vmin, vmax: Middlebury

    assert [(s.name, s.dataset) for s in find_samples(tmp_path / "terrace_1s")] == [("terrace_1s", "eth3d")]
    assert [(s.name, s.dataset) for s in find_samples(tmp_path / "Adirondack")] == [("Adirondack", "middlebury2014")]
    assert [(s.name, s.dataset) for s in find_samples(tmp_path / "Zero")] == [("Zero", "middlebury2014")]


@pytest.mark.parametrize("given", ["ETH3D", "ETH3D/two_view_training", "ETH3D/two_view_training_gt"])
def test_eth3d_ground_truth_in_its_own_tree_beside_the_images(tmp_path, given):
    # ETH3D's downloads as RAFT-Stereo and most stereo code keep them: images and ground truth in twin trees.
    root = tmp_path / "ETH3D"
    calib = MIDDEVAL3_CALIB.replace("ndisp=73", "ndisp=60")
    truth = {}
    for scene in ("delivery_area_1l", "terrace"):
        truth[scene] = _write_two_view_scene(root / "two_view_training" / scene, calib)
        (root / "two_view_training_gt" / scene).mkdir(parents=True)
        for name in ("disp0GT.pfm", "mask0nocc.png"):
            (root / "two_view_training" / scene / name).rename(root / "two_view_training_gt" / scene / name)
    _write_two_view_scene(root / "two_view_test" / "lakeside_1l", calib)
    (root / "two_view_test" / "lakeside_1l" / "disp0GT.pfm").unlink()

    samples = find_samples(tmp_path / given)

    with_gt = [s for s in samples if s.gt_path is not None]
    assert [(s.name, s.dataset, s.problem) for s in with_gt] == [
        ("delivery_area_1l", "eth3d", None),
        ("terrace", "eth3d", None),
    ], "each scene once, with its ground truth, none failed for lack of images"
    for sample in with_gt:
        assert sample.left_path == root / "two_view_training" / sample.name / "im0.png"
        assert sample.gt_path == root / "two_view_training_gt" / sample.name / "disp0GT.pfm"
        assert sample.max_disp_hint_px == 60 and sample.calib_path.parent.parent.name == "two_view_training"
        _assert_gt(sample, truth[sample.name][0])
        np.testing.assert_array_equal(sample.load_nonocc(), truth[sample.name][1])
    assert [s.name for s in samples if s.gt_path is None] == (["lakeside_1l"] if given == "ETH3D" else [])


def test_two_view_scene_without_calib_or_mask(tmp_path):
    folder = tmp_path / "scene"
    _write_two_view_scene(folder, calib=None)
    (folder / "mask0nocc.png").unlink()

    sample = _only(find_samples(tmp_path))

    assert sample.calib_path is None and sample.nonocc_path is None
    assert sample.dataset == "eth3d"  # without ndisp it cannot be a MiddEval3 scene


# ---------------------------------------------------------------------------------------------
# KITTI


def _raw_16bit_gt(seed: int) -> np.ndarray:
    """uint16 KITTI ground truth (d * 256) with 0 = invalid in the top rows."""
    raw = np.random.default_rng(seed).integers(1, 200 * 256, (HEIGHT, WIDTH)).astype(np.uint16)
    raw[:4] = 0
    return raw


def _write_kitti(root: Path, dirs: tuple[str, str, str, str], frames: tuple[str, ...]) -> dict[str, tuple]:
    left_dir, right_dir, occ_dir, noc_dir = dirs
    truth = {}
    for i, frame in enumerate(frames):
        _save_rgb(root / left_dir / f"{frame}_10.png", seed=10 * i)
        _save_rgb(root / right_dir / f"{frame}_10.png", seed=10 * i + 1)
        occ = _raw_16bit_gt(seed=10 * i + 2)
        noc = occ.copy()
        noc[:, :6] = 0  # occluded pixels have GT only in the "all pixels" map
        _save_png16(root / occ_dir / f"{frame}_10.png", occ)
        _save_png16(root / noc_dir / f"{frame}_10.png", noc)
        truth[frame] = (_expected_16bit(occ), noc > 0)
    return truth


def _expected_16bit(raw: np.ndarray) -> np.ndarray:
    return np.where(raw == 0, np.nan, raw.astype(np.float32) / 256).astype(np.float32)


def test_kitti_2012_one_sample_per_10_frame(tmp_path):
    root = tmp_path / "kitti2012" / "training"
    truth = _write_kitti(root, ("colored_0", "colored_1", "disp_occ", "disp_noc"), ("000000", "000001"))
    _save_rgb(root / "colored_0" / "000000_11.png")  # the second frame of a sequence: not a pair with GT
    _save_rgb(root / "colored_1" / "000000_11.png")
    _save_rgb(root / "colored_0" / "000002_10.png")  # no right image: listed, with its problem
    (root / "calib").mkdir()
    (root / "calib" / "000000.txt").write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\n")

    samples = find_samples(tmp_path)

    assert [s.name for s in samples] == ["training/000000", "training/000001", "training/000002"]
    missing = samples.pop()
    assert missing.problem == f"the right image {root / 'colored_1' / '000002_10.png'} is missing"
    with pytest.raises(DatasetError, match="right image .* is missing"):
        missing.load()
    assert {s.dataset for s in samples} == {"kitti2012"}
    assert all(s.max_disp_hint_px == 192 and s.gt_scale is None for s in samples)
    assert samples[0].calib_path == root / "calib" / "000000.txt" and samples[1].calib_path is None
    for sample, frame in zip(samples, ("000000", "000001"), strict=True):
        assert sample.left_path == root / "colored_0" / f"{frame}_10.png"
        _assert_gt(sample, truth[frame][0])
        np.testing.assert_array_equal(sample.load_nonocc(), truth[frame][1])


def test_a_set_of_ones_own_in_kittis_folders_is_read_one_sample_per_image(tmp_path):
    """image_2, image_3 and disp_occ_0 with frames named 0001.png (no NNNNNN_10.png): no known layout, said of a
    folder that holds KITTI's."""
    root = tmp_path / "mine"
    truth = _write_kitti(root, ("image_2", "image_3", "disp_occ_0", "disp_noc_0"), ("0001", "0002"))
    for path in sorted(root.rglob("*_10.png")):
        path.rename(path.with_name(path.name.replace("_10", "")))
    (root / "disp_occ_0" / "0002.png").unlink()
    _save_rgb(root / "image_2" / "0003.jpg")
    _save_rgb(root / "image_3" / "0003.jpg", seed=1)

    samples = find_samples(root)

    assert [(s.name, s.dataset, s.problem) for s in samples] == [(f"mine/000{i}", "kitti2015", None) for i in (1, 2, 3)]
    assert samples[0].left_path == root / "image_2" / "0001.png"
    _assert_gt(samples[0], truth["0001"][0])
    np.testing.assert_array_equal(samples[0].load_nonocc(), truth["0001"][1])
    assert samples[1].gt_path is None and samples[1].extra == {"gt_expected": root / "disp_occ_0" / "0002.png"}
    assert samples[2].gt_path is None and samples[2].right_path == root / "image_3" / "0003.jpg"


def test_kitti_2015_layout_and_calib(tmp_path):
    root = tmp_path / "kitti2015" / "training"
    truth = _write_kitti(root, ("image_2", "image_3", "disp_occ_0", "disp_noc_0"), ("000000", "000001"))
    (root / "calib_cam_to_cam").mkdir()
    (root / "calib_cam_to_cam" / "000001.txt").write_text("P_rect_02: 1 0 0 0 0 1 0 0 0 0 1 0\n")

    samples = find_samples(tmp_path)

    assert [(s.name, s.dataset) for s in samples] == [
        ("training/000000", "kitti2015"),
        ("training/000001", "kitti2015"),
    ]
    assert samples[1].calib_path == root / "calib_cam_to_cam" / "000001.txt"
    _assert_gt(samples[1], truth["000001"][0])
    np.testing.assert_array_equal(samples[1].load_nonocc(), truth["000001"][1])


@pytest.mark.parametrize("folder", ["disp_occ_0", "disp_noc_0"])
def test_an_8_bit_kitti_map_says_16_bit_ground_truth_belongs_there_not_to_give_a_scale(tmp_path, folder):
    """'8-bit disparity needs its scale (value / scale)': advice eval cannot take, there being no scale to give."""
    root = tmp_path / "kitti2015" / "training"
    _write_kitti(root, ("image_2", "image_3", "disp_occ_0", "disp_noc_0"), ("000000",))
    cv2.imwrite(str(root / folder / "000000_10.png"), np.full((HEIGHT, WIDTH), 4, np.uint8))
    (sample,) = find_samples(tmp_path)
    with pytest.raises(DatasetError, match=r"000000_10\.png: an 8-bit map where 16-bit ground truth belongs") as info:
        sample.load()
    assert "scale" not in str(info.value)
    # a colour preview keeps its own reason
    cv2.imwrite(
        str(root / folder / "000000_10.png"), np.dstack([np.full((HEIGHT, WIDTH), v, np.uint8) for v in (1, 2, 3)])
    )
    with pytest.raises(InputError, match="a colour image, not a disparity map"):
        sample.load()


def test_kitti_frame_folder_is_labelled_by_frame_and_gt_is_optional(tmp_path):
    # The layout of ../shared/data/real/kitti2012/000070: one frame, grey and colour views.
    root = tmp_path / "000070"
    for folder in ("colored_0", "colored_1", "image_0", "image_1"):
        _save_rgb(root / folder / "000070_10.png")

    sample = _only(find_samples(root))

    assert sample.name == "000070"
    assert sample.left_path.parent.name == "colored_0"  # colour views preferred over grey ones
    assert sample.load_gt() is None and sample.load_nonocc() is None


# ---------------------------------------------------------------------------------------------
# SceneFlow


def _write_sceneflow_frame(image_dir: Path, disparity_dir: Path | None, stem: str, seed: int = 0):
    _save_rgb(image_dir / "left" / f"{stem}.png", seed=seed)
    _save_rgb(image_dir / "right" / f"{stem}.png", seed=seed + 1)
    gt = np.random.default_rng(seed + 2).uniform(0.5, 90, (HEIGHT, WIDTH)).astype(np.float32)
    if disparity_dir is not None:
        _save_pfm(disparity_dir / "left" / f"{stem}.pfm", gt)
        _save_pfm(disparity_dir / "right" / f"{stem}.pfm", gt)  # the right map exists too: not a sample
    return gt


def test_hidden_files_and_folders_are_no_scenes(tmp_path):
    """macOS's AppleDouble companions ("._0006.png", "._000000_10.png": no images) were listed as pairs that failed,
    and a hidden copy of a scene (".ipynb_checkpoints") was scored as a scene of its own."""
    flow = tmp_path / "flow"
    _write_sceneflow_frame(flow / "RGB_cleanpass", flow / "disparity", "0006")
    for side in ("left", "right"):
        (flow / "RGB_cleanpass" / side / "._0006.png").write_bytes(b"\x00\x05\x16\x07")
    kitti = tmp_path / "kitti" / "training"
    _write_kitti(kitti, ("colored_0", "colored_1", "disp_occ", "disp_noc"), ("000000",))
    (kitti / "colored_0" / "._000000_10.png").write_bytes(b"\x00\x05\x16\x07")
    _write_sceneflow_frame(tmp_path / ".hidden" / "RGB_cleanpass", None, "0007")

    samples = find_samples(tmp_path)

    assert [s.name for s in samples] == ["flow/0006", "training/000000"]
    assert all(s.problem is None for s in samples)


def test_sceneflow_flat_with_occlusion(tmp_path):
    root = tmp_path / "FlyingThings3D_A-0032-0006"
    gt = _write_sceneflow_frame(root / "RGB_cleanpass", root / "disparity", "0006")
    occluded = np.zeros((HEIGHT, WIDTH), bool)
    occluded[:, 50:] = True
    for side in ("left", "right"):  # bilevel PNGs (mode "1") like the real maps; 255 = occluded
        (root / "occlusion" / side).mkdir(parents=True)
        Image.fromarray(occluded).save(root / "occlusion" / side / "0006.png")
    (root / "RGB_cleanpass" / "left" / "notes.txt").write_text("not an image")

    sample = _only(find_samples(tmp_path))  # the occlusion folder (left/right PNGs) is not a pair

    assert (sample.name, sample.dataset) == ("FlyingThings3D_A-0032-0006/0006", "sceneflow")
    assert sample.max_disp_hint_px == 192 and sample.nonocc_value is None
    _assert_gt(sample, gt)
    np.testing.assert_array_equal(sample.load_nonocc(), ~occluded)


@pytest.mark.parametrize(
    ("record", "hint_px"),
    [
        ('{"max_disp_px": 32.0}', 32),
        ('{"max_disp_px": 300.5}', 301),
        ('{"max_disp_px": "banana"}', 192),
        ("not json", 192),
        ("[]", 192),
    ],
)
def test_a_synth_set_is_searched_over_the_range_its_synth_json_records(tmp_path, record, hint_px):
    """A set `rtstereo synth --max-disp 32` wrote was searched over 192 px (88 % of a 128-px image unmatched)."""
    root = tmp_path / "synth"
    _write_sceneflow_frame(root / "RGB_cleanpass", root / "disparity", "000000")
    (root / "synth.json").write_text(record)
    assert _only(find_samples(root)).max_disp_hint_px == hint_px


def test_sceneflow_occlusion_masks_of_8_bit_grey_are_split_at_mid_grey(tmp_path):
    """A mask saved again as 8-bit grey (resized, or compressed) has values between 0 and 255."""
    mask = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    Image.fromarray(mask).save(tmp_path / "occ.png")
    sample = Sample(
        name="x",
        dataset="sceneflow",
        left_path=tmp_path / "l.png",
        right_path=tmp_path / "r.png",
        nonocc_path=tmp_path / "occ.png",
        nonocc_value=None,
    )
    assert sample.load_nonocc().tolist() == [[True, True, True, False, False, False]]


@pytest.mark.parametrize(
    ("values", "nonocc_value", "found"),
    [
        ([0, 1], 255, "no pixel of the mask is 255, the value of a non-occluded pixel (its values are 0 and 1)"),
        (
            [0, 65535],
            255,
            "no pixel of the mask is 255, the value of a non-occluded pixel (its largest value is 65535)",
        ),
        ([0, 1], None, "an occlusion mask of 0 and 1, read as no pixel occluded"),
    ],
)
def test_a_mask_saved_as_0_and_1_fails_its_scene_rather_than_empty_or_fill_its_noc_columns(
    tmp_path, values, nonocc_value, found
):
    """A user's own mask saved as mask.astype(np.uint8): as Middlebury's mask0nocc.png it left the noc columns empty
    (no pixel was 255), as SceneFlow's occlusion map it made them those of all pixels (no pixel was 128 or above)."""
    mask = np.array([values * 3], np.uint16 if max(values) > 255 else np.uint8)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    sample = Sample("x", "mine", tmp_path / "l.png", tmp_path / "r.png", nonocc_path=tmp_path / "mask.png")
    with pytest.raises(DatasetError) as caught:
        dataclasses.replace(sample, nonocc_value=nonocc_value).load_nonocc()
    assert str(caught.value).startswith(f"{tmp_path / 'mask.png'}: {found}")


@pytest.mark.parametrize(("values", "nonocc_value"), [([0, 128], 255), ([0, 0], 255), ([0, 0], None), ([0, 1], 0)])
def test_masks_that_are_all_occluded_or_empty_or_of_the_0_and_1_convention_are_read(tmp_path, values, nonocc_value):
    """Middlebury's 0 and 128 (every pixel occluded or unknown), an empty mask, and the FlyingThings3D subset's own
    0 (visible) and 1 (occluded) are no other convention."""
    Image.fromarray(np.array([values], np.uint8)).save(tmp_path / "mask.png")
    sample = Sample("x", "d", tmp_path / "l.png", tmp_path / "r.png", nonocc_path=tmp_path / "mask.png")
    expected = {255: [False, False], None: [True, True], 0: [True, False]}[nonocc_value]
    assert dataclasses.replace(sample, nonocc_value=nonocc_value).load_nonocc().tolist() == [expected]


def test_sceneflow_dense_matching_benchmark_style(tmp_path):
    root = tmp_path / "DenseMatchingBenchmark_demo_0"
    gt = _write_sceneflow_frame(root / "images", root / "disparity", "0")

    sample = _only(find_samples(tmp_path))

    assert (sample.name, sample.dataset) == ("DenseMatchingBenchmark_demo_0/0", "sceneflow")
    assert sample.nonocc_path is None and sample.load_nonocc() is None
    _assert_gt(sample, gt)


def test_sceneflow_nested_tree_maps_onto_disparity_tree(tmp_path):
    root = tmp_path / "FlyingThings3D"
    tail = Path("TRAIN", "A", "0000")
    gt = _write_sceneflow_frame(root / "frames_cleanpass" / tail, root / "disparity" / tail, "0006")
    _write_sceneflow_frame(root / "frames_cleanpass" / tail, None, "0007", seed=5)  # no GT for this one

    samples = find_samples(tmp_path)

    assert [s.name for s in samples] == [f"FlyingThings3D/TRAIN/A/0000/{stem}" for stem in ("0006", "0007")]
    assert samples[0].gt_path == root / "disparity" / tail / "left" / "0006.pfm"
    _assert_gt(samples[0], gt)
    assert samples[1].gt_path is None and samples[1].load_gt() is None


@pytest.mark.parametrize("given", [("TRAIN", "A", "0000"), ("TRAIN", "A"), ("TRAIN",)])
def test_a_sceneflow_sequence_given_alone_is_read(tmp_path, given):
    """frames_cleanpass/TRAIN/A/0000, below the image tree's own folder, was no known layout."""
    root = tmp_path / "FlyingThings3D"
    tail = Path("TRAIN", "A", "0000")
    gt = _write_sceneflow_frame(root / "frames_cleanpass" / tail, root / "disparity" / tail, "0006")

    sample = _only(find_samples(root / "frames_cleanpass" / Path(*given)))

    assert (sample.name, sample.dataset) == ("FlyingThings3D/TRAIN/A/0000/0006", "sceneflow")
    _assert_gt(sample, gt)


def test_flyingthings3d_subset_layout_with_negated_disparity_and_its_occlusion_masks(tmp_path):
    """The "FlyingThings3D subset" download: train/val, image_clean/image_final, negated left disparity."""
    root = tmp_path / "FlyingThings3D_subset"
    gt = _write_sceneflow_frame(root / "train" / "image_clean", None, "0000000")
    _save_pfm(root / "train" / "disparity" / "left" / "0000000.pfm", -gt)  # x_right - x_left, as published
    _save_pfm(root / "train" / "disparity" / "right" / "0000000.pfm", gt)
    occluded = np.zeros((HEIGHT, WIDTH), np.uint8)
    occluded[:, :7] = 1  # stored 0/1: any non-zero value is occluded
    for side in ("left", "right"):
        (root / "train" / "disparity_occlusions" / side).mkdir(parents=True)
        Image.fromarray(occluded).save(root / "train" / "disparity_occlusions" / side / "0000000.png")
    _save_rgb(root / "train" / "flow" / "left" / "into_future" / "0000000.png")  # other modalities: no pairs
    val_gt = _write_sceneflow_frame(root / "val" / "image_final", None, "0000001", seed=3)
    _save_pfm(root / "val" / "disparity" / "left" / "0000001.pfm", val_gt)  # converted already: read as it is

    train, val = find_samples(tmp_path)

    assert (train.name, train.dataset) == ("train/0000000", "sceneflow")
    assert train.gt_path == root / "train" / "disparity" / "left" / "0000000.pfm"
    _assert_gt(train, gt)
    np.testing.assert_array_equal(train.load_nonocc(), occluded == 0)
    assert (val.name, val.left_path.parent.parent.name) == ("val/0000001", "image_final")
    _assert_gt(val, val_gt)
    assert val.nonocc_path is None


def test_sceneflow_image_without_right_view_is_listed_with_its_problem(tmp_path):
    root = tmp_path / "sf"
    _write_sceneflow_frame(root / "images", root / "disparity", "0")
    _save_rgb(root / "images" / "left" / "1.png")

    samples = find_samples(tmp_path)
    assert [s.name for s in samples] == ["sf/0", "sf/1"]
    assert samples[0].problem is None and "right image" in samples[1].problem


@pytest.mark.parametrize("layout", ["sceneflow", "middlebury2014"])
@pytest.mark.parametrize("suffix", [".npy", ".png", ".tif", ".PFM"])
def test_a_set_of_ones_own_reads_the_maps_predict_writes(tmp_path, suffix, layout):
    """A user's own set in the SceneFlow or MiddEval3 layout with .npy, 16-bit PNG or float TIFF ground truth (the
    maps predict writes) was "without ground truth": eval stopped with "none with a disparity map to score against"
    (a MiddEval3 scene without calib.txt was no scene at all)."""
    root = tmp_path / "mine"
    if layout == "sceneflow":
        gt = _write_sceneflow_frame(root / "images", None, "0")
        (root / "disparity" / "left").mkdir(parents=True)
        path = root / "disparity" / "left" / f"0{suffix}"
    else:
        _write_two_view_scene(root, None)
        (root / "disp0GT.pfm").unlink()
        gt = np.random.default_rng(2).uniform(1, 80, (HEIGHT, WIDTH)).astype(np.float32)
        path = root / f"disp0GT{suffix}"
    gt = np.round(gt * 256) / 256  # what 16-bit PNG stores
    if suffix == ".npy":
        np.save(path, gt)
    elif suffix == ".PFM":  # a suffix in capitals was "not a format eval reads"
        _save_pfm(path, gt)
    elif suffix == ".png":
        cv2.imwrite(str(path), (gt * 256).astype(np.uint16))
    else:
        cv2.imwrite(str(path), gt)

    sample = _only(find_samples(root))

    assert sample.gt_path == path and sample.problem is None
    _assert_gt(sample, gt)


def test_a_midd_eval3_layout_map_in_a_format_not_read_fails_its_scene_by_name_with_the_formats_read(tmp_path):
    _write_two_view_scene(tmp_path / "mine", MIDDEVAL3_CALIB)
    (tmp_path / "mine" / "disp0GT.pfm").rename(tmp_path / "mine" / "disp0GT.exr")

    sample = _only(find_samples(tmp_path))

    assert sample.gt_path == tmp_path / "mine" / "disp0GT.exr"
    assert sample.problem == (
        f"ground truth {sample.gt_path}: not a format eval reads; expected disp0GT.pfm, disp0GT.npy, a 16-bit "
        "disp0GT.png (value / 256, 0 = invalid) or a floating-point disp0GT.tif"
    )


def test_a_sceneflow_layout_map_in_a_format_not_read_fails_its_frame_by_name_with_the_formats_read(tmp_path):
    root = tmp_path / "mine"
    _write_sceneflow_frame(root / "images", root / "disparity", "0")
    _write_sceneflow_frame(root / "images", None, "1")
    (root / "disparity" / "left" / "1.exr").write_bytes(b"v/1\x01")
    (root / "disparity" / "left" / "10.pfm").write_bytes(b"another frame's")

    samples = find_samples(root)

    assert [(s.name, s.problem) for s in samples] == [
        ("mine/0", None),
        (
            "mine/1",
            f"ground truth {root / 'disparity' / 'left' / '1.exr'}: not a format eval reads; expected 1.pfm, 1.npy, "
            "a 16-bit 1.png (value / 256, 0 = invalid) or a floating-point 1.tif",
        ),
    ]
    with pytest.raises(DatasetError, match="not a format eval reads"):
        samples[1].load()


def _middlebury_2005(folder: Path) -> None:
    _save_rgb(folder / "view1.png")
    _save_rgb(folder / "view5.png", seed=1)
    _save_grey8(folder / "disp1.png", _raw_8bit_gt(2))


def _kitti_2015_frame(folder: Path, frame: str) -> None:
    _write_kitti(folder, ("image_2", "image_3", "disp_occ_0", "disp_noc_0"), (frame,))


# (writer of two complete scenes or frames, the image to delete from the second, the second's name)
_SCENES_WITH_AN_IMAGE_MISSING = {
    "middlebury2001": (lambda root: [_tsukuba(root / n) for n in ("a", "b")], "b/im4.png", "b"),
    "middlebury2005": (lambda root: [_middlebury_2005(root / n) for n in ("a", "b")], "b/view1.png", "b"),
    "middlebury2014": (
        lambda root: [_write_two_view_scene(root / n, MIDDEVAL3_CALIB) for n in ("a", "b")],
        "b/im1.png",
        "b",
    ),
    "eth3d-both": (lambda root: [_write_two_view_scene(root / n, None) for n in ("a", "b")], "b/im*.png", "b"),
    "kitti": (
        lambda root: [_kitti_2015_frame(root, frame) for frame in ("000000", "000001")],
        "image_2/000001_10.png",
        "000001",
    ),
    "sceneflow": (
        lambda root: [_write_sceneflow_frame(root / "images", root / "disparity", n) for n in ("0", "1")],
        "images/left/1.png",
        "1",
    ),
}


@pytest.mark.parametrize("layout", sorted(_SCENES_WITH_AN_IMAGE_MISSING))
def test_a_scene_with_an_image_missing_is_listed_with_its_problem_beside_the_others(tmp_path, layout):
    write, missing, name = _SCENES_WITH_AN_IMAGE_MISSING[layout]
    root = tmp_path / "data"
    write(root)
    deleted = sorted(root.glob(missing))
    for path in deleted:
        path.unlink()

    complete, broken = find_samples(root)  # the scene did not vanish from the count

    assert complete.problem is None and complete.load_gt() is not None
    assert broken.name.endswith(name) and broken.gt_path is not None
    for path in deleted:  # each missing image named, with its own side
        side = "left" if path.stem in ("view1", "im0", "000001_10") or path.parent.name == "left" else "right"
        assert f"the {side} image {path} is missing" in broken.problem
    with pytest.raises(DatasetError, match="is missing"):
        broken.load()


# ---------------------------------------------------------------------------------------------
# DrivingStereo


@pytest.mark.parametrize(
    ("given", "left", "right", "truth"),
    [
        ("", "train-left-image", "train-right-image", "train-disparity-map"),
        (
            "test-left-image",
            "test-left-image/left-image-half-size",
            "test-right-image/right-image-half-size",
            "test-disparity-map/disparity-map-half-size",
        ),
    ],
)
def test_drivingstereo_train_and_test_trees(tmp_path, given, left, right, truth):
    """DrivingStereo's downloads were no known layout."""
    root = tmp_path / "DrivingStereo"
    sequence = "2018-07-09-16-11-56"
    frames = ("2018-07-09-16-11-56_2018-07-09-16-11-56-502", "2018-07-09-16-11-56_2018-07-09-16-11-57-902")
    raws = {}
    for i, frame in enumerate(frames):
        _save_rgb(root / left / sequence / f"{frame}.jpg", seed=10 * i)
        _save_rgb(root / right / sequence / f"{frame}.jpg", seed=10 * i + 1)
        raws[frame] = _raw_16bit_gt(seed=10 * i + 2)
        _save_png16(root / truth / sequence / f"{frame}.png", raws[frame])
        _save_png16(root / truth.replace("disparity", "depth") / sequence / f"{frame}.png", raws[frame])
    _save_rgb(root / left / sequence / "no_truth.jpg")
    _save_rgb(root / right / sequence / "no_truth.jpg", seed=1)
    _save_rgb(root / right / sequence / "no_left.jpg", seed=1)

    samples = find_samples(root / given)

    assert [(s.name, s.dataset) for s in samples] == [
        (frames[0], "drivingstereo"),
        (frames[1], "drivingstereo"),
        ("no_left", "drivingstereo"),
        ("no_truth", "drivingstereo"),
    ]
    for sample, frame in zip(samples, frames):
        assert (sample.left_path, sample.right_path) == (
            root / left / sequence / f"{frame}.jpg",
            root / right / sequence / f"{frame}.jpg",
        )
        assert sample.problem is None and sample.max_disp_hint_px == 192 and sample.nonocc_path is None
        _assert_gt(sample, _expected_16bit(raws[frame]))  # KITTI's encoding: value / 256, 0 = invalid
    assert samples[2].problem == f"the left image {root / left / sequence / 'no_left.jpg'} is missing"
    assert samples[3].gt_path is None and samples[3].problem is None
    assert find_samples(root / left / sequence) == samples  # a sequence given alone


@pytest.mark.parametrize("layout", ["kitti2015", "drivingstereo"])
@pytest.mark.parametrize("suffix", [".npy", ".pfm", ".tif", ".exr"])
def test_a_kitti_or_drivingstereo_layout_reads_a_sets_own_map_of_another_format(tmp_path, layout, suffix):
    """Their ground truth was read as ``stem.png`` only: a set's own ``.npy``, ``.pfm`` or float ``.tif`` there made
    the frame "without ground truth", as the SceneFlow and MiddEval3 layouts' did; one in a format eval does not read
    fails the frame by name. KITTI's own PNG is read first, as before (value / 256, 0 invalid)."""
    if layout == "kitti2015":
        root = tmp_path / "mine"
        left, right, truth, other = root / "image_2", root / "image_3", root / "disp_occ_0", root / "disp_noc_0"
    else:
        root = tmp_path / "ds"
        left, right = root / "train-left-image" / "seq", root / "train-right-image" / "seq"
        truth, other = root / "train-disparity-map" / "seq", None
    for frame in ("a", "b"):
        _save_rgb(left / f"{frame}.png", seed=1)
        _save_rgb(right / f"{frame}.png", seed=2)
    truth.mkdir(parents=True)
    gt = np.random.default_rng(3).uniform(1, 80, (HEIGHT, WIDTH)).astype(np.float32)
    path = truth / f"a{suffix}"
    if suffix == ".npy":
        np.save(path, gt)
    elif suffix == ".pfm":
        _save_pfm(path, gt)
    elif suffix == ".tif":
        cv2.imwrite(str(path), gt)
    else:
        path.write_bytes(b"v/1\x01")
    raw = _raw_16bit_gt(seed=4)
    _save_png16(truth / "b.png", raw)
    _save_pfm(truth / "b.pfm", np.full((HEIGHT, WIDTH), 7.0, np.float32))  # beside KITTI's PNG: the PNG is read
    if other is not None:
        _save_png16(other / "b.png", raw)

    own, kitti = find_samples(root)

    assert (own.name.endswith("a"), kitti.name.endswith("b")) == (True, True)
    assert own.gt_path == path
    if suffix == ".exr":
        assert own.problem == (
            f"ground truth {path}: not a format eval reads; expected a.pfm, a.npy, a 16-bit a.png (value / 256, "
            "0 = invalid) or a floating-point a.tif"
        )
    else:
        assert own.problem is None
        _assert_gt(own, gt)
    assert kitti.gt_path == truth / "b.png" and kitti.problem is None
    _assert_gt(kitti, _expected_16bit(raw))


def test_folders_named_left_image_but_not_drivingstereos_are_no_drivingstereo(tmp_path):
    _save_rgb(tmp_path / "train-left-image" / "seq" / "a.jpg")  # without its right twin
    _save_rgb(tmp_path / "my-left-images" / "a.jpg")  # a user's own folders
    _save_rgb(tmp_path / "my-right-images" / "a.jpg")

    with pytest.raises(DatasetError, match="no stereo dataset of a known layout"):
        find_samples(tmp_path)


# ---------------------------------------------------------------------------------------------
# Several datasets, names, errors


def _tsukuba(folder: Path) -> None:
    _save_rgb(folder / "im3.png")
    _save_rgb(folder / "im4.png", seed=1)
    _save_grey8(folder / "disp3.pgm", _raw_8bit_gt(16))


def test_folder_of_several_datasets(tmp_path):
    _tsukuba(tmp_path / "middlebury2001" / "tsukuba")
    _write_kitti(tmp_path / "kitti2015" / "training", ("image_2", "image_3", "disp_occ_0", "disp_noc_0"), ("000000",))
    demo = tmp_path / "sceneflow" / "demo"
    _write_sceneflow_frame(demo / "images", demo / "disparity", "0")
    _write_two_view_scene(tmp_path / "MiddEval3" / "Adirondack", MIDDEVAL3_CALIB)

    samples = find_samples(tmp_path)

    # os.walk order with sorted folders: MiddEval3, kitti2015, middlebury2001, sceneflow
    assert [(s.dataset, s.name) for s in samples] == [
        ("middlebury2014", "Adirondack"),
        ("kitti2015", "training/000000"),
        ("middlebury2001", "tsukuba"),
        ("sceneflow", "demo/0"),
    ]


def test_several_paths_are_concatenated(tmp_path):
    _tsukuba(tmp_path / "a" / "tsukuba")
    _write_sceneflow_frame(tmp_path / "b" / "images", tmp_path / "b" / "disparity", "0")

    samples = find_samples(tmp_path / "b", str(tmp_path / "a"))

    assert [s.name for s in samples] == ["b/0", "tsukuba"]


def test_duplicate_scene_names_get_their_dataset_prefix(tmp_path):
    _tsukuba(tmp_path / "middlebury2001" / "tsukuba")
    _write_two_view_scene(tmp_path / "MiddEval3" / "tsukuba", MIDDEVAL3_CALIB)
    _write_sceneflow_frame(tmp_path / "sf" / "images", tmp_path / "sf" / "disparity", "0")

    names = [s.name for s in find_samples(tmp_path)]

    assert names == ["middlebury2014/tsukuba", "middlebury2001/tsukuba", "sceneflow/sf/0"]


def test_duplicate_names_within_one_dataset_are_made_unique(tmp_path):
    # SceneFlow ships every frame in a clean and a final pass: same tail, same stem.
    root = tmp_path / "FlyingThings3D"
    tail = Path("TRAIN", "A", "0000")
    _write_sceneflow_frame(root / "frames_cleanpass" / tail, root / "disparity" / tail, "0006")
    _write_sceneflow_frame(root / "frames_finalpass" / tail, None, "0006")

    names = [s.name for s in find_samples(tmp_path)]

    # named by the folder that tells them apart, not by a number that says nothing of which is which
    assert names == [
        "sceneflow/FlyingThings3D/TRAIN/A/0000/0006 (frames_cleanpass)",
        "sceneflow/FlyingThings3D/TRAIN/A/0000/0006 (frames_finalpass)",
    ]


def test_one_scene_at_two_sizes_is_named_by_the_folder_that_tells_them_apart(tmp_path):
    _write_two_view_scene(tmp_path / "MiddEval3" / "trainingQ" / "Teddy", MIDDEVAL3_CALIB)
    _write_two_view_scene(tmp_path / "MiddEval3" / "trainingH" / "Teddy", MIDDEVAL3_CALIB)
    _write_two_view_scene(tmp_path / "MiddEval3" / "trainingH" / "Piano", MIDDEVAL3_CALIB)

    names = [s.name for s in find_samples(tmp_path)]

    assert names == ["middlebury2014/Piano", "middlebury2014/Teddy (trainingH)", "middlebury2014/Teddy (trainingQ)"]


def test_one_frame_in_two_image_formats_is_named_by_its_files(tmp_path):
    """A SceneFlow-layout frame kept as a.png and a.jpg was scored as "a" and "a#2", the name not saying which was
    which."""
    images, disparity = tmp_path / "sf" / "images", tmp_path / "sf" / "disparity" / "left"
    for suffix in (".png", ".jpg"):
        _save_rgb(images / "left" / f"a{suffix}")
        _save_rgb(images / "right" / f"a{suffix}", seed=1)
    _save_pfm(disparity / "a.pfm", np.full((HEIGHT, WIDTH), 5.0, np.float32))

    samples = find_samples(tmp_path)

    assert sorted((s.name, s.left_path.name) for s in samples) == [
        ("sceneflow/sf/a (a.jpg)", "a.jpg"),
        ("sceneflow/sf/a (a.png)", "a.png"),
    ]


def test_names_that_no_one_folder_tells_apart_are_numbered(tmp_path):
    for path in ("x/a", "y/a", "x/b"):  # the nearest folders that part them, a, a and b, do not tell all three apart
        _write_two_view_scene(tmp_path / path / "Teddy", MIDDEVAL3_CALIB)

    names = [s.name for s in find_samples(tmp_path)]

    assert names == ["middlebury2014/Teddy", "middlebury2014/Teddy#2", "middlebury2014/Teddy#3"]


def test_sceneflow_folder_name_above_the_root_is_ignored(tmp_path):
    # Data kept under a folder named like a SceneFlow image folder ("images"): the occlusion maps'
    # left/right PNGs must not become a stereo pair.
    root = tmp_path / "images" / "FlyingThings3D_A-0032-0006"
    _write_sceneflow_frame(root / "RGB_cleanpass", root / "disparity", "0006")
    for side in ("left", "right"):
        (root / "occlusion" / side).mkdir(parents=True)
        Image.fromarray(np.zeros((HEIGHT, WIDTH), bool)).save(root / "occlusion" / side / "0006.png")

    assert [s.name for s in find_samples(root)] == ["FlyingThings3D_A-0032-0006/0006"]


def test_midd_eval3_under_a_folder_named_eth3d_stays_middlebury(tmp_path):
    root = tmp_path / "eth3d_and_middlebury" / "MiddEval3"
    _write_two_view_scene(root / "trainingQ" / "Adirondack", MIDDEVAL3_CALIB)

    assert _only(find_samples(root)).dataset == "middlebury2014"


def test_relative_dataset_path_keeps_the_scene_name(tmp_path, monkeypatch):
    _tsukuba(tmp_path / "tsukuba")
    monkeypatch.chdir(tmp_path / "tsukuba")

    assert _only(find_samples(".")).name == "tsukuba"


def test_folder_of_no_known_layout_names_the_known_layouts(tmp_path):
    (tmp_path / "left").mkdir()
    _save_rgb(tmp_path / "left" / "a.png")
    (tmp_path / "readme.txt").write_text("not a dataset")

    with pytest.raises(DatasetError) as info:
        find_samples(tmp_path)

    message = str(info.value)
    assert str(tmp_path) in message
    for layout in LAYOUTS:
        assert layout in message


def test_an_empty_folder_is_said_to_be_empty(tmp_path):
    """An empty folder (a download unpacked elsewhere, a drive not mounted) read as one of an unknown layout."""
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / ".DS_Store").write_text("")  # hidden: no file of a dataset

    with pytest.raises(DatasetError, match=r"\(known: .*\): the folder is empty \(no file in it or in its folders\); "):
        find_samples(tmp_path / "empty")
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("")
    with pytest.raises(DatasetError) as info:
        find_samples(tmp_path / "empty")
    assert "empty" not in str(info.value).replace(str(tmp_path / "empty"), "")


@pytest.mark.parametrize("given", ["image_2", "disp_occ_0"])
def test_one_folder_of_a_dataset_names_the_dataset_above_it(tmp_path, given):
    """KITTI's image_2 given alone was "no stereo dataset of a known layout", with no word of the dataset it is
    part of."""
    root = tmp_path / "kitti2015" / "training"
    _write_kitti(root, ("image_2", "image_3", "disp_occ_0", "disp_noc_0"), ("000000",))
    with pytest.raises(DatasetError) as info:
        find_samples(root / given)
    assert str(info.value).endswith(f"; it is part of the kitti2015 dataset in {root}: give that folder")
    _save_rgb(tmp_path / "mine" / "a.png")  # a folder above that holds no dataset: the help, as before
    with pytest.raises(DatasetError, match=r"see `rtstereo eval --help` for the expected files$"):
        find_samples(tmp_path / "mine")


def test_the_look_at_the_folder_above_says_nothing_of_its_scenes_own_warnings(tmp_path):
    """Looking above a folder of no known layout ran the detectors there, which warned about a map of the scene above
    (a Middlebury 2001 map whose values disagree with its scale) as if it had been given."""
    scene = tmp_path / "renamed"
    _save_rgb(scene / "im2.png")
    _save_rgb(scene / "im6.png", seed=1)
    _save_grey8(scene / "disp2.pgm", _raw_8bit_gt(16))
    _save_rgb(scene / "notes" / "a.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DatasetError, match=r"see `rtstereo eval --help` for the expected files$"):
            find_samples(scene / "notes")
    assert [str(w.message) for w in caught] == []


def test_one_unknown_folder_among_several_paths_raises(tmp_path):
    _tsukuba(tmp_path / "good" / "tsukuba")
    (tmp_path / "empty").mkdir()

    with pytest.raises(DatasetError, match="no stereo dataset of a known layout"):
        find_samples(tmp_path / "good", tmp_path / "empty")


def test_missing_folder_raises(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        find_samples(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["MiddEval3-data-Q.zip", "data_scene_flow.tar.gz", "two_view_training.7z"])
def test_an_archive_given_as_the_dataset_is_told_to_be_unpacked(tmp_path, name):
    """A downloaded archive was told to be a file, with an example of a scene folder: not that it had to be unpacked."""
    (tmp_path / name).write_bytes(b"archive")
    with pytest.raises(DatasetError) as info:
        find_samples(tmp_path / name)
    assert str(info.value) == (
        f"{tmp_path / name} is a file, not a folder: an archive, which is not read as it is: unpack it and give the "
        "folder it unpacks to"
    )


def test_a_file_url_is_the_folder_it_names(tmp_path):
    """It was 'dataset folder not found: /cwd/file:/...', the URL made a path; predict and train take one."""
    _tsukuba(tmp_path / "my sets" / "tsukuba")
    url = (tmp_path / "my sets").as_uri()
    assert "%20" in url

    assert [s.name for s in find_samples(url)] == ["tsukuba"]
    assert [s.name for s in find_samples(url.replace("file://", "file://localhost"))] == ["tsukuba"]


@pytest.mark.parametrize("url", ["https://example.org/kitti.zip", "s3://bucket/kitti", "file://nas/data/kitti"])
def test_a_url_of_another_kind_is_refused_in_one_line(url):
    with pytest.raises(DatasetError) as info:
        find_samples(url)
    assert str(info.value) == (
        f"dataset folder {url}: datasets are read from local folders, not from URLs: download and unpack it, then "
        "give its folder (or a file:///path URL)"
    )


@pytest.mark.parametrize("path", [5, None, b"/data"])
def test_a_path_of_another_type_is_an_input_error_naming_the_type(path):
    with pytest.raises(InputError, match=f"dataset folder: expected a path .*, got {type(path).__name__}"):
        find_samples(path)


def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, monkeypatch):
    _tsukuba(tmp_path / "tsukuba")
    monkeypatch.chdir(tmp_path)  # Path("") is "." : the whole current folder was searched
    with pytest.raises(DatasetError, match="^dataset folder: the path is empty$"):
        find_samples("")
    assert [s.name for s in find_samples(".")] == ["tsukuba"]  # the current folder, named so, still is


def test_a_file_instead_of_a_folder_raises(tmp_path):
    _save_rgb(tmp_path / "im.png")

    with pytest.raises(DatasetError, match="is a file, not a folder"):
        find_samples(tmp_path / "im.png")


def test_scene_folders_behind_symbolic_links_are_found(tmp_path):
    _write_two_view_scene(tmp_path / "store" / "Adirondack", MIDDEVAL3_CALIB)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Adirondack").symlink_to(tmp_path / "store" / "Adirondack", target_is_directory=True)

    sample = _only(find_samples(tmp_path / "data"))

    assert sample.name == "Adirondack" and sample.left_path == tmp_path / "data" / "Adirondack" / "im0.png"


def test_a_loop_of_links_and_a_second_link_to_one_scene_are_walked_once(tmp_path):
    _write_two_view_scene(tmp_path / "data" / "a" / "Adirondack", MIDDEVAL3_CALIB)
    (tmp_path / "data" / "a" / "back").symlink_to(tmp_path / "data", target_is_directory=True)  # a loop
    (tmp_path / "data" / "b").symlink_to(tmp_path / "data" / "a" / "Adirondack", target_is_directory=True)

    assert [s.name for s in find_samples(tmp_path / "data")] == ["Adirondack"]


@pytest.mark.parametrize("order", ["outer first", "inner first", "same path twice", "through a link"])
def test_overlapping_paths_list_each_scene_once(tmp_path, order):
    _tsukuba(tmp_path / "data" / "tsukuba")
    _write_two_view_scene(tmp_path / "data" / "sub" / "Adirondack", MIDDEVAL3_CALIB)
    (tmp_path / "link").symlink_to(tmp_path / "data" / "sub", target_is_directory=True)
    outer, inner = tmp_path / "data", tmp_path / "data" / "sub"
    paths = {
        "outer first": (outer, inner),
        "inner first": (inner, outer),
        "same path twice": (outer, str(outer) + "/."),
        "through a link": (outer, tmp_path / "link"),
    }[order]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = find_samples(*paths)

    assert sorted(s.name for s in samples) == ["Adirondack", "tsukuba"]  # no "#2", no dataset prefix
    said = [str(w.message) for w in caught]  # one folder given twice is said; a folder inside another is not
    assert said == (
        [f"dataset folder {outer}/. (as {outer}) given more than once: read once"] if order == "same path twice" else []
    )


def test_a_folder_holding_two_layouts_gives_a_sample_of_each(tmp_path):
    folder = tmp_path / "both"
    _write_two_view_scene(folder, MIDDEVAL3_CALIB)  # im0/im1/disp0GT.pfm
    _save_rgb(folder / "im2.png")
    _save_rgb(folder / "im6.png", seed=1)
    _save_grey8(folder / "disp2.pgm", _raw_8bit_gt(8))

    samples = find_samples(folder)

    assert [(s.name, s.dataset, s.gt_path.name) for s in samples] == [
        ("middlebury2014/both", "middlebury2014", "disp0GT.pfm"),
        ("middlebury2001/both", "middlebury2001", "disp2.pgm"),
    ]


def test_sample_without_ground_truth_loads_images_only(tmp_path):
    left = _save_rgb(tmp_path / "l.png")
    right = _save_rgb(tmp_path / "r.png", seed=1)
    sample = Sample(name="x", dataset="custom", left_path=tmp_path / "l.png", right_path=tmp_path / "r.png")

    got_left, got_right, gt, mask = sample.load()

    np.testing.assert_array_equal(got_left, left)
    np.testing.assert_array_equal(got_right, right)
    assert gt is None and mask is None


# ---------------------------------------------------------------------------------------------
# Real data (../shared/data/real), skipped when absent

# name -> (dataset, gt_scale, hint, gt min, gt max, fraction of pixels with GT, fraction non-occluded)
# GT ranges are the raw min/max of ../shared/data/real/SOURCES.md divided by the scale.
REAL_SCENES = {
    "tsukuba": ("middlebury2001", 16, 16, None, 224 / 16, 0.793, 0.773),
    "venus": ("middlebury2001", 8, 32, 24 / 8, 158 / 8, 1.0, 0.887),
    "cones": ("middlebury2003", 4, 64, None, 220 / 4, 0.968, 0.853),
    "teddy": ("middlebury2003", 4, 64, None, 211 / 4, 0.980, 0.875),
    "000070": ("kitti2012", None, 192, None, 37637 / 256, 0.294, 0.288),
    "FlyingThings3D_A-0032-0006/A-0032-0006": ("sceneflow", None, 192, 1.206, 130.365, 1.0, 0.850),
    "DenseMatchingBenchmark_demo_0/0": ("sceneflow", None, 192, 1.154, 75.883, 1.0, None),
    "DenseMatchingBenchmark_demo_4/4": ("sceneflow", None, 192, 1.168, 108.951, 1.0, None),
}


def test_real_data_scenes(shared):
    samples = find_samples(shared("data", "real"))

    assert sorted(s.name for s in samples) == sorted(REAL_SCENES)
    for sample in samples:
        dataset, scale, hint, gt_min, gt_max, density, nonocc = REAL_SCENES[sample.name]
        got = (sample.dataset, sample.gt_scale, sample.max_disp_hint_px)
        assert got == (dataset, scale, hint), sample.name
        gt = sample.load_gt()
        valid = np.isfinite(gt)
        assert valid.mean() == pytest.approx(density, abs=0.002), sample.name
        assert float(gt[valid].max()) == pytest.approx(gt_max, abs=1e-3), sample.name
        if gt_min is not None:
            assert float(gt[valid].min()) == pytest.approx(gt_min, abs=1e-3), sample.name
        assert float(gt[valid].min()) > 0, sample.name
        mask = sample.load_nonocc()
        if nonocc is None:
            assert mask is None, sample.name
        else:
            assert mask.shape == gt.shape and mask.mean() == pytest.approx(nonocc, abs=0.002), sample.name


def test_real_data_images_match_ground_truth_size(shared):
    for sample in find_samples(shared("data", "real", "middlebury2001"), shared("data", "real", "kitti2012")):
        left, right = sample.load_images()
        assert left.dtype == np.uint8 and left.ndim == 3 and left.shape[2] == 3
        assert left.shape == right.shape
        assert left.shape[:2] == sample.load_gt().shape, sample.name


@pytest.mark.parametrize(
    ("calib", "reason"),
    [
        (MIDDEVAL3_CALIB.replace("ndisp=73", "ndisp=abc"), r"calib.txt: ndisp 'abc' is not a number"),
        (MIDDEVAL3_CALIB.replace("doffs=53.271", "doffs=x"), r"calib.txt: doffs 'x' is not a number"),
        (MIDDEVAL3_CALIB.replace("ndisp=73", "ndisp=inf"), r"calib.txt: ndisp 'inf' is not a number"),
        (MIDDEVAL3_CALIB.replace("ndisp=73", "ndisp = -73"), r"calib.txt: ndisp '-73' is negative"),
        (b"\xff\xfe" + MIDDEVAL3_CALIB.encode("utf-16-le"), r"cannot read .*calib.txt: not a UTF-8 text file"),
    ],
)
def test_damaged_calib_txt_fails_its_scene_only(tmp_path, calib, reason):
    _write_two_view_scene(tmp_path / "MiddEval3" / "Good", MIDDEVAL3_CALIB)
    bad = tmp_path / "MiddEval3" / "Bad"
    _write_two_view_scene(bad, None)
    if isinstance(calib, bytes):
        (bad / "calib.txt").write_bytes(calib)
    else:
        (bad / "calib.txt").write_text(calib)

    bad_sample, good_sample = find_samples(tmp_path)  # found, not raised while searching

    assert good_sample.name == "Good" and good_sample.load_gt() is not None
    assert bad_sample.name == "Bad"
    for load in (bad_sample.load, bad_sample.load_images, bad_sample.load_gt):
        with pytest.raises(DatasetError, match=reason):
            load()


def test_damaged_dmin_txt_fails_its_scene_only(tmp_path):
    folder = tmp_path / "Art"
    _save_rgb(folder / "view1.png", height=4, width=695)
    _save_rgb(folder / "view5.png", height=4, width=695, seed=1)
    _save_grey8(folder / "disp1.png", _raw_8bit_gt(2, height=4, width=695))
    (folder / "dmin.txt").write_text("abc 270\n")

    sample = _only(find_samples(tmp_path))

    with pytest.raises(DatasetError, match=r"dmin.txt: dmin 'abc' is not a number"):
        sample.load()


def test_dmin_and_calib_txt_saved_with_a_byte_order_mark_are_read(tmp_path):
    """Notepad's UTF-8 files start with a byte-order mark: dmin.txt's number read as '\ufeff270', not a number."""
    folder = tmp_path / "Art"
    _save_rgb(folder / "view1.png", height=4, width=695)
    _save_rgb(folder / "view5.png", height=4, width=695, seed=1)
    _save_grey8(folder / "disp1.png", _raw_8bit_gt(2, height=4, width=695))
    (folder / "dmin.txt").write_bytes(b"\xef\xbb\xbf270\r\n")
    scene = tmp_path / "MiddEval3" / "Adirondack"
    _write_two_view_scene(scene, None)
    (scene / "calib.txt").write_bytes(b"\xef\xbb\xbfndisp=73\ndoffs=53.271\n")

    samples = {sample.name: sample for sample in find_samples(tmp_path)}
    art, adirondack = samples["Art"], samples["Adirondack"]

    assert art.problem is None and art.disparity_offset_px == 270.0
    assert adirondack.problem is None and adirondack.max_disp_hint_px == 73


def test_damaged_middlebury_2005_image_fails_when_loaded_not_while_searching(tmp_path):
    folder = tmp_path / "Art"
    (folder / "view1.png").parent.mkdir(parents=True)
    (folder / "view1.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    _save_rgb(folder / "view5.png", height=4, width=695, seed=1)
    _save_grey8(folder / "disp1.png", _raw_8bit_gt(2, height=4, width=695))

    sample = _only(find_samples(tmp_path))

    with pytest.raises(Exception, match="view1.png"):
        sample.load()


def test_image_size_from_the_header_over_pils_pixel_limits(tmp_path, monkeypatch):
    """Eval's header read of a large Middlebury image: PIL's decompression-bomb warning is not passed on, and an
    image over PIL's refusal limit is one InputError line, not PIL's DecompressionBombError."""
    from rtstereo.datasets.readers import image_size_wh

    path = tmp_path / "im0.png"
    Image.new("L", (12, 10)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 120 px: warned about by PIL; over 200 px: refused
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size_wh(path) == (12, 10)
    Image.new("L", (20, 20)).save(path)
    with pytest.raises(InputError, match=r"im0.png: the image has more than the 200 pixels PIL opens"):
        image_size_wh(path)


def test_a_folder_given_twice_is_read_once_and_said_once(tmp_path, monkeypatch):
    """`eval D D` and `bench --data D --data D` read D once without a word: a second path may have been meant."""
    _write_two_view_scene(tmp_path / "data" / "Adirondack", MIDDEVAL3_CALIB)
    _tsukuba(tmp_path / "other" / "tsukuba")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(RtStereoWarning) as caught:
        samples = find_samples("data", "other", "data", tmp_path / "other", "data/")
    assert sorted(s.name for s in samples) == ["Adirondack", "tsukuba"]
    assert [str(w.message) for w in caught] == [
        f"dataset folders data, {tmp_path / 'other'} (as other), data/ (as data) given more than once: read once"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        find_samples("data", "other")  # no word when no folder repeats
