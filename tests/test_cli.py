"""The console script: predict / eval / compare / models, and one clear line + exit 2 on bad input."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import rtstereo.models as rtstereo_models
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.io import read_disparity, write_pfm
from rtstereo.models import PACKAGED_NETWORK

from .conftest import make_textured_pair, run_cli, write_middlebury_scene

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def pair_files(tmp_path):
    left, right = make_textured_pair(48, 96, disparity_px=5)
    lp, rp = tmp_path / "l.png", tmp_path / "r.png"
    cv2.imwrite(str(lp), left[:, :, ::-1])
    cv2.imwrite(str(rp), right[:, :, ::-1])
    return lp, rp


def test_predict_to_folder_writes_default_set(capsys, tmp_path, pair_files):
    lp, rp = pair_files
    code, out, err = run_cli(capsys, "predict", lp, rp, "-o", tmp_path / "out", "--model", "sgbm", "--max-disp", 16)
    assert code == 0, err
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [".l.made-with.json", "l.json", "l.pfm", "l.png", "l_color.png"]  # the record: as a batch's
    sidecar = json.loads((tmp_path / "out" / "l.json").read_text())
    assert sidecar["model"] == "sgbm" and sidecar["input_size_hw"] == [48, 96]
    assert set(sidecar["timings_ms"]) >= {"inference", "total"}
    png, pfm = read_disparity(tmp_path / "out" / "l.png"), read_disparity(tmp_path / "out" / "l.pfm")
    np.testing.assert_allclose(png, pfm, atol=1 / 512, equal_nan=True)


def test_a_single_output_file_keeps_the_record_of_its_calibration_beside_it(capsys, tmp_path, pair_files):
    """-o x.pfm --calib calib.txt kept no record of the calibration (a folder's pairs record theirs)."""
    lp, rp = pair_files
    calib = tmp_path / "calib.txt"
    calib.write_text("cam0=[100 0 47.5; 0 100 23.5; 0 0 1]\ncam1=[100 0 47.5; 0 100 23.5; 0 0 1]\nbaseline=120\n")
    args = ("predict", lp, rp, "--model", "sgbm", "--max-disp", 16, "-q", "-o", tmp_path / "out" / "x.pfm")
    code, _, err = run_cli(capsys, *args, "--calib", calib)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".x.pfm.made-with.json", "x.pfm"]
    record = json.loads((tmp_path / "out" / ".x.pfm.made-with.json").read_text())
    assert record["calibration"]["baseline_m"] == pytest.approx(0.12) and record["calibration"]["fx_px"] == 100
    assert record["model"] == "sgbm" and record["settings"]["max_disp"] == 16
    code, _, err = run_cli(capsys, *args)  # again without --calib: the record says so, the old one is not kept
    assert code == 0, err
    assert json.loads((tmp_path / "out" / ".x.pfm.made-with.json").read_text())["calibration"] is None


def test_the_colour_preview_of_max_disp_tops_at_the_range_given_as_a_videos_does(capsys, tmp_path, pair_files):
    """predict's _color.png topped at each map's 99th percentile whatever --max-disp said, video's at --max-disp (the
    range SGBM searches, 32 for 20): one rule now; the maps themselves are not clipped."""
    from rtstereo.batch import BatchJob
    from rtstereo.types import DisparityResult

    lp, rp = pair_files
    code, _, err = run_cli(capsys, "predict", lp, rp, "--model", "sgbm", "--max-disp", 20, "-q", "-o", tmp_path / "a")
    assert code == 0, err
    assert json.loads((tmp_path / "a" / "l.json").read_text())["color_preview"]["range_px"] == [0.0, 32.0]
    # a network's map beyond the range given (the hybrid reaches 192 px): the preview clips, the PFM keeps 40 px
    disparity = np.tile(np.linspace(1, 40, 64, dtype=np.float32), (8, 1))
    result = DisparityResult(disparity_px=disparity, model="x")
    BatchJob(output=tmp_path / "c", formats=("pfm", "color", "json"), colour_max_disp_px=20).write(result, "p")
    colour = cv2.imread(str(tmp_path / "c" / "p_color.png"))
    assert (colour[:, -1] == colour[:, 40]).all() and not (colour[:, 20] == colour[:, 40]).all()  # 40, 26, 13 px
    assert read_disparity(tmp_path / "c" / "p.pfm").max() == pytest.approx(40.0)
    assert json.loads((tmp_path / "c" / "p.json").read_text())["color_preview"]["range_px"] == [0.0, 20.0]
    BatchJob(output=tmp_path / "d", formats=("color", "json")).write(result, "p")  # none given: its own percentile
    assert json.loads((tmp_path / "d" / "p.json").read_text())["color_preview"]["range_px"][1] == 40.0
    for wrong in (0, "20", float("nan"), True):
        with pytest.raises(InputError, match="colour_max_disp_px must be > 0 pixels"):
            BatchJob(colour_max_disp_px=wrong)


def test_the_colour_preview_tops_at_a_range_given_with_set_as_at_one_given_with_max_disp(capsys, tmp_path, pair_files):
    """--set max_disp=20 (the same setting, as every verb takes it) left the preview at the map's own percentile."""
    lp, rp = pair_files
    for folder, option in (("given", ["--max-disp", "20"]), ("set", ["--set", "max_disp=20"])):
        code, _, err = run_cli(capsys, "predict", lp, rp, "--model", "sgbm", *option, "-q", "-o", tmp_path / folder)
        assert code == 0, err
        assert json.loads((tmp_path / folder / "l.json").read_text())["color_preview"]["range_px"] == [0.0, 32.0]
    assert (tmp_path / "given" / "l_color.png").read_bytes() == (tmp_path / "set" / "l_color.png").read_bytes()


def test_a_range_given_past_the_images_width_is_said_and_the_preview_tops_at_the_width(capsys, tmp_path, pair_files):
    """The default hybrid at --max-disp 100000 on a 96-px pair ran without a word, its preview coloured 0-100000 px."""
    lp, rp = pair_files
    for side, image in (("L", lp), ("R", rp)):  # a batch, whose pairs' warnings come as lines
        (tmp_path / side).mkdir()
        image.rename(tmp_path / side / "l.png")
    lp, rp = tmp_path / "L", tmp_path / "R"
    code, _, err = run_cli(capsys, "predict", lp, rp, "--max-disp", 100000, "-o", tmp_path / "a")
    assert code == 0, err
    said = (
        "warning: l: --max-disp 100000 (max_disp= in Python) is beyond the image's width, 96 px, which every "
        "disparity stays below: the colour preview spans 0-96 px; give a --max-disp near the scene's largest disparity"
    )
    assert said in err, err
    assert json.loads((tmp_path / "a" / "l.json").read_text())["color_preview"]["range_px"] == [0.0, 96.0]
    code, _, err = run_cli(capsys, "predict", lp, rp, "--max-disp", 90, "-o", tmp_path / "b")  # within: no word
    assert code == 0 and "beyond the image's width" not in err, err
    assert json.loads((tmp_path / "b" / "l.json").read_text())["color_preview"]["range_px"] == [0.0, 90.0]


def test_threads_reach_onnx_runtime_and_opencv(capsys, tmp_path, pair_files, monkeypatch):
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)  # restored after the test, as OpenCV's count below
    before = cv2.getNumThreads()
    try:
        lp, rp = pair_files
        code, out, err = run_cli(capsys, "predict", lp, rp, "-o", tmp_path / "out", "--threads", "1")
        assert code == 0, err
        assert os.environ["RTSTEREO_THREADS"] == "1" and cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_rtstereo_threads_is_the_default_of_threads_for_opencv_too(capsys, tmp_path, pair_files, monkeypatch):
    """--help: --threads (default: $RTSTEREO_THREADS) sets OpenCV's threads; the variable reached ONNX Runtime alone,
    and SGBM ran on every core beside a job's RTSTEREO_THREADS=1."""
    monkeypatch.setenv("RTSTEREO_THREADS", "1")
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        lp, rp = pair_files
        code, _, err = run_cli(capsys, "predict", lp, rp, "-o", tmp_path / "out", "--model", "sgbm", "--max-disp", 16)
        assert code == 0, err
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_threads_given_twice_must_agree(capsys, tmp_path, pair_files, monkeypatch):
    """--threads 2 --set threads=1 gave ONNX Runtime 1 thread and OpenCV 2, without a word."""
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)
    before = cv2.getNumThreads()
    try:
        lp, rp = pair_files
        argv = ("predict", lp, rp, "-o", tmp_path / "out", "--model", "rtnet-v5", "--threads", "2")
        code, _, err = run_cli(capsys, *argv, "--set", "threads=1")
        assert code == 2
        assert err == "rtstereo predict: error: --threads 2 and --set threads=1 disagree: give one of them\n"
        code, _, err = run_cli(capsys, *argv, "--set", "threads=2")
        assert code == 0, err
        assert json.loads((tmp_path / "out" / "l.json").read_text())["settings"]["threads"] == 2
    finally:
        cv2.setNumThreads(before)


def test_one_pair_that_fails_still_says_what_reading_it_warned_of(capsys, tmp_path, monkeypatch):
    """12-bit values in 16-bit files turn black at 8 bits: the pair failed as 'the same picture', and the warning
    that says why (the files' bit depth) was dropped with the error."""
    from rtstereo.io import images

    monkeypatch.setattr(images.LOW_BIT_DEPTH_SAID, "said", False)
    left, right = make_textured_pair(16, 48, disparity_px=3)
    for path, image in ((tmp_path / "l.png", left), (tmp_path / "r.png", right)):
        cv2.imwrite(str(path), image[:, :, 0].astype(np.uint16))  # values below 257: 0 once divided by 257
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run_cli(capsys, "predict", tmp_path / "l.png", tmp_path / "r.png", "-o", tmp_path / "d.pfm")
    assert code == 2 and "the same picture" in err, err
    said = [str(w.message) for w in caught]
    assert any(m.startswith("l: ") and "is a 16-bit image whose values stay at or below" in m for m in said), said


@pytest.mark.parametrize("suffix", [".pfm", ".png", ".npy"])
def test_predict_to_single_file(capsys, tmp_path, pair_files, suffix):
    lp, rp = pair_files
    target = tmp_path / f"d{suffix}"
    code, out, err = run_cli(capsys, "predict", lp, rp, "-o", target, "--model", "sgbm", "--max-disp", 16)
    assert code == 0, err
    assert np.nanmedian(read_disparity(target)[10:-10, 30:-10]) == pytest.approx(5, abs=0.2)
    assert "\n1 pair, " in out and "(s)" not in out, out  # was "1 pair(s), ... ms per pair"


