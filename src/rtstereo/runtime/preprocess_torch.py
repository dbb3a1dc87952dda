"""The pre-processing of :mod:`.preprocess` as torch code, for the GPU.

On CUDA the uint8 images cross to the device once (a quarter of the bytes of the float32 input) and
are normalised and padded there. Each function equals its numpy/OpenCV counterpart within float
rounding (the tests hold them to 1e-6 on the CPU).

Shapes: images ``(H, W, 3)`` uint8 tensors; network input ``(1, 3, H, W)`` float32.
"""

from __future__ import annotations

from ..errors import InputError, torch_missing

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .preprocess import IMAGENET_MEAN, IMAGENET_STD, pad_amounts


def _scale_offset(mode: str) -> tuple[list[float], list[float]]:
    """Per-channel ``(scale, offset)`` so that ``input = uint8 * scale + offset`` (as :func:`.preprocess.normalize`)."""
    if mode == "imagenet":
        return (1.0 / (255.0 * IMAGENET_STD)).tolist(), (-IMAGENET_MEAN / IMAGENET_STD).tolist()
    if mode == "unit":
        return [1.0 / 255.0] * 3, [0.0] * 3
    if mode == "raw255":
        return [1.0] * 3, [0.0] * 3
    raise InputError(f"unknown normalization '{mode}' (expected imagenet, raw255 or unit)")


def normalize(image: torch.Tensor, mode: str) -> torch.Tensor:
    """:func:`.preprocess.normalize` on a tensor: uint8 RGB ``(H, W, 3)`` to float32 ``(1, 3, H, W)``.

    The result keeps the image's pixel-interleaved layout (it is a channels-last tensor): networks
    run in channels-last take it without a copy; others make it contiguous.

    Args:
        image: ``uint8`` RGB ``(H, W, 3)`` on any device.
        mode: ``imagenet``, ``raw255`` or ``unit``.

    Returns:
        float32 ``(1, 3, H, W)`` on the image's device.

    Examples:
        >>> normalize(torch.full((2, 2, 3), 255, dtype=torch.uint8), "unit")[0, :, 0, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected a uint8 (H, W, 3) image tensor, got {tuple(image.shape)} {image.dtype}")
    scale, offset = _scale_offset(mode)
    planes = image.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    scale_t = torch.tensor(scale, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    offset_t = torch.tensor(offset, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    return planes * scale_t + offset_t


def pad_to_divisor(batch: torch.Tensor, divisor: int, min_size: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`.preprocess.pad_to_divisor` on a tensor: pad ``(N, C, H, W)`` at the bottom and right by
    edge replication so both sizes divide by ``divisor`` and reach ``min_size``.

    Returns:
        The padded batch and ``(pad_bottom, pad_right)``.

    Examples:
        >>> padded, pad = pad_to_divisor(torch.zeros(1, 3, 30, 33), 16)
        >>> tuple(padded.shape), pad
        ((1, 3, 32, 48), (2, 15))
    """
    pad_h, pad_w = pad_amounts(batch.shape[-2], batch.shape[-1], divisor, min_size)
    if pad_h or pad_w:
        batch = F.pad(batch, (0, pad_w, 0, pad_h), mode="replicate")
    return batch, (pad_h, pad_w)
