"""``rtstereo eval`` survives its data: range hints wider than the image, GT of another size, failures in the table."""

from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtstereo.cli import main
from rtstereo.datasets import find_samples
from rtstereo.errors import InputError, OutputError
from rtstereo.eval import EvalReport, clamp_search_ranges, evaluate, score_sample, search_range_px

from .corpus import _eth3d_scene, _write_pair


@pytest.mark.parametrize(
    ("hint", "width", "expected"),
    [
        (713, 713, 704),
        (720, 713, 704),
        (704, 713, 704),
        (705, 713, 704),
        (192, 713, 192),
        (64, 40, 32),
        (64, 8, 16),
        (64, 50, 32),  # 48 left 2 px beside it: too few for SGBM's block, the scene failed
        (48, 50, 32),
        (704, 706, 688),
    ],
)
def test_search_range_stays_below_the_width(hint, width, expected):
    assert search_range_px(hint, width) == expected


def test_a_clamped_range_is_one_sgbm_can_search(capsys, tmp_path):
    """The ETH3D-like scene's ndisp 64 on a 50-px-wide image was clamped to 48, which SGBM then refused as too wide for
    its block: the scene failed."""
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 50), ndisp=64)
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "searching 32 px" in err and "failed" not in err
    assert json.loads((tmp_path / "res" / "sgbm.json").read_text())["scenes"][0]["settings"]["max_disp"] == 32


def test_clamped_hint_comes_with_a_note(tmp_path):
    samples = find_samples(_eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=72))
    clamped, notes = clamp_search_ranges(samples)
    assert clamped[0].max_disp_hint_px == 64
    assert notes == [
        "s: the dataset's disparity range 72 px does not fit the 72-px-wide image; searching 64 px: OpenCV matches "
        "no pixel in the first 64 columns (89 % of the width); --max-disp gives a tighter range"
    ]
    assert clamp_search_ranges(clamped)[0] == clamped  # clamped once (what it costs is said again, still true)


@pytest.mark.parametrize("ndisp", [64, 0])
def test_an_image_too_narrow_for_opencv_is_said_so_in_the_note_and_the_failure(capsys, tmp_path, ndisp):
    """16 px wide: the note said "searching 16 px", then the scene failed as too narrow to search 16 px."""
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 16), ndisp=ndisp)
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    err = capsys.readouterr().err
    reason = (
        "the 16-px-wide image is too narrow for OpenCV's matcher, which needs a width above its least search range "
        "of 16 px: not scored"
    )
    assert code == 1 and err.splitlines()[0] == f"rtstereo eval: note: s: {reason}", err
    assert "searching" not in err
    assert json.loads((tmp_path / "res" / "sgbm.json").read_text())["failed"][0]["error"] == reason


def test_scenes_that_get_one_note_are_named_in_one_line(tmp_path):
    """Each scene had its own line of the same note: 400 small KITTI frames gave 400 lines, burying the failures."""
    for name in ("a", "b", "c", "d", "e", "f", "g"):
        _eth3d_scene(tmp_path / "eth3d" / name, hw=(40, 72), ndisp=72)
    _eth3d_scene(tmp_path / "eth3d" / "z", hw=(40, 80), ndisp=80)
    clamped, notes = clamp_search_ranges(find_samples(tmp_path / "eth3d"))
    assert [s.max_disp_hint_px for s in clamped] == [64] * 8
    assert notes == [
        "a, b, c, d, e and 2 more: the dataset's disparity range 72 px does not fit the 72-px-wide image; searching "
        "64 px: OpenCV matches no pixel in the first 64 columns (89 % of the width); --max-disp gives a tighter range",
        "z: the dataset's disparity range 80 px does not fit the 80-px-wide image; searching 64 px: OpenCV matches no "
        "pixel in the first 64 columns (80 % of the width); --max-disp gives a tighter range",
    ]


def test_a_range_of_zero_is_no_hint_and_a_note_says_so(tmp_path, capsys):
    """It was searched at the method's own range, which SGBM's 192 px is, on any width: the 72-px-wide scene failed
    where one whose calib.txt has no ndisp is searched at the 64 px that fit it, and scored."""
    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72))
    calib = folder / "calib.txt"
    calib.write_text(calib.read_text().replace("ndisp=72", "ndisp=0"))
    samples = find_samples(folder)
    kept, notes = clamp_search_ranges(samples)
    assert kept[0].max_disp_hint_px == 64
    assert notes == [
        "s: the dataset gives a disparity range of 0 px; searching 64 px, as for a scene without one, which fits the "
        "72-px-wide image: OpenCV matches no pixel in the first 64 columns (89 % of the width); --max-disp gives a "
        "tighter range"
    ]
    calib.write_text(calib.read_text().replace("ndisp=0\n", ""))
    assert clamp_search_ranges(find_samples(folder))[0][0].max_disp_hint_px == 64  # as without ndisp
    # the hybrid searches its own range, a quarter of the width at most
    kept, notes = clamp_search_ranges(samples, quarter_width_cap=True)
    assert kept[0].max_disp_hint_px == 0
    assert notes == ["s: the dataset gives a disparity range of 0 px; searching the method's own"]
    code = main(["eval", "--model", "sgbm", str(folder), "-q", "-o", str(tmp_path / "res")])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "res" / "sgbm.json").read_text())["scenes"][0]["settings"]["max_disp"] == 64


def test_clamp_keeps_the_hint_of_an_unreadable_image(tmp_path):
    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=72)
    (folder / "im0.png").write_bytes(b"damaged")
    samples = find_samples(folder)
    assert clamp_search_ranges(samples) == (samples, [])