def test_predict_folders_and_globs_match_by_sorted_name(capsys, tmp_path):
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i in range(3):
        left, right = make_textured_pair(32, 64, 3, seed=i)
        cv2.imwrite(str(tmp_path / "L" / f"{i}.png"), left)
        cv2.imwrite(str(tmp_path / "R" / f"{i}.png"), right)
    code, _, err = run_cli(
        capsys,
        "predict",
        tmp_path / "L",
        tmp_path / "R",
        "-o",
        tmp_path / "o1",
        "--model",
        "sgbm",
        "--max-disp",
        16,
        "--format",
        "png16",
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o1").glob("[!.]*")) == ["0.png", "1.png", "2.png"]
    code, _, err = run_cli(
        capsys,
        "predict",
        f"{tmp_path}/L/*.png",
        f"{tmp_path}/R/*.png",
        "-o",
        tmp_path / "o2",
        "--model",
        "sgbm",
        "--max-disp",
        16,
        "--format",
        "npy,json",
    )
    assert code == 0, err
    assert len(list((tmp_path / "o2").glob("*.npy"))) == 3


def test_predict_format_named_twice_is_written_once_and_a_format_list_naming_none_is_refused(
    capsys, tmp_path, pair_files
):
    lp, rp = pair_files
    args = ("predict", lp, rp, "--model", "sgbm", "--max-disp", 16, "-o")
    code, _, err = run_cli(capsys, *args, tmp_path / "o1", "--format", "pfm,color,pfm")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == [".l.made-with.json", "l.pfm", "l_color.png"]
    code, _, err = run_cli(capsys, *args, tmp_path / "o2", "--format", ",")
    assert code == 2 and "--format ',' names no output" in err
    assert not (tmp_path / "o2").exists()
    with pytest.raises(SystemExit) as stop:  # it wrote the default set; now an empty value is a usage error
        run_cli(capsys, *args, tmp_path / "o2", "--format", "")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "rtstereo predict: error: argument --format: an empty value" in err
    code, _, err = run_cli(capsys, *args, tmp_path / "o2", "--format", "PFM,png")
    assert code == 2 and "unknown output format png (known: " in err and "; did you mean png16?" in err
    assert not (tmp_path / "o2").exists()
    # names in any case, as file suffixes are (PFM was refused with "did you mean pfm?")
    code, _, err = run_cli(capsys, *args, tmp_path / "o3", "--format", "PFM, Color")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o3").iterdir()) == [".l.made-with.json", "l.pfm", "l_color.png"]
    code, _, err = run_cli(capsys, *args, tmp_path / "one.pfm", "--format", "PFM")
    assert code == 0, err
    assert (tmp_path / "one.pfm").is_file()


def test_predict_writes_to_the_folder_a_file_url_names(capsys, tmp_path, pair_files, monkeypatch):
    """-o file:///data/out/ made a folder named 'file:' in the current one; inputs take file:// URLs as paths."""
    lp, rp = pair_files
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "my out"
    code, _, err = run_cli(capsys, "predict", lp, rp, "--model", "sgbm", "--max-disp", 16, "-o", out.as_uri() + "/")
    assert code == 0, err
    assert not (tmp_path / "file:").exists() and sorted(p.name for p in out.iterdir()) == [
        ".l.made-with.json",
        "l.json",
        "l.pfm",
        "l.png",
        "l_color.png",
    ]
    with pytest.raises(SystemExit) as stop:
        run_cli(capsys, "predict", lp, rp, "--model", "sgbm", "-o", "https://example.org/out/")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert (
        "error: argument -o/--output: https://example.org/out/: outputs are written to local files, not to URLs" in err
    )
    assert not list(tmp_path.glob("http*"))


# Every output option of every verb, as argv with {url} where its value goes, and the option's dest.
OUTPUT_OPTIONS = [
    (["predict", "L", "R", "-o", "{url}"], "output"),
    (["predict", "L", "R", "-o", "o/", "--summary", "{url}"], "summary"),
    (["video", "l.mp4", "r.mp4", "--output-prefix", "{url}"], "output_prefix"),
    (["video", "l.mp4", "r.mp4", "-o", "{url}"], "output"),
    (["video", "l.mp4", "r.mp4", "--summary", "{url}"], "summary"),
    (["live", "--camera", "uvc:0", "-o", "{url}"], "output"),
    (["eval", "data", "-o", "{url}"], "output"),
    (["bench", "sgbm", "-o", "{url}"], "output"),
    (["calibrate", "--left", "L", "--right", "R", "--board", "chess:9x6:0.025", "-o", "{url}"], "output"),
    (["synth", "4", "-o", "{url}"], "output"),
    (["export", "m", "--size", "32x64", "-o", "{url}"], "output"),
    (["adapt", "L", "R", "-o", "{url}"], "output"),
    (["train", "-o", "{url}"], "out_dir"),
    (["train", "--out-dir", "{url}"], "out_dir"),
    (["video", "l.mp4", "r.mp4", "--view3d-save", "{url}"], "view3d_save"),
    (["live", "--camera", "uvc:0", "--view3d-save", "{url}"], "view3d_save"),
    (["video", "l.mp4", "r.mp4", "--adapt", "--adapt-save", "{url}"], "adapt_save"),
    (["live", "--camera", "uvc:0", "--adapt", "--adapt-save", "{url}"], "adapt_save"),
]


@pytest.mark.parametrize(("argv", "dest"), OUTPUT_OPTIONS)
def test_every_output_option_takes_a_file_url_as_its_path(tmp_path, argv, dest):
    from rtstereo.cli import build_parser

    path = tmp_path / "a b" / "out"
    args = build_parser().parse_args([a.format(url=path.as_uri()) for a in argv])
    assert getattr(args, dest) == str(path)


@pytest.mark.parametrize("argv", [argv for argv, _ in OUTPUT_OPTIONS])
def test_no_output_option_takes_a_dash_for_standard_output(capsys, argv):
    """predict -o - wrote a folder named '-' (export -o - a file): other tools read '-' as standard output."""
    from rtstereo.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([a.format(url="-") for a in argv])
    assert exit_info.value.code == 2
    assert "-: outputs are written to files, not to standard output: give a path (./- " in capsys.readouterr().err


@pytest.mark.parametrize("argv", [argv for argv, _ in OUTPUT_OPTIONS])
@pytest.mark.parametrize("name", [".png", "o/.PFM", ".mp4", ".onnx"])
def test_no_output_option_takes_a_suffix_without_a_name(capsys, argv, name):
    """predict -o .png made a hidden folder named .png, where a file was meant."""
    from rtstereo.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([a.format(url=name) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    base = name.rsplit("/", 1)[-1]
    example = name[: -len(base)] + "out" + base
    said = f"{name}: a suffix without a name, which would write a hidden file or folder named {base}: give the name "
    assert f"{said}before it (e.g. {example}), or end the path with '/' for a folder of that name" in err, err


def test_an_output_folder_named_as_a_suffix_is_taken_with_a_slash(tmp_path):
    from rtstereo.cli import build_parser

    assert build_parser().parse_args(["predict", "L", "R", "-o", ".png/"]).output == ".png/"
    assert build_parser().parse_args(["predict", "L", "R", "-o", "x.png"]).output == "x.png"


def test_predict_file_url(capsys, tmp_path, pair_files):
    lp, rp = pair_files
    code, out, err = run_cli(capsys, "predict", lp.as_uri(), rp.as_uri(), "--model", "sgbm", "--max-disp", 16)
    assert code == 0, err
    assert "nothing written" in out


def test_predict_example_pair_is_accurate(capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        "predict",
        EXAMPLES / "left.png",
        EXAMPLES / "right.png",
        "-o",
        tmp_path / "d.pfm",
        "--model",
        "sgbm",
        "--max-disp",
        48,
    )
    assert code == 0, err
    gt = read_disparity(EXAMPLES / "disparity.pfm")
    d = read_disparity(tmp_path / "d.pfm")
    assert np.mean(np.abs(d - gt)[:, 48:] > 2) < 0.1


@pytest.mark.parametrize("model", ["default", "sgbm"])
def test_predict_on_the_command_line_and_from_python_give_the_same_map(capsys, tmp_path, model):
    import rtstereo
    from rtstereo.io import read_image

    code, _, err = run_cli(
        capsys, "predict", EXAMPLES / "left.png", EXAMPLES / "right.png", "-m", model, "-o", tmp_path, "--format", "pfm"
    )
    assert code == 0, err
    result = rtstereo.load(model).predict(read_image(EXAMPLES / "left.png"), read_image(EXAMPLES / "right.png"))
    np.testing.assert_array_equal(read_disparity(tmp_path / "left.pfm"), result.disparity_px)


def test_predict_example_pair_with_default_is_the_hybrid(capsys, tmp_path):
    """The quick start's figures (README): `default` is the hybrid, 0.49 px mean error and 2.8 % of the
    pixels off by more than 3 px (SGBM alone over 192 px: 4.70 px, as it guesses the left 192 columns by
    hole filling; the packaged network alone: 1.22 px)."""
    code, _, err = run_cli(capsys, "predict", EXAMPLES / "left.png", EXAMPLES / "right.png", "-o", tmp_path)
    assert code == 0, err
    sidecar = json.loads((tmp_path / "left.json").read_text())
    assert sidecar["model"] == "hybrid" and sidecar["settings"]["network"] == "rtnet-guided"
    error = np.abs(read_disparity(tmp_path / "left.pfm") - read_disparity(EXAMPLES / "disparity.pfm"))
    assert np.nanmean(error) < 0.7
    assert np.mean(~(error <= 3)) < 0.05


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "missing_l.png", "missing_r.png"], "left image not found"),
        (["predict", "no_folder/", "{right}"], "left folder not found: no_folder/"),  # was "left image not found"
        (["predict", "{left}"], "expected RIGHT after LEFT "),  # it said "expected LEFT RIGHT" of a LEFT it had
        (["predict", "-", "{right}"], "left image -: images are read from files, not from standard input"),
        (["predict", "{corrupt}", "{right}"], "cannot read"),
        (["predict", "{left}", "{small}"], "differ in size"),
        (["predict", "{left}", "{right}", "--model", "sgmb"], "Did you mean: sgbm"),
        (["predict", "{left}", "{right}", "--model", "sgbm", "--set", "nonsense"], "KEY=VALUE"),
        (["predict", "{left}", "{right}", "--model", "sgbm", "--max-disp", "16", "-o", "{unwritable}/d.pfm"], "cannot"),
        (
            [
                "predict",
                "{left}",
                "{right}",
                "--model",
                "sgbm",
                "--max-disp",
                "16",
                "-o",
                "{tmp}/x.jpg.d/",
                "--format",
                "png16,nope",
            ],
            "unknown output format",
        ),
        (["predict", "{left}", "{right}", "--model", "gwcnet-gc"], "needs its weights"),
        (["eval", "--model", "sgbm", "{tmp}"], "no stereo dataset of a known layout"),
        (["eval", "--model", "sgbm", "{tmp}/absent"], "dataset folder not found"),
        (["compare", "{left}", "{tmp}/absent.png"], "file not found"),
        (["models", "gwcnet"], "Did you mean"),
        (["predict", "{left}", "{right}", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["predict", "{left}", "{right}", "--threads", "99999"], "--threads 99999 is more than this machine can use"),
        (["predict", "{left}", "{right}", "--model", "sgbm", "--set", "refine_edge=1"], "did you mean refine_edges?"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, pair_files, argv, message):
    lp, rp = pair_files
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((20, 20, 3), np.uint8))
    unwritable = tmp_path / "file_not_dir"
    unwritable.write_text("x")
    values = {"left": lp, "right": rp, "corrupt": corrupt, "small": small, "tmp": tmp_path, "unwritable": unwritable}
    code, out, err = run_cli(capsys, *[a.format(**values) for a in argv])
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["predict", "l.png", "r.png", "--max-dips", "64"],
            "rtstereo predict: error: unrecognized arguments: --max-dips 64; did you mean --max-disp or --max-depth? "
            "(see `rtstereo predict --help`)",
        ),
        (["eval", "data", "--modle=sgbm"], "rtstereo eval: error: unrecognized arguments: --modle=sgbm; did you mean"),
        # no far-fetched suggestion (it offered --precision or --iters)
        (
            ["predict", "--version"],
            "rtstereo predict: error: unrecognized arguments: --version (see `rtstereo predict --help`)",
        ),
        (
            ["synth", "1", "-o", "s", "-x"],
            "rtstereo synth: error: unrecognized arguments: -x (see `rtstereo synth --help`)",
        ),
        (
            ["predcit", "l.png", "r.png"],
            "rtstereo: error: argument VERB: invalid choice: 'predcit' (choose from 'predict'",
        ),
        (["predcit", "l.png", "r.png"], "; did you mean predict? (see `rtstereo --help`)"),
        # providers have no option: --set providers=... and --device are the way (it said "unrecognized" alone)
        (
            ["predict", "l.png", "r.png", "--provider", "cuda"],
            "rtstereo predict: error: unrecognized arguments: --provider cuda; ONNX Runtime's providers are a setting, "
            "--set providers=tensorrt,cuda,cpu (tried in that order), and --device cuda tries TensorRT, then CUDA "
            "(see `rtstereo predict --help`)",
        ),
        (["video", "a.mp4", "b.mp4", "--providers=cuda"], "--providers=cuda; ONNX Runtime's providers are a setting"),
        # bench sweeps --set lists, a row per value: "tried in that order" was not what it does with one
        (
            ["bench", "rtnet-v5", "--provider", "cuda"],
            "--provider cuda; ONNX Runtime's providers are a setting, swept as the others: --device cuda --set "
            "providers=tensorrt,cuda,cpu times each on its own row (without --set providers, --device cuda tries "
            "TensorRT, then CUDA) (see `rtstereo bench --help`)",
        ),
        # RT-Stereo's onnx_export.py options (the GwcNet seed): it said "unrecognized arguments" alone
        (
            ["export", "gwcnet-gc", "--size", "480x672", "-o", "m.onnx", "--width", "672", "--disparity=192"],
            "rtstereo export: error: unrecognized arguments: --width 672 --disparity=192; export takes the input size "
            "as --size HEIGHTxWIDTH (--size 480x672 for --width 672 --height 480) and the disparity levels as "
            "--max-disp (--disparity 192: --max-disp 192) (see `rtstereo export --help`)",
        ),
        # train's --data DIR is eval's DIR: it said "unrecognized arguments: --data" alone
        (
            ["eval", "--model", "sgbm", "--data", "synth"],
            "rtstereo eval: error: unrecognized arguments: --data; eval takes the dataset folders themselves, without "
            "an option: rtstereo eval --model MODEL DIR [DIR ...] (see `rtstereo eval --help`)",
        ),
        # a batch resumes by being run again: --resume, as other tools spell it, said "unrecognized arguments" alone
        (
            ["predict", "L/", "R/", "-o", "out", "--resume"],
            "rtstereo predict: error: unrecognized arguments: --resume; predict resumes without an option: the same "
            "command run again skips the pairs whose outputs are all there (--overwrite redoes them) (see `rtstereo "
            "predict --help`)",
        ),
        # a verb that runs no model, or trains in PyTorch, is not sent to --set providers
        (
            ["compare", "a.pfm", "b.pfm", "--providers", "cuda"],
            "rtstereo compare: error: unrecognized arguments: --providers cuda (see `rtstereo compare --help`)",
        ),
        (
            ["train", "-o", "run", "--provider", "cuda"],
            "rtstereo train: error: unrecognized arguments: --provider cuda (see `rtstereo train --help`)",
        ),
    ],
)
def test_mistyped_verb_or_option_is_one_line_that_names_the_verb_and_the_close_matches(capsys, argv, message):
    """An unknown option said "rtstereo: error: unrecognized arguments" without the verb or a suggestion."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1, err


def test_verbs_run_on_opencv_4_8_to_4_12_whose_log_level_is_set_on_cv2_itself(capsys, monkeypatch):
    """pyproject.toml allows OpenCV 4.10 (it allowed 4.8); cv2.utils.logging came with 4.13, and every verb stopped
    with a traceback (AttributeError: module 'cv2.utils' has no attribute 'logging') before it."""
    import cv2

    levels = [3]  # OpenCV's default, LOG_LEVEL_WARNING
    monkeypatch.delattr(cv2.utils, "logging", raising=False)
    monkeypatch.setattr(cv2, "getLogLevel", lambda: levels[-1], raising=False)
    monkeypatch.setattr(cv2, "setLogLevel", levels.append, raising=False)
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and "sgbm" in out, err
    assert levels == [3, 2, 3], "errors only (LOG_LEVEL_ERROR) while the verb runs, then the level it had"


def test_no_verb_is_a_usage_error_of_one_line_on_stderr(capsys):
    """`rtstereo` alone printed the whole --help on stdout (which carries results only) and exited 2."""
    with pytest.raises(SystemExit) as stop:
        main([])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and captured.out == ""
    assert captured.err == (
        "rtstereo: error: expected a verb: predict, video, live, eval, compare, models, export, bench, calibrate, "
        "synth, train, adapt (see `rtstereo --help`)\n"
    )


@pytest.mark.parametrize(
    "argv, name",
    [
        (["predict", "l.png", "r.png", "-o", ""], "-o/--output"),
        (["eval", "data", "-o", ""], "-o/--output"),
        (["bench", "sgbm", "--output="], "-o/--output"),
        (["video", "v.mp4", "--sbs", "-o", ""], "-o/--output"),
        (["export", "anynet", "--size", "64x64", "-o", ""], "-o/--output"),
        (["synth", "1", "-o", ""], "-o/--output"),
        (["calibrate", "--left", "l", "--right", "r", "--board", "chessboard:9x6:0.025", "-o", ""], "-o/--output"),
        (["adapt", "l", "r", "-o", ""], "-o/--output"),
        (["train", "--out-dir", ""], "--out-dir/-o"),
        (["eval", ""], "PATH"),  # it scored the current folder
        (["eval", "data", "", "-o", "out"], "PATH"),
        (["predict", "", "r.png", "-o", "out/"], "LEFT"),  # as the usage line names it
        (["predict", "l.png", "r.png", "--model", "", "-o", "out/"], "--model/-m"),  # it ran default
        (["predict", "l.png", "r.png", "--calib", "", "-o", "out/"], "--calib"),  # it was no calibration
        (["compare", "", "b.pfm"], "A"),
        (["models", ""], "name"),  # it listed every model
        (["models", "--model", ""], "--model/-m"),
        (["export", "anynet", "--size", "64x64", "-o", "a.onnx", "--pair", "l.png", ""], "--pair"),
    ],
)
def test_an_empty_argument_is_a_usage_error(capsys, monkeypatch, tmp_path, argv, name):
    """ "$UNSET" in a script: each was read as something else, with exit code 0 (predict -o '' wrote nothing, eval -o ''
    wrote into the current folder)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    verb = argv[0]
    assert err == f"rtstereo {verb}: error: argument {name}: an empty value (see `rtstereo {verb} --help`)\n"
    assert list(tmp_path.iterdir()) == []


