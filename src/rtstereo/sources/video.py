"""Video sources: two video files (left, right), or one side-by-side video from a file or a URL.

Bad input is answered before the first frame where it can be: two videos of different sizes are
refused, different frame rates give a warning, different lengths stop at the shorter one (said when
it is known up front, and again when one video really ends first). A video that ends before the frame
count its header claims (a file cut short) is named in a warning with both counts.

URLs (YouTube and the other sites ``yt-dlp`` knows, or a direct link to a video file) are downloaded
once with ``yt-dlp`` into the rtstereo cache (``$RTSTEREO_CACHE/videos``) and read from there: a
local file seeks and decodes reliably, a stream through OpenCV does not.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, require, require_bool
from ..io.atomic import os_reason
from ..io.download import cache_dir, is_url
from ..io.lock import FileLock, holder_text
from ..io.quiet import ffmpeg_quietened, native_output_held
from ..pools import wait_through_interrupts
from ..sinks.video import MPEG4_MAX_FPS
from ..text import counted, first_few, is_utf8, shown
from ..types import StereoPair
from .base import FrameSource, check_side_by_side_width, check_start_stride, split_side_by_side

log = logging.getLogger("rtstereo.stream")

# The highest frame rate a video's header is believed (the most an mp4 stores, the bound the mp4 writer checks): a
# high-speed camera's 1200 fps video was taken for no rate (the bound was 1000), and its mp4 recorded at the model's
# pace; above it, a container's time base (90000) read as a rate.
MAX_HEADER_FPS = float(MPEG4_MAX_FPS)
FPS_TOLERANCE = 0.01  # relative difference of frame rates below which two videos count as equal
# Frames a file may fall short of its header's count unsaid: containers without a frame index give a
# count estimated from duration x frame rate, which rounding can put one frame too high.
FRAME_COUNT_SLACK = 1
# Frames in a row that do not decode, before the header's count, passed over as damaged; a longer run is where the
# file ends, at the first of them (a file cut short keeps its header's count, and every read past its data fails).
MAX_DAMAGED_RUN = 25
DAMAGED = "damaged"  # what VideoReader.read returns for a frame that does not decode while frames follow it
# yt-dlp's choice of a video URL's file: the best H.264 mp4 (OpenCV decodes it with any FFmpeg), with or without sound,
# so that a site that serves its sharp streams without sound is not read from its small file with sound (YouTube: its
# 1080p H.264 stream, not its 360p file with sound); then any mp4 with video, any file with video, a video stream alone.
VIDEO_URL_FORMAT = (
    "best*[ext=mp4][vcodec^=avc1]/best[ext=mp4][vcodec!=none]/best[vcodec!=none]/bestvideo[ext=mp4]/bestvideo/best"
)


class VideoReader:
    """One video file read with OpenCV as uint8 RGB frames.

    Args:
        path: the video file.
        label: how messages call it (``left video``).
        images_command: the rtstereo command a still image given as a video is sent to (``predict``; ``adapt``
            takes image pairs too).
        name: what messages call the file (the URL it was downloaded from); its path by default.

    Raises:
        InputError: missing file, or a file OpenCV cannot decode.
    """

    def __init__(
        self, path: str | Path, label: str = "video", images_command: str = "predict", name: str | None = None
    ):
        self.path = Path(path)
        self.label = label
        self.name = name or str(self.path)
        if self.path.is_dir():
            raise InputError(f"{label} {self.path} is a folder, not a video file")
        if not self.path.is_file():
            raise InputError(f"{label} not found: {self.path}")
        if not is_utf8(self.path):  # OpenCV crashed (a segmentation fault) on a name that is not UTF-8
            raise InputError(
                f"cannot read {label} {shown(self.path)}: OpenCV's video reader takes only names in UTF-8, and this "
                "path is not (bytes from another encoding): rename the file or link it under a name in UTF-8"
            )
        with native_output_held() as noise, ffmpeg_quietened():  # FFmpeg's own lines about a file it cannot open
            self.capture = cv2.VideoCapture(str(self.path))
            if not self.capture.isOpened():
                noise.discard()
        if not self.capture.isOpened():
            raise InputError(f"cannot read {label} {self.name}: not a video OpenCV (FFmpeg) can open, or damaged")
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        # the turn the file's metadata asks for (a phone's video), which OpenCV applies to its frames and sizes
        self.rotation_deg = int(self.capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps: float | None = fps if 0 < fps <= MAX_HEADER_FPS else None
        # A raw stream has no container to hold a rate: FFmpeg says its default, 25 fps, which is no measure of it.
        self.fps_guessed = raw_stream(self.path) is not None
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if count > 0 else None
        self.position = 0  # index of the next frame read() returns
        self.downloaded = False  # the file is a web URL's download in the cache (open_video sets it)
        self.ended_at: int | None = None  # the position where decoding found no further frame
        self._failing_since: int | None = None  # the first of the frames in a row that did not decode, up to here
        self.last_decoded: int | None = None  # the number of the last frame that decoded (read, or passed over by skip)
        if self.width <= 0 or self.height <= 0:
            self.release()
            if Path(self.path).suffix.lower() in _image_suffixes():  # a valid one is refused below as a still image
                raise InputError(
                    f"cannot read {label} {self.name}: named as an image, not a video, and not an image OpenCV can "
                    f"decode either (damaged?); for a pair of images use rtstereo {images_command} LEFT RIGHT"
                )
            raise InputError(f"cannot read {label} {self.name}: it reports no frame size (no video stream?)")
        if is_still_image(self.path, self.frame_count):
            # FFmpeg plays a still image as a one-frame video: the run would "succeed" on one frame.
            self.release()
            side_by_side = "side-by-side" in label
            raise InputError(still_image_message(f"{label} {self.name}", side_by_side, images_command))

    def seek(self, frame: int) -> None:
        """Move to ``frame`` (0-based) so that :meth:`read` returns it next."""
        if frame <= 0:
            return
        if self.capture.set(cv2.CAP_PROP_POS_FRAMES, frame) and int(self.capture.get(cv2.CAP_PROP_POS_FRAMES)) == frame:
            self.position = frame
            return
        # The container does not seek by frame: decode forward instead (exact, slower).
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.position = 0
        self.skip(frame)

    def skip(self, count: int) -> int:
        """Pass over ``count`` frames without converting them; returns how many were there (damaged ones too)."""
        for done in range(count):
            if not self.capture.grab():
                if not self._passed_damaged():
                    return done
                continue
            self._failing_since = None
            self.last_decoded = self.position
            self.position += 1
        return count

    def read(self) -> tuple[np.ndarray, float] | str | None:
        """The next frame as uint8 RGB ``(H, W, 3)`` with its time in seconds; ``None`` at the end.

        A frame that does not decode before the frame count the header claims is :data:`DAMAGED`, the reader then at
        the frame after it (FFmpeg passes over the packet it could not decode): an intra-coded video (MJPEG) with a
        bad frame reads again after it. :data:`MAX_DAMAGED_RUN` frames in a row that do not decode are the end, at
        the first of them: a file cut short keeps its header's frame count.
        """
        ok, frame = self.capture.read()
        if not ok or frame is None:
            return DAMAGED if self._passed_damaged() else None
        self._failing_since = None
        self.last_decoded = self.position
        # POS_MSEC is the time of the frame just read; some containers report 0 throughout.
        position_ms = float(self.capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
        if position_ms > 0 or self.position == 0:
            timestamp_s = position_ms / 1e3
        else:
            timestamp_s = self.position / self.fps if self.fps else 0.0
        self.position += 1
        if frame.ndim == 2:
            return np.repeat(frame[:, :, None], 3, axis=2), timestamp_s
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), timestamp_s

    def _passed_damaged(self) -> bool:
        """After a frame that did not decode: pass over it as damaged (``True``, the reader at the next frame), or end
        the video at the first of the frames in a row that did not decode (``False``, :attr:`ended_at` set)."""
        if self._failing_since is None:
            self._failing_since = self.position
        claimed = self.frame_count is not None and self.position < self.frame_count - FRAME_COUNT_SLACK
        if claimed and self.position + 1 - self._failing_since < MAX_DAMAGED_RUN:
            self.position += 1
            return True
        self.ended_at = self._failing_since
        return False

    def nothing_from(self, start: int, given: bool = True) -> InputError:
        """The error for a stream that gave no frame from ``start`` on: the video ended at or before it, which the
        header's frame count (checked up front) did not show, as in a file cut short. From frame 0: a video that
        opens but gives no frame at all (a header and no data), which ran as an empty stream with exit code 0.
        ``given``: ``start`` is the user's ``--start``, not the first frame of one of Ray's frame ranges (whose
        error told the user to "give a smaller --start" that was never given)."""
        if start == 0:
            claims = f" (its header claims {self.frame_count}: the file is cut short or damaged)"
            if self.downloaded:  # no video either, as a still image or a web page: not kept, fetched again next run
                self.path.unlink(missing_ok=True)
            return InputError(f"the {self.label} {self._short_name} gives no frame{claims if self.frame_count else ''}")
        cut_short = self.ended_at is not None and self.ended_at < start
        held = f"it holds {counted(self.ended_at, 'frame')}" if cut_short else ""
        claims = f"its header claims {self.frame_count}" if self.frame_count is not None else ""
        told = "; ".join(part for part in (held, claims) if part)
        cut = ": the file is cut short or damaged" if self.frame_count is not None and self.frame_count > start else ""
        details = f" ({told}{cut})" if told else ""
        if not given:
            return InputError(f"the {self.label} {self._short_name} ended before frame {start}{details}")
        return InputError(
            f"--start {start} is past the end of the {self.label} {self._short_name}{details}; give a smaller --start"
        )

    def cut_short(self) -> str | None:
        """Why the video ended before the frame count its header claims, or ``None`` if it did not.

        A file cut mid-stream (an interrupted copy or download) keeps the header of the whole
        video; decoding simply stops where the data does.
        """
        if self.ended_at is None or self.frame_count is None or self.ended_at >= self.frame_count - FRAME_COUNT_SLACK:
            return None
        return (
            f"the {self.label} {self._short_name} ended after {counted(self.ended_at, 'frame')} although its header "
            "claims "
            f"{self.frame_count}: the file is cut short or damaged"
        )

    @property
    def _short_name(self) -> str:
        return self.path.name if self.name == str(self.path) else self.name

    def release(self) -> None:
        self.capture.release()


def open_video(video: str, path: Path, label: str, images_command: str = "predict") -> VideoReader:
    """The :class:`VideoReader` of a video argument resolved to ``path`` (:func:`resolve_video`): a web URL is
    named by its address in messages, and its download is not kept when it is no video OpenCV can read (a
    still image, a web page), so that the next run fetches it again rather than failing on the cached copy."""
    web = is_url(video) and urllib.parse.urlparse(video).scheme.lower() != "file"
    try:
        reader = VideoReader(path, label, images_command, name=video if web else None)
    except InputError:
        if web:
            path.unlink(missing_ok=True)
        raise
    reader.downloaded = web  # one that gives no frame at all is not kept either (VideoReader.nothing_from)
    return reader


def _image_suffixes() -> tuple[str, ...]:
    from ..datasets.readers import IMAGE_SUFFIXES  # here: the readers are not needed to play a video

    return IMAGE_SUFFIXES


def raw_stream(path: str | Path) -> str | None:
    """``"MJPEG"`` or ``"H.264/H.265"`` for a raw stream of that codec, with no container around it (whose frame rate
    FFmpeg guesses as 25 fps), else ``None``: told by its first bytes, a JPEG's start of image or an Annex B start
    code before a NAL unit's header (its first bit 0; MPEG-1/2 and MPEG-PS start codes, whose headers hold the rate,
    go on with a byte of 0xB0 or more).

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.h264").write_bytes(bytes([0, 0, 0, 1, 0x67, 0x42]))
        >>> _ = (folder / "b.mpg").write_bytes(bytes([0, 0, 1, 0xBA, 0x44, 0]))
        >>> raw_stream(folder / "a.h264"), raw_stream(folder / "b.mpg")
        ('H.264/H.265', None)
    """
    try:
        with open(path, "rb") as file:
            head = file.read(5)
    except OSError:
        return None
    if head[:3] == b"\xff\xd8\xff":
        return "MJPEG"
    after = head[4:5] if head[:4] == b"\x00\x00\x00\x01" else head[3:4] if head[:3] == b"\x00\x00\x01" else b""
    return "H.264/H.265" if after and after[0] < 0x80 else None


def is_still_image(path: str | Path, frame_count: float | None) -> bool:
    """Whether a file that FFmpeg opened as a video is a still image (it plays one as a one-frame video): OpenCV's
    image readers know its signature and it has at most one frame (an animated GIF has more, and plays).

    A file whose header gives no frame count is a still image only if it gives no second frame: a raw Motion JPEG
    stream (``.mjpeg``, as IP cameras record) begins as a JPEG does, and was refused as a still image."""
    if frame_count is not None and frame_count > 1:
        return False
    if not (Path(path).is_file() and cv2.haveImageReader(str(path))):
        return False
    if frame_count is not None:
        return True
    with ffmpeg_quietened():
        capture = cv2.VideoCapture(str(path))
    try:
        return not (capture.grab() and capture.grab())
    finally:
        capture.release()


def still_image_message(what: str, side_by_side: bool, images_command: str = "predict") -> str:
    """The refusal of a still image given as a video (``what``: ``side-by-side video photo.png``), pointing to
    ``rtstereo IMAGES_COMMAND LEFT RIGHT``, the command that was run when it takes image pairs.

    Examples:
        >>> still_image_message("left video l.png", side_by_side=False)
        'left video l.png is a still image, not a video: for a pair of images use rtstereo predict LEFT RIGHT'
    """
    halves = " (cut a side-by-side photo into its left and right halves first)" if side_by_side else ""
    use = f"rtstereo {images_command} LEFT RIGHT"
    return f"{what} is a still image, not a video: for a pair of images use {use}{halves}"


def _frames_after(total: int | None, start: int, stride: int, max_frames: int | None = None) -> int | None:
    if total is None:
        return max_frames
    count = max(0, -(-(total - start) // stride))
    return count if max_frames is None else min(count, max_frames)


def video_argument(value: Any, name: str) -> str:
    """A video source's file or URL as text, with a leading ``~`` expanded to the home folder (as for images:
    ``SideBySideVideoSource("~/clips/sbs.mp4")`` was "not found"), or an :class:`InputError` for anything that is no
    path (``None`` was "side-by-side video not found: None").

    Examples:
        >>> video_argument("clips/sbs.mp4", "side-by-side video")
        'clips/sbs.mp4'
    """
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(
            f"{name}: expected a video file or URL (str or Path), got {type(value).__name__} {value!r:.80}"
        )
    text = os.fspath(value)
    if isinstance(text, bytes):
        raise InputError(f"{name}: expected a video file or URL (str or Path), got bytes {text!r:.80}")
    return os.path.expanduser(text) if text.startswith("~") else text


class DamagedFrames:
    """The frames a video source wanted that did not decode (:data:`DAMAGED`), passed over: said, and counted for
    the summary, once a frame after them decodes; the end of the video when none does."""

    def __init__(self) -> None:
        self.frames: list[int] = []  # passed over, each with a frame decoded after it
        self._pending: list[tuple[int, VideoReader]] = []  # not decoded, no frame decoded after them yet

    def add(self, index: int, reader: VideoReader) -> None:
        """Frame ``index`` did not decode in ``reader``'s video."""
        self._pending.append((index, reader))

    def decoded(self, last: bool = False) -> None:
        """A frame decoded: the ones passed over before it were damaged, said here (one line for a run of them).
        ``last``: the frame that decoded was passed over by ``--stride``, and the stream ends with these."""
        if not self._pending:
            return
        indices = [index for index, _ in self._pending]
        videos = " and ".join(dict.fromkeys(f"{reader.label} {reader._short_name}" for _, reader in self._pending))
        if len(indices) == 1:
            said = f"frame {indices[0]} of the {videos} does not decode (damaged): passed over; "
            if last:
                said += "it was the last frame the stream used (it has no PNG, nor a frame in the mp4)"
            else:
                said += "the stream goes on with the frames after it (it has no PNG, and a black frame stands in its "
                said += "place in the mp4)"
        else:
            said = f"frames {indices[0]} to {indices[-1]} ({len(indices)} frames) of the {videos} do not decode "
            if last:
                said += "(damaged): passed over; they were the last frames the stream used (they have no PNGs, nor "
                said += "frames in the mp4)"
            else:
                said += "(damaged): passed over; the stream goes on with the frames after them (they have no PNGs, "
                said += "and black frames stand in their place in the mp4)"
        log.warning(said)
        self.frames.extend(indices)
        self._pending = []

    def ended(self) -> None:
        """The video ended: the frames passed over that were followed by one that decoded in their video (one a
        ``--stride`` passed over, when no used frame came after them) were damaged too, and are said as such; the
        others are where the video ended."""
        self._pending = self._followed()
        self.decoded(last=True)

    def none_decoded(self, start: int, stride: int, given: bool = True) -> InputError | None:
        """The error for a stream that ended before any frame it uses decoded, when frames it uses were damaged
        (frames after them decoded): it said "--start 7 is past the end of the left video" of a video that holds 10,
        whose frame 7 (the right video's) did not decode, the stride passing over the rest. ``None`` when no frame
        it uses was damaged: the video ended (:meth:`VideoReader.nothing_from`). ``given``: as there."""
        damaged = self._followed()
        if not damaged:
            return None
        indices = [index for index, _ in damaged]
        videos = " and ".join(dict.fromkeys(f"{reader.label} {reader._short_name}" for _, reader in damaged))
        which = (
            f"frame {indices[0]} of the {videos} does"
            if len(indices) == 1
            else (f"frames {first_few(indices)} of the {videos} do")
        )
        selected = f"--start {start} and --stride {stride}" if given else f"the frame range from frame {start}"
        return InputError(f"{which} not decode (damaged), and {selected} select no other frame: no frame to compute")

    def _followed(self) -> list[tuple[int, VideoReader]]:
        """The frames passed over, not yet said, that a frame decoded after, in their video."""
        return [
            (index, reader)
            for index, reader in self._pending
            if reader.last_decoded is not None and reader.last_decoded > index
        ]


