"""The Predictor: one model + one backend, numpy in, :class:`DisparityResult` out.

It owns everything around the network: input checks, normalisation, padding to the size divisor (or
resizing to a fixed-shape model's size, with the disparity rescaled by the width ratio), unpadding,
post-processing (:mod:`.postprocess`) and per-stage timings. With a torch backend on CUDA the data
stays on the GPU: the uint8 images are uploaded once, normalised and padded there
(:mod:`.preprocess_torch`), post-processed there (:mod:`.postprocess_torch`; both equal the numpy
code) and only the finished map is copied back.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, RtStereoWarning, require_numbers, warn
from ..geometry import calibration_scale, pair_with_calibration_for_size
from ..models.registry import ModelSpec, coerce_setting
from ..text import counted
from ..types import Calibration, DisparityResult, StereoPair, with_own_left
from .backends import Backend
from .memory import BUDGET_ENV as MEMORY_BUDGET_ENV
from .memory import DEFAULT_MAX_DISP_PX, plan_network_size
from .postprocess import FILL_LEFT_BORDER, REFINE_EDGES, fill_left_border
from .preprocess import normalize, pad_to_divisor
from .refine import PhotometricCost, refine_edges


class ResizeWarning(RtStereoWarning):
    """A pair ran at another size than its own, its disparity rescaled: a fixed-shape model (an export at one size),
    or a pair too large for the memory budget (:mod:`.memory`)."""


class SmallInputWarning(RtStereoWarning):
    """An input so small that a network's coarsest level has fewer than two cells across it."""