def test_eval_writes_json_and_markdown(capsys, tmp_path, shared):
    scene = shared("data", "real", "middlebury2001", "tsukuba")
    code, out, err = run_cli(capsys, "eval", "--model", "sgbm", scene, "-o", tmp_path, "-q")
    assert code == 0, err
    assert "tsukuba" in out and "mean (1)" in out
    data = json.loads((tmp_path / "sgbm.json").read_text())
    assert data["scenes"][0]["settings"]["max_disp"] == 16
    assert data["mean"]["bad-2"] == pytest.approx(4.8, abs=0.1)
    assert "| tsukuba |" in (tmp_path / "sgbm.md").read_text()
    # Another form of the same model gets files of its own instead of overwriting these.
    code, _, err = run_cli(capsys, "eval", "--model", "sgbm", "--set", "block_size=7", scene, "-o", tmp_path, "-q")
    assert code == 0, err
    assert (tmp_path / "sgbm_block_size=7.json").is_file() and (tmp_path / "sgbm.json").is_file()


def test_compare_disparity_and_images(capsys, tmp_path):
    gt = EXAMPLES / "disparity.pfm"
    code, out, _ = run_cli(capsys, "compare", gt, gt, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == "disparity" and data["score"] == pytest.approx(0, abs=1e-6)
    assert data["metrics"]["epe"] == 0
    code, out, _ = run_cli(capsys, "compare", EXAMPLES / "left.png", EXAMPLES / "right.png", "--json")
    data = json.loads(out)
    assert data["kind"] == "image" and 0.0 < data["score"] < 0.5


def test_compare_rescales_disparity_to_the_same_width(capsys, tmp_path):
    from rtstereo.io import write_disparity

    full = np.full((40, 80), 20.0, np.float32)
    write_disparity(tmp_path / "a.pfm", full)
    write_disparity(tmp_path / "b.pfm", cv2.resize(full, (40, 20)) * 0.5)
    code, out, _ = run_cli(capsys, "compare", tmp_path / "a.pfm", tmp_path / "b.pfm", "--json")
    data = json.loads(out)
    assert data["metrics"]["epe"] == pytest.approx(0, abs=1e-5) and "scaled by 2.0000" in data["resized"]


def test_models_lists_and_describes(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "gwcnet-gc" in out and "default" in out
    code, out, _ = run_cli(capsys, "models", "default")
    # default is the method best on ../shared/data/validation (README); the network stays there by name
    assert code == 0 and out.startswith("default -> hybrid\n") and "runs: SGBM and rtnet-guided (--set network=" in out
    code, out, _ = run_cli(capsys, "models", PACKAGED_NETWORK)
    assert code == 0 and out.startswith(f"{PACKAGED_NETWORK}: ")
    code, out, _ = run_cli(capsys, "models", "crestereo")
    assert "two_pass" in out and "raw255 normalisation, BGR order (the RGB images reversed" in out
    assert "size multiple of 32, at least 64 px (padded" in out  # the predictor pads small pairs to 64 px
    assert "refinement iterations, 2 or more" in out  # 1 is refused: "or any" said otherwise
    code, out, _ = run_cli(capsys, "models", "gwcnet-g")
    assert "input: imagenet normalisation, RGB order, size multiple of 16" in out
    code, out, _ = run_cli(capsys, "models", "sgbm")
    settings = out.split("settings (--set KEY=VALUE):\n")[1].splitlines()
    columns = {re.match(r" +\S+ = \S+ +", line).end() for line in settings}  # where each help text starts
    assert len(settings) == 9 and len(columns) == 1, settings
    assert settings[-1].endswith("(post-processing, any model)")


def test_models_list_shows_the_readme_weights_column_and_the_detail_says_when_torch_is_needed(capsys):
    """The list had no weights column (the README's table has one), and ``models anynet`` did not say that a PyTorch
    network needs torch, nor the pip line."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Methods\n\n", 1)[1].split("\n\n", 1)[0]
    said = {}
    for row in table.splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for name in re.findall(r"`([a-z0-9-]+)`", cells[0]):
            said[name] = cells[2]
    code, out, _ = run_cli(capsys, "models")
    listed = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0 and set(said) <= set(listed), (sorted(said), sorted(listed))
    for name, cell in said.items():
        column = re.match(r"\S+ +\S+ +(none|included|your checkpoint) ", listed[name])
        assert column and cell.startswith(column[1]), (name, cell, listed[name])
    for name in ("anynet", "gwcnet-gc", "crestereo", "rtnet"):
        code, out, _ = run_cli(capsys, "models", name)
        assert "  torch: needed (pip install 'rtstereo[torch]'); a machine without it runs the .onnx file" in out
    for name in ("sgbm", "hybrid", PACKAGED_NETWORK):
        code, out, _ = run_cli(capsys, "models", name)
        assert code == 0 and "torch:" not in out, out


def test_models_takes_the_model_as_an_option_too_as_every_other_verb_does(capsys):
    """``models --model sgbm`` was an unrecognized argument, where predict, bench, export... take ``--model``/``-m``."""
    _, said, _ = run_cli(capsys, "models", "sgbm")
    for option in ("--model", "-m"):
        code, out, err = run_cli(capsys, "models", option, "sgbm")
        assert (code, out, err) == (0, said, "")
    code, out, err = run_cli(capsys, "models", "bm", "--model", "sgbm")
    assert (
        code == 2
        and out == ""
        and err == "rtstereo models: error: MODEL bm and --model sgbm disagree: give one of them\n"
    )
    assert run_cli(capsys, "models", "SGBM", "--model", "sgbm") == (0, said, "")  # one model, in other letters


@pytest.mark.parametrize("verb", ["export", "bench"])
def test_help_says_the_model_is_required_where_usage_shows_it_optional(capsys, verb):
    """The usage's ``[model]`` (optional to argparse, as it may come as --model) read as an optional model."""
    from rtstereo.cli import main

    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert "model required, here or as --model: registry name" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("verb", ["predict", "eval", "video", "live", "export", "bench", "adapt"])
def test_weights_help_names_the_download_cache_and_the_sha256_check(capsys, verb):
    """``--weights``' help said "weights file or URL", nothing of where a URL goes nor of its ``#sha256=`` check."""
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "a URL is downloaded once into ~/.cache/rtstereo or $RTSTEREO_CACHE, checked if it ends in #sha256=" in said


def test_models_pattern_filters_the_default_alias_too_and_says_when_nothing_matches(capsys):
    code, out, _ = run_cli(capsys, "models", "--pattern", "gwcnet*")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["gwcnet-g", "gwcnet-gc"]
    code, out, _ = run_cli(capsys, "models", "--pattern", "def*")
    assert code == 0 and out.split() == ["default", "alias", "included", "->", "hybrid"]
    code, out, err = run_cli(capsys, "models", "--pattern", "zz*")
    assert (code, out) == (
        2,
        "",
    ) and err == "rtstereo models: error: no model matches --pattern 'zz*' (every model: rtstereo models)\n"
    # `--pattern gwc`, part of two names, said only that nothing matched it
    code, out, err = run_cli(capsys, "models", "--pattern", "GWC")
    assert (code, out, err) == (
        2,
        "",
        "rtstereo models: error: no model matches --pattern 'GWC' (a pattern matches whole names: --pattern '*GWC*' "
        "lists gwcnet-g, gwcnet-gc)\n",
    )


def test_models_calls_a_folder_named_like_an_onnx_file_a_folder(capsys, tmp_path):
    (tmp_path / "x.onnx").mkdir()  # it said "file not found"
    code, out, err = run_cli(capsys, "models", tmp_path / "x.onnx")
    assert (code, out) == (
        2,
        "",
    ) and err == f"rtstereo models: error: {tmp_path / 'x.onnx'}: is a folder, not an ONNX file\n"


def test_a_run_folder_given_as_the_model_is_called_a_folder_with_the_files_in_it(capsys, tmp_path):
    """`rtstereo models training/default` and `bench training/default` said "model file not found" of a folder
    that is there (predict said it is a folder), and `models nothere/` read a weights file "nothere"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.pt").write_bytes(b"")
    (run / "log.jsonl").write_text("")
    folder = f"model {run} is a folder: give a registry name (rtstereo models), an rtstereo checkpoint or an exported"
    for verb in ("models", "bench"):
        code, out, err = run_cli(capsys, verb, run)
        assert (code, out) == (2, "") and err == f"rtstereo {verb}: error: {folder} .onnx file (in it: state.pt)\n"
    code, out, err = run_cli(capsys, "models", f"{tmp_path / 'nothere'}/")
    assert (code, out) == (2, "") and f"error: model file not found: {tmp_path}/nothere/ (" in err


def test_models_describes_an_rtstereo_checkpoint_and_refuses_other_files_in_one_line(capsys, tmp_path):
    """`rtstereo models runs/x/best.pt` said "unknown model": a checkpoint describes itself as an export does."""
    torch = pytest.importorskip("torch")
    from rtstereo.models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "run" / "best.pt", "rtnet", {"max_disp": 96}, {}, step=7, best_epe=1.5, best_step=5)
    code, out, err = run_cli(capsys, "models", tmp_path / "run" / "best.pt")
    assert code == 0, err
    assert out.startswith(f"{tmp_path / 'run' / 'best.pt'}: an rtstereo checkpoint of rtnet, step 7\n")
    assert "best validation EPE: 1.500 px at step 5" in out and "    max_disp = 96\n" in out
    torch.save({"state_dict": {}}, tmp_path / "published.tar")
    for path, message in (
        (tmp_path / "published.tar", "is not an rtstereo checkpoint (it does not name its model)"),
        (tmp_path / "missing.pt", "model file not found"),
    ):
        code, out, err = run_cli(capsys, "models", path)
        assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err


def test_models_says_a_guided_checkpoint_runs_inside_the_hybrid(capsys, tmp_path):
    """`adapt --model default` writes the guided network alone; `models OUT` advised `predict --model OUT`, which
    runs it without its hints (unguided), where an export of the same network says to run it inside the hybrid."""
    pytest.importorskip("torch")
    from rtstereo.models.checkpoint import save_checkpoint

    for guided in (True, False):
        path = tmp_path / f"guided-{guided}.pt"
        save_checkpoint(path, "rtnet", {"max_disp": 192, "guided": guided}, {})
        code, out, err = run_cli(capsys, "models", path)
        assert code == 0, err
        use = f"--model hybrid --set network={path}" if guided else f"--model {path}"
        assert f"  use it: rtstereo predict LEFT RIGHT {use};" in out, out
        assert ("alone it runs unguided" in out) == guided, out


def test_models_says_what_an_image_video_or_text_file_given_as_the_model_is(capsys, tmp_path):
    """`rtstereo models examples/left.png` said "not a PyTorch file (a plain pickle, or damaged)"."""
    pytest.importorskip("torch")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(40))
    (tmp_path / "notes.txt").write_text("baseline 0.12 m\nfocal 700 px\n")
    for path, said in (
        (EXAMPLES / "left.png", "a PNG image, not a PyTorch file"),
        (EXAMPLES / "disparity.pfm", "a PFM image or disparity map, not a PyTorch file"),
        (tmp_path / "clip.mp4", "an MP4 or QuickTime video, not a PyTorch file"),
        (tmp_path / "notes.txt", "a text file (it begins 'baseline 0.12 m'), not a PyTorch file"),
    ):
        code, out, err = run_cli(capsys, "models", path)
        assert code == 2 and out == "" and err.count("\n") == 1 and f"{path}: {said}" in err, err


@pytest.mark.parametrize("verb", ["models", "predict"])
def test_a_file_given_as_the_model_that_is_no_checkpoint_is_named_so_without_torch(capsys, monkeypatch, tmp_path, verb):
    """Without torch (the plain install), `--model left.png` and `models rig/maps.npz` said to install torch to read
    "a PyTorch checkpoint", which the file never was."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError, as where it is not installed
    maps = tmp_path / "maps.npz"
    np.savez(maps, map_x=np.zeros((2, 2), np.float32))
    pair = (EXAMPLES / "left.png", EXAMPLES / "right.png", "-o", f"{tmp_path}/out/")
    for model, said in (
        (EXAMPLES / "left.png", "a PNG image, not a PyTorch file"),
        (maps, "a NumPy .npz file of arrays (map_x.npy), not a torch.save file"),
    ):
        argv = ("models", model) if verb == "models" else ("predict", *pair, "--model", model)
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and err == (
            f"rtstereo {verb}: error: cannot read model file {model}: {said}; "
            "expected an rtstereo checkpoint or an exported .onnx file\n"
        ), err


def test_models_describes_an_exported_file_from_its_own_metadata(capsys, tmp_path):
    from rtstereo.runtime.onnx import packaged_path

    guided = packaged_path(rtstereo_models.get_spec("rtnet-guided"))
    code, out, err = run_cli(capsys, "models", guided)
    assert code == 0, err
    assert out.startswith(f"{guided}: an rtstereo export of rtnet (fp32, role single)")
    assert "guided: SGBM's confident matches" in out and "max_disp = 192" in out
    (tmp_path / "bad.onnx").write_text("not a model")
    for path, message in ((tmp_path / "absent.onnx", "file not found"), (tmp_path / "bad.onnx", "not an ONNX model")):
        code, _, err = run_cli(capsys, "models", path)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("model", "said"), [("crestereo", True), ("rtnet", False)])
def test_models_says_the_channel_order_of_an_rtstereo_export(capsys, tmp_path, model, said):
    """`models FILE` said "BGR order" of the public CREStereo files and nothing of rtstereo's own CREStereo export,
    which is fed RGB and reverses it to the BGR its weights take inside the graph."""
    import onnx
    from onnx import TensorProto, helper

    from rtstereo.export.onnx_export import _stamp
    from rtstereo.runtime.onnx import OnnxContract

    image = [1, 3, 32, 64]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["left"], ["disparity"])],
        "tiny",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, image) for n in ("left", "right")],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, image)],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    spec = rtstereo_models.get_spec(model)
    _stamp(proto, OnnxContract(model, {}, spec.normalization, 16, (32, 64), "fp32", "single"), spec.summary)
    onnx.save(proto, tmp_path / "net.onnx")
    code, out, err = run_cli(capsys, "models", tmp_path / "net.onnx")
    assert code == 0, err
    reversed_ = " (reversed to BGR inside the graph: the order its weights take, as a public CREStereo file's)"
    expected = f"  input: {spec.normalization} normalisation in RGB order{reversed_ if said else ''}, size 32x64 (HxW)"
    assert expected in out, out