def test_eval_cli_clamps_the_range_of_an_eth3d_scene(capsys, tmp_path):
    import warnings

    from rtstereo.models.sgbm import UnmatchedBandWarning

    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=72)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    assert not [w for w in caught if w.category is UnmatchedBandWarning]  # the note says it, not sgbm again
    err = capsys.readouterr().err
    assert code == 0
    assert err.splitlines()[0] == (
        "rtstereo eval: note: s: the dataset's disparity range 72 px does not fit the 72-px-wide image; searching 64 px"
        ": OpenCV matches no pixel in the first 64 columns (89 % of the width); --max-disp gives a tighter range"
    )
    scene = json.loads((tmp_path / "res" / "sgbm.json").read_text())["scenes"][0]
    assert scene["settings"]["max_disp"] == 64
    # a range the user gave is not the dataset's: no note, sgbm's own warning says it
    with pytest.warns(UnmatchedBandWarning, match=r"first 48 columns \(67 % of the 72-px width\)"):
        code = main(["eval", "--model", "sgbm", "--max-disp", "48", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path)])
    assert code == 0 and "note:" not in capsys.readouterr().err


def test_the_hybrid_on_a_range_wider_than_the_image_gets_no_note_of_unmatched_columns(capsys, tmp_path):
    """The hybrid's SGBM searches a quarter of the width at most: it was told that OpenCV matched no pixel in the
    first 64 of 72 columns, and its table said it searched 64 px, where it searched 32."""
    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=72)
    assert clamp_search_ranges(find_samples(folder), quarter_width_cap=True) == (find_samples(folder), [])
    code = main(["eval", "--model", "hybrid", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "note:" not in err and "OpenCV matches no pixel" not in err
    scene = json.loads((tmp_path / "res" / "hybrid.json").read_text())["scenes"][0]
    assert scene["settings"]["sgbm_searched_disp"] == 32  # a quarter of 72 px, rounded up to 16s
    assert "72 (32 searched)" in out.splitlines()[1]


def test_the_table_says_what_sgbm_searched_where_it_rounded_the_range_up(capsys, tmp_path):
    """SGBM searches a multiple of 16: the table read '20' where it searched 32 (Middlebury 2006's 85 px: 96)."""
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=20)
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    assert code == 0
    assert "20 (32 searched)" in capsys.readouterr().out.splitlines()[1]


def test_what_a_scene_is_warned_about_names_the_scene_each_time(capsys, tmp_path):
    """'warning: the left image is grey ...' said which problem a run of many scenes met, not in which scene, and
    a second scene with it went unsaid."""
    import cv2

    for name in ("grey_a", "grey_b", "colour"):
        folder = _eth3d_scene(tmp_path / "eth3d" / name, hw=(40, 72), ndisp=32)
        if name != "colour":
            cv2.imwrite(str(folder / "im0.png"), cv2.imread(str(folder / "im0.png"), cv2.IMREAD_GRAYSCALE))
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):  # printed, as on the command line
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    err = capsys.readouterr().err
    said = "the left image is grey and the right one in colour"
    assert code == 0 and err.count(said) == 2, err  # once per scene, the warm-up run's not again
    assert f"rtstereo eval: warning: grey_a: {said}" in err and f"rtstereo eval: warning: grey_b: {said}" in err


def test_eval_json_records_the_versions_commit_and_each_scenes_images(capsys, tmp_path):
    """The JSON said {"cpu": "x86_64", "python": ...}: not which rtstereo or OpenCV scored it (SGBM's figures move
    between OpenCV 4 and 5), nor which images a scene named 'Teddy' was."""
    import cv2

    import rtstereo

    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    assert main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")]) == 0
    document = json.loads((tmp_path / "res" / "sgbm.json").read_text())
    versions = document["machine"]["versions"]
    assert versions["rtstereo"] == rtstereo.__version__ and versions["opencv"] == cv2.__version__
    assert {"commit", "cpu", "python"} <= set(document["machine"])
    assert document["scenes"][0]["left"] == str(folder.absolute() / "im0.png")


class _NeverPredicts:
    """A predictor that a scene which cannot be scored must not run (it may be built: its memory plan is asked of the
    scene's header, before anything is decoded; this one has none)."""

    def predict(self, left, right):
        pytest.fail("no prediction for a scene that cannot be scored")


def test_ground_truth_of_another_size_names_the_scene(tmp_path):
    sample = find_samples(_eth3d_scene(tmp_path / "scene_a", hw=(40, 72), ndisp=32, gt_hw=(30, 40)))[0]
    with pytest.raises(
        InputError, match=r"scene scene_a: ground truth .*disp0GT.pfm is 30x40 but the left image .* is 40x72 \(HxW\)"
    ):
        score_sample(lambda s: _NeverPredicts(), sample)


def test_prediction_of_another_size_names_the_scene(tmp_path):
    import numpy as np

    from rtstereo.types import DisparityResult

    class Shrinking:
        def predict(self, left, right):
            return DisparityResult(disparity_px=np.zeros((10, 10), np.float32), timings_ms={"total": 1.0})

    sample = find_samples(_eth3d_scene(tmp_path / "scene_b", hw=(40, 72), ndisp=32))[0]
    with pytest.raises(
        InputError, match=r"scene scene_b: the prediction is 10x10 but the ground truth is 40x72 \(HxW\)"
    ):
        score_sample(lambda s: Shrinking(), sample)


def test_mask_of_another_size_names_the_scene(tmp_path):
    import cv2
    import numpy as np

    folder = _eth3d_scene(tmp_path / "scene_c", hw=(40, 72), ndisp=32)
    cv2.imwrite(str(folder / "mask0nocc.png"), np.full((20, 20), 255, np.uint8))
    sample = find_samples(folder)[0]
    with pytest.raises(
        InputError, match=r"scene scene_c: mask .*mask0nocc.png is 20x20 but the ground truth is 40x72 \(HxW\)"
    ):
        score_sample(lambda s: _NeverPredicts(), sample)


