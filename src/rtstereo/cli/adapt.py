"""``rtstereo adapt LEFT RIGHT --model NAME -o OUT``: fine-tune a network on your own unlabeled pairs."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, RtStereoError, SettingError, require
from ..text import counted, first_line
from .common import (
    ADAPTED_CHECKPOINT_SUFFIXES,
    WEIGHTS_URL_HELP,
    check_output_file,
    check_pair_args,
    check_torch_threads,
    output_path_arg,
    parse_set_values,
    progress_echo,
    set_cpu_threads,
    size_arg,
)

EPILOG = """examples:
  rtstereo adapt lefts/ rights/ -o mycam.pt                 # rtnet-v5's PyTorch state, 10 minutes
  rtstereo adapt 'cam0/*.png' 'cam1/*.png' --minutes 5 -o mycam.pt
  rtstereo adapt --pairs pairs.csv --steps 300 --losses photometric,smoothness -o mycam.pt
  rtstereo adapt lefts/ rights/ --model rtnet --weights runs/rtnet/best.pt --weight proxy=0.2 -o mycam.onnx
  rtstereo adapt left.mp4 right.mp4 --max-pairs 100 -o mycam.pt    # frames spread over two videos
  rtstereo adapt --sbs rig_sbs.mp4 --swap --every 30 -o mycam.pt   # every 30th frame of a side-by-side video
  rtstereo predict left.png right.png --model mycam.pt -o out/  # the adapted network, no other flag
  rtstereo adapt lefts/ rights/ --model default -o guided.pt       # the hybrid's guided network, with its hints
  rtstereo predict left.png right.png --model hybrid --set network=guided.pt -o out/

