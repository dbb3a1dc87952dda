"""The training step: forward, loss, backward, clipping and the optimiser, without waiting for the device.

A GPU runs ahead of Python only while Python never asks it for a value. The step therefore keeps
everything it reports on the device: the loss of each step is added to a running sum there, and is
read (one synchronisation) only when a log line is written, by :meth:`TrainStep.flush`.

A step whose loss or gradients are not finite (a diverging batch; a numerical fault of bf16 autocast
on some CPUs) must leave the weights alone. Asking ``torch.isfinite(loss)`` in Python would wait for
the device every step, so the decision stays on the device too: the optimiser is AdamW's fused
implementation, which takes a ``found_inf`` tensor (the mechanism ``torch.amp.GradScaler`` uses) and
skips the whole update, weights, moments and step count alike, where it is 1. Under fp16 the
gradient scaler sets that tensor itself (overflowing gradients), which non-finite losses trigger too.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from ..errors import InputError
from ..models.registry import ModelSpec
from ..runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD
from .config import TrainConfig
from .distributed import Ranks, all_ranks_sum
from .losses import multiscale_loss, training_mask

Batch = dict[str, torch.Tensor]


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to 5 % of it at ``steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_optimizer(parameters: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused (one kernel for all weights; skips a step on the device, see the module notes)."""
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True)


class Normalizer:
    """RGB in 0..1 to network input, as the model spec's normalisation says, with constants kept on
    the device (building them from Python lists each step would copy, and wait, every step)."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in ("imagenet", "raw255", "unit", "none"):
            raise InputError(f"unknown normalization '{mode}' (expected imagenet, raw255 or unit)")
        self.mode = mode
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB in 0..1 to network input."""
        if self.mode == "imagenet":
            return (rgb - self.mean) / self.std
        if self.mode == "raw255":
            return rgb * 255.0
        return rgb


class TrainStep:
    """Optimiser steps that never wait for the device; their losses are read at log steps only.

    Args:
        model: the network to call, possibly wrapped (``DistributedDataParallel``, ``torch.compile``).
        optimizer: from :func:`make_optimizer` (fused AdamW: it honours ``found_inf``).
        scaler: a ``torch.amp.GradScaler`` for fp16, else ``None``.
        spec: the network's model spec (input normalisation).
        config: the run's configuration (learning-rate schedule, loss, clipping).
        dtype: autocast dtype (``None``: fp32).
        max_disp: the network's disparity range, pixels (the loss ignores ground truth beyond it).
        ranks: the data-parallel world (gradients are already averaged by the model's wrapper; a
            skip must then be agreed by all ranks, or their weights would drift apart).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: Any,
        spec: ModelSpec,
        config: TrainConfig,
        dtype: torch.dtype | None,
        max_disp: float,
        ranks: Ranks | None = None,
    ):
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.config, self.dtype, self.max_disp = config, dtype, max_disp
        self.ranks = ranks or Ranks()
        self.parameters = [p for group in optimizer.param_groups for p in group["params"]]
        self.device = self.parameters[0].device
        self.normalize = Normalizer(spec.normalization, self.device)
        # Sums since the last flush, on the device: loss of the finite steps, finite steps, skipped steps.
        self.totals = torch.zeros(3, device=self.device, dtype=torch.float64)

    def __call__(self, batch: Batch, step: int) -> None:
        """Train on ``batch`` as optimiser step ``step`` (0-based; sets the learning rate)."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(step, self.config)
        # Channels-last: the layout cuDNN's and oneDNN's fastest convolutions work in.
        left, right = (
            self.normalize(batch[side]).contiguous(memory_format=torch.channels_last) for side in ("left", "right")
        )
        gt = batch["disparity"]
        autocast = (
            torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None else contextlib.nullcontext()
        )
        hints = batch.get("hints")  # a guided network's (rtstereo.train.hints)
        with autocast:
            outputs = self.model(left, right) if hints is None else self.model(left, right, hints)
        predictions = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        valid = training_mask(gt, self.max_disp, self.config.loss_region)
        loss = multiscale_loss([p.float() for p in predictions], gt, valid, self.config.loss_weights)

        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, max_norm)
        bad = (~(torch.isfinite(loss) & torch.isfinite(grad_norm))).float()
        all_ranks_sum(bad, self.ranks)  # a tiny collective, queued like the rest: no wait
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # fused AdamW: skipped on the device when gradients overflowed
            self.scaler.update()
        else:
            self.optimizer.found_inf = bad.clamp(max=1.0)  # 1 = skip this update, on the device
            self.optimizer.step()
        finite = bad == 0
        self.totals += torch.stack(
            [torch.where(finite, loss.detach().double(), 0.0), finite.double(), (~finite).double()]
        )

    def flush(self) -> tuple[float, int]:
        """Mean loss of the finite steps since the last flush (``nan`` if none) and the number of
        skipped steps, over all ranks; the only point where the step waits for the device."""
        totals = all_ranks_sum(self.totals.clone(), self.ranks).tolist()
        self.totals.zero_()
        loss_sum, finite, skipped = totals
        # Under DDP every rank counted every step: per-rank counts are the sums over the world.
        finite, skipped = finite / self.ranks.world_size, skipped / self.ranks.world_size
        return (loss_sum / self.ranks.world_size / finite if finite else math.nan), round(skipped)
