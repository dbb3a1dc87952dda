"""``rtstereo synth N -o DIR``: write synthetic stereo pairs with ground truth, in SceneFlow layout.

Pair ``i`` is the same as item ``i`` of ``SyntheticStereo(N, H, W, seed=S)`` and of the training
stream's renderer, so a written set can be browsed to see what the network learns from.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, require
from ..io.atomic import (
    atomic_path,
    file_in_the_way,
    not_a_folder,
    os_reason,
    remove_stale_partials,
    terminate_as_interrupt,
)
from ..text import counted
from . import EXIT_INTERRUPTED
from .common import output_path_arg, parse_size_hw


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic stereo pairs with exact ground truth (SceneFlow layout)",
        description="Render N procedural stereo pairs and write them as DIR/RGB_cleanpass/{left,right}/"
        "NNNNNN.png, DIR/disparity/left/NNNNNN.pfm (pixels, positive) and DIR/occlusion/left/NNNNNN.png "
        "(255 = left pixel not visible in the right view), plus DIR/synth.json with the settings and the "
        "renderer's version. The same command again goes on where a stopped run ended (pairs there are kept, "
        "and N may grow); a folder holding another set (other settings, another version of the renderer) or pairs "
        "from N on is refused, never overwritten.",
    )
    parser.add_argument("count", type=int, metavar="N", help="number of pairs")
    parser.add_argument("-o", "--output", required=True, type=output_path_arg, metavar="DIR", help="output folder")
    parser.add_argument("--size", default="480x640", metavar="HxW", help="image size (default: %(default)s)")
    parser.add_argument(
        "--seed", metavar="N", type=int, default=0, help="stream seed, 0 to 2^32 - 1 (default: %(default)s)"
    )
    parser.add_argument(
        "--max-disp",
        type=float,
        default=192.0,
        metavar="PX",
        help="largest disparity, pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", metavar="N", type=int, default=4, help="pairs rendered at once (default: %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require("torch", "torch", "rendering synthetic scenes")
    import torch

    from .. import __version__
    from ..datasets.synthetic import RENDERER_VERSION, render_scenes
    from ..datasets.synthetic_random import item_seeds, same_stream_seed
    from ..io.images import write_image
    from ..io.pfm import write_pfm
    from ..train.loop import resolve_device

    height, width = parse_size_hw(args.size, "--size", minimum_px=16)
    if args.count < 1:
        raise InputError(f"N: expected a positive number of pairs, got {args.count}")
    if args.count > MAX_PAIRS:
        raise InputError(
            f"N: at most {MAX_PAIRS} pairs (2^32), got {args.count}: pair i + 2^32 would be the same scene as pair i"
        )
    if args.batch_size < 1:
        raise InputError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    if not 0 <= args.seed < SEED_LIMIT:  # -1 was the set of seed 2^63 - 1, 2^32 that of seed 4075032035
        raise InputError(
            f"--seed: expected a whole number from 0 to 2^32 - 1, got {args.seed}, whose pairs are those of "
            f"--seed {same_stream_seed(args.seed)}: the renderer has 2^32 streams of pairs"
        )
    if not (math.isfinite(args.max_disp) and args.max_disp > 0):
        raise InputError(f"--max-disp: expected a positive number of pixels, got {args.max_disp:g}")
    device = resolve_device(args.device)
    if device.type == "cpu":
        _check_memory(height, width, args.batch_size, args.count)
    root = Path(args.output)
    settings = {
        "count": args.count,
        "size_hw": [height, width],
        "seed": args.seed,
        "max_disp_px": args.max_disp,
        "renderer_version": RENDERER_VERSION,
    }
    done = _check_output(root, settings)
    devices = _devices(root, done, _device_name(device), args.count)
    folders = {
        "left": root / "RGB_cleanpass" / "left",
        "right": root / "RGB_cleanpass" / "right",
        "disparity": root / "disparity" / "left",
        "occluded": root / "occlusion" / "left",
    }
    # A whole set as its synth.json records it (_check_output compared the settings) is only read, as written by
    # the versions and devices recorded: it may be on a read-only disk, where the same command refused it.
    if len(done) < args.count or (_recorded(root) or {}).get("count") != args.count:
        _prepare_output(root, folders, {**settings, "rtstereo_version": __version__, "devices": devices})
    if args.max_disp >= width:
        print(
            f"rtstereo synth: warning: --max-disp {args.max_disp:g} is not below the image width ({width} px): in the "
            "scenes that reach it the right camera sees little of the left view's scene; give less than the width",
            file=sys.stderr,
        )

    # A pair whose left image is there is complete (it is written last): a run stopped halfway goes on
    # where it stopped, since pair i depends only on the seed and i.
    # The indices to render, a batch at a time, and each batch's seeds only: N may be millions of pairs.
    todo = (index for index in range(args.count) if index not in done)
    digits = name_digits(args.count)
    progress = _NoProgress() if args.quiet else _progress(args.count, len(done))
    written = 0
    try:
        # SIGTERM (kill, a job scheduler's stop) as Ctrl+C: the pair under way leaves no partial file, the run
        # ends with its "interrupted" line, and a rerun goes on from there.
        with terminate_as_interrupt():
            # No batch holds more than the N pairs asked for (as _check_memory counts them): islice refused a
            # --batch-size beyond 2^63 with a traceback.
            while indices := list(itertools.islice(todo, min(args.batch_size, args.count))):
                span = item_seeds(args.seed, indices[-1] - indices[0] + 1, start=indices[0])
                seeds = span[torch.tensor(indices) - indices[0]]
                try:
                    batch = render_scenes(seeds, height, width, device=device, max_disp_px=args.max_disp)
                except torch.OutOfMemoryError:  # a GPU's memory, which the budget check does not weigh: a traceback
                    stay = counted(len(done) + written, "pair")
                    raise InputError(
                        f"--size {height}x{width} at --batch-size {args.batch_size} does not fit in the memory of "
                        f"{_device_name(device)}: give a smaller --batch-size (the {stay} written stay: the command "
                        "goes on from there)"
                    ) from None
                for row, index in enumerate(indices):
                    name = f"{index:0{digits}d}"
                    paths = {
                        "occluded": folders["occluded"] / f"{name}.png",
                        "disparity": folders["disparity"] / f"{name}.pfm",
                        "right": folders["right"] / f"{name}.png",
                        "left": folders["left"] / f"{name}.png",
                    }
                    # Each file under a temporary name, then renamed; the left image last, since a pair is complete
                    # when its left image is there (what a rerun skips).
                    try:
                        occluded = batch["occluded"][row].cpu().numpy().astype(np.uint8) * 255
                        with atomic_path(paths["occluded"]) as partial:
                            write_image(partial, occluded)
                        with atomic_path(paths["disparity"]) as partial:
                            write_pfm(partial, batch["disparity"][row].cpu().numpy())
                        for view in ("right", "left"):
                            image = batch[view][row].permute(1, 2, 0).mul(255.0).round().clamp(0, 255).byte()
                            with atomic_path(paths[view]) as partial:
                                write_image(partial, image.cpu().numpy())
                    except BaseException:
                        # Ctrl+C, SIGTERM or a full disk halfway through a pair: readers list the pairs of either
                        # view, and eval failed on a right image without its left one until a rerun finished it.
                        for path in paths.values():
                            with contextlib.suppress(OSError):
                                path.unlink(missing_ok=True)
                        raise
                    progress.update(1)
                    written += 1
    except KeyboardInterrupt:  # it said "interrupted" alone: what is on disk, and what to do, untold
        progress.close()
        print(
            f"rtstereo synth: interrupted: {len(done) + written} of {counted(args.count, 'pair')} in {root}, each "
            "complete; the same command goes on from there",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except OutputError as exc:  # a full disk halfway: what is on disk, as after Ctrl+C
        raise OutputError(
            f"{exc}; {len(done) + written} of {counted(args.count, 'pair')} in {root}, each complete: the same "
            "command goes on from there once it can write"
        ) from None
    finally:  # before the summary, or the "interrupted" line of Ctrl+C, not over it when Python exits
        progress.close()
    kept = f" ({len(done)} already there)" if done else ""
    if not args.quiet:
        print(f"wrote {counted(written, 'pair')} of {height}x{width} to {root}{kept}")
    return 0


def _recorded(root: Path) -> dict | None:
    """The record of ``root/synth.json``, or ``None`` where there is none to read."""
    try:
        record = json.loads((root / "synth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _prepare_output(root: Path, folders: dict[str, Path], record: dict) -> None:
    """Make the set's folders, remove what a killed run left half-written, and write ``synth.json``.

    Raises:
        OutputError: ``root`` cannot be written.
    """
    for folder in folders.values():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the folder itself a file is found too: a path inside it is judged
            raise OutputError(f"cannot write to {root}: {os_reason(exc, folder / 'x')}") from None
    try:
        # The files a run killed mid-write (kill -9, the memory killer) left under temporary names, which readers
        # would list as pairs.
        for folder in [*folders.values(), root]:
            remove_stale_partials(folder)
        with atomic_path(root / "synth.json") as partial:
            partial.write_text(json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write to {root}: {os_reason(exc, root / 'synth.json')}") from None


# Peak working bytes per rendered pixel on a CPU: the growth of peak resident memory from 960x1280 to 1920x2560
# at batch 1 (289-296 B/px; 225 at batch 4).
RENDER_BYTES_PER_PX = 300


def _check_memory(height: int, width: int, batch_size: int, count: int) -> None:
    """Refuse a batch whose rendering would not fit the memory budget: the kernel's memory killer ended such a
    run (--size 100000x100000) with no message, after writing its synth.json. No batch holds more than the
    ``count`` pairs asked for (``synth 1 --batch-size 64`` renders one pair)."""
    from ..runtime.memory import format_bytes_apart, memory_budget

    budget = memory_budget()
    pairs = min(batch_size, count)
    needed = RENDER_BYTES_PER_PX * height * width * pairs
    if needed <= budget.bytes:
        return
    fitting = budget.bytes // (RENDER_BYTES_PER_PX * height * width)
    advice = f"give --batch-size {fitting} or less" if fitting >= 1 else "give a smaller --size"
    at = f"--batch-size {batch_size}" if pairs == batch_size else f"{counted(pairs, 'pair')} per batch (N = {count})"
    shown, allowed = format_bytes_apart(needed, budget.bytes)
    raise InputError(
        f"--size {height}x{width} at {at} needs about {shown} to render, more than the {allowed} budget "
        f"({budget.source}): {advice}"
    )


MAX_PAIRS = 1 << 32  # item_seeds takes the index modulo 2^32
SEED_LIMIT = 1 << 32  # and folds a seed into 32 bits (synthetic_random.same_stream_seed)
RECORD_ONLY = ("rtstereo_version", "devices")  # in synth.json, but a folder may go on with other values
MIN_NAME_DIGITS = 6  # SceneFlow's own names: 000000.png


def name_digits(count: int) -> int:
    """Digits of the pairs' names, zero-padded so that name order is pair order (6, as SceneFlow's, up to a
    million pairs; more beyond).

    Examples:
        >>> name_digits(1), name_digits(1_000_000), name_digits(1_000_001)
        (6, 6, 7)
    """
    return max(MIN_NAME_DIGITS, len(str(count - 1)))


def _device_name(device) -> str:
    """The device that renders, as synth.json records it: ``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        import torch

        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type  # --device cpu:0 is the CPU too: "cpu:0, then cpu" warned of a change of device


