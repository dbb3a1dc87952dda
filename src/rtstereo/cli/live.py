"""``rtstereo live --camera oak|uvc:N|realsense``: disparity from a live stereo camera."""

from __future__ import annotations

import argparse
import textwrap

from ..errors import InputError, warn
from ..sources.base import LiveSource
from ..sources.cameras import UVC_FOURCC, UVCSource, open_camera
from .common import add_fit_arg, add_model_args, parse_size_hw
from .video import add_stream_args, run_stream, stream_logging

EPILOG = """examples:
  rtstereo live --camera oak --show                         # OAK-D, rectified on the device
  rtstereo live --camera oak --oak-color --show             # OAK with colour stereo sensors (e.g. OAK-D-SR)
  rtstereo live --camera uvc:0 --camera-size 720x2560 --show  # side-by-side USB stereo webcam
  rtstereo live --camera realsense -o live.mp4 --output-prefix frames/disp --max-frames 300
  rtstereo live --camera oak --temporal --show              # a static camera: less flicker
  rtstereo live --camera oak --view3d --max-depth 5          # live point cloud in Rerun (viewer extra)
  rtstereo live --camera oak --model rtnet-v5 --adapt --adapt-save mycam.pt --show   # adapt while it runs (f freezes)

The camera's newest frame is always the one processed: a slow model skips frames, it never lags.
OAK-D and RealSense supply their own calibration; q or Esc in the window, or Ctrl-C, stop cleanly.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "live",
        help="disparity from a live stereo camera (OAK-D, side-by-side UVC webcam, RealSense)",
        # the epilog keeps its lines (raw), so the description is wrapped here
        description=textwrap.fill(
            "Compute the disparity of a live stereo camera's newest frames; show them in a window "
            "and/or write an mp4 and 16-bit disparity PNGs.",
            width=80,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    camera = parser.add_argument_group("camera")
    camera.add_argument(
        "--camera",
        "-c",
        required=True,
        metavar="CAMERA",
        help="oak (Luxonis OAK-D, DepthAI), uvc:N (side-by-side webcam at OpenCV index N, or a "
        "path/URL after uvc:), or realsense (Intel RealSense infrared pair)",
    )
    camera.add_argument(
        "--camera-size",
        metavar="HxW",
        help="capture size HEIGHTxWIDTH: per view for oak (default 400x640) and realsense (default "
        "480x640); the whole side-by-side frame for uvc (e.g. 720x2560)",
    )
    camera.add_argument(
        "--camera-fps",
        type=float,
        metavar="FPS",
        help="frame rate to request from the camera (uvc:FILE: the rate the file plays at; default: the camera's or "
        "file's own, 30 for realsense)",
    )
    camera.add_argument(
        "--camera-fourcc",
        metavar="FOURCC",
        help=f"uvc devices: the pixel format asked of the camera (default: {UVC_FOURCC}, which USB 2 webcams need to "
        "deliver large frames at full rate; YUYV: uncompressed, often 5-10 fps at 720p; none, in any case: the "
        "camera's own; a recording, uvc:FILE, keeps its own, with a warning)",
    )
    camera.add_argument("--swap", action="store_true", help="uvc: the halves are right|left")
    camera.add_argument(
        "--oak-color",
        action="store_true",
        help="oak: read the stereo pair in colour and rectify it on the host from the device "
        "calibration (models with colour stereo sensors, e.g. OAK-D-SR; a mono pair is refused)",
    )
    add_stream_args(parser)
    add_model_args(parser)
    add_fit_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with stream_logging("live", args.quiet):
        source = open_live_camera(args)
        refuse_a_second_calibration(args, source)
        try:
            return run_stream(args, source, "live")
        finally:
            source.close()  # opened before the model loaded, which then failed: no frame was taken


def open_live_camera(args: argparse.Namespace) -> LiveSource:
    """The camera ``--camera`` names, in colour when ``--oak-color`` asks for it (OAK only)."""
    fourcc = args.camera_fourcc
    source = open_camera(
        args.camera,
        swap=args.swap,
        frame_size_wh=parse_size_hw(args.camera_size, "--camera-size")[::-1] if args.camera_size else None,
        fps=args.camera_fps,
        color=args.oak_color,
        # NONE as none: only the lower case asked for none, NONE was asked of the camera as a pixel format
        **({} if fourcc is None else {"fourcc": None if fourcc.lower() == "none" else fourcc}),
    )
    if fourcc is not None and isinstance(source, UVCSource) and not source.is_device:
        # a recording (or a stream) is decoded in its own format: the option was dropped without a word
        warn(
            f"--camera-fourcc {fourcc} is asked of camera devices, and {source.description} is a recording or stream, "
            "decoded in its own format: --camera-fourcc is ignored"
        )
    return source


def refuse_a_second_calibration(args: argparse.Namespace, source: LiveSource) -> None:
    """OAK-D and RealSense frames come rectified, with the device's calibration: ``--calib`` was ignored for
    them (the pairs carry one already) and ``--rectify`` rectified them a second time.

    Raises:
        InputError: ``--calib`` or ``--rectify`` with a camera that supplies its own calibration.
    """
    if isinstance(source, UVCSource):
        return
    if args.calib:
        raise InputError(
            f"--calib: {source.description} supplies its own calibration, read from the device, and the file "
            "would be ignored; drop --calib"
        )
    if args.rectify:
        raise InputError(
            f"--rectify: {source.description} delivers frames already rectified with the device's calibration, "
            "and rectifying them again would distort them; drop --rectify"
        )
