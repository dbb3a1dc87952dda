"""The ONNX Runtime backend: exported ``.onnx`` files, the packaged network, and registry networks.

Everything here runs with ONNX Runtime, numpy and OpenCV only, and imports nothing from the
exporter (:mod:`rtstereo.export` depends on this module, not the other way round).

Providers. ``device="cpu"`` uses the CPU execution provider (``threads`` intra-op threads;
``$RTSTEREO_THREADS`` when not given). ``device="cuda[:N]"`` asks, in order, for TensorRT (fp16 when
the precision or the file is fp16, engines cached in ``<cache>/tensorrt`` so that only the first
run builds them), CUDA, then the CPU. A provider that this onnxruntime build lacks, or that fails
to start, is skipped with a :class:`ProviderFallbackWarning` naming what runs instead.

Exported files describe themselves: the ``rtstereo`` entry of the ONNX metadata holds the model
name, settings, normalisation, size divisor, fixed input size, precision and the source checkpoint
hash (:class:`OnnxContract`), so ``rtstereo predict --model m.onnx`` needs no other flag. A
two-pass CREStereo export is a pair of files: ``m.onnx`` (full-size refinement, inputs ``left``,
``right``, ``flow_init``) names its companion ``m_init.onnx`` (half-size pass, output
``flow_init``); loading ``m.onnx`` runs both.

Registry networks on ``--backend onnxruntime`` are exported on first use, at the padded size of the
input (the Predictor pads to the size divisor): :func:`predictor_from_export` calls the export
function it is given once per distinct padded size and keeps a session per size. The export itself
(checked against PyTorch on that very input, cached on disk under a key made of the model, its
settings, a hash of its weights, the size and the precision) is wired in by the layer above,
``rtstereo.export.on_demand.predictor_from_module``. Frames of a video share one size, hence one
export; an image of a new size costs one more export.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import CheckpointError, InputError
from ..models.registry import ModelSpec, coerce_setting
from .backends import Backend
from .predictor import Predictor

METADATA_KEY = "rtstereo"
FORMAT_TAG = "rtstereo-onnx"
ROLES = ("single", "init", "refine")
#: Settings that configure ONNX Runtime rather than the network; accepted for exported files.
RUNTIME_SETTINGS = ("threads", "providers")
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
#: Sessions kept per on-the-fly backend (one per padded input size).
MAX_CACHED_SIZES = 4


class ProviderFallbackWarning(UserWarning):
    """An execution provider that was asked for is missing; a later one in the list runs instead."""


# --------------------------------------------------------------------------------------------------
# The contract stored in an exported file
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnnxContract:
    """What an exported file says about itself (the ``rtstereo`` metadata entry, JSON).

    Attributes:
        model: registry name of the architecture, e.g. ``"gwcnet-gc"``.
        settings: the settings it was built with (``max_disp``, ``iters``...).
        normalization: how uint8 RGB becomes its input (``imagenet``, ``raw255``, ``unit``).
        size_divisor: the architecture's size divisor (a dynamic export takes any multiple of it).
        fixed_size_hw: ``(H, W)`` of ``left`` and ``right``; ``None`` for a dynamic-size export, which
            takes any size that is a multiple of ``size_divisor`` (the predictor pads to one).
        precision: ``fp32``, ``fp16`` or ``int8`` (``rtstereo export --int8``); inputs and outputs
            stay float32 in every case.
        role: ``single``; or ``refine`` / ``init`` for the two files of a two-pass export.
        companion: for ``refine``: file name of the ``init`` model, in the same folder.
        checkpoint_sha256: hash of the weights file it was exported from (``None`` if unknown).
        rtstereo_version: version of rtstereo that wrote it.
        opset: ONNX opset of the graph.
        extra: anything else the exporter records (date, torch version).
    """

    model: str
    settings: dict[str, Any]
    normalization: str
    size_divisor: int
    fixed_size_hw: tuple[int, int] | None
    precision: str = "fp32"
    role: str = "single"
    companion: str | None = None
    checkpoint_sha256: str | None = None
    rtstereo_version: str = ""
    opset: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["fixed_size_hw"] = list(self.fixed_size_hw) if self.fixed_size_hw else None
        return json.dumps({"format": FORMAT_TAG, "version": 1, **data}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str | Path) -> OnnxContract:
        """Parse the metadata entry; ``source`` names the file in error messages."""
        try:
            data = json.loads(text)
            if data.pop("format") != FORMAT_TAG:
                raise ValueError("not an rtstereo export")
            data.pop("version", None)
            names = {f.name for f in dataclasses.fields(cls)}
            contract = cls(**{k: v for k, v in data.items() if k in names})
            fixed = None if contract.fixed_size_hw is None else tuple(int(v) for v in contract.fixed_size_hw)
            if fixed is not None and len(fixed) != 2:
                raise ValueError(f"fixed_size_hw must be [H, W] or null, got {contract.fixed_size_hw}")
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(
                f"{source}: the '{METADATA_KEY}' metadata entry is damaged ({exc}); re-export the model "
                "with `rtstereo export`"
            ) from None
        if contract.role not in ROLES:
            raise CheckpointError(f"{source}: unknown export role '{contract.role}' (expected {', '.join(ROLES)})")
        return dataclasses.replace(contract, fixed_size_hw=fixed)

    def spec(self, registered: ModelSpec | None = None) -> ModelSpec:
        """The input contract as a :class:`ModelSpec` for the Predictor (the file's word wins)."""
        packaged = registered is not None and registered.kind == "onnx"
        return ModelSpec(
            name=registered.name if packaged else self.model,
            summary=registered.summary if registered else f"{self.model} (ONNX export)",
            kind="onnx",
            builder="",
            defaults=dict(self.settings),
            normalization=self.normalization,  # type: ignore[arg-type]
            size_divisor=self.size_divisor,
            fixed_size_hw=self.fixed_size_hw,
            licence=registered.licence if registered else "",
            fill_left_border=registered.fill_left_border if registered else False,
            refine_edges=registered.refine_edges if registered else False,
        )


def companion_path(path: str | Path) -> Path:
    """File name of the half-size ``init`` model of a two-pass export: ``m.onnx`` -> ``m_init.onnx``.

    Examples:
        >>> companion_path("out/crestereo.onnx").name
        'crestereo_init.onnx'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}_init{path.suffix}")


# --------------------------------------------------------------------------------------------------
# Sessions and providers
# --------------------------------------------------------------------------------------------------


def _ort():
    from ..errors import require

    return require("onnxruntime", "onnxruntime", "the ONNX Runtime backend")


def engine_cache_dir() -> Path:
    """Where TensorRT engines are cached: ``<rtstereo cache>/tensorrt``."""
    from ..io.download import cache_dir

    return cache_dir() / "tensorrt"


def parse_providers(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"tensorrt,cuda,cpu"`` (or full provider names) to ONNX Runtime provider names, in order.

    Examples:
        >>> parse_providers("cuda,cpu")
        ['CUDAExecutionProvider', 'CPUExecutionProvider']
    """
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
    if head == "cuda" and index.isdigit():
        return int(index)
    raise InputError(f"device must be cpu or cuda[:N], got '{device}'")


def provider_list(
    device: str,
    precision: str,
    providers: str | list[str] | None = None,
    threads: int | None = None,
    engine_cache: str | Path | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The ordered provider list with options for a device and precision.

    Args:
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32`` or ``fp16`` (turns on TensorRT's fp16 mode).
        providers: explicit order (``"tensorrt,cuda,cpu"``); default from ``device``.
        threads: CPU threads (only recorded here; set on the session options).
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


def _available(requested: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    available = set(_ort().get_available_providers())
    kept = [(name, options) for name, options in requested if name in available]
    missing = [name for name, _ in requested if name not in available]
    if not kept:
        raise InputError(
            f"none of the execution providers {', '.join(n for n, _ in requested)} is available in this "
            f"onnxruntime build (it has: {', '.join(sorted(available))}); use --device cpu, or install "
            "onnxruntime-gpu for CUDA and TensorRT"
        )
    if missing:
        warnings.warn(
            f"ONNX Runtime: {', '.join(missing)} not available in this build (it has: "
            f"{', '.join(sorted(available))}); running on {kept[0][0]}",
            ProviderFallbackWarning,
            stacklevel=3,
        )
    return kept


def default_threads() -> int | None:
    """``$RTSTEREO_THREADS`` as an int, or ``None`` (ONNX Runtime picks: one per physical core)."""
    value = os.environ.get("RTSTEREO_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"RTSTEREO_THREADS must be a whole number >= 1, got '{value}'")
    return int(value)


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
    absent), is skipped with a :class:`ProviderFallbackWarning`.

    Raises:
        CheckpointError: the file is missing or not a model ONNX Runtime can load.
        InputError: a bad device, provider list or thread count.
    """
    ort = _ort()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model not found: {path}")
    threads = default_threads() if threads is None else threads
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InputError(f"threads must be a whole number >= 1, got {threads!r}")
    requested = provider_list(device, precision, providers, threads, engine_cache)
    chosen = _available(requested)
    if any(name == "TensorrtExecutionProvider" for name, _ in chosen):
        Path(dict(chosen)["TensorrtExecutionProvider"]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        raise CheckpointError(
            f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:300]}. Is it a complete ONNX "
            "model (with its .data file beside it when it was saved with external data)?"
        ) from exc
    started = session.get_providers()
    skipped = [name for name, _ in chosen if name not in started]
    if skipped:
        warnings.warn(
            f"ONNX Runtime could not start {', '.join(skipped)}; running on {started[0]}",
            ProviderFallbackWarning,
            stacklevel=2,
        )
    return session


def read_contract(session: Any, path: str | Path) -> OnnxContract:
    """The :class:`OnnxContract` stored in an open session's model metadata."""
    metadata = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path} has no rtstereo metadata (input size, normalisation, model settings), so rtstereo "
            "cannot know how to feed it; export it with "
            "`rtstereo export MODEL --weights W --size HxW -o FILE`"
        )
    return OnnxContract.from_json(metadata[METADATA_KEY], path)


# --------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------


def _float_type(session: Any, name: str) -> Any:
    for arg in session.get_inputs():
        if arg.name == name:
            return np.float16 if arg.type == "tensor(float16)" else np.float32
    raise CheckpointError(
        f"the ONNX model has no input '{name}' (it has: {', '.join(a.name for a in session.get_inputs())})"
    )


class _Session:
    """One session with its input dtypes, run by input name."""

    def __init__(self, session: Any, path: Path, inputs: tuple[str, ...], output: str):
        self.session = session
        self.path = path
        self.dtypes = {name: _float_type(session, name) for name in inputs}
        outputs = [o.name for o in session.get_outputs()]
        if output not in outputs:
            raise CheckpointError(f"{path} has no output '{output}' (it has: {', '.join(outputs)})")
        self.output = output

    def __call__(self, **arrays: np.ndarray) -> np.ndarray:
        feed = {name: np.ascontiguousarray(arrays[name], dtype=dtype) for name, dtype in self.dtypes.items()}
        return np.asarray(self.session.run([self.output], feed)[0], dtype=np.float32)


def _disparity_of(output: np.ndarray) -> np.ndarray:
    """``(1, H, W)`` or ``(1, 1, H, W)`` network output to ``(H, W)``."""
    return output[0, 0] if output.ndim == 4 else output[0]


class OnnxRuntimeBackend(Backend):
    """An exported single-pass model: inputs ``left``, ``right``, output ``disparity``."""

    name = "onnxruntime"

    def __init__(self, session: Any, path: str | Path, device: str = "cpu", precision: str = "fp32"):
        self.model = _Session(session, Path(path), ("left", "right"), "disparity")
        self.device = device
        self.precision = precision

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return _disparity_of(self.model(left=left, right=right))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "precision": self.precision,
            "providers": self.model.session.get_providers()[:1],
            "onnx": str(self.model.path),
        }


class TwoPassBackend(Backend):
    """A two-pass CREStereo export: the half-size ``init`` model, then the full-size refinement.

    The half-size images are made here with the same bilinear ``align_corners=True`` resize as the
    PyTorch model, so that the pair reproduces it.
    """

    name = "onnxruntime"

    def __init__(
        self,
        init_session: Any,
        init_path: str | Path,
        refine_session: Any,
        refine_path: str | Path,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        self.init = _Session(init_session, Path(init_path), ("left", "right"), "flow_init")
        self.refine = _Session(refine_session, Path(refine_path), ("left", "right", "flow_init"), "disparity")
        self.device = device
        self.precision = precision

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        half_hw = (left.shape[-2] // 2, left.shape[-1] // 2)
        flow_init = self.init(left=resize_align_corners(left, half_hw), right=resize_align_corners(right, half_hw))
        return _disparity_of(self.refine(left=left, right=right, flow_init=flow_init))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": self.device,
            "precision": self.precision,
            "providers": self.refine.session.get_providers()[:1],
            "onnx": str(self.refine.path),
            "onnx_init": str(self.init.path),
        }


def resize_align_corners(batch: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(N, C, H, W)`` with corner pixels aligned (PyTorch ``align_corners=True``).

    Output pixel ``i`` samples input position ``i * (H_in - 1) / (H_out - 1)``; OpenCV's resize uses
    pixel-centre alignment instead, which would not reproduce the PyTorch two-pass model.

    Examples:
        >>> x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)
        >>> resize_align_corners(x, (1, 3))[0, 0, 0].tolist()
        [0.0, 1.5, 3.0]
    """
    out_h, out_w = size_hw
    in_h, in_w = batch.shape[-2:]
    y0, y1, wy = _linear_taps(in_h, out_h)
    x0, x1, wx = _linear_taps(in_w, out_w)
    rows = batch[..., y0, :] * (1 - wy)[:, None] + batch[..., y1, :] * wy[:, None]
    return np.ascontiguousarray(rows[..., x0] * (1 - wx) + rows[..., x1] * wx, dtype=batch.dtype)


def _linear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    position = np.arange(size_out, dtype=np.float64) * scale
    lower = np.minimum(np.floor(position).astype(np.int64), size_in - 1)
    upper = np.minimum(lower + 1, size_in - 1)
    return lower, upper, (position - lower).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Loaders called by rtstereo.api.load
# --------------------------------------------------------------------------------------------------


def load_onnx(
    path: str | Path,
    device: str = "cpu",
    precision: str = "fp32",
    settings: dict[str, Any] | None = None,
    *,
    providers: str | list[str] | None = None,
    threads: int | None = None,
    engine_cache: str | Path | None = None,
    registered: ModelSpec | None = None,
) -> Predictor:
    """A Predictor for a file written by ``rtstereo export``.

    Args:
        path: the ``.onnx`` file (for a two-pass export, the refinement file ``m.onnx``; its
            ``m_init.onnx`` is found beside it).
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32``, or ``fp16`` to turn on TensorRT's fp16 mode for an fp32 file (an fp16
            export runs in fp16 whatever this says).
        settings: must agree with the settings the file was exported with (they are baked in);
            ``threads`` and ``providers`` (``"tensorrt,cuda,cpu"``) configure ONNX Runtime.
        providers, threads, engine_cache: the same from Python (``engine_cache``: TensorRT engine
            folder).
        registered: the registry entry, when loading a packaged model.

    Returns:
        A :class:`Predictor` at the file's fixed size (other sizes are resized, with a warning), or,
        for a dynamic-size export, padding each pair to the size divisor like the PyTorch predictor.

    Raises:
        CheckpointError: the file is missing, damaged, or not an rtstereo export.
        InputError: settings that differ from the exported ones, or an impossible precision.
    """
    path = Path(path)
    overrides = dict(settings or {})
    threads = overrides.pop("threads", threads)
    providers = overrides.pop("providers", providers)
    if threads is not None:
        threads = coerce_setting("threads", threads, 1)
    if precision not in ("fp32", "fp16"):
        raise InputError(f"ONNX Runtime runs fp32 or fp16 exports, not '{precision}'; use --precision fp32")
    session_args = {
        "device": device,
        "providers": providers,
        "threads": threads,
        "engine_cache": engine_cache,
    }
    session = open_session(path, precision=precision, **session_args)
    contract = read_contract(session, path)
    if contract.role == "init":
        raise InputError(
            f"{path} is the half-size first pass of a two-pass export; load the refinement model beside it "
            f"({path.name.removesuffix('_init.onnx')}.onnx), which runs both"
        )
    _check_settings(contract, overrides, path)
    if (
        precision == "fp16"
        and contract.precision != "fp16"
        and session.get_providers()[0] != "TensorrtExecutionProvider"
    ):
        raise InputError(
            f"{path} holds an fp32 model and only TensorRT can run it in fp16; export it with --fp16 "
            "(rtstereo export ... --fp16), or use --precision fp32"
        )
    run_precision = "fp16" if "fp16" in (precision, contract.precision) else "fp32"
    if contract.role == "refine":
        init_path = path.with_name(contract.companion or companion_path(path).name)
        init_session = open_session(init_path, precision=precision, **session_args)
        backend: Backend = TwoPassBackend(init_session, init_path, session, path, device, run_precision)
    else:
        backend = OnnxRuntimeBackend(session, path, device, run_precision)
    if registered is None:
        from ..errors import ModelNotFoundError
        from ..models import get_spec

        try:
            registered = get_spec(contract.model)
        except ModelNotFoundError:
            registered = None
    return Predictor(
        contract.spec(registered),
        contract.settings,
        backend,
        fixed_size_hw=contract.fixed_size_hw,
    )


def _check_settings(contract: OnnxContract, overrides: dict[str, Any], path: Path) -> None:
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in contract.settings:
            known = ", ".join(sorted(contract.settings)) or "none"
            raise InputError(
                f"{path} was exported without a setting '{key}' (its settings: {known}; runtime options: "
                f"{', '.join(RUNTIME_SETTINGS)})"
            )
        baked = contract.settings[key]
        wanted = coerce_setting(key, value, baked)
        if key in ("max_disp", "iters") and isinstance(wanted, (int, float)) and wanted < 1:
            raise InputError(f"{key} must be >= 1, got {value}")  # no advice to re-export with a value that cannot be
        if wanted != baked:
            raise InputError(
                f"{path} was exported with {key}={baked} and cannot run with {key}={value}: the value "
                f"is fixed in the graph; re-export with `rtstereo export {contract.model} ... "
                f"--set {key}={value}`"
            )


def packaged_path(spec: ModelSpec) -> Path:
    """Where a packaged network's file is (``rtstereo/weights/<spec.onnx_file>``); it must be there."""
    from importlib import resources

    if not spec.onnx_file:
        raise CheckpointError(f"model '{spec.name}' is of kind onnx but names no onnx_file in the registry")
    path = Path(str(resources.files("rtstereo") / "weights" / spec.onnx_file))
    if not path.is_file():
        raise CheckpointError(
            f"the packaged model file {path} is missing; reinstall rtstereo (pip install --force-reinstall rtstereo)"
        )
    return path


def load_packaged(
    spec: ModelSpec, device: str = "cpu", precision: str = "fp32", settings: dict[str, Any] | None = None
) -> Predictor:
    """The network shipped inside the package (:func:`packaged_path`)."""
    return load_onnx(packaged_path(spec), device=device, precision=precision, settings=settings, registered=spec)


class ExportedModel(Protocol):
    """What an export function hands back: the verified file(s) for one input size."""

    @property
    def path(self) -> Path:
        """The ``.onnx`` file (for a two-pass export, the full-size refinement)."""
        ...

    @property
    def init_path(self) -> Path | None:
        """The half-size first pass of a two-pass export, else ``None``."""
        ...


#: ``export(size_hw, left, right)``: the network exported (or found in a cache) at the padded size
#: ``size_hw`` and checked on the prepared float32 ``(1, 3, H, W)`` inputs ``left`` and ``right``.
ExportFunction = Callable[[tuple[int, int], np.ndarray, np.ndarray], ExportedModel]


def predictor_from_export(
    spec: ModelSpec,
    settings: dict[str, Any],
    export: ExportFunction,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    threads: int | None = None,
    providers: str | list[str] | None = None,
) -> Predictor:
    """A network run by ONNX Runtime, exported by ``export`` on first use at each padded input size.

    The runtime does not export anything itself: the caller passes the function that does
    (``rtstereo.export.on_demand.predictor_from_module`` passes the exporter's disk cache), so this
    layer imports nothing from the exporter.

    Args:
        spec: the registry entry (normalisation, size divisor).
        settings: resolved settings of the network.
        export: makes or finds the export for one size (:data:`ExportFunction`).
        device, precision: as for :func:`load_onnx`; ``fp16`` runs a half-precision export.
        threads, providers: ONNX Runtime options.

    Returns:
        A :class:`Predictor` that pads (not resizes) like the PyTorch one.

    Raises:
        InputError: a precision other than fp32/fp16, or a bad device.
    """
    if precision not in ("fp32", "fp16"):
        raise InputError(f"ONNX Runtime runs fp32 or fp16, not '{precision}'; use --precision fp32 or fp16")
    _device_id(device)
    backend = ExportOnFirstUseBackend(export, device=device, precision=precision, threads=threads, providers=providers)
    return Predictor(spec, settings, backend)


class ExportOnFirstUseBackend(Backend):
    """Runs ONNX Runtime on the export made by ``export`` for each new input size (one session per size)."""

    name = "onnxruntime"

    def __init__(
        self,
        export: ExportFunction,
        device: str,
        precision: str,
        threads: int | None,
        providers: str | list[str] | None,
    ):
        self.export = export
        self.device = device
        self.precision = precision
        self.threads = threads
        self.providers = providers
        self.sessions: OrderedDict[tuple[int, int], Backend] = OrderedDict()
        self.exports: dict[tuple[int, int], ExportedModel] = {}

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        size_hw = (int(left.shape[-2]), int(left.shape[-1]))
        backend = self.sessions.get(size_hw)
        if backend is None:
            backend = self._prepare(size_hw, left, right)
        self.sessions.move_to_end(size_hw)
        return backend.run(left, right)

    def _prepare(self, size_hw: tuple[int, int], left: np.ndarray, right: np.ndarray) -> Backend:
        result = self.export(size_hw, left, right)
        self.exports[size_hw] = result
        args = {
            "device": self.device,
            "precision": self.precision,
            "providers": self.providers,
            "threads": self.threads,
        }
        session = open_session(result.path, **args)
        if result.init_path is not None:
            backend: Backend = TwoPassBackend(
                open_session(result.init_path, **args),
                result.init_path,
                session,
                result.path,
                self.device,
                self.precision,
            )
        else:
            backend = OnnxRuntimeBackend(session, result.path, self.device, self.precision)
        self.sessions[size_hw] = backend
        while len(self.sessions) > MAX_CACHED_SIZES:
            self.sessions.popitem(last=False)
        return backend

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.name, "device": self.device, "precision": self.precision}
        if self.sessions:
            last = next(reversed(self.sessions.values()))
            info.update({k: v for k, v in last.describe().items() if k in ("providers", "onnx")})
        return info
