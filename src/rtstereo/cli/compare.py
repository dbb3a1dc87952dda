"""``rtstereo compare A B``: how different two images or disparity maps are."""

from __future__ import annotations

import argparse
import json

from ..compare import compare_files


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="how different two images or two disparity maps are (0 = identical)",
        description="Score 0..1 = (1 - SSIM) / 2 (0 identical, 0.5 unrelated). For disparity maps (PFM, npy, "
        "16-bit PNG) also EPE, bad-N and D1 of B against A, after rescaling B to A's width.",
    )
    parser.add_argument("a", help="first file (the reference for disparity metrics)")
    parser.add_argument("b", help="second file")
    parser.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "image", "disparity"),
        help="how to read the files (default: from the file type)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = compare_files(args.a, args.b, args.kind)
    if args.json:
        print(
            json.dumps(
                {"kind": result.kind, "score": result.score, "metrics": result.metrics, "resized": result.resized},
                indent=2,
            )
        )
        return 0
    print(f"{result.kind} difference score: {result.score:.4f}  (0 = identical, 0.5 = unrelated)")
    for key, value in result.metrics.items():
        print(f"  {key}: {value:.3f}")
    if result.resized:
        print(f"  note: {result.resized}")
    return 0
