"""Luxonis OAK-D cameras through DepthAI v3 (``pip install 'rtstereo[camera]'``).

The device rectifies its two global-shutter mono cameras itself (the StereoDepth node); rtstereo
reads the rectified left and right streams, pairs them by sequence number, and builds the
:class:`~rtstereo.types.Calibration` from the calibration stored on the device. DepthAI rectifies
both views onto the right camera's intrinsics, so those are the rectified ``fx, fy, cx, cy``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import require
from ..types import Calibration
from .base import CameraError, Grab, LiveSource


@dataclass
class OakStreams:
    """What a started device hands over: two output queues, the calibration handler, a stop function."""

    left_queue: Any
    right_queue: Any
    calibration_handler: Any
    stop: Callable[[], None]


def calibration_from_depthai(handler: Any, size_wh: tuple[int, int]) -> Calibration:
    """The rectified calibration of an OAK stereo pair at ``size_wh`` from a ``dai.CalibrationHandler``.

    Args:
        handler: the device's ``dai.CalibrationHandler`` (``device.readCalibration()``).
        size_wh: ``(width, height)`` of the rectified frames.

    Returns:
        :class:`Calibration` with the right camera's intrinsics (DepthAI rectifies both views onto
        them, so ``cx0_px == cx1_px``) and the calibrated baseline in metres.
    """
    width, height = size_wh
    left_socket, right_socket = handler.getStereoLeftCameraId(), handler.getStereoRightCameraId()
    k = np.asarray(handler.getCameraIntrinsics(right_socket, width, height), dtype=np.float64)
    # The measured baseline (not the board's design value); DepthAI reports centimetres.
    baseline_cm = abs(float(handler.getBaselineDistance(right_socket, left_socket, False)))
    return Calibration(
        fx_px=float(k[0, 0]),
        fy_px=float(k[1, 1]),
        cx0_px=float(k[0, 2]),
        cx1_px=float(k[0, 2]),
        cy_px=float(k[1, 2]),
        baseline_m=baseline_cm / 100.0,
        width_px=width,
        height_px=height,
    )


class OakSource(LiveSource):
    """An OAK-D (or any DepthAI stereo device): rectified left/right frames and the device calibration.

    Args:
        frame_size_wh: rectified frame size per view (the mono sensors are 1280x800; 640x400 halves them).
        fps: frame rate to request (``None``: the device default).
        start_device: replaces the device boundary, ``start_device(dai) -> OakStreams`` (for tests;
            by default the first available device is started).
        frame_timeout_s: wait this long for a frame before declaring the camera stalled.
    """

    def __init__(
        self,
        frame_size_wh: tuple[int, int] = (640, 400),
        fps: float | None = None,
        start_device: Callable[[Any], OakStreams] | None = None,
        frame_timeout_s: float = 5.0,
    ):
        super().__init__(frame_timeout_s)
        self.frame_size_wh, self.requested_fps = frame_size_wh, fps
        self.fps = fps
        self._start_device = start_device or self._start_first_device
        self._streams: OakStreams | None = None
        self._dai: Any = None
        self.description = "camera oak"

    def _open(self) -> None:
        self._dai = require("depthai", "camera", "the OAK-D camera")
        self._streams = self._start_device(self._dai)
        self.calibration = calibration_from_depthai(self._streams.calibration_handler, self.frame_size_wh)

    def _start_first_device(self, dai: Any) -> OakStreams:
        if not dai.Device.getAllAvailableDevices():
            raise CameraError(
                "no OAK device found: check the USB cable (USB3 port), the udev rules on Linux "
                "(https://docs.luxonis.com), and that no other program holds the camera"
            )
        try:
            pipeline = dai.Pipeline()
            stereo = pipeline.create(dai.node.StereoDepth).build(
                autoCreateCameras=True, size=tuple(self.frame_size_wh), fps=self.requested_fps
            )
            stereo.setRectifyEdgeFillColor(0)
            left_queue = stereo.rectifiedLeft.createOutputQueue(maxSize=1, blocking=False)
            right_queue = stereo.rectifiedRight.createOutputQueue(maxSize=1, blocking=False)
            pipeline.start()
            handler = pipeline.getDefaultDevice().readCalibration()
        except RuntimeError as exc:
            raise CameraError(f"cannot start the OAK camera: {exc}") from None
        return OakStreams(left_queue, right_queue, handler, pipeline.stop)

    def _next(self, queue: Any, side: str) -> Any:
        try:
            message = queue.get(datetime.timedelta(seconds=self.frame_timeout_s))
        except (RuntimeError, self._dai.MessageQueue.QueueException) as exc:
            raise CameraError(
                f"{self.description} stopped after {self._grabbed} frame(s) (unplugged?): {exc}"
            ) from None
        if message is None:
            raise CameraError(
                f"{self.description}: no {side} frame for {self.frame_timeout_s:g} s after "
                f"{self._grabbed} frame(s); the camera stalled or was unplugged"
            )
        return message

    def _read(self) -> Grab | None:
        streams = self._streams
        assert streams is not None, "OakSource read before open"
        left = self._next(streams.left_queue, "left")
        right = self._next(streams.right_queue, "right")
        # The two queues keep only their newest frame each: advance the older side until they match.
        while left.getSequenceNum() != right.getSequenceNum():
            if left.getSequenceNum() < right.getSequenceNum():
                left = self._next(streams.left_queue, "left")
            else:
                right = self._next(streams.right_queue, "right")
        timestamp_s = left.getTimestamp().total_seconds()
        return (
            _to_rgb(left.getCvFrame()),
            _to_rgb(right.getCvFrame()),
            timestamp_s,
            int(left.getSequenceNum()),
        )

    def _close(self) -> None:
        if self._streams is not None:
            try:
                self._streams.stop()
            except RuntimeError:
                pass  # the device is already gone (unplugged): nothing left to stop
            self._streams = None


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """A DepthAI cv frame (grey ``(H, W)`` or BGR ``(H, W, 3)``) as RGB uint8."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
