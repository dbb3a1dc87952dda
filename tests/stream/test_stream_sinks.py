"""Stream outputs: mp4 previews, 16-bit PNG frames, the colour range and the window's fallbacks."""

from __future__ import annotations

import logging
import re

import cv2
import numpy as np
import pytest

from conftest import read_video
from rtstereo.errors import InputError, OutputError
from rtstereo.io import read_disparity
from rtstereo.sinks.video import (
    ColourScale,
    DisparityPngSink,
    OutputFrame,
    VideoSink,
    compose_preview,
    open_window,
)
from rtstereo.types import DisparityResult, StereoPair


def frame(number: int = 0, size_hw=(31, 40), value_px: float = 7.25) -> OutputFrame:
    left = np.full((*size_hw, 3), 90, np.uint8)
    disparity = np.full(size_hw, value_px, np.float32)
    disparity[0, 0] = np.nan
    pair = StereoPair(left, left, index=number)
    return OutputFrame(number, pair, DisparityResult(disparity), compose_preview(left, disparity, 16.0))


def test_mp4_keeps_odd_sized_previews_whole_and_plays(tmp_path):
    sink = VideoSink(tmp_path / "sub" / "o.mp4", fps=None)
    for n in range(3):
        sink.write(frame(n))
    sink.close()
    frames = read_video(tmp_path / "sub" / "o.mp4")
    assert len(frames) == 3 and frames[0].shape == (32, 80, 3)  # 31 rows padded to 32, none cut
    left_half = frames[0][:, :40].astype(int)  # the grey (90) left view over a black row added at the bottom
    assert abs(left_half[:31].mean() - 90) < 8 and left_half[31].mean() < 8
    assert sink.outputs == [str(tmp_path / "sub" / "o.mp4")]


def test_frames_too_large_for_mpeg4_are_refused_with_a_size_that_fits(tmp_path, capfd):
    """A 4096-px-wide frame's preview (the image beside its disparity) is 8192 px wide, which FFmpeg's MPEG-4
    encoder refuses: the run printed FFmpeg's lines and 'OpenCV's FFmpeg writer did not open it (folder not
    writable?)'."""
    sink = VideoSink(tmp_path / "o.mp4", fps=5)
    with pytest.raises(OutputError) as info:
        sink.write(frame(0, size_hw=(30, 4096)))
    assert str(info.value) == (
        f"cannot write the video {tmp_path / 'o.mp4'}: its frames, each 30x4096 (HxW) image beside its coloured "
        "disparity, are 30x8192, and MPEG-4 holds at most 8190 px a side: resize the frames (e.g. --size 28x4094), "
        "or leave out -o and write the disparity as 16-bit PNGs at full size (--output-prefix)"
    )
    assert "dimensions too large" not in capfd.readouterr().err and sink.outputs == []
    sink.close()
    assert list(tmp_path.iterdir()) == []
    # the size it names is written, as are the largest previews MPEG-4 holds (one side 8190 px)
    for size_hw in ((28, 4094), (30, 4095)):
        sink = VideoSink(tmp_path / f"{size_hw[1]}.mp4", fps=5)
        sink.write(frame(0, size_hw=size_hw))
        sink.close()
        assert sink.outputs == [str(tmp_path / f"{size_hw[1]}.mp4")]


def test_an_mp4_the_writer_could_not_finish_is_an_error_not_written(tmp_path):
    """On a full disk OpenCV's writer left an mp4 without its index ("moov atom not found") and said nothing: the
    run ended with exit code 0 and "written: v.mp4"."""
    sink = VideoSink(tmp_path / "v.mp4", fps=5)
    for n in range(3):
        sink.write(frame(n))
    writer = sink._writer

    class FullDisk:  # the frames went out; the index at release did not
        def release(self):
            writer.release()
            with open(sink._partial, "r+b") as file:
                file.truncate(512)

    sink._writer = FullDisk()
    with pytest.raises(
        OutputError,
        match=r"cannot write the video .*v.mp4: OpenCV's writer left a file that cannot be opened, of 3 frames "
        r"written \(a full disk\? .* MB free on its disk\); it is removed",
    ):
        sink.close()
    assert sink.outputs == [] and list(tmp_path.iterdir()) == []


