"""Metric outputs of a result with a calibration: depth maps and coloured point clouds.

Formats (``--format``, registered with :func:`~rtstereo.sinks.files.register_format`):

- ``depth``: ``<name>_depth.pfm``, float32 metres (``inf`` = invalid, as in disparity PFMs);
- ``depth_npy``: ``<name>_depth.npy``, float32 metres (``nan`` = invalid);
- ``depth_mm``: ``<name>_depth_mm.png``, 16-bit millimetres (0 = invalid; beyond 65.535 m is
  written as 0, with a warning that counts such pixels, so use ``depth`` for far scenes);
- ``ply``: ``<name>.ply``, binary little-endian ``x y z`` float32 + ``red green blue`` uint8, in the
  left camera's frame (OpenCV: x right, y down, z forward, metres);
- ``glb``: ``<name>.glb``, a glTF 2.0 point cloud, in glTF's axes (y up, z backward): ``(x, -y, -z)`` of the
  camera frame, so viewers show it upright; its colours are in linear light (float32), as glTF defines ``COLOR_0``.

Point clouds drop points beyond ``max_depth_m`` and flying pixels at depth edges
(:func:`~rtstereo.geometry.flying_pixel_mask`); disparities already set to ``nan`` (for example by
the left-right check) drop out too. A cloud left with no point is written empty (a PLY with 0
vertices, a glTF with an empty scene) with an :class:`EmptyCloudWarning` that says why.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import (
    InputError,
    OutputError,
    RtStereoWarning,
    require_number,
    require_numbers,
    require_path,
    warn,
)
from ..geometry import (
    DEFAULT_MAX_JUMP_REL,
    PointCloud,
    depth_from_disparity,
    require_calibration,
    result_point_cloud,
)
from ..io.atomic import atomic_path, make_parent, os_reason
from ..io.images import write_image
from ..io.pfm import write_pfm
from ..text import counted
from ..types import DisparityResult
from .files import register_format

DEPTH_MM_MAX_M = 65.535
NEEDS_CALIBRATION = ("depth", "depth_npy", "depth_mm", "ply", "glb")
FILES = {
    "depth": "{name}_depth.pfm",
    "depth_npy": "{name}_depth.npy",
    "depth_mm": "{name}_depth_mm.png",
    "ply": "{name}.ply",
    "glb": "{name}.glb",
}
# How the depth maps read back (value / divide_by, in unit): written into the JSON sidecar beside them.
ENCODINGS = {
    "depth": {"holds": "depth", "unit": "m", "dtype": "float32", "divide_by": 1, "invalid": "inf"},
    "depth_npy": {"holds": "depth", "unit": "m", "dtype": "float32", "divide_by": 1, "invalid": "nan"},
    "depth_mm": {"holds": "depth", "unit": "m", "dtype": "uint16", "divide_by": 1000, "invalid": 0},
}
_BLOCK_POINTS = 1 << 20  # points written at a time: the extra memory of writing a cloud of any size
PLY_COMMENT = "rtstereo point cloud, left camera frame: x right, y down, z forward, metres"


class EmptyCloudWarning(RtStereoWarning):
    """No point of a result survived into its point cloud (the file is written empty)."""


@dataclass(frozen=True)
class PointCloudOptions:
    """How point clouds are cleaned before writing.

    Attributes:
        max_depth_m: drop points farther than this, metres (``None``: keep all).
        max_jump_rel: flying-pixel threshold, a relative depth jump to a neighbour (``None``: keep all).
    """

    max_depth_m: float | None = None
    max_jump_rel: float | None = DEFAULT_MAX_JUMP_REL

    def __post_init__(self) -> None:
        # Checked here, once, rather than by point_cloud() when each pair is written; a str failed in the comparison
        # with a bare TypeError, and True passed as 1
        if self.max_depth_m is not None:
            require_number(self.max_depth_m, "point clouds: max_depth_m", "a depth in metres > 0, or None to keep all")
        if self.max_jump_rel is not None:
            require_number(
                self.max_jump_rel, "point clouds: max_jump_rel", "a relative depth jump > 0, or None to keep all"
            )
        if self.max_depth_m is not None and not self.max_depth_m > 0:
            raise InputError(f"point clouds: max_depth_m must be > 0 metres (None keeps all), got {self.max_depth_m}")
        if self.max_jump_rel is not None and not self.max_jump_rel > 0:
            raise InputError(
                f"point clouds: max_jump_rel must be > 0 (a relative depth jump; None keeps flying pixels), "
                f"got {self.max_jump_rel}"
            )


def depth_of(result: DisparityResult) -> np.ndarray:
    """float32 ``(H, W)`` depth in metres of a result with a calibration (``nan`` = invalid)."""
    calibration = require_calibration(result)  # checks that it is a result, before its map is read
    return depth_from_disparity(result.disparity_px, calibration)


def to_depth_mm(depth_m: np.ndarray) -> np.ndarray:
    """float metres -> uint16 millimetres; 0 where invalid or beyond 65.535 m.

    Examples:
        >>> to_depth_mm(np.array([[1.2345, np.nan, 70.0]]))
        array([[1234,    0,    0]], dtype=uint16)
    """
    depth = require_numbers(depth_m, "depth", "a float array of metres").astype(np.float64)
    with np.errstate(invalid="ignore"):
        millimetres = np.round(depth * 1000.0)
        valid = np.isfinite(millimetres) & (millimetres >= 1) & (millimetres <= 65535)
    return np.where(valid, millimetres, 0).astype(np.uint16)


def write_ply(path: str | Path, cloud: PointCloud) -> Path:
    """Write a point cloud as binary little-endian PLY (``x y z`` float32, ``red green blue`` uint8), atomically
    (under a temporary name, then renamed) and in blocks (a few million points take a few tens of MB beyond the cloud).

    Raises:
        InputError: a path or cloud of the wrong type.
        OutputError: a name that does not end in ``.ply`` (``scene.glb`` held PLY bytes no glTF viewer opens), or a
            file that cannot be written.
    """
    path = _checked_arguments(path, cloud, ".ply")
    _require_suffix(path, ".ply", "write_glb")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if cloud.colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    kinds = {"<f4": "float", "u1": "uchar"}
    header = [
        "ply",
        "format binary_little_endian 1.0",
        f"comment {PLY_COMMENT}",
        f"element vertex {len(cloud)}",
    ]
    header += [f"property {kinds[kind]} {name}" for name, kind in fields]
    header.append("end_header")
    make_parent(path)
    with atomic_path(path) as partial, partial.open("wb") as f:  # no truncated cloud under the real name
        f.write(("\n".join(header) + "\n").encode("ascii"))
        for start in range(0, len(cloud), _BLOCK_POINTS):  # blocks: a whole copy doubled a cloud's memory
            points = cloud.points_m[start : start + _BLOCK_POINTS]
            vertices = np.empty(len(points), dtype=fields)
            for axis, name in enumerate("xyz"):
                vertices[name] = points[:, axis]
            if cloud.colors is not None:
                for channel, name in enumerate(("red", "green", "blue")):
                    vertices[name] = cloud.colors[start : start + _BLOCK_POINTS, channel]
            f.write(vertices.data)
    return path


def _checked_arguments(path: str | Path, cloud: PointCloud, suffix: str) -> Path:
    """``path`` as a Path, or an :class:`InputError` for a path or cloud of the wrong type."""
    path = require_path(path, "point cloud file", f"a {suffix} file name (str or Path)")
    if not isinstance(cloud, PointCloud):  # an AttributeError ('... has no attribute colors') before
        raise InputError(
            f"cloud: expected a PointCloud (point_cloud(disparity_px, calibration, left)), got {type(cloud).__name__}"
        )
    return path


_PLY_TYPES = {
    "float": "<f4",
    "float32": "<f4",
    "double": "<f8",
    "float64": "<f8",
    "uchar": "u1",
    "uint8": "u1",
    "char": "i1",
    "int8": "i1",
    "short": "<i2",
    "int16": "<i2",
    "ushort": "<u2",
    "uint16": "<u2",
    "int": "<i4",
    "int32": "<i4",
    "uint": "<u4",
    "uint32": "<u4",
}


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the vertices of a PLY point cloud: binary little-endian (as :func:`write_ply` writes), binary big-endian
    or ASCII (as CloudCompare, Open3D and MeshLab write them too), with a header of Windows line endings or not;
    ``x y z`` and optional ``red green blue`` of any PLY number type (colours stored as floats or 16-bit integers
    too). Elements before the vertices (of fixed size) are skipped by their declared sizes, those after them not read.

    Returns:
        ``(points, colors)``: float32 ``(N, 3)`` and uint8 ``(N, 3)`` (``None`` without colours). Float colours
        in 0..1 are scaled to 0..255 (floats above 1 are taken as 0..255 already); wider integers that exceed 255
        are taken as 16-bit colours (divided by 257).

    Raises:
        InputError: a file that cannot be read, is no PLY, has a damaged header, no ``x y z``, a list property in
            the vertices (or in an element before them), or fewer values than its header declares.
    """
    path = require_path(path, "point cloud file", "a .ply file name (str or Path)")
    try:
        data = path.read_bytes()
    except OSError as exc:  # the reason alone: "[Errno 21] Is a directory: 'PATH'" named the path twice
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    # Writers on Windows end the header's lines with CRLF: the body starts after end_header's own line end. On a line
    # of its own: a comment (free text) that ended in the word cut the header there
    found = re.search(rb"(?m)^end_header\r?\n", data)
    if not data.startswith(b"ply") or found is None:
        raise InputError(f"{path}: not a PLY file (no 'ply' ... 'end_header' header)")
    lines = [" ".join(line.split()) for line in data[: found.start()].decode("ascii", "replace").splitlines()]
    formats = {f"format {kind} 1.0": kind for kind in ("binary_little_endian", "binary_big_endian", "ascii")}
    kind = next((formats[line] for line in lines if line in formats), None)
    if kind is None:
        given = next((line for line in lines if line.startswith("format")), "no format line")
        raise InputError(
            f"{path}: unknown PLY format ({given}); expected binary_little_endian, binary_big_endian or ascii"
        )
    order = ">" if kind == "binary_big_endian" else "<"
    elements: list[tuple[str, int, list[tuple[str, str]], list[str]]] = []  # name, count, fields, other properties
    for line in lines:
        words = line.split()
        if words[:1] == ["element"]:
            if len(words) != 3 or not words[2].isdigit():
                raise InputError(f"{path}: damaged PLY header line '{line}' (expected 'element NAME COUNT')")
            elements.append((words[1], int(words[2]), [], []))
        elif words[:1] == ["property"] and elements:
            if len(words) == 3 and words[1] in _PLY_TYPES:
                elements[-1][2].append((words[2], np.dtype(_PLY_TYPES[words[1]]).newbyteorder(order).str))
            else:  # a list (a face's vertex indices): a size of its own in each row
                elements[-1][3].append(line)
    at = next((k for k, element in enumerate(elements) if element[0] == "vertex"), len(elements))
    _, count, fields, others = elements[at] if at < len(elements) else ("vertex", 0, [], [])
    if others:
        raise InputError(f"{path}: unsupported vertex property '{others[0]}'")
    before = [(name, n, props) for name, n, props, _ in elements[:at] if n > 0]
    listed = next((name for name, n, _, other in elements[:at] if n > 0 and other), None)
    if listed is not None:  # its rows' sizes are not declared: the vertices' place is unknown
        raise InputError(f"{path}: the '{listed}' element comes before the vertices; not read here")
    missing = [axis for axis in "xyz" if axis not in {name for name, _ in fields}]
    if missing:
        raise InputError(f"{path}: the vertices have no {', '.join(missing)} property")
    if kind == "ascii":
        vertices = _ascii_vertices(path, data[found.end() :], before, count, fields)
    else:
        body = found.end() + sum(n * np.dtype(props).itemsize for _, n, props in before)
        needed = count * np.dtype(fields).itemsize
        if len(data) - body < needed:
            raise InputError(
                f"{path}: truncated: {count} vertices need {needed} bytes after the header, the file holds "
                f"{max(len(data) - body, 0)}"
            )
        vertices = np.frombuffer(data, dtype=fields, count=count, offset=body)
    points = np.column_stack([vertices[n] for n in "xyz"]).astype(np.float32)
    names = {name for name, _ in fields}
    colors = None
    if {"red", "green", "blue"} <= names:
        stored = np.column_stack([vertices[n] for n in ("red", "green", "blue")])
        colors = _colours_uint8(stored.astype(stored.dtype.newbyteorder("=")))  # a big-endian file's in this order
    return points, colors


