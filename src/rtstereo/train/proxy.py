"""Training on real pairs without ground truth: proxy labels from SGBM where it is confident.

Real images teach a network what rendered scenes cannot (real textures, lenses, lighting), but the
project's real pairs with ground truth are for choosing and reporting only. Unlabeled real pairs may be
trained on: SGBM matches them, and only the pixels its left-right check and uniqueness test keep become
labels (Tonioni et al., "Unsupervised Adaptation for Deep Stereo", ICCV 2017, fine-tuned on a classical
matcher's confident disparities). Every other pixel, including low-texture areas SGBM cannot match, is
left out of the loss, so those are still learned from the rendered scenes mixed into every batch.

A folder of unlabeled pairs is any tree whose leaf folders hold exactly two images: the first in
sorted name order is the left view (``im0``/``im1``, ``left``/``right``, ``*_l``/``*_r``,
``colored_0``/``colored_1`` all sort that way).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError, RtStereoError, warn
from ..models.sgbm import CONFIDENT_LR_TOLERANCE_PX as LR_TOLERANCE_PX
from ..models.sgbm import CONFIDENT_UNIQUENESS as UNIQUENESS
from ..models.sgbm import confident_disparity
from ..pools import map_through_interrupts
from ..text import counted
from .augment import augment_batch, random_crop, say_padded_crops
from .hints import match_workers

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class UnlabeledPair:
    """A real rectified pair without ground truth."""

    name: str
    left_path: Path
    right_path: Path


def find_unlabeled_pairs(root: str | Path) -> list[UnlabeledPair]:
    """Every leaf folder under ``root`` holding exactly two images, as a pair (sorted: left, right); links to
    folders are followed, each real folder read once.

    Raises:
        DatasetError: ``root`` is missing or holds no such folder.
    """
    from ..datasets.readers import walk_following_links

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"unlabeled pairs: folder not found: {root}")
    pairs, others = [], []
    # Links to folders are followed, as --data and eval follow them (Path.rglob did not: a tree of links to the
    # pairs' folders held "no folder" of two images).
    for folder, _, names in sorted(walk_following_links(root)):
        files = (folder / name for name in names if Path(name).suffix.lower() in IMAGE_SUFFIXES)
        images = sorted(path for path in files if path.is_file())
        if len(images) == 2:
            pairs.append(UnlabeledPair(str(folder.relative_to(root)), images[0], images[1]))
        elif images:  # left out, and said: a Middlebury 2014 scene (im0, im1, im1E, im1L) was skipped without a word
            others.append(f"{folder.relative_to(root)} ({counted(len(images), 'image')})")
    listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    said = f"{counted(len(others), 'folder')} of images left out, holding not exactly two: {listed}" if others else ""
    if not pairs:
        raise DatasetError(
            f"unlabeled pairs: no folder under {root} holds exactly two images (a left and a right)"
            + (f"; {said}" if said else "")
        )
    if said:
        warn(f"{root}: {said} (a pair is a folder of two images, the left view first in name order)")
    return pairs


def labelled_share(labels: Sequence[np.ndarray]) -> float:
    """The share of all the pixels of ``labels`` that hold a label (finite), 0..1: the pixels summed over the maps,
    not a mean of each map's share, which counted a small image's pixels as much as a large one's.

    Examples:
        >>> labelled_share([np.ones((1, 2)), np.full((2, 2), np.nan)])  # 2 of 6 pixels; the mean of shares said 50 %
        0.3333333333333333
    """
    total = sum(label.size for label in labels)
    return float(sum(int(np.isfinite(label).sum()) for label in labels) / total) if total else 0.0


def proxy_disparity(left: np.ndarray, right: np.ndarray, max_disp: float = 192.0) -> np.ndarray:
    """SGBM disparity of the left view where a left-right check (1 px) and uniqueness (15) keep it, ``nan``
    elsewhere (:func:`rtstereo.models.sgbm.confident_disparity`, searching ``max_disp`` or a quarter of
    the width, whichever is less; a calibration's ``ndisp`` is passed as ``max_disp`` where there is one).

    Args:
        left, right: uint8 RGB ``(H, W, 3)``.
        max_disp: largest disparity searched, pixels.

    Returns:
        float32 ``(H, W)``, pixels.
    """
    return confident_disparity(left, right, max_disp, UNIQUENESS, LR_TOLERANCE_PX)


def calibrated_range(folder: Path) -> float | None:
    """``ndisp`` of a Middlebury-style ``calib.txt`` in ``folder`` (a bound on the disparities), if any."""
    calib = folder / "calib.txt"
    if not calib.is_file():
        return None
    for line in calib.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ndisp":
            try:
                return float(value.strip())
            except ValueError:
                return None
    return None


def _load_and_label(pair: UnlabeledPair, max_disp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """``(left, right, proxy disparity)`` of one pair, or why it cannot be read."""
    try:
        return _read_and_label(pair, max_disp)
    except RtStereoError as exc:  # a damaged file among the user's pairs: left out, not the end of the run
        return str(exc)


def _read_and_label(pair: UnlabeledPair, max_disp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ..io.images import read_image

    left, right = read_image(pair.left_path), read_image(pair.right_path)
    if left.shape != right.shape:
        raise DatasetError(f"unlabeled pair {pair.name}: left {left.shape} and right {right.shape} differ")
    search = min(max_disp, calibrated_range(pair.left_path.parent) or max_disp)
    return left, right, proxy_disparity(left, right, search)


class ProxyStream:
    """Random crops of unlabeled real pairs with their proxy labels (``nan`` → 0: not learned from).

    The labels are computed once, when the stream is made (about a second per pair and core). Batch
    ``s`` depends only on ``(seed, s)``.

    Args:
        root: folder of unlabeled pairs (see :func:`find_unlabeled_pairs`).
        batch_size: pairs per batch.
        crop_hw: crop size; images smaller than it are padded with invalid pixels.
        max_disp: largest disparity searched by SGBM, pixels.
        seed: stream seed.
        device: where batches go.
    """

    def __init__(
        self, root: str | Path, batch_size: int, crop_hw: tuple[int, int], max_disp: float, seed: int, device
    ) -> None:
        self.pairs = find_unlabeled_pairs(root)
        self.root, self.batch_size, self.crop_hw, self.seed, self.device = root, batch_size, crop_hw, seed, device
        # OpenCV's matcher releases the GIL: pairs are labelled in parallel threads, as many as the run's.
        pool = ThreadPoolExecutor(match_workers())
        loaded = map_through_interrupts(pool, lambda pair: _load_and_label(pair, max_disp), self.pairs)
        broken = [(pair, why) for pair, why in zip(self.pairs, loaded) if isinstance(why, str)]
        if broken:
            names = ", ".join(pair.name for pair, _ in broken[:5])
            more = f" and {len(broken) - 5} more" if len(broken) > 5 else ""
            warn(f"{root}: {counted(len(broken), 'unlabeled pair')} left out: {names}{more} ({broken[0][1]})")
        self.pairs = [pair for pair, why in zip(self.pairs, loaded) if not isinstance(why, str)]
        self.samples = [sample for sample in loaded if not isinstance(sample, str)]
        if not self.samples:
            raise DatasetError(f"unlabeled pairs: none of the {counted(len(loaded), 'pair')} under {root} can be read")
        say_padded_crops([(p.name, left.shape[:2]) for p, (left, _, _) in zip(self.pairs, self.samples)], crop_hw)
        self.label_density = labelled_share([d for _, _, d in self.samples])

    def describe(self) -> str:
        return (
            f"{counted(len(self.samples), 'unlabeled real pair')} from {self.root} with SGBM proxy labels "
            f"({100 * self.label_density:.0f} % of pixels)"
        )

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, 0x5EA1])
        picks = rng.integers(len(self.samples), size=self.batch_size)
        crops = [random_crop(*self.samples[i], None, self.crop_hw, rng) for i in picks]
        batch = {key: torch.stack([c[key] for c in crops]).to(self.device) for key in crops[0]}
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return augment_batch(batch, generator, self.crop_hw)


class MixedStream:
    """Each batch: rendered scenes from one stream and real proxy-labelled crops from another, concatenated."""

    def __init__(self, synthetic, real: ProxyStream) -> None:
        self.synthetic, self.real = synthetic, real

    def describe(self) -> str:
        return f"{self.synthetic.describe()} + {self.real.batch_size} per batch of {self.real.describe()}"

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        rendered, real = self.synthetic(step), self.real(step)
        return {key: torch.cat([rendered[key], real[key]]) for key in rendered if key in real}
