"""Small generated stereo videos and a small network for the adaptation tests (a helper module, not a
conftest: tests/stream imports its own conftest by that name)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tests.stream.conftest import write_video as write_video  # an mp4 (mp4v) of RGB frames, as the stream tests write


def sliding_frames(count: int, height: int = 64, width: int = 128, disparity_px: int = 5, seed: int = 1):
    """``(lefts, rights)``: blob-textured RGB pairs (coarse enough to survive mp4) at one disparity,
    the texture sliding 2 px per frame."""
    rng = np.random.default_rng(seed)
    size = (height // 4 + 1, (width + disparity_px + 2 * count) // 4 + 1, 3)
    coarse = rng.integers(0, 256, size=size, dtype=np.uint8)
    wide = cv2.resize(coarse, (coarse.shape[1] * 4, coarse.shape[0] * 4), interpolation=cv2.INTER_LINEAR)[:height]
    lefts = [np.ascontiguousarray(wide[:, 2 * t : 2 * t + width]) for t in range(count)]
    rights = [np.ascontiguousarray(wide[:, 2 * t + disparity_px : 2 * t + disparity_px + width]) for t in range(count)]
    return lefts, rights


def write_tiny_checkpoint(path: Path) -> Path:
    """A small-range rtnet with random weights, as a self-describing checkpoint (quicker than rtnet-v4)."""
    import torch

    from rtstereo.models.checkpoint import save_checkpoint
    from rtstereo.train.loop import build_network

    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32})
    save_checkpoint(path, spec.name, settings, module.state_dict())
    return path
