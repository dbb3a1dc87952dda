"""The threaded pipeline: outputs, fixed colour range, overlap of the stages, and every way to stop."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
import time

import cv2
import numpy as np
import pytest

import rtstereo
from conftest import BACKGROUND_PX, read_video, render_scene
from rtstereo.errors import InputError, OutputError
from rtstereo.io import read_disparity
from rtstereo.sinks.video import ColourScale, DisparityPngSink, Sink, VideoSink
from rtstereo.sources.base import CameraError, FrameSource
from rtstereo.sources.cameras import UVCSource
from rtstereo.sources.video import TwoVideoSource
from rtstereo.stream import StageClock, Stream, StreamInterrupted
from rtstereo.types import DisparityResult, StereoPair


class Frames(FrameSource):
    """In-memory frames, optionally slow to read."""

    def __init__(self, count: int = 6, delay_s: float = 0.0, fps: float | None = 10.0, size_hw=(32, 64), period_s=0.1):
        self.count, self.delay_s, self.fps, self.size_hw, self.period_s = count, delay_s, fps, size_hw, period_s
        self.description = f"{count} test frames"
        self.closed = False

    @property
    def expected_frames(self):
        return self.count

    def _frames(self):
        try:
            for index in range(self.count):
                time.sleep(self.delay_s)
                image = np.full((*self.size_hw, 3), index, np.uint8)
                timestamp_s = None if self.period_s is None else index * self.period_s
                yield StereoPair(image, image, index=index, timestamp_s=timestamp_s)
        finally:
            self.closed = True


class LiveFrames(Frames):
    """The in-memory frames as a camera's."""

    live = True


class FakePredictor:
    """Disparity = frame index + 5 everywhere (a plain value to check outputs by); optionally slow."""

    name = "fake"
    settings = {"max_disp": 32}

    def __init__(self, delay_s: float = 0.0, slow_from: int = 0):
        self.delay_s, self.slow_from = delay_s, slow_from

    def predict_pair(self, pair):
        if pair.index >= self.slow_from:
            time.sleep(self.delay_s)
        disparity = np.full(pair.size_hw, pair.index + 5.0, np.float32)
        return DisparityResult(disparity, timings_ms={"total": 1.0}, model=self.name)


class SlowSink(Sink):
    def __init__(self, delay_s: float):
        self.delay_s, self.numbers = delay_s, []

    def write(self, frame):
        time.sleep(self.delay_s)
        self.numbers.append(frame.number)

    def close(self):
        pass

    @property
    def outputs(self):
        return []


class PreviewSink(SlowSink):
    """Keeps the preview image of each frame (in ``numbers``)."""

    wants_preview = True

    def write(self, frame):
        self.numbers.append(frame.preview)


class ScriptedWindow:
    """Stands in for the OpenCV window (no display here): answers poll() from a script."""

    def __init__(self, quit_after_shown: int = 1, action: str = "quit"):
        self.quit_after_shown, self.action = quit_after_shown, action
        self.shown, self.polls, self.closed = [], 0, False

    def show(self, image):
        self.shown.append(image)

    def poll(self, wait_ms: int = 15):
        time.sleep(wait_ms / 1e3)
        self.polls += 1
        if len(self.shown) >= self.quit_after_shown:
            if self.action == "interrupt":
                raise KeyboardInterrupt
            return True
        return False

    def close(self):
        self.closed = True


# -- outputs ---------------------------------------------------------------------------------------


def test_videos_to_mp4_and_png16_with_real_sgbm(two_videos, tmp_path, scene):
    video, pngs = VideoSink(tmp_path / "out" / "o.mp4", fps=10), DisparityPngSink(tmp_path / "png" / "disp")
    stream = Stream(
        TwoVideoSource(*two_videos),
        rtstereo.load("sgbm", max_disp=32),
        sinks=[video, pngs],
        colour_scale=ColourScale(32),
    )
    summary = stream.run()
    assert (summary.frames_read, summary.frames_processed, summary.frames_written) == (6, 6, 6)
    assert summary.stopped_by == "end" and summary.error is None
    assert set(summary.stages) == {"capture", "inference", "write"}
    assert all(s["frames"] == 6 and s["fps"] > 0 for s in summary.stages.values())
    assert summary.bottleneck in summary.stages
    frames = read_video(tmp_path / "out" / "o.mp4")
    assert len(frames) == 6 and frames[0].shape == (64, 256, 3)
    assert np.abs(frames[2][:, :128].astype(int) - scene.lefts[2]).mean() < 30  # the left image, as encoded
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == [f"disp_{n:05d}.png" for n in range(6)]
    disparity = read_disparity(tmp_path / "png" / "disp_00003.png")
    assert np.nanmedian(disparity[2:12, 40:100]) == pytest.approx(BACKGROUND_PX, abs=0.5)
    data = json.loads(summary.write_json(tmp_path / "s.json").read_text())
    assert data["frames_written"] == 6 and data["stages"]["inference"]["frames"] == 6 and data["model"] == "sgbm"


def test_the_preview_shows_a_colour_left_view_matched_in_grey_in_colour():
    """The preview (window, mp4) showed the grey view matched where a colour left camera sat beside a mono one."""
    colour = np.zeros((32, 64, 3), np.uint8)
    colour[..., 0] = 200

    class ColourAndGrey(Frames):
        def _frames(self):
            for index in range(2):
                yield StereoPair(colour, np.full((32, 64, 3), 7, np.uint8), index=index)

    sink = PreviewSink(0.0)
    with pytest.warns(UserWarning, match="matched in grey"):
        Stream(ColourAndGrey(), FakePredictor(), sinks=[sink], colour_scale=ColourScale(32)).run()
    assert [tuple(image[0, 0]) for image in sink.numbers] == [(200, 0, 0)] * 2  # the left half: the left view


