"""The ONNX Runtime backend: exported ``.onnx`` files, the packaged network, and registry networks.

Everything here runs with ONNX Runtime, numpy and OpenCV only, and imports nothing from the
exporter (:mod:`rtstereo.export` depends on this module, not the other way round).

Providers (:mod:`.providers`). ``device="cpu"`` uses the CPU execution provider; ``device="cuda[:N]"``
TensorRT, then CUDA (``onnxruntime-gpu``), with the TensorRT engines cached in ``engine_cache``
(``<cache>/tensorrt`` by default) and fp16 kernels for ``--precision fp16``. A GPU session's first
output is checked against the CPU provider's (``parity=warn|refuse|off``) and the result recorded.

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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from ..errors import CheckpointError, InputError, ModelNotFoundError, RtStereoWarning, warn
from ..models.registry import ModelSpec, coerce_setting, unknown_setting_hint
from ..text import shortened
from .agreement import check_action
from .backends import Backend
from .postprocess import POSTPROCESS_SETTINGS
from .predictor import KEEP_ASPECT_ADVICE, Predictor, SmallInputWarning, too_small_for
from .providers import (  # noqa: F401 - re-exported: the session functions were defined here before
    GPU_PROVIDERS,
    PROVIDER_NAMES,
    ProviderCheck,
    ProviderFallbackWarning,
    _device_id,
    _ort,
    check_gpu_build,
    default_threads,
    engine_cache_dir,
    engine_cache_folder,
    engine_files,
    open_session,
    parse_providers,
    provider_list,
)

METADATA_KEY = "rtstereo"
FORMAT_TAG = "rtstereo-onnx"
ROLES = ("single", "init", "refine", "public", "rt-stereo")
#: Settings that configure ONNX Runtime rather than the network; accepted for exported files.
RUNTIME_SETTINGS = ("threads", "providers", "engine_cache", "parity")
#: Sessions kept per on-the-fly backend (one per padded input size).
MAX_CACHED_SIZES = 4


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
        role: ``single``; or ``refine`` / ``init`` for the two files of a two-pass export; ``public`` for a public
            CREStereo file, ``rt-stereo`` for RT-Stereo's GwcNet ``model.onnx`` (both read from the graph).
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
            min_size_px=registered.min_size_px if registered else 0,
            licence=registered.licence if registered else "",
            fill_left_border=registered.fill_left_border if registered else False,
            refine_edges=registered.refine_edges if registered else False,
        )


def other_size_advice(contract: OnnxContract) -> str:
    """How to run a fixed-size file at another size without resizing: ``--dynamic`` where the export takes it.

    A two-pass CREStereo export and AnyNet's stage 4 are refused with ``--dynamic``: advising it sent users
    to an export that fails.

    Examples:
        >>> other_size_advice(OnnxContract("crestereo", {"two_pass": True}, "raw255", 8, (64, 128), role="refine"))
        're-export it at that size: a two-pass CREStereo export has fixed sizes'
        >>> other_size_advice(OnnxContract("rtnet", {}, "imagenet", 32, (64, 96)))
        'export it with --dynamic for any size'
    """
    if contract.role == "public":
        return "the public file made at that size, whose name says its HxW"
    if contract.role == "rt-stereo":
        return "export its checkpoint at that size: rtstereo export gwcnet-gc --weights CKPT --size HxW (or --dynamic)"
    if contract.role in ("refine", "init"):
        return "re-export it at that size: a two-pass CREStereo export has fixed sizes"
    if contract.model == "anynet" and contract.settings.get("stage") == 4:
        return "re-export it at that size: AnyNet's stage 4 has a fixed size"
    return "export it with --dynamic for any size"


def companion_path(path: str | Path) -> Path:
    """File name of the half-size ``init`` model of a two-pass export: ``m.onnx`` -> ``m_init.onnx``.

    Examples:
        >>> companion_path("out/crestereo.onnx").name
        'crestereo_init.onnx'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}_init{path.suffix}")


