"""``rtstereo predict`` on batches: a bad pair is listed and the rest done, exit codes, resume, manifests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rtstereo.cli import main

from ..conftest import make_textured_pair
from .conftest import SGBM_ARGS, write_pairs


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_folder_run_lists_the_bad_pair_does_the_rest_and_exits_1(capsys, tmp_path, three_pairs):
    left, right = three_pairs
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "out", *SGBM_ARGS, "-q")
    assert code == 1
    assert f"failed: 01 ({left / '01.png'}, {right / '01.png'}): cannot read {left / '01.png'}" in err
    assert "1 pair failed: 01" in err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names[:2] == [".00.made-with.json", ".02.made-with.json"]  # what they were made with, for a rerun
    assert names[2:] == ["00.json", "00.pfm", "00.png", "00_color.png", "02.json", "02.pfm", "02.png", "02_color.png"]


def test_a_failed_pair_whose_name_holds_a_line_break_is_named_whole_on_one_line(capsys, tmp_path, three_pairs):
    """A left image named "c<newline>d.png" failed as "cannot read .../c", on a line of its own, then "d.png"."""
    left, right = three_pairs
    (left / "01.png").rename(left / "c\nd.png")
    (right / "01.png").rename(right / "c\nd.png")
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "out", *SGBM_ARGS, "-q")
    assert code == 1
    said = f"failed: c\\nd ({left}/c\\nd.png, {right}/c\\nd.png): cannot read {left}/c\\nd.png: not an image"
    assert said in err, err
    assert err.endswith(": 1 pair failed: c\\nd\n") and len(err.splitlines()) == 2, err


def test_file_urls_of_folders_are_those_folders_batch(capsys, tmp_path, three_pairs):
    """file:///.../L/ said 'file not found: .../L' of the folder that is there."""
    left, right = three_pairs
    code, out, err = run_cli(capsys, "predict", left.as_uri(), right.as_uri(), "-o", tmp_path / "out", *SGBM_ARGS)
    assert code == 1 and "3 pairs: 2 done, 0 skipped, 1 failed" in out
    assert f"failed: 01 ({left / '01.png'}, {right / '01.png'})" in err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.pfm")) == ["00.pfm", "02.pfm"]


def test_a_folder_in_the_way_of_one_output_leaves_none_of_the_pairs_files(capsys, tmp_path, three_pairs):
    """00.png, 00.pfm and 00_color.png were renamed into place before 00.json's rename failed: a pair is all or none."""
    left, right = three_pairs
    (tmp_path / "out" / "00.json").mkdir(parents=True)
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "out", *SGBM_ARGS, "-q")
    assert code == 1
    assert f"failed: 00 ({left / '00.png'}, {right / '00.png'}): cannot write {tmp_path / 'out' / '00.json'}: a " in err
    assert sorted(p.name for p in (tmp_path / "out").glob("00*")) == ["00.json"]  # the folder alone
    assert sorted(p.name for p in (tmp_path / "out").glob("02*")) == ["02.json", "02.pfm", "02.png", "02_color.png"]


def test_rerun_skips_complete_pairs_and_overwrite_redoes_them(capsys, tmp_path, three_pairs):
    left, right = three_pairs
    argv = ["predict", left, right, "-o", tmp_path / "out", "--format", "png16", *SGBM_ARGS]
    run_cli(capsys, *argv)
    before = (tmp_path / "out" / "00.png").stat().st_mtime_ns
    code, out, _ = run_cli(capsys, *argv)
    assert code == 1 and "3 pairs: 0 done, 2 skipped (complete outputs exist" in out and ", 1 failed" in out
    assert (tmp_path / "out" / "00.png").stat().st_mtime_ns == before
    code, out, _ = run_cli(capsys, *argv, "--overwrite")
    assert "2 done, 0 skipped, 1 failed" in out


def test_a_rerun_redoes_the_pairs_whose_images_changed_and_skips_the_others(capsys, tmp_path):
    """New captures saved under the same names had their old maps kept by a rerun, which skipped them unsaid."""
    import os
    import shutil

    left, right = write_pairs(tmp_path / "in", 3)
    argv = ["predict", left, right, "-o", tmp_path / "out", "--format", "pfm", *SGBM_ARGS, "-q"]
    assert run_cli(capsys, *argv)[0] == 0
    before = {n: (tmp_path / "out" / f"{n}.pfm").read_bytes() for n in ("00", "01")}
    shutil.copyfile(left / "02.png", left / "01.png")  # pair 01 captured again, under its old names
    shutil.copyfile(right / "02.png", right / "01.png")
    os.utime(left / "01.png", ns=(0, 0))  # a copy that kept an old time of change
    code, out, err = run_cli(capsys, *argv[:-1])
    assert code == 0 and "3 pairs: 1 done, 2 skipped" in out, out + err
    assert (tmp_path / "out" / "00.pfm").read_bytes() == before["00"]
    assert (tmp_path / "out" / "01.pfm").read_bytes() == (tmp_path / "out" / "02.pfm").read_bytes() != before["01"]
    code, out, _ = run_cli(capsys, *argv[:-1])  # the pair's record is its new images': skipped now
    assert code == 0 and "0 done, 3 skipped" in out, out


