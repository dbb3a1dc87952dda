"""Stereo calibration files in and out of :class:`~rtstereo.types.Calibration`.

:func:`read_calibration` recognises the format from the file's content:

- **rtstereo JSON** (``{"format": "rtstereo.calibration", "fx_px": ..., "baseline_m": ...}``), as
  written by :func:`write_calibration` and ``rtstereo calibrate``.
- **OpenCV** YAML / XML / JSON written with ``cv2.FileStorage`` after ``cv2.stereoRectify``: the
  rectified projections ``P1``, ``P2`` (3x4), or the reprojection matrix ``Q`` (4x4; it cannot tell a vertical
  rig from a horizontal one, which is refused only from ``P1``/``P2`` or a ``T`` beside it); the image size
  from ``image_width``/``image_height`` or ``image_size``/``imageSize`` = ``[w, h]`` when present.
  OpenCV files carry no length unit: the baseline has the unit of the board's square size.
- **KITTI 2012** ``calib/NNNNNN.txt``: ``P0..P3`` 3x4 projections (``P0``/``P1`` the grey cameras,
  ``P2``/``P3`` the colour ones) and **KITTI 2015** ``calib_cam_to_cam/NNNNNN.txt``: ``P_rect_0N``
  and ``S_rect_0N`` (image size). For rectified projections ``P = K [I | t]``, ``t_x = (P[0, 3] - cx
  P[2, 3]) / fx`` is ``-x`` of the camera's centre, so the baseline is the difference of ``t_x`` between the two.
- **Middlebury** 2014 / ETH3D ``calib.txt``: ``cam0=[f 0 cx; 0 f cy; 0 0 1]``, ``cam1``, ``doffs``
  (= ``cx1 - cx0``), ``baseline`` in millimetres, ``width``, ``height``.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError, OutputError, missing_file_message, require_path, warn
from ..text import is_utf8
from ..types import (
    PLAUSIBLE_BASELINE_M,
    Calibration,
    CalibrationUnitWarning,
    require_calibration_type,
    warn_if_baseline_in_millimetres,
)
from .atomic import atomic_path, os_reason
from .download import fetch, file_url_path, is_url, read_downloaded, refuse_other_url

FORMAT_TAG = "rtstereo.calibration"
LENGTH_UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001}
MIN_PLAUSIBLE_BASELINE_MM = 1.0  # a Middlebury baseline below this is usually metres written where mm belong
MIN_PLAUSIBLE_FOCAL_PX = 1.0  # a focal length below this is usually normalised to the image size, not in pixels
OPENCV_SUFFIXES = (".yaml", ".yml", ".xml")
# A byte-order mark is not part of the text (Windows editors write one before UTF-8, PowerShell's `>` before
# UTF-16): read as UTF-8, it hid "cam0=" or "P0:" from the format's detection ("unknown calibration format")
# and made JSON and OpenCV refuse the file.
_BYTE_ORDER_MARKS = {codecs.BOM_UTF8: "utf-8-sig", codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16"}
_FIELDS = {f.name for f in dataclasses.fields(Calibration)}
_REQUIRED = {f.name for f in dataclasses.fields(Calibration) if f.default is dataclasses.MISSING}


_MIDDLEBURY = re.compile(r"^\s*cam0\s*=", re.MULTILINE)
_KITTI_2015 = re.compile(r"^\s*P_rect_0\d\s*:", re.MULTILINE)
_KITTI_2012 = re.compile(r"^\s*P\d\s*:", re.MULTILINE)


def _kitti_only(path: Path, cameras: tuple[int, int]) -> Calibration:
    """A KITTI calibration for the given cameras; any other file is refused (the cameras mean nothing there)."""
    if len(cameras) != 2 or not all(isinstance(c, int) and 0 <= c <= 3 for c in cameras) or cameras[0] == cameras[1]:
        raise InputError(f"KITTI cameras: expected two different numbers from 0 to 3, got {cameras}")
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read calibration file {path}: {exc}") from None
    if not (_KITTI_2015.search(text) or _KITTI_2012.search(text)):
        raise InputError(f"{path} is not a KITTI calibration file: the KITTI cameras apply to those only")
    return _from_kitti(_kitti_matrices(text), path, cameras, text)


def read_calibration(
    path: str | Path, *, length_unit: str | None = None, kitti_cameras: tuple[int, int] | None = None
) -> Calibration:
    """Read a rectified stereo calibration from any of the formats above.

    Args:
        path: the calibration file; a ``file://`` URL is read in place, an http(s) URL downloaded once into the
            cache, as images are.
        length_unit: unit of the lengths in OpenCV files (``m``, ``cm`` or ``mm``); ``None`` takes
            the file's ``length_unit`` entry (``rtstereo calibrate`` writes one), else metres; a unit
            that contradicts the file's entry is refused. Other
            formats state their unit and ignore it.
        kitti_cameras: the KITTI cameras of the pair, ``(left, right)``: ``(0, 1)`` grey (the
            default for KITTI 2012, whose ground truth belongs to camera 0) or ``(2, 3)`` colour (the
            default for KITTI 2015).

    Returns:
        The :class:`~rtstereo.types.Calibration` (``width_px``/``height_px`` 0 when the file has no
        image size).

    Raises:
        InputError: missing file, unknown format, or missing / inconsistent values.
    """
    if isinstance(path, str):  # as a path, a URL had been "calibration file not found: http:/host/calib.txt"
        refuse_other_url(path, "calibration file")
        if is_url(path) and file_url_path(path) is None:
            # A web page in place of the file was named by its cache file, and kept: a rerun read it again.
            return read_downloaded(
                path, lambda local: read_calibration(local, length_unit=length_unit, kitti_cameras=kitti_cameras)
            )
        path = fetch(path) if is_url(path) else path
    path = require_path(path, "calibration file")
    calibration = _read_calibration(path, length_unit, kitti_cameras)
    if calibration.fx_px < MIN_PLAUSIBLE_FOCAL_PX or calibration.fy_px < MIN_PLAUSIBLE_FOCAL_PX:
        # a view wider than 179 degrees: intrinsics divided by the image size, as some tools keep them, read as pixels
        warn(
            f"{path}: focal lengths of {calibration.fx_px:.4g} px (fx) and {calibration.fy_px:.4g} px (fy) are read in "
            "pixels, as every calibration format gives them: values normalised to the image size (fractions of its "
            "width and height) make every depth as many times too near as the images are pixels wide; give fx and cx "
            "times the width, fy and cy times the height",
            CalibrationUnitWarning,
        )
    return calibration


def _read_calibration(path: Path, length_unit: str | None, kitti_cameras: tuple[int, int] | None) -> Calibration:
    """:func:`read_calibration` of a local path."""
    if not path.is_file():
        if path.is_dir():
            raise InputError(f"calibration file is a folder, not a file: {path}{rig_folder_hint(path)}")
        raise InputError(missing_file_message("calibration file", path))
    check_length_unit(length_unit)
    if kitti_cameras is not None:
        return _kitti_only(path, kitti_cameras)
    suffix = path.suffix.lower()
    if suffix in OPENCV_SUFFIXES:
        return _from_opencv(path, length_unit)
    if suffix == ".npz" or _first_bytes(path, 4) == b"PK\x03\x04":
        raise InputError(
            f"{path} is a zip/npz archive, not a calibration file: rectification maps.npz (from `rtstereo calibrate`) "
            "go to --rectify (rtstereo.rectify.Rectifier.from_file), which also gives the calibration"
        )
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read calibration file {path}: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict) and (data.get("format") == FORMAT_TAG or "fx_px" in data):
            return calibration_from_dict(data, source=str(path))
        if not isinstance(data, dict):
            raise InputError(
                f"{path}: the JSON holds a {type(data).__name__}, not a calibration: expected an object with "
                "rtstereo's fields (fx_px, fy_px, cx0_px, cx1_px, cy_px, baseline_m) or OpenCV's P1/P2 or Q"
            )
        return _from_opencv(path, length_unit)
    if text.lstrip().startswith("%YAML") or text.lstrip().startswith("<?xml"):
        return _from_opencv(path, length_unit)
    if _MIDDLEBURY.search(text):
        return _from_middlebury(text, path)
    if _KITTI_2015.search(text):
        return _from_kitti(_kitti_matrices(text), path, kitti_cameras or (2, 3), text)
    if _KITTI_2012.search(text):
        return _from_kitti(_kitti_matrices(text), path, kitti_cameras or (0, 1), text)
    raise InputError(
        f"{path}: unknown calibration format; expected rtstereo JSON, an OpenCV YAML/XML/JSON with P1/P2 "
        "or Q, a KITTI calib file (P0..P3 or P_rect_02/03) or a Middlebury calib.txt (cam0=, cam1=, "
        "baseline=)"
    )


def rig_folder_hint(folder: Path) -> str:
    """For a folder given where a calibration file belongs: which of its files to give, when it holds what ``rtstereo
    calibrate -o FOLDER`` writes (``--rectify rig/`` was only "a folder, not a file"); else ``""``."""
    found = [name for name in ("maps.npz", "calibration.json") if (folder / name).is_file()]
    if not found:
        return ""
    options = {"maps.npz": "--rectify {} for raw pairs", "calibration.json": "--calib {} for pairs rectified already"}
    return "; it holds the output of rtstereo calibrate: " + ", ".join(
        options[name].format(folder / name) for name in found
    )


def rectified_format(path: str | Path) -> str | None:
    """The rectified-calibration format a file other than OpenCV YAML/XML holds, by content: ``"rtstereo
    JSON"``, ``"Middlebury calib.txt"``, ``"KITTI calib"``, or ``None`` (OpenCV, or not one of these).

    Such files describe images rectified already (:func:`read_calibration`); they cannot rectify raw ones.
    """
    path = Path(path)
    if path.suffix.lower() in OPENCV_SUFFIXES:
        return None
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError):
        return None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        ours = isinstance(data, dict) and (data.get("format") == FORMAT_TAG or "fx_px" in data)
        return "rtstereo JSON" if ours else None
    if _MIDDLEBURY.search(text):
        return "Middlebury calib.txt"
    if _KITTI_2015.search(text) or _KITTI_2012.search(text):
        return "KITTI calib"
    return None


def kitti_default_cameras(path: str | Path) -> tuple[int, int] | None:
    """The cameras :func:`read_calibration` reads a KITTI file for when none are given: ``(0, 1)`` (grey) for
    KITTI 2012 ``calib/NNNNNN.txt``, ``(2, 3)`` (colour) for KITTI 2015 ``calib_cam_to_cam``; ``None`` for
    any other file."""
    if rectified_format(path) != "KITTI calib":
        return None
    text = _read_text(Path(path))
    return (2, 3) if _KITTI_2015.search(text) else (0, 1)


def _read_text(path: Path) -> str:
    """The text of a file in UTF-8, or in the encoding its byte-order mark names, without the mark."""
    data = path.read_bytes()
    encoding = next((name for mark, name in _BYTE_ORDER_MARKS.items() if data.startswith(mark)), "utf-8")
    return data.decode(encoding, "replace")


def _first_bytes(path: Path, count: int) -> bytes:
    """The first ``count`` bytes of a file; none where it cannot be read."""
    try:
        with path.open("rb") as f:
            return f.read(count)
    except OSError:
        return b""


def _json_value(value: object) -> bool:
    """Whether ``json.dumps`` writes ``value``."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def write_calibration(path: str | Path, calibration: Calibration, **extra: object) -> Path:
    """Write a calibration as rtstereo JSON (``.json``) or OpenCV YAML/XML (``P1``, ``P2``, ``Q``, and
    ``length_unit: m``).

    Args:
        path: the output file; its suffix picks the format.
        calibration: what to write.
        **extra: further JSON-serialisable entries (rtstereo JSON only), e.g. ``rms_px``.

    Returns:
        The path written.

    Raises:
        InputError: ``calibration`` is no :class:`Calibration`, or an ``extra`` entry would replace one of its
            fields (or the format tag), or cannot be written as JSON (a dict failed with ``asdict() should be
            called on dataclass instances``, an object with json's ``TypeError``; ``fx_px=...`` replaced the focal
            length written).
        OutputError: another suffix, or the file cannot be written.
    """
    path = require_path(path, "calibration file to write")
    calibration = require_calibration_type(calibration)
    reserved = sorted(extra.keys() & {"format", "version", *(f.name for f in dataclasses.fields(Calibration))})
    if reserved:
        raise InputError(
            f"extra entries {', '.join(reserved)} would replace the calibration's own: name them otherwise"
        )
    unwritable = [key for key, value in extra.items() if not _json_value(value)]
    if unwritable:
        raise InputError(f"extra entries {', '.join(unwritable)}: expected values JSON can hold (numbers, text, lists)")
    suffix = path.suffix.lower()
    if suffix != ".json" and suffix not in OPENCV_SUFFIXES:
        raise OutputError(f"calibration file {path} must end in .json, .yaml, .yml or .xml")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as partial:
            if suffix == ".json":
                data = {"format": FORMAT_TAG, "version": 1, **dataclasses.asdict(calibration), **extra}
                partial.write_text(json.dumps(data, indent=2) + "\n")
            else:
                # length_unit: a --calib-unit mm given with the file later is refused, not applied to metres
                write_opencv(
                    partial,
                    projection_matrices(calibration),
                    calibration.width_px,
                    calibration.height_px,
                    length_unit="m",
                )
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_reason(exc, path)}") from None
    return path


