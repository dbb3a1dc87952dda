"""Video and image-sequence sources: frames, indices, timestamps, start/stride, and every bad input."""

from __future__ import annotations

import logging
import os
import re
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import rtstereo
from conftest import (
    BACKGROUND_PX,
    RECTANGLE_PX,
    damaged_video,
    mjpg_bytes,
    read_video,
    render_scene,
    write_video,
)
from rtstereo.cli.common import parse_size_hw
from rtstereo.errors import InputError
from rtstereo.sources.base import FramePreparer, check_start_stride, split_side_by_side
from rtstereo.sources.cameras import UVCSource, open_camera
from rtstereo.sources.oak import OakSource
from rtstereo.sources.sequence import ImageSequenceSource, is_image_sequence
from rtstereo.sources.video import SideBySideVideoSource, TwoVideoSource, VideoReader, resolve_video
from rtstereo.types import Calibration, StereoPair


def medians(pair: StereoPair, rectangle, max_disp: int = 32) -> tuple[float, float]:
    """Median disparity of the background (above the rectangle) and of the rectangle, by SGBM."""
    d = rtstereo.load("sgbm", max_disp=max_disp).predict_pair(pair).disparity_px
    x0, y0, x1, y1 = rectangle
    return float(np.nanmedian(d[2 : y0 - 2, 40:100])), float(np.nanmedian(d[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3]))


# -- two videos ------------------------------------------------------------------------------------


def test_two_videos_yield_pairs_with_index_timestamp_and_known_disparity(two_videos, scene):
    source = TwoVideoSource(*two_videos)
    pairs = list(source)
    assert source.fps == pytest.approx(10.0) and source.expected_frames == len(scene.lefts)
    assert [p.index for p in pairs] == list(range(len(scene.lefts)))
    assert [p.timestamp_s for p in pairs] == pytest.approx([i / 10.0 for i in range(len(scene.lefts))])
    assert pairs[0].size_hw == (64, 128)
    background, rectangle = medians(pairs[2], scene.rectangles[2])
    assert background == pytest.approx(BACKGROUND_PX, abs=0.5)
    assert rectangle == pytest.approx(RECTANGLE_PX, abs=0.5)


def test_start_and_stride_pick_frames(two_videos):
    source = TwoVideoSource(*two_videos, start=1, stride=2)
    assert source.expected_frames == 3
    assert [p.index for p in source] == [1, 3, 5]


def test_the_two_videos_are_decoded_at_once_on_two_threads(two_videos, monkeypatch):
    decoded_on: dict[str, set[str]] = {"left video": set(), "right video": set()}
    read = VideoReader.read

    def slow_read(reader):
        decoded_on[reader.label].add(threading.current_thread().name)
        time.sleep(0.03)
        return read(reader)

    monkeypatch.setattr(VideoReader, "read", slow_read)
    started = time.perf_counter()
    pairs = list(TwoVideoSource(*two_videos, start=1, stride=2))
    elapsed_s = time.perf_counter() - started
    assert decoded_on["left video"] == {threading.current_thread().name}
    assert {name.split("_")[0] for name in decoded_on["right video"]} == {"rtstereo-decode"}
    assert elapsed_s < 0.8 * 4 * 2 * 0.03  # 4 reads per video (the last one finds the end), one after another
    lefts, rights = read_video(two_videos[0]), read_video(two_videos[1])
    assert [p.index for p in pairs] == [1, 3, 5]
    for pair in pairs:  # the same frames, in the same order, as each file read alone
        np.testing.assert_array_equal(pair.left, lefts[pair.index])
        np.testing.assert_array_equal(pair.right, rights[pair.index])
    assert not [t for t in threading.enumerate() if t.name.startswith("rtstereo-decode")]


def test_an_error_decoding_the_right_video_is_raised_and_the_decoder_thread_ends(two_videos, monkeypatch):
    read = VideoReader.read

    def failing_read(reader):
        if reader.label == "right video" and reader.position == 3:
            raise InputError("right video: frame 3 is damaged")
        return read(reader)

    monkeypatch.setattr(VideoReader, "read", failing_read)
    seen = []
    with pytest.raises(InputError, match="frame 3 is damaged"):
        for pair in TwoVideoSource(*two_videos):
            seen.append(pair.index)
    assert seen == [0, 1, 2]
    assert not [t for t in threading.enumerate() if t.name.startswith("rtstereo-decode")]


def test_one_video_given_for_both_views_is_refused_as_the_command_line_refuses_it(two_videos, tmp_path):
    """TwoVideoSource(a, a) streamed each frame matched with itself, at disparity 0; `rtstereo video a a` is refused."""
    left = two_videos[0]
    (tmp_path / "link.mp4").symlink_to(left)
    for right in (left, tmp_path / "link.mp4", left.as_uri()):
        with pytest.raises(
            InputError, match=r"left and right give the same video .*: a stereo pair needs its two views"
        ):
            TwoVideoSource(left, right)


def test_start_past_the_end_is_refused(two_videos, sbs_video):
    with pytest.raises(InputError, match="past the end"):
        TwoVideoSource(*two_videos, start=6)
    with pytest.raises(InputError, match=r"--start 6 is past the end of the video \(6 frames\)"):
        SideBySideVideoSource(sbs_video, start=6)  # frames 0-5: refused before the first frame


@pytest.mark.parametrize(("start", "stride", "match"), [(-1, 1, "--start"), (0, 0, "--stride")])
def test_bad_start_or_stride(start, stride, match):
    with pytest.raises(InputError, match=match):
        check_start_stride(start, stride)


