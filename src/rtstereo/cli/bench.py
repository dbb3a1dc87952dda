"""``rtstereo bench MODEL --sizes ... --precision ... --backend ...``: the speed sweep."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelNotFoundError, OutputError
from ..io.atomic import folder_write_problem, kind_of_file, not_a_folder
from ..text import counted
from . import EXIT_INTERRUPTED
from .common import (
    SETTING_MINIMUM,
    THREADS_HELP,
    WEIGHTS_URL_HELP,
    add_model_option,
    output_path_arg,
    parse_size_hw,
    print_out,
    take_model_option,
    whole_number,
    whole_number_arg,
)

EPILOG = """examples:
  rtstereo bench gwcnet-gc --weights sceneflow.ckpt --sizes 480x640,720x1280 --max-disp 96,192 \\
      --precision fp32,fp16 --backend torch,onnxruntime --device cuda -o results/
  rtstereo bench anynet,sgbm --weights anynet=kitti2015.tar --sizes 480x640 --backend torch,onnxruntime \\
      --threads 2 --baseline sgbm -o results/
  rtstereo bench crestereo --weights crestereo_eth3d.pth --sizes 480x640 --iters 2,5,10,20
  rtstereo bench anynet --weights kitti2015.tar --sizes 240x320,480x640 --data ../shared/data/real -o results/
  rtstereo bench gwcnet-gc --random-weights --sizes 480x672 --max-disp 192 --precision fp16 --device cuda \\
      --set channels_last=true,false --set cuda_graphs=auto,false --set compile=false,reduce-overhead
  rtstereo bench hybrid,rtnet-v5,sgbm --sizes 480x640 --threads 2 --baseline sgbm
  rtstereo bench training/default/state.pt --sizes 1080x1920 --precision fp16,fp32 --device cuda
  rtstereo bench sgbm,bm --sizes 120x160,240x320 --max-disp 64 --data 'lefts/*.png' 'rights/*.png' \\
      --reference sgbm:max_disp=64 -o results/      # your own pairs, no ground truth: scored against sgbm

