"""How far an exported model is from its source: differences, tolerances and the parity report.

Every export is run once in ONNX Runtime (CPU) on a real pair and compared with PyTorch; the export
fails when the difference is outside the model's tolerance. Pure numpy (plus OpenCV to size the
pair), so the report can be read and re-checked without torch.

What is compared (disparity maps in pixels of the network input):

- ``max_abs_px`` and ``mean_abs_px``: ``|candidate - reference|`` over the pixels finite in both;
- ``bad1_pct``: percent of pixels where they differ by more than 1 px, or where only one is finite;
- ``nonfinite``: NaN / inf count in the candidate (a classic fp16 failure: overflowing correlations).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, OutputError
from ..runtime.agreement import Agreement, compare_maps


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted difference between an export and its reference.

    Attributes:
        max_abs_px: largest ``|difference|`` anywhere, pixels (``None``: not checked).
        mean_abs_px: largest mean ``|difference|``, pixels.
        bad1_pct: largest percent of pixels differing by more than 1 px.
    """

    max_abs_px: float | None
    mean_abs_px: float
    bad1_pct: float


# fp32: ONNX Runtime fuses convolutions with their batch norms and reorders sums, so exports differ
# from PyTorch by float rounding (~1e-5 px on the golden fixtures); a wrong operator moves most pixels.
# The maximum is not bounded: where the matching cost has two near-equal modes, rounding can move the
# soft-argmin to the other one (measured: 4 of 307200 pixels, 13.7 px, GwcNet-g 640x480 with random
# weights). bad-1 <= 0.01 % (30 pixels of 640x480) allows those and nothing systematic.
FP32_TOLERANCE = Tolerance(max_abs_px=None, mean_abs_px=1e-3, bad1_pct=0.01)
FP32_TOLERANCES = {
    # recurrent refinement: 20 updates of the same rounding
    "crestereo": Tolerance(max_abs_px=None, mean_abs_px=2e-3, bad1_pct=0.01),
}
# fp16: ~3 significant digits; soft-argmin over 192 levels and recurrent updates lose some of them.
# A few pixels at occlusion edges may flip between matches, so the maximum is not bounded.
FP16_TOLERANCE = Tolerance(max_abs_px=None, mean_abs_px=0.25, bad1_pct=2.0)
FP16_TOLERANCES: dict[str, Tolerance] = {
    "crestereo": Tolerance(max_abs_px=None, mean_abs_px=0.5, bad1_pct=4.0),
}


def tolerance_for(model: str, precision: str) -> Tolerance:
    """The per-model tolerance of an export in ``fp32`` or ``fp16``.

    Examples:
        >>> tolerance_for("gwcnet-gc", "fp32").bad1_pct
        0.01
    """
    if precision == "fp16":
        return FP16_TOLERANCES.get(model, FP16_TOLERANCE)
    return FP32_TOLERANCES.get(model, FP32_TOLERANCE)


@dataclass(frozen=True)
class ParityCheck(Agreement):
    """One comparison: a candidate against a reference (the measures of :class:`Agreement`), with the
    tolerance it had to meet."""

    pixels: int
    tolerance: Tolerance
    passed: bool
    enforced: bool = True

    def line(self) -> str:
        """One line for the terminal."""
        verdict = ("ok" if self.passed else "FAIL") if self.enforced else "info"
        limit = self.tolerance
        limits = f"mean <= {limit.mean_abs_px:g}, bad-1 <= {limit.bad1_pct:g} %"
        if limit.max_abs_px is not None:
            limits = f"max <= {limit.max_abs_px:g}, " + limits
        return (
            f"  {self.name:<26} max {self.max_abs_px:.3g} px  mean {self.mean_abs_px:.3g} px  "
            f"bad-1 {self.bad1_pct:.3g} %  NaN/inf {self.nonfinite}  [{verdict}: {limits}]"
        )


def compare(
    candidate: np.ndarray, reference: np.ndarray, tolerance: Tolerance, name: str, enforced: bool = True
) -> ParityCheck:
    """Compare two disparity maps of the same shape.

    Args:
        candidate: disparity float ``(H, W)``, pixels (e.g. ONNX Runtime's).
        reference: disparity float ``(H, W)``, pixels (e.g. PyTorch's).
        tolerance: what the candidate must meet.
        name: label of the check.
        enforced: whether failing it fails the export (``False``: reported only).

    Returns:
        A :class:`ParityCheck`.

    Examples:
        >>> ref = np.zeros((2, 2), np.float32)
        >>> c = compare(ref + np.float32(0.5), ref, Tolerance(1.0, 1.0, 0.0), "demo")
        >>> c.max_abs_px, c.bad1_pct, c.passed
        (0.5, 0.0, True)
    """
    measured = compare_maps(candidate, reference, f"parity: {name}")
    passed = measured.within(tolerance.mean_abs_px, tolerance.bad1_pct) and (
        tolerance.max_abs_px is None or measured.max_abs_px <= tolerance.max_abs_px
    )
    return ParityCheck(
        **{**vars(measured), "name": name},
        pixels=int(np.size(candidate)),
        tolerance=tolerance,
        passed=bool(passed),
        enforced=enforced,
    )


