"""Choosing, pixel by pixel, how the hybrid fills SGBM's holes: the network's value or SGBM's row-wise fill.

Where SGBM is not confident the hybrid has two answers: its network's, and SGBM's row-wise fill (the
farther of the nearest confident values to the left and right, :func:`~rtstereo.models.sgbm.fill_holes_rowwise`).
Neither is always better. Comparing how well each matches the right image (the ``"cost"`` rule) says
little where the holes are, in weak texture and in occlusions, where any disparity matches about as
well: on the 9 design scenes of the selection set it chose no better than taking the network
everywhere.

The ``"learned"`` rule is a small perceptron (:class:`HoleSelector`) over 16 local measures of each hole
pixel (:data:`FEATURE_NAMES`): the two photometric costs, how far the two answers are apart and from
the confident values at the ends of the hole, the hole's length, the texture, the network's local
spread and the distance from the left border. It was fit on rendered scenes only (exact ground truth),
to pick, where exactly one of the two is within 2 px, that one; the fit is
:mod:`rtstereo.train.hole_selector` and its record ``training/hole_selector/``. Its weights ship in
``rtstereo/weights/hole-selector.json`` (numpy at run time, no torch).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path
from ..models.sgbm import fill_holes_rowwise, hole_runs
from .providers import default_threads
from .refine import PhotometricCost

# The square over which costs, texture and the network's spread are averaged (pixels). Chosen among 3,
# 9 and 21 for the cost rule on the selection set (17.15, 16.98, 16.86 % mean bad-2: the middle one).
CHOICE_WINDOW_PX = 9
HOLE_CHOICES = ("learned", "cost")

FEATURE_NAMES = (
    "cost_contrast",  # (fill's cost - network's) / (sum + 1), costs averaged over the window
    "log_network_cost",
    "log_fill_cost",
    "fill_minus_network",  # px, clipped to +-32, / 8
    "log_abs_difference",
    "log_texture",  # mean |horizontal derivative| of the left image, grey levels per px
    "log_nearest_confident",  # px along the row to the nearer end of the hole
    "log_hole_length",  # px between the confident pixels at both ends
    "log_end_gap",  # px between the two confident values at the ends
    "log_network_below_ends",  # px the network is below the lower end value (0 if not)
    "log_network_above_ends",  # px above the higher one
    "log_network_spread",  # standard deviation of the network's map over the window, px
    "pixel_cost_contrast",  # as cost_contrast, unaveraged (the cost's own 5 px window)
    "log_network_off_line",  # px between the network and the line joining the end values
    "log_fill_off_line",
    "left_band",  # x / searched range, at most 1: where the right camera may not see
)

SELECTOR_FILE = Path(__file__).resolve().parent.parent / "weights" / "hole-selector.json"


@dataclass(frozen=True)
class Candidates:
    """The two answers in SGBM's holes and what the measures are made of.

    Attributes:
        holes: bool ``(H, W)``, where SGBM is not confident.
        points: ``(N,)`` flat positions (``y * W + x``) of the hole pixels, in row-major order.
        network: float32 ``(H, W)``, the network's map.
        fill: float32 ``(H, W)``, SGBM's row-wise fill (the network's value in a row without a confident pixel).
        features: float32 ``(N, len(FEATURE_NAMES))`` measures of the hole pixels, or None when not kept.
        logits: float32 ``(N,)`` a selector's log-odds that the fill is right, or None without a selector.
        maps: the whole-image float32 maps the measures were taken from (``"network"`` with 0 for
            ``nan``, ``"network_pixel"`` and ``"network_cost"`` its photometric cost and that averaged
            over the window, ``"mean"`` and ``"mean_square"`` of the network over the window, ...); the
            check of the confident pixels (:mod:`.confident_check`) reuses them.
    """

    holes: np.ndarray
    points: np.ndarray
    network: np.ndarray
    fill: np.ndarray
    features: np.ndarray | None
    logits: np.ndarray | None
    maps: dict | None = None


def row_ends(
    confident: np.ndarray, ys: np.ndarray | None = None, xs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The nearest confident value to the left and to the right of each pixel in its row, and their
    distances (px; the image width where there is none, with the value ``nan``): at every pixel
    (``(H, W)`` maps), or at the points ``(ys, xs)`` only (``(N,)`` arrays).

    Examples:
        >>> left, right, to_left, to_right = row_ends(np.array([[np.nan, 3.0, np.nan, 5.0]], np.float32))
        >>> left.tolist(), right.tolist(), to_left.tolist(), to_right.tolist()
        ([[nan, 3.0, 3.0, 5.0]], [[3.0, 3.0, 5.0, 5.0]], [[4.0, 0.0, 1.0, 0.0]], [[1.0, 0.0, 1.0, 0.0]])
    """
    holes = ~np.isfinite(confident)
    ends = np.empty((4, *confident.shape), np.float32)  # a confident pixel is its own end on both sides
    ends[:2] = confident
    ends[2:] = 0.0
    ends.reshape(4, -1)[:, holes.reshape(-1)] = _hole_ends(confident, *hole_runs(holes))[2]
    if ys is None or xs is None:
        return tuple(ends)
    return tuple(values[ys, xs] for values in ends)