def test_a_rerun_with_another_calibration_or_setting_is_refused_not_skipped(capsys, tmp_path):
    """A rerun with a new --calib skipped the finished pairs and kept their depths of the old calibration."""
    left, right = write_pairs(tmp_path / "in", 2)
    for baseline_px, name in ((84, "c1.txt"), (42, "c2.txt")):  # KITTI P1 holds -fx * baseline: 0.12 m, 0.06 m
        lines = ["P0: 700 0 48 0 0 700 32 0 0 0 1 0", f"P1: 700 0 48 -{baseline_px} 0 700 32 0 0 0 1 0"]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["predict", left, right, "-o", out, "--format", "png16,depth", "--model", "sgbm"]
    assert run_cli(capsys, *argv, "--max-disp", 16, "--calib", tmp_path / "c1.txt")[0] == 0
    depth = (out / "00_depth.pfm").read_bytes()
    code, _, err = run_cli(capsys, *argv, "--max-disp", 16, "--calib", tmp_path / "c2.txt")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"rtstereo predict: error: {out} holds the outputs of 2 pairs (00, 01) made with another ")
    assert "calibration (--calib)" in err and "--overwrite" in err and (out / "00_depth.pfm").read_bytes() == depth
    code, _, err = run_cli(capsys, *argv, "--max-disp", 32, "--calib", tmp_path / "c1.txt")
    assert code == 2 and "model setting (--set, --max-disp, --iters)" in err and "calibration" not in err
    code, out_text, _ = run_cli(capsys, *argv, "--max-disp", 16, "--calib", tmp_path / "c1.txt")  # the same
    assert code == 0 and "0 done, 2 skipped" in out_text
    assert run_cli(capsys, *argv, "--max-disp", 16, "--calib", tmp_path / "c2.txt", "--overwrite")[0] == 0
    assert (out / "00_depth.pfm").read_bytes() != depth
    code, out_text, _ = run_cli(capsys, *argv, "--max-disp", 16, "--calib", tmp_path / "c2.txt")
    assert code == 0 and "0 done, 2 skipped" in out_text


def test_files_an_overwrite_with_other_options_left_alone_are_redone_not_skipped(capsys, tmp_path):
    """--overwrite --model bm --format color replaced the colour maps and recorded bm for the whole pair: a rerun with
    bm then skipped the pairs, keeping the 16-bit maps, PFMs and sidecars of sgbm as bm's."""
    import json

    left, right = write_pairs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)[0] == 0
    bm = ["--model", "bm", "--max-disp", "16"]
    assert run_cli(capsys, "predict", left, right, "-o", out, *bm, "--format", "color", "--overwrite")[0] == 0
    code, text, _ = run_cli(capsys, "predict", left, right, "-o", out, *bm)
    assert code == 0 and "2 pairs: 2 done, 0 skipped" in text
    assert json.loads((out / "00.json").read_text())["model"] == "bm"
    code, text, _ = run_cli(capsys, "predict", left, right, "-o", out, *bm, "--format", "npy")  # a format added
    assert code == 0 and "2 done, 0 skipped" in text
    code, text, _ = run_cli(capsys, "predict", left, right, "-o", out, *bm)  # the same options: all there
    assert code == 0 and "0 done, 2 skipped" in text
    code, _, err = run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)  # bm's files, as before
    assert code == 2 and "made with another model (--model)" in err


def test_one_pair_redone_with_other_options_is_not_skipped_by_a_batch_rerun(capsys, tmp_path):
    """One pair given as two files wrote no record of its options and removed the batch's: a batch rerun then skipped
    it on its files alone, keeping bm's colour map as sgbm's."""
    import json

    left, right = write_pairs(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)[0] == 0
    bm = ["--model", "bm", "--max-disp", "16", "--format", "color"]
    assert run_cli(capsys, "predict", left / "00.png", right / "00.png", "-o", out, *bm)[0] == 0
    code, text, _ = run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)
    assert code == 0 and "1 done, 1 skipped" in text, text
    assert json.loads((out / "00.json").read_text())["model"] == "sgbm"
    assert run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)[1].count("0 done, 2 skipped") == 1


def test_a_rerun_over_fewer_pairs_names_the_earlier_outputs_it_leaves(capsys, tmp_path):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)[0] == 0
    (left / "02.png").unlink()
    (right / "02.png").unlink()
    (out / "notes.png").write_bytes(b"a file of the user's: no pair's outputs")
    code, _, err = run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS, "--overwrite")
    assert code == 0, err
    said = f"note: {out} also holds the outputs of 1 pair not in this run (02), from an earlier run; they are left"
    assert said in err
    assert (out / "02.png").is_file() and (out / "notes.png").is_file()  # nothing removed
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "fresh", *SGBM_ARGS)
    assert code == 0 and "not in this run" not in err, err


def test_a_rerun_with_fewer_formats_takes_no_preview_for_a_pair_of_its_own(capsys, tmp_path):
    """After a run with the default formats, --format png16 over the same pairs said the folder held the outputs
    of pairs 00_color and 01_color: each pair's preview, read as a pair's 16-bit PNG."""
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS)[0] == 0
    code, _, err = run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS, "--format", "png16")
    assert code == 0 and "not in this run" not in err, err
    code, _, err = run_cli(capsys, "predict", f"{left}/0[01].png", f"{right}/0[01].png", "-o", out, *SGBM_ARGS)
    assert code == 0 and "holds the outputs of 1 pair not in this run (02)," in err, err


def test_fail_fast_stops_after_the_first_failure(capsys, tmp_path, three_pairs):
    left, right = three_pairs
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "out", *SGBM_ARGS, "--fail-fast")
    assert code == 1 and "1 done, 0 skipped, 1 failed, 1 not reached (--fail-fast)" in out
    assert not list((tmp_path / "out").glob("02*"))
    # on stderr too, as eval says it: with --quiet, which drops the summary, nothing said that a pair was left undone
    said = "rtstereo predict: --fail-fast: stopped at the first failure; 1 of 3 pairs not reached"
    assert err.strip().splitlines()[-1] == said, err
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "q", *SGBM_ARGS, "--fail-fast", "-q")
    assert (code, out) == (1, "") and err.strip().splitlines()[-1] == said, err


def test_a_clean_batch_exits_0_and_writes_its_summary(capsys, tmp_path):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    summary = tmp_path / "s.csv"
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--summary", summary)
    assert code == 0, err
    assert "2 pairs: 2 done, 0 skipped, 0 failed" in out and len(summary.read_text().splitlines()) == 3


def test_a_rerun_s_summary_gives_the_skipped_pairs_size_and_density(capsys, tmp_path, three_pairs):
    """A rerun's table gave each skipped pair 0x0 px and no density, as for a pair that could not be read."""
    import csv

    left, right = three_pairs
    summary = tmp_path / "s.csv"
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--summary", summary, "-q"]
    rows = []
    for _ in range(2):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, err  # the damaged pair 01 fails both times
        with summary.open(newline="") as f:
            rows.append({row["name"]: row for row in csv.DictReader(f)})
    first, rerun = rows
    assert [rerun[name]["status"] for name in ("00", "01", "02")] == ["skipped", "failed", "skipped"]
    for name in ("00", "02"):
        figures = ("height_px", "width_px", "density")
        assert [rerun[name][key] for key in figures] == [first[name][key] for key in figures] != ["0", "0", "nan"]
    assert [rerun["01"][key] for key in ("height_px", "width_px", "density")] == ["0", "0", "nan"]


