"""Memory known before work starts: a method's peak for an input size, the budget, and the plan.

The peak of one prediction is modelled as ``net_bytes_per_px * network pixels + IO_BYTES_PER_PX *
input pixels``: the method's working memory grows with the size it runs at (padded to its size divisor,
as a network pads its input), the input images and the full-size disparity with the input size. The
factors come from the growth of peak resident memory (``ru_maxrss``) over one prediction on 240x320 to
1920x2560 random pairs, input images excluded: SGBM with 64 to 384 disparities 31-42 B/px in all
(modelled as 24 + 32 = 56), rtnet-v4 through ONNX Runtime 313-460 B/px, growing with the size
(modelled as 560 + 32); networks that were
not measured get a conservative figure from their cost volume (per pixel and disparity level).

The rule (:func:`plan_network_size`), applied by the :class:`~rtstereo.runtime.predictor.Predictor`
before every run:

1. the estimate fits the budget: run as asked;
2. it does not, and the method can run at another size (not a fixed-shape export): run at the
   largest size, both sides scaled alike and each rounded down to a multiple of the size divisor
   (so the aspect ratio may change by up to one divisor), whose estimate fits
   (at least 1/8 of the input width, and wider than the disparity range searched), with the
   disparity scaled back to the input's pixels and a warning that says so;
3. otherwise stop with one line: the size, the estimate, the budget, and what to do.

The budget is ``RTSTEREO_MEMORY_BUDGET`` when set (``"2G"``, ``"512M"``, bytes), else 80 % of the
memory available now (``MemAvailable``, and the cgroup limit when one is set).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .heap import release_freed_memory

BUDGET_ENV = "RTSTEREO_MEMORY_BUDGET"
AVAILABLE_FRACTION = 0.8  # of the free memory: room for the process's other allocations and the OS
IO_BYTES_PER_PX = 32  # two uint8 RGB inputs (6 B), the float32 disparity and its post-processing copies
MIN_SCALE = 1 / 8  # below this a lower-resolution pass is no longer an answer worth giving

# Peak working bytes per pixel at the size the method runs at (measured, see the module docstring).
BYTES_PER_PX = {"sgbm": 24, "bm": 24, "rtnet-v5": 560}  # rtnet-v5: rtnet-v4's architecture and measure
BYTES_PER_PX["rtnet-guided"] = BYTES_PER_PX["rtnet-v5"] + 8  # the same network, a fourth input channel
# The hybrid runs the packaged network and SGBM at the same time: two SGBM passes at most (mirrored_check).
BYTES_PER_PX["hybrid"] = BYTES_PER_PX["rtnet-v5"] + 2 * BYTES_PER_PX["sgbm"] + 16
# Networks with a cost volume over the disparity range: bytes per pixel per searched disparity level.
BYTES_PER_PX_PER_DISP = {"gwcnet-g": 24.0, "gwcnet-gc": 28.0, "anynet": 2.0, "crestereo": 8.0, "rtnet": 3.0}
DEFAULT_NETWORK_BYTES_PER_PX = 2048
DEFAULT_MAX_DISP_PX = 192
# rtnet's correlation compares every left pixel of a row with every right one at 1/4 resolution: a float32
# (h/4, w/4, w/4) product, w / 16 bytes per pixel, which grows with the width. The factors above hold it as it is at
# the widths they were measured at (up to 2560 px); beyond, it is added: rtnet-v5 on 400x16000 grew the process by
# 1278 B per pixel, on 100x33000 (run at 128x33024) by 3257, where 560 were modelled.
ROW_CORRELATION_MODELS = ("rtnet-v5", "rtnet-guided", "hybrid", "rtnet")
ROW_CORRELATION_MEASURED_WIDTH_PX = 2560


class MemoryBudgetError(InputError):
    """An input too large for the memory budget, even at the smallest size the method may run at."""


def parse_bytes(text: str) -> int:
    """``"2G"``, ``"512M"``, ``"1.5G"``, ``"64k"`` or ``"1000000"`` -> bytes: a number, then K, M, G or T (powers
    of 1024, any case, then optionally ``B``, ``i`` or ``iB``: ``2GB``, ``2Gi``, ``2GiB``), ``B`` alone, or nothing.

    Examples:
        >>> parse_bytes("2G"), parse_bytes("512MB"), parse_bytes("1.5 GiB"), parse_bytes("1000")
        (2147483648, 536870912, 1610612736, 1000)
    """
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    # "2ib" was read as 2 bytes, "i" and "b" dropped whatever stood before them
    match = re.fullmatch(r"([^kmgtib\s]+)\s*(?:([kmgt])i?b?|b)?", str(text).strip().lower())
    try:
        count = int(float(match.group(1)) * units[match.group(2) or ""]) if match else 0
    except (ValueError, OverflowError):  # "inf" failed with a bare OverflowError
        count = 0
    if count < 1:  # 0 or -1G refused every pair against "a 0 KB budget", nan and inf are no sizes
        raise InputError(
            f"{BUDGET_ENV}={text!r} not understood: expected a size of at least 1 byte, such as 2G or 512M"
        )
    return count


def format_bytes(count: float) -> str:
    """Bytes as a short human figure.

    Examples:
        >>> format_bytes(3 * 2**30), format_bytes(5 * 2**20), format_bytes(300 * 2**10), format_bytes(500)
        ('3.0 GB', '5 MB', '300 KB', '500 B')
    """
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GB"
    if count < 1 << 10:  # RTSTEREO_MEMORY_BUDGET=500 read "more than the 0 KB budget"
        return f"{count:.0f} B"
    if count < 1 << 20:  # "needs about 0 MB, more than the 0 MB budget" said nothing
        return f"{count / (1 << 10):.0f} KB"
    return f"{count / (1 << 20):.0f} MB"


_UNIT_BYTES = {"GB": 1 << 30, "MB": 1 << 20, "KB": 1 << 10, "B": 1}


def format_budget(count: float) -> str:
    """A budget as :func:`format_bytes` says it, with the decimals it needs to be read as given (to 0.5 %, 3 decimals
    at most): ``RTSTEREO_MEMORY_BUDGET=1.5K`` was said as "2 KB", ``1.25G`` as "1.2 GB".

    Examples:
        >>> format_budget(1.5 * 2**10), format_budget(1.25 * 2**30), format_budget(512 * 2**20), format_budget(2**31)
        ('1.5 KB', '1.25 GB', '512 MB', '2.0 GB')
    """
    unit = format_bytes(count).split()[1]
    size = _UNIT_BYTES[unit]
    decimals = 1 if unit == "GB" else 0  # format_bytes's own
    while decimals < 3 and abs(round(count / size, decimals) * size - count) > count / 200:
        decimals += 1
    return f"{count / size:.{decimals}f} {unit}"


def format_bytes_apart(needed: float, allowed: float) -> tuple[str, str]:
    """Two sizes of one message (``needs about X, more than the Y budget``), with as many decimals as tell them
    apart: 5.1 MB against a 5 MB budget read "needs about 5 MB, more than the 5 MB budget".

    Examples:
        >>> format_bytes_apart(5.37e6, 5 * 2**20), format_bytes_apart(1.5 * 2**30, 100 * 2**20)
        (('5.1 MB', '5.0 MB'), ('1.5 GB', '100 MB'))
    """
    shown = format_bytes(needed), format_budget(allowed)
    unit = shown[0].split()[1]
    decimals, size = {"GB": (2, 1 << 30), "MB": (1, 1 << 20), "KB": (1, 1 << 10), "B": (1, 1)}[unit]
    while shown[0] == shown[1] and decimals <= 3:
        shown = f"{needed / size:.{decimals}f} {unit}", f"{allowed / size:.{decimals}f} {unit}"
        decimals += 1
    return shown


@dataclass(frozen=True)
class Budget:
    """How many bytes a prediction may use, and where that figure came from (for messages)."""

    bytes: int
    source: str


def memory_budget() -> Budget:
    """The budget: ``RTSTEREO_MEMORY_BUDGET`` when set, else a fraction of the memory available now."""
    text = os.environ.get(BUDGET_ENV, "").strip()  # empty: unset, as RTSTEREO_THREADS reads it
    if text:
        return Budget(parse_bytes(text), f"{BUDGET_ENV}={text}")
    available = _available_bytes()
    if available is None:  # no way to know (not Linux): no limit imposed
        return Budget(1 << 62, "unknown available memory")
    return Budget(int(available * AVAILABLE_FRACTION), f"{int(AVAILABLE_FRACTION * 100)} % of the available memory")


# A training batch holds, for each pixel of each crop, at least its two float32 RGB views and its float32 disparity.
# Crops read from files one by one and then stacked (``torch.stack`` of a list of crops) hold that twice at the end of
# the stacking: the crops and the batch. The network's activations and gradients come on top: a lower bound.
BATCH_BYTES_PER_PX = 2 * 3 * 4 + 4
STACKED_CROP_BYTES_PER_PX = 2 * BATCH_BYTES_PER_PX


def batch_over_budget(
    batch_size: int,
    crop_hw: tuple[int, int],
    bytes_per_px: int,
    budget: Budget,
    where: str = "",
    noun: str = "crops",
) -> str | None:
    """Why ``batch_size`` crops of ``crop_hw`` cannot be held, or ``None`` when they fit ``budget``.

    Args:
        batch_size: crops per step.
        crop_hw: ``(H, W)`` of each crop, pixels.
        bytes_per_px: bytes per crop pixel (:data:`BATCH_BYTES_PER_PX`, :data:`STACKED_CROP_BYTES_PER_PX`).
        budget: the memory they must fit.
        where: what holds them, said after the figure (``" on cuda:0"``).
        noun: what they are, in the plural (``"scenes"`` of a validation set).

    Examples:
        >>> budget = Budget(2**30, "a test")
        >>> batch_over_budget(1000, (512, 1024), BATCH_BYTES_PER_PX, budget)  # 1000 x 512 x 1024 x 28 B
        '1000 crops of 512x1024 need at least 13.7 GB, more than the 1.0 GB budget (a test): give at most 73'
        >>> batch_over_budget(73, (512, 1024), BATCH_BYTES_PER_PX, budget) is None
        True
    """
    crop_bytes = bytes_per_px * max(1, crop_hw[0] * crop_hw[1])
    if batch_size * crop_bytes <= budget.bytes:
        return None
    needed, allowed = format_bytes_apart(batch_size * crop_bytes, budget.bytes)
    fitting = budget.bytes // crop_bytes
    advice = f"give at most {fitting}" if fitting >= 1 else "give a smaller crop"
    return (
        f"{batch_size} {noun} of {crop_hw[0]}x{crop_hw[1]} need at least {needed}{where}, more than the {allowed} "
        f"budget ({budget.source}): {advice}"
    )


def check_budget_setting() -> None:
    """Refuse an ``RTSTEREO_MEMORY_BUDGET`` that is no size before any work starts (:func:`parse_bytes`): where each
    scene asks the budget, as ``eval``'s do, every scene failed for it and the run ended as a failed one (exit code
    1, its results written), where a usage error stops it in one line.

    Raises:
        InputError: the variable is set to no size of at least 1 byte.
    """
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        parse_bytes(text)


def _available_bytes() -> int | None:
    candidates = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:  # a container's own limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            candidates.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(candidates) if candidates else None


def working_bytes_per_px(model: str, kind: str, max_disp_px: float | None, width_px: int = 0) -> float:
    """Peak working bytes per pixel of the size a method runs at, ``width_px`` wide (see the module docstring).

    Examples:
        >>> working_bytes_per_px("rtnet-v5", "onnx", 192, 640), working_bytes_per_px("rtnet-v5", "onnx", 192, 16000)
        (560, 1400.0)
    """
    if model in BYTES_PER_PX:
        per_px: float = BYTES_PER_PX[model]
    elif model in BYTES_PER_PX_PER_DISP:
        per_px = BYTES_PER_PX_PER_DISP[model] * (max_disp_px or DEFAULT_MAX_DISP_PX)
    else:
        return BYTES_PER_PX["sgbm"] if kind == "classical" else DEFAULT_NETWORK_BYTES_PER_PX
    if model in ROW_CORRELATION_MODELS and width_px > ROW_CORRELATION_MEASURED_WIDTH_PX:
        per_px += (width_px - ROW_CORRELATION_MEASURED_WIDTH_PX) / 16
    return per_px


def estimate_peak_bytes(
    model: str,
    kind: str,
    max_disp_px: float | None,
    input_hw: tuple[int, int],
    net_hw: tuple[int, int] | None = None,
    size_divisor: int = 1,
) -> int:
    """Estimated peak bytes of one prediction.

    Args:
        model: registry name (``sgbm``, ``rtnet-v5``...).
        kind: ``classical``, ``network`` or ``onnx``.
        max_disp_px: the disparity range searched (networks with cost volumes grow with it).
        input_hw: the input pair's ``(H, W)``.
        net_hw: the size the method runs at (default: the input size).
        size_divisor: the method pads ``net_hw`` up to multiples of this, and works at the padded size.

    Examples:
        >>> estimate_peak_bytes("sgbm", "classical", 192, (1000, 1000)) // 10**6
        56
        >>> estimate_peak_bytes("rtnet-v5", "onnx", 192, (33, 6000), size_divisor=32) // 10**6  # run at 64x6016
        305
    """
    step = max(1, size_divisor)
    # A network's working memory is that of its padded input: rtnet-v5 on 33x6000 (run at 64x6016) grew the
    # process by 1191 B per input pixel, twice what the input size alone gave (592), and passed a budget it exceeded.
    height, width = net_hw or input_hw
    padded_hw = (-(-height // step) * step, -(-width // step) * step)
    net_px, input_px = padded_hw[0] * padded_hw[1], input_hw[0] * input_hw[1]
    per_px = working_bytes_per_px(model, kind, max_disp_px, padded_hw[1])
    return int(per_px * net_px + IO_BYTES_PER_PX * input_px)


def plan_network_size(
    model: str,
    kind: str,
    max_disp_px: float | None,
    input_hw: tuple[int, int],
    size_divisor: int = 1,
    fixed_size_hw: tuple[int, int] | None = None,
    budget: Budget | None = None,
) -> tuple[int, int] | None:
    """The size to run at so that the estimate fits the budget (the rule of the module docstring).

    Returns:
        ``None`` to run as asked, or the smaller ``(H, W)`` to run at.

    Raises:
        MemoryBudgetError: no size fits (or the model's size is fixed), with what to do.

    Examples:
        >>> plan_network_size("sgbm", "classical", 64, (480, 640), budget=Budget(1 << 30, "test")) is None
        True
        >>> plan_network_size("rtnet-v5", "onnx", 192, (4000, 6000), 32, budget=Budget(2 << 30, "test"))
        (1280, 1920)
    """
    asked_budget = budget
    budget = budget or memory_budget()
    net_hw = fixed_size_hw or input_hw
    step = max(1, size_divisor)
    estimate = estimate_peak_bytes(model, kind, max_disp_px, input_hw, net_hw, step)
    if estimate <= budget.bytes:
        return None
    # The memory the process freed and keeps for reuse (keep_freed_memory) counts as used: handed back first, so
    # that a pair after a large one is not run smaller than it was alone.
    if asked_budget is None and not os.environ.get(BUDGET_ENV, "").strip() and release_freed_memory():
        budget = memory_budget()
        if estimate <= budget.bytes:
            return None
    height, width = input_hw
    room = budget.bytes - IO_BYTES_PER_PX * height * width
    # The largest scale whose working memory fits the room: at most 1 (a pair that fits unpadded but not padded runs
    # at its size rounded down to the divisor), found by bisection, as a row correlation's bytes per pixel shrink with
    # the width.
    fits_whole = working_bytes_per_px(model, kind, max_disp_px, width) * height * width <= room
    low, high = (1.0, 1.0) if fits_whole else (0.0, 1.0)
    for _ in range(40 if low < high else 0):
        middle = (low + high) / 2
        per_px = working_bytes_per_px(model, kind, max_disp_px, int(width * middle))
        low, high = (middle, high) if per_px * middle**2 * height * width <= room else (low, middle)
    scale = low
    reduced = (int(height * scale) // step * step, int(width * scale) // step * step)
    searched = max_disp_px or 0
    if fixed_size_hw is None and scale >= MIN_SCALE and min(reduced) >= 2 * step and reduced[1] > searched:
        return reduced
    needed, allowed = format_bytes_apart(estimate, budget.bytes)
    raise MemoryBudgetError(
        f"{model} on a {height}x{width} (HxW) pair needs about {needed}, more than the {allowed} budget "
        f"({budget.source}): "
        f"{_what_fits(model, kind, max_disp_px, input_hw, step, fixed_size_hw, budget)}"
    )


def _what_fits(
    model: str,
    kind: str,
    max_disp_px: float | None,
    input_hw: tuple[int, int],
    step: int,
    fixed_size_hw: tuple[int, int] | None,
    budget: Budget,
) -> str:
    """What to do, in words: the largest input size of the pair's aspect ratio (sides multiples of ``step``,
    at least 1/8 of its width) whose estimate fits and which is wider than the range searched, with that
    range scaled alike where the estimate grows with it (a cost volume: half the images, half the
    disparities). Each suggestion is checked against the budget, not guessed: half the size was suggested,
    which a cost volume of 192 levels did not fit either."""
    height, width = input_hw
    scales_range = model in BYTES_PER_PX_PER_DISP and bool(max_disp_px)
    more = f"set {BUDGET_ENV} if the machine has more memory"
    for w in range(width // step * step, 0, -step):
        h = height * w // width // step * step
        if h < step or w < width * MIN_SCALE:
            break
        searched = max_disp_px or 0
        if scales_range:  # the scene's disparities shrink with the images; cost volumes come in steps of 16
            searched = max(16, math.ceil(searched * w / width / 16) * 16)
        if w <= searched:
            continue
        if estimate_peak_bytes(model, kind, searched, (h, w), fixed_size_hw) <= budget.bytes:
            disp = (
                f" with --max-disp {searched:g} (max_disp= in Python)"
                if scales_range and searched < (max_disp_px or 0)
                else ""
            )
            at = (
                f" (its export runs at {fixed_size_hw[0]}x{fixed_size_hw[1]} whatever the input)"
                if fixed_size_hw
                else ""
            )
            keep = (
                _range_that_fits(model, max_disp_px, input_hw, budget) if scales_range and not fixed_size_hw else None
            )
            same = (
                f", or keep their size with --max-disp {keep} (max_disp= in Python) if the scene's disparities "
                "stay below it"
                if keep
                else ""
            )
            return f"resize the images to at most {h}x{w} (HxW){disp}, the largest size that fits{at}{same}, or {more}"
    if fixed_size_hw:
        size = f"{fixed_size_hw[0]}x{fixed_size_hw[1]} (HxW)"
        return f"its export's fixed size {size} does not fit: export it at a smaller size, or {more}"
    # A range at or beyond the width leaves every smaller size narrower than its scaled range: GwcNet at --max-disp
    # 1600000 on a 320-px pair was told no size fits, where --max-disp 320 at the pair's own size did.
    keep = _range_that_fits(model, max_disp_px, input_hw, budget) if scales_range else None
    if keep:
        return f"lower --max-disp to at most {keep} (max_disp= in Python), which fits at the pair's own size, or {more}"
    return f"no smaller size of this pair fits either: {more}, or choose a method that needs less (rtstereo models)"


def _range_that_fits(model: str, max_disp_px: float | None, input_hw: tuple[int, int], budget: Budget) -> int | None:
    """The largest disparity range (a multiple of 16, no larger than the width: a disparity must stay below it) whose
    cost volume fits at the input's own size, if one below ``max_disp_px`` does."""
    pixels = input_hw[0] * input_hw[1]
    levels = (budget.bytes - IO_BYTES_PER_PX * pixels) / (BYTES_PER_PX_PER_DISP[model] * pixels)
    fits = int(min(levels, input_hw[1]) // 16 * 16)
    return fits if 16 <= fits < (max_disp_px or 0) else None
