"""Live cameras without a camera: UVC through OpenCV on a side-by-side video file; OAK-D and RealSense
through their real Python packages, with only the device boundary replaced (no device exists here).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from conftest import read_video, render_scene, write_video
from rtstereo.cli import main
from rtstereo.errors import InputError, MissingDependencyError
from rtstereo.sources.base import CameraError, CameraLostError, LatestSlot
from rtstereo.sources.cameras import UVCSource, open_camera

# -- the one-slot buffer ---------------------------------------------------------------------------


def test_latest_slot_keeps_the_newest_item_and_counts_the_dropped():
    slot = LatestSlot()
    for item in range(3):
        slot.put(item)
    assert slot.take(0.1) == 2 and slot.replaced == 2
    with pytest.raises(TimeoutError):
        slot.take(0.01)
    slot.put(5)
    slot.close(CameraError("gone"))
    assert slot.take(0.1) == 5  # what arrived before the end is still delivered
    with pytest.raises(CameraError, match="gone"):
        slot.take(0.1)


# -- UVC (OpenCV) ----------------------------------------------------------------------------------


def test_uvc_source_reads_a_side_by_side_video_through_opencv(sbs_video):
    frames = read_video(sbs_video)
    source = open_camera(f"uvc:{sbs_video}")
    assert isinstance(source, UVCSource) and source.live and not source.is_device
    pairs = list(source)
    assert 1 <= len(pairs) <= len(frames)
    indices = [p.index for p in pairs]
    assert indices == sorted(set(indices)) and indices[-1] == len(frames) - 1  # the newest frame always arrives
    for pair in pairs:
        np.testing.assert_array_equal(pair.left, frames[pair.index][:, :128])
        np.testing.assert_array_equal(pair.right, frames[pair.index][:, 128:])
    assert source.fps == pytest.approx(10.0)
    assert source.stats()["camera_frames"] == len(frames)


def test_live_swap_says_swapped_in_its_source_line_as_video_does(sbs_video, tmp_path, capsys):
    output = tmp_path / "out.mp4"
    argv = ["live", "--camera", f"uvc:{sbs_video}", "--swap", "--model", "sgbm", "--max-disp", "32"]
    assert main([*argv, "--max-frames", "2", "-o", str(output)]) == 0
    described = f"camera uvc:{sbs_video} (swapped)"
    assert f"rtstereo live: {described} -> sgbm" in capsys.readouterr().err
    assert json.loads(output.with_suffix(".json").read_text())["source"] == described


@pytest.mark.parametrize(("camera_fps", "fps"), [(None, 20.0), (40.0, 40.0)])
def test_a_video_file_as_a_camera_plays_at_its_frame_rate(tmp_path, camera_fps, fps):
    video = write_video(tmp_path / "sbs.mp4", sbs_frames(6), fps=20)
    source = UVCSource(str(video), fps=camera_fps)  # --camera-fps sets the pace of a file
    pairs = list(source)
    # every frame grabbed; one the consumer was late for (a busy machine) is dropped, as a camera's would be
    stats, indices = source.stats(), [p.index for p in pairs]
    assert source.fps == fps and stats["camera_frames"] == 6 and len(pairs) + stats["dropped_frames"] == 6, stats
    assert indices == sorted(set(indices)) and indices[0] == 0 and indices[-1] == 5
    # Frame n comes no sooner than n/fps after the first, not as fast as it decodes (about 1 ms per frame here);
    # a frame read late (a busy machine) is not made up for by delaying the next ones, so gaps may be short.
    since_first_s = np.array([p.timestamp_s for p in pairs]) - pairs[0].timestamp_s
    assert (since_first_s >= np.array(indices) / fps - 0.005).all(), since_first_s


def test_a_recording_played_slower_than_the_stall_timeout_is_not_a_stalled_camera(tmp_path):
    # --camera-fps 0.15 paced frames 6.7 s apart: "no frame for 5 s after 1 frame; the camera stalled"
    video = write_video(tmp_path / "sbs.mp4", sbs_frames(3), fps=20)
    source = UVCSource(str(video), fps=4, frame_timeout_s=0.15)
    assert [p.index for p in source] == [0, 1, 2]


def test_a_recording_played_slowly_stops_at_once_and_is_released(tmp_path, caplog):
    """At --camera-fps 0.2 the grabber slept 5 s for the next frame: a stop outlasted its wait, said "the camera
    read did not return" and left the recording open to the end of the process."""
    scene = render_scene(frames=3)
    video = write_video(
        tmp_path / "sbs.mp4", [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    )
    source, captures = UVCSource(str(video), fps=0.2), []

    def factory(device):
        captures.append(cv2.VideoCapture(device))
        return captures[-1]

    source._factory = factory
    frames = iter(source)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        assert next(frames).index == 0
        frames.close()
    assert time.monotonic() - started < 1.5
    assert "did not return" not in caplog.text
    assert not captures[0].isOpened()  # released


def test_a_camera_size_the_camera_does_not_deliver_is_said(sbs_video, caplog):
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pair = next(iter(UVCSource(str(sbs_video), frame_size_wh=(2560, 720))))
    assert pair.left.shape[:2] == (64, 128)
    assert caplog.messages == [
        f"camera uvc:{sbs_video}: --camera-size asked for 720x2560 (HxW), but it delivers 64x256: going on at that size"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        next(iter(UVCSource(str(sbs_video), frame_size_wh=(256, 64))))
    assert not caplog.messages


def test_a_camera_size_written_width_first_is_named_the_right_way_round(sbs_video, caplog):
    """--camera-size 256x64 (WxH) for a 64x256 side-by-side frame was said not to be delivered, without the size
    meant."""
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        next(iter(UVCSource(str(sbs_video), frame_size_wh=(64, 256))))
    assert caplog.messages == [
        f"camera uvc:{sbs_video}: --camera-size asked for 256x64 (HxW), but it delivers 64x256: going on at that size; "
        "sizes are HxW, height first: did you mean --camera-size 64x256?"
    ]


def test_a_camera_fps_the_camera_does_not_run_at_is_said(caplog):
    # ScriptedCapture keeps 30 fps whatever is set, as a UVC camera without that mode does.
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        next(iter(UVCSource(0, fps=60, capture_factory=lambda device: ScriptedCapture(sbs_frames(1)))))
    said = "camera uvc:0: --camera-fps asked for 60 fps, but it runs at 30 fps: going on at that rate"
    assert caplog.messages == [said]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        next(iter(UVCSource(0, fps=30, capture_factory=lambda device: ScriptedCapture(sbs_frames(1)))))
    assert not caplog.messages


def test_uvc_swap_exchanges_the_halves(sbs_video):
    frames = read_video(sbs_video)
    pair = next(iter(UVCSource(str(sbs_video), swap=True)))
    np.testing.assert_array_equal(pair.left, frames[pair.index][:, 128:])


def test_a_slow_consumer_gets_the_newest_frames_and_the_rest_are_dropped(tmp_path):
    scene = render_scene(frames=40)
    video = write_video(
        tmp_path / "long.mp4",
        [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)],
        fps=200,  # played at its own rate, as a camera: 0.2 s
    )
    source = UVCSource(str(video))
    seen = []
    for pair in source:
        seen.append(pair.index)
        time.sleep(0.05)  # a slow model
    stats = source.stats()
    assert len(seen) < 40 and seen[-1] == 39
    assert stats["dropped_frames"] == 40 - len(seen)


def test_only_the_frames_taken_are_converted_and_split_on_the_consumer_thread(monkeypatch):
    from rtstereo.sources import cameras

    developed_on = []
    split = cameras.split_side_by_side

    def counting_split(frame, swap=False):
        developed_on.append(threading.current_thread().name)
        return split(frame, swap)

    monkeypatch.setattr(cameras, "split_side_by_side", counting_split)
    capture = ScriptedCapture(sbs_frames(30), delay_s=0.002)
    source = UVCSource("scripted", capture_factory=lambda device: capture)
    seen = []
    for pair in source:
        seen.append(pair.index)
        time.sleep(0.02)  # a slow model: the camera delivers about 10 frames meanwhile
    stats = source.stats()
    assert stats["camera_frames"] == 30 and stats["dropped_frames"] > 0
    # frames the consumer skipped were neither colour-converted nor split
    assert len(developed_on) == len(seen) < 30
    assert set(developed_on) == {threading.current_thread().name}


class ScriptedCapture:
    """A cv2.VideoCapture stand-in for a USB device that delivers ``frames`` then is unplugged."""

    def __init__(self, frames, delay_s: float = 0.0, opened: bool = True):
        self.frames, self.delay_s, self.opened = list(frames), delay_s, opened
        self.released = False

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self.opened

    def set(self, prop, value):
        return False

    def get(self, prop):
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            return self.frames[0].shape[1] if self.frames else 0
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        time.sleep(self.delay_s)
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)[:, :, ::-1].copy()

    def release(self):
        self.released = True