def test_one_pair_given_as_two_files_writes_the_summary_asked_for_and_always_writes(capsys, tmp_path):
    """`--summary` with one pair exited 0 and wrote no table: it was ignored."""
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 1)
    summary = tmp_path / "s.csv"
    for _ in range(2):  # the second run writes again, as one pair given as two files always does
        code, out, err = run_cli(
            capsys, "predict", left / "00.png", right / "00.png", "-o", tmp_path / "o", *SGBM_ARGS, "--summary", summary
        )
        assert code == 0, err
        rows = summary.read_text().splitlines()
        assert len(rows) == 2 and ",00," in rows[1] and ",done," in rows[1], rows


def test_manifest_run(capsys, tmp_path, three_pairs):
    manifest = tmp_path / "in" / "pairs.csv"
    manifest.write_text(
        "left,right,name\nL/00.png,R/00.png,seq/a\n# a comment line\nL/01.png,R/01.png,seq/b\nL/02.png,R/02.png,c\n"
    )
    code, out, err = run_cli(
        capsys, "predict", "--pairs", manifest, "-o", tmp_path / "o", "--format", "pfm", *SGBM_ARGS
    )
    # The failed pair names its manifest line (as the file's own errors do), line 4 in an editor
    in_dir = tmp_path / "in"
    assert code == 1 and f"failed: seq/b ({manifest} line 4: {in_dir / 'L/01.png'}, {in_dir / 'R/01.png'}): " in err
    assert f"1 pair failed: seq/b ({manifest} line 4)" in err
    assert sorted(str(p.relative_to(tmp_path / "o")) for p in (tmp_path / "o").rglob("*.pfm")) == ["c.pfm", "seq/a.pfm"]


def test_a_manifest_that_lists_a_pair_twice_is_warned_about_once_naming_its_lines(capsys, tmp_path):
    """The same files on two lines ran twice, under numbered names, without a word."""
    write_pairs(tmp_path / "in", 2)
    manifest = tmp_path / "in" / "pairs.csv"
    manifest.write_text("left,right\nL/00.png,R/00.png\nL/01.png,R/01.png\n./L/00.png,R//00.png\nL/00.png,R/00.png\n")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        code, out, err = run_cli(capsys, "predict", "--pairs", manifest, "-o", tmp_path / "o", "-q", *SGBM_ARGS)
    assert code == 0 and len(list((tmp_path / "o").glob("*.pfm"))) == 4
    assert [str(w.message) for w in said] == [
        f"manifest {manifest}: line 4 (as line 2), line 5 (as line 2) list pairs again under another name: each name "
        "gets its own files of the same pair"
    ]
    manifest.write_text("left,right\nL/00.png,R/00.png\nL/01.png,R/01.png\nL/00.png,R/01.png\n")  # not a repeat
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        code, out, err = run_cli(capsys, "predict", "--pairs", manifest, "-o", tmp_path / "o2", "-q", *SGBM_ARGS)
    assert (code, err, said) == (0, "", [])


def test_a_one_pair_manifest_is_a_batch(capsys, tmp_path, three_pairs):
    manifest = tmp_path / "in" / "pairs.csv"
    manifest.write_text("left,right\nL/01.png,R/01.png\n")
    code, out, err = run_cli(capsys, "predict", "--pairs", manifest, "-o", tmp_path / "o", *SGBM_ARGS)
    assert code == 1 and "1 pair: 0 done, 0 skipped, 1 failed" in out


def test_a_folder_or_glob_of_one_pair_is_a_batch_as_a_one_pair_manifest_is(capsys, tmp_path):
    """It ran as one pair given as two files: redone at every rerun, and a failure was exit code 2, unlisted."""
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 1)
    for n, inputs in enumerate(((left, right), (left / "*.PNG", right / "*.png"))):
        out_dir = tmp_path / f"o{n}"
        code, out, err = run_cli(capsys, "predict", *inputs, "-o", out_dir, *SGBM_ARGS)
        assert code == 0 and "1 pair: 1 done, 0 skipped, 0 failed" in out, err
        code, out, err = run_cli(capsys, "predict", *inputs, "-o", out_dir, *SGBM_ARGS)
        assert code == 0 and "1 pair: 0 done, 1 skipped" in out, err
    (left / "00.png").write_bytes(b"not an image")
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o3", *SGBM_ARGS)
    assert code == 1 and "1 pair: 0 done, 0 skipped, 1 failed" in out and "failed: 00 (" in err
    # -o one file still takes the pair alone, whose error is the command's
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "d.pfm", *SGBM_ARGS)
    assert code == 2 and "cannot read" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "{left}", "{right}", "--pairs", "{tmp}/p.csv"], "not both"),
        (["predict", "{left}"], "expected RIGHT after LEFT"),
        (["predict", "{left}", "{right}", "--workers", "2"], "--workers applies to --engine ray only"),
        (["predict", "{left}", "{right}", "--ray-address", "auto"], "--ray-address applies to --engine ray only"),
        (["predict", "{left}", "{right}", "--engine", "ray"], "give an output folder with -o"),
        (["predict", "{left}/00.png", "{right}/00.png", "--engine", "ray", "-o", "{tmp}/d.pfm"], "an output folder"),
        (["predict", "{left}", "{right}", "--engine", "ray", "--workers", "0", "-o", "{tmp}/o"], "must be >= 1"),
        (["predict", "{left}", "{right}", "-o", "{tmp}/o", "--summary", "{tmp}/s.json"], "expected a .parquet or"),
        (["predict", "{left}", "{right}", "-o", "{blocker}/o"], "cannot create output folder"),
        (["predict", "{left}", "{right}", "-o", "{tmp}/o", "--summary", "{blocker}/s.csv"], "cannot write the summary"),
        (
            ["predict", "{left}", "{right}", "-o", "{tmp}/o", "--summary", "{tmp}/d.csv"],
            "is a folder: give a file name",
        ),
        # it wrote the file s.csv, where -o x/ is a folder
        (
            ["predict", "{left}", "{right}", "-o", "{tmp}/o", "--summary", "{tmp}/s.csv/"],
            "s.csv/ ends with a folder separator, which names a folder: give a file name",
        ),
        (["predict", "--pairs", "{tmp}/p.csv", "-o", "{tmp}/o", "--summary", "{tmp}/p.csv"], "is the manifest --pairs"),
    ],
)
def test_batch_usage_errors_are_one_line_and_exit_2(capsys, tmp_path, three_pairs, argv, message):
    left, right = three_pairs
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "d.csv").mkdir()
    manifest = "left,right\nin/L/00.png,in/R/00.png\n"
    (tmp_path / "p.csv").write_text(manifest)
    values = {"left": left, "right": right, "tmp": tmp_path, "blocker": blocker}
    code, _, err = run_cli(capsys, *[a.format(**values) for a in argv], *SGBM_ARGS)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "p.csv").read_text() == manifest and not (tmp_path / "s.csv").exists()


