"""``rtstereo predict LEFT RIGHT``: disparity of one pair or many."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..api import memory_plan_before_load
from ..batch import BatchJob
from ..batch.job import recorded_inputs
from ..errors import InputError, OutputError, RtStereoError
from ..geometry import DEFAULT_MAX_JUMP_REL
from ..io.atomic import folder_write_problem, name_length_problem, os_reason
from ..sinks import pointcloud  # registers the 3D formats: depth, depth_npy, depth_mm, ply, glb
from ..sinks.files import DEFAULT_FORMATS, FILE_SUFFIXES, FORMATS, output_files, parse_formats
from ..sources.manifest import read_manifest
from ..sources.pairs import PairSource, image_lister, names_one_image, resolve_pairs
from ..text import distance, share
from .batch import add_batch_args, check_engine_args, remove_empty, run_batch
from .common import (
    add_calib_unit_arg,
    add_fit_arg,
    add_model_args,
    check_pair_args,
    given_max_disp,
    kitti_colour_warning,
    output_path_arg,
    predictor_from_args,
    refuse_calib_with_rectify,
    refuse_unused_calib_unit,
    settings_from_args,
)
from .rectification import exposure_hint as _exposure_hint
from .rectification import raw_rig_hint as _raw_rig_hint
from .rectification import rectification_warnings

EPILOG = """examples:
  rtstereo predict left.png right.png -o out/            # 16-bit PNG, PFM, colour PNG, JSON in out/
  rtstereo predict left.png right.png -o disp.pfm        # one file, format from the suffix
  rtstereo predict lefts/ rights/ -o out/ --format png16 # folders: paired in the order of the numbers in the names
  rtstereo predict 'cam0/*.png' 'cam1/*.png' -o out/ --model sgbm --max-disp 128
  rtstereo predict im0.png im1.png --calib calib.txt --format depth,ply --max-depth 20 -o out/   # metric 3D
  rtstereo predict raw_l.png raw_r.png --rectify rig/maps.npz --lr-check --format color,depth_mm,ply -o out/

