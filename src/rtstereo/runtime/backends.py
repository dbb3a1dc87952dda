"""Backends run one prepared pair and return a disparity map; the Predictor does everything else.

- :class:`OpenCVBackend`: classical matchers; takes uint8 RGB ``(H, W, 3)``.
- :class:`TorchBackend`: a PyTorch module; takes float32 ``(1, 3, H, W)``.
- ONNX Runtime lives in :mod:`rtstereo.runtime.onnx` (no torch needed).
"""

from __future__ import annotations

import contextlib
import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InputError, require
from ..models.registry import coerce_setting
from ..text import counted
from .cuda_graphs import GraphPolicy


class Backend(ABC):
    """Runs a model on inputs already prepared for it."""

    name: str = "backend"
    #: whether ``run`` takes uint8 RGB images (classical) rather than normalised tensors
    takes_uint8: bool = False
    #: whether the data stays on the backend's device (:class:`TorchBackend`): the Predictor uploads
    #: the uint8 images (``upload``), normalises, pads, runs (``forward``) and post-processes there,
    #: and the finished map leaves the device once (``download``)
    device_postprocess: bool = False

    @abstractmethod
    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Disparity float32 ``(H, W)`` of the prepared inputs."""

    def mark(self) -> Any:
        """A point in time for stage timings (``mark().ms_until(later_mark)``)."""
        return HostMark()

    def synchronize(self) -> None:  # noqa: B027 - a no-op unless the backend queues device work
        """Wait for work queued on the device (nothing to wait for on the host)."""

    def take_setup_ms(self) -> float:
        """Milliseconds the last ``run`` spent setting itself up rather than running the model (an export
        made on first use at a new size), then 0 until the next setup: the Predictor reports them apart."""
        return 0.0

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

    def describe(self) -> dict[str, Any]:
        """As every backend's, plus ``searched_disp``: the disparities OpenCV searches (``max_disp`` rounded
        up to a multiple of 16), which results then record beside the ``max_disp`` asked for."""
        searched = getattr(self.matcher, "num_disparities", None)
        return {"backend": self.name, **({"searched_disp": int(searched)} if searched is not None else {})}


class TorchBackend(Backend):
    """A PyTorch module on CPU or CUDA, in float32, float16 or bfloat16.

    On CUDA the data stays on the device (the Predictor's device path): the uint8 images are
    uploaded once from page-locked memory (:meth:`upload`), normalised, padded, run and
    post-processed there, and only the finished map comes back (:meth:`download`, the one wait).

    Args:
        module: the network (``module(left, right)`` with float ``(1, 3, H, W)`` inputs).
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32``, ``fp16`` (CUDA only) or ``bf16``; half precisions run under autocast, so
            that softmax, sums (the soft-argmin regression) and norms stay in float32.
        device_postprocess: keep the data on the device: pre-process with :mod:`.preprocess_torch`
            and post-process with :mod:`.postprocess_torch` (the same results as numpy); ``None``
            turns it on for CUDA. On the CPU numpy and OpenCV are faster.
        channels_last: run in the channels-last memory layout (faster convolutions on tensor cores;
            the same outputs); ``None``: on for CUDA.
        cuda_graphs: ``auto`` (record a graph once one input shape repeats, as in video and live),
            ``on`` (from the first call of a shape) or ``off``; see :mod:`.cuda_graphs`. ``on``
            needs CUDA; ``auto`` is a no-op on the CPU.
        compile: ``off``, or a ``torch.compile`` mode (``default``, ``reduce-overhead``,
            ``max-autotune``); ``true`` means ``default``. The first call of each shape compiles
            (slow); the recorded graphs of ``auto`` are then left to the compiler.
        cudnn_benchmark: let cuDNN time its algorithms for each new shape (process-wide
            ``torch.backends.cudnn.benchmark``); ``None``: on for CUDA.
        half_weights: store convolution and linear weights in the half precision instead of
            casting them at every call: after the first forward, the layers that ran under autocast
            (norm layers and a network's full-precision parts keep float32); ``None``: on for
            fp16/bf16 on CUDA. The module is copied, so a module shared with other backends is untouched.
    """

    name = "torch"

    def __init__(
        self,
        module: Any,
        device: str = "cpu",
        precision: str = "fp32",
        device_postprocess: bool | None = None,
        *,
        channels_last: bool | None = None,
        cuda_graphs: str | bool = "auto",
        compile: str | bool = "off",
        cudnn_benchmark: bool | None = None,
        half_weights: bool | None = None,
    ):
        torch = require("torch", "torch", "the PyTorch backend")
        if precision not in ("fp32", "fp16", "bf16"):
            raise InputError(f"precision must be fp32, fp16 or bf16, got '{precision}'")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(
                f"--device cuda was asked for, but PyTorch sees no CUDA GPU{cpu_build_note(torch)}; use --device cpu "
                "(device='cpu' in Python)"
            )
        try:  # torch's own spelling: "cuda:01" passed the checks above and failed here with a RuntimeError
            torch_device = torch.device(device)
        except RuntimeError:
            torch_device = None
        if torch_device is None or torch_device.type not in ("cpu", "cuda"):
            raise InputError(f"device must be cpu or cuda[:N], got '{device}'")
        check_gpu_index(torch, device, " (device= in Python)")
        if precision == "fp16" and device == "cpu":
            raise InputError("fp16 needs --device cuda (device= in Python); on the CPU use fp32 or bf16")
        self.torch = torch
        self.device = torch_device
        on_gpu = self.device.type == "cuda"
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.precision = precision
        self.device_postprocess = on_gpu if device_postprocess is None else bool(device_postprocess)
        self.channels_last = on_gpu if channels_last is None else bool(channels_last)
        self.compile_mode = parse_compile_mode(compile)
        graph_mode = parse_graph_mode(cuda_graphs)
        if graph_mode == "on" and self.compile_mode != "off":
            raise InputError(
                "cuda_graphs=true and compile together: use compile=reduce-overhead, which records CUDA graphs itself"
            )
        if graph_mode == "on" and not on_gpu:
            raise InputError(
                "cuda_graphs=true needs --device cuda (device= in Python; a CUDA graph records GPU work); use auto "
                "or false"
            )
        if not on_gpu or self.compile_mode != "off":
            graph_mode = "off"
        self.graphs = GraphPolicy(graph_mode) if graph_mode != "off" else None
        self.cudnn_benchmark = on_gpu if cudnn_benchmark is None else bool(cudnn_benchmark)
        if self.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        half = self.dtype != torch.float32 and (on_gpu if half_weights is None else bool(half_weights))
        self.half_weights = half
        #: the weights are cast after the first forward, which finds the layers autocast covers
        self._cast_pending = half
        if half:
            module = copy.deepcopy(module)
        self.module = module.to(self.device).eval()
        if self.channels_last:
            to_channels_last(self.module)
        self.network = self.module
        if self.compile_mode != "off":
            self.network = torch.compile(self.module, mode=self.compile_mode)

    # -- the data's way through the device --------------------------------------------------------

    def upload(self, image: np.ndarray) -> Any:
        """A uint8 image as a tensor on the device: on CUDA from page-locked memory, without waiting."""
        tensor = self.torch.from_numpy(np.ascontiguousarray(image))
        if self.device.type != "cuda":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def download(self, tensor: Any) -> np.ndarray:
        """A device tensor as a numpy array: into page-locked memory, then one wait for the device."""
        if self.device.type != "cuda":
            return tensor.contiguous().numpy()
        host = self.torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        self.torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()

    def mark(self) -> Any:
        """A point on the device's timeline (CUDA events on a GPU), for stage timings without waiting."""
        if self.device.type == "cuda":
            return _CudaMark(self.torch, self.device)
        return HostMark()

    def forward(self, left: Any, right: Any) -> Any:
        """Disparity float32 ``(H, W)`` on the device, of float ``(1, 3, H, W)`` inputs on the device.

        Through a CUDA graph when one is recorded for this shape (:mod:`.cuda_graphs`).
        """
        if self._cast_pending:
            self._cast_pending = False
            # the eager module, so that a compiled one is traced once, with its final weights
            with autocast_layers(self.module, self.device.type) as covered, self.torch.inference_mode():
                out = self._network(left, right, self.module)
            cast_weights(covered, self.dtype)
            return out
        with self.torch.inference_mode():
            if self.graphs is not None:
                return self.graphs.run(self._network, left, right)
            return self._network(left, right)

    def _network(self, left: Any, right: Any, network: Any = None) -> Any:
        torch = self.torch
        network = self.network if network is None else network
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        left, right = left.contiguous(memory_format=layout), right.contiguous(memory_format=layout)
        if self.dtype == torch.float32:
            out = network(left, right)
        else:
            # no weight-cast cache: a CUDA graph must not keep tensors from outside its recording
            with torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=False):
                out = network(left, right)
        out = out.float()
        if out.ndim == 4:
            out = out[:, 0]
        return out[0]

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return self.download(self.forward(self.upload(left), self.upload(right)))

    def synchronize(self) -> None:
        """Wait for the device's queued work (so that stage timings are true on CUDA)."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.name, "device": str(self.device), "precision": self.precision}
        if self.device.type == "cuda":
            info.update(
                channels_last=self.channels_last,
                cuda_graphs=self.graphs.mode if self.graphs else "off",
                cudnn_benchmark=self.cudnn_benchmark,
            )
        if self.compile_mode != "off":
            info["compile"] = self.compile_mode
        return info


#: Settings of the PyTorch backend that ``--set`` accepts next to the model's own.
TORCH_RUNTIME_SETTINGS = ("channels_last", "cuda_graphs", "compile", "cudnn_benchmark")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


# The CPU build uninstalled first: an installed torch satisfies "pip install torch" from any index, which then changes
# nothing ("Requirement already satisfied").
TORCH_CUDA_INSTALL = "pip uninstall -y torch && pip install torch --index-url https://download.pytorch.org/whl/cu124"


def cpu_build_note(torch: Any) -> str:
    """Why PyTorch sees no GPU when it is its CPU-only build (``torch.version.cuda`` is ``None``), with the line that
    installs one built for CUDA; empty for a CUDA build (then the driver or the machine lacks the GPU)."""
    if getattr(torch.version, "cuda", None) is not None:
        return ""
    return (
        f": this PyTorch ({torch.__version__}) is its CPU-only build; install one built for CUDA ({TORCH_CUDA_INSTALL})"
    )


def check_gpu_index(torch: Any, device: Any, python_hint: str = "") -> None:
    """Refuse ``cuda:N`` beyond the GPUs PyTorch sees: the first copy to it failed with torch's own traceback
    ('invalid device ordinal'). ``python_hint`` ends the message (the argument a Python caller gives)."""
    device = torch.device(device)
    if device.type != "cuda" or device.index is None:
        return
    gpus = torch.cuda.device_count()
    if device.index >= gpus:
        names = "cuda:0" if gpus == 1 else f"cuda:0 to cuda:{gpus - 1}"
        raise InputError(f"--device {device}: PyTorch sees {counted(gpus, 'CUDA GPU')}, {names}{python_hint}")


def parse_graph_mode(value: Any) -> str:
    """``cuda_graphs`` as ``on``, ``off`` or ``auto`` (``true``/``false`` and the like accepted).

    Examples:
        >>> parse_graph_mode("true"), parse_graph_mode(False), parse_graph_mode("auto")
        ('on', 'off', 'auto')
    """
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        return "on" if coerce_setting("cuda_graphs", value, False) else "off"
    except InputError:
        raise InputError(f"setting 'cuda_graphs': expected true, false or auto, got '{value}'") from None


def parse_compile_mode(value: Any) -> str:
    """``compile`` as ``off`` or a ``torch.compile`` mode (``true`` means ``default``).

    Examples:
        >>> parse_compile_mode("true"), parse_compile_mode("reduce-overhead")
        ('default', 'reduce-overhead')
    """
    text = str(value).strip().lower()
    if text in COMPILE_MODES:
        return text
    try:
        return "default" if coerce_setting("compile", value, False) else "off"
    except InputError:
        pass
    raise InputError(f"setting 'compile': expected false, true or one of {', '.join(COMPILE_MODES)}, got '{value}'")


def torch_runtime_options(settings: dict[str, Any]) -> dict[str, Any]:
    """Take the PyTorch backend's settings (:data:`TORCH_RUNTIME_SETTINGS`) out of ``settings``.

    Returns:
        Keyword arguments for :class:`TorchBackend`, parsed (``settings`` loses those keys).

    Examples:
        >>> s = {"max_disp": 64, "cuda_graphs": "false", "channels_last": "true"}
        >>> torch_runtime_options(s), s
        ({'channels_last': True, 'cuda_graphs': 'off'}, {'max_disp': 64})
    """
    options: dict[str, Any] = {}
    for key in TORCH_RUNTIME_SETTINGS:
        if key not in settings:
            continue
        value = settings.pop(key)
        if key == "cuda_graphs":
            options[key] = parse_graph_mode(value)
        elif key == "compile":
            options[key] = parse_compile_mode(value)
        else:
            options[key] = coerce_setting(key, value, False)
    return options


@contextlib.contextmanager
def autocast_layers(module: Any, device_type: str) -> Iterator[list[Any]]:
    """The convolution and linear layers of ``module`` that run with autocast on, over the ``with``
    block (a layer run even once with autocast off, as in a network's full-precision part, is left out)."""
    import torch

    kinds = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
    seen: dict[Any, bool] = {}

    def record(layer: Any, _inputs: Any) -> None:
        seen[layer] = seen.get(layer, True) and _autocast_on(torch, device_type)

    handles = [layer.register_forward_pre_hook(record) for layer in module.modules() if isinstance(layer, kinds)]
    covered: list[Any] = []
    try:
        yield covered
    finally:
        for handle in handles:
            handle.remove()
    covered.extend(layer for layer, under_autocast in seen.items() if under_autocast)


def _autocast_on(torch: Any, device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4 has one function per device type
        return bool(torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled())


def cast_weights(layers: list[Any], dtype: Any) -> None:
    """Weights and biases of ``layers`` in ``dtype``, in place: what autocast would cast them to at
    every call (:func:`autocast_layers` finds them; norms and full-precision parts keep float32)."""
    for layer in layers:
        layer.to(dtype)


def to_channels_last(module: Any) -> Any:
    """Convolution weights in channels-last layout, in place (``channels_last_3d`` for 3-D ones: cost
    volume aggregation); ``Module.to(memory_format=...)`` refuses modules that hold both kinds."""
    import torch

    layouts = {4: torch.channels_last, 5: torch.channels_last_3d}
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.conv._ConvNd) and layer.weight.ndim in layouts:
            layer.weight.data = layer.weight.data.contiguous(memory_format=layouts[layer.weight.ndim])
    return module


class HostMark:
    """A point in host time (see :meth:`TorchBackend.mark`)."""

    def __init__(self) -> None:
        self.seconds = time.perf_counter()

    def ms_until(self, later: HostMark) -> float:
        return (later.seconds - self.seconds) * 1e3


class _CudaMark:
    def __init__(self, torch: Any, device: Any) -> None:
        self.event = torch.cuda.Event(enable_timing=True)
        self.event.record(torch.cuda.current_stream(device))

    def ms_until(self, later: _CudaMark) -> float:
        later.event.synchronize()
        return float(self.event.elapsed_time(later.event))