def test_a_damaged_first_pair_skips_the_rectification_check_and_is_reported(capsys, tmp_path):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2, corrupt=(0,))
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "-q")
    assert code == 1 and "failed: 00" in err and (tmp_path / "o" / "01.png").is_file()


def test_the_rectification_check_of_a_batch_goes_on_past_pairs_it_cannot_read_or_judge(capsys, tmp_path):
    """A damaged first pair left the whole batch unchecked: its unrectified pairs ran without a word."""
    import cv2
    import numpy as np

    examples = Path(__file__).resolve().parents[2] / "examples"
    left, right = cv2.imread(str(examples / "left.png")), cv2.imread(str(examples / "right.png"))
    height, width = left.shape[:2]
    lower = cv2.warpAffine(right, np.float32([[1, 0, 0], [0, 1, 2]]), (width, height), borderMode=cv2.BORDER_REFLECT)
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    (tmp_path / "L" / "00.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    cv2.imwrite(str(tmp_path / "R" / "00.png"), right)
    cv2.imwrite(str(tmp_path / "L" / "01.png"), np.full_like(left, 120))  # too plain to be judged
    cv2.imwrite(str(tmp_path / "R" / "01.png"), np.full_like(left, 121))
    cv2.imwrite(str(tmp_path / "L" / "02.png"), left)
    cv2.imwrite(str(tmp_path / "R" / "02.png"), lower)
    argv = ("predict", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "o", "--model", "sgbm", "--max-disp", "32")
    code, _, err = run_cli(capsys, *argv, "-q")
    assert code == 1 and "failed: 00" in err
    assert "warning: 02: the pair does not look rectified: rows are off by up to 2.0 px (the right view lies 2.0" in err
    assert err.count("does not look rectified") == 1, err
    code, _, err = run_cli(capsys, *argv, "-q", "--overwrite", "--no-rectification-check")
    assert code == 1 and "rectified" not in err, err
    # --align-rows says of the first pair it can read that it left it alone; the next one is aligned and judged so
    code, _, err = run_cli(capsys, *argv, "-q", "--overwrite", "--align-rows")
    assert code == 1 and "warning: 01: --align-rows: too few matched features (0, at least 20)" in err, err
    assert "rectified" not in err, err


def test_a_pair_beyond_the_png16_range_keeps_its_other_outputs(capsys, tmp_path):
    import cv2

    from ..conftest import make_textured_pair

    left, right = make_textured_pair(48, 400, disparity_px=272)
    cv2.imwrite(str(tmp_path / "l.png"), left)
    cv2.imwrite(str(tmp_path / "r.png"), right)
    argv = ["predict", tmp_path / "l.png", tmp_path / "r.png", "-o", tmp_path / "out", "--model", "sgbm"]
    with pytest.warns(UserWarning, match=r"^l: disparity up to 2\d\d\.\d px does not fit a 16-bit PNG .*--format"):
        code, _, err = run_cli(capsys, *argv, "--max-disp", "288", "-q")
    assert code == 0 and err == ""
    names = ["l.json", "l.pfm", "l.png-not-written.txt", "l_color.png"]
    assert sorted(p.name for p in (tmp_path / "out").glob("[!.]*")) == names


def test_a_batch_pair_beyond_the_png16_range_is_warned_about_and_skipped_by_a_rerun(capsys, tmp_path):
    import cv2

    from ..conftest import make_textured_pair

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i, disparity_px in enumerate((272, 10)):
        left, right = make_textured_pair(48, 400, disparity_px=disparity_px, seed=i)
        cv2.imwrite(str(tmp_path / "L" / f"{i}.png"), left)
        cv2.imwrite(str(tmp_path / "R" / f"{i}.png"), right)
    argv = ["predict", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "out", "--model", "sgbm", "--max-disp", "288"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "2 pairs: 2 done, 0 skipped, 0 failed" in out
    # each of the pair's warnings on a line of its own: a range over half the width (sgbm matches no pixel in the first
    # 288 columns ...), and the PNG not written
    assert "warning: 0: sgbm matches no pixel" in err and "warning: 0: disparity up to 2" in err
    assert "0.png not written" in err
    assert (tmp_path / "out" / "0.png-not-written.txt").is_file() and not (tmp_path / "out" / "0.png").exists()
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "2 pairs: 0 done, 2 skipped" in out and "warning: 0: disparity up to 2" in err
    # the warning said when the pair was predicted is said again from its record, as the note is: a rerun said the
    # note alone, hiding that the range was as wide as the image
    assert "warning: 0: sgbm matches no pixel" in err, err
    assert (tmp_path / "out" / "1.png").is_file() and "warning: 1:" not in err, err  # a pair without warnings


def test_pairs_whose_names_hold_dots_keep_their_own_files_and_resume(capsys, tmp_path):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    for side in (left, right):  # img.00.png, img.01.png: the stems img.00 and img.01 differ only after a dot
        for image in side.iterdir():
            image.rename(side / f"img.{image.name}")
    argv = ["predict", left, right, "-o", tmp_path / "out", "--format", "png16,json", *SGBM_ARGS]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "out").glob("[!.]*"))
    assert names == ["img.00.json", "img.00.png", "img.01.json", "img.01.png"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "2 pairs: 0 done, 2 skipped" in out


def test_a_name_too_long_for_the_file_system_fails_that_pair_only(capsys, tmp_path, three_pairs):
    manifest = tmp_path / "in" / "pairs.csv"
    manifest.write_text(f"left,right,name\nL/00.png,R/00.png,{'x' * 300}\nL/02.png,R/02.png,ok\n")
    argv = ["predict", "--pairs", manifest, "-o", tmp_path / "out", "--format", "png16", *SGBM_ARGS]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and "Traceback" not in err
    assert "2 pairs: 1 done, 0 skipped, 1 failed" in out and f"failed: {'x' * 300} (" in err
    assert (tmp_path / "out" / "ok.png").is_file()


def test_a_pair_whose_name_is_another_pairs_plus_a_format_ending_does_not_replace_its_files(capsys, tmp_path):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    for side in (left, right):  # a.png and a_color.png: pair a's preview would be pair a_color's disparity
        (side / "00.png").rename(side / "a.png")
        (side / "01.png").rename(side / "a_color.png")
    code, _, err = run_cli(
        capsys, "predict", left, right, "-o", tmp_path / "out", "--format", "png16,color", *SGBM_ARGS
    )
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "out").glob("[!.]*"))
    # named by their file names, which no other pair's outputs can be
    assert names == ["a.png.png", "a.png_color.png", "a_color.png.png", "a_color.png_color.png"]
    manifest = tmp_path / "in" / "pairs.csv"
    manifest.write_text("left,right,name\nL/a.png,R/a.png,a\nL/a_color.png,R/a_color.png,a_color\n")
    argv = ["predict", "--pairs", manifest, "-o", tmp_path / "named", *SGBM_ARGS]
    code, _, err = run_cli(capsys, *argv, "--format", "png16,color")
    assert code == 2 and "pairs 'a' and 'a_color' would both write" in err and "a_color.png" in err
    assert not (tmp_path / "named").exists()
    code, _, err = run_cli(capsys, *argv, "--format", "pfm,json")  # nothing in common: both written
    assert code == 0, err


