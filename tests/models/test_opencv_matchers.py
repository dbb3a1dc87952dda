"""OpenCV's matchers behind rtstereo's contract: sizes and settings OpenCV rejects are refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rtstereo
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.models.sgbm import UnmatchedBandWarning, build_sgbm

from ..conftest import make_textured_pair


def _pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    wide = (rng.random((height, width + 4, 3)) * 255).astype(np.uint8)
    return np.ascontiguousarray(wide[:, 4:]), np.ascontiguousarray(wide[:, :-4])


@pytest.mark.parametrize("block", [3, 5, 11])
def test_sgbm_needs_the_searched_range_plus_half_a_block_of_width(block):
    sgbm = rtstereo.load("sgbm", max_disp=16, block_size=block)
    fits = 16 + block // 2 + 1  # OpenCV's 5-direction SGBM asserts below this width
    assert sgbm.predict(*_pair(32, fits)).disparity_px.shape == (32, fits)
    with pytest.raises(
        InputError,
        match=rf"must exceed {16 + block // 2} px; lower --set block_size \(block_size= in Python; 16 is the least "
        r"OpenCV searches\)$",
    ):
        sgbm.predict(*_pair(32, fits - 1))


def test_sgbm_three_way_needs_only_the_searched_range_and_never_reaches_opencv_below_it():
    # the hybrid's SGBM pass: OpenCV's 3-direction mode, which crashes the process (not an exception) at
    # widths up to the searched range
    settings = {**rtstereo.get_spec("sgbm").defaults, "max_disp": 32, "block_size": 11, "three_way": True}
    sgbm = build_sgbm(settings)
    assert sgbm(*_pair(32, 33)).shape == (32, 33)
    with pytest.raises(InputError, match=r"width 31 px must exceed the searched disparities \(32\); lower --max-disp"):
        sgbm(*_pair(32, 31))


def test_a_map_without_a_match_from_an_image_barely_wider_than_the_range_is_warned_about():
    """Just above the least width, SGBM's block and checks left no column matched: an empty map, without a word."""
    import warnings

    sgbm = rtstereo.load("sgbm", max_disp=64)
    with pytest.warns(
        UserWarning,
        match=r"^sgbm matched no pixel: the image is 67 px wide, only 3 px more than the 64 "
        r"disparities it searches, .* lower --max-disp \(48 or less; max_disp= in Python\)$",
    ):
        assert np.isnan(sgbm.predict(*make_textured_pair(32, 67)).disparity_px).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(sgbm.predict(*make_textured_pair(32, 160)).disparity_px).any()
        blank = np.zeros((32, 96, 3), np.uint8)  # nothing to match, but not for want of width
        assert np.isnan(sgbm.predict(blank, blank).disparity_px).all()
        # the hybrid's SGBM pass leaves its holes to the network: its map is whole, nothing to say
        narrow = np.zeros((32, 20, 3), np.uint8)
        assert np.isfinite(rtstereo.load("hybrid").predict(narrow, narrow).disparity_px).all()
    with pytest.warns(UnmatchedBandWarning):  # 48 of 67 columns unmatched, but matched beyond them
        assert np.isfinite(rtstereo.load("sgbm", max_disp=48).predict(*make_textured_pair(32, 67)).disparity_px).all()


@pytest.mark.parametrize("fill_holes, said", [(True, "its row fill makes up the map there"), (False, "left invalid")])
def test_a_range_over_half_the_width_is_warned_about(fill_holes, said):
    """SGBM searching 192 px of the 320-px example pair matched none of its first 192 columns and filled them (4.70 px
    mean error against 0.54 at --max-disp 32): only eval said so."""
    import warnings

    left, right = make_textured_pair(48, 320)
    with pytest.warns(UnmatchedBandWarning) as caught:
        rtstereo.load("sgbm", fill_holes=fill_holes).predict(left, right)
    assert str(caught[0].message) == (
        f"sgbm matches no pixel in the first 192 columns (60 % of the 320-px width) when it searches 192 disparities "
        f"({said}); a --max-disp (max_disp= in Python) near the scene's largest disparity leaves more of it matched"
    )
    with pytest.warns(UnmatchedBandWarning, match="^bm matches no pixel in the first 176 columns"):
        rtstereo.load("bm", max_disp=170).predict(left, right)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnmatchedBandWarning)
        rtstereo.load("sgbm", max_disp=160).predict(left, right)  # half the width: most of it matched
        rtstereo.load("hybrid").predict(left, right)  # its SGBM searches at most a quarter of the width