def test_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for verb in ("predict", "eval", "compare", "models"):
        assert verb in out


def test_every_verbs_help_examples_keep_their_continued_lines():
    """A lone backslash at a line's end in an epilog joined two lines of `bench --help` into one, 7 spaces inside."""
    from rtstereo.cli import build_parser

    for verb, parser in build_parser().verb_parsers.items():
        for line in (parser.epilog or "").splitlines():
            assert not re.search(r"\S {3,}--", line), f"rtstereo {verb} --help: {line!r}"


def test_predict_help_names_file_urls_and_where_max_disp_s_default_is_said(capsys):
    """LEFT and RIGHT said 'file, folder, glob or http(s) URL' (file:// URLs are read too); --max-disp said nothing of
    its default, which differs by model and is fixed in the packaged networks."""
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("image: file, folder, glob, http(s) or file:// URL") == 2
    assert "whether a model takes another value: `rtstereo models NAME`" in text


def test_predict_help_examples_name_no_s3_manifest(capsys):
    """The Ray example read '--pairs s3_pairs.parquet', while s3:// paths are refused (a cluster reads a shared file
    system): it is /shared/pairs.parquet, as in the README."""
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert "s3" not in text and "--pairs /shared/pairs.parquet -o /shared/out --engine ray" in text


def test_predict_help_says_how_folders_are_paired():
    """Its example said "folders: pairs matched by sorted name", where each side is sorted by the numbers in the
    names (frame9 before frame10, L_9.png beside R_09.png), as the README says."""
    from rtstereo.cli import build_parser

    epilog = build_parser().verb_parsers["predict"].epilog
    assert "sorted name" not in epilog and "folders: paired in the order of the numbers in the names" in epilog