def test_start_stride_and_fps_of_the_wrong_type_are_refused_by_name(two_videos, tmp_path, scene):
    """A float or a string failed with a bare TypeError ("'float' object cannot be interpreted as an integer"),
    at the first frame; True passed as a stride of 1."""
    video = write_video(tmp_path / "sbs.mp4", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    for make in (
        lambda **kw: SideBySideVideoSource(video, **kw),
        lambda **kw: TwoVideoSource(*two_videos, **kw),
        lambda **kw: ImageSequenceSource(str(tmp_path / "l"), str(tmp_path / "r"), **kw),
    ):
        with pytest.raises(InputError, match=r"^--start: expected a whole number of frames >= 0 .*, got float 1\.5$"):
            make(start=1.5)
        with pytest.raises(InputError, match=r"^--start: expected a whole number .*, got str '3'$"):
            make(start="3")
        with pytest.raises(InputError, match=r"^--stride: expected a whole number >= 1 .*, got float 2\.0$"):
            make(stride=2.0)
        with pytest.raises(InputError, match=r"^--stride: expected a whole number >= 1 .*, got bool True$"):
            make(stride=True)
    with pytest.raises(InputError, match=r"^--fps: expected a frame rate > 0 \(frames per second\), got str '10'$"):
        ImageSequenceSource(str(tmp_path / "l"), str(tmp_path / "r"), fps="10")
    (tmp_path / "l").mkdir()
    cv2.imwrite(str(tmp_path / "l" / "0.png"), scene.lefts[0])
    with pytest.raises(InputError, match=r"^right images: expected a folder or a glob of images .*, got int$"):
        ImageSequenceSource(tmp_path / "l", 3)


def test_videos_of_different_sizes_are_refused(tmp_path, scene):
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", [cv2.resize(f, (64, 32)) for f in scene.rights])
    with pytest.raises(InputError, match=r"differ in frame size: left 128x64, right 64x32"):
        TwoVideoSource(left, right)


def test_videos_of_different_lengths_stop_at_the_shorter(tmp_path, scene, caplog):
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", scene.rights[:4])
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = TwoVideoSource(left, right)
        pairs = list(source)
    assert len(pairs) == 4 and source.expected_frames == 4
    assert "differ in length (left 6 frames, right 4)" in caplog.text
    assert "ended at frame" not in caplog.text  # one warning for one fact


def test_a_one_frame_video_is_one_frame_not_one_frames(tmp_path, scene, caplog):
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", scene.rights[:1])
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        assert len(list(TwoVideoSource(left, right))) == 1
    assert "differ in length (left 6 frames, right 1): stopping at the shorter, 1 frame\n" in caplog.text + "\n"


def test_a_video_that_ends_before_its_frame_count_says_where(tmp_path, scene, caplog, monkeypatch):
    from rtstereo.sources.video import VideoReader

    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", scene.rights[:4])
    counts = {"left video": 6, "right video": 6}  # a header that promises more frames than the file has
    real_init = VideoReader.__init__

    def lying_init(self, path, label, *args, **kwargs):
        real_init(self, path, label, *args, **kwargs)
        self.frame_count = counts[label]

    monkeypatch.setattr(VideoReader, "__init__", lying_init)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pairs = list(TwoVideoSource(left, right))
    assert len(pairs) == 4 and "differ in length" not in caplog.text
    assert "the right video r.mp4 ended after 4 frames although its header claims 6" in caplog.text
    assert "left video" not in caplog.text  # it had a frame 4: it did not end


def test_a_video_without_a_frame_count_that_ends_first_says_where(tmp_path, scene, caplog, monkeypatch):
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = write_video(tmp_path / "r.mp4", scene.rights[:4])
    real_init = VideoReader.__init__

    def countless_init(self, path, label, *args, **kwargs):
        real_init(self, path, label, *args, **kwargs)
        self.frame_count = None  # a stream whose header gives no length

    monkeypatch.setattr(VideoReader, "__init__", countless_init)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pairs = list(TwoVideoSource(left, right))
    assert len(pairs) == 4
    assert caplog.messages == ["the right video ended at frame 4: stopping at the shorter video"]


def cut_video(path, frames: list[np.ndarray]):
    """An AVI (Motion JPEG) of ``frames`` cut in the middle of its data, as an interrupted copy leaves it:
    the header still claims every frame. Returns the file and how many frames it really holds."""
    data = mjpg_bytes(path, frames)
    path.write_bytes(data[: len(data) // 2])
    capture = cv2.VideoCapture(str(path))
    claimed, held = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), len(read_video(path))
    assert claimed == len(frames) and 0 < held < len(frames) - 1, (claimed, held)
    return path, held


@pytest.mark.parametrize("stride", [1, 3])
def test_a_side_by_side_video_cut_short_says_how_many_frames_of_how_many(tmp_path, caplog, stride):
    scene = render_scene(frames=12)
    frames = [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    video, held = cut_video(tmp_path / "sbs.avi", frames)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pairs = list(SideBySideVideoSource(video, stride=stride))
    assert len(pairs) == -(-held // stride)
    assert caplog.messages == [
        f"the side-by-side video sbs.avi ended after {held} frames although its header claims 12: the file is "
        "cut short or damaged; the stream stops there"
    ]


def test_every_video_rtstereo_opens_gets_ffmpegs_quiet_level(monkeypatch):
    """OpenCV 4.8 reads OPENCV_FFMPEG_LOGLEVEL again at every open: the variable was set around the process's
    first open only, so a source that opens its video twice (to check it, then to read it) printed FFmpeg's
    hundreds of lines about a damaged video on stdout at the second (the test below, on 4.8)."""
    from rtstereo.io.quiet import FFMPEG_DEBUG, FFMPEG_LOGLEVEL, FFMPEG_QUIET, ffmpeg_quietened

    monkeypatch.delenv(FFMPEG_LOGLEVEL, raising=False)
    monkeypatch.delenv(FFMPEG_DEBUG, raising=False)
    seen = []
    for _ in range(3):
        with ffmpeg_quietened():
            seen.append(os.environ.get(FFMPEG_LOGLEVEL))
    assert seen == [FFMPEG_QUIET] * 3 and FFMPEG_LOGLEVEL not in os.environ  # the caller's environment as it was
    monkeypatch.setenv(FFMPEG_LOGLEVEL, "16")  # a level the environment chose is left alone
    with ffmpeg_quietened():
        assert os.environ[FFMPEG_LOGLEVEL] == "16"
    assert os.environ[FFMPEG_LOGLEVEL] == "16"


def test_the_python_api_holds_back_ffmpegs_lines_about_a_damaged_video(tmp_path):
    """Only the CLI turned FFmpeg's lines off: SideBySideVideoSource printed 500 "[mpeg4 @ 0x...] marker does not
    match f_code" lines for a damaged mp4. A fresh process, as OpenCV reads the level at its first video."""
    scene = render_scene(frames=12)
    video = write_video(tmp_path / "sbs.mp4", [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)])
    data = bytearray(video.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 3000] = bytes(3000)
    video.write_bytes(bytes(data))
    script = (
        "import os, sys\n"
        "from rtstereo.sources.video import SideBySideVideoSource\n"
        "pairs = list(SideBySideVideoSource(sys.argv[1]))\n"
        "print(len(pairs), os.environ.get('OPENCV_FFMPEG_LOGLEVEL'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_FFMPEG")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    argv = [sys.executable, "-c", script, str(video)]
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr[-500:]
    held = int(quiet.stdout.split()[0])
    assert quiet.stdout.splitlines() == [f"{held} None"]  # the caller's environment is left as it was
    # the frames that do not decode are passed over, and the stream goes on with those after them
    said = quiet.stderr.splitlines()
    assert len(said) == 1 and re.match(r"frames? \d+.* of the side-by-side video sbs\.mp4 do(es)? not decode", said[0])
    assert 0 < held < 12, held
    loud = subprocess.run(
        argv, env={**env, "OPENCV_FFMPEG_LOGLEVEL": "16"}, capture_output=True, text=True, timeout=120
    )
    assert (loud.stdout + loud.stderr).count("marker does not match f_code") > 10  # asked for: shown
    # rtstereo's mp4 written first: OpenCV takes FFmpeg's level at the writer, then holds it for the reader
    write_first = script.replace(
        "pairs = ",
        "from rtstereo.sinks.video import VideoSink, OutputFrame\n"
        "sink = VideoSink(sys.argv[2], fps=10)\n"
        "import numpy as np\n"
        "from rtstereo.types import StereoPair\n"
        "image = np.zeros((16, 32, 3), np.uint8)\n"
        "sink.write(OutputFrame(0, StereoPair(image, image), None, image))\n"
        "sink.close()\n"
        "pairs = ",
    )
    first = subprocess.run(
        [sys.executable, "-c", write_first, str(video), str(tmp_path / "o.mp4")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0 and "f_code" not in first.stdout + first.stderr, first.stderr[-500:]


def frameless_video(path, frames: list[np.ndarray]):
    """An AVI (Motion JPEG) cut just after its first frame began: it opens, its header claims every frame, and
    not one decodes (an interrupted copy of a few kilobytes)."""
    data = mjpg_bytes(path, frames)
    path.write_bytes(data[: data.index(b"\xff\xd8") + 160])  # the first JPEG cut inside its tables
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames), path
    assert read_video(path) == [], path
    return path


def test_a_video_that_gives_no_frame_is_an_error_not_an_empty_stream(tmp_path):
    """It ran as a stream of 0 frames, with its summary written and exit code 0."""
    scene = render_scene(frames=12)
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right = frameless_video(tmp_path / "r.avi", scene.rights)
    told = "gives no frame (its header claims 12: the file is cut short or damaged)"
    with pytest.raises(InputError, match=rf"^the right video r\.avi {re.escape(told)}$"):
        list(TwoVideoSource(left, right))
    with pytest.raises(InputError, match=rf"^the left video r\.avi {re.escape(told)}$"):
        list(TwoVideoSource(right, left))
    frames = [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    video = frameless_video(tmp_path / "sbs.avi", frames)
    with pytest.raises(InputError, match=rf"^the side-by-side video sbs\.avi {re.escape(told)}$"):
        list(SideBySideVideoSource(video, stride=3))


def test_one_of_two_videos_cut_short_is_named(tmp_path, caplog):
    scene = render_scene(frames=12)
    left = write_video(tmp_path / "l.mp4", scene.lefts)
    right, held = cut_video(tmp_path / "r.avi", scene.rights)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        pairs = list(TwoVideoSource(left, right))
    assert len(pairs) == held
    assert caplog.messages == [
        f"the right video r.avi ended after {held} frames although its header claims 12: the file is cut short "
        "or damaged; the stream stops there"
    ]


def test_a_stream_stopped_early_does_not_call_the_video_cut_short(tmp_path, caplog):
    scene = render_scene(frames=12)
    frames = [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    video, _ = cut_video(tmp_path / "sbs.avi", frames)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        frames_read = iter(SideBySideVideoSource(video))
        next(frames_read)
        frames_read.close()
    assert not caplog.messages


def test_videos_of_different_frame_rates_warn(tmp_path, scene, caplog):
    left = write_video(tmp_path / "l.mp4", scene.lefts, fps=10)
    right = write_video(tmp_path / "r.mp4", scene.rights, fps=25)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        assert len(list(TwoVideoSource(left, right))) == 6
    assert "different frame rates (left 10.000 fps, right 25.000 fps)" in caplog.text


def test_a_raw_mjpeg_streams_guessed_rate_is_left_out_of_the_comparison(tmp_path, scene, caplog):
    """A raw MJPEG stream (no container) reads as FFmpeg's 25 fps guess: beside a real 10 fps video it warned of
    "different frame rates"; the stream's rate is the video's."""
    from rtstereo.sources.video import raw_stream

    left = write_video(tmp_path / "l.avi", scene.lefts, fps=10)
    right = tmp_path / "r.mjpeg"
    right.write_bytes(b"".join(cv2.imencode(".jpg", frame[:, :, ::-1])[1].tobytes() for frame in scene.rights))
    assert (raw_stream(right), raw_stream(left)) == ("MJPEG", None)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = TwoVideoSource(left, right)
        assert len(list(source)) == len(scene.rights)
    assert "different frame rates" not in caplog.text and source.fps == pytest.approx(10.0)


def test_missing_and_unreadable_videos(tmp_path, two_videos):
    with pytest.raises(InputError, match="right video not found"):
        TwoVideoSource(two_videos[0], tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(InputError, match="cannot read left video"):
        TwoVideoSource(junk, two_videos[1])


# -- side by side ----------------------------------------------------------------------------------


def test_side_by_side_video_is_split_and_swapped(sbs_video, scene):
    pairs = list(SideBySideVideoSource(sbs_video))
    assert len(pairs) == 6 and pairs[0].size_hw == (64, 128)
    background, rectangle = medians(pairs[1], scene.rectangles[1])
    assert (background, rectangle) == (
        pytest.approx(BACKGROUND_PX, abs=0.5),
        pytest.approx(RECTANGLE_PX, abs=0.5),
    )
    swapped = next(iter(SideBySideVideoSource(sbs_video, swap=True)))
    np.testing.assert_array_equal(swapped.left, pairs[0].right)
    np.testing.assert_array_equal(swapped.right, pairs[0].left)
    strided = SideBySideVideoSource(sbs_video, start=1, stride=2)
    picked = list(strided)
    assert strided.expected_frames == 3 and [p.index for p in picked] == [1, 3, 5]
    np.testing.assert_array_equal(picked[1].left, pairs[3].left)  # the frame of that index, not another


@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_bool_options_of_the_sources_take_only_a_bool(sbs_video, value):
    # "no" was true in an `if`: swap="no" swapped the views
    expected = f"expected True or False, got {type(value).__name__} {value!r}"
    with pytest.raises(InputError, match=re.escape(f"swap: {expected}")):
        SideBySideVideoSource(sbs_video, swap=value)
    with pytest.raises(InputError, match=re.escape(f"swap: {expected}")):
        UVCSource(str(sbs_video), swap=value)
    with pytest.raises(InputError, match=re.escape(f"swap: {expected}")):
        open_camera("uvc:0", swap=value)
    with pytest.raises(InputError, match=re.escape(f"color: {expected}")):
        open_camera("uvc:0", color=value)
    with pytest.raises(InputError, match=re.escape(f"color: {expected}")):
        OakSource(start_device=lambda dai: None, color=value)
    with pytest.raises(InputError, match=re.escape(f"align_rows: {expected}")):
        FramePreparer(align_rows=value)
    assert SideBySideVideoSource(sbs_video, swap=np.bool_(True)).swap is True


def test_side_by_side_file_url_is_read_locally(sbs_video):
    assert resolve_video(sbs_video.as_uri()) == sbs_video
    assert len(list(SideBySideVideoSource(sbs_video.as_uri(), stride=4))) == 2


def _fake_yt_dlp(monkeypatch, info: dict) -> list[str]:
    """A yt_dlp module whose download writes ``$RTSTEREO_CACHE/videos/KEY.mp4`` and returns ``info``; the URLs
    it was asked for."""
    import sys
    import types

    fetched = []

    class YoutubeDL:
        def __init__(self, options):
            self.template = options["outtmpl"]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def extract_info(self, url, download):
            fetched.append(url)
            path = Path(self.template.replace("%(ext)s", "mp4"))
            path.write_bytes(b"a video")
            return {**info, "requested_downloads": [{"filepath": str(path)}]}

    fake = types.ModuleType("yt_dlp")
    fake.YoutubeDL, fake.utils = YoutubeDL, types.SimpleNamespace(DownloadError=RuntimeError)
    monkeypatch.setitem(sys.modules, "yt_dlp", fake)
    return fetched


def test_a_download_cut_short_is_fetched_again_not_taken_as_cached(stream_cache, monkeypatch):
    import hashlib

    from rtstereo.sources.video import download_video

    fetched = _fake_yt_dlp(monkeypatch, {})
    url = "https://example.com/clip.mp4"
    (stream_cache / "videos").mkdir(parents=True)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    (stream_cache / "videos" / f"{key}.mp4.part").write_bytes(b"half a vid")  # yt-dlp's partial download
    assert download_video(url) == stream_cache / "videos" / f"{key}.mp4" and fetched == [url]
    assert download_video(url) == stream_cache / "videos" / f"{key}.mp4" and fetched == [url]  # now cached


def test_a_run_waits_for_the_download_of_the_same_video_url_by_another_and_reads_it(stream_cache, monkeypatch, caplog):
    """Two runs that downloaded one URL at once both wrote yt-dlp's KEY.mp4.part: the cached video came out longer
    than the file (the second's bytes appended), and the second failed with yt-dlp's 'Unable to rename file'."""
    import hashlib
    import logging
    import threading

    from tests.conftest import lock_held_elsewhere

    from rtstereo.sources.video import download_video

    fetched = _fake_yt_dlp(monkeypatch, {})
    url = "https://example.com/clip.mp4"
    folder = stream_cache / "videos"
    folder.mkdir(parents=True)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    said, results = threading.Event(), []

    class Waiting(logging.Handler):
        def emit(self, record):
            if "waiting for it" in record.getMessage():
                said.set()
                results.append(record.getMessage())

    handler = Waiting()
    caplog.set_level(logging.INFO, logger="rtstereo.stream")
    logging.getLogger("rtstereo.stream").addHandler(handler)
    try:
        with lock_held_elsewhere(folder / f".{key}.lock") as pid:
            second = threading.Thread(target=lambda: results.append(download_video(url)))
            second.start()
            for _ in range(1200):  # a minute at most: it says it waits at once
                if said.wait(0.05) or not second.is_alive():
                    break
            assert said.is_set() and second.is_alive(), "it did not wait for the download under way"
            (folder / f"{key}.mp4").write_bytes(b"the first run's video")  # its download is renamed into place
        second.join(60)
    finally:
        logging.getLogger("rtstereo.stream").removeHandler(handler)
    assert fetched == [] and results[-1] == folder / f"{key}.mp4"
    assert f"{url}: process {pid} on " in results[0] and results[0].endswith(
        "downloading it into the cache; waiting for it"
    )
    assert sorted(p.name for p in folder.iterdir()) == [f"{key}.mp4"]


def test_a_video_url_is_read_from_its_sharpest_h264_stream_not_its_small_file_with_sound(stream_cache, monkeypatch):
    """YouTube serves 360p only with sound in one file, its 1080p H.264 without: the 360p file was chosen, a third of
    the resolution of each view of a side-by-side video. yt-dlp's own format choice, on YouTube's kinds of formats."""
    yt_dlp = pytest.importorskip("yt_dlp")
    from rtstereo.sources.video import download_video

    def video(format_id, ext, vcodec, acodec, height):
        return {"format_id": format_id, "ext": ext, "vcodec": vcodec, "acodec": acodec, "height": height,
                "width": height * 16 // 9 if height else None, "url": f"https://example.com/{format_id}",
                "protocol": "https"}  # fmt: skip

    formats = [
        video("18", "mp4", "avc1.42001E", "mp4a.40.2", 360),  # the one file with sound
        video("140", "m4a", "none", "mp4a.40.2", None),
        video("137", "mp4", "avc1.640028", "none", 1080),
        video("248", "webm", "vp9", "none", 1080),
        video("399", "mp4", "av01.0.08M.08", "none", 1080),  # AV1: not every FFmpeg OpenCV ships decodes it
    ]
    chosen = []

    class Offline(yt_dlp.YoutubeDL):  # yt-dlp's format choice on the formats above, with download_video's options
        def extract_info(self, url, download=True):
            page = {"id": "x", "title": "x", "formats": formats, "webpage_url": url, "extractor": "youtube"}
            info = self.process_ie_result({**page, "extractor_key": "Youtube"}, download=False)
            chosen.append(info["format_id"])
            template = self.params["outtmpl"]  # a dict of templates in yt-dlp's newer releases
            path = Path((template["default"] if isinstance(template, dict) else template).replace("%(ext)s", "mp4"))
            path.write_bytes(b"a video")
            return {**info, "requested_downloads": [{"filepath": str(path)}]}

    monkeypatch.setattr(yt_dlp, "YoutubeDL", Offline)
    assert download_video("https://www.youtube.com/watch?v=x").suffix == ".mp4"
    assert chosen == ["137"]
    formats[:] = [video("mp4", "mp4", None, None, None)]  # a direct link: nothing known of its codecs
    chosen.clear()
    download_video("https://example.com/clip.mp4")
    assert chosen == ["mp4"]


def test_a_video_cache_folder_that_cannot_be_made_is_one_line_as_for_image_urls(tmp_path, monkeypatch):
    """A traceback (NotADirectoryError), where predict's image URLs said it in one line."""
    from rtstereo.sources.video import download_video

    _fake_yt_dlp(monkeypatch, {})
    (tmp_path / "cache").write_text("a file where the cache should be")
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError) as raised:
        download_video("https://example.com/clip.mp4")
    folder = tmp_path / "cache" / "videos"
    assert str(raised.value) == (
        f"cannot download https://example.com/clip.mp4: cannot create the cache folder {folder}: "
        f"{tmp_path / 'cache'} is a file, not a folder"
    )


def test_a_playlist_url_is_refused(stream_cache, monkeypatch):
    from rtstereo.sources.video import download_video

    _fake_yt_dlp(monkeypatch, {"_type": "playlist"})
    with pytest.raises(InputError, match="is a playlist or holds no single video: give the URL of one video"):
        download_video("https://example.com/list")


@pytest.mark.parametrize(
    "said",
    [
        "ERROR: [youtube:truncated_id] abc: URL {url} looks truncated.",
        # yt-dlp's network errors end in their repr, which said the cause twice, where predict's download says it once
        "ERROR: [generic] v: Unable to download webpage: HTTPConnection(host='h', port=9): Failed to establish a new "
        "connection: [Errno 111] Connection refused (caused by TransportError(\"HTTPConnection(host='h', port=9): "
        'Failed to establish a new connection: [Errno 111] Connection refused"))',
        # an HTTP error's cause is its repr in angle brackets (yt-dlp 2026.11 on a direct link that gives 404)
        "ERROR: [generic] v: Unable to download webpage: HTTP Error 404: File not found (caused by <HTTPError 404: "
        "File not found>)",
    ],
)
def test_a_failed_download_is_one_sentence(stream_cache, monkeypatch, said):
    import sys
    import types

    class DownloadError(Exception):
        pass

    class YoutubeDL:
        def __init__(self, options):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def extract_info(self, url, download):
            raise DownloadError(said.format(url=url))

    fake = types.ModuleType("yt_dlp")
    fake.YoutubeDL, fake.utils = YoutubeDL, types.SimpleNamespace(DownloadError=DownloadError)
    monkeypatch.setitem(sys.modules, "yt_dlp", fake)
    url = "https://www.youtube.com/watch?v=abc"
    with pytest.raises(InputError) as raised:
        TwoVideoSource(url, url)
    if "truncated" in said:
        assert str(raised.value).startswith(f"cannot fetch the video at {url}: [youtube:truncated_id] abc: URL ")
        assert "looks truncated. Check the address" in str(raised.value)
    elif "404" in said:
        assert str(raised.value) == (
            f"cannot fetch the video at {url}: [generic] v: Unable to download webpage: HTTP Error 404: File not "
            "found. Check the address (and the network), or download the video yourself and pass the file"
        )
    else:
        assert str(raised.value) == (
            f"cannot fetch the video at {url}: [generic] v: Unable to download webpage: HTTPConnection(host='h', "
            "port=9): Failed to establish a new connection: [Errno 111] Connection refused. Check the address (and "
            "the network), or download the video yourself and pass the file"
        )


def test_odd_side_by_side_width_is_refused(sbs_video, monkeypatch):
    """OpenCV's video writer rounds widths down to even, so no odd-width file can be written here:
    the reader reports an odd width instead (the check under test only sees that number)."""
    from rtstereo.sources import video

    class OddReader(video.VideoReader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.width = 255

    monkeypatch.setattr(video, "VideoReader", OddReader)
    with pytest.raises(InputError, match="255 px wide \\(odd\\); crop one column"):
        SideBySideVideoSource(sbs_video)
    with pytest.raises(InputError, match="odd"):
        split_side_by_side(np.zeros((4, 9, 3), np.uint8))


# -- image sequences -------------------------------------------------------------------------------


def test_image_folders_play_as_a_sequence(tmp_path):
    scene = render_scene(frames=3)
    for side, frames in (("L", scene.lefts), ("R", scene.rights)):
        (tmp_path / side).mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(tmp_path / side / f"{i:03d}.png"), frame[:, :, ::-1])
    assert is_image_sequence(str(tmp_path / "L")) and is_image_sequence(str(tmp_path / "R" / "*.png"))
    assert not is_image_sequence(str(tmp_path / "L" / "000.png"))
    (tmp_path / "take[1].mp4").write_bytes(b"")  # a video whose name holds glob characters
    assert not is_image_sequence(str(tmp_path / "take[1].mp4"))
    assert not is_image_sequence("https://example.com/clip.mp4?t=1*")  # a URL, not a glob
    source = ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R" / "*.png"), fps=5, start=1)
    pairs = list(source)
    assert source.expected_frames == 2 and [p.index for p in pairs] == [1, 2]
    assert [p.timestamp_s for p in pairs] == pytest.approx([0.2, 0.4])
    np.testing.assert_array_equal(pairs[0].left, scene.lefts[1])
    assert len(list(ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"), start=2))) == 1
    every_other = ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"), fps=5, stride=2)
    assert every_other.expected_frames == 2 and [(p.index, p.timestamp_s) for p in every_other] == [(0, 0.0), (2, 0.4)]
    assert ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"), start=1, stride=2).expected_frames == 1
    with pytest.raises(InputError, match=r"--start 3 is past the end of the image sequence \(3 pairs\)"):
        ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"), start=3)


def test_an_image_sequence_of_colour_left_and_grey_right_views_keeps_the_left_colours(tmp_path):
    """Each frame was made again from the views matched in grey: a video's point clouds and preview came out grey."""
    scene = render_scene(frames=2)
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
    for i, (left, right) in enumerate(zip(scene.lefts, scene.rights)):
        cv2.imwrite(str(tmp_path / "L" / f"{i}.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "R" / f"{i}.png"), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY))
    with pytest.warns(UserWarning, match="matched in grey"):
        pairs = list(ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"), fps=5))
    assert [(p.index, p.timestamp_s) for p in pairs] == [(0, 0.0), (1, 0.2)]
    for pair, left in zip(pairs, scene.lefts):
        np.testing.assert_array_equal(pair.coloured_left, left)


def test_image_sequences_numbered_without_leading_zeros_play_in_the_order_of_their_numbers(tmp_path):
    """Sorted by name, frame10 and frame11 came right after frame1: the stream jumped back and forth."""
    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for i in range(1, 12):
            cv2.imwrite(str(tmp_path / side / f"frame{i}.png"), np.full((8, 16, 3), 10 * i + (side == "R"), np.uint8))
    pairs = list(ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"), start=1, stride=3))
    assert [p.name for p in pairs] == ["frame2", "frame5", "frame8", "frame11"]
    assert [int(p.left[0, 0, 0]) for p in pairs] == [20, 50, 80, 110]
    assert [int(p.right[0, 0, 0]) for p in pairs] == [21, 51, 81, 111]  # each with its own right view


def test_image_sequences_numbered_differently_on_the_two_sides_pair_each_frame_with_its_own_right_view(tmp_path):
    """L_9/L_10 beside R_09/R_10: sorted by name, L_10 came first on the left and R_09 on the right, so each
    left frame met the other frame's right view (and the play order, by number, did not mend it)."""
    for side, names in (("L", ["L_8.png", "L_9.png", "L_10.png"]), ("R", ["R_08.png", "R_09.png", "R_10.png"])):
        (tmp_path / side).mkdir()
        for name in names:
            frame = int(name[2:-4])
            cv2.imwrite(str(tmp_path / side / name), np.full((8, 16, 3), 10 * frame + (side == "R"), np.uint8))
    for right in (str(tmp_path / "R"), str(tmp_path / "R" / "*.png")):
        pairs = list(ImageSequenceSource(str(tmp_path / "L"), right))
        assert [p.name for p in pairs] == ["L_8", "L_9", "L_10"]
        assert [(int(p.left[0, 0, 0]), int(p.right[0, 0, 0])) for p in pairs] == [(80, 81), (90, 91), (100, 101)]


def test_image_sequences_of_different_counts_are_refused(tmp_path):
    scene = render_scene(frames=2)
    for side, count in (("L", 2), ("R", 1)):
        (tmp_path / side).mkdir()
        for i in range(count):
            cv2.imwrite(str(tmp_path / side / f"{i}.png"), scene.lefts[i])
    with pytest.raises(InputError, match="left gives 2 images and right gives 1"):
        ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"))
    with pytest.raises(InputError, match="left gives 1 image and right gives 2"):  # was "1 images"
        ImageSequenceSource(str(tmp_path / "R"), str(tmp_path / "L"))
    (tmp_path / "R1").mkdir()
    cv2.imwrite(str(tmp_path / "R1" / "0.png"), scene.rights[0])
    with pytest.raises(InputError, match=r"--start 1 is past the end of the image sequence \(1 pair\)$"):
        ImageSequenceSource(str(tmp_path / "R"), str(tmp_path / "R1"), start=1)


# -- capture-stage preparation ---------------------------------------------------------------------


def test_resizing_is_announced_and_scales_the_calibration(caplog):
    pair = StereoPair(np.zeros((64, 128, 3), np.uint8), np.zeros((64, 128, 3), np.uint8), index=3, timestamp_s=0.3)
    calibration = Calibration(100.0, 100.0, 63.5, 63.5, 31.5, 0.1, 128, 64)
    prepare = FramePreparer(size_wh=(64, 32), calibration=calibration)
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        small = prepare(pair)
        prepare(pair)
    assert small.size_hw == (32, 64) and (small.index, small.timestamp_s) == (3, 0.3)
    assert small.calibration == calibration.scaled(0.5)
    assert caplog.text.count("resizing 64x128 frames to 32x64") == 1
    assert "disparity is in pixels of the 32x64 frames" in caplog.text
    # another aspect ratio: each axis by its own factor (x 0.5, y 0.25), pixel centres kept
    squeezed = FramePreparer(size_wh=(64, 16), calibration=calibration)(pair).calibration
    assert (squeezed.fx_px, squeezed.fy_px, squeezed.cx0_px, squeezed.cy_px) == (50.0, 25.0, 31.5, 7.5)
    assert (squeezed.width_px, squeezed.height_px) == (64, 16)


def test_resizing_to_another_aspect_ratio_is_a_warning_once(caplog):
    pair = StereoPair(np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320, 3), np.uint8))
    prepare = FramePreparer(size_wh=(100, 100))
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        prepare(pair)
        prepare(pair)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, caplog.text  # a warning: --quiet shows it
    assert "resizing 240x320 frames to 100x100" in warned[0].message
    assert "stretched (aspect ratio W/H 1.33 run at 1.00)" in warned[0].message
    caplog.clear()
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        FramePreparer(size_wh=(160, 120))(pair)  # the same aspect ratio: a notice
    assert [r.levelno for r in caplog.records] == [logging.INFO] and "stretched" not in caplog.text
    assert "did you mean" not in caplog.text


def test_a_size_written_width_first_is_named_the_right_way_round(caplog):
    """--size 160x120 on 240x320 frames (WxH where rtstereo reads HxW) was said to stretch them, without the size
    meant."""
    pair = StereoPair(np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320, 3), np.uint8))
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        FramePreparer(size_wh=(120, 160))(pair)
    (warned,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "resizing 240x320 frames to 160x120" in warned and "stretched (aspect ratio W/H 1.33 run at 0.75)" in warned
    assert warned.endswith("sizes are HxW, height first: did you mean --size 120x160?"), warned


def test_same_size_is_not_resized_and_calibration_of_another_size_is_refused():
    pair = StereoPair(np.zeros((64, 128, 3), np.uint8), np.zeros((64, 128, 3), np.uint8))
    assert FramePreparer(size_wh=(128, 64))(pair) is pair
    wrong = Calibration(100.0, 100.0, 63.5, 63.5, 31.5, 0.1, 1280, 720)
    with pytest.raises(
        InputError, match=r"calibration is for 720x1280 \(HxW\) images but the frames are 64x128 .another aspect"
    ):
        FramePreparer(calibration=wrong)(pair)


def test_a_calibration_of_the_frames_turned_90_degrees_says_so():
    """Portrait frames (a phone video turned upright by its rotation tag) with the landscape calibration were told
    only 'another aspect ratio', where predict names the turn; and another aspect ratio keeps its advice."""
    pair = StereoPair(np.zeros((128, 64, 3), np.uint8), np.zeros((128, 64, 3), np.uint8))
    landscape = Calibration(100.0, 100.0, 63.5, 63.5, 31.5, 0.1, 128, 64)
    with pytest.raises(InputError, match=r"are 128x64, the same turned 90 degrees: frames turned upright when read"):
        FramePreparer(calibration=landscape)(pair)
    with pytest.raises(InputError, match=r"are 128x64 \(another aspect ratio\): give the calibration"):
        FramePreparer(calibration=Calibration(100.0, 100.0, 63.5, 63.5, 49.5, 0.1, 128, 100))(pair)


def test_a_calibration_of_another_size_of_the_same_aspect_is_scaled_and_said_once(caplog):
    """video/live refused it while predict scales it (with a warning): a camera calibrated at 256x128."""
    pair = StereoPair(np.zeros((64, 128, 3), np.uint8), np.zeros((64, 128, 3), np.uint8))
    larger = Calibration(100.0, 100.0, 127.5, 127.5, 63.5, 0.1, 256, 128)
    prepare = FramePreparer(calibration=larger)
    with caplog.at_level(logging.INFO, "rtstereo.stream"):
        first, second = prepare(pair), prepare(pair)
    assert first.calibration == second.calibration == larger.scaled(0.5)
    assert (
        caplog.text.count("the calibration is for 128x256 (HxW) images; scaled by 0.5000 to these 64x128 frames") == 1
    )


class SwapRectifier:
    """Stands in for rtstereo.rectify.Rectifier: anything with rectify(left, right) -> (l, r, calib)."""

    def rectify(self, left, right):
        return right, left, Calibration(50.0, 50.0, 31.5, 31.5, 15.5, 0.2, 128, 64)


def test_rectifier_runs_before_resizing():
    left, right = np.zeros((64, 128, 3), np.uint8), np.full((64, 128, 3), 9, np.uint8)
    out = FramePreparer(size_wh=(64, 32), rectifier=SwapRectifier())(StereoPair(left, right))
    assert out.left.max() == 9 and out.right.max() == 0
    assert out.calibration.width_px == 64 and out.calibration.fx_px == pytest.approx(25.0)


class RemapRectifier:
    """A rectifier that resamples each view alike (a shift of a third of a pixel down and right)."""

    def rectify(self, left, right):
        ys, xs = np.mgrid[0 : left.shape[0], 0 : left.shape[1]].astype(np.float32) - np.float32(1 / 3)
        remapped = (cv2.remap(view, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) for view in (left, right))
        return *remapped, Calibration(50.0, 50.0, 63.5, 63.5, 31.5, 0.2, 128, 64)


def test_a_colour_left_view_beside_a_grey_right_one_is_rectified_and_resized_in_colour_too():
    """Rectified and resized from the grey view matched, the frame's left lost its colours (grey clouds, previews)."""
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="matched in grey"):
        pair = StereoPair(left, np.repeat(rng.integers(0, 256, (64, 128, 1), dtype=np.uint8), 3, axis=2))
    out = FramePreparer(size_wh=(64, 32), rectifier=RemapRectifier())(pair)
    assert out.left_colours is not None and out.left_colours.shape == (32, 64, 3)
    expected = cv2.resize(RemapRectifier().rectify(left, left)[0], (64, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out.coloured_left, expected)
    assert out.left.shape == (32, 64, 3) and (out.left[..., 0] == out.left[..., 2]).all()  # matched in grey still


@pytest.mark.parametrize("text", ["640", "axb", "4x4", "640x480x3"])
def test_bad_sizes(text):
    with pytest.raises(InputError, match="size"):
        parse_size_hw(text)


def _teddy_with_rows_off():
    """Middlebury 2003 teddy's views (``../shared``), and its right view moved 1.5 rows down."""
    from tests.conftest import shared_path

    from rtstereo.io.images import read_image

    teddy = shared_path("data", "real", "middlebury2003", "teddy")
    left, right = read_image(teddy / "im2.png"), read_image(teddy / "im6.png")
    height, width = right.shape[:2]
    off = cv2.warpAffine(right, np.float32([[1, 0, 0], [0, 1, 1.5]]), (width, height), borderMode=cv2.BORDER_REFLECT)
    return left, right, off


def test_align_rows_is_measured_once_on_the_first_judgeable_frame_and_applied_to_every_frame(caplog):
    from rtstereo.rectify import check_rectification

    left, right, off = _teddy_with_rows_off()
    flat = np.full_like(left, 128)  # too few features to judge: the preparer waits for a better frame
    prepare = FramePreparer(align_rows=True)
    with caplog.at_level(logging.INFO, logger="rtstereo.stream"):
        first = prepare(StereoPair(flat, flat))
        aligned = prepare(StereoPair(left, off))
        again = prepare(StereoPair(left, off))
    assert np.array_equal(first.right, flat) and prepare._align_tries == FramePreparer.ALIGN_TRIES
    assert check_rectification(left, aligned.right).misalignment_px < 0.4
    np.testing.assert_array_equal(again.right, aligned.right)  # the same maps, not measured again
    assert sum("--align-rows: rows off by up to" in r.getMessage() for r in caplog.records) == 1


def test_align_rows_on_rows_within_the_fits_uncertainty_says_the_figure_it_went_by(caplog):
    """It said "rows off by up to" the corners' figure (the fit extrapolated) beside "nothing to align", while the
    figure that decided it is the one less the fit's uncertainty."""
    from tests.conftest import shared_path

    from rtstereo.io.images import read_image
    from rtstereo.rectify import ALIGN_MIN_PX, check_rectification

    teddy = shared_path("data", "real", "middlebury2003", "teddy")
    left, right = read_image(teddy / "im2.png"), read_image(teddy / "im6.png")
    height, width = right.shape[:2]
    # OpenCV 4's warpAffine shifts by whole 1/32 px (0.32 -> 0.3125) where 5 shifts by 0.32: both land here
    right = cv2.warpAffine(right, np.float32([[1, 0, 0], [0, 1, 0.32]]), (width, height), borderMode=cv2.BORDER_REFLECT)
    check = check_rectification(left, right)
    # measured: 0.267, 0.307 on OpenCV 5.1; 0.263, 0.302 on 4.8 and 4.14 (0.35 gave 0.305, 0.343 there)
    assert check.supported_misalignment_px <= ALIGN_MIN_PX < check.misalignment_px, check
    prepare = FramePreparer(align_rows=True)
    with caplog.at_level(logging.INFO, logger="rtstereo.stream"):
        assert prepare(StereoPair(left, right)).right is right
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--align-rows")]
    assert said == (
        f"--align-rows: rows off by at most {check.supported_misalignment_px:.2f} px at the corners once the fit's "
        f"uncertainty is taken off (at most {ALIGN_MIN_PX:g} px is left alone; {check.matches} matched features): "
        "nothing aligned"
    ), said


def test_align_rows_gives_up_after_its_tries_and_leaves_frames_alone(caplog):
    flat = np.full((48, 64, 3), 128, np.uint8)
    prepare = FramePreparer(align_rows=True)
    with caplog.at_level(logging.INFO, logger="rtstereo.stream"):
        for _ in range(FramePreparer.ALIGN_TRIES + 3):
            assert prepare(StereoPair(flat, flat)).right is flat
    assert sum("too few matched features" in r.getMessage() for r in caplog.records) == 1


def test_align_rows_says_when_the_stream_ended_before_the_rows_could_be_measured():
    """Said at the 30th frame only: a shorter stream of plain frames went through unaligned without a word."""
    flat = np.full((48, 64, 3), 128, np.uint8)
    prepare = FramePreparer(align_rows=True)
    assert prepare.align_rows_unmeasured() is None  # no frame yet
    for _ in range(4):
        prepare(StereoPair(flat, flat))
    assert prepare.align_rows_unmeasured() == (
        "--align-rows: the stream's 4 frames gave too few matched features (or too few that agree on the rows) to "
        "measure the rows; frames went through unaligned"
    )
    for _ in range(FramePreparer.ALIGN_TRIES):
        prepare(StereoPair(flat, flat))
    assert prepare.align_rows_unmeasured() is None  # said at the 30th frame
    assert FramePreparer().align_rows_unmeasured() is None


def test_align_rows_measures_again_when_the_frames_change_size(caplog):
    from rtstereo.rectify import check_rectification

    left, right, off = _teddy_with_rows_off()
    prepare = FramePreparer(align_rows=True)
    with caplog.at_level(logging.INFO, logger="rtstereo.stream"):
        prepare(StereoPair(left, off))
        narrower = prepare(StereoPair(np.ascontiguousarray(left[:, 10:]), np.ascontiguousarray(off[:, 10:])))
    assert check_rectification(left[:, 10:], narrower.right).misalignment_px < 0.3
    assert any("the frames changed size: measuring the rows again" in r.getMessage() for r in caplog.records)


def test_a_frame_that_does_not_decode_is_passed_over_and_two_videos_stay_in_step(tmp_path, caplog):
    """A damaged frame in the middle of a video (MJPEG: every read of it fails, the frames after it read again) ended
    the stream there, said as a file "cut short", and the frames after it were never used."""
    scene = render_scene(frames=12)
    left = damaged_video(tmp_path / "l.avi", scene.lefts, damaged=(4,))
    right = damaged_video(tmp_path / "r.avi", scene.rights, damaged=())
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = TwoVideoSource(left, right)
        pairs = list(source)
    assert [pair.index for pair in pairs] == [0, 1, 2, 3, *range(5, 12)]
    for pair in pairs:  # each view the frame of its index: the right video passed over its frame 4 too
        for view, frames in ((pair.left, scene.lefts), (pair.right, scene.rights)):
            errors = [np.abs(view.astype(np.float32) - frame).mean() for frame in frames]
            assert int(np.argmin(errors)) == pair.index, (pair.index, errors)
    assert [round(pair.timestamp_s, 3) for pair in pairs] == [i / 10 for i in (0, 1, 2, 3, *range(5, 12))]
    assert source.stats() == {"damaged_frames": [4]}
    assert caplog.messages == [
        "frame 4 of the left video l.avi does not decode (damaged): passed over; the stream goes on with the frames "
        "after it (it has no PNG, and a black frame stands in its place in the mp4)"
    ]


def test_damaged_frames_of_a_side_by_side_video_with_a_stride(tmp_path, caplog):
    scene = render_scene(frames=12)
    frames = [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)]
    video = damaged_video(tmp_path / "sbs.avi", frames, damaged=(0, 5, 6, 8))  # 5 is passed over by the stride
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = SideBySideVideoSource(video, stride=2)
        pairs = list(source)
    assert [pair.index for pair in pairs] == [2, 4, 10]
    assert source.stats() == {"damaged_frames": [0, 6, 8]}
    assert [m.split(" of the ")[0] for m in caplog.messages] == ["frame 0", "frames 6 to 8 (2 frames)"]


def test_damaged_frames_after_the_last_used_one_are_said_when_a_stride_passes_over_the_frames_after_them(
    tmp_path, caplog
):
    """Frames 4 (left) and 7 (right) of --start 1 --stride 3 did not decode, and frames 8 and 9, which the stride
    passes over, did: the stream ended at frame 10 with the two held back as pending, unsaid and not in the summary."""
    scene = render_scene(frames=10)
    left = damaged_video(tmp_path / "l.avi", scene.lefts, damaged=(4,))
    right = damaged_video(tmp_path / "r.avi", scene.rights, damaged=(7,))
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = TwoVideoSource(left, right, start=1, stride=3)
        pairs = list(source)
    assert [pair.index for pair in pairs] == [1]
    assert source.stats() == {"damaged_frames": [4, 7]}
    assert caplog.messages == [
        "frames 4 to 7 (2 frames) of the left video l.avi and right video r.avi do not decode (damaged): passed over; "
        "they were the last frames the stream used (they have no PNGs, nor frames in the mp4)"
    ]
    frames = [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)]
    video = damaged_video(tmp_path / "sbs.avi", frames, damaged=(8,))
    caplog.clear()
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = SideBySideVideoSource(video, stride=2)
        pairs = list(source)
    assert [pair.index for pair in pairs] == [0, 2, 4, 6]
    assert source.stats() == {"damaged_frames": [8]}
    assert [m.split(": passed over; ")[1] for m in caplog.messages] == [
        "it was the last frame the stream used (it has no PNG, nor a frame in the mp4)"
    ]


def test_a_start_whose_only_frames_are_damaged_is_said_so_not_past_the_end(tmp_path):
    """--start 7 --stride 5 of two 10-frame videos, the right one's frame 7 damaged: "--start 7 is past the end of
    the left video l.avi (its header claims 10: the file is cut short or damaged)", of neither the video nor the
    frame at fault."""
    scene = render_scene(frames=10)
    left = damaged_video(tmp_path / "l.avi", scene.lefts, damaged=(4,))
    right = damaged_video(tmp_path / "r.avi", scene.rights, damaged=(7,))
    with pytest.raises(InputError) as raised:
        list(TwoVideoSource(left, right, start=7, stride=5))
    assert str(raised.value) == (
        "frame 7 of the right video r.avi does not decode (damaged), and --start 7 and --stride 5 select no other "
        "frame: no frame to compute"
    )
    with pytest.raises(InputError, match=r"^frames 4, 7 of the left video l.avi and right video r.avi do not decode"):
        list(TwoVideoSource(left, right, start=4, stride=3))
    frames = [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)]
    video = damaged_video(tmp_path / "sbs.avi", frames, damaged=(3,))
    with pytest.raises(InputError, match=r"^frame 3 of the side-by-side video sbs.avi does not decode \(damaged\)"):
        list(SideBySideVideoSource(video, start=3, stride=10))


def test_damaged_frames_at_the_end_of_a_video_are_where_it_ends(tmp_path, caplog):
    """The last frames not decoding, none after them, are the end of the file, not damaged frames passed over."""
    scene = render_scene(frames=10)
    frames = [np.concatenate(p, axis=1) for p in zip(scene.lefts, scene.rights)]
    video = damaged_video(tmp_path / "sbs.avi", frames, damaged=(8, 9))
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = SideBySideVideoSource(video, stride=2)
        pairs = list(source)
    assert [pair.index for pair in pairs] == [0, 2, 4, 6]
    assert source.stats() == {}
    assert not any("damaged): passed over" in m for m in caplog.messages), caplog.messages


def turned_video(path: Path, frames: list[np.ndarray], degrees: int) -> Path:
    """An mp4 of ``frames`` whose track header asks players to turn it by ``degrees`` (90 or 180), as a phone's."""
    data = bytearray(write_video(path, frames).read_bytes())
    at = data.index(b"tkhd") + 4
    assert data[at] == 0, "a version 0 track header"
    at += 4 + 4 + 4 + 4 + 4 + 4 + 8 + 2 + 2 + 2 + 2  # version, flags, times, track, duration, layer, volume: the matrix
    one, minus_one, w = 1 << 16, (-1 << 16) & 0xFFFFFFFF, 1 << 30
    assert data[at : at + 36] == struct.pack(">9I", one, 0, 0, 0, one, 0, 0, 0, w)
    turn = {90: (0, one, 0, minus_one, 0, 0, 0, 0, w), 180: (minus_one, 0, 0, 0, minus_one, 0, 0, 0, w)}[degrees]
    data[at : at + 36] = struct.pack(">9I", *turn)
    path.write_bytes(bytes(data))
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_ORIENTATION_META) == degrees
    capture.release()
    return path


def test_two_videos_turned_differently_by_their_metadata_are_said(tmp_path, caplog):
    """A phone's video whose metadata turns it 180 degrees, beside one that is not turned: OpenCV plays each upright,
    so one view lay upside down against the other, at one size, without a word (and 90 degrees apart: 'differ in frame
    size', without why)."""
    scene = render_scene(frames=3)
    right = write_video(tmp_path / "r.mp4", scene.rights)
    left = turned_video(tmp_path / "l.mp4", scene.lefts, 180)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        TwoVideoSource(left, right)
    assert caplog.messages == [
        "the two videos are read turned differently: the left video's metadata turns it by 180 degrees, the right "
        "video's by 0 (OpenCV plays each upright as its metadata says); if the two cameras were held alike, one view "
        "now lies turned against the other and its disparity is meaningless: give both videos the same rotation"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        TwoVideoSource(left, turned_video(tmp_path / "r180.mp4", scene.rights, 180))
    assert caplog.messages == []
    with pytest.raises(InputError, match=r"one size; the two videos are read turned differently: the left video's "):
        TwoVideoSource(turned_video(tmp_path / "l90.mp4", scene.lefts, 90), right)


def test_a_raw_motion_jpeg_stream_plays_and_is_not_taken_for_a_still_image(tmp_path):
    """A raw MJPEG stream (an IP camera's .mjpeg: JPEGs one after another) gives no frame count and begins with a
    JPEG's signature: it was refused as "a still image, not a video"; a still image without a frame count still is."""
    scene = render_scene(frames=6)
    video = tmp_path / "sbs.mjpeg"
    video.write_bytes(
        b"".join(
            cv2.imencode(".jpg", cv2.cvtColor(np.concatenate(p, axis=1), cv2.COLOR_RGB2BGR))[1].tobytes()
            for p in zip(scene.lefts, scene.rights)
        )
    )
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) <= 0  # no count, as the test needs
    assert [pair.index for pair in SideBySideVideoSource(video, start=1, stride=2)] == [1, 3, 5]
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.concatenate([scene.lefts[0], scene.rights[0]], axis=1))
    with pytest.raises(InputError, match="still.png is a still image, not a video"):
        SideBySideVideoSource(still)


def test_a_video_cut_short_is_not_taken_for_damaged_frames(tmp_path, caplog):
    """Every read past the data of a file cut short fails too, its header claiming more: no frame is said damaged."""
    scene = render_scene(frames=40)
    video, held = cut_video(tmp_path / "l.avi", scene.lefts)
    right = write_video(tmp_path / "r.mp4", scene.rights)
    with caplog.at_level(logging.WARNING, "rtstereo.stream"):
        source = TwoVideoSource(video, right)
        pairs = list(source)
    assert len(pairs) == held and source.stats() == {}
    assert caplog.messages == [
        f"the left video l.avi ended after {held} frames although its header claims 40: the file is cut short or "
        "damaged; the stream stops there"
    ]


def test_a_second_ctrl_c_waits_for_the_other_videos_decoder():
    """Two videos decode at once, the right on a second thread: Ctrl-C as the left was read, then again while the
    right's read was awaited, left the decoder thread in OpenCV as the readers were released and the process ended
    (it could abort as Python finalized, "terminate called without an active exception", as `rtstereo synth` did)."""
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from rtstereo.sources.video import _both

    decoding, finished = threading.Event(), threading.Event()

    def right():
        decoding.set()
        time.sleep(0.2)  # the main thread waits for this read by now
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C again
        time.sleep(0.3)
        finished.set()

    def left():
        decoding.wait(5.0)
        raise KeyboardInterrupt  # Ctrl-C as the left video is read

    pool = ThreadPoolExecutor(1)
    try:
        with pytest.raises(KeyboardInterrupt):
            _both(pool, left, right)
        assert finished.is_set()
    finally:
        pool.shutdown(wait=True)


def test_a_video_source_expands_the_home_folder_and_refuses_what_is_no_path(sbs_video, monkeypatch):
    """`SideBySideVideoSource("~/sbs.mp4")` was "not found" (images expand it), and None "not found: None"."""
    from rtstereo.sources.video import SideBySideVideoSource, TwoVideoSource

    monkeypatch.setenv("HOME", str(sbs_video.parent))
    assert SideBySideVideoSource("~/sbs.mp4").path == sbs_video
    with pytest.raises(
        InputError, match=r"^side-by-side video: expected a video file or URL \(str or Path\), got NoneType"
    ):
        SideBySideVideoSource(None)
    with pytest.raises(InputError, match=r"^right video: expected a video file or URL \(str or Path\), got int 3$"):
        TwoVideoSource(sbs_video, 3)
