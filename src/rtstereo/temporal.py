"""A temporal filter for disparity from a static camera, and the flicker it is measured by.

Per-frame stereo is noisy from frame to frame even when nothing moves: sensor noise and compression
move matches by fractions of a pixel, and weak regions jump to a wrong match for a frame or two. For
a camera that does not move, an exponential moving average per pixel removes the small noise, and a
change larger than ``reset_px`` is only believed once it persists (then the pixel restarts from the
new value, so moving objects are not smeared); one-frame jumps, most of the measured flicker, never
show.

flicker = mean ``|d_t - d_{t-1}|`` over the pixels valid in both frames, in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .errors import InputError, require_number, require_whole


def flicker_px(previous_px: np.ndarray, current_px: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of disparity over pixels valid in both frames.

    Args:
        previous_px: float ``(H, W)`` disparity of frame ``t-1``, ``nan`` = invalid.
        current_px: float ``(H, W)`` disparity of frame ``t``.

    Returns:
        Pixels; ``nan`` when no pixel is valid in both.

    Raises:
        InputError: a map that is not numbers, or two maps of different shapes.

    Examples:
        >>> flicker_px(np.array([[1.0, np.nan]]), np.array([[1.5, 2.0]]))
        0.5
    """
    previous_px, current_px = _as_map("previous_px", previous_px), _as_map("current_px", current_px)
    if previous_px.shape != current_px.shape:
        raise InputError(
            f"flicker: the two disparity maps must have one shape, got {previous_px.shape} and {current_px.shape}"
        )
    both = np.isfinite(previous_px) & np.isfinite(current_px) & (previous_px > 0) & (current_px > 0)
    if not both.any():
        return float("nan")
    return float(np.abs(current_px[both] - previous_px[both]).mean())


def _as_map(what: str, disparity_px: object) -> np.ndarray:
    """``disparity_px`` as a float array, or an InputError naming ``what`` (a string or None was a bare TypeError)."""
    try:
        array = np.asarray(disparity_px)  # its own dtype: float32 maps are measured in float32, as they always were
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise InputError(f"flicker: {what} must be a float (H, W) disparity map, got {type(disparity_px).__name__}")
    return array


def mean_flicker_px(disparities: Iterable[np.ndarray]) -> float:
    """The mean of :func:`flicker_px` over consecutive frames of a sequence (``nan`` if < 2 frames)."""
    if not isinstance(disparities, Iterable):
        raise InputError(f"flicker: expected a sequence of (H, W) disparity maps, got {type(disparities).__name__}")
    values, previous = [], None
    for index, disparity in enumerate(disparities):
        disparity = _as_map(f"frame {index}", disparity)
        if previous is not None:
            if previous.shape != disparity.shape:
                raise InputError(
                    f"flicker: frame {index} has shape {disparity.shape}, the frame before it {previous.shape}"
                )
            values.append(flicker_px(previous, disparity))
        previous = disparity
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