def refinement_path(path: str | Path) -> Path:
    """File name of the refinement model beside the ``init`` model of a two-pass export, the inverse of
    :func:`companion_path`: ``m_init.onnx`` -> ``m.onnx``, the suffix as it is written (``m_init.ONNX`` was
    taken for ``m_init.ONNX.onnx``).

    Examples:
        >>> refinement_path("out/crestereo_init.onnx").name, refinement_path("CRE_init.ONNX").name
        ('crestereo.onnx', 'CRE.ONNX')
    """
    path = Path(path)
    return path.with_name(f"{path.stem.removesuffix('_init')}{path.suffix}")


# --------------------------------------------------------------------------------------------------
# Sessions and providers
# --------------------------------------------------------------------------------------------------


def keep_aspect_advice(contract: OnnxContract) -> str:
    """What runs a pair of another aspect ratio than a fixed-size file's without stretching its views.

    A public CREStereo file has no export to redo, and a file whose export refuses ``--dynamic`` cannot be made so:
    the warning had advised ``--dynamic`` for both.

    Examples:
        >>> keep_aspect_advice(OnnxContract("crestereo", {"two_pass": True}, "raw255", 1, (64, 128), role="public"))
        "the public file made at the pair's aspect ratio (its name says its HxW) keeps it"
        >>> keep_aspect_advice(OnnxContract("crestereo", {"two_pass": True}, "raw255", 8, (64, 128), role="refine"))
        "an export at the pair's aspect ratio keeps it (a two-pass CREStereo export has fixed sizes)"
    """
    if contract.role == "public":
        return "the public file made at the pair's aspect ratio (its name says its HxW) keeps it"
    advice = other_size_advice(contract)
    if advice.startswith("re-export it at that size: "):
        return f"an export at the pair's aspect ratio keeps it ({advice.removeprefix('re-export it at that size: ')})"
    return KEEP_ASPECT_ADVICE


def read_contract(session: Any, path: str | Path) -> OnnxContract:
    """The :class:`OnnxContract` stored in an open session's model metadata; for a public CREStereo file or an
    RT-Stereo ``model.onnx``, which have none, the one the graph shows (:func:`.public_onnx.public_crestereo_contract`,
    :func:`.rt_stereo_onnx.rt_stereo_contract`)."""
    metadata = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in metadata:
        from .public_onnx import public_crestereo_contract
        from .rt_stereo_onnx import rt_stereo_contract

        public = public_crestereo_contract(session, path) or rt_stereo_contract(session, path)
        if public is not None:
            return public
        raise CheckpointError(
            f"{path} has no rtstereo metadata (input size, normalisation, model settings), so rtstereo "
            "cannot know how to feed it (of the files other tools write, it runs the public CREStereo ones and "
            "RT-Stereo's GwcNet model.onnx); "
            "export it with `rtstereo export MODEL --weights W --size HxW -o FILE`"
        )
    return OnnxContract.from_json(metadata[METADATA_KEY], path)


def file_contract(path: str | Path) -> OnnxContract | None:
    """The :class:`OnnxContract` stored in an rtstereo export, read from the file without opening a session.

    A session builds the whole graph (about 60 ms for the packaged rtnet); the metadata alone says what the file
    is, so that a caller can open the session it needs at once (the hybrid's guided network, which takes every
    thread, was opened twice).

    Returns:
        The contract, or ``None`` where the file holds none or cannot be read so (a public CREStereo file, a
        damaged one): :func:`read_contract` on an open session then says what it is.
    """
    try:
        metadata = onnx_metadata(path)
        return OnnxContract.from_json(metadata[METADATA_KEY], path) if METADATA_KEY in metadata else None
    except (OSError, ValueError, CheckpointError):
        return None


_MODEL_METADATA_FIELD = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {1: key, 2: value}


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """An ONNX file's ``metadata_props``, walking the top level of its ModelProto and skipping the rest (the graph).

    Raises:
        OSError: the file cannot be read.
        ValueError: the file is not a protocol buffer as ONNX writes it (truncated, another format).
    """
    metadata = {}
    with open(path, "rb") as stream:
        for number, start, length in _messages(stream, 0, os.fstat(stream.fileno()).st_size):
            if number == _MODEL_METADATA_FIELD:
                entry = _text_fields(stream, start, length)
                metadata[entry.get(1, "")] = entry.get(2, "")
    return metadata