def test_colour_range_is_fixed_across_frames_not_per_frame():
    sink = PreviewSink(0.0)
    Stream(Frames(4), FakePredictor(), sinks=[sink], colour_scale=ColourScale(32)).run()
    # Frame k has disparity k + 5 everywhere: with a fixed range the colour changes with the value;
    # per-frame scaling would paint every frame with the same (top) colour.
    colours = [tuple(image[0, -1]) for image in sink.numbers]
    assert len(set(colours)) == len(colours) == 4
    assert sink.numbers[0].shape == (32, 128, 3)  # left | disparity


def test_colour_range_is_measured_once_from_the_first_frames(tmp_path):
    scale = ColourScale(None, warmup_frames=3)
    stream = Stream(Frames(6), FakePredictor(), sinks=[VideoSink(tmp_path / "o.mp4", fps=10)], colour_scale=scale)
    summary = stream.run()
    # the 99th percentile of frames 0..2 (disparities 5, 6, 7), then frozen
    assert summary.colour_max_disp_px == pytest.approx(7.0)
    assert summary.frames_written == 6 and len(read_video(tmp_path / "o.mp4")) == 6


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("64",), "colour range: expected a max disparity in pixels, or None to measure it, got str '64'"),
        ((True,), "colour range: expected .* got bool"),
        ((float("inf"),), "max disparity must be > 0 pixels, got inf"),  # every frame coloured as 0 px
        ((0,), "max disparity must be > 0 pixels, got 0"),
        ((None, 0), "warmup_frames must be >= 1, got 0"),  # taken as 1 without a word
        ((None, 2.5), "warmup_frames: expected a whole number of frames >= 1, got float 2.5"),
    ],
)
def test_a_bad_colour_range_is_an_input_error(args, match):
    with pytest.raises(InputError, match=match):
        ColourScale(*args)


def test_a_summary_path_of_the_wrong_type_is_an_input_error():
    summary = Stream(Frames(1), FakePredictor(), colour_scale=ColourScale(32)).run()
    with pytest.raises(InputError, match=r"summary file: expected a .json file name \(str or Path\), got int"):
        summary.write_json(5)  # pathlib's bare TypeError before


def test_a_summary_under_a_file_names_the_file_in_the_way(tmp_path):
    """It said "cannot write the summary taken/s.json: [Errno 17] File exists: 'taken'"."""
    summary = Stream(Frames(1), FakePredictor(), colour_scale=ColourScale(32)).run()
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        summary.write_json(blocker / "s.json")
    assert str(info.value) == f"cannot write the summary {blocker / 's.json'}: {blocker} is a file, not a folder"


def test_a_temporal_filter_that_is_not_one_is_refused_before_the_stream_starts():
    with pytest.raises(InputError, match="temporal: expected a TemporalFilter .* got float 0.3"):
        Stream(Frames(2), FakePredictor(), temporal=0.3)


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        # the stream ran to its end, then failed with AttributeError: 'str' object has no attribute 'close'
        ({"window": "yes"}, "window: expected a window with show, poll and close .* got str 'yes'"),
        # TypeError: 'str' object is not callable, from the capture thread
        ({"prepare": "resize"}, "prepare: expected a function of a StereoPair .* got str 'resize'"),
    ],
)
def test_a_window_or_prepare_that_is_not_one_is_refused_before_the_stream_starts(parts, match):
    with pytest.raises(InputError, match=match):
        Stream(Frames(2), FakePredictor(), **parts)


class FadeInPredictor(FakePredictor):
    """No disparity at all for the first ``dark`` frames (a video fading in from black), then as FakePredictor."""

    def __init__(self, dark: int):
        super().__init__()
        self.dark = dark

    def predict_pair(self, pair):
        result = super().predict_pair(pair)
        if pair.index < self.dark:
            result.disparity_px[:] = np.nan
        return result


@pytest.mark.parametrize(("dark", "expected_px"), [(3, 10.0), (30, 32.0)])
def test_the_colour_range_is_measured_on_frames_with_disparities_not_on_a_black_fade_in(tmp_path, dark, expected_px):
    """The first frames of a fade-in from black have no disparity: the range froze at 0..1 px, every later
    frame saturated. Black frames are passed over (frames 3..5 measure it: 99th percentile of 8, 9, 10); with
    none to measure in the frames held, the range is the model's (32 px)."""
    scale = ColourScale(None, warmup_frames=3)
    sink = VideoSink(tmp_path / "o.mp4", fps=10)
    summary = Stream(Frames(36), FadeInPredictor(dark), sinks=[sink], colour_scale=scale).run()
    assert summary.colour_max_disp_px == pytest.approx(expected_px, abs=0.05)
    assert summary.frames_written == 36 and len(read_video(tmp_path / "o.mp4")) == 36


def test_a_live_recording_takes_the_measured_rate(tmp_path):
    sink = VideoSink(tmp_path / "o.mp4", fps=None)
    Stream(Frames(6, fps=None), FakePredictor(delay_s=0.05), sinks=[sink], colour_scale=ColourScale(32)).run()
    assert 5 < sink.fps < 40  # about 20 fps: one frame per 50 ms of inference
    assert len(read_video(tmp_path / "o.mp4")) == 6


def test_a_live_recording_gets_the_rate_of_the_whole_recording_not_of_its_first_frames(tmp_path, caplog):
    """The mp4's rate was fixed from the first 5 results: a model fast for them (or a camera whose rate settled later)
    gave a file that played several times too fast. Its header now gets the whole recording's rate as it closes,
    here measured as the results reach the writer (the frames carry no timestamps)."""
    sink = VideoSink(tmp_path / "o.mp4", fps=None)
    predictor = FakePredictor(delay_s=0.08, slow_from=6)  # about 12 fps after 6 fast frames, 120 fps capped before
    started = time.perf_counter()
    with caplog.at_level("DEBUG", logger="rtstereo.stream"):
        source = Frames(16, fps=None, period_s=None)
        summary = Stream(source, predictor, sinks=[sink], colour_scale=ColourScale(32)).run()
    span_s = time.perf_counter() - started
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    stored_fps, frames = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    assert frames == 16 and stored_fps == pytest.approx(summary.video_fps, abs=1e-6) == pytest.approx(sink.fps)
    # 15 intervals, about 10 of 80 ms: at most 15 / 0.8 s, at least 15 over all the time the run took
    assert 15 / span_s <= stored_fps <= 15 / 0.8, (stored_fps, span_s)
    assert "o.mp4: opened at" in caplog.text and f"o.mp4: recorded at {stored_fps:.2f} fps" in caplog.text


