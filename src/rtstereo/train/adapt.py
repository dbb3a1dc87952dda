"""Adapting a trained network to a user's camera from their unlabeled rectified pairs.

The loop behind ``rtstereo adapt``. Each step trains on random crops of the user's pairs with the
self-supervised losses of :mod:`rtstereo.train.selfsup` (photometric reconstruction, edge-aware
smoothness, optionally left-right consistency) and SGBM proxy labels (:mod:`rtstereo.train.proxy`),
plus a batch of rendered scenes with exact disparity under the supervised loss
(:mod:`rtstereo.train.losses`), so that the network keeps what it knows where the user's images
teach nothing (low texture, occlusions). Batch norms keep their trained statistics: batches of two
or four crops would estimate them badly.

A held-out part of the user's pairs is scored before and after (no ground truth: the photometric
error of the reconstruction and the left-right disagreement of the network with itself).
"""

from __future__ import annotations

import math
import numbers
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, RtStereoError, SettingError
from ..io.atomic import handlers_to_take
from ..models.registry import ModelSpec
from ..pools import map_through_interrupts
from ..runtime.providers import default_threads
from ..text import counted, duration
from .augment import random_crop
from .hints import hybrid_hint_settings, runtime_hints, tensor_runtime_hints, with_hints
from .losses import multiscale_loss, training_mask
from .proxy import labelled_share, proxy_disparity
from .selfsup import (
    consistency_error,
    consistency_loss,
    photometric_error,
    photometric_loss,
    proxy_loss,
    right_view_disparity,
    smoothness_loss,
    visible_in_right,
)
from .step import Normalizer

ADAPT_LOSSES = ("photometric", "smoothness", "consistency", "proxy")
DEFAULT_LOSSES = ("photometric", "smoothness", "proxy")
# Weights of the terms; "synthetic" is the supervised loss on rendered scenes (all predictions,
# coarse to fine). Chosen so that each term contributes a similar share of the starting loss.
RENDER_CHUNK = 16  # rendered pairs per call while filling the synthetic pool
SYNTHETIC_RANGE_DIVISOR = 4  # rendered disparities up to a quarter of the crop width, as in real pairs
SYNTHETIC_NOISE_SCALE = 0.2  # the sensor noise of the default network's last training stage
DEFAULT_WEIGHTS = {"photometric": 1.0, "smoothness": 0.01, "consistency": 0.05, "proxy": 0.2, "synthetic": 0.02}


SEED_LIMIT = 1 << 64  # torch.manual_seed takes seeds below it