No ground truth is needed. Each step trains on crops of your pairs with self-supervised losses
(photometric reconstruction of the left view from the right one, SSIM + L1 on exposure-normalised
images; edge-aware smoothness; left-right consistency; SGBM proxy labels where its left-right check
keeps them) and on rendered scenes with exact disparity, so the network does not forget. A held-out
part of your pairs is scored before and after (photometric error, left-right disagreement); the last
line warns when those scores got clearly worse (photometric error up by more than 10 % and 0.001, or
left-right disagreement up by more than 10 % and 0.25 px): keep the original network then. Pairs must
be rectified: the command refuses pairs whose rows do not line up (see `rtstereo calibrate`).
With -o FILE.onnx the checkpoint is written beside it (FILE.pt) and exported, with its parity report.
"""

RECTIFICATION_CHECKS = 5  # pairs checked, spread over the list (ORB matching: a fraction of a second each)
DEFAULT_MINUTES = 10.0
DEFAULT_EXPORT_HW = (256, 320)  # the parity check's size of -o FILE.onnx
DEFAULT_PROXY_MAX_DISP = 192.0  # SGBM's search range for the proxy labels, pixels
DEFAULT_MAX_PAIRS = 100  # frames taken from a video: the hundred pairs a laptop CPU adapts on in minutes
EXIT_PARITY = 1


DEFAULT_SYNTHETIC_POOL = 32  # --synthetic-pool left out (AdaptConfig's default too)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="adapt a network to your camera: self-supervised fine-tuning on unlabeled pairs",
        description="Fine-tune a network on your own rectified stereo pairs, without ground truth.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "left",
        nargs="?",
        metavar="LEFT",
        help="left images: file, folder, glob or URL (as predict takes them), or the left video; with --sbs the "
        "side-by-side video (file or URL)",
    )
    parser.add_argument(
        "right", nargs="?", metavar="RIGHT", help="right images: file, folder, glob or URL, or the right video"
    )
    parser.add_argument("--pairs", metavar="MANIFEST", help="instead of LEFT RIGHT: a .csv or .parquet manifest")
    videos = parser.add_argument_group("videos (as rtstereo video takes them)")
    videos.add_argument("--sbs", action="store_true", help="LEFT is one side-by-side video (left|right halves)")
    videos.add_argument("--swap", action="store_true", help="exchange left and right (cross-eye videos: right|left)")
    videos.add_argument("--start", type=int, default=0, metavar="FRAME", help="first frame to use, from 0 (default: 0)")
    videos.add_argument(
        "--every",
        "--stride",  # video's name for it, which the heading above promises
        type=int,
        metavar="N",
        help="use every N-th frame (--stride, as video names it, is the same) (default: N = the video's frames / "
        "--max-pairs, rounded up: at most --max-pairs frames, spread over the whole video)",
    )
    videos.add_argument(
        "--max-pairs",
        type=int,
        metavar="N",
        help=f"most frames taken from the video(s) (default: {DEFAULT_MAX_PAIRS})",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=output_path_arg,
        help="adapted checkpoint (.pt, .pth, .ckpt) or exported model (.onnx)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        "-m",
        default="rtnet-v5",
        help="network to adapt: rtnet-v5 (its PyTorch state in a source checkout), an rtstereo checkpoint, "
        "or a registry network with --weights (default: %(default)s)",
    )
    model.add_argument("--weights", "-w", help=f"weights file or URL of a registry network ({WEIGHTS_URL_HELP})")
    model.add_argument(
        "--set",
        dest="set_values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the model, repeatable; for default (the hybrid) its own settings decide the hints its "
        "guided network trains with (e.g. --set uniqueness=15), the others go to the network",
    )
    model.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    model.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads of PyTorch, OpenCV and SGBM's labelling, >= 1 (default: $RTSTEREO_THREADS, else each "
        "library's own)",
    )
    losses = parser.add_argument_group("losses and budget")
    losses.add_argument(
        "--losses",
        metavar="TERM,...",
        default="photometric,smoothness,proxy",
        help="comma-separated terms on your pairs, from photometric, smoothness, consistency (runs the network "
        "twice), proxy (default: %(default)s)",
    )
    losses.add_argument(
        "--weight",
        dest="weight_values",
        action="append",
        default=[],
        metavar="TERM=W",
        help="weight of a term (photometric, smoothness, consistency, proxy, synthetic), repeatable; defaults: "
        "photometric=1 smoothness=0.01 consistency=0.05 proxy=0.2 synthetic=0.02",
    )
    losses.add_argument(
        "--minutes",
        metavar="MIN",
        type=float,
        help=f"training time budget (default: {DEFAULT_MINUTES:g} unless --steps)",
    )
    losses.add_argument("--steps", metavar="N", type=int, help="optimiser steps (with --minutes: whichever ends first)")
    losses.add_argument(
        "--batch-size", metavar="N", type=int, default=2, help="crops of your pairs per step (default: %(default)s)"
    )
    losses.add_argument(
        "--synthetic-batch",
        metavar="N",
        type=int,
        default=2,
        help="rendered pairs per step, 0 for none (default: %(default)s)",
    )
    losses.add_argument(
        "--synthetic-pool",
        metavar="N",
        type=int,
        help="rendered pairs drawn from, rendered once at the start; needs --synthetic-batch >= 1 "
        f"(default: {DEFAULT_SYNTHETIC_POOL})",
    )
    losses.add_argument(
        "--crop",
        type=size_arg,
        default=(160, 320),
        metavar="HxW",
        help="crop size (default: 160x320, the default network's training crops)",
    )
    losses.add_argument(
        "--lr", metavar="LR", type=float, default=1e-4, help="Adam learning rate (default: %(default)s)"
    )
    losses.add_argument(
        "--holdout",
        metavar="FRACTION",
        type=float,
        default=0.1,
        help="fraction of pairs scored, not trained on (default: %(default)s)",
    )
    losses.add_argument(
        "--max-disp",
        type=float,
        metavar="PX",
        help="largest disparity of the SGBM proxy labels, pixels; only with the proxy term in --losses (default: 192; "
        "a Middlebury calib.txt's ndisp beside the images lowers it)",
    )
    losses.add_argument(
        "--seed", metavar="N", type=int, default=0, help="crops, scenes and hold-out split, 0 to 2^64 - 1 (default: 0)"
    )
    parser.add_argument(
        "--export-size",
        type=size_arg,
        metavar="HxW",
        help="-o .onnx: the size parity is checked at (the export takes any multiple of 32; default: "
        f"{DEFAULT_EXPORT_HW[0]}x{DEFAULT_EXPORT_HW[1]})",
    )
    parser.add_argument(
        "--no-rectification-check", action="store_true", help="skip the check that the pairs are rectified"
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="only the before/after scores, the result and warnings (a warning says when the scores got clearly worse)",
    )
    parser.set_defaults(func=run)


# The option that sets each AdaptConfig field, for its errors.
CONFIG_OPTIONS = {
    "losses": "--losses",
    "weights": "--weight",
    "steps": "--steps",
    "minutes": "--minutes",
    "batch_size": "--batch-size",
    "synthetic_batch": "--synthetic-batch",
    "synthetic_pool": "--synthetic-pool",
    "lr": "--lr",
    "holdout": "--holdout",
    "max_disp": "--max-disp",
    "seed": "--seed",
}


@contextlib.contextmanager
def options_named(options: dict[str, str]) -> Iterator[None]:
    """Name the option in a configuration's :class:`~rtstereo.errors.SettingError` (``options``: field -> option).

    Examples:
        >>> from rtstereo.errors import SettingError
        >>> try:
        ...     with options_named({"lr": "--lr"}):
        ...         raise SettingError("lr", "expected > 0, got -1")
        ... except InputError as exc:
        ...     print(exc)
        --lr: expected > 0, got -1
    """
    try:
        yield
    except SettingError as exc:
        if exc.setting not in options:
            raise
        raise InputError(f"{options[exc.setting]}: {exc.detail}") from None


def parse_weights(items: list[str]) -> dict[str, float]:
    """``["proxy=0.2"]`` -> ``{"proxy": 0.2}``.

    Examples:
        >>> parse_weights(["proxy=0.2", "synthetic=0"])
        {'proxy': 0.2, 'synthetic': 0.0}
    """
    weights = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            # every other verb reads --weight as short for --weights, the weights file; here it is a loss's weight
            file = "; the network's weights file is --weights FILE" if "=" not in item and Path(item).suffix else ""
            raise InputError(f"--weight expects TERM=NUMBER (e.g. proxy=0.2), got '{item}'{file}")
    return weights


def _refuse_idle_synthetic_pool(args: argparse.Namespace, weights: dict[str, float]) -> None:
    """Refuse ``--synthetic-pool`` when no rendered pair is mixed in (``--synthetic-batch 0``, or
    ``--weight synthetic=0``): no pool is rendered then, and the value would be taken and ignored."""
    if args.synthetic_pool is None:
        return
    if args.synthetic_batch == 0:
        why = "--synthetic-batch 0 mixes none in"
    elif weights.get("synthetic", 1.0) == 0:
        why = "--weight synthetic=0 turns their term off"
    else:
        return
    raise InputError(
        f"--synthetic-pool {args.synthetic_pool} sets how many rendered pairs the steps draw from, but {why}: "
        "give --synthetic-batch N (and a synthetic weight > 0) to mix rendered pairs in, or drop --synthetic-pool"
    )


def _output_kind(text: str) -> str:
    suffix = Path(text).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in ADAPTED_CHECKPOINT_SUFFIXES:
        return "checkpoint"
    suffixes = ", ".join(ADAPTED_CHECKPOINT_SUFFIXES)
    raise InputError(f"-o {text}: the adapted network goes to a checkpoint ({suffixes}) or an exported model (.onnx)")


def _check_checkpoint_beside(output: Path, checkpoint: Path) -> None:
    """Refuse ``-o FILE.onnx`` whose checkpoint beside it, ``FILE.pt``, is a folder, before the training budget
    (it failed after it, losing the adapted weights).

    Raises:
        OutputError: ``checkpoint`` is a folder.
    """
    if checkpoint.is_dir():
        raise OutputError(
            f"-o {output}: the adapted checkpoint is written beside it, to {checkpoint}, which is a folder; "
            "give -o another name"
        )


def _refuse_replacing_the_source(output: Path, checkpoint: Path, source: str) -> None:
    """Refuse ``-o FILE.onnx`` whose checkpoint beside it, ``FILE.pt``, is the checkpoint being adapted: it
    would be replaced without being named (``-o FILE.pt`` itself may replace it: that is asked for).

    Raises:
        OutputError: ``checkpoint`` is the file ``source`` names.
    """
    if checkpoint == output or not checkpoint.is_file() or not Path(source).is_file():
        return
    if checkpoint.samefile(source):
        other = output.with_name(f"{output.stem}-adapted{output.suffix}")
        raise OutputError(
            f"-o {output}: the adapted checkpoint is written beside it, to {checkpoint}, which is the checkpoint "
            f"adapted from and would be replaced; give -o another name, e.g. {other}"
        )


def _is_video_input(args: argparse.Namespace) -> bool:
    """Whether LEFT RIGHT name videos (``--sbs``, or two video files); mixed inputs are refused."""
    from ..train.video_pairs import is_video_file

    if args.sbs:
        if args.pairs is not None or args.left is None or args.right is not None:
            raise InputError("--sbs takes one side-by-side video (file or URL) as LEFT, and no RIGHT or --pairs")
        return True
    videos = [is_video_file(str(x)) for x in (args.left, args.right) if x is not None]
    if videos == [True] and args.pairs is None:  # it read "... got a video and images": there were none
        raise InputError(
            f"one video, {args.left}: give the right camera's video after it, or --sbs if it is a side-by-side video "
            "(left|right halves)"
        )
    if any(videos) and not (len(videos) == 2 and all(videos)):
        raise InputError(
            "expected two videos (LEFT_VIDEO RIGHT_VIDEO), one side-by-side video with --sbs, or two image "
            "folders/globs; got a video and images"
        )
    return any(videos)


def _swapped_video_hint(args: argparse.Namespace) -> str:
    """What to do about a video whose views look swapped."""
    if args.swap:
        return "leave out --swap"
    if args.sbs:
        return "add --swap (a cross-eye video stores right|left)"
    return "give the left video first, or add --swap"


def _video_pairs(args: argparse.Namespace) -> list:
    """Frames sampled from the video(s), read as ``rtstereo video`` reads them."""
    from ..train.video_pairs import sample_video_pairs
    from .video import stream_logging, video_source

    inputs = [args.left] if args.sbs else [args.left, args.right]

    def open_source(stride: int):
        return video_source(
            argparse.Namespace(
                inputs=inputs,
                sbs=args.sbs,
                swap=args.swap,
                start=args.start,
                stride=stride,
                fps=None,
                images_command="adapt",
            )
        )

    max_pairs = DEFAULT_MAX_PAIRS if args.max_pairs is None else args.max_pairs
    with stream_logging("adapt", args.quiet):  # the sources' warnings (videos of two lengths), as video says them
        return sample_video_pairs(open_source, max_pairs, args.every)


def _sources(args: argparse.Namespace):
    from ..sources.manifest import RepeatedPairWarning, read_manifest
    from ..sources.pairs import resolve_pairs

    check_pair_args(args)
    if args.pairs is not None:
        # A pair listed again is kept once (without_repeated_pairs, which says so): the manifest's own warning,
        # "each name gets its own files of the same pair", is predict's, and adapt writes no files per pair; a row
        # listed twice, its name too, is no clash of the names that predict's output files take.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RepeatedPairWarning)
            return read_manifest(args.pairs, rows_may_repeat=True)
    return resolve_pairs(args.left, args.right)


def load_user_pairs(sources, check_rectification: bool = True) -> list:
    """Read every pair and refuse unrectified ones (see :func:`refuse_unrectified`). A pair that cannot be
    read (a damaged image, two views of different sizes) is left out with a warning naming it; when none
    can be read, that is an error."""
    from ..io.download import is_url
    from ..train.adapt import UserPair
    from ..train.proxy import calibrated_range

    pairs, broken = [], []
    for index, source in enumerate(without_repeated_pairs(sources)):
        try:
            pair = source.load(index)
        except RtStereoError as exc:
            broken.append((f"{source.name} ({source.listed_at})" if source.listed_at else source.name, str(exc)))
            continue
        bound = None if is_url(source.left) else calibrated_range(Path(source.left).parent)
        pairs.append(UserPair(source.name, pair.left, pair.right, bound))
    if broken and not pairs:
        raise InputError(f"none of the {counted(len(broken), 'pair')} can be read: pair {broken[0][0]}: {broken[0][1]}")
    pairs = without_identical_views(pairs)
    if broken:
        names = ", ".join(name for name, _ in broken[:5]) + (f" and {len(broken) - 5} more" if len(broken) > 5 else "")
        # Each pair named once, as predict names a failed pair: "b (pairs.csv line 5): cannot read ..."
        reason = f": {broken[0][1]}" if len(broken) == 1 else f" (the first: {broken[0][1]})"
        print(f"rtstereo adapt: warning: {counted(len(broken), 'pair')} left out: {names}{reason}", file=sys.stderr)
    if check_rectification:
        refuse_unrectified(pairs)
    return pairs


def without_repeated_pairs(sources: list) -> list:
    """The sources with each pair of files once: a pair listed twice (a manifest's repeated row, the same files reached
    by two paths or links) could land in both the training and the held-out pairs, and the "unseen" scores would then
    be those of a pair trained on. A repeat is left out with a warning naming it and the pair it repeats."""
    from ..io.download import is_url

    def where(source) -> str:
        return f"{source.name} ({source.listed_at})" if source.listed_at else source.name

    def key(path: str) -> str:
        return path if is_url(path) else os.path.realpath(path)

    first: dict[tuple[str, str], object] = {}
    kept, repeats = [], []
    for source in sources:
        files = (key(source.left), key(source.right))
        if files in first:
            repeats.append((source, first[files]))
        else:
            first[files] = source
            kept.append(source)
    if repeats:
        names = ", ".join(where(source) for source, _ in repeats[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        source, original = repeats[0]
        print(
            f"rtstereo adapt: warning: {counted(len(repeats), 'pair')} left out: {names}{more}: the same files as a "
            f"pair listed before (the first: {where(source)} repeats {where(original)}); a pair listed twice could be "
            "trained on and scored as unseen",
            file=sys.stderr,
        )
    return kept


def without_identical_views(pairs: list) -> list:
    """The pairs whose two views differ: a pair whose left and right are one picture (a file, folder or video given
    twice, or a copy) would teach the network a disparity of 0 everywhere, which the rectification check, finding
    its rows aligned, passed. Such pairs are left out with a warning naming them; when every pair is one, that is an
    error.

    Raises:
        InputError: every pair's two views are identical.
    """
    same = [pair.name for pair in pairs if np.array_equal(pair.left, pair.right)]
    if not same:
        return pairs
    why = "(identical pixels: one file, folder or video given twice, or a copy)"
    if len(same) == len(pairs):
        raise InputError(
            f"left and right are the same picture in all {counted(len(pairs), 'pair')} {why}: adapting on them would "
            "teach a disparity of 0; give the two cameras' views"
        )
    names = ", ".join(same[:5]) + (f" and {len(same) - 5} more" if len(same) > 5 else "")
    print(
        f"rtstereo adapt: warning: {counted(len(same), 'pair')} left out: {names}: left and right are the same picture "
        f"{why}",
        file=sys.stderr,
    )
    return [pair for pair in pairs if pair.name not in set(same)]


def without_too_small(pairs: list, divisor: int) -> list:
    """The pairs at least ``divisor`` pixels high and wide: one smaller pair among the others stopped the whole run
    ("pair f3 is 20x100 (HxW) pixels: adapting needs ..."); it is left out with a warning naming it, as an
    unreadable pair is. When every pair is too small, they are all kept, for the crop's error to say so."""
    small = [pair for pair in pairs if min(pair.left.shape[:2]) < divisor]
    if not small or len(small) == len(pairs):
        return pairs
    names = ", ".join(pair.name for pair in small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
    first_hw = small[0].left.shape[:2]
    print(
        f"rtstereo adapt: warning: {counted(len(small), 'pair')} left out: {names}: smaller than the network's "
        f"{divisor}x{divisor} pixels (the first: {first_hw[0]}x{first_hw[1]}, HxW)",
        file=sys.stderr,
    )
    return [pair for pair in pairs if min(pair.left.shape[:2]) >= divisor]


def refuse_unrectified(pairs: list, swapped_hint: str = "give the left images first") -> None:
    """Check a few pairs spread over the list; refuse when most of those that can be judged are off.

    One pair off by a little is reported as a warning only: the feature-based check can be fooled by a
    pair with few matches, and a refusal must not be.

    Args:
        pairs: the loaded pairs.
        swapped_hint: what the refusal of swapped views tells the user to do (videos: ``--swap``).

    Raises:
        InputError: more than half of the judged pairs are not rectified, or look swapped.
    """
    from ..rectify import MAX_MISALIGNMENT_PX, check_rectification

    picks = sorted(
        {round(i * (len(pairs) - 1) / max(1, RECTIFICATION_CHECKS - 1)) for i in range(RECTIFICATION_CHECKS)}
    )
    checks = [(pairs[i].name, check_rectification(pairs[i].left, pairs[i].right)) for i in picks]
    judged = [(name, check) for name, check in checks if check.conclusive]
    swapped = [(name, check) for name, check in judged if check.median_dx_px < -1.0]
    off = [(name, check) for name, check in judged if not check.is_rectified()]
    unjudged = len(checks) - len(judged)
    # "2 of 2 checked" when 5 were checked and 3 could not be judged
    of_judged = (
        f"of {len(judged)} checked" if not unjudged else f"of the {len(judged)} judged, of {len(checks)} checked"
    )
    if swapped and 2 * len(swapped) > len(judged):
        name, check = swapped[0]
        raise InputError(
            f"left and right look swapped (pair {name}: features lie {-check.median_dx_px:.1f} px further left in "
            f"the left image than in the right one); {swapped_hint}"
        )
    if off and 2 * len(off) > len(judged):
        name, check = off[0]
        raise InputError(
            f"the pairs are not rectified ({len(off)} {of_judged}; pair {name}: {check.rows_off()}, "
            f"expected < {MAX_MISALIGNMENT_PX:g}; {check.lower_view()}): "
            "adapting on them would "
            "teach wrong matches; rectify them first (rtstereo calibrate, rtstereo predict --rectify) or pass "
            "--no-rectification-check"
        )
    # Pairs too plain to be judged are not said to be rectified (they were: "the other checked pairs are rectified").
    others = "the other checked pairs" if not unjudged else "the other judged pairs"
    besides = f" ({unjudged} of the {len(checks)} checked could not be judged: too few matched features)"
    besides = besides if unjudged else ""
    for name, check in off:
        print(
            f"rtstereo adapt: warning: pair {name}: {check.rows_off()} ({check.lower_view()}; "
            f"{check.matches} matched features); {others} are rectified{besides}",
            file=sys.stderr,
        )
    for name, check in swapped:  # fewer than half: said as a pair off among rectified ones is (it was not at all)
        print(
            f"rtstereo adapt: warning: pair {name}: left and right look swapped (features lie "
            f"{-check.median_dx_px:.1f} px further left in the left image than in the right one); {others} "
            f"are not: swap its two images, or leave it out{besides}",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    require("torch", "torch", "adapting a network")
    from ..train.adapt import AdaptConfig, Adapter, adapt, format_scores
    from ..train.adapt_network import load_adaptable, save_adapted
    from ..train.loop import resolve_device

    kind = _output_kind(args.output)
    if args.export_size is not None and kind != "onnx":
        raise InputError(
            f"--export-size is the parity check's size of an exported model: it applies to -o FILE.onnx, not "
            f"-o {args.output} (drop it, or export with -o FILE.onnx)"
        )
    export_hw = args.export_size or DEFAULT_EXPORT_HW
    output = Path(args.output)
    checkpoint = output if kind == "checkpoint" else output.with_suffix(".pt")
    check_output_file(args.output)  # as given: Path drops a trailing separator
    _check_checkpoint_beside(output, checkpoint)
    device = resolve_device(args.device)  # now, as train does: not after the pairs are read and labelled
    check_torch_threads(args.threads)
    set_cpu_threads(args.threads)  # PyTorch's, and OpenCV's and the labelling threads' (SGBM), and the export's
    minutes = args.minutes if args.minutes is not None or args.steps is not None else DEFAULT_MINUTES
    losses = tuple(name.strip() for name in args.losses.split(",") if name.strip())
    if args.max_disp is not None and "proxy" not in losses:
        # It bounds SGBM's proxy labels and nothing else: taken silently, it would seem to have mattered.
        raise InputError(
            f"--max-disp bounds the SGBM proxy labels, which --losses {args.losses} leaves out: add proxy to "
            "--losses, or drop --max-disp"
        )
    weights = parse_weights(args.weight_values)
    _refuse_idle_synthetic_pool(args, weights)
    with options_named(CONFIG_OPTIONS):
        config = AdaptConfig(
            losses=losses,
            weights=weights,
            steps=args.steps,
            minutes=minutes,
            batch_size=args.batch_size,
            synthetic_batch=args.synthetic_batch,
            synthetic_pool=DEFAULT_SYNTHETIC_POOL if args.synthetic_pool is None else args.synthetic_pool,
            crop_hw=args.crop,
            lr=args.lr,
            holdout=args.holdout,
            max_disp=DEFAULT_PROXY_MAX_DISP if args.max_disp is None else args.max_disp,
            seed=args.seed,
        )
    # The network before the pairs: a mistyped --model was refused only after every pair was read and checked.
    try:
        network = load_adaptable(args.model, args.weights, parse_set_values(args.set_values))
        if network.note and not args.quiet:
            print(f"rtstereo adapt: note: {network.note}", file=sys.stderr)
        _refuse_replacing_the_source(output, checkpoint, network.source)
        if kind == "onnx":  # before the steps, not after them
            from ..export.onnx_export import check_export_memory, check_output_path, check_size

            # FILE.parity.json (or FILE.onnx.data) a folder failed the export after the whole budget
            check_output_path(output)
            check_size(network.spec, network.module, export_hw, "--export-size")
            # --export-size 64000x64000 trained the whole budget, then resized a pair to it (12 GB) for the check
            check_export_memory(network.spec, network.settings, export_hw, dynamic=True, flag="--export-size")
        try:
            network.module.to(device)
        except (RuntimeError, AssertionError) as exc:
            raise InputError(f"--device {args.device}: {first_line(exc) or type(exc).__name__}") from None
        if _is_video_input(args):
            pairs = _video_pairs(args)
            # --quiet: the scores, the result and warnings only (its --help's and the README's words)
            if not args.quiet:
                frames = f"{counted(len(pairs), 'pair')} from the video: {pairs[0].name} to {pairs[-1].name}"
                print(f"rtstereo adapt: {frames}", file=sys.stderr)
            pairs = without_identical_views(pairs)
            if not args.no_rectification_check:
                refuse_unrectified(pairs, _swapped_video_hint(args))
        else:
            if args.swap or args.start or args.every is not None or args.max_pairs is not None:
                raise InputError(
                    "--swap, --start, --every and --max-pairs apply to videos (two video files, or --sbs VIDEO)"
                )
            pairs = load_user_pairs(_sources(args), not args.no_rectification_check)
        adapter = Adapter(
            network.module, network.spec, network.settings, config, network.loss_weights, network.hint_settings
        )
        pairs = without_too_small(pairs, adapter.divisor)
        if min(config.crop_hw) < adapter.divisor:  # named by its option here (it read "crop 16x16: ...")
            raise InputError(
                f"--crop {config.crop_hw[0]}x{config.crop_hw[1]}: {network.spec.name} takes crops of at least "
                f"{adapter.divisor}x{adapter.divisor}"
            )
        # Progress on stderr, results on stdout: `rtstereo adapt ... > scores.txt` keeps only the scores and the file.
        echo = (lambda _line: None) if args.quiet else progress_echo("adapt")
        result = adapt(adapter, pairs, echo=echo)
    except KeyboardInterrupt:  # before the first step (or a second Ctrl+C): a bare "interrupted" said nothing of -o
        print(
            f"rtstereo adapt: interrupted: {checkpoint} not written (the weights reached are kept when Ctrl+C comes "
            "once, after the first step)",
            file=sys.stderr,
        )
        return 130
    scored = "training pairs, none held out" if result.scored_on_training_pairs else "held-out pairs"
    print(f"before ({scored}): {format_scores(result.before)}")
    print(f"after  ({scored}): {format_scores(result.after)}")
    network.module.cpu().eval()
    # -o FILE.pt naming the checkpoint adapted from replaces it (asked for): the verdict must not advise keeping it
    replaced = _names_the_source(checkpoint, network.source)
    try:
        save_adapted(network, result, config, checkpoint)
    except OSError as exc:
        raise OutputError(f"cannot write {checkpoint}: {exc.strerror or exc}") from None
    guided = " (guided: the hybrid's network)" if network.settings.get("guided") else ""
    crops = f" on {result.crop_hw[0]}x{result.crop_hw[1]} crops" if result.crop_hw else ""
    skipped = f", {result.skipped_steps} of them skipped (non-finite loss or gradient)" if result.skipped_steps else ""
    steps = counted(result.steps, "step")
    took = f"{steps}{skipped}{crops} ({result.seconds:.0f} s)"
    # Alone it runs without its hints (unguided); the note that said so at the start is left out by --quiet.
    use = f" (run it inside the hybrid: --model hybrid --set network={output})" if guided else ""
    print(f"adapted {network.spec.name}{guided} for {took}; wrote {checkpoint}{use}")
    code = 0
    if kind == "onnx":
        try:
            code = _export(network, checkpoint, output, export_hw, pairs[0])
        except KeyboardInterrupt:  # a bare "interrupted" seemed to lose the weights, which are written
            print(
                f"rtstereo adapt: interrupted during the export to {output}: {checkpoint} holds the adapted weights; "
                f"export them with rtstereo export {checkpoint} --dynamic --size {export_hw[0]}x{export_hw[1]} "
                f"-o {output}",
                file=sys.stderr,
            )
            return 130
    if result.interrupted:
        print(
            f"rtstereo adapt: interrupted after {steps}, before the budget; {checkpoint} holds the weights reached",
            file=sys.stderr,
        )
    line = verdict(result, args.model, checkpoint if replaced else None)
    if line.startswith("warning:") or not args.quiet:  # a collapse is said even with --quiet
        print(f"rtstereo adapt: {line}", file=sys.stderr)
    return 130 if result.interrupted else code


def _names_the_source(checkpoint: Path, source: str) -> bool:
    """Whether ``checkpoint``, about to be written, is the file the network was adapted from."""
    return checkpoint.is_file() and Path(source).is_file() and checkpoint.samefile(source)


def verdict(result, model: str, replaced: Path | None = None) -> str:
    """The last line: whether the scores say adapting made the network clearly worse (``WORSE_RULE``), or
    that no held-out pair was scored.

    Args:
        replaced: the checkpoint adapted from, when the adapted one was written over it (``-o`` named it).
    """
    if result.worse:
        scored = "scores of the pairs trained on" if result.scored_on_training_pairs else "held-out scores"
        # "keep the original network (mycam.pt)" named the file that now holds the worse weights
        keep = (
            f"the original network was {replaced}, which this run replaced: restore it from a copy if you have one "
            "(next time give -o another name)"
            if replaced is not None
            else f"keep the original network ({model}) rather than this one"
        )
        return (
            f"warning: the {scored} got clearly worse ({'; '.join(result.worse)}): adapting made the network worse "
            f"on your images (it can collapse); {keep}"
        )
    if result.scored_on_training_pairs:
        return (
            "note: no pair was held out (--holdout 0 or a single pair): nothing unseen was scored, so the scores "
            "above, of the pairs trained on, cannot tell whether adapting helped"
        )
    from ..train.adapt import WORSE_RULE, risen_scores

    risen = risen_scores(result.before, result.after)
    if risen:  # "did not get clearly worse" alone hid scores that did get worse, by less than the rule's margin
        return (
            f"the held-out scores did not get clearly worse, but they rose ({'; '.join(risen)}), by less than the "
            f"rule ({WORSE_RULE}): adapting did not help them (no ground truth: check with rtstereo eval if you can)"
        )
    return "the held-out scores did not get clearly worse (no ground truth: check with rtstereo eval if you can)"


def _export(network, checkpoint: Path, output: Path, size_hw: tuple[int, int], pair) -> int:
    """Export the adapted network as ``rtstereo export --dynamic`` does, checked on one of the user's pairs."""
    from ..export.onnx_export import ParityError, export_onnx, sha256_of_file
    from ..export.parity import fit_to_size

    source_hw = pair.left.shape[:2]
    # Worded as export's own parity pair is (parity.parity_pair), sizes HxW as everywhere on the command line.
    fitted = f"{source_hw[0]}x{source_hw[1]} fitted to {size_hw[0]}x{size_hw[1]}, HxW"
    check = (fit_to_size(pair.left, size_hw), fit_to_size(pair.right, size_hw), f"your pair {pair.name} ({fitted})")
    try:
        result = export_onnx(
            network.spec,
            network.settings,
            network.module,
            size_hw,
            output,
            checkpoint_sha256=sha256_of_file(checkpoint),
            pair=check,
            dynamic=True,
        )
    except ParityError as exc:
        if exc.result.report is not None:
            print(exc.result.report.summary())
        print(f"rtstereo adapt: error: {exc}", file=sys.stderr)
        return EXIT_PARITY
    assert result.report is not None, "a fresh export always has a report"
    print(result.report.summary())
    print(f"wrote {result.path}; report {result.report_path}")
    return 0