@dataclass
class ParityReport:
    """All checks of one export, printed after it and written as JSON beside the model."""

    model: str
    settings: dict[str, Any]
    size_hw: tuple[int, int]
    precision: str
    pair: str
    checks: list[ParityCheck] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if c.enforced)

    def summary(self) -> str:
        """Multi-line text for the terminal."""
        head = (
            f"parity of {self.model} {self.size_hw[0]}x{self.size_hw[1]} (HxW) {self.precision} "
            f"({', '.join(f'{k}={v}' for k, v in self.settings.items())}) on {self.pair}:"
        )
        verdict = "parity ok" if self.passed else "parity FAILED"
        return "\n".join([head, *(c.line() for c in self.checks), verdict])

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "settings": self.settings,
            "size_hw": list(self.size_hw),
            "precision": self.precision,
            "pair": self.pair,
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "files": self.files,
            **self.extra,
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` as strict JSON: a measure that is not finite (no pixel finite in both maps, as
        when an fp16 export overflows everywhere) is ``null``, as in the int8 report, not ``Infinity``."""
        from ..io.atomic import atomic_path
        from ..metrics import finite_or_none

        path = Path(path)
        try:
            with atomic_path(path, "the parity report") as partial:
                text = json.dumps(finite_or_none(self.to_json()), indent=2, default=str, allow_nan=False)
                partial.write_text(text + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write the parity report {path}: {exc}") from None
        return path


# --------------------------------------------------------------------------------------------------
# The pair the export is checked on
# --------------------------------------------------------------------------------------------------


def fit_to_size(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize to cover ``size_hw`` keeping the aspect ratio, then crop the centre.

    Examples:
        >>> fit_to_size(np.zeros((240, 320, 3), np.uint8), (64, 128)).shape
        (64, 128, 3)
    """
    height, width = size_hw
    source_h, source_w = image.shape[:2]
    scale = max(height / source_h, width / source_w)
    # The centred window that covers the size is cut before resizing: the whole image resized first was an
    # intermediate of (H * scale, W * scale), 9.6 GB for --size 32x65536 from the 240x320 example pair.
    window_h, window_w = (
        min(side, max(1, round(target / scale))) for side, target in ((source_h, height), (source_w, width))
    )
    top, left = (source_h - window_h) // 2, (source_w - window_w) // 2
    window = image[top : top + window_h, left : left + window_w]
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(window, (width, height), interpolation=interpolation))


def parity_pair(
    size_hw: tuple[int, int], left: str | Path | None = None, right: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The uint8 RGB pair an export is checked on, fitted to ``size_hw``, and where it came from.

    Args:
        size_hw: the export size.
        left, right: image files; by default the example pair shipped in the package
            (:func:`rtstereo.data.example_pair_paths`).

    Returns:
        ``(left, right, description)``.

    Raises:
        InputError: only one of ``left``/``right`` given, or the shipped pair is missing (a damaged
            installation: pass ``--pair LEFT RIGHT``).
    """
    from ..io.images import read_image

    if (left is None) != (right is None):
        raise InputError("the parity pair needs both a left and a right image (--pair LEFT RIGHT)")
    if left is None:
        from ..data import example_pair_paths

        left, right = example_pair_paths()
        if not (left.is_file() and right.is_file()):
            raise InputError(
                f"no pair to check the export on: the example pair shipped with rtstereo ({left.parent}) is "
                "missing (reinstall rtstereo), or give one with --pair LEFT RIGHT"
            )
    assert right is not None, "both are set or both are None (checked above)"
    left_image, right_image = read_image(left), read_image(right)
    if left_image.shape != right_image.shape:
        raise InputError(f"parity pair: left {left_image.shape} and right {right_image.shape} differ in size")
    source_hw = left_image.shape[:2]
    fitted = f"{source_hw[0]}x{source_hw[1]} fitted to {size_hw[0]}x{size_hw[1]}, HxW"
    description = f"{Path(left).name} + {Path(right).name} ({fitted})"
    return fit_to_size(left_image, size_hw), fit_to_size(right_image, size_hw), description