@dataclass(frozen=True)
class AdaptConfig:
    """How to adapt.

    Attributes:
        losses: the self-supervised terms on the user's pairs, from ``ADAPT_LOSSES``.
        weights: weight of each term and of ``synthetic`` (missing ones: ``DEFAULT_WEIGHTS``); a weight of
            a term not in ``losses``, or of ``synthetic`` with ``synthetic_batch`` 0, is refused.
        steps: optimiser steps; ``None``: until ``minutes`` run out.
        minutes: wall-clock budget of the steps (scoring and labelling not counted); ``None``: no limit.
        batch_size: crops of the user's pairs per step.
        synthetic_batch: rendered pairs per step (0: none).
        synthetic_pool: rendered pairs the steps draw from (rendered once, see :func:`synthetic_pool`).
        crop_hw: crop size, pixels (rounded down to the network's size divisor, and to the images).
        lr: Adam learning rate after a short warm-up.
        holdout: fraction of the pairs kept out of training and scored before and after (at least
            one pair when there are two or more and the fraction is > 0).
        max_disp: largest disparity SGBM searches for proxy labels, pixels (a Middlebury ``calib.txt``
            beside the left image lowers it to its ``ndisp``).
        seed: crops, rendered scenes and the hold-out split depend on it only.
        log_every: steps between progress lines.
    """

    losses: tuple[str, ...] = DEFAULT_LOSSES
    weights: dict[str, float] = field(default_factory=dict)
    steps: int | None = None
    minutes: float | None = 10.0
    batch_size: int = 2
    synthetic_batch: int = 2
    synthetic_pool: int = 32
    crop_hw: tuple[int, int] = (160, 320)
    lr: float = 1e-4
    holdout: float = 0.1
    max_disp: float = 192.0
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.losses, str):  # iterated letter by letter, it was refused as "got p, h, o, t, o, ..."
            raise SettingError(
                "losses",
                f"expected a tuple of term names, e.g. ('photometric', 'smoothness'), got str {self.losses!r:.80}",
            )
        unknown = [name for name in self.losses if name not in ADAPT_LOSSES]
        if unknown or not self.losses:
            raise SettingError(
                "losses",
                f"expected one or more of {', '.join(ADAPT_LOSSES)} (comma-separated), got "
                f"{', '.join(self.losses) or 'none'}",
            )
        bad = [name for name in self.weights if name not in DEFAULT_WEIGHTS]
        if bad:
            raise SettingError("weights", f"unknown term(s) {', '.join(bad)} (known: {', '.join(DEFAULT_WEIGHTS)})")
        wrong = [f"{name}={value!r:.40}" for name, value in self.weights.items() if not _is_real(value)]
        if wrong:  # a string failed in the comparison below with a bare TypeError
            raise SettingError("weights", f"expected a number for each term, got {', '.join(wrong)}")
        if any(not (w >= 0 and math.isfinite(w)) for w in self.weights.values()):
            raise SettingError("weights", f"expected finite weights >= 0, got {self.weights}")
        # A weight of a term that does not run would be taken and ignored: the run would not be the one asked for.
        idle = [name for name in self.weights if name != "synthetic" and name not in self.losses]
        if idle:
            raise SettingError(
                "weights",
                f"{idle[0]}={self.weights[idle[0]]:g} weighs a term that is not among the losses "
                f"({', '.join(self.losses)}): add {idle[0]} to the losses, or drop its weight",
            )
        if "synthetic" in self.weights and self.synthetic_batch == 0:
            raise SettingError(
                "weights",
                f"synthetic={self.weights['synthetic']:g} weighs the rendered pairs, but none are mixed in "
                "(synthetic_batch 0): mix some in, or drop its weight",
            )
        if self.steps is None and self.minutes is None:
            raise InputError("give a budget: a number of steps, minutes, or both")
        if self.steps is not None and self.steps < 1:
            raise SettingError("steps", f"expected >= 1, got {self.steps}")
        # inf passed here and failed at the first progress line with an OverflowError traceback (its time left)
        if self.minutes is not None and not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise SettingError(
                "minutes", f"expected a finite number > 0, got {self.minutes} (no time limit: give steps alone)"
            )
        for name, value, least in (
            ("batch_size", self.batch_size, 1),
            ("synthetic_batch", self.synthetic_batch, 0),
            ("synthetic_pool", self.synthetic_pool, 1),
        ):
            if value < least:
                raise SettingError(name, f"expected >= {least}, got {value}")
        _check_batch_memory(self.batch_size, self.crop_hw)
        if self.synthetic_batch and self.weight("synthetic"):
            _check_pool_memory(self.synthetic_pool, self.synthetic_batch, self.crop_hw)
        if not 0.0 <= self.holdout < 1.0:
            raise SettingError("holdout", f"expected a fraction in 0..1 (1 excluded), got {self.holdout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SettingError("lr", f"expected a learning rate > 0 and finite, got {self.lr:g}")
        if not (self.max_disp > 0 and math.isfinite(self.max_disp)):
            raise SettingError(
                "max_disp", f"expected the proxy labels' disparity range > 0 pixels, got {self.max_disp}"
            )
        # numpy's generators take no seed below 0, torch's none of 2^64 or more: both failed after the pairs were
        # read and labelled, the second with a traceback (train and synth refuse theirs in one line too)
        if not 0 <= self.seed < SEED_LIMIT:
            raise SettingError("seed", f"expected an integer from 0 to 2^64 - 1, got {self.seed}")

    def weight(self, term: str) -> float:
        return float(self.weights.get(term, DEFAULT_WEIGHTS[term]))


def _is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (a numpy scalar too), not a bool or a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_batch_memory(batch_size: int, crop_hw: tuple[int, int]) -> None:
    """Refuse a batch whose crops alone do not fit the memory budget: ``--batch-size 1000000000000`` ended in a
    MemoryError traceback at the first step, after the pairs were read and labelled. The crops are cut on the host
    and stacked there (:data:`~rtstereo.runtime.memory.STACKED_CROP_BYTES_PER_PX`), whatever the device.

    Raises:
        SettingError: ``batch_size`` crops of ``crop_hw`` need more than the budget.
    """
    from ..runtime.memory import STACKED_CROP_BYTES_PER_PX, batch_over_budget, memory_budget

    problem = batch_over_budget(batch_size, crop_hw, STACKED_CROP_BYTES_PER_PX, memory_budget())
    if problem is not None:
        raise SettingError("batch_size", problem)


def _check_pool_memory(pool: int, batch: int, crop_hw: tuple[int, int]) -> None:
    """Refuse a pool of rendered pairs that does not fit the memory budget: ``--synthetic-pool 100000000`` rendered
    for minutes and grew without a word until the memory ran out, after the pairs were read and labelled. The pool
    (``max(pool, batch)`` pairs of ``crop_hw``, see :func:`synthetic_pool`) is rendered in chunks and then
    concatenated, which holds it twice (:data:`~rtstereo.runtime.memory.STACKED_CROP_BYTES_PER_PX`).

    Raises:
        SettingError: for ``synthetic_pool`` (or ``synthetic_batch`` when it is the larger), naming what fits.
    """
    from ..runtime.memory import STACKED_CROP_BYTES_PER_PX, batch_over_budget, memory_budget

    problem = batch_over_budget(max(pool, batch), crop_hw, STACKED_CROP_BYTES_PER_PX, memory_budget())
    if problem is not None:
        raise SettingError("synthetic_pool" if pool >= batch else "synthetic_batch", f"rendered pairs: {problem}")


@dataclass
class AdaptResult:
    """What :func:`adapt` did: steps, time, and the held-out scores before and after."""

    steps: int
    seconds: float
    train_names: list[str]
    holdout_names: list[str]
    scored_on_training_pairs: bool
    before: dict[str, float]
    after: dict[str, float]
    history: list[dict[str, float]]
    crop_hw: tuple[int, int] | None = None  # the crops trained on (``fit_crop`` of the asked size)
    interrupted: bool = False  # stopped by Ctrl+C before its budget (the weights are those it reached)
    skipped_steps: int = 0  # steps whose loss or gradients were not finite: counted in ``steps``, not applied
    worse: list[str] = field(default_factory=list)  # the scores that got clearly worse (:func:`worse_scores`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "skipped_steps": self.skipped_steps,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 1),
            "crop_hw": None if self.crop_hw is None else list(self.crop_hw),
            "train_pairs": self.train_names,
            "holdout_pairs": self.holdout_names,
            "scored_on_training_pairs": self.scored_on_training_pairs,
            "before": self.before,
            "after": self.after,
            # The verdict of WORSE_RULE on the scores above, so that the checkpoint says it too.
            "scores_worse": self.worse,
            "scores_worse_rule": WORSE_RULE,
        }


