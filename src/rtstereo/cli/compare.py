"""``rtstereo compare A B``: how different two images or disparity maps are."""

from __future__ import annotations

import argparse
import json

from ..compare import compare_files
from ..errors import InputError
from ..metrics import finite_or_none


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="how different two images or two disparity maps are (0 = identical)",
        description="Score 0..1 = (1 - SSIM) / 2 (0 identical, 0.5 unrelated). For disparity maps (PFM, npy, "
        "one-channel 16-bit PNG, PGM or TIFF, float TIFF; 8-bit with --scale) also EPE, bad-N and D1 of B against A, "
        "after resizing B to A's size and scaling its disparities by the width ratio (B of another aspect ratio is "
        "refused).",
    )
    parser.add_argument(
        "a",
        metavar="A",
        help="first file (the reference for disparity metrics), or its file:// or http(s) URL (downloaded once)",
    )
    parser.add_argument("b", metavar="B", help="second file, or its URL")
    parser.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "image", "disparity"),
        help="how to read the files (default auto: PFM, npy, float TIFF and one-channel 16-bit images are disparity "
        "maps, other images are images, compared at their own bit depth; image: a mono camera's 16-bit photos)",
    )
    parser.add_argument(
        "--scale",
        type=_number_arg,
        help="divisor of 8-bit disparity maps: disparity = value / SCALE (Middlebury 2001 ground truth: 8, "
        "tsukuba's 16; 2003's by its width: 1 at 1800 px, 2 at 900, 4 at 450, as eval reads them); implies --kind "
        "disparity; 16-bit PNG, PGM and TIFF maps (value / 256), float TIFF maps, PFM and npy are read as they are "
        "(a note names them)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


# The units of the metrics (bad-N, d1 and density are percentages of the pixels scored, density those where B is finite,
# 0 and below included: not predict's density); --json holds the numbers.
METRIC_UNITS = {"epe": "px", "d1": "%", "density": "%", "mean_abs_diff": "grey levels (of 255)", "psnr_db": "dB"}


def metric_unit(key: str) -> str:
    """The unit the text output writes after a metric's value.

    Examples:
        >>> metric_unit("epe"), metric_unit("bad-0.5"), metric_unit("psnr_db")
        ('px', '%', 'dB')
    """
    return "%" if key.startswith("bad-") else METRIC_UNITS.get(key, "")


def run(args: argparse.Namespace) -> int:
    if args.scale is not None and not 0 < args.scale < float("inf"):
        raise InputError(f"--scale must be a number > 0, got {args.scale:g}")
    if args.scale is not None and args.kind == "image":
        raise InputError("--scale reads 8-bit disparity maps (it implies --kind disparity): give it or --kind image")
    result = compare_files(args.a, args.b, args.kind, scale=args.scale)
    if args.json:
        document = {"kind": result.kind, "score": result.score, "metrics": result.metrics}
        document |= {"resized": result.resized, "note": result.note}
        print(json.dumps(finite_or_none(document), indent=2))  # PSNR of identical images: null, not Infinity
        return 0
    lines = [f"{result.kind} difference score: {result.score:.4f}  (0 = identical, 0.5 = unrelated)"]
    lines += [f"  {key}: {value:.3f} {metric_unit(key)}".rstrip() for key, value in result.metrics.items()]
    lines += [f"  note: {note}" for note in (result.resized, result.note) if note]
    print("\n".join(lines))
    return 0


def _number_arg(text: str) -> float:
    """argparse ``type=`` of ``--scale``: a number, in the project's words (argparse said "invalid float value");
    its range is checked with the other options'."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got '{text}'") from None
