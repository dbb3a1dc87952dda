"""Stream outputs: an mp4 of the left image beside the colourised disparity, per-frame 16-bit PNGs,
and an on-screen window.

The colour range is fixed for the whole stream (:class:`ColourScale`), so a colour means the same
disparity in every frame. Every output is left valid when the stream stops early: the mp4 is closed
(finalised) by :meth:`Sink.close`, which the pipeline calls on every exit path, and each PNG is
written under a temporary name and renamed, so no half-written PNG ever carries a frame's name.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DisparityRangeError, InputError, OutputError, require_number, require_path, require_whole, warn
from ..io.atomic import os_reason, partial_path, remove_stale_partials
from ..io.disparity import colorize, png16_unstored, png16_unstored_message, to_png16
from ..io.images import write_image
from ..io.quiet import ffmpeg_quietened
from ..text import counted, is_utf8, shown
from ..types import DisparityResult, StereoPair

log = logging.getLogger("rtstereo.stream")

COLOUR_PERCENTILE = 99.0  # top of the colour range taken from the first frames: robust to outliers
# A frame counts towards measuring the colour range when this share of its pixels have a disparity: the dark
# first frames of a video fading in from black, or of a camera still adjusting its exposure, do not.
COLOUR_MIN_VALID_SHARE = 0.01
MP4_FOURCC = "mp4v"  # in every OpenCV build with FFmpeg; H.264 encoders are not
MPEG4_MAX_FPS = 65535  # MPEG-4 part 2 stores the frame rate's time base in 16 bits
# OpenCV's writer stores a rate to within 0.001 fps: 0.001 fps or less is stored as 0, and the writer does not open.
MP4_MIN_FPS = 0.001
# FFmpeg's MPEG-4 encoder refuses a side of 8192 px or more ("dimensions too large for MPEG-4"); sides are even.
MP4_MAX_SIDE_PX = 8190


class ColourScale:
    """The disparity that maps to the top of the colour map, fixed for a whole stream.

    Either given (``--max-disp``), or measured once from the first ``warmup_frames`` frames that have
    disparities (the 99th percentile of their valid disparities; frames with fewer than
    :data:`COLOUR_MIN_VALID_SHARE` of their pixels valid, such as black ones, are passed over) and then
    frozen: never rescaled per frame, which makes colours flicker.

    Args:
        max_disp_px: the top of the range, pixels; ``None`` measures it.
        warmup_frames: frames to measure it from.
        fallback_px: the top of the range when it is frozen before any frame had disparities (the model's
            largest disparity); ``None``: 1 px.
    """

    def __init__(self, max_disp_px: float | None = None, warmup_frames: int = 5, fallback_px: float | None = None):
        if max_disp_px is not None:
            max_disp_px = require_number(
                max_disp_px, "colour range", "a max disparity in pixels, or None to measure it"
            )
            # inf coloured every frame as 0 px
            if not 0 < max_disp_px < math.inf:
                raise InputError(f"colour range: max disparity must be > 0 pixels, got {max_disp_px}")
        warmup_frames = require_whole(warmup_frames, "colour range: warmup_frames", "a whole number of frames >= 1")
        if warmup_frames < 1:
            raise InputError(f"colour range: warmup_frames must be >= 1, got {warmup_frames}")
        self.max_disp_px = max_disp_px
        self.warmup_frames = warmup_frames
        self.fallback_px = fallback_px
        self.source = "given" if max_disp_px is not None else "first frames"
        self._samples: list[np.ndarray] = []
        self._passed = 0  # frames observed without enough valid disparities

    @property
    def ready(self) -> bool:
        return self.max_disp_px is not None

    def observe(self, disparity_px: np.ndarray) -> None:
        """Take one warm-up frame into the measurement; freezes after ``warmup_frames``."""
        if self.ready:
            return
        d = np.asarray(disparity_px, dtype=np.float32)
        valid = d[np.isfinite(d) & (d > 0)]
        if valid.size < COLOUR_MIN_VALID_SHARE * d.size or valid.size == 0:
            self._passed += 1
            return
        # A subsample is enough for a percentile and keeps the warm-up cheap at full HD.
        self._samples.append(valid[:: max(1, valid.size // 20000)])
        if len(self._samples) >= self.warmup_frames:
            self.freeze()

    def freeze(self) -> float:
        """Fix the range from what was observed (:attr:`fallback_px`, else 1 px, when nothing valid was seen)."""
        if self.max_disp_px is None:
            passed = f", {counted(self._passed, 'frame')} without disparities passed over" if self._passed else ""
            if self._samples:
                values = np.concatenate(self._samples)
                self.max_disp_px = max(float(np.percentile(values, COLOUR_PERCENTILE)), 1.0)
                log.info(
                    "colour range fixed at 0..%.1f px from the first %s with disparities%s",
                    self.max_disp_px,
                    counted(len(self._samples), "frame"),
                    passed,
                )
            else:
                self.max_disp_px = max(float(self.fallback_px or 1.0), 1.0)
                log.info(
                    "colour range fixed at 0..%.1f px (the model's range): no frame had disparities to measure it%s",
                    self.max_disp_px,
                    passed,
                )
            self._samples = []
        return self.max_disp_px


def compose_preview(left: np.ndarray, disparity_px: np.ndarray, max_disp_px: float) -> np.ndarray:
    """The left image beside the colourised disparity.

    Args:
        left: uint8 RGB ``(H, W, 3)``.
        disparity_px: float ``(H, W)``, ``nan`` = invalid (black).
        max_disp_px: disparity at the top of the colour map.

    Returns:
        uint8 RGB ``(H, 2W, 3)``.
    """
    return np.concatenate([left, colorize(disparity_px, max_disp_px)], axis=1)


@dataclass
class OutputFrame:
    """One processed frame on its way to the outputs.

    Attributes:
        number: the mp4 frame and the PNG number, from 0: the frame's place among those a video or an image sequence
            uses (a frame passed over as damaged leaves its number unused: no PNG, a black frame in the mp4), else
            its place among the written frames.
        pair: the (prepared) input pair.
        result: the disparity, after the temporal filter when one runs.
        preview: the composed left|disparity image (RGB), when an output needs it.
    """

    number: int
    pair: StereoPair
    result: DisparityResult
    preview: np.ndarray | None = None


class Sink(abc.ABC):
    """An output of a stream. ``close`` must leave what was written valid, also after an error."""

    wants_preview = False

    @abc.abstractmethod
    def write(self, frame: OutputFrame) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def outputs(self) -> list[str]:
        """Paths written (for the summary)."""


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")  # what the mp4v writer stores as MPEG-4


def check_video_output(path: str | Path, fps: float | None = None) -> Path:
    """Refuse an mp4 output that :class:`VideoSink` cannot write, before anything is made: ``video`` and ``live``
    ask it before the model loads (``-o out.avi`` waited for the model, seconds with torch, to be refused).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``fps`` is no rate an mp4 stores.
        OutputError: ``path`` is no MPEG-4 file name, not UTF-8, or a folder.
    """
    given = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
    path = require_path(path, "video output", "an .mp4 file name (str or Path)")
    # 0 was taken for "unknown" (10 fps written) and a negative rate blamed on the folder ("not writable?")
    # a numpy number too (np.float32(30) was refused, as it was by --camera-fps; --fps took it)
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps < math.inf):
        raise InputError(f"video output {path}: fps must be a number > 0, or None to measure it; got {fps!r}")
    if fps is not None and fps > MPEG4_MAX_FPS:
        raise InputError(
            f"video output {path}: MPEG-4 stores at most {MPEG4_MAX_FPS} fps (its time base has 16 bits), got {fps:g}"
        )
    if fps is not None and fps <= MP4_MIN_FPS:  # refused at the first frame, by the writer, after the model loaded
        raise InputError(
            f"video output {path}: OpenCV stores an mp4's frame rate in steps of {MP4_MIN_FPS} fps, so it "
            f"must be over {MP4_MIN_FPS} fps; got {fps:g}"
        )
    if str(given).endswith(("/", os.sep)):  # `-o o.mp4/` wrote the file o.mp4: Path drops the separator
        example = path if path.suffix.lower() in VIDEO_SUFFIXES else path / "out.mp4"
        raise OutputError(
            f"video output {given} ends with a folder separator, which names a folder: give a file name, e.g. {example}"
        )
    if path.is_dir():  # before its suffix: "-o frames" of a folder was told it had no suffix
        raise OutputError(f"video output {path} is a folder: give a file name, e.g. {path / 'out.mp4'}")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise OutputError(
            f"video output {path}: expected a {', '.join(VIDEO_SUFFIXES)} file name (an MPEG-4 video), "
            f"got {repr(path.suffix) if path.suffix else 'no suffix'}"
        )
    if not is_utf8(path):
        # OpenCV's writer takes the name as UTF-8 text: on a name that is not (Linux names are bytes) it
        # crashed the process with a segmentation fault; it cannot be handed bytes, so the name is refused.
        raise OutputError(
            f"video output {shown(path)}: OpenCV's video writer takes only names in UTF-8, and this path is "
            "not (bytes from another encoding): give -o a path in UTF-8"
        )
    return path


def _too_large(path: Path, frame_hw: tuple[int, int], preview_hw: tuple[int, int]) -> str:
    """Why the previews of ``frame_hw`` frames cannot be the mp4 ``path``, and the largest ``--size`` whose can (the
    preview is the left image beside its disparity: twice as wide). A 4096-px-wide camera's frames, or a 6000x4000
    photo's, were refused by FFmpeg with its own lines on stderr and 'folder not writable?'."""
    height, width = frame_hw
    scale = min(1.0, (MP4_MAX_SIDE_PX // 2) / width, MP4_MAX_SIDE_PX / height)
    fits_h, fits_w = (max(2, int(side * scale) // 2 * 2) for side in (height, width))
    return (
        f"cannot write the video {path}: its frames, each {height}x{width} (HxW) image beside its coloured "
        f"disparity, are {preview_hw[0]}x{preview_hw[1]}, and MPEG-4 holds at most {MP4_MAX_SIDE_PX} px a side: "
        f"resize the frames (e.g. --size {fits_h}x{fits_w}), or leave out -o and write the "
        "disparity as 16-bit PNGs at full size (--output-prefix)"
    )


def check_video_frame_size(path: str | Path, frame_hw: tuple[int, int]) -> None:
    """Refuse, before a stream starts, frames of ``frame_hw`` (HxW) whose previews no mp4 holds (:class:`VideoSink`
    refuses them at the first frame, after the model has loaded).

    Raises:
        OutputError: the preview (the frame beside its disparity, each side padded to even) is over
            :data:`MP4_MAX_SIDE_PX` a side.

    Examples:
        >>> check_video_frame_size("o.mp4", (480, 4095))  # 8190 px wide: the most an mp4 holds
    """
    height, width = (int(side) for side in frame_hw)
    if max(2 * width, height + height % 2) > MP4_MAX_SIDE_PX:
        raise OutputError(_too_large(Path(path), (height, width), (height, 2 * width)))


class VideoSink(Sink):
    """An mp4 (MPEG-4 part 2, ``mp4v``) of the previews.

    Args:
        path: the ``.mp4`` file; its folder is created.
        fps: the frame rate stored in the file (> 0); ``None``: set later through :attr:`fps`, before the
            first write (10 when it never is): a :class:`~rtstereo.stream.Stream` sets a video's (or an image
            sequence's) own rate over its stride, and a camera's measured rate.

    Attributes:
        closing_fps: when set before :meth:`close`, the rate the file's header gets as it closes, its frames
            untouched: a :class:`~rtstereo.stream.Stream` sets a camera's rate measured over the whole recording,
            known only at its end. :attr:`fps` then says the rate the file holds.
    """

    wants_preview = True

    def __init__(self, path: str | Path, fps: float | None = None):
        self.path = check_video_output(path, fps)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder {self.path.parent}: {os_reason(exc, self.path)}") from None
        self.fps = None if fps is None else float(fps)
        self.closing_fps: float | None = None
        self.frames = 0
        self._failed = False
        self._writer: cv2.VideoWriter | None = None
        self._size_wh: tuple[int, int] | None = None
        self._frame_hw: tuple[int, int] = (0, 0)  # the first frame's image size, for the message above
        # Written under a hidden name and renamed when closed (finalised): a file under the real name plays.
        # The name carries this process's tag: what a run killed with SIGKILL left is removed by the next.
        remove_stale_partials(self.path.parent)
        self._partial = partial_path(self.path)
        _check_writable(self._partial, f"the video {self.path}")

    def write(self, frame: OutputFrame) -> None:
        image = frame.preview
        assert image is not None, "VideoSink needs the preview"
        height, width = image.shape[:2]
        # MPEG-4 needs even sizes; a black row/column keeps every pixel of the image.
        padded_wh = (width + width % 2, height + height % 2)
        if self._writer is None:
            if max(padded_wh) > MP4_MAX_SIDE_PX:  # the writer did not open, and the message blamed the folder
                raise OutputError(_too_large(self.path, frame.pair.left.shape[:2], (height, width)))
            self._writer = self._open(padded_wh)
            self._size_wh = padded_wh
            self._frame_hw = frame.pair.left.shape[:2]
            if padded_wh != (width, height):  # said once: a black line at an edge is no artefact of the model
                added = " and ".join(
                    side
                    for side, odd in (
                        ("a black column at the right", width % 2),
                        ("a black row at the bottom", height % 2),
                    )
                    if odd
                )
                log.info(
                    "%s: the previews are %dx%d (HxW) and MPEG-4 needs even sizes: written %dx%d, with %s (every "
                    "pixel of the preview kept; frames of even sizes, e.g. --size HxW, avoid it)",
                    self.path,
                    height,
                    width,
                    *padded_wh[::-1],
                    added,
                )
        elif padded_wh != self._size_wh:
            (h0, w0), (h1, w1) = self._frame_hw, frame.pair.left.shape[:2]
            raise OutputError(
                f"{self.path}: frame size changed mid-stream from {h0}x{w0} to {h1}x{w1} (HxW) at frame "
                f"{frame.number if frame.pair.index is None else frame.pair.index}: an mp4 holds one size (--size HxW "
                "resizes every frame to one)"
            )
        if frame.number > self.frames:  # frames passed over (damaged, not decoded): black, so mp4 frame n stays n
            black = np.zeros((padded_wh[1], padded_wh[0], 3), np.uint8)
            for _ in range(frame.number - self.frames):
                self._writer.write(black)
                self.frames += 1
        if padded_wh != (width, height):
            image = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_CONSTANT, value=0)
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _open(self, size_wh: tuple[int, int]) -> cv2.VideoWriter:
        """The writer of ``size_wh`` frames at :attr:`fps`, or at the nearest rate with fewer decimals that MPEG-4
        stores (said once): its time base has 16 bits, so OpenCV's writer did not open at 66.667 fps (a 200 fps
        video at ``--stride 3``), and the run ended with OpenCV's lines and "folder not writable?".

        Raises:
            OutputError: no rate near :attr:`fps` can be stored, or the writer does not open at any rate.
        """
        asked = float(self.fps or 10.0)
        # OpenCV stores a rate to within 0.001 fps as a decimal fraction; with fewer decimals its terms are smaller.
        for fps in dict.fromkeys((asked, round(asked, 2), round(asked, 1), float(round(asked)))):
            writer = self._writer_at(fps, size_wh) if fps > 0 else None
            if writer is not None:
                if fps != asked:
                    log.info(
                        "%s: MPEG-4 cannot store %.10g fps (its time base has 16 bits): recorded at %g fps",
                        self.path,
                        asked,
                        fps,
                    )
                self.fps = fps
                return writer
        probe = self._writer_at(10.0, size_wh)  # opens at an ordinary rate: the asked one is what cannot be stored
        if probe is not None:
            probe.release()
        self._partial.unlink(missing_ok=True)
        if probe is not None:
            raise OutputError(
                f"cannot write the video {self.path}: MPEG-4 cannot store a frame rate of {asked:g} fps, nor a "
                "rounding of it (OpenCV's writer did not open at it)"
            )
        raise OutputError(
            f"cannot write the video {self.path}: OpenCV's FFmpeg writer did not open it (folder not writable?)"
        )

    def _writer_at(self, fps: float, size_wh: tuple[int, int]) -> cv2.VideoWriter | None:
        """An open writer at ``fps``, or ``None``; OpenCV's lines about one it could not open are held back."""
        from ..io.quiet import native_output_held

        # The writer opened first sets FFmpeg's level for the videos read after it.
        with native_output_held() as noise, ffmpeg_quietened():
            writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter_fourcc(*MP4_FOURCC), fps, size_wh)
            opened = writer.isOpened()
            if not opened:
                noise.discard()
        return writer if opened else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # writes the mp4 index: without it the file does not play
            self._writer = None
            held, stored_fps = _read_back(self._partial)
            problem = _unplayable(self._partial, self.frames, held)
            if problem is not None:  # OpenCV's writer says nothing of a failed write (a full disk)
                self._failed = True
                self._partial.unlink(missing_ok=True)
                raise OutputError(f"cannot write the video {self.path}: {problem}")
            # OpenCV stores the rate as a decimal fraction to within 0.001 fps: 30 fps at --stride 7 is 4.286 in the
            # file, and the summary's video_fps said 4.285714285714286
            if stored_fps > 0 and not math.isclose(stored_fps, self.fps or 0.0, rel_tol=1e-9):
                self.fps = stored_fps
            if self.closing_fps and self.fps:
                changed = abs(self.closing_fps - self.fps) <= 0.005 or self._set_rate(self.closing_fps)
                if changed:
                    log.info(
                        "%s: recorded at %.2f fps (the rate of its %s over the whole recording)",
                        self.path,
                        self.fps,
                        counted(self.frames, "frame"),
                    )
            try:
                os.replace(self._partial, self.path)
            except OSError as exc:
                self._failed = True
                self._partial.unlink(missing_ok=True)
                raise OutputError(f"cannot write the video {self.path}: {os_reason(exc, self.path)}") from None

    def _set_rate(self, fps: float) -> bool:
        """Give the closed file the rate ``fps`` in its header (:func:`~rtstereo.sinks.mp4_rate.set_mp4_rate`); one
        whose header cannot be changed keeps the rate it opened at, said in a warning (``False``)."""
        from .mp4_rate import Mp4LayoutError, set_mp4_rate

        opened_at = self.fps
        try:
            set_mp4_rate(self._partial, fps)
        except (Mp4LayoutError, OSError) as exc:
            log.warning(
                "%s: kept at %g fps, its header's rate could not be set to %g fps: %s", self.path, opened_at, fps, exc
            )
            return False
        held, stored_fps = _read_back(self._partial)
        if held != self.frames or not stored_fps > 0:  # not expected: the edit touches the header's times only
            self._failed = True
            self._partial.unlink(missing_ok=True)
            raise OutputError(f"cannot write the video {self.path}: setting its frame rate left it unreadable")
        self.fps = stored_fps
        return True

    @property
    def outputs(self) -> list[str]:
        return [str(self.path)] if self.frames and not self._failed else []


def _read_back(path: Path) -> tuple[int | None, float]:
    """The frame count and frame rate of the mp4 OpenCV's writer left at ``path``, as OpenCV reads them back;
    ``(None, 0.0)`` when it does not open."""
    from ..io.quiet import native_output_held

    with native_output_held() as noise, ffmpeg_quietened():
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                return None, 0.0
            return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            capture.release()
            noise.discard()


def _unplayable(path: Path, frames: int, held: int | None) -> str | None:
    """Why the mp4 OpenCV's writer left at ``path``, read back as holding ``held`` frames (:func:`_read_back`;
    ``None``: it does not open), does not hold its ``frames`` frames, or ``None`` when it does.

    The writer reports no failed write: on a full disk it left a file without its index (FFmpeg's "moov atom
    not found") that no player opens, and the run said it was written.
    """
    import shutil

    if held is not None and held == frames:
        return None
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free on its disk"
    except OSError:
        free = "its disk's free space unknown"
    left = "a file that cannot be opened" if held is None else f"a file of {counted(held, 'frame')}"
    return f"OpenCV's writer left {left}, of {counted(frames, 'frame')} written (a full disk? {free}); it is removed"


class DisparityPngSink(Sink):
    """16-bit KITTI disparity PNGs (value = d * 256, 0 = invalid) named ``<prefix>_00000.png``.

    The n-th PNG belongs to the n-th frame of the mp4 written alongside. A frame whose disparity does
    not fit the encoding (256 px or more) gets no PNG (a gap in the numbers; a PNG of that number left
    by an earlier run is removed), with one warning per stream; the stream goes on. Disparities <= 0 px are
    written as 0 (invalid), with one warning per stream that counts them in the first such frame. The PNGs of an
    earlier run under the same prefix that this run does not replace are named in a warning when
    the sink closes: they do not belong to this run's frames.

    Args:
        prefix: path prefix, e.g. ``out/disp`` gives ``out/disp_00000.png``; its folder is created.
    """

    def __init__(self, prefix: str | Path):
        expanded = require_path(prefix, "PNG prefix", "a path prefix (str or Path), e.g. frames/disp")  # "~" too
        text = os.fspath(prefix)  # as given: Path("frames/") drops the separator, Path("") is "."
        # "frames/" wrote frames_00000.png beside the folder, and "" wrote _00000.png in the working folder
        if not str(text).strip() or str(text).endswith(("/", os.sep)):
            raise OutputError(
                f"PNG prefix {str(text)!r} names no file: the PNGs are <prefix>_00000.png, so give a folder and a "
                "name, e.g. frames/disp for frames/disp_00000.png"
            )
        self.prefix = expanded
        if self.prefix.is_dir():  # an existing folder, named without the separator: the PNGs went beside it too
            raise OutputError(
                f"PNG prefix {text} is a folder: the PNGs are <prefix>_00000.png and would be written beside it; "
                f"give a name inside it, e.g. {self.prefix / 'disp'} for {self.prefix / 'disp'}_00000.png"
            )
        try:
            self.prefix.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder {self.prefix.parent}: {os_reason(exc, self.prefix)}") from None
        _check_writable(self.prefix.parent / f".{self.prefix.name}.probe-{os.getpid()}", f"PNGs {self.prefix}_*")
        remove_stale_partials(self.prefix.parent)  # half-written PNGs of a run killed mid-write
        self.written: list[str] = []
        self.too_far: list[int] = []  # frame numbers left without a PNG
        self._said_unstored = False  # disparities <= 0 written as 0 (invalid) are warned of once
        self._next = 0  # the number after the last frame's: those between it and a frame's have no PNG
        # Whether an mp4 is written beside the PNGs (a Stream with a VideoSink sets it): a frame without a PNG is then
        # still in the mp4, which the warning says only where there is one.
        self.beside_video = False
        # An earlier run's PNGs: those this run leaves are named when it ends (they would pass for its frames).
        self._earlier = {str(self.prefix.parent / name) for name in numbered_pngs(self.prefix)}

    def path_for(self, number: int) -> Path:
        return self.prefix.parent / f"{self.prefix.name}_{number:05d}.png"

    def write(self, frame: OutputFrame) -> None:
        path = self.path_for(frame.number)
        # The source's number, as the stream's other warnings name a frame (PNG 0 of --start 300 is frame 300)
        named = frame.pair.index if frame.pair.index is not None else frame.number
        try:
            encoded = to_png16(frame.result.disparity_px)
        except DisparityRangeError as exc:
            if not self.too_far:
                warn(
                    f"frame {named}: disparity up to {exc.max_disparity_px:.1f} px does not fit the 16-bit "
                    "PNGs of --output-prefix (max 255.99 px at d*256): this frame and any other beyond 256 px get "
                    f"no PNG{'; the mp4 still shows them' if self.beside_video else ''}"
                )
            self.too_far.append(frame.number)
            unused, self._next = range(self._next, frame.number + 1), frame.number + 1
            self._remove_earlier(unused)
            return
        unused, self._next = range(self._next, frame.number), frame.number + 1  # frames passed over (damaged)
        self._remove_earlier(unused)
        # Encoded by OpenCV, written by Python under a tagged temporary name (a kill mid-write leaves a file the
        # next run removes): cv2.imwrite crashed on a path that is not UTF-8.
        write_image(path, encoded)
        self.written.append(str(path))
        lost = 0 if self._said_unstored else png16_unstored(frame.result.disparity_px)
        if lost:  # once per stream: a predictor of one's own may give them on every frame
            self._said_unstored = True
            warn(f"frame {named} ({path.name}): {png16_unstored_message(lost, encoded.size)} (said once)")

    def _remove_earlier(self, numbers: Iterable[int]) -> None:
        """Remove the PNGs an earlier run left under the numbers of frames that get none in this run: they would
        pass for this run's."""
        for number in numbers:
            path = self.path_for(number)
            if str(path) not in self._earlier:
                continue
            try:
                path.unlink()
            except OSError as exc:
                reason = "it is a folder" if path.is_dir() else os_reason(exc, path)
                raise OutputError(f"cannot remove {path}, left by an earlier run: {reason}") from None
            self._earlier.discard(str(path))

    def close(self) -> None:
        left = sorted(self._earlier.difference(self.written))
        self._earlier = set()
        if left and (self.written or self.too_far):
            warn(earlier_pngs_message(self.prefix, [Path(name).name for name in left]))

    @property
    def outputs(self) -> list[str]:
        if not self.written and not self.too_far:
            return []
        have = "has" if len(self.too_far) == 1 else "have"
        skipped = f" ({counted(len(self.too_far), 'frame')} beyond 256 px {have} none)" if self.too_far else ""
        return [f"{self.prefix}_NNNNN.png x {len(self.written)}{skipped}"]


def numbered_pngs(prefix: str | Path) -> dict[str, tuple[int, int]]:
    """The ``<prefix>_NNNNN.png`` files there now, each with its ``(inode, mtime_ns)``.

    Taken before a stream and compared after it (:func:`earlier_pngs`): a PNG the stream wrote was
    renamed into place, so it is another file, whatever its number."""
    prefix = Path(prefix)
    pattern = re.compile(rf"{re.escape(prefix.name)}_\d{{5,}}\.png")
    try:
        entries = list(os.scandir(prefix.parent if str(prefix.parent) else "."))
    except OSError:
        return {}
    found = {}
    for entry in entries:
        if pattern.fullmatch(entry.name):
            with contextlib.suppress(OSError):
                stat = entry.stat()
                found[entry.name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def earlier_pngs(prefix: str | Path, before: dict[str, tuple[int, int]]) -> list[str]:
    """The PNGs of ``before`` (:func:`numbered_pngs`) still there unchanged: an earlier run's, not this one's.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("disp_00000.png", "disp_00001.png", "disp_summary.json"):
        ...     _ = (folder / name).write_bytes(b"an earlier run's")
        >>> before = numbered_pngs(folder / "disp")
        >>> _ = (folder / "new.png").write_bytes(b"this run's frame 0")
        >>> os.replace(folder / "new.png", folder / "disp_00000.png")
        >>> earlier_pngs(folder / "disp", before)
        ['disp_00001.png']
    """
    now = numbered_pngs(prefix)
    return sorted(name for name, identity in before.items() if now.get(name) == identity)


def earlier_pngs_message(prefix: str | Path, names: list[str]) -> str:
    """What is said of an earlier run's PNGs ``names`` (sorted) left among this run's under ``prefix``."""
    span = names[0] + (f" to {names[-1]}" if len(names) > 1 else "")
    return (
        f"{counted(len(names), 'PNG')} of an earlier run {'is' if len(names) == 1 else 'are'} left beside this "
        f"run's under {prefix}_ ({span}): "
        "they are not this run's frames; remove them, or write each run under its own --output-prefix"
    )


def say_earlier_pngs(prefix: str | Path, before: dict[str, tuple[int, int]]) -> None:
    """Warn when PNGs of an earlier run under ``prefix`` are left among this run's (none is removed): after
    a Ray run, whose workers write the PNGs side by side (one process's sink sees its own range only)."""
    stale = earlier_pngs(prefix, before)
    if stale:
        log.warning(earlier_pngs_message(prefix, stale))


def refuse_writing_over_inputs(
    outputs: Iterable[tuple[str, str | Path | None]],
    inputs: Iterable[str | Path],
    png_prefixes: Iterable[tuple[str, str | Path | None]] = (),
) -> None:
    """Refuse an output file that is one of the files a stream reads (also under another name or a link):
    the finished video replaced the input when it was renamed into place, and the PNGs of ``--output-prefix
    frames/left`` replaced the input images ``frames/left_00000.png``...

    Args:
        outputs: ``(what, path)`` of each output file (``what`` names it in the message: ``-o``, ``--summary``,
            ``video output``); ``None`` paths are skipped.
        inputs: the files the source reads (:attr:`~rtstereo.sources.base.FrameSource.input_files`).
        png_prefixes: ``(what, prefix)`` of each :class:`DisparityPngSink` (``PREFIX_00000.png``...).

    Raises:
        InputError: an output that is an input.
    """
    sources = [Path(source) for source in inputs if Path(source).is_file()]
    for what, prefix in png_prefixes:
        if prefix is None:
            continue
        named = [source for source in sources if _png_of_prefix(source, Path(prefix))]
        if named:
            more = f" and {len(named) - 1} more" if len(named) > 1 else ""
            raise InputError(
                f"{what} {prefix} would write its PNGs ({Path(prefix).name}_00000.png, ...) over the input images "
                f"({named[0]}{more}): writing them would destroy the input; choose another prefix"
            )
    for what, output in outputs:
        if output is None or not Path(output).is_file():
            continue
        for source in sources:
            if Path(output).samefile(source):
                raise InputError(
                    f"{what} {output} is the input video {source}: writing it would destroy the input; "
                    "choose another output name"
                )


def _png_of_prefix(path: Path, prefix: Path) -> bool:
    """Whether ``path`` is a name :class:`DisparityPngSink` gives its PNGs under ``prefix``, in its folder."""
    if not re.fullmatch(re.escape(prefix.name) + r"_\d{5,}\.png", path.name):
        return False
    folder = prefix.parent if prefix.parent.exists() else None
    return folder is not None and path.parent.resolve() == folder.resolve()


def _check_writable(probe: Path, what: str) -> None:
    """Create and remove ``probe``: a folder that cannot be written is said before the first frame."""
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:  # the reason without the probe's hidden name, which is no file of the user's
        raise OutputError(f"cannot write {what}: {os_reason(exc, probe)}") from None


QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc

# Both OpenCV wheels are the module cv2, and rtstereo requires the headless one: "pip install opencv-python" beside it,
# as the message said, left two packages writing the same files (OpenCV's own advice: install one only), the last one
# installed winning, and uninstalling either then broke cv2. Both go first.
GUI_INSTALL = "pip uninstall -y opencv-python-headless opencv-python && pip install opencv-python"


def opencv_has_gui() -> bool:
    """Whether this OpenCV was built with a HighGUI backend (GTK, Qt, Win32, Cocoa): the headless wheels say NONE."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return False  # a build that does not say: as the headless wheels, the one rtstereo installs


class OpenCVWindow:
    """An OpenCV HighGUI window; :meth:`poll` handles events and reports a quit request.

    Raises:
        OutputError: the window could not be created (no display, or an OpenCV built without GUI).
    """

    def __init__(self, title: str = "rtstereo (q or Esc quits)"):
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            if not opencv_has_gui():  # OpenCV's own reason says to rebuild it with GTK: not what a pip user does
                raise OutputError(
                    "cannot open a window: this OpenCV has no GUI, as opencv-python-headless, which rtstereo installs: "
                    f"for --show put the GUI build in its place with '{GUI_INSTALL}', or write -o FILE.mp4 or "
                    "--output-prefix, or view in 3D with --view3d"
                ) from None
            lines = str(exc).strip().splitlines()  # OpenCV's reason is its last line; none gave IndexError
            reason = lines[-1].strip() if lines else type(exc).__name__
            raise OutputError(f"cannot open a window: {reason}") from None
        self._shown = False
        self.keys: dict[int, Callable[[], None]] = {}  # other keys' actions (e.g. f freezes online adaptation)

    def show(self, image_rgb: np.ndarray) -> None:
        cv2.imshow(self.title, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        self._shown = True

    def poll(self, wait_ms: int = 15) -> bool:
        """Process window events for up to ``wait_ms``; True when the user asked to quit."""
        # waitKey keeps the low byte of the key code only: Left arrow (0xFF51 on X11, GTK and Qt alike) read as
        # 'Q' and quit the stream. waitKeyEx gives the whole code; GTK adds the modifiers (NumLock, Shift) above
        # bit 16, which are dropped.
        key = cv2.waitKeyEx(wait_ms)
        key = key & 0xFFFF if key != -1 else -1
        if key in QUIT_KEYS:
            return True
        if key in self.keys:
            self.keys[key]()
        # Closing the window with its title-bar button also quits.
        return self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def display_available() -> bool:
    """Whether a window can be shown: a desktop session (X11/Wayland on Linux; always on macOS/Windows)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_window(title: str = "rtstereo (q or Esc quits)") -> OpenCVWindow | None:
    """A window when a display exists, else ``None`` with a warning saying why."""
    if not display_available():
        log.warning("--show: no display (DISPLAY/WAYLAND_DISPLAY unset); running without a window")
        return None
    try:
        return OpenCVWindow(title)
    except OutputError as exc:
        log.warning("--show: %s; running without a window", exc)
        return None