def _devices(root: Path, done: set[int], device: str, count: int) -> list[str]:
    """The devices that rendered the folder's pairs, this one last: a GPU's float arithmetic differs from a CPU's in
    the last bits, so pairs rendered elsewhere can differ from this device's by a grey level here and there."""
    before: list[str] = []
    if done:
        try:
            recorded = json.loads((root / "synth.json").read_text(encoding="utf-8")).get("devices")
        except (OSError, ValueError, AttributeError):
            recorded = None
        before = [str(d) for d in recorded] if isinstance(recorded, list) else ["not recorded"]
    if len(done) == count:  # all there: this device renders nothing, and is neither recorded nor warned about
        return before
    if before and before[-1] != device:
        print(
            f"rtstereo synth: warning: the {counted(len(done), 'pair')} already in {root} were rendered on "
            f"{', then '.join(before)}, the others now on {device}: the two can differ in the last bits of their "
            "pixels; for identical sets render on one device",
            file=sys.stderr,
        )
    return [*before, device] if not before or before[-1] != device else before


def _check_output(root: Path, settings: dict) -> set[int]:
    """Refuse a folder whose pairs this run would not all replace: another set's would stay mixed in.

    The same settings pass as long as no pair from ``N`` on is there: pair ``i`` depends only on the
    seed and ``i``; any settings pass where no file of a pair is there yet. ``synth.json`` holds the count
    asked for, which a run stopped halfway did not reach, so the pairs are counted from the left images.

    Returns:
        The indices of the pairs already there, which need not be rendered again.

    Raises:
        OutputError: ``root`` is a file, holds a set written with other settings or by another version of
            the renderer (``synth.json``) or pairs from ``N`` on, or holds left images without a ``synth.json``.
    """
    if root.exists() and not root.is_dir():
        raise OutputError(f"-o {root}: {not_a_folder(root)}")
    above = file_in_the_way(root)
    if above is not None:  # it said "[Errno 20] Not a directory: '.../RGB_cleanpass/left'"
        raise OutputError(f"-o {root}: {not_a_folder(above)}")
    dangling = next((p for p in (root, *root.parents) if p.is_symlink() and not p.exists()), None)
    if dangling is not None:  # mkdir said "File exists" of a path that does not
        raise OutputError(f"-o {root}: {dangling} is a link to {os.readlink(dangling)}, which does not exist")
    written = root / "synth.json"
    lefts = root / "RGB_cleanpass" / "left"
    if written.is_file() and not _holds_files(root):
        return set()  # a run stopped before its first file: no pair of its set would stay
    if written.is_file():
        try:
            before = json.loads(written.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        if isinstance(before, dict) and before.get("renderer_version") != settings["renderer_version"]:
            # Pair i of another renderer differs from this one's: resuming would mix two streams.
            wrote = (
                f"version {before['renderer_version']} (rtstereo {before.get('rtstereo_version', '?')})"
                if "renderer_version" in before
                else "a version from before synth.json recorded it"
            )
            raise OutputError(
                f"-o {root} holds pairs of the synthetic renderer {wrote}; this one is version "
                f"{settings['renderer_version']} and renders other pairs: give another folder, or remove that one"
            )
        if isinstance(before, dict) and {k: v for k, v in before.items() if k not in RECORD_ONLY} == {
            **settings,
            "count": before.get("count"),
        }:
            names = [p.stem for p in lefts.glob("*.png") if p.stem.isdigit()] if lefts.is_dir() else []
            there = {int(name) for name in names}
            beyond = [index for index in there if index >= settings["count"]]
            digits = name_digits(settings["count"])
            other_width = next((name for name in names if len(name) != digits), None)
            if not beyond and other_width is not None:
                # 000005.png beside 1000000.png: name order would no longer be pair order.
                width = len(other_width)
                least = 1 if width == MIN_NAME_DIGITS else 10 ** (width - 1) + 1
                raise OutputError(
                    f"-o {root} holds pairs named with {width} digits ({other_width}.png); {settings['count']} "
                    f"pairs are named with {digits}, and the two would not sort together: give an N of {least} to "
                    f"{10**width} (names of {width} digits), or another folder"
                )
            if not beyond:
                return there  # the same set again, or extended, or resumed
            raise OutputError(
                f"-o {root} already holds {len(there)} pairs of this set, up to pair {max(beyond)}; writing "
                f"{settings['count']} would leave the others in it: give N >= {max(beyond) + 1} (the same pairs "
                "and more), another folder, or remove that one"
            )
        differ = (
            ", ".join(
                f"{key} {before.get(key)!r} -> {value!r}"
                for key, value in settings.items()
                if before.get(key) != value and key != "count"  # more pairs of the same set are fine
            )
            if isinstance(before, dict)
            else "unreadable synth.json"
        )
        raise OutputError(
            f"-o {root} already holds a synthetic set written with other settings ({differ}); its pairs would "
            "stay mixed with the new ones: give another folder, or remove that one"
        )
    # Any file of the layout, not only a left image: another set's right images or disparity maps alone were
    # overwritten without a word.
    holding = lefts if lefts.is_dir() and any(lefts.iterdir()) else _folder_with_files(root)
    if holding is not None:
        raise OutputError(
            # rtstereo synth's own set whose synth.json was removed too: "that rtstereo synth did not write" was untrue
            f"-o {root} already holds {'images' if 'RGB_cleanpass' in holding.parts else 'files'} ({holding}) and no "
            "synth.json telling which set they are; give another folder"
        )
    return set()


def _holds_files(root: Path) -> bool:
    """Whether any of the set's folders holds a file (hidden partial files aside)."""
    return _folder_with_files(root) is not None


def _folder_with_files(root: Path) -> Path | None:
    """The first of the set's folders that holds a file (hidden partial files aside), or ``None``."""
    for folder in (("RGB_cleanpass", "left"), ("RGB_cleanpass", "right"), ("disparity", "left"), ("occlusion", "left")):
        try:
            if any(not entry.name.startswith(".") for entry in os.scandir(root.joinpath(*folder))):
                return root.joinpath(*folder)
        except OSError:  # not there
            continue
    return None


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, done: int):
    """A tqdm progress bar on stderr from the ``done`` pairs already there (silent when tqdm is missing)."""
    try:
        from ..progress import progress_bar
    except ImportError:  # pragma: no cover - tqdm ships with the torch extra
        return _NoProgress()
    # As tqdm's start, not an update: counted as rendered at once, they made the rate of a resumed run
    # millions of pairs/s and its time left near nothing.
    return progress_bar(total=total, initial=done, unit="pair", desc="rtstereo synth")
