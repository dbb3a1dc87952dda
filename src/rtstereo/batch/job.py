"""What a batch does with each pair, the same in every engine.

The objects here are plain, picklable values: the Ray engine ships them to its workers, where each
actor builds its own predictor from :class:`PredictorOptions`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
import socket
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..confidence import check_max_diff_px, lr_check
from ..errors import InputError, RtStereoError, not_a_predictor, require_bool, require_path, warn
from ..geometry import pair_with_calibration_for_size
from ..io.disparity import given_range_top_px
from ..io.download import is_url
from ..io.images import header_size_hw
from ..rectify import align_rows, rectification_record, row_alignment_record, without_unseen_pixels
from ..runtime.predictor import RangeCeilingWarning, beyond_width_warning, check_fit_name, range_ceiling_warning
from ..sinks.files import (
    DEFAULT_FORMATS,
    FORMAT_FILES,
    FORMATS,
    NOT_WRITTEN_NOTES,
    clashing_names,
    not_written_notes,
    output_files,
    outputs_complete,
    read_made_with,
    save_result,
    save_single_file,
    vouches_for,
)
from ..sinks.pointcloud import NEEDS_CALIBRATION, PointCloudOptions, make_writers
from ..sources.pairs import PairSource
from ..text import counted, first_line, shortened
from ..types import Calibration, DisparityResult, StereoPair, views_size_problem
from .outcome import DONE, FAILED, SKIPPED, PairOutcome, join_warnings, warning_messages

if TYPE_CHECKING:
    from ..runtime.hybrid import HybridPredictor
    from ..runtime.predictor import Predictor


@dataclass(frozen=True)
class PredictorOptions:
    """How to build the predictor: what :func:`rtstereo.load` takes, as a value a worker can rebuild.

    Attributes:
        model, weights, backend, device, precision, settings, fit: as :func:`rtstereo.load` takes them.
    """

    model: str | os.PathLike[str] = "default"
    weights: str | os.PathLike[str] | None = None
    backend: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    settings: dict[str, Any] = field(default_factory=dict)
    fit: str = "resize"

    def __post_init__(self) -> None:
        if not isinstance(self.settings, Mapping):  # load() failed with a bare TypeError from dict()
            raise InputError(
                f"settings: expected a dict of model settings such as {{'max_disp': 128}}, got "
                f"{type(self.settings).__name__}"
            )
        check_fit_name(self.fit)  # each worker refused it as it loaded, once per pair or range

    @property
    def uses_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def load(self) -> Predictor | HybridPredictor:
        """The predictor these options describe, as :func:`rtstereo.load` returns it."""
        from ..api import load

        return load(
            self.model,
            weights=self.weights,
            backend=self.backend,
            device=self.device,
            precision=self.precision,
            settings=dict(self.settings),
            fit=self.fit,
        )


@dataclass(frozen=True)
class BatchJob:
    """The work done on each pair: prepare, predict, check, write.

    Attributes:
        output: a folder (one set of files per pair), one disparity file (a batch of one pair), or
            ``None`` (nothing written: timing only); given as a str or a Path, held as a Path.
        formats: the ``--format`` names written per pair into a folder.
        to_file: ``output`` is one file whose suffix picks the format.
        calibration: the calibration of the rectified pairs (scaled to each pair's size).
        rectifier: rectifies raw pairs first (:class:`~rtstereo.rectify.Rectifier`); gives the calibration.
        lr_check_px: run the left-right check with this threshold, pixels (``None``: off).
        cloud: how point clouds are cleaned.
        overwrite: redo pairs whose complete outputs exist (otherwise they are skipped).
        align_rows: resample each pair's right view so that its rows meet the left one's, from the
            misalignment matched features show (:func:`~rtstereo.rectify.align_rows`), after rectification.
        colour_max_disp_px: the range the user gave (``--max-disp``): the ``color`` preview's colours top at it, or
            at the range OpenCV's matchers search when larger (:func:`~rtstereo.io.disparity.given_range_top_px`),
            as a video's do; ``None``: at each map's own 99th percentile.
    """

    output: Path | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    to_file: bool = False
    calibration: Calibration | None = None
    rectifier: Any = None
    lr_check_px: float | None = None
    cloud: PointCloudOptions = PointCloudOptions()
    overwrite: bool = False
    align_rows: bool = False
    colour_max_disp_px: float | None = None
    # The calibration attached to pairs of each (H, W), made once: its warnings (scaled, a principal point
    # outside the images) are said once per size, not for every pair of a batch.
    _sized: dict[tuple[int, int], Calibration] = field(default_factory=dict, init=False, repr=False, compare=False)
    _maps_digest: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    if TYPE_CHECKING:  # what type checkers see of the __init__ dataclass makes: output may be a str, held as a Path

        def __init__(
            self,
            output: str | os.PathLike[str] | None = None,
            formats: tuple[str, ...] = DEFAULT_FORMATS,
            to_file: bool = False,
            calibration: Calibration | None = None,
            rectifier: Any = None,
            lr_check_px: float | None = None,
            cloud: PointCloudOptions = PointCloudOptions(),
            overwrite: bool = False,
            align_rows: bool = False,
            colour_max_disp_px: float | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        if self.output is not None and not isinstance(self.output, (str, os.PathLike)):
            raise InputError(
                f"output: expected a folder or file (str or Path), or None to write nothing, got "
                f"{type(self.output).__name__} {self.output!r:.80}"
            )
        if self.output is not None:  # "~/out" was a folder named ~ in the working folder
            object.__setattr__(self, "output", require_path(self.output, "output"))
        # a str was read letter by letter: formats="png16" was "unknown output formats p, n, g, 1, 6"
        if not isinstance(self.formats, (tuple, list)) or not all(isinstance(f, str) for f in self.formats):
            raise InputError(
                f"formats: expected a tuple of format names such as ('png16', 'json'), got "
                f"{type(self.formats).__name__} {self.formats!r:.80}"
            )
        # Checked once here, not by every pair: each failed alike ("max_diff_px must be > 0", a Calibration expected,
        # "'str' object has no attribute 'rectify'"), and overwrite="no", a true str, redid every pair.
        for name in ("to_file", "overwrite", "align_rows"):
            require_bool(getattr(self, name), name)
        if self.lr_check_px is not None:
            check_max_diff_px(self.lr_check_px, "lr_check_px")
        top = self.colour_max_disp_px  # compared, not made a float: an int of 1000 digits is the model's to refuse
        if top is not None and not (
            isinstance(top, numbers.Real) and not isinstance(top, bool) and top > 0 and top != math.inf
        ):
            raise InputError(f"colour_max_disp_px must be > 0 pixels (a finite number) or None, got {top!r:.80}")
        if self.calibration is not None and not isinstance(self.calibration, Calibration):
            raise InputError(
                f"calibration: expected an rtstereo Calibration or None, got {type(self.calibration).__name__}"
            )
        if self.rectifier is not None and not callable(getattr(self.rectifier, "rectify", None)):
            raise InputError(
                "rectifier: expected a Rectifier (rtstereo.rectify.Rectifier.from_file(PATH)) or None, got "
                f"{type(self.rectifier).__name__}"
            )
        if not isinstance(self.cloud, PointCloudOptions):
            raise InputError(f"cloud: expected PointCloudOptions(...), got {type(self.cloud).__name__}")

    @property
    def writes_folder(self) -> bool:
        return self.output is not None and not self.to_file

    def check_outputs(self, sources: Sequence[PairSource]) -> None:
        """Refuse outputs that would replace an input image or one another, before any work.

        Outputs are named after the left images, so ``-o .`` beside ``left.png`` (or ``-o cam0/`` for the
        folder ``cam0/``) would write the 16-bit disparity over ``left.png`` itself. With the ``png16`` and
        ``color`` formats, the pair names ``a`` and ``a_color`` both write ``a_color.png`` (the second pair's
        disparity would replace the first one's preview, and a rerun would take the first pair as complete).

        Raises:
            InputError: the output and the input image it would replace, or the two pair names and their file;
                several pairs for one output file (each would replace the one before); no format, or one that
                is not known, for a folder (each pair was skipped, or failed with a bare ``KeyError``); depth or
                point cloud formats without a calibration or a rectifier (each pair failed for it).
        """
        if self.output is None:
            return
        if self.to_file and len(sources) > 1:
            raise InputError(f"{len(sources)} pairs cannot go into one file {self.output}: give a folder as the output")
        unknown = [f for f in self.formats if f not in FORMATS]
        if not self.to_file and (unknown or not self.formats):
            what = f"unknown output formats {', '.join(unknown)}" if unknown else "no output formats"
            raise InputError(f"{what} for the folder {self.output} (known: {', '.join(sorted(FORMATS))})")
        metric = [f for f in self.formats if f in NEEDS_CALIBRATION]
        if metric and not self.to_file and self.calibration is None and self.rectifier is None:
            # as --format ply without --calib is refused: every pair ran the model, then failed for it
            named = f"formats {', '.join(metric)} need" if len(metric) > 1 else f"format {metric[0]} needs"
            raise InputError(
                f"{named} the cameras' calibration (focal length, baseline): give the job calibration= "
                "(rtstereo.io.calibration.read_calibration(PATH)) or rectifier= "
                "(rtstereo.rectify.Rectifier.from_file(PATH))"
            )
        inputs, realpath = {}, _realpaths()
        for source in sources:
            for image in (source.left, source.right):
                local = _local_file(image)
                if local is not None:
                    inputs[realpath(local)] = image
        if self.to_file:
            replaced = inputs.get(os.path.realpath(self.output))
            if replaced is not None:
                raise InputError(f"-o {self.output} is the input image {replaced}: write the disparity to another file")
            return
        folder = os.path.realpath(self.output)
        templates = [FORMAT_FILES[f] for f in self.formats if f in FORMAT_FILES]
        for source in sources:
            for template in templates:
                replaced = inputs.get(realpath(os.path.join(folder, template.format(name=source.name))))
                if replaced is not None:
                    raise InputError(
                        f"pair '{source.name}' would write {Path(self.output, template.format(name=source.name))} over "
                        f"the input image {replaced} (outputs are named after the left images): give -o another folder"
                    )
        clash = clashing_names((source.name for source in sources), self.formats)
        if clash is not None:
            first, second, file = clash
            raise InputError(
                f"pairs '{first}' and '{second}' would both write {Path(self.output, file)} (formats "
                f"{','.join(self.formats)}): name them so that neither is the other plus a format's ending"
            )

    def made_with(self, predictor: Any) -> dict[str, Any]:
        """The options a pair's files depend on, as :func:`~rtstereo.sinks.files.save_result` records them beside
        them (``made_with``): the model, its weights and settings, the calibration, the rectification, the left-right
        check, the row alignment and, with a 3D format, the cloud's cleaning. Not how it runs (threads, engine).

        Examples:
            >>> import rtstereo
            >>> BatchJob().made_with(rtstereo.load("sgbm", max_disp=16))["settings"]["max_disp"]
            16
        """
        rectify = None
        if self.rectifier is not None:
            if "sha256" not in self._maps_digest:  # once: the maps of a 12 MP rig are hundreds of MB
                digest = hashlib.sha256()
                for array in (*self.rectifier.maps_left, *self.rectifier.maps_right):
                    digest.update(np.ascontiguousarray(array).tobytes())
                self._maps_digest["sha256"] = digest.hexdigest()
            rectify = {"maps_sha256": self._maps_digest["sha256"], "calibration": vars(self.rectifier.calibration)}
        clouds = {"ply", "glb"}.intersection(self.formats)  # the only files the cleaning changes
        options = {
            "model": _local_file_absolute(getattr(predictor, "name", None)),
            "weights": _local_file_absolute(getattr(predictor, "weights", None)),
            "settings": dict(getattr(predictor, "settings", {}) or {}),
            "calibration": vars(self.calibration) if self.calibration is not None else None,
            "rectify": rectify,
            "lr_check_px": self.lr_check_px,
            "align_rows": self.align_rows,
            "cloud": vars(self.cloud) if clouds else None,
        }
        if getattr(predictor, "fit", "resize") != "resize":  # recorded when not the default: earlier records hold none
            options["fit"] = predictor.fit
        return json.loads(json.dumps(options, default=str))  # as read back: tuples as lists, numbers as JSON's

    def check_made_with(self, predictor: Any, sources: Sequence[PairSource]) -> None:
        """Refuse a run that would skip pairs whose complete outputs an earlier run made with other options (another
        calibration, model or setting: :meth:`made_with`): a rerun with a new ``--calib`` kept the depths of the old
        one without a word. Outputs without a record (an earlier version's) are skipped as before.

        Raises:
            InputError: naming the options that differ and the pairs, with what to do.
        """
        if not self.writes_folder or self.overwrite:
            return
        current, changed, names = self.made_with(predictor), set(), []
        for source in sources:
            if not outputs_complete(self.output, source.name, self.formats):
                continue
            recorded = read_made_with(self.output, source.name)
            if recorded is None or not vouches_for(recorded, self.formats):  # redone, not skipped
                continue
            differ = {key for key in MADE_WITH_OPTIONS if recorded.get(key) != current.get(key)}
            if differ:
                changed |= differ
                names.append(source.name)
        if names:
            options = ", ".join(MADE_WITH_OPTIONS[key] for key in MADE_WITH_OPTIONS if key in changed)
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise InputError(
                f"{self.output} holds the outputs of {counted(len(names), 'pair')} ({shown}) made with another "
                f"{options}, which a rerun would skip and keep: add --overwrite (overwrite=True) to redo them, or "
                "give -o another folder"
            )

    def refuse_over_budget(self, predictor: Any, source: PairSource, memory_plan: Callable | None = None) -> None:
        """Refuse a pair that no size of fits the memory budget from its files' headers, before its images are
        decoded (two 12000x12000 PNGs took 20 s and 1.3 GB resident to be refused under a 1 GB budget), and so a
        pair whose views differ in size (a 20000x20000 left view beside a small right one was decoded whole, then
        refused for its size); nothing when the headers do not tell (an http(s) URL), or with a rectifier, whose
        maps give the size. ``memory_plan``: the plan to ask instead of the predictor's (``predictor`` may then be
        ``None``): :func:`rtstereo.api.memory_plan_before_load`'s, before the model loads.

        Raises:
            MemoryBudgetError: as predicting the pair would (:func:`~rtstereo.runtime.memory.plan_network_size`).
            InputError: the views differ in size, as :class:`~rtstereo.types.StereoPair` says once they are decoded.
        """
        plan = memory_plan or getattr(predictor, "memory_plan", None)
        if self.rectifier is not None or not callable(plan):
            return
        size_hw, right_hw = header_size_hw(source.left), header_size_hw(source.right)
        if size_hw is None or right_hw is None:
            return
        problem = views_size_problem(size_hw, right_hw)
        if problem is not None:
            raise InputError(problem)
        plan(size_hw)

    def is_complete(self, source: PairSource) -> bool:
        """Whether the pair can be skipped: its complete outputs exist, its record vouches for them (not files of
        another run's options beside those of an ``overwrite`` with fewer formats) and ``overwrite`` is off."""
        if not (self.writes_folder and not self.overwrite and outputs_complete(self.output, source.name, self.formats)):
            return False
        record = read_made_with(self.output, source.name)
        return vouches_for(record, self.formats) and not _inputs_changed(record, source)

    def prepare(self, pair: StereoPair) -> StereoPair:
        """Rectify the pair, attach its calibration (scaled to the pair's size if needed) and, with
        ``align_rows``, align its rows (:meth:`prepare_recorded` also says how they moved).

        Raises:
            InputError: as :meth:`prepare_recorded`.
        """
        return self.prepare_recorded(pair)[0]

    def prepare_recorded(self, pair: StereoPair) -> tuple[StereoPair, dict[str, Any]]:
        """:meth:`prepare`, and what it did to the pair that its files should record
        (:attr:`~rtstereo.types.DisparityResult.preparation`): with a rectifier, ``{"rectify": ...}`` (its file and
        the raw size, :attr:`~rtstereo.rectify.Rectifier.record`); with ``align_rows``, ``{"align_rows": ...}``
        (:func:`~rtstereo.rectify.row_alignment_record`); empty otherwise.

        Raises:
            InputError: the two views are one picture (identical pixels: a file given twice under two names, by a
                link or a copy), whose disparity would be 0 everywhere.
        """
        refuse_one_picture(pair.left, pair.right)
        preparation: dict[str, Any] = {}
        if self.rectifier is not None:
            left, right, rectified = self.rectifier.rectify(pair.left, pair.right)
            # the colours of a left view turned grey beside a grey right one are rectified too, for the point cloud
            colours = pair.left_colours
            if colours is not None:
                colours = self.rectifier.rectify(colours, pair.right)[0]
            pair = dataclasses.replace(pair, left=left, right=right, calibration=rectified, left_colours=colours)
            preparation["rectify"] = rectification_record(self.rectifier)
        elif self.calibration is not None:
            height, width = pair.size_hw
            calibration = self._sized.get((height, width))
            if calibration is None:
                calibration = pair_with_calibration_for_size(
                    dataclasses.replace(pair, calibration=self.calibration)
                ).calibration
                # Recorded as the size it is used at, so that the predictor does not check (and warn) again.
                if calibration.width_px <= 0 or calibration.height_px <= 0:
                    calibration = dataclasses.replace(calibration, width_px=width, height_px=height)
                self._sized[(height, width)] = calibration
            pair = dataclasses.replace(pair, calibration=calibration)
        if self.align_rows:
            right, check = align_rows(pair.left, pair.right)
            preparation["align_rows"] = row_alignment_record(check, applied=right is not pair.right)
            pair = dataclasses.replace(pair, right=right)
        return pair, preparation

    def predict(self, predictor, pair: StereoPair) -> DisparityResult:
        """The disparity of a prepared pair, after the left-right check when one is asked for; with a rectifier,
        invalid where the rectified left view shows none of the raw one (its fill)."""
        result = predictor.predict_pair(pair)
        if self.lr_check_px is not None:
            result, _ = lr_check(predictor, pair, result, self.lr_check_px)
        valid = getattr(self.rectifier, "left_valid_mask", None)
        if valid is not None:
            result = without_unseen_pixels(result, valid)
        ceiling = range_ceiling_warning(
            result, getattr(predictor, "max_disp_px", None), getattr(predictor, "range_fixed_in", None)
        )
        if ceiling is not None:  # the pair's warning (finish_pair): a map cut off at --max-disp says so
            warn(ceiling, RangeCeilingWarning)
        beyond = beyond_width_warning(result)
        if beyond is not None:
            warn(beyond)
        wide = self._range_beyond_width(result.disparity_px.shape[1])
        if wide is not None:
            warn(wide)
        return result

    def _range_beyond_width(self, width_px: int) -> str | None:
        """The note for a range given (``colour_max_disp_px``) past the image's width, which every disparity stays
        below, ``None`` for one within it: the hybrid ran silently at ``--max-disp 100000`` on a 320-px pair, its
        preview coloured 0-100000 px (one colour)."""
        top = self.colour_max_disp_px
        if top is None or top <= width_px:
            return None
        given = f"{top:g}" if isinstance(top, float) else shortened(top)
        preview = f": the colour preview spans 0-{width_px} px" if "color" in self.formats and not self.to_file else ""
        return (
            f"--max-disp {given} (max_disp= in Python) is beyond the image's width, {width_px} px, which every "
            f"disparity stays below{preview}; give a --max-disp near the scene's largest disparity"
        )

    @staticmethod
    def recorded(result: DisparityResult, preparation: dict[str, Any]) -> DisparityResult:
        """``result`` holding ``preparation`` (from :meth:`prepare_recorded`), which its JSON sidecar then records."""
        if not preparation:
            return result
        return dataclasses.replace(result, preparation={**result.preparation, **preparation})

    def write(self, result: DisparityResult, name: str, made_with: dict[str, Any] | None = None) -> list[Path]:
        """Write the result's files (each atomically), with the record of ``made_with`` (:meth:`made_with`) beside
        them, in a folder or beside one output file; nothing when there is no output."""
        if self.output is None:
            return []
        if self.to_file:
            return [save_single_file(result, self.output, made_with)]
        top_px = given_range_top_px(self.colour_max_disp_px, result.settings.get("searched_disp"))
        if top_px is not None:  # a range past the width (said by predict) would draw every disparity in one colour
            top_px = min(top_px, float(result.disparity_px.shape[1]))
        return save_result(result, self.output, name, self.formats, make_writers(self.cloud), made_with, top_px)


def _local_file_absolute(value: Any) -> Any:
    """A model or weights file as an absolute path, so that a Ray worker's record (given absolute paths) and this
    process's, of ``runs/a/best.pt``, are one; a registry name or a URL as it is."""
    if isinstance(value, str) and not is_url(value) and os.path.exists(os.path.expanduser(value)):
        return os.path.abspath(os.path.expanduser(value))
    return value


# What each entry of BatchJob.made_with is, as the refusal of a rerun names it.
MADE_WITH_OPTIONS = {
    "model": "model (--model)",
    "weights": "weights file (--weights)",
    "settings": "model setting (--set, --max-disp, --iters)",
    "calibration": "calibration (--calib)",
    "rectify": "rectification (--rectify)",
    "lr_check_px": "left-right check (--lr-check)",
    "align_rows": "row alignment (--align-rows)",
    "cloud": "point cloud cleaning (--max-depth, --max-jump)",
    "fit": "fit to a fixed-size network (--fit)",
}


def refuse_one_picture(left: np.ndarray, right: np.ndarray, views: str = "left and right") -> None:
    """Refuse two views that are one picture (identical pixels: a file given twice under two names, by a link or a
    copy), whose disparity would be 0 everywhere; ``views`` names them in the message (eval: the scene and its files).

    Raises:
        InputError: the two views are identical.
    """
    if np.array_equal(left, right):
        raise InputError(
            f"{views} are the same picture (identical pixels: one file under two names, or a copy): a stereo pair "
            "needs its two views, one per camera"
        )


def failure_reason(exc: BaseException, names: Sequence[object] = ()) -> str:
    """One line that says why a pair failed: rtstereo's own message, or the exception's type and text; the pair's
    file ``names`` it holds whole, a line break in one escaped (:func:`~rtstereo.text.first_line`).

    Examples:
        >>> failure_reason(ValueError("bad\\nsecond line"))
        'ValueError: bad'
    """
    text = first_line(exc, names)
    if isinstance(exc, RtStereoError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def worker_label() -> str:
    """``host:pid`` of the process that did the work (for the summary)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_pair(source: PairSource, index: int) -> tuple[StereoPair | None, PairOutcome]:
    """Read and decode one pair; on failure the pair is ``None`` and the outcome says why."""
    outcome = PairOutcome(index=index, name=source.name, left=source.left, right=source.right, worker=worker_label())
    t0 = time.perf_counter()
    try:
        # What reading warns about (a damaged JPEG decoded anyway, 12-bit data in 16 bits) is the pair's warning, as
        # what the model warns about is (finish_pair): as a Python warning it broke the progress bar.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pair = source.load(index)
    except Exception as exc:  # noqa: BLE001 - a bad item is reported, the batch goes on
        outcome.status, outcome.error = FAILED, failure_reason(exc, (source.left, source.right))
        pair = None
    outcome.warning = _said(outcome.warning, caught)
    outcome.read_ms = (time.perf_counter() - t0) * 1000
    return pair, outcome


def _said(earlier: str, caught: list[warnings.WarningMessage]) -> str:
    """``earlier`` warnings and the ``caught`` ones, each once, in one line."""
    return join_warnings([*warning_messages(earlier), *(" ".join(str(w.message).split()) for w in caught)])


def finish_pair(job: BatchJob, predictor, pair: StereoPair, outcome: PairOutcome) -> PairOutcome:
    """Prepare, predict and write a decoded pair, filling ``outcome`` (status, sizes, timings)."""
    outcome.worker = worker_label()
    outcome.height_px, outcome.width_px = pair.size_hw
    # What the model warns about (a pair run smaller to fit the memory budget, a tiny input) is the pair's
    # warning too: as a Python warning it broke the progress bar and, the registry reset by each pair's
    # catch, came again for every pair of the batch.
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            pair, preparation = job.prepare_recorded(pair)
            result = job.recorded(job.predict(predictor, pair), preparation)
            t1 = time.perf_counter()
            recorded = _recorded_warnings(_said(outcome.warning, caught)) | _recorded_figures(outcome, result)
            recorded |= recorded_inputs(outcome.left, outcome.right)
            job.write(result, outcome.name, job.made_with(predictor) | recorded)
            t2 = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - a bad item is reported, the batch goes on
        outcome.status, outcome.error = FAILED, failure_reason(exc, (outcome.left, outcome.right))
        outcome.warning = _said(outcome.warning, caught)  # what led to the failure, said with it
        return outcome
    outcome.status = DONE
    outcome.warning = _said(outcome.warning, caught)
    outcome.predict_ms = (t1 - t0) * 1000
    outcome.model_ms = float(result.timings_ms.get("total", 0.0))
    outcome.export_ms = float(result.timings_ms.get("export", 0.0))
    outcome.write_ms = (t2 - t1) * 1000
    outcome.density = float(result.density)
    return outcome


# The entry of a pair's made-with record that holds its warnings (BatchJob.made_with has no option of this name).
WARNINGS_RECORDED = "warnings"


def _recorded_warnings(said: str) -> dict[str, list[str]]:
    """What reading, preparing and predicting a pair ``said``, as the entry of its made-with record
    (:func:`~rtstereo.sinks.files.made_with_file`) from which a rerun that skips the pair says it again
    (:func:`skipped_outcome`); not one of the options a rerun compares."""
    return {WARNINGS_RECORDED: warning_messages(said)} if said else {}


# The entry of a pair's made-with record that holds its size and density, for the summary row of a rerun that skips it.
FIGURES_RECORDED = "figures"


def _recorded_figures(outcome: PairOutcome, result: DisparityResult) -> dict[str, dict[str, Any]]:
    """The pair's input size and its map's density, its summary row's figures, as the entry of its made-with record
    from which a rerun that skips the pair fills its row (:func:`skipped_outcome`); not one of the options a rerun
    compares."""
    figures = {"height_px": outcome.height_px, "width_px": outcome.width_px, "density": float(result.density)}
    return {FIGURES_RECORDED: figures}


# The entry of a pair's made-with record that holds the size and time of change of its two image files: a rerun redoes
# a pair whose images changed since (new captures under the same names had their old maps kept, unsaid).
INPUTS_RECORDED = "inputs"


def recorded_inputs(left: str, right: str) -> dict[str, list[list[int]]]:
    """The pair's image files as the entry of its made-with record: ``[size, mtime_ns]`` of each; none for a pair
    read from the web (:func:`_inputs_changed` compares them); not one of the options a rerun compares."""
    state = _inputs_state(left, right)
    return {INPUTS_RECORDED: state} if state is not None else {}


def _inputs_state(left: str, right: str) -> list[list[int]] | None:
    """``[size, mtime_ns]`` of the two image files, ``None`` when one is a web URL or cannot be looked at."""
    state = []
    for image in (left, right):
        local = _local_file(image)
        try:
            found = os.stat(local) if local is not None else None
        except OSError:
            found = None
        if found is None:
            return None
        state.append([found.st_size, found.st_mtime_ns])
    return state


def _inputs_changed(record: Mapping[str, Any] | None, source: PairSource) -> bool:
    """Whether the pair's image files are no longer those its outputs were made from (another size or time of
    change); not when its record says nothing of them (an earlier version's) or they cannot be looked at now (the
    outputs are kept, as before)."""
    recorded = None if record is None else record.get(INPUTS_RECORDED)
    now = _inputs_state(source.left, source.right)
    return isinstance(recorded, list) and now is not None and recorded != now


def skipped_outcome(job: BatchJob, source: PairSource, index: int) -> PairOutcome:
    """The outcome of a pair whose complete outputs exist, with the warnings recorded when it was done: those
    said while it was read and predicted (a map cut off at the top of its range, disparities as wide as the image),
    then the notes of the formats left out; and its size and density as recorded (a rerun's summary gave a skipped
    pair 0x0 px, as a pair that could not be read). A rerun's summary said the notes alone."""
    if job.output is None:
        return PairOutcome(index, source.name, source.left, source.right, status=SKIPPED)
    record = read_made_with(job.output, source.name) or {}
    recorded = record.get(WARNINGS_RECORDED)
    said = [m for m in recorded if isinstance(m, str)] if isinstance(recorded, list) else []
    noted = join_warnings([*said, *not_written_notes(job.output, source.name, job.formats)])
    outcome = PairOutcome(index, source.name, source.left, source.right, status=SKIPPED, warning=noted)
    figures = record.get(FIGURES_RECORDED)
    if isinstance(figures, dict):  # outputs of an earlier version have none: 0 px and no density, as before
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a record edited by hand fails no pair
            height_px, width_px = int(figures["height_px"]), int(figures["width_px"])
            outcome.density = float(figures["density"])
            outcome.height_px, outcome.width_px = height_px, width_px
    return outcome


def written_unreported(job: BatchJob, source: PairSource, index: int, since_s: float) -> PairOutcome | None:
    """The outcome of a pair a worker wrote whose report never came back (a run stopped by Ctrl-C while
    outcomes were on their way): its complete outputs are there, written since ``since_s`` (``time.time()``);
    ``None`` when they are not.

    Before the run its outputs were incomplete (or ``--overwrite`` redid them, whence the times), so they are
    this run's; the timings of the worker are lost, and the outcome's warning says so.
    """
    folder = job.output
    if folder is None or job.to_file or not outputs_complete(folder, source.name, job.formats):
        return None
    if job.overwrite:  # files of an earlier run count only when replaced by this one
        files = output_files(folder, source.name, job.formats) or []
        notes = [folder / NOT_WRITTEN_NOTES[f].format(name=source.name) for f in job.formats if f in NOT_WRITTEN_NOTES]
        if any(path.stat().st_mtime < since_s for path in (*files, *notes) if path.is_file()):
            return None
    return PairOutcome(
        index,
        source.name,
        source.left,
        source.right,
        status=DONE,
        warning="written as the run was interrupted; its report (timings, warnings) did not come back",
    )


def process_pair(job: BatchJob, predictor, source: PairSource, index: int) -> PairOutcome:
    """Skip, or read, predict and write one pair; never raises for a bad pair.

    Returns:
        The pair's outcome: ``done``, ``skipped`` (complete outputs exist) or ``failed`` (with the reason);
        what preparing, predicting and writing it warned about is its ``warning`` (not a Python warning,
        which a batch's progress bar would break).
    """
    if job.is_complete(source):
        return skipped_outcome(job, source, index)
    try:
        job.refuse_over_budget(predictor, source)
    except RtStereoError as exc:  # the pair fails, as it would once decoded, and the batch goes on
        failed = PairOutcome(index, source.name, source.left, source.right, worker=worker_label())
        failed.error = failure_reason(exc, (source.left, source.right))
        return failed
    pair, outcome = load_pair(source, index)
    if pair is None:
        return outcome
    return finish_pair(job, predictor, pair, outcome)


def check_run_args(predictor: Any, sources: Any, options: bool = False) -> None:
    """Refuse a predictor (or, with ``options``, :class:`PredictorOptions`) and pairs of the wrong type before any
    work: a model name failed every pair with ``AttributeError: 'str' object has no attribute 'predict_pair'``, and
    a manifest's path in place of its pairs failed with a bare ``AttributeError``.

    Raises:
        InputError: what was given instead, and what to give.

    Examples:
        >>> check_run_args(PredictorOptions("sgbm"), "pairs.csv", options=True)
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: sources: expected a list of pairs (rtstereo.sources.manifest.read_manifest(PATH) \
or rtstereo.sources.pairs.resolve_pairs(LEFT, RIGHT)), got str 'pairs.csv'
    """
    if options and not isinstance(predictor, PredictorOptions):
        raise InputError(
            f"options: expected PredictorOptions(model, settings=...), from which each worker builds its own model, "
            f"got {type(predictor).__name__}"
        )
    if not options and not callable(getattr(predictor, "predict_pair", None)):
        error = not_a_predictor(predictor, "a model from rtstereo.load(...) or PredictorOptions(...).load()")
        if isinstance(predictor, PredictorOptions):
            raise InputError(f"{error}: call its .load()")
        raise error
    how = "rtstereo.sources.manifest.read_manifest(PATH) or rtstereo.sources.pairs.resolve_pairs(LEFT, RIGHT)"
    if isinstance(sources, (str, bytes, os.PathLike)) or not isinstance(sources, Sequence):
        raise InputError(f"sources: expected a list of pairs ({how}), got {type(sources).__name__} {sources!r:.80}")
    wrong = next((item for item in sources if not isinstance(item, PairSource)), None)
    if wrong is not None:
        raise InputError(f"sources: expected PairSource items ({how}), got {type(wrong).__name__}")


def _realpaths() -> Callable[[str], str]:
    """``os.path.realpath`` for many files in few folders: each folder is resolved once, and of each file only its own
    name is looked at (a link?). Resolving every file's whole path took 0.4 s for a batch of 2 000 pairs.

    Examples:
        >>> realpath = _realpaths()
        >>> realpath("a/b.png") == os.path.realpath("a/b.png"), realpath("b.png") == os.path.realpath("b.png")
        (True, True)
    """
    folders = functools.lru_cache(maxsize=None)(os.path.realpath)

    def realpath(path: str) -> str:
        head, name = os.path.split(path)
        if name in ("", ".", "..") or os.path.islink(path):
            return os.path.realpath(path)
        return os.path.join(folders(head), name)

    return realpath


def _local_file(image: str) -> str | None:
    """The file an input names on this machine: a path, or a ``file://`` URL's file; ``None`` for http(s)."""
    if not is_url(image):
        return image
    parsed = urllib.parse.urlparse(image)
    return urllib.request.url2pathname(parsed.path) if parsed.scheme.lower() == "file" else None
