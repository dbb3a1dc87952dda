"""ONNX Runtime execution providers: which to ask for, opening a session on them, and checking a GPU
provider against the CPU one.

``device="cpu"`` uses the CPU execution provider (``threads`` intra-op threads; ``$RTSTEREO_THREADS``
when not given; they do not spin after their work unless ``$RTSTEREO_ORT_SPIN=1``, see
:func:`cpu_spinning`). ``device="cuda[:N]"`` asks, in order, for TensorRT (fp16 when the precision or the
file is fp16; engines cached in ``engine_cache``, by default ``<rtstereo cache>/tensorrt``, so that
only the first run builds them), CUDA, then the CPU for the operations the GPU providers lack. Both
GPU providers come with the ``onnxruntime-gpu`` build (``pip install onnxruntime-gpu`` in place of
``onnxruntime``); without either, ``--device cuda`` is refused with that advice rather than run on
the CPU. An explicit list (``providers="tensorrt,cuda,cpu"``) is taken as asked: a provider that
is missing, or fails to start, is skipped with a :class:`ProviderFallbackWarning`.

A GPU provider compiles the graph in its own way (TensorRT fuses layers and may use TF32 or fp16
kernels), so its first output is compared with the CPU provider's on the same input
(:class:`ProviderCheck`: once per session on CUDA, once per engine build on TensorRT) and reported;
above the tolerance it warns or, with ``parity=refuse``, refuses.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    CheckpointError,
    InputError,
    OutputError,
    RtStereoError,
    RtStereoWarning,
    missing_file_message,
    require,
    require_whole,
    warn,
)
from ..io.atomic import os_reason
from ..text import first_line, shortened
from .agreement import Agreement, ParityWarning, check_action, compare_maps

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class ProviderFallbackWarning(RtStereoWarning):
    """An execution provider that was asked for is missing; a later one in the list runs instead."""


def _ort():
    return require("onnxruntime", None, "the ONNX Runtime backend")


def engine_cache_dir() -> Path:
    """Where TensorRT engines are cached: ``<rtstereo cache>/tensorrt``."""
    from ..io.download import cache_dir

    return cache_dir() / "tensorrt"


def engine_cache_folder(value: Any = None) -> Path:
    """The TensorRT engine folder a setting names, ``~`` expanded (``None`` or ``""``: :func:`engine_cache_dir`).

    Raises:
        InputError: a value that names no folder (``engine_cache=5`` was a bare ``TypeError`` from ``Path``).

    Examples:
        >>> engine_cache_folder("~/engines") == Path.home() / "engines"
        True
    """
    if value is None or value == "":
        return engine_cache_dir()
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(
            f"setting 'engine_cache': expected a folder (str or Path), got {type(value).__name__} {value!r}"
        )
    return Path(value).expanduser()


def parse_providers(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"tensorrt,cuda,cpu"`` (or full provider names) to ONNX Runtime provider names, in order.

    Raises:
        InputError: an unknown or empty list, or a value that is no list (``providers=5`` was a bare ``TypeError``).

    Examples:
        >>> parse_providers("cuda,cpu")
        ['CUDAExecutionProvider', 'CPUExecutionProvider']
    """
    if not isinstance(text, (str, list, tuple)):
        raise InputError(
            f"setting 'providers': expected a comma-separated str or a list of str (e.g. 'cuda,cpu'), got "
            f"{type(text).__name__} {text!r}"
        )
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else [str(s).strip() for s in text]
    names = []
    for item in filter(None, items):
        name = PROVIDER_NAMES.get(item.lower(), item)
        if not name.endswith("ExecutionProvider"):
            raise InputError(
                f"unknown execution provider '{item}' (expected a list from: {', '.join(PROVIDER_NAMES)}, "
                "or a full ONNX Runtime provider name)"
            )
        names.append(name)
    if not names:
        raise InputError("the execution provider list is empty (for example: tensorrt,cuda,cpu)")
    return names


def _device_id(device: str) -> int:
    if device == "cpu":
        return 0
    if device == "cuda":
        return 0
    head, _, index = device.partition(":")
    if head == "cuda" and index.isascii() and index.isdigit():  # "²" is a digit int() refuses
        return int(index)
    raise InputError(f"device must be cpu or cuda[:N], got '{device}'")