def calibration_from_dict(data: dict, source: str = "calibration") -> Calibration:
    """A calibration from rtstereo's JSON fields (``fx_px``, ..., ``baseline_m``)."""
    values = {k: v for k, v in data.items() if k in _FIELDS}
    missing = sorted(_REQUIRED - values.keys())
    if missing:
        fields = dataclasses.fields(Calibration)
        raise InputError(
            f"{source}: missing calibration field(s) {', '.join(missing)} "
            f"(required: {', '.join(f.name for f in fields if f.name in _REQUIRED)}; "
            f"optional: {', '.join(f.name for f in fields if f.name not in _REQUIRED)})"
        )
    flags = sorted(k for k, v in values.items() if isinstance(v, bool))
    if flags:  # float(true) is 1.0: a focal length of 1 px, taken without a word
        raise InputError(f"{source}: calibration fields must be numbers, got true or false for {', '.join(flags)}")
    try:
        floats = {k: float(values[k]) for k in _REQUIRED}
        # float, not int: a size of 640.5 is refused by Calibration instead of cut to 640.
        sizes = {k: float(values[k]) for k in ("width_px", "height_px") if k in values}
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a whole number beyond any float
        raise InputError(f"{source}: calibration fields must be numbers ({exc})") from None
    calibration = _calibration(source, **floats, **sizes)
    warn_if_baseline_in_millimetres(calibration.baseline_m, source)
    return calibration


