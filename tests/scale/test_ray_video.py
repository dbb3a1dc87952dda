"""``rtstereo video --engine ray``: frame ranges in parallel, the same per-frame PNGs as one process."""

from __future__ import annotations

import json
import os
import signal
import time

import cv2
import numpy as np
import pytest

from rtstereo.scale.video import split_frames

from ..conftest import run_cli
from ..stream.conftest import render_scene, write_video
from .conftest import printed_warnings

FRAMES = 12
SGBM = ["--model", "sgbm", "--max-disp", "32"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    scene = render_scene(frames=FRAMES)
    return write_video(folder / "l.mp4", scene.lefts), write_video(folder / "r.mp4", scene.rights)


def test_ray_video_writes_the_same_pngs_as_one_process(capsys, tmp_path, ray_local, videos):
    left, right = videos
    code, _, err = run_cli(capsys, "video", left, right, "--output-prefix", tmp_path / "one" / "d", *SGBM, "-q")
    assert code == 0, err
    argv = ["video", left, right, "--output-prefix", tmp_path / "ray" / "d", *SGBM, "--engine", "ray"]
    code, out, err = run_cli(capsys, *argv, "--workers", 2, "--temporal")
    assert code == 0, err
    assert f"{FRAMES} of {FRAMES} frames in 8 ranges, 0 failed" in out
    assert "temporal filter restarts at the first frame of each frame range" in err
    code, out, err = run_cli(capsys, *argv, "--workers", 2, "--stride", 1)
    one = sorted(p.name for p in (tmp_path / "one").glob("d_*.png"))
    assert one == sorted(p.name for p in (tmp_path / "ray").glob("d_*.png")) and len(one) == FRAMES
    for name in one:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    summary = json.loads((tmp_path / "ray" / "d_summary.json").read_text())
    assert [r["first"] for r in summary["ranges"]] == [0, 2, 4, 6, 8, 9, 10, 11][: len(summary["ranges"])]
    assert summary["frames_written"] == FRAMES


def test_ray_video_start_stride_and_max_frames_number_like_one_process(capsys, tmp_path, ray_local, videos):
    left, right = videos
    calib = tmp_path / "calib.txt"  # at the frames' size: both summaries record it
    calib.write_text(
        "cam0=[200 0 63.5; 0 200 31.5; 0 0 1]\ncam1=[200 0 63.5; 0 200 31.5; 0 0 1]\n"
        "baseline=120\nwidth=128\nheight=64\n"
    )
    common = [left, right, *SGBM, "--start", 1, "--stride", 2, "--max-frames", 4, "--calib", calib, "-q"]
    run_cli(capsys, "video", *common, "--output-prefix", tmp_path / "one" / "d")
    code, _, err = run_cli(capsys, "video", *common, "--output-prefix", tmp_path / "ray" / "d", "--engine", "ray")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "one").glob("d_*.png"))
    assert names == sorted(p.name for p in (tmp_path / "ray").glob("d_*.png")) and len(names) == 4
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    # what a reader needs to read PNG n back as the disparity of source frame start + n x stride, as one process says
    one, ray = (json.loads((tmp_path / side / "d_summary.json").read_text()) for side in ("one", "ray"))
    for key in ("model", "settings", "frame_size_hw", "source_frames", "encodings", "calibration"):
        assert ray[key] == one[key], key
    assert all("model" not in row and "settings" not in row for row in ray["ranges"]), "said once, not per range"
    assert ray["calibration"]["fx_px"] == 200.0, "the frames' calibration, as the PNGs' depths need it"
    assert ray["source_frames"] == {"start": 1, "stride": 2} and ray["encodings"]["png16"]["divide_by"] == 256


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-o", "{tmp}/o.mp4", "--output-prefix", "{tmp}/d"], "not -o"),
        (["--show", "--output-prefix", "{tmp}/d"], "not --show"),
        ([], "give --output-prefix"),
        (["--output-prefix", "{tmp}/d", "--workers", "0"], "--workers must be >= 1"),
        (["--output-prefix", "{tmp}/d", "--max-frames", "0"], "--max-frames must be >= 1"),
    ],
)
def test_ray_video_usage_errors(capsys, tmp_path, videos, extra, message):
    left, right = videos
    argv = ["video", left, right, *SGBM, "--engine", "ray", *[a.format(tmp=tmp_path) for a in extra]]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err