def test_an_mp4_holding_fewer_frames_than_were_written_is_an_error_not_written(tmp_path):
    sink = VideoSink(tmp_path / "v.mp4", fps=5)
    for n in range(3):
        sink.write(frame(n))
    sink.frames = 5  # two frames the writer took without a word, which never reached the file
    with pytest.raises(OutputError, match=r"OpenCV's writer left a file of 3 frames, of 5 frames written \(a full"):
        sink.close()
    assert sink.outputs == [] and list(tmp_path.iterdir()) == []


def test_mp4_name_size_and_folder_errors(tmp_path):
    with pytest.raises(
        OutputError, match=r"o.avi: expected a .mp4, .m4v, .mov file name \(an MPEG-4 video\), got '.avi'"
    ):
        VideoSink(tmp_path / "o.avi")
    for accepted in ("o.m4v", "o.MOV"):
        assert VideoSink(tmp_path / accepted).path.name == accepted
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create folder"):
        VideoSink(tmp_path / "file" / "o.mp4")
    sink = VideoSink(tmp_path / "o.mp4", fps=5)
    sink.write(frame(0))
    with pytest.raises(OutputError, match=r"from 31x40 to 20x20 \(HxW\) at frame 1: an mp4 holds one size"):
        sink.write(frame(1, size_hw=(20, 20)))
    sink.close()
    assert VideoSink(tmp_path / "never.mp4").outputs == []


@pytest.mark.parametrize("prefix", ["", "frames/"])
def test_a_png_prefix_that_names_no_file_is_refused(tmp_path, monkeypatch, prefix):
    monkeypatch.chdir(tmp_path)  # was: frames_00000.png beside the folder, or _00000.png here
    with pytest.raises(OutputError, match=f"PNG prefix {prefix!r} names no file: .* frames/disp for frames/disp_00000"):
        DisparityPngSink(prefix)
    assert list(tmp_path.iterdir()) == []


