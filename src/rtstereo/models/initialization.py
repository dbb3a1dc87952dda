"""Weight initialisation shared by the published networks' ports."""

from __future__ import annotations

import math

from torch import nn


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
