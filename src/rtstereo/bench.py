"""Speed (and optionally accuracy) sweeps: size x disparity range or iterations x precision x backend.

One run measures every combination of the options for one or more models on the same machine, so
that ratios between rows (ONNX Runtime against PyTorch, any method against a baseline such as SGBM)
compare like with like.

For each combination: ``warmup`` untimed calls (the first one, reported as ``first_ms``, includes
an on-the-fly ONNX export or a TensorRT engine build), then ``runs`` timed calls of the whole
``Predictor.predict`` (normalisation, padding, network, unpadding). The backends of one
configuration are timed in alternation, call by call, so that their ratio survives a machine whose
load changes. Reported: each timed call's ms (``times_ms``), their median and p90 (NumPy's linear
interpolation), FPS (1000 / median), and peak memory in MiB (2**20 bytes; ``peak_memory_mb`` in the JSON) over the
first timed call: on the CPU the peak resident set size minus the RSS before the predictor was built
(sampled every 2 ms; what earlier rows freed is handed back to the system first, so that a row reusing it
is not read as 0 MiB; a network's PyTorch module, built once for the rows of its settings, and PyTorch's
import are before that baseline for each of its rows alike, not in the first one's figure), on CUDA with
the torch backend ``torch.cuda.max_memory_allocated``.

With ``data`` the same predictors are scored on the datasets (:func:`rtstereo.eval.evaluate`). The
pair is resized to the row's size, run, and the disparity resized back to the ground truth's size
and multiplied by the width ratio, so a lower resolution is scored at full resolution; an export of fixed size
resizes each scene itself instead, as ``predict`` and ``eval`` run it, so that its figures are eval's. With a
``reference`` model they are scored against its map of each pair instead, on pairs that need no ground
truth (:mod:`rtstereo.bench_reference`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import difflib
import functools
import gc
import importlib.metadata
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .bench_reference import (
    MANIFEST_SUFFIXES,
    Reference,
    _is_checkpoint,
    check_not_two_datasets,
    compute_reference_maps,
    model_spec,
    pairs_of,
    parse_reference,
    resize_disparity,
    score_against_reference,
    setting_text,
    stretched_notes,
    stretched_pairs_notes,
    views_at,
)
from .errors import (
    InputError,
    MissingDependencyError,
    OutputError,
    RtStereoError,
    require,
    require_path,
    require_whole,
)
from .io.atomic import (
    atomic_path,
    interrupted_results_stem,
    interruption_cause,
    os_reason,
    remove_interrupted_results,
)
from .models import architecture_range_px, get_spec, is_onnx_file, resolve_alias
from .models.registry import coerce_setting
from .runtime.agreement import check_action
from .runtime.backends import TORCH_RUNTIME_SETTINGS
from .runtime.heap import release_freed_memory
from .runtime.onnx import RUNTIME_SETTINGS as ONNX_RUNTIME_SETTINGS
from .runtime.onnx import HalfOnCpuWarning
from .runtime.postprocess import POSTPROCESS_SETTINGS
from .runtime.predictor import Predictor
from .runtime.providers import check_thread_count, parse_providers
from .text import counted
from .types import DisparityResult

BACKENDS = ("torch", "onnxruntime", "opencv")
PRECISIONS = ("fp32", "fp16", "bf16")
PRECISION_WORDS = {"fp32": "Full", "fp16": "Half", "bf16": "bf16", "-": "-"}
# An fp16 file on ONNX Runtime's CPU provider runs, so its row is timed (a CPU is where some deploy such a
# file), but it is labelled: that provider runs the float16 operators it has no kernel for in float32, behind
# casts it inserts itself, and most x86 CPUs have no fast float16 arithmetic; rtnet 240x320 on this project's
# machine: 16.5 ms against 14.6 ms in fp32 (ONNX Runtime's InsertCastTransformer; onnxruntime issue 16778).
CPU_FP16_CAVEAT = "cpu"
CPU_FP16_NOTE = (
    "Half (CPU): an fp16 file on ONNX Runtime's CPU provider, which runs the float16 operators it has no "
    "kernel for in float32 behind casts: the time of that file on this CPU, not a measure of fp16 speed "
    "(slower than Full in this project's measurements); time fp16 with --device cuda"
)
ACCURACY_KEYS = ("d1", "epe", "bad-2")
#: The backends' own settings that a sweep may vary (``--set channels_last=true,false``): they go to
#: the backend, not the network, and only rows of that backend sweep them (``threads`` is run_bench's).
BACKEND_SETTINGS = {
    "torch": TORCH_RUNTIME_SETTINGS,
    "onnxruntime": tuple(k for k in ONNX_RUNTIME_SETTINGS if k != "threads"),
}


@dataclass(frozen=True)
class BenchCase:
    """One combination of the sweep.

    Attributes:
        model: registry name.
        backend: ``torch``, ``onnxruntime`` or ``opencv``.
        size_hw: input ``(H, W)``.
        precision: ``fp32``, ``fp16``, ``bf16``, or ``-`` for classical methods.
        settings: the swept settings (``max_disp``, ``iters``...), the model's defaults for the rest.
        backend_settings: the swept settings of the backend (:data:`BACKEND_SETTINGS`), its
            defaults for the rest.
    """

    model: str
    backend: str
    size_hw: tuple[int, int]
    precision: str
    settings: tuple[tuple[str, Any], ...] = ()
    backend_settings: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        swept = " ".join(f"{k}={setting_text(v)}" for k, v in self.settings + self.backend_settings)
        size = f"{self.size_hw[1]}x{self.size_hw[0]}"
        return " ".join(part for part in (self.model, self.backend, size, swept, self.precision) if part)


@dataclass
class BenchRow:
    """The measurements of one case (``status`` ``ok``, ``skipped`` or ``failed`` with a reason)."""

    case: BenchCase
    status: str = "ok"
    reason: str = ""
    first_ms: float = float("nan")
    median_ms: float = float("nan")
    p90_ms: float = float("nan")
    inference_median_ms: float = float("nan")
    fps: float = float("nan")
    peak_memory_mb: float = float("nan")  # MiB (bytes / 2**20), despite the name, which JSON files carry
    memory_kind: str = ""
    vs_torch: float = float("nan")
    vs_baseline: float = float("nan")
    accuracy: dict[str, float] = field(default_factory=dict)
    describe: dict[str, Any] = field(default_factory=dict)
    caveat: str = ""  # what the time is not a measure of (CPU_FP16_CAVEAT), shown beside the precision
    file_precision: str = ""  # an exported file's own precision (fp32, fp16, int8): its case's is "-"
    times_ms: list[float] = field(default_factory=list)  # each timed call's total, in the order run
    #: the size the row ran at where the memory budget made it run smaller than its own (its network's, for the
    #: hybrid), else None: a 288x384 row run at 224x288 was labelled 288x384, only a warning said otherwise
    ran_at_hw: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        case = data.pop("case")
        case["settings"] = dict(self.case.settings)
        case["backend_settings"] = dict(self.case.backend_settings)
        case["size_hw"] = list(self.case.size_hw)
        if data["ran_at_hw"] is None:  # as eval's scenes: only where it ran smaller
            del data["ran_at_hw"]
        return {**case, **{k: _finite_or_none(v) for k, v in data.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchRow:
        """The row :meth:`to_json` wrote (``None`` back to ``nan``)."""
        case = BenchCase(
            data["model"],
            data["backend"],
            tuple(data["size_hw"]),
            data["precision"],
            tuple(data["settings"].items()),
            tuple(data.get("backend_settings", {}).items()),
        )
        names = {f.name for f in dataclasses.fields(cls)} - {"case"}
        values = {k: (float("nan") if v is None else v) for k, v in data.items() if k in names}
        return cls(case, **values)


@dataclass
class BenchReport:
    """All rows of a sweep with the machine they ran on."""

    rows: list[BenchRow]
    options: dict[str, Any]
    machine: dict[str, Any]
    baseline: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Ctrl-C stopped the sweep: ``rows`` holds the configurations measured before it, ``cases`` counts them all.
    interrupted: bool = False
    cases: int | None = None
    #: ``--reference``: the model the accuracy is against instead of ground truth (:mod:`rtstereo.bench_reference`):
    #: ``label``, ``model``, ``settings``, ``size_hw``, the ``pairs`` it ran on and those it ``failed`` on.
    reference: dict[str, Any] | None = None
    #: what stopped it: ``Ctrl-C`` or the signal's name (``SIGTERM``); ``None`` where not known.
    interrupted_by: str | None = None

    def table(self) -> str:
        """Markdown, in the layout of the seed's table (resolution, disparity levels, precision,
        time), then the detailed columns."""
        baseline = self.baseline  # its column only with --baseline (a column of dashes said nothing)
        with_torch = any(r.case.backend == "torch" for r in self.rows)  # so is x torch time's, without a torch row
        header = [
            "Model",
            "Backend",
            "Image resolution",
            "Disparity resolution",
            "Precision",
            "Inference time",
            "median ms",
            "p90 ms",
            "FPS",
            "peak MiB",  # bytes / 2**20, as the JSON's peak_memory_mb (its name kept for the files written before)
            *(["x torch time"] if with_torch else []),
            *([f"x {baseline} time"] if baseline else []),
        ]
        with_accuracy = any(r.accuracy for r in self.rows)
        if with_accuracy:
            header += (
                ["EPE vs ref px", "bad-1 vs ref %", "bad-2 vs ref %"]
                if self.reference
                else ["D1 %", "EPE px", "bad-2 %"]
            )
        lines = ["|" + "|".join(header) + "|", "|" + "|".join("---" for _ in header) + "|"]
        for row in self.rows:
            case = row.case
            cells = [
                _model_cell(case),
                case.backend,
                _resolution_cell(row),
                _levels(row),
                _precision_cell(row),
            ]
            if row.status != "ok":
                cells += [f"{row.status}: {_reason_cell(row.reason)}"] + [""] * (len(header) - len(cells) - 1)
            else:
                cells += [
                    f"{row.median_ms / 1000:.3g} s",
                    f"{row.median_ms:.1f}",
                    f"{row.p90_ms:.1f}",
                    f"{row.fps:.2f}",
                    _num(row.peak_memory_mb, "{:.0f}"),
                    *([_ratio(row.vs_torch)] if with_torch else []),
                    *([_ratio(row.vs_baseline)] if baseline else []),
                ]
                if with_accuracy and self.reference:
                    cells += [
                        _num(row.accuracy.get("epe"), "{:.3f}"),
                        _num(row.accuracy.get("bad-1"), "{:.2f}"),
                        _num(row.accuracy.get("bad-2"), "{:.2f}"),
                    ]
                elif with_accuracy:
                    cells += [
                        _num(row.accuracy.get("d1"), "{:.2f}"),
                        _num(row.accuracy.get("epe"), "{:.3f}"),
                        _num(row.accuracy.get("bad-2"), "{:.2f}"),
                    ]
            lines.append("|" + "|".join(c.replace("|", "\\|") for c in cells) + "|")  # a "|" split its cell
        lines.append("")
        runs, warmup = self.options.get("runs", 0), self.options.get("warmup", 0)
        lines.append(
            f"Inference time and ms: the whole predict call per pair, median of {counted(runs, 'run')} after "
            f"{counted(warmup, 'warm-up call')}, the backends of one configuration timed in alternation"
            + (
                "; x torch time: this row's median / the (first) torch row's with the same model settings and "
                "precision (none where that row was not measured: fp16 on a CPU)"
                if with_torch
                else ""
            )
            + (
                f"; x {baseline} time: / the {baseline} row of the same size (and settings, backend and precision, "
                "where it has such a row; else the first of its rows that fits best, in the order of the sweep)"
                if baseline
                else ""
            )
            + f". {self.machine.get('cpu', '')}, {self._threads_said()}"
            + self._torch_threads()
            + (f", GPU {self.machine['gpu']}" if self.machine.get("gpu") else "")
            + "."
        )
        unmatched = self._without_baseline() if baseline else ""
        if unmatched:
            lines.append(unmatched)
        if any(row.caveat == CPU_FP16_CAVEAT for row in self.rows):
            lines.append(CPU_FP16_NOTE + ".")
        random_models = self.options.get("random_weights_models") or []
        if random_models:  # the table alone did not say so: its rows read as the trained networks'
            lines.append(
                f"Random weights (--random-weights): {', '.join(random_models)}; timing only, their disparities mean "
                "nothing."
            )
        if self.reference:
            lines.append(self._reference_note())
        shortened = [row for row in self.rows if row.status != "ok" and _reason_cell(row.reason) != row.reason]
        if shortened:  # the advice at the end of a long reason (after a long path) is not lost
            lines.append("")
            lines.append("The rows not measured, with their reasons whole:")
            lines += [
                f"- {_model_cell(r.case)} {r.case.backend} {_resolution(r.case.size_hw)} {r.case.precision}: "
                f"{r.status}: {r.reason}"
                for r in shortened
            ]
        if self.interrupted:  # the table must not pass for the whole sweep
            by = f" ({self.interrupted_by})" if self.interrupted_by else ""  # kill is no Ctrl-C
            lines.append(f"Interrupted{by}: {len(self.rows)} of {self.cases} rows; the rest were not measured.")
        return "\n".join(lines)

    def markdown(self) -> str:
        """``<stem>.md``: :meth:`table`, and under it the notes that the command line prints on stderr and
        ``bench.json`` holds (how a fixed-size export is scored, scenes stretched to a row's size): the table alone left
        them out."""
        if not self.notes:
            return self.table()
        return "\n".join([self.table(), "", "Notes:", *(f"- {note}" for note in self.notes)])

    def _without_baseline(self) -> str:
        """Why measured rows have no x BASELINE time: the baseline has no measured row of their size (its row was
        skipped or failed there, or it never ran there, as SGBM at 480x640 beside an export fixed at 96x128). A dash
        alone said nothing."""
        baseline = self.baseline
        measured = {r.case.size_hw for r in self.rows if r.case.model == baseline and r.status == "ok"}
        sizes = dict.fromkeys(r.case.size_hw for r in self.rows if r.status == "ok" and r.case.size_hw not in measured)
        if not sizes:
            return ""
        reasons = []
        for size_hw in sizes:
            own = list(
                dict.fromkeys(r.status for r in self.rows if r.case.model == baseline and r.case.size_hw == size_hw)
            )
            why = f"{baseline}'s row was {' or '.join(own)}" if own else f"{baseline} did not run at that size"
            reasons.append(f"{_resolution(size_hw)}, where {why}")
        return f"x {baseline} time: none for the rows of {'; '.join(reasons)}."

    def _reference_note(self) -> str:
        """What the ``vs ref`` columns are against, over which pairs, and how other sizes are compared."""
        reference = self.reference or {}
        pairs, failed = reference.get("pairs", []), reference.get("failed", {})
        sizes = {tuple(size) for size in reference.get("sizes_hw", [])}
        other = [r for r in self.rows if r.accuracy and (len(sizes) != 1 or r.case.size_hw not in sizes)]
        note = (
            f"vs ref: against the map of the reference, {reference.get('label')}, of the same pair (not ground "
            f"truth), over the pixels where it is valid (a row's invalid pixel there counts as wrong); mean over "
            f"{counted(len(pairs), 'pair')}"
        )
        if other:
            note += (
                "; a row of another size than the reference's map is resized to it, its disparities scaled by the "
                "width ratio"
            )
        if failed:
            name, reason = next(iter(failed.items()))
            note += f"; the reference failed on {counted(len(failed), 'pair')}, left out (first: {name}: {reason})"
        return note + "."

    def _threads_said(self) -> str:
        """``--threads`` as the footer and the plot say it: ``1 thread``, ``2 threads``, ``default threads``."""
        threads = self.options.get("threads")
        return counted(threads, "thread") if threads else "default threads"

    def _torch_threads(self) -> str:
        """`` (PyTorch's: N)`` where the torch rows ran on other threads than ``--threads`` said (its default)."""
        counts = sorted(
            {r.describe["threads"] for r in self.rows if r.case.backend == "torch" and "threads" in r.describe}
        )
        if not counts or counts == [self.options.get("threads")]:
            return ""
        return f" (PyTorch's: {', '.join(map(str, counts))})"

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.machine.get("date"),
            "commit": self.machine.get("commit"),
            "machine": self.machine,
            "options": self.options,
            "baseline": self.baseline,
            "notes": self.notes,
            "interrupted": self.interrupted,
            "interrupted_by": self.interrupted_by,
            "cases": self.cases,
            "reference": self.reference,
            "rows": [r.to_json() for r in self.rows],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchReport:
        """A report read back from ``bench.json`` (to redraw its table or plot)."""
        return cls(
            rows=[BenchRow.from_json(r) for r in data["rows"]],
            options=dict(data["options"]),
            machine=dict(data["machine"]),
            baseline=data.get("baseline"),
            notes=list(data.get("notes", [])),
            interrupted=bool(data.get("interrupted", False)),
            cases=data.get("cases"),
            reference=data.get("reference"),
            interrupted_by=data.get("interrupted_by"),
        )

    def save(self, folder: str | Path, stem: str = "bench") -> list[Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and, with accuracy, ``<stem>.png`` into ``folder``
        (without matplotlib the plot is left out and :attr:`notes` says so; the tables are written).
        A ``<stem>.png`` of an earlier sweep that this one does not replace is removed, with a note. An interrupted
        sweep's files are ``<stem>.interrupted.*`` when ``<stem>.json`` holds an earlier complete sweep's, which is
        kept (with a note); a complete sweep removes such files of an earlier interrupted one (with a note)."""
        folder = require_path(folder, "folder")
        if self.interrupted:
            partial_stem = interrupted_results_stem(folder, stem)
            if partial_stem != stem:
                self.notes.append(
                    f"{folder / stem}.json holds an earlier complete sweep and is kept: this interrupted one is "
                    f"written as {partial_stem}.*"
                )
            stem = partial_stem
        json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"

        def write_results() -> None:
            # Temporary names, then renames: an interrupted run leaves no results that look complete.
            with atomic_path(json_path, "benchmark results") as tmp:
                tmp.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
            with atomic_path(md_path, "benchmark results") as tmp:
                tmp.write_text(self.markdown() + "\n", encoding="utf-8", errors="surrogateescape")  # names in bytes

        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_results()
        except OSError as exc:
            raise OutputError(f"cannot write benchmark results to {folder}: {os_reason(exc, folder / stem)}") from None
        written = [json_path, md_path]
        notes_written = len(self.notes)
        if not self.interrupted:
            removed = remove_interrupted_results(folder, stem, (".json", ".md", ".png"))
            if removed:
                names = ", ".join(p.name for p in removed)
                self.notes.append(f"removed {names} in {folder}, an earlier interrupted sweep's: this one is complete")
        plot_path = folder / f"{stem}.png"
        if any(r.accuracy for r in self.rows):
            try:
                written.append(self.plot(plot_path))
            except MissingDependencyError as exc:  # the figures are in the tables already
                self.notes.append(f"no {stem}.png: {exc}")
        if plot_path not in written and plot_path.is_file():  # an earlier sweep's plot would pass for this one's
            try:
                plot_path.unlink()
            except OSError as exc:
                reason = os_reason(exc, plot_path)
                raise OutputError(f"cannot remove the earlier sweep's {plot_path}: {reason}") from None
            # Without matplotlib a sweep with accuracy has no plot either: "no accuracy to plot" was said of it too.
            why = "could not be plotted" if any(r.accuracy for r in self.rows) else "has no accuracy to plot"
            self.notes.append(f"removed {plot_path}, an earlier sweep's plot: this one {why}")
        if len(self.notes) > notes_written:  # the files held the notes printed, less the ones of these last steps
            try:
                write_results()
            except OSError as exc:
                reason = os_reason(exc, json_path)
                raise OutputError(f"cannot write benchmark results to {json_path}: {reason}") from None
        return written

    def plot(self, path: str | Path) -> Path:
        """Quality (D1, or with a reference the EPE against it) against speed (median ms), one point per row
        with accuracy."""
        path = require_path(path, "path")
        matplotlib = require("matplotlib", "viz", "the quality-vs-speed plot")
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        key = "epe" if self.reference else "d1"
        rows = [r for r in self.rows if r.status == "ok" and np.isfinite(r.accuracy.get(key, np.nan))]
        fig, ax = plt.subplots(figsize=(8, 5.5))
        # Colour: model and backend (legend); marker: precision; text beside each point: the rest.
        series = list(dict.fromkeys((r.case.model, r.case.backend) for r in rows))
        for index, row in enumerate(rows):
            colour = f"C{series.index((row.case.model, row.case.backend)) % 10}"
            ax.scatter(row.median_ms, row.accuracy[key], s=36, c=colour, marker=plot_marker(row))
            size = f"{row.case.size_hw[1]}x{row.case.size_hw[0]}"
            precision = _precision_cell(row)
            shown = [setting_text(v) for _, v in row.case.settings]
            text = " ".join([size, *shown, *([precision] if precision != "-" else [])])
            ax.annotate(
                text,
                (row.median_ms, row.accuracy[key]),
                fontsize=6.5,
                xytext=(5, 4 - 9 * (index % 3)),
                textcoords="offset points",
                color=colour,
            )
        for index, (model, backend) in enumerate(series):
            ax.scatter([], [], c=f"C{index % 10}", marker="o", label=f"{model} ({backend})")
        ax.legend(fontsize=8, loc="best")
        time_axis(ax.xaxis, [row.median_ms for row in rows])
        ax.set_xlabel(f"median time per pair, ms (log scale)\nmarker: {PLOT_MARKERS_SAID}")
        ax.set_ylabel(
            f"EPE against the reference, px (lower is better)\n{self.reference['label']}"
            if self.reference
            else "D1, % (lower is better)"
        )
        ax.set_title(
            f"quality vs speed ({self.machine.get('cpu', '')}, {self._threads_said()})",
            fontsize=9,
        )
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)
        return Path(path)


def time_axis(axis: Any, times_ms: Sequence[float]) -> None:
    """A log-scale axis of times in ms labelled with their values: the decades and, between them, 2 and 5 (every step,
    1 to 9, over a span of less than 5 times). Every minor tick was labelled by a ScalarFormatter, whose labels ran
    into each other over two decades ("40050060070080000") and read 0.7, 0.8 and 0.9 as "1"."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    finite = [t for t in times_ms if np.isfinite(t) and t > 0]
    narrow = bool(finite) and max(finite) / min(finite) < 5
    said = FuncFormatter(lambda value, _position: f"{value:g}")
    axis.set_major_locator(LogLocator(base=10))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)) if narrow else (2.0, 5.0)))
    axis.set_major_formatter(said)
    axis.set_minor_formatter(said)


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _num(value: float | None, pattern: str) -> str:
    return "-" if value is None or not np.isfinite(value) else pattern.format(value)


