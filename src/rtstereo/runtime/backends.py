"""Backends run one prepared pair and return a disparity map; the Predictor does everything else.

- :class:`OpenCVBackend`: classical matchers; takes uint8 RGB ``(H, W, 3)``.
- :class:`TorchBackend`: a PyTorch module; takes float32 ``(1, 3, H, W)``.
- ONNX Runtime lives in :mod:`rtstereo.runtime.onnx` (no torch needed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import InputError, require


class Backend(ABC):
    """Runs a model on inputs already prepared for it."""

    name: str = "backend"
    #: whether ``run`` takes uint8 RGB images (classical) rather than normalised tensors
    takes_uint8: bool = False

    @abstractmethod
    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Disparity float32 ``(H, W)`` of the prepared inputs."""

    def describe(self) -> dict[str, Any]:
        """Settings to record in results (device, precision, providers...)."""
        return {"backend": self.name}


class OpenCVBackend(Backend):
    name = "opencv"
    takes_uint8 = True

    def __init__(self, matcher: Any):
        self.matcher = matcher

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return self.matcher(left, right)


class TorchBackend(Backend):
    """A PyTorch module on CPU or CUDA, in float32 or float16."""

    name = "torch"

    def __init__(self, module: Any, device: str = "cpu", precision: str = "fp32"):
        torch = require("torch", "torch", "the PyTorch backend")
        if precision not in ("fp32", "fp16", "bf16"):
            raise InputError(f"precision must be fp32, fp16 or bf16, got '{precision}'")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu")
        if device != "cpu" and not device.startswith("cuda"):
            raise InputError(f"device must be cpu or cuda[:N], got '{device}'")
        if precision == "fp16" and device == "cpu":
            raise InputError("fp16 needs --device cuda; on the CPU use fp32 or bf16")
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.precision = precision
        self.module = module.to(self.device).eval()

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        torch = self.torch
        a = torch.from_numpy(left).to(self.device)
        b = torch.from_numpy(right).to(self.device)
        with torch.inference_mode():
            if self.dtype == torch.float32:
                out = self.module(a, b)
            else:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    out = self.module(a, b)
        out = out.float()
        if out.ndim == 4:
            out = out[:, 0]
        return out[0].cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": str(self.device), "precision": self.precision}
