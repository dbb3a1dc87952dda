"""Interrupted runs leave only complete files, and Ctrl-C says how many pairs were written and where."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from rtstereo.batch import BatchJob
from rtstereo.cli import main
from rtstereo.io.atomic import interrupts_deferred
from rtstereo.sinks.files import save_result
from rtstereo.types import DisparityResult

from ..batch.conftest import SGBM_ARGS, write_kitti, write_pairs
from ..conftest import sigterm_at_call, sigterm_stand_in


def _visible_files(folder):
    return sorted(
        p.name for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts)
    )


def test_ctrl_c_in_a_batch_says_how_many_pairs_were_written_and_where(capsys, monkeypatch, tmp_path):
    lefts, rights = write_pairs(tmp_path / "in", 5)
    calls = []
    real_predict = BatchJob.predict

    def predict_then_interrupt(self, predictor, pair):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_predict(self, predictor, pair)

    monkeypatch.setattr(BatchJob, "predict", predict_then_interrupt)
    out = tmp_path / "out"
    code = main(["predict", str(lefts), str(rights), *SGBM_ARGS, "-o", f"{out}/", "--format", "png16,json", "-q"])
    err = capsys.readouterr().err
    assert code == 130
    assert (
        f"rtstereo predict: interrupted after 2 of 5 pairs: 2 written to {out}, each pair complete "
        "(a rerun skips them)" in err
    )
    assert _visible_files(out) == ["00.json", "00.png", "01.json", "01.png"]
    assert not list(out.iterdir())[0].name.startswith(".partial")  # the staging folder is gone


def test_ctrl_c_in_a_resumed_batch_counts_the_pairs_it_skipped(capsys, monkeypatch, tmp_path):
    """A rerun stopped after the pairs it skipped said "interrupted after 2 of 5 pairs: 0 written", as if lost."""
    lefts, rights = write_pairs(tmp_path / "in", 5)
    out = tmp_path / "out"
    argv = ["predict", str(lefts), str(rights), *SGBM_ARGS, "-o", f"{out}/", "--format", "png16", "-q"]
    calls = []
    real_predict = BatchJob.predict

    def predict_then_interrupt(self, predictor, pair):
        calls.append(1)
        if len(calls) in (3, 4):  # the first run's third pair, the rerun's first pair to predict
            raise KeyboardInterrupt
        return real_predict(self, predictor, pair)

    monkeypatch.setattr(BatchJob, "predict", predict_then_interrupt)
    assert main(argv) == 130
    capsys.readouterr()
    assert main(argv) == 130
    assert (
        f"rtstereo predict: interrupted after 2 of 5 pairs: 0 written to {out}, 2 skipped (complete already), "
        "each pair complete (a rerun skips them)" in capsys.readouterr().err
    )
    assert _visible_files(out) == ["00.png", "01.png"]


def test_sigterm_in_a_batch_stops_it_as_ctrl_c_does_and_writes_the_summary(capsys, monkeypatch, tmp_path):
    """`kill PID` (a scheduler's stop) killed the run mid-pair: no count, no summary table."""
    lefts, rights = write_pairs(tmp_path / "in", 5)
    sigterm_at_call(monkeypatch, BatchJob, "predict", 3)  # at the third pair
    with sigterm_stand_in():
        out, summary = tmp_path / "out", tmp_path / "s.csv"
        argv = ["predict", str(lefts), str(rights), *SGBM_ARGS, "-o", f"{out}/", "--format", "png16", "-q"]
        code = main([*argv, "--summary", str(summary)])
    assert code == 130
    assert f"rtstereo predict: interrupted after 2 of 5 pairs: 2 written to {out}" in capsys.readouterr().err
    assert _visible_files(out) == ["00.png", "01.png"]
    assert [row.split(",")[4] for row in summary.read_text().splitlines()[1:]] == ["done", "done"]


@pytest.mark.parametrize("verb", ["predict", "video", "eval"])
def test_sigterm_while_the_model_loads_is_ctrl_c(capsys, monkeypatch, tmp_path, verb):
    """`kill PID` while the model loaded (or while one pair ran, or a one-process eval scored) ended the process
    at once: no line, exit code 143, where Ctrl-C said "interrupted" with exit code 130."""
    import importlib

    module = importlib.import_module(f"rtstereo.cli.{verb}")
    sigterm_at_call(monkeypatch, module, "predictor_from_args", 1)
    lefts, rights = write_pairs(tmp_path / "in", 2)
    out = tmp_path / "out"
    argv = {
        "predict": ["predict", str(lefts / "00.png"), str(rights / "00.png"), "-o", str(out / "d.pfm")],
        "video": ["video", str(lefts), str(rights), "-o", str(out / "d.mp4")],
        "eval": ["eval", str(write_kitti(tmp_path / "kitti", 1)), "-o", str(out)],
    }[verb]
    with sigterm_stand_in():
        code = main([*argv, *SGBM_ARGS, "-q"])
    assert code == 130
    assert capsys.readouterr().err.endswith(f"rtstereo {verb}: interrupted\n")
    assert not out.exists() or _visible_files(out) == []


def test_sigterm_during_the_renames_is_held_until_the_set_is_complete(tmp_path):
    names, seen = [], []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: seen.append(list(names)))
    try:
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            for name in ("a", "b", "c"):
                (tmp_path / name).write_text(name)
                names.append(name)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [["a", "b", "c"]]  # delivered once, to the handler in place, after the last rename