def _ratio(value: float | None) -> str:
    """A ratio with two decimals, or two significant digits below 0.1, where two decimals would read 0.00.

    Examples:
        >>> _ratio(0.5512), _ratio(0.0018790), _ratio(1563.16), _ratio(float("nan"))
        ('0.55', '0.0019', '1563.16', '-')
    """
    return _num(value, "{:.2g}" if value is not None and abs(value) < 0.1 else "{:.2f}")


def _resolution(size_hw: tuple[int, int]) -> str:
    return f"{size_hw[0]}p ({size_hw[1]}x{size_hw[0]})"


def _resolution_cell(row: BenchRow) -> str:
    """The row's size, and the size it ran at where that was smaller (the memory budget).

    Examples:
        >>> row = BenchRow(BenchCase("rtnet-v5", "onnxruntime", (288, 384), "-"), ran_at_hw=[224, 288])
        >>> _resolution_cell(row)
        '288p (384x288), ran at 224p (288x224)'
    """
    if not row.ran_at_hw:
        return _resolution(row.case.size_hw)
    what = "its network ran" if "network" in row.describe else "ran"
    return f"{_resolution(row.case.size_hw)}, {what} at {_resolution((row.ran_at_hw[0], row.ran_at_hw[1]))}"


def _model_cell(case: BenchCase) -> str:
    """The model, and the swept settings its row has that no column shows (``max_disp`` and ``iters``
    have theirs), so that the rows of a ``--set`` sweep can be told apart.

    Examples:
        >>> _model_cell(BenchCase("hybrid", "onnxruntime", (480, 640), "-", (("max_disp", 96), ("three_way", True))))
        'hybrid (three_way=true)'
    """
    shown = [
        f"{k}={setting_text(v)}" for k, v in case.settings + case.backend_settings if k not in ("max_disp", "iters")
    ]
    return f"{case.model} ({', '.join(shown)})" if shown else case.model