@pytest.mark.parametrize(("camera_fps", "expected"), [(240.0, 240.0), (None, 120.0)])
def test_a_fast_cameras_recording_keeps_its_rate_and_one_without_a_rate_is_capped(tmp_path, camera_fps, expected):
    """A 240 fps camera's mp4 was capped at 120 fps, as a measurement without a camera rate is: it played at half
    speed. The frames here are taken 1000 a second (their timestamps), whatever the pace of the pipeline, which on a
    loaded machine fell under 240 a second when the rate came from their arrival (the test failed then)."""
    sink = VideoSink(tmp_path / "o.mp4")
    frames = LiveFrames(30, fps=camera_fps, period_s=0.001)
    Stream(frames, FakePredictor(), sinks=[sink], colour_scale=ColourScale(32)).run()
    assert sink.fps == expected


@pytest.mark.parametrize("period_s", [0.1, 0.04])
def test_a_live_recordings_rate_is_that_of_its_frames_timestamps(tmp_path, period_s):
    """Frames taken every ``period_s`` (their timestamps) and processed far faster for the first 6: the mp4 played at
    the model's rate of its first 5 frames (120 fps, capped), where its frames were taken at 1 / period_s."""
    sink = VideoSink(tmp_path / "o.mp4")
    frames, predictor = LiveFrames(16, fps=None, period_s=period_s), FakePredictor(delay_s=0.03, slow_from=6)
    summary = Stream(frames, predictor, sinks=[sink], colour_scale=ColourScale(32)).run()
    assert sink.fps == summary.video_fps == pytest.approx(1 / period_s, abs=0.01)
    assert summary.throughput_fps == pytest.approx(1 / period_s)  # 15 intervals of period_s


def test_a_video_sink_without_a_rate_takes_the_videos_own_over_its_stride(tmp_path, two_videos):
    """VideoSink(path) behind a video was recorded at the measured processing rate, capped at the video's: a 10 fps
    video at stride 2 played twice as fast (10 fps), and behind a slow model slower than it was filmed."""
    sink = VideoSink(tmp_path / "o.mp4")
    source = TwoVideoSource(*two_videos, stride=2)
    summary = Stream(source, FakePredictor(delay_s=0.02), sinks=[sink], colour_scale=ColourScale(32)).run()
    assert sink.fps == summary.video_fps == 5.0
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == 5.0 and capture.get(cv2.CAP_PROP_FRAME_COUNT) == summary.frames_written
    capture.release()


def test_numpy_start_and_stride_number_the_frames_as_ints(tmp_path, two_videos):
    """np.int64 --start/--stride were kept as given: the pairs' indices were numpy integers, and the summary left
    out source_frames (PNG n is frame start + n * stride), whose numbers it checks to be ints."""
    source = TwoVideoSource(*two_videos, start=np.int64(1), stride=np.int32(2))
    summary = Stream(source, FakePredictor(), sinks=[DisparityPngSink(tmp_path / "d")]).run()
    assert summary.source_frames == {"start": 1, "stride": 2}
    assert [type(pair.index) for pair in TwoVideoSource(*two_videos, start=np.int64(1))] == [int] * 5


def test_a_live_recording_is_never_faster_than_its_camera(tmp_path):
    sink = VideoSink(tmp_path / "o.mp4", fps=None)
    Stream(Frames(6, fps=2.0), FakePredictor(), sinks=[sink], colour_scale=ColourScale(32)).run()
    assert sink.fps == 2.0  # processed far faster than the 2 fps the camera delivers


