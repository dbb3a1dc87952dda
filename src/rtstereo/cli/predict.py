"""``rtstereo predict LEFT RIGHT``: disparity of one pair or many."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry import DEFAULT_MAX_JUMP_REL
from ..sinks import pointcloud  # registers the 3D formats: depth, depth_npy, depth_mm, ply, glb
from ..sinks.files import (
    DEFAULT_FORMATS,
    FILE_SUFFIXES,
    FORMATS,
    parse_formats,
    save_result,
    save_single_file,
)
from ..sources.pairs import resolve_pairs
from ..types import Calibration
from .common import add_model_args, predictor_from_args

EPILOG = """examples:
  rtstereo predict left.png right.png -o out/            # 16-bit PNG, PFM, colour PNG, JSON in out/
  rtstereo predict left.png right.png -o disp.pfm        # one file, format from the suffix
  rtstereo predict lefts/ rights/ -o out/ --format png16 # folders: pairs matched by sorted name
  rtstereo predict 'cam0/*.png' 'cam1/*.png' -o out/ --model sgbm --max-disp 128
  rtstereo predict im0.png im1.png --calib calib.txt --format depth,ply --max-depth 20 -o out/   # metric 3D
  rtstereo predict raw_l.png raw_r.png --rectify rig/maps.npz --lr-check --format color,depth_mm,ply -o out/
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="disparity of image pairs (files, folders, globs, URLs)",
        description="Compute the disparity of the left image of each pair.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("left", help="left image: file, folder, glob or http(s) URL")
    parser.add_argument("right", help="right image: file, folder, glob or http(s) URL")
    parser.add_argument(
        "-o", "--output", help="output file (.png = 16-bit d*256, .pfm, .npy) for one pair, or a folder"
    )
    parser.add_argument(
        "--format",
        help=f"comma-separated outputs per pair in a folder, from: "
        f"{', '.join(sorted(FORMATS))} (default: {','.join(DEFAULT_FORMATS)})",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    add_model_args(parser)
    add_3d_args(parser)
    parser.set_defaults(func=run)


def add_3d_args(parser: argparse.ArgumentParser) -> None:
    """Calibration, rectification, left-right check and point-cloud cleaning options."""
    group = parser.add_argument_group("3D and confidence")
    group.add_argument(
        "--calib",
        metavar="FILE",
        help="calibration of the (rectified) pair: KITTI calib .txt, Middlebury calib.txt, "
        "OpenCV YAML/JSON with P1/P2 or Q, or rtstereo calibration.json; enables "
        "depth/ply/glb",
    )
    group.add_argument(
        "--calib-unit",
        choices=("m", "cm", "mm"),
        help="length unit of OpenCV calibration files (default: the file's length_unit entry, else m)",
    )
    group.add_argument(
        "--rectify",
        metavar="MAPS",
        help="rectify raw pairs first with maps.npz from `rtstereo calibrate` (or an OpenCV "
        "YAML with K1 D1 K2 D2 R T); also gives the calibration",
    )
    group.add_argument(
        "--lr-check",
        nargs="?",
        type=float,
        const=1.0,
        metavar="PX",
        help="left-right consistency check: pixels whose left and right disparities disagree "
        "by more than PX (default 1) become invalid (occlusions, mismatches); runs the "
        "model twice",
    )
    group.add_argument("--max-depth", type=float, metavar="M", help="point clouds: drop points farther than M metres")
    group.add_argument(
        "--max-jump",
        type=float,
        default=DEFAULT_MAX_JUMP_REL,
        metavar="REL",
        help="point clouds: drop flying pixels, whose depth jumps by more than REL (relative) "
        "to a neighbour (default: %(default)s; 0 keeps them)",
    )
    group.add_argument(
        "--no-rectification-check",
        action="store_true",
        help="skip the check that the first pair is rectified (rows aligned within 1 px)",
    )


def _calibration_and_rectifier(args: argparse.Namespace):
    from ..io.calibration import read_calibration
    from ..rectify import Rectifier

    if args.calib and args.rectify:
        raise InputError(
            "give --calib or --rectify, not both: the rectification maps carry the calibration of the rectified images"
        )
    if args.rectify:
        return None, Rectifier.from_file(args.rectify)
    if args.calib:
        return read_calibration(args.calib, length_unit=args.calib_unit), None
    return None, None


def _prepare(pair, calibration: Calibration | None, rectifier):
    """Rectify the pair and attach its calibration (scaled to the pair's size if needed)."""
    from ..geometry import calibration_for_size

    if rectifier is not None:
        left, right, rectified = rectifier.rectify(pair.left, pair.right)
        return dataclasses.replace(pair, left=left, right=right, calibration=rectified)
    if calibration is not None:
        height, width = pair.size_hw
        return dataclasses.replace(pair, calibration=calibration_for_size(calibration, height, width))
    return pair


def _warn_if_unrectified(pair, name: str) -> None:
    from ..rectify import check_rectification

    message = check_rectification(pair.left, pair.right).warning()
    if message:
        print(f"rtstereo predict: warning: {name}: {message}", file=sys.stderr)


def _summary(name: str, model: str, result) -> str:
    d = result.disparity_px
    line = (
        f"{name}: {d.shape[1]}x{d.shape[0]}, {model}, {result.timings_ms['total']:.1f} ms, "
        f"density {result.density * 100:.1f} %"
    )
    if result.calibration is not None and result.density > 0:
        line += f", median depth {float(np.nanmedian(pointcloud.depth_of(result))):.2f} m"
    return line


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..confidence import lr_check

    sources = resolve_pairs(args.left, args.right)
    formats = parse_formats(args.format)
    output = Path(args.output) if args.output else None
    to_file = output is not None and output.suffix.lower() in FILE_SUFFIXES
    if to_file and len(sources) > 1:
        raise InputError(f"{len(sources)} pairs cannot go into one file {output}: give a folder with -o")
    calibration, rectifier = _calibration_and_rectifier(args)
    metric = [f for f in formats if f in pointcloud.NEEDS_CALIBRATION]
    if metric and not to_file and calibration is None and rectifier is None:
        raise InputError(
            f"--format {','.join(metric)} needs the cameras' calibration (focal length, "
            "baseline): pass --calib FILE or --rectify maps.npz (see `rtstereo calibrate`)"
        )
    if args.max_jump < 0:
        raise InputError(f"--max-jump must be >= 0 (0 keeps flying pixels), got {args.max_jump}")
    if args.max_depth is not None and not args.max_depth > 0:
        raise InputError(f"--max-depth must be > 0 metres, got {args.max_depth}")
    predictor = predictor_from_args(args)
    bar = tqdm(sources, desc="predict", unit="pair", file=sys.stderr, disable=args.quiet or len(sources) == 1)
    writers = pointcloud.make_writers(
        pointcloud.PointCloudOptions(max_depth_m=args.max_depth, max_jump_rel=args.max_jump or None)
    )
    total_ms = 0.0
    for index, source in enumerate(bar):
        pair = _prepare(source.load(index), calibration, rectifier)
        if index == 0 and not args.no_rectification_check:
            _warn_if_unrectified(pair, source.name)
        result = predictor.predict_pair(pair)
        if args.lr_check is not None:
            result, _ = lr_check(predictor, pair, result, args.lr_check)
        total_ms += result.timings_ms["total"]
        if to_file:
            save_single_file(result, output)
        elif output is not None:
            save_result(result, output, source.name, formats, writers)
        if not args.quiet and len(sources) == 1:
            print(_summary(source.name, predictor.name, result))
    if not args.quiet:
        where = f"written to {output}" if output is not None else "nothing written (give -o FILE_OR_FOLDER)"
        print(f"{len(sources)} pair(s), {total_ms / len(sources):.1f} ms per pair, {where}")
    return 0
