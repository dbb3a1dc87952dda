"""What the verbs print, on any terminal or pipe: names in any encoding, a stdout that is full or closed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import rtstereo
from rtstereo.cli import main

from ..batch.conftest import SGBM_ARGS, SGBM_RESULTS, write_kitti, write_pairs
from ..conftest import make_textured_pair

ASCII_TERMINAL = {"PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C"}


def _rtstereo(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``rtstereo ARGV`` in a process of its own, on this checkout's code, with ``env`` added to the environment."""
    src = str(Path(rtstereo.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src, **(env or {})}
    command = [sys.executable, "-m", "rtstereo", *map(str, argv)]
    return subprocess.run(command, capture_output=True, env=env, timeout=120)


def test_a_name_the_terminal_cannot_encode_is_printed_escaped_not_a_traceback(tmp_path):
    # a scene folder `scènes` on an ASCII terminal: a UnicodeEncodeError traceback at the table, no results written
    data = write_kitti(tmp_path / "data" / "scènes", 1)
    done = _rtstereo("eval", data.parent, *SGBM_ARGS, "-o", tmp_path / "res", "-q", env=ASCII_TERMINAL)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert b"\nsc\\xe8nes/000000 " in done.stdout
    assert json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["scenes"][0]["name"] == "scènes/000000"


def test_every_verbs_stdout_takes_names_its_encoding_cannot_hold(monkeypatch, capsys, tmp_path, pair):
    # predict's "written:" line of a folder `sorties-é` on an ASCII pipe: a UnicodeEncodeError traceback, exit code 1
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["predict", *pair, *SGBM_ARGS, "-o", str(tmp_path / "sorties-é")]) == 0, capsys.readouterr().err
    assert "sorties-\\xe9" in stdout.buffer.getvalue().decode("ascii")
    assert stdout.errors == "strict"  # as it was: the command line's stream, not the program's that called main
    assert any((tmp_path / "sorties-é").iterdir())


class _FullDisk:
    """stdout on a full disk (``> /dev/full``): every write fails."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass


FULL_STDOUT_LINE = "error: cannot write the result to stdout: No space left on device"


def test_eval_on_a_full_stdout_still_writes_its_results(monkeypatch, capsys, tmp_path):
    # `eval ... > /dev/full`: exit code 1 as documented, but no results written (the table failed before the save)
    data = write_kitti(tmp_path / "kitti", 1)
    monkeypatch.setattr(sys, "stdout", _FullDisk())
    code = main(["eval", str(data), *SGBM_ARGS, "-o", str(tmp_path / "res"), "-q"])
    sys.stdout.close()  # os.devnull, put in its place so that the flush at exit does not fail again
    assert code == 1
    assert capsys.readouterr().err == f"rtstereo eval: {FULL_STDOUT_LINE}\n"
    assert json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["scenes"][0]["name"] == "kitti/000000"
    assert (tmp_path / "res" / SGBM_RESULTS).with_suffix(".md").is_file()


def test_bench_on_a_full_stdout_still_writes_its_files(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "stdout", _FullDisk())
    argv = ["bench", "sgbm", "--sizes", "32x64", "--max-disp", "16", "--warmup", "1", "--runs", "1", "-q"]
    code = main([*argv, "-o", str(tmp_path / "out")])
    sys.stdout.close()
    assert code == 1
    assert capsys.readouterr().err == f"rtstereo bench: {FULL_STDOUT_LINE}\n"
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["rows"][0]["status"] == "ok"
    assert (tmp_path / "out" / "bench.md").is_file()


class _ClosedPipe:
    """stdout whose reader went away (``| head -1``): every write fails as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass


def test_a_batch_piped_into_a_reader_that_goes_away_keeps_its_exit_code(monkeypatch, capsys, tmp_path):
    # `predict L R -o out | head -1` with a damaged pair: the closed pipe at its summary line gave exit code 0
    lefts, rights = write_pairs(tmp_path / "in", 3, corrupt=(1,))
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["predict", str(lefts), str(rights), *SGBM_ARGS, "-o", str(tmp_path / "out")])
    sys.stdout.close()
    err = capsys.readouterr().err
    assert code == 1, err
    assert "stdout" not in err and err.splitlines()[-1] == "rtstereo predict: 1 pair failed: 01"
    assert sorted(path.name for path in (tmp_path / "out").glob("*.pfm")) == ["00.pfm", "02.pfm"]


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["--version"]])
def test_help_and_version_on_a_full_stdout_are_one_line_and_exit_code_1(monkeypatch, capsys, argv):
    # argparse let the failed write pass: `rtstereo predict --help > /dev/full` printed nothing, with exit code 0
    monkeypatch.setattr(sys, "stdout", _FullDisk())
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    sys.stdout.close()
    assert exit_info.value.code == 1
    prog = "rtstereo predict" if argv[0] == "predict" else "rtstereo"
    assert capsys.readouterr().err == f"{prog}: error: cannot write to stdout: No space left on device\n"