def _varint(stream: Any) -> int:
    value = shift = 0
    while shift < 64:
        byte = stream.read(1)
        if not byte:
            raise ValueError("the file ends inside a number")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
    raise ValueError("a number longer than 64 bits")


def _fields(stream: BinaryIO, start: int, end: int):
    """The protocol buffer reader of ONNX files' metadata and of RT-Stereo graphs' levels (rt_stereo_onnx):
    ``(field number, wire type, value)`` of a message in ``start:end``: a number for a varint, ``(start, length)``
    for a length-delimited field (read or not by the caller, then skipped), ``None`` for a fixed-size number."""
    position = start
    while position < end:
        stream.seek(position)
        number, wire_type = divmod(_varint(stream), 8)
        if wire_type == 0:
            value: Any = _varint(stream)
            position = stream.tell()
        elif wire_type in (1, 5):  # 64- and 32-bit numbers
            value, position = None, stream.tell() + (8 if wire_type == 1 else 4)
        elif wire_type == 2:
            length = _varint(stream)
            value = (stream.tell(), length)
            position = stream.tell() + length
        else:
            raise ValueError(f"wire type {wire_type} is not one ONNX writes")
        if position > end:
            raise ValueError("a field runs past the end of its message")
        yield number, wire_type, value


def _messages(stream: BinaryIO, start: int, end: int):
    """``(field number, start, length)`` of the length-delimited fields of the message in ``start:end``."""
    for number, wire_type, value in _fields(stream, start, end):
        if wire_type == 2:
            yield (number, *value)


def _packed_varints(stream: BinaryIO, start: int, length: int) -> list[int]:
    stream.seek(start)
    values = []
    while stream.tell() < start + length:
        values.append(_varint(stream))
    return values


def _text_fields(stream: BinaryIO, start: int, length: int) -> dict[int, str]:
    """The length-delimited fields of the message of ``length`` bytes at ``start``, as text by field number (a
    metadata entry's key and value, an external tensor's location and offset)."""
    texts = {}
    for number, wire_type, value in _fields(stream, start, start + length):
        if wire_type == 2:
            stream.seek(value[0])
            texts[number] = stream.read(value[1]).decode("utf-8", "replace")
    return texts


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