def _hole_ends(
    confident: np.ndarray, rows: np.ndarray, first: np.ndarray, stop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels of the runs of holes ``(rows, first, stop)`` (:func:`~rtstereo.models.sgbm.hole_runs` of
    ``confident``'s holes): their rows and columns (row-major) and float32 ``(4, N)`` ends (see
    :func:`row_ends`), gathered once per run and spread over its pixels."""
    width = confident.shape[1]
    lengths = stop - first
    offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # within the run
    ys, xs = np.repeat(rows, lengths), np.repeat(first, lengths) + offset
    has_left, has_right = first > 0, stop < width
    flat, row_start = confident.reshape(-1), rows * width
    nan = np.float32(np.nan)
    ends = np.empty((4, len(xs)), np.float32)
    ends[0] = np.repeat(np.where(has_left, flat.take(row_start + np.maximum(first - 1, 0)), nan), lengths)
    ends[1] = np.repeat(np.where(has_right, flat.take(row_start + np.minimum(stop, width - 1)), nan), lengths)
    ends[2] = np.where(np.repeat(has_left, lengths), offset + 1, width)
    ends[3] = np.where(np.repeat(has_right, lengths), np.repeat(lengths, lengths) - offset, width)
    return ys, xs, ends


@dataclass(frozen=True)
class HolePreparation:
    """What the measures need of the images and of SGBM's map alone (:func:`prepare_holes`): it can be
    made while the network runs.

    Attributes:
        confident: the confident map it was made from.
        holes, ys, xs, points: the hole pixels (bool map; rows, columns and flat positions, row-major).
        ends: float32 ``(4, N)``: the confident values ending each hole pixel's run to the left and right,
            and the distances to them (see :func:`row_ends`).
        fill: float32 ``(H, W)``: SGBM's row-wise fill, ``nan`` in rows without a confident pixel.
        cost: the pair's :class:`~rtstereo.runtime.refine.PhotometricCost`.
        grey: uint8 ``(H, W)``: the left image's grey levels.
        derivative: float32 ``(H, W)``: their horizontal derivative (grey levels per px: Sobel / 4).
        fill_pixel, fill_cost: the fill's cost, and its average over the window.
        texture: mean absolute horizontal derivative of the left image over the window.
        window_px: that window.
    """

    confident: np.ndarray
    holes: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    points: np.ndarray
    ends: np.ndarray
    fill: np.ndarray
    cost: PhotometricCost
    grey: np.ndarray
    derivative: np.ndarray
    fill_pixel: np.ndarray
    fill_cost: np.ndarray
    texture: np.ndarray
    window_px: int


def prepare_holes(
    left: np.ndarray,
    right: np.ndarray,
    confident: np.ndarray,
    window_px: int = CHOICE_WINDOW_PX,
    cost: PhotometricCost | None = None,
) -> HolePreparation:
    """The part of :func:`hole_candidates` that does not need the network's map (``cost``: the pair's
    :class:`~rtstereo.runtime.refine.PhotometricCost`, if already made)."""
    width = confident.shape[1]
    holes = ~np.isfinite(confident)
    ys, xs, ends = _hole_ends(confident, *hole_runs(holes))  # left and right end values, distances to them
    points = ys * np.intp(width) + xs  # 1-D takes are several times faster than 2-D indexing
    fill = np.array(confident, dtype=np.float32, copy=True)  # = fill_holes_rowwise(confident)
    fill.reshape(-1).put(points, np.fmin(ends[0], ends[1]))
    cost = PhotometricCost(left, right) if cost is None else cost
    fill_pixel = cost(fill, out=np.empty_like(fill))  # the cost's own buffer is reused by the next call
    window = (window_px, window_px)
    grey = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY)
    derivative = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, scale=0.25)
    return HolePreparation(
        confident=confident,
        holes=holes,
        ys=ys,
        xs=xs,
        points=points,
        ends=ends,
        fill=fill,
        cost=cost,
        grey=grey,
        derivative=derivative,
        fill_pixel=fill_pixel,
        fill_cost=cv2.blur(fill_pixel, window),
        texture=cv2.blur(np.abs(derivative), window),
        window_px=window_px,
    )


def hole_candidates(
    left: np.ndarray,
    right: np.ndarray,
    confident: np.ndarray,
    network: np.ndarray,
    search_px: float,
    window_px: int = CHOICE_WINDOW_PX,
    selector: HoleSelector | None = None,
    keep_features: bool = True,
    prepared: HolePreparation | None = None,
    threads: int | None = None,
) -> Candidates:
    """The network's map, SGBM's row-wise fill and the measures of every hole pixel (:data:`FEATURE_NAMES`),
    with ``selector``'s log-odds of them if one is given.

    Args:
        left, right: uint8 RGB ``(H, W, 3)``.
        confident: float32 ``(H, W)``, ``nan`` where SGBM is not confident.
        network: float32 ``(H, W)``, the network's map (``nan`` where invalid).
        search_px: SGBM's searched range (scales the left-band measure).
        window_px: averaging window of the costs, the texture and the network's spread.
        selector: scores the measures as they are made (they need not be kept then).
        keep_features: return the measures (False: only the log-odds; needs a selector).
        prepared: :func:`prepare_holes` of the same images, map and window, if already made.
        threads: the most threads its measures may run on (:func:`part_threads`).
    """
    if not keep_features and selector is None:
        raise ValueError("keep_features=False needs a selector: nothing would come out")
    if prepared is None:
        prepared = prepare_holes(left, right, confident, window_px)
    elif prepared.confident is not confident or prepared.window_px != window_px:
        raise ValueError("prepared: made from another confident map or window")
    xs, points, ends = prepared.xs, prepared.points, prepared.ends
    window = (window_px, window_px)
    network = np.ascontiguousarray(network, dtype=np.float32)
    network_ok = np.where(np.isfinite(network), network, np.float32(0.0))
    fill, fill_pixel, fill_cost = prepared.fill, prepared.fill_pixel, prepared.fill_cost
    at_holes = fill.reshape(-1).take(points)
    unfilled = ~np.isfinite(at_holes)
    if unfilled.any():  # rows without a confident pixel take the network's value as their "fill"
        fill = fill.copy()
        fill.reshape(-1).put(points[unfilled], network.reshape(-1).take(points[unfilled]))
        fill_pixel = prepared.cost(fill, out=np.empty_like(fill))
        fill_cost = cv2.blur(fill_pixel, window)
    network_pixel = prepared.cost(network, out=np.empty_like(network))
    maps = {
        "network": network_ok,
        "fill": fill,
        "network_cost": cv2.blur(network_pixel, window),
        "fill_cost": fill_cost,
        "network_pixel": network_pixel,
        "fill_pixel": fill_pixel,
        "texture": prepared.texture,
        "mean": cv2.blur(network_ok, window),
        "mean_square": cv2.blur(network_ok * network_ok, window),
    }
    flat_maps = {key: value.reshape(-1) for key, value in maps.items()}
    band = np.float32(max(float(search_px), 1.0))
    features, logits = measured_in_parts(
        flat_maps,
        points,
        len(FEATURE_NAMES),
        lambda at, part: _measures(at, ends[:, part], xs[part], band),
        selector,
        keep_features,
        threads,
    )
    return Candidates(
        holes=prepared.holes, points=points, network=network, fill=fill, features=features, logits=logits, maps=maps
    )


PART_POINTS = 16384  # hole pixels per part: the temporaries of a part stay in the CPU's cache
PART_THREADS = 2


def part_threads(threads: int | None = None) -> int:
    """The threads the parts run on: :data:`PART_THREADS`, but no more than ``threads`` (else ``$RTSTEREO_THREADS``,
    which ``--threads`` sets): ``--threads 1`` ran them on two.

    Examples:
        >>> part_threads(1), part_threads(8)
        (1, 2)
    """
    if threads is None:
        threads = default_threads()
    return PART_THREADS if threads is None else max(1, min(PART_THREADS, int(threads)))


def measured_in_parts(
    flat_maps: dict[str, np.ndarray],
    points: np.ndarray,
    feature_count: int,
    measures: Callable[[dict[str, np.ndarray], slice], np.ndarray],
    selector: HoleSelector | None,
    keep_features: bool,
    threads: int | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The measures of ``points`` and ``selector``'s log-odds of them, made part by part (:func:`_in_parts`) from
    the maps' values at them.

    Args:
        flat_maps: the maps by name, flattened.
        points: the flat indices of the pixels measured, ``(n,)``.
        feature_count: how many measures ``measures`` makes of each point.
        measures: (the maps' values at a part's points, by name; the part) -> their measures, float32 ``(F, n)``.
        selector: scores the measures as they are made (``None``: no log-odds).
        keep_features: return the measures.
        threads: as for :func:`part_threads`.

    Returns:
        ``(features, logits)``: float32 ``(n, F)`` (``None`` unless ``keep_features``) and ``(n,)`` (``None``
        without a selector).
    """
    count = len(points)
    features = np.empty((count, feature_count), np.float32) if keep_features else None
    logits = np.empty(count, np.float32) if selector is not None else None

    def measure(part: slice) -> None:
        at = {key: value.take(points[part]) for key, value in flat_maps.items()}
        columns = measures(at, part)
        if features is not None:
            features[part] = columns.T
        if logits is not None:
            logits[part] = selector.column_logits(columns)

    _in_parts(measure, count, threads)
    return features, logits


