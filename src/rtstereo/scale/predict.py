"""Batches of pairs on Ray Data.

The pipeline: the driver lists the pairs and skips those whose complete outputs exist; parallel
tasks read and decode both images (a pair that cannot be read becomes a failed row there); a pool
of actors, each holding one predictor built from :class:`~rtstereo.batch.job.PredictorOptions`,
predicts and writes the same files as the single-process engine (atomically, so the output folder
must be one every node writes: a local disk on one machine, a shared file system on a cluster);
the driver gathers one summary row per pair as they finish and shows pairs/s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..batch.job import (
    BatchJob,
    PredictorOptions,
    check_run_args,
    finish_pair,
    load_pair,
    skipped_outcome,
    written_unreported,
)
from ..batch.outcome import FAILED, BatchInterrupted, BatchSummary, PairOutcome, record_outcomes
from ..errors import InputError, require_bool
from ..io.atomic import folder_claimed, remove_stale_partials, terminate_as_interrupt
from ..runtime.providers import limit_threads
from ..sources.pairs import PairSource
from ..text import counted
from ..types import StereoPair
from .session import (
    DECODE_CPUS,
    absolute_for_workers,
    actor_pool,
    cluster_pool,
    gathering,
    item_tries,
    needs_gpu,
    options_for_workers,
    ray_session,
    remote_args_allowed,
    retries_args,
    worker_died,
)

OUTCOME_COLUMNS = list(PairOutcome.__dataclass_fields__)


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """Ray task: read and decode one pair into raw RGB bytes (a failure becomes the row's error).

    Images travel as bytes plus the size rather than as tensors, so pairs of different sizes and
    unreadable pairs (no image at all) share one table schema.
    """
    source = PairSource(str(row["read_left"]), str(row["read_right"]), str(row["name"]))
    pair, outcome = load_pair(source, int(row["index"]))
    out = outcome.to_row()
    out.update(left=row["left"], right=row["right"])  # the summary gives the paths as the caller gave them
    if pair is None:
        out.update(left_rgb=b"", right_rgb=b"")
    else:
        out.update(height_px=pair.size_hw[0], width_px=pair.size_hw[1], error="")
        # the left view's colours where it was turned grey beside a grey right view: the point cloud shows them
        out.update(left_rgb=pair.coloured_left.tobytes(), right_rgb=pair.right.tobytes())
    return out


class PredictActor:
    """Ray actor: one predictor, reused for every pair it is given.

    Args:
        job: what to do with each pair.
        options: how to build the predictor.
        threads: CPU threads for the model (actors x threads = cores).
    """

    def __init__(self, job: BatchJob, options: PredictorOptions, threads: int):
        limit_threads(threads)
        if job.output is not None and job.writes_folder:  # what a killed writer on this machine left
            remove_stale_partials(job.output)
        self.job = job
        self.predictor = options.load()
        limit_threads(threads)  # again: loading may have imported torch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = []
        for i in range(len(batch["index"])):
            row = {key: values[i] for key, values in batch.items()}
            outcome = PairOutcome.from_row(row)
            left, right = row["left_rgb"], row["right_rgb"]
            if outcome.error or not len(left):
                outcome.status = FAILED
            else:
                shape = (outcome.height_px, outcome.width_px, 3)
                with warnings.catch_warnings():  # a view turned grey beside a grey one: said when it was decoded
                    warnings.simplefilter("ignore")
                    pair = StereoPair(
                        np.frombuffer(left, np.uint8).reshape(shape),
                        np.frombuffer(right, np.uint8).reshape(shape),
                        name=outcome.name,
                        index=outcome.index,
                    )
                outcome = finish_pair(self.job, self.predictor, pair, outcome)
            rows.append(outcome.to_row())
        return {column: [r[column] for r in rows] for column in OUTCOME_COLUMNS}


def run_ray(
    job: BatchJob,
    options: PredictorOptions,
    sources: Sequence[PairSource],
    *,
    workers: int | None = None,
    address: str | None = None,
    fail_fast: bool = False,
    progress: bool = False,
    on_outcome: Callable[[PairOutcome], None] | None = None,
    raise_interrupt: bool = True,
) -> BatchSummary:
    """Run ``job`` on every pair with Ray Data; bad pairs are reported in the summary, not raised.

    Args:
        job: what to do with each pair (its output must be a folder).
        options: the predictor each actor builds; it is built once here first, so a bad model name
            or weights file fails before Ray starts.
        sources: the pairs, in order.
        workers: actors in the pool (default: one per 2 CPUs of the cluster, or one per GPU).
        address: the Ray cluster (default: ``$RAY_ADDRESS``, else a local Ray).
        fail_fast: stop gathering after the first failed pair.
        progress: show a progress bar (pairs/s) on stderr.
        on_outcome: called with each outcome as it arrives.
        raise_interrupt: after Ctrl-C or SIGTERM, raise :class:`~rtstereo.batch.outcome.BatchInterrupted` (a
            ``KeyboardInterrupt`` holding the summary); ``False`` returns the summary, as the command line does.

    Returns:
        The :class:`~rtstereo.batch.outcome.BatchSummary` (engine ``ray``); after Ctrl-C or SIGTERM (with
        ``raise_interrupt=False``), the pairs gathered so far with ``interrupted`` set (a pair a worker was writing
        left no file under its final names).

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'rtstereo[scale]'``).
        EngineError: Ray cannot be reached, or the pipeline broke down (not a bad pair).
        InputError: an output that would replace an input image, or two pairs whose files would be one
            (:meth:`~rtstereo.batch.job.BatchJob.check_outputs`); complete outputs of pairs made with other options
            (:meth:`~rtstereo.batch.job.BatchJob.check_made_with`); options or pairs of the wrong type; another run
            writing into the output folder at the same time (:func:`~rtstereo.io.atomic.folder_claimed`).
    """
    check_run_args(options, sources, options=True)
    fail_fast, progress = require_bool(fail_fast, "fail_fast"), require_bool(progress, "progress")  # "no" is true
    raise_interrupt = require_bool(raise_interrupt, "raise_interrupt")
    if on_outcome is not None and not callable(on_outcome):
        raise InputError(
            f"on_outcome: expected a function of each PairOutcome, or None, got {type(on_outcome).__name__}"
        )
    job.check_outputs(sources)
    # no second run into the folder at once, from before its records are read (this machine's run holds it)
    claim = folder_claimed(job.output) if job.writes_folder and job.output is not None else contextlib.nullcontext()
    with claim:
        return _run_ray(job, options, sources, workers, address, fail_fast, progress, on_outcome, raise_interrupt)


def _run_ray(
    job: BatchJob,
    options: PredictorOptions,
    sources: Sequence[PairSource],
    workers: int | None,
    address: str | None,
    fail_fast: bool,
    progress: bool,
    on_outcome: Callable[[PairOutcome], None] | None,
    raise_interrupt: bool,
) -> BatchSummary:
    from ..progress import progress_bar

    start, since_s = time.perf_counter(), time.time()
    # a model that cannot load is a usage error, reported before any worker starts
    predictor = options.load()
    use_gpu = needs_gpu(options, predictor)
    job.check_made_with(predictor, sources)
    del predictor  # the workers build their own: not held here for the whole run
    outcomes: list[PairOutcome] = []
    todo: list[dict[str, Any]] = []
    for index, source in enumerate(sources):
        if job.is_complete(source):
            outcomes.append(skipped_outcome(job, source, index))
        else:
            todo.append(
                {
                    "index": index,
                    "name": source.name,
                    "left": source.left,
                    "right": source.right,
                    "read_left": absolute_for_workers(source.left),
                    "read_right": absolute_for_workers(source.right),
                }
            )
    for outcome in outcomes:
        if on_outcome is not None:
            on_outcome(outcome)
    if not todo:
        return BatchSummary(outcomes, listed=len(sources), elapsed_s=time.perf_counter() - start, engine="ray")
    # The workers' folder need not be this one: the output folder and the model's files as absolute paths.
    given_output = job.output
    job = dataclasses.replace(job, output=absolute_for_workers(job.output))
    rows_by_index = {row["index"]: row for row in todo}
    options = options_for_workers(options)
    interrupted, finished = False, []
    done = None
    try:
        with ray_session(address) as ray:
            size = cluster_pool(ray, workers, use_gpu, items=len(todo))
            with remote_args_allowed():
                dataset = item_tries(
                    ray.data.from_items(todo, override_num_blocks=len(todo))
                    .map(decode_row, num_cpus=DECODE_CPUS, **retries_args(actors=False))
                    .map_batches(
                        PredictActor,
                        fn_constructor_kwargs={"job": job, "options": options, "threads": size.threads},
                        batch_size=1,
                        compute=actor_pool(ray, size.workers),
                        num_cpus=size.cpus,
                        num_gpus=size.gpus,
                        **retries_args(actors=True),
                    )
                )
            bar = progress_bar(
                total=len(sources),
                initial=len(outcomes),
                desc="predict (ray)",
                unit="pair",
                file=sys.stderr,
                disable=not progress,
            )

            def gathered():
                for row in dataset.iter_rows():
                    outcome = PairOutcome.from_row(row)
                    yield _as_given(outcome, rows_by_index.get(outcome.index), job.output, given_output)
                finished.append(True)  # every row came back: a pair missing is one whose worker died on each try

            gathered_so_far = lambda: f"{len(outcomes)} of {counted(len(sources), 'pair')}"  # noqa: E731
            try:
                with gathering(gathered_so_far, "rerun the same command to resume") as ended:
                    done = gathered()
                    with terminate_as_interrupt():
                        record_outcomes(done, outcomes, bar, on_outcome, fail_fast)
                    if finished:
                        _fail_lost_pairs(job, sources, todo, outcomes, since_s, bar, on_outcome)
                interrupted = ended.interrupted
            finally:
                # Stops Ray's executor before the session ends: left running after --fail-fast or Ctrl-C, it went
                # on once Ray was shut down, and started a new local Ray, with a screen of Ray's errors.
                if done is not None:
                    done.close()
                bar.close()
    except KeyboardInterrupt:
        if done is None:  # Ray starting, the workers loading: nothing gathered yet
            raise
        # Ctrl-C while Ray shut down (seconds, after the bar reached its end): the pairs gathered stand, and a
        # run whose every pair came back is complete, not interrupted; it lost its summary and table before.
        interrupted = interrupted or not finished
    if job.output is not None and job.writes_folder:
        # A worker killed mid-write (lost node, memory killer) never removed its staging folder.
        remove_stale_partials(job.output)
    if interrupted:
        # Workers go on writing while their reports wait in Ray's queues: the pairs written count as written.
        gathered = {o.index for o in outcomes}
        for row in todo:
            index = row["index"]
            if index not in gathered:
                outcome = written_unreported(job, sources[index], index, since_s)
                if outcome is not None:
                    outcomes.append(outcome)
    summary = BatchSummary(
        outcomes,
        listed=len(sources),
        elapsed_s=time.perf_counter() - start,
        engine="ray",
        workers=size.workers,
        interrupted=interrupted,
    )
    if interrupted and raise_interrupt:
        raise BatchInterrupted(summary)
    return summary


def _as_given(outcome: PairOutcome, row: dict[str, Any] | None, output: Any, given_output: Any) -> PairOutcome:
    """The outcome with the paths its error and warning name as the caller gave them, not as the workers read them
    (``cannot read /home/me/d/L/05.png`` where one process says ``cannot read d/L/05.png``)."""
    pairs = [] if row is None else [(row["read_left"], row["left"]), (row["read_right"], row["right"])]
    pairs.append((str(output), str(given_output)))
    for field in ("error", "warning"):
        text = getattr(outcome, field)
        for read, given in pairs:
            if text and read != given:
                text = text.replace(read, given)
        setattr(outcome, field, text)
    return outcome


def _fail_lost_pairs(
    job: BatchJob,
    sources: Sequence[PairSource],
    todo: list[dict[str, Any]],
    outcomes: list[PairOutcome],
    since_s: float,
    bar,
    on_outcome: Callable[[PairOutcome], None] | None,
) -> None:
    """Add the outcome of each pair whose result never came back from a run that went to its end: its worker died
    on each try (:func:`~rtstereo.scale.session.item_tries`), so it failed, unless its files were all written."""
    gathered = {o.index for o in outcomes}
    for row in todo:
        index = row["index"]
        if index in gathered:
            continue
        source = sources[index]
        outcome = written_unreported(job, source, index, since_s) or PairOutcome(
            index, source.name, source.left, source.right, status=FAILED, error=worker_died("pair")
        )
        outcomes.append(outcome)
        bar.update(1)
        if on_outcome is not None:
            on_outcome(outcome)