def test_every_verb_names_the_same_things_with_the_same_metavars():
    """--max-disp read MAX_DISP in predict, D in synth; --temporal-reset-px TEMPORAL_RESET_PX; predict's pair read
    [left] [right] while its --pairs and --lr-check texts said LEFT RIGHT; compare's files read a b while its text
    said B against A."""
    from rtstereo.cli import build_parser

    expected = {
        "--max-disp": {"PX", "PX,..."},
        "--data-max-disp": {"PX"},
        "--iters": {"N", "N,..."},
        "--threads": {"N"},
        "--max-frames": {"N"},
        "--stride": {"N"},
        "--every": {"N"},
        "--start": {"FRAME"},
        "--temporal-reset-px": {"PX"},
        "--temporal-confirm": {"N"},
        "--size": {"HxW"},
        "-o": {"OUTPUT", "DIR"},
        # train, adapt and video/live --adapt showed BATCH_SIZE, STEPS, LOSSES, ADAPT_LR, ADAPT_LOSSES...
        "--steps": {"N"},
        "--batch-size": {"N"},
        "--synthetic-batch": {"N"},
        "--synthetic-pool": {"N"},
        "--val-size": {"N"},
        "--warmup-steps": {"N"},
        "--log-every": {"N"},
        "--val-every": {"N"},
        "--checkpoint-every": {"N"},
        "--seed": {"N"},
        "--lr": {"LR"},
        "--adapt-lr": {"LR"},
        "--losses": {"TERM,..."},
        "--adapt-losses": {"TERM,..."},
        "--minutes": {"MIN"},
        "--init": {"CKPT"},
        "--resume": {"CKPT"},
        "--data": {"DIR", ("DIR|LEFT", "RIGHT")},  # bench: a dataset or one pair
        "--val-data": {"DIR"},
    }
    positional = {"left": "LEFT", "right": "RIGHT", "a": "A", "b": "B"}
    seen = set()
    for verb, parser in build_parser().verb_parsers.items():
        for action in parser._actions:
            for option in action.option_strings:
                if option in expected:
                    seen.add(option)
                    shown = action.metavar or action.dest.upper()  # as argparse writes it
                    assert shown in expected[option], f"rtstereo {verb} {option} {shown}"
            if not action.option_strings and action.dest in positional:
                seen.add(action.dest)
                assert action.metavar == positional[action.dest], f"rtstereo {verb} {action.dest}: {action.metavar}"
    assert seen == set(expected) | set(positional)


def test_every_verb_that_reports_its_work_on_stderr_takes_quiet_and_every_size_is_hxw():
    """-q was refused by train and export (unrecognized arguments) while eight verbs took it; the verbs without it
    print results only. And a size option that does not say HxW is read with its sides the other way round."""
    from rtstereo.cli import build_parser

    results_only = {"models", "compare"}
    for verb, parser in build_parser().verb_parsers.items():
        quiet = [action for action in parser._actions if "--quiet" in action.option_strings]
        if verb in results_only:
            assert not quiet, f"rtstereo {verb}: --quiet, yet it says nothing on stderr but errors and warnings"
            continue
        assert quiet and quiet[0].option_strings == ["--quiet", "-q"], f"rtstereo {verb} has no --quiet/-q"
        assert isinstance(quiet[0], argparse._StoreTrueAction) and quiet[0].dest == "quiet", verb
    counts = {"--batch-size", "--val-size"}  # numbers of pairs, not image sizes
    for verb, parser in build_parser().verb_parsers.items():
        for action in parser._actions:
            options = set(action.option_strings)
            if options & counts or not any(option.endswith(("size", "sizes", "crop", "-hw")) for option in options):
                continue
            said = f"{action.metavar} {action.help}"
            assert "HxW" in said or "HEIGHTxWIDTH" in said, f"rtstereo {verb} {action.option_strings}: {said}"


def test_every_verb_that_runs_a_model_takes_it_as_model_or_m(capsys, tmp_path):
    """bench and export take MODEL first; `--model`/`-m`, as predict, video, live, eval, train and adapt take it,
    was an unrecognized argument there."""
    from rtstereo.cli import build_parser

    for verb, parser in build_parser().verb_parsers.items():
        if verb == "models":  # a name to describe, or none for the list
            continue
        if any(action.dest in ("model", "model_option") for action in parser._actions):
            options = {option for action in parser._actions for option in action.option_strings}
            assert {"--model", "-m"} <= options, f"rtstereo {verb}"
    code, out, err = run_cli(capsys, "bench", "-m", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--runs", "1")
    assert code == 0 and "|sgbm|" in out, err
    code, _, err = run_cli(capsys, "export", "--model", "sgbm", "--size", "32x64", "-o", tmp_path / "s.onnx")
    assert (
        code == 2
        and err
        == "rtstereo export: error: model 'sgbm' is classical, not a PyTorch network: there is nothing to export\n"
    ), err
    code, _, err = run_cli(capsys, "bench", "bm", "--model", "sgbm", "--sizes", "32x48")
    assert code == 2 and err == "rtstereo bench: error: MODEL bm and --model sgbm disagree: give one of them\n", err
    code, _, err = run_cli(capsys, "export", "--size", "32x64", "-o", tmp_path / "s.onnx")
    assert code == 2 and err.startswith("rtstereo export: error: give the network to export first"), err


def test_max_disp_and_iters_take_a_whole_number_written_with_a_point_in_every_verb(capsys):
    """`--max-disp 96.0` was an invalid int value in predict, video, live, eval, export, train and bench, while
    `--set max_disp=96.0`, `synth --max-disp 96.0` and `adapt --max-disp 96.0` took it."""
    from rtstereo.cli import build_parser

    parsers = build_parser().verb_parsers
    required = {
        "export": ["anynet", "-o", "a.onnx", "--size", "32x64"],
        "video": ["l.mp4", "r.mp4"],
        "live": ["-c", "oak"],
        "eval": ["data/"],
    }
    for verb in ("predict", "video", "live", "eval", "export", "train"):
        args, _ = parsers[verb].parse_known_args([*required.get(verb, []), "--max-disp", "96.0"])
        assert args.max_disp == 96 and isinstance(args.max_disp, int), verb
        if verb != "train":
            assert parsers[verb].parse_known_args([*required.get(verb, []), "--iters", "4.0"])[0].iters == 4, verb
    with pytest.raises(SystemExit):
        parsers["predict"].parse_args(["--max-disp", "96.5"])
    assert "argument --max-disp: expected a whole number, got '96.5'" in capsys.readouterr().err
    code, out, err = run_cli(capsys, "bench", "sgbm", "--sizes", "32x48", "--max-disp", "16.0", "--runs", "1")
    assert code == 0 and "|sgbm|opencv|" in out, err


def test_every_verbs_description_fits_an_80_column_terminal(monkeypatch):
    """The descriptions of video, live, export, calibrate and train were one raw line of up to 180 characters,
    which a terminal broke inside words; export's said "optionally convert it to fp16" beside its --int8."""
    from rtstereo.cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    for verb, parser in build_parser().verb_parsers.items():
        text = parser.format_help()
        description = text.split("\n\n")[1]  # after the usage lines (argparse's own wrapping)
        assert all(len(line) <= 80 for line in description.splitlines()), f"rtstereo {verb} --help:\n{description}"
    assert "fp16 or int8" in " ".join(build_parser().verb_parsers["export"].description.split())


def test_an_extra_argument_is_named_with_its_verb(capsys):
    # it was "rtstereo: error: unrecognized arguments: ..." (see `rtstereo --help`), not the verb's line
    with pytest.raises(SystemExit) as exit_:
        main(["models", "sgbm", "bm"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "rtstereo models: error: unrecognized arguments: bm (see `rtstereo models --help`)\n"
    )
    with pytest.raises(SystemExit):
        main(["--bogus"])
    assert capsys.readouterr().err == "rtstereo: error: unrecognized arguments: --bogus (see `rtstereo --help`)\n"


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["predcit", "l.png", "r.png"], "; did you mean predict? (see `rtstereo --help`)"),
        (["compare", "a.pfm", "b.pfm", "--jsn"], "--jsn; did you mean --json? (see `rtstereo compare --help`)"),
        (["compare", "a.pfm", "b.pfm", "--kind", "imag"], "; did you mean image? (see `rtstereo compare --help`)"),
        (
            ["predict", "l.png", "r.png", "--maxdisp=32"],
            "; did you mean --max-disp? (see `rtstereo predict --help`)",
        ),
    ],
)
def test_a_mistyped_verb_option_or_choice_gets_its_close_matches(capsys, argv, hint):
    # the parser's docstring promised them; none came
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert err.endswith(hint + "\n") and err.count("\n") == 1, err


def test_a_closed_stdout_is_not_an_error(monkeypatch, capsys):
    import sys

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["models"]) == 0


def test_compare_refuses_maps_of_another_aspect_ratio(capsys, tmp_path):
    from rtstereo.io import write_disparity

    write_disparity(tmp_path / "a.pfm", np.full((40, 80), 20.0, np.float32))
    write_disparity(tmp_path / "b.pfm", np.full((8, 200), 50.0, np.float32))
    write_disparity(tmp_path / "c.pfm", np.full((21, 41), 10.0, np.float32))  # half size, rounded up: accepted
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.pfm", tmp_path / "b.pfm")
    assert code == 2 and out == ""
    assert err == (
        f"rtstereo compare: error: {tmp_path / 'a.pfm'} is 80x40 and {tmp_path / 'b.pfm'} is 200x8 (WxH): "
        "another aspect ratio, so the second would be stretched; compare maps or images of one view at one size "
        "(or one scaled alike in both directions)\n"
    )
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.pfm", tmp_path / "c.pfm", "--json")
    assert code == 0 and "resized from 21x41 to 40x80 (HxW)" in json.loads(out)["resized"]


def test_compare_refuses_images_of_another_aspect_ratio_too(capsys, tmp_path):
    import cv2

    image = (np.random.default_rng(0).random((40, 80, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "wide.png"), cv2.resize(image, (200, 8)))
    cv2.imwrite(str(tmp_path / "half.png"), cv2.resize(image, (40, 20)))
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.png", tmp_path / "wide.png")
    assert code == 2 and "is 200x8 (WxH): another aspect ratio" in err
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.png", tmp_path / "half.png")
    assert code == 0, err


def test_compare_says_the_reference_has_no_valid_pixels(capsys, tmp_path):
    np.save(tmp_path / "empty.npy", np.full((40, 80), np.nan, np.float32))
    np.save(tmp_path / "b.npy", np.full((40, 80), 3.0, np.float32))
    code, out, err = run_cli(capsys, "compare", tmp_path / "empty.npy", tmp_path / "b.npy")
    assert code == 2 and out == "" and "nan" not in err
    assert err == f"rtstereo compare: error: {tmp_path / 'empty.npy'} (the reference) has no valid pixels\n"


@pytest.mark.parametrize("value", [0.0, -4.0])
def test_compare_refuses_a_reference_whose_pixels_are_all_zero_or_negative(capsys, tmp_path, value):
    # the metrics count ground truth <= 0 as unknown: they were all nan beside a score, with exit code 0
    np.save(tmp_path / "zero.npy", np.full((40, 80), value, np.float32))
    np.save(tmp_path / "b.npy", np.full((40, 80), 3.0, np.float32))
    code, out, err = run_cli(capsys, "compare", tmp_path / "zero.npy", tmp_path / "b.npy")
    assert (code, out) == (2, "")
    sign = "disparity stored with the other sign, x_right - x_left, as some tools write it? compare its negation"
    hint = f": 3200 of its values are below 0 ({sign})" if value < 0 else ""
    assert err == f"rtstereo compare: error: {tmp_path / 'zero.npy'} (the reference) has no valid pixels{hint}\n"


def test_compare_keeps_a_resized_maps_valid_pixels_valid_and_its_invalid_ones_invalid(capsys, tmp_path):
    a = np.full((40, 80), 4.0, np.float32)
    b = np.full((40, 80), 4.0, np.float32)
    b[:, :20] = 0.0  # a valid prediction of 0 px (infinitely far): wrong by 4 px, but valid
    b[:, 20:40] = np.nan
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "half.npy", b[::2, ::2] / 2)
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.npy", tmp_path / "b.npy", "--json")
    same_size = json.loads(out)["metrics"]
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.npy", tmp_path / "half.npy", "--json")
    resized = json.loads(out)["metrics"]
    assert code == 0, err
    assert same_size["density"] == resized["density"] == 75.0  # it was 50 % resized: the zeros became invalid
    assert same_size["epe"] == resized["epe"] == pytest.approx(2.0)  # 4 px wrong on half the pixels


