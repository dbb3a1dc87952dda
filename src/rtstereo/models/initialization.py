"""Weight initialisation shared by the published networks' ports."""

from __future__ import annotations

import math

from ..errors import torch_missing

try:
    from torch import nn
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)


def he_normal_fan_out(network: nn.Module) -> None:
    """The originals' initialisation: He normal over fan-out for (3D) convolutions, identity BatchNorm.

    Transposed convolutions keep PyTorch's default, as in the originals.
    """
    for module in network.modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            fan_out = math.prod(module.kernel_size) * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
