"""The rectification warning of the commands: ``predict`` says it for one pair (or a batch's first);
``video`` and ``live`` say it, in the same words, for the first frame that can be judged, and again when a
later frame, checked every few seconds of the stream, reads differently (a camera knocked mid-run), measured
in a thread of its own so that the stream's frame rate does not pay for it."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import RtStereoError
from ..pools import wait_for_event_through_interrupts
from ..sources.base import PreparationWrapper
from ..types import StereoPair
from .common import parse_set_values

ALIGN_HINT_MAX_PX = 4.0  # a misalignment up to this is offered --align-rows


def raw_rig_hint(calib: str | None) -> str | None:
    """The advice for a pair that does not look rectified when ``--calib`` names an OpenCV file that also
    holds the raw cameras (``K1 D1 K2 D2``, as the ``stereo.yaml`` of ``rtstereo calibrate`` does): such a
    file can rectify the pair with ``--rectify``; ``--calib`` takes the images as rectified already."""
    from ..io.calibration import OPENCV_SUFFIXES, read_opencv
    from ..io.download import fetch, is_url

    if not calib or Path(calib).suffix.lower() not in (*OPENCV_SUFFIXES, ".json"):
        return None
    maps = None if is_url(calib) else _maps_beside(Path(calib).expanduser())
    if maps is not None:  # the advice was "Calibrate the rig (rtstereo calibrate)", which made this very file
        return (
            f"{calib} is the calibration of rectified images that rtstereo calibrate wrote beside {maps}, which "
            f"rectifies raw pairs: if these images are not rectified yet, give --rectify {maps} instead of --calib"
        )
    try:  # a URL's file, which --calib fetched into the cache (OpenCV, given the URL as a path, printed an error)
        matrices = read_opencv(fetch(calib) if is_url(calib) else calib).matrices.keys()
    except RtStereoError:
        return None
    if not ({"K1", "K2"} <= matrices or {"M1", "M2"} <= matrices) or not {"D1", "D2"} <= matrices:
        return None
    return (
        f"{calib} also holds the raw cameras (K1, D1, K2, D2): if these images are not rectified yet, give it "
        "to --rectify instead of --calib"
    )


def _maps_beside(calibration_json: Path) -> Path | None:
    """The ``maps.npz`` that ``rtstereo calibrate`` wrote beside a ``calibration.json``, recording the same
    calibration, or ``None``."""
    import json
    import zipfile

    maps = calibration_json.with_name("maps.npz")
    fields = ("fx_px", "fy_px", "cx0_px", "cx1_px", "cy_px", "baseline_m")
    try:
        given = json.loads(calibration_json.read_text(encoding="utf-8"))
        with np.load(maps, allow_pickle=False) as data:
            recorded = json.loads(str(data["calibration"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if not (isinstance(given, dict) and isinstance(recorded, dict)):
        return None
    same = all(k in given and given[k] == recorded.get(k) for k in fields)
    return maps if same else None


def exposure_hint(args: argparse.Namespace) -> str:
    """How to speak of views exposed differently: ``"off"`` for the hybrid (``default``) with
    ``sgbm_input=normalized``, ``"auto"`` with ``auto`` (only when its own switch did not fire), ``"on"``
    for every other model and for ``sgbm_input=raw``."""
    if (args.model or "default") not in ("default", "hybrid"):
        return "on"
    chosen = parse_set_values(args.set_values).get("sgbm_input", "auto")
    return {"normalized": "off", "auto": "auto"}.get(str(chosen).strip().lower(), "on")


def swap_hint(swapped: bool) -> str:
    """What ``video`` and ``live --camera uvc:...`` say about ``--swap`` to views that look swapped (one
    side-by-side video has no two inputs to exchange).

    Examples:
        >>> swap_hint(False)
        '--swap exchanges them'
    """
    return "--swap is given: drop it" if swapped else "--swap exchanges them"


def rectification_warnings(
    pair: StereoPair,
    exposure: str = "on",
    align_rows: bool = False,
    rig_hint: str | None = None,
    rectified_by: str | None = None,
) -> tuple[list[str], bool]:
    """The lines of :func:`rectification_findings`, in its order (rows first), and whether the pair was judged."""
    findings, conclusive = rectification_findings(pair, exposure, align_rows, rig_hint, rectified_by=rectified_by)
    return list(findings.values()), conclusive


def _rectified_advice(rectified_by: str) -> str:
    """What a pair that ``--rectify`` rectified and that still does not look rectified is advised (it was told to
    calibrate the rig and pass --rectify, which it had)."""
    return (
        f"The pair went through --rectify {rectified_by}: if its images were rectified already, give the rig's "
        "calibration to --calib instead; if they come from another rig, or another camera mode, than the one "
        "calibrated, calibrate it again (rtstereo calibrate)"
    )


def rectification_findings(
    pair: StereoPair,
    exposure: str = "on",
    align_rows: bool = False,
    rig_hint: str | None = None,
    swap_hint: str | None = None,
    rectified_by: str | None = None,
) -> tuple[dict[str, str], bool]:
    """What to warn about a pair that does not look rectified (with ``rig_hint``, :func:`raw_rig_hint`, if
    given) and whose two views look exposed differently
    (:meth:`~rtstereo.rectify.RectificationCheck.exposure_warning`), as ``exposure`` says (:func:`exposure_hint`).

    Args:
        pair: the pair as the model gets it (rectified, aligned, resized).
        exposure: ``"on"``, ``"auto"`` or ``"off"`` (:func:`exposure_hint`).
        align_rows: the pair went through ``--align-rows``.
        rig_hint: the advice of :func:`raw_rig_hint`.
        swap_hint: how this command exchanges the views (:func:`swap_hint`), added to the advice for views
            that look swapped.
        rectified_by: the ``--rectify`` file the pair went through, whose pair is not advised to go through it.

    Returns:
        ``(findings, conclusive)``: the lines to warn by what they are about (``"same"`` for two identical views;
        else ``"swapped"`` or ``"rows"``, then ``"exposure"``; none when the pair looks fine), and whether the pair
        had enough matched features to be judged.
    """
    from ..models.sgbm import EXPOSURE_RATIO_LIMIT, resolved_sgbm_input
    from ..rectify import CALIBRATE_ADVICE, MIN_AGREEING_SHARE, MIN_MATCHES, check_rectification

    check = check_rectification(pair.left, pair.right)
    # Rows aligned and nothing swapped: the check found nothing to say. (Frames too plain to be judged, a stream's
    # blank start, can be alike without being one picture: the next frame is judged.)
    if check.conclusive and np.array_equal(pair.left, pair.right):
        return {
            "same": "left and right are the same picture (identical pixels: one video or camera given for both "
            "views, or a copy): the disparity is 0 everywhere; give the two cameras' views"
        }, True
    rows = check.warning()
    if rows and rectified_by:
        rows = rows.replace(CALIBRATE_ADVICE, _rectified_advice(rectified_by))
    if rows and check.sideways():  # turning the views is the advice: neither other hint can make them a pair
        pass
    elif rows and rig_hint and check.median_dx_px >= -1.0:
        rows += f"; {rig_hint}"
    elif rows and align_rows and check.judged_without_fit:  # no fitted rows: --align-rows had nothing to go by
        rows += (
            "; --align-rows left the pair as it was: it corrects one offset, roll or focal-length difference of a "
            "pixel or two, and none fits these rows"
        )
    elif rows and align_rows and check.median_dx_px >= -1.0:  # swapped views: swapping them is the advice
        rows += " after --align-rows; it corrects a pixel or two, this pair needs calibrating"
    elif rows and check.median_dx_px >= -1.0 and check.misalignment_px <= ALIGN_HINT_MAX_PX:
        if not check.judged_without_fit:  # rows that no one offset, roll or scale lines up: --align-rows cannot
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
    kind = "swapped" if check.conclusive and check.median_dx_px < -1.0 else "rows"
    if rows and kind == "swapped" and swap_hint:
        rows += f" ({swap_hint})"
    return {name: message for name, message in ((kind, rows), ("exposure", light)) if message}, check.conclusive


class StreamRectificationCheck(PreparationWrapper):
    """Capture-stage preparation that also checks that the frames are rectified (``video``, ``live``), on the
    first frame and again every :attr:`RECHECK_S` seconds of the stream.

    It wraps the stream's ``prepare``: the first prepared frame is handed to a thread of its own, which
    runs :func:`rectification_findings` and logs what it finds as warnings on the stream's logger; a frame
    too plain to be judged is followed by the next one prepared after the thread is done, up to
    :attr:`TRIES` frames. After that, a frame every :attr:`RECHECK_S` seconds of stream time (its
    ``timestamp_s``; :attr:`RECHECK_FRAMES` frames for a source without timestamps) is checked the same
    way, so that a camera knocked mid-run, or a video whose later part is aligned differently, is noticed:
    a finding the previous judged frame did not have is warned about once (a misalignment that lasts is not
    repeated), and a misalignment that goes away is said in a notice. The capture stage never waits for a
    check, so the stream's frame rate is that of its stages as before; :meth:`wait` lets the command say
    the warning before its summary.

    Args:
        prepare: the stream's own preparation (``None``: frames as they come).
        exposure: as :func:`rectification_warnings`.
        align_rows: as :func:`rectification_warnings` (``--align-rows``).
        rig_hint: as :func:`rectification_warnings`.
        logger: where the warnings go.
        name: what the warning names, as ``predict`` names a pair (``frame 0``).
        swap_hint: as :func:`rectification_findings`.
        rectified_by: as :func:`rectification_findings` (``--rectify``).
    """

    TRIES = 5
    RECHECK_S = 5.0  # seconds of stream time between the checks after the first judged frame
    RECHECK_FRAMES = 150  # frames between them for a source whose frames carry no timestamp

    def __init__(
        self,
        prepare: Callable[[StereoPair], StereoPair] | None,
        exposure: str = "on",
        align_rows: bool = False,
        rig_hint: str | None = None,
        logger: logging.Logger | None = None,
        name: str = "frame",
        swap_hint: str | None = None,
        rectified_by: str | None = None,
    ) -> None:
        self.prepare = prepare
        self.exposure, self.align_rows, self.rig_hint, self.swap_hint = exposure, align_rows, rig_hint, swap_hint
        self.rectified_by = rectified_by
        self.log = logger if logger is not None else logging.getLogger("rtstereo.stream")
        self.name = name
        self.tries = 0
        self.done = False  # the first judgement is made (or given up): from then on, the periodic checks
        self.stopped = False  # a check failed: no more
        self.checks = 0  # checks started, the first ones included
        self.findings: dict[str, str] = {}  # what the last judged frame showed, by kind
        self._since = 0  # frames prepared since the last check started
        self._since_s: float | None = None  # timestamp_s of the frame last checked
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()  # the last check's thread has left its work (OpenCV's among it)

    def __call__(self, pair: StereoPair) -> StereoPair:
        if self.prepare is not None:
            pair = self.prepare(pair)
        self._since += 1
        if self.stopped or (self._thread is not None and self._thread.is_alive()):
            return pair
        if not self.done:
            due = self.tries < self.TRIES
            self.tries += due
        elif pair.timestamp_s is not None and self._since_s is not None:
            # a timestamp that goes back (another range, a camera's clock reset) starts a new interval
            due = not 0 <= pair.timestamp_s - self._since_s < self.RECHECK_S
        else:
            due = self._since >= self.RECHECK_FRAMES
        if due:
            self.checks += 1
            self._since, self._since_s = 0, pair.timestamp_s
            frame = StereoPair(pair.left.copy(), pair.right.copy(), name=pair.name, index=pair.index)
            self._ended = ended = threading.Event()
            self._thread = threading.Thread(
                target=self._check_to_end, args=(frame, ended), name="rtstereo-rectification-check"
            )
            self._thread.daemon = True  # wait() is what the process waits for: Python's own join is cut by Ctrl-C
            self._thread.start()
        return pair

    def _check_to_end(self, pair: StereoPair, ended: threading.Event) -> None:
        try:
            self._check(pair)
        finally:
            ended.set()

    def _check(self, pair: StereoPair) -> None:
        try:
            findings, conclusive = rectification_findings(
                pair, self.exposure, self.align_rows, self.rig_hint, self.swap_hint, self.rectified_by
            )
        except Exception as exc:  # noqa: BLE001 - a check that fails must not stop the stream
            self.log.info("the rectification check of frame %s failed: %s", pair.index, exc)
            self.done = self.stopped = True
            return
        what = f"{self.name} {pair.index}" if pair.index is not None else self.name
        first = not self.done
        # An unjudged frame is no news (--align-rows says its own): the next one is tried (a later check: the
        # next one due).
        self.done = self.done or conclusive or self.tries >= self.TRIES
        if not conclusive:
            return
        from ..rectify import MAX_MISALIGNMENT_PX

        what = what if first else f"{what}, checked again"
        for kind, message in findings.items():
            if kind not in self.findings:  # once per change: a misalignment that lasts is said once
                self.log.warning("%s: %s", what, message)
        misread = {"rows", "swapped"}
        if not first and misread & self.findings.keys() and not misread & findings.keys():
            self.log.info("%s: the rows line up again (within %g px)", what, MAX_MISALIGNMENT_PX)
        self.findings = findings

    def wait(self, timeout_s: float = 10.0) -> None:
        """Wait for a check under way, so that its warning comes before the summary. One still running after
        ``timeout_s`` is said, and waited for, also through Ctrl-C (raised again once it is done): a daemon thread
        still inside OpenCV as the process exits made it abort ("terminate called without an active exception",
        exit code 134).
        """
        if self._thread is not None:
            wait_for_event_through_interrupts(
                self._ended,
                timeout_s,
                lambda: self.log.info("waiting for the rectification check of a frame to end"),
            )