Times are of the whole predict call per pair, after warm-up. With -o: bench.json (date, commit,
CPU/GPU, library versions, every row), bench.md (the table) and, with --data, bench.png (quality
against speed). With --reference the accuracy is each row's EPE and bad-N against the reference's map of
the same pair (run once per pair, before the sweep), not against ground truth, which is then not used.
Rows that cannot run (fp16 on a CPU with the torch backend, cuda_graphs=true on
a CPU, a fixed-size .onnx file at another size...) say why; --device cuda without a GPU is refused.
Ctrl+C keeps the rows measured so far: printed and written (marked interrupted), exit code 130; an
earlier complete sweep's bench.json is kept, the interrupted one then written as bench.interrupted.*
(which a complete sweep removes).
An fp16 ONNX file on the CPU is timed but reads "Half (CPU)": not a measure of fp16 speed.
The backends' own settings (torch: channels_last, cuda_graphs, compile, cudnn_benchmark;
onnxruntime: providers, engine_cache, parity) are swept on their backend's rows only, in
alternation with its other rows; x torch time divides by the first torch row of the same model
settings and precision.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="speed sweep: sizes x disparity levels/iterations x precision x backend",
        description="Time one or more models over every combination of the options; optionally score\n"
        "them on datasets too.",  # raw (the epilog keeps its lines): wrapped by hand
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="?",  # required; optional to argparse so that `--data D sgbm` (--data takes one or two values) works
        help="required, here or as --model: registry name(s), exported .onnx file(s) or rtstereo checkpoint(s), "
        "comma-separated (e.g. anynet,sgbm)",
    )
    add_model_option(parser)
    parser.add_argument(
        "--weights",
        "-w",
        action="append",
        default=[],
        metavar="[MODEL=]FILE",
        help=f"weights file or URL ({WEIGHTS_URL_HELP}); MODEL=FILE when several networks are benched (repeatable)",
    )
    parser.add_argument(
        "--sizes",
        help="input sizes HxW, comma-separated (default: 480x640; an exported .onnx file of fixed size: its own)",
    )
    parser.add_argument("--max-disp", metavar="PX,...", help="disparity ranges to sweep, comma-separated (e.g. 96,192)")
    parser.add_argument(
        "--iters", metavar="N,...", help="refinement iterations to sweep, comma-separated (e.g. 2,5,10,20)"
    )
    parser.add_argument(
        "--set",
        dest="set_values",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="any other setting to sweep, the model's, its backend's or the post-processing switches every model "
        "takes (e.g. channels_last=true,false or refine_edges=true,false; repeatable)",
    )
    parser.add_argument("--precision", default="fp32", help="fp32, fp16, bf16, comma-separated (default: %(default)s)")
    parser.add_argument(
        "--backend",
        default="torch",
        help="the networks' runtimes: torch, onnxruntime, comma-separated (default: %(default)s); classical methods "
        "run on opencv and .onnx files, rtnet-v5 and the hybrid on onnxruntime, whatever it says",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--threads", type=whole_number_arg, metavar="N", help=THREADS_HELP)
    parser.add_argument(
        "--warmup",
        type=whole_number_arg,
        default=2,
        metavar="N",
        help="untimed calls first, >= 1: the first (first_ms in the JSON) builds the model (an on-the-fly export, "
        "a TensorRT engine) (default: %(default)s)",
    )
    parser.add_argument(
        "--runs", type=whole_number_arg, default=10, metavar="N", help="timed calls, >= 1 (default: %(default)s)"
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress lines (the table, notes and warnings are still shown)"
    )
    parser.add_argument(
        "--data",
        action="append",
        nargs="+",
        metavar=("DIR|LEFT", "RIGHT"),
        help="dataset folder: adds accuracy against its ground truth and a plot (repeatable); with --reference also "
        "pairs without ground truth: a dataset folder, a .csv/.parquet manifest (left,right[,name]) or LEFT RIGHT "
        "(two files, folders or quoted globs, as predict takes them)",
    )
    parser.add_argument(
        "--reference",
        metavar="MODEL[:KEY=V,...]",
        help="score every row against this model's map of each --data pair instead of ground truth (EPE, bad-1, "
        "bad-2 where it is valid), e.g. sgbm:max_disp=256 or crestereo:iters=20,size=480x640 (size: the size it "
        "runs at, default each pair's own; rows of another size are resized to it, disparities scaled); commas part "
        "the settings, so quote a value that holds one: 'x.onnx:providers=\"cuda,cpu\"'",
    )
    parser.add_argument("--baseline", help="model whose time at the same size divides every row's (e.g. sgbm)")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="registry networks given no --weights run on random ones: timing only (speed does not depend on the "
        "values); exported files and checkpoints keep their own",
    )
    parser.add_argument("-o", "--output", type=output_path_arg, help="folder for bench.json, bench.md and bench.png")
    parser.set_defaults(func=run)


def weights_by_model(
    items: list[str], models: list[str], baseline: str | None = None, reference: str | None = None
) -> dict[str, str]:
    """``--weights`` values to ``{model: file}``; a bare file belongs to the only network of ``models``.

    The ``--baseline`` model is benched too, and the ``--reference`` model runs: ``MODEL=FILE`` gives them
    their weights.

    Raises:
        InputError: ``MODEL=FILE`` names a model that takes no weights or is not benched, a bare
            file is given with other than one network, or one model is given two files.

    Examples:
        >>> weights_by_model(["anynet=a.tar"], ["anynet", "sgbm"])
        {'anynet': 'a.tar'}
        >>> weights_by_model(["a.tar", "gwcnet-gc=g.ckpt"], ["anynet", "sgbm"], baseline="gwcnet-gc")
        {'anynet': 'a.tar', 'gwcnet-gc': 'g.ckpt'}
        >>> weights_by_model(["AnyNet=a.tar"], ["anynet", "gwcnet-gc"])
        {'anynet': 'a.tar'}
    """
    from ..bench import model_spec
    from ..models import is_onnx_file, list_models

    networks = [m for m in models if not is_onnx_file(m) and model_spec(m).kind == "network"]
    bare_to = networks  # a bare file: the network the user listed, not the baseline added to them
    extra = [m for m in dict.fromkeys((baseline, reference)) if m is not None and m not in models]
    if extra:
        models = [*models, *extra]
        networks = [m for m in models if not is_onnx_file(m) and model_spec(m).kind == "network"]
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name = name.lower() if sep and name.lower() in list_models() else name  # ANYNET=a.tar: names ignore case
        if sep and name in models and name not in networks:  # its weights would be ignored unsaid
            raise InputError(
                f"--weights '{item}': {name} takes no weights file (networks do: {', '.join(networks) or 'none here'})"
            )
        if sep and name not in models and name in list_models() and not Path(item).exists():
            raise InputError(f"--weights '{item}': {name} is not among the models benched ({', '.join(models)})")
        if sep and name in models:
            model, path = name, path
        elif len(bare_to) == 1:
            model, path = bare_to[0], item
        elif not networks:
            raise InputError(
                f"--weights '{item}': no model benched takes a weights file ({', '.join(models)}: networks do, "
                "rtstereo models)"
            )
        elif not bare_to:
            raise InputError(
                f"--weights '{item}': the models listed take none; the "
                f"{'baseline' if networks[0] == baseline else 'reference'}'s goes as {networks[0]}=FILE"
            )
        else:
            raise InputError(
                f"--weights '{item}': with {len(bare_to)} networks ({', '.join(bare_to) or 'none'}) write MODEL=FILE"
            )
        if model in out:  # the last would win unsaid: which file was timed?
            raise InputError(f"--weights: two files for {model} ({out[model]}, {path}); bench one at a time")
        out[model] = path
    return out


