"""3D output formats: depth PFM/npy/16-bit mm PNG, PLY and GLB point clouds."""

from __future__ import annotations

import dataclasses
import sys
import warnings

import numpy as np
import pytest

from rtstereo.errors import InputError, OutputError
from rtstereo.geometry import PointCloud, depth_from_disparity, result_point_cloud
from rtstereo.io.images import read_grey
from rtstereo.io.pfm import read_pfm
from rtstereo.sinks import pointcloud
from rtstereo.sinks.files import FORMATS, parse_formats, save_result
from rtstereo.sinks.pointcloud import (
    PointCloudOptions,
    read_ply,
    register_formats,
    save_point_cloud,
    to_depth_mm,
    write_glb,
    write_ply,
)
from rtstereo.types import Calibration, DisparityResult

CAL = Calibration(
    fx_px=100.0, fy_px=100.0, cx0_px=7.5, cx1_px=7.5, cy_px=5.5, baseline_m=0.2, width_px=16, height_px=12
)


@pytest.fixture
def result():
    disparity = np.full((12, 16), 4.0, np.float32)  # 5 m
    disparity[3:9, 4:10] = 20.0  # a 1 m square: its border holds flying-pixel candidates
    disparity[0, 0] = np.nan
    left = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return DisparityResult(disparity_px=disparity, calibration=CAL, left=left)


@pytest.fixture(autouse=True)
def _default_formats():
    yield
    register_formats()  # tests that re-register with options leave the defaults behind


# --- feature --------------------------------------------------------------------------------------


def test_formats_are_registered():
    assert set(pointcloud.NEEDS_CALIBRATION) <= set(FORMATS)
    assert parse_formats("depth,ply") == ("depth", "ply")
    with pytest.raises(InputError, match=r"^unknown output format plyy \(known: .*\); did you mean ply\?$"):
        parse_formats("depth,plyy")  # one unknown name: "format", not "format(s)"


def test_depth_outputs_in_metres_and_millimetres(result, tmp_path):
    files = save_result(result, tmp_path, "pair", ("depth", "depth_npy", "depth_mm"))
    assert [p.name for p in files] == ["pair_depth.pfm", "pair_depth.npy", "pair_depth_mm.png"]
    expected = depth_from_disparity(result.disparity_px, CAL)
    pfm = read_pfm(files[0])
    assert np.isinf(pfm[0, 0]) and np.allclose(pfm[1:], expected[1:])
    np.testing.assert_allclose(np.load(files[1]), expected, equal_nan=True)
    millimetres = read_grey(files[2])
    assert millimetres.dtype == np.uint16 and millimetres[0, 0] == 0
    assert millimetres[5, 5] == 1000 and millimetres[11, 15] == 5000