def test_a_block_larger_than_the_image_allows_is_refused_not_an_opencv_assertion():
    with pytest.raises(InputError, match="block_size 11: it must exceed 21 px"):
        rtstereo.load("sgbm", max_disp=16, block_size=11).predict(*_pair(64, 21))
    with pytest.raises(InputError, match="block_size for bm must be an odd number from 5 to 255, got 301"):
        rtstereo.load("bm", max_disp=16, block_size=301)
    # "(64x21 px)" said neither which side was the width nor put the height first, as every other size is written
    with pytest.raises(InputError, match=r"bm: block_size 21 must be smaller than the image \(21x64 px, HxW\)"):
        rtstereo.load("bm", max_disp=16, block_size=21).predict(*_pair(21, 64))
    assert rtstereo.load("bm", max_disp=16, block_size=21).predict(*_pair(22, 64)).disparity_px.shape == (22, 64)


def test_the_command_line_reports_it_in_one_line(tmp_path, capsys):
    import cv2

    left, right = _pair(40, 18)
    for name, image in (("l.png", left), ("r.png", right)):
        cv2.imwrite(str(tmp_path / name), image)
    code = main(["predict", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "-m", "sgbm", "--max-disp", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "rtstereo predict: error: image width 18 px is too small" in err


@pytest.mark.parametrize("model, key", [("sgbm", "uniqueness"), ("sgbm", "speckle_range"), ("bm", "speckle_window")])
def test_negative_settings_opencv_would_take_silently_are_refused(model, key):
    with pytest.raises(InputError, match=f"setting '{key}' must be >= 0, got -5"):
        rtstereo.load(model, max_disp=16, **{key: -5})


@pytest.mark.parametrize("key", ["uniqueness", "lr_tolerance"])
@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_the_hybrid_refuses_negative_or_non_finite_thresholds(key, value):
    if key == "uniqueness" and value != -1:
        with pytest.raises(InputError, match="expected a whole number"):  # an integer setting
            rtstereo.load("hybrid", **{key: value})
        return
    with pytest.raises(InputError, match=f"hybrid: setting '{key}' must be a number >= 0, got {value}"):
        rtstereo.load("hybrid", **{key: value})


def test_max_disp_given_twice_must_agree(tmp_path, capsys):
    examples = Path(__file__).resolve().parents[2] / "examples"
    argv = [
        "predict",
        str(examples / "left.png"),
        str(examples / "right.png"),
        "-m",
        "sgbm",
        "-o",
        str(tmp_path / "d.pfm"),
    ]
    assert main([*argv, "--max-disp", "32", "--set", "max_disp=64"]) == 2
    assert "--max-disp 32 and --set max_disp=64 disagree: give one of them" in capsys.readouterr().err
    assert main([*argv, "--max-disp", "32", "--set", "max_disp=32"]) == 0
    assert main([*argv, "--max-disp", "32", "--set", "max_disp=32.0"]) == 0  # one number, written two ways
    capsys.readouterr()
    # one setting given twice by --set: the last one won unsaid
    assert main([*argv, "--set", "block_size=5", "--set", "block_size=7"]) == 2
    assert capsys.readouterr().err == (
        "rtstereo predict: error: --set block_size=5 and --set block_size=7 disagree: give one of them\n"
    )
    assert main([*argv, "--set", "max-disp=32", "--set", "max_disp=32", "--set", "fill_holes=true"]) == 0
    # one switch, spelled two ways: "--set fill_holes=true and --set fill_holes=True disagree"
    for spelling in ("True", "1", "on", "yes"):
        assert main([*argv, "--max-disp", "32", "--set", "fill_holes=true", "--set", f"fill_holes={spelling}"]) == 0
    capsys.readouterr()
    assert main([*argv, "--max-disp", "32", "--set", "fill_holes=true", "--set", "fill_holes=off"]) == 2
    assert "--set fill_holes=true and --set fill_holes=off disagree" in capsys.readouterr().err


def test_results_record_the_range_opencv_searched_beside_the_one_asked_for():
    result = rtstereo.load("sgbm", max_disp=40).predict(*_pair(32, 96))
    assert result.settings["max_disp"] == 40 and result.settings["searched_disp"] == 48


def test_the_left_right_check_tolerance_is_documented_as_opencv_applies_it():
    """StereoSGBM always runs its left-right check (0 and -1 act as 1); StereoBM's -1 turns it off."""
    from rtstereo.io import read_image

    examples = Path(__file__).resolve().parents[2] / "examples"
    left, right = read_image(examples / "left.png"), read_image(examples / "right.png")

    def disparity(model: str, tolerance: int) -> np.ndarray:
        predictor = rtstereo.load(model, max_disp=48, fill_holes=False, disp12_max_diff=tolerance)
        return predictor.predict(left, right).disparity_px

    sgbm = {t: disparity("sgbm", t) for t in (-1, 0, 1)}
    np.testing.assert_array_equal(sgbm[-1], sgbm[1])
    np.testing.assert_array_equal(sgbm[0], sgbm[1])
    assert "-1 = off" not in rtstereo.get_spec("sgbm").setting_help["disp12_max_diff"]
    assert np.isnan(disparity("bm", 1)).sum() > np.isnan(disparity("bm", -1)).sum()
    assert "-1 = off" in rtstereo.get_spec("bm").setting_help["disp12_max_diff"]


@pytest.mark.parametrize("model", ["sgbm", "hybrid"])
@pytest.mark.parametrize("value", [100, 150])
def test_a_uniqueness_ratio_sgbm_cannot_apply_is_refused(model, value):
    # at 100 OpenCV's 3-direction SGBM (the hybrid's) killed the process with SIGFPE; above it the test inverts
    owner = "hybrid: " if model == "hybrid" else ""
    with pytest.raises(InputError, match=f"{owner}setting 'uniqueness' must be a percentage below 100 .*got {value}"):
        rtstereo.load(model, max_disp=16, uniqueness=value).predict(*_pair(32, 64))
    assert rtstereo.load(model, max_disp=16, uniqueness=99).predict(*_pair(32, 64)).disparity_px.shape == (32, 64)


def test_the_settings_help_names_the_ranges_each_matcher_takes():
    # bm's block_size read "(odd)" beside a refusal of 3; sgbm's uniqueness named no upper bound
    assert rtstereo.get_spec("bm").setting_help["block_size"].endswith("(odd, 5 to 255)")
    assert rtstereo.get_spec("sgbm").setting_help["block_size"].endswith("(odd, 1 to 11)")
    assert rtstereo.get_spec("sgbm").setting_help["uniqueness"].endswith("(0 to 99)")
    assert rtstereo.get_spec("hybrid").setting_help["uniqueness"].endswith("(0 to 99)")
    assert rtstereo.get_spec("bm").setting_help["uniqueness"] == "uniqueness ratio, percent"


@pytest.mark.parametrize("block", [13, 19, 1001])
def test_sgbm_refuses_the_blocks_whose_16_bit_costs_overflow(block):
    # 19 gave a map with 0.2 % of its pixels valid, 13 one with most matches wrong on KITTI: no error either way
    with pytest.raises(InputError, match=f"block_size for sgbm must be an odd number from 1 to 11, got {block}: "):
        rtstereo.load("sgbm", max_disp=16, block_size=block)
    assert rtstereo.load("sgbm", max_disp=16, block_size=11).predict(*_pair(32, 64)).disparity_px.shape == (32, 64)


def test_a_left_right_tolerance_opencv_would_round_is_refused_unless_the_mirrored_check_checks_it():
    from rtstereo.models.sgbm import confident_disparity

    with pytest.raises(InputError, match=r"hybrid: setting 'lr_tolerance' is 2.5 px, .* give 2 or 3, or add mirrored"):
        rtstereo.load("hybrid", lr_tolerance=2.5)  # it ran as 2 unsaid
    assert rtstereo.load("hybrid", lr_tolerance=2.5, mirrored_check=True).settings["lr_tolerance"] == 2.5
    assert rtstereo.load("hybrid", lr_tolerance=2).settings["lr_tolerance"] == 2
    left, right = make_textured_pair(48, 96, 4)[:2]
    with pytest.raises(InputError, match="takes whole pixels"):
        confident_disparity(left, right, 16, lr_tolerance_px=0.5, mirrored_check=False)
    # with the mirrored check, OpenCV's check is rounded up and the exact one decides: 2.5 keeps what 2 keeps
    kept = [np.isfinite(confident_disparity(left, right, 16, lr_tolerance_px=t)) for t in (2.0, 2.5, 3.0)]
    assert (kept[0] <= kept[1]).all() and (kept[1] <= kept[2]).all()


def test_threads_given_as_a_setting_of_a_classical_method_points_to_the_option():
    with pytest.raises(InputError, match=r"model 'sgbm' has no setting 'threads' \(.*\): CPU threads are an option of"):
        rtstereo.load("sgbm", threads=2)
    with pytest.raises(InputError, match=r"from Python: rtstereo.runtime.providers.limit_threads\(N\) before loading"):
        rtstereo.load("sgbm", threads=2)  # the command line's --threads is no way from Python
    with pytest.raises(InputError, match=r"no setting .thread. \(.*\): CPU threads are an option of their own"):
        rtstereo.load("sgbm", thread=2)


@pytest.mark.parametrize(
    "model, key, message",
    [
        ("sgbm", "max_disp", "max_disp must be at most 2147483632 pixels"),
        ("bm", "max_disp", "max_disp must be at most 2147483632 pixels"),
        ("sgbm", "speckle_window", "setting 'speckle_window' must lie within"),
        ("sgbm", "disp12_max_diff", "setting 'disp12_max_diff' must lie within"),
        ("bm", "uniqueness", "setting 'uniqueness' must lie within"),
        ("hybrid", "lr_tolerance", "hybrid: setting 'lr_tolerance' must be at most 2147483647 px"),
    ],
)
def test_settings_beyond_opencvs_c_ints_are_an_input_error_not_a_bare_value_error(model, key, message):
    # was: ValueError: integer won't fit into a C int, from cv2.StereoSGBM_create
    with pytest.raises(InputError, match=message):
        rtstereo.load(model, **{key: 10**12})


def test_the_mirrored_check_keeps_matches_whose_right_disparity_agrees_within_the_tolerance(monkeypatch):
    """SGBM replaced by fixed maps, so that the check's own arithmetic is what is tested."""
    from rtstereo.models import sgbm

    d_left = np.array([[np.nan, 5, 2, 2, 2, 3, 2, 2]], np.float32)
    d_right = np.array([[2, 3, 1, 9, 0.5, 2.5, 9, 9]], np.float32)  # the right view's, at its own columns
    built = []

    def fake_sgbm(settings):
        built.append(settings)
        maps = [d_left, d_right[:, ::-1]]  # the second pass matches the mirrored pair

        return lambda left, right: maps.pop(0)

    monkeypatch.setattr(sgbm, "build_sgbm", fake_sgbm)
    image = np.zeros((1, 8, 3), np.uint8)
    # left x matches right round(x - d): x=1 -> 0 (clipped), 2 -> 0, 3 -> 1, 4 -> 2, 5 -> 2, 6 -> 4, 7 -> 5;
    # |d_left - d_right| there: 3, 0, 1, 1, 2, 1.5, 0.5
    kept = sgbm.confident_disparity(image, image, 16, lr_tolerance_px=1.0, quarter_width_cap=False)
    np.testing.assert_array_equal(kept, [[np.nan, np.nan, 2, 2, 2, np.nan, np.nan, 2]])
    kept = sgbm.confident_disparity(image, image, 16, lr_tolerance_px=1.5, quarter_width_cap=False)
    np.testing.assert_array_equal(kept, [[np.nan, np.nan, 2, 2, 2, np.nan, 2, 2]])
    sgbm.confident_disparity(image, image, 16, lr_tolerance_px=1.25, quarter_width_cap=False)
    assert built[-1]["disp12_max_diff"] == 2  # OpenCV's own check in whole pixels, rounded up: this one decides
    unchecked = sgbm.confident_disparity(image, image, 16, lr_tolerance_px=1.0, mirrored_check=False)
    np.testing.assert_array_equal(unchecked, d_left)


def test_speckle_range_is_documented_in_the_unit_each_matcher_applies_it():
    """Both help lines read "disparity variation inside a speckle region": OpenCV's StereoBM compares its fixed-point
    disparities (16 per pixel) with the number as given, StereoSGBM multiplies it by 16 first."""
    import cv2

    from rtstereo.io import read_image

    examples = Path(__file__).resolve().parents[2] / "examples"
    left, right = read_image(examples / "left.png"), read_image(examples / "right.png")
    grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (left, right)]
    bm = cv2.StereoBM_create(numDisparities=48, blockSize=15)
    bm.setUniquenessRatio(10)
    bm.setDisp12MaxDiff(1)
    bm.setSpeckleWindowSize(0)  # the filter by hand below
    raw = bm.compute(*grey)
    # 16 fixed-point steps: 1 px between neighbours of one region, which bm's speckle_range=16 applies
    cv2.filterSpeckles(raw, -16, 100, 16)
    expected = np.where(raw > 0, raw.astype(np.float32) / 16, np.nan)
    ours = rtstereo.load("bm", max_disp=48, fill_holes=False, speckle_range=16).predict(left, right).disparity_px
    np.testing.assert_array_equal(ours, expected)
    assert rtstereo.get_spec("bm").setting_help["speckle_range"].endswith("in 1/16 px (16 = 1 px; sgbm's is in pixels)")
    assert rtstereo.get_spec("sgbm").setting_help["speckle_range"].endswith(", whole pixels")