def sbs_frames(count: int = 3):
    scene = render_scene(frames=count)
    return [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]


def test_an_unplugged_device_raises_a_clear_error_after_its_frames():
    capture = ScriptedCapture(sbs_frames(3))
    source = UVCSource(0, capture_factory=lambda device: capture)
    seen = []
    with pytest.raises(CameraError, match=r"camera uvc:0 stopped delivering frames after 3 frames \(unplugged\?\)"):
        for pair in source:
            seen.append(pair.index)
    assert seen and seen[-1] == 2 and capture.released


class FormatCapture(ScriptedCapture):
    """A UVC device that records what is set, in order, and delivers ``formats`` (or keeps YUYV)."""

    def __init__(self, frames, formats=("MJPG", "YUYV")):
        super().__init__(frames)
        self.formats, self.fourcc, self.asked = formats, "YUYV", []

    def set(self, prop, value):
        self.asked.append(prop)
        if prop == cv2.CAP_PROP_FOURCC:
            code = int(value).to_bytes(4, "little").decode()
            if code in self.formats:
                self.fourcc = code
            return code in self.formats
        return False

    def get(self, prop):
        if prop == cv2.CAP_PROP_FOURCC:
            return float(cv2.VideoWriter_fourcc(*self.fourcc))
        return super().get(prop)


def test_a_uvc_device_is_asked_for_mjpg_before_its_size_and_rate(caplog):
    """No format was asked: many USB webcams then deliver 1280x720 in YUYV at 5-10 fps."""
    capture = FormatCapture(sbs_frames(1))
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        pair = next(iter(UVCSource(0, frame_size_wh=(256, 64), fps=30, capture_factory=lambda device: capture)))
    assert capture.asked[0] == cv2.CAP_PROP_FOURCC and capture.fourcc == "MJPG" and pair.left.shape == (64, 128, 3)
    assert not [m for m in caplog.messages if "MJPG" in m]


def test_a_uvc_device_without_mjpg_keeps_working_in_its_own_format(caplog):
    capture = FormatCapture(sbs_frames(2), formats=("YUYV",))
    seen = []
    with caplog.at_level(logging.INFO, "rtstereo.stream"), pytest.raises(CameraError, match="after 2 frames"):
        for pair in UVCSource(0, capture_factory=lambda device: capture):
            seen.append(pair.index)
    assert seen and seen[-1] == 1 and capture.fourcc == "YUYV"  # a slow reader skips to the newest frame
    assert (
        "camera uvc:0: asked for MJPG frames, but it delivers YUYV: going on in that format (--camera-fourcc none asks "
        "for none)"
    ) in caplog.messages
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "MJPG" in r.getMessage()]


def test_a_uvc_format_asked_for_that_the_camera_lacks_is_a_warning_and_none_asks_for_none(caplog):
    capture = FormatCapture(sbs_frames(1), formats=("MJPG",))
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        next(iter(UVCSource(0, fourcc="H264", capture_factory=lambda device: capture)))
    assert caplog.messages == ["camera uvc:0: asked for H264 frames, but it delivers YUYV: going on in that format"]
    capture = FormatCapture(sbs_frames(1))
    next(iter(UVCSource(0, fourcc=None, capture_factory=lambda device: capture)))
    assert cv2.CAP_PROP_FOURCC not in capture.asked and capture.fourcc == "YUYV"


def test_a_common_format_given_in_lower_case_is_asked_in_its_own_case(caplog):
    """--camera-fourcc mjpg was asked as 'mjpg' (V4L2's codes are case-sensitive): the camera kept YUYV, warned of as
    'asked for mjpg frames, but it delivers YUYV'."""
    capture = FormatCapture(sbs_frames(1))
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        next(iter(UVCSource(0, fourcc="mjpg", capture_factory=lambda device: capture)))
    assert capture.fourcc == "MJPG" and not caplog.messages


def test_a_recording_standing_in_for_a_camera_is_asked_for_no_format(sbs_video):
    capture = FormatCapture(sbs_frames(1))
    next(iter(UVCSource(str(sbs_video), capture_factory=lambda device: capture)))
    assert cv2.CAP_PROP_FOURCC not in capture.asked


@pytest.mark.parametrize("fourcc", ["MJP", "MJPEG", 42, "MJ\tG"])
def test_a_camera_fourcc_that_is_not_four_characters_is_refused(fourcc):
    with pytest.raises(InputError, match="--camera-fourcc: expected four characters"):
        open_camera("uvc:0", fourcc=fourcc)


def test_a_long_camera_fourcc_is_echoed_shortened():
    """A 300-character --camera-fourcc came back whole, where every setting echoes a value over 40 characters cut."""
    with pytest.raises(InputError, match=r"got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\.\.\. \(300 characters\)'$"):
        open_camera("uvc:0", fourcc="x" * 300)
    with pytest.raises(InputError, match=r"or none, got 42$"):
        open_camera("uvc:0", fourcc=42)


def test_a_camera_fourcc_for_another_camera_than_uvc_is_refused():
    with pytest.raises(InputError, match="--camera-fourcc applies to uvc cameras, not to 'oak'; drop --camera-fourcc"):
        open_camera("oak", fourcc="YUYV")
    assert open_camera("uvc:3", fourcc=None).fourcc is None and open_camera("uvc:3").fourcc == "MJPG"


def test_live_camera_fourcc_reaches_the_uvc_source(monkeypatch):
    from rtstereo.cli import live

    made = {}

    def record(spec, **options):
        made.update(options)
        raise InputError("stop here")

    monkeypatch.setattr(live, "open_camera", record)
    for given, expected in (
        (["--camera-fourcc", "none"], None),
        (["--camera-fourcc", "NONE"], None),  # it was asked of the camera as a pixel format named NONE
        (["--camera-fourcc", "YUYV"], "YUYV"),
        ([], "absent"),
    ):
        made.clear()
        assert main(["live", "--camera", "uvc:0", *given, "-q"]) == 2
        assert made.get("fourcc", "absent") == expected, (given, made)