def test_depth_mm_says_how_many_far_pixels_it_cannot_hold(result, tmp_path):
    disparity = result.disparity_px.copy()
    disparity[disparity == 4.0] = 0.25  # the background from 5 m to 80 m; the 1 m square and one nan stay
    far = dataclasses.replace(result, disparity_px=disparity)
    with pytest.warns(UserWarning, match=r"pair: 155 pixels \(80.7 %\) are farther than 65.535 m.*depth_npy"):
        files = save_result(far, tmp_path, "pair", ("depth_mm", "depth_npy"))
    assert read_grey(files[0]).max() == 1000 and np.nanmax(np.load(files[1])) == pytest.approx(80.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_result(result, tmp_path, "near", ("depth_mm",))
    one = result.disparity_px.copy()
    one[tuple(np.argwhere(one == 4.0)[0])] = 0.25  # one pixel at 80 m: "1 pixel(s) ... are" was said
    with pytest.warns(UserWarning, match=r"one: 1 pixel \(0.5 %\) is farther than 65.535 m, .* and is 0 \(invalid\)"):
        save_result(dataclasses.replace(result, disparity_px=one), tmp_path, "one", ("depth_mm",))


def test_depth_mm_encoding_limits():
    np.testing.assert_array_equal(
        to_depth_mm(np.array([0.0005, 0.001, 65.535, 65.6, np.inf, -1])), [0, 1, 65535, 0, 0, 0]
    )


def test_ply_round_trip_with_cleaning(result, tmp_path):
    (path,) = save_result(result, tmp_path, "pair", ("ply",))
    assert path.name == "pair.ply"
    header = path.read_bytes()[:400].decode("ascii", "replace")
    assert "format binary_little_endian 1.0" in header and "property uchar red" in header
    points, colors = read_ply(path)
    # 191 valid pixels minus the flying pixels on both sides of the square's border (inner and outer rings)
    inner_ring, outer_ring = 6 * 6 - 4 * 4, 8 * 8 - 6 * 6
    assert len(points) == 12 * 16 - 1 - inner_ring - outer_ring
    assert set(np.round(points[:, 2], 4)) == {1.0, 5.0}
    index = np.flatnonzero(np.isclose(points[:, 2], 1.0))[0]
    assert colors.dtype == np.uint8 and colors.shape == points.shape
    # the colours follow their pixels: find this point's pixel from its coordinates
    u = round(points[index, 0] * CAL.fx_px / points[index, 2] + CAL.cx0_px)
    v = round(points[index, 1] * CAL.fy_px / points[index, 2] + CAL.cy_px)
    np.testing.assert_array_equal(colors[index], result.left[v, u])


def test_options_max_depth_and_no_flying_pixel_removal(result, tmp_path):
    register_formats(PointCloudOptions(max_depth_m=2.0, max_jump_rel=None))
    (path,) = save_result(result, tmp_path, "near", ("ply",))
    points, _ = read_ply(path)
    assert len(points) == 36 and np.allclose(points[:, 2], 1.0)


def test_ply_without_colours(tmp_path):
    cloud = PointCloud(points_m=np.eye(3, dtype=np.float32), colors=None, pixel_index=np.arange(3), size_hw=(1, 3))
    points, colors = read_ply(save_point_cloud(tmp_path / "c.ply", cloud))
    np.testing.assert_array_equal(points, np.eye(3))
    assert colors is None


def test_glb_through_trimesh(result, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    (path,) = save_result(result, tmp_path, "pair", ("glb",))
    scene = trimesh.load(path, file_type="glb")
    (geometry,) = scene.geometry.values()
    points, colors = read_ply(save_result(result, tmp_path, "pair", ("ply",))[0])
    assert len(geometry.vertices) == len(points)
    # glTF axes: y up, z backward; the colours the PLY's sRGB in linear light (trimesh reads them back as 0..255)
    np.testing.assert_allclose(geometry.vertices, points * np.array([1.0, -1.0, -1.0]), rtol=1e-6)
    np.testing.assert_allclose(geometry.colors[:, :3], np.round(pointcloud.srgb_to_linear()[colors] * 255), atol=1)


_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
_COMPONENT_DTYPES = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}


def read_glb_strictly(path) -> tuple[dict, dict]:
    """Parse a GLB as glTF 2.0 demands, failing on the first departure; ``(document, {attribute: array})``."""
    import json
    import struct

    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data)), "header: magic glTF, version 2, the file's length"
    chunks, offset = [], 12
    while offset < len(data):
        assert offset % 4 == 0 and offset + 8 <= len(data), f"chunk at {offset}: 4-byte aligned, with its 8-byte head"
        chunk_length, chunk_type = struct.unpack_from("<I4s", data, offset)
        assert chunk_length % 4 == 0 and offset + 8 + chunk_length <= len(data), f"{chunk_type}: length {chunk_length}"
        chunks.append((chunk_type, data[offset + 8 : offset + 8 + chunk_length]))
        offset += 8 + chunk_length
    assert offset == len(data) and chunks[0][0] == b"JSON" and [t for t, _ in chunks[1:]] in ([], [b"BIN\0"])
    text = chunks[0][1]
    assert text == text.rstrip(b" ") + b" " * (len(text) - len(text.rstrip(b" "))), "the JSON is padded with spaces"
    document = json.loads(text)
    assert document["asset"]["version"] == "2.0"
    assert set(document.get("extensionsUsed", [])) <= {"KHR_materials_unlit"} and "extensionsRequired" not in document
    scene = document["scenes"][document["scene"]]
    if len(chunks) == 1:
        assert "buffers" not in document and "accessors" not in document and not scene.get("nodes")
        return document, {}
    body = chunks[1][1]
    (buffer,) = document["buffers"]
    assert "uri" not in buffer and buffer["byteLength"] <= len(body) < buffer["byteLength"] + 4
    assert body[buffer["byteLength"] :] == b"\0" * (len(body) - buffer["byteLength"]), "BIN is padded with zeros"
    (node,) = [document["nodes"][i] for i in scene["nodes"]]
    (primitive,) = document["meshes"][node["mesh"]]["primitives"]
    assert primitive["mode"] == 0  # POINTS
    assert "material" not in primitive or 0 <= primitive["material"] < len(document["materials"])
    arrays, count = {}, None
    for name, index in primitive["attributes"].items():
        accessor = document["accessors"][index]
        view = document["bufferViews"][accessor["bufferView"]]
        dtype = np.dtype(_COMPONENT_DTYPES[accessor["componentType"]])
        components = _COMPONENTS[accessor["type"]]
        start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
        assert start % dtype.itemsize == 0 and start % 4 == 0, f"{name}: offset {start} aligned"
        assert "byteStride" not in view or view["byteStride"] == dtype.itemsize * components
        assert view["byteLength"] == accessor["count"] * dtype.itemsize * components, f"{name}: byteLength"
        assert view.get("byteOffset", 0) + view["byteLength"] <= buffer["byteLength"]
        assert count in (None, accessor["count"]) and accessor["count"] >= 1, "attributes of one count"
        count = accessor["count"]
        values = np.frombuffer(body, dtype, count * components, start).reshape(count, components)
        if name == "POSITION":  # min and max are required, and must be those of the data
            assert (accessor["type"], accessor["componentType"]) == ("VEC3", 5126)
            assert np.isfinite(values).all()
            np.testing.assert_array_equal(accessor["min"], values.min(axis=0))
            np.testing.assert_array_equal(accessor["max"], values.max(axis=0))
        elif name == "COLOR_0":
            assert accessor["type"] in ("VEC3", "VEC4")
            assert accessor["componentType"] == 5126 or (
                accessor["componentType"] in (5121, 5123) and accessor.get("normalized") is True
            )
            if accessor["componentType"] != 5126:
                values = values / np.iinfo(dtype).max
            assert 0 <= values.min() and values.max() <= 1
        arrays[name] = values
    return document, arrays


