"""The ``model.onnx`` files of RT-Stereo (akashihi/RT-Stereo): GwcNet-gc exported by its ``onnx_export.py``.

They carry no rtstereo metadata. They are recognised by the graph's signature, which that exporter fixes (its
``input_names`` and ``output_names``, a traced network of one size), and which ``polygraphy surgeon sanitize`` and
``model_externalize.py`` (weights in ``<name>.ext`` beside the graph) keep:

- two inputs, ``left`` and ``right``, float32 ``(1, 3, H, W)`` of one fixed size (the export's ``--height`` and
  ``--width``);
- one output, ``output``, ``(1, H, W)``: the disparity in pixels at the input's resolution (GwcNet's eval head).

RT-Stereo's ``single_image.py`` feeds PIL's ``convert('RGB')`` images, and ``live_stereo.py`` the camera's grey
frames repeated to three channels, both scaled to 0..1 and normalised with ImageNet's mean and std channel by
channel in RGB order: rtstereo's ``imagenet`` normalisation, in its own RGB order. The scripts read the output as
the disparity, squeezed to ``(H, W)``.

The disparity range (the exporter's ``--disparity``, ``max_disp``) is not in the file's inputs or outputs: it is
read from the graph, as the levels ``0 .. D - 1`` of GwcNet's soft-argmin (``disparity_regression``), a float
constant of shape ``(1, D, 1, 1)`` (a ``Constant`` node as ``torch.onnx.export`` writes it, an initializer after
polygraphy's folding). Where no such constant is found the range is unknown: nothing is cut to it, and warnings
about a map reaching the top of its range are not given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import RtStereoWarning
from .onnx import OnnxContract, OnnxRuntimeBackend, _fields, _messages, _packed_varints, _text_fields

RT_STEREO_ROLE = "rt-stereo"
INPUT_NAMES = ("left", "right")
OUTPUT_NAME = "output"
#: The network RT-Stereo's onnx_export.py builds (``from models import GwcNet_GC``)
MODEL = "gwcnet-gc"

# Field numbers of onnx.proto: ModelProto.graph; GraphProto.node, .initializer; NodeProto.attribute;
# AttributeProto.t; TensorProto.dims, .data_type, .float_data, .raw_data, .external_data
_MODEL_GRAPH, _GRAPH_NODE, _GRAPH_INITIALIZER, _NODE_ATTRIBUTE, _ATTRIBUTE_TENSOR = 7, 1, 5, 5, 5
_DIMS, _DATA_TYPE, _FLOAT_DATA, _RAW_DATA, _EXTERNAL_DATA = 1, 2, 4, 9, 13
_FLOAT_TYPES = {1: "<f4", 10: "<f2", 11: "<f8"}  # TensorProto.FLOAT, FLOAT16, DOUBLE
_MOST_LEVELS = 4096  # a range past it is no stereo network's: such a constant is something else


class NoMetadataWarning(RtStereoWarning):
    """An ONNX file without rtstereo metadata, run as the graph's signature says (:func:`assumed` says how)."""


