"""``rtstereo eval --model NAME PATH...``: accuracy against ground truth."""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from pathlib import Path

from ..batch.job import failure_reason
from ..datasets import LAYOUTS, find_samples
from ..datasets.readers import Sample
from ..errors import InputError
from ..eval import EvalInterrupted, clamp_search_ranges, evaluate, first_names
from ..io.atomic import terminate_as_interrupt
from ..models import get_spec, is_onnx_file, resolve_alias
from ..text import counted, on_one_line, shortened
from . import EXIT_INTERRUPTED
from .batch import FAILURES_LISTED, add_engine_args, predictor_options
from .bench import check_output_folder
from .common import add_model_args, output_path_arg, predictor_from_args, print_out, settings_from_args

EPILOG = """expected files (in the folders given or any folder under them; ground truth of the left view):
  middlebury2001/2003  im2, im6 (tsukuba: im3, im4 or scene1.row3.col3, scene1.row3.col4; map: im0, im1)
                       .png/.ppm/.pgm and 8-bit disp2 (disp3 or truedisp.row3.col3; disp0) .pgm/.png, value / 8
                       (tsukuba / 16; 2003 at 1800, 900, 450 px wide / 1, 2, 4), 0 = unknown;
                       eval_masks/nonocc.png, else nonocc.png in the scene folder (255 = non-occluded),
                       when present: read for the noc columns
  middlebury2005       view1.png, view5.png, disp1.png (value / 1, 2 or 3 by size, 0 = unknown); a mask
                       as for 2001/2003 when present; views under Illum2/Exp1 (the all-views download)
  middlebury2014, eth3d  im0.png, im1.png, disp0GT.pfm or disp0.pfm (inf = unknown), calib.txt (ndisp: the
                       range searched), mask0nocc.png (255 = non-occluded) when present; ETH3D's ground
                       truth also in two_view_training_gt/SCENE beside two_view_training/SCENE; in a set of
                       your own, disp0GT.npy, .png (16-bit) or .tif (float) for disp0GT.pfm
  kitti2012            colored_0/, colored_1/ (or image_0/, image_1/) with NNNNNN_10.png, and disp_occ/
                       (all pixels), disp_noc/ (non-occluded): 16-bit PNG, value / 256, 0 = invalid; in a
                       set of your own without NNNNNN_10.png frames, every image, with X.png for image X
  kitti2015            image_2/, image_3/, disp_occ_0/, disp_noc_0/, as KITTI 2012
  sceneflow            IMAGES/left/X.png, IMAGES/right/X.png with disparity/left/X.pfm beside IMAGES
                       (RGB_cleanpass, RGB_finalpass, frames_cleanpass, frames_finalpass or images) and
                       occlusion/left/X.png (255 = occluded) when present; in a set of your own, X.npy, a
                       16-bit X.png (value / 256, 0 = invalid) or a float X.tif for X.pfm; the FlyingThings3D
                       subset's train/image_clean/{left,right} with train/disparity/left/X.pfm
  drivingstereo        train-left-image/SEQ/X.jpg, train-right-image/SEQ/X.jpg, train-disparity-map/SEQ/X.png
                       (16-bit PNG, value / 256, 0 = invalid); the test split's
                       test-left-image/left-image-half-size/SEQ (or full-size) alike

examples:
  rtstereo eval --model sgbm ../shared/data/real
  rtstereo eval --model default --max-disp 64 my_scenes/ -o results/

The mean row is over scenes, each weighing the same (not over pixels); its noc columns are over the scenes
with a mask that leaves a pixel with ground truth (an empty mask's noc cells read "-").
Results: OUTPUT/MODEL.json and .md. Ctrl+C keeps the scenes scored (exit code 130).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="accuracy on stereo datasets with ground truth",
        # the epilog's table keeps its lines (raw), so the description is wrapped here
        description=textwrap.fill(
            "Score a method on datasets with ground truth: EPE, bad-0.5/1/2/3/4 and KITTI D1 over all "
            "pixels with ground truth, and over non-occluded pixels where the dataset has a mask. "
            f"Layouts detected from the files: {', '.join(LAYOUTS)}. Classical methods, and the hybrid's "
            "SGBM (default), search each scene's own disparity range unless --max-disp (or --set max_disp=) is given "
            "(predict and bench search the model's default, 192 px). A scene that cannot be "
            "read or scored is reported and the rest is scored (exit code 1 at the end); --engine ray scores scenes "
            "on a pool of Ray workers.",
            width=80,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="dataset folder(s): a scene, a dataset, or several")
    parser.add_argument(
        "-o",
        "--output",
        default="rtstereo-eval",
        type=output_path_arg,
        help="folder for the JSON and Markdown results (default: %(default)s)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument(
        "--max-gt-disp",
        type=_cut_arg,
        metavar="PX",
        help="leave out ground truth of PX px or more, as SceneFlow's usual figures do with 192 (joins the results' "
        "name, e.g. sgbm_max_gt_disp=192.json; default: every pixel with ground truth counts)",
    )
    batch = parser.add_argument_group("batches and engines")
    batch.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first scene that fails (default: report it, score the rest, exit with code 1)",
    )
    add_engine_args(batch)
    add_model_args(parser)
    parser.set_defaults(func=run)


def _cut_arg(text: str) -> float:
    """argparse ``type=`` for ``--max-gt-disp``: a finite number of pixels above 0 (0 or below leaves no pixel). A
    number past a float's range is said to be too large and a long value echoed shortened, as ``--max-disp`` says
    them (``1e999`` was "expected a number of pixels above 0", and 5000 digits came back whole).

    Examples:
        >>> _cut_arg("192"), _cut_arg("96.5")
        (192.0, 96.5)
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isinf(value) and value > 0 and "inf" not in text.lower():
        raise argparse.ArgumentTypeError(f"{shortened(text.strip())} is too large")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of pixels above 0, got '{shortened(text)}'")
    return value