def test_compare_reads_8bit_disparity_with_scale(capsys, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((40, 80), 80, np.uint8)).save(tmp_path / "gt8.png")
    np.save(tmp_path / "d.npy", np.full((40, 80), 10.0, np.float32))
    code, out, err = run_cli(capsys, "compare", "--kind", "disparity", tmp_path / "gt8.png", tmp_path / "d.npy")
    assert code == 2 and "8-bit disparity needs its scale" in err and "--scale" in err
    code, out, err = run_cli(capsys, "compare", tmp_path / "gt8.png", tmp_path / "d.npy", "--scale", "8", "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["epe"] == 0
    # --kind image with --scale: the scale was ignored unsaid
    code, out, err = run_cli(
        capsys, "compare", tmp_path / "gt8.png", tmp_path / "gt8.png", "--kind", "image", "--scale", "8"
    )
    assert (code, out) == (2, "") and err == (
        "rtstereo compare: error: --scale reads 8-bit disparity maps (it implies --kind disparity): give it or "
        "--kind image\n"
    )
    from rtstereo.compare import compare_files
    from rtstereo.errors import InputError

    with pytest.raises(InputError, match=r"a scale \(8\) divides 8-bit disparity maps: it has no meaning"):
        compare_files(tmp_path / "gt8.png", tmp_path / "gt8.png", "image", scale=8)
    for scale in ("0", "nan", "inf"):  # inf was "the scale of 8-bit disparity maps must be > 0, got inf"
        code, out, err = run_cli(capsys, "compare", tmp_path / "gt8.png", tmp_path / "d.npy", "--scale", scale)
        assert code == 2 and err == f"rtstereo compare: error: --scale must be a number > 0, got {scale}\n"
    with pytest.raises(SystemExit) as exit_info:  # it was argparse's "invalid float value: 'abc'"
        main(["compare", str(tmp_path / "gt8.png"), str(tmp_path / "d.npy"), "--scale", "abc"])
    assert exit_info.value.code == 2 and capsys.readouterr().err == (
        "rtstereo compare: error: argument --scale: expected a number > 0, got 'abc' (see `rtstereo compare --help`)\n"
    )


def test_compare_reads_16bit_pgm_and_tiff_maps_as_disparity_as_it_reads_16bit_png(capsys, tmp_path):
    disparity_px = np.random.default_rng(0).uniform(1, 40, (40, 80)).astype(np.float32)
    stored = np.round(disparity_px * 256).astype(np.uint16)  # KITTI convention
    for suffix in (".png", ".pgm", ".tif"):
        assert cv2.imwrite(str(tmp_path / f"d{suffix}"), stored)
    np.save(tmp_path / "d.npy", stored / np.float32(256))
    for suffix in (".pgm", ".tif"):
        code, out, err = run_cli(capsys, "compare", tmp_path / "d.png", tmp_path / f"d{suffix}", "--json")
        assert code == 0, err
        assert json.loads(out)["kind"] == "disparity"  # it was "image" for .pgm, and refused beside the .png
        code, out, err = run_cli(capsys, "compare", tmp_path / "d.npy", tmp_path / f"d{suffix}", "--json")
        assert code == 0 and json.loads(out)["metrics"]["epe"] == pytest.approx(0, abs=1e-6), err
        # --scale divides 8-bit maps only: a 16-bit PGM or TIFF beside one is still value / 256, as its help says
        code, out, err = run_cli(
            capsys, "compare", tmp_path / f"d{suffix}", tmp_path / "d.npy", "--scale", "8", "--json"
        )
        assert code == 0 and json.loads(out)["metrics"]["epe"] == pytest.approx(0, abs=1e-6), err
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "16-bit PNG, PGM and TIFF maps (value / 256)" in " ".join(capsys.readouterr().out.split())


def test_compare_keeps_all_16_bits_of_16bit_images(capsys, tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.integers(60, 160, (40, 80, 3)) * 257).astype(np.uint16)  # on 8-bit levels exactly
    assert cv2.imwrite(str(tmp_path / "a.png"), image)
    assert cv2.imwrite(str(tmp_path / "b.png"), image + 100)  # less than one 8-bit level (257) brighter
    assert cv2.imwrite(str(tmp_path / "a8.png"), (image // 257).astype(np.uint8))
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.png", tmp_path / "b.png", "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    # in 8-bit levels: 100 / 257; read as 8 bits (divided by 257), the two were identical
    assert metrics["mean_abs_diff"] == pytest.approx(100 / 257, rel=1e-3) and metrics["psnr_db"] is not None
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.png", tmp_path / "a8.png", "--json")
    assert code == 0 and json.loads(out)["metrics"]["mean_abs_diff"] < 1, err  # 8 and 16 bits on one scale


def test_compare_a_damaged_npy_is_one_line(capsys, tmp_path):
    (tmp_path / "bad.npy").write_text("not an array\n")
    code, out, err = run_cli(capsys, "compare", EXAMPLES / "disparity.pfm", tmp_path / "bad.npy")
    assert (
        code == 2
        and err == f"rtstereo compare: error: cannot read {tmp_path / 'bad.npy'}: not a numpy .npy file, or damaged\n"
    )


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "the file is empty (0 bytes)"), (b"<html>", "not an image OpenCV can decode")]
)
def test_compare_an_unreadable_file_beside_a_map_is_said_to_be_unreadable(capsys, tmp_path, content, reason):
    """An empty or damaged out.png beside a PFM reference was 'not both images or both disparity maps; use --kind',
    which sent the user to --kind for a file nothing can read."""
    (tmp_path / "out.png").write_bytes(content)
    for argv in (
        (EXAMPLES / "disparity.pfm", tmp_path / "out.png"),
        (tmp_path / "out.png", EXAMPLES / "disparity.pfm"),
    ):
        code, out, err = run_cli(capsys, "compare", *argv)
        assert (
            code == 2 and out == "" and err.startswith(f"rtstereo compare: error: cannot read {tmp_path / 'out.png'}: ")
        )
        assert reason in err and err.count("\n") == 1, err
    # a readable image beside a map is told what it is (a colour image, which no kind reads as a map)
    code, _, err = run_cli(capsys, "compare", EXAMPLES / "disparity.pfm", EXAMPLES / "left.png")
    assert code == 2 and f"are not both images or both disparity maps; {EXAMPLES / 'left.png'} is a colour image" in err


def _strict_json(text):
    """JSON as strict readers (jq, JavaScript) take it: NaN and Infinity are refused."""

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_compare_json_of_identical_images_is_strict_json(capsys):
    code, out, _ = run_cli(capsys, "compare", EXAMPLES / "left.png", EXAMPLES / "left.png", "--json")
    assert code == 0
    data = _strict_json(out)
    assert data["metrics"] == {"mean_abs_diff": 0.0, "psnr_db": None}  # was Infinity


def test_compare_refuses_an_empty_second_map_in_one_line(capsys, tmp_path):
    np.save(tmp_path / "a.npy", np.full((40, 80), 20.0, np.float32))
    np.save(tmp_path / "b.npy", np.zeros((0, 0), np.float32))
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.npy", tmp_path / "b.npy")
    assert code == 2 and out == ""  # was a ZeroDivisionError traceback
    assert err == f"rtstereo compare: error: {tmp_path / 'b.npy'} is empty (0x0, WxH): nothing to compare\n"


def test_models_names_the_runtime_settings_set_takes_too(capsys):
    code, out, _ = run_cli(capsys, "models", "anynet")  # they were found only by a refusal
    assert code == 0 and out.splitlines()[-1] == (
        "  runtime settings (--set KEY=VALUE): channels_last, cuda_graphs, compile, cudnn_benchmark (torch, its "
        "default backend); threads, providers, engine_cache, parity (onnxruntime, with --backend onnxruntime)"
    )
    code, out, _ = run_cli(capsys, "models", "rtnet-v5")
    assert out.splitlines()[-1].endswith("threads, providers, engine_cache, parity (onnxruntime, its default backend)")
    code, out, _ = run_cli(capsys, "models", "sgbm")
    assert "runtime settings" not in out


def test_models_pattern_ignores_case_on_every_system(capsys):
    code, out, _ = run_cli(capsys, "models", "--pattern", "GWCNET*")  # "no model matches" on Linux
    assert code == 0 and out.splitlines()[0].startswith("gwcnet-g ") and len(out.splitlines()) == 2
    code, out, _ = run_cli(capsys, "models", "--pattern", "Def*")
    assert code == 0 and out.startswith("default") and "alias" in out


def test_models_given_a_pattern_as_the_name_points_to_pattern(capsys):
    """`rtstereo models 'gwc*'` said "unknown model 'gwc*'", with the list of names but no word of --pattern."""
    code, out, err = run_cli(capsys, "models", "gwc*")
    assert (code, out) == (2, "")
    assert err == "rtstereo models: error: 'gwc*' is a pattern, not a model name: rtstereo models --pattern 'gwc*'\n"


def test_models_refuses_a_pattern_with_a_model_name(capsys):
    code, out, err = run_cli(capsys, "models", "sgbm", "--pattern", "gwc*")
    assert (code, out) == (2, "")  # the pattern was ignored silently
    assert err == (
        "rtstereo models: error: --pattern filters the list of models: give it without a model name, or drop it for "
        "sgbm\n"
    )


def test_models_aligns_the_help_of_every_setting_in_one_column(capsys):
    code, out, _ = run_cli(capsys, "models", "sgbm")
    lines = out.split("  settings (--set KEY=VALUE):\n")[1].splitlines()
    assert code == 0 and len(lines) >= 9
    assert lines[0].startswith("    max_disp = 192   ") and lines[-1].startswith("    refine_edges = False  ")
    help_columns = {re.match(r"    \S+ = \S+ +", line).end() for line in lines}
    assert help_columns == {len("    fill_left_border = False  ")}  # was ragged: the keys were not padded


def test_compare_says_a_folder_is_a_folder(capsys, tmp_path):
    code, out, err = run_cli(capsys, "compare", tmp_path, EXAMPLES / "left.png")
    assert (code, out) == (2, "")  # was "file not found" for a folder that exists
    assert (
        err == f"rtstereo compare: error: {tmp_path} is a folder: compare takes two files (images or disparity maps)\n"
    )


@pytest.mark.parametrize("where", ["folder", "file", "batch", "file_url"])
def test_an_output_that_would_replace_an_input_image_is_refused(capsys, tmp_path, pair_files, monkeypatch, where):
    """`-o .` beside left.png wrote the 16-bit disparity over the photo (and `-o l.png` too)."""
    lp, rp = pair_files
    before = lp.read_bytes()
    monkeypatch.chdir(tmp_path)
    left = {"batch": str(tmp_path / "*l.png"), "file_url": lp.as_uri()}.get(where, "l.png")
    right = str(tmp_path / "*r.png") if where == "batch" else "r.png"
    output = "l.png" if where == "file" else "."
    code, out, err = run_cli(capsys, "predict", left, right, "--model", "sgbm", "--max-disp", "16", "-o", output)
    assert code == 2 and out == "", err
    assert err.startswith("rtstereo predict: error: ") and "input image" in err
    assert err.count("\n") == 1 and lp.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png", "r.png"]


