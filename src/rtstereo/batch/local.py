"""The single-process engine: the pairs one after another in this process."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from ..errors import InputError, require_bool
from ..io.atomic import folder_claimed, remove_stale_partials, terminate_as_interrupt
from ..sources.pairs import PairSource
from .job import BatchJob, check_run_args, process_pair
from .outcome import BatchInterrupted, BatchSummary, PairOutcome, record_outcomes


def run_local(
    job: BatchJob,
    predictor,
    sources: Sequence[PairSource],
    *,
    fail_fast: bool = False,
    progress: bool = False,
    on_outcome: Callable[[PairOutcome], None] | None = None,
    raise_interrupt: bool = True,
) -> BatchSummary:
    """Run ``job`` on every pair in this process; bad pairs are reported in the summary, not raised.

    Args:
        job: what to do with each pair.
        predictor: the :class:`~rtstereo.runtime.predictor.Predictor` to use.
        sources: the pairs, in order.
        fail_fast: stop after the first failed pair (the rest are counted as not reached).
        progress: show a progress bar (pairs/s) on stderr.
        on_outcome: called with each outcome as soon as it is known (e.g. to print failures).
        raise_interrupt: after Ctrl-C or SIGTERM, raise :class:`~rtstereo.batch.outcome.BatchInterrupted` (a
            ``KeyboardInterrupt`` holding the summary); ``False`` returns the summary, as the command line does.

    Returns:
        The :class:`~rtstereo.batch.outcome.BatchSummary`; after Ctrl-C or SIGTERM (with ``raise_interrupt=False``),
        the pairs finished so far with ``interrupted`` set (the pair being worked on left no file under its final
        names).

    Raises:
        InputError: an output that would replace an input image, or two pairs whose files would be one
            (:meth:`~rtstereo.batch.job.BatchJob.check_outputs`); complete outputs of pairs made with other options,
            which would be skipped (:meth:`~rtstereo.batch.job.BatchJob.check_made_with`); a predictor or pairs of
            the wrong type; another run writing into the output folder at the same time
            (:func:`~rtstereo.io.atomic.folder_claimed`).
    """
    check_run_args(predictor, sources)
    fail_fast, progress = require_bool(fail_fast, "fail_fast"), require_bool(progress, "progress")  # "no" is true
    raise_interrupt = require_bool(raise_interrupt, "raise_interrupt")
    if on_outcome is not None and not callable(on_outcome):
        raise InputError(
            f"on_outcome: expected a function of each PairOutcome, or None, got {type(on_outcome).__name__}"
        )
    job.check_outputs(sources)
    if not job.writes_folder or job.output is None:
        job.check_made_with(predictor, sources)
        return _run(job, predictor, sources, fail_fast, progress, on_outcome, raise_interrupt)
    with folder_claimed(job.output):  # no second run into the folder at once, from before its records are read
        job.check_made_with(predictor, sources)
        remove_stale_partials(job.output)  # what an earlier run killed mid-write (kill -9) left
        return _run(job, predictor, sources, fail_fast, progress, on_outcome, raise_interrupt)


def _run(
    job: BatchJob,
    predictor,
    sources: Sequence[PairSource],
    fail_fast: bool,
    progress: bool,
    on_outcome: Callable[[PairOutcome], None] | None,
    raise_interrupt: bool,
) -> BatchSummary:
    from ..progress import progress_bar

    start = time.perf_counter()
    outcomes: list[PairOutcome] = []
    interrupted = False
    with progress_bar(total=len(sources), desc="predict", unit="pair", file=sys.stderr, disable=not progress) as bar:
        try:
            done = (process_pair(job, predictor, source, index) for index, source in enumerate(sources))
            with terminate_as_interrupt():
                record_outcomes(done, outcomes, bar, on_outcome, fail_fast)
        except KeyboardInterrupt:
            interrupted = True
    summary = BatchSummary(
        outcomes, listed=len(sources), elapsed_s=time.perf_counter() - start, engine="local", interrupted=interrupted
    )
    if interrupted and raise_interrupt:  # returned, Ctrl-C let a script's loop go on to its next batch
        raise BatchInterrupted(summary)
    return summary