batches (folders, globs, --pairs): a bad pair is reported (path and reason) and the rest is done; the
exit code is 1 when any pair failed. A full disk stops the batch at the first pair it fails, with a line
saying so. A rerun skips pairs whose outputs are complete (--overwrite
redoes them); files appear only when complete (written under a temporary name, then renamed).
  rtstereo predict --pairs pairs.csv -o out/          # manifest: CSV or Parquet, columns left,right[,name]
  rtstereo predict lefts/ rights/ -o out/ --engine ray --workers 2     # Ray Data on this machine
  RAY_ADDRESS=ray://head:10001 rtstereo predict --pairs /shared/pairs.parquet -o /shared/out --engine ray
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="disparity of image pairs (files, folders, globs, URLs)",
        description="Compute the disparity of the left image of each pair.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for side in ("left", "right"):
        parser.add_argument(
            side, nargs="?", metavar=side.upper(), help=f"{side} image: file, folder, glob, http(s) or file:// URL"
        )
    parser.add_argument(
        "--pairs",
        metavar="MANIFEST",
        help="instead of LEFT RIGHT: a .csv (header row) or .parquet table with columns left,right[,name] "
        "of paths (relative to the manifest) or URLs; name names the outputs (default: the left file's stem; its path "
        "below the left files' shared folder when stems collide, seq1/0001); in a CSV, lines starting with # "
        "are comments",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_path_arg,
        help="output file (.png = 16-bit d*256, .pfm, .npy) for one pair, or a folder (a path or file:// URL)",
    )
    parser.add_argument(
        "--format",
        help=f"comma-separated outputs per pair in a folder, from: "
        f"{', '.join(sorted(FORMATS))} (default: {','.join(DEFAULT_FORMATS)})",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    add_batch_args(parser, "pair")
    add_model_args(parser)
    add_fit_arg(parser)
    add_3d_args(parser)
    parser.set_defaults(func=run)


def add_3d_args(parser: argparse.ArgumentParser) -> None:
    """Calibration, rectification, left-right check and point-cloud cleaning options."""
    group = parser.add_argument_group("3D and confidence")
    group.add_argument(
        "--calib",
        metavar="FILE",
        help="calibration of the (rectified) pair: KITTI calib .txt, Middlebury calib.txt, "
        "OpenCV YAML/JSON with P1/P2 or Q, or rtstereo calibration.json; enables the --format outputs "
        f"{', '.join(pointcloud.NEEDS_CALIBRATION)}",
    )
    add_calib_unit_arg(group)
    group.add_argument(
        "--rectify",
        metavar="MAPS",
        help="rectify raw pairs first with maps.npz from `rtstereo calibrate` (or an OpenCV "
        "YAML with K1 D1 K2 D2 R T and image_width, image_height); also gives the calibration",
    )
    group.add_argument(
        "--lr-check",
        nargs="?",
        type=_lr_check_px,
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
        metavar="REL",
        help="point clouds: drop flying pixels, whose depth jumps by more than REL (relative) "
        f"to a neighbour (default: {DEFAULT_MAX_JUMP_REL}; 0 keeps them)",
    )
    group.add_argument(
        "--align-rows",
        action="store_true",
        help="resample each pair's right view so that its rows meet the left one's, from the vertical offset, "
        "roll and scale difference matched features show (a touch-up for a rig off by a pixel or two; "
        "rtstereo.rectify.align_rows)",
    )
    group.add_argument(
        "--no-rectification-check",
        action="store_true",
        help="skip the check that the first pair is rectified (rows aligned within 0.75 px) and exposed alike "
        "(the right view within 1.2x the left one's brightness at matched features)",
    )


def _lr_check_px(text: str) -> float:
    """argparse ``type=`` for ``--lr-check [PX]``: its value is optional, so ``--lr-check left.png right.png``
    takes the left image for PX; the error says so instead of only 'invalid float value'."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels, got '{text}' (PX is optional, so --lr-check took the next argument for "
            "it): put --lr-check after LEFT RIGHT, or give PX (--lr-check 1 LEFT RIGHT)"
        ) from None


def _calibration_and_rectifier(args: argparse.Namespace):
    from ..io.calibration import read_calibration
    from ..rectify import Rectifier

    refuse_calib_with_rectify(args)
    if args.kitti_cameras and not args.calib:
        raise InputError("--kitti-cameras names the cameras of a KITTI --calib file: give that file with --calib")
    calibration = rectifier = None
    if args.rectify:
        rectifier = Rectifier.from_file(args.rectify, length_unit=args.calib_unit)
    elif args.calib:
        calibration = read_calibration(args.calib, length_unit=args.calib_unit, kitti_cameras=args.kitti_cameras)
    refuse_unused_calib_unit(args)
    return calibration, rectifier


def _summary(name: str, model: str, result) -> str:
    d = result.disparity_px
    export_ms = result.timings_ms.get("export", 0.0)
    shown = f"{export_ms / 1e3:.1f} s" if export_ms >= 1e3 else f"{export_ms:.0f} ms"
    exported = f" (+{shown} once, for its ONNX export at this size)" if export_ms else ""
    line = (
        f"{name}: {d.shape[0]}x{d.shape[1]} (HxW), {model}, {result.timings_ms['total']:.1f} ms{exported}, "
        f"density {share(result.density)}"
    )
    if result.calibration is not None and result.density > 0:
        depth = pointcloud.depth_of(result)
        finite = depth[np.isfinite(depth)]
        line += f", median depth {distance(float(np.median(finite)))}" if finite.size else ", no finite depth"
    return line


def run(args: argparse.Namespace) -> int:
    for flag, named in (("-o", args.output), ("--summary", args.summary)):
        problem = name_length_problem(named) if named else None
        if problem is not None:  # Path.is_dir() raised on it: a traceback
            raise OutputError(f"{flag} {named}: cannot write it: {problem}")
    sources = _sources(args)
    formats = parse_formats(args.format)
    output = Path(args.output) if args.output else None
    to_file = output is not None and _names_a_file(args.output)
    if to_file and len(sources) > 1:
        raise InputError(f"{len(sources)} pairs cannot go into one file {output}: give a folder with -o")
    if to_file and args.format and formats != (FILE_SUFFIXES[output.suffix.lower()],):
        own, asked = FILE_SUFFIXES[output.suffix.lower()], ",".join(formats)
        raise InputError(
            f"-o {args.output} writes one disparity file ({own}): --format {asked} asks for other outputs, "
            f"which go into a folder (--format {asked} -o OUT/)"
        )
    calibration, rectifier = _calibration_and_rectifier(args)
    if to_file and (calibration is not None or rectifier is not None) and "depth" in output.stem.lower():
        # A depth name with a calibration asks for depth: the one file would hold disparity in pixels, unsaid.
        depth_format = {".png": "depth_mm", ".pfm": "depth", ".npy": "depth_npy"}[output.suffix.lower()]
        raise InputError(
            f"-o {args.output} writes one pair's disparity, in pixels, not its depth: depth maps in metres are "
            f"written into a folder, one per pair (--format {depth_format} -o OUT/)"
        )
    metric = [f for f in formats if f in pointcloud.NEEDS_CALIBRATION]
    if metric and not to_file and calibration is None and rectifier is None:
        raise InputError(
            f"--format {','.join(metric)} needs the cameras' calibration (focal length, "
            "baseline): pass --calib FILE or --rectify maps.npz (see `rtstereo calibrate`)"
        )
    max_jump = DEFAULT_MAX_JUMP_REL if args.max_jump is None else args.max_jump
    if not max_jump >= 0:  # not "< 0": nan would pass, and fail every pair at writing time
        raise InputError(f"--max-jump must be >= 0 (0 keeps flying pixels), got {max_jump}")
    if args.max_depth is not None and not args.max_depth > 0:
        raise InputError(f"--max-depth must be > 0 metres, got {args.max_depth}")
    clouds = not to_file and any(f in ("ply", "glb") for f in formats)
    cleaning = [o for o, v in (("--max-depth", args.max_depth), ("--max-jump", args.max_jump)) if v is not None]
    if cleaning and not clouds:  # depth maps keep every pixel: the options would be ignored
        named, verb = " and ".join(cleaning), "clean" if len(cleaning) > 1 else "cleans"
        written, fix = (
            (f"-o {args.output}", "write them into a folder (--format ply -o OUT/)")
            if to_file
            else (f"--format {','.join(formats)}", "add ply or glb to --format")
        )
        raise InputError(f"{named} {verb} point clouds, and {written} writes none: {fix}, or leave {named} out")
    # inf would keep every pixel the right view sees, and write "Infinity" into each pair's JSON (not JSON)
    if args.lr_check is not None and not (math.isfinite(args.lr_check) and args.lr_check > 0):
        raise InputError(f"--lr-check must be > 0 pixels (a finite number), got {args.lr_check}")
    check_engine_args(args, output if not to_file else None)
    job = BatchJob(
        output=output,
        formats=formats,
        to_file=to_file,
        calibration=calibration,
        rectifier=rectifier,
        lr_check_px=args.lr_check,
        cloud=pointcloud.PointCloudOptions(max_depth_m=args.max_depth, max_jump_rel=max_jump or None),
        overwrite=args.overwrite,
        align_rows=args.align_rows,
        colour_max_disp_px=given_max_disp(args),
    )
    job.check_outputs(sources)
    if args.pairs is None and job.writes_folder:
        _refuse_outputs_read_as_inputs(args, job, sources)
    where = f"written to {output}" if output is not None else "nothing written (give -o FILE_OR_FOLDER)"
    # Two files (or -o one file) are one pair, whose error is the command's; a folder or glob that holds one
    # pair is a batch of one, as a one-pair manifest is: a rerun skips it, a failure is listed (exit code 1).
    two_files = args.pairs is None and names_one_image(args.left) and names_one_image(args.right)
    one_pair = len(sources) == 1 and (two_files or to_file) and args.engine == "local"
    if one_pair and args.summary is None:
        return _run_one(args, job, sources[0], where)
    if one_pair:  # --summary asks for the batch's table (it wrote none): a batch of one, which always writes
        job = dataclasses.replace(job, overwrite=True)
    made = _make_folder(output) if job.writes_folder else []
    try:
        if not args.no_rectification_check or args.calib:
            _check_first_pair(args, job, sources)
        return run_batch(args, job, sources, "predict", where, made=made).exit_code
    except BaseException:  # a usage error found as the model loads (no weights, an unknown setting), or Ctrl-C then
        remove_empty(made)
        raise


def _refuse_outputs_read_as_inputs(args: argparse.Namespace, job: BatchJob, sources: list[PairSource]) -> None:
    """Refuse an output folder where the images this run writes (16-bit disparity, previews) would be listed by the
    LEFT or RIGHT folder or glob: the same command again, to resume, found more images on one side than on the
    other (or paired outputs with inputs).

    Raises:
        InputError: the first such file, and the argument that would list it.
    """
    files: list[Path] | None = None
    for side, argument in (("left", args.left), ("right", args.right)):
        if names_one_image(argument):
            continue
        if files is None:
            files = [file for source in sources for file in output_files(job.output, source.name, job.formats) or []]
        lists = image_lister(argument)
        for file in files:
            if lists(file):
                images = [f for f in ("png16", "color", "depth_mm") if f in job.formats]
                raise InputError(
                    f"-o {job.output}: {file}, which this run writes, would be read as a {side} image by the next "
                    f"run over {argument} (a rerun to resume, too): give -o another folder, or --format without "
                    f"{', '.join(images)}"
                )


def _names_a_file(text: str) -> bool:
    """Whether ``-o`` names one output file (a known suffix) rather than a folder.

    A path ending in ``/`` or an existing folder is a folder; a path with another suffix is refused,
    so that ``-o disp.txt`` does not quietly become a folder called ``disp.txt``.

    Raises:
        InputError: a suffix that is neither a known file format nor a folder.
    """
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return False
    suffix = path.suffix.lower()
    if suffix in FILE_SUFFIXES:
        return True
    if suffix:
        known = ", ".join(f"{s} ({FILE_SUFFIXES[s]})" for s in FILE_SUFFIXES)
        metric = {".ply": "ply", ".glb": "glb"}.get(suffix, "depth" if "depth" in path.stem.lower() else None)
        if metric is not None:  # a point cloud or depth map is one of the outputs written into a folder
            raise InputError(
                f"-o {text}: one pair's disparity goes to a file ending in {known}; {metric} outputs are "
                f"written into a folder, one per pair (--format {metric} -o OUT/)"
            )
        raise InputError(
            f"-o {text}: unknown output suffix '{path.suffix}': one pair's disparity goes to a file ending in "
            f"{known}; for a folder end the path with '/' (-o {text}/)"
        )
    return False


def _sources(args: argparse.Namespace) -> list[PairSource]:
    check_pair_args(args)
    if args.pairs is not None:
        return read_manifest(args.pairs)  # it warns of a pair's files listed again
    return resolve_pairs(args.left, args.right)


def _run_one(args: argparse.Namespace, job: BatchJob, source: PairSource, where: str) -> int:
    """One pair given as two files: its errors are the run's errors (one line, exit code 2)."""
    if job.output is not None:  # before the model loads and runs (minutes for a large pair), as a batch checks
        folder = job.output if job.writes_folder else job.output.parent
        problem = folder_write_problem(folder)
        if problem is not None:
            raise OutputError(f"cannot write {job.output}: {problem}")
    # A pair too large for the budget is refused before the model loads (seconds, more with torch), where the plan is
    # known from the registry, and else by the loaded model: in the same words.
    job.refuse_over_budget(None, source, memory_plan_before_load(args.model, settings_from_args(args), args.backend))
    predictor = predictor_from_args(args)
    job.refuse_over_budget(predictor, source)
    with _named_warnings(source.name):
        pair, preparation = job.prepare_recorded(source.load(0))
    _warn_about_first(args, pair, source.name, job.align_rows)
    if not args.quiet:
        predictor.memory_plan(pair.size_hw)  # a pair no size of which fits the budget is refused, not said to take long
        note = large_pair_note(predictor, *pair.size_hw)
        if note is not None:  # one pair has no progress bar: a minute of silence looked like a hang
            print(f"rtstereo predict: note: {source.name}: {note}", file=sys.stderr, flush=True)
    with _named_warnings(source.name):
        result = job.recorded(job.predict(predictor, pair), preparation)
        # recorded as a batch records them: without it, a batch rerun skipped this pair on its files alone, and kept
        # those of this run's options as its own
        job.write(result, source.name, job.made_with(predictor) | recorded_inputs(source.left, source.right))
    if not args.quiet:
        print(_summary(source.name, predictor.name, result))
        print(f"1 pair, {result.timings_ms['total']:.1f} ms per pair, {where}")
    return 0


@contextlib.contextmanager
def _named_warnings(name: str) -> Iterator[None]:
    """The Python warnings of one pair's reading, running or writing, each named by the pair as its rectification
    warning is and as a batch names every pair's (``l: 10.2 % of the map sits at the top ...``): they came
    without the name. Warned again on leaving, errors included, in their order and with their category."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:  # an error too: a 12-bit file read as 16 bits said only "left and right are the same picture"
        for warning in caught:
            text = str(warning.message)
            named = text if text.startswith(f"{name}: ") else f"{name}: {text}"  # some name it (the point cloud's)
            warnings.warn(named, warning.category, stacklevel=3)


# A pair of at least this many megapixels (twice 1080p) is announced before it runs: it takes seconds to minutes.
LARGE_PAIR_MP = 4.0
# Seconds per megapixel on the CPU, measured on 1600x1200 pairs on 2 cores (session 22); the networks' rate
# grows with the size (the hybrid: 2.2 s/MP at 800x600, 3.9 at 1600x1200, ~4.6 at 4000x3000: 55 s).
CPU_S_PER_MP = {"sgbm": 1.1, "rtnet-v5": 2.3, "hybrid": 4.6}


def large_pair_note(predictor, height_px: int, width_px: int) -> str | None:
    """What to say before a large pair runs (its size, and on the CPU a rough time), or ``None`` for a small one."""
    megapixels = height_px * width_px / 1e6
    if megapixels < LARGE_PAIR_MP:
        return None
    note = f"{height_px}x{width_px} (HxW, {megapixels:.1f} MP) with {predictor.name} takes a while"
    rate = CPU_S_PER_MP.get(predictor.name)
    on_cpu = predictor.backend.describe().get("device", "cpu") == "cpu"
    if rate is not None and on_cpu:
        # OpenCV's matchers run on the CPU whatever the device: --device cuda is warned about for them
        faster = "more cores" if _classical(predictor.name) else "more cores or --device cuda"
        note += f": roughly {rate * megapixels:.0f} s on 2 CPU cores (less with {faster})"
    return note


def _classical(name: str) -> bool:
    """Whether the model is one of OpenCV's matchers (``sgbm``, ``bm``), which run on the CPU alone."""
    from ..models import get_spec, resolve_alias

    try:
        return get_spec(resolve_alias(name)).kind == "classical"
    except RtStereoError:  # a file's name, say
        return False


def _warn_if_unrectified(
    pair,
    name: str,
    exposure: str = "on",
    align_rows: bool = False,
    rig_hint: str | None = None,
    rectified_by: str | None = None,
) -> None:
    """Print :func:`~rtstereo.cli.rectification.rectification_warnings` of the pair, named ``name``."""
    for message in rectification_warnings(pair, exposure, align_rows, rig_hint, rectified_by)[0]:
        print(f"rtstereo predict: warning: {name}: {message}", file=sys.stderr)


def _make_folder(folder: Path) -> list[Path]:
    """Make the batch's output folder and check that files can be made in it, before any pair runs.

    Returns:
        The folders it created, the output folder first (none when it existed).

    Raises:
        OutputError: the folder cannot be created, or exists and cannot be written (a read-only disk or
            folder): a usage error, not one failure per pair.
    """
    missing = [path for path in (folder, *folder.parents) if not os.path.lexists(path)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {os_reason(exc, folder / 'x')}") from None
    problem = folder_write_problem(folder)
    if problem is not None:
        remove_empty(missing)
        raise OutputError(f"cannot write into output folder {folder}: {problem}")
    return missing


# A batch whose first pairs cannot be read, or are too plain to be judged (a lens cap, a blank wall), has its
# rectification checked on the first of this many that can be, as video and live check their first frames.
CHECK_TRIES = 5


def _check_first_pair(args: argparse.Namespace, job: BatchJob, sources: list[PairSource]) -> None:
    """:func:`_warn_about_first` of a batch's first pair that can be read, its rectification check going on to
    the next pairs, among the first :data:`CHECK_TRIES`, until one can be judged (``--align-rows`` says of the
    first that it left it as it was). Pairs that cannot be read are left to the batch, which reports them."""
    from ..io.images import LOW_BIT_DEPTH_SAID, header_size_hw
    from ..runtime.memory import IO_BYTES_PER_PX, memory_budget

    budget, first = memory_budget().bytes, True
    for source in sources[:CHECK_TRIES]:
        size_hw, right_hw = header_size_hw(source.left), header_size_hw(source.right)
        if size_hw is not None and IO_BYTES_PER_PX * size_hw[0] * size_hw[1] > budget:
            continue  # no model fits a pair whose images alone do not: not decoded here (seconds, gigabytes)
        if size_hw is not None and right_hw is not None and size_hw != right_hw:
            continue  # no pair: the batch refuses it from the same headers, undecoded
        try:
            # What reading it warns about, the batch reports as the pair's: ignored here, and not counted as said.
            with warnings.catch_warnings(), LOW_BIT_DEPTH_SAID.unspent():
                warnings.simplefilter("ignore")
                loaded = source.load(0)
            pair = job.prepare(loaded)
        except RtStereoError:
            continue
        messages, judged = [], True
        if not args.no_rectification_check:
            hints = _exposure_hint(args), job.align_rows, _raw_rig_hint(args.calib), args.rectify
            messages, judged = rectification_warnings(pair, *hints)
        if judged or first:  # of a pair that cannot be judged, only --align-rows's word that it left it alone
            for message in messages:
                print(f"rtstereo predict: warning: {source.name}: {message}", file=sys.stderr)
        if first:
            _warn_about_kitti_colours(args, pair, source.name)
        if judged:
            return
        first = False


def _warn_about_first(args: argparse.Namespace, pair, name: str, align_rows: bool) -> None:
    """Warn when the first pair is not rectified or exposed differently (unless --no-rectification-check), and
    when its colour images come with a KITTI calibration read for the grey cameras."""
    if not args.no_rectification_check:
        _warn_if_unrectified(pair, name, _exposure_hint(args), align_rows, _raw_rig_hint(args.calib), args.rectify)
    _warn_about_kitti_colours(args, pair, name)


def _warn_about_kitti_colours(args: argparse.Namespace, pair, name: str) -> None:
    """Warn when the pair's colour images come with a KITTI calibration read for the grey cameras."""
    kitti = kitti_colour_warning(args.calib, args.kitti_cameras, pair.left)
    if kitti is not None:
        print(f"rtstereo predict: warning: {name}: {kitti}", file=sys.stderr)
