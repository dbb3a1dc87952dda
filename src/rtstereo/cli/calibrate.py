"""``rtstereo calibrate``: stereo calibration and rectification maps from board image pairs."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlparse

from ..errors import InputError, OutputError
from ..io.atomic import folder_write_problem, kind_of_file
from ..io.images import VIDEO_SUFFIXES, read_image
from ..rectify import BOARD_HELP, Board, BoardViews, calibrate_from_views, find_board_views
from ..sources.pairs import resolve_pairs
from ..text import counted
from .common import output_path_arg

EPILOG = """examples:
  rtstereo calibrate --left 'calib/L/*.png' --right 'calib/R/*.png' --board chessboard:9x6:0.025 -o rig/
  rtstereo calibrate --left L/ --right R/ --board charuco:11x8:0.03:0.022:DICT_5X5_100 -o rig/
  rtstereo predict left.png right.png --rectify rig/maps.npz --format depth,ply -o out/

writes into the output folder:
  stereo.yaml       OpenCV FileStorage: K1 D1 K2 D2 R T R1 R2 P1 P2 Q, image size (lengths in metres)
  calibration.json  the rectified calibration (fx_px, cx0_px, cx1_px, cy_px, baseline_m, size) for --calib
  maps.npz          rectification maps + calibration for --rectify
