"""The streaming pipeline: capture, inference and writing in three threads joined by bounded queues.

::

    source ─> [capture: read, rectify, resize]
          ─q─> [inference: model, temporal filter]
          ─q─> [write: mp4, PNGs] ─> window (shown by the main thread)

Each stage works while the others do, so the frame rate is that of the slowest stage, not of their
sum: decoding, colour conversion, rectification and resizing of the next frames happen while the
model works on this one, and writing or showing the last result happens behind it, so a model on a
GPU is not kept waiting by I/O that is faster than it.

A file's frames all go through, in order: the small queues (2 frames by default) bound memory and
latency and make a fast reader wait for a slow model. A live camera's frames never queue up: the
capture stage takes the camera's newest frame only when inference is about to want one (idle, or
busy for about its mean time per frame less capture's), and the hand-over holds that one frame (a
newer one would replace it, counted as dropped). So the model starts on a frame about as new as the
camera's newest, never falls behind, and the frames it skips are never converted or prepared.

Each stage's busy time is measured (waiting on the queues excluded). The progress line and the
summary give every stage's own rate (frames per busy second) next to the end-to-end rate, and name
the slowest stage as the limit (``limit: inference``).

The main thread only supervises: it runs the window (events, q/Esc) independently of inference, so
the window answers at once even when the model takes seconds per frame, and it receives Ctrl-C.
Every way out (end of input, ``--max-frames``, q/Esc, Ctrl-C, an error in any stage) goes through
the writer closing its outputs, so what was written stays valid: the mp4 is finalised, and every PNG
is complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, OutputError, not_a_predictor, require_bool, require_path, warn_at_caller
from .io.atomic import atomic_path, os_reason
from .pools import wait_for_event_through_interrupts
from .rectify import without_unseen_pixels
from .runtime.predictor import Predictor, window_of
from .sinks.files import FORMAT_ENCODINGS
from .sinks.video import (
    ColourScale,
    DisparityPngSink,
    OutputFrame,
    Sink,
    VideoSink,
    compose_preview,
    refuse_writing_over_inputs,
)
from .sources.base import FrameSource, LatestSlot, LiveSource
from .temporal import TemporalFilter
from .text import counted, first_few
from .types import Calibration, DisparityResult, StereoPair

if TYPE_CHECKING:  # what rtstereo.load returns for the hybrid
    from .runtime.hybrid import HybridPredictor

log = logging.getLogger("rtstereo.stream")

_END = object()  # end-of-stream marker passed down the queues
_POLL_S = 0.05  # how often blocked queue operations look at the stop flag
# A live recording's rate is measured: this caps a nonsensical measurement when the camera gives no rate of its own
MAX_VIDEO_FPS = 120.0
# Frames held back at most while the colour range waits for frames with disparities (a video fading in from black)
MAX_WARMUP_FRAMES = 20

CLOSING_SAID_S = 0.1  # closing the outputs takes longer than this: the report says so

STOP_REASONS = {
    "end": "end of input",
    "max-frames": "max_frames reached",  # "--max-frames reached" in the command line's report
    "window": "window closed (q/Esc)",
    "interrupt": "interrupted (Ctrl-C or SIGTERM)",
    "stop": "stopped by Stream.stop()",
    "error": "error",
}


@dataclass
class StageClock:
    """Frames a stage handled and the time it spent working on them (waiting excluded).

    ``unrated`` frames are counted but left out of the rate, their time kept apart in ``unrated_s``: a camera's first
    frame, whose wait is the camera's start, no interval of its rate (with it, 12 frames of a 10 fps camera, 11
    intervals, read 11.0 fps).
    """

    name: str
    frames: int = 0
    busy_s: float = 0.0
    unrated: int = 0
    unrated_s: float = 0.0

    def add(self, seconds: float, rated: bool = True) -> None:
        self.frames += 1
        if rated:
            self.busy_s += seconds
        else:
            self.unrated += 1
            self.unrated_s += seconds

    @property
    def fps(self) -> float:
        """The stage's own rate: frames per second of work (what it could sustain alone)."""
        return (self.frames - self.unrated) / self.busy_s if self.busy_s > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        rated = self.frames - self.unrated
        return 1e3 * self.busy_s / rated if rated else 0.0