def _in_parts(work, count: int, threads: int | None = None) -> None:
    """``work(part)`` for consecutive slices of ``range(count)``, on :func:`part_threads` threads (numpy releases
    the GIL).

    The threads last for the call only (starting them costs about 0.1 ms): no thread outlives its work.
    """
    parts = [slice(start, min(start + PART_POINTS, count)) for start in range(0, count, PART_POINTS)]
    workers = part_threads(threads) if len(parts) > 1 else 1
    if workers < 2:
        for part in parts:
            work(part)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rtstereo-holes") as pool:
        for done in pool.map(work, parts):
            del done


def _measures(at: dict[str, np.ndarray], ends: np.ndarray, xs: np.ndarray, band: np.float32) -> np.ndarray:
    """The :data:`FEATURE_NAMES` of some hole pixels, ``(F, n)``, from their map values ``at`` and row ends."""
    ends_left, ends_right, dl, dr = ends
    net, fil = at["network"], at["fill"]
    fil = np.where(np.isfinite(fil), fil, net)  # nan: no end and no network value (the network's 0 stands in)
    cn, cf, pn, pf = at["network_cost"], at["fill_cost"], at["network_pixel"], at["fill_pixel"]
    mean = at["mean"]
    spread = np.sqrt(np.clip(at["mean_square"] - mean * mean, 0.0, None))
    lower, upper = np.fmin(ends_left, ends_right), np.fmax(ends_left, ends_right)
    lower, upper = np.where(np.isfinite(lower), lower, net), np.where(np.isfinite(upper), upper, net)
    # The straight line between the end values (the one end's value where there is only one).
    a = np.where(np.isfinite(ends_left), ends_left, ends_right)
    b = np.where(np.isfinite(ends_right), ends_right, ends_left)
    line = np.where(np.isfinite(a), (a * dr + b * dl) / np.maximum(dl + dr, 1.0), net)
    difference = fil - net
    columns = (
        contrast(cf, cn),
        np.log1p(cn),
        np.log1p(cf),
        np.clip(difference, -32.0, 32.0) / 8.0,
        np.log1p(np.abs(difference)),
        np.log1p(at["texture"]),
        np.log1p(np.minimum(dl, dr)),
        np.log1p(dl + dr),
        np.log1p(upper - lower),
        np.log1p(np.clip(lower - net, 0.0, None)),
        np.log1p(np.clip(net - upper, 0.0, None)),
        np.log1p(spread),
        contrast(pf, pn),
        np.log1p(np.abs(net - line)),
        np.log1p(np.abs(fil - line)),
        np.minimum(xs / band, np.float32(1.0)),
    )
    return as_rows(columns, len(net))


