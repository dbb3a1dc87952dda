"""Options and reporting shared by the verbs that run batches (``predict``, ``eval``): the engine
(this process, or Ray), what to do about bad items and finished ones, and the summary table."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ..batch import BatchJob, BatchSummary, PairOutcome, PredictorOptions, run_local
from ..batch.outcome import DONE, FAILED, SKIPPED, warning_messages
from ..errors import InputError, OutputError, require_installed
from ..io.atomic import folder_write_problem
from ..sources.pairs import PairSource
from ..text import counted, on_one_line
from .common import output_path_arg, predictor_from_args, settings_from_args

ENGINES = ("local", "ray")
RAY_SUMMARY_NAME = "rtstereo_summary.parquet"
FAILURES_LISTED = 20


def add_batch_args(parser: argparse.ArgumentParser, item: str = "pair") -> None:
    """``--fail-fast``, ``--overwrite``, ``--summary`` and the engine options."""
    group = parser.add_argument_group("batches and engines")
    group.add_argument(
        "--fail-fast",
        action="store_true",
        help=f"stop at the first {item} that fails (default: report it, do the rest, exit with code 1)",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help=f"redo {item}s whose complete outputs exist (default: a rerun skips them)",
    )
    group.add_argument(
        "--summary",
        metavar="FILE",
        type=output_path_arg,
        help=f"table with one row per {item} (name, size, timings, density, error, warning): .parquet "
        f"(needs pyarrow) or .csv (default with --engine ray: OUTPUT/{RAY_SUMMARY_NAME})",
    )
    add_engine_args(group)


def add_engine_args(group) -> None:
    """``--engine``, ``--workers`` and ``--ray-address``."""
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process; ray: a Ray Data pipeline (parallel reading and decoding, a pool of "
        "workers each holding one model), on this machine or a cluster (pip install 'rtstereo[scale]') "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="--engine ray: model workers (actors); each gets CPUs/N threads, or one GPU with --device cuda "
        "(default: one per 2 CPUs, or one per GPU)",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="--engine ray: the cluster to join (ray://head:10001 or auto; default: $RAY_ADDRESS, else a "
        "local Ray on this machine)",
    )


def check_engine_args(args: argparse.Namespace, folder: Path | None) -> None:
    """Refuse engine options that do not go together, before any model loads.

    Raises:
        InputError: ``--workers``/``--ray-address`` without ``--engine ray``, a worker count below 1,
            or ``--engine ray`` without an output folder.
        MissingDependencyError: ``--engine ray`` without Ray installed.
        EngineError: nothing answers at the port of ``--ray-address`` (or ``$RAY_ADDRESS``).
    """
    if args.engine != "ray":
        given = [o for o, v in (("--workers", args.workers), ("--ray-address", args.ray_address)) if v is not None]
        if given:
            raise InputError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to --engine ray only")
        return
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    require_installed("ray", "scale", "--engine ray (Ray Data)")  # before the output folder is made
    if folder is None:
        raise InputError(
            "--engine ray writes one set of files per pair: give an output folder with -o (on a cluster, "
            "a folder every node can write, e.g. a shared file system)"
        )
    from ..scale.session import refuse_unreachable

    refuse_unreachable(args.ray_address)  # now: the output folder is made before Ray starts


def _check_summary_path(given: str) -> None:
    """Refuse, before the first pair, a summary table that could not be written at the end of the batch.

    Raises:
        OutputError: ``given`` is a folder or ends with a folder separator, or its folder cannot be created or written.
        MissingDependencyError: a ``.parquet`` summary without pyarrow.
    """
    path = Path(given)
    if given.endswith(("/", os.sep)):  # `--summary s.csv/` wrote the file s.csv: Path drops the separator
        raise OutputError(
            f"--summary {given} ends with a folder separator, which names a folder: give a file name, e.g. {path}"
        )
    if path.is_dir():
        raise OutputError(f"--summary {path} is a folder: give a file name, e.g. {path / 'summary.csv'}")
    problem = folder_write_problem(path.parent)
    if problem is not None:
        raise OutputError(f"cannot write the summary {path}: {problem}")
    if path.suffix.lower() == ".parquet":
        require_installed("pyarrow", "scale", "a Parquet summary")


def predictor_options(args: argparse.Namespace) -> PredictorOptions:
    """The model options of the command line, as a value Ray workers rebuild the predictor from."""
    return PredictorOptions(
        model=args.model,
        weights=args.weights,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        settings=settings_from_args(args),
        fit=getattr(args, "fit", "resize"),
    )


def remove_empty(folders: Sequence[Path]) -> bool:
    """Remove the ``folders`` a run made (innermost first) while they are empty: a run stopped before its first
    pair (a usage error found as the model loads, Ctrl-C), or one whose every pair failed, leaves no empty output
    folder behind. Whether the first of them (the output folder) is gone."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:  # a pair's files, or another process's: kept
            return False
    return bool(folders)