def test_the_table_marks_failed_scenes():
    report = EvalReport(model="m", failures=[{"name": "bad_scene", "left": "x.png", "error": "cannot read"}])
    row = next(line for line in report.table().splitlines() if line.startswith("bad_scene"))
    assert "failed" in row
    assert "| bad_scene | failed |" in report.table(markdown=True)


def test_a_scene_named_with_a_bar_keeps_its_markdown_row_to_the_headers_columns():
    """A folder named "a|b" split its Markdown row into one cell more than the header."""
    from rtstereo.eval import SceneResult

    scenes = [SceneResult("a|b/000000", "kitti2015", (4, 4), {}, {"epe": 1.0})]
    failures = [{"name": "c|d", "left": "x.png", "error": "cannot read"}]
    header, _, *rows = EvalReport("m", scenes, failures).table(markdown=True).split("\n\n")[0].splitlines()
    columns = lambda line: len(re.split(r"(?<!\\)\|", line))  # noqa: E731 - cells between unescaped bars
    assert [columns(row) for row in rows] == [columns(header)] * 3
    assert rows[0].startswith("| a\\|b/000000 | 4x4 |") and rows[1].startswith("| c\\|d | failed |")


def test_the_table_shows_each_benchmarks_own_non_occluded_figure():
    """ETH3D ranks by bad-1 and KITTI 2012 by bad-3 over non-occluded pixels: the table showed bad-2 and D1 noc only,
    so those figures were in the JSON alone."""
    from rtstereo.eval import SceneResult

    metrics = {"noc/bad-1": 12.34, "noc/bad-2": 8.76, "noc/bad-3": 5.67, "noc/d1": 4.32}
    table = EvalReport("m", [SceneResult("delivery_area_1l", "eth3d", (4, 4), {}, metrics)]).table(markdown=True)
    header, _, row, *_ = table.splitlines()
    cells = dict(zip(header.split(" | "), row.split(" | ")))
    shown = [cells[column] for column in ("bad-1 noc", "bad-2 noc", "bad-3 noc", "D1 noc")]
    assert shown == ["12.3", "8.8", "5.7", "4.3"]


def test_the_table_and_json_say_the_mean_is_over_scenes_and_the_noc_mean_over_those_with_a_mask(tmp_path):
    """The mean row read 'mean (3)', its noc columns beside the others, with nothing to say that it weighs scenes,
    not pixels, nor that the noc columns average fewer scenes."""
    from rtstereo.eval import SceneResult

    scenes = [
        SceneResult("a", "kitti2012", (4, 4), {}, {"epe": 1.0, "pixels": 16, "noc/epe": 1.0, "noc/pixels": 8}),
        SceneResult("b", "kitti2012", (4, 4), {}, {"epe": 2.0, "pixels": 16, "noc/epe": 3.0, "noc/pixels": 8}),
        SceneResult("c", "eth3d", (2, 2), {}, {"epe": 6.0, "pixels": 4}),
    ]
    report = EvalReport(model="m", scenes=scenes)
    note = "over 3 scenes, each weighing the same (not over pixels); the noc columns over the 2 with a mask"
    assert report.mean["epe"] == 3.0 and report.mean["noc/epe"] == 2.0  # scenes, not the 36 pixels' 2.0
    assert report.table().splitlines()[-1] == f"mean: {note}"
    assert report.table(markdown=True).endswith(f"\n\nmean: {note}")
    assert report.to_json()["mean_over"] == note
    json_path, _ = report.save(tmp_path, "m")
    assert json.loads(json_path.read_text())["mean_over"] == note
    assert (
        EvalReport(model="m", scenes=scenes[:2]).mean_note()
        == "over 2 scenes, each weighing the same (not over pixels)"
    )


