"""save_result and the look-ups a rerun makes over its folder: the branches the batch tests do not reach."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from rtstereo.errors import DisparityRangeError, InputError, OutputError
from rtstereo.sinks.files import not_written_notes, other_pairs, save_result, save_single_file
from rtstereo.types import DisparityResult


def _result(value: float = 2.0) -> DisparityResult:
    return DisparityResult(np.full((4, 6), value, np.float32))


@pytest.mark.parametrize(
    ("value", "formats", "refused"),
    [(2.0, ("pfm", "json"), "p.json"), (300.0, ("png16", "pfm"), "p.png-not-written.txt")],
    ids=["sidecar", "not-written-note"],
)
def test_a_text_file_the_disk_refuses_names_the_users_file_in_one_line(tmp_path, monkeypatch, value, formats, refused):
    """The sidecar and the note said "cannot write .../p.json: [Errno 28] No space left on device"."""
    written = Path.write_text

    def full(self, *args, **kwargs):
        if self.suffix in (".json", ".txt"):
            raise OSError(28, "No space left on device")
        return written(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError) as info:
        save_result(_result(value), tmp_path / "out", "p", formats)
    assert str(info.value) == f"cannot write {tmp_path / 'out' / refused}: No space left on device"
    assert list((tmp_path / "out").iterdir()) == []  # all of a pair's files or none


def test_a_format_named_twice_is_written_once(tmp_path):
    assert save_result(_result(), tmp_path, "p", ("pfm", "pfm")) == [tmp_path / "p.pfm"]


def test_a_note_of_an_earlier_run_that_cannot_be_removed_is_an_output_error(tmp_path, monkeypatch):
    note = tmp_path / "p.png-not-written.txt"
    note.write_text("p: disparity up to 300.0 px does not fit a 16-bit PNG\n")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(OutputError) as info:  # it said "[Errno 13] Permission denied: '.../p.png-not-written.txt'"
        save_result(_result(), tmp_path, "p", ("png16", "pfm"))
    assert str(info.value) == f"cannot remove {note}, left by an earlier run: Permission denied"


@pytest.mark.parametrize(("value", "in_way"), [(300.0, "p.png"), (2.0, "p.png-not-written.txt")])
def test_a_folder_where_an_earlier_runs_file_is_removed_is_said_in_words_before_any_file_is_written(
    tmp_path, value, in_way
):
    """It said "[Errno 21] Is a directory: '.../p.png'", after the pair's other files were in place."""
    (tmp_path / in_way).mkdir()
    with pytest.warns(UserWarning) if value > 256 else nullcontext(), pytest.raises(OutputError) as info:
        save_result(_result(value), tmp_path, "p", ("png16", "pfm"))
    assert str(info.value) == f"cannot remove {tmp_path / in_way}, left by an earlier run: it is a folder"
    assert [p.name for p in tmp_path.iterdir()] == [in_way], "all of a pair's files or none"


def test_a_range_error_of_another_format_than_png16_is_raised_not_noted(tmp_path):
    def too_far(result, stem):
        raise DisparityRangeError("too far for this format", 300.0)

    with pytest.raises(DisparityRangeError, match="too far for this format"):
        save_result(_result(), tmp_path, "p", ("png16", "pfm"), writers={"pfm": too_far})
    assert list(tmp_path.iterdir()) == []


def test_an_empty_note_gives_no_reason(tmp_path):
    (tmp_path / "p.png-not-written.txt").write_text("\n")
    assert not_written_notes(tmp_path, "p", ("png16", "pfm")) == []


def test_other_pairs_leave_out_hidden_files_and_a_live_runs_staging_folder(tmp_path):
    save_result(_result(), tmp_path, "a", ("pfm",))
    save_result(_result(), tmp_path, "b", ("pfm",))
    staging = tmp_path / ".partial-12345-0123abcd@host"
    staging.mkdir()
    save_result(_result(), staging, "c", ("pfm",))  # a pair another run is writing now
    (tmp_path / ".d.pfm").write_bytes(b"")
    assert other_pairs(tmp_path, ["a"], ("pfm",)) == ["b"]
    assert other_pairs(tmp_path, ["a"], ()) == []


def test_other_pairs_of_a_format_without_a_file_name_are_unknown(tmp_path):
    from rtstereo.sinks.files import FORMATS, register_format

    save_result(_result(), tmp_path, "b", ("pfm",))
    register_format("test_nameless", lambda result, stem: stem)
    try:
        assert other_pairs(tmp_path, ["a"], ("test_nameless", "pfm")) == []
    finally:
        FORMATS.pop("test_nameless")