@dataclass(frozen=True)
class UserPair:
    """One of the user's rectified pairs, loaded: uint8 RGB ``(H, W, 3)`` each."""

    name: str
    left: np.ndarray
    right: np.ndarray
    max_disp: float | None = None  # the pair's own bound on its disparities (calib.txt), if known


def split_holdout(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, holdout)``: a ``fraction`` of ``count`` pairs held out, at least one when
    ``fraction > 0`` and ``count >= 2``; the rest (always at least one) trains.

    Examples:
        >>> split_holdout(10, 0.2, seed=0)[1].__len__(), split_holdout(1, 0.5, seed=0)
        (2, ([0], []))
    """
    if count < 1:
        raise InputError("no pairs to adapt on")
    held = 0 if fraction <= 0 or count < 2 else min(count - 1, max(1, round(fraction * count)))
    order = np.random.default_rng([seed, 0xADA]).permutation(count)
    return sorted(int(i) for i in order[held:]), sorted(int(i) for i in order[:held])


def fit_crop(crop_hw: tuple[int, int], pairs: Sequence[UserPair], divisor: int, kind: str = "pair") -> tuple[int, int]:
    """The crop size: at most ``crop_hw`` and the smallest image, rounded down to ``divisor``.

    Args:
        kind: what the error calls a pair too small (``"frame"`` for a stream's frames, named by their index).
    """
    if min(crop_hw) < divisor:
        raise InputError(f"crop {crop_hw[0]}x{crop_hw[1]}: the network takes crops of at least {divisor}x{divisor}")
    height = min(crop_hw[0], *(p.left.shape[0] for p in pairs)) // divisor * divisor
    width = min(crop_hw[1], *(p.left.shape[1] for p in pairs)) // divisor * divisor
    if height < divisor or width < divisor:
        small = next(p for p in pairs if min(p.left.shape[:2]) < divisor)  # the side that fails, not the area
        raise InputError(
            f"{kind} {small.name} is {small.left.shape[0]}x{small.left.shape[1]} (HxW) pixels: adapting needs "
            f"images of at least {divisor}x{divisor}"
        )
    return height, width


def labelling_threads() -> int:
    """Threads that label pairs in parallel (SGBM): ``$RTSTEREO_THREADS`` (``--threads``), at most one per core this
    process may use, as train's (:func:`~rtstereo.train.hints.match_workers`): it took one per core of the machine,
    however few it was given (taskset, a container), and ``--threads 64`` on two cores labelled 64 pairs at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, default_threads() or cores))


def proxy_labels(pairs: Sequence[UserPair], max_disp: float) -> list[np.ndarray]:
    """SGBM proxy disparity of each pair (``nan`` where its checks reject it), in parallel threads."""
    pool = ThreadPoolExecutor(labelling_threads())
    return map_through_interrupts(
        pool, lambda p: proxy_disparity(p.left, p.right, min(max_disp, p.max_disp or max_disp)), pairs
    )