def test_the_glb_is_valid_gltf_with_linear_colours_in_gltf_axes(result, tmp_path):
    """COLOR_0 is linear in glTF: the sRGB bytes stored as they were showed washed out (mid-grey 128 as 0.502
    instead of 0.2159); the file is checked chunk by chunk against the spec."""
    cloud = PointCloud(
        points_m=np.array([[0, 0, 1], [1, 2, 3], [-1, 0.5, 2]], np.float32),
        colors=np.array([[128, 128, 128], [255, 0, 10], [0, 1, 255]], np.uint8),
        pixel_index=np.arange(3),
        size_hw=(1, 3),
    )
    document, arrays = read_glb_strictly(write_glb(tmp_path / "c.glb", cloud))
    np.testing.assert_array_equal(arrays["POSITION"], [[0, 0, -1], [1, -2, -3], [-1, -0.5, -2]])  # y up, z back
    assert not np.signbit(arrays["POSITION"][0, :2]).any()  # +0, not -0, as min/max say
    # by hand: ((128 / 255 + 0.055) / 1.055) ** 2.4 = 0.21586; 10 / 255 / 12.92 = 0.003035 (the linear segment)
    np.testing.assert_allclose(arrays["COLOR_0"][0, :3], 0.21586, atol=5e-5)
    np.testing.assert_allclose(arrays["COLOR_0"][1:, :3], [[1, 0, 0.003035], [0, 0.000304, 1]], atol=5e-6)
    assert document["materials"][0]["extensions"] == {"KHR_materials_unlit": {}}
    # without colours, and one point
    one = PointCloud(np.array([[0.5, -0.25, 2]], np.float32), None, np.arange(1), (1, 1))
    _, arrays = read_glb_strictly(write_glb(tmp_path / "one.glb", one))
    assert list(arrays) == ["POSITION"] and arrays["POSITION"].tolist() == [[0.5, 0.25, -2]]


def test_the_glb_of_a_pair_is_valid_gltf(result, tmp_path):
    (path,) = save_result(result, tmp_path, "pair", ("glb",))
    expected = result_point_cloud(result)
    _, arrays = read_glb_strictly(path)
    np.testing.assert_array_equal(arrays["POSITION"], expected.points_m * np.array([1, -1, -1], np.float32))
    np.testing.assert_array_equal(arrays["COLOR_0"], pointcloud.srgb_to_linear()[expected.colors])