def test_the_sidecar_says_how_each_map_file_beside_it_reads_back_exactly(tmp_path):
    """left.json named the model and sizes but not that left.png holds disparity x 256 (0 = invalid), nor that
    left_depth_mm.png holds millimetres, nor the scale applied to a resized pair's disparities."""
    import json

    import cv2

    import rtstereo.sinks.pointcloud  # noqa: F401 (registers the depth formats)
    from rtstereo.geometry import depth_from_disparity
    from rtstereo.io.pfm import read_pfm
    from rtstereo.types import Calibration

    disparity = np.array([[2.5, np.nan, 40.125], [7.0, 100.75, np.nan]], np.float32)
    calibration = Calibration(400.0, 400.0, 1.0, 1.0, 0.5, 0.1)
    result = DisparityResult(disparity, calibration=calibration, disparity_scale=2.0)
    formats = ("png16", "pfm", "npy", "depth", "depth_npy", "depth_mm", "color", "json")
    save_result(result, tmp_path, "p", formats)
    sidecar = json.loads((tmp_path / "p.json").read_text())
    assert sidecar["disparity_scale"] == 2.0
    encodings = sidecar["encodings"]
    assert sorted(encodings) == ["depth", "depth_mm", "depth_npy", "npy", "pfm", "png16"]  # maps only
    expected = {"disparity": disparity, "depth": depth_from_disparity(disparity, calibration)}
    for encoding in encodings.values():
        path = tmp_path / encoding["file"]
        if path.suffix == ".png":
            stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        else:
            stored = read_pfm(path) if path.suffix == ".pfm" else np.load(path)
        assert stored.dtype == np.dtype(encoding["dtype"]), path.name
        invalid = np.float64(encoding["invalid"])  # 0, or the text "inf" / "nan"
        values = stored.astype(np.float64) / encoding["divide_by"]
        values[np.isnan(stored) if np.isnan(invalid) else stored == invalid] = np.nan
        tolerance = 0.5 / encoding["divide_by"] if stored.dtype == np.uint16 else 1e-6
        np.testing.assert_allclose(values, expected[encoding["holds"]], atol=tolerance, err_msg=path.name)


@pytest.mark.parametrize("formats", [("png16", "pfm", "json"), ("json", "png16", "pfm")])
def test_the_sidecar_describes_no_png_that_a_disparity_over_256_px_left_unwritten(tmp_path, formats, recwarn):
    """p.json described p.png ("uint16, divide by 256") when the map did not fit it and only the note was written."""
    import json

    files = save_result(_result(300.0), tmp_path, "p", formats)
    names = {"png16": "p.png-not-written.txt", "pfm": "p.pfm", "json": "p.json"}
    assert files == [tmp_path / names[f] for f in formats]  # in the order of the formats, the sidecar too
    encodings = json.loads((tmp_path / "p.json").read_text())["encodings"]
    assert list(encodings) == ["pfm"] and all((tmp_path / e["file"]).is_file() for e in encodings.values())
    save_result(_result(2.0), tmp_path, "p", formats)  # the map fits again: the PNG, and the sidecar says so
    assert list(json.loads((tmp_path / "p.json").read_text())["encodings"]) == ["png16", "pfm"]


def test_the_sidecar_gives_the_colour_range_of_the_preview(tmp_path):
    """left_color.png spans 0 to the map's own 99th percentile, a number written nowhere: which disparity a colour
    showed could not be known."""
    import json

    import cv2

    disparity = np.tile(np.linspace(1.0, 40.0, 100, dtype=np.float32), (8, 1))
    disparity[0, 0] = np.nan
    save_result(DisparityResult(disparity), tmp_path, "p", ("color", "json"))
    preview = json.loads((tmp_path / "p.json").read_text())["color_preview"]
    top = float(np.nanpercentile(disparity, 99))
    assert preview == {"file": "p_color.png", "colour_map": "turbo", "range_px": [0.0, top], "invalid": "black"}
    rgb = cv2.imread(str(tmp_path / preview["file"]))[:, :, ::-1]
    turbo = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_TURBO)[0, :, ::-1]
    assert (rgb[1, -1] == turbo[255]).all() and (rgb[0, 0] == 0).all()  # beyond the top: its colour; nan: black
    assert (rgb[1, 50] == turbo[int(disparity[1, 50] / top * 255)]).all()  # value / top of the range, in turbo
    save_result(DisparityResult(disparity), tmp_path, "q", ("pfm", "json"))
    assert "color_preview" not in json.loads((tmp_path / "q.json").read_text())  # no preview, no range