def test_outputs_that_would_replace_an_input_image_are_refused_before_any_work(capsys, tmp_path, monkeypatch):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    before = {p: p.read_bytes() for p in left.iterdir()}
    monkeypatch.chdir(left)
    for output, said in ((".", "pair '00' would write 00.png over the input image 00.png"), ("00.png", "-o 00.png is")):
        code, _, err = run_cli(capsys, "predict", "00.png", right / "00.png", "-o", output, *SGBM_ARGS)
        assert code == 2 and said in err, err
    code, _, err = run_cli(capsys, "predict", left, right, "-o", left, *SGBM_ARGS)  # a folder into itself
    assert code == 2 and f"pair '00' would write {left / '00.png'} over the input image" in err
    assert {p: p.read_bytes() for p in left.iterdir()} == before
    code, _, err = run_cli(capsys, "predict", left, right, "-o", left, "--format", "pfm", *SGBM_ARGS)
    assert code == 0, err  # 00.pfm beside 00.png replaces nothing


def test_same_stems_in_sub_folders_are_named_by_their_paths_and_a_rerun_after_adding_one_skips_only_them(
    capsys, tmp_path
):
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 3)
    for side in (left, right):  # seq2/0001.png and seq3/0001.png; seq1/0001.png added later
        for number, seq in (("00", "seq1"), ("01", "seq2"), ("02", "seq3")):
            (side / seq).mkdir()
            (side / f"{number}.png").rename(side / seq / "0001.png")
        (side / "seq1").rename(tmp_path / f"later_{side.name}")
    argv = ["predict", f"{left}/**/*.png", f"{right}/**/*.png", "-o", tmp_path / "out", "--format", "pfm", *SGBM_ARGS]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "2 pairs: 2 done" in out, err
    seq2 = (tmp_path / "out" / "seq2" / "0001.pfm").read_bytes()
    for side in (left, right):
        (tmp_path / f"later_{side.name}").rename(side / "seq1")
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "3 pairs: 1 done, 2 skipped" in out, err
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.pfm")) == [
        "seq1/0001.pfm",
        "seq2/0001.pfm",
        "seq3/0001.pfm",
    ]
    assert (tmp_path / "out" / "seq2" / "0001.pfm").read_bytes() == seq2


def test_a_warning_every_pair_gives_is_said_once_then_counted_and_kept_per_pair(capsys, tmp_path, monkeypatch):
    """The model's warnings (here: each pair run smaller to fit the memory budget) were Python warnings,
    printed again for every pair of the batch and left out of the summary's warning column."""
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 3)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "260K")
    summary = tmp_path / "s.csv"
    args = ("predict", left, right, "-o", tmp_path / "o", "--model", "sgbm", "--max-disp", "16", "-q")
    code, _, err = run_cli(capsys, *args, "--summary", summary)
    assert code == 0, err
    assert err.count("would need more memory") == 2, err  # the warning, then the count
    # each named: the first in its warning, the others in the count (they were in the --summary table alone)
    assert "rtstereo predict: warning: 00: sgbm on" in err
    assert "rtstereo predict: warning: 2 more pairs gave the same warning as above (sgbm on" in err
    assert "...): 01, 02; each pair's in" in err
    rows = summary.read_text().splitlines()[1:]
    assert len(rows) == 3 and all("would need more memory than the budget" in row for row in rows), rows


def test_a_rerun_removes_the_staging_folder_a_killed_run_left(capsys, tmp_path, three_pairs):
    from ..io.test_atomic import _killed_mid_write

    left, right = three_pairs
    (tmp_path / "o").mkdir()
    _killed_mid_write(tmp_path / "o")
    assert len(list((tmp_path / "o").glob(".*"))) == 2
    run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "-q")
    assert not list((tmp_path / "o").glob(".*partial*"))