def test_an_interruption_while_a_pair_is_written_leaves_none_of_its_files(tmp_path):
    result = DisparityResult(np.full((8, 8), 2.0, np.float32))

    def interrupted(result, stem):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_result(result, tmp_path, "p", ("png16", "pfm", "json"), {"json": interrupted})
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_the_renames_is_held_until_the_set_is_complete(tmp_path):
    names = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        for name in ("a", "b", "c"):
            (tmp_path / name).write_text(name)
            names.append(name)
    assert names == ["a", "b", "c"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


SIGNAL_IN_A_HELD_BLOCK = """
import os, signal, sys
from rtstereo.io.atomic import interrupts_deferred

with interrupts_deferred():
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    print("block done", flush=True)
print("went on", flush=True)
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("ignored", [True, False])
def test_a_signal_the_process_ignores_stays_ignored_in_a_held_block(tmp_path, name, ignored):
    """A job started with SIGINT ignored (`cmd &` in a script) was stopped by a SIGINT
    during the renames of a pair's files: the block took the signal over and raised KeyboardInterrupt after it."""
    import subprocess
    import sys
    from pathlib import Path

    import rtstereo

    number = getattr(signal, name)
    env = {**os.environ, "PYTHONPATH": str(Path(rtstereo.__file__).parents[1])}
    disposition = signal.SIG_IGN if ignored else signal.SIG_DFL
    outcome = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_A_HELD_BLOCK, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(number, disposition),  # as the shell sets it before the program starts
    )
    if ignored:
        assert (outcome.returncode, outcome.stdout) == (0, "block done\nwent on\n"), outcome.stderr
    elif name == "SIGINT":  # Ctrl-C as ever: once the block is done, KeyboardInterrupt
        assert (outcome.returncode, outcome.stdout) == (-signal.SIGINT, "block done\n"), outcome.stderr
        assert outcome.stderr.rstrip().endswith("KeyboardInterrupt")
    else:  # SIGTERM's default action, once the block is done
        assert (outcome.returncode, outcome.stdout) == (-signal.SIGTERM, "block done\n"), outcome.stderr


