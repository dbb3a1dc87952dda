"""The stages overlap: end to end runs at the slowest stage's rate, which the progress line and the
summary name as the limit; file frames keep their order, live frames never queue up, and an error in
any stage (or Ctrl-C) ends the stream promptly with its message."""

from __future__ import annotations

import _thread
import re
import statistics
import threading
import time

import numpy as np
import pytest
from test_stream_pipeline import FakePredictor, Frames, SlowSink

from rtstereo.errors import InputError, OutputError
from rtstereo.sources.base import CameraError, LiveSource
from rtstereo.stream import Stream

MS = 1e-3


class SlowPrepare:
    """A capture-stage step (rectify, resize) that takes ``delay_s``; raises from frame ``fail_at`` on."""

    def __init__(self, delay_s: float = 0.0, fail_at: int | None = None):
        self.delay_s, self.fail_at = delay_s, fail_at

    def __call__(self, pair):
        if self.fail_at is not None and pair.index >= self.fail_at:
            raise InputError(f"cannot rectify frame {pair.index}")
        time.sleep(self.delay_s)
        return pair


class Camera(LiveSource):
    """A live source without a device: a new numbered frame every ``period_s``; unplugged at ``fail_at``."""

    description = "test camera"

    def __init__(self, period_s: float = 5 * MS, count: int = 10_000, fail_at: int | None = None):
        super().__init__(frame_timeout_s=2.0)
        self.period_s, self.count, self.fail_at, self.next_number = period_s, count, fail_at, 0

    def _open(self):
        pass

    def _read(self):
        if self.next_number >= self.count:
            return None
        if self.next_number == self.fail_at:
            raise CameraError(f"test camera unplugged at frame {self.fail_at}")
        time.sleep(self.period_s)
        image = np.zeros((8, 16, 3), np.uint8)
        number, self.next_number = self.next_number, self.next_number + 1
        return image, image, number * self.period_s, number

    def _close(self):
        pass


class HeldCamera(Camera):
    """A camera that counts its openings and releases."""

    def __init__(self):
        super().__init__()
        self.opened = self.released = 0

    def _open(self):
        self.opened += 1

    def _close(self):
        self.released += 1


@pytest.mark.parametrize("how", ["max_frames=0", "stopped at once", "max_frames=2"])
def test_a_camera_opened_beforehand_is_released_also_when_no_frame_is_taken(how, monkeypatch):
    camera = HeldCamera()
    camera.open()  # as the command line does, before loading the model
    stream = Stream(camera, FakePredictor(), max_frames=2 if how == "max_frames=2" else 0)
    if how == "max_frames=0":  # inference says "enough" before capture asks for a frame (a race it may win)
        monkeypatch.setattr(Stream, "_await_frame_due", lambda self: not self._enough.wait(2.0))
    if how == "stopped at once":
        stream.stop()
    stream.run()
    assert (camera.opened, camera.released) == (1, 1)  # was (1, 0) when no frame was taken: the device stayed held


STAGE_THREADS = ("rtstereo-capture", "rtstereo-inference", "rtstereo-write", "rtstereo-grabber")


def no_stage_threads_left(timeout_s: float = 2.0) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        # The stream's own threads: process-wide pools of other modules (the hints' SGBM threads, made
        # once by an earlier test) stay by design.
        if not [t for t in threading.enumerate() if t.name in STAGE_THREADS]:
            return True
        time.sleep(0.02)
    return False


# -- overlap and the limit -------------------------------------------------------------------------


def test_end_to_end_time_is_near_the_slowest_stage_not_the_sum(capsys):
    count, capture_s, inference_s, write_s = 12, 20 * MS, 60 * MS, 20 * MS
    stream = Stream(
        Frames(count),
        FakePredictor(delay_s=inference_s),
        sinks=[SlowSink(write_s)],
        prepare=SlowPrepare(capture_s),
        progress=True,
    )
    summary = stream.run()
    serial_s = count * (capture_s + inference_s + write_s)
    assert summary.wall_s < 0.8 * serial_s, summary.report()
    assert summary.wall_s > count * inference_s  # no stage can beat its own time
    assert summary.bottleneck == "inference"
    assert "limit: inference" in summary.report()
    # the progress line shows each stage's rate and the limit while it runs
    assert "fps; limit: inference" in capsys.readouterr().err


@pytest.mark.parametrize("slow", ["capture", "inference", "write"])
def test_the_slowest_stage_is_named_the_limit(slow):
    delays = {stage: (30 if stage == slow else 2) * MS for stage in ("capture", "inference", "write")}
    summary = Stream(
        Frames(6),
        FakePredictor(delay_s=delays["inference"]),
        sinks=[SlowSink(delays["write"])],
        prepare=SlowPrepare(delays["capture"]),
    ).run()
    assert summary.bottleneck == slow, summary.report()
    assert f"limit: {slow}, " in summary.report()
    assert summary.to_dict()["bottleneck"] == slow
    assert summary.stages[slow]["fps"] == pytest.approx(1 / delays[slow], rel=0.5)


def test_file_frames_all_arrive_in_order_whatever_each_stage_takes():
    class Uneven(FakePredictor):
        def predict_pair(self, pair):
            time.sleep((pair.index * 7 % 5) * 4 * MS)  # 0-16 ms, in no order
            return super().predict_pair(pair)

    class Recorder(SlowSink):
        def write(self, frame):
            self.numbers.append((frame.number, frame.pair.index, float(frame.result.disparity_px[0, 0])))

    sink = Recorder(0.0)
    summary = Stream(Frames(20, delay_s=3 * MS), Uneven(), sinks=[sink], prepare=SlowPrepare(2 * MS)).run()
    assert sink.numbers == [(n, n, n + 5.0) for n in range(20)]
    assert summary.frames_dropped == 0 and summary.frames_written == 20