def projection_matrices(calibration: Calibration) -> dict[str, np.ndarray]:
    """``P1``, ``P2`` (3x4) and ``Q`` (4x4) as ``cv2.stereoRectify`` would give for this calibration."""
    c = calibration
    p1 = np.array([[c.fx_px, 0, c.cx0_px, 0], [0, c.fy_px, c.cy_px, 0], [0, 0, 1, 0]], dtype=np.float64)
    p2 = p1.copy()
    p2[0, 2] = c.cx1_px
    p2[0, 3] = -c.fx_px * c.baseline_m
    tx = -c.baseline_m  # OpenCV's Tx: x of the left centre seen from the right camera
    q = np.array(
        [
            [1, 0, 0, -c.cx0_px],
            [0, 1, 0, -c.cy_px],
            [0, 0, 0, c.fx_px],
            [0, 0, -1 / tx, (c.cx0_px - c.cx1_px) / tx],
        ],
        dtype=np.float64,
    )
    return {"P1": p1, "P2": p2, "Q": q}


def write_opencv(
    path: str | Path,
    matrices: dict[str, np.ndarray],
    width_px: int = 0,
    height_px: int = 0,
    **scalars: float | str,
) -> Path:
    """Write matrices (and scalars) with ``cv2.FileStorage``; the suffix picks YAML, XML or JSON. Written under
    a temporary name (the suffix kept) and renamed, so an interrupted write leaves no partial file under ``path``.
    """
    import cv2

    path = require_path(path, "OpenCV file to write")
    if not path.parent.is_dir():  # OpenCV printed its own error, naming the hidden temporary file, then failed
        missing = FileNotFoundError(2, "No such file or directory")
        raise OutputError(f"cannot write {path}: {os_reason(missing, path)}")
    with atomic_path(path) as partial:
        # OpenCV crashed (a segmentation fault) on a name that is not UTF-8 (Linux names are bytes): such a
        # file is written in memory, its format picked by the suffix alone, and saved by Python.
        in_memory = not is_utf8(partial)
        if in_memory:
            fs = cv2.FileStorage("".join(partial.suffixes[-1:]), cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_MEMORY)
        else:
            fs = cv2.FileStorage(str(partial), cv2.FILE_STORAGE_WRITE)
        if not fs.isOpened():
            raise OutputError(f"cannot write {path}: OpenCV could not open it for writing")
        try:
            if width_px and height_px:
                fs.write("image_width", int(width_px))
                fs.write("image_height", int(height_px))
            for name, value in scalars.items():
                fs.write(name, value)
            for name, matrix in matrices.items():
                fs.write(name, np.asarray(matrix, dtype=np.float64))
        finally:
            text = fs.releaseAndGetString() if in_memory else fs.release()
        if in_memory:
            partial.write_text(text, encoding="utf-8")
    return path