def test_the_ply_reads_back_in_another_reader(result, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    (path,) = save_result(result, tmp_path, "pair", ("ply",))
    expected = result_point_cloud(result)  # what was written, not what read_ply makes of it
    cloud = trimesh.load(path)
    np.testing.assert_allclose(cloud.vertices, expected.points_m, rtol=1e-6)
    np.testing.assert_array_equal(cloud.colors[:, :3], expected.colors)


def test_an_empty_cloud_is_written_as_a_valid_glb_and_ply_with_a_warning(result, tmp_path):
    import json
    import struct

    options = PointCloudOptions(max_depth_m=0.5)  # every point is at 1 m or 5 m
    with pytest.warns(pointcloud.EmptyCloudWarning, match=r"pair: no point left for the point cloud: all 191 points"):
        glb, ply = save_result(result, tmp_path, "pair", ("glb", "ply"), pointcloud.make_writers(options))
    assert len(read_ply(ply)[0]) == 0
    data = glb.read_bytes()
    magic, version, length = struct.unpack("<4sII", data[:12])
    chunk_length, chunk_type = struct.unpack("<I4s", data[12:20])
    assert (magic, version, length, chunk_type) == (b"glTF", 2, len(data), b"JSON") and length % 4 == 0
    assert json.loads(data[20 : 20 + chunk_length])["asset"]["version"] == "2.0"
    assert read_glb_strictly(glb)[1] == {}
    trimesh = pytest.importorskip("trimesh")
    assert len(trimesh.load(glb, file_type="glb").geometry) == 0


def test_empty_cloud_warning_says_why():
    nothing = DisparityResult(np.full((12, 16), np.nan, np.float32), calibration=CAL)
    assert "no pixel has a valid disparity" in pointcloud.empty_cloud_reason(nothing, PointCloudOptions())
    far = DisparityResult(np.full((12, 16), 4.0, np.float32), calibration=CAL)  # 5 m
    reason = pointcloud.empty_cloud_reason(far, PointCloudOptions(max_depth_m=2))
    assert reason == "all 192 points with a depth are beyond the maximum depth of 2 m (--max-depth)"


# --- exceptions -----------------------------------------------------------------------------------


def test_glb_is_written_without_trimesh(tmp_path, monkeypatch):
    """It needed the 3d extra (trimesh), which the GLB writer no longer uses."""
    monkeypatch.setitem(sys.modules, "trimesh", None)  # makes `import trimesh` fail
    cloud = PointCloud(points_m=np.zeros((1, 3), np.float32), colors=None, pixel_index=np.zeros(1, int), size_hw=(1, 1))
    assert read_glb_strictly(write_glb(tmp_path / "c.glb", cloud))[1]["POSITION"].tolist() == [[0, 0, 0]]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_depth_m": 0.0}, "max_depth_m must be > 0 metres"),
        ({"max_depth_m": float("nan")}, "max_depth_m must be > 0 metres"),
        ({"max_jump_rel": float("nan")}, "max_jump_rel must be > 0"),
        ({"max_jump_rel": -0.1}, "max_jump_rel must be > 0"),
        # a str failed with a bare TypeError ('>' not supported), True passed as 1
        ({"max_depth_m": "5"}, r"max_depth_m: expected a depth in metres > 0, or None to keep all, got str '5'"),
        ({"max_jump_rel": True}, r"max_jump_rel: expected a relative depth jump > 0, or None .* got bool True"),
    ],
)
def test_cleaning_options_are_checked_when_made_not_when_each_pair_is_written(options, message):
    with pytest.raises(InputError, match=rf"point clouds: {message}"):
        PointCloudOptions(**options)


