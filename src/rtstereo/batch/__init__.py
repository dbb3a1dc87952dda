"""Batches of pairs that survive bad items, in one process or on a distributed engine.

A batch runs the same :class:`~rtstereo.batch.job.BatchJob` on every pair (read, rectify, predict,
write atomically). A pair that fails becomes a ``failed`` :class:`~rtstereo.batch.outcome.PairOutcome`
with a one-line reason and the batch carries on; a pair whose complete outputs already exist is
``skipped`` (resume). The engines are :func:`~rtstereo.batch.local.run_local` (this process) and
:func:`rtstereo.scale.predict.run_ray` (Ray Data); both return a
:class:`~rtstereo.batch.outcome.BatchSummary`.
"""

from .job import BatchJob, PredictorOptions, failure_reason, process_pair
from .local import run_local
from .outcome import BatchInterrupted, BatchSummary, PairOutcome

__all__ = [
    "BatchInterrupted",
    "BatchJob",
    "BatchSummary",
    "PairOutcome",
    "PredictorOptions",
    "failure_reason",
    "process_pair",
    "run_local",
]
