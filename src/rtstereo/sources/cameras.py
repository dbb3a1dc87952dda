"""Live stereo cameras by name, and the side-by-side UVC webcam read through OpenCV.

``--camera`` values:

- ``oak``: a Luxonis OAK-D through DepthAI (extra ``camera``), see :mod:`rtstereo.sources.oak`;
- ``realsense``: an Intel RealSense D4xx infrared pair (extra ``realsense``), see
  :mod:`rtstereo.sources.realsense`;
- ``uvc:N``: a side-by-side stereo webcam at OpenCV device index ``N`` (``uvc`` = ``uvc:0``); after
  ``uvc:`` anything OpenCV's ``VideoCapture`` opens also works (a device path, a stream URL, a file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, require_bool, require_whole
from ..io.atomic import name_length_problem
from ..io.download import file_url_path
from ..io.quiet import ffmpeg_quietened
from ..text import counted, is_utf8, shortened, shown
from .base import (
    CameraError,
    CameraLostError,
    Grab,
    LiveSource,
    check_fps,
    check_side_by_side_width,
    split_side_by_side,
)
from .video import FRAME_COUNT_SLACK, MAX_DAMAGED_RUN, is_still_image, still_image_message

log = logging.getLogger("rtstereo.stream")

CAMERAS = ("oak", "uvc:N", "realsense")
# USB 2 webcams deliver large frames at their full rate only compressed: left to their own YUYV, many give 1280x720
# (or a 2560x720 side-by-side pair) at 5-10 fps.
UVC_FOURCC = "MJPG"


class UVCSource(LiveSource):
    """A side-by-side stereo webcam (one UVC device whose frames hold left|right).

    Args:
        device: an OpenCV device index, or anything ``cv2.VideoCapture`` opens (path, URL).
        swap: the halves are right|left.
        frame_size_wh: the full side-by-side capture size to request, e.g. ``(2560, 720)``.
        fps: the frame rate to request.
        capture_factory: builds the capture object (``cv2.VideoCapture`` by default).
        frame_timeout_s: wait this long for a frame before declaring the camera stalled.
        fourcc: the pixel format asked of a device (four characters, e.g. ``"YUYV"``), before its size and rate; a
            camera without it keeps its own, said in a log line. ``None`` asks for none. Not asked of a file or URL.

    A device (an index, or a ``/dev/`` path) that stops delivering frames raises :class:`CameraLostError`
    (unplugged); a file or stream that ends simply ends the stream. A recording (a file, or a URL of one: anything that
    reports a frame count) stands in for a camera: its frames are delivered at its own frame rate
    (``fps`` when given), not as fast as they decode, so a slow model drops frames as it would
    with the camera.
    """

    def __init__(
        self,
        device: int | str = 0,
        swap: bool = False,
        frame_size_wh: tuple[int, int] | None = None,
        fps: float | None = None,
        capture_factory: Callable[[int | str], Any] | None = None,
        frame_timeout_s: float = 5.0,
        fourcc: str | None = UVC_FOURCC,
    ):
        super().__init__(frame_timeout_s)
        self.fourcc = _checked_fourcc(fourcc)
        self._stall_s = frame_timeout_s  # a recording's pace adds its frame interval to it (see _open)
        self.device, self.swap = device, require_bool(swap, "swap")
        self.frame_size_wh, self.requested_fps = frame_size_wh, fps
        self._factory = capture_factory or cv2.VideoCapture
        self._capture: Any = None
        self._number = 0
        self._pace_fps: float | None = None  # a recording's playback rate; None for a camera or live stream
        self._recording_frames: int | None = None  # a recording's frame count, once opened
        self._first_at: float | None = None  # time.monotonic() when a recording's frame 0 is due
        self.view_size_hw: tuple[int, int] | None = None  # each view's (height, width), once open, when it says
        self.description = f"camera uvc:{device}{' (swapped)' if self.swap else ''}"  # as a side-by-side video says

    @property
    def is_device(self) -> bool:
        """A camera: an OpenCV device index, or a device node's path (``/dev/video2``, ``/dev/v4l/by-id/...``), which
        was taken for a recording: unplugged mid-stream, it ended the stream as the end of a file, exit code 0."""
        return isinstance(self.device, int) or str(self.device).startswith("/dev/")

    @property
    def input_files(self) -> tuple[Path, ...]:
        """A recording played as a camera (``uvc:FILE``, or its ``file://`` URL, which ``-o`` replaced); none for a
        device or a web URL."""
        if self.is_device:
            return ()
        recording = Path(file_url_path(str(self.device)) or str(self.device))
        return (recording,) if recording.is_file() else ()

    @property
    def expected_frames(self) -> int | None:
        """A recording's frame count once it is open (``None`` for a camera, or a stream without one)."""
        return self._recording_frames

    @property
    def progress_by_index(self) -> bool:
        return self._recording_frames is not None

    def _open(self) -> None:
        if not self.is_device:
            if not is_utf8(self.device):  # OpenCV crashed (a segmentation fault) on a name that is not UTF-8
                raise CameraError(
                    f"cannot open camera uvc:{shown(self.device)}: OpenCV's video reader takes only names in UTF-8, "
                    "and this path is not (bytes from another encoding): rename the file or link it under a name "
                    "in UTF-8"
                )
        # A recording played as a camera: FFmpeg's lines about its damage off, as for a video (a device is no FFmpeg's).
        with contextlib.nullcontext() if self.is_device else ffmpeg_quietened():
            capture = self._factory(self.device)
        if capture is None or not capture.isOpened():
            hint = "is it plugged in, and not used by another program?" if self.is_device else "check the path"
            if not self.is_device and Path(self.device).is_dir():
                hint = "it is a folder, not a video file or device"
            elif not self.is_device and Path(self.device).is_file():  # the path is right: "check the path" misled
                hint = "not a video OpenCV (FFmpeg) can open, or damaged"
            raise CameraError(f"cannot open {self.description}: {hint}")
        if self.is_device and self.fourcc is not None:
            # First: V4L2 applies the size and the rate to the pixel format in use. A camera without it keeps its own.
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if self.frame_size_wh is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.frame_size_wh[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.frame_size_wh[1])
        if self.requested_fps:
            capture.set(cv2.CAP_PROP_FPS, self.requested_fps)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else None
        self._pace_fps = None
        self.frame_timeout_s = self._stall_s
        frame_count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        if not self.is_device and is_still_image(str(self.device), frame_count if frame_count > 0 else None):
            capture.release()  # FFmpeg plays it as a one-frame video: the stream would end after one frame, exit 0
            raise InputError(still_image_message(self.description, side_by_side=True))
        if not self.is_device and frame_count > 0:
            # A recording cannot be asked for a frame rate (set() fails), so --camera-fps sets its pace.
            self.fps = self.requested_fps or self.fps
            self._pace_fps = self.fps
            if self._pace_fps:  # --camera-fps 0.1 waits 10 s for each frame: that is no stalled camera
                self.frame_timeout_s = self._stall_s + 1.0 / self._pace_fps
            self._recording_frames = int(frame_count)
        elif self.requested_fps and self.fps and abs(self.fps - self.requested_fps) > 0.01 * self.requested_fps:
            # As for the size: set() does not fail for a rate the camera lacks, it keeps its own.
            log.warning(
                "%s: --camera-fps asked for %g fps, but it runs at %g fps: going on at that rate",
                self.description,
                self.requested_fps,
                self.fps,
            )
        if self.is_device and self.fourcc is not None:
            self._say_the_format(fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if self.frame_size_wh is not None and width and height and (width, height) != tuple(self.frame_size_wh):
            # OpenCV's set() does not fail for a mode the camera lacks (or a file): it keeps its own.
            asked_w, asked_h = self.frame_size_wh
            # A side-by-side frame taller than wide is a size written WxH (2560x720): named the right way round
            meant = f"; sizes are HxW, height first: did you mean --camera-size {asked_w}x{asked_h}?"
            log.warning(
                "%s: --camera-size asked for %dx%d (HxW), but it delivers %dx%d: going on at that size%s",
                self.description,
                asked_h,
                asked_w,
                height,
                width,
                meant if asked_h > asked_w else "",
            )
        try:
            if width:
                check_side_by_side_width(width)
        except InputError:
            capture.release()
            raise
        self._capture = capture
        self.view_size_hw = (height, width // 2) if width and height else None
        self._number = 0
        self._first_at = None

    def _say_the_format(self, delivered: str | None) -> None:
        """Say that the camera keeps another pixel format than the one asked: a warning when it was asked for, a
        notice for the default (a camera without MJPG, or a driver that does not say, works as before)."""
        if delivered is None or delivered == self.fourcc:
            return
        given = self.fourcc != UVC_FOURCC
        (log.warning if given else log.info)(
            "%s: asked for %s frames, but it delivers %s: going on in that format%s",
            self.description,
            self.fourcc,
            delivered,
            "" if given else " (--camera-fourcc none asks for none)",
        )

    def _read(self) -> tuple[np.ndarray, float, int] | None:
        ok, frame = self._capture.read()
        damaged = 0  # a recording's frames that do not decode, frames following them (as rtstereo video passes them)
        while (not ok or frame is None) and self._claims_more(damaged):
            damaged += 1
            ok, frame = self._capture.read()
        if damaged and ok and frame is not None:
            last = self._number + damaged - 1
            which = f"frame {self._number}" if damaged == 1 else f"frames {self._number} to {last}"
            log.warning(
                "%s: %s of the recording %s not decode (damaged): passed over, as frames the camera lost",
                self.description,
                which,
                "does" if damaged == 1 else "do",
            )
            if self._number == 0:  # the first frames: no number read before them to count the gap from
                self._lost += damaged
                self._lost_leading += damaged
            self._number += damaged
        if not ok or frame is None:
            if self.is_device and self._number == 0:
                # Opened, then not one frame (V4L2 opens a camera that another program streams from): it was said to
                # have "stopped delivering frames after 0 frames (unplugged?)", a camera lost mid-stream, exit code 1.
                raise CameraError(
                    f"{self.description} opened but gives no frame: is another program using it? (close it, or try "
                    "another uvc:N)"
                )
            if self.is_device:
                raise CameraLostError(
                    f"{self.description} stopped delivering frames after {counted(self._number, 'frame')} (unplugged?)"
                )
            claimed = self._recording_frames
            if self._number == 0:  # a header and no frame: it ran as an empty stream with exit code 0
                claims = f" (its header claims {claimed}: the file is cut short or damaged)" if claimed else ""
                raise InputError(f"{self.description}: the recording gives no frame{claims}")
            if claimed is not None and self._number < claimed - FRAME_COUNT_SLACK:  # as rtstereo video says it
                log.warning(
                    "%s: the recording ended after %s although its header claims %d: the file is cut short "
                    "or damaged; the stream stops there",
                    self.description,
                    counted(self._number, "frame"),
                    claimed,
                )
            return None
        number, self._number = self._number, self._number + 1
        if self._pace_fps is not None:
            if self._first_at is None:  # the first frame read, frame 0 unless it did not decode
                self._first_at = time.monotonic() - number / self._pace_fps
            # Frame n is due n/fps after the first, as a camera would deliver it. The wait ends with the stream: at
            # --camera-fps 0.2 a sleep of 5 s outlasted the stop, which said the read "did not return".
            wait_s = self._first_at + number / self._pace_fps - time.monotonic()
            if wait_s > 0 and self._stopping.wait(wait_s):
                return None
        return frame, time.monotonic(), number

    def _claims_more(self, damaged: int) -> bool:
        """Whether a recording's frame that did not decode, after ``damaged`` others in a row, is passed over: its
        header claims frames after it, and the run is short of :data:`~rtstereo.sources.video.MAX_DAMAGED_RUN` (a file
        cut short fails every read past its data)."""
        claimed = self._recording_frames
        if self.is_device or claimed is None or damaged + 1 >= MAX_DAMAGED_RUN:
            return False
        return self._number + damaged < claimed - FRAME_COUNT_SLACK

    def _develop(self, raw: tuple[np.ndarray, float, int]) -> Grab:
        frame, timestamp_s, number = raw
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        left, right = split_side_by_side(rgb, self.swap)
        return left.copy(), right.copy(), timestamp_s, number

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


_OAK_NAMES = ("oak", "oak-d", "oakd", "depthai")
_UPPER_CASE_FORMATS = frozenset({"MJPG", "YUYV", "UYVY", "H264", "HEVC", "NV12", "GREY"})
_MAX_DEVICE_INDEX = 2**31 - 1


def _missing_recording(device: str) -> bool:
    """Whether ``uvc:PATH`` names a file (a name with a suffix; not a URL, a device, a GStreamer pipeline or an
    image-sequence pattern, which OpenCV opens without a file of that name) that does not exist.

    Examples:
        >>> _missing_recording("no/such/rig.mp4"), _missing_recording("/dev/video4"), _missing_recording("rtsp://cam/s.sdp")
        (True, False, False)
    """
    if "://" in device or "!" in device or "%" in device or device.startswith("/dev/"):
        return False
    return Path(device).suffix != "" and not Path(device).exists()


def fourcc_text(code: float) -> str | None:
    """The four characters of OpenCV's ``CAP_PROP_FOURCC`` value, or ``None`` when the backend gives none.

    Examples:
        >>> fourcc_text(cv2.VideoWriter_fourcc(*"YUYV")), fourcc_text(0.0)
        ('YUYV', None)
    """
    number = int(code or 0)
    if number <= 0 or number >= 1 << 32:
        return None
    text = number.to_bytes(4, "little").decode("latin-1")
    return text if text.isprintable() else None


def _checked_fourcc(fourcc: Any) -> str | None:
    """``fourcc`` when it is four printable ASCII characters, or ``None``; an :class:`InputError` otherwise."""
    if fourcc is None:
        return None
    if not isinstance(fourcc, str) or len(fourcc) != 4 or not (fourcc.isascii() and fourcc.isprintable()):
        given = f"'{shortened(fourcc)}'" if isinstance(fourcc, str) else shortened(repr(fourcc))  # not a screenful
        raise InputError(
            f"--camera-fourcc: expected four characters (a pixel format such as MJPG or YUYV) or none, got {given}"
        )
    # V4L2's codes are case-sensitive: 'mjpg' was asked as such, kept YUYV and was warned of as not delivered. The
    # webcams' formats have upper-case codes only (others, such as Bayer 'pBAA', keep their case).
    return fourcc.upper() if fourcc.upper() in _UPPER_CASE_FORMATS else fourcc


def _checked_size_wh(size_wh: Any) -> tuple[int, int]:
    """``(width, height)``, two whole numbers of pixels > 0, else an :class:`InputError`: ``(640,)`` or ``"640x480"``
    failed with a bare IndexError or TypeError as the camera opened, and ``(640.5, 480)`` was asked for as 640 while
    the warning that the camera keeps another size compared 640.5 ("asked for 480x640, but it delivers 480x640")."""
    name, expected = "camera size frame_size_wh", "(width, height): two whole numbers of pixels > 0"
    if isinstance(size_wh, (str, bytes)) or not hasattr(size_wh, "__len__") or len(size_wh) != 2:
        raise InputError(f"{name}: expected {expected}, got {type(size_wh).__name__} {size_wh!r:.80}")
    width, height = (require_whole(value, name, expected) for value in size_wh)
    if width < 1 or height < 1:
        raise InputError(f"{name}: expected {expected}, got ({width}, {height})")
    return width, height


def open_camera(
    spec: str,
    *,
    swap: bool = False,
    frame_size_wh: tuple[int, int] | None = None,
    fps: float | None = None,
    color: bool = False,
    fourcc: str | None = UVC_FOURCC,
) -> LiveSource:
    """Build the live source a ``--camera`` value names.

    Args:
        spec: ``oak``, ``realsense``, ``uvc`` or ``uvc:N`` (N an OpenCV device index, or a path/URL).
        swap: exchange left and right (UVC side-by-side halves).
        frame_size_wh: the capture size: per view for OAK-D and RealSense, the full side-by-side frame
            for UVC.
        fps: the frame rate to request from the camera.
        color: OAK-D only: the colour stereo sensors, rectified on the host (mono pairs are refused).
        fourcc: UVC devices only: the pixel format asked of the camera (``None``: none, the camera's own).

    Raises:
        InputError: an unknown camera name (or not a string: ``0`` for ``"uvc:0"``), a frame rate that is not
            a number > 0, ``color`` for a camera other than an OAK, or a frame size taller than wide for an
            OAK-D or a RealSense (whose sensors are all wider than high).

    Examples:
        >>> open_camera("uvc:1").device
        1
    """
    if not isinstance(spec, str):  # was an AttributeError ('int' object has no attribute 'strip')
        hint = (
            f": a device index goes in as 'uvc:{spec}'" if isinstance(spec, int) and not isinstance(spec, bool) else ""
        )
        raise InputError(f"camera: expected a name (oak, uvc:N, realsense), got {type(spec).__name__} {spec!r}{hint}")
    swap, color = require_bool(swap, "swap"), require_bool(color, "color")
    if fps is not None:  # np.float32(30) was refused as "must be a number", where --fps takes it
        fps = check_fps(fps, "--camera-fps")
    if frame_size_wh is not None:
        frame_size_wh = _checked_size_wh(frame_size_wh)
    name, colon, argument = spec.strip().partition(":")
    name = name.lower()
    if color and name not in _OAK_NAMES:
        raise InputError(f"--oak-color applies to --camera oak, not to '{spec}'; drop --oak-color")
    fourcc = _checked_fourcc(fourcc)
    if fourcc != UVC_FOURCC and name != "uvc":
        raise InputError(f"--camera-fourcc applies to uvc cameras, not to '{spec}'; drop --camera-fourcc")
    if name == "uvc" and colon and not argument.strip():
        # `--camera "uvc:$CAMERA"` with the variable unset opened device 0, another camera than meant (a laptop's own)
        raise InputError(
            f"camera '{spec}' names no device after 'uvc:': give its OpenCV index (uvc:0, uvc:2) or a path (uvc:FILE)"
        )
    if name == "uvc":
        # isdecimal, not isdigit: 'uvc:²' is a digit that int() refuses (a traceback)
        device: int | str = int(argument) if argument.strip().isdecimal() else (argument or 0)
        if isinstance(device, str) and file_url_path(device):
            # The path it names, as a video's file:// URL is read: FFmpeg's own file: protocol decodes nothing, and
            # uvc:file:///rec/my%20rig.mp4 looked for 'my%20rig.mp4' ("check the path")
            device = file_url_path(device) or device
        if isinstance(device, int) and device > _MAX_DEVICE_INDEX:  # OpenCV takes a C int: a traceback beyond
            raise InputError(f"camera uvc:{argument.strip()}: a device index is at most {_MAX_DEVICE_INDEX}")
        too_long = name_length_problem(device) if isinstance(device, str) and "://" not in device else None
        if too_long:  # Path.is_dir() and exists() raised OSError on such a name: a traceback
            raise InputError(f"camera uvc:{shortened(device, 500)}: no file can have this name: {too_long}")
        if isinstance(device, str) and _missing_recording(device):
            # Said now: it was said when the stream opened it, after the model and an --adapt process had started.
            raise InputError(f"camera uvc:{device}: no such file")
        return UVCSource(device, swap=swap, frame_size_wh=frame_size_wh, fps=fps, fourcc=fourcc)
    if swap:
        raise InputError(f"--swap applies to side-by-side (uvc) cameras, not to '{spec}'")
    if argument.strip() and name in (*_OAK_NAMES, "realsense", "rs"):
        # 'oak:1' or 'realsense:SERIAL' opened the first camera found, another one than meant with two plugged in
        raise InputError(
            f"camera '{spec}': {name} takes nothing after ':' (the first {name} camera found is opened); "
            f"give --camera {name}"
        )
    if name in (*_OAK_NAMES, "realsense", "rs") and frame_size_wh is not None and frame_size_wh[0] < frame_size_wh[1]:
        # Their stereo sensors are all wider than high: a taller size is a width and height written the other way.
        width, height = frame_size_wh
        raise InputError(
            f"--camera-size {height}x{width} asks {name} for views {width} px wide and {height} px high, but its "
            f"sensors are wider than high (sizes are HxW, height first): did you mean --camera-size {width}x{height}?"
        )
    if name in _OAK_NAMES:
        from .oak import OakSource

        return OakSource(frame_size_wh=frame_size_wh or (640, 400), fps=fps, color=color)
    if name in ("realsense", "rs"):
        if fps is not None and fps != int(fps):
            # librealsense takes an int: 29.97 asked for 29 (refused by the camera), 0.5 for 0 (= any rate)
            raise InputError(
                f"--camera-fps {fps:g}: a RealSense camera runs at whole frame rates (e.g. 6, 15, 30, 60, 90)"
            )
        from .realsense import RealSenseSource

        return RealSenseSource(frame_size_wh=frame_size_wh or (640, 480), fps=fps or 30)
    raise InputError(
        f"unknown camera '{shortened(spec, 500)}': expected one of {', '.join(CAMERAS)}{_uvc_hint(spec.strip())}"
    )


def _uvc_hint(spec: str) -> str:
    """What ``--camera SPEC`` meant when it is a device index, a path or a URL without ``uvc:`` (``--camera 0`` was
    told only the camera names).

    Examples:
        >>> _uvc_hint("0")
        ': a device index goes in as --camera uvc:0'
        >>> _uvc_hint("kinect")
        ''
    """
    if spec.isdecimal():
        return f": a device index goes in as --camera uvc:{shortened(spec, 500)}"
    # os.path.exists: False for a name too long for the system, where Path.exists raised OSError (a traceback)
    if "://" in spec or spec.startswith("/dev/") or os.path.exists(spec):
        return f": a device path, video file or stream URL goes in as --camera uvc:{shortened(spec, 500)}"
    return ""
