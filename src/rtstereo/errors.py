"""One exception family for the whole package.

Library code raises these; only the command line turns them into one line on stderr and exit code 2.
Every message says what was expected, what was received, and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import numbers
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn


class RtStereoError(Exception):
    """Base class of every error rtstereo raises on purpose."""


class InputError(RtStereoError, ValueError):
    """An input (image, array, argument value) is missing, unreadable or of the wrong shape."""


class SettingError(InputError):
    """A setting out of its range, by name: the command line names its own option for it.

    Attributes:
        setting: the setting's name (a field of the configuration that refused it).
        detail: what was expected and what was given, without the name.

    Examples:
        >>> str(SettingError("lr", "expected a learning rate > 0, got -1"))
        'lr: expected a learning rate > 0, got -1'
    """

    def __init__(self, setting: str, detail: str):
        super().__init__(f"{setting}: {detail}")
        self.setting, self.detail = setting, detail


class ModelNotFoundError(RtStereoError, KeyError):
    """A model name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(RtStereoError):
    """A weights file that is missing, truncated, or not of the expected architecture/format."""


class DatasetError(RtStereoError):
    """A dataset folder of no known layout, or with missing files."""


class OutputError(RtStereoError):
    """An output path that cannot be written."""


class DisparityRangeError(OutputError):
    """A disparity map beyond what a file format holds (a 16-bit PNG: below 256 px).

    Attributes:
        max_disparity_px: the largest disparity of the map, pixels.
    """

    def __init__(self, message: str, max_disparity_px: float):
        super().__init__(message)
        self.max_disparity_px = max_disparity_px