def run_batch(
    args: argparse.Namespace,
    job: BatchJob,
    sources: Sequence[PairSource],
    verb: str,
    where: str,
    made: Sequence[Path] = (),
) -> BatchSummary:
    """Run the batch on the engine the options name; report failures as they come; write the summary.

    At the end it prints the counts (unless ``--quiet``), followed by ``where`` (what was written),
    then lists the failed pairs again on stderr. ``made``: the folders the run made for its output (the output
    folder first), removed when the run leaves them empty (every pair failed).
    """
    from tqdm import tqdm

    # A warning said once, then counted: every pair of a batch may give the same, each with its own figures (the share
    # of a map cut off at --max-disp, a pair's own name). Keyed by its kind: its first text, and whether others differ.
    repeats: dict[str, list] = {}

    def listed_at(outcome: PairOutcome) -> str:
        """Where a manifest lists the pair (``pairs.csv line 4``), as the manifest's own errors say it."""
        at = sources[outcome.index].listed_at if 0 <= outcome.index < len(sources) else ""
        return f"{at}: " if at else ""

    def report(outcome: PairOutcome) -> None:
        # a failed pair's too, before its failure: 12-bit data in 16-bit files failed as "the same picture", unsaid why
        say_warnings(outcome)
        if outcome.status == FAILED:
            left, right = on_one_line(outcome.left), on_one_line(outcome.right)
            tqdm.write(
                f"rtstereo {verb}: failed: {on_one_line(outcome.name)} ({listed_at(outcome)}{left}, {right}): "
                f"{outcome.error}",
                file=sys.stderr,
            )

    def say_warnings(outcome: PairOutcome) -> None:
        # each message of the pair's on its own: a pair that gave one more than the pair before said the others again
        for message in warning_messages(outcome.warning):
            kind = warning_kind(message, outcome.name, (outcome.left, outcome.right))
            unnamed = _unnamed(message, outcome.name)
            if kind in repeats:
                repeats[kind][1] += 1
                repeats[kind][2] |= unnamed != repeats[kind][3]
                repeats[kind][4].append(outcome.name)
                continue
            # as a line of its own (a Python warning would break the progress bar), naming the pair unless it does
            said = message
            if not said.startswith(f"{outcome.name}:") and not any(
                p and p in said for p in (outcome.left, outcome.right)
            ):
                said = f"{outcome.name}: {said}"
            tqdm.write(f"rtstereo {verb}: warning: {said}", file=sys.stderr)
            repeats[kind] = [message, 0, False, unnamed, []]

    summary_path = args.summary
    if summary_path is not None and Path(summary_path).suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"--summary {summary_path}: expected a .parquet or .csv file name")
    manifest = getattr(args, "pairs", None)
    if summary_path is not None and manifest is not None and os.path.abspath(summary_path) == os.path.abspath(manifest):
        raise InputError(f"--summary {summary_path} is the manifest --pairs reads: write the summary to another file")
    if summary_path is not None:  # written after the last pair: refused now, not after the whole batch
        _check_summary_path(str(summary_path))
    progress = not args.quiet
    if args.engine == "ray":
        from ..scale.predict import run_ray

        summary = run_ray(
            job,
            predictor_options(args),
            sources,
            workers=args.workers,
            address=args.ray_address,
            fail_fast=args.fail_fast,
            progress=progress,
            on_outcome=report,
            raise_interrupt=False,
        )
        if summary_path is None:
            summary_path = str(Path(job.output) / RAY_SUMMARY_NAME)
    else:
        predictor = predictor_from_args(args)
        summary = run_local(
            job,
            predictor,
            sources,
            fail_fast=args.fail_fast,
            progress=progress,
            on_outcome=report,
            raise_interrupt=False,
        )
    if summary_path is not None:
        summary.write_table(summary_path)
    # every pair failed: "written to OUT" of a folder left empty, or of the user's own folder, which got nothing (the
    # ray engine's summary table aside, written into OUT)
    wrote_nothing = not (summary.counts[DONE] or summary.counts[SKIPPED]) and job.output is not None
    if remove_empty(made) or (wrote_nothing and args.engine != "ray"):
        where = "nothing written"
    for warning, count, differed, _, names in repeats.values():
        if count:
            own = ", with figures of their own" if differed else ""
            more = f" and {len(names) - FAILURES_LISTED} more" if len(names) > FAILURES_LISTED else ""
            table = f"; each pair's in {summary_path}" if summary_path is not None else ""
            print(
                f"rtstereo {verb}: warning: {counted(count, 'more pair', 'more pairs')} gave the same warning as above "
                f"({' '.join(warning.split()[:8])} ...){own}: {', '.join(names[:FAILURES_LISTED])}{more}{table}",
                file=sys.stderr,
            )
    if summary.interrupted:
        counts = summary.counts
        where_to = f"to {job.output}" if job.output is not None else "(no -o: nothing written)"
        # a resumed run's pairs found complete, and the failed ones, are among those counted as reached: a rerun
        # stopped after its skipped pairs read "after 4 of 30 pairs: 0 written", as if those 4 had been lost
        said = ((SKIPPED, "skipped (complete already)"), (FAILED, "failed"))
        others = "".join(f", {counts[status]} {words}" for status, words in said if counts[status])
        print(
            f"rtstereo {verb}: interrupted after {len(summary.outcomes)} of {counted(summary.listed, 'pair')}: "
            f"{counts[DONE]} written {where_to}{others}, each pair complete (a rerun skips them)",
            file=sys.stderr,
            flush=True,
        )
    elif not args.quiet:
        print(f"{summary.report(command_line=True)}; {where}", flush=True)
    full = summary.stopped_by_full_disk
    if full is not None:  # the pairs after it would each have failed with the same line
        print(
            f"rtstereo {verb}: stopped: the disk holding {job.output} is full ({full.disk_full}): "
            f"{summary.counts[DONE]} of {counted(summary.listed, 'pair')} written, {summary.not_reached} not reached; "
            "free space and run the same command again (the pairs written are skipped)",
            file=sys.stderr,
        )
    if job.writes_folder and not summary.interrupted:
        _say_other_pairs(job, sources, verb)
    failures = summary.failures
    if failures:
        names = ", ".join(
            f"{on_one_line(o.name)} ({listed_at(o)[:-2]})" if listed_at(o) else on_one_line(o.name)
            for o in failures[:FAILURES_LISTED]
        )
        more = f" and {len(failures) - FAILURES_LISTED} more" if len(failures) > FAILURES_LISTED else ""
        where = f" (details: {summary_path})" if summary_path is not None else ""
        print(f"rtstereo {verb}: {counted(len(failures), 'pair')} failed: {names}{more}{where}", file=sys.stderr)
    if summary.not_reached and failures and not summary.interrupted and full is None:  # --fail-fast stopped it
        # said as eval says it, --quiet or not: with --quiet nothing said that the pairs after the failed one were
        # never done
        print(
            f"rtstereo {verb}: --fail-fast: stopped at the first failure; {summary.not_reached} of "
            f"{counted(summary.listed, 'pair')} not reached",
            file=sys.stderr,
        )
    return summary