def test_a_png_prefix_that_is_an_existing_folder_is_refused(tmp_path):
    """An existing folder named without the separator wrote frames_00000.png beside it, as "frames/" did."""
    (tmp_path / "frames").mkdir()
    with pytest.raises(OutputError, match=r"PNG prefix .*frames is a folder: .* written beside it; .*frames/disp for"):
        DisparityPngSink(tmp_path / "frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


@pytest.mark.parametrize("sink", [DisparityPngSink, VideoSink])
def test_an_output_path_of_the_wrong_type_is_an_input_error(sink):
    with pytest.raises(InputError, match=": expected .*\\(str or Path\\).*, got int"):
        sink(5)  # pathlib's bare TypeError before


@pytest.mark.parametrize("fps", [0, -5.0, float("nan"), "25"])
def test_mp4_frame_rate_must_be_a_number_above_0(tmp_path, fps):
    # was: 0 wrote a 10 fps file, -5 failed at the first frame with "folder not writable?"
    with pytest.raises(InputError, match=f"o.mp4: fps must be a number > 0, or None to measure it; got {fps!r}"):
        VideoSink(tmp_path / "o.mp4", fps=fps)


def test_mp4_frame_rate_may_be_a_numpy_number(tmp_path):
    """np.float32(30) was refused: "fps must be a number > 0", as --camera-fps refused it."""
    assert VideoSink(tmp_path / "o.mp4", fps=np.float32(30)).fps == 30


@pytest.mark.parametrize(("fps", "stored"), [(200 / 3, 66.67), (1234.5678, 1234.6), (29.97, 29.97)])
def test_mp4_at_a_rate_mpeg4_cannot_store_is_written_at_its_rounding_and_says_so(tmp_path, caplog, fps, stored):
    """A 200 fps video at --stride 3 (66.667 fps): OpenCV's writer did not open, the run ended with its lines on
    stderr and "folder not writable?" (MPEG-4 stores the rate's time base in 16 bits)."""
    with caplog.at_level(logging.INFO, logger="rtstereo.stream"):
        sink = VideoSink(tmp_path / "o.mp4", fps=fps)
        for n in range(3):
            sink.write(frame(n))
        sink.close()
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3 and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(stored)
    capture.release()
    assert sink.fps == stored and sink.outputs == [str(tmp_path / "o.mp4")]
    notes = [r.getMessage() for r in caplog.records if "MPEG-4 cannot store" in r.getMessage()]
    assert notes == (
        [
            f"{tmp_path / 'o.mp4'}: MPEG-4 cannot store {fps:.10g} fps (its time base has 16 bits): "
            f"recorded at {stored:g} fps"
        ]
        if stored != fps
        else []
    )


@pytest.mark.parametrize(("fps", "stored"), [(30 / 7, 4.286), (1 / 3, 0.333), (24 / 5, 4.8)])
def test_mp4_rate_is_the_one_the_file_stores(tmp_path, fps, stored):
    """OpenCV stores the rate as a decimal fraction to within 0.001 fps: 30 fps at --stride 7 is 4.286 in the file,
    and the sink (the summary's video_fps) said 4.285714285714286."""
    sink = VideoSink(tmp_path / "o.mp4", fps=fps)
    for n in range(3):
        sink.write(frame(n))
    sink.close()
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(stored, abs=1e-9)
    capture.release()
    assert sink.fps == pytest.approx(stored, abs=1e-9)


def test_mp4_rate_beyond_what_mpeg4_stores_is_refused(tmp_path):
    with pytest.raises(InputError, match="o.mp4: MPEG-4 stores at most 65535 fps .* got 100000"):
        VideoSink(tmp_path / "o.mp4", fps=100000)
    for fps in (0.001, 0.0005):  # OpenCV stores it as 0 fps; no rounding of it is stored either
        with pytest.raises(InputError, match=f"o.mp4: OpenCV stores .* 0.001 fps, .* over 0.001 fps; got {fps}"):
            VideoSink(tmp_path / "o.mp4", fps=fps)
    sink = VideoSink(tmp_path / "o.mp4", fps=0.0011)  # stored as 0.001 fps
    sink.write(frame(0))
    sink.close()
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(0.001)
    sink = VideoSink(tmp_path / "late.mp4")
    sink.fps = 0.001  # set later, as a Stream sets a source's rate
    with pytest.raises(OutputError, match=r"late.mp4: MPEG-4 cannot store a frame rate of 0.001 fps, nor a rounding"):
        sink.write(frame(0))
    assert not (tmp_path / "late.mp4").exists()


def test_mp4_of_previews_wider_than_mpeg4_holds_says_so_not_the_folder(tmp_path):
    """4096-px frames make 8192-px previews, beyond MPEG-4's 8190: the writer did not open and the error asked
    whether the folder was writable."""
    sink = VideoSink(tmp_path / "o.mp4", fps=5)
    with pytest.raises(OutputError) as info:
        sink.write(frame(0, size_hw=(16, 4096)))
    message = str(info.value)
    assert message.startswith(f"cannot write the video {tmp_path / 'o.mp4'}: its frames, each 16x4096 (HxW) image ")
    assert "are 16x8192, and MPEG-4 holds at most 8190 px a side: resize the frames (e.g. --size " in message
    assert "folder not writable" not in message
    sink.close()
    assert list(tmp_path.iterdir()) == [] and sink.outputs == []
    widest = VideoSink(tmp_path / "w.mp4", fps=5)  # 4095 px: 8190 with the column added, the most it takes
    widest.write(frame(0, size_hw=(16, 4095)))
    widest.close()
    capture = cv2.VideoCapture(str(tmp_path / "w.mp4"))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_COUNT)) == (8190, 1)
    capture.release()


def test_mp4_on_a_folder_is_refused_at_once_and_a_failed_close_leaves_no_partial(tmp_path):
    (tmp_path / "o.mp4").mkdir()
    with pytest.raises(OutputError, match=r"o.mp4 is a folder: give a file name"):
        VideoSink(tmp_path / "o.mp4")
    (tmp_path / "frames").mkdir()  # was told "expected a .mp4, .m4v, .mov file name ..., got no suffix"
    with pytest.raises(OutputError, match=r"frames is a folder: give a file name, e.g. .*frames/out.mp4$"):
        VideoSink(tmp_path / "frames")
    sink = VideoSink(tmp_path / "later.mp4", fps=5)
    sink.write(frame(0))
    (tmp_path / "later.mp4").mkdir()  # taken by a folder while the stream ran
    with pytest.raises(OutputError) as info:
        sink.close()
    assert str(info.value) == f"cannot write the video {tmp_path / 'later.mp4'}: Is a directory"
    assert sink.outputs == [] and sorted(p.name for p in tmp_path.iterdir()) == ["frames", "later.mp4", "o.mp4"]