def _model_after_data(args: argparse.Namespace) -> None:
    """Give MODEL back when ``--data`` took it (``bench --data D sgbm``: ``--data`` takes one or two values, so
    argparse reads ``sgbm`` as its second), as ``bench`` read that command before ``--data`` took pairs.

    Raises:
        InputError: no model at all.
    """
    if args.model is not None:
        return
    last = args.data[-1] if args.data else []
    if len(last) >= 2 and not Path(last[-1]).exists() and not any(c in last[-1] for c in "*?["):
        args.model = last.pop()
        return
    raise InputError("give the model(s) to time first, e.g. `rtstereo bench sgbm,rtnet-v5 ...`")


def _data_items(values: list[list[str]] | None) -> list[str | tuple[str, str]] | None:
    """``--data`` values: one (a dataset folder or a manifest) or two (LEFT RIGHT) per ``--data``.

    Raises:
        InputError: more than two values after one ``--data`` (a glob the shell expanded).
    """
    if values is None:
        return None
    items: list[str | tuple[str, str]] = []
    for given in values:
        if len(given) > 2:
            raise InputError(
                f"--data takes a dataset folder, a manifest, or LEFT RIGHT; got {len(given)} values ({given[0]}, "
                f"{given[1]}, ...): a glob the shell expanded? Quote it: '{Path(given[0]).parent / '*.png'}'"
            )
        items.append(given[0] if len(given) == 1 else (given[0], given[1]))
    return items


def check_weights_files(weights: dict[str, str]) -> None:
    """Refuse a ``--weights`` file that is not there now, as a missing model file is: found in the sweep, it
    skipped that network's every row while the others were timed, and the run could exit 0. A URL is downloaded
    now (into the cache, where the rows find it), as predict and export download it before any work: one that
    fails skipped each row, each waiting for the server again.

    Raises:
        InputError: a local file that does not exist, or is a folder; a URL that cannot be downloaded.
    """
    from ..io.download import fetch, is_url

    for model, path in weights.items():
        if is_url(path):
            try:
                fetch(path, subdir="weights")  # the cache load() reads a weights URL from
            except InputError as exc:
                raise InputError(f"--weights {model}: {exc}") from None
            continue
        if Path(path).is_dir():
            raise InputError(f"--weights {model}: {path} is a folder: give the checkpoint file inside it")
        if not Path(path).is_file():
            raise InputError(f"--weights {model}: weights file not found: {path}")


def _option_list(text: str, kind: Callable[[str], Any], name: str, option: str) -> list[Any]:
    """``parse_list``, its error named as the option, as predict names it: "'0' is not a valid disparity range" or
    "expected a comma-separated list of sizes, got ','" named none of bench's lists."""
    from ..bench import parse_list

    try:
        return parse_list(text, kind, name)
    except InputError as exc:
        if str(exc).startswith(f"{option}:"):  # said already
            raise
        raise InputError(f"{option}: {exc}") from None


def sweeps_from_args(args: argparse.Namespace) -> dict[str, list[Any]]:
    """The swept settings: ``--max-disp``, ``--iters`` and ``--set KEY=V1,V2``."""

    sweeps: dict[str, list[Any]] = {}
    if args.max_disp:
        sweeps["max_disp"] = _option_list(args.max_disp, _positive_int, "disparity range", "--max-disp")
    if args.iters:
        sweeps["iters"] = _option_list(args.iters, _iteration_count, "iteration count", "--iters")
    for item in args.set_values:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects KEY=V1,V2, got '{item}'")
        name = key.strip().replace("-", "_")
        if name in sweeps:
            given = (
                "--max-disp"
                if name == "max_disp" and args.max_disp
                else "--iters"
                if name == "iters" and args.iters
                else f"--set {name}"
            )
            raise InputError(
                f"--set {item}: {name} is already swept ({given}); give all its values once, comma-separated"
            )
        sweeps[name] = _option_list(values, str, "value", f"--set {key.strip()}")
    return sweeps