def _levels(row: BenchRow) -> str:
    settings = {**row.describe, **dict(row.case.settings)}
    if "max_disp" in settings:
        # OpenCV's matchers round the range up to a multiple of 16; the hybrid's SGBM searches a quarter of the width
        # at most (as eval's column shows it)
        searched = settings.get("searched_disp", settings.get("sgbm_searched_disp"))
        if searched is not None and str(searched) != str(settings["max_disp"]):
            return f"{settings['max_disp']} ({searched} searched)"
        return str(settings["max_disp"])
    if "iters" in settings:
        return f"{settings['iters']} iters"
    fixed = architecture_range_px(settings)  # AnyNet's, which no setting holds (a registry row's or an export's)
    return "-" if fixed is None else str(fixed)


# --------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------


def expand_cases(
    models: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    sweeps: Mapping[str, Sequence[Any]],
    precisions: Sequence[str],
    backends: Sequence[str],
) -> tuple[list[BenchCase], list[str]]:
    """Every combination, per model only over the axes it has.

    A classical method runs once per size and setting on the opencv backend (no precision), a
    packaged ONNX model or an exported ``.onnx`` file on onnxruntime (its file's precision and
    settings); a network (a registry name or a self-describing checkpoint) on each listed backend
    except opencv. A backend's own settings (:data:`BACKEND_SETTINGS`) are swept on that backend's
    rows only. The post-processing switches every model takes (``fill_left_border``,
    ``refine_edges``) are swept on every model, exported files included. Swept settings a model
    does not have are left out for it, with a note. The cases hold each value in its setting's type
    (``--set block_size=5,7`` gives ``5`` and ``7``, ``true`` a bool), as their JSON then does.

    Returns:
        ``(cases, notes)``.

    Raises:
        InputError: an unknown backend or precision, no size (or an empty list of models, precisions, backends or
            a swept setting's values), a swept setting that no model of the sweep has
            (a typo: the sweep would run without it), or a value of the wrong type for a model that has it.

    Examples:
        >>> cases, notes = expand_cases(["sgbm", "crestereo"], [(48, 64)], {"max_disp": [32, 64], "iters": [2]},
        ...                             ["fp32"], ["torch", "opencv"])
        >>> [c.label for c in cases if c.model == "sgbm"]
        ['sgbm opencv 64x48 max_disp=32 -', 'sgbm opencv 64x48 max_disp=64 -']
        >>> notes
        ['sgbm has no setting iters: not swept for it', 'crestereo has no setting max_disp: not swept for it']
        >>> expand_cases(["sgbm"], [(48, 64)], {"blok_size": ["5", "7"]}, ["fp32"], ["torch"])
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: blok_size is swept, but no model benched (sgbm) has that setting; did you mean \
block_size?
        >>> cases, _ = expand_cases(["anynet"], [(48, 64)], {"channels_last": ["true", "false"]},
        ...                         ["fp32"], ["torch", "onnxruntime"])
        >>> [c.label for c in cases]
        ['anynet torch 64x48 channels_last=true fp32', 'anynet torch 64x48 channels_last=false fp32', \
'anynet onnxruntime 64x48 fp32']
    """
    for backend in backends:
        if backend not in BACKENDS:
            raise InputError(f"unknown backend '{backend}' (expected some of: {', '.join(BACKENDS)})")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision '{precision}' (expected some of: {', '.join(PRECISIONS)})")
    if not sizes:
        raise InputError("no sizes to benchmark (for example --sizes 480x640)")
    # An empty list benched nothing, or left its axis out, unsaid: models=[] gave an empty table, max_disp=[] rows
    # without the setting
    for name, values in (("models", models), ("precisions", precisions), ("backends", backends), *sweeps.items()):
        if not values:
            raise InputError(f"{name}: an empty list; give at least one value (or leave it out)")
    cases: list[BenchCase] = []
    notes: list[str] = []
    taken = set(POSTPROCESS_SETTINGS)  # the swept settings some model of the sweep has
    # Typed as the settings take them: text from --set ("192", "true") was stored so in bench.json, and "5" and
    # "5.0" were two rows of one setting.
    sweeps = {
        key: _typed(values, key, False if key in POSTPROCESS_SETTINGS else None) for key, values in sweeps.items()
    }
    for model in models:
        if is_onnx_file(model):  # an exported file: its settings and precision are fixed in it
            # Which of them it has, its contract says when it is opened; threads are no file's setting but --threads
            # (--set threads=1,2 was a note that the file lacks a setting threads, and --threads 1 beside it won).
            taken |= set(sweeps) - {"threads"}
            runtime = _combos(sweeps, BACKEND_SETTINGS["onnxruntime"])
            cases += [
                BenchCase(model, "onnxruntime", tuple(size_hw), "-", combo, extra)
                for size_hw, combo, extra in itertools.product(sizes, _combos(sweeps, POSTPROCESS_SETTINGS), runtime)
            ]
            own = _exported_settings(model)  # None: unreadable, which its rows say
            notes += [
                f"{model} is an exported file: {k} is fixed in it, not swept"
                if own is None or k in own
                else f"{model} is an exported file without a setting {k} (its settings: {', '.join(own) or 'none'}): "
                f"{k} is not swept"
                for k in sweeps
                if k not in BACKEND_SETTINGS["onnxruntime"] and k not in POSTPROCESS_SETTINGS
            ]
            # --precision fp16 timed an fp32 file as it is, its row reading "Full", and nothing said so (predict
            # refuses it); fp32, the default, is no request to note.
            own_precision = _exported_precision(model)
            notes += [
                f"{model} is an exported file: its precision ({own_precision}) is fixed in it, --precision "
                f"{precision} is not timed for it"
                for precision in precisions
                if own_precision and precision not in ("fp32", own_precision)
            ]
            continue
        spec = model_spec(model)
        name = model if _is_checkpoint(model) else spec.name
        if spec.kind == "classical":
            model_backends, model_precisions = ["opencv"], ["-"]
        elif spec.kind in ("onnx", "hybrid"):  # a packaged file (alone or with SGBM): ONNX Runtime, as written
            model_backends, model_precisions = ["onnxruntime"], ["-"]
            notes += [
                f"{spec.name} runs its packaged fp32 file: --precision {precision} is not timed for it"
                for precision in precisions
                if precision != "fp32"
            ]
        else:
            model_backends = [b for b in backends if b != "opencv"]
            model_precisions = list(precisions)
            if not model_backends:
                notes.append(f"{spec.name} is a network: it runs on torch or onnxruntime, not opencv (skipped)")
        runtime_keys = {k for b in model_backends for k in BACKEND_SETTINGS.get(b, ())}
        taken |= set(spec.defaults) | runtime_keys
        # A value of the wrong type is a typo, not a row to skip: refused here.
        own_sweeps = {key: _typed(values, key, spec.defaults.get(key)) for key, values in sweeps.items()}
        notes += [
            f"{spec.name} has no setting {k}: not swept for it"
            for k in sweeps
            if k not in spec.defaults and k not in runtime_keys and k not in POSTPROCESS_SETTINGS
        ]
        combos = _combos(own_sweeps, (*spec.defaults, *POSTPROCESS_SETTINGS))
        for size_hw, combo, precision in itertools.product(sizes, combos, model_precisions):
            for backend in model_backends:
                for extra in _combos(own_sweeps, BACKEND_SETTINGS.get(backend, ())):
                    cases.append(BenchCase(name, backend, tuple(size_hw), precision, combo, extra))
    unknown = [key for key in sweeps if key not in taken]
    if unknown:  # a mistyped name would cost a whole sweep without it, said in a note at its end
        raise InputError(_no_model_has(unknown[0], models, taken))
    return cases, notes