@dataclass
class StreamSummary:
    """What a stream did, printed at the end and written as JSON.

    Attributes:
        source: the source's description.
        model: the model name; ``settings`` its settings.
        frames_read, frames_processed, frames_written: frames that left each stage.
        wall_s: seconds from start to the last frame written.
        throughput_fps: frames written per wall-clock second (end to end), over ``wall_s``; for a camera, the frames
            less one over the time from the first result to the last (N frames span N - 1 of its intervals).
        stages: per stage (``capture``, ``inference``, ``write``): frames, fps, ms per frame.
        frames_dropped: live frames captured but replaced by a newer one before inference started.
        stopped_by: ``end``, ``max-frames``, ``window``, ``interrupt`` (Ctrl-C or SIGTERM), ``stop``
            (:meth:`Stream.stop` from another thread) or ``error``.
        error: the error message when ``stopped_by == "error"``.
        outputs: files written.
        colour_max_disp_px: the fixed top of the colour range.
        temporal: the temporal filter's settings, when one ran.
        source_stats: camera frame rate and dropped frames for live sources.
        closing_s: seconds closing the outputs after the last frame, apart from ``wall_s``: with ``--adapt``
            the adapter's shutdown (up to 2 s) and its checkpoint's save, which are no part of the stream's rate.
        frame_size_hw: ``[H, W]`` of the frames the model got (after ``--rectify`` and ``--size``; with ``--fit crop``
            the window cut from them): the pixels the disparities of the mp4 and the PNGs are in; ``None`` before the
            first frame.
        source_frames: ``{"start": s, "stride": k}`` of a video or image sequence: written frame ``n`` (the mp4's
            ``n``-th frame, ``PREFIX_0000n.png``) is the source's frame ``s + n * k``; ``None`` for a camera.
        encodings: how the files written per frame read back, as in ``predict``'s JSON sidecar: ``png16``, the
            PNGs' name pattern and value / ``divide_by`` in ``unit``, ``invalid`` marking no match.
        preparation: what was done to the frames before the model, as ``predict``'s sidecar records it of a pair
            (``--rectify``: ``{"rectify": {"file": ..., "raw_size_hw": [H, W]}}``; ``--align-rows``: ``{"align_rows":
            {"applied": ..., "misalignment_px": ..., "row_shift_px": ...}}``; ``--fit crop``: ``{"crop":
            {"input_size_hw": [H, W], "x0_px": ..., "y0_px": ..., "width_px": ..., "height_px": ...}}``, the first
            written frame's window).
        video_fps: the frame rate stored in the mp4 (the source's rate over the stride; for a camera, the measured
            rate; with fewer decimals where MPEG-4 cannot store it); ``None`` without one.
        calibration: the first written frame's calibration as the model used it (scaled to ``frame_size_hw``), its
            fields as in ``predict``'s JSON sidecar, so that the PNGs' depths follow as ``predict --calib``'s do
            (``depth_m = baseline_m * fx_px / (d + cx1_px - cx0_px)``); ``None`` without one.
        adaptation: with ``--adapt``, what online adaptation did (steps, frames, the loss of its first and last
            steps, why it froze or stopped), as ``--adapt-save``'s checkpoint records it; ``None`` without.
    """

    source: str
    model: str
    settings: dict[str, Any]
    frames_read: int
    frames_processed: int
    frames_written: int
    wall_s: float
    throughput_fps: float
    stages: dict[str, dict[str, float]]
    stopped_by: str
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    colour_max_disp_px: float | None = None
    temporal: dict[str, float] | None = None
    source_stats: dict[str, Any] = field(default_factory=dict)
    frames_dropped: int = 0
    closing_s: float = 0.0
    frame_size_hw: list[int] | None = None
    source_frames: dict[str, int] | None = None
    encodings: dict[str, dict[str, Any]] = field(default_factory=dict)
    preparation: dict[str, Any] = field(default_factory=dict)
    video_fps: float | None = None
    calibration: dict[str, Any] | None = None
    adaptation: dict[str, Any] | None = None

    @property
    def bottleneck(self) -> str | None:
        """The stage with the lowest own rate: the limit of the end-to-end rate."""
        return slowest_stage({name: (s["frames"], s["fps"]) for name, s in self.stages.items()})

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "bottleneck": self.bottleneck}

    def _closing_what(self) -> str:
        # An adapting predictor's name says so (rtstereo.train.online.AdaptingPredictor), and so does a hybrid's
        # whose network adapts ("hybrid (its network adapting online)", which "(adapting online)" did not match).
        return " (online adaptation's shutdown and checkpoint)" if "adapting online)" in self.model else ""

    def write_json(self, path: str | Path) -> Path:
        path = require_path(path, "summary file", "a .json file name (str or Path)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, "the summary") as partial:
                partial.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write the summary {path}: {os_reason(exc, path)}") from None
        return path

    def report(self, command_line: bool = False) -> str:
        """A few lines for the terminal.

        Args:
            command_line: name the limit as the command line's option (``--max-frames``), not as the keyword of
                :class:`Stream` (``max_frames``) that a Python caller gave.
        """
        reason = STOP_REASONS.get(self.stopped_by, self.stopped_by)
        if command_line and self.stopped_by == "max-frames":
            reason = "--max-frames reached"
        lines = [
            f"{counted(self.frames_written, 'frame')} in {self.wall_s:.1f} s: {self.throughput_fps:.2f} fps end to "
            f"end ({self.model}; stopped: {reason})",
            f"  {'stage':<10} {'frames':>7} {'fps':>9} {'ms/frame':>9}",
        ]
        for name, stage in self.stages.items():
            mark = "  <- limit" if name == self.bottleneck else ""
            lines.append(f"  {name:<10} {stage['frames']:>7d} {stage['fps']:>9.2f} {stage['ms_per_frame']:>9.1f}{mark}")
        if self.bottleneck is not None:
            own_fps = self.stages[self.bottleneck]["fps"]
            # none for a run that wrote no frame (an error at the first): "(0% of it end to end)" read as a measurement
            share = (
                f" ({self.throughput_fps / own_fps:.0%} of it end to end)"
                if own_fps > 0 and self.frames_written
                else ""
            )
            lines.append(f"  limit: {self.bottleneck}, {own_fps:.2f} fps alone{share}")
        if self.closing_s >= CLOSING_SAID_S:
            lines.append(f"  then {self.closing_s:.1f} s closing the outputs{self._closing_what()}, not counted above")
        if self.frames_dropped:
            stale = counted(self.frames_dropped, "stale live frame")
            lines.append(f"  {stale} replaced by newer ones before inference")
        if self.source_stats:
            # a list (damaged_frames) can be as long as the video: its first numbers here, all of it in the JSON
            stats = ", ".join(
                f"{k} [{first_few(v)}]" if isinstance(v, list) else f"{k} {v}" for k, v in self.source_stats.items()
            )
            lines.append(f"  source: {stats}")
        if self.outputs:
            lines.append("  written: " + ", ".join(self.outputs))
        return "\n".join(lines)


def slowest_stage(stages: dict[str, tuple[int, float]]) -> str | None:
    """The name of the stage with the lowest own rate among those that handled a frame.

    Args:
        stages: per stage name, ``(frames, fps)``.

    Examples:
        >>> slowest_stage({"capture": (9, 240.0), "inference": (8, 6.0), "write": (8, 59.0)})
        'inference'
        >>> slowest_stage({"capture": (0, 0.0)}) is None
        True
        >>> slowest_stage({"capture": (1, 0.0), "inference": (1, 12.0)})  # one camera frame spans no interval
        'inference'
    """
    # A rate of 0 is none measured (a live camera's single frame spans no interval): it was named the limit
    rated = {name: fps for name, (frames, fps) in stages.items() if frames and fps > 0}
    return min(rated, key=rated.__getitem__) if rated else None


def stage_rates_line(clocks: dict[str, StageClock]) -> str:
    """The progress bar's note: each stage's own rate so far and the limit.

    Examples:
        >>> clocks = {"capture": StageClock("capture", 10, 0.05), "inference": StageClock("inference", 10, 2.0)}
        >>> stage_rates_line(clocks)
        'capture 200 | inference 5.0 fps; limit: inference'
    """
    rated = {name: (c.frames, c.fps) for name, c in clocks.items() if c.frames}
    if not rated:
        return ""
    rates = " | ".join(f"{name} {fps:.0f}" if fps >= 100 else f"{name} {fps:.1f}" for name, (_, fps) in rated.items())
    return f"{rates} fps; limit: {slowest_stage(rated)}"


class NewestFrameQueue(queue.Queue):
    """A queue whose ``put`` never waits: when full, the oldest waiting item gives way to the new one.

    The hand-over from capture to inference for a live camera: inference always starts on the newest
    frame captured. ``end`` (the end-of-stream marker) is never dropped and drops nothing.

    Examples:
        >>> q = NewestFrameQueue(end=None)
        >>> for frame in range(3):
        ...     q.put(frame)
        >>> q.get(), q.dropped
        (2, 2)
    """

    def __init__(self, end: Any, maxsize: int = 1):
        super().__init__(maxsize)
        self.end = end
        self.dropped = 0
        self.taken_at = 0.0  # perf_counter() when the consumer last took an item
        self.taken = 0  # items the consumer took (``end`` not counted)

    def _get(self) -> Any:
        self.taken_at = time.perf_counter()
        item = super()._get()
        self.taken += item is not self.end
        return item

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:
            if item is not self.end:
                while self._qsize() >= self.maxsize and self.queue[0] is not self.end:
                    self.queue.popleft()
                    self.dropped += 1
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()


def _checked_parts(source: Any, predictor: Any, sinks: Any) -> list[Sink]:
    """Check a :class:`Stream`'s parts when it is made, so that a wrong one is an :class:`InputError` at once
    (a string given as ``sinks``, read letter by letter, failed in the writer's thread before it could say
    that it had ended, and :meth:`Stream.run` waited for ever).

    Returns:
        The sinks, as a list.

    Raises:
        InputError: a source that is not a frame source, a predictor without ``predict_pair``, or sinks
            that are not a sequence of outputs.
    """
    if not (hasattr(source, "live") and hasattr(source, "__iter__")):
        raise InputError(
            f"source: expected a frame source (rtstereo.sources: SideBySideVideoSource, open_camera(...), a "
            f"FrameSource), got {type(source).__name__}"
        )
    if not callable(getattr(predictor, "predict_pair", None)):
        raise not_a_predictor(predictor)
    outputs = None if isinstance(sinks, (str, bytes, Path)) or not hasattr(sinks, "__iter__") else list(sinks)
    if outputs is None or not all(
        callable(getattr(o, "write", None)) and callable(getattr(o, "close", None)) for o in outputs
    ):
        raise InputError(
            "sinks: expected a list of outputs (rtstereo.sinks: VideoSink, DisparityPngSink, ...), got "
            f"{type(sinks).__name__} {sinks!r:.80}"
        )
    _refuse_shared_outputs(outputs)
    return outputs


def _refuse_shared_outputs(outputs: list[Sink]) -> None:
    """Refuse two sinks that write the same files (also under another spelling or through a link): the second mp4
    was renamed over the first when they closed, after both had written into one partial file."""
    seen: dict[object, str] = {}
    for sink in outputs:
        if isinstance(sink, VideoSink):
            key, named = ("video", sink.path.resolve()), f"the video {sink.path}"
        elif isinstance(sink, DisparityPngSink):
            key, named = ("png", sink.prefix.resolve()), f"the PNGs {sink.prefix}_*.png"
        else:  # one sink object listed twice got every frame twice
            key, named = ("sink", id(sink)), f"one {type(sink).__name__}"
        if key in seen:
            also = f" (also named {seen[key]})" if seen[key] != named else ""
            raise InputError(f"sinks: two outputs write {named}{also}: give each output its own name, and each once")
        seen[key] = named


class StreamInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during :meth:`Stream.run`, raised again once the outputs are closed; :attr:`summary`
    holds what was written before it (``stopped_by == "interrupt"``), typed, where :attr:`Stream.summary` is
    ``None`` until a run ends. A ``KeyboardInterrupt``, as :class:`~rtstereo.batch.BatchInterrupted` is."""

    def __init__(self, summary: StreamSummary):
        super().__init__(f"interrupted after {counted(summary.frames_written, 'frame')} written")
        self.summary = summary


class Stream:
    """Run a predictor over a source and feed the outputs, with the three stages overlapped.

    Args:
        source: where the pairs come from.
        predictor: the model (``rtstereo.load(...)``).
        sinks: outputs (:class:`~rtstereo.sinks.video.VideoSink`, ``DisparityPngSink``...).
        window: an on-screen window (``show``/``poll``/``close``), run by the calling thread.
        prepare: capture-stage work on each pair (rectify, resize), e.g.
            :class:`~rtstereo.sources.base.FramePreparer`.
        temporal: a temporal filter applied to each disparity after the model.
        colour_scale: the fixed colour range of the previews (measured from the first frames when it
            has no value).
        max_frames: stop after this many pairs (processed pairs for a live source, which drops some).
        queue_size: capacity of each queue between stages, frames, at least 1 (a live source's hand-over
            to inference always holds one: the newest).
        progress: show a progress bar (tqdm) on stderr.
        progress_label: the bar's label, e.g. the command's verb (``video``, ``live``), as ``predict``'s bar says
            ``predict``.

    Examples:
        >>> import numpy as np, rtstereo
        >>> from rtstereo.sources.base import FrameSource
        >>> class Still(FrameSource):
        ...     def _frames(self):
        ...         for i in range(3):
        ...             image = np.zeros((16, 32, 3), np.uint8)
        ...             yield StereoPair(image, image, index=i)
        >>> Stream(Still(), rtstereo.load("sgbm", max_disp=16)).run().frames_written
        3
    """

    def __init__(
        self,
        source: FrameSource,
        predictor: Predictor | HybridPredictor,
        *,
        sinks: Sequence[Sink] = (),
        window: Any = None,
        prepare: Callable[[StereoPair], StereoPair] | None = None,
        temporal: TemporalFilter | None = None,
        colour_scale: ColourScale | None = None,
        max_frames: int | None = None,
        queue_size: int = 2,
        progress: bool = False,
        progress_label: str = "stream",
    ):
        if isinstance(queue_size, bool) or not isinstance(queue_size, numbers.Integral) or queue_size < 1:
            # Queue(maxsize=0) has no bound: a file read faster than the model was held in memory whole
            raise InputError(f"queue_size must be a whole number of frames >= 1, got {queue_size!r}")
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, numbers.Integral) or max_frames < 0
        ):
            raise InputError(f"max_frames must be a whole number >= 0 or None (no limit), got {max_frames!r}")
        progress = require_bool(progress, "progress")
        if not isinstance(progress_label, str):
            raise InputError(f"progress_label: expected a str, got {type(progress_label).__name__} {progress_label!r}")
        if colour_scale is not None and not isinstance(colour_scale, ColourScale):
            raise InputError(
                f"colour_scale: expected a ColourScale (ColourScale(max_disp_px), or None to measure it), got "
                f"{type(colour_scale).__name__} {colour_scale!r}"
            )
        if window is not None and not all(callable(getattr(window, name, None)) for name in ("show", "poll", "close")):
            # anything else ran the whole stream and then failed with an AttributeError on window.close()
            raise InputError(
                "window: expected a window with show, poll and close (rtstereo.sinks.video.open_window(...)), or "
                f"None; got {type(window).__name__} {window!r:.80}"
            )
        if prepare is not None and not callable(prepare):  # it failed in the capture thread, at the first frame
            raise InputError(
                f"prepare: expected a function of a StereoPair (FramePreparer(...)), or None; got "
                f"{type(prepare).__name__} {prepare!r:.80}"
            )
        if temporal is not None and not isinstance(temporal, TemporalFilter):
            # anything else failed in the inference thread, at the first frame
            raise InputError(
                f"temporal: expected a TemporalFilter (TemporalFilter(alpha=0.3), or None for none), got "
                f"{type(temporal).__name__} {temporal!r:.80}"
            )
        self.source, self.predictor = source, predictor
        self.sinks, self.window = _checked_parts(source, predictor, sinks), window
        refuse_writing_over_inputs(
            [("video output", sink.path) for sink in self.sinks if isinstance(sink, VideoSink)],
            getattr(source, "input_files", ()),
            [("PNG prefix", sink.prefix) for sink in self.sinks if isinstance(sink, DisparityPngSink)],
        )
        beside_video = any(isinstance(sink, VideoSink) for sink in self.sinks)
        for sink in self.sinks:
            if isinstance(sink, DisparityPngSink):  # its frames without a PNG are in the mp4 only if there is one
                sink.beside_video = beside_video
        self.prepare, self.temporal = prepare, temporal
        self.colour_scale = colour_scale or ColourScale(None)
        if self.colour_scale.fallback_px is None:  # no frame with disparities to measure: the model's range
            self.colour_scale.fallback_px = predictor.settings.get("max_disp")
        self.max_frames, self.progress, self.progress_label = max_frames, progress, progress_label
        self._record_at_the_source_rate()
        self.clocks = {name: StageClock(name) for name in ("capture", "inference", "write")}
        self._captured: queue.Queue = NewestFrameQueue(_END) if source.live else queue.Queue(maxsize=queue_size)
        self._results: queue.Queue = queue.Queue(maxsize=queue_size)
        self._display = LatestSlot()
        self._stop = threading.Event()
        self._enough = threading.Event()  # inference reached max_frames (live sources count there)
        self._writer_done = threading.Event()
        self._capture_done = threading.Event()  # the capture thread has ended (out of the source and OpenCV)
        self._inference_done = threading.Event()  # the inference thread has ended (the model out of its last frame)
        self._ctrl_c = False  # a KeyboardInterrupt reached run(): raised again at its end unless asked not to
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._error: BaseException | None = None
        self._written = 0
        self._frame_size_hw: list[int] | None = None  # of the first frame written: the disparities' pixels
        self._calibration: Calibration | None = None  # of the first frame written, as scaled to its size
        self._crop: dict[str, Any] | None = None  # the window --fit crop cut from the first frame written
        self._resize_said = False  # a frame of another size than the first was warned about
        self._t0 = 0.0
        self._wall_s = 0.0
        self._last_written_at = 0.0  # perf_counter() when the last frame was written
        self._closing_s = 0.0
        self._inferred_at = 0.0  # perf_counter() when inference last finished a frame
        # Results that reached the writer, and when the first and the last did: a live mp4's rate
        self._results_arrived, self._first_result_at, self._last_result_at = 0, 0.0, 0.0
        # their pairs' own timestamps (a camera's capture times), while every one has one, each later than the last
        self._stamps: list[float] | None = []
        self._measured_sinks: list[VideoSink] = []  # mp4s recorded at the measured rate
        self._exposure_latch: Any = None  # the predictor's, from end_sequence, when the inference thread ends
        self.summary: StreamSummary | None = None

    def _record_at_the_source_rate(self) -> None:
        """Give a :class:`VideoSink` made without a frame rate a video's (or an image sequence's) own rate over its
        stride, as the command line does: it was recorded at the measured processing rate, capped at the video's, so a
        30 fps video at stride 2 played twice as fast, and one a slow model took at 5 fps six times as slow. A camera's
        mp4 keeps the measured rate."""
        stride = getattr(self.source, "stride", 1)
        if self.source.live or not self.source.fps or not isinstance(stride, int) or stride < 1:
            return
        for sink in self.sinks:
            if isinstance(sink, VideoSink) and sink.fps is None:
                sink.fps = self.source.fps / stride

    # -- control ------------------------------------------------------------------------------

    def stop(self, reason: str = "stop") -> None:
        """Stop now (thread-safe): frames still queued are dropped, the outputs closed as on any exit.

        Args:
            reason: what :attr:`StreamSummary.stopped_by` records; ``"stop"`` for a caller's stop (from another
                thread), which is not a Ctrl-C: ``run`` returns the summary and raises nothing.
        """
        with self._lock:
            # The input may have ended already ("end", "max-frames") with frames still on their way: a stop
            # drops those, so it is the reason; only an error, or a run whose outputs are all closed, keeps its own.
            if self._reason != "error" and not self._writer_done.is_set():
                self._reason = reason
        self._stop.set()

    def _finish(self, reason: str) -> None:
        """Record why the input ended; the frames already read still go through."""
        with self._lock:
            if self._reason is None:
                self._reason = reason

    def _fail(self, exc: BaseException, stop_now: bool = True) -> None:
        """Record a stage's error. ``stop_now=False`` (input errors) lets the frames already read
        through, so the outputs hold everything before the failure."""
        with self._lock:
            later = self._error is not None and exc is not self._error
            if self._error is None:
                self._error = exc
            self._reason = "error"
        if later:
            # The run ends with the first error's message only: an output that then failed as it closed (an mp4
            # removed as incomplete) was left out of the files written without a word.
            log.warning("%s (besides the error that ended the run)", exc)
        if stop_now:
            self._stop.set()

    def _put(self, q: queue.Queue, item: Any, always: bool = False) -> bool:
        """Put, waiting for room while the stream runs; gives up once stopped (unless ``always`` and
        there is room)."""
        while True:
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if self._stop.is_set():
                    if always:
                        try:
                            q.put_nowait(item)
                            return True
                        except queue.Full:
                            return False
                    return False

    def _get(self, q: queue.Queue) -> Any:
        """Next item, or the end marker once stopped (queued items are then dropped)."""
        while True:
            if self._stop.is_set():
                return _END
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                pass

    # -- stages -------------------------------------------------------------------------------

    def _capture(self) -> None:
        clock = self.clocks["capture"]
        frames: Any = None
        # A file's frames all reach inference, so capture counts them; a camera's are partly dropped,
        # so inference counts and tells capture when it has enough.
        limit = None if self.source.live else self.max_frames
        try:  # everything that may fail inside it: a stage that ends without passing _END on hangs the run
            frames = iter(self.source)
            while not (self._stop.is_set() or self._enough.is_set()):
                if limit is not None and clock.frames >= limit:
                    self._finish("max-frames")
                    break
                if self.source.live and not self._await_frame_due():
                    break
                # Due once the hand-over is empty: the frames inference took may be all max_frames wants, and a frame
                # read now was one more captured than processed (live --max-frames 5 reported 6 read)
                if self.source.live and self.max_frames is not None and self._captured.taken >= self.max_frames:
                    break
                started = time.perf_counter()
                pair = next(frames, None)
                if pair is None:
                    self._finish("end")
                    break
                place = self._place(pair)
                if limit is not None and place is not None and place >= limit:  # frames passed over (damaged) count
                    self._finish("max-frames")
                    break
                if self.prepare is not None:
                    pair = self.prepare(pair)
                # A camera's first frame waited for the camera to start: no interval of its rate
                clock.add(time.perf_counter() - started, rated=bool(clock.frames) or not self.source.live)
                if not self._put(self._captured, pair):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised by run() after the outputs are closed
            self._fail(exc, stop_now=False)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the source failed: %s", exc)
            if isinstance(self.source, LiveSource):
                # A camera opened beforehand (open()) is released by its iteration, which a stop before the first
                # frame (max_frames=0, a stop at once) never started: the device stayed held.
                try:
                    self.source.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the source failed: %s", exc)
            self._put(self._captured, _END, always=True)
            self._capture_done.set()

    def _await_frame_due(self) -> bool:
        """A live source: wait until inference is about to want a frame; ``False`` once stopped.

        Due when the hand-over is empty and inference is idle, or busy for its mean time per frame
        less this stage's: the frame taken then is about the camera's newest when inference starts on
        it, and the frames the model skips are never converted or prepared (a camera delivers faster
        than the model takes).
        """
        handover = self._captured
        assert isinstance(handover, NewestFrameQueue), type(handover)
        inference, capture = self.clocks["inference"], self.clocks["capture"]
        while not (self._stop.is_set() or self._enough.is_set()):
            with handover.not_full:
                if handover._qsize():  # a prepared frame still waits: until inference takes it
                    handover.not_full.wait(_POLL_S)
                    continue
                taken_at = handover.taken_at
            if not inference.frames or self._inferred_at >= taken_at:
                return True  # inference waits (or has no measured time yet)
            wait_s = taken_at + (inference.ms_per_frame - capture.ms_per_frame) / 1e3 - time.perf_counter()
            if wait_s <= 0:
                return True
            time.sleep(min(wait_s, _POLL_S))
        return False

    def _infer(self) -> None:
        clock = self.clocks["inference"]
        # Consecutive frames: a predictor that keeps state across them (the hybrid's exposure latch) is told, by
        # this thread, so that other threads' pairs on the same predictor are not taken for frames of this stream.
        begin, end = (getattr(self.predictor, name, None) for name in ("begin_sequence", "end_sequence"))
        try:
            valid_of = getattr(self.prepare, "left_valid_mask", None)
            seen = valid_of() if callable(valid_of) else None  # where the rectified left view shows the raw one
            if begin is not None:
                begin()
            while True:
                # Checked before each frame, not after: max_frames=0 on a live source processed one frame
                if self.max_frames is not None and clock.frames >= self.max_frames:
                    self._finish("max-frames")
                    self._enough.set()
                    break
                pair = self._get(self._captured)
                if pair is _END:
                    break
                started = time.perf_counter()
                result = self.predictor.predict_pair(pair)
                if self.temporal is not None:
                    result = dataclasses.replace(result, disparity_px=self.temporal(result.disparity_px))
                if seen is not None:  # the black fill of a rectification: its disparities are made up
                    result = without_unseen_pixels(result, seen)
                self._inferred_at = time.perf_counter()
                # an export on first use (--backend onnxruntime) is no part of the stage's rate: seconds, once
                clock.add(self._inferred_at - started - result.timings_ms.get("export", 0.0) / 1e3)
                if not self._put(self._results, (pair, result)):
                    break
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc, stop_now=False)
        finally:
            try:
                if end is not None:
                    self._exposure_latch = end()
                self._put(self._results, _END, always=True)
            finally:
                self._inference_done.set()

    def _needs_warmup(self) -> bool:
        wants_preview = self.window is not None or any(s.wants_preview for s in self.sinks)
        unknown_fps = any(isinstance(s, VideoSink) and s.fps is None for s in self.sinks)
        return (wants_preview and not self.colour_scale.ready) or unknown_fps

    def _write(self) -> None:
        from .progress import progress_bar

        bar = progress_bar(
            total=self._expected_frames(),
            desc=self.progress_label,
            unit="frame",
            file=sys.stderr,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        pending: list[tuple[StereoPair, DisparityResult]] = []
        arrivals: list[float] = []
        try:  # a failure before it left the writer's event unset, and run() waiting for it for ever
            warming = self._needs_warmup()
            while True:
                item = self._get(self._results)
                if item is _END:
                    break
                arrived_at = time.perf_counter()
                self._arrived(arrived_at, item[0].timestamp_s)
                if warming:
                    pending.append(item)
                    arrivals.append(arrived_at)
                    self.colour_scale.observe(item[1].disparity_px)
                    # frames without disparities (black ones) do not measure the colour range: a few more are held
                    measured = self.colour_scale.ready or len(pending) >= MAX_WARMUP_FRAMES
                    if len(pending) >= self.colour_scale.warmup_frames and measured:
                        warming = False
                        self._flush(pending, arrivals, bar)
                    continue
                self._emit(*item, bar)
            if pending:
                self._flush(pending, arrivals, bar)
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            bar.close()
            # The stream's time ends with its last frame written: closing the outputs (with --adapt, the adapter's
            # shutdown and save, seconds) made a 12-frame stream at 25.9 frames/s report 4.6 fps, and the 5 s a
            # stalled camera is waited for (or a Ctrl-C long after the last frame) 5 frames at 30 fps 0.97 fps.
            ended_at = time.perf_counter()
            self._wall_s = (self._last_written_at if self._written else ended_at) - self._t0
            self._settle_measured_rates()
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as exc:  # noqa: BLE001 - keep closing the others
                    self._fail(exc)
            self._closing_s = time.perf_counter() - ended_at
            self._writer_done.set()

    def _flush(self, pending: list, arrivals: list[float], bar: Any) -> None:
        """End the warm-up: fix the colour range and the live mp4's opening frame rate, write what was held."""
        self.colour_scale.freeze()
        fps = self._processing_fps(len(arrivals), arrivals[0] if arrivals else 0.0, arrivals[-1] if arrivals else 0.0)
        for sink in self.sinks:
            if isinstance(sink, VideoSink) and sink.fps is None:
                sink.fps = round(fps or self.source.fps or 10.0, 2)
                self._measured_sinks.append(sink)
                log.debug(
                    "%s: opened at %.2f fps, the rate of the first %s; the rate of the whole recording is set when "
                    "it closes",
                    sink.path,
                    sink.fps,
                    counted(len(arrivals), "frame"),
                )
        for item in pending:
            self._emit(*item, bar)
        pending.clear()

    def _arrived(self, at: float, timestamp_s: float | None) -> None:
        """Count a result that reached the writer at ``at`` (``perf_counter``), its pair taken at ``timestamp_s``."""
        self._results_arrived += 1
        self._first_result_at = self._first_result_at or at
        self._last_result_at = at
        stamps = self._stamps
        if stamps is not None:
            later = timestamp_s is not None and math.isfinite(timestamp_s) and (not stamps or timestamp_s > stamps[-1])
            if later:
                stamps[1:] = [timestamp_s]  # the first and the last
            else:
                self._stamps = None

    def _recorded_span(self) -> tuple[int, float, float]:
        """``(frames, first_s, last_s)`` of the results so far: their pairs' timestamps when every one has one, so that
        a frame's time is when it was taken (the first result's extra latency, the model's warm-up, read 40 frames of a
        25 fps camera as 25.9 fps); else when they reached the writer."""
        if self._stamps is not None and len(self._stamps) == 2:
            return self._results_arrived, self._stamps[0], self._stamps[1]
        return self._results_arrived, self._first_result_at, self._last_result_at

    def _processing_fps(self, frames: int, first_at: float, last_at: float) -> float | None:
        """The rate ``frames`` results came in at, from the first (at ``first_at``) to the last: ``frames - 1``
        intervals (the first frame's own time is the model's warm-up, no interval of the recording); never above the
        camera's rate, or :data:`MAX_VIDEO_FPS` when it gives none (it capped a 240 fps camera's too, whose recording
        played at half speed). ``None`` for fewer than 2 frames."""
        if frames < 2 or last_at <= first_at:
            return None
        fps = (frames - 1) / (last_at - first_at)
        return min(fps, self.source.fps or MAX_VIDEO_FPS)  # never faster than the camera delivers

    def _settle_measured_rates(self) -> None:
        """Give the mp4s recorded at a measured rate the rate of the whole recording, in their headers as they close.
        They opened at the rate of the first 5 frames, which a model's warm-up (slow second and third frames) or a
        camera whose rate settles late made wrong for the rest: the video played too fast or too slow."""
        fps = self._processing_fps(*self._recorded_span())
        if fps is None:
            return
        fps = round(fps, 2)
        for sink in self._measured_sinks:
            if fps > 0:
                sink.closing_fps = fps

    def _emit(self, pair: StereoPair, result: DisparityResult, bar: Any) -> None:
        started = time.perf_counter()
        preview = None
        crop = result.preparation.get("crop")
        if crop is not None:  # --fit crop: the map is the window's, and so is what is shown beside it
            pair = window_of(pair, crop)
        if self.window is not None or any(s.wants_preview for s in self.sinks):
            preview = compose_preview(pair.coloured_left, result.disparity_px, self.colour_scale.freeze())
        if self._frame_size_hw is None:
            self._frame_size_hw = [int(n) for n in result.disparity_px.shape[:2]]
            self._calibration = result.calibration
            self._crop = crop
        place = self._place(pair)
        number = place if place is not None and place >= self._written else self._written
        frame = OutputFrame(number, pair, result, preview)
        for sink in self.sinks:
            sink.write(frame)
        size_hw = [int(n) for n in result.disparity_px.shape[:2]]
        if size_hw != self._frame_size_hw and not self._resize_said:  # after the sinks: an mp4 refuses it, in its words
            self._resize_said = True
            log.warning(
                "frame %d is %dx%d (HxW), where the stream began at %dx%d: its disparities are in pixels of its own "
                "size, while the summary's frame_size_hw and calibration are the first frame's (--size HxW resizes "
                "every frame to one size)",
                number if pair.index is None else pair.index,  # the source's number, as the other warnings name it
                *size_hw,
                *self._frame_size_hw,
            )
        if self.window is not None and preview is not None:
            self._display.put(preview)
        self._written += 1
        self._last_written_at = time.perf_counter()
        self.clocks["write"].add(self._last_written_at - started)
        bar.set_postfix_str(stage_rates_line(self.clocks), refresh=False)
        total = self._expected_frames()
        if bar.total != total:  # a source that knows its length once open (uvc:FILE): known now
            bar.total = total
        if self._progress_by_index():  # the frames dropped since the last one have passed too
            bar.update(max(0, pair.index + 1 - bar.n))
        else:  # and the frames of a video passed over (damaged) before this one
            bar.update(max(1, number + 1 - bar.n))

    def _place(self, pair: StereoPair) -> int | None:
        """The pair's place among the frames a video or an image sequence uses, ``(index - start) // stride``: the
        number of its mp4 frame and its PNG, so that PNG ``n`` stays the source's frame ``start + n * stride`` when
        a frame that did not decode was passed over (it leaves its number unused). ``None`` for a camera, or a source
        that does not number its frames so."""
        start, stride = getattr(self.source, "start", None), getattr(self.source, "stride", None)
        if self.source.live or not (isinstance(start, int) and isinstance(stride, int)) or stride < 1:
            return None
        place, off = divmod(pair.index - start, stride)
        return place if place >= 0 and not off else None

    def _expected_frames(self) -> int | None:
        expected = self.source.expected_frames
        if self.max_frames is not None and not self._progress_by_index():  # --max-frames counts processed
            expected = self.max_frames if expected is None else min(expected, self.max_frames)
        return expected

    def _progress_by_index(self) -> bool:
        """Whether the bar counts the recording's frame numbers (:attr:`FrameSource.progress_by_index`): not when
        ``max_frames``, which counts processed frames, ends the stream before the recording ends (``live --camera
        uvc:FILE --max-frames 5`` of 20 frames stopped its bar at 25 %)."""
        if not self.source.progress_by_index:
            return False
        expected = self.source.expected_frames
        return self.max_frames is None or expected is None or self.max_frames >= expected

    # -- supervision --------------------------------------------------------------------------

    def run(self, raise_interrupt: bool = True) -> StreamSummary:
        """Run to the end of the input (or a stop) and return the summary.

        Args:
            raise_interrupt: on Ctrl-C (``KeyboardInterrupt``), raise it again once the outputs are closed
                and :attr:`summary` is made, so that a script looping over videos stops too; ``False``
                returns the summary (``stopped_by == "interrupt"``), as the command line and Ray's workers
                do. A :meth:`stop` from another thread always returns it.

        Raises:
            RtStereoError: a stage failed (unreadable frame, camera unplugged, output not writable);
                the outputs are closed first, and :attr:`summary` holds what was done.
            StreamInterrupted: Ctrl-C, with ``raise_interrupt`` (a ``KeyboardInterrupt``); the outputs hold the
                frames written before it, and its ``summary`` (and :attr:`summary`) says so.
            InputError: the stream has run before (its source is spent and its outputs are closed).
        """
        raise_interrupt = require_bool(raise_interrupt, "raise_interrupt")
        if self._t0:  # a second run read nothing and reported the first's frames over a wall time of 0 s
            raise InputError(
                "this Stream has run already (its source is spent, its outputs closed): make a new Stream, with a "
                "new source and new sinks, for another run; the first run's summary is its .summary"
            )
        self._t0 = time.perf_counter()
        threads = [
            # No daemons: a process that ends while a daemon thread is inside native code (OpenCV, ONNX Runtime,
            # PyTorch) can abort ("terminate called without an active exception") instead of exiting with its own
            # code; a stop does not wait for the model's frame, or a frame being read and prepared, but the process
            # does. (A camera's read that never returns is left to the grabber thread, which capture does not wait
            # for long.)
            threading.Thread(target=self._capture, name="rtstereo-capture", daemon=False),
            threading.Thread(target=self._infer, name="rtstereo-inference", daemon=False),
            # Not a daemon: even if the process is leaving, it finishes closing the outputs first.
            threading.Thread(target=self._write, name="rtstereo-write", daemon=False),
        ]
        warn_at_caller(threads)  # what the stages warn about names the line of the caller's run(), not threading.py
        for thread in threads:
            thread.start()
        try:
            self._supervise()
        except KeyboardInterrupt:
            self._ctrl_c = True
            self.stop("interrupt")
        finally:
            self._shutdown(threads)
        latch = self._exposure_latch  # None while a slow model is still inside its last frame
        if latch is not None and latch.switches > 1:
            log.info(
                "SGBM's input switched %d times between raw and normalised views as the brightness of the two "
                "cameras changed (sgbm_input=auto)",
                latch.switches,
            )
        self.summary = self._summarise()
        if self._error is not None:
            raise self._error
        if self._ctrl_c and raise_interrupt:
            raise StreamInterrupted(self.summary)
        return self.summary

    def _supervise(self) -> None:
        while not self._writer_done.is_set():
            if self.window is None:
                self._writer_done.wait(0.1)
                continue
            preview = self._display.take_nowait()
            if preview is not None:
                self.window.show(preview)
            if self.window.poll():
                self.stop("window")
                return

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        capture, inference, writer = threads
        # The writer closes the outputs: this is what keeps them valid, so a second Ctrl-C does not cut it
        # short. Waiting on its event, not on join(): a join interrupted by Ctrl-C can leave the thread
        # marked as ended (CPython < 3.13), and the process would then exit without waiting for it.
        while True:
            try:
                if self._writer_done.wait(_POLL_S):
                    break
            except KeyboardInterrupt:
                self._ctrl_c = True
                self._finish("interrupt")
        writer.join(timeout=2.0)
        if isinstance(self.source, LiveSource):
            self.source.stop_waiting()
        capture.join(timeout=2.0)
        if capture.is_alive():
            log.info(
                "a frame is still being read or prepared: it finishes in the background, and the process exits after it"
            )
        # A slow model may still be inside one frame; its result is not wanted, so it is not waited for.
        inference.join(timeout=0.5)
        if inference.is_alive():
            log.info("the model is still inside a frame: it finishes in the background, and the process exits after it")
        if self.window is not None:
            self.window.close()

    def _throughput_fps(self, wall_s: float) -> float:
        """Frames written per second, end to end: over ``wall_s`` from the start; for a camera, the frames less one
        over the time from the first result to the last (:meth:`_recorded_span`; the results, not the writes: the first
        frames are written together once the colour range is measured), as its N frames span N - 1 of its intervals
        (12 frames of a 10 fps camera, processed as they came, read 10.8 fps over the time from the start)."""
        frames, first_s, last_s = self._recorded_span()
        if self.source.live and self._written >= 2 and frames >= 2 and last_s > first_s:
            return (frames - 1) / (last_s - first_s)
        return self._written / wall_s if wall_s > 0 else 0.0

    def wait_for_the_stages(self) -> None:
        """After :meth:`run`, wait for a model still inside a frame, or a frame still being read or prepared (neither
        is wanted any more), also through Ctrl-C, which is raised again once they are done.

        The process waits for them at exit anyway; a command waits here first, where kill (SIGTERM) is Ctrl-C: in
        Python's own wait for the threads it ended the process with exit code 143.
        """
        if self._t0:
            wait_for_event_through_interrupts(self._capture_done)
            wait_for_event_through_interrupts(self._inference_done)

    def _summarise(self) -> StreamSummary:
        wall_s = self._wall_s or (time.perf_counter() - self._t0)
        stages = {
            name: {"frames": c.frames, "fps": round(c.fps, 3), "ms_per_frame": round(c.ms_per_frame, 3)}
            for name, c in self.clocks.items()
        }
        outputs = [path for sink in self.sinks for path in sink.outputs]
        # As a result records them: an int8 or fp16 export's run read as the fp32 one's, with no file named. A
        # predictor of one's own (anything with predict, name and settings) records its settings.
        recorded = getattr(self.predictor, "recorded_settings", None)
        start, stride = getattr(self.source, "start", None), getattr(self.source, "stride", None)
        encodings: dict[str, dict[str, Any]] = {}
        for sink in self.sinks:
            if isinstance(sink, DisparityPngSink):
                encodings["png16"] = {"files": f"{sink.prefix.name}_NNNNN.png", **FORMAT_ENCODINGS["png16"]}
        numbered = isinstance(start, int) and isinstance(stride, int)
        video_fps = next((sink.fps for sink in self.sinks if isinstance(sink, VideoSink)), None)
        return StreamSummary(
            source=self.source.description,
            model=self.predictor.name,
            settings=recorded() if callable(recorded) else dict(self.predictor.settings),
            frames_read=self.clocks["capture"].frames,
            frames_processed=self.clocks["inference"].frames,
            frames_written=self._written,
            wall_s=round(wall_s, 3),
            throughput_fps=round(self._throughput_fps(wall_s), 3),
            stages=stages,
            stopped_by=self._reason or "end",
            error=str(self._error) if self._error is not None else None,
            outputs=outputs,
            colour_max_disp_px=self.colour_scale.max_disp_px,
            temporal=self.temporal.settings() if self.temporal is not None else None,
            source_stats=self.source.stats(),
            frames_dropped=getattr(self._captured, "dropped", 0),
            closing_s=round(self._closing_s, 3),
            frame_size_hw=self._frame_size_hw,
            source_frames={"start": start, "stride": stride} if numbered else None,
            encodings=encodings,
            preparation={
                **(getattr(self.prepare, "preparation", None) or {}),
                **({"crop": self._crop} if self._crop is not None else {}),
            },
            video_fps=video_fps,
            calibration=dataclasses.asdict(self._calibration) if self._calibration is not None else None,
            # the JSON said only "adapting online": without --adapt-save nothing kept the steps, a freeze or an error
            adaptation=next(
                (sink.adaptation() for sink in self.sinks if callable(getattr(sink, "adaptation", None))), None
            ),
        )
