"""Shape checks the networks share at their public boundary."""

from __future__ import annotations

from ..errors import InputError, torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)


def check_stereo_batch(network: str, left: torch.Tensor, right: torch.Tensor, size_divisor: int) -> None:
    """Refuse inputs a network cannot take, saying what it expects.

    Skipped while tracing for an ONNX export: the sizes are fixed there, and reading them as Python
    ints would only fill the log with tracer warnings.

    Args:
        network: name used in the messages (``"GwcNet"``).
        left, right: ``(N, 3, H, W)`` tensors of one shape.
        size_divisor: H and W must be multiples of it.
    """
    if torch.jit.is_tracing():
        return
    if left.dim() != 4 or left.shape[1] != 3:
        raise InputError(f"{network} expects left as (N, 3, H, W), got shape {tuple(left.shape)}")
    if tuple(right.shape) != tuple(left.shape):
        shapes = f"{tuple(left.shape)} and {tuple(right.shape)}"
        raise InputError(f"{network} expects left and right of the same shape, got {shapes}")
    height, width = int(left.shape[-2]), int(left.shape[-1])
    if height % size_divisor or width % size_divisor:
        raise InputError(
            f"{network} expects H and W to be multiples of {size_divisor}, got {height}x{width}; "
            "pad the images (rtstereo.runtime.preprocess.pad_to_divisor)"
        )