def _ascii_vertices(
    path: Path, body: bytes, before: list[tuple[str, int, list[tuple[str, str]]]], count: int, fields: list
) -> np.ndarray:
    """The vertices of an ASCII PLY's body: one line per element, the elements before the vertices skipped."""
    rows = [line for line in body.decode("ascii", "replace").splitlines() if line.strip()]
    start = sum(n for _, n, _ in before)
    if len(rows) - start < count:
        raise InputError(f"{path}: truncated: {count} vertices declared, {max(len(rows) - start, 0)} lines hold them")
    vertices = np.empty(count, dtype=fields)
    if not count:
        return vertices
    table = [row.split() for row in rows[start : start + count]]
    short = next((k for k, values in enumerate(table) if len(values) < len(fields)), None)
    if short is not None:
        raise InputError(
            f"{path}: vertex {short} has {len(table[short])} values, the header declares {len(fields)} properties"
        )
    try:
        values = np.array([values[: len(fields)] for values in table], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: a vertex value is no number ({exc})") from None
    for column, (name, _) in enumerate(fields):
        vertices[name] = values[:, column]
    return vertices


def _colours_uint8(colours: np.ndarray) -> np.ndarray:
    """PLY colours as uint8: floats in 0..1 (what several writers store) were cast to 0 or 1, 16-bit ones wrapped."""
    if colours.dtype == np.uint8:
        return colours
    values = colours.astype(np.float64)
    if np.issubdtype(colours.dtype, np.floating):
        values = np.nan_to_num(values, nan=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
    elif colours.dtype.itemsize > 1 and values.size and values.max() > 255:
        values = values / 257.0  # 16-bit colours: 65535 is white
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def write_glb(path: str | Path, cloud: PointCloud) -> Path:
    """Write a point cloud as a binary glTF 2.0 (``.glb``) of ``POINTS``, atomically and in blocks (a few million
    points take a few tens of MB beyond the cloud itself); an empty cloud is written as a valid glTF with an empty
    scene (glTF has no accessor of 0 elements).

    Positions are float32 ``VEC3`` in glTF's axes, ``(x, -y, -z)`` of the camera frame (y up, the camera looking down
    -z), metres. Colours (``COLOR_0``) are the image's sRGB decoded to linear light, as glTF defines vertex colours,
    stored as float32 ``VEC3`` 0..1: sRGB bytes stored as they are showed washed out, and 8 linear bits would band
    the darks (16-bit integers, also allowed, are misread by some readers, trimesh among them). The material is
    unlit (``KHR_materials_unlit``, not required), so viewers show the colours as seen, not shaded.

    Raises:
        InputError: a path or cloud of the wrong type.
        OutputError: a name that does not end in ``.glb``, a cloud too large for one GLB (4 GiB), or a file that
            cannot be written.
    """
    path = _checked_arguments(path, cloud, ".glb")
    _require_suffix(path, ".glb", "write_ply")
    count = len(cloud)
    if count == 0:
        chunks = [_glb_json_chunk(_GLTF_EMPTY)]
        body_length = 0
    else:
        document, body_length = _glb_document(cloud)
        chunks = [_glb_json_chunk(document), struct.pack("<I4s", body_length, b"BIN\0")]
    total = 12 + sum(len(chunk) for chunk in chunks) + body_length
    if total > _GLB_MAX_BYTES:
        raise OutputError(
            f"cannot write {path}: {count} points need {total / 2**30:.1f} GiB, more than the 4 GiB a GLB holds; "
            "write a .ply, or keep fewer points (--max-depth)"
        )
    make_parent(path)
    with atomic_path(path) as partial, partial.open("wb") as f:  # no truncated file under the real name
        f.write(struct.pack("<4sII", b"glTF", 2, total))
        for chunk in chunks:
            f.write(chunk)
        if count:
            for start in range(0, count, _BLOCK_POINTS):  # blocks: no full-size copy of the cloud
                f.write(_gltf_axes(cloud.points_m[start : start + _BLOCK_POINTS]))
            if cloud.colors is not None:
                linear = srgb_to_linear()
                for start in range(0, count, _BLOCK_POINTS):
                    f.write(linear[cloud.colors[start : start + _BLOCK_POINTS]].data)
    return path


_GLB_MAX_BYTES = 2**32 - 1  # the GLB header's length is a uint32
_GLTF_EMPTY = {"asset": {"version": "2.0", "generator": "rtstereo"}, "scenes": [{}], "scene": 0}
_ARRAY_BUFFER, _FLOAT, _POINTS = 34962, 5126, 0


def _gltf_axes(points_m: np.ndarray) -> np.ndarray:
    """Camera-frame points (x right, y down, z forward) in glTF's axes (y up, looking down -z), float32 ``(N, 3)``."""
    flipped = np.ascontiguousarray(points_m, dtype=np.float32) * np.array([1.0, -1.0, -1.0], dtype=np.float32)
    flipped += 0.0  # -0.0 (a flipped 0) to 0.0, as min and max say
    return flipped


def srgb_to_linear() -> np.ndarray:
    """float32 ``(256,)``: each sRGB byte decoded to linear light, 0..1 (the sRGB transfer function, IEC 61966-2-1);
    index it with uint8 colours.

    Examples:
        >>> round(float(srgb_to_linear()[128]), 5), float(srgb_to_linear()[255])
        (0.21586, 1.0)
    """
    srgb = np.arange(256, dtype=np.float64) / 255.0
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _glb_document(cloud: PointCloud) -> tuple[dict, int]:
    """The glTF JSON of a non-empty cloud, and the byte length of its binary buffer (positions, then colours)."""
    count = len(cloud)
    low = np.full(3, np.inf, np.float32)
    high = np.full(3, -np.inf, np.float32)
    for start in range(0, count, _BLOCK_POINTS):  # POSITION's min and max are required, of the values as stored
        block = _gltf_axes(cloud.points_m[start : start + _BLOCK_POINTS])
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
    views = [{"buffer": 0, "byteOffset": 0, "byteLength": 12 * count, "target": _ARRAY_BUFFER}]
    accessors = [
        {
            "bufferView": 0,
            "componentType": _FLOAT,
            "count": count,
            "type": "VEC3",
            "min": [float(v) for v in low],
            "max": [float(v) for v in high],
        }
    ]
    attributes = {"POSITION": 0}
    if cloud.colors is not None:
        views.append({"buffer": 0, "byteOffset": 12 * count, "byteLength": 12 * count, "target": _ARRAY_BUFFER})
        accessors.append({"bufferView": 1, "componentType": _FLOAT, "count": count, "type": "VEC3"})
        attributes["COLOR_0"] = 1
    length = sum(view["byteLength"] for view in views)
    document = {
        "asset": {"version": "2.0", "generator": "rtstereo"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "point_cloud", "mesh": 0}],
        "meshes": [{"name": "point_cloud", "primitives": [{"attributes": attributes, "mode": _POINTS, "material": 0}]}],
        "materials": [
            {
                "name": "point_colours",
                "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0, "roughnessFactor": 1},
                "extensions": {"KHR_materials_unlit": {}},
            }
        ],
        "buffers": [{"byteLength": length}],
        "bufferViews": views,
        "accessors": accessors,
    }
    return document, length


def _glb_json_chunk(document: dict) -> bytes:
    """The JSON chunk of a GLB: its 8-byte head, then the JSON padded with spaces to 4 bytes, as the format requires."""
    body = json.dumps(document, separators=(",", ":")).encode("ascii")
    body += b" " * (-len(body) % 4)
    return struct.pack("<I4s", len(body), b"JSON") + body


def _require_suffix(path: Path, suffix: str, other: str) -> None:
    """Refuse a file name whose suffix is not ``suffix``, the format written; ``other`` writes the other format."""
    if path.suffix.lower() != suffix:
        raise OutputError(
            f"point cloud file {path} must end in {suffix}, the format written: use {other} for the other one, or "
            "save_point_cloud, which writes .ply or .glb by suffix"
        )


def empty_cloud_reason(result: DisparityResult, options: PointCloudOptions) -> str:
    """Why a result's point cloud, cleaned with ``options``, holds no point (for a warning)."""
    if not result.valid_mask.any():
        return "no pixel has a valid disparity"
    depth = depth_of(result)
    finite = depth[np.isfinite(depth)]
    if finite.size == 0:
        return "no pixel has a finite depth (every disparity is at or beyond infinity for this calibration)"
    if options.max_depth_m is not None and not (finite <= options.max_depth_m).any():
        return (
            f"all {finite.size} points with a depth are beyond the maximum depth of {options.max_depth_m:g} m "
            "(--max-depth)"
        )
    return (
        f"the points within reach are all flying pixels at depth edges (max_jump_rel {options.max_jump_rel:g}; "
        "--max-jump 0 keeps them)"
    )


def save_point_cloud(path: str | Path, cloud: PointCloud) -> Path:
    """Write a point cloud to ``.ply`` or ``.glb`` by suffix."""
    suffix = require_path(path, "point cloud file", "a .ply or .glb file name (str or Path)").suffix.lower()
    if suffix == ".ply":
        return write_ply(path, cloud)
    if suffix == ".glb":
        return write_glb(path, cloud)
    raise OutputError(f"point cloud file {path} must end in .ply or .glb")


def make_writers(options: PointCloudOptions = PointCloudOptions()) -> dict:
    """The output-format writers of this module, cleaning clouds with ``options``."""

    last: dict = {}  # the last result's cloud: ply and glb of one pair share it (and its warning)

    def cloud_of(result: DisparityResult, name: str) -> PointCloud:
        if last.get("result") is not result:
            cloud = result_point_cloud(result, max_depth_m=options.max_depth_m, max_jump_rel=options.max_jump_rel)
            if len(cloud) == 0:
                warn(
                    f"{name}: no point left for the point cloud: {empty_cloud_reason(result, options)}; "
                    "the cloud is written empty",
                    EmptyCloudWarning,
                )
            last.update(result=result, cloud=cloud)
        return last["cloud"]

    def depth_pfm(result: DisparityResult, stem: Path) -> Path:
        path = stem.parent / f"{stem.name}_depth.pfm"
        depth = depth_of(result)
        _guard(write_pfm, path, np.where(np.isfinite(depth), depth, np.inf).astype(np.float32))
        return path

    def depth_npy(result: DisparityResult, stem: Path) -> Path:
        path = stem.parent / f"{stem.name}_depth.npy"
        _guard(np.save, path, depth_of(result))
        return path

    def depth_mm(result: DisparityResult, stem: Path) -> Path:
        path = stem.parent / f"{stem.name}_depth_mm.png"
        depth = depth_of(result)
        with np.errstate(invalid="ignore"):
            beyond = int(np.count_nonzero(np.round(depth * 1000.0) > 65535))
        if beyond:  # a 16-bit PNG cannot hold them: never dropped without a word
            verb = "is" if beyond == 1 else "are"
            warn(
                f"{stem.name}: {counted(beyond, 'pixel')} ({100 * beyond / depth.size:.1f} %) {verb} farther than "
                f"{DEPTH_MM_MAX_M} m, the most a 16-bit depth_mm PNG holds, and {verb} 0 (invalid) there; "
                "--format depth or depth_npy keeps them"
            )
        write_image(path, to_depth_mm(depth))
        return path

    def ply(result: DisparityResult, stem: Path) -> Path:
        return write_ply(stem.parent / f"{stem.name}.ply", cloud_of(result, stem.name))

    def glb(result: DisparityResult, stem: Path) -> Path:
        return write_glb(stem.parent / f"{stem.name}.glb", cloud_of(result, stem.name))

    return {"depth": depth_pfm, "depth_npy": depth_npy, "depth_mm": depth_mm, "ply": ply, "glb": glb}


def register_formats(options: PointCloudOptions = PointCloudOptions()) -> None:
    """Register the 3D output formats (with default cleaning; pass a run's own options to
    :func:`~rtstereo.sinks.files.save_result` as ``writers=make_writers(options)``)."""
    for name, writer in make_writers(options).items():
        register_format(name, writer, FILES[name], ENCODINGS.get(name))


def _guard(writer, path: Path, array: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path, array)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_reason(exc, path)}") from None


register_formats()