def _classical_instead(width_px: int) -> str:
    """The classical method to offer instead of a network on a pair too small for it, with a range SGBM can search at
    this width (it refuses one as wide as the image: "--model sgbm" alone failed on a 30-px pair), or ``""``.

    Examples:
        >>> _classical_instead(400), _classical_instead(30), _classical_instead(16)
        (", or a classical method: --model sgbm, rtstereo.load('sgbm') in Python", ", or a classical method \
searching less than the width: --model sgbm --max-disp 16, rtstereo.load('sgbm', max_disp=16) in Python", '')
    """
    if width_px > DEFAULT_MAX_DISP_PX:
        return ", or a classical method: --model sgbm, rtstereo.load('sgbm') in Python"
    fits = 16 * ((width_px - 1) // 16)  # OpenCV searches a multiple of 16, less than the width
    if fits < 16:
        return ""
    return (
        f", or a classical method searching less than the width: --model sgbm --max-disp {fits}, "
        f"rtstereo.load('sgbm', max_disp={fits}) in Python"
    )


def too_small_for(size_hw: tuple[int, int], size_divisor: int) -> bool:
    """Whether a network that pads its input to a multiple of ``size_divisor`` (and so has a coarsest level
    at ``1 / size_divisor`` of its input) would see fewer than two cells of that level in either
    direction. rtnet-v5 on Middlebury 2003 Teddy shrunk to 36x30: 13.5 px mean
    error and 94 % of pixels off by more than 1 px; at 45x37, 0.43 px and 14 %.

    Examples:
        >>> too_small_for((32, 48), 32), too_small_for((48, 64), 32), too_small_for((32, 48), 1)
        (True, False, False)
    """
    if size_divisor <= 1:
        return False
    return any(-(-side // size_divisor) < 2 for side in size_hw)


# What keeps a pair's aspect ratio on a fixed-size export (the files whose export refuses --dynamic say otherwise).
KEEP_ASPECT_ADVICE = "an export at the pair's aspect ratio, or --dynamic, keeps it"

# How a pair of another size meets a fixed-size network (--fit): resized to its size, or its centred window of the
# network's aspect ratio cut and resized (RT-Stereo's live_stereo.py: 720p scaled to 480 rows, the middle 672 columns).
FITS = ("resize", "crop")


def check_fit_name(fit: Any) -> str:
    """``fit``, one of :data:`FITS`, whatever the model (:func:`check_fit` checks it against one).

    Raises:
        InputError: another value.
    """
    if not isinstance(fit, str) or fit not in FITS:
        raise InputError(f"fit: expected one of {', '.join(FITS)}, got {fit!r:.80}")
    return fit


def check_fit(fit: Any, fixed_size_hw: tuple[int, int] | None, name: str) -> str:
    """``fit`` (one of :data:`FITS`) for a model of ``fixed_size_hw`` (``None``: it takes any size).

    Raises:
        InputError: another value, or ``"crop"`` for a model that takes pairs of any size.
    """
    fit = check_fit_name(fit)
    if fit == "crop" and fixed_size_hw is None:
        raise InputError(
            f"--fit crop (fit='crop') is for a network fixed at one size (an ONNX file exported at one HxW); "
            f"{name} takes pairs of any size, nothing to crop: leave it out"
        )
    return fit


def crop_window(size_hw: tuple[int, int], net_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, width, height)`` in pixels of the centred window of a ``size_hw`` image that ``--fit crop`` cuts
    for a network of ``net_hw``: the largest of the network's aspect ratio, so that scaling the image by one factor
    to cover the network's size and cutting the network's size from its middle keeps that window. An image of the
    network's aspect ratio to a pixel is kept whole (so that cutting a window again keeps it).

    Examples:
        >>> crop_window((720, 1280), (480, 672)), crop_window((64, 96), (32, 48)), crop_window((100, 48), (32, 48))
        ((136, 0, 1008, 720), (0, 0, 96, 64), (0, 34, 48, 32))
    """
    height, width = size_hw
    net_h, net_w = net_hw
    if round(net_w * height / net_h) == width or round(net_h * width / net_w) == height:
        return 0, 0, width, height
    if width * net_h > height * net_w:  # wider than the network: all rows kept, the sides cut
        win_w, win_h = max(1, round(net_w * height / net_h)), height
    else:
        win_w, win_h = width, max(1, round(net_h * width / net_w))
    return (width - win_w) // 2, (height - win_h) // 2, win_w, win_h


def window_of(pair: StereoPair, crop: dict[str, Any]) -> StereoPair:
    """``pair`` cut to the window of ``crop`` (``preparation["crop"]`` of a result: ``x0_px``, ``y0_px``,
    ``width_px``, ``height_px``), both views alike, the calibration's principal point moved by the window's offset;
    ``pair`` itself when the window is the whole of it.

    A calibration that records another size of the pair's aspect ratio is scaled to the pair first, with no warning
    (the pass that cut the window gave it): the window's corner and size are the pair's pixels, and cropping the
    calibration at its recorded size moved the principal point by the wrong amount."""
    x0, y0, win_w, win_h = (int(crop[key]) for key in ("x0_px", "y0_px", "width_px", "height_px"))
    if (win_h, win_w) == pair.size_hw:
        return pair
    calibration = pair.calibration
    if calibration is not None:
        calibration = _scaled_to(calibration, pair.size_hw).cropped(x0, y0, win_w, win_h)

    def window(image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[y0 : y0 + win_h, x0 : x0 + win_w])

    colours = pair.left_colours
    return dataclasses.replace(
        pair,
        left=window(pair.left),
        right=window(pair.right),
        calibration=calibration,
        left_colours=None if colours is None else window(colours),
    )


def _scaled_to(calibration: Calibration, size_hw: tuple[int, int]) -> Calibration:
    """``calibration`` scaled to images of ``size_hw`` when it records another size of their aspect ratio, with no
    warning (:func:`.geometry.calibration_for_size` warns when the pair runs); else ``calibration`` itself (one of
    another aspect ratio was refused when the pair ran)."""
    height, width = size_hw
    if calibration.width_px <= 0 or calibration.height_px <= 0:
        return calibration
    if (calibration.height_px, calibration.width_px) == (height, width):
        return calibration
    factors = calibration_scale(calibration, height, width)
    return calibration if factors is None else calibration.scaled(*factors)


def raise_not_copied(name: str) -> None:
    """Refuse to pickle or copy a loaded model, whose ONNX Runtime sessions, OpenCV matcher and threads cannot be: a
    predictor given to a ``multiprocessing`` pool failed with "TypeError: cannot pickle 'mappingproxy' object".

    Raises:
        InputError: always, saying to load the model where it runs.
    """
    raise InputError(
        f"a loaded {name} model cannot be pickled or copied (its ONNX Runtime sessions, OpenCV matcher and threads "
        f"stay in this process): load it where it runs, rtstereo.load({name!r}, ...) in each process (a "
        "multiprocessing pool's initializer), or share this one between threads, which it allows"
    )


class LoadedSettings(dict):
    """A loaded model's settings (:attr:`Predictor.settings`): a dict to read, refused when changed.

    The model was built from them when it loaded (OpenCV's matcher, a network's graph): ``m.settings["max_disp"] = 32``
    left SGBM searching 192 px while every result recorded 32, and the hybrid took a value no check had seen.

    Examples:
        >>> settings = LoadedSettings({"max_disp": 64}, "sgbm")
        >>> settings["max_disp"], dict(settings) == {"max_disp": 64}
        (64, True)
        >>> settings["max_disp"] = 32  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: sgbm was built with its settings when it loaded (max_disp=64): ... max_disp=32) ...
    """

    def __init__(self, settings: Any = (), model: str = "the model") -> None:
        # both optional: dataclasses.asdict remakes a dict field as type(field)(items), with no model name
        super().__init__(settings)
        self.model = model

    def __setitem__(self, key: str, value: Any) -> None:
        now = f" ({key}={self[key]!r})" if key in self else ""
        raise InputError(
            f"{self.model} was built with its settings when it loaded{now}: load it again with the new one, "
            f"rtstereo.load({self.model!r}, {key}={value!r}) (--set {key}={value} on the command line)"
        )

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise InputError(
            f"{self.model} was built with its settings when it loaded: load it again with other ones, "
            f"rtstereo.load({self.model!r}, SETTING=VALUE)"
        )

    __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:  # pickled and copied as made, not item by item through __setitem__
        return (LoadedSettings, (dict(self), self.model))


class Predictor:
    """Runs a stereo method on pairs of uint8 RGB images.

    Args:
        spec: the model's registry entry (input contract).
        settings: resolved settings the model was built with.
        backend: what runs the prepared inputs.
        name: label recorded in results (defaults to ``spec.name``).
        fixed_size_hw: network input size of a fixed-shape model (ONNX exports); ``None`` pads.
        fill_left_border: fill each row's unmatched left band (:func:`.postprocess.fill_left_border`);
            ``None`` takes the model's default (``spec.fill_left_border``).
        refine_edges: sharpen depth edges against the images (:func:`.refine.refine_edges`), after
            the fill; ``None`` takes the model's default (``spec.refine_edges``).
        weights: the weights file (or URL) the network was loaded from, recorded in results as
            ``settings["weights"]``: two checkpoints of one architecture give otherwise identical records.
        keep_aspect_advice: what the warning about a pair stretched to ``fixed_size_hw`` advises instead.
        range_fixed_in: the exported file whose graph fixes ``max_disp``, named by the warning about a map cut off at
            the top of its range (a larger ``--max-disp`` is refused for it: it takes an export again).
        fit: how a pair of another size meets ``fixed_size_hw`` (:data:`FITS`, also settable as :attr:`fit`):
            ``"resize"`` (both views resized to it, stretched where the aspect ratio differs) or ``"crop"`` (the
            centred window of its aspect ratio, :func:`crop_window`, cut alike from both views and resized: the
            result is that window's map, its calibration's principal point moved by the window's offset, and its
            ``preparation["crop"]`` says where the window lies); refused for a model that takes any size.

    One predictor may be called from several threads at once: each call gives the map a call alone gives.
    :meth:`close` (or a ``with`` block) releases it at once; a predictor no longer referenced is released too.
    Its :attr:`settings` are a :class:`LoadedSettings`, to read (a change raises :class:`InputError`: load the model
    again), and it is neither pickled nor copied (another process loads its own).

    Examples:
        >>> import rtstereo
        >>> m = rtstereo.load("sgbm", max_disp=16)
        >>> r = m.predict(np.zeros((32, 48, 3), np.uint8), np.zeros((32, 48, 3), np.uint8))
        >>> r.disparity_px.shape, r.disparity_px.dtype
        ((32, 48), dtype('float32'))
        >>> with rtstereo.load("sgbm", max_disp=16) as m:
        ...     m.predict(np.zeros((32, 48, 3), np.uint8), np.zeros((32, 48, 3), np.uint8)).model
        'sgbm'
    """

    # Whether the warning about a pair stretched to a fixed size offers --fit crop: not for the hybrid's network, which
    # runs the pair the hybrid's SGBM matches whole (the hybrid refuses fit="crop").
    offers_fit_crop = True
    # Whether the first pair run without hints says that a guided network runs unguided: for the hybrid's network,
    # which load() did not warn about (rtstereo.load("default").network.predict(L, R) ran unguided without a word).
    unguided_warning_due = False

    def __init__(
        self,
        spec: ModelSpec,
        settings: dict[str, Any],
        backend: Backend,
        name: str | None = None,
        fixed_size_hw: tuple[int, int] | None = None,
        fill_left_border: bool | None = None,
        refine_edges: bool | None = None,
        weights: str | None = None,
        keep_aspect_advice: str = KEEP_ASPECT_ADVICE,
        range_fixed_in: str | None = None,
        fit: str = "resize",
    ):
        self.spec = spec
        self.name = name or spec.name
        self.settings: dict[str, Any] = LoadedSettings(settings, self.name)
        self.backend = backend
        self.fixed_size_hw = fixed_size_hw or spec.fixed_size_hw
        self.fill_left_border = spec.fill_left_border if fill_left_border is None else fill_left_border
        self.refine_edges = spec.refine_edges if refine_edges is None else refine_edges
        self.weights = weights
        self.keep_aspect_advice = keep_aspect_advice
        self.range_fixed_in = range_fixed_in
        self.fit = fit

    @property
    def fit(self) -> str:
        """How a pair of another size meets a fixed-size network: ``"resize"`` or ``"crop"`` (see the class)."""
        return self._fit

    @fit.setter
    def fit(self, value: str) -> None:
        self._fit = check_fit(value, self.fixed_size_hw, self.name)

    def crop_pair(self, pair: StereoPair) -> tuple[StereoPair, dict[str, Any] | None]:
        """With :attr:`fit` ``"crop"``, ``pair`` cut to its centred window of the network's aspect ratio (both
        views alike, so that disparities stay those of the pair; the calibration's principal point moved by the
        window's offset) and what its files record of the window; else ``pair`` and ``None``."""
        if self.fit != "crop" or self.fixed_size_hw is None:
            return pair, None
        height, width = pair.size_hw
        x0, y0, win_w, win_h = crop_window((height, width), self.fixed_size_hw)
        record = {"input_size_hw": [height, width], "x0_px": x0, "y0_px": y0, "width_px": win_w, "height_px": win_h}
        return window_of(pair, record), record

    # The post-processing switches read as load() reads them: bool() made "false" and "no" true, and turned it on.
    @property
    def fill_left_border(self) -> bool:
        """Whether each row's unmatched left band is filled (:func:`.postprocess.fill_left_border`)."""
        return self._fill_left_border

    @fill_left_border.setter
    def fill_left_border(self, value: bool) -> None:
        self._fill_left_border = coerce_setting(FILL_LEFT_BORDER, value, False)

    @property
    def refine_edges(self) -> bool:
        """Whether depth edges are sharpened against the images (:func:`.refine.refine_edges`)."""
        return self._refine_edges

    @refine_edges.setter
    def refine_edges(self, value: bool) -> None:
        self._refine_edges = coerce_setting(REFINE_EDGES, value, False)

    def __repr__(self) -> str:
        return f"Predictor({self.name!r}, settings={self.settings}, backend={self.backend.describe()})"

    def __enter__(self) -> Predictor:
        if isinstance(self.backend, ClosedBackend):  # refused here, not at the block's first predict
            self.backend.refuse()
        return self

    def __reduce__(self) -> Any:
        raise_not_copied(self.name)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the backend (ONNX Runtime sessions, a network's weights) now rather than when the
        predictor is no longer referenced; a closed predictor refuses to predict (:class:`InputError`).
        Closing twice is harmless."""
        if not isinstance(self.backend, ClosedBackend):
            self.backend = ClosedBackend(self.name, self.backend.describe())

    @property
    def max_disp_px(self) -> float | None:
        """The disparity range the method searches at its input resolution, when it has one: ``max_disp``, or
        for OpenCV's matchers the multiple of 16 they round it up to (``--max-disp 17`` searches 32)."""
        value = self.settings.get("max_disp")
        if value is None:
            return None
        # The range check took 17 for the top: a pile-up at 31 px went unsaid, matches at 16 px were called cut off.
        searched = self.backend.describe().get("searched_disp")
        return float(searched if searched is not None else value)

    def predict(
        self,
        left: np.ndarray,
        right: np.ndarray,
        calibration: Calibration | None = None,
        *,
        hints: np.ndarray | None = None,
    ) -> DisparityResult:
        """Disparity of the left image.

        Args:
            left: uint8 RGB ``(H, W, 3)`` (grey ``(H, W)`` is accepted and repeated).
            right: uint8 RGB, same size as ``left`` (when one view is grey and the other in colour, both are
                matched in grey, with a warning: :func:`~rtstereo.types.grey_alike`).
            calibration: optional; carried into the result for depth and point clouds. One made for
                another image size of the same aspect ratio is scaled to these images with a
                :class:`~rtstereo.geometry.CalibrationWarning`, as on the command line; another aspect
                ratio is refused (:class:`~rtstereo.errors.InputError`).
            hints: for a :attr:`guided` network alone: float ``(H, W)`` disparities known in advance, ``nan`` where
                there are none, as :meth:`predict_pair` takes them (another network refuses them).

        Returns:
            :class:`DisparityResult` with ``disparity_px`` float32 ``(H, W)`` (nan = invalid); with :attr:`fit`
            ``"crop"``, of the window cut from the pair, which ``preparation["crop"]`` places in it.

        Raises:
            InputError: an image that is not a uint8 array of shape ``(H, W[, 1|3|4])``, two sizes, a
                calibration of another aspect ratio, an image too small for the method, a closed predictor, hints
                to a network that takes none or hints that are not disparities below the width (inf, 1e30);
                :class:`~.memory.MemoryBudgetError` (an ``InputError``): no size of the pair fits the budget.
        """
        started = time.perf_counter()
        result = with_own_left(self.predict_pair(StereoPair(left, right, calibration=calibration), hints=hints), left)
        return counted_from(result, started)

    def _postprocess(
        self, disparity: np.ndarray, pair: StereoPair, pad: tuple[int, int], cost: PhotometricCost | None = None
    ) -> np.ndarray:
        """Unpad (or rescale a fixed-shape network's map), mark ``<= 0`` invalid, fill, refine (numpy; with
        ``cost``, the pair's photometric cost made beforehand)."""
        height, width = pair.size_hw
        if pad != (0, 0):
            disparity = disparity[: disparity.shape[0] - pad[0], : disparity.shape[1] - pad[1]]
        # inf as well as nan and <= 0 is invalid: an overflow in half precision must not pass as a match
        usable = (disparity > 0) & (disparity < np.inf)
        if disparity.shape != (height, width):
            # A fixed-shape network: disparity is measured in its pixels, so scale by the width ratio.
            disparity = resize_valid(disparity, usable, (height, width)) * (width / disparity.shape[1])
        else:
            disparity = np.where(usable, disparity, np.nan)
        disparity = disparity.astype(np.float32, copy=False)
        if self.fill_left_border:
            disparity = fill_left_border(disparity)
        if self.refine_edges:
            disparity = refine_edges(pair.left, pair.right, disparity, cost)
        return disparity

    def _postprocess_on_device(self, disparity: Any, pair: StereoPair, left: Any, right: Any) -> Any:
        """:meth:`_postprocess` on the backend's device (:mod:`.postprocess_torch`, same results), for a
        map at the padded input size and the uploaded uint8 images; the finished map stays there."""
        import torch

        from . import postprocess_torch

        height, width = pair.size_hw
        disparity = disparity[:height, :width]  # the padding is at the bottom and the right
        usable = (disparity > 0) & (disparity < float("inf"))
        disparity = torch.where(usable, disparity, torch.full_like(disparity, float("nan")))
        if self.fill_left_border:
            disparity = postprocess_torch.fill_left_border(disparity)
        if self.refine_edges:
            disparity = postprocess_torch.refine_edges(left, right, disparity)
        return disparity

    def recorded_settings(self) -> dict[str, Any]:
        """What a result records as its settings: the model's, its weights file, how its backend runs it (the
        runtime, device, precision, an exported file and its providers and threads) and the post-processing on.

        Examples:
            >>> import rtstereo
            >>> rtstereo.load("sgbm", max_disp=16).recorded_settings()["backend"]
            'opencv'
        """
        return {
            **self.settings,
            **({"weights": self.weights} if self.weights else {}),
            **self.backend.describe(),
            **self._postprocess_settings(),
        }

    def _postprocess_settings(self) -> dict[str, Any]:
        """The post-processing on, as recorded in results (nothing when none is)."""
        switches = {FILL_LEFT_BORDER: self.fill_left_border, REFINE_EDGES: self.refine_edges}
        return {name: True for name, on in switches.items() if on}

    def memory_plan(self, input_hw: tuple[int, int]) -> tuple[int, int] | None:
        """A smaller size to run at when a pair of ``input_hw`` does not fit the memory budget (``None``: as asked).

        Raises:
            MemoryBudgetError: no size fits (:func:`.memory.plan_network_size`).
        """
        return plan_network_size(
            self.spec.name,
            self.spec.kind,
            self.max_disp_px,
            input_hw,
            self.spec.size_divisor,
            self.fixed_size_hw,
        )

    @property
    def guided(self) -> bool:
        """Whether the network takes hints (a guided rtnet: ``settings["guided"]``)."""
        return bool(self.settings.get("guided"))

    def predict_pair(
        self, pair: StereoPair, hints: np.ndarray | None = None, cost: PhotometricCost | None = None
    ) -> DisparityResult:
        """Like :meth:`predict`, for a :class:`StereoPair`.

        Before running, the method's peak memory is estimated for the input size
        (:mod:`.memory`): a pair too large for the budget runs at a lower resolution (with a warning,
        the disparity rescaled) or is refused with :class:`~.memory.MemoryBudgetError`.

        Args:
            pair: the images.
            hints: for a :attr:`guided` network: float ``(H, W)`` disparities known in advance (SGBM's
                confident matches in the hybrid method), ``nan`` where there are none.
            cost: the pair's :class:`~.refine.PhotometricCost` for the edge refinement, if already made
                (the hybrid method uses it again in its fusion); its buffers are overwritten.
        """
        pair = pair_with_calibration_for_size(pair)
        pair, crop = self.crop_pair(pair)
        cut = crop is not None and (crop["height_px"], crop["width_px"]) != tuple(crop["input_size_hw"])
        if cut and crop is not None:
            self._say_crop(crop)
            cost = None  # made for the whole pair
            if hints is not None:  # given for the whole pair: the window's
                hints = require_numbers(hints, "hints", "a float (H, W) array of disparities in pixels, nan where none")
                if hints.shape == tuple(crop["input_size_hw"]):
                    y0, x0 = crop["y0_px"], crop["x0_px"]
                    hints = hints[y0 : y0 + crop["height_px"], x0 : x0 + crop["width_px"]]
        disparity, timings, net_hw, scale = self._predict(pair, keep_on_device=False, hints=hints, cost=cost, said=cut)
        return DisparityResult(
            disparity_px=disparity,
            timings_ms=timings,
            model=self.name,
            settings=self.recorded_settings(),
            input_size_hw=pair.size_hw,
            network_size_hw=net_hw,
            calibration=pair.calibration,
            left=pair.coloured_left,
            disparity_scale=scale,
            preparation={} if crop is None else {"crop": crop},
        )

    def _say_crop(self, crop: dict[str, Any]) -> None:
        """Warn (:class:`ResizeWarning`) what ``--fit crop`` cut from a pair and at what scale its window runs."""
        net_h, net_w = self.fixed_size_hw or (crop["height_px"], crop["width_px"])
        height, width = crop["input_size_hw"]
        resized = (crop["height_px"], crop["width_px"]) != (net_h, net_w)
        scale = f", rescaled by {crop['width_px'] / net_w:.4f}" if resized else ""
        warn(
            f"{self.name} runs at a fixed {net_h}x{net_w} (HxW): --fit crop cuts the centred {crop['height_px']}x"
            f"{crop['width_px']} window at x={crop['x0_px']}, y={crop['y0_px']} of the {height}x{width} input from "
            f"both views{' and resizes it' if resized else ''}; the disparity is that window's (at its own "
            f"resolution){scale}",
            ResizeWarning,
        )

    def predict_on_device(self, pair: StereoPair) -> Any:
        """The finished disparity ``(H, W)`` as a float32 tensor on the backend's device.

        For backends that post-process on their device (``backend.device_postprocess``, a torch
        backend on CUDA): the map is not copied to the host. Used by the left-right check
        (:func:`rtstereo.confidence.lr_check`) to keep the right view's map on the device.

        Raises:
            InputError: the backend keeps nothing on a device, or the predictor was closed.
        """
        if isinstance(self.backend, ClosedBackend):
            self.backend.refuse()
        if not self.backend.device_postprocess:
            raise InputError(f"the {self.backend.name} backend does not post-process on a device")
        return self._predict(pair, keep_on_device=True)[0]

    def _predict(
        self,
        pair: StereoPair,
        keep_on_device: bool,
        hints: np.ndarray | None = None,
        cost: PhotometricCost | None = None,
        said: bool = False,
    ) -> tuple[Any, dict[str, float], tuple[int, int], float]:
        """Disparity (numpy, or a device tensor with ``keep_on_device``), stage timings, network size, and the
        factor its disparities were scaled by (:attr:`~rtstereo.types.DisparityResult.disparity_scale`); ``said``:
        the resize to a fixed size was warned about already (:meth:`_say_crop`)."""
        if isinstance(self.backend, ClosedBackend):
            self.backend.refuse()
        if hints is None and self.unguided_warning_due:
            self.unguided_warning_due = False  # once, as load() warns once of a guided network named alone
            warn_unguided(self.name)
        t0 = time.perf_counter()
        height, width = pair.size_hw
        if hints is not None:
            if not self.guided:
                raise InputError(f"{self.name} takes no hints (only a guided network does)")
            # a list or a string failed with AttributeError: 'list' object has no attribute 'shape'
            hints = require_numbers(hints, "hints", "a float (H, W) array of disparities in pixels, nan where none")
            if hints.shape != (height, width):
                raise InputError(f"hints {hints.shape} and images {(height, width)} differ in size")
            infinite = int(np.count_nonzero(np.isinf(hints)))
            if infinite:  # ONNX Runtime failed on them with its own "Out of range value in index tensor"
                raise InputError(
                    f"hints hold inf at {infinite} pixel{'s' if infinite != 1 else ''}: give nan where there is no "
                    "hint (a PFM map's invalid pixels: rtstereo.io.read_disparity reads them as nan)"
                )
            beyond = int(np.count_nonzero(hints >= width))
            if beyond:  # no match lies there; 1e30 gave a map of 1e26 px
                raise InputError(
                    f"hints reach {float(np.nanmax(hints)):g} px at {beyond} pixel{'s' if beyond != 1 else ''}, not "
                    f"below the images' width of {width} px, where no match lies: hints are disparities in pixels of "
                    "these images (a map of another size or unit?), nan where there is none"
                )
        left, right = pair.left, pair.right
        net_hw = (height, width)
        reduced_hw = self.memory_plan((height, width))
        # Not with hints: the hybrid's maps at such sizes are mostly SGBM's (Teddy at 36x30: 0.33 px, 6 %).
        small = too_small_for(reduced_hw or (height, width), self.spec.size_divisor)
        if small and not self.fixed_size_hw and hints is None:
            side = 2 * self.spec.size_divisor
            warn(
                f"{self.name} on {height}x{width} (HxW): at least {side - self.spec.size_divisor + 1} px each way is "
                f"needed for its coarsest level (1/{self.spec.size_divisor}) to span two cells; its disparity at this "
                f"size is not meaningful (use a larger image{_classical_instead(width)})",
                SmallInputWarning,
            )
        self._say_range_beyond_width((reduced_hw or self.fixed_size_hw or (height, width))[1])
        # On the device only when the map comes back at the input size (no resize to undo there).
        if self.backend.device_postprocess and not self.fixed_size_hw and reduced_hw is None and hints is None:
            return self._predict_on_device(pair, keep_on_device, t0)
        if self.fixed_size_hw and self.fixed_size_hw != (height, width):
            net_hw = self.fixed_size_hw
            # By more than 5 % (KITTI's 375x1242 at 384x1248: 2 %): a 40x3000 strip run at 64x96, a 75:1 view
            # stretched to 1.5:1, was said to be resized only.
            aspect_change = (width / height) / (net_hw[1] / net_hw[0])
            stretched = (
                f"; the views are stretched (aspect ratio W/H {width / height:.2f} run at "
                f"{net_hw[1] / net_hw[0]:.2f}): {self.keep_aspect_advice}"
                + (
                    "; or --fit crop (predict, video, live; fit='crop' in Python) runs their centred window of the "
                    "network's aspect ratio"
                    if self.offers_fit_crop
                    else ""
                )
                if not 1 / 1.05 <= aspect_change <= 1.05
                else ""
            )
            if not said:
                warn(
                    f"{self.name} runs at a fixed {net_hw[0]}x{net_hw[1]} (HxW): the {height}x{width} input is resized "
                    f"and the disparity rescaled by {width / net_hw[1]:.4f}{stretched}",
                    ResizeWarning,
                )
        elif reduced_hw is not None:
            net_hw = reduced_hw
            warn(
                f"{self.name} on {height}x{width} (HxW) would need more memory than the budget: it runs at "
                f"{net_hw[0]}x{net_hw[1]} and the disparity is rescaled by {width / net_hw[1]:.4f} "
                f"(see rtstereo.runtime.memory; {MEMORY_BUDGET_ENV} sets the budget)",
                ResizeWarning,
            )
        resized_hw = net_hw if net_hw != (height, width) else None
        if resized_hw is not None:
            left, right = (
                cv2.resize(
                    im, (net_hw[1], net_hw[0]), interpolation=cv2.INTER_AREA if net_hw[1] < width else cv2.INTER_LINEAR
                )
                for im in (left, right)
            )
        pad = (0, 0)
        if not self.backend.takes_uint8:
            left, right = normalize(left, self.spec.normalization), normalize(right, self.spec.normalization)
            if not self.fixed_size_hw and reduced_hw is None:
                left, pad = pad_to_divisor(left, self.spec.size_divisor, self.spec.min_size_px)
                right, _ = pad_to_divisor(right, self.spec.size_divisor, self.spec.min_size_px)
                net_hw = (left.shape[2], left.shape[3])
        if self.guided and not self.backend.takes_uint8:  # its inputs have a hint channel, empty without hints
            known = hints if hints is not None else np.full((height, width), np.nan, np.float32)
            left = np.concatenate([left, hint_channel(known, resized_hw, left.shape[2:])], axis=1)
        t1 = time.perf_counter()
        disparity = self.backend.run(left, right)
        t2 = time.perf_counter()
        disparity = self._postprocess(np.asarray(disparity, dtype=np.float32), pair, pad, cost)
        if keep_on_device:
            import torch

            disparity = torch.from_numpy(disparity).to(self.backend.device)  # type: ignore[attr-defined]
        t3 = time.perf_counter()
        # An export made on first use at this size (--backend onnxruntime) is no part of the model's time: a
        # first pair at 1.9 s and the next at 20 ms made a mean of the export, and "inference" of it.
        setup_ms = self.backend.take_setup_ms()
        timings = {
            "preprocess": (t1 - t0) * 1e3,
            "inference": (t2 - t1) * 1e3 - setup_ms,
            "postprocess": (t3 - t2) * 1e3,
            "total": (t3 - t0) * 1e3 - setup_ms,
        }
        if setup_ms:
            timings["export"] = setup_ms
        return disparity, timings, net_hw, width / resized_hw[1] if resized_hw is not None else 1.0

    def _say_range_beyond_width(self, width: int) -> None:
        """Warn (:class:`~rtstereo.models.sgbm.UnmatchedBandWarning`) when a network's chosen range reaches beyond the
        width it runs at: no disparity of the width or more has a match in the right view, yet GwcNet at --max-disp
        336 on a 320-px pair searched them all (10.7 s against 2.7 s at 48 px), without a word (OpenCV's matchers
        refuse such a range). Ranges fixed by the weights (rtnet's) or by the file (exports, packaged networks) are
        not the user's choice: nothing to say."""
        from ..models.sgbm import UnmatchedBandWarning

        searched = self.max_disp_px
        if self.spec.kind != "network" or "max_disp" in self.spec.weight_settings or not searched:
            return
        if searched <= width:  # it searches 0 .. max_disp - 1, and the last column's match can be width - 1 px away
            return
        fits = 16 * (width // 16)  # GwcNet takes multiples of 16
        lower = f", e.g. {fits}" if fits >= 16 else ""
        warn(
            f"{self.name} searches {searched:g} px, beyond the {width}-px width it runs at: no disparity of {width} px "
            f"or more has a match in the right view, so that part of the range costs time and memory for nothing; "
            f"lower --max-disp (max_disp= in Python){lower}",
            UnmatchedBandWarning,
        )

    def _predict_on_device(
        self, pair: StereoPair, keep_on_device: bool, t0: float
    ) -> tuple[Any, dict[str, float], tuple[int, int], float]:
        """:meth:`_predict` with the data on the backend's device: the uint8 images go up once, the
        finished map comes back once (unless ``keep_on_device``). Stage times are measured on the
        device's timeline (CUDA events), so the stages are not made to wait for one another."""
        from . import preprocess_torch

        backend = self.backend
        marks = [backend.mark()]
        left_u8, right_u8 = backend.upload(pair.left), backend.upload(pair.right)
        mode, divisor, minimum = self.spec.normalization, self.spec.size_divisor, self.spec.min_size_px
        left, _ = preprocess_torch.pad_to_divisor(preprocess_torch.normalize(left_u8, mode), divisor, minimum)
        right, _ = preprocess_torch.pad_to_divisor(preprocess_torch.normalize(right_u8, mode), divisor, minimum)
        marks.append(backend.mark())
        disparity = backend.forward(left, right)  # type: ignore[attr-defined]
        marks.append(backend.mark())
        disparity = self._postprocess_on_device(disparity, pair, left_u8, right_u8)
        marks.append(backend.mark())
        if not keep_on_device:
            disparity = backend.download(disparity)  # type: ignore[attr-defined]
        preprocess_ms, inference_ms, postprocess_ms = (a.ms_until(b) for a, b in zip(marks, marks[1:]))
        timings = {
            "preprocess": preprocess_ms,
            "inference": inference_ms,
            "postprocess": postprocess_ms,
            "total": (time.perf_counter() - t0) * 1e3,
        }
        return disparity, timings, (int(left.shape[-2]), int(left.shape[-1])), 1.0  # padded only


def counted_from(result: DisparityResult, started: float) -> DisparityResult:
    """``result`` with the time its ``predict`` call spent outside its stages since ``started`` (a
    :func:`time.perf_counter` reading) counted in ``preprocess`` and ``total``, which is then the whole call:
    turning the images into uint8 RGB (a grey or RGBA view, a strided one) and copying the left one for the result
    took 19 and 38 ms of a grey and an RGBA 1920x1440 pair, outside every stage. An export made on first use stays
    apart, as ``export``.

    Examples:
        >>> counted = counted_from(DisparityResult(np.ones((2, 2), np.float32), {"preprocess": 1.0, "total": 5.0}), 0.0)
        >>> counted.timings_ms["total"] - counted.timings_ms["preprocess"]
        4.0
    """
    timings = dict(result.timings_ms)
    outside_ms = (time.perf_counter() - started) * 1e3 - timings.get("total", 0.0) - timings.get("export", 0.0)
    if outside_ms > 0:
        timings["preprocess"] = timings.get("preprocess", 0.0) + outside_ms
        timings["total"] = timings.get("total", 0.0) + outside_ms
    return dataclasses.replace(result, timings_ms=timings)


# A map with at least this share of its valid pixels within 1 px of the top of the searched range is warned
# about: a scene that fits leaves almost none there (0.19 % at most for SGBM on MiddEval3-Q's mismatched
# PianoL, 0 on the others), one with nearer points beyond the range piles them up there (2-21 % on the same
# pairs searched to 48 px).
CEILING_SHARE = 0.01


class RangeCeilingWarning(RtStereoWarning):
    """A noticeable share of a map sits at the top of the searched disparity range (nearer points cut off)."""


def range_ceiling_share(result: DisparityResult, max_disp_px: float | None) -> tuple[float, float]:
    """The share of ``result``'s valid pixels within 1 px of the top of the searched range, and that top.

    The top is ``max_disp_px - 1`` (SGBM's last disparity, a network's just under ``max_disp_px``), in pixels
    of the input: scaled by ``result.disparity_scale`` when the model ran at another size (to fit memory, or a
    fixed-size export) and its disparity was rescaled.

    Args:
        result: a map (``disparity_px`` float32 ``(H, W)``, ``nan`` where invalid).
        max_disp_px: the range searched at the network's resolution (:attr:`Predictor.max_disp_px`);
            ``None``: the method has no range, ``(0.0, nan)``.

    Returns:
        ``(share, top_px)``: share in 0..1 of the valid pixels, top in input pixels.

    Examples:
        >>> disparity = np.full((10, 10), 20.0, np.float32)
        >>> disparity[:2] = 191.0
        >>> range_ceiling_share(DisparityResult(disparity), 192.0)
        (0.2, 191.0)
    """
    if max_disp_px is None:
        return 0.0, float("nan")
    # not from the sizes: a fixed-size export run on a smaller pair is wider than its input, as a padded one is
    top_px = (max_disp_px - 1) * result.disparity_scale
    valid = result.disparity_px[np.isfinite(result.disparity_px)]
    if valid.size == 0:
        return 0.0, top_px
    # not beyond it: a hybrid's network part may search further than its SGBM (--max-disp 32 with default)
    at_top = (valid >= top_px - 1.0) & (valid <= top_px + 1.0)
    return float(np.count_nonzero(at_top) / valid.size), top_px


def range_ceiling_warning(
    result: DisparityResult, max_disp_px: float | None, fixed_in: str | None = None
) -> str | None:
    """The warning for a map that piles up at the top of its range (:func:`range_ceiling_share` at least
    :data:`CEILING_SHARE`), naming ``--max-disp``; ``None`` otherwise. ``fixed_in``: the exported file whose graph
    fixes the range (:attr:`Predictor.range_fixed_in`), which a larger ``--max-disp`` does not move."""
    share, top_px = range_ceiling_share(result, max_disp_px)
    if share < CEILING_SHARE or max_disp_px is None:
        return None
    larger = 32 * math.ceil(max_disp_px * 1.5 / 32)
    # A disparity must stay below the image's width (its match would lie left of the right view): "e.g. 512" of a
    # 320-px pair sent the user to a range OpenCV refuses and a network searches in vain.
    width_px = result.disparity_px.shape[1] / result.disparity_scale  # at the resolution max_disp_px is in
    fits = 32 * math.floor((width_px - 1) / 32)
    asked = result.settings.get("max_disp")
    searched = f"--max-disp {max_disp_px:g}"
    if isinstance(asked, (int, float)) and asked != max_disp_px:  # OpenCV's matchers round it up to 16s
        searched = f"--max-disp {asked:g}, searched as {max_disp_px:g}"
    said = f"{share * 100:.1f} % of the map sits at the top of the searched range ({top_px - 1:.0f}-{top_px:.0f} px; "
    fixed = _fixed_range(result)
    if fixed and fits > max_disp_px:
        # "search further with a larger --max-disp" sent rtnet-v5 to a refusal, and the hybrid to a larger SGBM
        # range beside the same network, which piled up there again
        return (
            f"{said}{fixed} {max_disp_px:g} px): nearer points lie beyond it and are cut off there, and --max-disp "
            f"cannot move it; give it the pair at a smaller size (half the width halves every disparity), or use a "
            f"method whose range --max-disp sets, e.g. --model sgbm --max-disp {min(larger, fits)} "
            f"(rtstereo.load('sgbm', max_disp={min(larger, fits)}) in Python)"
        )
    if fixed_in and not fixed and fits > max_disp_px:
        # "search further with a larger --max-disp" sent an exported file to a refusal: its range is in its graph
        return (
            f"{said}{searched}, fixed in {fixed_in}): nearer points lie beyond it and are cut off there; export the "
            f"network again with a larger --max-disp (rtstereo export {result.model} ... --max-disp "
            f"{min(larger, fits)})"
        )
    if fits <= max_disp_px:
        return (
            f"{said}{searched}), which already spans most of the {result.disparity_px.shape[1]}-px width: no larger "
            "--max-disp fits this image, and disparities this close to its width are more likely mismatches than "
            "points cut off by the range"
        )
    return (
        f"{said}{searched}): nearer points lie beyond it and are cut off there; search further with a larger "
        f"--max-disp (max_disp= in Python), e.g. {min(larger, fits)}"
    )


def beyond_width_warning(result: DisparityResult) -> str | None:
    """The note for a map with disparities of the image's width or more, ``None`` if it has none.

    Such a disparity puts the pixel's match left of the right view whatever its column: it is no match, but a
    network's guess (``default`` gave 24 pixels of 33-38 px on Middlebury's cones at 17x33, whose disparities there
    are under 6). The values are kept, as a network's other guesses (the left band) are.

    Examples:
        >>> disparity = np.full((2, 40), 3.0, np.float32)
        >>> disparity[0, :4] = 41.5
        >>> beyond_width_warning(DisparityResult(disparity))[:75]
        '4 pixels of the map (5.0 %) have a disparity of 40 px or more, the width of'
        >>> beyond_width_warning(DisparityResult(np.full((2, 40), 39.0, np.float32))) is None
        True
    """
    disparity = result.disparity_px
    width_px = disparity.shape[1]
    with np.errstate(invalid="ignore"):  # nan: invalid, never beyond
        beyond = int(np.count_nonzero(disparity >= width_px))
    if not beyond:
        return None
    share, verb = f"{100 * beyond / disparity.size:.1f} %", "has" if beyond == 1 else "have"
    return (
        f"{counted(beyond, 'pixel')} of the map ({share}) {verb} a disparity of {width_px} px or more, the width of "
        "the image: their match would lie outside the right view, so they are guesses, not measurements (a pair "
        "this small, or views of different scenes, give them); treat them as invalid"
    )


def _fixed_range(result: DisparityResult) -> str | None:
    """How to name the range of a map's model when ``--max-disp`` cannot change it: the hybrid's network (its
    ``max_disp`` is SGBM's), the packaged networks, and rtnet, whose weights fit one range
    (:attr:`ModelSpec.weight_settings`); ``None`` for a model whose range it sets."""
    from ..errors import ModelNotFoundError
    from ..models import get_spec

    try:
        spec = get_spec(result.model)
    except (ModelNotFoundError, InputError):  # a model of a later version, or none named
        return None
    if spec.kind == "hybrid":
        return "its network's range, fixed at"
    if spec.kind == "onnx" or "max_disp" in spec.weight_settings:
        return f"{result.model}'s range, fixed in its weights at"
    return None


def resize_valid(disparity: np.ndarray, usable: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a map to ``size_hw`` that interpolates valid pixels only.

    Invalid pixels are marked before the resize, not after: resized with the rest, a 0 beside 10 px
    became a valid 5 px. A pixel of the result is valid only where every pixel it is interpolated
    from is (``nan`` elsewhere); the values are not rescaled here.

    Args:
        disparity: ``(h, w)`` float32 map.
        usable: ``(h, w)`` bool, the valid pixels of ``disparity``.
        size_hw: the size of the result.

    Returns:
        ``(H, W)`` float32, ``nan`` where invalid.

    Examples:
        >>> d = np.array([[0.0, 10.0, 10.0]], np.float32)
        >>> resize_valid(d, d > 0, (1, 6)).round(2).tolist()
        [[nan, nan, nan, 10.0, 10.0, 10.0]]
    """
    height, width = size_hw
    known = np.where(usable, disparity, 0).astype(np.float32)
    values = cv2.resize(known, (width, height), interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(usable.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    # The weight is 1 up to rounding where every neighbour is valid; dividing by it undoes that rounding.
    return np.where(weight > 1 - 1e-4, values / np.maximum(weight, 1e-6), np.nan).astype(np.float32)


def warn_unguided(path: str) -> None:
    """Say that a guided network runs without its hints: what ``adapt --model default`` writes, the registry's
    ``rtnet-guided`` (the hybrid's network) named alone, and the hybrid's network called directly ran unguided and
    gave a poorer map without a word (``models`` and ``adapt`` say to run it inside the hybrid). A warning, not a
    refusal: the network still works unguided, and ``predict(..., hints=)`` guides it.
    """
    warn(
        f"{path} is a guided network, which alone gets none of SGBM's confident matches and runs unguided (a poorer "
        f"map): run it inside the hybrid, --model hybrid --set network={path} (rtstereo.load('hybrid', "
        f"network={path!r}) in Python), or give it hints (predict(left, right, hints=...))"
    )


class ClosedBackend(Backend):
    """What a :class:`Predictor` holds after :meth:`Predictor.close`: the description of the backend it had."""

    def __init__(self, model: str, description: dict[str, Any]):
        self.model = model
        self.description = description
        self.name = str(description.get("backend", "backend"))

    def refuse(self, model: str | None = None) -> None:
        """Raise the error a closed predictor of ``model`` (default: the backend's own) gives."""
        raise InputError(f"the {model or self.model} predictor was closed; load the model again (rtstereo.load)")

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        self.refuse()
        raise AssertionError("unreachable")

    def describe(self) -> dict[str, Any]:
        return {**self.description, "closed": True}


def hint_channel(hints: np.ndarray, resized_hw: tuple[int, int] | None, net_hw: tuple[int, ...]) -> np.ndarray:
    """A guided network's fourth input channel: ``hints`` (pixels of the input, ``nan`` where none)
    as ``(1, 1, h, w)`` at the network's input size ``net_hw``, 0 where none.

    When the pair was resized to ``resized_hw`` (memory budget, fixed-size export) the hints are
    resized too (nearest, so no hint is blended with a missing one) and scaled by the width ratio;
    padding at the bottom and right has no hints.
    """
    rows, cols = int(net_hw[0]), int(net_hw[1])
    values = np.nan_to_num(np.asarray(hints, np.float32), nan=0.0)
    if resized_hw is not None:
        scale = resized_hw[1] / values.shape[1]
        values = cv2.resize(values, (resized_hw[1], resized_hw[0]), interpolation=cv2.INTER_NEAREST) * scale
    channel = np.zeros((1, 1, rows, cols), np.float32)
    channel[0, 0, : values.shape[0], : values.shape[1]] = values[:rows, :cols]
    return channel