def test_a_recording_standing_in_for_a_camera_shows_its_progress_out_of_its_frame_count(tmp_path, capsys):
    """live uvc:FILE drew a bar with no total; a slow model drops frames, which have passed all the same."""
    from conftest import write_video

    scene = render_scene(frames=20)
    video = write_video(tmp_path / "sbs.mp4", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    source = UVCSource(str(video), fps=100.0)  # plays at 100 fps, in front of a 20 fps model
    summary = Stream(source, FakePredictor(delay_s=0.05), colour_scale=ColourScale(32), progress=True).run()
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert summary.frames_written < 20, summary.frames_written  # frames were dropped
    assert any(line.startswith("stream: 100%") and " 20/20 " in line for line in bar), bar[-3:]


@pytest.mark.parametrize("max_frames, total", [(5, 5), (30, 20)])
def test_a_recording_standing_in_for_a_camera_with_max_frames_counts_to_the_frames_it_reads(
    tmp_path, capsys, max_frames, total
):
    """live uvc:FILE --max-frames 5 of 20 frames drew its bar out of 20 and stopped at 25 %: the total is the
    frames read, the smaller of --max-frames (processed frames) and the recording's count."""
    from conftest import write_video

    scene = render_scene(frames=20)
    video = write_video(tmp_path / "sbs.mp4", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    source = UVCSource(str(video), fps=100.0)
    stream = Stream(source, FakePredictor(), colour_scale=ColourScale(32), progress=True, max_frames=max_frames)
    summary = stream.run()
    bar = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.startswith("stream:")]
    assert summary.frames_written == 5 if max_frames == 5 else summary.frames_written <= 20, summary.frames_written
    assert bar[-1].startswith("stream: 100%") and f" {total}/{total} " in bar[-1], bar[-3:]


# -- overlap ---------------------------------------------------------------------------------------


def test_a_stage_clock_rates_its_frames_by_its_busy_time():
    clock = StageClock("inference")
    for seconds in (0.1, 0.3, 0.2, 0.2):
        clock.add(seconds)
    assert clock.frames == 4 and clock.busy_s == pytest.approx(0.8)
    assert clock.fps == pytest.approx(5.0) and clock.ms_per_frame == pytest.approx(200.0)
    assert StageClock("write").fps == 0.0 and StageClock("write").ms_per_frame == 0.0  # no frame yet


def test_a_stage_clock_leaves_its_unrated_frames_out_of_its_rate():
    clock = StageClock("capture")
    clock.add(2.0, rated=False)  # a camera's start
    for _ in range(3):
        clock.add(0.1)
    assert clock.frames == 4 and clock.fps == pytest.approx(10.0) and clock.ms_per_frame == pytest.approx(100.0)
    assert StageClock("capture", 1, 0.0, unrated=1, unrated_s=0.5).ms_per_frame == 0.0


@pytest.mark.parametrize("live", [True, False])
def test_a_cameras_first_frame_is_left_out_of_the_capture_stages_rate(live):
    """Its wait is the camera's start: 12 frames of a 10 fps camera, 11 intervals, read 11.0 fps."""
    stream = Stream((LiveFrames if live else Frames)(6), FakePredictor(), colour_scale=ColourScale(32))
    summary = stream.run()
    assert summary.stages["capture"]["frames"] == summary.frames_read == 6
    assert stream.clocks["capture"].unrated == (1 if live else 0) and stream.clocks["inference"].unrated == 0


@pytest.mark.parametrize(("live", "fps"), [(True, 10.0), (False, 12 / 1.3)])
def test_a_cameras_end_to_end_rate_counts_its_frames_less_one_over_the_time_they_span(live, fps):
    """12 frames of a 10 fps camera, the first result at 1.0 s and the last at 2.1 s, 2.3 s from the start to the
    last frame written: 10 fps, where 12 / 1.1 s read 10.9 (12 / 1.3 s over the time from the start read 9.2); a
    video's rate runs from the start."""
    stream = Stream((LiveFrames if live else Frames)(12), FakePredictor())
    stream._written, stream._results_arrived, stream._first_result_at, stream._last_result_at = 12, 12, 1.0, 2.1
    assert stream._throughput_fps(1.3) == pytest.approx(fps)
    stream._written = stream._results_arrived = 1  # one frame spans no interval: from the start
    assert stream._throughput_fps(0.5) == pytest.approx(2.0)


def test_stages_overlap_so_throughput_is_that_of_the_slowest_stage():
    count, delay_s = 10, 0.04
    sink = SlowSink(delay_s)
    summary = Stream(Frames(count, delay_s=delay_s), FakePredictor(delay_s=delay_s), sinks=[sink]).run()
    serial_s = 3 * count * delay_s
    assert summary.wall_s < 0.75 * serial_s, summary.report()
    assert sink.numbers == list(range(count))
    for stage in summary.stages.values():
        assert stage["fps"] == pytest.approx(1 / delay_s, rel=0.5)


def test_an_export_on_first_use_is_left_out_of_the_inference_stages_rate():
    class ExportsFirst(FakePredictor):
        def predict_pair(self, pair):
            result = super().predict_pair(pair)
            if pair.index == 0:  # as an ONNX Runtime predictor's first frame: the export, timed apart
                time.sleep(0.5)
                result = DisparityResult(result.disparity_px, timings_ms={"total": 1.0, "export": 500.0})
            return result

    summary = Stream(Frames(5), ExportsFirst(delay_s=0.01)).run()
    assert summary.stages["inference"]["ms_per_frame"] < 60, summary.stages  # with the export: about 110


def test_the_wait_for_a_stalled_camera_after_the_last_frame_is_no_part_of_the_streams_time():
    """The stream's seconds run to the last frame written, as the README says: the 5 s waited for a camera that then
    counted as stalled were counted in (40 frames at 29 fps read 6.2 fps end to end)."""

    class StallingCamera(Frames):
        def _frames(self):
            yield from super()._frames()
            time.sleep(1.0)  # the wait for the frame that never comes
            raise CameraError("camera test: no frame for 1 s after 6 frames; the camera stalled or was unplugged")

    stream = Stream(StallingCamera(6, delay_s=0.05), FakePredictor(), sinks=[SlowSink(0.0)])
    with pytest.raises(CameraError, match="stalled"):
        stream.run()
    summary = stream.summary
    assert summary.frames_written == 6 and summary.stopped_by == "error"
    assert 0.25 < summary.wall_s < 0.9, summary.report()
    assert summary.throughput_fps == pytest.approx(6 / summary.wall_s, rel=0.01)
    assert summary.closing_s < 0.5, summary  # nor is it time spent closing the outputs


def test_an_output_that_fails_as_it_closes_after_another_error_is_said(caplog):
    """A camera unplugged, then the mp4 found incomplete as it closed (a full disk) and removed: only the camera's
    error was said, and the mp4 was missing from the files written without a word."""

    class Unplugged(Frames):
        def _frames(self):
            yield from super()._frames()
            raise CameraError("camera test stopped delivering frames after 3 frames (unplugged?)")

    class FailsToClose(SlowSink):
        def close(self):
            raise OutputError("cannot write the video out.mp4: OpenCV's writer left a file of 1 frame, of 3; removed")

    stream = Stream(Unplugged(3), FakePredictor(), sinks=[FailsToClose(0.0)])
    with caplog.at_level("WARNING", logger="rtstereo.stream"), pytest.raises(CameraError, match="unplugged"):
        stream.run()
    assert [r.getMessage() for r in caplog.records if "out.mp4" in r.getMessage()] == [
        "cannot write the video out.mp4: OpenCV's writer left a file of 1 frame, of 3; removed (besides the error "
        "that ended the run)"
    ]
    assert stream.summary.error == "camera test stopped delivering frames after 3 frames (unplugged?)"


def test_frames_that_change_size_mid_stream_are_said_once(caplog):
    """A camera (or an image sequence) whose frames change size: PNGs of the new size were written without a word,
    under a summary whose frame_size_hw says every disparity written is in pixels of the first frame's size."""

    class Resized(Frames):
        def _frames(self):
            for pair in super()._frames():
                yield pair
                if pair.index == 2:
                    self.size_hw = (48, 96)

    sink = SlowSink(0.0)
    with caplog.at_level("WARNING", logger="rtstereo.stream"):
        summary = Stream(Resized(6), FakePredictor(), sinks=[sink]).run()
    said = [r.getMessage() for r in caplog.records if "where the stream began" in r.getMessage()]
    assert said == [
        "frame 3 is 48x96 (HxW), where the stream began at 32x64: its disparities are in pixels of its own size, while "
        "the summary's frame_size_hw and calibration are the first frame's (--size HxW resizes every frame to one size)"
    ]
    assert summary.frame_size_hw == [32, 64] and sink.numbers == list(range(6))


def test_closing_the_outputs_is_timed_apart_from_the_streams_rate():
    """With --adapt, the adapter's shutdown (up to 2 s) and checkpoint save counted in the rate: a 12-frame
    stream at 25.9 frames/s reported 4.56 fps."""

    class SlowToClose(SlowSink):
        def close(self):
            time.sleep(1.0)  # as the adapter's shutdown and its checkpoint's save

    class Adapting(FakePredictor):
        name = "fake (adapting online)"

    summary = Stream(Frames(6), Adapting(delay_s=0.01), sinks=[SlowToClose(0.0)]).run()
    assert summary.wall_s < 0.9 and summary.closing_s >= 1.0, summary
    assert summary.throughput_fps == pytest.approx(6 / summary.wall_s, rel=0.01)
    assert summary.to_dict()["closing_s"] == summary.closing_s
    report = summary.report()
    pattern = r"then \d+\.\d s closing the outputs \(online adaptation's shutdown and checkpoint\), not counted above"
    assert re.search(pattern, report), report
    hybrid = dataclasses.replace(summary, model="hybrid (its network adapting online)")  # --model default --adapt
    assert re.search(pattern, hybrid.report()), hybrid.report()
    quick = Stream(Frames(3), FakePredictor()).run()
    assert quick.closing_s < 0.1 and "closing the outputs" not in quick.report()


# -- stopping --------------------------------------------------------------------------------------


def test_max_frames_stops_the_source_and_closes_it():
    source = Frames(10)
    summary = Stream(source, FakePredictor(), max_frames=3).run()
    assert summary.frames_written == 3 and summary.stopped_by == "max-frames" and source.closed


@pytest.mark.parametrize("max_frames", [0, 1, 3])
def test_max_frames_counts_the_frames_processed_of_a_live_source_as_of_a_file(max_frames):
    """A live source is counted at inference (it drops frames): max_frames=0 processed one frame there."""

    class Live(Frames):
        live = True

    for source in (Frames(10), Live(10)):
        summary = Stream(source, FakePredictor(), max_frames=max_frames).run()
        assert summary.frames_processed == summary.frames_written == max_frames, (source.live, summary)
        assert summary.stopped_by == "max-frames" and (source.closed or max_frames == 0)  # 0: never opened


def test_a_stream_runs_once_and_a_second_run_says_so():
    stream = Stream(Frames(3), FakePredictor())
    first = stream.run()
    assert first.frames_written == 3
    # was: a second summary of the first run's 3 frames "in 0.0 s", at tens of thousands of frames per second
    with pytest.raises(rtstereo.InputError, match="this Stream has run already .*make a new Stream"):
        stream.run()
    assert stream.summary is first


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"sinks": "out"}, "sinks: expected a list of outputs .*, got str 'out'"),
        ({"predictor": "sgbm"}, r"predictor: expected a model from rtstereo.load\(...\), got str"),
        ({"source": [1, 2]}, "source: expected a frame source .*, got list"),
        ({"queue_size": 0}, "queue_size must be a whole number of frames >= 1, got 0"),  # was: no bound at all
        ({"max_frames": -1}, "max_frames must be a whole number >= 0 or None"),
        ({"colour_scale": 64}, r"colour_scale: expected a ColourScale \(ColourScale\(max_disp_px\)"),
        ({"progress": "no"}, "progress: expected True or False, got str 'no'"),  # was: a progress bar
    ],
)
def test_parts_a_stream_cannot_use_are_refused_when_it_is_made(parts, message):
    with pytest.raises(rtstereo.InputError, match=message):
        Stream(**{"source": Frames(3), "predictor": FakePredictor(), **parts})


