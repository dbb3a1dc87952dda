"""Holding back what C libraries print while a call that may fail runs.

libpng (``libpng error: ...``), FFmpeg (``moov atom not found``), OpenCV's logger and DepthAI write
straight to the process's file descriptors 1 and 2, out of Python's reach. Around such a call,
:func:`native_output_held` points both descriptors at a temporary file. When the call fails, its
noise is dropped: the error rtstereo raises says what happened in one line. When it succeeds, the
noise is written to stderr (never stdout, which carries results only).

Holding is off until the command line turns it on (:func:`hold_native_output`): a program that
imports rtstereo as a library keeps its descriptors untouched. Holds are serialised by a lock,
because descriptors are shared by all threads; while holding is on, Python's ``sys.stdout`` and
``sys.stderr`` take that lock too, so that what another thread prints (``video``'s writer, while its
reader decodes an image) waits for the hold to end rather than being taken for the held call's noise.

FFmpeg's lines about a damaged video (hundreds for one damaged frame, printed while frames decode, not
only while a file opens) are turned off at their source instead: :func:`ffmpeg_quietened` sets the level
OpenCV gives FFmpeg when it opens a video, for the command line and the Python API alike, unless the
environment chose one (``OPENCV_FFMPEG_LOGLEVEL``, ``OPENCV_FFMPEG_DEBUG``). What the damage means is
said once by rtstereo (a video whose frames end before its header's count).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.RLock()
_ENABLED = False

FFMPEG_LOGLEVEL = "OPENCV_FFMPEG_LOGLEVEL"  # av_log level of OpenCV's FFmpeg backend, read as it opens videos
FFMPEG_DEBUG = "OPENCV_FFMPEG_DEBUG"  # OpenCV's other switch for FFmpeg's lines (at its verbose level)
# AV_LOG_PANIC: a crash's last words only. Not AV_LOG_FATAL (8): FFmpeg's decoders log a damaged frame at that
# level too ("[OPENCV:FFMPEG:08] No JPEG data found in image" for a Motion JPEG file cut short).
FFMPEG_QUIET = "0"
_FFMPEG_LOCK = threading.Lock()


def hold_native_output(enabled: bool) -> bool:
    """Turn holding on or off for the whole process; returns the previous setting."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, enabled
    if enabled:
        sys.stdout, sys.stderr = (
            s if isinstance(s, _WaitingForHolds) else _WaitingForHolds(s) for s in (sys.stdout, sys.stderr)
        )
    else:
        sys.stdout, sys.stderr = (s.stream if isinstance(s, _WaitingForHolds) else s for s in (sys.stdout, sys.stderr))
    return previous


class _WaitingForHolds:
    """A Python stream whose writes wait for a hold of another thread to end (:func:`native_output_held`), as
    its descriptor points at the hold's file meanwhile: a line printed then was kept back, and read as the held
    call's own output ("R/p4.png: the image library warned while decoding it (rtstereo video: ...)")."""

    def __init__(self, stream: Any):
        self.stream = stream

    def write(self, text: str) -> int:
        with _LOCK:
            return self.stream.write(text)

    def writelines(self, lines: Any) -> None:
        with _LOCK:
            self.stream.writelines(lines)

    def flush(self) -> None:
        with _LOCK:
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class HeldOutput:
    """What a held call printed; :meth:`discard` drops it although the call returned normally.

    Attributes:
        text: the captured bytes, decoded (filled when the block ends).
    """

    def __init__(self) -> None:
        self.text = ""
        self.discarded = False

    def discard(self) -> None:
        """Drop the noise: for calls that report failure by their return value (``imdecode`` -> ``None``)."""
        self.discarded = True


@contextlib.contextmanager
def native_output_held() -> Iterator[HeldOutput]:
    """Capture descriptors 1 and 2 while the block runs (when holding is on); see the module docstring.

    Yields:
        A :class:`HeldOutput`; after the block its ``text`` holds what was printed.
    """
    held = HeldOutput()
    if not _ENABLED:
        yield held
        return
    with _LOCK, tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = os.dup(1), os.dup(2)
        failed = True
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield held
            failed = False
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            held.text = sink.read().decode(errors="replace")
            if held.text and not failed and not held.discarded:
                sys.stderr.write(held.text)
                sys.stderr.flush()


@contextlib.contextmanager
def ffmpeg_quietened() -> Iterator[None]:
    """Around opening a video with OpenCV: FFmpeg's own lines off, unless the environment asks for them.

    The variable is set around every open (and removed again afterwards). OpenCV 5 and recent 4.x read
    ``OPENCV_FFMPEG_LOGLEVEL`` once, when the process opens its first video, and keep that level for every video
    after (if the process had opened a video before, its own code, they keep the level chosen then); OpenCV 4.8
    reads it again at every open, and without it went back to FFmpeg's errors, printed on stdout: a source that
    opens its video twice (to check it, then to read it) printed hundreds of lines about a damaged one.
    """
    with _FFMPEG_LOCK:
        chosen = FFMPEG_LOGLEVEL in os.environ or FFMPEG_DEBUG in os.environ
        if not chosen:
            os.environ[FFMPEG_LOGLEVEL] = FFMPEG_QUIET
        try:
            yield
        finally:
            if not chosen:
                os.environ.pop(FFMPEG_LOGLEVEL, None)


@contextlib.contextmanager
def native_lines_dropped(pattern: re.Pattern[bytes]) -> Iterator[None]:
    """While the block runs (when holding is on), drop the lines on descriptor 2 that start with ``pattern``.

    For a library that logs on its own threads for as long as it runs (Ray's C++ core, while a batch runs), where
    :func:`native_output_held` cannot wrap one call. Descriptor 2 points at a pipe meanwhile; a thread passes on
    everything else as it comes, a line that is not yet complete too unless it could still be one to drop (a
    progress bar redraws its line without ending it).
    """
    if not _ENABLED:
        yield
        return
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved, out_fd = os.dup(2), os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pass_lines, args=(read_fd, out_fd, pattern), daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer here: the thread sees its end once children started meanwhile end
        os.close(saved)
        thread.join(timeout=2.0)


def _pass_lines(read_fd: int, out_fd: int, pattern: re.Pattern[bytes]) -> None:
    """Copy ``read_fd`` to ``out_fd`` until its end, without the lines that start with ``pattern``."""
    pending = b""
    try:
        while chunk := os.read(read_fd, 65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            kept = b"".join(line + b"\n" for line in lines if not pattern.match(line))
            if pending and not pending.startswith(b"["):  # cannot be one to drop: shown now, not at its newline
                kept, pending = kept + pending, b""
            _write_all(out_fd, kept)
        if not pattern.match(pending):
            _write_all(out_fd, pending)
    except OSError:
        pass
    finally:
        os.close(read_fd)
        os.close(out_fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