# -- live sources ----------------------------------------------------------------------------------


def test_a_live_source_is_never_queued_behind_a_slow_model():
    camera = Camera(period_s=5 * MS)
    behind = []  # frames the camera had delivered past the one inference starts on

    class Slow(FakePredictor):
        def predict_pair(self, pair):
            behind.append(camera._grabbed - 1 - pair.index)
            return super().predict_pair(pair)

    summary = Stream(camera, Slow(delay_s=60 * MS), max_frames=8).run()
    assert summary.frames_written == 8 and summary.stopped_by == "max-frames"  # processed frames count
    assert len(behind) == 8
    # A queue of 2 frames in front of a 60 ms model would put inference about 24 camera frames behind.
    assert statistics.median(behind) <= 4, behind
    assert summary.source_stats["dropped_frames"] > 50  # skipped at the camera, never prepared
    assert summary.frames_read <= summary.frames_processed + 2, summary.report()
    assert no_stage_threads_left()


@pytest.mark.parametrize("max_frames", [1, 3])
def test_a_live_source_reads_no_frame_past_max_frames(max_frames):
    """live --max-frames N reported N + 1 frames read: capture took one more while inference did the last."""
    summary = Stream(Camera(period_s=2 * MS), FakePredictor(delay_s=30 * MS), max_frames=max_frames).run()
    assert summary.frames_processed == summary.frames_written == max_frames and summary.stopped_by == "max-frames"
    assert summary.frames_read == max_frames + summary.frames_dropped, summary
    assert no_stage_threads_left()


def test_a_live_frame_is_converted_only_when_the_model_will_take_it():
    """30 frames a second in front of a 5 fps model: 1 of 6 converted, not all of them (they were:
    the capture stage took every frame the camera delivered, and the hand-over dropped 5 of 6)."""

    class Counting(Camera):
        developed = 0

        def _develop(self, raw):
            self.developed += 1
            return super()._develop(raw)

    camera = Counting(period_s=33 * MS)
    summary = Stream(camera, FakePredictor(delay_s=200 * MS), max_frames=6).run()
    assert summary.frames_processed == 6 and camera._grabbed >= 30
    assert camera.developed <= summary.frames_processed + 2, (camera.developed, camera._grabbed)
    assert summary.frames_read == camera.developed


def test_live_frames_reach_inference_newest_first_and_in_order():
    seen = []

    class Recording(FakePredictor):
        def predict_pair(self, pair):
            seen.append(pair.index)
            return super().predict_pair(pair)

    summary = Stream(Camera(period_s=2 * MS, count=60), Recording(delay_s=20 * MS)).run()
    assert summary.stopped_by == "end"
    assert seen == sorted(set(seen)) and len(seen) < 60
    assert seen[-1] == 59  # the camera's last frame is not dropped by the end of the stream


# -- errors and Ctrl-C -----------------------------------------------------------------------------


class FailingPredictor(FakePredictor):
    def predict_pair(self, pair):
        if pair.index >= 3:  # a camera may skip frame 3 itself
            raise RuntimeError(f"CUDA error: out of memory on frame {pair.index}")
        return super().predict_pair(pair)


class FailingSink(SlowSink):
    def write(self, frame):
        if frame.number == 3:
            raise OutputError("cannot write frame 3: disk full")
        super().write(frame)


class BrokenFrames(Frames):
    def _frames(self):
        yield from list(super()._frames())[:3]
        raise InputError("frame 3 is damaged")


@pytest.mark.parametrize(
    "stage, error, message",
    [
        ("capture", (InputError, CameraError), "frame 3 is damaged|unplugged at frame 3"),
        ("prepare", InputError, "cannot rectify frame"),
        ("inference", RuntimeError, "out of memory on frame"),
        ("write", OutputError, "disk full"),
    ],
)
@pytest.mark.parametrize("live", [False, True], ids=["file", "live"])
def test_an_error_in_any_stage_ends_the_stream_with_its_message(stage, error, message, live):
    if live:
        source = Camera(period_s=2 * MS, count=50, fail_at=3 if stage == "capture" else None)
    else:
        source = BrokenFrames(50, delay_s=2 * MS) if stage == "capture" else Frames(50, delay_s=2 * MS)
    sink = FailingSink(0.0) if stage == "write" else SlowSink(0.0)
    stream = Stream(
        source,
        FailingPredictor(delay_s=5 * MS) if stage == "inference" else FakePredictor(delay_s=5 * MS),
        sinks=[sink],
        prepare=SlowPrepare(fail_at=3) if stage == "prepare" else None,
    )
    started = time.perf_counter()
    with pytest.raises(error, match=message):
        stream.run()
    assert time.perf_counter() - started < 5.0  # no hang
    assert stream.summary.stopped_by == "error" and re.search(message, stream.summary.error)
    if not live:  # every frame before the failing one went through (a camera may have dropped some)
        assert sink.numbers == list(range(3))
    assert no_stage_threads_left()


def test_ctrl_c_without_a_window_stops_promptly():
    sink = SlowSink(0.0)
    stream = Stream(Frames(10_000, delay_s=5 * MS), FakePredictor(delay_s=5 * MS), sinks=[sink])
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.perf_counter()
    try:
        summary = stream.run(raise_interrupt=False)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 3.0
    assert summary.stopped_by == "interrupt" and 1 <= summary.frames_written < 10_000
    assert sink.numbers == list(range(summary.frames_written))
    assert no_stage_threads_left()
