"""A folder or glob of image pairs played as a video, in the order of the numbers in the names."""

from __future__ import annotations

import copy
import dataclasses
import glob
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError, require_path
from ..io.download import file_url_path, is_url
from ..io.images import header_size_hw
from ..text import counted
from ..types import StereoPair
from .base import FrameSource, check_fps, check_start_stride
from .pairs import resolve_pairs


def is_image_sequence(argument: str) -> bool:
    """Whether a command-line argument names images (a folder or a glob, or a ``file://`` URL of a folder, as
    ``predict`` takes it) rather than a video file."""
    if is_url(argument):  # a folder's file:// URL was read as a video: "left video /data/left is a folder"
        folder = file_url_path(argument)
        return folder is not None and Path(folder).is_dir()
    path = Path(argument)
    return path.is_dir() or (not path.exists() and glob.has_magic(argument))


class ImageSequenceSource(FrameSource):
    """Pairs from two folders or globs, played in the order of the numbers in the files' names (``frame9``
    before ``frame10``, which sorting by name puts after ``frame1``): each side is sorted so, then matched by
    position, as ``rtstereo predict`` matches them. One order for both, so ``L_9.png`` meets
    ``R_09.png`` (sorted by name, ``L_10`` came before ``L_9`` but ``R_09`` before ``R_10``: each left
    frame met the other's right view).

    Args:
        left: folder or glob of left images.
        right: folder or glob of right images (same count).
        fps: the frame rate to record (for the mp4 output and timestamps).
        start: first pair to use (0-based).
        stride: use every ``stride``-th pair.

    Raises:
        InputError: no images, different counts on the two sides, ``start`` past the last pair, or a
            frame rate that is not > 0.
    """

    def __init__(self, left: str | Path, right: str | Path, fps: float = 10.0, start: int = 0, stride: int = 1):
        start, stride = check_start_stride(start, stride)
        fps = check_fps(fps)
        for value, side in ((left, "left"), (right, "right")):  # anything else was a bare TypeError
            require_path(value, f"{side} images", "a folder or a glob of images (str or Path)")
        left, right = os.fspath(left), os.fspath(right)  # a str as given: a file:// URL is no Path
        self.pairs = resolve_pairs(left, right, by_number=True)
        if start >= len(self.pairs):
            raise InputError(
                f"--start {start} is past the end of the image sequence ({counted(len(self.pairs), 'pair')})"
            )
        self.fps, self.start, self.stride = fps, start, stride
        self.description = f"image sequence {left} + {right} ({counted(len(self.pairs), 'pair')})"
        # The first frame's size from its files' headers, as a video's header gives it: the memory check before the
        # model loads and anything is written. Each frame's is given to frame_size_check before it is decoded.
        self.view_size_hw = _header_size_hw(self.pairs[start])
        self.frame_size_check: Callable[[tuple[int, int]], Any] | None = None

    @property
    def expected_frames(self) -> int:
        return len(range(self.start, len(self.pairs), self.stride))

    @property
    def input_files(self) -> tuple[Path, ...]:
        return tuple(Path(name) for pair in self.pairs for name in (pair.left, pair.right) if not is_url(name))

    def for_workers(self) -> ImageSequenceSource:
        from ..scale.session import absolute_for_workers

        source = copy.copy(self)
        source.frame_size_check = None  # the driver's model's
        source.pairs = [
            dataclasses.replace(pair, left=absolute_for_workers(pair.left), right=absolute_for_workers(pair.right))
            for pair in self.pairs
        ]
        return source

    def _frames(self) -> Iterator[StereoPair]:
        for index in range(self.start, len(self.pairs), self.stride):
            files = self.pairs[index]
            check = self.frame_size_check
            size_hw = _header_size_hw(files) if check is not None else None
            if check is not None and size_hw is not None:
                try:  # a frame the model's memory plan refuses: said of it, and not decoded (gigabytes for 20000x20000)
                    check(size_hw)
                except InputError as exc:
                    raise type(exc)(f"frame {index} ({files.left}, {files.right}): {exc}") from None
            try:
                pair = files.load(index)
            except InputError as exc:
                if str(files.left) in str(exc) or str(files.right) in str(exc):
                    raise
                # "left and right images differ in size" said which of a thousand frames only by its sizes
                raise InputError(f"frame {index} ({files.left}, {files.right}): {exc}") from None
            yield dataclasses.replace(pair, index=index, timestamp_s=index / self.fps)  # a colour left view kept


def _header_size_hw(files: Any) -> tuple[int, int] | None:
    """``(H, W)`` of a pair's views from their files' headers, when both tell it and agree (else ``None``: decoding
    them says what is wrong)."""
    size_hw = header_size_hw(files.left)
    return size_hw if size_hw is not None and size_hw == header_size_hw(files.right) else None
