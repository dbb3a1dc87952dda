"""Luxonis OAK-D cameras through DepthAI v3 (``pip install 'rtstereo[camera]'``).

Mono (the default): the device rectifies its two global-shutter mono cameras itself (the StereoDepth
node); rtstereo reads the rectified left and right streams, pairs them by sequence number, and builds
the :class:`~rtstereo.types.Calibration` from the calibration stored on the device. DepthAI rectifies
both views onto the right camera's intrinsics, so those are the rectified ``fx, fy, cx, cy``.

Colour (``color=True``, ``--oak-color``): on models whose stereo sensors are colour (OAK-D-SR, some
OAK-D Pro W / S2 / Lite variants), StereoDepth's rectified outputs are still grey, so the raw colour
frames of the stereo sockets are read instead and rectified on the host with OpenCV
(:class:`HostRectification`), from the intrinsics, distortion and extrinsics stored on the device.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import require, require_bool, require_installed
from ..text import counted
from ..types import Calibration
from .base import CameraError, CameraLostError, Grab, LiveSource


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


def require_color_stereo(camera_features: list[Any], stereo_sockets: tuple[Any, Any]) -> None:
    """Refuse a device whose stereo sensors cannot deliver colour, before anything streams.

    Args:
        camera_features: ``device.getConnectedCameraFeatures()`` (``dai.CameraFeatures``, each with
            ``socket`` and ``supportedTypes``).
        stereo_sockets: the ``(left, right)`` board sockets of the stereo pair.

    Raises:
        CameraError: a stereo socket has no camera, or its sensor supports no colour output.
    """
    by_socket = {feature.socket: feature for feature in camera_features}
    mono = []
    for socket in stereo_sockets:
        feature = by_socket.get(socket)
        if feature is None:
            connected = ", ".join(str(f.socket.name) for f in camera_features) or "none"
            raise CameraError(
                f"this OAK has no camera on its stereo socket {socket.name} (connected: {connected}); "
                "check the device, or drop --oak-color"
            )
        # Sensor types are enum values; compare by name so the check needs no depthai import here.
        if "COLOR" not in {kind.name for kind in feature.supportedTypes}:
            mono.append(f"{socket.name} {feature.sensorName or '?'}")
    if mono:
        raise CameraError(
            f"this OAK's stereo cameras are mono ({', '.join(mono)}); drop --oak-color to read the "
            "device-rectified grey pair"
        )


@dataclass(frozen=True)
class HostRectification:
    """Rectification of a raw OAK stereo pair on the host: OpenCV remap tables and the result's calibration.

    Attributes:
        left_maps: ``cv2.initUndistortRectifyMap`` tables ``(map1, map2)`` of the left view.
        right_maps: the same for the right view.
        calibration: the rectified pair's calibration (``cx0_px == cx1_px``).
    """

    left_maps: tuple[np.ndarray, np.ndarray]
    right_maps: tuple[np.ndarray, np.ndarray]
    calibration: Calibration

    def rectify(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row-align a raw pair ``(H, W, C)`` uint8 (any channel order); returns the rectified pair."""
        return (
            cv2.remap(left, *self.left_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT),
            cv2.remap(right, *self.right_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT),
        )


def host_rectification_from_depthai(handler: Any, size_wh: tuple[int, int]) -> HostRectification:
    """The OpenCV rectification of an OAK stereo pair's raw frames at ``size_wh`` from the device calibration.

    ``cv2.stereoRectify`` with ``CALIB_ZERO_DISPARITY`` and ``alpha=0`` (only valid pixels, so the
    network never sees the black fill of the warp) on the stored intrinsics (scaled to ``size_wh`` by
    DepthAI), the rational-polynomial distortion and the left-to-right extrinsics.

    Args:
        handler: the device's ``dai.CalibrationHandler`` (``device.readCalibration()``).
        size_wh: ``(width, height)`` of the raw frames, which is also the rectified size.

    Returns:
        :class:`HostRectification` with the remap tables and the rectified :class:`Calibration`.

    Raises:
        CameraError: the calibration lacks the stereo pair's data, or uses a non-perspective lens model.
    """
    width, height = size_wh
    left_socket, right_socket = handler.getStereoLeftCameraId(), handler.getStereoRightCameraId()
    try:
        lenses = [_lens_from_depthai(handler, socket, size_wh) for socket in (left_socket, right_socket)]
        left_to_right = np.asarray(handler.getCameraExtrinsics(left_socket, right_socket), dtype=np.float64)
    except RuntimeError as exc:
        raise CameraError(
            f"the OAK's stored calibration cannot rectify {left_socket.name}/{right_socket.name}: {exc}; "
            "recalibrate the device (Luxonis calibration tool)"
        ) from None
    (k_left, d_left), (k_right, d_right) = lenses
    rotation = left_to_right[:3, :3]
    translation_m = left_to_right[:3, 3:] / 100.0  # (3, 1) as OpenCV 5 insists; DepthAI stores centimetres
    r_left, r_right, p_left, p_right, _, _, _ = cv2.stereoRectify(
        k_left, d_left, k_right, d_right, (width, height), rotation, translation_m,
        flags=cv2.CALIB_ZERO_DISPARITY, alpha=0.0,
    )  # fmt: skip
    maps = [
        cv2.initUndistortRectifyMap(k, d, r, p, (width, height), cv2.CV_16SC2)
        for k, d, r, p in ((k_left, d_left, r_left, p_left), (k_right, d_right, r_right, p_right))
    ]
    # P_right[0, 3] = -fx * baseline for a horizontal pair (the right camera sits at +x).
    calibration = Calibration(
        fx_px=float(p_left[0, 0]),
        fy_px=float(p_left[1, 1]),
        cx0_px=float(p_left[0, 2]),
        cx1_px=float(p_right[0, 2]),
        cy_px=float(p_left[1, 2]),
        baseline_m=abs(float(p_right[0, 3] / p_right[0, 0])),
        width_px=width,
        height_px=height,
    )
    return HostRectification(tuple(maps[0]), tuple(maps[1]), calibration)