def test_a_folder_named_in_bytes_of_another_encoding_gets_its_markdown_results(capsys, tmp_path):
    # a folder `sc\xe8nes` unpacked from a Latin-1 archive: eval's and bench's .md ended in a UnicodeEncodeError
    # traceback ("surrogates not allowed"), the JSON written beside it
    data = write_kitti(tmp_path / "data" / "scenes", 1).rename(tmp_path / "data" / os.fsdecode(b"sc\xe8nes"))
    assert main(["eval", str(data.parent), *SGBM_ARGS, "-o", str(tmp_path / "res"), "-q"]) == 0
    assert b"| sc\xe8nes/000000 |" in (tmp_path / "res" / SGBM_RESULTS).with_suffix(".md").read_bytes()
    argv = ["bench", "sgbm", "--sizes", "32x64", "--max-disp", "16", "--warmup", "1", "--runs", "1", "-q"]  # noted
    assert main([*argv, "--data", str(data), "-o", str(tmp_path / "bench")]) == 0, capsys.readouterr().err
    assert b"sc\xe8nes" in (tmp_path / "bench" / "bench.md").read_bytes()


@pytest.mark.parametrize("verb", ["predict", "eval"])
def test_a_batch_whose_stderr_reader_goes_away_still_writes_everything_and_keeps_its_exit_code(
    monkeypatch, tmp_path, verb
):
    # `2>&1 | head -1`: the closed pipe at the first progress line ended the batch there with exit code 0 (predict
    # wrote its first pair alone, eval no results), its failed pair unsaid
    if verb == "predict":
        lefts, rights = write_pairs(tmp_path / "in", 3, corrupt=(1,))
        argv = ["predict", str(lefts), str(rights)]
    else:
        argv = ["eval", str(write_kitti(tmp_path / "kitti", 3, corrupt=(1,)))]
    monkeypatch.setattr(sys, "stderr", _ClosedPipe())
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main([*argv, *SGBM_ARGS, "-o", str(tmp_path / "out")]) == 1
    sys.stdout.close()
    if verb == "predict":
        assert sorted(path.name for path in (tmp_path / "out").glob("*.pfm")) == ["00.pfm", "02.pfm"]
    else:
        scenes = json.loads((tmp_path / "out" / SGBM_RESULTS).read_text())["scenes"]
        assert [scene["name"] for scene in scenes] == ["kitti/000000", "kitti/000002"]


def test_video_whose_output_reader_goes_away_finishes_its_files(tmp_path):
    # `rtstereo video ... 2>&1 | head -1` hung after its first line, Ctrl-C and kill PID (SIGTERM) unanswered
    for i in range(3):
        left, right = make_textured_pair(48, 72, disparity_px=4, seed=i)
        cv2.imwrite(str(tmp_path / f"l{i}.png"), left)
        cv2.imwrite(str(tmp_path / f"r{i}.png"), right)
    argv = ["video", tmp_path / "l*.png", tmp_path / "r*.png", *SGBM_ARGS, "--output-prefix", tmp_path / "out" / "f"]
    src = str(Path(rtstereo.__file__).parents[1])
    command = [sys.executable, "-m", "rtstereo", *map(str, argv)]
    env = {**os.environ, "PYTHONPATH": src}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as process:
        try:
            assert process.stdout.readline().startswith(b"rtstereo video: ")
            process.stdout.close()  # the reader goes away, as head does after its line
            assert process.wait(timeout=60) == 0
        finally:
            process.kill()
    frames = sorted(path.name for path in (tmp_path / "out").glob("*.png"))
    assert frames == ["f_00000.png", "f_00001.png", "f_00002.png"]
    assert (tmp_path / "out" / "f_summary.json").is_file()