class NoNamedEntriesError(InputError):
    """An OpenCV file that is empty or holds a list or a value (:func:`read_opencv`); :attr:`what` says which, so
    that a reader that needs other matrices than ``--calib``'s names its own."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(
            f"{path} {what}: expected an OpenCV FileStorage file of named matrices (P1, P2 or Q; K1, D1, K2, D2, R, T)"
        )
        self.what = what


class OpenCVFile(NamedTuple):
    """What :func:`read_opencv` found: matrices, image size ``(width, height)`` (0 if absent), texts."""

    matrices: dict[str, np.ndarray]
    size_wh: tuple[int, int]
    texts: dict[str, str]


# How OpenCV 4 tells a FileStorage text's format; OpenCV 5 takes a text without any of them for YAML.
_STORAGE_SIGNATURES = ("%YAML", "<?xml", "{")
_YAML_DIRECTIVE = "%YAML:1.0\n"
# OpenCV's parse errors: "OpenCV(4.10.0) /path/persistence_yml.cpp:871: error: (-212:Parsing error) parse in function
# '(4): Invalid or unsupported syntax'": the line number and the reason, without OpenCV's source file and its codes
_PARSE_LINE = re.compile(r"in function '.*?\((\d+)\): (.*?)'?$")  # XML's names the file: '/a/b.xml(4): ...'


def _open_storage(path: Path):
    """``cv2.FileStorage`` reading ``path``, or an :class:`InputError` naming OpenCV's reason.

    YAML without a ``%YAML`` line (ROS camera_info files, YAML written by hand or by other tools) is read on
    OpenCV 4 too, which refuses such a text as 'invalid' where OpenCV 5 reads it as YAML.
    """
    import cv2

    def text_of() -> str:
        try:
            return _read_text(path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None

    def refused(exc: Exception, lines_added: int = 0) -> InputError:
        cause = exc.__cause__ or exc  # a parse error surfaces as SystemError
        # OpenCV's reason is its last line; an error without text (it gave IndexError) is named by its type
        lines = str(cause).strip().splitlines()
        reason = lines[-1].strip() if lines else type(cause).__name__
        parsed = _PARSE_LINE.search(reason)
        reason = f"line {int(parsed[1]) - lines_added}: {parsed[2]}" if parsed else reason
        return InputError(f"{path}: OpenCV cannot parse it as YAML/XML/JSON ({reason})")

    try:
        if is_utf8(path) and not _first_bytes(path, 3).startswith(tuple(_BYTE_ORDER_MARKS)):
            return cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        # OpenCV crashed on a name that is not UTF-8, and refuses a byte-order mark: the text is read by Python
        # (without the mark) and parsed in memory
        return cv2.FileStorage(text_of(), cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except (cv2.error, SystemError) as exc:
        text = text_of()
        if text.lstrip().startswith(_STORAGE_SIGNATURES):
            raise refused(exc) from None
    try:
        return cv2.FileStorage(_YAML_DIRECTIVE + text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except (cv2.error, SystemError) as exc:
        raise refused(exc, lines_added=1) from None


def read_opencv(path: str | Path) -> OpenCVFile:
    """The matrices, image size and text entries of an OpenCV ``FileStorage`` file."""
    import cv2

    path = require_path(path, "OpenCV file")
    fs = _open_storage(path)
    if not fs.isOpened():
        raise InputError(f"{path}: OpenCV cannot open it as a YAML/XML/JSON FileStorage file")
    try:
        root = fs.root()
        if not root.isMap():  # keys() of an empty file, or of a list, failed with an OpenCV assertion
            what = "is empty" if root.isNone() or root.size() == 0 else "holds a list or a value, not named entries"
            raise NoNamedEntriesError(path, what)
        matrices, scalars, texts = {}, {}, {}
        for key in root.keys():
            node = root.getNode(key)
            if node.isMap():
                try:
                    matrix = node.mat()
                except cv2.error:  # a map that is no opencv-matrix (a ROS camera_info's rows/cols/data, no dt)
                    if not node.getNode("dt").empty():  # one that says it is, but is damaged
                        raise InputError(
                            f"{path}: {key} is not a readable matrix (its rows x cols disagree with its data, or its "
                            "dt is unknown)"
                        ) from None
                    matrix = None
                if matrix is not None:
                    matrices[key] = np.asarray(matrix, dtype=np.float64)
            elif node.isSeq():
                scalars[key] = [node.at(i).real() for i in range(node.size())]
            elif node.isReal() or node.isInt():
                scalars[key] = node.real()
            elif node.isString():
                texts[key] = node.string()
    finally:
        fs.release()
    size = (0, 0)
    if ("image_width" in scalars) != ("image_height" in scalars):  # one alone was taken for no size
        raise InputError(f"{path}: image_width and image_height go together, and it holds only one of them")
    if "image_width" in scalars and "image_height" in scalars:
        size = (int(scalars["image_width"]), int(scalars["image_height"]))
    for key in ("image_size", "imageSize"):
        value = scalars.get(key, matrices.get(key))
        if value is not None and np.size(value) == 2:
            size = tuple(int(v) for v in np.ravel(value))
    return OpenCVFile(matrices, size, texts)


def calibration_from_projections(
    p1: np.ndarray,
    p2: np.ndarray,
    width_px: int = 0,
    height_px: int = 0,
    source: str = "calibration",
    metres_per_unit: float = 1.0,
) -> Calibration:
    """A calibration from two rectified 3x4 projection matrices of a horizontal pair.

    ``P[0, 3] / P[0, 0]`` is minus the camera centre's x in the rectified frame, so the baseline is
    ``(P1[0, 3] - P2[0, 3]) / fx`` (in the unit of the translation, times ``metres_per_unit``).
    """
    p1, p2 = np.asarray(p1, dtype=np.float64), np.asarray(p2, dtype=np.float64)
    if p1.shape != (3, 4) or p2.shape != (3, 4):
        raise InputError(f"{source}: projection matrices must be 3x4, got {p1.shape} and {p2.shape}")
    for name, p in (("P1", p1), ("P2", p2)):  # nan came out as a baseline of nan, "left and right are swapped"
        if not np.isfinite(p).all():
            raise InputError(f"{source}: the projection matrix {name} holds values that are not finite (nan or inf)")
    fx = p1[0, 0]
    if not (fx > 0 and p1[1, 1] > 0):
        raise InputError(f"{source}: focal lengths in the projection matrix must be > 0, got {p1[0, 0]}, {p1[1, 1]}")
    if not np.isclose(p2[0, 0], fx, rtol=1e-6) or not np.isclose(p2[1, 2], p1[1, 2], atol=1e-6):
        raise InputError(
            f"{source}: the two projections have different focal lengths ({fx} vs {p2[0, 0]}) or "
            f"rows ({p1[1, 2]} vs {p2[1, 2]}): these cameras are not rectified"
        )
    if abs(p2[1, 3] - p1[1, 3]) > abs(p2[0, 3] - p1[0, 3]):
        raise InputError(
            f"{source}: the cameras are displaced vertically (P2[1,3] = {p2[1, 3]}): vertical stereo "
            "is not supported; rotate the images by 90 degrees and calibrate again"
        )
    baseline = (p1[0, 3] - p2[0, 3]) / fx * metres_per_unit
    if not baseline > 0:
        raise InputError(
            f"{source}: the baseline comes out as {baseline:.6g} (from P[0,3] = {p1[0, 3]:.6g}, "
            f"{p2[0, 3]:.6g}); a negative baseline means left and right are swapped"
        )
    return _checked(
        _calibration(
            source,
            fx_px=float(fx),
            fy_px=float(p1[1, 1]),
            cx0_px=float(p1[0, 2]),
            cx1_px=float(p2[0, 2]),
            cy_px=float(p1[1, 2]),
            baseline_m=float(baseline),
            width_px=int(width_px),
            height_px=int(height_px),
        ),
        source,
    )


def calibration_from_q(
    q: np.ndarray,
    width_px: int = 0,
    height_px: int = 0,
    source: str = "calibration",
    metres_per_unit: float = 1.0,
) -> Calibration:
    """A calibration from the 4x4 reprojection matrix ``Q`` of ``cv2.stereoRectify``.

    ``Q = [[1, 0, 0, -cx0], [0, 1, 0, -cy], [0, 0, 0, f], [0, 0, -1/Tx, (cx0 - cx1)/Tx]]`` with
    ``Tx = -baseline``. ``Q`` holds one focal length, so ``fy_px = fx_px``.

    ``Q`` does not say along which axis the cameras lie: ``cv2.stereoRectify`` writes the same layout for a rig
    whose cameras sit one above the other (``-1/Ty`` where ``-1/Tx`` is, and ``(cy0 - cy1)/Ty`` last), identical
    with ``CALIB_ZERO_DISPARITY``. A vertical rig's ``Q`` is read as a horizontal one's, with no word:
    :func:`read_calibration` refuses it only when the file also holds the pose ``T``, or ``P1``/``P2``.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (4, 4):
        raise InputError(f"{source}: Q must be 4x4, got {q.shape}")
    if q[3, 2] == 0:
        raise InputError(f"{source}: Q[3,2] is 0, so Q holds no baseline (expected -1/Tx)")
    tx = -1.0 / q[3, 2]
    fx = q[2, 3]
    cx0 = -q[0, 3]
    if not -tx > 0:
        raise InputError(
            f"{source}: Q gives a baseline of {-tx * metres_per_unit:.6g} (Q[3,2] = {q[3, 2]:.6g}); it must be > 0: "
            "left and right are swapped, or Q follows another sign convention than cv2.stereoRectify's "
            "(Q[3,2] = -1/Tx with Tx = -baseline)"
        )
    return _checked(
        _calibration(
            source,
            fx_px=float(fx),
            fy_px=float(fx),
            cx0_px=float(cx0),
            cx1_px=float(cx0 - q[3, 3] * tx),
            cy_px=float(-q[1, 3]),
            baseline_m=float(-tx * metres_per_unit),
            width_px=int(width_px),
            height_px=int(height_px),
        ),
        source,
    )