class TemporalFilter:
    """Exponential moving average of disparity per pixel, reset where the scene changes.

    For each pixel with a new valid disparity ``d``, the average ``a`` becomes ``a + alpha * (d - a)``.
    When ``|d - a| > reset_px`` the pixel is treated as changed: after the change has lasted
    ``confirm_frames + 1`` consecutive frames, each keeping to the one before (on its side of ``a`` and within
    ``reset_px``, or half the change, of it), the average restarts from ``d`` (an object arrived);
    until then the average is kept as it is, so a one-frame mismatch, the largest source of flicker
    from a static camera, never shows. A pixel whose new disparity is invalid keeps its average for
    ``hold_frames`` frames, then turns invalid.

    Args:
        alpha: weight of the new frame, 0 < alpha <= 1 (1 = no averaging). 0.3 cuts stationary noise
            to about 40 % with a delay of a few frames.
        reset_px: change, pixels, beyond which a pixel counts as changed (motion, not noise).
        confirm_frames: frames a change must persist before the pixel restarts (0 = at once; each frame
            of confirmation delays moving objects by one frame).
        hold_frames: frames an invalid pixel keeps its last average.

    Examples:
        >>> f = TemporalFilter(alpha=0.5, reset_px=2.0, confirm_frames=1)
        >>> _ = f(np.array([[10.0, 10.0]], np.float32))
        >>> f(np.array([[11.0, 20.0]], np.float32)).tolist()  # noise averaged, a jump not yet trusted
        [[10.5, 10.0]]
        >>> f(np.array([[11.0, 20.0]], np.float32)).tolist()  # the jump persists: the pixel restarts
        [[10.75, 20.0]]
    """

    def __init__(self, alpha: float = 0.3, reset_px: float = 2.0, confirm_frames: int = 1, hold_frames: int = 2):
        alpha = require_number(alpha, "temporal filter: alpha", "a weight of the new frame in (0, 1]")
        reset_px = require_number(reset_px, "temporal filter: reset_px", "a change in pixels > 0")
        confirm_frames = require_whole(
            confirm_frames, "temporal filter: confirm_frames", "a whole number of frames >= 0"
        )
        hold_frames = require_whole(hold_frames, "temporal filter: hold_frames", "a whole number of frames >= 0")
        if not 0 < alpha <= 1:
            raise InputError(f"temporal filter: alpha must be in (0, 1] (weight of the new frame), got {alpha}")
        if not (math.isfinite(reset_px) and reset_px > 0):  # inf: "Infinity" in the summary JSON, which is not JSON
            raise InputError(f"temporal filter: reset_px must be > 0 pixels (a finite number), got {reset_px}")
        if confirm_frames < 0:
            raise InputError(f"temporal filter: confirm_frames must be >= 0, got {confirm_frames}")
        if hold_frames < 0:
            raise InputError(f"temporal filter: hold_frames must be >= 0, got {hold_frames}")
        self.alpha, self.reset_px = alpha, reset_px
        self.confirm_frames, self.hold_frames = confirm_frames, hold_frames
        self._average: np.ndarray | None = None
        self._age: np.ndarray | None = None  # frames since each pixel last had a valid measurement
        self._changed: np.ndarray | None = None  # consecutive frames each pixel has departed from its average
        self._candidate: np.ndarray | None = None  # each departing pixel's last value: what the next must keep to

    def settings(self) -> dict[str, float]:
        return {
            "alpha": self.alpha,
            "reset_px": self.reset_px,
            "confirm_frames": self.confirm_frames,
            "hold_frames": self.hold_frames,
        }

    def reset(self) -> None:
        """Forget the history (after a cut, or when the camera moved)."""
        self._average = self._age = self._changed = self._candidate = None

    def __call__(self, disparity_px: np.ndarray) -> np.ndarray:
        """Filter the next frame's disparity.

        Args:
            disparity_px: float ``(H, W)``, pixels, ``nan`` = invalid.

        Returns:
            float32 ``(H, W)`` filtered disparity, ``nan`` where no recent valid value exists.

        Raises:
            InputError: not one ``(H, W)`` map (a batch or an image would be averaged as one frame).
        """
        try:
            d = np.asarray(disparity_px, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(
                f"temporal filter: expected a float (H, W) disparity map, got {type(disparity_px).__name__}"
            ) from None
        if d.ndim != 2:
            raise InputError(f"temporal filter: expected one disparity map of shape (H, W), got shape {d.shape}")
        valid = np.isfinite(d) & (d > 0)
        if self._average is None or self._average.shape != d.shape:
            self._average = np.where(valid, d, np.nan).astype(np.float32)
            self._age = np.where(valid, 0, self.hold_frames + 1).astype(np.int32)
            self._changed = np.zeros(d.shape, np.int32)
            self._candidate = np.full(d.shape, np.nan, np.float32)
            return self._average.copy()
        average, age, changed, candidate = self._average, self._age, self._changed, self._candidate
        assert age is not None and changed is not None and candidate is not None
        known = np.isfinite(average)
        with np.errstate(invalid="ignore"):
            departs = valid & known & (np.abs(d - average) > self.reset_px)
        # A change is confirmed by the next frames only where they keep to it: on its side of the average and
        # within reset_px (or half the change) of the frame before. Two unrelated jumps in a row (10, then 30,
        # then 50: two mismatches) restarted the pixel at the second one, which then showed: flicker.
        with np.errstate(invalid="ignore"):
            keeps = (changed > 0) & (np.sign(d - average) == np.sign(candidate - average))
            keeps &= np.abs(d - candidate) <= np.maximum(self.reset_px, np.abs(candidate - average) / 2)
        changed[departs & ~keeps] = 0
        changed[departs] += 1
        candidate[departs] = d[departs]
        changed[valid & ~departs] = 0
        restart = valid & (~known | (departs & (changed > self.confirm_frames)))
        blend = valid & known & ~departs
        average[restart] = d[restart]
        changed[restart] = 0
        average[blend] += self.alpha * (d[blend] - average[blend])
        age[valid] = 0
        age[~valid] = np.minimum(age[~valid] + 1, self.hold_frames + 1)
        average[age > self.hold_frames] = np.nan
        return average.copy()