# A figure, or an image size (WxH), which is kept: a warning about another size (a calibration scaled to it) is its own.
_FIGURES = re.compile(r"\d+x\d+|\d+(?:\.\d+)?")


def warning_kind(warning: str, name: str, paths: Sequence[str] = ()) -> str:
    """What a pair's warning says, without its figures and the pair's own name: the warnings of a batch's pairs that
    differ in these alone are one warning, said once and then counted. The pair's image ``paths`` and image sizes
    are kept: a warning about a file (one damaged), or about a size, is said for each.

    Examples:
        >>> ceiling = "{} % of the map sits at the top of the searched range (30-31 px)"
        >>> warning_kind(ceiling.format(2.9), "000") == warning_kind(ceiling.format(3.1), "001")
        True
        >>> png = "{0}: disparity up to {1} px does not fit a 16-bit PNG: {0}.png not written"
        >>> warning_kind(png.format("a", 300.5), "a") == warning_kind(png.format("b.1", 270), "b.1")
        True
        >>> warning_kind("L/1.jpg is damaged", "1", ["L/1.jpg"]) == warning_kind("L/2.jpg is damaged", "2", ["L/2.jpg"])
        False
        >>> warning_kind("scaled by 0.5 to these 160x120 images", "a")  # said again for each image size
        'scaled by # to these 160x120 images'
    """
    kept = {f"\0{tag}\0": path for tag, path in zip("LR", paths) if path and path in warning}
    for tag, path in kept.items():
        warning = warning.replace(path, tag)
    kind = _FIGURES.sub(lambda m: m.group() if "x" in m.group() else "#", _unnamed(warning, name))
    for tag, path in kept.items():
        kind = kind.replace(tag, path)
    return kind


def _unnamed(warning: str, name: str) -> str:
    """``warning`` with the pair's ``name`` where it names the pair ("a: ...") or its files ("a.png", "a_color.png"),
    not inside a figure ("0" of "0.5") or a word ("a" of "a 16-bit PNG"), replaced by ``{name}``."""
    return re.sub(rf"(?<![\w.]){re.escape(name)}(?=:|\.[A-Za-z]|_)", "{name}", warning) if name else warning


def _say_other_pairs(job: BatchJob, sources: Sequence[PairSource], verb: str) -> None:
    """A note naming the outputs of pairs that are not in this run (an earlier run's, over more or other
    pairs): they stay in the folder, mixed with this run's, and nothing else would tell."""
    from ..sinks.files import other_pairs

    others = other_pairs(job.output, [source.name for source in sources], job.formats)
    if others:
        names = ", ".join(others[:FAILURES_LISTED]) + (
            f" and {len(others) - FAILURES_LISTED} more" if len(others) > FAILURES_LISTED else ""
        )
        print(
            f"rtstereo {verb}: note: {job.output} also holds the outputs of {counted(len(others), 'pair')} not in "
            f"this run ({names}), from an earlier run; they are left there",
            file=sys.stderr,
        )