def test_a_scene_whose_mask_is_empty_is_not_counted_among_those_with_a_mask(capsys, tmp_path):
    """A mask0nocc.png that marks no pixel non-occluded gives noc values over no pixels (nan, "-"), left out of the
    noc mean: the note still counted its scene "with a mask"."""
    import cv2

    for name, value in (("a", 255), ("b", 255), ("c", 128)):  # c: every pixel occluded
        folder = _eth3d_scene(tmp_path / "eth3d" / name, hw=(40, 72), ndisp=32)
        cv2.imwrite(str(folder / "mask0nocc.png"), np.full((40, 72), value, np.uint8))
    code = main(["eval", "--model", "sgbm", "--max-disp", "32", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    note = "over 3 scenes, each weighing the same (not over pixels); the noc columns over the 2 with a mask"
    assert out.splitlines()[-2] == f"mean: {note}", out
    results = json.loads((tmp_path / "sgbm_max_disp=32.json").read_text())
    assert results["mean_over"] == note
    assert results["scenes"][2]["metrics"]["noc/pixels"] == 0 and results["scenes"][2]["metrics"]["noc/epe"] is None


def test_eval_help_lists_the_files_that_the_no_known_layout_error_sends_the_user_to_it_for(capsys, tmp_path):
    """'no stereo dataset of a known layout ...; see `rtstereo eval --help` for the expected files': the help named
    the layouts only, not one file of them."""
    (tmp_path / "plain").mkdir()
    assert main(["eval", "--model", "sgbm", str(tmp_path / "plain"), "-q"]) == 2
    assert "see `rtstereo eval --help` for the expected files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    help_text = capsys.readouterr().out
    for expected in (
        "disp2",
        "disp1.png",
        "disp0GT.pfm",
        "mask0nocc.png",
        "disp_occ_0/",
        "disp_noc/",
        "value / 256, 0 = invalid",
        "inf = unknown",
        "disparity/left/X.pfm",
        "X.npy",  # a set of one's own in the SceneFlow layout: it was left out as without ground truth
        "train-disparity-map/SEQ/X.png",
        "eval_masks/nonocc.png, else nonocc.png in the scene folder",  # both are read: it named the first only
        "a mask\n                       as for 2001/2003",  # middlebury2005 reads them too
        "The mean row is over scenes",
    ):
        assert expected in help_text, expected


def test_eval_cli_reads_a_file_url_and_refuses_a_web_url_as_usage_errors_are(capsys, tmp_path):
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    assert main(["eval", "--model", "sgbm", (tmp_path / "eth3d").as_uri(), "-q", "-o", str(tmp_path / "res")]) == 0
    assert json.loads((tmp_path / "res" / "sgbm.json").read_text())["scenes"][0]["name"] == "s"
    capsys.readouterr()
    assert main(["eval", "--model", "sgbm", "https://example.org/eth3d.7z", "-q", "-o", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "datasets are read from local folders, not from URLs" in err, err


def test_eval_names_a_failed_scene_whose_folder_holds_a_line_break_whole_on_one_line(capsys, tmp_path):
    """A scene folder named "b<newline>c" whose image was damaged failed as "... cannot read .../b", cut there."""
    _eth3d_scene(tmp_path / "eth3d" / "a", hw=(40, 72), ndisp=32)
    scene = _eth3d_scene(tmp_path / "eth3d" / "b\nc", hw=(40, 72), ndisp=32)
    (scene / "im0.png").write_bytes(b"damaged")
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 1, err
    shown = str(scene / "im0.png").replace("\n", "\\n")
    assert f"rtstereo eval: failed: b\\nc ({shown}): cannot read {shown}: not an image" in err, err
    assert "rtstereo eval: 1 scene failed: b\\nc (listed in " in err, err
    failed = json.loads((tmp_path / "res" / "sgbm.json").read_text())["failed"]
    assert failed[0]["error"].startswith(f"cannot read {shown}: not an image"), failed


@pytest.mark.parametrize("calib", [b"ndisp=abc\n", b"\xff\xfe\x00n\x00d"])
def test_eval_cli_fails_the_scene_of_a_damaged_calib_txt_alone(capsys, tmp_path, calib):
    _eth3d_scene(tmp_path / "eth3d" / "a", hw=(40, 72), ndisp=32)
    (_eth3d_scene(tmp_path / "eth3d" / "b", hw=(40, 72), ndisp=32) / "calib.txt").write_bytes(calib)
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "rtstereo eval: failed: b (" in err and "calib.txt" in err and "Traceback" not in err
    assert "note" not in err  # no range note for a scene whose range is unknown
    results = json.loads((tmp_path / "res" / "sgbm.json").read_text())
    assert [s["name"] for s in results["scenes"]] == ["a"] and results["failed"][0]["name"] == "b"


def test_eval_cli_fails_a_path_of_no_known_layout_by_name_and_scores_the_others(capsys, tmp_path):
    """One path of several that held no known layout stopped the whole run (exit code 2), where predict goes on past
    a bad pair: it fails by name (stderr, the table, the JSON's failed_paths), the others are scored, exit code 1."""
    _eth3d_scene(tmp_path / "eth3d" / "a", hw=(40, 72), ndisp=32)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here")
    (tmp_path / "empty").mkdir()
    given = [str(tmp_path / "eth3d"), str(tmp_path / "notes"), str(tmp_path / "empty")]
    code = main(["eval", "--model", "sgbm", *given, "-q", "-o", str(tmp_path / "res")])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert f"rtstereo eval: failed: no stereo dataset of a known layout under {given[1]} (known: " in err
    assert f"under {given[2]} (known: " in err and "the folder is empty" in err
    assert f"rtstereo eval: 2 paths not scored, no known layout: {given[1]}, {given[2]} (listed in " in err
    rows = [line.split() for line in out.splitlines()]
    assert [given[1], "(path)", "failed", "-"] in [row[:4] for row in rows], out
    results = json.loads((tmp_path / "res" / "sgbm.json").read_text())
    assert [s["name"] for s in results["scenes"]] == ["a"] and results["failed"] == []
    assert [f["path"] for f in results["failed_paths"]] == given[1:]
    assert results["failed_paths"][0]["error"].startswith(f"no stereo dataset of a known layout under {given[1]}")
    # --fail-fast stops at it, before any scene, as before; a path alone, or every path of no layout, too
    for options in (["--fail-fast", *given], given[1:2], given[1:]):
        code = main(["eval", "--model", "sgbm", *options, "-q", "-o", str(tmp_path / "res2")])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and f"no stereo dataset of a known layout under {given[1]}" in err
        assert not (tmp_path / "res2").exists()


def _kitti_without_ground_truth(folder):
    """A KITTI 2012 testing-split frame: colored_0 and colored_1, no disp_occ."""
    import shutil

    left, right = _write_pair(folder / "tmp", hw=(40, 72))
    for side, path in (("colored_0", left), ("colored_1", right)):
        (folder / side).mkdir(parents=True)
        shutil.copy(path, folder / side / "000000_10.png")
    shutil.rmtree(folder / "tmp")
    return folder


def test_eval_cli_refuses_scenes_that_all_lack_ground_truth_and_writes_nothing(capsys, tmp_path):
    data = _kitti_without_ground_truth(tmp_path / "testing")
    code = main(["eval", "--model", "sgbm", str(data), "-q", "-o", str(tmp_path / "res")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        f"rtstereo eval: error: no scene with ground truth under {data}: 1 scene found (testing/000000), "
        "none with a disparity map to score against (looked for testing/000000's at "
        f"{data / 'disp_occ' / '000000_10.png'})\n"
    )
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("layout", ["sceneflow", "middlebury2014"])
def test_eval_cli_names_where_it_looked_for_the_ground_truth_of_a_set_of_ones_own(capsys, tmp_path, layout):
    """The maps kept beside the layout's place (disparity/X.pfm for disparity/left/X.pfm, gt.pfm for disp0GT.pfm):
    "none with a disparity map to score against" said not where one was looked for."""
    data = tmp_path / "mine"
    if layout == "sceneflow":
        left, right = _write_pair(tmp_path / "pair")
        for side, path in (("left", left), ("right", right)):
            (data / "images" / side).mkdir(parents=True)
            path.rename(data / "images" / side / "0.png")
        scene, expected = "mine/0", data / "disparity" / "left" / "0.pfm"
    else:
        _eth3d_scene(data / "s").joinpath("disp0GT.pfm").rename(data / "s" / "gt.pfm")
        scene, expected = "s", data / "s" / "disp0GT.pfm"
    assert main(["eval", "--model", "sgbm", str(data), "-q", "-o", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"none with a disparity map to score against (looked for {scene}'s at {expected})\n"), err


def test_eval_cli_notes_the_scenes_without_ground_truth_it_leaves_out(capsys, tmp_path):
    _kitti_without_ground_truth(tmp_path / "data" / "testing")
    _eth3d_scene(tmp_path / "data" / "eth3d" / "s", hw=(40, 72), ndisp=32)
    code = main(["eval", "--model", "sgbm", str(tmp_path / "data"), "-q", "-o", str(tmp_path / "res")])
    out, err = capsys.readouterr()
    assert code == 0
    assert err == (
        "rtstereo eval: note: 1 scene without ground truth left out: testing/000000 (looked for testing/000000's at "
        f"{tmp_path / 'data' / 'testing' / 'disp_occ' / '000000_10.png'})\n"
    )
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["s", "mean"]
    results = json.loads((tmp_path / "res" / "sgbm.json").read_text())  # the JSON counts them too
    assert results["without_ground_truth"] == ["testing/000000"] and results["scenes_listed"] == 1


def test_a_scene_whose_ground_truth_has_no_valid_pixel_fails_alone_and_the_json_stays_strict(capsys, tmp_path):
    from .corpus import _write_pfm

    _eth3d_scene(tmp_path / "eth3d" / "a", hw=(40, 72), ndisp=32)
    empty = _eth3d_scene(tmp_path / "eth3d" / "b", hw=(40, 72), ndisp=32)
    _write_pfm(empty / "disp0GT.pfm", np.full((40, 72), np.inf))  # a PFM's "unknown" everywhere
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"scene b: ground truth {empty / 'disp0GT.pfm'} has no valid pixel (all 0, inf or nan)" in err
    assert "mean (1)" in out

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    # No scene has a mask: the noc/ columns are absent, and a metric over no pixels would be null, not NaN.
    results = json.loads((tmp_path / "res" / "sgbm.json").read_text(), parse_constant=refuse)
    assert [s["name"] for s in results["scenes"]] == ["a"] and results["failed"][0]["name"] == "b"


def test_ground_truth_stored_negated_is_named_as_such_not_as_all_unknown(tmp_path):
    from .corpus import _write_pfm

    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    negated = np.full((40, 72), -5.0)
    negated[:4] = -np.inf  # unknown pixels are not counted among the negative values
    _write_pfm(folder / "disp0GT.pfm", negated)
    sample = find_samples(folder)[0]
    with pytest.raises(InputError) as info:
        score_sample(lambda s: None, sample)
    assert str(info.value) == (
        f"scene s: ground truth {folder / 'disp0GT.pfm'} has no valid pixel (all 2592 of its known values are "
        "negative: a map of x_right - x_left? Ground truth is the left view's x_left - x_right, positive), nothing "
        "to score against"
    )


def test_ground_truth_mostly_negative_fails_its_scene_rather_than_be_scored_on_its_few_positive_pixels(tmp_path):
    """A map of x_right - x_left with a few values just above 0 was scored over those few pixels, unsaid."""
    from .corpus import _write_pfm

    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    negated = np.full((40, 72), -5.0)
    negated[0, :10] = 0.25
    negated[1:4] = np.inf  # unknown pixels are counted on neither side
    _write_pfm(folder / "disp0GT.pfm", negated)
    with pytest.raises(InputError) as info:
        score_sample(lambda s: None, find_samples(folder)[0])
    assert str(info.value) == (
        f"scene s: ground truth {folder / 'disp0GT.pfm'} holds more negative values than positive ones (2654 against "
        "10), which alone would be scored: a map of x_right - x_left? Ground truth is the left view's x_left - "
        "x_right, positive"
    )


def test_eval_json_writes_a_metric_over_no_pixels_as_null(tmp_path):
    from rtstereo.eval import SceneResult

    report = EvalReport("m", scenes=[SceneResult("s", "eth3d", (2, 2), {}, {"epe": 1.0, "noc/epe": float("nan")})])
    json_path, _ = report.save(tmp_path, "m")
    data = json.loads(json_path.read_text())
    assert data["scenes"][0]["metrics"] == {"epe": 1.0, "noc/epe": None} and data["mean"]["noc/epe"] is None
    assert datetime.datetime.fromisoformat(data["date"]).utcoffset() is not None  # the date says its time zone


def test_eval_json_records_the_commit_hardware_and_versions_as_bench_does(tmp_path):
    import cv2

    from rtstereo.bench import cpu_name
    from rtstereo.eval import SceneResult

    report = EvalReport("m", scenes=[SceneResult("s", "eth3d", (2, 2), {}, {"epe": 1.0})])
    data = json.loads(report.save(tmp_path, "m")[0].read_text())
    # scores move with OpenCV's version, the ms column with the machine: "x86_64" and Python's version named neither
    assert "commit" in data and data["machine"]["cpu"] == cpu_name() and data["machine"]["device"] == "cpu"
    assert data["machine"]["versions"]["opencv"] == cv2.__version__ and "onnxruntime" in data["machine"]["versions"]


def test_eval_cli_refuses_a_file_name_as_its_output_folder(capsys, tmp_path, monkeypatch):
    """-o results.json made a folder results.json/ holding sgbm.json and sgbm.md."""
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    monkeypatch.setattr("rtstereo.eval.score_sample", lambda *_: pytest.fail("scored before the output was checked"))
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "results.json")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "") and not (tmp_path / "results.json").exists()
    assert err.startswith(f"rtstereo eval: error: -o {tmp_path / 'results.json'} names a file, but the evaluation")
    assert err.endswith(f"written into a folder: give the folder, such as -o {tmp_path}/\n")


def test_eval_cli_refuses_an_unwritable_output_before_scoring(capsys, tmp_path, monkeypatch):
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr("rtstereo.eval.score_sample", lambda *_: pytest.fail("scored before the output was checked"))
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "file")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")  # was: every scene scored, then the results lost
    file = tmp_path / "file"
    assert err == f"rtstereo eval: error: cannot write evaluation results to {file}: {file} is a file, not a folder\n"


def test_eval_cli_refuses_an_empty_output_instead_of_writing_to_the_current_folder(capsys, tmp_path, monkeypatch):
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", ""])
    assert stop.value.code == 2
    assert "rtstereo eval: error: argument -o/--output: an empty value" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_a_16bit_map_in_a_middlebury_folder_fails_its_scene_by_name(capsys, tmp_path):
    import cv2

    _eth3d_scene(tmp_path / "data" / "eth3d" / "a", hw=(40, 72), ndisp=32)
    left, right = _write_pair(tmp_path / "data" / "mb" / "venus", hw=(40, 72))
    left.rename(left.with_name("im2.png"))
    right.rename(right.with_name("im6.png"))
    # another tool's d x 256 map: / 8 it was scored as disparities of 128 px, without a word
    cv2.imwrite(str(tmp_path / "data" / "mb" / "venus" / "disp2.png"), np.full((40, 72), 4 * 256, np.uint16))
    code = main(["eval", "--model", "sgbm", str(tmp_path / "data"), "-q", "-o", str(tmp_path / "res")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "rtstereo eval: failed: venus (" in err and "disp2.png: a 16-bit map where 8-bit ground truth" in err
    assert "mean (1)" in out


def test_eval_cli_names_a_midd_eval3_test_split_as_scenes_without_ground_truth(capsys, tmp_path):
    """MiddEval3's testQ scenes (im0, im1, calib.txt, no disp0GT.pfm) are a known layout without ground
    truth, not 'no stereo dataset of a known layout'."""
    scene = _eth3d_scene(tmp_path / "testQ" / "Hoops", hw=(40, 72), ndisp=32)
    (scene / "disp0GT.pfm").unlink()
    code = main(["eval", "--model", "sgbm", str(tmp_path / "testQ"), "-q", "-o", str(tmp_path / "res")])
    _, err = capsys.readouterr()
    assert code == 2 and "no scene with ground truth" in err and "(Hoops)" in err, err
    assert not (tmp_path / "res").exists()


def test_a_range_over_half_the_width_says_how_much_of_the_image_cannot_be_matched(tmp_path):
    """A range that fits but leaves OpenCV most of the image unmatched (and filled) was said nowhere."""
    samples = find_samples(_eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=48))
    kept, notes = clamp_search_ranges(samples)
    assert kept[0].max_disp_hint_px == 48
    assert notes == [
        "s: searching the dataset's disparity range 48 px: OpenCV matches no pixel in the first 48 columns (67 % of "
        "the width); --max-disp gives a tighter range"
    ]
    assert clamp_search_ranges(find_samples(_eth3d_scene(tmp_path / "e2" / "s", hw=(40, 72), ndisp=32)))[1] == []
    # exactly half the width (32 of 64 columns) is not more than half: no note
    assert clamp_search_ranges(find_samples(_eth3d_scene(tmp_path / "e3" / "s", hw=(40, 64), ndisp=32)))[1] == []


def test_eval_scores_the_non_occluded_mask_apart_and_times_each_scene_after_a_warm_up(tmp_path):
    import cv2

    from rtstereo.eval import evaluate
    from rtstereo.types import DisparityResult

    for name in ("scene_m1", "scene_m2"):  # ground truth 4 px everywhere; the mask: the left half non-occluded
        folder = _eth3d_scene(tmp_path / name, hw=(40, 72), ndisp=32)
        mask = np.zeros((40, 72), np.uint8)
        mask[:, :36] = 255
        cv2.imwrite(str(folder / "mask0nocc.png"), mask)
    calls = []

    class RightOnTheLeftHalf:
        def predict(self, left, right):
            calls.append(left.shape)
            disparity = np.full(left.shape[:2], 10.0, np.float32)
            disparity[:, :36] = 4.0
            return DisparityResult(disparity, timings_ms={"inference": 2.0, "total": 7.0}, settings={"max_disp": 32})

    predictor = RightOnTheLeftHalf()
    report = evaluate(lambda s: predictor, find_samples(tmp_path), "fake")

    assert len(calls) == 3  # the first scene of a size runs once untimed, then each scene once
    (first, second) = (s.metrics for s in report.scenes)
    assert first == second
    assert first["epe"] == 3.0 and first["bad-4"] == 50.0 and first["pixels"] == 40 * 72  # 6 px off on half
    assert first["noc/epe"] == 0.0 and first["noc/bad-4"] == 0.0 and first["noc/pixels"] == 40 * 36
    assert first["time_ms"] == 7.0  # the whole call, not its inference alone


def test_results_under_a_file_name_the_file_in_the_way(tmp_path):
    """It said "cannot write evaluation results to taken/out: [Errno 20] Not a directory: 'taken/out'"."""
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        EvalReport(model="m").save(blocker / "out", "m")
    assert str(info.value) == f"cannot write evaluation results to {blocker / 'out'}: {blocker} is a file, not a folder"


# A 4x4 block scored by hand: ground truth with every kind of unknown pixel (0, inf, nan, negative), a prediction
# with a nan and a negative value; the scene is 256 px wide (a disparity of 250 px fits), its other pixels unknown.
_GT_4X4 = np.pad(
    np.array([[10, 20, 0, np.inf], [np.nan, -5, 40, 50], [60, 1, 2, 3], [250, 4, 8, 16]]),
    ((0, 0), (0, 252)),
    constant_values=np.nan,
)
_PRED_4X4 = np.pad(
    np.array([[10.5, 21.5, 5, 5], [5, 5, np.nan, 52.5], [63.5, 1.5, 5.25, 3], [254, -1, 8, 17]]), ((0, 0), (0, 252))
)


class _Fixed:
    """A predictor that answers one map, whatever the pair."""

    def __init__(self, disparity_px):
        self.disparity_px = np.asarray(disparity_px, np.float32)

    def predict(self, left, right):
        from types import SimpleNamespace

        return SimpleNamespace(disparity_px=self.disparity_px.copy(), timings_ms={"total": 1.0}, settings={})


def _scene_4x4(folder):
    from .corpus import _write_pfm

    folder.mkdir(parents=True)
    for level, name in enumerate(("im0.png", "im1.png")):  # two views (one picture twice is no scene)
        cv2.imwrite(str(folder / name), np.full((4, 256, 3), level, np.uint8))
    _write_pfm(folder / "disp0GT.pfm", _GT_4X4)
    (folder / "calib.txt").write_text("ndisp=16\n")
    return find_samples(folder)[0]


@pytest.mark.parametrize("max_gt_disp_px", [None, 192])
def test_a_4x4_scene_is_scored_as_by_hand(tmp_path, max_gt_disp_px):
    """The pixels with ground truth are those of a finite value above 0: 12 (11 below 192 px). Their errors: 0.5,
    1.5, 40 (nan predicted: an error, scored as 0 in EPE), 2.5, 3.5, 0.5, 3.25, 0, 4 (at 250 px), 5 (-1 predicted),
    0, 1."""
    sample = _scene_4x4(tmp_path / "s")
    scene = score_sample(lambda s: _Fixed(_PRED_4X4), sample, max_gt_disp_px=max_gt_disp_px)
    errors = [0.5, 1.5, 40, 2.5, 3.5, 0.5, 3.25, 0, 4, 5, 0, 1]
    # D1 (> 3 px and > 5 % of the ground truth): 40 (nan), 3.5 at 60 px (3 px is its 5 %), 3.25 at 2 px, 5 at 4 px
    d1 = [False, False, True, False, True, False, True, False, False, True, False, False]
    if max_gt_disp_px is not None:  # the pixel of 250 px left out
        del errors[8], d1[8]
    n = len(errors)
    expected = {
        "epe": sum(errors) / n,
        "bad-0.5": 100 * sum(e > 0.5 for e in errors) / n,
        "bad-1": 100 * sum(e > 1 for e in errors) / n,
        "bad-2": 100 * sum(e > 2 for e in errors) / n,
        "bad-3": 100 * sum(e > 3 for e in errors) / n,
        "bad-4": 100 * sum(e > 4 for e in errors) / n,
        "d1": 100 * sum(d1) / n,
        "density": 100 * (n - 1) / n,
        "pixels": n,
        "time_ms": 1.0,
    }
    assert scene.metrics == pytest.approx(expected, rel=1e-6)
    # and in figures: 40 and 5 are the errors over 4 px (4 is none), the 250-px pixel's 4 px is cut from the EPE
    assert n == (12 if max_gt_disp_px is None else 11) and scene.metrics["bad-4"] == pytest.approx(200 / n)
    assert scene.metrics["epe"] == pytest.approx((61.75 if max_gt_disp_px is None else 57.75) / n)


def test_ground_truth_mostly_wider_than_the_image_fails_its_scene_rather_than_be_scored_as_it_is(tmp_path):
    """A map of disparity x 256 (KITTI's 16-bit PNG values) saved as .npy was scored as it was: EPE 1020 px."""
    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    (folder / "disp0GT.pfm").unlink()
    np.save(folder / "disp0GT.npy", np.full((40, 72), 4 * 256, np.uint16))
    with pytest.raises(InputError) as info:
        score_sample(lambda s: None, find_samples(folder)[0])
    assert str(info.value) == (
        f"scene s: ground truth {folder / 'disp0GT.npy'} has half its values at 72 px or more, the image's width, "
        "which no disparity reaches (median 1024 px): disparity x 256, KITTI's 16-bit convention, saved as it is? "
        "Ground truth is in pixels"
    )


def test_a_scene_whose_ground_truth_is_all_over_the_cut_fails_by_name(tmp_path):
    sample = _scene_4x4(tmp_path / "s")
    with pytest.raises(InputError) as info:
        score_sample(lambda s: _Fixed(_PRED_4X4), sample, max_gt_disp_px=0.5)
    assert str(info.value) == (
        f"scene s: every valid pixel of ground truth {sample.gt_path} is 0.5 px or more, left out as the cut of 0.5 px "
        "asks: nothing to score against"
    )


@pytest.mark.parametrize(
    ("value", "said"),
    [("192", "str '192'"), (True, "bool True"), (0, "0"), (-1, "-1"), (math.nan, "nan"), (math.inf, "inf")],
)
def test_evaluate_refuses_a_cut_the_command_line_refuses_once_before_any_scene(tmp_path, value, said):
    """A string failed with numpy's UFuncTypeError, True cut at 1 px, and 0, -1 or nan failed every scene in turn."""
    sample = _scene_4x4(tmp_path / "s")

    def never(sample):
        raise AssertionError("no scene is run")

    expected = f"max_gt_disp_px: expected a number of pixels above 0 (None: every pixel counts), got {said}"
    with pytest.raises(InputError) as info:
        evaluate(never, [sample], "m", on_error=lambda s, e: True, max_gt_disp_px=value)
    assert str(info.value) == expected
    with pytest.raises(InputError) as info:
        score_sample(never, sample, max_gt_disp_px=value)
    assert str(info.value) == expected


def test_evaluate_refuses_a_predictor_in_place_of_its_function_and_a_path_in_place_of_samples(tmp_path):
    """evaluate(predictor, samples, ...) failed with "'Predictor' object is not callable", and
    evaluate(lambda s: predictor, "data/kitti", ...) with "'str' object has no attribute 'name'"."""
    sample = _scene_4x4(tmp_path / "s")
    fixed = _Fixed(_PRED_4X4)
    with pytest.raises(InputError, match=r"^predictor_for: expected a function .* sample: predictor, got _Fixed$"):
        evaluate(fixed, [sample], "m")
    said = f"samples: expected the scenes of a dataset, got the path '{tmp_path}': give "
    with pytest.raises(InputError, match="^" + re.escape(said + f"rtstereo.datasets.find_samples('{tmp_path}')")):
        evaluate(lambda s: fixed, tmp_path, "m")
    with pytest.raises(InputError, match=r"^samples: expected rtstereo\.datasets\.Sample items .* got str$"):
        evaluate(lambda s: fixed, [sample, "s"], "m", on_error=lambda s, e: True)
    assert [s.name for s in evaluate(lambda s: fixed, (x for x in [sample]), "m").scenes] == ["s"]


def test_evaluate_takes_a_numpy_cut_and_records_it_as_a_number_of_the_json(tmp_path):
    report = evaluate(lambda s: _Fixed(_PRED_4X4), [_scene_4x4(tmp_path / "s")], "m", max_gt_disp_px=np.float32(192))
    assert report.scenes[0].metrics["pixels"] == 11
    json_path, _ = report.save(tmp_path / "res", "m")
    assert json.loads(Path(json_path).read_text())["max_gt_disp_px"] == 192


def test_eval_cli_max_gt_disp_leaves_out_ground_truth_over_it_and_says_so_in_the_name_table_and_json(capsys, tmp_path):
    from .corpus import _write_pfm

    folder = _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 256), ndisp=32)
    gt = np.full((40, 256), 4.0)
    gt[:, 200:] = 200.0  # SceneFlow's usual figures leave out 192 px and more
    _write_pfm(folder / "disp0GT.pfm", gt)
    argv = ["eval", "--model", "sgbm", str(folder), "-q", "-o", str(tmp_path / "res")]
    assert main([*argv, "--max-gt-disp", "192"]) == 0
    out = capsys.readouterr().out
    assert "scored: ground truth below 192 px only (192 px and more left out)" in out
    cut = json.loads((tmp_path / "res" / "sgbm_max_gt_disp=192.json").read_text())
    assert cut["max_gt_disp_px"] == 192 and cut["scenes"][0]["metrics"]["pixels"] == 40 * 200
    assert main(argv) == 0  # every pixel, in results of their own name
    capsys.readouterr()
    every = json.loads((tmp_path / "res" / "sgbm.json").read_text())
    assert every["max_gt_disp_px"] is None and every["scenes"][0]["metrics"]["pixels"] == 40 * 256


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "lots"])
def test_eval_cli_refuses_a_cut_that_is_no_number_of_pixels_above_0(capsys, tmp_path, value):
    _eth3d_scene(tmp_path / "eth3d" / "s", hw=(40, 72), ndisp=32)
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "--max-gt-disp", value])
    assert info.value.code == 2
    assert f"argument --max-gt-disp: expected a number of pixels above 0, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "value, said", [("1e999", "1e999 is too large"), ("9" * 500, "999999999... (500 digits) is too large")]
)
def test_eval_cli_says_a_cut_past_a_floats_range_is_too_large_and_shortens_it(capsys, value, said):
    """As --max-disp says them (1aad9bb1): 1e999 was 'expected a number of pixels above 0', 500 digits echoed whole."""
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "sgbm", "x", "--max-gt-disp", value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"argument --max-gt-disp: {said} (see" in err and len(err) < 300, err


