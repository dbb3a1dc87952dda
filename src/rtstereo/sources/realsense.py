"""Intel RealSense D4xx infrared pairs through ``pyrealsense2`` (``pip install 'rtstereo[realsense]'``).

The two infrared imagers' 8-bit (``Y8``) streams are rectified by the camera; their intrinsics and
the extrinsics between them give the :class:`~rtstereo.types.Calibration`. The IR projector is left
as the camera has it: its dot pattern adds texture to blank walls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import require, require_installed
from ..text import counted
from ..types import Calibration
from .base import CameraError, CameraLostError, Grab, LiveSource


def calibration_from_realsense(left_profile: Any, right_profile: Any) -> Calibration:
    """The rectified calibration of the infrared pair from two ``rs.video_stream_profile`` objects.

    Args:
        left_profile: the profile of infrared stream 1 (left imager).
        right_profile: the profile of infrared stream 2 (right imager).

    Returns:
        :class:`Calibration` with the left imager's intrinsics (the rectified pair shares them) and
        the baseline from the extrinsics, metres.
    """
    left, right = left_profile.get_intrinsics(), right_profile.get_intrinsics()
    translation_m = left_profile.get_extrinsics_to(right_profile).translation
    return Calibration(
        fx_px=float(left.fx),
        fy_px=float(left.fy),
        cx0_px=float(left.ppx),
        cx1_px=float(right.ppx),
        cy_px=float(left.ppy),
        baseline_m=abs(float(translation_m[0])),
        width_px=int(left.width),
        height_px=int(left.height),
    )


class RealSenseSource(LiveSource):
    """A RealSense D4xx camera's left and right infrared images.

    Args:
        frame_size_wh: infrared frame size (640x480, 848x480 and 1280x720 are common modes).
        fps: frame rate to request.
        start_device: replaces the device boundary, ``start_device(rs) -> (pipeline, profile)`` (for
            tests; by default the first connected camera is started).
        frame_timeout_s: wait this long for a frame before declaring the camera stalled.
    """

    def __init__(
        self,
        frame_size_wh: tuple[int, int] = (640, 480),
        fps: float = 30,
        start_device: Callable[[Any], tuple[Any, Any]] | None = None,
        frame_timeout_s: float = 5.0,
    ):
        super().__init__(frame_timeout_s)
        self.frame_size_wh, self.fps = frame_size_wh, fps
        self._start_device = start_device or self._start_first_device
        self._pipeline: Any = None
        # Without the package, say so now, before a stream and its outputs (an adapter) have started; the
        # import itself waits for the camera's start, where what the library prints is held back.
        if start_device is None:
            require_installed("pyrealsense2", "realsense", "the Intel RealSense camera")
        self.description = "camera realsense"

    def _open(self) -> None:
        rs = require("pyrealsense2", "realsense", "the Intel RealSense camera")
        self._pipeline, profile = self._start_device(rs)
        left = profile.get_stream(rs.stream.infrared, 1).as_video_stream_profile()
        right = profile.get_stream(rs.stream.infrared, 2).as_video_stream_profile()
        self.calibration = calibration_from_realsense(left, right)
        self.fps = float(left.fps()) or self.fps

    def _start_first_device(self, rs: Any) -> tuple[Any, Any]:
        context = rs.context()
        if len(context.query_devices()) == 0:
            raise CameraError(
                "no RealSense camera found: check the USB cable (USB3 port) and that no other program "
                "(realsense-viewer) holds the camera"
            )
        width, height = self.frame_size_wh
        config = rs.config()
        for index in (1, 2):
            config.enable_stream(rs.stream.infrared, index, width, height, rs.format.y8, int(self.fps))
        pipeline = rs.pipeline(context)
        try:
            profile = pipeline.start(config)
        except RuntimeError as exc:
            raise CameraError(
                f"cannot start the RealSense infrared streams at {height}x{width} (HxW) {self.fps:g} fps: {exc}; "
                "choose a mode the camera offers (e.g. --camera-size 480x640 or 480x848, --camera-fps 30)"
            ) from None
        return pipeline, profile

    def _read(self) -> Grab | None:
        ok, frames = self._pipeline.try_wait_for_frames(int(self.frame_timeout_s * 1000))
        if not ok:
            raise CameraLostError(
                f"{self.description}: no frames for {self.frame_timeout_s:g} s after "
                f"{counted(self._grabbed, 'frame')}; the camera stalled or was unplugged"
            )
        left, right = frames.get_infrared_frame(1), frames.get_infrared_frame(2)
        if not left or not right:
            raise CameraLostError(f"{self.description}: a frame set without both infrared images")
        # Copies: the frame memory returns to the camera's pool when the frame objects go.
        left_grey = np.array(left.get_data(), copy=True)
        right_grey = np.array(right.get_data(), copy=True)
        return left_grey, right_grey, float(left.get_timestamp()) / 1e3, int(left.get_frame_number())

    def _develop(self, raw: Grab) -> Grab:
        left_grey, right_grey, timestamp_s, number = raw
        return (
            np.repeat(left_grey[:, :, None], 3, axis=2),
            np.repeat(right_grey[:, :, None], 3, axis=2),
            timestamp_s,
            number,
        )

    def _close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass  # the device is already gone (unplugged)
            self._pipeline = None
