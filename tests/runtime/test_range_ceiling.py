"""A map cut off at the top of its disparity range is warned about, naming --max-disp: a scene that fits
its range leaves almost nothing there, one with nearer points beyond it piles them up there."""

from __future__ import annotations

import re
import warnings

import cv2
import numpy as np
import pytest

from rtstereo.cli import main
from rtstereo.runtime.predictor import (
    CEILING_SHARE,
    RangeCeilingWarning,
    range_ceiling_share,
    range_ceiling_warning,
)
from rtstereo.types import DisparityResult


def _ground_plane(tmp_path, near_px: float = 60.0, height: int = 160, width: int = 320):
    """A textured plane seen from above it: 8 px disparity at the top row, ``near_px`` at the bottom one."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 2, width // 2, 3), dtype=np.uint8)
    left = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    disparity = np.linspace(8, near_px, height, dtype=np.float32)[:, None] * np.ones((1, width), np.float32)
    xs = np.arange(width, dtype=np.float32)[None, :] + disparity  # the right view sees left's x at x - d
    ys = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, 1)
    right = cv2.remap(left, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(tmp_path / "l.png"), left)
    cv2.imwrite(str(tmp_path / "r.png"), right)
    return tmp_path / "l.png", tmp_path / "r.png"


def test_predict_warns_when_the_map_piles_up_at_the_top_of_its_range(capsys, tmp_path):
    left, right = _ground_plane(tmp_path)  # 8..60 px
    said = r"\d+\.\d % of the map sits at the top of the searched range \(30-31 px; --max-disp 32\): .* e\.g\. 64"
    with pytest.warns(RangeCeilingWarning, match=said):
        code = main(
            ["predict", str(left), str(right), "--model", "sgbm", "--max-disp", "32", "-o", str(tmp_path / "a")]
        )
    assert code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RangeCeilingWarning)
        assert (
            main(["predict", str(left), str(right), "--model", "sgbm", "--max-disp", "64", "-o", str(tmp_path / "b")])
            == 0
        )


def test_opencvs_range_is_the_multiple_of_16_it_searches_not_the_max_disp_asked_for(capsys, tmp_path):
    """--max-disp 17 searches 32 px: the check took 16 px for the top, calling a plane that ends at 19 px cut off
    at --max-disp 20 and saying nothing of one piled up at 31 px."""
    import rtstereo

    assert rtstereo.load("sgbm", max_disp=17).max_disp_px == 32.0
    assert rtstereo.load("bm", max_disp=20).max_disp_px == 32.0
    assert rtstereo.load("sgbm", max_disp=64).max_disp_px == 64.0
    for folder in ("within", "beyond"):
        (tmp_path / folder).mkdir()
    within = _ground_plane(tmp_path / "within", near_px=19.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RangeCeilingWarning)
        argv = ["predict", *map(str, within), "--model", "sgbm", "--max-disp", "20", "-o", str(tmp_path / "a.pfm")]
        assert main(argv) == 0
    beyond = _ground_plane(tmp_path / "beyond", near_px=60.0)
    said = r"top of the searched range \(30-31 px; --max-disp 17, searched as 32\): .* e\.g\. 64"
    with pytest.warns(RangeCeilingWarning, match=said):
        argv = ["predict", *map(str, beyond), "--model", "sgbm", "--max-disp", "17", "-o", str(tmp_path / "b.pfm")]
        assert main(argv) == 0


def test_one_pair_names_itself_in_every_warning_as_in_its_rectification_warning(capsys, tmp_path):
    """One pair's rectification and exposure warnings named it ('l: the pair does not look rectified'), its range
    and reading warnings did not: each is named now, as a batch names each pair's."""
    left, right = _ground_plane(tmp_path)
    for path in (left, right):  # 12-bit data in 16-bit files: the reading's warning
        cv2.imwrite(str(path), cv2.imread(str(path)).astype(np.uint16) * 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(
            ["predict", str(left), str(right), "--model", "sgbm", "--max-disp", "32", "-o", str(tmp_path / "o")]
        )
    said = [str(w.message) for w in caught]
    assert code == 0, capsys.readouterr().err
    assert any(re.match(r"l: \d+\.\d % of the map sits at the top of the searched range", m) for m in said), said
    assert any(m.startswith(f"l: {left} is a 16-bit image whose values stay at or below") for m in said), said
    assert [w.category for w in caught if "top of the searched range" in str(w.message)] == [RangeCeilingWarning]


def test_a_batch_says_it_as_the_pairs_warning(capsys, tmp_path):
    left, right = _ground_plane(tmp_path)
    for side, image in (("L", left), ("R", right)):
        (tmp_path / side).mkdir()
        for index in range(2):
            (tmp_path / side / f"{index}.png").write_bytes(image.read_bytes())
    code = main(["predict", str(tmp_path / "L"), str(tmp_path / "R"), "--model", "sgbm", "--max-disp", "32"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("of the map sits at the top of the searched range (30-31 px; --max-disp 32)") == 1, err
    # the share of the first pair's warning, repeated (7.3 % on OpenCV 5.1, 7.4 % on 4.14: SGBM differs a little)
    (share,) = re.findall(r"warning: 0: (\d+\.\d %) of the map sits at the top of the searched range", err)
    assert f"1 more pair gave the same warning as above ({share} of the map sits at the ...): 1" in err, err


def test_a_batch_says_it_once_when_the_pairs_shares_differ(capsys, tmp_path):
    """Each pair's share is its own (2.6 %, 2.8 %, 3.0 % ... along a sequence): every pair printed its own line
    of the same warning, a flood of them in a batch of thousands."""
    for index, near_px in enumerate((50.0, 60.0, 70.0)):
        left, right = _ground_plane(tmp_path, near_px=near_px)
        for side, image in (("L", left), ("R", right)):
            (tmp_path / side).mkdir(exist_ok=True)
            image.rename(tmp_path / side / f"{index}.png")
    summary = tmp_path / "s.csv"
    argv = ["predict", str(tmp_path / "L"), str(tmp_path / "R"), "--model", "sgbm", "--max-disp", "32"]
    code = main([*argv, "-o", str(tmp_path / "out"), "--summary", str(summary), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    shares = [re.search(r"(\d+\.\d) % of the map", row).group(1) for row in summary.read_text().splitlines()[1:]]
    assert len(set(shares)) == 3, shares
    assert err.count("% of the map sits at the") == 2, err  # the warning, then the count
    assert f"warning: 0: {shares[0]} % of the map sits at the top" in err
    assert "2 more pairs gave the same warning as above" in err and "with figures of their own: 1, 2;" in err


def test_the_share_counts_a_band_of_1_px_about_the_top_in_input_pixels():
    disparity = np.full((10, 100), 20.0, np.float32)
    disparity[0, :5] = np.nan
    disparity[1] = 190.5  # within 1 px of 191
    disparity[2, :50] = 193.0  # beyond it (a hybrid's network part): not cut off
    share, top_px = range_ceiling_share(DisparityResult(disparity, input_size_hw=(10, 100)), 192.0)
    assert top_px == 191.0 and share == 100 / 995
    assert range_ceiling_warning(DisparityResult(disparity), 192.0).startswith("10.1 % of the map")
    # run at half the width (to fit memory), its disparity doubled: the top is 2 x 191 px
    result = DisparityResult(disparity * 2, input_size_hw=(10, 100), network_size_hw=(5, 50), disparity_scale=2.0)
    assert range_ceiling_share(result, 192.0) == (share, 382.0)
    assert range_ceiling_share(DisparityResult(disparity), None)[0] == 0.0

    assert CEILING_SHARE == 0.01
    exact = np.full((2, 500), 20.0, np.float32)  # wide enough for the larger range it suggests
    exact[0, :10] = 191.0  # 10 of 1000 valid pixels: 1 %, the threshold, is warned about
    said = range_ceiling_warning(DisparityResult(exact), 192.0)
    assert said.startswith("1.0 % of the map") and said.endswith("e.g. 288")  # 1.5 x 192, a multiple of 32
    exact[0, 9] = 20.0  # 9 of 1000: just under
    assert range_ceiling_warning(DisparityResult(exact), 192.0) is None


@pytest.mark.parametrize(
    "width, max_disp, advice",
    [
        (320, 192.0, "e.g. 288"),  # 1.5 x 192 fits below the width
        (250, 192.0, "e.g. 224"),  # it does not: the largest multiple of 32 that does
        (200, 192.0, "which already spans most of the 200-px width: no larger --max-disp fits this image"),
        (320, 336.0, "which already spans most of the 320-px width: no larger --max-disp fits this image"),
    ],
)
def test_the_larger_range_it_suggests_fits_the_image(width, max_disp, advice):
    """GwcNet at --max-disp 336 on a 320-px pair piled up at 335 px and was told "search further ... e.g. 512": a
    disparity must stay below the width, so no range that large can be searched (OpenCV refuses it)."""
    disparity = np.full((10, width), 20.0, np.float32)
    disparity[:2] = max_disp - 1
    said = range_ceiling_warning(DisparityResult(disparity), max_disp)
    assert said.endswith(advice) if advice.startswith("e.g.") else advice in said, said
    assert "search further" in said if advice.startswith("e.g.") else "search further" not in said, said


def test_the_range_that_fits_is_in_the_pixels_the_range_was_searched_in():
    """A pair run at half its size (a memory budget): max_disp_px and the range suggested are the network's, half
    the input's width."""
    for width, advice in ((400, "e.g. 160"), (200, "no larger --max-disp fits this image")):
        disparity = np.full((10, width), 20.0, np.float32)
        disparity[:2] = 2 * (96 - 1)  # the top of 96 px searched at half the size, in the input's pixels
        result = DisparityResult(
            disparity, input_size_hw=(10, width), network_size_hw=(5, width // 2), disparity_scale=2.0
        )
        said = range_ceiling_warning(result, 96.0)
        assert said is not None and advice in said, said


@pytest.mark.parametrize(
    "model, fixed",
    [
        ("rtnet-v5", "rtnet-v5's range, fixed in its weights at 192 px"),
        ("rtnet", "rtnet's range, fixed in its weights at 192 px"),
        ("hybrid", "its network's range, fixed at 192 px"),
        ("gwcnet-g", None),
        ("sgbm", None),
    ],
)
def test_a_range_that_max_disp_cannot_move_is_not_told_to_search_further_with_it(model, fixed):
    """rtnet-v5 was told "search further with a larger --max-disp, e.g. 288", which its weights refuse; the hybrid,
    whose --max-disp is SGBM's, got a larger SGBM range beside the same network, piled up at 191 px again."""
    disparity = np.full((10, 1000), 20.0, np.float32)
    disparity[:2] = 191.0
    settings = {"max_disp": 64} if model == "hybrid" else {"max_disp": 192}
    said = range_ceiling_warning(DisparityResult(disparity, model=model, settings=settings), 192.0)
    if fixed is None:
        assert said.endswith("search further with a larger --max-disp (max_disp= in Python), e.g. 288"), said
        return
    assert f"(190-191 px; {fixed}): nearer points lie beyond it" in said, said
    # with the Python words too: a Python caller was told "--model sgbm --max-disp 288" alone
    python = "e.g. --model sgbm --max-disp 288 (rtstereo.load('sgbm', max_disp=288) in Python)"
    assert "--max-disp cannot move it" in said and said.endswith(python), said
    assert "search further" not in said and "searched as" not in said, said
