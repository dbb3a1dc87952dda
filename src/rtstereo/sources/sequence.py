"""A folder or glob of image pairs played as a video (pairs matched as in ``rtstereo predict``)."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, require_path
from ..io.download import is_url
from ..text import counted
from ..types import StereoPair
from .base import FrameSource, check_fps, check_start_stride
from .pairs import resolve_pairs


def is_image_sequence(argument: str) -> bool:
    """Whether a command-line argument names images (a folder or a glob) rather than a video file."""
    if is_url(argument):
        return False
    path = Path(argument)
    return path.is_dir() or (not path.exists() and glob.has_magic(argument))


def frame_order(path: str) -> list[str | int]:
    """Sort key playing numbered files in the order of their numbers (``frame9`` before ``frame10``).

    Examples:
        >>> sorted(["f10.png", "f9.png", "f1.png"], key=frame_order)
        ['f1.png', 'f9.png', 'f10.png']
    """
    # re.split with a group alternates text and digit runs, so the keys compare str with str and int with int.
    return [int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", path))]


class ImageSequenceSource(FrameSource):
    """Pairs from two folders or globs, matched as in ``rtstereo predict``, played in the order of the
    numbers in the left files' names (``frame9`` before ``frame10``, which sorting by name puts after ``frame1``).

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
        check_start_stride(start, stride)
        check_fps(fps)
        for value, side in ((left, "left"), (right, "right")):  # anything else was a bare TypeError
            require_path(value, f"{side} images", "a folder or a glob of images (str or Path)")
        left, right = os.fspath(left), os.fspath(right)  # a str as given: a file:// URL is no Path
        self.pairs = sorted(resolve_pairs(left, right), key=lambda pair: frame_order(pair.left))
        if start >= len(self.pairs):
            raise InputError(
                f"--start {start} is past the end of the image sequence ({counted(len(self.pairs), 'pair')})"
            )
        self.fps, self.start, self.stride = fps, start, stride
        self.description = f"image sequence {left} + {right} ({counted(len(self.pairs), 'pair')})"

    @property
    def expected_frames(self) -> int:
        return len(range(self.start, len(self.pairs), self.stride))

    @property
    def input_files(self) -> tuple[Path, ...]:
        return tuple(Path(name) for pair in self.pairs for name in (pair.left, pair.right) if not is_url(name))

    def _frames(self) -> Iterator[StereoPair]:
        for index in range(self.start, len(self.pairs), self.stride):
            files = self.pairs[index]
            try:
                pair = files.load(index)
            except InputError as exc:
                if str(files.left) in str(exc) or str(files.right) in str(exc):
                    raise
                # "left and right images differ in size" said which of a thousand frames only by its sizes
                raise InputError(f"frame {index} ({files.left}, {files.right}): {exc}") from None
            yield StereoPair(pair.left, pair.right, name=pair.name, index=index, timestamp_s=index / self.fps)
