"""``rtstereo video``: disparity of two videos, a side-by-side video (file or URL), or image sequences.

The options shared with ``rtstereo live`` (outputs, window, resizing, temporal filter, calibration)
and the function that runs a stream from the command line live here too.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import math
import os
import re
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError, RtStereoError, require, require_installed
from ..io.atomic import name_length_problem, terminate_as_interrupt
from ..sinks.video import Sink
from ..sources.base import FramePreparer, FrameSource, LiveSource, PreparationWrapper
from ..temporal import TemporalFilter
from ..text import counted, first_few, shortened
from ..types import Calibration, StereoPair
from ..viewer import DEFAULT_MAX_POINTS
from .batch import add_engine_args
from .common import (
    add_calib_unit_arg,
    add_fit_arg,
    add_model_args,
    given_max_disp,
    kitti_colour_warning,
    output_path_arg,
    parse_size_hw,
    predictor_from_args,
    refuse_calib_with_rectify,
    refuse_unused_calib_unit,
    settings_from_args,
)
from .stream_adapt import add_adapt_args, bind_freeze_key, refuse_stray_adapt_options, stream_predictor

EPILOG = """examples:
  rtstereo video left.mp4 right.mp4 -o out.mp4 --model sgbm --max-disp 128
  rtstereo video --sbs stereo_sbs.mp4 -o out.mp4 --output-prefix frames/disp   # + 16-bit PNGs
  rtstereo video --sbs 'https://www.youtube.com/watch?v=...' --swap --size 360x640 -o out.mp4
  rtstereo video 'left/*.png' 'right/*.png' --fps 15 -o out.mp4                 # image sequences
  rtstereo video left.mp4 right.mp4 --start 300 --stride 2 --max-frames 100 --show
  rtstereo video left.mp4 right.mp4 --calib calib.json --view3d --max-depth 20    # live 3D view (Rerun)
  rtstereo video left.mp4 right.mp4 --model rtnet-v5 --adapt --adapt-save mycam.pt -o out.mp4   # adapt online
  rtstereo video left.mp4 right.mp4 --output-prefix frames/disp --engine ray --workers 2   # frame ranges in parallel

