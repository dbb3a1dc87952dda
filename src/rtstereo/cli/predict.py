"""``rtstereo predict LEFT RIGHT``: disparity of one pair or many."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from ..sinks.files import DEFAULT_FORMATS, FILE_SUFFIXES, FORMATS, parse_formats, save_result, save_single_file
from ..sources.pairs import resolve_pairs
from .common import add_model_args, predictor_from_args

EPILOG = """examples:
  rtstereo predict left.png right.png -o out/            # 16-bit PNG, PFM, colour PNG, JSON in out/
  rtstereo predict left.png right.png -o disp.pfm        # one file, format from the suffix
  rtstereo predict lefts/ rights/ -o out/ --format png16 # folders: pairs matched by sorted name
  rtstereo predict 'cam0/*.png' 'cam1/*.png' -o out/ --model sgbm --max-disp 128
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    sources = resolve_pairs(args.left, args.right)
    formats = parse_formats(args.format)
    output = Path(args.output) if args.output else None
    to_file = output is not None and output.suffix.lower() in FILE_SUFFIXES
    if to_file and len(sources) > 1:
        raise InputError(f"{len(sources)} pairs cannot go into one file {output}: give a folder with -o")
    predictor = predictor_from_args(args)
    bar = tqdm(sources, desc="predict", unit="pair", file=sys.stderr, disable=args.quiet or len(sources) == 1)
    total_ms = 0.0
    for index, source in enumerate(bar):
        pair = source.load(index)
        result = predictor.predict_pair(pair)
        total_ms += result.timings_ms["total"]
        if to_file:
            save_single_file(result, output)
        elif output is not None:
            save_result(result, output, source.name, formats)
        if not args.quiet and len(sources) == 1:
            d = result.disparity_px
            print(
                f"{source.name}: {d.shape[1]}x{d.shape[0]}, {predictor.name}, "
                f"{result.timings_ms['total']:.1f} ms, density {result.density * 100:.1f} %"
            )
    if not args.quiet:
        where = f"written to {output}" if output is not None else "nothing written (give -o FILE_OR_FOLDER)"
        print(f"{len(sources)} pair(s), {total_ms / len(sources):.1f} ms per pair, {where}")
    return 0