def test_an_unwritable_folder_is_said_before_the_first_frame(tmp_path, monkeypatch):
    from pathlib import Path

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "touch", refuse)
    # it said "[Errno 13] Permission denied: '.../.o.partial-123-0a1b2c3d@host.mp4'", a name the user never gave
    with pytest.raises(OutputError) as info:
        VideoSink(tmp_path / "o.mp4")
    assert str(info.value) == f"cannot write the video {tmp_path / 'o.mp4'}: Permission denied"
    with pytest.raises(OutputError) as info:
        DisparityPngSink(tmp_path / "d")
    assert str(info.value) == f"cannot write PNGs {tmp_path / 'd'}_*: Permission denied"
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_output_folder_should_be_is_named(tmp_path):
    """It said "cannot create folder taken: [Errno 17] File exists: 'taken'"."""
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        VideoSink(blocker / "o.mp4")
    assert str(info.value) == f"cannot create folder {blocker}: {blocker} is a file, not a folder"
    with pytest.raises(OutputError) as info:
        DisparityPngSink(blocker / "sub" / "d")
    assert str(info.value) == f"cannot create folder {blocker / 'sub'}: {blocker} is a file, not a folder"


def test_png_frames_are_numbered_complete_and_exact(tmp_path):
    sink = DisparityPngSink(tmp_path / "out" / "disp")
    for n in range(2):
        sink.write(frame(n))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["disp_00000.png", "disp_00001.png"]  # no temporary files left
    d = read_disparity(tmp_path / "out" / "disp_00001.png")
    assert np.isnan(d[0, 0]) and d[5, 5] == 7.25  # d * 256 is exact for quarter pixels
    assert re.fullmatch(r".*disp_NNNNN\.png x 2", sink.outputs[0])