def _typed(values: Sequence[Any], key: str, default: Any) -> list[Any]:
    """The swept ``values`` of ``key`` in the type of its ``default`` (``None``: a backend's setting, or one a model
    takes in any type), once each. PyTorch's switches take true/false as booleans beside their modes (``auto``,
    ``reduce-overhead``); ONNX Runtime's options are text (providers, a folder, an action).

    Examples:
        >>> _typed(["5", "7", "5.0"], "block_size", 5), _typed(["true", "auto"], "cuda_graphs", None)
        ([5, 7], [True, 'auto'])
    """
    if default is None and key in BACKEND_SETTINGS["torch"]:
        typed = []
        for value in values:
            try:
                typed.append(coerce_setting(key, value, False))
            except InputError:  # a mode: its backend says whether it knows it
                typed.append(value)
    else:
        typed = [coerce_setting(key, value, default) for value in values]
    # ONNX Runtime's options are text, checked only where a session opens: parity=true or providers=gpu skipped
    # every ONNX Runtime row, one by one, and the sweep of the others exited 0.
    check = {"parity": check_action, "providers": parse_providers}.get(key)
    for value in typed if check is not None else ():
        check(value)
    return list(dict.fromkeys(typed))


def _no_model_has(key: str, models: Sequence[str], taken: set[str]) -> str:
    """Why a swept setting that no model of the sweep has is refused, and what was probably meant."""
    backend = next((b for b, keys in BACKEND_SETTINGS.items() if key in keys), None)
    if backend is not None:
        hint = f": it is a setting of the {backend} backend, on which none of them runs here (--backend {backend})"
    elif key == "threads":
        hint = ": CPU threads are an option of their own, --threads N"
    else:
        close = difflib.get_close_matches(key, sorted(taken), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f" (they have: {', '.join(sorted(taken))})"
    return f"{key} is swept, but no model benched ({', '.join(models)}) has that setting{hint}"


def _swept_values(sweeps: Mapping[str, Sequence[Any]], cases: Sequence[BenchCase]) -> dict[str, list[Any]]:
    """Each swept setting's values as the rows hold them (typed: ``192``, not ``"192"``), in the order given; the
    values as given for a setting no row sweeps (an exported file's, fixed in it)."""
    held: dict[str, list[Any]] = {key: [] for key in sweeps}
    for case in cases:
        for key, value in case.settings + case.backend_settings:
            if key in held and value not in held[key]:
                held[key].append(value)
    return {key: held[key] or list(values) for key, values in sweeps.items()}


def _combos(sweeps: Mapping[str, Sequence[Any]], keys: Sequence[str]) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of the swept values of ``keys`` (``[()]`` when none is swept)."""
    axes = {k: list(v) for k, v in sweeps.items() if k in keys}
    return [tuple(zip(axes, values)) for values in itertools.product(*axes.values())] or [()]


class PeakRSS:
    """Peak resident set size while inside the ``with`` block, sampled by a thread (Linux ``/proc``)."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def current_bytes() -> int:
        """Resident set size now (0 where ``/proc/self/statm`` does not exist)."""
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.peak_bytes = self.current_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.current_bytes())