def _positive_int(text: str) -> int:
    """A whole number >= 1 (a range or count of 0 fits no model: a usage error, not a row of skips); 96.0 is 96."""
    value = whole_number(text)
    if value < 1:
        raise ValueError(text)
    return value


def _iteration_count(text: str) -> int:
    """A whole number of at least 2: fewer fits no model (CREStereo needs 2), a usage error as a count of 0 is."""
    value = whole_number(text)
    if value < SETTING_MINIMUM["iters"]:
        raise InputError(
            f"'{text}' is not a valid iteration count: no model takes fewer than {SETTING_MINIMUM['iters']}"
        )
    return value


# -o results.json (a file's name) for a verb that writes a folder of reports: refused, as calibrate refuses -o rig.json
REPORT_FILE_SUFFIXES = (".json", ".md", ".png", ".csv", ".txt", ".parquet")


def check_output_folder(
    folder: Path, what: str = "benchmark results", files: str = "bench.json, bench.md and bench.png"
) -> None:
    """Refuse an ``-o`` folder that cannot be created or written (``what``: its contents, for the message).

    Folders it makes to find out are removed again, so that a run refused later (a usage error found
    afterwards) leaves nothing behind; the run makes them when it writes.

    Args:
        folder: the ``-o`` folder.
        what: what is written there, for the message.
        files: the files written there, for the message refusing a file's name.

    Raises:
        OutputError: it is a file, it names a file that does not exist yet (``results.json``: it became a folder
            of that name, holding ``bench.json``), or it (or a parent) cannot be created or written.
    """
    if not folder.exists() and folder.suffix.lower() in REPORT_FILE_SUFFIXES:
        parent = f"{folder.parent}/" if str(folder.parent) != "." else "results/"
        raise OutputError(
            f"-o {folder} names a file, but the {what} are files ({files}) written into a folder: give the "
            f"folder, such as -o {parent}"
        )
    problem = folder_write_problem(folder)
    if problem is not None:
        reason = not_a_folder(folder) if folder.exists() and not folder.is_dir() else problem
        raise OutputError(f"cannot write {what} to {folder}: {reason}")


def _refuse_result_names_taken(folder: Path, plotted: bool) -> None:
    """Refuse an ``-o`` folder where a results file's name is taken by a folder (or a device, a pipe): found when the
    sweep was written, after it, ``bench.json`` was written and ``bench.md`` was not, with exit code 2. ``plotted``:
    ``bench.png`` is written too (``--data``).

    Raises:
        OutputError: ``bench.json``, ``bench.md`` or (``plotted``) ``bench.png`` there is not a file.
    """
    for name in ("bench.json", "bench.md", *(["bench.png"] if plotted else [])):
        path = folder / name
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else kind_of_file(path)
            raise OutputError(
                f"cannot write benchmark results to {folder}: {path} is {kind}, where the sweep writes its {name}: "
                "move it, or give another -o"
            )


def _check_named_models(named: dict[str, str | None]) -> None:
    """Refuse an unknown ``--baseline`` or ``--reference`` model naming its option: "unknown model 'SGBM'" alone
    read as one of the models benched.

    Raises:
        ModelNotFoundError: the registry does not know one.
    """
    from ..bench import model_spec
    from ..models import is_onnx_file

    for option, model in named.items():
        if model is None or is_onnx_file(model):
            continue
        try:
            model_spec(model)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"{option} {model}: {exc}") from None


# OpenCV holds an image's sides as 32-bit ints: resizing the timing pair to a side beyond failed with a traceback.
MAX_SIDE_PX = (1 << 31) - 1