class TwoVideoSource(FrameSource):
    """Left and right views from two synchronised video files of the same size.

    Args:
        left: the left camera's video: a file, a ``file://`` URL, or an http(s) URL that ``yt-dlp``
            can fetch (see :class:`SideBySideVideoSource`).
        right: the right camera's video, as ``left``.
        start: first frame to use (0-based).
        stride: use every ``stride``-th frame.
        images_command: the command a still image given as a video is sent to (see :class:`VideoReader`).

    Raises:
        InputError: a file or URL that cannot be read, one video given for both views, or videos of different frame
            sizes.
        MissingDependencyError: a web URL without ``yt-dlp`` installed.
    """

    start_given = True  # start is the user's --start; a Ray frame range sets False for its own first frame

    def __init__(
        self, left: str | Path, right: str | Path, start: int = 0, stride: int = 1, images_command: str = "predict"
    ):
        start, stride = check_start_stride(start, stride)
        self.images_command = images_command
        left, right = video_argument(left, "left video"), video_argument(right, "right video")
        self.left_path, self.right_path = resolve_video(str(left)), resolve_video(str(right))
        both_files = self.left_path.is_file() and self.right_path.is_file()
        if self.left_path == self.right_path or (both_files and self.left_path.samefile(self.right_path)):
            # as the command line refuses it: every frame matched itself, at disparity 0
            raise InputError(
                f"left and right give the same video {left}: a stereo pair needs its two views (two videos, one per "
                f"camera; for one side-by-side video: SideBySideVideoSource({str(left)!r}))"
            )
        self._videos = (str(left), str(right))
        self.start, self.stride = start, stride
        self.description = f"two videos {Path(str(left)).name} + {Path(str(right)).name}"
        readers = self._open()
        try:
            self._check(*readers)
        finally:
            for reader in readers:
                reader.release()

    @property
    def input_files(self) -> tuple[Path, ...]:
        return (Path(self.left_path), Path(self.right_path))

    def for_workers(self) -> TwoVideoSource:
        from ..scale.session import absolute_for_workers

        source = copy.copy(self)
        source.left_path, source.right_path = (
            absolute_for_workers(self.left_path),
            absolute_for_workers(self.right_path),
        )
        return source

    def stats(self) -> dict[str, Any]:
        return _damaged_stats(self)

    def _open(self) -> tuple[VideoReader, VideoReader]:
        left = open_video(self._videos[0], self.left_path, "left video", self.images_command)
        try:
            right = open_video(self._videos[1], self.right_path, "right video", self.images_command)
        except InputError:
            left.release()
            raise
        return left, right

    def _check(self, left: VideoReader, right: VideoReader) -> None:
        turned = None
        if left.rotation_deg != right.rotation_deg:
            turned = (
                f"the two videos are read turned differently: the left video's metadata turns it by "
                f"{left.rotation_deg} degrees, the right video's by {right.rotation_deg} (OpenCV plays each upright as "
                "its metadata says)"
            )
        if (left.width, left.height) != (right.width, right.height):
            raise InputError(
                f"the two videos differ in frame size: left {left.width}x{left.height}, right "
                f"{right.width}x{right.height} (WxH); a rectified stereo pair has one size"
                + (f"; {turned}" if turned else "")
            )
        if turned:  # as predict warns of two images whose EXIF orientation tags differ
            log.warning(
                "%s; if the two cameras were held alike, one view now lies turned against the other and its "
                "disparity is meaningless: give both videos the same rotation",
                turned,
            )
        # a raw stream's rate is FFmpeg's 25 fps guess: compared with a video's own, it warned of rates that differ
        measured = left.fps and right.fps and not (left.fps_guessed or right.fps_guessed)
        if measured and abs(left.fps - right.fps) > FPS_TOLERANCE * max(left.fps, right.fps):
            log.warning(
                "the two videos have different frame rates (left %.3f fps, right %.3f fps): frames are "
                "paired by number, so the views drift apart in time if they were not recorded frame by frame",
                left.fps,
                right.fps,
            )
        self.fps = next((r.fps for r in (left, right) if r.fps and not r.fps_guessed), left.fps or right.fps)
        self.view_size_hw = (left.height, left.width)  # as the header says: the memory check before the first frame
        counts = (left.frame_count, right.frame_count)
        self._frame_count = None if None in counts else min(counts)
        self._announced_end: int | None = None  # where the warning below said the stream stops
        if None not in counts and counts[0] != counts[1]:
            self._announced_end = min(counts)
            log.warning(
                "the two videos differ in length (left %s, right %d): stopping at the shorter, %s",
                counted(counts[0], "frame"),
                counts[1],
                counted(min(counts), "frame"),
            )
        if self._frame_count is not None and self.start >= self._frame_count:
            raise InputError(
                f"--start {self.start} is past the end of the videos ({counted(self._frame_count, 'frame')})"
            )

    @property
    def expected_frames(self) -> int | None:
        return _frames_after(self._frame_count, self.start, self.stride)

    def _frames(self) -> Iterator[StereoPair]:
        left, right = self._open()
        # The right video is decoded on a second thread while this one decodes the left (OpenCV lets
        # go of the GIL while decoding): two decoders at once keep the capture stage ahead of a fast model.
        decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtstereo-decode")
        damaged = self._damaged = DamagedFrames()
        yielded = False
        try:
            _both(decoder, left.seek, right.seek, self.start)
            while True:
                index = left.position
                got_left, got_right = _both(decoder, left.read, right.read)
                if got_left is None or got_right is None:
                    if not yielded:  # not one frame
                        damaged_only = damaged.none_decoded(self.start, self.stride, self.start_given)
                        raise damaged_only or (left if got_left is None else right).nothing_from(
                            self.start, self.start_given
                        )
                    damaged.ended()
                    self._say_why_it_ended(left, right, index)
                    return
                if got_left is DAMAGED or got_right is DAMAGED:  # passed over in both videos, which stay in step
                    damaged.add(index, left if got_left is DAMAGED else right)
                    if (
                        self.stride == 1
                        or min(_both(decoder, left.skip, right.skip, self.stride - 1)) == self.stride - 1
                    ):
                        continue
                    if not yielded:  # the videos ended in the frames the stride passes over
                        damaged_only = damaged.none_decoded(self.start, self.stride, self.start_given)
                        raise damaged_only or (left if left.ended_at is not None else right).nothing_from(
                            self.start, self.start_given
                        )
                    damaged.ended()
                    self._say_why_it_ended(left, right, left.position)
                    return
                damaged.decoded()
                yielded = True
                (left_rgb, timestamp_s), (right_rgb, _) = got_left, got_right
                yield StereoPair(left_rgb, right_rgb, name=f"frame{index:05d}", index=index, timestamp_s=timestamp_s)
                if self.stride > 1 and min(_both(decoder, left.skip, right.skip, self.stride - 1)) < self.stride - 1:
                    self._say_why_it_ended(left, right, left.position)
                    return
        finally:
            decoder.shutdown(wait=True)
            left.release()
            right.release()

    def _say_why_it_ended(self, left: VideoReader, right: VideoReader, index: int) -> None:
        """Warn when a video ended before its header's frame count, or unannounced before the other."""
        cut = [note for note in (left.cut_short(), right.cut_short()) if note is not None]
        for note in cut:
            log.warning("%s; the stream stops there", note)
        ended = [reader for reader in (left, right) if reader.ended_at is not None]
        # Said already when the headers gave the lengths; said here when they were wrong. A stride that skips past
        # the announced end stops there too, with the longer video's position beyond it.
        announced = self._announced_end is not None and index >= self._announced_end
        if not cut and len(ended) == 1 and not announced:
            log.warning("the %s ended at frame %d: stopping at the shorter video", ended[0].label, ended[0].ended_at)