class _Checked(Backend):
    """A backend whose first run on a GPU provider may be checked against the CPU provider."""

    #: set by :func:`_check_provider`: the check and a maker of the same backend on the CPU provider
    check: ProviderCheck | None = None
    reference: Callable[[], Backend] | None = None
    device: str
    precision: str

    def checked(self, output: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        if self.check is not None and self.check.pending and self.reference is not None:
            reference = self.reference
            self.check(output, lambda: reference().run(left, right))
        return output

    def check_report(self) -> dict[str, Any]:
        return self.check.describe() if self.check is not None else {}

    def _description(self, last: _Session, **files: str) -> dict[str, Any]:
        """:meth:`describe` for a backend whose ``last`` session gives the disparity; ``files``: its other ones.
        ``threads``: the session's intra-op threads where they were set (``--threads``, ``$RTSTEREO_THREADS``,
        ``threads=N``, the hybrid's share); without it ONNX Runtime picks them (one per physical core)."""
        threads = last.session.get_session_options().intra_op_num_threads
        providers = last.session.get_providers()[:1]
        return {
            "backend": self.name,
            # where it ran: --device cuda with providers=cuda,cpu falls back to the CPU (with a warning)
            "device": "cpu" if providers[0] == "CPUExecutionProvider" else self.device,
            "precision": self.precision,
            "providers": providers,
            **({"threads": threads} if threads > 0 else {}),
            "onnx": str(last.path),
            **files,
            **self.check_report(),
        }


class OnnxRuntimeBackend(_Checked):
    """An exported single-pass model: inputs ``left``, ``right``, output ``disparity``."""

    name = "onnxruntime"
    output_name = "disparity"

    def __init__(self, session: Any, path: str | Path, device: str = "cpu", precision: str = "fp32"):
        self.model = _Session(session, Path(path), ("left", "right"), self.output_name)
        self.device = device
        self.precision = precision

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return self.checked(_disparity_of(self.model(left=left, right=right)), left, right)

    def describe(self) -> dict[str, Any]:
        return self._description(self.model)


class TwoPassBackend(_Checked):
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
        return self.checked(_disparity_of(self.refine(left=left, right=right, flow_init=flow_init)), left, right)

    def describe(self) -> dict[str, Any]:
        return self._description(self.refine, onnx_init=str(self.init.path))


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


def check_role(contract: OnnxContract, path: Path) -> None:
    """Refuse a file of a two-pass export that cannot run as the model: its half-size first pass alone, or its
    refinement model without that first pass beside it.

    Raises:
        InputError: ``path`` is the first pass (its refinement model runs both).
        CheckpointError: the refinement model's first pass is missing.
    """
    if contract.role == "init":
        raise InputError(
            f"{path} is the half-size first pass of a two-pass export; load the refinement model beside it "
            f"({refinement_path(path).name}), which runs both"
        )
    init_path = path.with_name(contract.companion or companion_path(path).name) if contract.role == "refine" else None
    if init_path is not None and not init_path.is_file():  # it said "ONNX model not found: cre_init.onnx" alone
        raise CheckpointError(
            f"{path} is the refinement model of a two-pass export, and its half-size first pass {init_path} is "
            "missing beside it: keep the two files together, or export again"
        )


def load_onnx(
    path: str | Path,
    device: str = "cpu",
    precision: str = "fp32",
    settings: dict[str, Any] | None = None,
    *,
    providers: str | list[str] | None = None,
    threads: int | None = None,
    engine_cache: str | Path | None = None,
    parity: str = "warn",
    registered: ModelSpec | None = None,
) -> Predictor:
    """A Predictor for a file written by ``rtstereo export``, or a public CREStereo ONNX file
    (:mod:`.public_onnx`).

    Args:
        path: the ``.onnx`` file (for a two-pass export, the refinement file ``m.onnx``; its
            ``m_init.onnx`` is found beside it).
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32``, or ``fp16`` to turn on TensorRT's fp16 mode for an fp32 file (an fp16
            export runs in fp16 whatever this says).
        settings: must agree with the settings the file was exported with (they are baked in);
            ``threads``, ``providers`` (``"tensorrt,cuda,cpu"``), ``engine_cache`` and ``parity``
            configure ONNX Runtime.
        providers, threads, engine_cache, parity: the same from Python (``engine_cache``: TensorRT
            engine folder; ``parity``: what a GPU provider's disagreement with the CPU provider on
            the first pair does, ``warn``, ``refuse`` or ``off``).
        registered: the registry entry, when loading a packaged model.

    Returns:
        A :class:`Predictor` at the file's fixed size (other sizes are resized, with a warning), or,
        for a dynamic-size export, padding each pair to the size divisor like the PyTorch predictor.

    Raises:
        CheckpointError: the file is missing, damaged, or neither an rtstereo export nor a public CREStereo file.
        InputError: settings that differ from the exported ones, or an impossible precision.
    """
    path = Path(path)
    overrides = dict(settings or {})
    threads = overrides.pop("threads", threads)
    providers = overrides.pop("providers", providers)
    engine_cache = engine_cache_folder(overrides.pop("engine_cache", None) or engine_cache)
    if providers is not None:  # checked now: a list of another type failed where the session opened, as a TypeError
        parse_providers(providers)
    parity = check_action(overrides.pop("parity", parity))
    if threads is not None:
        threads = coerce_setting("threads", threads, 1)
    if precision not in ("fp32", "fp16"):
        raise InputError(
            f"ONNX Runtime runs fp32 or fp16 exports, not '{precision}'; use --precision fp32 (precision= in Python)"
        )
    session_args = {
        "device": device,
        "providers": providers,
        "threads": threads,
        "engine_cache": engine_cache,
    }
    engines_before = engine_files(engine_cache)
    # TensorRT builds fp16 engines only when told to: an fp16 export given no --precision fp16 was built in fp32
    session_precision = "fp16" if precision == "fp16" or _fp16_file_on_tensorrt(path, session_args) else precision
    session = open_session(path, precision=session_precision, **session_args)
    contract = read_contract(session, path)
    check_role(contract, path)
    _check_settings(contract, overrides, path)
    if (
        precision == "fp16"
        and contract.precision != "fp16"
        and session.get_providers()[0] != "TensorrtExecutionProvider"
    ):
        raise InputError(_fp16_refusal(path, contract.precision, registered))
    # What the file runs in: an int8 export is int8 whatever --precision says (it read fp32 in results)
    run_precision = "fp16" if "fp16" in (precision, contract.precision) else "fp32"
    if contract.precision == "int8":
        run_precision = "int8"
    say_half_on_the_cpu(session, run_precision, path.name, "use a file exported without --fp16")
    init_path = path.with_name(contract.companion or companion_path(path).name) if contract.role == "refine" else None
    backend = _backend(session, path, init_path, session_precision, run_precision, session_args)
    _check_provider(backend, session, path, init_path, run_precision, threads, parity, engine_cache, engines_before)
    if registered is None:
        from ..models import get_spec

        try:
            registered = get_spec(contract.model)
        except ModelNotFoundError:
            registered = None
    if contract.role == "rt-stereo":  # once per load, and only for a load that works: what rtstereo took it for
        from .rt_stereo_onnx import NoMetadataWarning, assumed

        warn(assumed(contract, path), NoMetadataWarning)
    fixed_hw = contract.fixed_size_hw
    if fixed_hw and contract.role != "public" and too_small_for(fixed_hw, contract.size_divisor):
        # The predictor warns so of a pair it runs at its own size; every pair runs at this file's size, unsaid.
        warn(
            f"{path} is fixed at {fixed_hw[0]}x{fixed_hw[1]} (HxW), where {contract.model}'s coarsest level "
            f"(1/{contract.size_divisor}) spans fewer than two cells: every map it gives is not meaningful; export it "
            f"at {max(fixed_hw[0], 2 * contract.size_divisor)}x{max(fixed_hw[1], 2 * contract.size_divisor)} or more",
            SmallInputWarning,
        )
    return Predictor(
        contract.spec(registered),
        contract.settings,
        backend,
        fixed_size_hw=contract.fixed_size_hw,
        keep_aspect_advice=keep_aspect_advice(contract),
        range_fixed_in=path.name if "max_disp" in contract.settings else None,
    )


def _fp16_file_on_tensorrt(path: Path, session_args: dict[str, Any]) -> bool:
    """Whether ``path`` is an fp16 export that TensorRT would run (in the list asked for, and in this build).

    The file's precision is in its metadata, read through a CPU session before the GPU one is opened: TensorRT's
    fp16 mode is an option of the session, and its engine is built, and cached, as the session opens.
    """
    asked = provider_list(session_args["device"], "fp32", session_args["providers"], session_args["engine_cache"])
    tensorrt = "TensorrtExecutionProvider"
    if all(name != tensorrt for name, _ in asked) or tensorrt not in _ort().get_available_providers():
        return False
    return read_contract(open_session(path, threads=session_args["threads"]), path).precision == "fp16"


class HalfOnCpuWarning(RtStereoWarning):
    """An fp16 model on ONNX Runtime's CPU provider: float16's rounding without float16's speed."""


def say_half_on_the_cpu(session: Any, precision: str, what: str, instead: str) -> None:
    """Warn (:class:`HalfOnCpuWarning`) when an fp16 model runs on ONNX Runtime's CPU provider, which runs
    the float16 operators it has no kernel for in float32 behind casts it inserts (InsertCastTransformer):
    fp16's rounding and none of its speed (rtnet 240x320: 16.5 ms against 14.6 ms in fp32)."""
    if precision == "fp16" and session.get_providers()[0] == "CPUExecutionProvider":
        warn(
            f"{what} is float16 and runs on ONNX Runtime's CPU provider, which computes the float16 operators it "
            "has no kernel for in float32 behind casts: fp16's rounding without fp16's speed (often slower than "
            f"fp32); on the CPU {instead}; fp16 pays off with --device cuda (device= in Python)",
            HalfOnCpuWarning,
        )


def _backend(
    session: Any, path: Path, init_path: Path | None, precision: str, run_precision: str, session_args: dict[str, Any]
) -> _Checked:
    """The backend of one export: single-pass, or two-pass with its half-size companion opened alike."""
    device = session_args["device"]
    role = read_contract(session, path).role
    if role == "public":
        from .public_onnx import PublicCREStereoBackend

        return PublicCREStereoBackend(session, path, device, run_precision)
    if role == "rt-stereo":
        from .rt_stereo_onnx import RtStereoBackend

        return RtStereoBackend(session, path, device, run_precision)
    if init_path is None:
        return OnnxRuntimeBackend(session, path, device, run_precision)
    init_session = open_session(init_path, precision=precision, **session_args)
    check_companion(read_contract(session, path), path, read_contract(init_session, init_path), init_path)
    return TwoPassBackend(init_session, init_path, session, path, device, run_precision)


def check_companion(contract: OnnxContract, path: Path, init_contract: OnnxContract, init_path: Path) -> None:
    """Refuse a file in the place of a two-pass export's half-size pass that is not that export's own: another
    export's first pass of another size failed inside ONNX Runtime on the first pair, as its traceback, and one of
    other weights or settings ran without a word.

    Raises:
        CheckpointError: the file beside ``path`` differs from its first pass in role, model, size, settings,
            precision or source weights (each difference is named).
    """
    expected_hw = None if contract.fixed_size_hw is None else tuple(v // 2 for v in contract.fixed_size_hw)
    checks = (
        ("role", init_contract.role, "init"),
        ("model", init_contract.model, contract.model),
        ("size", init_contract.fixed_size_hw, expected_hw),
        ("settings", init_contract.settings, contract.settings),
        ("precision", init_contract.precision, contract.precision),
        ("weights sha256", init_contract.checkpoint_sha256, contract.checkpoint_sha256),
    )

    def said(what: str, value: Any) -> str:
        if what == "size" and value is not None:
            return f"{value[0]}x{value[1]} (HxW)"
        return str(value)[:12] if what == "weights sha256" and value else str(value)

    differences = [f"{what} {said(what, got)}, not {said(what, want)}" for what, got, want in checks if got != want]
    if differences:
        raise CheckpointError(
            f"{init_path}, beside {path}, is not the half-size first pass of its two-pass export "
            f"({'; '.join(differences)}): keep the two files of one export together, or export again"
        )


def _check_provider(
    backend: _Checked,
    session: Any,
    path: Path,
    init_path: Path | None,
    run_precision: str,
    threads: int | None,
    parity: str,
    engine_cache: Path,
    engines_before: frozenset[tuple[str, int]],
) -> None:
    """Arm the GPU-vs-CPU provider check of the backend's first run (nothing on the CPU provider)."""
    provider = session.get_providers()[0]
    if provider not in GPU_PROVIDERS or parity == "off":
        return
    cpu_args = {"device": "cpu", "providers": None, "threads": threads, "engine_cache": engine_cache}
    backend.check = ProviderCheck(provider, run_precision, parity, engine_cache, engines_before)
    backend.reference = lambda: _backend(
        open_session(path, **cpu_args), path, init_path, "fp32", run_precision, cpu_args
    )


def _check_settings(contract: OnnxContract, overrides: dict[str, Any], path: Path) -> None:
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "iters" and key not in contract.settings and contract.role == "public":  # it has some: unknown
            raise InputError(
                f"{path}: a public CREStereo file's iterations are fixed in its graph and known from its name only "
                f"(iterN, as in crestereo_init_iter10_480x640.onnx), which this one does not hold: --iters cannot "
                "be checked against them; leave --iters out (iters= in Python), or give the file its published name"
            )
        if key == "max_disp" and key not in contract.settings and contract.role == "rt-stereo":
            raise InputError(
                f"{path}: this RT-Stereo file's disparity range is fixed in its graph, and rtstereo could not read it "
                "there (no soft-argmin levels 0..D-1): --max-disp cannot be checked against it; leave --max-disp out "
                "(max_disp= in Python)"
            )
        if key not in contract.settings:
            known = ", ".join(sorted(contract.settings)) or "none"
            hint = unknown_setting_hint(key, [*contract.settings, *POSTPROCESS_SETTINGS, *RUNTIME_SETTINGS])
            # A public file was never exported by rtstereo, and CREStereo has no disparity range to set (max_disp)
            made = {
                "public": "is a public CREStereo file, which has no",
                "rt-stereo": "is an RT-Stereo GwcNet file, which has no",
            }.get(contract.role, "was exported without a")
            raise InputError(
                f"{path} {made} setting '{shortened(key)}' (its settings: {known}; and, as every model, "
                f"{', '.join(POSTPROCESS_SETTINGS)}; runtime options: {', '.join(RUNTIME_SETTINGS)})" + hint
            )
        baked = contract.settings[key]
        wanted = coerce_setting(key, value, baked)
        value = shortened(value)  # as the messages below echo it
        if key in ("max_disp", "iters") and isinstance(wanted, (int, float)) and wanted < 1:
            raise InputError(f"{key} must be >= 1, got {value}")  # no advice to re-export with a value that cannot be
        if wanted != baked and contract.role == "public":
            other = (
                f"the public file of {value} iterations (iter{value} in its name)"
                if key == "iters"
                else "the public file of the other layout (crestereo_combined_*: two passes; crestereo_init_*: one)"
            )
            raise InputError(
                f"{path} was made with {key}={baked} and cannot run with {key}={value}: the value is fixed in the "
                f"graph; use {other}"
            )
        if wanted != baked and key in _weight_settings(contract.model):
            # "re-export with --set max_disp=64" sent the user to a refusal: the checkpoint fits 192 only
            raise InputError(
                f"{path} was exported with {key}={baked} and cannot run with {key}={value}: the value is fixed in "
                f"the graph, and {contract.model}'s weights fit that value only (another {key} is another network, "
                f"trained for it: rtstereo train --set {key}={value}); leave {key} out"
            )
        if wanted != baked:
            raise InputError(
                f"{path} was exported with {key}={baked} and cannot run with {key}={value}: the value "
                f"is fixed in the graph; re-export with `rtstereo export {contract.model} ... "
                f"--set {key}={value}`"
            )


def _weight_settings(model: str) -> tuple[str, ...]:
    """The settings that shape ``model``'s weights (:attr:`ModelSpec.weight_settings`); none for a model the registry
    does not know (a file of a later version)."""
    from ..models import get_spec

    try:
        return get_spec(model).weight_settings
    except ModelNotFoundError:
        return ()


def _fp16_refusal(path: Path, file_precision: str, registered: ModelSpec | None) -> str:
    """Why ``--precision fp16`` cannot run ``path`` here, and what can. ``rtstereo export --fp16`` re-exports
    a PyTorch network (torch needed): a packaged network ships as ONNX only, so for it that is no way."""
    refused = f"{path} holds an {file_precision} model and only TensorRT can run it in fp16"
    fp32 = "use --precision fp32 (precision= in Python)"
    tensorrt = "--device cuda with onnxruntime-gpu's TensorRT provider"
    if registered is not None and registered.kind == "onnx":
        return (
            f"{refused} ({tensorrt}); the packaged {registered.name} ships in {file_precision} only and cannot be "
            f"exported again (rtstereo export takes PyTorch networks): {fp32}"
        )
    return (
        f"{refused} ({tensorrt}); or export its PyTorch network again with --fp16 (rtstereo export ... --fp16, "
        f"which needs torch), or {fp32}"
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
    engine_cache: str | Path | None = None,
    parity: str = "warn",
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
        threads, providers, engine_cache, parity: ONNX Runtime options, as for :func:`load_onnx`.

    Returns:
        A :class:`Predictor` that pads (not resizes) like the PyTorch one.

    Raises:
        InputError: a precision other than fp32/fp16, or a bad device.
    """
    if precision not in ("fp32", "fp16"):
        raise InputError(
            f"ONNX Runtime runs fp32 or fp16, not '{precision}'; use --precision fp32 or fp16 (precision= in Python)"
        )
    _device_id(device)
    if providers is not None:  # now, not at the first pair's export
        parse_providers(providers)
    check_gpu_build(device, providers)  # before any export, which the first pair would start
    backend = ExportOnFirstUseBackend(
        export,
        device=device,
        precision=precision,
        threads=threads,
        providers=providers,
        engine_cache=engine_cache_folder(engine_cache),
        parity=check_action(parity),
    )
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
        engine_cache: Path | None = None,
        parity: str = "warn",
    ):
        self.export = export
        self.device = device
        self.precision = precision
        self.threads = threads
        self.providers = providers
        self.engine_cache = engine_cache or engine_cache_dir()
        self.parity = parity
        self.sessions: OrderedDict[tuple[int, int], _Checked] = OrderedDict()
        self.exports: dict[tuple[int, int], ExportedModel] = {}
        # Predictors may be called from several threads at once: the sessions are looked up and evicted under
        # _lock, one export runs at a time (two threads with a new size made it twice, into one cache file),
        # and each thread's setup time is its own (one thread took another's export and reported a negative
        # inference time).
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._setup = threading.local()

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        size_hw = (int(left.shape[-2]), int(left.shape[-1]))
        backend = self._session(size_hw)
        if backend is None:
            start = time.perf_counter()
            with self._export_lock:  # waiting for another thread's export is setup time too, not the model's
                backend = self._session(size_hw) or self._prepare(size_hw, left, right)
            self._setup.ms = getattr(self._setup, "ms", 0.0) + (time.perf_counter() - start) * 1e3
        return backend.run(left, right)

    def _session(self, size_hw: tuple[int, int]) -> _Checked | None:
        """The session of ``size_hw``, made the most recently used, or ``None``."""
        with self._lock:
            backend = self.sessions.get(size_hw)
            if backend is not None:
                self.sessions.move_to_end(size_hw)
            return backend

    def take_setup_ms(self) -> float:
        """The export, its check against PyTorch and the session opening of a new size (seconds, where the
        model itself takes milliseconds), which the Predictor reports as ``export``, not ``inference``; the
        calling thread's own."""
        setup_ms, self._setup.ms = getattr(self._setup, "ms", 0.0), 0.0
        return setup_ms

    def _prepare(self, size_hw: tuple[int, int], left: np.ndarray, right: np.ndarray) -> _Checked:
        result = self.export(size_hw, left, right)
        args = {
            "device": self.device,
            "providers": self.providers,
            "threads": self.threads,
            "engine_cache": self.engine_cache,
        }
        engines_before = engine_files(self.engine_cache)
        session = open_session(result.path, precision=self.precision, **args)
        if not self.sessions:  # said once per predictor, not once per input size
            say_half_on_the_cpu(
                session, self.precision, "the network's fp16 export", "use --precision fp32 (precision= in Python)"
            )
        backend = _backend(session, result.path, result.init_path, self.precision, self.precision, args)
        _check_provider(
            backend,
            session,
            result.path,
            result.init_path,
            self.precision,
            self.threads,
            self.parity,
            self.engine_cache,
            engines_before,
        )
        with self._lock:
            self.exports[size_hw] = result
            self.sessions[size_hw] = backend
            while len(self.sessions) > MAX_CACHED_SIZES:
                self.sessions.popitem(last=False)
        return backend

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.name, "device": self.device, "precision": self.precision}
        with self._lock:
            last = next(reversed(self.sessions.values()), None)
        if last is not None:
            shared = ("device", "providers", "threads", "onnx", "provider_parity")
            info.update({k: v for k, v in last.describe().items() if k in shared})
        return info