def _refuse_sizes_no_memory_holds(sizes: list[tuple[int, int]]) -> None:
    """Refuse a ``--sizes`` entry whose pair alone (the two images and the disparity, before any method's working
    memory) does not fit the memory budget, before the timing pair is made: ``--sizes 100000x100000`` ended in
    OpenCV's "Insufficient memory" traceback, as ``video --size`` did before it refused such a size.

    Raises:
        InputError: a side beyond OpenCV's images, or a pair beyond the budget.
    """
    from ..runtime.memory import BUDGET_ENV, IO_BYTES_PER_PX, format_bytes_apart, memory_budget

    budget = memory_budget()
    for height, width in sizes:
        if max(height, width) > MAX_SIDE_PX:
            raise InputError(
                f"--sizes {height}x{width}: a side beyond {MAX_SIDE_PX} px (2^31 - 1), the most OpenCV's images "
                "hold: give a smaller size"
            )
        needed = IO_BYTES_PER_PX * height * width
        if needed > budget.bytes:
            shown, allowed = format_bytes_apart(needed, budget.bytes)
            raise InputError(
                f"--sizes {height}x{width}: a pair of this size needs at least {shown} before any method runs, more "
                f"than the {allowed} budget ({budget.source}): give a smaller size, or set {BUDGET_ENV} if the "
                "machine has more memory"
            )


def run(args: argparse.Namespace) -> int:
    from ..api import check_model_file
    from ..bench import check_exported_files, parse_list, run_bench
    from ..bench_reference import parse_reference
    from ..models import resolve_alias
    from ..runtime.providers import check_thread_count, cpu_spinning, default_threads

    take_model_option(args)
    _model_after_data(args)
    cpu_spinning()  # a bad $RTSTEREO_ORT_SPIN skipped every ONNX row, one by one, and ended in exit code 1
    for option, count in (("--warmup", args.warmup), ("--runs", args.runs)):
        if count < 1:  # named as the option: it was "warmup and runs must be >= 1, got warmup=2, runs=0"
            raise InputError(f"{option} must be >= 1, got {count}")
    if args.threads is not None:  # named as the option, as predict names it
        check_thread_count(args.threads, "--threads")
    else:  # as predict's: ONNX Runtime alone read $RTSTEREO_THREADS, beside OpenCV and PyTorch on every core
        args.threads = default_threads()
    models = [resolve_alias(m) for m in parse_list(args.model, str, "model")]
    baseline = resolve_alias(args.baseline) if args.baseline else None
    reference = parse_reference(args.reference) if args.reference else None
    named = [*models, *([baseline] if baseline else []), *([reference.model] if reference else [])]
    for model in named:
        check_model_file(model)  # a missing file is a usage error now, not a sweep of rows that each say so
    check_exported_files(named)  # and so is a damaged one, as predict refuses it
    _check_named_models({"--baseline": baseline, "--reference": reference.model if reference else None})
    sizes = _option_list(args.sizes or "480x640", lambda text: parse_size_hw(text, "--sizes"), "size", "--sizes")
    _refuse_sizes_no_memory_holds(sizes)
    weights = weights_by_model(args.weights, models, baseline, reference.model if reference else None)
    check_weights_files(weights)
    if args.output:
        check_output_folder(Path(args.output))  # now, not after a sweep that may take hours
        _refuse_result_names_taken(Path(args.output), plotted=bool(args.data))
    report = run_bench(
        models,
        sizes,
        sweeps=sweeps_from_args(args),
        precisions=parse_list(args.precision, str, "precision"),
        backends=parse_list(args.backend, str, "backend"),
        weights=weights,
        device=args.device,
        threads=args.threads,
        warmup=args.warmup,
        runs=args.runs,
        data=_data_items(args.data),
        baseline=args.baseline,
        reference=reference,
        random_weights=args.random_weights,
        fixed_files_at_own_size=args.sizes is None,
        progress=None if args.quiet else lambda label: print(f"rtstereo bench: {label}", file=sys.stderr),
    )
    if report.interrupted and not report.rows:
        raise KeyboardInterrupt  # nothing measured: nothing to print or to write over an earlier sweep's results
    print_out(report.table())
    if args.output:
        written = report.save(Path(args.output))
        print_out(f"written: {', '.join(map(str, written))}")
    else:
        print_out("nothing written (give -o DIR for bench.json and bench.md)")
    for note in report.notes:
        print(f"rtstereo bench: note: {note}", file=sys.stderr)
    if report.interrupted:
        kept = f"written to {args.output}" if args.output else "in the table above"
        print(
            f"rtstereo bench: interrupted after {len(report.rows)} of {counted(report.cases, 'row')}: the rows "
            f"measured are {kept}, the rest were not measured",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not any(row.status == "ok" for row in report.rows):  # a script must not take an empty table for results
        print("rtstereo bench: nothing was measured: every row was skipped or failed (see the table)", file=sys.stderr)
        return 1
    return 0