def test_a_model_name_given_as_the_predictor_gets_the_call_that_loads_it():
    """Stream(source, "sgbm") said "got str" alone; so did lr_check and run_local."""
    from pathlib import Path

    from rtstereo.batch.local import run_local
    from rtstereo.confidence import lr_check

    said = "predictor: expected a model from rtstereo.load(...), got str 'sgbm': load it first, rtstereo.load('sgbm')"
    for call in (lambda: Stream(Frames(3), "sgbm"), lambda: lr_check("sgbm", None)):
        with pytest.raises(rtstereo.InputError) as caught:
            call()
        assert str(caught.value) == said
    with pytest.raises(rtstereo.InputError, match=r"^predictor: expected .*, got PosixPath 'm.onnx': load it first, "):
        Stream(Frames(3), Path("m.onnx"))
    with pytest.raises(rtstereo.InputError, match=r"PredictorOptions\(...\).load\(\), got str 'bm': load it first"):
        run_local(None, "bm", [])


def test_a_progress_label_must_be_a_str():
    with pytest.raises(rtstereo.InputError, match="progress_label: expected a str, got bool True"):
        Stream(Frames(3), FakePredictor(), progress_label=True)


def test_raise_interrupt_must_be_a_bool():
    stream = Stream(Frames(3), FakePredictor())
    with pytest.raises(rtstereo.InputError, match="raise_interrupt: expected True or False, got str 'false'"):
        stream.run(raise_interrupt="false")