def test_the_previews_range_is_the_maps_percentile_taken_once_for_the_preview_and_the_sidecar(tmp_path, monkeypatch):
    """The preview and the sidecar, which gives its range, each took the map's 99th percentile: 5 ms more per pair
    at 640x480, 20 ms at 1080p."""
    import json

    import cv2

    from rtstereo.io import disparity as io_disparity
    from rtstereo.io.disparity import colorize
    from rtstereo.sinks import files

    disparity = np.linspace(0.5, 40.0, 24 * 32, dtype=np.float32).reshape(24, 32)
    disparity[0, :4] = np.nan
    taken, percentile = [], io_disparity.preview_top_px
    counting = lambda d: taken.append(1) or percentile(d)  # noqa: E731
    monkeypatch.setattr(io_disparity, "preview_top_px", counting)
    monkeypatch.setattr(files, "preview_top_px", counting)
    save_result(DisparityResult(disparity), tmp_path, "p")
    assert len(taken) == 1
    sidecar = json.loads((tmp_path / "p.json").read_text())
    assert sidecar["color_preview"]["range_px"] == [0.0, percentile(disparity)]
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "p_color.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(written, colorize(disparity))
    with pytest.raises(Exception, match=r"expected a float \(H, W\) array"):  # what is no map is said as before
        save_result(DisparityResult(np.zeros((4, 6, 3), np.float32)), tmp_path, "q", ("color", "json"))


def test_other_pairs_come_in_the_order_of_the_numbers_in_their_names(tmp_path):
    """The note of a rerun over fewer pairs listed p10, p11, p2, p3: not the order of the pairs of a folder."""
    for name in ("p1", "p2", "p3", "p10", "p11"):
        (tmp_path / f"{name}.pfm").write_bytes(b"")
    assert other_pairs(tmp_path, ["p1"], ("pfm",)) == ["p2", "p3", "p10", "p11"]


def test_the_3d_formats_are_known_to_save_result_without_importing_the_point_cloud_module(tmp_path):
    """formats=("ply",) failed with a bare KeyError: 'ply' until rtstereo.sinks.pointcloud was imported (the command
    line does; a script calling save_result did not), so it runs in a child process that has not imported it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from rtstereo.sinks.files import save_result; from rtstereo.types import "
        "Calibration, DisparityResult; "
        "c = Calibration(100, 100, 2.5, 2.5, 1.5, 0.1, width_px=6, height_px=4); "
        "r = DisparityResult(np.full((4, 6), 2.0, np.float32), calibration=c); "
        "print(sorted(p.name for p in save_result(r, sys.argv[1], 'p', ('ply', 'depth'))))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "['p.ply', 'p_depth.pfm']"


@pytest.mark.parametrize(
    ("formats", "message"),
    [
        (("pfm", "plyy"), "unknown output format plyy (known: color, depth, "),
        (("PFM",), "did you mean pfm?"),
        ("pfm", "formats: expected a tuple of format names such as ('png16', 'json'), got str 'pfm'"),
        ([1], "formats: expected a tuple of format names such as ('png16', 'json'), got list [1]"),
    ],
)
def test_save_result_refuses_formats_it_does_not_know_in_one_line(tmp_path, formats, message):
    """A misspelt name was a bare KeyError, a str was read letter by letter (KeyError: 'p'); nothing is written."""
    with pytest.raises(InputError) as info:
        save_result(_result(), tmp_path / "out", "p", formats)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_save_result_takes_the_formats_from_a_generator(tmp_path):
    written = save_result(_result(), tmp_path, "p", (f for f in ("pfm", "npy")))
    assert [p.name for p in written] == ["p.pfm", "p.npy"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda folder: save_result(np.ones((4, 6), np.float32), folder, "p"),
            "result: expected a DisparityResult (what predict() returns), got ndarray; a bare map is written with "
            "rtstereo.io.write_disparity(path, map)",
        ),
        (
            lambda folder: save_single_file(np.ones((4, 6), np.float32), folder / "p.pfm"),
            "result: expected a DisparityResult (what predict() returns), got ndarray; a bare map is written with "
            "rtstereo.io.write_disparity(path, map)",
        ),
        (
            lambda folder: save_result(_result(), folder, 5),
            "name: expected a str (the pair's name, its files' stem), got int 5",
        ),
        (
            lambda folder: save_single_file(_result(), 5),
            "output file: expected a .png, .pfm or .npy file name (str or Path), got int",
        ),
    ],
    ids=["map-for-result", "map-for-result-one-file", "int-name", "int-path"],
)
def test_save_result_and_save_single_file_refuse_arguments_of_another_type_in_one_line(tmp_path, call, message):
    """A map given for the result failed with AttributeError ('numpy.ndarray' object has no attribute 'disparity_px'),
    an int name or path with pathlib's bare TypeError."""
    with pytest.raises(InputError) as info:
        call(tmp_path)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []


def test_save_single_file_writes_under_the_home_folder_for_a_leading_tilde(tmp_path, monkeypatch):
    """It made a folder named ~ in the working folder, where the other writers expand it."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert save_single_file(_result(), "~/d.pfm") == tmp_path / "home" / "d.pfm"
    assert (tmp_path / "home" / "d.pfm").is_file() and not (tmp_path / "work" / "~").exists()
