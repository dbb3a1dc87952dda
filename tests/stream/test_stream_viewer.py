"""The optional 3D viewer (``--view3d``, ``--view3d-save``): what it logs, that it never holds the
stream up, and its errors. The payload and sink tests run without Rerun; the recording tests need
``rerun-sdk`` (the ``viewer`` extra) and skip without it."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import BACKGROUND_PX, RECTANGLE_PX
from rtstereo import viewer
from rtstereo.errors import InputError, MissingDependencyError, OutputError
from rtstereo.sinks.video import OutputFrame, compose_preview
from rtstereo.types import Calibration, DisparityResult, StereoPair
from rtstereo.viewer import Viewer3DSink, ViewerOptions, build_payload

FAST = ["--model", "sgbm", "--max-disp", "32"]
HAS_RERUN = importlib.util.find_spec("rerun") is not None
needs_rerun = pytest.mark.skipif(not HAS_RERUN, reason="needs rerun-sdk (pip install 'rtstereo[viewer]')")

# fx * baseline = 10 px*m: 10 px of disparity is 1 m, 20 px is 0.5 m.
CAL = Calibration(fx_px=100.0, fy_px=110.0, cx0_px=15.5, cx1_px=15.5, cy_px=11.5, baseline_m=0.1)
RECT = (slice(6, 18), slice(8, 24))  # rows, columns of the near rectangle


@pytest.fixture
def calib_file(tmp_path):
    """The rtstereo JSON calibration of the rendered 128x64 test videos."""
    from rtstereo.io.calibration import write_calibration

    return write_calibration(tmp_path / "calib.json", Calibration(100.0, 100.0, 63.5, 63.5, 31.5, 0.1, 128, 64))


def known_frame(number: int = 0, calibration: Calibration | None = CAL, preview: bool = True) -> OutputFrame:
    """A 24x32 frame: a plane 1 m away with a 0.5 m near rectangle, and a random left image."""
    disparity = np.full((24, 32), 10.0, np.float32)
    disparity[RECT] = 20.0
    disparity[0, 0] = np.nan
    left = np.random.default_rng(number).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    pair = StereoPair(left, left, index=number, timestamp_s=0.1 * number, calibration=calibration)
    result = DisparityResult(disparity, calibration=calibration, left=left)
    return OutputFrame(number, pair, result, compose_preview(left, disparity, 32.0) if preview else None)


class FakeRecording:
    """Stands in for ``rerun.RecordingStream``: keeps what is logged; ``fail`` names methods that raise."""

    def __init__(self, *fail: str):
        self.logged: list[tuple[str, object]] = []
        self.times: list[tuple[str, dict]] = []
        self.flushed = self.disconnected = False
        self.fail = fail
        self.opened: list[str] = []

    def __getattribute__(self, name):
        if name in object.__getattribute__(self, "fail"):
            raise RuntimeError(f"{name} failed")
        return object.__getattribute__(self, name)

    def spawn(self, **kwargs):
        self.opened.append("spawn")

    def save(self, path, **kwargs):
        self.opened.append(f"save {path}")
        self.saved_to = Path(path)
        self.saved_to.write_bytes(b"RRF")  # Rerun's file sink starts the file at once

    def log(self, path, entity, static=False):
        self.logged.append((path, entity))

    def set_time(self, timeline, **value):
        self.times.append((timeline, value))

    def flush(self):
        self.flushed = True

    def disconnect(self):
        self.disconnected = True


# -- payload: what is logged (no Rerun needed) -----------------------------------------------------


def test_payload_points_have_the_depth_of_the_known_scene():
    frame = known_frame()
    payload = build_payload(frame, ViewerOptions(max_jump_rel=0.1))
    height, width = 24, 32
    v, u = np.divmod(payload.pixel_index, width)
    in_rect = (v >= 6) & (v < 18) & (u >= 8) & (u < 24)
    z = payload.points_m[:, 2]
    np.testing.assert_allclose(z[in_rect], 0.5, rtol=1e-6)
    np.testing.assert_allclose(z[~in_rect], 1.0, rtol=1e-6)
    # metric back-projection through the pinhole: X = (u - cx0) Z / fx, Y = (v - cy) Z / fy
    np.testing.assert_allclose(payload.points_m[:, 0], (u - CAL.cx0_px) * z / CAL.fx_px, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(payload.points_m[:, 1], (v - CAL.cy_px) * z / CAL.fy_px, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(payload.colors, frame.pair.left.reshape(-1, 3)[payload.pixel_index])
    # flying pixels: both sides of the rectangle's border are dropped, and the invalid corner
    border = np.zeros((height, width), bool)
    border[5:19, 7:25] = True
    border[7:17, 9:23] = False
    kept = np.zeros(height * width, bool)
    kept[payload.pixel_index] = True
    assert not (kept.reshape(height, width) & border).any()
    assert not kept[0]
    assert len(payload.points_m) == payload.points_before_cap == height * width - border.sum() - 1
    # the 2D images: depth in metres, the disparity in the stream's colours
    assert payload.depth_m[10, 10] == pytest.approx(0.5) and payload.depth_m[2, 2] == pytest.approx(1.0)
    assert np.isnan(payload.depth_m[0, 0])
    np.testing.assert_array_equal(payload.disparity_colour, frame.preview[:, width:])
    assert payload.number == 0 and payload.timestamp_s == 0.0 and payload.calibration == CAL


def test_payload_of_a_colour_left_view_beside_a_grey_right_one_is_in_colour():
    """Matched in grey, the left view was shown grey in the 3D view (its image and every point)."""
    frame = known_frame()
    grey_right = np.repeat(frame.pair.left[:, :, :1], 3, axis=2)
    with pytest.warns(UserWarning, match="matched in grey"):
        pair = StereoPair(frame.pair.left, grey_right, calibration=CAL)
    payload = build_payload(OutputFrame(0, pair, frame.result, frame.preview), ViewerOptions(max_jump_rel=None))
    np.testing.assert_array_equal(payload.left, frame.pair.left)
    np.testing.assert_array_equal(payload.colors, frame.pair.left.reshape(-1, 3)[payload.pixel_index])


def test_payload_cuts_far_points_and_caps_the_cloud_evenly():
    near_only = build_payload(known_frame(), ViewerOptions(max_depth_m=0.75))
    np.testing.assert_allclose(near_only.points_m[:, 2], 0.5, rtol=1e-6)
    capped = build_payload(known_frame(), ViewerOptions(max_points=100, max_jump_rel=None))
    assert len(capped.points_m) == len(capped.colors) == 100
    assert capped.points_before_cap == 24 * 32 - 1
    rows = capped.pixel_index // 32
    assert rows.min() == 0 and rows.max() == 23  # spread over the whole image, not its top rows


def test_payload_without_preview_colours_the_disparity_itself():
    payload = build_payload(known_frame(preview=False))
    assert payload.disparity_colour.shape == (24, 32, 3) and payload.disparity_colour.dtype == np.uint8


def test_payload_needs_a_calibration():
    with pytest.raises(InputError, match="--calib FILE"):
        build_payload(known_frame(calibration=None))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_points": 0}, "max_points must be >= 1"),
        ({"max_depth_m": -1.0}, "max_depth_m must be > 0 metres"),
        ({"jpeg_quality": 0}, "jpeg_quality must be 1..100"),
        # checked when made, not at the first frame (a bare TypeError, or an error from the viewer's thread
        # once the stream ran), and 2.5 points let 3 through
        ({"max_points": "5"}, "max_points: expected a whole number of points >= 1, got str '5'"),
        ({"max_points": 2.5}, "max_points: expected a whole number .* got float 2.5"),
        ({"max_points": True}, "max_points: expected .* got bool"),
        ({"max_depth_m": "5"}, "max_depth_m: expected a depth in metres > 0, or None, got str"),
        ({"max_depth_m": float("nan")}, "max_depth_m must be > 0 metres"),
        ({"max_jump_rel": -1.0}, "max_jump_rel must be > 0"),
        ({"max_jump_rel": float("nan")}, "max_jump_rel must be > 0"),
        ({"max_jump_rel": "0.1"}, "max_jump_rel: expected a relative depth jump > 0, or None, got str"),
        ({"jpeg_quality": 50.5}, "jpeg_quality: expected a whole number 1..100, or None, got float 50.5"),
    ],
)
def test_bad_viewer_options(options, message):
    with pytest.raises(InputError, match=message):
        ViewerOptions(**options)


def test_pinhole_is_the_left_camera_in_rerun_pixel_coordinates():
    parameters = viewer.pinhole_parameters(CAL, 24, 32)
    assert parameters == {
        "focal_length": [100.0, 110.0],
        "principal_point": [16.0, 12.0],
        "width": 32,
        "height": 24,
    }


# -- the sink: never holds the stream up (no Rerun needed) ----------------------------------------


def test_sink_drops_frames_instead_of_queueing_them(monkeypatch):
    logged = []

    def slow_log(recording, payload, options):
        time.sleep(0.2)
        logged.append(payload.number)

    monkeypatch.setattr(viewer, "log_payload", slow_log)
    recording = FakeRecording()
    sink = Viewer3DSink(recording=recording)
    frames = [known_frame(i) for i in range(20)]
    slowest_write_s = 0.0
    for frame in frames:
        started = time.perf_counter()
        sink.write(frame)
        slowest_write_s = max(slowest_write_s, time.perf_counter() - started)
    sink.close()
    assert slowest_write_s < 0.1  # a hand-over, never a wait for the 200 ms log
    assert sink.logged == len(logged) and sink.logged + sink.skipped == 20
    assert 1 <= sink.logged < 20
    assert logged[-1] == 19  # the newest frame is always shown, also at the end
    assert logged == sorted(logged)
    assert recording.flushed and not recording.disconnected  # an injected recording stays open
    assert sink.outputs == []
    assert not any(t.name == "rtstereo-viewer" and t.is_alive() for t in threading.enumerate())


def test_sink_raises_the_viewer_threads_error_in_the_stream(monkeypatch):
    sink = Viewer3DSink(recording=FakeRecording())
    sink.write(known_frame(0, calibration=None))
    with pytest.raises(InputError, match="need the cameras' calibration"):
        for number in range(1, 50):  # the error surfaces at the next write once the thread hit it
            time.sleep(0.01)
            sink.write(known_frame(number))
        sink.close()
    sink.close()  # reported once; closing again is harmless


def test_sink_needs_somewhere_to_show():
    with pytest.raises(InputError, match="spawn=True"):
        Viewer3DSink()


@pytest.fixture
def fake_rerun(monkeypatch):
    """Install a stand-in ``rerun`` module (an old release: no ``set_sinks``) that opens ``recording``."""

    def install(recording: FakeRecording):
        rr = types.ModuleType("rerun")
        rr.__version__ = "0.20.3"
        rr.new_recording = lambda application_id: recording
        rrb = types.ModuleType("rerun.blueprint")
        for name in ("Blueprint", "Horizontal", "Vertical", "Spatial3DView", "Spatial2DView"):
            setattr(rrb, name, lambda *args, **kwargs: None)
        rr.blueprint = rrb
        monkeypatch.setitem(sys.modules, "rerun", rr)
        monkeypatch.setitem(sys.modules, "rerun.blueprint", rrb)
        monkeypatch.setattr(viewer, "log_payload", lambda recording, payload, options: None)
        return recording

    return install


def test_sink_opens_and_closes_its_own_recording(fake_rerun, tmp_path):
    recording = fake_rerun(FakeRecording())
    rrd = tmp_path / "sub" / "o.rrd"
    sink = Viewer3DSink(save_path=rrd)
    sink.write(known_frame())
    # Rerun writes a hidden name beside it (suffix kept): the real name appears only once the file is complete
    assert recording.saved_to.parent == rrd.parent and recording.saved_to.name.startswith(".o.partial-")
    assert recording.saved_to.suffix == ".rrd" and not rrd.exists()
    sink.close()
    assert recording.flushed and recording.disconnected  # the file is complete
    assert sink.outputs == [str(rrd)]
    assert sorted(p.name for p in rrd.parent.iterdir()) == ["o.rrd"] and rrd.read_bytes() == b"RRF"


@pytest.mark.parametrize(
    ("fail", "kwargs", "message"),
    [
        ("spawn", {"spawn": True}, r"cannot start the Rerun viewer: spawn failed \(no display\?"),
        ("save", {"save_path": "o.rrd"}, "cannot write the 3D recording o.rrd: save failed"),
        ("", {"spawn": True, "save_path": "o.rrd"}, "saving at once needs a newer rerun-sdk than 0.20.3"),
    ],
)
def test_opening_the_viewer_fails_clearly(fake_rerun, monkeypatch, tmp_path, fail, kwargs, message):
    monkeypatch.chdir(tmp_path)
    fake_rerun(FakeRecording(fail))
    with pytest.raises(OutputError, match=message):
        Viewer3DSink(**kwargs)


def test_a_recording_that_cannot_be_finished_is_an_error(fake_rerun, tmp_path):
    fake_rerun(FakeRecording("flush"))
    (tmp_path / "o.rrd").write_bytes(b"an earlier run's recording")
    sink = Viewer3DSink(save_path=tmp_path / "o.rrd")
    sink.write(known_frame())
    with pytest.raises(OutputError, match="finishing the recording .*o.rrd failed: flush failed"):
        sink.close()
    # the unfinished file is removed, not renamed: the earlier recording is still whole, nothing hidden is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.rrd"] and sink.outputs == []
    assert (tmp_path / "o.rrd").read_bytes() == b"an earlier run's recording"


def test_a_recording_killed_mid_write_is_removed_by_the_next(fake_rerun, tmp_path):
    fake_rerun(FakeRecording())
    (tmp_path / ".o.partial-999999999-0123abcd.rrd").write_bytes(b"RRF, cut short")  # its writer is gone
    sink = Viewer3DSink(save_path=tmp_path / "o.rrd")
    sink.close()  # no frame: no recording under the name either
    assert list(tmp_path.iterdir()) == [] and sink.outputs == []


def test_a_viewer_that_was_closed_is_only_a_warning(fake_rerun, caplog):
    recording = fake_rerun(FakeRecording("flush"))
    sink = Viewer3DSink(spawn=True)
    sink.write(known_frame())
    sink.close()
    assert recording.disconnected
    assert "the Rerun viewer did not take the last frames (closed?): flush failed" in caplog.text


def test_missing_rerun_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rerun", None)  # makes `import rerun` fail as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'rtstereo\[viewer\]'"):
        Viewer3DSink(save_path=tmp_path / "out.rrd")


def test_missing_rerun_fails_the_command_before_the_first_frame(monkeypatch, run_cli, two_videos, calib_file, tmp_path):
    monkeypatch.setitem(sys.modules, "rerun", None)
    code, _, err = run_cli(
        "video",
        *two_videos,
        "--calib",
        calib_file,
        "--view3d-save",
        tmp_path / "o.rrd",
        "-o",
        tmp_path / "o.mp4",
        *FAST,
    )
    assert code == 2
    assert "the 3D viewer (--view3d-save) needs the Python package 'rerun-sdk'" in err  # the option given
    assert "pip install 'rtstereo[viewer]'" in err and "Traceback" not in err
    assert not (tmp_path / "o.rrd").exists() and not (tmp_path / "o.mp4").exists()


def test_video_records_under_a_hidden_name_and_renames_it_at_the_end(
    fake_rerun, run_cli, two_videos, calib_file, tmp_path
):
    """The .rrd was written by Rerun under its final name: a run stopped midway left a partial file there."""
    recording = fake_rerun(FakeRecording())
    rrd = tmp_path / "view" / "o.rrd"
    code, out, err = run_cli("video", *two_videos, "--calib", calib_file, "--view3d-save", rrd, *FAST)
    assert code == 0, err
    assert recording.saved_to.parent == rrd.parent and recording.saved_to.name.startswith(".o.partial-")
    assert [p.name for p in rrd.parent.iterdir()] == ["o.rrd"] and str(rrd) in out


@pytest.mark.parametrize("verb", ["video", "live"])
def test_calib_unit_without_a_calibration_file_is_refused(run_cli, two_videos, sbs_video, tmp_path, verb):
    """--calib-unit without --calib or --rectify was silently ignored."""
    inputs = two_videos if verb == "video" else ["--camera", f"uvc:{sbs_video}"]
    code, _, err = run_cli(verb, *inputs, "--calib-unit", "mm", "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and "--calib-unit is the length unit of an OpenCV calibration file" in err, err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("verb", ["video", "live"])
@pytest.mark.parametrize("flag", [["--view3d"], ["--view3d-save", "{tmp}/o.rrd"]])
def test_no_calibration_is_a_clear_error_before_the_first_frame(run_cli, two_videos, sbs_video, tmp_path, verb, flag):
    inputs = two_videos if verb == "video" else ["--camera", f"uvc:{sbs_video}"]
    flag = [f.format(tmp=tmp_path) for f in flag]
    code, _, err = run_cli(verb, *inputs, *flag, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2
    assert f"{flag[0]} needs the cameras' calibration" in err and "pass --calib FILE" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.rrd").exists()


@pytest.mark.parametrize("verb", ["video", "live"])
def test_3d_view_settings_without_the_3d_view_are_refused(run_cli, two_videos, sbs_video, tmp_path, verb):
    inputs = two_videos if verb == "video" else ["--camera", f"uvc:{sbs_video}"]
    code, _, err = run_cli(verb, *inputs, "--max-depth", 5, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 2 and "--max-depth without --view3d or --view3d-save: the 3D view is off and would ignore it" in err
    code, _, err = run_cli(verb, *inputs, "--max-depth", 5, "--view3d-points", 10, *FAST)
    assert code == 2 and "--max-depth and --view3d-points without --view3d" in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--view3d-points", "0"], "--view3d-points must be >= 1, got 0"),  # was "3D viewer: max_points must be"
        (["--max-depth", "-1"], "--max-depth must be > 0 metres, got -1.0"),
        (["--max-depth", "nan"], "--max-depth must be > 0 metres, got nan"),
    ],
)
def test_bad_3d_view_values_name_their_flag_before_a_missing_rerun(
    monkeypatch, run_cli, two_videos, calib_file, tmp_path, flags, said
):
    monkeypatch.setitem(sys.modules, "rerun", None)  # the usage error comes first, installed or not
    code, _, err = run_cli(
        "video", *two_videos, "--calib", calib_file, "--view3d-save", tmp_path / "o.rrd", *flags, *FAST
    )
    assert code == 2 and err == f"rtstereo video: error: {said}\n", err


@pytest.mark.parametrize("verb", ["video", "live"])
def test_a_summary_naming_the_recording_is_refused(
    fake_rerun, run_cli, two_videos, sbs_video, calib_file, tmp_path, verb
):
    """The summary, written last, replaced the .rrd the viewer had recorded."""
    fake_rerun(FakeRecording())
    recording = tmp_path / "run.rrd"
    inputs = list(two_videos) if verb == "video" else ["--camera", f"uvc:{sbs_video}"]
    code, _, err = run_cli(
        verb, *inputs, "--calib", calib_file, "--view3d-save", recording, "--summary", recording, *FAST
    )
    assert code == 2 and f"--summary {recording} is the --view3d-save recording" in err, err
    assert not recording.exists()


def test_recording_name_must_end_in_rrd(run_cli, two_videos, calib_file, tmp_path):
    code, _, err = run_cli("video", *two_videos, "--calib", calib_file, "--view3d-save", tmp_path / "o.mp4", *FAST)
    assert code == 2 and "expected a .rrd file name" in err


def test_rrd_check(tmp_path):
    with pytest.raises(OutputError, match=r"expected a \.rrd file name"):
        viewer.check_rrd_path("view.txt")
    (tmp_path / "out.mp4").write_bytes(b"a video")  # was: "cannot create folder ...: [Errno 17] File exists: ..."
    # named as given, then the reason (it was "cannot create folder out.mp4: ...", without the option)
    recording_in_a_file = (
        r"^cannot write the 3D recording .*view.rrd of --view3d-save: .*out.mp4 is a file, not a folder$"
    )
    with pytest.raises(OutputError, match=recording_in_a_file):
        viewer.check_rrd_path(tmp_path / "out.mp4" / "view.rrd")
    (tmp_path / "old.rrd").mkdir()  # Rerun's own error (or the rename's) would have come at the end of the stream
    with pytest.raises(OutputError, match=r"old.rrd is a folder: give a file name, e.g. .*old.rrd/view.rrd$"):
        viewer.check_rrd_path(tmp_path / "old.rrd")
    # it wrote the file new.rrd, where predict's `-o x/` is a folder
    with pytest.raises(OutputError, match=r"new.rrd/ ends with a folder separator, which names a folder: .*new.rrd$"):
        viewer.check_rrd_path(f"{tmp_path}/new.rrd/")
    assert not (tmp_path / "new.rrd").exists()


# -- with Rerun: a recording of a video ------------------------------------------------------------


@needs_rerun
def test_video_with_calibration_records_the_3d_view(monkeypatch, run_cli, two_videos, calib_file, scene, tmp_path):
    payloads = []
    log_payload = viewer.log_payload

    def keep(recording, payload, options):
        payloads.append(payload)
        log_payload(recording, payload, options)

    monkeypatch.setattr(viewer, "log_payload", keep)
    rrd = tmp_path / "view" / "o.rrd"
    code, out, err = run_cli("video", *two_videos, "--calib", calib_file, "--view3d-save", rrd, *FAST)
    assert code == 0, err
    assert rrd.stat().st_size > 1000 and rrd.read_bytes()[:3] == b"RRF"  # Rerun's file signature
    assert f"3D viewer: recorded to {rrd}" in err and str(rrd) in out
    assert payloads and all(p.calibration.baseline_m == 0.1 for p in payloads)
    # the rendered scene: background at 6 px, rectangle at 14 px -> fx * B / d metres
    for payload in payloads:
        x0, y0, x1, y1 = scene.rectangles[payload.number]
        v, u = np.divmod(payload.pixel_index, 128)
        z = payload.points_m[:, 2]
        inside = (u >= x0 + 3) & (u < x1 - 3) & (v >= y0 + 3) & (v < y1 - 3)
        outside = (u < x0 - 3) & (u > 32)  # the left border sees no match in the right view
        assert np.median(z[inside]) == pytest.approx(10.0 / RECTANGLE_PX, rel=0.05)
        assert np.median(z[outside]) == pytest.approx(10.0 / BACKGROUND_PX, rel=0.05)
    try:
        from rerun.chunk import RrdReader
    except ImportError:
        return  # an older rerun-sdk: the file cannot be read back from Python
    paths = {c.entity_path for c in RrdReader(rrd).stream()}
    assert {"/world", "/world/camera", "/world/camera/image", "/world/points", "/images/disparity"} <= paths
    assert "/images/depth" in paths


@needs_rerun
def test_log_payload_logs_every_part_of_a_frame():
    import rerun as rr

    recording = FakeRecording()
    payload = build_payload(known_frame(3))
    viewer.log_payload(recording, payload, ViewerOptions(jpeg_quality=None))
    kinds = {path: type(entity).__name__ for path, entity in recording.logged}
    assert kinds == {
        "world": "ViewCoordinates",
        "world/camera": "Pinhole",
        "world/camera/image": "Image",
        "images/disparity": "Image",
        "images/depth": "DepthImage",
        "world/points": "Points3D",
    }
    assert ("frame", {"sequence": 3}) in recording.times
    assert ("time", {"duration": pytest.approx(0.3)}) in recording.times
    points = dict(recording.logged)["world/points"]
    assert isinstance(points, rr.Points3D)
    compressed = FakeRecording()
    viewer.log_payload(compressed, payload)
    assert type(dict(compressed.logged)["world/camera/image"]).__name__ == "EncodedImage"


@needs_rerun
def test_view3d_without_a_display_warns_and_runs(monkeypatch, run_cli, two_videos, calib_file, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code, _, err = run_cli("video", *two_videos, "--calib", calib_file, "--view3d", "-o", tmp_path / "o.mp4", *FAST)
    assert code == 0, err
    assert "--view3d: no display" in err and "--view3d-save FILE.rrd" in err
    assert (tmp_path / "o.mp4").exists()


class _RefusingRecording(FakeRecording):
    """Rerun's errors name the file it writes: the hidden temporary one."""

    def __init__(self, refuse: str):
        super().__init__()
        self.refuse = refuse

    def save(self, path, **kwargs):
        super().save(path, **kwargs)
        if self.refuse == "save":
            raise OSError(28, "No space left on device", str(path))

    def flush(self):
        if self.refuse == "flush":
            raise RuntimeError(f"failed to write {self.saved_to}: disk full")
        super().flush()


