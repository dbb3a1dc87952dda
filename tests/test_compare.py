"""``rtstereo.compare`` from Python: the arrays it takes, and one line for those it does not."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rtstereo.compare import compare_disparities, compare_images
from rtstereo.errors import InputError


def _photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["grey", "grey (H, W, 1)", "RGBA"])
def test_compare_images_takes_grey_and_rgba_as_it_takes_rgb(layout):
    """A grey (H, W) image raised OpenCV's "Bad number of channels" error, not rtstereo's."""
    photo = _photo()
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    other = {
        "grey": grey,
        "grey (H, W, 1)": grey[:, :, None],
        "RGBA": np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]),
    }[layout]
    for a, b in ((photo, other), (other, photo)):
        result = compare_images(a, b)
        assert result.score < 1e-4 and result.metrics["mean_abs_diff"] < 0.5  # grey levels rounded to 8 bits


def test_compare_images_and_disparities_refuse_arrays_of_another_layout_in_one_line():
    with pytest.raises(InputError, match=r"^the second: expected an image \(H, W\), \(H, W, 3\) or \(H, W, 4\), got "):
        compare_images(_photo(), np.zeros((20, 30, 2), np.uint8))
    with pytest.raises(InputError, match=r"^the first map: expected a disparity map \(H, W\), got shape \(20, 30, 1\)"):
        compare_disparities(np.ones((20, 30, 1), np.float32), np.ones((20, 30), np.float32))


def test_compare_images_refuses_levels_it_cannot_place_in_0_to_1_rather_than_scoring_them():
    """A float photo in 0..255 against its uint8 self differed by 35 728 grey levels and scored 0.5, "unrelated"; an
    int64 one was divided by 2**63 - 1 (black); nan scored nan; an empty first image raised OpenCV's assertion."""
    photo = _photo()
    assert compare_images(photo, photo.astype(np.float32) / 255).score < 1e-9  # floats in 0..1 are levels
    with pytest.raises(
        InputError, match=r"^the second: a float image holds levels in 0\.\.1, got values from 0 to 255 "
    ):
        compare_images(photo, photo.astype(np.float32))
    with pytest.raises(
        InputError, match=r"^the first image: expected a uint8, uint16 or float \(0\.\.1\) image, got int64$"
    ):
        compare_images(photo.astype(np.int64), photo)
    with pytest.raises(
        InputError, match=r"^the first image: a float image holds levels in 0\.\.1, got values that are not"
    ):
        compare_images(np.full((20, 30), np.nan, np.float32), photo)
    with pytest.raises(InputError, match=r"^the first image is empty \(0x20, WxH\): nothing to compare$"):
        compare_images(np.zeros((20, 0), np.uint8), photo)


def test_compare_takes_nested_lists_and_refuses_what_holds_no_numbers_in_one_line():
    """A predictor's result (its map is .disparity_px) or a string failed with AttributeError: 'no attribute ndim'."""
    from types import SimpleNamespace

    assert compare_disparities([[5.0, 6.0]], [[5.0, 6.0]]).metrics["epe"] == 0.0
    assert compare_images([[0.0, 1.0]], [[0.0, 1.0]]).score == 0.0
    result = SimpleNamespace(disparity_px=np.ones((2, 2), np.float32))
    with pytest.raises(InputError, match=r"^the second map: expected a float \(H, W\) array of pixels, got SimpleNam"):
        compare_disparities(np.ones((2, 2), np.float32), result)
    with pytest.raises(
        InputError, match=r"^the first image: expected an image array \(H, W\), \(H, W, 3\) or \(H, W, 4"
    ):
        compare_images("a.png", _photo())