def test_a_scene_no_size_of_fits_the_memory_budget_fails_before_it_is_decoded(capsys, tmp_path, monkeypatch):
    """A scene too large for the budget had its images and ground truth decoded (gigabytes for 20000x20000), to be
    refused by the model: its left image's header says its size first, as predict's batches read it."""
    from rtstereo.datasets import Sample

    def decoded(*args, **kwargs):
        raise AssertionError("the scene was decoded")

    _eth3d_scene(tmp_path / "eth3d" / "a", hw=(40, 72), ndisp=32)
    monkeypatch.setattr(Sample, "load", decoded)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    code = main(["eval", "--model", "sgbm", str(tmp_path / "eth3d"), "-q", "-o", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "rtstereo eval: failed: a (" in err and "sgbm on a 40x72 (HxW) pair needs about" in err, err
    assert "more than the 1 KB budget (RTSTEREO_MEMORY_BUDGET=1K)" in err


def test_evaluate_refuses_a_predictor_of_fit_crop_once_before_any_scene(tmp_path):
    """Each scene failed in turn: "the prediction is 40x60 but the ground truth is 40x96"."""
    from tests.runtime.test_fit_crop import _load, matcher_onnx

    for name in ("scene_c1", "scene_c2"):
        _eth3d_scene(tmp_path / name, hw=(40, 96), ndisp=32)
    model = _load(matcher_onnx(tmp_path / "model.onnx"), fit="crop")
    failures = []
    with pytest.raises(InputError, match=r"^eval scores whole pairs .* fit='crop' \(--fit crop\) predicts only its"):
        evaluate(lambda s: model, find_samples(tmp_path), "m", on_error=lambda s, e: failures.append(e) or True)
    assert failures == []
    model.fit = "resize"
    with pytest.warns(UserWarning):  # the pair stretched to the file's size
        report = evaluate(lambda s: model, find_samples(tmp_path), "m", on_error=lambda s, e: True)
    assert [s.size_hw for s in report.scenes] == [(40, 96), (40, 96)] and report.failures == []
