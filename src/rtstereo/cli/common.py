"""Options every verb that runs a model shares, and how they become a Predictor."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api import BACKENDS, _same_setting, load
from ..errors import InputError, OutputError, parse_size_hw  # noqa: F401 (parse_size_hw: the CLI's modules import it from here)
from ..io.atomic import folder_write_problem, not_a_folder
from ..runtime.predictor import FITS, Predictor
from ..runtime.providers import check_thread_count, cpu_spinning, default_threads, limit_threads
from ..text import shortened

if TYPE_CHECKING:  # what rtstereo.load returns for the hybrid
    from ..runtime.hybrid import HybridPredictor


# The files a network adapted by `rtstereo adapt -o` or `--adapt-save` is written to (a PyTorch checkpoint).
ADAPTED_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
# --threads in the words of every verb whose libraries it sets (bench said them in another order)
THREADS_HELP = (
    "CPU threads of ONNX Runtime, OpenCV, PyTorch and the hybrid's own (default: $RTSTEREO_THREADS, else each "
    "library's own)"
)


def output_path_arg(text: str) -> str:
    """An output option's path (argparse ``type``): a ``file://`` URL as the path it names, as inputs take them
    (``-o file:///data/out/`` made a folder named ``file:`` in the current one); a web URL, or a file URL of another
    host, refused in one line, as nothing is uploaded; and ``-``, which other tools read as standard output.

    Examples:
        >>> output_path_arg("file:///data/my%20out/"), output_path_arg("out/d.pfm")
        ('/data/my out/', 'out/d.pfm')
    """
    from ..io.download import file_url_path, is_url

    if text == "-":  # what other tools read as standard output made a file or folder named "-" here, unsaid
        raise argparse.ArgumentTypeError(
            "-: outputs are written to files, not to standard output: give a path (./- for one named '-')"
        )
    if not is_url(text):
        return _named_before_its_suffix(text)
    host = urllib.parse.urlparse(text).netloc
    path = file_url_path(text)
    if path is None or host.lower() not in ("", "localhost"):
        raise argparse.ArgumentTypeError(
            f"{text}: outputs are written to local files, not to URLs: give a path (or a file:///path URL)"
        )
    return _named_before_its_suffix(path)


# The suffixes of the files rtstereo's verbs write (maps, previews, videos, models, reports, calibrations, clouds).
OUTPUT_FILE_SUFFIXES = (
    *(".png", ".pfm", ".npy", ".jpg", ".jpeg", ".tif", ".tiff", ".mp4", ".m4v", ".mov", ".onnx", ".pt", ".pth"),
    *(".ckpt", ".json", ".csv", ".parquet", ".md", ".txt", ".npz", ".yaml", ".yml", ".xml", ".ply", ".glb", ".rrd"),
)


def _named_before_its_suffix(path: str) -> str:
    """``path``, unless its last part is a suffix alone (``-o .png``), which Python reads as a hidden name without a
    suffix: predict made a hidden folder ``.png``, where a file was meant.

    Raises:
        argparse.ArgumentTypeError: such a path (one ending in ``/`` names a folder, and is kept).
    """
    name = os.path.basename(path)
    if name.lower() not in OUTPUT_FILE_SUFFIXES:
        return path
    example = os.path.join(os.path.dirname(path), f"out{name}")
    raise argparse.ArgumentTypeError(
        f"{path}: a suffix without a name, which would write a hidden file or folder named {name}: give the name "
        f"before it (e.g. {example}), or end the path with '/' for a folder of that name"
    )


def add_calib_unit_arg(group) -> None:
    """``--calib-unit``: the length unit of OpenCV files given to ``--calib`` or ``--rectify``; and
    ``--kitti-cameras``: which cameras of a KITTI calibration file the pairs come from."""
    group.add_argument(
        "--calib-unit",
        choices=("m", "cm", "mm"),
        help="length unit of OpenCV calibration files, for --calib and --rectify (default: the file's "
        "length_unit entry, else m)",
    )
    group.add_argument(
        "--kitti-cameras",
        type=kitti_cameras_arg,
        metavar="L,R",
        help="the cameras of a KITTI --calib file the pairs come from: 0,1 grey or 2,3 colour (default: 0,1 for "
        "KITTI 2012 files, 2,3 for KITTI 2015 ones)",
    )


def check_output_file(output: str | Path, option: str = "-o") -> None:
    """Refuse an output file that cannot be written before the minutes of training, not after them (an output folder
    is :func:`rtstereo.cli.bench.check_output_folder`'s, the name this one had too).

    Args:
        output: the file to write, as given: a trailing separator (``m.onnx/``), which ``Path`` drops, names a folder.
        option: the option that named it, for the message (``rtstereo video --adapt-save`` checks its file too).

    Raises:
        OutputError: ``output`` is a folder or ends with a folder separator, or the folder it goes to is a file or
            cannot be written.
    """
    text = os.fspath(output)
    if text.endswith(("/", os.sep)):  # `-o m.onnx/` wrote the file m.onnx, where predict's `-o x/` is a folder
        raise OutputError(
            f"{option} {text}: ends with a folder separator, which names a folder; give the file to write, e.g. "
            f"{option} {text.rstrip('/' + os.sep)}"
        )
    output = Path(text)
    if output.is_dir():
        raise OutputError(f"{option} {output}: a folder; give the file to write, e.g. {output / 'mycam.pt'}")
    existing = next(p for p in (output.parent.absolute(), *output.parent.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"{option} {output}: {not_a_folder(existing)}")
    if folder_write_problem(existing) is not None:
        raise OutputError(f"{option} {output}: cannot write in {existing}")


def refuse_calib_with_rectify(args: argparse.Namespace) -> None:
    """``--calib`` with ``--rectify`` is refused in the same words by every verb that takes both."""
    if args.calib and args.rectify:
        raise InputError(
            "give --calib or --rectify, not both: the rectification maps carry the calibration of the rectified images"
        )


# The unit a calibration format other than OpenCV's states itself (io.calibration.rectified_format's names).
_STATED_UNITS = {"rtstereo JSON": "metres", "Middlebury calib.txt": "millimetres", "KITTI calib": "metres"}


def refuse_unused_calib_unit(args: argparse.Namespace) -> None:
    """``--calib-unit`` where it changes nothing is refused, not ignored: without a calibration file, or with
    one that states its own unit (``maps.npz``, rtstereo JSON, Middlebury ``calib.txt``, KITTI); it applies to
    OpenCV YAML/XML/JSON files only. Call it after the file was read (its own errors come first)."""
    unit = getattr(args, "calib_unit", None)
    if unit is None:
        return
    path = args.calib or args.rectify
    if not path:
        raise InputError(
            "--calib-unit is the length unit of an OpenCV calibration file: give that file with --calib or --rectify"
        )
    from ..io.calibration import rectified_format

    stated = "rtstereo maps.npz" if Path(path).suffix.lower() == ".npz" else rectified_format(path)
    if stated is not None:
        raise InputError(
            f"--calib-unit {unit}: {path} ({stated}) states its lengths in {_STATED_UNITS.get(stated, 'metres')}; "
            "leave --calib-unit out (it is for OpenCV YAML/XML/JSON files, which do not)"
        )


def kitti_colour_warning(calib: str | None, kitti_cameras: tuple[int, int] | None, left: np.ndarray) -> str | None:
    """The warning for images whose colour is not that of the KITTI cameras a ``--calib`` file is read for by default
    (without ``--kitti-cameras``), or ``None``: colour images with a KITTI 2012 ``calib/NNNNNN.txt`` (read for the grey
    cameras 0,1), or grey ones with a ``calib_cam_to_cam.txt`` (KITTI 2015 and raw; read for the colour cameras 2,3,
    while the raw recordings' grey image_00/01 are cameras 0,1). The two pairs' baselines differ (0.5333 m against
    0.5372 m for 000070), so the depths would be 0.7 % off without a word.

    Args:
        calib: the ``--calib`` file.
        kitti_cameras: ``--kitti-cameras``.
        left: the first pair's left image, uint8 RGB ``(H, W, 3)`` (grey images have three equal channels).
    """
    from ..errors import RtStereoError
    from ..io.calibration import kitti_default_cameras, read_calibration

    default = kitti_default_cameras(calib) if calib and kitti_cameras is None else None
    if default is None:
        return None
    sample = left[::8, ::8]
    grey = np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 0], sample[..., 2])
    if grey == (default == (0, 1)):
        return None  # grey images with the grey cameras, colour ones with the colour cameras
    try:
        read_for, right_one = (read_calibration(calib, kitti_cameras=cameras) for cameras in ((0, 1), (2, 3)))
    except RtStereoError:  # one of the pairs missing: nothing better to offer
        return None
    if default == (2, 3):
        read_for, right_one = right_one, read_for
    off = read_for.baseline_m / right_one.baseline_m - 1
    kinds = ("colour", "grey", "2,3", "0,1") if default == (2, 3) else ("grey", "colour", "0,1", "2,3")
    files = "calib_cam_to_cam files of KITTI 2015 and raw" if default == (2, 3) else "KITTI 2012 files"
    return (
        f"the images are in {kinds[1]}, but {calib} is read for KITTI's {kinds[0]} cameras {kinds[2]} (the default for "
        f"{files}, baseline {read_for.baseline_m:.4f} m); KITTI's {kinds[1]} pairs are cameras {kinds[3]} (baseline "
        f"{right_one.baseline_m:.4f} m), whose depths this makes {abs(off) * 100:.1f} % too "
        f"{'far' if off > 0 else 'near'}: add --kitti-cameras {kinds[3]}"
    )


def kitti_cameras_arg(text: str) -> tuple[int, int]:
    """argparse ``type=`` for ``--kitti-cameras L,R``."""
    try:
        left, right = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two camera numbers L,R (e.g. 2,3), got '{text}'") from None
    if {left, right} - {0, 1, 2, 3} or left == right:
        raise argparse.ArgumentTypeError(f"expected two different cameras from 0 to 3, got '{text}'")
    return left, right


# Said by every --weights: a URL is cached and can be checked (README, "The published networks"), which the help hid.
WEIGHTS_URL_HELP = (
    "a URL is downloaded once into ~/.cache/rtstereo or $RTSTEREO_CACHE, checked if it ends in #sha256=HEX"
)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--weights``, ``--backend``, ``--device``, ``--precision``, ``--threads``,
    ``--max-disp``, ``--iters`` and ``--set key=value``."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        "-m",
        default="default",
        help="registry name (see `rtstereo models`), an exported .onnx file, or an rtstereo "
        "checkpoint (default: %(default)s)",
    )
    group.add_argument("--weights", "-w", help=f"weights file or URL for networks that need them ({WEIGHTS_URL_HELP})")
    group.add_argument("--backend", choices=BACKENDS, help="runtime (default: the model's natural one)")
    group.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    group.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "fp16", "bf16"),
        help="numeric precision of the network (default: %(default)s)",
    )
    group.add_argument("--threads", type=whole_number_arg, metavar="N", help=THREADS_HELP)
    add_setting_args(group)


def add_fit_arg(parser: argparse.ArgumentParser) -> None:
    """``--fit resize|crop`` of the verbs that run pairs or frames through a model (predict, video, live)."""
    parser.add_argument(
        "--fit",
        choices=FITS,
        default="resize",
        help="how pairs of another size meet a network fixed at one size (an ONNX file exported at one HxW, such as "
        "RT-Stereo's model.onnx): resize (both views resized to it, stretched where the aspect ratio differs) or "
        "crop (as RT-Stereo's live_stereo.py: both views scaled by one factor to cover its size and the same "
        "centred window cut from both; the outputs are that window's, at its own resolution, its size and offset "
        "in the JSON record, the calibration's principal point moved with it); crop is refused for a model that "
        "takes any size (default: %(default)s)",
    )


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model``/``-m`` for the verbs whose model is their positional MODEL (bench, export, models): the option that
    names the model in predict, video, live, eval, train and adapt was an unrecognized argument there.
    :func:`take_model_option` reads it."""
    parser.add_argument(
        "--model",
        "-m",
        dest="model_option",
        metavar="MODEL",
        help="MODEL given as an option, as the other verbs take it",
    )


def take_model_option(args: argparse.Namespace) -> None:
    """``args.model`` from ``--model`` when MODEL was given that way (see :func:`add_model_option`).

    Raises:
        InputError: MODEL and ``--model`` both given, naming different models.
    """
    option = getattr(args, "model_option", None)
    if option is None:
        return
    from ..models import resolve_alias

    if args.model is not None and resolve_alias(args.model) != resolve_alias(option):  # SGBM and sgbm are one
        raise InputError(f"MODEL {args.model} and --model {option} disagree: give one of them")
    args.model = option


def whole_number(text: str) -> int:
    """``"96"`` or ``"96.0"`` as 96, as the model registry reads ``--set max_disp=96.0``.

    Raises:
        ValueError: not a whole number (``"96.5"``, ``"inf"``, ``"x"``).

    Examples:
        >>> whole_number("96"), whole_number("96.0")
        (96, 96)
    """
    if re.fullmatch(r"\s*[+-]?[0-9]{1,4000}\s*", text):  # exact: through a float, 10**30 came back another number
        return int(text)
    number = float(text)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"not a whole number: {shortened(text)!r}")
    return int(number)


def whole_number_arg(text: str) -> int:
    """argparse ``type=`` for the whole-number options ``--max-disp``, ``--iters`` and ``--threads``: ``int`` refused
    ``--max-disp 96.0``, which ``--set max_disp=96.0``, ``synth`` and ``adapt`` take. A number too long for Python's
    ``int`` or a float is said to be too large, as ``--set`` says it, not echoed whole."""
    try:
        return whole_number(text)
    except ValueError:
        try:
            too_large = re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) is not None or math.isinf(float(text))
        except ValueError:
            too_large = False
        if too_large and "inf" not in text.lower():
            size = "out of range" if text.strip().startswith("-") else "too large"
            raise argparse.ArgumentTypeError(f"{shortened(text.strip())} is {size}") from None
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{shortened(text)}'") from None


def add_setting_args(group) -> None:
    """``--max-disp``, ``--iters`` and ``--set key=value``: the model settings (see :func:`settings_from_args`)."""
    group.add_argument(
        "--max-disp",
        type=whole_number_arg,
        metavar="PX",
        help="largest disparity searched, pixels (model setting max_disp; its default, and whether a model takes "
        "another value: `rtstereo models NAME`)",
    )
    group.add_argument(
        "--iters", type=whole_number_arg, metavar="N", help="refinement iterations (model setting iters)"
    )
    group.add_argument(
        "--set",
        dest="set_values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any model setting, repeatable (see `rtstereo models NAME`)",
    )


def size_arg(text: str) -> tuple[int, int]:
    """argparse ``type=`` for HxW sizes: the error is shown in argparse's own usage line."""
    try:
        return parse_size_hw(text)
    except InputError as exc:  # argparse names the option itself
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--size: ")) from None


def parse_set_values(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict (the values are parsed by the model's registry entry)."""
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = key.strip().replace("-", "_"), value.strip()
        if key in settings and not same_number(settings[key], value):  # neither silently wins, as with --max-disp
            raise InputError(f"--set {key}={settings[key]} and --set {key}={value} disagree: give one of them")
        settings[key] = value
    return settings


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model settings named on the command line (only those given)."""
    settings = parse_set_values(args.set_values)
    from_set = set(settings)  # named as the user wrote them in messages
    given = {key: option for key, option in (("max_disp", "--max-disp"), ("iters", "--iters")) if key in settings}
    for key, option, value in (("max_disp", "--max-disp", args.max_disp), ("iters", "--iters", args.iters)):
        if value is None:
            continue
        if key in settings and not same_number(settings[key], value):
            raise InputError(f"{option} {value} and --set {key}={settings[key]} disagree: give one of them")
        settings[key] = value
        given[key] = option
    for key, option in given.items():
        check_positive_setting(settings[key], f"--set {key}" if key in from_set else option, SETTING_MINIMUM[key])
    threads = getattr(args, "threads", None)  # ONNX Runtime took --set's, OpenCV and PyTorch --threads'
    if threads is not None and "threads" in settings and not same_number(settings["threads"], threads):
        raise InputError(f"--threads {threads} and --set threads={settings['threads']} disagree: give one of them")
    return settings


def given_max_disp(args: argparse.Namespace) -> float | None:
    """The range the user gave, as ``--max-disp`` or ``--set max_disp=`` (the top of predict's and video's
    previews: given_range_top_px); ``None`` when none was, or one the model refuses as it loads (below 1, not a finite
    number). ``--set max_disp=64`` had the preview top at the map's own 99th percentile, ``--max-disp 64`` at 64."""
    try:
        value = float(settings_from_args(args).get("max_disp"))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 1 else None


def check_pair_args(args: argparse.Namespace) -> None:
    """Refuse LEFT RIGHT and ``--pairs`` given together, a LEFT without its RIGHT, or no pair at all, in the same
    words for every verb that reads pairs (``predict``, ``adapt``).

    Raises:
        InputError: what is missing or given twice.
    """
    if args.pairs is not None:
        if args.left is not None or args.right is not None:
            raise InputError("give LEFT RIGHT or --pairs MANIFEST, not both")
        return
    if args.left is not None and args.right is None:  # it said "expected LEFT RIGHT" of a LEFT it had
        raise InputError(
            f"expected RIGHT after LEFT {args.left}: a pair is two images, one per camera (files, folders, globs or "
            "URLs), or give --pairs MANIFEST.csv"
        )
    if args.left is None or args.right is None:
        raise InputError("expected LEFT RIGHT (files, folders, globs or URLs), or --pairs MANIFEST.csv")


# The least value of each setting that some model takes: CREStereo, the one model with iterations, needs 2 of them
# (its coarse levels run iters // 2 steps), so "--iters must be >= 1" would send the user to a value refused next.
SETTING_MINIMUM = {"max_disp": 1, "iters": 2}


def same_number(a: Any, b: Any) -> bool:
    """Whether two option values say the same: one number (``64`` and ``64.0``), one switch (``true``, ``True`` and
    ``1``: "--set fill_holes=true and --set fill_holes=True disagree" before), or the same text; as ``rtstereo.load``
    compares a setting given twice.

    Examples:
        >>> same_number("64", 64.0), same_number("true", "On"), same_number("raw", "auto")
        (True, True, False)
    """
    return _same_setting(a, b)


def check_positive_setting(value: Any, option: str, minimum: int = 1) -> None:
    """A disparity range or iteration count below ``minimum`` is refused before any model is built."""
    try:
        number = value if isinstance(value, int) else float(value)  # an int exact: a 1000-digit one overflows a float
    except (TypeError, ValueError):
        return  # not a number: the model's own setting check names the expected type
    if isinstance(number, float) and math.isnan(number):  # "must be >= 1, got nan": no number, as the model says of inf
        return
    if not number >= minimum:
        raise InputError(f"{option} must be >= {minimum}, got {shortened(value)}")


def predictor_from_args(args: argparse.Namespace, **overrides: Any) -> Predictor | HybridPredictor:
    """Build the predictor the model options describe; ``overrides`` replace settings."""
    settings = {**settings_from_args(args), **overrides}
    threads = getattr(args, "threads", None)
    set_cpu_threads(threads)
    predictor = load(
        args.model,
        weights=args.weights,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        settings=settings,
        fit=getattr(args, "fit", "resize"),
    )
    set_cpu_threads(threads)  # again, for PyTorch if loading the model imported it
    return predictor


def check_torch_threads(threads: int | None) -> None:
    """``--threads N`` of the PyTorch verbs (adapt, train): ``None`` leaves torch its own choice.

    Raises:
        InputError: ``threads`` < 1 (0 is not "torch's choice" here, as it is not for predict and video).
    """
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads} (leave it out for torch's own choice)")
    if threads is not None:
        check_thread_count(threads, "--threads")


def set_cpu_threads(threads: int | None) -> None:
    """``--threads N`` for this process (:func:`~rtstereo.runtime.providers.limit_threads`); ``None`` takes
    ``$RTSTEREO_THREADS``, as ``--help`` says, and changes nothing without it (ONNX Runtime alone read it: OpenCV's
    SGBM and PyTorch kept one thread per core beside a job's RTSTEREO_THREADS=1). A bad ``$RTSTEREO_ORT_SPIN`` is
    refused here too, whatever the model: it let ``sgbm`` run, and bench skipped each ONNX row for it, exit code 1."""
    cpu_spinning()
    if threads is None:
        threads = default_threads()
    if threads is None:
        return
    limit_threads(check_thread_count(threads, "--threads"))


def progress_echo(verb: str) -> Callable[[str], None]:
    """Where a long verb's progress lines go: stderr, as ``rtstereo VERB: ...``, so that stdout carries results only.

    Examples:
        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()) as err:
        ...     progress_echo("train")("step 1/10: loss 0.5")
        >>> err.getvalue()
        'rtstereo train: step 1/10: loss 0.5\\n'
    """

    def echo(line: str) -> None:
        print(f"rtstereo {verb}: {line}", file=sys.stderr, flush=True)

    return echo


def print_out(text: str) -> None:
    """Print a verb's results on stdout, flushed, so that they are seen before what the verb does next.

    A stdout that cannot take them (a reader that went away, ``eval ... | head -1``; a full disk, ``> /dev/full``)
    does not end the run: ``rtstereo.cli`` keeps the failure until the verb is done, so that its files are still
    written, what it says on stderr said, and its exit code kept (or 1 for a full disk).
    """
    print(text, flush=True)