def test_a_map_compared_with_its_negation_says_the_sign_convention_may_differ(tmp_path, capsys):
    """`rtstereo compare` of a map and its negation (x_right - x_left, as RAFT-Stereo's flow) gave an EPE of twice
    the disparities, a score that called them nearly identical and nothing more; with the negated map as the
    reference, "no valid pixels" alone."""
    from rtstereo.cli import main

    disparity = np.random.default_rng(0).uniform(2, 20, (24, 32)).astype(np.float32)
    np.save(tmp_path / "a.npy", disparity)
    np.save(tmp_path / "neg.npy", -disparity)
    assert compare_disparities(disparity, disparity).note is None
    assert compare_disparities(disparity, -disparity).score > 0.45  # was 0.007, "identical": SSIM(x, -x) is 1
    assert compare_disparities(disparity, np.where(disparity > 17, -disparity, disparity)).note is None  # a few
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "neg.npy")]) == 0
    assert (
        f"note: {tmp_path / 'neg.npy'} is below 0 at 100 % of the pixels where {tmp_path / 'a.npy'} is above 0: "
        "disparity stored with the other sign, x_right - x_left, as some tools write it? compare its negation"
    ) in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "neg.npy"), str(tmp_path / "a.npy")]) == 2
    assert capsys.readouterr().err == (
        f"rtstereo compare: error: {tmp_path / 'neg.npy'} (the reference) has no valid pixels: 768 of its values are "
        "below 0 (disparity stored with the other sign, x_right - x_left, as some tools write it? compare its "
        "negation)\n"
    )


def _flat_ssim(mean_a: float, mean_b: float) -> float:
    """SSIM of two flat images (levels 0..1): no variance, so only the luminance term, with C1 = (0.01 L)^2."""
    c1 = 0.01**2
    return (2 * mean_a * mean_b + c1) / (mean_a**2 + mean_b**2 + c1)


def test_flat_images_score_psnr_and_difference_by_hand():
    a, b = np.full((20, 30, 3), 128, np.uint8), np.full((20, 30, 3), 138, np.uint8)

    result = compare_images(a, b)

    assert result.score == pytest.approx((1 - _flat_ssim(128 / 255, 138 / 255)) / 2, rel=1e-6)
    assert result.metrics["mean_abs_diff"] == pytest.approx(10.0, abs=1e-4)
    assert result.metrics["psnr_db"] == pytest.approx(20 * np.log10(255 / 10), abs=1e-4)  # 28.13 dB


def test_image_scores_span_identical_unrelated_and_inverted():
    """The module's scale: 0 = identical, 0.5 = unrelated, 1 = inverted."""
    rng = np.random.default_rng(0)
    noise, other = (rng.integers(0, 256, (40, 60), dtype=np.uint8) for _ in range(2))

    assert compare_images(noise, noise).score == pytest.approx(0.0, abs=1e-9)
    assert compare_images(noise, other).score == pytest.approx(0.5, abs=0.05)
    assert compare_images(noise, 255 - noise).score == pytest.approx(1.0, abs=0.05)


def test_flat_disparity_maps_are_scored_on_their_common_range():
    reference = np.full((10, 10), 10.0, np.float32)

    result = compare_disparities(reference, reference * 2)

    # both divided by the larger map's top, 20 px: levels 0.5 and 1.0
    assert result.score == pytest.approx((1 - _flat_ssim(0.5, 1.0)) / 2, rel=1e-6)
    assert result.metrics["epe"] == 10.0 and result.metrics["d1"] == 100.0 and "pixels" not in result.metrics


def test_another_size_is_taken_within_a_pixel_of_rounding_and_refused_beyond():
    reference = np.full((40, 80), 10.0, np.float32)
    for rows in (19, 21):  # half the width: 20 rows, give or take one of rounding
        result = compare_disparities(reference, np.full((rows, 40), 5.0, np.float32))
        assert result.metrics["epe"] == 0.0 and "disparities scaled by 2.0000" in result.resized
    for rows in (18, 22):  # 36 or 44 rows at 80 px wide: another aspect ratio
        with pytest.raises(InputError, match=rf"is 40x{rows} \(WxH\): another aspect ratio"):
            compare_disparities(reference, np.full((rows, 40), 5.0, np.float32))


def test_a_map_compared_with_a_multiple_of_it_says_the_factor_and_its_likely_cause(tmp_path, capsys):
    """A map against its double scored 0.18 ("close") with nothing else said: the score is blind to scale, and a
    scale mistake (half/full resolution, /16 against /256 PNGs) is the most common one."""
    from rtstereo.cli import main

    rng = np.random.default_rng(0)
    disparity = rng.uniform(2, 20, (24, 32)).astype(np.float32)
    note = compare_disparities(disparity, 2 * disparity, ("a", "b")).note
    assert note == (
        "the disparities of b are 2 times those of a at 100 % of the pixels valid in both: a scale mistake? likely a "
        "map of another resolution (half or full) whose disparities were not scaled with its width"
    )
    assert "b are 1/16 of those of a" in compare_disparities(disparity, disparity / 16, ("a", "b")).note
    assert "KITTI's x 256" in compare_disparities(disparity, disparity / 16).note
    assert "not divided by 256" in compare_disparities(disparity, disparity * 256).note
    assert "3 times" in compare_disparities(disparity, disparity * 3).note
    # no note: the same scale, a factor near 1, or noise with no common factor
    assert compare_disparities(disparity, disparity * 1.05).note is None
    assert compare_disparities(disparity, disparity + rng.normal(0, 1, disparity.shape)).note is None
    assert compare_disparities(disparity, rng.uniform(2, 20, disparity.shape).astype(np.float32)).note is None
    # the score itself is unchanged
    assert compare_disparities(disparity, 2 * disparity).score == pytest.approx(0.179, abs=0.01)
    np.save(tmp_path / "a.npy", disparity)
    np.save(tmp_path / "double.npy", 2 * disparity)
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "double.npy")]) == 0
    assert f"note: the disparities of {tmp_path / 'double.npy'} are 2 times those of" in capsys.readouterr().out