"""

RMS_WARN_PX = 1.0
# -o ending in one of these names a file, not the folder the calibration is written into
CALIBRATION_FILE_SUFFIXES = (".npz", ".yaml", ".yml", ".json", ".xml", ".txt")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="stereo calibration + rectification maps from chessboard/ChArUco pairs",
        # the epilog keeps its lines (raw), so the description is wrapped here
        description=textwrap.fill(
            "Calibrate a stereo rig from views of a calibration board seen by both cameras, "
            "report the RMS reprojection error, and write the calibration and rectification maps.",
            width=80,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--left",
        required=True,
        help="left images: folder, glob or file (paired with --right by position, each side sorted by its numbers)",
    )
    parser.add_argument("--right", required=True, help="right images: folder, glob or file")
    parser.add_argument("--board", required=True, help=BOARD_HELP)
    parser.add_argument("-o", "--output", required=True, type=output_path_arg, help="output folder")
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.0,
        help="rectification crop: 0 keeps only valid pixels, 1 keeps every source pixel (default: %(default)s)",
    )
    parser.add_argument(
        "--free-k3",
        action="store_true",
        help="also estimate the third radial distortion coefficient (wide-angle lenses)",
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar or summary (warnings and errors are still shown)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    board = Board.parse(args.board)
    if not 0.0 <= args.alpha <= 1.0:  # refused before the images are read, in the option's own name
        raise InputError(
            f"--alpha must be in [0, 1] (0 keeps only valid pixels, 1 every source pixel), got {args.alpha:g}"
        )
    for option, given in (("--left", args.left), ("--right", args.right)):
        if _is_video(given):  # it was read as an image, "skipped" with advice to compute a video's disparity
            raise InputError(
                f"{option} {given} is a video: calibrate reads still images of the board, a pair per position; save "
                "frames of the two videos taken at the same instants, the board held still in a new place in each "
                "(e.g. ffmpeg -i left.mp4 -vf fps=1 left/%04d.png, and the same for the right one), and give their "
                "folders to --left and --right"
            )
    # As predict pairs them: one image given for both cameras is refused, and names whose numbers stop agreeing
    # (left1, left10, left2 beside right01, right02) are warned about before they calibrate a rig from views of
    # different instants.
    pairs = resolve_pairs(args.left, args.right)
    lefts, rights = [pair.left for pair in pairs], [pair.right for pair in pairs]
    output = Path(args.output)
    # refused now, not after the detection and calibration
    if output.exists() and not output.is_dir():
        raise OutputError(f"-o {output} is {kind_of_file(output)}: the calibration is written into a folder")
    if not output.exists() and output.suffix.lower() in CALIBRATION_FILE_SUFFIXES:
        # -o rig/maps.npz made the folder rig/maps.npz/ and wrote rig/maps.npz/maps.npz into it
        folder = f"{output.parent}/" if str(output.parent) != "." else "rig/"
        raise OutputError(
            f"-o {output} names a file, but the calibration is three files (stereo.yaml, calibration.json, "
            f"maps.npz) written into a folder: give the folder, such as -o {folder}"
        )
    problem = folder_write_problem(output)
    if problem is not None:
        raise OutputError(f"-o {output}: cannot write the calibration there: {problem}")
    views = _boards_found(lefts, rights, board, quiet=args.quiet)
    names = [pair.name for pair in views]
    result = calibrate_from_views(views, board, alpha=args.alpha, fix_k3=not args.free_k3)
    # As predict says of the outputs it replaces: an earlier rig went without a word (its maps.npz perhaps in use)
    earlier = [name for name in ("stereo.yaml", "calibration.json", "maps.npz") if (output / name).is_file()]
    files = result.save(output)
    if earlier:
        print(
            f"rtstereo calibrate: note: replaced the earlier calibration in {output}: {', '.join(earlier)}",
            file=sys.stderr,
        )
    if not args.quiet:
        c = result.calibration
        unread = len(lefts) - len(names)
        found = len(result.pairs_used) + len(result.pairs_disagreeing)
        print(
            f"board found in both images of {found} of {len(lefts)} pairs"
            + (f" ({unread} unreadable, skipped)" if unread else "")
        )
        unused = [pair for pair in views if pair.name not in result.pairs_used + result.pairs_disagreeing]
        for reason, names_unused in _why_unused(unused).items():
            print(f"not used ({reason}): {_listed(names_unused)}")
        if result.pairs_disagreeing:
            print(f"not used (the two views disagree on the rig): {_listed(list(result.pairs_disagreeing))}")
        print(
            f"RMS reprojection error: {result.rms_px:.3f} px stereo (left {result.rms_left_px:.3f} px, "
            f"right {result.rms_right_px:.3f} px)"
        )
        print(f"rectified: {c.height_px}x{c.width_px} (HxW), fx {c.fx_px:.2f} px, baseline {c.baseline_m:.5f} m")
        print("wrote " + ", ".join(str(p) for p in files.values()))
        print(f"next: rtstereo predict LEFT RIGHT --rectify {files['maps']} --format depth,ply -o out/")
    if result.rms_px > RMS_WARN_PX:
        print(
            f"rtstereo calibrate: warning: RMS error {result.rms_px:.2f} px is above {RMS_WARN_PX:g} px; "
            "check the board size given with --board, remove blurred views, and make sure the pairs were "
            "taken at the same instant",
            file=sys.stderr,
        )
    return 0


def _is_video(argument: str) -> bool:
    """Whether ``--left`` or ``--right`` names a video file or URL, by its suffix."""
    return Path(urlparse(argument).path if "://" in argument else argument).suffix.lower() in VIDEO_SUFFIXES


def _boards_found(lefts: list[str], rights: list[str], board: Board, quiet: bool = False) -> list[BoardViews]:
    """The board looked for in each pair whose two images can be read, one pair in memory at a time: what the
    calibration needs of a pair is its corners and sizes (:class:`~rtstereo.rectify.BoardViews`), and 30 pairs of
    12 MP held 2.2 GB when every image was read first. A pair with a damaged or unreadable image is skipped with a
    warning, as one bad view among many should not cost the calibration. A pair is named by its left image's file
    name, or by its path where file names repeat (views/07/left.png: each pair was "left.png", and the pairs not used
    went unnamed, as the name was among those used)."""
    shown = [Path(left).name for left in lefts]
    if len(set(shown)) < len(shown):
        shown = list(lefts)
    from ..progress import progress_bar

    found = []
    # reading (0.5 s a 12 MP PNG) and detecting (0.5 s a view at 1080p) each pair: a bar over the pairs, on stderr
    desc = f"reading and detecting the {board.kind}"
    with progress_bar(total=len(lefts), desc=desc, unit="pair", file=sys.stderr, disable=quiet) as bar:
        for name, left, right in zip(shown, lefts, rights, strict=True):
            try:
                images = read_image(left), read_image(right)
            except InputError as exc:
                bar.clear()
                print(f"rtstereo calibrate: warning: pair {name} skipped: {exc}", file=sys.stderr)
                bar.update()
                continue
            found.append(find_board_views(board, *images, name))
            bar.update()
    if not found:
        raise InputError(f"none of the {counted(len(lefts), 'pair')} could be read (see the warnings above)")
    return found


def _why_unused(unused: list[BoardViews]) -> dict[str, list[str]]:
    """The names of the pairs the calibration could not use, by the reason: "board not found in both images" did not
    say which camera missed it (the one to move, or to refocus)."""
    reasons: dict[str, list[str]] = {}
    for pair in unused:
        if pair.left is None and pair.right is None:
            reason = "board found in neither image"
        elif pair.left is None or pair.right is None:
            reason = f"board not found in the {'left' if pair.left is None else 'right'} image"
        else:  # each view shows part of a ChArUco board, too little of it the same part
            reason = "the two views share too few of the board's corners"
        reasons.setdefault(reason, []).append(pair.name)
    return reasons


def _listed(names: list[str], most: int = 10) -> str:
    """``a, b, c`` for up to ``most`` names, then how many more."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