def test_what_reading_a_pair_warns_about_is_the_pairs_warning_said_once(capsys, tmp_path):
    """A damaged JPEG decoded anyway: its warning came as a Python warning that broke the progress bar (and, for
    the first pair, read twice: once by the rectification check), and was missing from the summary."""
    import csv

    import cv2

    from ..conftest import make_textured_pair

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i in range(3):
        left, right = make_textured_pair(48, 72, seed=i)
        data = cv2.imencode(".jpg", left)[1].tobytes()
        if i < 2:  # libjpeg: "Corrupt JPEG data: bad Huffman code", and an image all the same
            data = data[:-34] + b"\xff\x00" * 16 + data[-2:]
        (tmp_path / "L" / f"{i}.jpg").write_bytes(data)
        cv2.imwrite(str(tmp_path / "R" / f"{i}.jpg"), right)
    summary = tmp_path / "s.csv"
    argv = ["predict", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "out", *SGBM_ARGS, "--summary", summary]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0
    for i in range(2):
        said = f"rtstereo predict: warning: {tmp_path / 'L' / f'{i}.jpg'}: the image library warned while decoding"
        assert err.count(said) == 1, err
    with open(summary, newline="") as f:
        warned = [row["warning"] for row in csv.DictReader(f)]
    assert [w.startswith(f"{tmp_path / 'L'}") and "Corrupt JPEG data" in w for w in warned] == [True, True, False]


def test_an_output_folder_that_cannot_be_written_is_one_usage_error(capsys, tmp_path, three_pairs, monkeypatch):
    import tempfile

    from rtstereo.io import atomic

    left, right = three_pairs
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    made = tempfile.TemporaryFile

    def denied(*args, dir=None, **kwargs):  # chmod 555 does not stop root, who runs these tests
        if dir is not None and Path(dir) == out_dir:
            raise PermissionError(13, "Permission denied")
        return made(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "TemporaryFile", denied)
    code, out, err = run_cli(capsys, "predict", left, right, "-o", out_dir, *SGBM_ARGS)
    assert code == 2
    assert err == f"rtstereo predict: error: cannot write into output folder {out_dir}: Permission denied\n"
    assert out == "" and list(out_dir.iterdir()) == []


def test_a_summary_that_cannot_be_written_is_refused_before_the_first_pair(capsys, tmp_path, three_pairs):
    """The summary was written after the last pair: the whole batch ran, then exited 2 without its table."""
    left, right = three_pairs
    blocker = tmp_path / "file"
    blocker.write_text("x")
    summary = blocker / "s.csv"
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--summary", summary)
    assert (
        code == 2
        and err == f"rtstereo predict: error: cannot write the summary {summary}: {blocker} is a file, not a folder\n"
    )
    assert out == "" and not (tmp_path / "o").exists()  # nor an empty output folder


def test_a_pattern_the_shell_expanded_is_named_with_the_quotes_it_needs(capsys, tmp_path):
    """`predict L/*.png R/*.png` unquoted: the error listed the files after the first two, and nothing more."""
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    files = [*sorted(left.iterdir()), *sorted(right.iterdir())]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *map(str, files), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "; 4 files came in place of LEFT RIGHT: the shell expanded a pattern, so quote it" in err
    with pytest.raises(SystemExit):
        main(["predict", str(left), str(right), str(files[0])])  # folders: no pattern was expanded
    assert "in place of LEFT RIGHT" not in capsys.readouterr().err


def test_a_parquet_summary_without_pyarrow_is_refused_before_the_first_pair(capsys, tmp_path, monkeypatch):
    import sys

    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--summary", tmp_path / "s.parquet"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and "pip install 'rtstereo[scale]'" in err and len(err.strip().splitlines()) == 1, err
    assert out == "" and not (tmp_path / "o").exists()  # nor an empty output folder


@pytest.mark.parametrize("full_at", ["pfm", "json"])
def test_a_full_disk_stops_the_batch_at_the_first_pair_it_fails(capsys, tmp_path, monkeypatch, full_at):
    """Every pair after the disk filled failed alike, one line each, until the whole batch was ground through."""
    import errno
    import json
    import types

    from rtstereo.io import disparity
    from rtstereo.sinks import files

    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 5)
    written = []

    def fills_the_disk(write):
        def writes_two(*args, **kwargs):
            if len(written) == (2 if full_at == "pfm" else 4):  # json: each pair's sidecar and record of its options
                raise OSError(errno.ENOSPC, "No space left on device", "the file")
            written.append(args)
            return write(*args, **kwargs)

        return writes_two

    if full_at == "pfm":  # under atomic_path: "cannot write P: No space left on device"
        monkeypatch.setattr(disparity, "write_pfm", fills_the_disk(disparity.write_pfm))
    else:  # the sidecar's own OSError: "cannot write P: [Errno 28] No space left on device: 'the file'"
        monkeypatch.setattr(files, "json", types.SimpleNamespace(dumps=fills_the_disk(json.dumps), loads=json.loads))
    out, summary = tmp_path / "out", tmp_path / "s.csv"
    argv = ["predict", left, right, "-o", out, "--format", f"png16,{full_at}", "--summary", summary, *SGBM_ARGS]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 1
    assert err.count("No space left on device") == 2, err  # the pair's failure, then why the batch stopped
    assert (
        f"rtstereo predict: stopped: the disk holding {out} is full (No space left on device): 2 of 5 pairs written, "
        "2 not reached; free space and run the same command again (the pairs written are skipped)"
    ) in err
    assert "5 pairs: 2 done, 0 skipped, 1 failed, 2 not reached (disk full)" in stdout
    records = [".00.made-with.json", ".01.made-with.json"]
    assert sorted(p.name for p in out.iterdir()) == [*records, f"00.{full_at}", "00.png", f"01.{full_at}", "01.png"]
    assert [row.split(",")[4] for row in summary.read_text().splitlines()[1:]] == ["done", "done", "failed"]


def test_a_full_disk_in_a_single_pair_exits_1_as_in_a_batch(capsys, tmp_path, monkeypatch):
    """One pair given as two files exited 2 (a usage error's code) on a full disk, a batch 1."""
    import errno

    from rtstereo.io import disparity

    from .conftest import write_pairs

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "the file")

    monkeypatch.setattr(disparity, "write_pfm", full)
    left, right = write_pairs(tmp_path / "in", 1)
    out = tmp_path / "d.pfm"
    code, _, err = run_cli(capsys, "predict", left / "00.png", right / "00.png", "-o", out, *SGBM_ARGS, "-q")
    assert code == 1, err
    assert err == f"rtstereo predict: error: cannot write {out}: No space left on device\n"