def test_sink_errors(tmp_path, result):
    no_calibration = DisparityResult(disparity_px=result.disparity_px)
    for name in pointcloud.NEEDS_CALIBRATION:
        with pytest.raises(InputError, match="--calib FILE"):
            save_result(no_calibration, tmp_path, "x", (name,))
    cloud = PointCloud(points_m=np.zeros((1, 3), np.float32), colors=None, pixel_index=np.zeros(1, int), size_hw=(1, 1))
    with pytest.raises(OutputError, match="must end in .ply or .glb"):
        save_point_cloud(tmp_path / "c.xyz", cloud)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError) as info:  # it said "[Errno 17] File exists: '.../file'"
        write_ply(blocker / "c.ply", cloud)
    assert str(info.value) == f"cannot write {blocker / 'c.ply'}: {blocker} is a file, not a folder"
    # wrong types: pathlib's bare TypeError, and AttributeError ('numpy.ndarray' object has no attribute 'colors')
    with pytest.raises(InputError, match=r"point cloud file: expected a .ply file name \(str or Path\), got int"):
        write_ply(5, cloud)
    with pytest.raises(InputError, match=r"cloud: expected a PointCloud \(point_cloud\(.*got ndarray"):
        write_ply(tmp_path / "c.ply", cloud.points_m)
    # a .glb name got PLY bytes, which no glTF viewer opens (and a .ply one glTF bytes)
    with pytest.raises(OutputError, match=r"c.glb must end in .ply, the format written: use write_glb .*"):
        write_ply(tmp_path / "c.glb", cloud)
    with pytest.raises(OutputError, match=r"c.ply must end in .glb, the format written: use write_ply"):
        write_glb(tmp_path / "c.ply", cloud)
    assert not list(tmp_path.glob("c.*"))
    assert write_ply(tmp_path / "c.PLY", cloud).is_file()
    with pytest.raises(OutputError, match=f"^cannot write {tmp_path / 'file' / 'x'}.*: {blocker} is a file, not a"):
        save_result(result, tmp_path, "file/x", ("depth",))
    with pytest.raises(InputError, match="not a PLY file"):
        read_ply(blocker)
    with pytest.raises(InputError, match="cannot read"):
        read_ply(tmp_path / "missing.ply")
    other_format = tmp_path / "a.ply"
    other_format.write_bytes(b"ply\nformat binary_middle_endian 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(
        InputError, match=r"unknown PLY format \(format binary_middle_endian 1.0\); expected binary_lit"
    ):
        read_ply(other_format)
    odd = tmp_path / "o.ply"
    odd.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 0\nproperty list uchar int x\nend_header\n")
    with pytest.raises(InputError, match="unsupported vertex property"):
        read_ply(odd)


@pytest.mark.parametrize(
    ("colour_type", "stored", "expected"),
    [
        ("float", [[0.0, 0.5, 1.0], [1.0, 0.2, 0.0]], [[0, 128, 255], [255, 51, 0]]),  # 0..1: all were 0 or 1
        ("double", [[0.0, 128.0, 255.0], [7.0, 2.0, 0.0]], [[0, 128, 255], [7, 2, 0]]),  # 0..255 as floats
        ("ushort", [[0, 30000, 65535], [65535, 257, 0]], [[0, 117, 255], [255, 1, 0]]),  # 16 bits: 30000 wrapped to 48
        ("uchar", [[0, 128, 255], [7, 2, 0]], [[0, 128, 255], [7, 2, 0]]),
    ],
)
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])  # CRLF: "not a PLY file"
def test_read_ply_takes_what_other_writers_write(tmp_path, colour_type, stored, expected, newline):
    from rtstereo.sinks.pointcloud import _PLY_TYPES

    points = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, 3.0]], np.float32)
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written elsewhere; the vertices follow end_header",  # the header ended there
        "element vertex 2",
        *(f"property float {axis}" for axis in "xyz"),
        *(f"property {colour_type} {channel}" for channel in ("red", "green", "blue")),
        "end_header",
    ]
    fields = [(axis, "<f4") for axis in "xyz"] + [(c, _PLY_TYPES[colour_type]) for c in ("red", "green", "blue")]
    vertices = np.empty(2, dtype=fields)
    for axis, name in enumerate("xyz"):
        vertices[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = np.array(stored)[:, channel]
    path = tmp_path / "other.ply"
    path.write_bytes(newline.join(line.encode() for line in header) + newline + vertices.tobytes())
    read_points, colors = read_ply(path)
    np.testing.assert_array_equal(read_points, points)
    assert colors.dtype == np.uint8
    np.testing.assert_array_equal(colors, expected)


_POINTS = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, 3.0]], np.float32)


