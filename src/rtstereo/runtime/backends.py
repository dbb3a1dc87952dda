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
    #: whether the Predictor post-processes on the backend's device (``run_on_device``) instead of in
    #: numpy: the disparity then leaves the device once, after the post-processing
    device_postprocess: bool = False

    @abstractmethod
    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Disparity float32 ``(H, W)`` of the prepared inputs."""

    def run_on_device(self, left: np.ndarray, right: np.ndarray) -> Any:
        """The disparity as a tensor on the backend's device (backends with ``device_postprocess``)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no disparity on a device")

    def synchronize(self) -> None:  # noqa: B027 - a no-op unless the backend queues device work
        """Wait for work queued on the device (nothing to wait for on the host)."""

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
    """A PyTorch module on CPU or CUDA, in float32 or float16.

    Args:
        module: the network.
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32``, ``fp16`` (CUDA only) or ``bf16``.
        device_postprocess: post-process on the device with :mod:`.postprocess_torch` (the same
            results as numpy); ``None`` turns it on for CUDA, where the map then crosses to the host
            once, already finished. On the CPU numpy and OpenCV are faster.
    """

    name = "torch"

    def __init__(
        self, module: Any, device: str = "cpu", precision: str = "fp32", device_postprocess: bool | None = None
    ):
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
        on_gpu = self.device.type == "cuda"
        self.device_postprocess = on_gpu if device_postprocess is None else bool(device_postprocess)

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return self.run_on_device(left, right).cpu().numpy()

    def run_on_device(self, left: np.ndarray, right: np.ndarray) -> Any:
        """Disparity float32 ``(H, W)`` as a tensor left on the backend's device."""
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
        return out[0]

    def synchronize(self) -> None:
        """Wait for the device's queued work (so that stage timings are true on CUDA)."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": str(self.device), "precision": self.precision}