class _BrokenIter(Frames):
    def __iter__(self):
        raise OSError("device busy")


class _BrokenPreviewSink(SlowSink):
    @property
    def wants_preview(self):
        raise RuntimeError("sink broken")


@pytest.mark.parametrize(
    ("source", "sinks", "message"),
    [(_BrokenIter(3), [], "device busy"), (Frames(3), [_BrokenPreviewSink(0.0)], "sink broken")],
)
def test_a_stage_failing_before_its_first_frame_ends_the_run_with_its_error(source, sinks, message):
    # was: the stage's thread died before passing on the end of the input, and run() waited for ever
    stream = Stream(source, FakePredictor(), sinks=sinks)
    raised = []

    def run():
        try:
            stream.run()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            raised.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "the run hangs"
    assert [str(exc) for exc in raised] == [message]


def test_window_quit_returns_at_once_even_when_inference_is_slow(tmp_path):
    sink = VideoSink(tmp_path / "o.mp4", fps=10)
    window = ScriptedWindow(quit_after_shown=1)
    stream = Stream(
        Frames(5),
        FakePredictor(delay_s=5.0, slow_from=1),
        sinks=[sink],
        window=window,
        colour_scale=ColourScale(32),
    )
    started = time.perf_counter()
    summary = stream.run()
    assert time.perf_counter() - started < 2.0  # the model is still busy with frame 1 for 5 s
    assert summary.stopped_by == "window" and window.closed
    assert summary.frames_written == 1 and len(read_video(tmp_path / "o.mp4")) == 1


@pytest.mark.parametrize("raise_interrupt", [True, False])
def test_ctrl_c_stops_cleanly_and_keeps_what_was_written(tmp_path, raise_interrupt):
    """Ctrl-C is raised again once the outputs are closed (a script looping over videos went on to the next
    one); with raise_interrupt=False, as the command line and Ray's workers run it, the summary comes back."""
    sink, pngs = VideoSink(tmp_path / "o.mp4", fps=10), DisparityPngSink(tmp_path / "d")
    window = ScriptedWindow(quit_after_shown=2, action="interrupt")
    stream = Stream(
        Frames(50, delay_s=0.02),
        FakePredictor(),
        sinks=[sink, pngs],
        window=window,
        colour_scale=ColourScale(32),
    )
    if raise_interrupt:
        with pytest.raises(StreamInterrupted) as raised:  # a KeyboardInterrupt
            stream.run()
        # stream.summary is Optional (None until a run ends): the exception holds it typed, for a script's except
        assert raised.value.summary is stream.summary and isinstance(raised.value, KeyboardInterrupt)
        assert str(raised.value) == f"interrupted after {stream.summary.frames_written} frames written"
    else:
        assert stream.run(raise_interrupt=False) is stream.summary
    summary = stream.summary
    assert summary.stopped_by == "interrupt"
    written = summary.frames_written
    assert 2 <= written < 50
    assert len(read_video(tmp_path / "o.mp4")) == written
    assert sorted(p.name for p in tmp_path.glob("d_*.png")) == [f"d_{n:05d}.png" for n in range(written)]


def test_a_ctrl_c_while_the_outputs_close_is_raised_again_after_they_are_closed(monkeypatch):
    """The first Ctrl-C lands after the input ended, while run() waits for the writer: still raised, once closed."""
    wait = threading.Event.wait
    interrupted = []

    def ctrl_c_in_wait(event, timeout=None):
        if threading.current_thread() is threading.main_thread() and not interrupted and event is stream._writer_done:
            interrupted.append(event)
            raise KeyboardInterrupt
        return wait(event, timeout)

    sink = SlowClose(0.0)
    stream = Stream(Frames(3), FakePredictor(), sinks=[sink], colour_scale=ColourScale(32))
    monkeypatch.setattr(stream, "_supervise", lambda: None)  # as if the input had ended
    monkeypatch.setattr(threading.Event, "wait", ctrl_c_in_wait)
    with pytest.raises(KeyboardInterrupt):
        stream.run()
    assert interrupted and sink.closed and stream.summary is not None


def test_a_stop_from_another_thread_returns_the_summary():
    stream = Stream(Frames(10_000, delay_s=0.005), FakePredictor(), colour_scale=ColourScale(32))
    timer = threading.Timer(0.3, stream.stop)
    timer.start()
    try:
        summary = stream.run()  # not a Ctrl-C: nothing to raise
    finally:
        timer.cancel()
    # Not recorded, nor reported, as a Ctrl-C or SIGTERM: the caller stopped it
    assert summary.stopped_by == "stop" and summary.frames_written < 10_000
    assert "stopped: stopped by Stream.stop()" in summary.report() and "Ctrl-C" not in summary.report()


@pytest.mark.parametrize(("action", "reason"), [("interrupt", "interrupt"), ("quit", "window")])
def test_a_stop_after_the_input_was_all_read_is_the_reason_not_the_end_of_input(action, reason):
    """Three frames are all read while the model is on the first: the end of input is not why it stopped."""
    window = ScriptedWindow(quit_after_shown=1, action=action)
    stream = Stream(Frames(3), FakePredictor(delay_s=0.3), window=window, colour_scale=ColourScale(32))
    summary = stream.run(raise_interrupt=False)
    assert summary.frames_read == 3 and summary.frames_written < 3
    assert summary.stopped_by == reason


