"""A live 3D view of a stream in Rerun (``--view3d``, ``--view3d-save``; the ``viewer`` extra).

Every frame logs the left image, the colourised disparity, the depth map and the coloured point
cloud, on a ``frame`` timeline (and a ``time`` timeline when the source has timestamps)::

    world                  view coordinates RDF: the left camera's frame (x right, y down, z forward)
    world/camera           pinhole of the left camera (from the calibration): the 3D view is metric
    world/camera/image     the left image, drawn on the camera's frustum
    world/points           the coloured point cloud, metres
    images/disparity       the colourised disparity (the colours of the mp4)
    images/depth           the depth map, metres

The cloud is cleaned as the PLY writer cleans it (points beyond ``max_depth_m`` and flying pixels
are dropped, :func:`~rtstereo.geometry.point_cloud`) and thinned to at most ``max_points`` so that
the viewer keeps up.

The sink never holds the stream up: :meth:`Viewer3DSink.write` only drops the frame into a
one-slot buffer; a thread of its own builds the cloud and logs it, and a frame arriving while the
previous one is still being logged replaces the waiting one (counted as skipped). A recording
(``.rrd``) therefore holds the frames the viewer could take, not necessarily every frame.

:func:`build_payload` (numpy only) computes what is logged and :func:`log_payload` hands it to
Rerun, so what the viewer shows can be checked without Rerun installed.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, OutputError, RtStereoError, require, require_number, require_whole
from .geometry import DEFAULT_MAX_JUMP_REL, depth_from_disparity, point_cloud, require_calibration
from .io.atomic import os_reason, partial_path, remove_stale_partials
from .io.disparity import colorize
from .sinks.video import OutputFrame, Sink
from .sources.base import LatestSlot
from .text import counted
from .types import Calibration

log = logging.getLogger("rtstereo.stream")

APPLICATION_ID = "rtstereo"
DEFAULT_MAX_POINTS = 200_000  # a few MB per frame: what a viewer draws at video rate on a laptop
FLUSH_TIMEOUT_S = 10.0  # longest wait at the end for the viewer to take the last frames
JPEG_QUALITY = 90  # images are sent compressed: a raw VGA frame is 0.9 MB, its JPEG a tenth of that
WORLD_PATH = "world"
CAMERA_PATH = "world/camera"
POINTS_PATH = "world/points"
IMAGE_PATH = "world/camera/image"
DISPARITY_PATH = "images/disparity"
DEPTH_PATH = "images/depth"


@dataclass(frozen=True)
class ViewerOptions:
    """What the 3D view shows.

    Attributes:
        max_points: most points logged per frame (a larger cloud is thinned evenly).
        max_depth_m: drop points farther than this, metres (``None``: keep all).
        max_jump_rel: flying-pixel threshold, a relative depth jump to a neighbour (``None``: keep all).
        jpeg_quality: quality of the compressed images, 1..100 (``None``: send them raw).
    """

    max_points: int = DEFAULT_MAX_POINTS
    max_depth_m: float | None = None
    max_jump_rel: float | None = DEFAULT_MAX_JUMP_REL
    jpeg_quality: int | None = JPEG_QUALITY

    def __post_init__(self) -> None:
        # Checked here, not at the first frame: a string failed with a bare TypeError, 2.5 points let 3 through,
        # and a max_jump_rel of -1 stopped the stream from the viewer's thread once it had started.
        max_points = require_whole(self.max_points, "3D viewer: max_points", "a whole number of points >= 1")
        if max_points < 1:
            raise InputError(f"3D viewer: max_points must be >= 1, got {self.max_points}")
        if self.max_depth_m is not None:
            max_depth_m = require_number(self.max_depth_m, "3D viewer: max_depth_m", "a depth in metres > 0, or None")
            if not max_depth_m > 0:
                raise InputError(f"3D viewer: max_depth_m must be > 0 metres, got {self.max_depth_m}")
        if self.max_jump_rel is not None:
            jump = require_number(self.max_jump_rel, "3D viewer: max_jump_rel", "a relative depth jump > 0, or None")
            if not (math.isfinite(jump) and jump > 0):
                raise InputError(
                    f"3D viewer: max_jump_rel must be > 0 (a relative depth jump, e.g. 0.1), got {self.max_jump_rel}"
                )
        if self.jpeg_quality is not None:
            quality = require_whole(self.jpeg_quality, "3D viewer: jpeg_quality", "a whole number 1..100, or None")
            if not 1 <= quality <= 100:
                raise InputError(f"3D viewer: jpeg_quality must be 1..100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class ViewerPayload:
    """What one frame logs.

    Attributes:
        number: the frame's number among the written frames (the ``frame`` timeline).
        timestamp_s: the source's timestamp, seconds, or ``None``.
        calibration: the left camera's rectified calibration, at the size of the images below.
        left: uint8 RGB ``(H, W, 3)``.
        disparity_colour: uint8 RGB ``(H, W, 3)``, the colourised disparity.
        depth_m: float32 ``(H, W)``, metres, ``nan`` where unknown.
        points_m: float32 ``(N, 3)``, metres, left camera frame (x right, y down, z forward).
        colors: uint8 ``(N, 3)`` RGB of each point.
        pixel_index: int64 ``(N,)`` flat index ``v * W + u`` of each point's pixel.
        points_before_cap: points of the cleaned cloud before thinning to ``max_points``.
    """

    number: int
    timestamp_s: float | None
    calibration: Calibration
    left: np.ndarray
    disparity_colour: np.ndarray
    depth_m: np.ndarray
    points_m: np.ndarray
    colors: np.ndarray
    pixel_index: np.ndarray
    points_before_cap: int


def thinning_index(count: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices spread evenly over ``range(count)``.

    Evenly spaced rather than random: the same pixels are kept from frame to frame, so a static
    scene does not shimmer, and it costs nothing.

    Examples:
        >>> thinning_index(10, 4)
        array([0, 2, 5, 7])
        >>> thinning_index(3, 4)
        array([0, 1, 2])
    """
    if count <= max_points:
        return np.arange(count)
    return (np.arange(max_points) * (count / max_points)).astype(np.int64)