def _lens_from_depthai(handler: Any, socket: Any, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Camera matrix at ``size_wh`` and OpenCV distortion coefficients of one socket."""
    model = handler.getDistortionModel(socket)
    if model.name != "Perspective":
        raise CameraError(
            f"the OAK's {socket.name} camera is calibrated with the {model.name} lens model; colour "
            "rectification on the host supports the Perspective model only: drop --oak-color"
        )
    k = np.asarray(handler.getCameraIntrinsics(socket, size_wh[0], size_wh[1]), dtype=np.float64)
    # DepthAI's 14 values are OpenCV's order (k1 k2 p1 p2 k3 k4 k5 k6 s1..s4 tx ty); none stored = none.
    distortion = np.asarray(handler.getDistortionCoefficients(socket) or [0.0] * 5, dtype=np.float64)
    return k, distortion


class OakSource(LiveSource):
    """An OAK-D (or any DepthAI stereo device): rectified left/right frames and the device calibration.

    Args:
        frame_size_wh: rectified frame size per view (the mono sensors are 1280x800; 640x400 halves them).
        fps: frame rate to request (``None``: the device default).
        color: read the stereo sockets' colour frames and rectify them on the host (devices whose
            stereo sensors are colour; a mono pair is refused before streaming).
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
        color: bool = False,
    ):
        super().__init__(frame_timeout_s)
        self.frame_size_wh, self.requested_fps = frame_size_wh, fps
        self.fps = fps
        self.color = require_bool(color, "color")
        self._start_device = start_device or self._start_first_device
        self._streams: OakStreams | None = None
        self._rectification: HostRectification | None = None
        self._dai: Any = None
        # Without the package, say so now, before a stream and its outputs (an adapter) have started; the
        # import itself waits for the camera's start, where what DepthAI prints is held back.
        if start_device is None:
            require_installed("depthai", "camera", "the OAK-D camera")
        self.description = "camera oak (colour)" if color else "camera oak"

    def _open(self) -> None:
        self._dai = require("depthai", "camera", "the OAK-D camera")
        self._streams = self._start_device(self._dai)
        handler = self._streams.calibration_handler
        if self.color:
            self._rectification = host_rectification_from_depthai(handler, self.frame_size_wh)
            self.calibration = self._rectification.calibration
        else:
            self.calibration = calibration_from_depthai(handler, self.frame_size_wh)

    def _start_first_device(self, dai: Any) -> OakStreams:
        if not dai.Device.getAllAvailableDevices():
            raise CameraError(
                "no OAK device found: check the USB cable (USB3 port), the udev rules on Linux "
                "(https://docs.luxonis.com), and that no other program holds the camera"
            )
        if self.color:
            return self._start_color_device(dai)
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

    def _start_color_device(self, dai: Any) -> OakStreams:
        try:
            device = dai.Device()
        except RuntimeError as exc:
            raise CameraError(f"cannot open the OAK camera: {exc}") from None
        try:
            handler = device.readCalibration()
            sockets = (handler.getStereoLeftCameraId(), handler.getStereoRightCameraId())
            require_color_stereo(device.getConnectedCameraFeatures(), sockets)
            pipeline = dai.Pipeline(device)
            queues = []
            for socket in sockets:
                camera = pipeline.create(dai.node.Camera).build(socket, sensorFps=self.requested_fps)
                # The host applies the stored distortion, so the device must not undistort first.
                output = camera.requestOutput(
                    tuple(self.frame_size_wh),
                    type=dai.ImgFrame.Type.BGR888i,
                    fps=self.requested_fps,
                    enableUndistortion=False,
                )
                queues.append(output.createOutputQueue(maxSize=1, blocking=False))
            pipeline.start()
        except RuntimeError as exc:
            device.close()
            raise CameraError(f"cannot start the OAK colour cameras: {exc}") from None
        except CameraError:
            device.close()
            raise

        def stop() -> None:
            try:
                pipeline.stop()
            finally:
                device.close()

        return OakStreams(queues[0], queues[1], handler, stop)

    def _next(self, queue: Any, side: str) -> Any:
        try:
            message = queue.get(datetime.timedelta(seconds=self.frame_timeout_s))
        except (RuntimeError, self._dai.MessageQueue.QueueException) as exc:
            raise CameraLostError(
                f"{self.description} stopped after {counted(self._grabbed, 'frame')} (unplugged?): {exc}"
            ) from None
        if message is None:
            raise CameraLostError(
                f"{self.description}: no {side} frame for {self.frame_timeout_s:g} s after "
                f"{counted(self._grabbed, 'frame')}; the camera stalled or was unplugged"
            )
        return message

    def _read(self) -> Grab:
        """The newest pair with equal sequence numbers, as the device sends it (grey, or BGR unrectified)."""
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
        return left.getCvFrame(), right.getCvFrame(), timestamp_s, int(left.getSequenceNum())

    def _develop(self, raw: Grab) -> Grab:
        left, right, timestamp_s, number = raw
        left_rgb, right_rgb = _to_rgb(left), _to_rgb(right)
        if self._rectification is not None:
            left_rgb, right_rgb = self._rectification.rectify(left_rgb, right_rgb)
        return left_rgb, right_rgb, timestamp_s, number

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