def test_depth_maps_of_predict_are_refused_as_disparity_maps_not_scored_in_pixels(tmp_path, capsys):
    """A depth map and its half-size copy (the same depths) were read as disparity maps: the half-size one was
    'scaled by 2', scored 1.67 px off at every pixel, and called a scale mistake."""
    from rtstereo.cli import main
    from rtstereo.io.images import write_image
    from rtstereo.io.pfm import write_pfm

    depth_m = np.full((24, 32), 1.5, np.float32)
    write_pfm(tmp_path / "a_depth.pfm", depth_m)
    write_pfm(tmp_path / "b_depth.pfm", depth_m[::2, ::2])
    np.save(tmp_path / "a_depth.npy", depth_m)
    write_image(tmp_path / "a_depth_mm.png", np.full((24, 32), 1500, np.uint16))
    write_pfm(tmp_path / "a.pfm", np.full((24, 32), 20.0, np.float32))
    for a, b in (("a_depth.pfm", "b_depth.pfm"), ("a.pfm", "a_depth.npy"), ("a_depth_mm.png", "a_depth_mm.png")):
        for kind in ("auto", "disparity"):
            assert main(["compare", str(tmp_path / a), str(tmp_path / b), "--kind", kind]) == 2
            err = capsys.readouterr().err
            assert "is a depth map of rtstereo predict (--format depth, depth_npy or depth_mm" in err, err
            assert "compare the disparity maps written beside them (NAME.pfm)" in err
    # as images, the 16-bit millimetres are levels like any other
    assert main(["compare", str(tmp_path / "a_depth_mm.png"), str(tmp_path / "a_depth_mm.png"), "--kind", "image"]) == 0