def contrast(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``(first - second) / (first + second + 1)`` of two non-negative costs: in (-1, 1), < 0 where the
    first is lower."""
    return (first - second) / (first + second + 1.0)


def as_rows(columns: tuple[np.ndarray, ...], count: int) -> np.ndarray:
    """Measures (each ``(count,)``) as one float32 ``(len(columns), count)`` array."""
    out = np.empty((len(columns), count), np.float32)
    for index, column in enumerate(columns):
        out[index] = column
    return out


class HoleSelector:
    """A perceptron with one hidden layer of ``tanh`` units: the probability that SGBM's row-wise fill,
    not the network, is the right answer at a hole pixel.

    Args:
        weights: ``"hidden_weight"`` ``(H, F)``, ``"hidden_bias"`` ``(H,)``, ``"output_weight"`` ``(H,)``,
            ``"output_bias"`` (a number), ``"features"`` (the names, :attr:`FEATURES`), arrays or lists.
    """

    FEATURES = FEATURE_NAMES  # the measures it takes, in order
    WHAT = "hole selector"

    def __init__(self, weights: dict):
        names = tuple(weights.get("features", ()))
        if names != self.FEATURES:
            raise InputError(f"{self.WHAT}: its features {names} are not this version's {self.FEATURES}")
        self.hidden_weight = np.asarray(weights["hidden_weight"], dtype=np.float32)
        self.hidden_bias = np.asarray(weights["hidden_bias"], dtype=np.float32)
        self.output_weight = np.asarray(weights["output_weight"], dtype=np.float32)
        self.output_bias = np.float32(weights["output_bias"])
        hidden = self.hidden_bias.shape[0]
        if self.hidden_weight.shape != (hidden, len(self.FEATURES)) or self.output_weight.shape != (hidden,):
            raise InputError(
                f"{self.WHAT}: weights of shapes {self.hidden_weight.shape}, {self.hidden_bias.shape}, "
                f"{self.output_weight.shape} do not make one hidden layer over {len(self.FEATURES)} features"
            )
        self.meta = {key: value for key, value in weights.items() if key not in self._ARRAYS}

    _ARRAYS = ("hidden_weight", "hidden_bias", "output_weight", "output_bias", "features")

    PACKAGED_FILE = SELECTOR_FILE

    @classmethod
    def packaged(cls) -> HoleSelector:
        """The selector of this class shipped with the package (:attr:`PACKAGED_FILE`, read once)."""
        with _PACKAGED_LOCK:
            if cls not in _PACKAGED:
                _PACKAGED[cls] = cls.load()
            return _PACKAGED[cls]

    @classmethod
    def load(cls, path: str | Path | None = None) -> HoleSelector:
        """Read a selector written by :meth:`save` (by default the packaged one)."""
        path = cls.PACKAGED_FILE if path is None else path
        try:
            weights = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{cls.WHAT} {path}: cannot read it ({error})") from None
        if not isinstance(weights, dict) or not all(key in weights for key in cls._ARRAYS):
            raise InputError(f"{cls.WHAT} {path}: expected a JSON object with {', '.join(cls._ARRAYS)}")
        return cls(weights)

    def save(self, path: str | Path) -> None:
        """Write the weights (and ``meta``) as JSON, atomically (a temporary name, then a rename).

        Raises:
            OutputError: the file cannot be written (nothing is left under its name).
        """
        document = {
            **self.meta,
            "features": list(self.FEATURES),
            "hidden_weight": self.hidden_weight.tolist(),
            "hidden_bias": self.hidden_bias.tolist(),
            "output_weight": self.output_weight.tolist(),
            "output_bias": float(self.output_bias),
        }
        with atomic_path(path, f"the {self.WHAT}") as partial:
            partial.write_text(json.dumps(document, indent=1) + "\n")

    def logits(self, features: np.ndarray) -> np.ndarray:
        """``(N,)`` log-odds (here: that the fill is right), from ``(N, F)`` features."""
        return self.column_logits(np.ascontiguousarray(np.asarray(features, dtype=np.float32).T))

    def column_logits(self, columns: np.ndarray) -> np.ndarray:
        """``(N,)`` log-odds from features laid out ``(F, N)`` (contiguous float32)."""
        # numpy's einsum without ``optimize`` loops on the calling thread, no BLAS: cv2.gemm's OpenBLAS ran products
        # of more than ~1000 columns on a thread per core whatever --threads said, and its thread count changed the
        # sums. The maps stayed the same byte for byte (example pair; Middlebury cones, teddy, venus; KITTI 000070);
        # 16384 columns take 0.8 ms instead of 0.3, within the noise of a pair's time (cones at 640x533, 1 thread).
        hidden = np.einsum("hf,fn->hn", self.hidden_weight, columns)  # (H, N)
        hidden += self.hidden_bias[:, None]
        np.tanh(hidden, out=hidden)
        return np.einsum("h,hn->n", self.output_weight, hidden) + self.output_bias


_PACKAGED: dict[type, HoleSelector] = {}  # HoleSelector.packaged(): one per selector class
_PACKAGED_LOCK = threading.Lock()


def packaged_selector() -> HoleSelector:
    """The hole selector shipped with the package (read once)."""
    return HoleSelector.packaged()


def choose_in_holes(
    left: np.ndarray,
    right: np.ndarray,
    confident: np.ndarray,
    network: np.ndarray,
    by: str = "learned",
    search_px: float = 192.0,
    window_px: int = CHOICE_WINDOW_PX,
    selector: HoleSelector | None = None,
    prepared: HolePreparation | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """The fused map: ``confident`` where finite; elsewhere the network's value or SGBM's row-wise fill.

    ``by="learned"``: whichever :class:`HoleSelector` (the packaged one unless ``selector`` is given)
    finds more likely right; ``by="cost"``: whichever has the lower photometric cost averaged over a
    ``window_px`` square. A row without a confident pixel has no fill: the network answers there; where
    the network's value is ``nan`` (invalid), the fill is taken.

    Args:
        left, right: uint8 RGB ``(H, W, 3)``.
        confident: float32 ``(H, W)``, ``nan`` where SGBM is not confident.
        network: float32 ``(H, W)``, the network's map (``nan`` where invalid).
        by: ``"learned"`` or ``"cost"``.
        search_px: SGBM's searched range (a measure of the learned rule).
        prepared: :func:`prepare_holes` of the same images and map, made beforehand (learned rule).
        threads: the most threads the learned rule's measures may run on (:func:`part_threads`).

    Returns:
        float32 ``(H, W)``.
    """
    if by not in HOLE_CHOICES:
        raise InputError(f"hole choice: expected one of {', '.join(HOLE_CHOICES)}, got {by!r}")
    network = np.asarray(network, dtype=np.float32)
    if by == "cost":
        holes = ~np.isfinite(confident)
        fill = fill_holes_rowwise(confident)
        fill = np.where(np.isfinite(fill), fill, network)
        cost = PhotometricCost(left, right)
        window = (window_px, window_px)
        network_cost = cv2.blur(cost(network), window)  # blur writes a new array: the cost buffer is reused
        fill_cost = cv2.blur(cost(fill), window)
        take_fill = (fill_cost < network_cost) | ~np.isfinite(network)
        chosen = np.where(take_fill, fill, network)
        return np.where(holes, chosen, confident).astype(np.float32)
    return learned_fusion(left, right, confident, network, search_px, window_px, selector, prepared, threads)[0]


def learned_fusion(
    left: np.ndarray,
    right: np.ndarray,
    confident: np.ndarray,
    network: np.ndarray,
    search_px: float = 192.0,
    window_px: int = CHOICE_WINDOW_PX,
    selector: HoleSelector | None = None,
    prepared: HolePreparation | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, Candidates]:
    """:func:`choose_in_holes` by the learned rule, and the :class:`Candidates` it chose from (their
    ``maps`` serve the check of the confident pixels, :mod:`.confident_check`)."""
    network = np.asarray(network, dtype=np.float32)
    candidates = hole_candidates(
        left,
        right,
        confident,
        network,
        search_px,
        window_px,
        selector=selector or packaged_selector(),
        keep_features=False,
        prepared=prepared,
        threads=threads,
    )
    points = candidates.points
    at_network = network.reshape(-1).take(points)
    take_fill = (candidates.logits > 0) | ~np.isfinite(at_network)
    fused = np.array(confident, dtype=np.float32, copy=True)
    fused.reshape(-1).put(points, np.where(take_fill, candidates.fill.reshape(-1).take(points), at_network))
    return fused, candidates