def _calibration(source: str, **values: float) -> Calibration:
    """``Calibration(**values)``, whose errors name the file (``source``) the values come from."""
    try:
        return Calibration(**values)
    except InputError as exc:
        raise InputError(f"{source}: {str(exc).removeprefix('calibration: ')}") from None


def _checked(calibration: Calibration, source: str) -> Calibration:
    if calibration.baseline_m > PLAUSIBLE_BASELINE_M:
        warn(
            f"{source}: baseline of {calibration.baseline_m:.4g} m; if the file's lengths are in millimetres "
            "read it with length_unit='mm' (--calib-unit mm)",
            CalibrationUnitWarning,
        )
    return calibration


def check_length_unit(length_unit: str | None) -> None:
    """Refuse a length unit other than ``m``, ``cm``, ``mm`` (``None``, the file's own, is fine)."""
    if length_unit is not None and length_unit not in LENGTH_UNITS_M:
        raise InputError(f"unknown length unit '{length_unit}' (expected one of: {', '.join(LENGTH_UNITS_M)})")


def opencv_metres_per_unit(path: Path, texts: dict[str, str], length_unit: str | None) -> float:
    """Metres per length unit of an OpenCV file: its ``length_unit`` entry, else ``length_unit``, else metres.

    Raises:
        InputError: ``length_unit`` contradicts the file's entry, or the entry is not a known unit.
    """
    recorded = texts.get("length_unit")
    if length_unit is not None and recorded is not None and length_unit != recorded:
        raise InputError(
            f"{path} says its lengths are in {recorded} (length_unit), but {length_unit} was given (--calib-unit): "
            "leave the unit out for files that record theirs"
        )
    unit = length_unit or recorded or "m"
    if unit not in LENGTH_UNITS_M:
        raise InputError(f"{path}: unknown length_unit '{unit}' (expected one of: {', '.join(LENGTH_UNITS_M)})")
    return LENGTH_UNITS_M[unit]


