"""Shared test fixtures: where ../shared is, and small generated stereo data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTSTEREO_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data beside the repository; set RTSTEREO_SHARED)")
    return path


@pytest.fixture
def shared():
    """Callable fixture: ``shared("data", "real")`` returns the path or skips."""
    return shared_path


def make_textured_pair(height: int = 48, width: int = 64, disparity_px: int = 4, seed: int = 0):
    """A random-texture pair whose right view is the left shifted by a constant disparity."""
    rng = np.random.default_rng(seed)
    wide = rng.integers(0, 256, size=(height, width + disparity_px, 3), dtype=np.uint8)
    # left x shows wide[x]; right x shows wide[x + d]: so left x matches right x - d (positive disparity)
    left = wide[:, :width]
    right = wide[:, disparity_px:]
    return np.ascontiguousarray(left), np.ascontiguousarray(right)


@pytest.fixture
def textured_pair():
    return make_textured_pair()
