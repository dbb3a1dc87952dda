"""How far two runs of one model agree: half vs full precision, a GPU provider vs the CPU, a CUDA graph
vs the eager network.

The runtime checks itself with these (an ONNX Runtime GPU session against its CPU session on the
first pair, a captured CUDA graph against the eager forward) and reports fp16-vs-fp32 parity
(:func:`precision_parity`). Pure numpy. The exporter's parity report (:mod:`rtstereo.export.parity`),
which sits above this layer, takes its measures from :func:`compare_maps` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, RtStereoWarning

#: Actions when a check fails: report in a warning, refuse (raise), or do not check.
PARITY_ACTIONS = ("warn", "refuse", "off")


class ParityWarning(RtStereoWarning):
    """Two runs of one model disagree more than their tolerance."""


@dataclass(frozen=True)
class Agreement:
    """The difference between a candidate disparity map and a reference of the same shape.

    Attributes:
        name: what was compared (``"fp16 vs fp32"``, ``"CUDAExecutionProvider vs CPU"``).
        max_abs_px: largest ``|candidate - reference|`` over pixels finite in both.
        mean_abs_px: mean of the same.
        bad1_pct: percent of pixels differing by more than 1 px, or finite in only one map.
        nonfinite: NaN/inf pixels of the candidate (half precision overflows show here).
        nonfinite_reference: the same in the reference.
    """

    name: str
    max_abs_px: float
    mean_abs_px: float
    bad1_pct: float
    nonfinite: int
    nonfinite_reference: int

    def within(self, mean_abs_px: float, bad1_pct: float) -> bool:
        """Whether the difference is inside a tolerance (and the candidate has no extra NaN/inf)."""
        return (
            self.nonfinite <= self.nonfinite_reference and self.mean_abs_px <= mean_abs_px and self.bad1_pct <= bad1_pct
        )

    def line(self) -> str:
        """One line for a log or a terminal."""
        return (
            f"{self.name}: max {self.max_abs_px:.3g} px, mean {self.mean_abs_px:.3g} px, bad-1 {self.bad1_pct:.3g} %, "
            f"NaN/inf {self.nonfinite} (reference {self.nonfinite_reference})"
        )


def compare_maps(candidate: Any, reference: Any, name: str) -> Agreement:
    """Compare two disparity maps (numpy arrays or tensors, any float dtype) of the same shape.

    Examples:
        >>> ref = np.zeros((2, 2), np.float32)
        >>> a = compare_maps(ref + np.float32(0.5), ref, "demo")
        >>> a.max_abs_px, a.bad1_pct, a.within(1.0, 0.0)
        (0.5, 0.0, True)
    """
    candidate, reference = (_as_numpy(x) for x in (candidate, reference))
    if candidate.shape != reference.shape:
        raise InputError(f"{name}: candidate {candidate.shape} and reference {reference.shape} differ in shape")
    finite_c, finite_r = np.isfinite(candidate), np.isfinite(reference)
    both = finite_c & finite_r
    diff = np.abs(candidate[both] - reference[both])
    bad = int((diff > 1.0).sum()) + int((finite_c != finite_r).sum())
    return Agreement(
        name,
        float(diff.max()) if diff.size else float("inf"),
        float(diff.mean()) if diff.size else float("inf"),
        100.0 * bad / max(candidate.size, 1),
        int((~finite_c).sum()),
        int((~finite_r).sum()),
    )


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def precision_parity(half: Any, full: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Agreement]:
    """fp16 (or bf16) against fp32: the same network loaded twice, run on the same pairs.

    Args:
        half: a :class:`~.predictor.Predictor` in half precision.
        full: the same model in fp32 (same weights, settings and device).
        pairs: uint8 RGB ``(left, right)`` images.

    Returns:
        One :class:`Agreement` per pair, on the finished disparity maps (pixels of the input).

    Examples:
        >>> import rtstereo
        >>> m = rtstereo.load("sgbm", max_disp=16)
        >>> left = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
        >>> precision_parity(m, m, [(left, np.roll(left, -4, axis=1))])[0].max_abs_px
        0.0

    Raises:
        InputError: ``half`` or ``full`` is not a predictor, or ``pairs`` is not a list of ``(left, right)``.
    """
    for given, name in ((half, "half"), (full, "full")):
        if not callable(getattr(given, "predict", None)):  # it was AttributeError: 'str' has no attribute 'backend'
            raise InputError(
                f"precision_parity: {name} must be a predictor (rtstereo.load(NAME, precision=...)), "
                f"got {type(given).__name__} {given!r:.60}"
            )
    if isinstance(pairs, np.ndarray) or not isinstance(pairs, (list, tuple)):
        raise InputError(f"precision_parity: pairs must be a list of (left, right) images, got {type(pairs).__name__}")
    for n, pair in enumerate(pairs):
        if isinstance(pair, np.ndarray) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            got = f"an array of shape {pair.shape}" if isinstance(pair, np.ndarray) else type(pair).__name__
            raise InputError(f"precision_parity: pairs[{n}] must be a (left, right) pair of images, got {got}")
    label = f"{_precision(half)} vs {_precision(full)}"
    return [
        compare_maps(half.predict(left, right).disparity_px, full.predict(left, right).disparity_px, label)
        for left, right in pairs
    ]


def _precision(predictor: Any) -> str:
    """The precision a predictor's backend reports, ``?`` where it reports none (a predictor of one's own)."""
    describe = getattr(getattr(predictor, "backend", None), "describe", None)
    return str(describe().get("precision", "?")) if callable(describe) else "?"


def check_action(value: Any) -> str:
    """A parity action from a setting (``warn``, ``refuse`` or ``off``)."""
    text = str(value).strip().lower()
    if text not in PARITY_ACTIONS:
        raise InputError(f"setting 'parity': expected one of {', '.join(PARITY_ACTIONS)}, got '{value}'")
    return text
