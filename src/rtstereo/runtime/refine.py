"""Edge refinement: sharpen a network's depth edges against the images themselves.

A network that matches at quarter resolution blurs depth edges: a few pixels of background next to
a foreground object take the object's disparity, or something in between. The images still say where
the edge is. :func:`refine_edges` runs three steps after the network:

1. **Neighbour propagation.** Each pixel compares its own disparity with those of eight neighbours
   (2 and 4 px away, left, right, up and down) by how well the right image, warped by each, matches
   the left one around the pixel (:class:`PhotometricCost`). A neighbour's disparity wins when it
   matches better by a margin (``SWITCH_PENALTY``). Two rounds, so a value can travel 8 px.
2. **Occlusion fill.** A pixel whose match in the right image lies right of the match of a pixel to
   its right is hidden there by that nearer pixel. Such pixels take the smaller (farther) disparity
   of the nearest unhidden pixels in their row, as SGBM's hole filling does.
3. **A 5x5 median**, which removes the isolated values the first two steps leave.

numpy and OpenCV only (the ONNX Runtime path uses it without torch): 15-20 ms per 640x480 pair on
2 threads, most of it the 18 photometric costs. Every constant below was chosen on generated scenes
(two fixed sets of 24 and 48 pairs, 256x512, bad-2 after the whole pipeline), never on the real
scenes; see ``training/default/README.md``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError
from ..models.sgbm import fill_holes_rowwise
from .postprocess import BORDER_MARGIN_PX

# (dy, dx) of the neighbours whose disparities compete with a pixel's own.
NEIGHBOUR_OFFSETS = ((0, 2), (0, -2), (2, 0), (-2, 0), (0, 4), (0, -4), (4, 0), (-4, 0))
PROPAGATION_ROUNDS = 2
COST_WINDOW_PX = 3  # the per-pixel cost is summed over this square
COLOUR_TRUNCATION = 90.0  # grey levels, per colour channel
GRADIENT_WEIGHT = 5.0  # of the horizontal derivative, relative to the colour difference
GRADIENT_TRUNCATION = 6.0  # grey levels per pixel
SWITCH_PENALTY = 2.0  # mean cost (grey levels) a neighbour's disparity must win by over the window
MEDIAN_PX = 5
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# cv2.remap refuses an image or map with a side of SHRT_MAX (32767) px or more: an assertion, as a traceback.
_REMAP_MAX_SIDE_PX = 32766


def warp_rows(image: np.ndarray, map_x: np.ndarray, rows: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """``cv2.remap(image, map_x, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)`` for a warp along the
    rows (``rows[y, x] == y``), at any size: a side of 32767 px or more, which ``cv2.remap`` refuses (a panorama or
    a line-scan strip: 8x40000), is remapped in tiles (:func:`~rtstereo.rectify.remap_in_tiles`), to the same values.

    Args:
        image: uint8 ``(H, W)`` or ``(H, W, C)``.
        map_x: float32 ``(H, W)``, the column each pixel samples (finite; beyond the edges the edge is repeated).
        rows: float32 ``(H, W)``, each pixel's own row.
        dst: where to write the result, or ``None``.

    Examples:
        >>> from rtstereo.rectify import remap_in_tiles
        >>> image = np.arange(0, 160, 4, dtype=np.uint8).reshape(4, 10)
        >>> map_x = np.tile(np.arange(10, dtype=np.float32) - 2.25, (4, 1))
        >>> rows = np.repeat(np.arange(4, dtype=np.float32)[:, None], 10, axis=1)
        >>> opencv = cv2.remap(image, map_x, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        >>> tiled = remap_in_tiles(image, map_x, rows, tile_px=3)
        >>> bool((tiled == opencv).all()), warp_rows(image, map_x, rows)[0].tolist()
        (True, [0, 0, 0, 3, 7, 11, 15, 19, 23, 27])
    """
    if max(image.shape[:2]) <= _REMAP_MAX_SIDE_PX:
        return cv2.remap(image, map_x, rows, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)
    from ..rectify import remap_in_tiles

    out = remap_in_tiles(image, map_x, rows)
    if dst is None:
        return out
    dst[...] = out
    return dst


class PhotometricCost:
    """How badly the right image, warped by a disparity map, matches the left one, per pixel.

    The cost of a pixel is the truncated absolute colour difference (channels weighted as in
    luma), plus ``GRADIENT_WEIGHT`` times the truncated absolute difference of the horizontal
    derivatives (which ignores a brightness offset between the cameras), summed over a
    ``COST_WINDOW_PX`` square. The right image is sampled with linear interpolation, so sub-pixel
    disparities are compared exactly.

    Everything runs on 8-bit images: the cost is computed 18 times per pair, and its time is
    memory traffic, four times less than in floats. The derivative is stored in half grey levels
    per pixel, clipped to +-63.5, so the truncation (6 grey levels per pixel) is 12 of its units.

    Args:
        left: uint8 RGB ``(H, W, 3)``.
        right: uint8 RGB, same shape.
    """

    _DERIVATIVE_UNITS = 2.0  # stored units per grey level per pixel
    _TRUNCATION = (COLOUR_TRUNCATION,) * 3 + (GRADIENT_TRUNCATION * _DERIVATIVE_UNITS,)

    def __init__(self, left: np.ndarray, right: np.ndarray):
        if left.shape != right.shape or left.ndim != 3 or left.shape[2] != 3:
            raise InputError(f"expected two RGB images of one shape, got {left.shape} and {right.shape}")
        self.left = self._features(left)
        self.right = self._features(right)
        height, width = left.shape[:2]
        self.cols = np.arange(width, dtype=np.float32)[None, :]
        self.rows = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
        # Buffers reused by every call: fresh arrays cost more in page faults than the arithmetic.
        self._map_x = np.empty((height, width), np.float32)
        self._difference = np.empty_like(self.left)
        self._colour = np.empty((height, width), np.uint8)
        self._derivative = np.empty((height, width), np.uint8)
        self._pixel_cost = np.empty((height, width), np.float32)
        self._cost = np.empty((height, width), np.float32)

    @classmethod
    def _features(cls, image: np.ndarray) -> np.ndarray:
        """uint8 ``(H, W, 4)``: R, G, B and the horizontal derivative (offset by 128)."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        # Sobel / 4 is the derivative in grey levels per pixel, smoothed across 3 rows; 8-bit output
        # rounds and saturates.
        derivative = cv2.Sobel(grey, cv2.CV_8U, 1, 0, ksize=3, scale=cls._DERIVATIVE_UNITS / 4, delta=128.0)
        # The alpha channel written over: a tenth of the time of merging the split channels (at 640x480).
        features = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
        cv2.insertChannel(derivative, features, 3)
        return features

    def __call__(self, disparity: np.ndarray, finite: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """float32 ``(H, W)`` cost of ``disparity`` (meaningless where it is nan).

        ``finite=True`` skips the pass that makes ``nan`` disparities harmless, for callers that know
        there are none. Without ``out`` (a float32 ``(H, W)`` array to write it into) the array returned
        is overwritten by the next call: copy it, or give ``out``, to keep it.
        """
        map_x = np.subtract(self.cols, disparity, out=self._map_x)
        if not finite:  # np.nan_to_num(nan=-1.0)'s result in two passes, a tenth of its time
            np.clip(map_x, -_FLOAT32_MAX, _FLOAT32_MAX, out=map_x)
            cv2.patchNaNs(map_x, -1.0)
        difference = warp_rows(self.right, map_x, self.rows, dst=self._difference)
        cv2.absdiff(self.left, difference, dst=difference)
        cv2.min(difference, self._TRUNCATION, dst=difference)
        cv2.cvtColor(difference, cv2.COLOR_RGBA2GRAY, dst=self._colour)  # ignores the 4th channel
        cv2.extractChannel(difference, 3, dst=self._derivative)
        weight = GRADIENT_WEIGHT / self._DERIVATIVE_UNITS
        cv2.addWeighted(self._colour, 1.0, self._derivative, weight, 0.0, dst=self._pixel_cost, dtype=cv2.CV_32F)
        window = (COST_WINDOW_PX, COST_WINDOW_PX)
        return cv2.boxFilter(self._pixel_cost, -1, window, dst=self._cost if out is None else out, normalize=False)


def shift_into(out: np.ndarray, values: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Write ``values`` read ``(dy, dx)`` away into ``out``: ``out[y, x] = values[y + dy, x + dx]``.

    Reads beyond the edge repeat the edge (a shift as large as the map reads the edge throughout).

    Examples:
        >>> row = np.array([[1.0, 2.0, 3.0]])
        >>> shift_into(np.empty_like(row), row, 0, 1).tolist(), shift_into(np.empty_like(row), row, 0, -2).tolist()
        ([[2.0, 3.0, 3.0]], [[1.0, 1.0, 1.0]])
    """
    height, width = values.shape
    dy = max(-(height - 1), min(dy, height - 1))  # farther reads the same edge row
    dx = max(-(width - 1), min(dx, width - 1))
    # columns: the part read inside the map, then the repeated edge column
    if dx >= 0:
        inside, source, edge, edge_source = slice(0, width - dx), slice(dx, width), slice(width - dx, width), width - 1
    else:
        inside, source, edge, edge_source = slice(-dx, width), slice(0, width + dx), slice(0, -dx), 0
    # rows likewise, on the already shifted columns
    if dy >= 0:
        rows, row_source, row_edge = slice(0, height - dy), slice(dy, height), slice(height - dy, height)
        edge_row = height - dy - 1
    else:
        rows, row_source, row_edge = slice(-dy, height), slice(0, height + dy), slice(0, -dy)
        edge_row = -dy
    out[rows, inside] = values[row_source, source]
    out[rows, edge] = values[row_source, edge_source : edge_source + 1]
    out[row_edge] = out[edge_row]
    return out


def propagate_neighbours(cost: PhotometricCost, disparity: np.ndarray, rounds: int = PROPAGATION_ROUNDS) -> np.ndarray:
    """Step 1 of :func:`refine_edges`: let each pixel take a neighbour's disparity that matches better.

    A neighbour's value is only a candidate where its match lies at least ``BORDER_MARGIN_PX``
    inside the right image. Pixels that are ``nan`` stay ``nan``.
    """
    d = np.asarray(disparity, dtype=np.float32)
    invalid = ~np.isfinite(d)
    finite = not invalid.any()
    # A candidate must match at least the margin inside the right image: candidate <= x - margin.
    limit = np.ascontiguousarray(np.broadcast_to(cost.cols - BORDER_MARGIN_PX, d.shape))
    penalty = SWITCH_PENALTY * COST_WINDOW_PX**2  # the cost is a window sum
    candidate = np.empty_like(d)
    # OpenCV's compare and masked copy: numpy's boolean ``where`` is several times slower here.
    wins = np.empty(d.shape, np.uint8)
    in_image = np.empty(d.shape, np.uint8)
    for _ in range(rounds):
        best = d.copy()
        # The first neighbour to win must beat the pixel's own cost by the penalty.
        bar = np.subtract(cost(d, finite), penalty)
        for dy, dx in NEIGHBOUR_OFFSETS:
            shift_into(candidate, d, dy, dx)
            candidate_cost = cost(candidate, finite)
            cv2.compare(candidate_cost, bar, cv2.CMP_LT, dst=wins)
            cv2.compare(candidate, limit, cv2.CMP_LE, dst=in_image)  # nan compares False
            cv2.bitwise_and(wins, in_image, dst=wins)
            cv2.copyTo(candidate, wins, best)
            cv2.copyTo(candidate_cost, wins, bar)  # later neighbours need only beat this one
        best[invalid] = np.nan  # an invalid pixel neither takes a value nor passes one on
        d = best
    return d


def occluded(disparity: np.ndarray) -> np.ndarray:
    """Bool ``(H, W)``: pixels whose match is hidden in the right view by a pixel to their right.

    Pixel ``x`` matches ``x - d(x)``; if some ``x' > x`` has ``x' - d(x') < x - d(x)``, the nearer
    surface at ``x'`` covers it there. ``nan`` pixels are not occluded.

    Examples:
        >>> occluded(np.array([[2.0, 2.0, 4.0, 4.0]], np.float32)).tolist()  # 1 - 2 > 2 - 4
        [[False, True, False, False]]
    """
    d = np.asarray(disparity, dtype=np.float32)
    width = d.shape[1]
    valid = np.isfinite(d)
    match = np.where(valid, np.arange(width, dtype=np.float32) - d, np.inf)
    nearest_right = np.minimum.accumulate(match[:, ::-1], axis=1)[:, ::-1]  # min over x' >= x
    hidden = np.zeros_like(valid)
    np.greater(match[:, :-1], nearest_right[:, 1:], out=hidden[:, :-1])
    return hidden & valid


def fill_occlusions(disparity: np.ndarray) -> np.ndarray:
    """Step 2 of :func:`refine_edges`: occluded pixels take the farther of their row neighbours.

    The neighbours are the nearest valid, unoccluded pixels to the left and to the right; a pixel
    with neither becomes ``nan``. ``nan`` pixels of the input stay ``nan``.
    """
    d = np.asarray(disparity, dtype=np.float32)
    hidden = occluded(d)
    filled = fill_holes_rowwise(np.where(hidden, np.nan, d))
    filled[~np.isfinite(d)] = np.nan  # invalid pixels were holes too: keep them invalid
    return filled


def median_valid(disparity: np.ndarray, size: int = MEDIAN_PX) -> np.ndarray:
    """Step 3 of :func:`refine_edges`: a ``size`` x ``size`` median; pixels near a ``nan`` are kept."""
    d = np.asarray(disparity, dtype=np.float32)
    invalid = ~np.isfinite(d)
    if not invalid.any():
        return cv2.medianBlur(d, size)
    smoothed = cv2.medianBlur(np.where(invalid, 0.0, d).astype(np.float32), size)
    near_invalid = cv2.dilate(invalid.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    return np.where(near_invalid, d, smoothed).astype(np.float32)


def refine_edges(
    left: np.ndarray, right: np.ndarray, disparity_px: np.ndarray, cost: PhotometricCost | None = None
) -> np.ndarray:
    """Sharpen the depth edges of a disparity map against its image pair (the three steps above).

    Args:
        left: uint8 RGB ``(H, W, 3)``, the view the disparity belongs to.
        right: uint8 RGB, same shape.
        disparity_px: float ``(H, W)`` disparity of the left view, ``nan`` where invalid.
        cost: the pair's :class:`PhotometricCost`, if already made (the hybrid uses it again after).

    Returns:
        A float32 ``(H, W)`` map, ``nan`` where the input is.
    """
    d = np.asarray(disparity_px, dtype=np.float32)
    if d.shape != left.shape[:2]:
        raise InputError(f"disparity {d.shape} and images {left.shape[:2]} differ in size")
    if cost is not None and cost.left.shape[:2] != d.shape:
        raise InputError(f"the photometric cost is of {cost.left.shape[:2]} images, the disparity {d.shape}")
    d = propagate_neighbours(PhotometricCost(left, right) if cost is None else cost, d)
    return median_valid(fill_occlusions(d))