def test_the_12bit_warning_is_said_once_per_run_and_again_by_the_next_run(capsys, tmp_path):
    """A run in the same process after one that had said it said nothing: the warning was once per process."""
    import cv2
    import numpy as np

    from .conftest import BATCH_HW, make_textured_pair

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i in range(3):
        for side, image in zip(("L", "R"), make_textured_pair(*BATCH_HW, disparity_px=3, seed=i)):
            cv2.imwrite(str(tmp_path / side / f"{i}.png"), image[:, :, 0].astype(np.uint16) * 16)  # 12-bit values
    said = "is a 16-bit image whose values stay at or below"
    for run in range(2):
        argv = ["predict", tmp_path / "L", tmp_path / "R", "-o", tmp_path / "out", "--overwrite", *SGBM_ARGS, "-q"]
        code, _, err = run_cli(capsys, *argv)
        assert code == 0 and err.count(said) == 1, (run, err)
    with pytest.warns(UserWarning, match=said):  # one pair, a Python warning (one_voice prints it as a line)
        code, _, _ = run_cli(capsys, "predict", tmp_path / "L" / "0.png", tmp_path / "R" / "0.png", *SGBM_ARGS, "-q")


def test_a_failed_pair_s_warnings_are_said_before_its_failure(capsys, tmp_path):
    """A pair of 12-bit values below 257 in 16-bit files (black at 8 bits) failed as 'the same picture', and the
    warning that says why was kept for the summary table alone."""
    import cv2

    from .conftest import BATCH_HW

    lefts, rights = write_pairs(tmp_path, 2)
    for folder, image in zip((lefts, rights), make_textured_pair(*BATCH_HW, disparity_px=3, seed=5)):
        cv2.imwrite(str(folder / "02.png"), image[:, :, 0].astype(np.uint16))  # 0 once divided by 257
    code, _, err = run_cli(capsys, "predict", lefts, rights, "-o", tmp_path / "out", *SGBM_ARGS, "-q")
    assert code == 1, err
    lines = err.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("rtstereo predict: failed: 02 "))
    assert "is a 16-bit image whose values stay at or below" in lines[failed - 1], err


@pytest.mark.parametrize(
    ("option", "said"), [(("--model", "no-such-model"), "unknown model"), (("--set", "foo=1"), "no setting 'foo'")]
)
def test_a_usage_error_found_as_the_model_loads_leaves_no_empty_output_folder(
    capsys, tmp_path, three_pairs, option, said
):
    """The output folder is made (and checked) before the model loads: an unknown model or setting exited with
    code 2 and left out/sub/ behind, empty; a folder that was there already stays."""
    left, right = three_pairs
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "out" / "sub", *SGBM_ARGS, *option)
    assert code == 2 and said in err, err
    assert not (tmp_path / "out").exists()
    (tmp_path / "there").mkdir()
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "there", *SGBM_ARGS, *option)
    assert code == 2 and (tmp_path / "there").is_dir()


def test_an_output_folder_whose_images_the_input_folder_or_glob_would_list_is_refused(capsys, tmp_path):
    """-o the left folder itself: the first run wrote a.png, a_color.png beside the inputs, and the same command
    again (to resume) stopped with 'left gives 4 images and right gives 2'."""
    from .conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    for out, side in ((left, "left"), (f"{right}/", "right")):
        code, _, err = run_cli(capsys, "predict", left, right, "-o", out, *SGBM_ARGS, "--format", "pfm,color")
        assert code == 2 and f"would be read as a {side} image by the next run" in err, err
        assert "--format without color" in err
    glob_args = (f"{left}/*.PNG", f"{right}/*.png", "-o", left, *SGBM_ARGS, "--format", "pfm,color")
    code, _, err = run_cli(capsys, "predict", *glob_args)
    assert code == 2 and "would be read as a left image" in err, err
    # files that no input listing reads are written there, and the same command again resumes
    argv = ("predict", left, right, "-o", left, *SGBM_ARGS, "--format", "pfm,json")
    assert run_cli(capsys, *argv)[0] == 0
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and out.startswith("2 pairs: 0 done, 2 skipped"), err


def test_the_checks_before_a_batch_resolve_each_folder_once_not_each_file(capsys, tmp_path, monkeypatch):
    """Each input image and output file was resolved whole (os.path.realpath: a stat per part of its path), twice
    in check_outputs and twice per side in the listing check, and each of a rerun's previews was looked for as a
    pair of an earlier run: 1.6 s of 2.4 s in a rerun of 2 000 done pairs went to these checks."""
    import os

    from rtstereo.sinks import files

    left, right = write_pairs(tmp_path / "in", 12)
    argv = ("predict", left, right, "-o", tmp_path / "out", *SGBM_ARGS)
    assert run_cli(capsys, *argv)[0] == 0
    resolved, looked_for, realpath, complete = [], [], os.path.realpath, files.outputs_complete
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: resolved.append(path) or realpath(path, **kw))
    monkeypatch.setattr(
        files,
        "outputs_complete",
        lambda folder, name, formats: looked_for.append(name) or complete(folder, name, formats),
    )
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and out.startswith("12 pairs: 0 done, 12 skipped"), err
    assert len(resolved) < 20, resolved  # the folders: a few, whatever the number of pairs (12 here)
    assert looked_for == [], looked_for  # 00_color.png is this run's pair 00's preview, no pair 00_color