def build_payload(frame: OutputFrame, options: ViewerOptions = ViewerOptions()) -> ViewerPayload:
    """Everything one frame logs, computed with numpy only.

    Args:
        frame: a frame of the stream; its result must carry a calibration.
        options: cloud cleaning and size.

    Returns:
        A :class:`ViewerPayload`.

    Raises:
        InputError: the result has no calibration.
    """
    result = frame.result
    calibration = require_calibration(result)
    left = frame.pair.coloured_left  # a colour left view matched in grey beside a grey right one: in colour
    disparity_px = result.disparity_px
    height, width = disparity_px.shape
    preview = frame.preview
    if preview is not None and preview.shape[:2] == (height, 2 * width):
        # compose_preview puts the colourised disparity right of the left image: the same colours
        # as the mp4, with the stream's fixed range, at no cost here.
        disparity_colour = preview[:, width:]
    else:
        disparity_colour = colorize(disparity_px)
    cloud = point_cloud(
        disparity_px,
        calibration,
        left,
        max_depth_m=options.max_depth_m,
        max_jump_rel=options.max_jump_rel,
    )
    keep = thinning_index(len(cloud), options.max_points)
    assert cloud.colors is not None, "point_cloud colours every point when given the image"
    return ViewerPayload(
        number=frame.number,
        timestamp_s=frame.pair.timestamp_s,
        calibration=calibration,
        left=left,
        disparity_colour=disparity_colour,
        depth_m=depth_from_disparity(disparity_px, calibration),
        points_m=cloud.points_m[keep],
        colors=cloud.colors[keep],
        pixel_index=cloud.pixel_index[keep],
        points_before_cap=len(cloud),
    )


def pinhole_parameters(calibration: Calibration, height_px: int, width_px: int) -> dict[str, Any]:
    """Keyword arguments of ``rr.Pinhole`` for the left camera of ``calibration``.

    Rerun puts the first pixel's centre at ``(0.5, 0.5)`` (its default principal point is
    ``(W/2, H/2)``, the image centre), the calibration at ``(0, 0)`` (OpenCV): half a pixel apart.

    Examples:
        >>> cal = Calibration(fx_px=500, fy_px=510, cx0_px=319.5, cx1_px=330, cy_px=239.5, baseline_m=0.1)
        >>> pinhole_parameters(cal, 480, 640)
        {'focal_length': [500.0, 510.0], 'principal_point': [320.0, 240.0], 'width': 640, 'height': 480}
    """
    return {
        "focal_length": [float(calibration.fx_px), float(calibration.fy_px)],
        "principal_point": [float(calibration.cx0_px) + 0.5, float(calibration.cy_px) + 0.5],
        "width": int(width_px),
        "height": int(height_px),
    }