def test_kind_disparity_on_a_colour_photo_says_it_is_no_map_rather_than_asking_for_a_scale(tmp_path, capsys):
    """`compare --kind disparity left.png right.png` asked for --scale; given one, it then said the files were
    colour images, not maps. A grey 8-bit map without a scale is still asked for its scale."""
    from rtstereo.cli import main

    assert cv2.imwrite(str(tmp_path / "photo.png"), _photo())
    assert cv2.imwrite(str(tmp_path / "grey.png"), np.full((20, 30), 16, np.uint8))
    assert main(["compare", "--kind", "disparity", str(tmp_path / "photo.png"), str(tmp_path / "photo.png")]) == 2
    assert capsys.readouterr().err.startswith(
        f"rtstereo compare: error: {tmp_path / 'photo.png'}: a colour image, not a disparity map"
    )
    assert main(["compare", "--kind", "disparity", str(tmp_path / "grey.png"), str(tmp_path / "grey.png")]) == 2
    assert "8-bit disparity needs its scale" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "what"), [("d.pfm", "a PFM file"), ("d.npy", "a numpy array"), ("d.tif", "a floating")]
)
def test_kind_image_on_a_disparity_file_points_to_kind_disparity(tmp_path, capsys, name, what):
    """A .pfm said "unsupported image depth float32"; a .npy advised rtstereo.load(...).predict, predict's advice."""
    from rtstereo.cli import main
    from rtstereo.io.pfm import write_pfm

    disparity = np.full((24, 32), 20.0, np.float32)
    path = tmp_path / name
    if name.endswith(".pfm"):
        write_pfm(path, disparity)
    elif name.endswith(".npy"):
        np.save(path, disparity)
    else:
        assert cv2.imwrite(str(path), disparity)
    assert main(["compare", "--kind", "image", str(path), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtstereo compare: error: {path} is {what}") and "give --kind disparity" in err, err
    assert "predict" not in err and len(err.strip().splitlines()) == 1
    assert main(["compare", str(path), str(path)]) == 0  # read as a disparity map, as the advice says


def test_a_scale_given_with_maps_read_as_they_are_says_so_in_one_note(tmp_path, capsys):
    """`compare a.pfm b.npy --scale 8` scored the maps as they are without a word: --scale seemed to apply."""
    from rtstereo.cli import main
    from rtstereo.io.pfm import write_pfm

    disparity = np.random.default_rng(1).uniform(2, 30, (24, 32)).astype(np.float32)
    write_pfm(tmp_path / "a.pfm", disparity)
    np.save(tmp_path / "b.npy", disparity)
    assert cv2.imwrite(str(tmp_path / "g8.png"), np.round(disparity * 8).astype(np.uint8))
    pfm, npy, grey = (str(tmp_path / name) for name in ("a.pfm", "b.npy", "g8.png"))
    assert main(["compare", pfm, npy, "--scale", "8"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "note:" in line]
    assert notes == [
        f"  note: the scale (8) divides 8-bit maps only: {pfm} and {npy} are read as they are (PFM, npy "
        "and float TIFF hold disparities, 16-bit maps value / 256)"
    ], notes
    assert main(["compare", grey, npy, "--scale", "8", "--json"]) == 0  # the 8-bit map divided, the npy as it is
    document = json.loads(capsys.readouterr().out)
    assert document["note"].startswith(f"the scale (8) divides 8-bit maps only: {npy} is read as it is ("), document
    assert document["metrics"]["epe"] < 1 / 16 + 1e-6  # rounding to 1/8 px at most halves an eighth
    assert main(["compare", grey, grey, "--scale", "8"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_an_8bit_map_read_with_the_wrong_scale_is_told_the_scale_that_agrees(tmp_path, capsys):
    """predict then compare against Tsukuba's ground truth (value / 16) with --scale 8 scored 6.7 px where eval, which
    knows the scale, scored 0.36: the note blamed a map of another resolution only, and the two were of one size."""
    from rtstereo.cli import main
    from rtstereo.io.pfm import write_pfm

    disparity = np.random.default_rng(2).uniform(2, 15, (24, 32)).astype(np.float32)
    write_pfm(tmp_path / "pred.pfm", disparity)
    assert cv2.imwrite(str(tmp_path / "gt.png"), np.round(disparity * 16).astype(np.uint8))
    gt, pred = str(tmp_path / "gt.png"), str(tmp_path / "pred.pfm")
    hint = f"or the scale of the 8-bit map: {gt} read with --scale 16 agrees with the other"
    for argv in ([gt, pred], [pred, gt]):  # the 8-bit map as A or as B
        assert main(["compare", *argv, "--scale", "8", "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert "a scale mistake?" in document["note"] and hint in document["note"], document["note"]
    assert main(["compare", gt, pred, "--scale", "4", "--json"]) == 0
    assert "read with --scale 16 agrees" in json.loads(capsys.readouterr().out)["note"]
    assert main(["compare", gt, pred, "--scale", "16", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert "--scale 16 agrees" not in document["note"] and document["metrics"]["epe"] < 1 / 32 + 1e-6


def test_the_text_output_gives_each_metric_with_its_unit(tmp_path, capsys):
    """`rtstereo compare` printed 'epe: 0.050', 'bad-1: 1.667', 'mean_abs_diff: 2.491': px, %, a fraction?"""
    from rtstereo.cli import main

    disparity = np.random.default_rng(0).uniform(5, 30, (24, 32)).astype(np.float32)
    off = disparity.copy()
    off[0] += 3.5  # one row of 24 off by 3.5 px: EPE 0.146 px, 4.167 % of the pixels bad by 3 px
    np.save(tmp_path / "a.npy", disparity)
    np.save(tmp_path / "b.npy", off)
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  epe: 0.146 px",
        *(f"  bad-{n}: 4.167 %" for n in ("0.5", "1", "2", "3")),
        "  bad-4: 0.000 %",
        "  d1: 4.167 %",
        "  density: 100.000 %",
    ]
    assert cv2.imwrite(str(tmp_path / "a.png"), _photo())
    assert main(["compare", str(tmp_path / "a.png"), str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  mean_abs_diff: 0.000 grey levels (of 255)",
        "  psnr_db: inf dB",
    ]


def test_a_map_exact_at_every_pixel_of_sparse_ground_truth_scores_0_not_unrelated():
    """Against KITTI's sparse ground truth (29 % of 000070's pixels), a map exact at every known pixel scored 0.48,
    "unrelated": its values where the ground truth is unknown counted as differences, which the metrics leave out."""
    rng = np.random.default_rng(0)
    dense = cv2.resize(rng.uniform(5, 60, (6, 8)).astype(np.float32), (64, 48), interpolation=cv2.INTER_LINEAR)
    sparse = np.where(rng.random(dense.shape) < 0.3, dense, np.nan).astype(np.float32)
    exact = compare_disparities(sparse, dense)
    assert exact.metrics["epe"] == 0 and exact.score < 1e-6
    doubled = compare_disparities(sparse, dense * 2)
    assert doubled.score == pytest.approx(compare_disparities(dense, dense * 2).score, abs=0.05) and doubled.score > 0.1
    holes = np.where(np.isfinite(sparse), np.nan, dense)  # B invalid wherever A is known: nothing matches
    assert compare_disparities(sparse, holes).score > 0.45


def test_values_of_b_where_a_holds_0_for_unknown_do_not_change_the_score():
    """The score's common range took B's values wherever A was finite, 0 (unknown) included: one B pixel of 5000 px
    where A held 0 squeezed the rest towards 0, and two unrelated maps scored 0.009, "identical"."""
    rng = np.random.default_rng(0)
    reference, unrelated = (rng.uniform(5, 50, (40, 60)).astype(np.float32) for _ in range(2))
    reference[:, 30:] = 0  # unknown, as a ground truth stored without nan writes it
    wild = unrelated.copy()
    wild[0, 59] = 5000.0
    assert compare_disparities(reference, wild).score == compare_disparities(reference, unrelated).score > 0.45


def test_a_colour_pfm_is_a_map_only_where_its_channels_agree(tmp_path, capsys):
    """A PF (colour) PFM was read as its first channel without a word: an image saved as PFM was scored as
    disparities. Three equal channels are a map stored as colour, as a grey PNG stored as RGB is a grey image."""
    from rtstereo.cli import main
    from rtstereo.io.pfm import write_pfm

    disparity = np.random.default_rng(0).uniform(2, 20, (12, 16)).astype(np.float32)
    write_pfm(tmp_path / "a.pfm", disparity)
    write_pfm(tmp_path / "grey.pfm", np.dstack([disparity] * 3))
    write_pfm(tmp_path / "colour.pfm", np.dstack([disparity, disparity * 2, disparity]))
    assert main(["compare", str(tmp_path / "a.pfm"), str(tmp_path / "grey.pfm"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["epe"] == 0.0
    assert main(["compare", str(tmp_path / "a.pfm"), str(tmp_path / "colour.pfm")]) == 2
    assert capsys.readouterr().err == (
        f"rtstereo compare: error: {tmp_path / 'colour.pfm'}: a PFM of 3 channels that differ (PF: an image or a "
        "flow field?); a disparity map has one (Pf): save the channel that holds disparities as .npy or as a "
        "one-channel PFM\n"
    )


def test_a_comparison_over_the_memory_budget_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """Two 24 MP photos peaked at about 3.2 GB, two 200 MP images had the process killed: no budget was asked."""
    from rtstereo.cli import main
    from rtstereo.runtime.memory import MemoryBudgetError

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # 200x300 needs about 9 MB (images), 6 MB (maps)
    image = np.zeros((200, 300, 3), np.uint8)
    with pytest.raises(MemoryBudgetError, match=r"^comparing A and B at 200x300 \(HxW\) needs about 9 MB, more "):
        compare_images(image, image, ("A", "B"))
    with pytest.raises(MemoryBudgetError, match=r"budget \(RTSTEREO_MEMORY_BUDGET=1M\): compare copies of both made"):
        compare_disparities(np.ones((200, 300), np.float32), np.ones((100, 150), np.float32), ("A", "B"))
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), image)
    # refused from the headers, before the images are decoded
    monkeypatch.setattr("rtstereo.compare.read_image_levels", lambda path: pytest.fail(f"{path} was decoded"))
    assert main(["compare", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"rtstereo compare: error: comparing {tmp_path / 'a.png'} and {tmp_path / 'b.png'} at 200x300"
    )
    assert err.count("\n") == 1
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "20M")  # within it: compared as before
    assert compare_images(image, image).score == 0.0


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_tiff_photos_over_the_memory_budget_are_refused_before_any_is_decoded(tmp_path, capsys, monkeypatch, suffix):
    """Each TIFF was decoded whole (three times) to learn that it was no floating-point map, before the budget was
    asked: the README's "refused ... from the files' headers, before they are decoded" held for PNG alone."""
    from rtstereo.cli import main

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # 200x300 images need about 9 MB
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}{suffix}"), np.zeros((200, 300, 3), np.uint8))
    monkeypatch.setattr(cv2, "imdecode", lambda *args: pytest.fail("a TIFF was decoded"))
    assert main(["compare", str(tmp_path / f"a{suffix}"), str(tmp_path / f"b{suffix}")]) == 2
    assert capsys.readouterr().err.startswith(f"rtstereo compare: error: comparing {tmp_path / f'a{suffix}'} and ")


def test_16bit_maps_over_the_memory_budget_are_refused_before_either_is_decoded(tmp_path, capsys, monkeypatch):
    """Two KITTI-style 16-bit PNGs, read as maps by --kind auto, were decoded whole before the budget was asked."""
    from rtstereo.cli import main

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # 200x300 maps need about 7 MB
    cv2.imwrite(str(tmp_path / "a.png"), np.full((200, 300), 2560, np.uint16))
    monkeypatch.setattr("rtstereo.compare.read_disparity", lambda *args, **kwargs: pytest.fail("a map was decoded"))
    for kind in ("auto", "disparity"):
        assert main(["compare", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--kind", kind]) == 2
        assert capsys.readouterr().err.startswith(f"rtstereo compare: error: comparing {tmp_path / 'a.png'} and ")


@pytest.mark.parametrize("suffix", [".pfm", ".npy"])
def test_pfm_and_npy_maps_over_the_memory_budget_are_refused_from_their_headers(tmp_path, capsys, monkeypatch, suffix):
    """Two PFM or npy maps were read whole before the budget was asked (two 200 MP PFMs: 1.6 GB read to be refused);
    a header that promises more than the file holds is left to the reader, which calls the file damaged."""
    from rtstereo.cli import main
    from rtstereo.io import write_disparity

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # 200x300 maps need about 7 MB
    write_disparity(tmp_path / f"a{suffix}", np.full((200, 300), 10.0, np.float32))
    with monkeypatch.context() as patched:
        patched.setattr("rtstereo.compare.read_disparity", lambda *args, **kwargs: pytest.fail("a map was decoded"))
        assert main(["compare", str(tmp_path / f"a{suffix}"), str(tmp_path / f"a{suffix}")]) == 2
    assert capsys.readouterr().err.startswith(f"rtstereo compare: error: comparing {tmp_path / f'a{suffix}'} and ")
    (tmp_path / "cut.pfm").write_bytes(b"Pf\n3000 2000\n-1.0\n" + bytes(64))
    assert main(["compare", str(tmp_path / "cut.pfm"), str(tmp_path / "cut.pfm")]) == 2
    assert "PFM holds 16 values, expected 3000x2000x1" in capsys.readouterr().err


def test_a_larger_map_is_sampled_at_the_reference_pixels_centres():
    """A perfect map 3 times as large scored an EPE of 0.33 px: each pixel was taken 1 px left of its centre."""
    height, width = 12, 18

    def ramp(scale):  # disparity 10 + x, x in the reference's pixels, at each pixel centre of a map `scale` as large
        x = (np.arange(width * scale, dtype=np.float32) + 0.5) / scale - 0.5
        return np.tile(scale * (10 + x), (height * scale, 1)).astype(np.float32)

    compared = compare_disparities(ramp(1), ramp(3))
    assert compared.resized is not None and compared.metrics["epe"] < 1e-4, compared


def test_a_16bit_map_is_decoded_once_not_first_to_learn_its_bit_depth(tmp_path, monkeypatch):
    """Whether a map is 8-bit (which --scale divides) was answered by decoding it whole, and then it was decoded again
    to be read: 1.2 s more for a 12 MP KITTI-style PNG. The header says it."""
    from PIL import ImageFile

    from rtstereo.compare import compare_files

    disparity_px = np.linspace(1.0, 60.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    for name, factor in (("a.png", 1.0), ("b.png", 1.01)):
        cv2.imwrite(str(tmp_path / name), np.round(disparity_px * factor * 256).astype(np.uint16))
    decoded, load = [], ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.filename) or load(image))
    result = compare_files(tmp_path / "a.png", tmp_path / "b.png")
    assert result.metrics["epe"] == pytest.approx(float(np.mean(disparity_px * 0.01)), abs=0.01)
    assert sorted(decoded) == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    decoded.clear()
    compare_files(tmp_path / "a.png", tmp_path / "b.png", scale=8)  # its note reads the headers again, not the data
    assert len(decoded) == 2, decoded


def test_the_bit_depth_from_the_header_is_the_one_the_decoded_map_has(tmp_path):
    from PIL import Image

    from rtstereo.io.images import grey_dtype, read_grey

    grey = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64)
    cv2.imwrite(str(tmp_path / "grey16.png"), grey)
    cv2.imwrite(str(tmp_path / "grey8.png"), (grey % 256).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.repeat(grey[:, :, None], 3, axis=2))
    cv2.imwrite(str(tmp_path / "rgb8.png"), np.repeat((grey % 256).astype(np.uint8)[:, :, None], 3, axis=2))
    Image.fromarray((grey % 256).astype(np.uint8)).convert("P").save(tmp_path / "palette.png")
    for name in ("grey16.png", "grey8.png", "rgb16.png", "rgb8.png", "palette.png"):
        assert grey_dtype(tmp_path / name) == read_grey(tmp_path / name).dtype, name
    (tmp_path / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    for name in ("damaged.png", "missing.png"):
        with pytest.raises(InputError, match=name):
            grey_dtype(tmp_path / name)


@pytest.mark.parametrize("as_json", [False, True])
def test_a_full_disk_under_the_result_is_one_line_and_exit_code_1(tmp_path, capsys, monkeypatch, as_json):
    """`rtstereo compare A B --json > result.json` on a full disk ended in a traceback from print()."""
    import errno
    import sys

    from rtstereo.cli import main

    class FullDisk:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    np.save(tmp_path / "a.npy", np.full((8, 8), 5.0, np.float32))
    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), *(["--json"] if as_json else [])]) == 1
    sys.stdout.close()  # os.devnull, put in its place so that the flush at exit does not fail again
    assert (
        capsys.readouterr().err
        == "rtstereo compare: error: cannot write the result to stdout: No space left on device\n"
    )


def test_a_quoted_pattern_is_told_to_be_one_not_a_missing_file(tmp_path, capsys):
    """`rtstereo compare 'gt/*.pfm' 'out/*.pfm'` said "file not found: gt/*.pfm" of a pattern that matched files."""
    from rtstereo.cli import main

    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, np.full((4, 4), 5.0, np.float32))
    assert main(["compare", str(tmp_path / "*.npy"), str(tmp_path / "a.npy")]) == 2
    assert capsys.readouterr().err == (
        f"rtstereo compare: error: {tmp_path / '*.npy'} is a pattern (2 files match it): compare takes two files, one "
        "pair at a time; loop over the pairs in the shell\n"
    )
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "*.pfm")]) == 2  # matching nothing: not found
    assert capsys.readouterr().err == f"rtstereo compare: error: file not found: {tmp_path / '*.pfm'}\n"


def test_a_data_uri_is_told_the_python_call_of_compare_not_of_predict(capsys):
    from rtstereo.cli import main

    assert main(["compare", "data:image/png;base64,AAAA", "b.png"]) == 2
    assert capsys.readouterr().err == (
        "rtstereo compare: error: file data:image/png;base64,AAAA: data: URIs are not read; save it to a file and "
        "give its path (from Python, decode it and pass the array to rtstereo.compare.compare_images(a, b) or "
        "compare_disparities(a, b))\n"
    )


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"path_a": 5}, "path_a: expected a file (str or Path) or its URL, got int"),
        ({"path_b": None}, "path_b: expected a file (str or Path) or its URL, got NoneType"),
        ({"scale": "4"}, "scale: expected the divisor of an 8-bit map's values (Middlebury: 1 to 16), got str '4'"),
        ({"scale": [4]}, "scale: expected the divisor of an 8-bit map's values (Middlebury: 1 to 16), got list [4]"),
        ({"kind": None}, "kind: expected one of auto, image, disparity, got None"),
        ({"kind": "AUTO"}, "kind: expected one of auto, image, disparity, got 'AUTO'"),
    ],
)
def test_compare_files_refuses_arguments_of_another_type_in_one_line(tmp_path, arguments, said):
    """pathlib's and numpy's bare TypeErrors; a kind of None was refused only once both files were read."""
    from rtstereo.compare import compare_files
    from rtstereo.io import write_disparity

    for name in ("a.pfm", "b.pfm"):
        write_disparity(tmp_path / name, np.full((8, 12), 4.0, np.float32))
    given = {"path_a": tmp_path / "a.pfm", "path_b": tmp_path / "b.pfm", **arguments}
    with pytest.raises(InputError) as info:
        compare_files(**given)
    assert str(info.value) == said