def test_read_ply_reads_ascii_as_open3d_and_cloudcompare_write_it(tmp_path):
    """It refused ASCII ("only binary little-endian PLY is read here"). Hand-written: a camera element before the
    vertices (skipped, one line), a face element after them (not read), colours as uchar, Windows line endings."""
    text = "\r\n".join([
        "ply", "format ascii 1.0", "comment made by hand", "element camera 1", "property float view_px",
        "element vertex 2", *(f"property float {axis}" for axis in "xyz"),
        *(f"property uchar {channel}" for channel in ("red", "green", "blue")),
        "element face 1", "property list uchar int vertex_indices", "end_header",
        "640", "0.5 -1 2 0 128 255", "1.5 0.25 3 7 2 0", "3 0 1 1", "",
    ])  # fmt: skip
    (tmp_path / "a.ply").write_bytes(text.encode())
    points, colors = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(points, _POINTS)
    assert colors.dtype == np.uint8 and colors.tolist() == [[0, 128, 255], [7, 2, 0]]
    header = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty double x\nproperty double y\nproperty double z\n"
    (tmp_path / "d.ply").write_bytes(header + b"end_header\n1e-3 2 -3.5\n")
    points, colors = read_ply(tmp_path / "d.ply")
    assert points.tolist() == [[np.float32(1e-3), 2.0, -3.5]] and colors is None
    for body, message in (
        (b"1 2\n", r"vertex 0 has 2 values, the header declares 3 properties"),
        (b"1 2 x\n", r"a vertex value is no number"),
        (b"", r"truncated: 1 vertices declared, 0 lines hold them"),
    ):
        (tmp_path / "bad.ply").write_bytes(header + b"end_header\n" + body)
        with pytest.raises(InputError, match=f"bad.ply: {message}"):
            read_ply(tmp_path / "bad.ply")


@pytest.mark.parametrize("order", ["<", ">"])
def test_read_ply_reads_binary_big_endian_too_and_skips_an_element_before_the_vertices(tmp_path, order):
    """It refused big-endian ("only binary little-endian PLY is read here"); a fixed-size element before the vertices
    (2 rows of a uchar and a double, 18 bytes) is skipped by its declared size, one after them not read."""
    kind = {"<": "binary_little_endian", ">": "binary_big_endian"}[order]
    header = "\n".join([
        "ply", f"format {kind} 1.0", "element camera 2", "property uchar id", "property double view_px",
        "element vertex 2", *(f"property float {axis}" for axis in "xyz"),
        *(f"property ushort {channel}" for channel in ("red", "green", "blue")),
        "element face 1", "property list uchar int vertex_indices", "end_header", "",
    ])  # fmt: skip
    camera = np.array([(1, 640.0), (2, 480.0)], dtype=[("id", "u1"), ("view_px", f"{order}f8")])
    vertices = np.empty(2, dtype=[*((a, f"{order}f4") for a in "xyz"), *((c, f"{order}u2") for c in ("r", "g", "b"))])
    for axis, name in enumerate("xyz"):
        vertices[name] = _POINTS[:, axis]
    for channel, name in enumerate("rgb"):
        vertices[name] = np.array([[0, 30000, 65535], [65535, 257, 0]])[:, channel]
    face = np.array([3], "u1").tobytes() + np.array([0, 1, 1], f"{order}i4").tobytes()
    (tmp_path / "b.ply").write_bytes(header.encode() + camera.tobytes() + vertices.tobytes() + face)
    points, colors = read_ply(tmp_path / "b.ply")
    np.testing.assert_array_equal(points, _POINTS)
    assert colors.tolist() == [[0, 117, 255], [255, 1, 0]]  # 16-bit colours, by 257


