"""What became of each pair of a batch, and the batch's summary (counts, rate, a table on disk)."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import OutputError, disk_full_reason, require, require_path
from ..io.atomic import atomic_path, os_reason
from ..text import counted, shown

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
SUMMARY_SUFFIXES = (".parquet", ".csv")
# Between the messages of a pair's one ``warning`` text. Not "; ": messages hold that themselves, and a batch that
# says each message once, and counts the pairs that give it again, must find where one ends.
WARNING_SEPARATOR = " | "


def join_warnings(messages: Iterable[str]) -> str:
    """A pair's warning messages as its one ``warning`` text, each once, in the order given.

    Examples:
        >>> join_warnings(["grey; matched in grey", "", "cut off", "grey; matched in grey"])
        'grey; matched in grey | cut off'
    """
    return WARNING_SEPARATOR.join(dict.fromkeys(m for m in messages if m))


def warning_messages(warning: str) -> list[str]:
    """A pair's ``warning`` text as its messages (:func:`join_warnings` undone).

    Examples:
        >>> warning_messages("grey; matched in grey | cut off")
        ['grey; matched in grey', 'cut off']
        >>> warning_messages("")
        []
    """
    return [m for m in warning.split(WARNING_SEPARATOR) if m]


@dataclass
class PairOutcome:
    """One pair's row of the summary.

    Attributes:
        index: position of the pair in the listing, from 0.
        name: the pair's name (its output files' stem).
        left, right: where the images came from (paths or URLs).
        status: ``done``, ``skipped`` (complete outputs existed) or ``failed``.
        error: the one-line reason of a failure; empty otherwise.
        warning: what reading, predicting and writing the pair warned about (a disparity a 16-bit PNG cannot hold,
            an empty point cloud), ``" | "``-separated (:data:`WARNING_SEPARATOR`); for a skipped pair, the reasons
            recorded when it was done.
        height_px, width_px: the input size (0 when the pair could not be read; a skipped pair's as recorded when it
            was done).
        read_ms: reading and decoding both images, milliseconds.
        predict_ms: preparation, model and checks, milliseconds (wall time on the worker).
        model_ms: the predictor's own total, milliseconds (without ``export_ms``).
        export_ms: exporting the network to ONNX (or reading the export from the cache), checking it and
            opening its session before it ran (``--backend onnxruntime``: the first pair of each size),
            milliseconds; 0 for the others.
        write_ms: writing the output files, milliseconds.
        density: fraction of all pixels with a valid disparity (finite and above 0), 0..1 (``nan`` when not
            computed): predict's density (:attr:`~rtstereo.types.DisparityResult.density`), not eval's.
        worker: ``host:pid`` of the process that did the work.
    """

    index: int
    name: str
    left: str
    right: str
    status: str = FAILED
    error: str = ""
    warning: str = ""
    height_px: int = 0
    width_px: int = 0
    read_ms: float = 0.0
    predict_ms: float = 0.0
    model_ms: float = 0.0
    export_ms: float = 0.0
    write_ms: float = 0.0
    density: float = math.nan
    worker: str = ""

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def disk_full(self) -> str | None:
        """The system's reason when the pair failed on a full disk or quota (``No space left on device``), or ``None``.

        Examples:
            >>> PairOutcome(0, "a", "l.png", "r.png", error="cannot write out/a.pfm: No space left on device").disk_full
            'No space left on device'
        """
        if self.status != FAILED:
            return None
        # every pair after it would fail alike, so a batch stops there
        return disk_full_reason(self.error)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PairOutcome:
        """Rebuild from a row (extra keys are ignored, numbers cast back)."""
        kwargs = {}
        for f in fields(cls):
            if f.name in row:
                value = row[f.name]
                kwargs[f.name] = value.item() if hasattr(value, "item") else value
        return cls(**kwargs)


@dataclass
class BatchSummary:
    """The outcomes of one batch run.

    Attributes:
        outcomes: one per pair reached, in listing order.
        listed: how many pairs the batch listed (more than the outcomes after ``--fail-fast`` stopped it).
        elapsed_s: wall time of the run, seconds.
        engine: ``local`` or ``ray``.
        workers: processes that predicted (1 for ``local``).
        interrupted: the run was stopped by Ctrl-C; the pairs not reached count as such.
    """

    outcomes: list[PairOutcome] = field(default_factory=list)
    listed: int = 0
    elapsed_s: float = 0.0
    engine: str = "local"
    workers: int = 1
    interrupted: bool = False

    def __post_init__(self) -> None:
        self.outcomes.sort(key=lambda o: o.index)

    def __repr__(self) -> str:
        # the counts, not the outcomes: the dataclass's repr printed every pair's, some 400 characters a pair
        counts = self.counts
        return (
            f"BatchSummary(listed={self.listed}, done={counts[DONE]}, skipped={counts[SKIPPED]}, "
            f"failed={counts[FAILED]}, not_reached={self.not_reached}, elapsed_s={self.elapsed_s:.3f}, "
            f"engine={self.engine!r}, workers={self.workers}, interrupted={self.interrupted})"
        )

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(o.status for o in self.outcomes)
        return {status: tally.get(status, 0) for status in (DONE, SKIPPED, FAILED)}

    @property
    def failures(self) -> list[PairOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def not_reached(self) -> int:
        return self.listed - len(self.outcomes)

    @property
    def stopped_by_full_disk(self) -> PairOutcome | None:
        """The pair whose full disk stopped the batch before every pair was reached, else ``None``."""
        if not self.not_reached or self.interrupted:
            return None
        return next((o for o in self.outcomes if o.disk_full), None)

    @property
    def pairs_per_s(self) -> float:
        """Pairs done per second of wall time (skipped and failed pairs not counted)."""
        return self.counts[DONE] / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when no pair failed, 1 otherwise; 130 (as for SIGINT) when the run was interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.failures or self.not_reached else 0

    def report(self, command_line: bool = False) -> str:
        """One line: ``12 pairs: 10 done, 1 skipped, 1 failed; 4.2 pairs/s (local, 1 worker)``.

        Args:
            command_line: name the options as ``rtstereo predict`` takes them (``--overwrite``), not as
                :class:`~rtstereo.batch.job.BatchJob` and ``run_local`` do (``overwrite=True``), which a Python
                caller gave.
        """
        counts = self.counts
        overwrite, fail_fast = ("--overwrite", "--fail-fast") if command_line else ("overwrite=True", "fail_fast")
        line = f"{counted(self.listed, 'pair')}: {counts[DONE]} done, {counts[SKIPPED]} skipped"
        if counts[SKIPPED]:
            line += f" (complete outputs exist; {overwrite} redoes them)"
        line += f", {counts[FAILED]} failed"
        if self.not_reached:
            why = "interrupted" if self.interrupted else "disk full" if self.stopped_by_full_disk else fail_fast
            line += f", {self.not_reached} not reached ({why})"
        done = [o for o in self.outcomes if o.status == DONE]
        if done:
            mean_ms = sum(o.model_ms for o in done) / len(done)
            workers = counted(self.workers, "worker")
            line += (
                f"; {mean_ms:.1f} ms per pair in the model, {self.pairs_per_s:.2f} pairs/s ({self.engine}, {workers})"
            )
            export_s = sum(o.export_ms for o in done) / 1e3
            if export_s:  # in the wall time (pairs/s), not in the model's
                line += f"; {export_s:.1f} s of it for the network's ONNX exports (once per size and worker)"
        return line

    def write_table(self, path: str | Path) -> Path:
        """Write one row per pair to ``.parquet`` (needs pyarrow) or ``.csv``, atomically.

        Raises:
            InputError: ``path`` is no str or Path (a bare TypeError before).
            OutputError: another suffix, or the file cannot be written.
            MissingDependencyError: Parquet without pyarrow.
        """
        path = require_path(path, "summary", "a .parquet or .csv file name (str or Path)")
        suffix = path.suffix.lower()
        if suffix not in SUMMARY_SUFFIXES:
            raise OutputError(f"summary {path}: expected a .parquet or .csv file name")
        rows = [o.to_row() for o in self.outcomes]
        columns = [f.name for f in fields(PairOutcome)]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".parquet":
                pyarrow = require("pyarrow", "scale", "a Parquet summary")
                import pyarrow.parquet as parquet

                # Parquet strings are UTF-8: a path that is not (Linux names are bytes) keeps its odd bytes as \xff
                utf8 = [{k: shown(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]
                table = pyarrow.Table.from_pylist(utf8, schema=_arrow_schema(pyarrow))
                with atomic_path(path, "the summary") as partial, partial.open("wb") as f:
                    parquet.write_table(table, f)  # a file object: pyarrow takes path names in UTF-8 only
            else:
                text = io.StringIO()
                writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
                with atomic_path(path, "the summary") as partial:
                    # a path that is not UTF-8 (Linux names are bytes) is written back as the bytes it is
                    partial.write_text(text.getvalue(), encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise OutputError(f"cannot write the summary {path}: {os_reason(exc, path)}") from None
        return path


def record_outcomes(
    outcomes: Iterable[PairOutcome],
    into: list[PairOutcome],
    bar,
    on_outcome: Callable[[PairOutcome], None] | None,
    fail_fast: bool,
) -> None:
    """Take outcomes as an engine produces them: keep each, advance the bar, tell ``on_outcome``, and
    stop after the first failure when ``fail_fast``, and after the first full disk always (the same bookkeeping
    for every engine)."""
    for outcome in outcomes:
        into.append(outcome)
        bar.update(1)
        if on_outcome is not None:
            on_outcome(outcome)
        if (fail_fast and outcome.status == FAILED) or outcome.disk_full:
            break


def _arrow_schema(pyarrow):
    # The annotations are strings here (postponed evaluation): "int", "float", "str".
    kinds = {"int": pyarrow.int64(), "float": pyarrow.float64(), "str": pyarrow.string()}
    return pyarrow.schema([(f.name, kinds[str(f.type)]) for f in fields(PairOutcome)])


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during :func:`~rtstereo.batch.local.run_local` or :func:`~rtstereo.scale.predict.run_ray`;
    :attr:`summary` holds the pairs done before it (``interrupted`` set). A ``KeyboardInterrupt``, as
    :meth:`Stream.run <rtstereo.stream.Stream.run>` raises again and ``eval`` does, so that a script looping over
    batches stops instead of going on to the next one."""

    def __init__(self, summary: BatchSummary):
        super().__init__(f"interrupted after {len(summary.outcomes)} of {counted(summary.listed, 'pair')}")
        self.summary = summary