def test_compare_files_reads_a_path_under_the_home_folder_written_with_a_tilde(tmp_path, monkeypatch):
    """'~/a.pfm' was 'file not found: ~/a.pfm', where read_disparity and the other readers take it."""
    from rtstereo.compare import compare_files
    from rtstereo.io import write_disparity

    monkeypatch.setenv("HOME", str(tmp_path))
    write_disparity(tmp_path / "a.pfm", np.full((8, 12), 4.0, np.float32))
    write_disparity(tmp_path / "b.pfm", np.full((8, 12), 5.0, np.float32))
    assert compare_files("~/a.pfm", "~/b.pfm").metrics["epe"] == pytest.approx(1.0)


@pytest.mark.parametrize("names", [None, ("a",), "ab", ("a", 2)])
def test_compare_refuses_names_that_are_not_two_strings(names):
    """None was a bare TypeError, one name a ValueError (unpacking), and "ab" named the maps "a" and "b"."""
    said = f"names: expected two strings, what the messages call a and b, got {names!r}"
    with pytest.raises(InputError) as info:
        compare_disparities(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), names=names)
    assert str(info.value) == said
    with pytest.raises(InputError) as info:
        compare_images(_photo(), _photo(), names=names)
    assert str(info.value) == said


def test_the_help_of_scale_gives_every_divisor_of_middleburys_8bit_ground_truth(capsys):
    """It said "Middlebury 2001/2003 ground truth: 4, 8 or 16": the 2003 scenes at full and half size, value / 1 and
    / 2 (as eval reads them), were not among them."""
    from rtstereo.cli import main

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "2001 ground truth: 8, tsukuba's 16; 2003's by its width: 1 at 1800 px, 2 at 900, 4 at 450" in text