def test_a_cluster_where_nothing_listens_is_refused_before_the_video_is_read(capsys, tmp_path, videos, monkeypatch):
    """It was refused only after the first frame was read, checked and the run announced ("... on Ray, N frames")."""
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    pytest.importorskip("ray")
    monkeypatch.setattr("ray.is_initialized", lambda: False)  # an earlier test's local Ray would be used instead
    monkeypatch.setattr("ray.init", lambda **kwargs: pytest.fail("ray.init would retry for minutes"))
    argv = ["video", *videos, *SGBM, "--output-prefix", tmp_path / "d", "--engine", "ray", "--ray-address", address]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.startswith(f"rtstereo video: error: cannot reach the Ray cluster at {address}"), err
    assert len(err.strip().splitlines()) == 1


def test_a_size_no_memory_holds_is_refused_before_a_frame_is_resized_or_ray_starts(
    capsys, tmp_path, videos, monkeypatch
):
    """As one process refuses it: the driver resized the first frame for its rectification check, and every worker
    its frames, before the budget was asked (--size 40000x60000 had them killed, out of memory)."""
    pytest.importorskip("ray")
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # 400x600 needs about 13 MB with SGBM
    monkeypatch.setattr("ray.init", lambda **kwargs: pytest.fail("Ray was started"))
    monkeypatch.setattr("rtstereo.sources.base.cv2.resize", lambda *a, **k: pytest.fail("a frame was resized"))
    argv = ["video", *videos, *SGBM, "--output-prefix", tmp_path / "d", "--engine", "ray", "--size", "400x600"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "", err
    assert err.startswith("rtstereo video: error: --size 400x600: sgbm on a 400x600 (HxW) pair needs about "), err
    assert err.count("\n") == 1 and "more than the 1 MB budget (RTSTEREO_MEMORY_BUDGET=1M)" in err


def test_a_ray_video_says_a_stretching_size_without_the_rectification_check(capsys, tmp_path, ray_local, videos):
    """The driver said it only while preparing the first frame for the rectification check: the workers' notices stay
    in the workers, so --no-rectification-check stretched the frames without a word, even a warning."""
    argv = ["video", *videos, "--output-prefix", tmp_path / "d", *SGBM, "--engine", "ray", "-q", "--size", "40x40"]
    code, _, err = run_cli(capsys, *argv, "--no-rectification-check")
    assert code == 0, err
    assert err.count("the frames are stretched (aspect ratio W/H 2.00 run at 1.00)") == 1, err
    assert json.loads((tmp_path / "d_summary.json").read_text())["frame_size_hw"] == [40, 40]


def test_workers_without_ray_engine_is_refused(capsys, videos):
    code, _, err = run_cli(capsys, "video", *videos, *SGBM, "--workers", "2")
    assert code == 2 and "apply to --engine ray only" in err


def test_split_frames_covers_every_frame_once():
    for total in (1, 7, 12, 100):
        for pieces in (1, 3, 8, 200):
            ranges = split_frames(total, pieces)
            numbers = [r.first + i for r in ranges for i in range(r.count)]
            assert numbers == list(range(total)) and len(ranges) == min(pieces, total)
            counts = [r.count for r in ranges]
            assert max(counts) - min(counts) <= 1, (total, pieces, counts)  # near-equal: no long last range
    assert [r.count for r in split_frames(100, 8)] == [13, 13, 13, 13, 12, 12, 12, 12]


def test_a_range_with_a_damaged_frame_fails_alone(capsys, tmp_path, ray_local):
    from ..batch.conftest import write_pairs

    left, right = write_pairs(tmp_path / "seq", FRAMES, corrupt=(5,))
    argv = ["video", left, right, "--output-prefix", tmp_path / "o" / "d", *SGBM, "--engine", "ray", "--workers", 2]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and f"{FRAMES - 1} of {FRAMES} frames in 8 ranges, 1 failed" in out
    assert "frames 4-5 failed after 1 written: cannot read" in err
    assert not (tmp_path / "o" / "d_00005.png").exists() and (tmp_path / "o" / "d_00006.png").exists()


def test_a_broken_video_pipeline_is_an_engine_error(capsys, tmp_path, ray_local, videos, monkeypatch):
    def broken(self):
        raise RuntimeError("a node was lost")

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", broken)
    argv = ["video", *videos, "--output-prefix", tmp_path / "d", *SGBM, "--engine", "ray"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "the Ray pipeline stopped after 0 of" in err and "a node was lost" in err


def test_ctrl_c_in_a_ray_video_is_an_interruption_not_an_engine_error(capsys, tmp_path, ray_local, videos, monkeypatch):
    from .conftest import interrupted_in_rays_queue

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", interrupted_in_rays_queue)
    argv = ["video", *videos, "--output-prefix", tmp_path / "d", *SGBM, "--engine", "ray"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 130 and "rtstereo video: interrupted" in err and "Ray pipeline stopped" not in err


def test_sigterm_in_a_ray_video_is_an_interruption(capsys, tmp_path, ray_local, videos, monkeypatch):
    """Ray's own SIGTERM handler, in place since ray.init, exited at once with code 15."""

    def terminated(self):
        yield from ()
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", terminated)
    argv = ["video", *videos, "--output-prefix", tmp_path / "d", *SGBM, "--engine", "ray"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 130 and "rtstereo video: interrupted" in err


def test_an_interrupt_counts_the_frames_workers_wrote_whose_reports_had_not_come_back(
    capsys, tmp_path, ray_local, videos, monkeypatch
):
    """Ctrl-C while range reports waited in Ray's queues: the summary held none of the frames written (no
    summary at all); predict's pairs were counted."""
    from .conftest import ctrl_c_after_two_reports

    ctrl_c_after_two_reports(monkeypatch, ray_local)
    prefix = tmp_path / "d"
    argv = ["video", *videos, "--output-prefix", prefix, *SGBM, "--engine", "ray", "--workers", 1, "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 130 and err.startswith(f"rtstereo video: interrupted: {FRAMES} of {FRAMES} frames written"), err
    summary = json.loads((tmp_path / "d_summary.json").read_text())
    assert summary["interrupted"] is True and summary["frames_written"] == FRAMES
    assert [r["first"] for r in summary["ranges"]] == [0, 3, 6, 9]
    assert [r["status"] for r in summary["ranges"]] == ["done"] * 4
    # an earlier run's PNGs are not taken for this run's: nothing written this time
    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run_cli(capsys, *argv)
    assert code == 130 and err.startswith(f"rtstereo video: interrupted: 0 of {FRAMES} frames written"), err
    summary = json.loads((tmp_path / "d_summary.json").read_text())
    assert summary["frames_written"] == 0 and {r["status"] for r in summary["ranges"]} == {"interrupted"}
    assert summary["ranges"][0]["error"] == "interrupted with 0 of 3 frames written"


def test_a_range_past_the_end_of_the_video_is_reported(tmp_path, videos):
    import rtstereo
    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import FrameRange, VideoJob
    from rtstereo.sources.video import TwoVideoSource

    job = VideoJob(TwoVideoSource(*videos), str(tmp_path / "d"), PredictorOptions("sgbm", settings={"max_disp": 16}))
    row = job.run_range(rtstereo.load("sgbm", max_disp=16), FrameRange(FRAMES - 2, 5))
    assert row["status"] == "failed" and row["written"] == 2
    assert row["error"] == "the video ended after 2 of 5 frames"
    assert sorted(p.name for p in tmp_path.glob("d_*.png")) == [f"d_{FRAMES - 2:05d}.png", f"d_{FRAMES - 1:05d}.png"]


def test_a_range_past_the_end_of_a_video_cut_short_says_so_not_give_a_smaller_start(tmp_path):
    """A range starting past the frames a cut file holds said "--start 6 is past the end ...; give a smaller
    --start", an option the user had not given."""
    import cv2

    import rtstereo
    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import FrameRange, VideoJob
    from rtstereo.sources.video import TwoVideoSource

    from ..stream.conftest import read_video

    scene = render_scene(frames=FRAMES)
    whole, left = tmp_path / "whole.avi", tmp_path / "l.avi"  # Motion JPEG cut in half: its header claims every frame
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, scene.lefts[0].shape[1::-1])
    for frame in scene.lefts:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    left.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    held = len(read_video(left))
    assert 0 < held < FRAMES - 2, held
    right = write_video(tmp_path / "r.mp4", scene.rights)
    options = PredictorOptions("sgbm", settings={"max_disp": 16})
    job = VideoJob(TwoVideoSource(left, right), str(tmp_path / "d"), options)
    row = job.run_range(rtstereo.load("sgbm", max_disp=16), FrameRange(held + 1, 3))
    assert row["status"] == "failed" and row["written"] == 0
    assert row["error"] == (
        f"the left video l.avi ended before frame {held + 1} (it holds {held} frames; its header claims {FRAMES}: the "
        "file is cut short or damaged)"
    )
    given = VideoJob(TwoVideoSource(left, right, start=held + 1), str(tmp_path / "e"), options)
    row = given.run_range(rtstereo.load("sgbm", max_disp=16), FrameRange(0, 3))  # the first range: the user's --start
    assert row["error"].startswith(f"--start {held + 1} is past the end of the left video l.avi (it holds {held} ")


def test_a_range_interrupted_by_ctrl_c_is_reported_as_interrupted_not_as_a_video_that_ended(
    tmp_path, videos, monkeypatch
):
    """Ctrl-C stops a range's stream as it stops one process: the row said "failed: the video ended after 0 of 5
    frames", and the driver counted the range among the failed ones."""
    import rtstereo
    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import FrameRange, VideoJob
    from rtstereo.sources.video import TwoVideoSource
    from rtstereo.stream import Stream

    def ctrl_c_after_two_frames(self):
        while self._written < 2:
            time.sleep(0.005)
        raise KeyboardInterrupt

    monkeypatch.setattr(Stream, "_supervise", ctrl_c_after_two_frames)
    job = VideoJob(TwoVideoSource(*videos), str(tmp_path / "d"), PredictorOptions("sgbm", settings={"max_disp": 16}))
    predictor = rtstereo.load("sgbm", max_disp=16)
    predict = predictor.predict_pair
    predictor.predict_pair = lambda pair: (time.sleep(0.1), predict(pair))[1]  # Ctrl-C comes between frames 2 and 5
    row = job.run_range(predictor, FrameRange(0, 5))
    written = len(list(tmp_path.glob("d_*.png")))
    assert row["status"] == "interrupted" and row["written"] == written and 2 <= written < 5, row
    assert row["error"] == f"interrupted with {written} of 5 frames written"


def test_no_frames_or_no_frame_count_is_refused(capsys, tmp_path, videos, monkeypatch):
    from rtstereo.batch import PredictorOptions
    from rtstereo.errors import InputError
    from rtstereo.scale.video import VideoJob, run_ray_video
    from rtstereo.sources.video import TwoVideoSource

    job = VideoJob(TwoVideoSource(*videos), str(tmp_path / "d"), PredictorOptions("sgbm"))
    with pytest.raises(InputError, match="no frames to process"):
        run_ray_video(job, 0)
    monkeypatch.setattr(TwoVideoSource, "expected_frames", property(lambda self: None))
    code, _, err = run_cli(capsys, "video", *videos, "--output-prefix", tmp_path / "d", *SGBM, "--engine", "ray")
    assert code == 2 and "does not tell its frame count" in err


def test_a_ray_video_removes_the_partial_pngs_a_killed_worker_left(capsys, tmp_path, ray_local, videos):
    from ..io.test_atomic import _killed_mid_write

    (tmp_path / "ray").mkdir()
    _killed_mid_write(tmp_path / "ray")  # a half-written .d_00000.partial-*.png among them
    argv = ["video", *videos, "--output-prefix", tmp_path / "ray" / "d", *SGBM, "--engine", "ray", "-q"]
    assert run_cli(capsys, *argv)[0] == 0
    assert not list((tmp_path / "ray").glob(".*")) and len(list((tmp_path / "ray").glob("d_*.png"))) == FRAMES


def test_a_ray_video_warns_about_unrectified_frames_as_one_process_does(capsys, tmp_path, ray_local):
    import numpy as np

    scene = render_scene(frames=4, height=120, width=192)
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", [np.roll(image, 3, axis=0) for image in scene.rights])
    argv = ["video", left, right, "--output-prefix", tmp_path / "o" / "d", *SGBM, "--engine", "ray", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert err.count("rtstereo video: warning: frame 0: the pair does not look rectified: rows are off by") == 1, err
    code, _, err = run_cli(capsys, *argv, "--no-rectification-check")
    assert code == 0 and "look rectified" not in err, err


def test_an_unreported_range_counts_this_runs_pngs_only(tmp_path):
    from rtstereo.scale.video import FrameRange, written_unreported
    from rtstereo.sinks.video import numbered_pngs

    prefix = tmp_path / "d"
    (tmp_path / "d_00004.png").write_bytes(b"an earlier run's")
    before = numbered_pngs(prefix)
    for number in (3, 4):  # this run's frames 3 and 4, renamed into place as the sink does
        (tmp_path / "new.png").write_bytes(b"this run's")
        (tmp_path / "new.png").replace(tmp_path / f"d_{number:05d}.png")
    (tmp_path / "d_00006.png").write_bytes(b"another range's")
    row = written_unreported(prefix, FrameRange(3, 3), before, numbered_pngs(prefix))
    assert row == {
        "first": 3,
        "count": 3,
        "written": 2,
        "status": "interrupted",
        "error": "interrupted with 2 of 3 frames written",
        "wall_s": 0.0,
    }


def test_a_ray_video_says_what_the_workers_warned_about_once_as_one_process_does(capsys, tmp_path, ray_local):
    # a worker's warnings stayed in the worker (a fixed-size network's resized input, a grey view matched in grey)
    import cv2

    scene = render_scene(frames=4)
    for side in ("l", "r"):
        (tmp_path / side).mkdir()
    for i, (left, right) in enumerate(zip(scene.lefts, scene.rights, strict=True)):
        grey = i > 0  # not the first frame, which the driver reads itself (the rectification check)
        cv2.imwrite(
            str(tmp_path / "l" / f"{i:03d}.png"), cv2.cvtColor(left, cv2.COLOR_RGB2GRAY if grey else cv2.COLOR_RGB2BGR)
        )
        cv2.imwrite(str(tmp_path / "r" / f"{i:03d}.png"), cv2.cvtColor(right, cv2.COLOR_RGB2BGR))
    said = "warning: the left image is grey and the right one in colour"
    for engine in ("local", "ray"):
        with printed_warnings():
            argv = ["video", tmp_path / "l", tmp_path / "r", "--output-prefix", tmp_path / engine / "d", *SGBM, "-q"]
            code, _, err = run_cli(capsys, *argv, "--engine", engine)
        assert code == 0 and err.count(said) == 1, (engine, err)


def test_a_range_that_kills_its_worker_fails_alone(tmp_path, ray_local, videos):
    """Ray retried a task whose worker died without end: one range that killed its worker held the whole video."""
    from dataclasses import dataclass

    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import VideoJob, run_ray_video
    from rtstereo.sources.video import TwoVideoSource

    from .conftest import alarm_after

    driver = os.getpid()

    @dataclass(frozen=True)
    class DyingOnTheFirstRange(VideoJob):  # defined here, so that Ray sends the class itself to the workers
        def run_range(self, predictor, frames):
            if frames.first == 0 and os.getpid() != driver:
                time.sleep(1)  # the next ranges are queued on this worker meanwhile
                os._exit(3)  # as the memory killer ends a worker
            return super().run_range(predictor, frames)

    options = PredictorOptions("sgbm", settings={"max_disp": 16})
    job = DyingOnTheFirstRange(TwoVideoSource(*videos), str(tmp_path / "d"), options)
    with alarm_after(150):
        rows, _, interrupted = run_ray_video(job, FRAMES, workers=1)
    first = rows[0]
    assert first["first"] == 0 and first["status"] == "failed" and first["written"] == 0 and not interrupted
    assert first["error"].startswith("no result: the Ray worker given this frame range died on each of its 3 tries")
    # The ranges Ray had queued on the same worker died with it on each try too (one worker: they were queued on it).
    assert [row for row in rows[1:] if row["status"] != "done"] == []
    assert sum(row["count"] for row in rows) == FRAMES
    assert len(list(tmp_path.glob("d_*.png"))) == sum(row["written"] for row in rows) == FRAMES - first["count"]


def test_ctrl_c_while_ray_shuts_down_after_the_last_range_is_no_interruption(
    capsys, tmp_path, ray_local, videos, monkeypatch
):
    """Ray takes seconds to shut down once the bar has reached its end: Ctrl-C then said only "interrupted" (exit code
    130), with no count and no summary file, for a video whose every frame was written."""
    import rtstereo.scale.video as ray_video

    from .conftest import ctrl_c_at_shutdown

    ctrl_c_at_shutdown(monkeypatch, ray_video)
    left, right = videos
    argv = ["video", left, right, "--output-prefix", tmp_path / "d", *SGBM, "--engine", "ray", "--workers", 2]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "interrupted" not in err and f"{FRAMES} of {FRAMES} frames" in out, (out, err)
    summary = json.loads((tmp_path / "d_summary.json").read_text())
    assert summary["frames_written"] == FRAMES and not summary["interrupted"]


def test_relative_paths_are_read_and_written_where_the_caller_is_not_where_ray_started(
    capsys, tmp_path, ray_local, videos, monkeypatch
):
    """A Ray started in another folder (a cluster's, or ray.init() elsewhere) runs its workers there: relative
    videos and --output-prefix were looked for, and written, in Ray's folder."""
    import shutil

    for video in videos:
        shutil.copy(video, tmp_path / video.name)
    monkeypatch.chdir(tmp_path)  # Ray runs in the folder pytest started in
    argv = ["video", "l.mp4", "r.mp4", "--output-prefix", "out/d", *SGBM, "--engine", "ray", "--workers", 1, "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and err == "", err
    assert len(list((tmp_path / "out").glob("d_*.png"))) == FRAMES


def test_a_hand_built_job_with_relative_paths_is_run_where_the_caller_is(tmp_path, ray_local, videos, monkeypatch):
    """run_ray_video from Python gave the workers a VideoJob's relative videos and prefix as they were: the workers,
    in the folder Ray started in, found no video there (the command line made them absolute, Python did not)."""
    import shutil

    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import VideoJob, run_ray_video
    from rtstereo.sources.sequence import ImageSequenceSource
    from rtstereo.sources.video import TwoVideoSource

    for video in videos:
        shutil.copy(video, tmp_path / video.name)
    scene = render_scene(frames=2)
    for side, images in (("L", scene.lefts), ("R", scene.rights)):
        (tmp_path / side).mkdir()
        for number, image in enumerate(images):
            cv2.imwrite(str(tmp_path / side / f"{number}.png"), image)
    monkeypatch.chdir(tmp_path)  # Ray runs in the folder pytest started in
    options = PredictorOptions("sgbm", settings={"max_disp": 16})
    for source, frames, prefix in (
        (TwoVideoSource("l.mp4", "r.mp4"), FRAMES, "out/v"),
        (ImageSequenceSource("L", "R"), 2, "out/s"),
    ):
        rows, _, _ = run_ray_video(VideoJob(source, prefix, options), frames, workers=1)
        assert [row["error"] for row in rows if row["status"] != "done"] == []
        assert len(list(tmp_path.glob(f"{prefix}_*.png"))) == frames


def test_a_side_by_side_video_given_relative_is_read_from_any_folder_by_the_workers(tmp_path, monkeypatch):
    import numpy as np

    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import VideoJob, job_for_workers
    from rtstereo.sources.video import SideBySideVideoSource

    scene = render_scene(frames=3)
    write_video(tmp_path / "sbs.mp4", [np.concatenate(views, axis=1) for views in zip(scene.lefts, scene.rights)])
    monkeypatch.chdir(tmp_path)
    job = job_for_workers(VideoJob(SideBySideVideoSource("sbs.mp4"), "out/d", PredictorOptions("sgbm")))
    monkeypatch.chdir(tmp_path.parent)  # where a worker runs
    assert job.prefix == str(tmp_path / "out" / "d") and len(list(job.source)) == 3


def test_a_range_with_a_frame_that_does_not_decode_passes_it_over_and_keeps_to_its_frames(tmp_path):
    """A video frame passed over (damaged) is no frame missing from its range, which does not read on into the next
    range's frames either: PNG n is the video's frame n, as in one process."""
    import rtstereo
    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.video import FrameRange, VideoJob
    from rtstereo.sources.video import TwoVideoSource

    from ..stream.conftest import damaged_video

    scene = render_scene(frames=FRAMES)
    left = damaged_video(tmp_path / "l.avi", scene.lefts, damaged=(4,))
    right = write_video(tmp_path / "r.mp4", scene.rights)
    job = VideoJob(
        TwoVideoSource(left, right), str(tmp_path / "d"), PredictorOptions("sgbm", settings={"max_disp": 16})
    )
    row = job.run_range(rtstereo.load("sgbm", max_disp=16), FrameRange(3, 3))
    assert (row["status"], row["written"], row["error"], row["damaged_frames"]) == ("done", 2, "", "[4]")
    assert sorted(p.name for p in tmp_path.glob("d_*.png")) == ["d_00003.png", "d_00005.png"]


def test_missing_ray_is_refused_in_one_line_before_the_video_is_read(capsys, tmp_path, monkeypatch, videos):
    """The run was announced ("... on Ray, 12 frames in ranges") and the first frame checked before Ray was missed."""
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    argv = ["video", *videos, "--output-prefix", tmp_path / "f" / "d", *SGBM, "--engine", "ray"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "pip install 'rtstereo[scale]'" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "f").exists()


def test_align_rows_is_measured_once_for_every_range_as_one_process_measures_it(capsys, tmp_path, ray_local):
    """Each range measured the rows on its own first frame: the ranges' row shifts differed from one process's
    (1.97 px for all of a tsukuba sequence, other figures per range), and so did their maps."""
    scene = render_scene(frames=8, height=160, width=256, noise=6.0, seed=4)
    for side, frames in (("L", scene.lefts), ("R", scene.rights)):
        (tmp_path / side).mkdir()
        for i, frame in enumerate(frames):
            frame = np.roll(frame, 2, axis=0) if side == "R" else frame  # the right view's rows 2 px down
            cv2.imwrite(str(tmp_path / side / f"f{i}.png"), frame[:, :, ::-1])
    common = [tmp_path / "L", tmp_path / "R", *SGBM, "--align-rows", "-q"]
    code, _, err = run_cli(capsys, "video", *common, "--output-prefix", tmp_path / "one" / "d")
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "video", *common, "--output-prefix", tmp_path / "ray" / "d", "--engine", "ray", "--workers", 2
    )
    assert code == 0, err
    one, ray = (json.loads((tmp_path / side / "d_summary.json").read_text()) for side in ("one", "ray"))
    assert one["preparation"]["align_rows"]["applied"] is True, one["preparation"]
    assert ray["preparation"] == one["preparation"]
    names = sorted(p.name for p in (tmp_path / "one").glob("d_*.png"))
    assert len(names) == 8 and names == sorted(p.name for p in (tmp_path / "ray").glob("d_*.png"))
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name


def test_ray_video_fit_crop_records_the_window_its_pngs_are_maps_of(capsys, tmp_path, ray_local):
    """The summary said the frames' 64x160 and their calibration, with no word of the window, beside 64x96 PNGs."""
    from ..runtime.test_fit_crop import matcher_onnx, shifted_pair

    model = matcher_onnx(tmp_path / "model.onnx")
    for index in range(2):
        left, right = shifted_pair((64, 160), lambda x: 10, seed=index)
        for side, image in (("L", left), ("R", right)):
            (tmp_path / side).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / side / f"f{index}.png"), image[:, :, ::-1])
    calib = tmp_path / "calib.txt"
    calib.write_text("cam0=[100 0 80; 0 100 20; 0 0 1]\ncam1=[100 0 80; 0 100 20; 0 0 1]\nbaseline=100\n")
    code, _, err = run_cli(
        capsys, "video", tmp_path / "L", tmp_path / "R", "--model", model, "--fit", "crop", "--calib", calib,
        "--output-prefix", tmp_path / "ray" / "d", "--engine", "ray", "--workers", 1, "-q",
    )  # fmt: skip
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "ray" / "d_00000.png"), cv2.IMREAD_UNCHANGED).shape == (64, 96)
    summary = json.loads((tmp_path / "ray" / "d_summary.json").read_text())
    assert summary["frame_size_hw"] == [64, 96]
    assert summary["preparation"]["crop"] == {"input_size_hw": [64, 160], "x0_px": 32, "y0_px": 0, "width_px": 96,
                                              "height_px": 64}  # fmt: skip
    assert (summary["calibration"]["cx0_px"], summary["calibration"]["width_px"]) == (48, 96)
