"""Resolving LEFT/RIGHT command-line arguments into matched image pairs.

Each side may be a file, a folder (its images in sorted order), a glob, or an http(s) URL. The two
sides are matched by position after sorting, and must have the same number of images.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..datasets.readers import IMAGE_SUFFIXES
from ..errors import InputError
from ..io.download import is_url
from ..io.images import read_image
from ..types import Calibration, StereoPair


@dataclass(frozen=True)
class PairSource:
    """Where the two images of one pair come from."""

    left: str
    right: str
    name: str

    def load(self, index: int = 0, calibration: Calibration | None = None) -> StereoPair:
        return StereoPair(
            read_image(self.left), read_image(self.right), name=self.name, index=index, calibration=calibration
        )


def expand(argument: str, side: str) -> list[str]:
    """The images one command-line argument stands for, sorted."""
    if is_url(argument):
        return [argument]
    path = Path(argument)
    if path.is_dir():
        images = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"{side} folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return images
    if path.is_file():
        return [str(path)]
    if glob.has_magic(argument):
        matches = sorted(p for p in glob.glob(argument) if Path(p).is_file())
        if not matches:
            raise InputError(f"{side} pattern '{argument}' matches no files")
        return matches
    raise InputError(f"{side} image not found: {argument}")


def resolve_pairs(left: str, right: str) -> list[PairSource]:
    """Match the images of ``left`` and ``right`` into pairs, named after the left files.

    Examples:
        >>> resolve_pairs("https://x/l.png", "https://x/r.png")[0].name
        'l'
    """
    lefts, rights = expand(left, "left"), expand(right, "right")
    if len(lefts) != len(rights):
        raise InputError(
            f"left gives {len(lefts)} images and right gives {len(rights)}: pairs are matched by sorted "
            "name, so both sides need the same number"
        )
    return [PairSource(a, b, n) for a, b, n in zip(lefts, rights, unique_names(lefts))]


def unique_names(lefts: list[str]) -> list[str]:
    """Pair names from the left files' stems, numbered by position when two stems collide.

    Examples:
        >>> unique_names(["a/x.png", "b/x.png"])
        ['00000_x', '00001_x']
    """
    names = [Path(p.split("?")[0]).stem or f"pair{i:05d}" for i, p in enumerate(lefts)]
    if len(set(names)) != len(names):
        names = [f"{i:05d}_{n}" for i, n in enumerate(names)]
    return names


def iter_pairs(sources: list[PairSource], calibration: Calibration | None = None) -> Iterator[StereoPair]:
    for index, source in enumerate(sources):
        yield source.load(index, calibration)