def test_a_second_ctrl_c_cuts_a_held_block_short():
    """The renames of a hung network disk could not be stopped by Ctrl-C: every one was held to the block's end."""
    reached = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after the first")
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after the second")
    assert reached == ["after the first"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_renames_that_fail_is_not_lost():
    """Ctrl-C while a pair's renames failed was dropped with the block's error: the batch, which goes on past a pair
    it cannot write, went on as if Ctrl-C had not been pressed."""
    from rtstereo.errors import OutputError

    with pytest.raises(KeyboardInterrupt) as stopped, interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        raise OutputError("cannot write out/00.png: a folder of that name is in the way")
    assert isinstance(stopped.value.__context__, OutputError)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupts_are_not_deferred_outside_the_main_thread():
    import threading

    seen = []

    def work():
        with interrupts_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_the_video_appears_under_its_name_only_when_closed(tmp_path):
    from rtstereo.sinks.video import OutputFrame, VideoSink, compose_preview
    from rtstereo.types import StereoPair

    left = np.full((16, 20, 3), 90, np.uint8)
    disparity = np.full((16, 20), 3.0, np.float32)
    frame = OutputFrame(0, StereoPair(left, left), DisparityResult(disparity), compose_preview(left, disparity, 8.0))
    sink = VideoSink(tmp_path / "o.mp4", fps=5)
    sink.write(frame)
    assert not (tmp_path / "o.mp4").exists() and len(list(tmp_path.iterdir())) == 1  # the hidden partial file
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


KILLED_STREAM = """
import os, signal, sys
import numpy as np
from rtstereo.sinks import video
from rtstereo.types import DisparityResult, StereoPair

left, disparity = np.full((16, 20, 3), 90, np.uint8), np.full((16, 20), 3.0, np.float32)
preview = video.compose_preview(left, disparity, 8.0)
frame = video.OutputFrame(0, StereoPair(left, left), DisparityResult(disparity), preview)
mp4, pngs = video.VideoSink(sys.argv[1] + "/o.mp4", fps=5), video.DisparityPngSink(sys.argv[1] + "/d")
mp4.write(frame)
video.os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed between a PNG's write and rename
pngs.write(frame)
"""


def test_what_a_killed_stream_left_is_removed_by_the_next_one(tmp_path):
    """A one-process `rtstereo video` killed with SIGKILL left its hidden .o.partial-PID.mp4 and a half-written
    PNG for good: neither name was one remove_stale_partials knows. The next stream's sinks remove them."""
    import subprocess
    import sys
    from pathlib import Path

    import rtstereo
    from rtstereo.sinks.video import DisparityPngSink, VideoSink

    env = {**os.environ, "PYTHONPATH": str(Path(rtstereo.__file__).parents[1])}
    outcome = subprocess.run([sys.executable, "-c", KILLED_STREAM, str(tmp_path)], env=env, timeout=120)
    assert outcome.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert [name.split(".partial-")[0] for name in left] == [".d_00000", ".o"], left
    live = tmp_path / f".running.partial-{os.getpid()}-0123abcd.mp4"  # a stream running beside this one: kept
    live.write_bytes(b"")
    VideoSink(tmp_path / "o.mp4")
    assert list(tmp_path.iterdir()) == [live]
    (tmp_path / ".d_00003.partial-999999999-0123abcd.png").write_bytes(b"half a PNG")
    DisparityPngSink(tmp_path / "d")
    assert list(tmp_path.iterdir()) == [live]


def test_the_calibration_file_is_written_whole(tmp_path):
    from rtstereo.io.calibration import read_calibration, write_calibration
    from rtstereo.types import Calibration

    calibration = Calibration(fx_px=500.0, fy_px=500.0, cx0_px=32.0, cx1_px=32.0, cy_px=24.0, baseline_m=0.1)
    for name in ("c.json", "c.yaml"):
        write_calibration(tmp_path / name, calibration)
        assert read_calibration(tmp_path / name).baseline_m == pytest.approx(0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.yaml"]


def test_synth_leaves_no_partial_scene_when_interrupted(capsys, monkeypatch, tmp_path):
    pytest.importorskip("torch")
    import rtstereo.io.pfm as pfm

    real_write = pfm.write_pfm
    written = []

    def write_then_interrupt(path, array):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt
        real_write(path, array)

    monkeypatch.setattr(pfm, "write_pfm", write_then_interrupt)
    code = main(["synth", "3", "-o", str(tmp_path / "s"), "--size", "32x64", "--batch-size", "1"])
    assert code == 130 and "rtstereo synth: interrupted" in capsys.readouterr().err
    # the first scene is whole; of the second, its occlusion mask, written first, is removed too: readers list
    # the images of either view, and a half-written scene is not a pair
    root = tmp_path / "s"
    assert _visible_files(root) == ["000000.pfm", "000000.png", "000000.png", "000000.png", "synth.json"]


@pytest.mark.parametrize(
    ("argv", "said"), [(["video", "a.mp4", "b.mp4"], "rtstereo video"), (["--version"], "rtstereo")]
)
def test_ctrl_c_while_the_verbs_are_imported_is_one_line(capsys, monkeypatch, argv, said):
    from rtstereo import cli

    def slow_imports():
        raise KeyboardInterrupt  # as Ctrl-C arrives while NumPy, OpenCV and the models load

    monkeypatch.setattr(cli, "build_parser", slow_imports)
    try:
        code = cli.main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during the imports escaped main(): the user got a traceback")
    assert code == 130 and capsys.readouterr().err == f"{said}: interrupted\n"


def test_the_console_script_starts_without_the_heavy_libraries():
    """What loads before main() can answer Ctrl-C: `rtstereo.cli` (the console script's module) and the
    package itself must not import NumPy, OpenCV or the models; main() imports them."""
    import subprocess
    import sys

    code = (
        "import sys, rtstereo.cli; "
        "print(sorted(m for m in ('numpy', 'cv2', 'rtstereo.api', 'rtstereo.models', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_names_still_resolve_when_first_used():
    import rtstereo

    assert rtstereo.load("sgbm", max_disp=16).name == "sgbm"
    assert rtstereo.StereoPair.__module__ == "rtstereo.types" and "sgbm" in rtstereo.list_models()
    assert rtstereo.io.read_disparity is not None  # submodules too, as when the package loaded them eagerly
    assert set(rtstereo.__all__) <= set(dir(rtstereo))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        rtstereo.no_such_name  # noqa: B018


def test_dir_of_the_package_lists_what_it_offers_not_what_it_imports():
    import rtstereo

    names = set(dir(rtstereo))
    assert not names & {"os", "importlib", "Any", "TYPE_CHECKING", "annotations"}
    assert set(rtstereo.__all__) | {"__version__", "io", "stream", "temporal"} <= names