def _ply_bytes_by_hand(path):
    """The header lines and the body of a PLY file, split at its ``end_header`` line, read without rtstereo."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    return data[:end].decode("ascii").splitlines(), data[end:]


def test_the_ply_holds_15_bytes_per_point_little_endian_with_the_colours_of_their_pixels(result, tmp_path):
    (path,) = save_result(result, tmp_path, "pair", ("ply",))
    header, body = _ply_bytes_by_hand(path)
    count = next(int(h.split()[2]) for h in header if h.startswith("element vertex"))
    assert header[1] == "format binary_little_endian 1.0" and header[-1] == "end_header"
    assert [h for h in header if h.startswith("property")] == [
        f"property {kind} {name}" for kind, name in [("float", "x"), ("float", "y"), ("float", "z")]
    ] + [f"property uchar {name}" for name in ("red", "green", "blue")]
    assert len(body) == 15 * count and count > 0
    for i in (0, count // 2, count - 1):  # x y z as 3 little-endian float32, then r g b
        x, y, z = np.frombuffer(body, "<f4", 3, 15 * i)
        v, u = round(y * CAL.fy_px / z + CAL.cy_px), round(x * CAL.fx_px / z + CAL.cx0_px)
        assert z == pytest.approx(CAL.baseline_m * CAL.fx_px / result.disparity_px[v, u])
        assert tuple(body[15 * i + 12 : 15 * i + 15]) == tuple(result.left[v, u])


@pytest.mark.parametrize(
    ("points", "colors", "message"),
    [
        ([[0.0, 0.0, 1.0], [0.0, np.nan, 1.0]], None, r"points_m: 1 of 2 points are not finite"),
        ([[0.0, 0.0, 1.0]], np.array([[0.5, 1.0, 0.2]]), r"colors: expected uint8 .* float64 \(1, 3\); for 0..1 colo"),
        (
            [[0.0, 0.0, 1.0]] * 2,
            np.array([[1, 2, 3]], np.uint8),
            r"RGB of shape \(2, 3\), one per point, got uint8 \(1",
        ),
        ([[0.0, 0.0, 1.0]], np.array([[300, 2, 3]]), r"colors: expected uint8 RGB of shape \(1, 3\).* got int64"),
        ([[0.0, 0.0, 1.0, 1.0]], None, r"points_m: expected shape \(N, 3\) \(X, Y, Z metres\), got \(1, 4\)"),
        ([0.0, 0.0, 1.0], None, r"points_m: expected shape \(N, 3\)"),
    ],
)
def test_a_cloud_made_by_hand_is_checked_not_cast_into_the_file(tmp_path, points, colors, message):
    """write_ply cast what it was given: colours 0..1 came out black, 300 as 44, one colour was repeated to
    every point, nan points went into the file, a fourth column was dropped."""
    with pytest.raises(InputError, match=message):
        cloud = PointCloud(np.array(points, np.float32), colors, np.arange(len(points)), (1, len(points)))
        write_ply(tmp_path / "c.ply", cloud)
    assert not (tmp_path / "c.ply").exists()


@pytest.mark.parametrize("writer", [write_glb, save_point_cloud])
def test_the_glb_writer_refuses_arguments_of_the_wrong_type_in_one_line_as_the_ply_writer_does(tmp_path, writer):
    """write_ply said what it expected; write_glb and save_point_cloud failed with a bare TypeError ('expected str,
    bytes or os.PathLike object, not int') or AttributeError ('numpy.ndarray' object has no attribute 'points_m')."""
    cloud = PointCloud(points_m=np.zeros((1, 3), np.float32), colors=None, pixel_index=np.zeros(1, int), size_hw=(1, 1))
    for path in (5, None):
        with pytest.raises(InputError, match=r"point cloud file: expected a .*glb file name \(str or Path\), got"):
            writer(path, cloud)
    with pytest.raises(InputError, match=r"cloud: expected a PointCloud \(point_cloud\(.*got ndarray"):
        writer(tmp_path / "c.glb", cloud.points_m)


def test_the_readers_and_depth_helpers_refuse_arguments_of_the_wrong_type_in_one_line():
    """read_ply(5) was a bare TypeError, to_depth_mm('x') a ValueError, depth_of(a bare map) an AttributeError."""
    with pytest.raises(InputError, match=r"point cloud file: expected a .ply file name \(str or Path\), got int"):
        read_ply(5)
    with pytest.raises(InputError, match=r"depth: expected a float array of metres, got str 'x'"):
        to_depth_mm("x")
    with pytest.raises(InputError, match=r"expected a DisparityResult \(what predict\(\) returns\), got ndarray"):
        pointcloud.depth_of(np.ones((2, 2), np.float32))


def test_a_damaged_ply_is_an_input_error_naming_the_file(result, tmp_path):
    (path,) = save_result(result, tmp_path, "pair", ("ply",))
    data = path.read_bytes()
    damaged = {
        "truncated": (data[: len(data) // 2], "truncated: .* vertices need"),
        "count": (data.replace(b"element vertex ", b"element vertex x"), "damaged PLY header line 'element vertex x"),
        "no_z": (data.replace(b"property float z\n", b"property float w\n"), "the vertices have no z property"),
        "face_first": (  # a list's rows have sizes of their own: where the vertices start is not declared
            data.replace(b"element vertex", b"element face 1\nproperty list uchar int vertex_indices\nelement vertex"),
            "the 'face' element comes before the vertices",
        ),
        "fixed_first_missing": (  # declared, its 3 bytes not there: the vertices are short of them
            data.replace(b"element vertex", b"element camera 1\nproperty uchar a\nproperty short b\nelement vertex"),
            "truncated: .* vertices need",
        ),
    }
    for name, (content, message) in damaged.items():
        bad = tmp_path / f"{name}.ply"
        bad.write_bytes(content)
        with pytest.raises(InputError, match=rf"{bad.name}: {message}"):
            read_ply(bad)


class _Interrupted(BaseException):
    pass


@pytest.mark.parametrize("suffix", [".ply", ".glb"])
def test_an_interrupted_point_cloud_write_leaves_no_truncated_file(tmp_path, monkeypatch, suffix):
    # written in place, a Ctrl-C halfway left a truncated cloud under the real name
    from pathlib import Path

    cloud = PointCloud(points_m=np.eye(3, dtype=np.float32), colors=None, pixel_index=np.arange(3), size_hw=(1, 3))
    open_file, write_bytes = Path.open, Path.write_bytes

    class Halfway:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[:5])
            raise _Interrupted

    def halfway_bytes(path, data):
        write_bytes(path, data[:5])
        raise _Interrupted

    monkeypatch.setattr(Path, "open", lambda path, mode="r", *a, **k: Halfway(open_file(path, mode, *a, **k)))
    monkeypatch.setattr(Path, "write_bytes", halfway_bytes)
    with pytest.raises(_Interrupted):
        save_point_cloud(tmp_path / f"c{suffix}", cloud)
    assert list(tmp_path.iterdir()) == []


def test_a_cloud_that_cannot_be_read_says_why_once(tmp_path):
    """It said "cannot read c.ply: [Errno 21] Is a directory: 'c.ply'", naming the file twice."""
    (tmp_path / "c.ply").mkdir()
    for name, reason in (("c.ply", "Is a directory"), ("none.ply", "No such file or directory")):
        with pytest.raises(InputError) as info:
            read_ply(tmp_path / name)
        assert str(info.value) == f"cannot read {tmp_path / name}: {reason}"


@pytest.mark.parametrize("suffix", [".ply", ".glb"])
def test_a_huge_cloud_is_written_in_bounded_extra_memory(tmp_path, suffix):
    """The PLY writer built a structured copy of the whole cloud and then a bytes copy of that (2x the cloud's
    memory); the GLB went through trimesh (11x, and 12 s for 5 million points)."""
    import tracemalloc

    count = 4_000_000  # 60 MB of points and colours
    points = np.tile(np.array([[0.5, -1.0, 2.0]], np.float32), (count, 1))
    colors = np.tile(np.array([[10, 128, 250]], np.uint8), (count, 1))
    cloud = PointCloud(points_m=points, colors=colors, pixel_index=np.arange(count), size_hw=(1, count))
    tracemalloc.start()
    try:
        path = save_point_cloud(tmp_path / f"c{suffix}", cloud)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_bytes < 50e6, f"{peak_bytes / 1e6:.0f} MB beyond the 60 MB cloud"
    assert path.stat().st_size >= count * 15
    if suffix == ".ply":
        read_points, read_colors = read_ply(path)
        assert read_points[-1].tolist() == [0.5, -1.0, 2.0] and read_colors[-1].tolist() == [10, 128, 250]
    else:
        _, arrays = read_glb_strictly(path)
        assert arrays["POSITION"][-1].tolist() == [0.5, 1.0, -2.0] and len(arrays["COLOR_0"]) == count


def test_a_cloud_too_large_for_one_glb_is_refused_before_writing(tmp_path, monkeypatch):
    """A GLB's length is a uint32: past 4 GiB (about 214 million coloured points) it would wrap into a broken file."""
    cloud = PointCloud(points_m=np.eye(3, dtype=np.float32), colors=None, pixel_index=np.arange(3), size_hw=(1, 3))
    monkeypatch.setattr(pointcloud, "_GLB_MAX_BYTES", 100)  # stands for 4 GiB: a real one would take minutes
    with pytest.raises(OutputError, match=r"c.glb: 3 points need 0.0 GiB, more than the 4 GiB a GLB holds; write a"):
        write_glb(tmp_path / "c.glb", cloud)
    assert list(tmp_path.iterdir()) == []
