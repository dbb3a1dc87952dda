"""The rectification warning of the commands: ``predict`` says it for one pair (or a batch's first);
``video`` and ``live`` say it, in the same words, for the first frame that can be judged, measured in a
thread of its own so that the stream's frame rate does not pay for it."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import RtStereoError
from ..types import StereoPair
from .common import parse_set_values

ALIGN_HINT_MAX_PX = 4.0  # a misalignment up to this is offered --align-rows


def raw_rig_hint(calib: str | None) -> str | None:
    """The advice for a pair that does not look rectified when ``--calib`` names an OpenCV file that also
    holds the raw cameras (``K1 D1 K2 D2``, as the ``stereo.yaml`` of ``rtstereo calibrate`` does): such a
    file can rectify the pair with ``--rectify``; ``--calib`` takes the images as rectified already."""
    from ..io.calibration import OPENCV_SUFFIXES, read_opencv

    if not calib or Path(calib).suffix.lower() not in (*OPENCV_SUFFIXES, ".json"):
        return None
    try:
        matrices = read_opencv(calib).matrices.keys()
    except RtStereoError:
        return None
    if not ({"K1", "K2"} <= matrices or {"M1", "M2"} <= matrices) or not {"D1", "D2"} <= matrices:
        return None
    return (
        f"{calib} also holds the raw cameras (K1, D1, K2, D2): if these images are not rectified yet, give it "
        "to --rectify instead of --calib"
    )


def exposure_hint(args: argparse.Namespace) -> str:
    """How to speak of views exposed differently: ``"off"`` for the hybrid (``default``) with
    ``sgbm_input=normalized``, ``"auto"`` with ``auto`` (only when its own switch did not fire), ``"on"``
    for every other model and for ``sgbm_input=raw``."""
    if (args.model or "default") not in ("default", "hybrid"):
        return "on"
    chosen = parse_set_values(args.set_values).get("sgbm_input", "auto")
    return {"normalized": "off", "auto": "auto"}.get(str(chosen).strip().lower(), "on")


def rectification_warnings(
    pair: StereoPair, exposure: str = "on", align_rows: bool = False, rig_hint: str | None = None
) -> tuple[list[str], bool]:
    """What to warn about a pair that does not look rectified (with ``rig_hint``, :func:`raw_rig_hint`, if
    given) and whose two views look exposed differently
    (:meth:`~rtstereo.rectify.RectificationCheck.exposure_warning`), as ``exposure`` says (:func:`exposure_hint`).

    Args:
        pair: the pair as the model gets it (rectified, aligned, resized).
        exposure: ``"on"``, ``"auto"`` or ``"off"`` (:func:`exposure_hint`).
        align_rows: the pair went through ``--align-rows``.
        rig_hint: the advice of :func:`raw_rig_hint`.

    Returns:
        ``(messages, conclusive)``: the lines to warn (none when the pair looks fine), and whether the
        pair had enough matched features to be judged.
    """
    from ..models.sgbm import EXPOSURE_RATIO_LIMIT, resolved_sgbm_input
    from ..rectify import MIN_AGREEING_SHARE, MIN_MATCHES, check_rectification

    check = check_rectification(pair.left, pair.right)
    rows = check.warning()
    if rows and rig_hint and check.median_dx_px >= -1.0:
        rows += f"; {rig_hint}"
    elif rows and align_rows:
        rows += " after --align-rows; it corrects a pixel or two, this pair needs calibrating"
    elif rows and check.median_dx_px >= -1.0 and check.misalignment_px <= ALIGN_HINT_MAX_PX:
        rows += "; or --align-rows, which corrects a pixel or two from the matched features"
    if align_rows and not check.conclusive:  # align_rows left it alone: asked for, so not done silently
        rows = (
            f"--align-rows: too few matched features ({check.matches}, at least {MIN_MATCHES}) to measure the rows; "
            "the pair goes through unaligned"
            if check.matches < MIN_MATCHES
            else f"--align-rows: the matched features disagree on the rows (the best fit holds "
            f"{check.agreeing_share:.0%} of them, at least {MIN_AGREEING_SHARE:.0%}: repeating texture or noise); "
            "the pair goes through unaligned"
        )
    light = check.exposure_warning() if exposure != "off" else None
    if light and exposure == "auto":  # the hybrid decides by the whole images' grey levels
        if resolved_sgbm_input("auto", pair.left, pair.right) == "normalized":
            light = None
        else:
            light += (
                f"; here the whole images' brightness differs by less than {EXPOSURE_RATIO_LIMIT:g}x, so default "
                "kept SGBM on the raw "
                "images: --set sgbm_input=normalized normalises them"
            )
    return [message for message in (rows, light) if message], check.conclusive


class StreamRectificationCheck:
    """Capture-stage preparation that also checks, once, that the frames are rectified (``video``, ``live``).

    It wraps the stream's ``prepare``: the first prepared frame is handed to a thread of its own, which
    runs :func:`rectification_warnings` and logs what it finds as warnings on the stream's logger; a frame
    too plain to be judged is followed by the next one prepared after the thread is done, up to
    :attr:`TRIES` frames. The capture stage never waits for it, so the stream's frame rate is that of
    its stages as before; :meth:`wait` lets the command say the warning before its summary.

    Args:
        prepare: the stream's own preparation (``None``: frames as they come).
        exposure: as :func:`rectification_warnings`.
        align_rows: as :func:`rectification_warnings` (``--align-rows``).
        rig_hint: as :func:`rectification_warnings`.
        logger: where the warnings go.
        name: what the warning names, as ``predict`` names a pair (``frame 0``).
    """

    TRIES = 5

    def __init__(
        self,
        prepare: Callable[[StereoPair], StereoPair] | None,
        exposure: str = "on",
        align_rows: bool = False,
        rig_hint: str | None = None,
        logger: logging.Logger | None = None,
        name: str = "frame",
    ) -> None:
        self.prepare = prepare
        self.exposure, self.align_rows, self.rig_hint = exposure, align_rows, rig_hint
        self.log = logger if logger is not None else logging.getLogger("rtstereo.stream")
        self.name = name
        self.tries = 0
        self.done = False
        self._thread: threading.Thread | None = None

    def __call__(self, pair: StereoPair) -> StereoPair:
        if self.prepare is not None:
            pair = self.prepare(pair)
        if not self.done and self.tries < self.TRIES and (self._thread is None or not self._thread.is_alive()):
            self.tries += 1
            frame = StereoPair(pair.left.copy(), pair.right.copy(), name=pair.name, index=pair.index)
            self._thread = threading.Thread(target=self._check, args=(frame,), name="rtstereo-rectification-check")
            self._thread.daemon = True  # a process leaving mid-check does not wait for it
            self._thread.start()
        return pair

    def _check(self, pair: StereoPair) -> None:
        try:
            messages, conclusive = rectification_warnings(pair, self.exposure, self.align_rows, self.rig_hint)
        except Exception as exc:  # noqa: BLE001 - a check that fails must not stop the stream
            self.log.info("the rectification check of frame %s failed: %s", pair.index, exc)
            self.done = True
            return
        # An unjudged frame is no news (--align-rows says its own): the next one is tried.
        self.done = conclusive or self.tries >= self.TRIES
        if conclusive:
            what = f"{self.name} {pair.index}" if pair.index is not None else self.name
            for message in messages:
                self.log.warning("%s: %s", what, message)

    def wait(self, timeout_s: float = 10.0) -> None:
        """Wait for a check under way (at most ``timeout_s``), so that its warning comes before the summary."""
        if self._thread is not None:
            self._thread.join(timeout_s)