def rt_stereo_contract(session: Any, path: str | Path) -> OnnxContract | None:
    """The contract of an RT-Stereo ``model.onnx``, or ``None`` when the graph does not have its signature.

    Args:
        session: an open ONNX Runtime session of the file.
        path: the file (its graph is read for the disparity range).

    Returns:
        A contract with role ``rt-stereo``: model ``gwcnet-gc``, ``imagenet`` normalisation, the file's fixed size,
        and ``max_disp`` where the graph shows it (:func:`disparity_levels`).
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if tuple(arg.name for arg in inputs) != INPUT_NAMES or [arg.name for arg in outputs] != [OUTPUT_NAME]:
        return None
    if any(arg.type != "tensor(float)" for arg in (*inputs, *outputs)):
        return None
    shapes = {tuple(arg.shape) for arg in inputs}
    if len(shapes) != 1:
        return None
    shape = shapes.pop()
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape) or shape[:2] != (1, 3):
        return None
    size_hw = (int(shape[2]), int(shape[3]))
    output = tuple(outputs[0].shape)
    if len(output) != 3 or any(isinstance(d, int) and d != want for d, want in zip(output, (1, *size_hw))):
        return None
    levels = disparity_levels(path)
    return OnnxContract(
        model=MODEL,
        settings={} if levels is None else {"max_disp": levels},
        normalization="imagenet",
        size_divisor=1,
        fixed_size_hw=size_hw,
        role=RT_STEREO_ROLE,
        extra={"channel_order": "rgb"},
    )


def assumed(contract: OnnxContract, path: str | Path) -> str:
    """The sentence of the warning an RT-Stereo file gets when it is loaded: what rtstereo took it for."""
    height, width = contract.fixed_size_hw or (0, 0)
    levels = contract.settings.get("max_disp")
    known = (
        f"max disparity {levels} px (the levels of its soft-argmin)"
        if levels is not None
        else "max disparity unknown (the graph holds no soft-argmin levels 0..D-1 that rtstereo can read)"
    )
    return (
        f"{path} has no rtstereo metadata; its graph is that of RT-Stereo's onnx_export.py, so it runs as RT-Stereo's "
        f"scripts ran it: GwcNet-gc, RGB images scaled to 0..1 and ImageNet-normalised, {height}x{width} (HxW) "
        f"fixed in the graph (other sizes are resized to it; predict, video and live --fit crop cut "
        "their centred window), output 'output' read as the disparity in pixels, "
        f"{known}; `rtstereo export gwcnet-gc --weights CKPT` writes a file that says all this itself"
    )


def rt_stereo_file(path: str | Path) -> OnnxContract | None:
    """The contract of ``path`` when it is an RT-Stereo ``model.onnx`` (:func:`rt_stereo_contract`), else ``None``:
    another file, or one that does not open (its own load says why). For messages, which name its checkpoint."""
    from ..errors import RtStereoError
    from .onnx import read_contract
    from .providers import open_session

    try:
        contract = read_contract(open_session(path), path)
    except (RtStereoError, OSError):
        return None
    return contract if contract.role == RT_STEREO_ROLE else None


def from_its_checkpoint(contract: OnnxContract) -> str:
    """The options that run the network an RT-Stereo file was exported from, from that checkpoint (RT-Stereo's users
    have GwcNet's ``sceneflow.ckpt``; an rtstereo checkpoint they do not): ``--model gwcnet-gc --weights ...``, with
    the file's disparity range where the graph shows it."""
    levels = contract.settings.get("max_disp")
    return f"--model {MODEL} --weights sceneflow.ckpt" + (f" --max-disp {levels}" if levels is not None else "")


class RtStereoBackend(OnnxRuntimeBackend):
    """An RT-Stereo ``model.onnx``: an rtstereo export's inputs, with the disparity in ``output``."""

    output_name = OUTPUT_NAME


def disparity_levels(path: str | Path) -> int | None:
    """``D`` of GwcNet's soft-argmin levels ``0 .. D - 1``, a float constant ``(1, D, 1, 1)`` in the graph of ``path``.

    The file is walked as protocol buffers, reading only the graph's small tensors (no ``onnx`` package: inference
    needs ONNX Runtime alone); levels kept in an external data file beside the graph are read from it.

    Returns:
        ``D``, or ``None`` where the graph holds no such constant, or several of different ``D``, or cannot be read.
    """
    path = Path(path)
    found: set[int] = set()
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            for field, start, length in _messages(stream, 0, size):
                if field == _MODEL_GRAPH:
                    found |= _graph_levels(stream, start, start + length, path.parent)
    except (OSError, ValueError):
        return None
    return found.pop() if len(found) == 1 else None


def _graph_levels(stream: BinaryIO, start: int, end: int, folder: Path) -> set[int]:
    found: set[int] = set()
    for field, at, length in _messages(stream, start, end):
        if field == _GRAPH_INITIALIZER:
            tensors = [(at, length)]
        elif field == _GRAPH_NODE:  # a Constant node's value
            attributes = [(a, n) for f, a, n in _messages(stream, at, at + length) if f == _NODE_ATTRIBUTE]
            tensors = [
                (t, m) for a, n in attributes for f, t, m in _messages(stream, a, a + n) if f == _ATTRIBUTE_TENSOR
            ]
        else:
            continue
        for tensor_at, tensor_length in tensors:
            levels = _levels(stream, tensor_at, tensor_at + tensor_length, folder)
            if levels is not None:
                found.add(levels)
    return found


def _levels(stream: BinaryIO, start: int, end: int, folder: Path) -> int | None:
    """``D`` when the tensor in ``start:end`` is the float ``(1, D, 1, 1)`` holding ``0 .. D - 1``, else ``None``."""
    dims: list[int] = []
    data_type, data, external = 0, {}, {}
    for field, wire_type, value in _fields(stream, start, end):
        if field == _DIMS:
            dims += [value] if wire_type == 0 else _packed_varints(stream, *value)
        elif field == _DATA_TYPE and wire_type == 0:
            data_type = value
        elif field in (_FLOAT_DATA, _RAW_DATA) and wire_type == 2:
            data[field] = value
        elif field == _EXTERNAL_DATA and wire_type == 2:
            entry = _text_fields(stream, *value)
            external[entry.get(1, "")] = entry.get(2, "")
    if len(dims) != 4 or dims[0] != 1 or dims[2:] != [1, 1] or not 2 <= dims[1] <= _MOST_LEVELS:
        return None
    if data_type not in _FLOAT_TYPES:
        return None
    dtype = np.dtype(_FLOAT_TYPES[data_type])
    # raw_data in any type; float_data holds FLOAT only (float16 goes in int32_data, double in double_data)
    values_at = data.get(_RAW_DATA) or (data.get(_FLOAT_DATA) if data_type == 1 else None)
    count = dims[1]
    if external:
        raw = _external_bytes(folder, external, count * dtype.itemsize)
    elif values_at is not None:
        stream.seek(values_at[0])
        raw = stream.read(values_at[1])
    else:
        return None
    if raw is None or len(raw) != count * dtype.itemsize:
        return None
    values = np.frombuffer(raw, dtype)
    return count if np.array_equal(values, np.arange(count)) else None


def _external_bytes(folder: Path, entry: dict[str, str], size: int) -> bytes | None:
    location = entry.get("location", "")
    if not location or Path(location).is_absolute() or ".." in Path(location).parts:
        return None
    try:
        offset = int(entry.get("offset", "0"))
        with open(folder / location, "rb") as stream:
            stream.seek(offset)
            return stream.read(size)
    except (OSError, ValueError):
        return None
