"""Fixtures of the hardening tests."""

from __future__ import annotations

import cv2
import pytest

from ..conftest import make_textured_pair


@pytest.fixture
def pair(tmp_path):
    """A small textured pair written as ``l.png`` and ``r.png``: their two paths."""
    left, right = make_textured_pair(48, 72)
    paths = tmp_path / "l.png", tmp_path / "r.png"
    cv2.imwrite(str(paths[0]), left)
    cv2.imwrite(str(paths[1]), right)
    return [str(p) for p in paths]
