"""Hints for a guided network (rtnet's ``guided`` setting): SGBM's confident matches of each pair.

A guided network takes, beside the two images, the disparities SGBM is sure of
(:func:`rtstereo.models.sgbm.confident_disparity`, exactly as the hybrid method computes them at run
time, with the hybrid's settings: one pass in the 3-direction mode, uniqueness 10 %, OpenCV's own
left-right check at 1 px), and learns to carry them into the pixels SGBM leaves open. Training must
show it the same hints it will get at run time, so every training and validation pair gets them from
the very images the network sees, after augmentation. (Adapting a guided network to a user's pairs
gives it the hybrid's hints exactly, with its settings: :func:`runtime_hints`.)

Two things differ from the hybrid. Rendered scenes often have disparities beyond a quarter of their
width, where the hybrid caps SGBM's range (real scenes rarely do), so SGBM searches the network's whole
range here. And on rendered scenes SGBM's confident matches are far less reliable than on real ones
(0.25 to 0.9 of them more than 2 px off on 256x512 scenes, against about 0.05 on the real scenes of
the selection set). A network trained on such hints would learn to distrust them. Training therefore
keeps every right hint (within ``RIGHT_PX`` of the ground truth) and only as many wrong ones, at
random, as make ``WRONG_SHARE`` of what is kept: the hints keep SGBM's pattern (where it is
confident) and take the error rate it has on real scenes.

OpenCV's SGBM runs one pair at a time on the CPU: the pairs of a batch are the one place where
training walks a batch in Python (about 15 ms per 256x512 pair in the 5-direction mode, a tenth of a
CPU step; less in the 3-direction one). They are matched on a pool of threads, one per core (OpenCV
releases the interpreter lock), so that a GPU machine's cores keep up with its training steps.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ..models.sgbm import confident_search_range
from ..pools import map_through_interrupts
from ..runtime.hybrid import confident_matches

Batch = dict[str, torch.Tensor]

RIGHT_PX = 2.0  # a hint this close to the ground truth is right
WRONG_SHARE = 0.05  # of the kept hints, wrong ones (SGBM's confident matches on real scenes: about 5 %)


def sgbm_hints(left: torch.Tensor, right: torch.Tensor, max_disp_px: float) -> torch.Tensor:
    """SGBM's confident disparities of a batch, ``(B, 1, H, W)`` pixels on the images' device, 0 where
    SGBM is not confident.

    Args:
        left, right: ``(B, 3, H, W)`` RGB in 0..1 (as the training streams make them).
        max_disp_px: the range SGBM searches (the network's; not capped at a quarter of the width).
    """
    # The hybrid's thresholds and mode (stages 18 and 19 of rtnet-guided had the 5-direction mode and
    # uniqueness 15, the hybrid's until session 13); its range cap is left out (module notes).
    settings = hybrid_hint_settings()
    return _per_pair(left, right, lambda a, b: _match(a, b, max_disp_px, settings))


def uint8_images(*batches: torch.Tensor) -> list[np.ndarray]:
    """RGB 0..1 ``(B, 3, H, W)`` batches as uint8 ``(B, H, W, 3)`` arrays on the CPU, as OpenCV takes them."""
    images = [(side.detach().float().clamp(0, 1) * 255).round().to(torch.uint8) for side in batches]
    return [side.permute(0, 2, 3, 1).contiguous().cpu().numpy() for side in images]


def _per_pair(left: torch.Tensor, right: torch.Tensor, match: Callable[..., np.ndarray]) -> torch.Tensor:
    """``match(left, right)`` of every uint8 RGB pair of a batch of RGB 0..1 ``(B, 3, H, W)`` images, on
    the pool's threads (one OpenCV call per pair: module notes), as ``(B, 1, H, W)`` hints, 0 where none."""
    pairs = zip(*uint8_images(left, right), strict=True)
    maps = map_through_interrupts(_match_pool(), lambda pair: match(*pair), pairs, own_pool=False)
    return torch.from_numpy(np.nan_to_num(np.stack(maps), nan=0.0)[:, None]).to(left.device)


def _match(left: np.ndarray, right: np.ndarray, search_px: float, settings: Mapping[str, Any]) -> np.ndarray:
    """SGBM's confident matches with the hybrid's thresholds and mode, searching ``search_px`` (no cap)."""
    return confident_matches(left, right, dict(settings), search_px, quarter_width_cap=False)


def match_workers() -> int:
    """Threads that match pairs with SGBM at once: as many as PyTorch may use here (``--threads``, a run's
    ``threads``), at most one per core this process may use (``train --threads 1`` matched on every core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, torch.get_num_threads()))


def _match_pool() -> ThreadPoolExecutor:
    """The threads SGBM matches the pairs of a batch on (:func:`match_workers`; one pool per count, made once)."""
    return _pool_of(match_workers())


@functools.cache
def _pool_of(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="rtstereo-hints")


def thin_wrong_hints(
    hints: torch.Tensor, disparity: torch.Tensor, generator: torch.Generator, wrong_share: float = WRONG_SHARE
) -> torch.Tensor:
    """``hints`` with the wrong ones of each pair thinned at random to ``wrong_share`` of those kept.

    Args:
        hints: ``(B, 1, H, W)`` pixels, 0 where none.
        disparity: ``(B, H, W)`` ground truth, pixels (0 or less where unknown: hints there are kept).
        generator: the draws (on the CPU).
        wrong_share: of the kept hints, the share that may be wrong (a pair with fewer keeps them all).
    """
    present = hints[:, 0] > 0
    known = disparity > 0
    wrong = present & known & ((hints[:, 0] - disparity).abs() > RIGHT_PX)
    right = present & ~wrong
    n_right = right.flatten(1).sum(1).float()
    n_wrong = wrong.flatten(1).sum(1).float()
    keep_probability = (wrong_share / (1 - wrong_share) * n_right / n_wrong.clamp(min=1)).clamp(max=1)
    draws = torch.rand(wrong.shape, generator=generator).to(hints.device)
    dropped = wrong & (draws >= keep_probability.view(-1, 1, 1))
    return torch.where(dropped[:, None], torch.zeros_like(hints), hints)


def with_hints(batch: Batch, max_disp_px: float, generator: torch.Generator | None = None) -> Batch:
    """``batch`` with ``"hints"`` added: :func:`sgbm_hints` of its images, and with a ``generator``
    the wrong ones thinned against its ground truth (:func:`thin_wrong_hints`)."""
    hints = sgbm_hints(batch["left"], batch["right"], max_disp_px)
    if generator is not None:
        hints = thin_wrong_hints(hints, batch["disparity"], generator)
    return {**batch, "hints": hints}


class HintedStream:
    """A training stream whose batches carry hints (:func:`with_hints`, wrong ones thinned), for a
    guided network; the draws of batch ``s`` depend on ``(seed, s)`` only."""

    def __init__(self, stream: Callable[[int], Batch], max_disp_px: float, seed: int = 0):
        self.stream, self.max_disp_px, self.seed = stream, max_disp_px, seed

    def describe(self) -> str:
        describe: Any = getattr(self.stream, "describe", None)
        inner = describe() if describe else "batches"
        return f"{inner}, with SGBM's confident matches as hints ({WRONG_SHARE:.0%} of them wrong at most)"

    def __call__(self, step: int) -> Batch:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return with_hints(self.stream(step), self.max_disp_px, generator)


def hybrid_hint_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The hybrid method's settings (the registry's, with ``overrides``) that decide the hints it hands
    its guided network at run time: ``max_disp``, ``uniqueness``, ``lr_tolerance``, ``mirrored_check``,
    ``three_way``, ``sgbm_input``."""
    from ..models import get_spec

    hybrid = get_spec("hybrid")
    own = {key: value for key, value in (overrides or {}).items() if key in hybrid.defaults}
    return hybrid.resolve_settings(own)


def runtime_hints(
    left: np.ndarray, right: np.ndarray, settings: Mapping[str, Any], frame_width: int | None = None
) -> np.ndarray:
    """SGBM's confident matches of a pair as the hybrid computes them at run time (adapting a guided
    network to a user's pairs trains it with these), float32 ``(H, W)`` pixels, ``nan`` where none.

    Args:
        left, right: uint8 RGB ``(H, W, 3)``, a whole frame or a crop of one.
        settings: the hybrid's (:func:`hybrid_hint_settings`).
        frame_width: width of the frame a crop was cut from: the search stops at a quarter of it, as on
            the whole frame (default: the images' own width); never at or beyond the crop's width.
    """
    width = left.shape[1]
    search = confident_search_range(frame_width or width, float(settings["max_disp"]))
    search = min(search, (width - 1) // 16 * 16)  # OpenCV needs more columns than disparities
    if search < 16:
        return np.full(left.shape[:2], np.nan, np.float32)
    return _match(left, right, search, settings)


def tensor_runtime_hints(
    left: torch.Tensor, right: torch.Tensor, settings: Mapping[str, Any], frame_width: int | None = None
) -> torch.Tensor:
    """:func:`runtime_hints` of a batch of RGB 0..1 ``(B, 3, H, W)`` images: ``(B, 1, H, W)`` on their
    device, 0 where none (one OpenCV call per pair)."""
    return _per_pair(left, right, lambda a, b: runtime_hints(a, b, settings, frame_width))