def synthetic_pair(size_hw: tuple[int, int], disparity_px: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random-texture pair whose right view is the left shifted by ``disparity_px``."""
    height, width = size_hw
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(2, height // 8), max(2, (width + disparity_px) // 8), 3), dtype=np.uint8)
    wide = cv2.resize(coarse, (width + disparity_px, height), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(wide[:, :width]), np.ascontiguousarray(wide[:, disparity_px:])


def timing_pair(size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, str]:
    """The pair timed at ``size_hw``: the repository's example pair fitted to it, else a synthetic one."""
    from .export.parity import parity_pair

    try:
        return parity_pair(size_hw)
    except InputError:
        left, right = synthetic_pair(size_hw)
        return left, right, "synthetic textured pair"


class ResizedPredictor:
    """Runs a predictor at a fixed size and brings the disparity back to the input's size.

    The disparity is resized with bilinear interpolation over its valid pixels and multiplied by
    ``W_in / W_run`` (it is measured in pixels of the image it belongs to); pixels invalid at the run
    size stay invalid.
    """

    def __init__(self, predictor: Predictor, size_hw: tuple[int, int]):
        self.predictor = predictor
        self.size_hw = size_hw

    def predict(self, left: np.ndarray, right: np.ndarray, calibration: Any = None) -> DisparityResult:
        height, width = left.shape[:2]
        run_h, run_w = self.size_hw
        if (height, width) == (run_h, run_w):
            return self.predictor.predict(left, right, calibration=calibration)
        result = self.predictor.predict(*views_at(left, right, self.size_hw))
        full = resize_disparity(result.disparity_px, (height, width))
        return dataclasses.replace(
            result, disparity_px=full, input_size_hw=(height, width), calibration=calibration, left=left
        )


def run_bench(
    models: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    *,
    sweeps: Mapping[str, Sequence[Any]] | None = None,
    precisions: Sequence[str] = ("fp32",),
    backends: Sequence[str] = ("torch",),
    weights: Mapping[str, str | Path | None] | None = None,
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 2,
    runs: int = 10,
    data: Sequence[str | Path | Sequence[str]] | None = None,
    baseline: str | None = None,
    random_weights: bool = False,
    fixed_files_at_own_size: bool = False,
    progress: Callable[[str], None] | None = None,
    reference: str | Reference | None = None,
) -> BenchReport:
    """Measure every combination of the options.

    Args:
        models: registry names (networks and classical methods).
        sizes: input sizes ``(H, W)``.
        sweeps: setting name -> values (``{"max_disp": [96, 192]}``, ``{"iters": [2, 5]}``).
        precisions: ``fp32``, ``fp16``, ``bf16`` (networks only).
        backends: ``torch``, ``onnxruntime`` (networks), ``opencv`` (classical methods always use it).
        weights: model name -> weights file or URL.
        device: ``cpu`` or ``cuda[:N]``.
        threads: CPU threads for PyTorch, ONNX Runtime and OpenCV (``None``: their defaults).
        warmup: untimed calls first (>= 1).
        runs: timed calls (>= 1).
        data: dataset folders; adds accuracy columns against their ground truth (and a plot when saved). With
            ``reference``, pairs without ground truth too: dataset folders, ``.csv``/``.parquet`` manifests or
            ``(LEFT, RIGHT)`` files, folders or globs (see :func:`rtstereo.bench_reference.pairs_of`).
        baseline: a model (a registry name, an exported ``.onnx`` file or an rtstereo checkpoint;
            added when not in ``models``) whose time at the same size divides every row's time.
        random_weights: registry networks given no weights are built without them (timing only; accuracy is then
            refused); exported files, checkpoints and networks given weights run on their own.
        fixed_files_at_own_size: time an exported ``.onnx`` file of fixed size at its own size instead of
            ``sizes`` (the command line's default when ``--sizes`` is not given: at another size its rows
            would only say that it cannot run there).
        progress: called with a line before each case: its label and how far the sweep is (``(row 3 of 12)``).
        reference: score every row against this model's map of each pair of ``data`` instead of ground truth
            (``"sgbm:max_disp=256,size=480x640"`` or a :class:`~rtstereo.bench_reference.Reference`; its
            weights from ``weights``): EPE and bad-N over the pixels where it is valid, each row's map brought
            to the reference's size. It runs once per pair, before the sweep.

    Returns:
        A :class:`BenchReport`. Ctrl-C (``KeyboardInterrupt``) ends the sweep early: the report then holds the
        configurations measured before it, the one it cut short left out, and says ``interrupted``.
    """
    from .datasets import find_samples

    models, sizes, precisions, backends = _checked_lists(models, sizes, precisions, backends)
    if baseline is not None:
        baseline = _text(baseline, "baseline", "a model name or file (str or Path)")
    if isinstance(data, (str, Path)):  # a folder's name taken letter by letter: "dataset folder not found: n"
        raise InputError(f"data: expected a list of dataset folders or pairs, got {type(data).__name__} {data!r}")
    for key, values in (sweeps or {}).items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InputError(f"sweeps[{key!r}]: expected a list of values, got {type(values).__name__} {values!r:.80}")
    warmup, runs = (
        require_whole(warmup, "warmup", "a whole number >= 1"),
        require_whole(runs, "runs", "a whole number >= 1"),
    )
    for name, count in (("warmup", warmup), ("runs", runs)):
        if count < 1:
            raise InputError(f"{name} must be >= 1, got {count}")
    if threads is not None:
        check_thread_count(threads)
    check_device(device, sweeps or {}, [*models, *([baseline] if baseline is not None else [])])
    # A value given twice (default,hybrid; x.onnx,./x.onnx; --sizes 480x640,480x640) is one row, not two timings of
    # one thing.
    models = _one_spelling_per_file(list(dict.fromkeys(resolve_alias(m) for m in models)))
    sizes = list(dict.fromkeys(tuple(size_hw) for size_hw in sizes))
    sweeps = {key: list(dict.fromkeys(values)) for key, values in (sweeps or {}).items()}
    precisions, backends = list(dict.fromkeys(precisions)), list(dict.fromkeys(backends))
    if baseline is not None:
        # A checkpoint or an exported file is named by its path, as its rows are (expand_cases).
        named_by_path = is_onnx_file(baseline) or _is_checkpoint(baseline)
        baseline = baseline if named_by_path else get_spec(resolve_alias(baseline)).name
        if named_by_path:  # a file benched already, written another way (./x.onnx, its absolute path): not twice
            spelled = [m for m in models if (is_onnx_file(m) or _is_checkpoint(m)) and Path(m).is_file()]
            baseline = next((m for m in spelled if os.path.samefile(m, baseline)), baseline)
        if baseline not in models:
            models.append(baseline)
    check_exported_files(
        models
    )  # a file ONNX Runtime cannot load, or without rtstereo's metadata, as predict refuses it
    # Only a registry network given no weights is built with random ones: an exported file has its own, and
    # `bench x.onnx --random-weights --data D` was refused as if its accuracy meant nothing.
    random_models = _random_weight_models(models, weights or {}) if random_weights else []
    if data and random_models:
        raise InputError(
            f"accuracy (--data) with random weights means nothing ({', '.join(random_models)} would have them): give "
            "--weights, or drop --data"
        )
    if reference is not None and not data:
        raise InputError("--reference scores the rows on --data PAIRS: give the pairs (folders, globs, a manifest)")
    if isinstance(reference, str):
        reference = parse_reference(reference)
    pair_like = [
        d
        for d in data or []
        if not isinstance(d, (str, Path)) or (Path(d).suffix.lower() in MANIFEST_SUFFIXES and not Path(d).is_dir())
    ]
    if pair_like and reference is None:  # a manifest or LEFT RIGHT has no ground truth to score against
        for item in pair_like:
            if not isinstance(item, (str, Path)) and len(item) == 2:
                check_not_two_datasets([str(v) for v in item])
        first = pair_like[0] if isinstance(pair_like[0], (str, Path)) else " ".join(map(str, pair_like[0]))
        raise InputError(
            f"--data {first}: pairs without ground truth are scored against a reference model: add --reference MODEL "
            "(e.g. --reference sgbm), or give a dataset folder with ground truth"
        )
    samples = find_samples(*data) if data and reference is None else []
    cases, notes = expand_cases(models, sizes, sweeps or {}, precisions, backends)
    if random_weights and not random_models:
        notes.append(
            f"--random-weights does not apply to {', '.join(models)}: only a registry network given no --weights is "
            "built with random weights"
        )
    if not random_weights:
        _check_weights_given(list(dict.fromkeys(case.model for case in cases)), weights or {})
    _check_torch_for(cases)
    if fixed_files_at_own_size:
        own = {case.model: _fixed_size_of(case.model) for case in cases if is_onnx_file(case.model)}
        cases = list(
            dict.fromkeys(
                dataclasses.replace(case, size_hw=own[case.model]) if own.get(case.model) else case for case in cases
            )
        )
    unscored = [s.name for s in samples if s.gt_path is None]  # accuracy needs ground truth
    samples = [s for s in samples if s.gt_path is not None]
    if unscored and not samples:
        raise InputError(
            f"--data {', '.join(map(str, data or []))}: no scene with ground truth ({len(unscored)} found without), "
            "so no accuracy to add; give a dataset with disparity maps, score the rows against a model's maps with "
            "--reference MODEL, or drop --data"
        )
    if unscored:
        notes.append(f"{counted(len(unscored), 'scene')} of --data without ground truth left out of the accuracy")
    broken = [s for s in samples if s.problem is not None]  # a missing right image, a damaged calib.txt
    if broken:
        first = f"{broken[0].name}: {broken[0].problem}"
        notes.append(f"{counted(len(broken), 'scene')} of --data left out of the accuracy (first: {first})")
        samples = [s for s in samples if s.problem is None]
    _set_threads(threads)
    score: Callable[[Predictor, BenchCase], dict[str, float]] | None = None
    maps = None
    failed_scenes: dict[str, str] = {}  # {scene: why} of the scenes some row could not be scored on
    if reference is not None:
        pairs, pair_notes = pairs_of(data or [])
        notes += pair_notes
        maps = compute_reference_maps(
            reference,
            pairs,
            weights=(weights or {}).get(reference.model),
            device=device,
            threads=threads,
            progress=progress,
        )
        if maps.failed:  # said on stderr too, not only under the table
            name, reason = next(iter(maps.failed.items()))
            notes.append(
                f"the reference failed on {counted(len(maps.failed), 'pair')} of --data, left out of the scores "
                f"(first: {name}: {reason})"
            )
        notes += stretched_pairs_notes(maps, [case.size_hw for case in cases])
        score = lambda predictor, case: score_against_reference(predictor, case.size_hw, maps)  # noqa: E731
    elif samples:
        score = functools.partial(_accuracy, samples, failed_scenes)
        scene_sizes = _scene_sizes(samples)
        notes += stretched_notes(scene_sizes, [case.size_hw for case in cases], what="scene")
        notes += _resized_scoring_note(cases, scene_sizes)
        notes += _one_range_note(cases)
    networks = _NetworkCache(weights or {}, random_weights, threads)
    rows: list[BenchRow] = []
    interrupted: str | None = None  # what stopped the sweep
    if progress is not None:  # an hour's sweep says how far it is
        say, started = progress, itertools.count(1)
        progress = lambda label: say(f"{label} (row {next(started)} of {len(cases)})")  # noqa: E731
    for group in _groups(cases):
        try:
            rows += _measure_group(group, networks, device, threads, warmup, runs, score, progress)
        except KeyboardInterrupt as exc:  # an hour's sweep keeps what it measured; a half-timed group is no result
            interrupted = interruption_cause(exc)
            break
    _add_ratios(rows, baseline)
    if failed_scenes:  # the rows' means are over the other scenes: said under the table and on stderr
        name, reason = next(iter(failed_scenes.items()))
        notes.append(
            f"{counted(len(failed_scenes), 'scene')} of --data could not be scored, left out of the accuracy of the "
            f"rows {'it' if len(failed_scenes) == 1 else 'they'} failed in (first: {name}: {reason})"
        )
    options = {
        "models": models,
        "sizes_hw": [list(s) for s in dict.fromkeys([*sizes, *(case.size_hw for case in cases)])],
        "sweeps": _swept_values(sweeps, cases),
        "precisions": list(precisions),
        # The backends the rows ran on (a classical method runs on opencv, a packaged ONNX model on
        # onnxruntime, whatever --backend says), and what --backend asked for.
        "backends": list(dict.fromkeys(case.backend for case in cases)),
        "backends_asked": list(backends),
        "device": device,
        "threads": threads,
        "warmup": warmup,
        "runs": runs,
        "data": [str(d) if isinstance(d, (str, Path)) else " ".join(map(str, d)) for d in data or []],
        # What applied: --random-weights on only exported files, checkpoints or networks given --weights (a note
        # says so) built nothing with random weights, and the record said true. What was asked, as for the backends.
        "random_weights": bool(random_models),
        "random_weights_models": random_models,
        "random_weights_asked": random_weights,
        "scenes": [s.name for s in samples] if maps is None else [m.source.name for m in maps.maps],
    }
    return BenchReport(
        rows=rows,
        options=options,
        machine=machine_info(device),
        baseline=baseline,
        notes=notes,
        interrupted=interrupted is not None,
        cases=len(cases),
        reference=None if maps is None else {"label": maps.reference.label, **maps.to_json()},
        interrupted_by=interrupted,
    )


def _checked_lists(
    models: Any, sizes: Any, precisions: Any, backends: Any
) -> tuple[list[str], list[tuple[int, int]], list[str], list[str]]:
    """The list arguments of :func:`run_bench`, checked at the boundary: ``"sgbm"`` was benched letter by letter
    ("unknown model 's'") and ``(480, 640)`` or ``runs="2"`` ended in a bare ``TypeError``.

    Raises:
        InputError: a str where a list belongs, an item of the wrong type, or a size that is not two whole numbers.
    """
    lists = []
    for name, value, what in (
        ("models", models, "model names or files"),
        ("precisions", precisions, "precision names"),
        ("backends", backends, "backend names"),
    ):
        if isinstance(value, (str, Path)) or not isinstance(value, Sequence):
            raise InputError(f"{name}: expected a list of {what}, e.g. [{value!r:.40}], got {type(value).__name__}")
        lists.append([_text(item, name, f"a list of {what} (str)") for item in value])
    if not isinstance(sizes, Sequence) or any(not isinstance(size, Sequence) or len(size) != 2 for size in sizes):
        raise InputError(f"sizes: expected a list of (height, width) pairs, e.g. [(480, 640)], got {sizes!r:.80}")
    checked_sizes = [
        (require_whole(h, "sizes", "whole numbers of pixels"), require_whole(w, "sizes", "whole numbers of pixels"))
        for h, w in sizes
    ]
    return lists[0], checked_sizes, lists[1], lists[2]


def _text(value: Any, name: str, expected: str) -> str:
    """A name or path as given (a ``Path`` as its text, ``./x.onnx`` kept so), else an :class:`InputError`."""
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{name}: expected {expected}, got {type(value).__name__} {value!r:.80}")
    return os.fspath(value)


def _check_weights_given(models: Sequence[str], weights: Mapping[str, Any]) -> None:
    """Refuse a network that needs weights and has none, before the sweep: its every row was skipped, saying so,
    while the others were timed, and ``bench anynet,sgbm`` exited 0.

    Raises:
        InputError: a registry network without weights (an rtstereo checkpoint carries its own).
    """
    for model in models:
        if is_onnx_file(model) or _is_checkpoint(model) or weights.get(model):
            continue
        spec = model_spec(model)
        if spec.kind == "network" and spec.needs_weights:
            raise InputError(
                f"model '{spec.name}' needs its weights: pass --weights FILE_OR_URL ({spec.name}=FILE beside other "
                f"models; official weights: {spec.weights_source}), or --random-weights to time it without them"
            )


def _check_torch_for(cases: Sequence[BenchCase]) -> None:
    """Refuse a sweep with a network built in PyTorch (a registry network, on either backend, or an rtstereo
    checkpoint) where torch cannot be imported, as ``predict`` refuses it: its every row was skipped, saying so,
    while the others were timed, and ``bench anynet,sgbm`` exited 0.

    Raises:
        MissingDependencyError: torch is not installed, or cannot be imported.
    """
    networks = list(dict.fromkeys(case.model for case in cases if _builds_a_network(case)))
    if networks:
        named = ", ".join(f"'{model}'" for model in networks)
        require("torch", "torch", f"the network {named} (bench times exported .onnx files without torch)")


def _random_weight_models(models: Sequence[str], weights: Mapping[str, Any]) -> list[str]:
    """The models ``random_weights`` builds without weights: registry networks given none (an exported file, an
    rtstereo checkpoint and a network given weights run on their own; a classical method has none)."""
    return [
        model
        for model in models
        if not (is_onnx_file(model) or _is_checkpoint(model) or weights.get(model))
        and model_spec(model).kind == "network"
    ]


def _one_spelling_per_file(models: list[str]) -> list[str]:
    """``models`` with each exported file or checkpoint once, as first written: ``x.onnx,./x.onnx`` timed one file
    twice, as two models (the baseline is matched to its model's file the same way).
    """
    files: list[str] = []
    out = []
    for model in models:
        if (is_onnx_file(model) or _is_checkpoint(model)) and Path(model).is_file():
            if any(os.path.samefile(model, other) for other in files):
                continue
            files.append(model)
        out.append(model)
    return out


def check_device(device: str, sweeps: Mapping[str, Sequence[Any]], models: Sequence[str] = ()) -> None:
    """Refuse a device that no backend knows, and CUDA where neither PyTorch nor ONNX Runtime has a GPU:
    every network row would be refused one by one, and classical methods would run on the CPU unsaid.

    Args:
        device: ``cpu`` or ``cuda[:N]``.
        sweeps: the swept settings (``providers`` among them accepts the CPU).
        models: the sweep's models: when ONNX models (and classical methods) only, ONNX Runtime alone decides,
            and the refusal names the onnxruntime-gpu build as predict's does, without importing PyTorch.

    Raises:
        InputError: ``device`` is not ``cpu`` or ``cuda[:N]``, or no CUDA GPU (or not GPU ``N``) is
            usable here. An ONNX Runtime provider list swept with ``--set providers=...`` accepts
            the CPU, as it does in ``predict``.
    """
    head, _, index = str(device).partition(":")
    if device != "cpu" and not (head == "cuda" and (not index or (index.isascii() and index.isdigit()))):
        raise InputError(f"device must be cpu or cuda[:N], got '{device}'")
    if device == "cpu" or "providers" in sweeps:
        return
    import onnxruntime

    from .runtime.providers import GPU_PROVIDERS

    ort_providers = onnxruntime.get_available_providers()
    if set(ort_providers) & set(GPU_PROVIDERS):
        return
    onnx_only = all(_runs_without_torch(m, sweeps) for m in models) and any(_is_onnx_model(m, sweeps) for m in models)
    if onnx_only:
        from .runtime.providers import check_gpu_build

        check_gpu_build(device)  # PyTorch's GPUs are no use to these rows: said as predict says it
    try:
        import torch
    except ImportError:
        gpus = 0
    else:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0:
        raise InputError(
            f"--device {device}: no CUDA GPU here (PyTorch sees none, and onnxruntime has only "
            f"{', '.join(sorted(ort_providers))}); bench on the CPU with --device cpu"
        )
    if index and int(index) >= gpus:
        names = "cuda:0" if gpus == 1 else f"cuda:0 to cuda:{gpus - 1}"
        raise InputError(f"--device {device}: PyTorch sees {counted(gpus, 'CUDA GPU')}, {names}")


def _is_onnx_model(model: str, sweeps: Mapping[str, Sequence[Any]]) -> bool:
    """An exported ``.onnx`` file, a packaged ONNX network, or the hybrid with its packaged network: it runs on
    ONNX Runtime only."""
    if is_onnx_file(model):
        return True
    try:
        spec = get_spec(resolve_alias(model))
    except RtStereoError:  # an unknown name is refused later, with its own message
        return False
    if spec.kind == "hybrid" and "network" not in sweeps:  # --set network=FILE.pt would run on PyTorch
        spec = get_spec(spec.network)
    return spec.kind == "onnx"


def _runs_without_torch(model: str, sweeps: Mapping[str, Sequence[Any]]) -> bool:
    """An ONNX model or a classical method (OpenCV): no row of it needs PyTorch."""
    if _is_onnx_model(model, sweeps):
        return True
    try:
        return get_spec(resolve_alias(model)).kind == "classical"
    except RtStereoError:
        return False


def _set_threads(threads: int | None) -> None:
    """OpenCV's threads, and PyTorch's if it is loaded: never imported for this (a sweep of .onnx files runs
    without it); :class:`_NetworkCache` sets them when it loads it for a network."""
    if threads is None:
        return
    cv2.setNumThreads(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class _NetworkCache:
    """Builds each (model, settings) network once; rows of other sizes, precisions and backends share it."""

    def __init__(self, weights: Mapping[str, str | Path | None], random_weights: bool, threads: int | None = None):
        self.weights = dict(weights)
        self.random_weights = random_weights
        self.threads = threads
        self.built: dict[tuple[str, str], tuple[Any, dict[str, Any], Any]] = {}

    def get(self, model: str, settings: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        key = (model, json.dumps(settings, sort_keys=True))
        if key not in self.built:
            # Both backends build the network in PyTorch (onnxruntime's rows export it): the torch extra, which the
            # exporter's own check would name as 'exporting a network to ONNX' and the export extra.
            require("torch", "torch", f"the network '{model}' (bench times exported .onnx files without torch)")
            _set_threads(self.threads)  # PyTorch is loaded now
            from .export.onnx_export import build_network

            self.built.clear()  # one network in memory at a time
            gc.collect()
            spec, resolved, module, _ = build_network(
                model, self.weights.get(model), settings, random_weights=self.random_weights
            )
            self.built[key] = (spec, resolved, module)
        return self.built[key]


def _builds_a_network(case: BenchCase) -> bool:
    """Whether the row's predictor wraps a network that :class:`_NetworkCache` builds in PyTorch (either backend)."""
    if case.backend == "opencv" or is_onnx_file(case.model):
        return False
    try:
        return model_spec(case.model).kind not in ("onnx", "hybrid")
    except RtStereoError:  # its predictor says why
        return False


def _network_settings(case: BenchCase) -> dict[str, Any]:
    """The row's settings that build its network: the post-processing switches act on the predictor, after the
    network, so one network serves both of their values."""
    return {name: value for name, value in case.settings if name not in POSTPROCESS_SETTINGS}


def _predictor(case: BenchCase, networks: _NetworkCache, device: str, threads: int | None) -> Predictor:
    from .api import load

    settings, runtime = dict(case.settings), dict(case.backend_settings)
    if case.backend == "opencv":
        return load(case.model, backend="opencv", settings=settings)
    if is_onnx_file(case.model) or model_spec(case.model).kind in ("onnx", "hybrid"):
        predictor = load(case.model, device=device, settings={**settings, **runtime, "threads": threads})
        fixed = getattr(predictor, "fixed_size_hw", None)
        if fixed is not None and tuple(fixed) != case.size_hw:  # timing a resize into it would be no one's figure
            from .runtime.onnx import OnnxContract, TwoPassBackend, other_size_advice
            from .runtime.public_onnx import PublicCREStereoBackend
            from .runtime.rt_stereo_onnx import RtStereoBackend

            height, width = fixed
            roles = {PublicCREStereoBackend: "public", RtStereoBackend: "rt-stereo", TwoPassBackend: "refine"}
            role = roles.get(type(predictor.backend), "single")
            contract = OnnxContract(predictor.spec.name, predictor.settings, "", 1, fixed, role=role)
            raise InputError(
                f"{case.model} is fixed at {height}x{width} (HxW): bench it with --sizes {height}x{width}, or "
                f"{other_size_advice(contract)}"
            )
        return predictor
    switches = {name: settings[name] for name in POSTPROCESS_SETTINGS if name in settings}
    spec, resolved, module = networks.get(case.model, _network_settings(case))
    if case.backend == "onnxruntime":
        from .export.on_demand import predictor_from_module

        predictor = predictor_from_module(
            spec, resolved, module, device=device, precision=case.precision, threads=threads, **runtime
        )
    else:
        from .runtime.backends import TorchBackend, torch_runtime_options

        options = torch_runtime_options(runtime)
        if options:  # channels-last (or compiling) changes the module: the group's other rows keep theirs
            module = copy.deepcopy(module)
        predictor = Predictor(spec, resolved, TorchBackend(module, device=device, precision=case.precision, **options))
    for name, value in switches.items():
        setattr(predictor, name, coerce_setting(name, value, False))
    return predictor


def _groups(cases: list[BenchCase]) -> list[list[BenchCase]]:
    """Consecutive cases that differ only in their backend."""

    def key(case: BenchCase) -> tuple[Any, ...]:
        return case.model, case.size_hw, case.precision, case.settings

    return [list(group) for _, group in itertools.groupby(cases, key=key)]


def _measure_group(
    cases: list[BenchCase],
    networks: _NetworkCache,
    device: str,
    threads: int | None,
    warmup: int,
    runs: int,
    score: Callable[[Predictor, BenchCase], dict[str, float]] | None,
    progress: Callable[[str], None] | None,
) -> list[BenchRow]:
    """One configuration on each of its backends, timed in alternation, then scored with ``score`` (its
    accuracy; ``None``: timing only).

    Each backend is set up and warmed up in turn, and its peak memory taken over one more call (the
    first timed one); the remaining timed calls alternate between the backends, so that a change in
    the machine's load (shared CPUs, GPU clocks) affects all of them alike and their ratio stays fair.
    """
    left, right, _ = timing_pair(cases[0].size_hw)
    # An exported file's own precision, a skipped row's too (a fixed-size file at another size read "-" there)
    rows = [
        BenchRow(case, file_precision=_exported_precision(case.model) if is_onnx_file(case.model) else "")
        for case in cases
    ]
    live: dict[int, tuple[Predictor, list[DisparityResult]]] = {}
    for index, row in enumerate(rows):
        if progress:
            progress(row.case.label)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HalfOnCpuWarning)  # the table's "Half (CPU)" note says it
                live[index] = _prepare(row, left, right, networks, device, threads, warmup)
        except Exception as exc:
            _fail(row, exc)
    for _ in range(runs - 1):
        for index in list(live):
            try:
                _arm(live[index][0])
                live[index][1].append(live[index][0].predict(left, right))
            except Exception as exc:
                _fail(rows[index], exc)
                del live[index]
    for index, (predictor, results) in live.items():
        row = rows[index]
        totals = [r.timings_ms["total"] for r in results]
        row.times_ms = totals
        row.median_ms = float(np.median(totals))
        row.p90_ms = float(np.percentile(totals, 90))
        row.inference_median_ms = float(np.median([r.timings_ms["inference"] for r in results]))
        row.fps = 1000.0 / row.median_ms
        row.describe = {k: v for k, v in results[-1].settings.items() if k not in dict(row.case.settings)}
        if results[-1].disparity_scale != 1.0:  # run smaller than the row's size (the memory budget)
            row.ran_at_hw = list(results[-1].network_size_hw)
        if row.case.backend == "torch":  # as an ONNX Runtime row's session records its own (where set)
            import torch

            row.describe["threads"] = torch.get_num_threads()
        if row.case.backend == "onnxruntime" and row.case.precision == "-" and not is_onnx_file(row.case.model):
            # A packaged network, alone or the hybrid's: its file's precision, which given by its path read "Full"
            # where its name read "-", the cell of a method without a precision; the hybrid's network= file may be an
            # int8 export (it read "Full" too)
            row.file_precision = str(row.describe.get("precision") or "fp32")
        if _fp16_on_the_cpu_provider(row):
            row.caveat = CPU_FP16_CAVEAT
        if score is not None:
            try:
                row.accuracy = score(predictor, row.case)
            except Exception as exc:
                _fail(row, exc)
    return rows


# The plot's marker of a row, by the table's precision (an exported file's own); "-": a method without a precision
# to choose, classical or a packaged ONNX model (rtnet-v5 and the hybrid were drawn as "D classical").
PLOT_MARKERS = {"Full": "o", "Half": "s", "bf16": "^", "int8": "v", "-": "D"}
PLOT_MARKERS_SAID = "o fp32, s fp16, ^ bf16, v int8, D no precision to choose (classical, packaged ONNX)"


def plot_marker(row: BenchRow) -> str:
    """The plot's marker of ``row`` (:data:`PLOT_MARKERS`)."""
    return PLOT_MARKERS.get(_precision_cell(row).removesuffix(" (CPU)"), "D")


def _precision_cell(row: BenchRow) -> str:
    """The table's precision: the case's, or an exported file's own (its fp32 rows read Full, as the note under
    the table calls them, where they read "-"), with "(CPU)" for an fp16 file on the CPU provider."""
    precision = row.case.precision if row.case.precision != "-" else (row.file_precision or "-")
    if row.caveat == CPU_FP16_CAVEAT:
        precision = "fp16"
    return PRECISION_WORDS.get(precision, precision) + (" (CPU)" if row.caveat == CPU_FP16_CAVEAT else "")


@functools.cache
def _contract_of(path: str):
    """The contract an exported file carries (:func:`~rtstereo.runtime.onnx.read_contract`), read once per sweep.

    Raises:
        CheckpointError: ONNX Runtime cannot load the file, or it carries no contract rtstereo can run.
    """
    from .runtime.onnx import read_contract
    from .runtime.providers import open_session

    return read_contract(open_session(Path(path)), path)


def check_exported_files(models: Sequence[str]) -> None:
    """Refuse, before the sweep, an exported ``.onnx`` file that cannot run, as ``predict`` refuses it: its rows were
    each skipped while the other models' were timed, and the sweep exited with code 0.

    Raises:
        CheckpointError: a file ONNX Runtime cannot load (damaged, cut short, its ``.data`` file missing), one
            without the contract rtstereo needs to feed it, or a two-pass export's refinement model without its first
            pass beside it.
        InputError: a two-pass export's first pass alone.
    """
    from .runtime.onnx import check_role

    for model in models:
        if is_onnx_file(model) and Path(model).is_file():
            check_role(_contract_of(model), Path(model))


def _fixed_size_of(path: str) -> tuple[int, int] | None:
    """The input size an exported file is fixed at, from its contract (``None``: any size, or unreadable)."""
    try:
        fixed = _contract_of(path).fixed_size_hw
    except RtStereoError:  # its row says why it cannot run
        return None
    return (int(fixed[0]), int(fixed[1])) if fixed else None


def _exported_settings(path: str) -> tuple[str, ...] | None:
    """The settings fixed in an exported file, from its contract (``None``: unreadable)."""
    try:
        return tuple(_contract_of(path).settings)
    except RtStereoError:  # its row says why it cannot run
        return None


def _exported_precision(path: str) -> str:
    """The precision an exported file was written in (``fp32``, ``fp16``, ``int8``), from its metadata."""
    try:
        return _contract_of(path).precision
    except RtStereoError:  # its row says why it cannot run
        return ""


def _fp16_on_the_cpu_provider(row: BenchRow) -> bool:
    """Whether the row ran an fp16 ONNX file on ONNX Runtime's CPU provider (see :data:`CPU_FP16_NOTE`)."""
    fp16 = row.case.precision == "fp16" or row.describe.get("precision") == "fp16"
    return row.case.backend == "onnxruntime" and fp16 and row.describe.get("providers") == ["CPUExecutionProvider"]


def _prepare(
    row: BenchRow,
    left: np.ndarray,
    right: np.ndarray,
    networks: _NetworkCache,
    device: str,
    threads: int | None,
    warmup: int,
) -> tuple[Predictor, list[DisparityResult]]:
    """Build and warm up the row's predictor; record its first call and its peak memory."""
    cuda = _cuda_torch(device, row.case.backend)
    if _builds_a_network(row.case):
        # Before the memory baseline: PyTorch's import (180 MB) and the network, built once for the rows of its
        # settings, counted in the first such row only (AnyNet on torch at 8x8: 217 MB, then at 33x17: 1 MB).
        networks.get(row.case.model, _network_settings(row.case))
    gc.collect()
    release_freed_memory()
    rss_before = PeakRSS.current_bytes()
    predictor = _predictor(row.case, networks, device, threads)
    _arm(predictor)
    started = time.perf_counter()
    predictor.predict(left, right)
    row.first_ms = (time.perf_counter() - started) * 1e3
    for _ in range(warmup - 1):
        predictor.predict(left, right)
    if cuda is not None:  # of the row's GPU: without it, of the current one, GPU 0 on a --device cuda:1 run
        cuda.synchronize(device)
        cuda.reset_peak_memory_stats(device)
    with PeakRSS() as peak:
        first = predictor.predict(left, right)
    if cuda is not None:
        row.peak_memory_mb, row.memory_kind = cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    elif device == "cpu":
        row.peak_memory_mb = max(0, peak.peak_bytes - rss_before) / 2**20
        row.memory_kind = "cpu rss delta"
    return predictor, [first]


def _arm(predictor: Predictor) -> None:
    """Set the process-wide switches of this row's backend before its calls: the rows of a group
    alternate, and cuDNN's autotuning (``torch.backends.cudnn.benchmark``) is one flag for all."""
    backend = predictor.backend
    if isinstance(getattr(backend, "cudnn_benchmark", None), bool):
        backend.torch.backends.cudnn.benchmark = backend.cudnn_benchmark


def _fail(row: BenchRow, exc: Exception) -> None:
    """The row's reason is whole, on one line (its advice is at its end); the table shortens it (see _reason_cell)."""
    if isinstance(exc, RtStereoError):  # a combination that cannot run here, said by the library (or what to install)
        row.status, row.reason = "skipped", " ".join(str(exc).split())
    else:  # a backend crash ends this row, not the sweep
        first_line = next(iter(str(exc).splitlines()), "")  # a MemoryError() or a bare assert says nothing
        row.status, row.reason = "failed", f"{exc.__class__.__name__}: {first_line.strip()}".removesuffix(": ")


# A table cell holds this much of a row's reason; a longer one is listed whole under the table (and is in bench.json).
REASON_CELL_CHARS = 160
_LONG_PATH = re.compile(r"(?<![\w.:/])(?:/|~/|\.\.?/)[^\s;,()'\"|]*/([^\s;,()'\"|/]+)")


def _reason_cell(reason: str) -> str:
    """A reason short enough for a table cell: paths as ``.../NAME`` (the advice after them is what counts), then
    its middle left out, keeping its start (what) and its end (the advice, what to install).

    Examples:
        >>> _reason_cell("/data/runs/2026/a/b/net.onnx is fixed at 32x64 (HxW): bench it with --sizes 32x64")
        '.../net.onnx is fixed at 32x64 (HxW): bench it with --sizes 32x64'
    """
    if len(reason) <= REASON_CELL_CHARS:
        return reason
    short = _LONG_PATH.sub(lambda match: f".../{match.group(1)}", reason)
    if len(short) <= REASON_CELL_CHARS:
        return short
    head, tail = REASON_CELL_CHARS * 2 // 5, REASON_CELL_CHARS * 3 // 5
    return f"{short[:head].rstrip()} ... (whole below) ... {short[-tail:].lstrip()}"


def _cuda_torch(device: str, backend: str) -> Any:
    if not device.startswith("cuda") or backend != "torch":
        return None
    import torch

    return torch.cuda


def _accuracy(samples: list[Any], failed: dict[str, str], predictor: Predictor, case: BenchCase) -> dict[str, float]:
    """The row's mean accuracy against the samples' ground truth, the pairs resized to its size and back (a fixed-size
    export's rows: resized by its predictor, as ``predict`` and ``eval`` run it).

    A scene that cannot be scored (an image that cannot be read) is left out and recorded in ``failed``
    (``{scene: why}``), as ``eval`` leaves it out: it skipped the row, its timing with it, and every row of the sweep.

    Raises:
        Exception: the first scene's error, when no scene could be scored.
    """
    from .eval import evaluate
    from .runtime.predictor import ResizeWarning

    # A fixed-size export resizes each scene itself, its map post-processed at the scene's size, as predict and eval
    # run it: resized here first and post-processed at the row's size, one file scored D1 6.2 % where eval gave 7.1 %.
    fixed = getattr(predictor, "fixed_size_hw", None) is not None
    resized = predictor if fixed else ResizedPredictor(predictor, case.size_hw)
    errors: list[Exception] = []

    def leave_out(_sample: Any, exc: Exception) -> bool:
        errors.append(exc)
        return True  # on to the next scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResizeWarning)  # resizing is what this measures
        # every scene is run at the row's size: a warning names the row's run, not a scene, and is said once
        report = evaluate(lambda _sample: resized, samples, case.label, on_error=leave_out, name_warnings=False)  # type: ignore[arg-type,return-value]
    if errors and not report.scenes:
        raise errors[0]
    for failure in report.failures:
        failed.setdefault(failure["name"], failure["error"])
    mean = report.mean
    return {key: float(mean[key]) for key in ACCURACY_KEYS if key in mean}


def _resized_scoring_note(cases: Sequence[BenchCase], scene_sizes: Sequence[tuple[str, tuple[int, int]]]) -> list[str]:
    """A note saying how a row is scored on a scene of another size than the row's, which neither the table nor eval
    says: bench resizes the pair and post-processes the map at the row's size, where a fixed-size export's predictor
    resizes the scene itself and post-processes at the scene's size, as ``predict`` and ``eval`` run it."""
    other = [(name, hw, case) for name, hw in scene_sizes for case in cases if tuple(hw) != tuple(case.size_hw)]
    if not other:
        return []
    models = dict.fromkeys(case.model for _, _, case in other)
    exports = [model for model in models if is_onnx_file(model) and _fixed_size_of(model) is not None]
    resized = [(name, hw, case) for name, hw, case in other if case.model not in exports]
    notes = []
    if resized:
        name, (height, width), case = resized[0]
        notes.append(
            f"rows of another size than a scene ({name}: {height}x{width} at {case.size_hw[0]}x{case.size_hw[1]}, "
            "HxW) are scored by resizing the pair to the row's size, running and post-processing it there, and "
            "resizing its map to the ground truth's size, its disparities scaled by the width ratio"
        )
    if exports:
        them = "it" if len(exports) == 1 else "them"
        notes.append(
            f"{', '.join(exports)}: fixed in size, scored as predict and eval run {them}: "
            "the predictor resizes each scene and post-processes the map at the scene's size (eval gives these figures)"
        )
    return notes


def _one_range_note(cases: Sequence[BenchCase]) -> list[str]:
    """A note when a classical method (or the hybrid) is scored on ground truth without a swept range: its rows search
    the model's default on every scene, as they are timed, where ``eval`` searches each scene's own range, so that
    the two disagreed unsaid (SGBM on Tsukuba: D1 16.6 % here at 192 px, 3.2 % in eval at its 16 px)."""
    from .models.sgbm import confident_search_range

    models: dict[str, dict[tuple[int, int], int]] = {}
    for case in cases:
        if is_onnx_file(case.model) or "max_disp" in dict(case.settings):
            continue
        spec = model_spec(case.model)
        if spec.kind in ("classical", "hybrid") and "max_disp" in spec.defaults:
            range_px = spec.defaults["max_disp"]
            # the hybrid's SGBM searches a quarter of the row's width at most: "hybrid (192 px)" on Tsukuba searched 96
            if spec.kind == "hybrid":
                range_px = confident_search_range(case.size_hw[1], range_px)
            models.setdefault(case.model, {})[case.size_hw] = range_px
    if not models:
        return []
    said = ", ".join(f"{model} ({_ranges_said(model, ranges)})" for model, ranges in models.items())
    return [
        f"{said} searched {'its' if len(models) == 1 else 'their'} default disparity range on every scene of --data, "
        "as timed; eval searches each scene's own range, so its figures differ (eval --max-disp N gives these; "
        "--max-disp here sweeps the range)"
    ]


def _ranges_said(model: str, ranges: Mapping[tuple[int, int], int]) -> str:
    """The range a model's rows searched, per row size where the sizes differ in it (the hybrid's SGBM).

    Examples:
        >>> _ranges_said("sgbm", {(48, 96): 192})
        '192 px'
        >>> _ranges_said("hybrid", {(288, 384): 96, (480, 640): 160})
        '96 px at 288x384, 160 px at 480x640: its SGBM searches a quarter of the width at most'
    """
    values = set(ranges.values())
    said = (
        f"{values.pop()} px"
        if len(values) == 1
        else ", ".join(f"{range_px} px at {height}x{width}" for (height, width), range_px in ranges.items())
    )
    capped = model_spec(model).kind == "hybrid" and any(
        range_px < model_spec(model).defaults["max_disp"] for range_px in ranges.values()
    )
    return f"{said}: its SGBM searches a quarter of the width at most" if capped else said


def _scene_sizes(samples: list[Any]) -> list[tuple[str, tuple[int, int]]]:
    """Each scene's ``(name, (H, W))``, from its left image's header; a scene whose image cannot be opened is left
    out (its scoring says why)."""
    from PIL import Image, UnidentifiedImageError

    sizes = []
    for sample in samples:
        try:
            with Image.open(sample.left_path) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError):
            continue
        sizes.append((sample.name, (height, width)))
    return sizes


def _add_ratios(rows: list[BenchRow], baseline: str | None) -> None:
    def key(case: BenchCase) -> tuple[Any, ...]:
        return case.model, case.size_hw, case.precision, case.settings

    torch_ms: dict[tuple[Any, ...], float] = {}
    for row in rows:  # the first torch row of a configuration (its backend settings as swept first)
        if row.case.backend == "torch" and row.status == "ok":
            torch_ms.setdefault(key(row.case), row.median_ms)
    baseline_rows = [r for r in rows if r.case.model == baseline and r.status == "ok"]
    for row in rows:
        if row.status != "ok":
            continue
        if key(row.case) in torch_ms:
            row.vs_torch = row.median_ms / torch_ms[key(row.case)]
        same_size = [r for r in baseline_rows if r.case.size_hw == row.case.size_hw]
        if same_size:
            closest = max(same_size, key=lambda other, case=row.case: _closeness(case, other.case))
            row.vs_baseline = row.median_ms / closest.median_ms


def _closeness(case: BenchCase, baseline: BenchCase) -> tuple[bool, ...]:
    """How well a baseline row fits a row, to pick the one dividing it: the same disparity range when
    both sweep it, then the same backend, precision and backend settings where the baseline has them
    (a network baseline's own rows read 1.00, not its torch time over its ONNX Runtime time)."""
    mine = dict(case.settings)
    same_settings = bool(set(mine) & set(dict(baseline.settings))) and all(
        mine[k] == v for k, v in baseline.settings if k in mine
    )
    return (
        same_settings,
        baseline.backend == case.backend,
        baseline.precision == case.precision,
        baseline.backend_settings == case.backend_settings,
    )


# --------------------------------------------------------------------------------------------------
# Where it ran
# --------------------------------------------------------------------------------------------------


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Date, commit, CPU, GPU and library versions, for the JSON beside the results."""
    import onnxruntime

    from . import __version__

    versions = {
        "rtstereo": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    for name in ("torch", "onnx", "onnxslim"):  # read from the installation: importing torch for its version
        try:  # took seconds and hundreds of MB in a sweep of .onnx files, which bench times without torch
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    gpu = None
    torch = sys.modules.get("torch")
    if torch is None and device != "cpu" and "torch" in versions:  # the GPU's name, on a GPU run only
        with contextlib.suppress(ImportError, OSError):  # installed but broken (a CUDA library missing): no name
            import torch
    if torch is not None and torch.cuda.is_available():
        _, _, index = device.partition(":")  # the GPU the run used: --device cuda:1 recorded GPU 0's name
        with contextlib.suppress(RuntimeError, AssertionError):  # an index beyond the GPUs: its rows say so
            gpu = torch.cuda.get_device_name(int(index) if index.isascii() and index.isdigit() else 0)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),  # with its UTC offset
        "commit": git_commit(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "platform": platform.platform(),
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "device": device,
        "versions": versions,
    }


def cpu_name() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """``HEAD`` of the repository this file is in (with ``+dirty`` for local changes), or ``None``."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def parse_list(text: str, kind: Callable[[str], Any] = str, name: str = "value") -> list[Any]:
    """``"96,192"`` -> ``[96, 192]`` with ``kind`` applied to each item.

    Examples:
        >>> parse_list("96, 192", int)
        [96, 192]
    """
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise InputError(f"expected a comma-separated list of {name}s, got '{text}'")
    out = []
    for item in items:
        try:
            out.append(kind(item))
        except InputError:  # already says what is wrong
            raise
        except (TypeError, ValueError):
            raise InputError(f"'{item}' is not a valid {name} (in '{text}')") from None
    return out