class SlowClose(SlowSink):
    def close(self):
        time.sleep(0.3)  # an mp4 being finalised when Ctrl-C comes again
        self.closed = True


def test_a_second_ctrl_c_while_the_outputs_close_does_not_cut_the_closing_short(tmp_path, monkeypatch):
    """Ctrl-C twice: the second lands while run() waits for the writer to close the outputs."""
    join = threading.Thread.join
    interrupted = []

    def ctrl_c_in_join(thread, timeout=None):
        if thread.name == "rtstereo-write" and timeout is None and not interrupted:
            interrupted.append(thread)
            raise KeyboardInterrupt  # what Thread.join raises on Ctrl-C
        return join(thread, timeout)

    wait = threading.Event.wait

    def ctrl_c_in_wait(event, timeout=None):
        if threading.current_thread() is threading.main_thread() and not interrupted and event is stream._writer_done:
            interrupted.append(event)
            raise KeyboardInterrupt
        return wait(event, timeout)

    monkeypatch.setattr(threading.Thread, "join", ctrl_c_in_join)
    sink = SlowClose(0.0)
    window = ScriptedWindow(quit_after_shown=1, action="interrupt")
    stream = Stream(
        Frames(20, delay_s=0.01), FakePredictor(), sinks=[sink], window=window, colour_scale=ColourScale(32)
    )
    monkeypatch.setattr(threading.Event, "wait", ctrl_c_in_wait)
    try:
        summary = stream.run(raise_interrupt=False)
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C left run() before the outputs were closed")
    assert interrupted and sink.closed and summary.stopped_by == "interrupt"
    writer = [t for t in threading.enumerate() if t.name == "rtstereo-write"]
    assert not writer  # closed, not left running while the process would exit


def test_a_process_stopped_while_the_model_is_inside_a_frame_exits_with_its_own_code(tmp_path):
    """The model's thread is inside OpenCV when the stream stops; the process must not abort at exit."""
    import subprocess
    import sys

    script = """
import sys, time
import cv2, numpy as np
from rtstereo.sources.base import FrameSource
from rtstereo.stream import Stream
from rtstereo.types import DisparityResult, StereoPair

class Frames(FrameSource):
    def _frames(self):
        for i in range(100):  # more than the queues hold: the input does not end before the quit
            image = np.zeros((16, 32, 3), np.uint8)
            yield StereoPair(image, image, index=i)

class NativeModel:  # a model busy in native code (OpenCV) for about 1.5 s per frame
    name, settings = "native", {}
    def predict_pair(self, pair):
        big = np.random.default_rng(0).random((1500, 1500), np.float32)
        until = time.perf_counter() + 1.5
        while time.perf_counter() < until:
            cv2.GaussianBlur(big, (0, 0), 25)
        return DisparityResult(np.zeros(pair.left.shape[:2], np.float32))

class QuitAtOnce:
    def show(self, image): pass
    def poll(self, wait_ms=15):
        time.sleep(0.3)  # the model has started its first frame
        return True
    def close(self): pass

summary = Stream(Frames(), NativeModel(), window=QuitAtOnce()).run()
print(summary.stopped_by, flush=True)
sys.exit(3)
"""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert done.stdout == "window\n" and "terminate called" not in done.stderr
    assert time.perf_counter() - started >= 1.5  # the process waited for the frame, not run()


def test_a_camera_unplugged_mid_stream_keeps_the_outputs_valid(tmp_path):
    from test_stream_cameras import ScriptedCapture, sbs_frames

    capture = ScriptedCapture(sbs_frames(4), delay_s=0.03)
    source = UVCSource(0, capture_factory=lambda device: capture)
    sink, pngs = VideoSink(tmp_path / "o.mp4"), DisparityPngSink(tmp_path / "d")
    stream = Stream(source, rtstereo.load("sgbm", max_disp=32), sinks=[sink, pngs], colour_scale=ColourScale(32))
    with pytest.raises(CameraError, match="unplugged"):
        stream.run()
    summary = stream.summary
    assert summary.stopped_by == "error" and "stopped delivering frames" in summary.error
    written = summary.frames_written
    assert written >= 1
    assert len(read_video(tmp_path / "o.mp4")) == written
    assert len(list(tmp_path.glob("d_*.png"))) == written
    assert not list(tmp_path.glob(".*partial*"))


def test_an_output_that_fails_stops_the_stream_with_its_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="cannot"):
        Stream(Frames(3), FakePredictor(), sinks=[DisparityPngSink(blocker / "sub" / "d")]).run()


def test_an_unwritable_png_is_reported_and_the_mp4_still_closed(tmp_path, monkeypatch):
    sink = VideoSink(tmp_path / "o.mp4", fps=10)
    pngs = DisparityPngSink(tmp_path / "d")
    (tmp_path / "a_file").write_text("x")  # a folder that cannot be made
    monkeypatch.setattr(pngs, "path_for", lambda number: tmp_path / "a_file" / f"d_{number:05d}.png")
    stream = Stream(Frames(3), FakePredictor(), sinks=[sink, pngs], colour_scale=ColourScale(32))
    with pytest.raises(OutputError, match="cannot write .*d_00000.png"):
        stream.run()
    assert stream.summary.stopped_by == "error"
    assert len(read_video(tmp_path / "o.mp4")) == 1  # written before the PNG failed, and finalised


def test_a_source_that_fails_to_read_is_reported():
    class Broken(Frames):
        def _frames(self):
            yield from list(super()._frames())[:2]
            raise rtstereo.errors.InputError("frame 2 is damaged")

    stream = Stream(Broken(5), FakePredictor())
    with pytest.raises(rtstereo.errors.InputError, match="frame 2 is damaged"):
        stream.run()
    assert stream.summary.frames_written == 2