def provider_list(
    device: str,
    precision: str,
    providers: str | list[str] | None = None,
    engine_cache: str | Path | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The ordered provider list with options for a device and precision.

    Args:
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32`` or ``fp16`` (turns on TensorRT's fp16 mode).
        providers: explicit order (``"tensorrt,cuda,cpu"``); default from ``device``.
        engine_cache: TensorRT engine cache folder (default :func:`engine_cache_dir`).

    Returns:
        ``[(provider_name, options), ...]`` as ``InferenceSession(providers=...)`` takes them.

    Examples:
        >>> [name for name, _ in provider_list("cuda", "fp16")]
        ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
        >>> provider_list("cpu", "fp32")
        [('CPUExecutionProvider', {})]
    """
    device_id = _device_id(device)
    if providers is not None:
        names = parse_providers(providers)
        on_gpu = [name for name in names if name in GPU_PROVIDERS]
        if device == "cpu" and on_gpu:  # they ran on GPU 0 of a GPU build: not where --device cpu said
            raise InputError(
                f"--device cpu and the providers {', '.join(on_gpu)} disagree: they run on a GPU; give --device "
                "cuda[:N] with them (device= in Python), or leave them out of --set providers (providers=)"
            )
    elif device == "cpu":
        names = ["CPUExecutionProvider"]
    else:
        names = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    out: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        options: dict[str, Any] = {}
        if name == "TensorrtExecutionProvider":
            cache = Path(engine_cache) if engine_cache else engine_cache_dir()
            options = {
                "device_id": device_id,
                "trt_fp16_enable": precision == "fp16",
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(cache),
            }
        elif name == "CUDAExecutionProvider":
            options = {"device_id": device_id}
        out.append((name, options))
    return out


# Both builds are the module onnxruntime, and rtstereo requires the CPU one: a later pip install of rtstereo or an
# extra puts it back over the GPU build. Uninstalling onnxruntime alone then removed files onnxruntime-gpu shares, and
# "pip install onnxruntime-gpu" was "Requirement already satisfied": onnxruntime no longer imported. Both go first.
GPU_INSTALL = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


def check_gpu_build(device: str, providers: str | list[str] | None = None) -> None:
    """Refuse ``--device cuda`` early when this onnxruntime build has no GPU provider (unless an
    explicit provider list accepts falling back).

    Raises:
        InputError: with the line that installs the GPU build.
    """
    available = set(_ort().get_available_providers())
    if device != "cpu" and providers is None and not available.intersection(GPU_PROVIDERS):
        raise InputError(
            f"--device {device} with ONNX Runtime needs its CUDA or TensorRT provider, which this onnxruntime "
            f"build lacks (it has: {', '.join(sorted(available))}). Install the GPU build ({GPU_INSTALL}), "
            "use --device cpu, or --set providers=cuda,cpu to accept the CPU (device='cpu', or "
            "providers='cuda,cpu', in Python)"
        )


def _available(requested: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    available = set(_ort().get_available_providers())
    kept = [(name, options) for name, options in requested if name in available]
    missing = [name for name, _ in requested if name not in available]
    if not kept:
        raise InputError(
            f"none of the execution providers {', '.join(n for n, _ in requested)} is available in this "
            f"onnxruntime build (it has: {', '.join(sorted(available))}); add cpu to the list to accept the CPU "
            f"(--set providers=...,cpu; providers= in Python), use --device cpu (device=) without them, or install "
            f"onnxruntime-gpu for CUDA and TensorRT ({GPU_INSTALL})"
        )
    if missing:
        warn(
            f"ONNX Runtime: {', '.join(missing)} not available in this build (it has: "
            f"{', '.join(sorted(available))}); running on {kept[0][0]}",
            ProviderFallbackWarning,
        )
    return kept


def cpu_spinning() -> bool:
    """Whether ONNX Runtime's CPU threads keep spinning after their work (``$RTSTEREO_ORT_SPIN=1``).

    By default they sleep at once. Spinning, ONNX Runtime's own default, took the cores that OpenCV's
    post-processing and SGBM needed next: at 640x480 on 2 cores, over three alternated pairs of
    ``rtstereo bench sgbm,rtnet-v5,hybrid`` runs, ``rtnet-v5`` took a median 106 ms spinning and 91 ms
    without, the hybrid 174 and 160 ms (and from 157 to 235 ms spinning, 157 to 171 without).
    """
    value = os.environ.get("RTSTEREO_ORT_SPIN", "").strip()
    if value not in ("", "0", "1"):
        raise InputError(f"RTSTEREO_ORT_SPIN must be 0 or 1, got '{shortened(value)}'")
    return value == "1"


THREADS_PER_CORE = 4  # beyond this many threads a core only switches between them (99999 spawned 99999 threads)


def check_thread_count(threads: Any, name: str = "threads") -> int:
    """``threads`` when it is a whole number >= 1 that this machine can use (at most :data:`THREADS_PER_CORE` per
    CPU core), else an :class:`InputError` naming ``name``: 99999 made OpenCV try to start 99999 threads, a flood of
    errors and a hang; ``"2"`` failed in a comparison with a bare ``TypeError``.

    Examples:
        >>> check_thread_count(1)
        1
        >>> check_thread_count(0, "--threads")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: --threads must be >= 1, got 0
    """
    threads = require_whole(threads, name, "a whole number of threads >= 1")
    if threads < 1:
        raise InputError(f"{name} must be >= 1, got {shortened(threads)}")
    cores = os.cpu_count() or 1
    if threads > THREADS_PER_CORE * cores:
        raise InputError(
            f"{name} {shortened(threads)} is more than this machine can use: it has {cores} CPU cores; give at most "
            f"{THREADS_PER_CORE * cores} ({THREADS_PER_CORE} per core), or leave it out for each library's own choice"
        )
    return threads


def default_threads() -> int | None:
    """``$RTSTEREO_THREADS`` as an int, or ``None`` (ONNX Runtime picks: one per physical core)."""
    value = os.environ.get("RTSTEREO_THREADS", "").strip()
    if not value:
        return None
    digits = value.lstrip("0")
    if not (value.isascii() and value.isdigit()) or not digits:  # "²" is a digit int() refuses; "0", "00"
        raise InputError(f"RTSTEREO_THREADS must be a whole number >= 1, got '{value}'")
    if len(digits) > 9:  # int() refused more than 4300 digits with a traceback
        cores = os.cpu_count() or 1
        raise InputError(
            f"RTSTEREO_THREADS {digits[:9]}... ({len(digits)} digits) is more than this machine can use: it has "
            f"{cores} CPU cores; give at most {THREADS_PER_CORE * cores} ({THREADS_PER_CORE} per core), or unset it"
        )
    return check_thread_count(int(value), "RTSTEREO_THREADS")


def limit_threads(threads: int) -> None:
    """Make this process's numeric libraries use ``threads`` threads: ONNX Runtime's sessions made after
    this (through ``$RTSTEREO_THREADS``, which they, the hybrid's split between SGBM and its network and the
    hybrid's own threads read), OpenCV's, and PyTorch's if it is loaded (it is never imported for this).

    Raises:
        InputError: ``threads`` is not a whole number >= 1, before anything is changed (``0``, ``None`` or
            ``"2"`` were written to ``$RTSTEREO_THREADS``, and every model loaded after it was refused for it).
    """
    import cv2

    number = check_thread_count(threads)
    os.environ["RTSTEREO_THREADS"] = str(number)
    cv2.setNumThreads(number)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(number)


def open_session(
    path: str | Path,
    device: str = "cpu",
    precision: str = "fp32",
    providers: str | list[str] | None = None,
    threads: int | None = None,
    engine_cache: str | Path | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` on the best available provider of the list.

    A provider that is missing from the build, or that fails to start (for example CUDA libraries
    absent), is skipped with a :class:`ProviderFallbackWarning`, down to the CPU only when the list was
    given explicitly: ``device="cuda"`` with no GPU provider able to run is refused.

    Raises:
        CheckpointError: the file is missing or not a model ONNX Runtime can load.
        InputError: a bad device, provider list or thread count; ``cuda`` without a GPU provider.
    """
    ort = _ort()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(missing_file_message("ONNX model", path))
    threads = default_threads() if threads is None else threads
    if threads is not None:  # a numpy integer too (it was refused as "got np.int64(2)")
        threads = check_thread_count(threads)
    requested = provider_list(device, precision, providers, engine_cache)
    check_gpu_build(device, providers)
    chosen = _available(requested)
    if any(name == "TensorrtExecutionProvider" for name, _ in chosen):
        cache = Path(dict(chosen)["TensorrtExecutionProvider"]["trt_engine_cache_path"])
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file there, a read-only place: it ended in a bare FileExistsError or PermissionError
            reason = os_reason(exc, cache / "engine")  # names the file in the way, the cache itself included
            raise OutputError(
                f"cannot make the TensorRT engine cache {cache}: {reason}; give a folder that can be written with "
                "--set engine_cache=DIR (engine_cache= in Python)"
            ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not cpu_spinning():
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session, reasons = _start_session(ort, path, options, chosen)
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        missing = re.search(r'External data path does not exist: "([^"]+)"', str(exc))
        if missing:  # the model was copied or moved without its weights file (export's .data, RT-Stereo's .ext)
            raise CheckpointError(
                f"{path} keeps its weights in another file, {missing.group(1)}, which is missing: copy or move that "
                "file together with the model, beside it under that name"
            ) from exc
        short = re.search(r"offset: (\d+) size to read: (\d+) given file_length: (\d+) are out of bounds", str(exc))
        if short:  # a .data file cut short (an interrupted copy): said as ORT's message cut at 300 characters, "tenso."
            offset, size, length = (int(v) for v in short.groups())
            data = external_data_file(path)
            raise CheckpointError(
                f"{path} keeps its weights in another file, {data or 'its .data file'}, which is cut short: "
                f"it has {length} bytes, and the model reads bytes {offset} to {offset + size} of it (an interrupted "
                "copy or download?); "
                "copy that file beside the model again"
            ) from exc
        raise CheckpointError(
            f"ONNX Runtime cannot load {path}: {(first_line(exc) or type(exc).__name__)[:300]}. Is it a complete ONNX "
            "model (with its .data file beside it when it was saved with external data)?"
        ) from exc
    started = session.get_providers()
    if device != "cpu" and providers is None and started[0] not in GPU_PROVIDERS:
        # their own reasons first: "Invalid device ID: 3, must be between 0 (inclusive) and 1 (exclusive)"
        said = "; ".join(f"{name}: {reasons[name]}" for name in GPU_PROVIDERS if name in reasons)
        raise InputError(
            f"ONNX Runtime could not start {' or '.join(GPU_PROVIDERS)} on {device} ({said + '; ' if said else ''}"
            "are the CUDA and cuDNN libraries that onnxruntime-gpu needs installed? see its install page); use "
            "--device cpu, or --set providers=tensorrt,cuda,cpu to accept the CPU (device='cpu', or "
            "providers='tensorrt,cuda,cpu', in Python)"
        )
    skipped = [name for name, _ in chosen if name not in started]
    if skipped:
        why = "".join(f" ({name}: {reasons[name]})" for name in skipped if name in reasons)
        warn(
            f"ONNX Runtime could not start {', '.join(skipped)}{why}; running on {started[0]}", ProviderFallbackWarning
        )
    return session


def external_data_file(path: Path) -> Path | None:
    """The file an ONNX model keeps its weights in (its external data), read from the model's bytes without the
    ``onnx`` package, which inference does not need: ``None`` when the model names none.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "m.onnx").write_bytes(b"\\x0a\\x08location\\x12\\x0bm.onnx.data")
        >>> external_data_file(folder / "m.onnx").name
        'm.onnx.data'
    """
    # A tensor's external data entry is the protobuf key/value pair ("location", file name), both length-prefixed.
    model = path.read_bytes()
    found = re.search(rb"\x0a\x08location\x12([\x01-\x7f])", model)
    if found is None:
        return None
    name = model[found.end() : found.end() + found.group(1)[0]].decode("utf-8", "replace")
    return path.parent / name


def _start_session(
    ort: Any, path: Path, options: Any, chosen: list[tuple[str, dict[str, Any]]]
) -> tuple[Any, dict[str, str]]:
    """A session on ``chosen``; a provider that fails to start is left out, and the rest, with their options, tried.

    ONNX Runtime's own fall-back is off: it printed a banner on stdout (into a pipe of results) and retried with
    CUDA and the CPU *without their options*, so a TensorRT that could not start moved ``cuda:1`` to GPU 0.

    Returns:
        The session, and why each provider left out failed (the first line of its error).

    Raises:
        Exception: ONNX Runtime's error for the last list tried (the CPU provider's alone: a model it cannot load).
    """
    reasons: dict[str, str] = {}
    for first in range(len(chosen)):
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=chosen[first:], enable_fallback=0)
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, EPFail, ...)
            if first == len(chosen) - 1:
                raise
            reasons[chosen[first][0]] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            continue
        return session, reasons
    raise AssertionError(f"no provider list was tried: {chosen}")  # chosen is never empty (_available)


GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
#: Largest (mean |difference| px, percent of pixels off by more than 1 px) of a GPU provider against
#: the CPU provider on the same file. fp32 leaves room for TensorRT's TF32 convolutions; fp16 is the
#: exporter's fp16 tolerance (rtstereo.export.parity).
PROVIDER_TOLERANCE = {"fp32": (0.05, 0.5), "fp16": (0.25, 2.0)}


class ProviderParityError(RtStereoError):
    """A GPU provider's output differs from the CPU provider's beyond the tolerance (``parity=refuse``)."""


def engine_files(folder: str | Path | None) -> frozenset[tuple[str, int]]:
    """The TensorRT engine cache's files with their modification times (to notice a new build)."""
    if folder is None or not Path(folder).is_dir():
        return frozenset()
    return frozenset((p.name, p.stat().st_mtime_ns) for p in Path(folder).iterdir() if p.is_file())


class ProviderCheck:
    """Compares a GPU session's first output with the CPU provider's on the same input.

    Args:
        provider: the provider the session runs on.
        precision: ``fp32`` or ``fp16`` (chooses :data:`PROVIDER_TOLERANCE`).
        action: ``warn``, ``refuse`` or ``off``.
        engine_cache: the TensorRT engine folder; with TensorRT the check runs only when the first
            run built an engine (files changed since ``engines_before``), not for a cached one.
        engines_before: :func:`engine_files` before the session was opened.

    Examples:
        >>> check = ProviderCheck("CUDAExecutionProvider", "fp32", "warn")
        >>> check(np.ones((2, 2), np.float32), lambda: np.ones((2, 2), np.float32))
        >>> check.result.mean_abs_px, check.pending
        (0.0, False)
    """

    def __init__(
        self,
        provider: str,
        precision: str,
        action: str = "warn",
        engine_cache: str | Path | None = None,
        engines_before: frozenset[tuple[str, int]] = frozenset(),
    ):
        self.provider = provider
        self.tolerance = PROVIDER_TOLERANCE["fp16" if precision == "fp16" else "fp32"]
        self.action = check_action(action)
        self.engine_cache = engine_cache
        self.engines_before = engines_before
        self.pending = self.action != "off" and provider in GPU_PROVIDERS
        self.result: Agreement | None = None

    def __call__(self, output: np.ndarray, reference: Callable[[], np.ndarray]) -> None:
        """Check ``output`` (of the first run) against ``reference()`` (the CPU provider's run)."""
        if not self.pending:
            return
        self.pending = False
        if self.provider == "TensorrtExecutionProvider" and engine_files(self.engine_cache) == self.engines_before:
            return  # the engine came from the cache: it was checked when it was built
        self.result = compare_maps(output, reference(), f"{self.provider} vs CPUExecutionProvider")
        if self.result.within(*self.tolerance):
            return
        mean_px, bad1_pct = self.tolerance
        message = f"ONNX Runtime: {self.result.line()}; beyond the tolerance (mean {mean_px} px, bad-1 {bad1_pct} %)"
        if self.action == "refuse":
            raise ProviderParityError(
                f"{message}. Use --device cpu, or --set parity=warn to run anyway (device=, parity= in Python)"
            )
        warn(message + " (--set parity=refuse, parity='refuse' in Python, stops here)", ParityWarning)

    def describe(self) -> dict[str, Any]:
        """The check's result for the recorded settings (nothing before it ran)."""
        if self.result is None:
            return {}
        r = self.result
        return {"provider_parity": {"mean_abs_px": r.mean_abs_px, "max_abs_px": r.max_abs_px, "bad1_pct": r.bad1_pct}}