def test_compare_reads_float_tiff_maps_as_disparity(capsys, tmp_path):
    """A float32 TIFF map was refused: "unsupported image depth float32 (expected 8 or 16 bit)"."""
    disparity_px = np.random.default_rng(0).uniform(1, 40, (40, 80)).astype(np.float32)
    disparity_px[0, 0] = np.inf  # invalid, as in PFM
    assert cv2.imwrite(str(tmp_path / "d.tif"), disparity_px)
    assert cv2.imwrite(str(tmp_path / "d64.tiff"), disparity_px.astype(np.float64))
    write_pfm(tmp_path / "d.pfm", disparity_px)
    for name in ("d.tif", "d64.tiff"):
        code, out, err = run_cli(capsys, "compare", tmp_path / "d.pfm", tmp_path / name, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["kind"] == "disparity" and result["note"] is None
        assert result["metrics"]["epe"] == pytest.approx(0, abs=1e-6)
    # --scale divides 8-bit maps only: float maps, as 16-bit ones, are read as they are beside it ...
    code, out, err = run_cli(capsys, "compare", tmp_path / "d.tif", tmp_path / "d.pfm", "--scale", "8", "--json")
    assert code == 0 and json.loads(out)["metrics"]["epe"] == pytest.approx(0, abs=1e-6), err
    # ... and read_disparity refuses a scale for one, as for a 16-bit map
    with pytest.raises(InputError, match=r"d\.tif: a floating-point map holds disparities as they are; a scale"):
        read_disparity(tmp_path / "d.tif", scale=8)


def test_compare_says_16bit_grey_images_were_read_as_disparity_and_how_to_compare_photos(capsys, tmp_path):
    """A mono camera's 16-bit photos were scored as disparity maps without a word."""
    photo = np.random.default_rng(0).integers(1000, 60000, (40, 80)).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / "a.png"), photo)
    assert cv2.imwrite(str(tmp_path / "b.png"), photo + 100)
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.png", tmp_path / "b.png")
    assert code == 0, err
    assert out.startswith("disparity difference score") and out.endswith(
        f"  note: {tmp_path / 'a.png'} and {tmp_path / 'b.png'} read as disparity (16-bit grey: value / 256, "
        "KITTI's convention); for a mono camera's 16-bit photos give --kind image\n"
    ), out
    code, out, err = run_cli(capsys, "compare", tmp_path / "a.png", tmp_path / "b.png", "--kind", "image", "--json")
    assert code == 0 and json.loads(out)["kind"] == "image" and json.loads(out)["note"] is None, err


def test_a_large_single_pair_is_announced_before_it_runs(capsys, tmp_path, pair_files, monkeypatch):
    """A 4000x3000 pair ran ~55 s with default and said nothing until it was done."""
    import rtstereo.cli.predict as predict_cli

    lp, rp = pair_files
    height, width = cv2.imread(str(lp)).shape[:2]
    monkeypatch.setattr(predict_cli, "LARGE_PAIR_MP", width * height / 1e6)  # this small pair counts as large
    argv = ("predict", lp, rp, "--model", "sgbm", "--max-disp", 16, "-o", tmp_path / "d.pfm")
    code, _, err = run_cli(capsys, *argv)
    megapixels = width * height / 1e6
    said = f"rtstereo predict: note: {lp.stem}: {height}x{width} (HxW, {megapixels:.1f} MP) with sgbm takes a while: "
    assert code == 0 and said in err and "s on 2 CPU cores (less with more cores)" in err, err  # SGBM: no GPU
    code, _, err = run_cli(capsys, *argv, "--quiet")
    assert code == 0 and "takes a while" not in err, err
    # one that no size of fits the memory budget is refused, and not said to take a while first
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "takes a while" not in err and "more than the 1 KB budget" in err, err


def test_a_single_pair_over_the_memory_budget_is_refused_before_its_images_are_decoded(
    capsys, tmp_path, pair_files, monkeypatch
):
    """Two 12000x12000 PNGs were decoded (20 s, 1.3 GB resident under a 1 GB budget) before the budget refused them."""
    from rtstereo.sources.pairs import PairSource

    def decoded(*args, **kwargs):
        raise AssertionError("the images were decoded")

    lp, rp = pair_files
    height, width = cv2.imread(str(lp)).shape[:2]
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    monkeypatch.setattr(PairSource, "load", decoded)
    for left, right in ((lp, rp), (lp.as_uri(), rp.as_uri())):
        code, _, err = run_cli(capsys, "predict", left, right, "-m", "sgbm", "--max-disp", 16, "-o", tmp_path / "o")
        assert code == 2 and f"sgbm on a {height}x{width} (HxW) pair needs about" in err, err
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("model", ["sgbm", "gwcnet-g"])
def test_a_single_pair_over_the_memory_budget_is_refused_before_the_model_loads(
    capsys, tmp_path, pair_files, monkeypatch, model
):
    """The budget was asked of the loaded model: a pair too large for it waited for the model (seconds, more with
    torch) to be refused. The registry's plan is asked first, in the loaded model's words."""
    import rtstereo.cli.predict as predict_cli

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")

    lp, rp = pair_files
    height, width = cv2.imread(str(lp)).shape[:2]
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    monkeypatch.setattr(predict_cli, "predictor_from_args", loaded)
    code, out, err = run_cli(capsys, "predict", lp, rp, "-m", model, "--max-disp", 16, "-o", tmp_path / "o")
    assert (code, out) == (2, ""), err
    assert err.startswith(f"rtstereo predict: error: {model} on a {height}x{width} (HxW) pair needs about "), err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_the_summary_line_gives_the_size_height_first_as_every_size_of_rtstereo(capsys, tmp_path, pair_files):
    """It said WxH (448x128) where --size, --crop and the README give HxW."""
    lp, rp = pair_files
    height, width = cv2.imread(str(lp)).shape[:2]
    assert height != width
    code, out, _ = run_cli(capsys, "predict", lp, rp, "--model", "sgbm", "--max-disp", 16, "-o", tmp_path / "d.pfm")
    assert code == 0 and f"{lp.stem}: {height}x{width} (HxW), sgbm, " in out, out


def test_the_large_pair_note_estimates_from_the_size():
    from types import SimpleNamespace

    from rtstereo.cli.predict import large_pair_note

    def model(name, device="cpu"):
        return SimpleNamespace(name=name, backend=SimpleNamespace(describe=lambda: {"device": device}))

    assert large_pair_note(model("hybrid"), 1080, 1920) is None
    assert large_pair_note(model("hybrid"), 3000, 4000) == (
        "3000x4000 (HxW, 12.0 MP) with hybrid takes a while: roughly 55 s on 2 CPU cores "
        "(less with more cores or --device cuda)"
    )
    assert large_pair_note(model("hybrid", "cuda"), 3000, 4000) == "3000x4000 (HxW, 12.0 MP) with hybrid takes a while"
    assert large_pair_note(model("gwcnet-gc"), 3000, 4000) == "3000x4000 (HxW, 12.0 MP) with gwcnet-gc takes a while"
    # SGBM runs on the CPU whatever the device (--device cuda is warned about for it): only more cores help
    assert large_pair_note(model("sgbm"), 3000, 4000) == (
        "3000x4000 (HxW, 12.0 MP) with sgbm takes a while: roughly 13 s on 2 CPU cores (less with more cores)"
    )


@pytest.mark.parametrize("swallowed", ["ImportError", "MissingDependencyError"])
def test_ctrl_c_that_an_extension_module_turned_into_an_import_error_is_an_interruption(capsys, monkeypatch, swallowed):
    """Ctrl-C while onnxruntime (or NumPy) initialises comes out as an ImportError ("initialization failed"): predict
    said "needs the Python package 'onnxruntime', which is not installed" (exit code 2), or printed a traceback."""
    import signal

    from rtstereo.cli import models
    from rtstereo.errors import require

    def run(args):
        try:
            signal.raise_signal(signal.SIGINT)  # main's handler: KeyboardInterrupt, remembered
        except KeyboardInterrupt:
            pass  # what the extension's initialisation does with it
        if swallowed == "ImportError":
            raise ImportError("import numpy failed")
        monkeypatch.setattr("importlib.import_module", lambda name: (_ for _ in ()).throw(ImportError("failed")))
        require("onnxruntime", None, "the ONNX Runtime backend")

    monkeypatch.setattr(models, "run", run)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "rtstereo models: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler main found is back"


@pytest.mark.parametrize("swallowed", ["ImportError", "MissingDependencyError"])
def test_a_sigterm_an_extension_module_turned_into_an_import_error_is_an_interruption(capsys, monkeypatch, swallowed):
    """As for Ctrl-C above: `kill PID` while onnxruntime initialised (video loading the default model) said "the ONNX
    Runtime backend needs the Python package 'onnxruntime', which is installed but cannot be imported (ImportError:
    initialization failed)", exit code 2."""
    import signal

    from rtstereo.cli import models
    from rtstereo.errors import MissingDependencyError, require

    def run(args):
        try:
            signal.raise_signal(signal.SIGTERM)  # the command line's handler: KeyboardInterrupt
        except KeyboardInterrupt:
            pass  # what the extension's initialisation does with it
        if swallowed == "ImportError":
            raise ImportError("initialization failed")
        monkeypatch.setattr("importlib.import_module", lambda name: (_ for _ in ()).throw(ImportError("failed")))
        require("onnxruntime", None, "the ONNX Runtime backend")

    monkeypatch.setattr(models, "run", run)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "rtstereo models: interrupted\n"

    def missing(args):
        raise MissingDependencyError("a test needs the Python package 'no_such_package_here'")

    monkeypatch.undo()  # importlib.import_module back
    monkeypatch.setattr(models, "run", missing)
    assert main(["models"]) == 2, "the SIGTERM of the run before is not this run's"
    assert "needs the Python package 'no_such_package_here'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the callback's, as Python prints it