@pytest.mark.parametrize(("flag", "suffix"), [("-o", ".pfm"), ("-o", "/"), ("--summary", ".csv")])
def test_an_output_name_too_long_for_the_file_system_is_one_line(capsys, tmp_path, flag, suffix):
    """Path.is_dir() raised on a name over 255 bytes: predict ended in a traceback of OSError [Errno 36]."""
    left, right = write_pairs(tmp_path / "in", 1)
    named = tmp_path / ("a" * 300 + suffix.rstrip("/"))
    given = f"{named}{suffix if suffix == '/' else ''}"
    outputs = ["-o", given] if flag == "-o" else ["-o", tmp_path / "out", "--summary", given]
    code, out, err = run_cli(capsys, "predict", left / "00.png", right / "00.png", *outputs, *SGBM_ARGS, "-q")
    assert code == 2 and out == ""
    size = len(named.name)
    assert err == (
        f"rtstereo predict: error: {flag} {given}: cannot write it: File name too long (a name of {size} bytes; the "
        "file system takes at most 255)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_warning_is_said_once_when_the_first_pair_gives_one_more_beside_it(capsys, tmp_path):
    """A pair's warnings were one text, said once and counted as a whole: the first pair's 16-bit note beside the grey
    view's warning made it another text than the next pair's, which said the grey view's warning a second time."""
    import csv

    import cv2
    import numpy as np

    left, right = write_pairs(tmp_path / "in", 3)
    for i, path in enumerate(sorted(left.iterdir())):
        grey = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
        cv2.imwrite(str(path), grey.astype(np.uint16) * 16 if i == 0 else grey)  # 12-bit data in 16 bits
    summary = tmp_path / "s.csv"
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "-q", "--summary", summary)
    assert code == 0, err
    assert err.count("16-bit image whose values stay") == 1, err
    assert err.count("the left image is grey") == 2, err  # the warning, then the count
    assert "rtstereo predict: warning: 00: the left image is grey" in err
    assert "rtstereo predict: warning: 2 more pairs gave the same warning as above (the left image is grey" in err
    rows = list(csv.DictReader(summary.open()))
    assert ["the left image is grey" in row["warning"] for row in rows] == [True, True, True]
    assert " | the left image is grey" in rows[0]["warning"]  # each pair's messages, apart


def test_a_pair_whose_jpegs_exif_tags_turn_them_differently_is_warned_about(capsys, tmp_path):
    """One photo's tag turned it 180 degrees, the other's none: the views of one size came out upside down
    against each other, and the map (density 100 %) said nothing; files whose tags agree are said nothing of."""
    left, right = make_textured_pair(64, 96, disparity_px=4, seed=0)
    folders = {side: tmp_path / side for side in ("L", "R")}
    for folder in folders.values():
        folder.mkdir()
    turned = Image.Exif()
    turned[0x0112] = 3
    upside_down = np.ascontiguousarray(left[::-1, ::-1])
    Image.fromarray(upside_down).save(folders["L"] / "0.jpg", exif=turned, quality=95)  # read upright
    Image.fromarray(right).save(folders["R"] / "0.jpg", quality=95)
    for side, image in (("L", left), ("R", right)):  # both turned alike
        Image.fromarray(image).save(folders[side] / "1.jpg", exif=turned, quality=95)

    code, out, err = run_cli(capsys, "predict", folders["L"], folders["R"], "-o", tmp_path / "out", *SGBM_ARGS, "-q")

    assert code == 0
    assert (
        "warning: 0: the two views were read turned differently: the left file's EXIF orientation tag has it turned "
        "180 degrees, the right file's as stored" in err
    )
    assert "warning: 1:" not in err and "more pairs gave the same warning" not in err


def test_a_batch_s_pairs_over_the_memory_budget_fail_before_their_images_are_decoded(capsys, tmp_path, monkeypatch):
    """Each pair of 12000x12000 px was decoded (20 s, 1.3 GB resident under a 1 GB budget), then failed for it."""
    from rtstereo.sources.pairs import PairSource

    def decoded(*args, **kwargs):
        raise AssertionError("the images were decoded")

    left, right = write_pairs(tmp_path / "in", 2)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1K")
    monkeypatch.setattr(PairSource, "load", decoded)

    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "-q")

    assert code == 1 and "2 pairs failed: 00, 01" in err, err
    assert f"failed: 00 ({left / '00.png'}, {right / '00.png'}): sgbm on a 64x96 (HxW) pair needs about" in err


def test_a_batch_pair_whose_views_differ_in_size_fails_alone_before_it_is_decoded(capsys, tmp_path, monkeypatch):
    """A folder whose second left view was far larger than its right one (20000x20000 beside 64x96) had it decoded,
    gigabytes, to be refused for its size: the files' headers say so first; the batch goes on, its summary names it."""
    import csv

    from rtstereo.sources.pairs import PairSource

    decoded = []
    load = PairSource.load
    monkeypatch.setattr(
        PairSource, "load", lambda self, *a, **k: decoded.append(Path(self.left).name) or load(self, *a, **k)
    )
    left, right = write_pairs(tmp_path / "in", 3)
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(left / "01.png")
    summary = tmp_path / "s.csv"
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "-q", "--summary", summary)
    message = "left and right images differ in size: left 400x300, right 96x64 (WxH); a rectified pair has one size"
    assert code == 1 and f"failed: 01 ({left / '01.png'}, {right / '01.png'}): {message}\n" in err, err
    assert "01.png" not in decoded and "02.png" in decoded
    rows = {row["name"]: row for row in csv.DictReader(summary.open())}
    assert [rows[name]["status"] for name in ("00", "01", "02")] == ["done", "failed", "done"]
    assert rows["01"]["error"] == message


def test_a_batch_whose_every_pair_fails_leaves_no_folder_it_made(capsys, tmp_path):
    """Every pair over the memory budget, or unreadable: the -o folder the run made stayed, empty ("written to")."""
    left, right = write_pairs(tmp_path / "in", 2, corrupt=(0, 1))
    code, out, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "made" / "out", *SGBM_ARGS)
    assert code == 1 and "2 pairs failed: 00, 01" in err
    assert out == "2 pairs: 0 done, 0 skipped, 2 failed; nothing written\n"
    assert not (tmp_path / "made").exists()
    (tmp_path / "mine").mkdir()  # the user's own folder stays, and is not said to be written to ("written to mine")
    code, out, _ = run_cli(capsys, "predict", left, right, "-o", tmp_path / "mine", *SGBM_ARGS)
    assert code == 1 and out == "2 pairs: 0 done, 0 skipped, 2 failed; nothing written\n"
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