def apply_step(total: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> bool:
    """Back-propagate ``total`` and take the optimiser step, unless the loss or a gradient is not finite.

    A finite loss can still have non-finite gradients (a uniform crop, grey or black: the exposure
    normalisation divides by a deviation of zero); one such step made every weight NaN, for good.

    Returns:
        Whether the step was applied (the gradients are left to be zeroed either way).
    """
    if not torch.isfinite(total):
        return False
    total.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if not torch.isfinite(norm):
        return False
    optimizer.step()
    return True


def adapting_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """``model`` put in training mode but for its batch norms, which keep their trained statistics (see
    the module notes), and an Adam optimiser of its trainable weights."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def pair_hints(pairs: Sequence[UserPair], settings: dict[str, Any]) -> list[np.ndarray]:
    """A guided network's hints for each whole pair (:func:`rtstereo.train.hints.runtime_hints`), in
    parallel threads."""
    return map_through_interrupts(
        ThreadPoolExecutor(labelling_threads()), lambda p: runtime_hints(p.left, p.right, settings), pairs
    )


def _to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255.0).to(device)


def _pad_to(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """Pad right and bottom to multiples of ``divisor`` by repeating the last column and row."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % divisor, 0, -h % divisor), mode="replicate")


class Adapter:
    """The network, its input normalisation and the losses: one object the loop and the scoring share.

    Args:
        model: the network (weights loaded; trained in place).
        spec: its registry entry (normalisation, size divisor).
        settings: its resolved settings (``max_disp``).
        config: the adaptation settings.
        loss_weights: weights of the network's training-mode predictions, coarse to fine (``None``:
            0.5 rising to 1).
        hint_settings: for a guided network (rtnet's ``guided``), the hybrid's settings that decide the
            hints it gets at run time (:func:`rtstereo.train.hints.hybrid_hint_settings`; ``None``: the
            registry's). The network then trains and is scored with those hints, as the hybrid runs it.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        spec: ModelSpec,
        settings: dict[str, Any],
        config: AdaptConfig,
        loss_weights: Sequence[float] | None = None,
        hint_settings: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.spec, self.config = model, spec, config
        self.device = next(model.parameters()).device
        self.normalize = Normalizer(spec.normalization, self.device)
        self.max_disp = float(settings.get("max_disp", 192))
        self.loss_weights = list(loss_weights) if loss_weights else None
        self.divisor = max(1, spec.size_divisor)
        guided = getattr(model, "guidance", None) is not None
        self.hint_settings = hybrid_hint_settings(hint_settings) if guided else None

    @property
    def guided(self) -> bool:
        """Whether the network takes SGBM's confident matches as hints (and so trains with them)."""
        return self.hint_settings is not None

    def hints_of(self, left: torch.Tensor, right: torch.Tensor, frame_width: int | None = None) -> torch.Tensor:
        """A guided network's hints for RGB 0..1 ``(N, 3, H, W)`` images, as the hybrid computes them
        (:func:`rtstereo.train.hints.runtime_hints`; ``frame_width``: of the frame they were cropped from)."""
        assert self.hint_settings is not None, "hints are for a guided network"
        return tensor_runtime_hints(left, right, self.hint_settings, frame_width)

    def _run(self, left: torch.Tensor, right: torch.Tensor, hints: torch.Tensor | None) -> Any:
        """The network on normalised inputs, with a guided network's ``hints`` (made from the images
        before they were normalised)."""
        return self.model(left, right) if hints is None else self.model(left, right, hints)

    def forward_train(
        self, left: torch.Tensor, right: torch.Tensor, hints: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """All training-mode predictions ``(N, H, W)``, coarse to fine, of RGB 0..1 inputs (a guided
        network's ``hints`` ``(N, 1, H, W)``: computed from the images when not given)."""
        if self.guided and hints is None:
            hints = self.hints_of(left, right)
        # Channels-last: the layout oneDNN's (and cuDNN's) fastest convolutions work in.
        left, right = (self.normalize(x).contiguous(memory_format=torch.channels_last) for x in (left, right))
        outputs = self._run(left, right, hints)
        return [p.float() for p in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]

    def _prediction_weights(self, count: int) -> list[float]:
        if self.loss_weights is not None and len(self.loss_weights) == count:
            return self.loss_weights
        return [float(w) for w in np.linspace(0.5, 1.0, count)] if count > 1 else [1.0]

    def user_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The enabled self-supervised terms (unweighted) on a batch of the user's crops."""
        left, right = batch["left"], batch["right"]
        final = self.forward_train(left, right, batch.get("hints"))[-1]
        terms: dict[str, torch.Tensor] = {}
        # Pixels the right camera does not see, by the prediction itself: their true match is hidden, so
        # neither the photometric nor the left-right term can say anything right about them.
        visible = visible_in_right(final)
        if "photometric" in self.config.losses:
            terms["photometric"] = photometric_loss(left, right, final, mask=visible)
        if "smoothness" in self.config.losses:
            terms["smoothness"] = smoothness_loss(final, left)
        if "proxy" in self.config.losses:
            terms["proxy"] = proxy_loss(final, batch["disparity"])
        if "consistency" in self.config.losses:
            right_d = right_view_disparity(lambda a, b: self.forward_train(a, b)[-1], left, right)
            terms["consistency"] = consistency_loss(final, right_d, mask=visible)
        return terms

    def synthetic_term(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The supervised loss on rendered pairs, over every prediction."""
        predictions = self.forward_train(batch["left"], batch["right"], batch.get("hints"))
        gt = batch["disparity"]
        # Matchable pixels only: the band with no match in the right view is filled after the network.
        valid = training_mask(gt, self.max_disp, "matchable")
        return multiscale_loss(predictions, gt, valid, self._prediction_weights(len(predictions)))

    @torch.no_grad()
    def predict(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Eval-mode disparity ``(N, H, W)`` of RGB 0..1 inputs of any size (padded, then cropped); a
        guided network gets the hints the hybrid would give it."""
        was_training = self.model.training
        self.model.eval()
        try:
            h, w = left.shape[-2:]
            hints = None
            if self.guided:  # of the images as they are; the padding has none
                hints = self.hints_of(left, right)
                hints = F.pad(hints, (0, -w % self.divisor, 0, -h % self.divisor))
            padded = (self.normalize(_pad_to(x, self.divisor)) for x in (left, right))
            out = self._run(*padded, hints)
            return out[..., :h, :w].float()
        finally:
            self.model.train(was_training)

    def check_scoring_memory(self, pairs: Sequence[UserPair]) -> None:
        """Refuse, before any training, a pair too large to score at full size within the memory budget that
        ``predict`` applies (:mod:`rtstereo.runtime.memory`): scoring ran it whole and could exhaust the memory.

        Raises:
            MemoryBudgetError: a pair whose estimated peak exceeds the budget, with the size that fits, if any.
        """
        from ..runtime.memory import (
            BUDGET_ENV,
            MemoryBudgetError,
            estimate_peak_bytes,
            format_bytes_apart,
            memory_budget,
            plan_network_size,
        )

        budget = memory_budget()
        name, kind = self.spec.name, self.spec.kind
        for pair in pairs:
            height, width = pair.left.shape[:2]
            estimate = estimate_peak_bytes(name, kind, self.max_disp, (height, width), size_divisor=self.divisor)
            if estimate <= budget.bytes:
                continue
            try:  # the size predict would run it at; its advice names predict's options, not adapt's
                fits_hw = plan_network_size(name, kind, self.max_disp, (height, width), self.divisor, budget=budget)
            except MemoryBudgetError:
                fits_hw = None
            resize = f"resize the pairs to at most {fits_hw[0]}x{fits_hw[1]} (HxW)" if fits_hw else "give smaller pairs"
            needed, allowed = format_bytes_apart(estimate, budget.bytes)
            raise MemoryBudgetError(
                f"pair {pair.name} cannot be scored whole, as adapt scores its pairs: {name} on a {height}x{width} "
                f"(HxW) pair needs about {needed}, more than the {allowed} budget ({budget.source}): {resize}, or set "
                f"{BUDGET_ENV} if the machine has more memory"
            )

    @torch.no_grad()
    def score(self, pairs: Sequence[UserPair]) -> dict[str, float]:
        """Mean over ``pairs`` of the photometric error and the left-right disagreement of the network.

        Returns:
            ``photometric`` (the loss's per-pixel error), ``lr_disagreement_px`` (mean
            ``|d_left - d_right(x - d_left)|``) and ``lr_bad1`` (% of pixels disagreeing by over 1 px),
            over pixels whose match lies inside the right image.
        """
        sums = {"photometric": 0.0, "lr_disagreement_px": 0.0, "lr_bad1": 0.0}
        for pair in pairs:
            left, right = _to_tensor(pair.left, self.device), _to_tensor(pair.right, self.device)
            disparity = self.predict(left, right)
            error, inside = photometric_error(left, right, disparity)
            right_d = right_view_disparity(self.predict, left, right)
            lr_error, lr_inside = consistency_error(disparity, right_d)
            count = max(1, int(inside.sum()))
            lr_count = max(1, int(lr_inside.sum()))
            sums["photometric"] += float((error * inside).sum()) / count
            sums["lr_disagreement_px"] += float((lr_error * lr_inside).sum()) / lr_count
            sums["lr_bad1"] += 100.0 * float(((lr_error > 1) & lr_inside).sum()) / lr_count
        return {key: value / max(1, len(pairs)) for key, value in sums.items()}


def synthetic_pool(
    config: AdaptConfig, crop_hw: tuple[int, int], max_disp_px: float, device: torch.device, echo: Callable[[str], None]
) -> dict[str, torch.Tensor] | None:
    """The rendered pairs the steps draw their synthetic batches from, rendered once up front.

    Rendering costs more than a training step on a CPU, and far less per pair in large batches; a
    few hundred adaptation steps need a reminder of what the network knows, not endless variety.
    """
    from ..datasets.synthetic import RenderSettings, render_batch

    if config.synthetic_batch == 0 or config.weight("synthetic") == 0:
        return None
    count = max(config.synthetic_pool, config.synthetic_batch)
    echo(f"rendering {counted(count, 'synthetic pair')} {crop_hw[0]}x{crop_hw[1]} to mix in ...")
    parts = [
        render_batch(
            min(RENDER_CHUNK, count - start),
            *crop_hw,
            seed=(config.seed << 20) + start,
            device=device,
            max_disp_px=float(max_disp_px),
            settings=RenderSettings(noise_scale=SYNTHETIC_NOISE_SCALE),
        )
        for start in range(0, count, RENDER_CHUNK)
    ]
    return {key: torch.cat([part[key] for part in parts]) for key in ("left", "right", "disparity")}


def adapt(
    adapter: Adapter,
    pairs: Sequence[UserPair],
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> AdaptResult:
    """Fine-tune ``adapter.model`` in place on ``pairs`` (see the module notes); returns what happened.

    Args:
        adapter: the network and settings.
        pairs: the user's rectified pairs (no ground truth).
        echo: where progress lines go.
        clock: seconds, for the ``minutes`` budget (tests pass a fake one).

    Raises:
        InputError: no pairs, pairs of different sizes within one pair, or images too small.
    """
    config = adapter.config
    train_ids, held_ids = split_holdout(len(pairs), config.holdout, config.seed)
    asked = round(config.holdout * len(pairs))
    if held_ids and len(held_ids) != asked:  # more or fewer than asked: said, not silent
        why = (
            "at least one pair is scored unseen (--holdout 0 trains on all)"
            if len(held_ids) > asked
            else "at least one pair is trained on"  # --holdout 0.95 of 8 pairs held out 7 without a word
        )
        echo(
            f"holding out {len(held_ids)} of {counted(len(pairs), 'pair')} ({100 * len(held_ids) / len(pairs):.0f} %, "
            f"not {100 * config.holdout:g} %): {why}"
        )
    train_pairs = [pairs[i] for i in train_ids]
    held_pairs = [pairs[i] for i in held_ids] or train_pairs
    crop_hw = fit_crop(config.crop_hw, train_pairs, adapter.divisor)
    if crop_hw != tuple(config.crop_hw):
        smallest_hw = min(p.left.shape[0] for p in train_pairs), min(p.left.shape[1] for p in train_pairs)
        # The reasons that apply: "at most the smallest image" was said when only the rounding shrank the crop.
        reasons = []
        if any(asked > smallest for asked, smallest in zip(config.crop_hw, smallest_hw)):
            reasons.append(f"at most the smallest training image ({smallest_hw[0]}x{smallest_hw[1]})")
        if any(min(asked, smallest) % adapter.divisor for asked, smallest in zip(config.crop_hw, smallest_hw)):
            reasons.append(f"in multiples of {adapter.divisor}, the network's size divisor")
        echo(f"crops {crop_hw[0]}x{crop_hw[1]}, not {config.crop_hw[0]}x{config.crop_hw[1]}: {', '.join(reasons)}")
    adapter.check_scoring_memory(held_pairs)  # before the labels and steps: it ran out of memory after them
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 0x5E1F])

    if "proxy" in config.losses:
        echo(f"proxy labels: SGBM on {counted(len(train_pairs), 'pair')} with its left-right check ...")
        labels: list[np.ndarray | None] = list(proxy_labels(train_pairs, config.max_disp))
        density = labelled_share([d for d in labels if d is not None])
        echo(f"proxy labels: {100 * density:.0f} % of pixels kept")
    else:
        labels = [None] * len(train_pairs)
    hint_maps: list[np.ndarray | None] = [None] * len(train_pairs)
    if adapter.guided:
        echo(
            f"hints: SGBM's confident matches of {counted(len(train_pairs), 'pair')}, as the hybrid gives its guided "
            "network"
        )
        hint_maps = list(pair_hints(train_pairs, adapter.hint_settings))

    scored = "held-out" if held_ids else "training (none held out)"
    echo(f"scoring {counted(len(held_pairs), scored + ' pair')} before adapting ...")
    before = adapter.score(held_pairs)
    echo("before: " + format_scores(before))

    model = adapter.model
    optimizer = adapting_optimizer(model, config.lr)
    pool_range = min(adapter.max_disp, crop_hw[1] / SYNTHETIC_RANGE_DIVISOR)
    pool = synthetic_pool(config, crop_hw, pool_range, adapter.device, echo)
    if pool is not None and adapter.guided:  # hints as the guided network was trained with (rtstereo.train.hints)
        pool = with_hints(pool, pool_range, torch.Generator().manual_seed(config.seed))
    warmup = 10
    history: list[dict[str, float]] = []
    # Sums of the terms since the last progress line, kept on the device: reading each term every step (float())
    # made the host wait for the step's optimiser update before it could cut the next batch's crops.
    running: dict[str, torch.Tensor] = {}
    start = clock()
    step = 0
    skipped = 0  # steps whose loss or gradients were not finite: counted, but not applied
    group_start = 0  # the step the progress group under way started after
    group_applied = 0  # the group's steps applied, whose terms are in ``running``: one NaN step made its means NaN
    stop = StopRequest()
    interrupted = False

    def log_group() -> None:
        # Also at a budget ended by time or Ctrl+C, where the last group is short.
        nonlocal running, group_start, group_applied
        if step == group_start:
            return
        # the one wait for the device; the means of the steps applied, none of a skipped one's terms
        means = {k: float(v) / group_applied for k, v in running.items()}
        record = {"step": step, "seconds": clock() - start, **means}
        history.append(record)
        group_skipped = step - group_start - group_applied
        running, group_start, group_applied = {}, step, 0
        terms_text = "  ".join(f"{k} {v:.4f}" for k, v in means.items()) or "no step applied"
        not_applied = f"  ({skipped} of {step} steps skipped: non-finite loss or gradient)" if skipped else ""
        if group_skipped and means:
            not_applied = f"{not_applied[:-1]}; the means leave out this line's {group_skipped})"
        of_steps = "" if config.steps is None else f" of {config.steps}"
        left = seconds_left(config, step, record["seconds"]) if not stop.requested else None
        left_text = "" if left is None else f", about {duration(left)} left"
        echo(f"step {step}{of_steps}  {record['seconds']:.0f} s{left_text}  {terms_text}{not_applied}")
        if skipped == step:
            raise RtStereoError(
                f"every step so far ({step}) had a non-finite loss or gradient and changed nothing: the network's "
                "predictions or the images give NaN or infinity (try a lower learning rate, other losses, or check "
                "the pairs)"
            )

    with stop:
        while True:
            elapsed = clock() - start
            if config.steps is not None and step >= config.steps:
                break
            if config.minutes is not None and elapsed >= 60.0 * config.minutes:
                break
            if stop.requested:
                if step == 0:
                    raise KeyboardInterrupt  # nothing adapted: nothing to score or keep
                echo(
                    f"interrupted at step {step}: scoring and keeping the weights reached (Ctrl+C again stops at once)"
                )
                interrupted = True
                break
            for group in optimizer.param_groups:
                group["lr"] = config.lr * min(1.0, (step + 1) / warmup)
            picks = rng.integers(len(train_pairs), size=config.batch_size)
            crops = [
                random_crop(train_pairs[i].left, train_pairs[i].right, labels[i], None, crop_hw, rng, hint_maps[i])
                for i in picks
            ]
            keys = ("left", "right", "disparity", "hints") if adapter.guided else ("left", "right", "disparity")
            batch = {key: torch.stack([c[key] for c in crops]).to(adapter.device) for key in keys}
            terms = adapter.user_terms(batch)
            total = sum((config.weight(name) * value for name, value in terms.items()), torch.zeros(()))
            if pool is not None:
                picks = torch.from_numpy(rng.integers(pool["left"].shape[0], size=config.synthetic_batch))
                terms["synthetic"] = adapter.synthetic_term({key: value[picks] for key, value in pool.items()})
                total = total + config.weight("synthetic") * terms["synthetic"]
            optimizer.zero_grad(set_to_none=True)
            applied = apply_step(total, model, optimizer)
            skipped += not applied
            step += 1
            group_applied += applied
            for name, value in {**terms, "total": total}.items() if applied else ():
                term = value.detach().double()
                running[name] = running[name] + term if name in running else term
            if step % config.log_every == 0 or step == config.steps:
                log_group()
        log_group()
    seconds = clock() - start
    model.eval()
    echo(f"scoring {counted(len(held_pairs), scored + ' pair')} after {counted(step, 'step')} ({seconds:.0f} s) ...")

    def finishing() -> None:
        echo("Ctrl+C: the steps are over; scoring and keeping the weights reached (Ctrl+C again stops at once)")

    # A first Ctrl+C here, after the whole budget, threw the adapted weights away with the default handler.
    with StopRequest(finishing, requested=interrupted):
        after = adapter.score(held_pairs)
    echo("after:  " + format_scores(after))
    return AdaptResult(
        steps=step,
        seconds=seconds,
        train_names=[p.name for p in train_pairs],
        holdout_names=[p.name for p in held_pairs] if held_ids else [],
        scored_on_training_pairs=not held_ids,
        before=before,
        after=after,
        history=history,
        crop_hw=crop_hw,
        interrupted=interrupted,
        skipped_steps=skipped,
        worse=worse_scores(before, after),
    )


def seconds_left(config: AdaptConfig, step: int, elapsed_s: float) -> float | None:
    """Time to the end of the budget: the steps left at the pace so far, or the minutes left, whichever is
    sooner; ``None`` once the budget is spent.

    Examples:
        >>> seconds_left(AdaptConfig(steps=100, minutes=None), 10, 5.0), seconds_left(AdaptConfig(steps=100), 10, 5.0)
        (45.0, 45.0)
        >>> seconds_left(AdaptConfig(minutes=1.0), 10, 20.0), seconds_left(AdaptConfig(steps=10), 10, 5.0)
        (40.0, None)
    """
    left = []
    if config.steps is not None and step > 0:
        left.append(elapsed_s / step * (config.steps - step))
    if config.minutes is not None:
        left.append(60.0 * config.minutes - elapsed_s)
    if not left or min(left) <= 0:
        return None
    return min(left)


class StopRequest:
    """Ctrl+C or SIGTERM while it is entered asks the loop to stop between two steps (:attr:`requested`); a
    second one stops at once (``KeyboardInterrupt``). Outside the main thread it does nothing.

    Args:
        on_request: called at the first Ctrl+C (to say what happens now).
        requested: a Ctrl+C came before (the next one stops at once).
    """

    def __init__(self, on_request: Callable[[], None] | None = None, requested: bool = False) -> None:
        self.requested = requested
        self._on_request = on_request
        self._previous: dict[int, Any] | None = None

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - signal's signature
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._on_request is not None:
            self._on_request()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (kill, a job scheduler's stop) as Ctrl+C: its default action threw the steps away. An ignored
            # signal (a background job's SIGINT) stays ignored, as everywhere (handlers_to_take).
            numbers = handlers_to_take((signal.SIGINT, signal.SIGTERM))
            self._previous = {number: signal.signal(number, self._handle) for number in numbers}
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, handler in (self._previous or {}).items():
            signal.signal(number, handler)
        self._previous = None


WORSE_RELATIVE = 0.10  # a score up by more than this fraction of its value before adapting is "clearly worse"
# ... and by more than these too: near zero (uniform pairs, 0.0000 -> 0.0000 shown) a tenth is noise. The
# photometric floor is a twentieth of the error of a trained network on textured pairs (about 0.02).
WORSE_PHOTOMETRIC = 0.001
WORSE_DISAGREEMENT_PX = 0.25
WORSE_RULE = (
    f"photometric error up by more than {WORSE_RELATIVE:.0%} of its value before and {WORSE_PHOTOMETRIC:g}, or "
    f"the left-right disagreement up by more than {WORSE_RELATIVE:.0%} and {WORSE_DISAGREEMENT_PX:g} px"
)


def worse_scores(before: dict[str, float], after: dict[str, float]) -> list[str]:
    """The scores of :meth:`Adapter.score` that got clearly worse by :data:`WORSE_RULE`, one text each.

    Adapting can collapse (a network that reproduces nothing, as an untrained one): the held-out
    scores are what tells it, without ground truth.

    Examples:
        >>> before = {"photometric": 0.02, "lr_disagreement_px": 0.3}
        >>> worse_scores(before, {"photometric": 0.51, "lr_disagreement_px": 9.8})
        ['photometric error 0.0200 -> 0.5100 (+2450 %)', 'left-right disagreement 0.30 -> 9.80 px']
        >>> worse_scores(before, {"photometric": 0.021, "lr_disagreement_px": 0.5})  # +67 %, but only 0.2 px
        []
        >>> uniform = {"photometric": 2e-5, "lr_disagreement_px": 0.0}  # grey pairs: +100 %, but only 0.00002
        >>> worse_scores(uniform, {"photometric": 4e-5, "lr_disagreement_px": 0.0})
        []
    """
    worse = []
    photometric = before["photometric"], after["photometric"]
    # a NaN after is worse too
    if not photometric[1] <= max(photometric[0] * (1 + WORSE_RELATIVE), photometric[0] + WORSE_PHOTOMETRIC):
        change = f" (+{100 * (photometric[1] / photometric[0] - 1):.0f} %)" if photometric[0] > 0 else ""
        worse.append(f"photometric error {photometric[0]:.4f} -> {photometric[1]:.4f}{change}")
    disagreement = before["lr_disagreement_px"], after["lr_disagreement_px"]
    if not disagreement[1] <= max(disagreement[0] * (1 + WORSE_RELATIVE), disagreement[0] + WORSE_DISAGREEMENT_PX):
        worse.append(f"left-right disagreement {disagreement[0]:.2f} -> {disagreement[1]:.2f} px")
    return worse


def risen_scores(before: dict[str, float], after: dict[str, float]) -> list[str]:
    """The scores of :meth:`Adapter.score` that rose at the precision they are printed with (4 and 2 decimals), one
    text each: those :func:`worse_scores` judges not clearly worse are still worse, and the user is told so.

    Examples:
        >>> before = {"photometric": 0.215, "lr_disagreement_px": 0.96}
        >>> risen_scores(before, {"photometric": 0.2144, "lr_disagreement_px": 1.09})
        ['left-right disagreement 0.96 -> 1.09 px (+14 %)']
        >>> risen_scores(before, {"photometric": 0.2257, "lr_disagreement_px": 0.964})  # 0.96 px as printed
        ['photometric error 0.2150 -> 0.2257 (+5.0 %)']
        >>> risen_scores(before, {"photometric": 0.215, "lr_disagreement_px": 0.9683})
        ['left-right disagreement 0.96 -> 0.97 px (+0.9 %)']
        >>> a, b = ({"photometric": x, "lr_disagreement_px": 0.05} for x in (0.57924, 0.57946))  # 0.04 %, not 0.0
        >>> risen_scores(a, b)
        ['photometric error 0.5792 -> 0.5795 (+0.038 %)']
    """
    risen = []
    for key, text, decimals, unit in (
        ("photometric", "photometric error", 4, ""),
        ("lr_disagreement_px", "left-right disagreement", 2, " px"),
    ):
        was, now = round(before[key], decimals), round(after[key], decimals)
        if now > was:
            percent = 100 * (after[key] / before[key] - 1) if before[key] > 0 else None
            # a rise under the rule's 10 % is often under 1 %: "(+0 %)" read as no rise at all, and so did "(+0.0 %)"
            change = ""
            if percent is not None:
                digits = ".2g" if percent < 0.1 else ".1f" if percent < 10 else ".0f"
                change = f" (+{percent:{digits}} %)"
            risen.append(f"{text} {was:.{decimals}f} -> {now:.{decimals}f}{unit}{change}")
    return risen


def format_scores(scores: dict[str, float]) -> str:
    """One line of :meth:`Adapter.score`'s figures."""
    return (
        f"photometric error {scores['photometric']:.4f}, left-right disagreement "
        f"{scores['lr_disagreement_px']:.2f} px ({scores['lr_bad1']:.1f} % over 1 px)"
    )