def test_ctrl_c_that_an_import_callback_could_not_raise_still_stops_the_start(capsys, monkeypatch):
    """Ctrl-C while the verbs were imported at start-up, as the import system's weakref callback of a module lock ran
    (``_get_module_lock.<locals>.cb``): Python printed "Exception ignored in: ..." and the run went on."""
    import signal
    import weakref

    import rtstereo.cli as cli
    from rtstereo.cli import models

    build_parser, went_on = cli.build_parser, []

    def importing():
        class ModuleLock:
            pass

        lock = ModuleLock()
        ref = weakref.ref(lock, lambda ref: signal.raise_signal(signal.SIGINT))  # Ctrl-C as the callback runs
        del lock  # the callback's KeyboardInterrupt cannot be raised: Python prints it and goes on
        assert ref() is None
        return build_parser()

    monkeypatch.setattr(cli, "build_parser", importing)
    monkeypatch.setattr(models, "run", lambda args: went_on.append(args))
    assert main(["models"]) == 130
    assert not went_on
    assert capsys.readouterr().err.endswith("rtstereo models: interrupted\n")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_the_progress_bars_are_imported_at_the_start_is_one_line(capsys, monkeypatch):
    """SIGTERM as tqdm was imported, after the verbs and before the verb ran, ended in a traceback (on a busy machine
    the import took long enough for `kill` a second after the start to land there)."""
    import importlib.abc

    from rtstereo.cli import models

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "rtstereo.progress":
                raise KeyboardInterrupt
            return None

    ran = []
    monkeypatch.delitem(sys.modules, "rtstereo.progress", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    monkeypatch.setattr(models, "run", lambda args: ran.append(args))
    try:
        code = main(["models"])
    except KeyboardInterrupt:  # caught here, or pytest would take it for the user's and stop the session
        pytest.fail("the interruption escaped main(): a traceback")
    assert code == 130 and capsys.readouterr().err == "rtstereo models: interrupted\n"
    assert not ran


def test_a_path_name_too_long_for_the_file_system_is_one_line(capsys, tmp_path):
    """`--calib`, `--rectify` or `--model` with a name over the file system's limit: Path.exists() raised OSError
    (File name too long) and the run ended in a traceback."""
    for side in ("l", "r"):
        cv2.imwrite(str(tmp_path / f"{side}.png"), np.zeros((32, 48, 3), np.uint8))
    pair = [str(tmp_path / "l.png"), str(tmp_path / "r.png"), "-o", str(tmp_path / "o")]
    for option, value in (("--calib", "x" * 5000), ("--model", "x" * 4995 + ".onnx")):
        code = main(["predict", *pair, option, value])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err == (
            "rtstereo predict: error: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (5000 characters): no file can have this name "
            "(File name too long)\n"
        )


def test_a_missing_package_without_ctrl_c_is_still_an_error(capsys, monkeypatch):
    from rtstereo.cli import models
    from rtstereo.errors import MissingDependencyError

    def run(args):
        raise MissingDependencyError("the ONNX Runtime backend needs the Python package 'onnxruntime'")

    monkeypatch.setattr(models, "run", run)
    assert main(["models"]) == 2
    assert capsys.readouterr().err.startswith("rtstereo models: error: the ONNX Runtime backend needs")


@pytest.mark.parametrize("output", ["taken", "taken/left.pfm", "taken/sub/"])
def test_one_pair_to_an_output_that_cannot_be_written_is_refused_before_the_model_runs(
    capsys, tmp_path, pair_files, monkeypatch, output
):
    """A batch checks its folder first; one pair loaded the model and ran it (a minute for a large pair, its
    warnings printed) before saying the output could not be written."""
    (tmp_path / "taken").write_text("a file")

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("rtstereo.cli.predict.predictor_from_args", never)
    code, out, err = run_cli(capsys, "predict", *pair_files, "-m", "sgbm", "-o", f"{tmp_path}/{output}")
    assert code == 2 and out == ""
    assert (
        err
        == f"rtstereo predict: error: cannot write {tmp_path / output}: {tmp_path / 'taken'} is a file, not a folder\n"
    )


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="a device file")
def test_a_device_given_as_the_output_folder_is_called_a_device(capsys, pair_files):
    """-o /dev/null was refused as "/dev/null is a file, not a folder"."""
    code, out, err = run_cli(capsys, "predict", *pair_files, "-m", "sgbm", "-o", "/dev/null")
    assert code == 2 and out == ""
    assert err == "rtstereo predict: error: cannot write /dev/null: /dev/null is a device, not a folder\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_given_as_a_file_is_named_as_one_not_as_missing(capsys, tmp_path, pair_files):
    """--calib <(cat calib.json), a process substitution, said 'calibration file not found: /dev/fd/63'; a pipe
    exists, but the readers read a file twice and cannot read it so."""
    from rtstereo.io import read_image

    lp, rp = pair_files
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    said = f"{pipe} is not a regular file (a pipe, a device or a socket): save it to a file and give that\n"
    code, _, err = run_cli(capsys, "predict", lp, rp, "--calib", pipe, "--format", "depth", "-o", tmp_path / "o")
    assert code == 2 and err == f"rtstereo predict: error: calibration file {said}"
    code, _, err = run_cli(capsys, "predict", pipe, rp, "-o", tmp_path / "o")
    assert code == 2 and err == f"rtstereo predict: error: left image {said}"
    code, _, err = run_cli(capsys, "compare", pipe, lp)
    assert code == 2 and err == f"rtstereo compare: error: file {said}"
    with pytest.raises(InputError, match="is not a regular file"):
        read_image(pipe)
    code, _, err = run_cli(capsys, "predict", tmp_path / "none.png", rp, "-o", tmp_path / "o")
    assert code == 2 and err == f"rtstereo predict: error: left image not found: {tmp_path / 'none.png'}\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("name", ["d.pfm", "d.npy", "m.onnx", "m.pt"])
def test_the_other_readers_name_a_pipe_as_one_too(tmp_path, name):
    """They said 'file not found: d.pfm' (read_disparity, read_pfm), 'ONNX model not found' or 'weights file not
    found' of a pipe that exists, where the image and calibration readers said what it is."""
    from rtstereo.errors import CheckpointError, RtStereoError
    from rtstereo.io import read_disparity
    from rtstereo.models.checkpoint import read_torch_file
    from rtstereo.runtime.providers import open_session

    read = {".pfm": read_disparity, ".npy": read_disparity, ".onnx": open_session, ".pt": read_torch_file}
    pipe = tmp_path / name
    os.mkfifo(pipe)
    with pytest.raises(RtStereoError, match=f"{re.escape(str(pipe))} is not a regular file \\(a pipe") as caught:
        read[pipe.suffix](pipe)
    assert isinstance(caught.value, CheckpointError if name.startswith("m") else InputError)
    pipe.unlink()
    with pytest.raises(RtStereoError, match=f"not found: {re.escape(str(pipe))}$"):
        read[pipe.suffix](pipe)


@pytest.mark.parametrize("verb", ["models", "bench"])
def test_a_file_given_as_the_model_that_is_no_model_is_a_model_file_in_models_and_bench(capsys, tmp_path, verb):
    """predict and load called it a model file; models FILE and bench FILE still a 'weights file', which no one had
    given, expected to be a state dict."""
    pytest.importorskip("torch")
    path = tmp_path / "img.pt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    argv = (verb, path) if verb == "models" else (verb, path, "--sizes", "48x96", "-o", tmp_path / "b")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err == (
        f"rtstereo {verb}: error: cannot read model file {path}: a PNG image, not a PyTorch file; "
        "expected an rtstereo checkpoint or an exported .onnx file\n"
    )


def test_one_pair_summary_says_a_map_with_holes_is_not_100_percent_dense():
    """rtnet-v5 on the example pair left 7 of its 76800 pixels invalid: 'density 100.0 %', as a complete map reads."""
    from rtstereo.cli.predict import _summary
    from rtstereo.types import DisparityResult

    d = np.ones((240, 320), np.float32)
    result = DisparityResult(d, timings_ms={"total": 1.0})
    assert _summary("left", "m", result).endswith("density 100.0 %")
    d = d.copy()
    d.flat[:7] = np.nan
    assert _summary("left", "m", DisparityResult(d, timings_ms={"total": 1.0})).endswith("density 99.99 %")
    d[:] = np.nan
    d.flat[:7] = 1.0
    assert _summary("left", "m", DisparityResult(d, timings_ms={"total": 1.0})).endswith("density 0.01 %")


def test_eval_help_says_the_hybrid_searches_each_scenes_range_as_it_does(tmp_path, capsys):
    """eval --help said classical methods search each scene's own range: the hybrid's SGBM does too (16 px on
    Tsukuba, where predict and bench search 192), which a user comparing eval with predict was not told."""
    from rtstereo.cli import build_parser

    description = " ".join(build_parser().verb_parsers["eval"].description.split())
    assert "Classical methods, and the hybrid's SGBM (default), search each scene's own disparity range" in description
    assert "(predict and bench search the model's default, 192 px)" in description
    scene = write_middlebury_scene(tmp_path / "data" / "scene", *make_textured_pair(64, 256, disparity_px=6), 6.0)
    (scene / "calib.txt").write_text("cam0=[100 0 128; 0 100 32; 0 0 1]\ncam1=[100 0 128; 0 100 32; 0 0 1]\nndisp=32\n")
    assert main(["eval", "--model", "default", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "-q"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "out" / "hybrid.json").read_text())
    assert [s["settings"]["max_disp"] for s in report["scenes"]] == [32], report["scenes"]


def test_predict_says_when_a_map_has_disparities_of_the_images_width_or_more(capsys, tmp_path, shared):
    """default gave disparities of 33-38 px on Middlebury's cones at 17x33 (under 6 px there), with no word: every one
    is a match left of the right view, whatever its column. They are said, and kept (not clipped, not removed)."""
    folder = shared("data", "real", "middlebury2003", "cones")
    for name, side, example in (("im2.png", "L", "left.png"), ("im6.png", "R", "right.png")):
        (tmp_path / side).mkdir()
        small = cv2.resize(cv2.imread(str(folder / name)), (33, 17), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(tmp_path / side / "cones.png"), small)
        cv2.imwrite(str(tmp_path / side / "example.png"), cv2.imread(str(EXAMPLES / example)))
    code, _, err = run_cli(capsys, "predict", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "out")
    assert code == 0, err
    disparity = read_disparity(tmp_path / "out" / "cones.pfm")
    beyond = int(np.count_nonzero(disparity >= 33))
    said = re.findall(r"warning: (\w+): .* of the map .* or more, the width of the image: their match would lie", err)
    assert beyond > 0 and said == ["cones"], err
    assert f"cones: {beyond} pixels of the map ({100 * beyond / 561:.1f} %) have a disparity of 33 px or more" in err


class _FullDisk:
    """stdout on a full disk (``> result.json``): each write fails, or (``at_flush``) the flush of what was buffered."""

    def __init__(self, at_flush: bool = False):
        self.at_flush = at_flush

    def write(self, text):
        if not self.at_flush:
            raise OSError(28, "No space left on device")
        return len(text)

    def flush(self):
        if self.at_flush:
            raise OSError(28, "No space left on device")


@pytest.mark.parametrize("at_flush", [False, True])
@pytest.mark.parametrize("argv", [["models"], ["models", "sgbm"], ["predict", "L", "R", "--model", "sgbm"]])
def test_a_result_that_stdout_cannot_take_is_one_line_and_exit_code_1_in_every_verb(
    monkeypatch, capsys, pair_files, argv, at_flush
):
    # only compare said so: the others ended in a traceback (OSError from print), or at exit after a buffered print
    argv = [{"L": str(pair_files[0]), "R": str(pair_files[1])}.get(word, word) for word in argv]
    monkeypatch.setattr(sys, "stdout", _FullDisk(at_flush))
    assert main([*argv, "--max-disp", "16"] if argv[0] == "predict" else argv) == 1
    sys.stdout.close()  # os.devnull, put in its place so that the flush at exit does not fail again
    assert capsys.readouterr().err == (
        f"rtstereo {argv[0]}: error: cannot write the result to stdout: No space left on device\n"
    )


def test_a_closed_stdout_is_one_line_and_exit_code_1(monkeypatch, capsys):
    # `rtstereo models >&-`: Python has no sys.stdout, and print() ended in AttributeError ('NoneType' ... 'write')
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["models"]) == 1
    sys.stdout.close()  # os.devnull, put in its place
    assert capsys.readouterr().err == "rtstereo models: error: cannot write the result to stdout: it is closed\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "sgbm", "--threads", "x"], "argument --threads: expected a whole number, got 'x'"),
        (["video", "a", "b", "--stride", "1.5"], "argument --stride: expected a whole number, got '1.5'"),
        (["live", "--camera-fps", "abc"], "argument --camera-fps: expected a number, got 'abc'"),
        (["synth", "abc"], "argument N: expected a whole number, got 'abc'"),
    ],
)
def test_a_number_option_given_no_number_is_told_in_the_projects_words(capsys, argv, message):
    # argparse's "invalid int value: 'x'" / "invalid float value" named Python types, where --max-disp said this
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"rtstereo {argv[0]}: error: {message} (see `rtstereo {argv[0]} --help`)\n"
