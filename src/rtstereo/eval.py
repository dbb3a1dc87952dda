"""Accuracy of a method on datasets with ground truth: per-scene metrics, means, and reports."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .datasets import Sample
from .errors import InputError, OutputError, require_number, warn
from .io.atomic import interruption_cause
from .metrics import BAD_THRESHOLDS_PX, bad_key, disparity_metrics, finite_or_none, mean_metrics
from .models import architecture_range_px
from .models.sgbm import SGBM_MAX_BLOCK_PX, UnmatchedBandWarning
from .runtime.predictor import Predictor
from .text import counted, share

if TYPE_CHECKING:  # the hybrid (default) is no Predictor; its modules load where it is built
    from .runtime.hybrid import HybridPredictor

# Columns of the terminal / Markdown table: (metric key, header, format). The noc columns hold each benchmark's own
# figure: ETH3D's bad-1, Middlebury's bad-2 and KITTI 2012's bad-3 over non-occluded pixels (KITTI 2015's is D1 over
# all, SceneFlow's EPE over all).
TABLE_COLUMNS = (
    ("epe", "EPE", "{:.2f}"),
    *((bad_key(t), bad_key(t), "{:.1f}") for t in BAD_THRESHOLDS_PX),
    ("d1", "D1", "{:.1f}"),
    ("noc/bad-1", "bad-1 noc", "{:.1f}"),
    ("noc/bad-2", "bad-2 noc", "{:.1f}"),
    ("noc/bad-3", "bad-3 noc", "{:.1f}"),
    ("noc/d1", "D1 noc", "{:.1f}"),
    ("density", "density", "share"),  # 99.99 read "100.0", as a complete map does (predict's line says 99.99 %)
    ("time_ms", "ms", "{:.0f}"),
)


# Beside a complete run's <stem>.json, a run --fail-fast stopped writes <stem>.stopped.json (an interrupted one's
# is <stem>.interrupted.json).
STOPPED_SUFFIX = ".stopped"


@dataclass
class SceneResult:
    """One scored scene of an :class:`EvalReport`.

    Attributes:
        name: the scene's name, as the table shows it.
        dataset: the layout it was read as (``kitti2015``, ``middlebury2014``, ...).
        size_hw: ``(H, W)`` of its images, pixels.
        settings: the settings the model ran with on it (its disparity range among them).
        metrics: :func:`~rtstereo.metrics.disparity_metrics` of the prediction (``epe`` in px, ``bad-N``, ``d1`` and
            ``density`` in percent, ``pixels`` scored), the same under ``noc/`` over the non-occluded pixels where the
            scene has their mask, and ``time_ms``, the whole predict call.
    """

    name: str
    dataset: str
    size_hw: tuple[int, int]
    settings: dict[str, Any]
    metrics: dict[str, float]
    #: the size the model ran at when the scene was resized for it (a fixed-size export, a memory budget), else None
    ran_at_hw: tuple[int, int] | None = None
    #: the scene's left image, which tells the scene apart where its name does not (``Teddy`` of 2003 or of 2014)
    left_path: str | None = None


@dataclass
class EvalReport:
    """Per-scene rows and their mean; render with :meth:`table` or save with :meth:`save`.

    Attributes:
        model: the method's name.
        scenes: one row per scored scene.
        failures: scenes that could not be scored: ``{"name", "left", "error"}`` (a one-line reason).
        failed_paths: paths given that held no scene of a known layout, beside others that did:
            ``{"path", "error"}``; the other paths' scenes are scored.
        listed: how many scenes the run was given (``None``: not counted).
        without_ground_truth: the names of the scenes left out for having no ground truth.
        interrupted: Ctrl-C (or SIGTERM) stopped the run: the scenes after the last one scored or failed were not
            scored.
        stopped_at_failure: ``--fail-fast`` (``fail_fast=True``) stopped the run at a failed scene, before the last
            one: partial results, which :meth:`save` keeps from replacing a complete run's as it does an
            interrupted run's.
        interrupted_by: what stopped it, ``Ctrl-C`` or the signal's name (``SIGTERM``); ``None`` where not known.
        device: where the model ran (``cpu``, ``cuda:0``), for the machine the JSON records.
        max_gt_disp_px: ground truth of this many pixels or more was left out (SceneFlow's usual figures leave out
            192 px and more); ``None``: every pixel with ground truth counted.
    """

    model: str
    scenes: list[SceneResult] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    failed_paths: list[dict[str, str]] = field(default_factory=list)
    listed: int | None = None
    interrupted: bool = False
    interrupted_by: str | None = None
    stopped_at_failure: bool = False
    without_ground_truth: list[str] = field(default_factory=list)
    device: str = "cpu"
    max_gt_disp_px: float | None = None

    @property
    def mean(self) -> dict[str, float]:
        return mean_metrics([s.metrics for s in self.scenes])

    def table(self, markdown: bool = False) -> str:
        """The table as aligned text, or as Markdown."""
        header = ["scene", "size (HxW)", "max disp"] + [h for _, h, _ in TABLE_COLUMNS]
        rows = [
            [s.name, _size_cell(s), _range_cell(s.settings, s.size_hw, s.ran_at_hw)]
            + [_fmt(s.metrics.get(k), f) for k, _, f in TABLE_COLUMNS]
            for s in self.scenes
        ]
        rows += [[f["name"], "failed", "-"] + ["-" for _ in TABLE_COLUMNS] for f in self.failures]
        rows += [[f"{f['path']} (path)", "failed", "-"] + ["-" for _ in TABLE_COLUMNS] for f in self.failed_paths]
        mean = self.mean
        rows.append([f"mean ({len(self.scenes)})", "", ""] + [_fmt(mean.get(k), f) for k, _, f in TABLE_COLUMNS])
        # figures without these pixels must not pass for figures over all of them
        cut = [] if self.max_gt_disp_px is None else [f"scored: {self._cut_note()}"]
        if markdown:
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            # a folder named "a|b" split its row into one cell more than the header
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            return "\n".join([*lines, "", f"mean: {self.mean_note()}", *(f"\n{line}" for line in cut)])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        align = lambda r: "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
            for i, (c, w) in enumerate(zip(r, widths))
        )
        return "\n".join([align(header), *(align(r) for r in rows), f"mean: {self.mean_note()}", *cut])

    def _cut_note(self) -> str:
        return f"ground truth below {self.max_gt_disp_px:g} px only ({self.max_gt_disp_px:g} px and more left out)"

    def mean_note(self) -> str:
        """What the mean row averages: scenes, each weighing the same, not pixels (a KITTI frame holds ten times a
        Middlebury scene's); the ``noc`` columns only the scenes that have a mask with a pixel to score (an empty
        mask's ``noc`` values are ``nan``, left out of the mean).

        Examples:
            >>> scenes = [SceneResult("a", "d", (1, 1), {}, {"noc/epe": 1.0}), SceneResult("b", "d", (1, 1), {}, {})]
            >>> EvalReport("m", scenes).mean_note()
            'over 2 scenes, each weighing the same (not over pixels); the noc columns over the 1 with a mask'
            >>> empty = SceneResult("c", "d", (1, 1), {}, {"noc/epe": float("nan"), "noc/pixels": 0})
            >>> EvalReport("m", [*scenes, empty]).mean_note()
            'over 3 scenes, each weighing the same (not over pixels); the noc columns over the 1 with a mask'
        """
        masked = sum(
            any(key.startswith("noc/") and key != "noc/pixels" and math.isfinite(v) for key, v in s.metrics.items())
            for s in self.scenes
        )
        noc = f"; the noc columns over the {masked} with a mask" if 0 < masked < len(self.scenes) else ""
        return f"over {counted(len(self.scenes), 'scene')}, each weighing the same (not over pixels){noc}"

    def to_json(self) -> dict[str, Any]:
        # The commit, CPU, GPU and library versions, as bench records them: scores move with OpenCV's version
        # (SGBM differs between 4.x and 5.x) and the ms column with the machine; "x86_64" named neither.
        from .bench import machine_info

        machine = machine_info(self.device)
        return {
            "model": self.model,
            "date": machine.pop("date"),
            "commit": machine["commit"],
            "machine": {**machine, "python": platform.python_version()},
            "metric_definitions": "EPE = mean |d-gt| px; bad-N = % |d-gt| > N px; D1 = % |d-gt| > 3 px and > 5 % "
            "of gt; density = % with a finite prediction, 0 and below included (predict's density counts values above "
            "0 only, as a fraction of every pixel); all over the pixels with ground truth; noc/ = non-occluded "
            "pixels only; a pixel without a finite prediction counts as an error and as 0 in EPE"
            + ("" if self.max_gt_disp_px is None else f"; {self._cut_note()}"),
            "max_gt_disp_px": self.max_gt_disp_px,
            "mean_over": self.mean_note(),
            "scenes": [
                {
                    "name": s.name,
                    "dataset": s.dataset,
                    **({"left": s.left_path} if s.left_path else {}),
                    "size_hw": list(s.size_hw),
                    **({"ran_at_hw": list(s.ran_at_hw)} if s.ran_at_hw else {}),
                    "settings": s.settings,
                    "metrics": s.metrics,
                }
                for s in self.scenes
            ],
            "mean": self.mean,
            "failed": self.failures,
            "failed_paths": self.failed_paths,
            "scenes_listed": self.listed,
            "without_ground_truth": self.without_ground_truth,
            "interrupted": self.interrupted,
            "interrupted_by": self.interrupted_by,
            "stopped_at_failure": self.stopped_at_failure,
        }

    def save(self, folder: str | Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.md`` into ``folder`` (each atomically). An interrupted run's go to
        ``<stem>.interrupted.json`` and ``.md`` (one stopped at a failure, ``<stem>.stopped.json`` and ``.md``) when
        ``<stem>.json`` holds an earlier complete run's, which is kept; a complete run removes such files of an
        earlier partial one."""
        from .io.atomic import (
            INTERRUPTED_SUFFIX,
            atomic_path,
            interrupted_results_stem,
            os_reason,
            remove_interrupted_results,
        )

        folder = Path(folder)
        partial_keys = ("interrupted", "stopped_at_failure")
        try:
            if self.interrupted or self.stopped_at_failure:
                suffix = INTERRUPTED_SUFFIX if self.interrupted else STOPPED_SUFFIX
                stem = interrupted_results_stem(folder, stem, suffix, partial_keys)
            folder.mkdir(parents=True, exist_ok=True)
            json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
            with atomic_path(json_path, "evaluation results") as partial:
                # A metric over no pixels (nan) is null: JSON has no NaN.
                document = finite_or_none(self.to_json())
                partial.write_text(json.dumps(document, indent=2, default=_jsonable, allow_nan=False) + "\n")
            note = ""
            if self.interrupted:  # the table must not pass for the whole run
                done = len(self.scenes) + len(self.failures)
                by = f" ({self.interrupted_by})" if self.interrupted_by else ""  # kill is no Ctrl-C
                note = f"\nInterrupted{by}: {done} of {self.listed} scenes; the rest were not scored.\n"
            elif self.stopped_at_failure:
                done = len(self.scenes) + len(self.failures)
                note = f"\nStopped at the first failure (--fail-fast): {done} of {self.listed} scenes; the rest were "
                note += "not scored.\n"
            with atomic_path(md_path, "evaluation results") as partial:
                text = f"# {self.model}\n\n{self.table(markdown=True)}\n{self._failures_markdown()}{note}"
                partial.write_text(text, encoding="utf-8", errors="surrogateescape")  # a name in bytes stays so
            if not (self.interrupted or self.stopped_at_failure):
                remove_interrupted_results(folder, stem, (".json", ".md"), (INTERRUPTED_SUFFIX, STOPPED_SUFFIX))
        except OSError as exc:
            raise OutputError(f"cannot write evaluation results to {folder}: {os_reason(exc, folder / stem)}") from None
        return json_path, md_path

    def _failures_markdown(self) -> str:
        """Why each failed scene and path was not scored, for the Markdown file: its table's rows read "failed" alone,
        the reasons being in the JSON and on stderr only.

        Examples:
            >>> print(EvalReport("m", failures=[{"name": "s", "left": "s/im0.png", "error": "cannot read"}])
            ...       ._failures_markdown())
            <BLANKLINE>
            Not scored:
            <BLANKLINE>
            - s (s/im0.png): cannot read
            <BLANKLINE>
        """
        lines = [f"- {f['name']} ({f['left']}): {f['error']}" for f in self.failures]
        lines += [f"- {f['path']} (path): {f['error']}" for f in self.failed_paths]
        return "".join(f"{line}\n" for line in ["", "Not scored:", "", *lines]) if lines else ""


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C while scenes were scored; :attr:`report` holds the scenes scored (and failed) before it, and says
    ``interrupted``. A ``KeyboardInterrupt``, so that a script not looking for it stops as before."""

    def __init__(self, report: EvalReport):
        done = len(report.scenes) + len(report.failures)
        super().__init__(f"interrupted after {done} of {report.listed} scenes")
        self.report = report


def check_max_gt_disp(value: Any) -> float | None:
    """``max_gt_disp_px`` as :func:`evaluate` takes it: ``None`` (every pixel counts) or a finite number of pixels
    above 0, as ``--max-gt-disp`` takes it. A string failed every scene with numpy's ``UFuncTypeError``, ``True``
    cut at 1 px, and 0, a negative number or ``nan`` failed each scene in turn ("every valid pixel ... is 0 px or
    more") where the command line refuses them once.

    Examples:
        >>> check_max_gt_disp(192), check_max_gt_disp(None)
        (192.0, None)

    Raises:
        InputError: another type (a bool too), or a number that is not finite or not above 0.
    """
    if value is None:
        return None
    expected = "a number of pixels above 0 (None: every pixel counts)"
    cut = require_number(value, "max_gt_disp_px", expected)
    if not (math.isfinite(cut) and cut > 0):  # 0 or below leaves no pixel; inf leaves none out
        raise InputError(f"max_gt_disp_px: expected {expected}, got {cut:g}")
    return cut


def evaluate(
    predictor_for: Callable[[Sample], Predictor | HybridPredictor],
    samples: Iterable[Sample],
    model: str,
    progress: Callable[[Iterable[Sample]], Iterable[Sample]] | None = None,
    on_error: Callable[[Sample, Exception], bool] | None = None,
    name_warnings: bool = True,
    max_gt_disp_px: float | None = None,
) -> EvalReport:
    """Run a method over samples and score it.

    Args:
        predictor_for: returns the predictor to use for a sample (lets classical methods search the
            scene's own disparity range).
        samples: from :func:`rtstereo.datasets.find_samples`; those without ground truth are skipped (named in
            :attr:`EvalReport.without_ground_truth`).
        model: name recorded in the report.
        progress: optional wrapper over the iterable (a progress bar).
        on_error: a batch that survives bad scenes: a scene that raises is passed here, recorded in
            :attr:`EvalReport.failures` and skipped; the run stops when it returns ``False``. Without
            it the error propagates.
        name_warnings: what a scene is warned about is said with its name (:func:`score_sample`); ``False`` where
            every scene is run alike and the name tells nothing (``bench --data`` at one size): said once.
        max_gt_disp_px: leave out ground truth of this many pixels or more, as SceneFlow's usual figures do with
            192 (:func:`score_sample`); ``None`` (default): every pixel with ground truth counts.

    Raises:
        EvalInterrupted: Ctrl-C; its ``report`` holds the scenes scored before it.
        InputError: a ``max_gt_disp_px`` that :func:`check_max_gt_disp` refuses (before any scene is run), a
            ``predictor_for`` that is no function (a predictor itself), ``samples`` that are not
            :class:`~rtstereo.datasets.Sample` (a dataset's path), or a predictor of ``fit="crop"`` (its maps are
            windows of the scenes; before any scene is run, even with ``on_error``).
    """
    max_gt_disp_px = check_max_gt_disp(max_gt_disp_px)
    if not callable(predictor_for):  # a predictor given as it is: "'Predictor' object is not callable"
        raise InputError(
            "predictor_for: expected a function that gives the predictor of a scene, e.g. lambda sample: predictor, "
            f"got {type(predictor_for).__name__}"
        )
    if isinstance(samples, (str, Path)):  # iterated as characters: "'str' object has no attribute 'name'"
        raise InputError(
            f"samples: expected the scenes of a dataset, got the path {str(samples)!r}: give "
            f"rtstereo.datasets.find_samples({str(samples)!r})"
        )
    items = list(samples)
    other = next((item for item in items if not isinstance(item, Sample)), None)
    if other is not None:
        raise InputError(
            f"samples: expected rtstereo.datasets.Sample items (rtstereo.datasets.find_samples(PATH) gives them), got "
            f"{type(other).__name__}"
        )
    report = EvalReport(model=model, listed=len(items), max_gt_disp_px=max_gt_disp_px)
    warmed: dict[tuple[int, tuple[int, ...] | None], Predictor | HybridPredictor] = {}
    try:
        for sample in progress(items) if progress else items:
            try:
                scene = score_sample(predictor_for, sample, warmed, name_warnings, max_gt_disp_px)
            except Exception as exc:
                if on_error is None or isinstance(exc, _WholePairsOnly):  # the predictor's, not the scene's
                    raise
                from .batch.job import failure_reason

                reason = failure_reason(exc, sample.files())
                failure = {"name": sample.name, "left": str(sample.left_path), "error": reason}
                report.failures.append(failure)
                if not on_error(sample, exc):
                    break
                continue
            if scene is not None:
                report.scenes.append(scene)
            else:
                report.without_ground_truth.append(sample.name)
    except KeyboardInterrupt as exc:  # the scene it cut short is left out; those before it are kept
        report.interrupted, report.interrupted_by = True, interruption_cause(exc)
        raise EvalInterrupted(report) from None
    return report


# The range searched on a scene whose dataset gives none (Sample's default: KITTI, SceneFlow, a calib.txt without ndisp)
UNSET_RANGE_PX = 192

# Classical matchers search a multiple of 16 disparities, and OpenCV needs that many to stay below the width, by
# more than half of SGBM's block (its largest, 11 px): 48 px on a 50-px-wide scene failed, "too small for SGBM".
SEARCH_STEP_PX = 16
BLOCK_MARGIN_PX = SGBM_MAX_BLOCK_PX // 2


def search_range_px(hint_px: int, width_px: int) -> int:
    """The disparity range to search on an image: the hint, clamped below the image width.

    Dataset range hints can reach the image width (ETH3D's ``calib.txt`` gives ``ndisp=713`` for
    713-pixel-wide images); a matcher cannot search that far, so the range becomes the largest
    multiple of 16 that leaves SGBM's block room below the width (at least 16).

    Args:
        hint_px: the range the dataset suggests, pixels.
        width_px: the image width, pixels.

    Returns:
        The range to search, pixels.

    Examples:
        >>> search_range_px(713, 713), search_range_px(192, 713), search_range_px(64, 40), search_range_px(64, 50)
        (704, 192, 32, 32)
    """
    if -(-hint_px // SEARCH_STEP_PX) * SEARCH_STEP_PX + BLOCK_MARGIN_PX < width_px:
        return hint_px
    return max(SEARCH_STEP_PX, (width_px - 1 - BLOCK_MARGIN_PX) // SEARCH_STEP_PX * SEARCH_STEP_PX)


def clamp_search_ranges(samples: Iterable[Sample], quarter_width_cap: bool = False) -> tuple[list[Sample], list[str]]:
    """Samples whose range hint does not fit their image width get a clamped hint, with a note each.

    The width is read from the left image's header; a sample whose image cannot be read, or that has a
    :attr:`~rtstereo.datasets.Sample.problem`, keeps its hint (it fails later, when it is scored, with
    the reason).

    Args:
        samples: the samples to search.
        quarter_width_cap: the method searches no more than a quarter of the width itself (the hybrid's SGBM):
            its hints are kept as they are, and no note says that OpenCV leaves columns unmatched, which it
            does not (on ETH3D's terrace it searches 192 px of the 713 ``ndisp`` gives).

    Returns:
        ``(samples, notes)``: the samples (clamped where needed) and one line per note, naming the samples it is
        true of (the first five, and how many more).
    """
    from .datasets.readers import image_width_px

    out: list[Sample] = []
    said: dict[str, list[str]] = {}  # each note's text, and the scenes it is said of
    note = lambda name, text: said.setdefault(text, []).append(name)  # noqa: E731 - local shorthand
    for sample in samples:
        if sample.problem is not None:
            out.append(sample)
            continue
        try:
            width_px = image_width_px(sample.left_path)
        except Exception:  # a damaged image is reported when the scene is scored
            out.append(sample)
            continue
        if width_px <= SEARCH_STEP_PX and not quarter_width_cap:
            # No range fits: the note said "searching 16 px", then the scene failed as too narrow for 16 px
            problem = (
                f"the {width_px}-px-wide image is too narrow for OpenCV's matcher, which needs a width above its "
                f"least search range of {SEARCH_STEP_PX} px: not scored"
            )
            note(sample.name, problem)
            out.append(dataclasses.replace(sample, problem=problem))
            continue
        if sample.max_disp_hint_px == 0 and quarter_width_cap:  # e.g. ndisp=0 in a calib.txt: no hint at all
            note(sample.name, "the dataset gives a disparity range of 0 px; searching the method's own")
            out.append(sample)
            continue
        if sample.max_disp_hint_px == 0:
            # searched as a scene without a range is (SGBM's own 192 px failed a 96-px-wide scene that a calib.txt
            # without ndisp had scored at 80 px)
            searched = search_range_px(UNSET_RANGE_PX, width_px)
            fits = "" if searched == UNSET_RANGE_PX else f", which fits the {width_px}-px-wide image"
            note(
                sample.name,
                f"the dataset gives a disparity range of 0 px; searching {searched} px, as for a scene without one"
                f"{fits}{_unmatched_columns(searched, width_px)}",
            )
            out.append(dataclasses.replace(sample, max_disp_hint_px=searched))
            continue
        if quarter_width_cap:
            out.append(sample)
            continue
        searched = search_range_px(sample.max_disp_hint_px, width_px)
        if searched != sample.max_disp_hint_px:
            note(
                sample.name,
                f"the dataset's disparity range {sample.max_disp_hint_px} px does not fit the {width_px}-px-wide "
                f"image; searching {searched} px{_unmatched_columns(searched, width_px)}",
            )
            sample = dataclasses.replace(sample, max_disp_hint_px=searched)
        elif _unmatched_columns(searched, width_px):
            note(
                sample.name,
                f"searching the dataset's disparity range {searched} px{_unmatched_columns(searched, width_px)}",
            )
        out.append(sample)
    # one line for the scenes a note is true of: 400 small KITTI frames gave 400 lines of one note, burying the rest
    return out, [f"{first_names(names)}: {text}" for text, names in said.items()]


def first_names(names: list[str], shown: int = 5) -> str:
    """The first few names, and how many more (eval's notes and summaries).

    Examples:
        >>> first_names(["a"]), first_names(["a", "b", "c"], shown=2)
        ('a', 'a, b and 1 more')
    """
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _unmatched_columns(range_px: int, width_px: int) -> str:
    """What a range of more than half the width costs: OpenCV's matchers find no match in the image's
    first ``range`` columns (rounded up to 16); SGBM's row fill makes up the map there. ETH3D's loose
    ``ndisp=713`` left SGBM 1 % of terrace's pixels matched, the rest filled, scored as 96.6 % dense.

    Examples:
        >>> _unmatched_columns(704, 713)
        ': OpenCV matches no pixel in the first 704 columns (99 % of the width); \
--max-disp gives a tighter range'
        >>> _unmatched_columns(192, 713)
        ''
    """
    columns = min(width_px, -(-range_px // SEARCH_STEP_PX) * SEARCH_STEP_PX)
    if 2 * columns <= width_px:
        return ""
    return (
        f": OpenCV matches no pixel in the first {columns} columns ({100 * columns / width_px:.0f} % of the width); "
        "--max-disp gives a tighter range"
    )


def warn_named(scene: str, caught: list[warnings.WarningMessage]) -> None:
    """Give again the warnings ``caught`` while a scene was scored, each once, in its own category, with the scene's
    name in front (``grey: the left image is grey ...``): a run of many scenes said what it met, not where, and the
    same warning on a later scene was not said at all (each message is said once per run)."""
    for category, message in dict.fromkeys((w.category, " ".join(str(w.message).split())) for w in caught):
        warn(f"{scene}: {message}", category)


def score_sample(
    predictor_for: Callable[[Sample], Predictor | HybridPredictor],
    sample: Sample,
    warmed: dict[tuple[int, tuple[int, ...] | None], Predictor | HybridPredictor] | None = None,
    name_warnings: bool = True,
    max_gt_disp_px: float | None = None,
) -> SceneResult | None:
    """Predict one sample and score it against its ground truth (``None`` when it has none); what is warned about
    meanwhile is warned about with the scene's name (:func:`warn_named`), unless ``name_warnings`` is false.

    Args:
        warmed: the predictors already run once at an image size, by ``(id, size)``; a predictor that has
            not run at this scene's size runs on it once, untimed, before the run that is timed and
            scored, and joins it. A first call pays for sessions, buffers and thread pools (84 ms against
            22 ms on every later scene), and a first call at a new size for ONNX Runtime's memory plan of
            that shape (up to twice the later calls' time): the ``ms`` column of such a scene was that
            set-up, not the method's time. A classical method (OpenCV) has no set-up per size (SGBM's first
            call at a new size took 0.98x the second's): it runs once untimed, as ``(id, None)``, on its first
            scene only. ``None``: no warm-up.
        max_gt_disp_px: ground truth of this many pixels or more is left out of every metric, as SceneFlow's usual
            figures (PSMNet's, GwcNet's, RAFT-Stereo's) leave out 192 px and more; ``None``: every pixel counts. A
            scene with no pixel of ground truth below it raises :class:`~rtstereo.errors.InputError`, as does a value
            :func:`check_max_gt_disp` refuses.
    """
    max_gt_disp_px = check_max_gt_disp(max_gt_disp_px)
    if not name_warnings:
        return _score_sample(predictor_for, sample, warmed, max_gt_disp_px)
    loading: list[warnings.WarningMessage] = []

    def load(sample: Sample) -> Predictor | HybridPredictor:
        # What building a predictor warns about is the model's, not this scene's: said as it is, so that the
        # same message (each Ray worker's load, each scene range's) is said once, not once with each scene's name.
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always")
            try:
                return predictor_for(sample)
            finally:
                loading.extend(found)

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the warm-up run's and the timed run's alike: said once, below
            return _score_sample(load, sample, warmed, max_gt_disp_px)
    finally:
        for category, message in dict.fromkeys((w.category, str(w.message)) for w in loading):
            warn(message, category)
        warn_named(sample.name, caught)


def _score_sample(
    predictor_for: Callable[[Sample], Predictor | HybridPredictor],
    sample: Sample,
    warmed: dict[tuple[int, tuple[int, ...] | None], Predictor | HybridPredictor] | None,
    max_gt_disp_px: float | None = None,
) -> SceneResult | None:
    _refuse_over_budget(predictor_for, sample)
    left, right, gt, nonocc = sample.load()
    if gt is None:
        return None
    from .batch.job import refuse_one_picture

    # scored, a right view copied from the left read as a method 100 % wrong
    refuse_one_picture(left, right, f"scene {sample.name}: left {sample.left_path} and right {sample.right_path}")
    if gt.shape != left.shape[:2]:
        raise InputError(
            f"scene {sample.name}: ground truth {sample.gt_path} is {gt.shape[0]}x{gt.shape[1]} but the left "
            f"image {sample.left_path} is {left.shape[0]}x{left.shape[1]} (HxW): they must be the same size"
        )
    if nonocc is not None and nonocc.shape != gt.shape:
        raise InputError(
            f"scene {sample.name}: mask {sample.nonocc_path} is {nonocc.shape[0]}x{nonocc.shape[1]} but the "
            f"ground truth is {gt.shape[0]}x{gt.shape[1]} (HxW): they must be the same size"
        )
    negative = int(np.count_nonzero(np.isfinite(gt) & (gt < 0)))
    positive = int(np.count_nonzero(np.isfinite(gt) & (gt > 0)))
    sign = "a map of x_right - x_left? Ground truth is the left view's x_left - x_right, positive"
    if not positive:  # scored, it would be a row of dashes counted in the mean
        what = f"all {negative} of its known values are negative: {sign}" if negative else "all 0, inf or nan"
        raise InputError(
            f"scene {sample.name}: ground truth {sample.gt_path} has no valid pixel ({what}), nothing to score against"
        )
    if negative > positive:  # scored over its few positive values (noise about 0), it read as a scene like any other
        raise InputError(
            f"scene {sample.name}: ground truth {sample.gt_path} holds more negative values than positive ones "
            f"({negative} against {positive}), which alone would be scored: {sign}"
        )
    known = gt[np.isfinite(gt) & (gt > 0)]
    if np.median(known) >= left.shape[1]:  # scored as it is, an EPE of 1020 px on a 96-px-wide scene, unsaid
        raise InputError(
            f"scene {sample.name}: ground truth {sample.gt_path} has half its values at {left.shape[1]} px or more, "
            f"the image's width, which no disparity reaches (median {np.median(known):g} px): disparity x 256, KITTI's "
            "16-bit convention, saved as it is? Ground truth is in pixels"
        )
    if max_gt_disp_px is not None:
        with np.errstate(invalid="ignore"):
            gt = np.where(gt < max_gt_disp_px, gt, np.float32(np.nan))
        if not (gt > 0).any():  # a row of dashes counted among the scenes of the mean
            raise InputError(
                f"scene {sample.name}: every valid pixel of ground truth {sample.gt_path} is {max_gt_disp_px:g} px or "
                f"more, left out as the cut of {max_gt_disp_px:g} px asks: nothing to score against"
            )
    predictor = predictor_for(sample)
    if getattr(predictor, "fit", None) == "crop":
        raise _WholePairsOnly(
            "eval scores whole pairs against their ground truth, and a predictor of fit='crop' (--fit crop) predicts "
            "only its centred window of them: evaluate it as loaded by default, fit='resize'"
        )
    searched = getattr(predictor, "max_disp_px", None)
    noted = searched == sample.max_disp_hint_px and _unmatched_columns(int(searched), left.shape[1])
    # Only then: a change of the filters lets every warning already said be said again
    with warnings.catch_warnings() if noted else contextlib.nullcontext():
        if noted:
            warnings.simplefilter("ignore", UnmatchedBandWarning)  # the scene's range: its note said it
        # per size where a session plans its memory for each shape; once for OpenCV, whose call at a new size is
        # no slower (running SGBM twice at each size doubled eval's time on scenes of many sizes)
        size = None if getattr(getattr(predictor, "spec", None), "kind", None) == "classical" else left.shape
        if warmed is not None and (id(predictor), size) not in warmed:
            predictor.predict(left, right)
            warmed[id(predictor), size] = predictor  # held, so that its id is never another predictor's
        result = predictor.predict(left, right)
    if result.disparity_px.shape != gt.shape:  # a predictor that does not keep the input size
        raise InputError(
            f"scene {sample.name}: the prediction is {result.disparity_px.shape[0]}x{result.disparity_px.shape[1]} "
            f"but the ground truth is {gt.shape[0]}x{gt.shape[1]} (HxW)"
        )
    metrics = disparity_metrics(result.disparity_px, gt)
    if nonocc is not None:
        metrics.update({f"noc/{k}": v for k, v in disparity_metrics(result.disparity_px, gt, nonocc).items()})
    metrics["time_ms"] = result.timings_ms["total"]
    # scored at the scene's size, but the model saw a resized pair: the report says so, not only a warning
    ran_at = tuple(result.network_size_hw) if getattr(result, "disparity_scale", 1.0) != 1.0 else None
    return SceneResult(
        sample.name, sample.dataset, gt.shape, dict(result.settings), metrics, ran_at, str(sample.left_path)
    )


class _WholePairsOnly(InputError):
    """A predictor that does not predict whole pairs (``fit="crop"``): refused once, for every scene, by
    :func:`evaluate`, not recorded as each scene's failure."""


def _refuse_over_budget(predictor_for: Callable[[Sample], Predictor | HybridPredictor], sample: Sample) -> None:
    """Refuse a scene that no size of fits the memory budget from its left image's header, as ``predict`` refuses
    a pair, before its images and ground truth are decoded (they were, gigabytes for a 20000x20000 scene, to be
    refused by the model); nothing when the header does not tell, or the scene has no ground truth to score.

    Raises:
        MemoryBudgetError: as predicting the scene would (:func:`~rtstereo.runtime.memory.plan_network_size`).
    """
    from .io.images import header_size_hw

    size_hw = header_size_hw(sample.left_path) if sample.gt_path is not None else None
    plan = getattr(predictor_for(sample), "memory_plan", None) if size_hw is not None else None
    if callable(plan):
        plan(size_hw)


def _size_cell(scene: SceneResult) -> str:
    """A scene's size in the table, HxW as every size rtstereo prints, and the size its model ran at when the scene
    was resized for it (the hybrid's network: its SGBM runs at the scene's size).

    Examples:
        >>> _size_cell(SceneResult("s", "d", (288, 384), {}, {}, (96, 128)))
        '288x384 (ran at 96x128)'
        >>> _size_cell(SceneResult("s", "d", (288, 384), {"network": "rtnet-guided"}, {}, (96, 128)))
        '288x384 (its network ran at 96x128)'
    """
    size = f"{scene.size_hw[0]}x{scene.size_hw[1]}"
    if not scene.ran_at_hw:
        return size
    what = "its network ran" if "network" in scene.settings else "ran"
    return f"{size} ({what} at {scene.ran_at_hw[0]}x{scene.ran_at_hw[1]})"


def _range_cell(
    settings: dict[str, Any], size_hw: tuple[int, int] | None = None, ran_at_hw: tuple[int, int] | None = None
) -> str:
    """A scene's ``max disp`` in the table, and what OpenCV searched where that differs, as ``bench`` shows it:
    SGBM rounds the range up to a multiple of 16, and the hybrid's SGBM searches a quarter of the width at most.
    A network run resized (``ran_at_hw``, a fixed-size export) searched its range in its own pixels: the range in
    the scene's pixels is scaled by the width ratio, as its disparities were, and shown first (it read "192" for
    an export at 96x128 on a 288x384 scene, whose range there is 576 px).

    Examples:
        >>> _range_cell({"max_disp": 85, "searched_disp": 96})
        '85 (96 searched)'
        >>> _range_cell({"max_disp": 713, "sgbm_searched_disp": 192})
        '713 (192 searched)'
        >>> _range_cell({"max_disp": 32, "searched_disp": 32}), _range_cell({}), _range_cell({"stage": 3})
        ('32', '-', '200')
        >>> _range_cell({"max_disp": 192}, (288, 384), (96, 128)), _range_cell({"max_disp": 192}, (288, 375), (96, 128))
        ('576 (192 at 96x128)', '562.5 (192 at 96x128)')
    """
    if "max_disp" not in settings:
        fixed = architecture_range_px(settings)  # AnyNet's, which no setting holds: it read "-"
        if fixed is None:
            return "-"
        settings = {**settings, "max_disp": fixed}
    # The hybrid's max_disp is its SGBM's range, searched at the scene's size: only its network ran resized.
    if ran_at_hw and size_hw and "network" not in settings and ran_at_hw[1] != size_hw[1]:
        in_scene_px = round(float(settings["max_disp"]) * size_hw[1] / ran_at_hw[1], 1)
        return f"{in_scene_px:g} ({settings['max_disp']} at {ran_at_hw[0]}x{ran_at_hw[1]})"
    searched = settings.get("searched_disp", settings.get("sgbm_searched_disp"))
    if searched is not None and str(searched) != str(settings["max_disp"]):
        return f"{settings['max_disp']} ({searched} searched)"
    return str(settings["max_disp"])


def _fmt(value: float | None, pattern: str) -> str:
    """``value`` by ``pattern`` (a format string, or ``"share"``: a percentage as :func:`~rtstereo.text.share`
    writes it, without the sign), ``-`` for none.

    Examples:
        >>> _fmt(2.345, "{:.2f}"), _fmt(100 - 700 / 76800, "share"), _fmt(100.0, "share"), _fmt(None, "{:.1f}")
        ('2.35', '99.99', '100.0', '-')
    """
    if value is None or not np.isfinite(value):
        return "-"
    if pattern == "share":
        return share(value / 100).removesuffix(" %")
    return pattern.format(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)