def test_a_map_beside_an_image_is_told_what_to_do_with_that_image(tmp_path, capsys):
    """ "Use --kind image|disparity" was said for any map beside any image: neither reads a PFM beside a colour
    preview (NAME_color.png), each refusing one of them, and --kind image refuses a PFM beside an 8-bit map."""
    from rtstereo.cli import main
    from rtstereo.io.pfm import write_pfm

    disparity = np.random.default_rng(3).uniform(2, 15, (24, 32)).astype(np.float32)
    write_pfm(tmp_path / "map.pfm", disparity)
    assert cv2.imwrite(str(tmp_path / "map_color.png"), cv2.applyColorMap(np.uint8(disparity * 16), cv2.COLORMAP_TURBO))
    assert cv2.imwrite(str(tmp_path / "gt.png"), np.uint8(disparity * 8))
    assert cv2.imwrite(str(tmp_path / "mono.png"), np.uint16(disparity * 256))
    said = {
        ("map.pfm", "map_color.png"): "map_color.png is a colour image, which no disparity map is (a colourised "
        "preview such as NAME_color.png cannot be read back): compare the .pfm or 16-bit .png written beside it",
        ("gt.png", "map.pfm"): "gt.png is an 8-bit grey image: for an 8-bit disparity map (Middlebury's ground truth) "
        "give its divisor with --scale S",
        ("mono.png", "gt.png"): "gt.png is an 8-bit grey image: for an 8-bit disparity map (Middlebury's ground truth) "
        f"give its divisor with --scale S; for two photos ({tmp_path / 'mono.png'}: a mono camera's 16-bit one) give "
        "--kind image",
    }
    for (a, b), advice in said.items():
        assert main(["compare", str(tmp_path / a), str(tmp_path / b)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("rtstereo compare: error: ") and err.count("\n") == 1, err
        assert err.rstrip().endswith(f"not both images or both disparity maps; {tmp_path}/{advice}"), err
    assert main(["compare", str(tmp_path / "gt.png"), str(tmp_path / "map.pfm"), "--scale", "8", "--json"]) == 0