class MissingDependencyError(RtStereoError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class EngineError(RtStereoError):
    """A distributed engine (Ray) that cannot be started or reached, or whose run broke down."""


class ExportError(RtStereoError):
    """An export that failed or whose parity check is outside tolerance."""


# What the system says of a full disk or quota, in an error's message: words, not the exception, since they also come
# back in a Ray worker's row and in the OutputError that wraps the OSError.
DISK_FULL_REASONS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def disk_full_reason(message: str) -> str | None:
    """The system's reason when ``message`` tells of a full disk or quota (``No space left on device``), else ``None``:
    a failure of the run, not of its arguments (the command line exits with 1 for it, not the usage error's 2).

    Examples:
        >>> disk_full_reason("cannot write out/a.pfm: [Errno 28] No space left on device")
        'No space left on device'
        >>> disk_full_reason("cannot write out/a.pfm: Permission denied") is None
        True
    """
    return next((reason for reason in DISK_FULL_REASONS if reason in message), None)


class RtStereoWarning(UserWarning):
    """Base class of every warning rtstereo gives (its own categories, such as ``CalibrationWarning``, derive from
    it): ``warnings.filterwarnings("ignore", category=rtstereo.RtStereoWarning)`` silences rtstereo alone.
    Neither a module filter nor a category told them apart before: :func:`warn` attributes each warning to the
    caller's line, and most were plain ``UserWarning``."""


def require_number(value: Any, name: str, expected: str = "a number") -> float:
    """``value`` as a float when it is a real number (a numpy scalar too), else an :class:`InputError` that
    names ``name`` and ``expected``: a string such as ``"0.3"``, ``None`` or a bool would otherwise fail in a
    comparison with a bare ``TypeError``, or pass as 1. The range is the caller's to check.

    Examples:
        >>> require_number(2, "alpha")
        2.0
        >>> require_number("0.3", "alpha", "a weight in (0, 1]")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: alpha: expected a weight in (0, 1], got str '0.3'
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name}: expected {expected}, got {type(value).__name__} {value!r:.80}")
    return float(value)


def require_whole(value: Any, name: str, expected: str = "a whole number") -> int:
    """``value`` as an int when it is a whole number (an int or a numpy integer), else an :class:`InputError` as
    :func:`require_number`'s: ``1.5`` frames would otherwise be cut to 1 without a word.

    Examples:
        >>> require_whole(3, "hold_frames")
        3
        >>> require_whole(1.5, "hold_frames", "a whole number of frames >= 0")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: hold_frames: expected a whole number of frames >= 0, got float 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: expected {expected}, got {type(value).__name__} {value!r:.80}")
    return int(value)


def require_bool(value: Any, name: str) -> bool:
    """``value`` when it is a bool (or a numpy bool), else an :class:`InputError` that names ``name``: a string
    such as ``"no"`` or ``"false"`` is true in an ``if``, and did the opposite of what it said.

    Examples:
        >>> require_bool(False, "swap")
        False
        >>> require_bool("no", "swap")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: swap: expected True or False, got str 'no'
    """
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected True or False, got {type(value).__name__} {value!r:.80}")
    return bool(value)


def require_numbers(
    value: Any, name: str, expected: str = "an array of numbers", error: type[RtStereoError] | None = None
) -> Any:
    """``value`` as a numpy array when it holds numbers (or bools), else an :class:`InputError` (or ``error``)
    that names ``name``, ``expected`` and what was received: ``None`` or an array of strings failed deep inside
    numpy or OpenCV with a bare ``ValueError`` ("could not convert string to float") or ``cv2.error``.

    Examples:
        >>> require_numbers([[1.5, 2.0]], "disparity").dtype
        dtype('float64')
        >>> require_numbers("d.pfm", "disparity", "a float (H, W) array")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: disparity: expected a float (H, W) array, got str 'd.pfm'
    """
    import numpy as np

    array = np.asarray(value) if value is not None else None
    if array is None or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        what = f"{type(value).__name__} {value!r:.80}" if array is None or array.ndim == 0 else f"{array.dtype} values"
        if hasattr(value, "disparity_px"):  # a predictor's result: its repr began an array cut off mid-row
            what = f"{type(value).__name__} (its map is .disparity_px)"
        raise (error or InputError)(f"{name}: expected {expected}, got {what}")
    return array


def parse_size_hw(text: str, option: str = "--size", minimum_px: int = 8) -> tuple[int, int]:
    """``"480x640"`` -> ``(480, 640)``: every size on rtstereo's command line is HEIGHTxWIDTH.

    Examples:
        >>> parse_size_hw("480x640")
        (480, 640)
    """
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise InputError(
            f"{option}: size '{text}' not understood: expected HEIGHTxWIDTH in pixels, e.g. 480x640"
        ) from None
    if height < minimum_px or width < minimum_px:
        raise InputError(f"{option}: size {height}x{width} (HxW) is too small: at least {minimum_px}x{minimum_px}")
    return height, width


def require_path(value: Any, name: str, expected: str = "a path (str or Path)", hint: str = "") -> Path:
    """``value`` as a :class:`~pathlib.Path` when it is a ``str`` or ``os.PathLike``, else an :class:`InputError`
    that names ``name`` and ``expected`` (pathlib's own was a bare ``TypeError``: "expected str, bytes or
    os.PathLike object, not int"); ``hint`` follows the type received. A leading ``~`` is expanded to the home
    folder, as the shell does for the command line's arguments (and :func:`~rtstereo.sources.pairs.resolve_pairs`
    for quoted globs): ``read_image("~/l.png")`` was "image not found: ~/l.png".

    Examples:
        >>> require_path("left.png", "image").name
        'left.png'
        >>> require_path("~/left.png", "image") == Path.home() / "left.png"
        True
        >>> require_path(5, "disparity file")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: disparity file: expected a path (str or Path), got int
    """
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{name}: expected {expected}, got {type(value).__name__}{hint}")
    text = os.fspath(value)
    return Path(os.path.expanduser(text) if isinstance(text, str) and text.startswith("~") else value)


def missing_file_message(label: str, path: str | os.PathLike[str]) -> str:
    """``"{label} not found: {path}"``, or, for a path that exists but is no regular file (a pipe such as the
    shell's ``<(cat calib.yaml)``, a device such as ``/dev/null``), what it is: the readers said "not found" of
    it, and could not read a pipe twice anyway, as they do.

    Examples:
        >>> missing_file_message("image", "no/such.png")
        'image not found: no/such.png'
        >>> missing_file_message("image", "/dev/null")
        'image /dev/null is not a regular file (a pipe, a device or a socket): save it to a file and give that'
    """
    if not os.path.exists(path):
        if os.path.islink(path):  # a link whose file is gone (a drive not mounted): "not found" of a name listed
            return f"{label} not found: {path} is a link to {os.readlink(path)}, which does not exist"
        return f"{label} not found: {path}"
    return f"{label} {path} is not a regular file (a pipe, a device or a socket): save it to a file and give that"


def require_installed(module: str, extra: str | None, purpose: str) -> None:
    """:func:`require`'s error now if ``module`` cannot be found, without importing it (so without what it
    prints when imported): a dependency checked early, imported later where its output is handled."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError, AttributeError):  # e.g. sys.modules[module] is None: blocked
        found = False
    if not found:
        require(module, extra, purpose)


def require(module: str, extra: str | None, purpose: str):
    """Import an optional dependency or raise an error that names the extra to install.

    Args:
        module: importable module name, e.g. ``"torch"``.
        extra: the pip extra of rtstereo that provides it, e.g. ``"torch"``; ``None`` for a dependency of
            rtstereo itself (``onnxruntime``), which no extra provides: the message names the package.
        purpose: what it is needed for, shown in the message.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing_library = _missing_shared_library(exc)
        if missing_library is not None:  # the package is there; a system library it links to is not
            raise MissingDependencyError(
                f"{purpose} needs the Python package '{package_name(module)}', which is installed but cannot load: the "
                f"system library {missing_library} is missing; install it with the system's package manager"
                f"{_SYSTEM_PACKAGES.get(missing_library.split('.so')[0], '')}"
            ) from exc
        if not _not_installed(exc, module):  # it is there: what it imports fails (pyarrow of another NumPy)
            raise MissingDependencyError(
                f"{purpose} needs the Python package '{package_name(module)}', which is installed but cannot be "
                f"imported ({exc.__class__.__name__}: {exc}): a package it needs is missing, or of a version it "
                "cannot use"
            ) from exc
        raise MissingDependencyError(
            f"{purpose} needs the Python package '{package_name(module)}', which is not installed "
            f"({exc.__class__.__name__}: {exc}). Install it with: {install_command(module, extra)}"
        ) from exc


def torch_missing(importer: str, exc: ImportError) -> NoReturn:
    """The error of a module whose ``import torch`` at the top failed, raised from its ``except ImportError as exc``.

    Without torch, :func:`require`'s one line naming ``pip install 'rtstereo[torch]'`` (as the verbs give), not a
    bare "No module named 'torch'" from deep inside; with torch importable, ``exc`` itself: what failed is another
    import (``torch.nn`` of a broken install).

    Args:
        importer: what needs torch, shown in the message: the module's ``__name__`` or a description.
        exc: the ``ImportError`` the module's imports raised.
    """
    require("torch", "torch", importer)
    raise exc


def _not_installed(exc: ImportError, module: str) -> bool:
    """Whether ``exc``, raised importing ``module``, says that ``module`` itself is missing, not a package it imports
    (``ModuleNotFoundError`` naming another module) nor its own code failing (another ``ImportError``)."""
    if not isinstance(exc, ModuleNotFoundError) and not str(exc).startswith("No module named"):
        return False
    return exc.name is None or f"{module}.".startswith(f"{exc.name}.")


# The distributions whose module has another name: 'rerun' on PyPI is another project than rerun-sdk.
_PACKAGE_NAMES = {"rerun": "rerun-sdk", "yt_dlp": "yt-dlp", "yaml": "PyYAML", "cv2": "opencv-python-headless"}


def package_name(module: str) -> str:
    """The name pip installs ``module`` by.

    Examples:
        >>> package_name("rerun"), package_name("pyarrow.parquet"), package_name("torch")
        ('rerun-sdk', 'pyarrow', 'torch')
    """
    top = module.partition(".")[0]
    return _PACKAGE_NAMES.get(top, top)


def install_command(module: str, extra: str | None) -> str:
    """The pip command that installs ``module``: the rtstereo extra that provides it, or, for a dependency of
    rtstereo itself (``extra`` ``None``), its own package (``pip install 'rtstereo[onnxruntime]'`` named an
    extra that does not exist: pip warns and installs nothing).

    Examples:
        >>> install_command("torch", "torch"), install_command("onnxruntime.quantization", None)
        ("pip install 'rtstereo[torch]'", 'pip install onnxruntime (a dependency of rtstereo itself)')
    """
    if extra is None:
        return f"pip install {package_name(module)} (a dependency of rtstereo itself)"
    return f"pip install 'rtstereo[{extra}]'"


# System packages that provide shared libraries optional dependencies load (Debian/Ubuntu names).
_SYSTEM_PACKAGES = {"libusb-1.0": " (Debian/Ubuntu: apt-get install libusb-1.0-0)"}


def _missing_shared_library(exc: ImportError) -> str | None:
    """``libusb-1.0.so.0`` from "libusb-1.0.so.0: cannot open shared object file", else ``None``.

    Examples:
        >>> _missing_shared_library(ImportError("libusb-1.0.so.0: cannot open shared object file: No such file"))
        'libusb-1.0.so.0'
        >>> _missing_shared_library(ModuleNotFoundError("No module named 'x'")) is None
        True
    """
    text = str(exc)
    marker = ": cannot open shared object file"
    if marker not in text:
        return None
    return text.split(marker)[0].strip().rsplit(" ", 1)[-1] or None


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: The warnings the command line has printed in this run (their messages): a Ray worker's warning that the
#: driver has said already is not said again (:func:`rtstereo.scale.session.reissue_warnings`).
SHOWN_WARNINGS: set[str] = set()


# The threads rtstereo starts for a caller (a Stream's stages), with the line of the caller's code that started them.
_THREAD_CALLERS: weakref.WeakKeyDictionary[threading.Thread, tuple[str, int, dict]] = weakref.WeakKeyDictionary()
# On each thread, the files being read under another name (a download's cache file and the URL the user gave).
_READ_AS = threading.local()


@contextlib.contextmanager
def read_as(path: str | os.PathLike, name: str) -> Iterator[None]:
    """Have :func:`warn`, while the block runs on this thread, say ``name`` where its message names ``path``: a
    warning about a calibration read from a URL named the cache's file, which the user never gave.

    Examples:
        >>> with warnings.catch_warnings(record=True) as caught, read_as("/cache/ab12", "https://h/c.yaml"):
        ...     warnings.simplefilter("always")
        ...     warn("/cache/ab12: focal length of 0.8 px")
        >>> str(caught[0].message)
        'https://h/c.yaml: focal length of 0.8 px'
    """
    names = getattr(_READ_AS, "names", [])
    _READ_AS.names = [*names, (str(path), name)]
    try:
        yield
    finally:
        _READ_AS.names = names


def warn(message: str, category: type[Warning] = RtStereoWarning) -> None:
    """:func:`warnings.warn`, attributed to the first caller outside rtstereo.

    A warning then names the line of the user's code that led to it (``my_script.py:12:
    CalibrationWarning: ...``), however deep in the package it was raised, instead of a line of
    rtstereo's own (what ``skip_file_prefixes`` does from Python 3.12 on); on a thread rtstereo started for the
    user's call (:func:`warn_at_caller`), the line of that call. The command line prints warnings without a
    location anyway.
    """
    for path, name in reversed(getattr(_READ_AS, "names", [])):
        message = message.replace(path, name)
    frame, level = sys._getframe(1), 2
    while frame is not None and _ours(frame):
        frame, level = frame.f_back, level + 1
    caller = _THREAD_CALLERS.get(threading.current_thread())
    if caller is not None and (frame is None or frame.f_globals.get("__name__") == "threading"):
        filename, lineno, module_globals = caller  # the thread's own stack holds no line of the user's code
        registry = module_globals.setdefault("__warningregistry__", {})
        module = module_globals.get("__name__", "<string>")
        warnings.warn_explicit(message, category, filename, lineno, module, registry)  # the source line: by file
        return
    warnings.warn(message, category, stacklevel=level)


def warn_at_caller(threads: Iterable[threading.Thread]) -> None:
    """Have :func:`warn` on ``threads``, which rtstereo starts to do the caller's work (a Stream's stages), name the
    line of the caller's code that started them, as it does on the caller's own thread: they named threading.py."""
    frame = sys._getframe(1)
    while frame is not None and _ours(frame):
        frame = frame.f_back
    if frame is None:
        return
    for thread in threads:
        _THREAD_CALLERS[thread] = (frame.f_code.co_filename, frame.f_lineno, frame.f_globals)


def not_a_predictor(predictor: Any, expected: str = "a model from rtstereo.load(...)") -> InputError:
    """The error for ``predictor``, which is no model: a model's name or file gets the call that loads it (``Stream(src,
    "sgbm")`` said "got str" alone).

    Examples:
        >>> print(not_a_predictor("sgbm"))
        predictor: expected a model from rtstereo.load(...), got str 'sgbm': load it first, rtstereo.load('sgbm')
    """
    got = type(predictor).__name__
    if isinstance(predictor, (str, os.PathLike)):
        name = os.fspath(predictor)
        return InputError(
            f"predictor: expected {expected}, got {got} {name!r:.80}: load it first, rtstereo.load({name!r})"
        )
    return InputError(f"predictor: expected {expected}, got {got}")


def made_by_rtstereo() -> bool:
    """Whether the value whose ``__post_init__`` asks was made by rtstereo's own code (a file's reader, a scaled or
    cropped copy, which said what it had to say) rather than by the caller's: its ``__init__``, ``__post_init__``
    and :func:`dataclasses.replace` are passed over."""
    frame = sys._getframe(1)
    while frame is not None and (
        (frame.f_code.co_name in ("__init__", "__post_init__") and _ours(frame))
        or frame.f_globals.get("__name__") == "dataclasses"
    ):
        frame = frame.f_back
    return frame is not None and _ours(frame)


def _ours(frame: Any) -> bool:
    """Whether a frame runs rtstereo's code: its files, and the methods ``dataclasses`` writes for its classes, whose
    file is ``"<string>"`` (a grey view beside a colour one, found in ``StereoPair.__init__``, was said at
    ``<string>:9``, not at the caller's line)."""
    module = frame.f_globals.get("__name__") or ""
    return frame.f_code.co_filename.startswith(_PACKAGE_DIR) or module.partition(".")[0] == "rtstereo"
