"""``rtstereo synth N -o DIR``: write synthetic stereo pairs with ground truth, in SceneFlow layout.

Pair ``i`` is the same as item ``i`` of ``SyntheticStereo(N, H, W, seed=S)`` and of the training
stream's renderer, so a written set can be browsed to see what the network learns from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from ..io.atomic import atomic_path
from .common import parse_size_hw


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic stereo pairs with exact ground truth (SceneFlow layout)",
        description="Render N procedural stereo pairs and write them as DIR/RGB_cleanpass/{left,right}/"
        "NNNNNN.png, DIR/disparity/left/NNNNNN.pfm (pixels, positive) and DIR/occlusion/left/NNNNNN.png "
        "(255 = left pixel not visible in the right view), plus DIR/synth.json with the settings.",
    )
    parser.add_argument("count", type=int, metavar="N", help="number of pairs")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--size", default="480x640", metavar="HxW", help="image size (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="stream seed (default: %(default)s)")
    parser.add_argument(
        "--max-disp",
        type=float,
        default=192.0,
        metavar="D",
        help="largest disparity, pixels (default: %(default)s)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="pairs rendered at once (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require

    require("torch", "torch", "rendering synthetic scenes")
    from ..datasets.synthetic import render_scenes
    from ..datasets.synthetic_random import item_seeds
    from ..io.images import write_image
    from ..io.pfm import write_pfm

    height, width = parse_size_hw(args.size, "--size", minimum_px=16)
    if args.count < 1:
        raise InputError(f"N: expected a positive number of pairs, got {args.count}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    root = Path(args.output)
    folders = {
        "left": root / "RGB_cleanpass" / "left",
        "right": root / "RGB_cleanpass" / "right",
        "disparity": root / "disparity" / "left",
        "occluded": root / "occlusion" / "left",
    }
    try:
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(root / "synth.json") as partial:
            partial.write_text(
                json.dumps(
                    {
                        "count": args.count,
                        "size_hw": [height, width],
                        "seed": args.seed,
                        "max_disp_px": args.max_disp,
                    },
                    indent=2,
                )
                + "\n"
            )
    except OSError as exc:
        raise OutputError(f"cannot write to {root}: {exc}") from None

    progress = _progress(args.count)
    for start in range(0, args.count, args.batch_size):
        indices = list(range(start, min(start + args.batch_size, args.count)))
        seeds = item_seeds(args.seed, len(indices), start=start)
        batch = render_scenes(seeds, height, width, device=args.device, max_disp_px=args.max_disp)
        for row, index in enumerate(indices):
            name = f"{index:06d}"
            # Each file under a temporary name, then renamed; the left image last, because readers list
            # the left images: an interrupted run never shows a pair whose other files are missing.
            occluded = batch["occluded"][row].cpu().numpy().astype(np.uint8) * 255
            with atomic_path(folders["occluded"] / f"{name}.png") as partial:
                write_image(partial, occluded)
            with atomic_path(folders["disparity"] / f"{name}.pfm") as partial:
                write_pfm(partial, batch["disparity"][row].cpu().numpy())
            for view in ("right", "left"):
                image = batch[view][row].permute(1, 2, 0).mul(255.0).round().clamp(0, 255).byte().cpu().numpy()
                with atomic_path(folders[view] / f"{name}.png") as partial:
                    write_image(partial, image)
            progress.update(1)
    progress.close()
    print(f"wrote {args.count} pairs of {height}x{width} to {root}")
    return 0


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int):
    """A tqdm progress bar on stderr (silent when tqdm is missing)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the torch extra
        return _NoProgress()
    return tqdm(total=total, unit="pair", desc="rtstereo synth")