def test_a_frame_too_far_for_png16_gets_no_png_and_the_stream_goes_on(tmp_path):
    sink = DisparityPngSink(tmp_path / "d")
    sink.write(frame(0))
    with pytest.warns(UserWarning, match=r"frame 1: disparity up to 300\.0 px .*--output-prefix") as caught:
        sink.write(frame(1, value_px=300.0))
        sink.write(frame(2, value_px=280.0))  # said once per stream
    assert len(caught) == 1
    sink.write(frame(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d_00000.png", "d_00003.png"]
    assert sink.outputs == [f"{tmp_path / 'd'}_NNNNN.png x 2 (2 frames beyond 256 px have none)"]


def test_png_warnings_name_the_frame_by_the_sources_number(tmp_path):
    """PNG 0 of --start 300 was 'frame 0' in the PNG warnings, where the stream's other warnings name it frame 300."""
    sink = DisparityPngSink(tmp_path / "d")
    for number, value_px, said in (
        (0, 300.0, r"^frame 300: disparity up to 300\.0 px"),
        (1, -1.0, r"^frame 301 \(d_00001"),
    ):
        made = frame(number, value_px=value_px)
        pair = StereoPair(made.pair.left, made.pair.right, index=300 + number)
        with pytest.warns(UserWarning, match=said):
            sink.write(OutputFrame(number, pair, made.result))


def test_output_paths_starting_with_a_tilde_are_in_the_home_folder(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # where a "~" folder would be made
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    pngs, video = DisparityPngSink("~/frames/d"), VideoSink("~/o.mp4", fps=10)
    pngs.write(frame(0))
    video.write(frame(0))
    video.close()
    assert (tmp_path / "home" / "frames" / "d_00000.png").is_file() and (tmp_path / "home" / "o.mp4").is_file()
    assert not (tmp_path / "work" / "~").exists()


def test_disparities_a_png_cannot_store_are_counted_once_per_stream(tmp_path):
    sink = DisparityPngSink(tmp_path / "d")
    sink.write(frame(0))
    with pytest.warns(
        UserWarning, match=r"frame 1 \(d_00001\.png\): 1239 of 1240 pixels hold a disparity <= 0"
    ) as caught:
        sink.write(frame(1, value_px=-2.0))  # a predictor of one's own that leaves them in
        sink.write(frame(2, value_px=0.0))  # said once per stream
    assert len(caught) == 1 and len(sink.written) == 3


def test_pngs_of_an_earlier_run_are_not_passed_off_as_this_runs(tmp_path, recwarn):
    earlier = DisparityPngSink(tmp_path / "d")
    for n in range(5):
        earlier.write(frame(n, value_px=3.0))
    earlier.close()
    assert not recwarn.list
    (tmp_path / "other_00000.png").write_bytes(b"another prefix's")
    sink = DisparityPngSink(tmp_path / "d")
    sink.write(frame(0))
    with pytest.warns(UserWarning, match="frame 1: disparity up to 300.0 px"):
        sink.write(frame(1, value_px=300.0))  # no PNG for this frame: the earlier run's d_00001.png goes too
    with pytest.warns(UserWarning) as caught:
        sink.close()
    assert [str(w.message) for w in caught] == [
        f"3 PNGs of an earlier run are left beside this run's under {tmp_path / 'd'}_ (d_00002.png to d_00004.png): "
        "they are not this run's frames; remove them, or write each run under its own --output-prefix"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d_00000.png",
        "d_00002.png",
        "d_00003.png",
        "d_00004.png",
        "other_00000.png",
    ]
    assert read_disparity(tmp_path / "d_00000.png")[5, 5] == 7.25  # this run's


def test_pngs_of_an_earlier_run_are_not_named_when_this_run_wrote_none(tmp_path, recwarn):
    earlier = DisparityPngSink(tmp_path / "d")
    earlier.write(frame(0))
    DisparityPngSink(tmp_path / "d").close()  # a stream that ended before its first frame: it left nothing beside
    assert not recwarn.list


def test_input_images_of_the_prefixs_name_in_another_folder_are_no_clash(tmp_path):
    from rtstereo.sinks.video import refuse_writing_over_inputs

    (tmp_path / "in").mkdir()
    image = tmp_path / "in" / "d_00000.png"
    image.write_bytes(b"an input image")
    refuse_writing_over_inputs([], [image], [("--output-prefix", tmp_path / "out" / "d")])
    refuse_writing_over_inputs([], [image], [("--output-prefix", tmp_path / "d")])
    with pytest.raises(InputError, match="would write its PNGs .* over the input images"):
        refuse_writing_over_inputs([], [image], [("--output-prefix", tmp_path / "in" / "d")])


def test_colour_scale_given_measured_and_empty(caplog):
    assert ColourScale(64).ready and ColourScale(64).freeze() == 64
    with pytest.raises(InputError, match="max disparity must be > 0"):
        ColourScale(0)
    scale = ColourScale(None, warmup_frames=2)
    scale.observe(np.full((4, 4), 10.0, np.float32))
    assert not scale.ready
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        scale.observe(np.full((4, 4), 30.0, np.float32))
    assert scale.ready and 29 < scale.max_disp_px <= 30
    scale.observe(np.full((4, 4), 500.0, np.float32))  # frozen: later frames do not move it
    assert scale.max_disp_px <= 30 and "colour range fixed at 0..30" in caplog.text
    assert ColourScale(None).freeze() == 1.0  # nothing valid seen
    assert ColourScale(None, fallback_px=192).freeze() == 192  # ... the model's range when known
    dark = ColourScale(None, warmup_frames=1)
    dark.observe(np.full((4, 4), np.nan, np.float32))  # a black frame: no disparity, passed over
    assert not dark.ready
    dark.observe(np.full((4, 4), 12.0, np.float32))
    assert dark.ready and dark.max_disp_px == 12.0
    sparse = ColourScale(None, warmup_frames=1)
    few = np.full((20, 20), np.nan, np.float32)
    few[0, :3] = 50.0  # 3 of 400 pixels (0.75 %): under 1 % valid, passed over like a black frame
    sparse.observe(few)
    assert not sparse.ready
    sparse.observe(np.arange(1, 101, dtype=np.float32).reshape(10, 10))  # 1..100 px
    assert sparse.max_disp_px == pytest.approx(99.01)  # the 99th percentile (interpolated at 98.01 of 0..99)


def test_show_without_a_display_runs_without_a_window(monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        assert open_window() is None
    assert "no display" in caplog.text
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # a Wayland desktop sets no DISPLAY
    from rtstereo.sinks.video import display_available

    assert display_available()


def test_show_with_an_opencv_without_gui_says_which_package_to_install(monkeypatch, caplog):
    if "GUI:                           NONE" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV has a GUI backend: the headless fallback cannot be exercised")
    monkeypatch.setenv("DISPLAY", ":99")
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        assert open_window() is None
    # not "pip install opencv-python" beside the headless wheel: two packages writing cv2's files (OpenCV advises one)
    assert "'pip uninstall -y opencv-python-headless opencv-python && pip install opencv-python'" in caplog.text
    assert "--view3d" in caplog.text and "--output-prefix" in caplog.text


def test_window_quits_on_q_esc_or_close(monkeypatch):
    """No display here: OpenCV's HighGUI calls are replaced by a script of keys and window states."""
    from rtstereo.sinks import video

    keys, visible, shown = [ord("a"), ord("q"), 27, -1, -1, ord("f")], [1.0, 1.0, 0.0, 1.0], []
    monkeypatch.setattr(video.cv2, "namedWindow", lambda title, flags: None)
    monkeypatch.setattr(video.cv2, "imshow", lambda title, image: shown.append(image))
    script_keys(monkeypatch, keys)
    monkeypatch.setattr(video.cv2, "getWindowProperty", lambda title, prop: visible.pop(0))
    monkeypatch.setattr(video.cv2, "destroyWindow", lambda title: None)
    window = video.OpenCVWindow()
    window.show(np.zeros((4, 8, 3), np.uint8))
    assert shown[0].shape == (4, 8, 3)
    assert [window.poll(), window.poll(), window.poll()] == [False, True, True]  # 'a', then q, then Esc
    assert window.poll() is False and window.poll() is True  # visible, then closed with its button
    pressed = []
    window.keys[ord("f")] = lambda: pressed.append("f")  # another key's action (online adaptation's freeze)
    assert window.poll() is False and pressed == ["f"]
    window.close()


def script_keys(monkeypatch, keys: list[int]) -> None:
    """HighGUI's key reading replaced by a script of whole key codes (as ``waitKeyEx`` gives them); ``waitKey``
    keeps their low byte only, as OpenCV's does."""
    from rtstereo.sinks import video

    def wait_key_ex(ms):
        return keys.pop(0) if keys else -1

    monkeypatch.setattr(video.cv2, "waitKeyEx", wait_key_ex)
    monkeypatch.setattr(video.cv2, "waitKey", lambda ms: -1 if (key := wait_key_ex(ms)) == -1 else key & 0xFF)


def test_window_keys_are_told_apart_by_their_whole_code(monkeypatch):
    """waitKey's low byte of Left arrow (0xFF51, X11) is 'Q': the arrow quit the stream. GTK also sets the
    modifiers (NumLock: 0x10 << 16) above the key, which must not hide q, Esc or f."""
    from rtstereo.sinks import video

    numlock = 0x10 << 16
    keys = [0xFF51, 0xFF53, 0xFF66, ord("f") | numlock, ord("q") | numlock, 27 | numlock, ord("Q")]
    monkeypatch.setattr(video.cv2, "namedWindow", lambda title, flags: None)
    monkeypatch.setattr(video.cv2, "getWindowProperty", lambda title, prop: 1.0)
    script_keys(monkeypatch, keys)
    window, pressed = video.OpenCVWindow(), []
    window.keys[ord("f")] = lambda: pressed.append("f")
    # Left and Right arrows, Redo (0xFF66, low byte 'f'): nothing; f with NumLock on: its action
    assert [window.poll() for _ in range(4)] == [False] * 4 and pressed == ["f"]
    assert [window.poll() for _ in range(3)] == [True] * 3  # q and Esc with NumLock on, then Shift+q


NOT_UTF8_SCRIPT = """
import os, sys
from pathlib import Path
import numpy as np
from rtstereo.errors import RtStereoError
from rtstereo.sinks.video import DisparityPngSink, OutputFrame, VideoSink, compose_preview
from rtstereo.sources.video import VideoReader
from rtstereo.types import DisparityResult, StereoPair

folder = Path(os.fsdecode(os.fsencode(sys.argv[1]) + b"/caf\\xe9"))
left, disparity = np.zeros((31, 40, 3), np.uint8), np.full((31, 40), 7.25, np.float32)
frame = OutputFrame(0, StereoPair(left, left), DisparityResult(disparity), compose_preview(left, disparity, 16.0))
sink = DisparityPngSink(folder / "d")
sink.write(frame)
sink.close()
print(len(sink.written), sorted(os.listdir(os.fsencode(folder))))
from rtstereo.sources.cameras import UVCSource

makers = (lambda: VideoSink(folder / "o.mp4", fps=10), lambda: VideoReader(folder / "d_00000.png"))
for make in (*makers, lambda: next(iter(UVCSource(str(folder / "d_00000.png"))))):
    try:
        make()
    except RtStereoError as exc:
        print(exc)
"""


def test_outputs_under_a_path_that_is_not_utf8_are_written_or_refused_not_a_crash(tmp_path):
    """Linux names are bytes: cv2.imwrite, VideoWriter and VideoCapture crashed (a segmentation fault) on one
    that is not UTF-8; the PNGs are written, an mp4 (or a video to read) is refused in one line."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", NOT_UTF8_SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, (done.returncode, done.stderr)
    lines = done.stdout.splitlines()
    assert lines[0] == "1 [b'd_00000.png']", done.stdout
    folder = f"{tmp_path}/caf\\xe9"
    assert lines[1] == (
        f"video output {folder}/o.mp4: OpenCV's video writer takes only names in UTF-8, and this path is not "
        "(bytes from another encoding): give -o a path in UTF-8"
    )
    assert lines[2].startswith(
        f"cannot read video {folder}/d_00000.png: OpenCV's video reader takes only names in UTF-8"
    )
    assert lines[3].startswith(f"cannot open camera uvc:{folder}/d_00000.png: OpenCV's video reader takes only names")
    assert read_disparity(tmp_path / "caf\udce9" / "d_00000.png")[5, 5] == 7.25


def test_colour_scale_pools_its_warm_up_frames_and_passes_over_zeros():
    scale = ColourScale(None, warmup_frames=2)
    first = np.concatenate([np.zeros(100), np.arange(1, 101)]).astype(np.float32).reshape(10, 20)  # 0 = none
    scale.observe(first)
    scale.observe(np.arange(101, 201, dtype=np.float32).reshape(10, 10))
    # the 99th percentile of 1..200 (zeros left out), both frames together: 1 + 0.99 * 199
    assert scale.max_disp_px == pytest.approx(198.01)


def test_an_earlier_png_that_cannot_be_removed_says_why_in_words(tmp_path, monkeypatch):
    """A folder under a PNG's name, or a file the system refuses to remove, said "[Errno 21] Is a directory: '...'"
    and "[Errno 13] Permission denied: '...'"."""
    from pathlib import Path

    (tmp_path / "d_00001.png").mkdir()
    (tmp_path / "d_00002.png").write_bytes(b"an earlier run's")
    sink = DisparityPngSink(tmp_path / "d")
    with pytest.warns(UserWarning), pytest.raises(OutputError) as info:
        sink.write(frame(1, value_px=300.0))
    assert str(info.value) == f"cannot remove {tmp_path / 'd_00001.png'}, left by an earlier run: it is a folder"

    def refuse(path, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(OutputError) as info:
        sink.write(frame(2, value_px=300.0))
    assert str(info.value) == f"cannot remove {tmp_path / 'd_00002.png'}, left by an earlier run: Permission denied"


def test_a_window_opencv_refuses_without_a_reason_is_one_line(monkeypatch):
    # the reason was str(exc).strip().splitlines()[-1]: an IndexError traceback on an error with no text
    from rtstereo.sinks import video

    def refuse(title, flags):
        raise video.cv2.error()

    monkeypatch.setattr(video.cv2, "namedWindow", refuse)
    monkeypatch.setattr(video, "opencv_has_gui", lambda: True)
    with pytest.raises(OutputError, match=r"^cannot open a window: error$"):
        video.OpenCVWindow()


def test_a_window_a_headless_opencv_refuses_names_the_gui_build_in_its_place(monkeypatch):
    """It said "pip install opencv-python", a second package writing cv2's files beside the headless one (OpenCV
    advises one only), after OpenCV's own reason, which says to rebuild OpenCV with GTK."""
    from rtstereo.sinks import video

    def refuse(title, flags):
        raise video.cv2.error(
            "OpenCV(5.1.0) window.cpp:1241: error: (-2:Unspecified error) The function is not implemented. Rebuild "
            "the library with Windows, GTK+ 2.x or Cocoa support. If you are on Ubuntu or Debian, install "
            "libgtk2.0-dev and pkg-config, then re-run cmake or configure script in function 'namedWindowImpl'\n"
        )

    monkeypatch.setattr(video.cv2, "namedWindow", refuse)
    monkeypatch.setattr(video, "opencv_has_gui", lambda: False)
    with pytest.raises(OutputError) as info:
        video.OpenCVWindow()
    assert str(info.value) == (
        "cannot open a window: this OpenCV has no GUI, as opencv-python-headless, which rtstereo installs: for --show "
        "put the GUI build in its place with 'pip uninstall -y opencv-python-headless opencv-python && pip install "
        "opencv-python', or write -o FILE.mp4 or --output-prefix, or view in 3D with --view3d"
    )


def test_a_window_an_opencv_with_a_gui_refuses_gives_no_advice_to_install_one(monkeypatch):
    """The GUI build that cannot open a window (no access to the display) is not told to install the GUI build."""
    from rtstereo.sinks import video

    def refuse(title, flags):
        raise video.cv2.error("OpenCV(4.10.0) ... error: (-2:Unspecified error) Can't initialize GTK backend")

    monkeypatch.setattr(video.cv2, "namedWindow", refuse)
    monkeypatch.setattr(video.cv2, "getBuildInformation", lambda: "  GUI:                           GTK3\n")
    with pytest.raises(OutputError) as info:
        video.OpenCVWindow()
    assert str(info.value) == (
        "cannot open a window: OpenCV(4.10.0) ... error: (-2:Unspecified error) Can't initialize GTK backend"
    )


@pytest.mark.parametrize(("line", "has_gui"), [("  GUI: NONE", False), ("  GUI:  QT5", True), ("  Video I/O:", False)])
def test_opencv_has_gui_reads_the_build_information(monkeypatch, line, has_gui):
    from rtstereo.sinks import video

    monkeypatch.setattr(video.cv2, "getBuildInformation", lambda: f"General configuration for OpenCV\n{line}\n")
    assert video.opencv_has_gui() is has_gui


def _mp4(path, fps: float, count: int = 10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for n in range(count):
        writer.write(np.full((48, 64, 3), 20 * n, np.uint8))
    writer.release()
    return path


def _rate_frames_and_times_ms(path):
    capture = cv2.VideoCapture(str(path))
    times_ms = []
    while capture.read()[0]:
        times_ms.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    rate = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return rate, times_ms


@pytest.mark.parametrize(("opened_fps", "fps"), [(30.0, 5.0), (7.3, 12.5), (120.0, 0.5), (5.0, 120.0)])
def test_an_mp4s_rate_is_set_in_its_header_and_its_frames_are_untouched(tmp_path, opened_fps, fps):
    from rtstereo.sinks import mp4_rate
    from rtstereo.sinks.mp4_rate import set_mp4_rate

    path = _mp4(tmp_path / "o.mp4", opened_fps)
    before = read_video(path)
    assert set_mp4_rate(path, fps) == pytest.approx(fps, abs=1e-3)
    rate, times_ms = _rate_frames_and_times_ms(path)
    assert rate == pytest.approx(fps, abs=1e-3) and len(times_ms) == 10
    assert times_ms[-1] == pytest.approx(9 * 1e3 / fps, rel=1e-3)  # frame n plays at n / fps
    # what a player shows as the length: the movie's, the track's and its edit's durations (movie units of 1 ms)
    data = path.read_bytes()
    ((mvhd, header, _),) = mp4_rate._find(data, 0, len(data), [b"moov", b"mvhd"])
    assert int.from_bytes(data[mvhd + header + 16 : mvhd + header + 20], "big") == round(10e3 / fps)
    ((tkhd, header, _),) = mp4_rate._find(data, 0, len(data), [b"moov", b"trak", b"tkhd"])
    assert int.from_bytes(data[tkhd + header + 20 : tkhd + header + 24], "big") == round(10e3 / fps)
    ((elst, header, _),) = mp4_rate._find(data, 0, len(data), [b"moov", b"trak", b"edts", b"elst"])
    assert int.from_bytes(data[elst + header + 8 : elst + header + 12], "big") == round(10e3 / fps)
    assert all(np.array_equal(a, b) for a, b in zip(before, read_video(path)))


def test_a_file_that_is_no_mp4_keeps_its_bytes_when_its_rate_cannot_be_set(tmp_path):
    from rtstereo.sinks.mp4_rate import Mp4LayoutError, set_mp4_rate

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    data = path.read_bytes()
    with pytest.raises(Mp4LayoutError):
        set_mp4_rate(path, 5.0)
    assert path.read_bytes() == data


def test_an_mp4_whose_rate_cannot_be_set_at_close_keeps_its_opening_rate_and_says_so(tmp_path, monkeypatch, caplog):
    from rtstereo.sinks import mp4_rate

    def refuse(path, fps):
        raise mp4_rate.Mp4LayoutError("not exactly one track")

    monkeypatch.setattr(mp4_rate, "set_mp4_rate", refuse)
    sink = VideoSink(tmp_path / "o.mp4", fps=30)
    for n in range(3):
        sink.write(frame(n))
    sink.closing_fps = 5.0
    with caplog.at_level(logging.WARNING, logger="rtstereo.stream"):
        sink.close()
    assert sink.fps == 30 and sink.outputs == [str(tmp_path / "o.mp4")]
    assert "o.mp4: kept at 30 fps, its header's rate could not be set to 5 fps: not exactly one track" in caplog.text