def test_a_recording_that_cannot_be_written_names_the_file_asked_for(fake_rerun, tmp_path):
    """The messages said "[Errno 28] No space left on device: '.o.partial-...rrd'", "failed to write
    .o.partial-...rrd", and "[Errno 21] Is a directory: '.o.partial-...rrd' -> 'o.rrd'"; a failed start left the
    hidden file behind."""
    rrd = tmp_path / "o.rrd"
    fake_rerun(_RefusingRecording("save"))
    with pytest.raises(OutputError) as info:
        Viewer3DSink(save_path=rrd)
    assert str(info.value) == f"cannot write the 3D recording {rrd}: No space left on device"
    assert list(tmp_path.iterdir()) == [], "the hidden file Rerun made before failing was left"

    fake_rerun(_RefusingRecording("flush"))
    sink = Viewer3DSink(save_path=rrd)
    sink.write(known_frame())
    with pytest.raises(OutputError) as info:
        sink.close()
    assert str(info.value) == f"3D viewer: finishing the recording {rrd} failed: failed to write {rrd}: disk full"

    fake_rerun(FakeRecording())
    sink = Viewer3DSink(save_path=rrd)
    sink.write(known_frame())
    rrd.mkdir()  # made while recording
    with pytest.raises(OutputError) as info:
        sink.close()
    assert str(info.value) == f"cannot write the 3D recording {rrd}: a folder of that name is in the way"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.rrd"] and list(rrd.iterdir()) == []
