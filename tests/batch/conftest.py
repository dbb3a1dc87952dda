"""Small generated image pairs on disk for batch tests, with one damaged pair among them."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from ..conftest import make_textured_pair

BATCH_HW = (64, 96)
SGBM_ARGS = ["--model", "sgbm", "--max-disp", "16"]
SGBM_RESULTS = "sgbm_max_disp=16.json"  # what `rtstereo eval` names the results of SGBM_ARGS


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


def write_kitti(folder: Path, count: int, corrupt: tuple[int, ...] = ()) -> Path:
    """A KITTI 2015 layout (image_2, image_3, disp_occ_0) of textured pairs at a constant disparity."""
    import numpy as np

    for sub in ("image_2", "image_3", "disp_occ_0"):
        (folder / sub).mkdir(parents=True)
    for i in range(count):
        disparity_px = 3 + i % 4
        left, right = make_textured_pair(*BATCH_HW, disparity_px=disparity_px, seed=i)
        name = f"{i:06d}_10.png"
        cv2.imwrite(str(folder / "image_3" / name), right)
        cv2.imwrite(str(folder / "disp_occ_0" / name), np.full(BATCH_HW, disparity_px * 256, np.uint16))
        if i in corrupt:
            (folder / "image_2" / name).write_bytes(b"\x89PNG\r\n\x1a\n damaged")
        else:
            cv2.imwrite(str(folder / "image_2" / name), left)
    return folder