def log_payload(recording: Any, payload: ViewerPayload, options: ViewerOptions = ViewerOptions()) -> None:
    """Log one frame to a Rerun recording (see the module docstring for the entity paths).

    Args:
        recording: a ``rerun.RecordingStream``.
        payload: what :func:`build_payload` computed.
        options: the image compression.
    """
    rr = require("rerun", "viewer", "the 3D viewer")
    _set_time(recording, "frame", sequence=payload.number)
    if payload.timestamp_s is not None:
        _set_time(recording, "time", duration=float(payload.timestamp_s))
    height, width = payload.depth_m.shape
    # The world is the left camera's frame, y down: this makes the 3D view show the scene upright.
    recording.log(WORLD_PATH, rr.ViewCoordinates.RDF, static=True)
    # Logged every frame (cheap): the calibration may change with the camera mode or --size.
    recording.log(
        CAMERA_PATH,
        rr.Pinhole(**pinhole_parameters(payload.calibration, height, width), camera_xyz=rr.ViewCoordinates.RDF),
    )
    recording.log(IMAGE_PATH, _image(rr, payload.left, options.jpeg_quality))
    recording.log(DISPARITY_PATH, _image(rr, payload.disparity_colour, options.jpeg_quality))
    # Rerun reads depth 0 as "no data"; kept out of world/camera so it is not drawn as a second cloud.
    recording.log(DEPTH_PATH, rr.DepthImage(np.nan_to_num(payload.depth_m, nan=0.0), meter=1.0))
    recording.log(POINTS_PATH, rr.Points3D(payload.points_m, colors=payload.colors))


def _image(rr: Any, image: np.ndarray, jpeg_quality: int | None) -> Any:
    archetype = rr.Image(np.ascontiguousarray(image))
    return archetype.compress(jpeg_quality=jpeg_quality) if jpeg_quality is not None else archetype


def _set_time(recording: Any, timeline: str, **value: Any) -> None:
    if hasattr(recording, "set_time"):
        recording.set_time(timeline, **value)
    elif "sequence" in value:  # rerun-sdk < 0.23
        recording.set_time_sequence(timeline, value["sequence"])
    else:
        recording.set_time_seconds(timeline, value["duration"])