def test_static_scene_with_the_temporal_filter_flickers_less(tmp_path):
    from rtstereo.temporal import TemporalFilter, mean_flicker_px

    scene = render_scene(frames=8, step_px=0, noise=4.0, seed=3)

    class Static(FrameSource):
        fps = 10.0

        def _frames(self):
            for i, (a, b) in enumerate(zip(scene.lefts, scene.rights)):
                yield StereoPair(a, b, index=i)

    model = rtstereo.load("sgbm", max_disp=32)
    flicker = {}
    for name, temporal in (("raw", None), ("temporal", TemporalFilter())):
        pngs = DisparityPngSink(tmp_path / name / "d")
        Stream(Static(), model, sinks=[pngs], temporal=temporal).run()
        flicker[name] = mean_flicker_px(read_disparity(p) for p in sorted((tmp_path / name).glob("d_*.png")))
    assert flicker["temporal"] < 0.7 * flicker["raw"], flicker


def test_the_report_names_the_frame_limit_as_the_caller_gave_it():
    """A Python caller who gave max_frames=10 read "stopped: --max-frames reached", an option it never gave."""
    from rtstereo.stream import StreamSummary

    summary = StreamSummary("camera", "sgbm", {}, 10, 10, 10, 2.5, 4.0, {}, "max-frames")
    assert "(sgbm; stopped: max_frames reached)" in summary.report()
    assert "(sgbm; stopped: --max-frames reached)" in summary.report(command_line=True)


def test_the_report_names_the_limit_its_share_and_the_stale_frames():
    from rtstereo.stream import StreamSummary

    stages = {
        name: {"frames": 10, "fps": fps, "ms_per_frame": 1e3 / fps}
        for name, fps in (("capture", 100.0), ("inference", 5.0), ("write", 50.0))
    }
    summary = StreamSummary(
        "camera", "sgbm", {}, 12, 10, 10, 2.5, 4.0, stages, "interrupt", frames_dropped=2, outputs=["o.mp4"]
    )
    assert summary.report().splitlines() == [
        "10 frames in 2.5 s: 4.00 fps end to end (sgbm; stopped: interrupted (Ctrl-C or SIGTERM))",
        "  stage       frames       fps  ms/frame",
        "  capture         10    100.00      10.0",
        "  inference       10      5.00     200.0  <- limit",
        "  write           10     50.00      20.0",
        "  limit: inference, 5.00 fps alone (80% of it end to end)",  # 4.00 / 5.00
        "  2 stale live frames replaced by newer ones before inference",
        "  written: o.mp4",
    ]


def test_the_report_of_a_run_that_wrote_no_frame_gives_no_share_end_to_end():
    """A stream stopped by an error at its first frame said 'limit: capture, 80.48 fps alone (0% of it end to end)'."""
    from rtstereo.stream import StreamSummary

    stages = {"capture": {"frames": 2, "fps": 80.0, "ms_per_frame": 12.5}}
    summary = StreamSummary("v", "sgbm", {}, 2, 0, 0, 0.1, 0.0, stages, "error")
    assert "  limit: capture, 80.00 fps alone" in summary.report().splitlines()


def test_a_stage_whose_rate_was_not_measured_is_not_the_limit():
    """`live --max-frames 1`: the camera's one frame spans no interval, its capture rate 0, which the report named the
    limit ('limit: capture, 0.00 fps alone')."""
    from rtstereo.stream import StreamSummary

    stages = {
        name: {"frames": 1, "fps": fps, "ms_per_frame": 1e3 / fps if fps else 0.0}
        for name, fps in (("capture", 0.0), ("inference", 12.0), ("write", 290.0))
    }
    summary = StreamSummary("camera", "sgbm", {}, 1, 1, 1, 0.1, 7.0, stages, "max-frames")
    assert summary.bottleneck == "inference"
    assert "  limit: inference, 12.00 fps alone (58% of it end to end)" in summary.report().splitlines()


def test_the_report_shortens_a_long_damaged_frames_list_and_the_json_keeps_it_whole(tmp_path):
    """A video with many damaged frames printed every one of their numbers on the report's source: line."""
    from rtstereo.stream import StreamSummary

    stages = {"capture": {"frames": 3, "fps": 10.0, "ms_per_frame": 100.0}}
    damaged = list(range(0, 400, 2))
    summary = StreamSummary(
        "v", "sgbm", {}, 3, 3, 3, 0.3, 10.0, stages, "end", source_stats={"damaged_frames": damaged}
    )
    assert "  source: damaged_frames [0, 2, 4, 6, 8, ... (200 in all)]" in summary.report().splitlines()
    assert json.loads(summary.write_json(tmp_path / "s.json").read_text())["source_stats"]["damaged_frames"] == damaged
    summary.source_stats = {"damaged_frames": [4]}  # a short list as it was
    assert "  source: damaged_frames [4]" in summary.report().splitlines()


def test_a_stage_that_spent_no_time_has_no_rate():
    assert StageClock("capture", 3, 0.0).fps == 0.0 and StageClock("capture").ms_per_frame == 0.0


def test_the_newest_frame_queue_never_drops_the_end_marker():
    from rtstereo.stream import NewestFrameQueue

    end = object()
    q = NewestFrameQueue(end=end)
    q.put(1)
    q.put(end)  # the end drops nothing: it waits behind the frame
    assert q.dropped == 0
    q.put(2)  # a newer frame replaces the stale one, never the end
    assert q.dropped == 1 and q.get_nowait() is end and q.get_nowait() == 2


def test_what_the_stages_warn_about_names_the_line_that_ran_the_stream(two_videos):
    """Warnings name the line of the caller's code; those of the stream's threads named threading.py."""
    import warnings

    stream = Stream(TwoVideoSource(*two_videos), rtstereo.load("sgbm", max_disp=80), colour_scale=ColourScale(80))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        stream.run()
    said = {(w.filename, w.lineno) for w in caught if issubclass(w.category, rtstereo.UnmatchedBandWarning)}
    assert said == {(__file__, line)}, said