def _damaged_stats(source: FrameSource) -> dict[str, Any]:
    """A video source's figures for the summary: ``damaged_frames``, the frames passed over because they did not
    decode (:class:`DamagedFrames`), when there were any."""
    damaged = getattr(source, "_damaged", None)
    return {"damaged_frames": list(damaged.frames)} if damaged is not None and damaged.frames else {}


def _both(pool: ThreadPoolExecutor, here: Callable, there: Callable, *args: Any) -> tuple[Any, Any]:
    """``here(*args)`` on this thread and ``there(*args)`` on the pool's, at once; both results.

    An error from either is raised once both calls have returned, so that no reader is released while
    the other thread is still decoding with it; so is Ctrl-C, also a second one while the other thread is awaited.
    """
    future = pool.submit(there, *args)
    try:
        result = here(*args)
    finally:
        wait_through_interrupts([future], cancel=False)
    return result, future.result()


class SideBySideVideoSource(FrameSource):
    """Left and right views from the two halves of one video (left|right, or right|left with ``swap``).

    Args:
        video: a video file, a ``file://`` URL, or an http(s) URL that ``yt-dlp`` can fetch.
        swap: the halves are stored right|left (cross-eye videos).
        start: first frame to use (0-based).
        stride: use every ``stride``-th frame.
        images_command: the command a still image given as a video is sent to (see :class:`VideoReader`).

    Raises:
        InputError: unreadable file or URL, or an odd frame width.
        MissingDependencyError: a web URL without ``yt-dlp`` installed.
    """

    start_given = True  # start is the user's --start; a Ray frame range sets False for its own first frame

    def __init__(
        self, video: str | Path, swap: bool = False, start: int = 0, stride: int = 1, images_command: str = "predict"
    ):
        start, stride = check_start_stride(start, stride)
        swap = require_bool(swap, "swap")
        video = video_argument(video, "side-by-side video")
        self.path = resolve_video(str(video))
        self.swap, self.start, self.stride = swap, start, stride
        self.description = f"side-by-side video {Path(str(video)).name}{' (swapped)' if swap else ''}"
        self._video = str(video)
        reader = open_video(self._video, self.path, "side-by-side video", images_command)
        try:
            check_side_by_side_width(reader.width)
            self.fps, self._frame_count = reader.fps, reader.frame_count
            self.view_size_hw = (reader.height, reader.width // 2)  # each half's, for the memory check
        finally:
            reader.release()
        if self._frame_count is not None and start >= self._frame_count:
            raise InputError(f"--start {start} is past the end of the video ({counted(self._frame_count, 'frame')})")

    @property
    def expected_frames(self) -> int | None:
        return _frames_after(self._frame_count, self.start, self.stride)

    @property
    def input_files(self) -> tuple[Path, ...]:
        return (Path(self.path),)

    def for_workers(self) -> SideBySideVideoSource:
        from ..scale.session import absolute_for_workers

        source = copy.copy(self)
        source.path = absolute_for_workers(self.path)
        return source

    def stats(self) -> dict[str, Any]:
        return _damaged_stats(self)

    def _frames(self) -> Iterator[StereoPair]:
        reader = open_video(self._video, self.path, "side-by-side video")
        damaged = self._damaged = DamagedFrames()
        yielded = False
        try:
            reader.seek(self.start)
            while True:
                index = reader.position
                got = reader.read()
                if got is DAMAGED:
                    damaged.add(index, reader)
                    if self.stride == 1 or reader.skip(self.stride - 1) == self.stride - 1:
                        continue
                    got = None  # the video ended in the frames the stride passes over
                if got is None and not yielded:  # no frame yet: an empty video, the seek found none, or all damaged
                    damaged_only = damaged.none_decoded(self.start, self.stride, self.start_given)
                    raise damaged_only or reader.nothing_from(self.start, self.start_given)
                if got is None:
                    damaged.ended()
                    break
                damaged.decoded()
                yielded = True
                assert not isinstance(got, str), got
                frame, timestamp_s = got
                left, right = split_side_by_side(frame, self.swap)
                yield StereoPair(left, right, name=f"frame{index:05d}", index=index, timestamp_s=timestamp_s)
                if self.stride > 1 and reader.skip(self.stride - 1) < self.stride - 1:
                    break
            note = reader.cut_short()
            if note is not None:
                log.warning("%s; the stream stops there", note)
        finally:
            reader.release()


def resolve_video(video: str) -> Path:
    """A local file for a video argument: a path as is, a ``file://`` URL as its path, a web URL downloaded.

    Args:
        video: path or URL.

    Returns:
        The local path (not checked here for being a video).
    """
    if not is_url(video):
        return Path(video)
    parsed = urllib.parse.urlparse(video)
    if parsed.scheme.lower() == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return download_video(video)


def download_video(url: str) -> Path:
    """Download a video URL once with ``yt-dlp`` into ``$RTSTEREO_CACHE/videos`` and return the file.

    The format chosen is the best H.264 mp4 file that holds video, with or without sound (OpenCV reads it
    with any FFmpeg), then the best mp4 or other file that holds video: ``VIDEO_URL_FORMAT``.

    Raises:
        MissingDependencyError: ``yt-dlp`` is not installed (extra ``video``).
        InputError: the URL could not be fetched or holds no video.
    """
    yt_dlp = require("yt_dlp", "video", "reading a video URL")
    folder = cache_dir() / "videos"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    cached = _cached_video(folder, key, url)
    if cached is not None:
        return cached
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a traceback, where predict's image URLs said it in one line
        reason = os_reason(exc, folder / key)
        raise InputError(f"cannot download {url}: cannot create the cache folder {folder}: {reason}") from None
    # Two runs that downloaded one URL at once both wrote yt-dlp's KEY.mp4.part (the second resuming the first's):
    # the cached video came out longer than the file, damaged for every later run, and the second run failed with
    # "Unable to rename file". The second now waits for the first's download and reads it.
    lock = FileLock(folder / f".{key}.lock")
    if not lock.acquire():
        log.info("video URL %s: %s is downloading it into the cache; waiting for it", url, holder_text(lock.holder()))
        lock.acquire(wait=True)
    try:
        cached = _cached_video(folder, key, url)
        return cached if cached is not None else _download(yt_dlp, url, folder, key)
    finally:
        lock.release()


def _cached_video(folder: Path, key: str, url: str) -> Path | None:
    """The cached download of the URL whose key is ``key``, or ``None`` (yt-dlp's partial files are none)."""
    cached = sorted(p for p in folder.glob(f"{key}.*") if p.suffix not in (".part", ".ytdl"))
    if not cached:
        return None
    log.info("video URL %s: using the cached download %s", url, cached[0])
    return cached[0]


def _download(yt_dlp: Any, url: str, folder: Path, key: str) -> Path:
    """Download ``url`` with yt-dlp into ``folder`` as ``<key>.<ext>``; see :func:`download_video`."""
    options = {
        "format": VIDEO_URL_FORMAT,
        "outtmpl": str(folder / f"{key}.%(ext)s"),
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
    }
    log.info("downloading %s with yt-dlp into %s", url, folder)
    try:
        with yt_dlp.YoutubeDL(options) as downloader:
            info = downloader.extract_info(url, download=True)
    except yt_dlp.utils.DownloadError as exc:
        message = str(exc).replace("ERROR: ", "").strip().rstrip(".")
        # yt-dlp repeats its network error as Python's repr after it: " (caused by TransportError("HTTPConnection(
        # host='h', port=9): ... Connection refused"))", where predict's download says "Connection refused" once; an
        # HTTP error in angle brackets: "HTTP Error 404: File not found (caused by <HTTPError 404: File not found>)"
        message = re.sub(r" \(caused by (\w+\(.*\)|<\w+.*>)\)$", "", message, flags=re.DOTALL)
        raise InputError(
            f"cannot fetch the video at {url}: {message}. Check the address (and the network), or download "
            "the video yourself and pass the file"
        ) from None
    if info is None or info.get("_type") == "playlist":
        raise InputError(f"{url} is a playlist or holds no single video: give the URL of one video")
    downloads = info.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        found = sorted(p for p in folder.glob(f"{key}.*") if p.suffix not in (".part", ".ytdl"))
        if not found:
            raise InputError(f"yt-dlp reported success for {url} but wrote no file into {folder}")
        path = found[0]
    return path


class _QuietLogger:
    """Keeps yt-dlp's own console output away; its errors come back as exceptions."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    info = debug

    def warning(self, message: str) -> None:
        log.debug("yt-dlp warning: %s", message)

    def error(self, message: str) -> None:
        log.debug("yt-dlp error: %s", message)