def _from_opencv(path: Path, length_unit: str | None) -> Calibration:
    matrices, (width, height), texts = read_opencv(path)
    metres_per_unit = opencv_metres_per_unit(path, texts, length_unit)
    if "P1" in matrices and "P2" in matrices:
        return calibration_from_projections(matrices["P1"], matrices["P2"], width, height, str(path), metres_per_unit)
    if "Q" in matrices:
        translation = matrices.get("T")
        if translation is not None and translation.size == 3:
            t_x, t_y = np.abs(translation.reshape(3)[:2])
            # OpenCV writes one Q for a rig whose cameras sit side by side and one whose cameras sit one above the
            # other: only the pose T, when the file keeps it, tells them apart
            if t_y > t_x:
                pose = ", ".join(f"{value:.6g}" for value in translation.ravel())
                raise InputError(
                    f"{path}: the cameras are displaced vertically (T = {pose}), which its Q, read "
                    "as a horizontal rig's, cannot say: vertical stereo is not supported; rotate the images by 90 "
                    "degrees and calibrate again"
                )
        return calibration_from_q(matrices["Q"], width, height, str(path), metres_per_unit)
    if {"K1", "K2", "R", "T"} <= matrices.keys() or {"M1", "M2", "R", "T"} <= matrices.keys():
        raise InputError(
            f"{path} holds an unrectified calibration (K1, K2, R, T) but no rectified P1/P2 or Q: rectify "
            "the images with it first (rtstereo.rectify.Rectifier.from_file(path), or --rectify on the "
            "command line)"
        )
    if "camera_name" in texts or "distortion_model" in texts:
        raise InputError(
            f"{path} looks like a ROS camera_info file, which holds one camera: rtstereo reads stereo calibrations "
            "that hold both (OpenCV YAML with P1/P2 or Q, KITTI, Middlebury calib.txt, rtstereo JSON); write one "
            "from the two cameras' projection matrices (rtstereo.io.calibration.calibration_from_projections)"
        )
    raise InputError(
        f"{path}: no P1/P2 or Q matrix found (has: {', '.join(sorted(matrices)) or 'no matrices'}); "
        "expected the output of cv2.stereoRectify"
    )