def default_blueprint() -> Any:
    """The 3D view beside the left image, the disparity and the depth."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(origin=WORLD_PATH, name="3D (metres)"),
            rrb.Vertical(
                rrb.Spatial2DView(origin=CAMERA_PATH, contents=f"{IMAGE_PATH}/**", name="left"),
                rrb.Spatial2DView(origin=DISPARITY_PATH, name="disparity"),
                rrb.Spatial2DView(origin=DEPTH_PATH, name="depth (m)"),
            ),
            column_shares=[2, 1],
        ),
        collapse_panels=True,
    )


def open_recording(*, spawn: bool, save_path: Path | None, write_path: Path | None = None) -> Any:
    """A Rerun recording that shows in a spawned viewer and/or goes to an ``.rrd`` file.

    Args:
        spawn: start the Rerun viewer.
        save_path: the ``.rrd`` file the user named (in messages).
        write_path: the file Rerun writes, when not ``save_path`` itself (the sink's temporary name).

    Raises:
        MissingDependencyError: rerun-sdk is not installed.
        OutputError: the viewer could not be started, or the file not opened.
    """
    rr = require("rerun", "viewer", "the 3D viewer (--view3d)")
    if hasattr(rr, "new_recording"):  # rerun-sdk < 0.23; later versions construct it directly
        recording = rr.new_recording(APPLICATION_ID)
    else:
        recording = rr.RecordingStream(APPLICATION_ID)
    blueprint = default_blueprint()
    file_path = write_path if write_path is not None else save_path
    try:
        if spawn and save_path is not None:
            if not hasattr(recording, "set_sinks"):
                raise OutputError(
                    f"showing and saving at once needs a newer rerun-sdk than {rr.__version__} (one with "
                    "RecordingStream.set_sinks): give --view3d or --view3d-save, or pip install -U rerun-sdk"
                )
            recording.spawn(connect=False)
            recording.set_sinks(rr.GrpcSink(), rr.FileSink(str(file_path)), default_blueprint=blueprint)
        elif spawn:
            recording.spawn(default_blueprint=blueprint)
        else:
            recording.save(str(file_path), default_blueprint=blueprint)
    except RtStereoError:
        raise
    except Exception as exc:  # noqa: BLE001 - Rerun raises several kinds; all mean the same here
        if not spawn:
            raise OutputError(
                f"cannot write the 3D recording {save_path}: {_reason(exc, file_path, save_path)}"
            ) from None
        raise OutputError(
            f"cannot start the Rerun viewer: {exc} (no display? record with --view3d-save FILE.rrd and "
            "open it with `rerun FILE.rrd`)"
        ) from None
    shown = ["shown in the Rerun viewer"] if spawn else []
    recorded = [f"recorded to {save_path}"] if save_path is not None else []
    log.info("3D viewer: %s", " and ".join(shown + recorded))
    return recording


class Viewer3DSink(Sink):
    """A stream output that shows (and/or records) every frame it can in 3D with Rerun.

    Args:
        spawn: start the Rerun viewer and show the stream in it.
        save_path: write the recording to this ``.rrd`` file (opened with ``rerun FILE.rrd``). Rerun
            writes it under a hidden temporary name beside it, renamed when the sink closes: an
            interrupted or failed run never leaves a partial file under this name.
        options: what is shown (cloud size and cleaning).
        recording: an open ``rerun.RecordingStream`` to log to instead of opening one (tests,
            notebooks); ``spawn`` and ``save_path`` are then ignored.

    Raises:
        InputError: neither ``spawn`` nor ``save_path`` nor ``recording`` is given.
        OutputError: ``save_path`` is not an ``.rrd`` file, or its folder cannot be created.
        MissingDependencyError: rerun-sdk is not installed (``pip install 'rtstereo[viewer]'``).
    """

    wants_preview = True  # the colourised disparity is taken from the preview

    def __init__(
        self,
        *,
        spawn: bool = False,
        save_path: str | Path | None = None,
        options: ViewerOptions = ViewerOptions(),
        recording: Any = None,
    ):
        self.options = options
        self.save_path = Path(save_path) if save_path is not None and recording is None else None
        self._owns_recording = recording is None
        self._partial: Path | None = None
        self._failed = False
        if recording is None:
            if not spawn and self.save_path is None:
                raise InputError("3D viewer: give spawn=True (--view3d) and/or save_path (--view3d-save)")
            if self.save_path is not None:
                check_rrd_path(self.save_path)
                # What a run killed mid-recording left (its tag names a dead process) goes first.
                remove_stale_partials(self.save_path.parent)
                self._partial = partial_path(self.save_path)
            try:
                recording = open_recording(spawn=spawn, save_path=self.save_path, write_path=self._partial)
            except OutputError:  # Rerun may have made the file before failing
                self._discard_partial()
                raise
        self.recording = recording
        self.logged = 0
        self._slot = LatestSlot()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._log_frames, name="rtstereo-viewer", daemon=True)
        self._thread.start()

    @property
    def skipped(self) -> int:
        """Frames replaced by a newer one before the viewer thread took them."""
        return self._slot.replaced

    def write(self, frame: OutputFrame) -> None:
        """Hand the frame to the viewer thread; returns at once.

        Raises:
            RtStereoError: the viewer thread failed on an earlier frame (e.g. no calibration).
        """
        self._raise_error()
        self._slot.put(frame)

    def close(self) -> None:
        """Log the frame still waiting, flush the recording (the ``.rrd`` is then complete)."""
        if self._closed:
            return
        self._closed = True
        self._slot.close()
        self._thread.join()
        failure = None
        for step in (_flush, _disconnect) if self._owns_recording else (_flush,):
            try:
                step(self.recording)
            except Exception as exc:  # noqa: BLE001 - Rerun raises several kinds; all mean the same here
                failure = failure or exc
        if self.logged or self.skipped:
            log.info(
                "3D viewer: %s logged, %d skipped%s",
                counted(self.logged, "frame"),
                self.skipped,
                " (the viewer was slower than the stream)" if self.skipped else "",
            )
        if failure is not None and self.save_path is not None:
            # Rerun could not finish the file: it may end mid-frame, so it never takes the user's name.
            self._discard_partial()
            self._failed = True
        else:
            self._publish()  # also after an error in the stream: the frames logged so far are a valid recording
        self._raise_error()
        if failure is not None and self.save_path is not None:
            reason = _reason(failure, self._partial, self.save_path)
            raise OutputError(f"3D viewer: finishing the recording {self.save_path} failed: {reason}")
        if failure is not None:
            log.warning("3D viewer: the Rerun viewer did not take the last frames (closed?): %s", failure)

    @property
    def outputs(self) -> list[str]:
        return [str(self.save_path)] if self.save_path is not None and self.logged and not self._failed else []

    def _publish(self) -> None:
        """Rename the finished recording onto its name (a recording without a frame is dropped)."""
        if self._partial is None or self.save_path is None:
            return
        if not self.logged:
            self._discard_partial()
            return
        try:
            os.replace(self._partial, self.save_path)
        except OSError as exc:
            self._discard_partial()
            self._failed = True
            in_way = self.save_path.is_dir()  # made while recording: checked at the start
            reason = "a folder of that name is in the way" if in_way else os_reason(exc, self.save_path)
            raise OutputError(f"cannot write the 3D recording {self.save_path}: {reason}") from None

    def _discard_partial(self) -> None:
        if self._partial is not None:
            with contextlib.suppress(OSError):  # only a hidden leftover then, removed by the next run
                self._partial.unlink(missing_ok=True)

    def _log_frames(self) -> None:
        try:
            while True:
                frame = self._slot.take()
                if frame is None:
                    return
                log_payload(self.recording, build_payload(frame, self.options), self.options)
                self.logged += 1
        except BaseException as exc:  # noqa: BLE001 - raised in the stream's thread by write/close
            self._error = exc

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error


def _flush(recording: Any) -> None:
    flush = getattr(recording, "flush", None)
    if flush is None:
        return  # rerun-sdk < 0.23 flushes on disconnect
    if "timeout_sec" in inspect.signature(flush).parameters:
        # A viewer closed by the user (or never reached) must not hold the end of the stream forever.
        flush(timeout_sec=FLUSH_TIMEOUT_S)
    else:
        flush()


def _disconnect(recording: Any) -> None:
    # Ends the file (complete and closed) or the viewer connection; the viewer keeps what it got.
    recording.disconnect()


def _reason(exc: BaseException, written: Path | None, shown: Path | None) -> str:
    """Why Rerun could not write ``written``, in words naming ``shown``, the file the user asked for (not the
    hidden name it is written under), without ``[Errno N]``."""
    if isinstance(exc, OSError) and shown is not None:
        return os_reason(exc, shown)
    text = str(exc)
    return text.replace(str(written), str(shown)) if written is not None and shown is not None else text


def check_rrd_path(path: str | Path) -> Path:
    """Refuse a recording name without ``.rrd``; create its folder.

    Raises:
        OutputError: another suffix, a folder or a name ending with a folder separator, or a folder that cannot be
            created.
    """
    given = os.fspath(path)
    path = Path(path)
    if given.endswith(("/", os.sep)):  # `--view3d-save v.rrd/` wrote the file v.rrd: Path drops the separator
        raise OutputError(
            f"3D recording {given} ends with a folder separator, which names a folder: give a file name, e.g. {path}"
        )
    if path.suffix.lower() != ".rrd":
        raise OutputError(f"3D recording {path}: expected a .rrd file name (Rerun's format)")
    if path.is_dir():
        raise OutputError(f"3D recording {path} is a folder: give a file name, e.g. {path / 'view.rrd'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # the reason in words ("out.mp4 is a file, not a folder"), not "[Errno 17] File exists"
        # named as given, as -o's video is: "cannot create folder out/afile" did not say which option wanted it
        raise OutputError(f"cannot write the 3D recording {path} of --view3d-save: {os_reason(exc, path)}") from None
    return path
