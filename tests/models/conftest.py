"""Shared helpers of the model tests: small stereo pairs with known disparity."""

from __future__ import annotations

import numpy as np


def shifted_pair(shift_px: int = 8, hw: tuple[int, int] = (96, 160)) -> tuple[np.ndarray, np.ndarray]:
    """A textured plane at a constant disparity: the right view is the left shifted by ``shift_px``."""
    rng = np.random.default_rng(3)
    wide = (rng.random((hw[0], hw[1] + shift_px, 3)) * 255).astype(np.uint8)
    return np.ascontiguousarray(wide[:, :-shift_px]), np.ascontiguousarray(wide[:, shift_px:])


def plane_and_hole(shift_px: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured plane at ``shift_px`` and a confident map with a 20-px-wide hole across every row."""
    left, right = shifted_pair(shift_px)
    confident = np.full(left.shape[:2], float(shift_px), np.float32)
    confident[:, 60:80] = np.nan
    return left, right, confident


def random_selector_weights(features: tuple[str, ...], hidden: int = 4, seed: int = 1) -> dict:
    """Weights of a one-hidden-layer selector (the hole selector's or the confident check's layout)."""
    rng = np.random.default_rng(seed)
    return {
        "features": features,
        "hidden_weight": rng.normal(size=(hidden, len(features))),
        "hidden_bias": rng.normal(size=hidden),
        "output_weight": rng.normal(size=hidden),
        "output_bias": 0.5,
    }