def _kitti_matrices(text: str) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep or not rest.strip():
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue  # calib_cam_to_cam.txt starts with "calib_time: 09-Jan-2012 13:57:47"
    return values


def _from_kitti(values: dict[str, np.ndarray], path: Path, cameras: tuple[int, int], text: str) -> Calibration:
    rect = "P_rect_0" in text
    names = [f"P_rect_0{c}" if rect else f"P{c}" for c in cameras]
    for name in names:
        if name not in values:
            # A file of the colour cameras' P2, P3 alone was refused for P0 without a word of --kitti-cameras
            prefix = "P_rect_0" if rect else "P"
            held = [(a, b) for a, b in ((0, 1), (2, 3)) if f"{prefix}{a}" in values and f"{prefix}{b}" in values]
            hint = ""
            if held:
                a, b = held[0]
                hint = f"; it holds cameras {a} and {b}: --kitti-cameras {a},{b} (kitti_cameras=({a}, {b}))"
            raise InputError(f"{path}: KITTI calibration without {name} (has: {', '.join(sorted(values))}){hint}")
        if values[name].size != 12:
            raise InputError(f"{path}: {name} has {values[name].size} numbers, expected 12 (a 3x4 matrix)")
        if not np.isfinite(values[name]).all():  # named here: calibration_from_projections calls them P1, P2
            raise InputError(f"{path}: the projection matrix {name} holds values that are not finite (nan or inf)")
    width = height = 0
    size = values.get(f"S_rect_0{cameras[0]}")
    if rect and size is not None and size.size == 2:
        width, height = round(size[0]), round(size[1])
    p_left, p_right = (values[n].reshape(3, 4).copy() for n in names)
    # KITTI's colour projections P = K [I | t] carry small y/z offsets of the camera centre relative to
    # camera 0, which do not change disparity along rows; but P[0, 3] = fx * t_x + cx * t_z, so the t_z part
    # is taken out first: left in, cameras 2 and 3's unequal t_z made 000070's colour baseline 0.18 % short.
    for p in (p_left, p_right):
        p[0, 3] -= p[0, 2] * p[2, 3]
        p[1:, 3] = 0
    return calibration_from_projections(p_left, p_right, width, height, str(path))


