"""Set the frame rate of a finished constant-rate MP4 in its header, without touching its frames.

A live recording's rate is known only once it ends (the model's rate after its warm-up, a camera whose rate
settles late), while OpenCV's writer takes a rate when it opens. The rate of an MP4 (ISO base media file) is
its video track's media time scale over the duration of each sample (``mdhd`` and ``stts``): changing the time
scale alone changes the rate of every frame at once, and leaves every time counted in media units (the sample
durations, composition offsets, the edit's start) valid. The durations counted in the movie's time scale
(``mvhd``, ``tkhd``, the edit list's segment) follow. Nothing is re-encoded: the frames stay byte for byte.
"""

from __future__ import annotations

import struct
from pathlib import Path

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


class Mp4LayoutError(ValueError):
    """The file is not laid out as one video track of constant frame rate, which :func:`set_mp4_rate` edits."""


def _boxes(data: bytes | memoryview, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """The boxes between ``start`` and ``end``: ``(type, offset, header_size, size)`` each."""
    found = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise Mp4LayoutError(f"a box header cut short at byte {offset}")
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise Mp4LayoutError(
                f"a box '{kind.decode('latin-1')}' of {size} bytes at byte {offset} overruns its parent"
            )
        found.append((kind, offset, header, size))
        offset += size
    return found


def _find(data: bytes | memoryview, start: int, end: int, path: list[bytes]) -> list[tuple[int, int, int]]:
    """Every box reached by the box types of ``path`` from the boxes between ``start`` and ``end``:
    ``(offset, header_size, size)`` each."""
    kind, rest = path[0], path[1:]
    hits = []
    for found, offset, header, size in _boxes(data, start, end):
        if found != kind:
            continue
        if not rest:
            hits.append((offset, header, size))
        elif found in _CONTAINERS:
            hits.extend(_find(data, offset + header, offset + size, rest))
    return hits


def _one(data: bytearray, start: int, end: int, path: list[bytes]) -> int:
    """The offset of the body (after the header) of the one box ``path`` reaches."""
    hits = _find(data, start, end, path)
    if len(hits) != 1:
        raise Mp4LayoutError(f"{len(hits)} '{'/'.join(p.decode() for p in path)}' boxes, where one was expected")
    offset, header, _ = hits[0]
    return offset + header


def _full_box_field(data: bytearray, body: int, v0: tuple[int, int], v1: tuple[int, int]) -> tuple[int, int]:
    """``(offset, width)`` of a field of a full box (version and flags first) at ``v0`` or ``v1``
    (offset after the version and flags, width in bytes) by its version."""
    version = data[body]
    if version not in (0, 1):
        raise Mp4LayoutError(f"a box of version {version}")
    offset, width = v0 if version == 0 else v1
    return body + 4 + offset, width


def _get(data: bytearray, field: tuple[int, int]) -> int:
    offset, width = field
    return int.from_bytes(data[offset : offset + width], "big")


def _put(data: bytearray, field: tuple[int, int], value: int) -> None:
    offset, width = field
    if not 0 <= value < 1 << (8 * width):
        raise Mp4LayoutError(f"{value} does not fit a field of {width} bytes")
    data[offset : offset + width] = value.to_bytes(width, "big")


def set_mp4_rate(path: str | Path, fps: float) -> float:
    """Give the constant-rate MP4 at ``path`` the frame rate ``fps`` in its header, in place.

    Args:
        path: an MP4 (or MOV) of one video track whose samples all last as long (as OpenCV's writer leaves one).
        fps: the new rate, frames per second, > 0.

    Returns:
        The rate the file now holds: the nearest one its sample duration divides (within 1 / that duration).

    Raises:
        Mp4LayoutError: the file is not one video track of constant rate (nothing is changed then).
        OSError: it cannot be read or written.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    with open(path, "r+b") as file:
        size = file.seek(0, 2)
        # The top-level boxes, read by their headers only: the frames (mdat) are most of the file.
        offset, moov = 0, None
        while offset + 8 <= size:
            file.seek(offset)
            head = file.read(16)
            length, kind = struct.unpack_from(">I4s", head)
            if length == 1:
                length = struct.unpack_from(">Q", head, 8)[0]
            elif length == 0:
                length = size - offset
            if length < 8:
                raise Mp4LayoutError(f"a top-level box of {length} bytes at byte {offset}")
            if kind == b"moov":
                if moov is not None:
                    raise Mp4LayoutError("two 'moov' boxes")
                moov = (offset, length)
            offset += length
        if moov is None:
            raise Mp4LayoutError("no 'moov' box (the file was not closed)")
        file.seek(moov[0])
        data = bytearray(file.read(moov[1]))
        end = len(data)
        inside = _boxes(data, 0, end)[0][2]  # moov's own header
        if len(_find(data, inside, end, [b"trak"])) != 1:
            raise Mp4LayoutError("not exactly one track")
        handler = _one(data, inside, end, [b"trak", b"mdia", b"hdlr"])
        if bytes(data[handler + 8 : handler + 12]) != b"vide":
            raise Mp4LayoutError("its track is no video track")
        stts = _one(data, inside, end, [b"trak", b"mdia", b"minf", b"stbl", b"stts"])
        entries = struct.unpack_from(">I", data, stts + 4)[0]
        table = [struct.unpack_from(">II", data, stts + 8 + 8 * i) for i in range(entries)]
        deltas = {delta for count, delta in table if count}
        if len(deltas) != 1 or 0 in deltas:
            raise Mp4LayoutError(f"its frames do not all last as long (sample durations {sorted(deltas)})")
        delta = deltas.pop()
        media_units = sum(count * delta for count, _ in table)
        mdhd = _one(data, inside, end, [b"trak", b"mdia", b"mdhd"])
        media_scale = _full_box_field(data, mdhd, (8, 4), (16, 4))
        old_timescale, timescale = _get(data, media_scale), round(fps * delta)
        if timescale < 1:
            raise Mp4LayoutError(f"{fps:g} fps is below what its sample duration of {delta} units can hold")
        mvhd = _one(data, inside, end, [b"mvhd"])
        movie_scale = _get(data, _full_box_field(data, mvhd, (8, 4), (16, 4)))
        movie_duration = round(media_units * movie_scale / timescale)
        _put(data, media_scale, timescale)
        _put(data, _full_box_field(data, mvhd, (12, 4), (20, 8)), movie_duration)
        tkhd = _one(data, inside, end, [b"trak", b"tkhd"])
        track_duration = _full_box_field(data, tkhd, (16, 4), (24, 8))
        old_duration = _get(data, track_duration)
        _put(data, track_duration, movie_duration)
        for offset, header, _ in _find(data, inside, end, [b"trak", b"edts", b"elst"]):
            body = offset + header
            version, count = data[body], struct.unpack_from(">I", data, body + 4)[0]
            width = 4 if version == 0 else 8
            for i in range(count):
                field = (body + 8 + i * (2 * width + 4), width)
                # A segment lasts in movie units the media units it spans; its start (media_time) is in media units.
                # The one segment of the whole track (OpenCV's) is the track's duration, not its own rounding scaled.
                old_segment = _get(data, field)
                scaled = (
                    movie_duration if old_segment == old_duration else round(old_segment * old_timescale / timescale)
                )
                _put(data, field, scaled)
        file.seek(moov[0])
        file.write(data)
    return timescale / delta
