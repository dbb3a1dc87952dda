"""Rendered stereo videos for the stream tests: a textured background with a textured rectangle in
front of it, moving, each at a known disparity; written with OpenCV (mp4v) as two files or side by side."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

BACKGROUND_PX = 6  # disparity of the background, pixels
RECTANGLE_PX = 14  # disparity of the moving rectangle, pixels


def texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Blobs a few pixels wide: fine enough to match, coarse enough to survive mp4 compression."""
    coarse = rng.integers(0, 256, size=(height // 3 + 2, width // 3 + 2, 3), dtype=np.uint8)
    return cv2.resize(coarse, (coarse.shape[1] * 3, coarse.shape[0] * 3), interpolation=cv2.INTER_LINEAR)[
        :height, :width
    ]


@dataclass
class Scene:
    lefts: list[np.ndarray]
    rights: list[np.ndarray]
    rectangles: list[tuple[int, int, int, int]]  # (x0, y0, x1, y1) in the left image, per frame


def render_scene(
    frames: int = 6, height: int = 64, width: int = 128, seed: int = 0, step_px: int = 3, noise: float = 0.0
) -> Scene:
    """RGB frames; left x shows what right shows at x - d (positive disparity d)."""
    rng = np.random.default_rng(seed)
    background = texture(height, width + BACKGROUND_PX, rng)
    patch = texture(height // 2, width // 4, rng)
    lefts, rights, rectangles = [], [], []
    for t in range(frames):
        left = background[:, :width].copy()
        right = background[:, BACKGROUND_PX:].copy()
        x0, y0 = width // 2 + t * step_px, height // 4
        h, w = patch.shape[:2]
        left[y0 : y0 + h, x0 : x0 + w] = patch[:, : max(0, min(w, width - x0))]
        right[y0 : y0 + h, x0 - RECTANGLE_PX : x0 - RECTANGLE_PX + w] = patch[
            :, : max(0, min(w, width - x0 + RECTANGLE_PX))
        ]
        if noise:
            left = np.clip(left + rng.normal(0, noise, left.shape), 0, 255).astype(np.uint8)
            right = np.clip(right + rng.normal(0, noise, right.shape), 0, 255).astype(np.uint8)
        lefts.append(left)
        rights.append(right)
        rectangles.append((x0, y0, min(width, x0 + w), y0 + h))
    return Scene(lefts, rights, rectangles)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def mjpg_bytes(path, frames: list[np.ndarray]) -> bytes:
    """The bytes of a whole AVI (Motion JPEG) of ``frames``, written beside ``path``, for a test to cut."""
    height, width = frames[0].shape[:2]
    whole = path.with_name(f"whole-{path.name}")
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert writer.isOpened(), f"cannot write {whole}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return whole.read_bytes()


def damaged_video(path, frames: list[np.ndarray], damaged: tuple[int, ...]):
    """An AVI (Motion JPEG) of ``frames`` whose frames ``damaged`` do not decode (their JPEG's tables wiped): every
    read of one fails, and the frames after it read again, as in a file with a bad sector."""
    data = bytearray(mjpg_bytes(path, frames))
    starts = [m.start() for m in re.finditer(b"\xff\xd8\xff", bytes(data))]
    assert len(starts) == len(frames), (len(starts), len(frames))
    for index in damaged:
        data[starts[index] : starts[index] + 400] = bytes(400)
    path.write_bytes(bytes(data))
    capture = cv2.VideoCapture(str(path))
    decoded = [capture.read()[0] for _ in frames]
    capture.release()
    assert decoded == [index not in damaged for index in range(len(frames))], decoded
    return path


@pytest.fixture
def scene() -> Scene:
    return render_scene()


@pytest.fixture
def two_videos(tmp_path, scene) -> tuple[Path, Path]:
    return write_video(tmp_path / "left.mp4", scene.lefts), write_video(tmp_path / "right.mp4", scene.rights)


@pytest.fixture
def sbs_video(tmp_path, scene) -> Path:
    return write_video(
        tmp_path / "sbs.mp4", [np.concatenate([a, b], axis=1) for a, b in zip(scene.lefts, scene.rights)]
    )


@pytest.fixture
def stream_cache(tmp_path, monkeypatch) -> Path:
    """A private download cache, so no test touches the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RTSTEREO_CACHE", str(cache))
    return cache
