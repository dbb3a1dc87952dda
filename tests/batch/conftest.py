"""Small generated image pairs on disk for batch tests, with one damaged pair among them."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from ..conftest import make_textured_pair

BATCH_HW = (64, 96)
SGBM_ARGS = ["--model", "sgbm", "--max-disp", "16"]


def write_pairs(folder: Path, count: int, corrupt: tuple[int, ...] = ()) -> tuple[Path, Path]:
    """``folder/L/NN.png`` and ``folder/R/NN.png``; the left images numbered in ``corrupt`` are damaged."""
    lefts, rights = folder / "L", folder / "R"
    lefts.mkdir(parents=True)
    rights.mkdir(parents=True)
    for i in range(count):
        left, right = make_textured_pair(*BATCH_HW, disparity_px=3 + i % 4, seed=i)
        cv2.imwrite(str(rights / f"{i:02d}.png"), right)
        if i in corrupt:
            (lefts / f"{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
        else:
            cv2.imwrite(str(lefts / f"{i:02d}.png"), left)
    return lefts, rights


@pytest.fixture
def three_pairs(tmp_path):
    """Three pairs whose middle left image is damaged."""
    return write_pairs(tmp_path / "in", 3, corrupt=(1,))
