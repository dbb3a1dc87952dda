"""Pairs for ``rtstereo adapt`` from videos: frames sampled evenly over a stereo video.

The videos are read by the stream sources (:mod:`rtstereo.sources.video`), as ``rtstereo video``
reads them: two files, or one side-by-side file or URL. Consecutive frames of a video are nearly the
same pair, so adaptation takes every N-th frame, spread over the whole video up to a cap, rather
than the first hundred.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from ..errors import InputError
from ..io.images import VIDEO_SUFFIXES
from ..sources.base import FrameSource
from .adapt import UserPair

DEFAULT_MAX_PAIRS = 100  # the hundred pairs a laptop CPU adapts on in minutes (rtstereo adapt --max-pairs)


def is_video_file(argument: str) -> bool:
    """Whether a command-line argument names a video file (or URL) by its suffix.

    Examples:
        >>> is_video_file("rig/left.MP4"), is_video_file("lefts/*.png"), is_video_file("https://x.org/a.mkv")
        (True, False, True)
    """
    path = urlparse(argument).path if "://" in argument else argument
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def sampling_stride(expected_frames: int | None, max_pairs: int, every: int | None = None) -> int:
    """Frames between two sampled pairs: ``every`` when given, else the stride that spreads ``max_pairs``
    over the video (1 when its length is unknown).

    Examples:
        >>> sampling_stride(300, 100), sampling_stride(1000, 100), sampling_stride(50, 100), sampling_stride(None, 100)
        (3, 10, 1, 1)
    """
    if max_pairs < 1:
        raise InputError(f"--max-pairs must be >= 1, got {max_pairs}")
    if every is not None:
        if every < 1:
            raise InputError(f"--every must be >= 1 (use every N-th frame), got {every}")
        return every
    if not expected_frames:
        return 1
    return max(1, -(-expected_frames // max_pairs))


def _reopened(open_source: Callable[[int], FrameSource], stride: int) -> FrameSource:
    """The video opened again at ``stride``, without repeating the warnings its first opening gave."""
    quiet = logging.Filter("nothing")  # passes only the records of a logger named "nothing"
    stream_log = logging.getLogger("rtstereo.stream")
    stream_log.addFilter(quiet)
    try:
        return open_source(stride)
    finally:
        stream_log.removeFilter(quiet)


def sample_video_pairs(
    open_source: Callable[[int], FrameSource], max_pairs: int = DEFAULT_MAX_PAIRS, every: int | None = None
) -> list[UserPair]:
    """Every N-th frame of a stereo video as :class:`UserPair` objects, at most ``max_pairs``.

    Args:
        open_source: ``open_source(stride)`` -> the video's :class:`FrameSource` reading every
            ``stride``-th frame (e.g. :class:`~rtstereo.sources.video.TwoVideoSource`).
        max_pairs: the most pairs taken.
        every: frames between two pairs; ``None``: spread ``max_pairs`` evenly over the video.

    Returns:
        Pairs named after their frames (``frame00012``), in video order.

    Raises:
        InputError: a bad ``max_pairs`` or ``every``, or a video with no frames.
    """
    probe = open_source(1)
    stride = sampling_stride(probe.expected_frames, max_pairs, every)
    source = probe if stride == 1 else _reopened(open_source, stride)
    pairs: list[UserPair] = []
    frames = iter(source)
    try:
        for pair in frames:
            pairs.append(UserPair(pair.name or f"frame{pair.index:05d}", pair.left, pair.right))
            if len(pairs) >= max_pairs:
                break
    finally:
        close = getattr(frames, "close", None)  # releases the video files at once, not at garbage collection
        if close is not None:
            close()
    if not pairs:
        raise InputError(f"{source.description}: no frames to adapt on")
    return pairs
