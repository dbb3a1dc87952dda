"""What every stream source shares: the :class:`FrameSource` interface, the one-slot buffer of live
cameras, and the per-frame preparation (rectify, resize) done in the capture stage.

A source yields :class:`~rtstereo.types.StereoPair` objects with ``index`` (the frame number in the
source) and ``timestamp_s`` (seconds since the start of the video, or the camera's clock). File
sources yield every frame (backpressure comes from the pipeline's bounded queues); live sources keep
only the newest frame, so a slow model never works on stale images.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, require_bool, require_number, require_whole
from ..geometry import calibration_scale
from ..io.quiet import native_output_held
from ..rectify import (
    ALIGN_MIN_PX,
    RectificationCheck,
    check_rectification,
    rectification_record,
    remap_in_tiles,
    row_alignment_maps,
    row_alignment_record,
)
from ..text import counted
from ..types import Calibration, StereoPair

log = logging.getLogger("rtstereo.stream")


class CameraError(InputError):
    """A camera that is absent, busy, or stopped delivering frames."""


class CameraLostError(CameraError):
    """A camera that stopped delivering frames mid-stream (unplugged, stalled, its driver failed): no usage error,
    the same command may well run again (the command line's exit code 1, not 2)."""


class FrameSource(abc.ABC):
    """A sequence of stereo pairs: videos, image sequences or a live camera.

    Subclasses implement :meth:`_frames`; iterating a source opens it and closes it at the end, also
    when the consumer stops early. Use it once.

    Attributes:
        description: a short human label (``two videos a.mp4 + b.mp4``).
        fps: the nominal frame rate, frames per second (``None`` when unknown).
        live: whether frames are dropped to keep only the newest one (cameras).
    """

    description: str = "source"
    fps: float | None = None
    live: bool = False

    @property
    def expected_frames(self) -> int | None:
        """How many pairs iteration yields, when known in advance (for the progress bar); with
        :attr:`progress_by_index`, the frame count of the recording the indices number."""
        return None

    @property
    def progress_by_index(self) -> bool:
        """Whether progress is the pairs' ``index`` (their frame number) rather than the pairs processed: a
        recording played at its own pace drops the frames a slow model is not ready for, which have passed too."""
        return False

    @property
    def input_files(self) -> tuple[Path, ...]:
        """The local files the source reads (videos, images), which no output may replace (none: a camera)."""
        return ()

    def for_workers(self) -> FrameSource:
        """This source as other processes must be given it: its local files as absolute paths (Ray's workers run in
        the folder Ray started in, not the caller's). A copy; a source that reads no files (a camera) is itself."""
        return self

    def stats(self) -> dict[str, Any]:
        """Source-side figures for the summary (delivered frame rate, dropped frames)."""
        return {}

    @abc.abstractmethod
    def _frames(self) -> Iterator[StereoPair]:
        """Yield the pairs; release what was opened in a ``finally`` block."""

    def __iter__(self) -> Iterator[StereoPair]:
        return self._frames()


def check_fps(fps: float, name: str = "--fps") -> float:
    """``fps`` as a float, or an error naming ``name`` for a frame rate that is not a positive number (it divides frame
    numbers into timestamps).

    Examples:
        >>> check_fps(np.float32(30), "--camera-fps")  # a numpy number too
        30.0
        >>> check_fps(0, "--camera-fps")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: --camera-fps must be > 0 (frames per second), got 0
    """
    fps = require_number(fps, name, "a frame rate > 0 (frames per second)")
    if not (math.isfinite(fps) and fps > 0):
        # "finite" only for what is not: "must be > 0, got inf" read as a contradiction
        finite = "" if math.isfinite(fps) or math.isnan(fps) else "a finite number "
        raise InputError(f"{name} must be {finite}> 0 (frames per second), got {fps:g}")
    return fps


def check_start_stride(start: int, stride: int) -> tuple[int, int]:
    """``(start, stride)`` as Python ints, or an :class:`InputError` naming ``--start``/``--stride``.

    A numpy integer is taken as its int: kept as given, the pairs' indices were numpy integers and the stream's summary
    left out ``source_frames`` (PNG ``n`` is frame ``start + n * stride``), whose numbers it checks to be ints.

    Examples:
        >>> check_start_stride(np.int64(3), np.int32(2))
        (3, 2)
    """
    # A float or a string failed later with a bare TypeError ("'float' object cannot be interpreted as an integer")
    start = require_whole(start, "--start", "a whole number of frames >= 0 (first frame to use, counted from 0)")
    stride = require_whole(stride, "--stride", "a whole number >= 1 (use every N-th frame)")
    if start < 0:
        raise InputError(f"--start must be >= 0 (first frame to use, counted from 0), got {start}")
    if stride < 1:
        raise InputError(f"--stride must be >= 1 (use every N-th frame), got {stride}")
    return start, stride


def split_side_by_side(frame: np.ndarray, swap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cut a side-by-side frame ``(H, 2W, C)`` into its left and right halves.

    An odd width is refused rather than cropped: the column that belongs to neither half cannot be
    guessed, and a one-column error shifts every disparity by one pixel.

    Args:
        frame: the full frame; the left view is the left half unless ``swap``.
        swap: the views are stored right|left (cross-eye videos).

    Returns:
        ``(left, right)``, views of ``frame`` of width ``W`` each.

    Examples:
        >>> left, right = split_side_by_side(np.zeros((2, 8, 3), np.uint8))
        >>> left.shape, right.shape
        ((2, 4, 3), (2, 4, 3))
    """
    width = frame.shape[1]
    check_side_by_side_width(width)
    half = width // 2
    first, second = frame[:, :half], frame[:, half:]
    return (second, first) if swap else (first, second)


def check_side_by_side_width(width_px: int) -> None:
    """Refuse an odd side-by-side frame width (see :func:`split_side_by_side`)."""
    if width_px % 2:
        raise InputError(
            f"a side-by-side frame holds two halves of equal width, but this one is {width_px} px wide "
            "(odd); crop one column off the video first (e.g. ffmpeg -i in.mp4 -vf crop=iw-1:ih:0:0 out.mp4)"
        )


@dataclass
class FramePreparer:
    """The capture-stage work on each pair: rectify with maps, attach a calibration, resize.

    Resizing is never silent: the first resized pair logs the change, the disparity is in pixels of
    the resized frames, and the calibration is scaled with the images.

    Args:
        size_wh: target ``(width, height)``; ``None`` keeps the source size.
        rectifier: an object with ``rectify(left, right) -> (left, right, calibration)``.
        calibration: a calibration for pairs that carry none (``--calib``), at the source size.
        align_rows: align the right view's rows with the left one's (``--align-rows``): measured once,
            on the first frame whose features can be judged (:func:`~rtstereo.rectify.check_rectification`,
            at most :data:`ALIGN_TRIES` frames), and applied to every frame from then on.
        swap_hint: how the command exchanges the views (``"--swap exchanges them"``), added to the advice
            for views that look swapped, which ``align_rows`` leaves alone.
    """

    size_wh: tuple[int, int] | None = None
    rectifier: Any = None
    calibration: Calibration | None = None
    align_rows: bool = False
    swap_hint: str | None = None
    _announced: bool = field(default=False, repr=False)
    _row_maps: Any = field(default=None, repr=False)
    _align_tries: int = field(default=0, repr=False)
    _align_record: dict[str, Any] | None = field(default=None, repr=False)  # what the measured rows made it do
    _scaled: Any = field(default=None, repr=False)  # (frame size, the calibration scaled to it)

    ALIGN_TRIES = 30

    def __post_init__(self) -> None:
        self.align_rows = require_bool(self.align_rows, "align_rows")

    def __call__(self, pair: StereoPair) -> StereoPair:
        left, right, calibration = pair.left, pair.right, pair.calibration
        colours = pair.left_colours  # a colour left view matched in grey: rectified and resized alike, to be shown
        if self.rectifier is not None:
            left, right, calibration = self.rectifier.rectify(left, right)
            if colours is not None:
                colours = self.rectifier.rectify(colours, pair.right)[0]
        if self.align_rows:
            right = self._aligned(left, right)
        if calibration is None and self.calibration is not None:
            calibration = self._calibration_for(left.shape[:2])
        height, width = left.shape[:2]
        if self.size_wh is not None and self.size_wh != (width, height):
            target_w, target_h = self.size_wh
            if not self._announced:
                self._announce_resize((height, width), (target_h, target_w), calibration is not None)
                self._announced = True
            shrink = target_w < width
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            left = cv2.resize(left, (target_w, target_h), interpolation=interpolation)
            right = cv2.resize(right, (target_w, target_h), interpolation=interpolation)
            if colours is not None:
                colours = cv2.resize(colours, (target_w, target_h), interpolation=interpolation)
            if calibration is not None:
                calibration = calibration.scaled(target_w / width, target_h / height)
        if left is pair.left and right is pair.right and calibration is pair.calibration:
            return pair
        return StereoPair(
            left,
            right,
            name=pair.name,
            index=pair.index,
            timestamp_s=pair.timestamp_s,
            calibration=calibration,
            left_colours=colours,
        )

    def left_valid_mask(self) -> np.ndarray | None:
        """bool ``(H, W)`` of the rectified left view, at the rectified size: where it shows the raw one
        (:attr:`~rtstereo.rectify.Rectifier.left_valid_mask`); ``None`` without a rectifier that tells."""
        return getattr(self.rectifier, "left_valid_mask", None)

    @staticmethod
    def _announce_resize(size_hw: tuple[int, int], target_hw: tuple[int, int], scaled_calibration: bool) -> None:
        """Say the resize once: a notice, or a warning (shown with ``--quiet``) when it stretches the frames to
        another aspect ratio by more than 5 %, as ``predict`` says of a fixed-size export."""
        (height, width), (target_h, target_w) = size_hw, target_hw
        said = (
            f"resizing {height}x{width} frames to {target_h}x{target_w} (--size, HxW): the disparity is in pixels "
            f"of the {target_h}x{target_w} frames{', calibration scaled to match' if scaled_calibration else ''}"
        )
        aspect_change = (width / height) / (target_w / target_h)
        if 1 / 1.05 <= aspect_change <= 1.05:
            log.info(said)
            return
        # A size written WxH (--size 640x480 for 480x640 frames) stretches them to the inverse aspect ratio: named
        # with the size meant, as --camera-size names it, where the warning left the user to find the order out.
        transposed = (width / height) / (target_h / target_w)
        meant = (
            f"; sizes are HxW, height first: did you mean --size {target_w}x{target_h}?"
            if 1 / 1.05 <= transposed <= 1.05
            else ""
        )
        log.warning(
            f"{said}; the frames are stretched (aspect ratio W/H {width / height:.2f} run at "
            f"{target_w / target_h:.2f}): a --size of the frames' aspect ratio keeps it{meant}"
        )

    def _aligned(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``right`` with its rows aligned by the maps measured on an earlier frame (or this one)."""
        if self._row_maps is not None and self._row_maps is not False and self._row_maps[0].shape != right.shape[:2]:
            log.info("--align-rows: the frames changed size: measuring the rows again")
            self._row_maps, self._align_tries = None, 0
        if self._row_maps is None and self._align_tries < self.ALIGN_TRIES:
            self._align_tries += 1
            check = check_rectification(left, right)
            if check.conclusive:
                self._align_tries = self.ALIGN_TRIES  # judged: measured once for the stream
                maps = row_alignment_maps(check, *right.shape[:2])
                self._row_maps = maps if maps is not None else False
                self._align_record = row_alignment_record(check, applied=maps is not None)
                if check.median_dx_px < -1.0:
                    how = f" ({self.swap_hint})" if self.swap_hint else ""
                    log.warning(f"--align-rows: left and right look swapped; nothing aligned: swap the two inputs{how}")
                elif maps is not None:
                    log.info(
                        "--align-rows: rows off by up to %.2f px (%s; %d matched features): aligning every frame",
                        check.misalignment_px,
                        check.lower_view(),
                        check.matches,
                    )
                else:
                    log.info("--align-rows: %s: nothing aligned", _why_not_aligned(check))
            elif self._align_tries == self.ALIGN_TRIES:
                log.warning(
                    "--align-rows: the first %d frames gave too few matched features (or too few that agree on "
                    "the rows) to measure the rows; frames go through unaligned",
                    self.ALIGN_TRIES,
                )
        if self._row_maps is None or self._row_maps is False or self._row_maps[0].shape != right.shape[:2]:
            return right
        return remap_in_tiles(right, *self._row_maps)

    @property
    def rows_unmeasured(self) -> bool:
        """``align_rows`` still has frames to measure the rows on: none judged yet, fewer than
        :data:`ALIGN_TRIES` tried."""
        return self.align_rows and self._row_maps is None and self._align_tries < self.ALIGN_TRIES

    @property
    def preparation(self) -> dict[str, Any]:
        """What the stream's summary records of the frames' preparation, as ``predict``'s sidecar does of a pair's:
        with a rectifier, ``{"rectify": ...}`` (its file and the raw frames' size,
        :func:`~rtstereo.rectify.rectification_record`); with ``align_rows``, ``{"align_rows": ...}``
        (:func:`~rtstereo.rectify.row_alignment_record` of the frame the rows were measured on; not applied, and
        nothing measured, when no frame could be judged); else empty."""
        recorded: dict[str, Any] = {}
        if self.rectifier is not None:
            recorded["rectify"] = rectification_record(self.rectifier)
        if self.align_rows:
            unmeasured = {"applied": False, "misalignment_px": None, "row_shift_px": None}
            recorded["align_rows"] = self._align_record or unmeasured
        return recorded

    def align_rows_unmeasured(self) -> str | None:
        """What to say when the stream ended before ``align_rows`` could measure the rows: fewer frames than its
        :data:`ALIGN_TRIES`, none with enough matched features. Said at the 30th frame only, a shorter stream
        went through unaligned without a word. ``None`` when the rows were measured, or it was said already."""
        if not self.align_rows or self._row_maps is not None or self._align_tries in (0, self.ALIGN_TRIES):
            return None
        return (
            f"--align-rows: the stream's {counted(self._align_tries, 'frame')} gave too few matched features (or too "
            "few that agree on the rows) to measure the rows; frames went through unaligned"
        )

    def check_frame_size(self, size_hw: tuple[int, int]) -> None:
        """Refuse, before any frame, a rectification or a calibration that frames of ``size_hw`` cannot take: a
        camera's size is known once it opens, and they were refused at its first frame, after the model had loaded
        (and an ``--adapt`` process had started). A calibration of another size of the same aspect ratio is scaled,
        and said, now.

        Raises:
            InputError: rectification maps of another size, or a calibration of another aspect ratio.
        """
        maps_hw = getattr(self.rectifier, "size_hw", None)
        if maps_hw is not None and tuple(maps_hw) != tuple(size_hw):
            # a side-by-side rig calibrated on its whole frame
            whole = (
                "; the maps are two frames wide: calibrate from the two halves (rtstereo calibrate --left L --right "
                "R), not the side-by-side frame"
                if tuple(maps_hw) == (size_hw[0], 2 * size_hw[1])
                else ""
            )
            raise InputError(
                f"the frames are {size_hw[0]}x{size_hw[1]} but the rectification maps are for "
                f"{maps_hw[0]}x{maps_hw[1]} (HxW) images: use the camera mode the rig was calibrated in, or calibrate "
                f"at this size{whole}"
            )
        if self.rectifier is None and self.calibration is not None:
            self._calibration_for(size_hw)

    def _calibration_for(self, size_hw: tuple[int, int]) -> Calibration:
        """The calibration of frames of ``size_hw``: scaled, said once, when it was made at another size of
        the same aspect ratio (as ``predict`` does); refused for another aspect ratio."""
        calibration = self.calibration
        assert calibration is not None
        known = (calibration.height_px, calibration.width_px)
        if 0 in known or known == tuple(size_hw):
            return calibration
        if self._scaled is None or self._scaled[0] != tuple(size_hw):
            factors = calibration_scale(calibration, *size_hw)
            if factors is None:
                # predict names the EXIF tag for the turned size; frames are turned by a video's rotation tag too
                turned = calibration_scale(calibration, *size_hw[::-1]) is not None
                # A side-by-side rig calibrated on its whole frame (2560 wide for two 1280-px views): said so
                whole = calibration_scale(calibration, size_hw[0], 2 * size_hw[1]) is not None
                if turned:
                    why = (
                        ", the same turned 90 degrees: frames turned upright when read (a phone video's rotation tag, "
                        "a photo's EXIF orientation tag), or a camera turned the other way than when calibrated? Give "
                        "the calibration of the frames as rtstereo reads them"
                    )
                else:
                    why = " (another aspect ratio): give the calibration of this camera mode"
                hint = (
                    f"; it has the aspect ratio of two frames side by side: a calibration describes one view, "
                    f"{size_hw[0]}x{size_hw[1]} here, not the side-by-side frame"
                    if whole
                    else ""
                )
                raise InputError(
                    f"the calibration is for {known[0]}x{known[1]} (HxW) images but the frames are "
                    f"{size_hw[0]}x{size_hw[1]}{why} (--size resizes the frames after it is applied){hint}"
                )
            log.warning(
                "the calibration is for %dx%d (HxW) images; scaled by %.4f to these %dx%d frames",
                known[0],
                known[1],
                factors[0],
                size_hw[0],
                size_hw[1],
            )
            self._scaled = (tuple(size_hw), calibration.scaled(*factors))
        return self._scaled[1]


class PreparationWrapper:
    """A capture-stage step around the stream's preparation (its ``prepare``: a :class:`FramePreparer`, another
    wrapper, or ``None``) that tells what the wrapped one tells, so that a check put around it hides nothing."""

    prepare: Callable[[StereoPair], StereoPair] | None

    @property
    def preparation(self) -> dict[str, Any]:
        """What the wrapped preparation records for the stream's summary (:attr:`FramePreparer.preparation`)."""
        return dict(getattr(self.prepare, "preparation", None) or {})

    def left_valid_mask(self) -> np.ndarray | None:
        """Where the wrapped preparation's rectified left view shows the raw one
        (:meth:`FramePreparer.left_valid_mask`), or ``None``."""
        valid_of = getattr(self.prepare, "left_valid_mask", None)
        return valid_of() if callable(valid_of) else None


def _why_not_aligned(check: RectificationCheck) -> str:
    """Why :func:`~rtstereo.rectify.row_alignment_maps` gave no maps for a judged pair that is not swapped, in the
    figures that decided it."""
    if check.judged_without_fit:
        return f"{check.rows_off()} ({check.lower_view()}; {check.matches} matched features)"
    if check.sideways():
        return (
            f"the views are offset along the columns, not the rows ({check.median_abs_dy_px:.1f} px vertically at "
            f"the median matched feature): shifting rows cannot make them a horizontal pair"
        )
    supported_px = check.misalignment_px if check.supported_misalignment_px is None else check.supported_misalignment_px
    return (
        f"rows off by at most {supported_px:.2f} px at the corners once the fit's uncertainty is taken off "
        f"(at most {ALIGN_MIN_PX:g} px is left alone; {check.matches} matched features)"
    )


class LatestSlot:
    """A one-slot buffer: the producer overwrites, the consumer takes the newest item once.

    ``close(error)`` ends the stream; :meth:`take` then raises ``error`` (or returns ``None`` when the
    stream simply ended) once the slot is empty.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._closed = False
        self._error: BaseException | None = None
        self.replaced = 0  # items overwritten before anyone took them (dropped frames)

    def put(self, item: Any) -> None:
        with self._condition:
            if self._has_item:
                self.replaced += 1
            self._item, self._has_item = item, True
            self._condition.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        with self._condition:
            self._closed, self._error = True, error
            self._condition.notify_all()

    def take(self, timeout_s: float | None = None) -> Any:
        """The newest item; ``None`` at the end of the stream.

        Raises:
            TimeoutError: nothing arrived within ``timeout_s``.
            BaseException: the error the producer closed the slot with.
        """
        with self._condition:
            if not self._condition.wait_for(lambda: self._has_item or self._closed, timeout_s):
                raise TimeoutError(f"nothing arrived within {timeout_s} s")
            if self._has_item:
                item, self._item, self._has_item = self._item, None, False
                return item
            if self._error is not None:
                raise self._error
            return None

    def take_nowait(self) -> Any:
        """The newest item, or ``None`` when there is none right now."""
        with self._condition:
            if not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item


DRIVER_ERRORS = (RuntimeError, OSError, cv2.error)
"""What camera libraries raise when a device fails (pyrealsense2's errors are RuntimeErrors, DepthAI's too)."""

Grab = tuple[np.ndarray, np.ndarray, float | None, int | None]
"""A camera frame ready for use: ``(left, right, timestamp_s, frame_number)``, RGB uint8."""


class LiveSource(FrameSource):
    """A camera: a grabber thread reads as fast as the camera delivers and keeps only the newest pair.

    Subclasses implement :meth:`_open`, :meth:`_read` (one raw frame as the device gives it, ``None``
    at a clean end of stream, :class:`CameraError` when the device fails), :meth:`_develop` (the raw
    frame made a :data:`Grab`: colour conversion, splitting, host rectification) and :meth:`_close`.
    ``_read`` runs on the grabber thread for every frame the camera delivers; ``_develop`` only for
    the frames taken, on the thread that iterates the source (the stream's capture stage), so a slow
    model does not pay for converting the frames it skips.

    Args:
        frame_timeout_s: how long to wait for a frame before declaring the camera stalled.

    Attributes:
        calibration: attached to every pair; cameras that know theirs set it in :meth:`_open`.
    """

    live = True

    def __init__(self, frame_timeout_s: float = 5.0) -> None:
        self.frame_timeout_s = frame_timeout_s
        self.calibration: Calibration | None = None
        self._grabbed = 0
        self._grab_elapsed_s = 0.0
        self._lost = 0  # frames the camera numbered that were never read (see stats)
        self._lost_leading = 0  # of them, those before the first frame read: no interval of the time measured
        self._slot: LatestSlot | None = None
        self._opened = False  # by open(), ahead of the iteration, which then takes the device as it is
        # Set when the iteration ends: a _read that waits of its own accord (a recording's pace) returns then.
        self._stopping = threading.Event()

    def open(self) -> None:
        """Open the device now rather than at the first frame: a camera that is missing is said before the slow
        work that precedes its first frame (loading a model). The iteration takes it over; :meth:`close` releases
        it when no iteration follows.

        Raises:
            CameraError: the device cannot be opened.
        """
        if self._opened:
            return
        try:
            with native_output_held():  # drivers' own lines (DepthAI, V4L2) come after our error, if at all
                self._open()
        except DRIVER_ERRORS as exc:  # librealsense's and OpenCV's own: a traceback, where a missing camera is one line
            self._close()
            raise CameraError(f"cannot open {self.description}: {exc}") from exc
        except BaseException:
            self._close()  # whatever was opened before the failure
            raise
        self._opened = True

    def close(self) -> None:
        """Release a device :meth:`open` opened and no iteration took over (one did: it releases it itself)."""
        if self._opened:
            self._opened = False
            self._close()

    def stop_waiting(self) -> None:
        """End the iteration's wait for the next frame, as at the end of the frames (a stream that has stopped: a
        stalled camera's wait held its capture thread, which the process waits for, until the timeout)."""
        slot = self._slot
        if slot is not None:
            slot.close()

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _read(self) -> Any: ...

    def _develop(self, raw: Any) -> Grab:
        """The raw frame :meth:`_read` returned, as RGB views; by default it already is one."""
        return raw

    @abc.abstractmethod
    def _close(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        """``camera_frames`` read from the device, ``camera_fps`` (the camera's own rate: the frames it numbered
        over the time they span), ``camera_lost_frames`` (numbered by the camera but never read: its own queue
        overwrote them, or the link lost them) and ``dropped_frames`` (read, then replaced by a newer one before
        the stream took them)."""
        # N frames span N - 1 intervals from the first to the last: N / span read a 10 fps file of 12 frames as 10.9;
        # frames lost before the first one read lie before the span (a recording's first 2 frames damaged: 12.2 fps)
        intervals = self._grabbed - 1 + self._lost - self._lost_leading
        delivered = intervals / self._grab_elapsed_s if intervals > 0 and self._grab_elapsed_s > 0 else 0.0
        return {
            "camera_frames": self._grabbed,
            "camera_fps": round(delivered, 2),
            "camera_lost_frames": self._lost,
            "dropped_frames": self._slot.replaced if self._slot is not None else 0,
        }

    def _count_lost(self, grabbed: Any, previous: int | None) -> int | None:
        """Count the frames the camera numbered between the previous one read and ``grabbed``; its number."""
        number = grabbed[-1] if isinstance(grabbed, tuple) and grabbed else None
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
            return None
        if previous is not None and number > previous + 1:  # a number that goes back: the device restarted
            self._lost += int(number) - previous - 1
        return int(number)

    def _grab_loop(self, slot: LatestSlot, stop: threading.Event) -> None:
        first_at = 0.0  # time.perf_counter() of the first frame (not of the start: the wait for it is no interval)
        self._grabbed, self._grab_elapsed_s = 0, 0.0  # this opening's frames, as the slot's dropped ones are
        self._lost, self._lost_leading, number = 0, 0, None
        try:
            while not stop.is_set():
                try:
                    grabbed = self._read()
                except DRIVER_ERRORS as exc:
                    # librealsense raises RuntimeError when the camera goes (OpenCV a cv2.error): it ended the run in
                    # a traceback, where a camera that stops delivering is one line
                    raise CameraLostError(
                        f"{self.description} stopped after {counted(self._grabbed, 'frame')} (unplugged?): {exc}"
                    ) from exc
                if grabbed is None:
                    slot.close()
                    return
                # OAK and RealSense number their frames: a gap is frames the host never saw (their queues keep
                # the newest only), which neither the frame rate nor the dropped frames counted.
                number = self._count_lost(grabbed, number)
                self._grabbed += 1
                if self._grabbed == 1:
                    first_at = time.perf_counter()
                self._grab_elapsed_s = time.perf_counter() - first_at
                slot.put(grabbed)
            slot.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which raises it
            slot.close(exc)

    def _frames(self) -> Iterator[StereoPair]:
        self.open()
        self._opened = False  # this iteration releases it, in its finally
        slot, stop = LatestSlot(), threading.Event()
        self._slot, self._stopping = slot, stop
        grabber = threading.Thread(target=self._grab_loop, args=(slot, stop), name="rtstereo-grabber", daemon=True)
        grabber.start()
        count = 0
        try:
            while True:
                try:
                    grabbed = slot.take(self.frame_timeout_s)
                except TimeoutError:
                    raise CameraLostError(
                        f"{self.description}: no frame for {self.frame_timeout_s:g} s after "
                        f"{counted(self._grabbed, 'frame')}; the camera stalled or was unplugged"
                    ) from None
                if grabbed is None:
                    return
                left, right, timestamp_s, number = self._develop(grabbed)
                yield StereoPair(
                    left,
                    right,
                    name=f"frame{count:05d}",
                    index=count if number is None else number,
                    timestamp_s=timestamp_s,
                    calibration=self.calibration,
                )
                count += 1
        finally:
            stop.set()
            grabber.join(timeout=2.0)
            if grabber.is_alive():
                # Still blocked inside a device read: releasing the device under it could crash the
                # driver, so it is left to the daemon thread and the end of the process.
                log.warning(
                    "%s: the camera read did not return; leaving the device to be released at exit",
                    self.description,
                )
            else:
                self._close()
