"""The hybrid method: a network's disparity, with SGBM's confident matches in place of its own.

SGBM and the project's network fail in different places. Where SGBM's uniqueness test (10 %) and its
left-right check (1 px) both hold (:func:`rtstereo.models.sgbm.confident_disparity`: 74 % of the
pixels of the 22 Middlebury scenes of the selection set, in the 3-direction mode), its matches are
better than the network's on most real scenes; the network answers everywhere else (low texture,
occlusions, the left band), where SGBM has only holes or row-wise fills. An unguided network runs at
the same time as SGBM, which takes a worker thread (OpenCV and ONNX Runtime release the GIL). A
guided network (the default, ``rtnet-guided``; rtnet's ``guided`` setting) takes SGBM's confident
matches as a third input, so SGBM runs first and the network after it.

Where SGBM is not confident, neither answer is always the better one: on large weakly textured
surfaces SGBM's row-wise fill (the nearer-to-background of the confident values beside the hole)
is often right where the network is not, and at object borders the reverse. With ``hole_choice``
(the default) each such pixel takes one of the two: by default as a small perceptron fit on rendered
scenes judges (``choose_by="learned"``, :mod:`rtstereo.runtime.hole_choice`), or whichever matches the
right image better by the edge refinement's photometric cost averaged over a 9 px square
(``choose_by="cost"``). SGBM's confident matches get a second look too (``check_confident``, the
default): where the network differs from one by more than 1 px, a second small perceptron decides
whether the network's value is shown instead (:mod:`rtstereo.runtime.confident_check`).

On the 22 Middlebury scenes of ``../shared/data/validation`` the confident matches took the mean
bad-2 from 20.4 % (SGBM) and 21.3 % (rtnet-v5 alone) to 17.6 %, and the choice in the holes to 17.0 %
(training/default/README.md, "Session 10" and "Session 11"), the guided network to 16.8 % ("Session
12"), SGBM's parallel 3-direction mode (``three_way``, 2.5x faster than its 5-direction mode) to
16.65 % and its uniqueness ratio 10 % instead of 15 % to 16.51 % ("Session 13"), the learned hole
choice to 15.88 % ("Session 14"), the check of the confident matches to 15.62 % ("Session 15").
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, warn
from ..geometry import pair_with_calibration_for_size
from ..models import PACKAGED_NETWORK
from ..models.registry import ModelSpec, coerce_setting
from ..models.sgbm import (
    SGBM_INPUTS,
    ExposureLatch,
    check_lr_tolerance,
    check_sgbm_uniqueness,
    confident_disparity,
    confident_search_range,
    normalize_local_contrast,
    num_disparities,
    resolved_sgbm_input,
)
from ..pools import wait_through_interrupts
from ..text import shortened
from ..types import Calibration, DisparityResult, StereoPair, with_own_left
from .confident_check import CheckPreparation, check_confident, prepare_check
from .hole_choice import HOLE_CHOICES, HolePreparation, choose_in_holes, learned_fusion, prepare_holes
from .memory import BUDGET_ENV as MEMORY_BUDGET_ENV
from .memory import plan_network_size
from .predictor import (
    ClosedBackend,
    LoadedSettings,
    Predictor,
    ResizeWarning,
    check_fit,
    check_fit_name,
    counted_from,
    raise_not_copied,
)
from .providers import check_thread_count, default_threads
from .refine import PhotometricCost, median_valid

MEDIAN_SIZES = (0, 3, 5)  # the final median's sizes (OpenCV's median of float maps takes 3 and 5)


def network_threads(requested: Any) -> int:
    """CPU threads for the hybrid's network: all it is given (or ``$RTSTEREO_THREADS``, or the cores
    this process may use) but the one SGBM takes, and at least one.

    OpenCV's SGBM runs on one thread in its 5-direction mode; a network that also asked for every core
    would fight it for them (at 640x480 on 2 cores: 210 ms per pair with both network threads, 138 ms
    with one). Its 3-direction mode (``three_way``) runs on OpenCV's own threads; beside an unguided
    network it took about as long as the 5-direction mode (124 against 121 ms).

    Examples:
        >>> network_threads(4), network_threads(2), network_threads(1)
        (3, 1, 1)
    """
    if requested is None:
        requested = default_threads()
    if requested is None:
        requested = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # checked as given: 99999 was refused as "threads 99998 is more than this machine can use"
    threads = check_thread_count(coerce_setting("threads", requested, 1))
    return max(1, threads - 1)


def confident_matches(
    left: np.ndarray,
    right: np.ndarray,
    settings: dict[str, Any],
    search_px: float,
    quarter_width_cap: bool = True,
) -> np.ndarray:
    """SGBM's confident matches as the hybrid finds them with its ``settings`` (``uniqueness``,
    ``lr_tolerance``, ``mirrored_check``, ``three_way``, ``sgbm_input``), searching ``search_px``
    (:func:`~rtstereo.models.sgbm.confident_disparity`); also the hints a guided network is trained,
    adapted and export-checked with (:mod:`rtstereo.train.hints`).

    With ``sgbm_input="normalized"`` SGBM matches both views after
    :func:`~rtstereo.models.sgbm.normalize_local_contrast` (robust to the two cameras exposing
    differently); ``"raw"`` (also when the key is absent) matches the images as they are; ``"auto"``
    chooses per pair (:func:`~rtstereo.models.sgbm.resolved_sgbm_input`).
    """
    if resolved_sgbm_input(settings.get("sgbm_input", "raw"), left, right) == "normalized":
        left, right = normalize_local_contrast(left), normalize_local_contrast(right)
    return confident_disparity(
        left,
        right,
        search_px,
        settings["uniqueness"],
        settings["lr_tolerance"],
        mirrored_check=bool(settings["mirrored_check"]),
        quarter_width_cap=quarter_width_cap,
        three_way=bool(settings["three_way"]),
    )


class HybridPredictor:
    """A network predictor whose disparity is replaced by SGBM's where SGBM is confident.

    It offers what callers use of a :class:`~rtstereo.runtime.predictor.Predictor`: ``predict``,
    ``predict_pair``, ``predict_on_device``, ``name``, ``settings``, ``spec``, ``backend`` and the
    post-processing switches (those apply to the network's map).

    Args:
        spec: the hybrid's registry entry.
        settings: its resolved settings: ``max_disp`` (SGBM's search bound; it also searches no more
            than a quarter of the image width), ``uniqueness``, ``lr_tolerance``, ``mirrored_check``,
            ``hole_choice`` (see :func:`~rtstereo.runtime.hole_choice.choose_in_holes`; without it the network
            fills every hole), ``choose_by`` (``"learned"`` or ``"cost"``), ``check_confident`` (see
            :func:`~rtstereo.runtime.confident_check.check_confident`),
            ``sgbm_input`` (``"raw"``, ``"normalized"``: SGBM matches the views after
            :func:`~rtstereo.models.sgbm.normalize_local_contrast`, or ``"auto"``: normalized when the two
            views' brightness differs by more than 1.2x; results record the one used as
            ``sgbm_input_used``), ``median`` (a median filter of that
            size over the final map, 0 = off; pixels next to an invalid one are kept), ``network`` (the
            name or file the network was loaded from, as results record it).
        network: the predictor of the network it runs.
        threads: the CPU threads it may use at once (``threads=N``; ``None``: ``$RTSTEREO_THREADS``, which
            ``--threads`` sets, else as many as it likes). One runs SGBM before an unguided network instead of
            beside it, and the hole choice's measures on the calling thread: ``--threads 1`` kept two cores busy.
    """

    def __init__(self, spec: ModelSpec, settings: dict[str, Any], network: Predictor, threads: Any = None):
        self.spec = spec
        self.settings: dict[str, Any] = LoadedSettings(settings, spec.name)
        self.threads = None if threads is None else check_thread_count(coerce_setting("threads", threads, 1))
        if self.settings["median"] not in MEDIAN_SIZES:
            raise InputError(
                f"{spec.name}: setting 'median' must be one of {', '.join(map(str, MEDIAN_SIZES))} (pixels; 0 = off), "
                f"got {self.settings['median']!r}"
            )
        if not 1 <= self.settings["max_disp"] < float("inf"):  # SGBM's search bound (the network keeps its own)
            raise InputError(f"{spec.name}: max_disp must be >= 1 pixel, got {shortened(self.settings['max_disp'])}")
        num_disparities(self.settings["max_disp"])  # OpenCV's limit: a 1000-digit one overflowed a float per pair
        uniqueness = self.settings["uniqueness"]
        if not 0 <= uniqueness < float("inf"):  # nan and inf fail too
            raise InputError(f"{spec.name}: setting 'uniqueness' must be a number >= 0, got {uniqueness}")
        check_sgbm_uniqueness(self.settings["uniqueness"], owner=f"{spec.name}: ")
        check_lr_tolerance(self.settings["lr_tolerance"], bool(self.settings["mirrored_check"]), f"{spec.name}: ")
        if self.settings.get("sgbm_input", "raw") not in SGBM_INPUTS:
            raise InputError(
                f"{spec.name}: setting 'sgbm_input' must be one of {', '.join(SGBM_INPUTS)}, "
                f"got {self.settings['sgbm_input']!r}"
            )
        if self.settings["choose_by"] not in HOLE_CHOICES:
            raise InputError(
                f"{spec.name}: setting 'choose_by' must be one of {', '.join(HOLE_CHOICES)}, "
                f"got {self.settings['choose_by']!r}"
            )
        if not self.settings["hole_choice"] and self.settings["choose_by"] != spec.defaults["choose_by"]:
            raise InputError(  # the choice it names is never made: the network fills every hole
                f"{spec.name}: choose_by={self.settings['choose_by']} says how hole_choice chooses, and "
                "hole_choice=false makes no choice (the network fills every hole): give one of them"
            )
        self.network = network
        network.offers_fit_crop = False  # the hybrid takes no fit="crop"
        network.unguided_warning_due = network.guided  # the hybrid gives it hints; a direct call gives none
        self.name = spec.name
        self._sgbm_thread: ThreadPoolExecutor | None = None  # made on first use, kept for the next frames
        self._sgbm_thread_lock = threading.Lock()  # two threads' first pairs must not make two
        # The latch of the stream the calling thread runs (begin_sequence ... end_sequence, sgbm_input=auto): per
        # thread, so that a pair predicted by another thread meanwhile is decided alone and leaves the stream's
        # hysteresis as it was, and two streams on one predictor each keep their own.
        self._sequence = threading.local()

    def __repr__(self) -> str:
        return f"HybridPredictor({self.name!r}, settings={self.settings}, network={self.network!r})"

    def recorded_settings(self) -> dict[str, Any]:
        """What a result records as its settings, less what each pair adds (``sgbm_input_used``,
        ``sgbm_searched_disp``): its network's (:meth:`Predictor.recorded_settings`: the runtime, the post-processing
        on) and its own. A stream's summary records these, as ``predict``'s sidecar records a result's."""
        return {**self.network.recorded_settings(), **self.settings}

    def __enter__(self) -> HybridPredictor:
        if isinstance(self.backend, ClosedBackend):  # refused here, not at the block's first predict
            self.backend.refuse(self.name)
        return self

    def __reduce__(self) -> Any:
        raise_not_copied(self.name)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the network (:meth:`Predictor.close`) and stop SGBM's worker thread (after the pair it may be
        matching); a closed hybrid refuses to predict. Closing twice is harmless."""
        self.network.close()
        with self._sgbm_thread_lock:
            worker, self._sgbm_thread = self._sgbm_thread, None
        if worker is not None:
            worker.shutdown(wait=True)

    @property
    def backend(self) -> Any:
        return self.network.backend

    @property
    def fit(self) -> str:
        """``"resize"``: the hybrid takes pairs of any size, so there is nothing to crop (``"crop"`` is refused)."""
        return "resize"

    @fit.setter
    def fit(self, value: str) -> None:
        fixed_hw = self.network.fixed_size_hw
        if check_fit_name(value) == "crop" and fixed_hw is not None:  # "takes pairs of any size" was untrue of it
            raise InputError(
                f"--fit crop (fit='crop') is not for the hybrid: its SGBM matches the whole pair, and its network, "
                f"fixed at {fixed_hw[0]}x{fixed_hw[1]} (HxW), runs the pair resized to that size (stretched where the "
                f"aspect ratio differs): {self.network.keep_aspect_advice} (rtstereo export)"
            )
        check_fit(value, None, self.name)  # "crop" had been taken, and ignored

    @property
    def guided(self) -> bool:
        """Whether its network takes SGBM's confident matches (and so runs after SGBM, not beside it)."""
        return bool(getattr(self.network, "guided", False))

    @property
    def fill_left_border(self) -> bool:
        return self.network.fill_left_border

    @fill_left_border.setter
    def fill_left_border(self, value: bool) -> None:
        self.network.fill_left_border = value

    @property
    def refine_edges(self) -> bool:
        return self.network.refine_edges

    @refine_edges.setter
    def refine_edges(self, value: bool) -> None:
        self.network.refine_edges = value

    @property
    def max_disp_px(self) -> float | None:
        """The network's range (SGBM's, ``settings["max_disp"]``, is never larger in practice)."""
        return self.network.max_disp_px

    def begin_sequence(self) -> None:
        """The next pairs the calling thread predicts are consecutive frames of one stream
        (:class:`~rtstereo.stream.Stream`'s inference thread says so): with ``sgbm_input=auto`` the choice of
        SGBM's input keeps a hysteresis across them (:class:`~rtstereo.models.sgbm.ExposureLatch`) instead of
        being made afresh for each pair. Other threads' pairs are still decided alone."""
        self._sequence.latch = ExposureLatch() if self.settings["sgbm_input"] == "auto" else None

    def end_sequence(self) -> ExposureLatch | None:
        """Back to deciding every pair alone; returns the calling thread's stream's latch (its ``switches``),
        if it had one."""
        latch, self._sequence.latch = getattr(self._sequence, "latch", None), None
        return latch

    def predict(self, left: np.ndarray, right: np.ndarray, calibration: Calibration | None = None) -> DisparityResult:
        """Disparity of the left image (see :meth:`Predictor.predict`; no ``hints``: SGBM's confident matches are its
        network's hints)."""
        started = time.perf_counter()
        return counted_from(
            with_own_left(self.predict_pair(StereoPair(left, right, calibration=calibration)), left), started
        )

    def predict_on_device(self, pair: StereoPair) -> Any:
        """The finished map as a tensor on the network's device (see :meth:`Predictor.predict_on_device`)."""
        if isinstance(self.backend, ClosedBackend):
            self.backend.refuse(self.name)
        if not self.backend.device_postprocess:
            raise InputError(f"the {self.backend.name} backend does not post-process on a device")
        import torch

        return torch.from_numpy(self.predict_pair(pair).disparity_px).to(self.backend.device)

    def memory_plan(self, input_hw: tuple[int, int]) -> tuple[int, int] | None:
        """A smaller size to run at when a pair of ``input_hw`` does not fit the memory budget (``None``: as asked).

        Raises:
            MemoryBudgetError: no size fits (:func:`.memory.plan_network_size`).
        """
        return plan_network_size(self.spec.name, "hybrid", self.max_disp_px, input_hw, self.spec.size_divisor)

    def predict_pair(self, pair: StereoPair) -> DisparityResult:
        """Network and confident SGBM at once, fused; a pair too large for the memory budget runs at a
        lower resolution (a warning says so; the disparity is scaled back to the input's pixels)."""
        try:
            return self._predict_within_budget(pair)
        except InputError:
            if isinstance(self.backend, ClosedBackend):  # by another thread meanwhile: the network said its own name
                self.backend.refuse(self.name)
            raise

    def _predict_within_budget(self, pair: StereoPair) -> DisparityResult:
        if isinstance(self.backend, ClosedBackend):
            self.backend.refuse(self.name)
        pair = pair_with_calibration_for_size(pair)
        height, width = pair.size_hw
        reduced = self.memory_plan((height, width))
        if reduced is None:
            return self._predict_fused(pair)
        warn(
            f"{self.name} on {height}x{width} (HxW) would need more memory than the budget: it runs at "
            f"{reduced[0]}x{reduced[1]} and the disparity is rescaled by {width / reduced[1]:.4f} "
            f"(see rtstereo.runtime.memory; {MEMORY_BUDGET_ENV} sets the budget)",
            ResizeWarning,
        )
        t0 = time.perf_counter()
        # Without the calibration: the result carries the input's, and the network must not scale it to the small size.
        small = StereoPair(
            *(cv2.resize(im, (reduced[1], reduced[0]), interpolation=cv2.INTER_AREA) for im in (pair.left, pair.right))
        )
        shrink_ms = (time.perf_counter() - t0) * 1e3
        result = self._predict_fused(small, max_disp_scale=reduced[1] / width)
        t1 = time.perf_counter()
        scale = width / reduced[1]
        disparity = cv2.resize(result.disparity_px, (width, height), interpolation=cv2.INTER_LINEAR) * scale
        disparity = disparity.astype(np.float32)
        grow_ms = (time.perf_counter() - t1) * 1e3
        # The two resizes are part of the call: "total" left them out (a fifth of a 1920x1440 pair's time).
        timings = dict(result.timings_ms)
        timings["preprocess"] += shrink_ms
        timings["postprocess"] += grow_ms
        timings["total"] += shrink_ms + grow_ms
        return dataclasses.replace(
            result,
            disparity_px=disparity,
            timings_ms=timings,
            input_size_hw=(height, width),
            calibration=pair.calibration,
            left=pair.coloured_left,
            disparity_scale=result.disparity_scale * scale,
        )

    def _predict_fused(self, pair: StereoPair, max_disp_scale: float = 1.0) -> DisparityResult:
        t0 = time.perf_counter()
        search_px = self.settings["max_disp"] * max_disp_scale
        # ``auto`` decided once per pair: what SGBM matches is also what the result records
        latch = getattr(self._sequence, "latch", None)
        if latch is not None:
            used = latch(pair.left, pair.right)
        else:
            used = resolved_sgbm_input(self.settings["sgbm_input"], pair.left, pair.right)
        sgbm_settings = {**self.settings, "sgbm_input": used}
        if pair.size_hw[1] <= confident_search_range(pair.size_hw[1], search_px):
            alone = PACKAGED_NETWORK if self.guided else self.network.name
            raise InputError(
                f"image width {pair.size_hw[1]} px is too small for {self.name}: SGBM needs more than 16 px of width; "
                f"run the network alone (--model {alone}, rtstereo.load({alone!r}) in Python)"
            )
        # The learned hole choice and the check of the confident pixels need some maps of SGBM's result and
        # the images alone (:meth:`_prepare`). Beside an unguided network they are made on the worker
        # thread with SGBM's matches; a guided network runs after SGBM on every thread, and they are
        # made after it: made on the worker thread while it ran, they slowed its inference at 640x480 on
        # 2 cores from 50 to 115 ms (ONNX Runtime's threads and OpenCV's wait for each other's core).
        learned = self.settings["hole_choice"] and self.settings["choose_by"] == "learned"
        prepare = learned or self.settings["check_confident"]
        threads = self.threads if self.threads is not None else default_threads()
        if not self.guided and threads == 1:  # one thread: SGBM, then the network, as a guided network runs
            confident, sgbm_ms, *rest = self._confident(pair, search_px, sgbm_settings, prepare)
            prepared = rest[0] if rest else None
            prepare_ms = None  # inside "sgbm", as on the worker thread
            result = self.network.predict_pair(pair)
        elif self.guided:  # the network takes SGBM's matches: SGBM first
            confident, sgbm_ms = self._confident(pair, search_px, sgbm_settings)
            # One photometric cost of the pair for the network's edge refinement and the maps after it
            t_prepare = time.perf_counter()
            cost = PhotometricCost(pair.left, pair.right) if prepare else None
            prepare_ms = (time.perf_counter() - t_prepare) * 1e3
            result = self.network.predict_pair(pair, hints=confident, cost=cost)
            t_prepare = time.perf_counter()
            prepared = self._prepare(pair, confident, cost) if prepare else None
            prepare_ms += (time.perf_counter() - t_prepare) * 1e3
        else:
            with self._sgbm_thread_lock:
                if isinstance(self.backend, ClosedBackend):  # closed by another thread since: no worker made anew
                    self.backend.refuse(self.name)
                if self._sgbm_thread is None:
                    self._sgbm_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtstereo-sgbm")
                pending = self._sgbm_thread.submit(self._confident, pair, search_px, sgbm_settings, prepare)
            try:
                result = self.network.predict_pair(pair)
            finally:
                # Through a second Ctrl-C: raised at once, it let the process end with SGBM's thread in OpenCV.
                wait_through_interrupts([pending], cancel=False)
                confident, sgbm_ms, *rest = pending.result()
                prepared = rest[0] if rest else None
                prepare_ms = None  # inside "sgbm", on the worker thread
        t1 = time.perf_counter()
        maps = None
        if learned:
            fused, candidates = learned_fusion(
                pair.left,
                pair.right,
                confident,
                result.disparity_px,
                search_px=search_px,
                prepared=prepared[0],
                threads=threads,
            )
            maps = candidates.maps
        elif self.settings["hole_choice"]:
            fused = choose_in_holes(
                pair.left,
                pair.right,
                confident,
                result.disparity_px,
                by=self.settings["choose_by"],
                search_px=search_px,
                threads=threads,
            )
        else:
            fused = np.where(np.isfinite(confident), confident, result.disparity_px).astype(np.float32)
        if self.settings["check_confident"]:
            fused = check_confident(fused, result.disparity_px, prepared[1], search_px, maps=maps, threads=threads)
        if self.settings["median"]:
            fused = median_valid(fused, self.settings["median"])
        t2 = time.perf_counter()
        timings = {
            **result.timings_ms,
            "sgbm": sgbm_ms,  # on its own thread beside the network's stages (before them for a guided network)
            "fusion": (t2 - t1) * 1e3 + (prepare_ms or 0.0),  # with the maps made around a guided network
            "total": (t2 - t0) * 1e3 - result.timings_ms.get("export", 0.0),  # the network's export: apart
        }
        settings = {**result.settings, **self.settings}  # "network": the name or file it was loaded from
        settings["sgbm_input_used"] = sgbm_settings["sgbm_input"]
        # SGBM's range is capped at a quarter of the width: what it searched, as sgbm records its own
        settings["sgbm_searched_disp"] = confident_search_range(pair.size_hw[1], search_px)
        return dataclasses.replace(result, disparity_px=fused, timings_ms=timings, model=self.name, settings=settings)

    def _confident(self, pair: StereoPair, search_px: float, settings: dict[str, Any], prepare: bool = False) -> tuple:
        """SGBM's confident matches with ``settings`` and their time in ms (and, with ``prepare``,
        :meth:`_prepare` of them)."""
        t0 = time.perf_counter()
        confident = confident_matches(pair.left, pair.right, settings, search_px)
        sgbm_ms = (time.perf_counter() - t0) * 1e3
        return (confident, sgbm_ms, self._prepare(pair, confident)) if prepare else (confident, sgbm_ms)

    def _prepare(
        self, pair: StereoPair, confident: np.ndarray, cost: PhotometricCost | None = None
    ) -> tuple[HolePreparation, CheckPreparation | None]:
        holes = prepare_holes(pair.left, pair.right, confident, cost=cost)
        check = prepare_check(pair.right, holes) if self.settings["check_confident"] else None
        return holes, check