--engine ray cuts the frames into ranges predicted in parallel by Ray workers and writes the same
per-frame PNGs (--output-prefix) as one process; the temporal filter restarts at each range's first frame.
"""

STREAM_LOGGER = "rtstereo.stream"
SEQUENCE_FPS = 10.0  # the frame rate an image sequence is recorded at without --fps
TEMPORAL_DEFAULTS = {name: p.default for name, p in inspect.signature(TemporalFilter).parameters.items()}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "video",
        help="disparity of two videos, a side-by-side video (file or URL) or image sequences",
        # the epilog keeps its lines (raw), so the description is wrapped here
        description=textwrap.fill(
            "Compute the disparity of every frame of a stereo video and write an mp4 (left image | "
            "colourised disparity), 16-bit disparity PNGs, and/or show it in a window.",
            width=80,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO",
        help="LEFT_VIDEO RIGHT_VIDEO (files or URLs); with --sbs one VIDEO_OR_URL; or two folders/globs of images",
    )
    parser.add_argument("--sbs", action="store_true", help="one side-by-side video (left|right halves), file or URL")
    parser.add_argument("--swap", action="store_true", help="exchange left and right (cross-eye videos: right|left)")
    frames = parser.add_argument_group("frames")
    frames.add_argument("--start", type=int, default=0, metavar="FRAME", help="first frame to use, from 0 (default: 0)")
    frames.add_argument("--stride", type=int, default=1, metavar="N", help="use every N-th frame (default: 1)")
    frames.add_argument(
        "--fps",
        type=float,
        help=f"frame rate of an image sequence, for the mp4 (default: {SEQUENCE_FPS}); a video has its own",
    )
    add_stream_args(parser, frames)
    add_engine_args(parser.add_argument_group("engine"))
    add_model_args(parser)
    add_fit_arg(parser)
    parser.set_defaults(func=run)


def add_stream_args(parser: argparse.ArgumentParser, frames=None) -> None:
    """Options ``video`` and ``live`` share: outputs, frames, temporal filter, rectification.

    Args:
        parser: the verb's parser.
        frames: the verb's own "frames" argument group, which the shared frame options join (one
            group in ``--help``); ``None`` makes one.
    """
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "-o", "--output", type=output_path_arg, help="mp4 file: the left image beside the colourised disparity"
    )
    out.add_argument(
        "--output-prefix",
        metavar="PREFIX",
        type=output_path_arg,
        help="write 16-bit disparity PNGs PREFIX_00000.png, ... (value = d*256, 0 = invalid)",
    )
    out.add_argument("--show", action="store_true", help="show a window when a display exists (q or Esc quits)")
    out.add_argument(
        "--summary",
        metavar="FILE.json",
        type=output_path_arg,
        help="JSON summary with per-stage FPS (default: beside -o as .json, or PREFIX_summary.json)",
    )
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar, notices or summary on screen")
    frames = frames if frames is not None else parser.add_argument_group("frames")
    frames.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    frames.add_argument(
        "--size",
        metavar="HxW",
        help="resize frames to HEIGHTxWIDTH before the model: the disparity is in pixels of the resized "
        "frames (and the calibration is scaled)",
    )
    frames.add_argument("--rectify", metavar="MAPS", help="rectify raw frames with maps from `rtstereo calibrate`")
    frames.add_argument(
        "--align-rows",
        action="store_true",
        help="align the right view's rows with the left one's, measured from matched features on the first "
        "frame that has enough of them and applied to every frame (a rig off by a pixel or two)",
    )
    frames.add_argument(
        "--calib",
        metavar="FILE",
        help="calibration of the (rectified) frames, carried into results and recorded in the summary JSON as "
        "scaled to the frames (the PNGs' depths follow as predict --calib's)",
    )
    frames.add_argument(
        "--no-rectification-check",
        action="store_true",
        help="skip the check that the frames are rectified (the first frame with enough features, and one "
        "every 5 s of the stream, measured beside it; it warns as predict does, again when it changes)",
    )
    add_calib_unit_arg(frames)
    view = parser.add_argument_group("3D viewer (pip install 'rtstereo[viewer]'; needs a calibration)")
    view.add_argument(
        "--view3d",
        action="store_true",
        help="show the coloured point cloud, images and depth in the Rerun viewer (when a display exists)",
    )
    view.add_argument(
        "--view3d-save",
        type=output_path_arg,
        metavar="FILE.rrd",
        help="record the 3D view to a Rerun file (works headless; open it with `rerun FILE.rrd`)",
    )
    view.add_argument("--max-depth", type=float, metavar="M", help="3D view: drop points farther than M metres")
    view.add_argument(
        "--view3d-points",
        type=int,
        metavar="N",
        help=f"3D view: most points per frame, thinned evenly beyond (default: {DEFAULT_MAX_POINTS})",
    )
    temporal = parser.add_argument_group("temporal filter (static cameras)")
    temporal.add_argument(
        "--temporal",
        action="store_true",
        help="average disparity over time per pixel, reset where it changes (less flicker)",
    )
    # No defaults here (the filter's own apply), so that a value given without --temporal is noticed.
    temporal.add_argument(
        "--temporal-alpha",
        type=float,
        metavar="W",
        help=f"weight of the new frame, over 0 and at most 1 (1: no averaging) (default: {TEMPORAL_DEFAULTS['alpha']})",
    )
    temporal.add_argument(
        "--temporal-reset-px",
        type=float,
        metavar="PX",
        help=f"change, pixels, that restarts a pixel's average (default: {TEMPORAL_DEFAULTS['reset_px']})",
    )
    temporal.add_argument(
        "--temporal-confirm",
        type=int,
        metavar="N",
        help="frames a change must persist before a pixel restarts: hides one-frame mismatches, delays "
        f"moving objects by as many frames (default: {TEMPORAL_DEFAULTS['confirm_frames']})",
    )
    add_adapt_args(parser)


def run(args: argparse.Namespace) -> int:
    with stream_logging("video", args.quiet):
        if args.engine == "ray":
            return run_ray(args)
        if args.workers is not None or args.ray_address is not None:
            raise InputError("--workers and --ray-address apply to --engine ray only")
        return run_stream(args, video_source(args), "video")


def run_ray(args: argparse.Namespace) -> int:
    """``--engine ray``: frame ranges in parallel, the same per-frame PNGs as one process."""
    from ..batch.outcome import FAILED
    from ..scale.video import VideoJob, run_ray_video
    from ..sinks.video import numbered_pngs, say_earlier_pngs

    others = [o for o, on in (("-o", args.output), ("--show", args.show), ("--view3d", args.view3d)) if on]
    others += ["--view3d-save"] if args.view3d_save else []
    others += ["--adapt"] if args.adapt else []
    if others:
        raise InputError(
            f"--engine ray writes per-frame PNGs only (--output-prefix), not {', '.join(others)}: "
            "run without --engine ray for an mp4 or a window, or assemble the PNGs afterwards"
        )
    refuse_stray_adapt_options(args)
    if not args.output_prefix:
        raise InputError("--engine ray writes per-frame PNGs: give --output-prefix PREFIX (e.g. frames/disp)")
    _refuse_names_too_long(args)
    check_output_prefix(args.output_prefix)
    check_summary_path(args.summary or f"{args.output_prefix}_summary.json")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    # as predict and eval refuse it: before the video is opened, its first frame checked and the run announced
    require_installed("ray", "scale", "--engine ray (Ray Data)")
    from ..scale.session import refuse_unreachable

    refuse_unreachable(args.ray_address)  # before the video is opened and its first frame checked
    # Ray's workers run in the folder Ray started in (a cluster's, or one started elsewhere in this process), which
    # need not be this one: they get the local inputs, the output prefix and the model's files as absolute paths.
    from ..scale.session import absolute_for_workers, options_for_workers

    ray_args = argparse.Namespace(**vars(args))
    ray_args.inputs = [absolute_for_workers(p) for p in args.inputs]
    source = video_source(ray_args)
    _refuse_writing_over_inputs(args, source.input_files)
    total = source.expected_frames
    if total is None:
        raise InputError(
            f"--engine ray cuts the frames into ranges, but {source.description} does not tell its frame count"
        )
    if args.max_frames is not None:
        total = min(total, args.max_frames)
    from .batch import predictor_options

    temporal = temporal_settings(args)
    prepare = FramePreparer(size_wh=parse_size_hw(args.size)[::-1] if args.size else None, **_geometry(args))
    job = VideoJob(
        source,
        absolute_for_workers(args.output_prefix),
        options_for_workers(predictor_options(args)),
        prepare,
        temporal,
    )
    if args.size:  # before the first frame is resized here for the rectification check, and by every worker
        _refuse_a_size_no_memory_holds_on_ray(args, job.options)
    log = logging.getLogger(STREAM_LOGGER)
    frame_size_hw = parse_size_hw(args.size) if args.size else None
    # Prepared here with or without the check: the workers' notices stay in the workers, and --size to another aspect
    # ratio stretched the frames unsaid with --no-rectification-check.
    first = _check_first_frame(args, source, prepare, log)
    frame_size_hw = first.size_hw if first is not None else frame_size_hw
    log.info("%s -> %s on Ray, %d frames in ranges", source.description, args.model, total)
    if temporal is not None:
        log.info("the temporal filter restarts at the first frame of each frame range (it has no past there)")

    def report(row: dict) -> None:
        damaged = row.get("damaged_frames")
        if damaged:  # said by the worker's stream, whose lines the driver does not show
            which = f"frame {damaged[0]} does" if len(damaged) == 1 else f"frames {first_few(damaged)} do"
            log.warning(f"{which} not decode (damaged): passed over, without a PNG")
        if row["status"] == FAILED:
            log.warning(
                "frames %d-%d failed after %d written: %s",
                row["first"],
                row["first"] + row["count"] - 1,
                row["written"],
                row["error"],
            )

    before = numbered_pngs(args.output_prefix)
    rows, wall_s, interrupted = run_ray_video(
        job, total, workers=args.workers, address=args.ray_address, progress=not args.quiet, on_range=report
    )
    if not interrupted:  # after Ctrl-C the frames not reached leave an earlier run's PNGs of their numbers
        say_earlier_pngs(args.output_prefix, before)
    written = sum(r["written"] for r in rows)
    failed = [r for r in rows if r["status"] == FAILED]
    summary_path = Path(args.summary or f"{args.output_prefix}_summary.json")
    import json

    from ..models import resolve_alias
    from ..sinks.files import FORMAT_ENCODINGS

    ran = [(r.pop("model", ""), r.pop("settings", "")) for r in rows]  # the same in every range: said once
    model, settings = next(((m, s) for m, s in ran if m), (resolve_alias(args.model), ""))
    crop = next((json.loads(c) for c in [r.pop("crop", "") for r in rows] if c), None)
    calibration = _calibration_as_used(first)
    preparation = dict(prepare.preparation)  # the row shift of --align-rows, measured once for every range
    if crop is not None:  # --fit crop: the PNGs are maps of the window the workers cut from the frames
        frame_size_hw = (crop["height_px"], crop["width_px"])
        preparation["crop"] = crop
        if calibration is not None:
            window = Calibration(**calibration).cropped(crop["x0_px"], crop["y0_px"], *frame_size_hw[::-1])
            calibration = vars(window)

    described = {
        "source": source.description,
        "model": model,
        "settings": json.loads(settings) if settings else None,
        # What a reader needs to turn PNG n back into the disparity of a known frame, as the one-process summary says.
        "frame_size_hw": list(frame_size_hw) if frame_size_hw is not None else None,
        "source_frames": {"start": source.start, "stride": source.stride},
        "preparation": preparation,
        "encodings": {"png16": {"files": f"{Path(args.output_prefix).name}_NNNNN.png", **FORMAT_ENCODINGS["png16"]}},
        # As the one-process summary: the PNGs' depths follow as predict --calib's do.
        "calibration": calibration,
    }
    _write_ray_summary(summary_path, rows, written, wall_s, interrupted, described)
    if interrupted:
        print(
            f"rtstereo video: interrupted: {written} of {counted(total, 'frame')} written "
            f"({args.output_prefix}_NNNNN.png, "
            f"each complete), {counted(len(failed), 'range')} failed; summary {summary_path}",
            file=sys.stderr,
            flush=True,
        )
        return 130  # as the one-process stream, and predict, after Ctrl-C
    if not args.quiet:
        print(
            f"{written} of {counted(total, 'frame')} in {counted(len(rows), 'range')}, {len(failed)} failed; "
            f"{wall_s:.1f} s, "
            f"{written / wall_s:.2f} fps end to end (ray); PNGs {args.output_prefix}_NNNNN.png, summary {summary_path}"
        )
    return 1 if failed else 0


def _calibration_as_used(pair: StereoPair | None) -> dict[str, Any] | None:
    """The calibration of a prepared frame as the model uses it (scaled to the frame, as ``predict`` scales it), for
    the summary; ``None`` without one, or one the workers refuse (they say why)."""
    import dataclasses
    import warnings

    from ..geometry import pair_with_calibration_for_size

    if pair is None or pair.calibration is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a scaled calibration is said where the frames are predicted
        try:
            calibration = pair_with_calibration_for_size(pair).calibration
        except RtStereoError:
            return None
    return dataclasses.asdict(calibration) if calibration is not None else None


def _check_first_frame(args: argparse.Namespace, source: FrameSource, prepare: FramePreparer, log) -> StereoPair | None:
    """``--engine ray``: the first frame prepared (what preparing it says, a resize, is said once, here; with
    ``--align-rows``, the frames up to the one the rows are measured on, into ``prepare``) and, unless
    ``--no-rectification-check``, the rectification check of the stream
    (:class:`~.rectification.StreamRectificationCheck`) on it, before the workers start (a frame that cannot be read
    is left to them).

    Returns:
        the first frame as the model gets it (prepared: its size and calibration); ``None`` when it could not be
        read."""
    import copy

    from .rectification import exposure_hint, raw_rig_hint, rectification_findings, swap_hint

    frames = iter(copy.copy(source))
    try:
        first = next(frames, None)
        pair = prepare(first) if first is not None else None
        # --align-rows measured here, on the frames one process measures on, and handed to every range with
        # `prepare`: each range measured its own on its first frame, and the ranges' row shifts differed
        following = first
        while pair is not None and following is not None and prepare.rows_unmeasured:
            following = next(frames, None)
            if following is not None:
                prepare(following)
    except RtStereoError:
        return None
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if pair is None:
        return None
    if args.no_rectification_check:
        return pair
    findings, _ = rectification_findings(
        pair,
        exposure_hint(args),
        prepare.align_rows,
        raw_rig_hint(args.calib),
        swap_hint(args.swap),
        getattr(args, "rectify", None),
    )
    messages = findings.values()
    for message in messages:
        log.warning("frame %s: %s", pair.index, message)
    return pair


def _write_ray_summary(
    path: Path, rows: list[dict], written: int, wall_s: float, interrupted: bool, described: dict | None = None
) -> None:
    import json

    from ..io.atomic import atomic_path, os_reason

    content = {"engine": "ray", **(described or {}), "frames_written": written, "wall_s": round(wall_s, 3)}
    content["interrupted"] = interrupted
    content["ranges"] = rows
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, "the summary") as partial:
            partial.write_text(json.dumps(content, indent=2, default=str) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write the summary {path}: {os_reason(exc, path)}") from None


def video_source(args: argparse.Namespace) -> FrameSource:
    """The source the positional arguments and ``--sbs``/``--swap`` describe."""
    from ..datasets.readers import IMAGE_SUFFIXES
    from ..io.download import file_url_path, is_url
    from ..sources.sequence import ImageSequenceSource, check_fps, is_image_sequence
    from ..sources.video import SideBySideVideoSource, TwoVideoSource

    if args.fps is not None:
        check_fps(args.fps)  # used by image sequences only, but a wrong value is wrong for any input
    inputs = args.inputs
    _refuse_input_names_too_long(inputs, args.sbs)
    # The command a still image given as a video is sent to: adapt takes image pairs itself.
    images_command = getattr(args, "images_command", "predict")
    if args.sbs:
        if len(inputs) != 1:
            raise InputError(f"--sbs takes one side-by-side video (file or URL), got {len(inputs)}: {' '.join(inputs)}")
        if not Path(inputs[0]).exists() and is_image_sequence(inputs[0]) and not is_url(inputs[0]):
            # was "side-by-side video not found: frames/*.png", of a glob that matches files
            raise InputError(
                f"side-by-side video {inputs[0]} is a glob of images, not a video file: --sbs reads one video (file or "
                "URL); for images, give the left and the right ones as two folders or globs, without --sbs"
            )
        _refuse_fps_for_videos(args)
        return SideBySideVideoSource(
            inputs[0], swap=args.swap, start=args.start, stride=args.stride, images_command=images_command
        )
    if len(inputs) > 2 and all(Path(name).suffix.lower() in IMAGE_SUFFIXES for name in inputs):
        raise InputError(
            f"expected LEFT RIGHT, got {len(inputs)} images: the shell expanded the globs; quote them, "
            "e.g. 'left/*.png' 'right/*.png', or give the two folders"
        )
    if len(inputs) != 2:
        raise InputError(
            f"expected LEFT_VIDEO RIGHT_VIDEO, got {counted(len(inputs), 'input')}; "
            "for one side-by-side video add --sbs"
        )
    left, right = inputs
    if args.swap:
        left, right = right, left
    sequences = [name for name in (left, right) if is_image_sequence(name)]
    if sequences:
        videos = [
            name for name in (left, right) if Path(name).is_file() and Path(name).suffix.lower() not in IMAGE_SUFFIXES
        ]
        if videos:
            raise InputError(
                # "holds images" was said of an empty folder and of a glob that matches nothing ('right/*.mp4' too)
                f"{sequences[0]} is a folder or glob, read as a sequence of images, but {videos[0]} is a video: give "
                "two videos, or two folders or globs of images"
            )
        fps = SEQUENCE_FPS if args.fps is None else args.fps
        source = ImageSequenceSource(left, right, fps=fps, start=args.start, stride=args.stride)
        sides = (("left", left), ("right", right))
        _refuse_pngs_among_the_images(getattr(args, "output_prefix", None), sides, source.input_files)
        _refuse_an_mp4_rate(args, fps)
        return source
    images = [name for name in (left, right) if Path(name).suffix.lower() in IMAGE_SUFFIXES]
    if len(images) == 1:  # OpenCV would read the image as a one-frame video, paired with the video's first frame
        video = right if images[0] == left else left
        raise InputError(
            f"{video} is a video but {images[0]} is an image: give two videos, or two folders or globs of images "
            "(for one pair of images: rtstereo predict LEFT RIGHT)"
        )
    # A file:// URL as the file it names: file:///data/l.mp4 beside l.mp4 went through as two videos
    left_file, right_file = (Path(file_url_path(name) or name) for name in (left, right))
    if left == right or (left_file.is_file() and right_file.is_file() and left_file.samefile(right_file)):
        # As predict refuses one image given twice: every frame would match itself, at disparity 0.
        raise InputError(
            f"left and right give the same video {left}: a stereo pair needs its two views (two videos, one per "
            f"camera; for one side-by-side video: --sbs {left})"
        )
    _refuse_fps_for_videos(args)
    return TwoVideoSource(left, right, start=args.start, stride=args.stride, images_command=images_command)


def _refuse_input_names_too_long(inputs: Sequence[str], sbs: bool) -> None:
    """Refuse an input whose name no file can have (a part over the file system's length limit): ``Path.is_dir()``
    and ``exists()`` raised OSError on it, and the run ended in a traceback.

    Raises:
        InputError: such a name, not a URL.
    """
    from ..io.atomic import name_length_problem
    from ..io.download import file_url_path, is_url

    for number, name in enumerate(inputs):
        local = file_url_path(name) if is_url(name) else name
        problem = name_length_problem(local) if local else None
        if problem is not None:
            what = "side-by-side video" if sbs else ("left", "right")[number] + " input" if number < 2 else "input"
            raise InputError(f"{what} {shortened(name, 500)}: no file can have this name: {problem}")


def _refuse_pngs_among_the_images(prefix: str | None, sides: Sequence[tuple[str, str]], inputs: Sequence[Path]) -> None:
    """Refuse an ``--output-prefix`` whose PNGs the folder or glob of a side's images would list: written among
    them, the next run read them as frames ("left gives 10 images and right gives 5").

    Args:
        prefix: ``--output-prefix``, or ``None``.
        sides: ``(side, folder or glob)`` of the sequence's two sides.
        inputs: the sequence's images: PNGs that would be some of them are left to the refusal that names them
            (:func:`~rtstereo.sinks.video.refuse_writing_over_inputs`, which says they would be destroyed).

    Raises:
        InputError: the PNGs ``PREFIX_00000.png``, ... would be among a side's images.
    """
    import fnmatch
    import glob

    from ..io.download import file_url_path

    if not prefix:
        return
    png = Path(prefix).parent / f"{Path(prefix).name}_00000.png"
    numbered = re.compile(re.escape(Path(prefix).name) + r"_\d{5}\.png")
    if any(path.parent.resolve() == png.parent.resolve() and numbered.fullmatch(path.name) for path in inputs):
        return
    for side, spec in sides:
        where = Path(file_url_path(spec) or spec)
        if where.is_dir():
            listed = where.resolve() == png.parent.resolve()
        else:  # a glob: its folder part without wildcards, and a name pattern the PNGs' names match (in any case)
            listed = (
                not glob.has_magic(str(where.parent))
                and where.parent.resolve() == png.parent.resolve()
                and fnmatch.fnmatch(png.name.lower(), where.name.lower())
            )
        if listed:
            raise InputError(
                f"--output-prefix {prefix} writes its PNGs among the {side} images {spec}, which would read them as "
                f"frames the next time: give a prefix in another folder, e.g. {png.parent / 'disparity' / 'd'}"
            )


def _refuse_an_mp4_rate(args: argparse.Namespace, fps: float) -> None:
    """Refuse an image sequence's rate ``fps`` (``--fps`` or its default) that, over ``--stride``, ``-o``'s mp4 cannot
    store, before the model loads: it was refused at the first frame, when OpenCV's writer did not open at it."""
    from ..sinks.video import MP4_MIN_FPS, MPEG4_MAX_FPS

    mp4_fps = fps / args.stride
    if getattr(args, "output", None) and not MP4_MIN_FPS < mp4_fps <= MPEG4_MAX_FPS:
        rate = f"--fps {fps:g}" if args.fps is not None else f"the sequence's {fps:g} fps (no --fps)"
        stride = f" at --stride {args.stride}" if args.stride != 1 else ""
        raise InputError(
            f"{rate}{stride} makes {args.output} a {mp4_fps:g} fps video, and an mp4 stores a rate over "
            f"{MP4_MIN_FPS} fps (OpenCV's steps) and up to {MPEG4_MAX_FPS} fps: give another --fps or --stride, or "
            "leave out -o"
        )


def _refuse_a_strided_mp4_rate(args: argparse.Namespace, video_fps: float) -> None:
    """Refuse a ``--stride`` that divides a video's rate ``video_fps`` below what ``-o``'s mp4 stores, naming it:
    the refusal named an mp4 of 0.0005 fps and left the user to see that --stride 20000 made it."""
    from ..sinks.video import MP4_MIN_FPS

    mp4_fps = video_fps / args.stride
    if mp4_fps <= MP4_MIN_FPS:
        raise InputError(
            f"--stride {args.stride} makes {args.output} a {mp4_fps:g} fps video (the video's {video_fps:g} fps over "
            f"the stride), and an mp4 stores a rate over {MP4_MIN_FPS} fps (OpenCV's steps): give a smaller --stride, "
            "or leave out -o"
        )


def _refuse_fps_for_videos(args: argparse.Namespace) -> None:
    """``--fps`` sets the rate of image sequences; a video's mp4 keeps the video's own, so it would be ignored."""
    if args.fps is not None:
        raise InputError(
            f"--fps {args.fps:g} sets the frame rate of image sequences, but the input is a video, whose mp4 keeps "
            "the video's own frame rate (divided by --stride): drop --fps"
        )


def _refuse_a_size_no_memory_holds_on_ray(args: argparse.Namespace, options: Any) -> None:
    """:func:`_refuse_a_size_no_memory_holds` for ``--engine ray``, whose workers resized each frame first: asked of
    the registry (:func:`_memory_plan_before_load`) or else of the workers' predictor built on the driver's CPU
    (which may have no GPU; the plan depends on the method, its range and size divisor, not on the device), then
    closed."""
    import dataclasses

    early = _memory_plan_before_load(args)
    if early is not None:
        _refuse_a_size_no_memory_holds(args, early)
        return
    predictor = dataclasses.replace(options, device="cpu", precision="fp32").load()
    try:
        _refuse_a_size_no_memory_holds(args, getattr(predictor, "memory_plan", None))
    finally:
        close = getattr(predictor, "close", None)
        if callable(close):
            close()


def _memory_plan_before_load(args: argparse.Namespace) -> Any:
    """The memory plan of the model the options name, known before it loads (``None`` where only the loaded model
    knows it, and with ``--adapt``, whose network is built for training): :func:`rtstereo.api.memory_plan_before_load`.
    """
    if getattr(args, "adapt", False):
        return None
    from ..api import memory_plan_before_load

    return memory_plan_before_load(args.model, settings_from_args(args), args.backend)


def _every_check(*checks: Any) -> Any:
    """One frame-size check (``check(size_hw)``, raising :class:`InputError`) that runs each of ``checks`` given (not
    ``None``): an image sequence's frame of another size than the rectification maps' (or the calibration's aspect
    ratio) was refused at its rectification, in words that named no frame of the sequence."""
    given = [check for check in checks if check is not None]

    def check(size_hw: tuple[int, int]) -> None:
        for each in given:
            each(size_hw)

    return check


def _refuse_a_size_no_memory_holds(
    args: argparse.Namespace, memory_plan: Any, view_size_hw: tuple[int, int] | None = None
) -> None:
    """Refuse a ``--size`` the memory budget holds at no size, before the first frame is resized to it: the frames
    were resized first, and ``--size 40000x60000`` (a zero too many) had the process killed by the kernel, out of
    memory, where the budget refuses such a pair in one line. Without ``--size``, the views' size a video file or a
    camera reports when it opens (``view_size_hw``) is checked the same way: refused at the first frame, the run
    had written an empty table and a summary of 0 frames. ``memory_plan``: the model's (its ``memory_plan``, or
    :func:`_memory_plan_before_load`'s, asked before the model loads: a video of 8K frames waited seconds, more with
    torch, to be refused)."""
    if memory_plan is None or not (args.size or view_size_hw):
        return
    from ..runtime.memory import MemoryBudgetError

    try:
        memory_plan(parse_size_hw(args.size) if args.size else tuple(view_size_hw))
    except MemoryBudgetError as exc:
        raise InputError(f"--size {args.size}: {exc}" if args.size else str(exc)) from None


def _colour_top_px(
    max_disp_px: float | None, predictor: Any, width_px: int | None = None, log: logging.Logger | None = None
) -> float | None:
    """The top of the colour range for ``--max-disp`` (:func:`~rtstereo.io.disparity.given_range_top_px`, as
    ``predict``'s ``_color.png``): the range OpenCV's matchers search, a multiple of 16 (``--max-disp 20`` searches 32:
    20-31 px all showed the top colour), else ``--max-disp`` (the default hybrid's ``max_disp_px`` is its network's
    192 px, which coloured a 20 px scene in one colour); ``None`` measures it. A range past the frames' ``width_px``,
    which every disparity stays below, stops at the width, said on ``log`` (the hybrid at ``--max-disp 100000``
    coloured 0-100000 px, in one colour; OpenCV's matchers refuse such frames themselves)."""
    from ..io.disparity import given_range_top_px

    backend = getattr(predictor, "backend", None)
    described = backend.describe() if hasattr(backend, "describe") else {}
    searched = described.get("searched_disp") if isinstance(described, dict) else None
    top_px = given_range_top_px(max_disp_px, searched)
    if top_px is None or width_px is None or top_px <= width_px or (searched or 0) >= width_px:
        return top_px
    if log is not None:
        log.warning(
            f"--max-disp {max_disp_px:g} (max_disp= in Python) is beyond the frames' width, {width_px} px, which every "
            f"disparity stays below: the preview's colours span 0-{width_px} px; give a --max-disp near the scene's "
            "largest disparity"
        )
    return float(width_px)


def _preview_width_px(args: argparse.Namespace, frame_hw: tuple[int, int] | None) -> int | None:
    """The width of the disparity maps the preview shows, when known before the first frame: the frames' (``--size``,
    else the video's header), not that of the maps of ``--rectify`` or of ``--fit crop``'s window."""
    if frame_hw is None or args.rectify or getattr(args, "fit", None) == "crop":
        return None
    return frame_hw[1]


def run_stream(args: argparse.Namespace, source: FrameSource, verb: str) -> int:
    """Build the outputs, filter and window the options name, run the stream, report."""
    from ..sinks.video import (
        ColourScale,
        DisparityPngSink,
        VideoSink,
        check_video_frame_size,
        check_video_output,
        open_window,
    )
    from ..stream import Stream

    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    _refuse_names_too_long(args)
    check_output_prefix(args.output_prefix)
    _refuse_writing_over_inputs(args, source.input_files)
    _refuse_summary_over_outputs(args)  # first: naming the checkpoint or the recording is the clearer reason
    stride = getattr(args, "stride", 1)
    fps = source.fps / stride if source.fps and not source.live else None
    if args.output and fps is not None and stride != 1:
        _refuse_a_strided_mp4_rate(args, source.fps)
    if args.output:  # its name and rate, before the model loads: its writer is made after it
        check_video_output(args.output, fps)
    # before the summaries beside them: their refusals named out.json and PREFIX_summary.json, not -o / --output-prefix
    _check_output_folder(args.output, f"the video {args.output}")
    _check_output_folder(args.output_prefix, f"the PNGs {args.output_prefix}_*.png of --output-prefix")
    check_summary_path(_summary_path(args), args.output)
    prepare = FramePreparer(size_wh=parse_size_hw(args.size)[::-1] if args.size else None, **_geometry(args))
    checked = None
    if not args.no_rectification_check:
        from .rectification import StreamRectificationCheck, exposure_hint, raw_rig_hint, swap_hint

        swappable = _swappable(args)
        checked = StreamRectificationCheck(
            prepare,
            exposure_hint(args),
            prepare.align_rows,
            raw_rig_hint(args.calib),
            logging.getLogger(STREAM_LOGGER),
            swap_hint=swap_hint(args.swap) if swappable else None,
            rectified_by=getattr(args, "rectify", None),
        )
    settings = temporal_settings(args)
    temporal = TemporalFilter(*settings) if settings is not None else None
    viewer_options = _viewer_options(args, source)  # fails before the model loads, not at the first frame
    if isinstance(source, LiveSource):  # no camera: said before the model loads, its notes and its progress bar
        source.open()
    view_size_hw = getattr(source, "view_size_hw", None)  # a video's, from its header; a camera's, once open
    if view_size_hw is not None:  # --calib or --rectify of another size or camera mode: said now, not at frame 0
        prepare.check_frame_size(view_size_hw)
    _refuse_a_size_no_memory_holds(args, _memory_plan_before_load(args), view_size_hw)  # before the model loads
    # The frames' size as the mp4 gets them (the maps of --rectify, and --fit crop's window, make their own: checked
    # at the first frame): frames too wide for an mp4 were refused there, after the model had loaded.
    frame_hw = parse_size_hw(args.size) if args.size else view_size_hw
    if args.output and frame_hw is not None and not args.rectify and getattr(args, "fit", None) != "crop":
        check_video_frame_size(args.output, frame_hw)
    try:
        predictor, adaptation = stream_predictor(args, predictor_from_args)
    except KeyboardInterrupt:
        if getattr(args, "adapt_save", None) is None:
            raise
        return _interrupted_before_adapting(args, verb)
    _refuse_a_size_no_memory_holds(args, getattr(predictor, "memory_plan", None), view_size_hw)
    if hasattr(source, "frame_size_check"):  # an image sequence's frames may differ in size: each checked, named
        memory_plan = None if args.size else getattr(predictor, "memory_plan", None)
        source.frame_size_check = _every_check(prepare.check_frame_size, memory_plan)
    sinks = []
    if args.output:
        sinks.append(VideoSink(args.output, fps=fps))
    if args.output_prefix:  # it names an earlier run's PNGs that this run leaves, when it closes
        sinks.append(DisparityPngSink(args.output_prefix))
    log = logging.getLogger(STREAM_LOGGER)
    if viewer_options is not None:
        sinks.extend(_viewer_sink(args, viewer_options, log))
    window = open_window(f"rtstereo {verb} (q or Esc quits)") if args.show else None
    if not sinks and window is None:
        # After "--show: no display", asking for --show again would contradict it.
        ways = "-o FILE.mp4 or --output-prefix PREFIX" if args.show else "-o FILE.mp4, --output-prefix PREFIX or --show"
        # "nothing is written" was said of a run that then listed its --summary (or --adapt-save) as written
        summary = _summary_path(args)
        besides = f" (and the summary {summary})" if summary else ""
        log.info(f"no disparity is written or shown (give {ways}): measuring speed only{besides}")
    sinks.append(_RangeCeilingCheck(predictor.max_disp_px, log, getattr(predictor, "range_fixed_in", None)))
    if adaptation is not None:
        try:
            adaptation.start()  # after the outputs: one that cannot be written is said before the adapter starts
        except KeyboardInterrupt:
            if adaptation.save_path is None:
                raise
            return _interrupted_before_adapting(args, verb)
        sinks.append(adaptation)
        bind_freeze_key(window, adaptation)
    log.info("%s -> %s", source.description, predictor.name)
    step = checked if checked is not None else prepare
    if args.calib:  # as predict warns: colour frames with a KITTI 2012 file read for its grey cameras (depths 0.7% off)
        step = _FirstFrameWarning(step, lambda left: kitti_colour_warning(args.calib, args.kitti_cameras, left), log)
    stream = Stream(
        source,
        predictor,
        sinks=sinks,
        window=window,
        prepare=step,
        temporal=temporal,
        colour_scale=ColourScale(
            _colour_top_px(given_max_disp(args), predictor, _preview_width_px(args, frame_hw), log)
        ),
        max_frames=args.max_frames,
        progress=not args.quiet,
        progress_label=verb,
    )
    interrupted_at_the_end = ran = False
    try:
        with terminate_as_interrupt():  # kill or a scheduler's stop: the outputs closed and counted, as after Ctrl-C
            summary = stream.run(raise_interrupt=False)  # Ctrl-C: the summary, then exit code 130 below
        ran = True
    finally:
        if checked is not None:
            try:
                checked.wait()  # its warning before the summary, also on a stream shorter than the check
            except KeyboardInterrupt:  # once the check is done: the summary is still said
                interrupted_at_the_end = True
        unmeasured = prepare.align_rows_unmeasured()
        if unmeasured is not None:
            logging.getLogger(STREAM_LOGGER).warning(unmeasured)
        if stream.summary is not None:
            _report(args, stream.summary)
        if not ran:  # the stream's error is what the command reports; the stages are waited for as below
            with contextlib.suppress(KeyboardInterrupt):
                stream.wait_for_the_stages()
    code = 0
    if summary.stopped_by == "interrupt":
        if summary.frames_written:
            # As --engine ray says it; a camera's frame count is not known (and frames it dropped are not missing).
            total = None if source.live else stream._expected_frames()
            written = counted(total, "frame") if total is not None else counted(summary.frames_written, "frame")
            of = f"{summary.frames_written} of " if total is not None else ""
            print(
                f"rtstereo {verb}: interrupted: {of}{written} written; what was written is complete",
                file=sys.stderr,
            )
        else:  # an -o file from an earlier run is left as it was, not replaced by an empty video
            print(
                f"rtstereo {verb}: interrupted before the first frame was written: no video or PNG written",
                file=sys.stderr,
            )
        code = 130
    try:
        stream.wait_for_the_stages()  # as the process would at exit, where kill was no Ctrl-C (exit code 143)
    except KeyboardInterrupt:
        interrupted_at_the_end = True
    if interrupted_at_the_end and code == 0:
        print(f"rtstereo {verb}: interrupted after the last frame: the outputs are complete", file=sys.stderr)
        code = 130
    return code


def _interrupted_before_adapting(args: argparse.Namespace, verb: str) -> int:
    """Ctrl-C while the model loads or the adapter's process starts, with ``--adapt-save``: said not written (a bare
    "interrupted" left the user to look for the adapted weights); exit code 130."""
    print(
        f"rtstereo {verb}: interrupted before the stream started: --adapt-save {args.adapt_save} not written "
        "(nothing was adapted)",
        file=sys.stderr,
    )
    return 130


def temporal_settings(args: argparse.Namespace) -> tuple[float, float, int] | None:
    """``(alpha, reset_px, confirm_frames)`` of ``--temporal``, the filter's defaults where not given.

    Raises:
        InputError: a ``--temporal-*`` value without ``--temporal`` (it would be ignored).
    """
    given = {
        "--temporal-alpha": args.temporal_alpha,
        "--temporal-reset-px": args.temporal_reset_px,
        "--temporal-confirm": args.temporal_confirm,
    }
    if not args.temporal:
        named = [option for option, value in given.items() if value is not None]
        if named:
            raise InputError(
                f"{' and '.join(named)} without --temporal: the temporal filter is off and would ignore "
                f"{'it' if len(named) == 1 else 'them'}; add --temporal"
            )
        return None
    alpha, reset_px, confirm = given.values()
    # Named by the flags here: the filter's own messages say "alpha", "reset_px", "confirm_frames".
    if alpha is not None and not 0 < alpha <= 1:
        raise InputError(f"--temporal-alpha must be over 0 and at most 1 (the weight of the new frame), got {alpha}")
    if reset_px is not None and not (math.isfinite(reset_px) and reset_px > 0):
        raise InputError(f"--temporal-reset-px must be > 0 pixels (a finite number), got {reset_px}")
    if confirm is not None and confirm < 0:
        raise InputError(f"--temporal-confirm must be >= 0 frames, got {confirm}")
    return (
        TEMPORAL_DEFAULTS["alpha"] if alpha is None else alpha,
        TEMPORAL_DEFAULTS["reset_px"] if reset_px is None else reset_px,
        TEMPORAL_DEFAULTS["confirm_frames"] if confirm is None else confirm,
    )


class _RangeCeilingCheck(Sink):
    """Warns once when a frame's map piles up at the top of the searched range, and once when it holds disparities of
    the frame's width or more (as ``predict`` warns of a pair: :func:`~rtstereo.runtime.predictor.range_ceiling_warning`
    and :func:`~rtstereo.runtime.predictor.beyond_width_warning`), checked on the first frame written and every
    :attr:`EVERY`-th after it."""

    EVERY = 30

    def __init__(self, max_disp_px: float | None, log: logging.Logger, fixed_in: str | None = None):
        self.max_disp_px, self.log, self.fixed_in = max_disp_px, log, fixed_in
        self._warned = max_disp_px is None
        self._beyond_said = False
        self._written = 0

    def write(self, frame) -> None:
        # Counted here, not by the frame's number: a video whose frame 0 did not decode (its number unused) had its
        # first check at frame 30, none at all in a shorter stream.
        written, self._written = self._written, self._written + 1
        if written % self.EVERY:
            return
        from ..runtime.predictor import beyond_width_warning, range_ceiling_warning

        # Named by the source's number, as the rectification and damaged-frame warnings name it: the output's number
        # (PNG n) was "frame 0" for the frame 300 of --start 300.
        named = frame.pair.index if frame.pair.index is not None else frame.number
        message = None if self._warned else range_ceiling_warning(frame.result, self.max_disp_px, self.fixed_in)
        if message is not None:
            self._warned = True
            self.log.warning("frame %d: %s", named, message)
        beyond = None if self._beyond_said else beyond_width_warning(frame.result)
        if beyond is not None:
            self._beyond_said = True
            self.log.warning("frame %d: %s", named, beyond)

    def close(self) -> None:
        pass

    @property
    def outputs(self) -> list[str]:
        return []


class _FirstFrameWarning(PreparationWrapper):
    """Capture-stage preparation that warns, once, what ``warning`` finds in the first prepared frame's left view.

    Args:
        prepare: the preparation it wraps (:class:`~rtstereo.sources.base.FramePreparer` or a check around it).
        warning: the left view (uint8 RGB ``(H, W, 3)``) -> the warning, or ``None``.
        log: the stream's logger.
    """

    def __init__(self, prepare, warning, log: logging.Logger):
        self.prepare, self.warning, self.log = prepare, warning, log
        self._checked = False

    def __call__(self, pair):
        pair = self.prepare(pair)
        if not self._checked:
            self._checked = True
            message = self.warning(pair.left)
            if message is not None:
                self.log.warning(message)
        return pair


def _swappable(args: argparse.Namespace) -> bool:
    """Whether ``--swap`` can exchange the views: those of every video input and of a uvc camera (OAK-D and
    RealSense name their own)."""
    camera = getattr(args, "camera", None)
    return camera is None or camera.strip().lower().partition(":")[0] == "uvc"


def _geometry(args: argparse.Namespace) -> dict:
    refuse_calib_with_rectify(args)
    aligned = {"align_rows": True} if getattr(args, "align_rows", False) else {}
    if aligned and _swappable(args):
        from .rectification import swap_hint

        aligned["swap_hint"] = swap_hint(args.swap)
    if args.kitti_cameras and not args.calib:
        raise InputError("--kitti-cameras names the cameras of a KITTI --calib file: give that file with --calib")
    geometry = dict(aligned)
    if args.rectify:
        from ..rectify import Rectifier

        geometry["rectifier"] = Rectifier.from_file(args.rectify, length_unit=args.calib_unit)
    elif args.calib:
        from ..io.calibration import read_calibration

        calibration = read_calibration(args.calib, length_unit=args.calib_unit, kitti_cameras=args.kitti_cameras)
        geometry["calibration"] = calibration
    refuse_unused_calib_unit(args)
    return geometry


def _viewer_options(args: argparse.Namespace, source: FrameSource):
    """The 3D viewer's options when ``--view3d``/``--view3d-save`` ask for it, else ``None``.

    Raises:
        InputError: no calibration is given and the source has none of its own.
        MissingDependencyError: rerun-sdk is not installed.
    """
    from ..sources.cameras import UVCSource
    from ..viewer import ViewerOptions, check_rrd_path

    if not (args.view3d or args.view3d_save):
        named = [
            o for o, v in (("--max-depth", args.max_depth), ("--view3d-points", args.view3d_points)) if v is not None
        ]
        if named:
            raise InputError(
                f"{' and '.join(named)} without --view3d or --view3d-save: the 3D view is off and would ignore "
                f"{'it' if len(named) == 1 else 'them'}; add --view3d or --view3d-save FILE.rrd"
            )
        return None
    if args.view3d_save:
        check_rrd_path(args.view3d_save)
    # OAK-D and RealSense read their calibration from the device when they open; webcams and files have none.
    own_calibration = isinstance(source, LiveSource) and not isinstance(source, UVCSource)
    option = "--view3d" if args.view3d else "--view3d-save"  # the one given, in its messages
    if not (args.calib or args.rectify or own_calibration):
        raise InputError(
            f"{option} needs the cameras' calibration (focal length, baseline) to place the points in "
            f"metres, and {source.description} has none: pass --calib FILE (KITTI, Middlebury calib.txt, "
            "OpenCV YAML, rtstereo JSON) or --rectify maps.npz (see `rtstereo calibrate`)"
        )
    # Named by the flags (ViewerOptions says "max_points"), and before the missing package: a usage error first.
    if args.view3d_points is not None and args.view3d_points < 1:
        raise InputError(f"--view3d-points must be >= 1, got {args.view3d_points}")
    if args.max_depth is not None and not args.max_depth > 0:
        raise InputError(f"--max-depth must be > 0 metres, got {args.max_depth}")
    require("rerun", "viewer", f"the 3D viewer ({option})")
    max_points = DEFAULT_MAX_POINTS if args.view3d_points is None else args.view3d_points
    return ViewerOptions(max_points=max_points, max_depth_m=args.max_depth)


def _viewer_sink(args: argparse.Namespace, options, log: logging.Logger) -> list:
    """The 3D viewer sink (a list of zero or one): spawned when a display exists, and/or recorded."""
    from ..sinks.video import display_available
    from ..viewer import Viewer3DSink

    spawn = args.view3d
    if spawn and not display_available():
        log.warning(
            "--view3d: no display (DISPLAY/WAYLAND_DISPLAY unset); the Rerun viewer is not started "
            "(record it with --view3d-save FILE.rrd and open that with `rerun FILE.rrd`)"
        )
        spawn = False
    if not spawn and not args.view3d_save:
        return []
    return [Viewer3DSink(spawn=spawn, save_path=args.view3d_save, options=options)]


def check_output_prefix(prefix: str | None) -> None:
    """Refuse a ``--output-prefix`` that ends with a folder separator (``frames/``): the PNGs would be
    named after the folder and written beside it, the summary inside it."""
    if prefix and prefix.endswith(("/", os.sep)):
        raise InputError(
            f"--output-prefix {prefix} ends with a folder separator: the PNGs are named PREFIX_00000.png, so "
            f"give a file-name prefix inside the folder, e.g. {prefix}disp"
        )
    if prefix and Path(prefix).is_dir():  # the same, for a folder that exists, named without the separator
        raise InputError(
            f"--output-prefix {prefix} is a folder: the PNGs are named PREFIX_00000.png and would be written beside "
            f"it; give a file-name prefix inside it, e.g. {Path(prefix) / 'disp'}"
        )


def _check_output_folder(path: str | None, what: str) -> None:
    """Refuse, before the first frame, an output whose folder cannot be written, naming it as ``what`` (the video
    ``-o`` gave, or the PNGs of ``--output-prefix``).

    Raises:
        OutputError: the folder of ``path`` cannot be made or written (a file stands in its path).
    """
    if not path:
        return
    from ..io.atomic import folder_write_problem

    problem = folder_write_problem(Path(path).parent)
    if problem is not None:
        raise OutputError(f"cannot write {what}: {problem}")


def check_summary_path(path: str | None, video: str | None = None) -> None:
    """Refuse, before the first frame, a summary that could not be written at the end of the run, or
    that would replace the mp4 (``video``) written before it.

    Raises:
        InputError: ``path`` names the mp4, or is no ``.json`` file name.
        OutputError: ``path`` is a folder, or its folder cannot be written.
    """
    if path is None:
        return
    from ..io.atomic import folder_write_problem

    if video is not None and os.path.abspath(path) == os.path.abspath(video):
        raise InputError(f"--summary {path} is the -o video: the summary would replace it; give a .json file name")

    if Path(path).is_dir():
        raise OutputError(f"the summary {path} is a folder: give a file name, e.g. {Path(path) / 'summary.json'}")
    if path.endswith(("/", os.sep)):  # `--summary s.json/` wrote the file s.json: Path drops the separator
        raise OutputError(
            f"the summary {path} ends with a folder separator, which names a folder: give a file name, e.g. "
            f"{path.rstrip('/' + os.sep)}"
        )
    if Path(path).suffix.lower() != ".json":  # s.csv, as predict's --summary takes, held JSON under a table's name
        raise InputError(
            f"--summary {path}: the stream's summary is a JSON document: give a .json file name (predict's --summary "
            "writes .csv or .parquet tables)"
        )
    problem = folder_write_problem(Path(path).parent)
    if problem is not None:
        raise OutputError(f"cannot write the summary {path}: {problem}")


# Files a stream writes before its summary, which a --summary of the same name would replace at the end:
# (the flag's attribute, its name, what the summary would replace).
_WRITTEN_BEFORE_SUMMARY = (
    ("adapt_save", "--adapt-save checkpoint", "the adapted weights"),
    ("view3d_save", "--view3d-save recording", "it"),
)


def _refuse_summary_over_outputs(args: argparse.Namespace) -> None:
    """Refuse a ``--summary`` that names the ``--adapt-save`` checkpoint or the ``--view3d-save`` recording:
    written after them, at the end of the stream, the summary replaced the adapted weights or the 3D recording.

    Raises:
        InputError: the two name one file.
    """
    summary = _summary_path(args)
    if summary is None:
        return
    for attribute, named, replaced in _WRITTEN_BEFORE_SUMMARY:
        other = getattr(args, attribute, None)
        if other is not None and os.path.abspath(summary) == os.path.abspath(other):
            raise InputError(
                f"--summary {summary} is the {named}: the summary would replace {replaced}; give a .json file name"
            )


def _refuse_names_too_long(args: argparse.Namespace) -> None:
    """Refuse an output whose name the file system cannot hold (``-o``, the PNGs of ``--output-prefix``, the summary,
    the recording and checkpoint): ``Path.is_dir()`` raised on such a name, and the run ended in a traceback.

    Raises:
        OutputError: a name over the file system's length limit.
    """
    prefix = args.output_prefix
    named = [
        ("-o", args.output, args.output),
        ("--output-prefix", prefix, f"{prefix}_00000.png" if prefix else None),
        ("--summary" if args.summary else "the summary", args.summary, _summary_path(args)),
        ("--view3d-save", getattr(args, "view3d_save", None), getattr(args, "view3d_save", None)),
        ("--adapt-save", getattr(args, "adapt_save", None), getattr(args, "adapt_save", None)),
    ]
    for flag, given, path in named:
        problem = name_length_problem(path) if path else None
        if problem is not None:
            what = f"cannot write it: {problem}" if path == given else f"cannot write {Path(path).name}: {problem}"
            raise OutputError(f"{flag} {given or path}: {what}")


def _summary_path(args: argparse.Namespace) -> str | None:
    """``--summary``, or by default beside ``-o`` (``out.mp4``: ``out.json``; ``out.mov``: ``out.mov.json``, not
    the ``out.json`` of ``out.m4v`` or ``out.mp4`` beside it) or ``PREFIX_summary.json``."""
    if args.summary is not None:
        return args.summary
    if args.output:
        output = Path(args.output)
        return str(
            output.with_suffix(".json") if output.suffix.lower() == ".mp4" else output.with_name(output.name + ".json")
        )
    if args.output_prefix:
        return f"{args.output_prefix}_summary.json"
    return None


def _refuse_writing_over_inputs(args: argparse.Namespace, inputs: Sequence[Path]) -> None:
    """Refuse an mp4 or a summary that would replace one of the files the stream reads (before the outputs are
    made; :class:`~rtstereo.stream.Stream` checks its video outputs the same way)."""
    from ..sinks.video import refuse_writing_over_inputs

    outputs = [("-o", args.output), ("--summary" if args.summary else "the summary", _summary_path(args))]
    refuse_writing_over_inputs(outputs, inputs, [("--output-prefix", args.output_prefix)])


def _report(args: argparse.Namespace, summary) -> None:
    if summary.error is not None and summary.frames_read == 0:
        return  # failed before the first frame: the error says it all
    path = _summary_path(args)
    if path is not None:
        try:
            summary.write_json(path)
        except OutputError as exc:
            if summary.error is None:
                raise
            # The stream's own error is the one to report; this one would replace it.
            logging.getLogger(STREAM_LOGGER).warning("%s", exc)
        else:
            summary.outputs.append(str(path))
    if not args.quiet:
        print(summary.report(command_line=True))


@contextlib.contextmanager
def stream_logging(verb: str, quiet: bool) -> Iterator[None]:
    """Show the stream's notices and warnings on stderr as ``rtstereo VERB: ...`` while a command runs."""
    from tqdm import tqdm

    if not hasattr(tqdm, "_lock"):
        # tqdm makes its lock at its first line or bar, holding a class lock while it imports multiprocessing: Ctrl-C
        # there left that lock held and became a "--- Logging error ---" (Ctrl-C lost), and the writer thread's bar
        # then waited for the lock for ever: a hung stream that no Ctrl-C could stop. A thread lock is all one
        # process's lines and bars need, and making it cannot be cut short.
        tqdm.set_lock(threading.RLock())
    logger = logging.getLogger(STREAM_LOGGER)
    handler = _BarSafeHandler(sys.stderr)
    handler.setFormatter(_VerbFormatter(verb))
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


class _BarSafeHandler(logging.StreamHandler):
    """Each record on a line of its own while the stream's progress bar is drawn on the same stderr: the
    capture thread's notices (``--size``, ``--align-rows``) were glued to the end of the bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)  # clears the bar, writes, draws it again
        except Exception:  # logging's own contract: a failed record never stops the stream
            self.handleError(record)


class _VerbFormatter(logging.Formatter):
    def __init__(self, verb: str):
        super().__init__()
        self.verb = verb

    def format(self, record: logging.LogRecord) -> str:
        kind = "warning: " if record.levelno >= logging.WARNING else ""
        return f"rtstereo {self.verb}: {kind}{record.getMessage()}"