def test_a_camera_fourcc_for_a_recording_is_warned_to_be_ignored(tmp_path):
    """uvc:FILE plays a recording in its own format: --camera-fourcc was dropped without a word."""
    import argparse
    import warnings

    from rtstereo.cli.live import open_live_camera

    recording = tmp_path / "rec.mp4"
    recording.write_bytes(b"")  # not opened here
    options = {"swap": False, "camera_size": None, "camera_fps": None, "oak_color": False}
    for camera, fourcc, said in (
        (f"uvc:{recording}", "YUYV", True),
        (f"uvc:{recording}", "MJPG", True),  # the default asked for by name: ignored all the same
        ("uvc:0", "YUYV", False),
        (f"uvc:{recording}", None, False),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            open_live_camera(argparse.Namespace(camera=camera, camera_fourcc=fourcc, **options))
        messages = [str(w.message) for w in caught]
        expected = (
            f"--camera-fourcc {fourcc} is asked of camera devices, and camera uvc:{recording} is a recording or "
            "stream, decoded in its own format: --camera-fourcc is ignored"
        )
        assert messages == ([expected] if said else []), (camera, fourcc, messages)


class FailingCapture(ScriptedCapture):
    """A device whose driver raises (as OpenCV's cv2.error) once its frames are spent."""

    def read(self):
        if not self.frames:
            raise cv2.error("VIDIOC_DQBUF: No such device")
        return super().read()


def test_a_driver_error_mid_stream_is_a_camera_error_after_its_frames():
    # it was the driver's own exception: a traceback, where an unplugged camera is one line
    capture = FailingCapture(sbs_frames(3))
    source = UVCSource(0, capture_factory=lambda device: capture)
    seen = []
    with pytest.raises(CameraError, match=r"^camera uvc:0 stopped after 3 frames \(unplugged\?\): .*No such device"):
        for pair in source:
            seen.append(pair.index)
    assert seen and seen[-1] == 2 and capture.released  # the newest frames: one may be dropped


def test_a_realsense_unplugged_mid_stream_is_one_line_with_the_summary(monkeypatch, tmp_path, capsys):
    """librealsense raises RuntimeError when the camera goes; the frames before it stay written."""
    from rtstereo.sources.realsense import RealSenseSource

    left_right = render_scene(frames=1)
    image = np.ascontiguousarray(left_right.lefts[0][:, :, 0])

    class Frame:
        def __init__(self, number):
            self.number = number

        def get_data(self):
            return image

        def get_timestamp(self):
            return 1000.0 * self.number / 30

        def get_frame_number(self):
            return self.number

    class Pipeline:
        def __init__(self):
            self.number = 0

        def try_wait_for_frames(self, timeout_ms):
            if self.number == 4:
                raise RuntimeError("Frame didn't arrive within 5000")  # pyrealsense2.error is a RuntimeError
            self.number += 1
            time.sleep(0.01)
            return True, SimpleNamespace(get_infrared_frame=lambda index, n=self.number: Frame(n))

        def stop(self):
            pass

    intrinsics = SimpleNamespace(fx=50.0, fy=50.0, ppx=63.5, ppy=31.5, width=128, height=64)
    stream = SimpleNamespace(
        as_video_stream_profile=lambda: stream,
        get_intrinsics=lambda: intrinsics,
        get_extrinsics_to=lambda other: SimpleNamespace(translation=[-0.05, 0.0, 0.0]),
        fps=lambda: 30,
    )
    profile = SimpleNamespace(get_stream=lambda kind, index: stream)
    monkeypatch.setitem(sys.modules, "pyrealsense2", SimpleNamespace(stream=SimpleNamespace(infrared="infrared")))
    monkeypatch.setattr(RealSenseSource, "_start_first_device", lambda self, rs: (Pipeline(), profile))
    summary = tmp_path / "s.json"
    code = main(["live", "--camera", "realsense", "--model", "sgbm", "--max-disp", "16", "--summary", str(summary)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err  # a run that failed, not a usage error (2)
    assert "error: camera realsense stopped after 4 frames (unplugged?): Frame didn't arrive within 5000" in err
    assert json.loads(summary.read_text())["frames_written"] >= 1


def test_a_driver_error_as_the_camera_opens_is_one_line(monkeypatch, capsys):
    from rtstereo.sources.realsense import RealSenseSource

    def start(self, rs):
        raise RuntimeError("failed to set power state")

    monkeypatch.setitem(sys.modules, "pyrealsense2", SimpleNamespace())
    monkeypatch.setattr(RealSenseSource, "_start_first_device", start)
    assert main(["live", "--camera", "realsense", "--model", "sgbm"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rtstereo live: error: cannot open camera realsense: failed to set power state"
    )


def test_a_camera_lost_mid_stream_exits_with_1_an_absent_one_with_2(monkeypatch, tmp_path, capsys):
    # A camera unplugged after its frames is no usage error: 2 told a script the same command would fail again.
    import rtstereo.sources.cameras as cameras

    monkeypatch.setattr(cameras.cv2, "VideoCapture", lambda device: ScriptedCapture(sbs_frames(3)))
    summary = tmp_path / "s.json"
    assert main(["live", "--camera", "uvc:0", "--model", "sgbm", "--max-disp", "16", "--summary", str(summary)]) == 1
    assert "error: camera uvc:0 stopped delivering frames after 3 frames (unplugged?)" in capsys.readouterr().err
    assert json.loads(summary.read_text())["frames_written"] >= 1
    monkeypatch.setattr(cameras.cv2, "VideoCapture", lambda device: ScriptedCapture([], opened=False))
    assert main(["live", "--camera", "uvc:0", "--model", "sgbm"]) == 2
    assert "error: cannot open camera uvc:0: is it plugged in" in capsys.readouterr().err


def test_a_device_that_opens_but_gives_no_frame_is_no_camera_lost_mid_stream(monkeypatch, capsys):
    """A camera another program streams from opens and gives no frame: it was said to have 'stopped delivering frames
    after 0 frames (unplugged?)', exit code 1, as a camera lost mid-stream."""
    import rtstereo.sources.cameras as cameras

    monkeypatch.setattr(cameras.cv2, "VideoCapture", lambda device: ScriptedCapture([]))
    assert main(["live", "--camera", "uvc:1", "--model", "sgbm", "--max-disp", "16", "-q"]) == 2
    assert capsys.readouterr().err == (
        "rtstereo live: error: camera uvc:1 opened but gives no frame: is another program using it? (close it, or "
        "try another uvc:N)\n"
    )


def test_a_calibration_or_maps_of_another_camera_mode_are_refused_before_the_model_loads(monkeypatch, tmp_path, capsys):
    """The camera's size is known once it opens: a --calib of another aspect ratio, or --rectify maps of another
    size, were refused at its first frame, after the model had loaded (and an --adapt process had started)."""
    import rtstereo.cli.video as video_cli
    import rtstereo.sources.cameras as cameras
    from rtstereo.io.calibration import write_calibration
    from rtstereo.rectify import Rectifier
    from rtstereo.types import Calibration

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the refusal")

    class SizedCapture(ScriptedCapture):
        def get(self, prop):
            return self.frames[0].shape[0] if prop == cv2.CAP_PROP_FRAME_HEIGHT else super().get(prop)

    monkeypatch.setattr(cameras.cv2, "VideoCapture", lambda device: SizedCapture(sbs_frames(3)))  # 64x128 views
    monkeypatch.setattr(video_cli, "stream_predictor", no_model)
    square = Calibration(100.0, 100.0, 63.5, 63.5, 63.5, 0.1, 128, 128)
    write_calibration(tmp_path / "square.json", square)
    assert main(["live", "--camera", "uvc:0", "--calib", str(tmp_path / "square.json")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "error: the calibration is for 128x128 (HxW) images but the frames are 64x128 (another aspect ratio): give "
            "the calibration of this camera mode (--size resizes the frames after it is applied)"
        )
    )
    k = np.array([[100.0, 0, 63.5], [0, 100, 63.5], [0, 0, 1]])
    p = np.hstack([k, np.zeros((3, 1))])
    d = np.zeros(5)
    Rectifier.from_matrices(k, d, k, d, np.eye(3), np.eye(3), p, p, (128, 128), square).save(tmp_path / "maps.npz")
    assert main(["live", "--camera", "uvc:0", "--rectify", str(tmp_path / "maps.npz")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "error: the frames are 64x128 but the rectification maps are for 128x128 (HxW) images: use the camera mode "
            "the rig was calibrated in, or calibrate at this size"
        )
    )
    # maps made of the whole side-by-side frame (64x256 for 64x128 views) are said to be
    whole = Calibration(100.0, 100.0, 127.5, 127.5, 31.5, 0.1, 256, 64)
    Rectifier.from_matrices(k, d, k, d, np.eye(3), np.eye(3), p, p, (256, 64), whole).save(tmp_path / "whole.npz")
    assert main(["live", "--camera", "uvc:0", "--rectify", str(tmp_path / "whole.npz")]) == 2
    said = capsys.readouterr().err.strip()
    assert said.endswith(
        "error: the frames are 64x128 but the rectification maps are for 64x256 (HxW) images: use the camera mode "
        "the rig was calibrated in, or calibrate at this size; the maps are two frames wide: calibrate from the two "
        "halves (rtstereo calibrate --left L --right R), not the side-by-side frame"
    ), said


def test_a_device_node_path_unplugged_mid_stream_is_a_lost_camera_not_the_end_of_a_file():
    # uvc:/dev/video7 (or a /dev/v4l/by-id/ link, stable across replugs) ended the stream as a file ends: exit code 0
    capture = ScriptedCapture(sbs_frames(3))
    source = UVCSource("/dev/video7", capture_factory=lambda device: capture)
    with pytest.raises(CameraLostError, match=r"^camera uvc:/dev/video7 stopped delivering frames after 3 frames"):
        list(source)
    assert source.input_files == () and capture.released


def test_a_stalled_camera_times_out():
    capture = ScriptedCapture(sbs_frames(1), delay_s=0.5)
    source = UVCSource(0, capture_factory=lambda device: capture, frame_timeout_s=0.1)
    with pytest.raises(CameraError, match=r"no frame for 0.1 s .* stalled or was unplugged"):
        list(source)


def test_an_absent_uvc_camera_is_reported():
    # The real OpenCV: no /dev/video99 exists here.
    with pytest.raises(CameraError, match="cannot open camera uvc:99: is it plugged in"):
        list(UVCSource(99))


def test_a_uvc_path_that_is_a_folder_or_no_video_says_which(tmp_path):
    # Both said "check the path", though the path was right.
    (tmp_path / "clips").mkdir()
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(CameraError, match=r"clips: it is a folder, not a video file or device$"):
        list(open_camera(f"uvc:{tmp_path / 'clips'}"))
    with pytest.raises(CameraError, match=r"notes\.mp4: not a video OpenCV \(FFmpeg\) can open, or damaged$"):
        list(open_camera(f"uvc:{tmp_path / 'notes.mp4'}"))


def test_a_uvc_index_opencv_cannot_take_is_an_input_error():
    # Both were tracebacks: int('²') (a digit to str.isdigit), and OpenCV's overload error for a huge int.
    with pytest.raises(InputError, match=r"^camera uvc:99999999999999999999: a device index is at most 2147483647$"):
        open_camera("uvc:99999999999999999999")
    assert open_camera("uvc:²").device == "²"  # a name, which OpenCV then fails to open, in one line
    assert open_camera("uvc: 1").device == 1  # a space after the colon: still device 1, not a file " 1"


def test_a_grey_camera_gives_its_views_as_rgb():
    """A mono camera (or OpenCV's RGB conversion turned off) delivers (H, W) frames."""
    grey = np.tile(np.arange(16, dtype=np.uint8)[None, :] * 10, (4, 1))

    class GreyCapture(ScriptedCapture):
        def read(self):
            return (True, self.frames.pop(0)) if self.frames else (False, None)

    pair = next(iter(UVCSource(0, capture_factory=lambda device: GreyCapture([grey]))))
    assert pair.left.shape == pair.right.shape == (4, 8, 3)
    assert (pair.left == grey[:, :8, None]).all() and (pair.right == grey[:, 8:, None]).all()


def test_a_missing_uvc_recording_is_refused_when_named(tmp_path):
    """It was said when the stream opened it: after the model had loaded and an --adapt process had started."""
    with pytest.raises(InputError, match=r"^camera uvc:.*rig\.mp4: no such file$"):
        open_camera(f"uvc:{tmp_path / 'rig.mp4'}")
    for spec in ("uvc:rtsp://cam/stream.sdp", "uvc:frames/%04d.png", "uvc:/dev/video7"):
        assert open_camera(spec).device == spec[4:]  # opened (or not) by OpenCV, as before


def test_a_uvc_recording_given_as_a_file_url_is_the_path_it_names(sbs_video, tmp_path):
    named = sbs_video.rename(tmp_path / "my rig.mp4")
    source = open_camera(f"uvc:{named.as_uri()}")  # file:///.../my%20rig.mp4: OpenCV opened no such name
    assert source.device == str(named) and source.input_files == (named,)
    assert len(list(source)) == len(read_video(named))
    with pytest.raises(InputError, match=r"^camera uvc:.*no rig\.mp4: no such file$"):
        open_camera(f"uvc:{(tmp_path / 'no rig.mp4').as_uri()}")  # said when named, as a path is


def test_an_odd_width_uvc_camera_is_refused():
    capture = ScriptedCapture([np.zeros((8, 17, 3), np.uint8)])
    with pytest.raises(InputError, match="17 px wide"):
        list(UVCSource(0, capture_factory=lambda device: capture))
    assert capture.released


@pytest.mark.parametrize(("spec", "device"), [("uvc", 0), ("uvc:2", 2), ("UVC:/dev/video4", "/dev/video4")])
def test_camera_names(spec, device):
    assert open_camera(spec).device == device


@pytest.mark.parametrize("spec", ["uvc:", "uvc: "])
def test_uvc_with_nothing_after_the_colon_is_refused(spec):
    """`--camera "uvc:$CAMERA"` with the variable unset opened device 0, another camera than the one meant."""
    with pytest.raises(InputError, match=f"^camera '{spec}' names no device after 'uvc:': give its OpenCV index"):
        open_camera(spec)


def test_unknown_camera_and_misplaced_swap():
    with pytest.raises(InputError, match="unknown camera 'kinect': expected one of oak, uvc:N, realsense"):
        open_camera("kinect")
    with pytest.raises(InputError, match="--swap applies to side-by-side"):
        open_camera("oak", swap=True)


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("0", "a device index goes in as --camera uvc:0"),
        ("/dev/video2", "a device path, video file or stream URL goes in as --camera uvc:/dev/video2"),
        ("rtsp://rig.local/stream", "a device path, video file or stream URL goes in as --camera uvc:rtsp://rig"),
    ],
)
def test_a_camera_given_without_uvc_is_told_how_to_name_it(spec, hint):
    """--camera 0 was told only the camera names, 'expected one of oak, uvc:N, realsense'."""
    with pytest.raises(InputError, match=f"unknown camera '{spec}': expected one of oak, uvc:N, realsense: {hint}"):
        open_camera(spec)


def test_an_unknown_camera_name_too_long_for_a_path_is_one_short_line():
    """The hint's look for a file of that name raised OSError (File name too long): a traceback."""
    said = r"^unknown camera 'xxxxx*\.\.\. \(5000 characters\)': expected one of oak, uvc:N, realsense$"
    with pytest.raises(InputError, match=said):
        open_camera("x" * 5000)


def test_a_recording_given_without_uvc_is_told_how_to_name_it(tmp_path):
    recording = tmp_path / "rig.mp4"
    recording.write_bytes(b"")
    with pytest.raises(InputError, match=f"goes in as --camera uvc:{recording}$"):
        open_camera(str(recording))


@pytest.mark.parametrize(
    ("spec", "fps", "message"),
    [
        (0, None, "camera: expected a name \\(oak, uvc:N, realsense\\), got int 0: a device index goes in as 'uvc:0'"),
        (None, None, "camera: expected a name \\(oak, uvc:N, realsense\\), got NoneType None$"),
        ("uvc:0", "30", "--camera-fps: expected a frame rate > 0 \\(frames per second\\), got str '30'"),
    ],
)
def test_a_camera_or_frame_rate_of_another_type_is_an_input_error(spec, fps, message):
    with pytest.raises(InputError, match=message):  # was: AttributeError, TypeError
        open_camera(spec, fps=fps)


@pytest.mark.parametrize(("spec", "name"), [("oak:1", "oak"), ("realsense:012345", "realsense"), ("OAK: x", "oak")])
def test_a_device_choice_after_oak_or_realsense_is_refused_not_ignored(spec, name):
    with pytest.raises(InputError, match=rf"^camera '{spec}': {name} takes nothing after ':'"):
        open_camera(spec)


@pytest.mark.parametrize("spec", ["oak", "realsense"])
def test_a_camera_size_written_width_first_is_refused_for_landscape_stereo_sensors(spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "depthai", None)  # refused before the camera's package is asked for
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    with pytest.raises(InputError, match=r"^--camera-size 640x400 asks .* did you mean --camera-size 400x640\?$"):
        open_camera(spec, frame_size_wh=(400, 640))  # the command line's --camera-size 640x400, read HxW


def test_live_help_states_the_camera_defaults_open_camera_takes(monkeypatch):
    """--camera-fps said "default: its own", while a RealSense camera is asked for 30 frames a second."""
    from rtstereo.cli import build_parser
    from rtstereo.sources import oak, realsense

    asked = {}
    for module, name in ((oak, "OakSource"), (realsense, "RealSenseSource")):
        monkeypatch.setattr(module, name, lambda name=name, **kwargs: asked.setdefault(name, kwargs))
    open_camera("oak"), open_camera("realsense")
    helps = {a.option_strings[0]: " ".join(a.help.split()) for a in build_parser().verb_parsers["live"]._actions}
    (oak_w, oak_h), (rs_w, rs_h) = asked["OakSource"]["frame_size_wh"], asked["RealSenseSource"]["frame_size_wh"]
    assert f"oak (default {oak_h}x{oak_w})" in helps["--camera-size"]
    assert f"realsense (default {rs_h}x{rs_w})" in helps["--camera-size"]
    assert (
        asked["OakSource"]["fps"] is None
        and f"{asked['RealSenseSource']['fps']} for realsense" in helps["--camera-fps"]
    )


@pytest.mark.parametrize(
    ("size_wh", "got"),
    [
        ((640,), r"tuple \(640,\)"),
        ("640x480", "str '640x480'"),
        ((640.5, 480), "float 640.5"),
        ((0, 480), r"\(0, 480\)"),
        ((640, True), "bool True"),
    ],
)
def test_a_camera_size_that_is_not_two_whole_numbers_is_refused_when_the_camera_is_named(size_wh, got):
    """(640,) and "640x480" failed with a bare IndexError or TypeError as the camera opened; (640.5, 480) ran and
    warned "asked for 480x640, but it delivers 480x640"."""
    with pytest.raises(InputError, match=rf"^camera size frame_size_wh: expected \(width, height\): .*, got {got}$"):
        open_camera("uvc:0", frame_size_wh=size_wh)
    assert open_camera("uvc:0", frame_size_wh=(np.int64(640), 480)).frame_size_wh == (640, 480)


def test_a_camera_size_given_through_live_is_height_first(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "depthai", None)
    assert main(["live", "--camera", "oak", "--camera-size", "640x400", "--model", "sgbm"]) == 2
    assert "did you mean --camera-size 400x640?" in capsys.readouterr().err


@pytest.mark.parametrize("fps", [0.0, -5.0, float("nan"), float("inf")])
def test_a_camera_frame_rate_must_be_positive(fps):
    for spec in ("uvc:0", "oak", "realsense"):
        finite = "a finite number " if fps == float("inf") else ""  # "must be > 0, got inf" read as a contradiction
        with pytest.raises(InputError, match=f"--camera-fps must be {finite}> 0 \\(frames per second\\), got {fps:g}"):
            open_camera(spec, fps=fps)


# -- OAK-D (DepthAI) -------------------------------------------------------------------------------


def test_oak_without_depthai_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "depthai", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'rtstereo\[camera\]'"):
        open_camera("oak")  # at once, before a stream (and an adapter) starts, not at the first frame


def depthai_or_skip():
    return pytest.importorskip("depthai", reason="depthai is not installed (extra camera)")


def test_oak_with_no_device_connected_says_so():
    depthai_or_skip()
    with pytest.raises(CameraError, match="no OAK device found"):
        list(open_camera("oak"))


def oak_calibration_handler(dai):
    """A real dai.CalibrationHandler holding an OAK-D-like calibration (1280x800 mono pair, 7.5 cm)."""
    handler = dai.CalibrationHandler()
    left, right = dai.CameraBoardSocket.CAM_B, dai.CameraBoardSocket.CAM_C
    handler.setCameraIntrinsics(left, [[800.0, 0, 640], [0, 800, 400], [0, 0, 1]], dai.Size2f(1280, 800))
    handler.setCameraIntrinsics(right, [[790.0, 0, 630], [0, 792, 404], [0, 0, 1]], dai.Size2f(1280, 800))
    identity = [[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]
    handler.setCameraExtrinsics(left, right, identity, [-7.5, 0, 0], [-7.5, 0, 0])
    handler.setStereoLeft(left, identity)
    handler.setStereoRight(right, identity)
    return handler


def test_oak_calibration_from_the_device_handler():
    from rtstereo.sources.oak import calibration_from_depthai

    dai = depthai_or_skip()
    calibration = calibration_from_depthai(oak_calibration_handler(dai), (640, 400))
    # DepthAI rectifies both views onto the right camera's intrinsics, here scaled to 640x400.
    assert (calibration.fx_px, calibration.fy_px) == pytest.approx((395.0, 396.0))
    assert calibration.cx0_px == calibration.cx1_px == pytest.approx(315.0)
    assert calibration.cy_px == pytest.approx(202.0)
    assert calibration.baseline_m == pytest.approx(0.075)
    assert (calibration.width_px, calibration.height_px) == (640, 400)


def oak_frame(dai, value: int, sequence: int):
    frame = dai.ImgFrame()
    frame.setCvFrame(np.full((40, 64), value, np.uint8), dai.ImgFrame.Type.GRAY8)
    frame.setSequenceNum(sequence)
    frame.setTimestamp(datetime.timedelta(seconds=sequence / 30))
    return frame


def test_oak_stream_pairs_frames_by_sequence_number_and_reports_an_unplug():
    """Device boundary replaced: the pipeline a device would start is swapped for real DepthAI message
    queues fed with real ImgFrames; closing them is what DepthAI does when the device is unplugged."""
    from rtstereo.sources.oak import OakSource, OakStreams

    dai = depthai_or_skip()
    left_queue, right_queue = dai.MessageQueue("left", 8, False), dai.MessageQueue("right", 8, False)
    stopped = threading.Event()

    def start_device(module):
        assert module is dai
        # Left has an extra older frame (sequence 0) that has no right partner.
        for sequence in (0, 1, 2):
            left_queue.send(oak_frame(dai, 10 * sequence, sequence))
        for sequence in (1, 2):
            right_queue.send(oak_frame(dai, 10 * sequence + 5, sequence))
        threading.Timer(0.3, lambda: (left_queue.close(), right_queue.close())).start()
        return OakStreams(left_queue, right_queue, oak_calibration_handler(dai), stopped.set)

    source = OakSource(frame_size_wh=(64, 40), start_device=start_device, frame_timeout_s=2.0)
    pairs = []
    with pytest.raises(CameraError, match=r"camera oak stopped after 2 frames \(unplugged\?\)"):
        for pair in source:
            pairs.append(pair)
    assert pairs and pairs[-1].index == 2
    for pair in pairs:
        assert pair.left.shape == (40, 64, 3)
        assert int(pair.right[0, 0, 0]) - int(pair.left[0, 0, 0]) == 5  # the same sequence number
        assert pair.timestamp_s == pytest.approx(pair.index / 30, abs=1e-5)  # DepthAI keeps microseconds
        assert pair.calibration is not None and pair.calibration.width_px == 64
    assert stopped.is_set()


def test_frames_the_camera_numbered_but_never_handed_over_are_counted_as_lost():
    """An OAK's queues keep their newest frame only: frames 3 and 4, overwritten on the device, were counted
    nowhere, and the camera's frame rate was taken from the frames read alone."""
    from rtstereo.sources.oak import OakSource, OakStreams

    dai = depthai_or_skip()
    left_queue, right_queue = dai.MessageQueue("left", 8, False), dai.MessageQueue("right", 8, False)

    def start_device(module):
        for sequence in (1, 2, 5):
            left_queue.send(oak_frame(dai, sequence, sequence))
            right_queue.send(oak_frame(dai, sequence, sequence))
        threading.Timer(0.3, lambda: (left_queue.close(), right_queue.close())).start()
        return OakStreams(left_queue, right_queue, oak_calibration_handler(dai), lambda: None)

    source = OakSource(frame_size_wh=(64, 40), start_device=start_device, frame_timeout_s=2.0)
    with pytest.raises(CameraError, match="unplugged"):
        for _ in source:
            time.sleep(0.02)  # the frames span some time: a rate to measure
    stats = source.stats()
    assert (stats["camera_frames"], stats["camera_lost_frames"]) == (3, 2), stats
    # the camera's own rate spans 4 intervals (frames 1 to 5), not the 2 between the frames read
    assert stats["camera_fps"] == pytest.approx(4 / source._grab_elapsed_s, rel=0.01)


def test_a_camera_whose_frames_carry_no_number_loses_none():
    capture = ScriptedCapture(sbs_frames(3))
    source = UVCSource(0, capture_factory=lambda device: capture)
    with pytest.raises(CameraError):
        list(source)
    assert source.stats()["camera_lost_frames"] == 0


# -- RealSense (pyrealsense2) ----------------------------------------------------------------------


def test_realsense_without_pyrealsense2_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'rtstereo\[realsense\]'"):
        open_camera("realsense")  # at once, not at the first frame


def realsense_or_skip():
    try:
        import pyrealsense2
    except ImportError as exc:  # the wheel needs libusb-1.0 from the system
        pytest.skip(f"pyrealsense2 does not import here: {exc}")
    return pyrealsense2


@pytest.mark.parametrize("fps", [29.97, 0.5])
def test_realsense_refuses_a_fractional_frame_rate(fps):
    # It was cut to an int by librealsense's config: 0.5 became 0, "any rate", and ran at the default.
    with pytest.raises(InputError, match=rf"^--camera-fps {fps:g}: a RealSense camera runs at whole frame rates"):
        open_camera("realsense", fps=fps)


def test_a_realsense_mode_the_camera_refuses_is_named_height_first_as_the_advice(monkeypatch):
    # it said "streams at 640x480 30 fps" (WxH) and then "choose a mode ... e.g. --camera-size 480x640"
    from rtstereo.sources.realsense import RealSenseSource

    class Pipeline:
        def __init__(self, context):
            pass

        def start(self, config):
            raise RuntimeError("Couldn't resolve requests")

    config = SimpleNamespace(enable_stream=lambda *args: None)
    rs = SimpleNamespace(
        context=lambda: SimpleNamespace(query_devices=lambda: ["D435"]),
        config=lambda: config,
        pipeline=Pipeline,
        stream=SimpleNamespace(infrared="infrared"),
        format=SimpleNamespace(y8="y8"),
    )
    source = RealSenseSource(frame_size_wh=(640, 480), start_device=lambda rs: None)
    with pytest.raises(CameraError, match=r"streams at 480x640 \(HxW\) 30 fps: Couldn't resolve requests; choose"):
        source._start_first_device(rs)


def test_realsense_with_no_camera_connected_says_so():
    realsense_or_skip()
    with pytest.raises(CameraError, match="no RealSense camera found"):
        list(open_camera("realsense"))


class SoftwareInfrared:
    """A real librealsense software device with the two infrared streams of a D4xx (64x48, 5 cm apart)."""

    def __init__(self, rs, width: int = 64, height: int = 48):
        self.rs, self.width, self.height = rs, width, height
        self.device = rs.software_device()
        self.sensor = self.device.add_sensor("Stereo Module")
        intrinsics = rs.intrinsics()
        intrinsics.width, intrinsics.height = width, height
        intrinsics.fx, intrinsics.fy, intrinsics.ppx, intrinsics.ppy = 50.0, 51.0, 31.5, 23.5
        intrinsics.model, intrinsics.coeffs = rs.distortion.none, [0.0] * 5
        self.profiles = []
        for index in (1, 2):
            stream = rs.video_stream()
            stream.type, stream.index, stream.uid = rs.stream.infrared, index, index
            stream.width, stream.height, stream.fps, stream.bpp = width, height, 30, 1
            stream.fmt, stream.intrinsics = rs.format.y8, intrinsics
            self.profiles.append(self.sensor.add_video_stream(stream))
        extrinsics = rs.extrinsics()
        extrinsics.rotation, extrinsics.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [-0.05, 0, 0]
        self.profiles[0].register_extrinsics_to(self.profiles[1], extrinsics)
        self.queue = rs.frame_queue(16, True)
        self.sensor.open(self.profiles)
        self.sensor.start(self.queue)
        self._pixels = []  # librealsense reads the pixels after on_video_frame returns

    def frame_pair(self, number: int):
        frames = []
        for side, profile in enumerate(self.profiles):
            pixels = np.full((self.height, self.width), 10 * number + 5 * side, np.uint8)
            self._pixels.append(pixels)
            frame = self.rs.software_video_frame()
            frame.pixels, frame.bpp, frame.stride = pixels, 1, self.width
            frame.timestamp, frame.domain, frame.frame_number = (
                1000.0 * number / 30,
                self.rs.timestamp_domain.hardware_clock,
                number,
            )
            frame.profile = profile.as_video_stream_profile()
            self.sensor.on_video_frame(frame)
            frames.append(self.queue.wait_for_frame(1000))
        return frames

    def close(self):
        self.sensor.stop()
        self.sensor.close()


def test_realsense_calibration_from_the_stream_profiles():
    from rtstereo.sources.realsense import calibration_from_realsense

    rs = realsense_or_skip()
    device = SoftwareInfrared(rs)
    try:
        left, right = (p.as_video_stream_profile() for p in device.profiles)
        calibration = calibration_from_realsense(left, right)
    finally:
        device.close()
    assert (calibration.fx_px, calibration.fy_px, calibration.cx0_px, calibration.cy_px) == (
        50.0,
        51.0,
        31.5,
        23.5,
    )
    assert calibration.baseline_m == pytest.approx(0.05)
    assert (calibration.width_px, calibration.height_px) == (64, 48)


def test_realsense_stream_reads_infrared_pairs_and_reports_an_unplug():
    """Device boundary replaced: librealsense's pipeline cannot adopt a software device in this build,
    so a stand-in pipeline hands over frame sets of real frames from a real software sensor."""
    from rtstereo.sources.realsense import RealSenseSource

    rs = realsense_or_skip()
    device = SoftwareInfrared(rs)
    framesets = [device.frame_pair(n) for n in range(3)]

    class FrameSet:
        def __init__(self, frames):
            self.frames = frames

        def get_infrared_frame(self, index):
            return self.frames[index - 1]

    class Pipeline:
        stopped = False

        def try_wait_for_frames(self, timeout_ms):
            return (True, FrameSet(framesets.pop(0))) if framesets else (False, None)

        def stop(self):
            Pipeline.stopped = True

    class Profile:
        def get_stream(self, stream, index):
            assert stream == rs.stream.infrared
            return device.profiles[index - 1]

    source = RealSenseSource(start_device=lambda module: (Pipeline(), Profile()), frame_timeout_s=0.5)
    pairs = []
    try:
        with pytest.raises(CameraError, match=r"camera realsense: no frames for 0.5 s after 3 frames"):
            for pair in source:
                pairs.append(pair)
                time.sleep(0.01)
    finally:
        device.close()
    assert pairs and pairs[-1].index == 2 and Pipeline.stopped
    for pair in pairs:
        assert pair.left.shape == (48, 64, 3)
        assert int(pair.right[0, 0, 0]) - int(pair.left[0, 0, 0]) == 5
        assert int(pair.left[0, 0, 0]) == 10 * pair.index
        assert pair.timestamp_s == pytest.approx(pair.index / 30)
        assert pair.calibration.baseline_m == pytest.approx(0.05)
    assert source.fps == 30


# -- OAK colour stereo: raw colour frames rectified on the host --------------------------------------


def tilted_calibration_handler(dai):
    """A real dai.CalibrationHandler of a colour pair whose right camera is pitched by 0.03 rad and
    slightly distorted: raw rows disagree by a few pixels, so only a correct rectification aligns them."""
    handler = dai.CalibrationHandler()
    left, right = dai.CameraBoardSocket.CAM_B, dai.CameraBoardSocket.CAM_C
    handler.setCameraIntrinsics(left, [[800.0, 0, 640], [0, 800, 400], [0, 0, 1]], dai.Size2f(1280, 800))
    handler.setCameraIntrinsics(right, [[790.0, 0, 630], [0, 792, 404], [0, 0, 1]], dai.Size2f(1280, 800))
    handler.setDistortionCoefficients(left, [0.02, -0.01] + [0.0] * 12)
    handler.setDistortionCoefficients(right, [-0.02, 0.01] + [0.0] * 12)
    pitch = cv2.Rodrigues(np.array([0.03, 0.0, 0.0]))[0]
    handler.setCameraExtrinsics(left, right, pitch.tolist(), [-7.5, 0, 0], [-7.5, 0, 0])
    identity = [[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]
    handler.setStereoLeft(left, identity)
    handler.setStereoRight(right, identity)
    return handler


BLOBS_M = [(x, y) for y in (-0.15, 0.0, 0.15) for x in (-0.3, -0.1, 0.1, 0.3)]  # on the plane Z = 1 m


def render_raw_view(k, distortion, rotation, translation_m, size_wh):
    """What a camera ``X_cam = R X_left + t`` sees of bright blobs on the plane Z = 1 m (left frame)."""
    width, height = size_wh
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pixels = np.stack([u.ravel(), v.ravel()], axis=1)[:, None, :]
    rays = cv2.undistortPoints(pixels, k, distortion).reshape(-1, 2)  # normalised camera coordinates
    directions = np.concatenate([rays, np.ones((len(rays), 1))], axis=1) @ rotation  # R^T d, in left frame
    centre = -rotation.T @ translation_m
    points = centre + directions * ((1.0 - centre[2]) / directions[:, 2])[:, None]
    image = np.zeros(len(rays))
    for x_m, y_m in BLOBS_M:
        image += np.exp(-((points[:, 0] - x_m) ** 2 + (points[:, 1] - y_m) ** 2) / (2 * 0.015**2))
    grey = (255 * np.clip(image, 0, 1)).reshape(height, width).astype(np.uint8)
    return np.stack([grey, grey // 2, np.zeros_like(grey)], axis=2)  # RGB: orange blobs


def blob_centres_px(rgb):
    """Intensity-weighted blob centroids ``(N, 2)`` as (x, y), sorted into grid rows (by y) then by x."""
    red = rgb[:, :, 0].astype(np.float64)
    count, labels = cv2.connectedComponents((red > 30).astype(np.uint8))
    assert count - 1 == len(BLOBS_M), f"expected {len(BLOBS_M)} blobs, found {count - 1}"
    y, x = np.mgrid[: red.shape[0], : red.shape[1]]
    weights = [red * (labels == label) for label in range(1, count)]
    centres = np.array([[(w * x).sum() / w.sum(), (w * y).sum() / w.sum()] for w in weights])
    rows = centres[np.argsort(centres[:, 1])].reshape(3, 4, 2)
    return np.concatenate([row[np.argsort(row[:, 0])] for row in rows])


def raw_colour_pair(dai, handler, size_wh):
    lenses = []
    for socket in (dai.CameraBoardSocket.CAM_B, dai.CameraBoardSocket.CAM_C):
        k = np.asarray(handler.getCameraIntrinsics(socket, *size_wh))
        lenses.append((k, np.asarray(handler.getDistortionCoefficients(socket))))
    extrinsics = np.asarray(handler.getCameraExtrinsics(dai.CameraBoardSocket.CAM_B, dai.CameraBoardSocket.CAM_C))
    left = render_raw_view(*lenses[0], np.eye(3), np.zeros(3), size_wh)
    right = render_raw_view(*lenses[1], extrinsics[:3, :3], extrinsics[:3, 3] / 100, size_wh)
    return left, right


def test_oak_colour_rectification_on_the_host_aligns_the_rows():
    from rtstereo.sources.oak import host_rectification_from_depthai

    dai = depthai_or_skip()
    handler, size_wh = tilted_calibration_handler(dai), (160, 100)
    raw_left, raw_right = raw_colour_pair(dai, handler, size_wh)
    raw_dy = blob_centres_px(raw_right)[:, 1] - blob_centres_px(raw_left)[:, 1]
    assert np.abs(raw_dy).max() > 2.0  # the pitch really misaligns the raw rows

    rectification = host_rectification_from_depthai(handler, size_wh)
    left, right = rectification.rectify(raw_left, raw_right)
    assert left.shape == right.shape == (100, 160, 3) and left.dtype == np.uint8
    centres_left, centres_right = blob_centres_px(left), blob_centres_px(right)
    assert np.abs(centres_right[:, 1] - centres_left[:, 1]).max() < 0.15  # measured 0.05 px
    # Depth from the rectified calibration recovers the plane at 1 m (disparity > 0: right is at +x).
    calibration = rectification.calibration
    disparity_px = centres_left[:, 0] - centres_right[:, 0]
    depth_m = calibration.baseline_m * calibration.fx_px / (disparity_px + calibration.doffs_px)
    assert np.all(disparity_px > 0)
    np.testing.assert_allclose(depth_m, 1.0, atol=0.02)  # measured within 0.01 m


def test_oak_colour_calibration_matches_opencv_stereo_rectify():
    from rtstereo.sources.oak import host_rectification_from_depthai

    dai = depthai_or_skip()
    handler, size_wh = tilted_calibration_handler(dai), (160, 100)
    calibration = host_rectification_from_depthai(handler, size_wh).calibration
    left, right = dai.CameraBoardSocket.CAM_B, dai.CameraBoardSocket.CAM_C
    k_left = np.asarray(handler.getCameraIntrinsics(left, *size_wh))
    k_right = np.asarray(handler.getCameraIntrinsics(right, *size_wh))
    np.testing.assert_allclose(k_left[0], [100.0, 0, 80])  # 1280x800 intrinsics scaled by 1/8
    pitch = cv2.Rodrigues(np.array([0.03, 0.0, 0.0]))[0]
    _, _, p_left, p_right, _, _, _ = cv2.stereoRectify(
        k_left, np.array([0.02, -0.01, 0, 0, 0.0]), k_right, np.array([-0.02, 0.01, 0, 0, 0.0]),
        size_wh, pitch, np.array([[-0.075], [0], [0]]), flags=cv2.CALIB_ZERO_DISPARITY, alpha=0,
    )  # fmt: skip
    expected = (p_left[0, 0], p_left[1, 1], p_left[0, 2], p_right[0, 2], p_left[1, 2], 0.075)
    received = (calibration.fx_px, calibration.fy_px, calibration.cx0_px, calibration.cx1_px)
    assert received + (calibration.cy_px, calibration.baseline_m) == pytest.approx(expected, rel=1e-5)
    assert calibration.cx0_px == calibration.cx1_px and (calibration.width_px, calibration.height_px) == size_wh


def colour_frame(dai, rgb, sequence: int):
    frame = dai.ImgFrame()
    frame.setCvFrame(np.ascontiguousarray(rgb[:, :, ::-1]), dai.ImgFrame.Type.BGR888i)
    frame.setSequenceNum(sequence)
    frame.setTimestamp(datetime.timedelta(seconds=sequence / 30))
    return frame


def test_oak_colour_stream_delivers_the_rectified_colour_pair():
    """Device boundary replaced as for the mono stream: real queues of real BGR ImgFrames."""
    from rtstereo.sources.oak import OakSource, OakStreams, host_rectification_from_depthai

    dai = depthai_or_skip()
    handler, size_wh = tilted_calibration_handler(dai), (160, 100)
    raw_left, raw_right = raw_colour_pair(dai, handler, size_wh)
    left_queue, right_queue = dai.MessageQueue("left", 4, False), dai.MessageQueue("right", 4, False)

    def start_device(module):
        left_queue.send(colour_frame(dai, raw_left, 7))
        right_queue.send(colour_frame(dai, raw_right, 7))
        return OakStreams(left_queue, right_queue, handler, lambda: None)

    source = OakSource(frame_size_wh=size_wh, start_device=start_device, color=True, frame_timeout_s=2.0)
    assert source.description == "camera oak (colour)"
    frames = iter(source)
    pair = next(frames)
    left_queue.close(), right_queue.close()  # unblock the grabber so the source closes at once
    frames.close()
    expected_left, expected_right = host_rectification_from_depthai(handler, size_wh).rectify(raw_left, raw_right)
    np.testing.assert_array_equal(pair.left, expected_left)
    np.testing.assert_array_equal(pair.right, expected_right)
    assert pair.left[:, :, 0].max() > 2 * pair.left[:, :, 1].max() - 5  # RGB order kept: red blobs stay red
    assert pair.calibration == host_rectification_from_depthai(handler, size_wh).calibration
    assert pair.index == 7


def camera_features(dai, socket, *kinds, sensor=""):
    feature = dai.CameraFeatures()
    feature.socket, feature.supportedTypes, feature.sensorName = socket, list(kinds), sensor
    return feature


def test_oak_colour_refuses_mono_stereo_sensors():
    from rtstereo.sources.oak import require_color_stereo

    dai = depthai_or_skip()
    socket, kind = dai.CameraBoardSocket, dai.CameraSensorType
    sockets = (socket.CAM_B, socket.CAM_C)
    oak_d = [
        camera_features(dai, socket.CAM_A, kind.COLOR, sensor="IMX378"),
        camera_features(dai, socket.CAM_B, kind.MONO, sensor="OV9282"),
        camera_features(dai, socket.CAM_C, kind.MONO, sensor="OV9282"),
    ]
    with pytest.raises(
        CameraError,
        match=r"this OAK's stereo cameras are mono \(CAM_B OV9282, CAM_C OV9282\); drop --oak-color",
    ):
        require_color_stereo(oak_d, sockets)
    oak_d_sr = [camera_features(dai, s, kind.COLOR, kind.MONO, sensor="OV9782") for s in sockets]
    require_color_stereo(oak_d_sr, sockets)  # colour sensors (that can also stream grey) pass
    with pytest.raises(CameraError, match="no camera on its stereo socket CAM_C .connected: CAM_B"):
        require_color_stereo(oak_d_sr[:1], sockets)


def test_oak_colour_refuses_a_fisheye_calibration():
    from rtstereo.sources.oak import host_rectification_from_depthai

    dai = depthai_or_skip()
    handler = tilted_calibration_handler(dai)
    handler.setCameraType(dai.CameraBoardSocket.CAM_B, dai.CameraModel.Fisheye)
    with pytest.raises(CameraError, match="CAM_B camera is calibrated with the Fisheye lens model"):
        host_rectification_from_depthai(handler, (160, 100))


def test_oak_colour_refuses_a_calibration_without_the_stereo_extrinsics():
    from rtstereo.sources.oak import host_rectification_from_depthai

    dai = depthai_or_skip()
    handler = dai.CalibrationHandler()
    for socket in (dai.CameraBoardSocket.CAM_B, dai.CameraBoardSocket.CAM_C):
        handler.setCameraIntrinsics(socket, [[800.0, 0, 640], [0, 800, 400], [0, 0, 1]], dai.Size2f(1280, 800))
    handler.setStereoLeft(dai.CameraBoardSocket.CAM_B, [[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    handler.setStereoRight(dai.CameraBoardSocket.CAM_C, [[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(CameraError, match="cannot rectify CAM_B/CAM_C"):
        host_rectification_from_depthai(handler, (160, 100))


def live_args(*argv):
    from rtstereo.cli import build_parser

    return build_parser().parse_args(["live", *argv])


def test_oak_color_option_builds_a_colour_oak_source():
    from rtstereo.cli.live import open_live_camera
    from rtstereo.sources.oak import OakSource

    depthai_or_skip()  # an OAK source needs the package as soon as it is made

    source = open_live_camera(live_args("--camera", "oak", "--oak-color", "--camera-size", "400x640"))
    assert isinstance(source, OakSource) and source.color and source.frame_size_wh == (640, 400)
    plain = open_live_camera(live_args("--camera", "oak"))
    assert isinstance(plain, OakSource) and not plain.color
    with pytest.raises(InputError, match="--oak-color applies to --camera oak, not to 'uvc:0'"):
        open_live_camera(live_args("--camera", "uvc:0", "--oak-color"))


def test_a_recording_cut_short_says_how_many_frames_of_how_many(tmp_path, caplog):
    """uvc:FILE ended quietly at the frames a cut file holds, its progress bar short of the header's count."""
    from test_stream_sources import cut_video

    scene = render_scene(frames=12)
    video, held = cut_video(tmp_path / "sbs.avi", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    source = UVCSource(str(video), fps=200.0)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pairs = list(source)
    # played as a camera, a frame the consumer was late for is dropped (a busy machine): count what was grabbed
    stats = source.stats()
    assert stats["camera_frames"] == held and len(pairs) + stats["dropped_frames"] == held, (len(pairs), stats)
    assert caplog.messages == [
        f"camera uvc:{video}: the recording ended after {held} frames although its header claims 12: the file is "
        "cut short or damaged; the stream stops there"
    ]


def test_a_recordings_frames_that_do_not_decode_are_passed_over_as_lost(tmp_path, caplog):
    """uvc:FILE ended at a frame that did not decode, as a file "cut short", though the frames after it read again
    (rtstereo video passes over such frames)."""
    from conftest import damaged_video

    scene = render_scene(frames=12)
    frames = [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)]
    video = damaged_video(tmp_path / "sbs.avi", frames, damaged=(5, 6))
    source = UVCSource(str(video), fps=200.0)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pairs = list(source)
    stats = source.stats()
    assert stats["camera_frames"] == 10 and stats["camera_lost_frames"] == 2, stats
    assert len(pairs) + stats["dropped_frames"] == 10 and pairs[-1].index == 11, (len(pairs), stats)
    assert caplog.messages == [
        f"camera uvc:{video}: frames 5 to 6 of the recording do not decode (damaged): passed over, as frames the "
        "camera lost"
    ]


def test_a_recording_whose_first_frames_do_not_decode_still_plays_at_its_pace(tmp_path):
    """The pace counted from frame 0's read: with frame 0 passed over (damaged) it was never set, and the recording
    played as fast as it decoded, not as a camera delivers it."""
    from conftest import damaged_video

    scene = render_scene(frames=12)
    frames = [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)]
    source = UVCSource(str(damaged_video(tmp_path / "sbs.avi", frames, damaged=(0, 1))), fps=20.0)
    started = time.monotonic()
    pairs = list(source)
    assert time.monotonic() - started >= 9 / 20  # frames 2 to 11, each due 1/20 s after the one before
    assert pairs[-1].index == 11 and source.stats()["camera_lost_frames"] == 2
    # 10 frames read span 9 intervals: the 2 lost before them are none of the time measured (said 24.4 fps)
    assert 15 < source.stats()["camera_fps"] <= 20.2, source.stats()


def test_a_recording_that_gives_no_frame_is_an_error_not_an_empty_stream(tmp_path):
    """uvc:FILE of a header and no frame ran as a stream of 0 frames, with exit code 0."""
    from test_stream_sources import frameless_video

    scene = render_scene(frames=12)
    video = frameless_video(tmp_path / "sbs.avi", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    with pytest.raises(InputError) as raised:
        list(UVCSource(str(video), fps=200.0))
    told = "the recording gives no frame (its header claims 12: the file is cut short or damaged)"
    assert str(raised.value) == f"camera uvc:{video}: {told}"


def test_the_camera_frame_rate_counts_the_intervals_between_frames(tmp_path):
    # 12 frames played at 20 fps span 0.55 s: 11 intervals; 12 / 0.55 s said 21.8 fps.
    video = write_video(tmp_path / "sbs.mp4", sbs_frames(12), fps=20)
    source = UVCSource(str(video))
    pairs = list(source)
    assert [p.index for p in pairs] == list(range(12))
    assert source.stats()["camera_fps"] == pytest.approx(20.0, rel=0.04)
    assert [p.index for p in source] == list(range(12))  # opened again: its own frames and rate
    assert source.stats()["camera_frames"] == 12 and source.stats()["camera_fps"] == pytest.approx(20.0, rel=0.04)


def test_a_numpy_frame_rate_is_a_frame_rate_for_a_camera_as_for_a_sequence():
    """open_camera(fps=np.float32(30)) was refused: "--camera-fps must be a number > 0", where --fps took it."""
    assert open_camera("uvc:0", fps=np.float32(30)).requested_fps == 30.0


def test_a_stream_stopped_while_the_camera_stalls_does_not_keep_its_capture_thread_waiting():
    """The capture thread, which the process waits for at exit, waited out the stall timeout (here 30 s) after a stop:
    quitting while the camera delivered nothing held the process that long. A stop now ends that wait (the read that
    never returns is left to the grabber thread, as before)."""
    import rtstereo
    from rtstereo.stream import Stream

    release = threading.Event()

    class Stalling(ScriptedCapture):
        def read(self):
            if not self.frames:
                release.wait(60.0)  # a device read that does not return
                return False, None
            return super().read()

    def waiting_for_a_frame(thread: threading.Thread) -> bool:
        frame = sys._current_frames().get(thread.ident)
        while frame is not None:
            if frame.f_code.co_name == "take" and frame.f_code.co_filename.endswith("base.py"):
                return True
            frame = frame.f_back
        return False

    def stop_once_capture_waits():
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            capture = [thread for thread in threading.enumerate() if thread.name == "rtstereo-capture"]
            if capture and stream.clocks["capture"].frames >= 1 and waiting_for_a_frame(capture[0]):
                stream.stop("stop")
                return
            time.sleep(0.01)

    source = UVCSource(0, capture_factory=lambda device: Stalling(sbs_frames(3)), frame_timeout_s=30.0)
    stream = Stream(source, rtstereo.load("sgbm", max_disp=32), progress=False)
    threading.Thread(target=stop_once_capture_waits, daemon=True).start()
    try:
        assert stream.run().stopped_by == "stop"
        capture = [thread for thread in threading.enumerate() if thread.name == "rtstereo-capture"]
        for thread in capture:
            thread.join(10.0)  # the grabber is given 2 s
        assert not any(thread.is_alive() for thread in capture)
    finally:
        release.set()