def _matrix_3x3(text: str, key: str, path: Path) -> np.ndarray:
    numbers = re.sub(r"[\[\];,]", " ", text).split()
    try:
        matrix = np.array([float(v) for v in numbers], dtype=np.float64)
    except ValueError:
        matrix = np.empty(0)
    if matrix.size != 9:
        raise InputError(f"{path}: {key} must be a 3x3 matrix '[f 0 cx; 0 f cy; 0 0 1]', got '{text}'")
    return matrix.reshape(3, 3)


def _from_middlebury(text: str, path: Path) -> Calibration:
    entries = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            entries[key.strip()] = value.strip()
    missing = [k for k in ("cam0", "cam1", "baseline") if k not in entries]
    if missing:
        raise InputError(
            f"{path}: Middlebury calib.txt without {', '.join(missing)} "
            "(expected cam0=[...], cam1=[...], doffs=, baseline= in mm, width=, height=)"
        )
    cam0, cam1 = _matrix_3x3(entries["cam0"], "cam0", path), _matrix_3x3(entries["cam1"], "cam1", path)
    try:
        baseline_mm = float(entries["baseline"])
        width, height = float(entries.get("width", 0)), float(entries.get("height", 0))  # whole: Calibration checks
        doffs = float(entries["doffs"]) if "doffs" in entries else None
    except ValueError as exc:
        raise InputError(f"{path}: a Middlebury calibration value is not a number ({exc})") from None
    if ("width" in entries) != ("height" in entries):
        raise InputError(f"{path}: Middlebury calib.txt with width= but no height=, or the other way round: give both")
    if not baseline_mm > 0:
        raise InputError(
            f"{path}: baseline={entries['baseline']} (Middlebury calib.txt gives it in millimetres) must be > 0 "
            "millimetres; a negative one means left and right are swapped"
        )
    same = np.isclose([cam1[0, 0], cam1[1, 1], cam1[1, 2]], [cam0[0, 0], cam0[1, 1], cam0[1, 2]], rtol=1e-6, atol=1e-2)
    if not same.all():
        raise InputError(
            f"{path}: cam0 and cam1 differ in focal length (fx {cam0[0, 0]:g} vs {cam1[0, 0]:g}, fy {cam0[1, 1]:g} vs "
            f"{cam1[1, 1]:g}) or row (cy {cam0[1, 2]:g} vs {cam1[1, 2]:g}): these cameras are not rectified"
        )
    if baseline_mm < MIN_PLAUSIBLE_BASELINE_MM:
        warn(
            f"{path}: baseline={entries['baseline']} is read in millimetres, as Middlebury calib.txt gives it: a "
            f"rig {baseline_mm:g} mm wide is implausible, and depths would be 1000x too near if it is in metres; "
            f"write it in millimetres (baseline={baseline_mm * 1000:g})",
            CalibrationUnitWarning,
        )
    if doffs is not None and not np.isclose(cam1[0, 2] - cam0[0, 2], doffs, atol=1e-2):
        raise InputError(f"{path}: doffs={doffs} disagrees with cam1 cx - cam0 cx = {cam1[0, 2] - cam0[0, 2]:.3f}")
    return _calibration(
        str(path),
        fx_px=float(cam0[0, 0]),
        fy_px=float(cam0[1, 1]),
        cx0_px=float(cam0[0, 2]),
        cx1_px=float(cam1[0, 2]),
        cy_px=float(cam0[1, 2]),
        baseline_m=baseline_mm / 1000.0,
        width_px=width,
        height_px=height,
    )