def run(args: argparse.Namespace) -> int:
    from ..runtime.memory import check_budget_setting

    check_budget_setting()  # each scene asks it: a bad value failed every scene, not the run
    # A path of several that holds no known layout fails by name and the others are scored, as a batch goes on past
    # a bad pair (it stopped the whole run, exit code 2); --fail-fast stops there, before any scene.
    failed_paths: list[tuple[str, str]] = []
    samples = find_samples(*args.paths, unreadable=None if args.fail_fast else failed_paths)
    for _, reason in failed_paths:  # the reason names the path
        print(f"rtstereo eval: failed: {reason}", file=sys.stderr)
    # Scenes without ground truth (a KITTI testing split, SceneFlow images without disparity) cannot be
    # scored: said once, here, rather than left out of the table unsaid.
    unscored = [s.name for s in samples if s.gt_path is None]
    looked_for = _looked_for([s for s in samples if s.gt_path is None])
    samples = [s for s in samples if s.gt_path is not None]
    if not samples:
        raise InputError(
            f"no scene with ground truth under {', '.join(args.paths)}: {counted(len(unscored), 'scene')} found "
            f"({first_names(unscored)}), none with a disparity map to score against{looked_for}"
            + "".join(f"; {given}: no known layout" for given, _ in failed_paths)
        )
    if unscored:
        print(
            f"rtstereo eval: note: {counted(len(unscored), 'scene')} without ground truth left out: "
            f"{first_names(unscored)}{looked_for}",
            file=sys.stderr,
        )
    name = resolve_alias(args.model)
    # A range given either way (--max-disp or --set max_disp=) is searched on every scene: with --set it was
    # replaced by each scene's own range, unsaid, in results named after it.
    range_given = "max_disp" in settings_from_args(args)
    per_scene_range = not range_given and not is_onnx_file(name) and _is_classical(name)
    notes: list[str] = []
    if per_scene_range:
        samples, notes = clamp_search_ranges(samples, quarter_width_cap=_kind(name) == "hybrid")

    def range_of(sample: Sample) -> int | None:
        return (sample.max_disp_hint_px or None) if per_scene_range else None

    cache: dict[int | None, object] = {}
    if args.engine == "ray":
        if args.workers is not None and args.workers < 1:
            raise InputError(f"--workers must be >= 1, got {args.workers}")
    else:
        if args.workers is not None or args.ray_address is not None:
            raise InputError("--workers and --ray-address apply to --engine ray only")
        # A usage error (an unknown model or setting, a missing file, a range the model refuses) is the
        # same for every scene: it stops the run here, before any scene is scored or a result written
        # (run_ray_eval makes the same check before Ray starts). The first scene's predictor checks it, and
        # scores that scene: one made with the run's own settings was left unused when every scene has its range
        # (for the hybrid, a session of its network opened for nothing).
        first = range_of(samples[0])
        cache[first] = predictor_from_args(args, **({"max_disp": first} if first else {}))
    for note in notes:
        print(f"rtstereo eval: note: {note}", file=sys.stderr)

    # now, not after every scene is scored
    check_output_folder(Path(args.output), "evaluation results", "MODEL.json and MODEL.md")

    def predictor_for(sample: Sample):
        key = range_of(sample)
        if key not in cache:
            cache[key] = predictor_from_args(args, **({"max_disp": key} if key else {}))
        return cache[key]

    try:
        report = _score(args, samples, name, per_scene_range, predictor_for)
    except EvalInterrupted as exc:  # Ctrl-C or kill: the scenes scored are kept, as bench keeps its rows
        report = exc.report
        if not (report.scenes or report.failures):
            raise KeyboardInterrupt from None  # nothing scored: nothing to print or to write over earlier results
    report.without_ground_truth = unscored + report.without_ground_truth  # left out here, before scoring
    report.failed_paths = [{"path": given, "error": reason} for given, reason in failed_paths]
    report.device = args.device
    report.max_gt_disp_px = args.max_gt_disp
    if args.engine == "ray":
        for failure in report.failures:
            scene, left = on_one_line(failure["name"]), on_one_line(failure["left"])
            print(f"rtstereo eval: failed: {scene} ({left}): {failure['error']}", file=sys.stderr)
    print_out(report.table())
    # A checkpoint or .onnx path names its results after the file, not the whole path; --weights and the
    # settings given (--set, --max-disp, --iters: one name for one setting however it was given) join the
    # name, so that two forms of one model (AnyNet's SceneFlow and KITTI files, its stage 3 and 4, CREStereo
    # at 2 and 20 iterations, SGBM at each scene's range and at 64) do not overwrite each other's files.
    label = _file_label(name) if Path(name).suffix else name
    if args.weights:
        label += f"_weights={_file_label(str(args.weights))}"
    label += "".join(f"_{key}={value}" for key, value in sorted(settings_from_args(args).items()))
    label += _runtime_label(name, args.backend, args.precision)
    if args.max_gt_disp is not None:  # figures over fewer pixels: they must not replace those over all of them
        label += f"_max_gt_disp={args.max_gt_disp:g}"
    stem = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label)
    done = len(report.scenes) + len(report.failures)
    # partial results, kept from replacing an earlier complete run's as an interrupted run's are
    report.stopped_at_failure = bool(
        args.fail_fast and report.failures and done < len(samples) and not report.interrupted
    )
    json_path, md_path = report.save(args.output, stem)
    print_out(f"results: {json_path} {md_path}")
    if report.failures:
        # as predict names its failed pairs: the first few, each said on its own line already (a set of 400 broken
        # frames gave a line of 400 names)
        names = first_names([on_one_line(f["name"]) for f in report.failures], shown=FAILURES_LISTED)
        print(
            f"rtstereo eval: {counted(len(report.failures), 'scene')} failed: {names} (listed in {json_path})",
            file=sys.stderr,
        )
    if report.failed_paths:
        paths = ", ".join(f["path"] for f in report.failed_paths)
        print(
            f"rtstereo eval: {counted(len(report.failed_paths), 'path')} not scored, no known layout: {paths} "
            f"(listed in {json_path})",
            file=sys.stderr,
        )
    kept = f" (the complete results of an earlier run, {json_path.parent / stem}.json, are kept)"
    kept = kept if json_path.stem != stem else ""
    if report.stopped_at_failure:
        print(
            f"rtstereo eval: --fail-fast: stopped at the first failure; {len(samples) - done} of "
            f"{counted(len(samples), 'scene')} not scored{kept}",
            file=sys.stderr,
        )
    if report.interrupted:
        print(
            f"rtstereo eval: interrupted after {done} of {counted(len(samples), 'scene')}: the scenes scored are "
            f'written to {json_path} ("interrupted": true){kept}, the rest were not scored',
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if report.failures or report.failed_paths else 0


def _score(args: argparse.Namespace, samples: list[Sample], name: str, per_scene_range: bool, predictor_for):
    """The report of the chosen engine; SIGTERM (``kill``) stops it as Ctrl-C does.

    Raises:
        EvalInterrupted: Ctrl-C or SIGTERM, with the scenes scored before it.
    """
    from tqdm import tqdm

    from ..progress import progress_bar

    if args.engine == "ray":
        from ..scale.eval import run_ray_eval

        return run_ray_eval(
            samples,
            predictor_options(args),
            name,
            per_scene_range=per_scene_range,
            workers=args.workers,
            address=args.ray_address,
            fail_fast=args.fail_fast,
            progress=not args.quiet,
            max_gt_disp_px=args.max_gt_disp,
        )
    progress = lambda items: progress_bar(items, desc="eval", unit="scene", file=sys.stderr, disable=args.quiet)  # noqa: E731

    def on_error(sample: Sample, exc: Exception) -> bool:
        scene, left = on_one_line(sample.name), on_one_line(sample.left_path)
        reason = failure_reason(exc, sample.files())
        tqdm.write(f"rtstereo eval: failed: {scene} ({left}): {reason}", file=sys.stderr)
        return not args.fail_fast

    with terminate_as_interrupt():
        return evaluate(
            predictor_for, samples, model=name, progress=progress, on_error=on_error, max_gt_disp_px=args.max_gt_disp
        )


# Checkpoint names a run folder gives every run (`rtstereo train`'s best.pt and last.pt, the packaged
# networks' state.pt, RT-Stereo's onnx_export.py's model.onnx): alone they would make two runs' results overwrite
# each other.
RUN_CHECKPOINT_STEMS = ("best", "last", "state", "model")


def _file_label(path: str) -> str:
    """A model or weights file's part of the results' name: its stem, with its folder's name in front when
    the stem is one every run folder has.

    Examples:
        >>> _file_label("runs/mine/best.pt"), _file_label("best.pt"), _file_label("w/anynet_kitti2012.tar")
        ('mine_best', 'best', 'anynet_kitti2012')
        >>> _file_label("rt-stereo/fp16/model.onnx")
        'fp16_model'
    """
    file = Path(path)
    if file.stem in RUN_CHECKPOINT_STEMS and file.parent.name not in ("", ".."):
        return f"{file.parent.name}_{file.stem}"
    return file.stem


def _runtime_label(name: str, backend: str | None, precision: str) -> str:
    """The part of the results' name that a network's runtime adds: a backend other than its natural one
    (torch) and a precision other than fp32, so that AnyNet on ONNX Runtime, or in fp16, does not overwrite
    its PyTorch fp32 results. Classical methods have one backend; precision is a network's. An ONNX file
    runs on ONNX Runtime whatever the backend asked: it says so, as `adapt -o mycam.onnx` writes `mycam.pt`
    beside it and the two files' results (both named `mycam`) replaced each other's. A packaged ONNX network
    (``rtnet-v5``) has no other backend and no checkpoint of its name: its results are ``rtnet-v5.json``.

    Examples:
        >>> _runtime_label("anynet", "onnxruntime", "fp16"), _runtime_label("anynet", "torch", "fp32")
        ('_backend=onnxruntime_precision=fp16', '')
        >>> _runtime_label("sgbm", "opencv", "bf16"), _runtime_label("net.onnx", None, "fp16")
        ('', '_backend=onnxruntime_precision=fp16')
        >>> _runtime_label("hybrid", None, "fp16"), _runtime_label("runs/a/best.pt", "onnxruntime", "fp32")
        ('_precision=fp16', '_backend=onnxruntime')
        >>> _runtime_label("rtnet-v5", None, "fp32"), _runtime_label("rtnet-v5", "onnxruntime", "fp16")
        ('', '_precision=fp16')
    """
    onnx_file = is_onnx_file(name)
    kind = "onnx" if onnx_file else _kind(name)
    if onnx_file:
        backend = "onnxruntime"
    label = f"_backend={backend}" if (kind == "network" or onnx_file) and backend not in (None, "torch") else ""
    if precision != "fp32" and kind != "classical":  # the hybrid's network, on TensorRT in fp16, too
        label += f"_precision={precision}"
    return label


def _kind(name: str) -> str:
    """The registry kind of a model argument (``network`` for a checkpoint path)."""
    try:
        return get_spec(name).kind
    except Exception:  # a checkpoint path: a network
        return "network"


def _looked_for(unscored: list[Sample]) -> str:
    """Where the first scene without ground truth would have it: a set of one's own kept elsewhere (``disparity/X.pfm``
    for ``disparity/left/X.pfm``) was told "none with a disparity map", not where one was looked for."""
    first = next((s for s in unscored if s.extra.get("gt_expected")), None)
    return f" (looked for {first.name}'s at {first.extra['gt_expected']})" if first else ""


def _is_classical(name: str) -> bool:
    """Whether the method's ``max_disp`` is an SGBM search range (classical methods, the hybrid)."""
    try:
        return get_spec(name).kind in ("classical", "hybrid")
    except Exception:  # a checkpoint path: a network
        return False
