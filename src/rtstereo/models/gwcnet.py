"""GwcNet: group-wise correlation stereo matching (Guo et al., CVPR 2019), faithful to the original.

The module tree and parameter names follow the released code exactly, so its checkpoints
(``{"epoch": int, "model": state_dict}`` with ``module.`` keys) load unchanged:

```
feature_extraction   2D ResNet-like trunk at 1/4 resolution; 320 channels (64 + 128 + 128 of
                     layer2..4) for the correlation, plus ``lastconv`` -> 12 channels (``-gc`` only)
volume               40-group correlation over max_disp // 4 disparities (+ 12 + 12 concatenation)
dres0, dres1         3D convolutions, the second one residual
dres2, dres3, dres4  three stacked 3D hourglasses
classif0..3          one cost head per stage; each upsampled (trilinear) to (max_disp, H, W),
                     soft-maxed over disparity and regressed (soft-argmin)
```

In eval mode only the last head runs and ``forward`` returns the disparity ``(N, H, W)``; in
training mode it returns the four head outputs, coarsest (``dres1``) first.

The cost volumes hold every disparity level from a fixed number of tensor operations (one batched
matrix product for the correlation, one gather for the shifted copies; :mod:`.volumes`), rather than
the original's loop over disparities writing into a pre-allocated tensor: the same values, with zeros
for the columns without a match, no in-place slice assignment to export, and an operation count that
does not grow with ``max_disp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, SettingError, torch_missing

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .checkpoint import find_state_dict, identify_network, load_into, read_checkpoint_of, strip_prefix
from .initialization import he_normal_fan_out
from .inputs import check_stereo_batch
from .volumes import banded_correlation, matched_columns, shifted_right

NUM_GROUPS = 40
CONCAT_CHANNELS = 12
SIZE_DIVISOR = 16
DEFAULT_MAX_DISP = 192


# --------------------------------------------------------------------------------------------------
# Building blocks (Sequential layouts mirror the original so state_dict keys match)
# --------------------------------------------------------------------------------------------------


def _conv_bn_2d(in_ch: int, out_ch: int, kernel: int, stride: int, pad: int, dilation: int) -> nn.Sequential:
    # The original pads by the dilation for dilated convolutions, keeping the size unchanged.
    padding = dilation if dilation > 1 else pad
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
    )


def _conv_bn_3d(in_ch: int, out_ch: int, kernel: int, stride: int, pad: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=False),
        nn.BatchNorm3d(out_ch),
    )


def _deconv_bn_3d(in_ch: int, out_ch: int) -> nn.Sequential:
    # padding=1, output_padding=1 doubles each size exactly and keeps voxel 0 aligned with voxel 0
    # of the finer level; a padding=0 variant must drop the *first* voxel to be equivalent.
    return nn.Sequential(
        nn.ConvTranspose3d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm3d(out_ch),
    )


class BasicBlock(nn.Module):
    """PSMNet-style residual block: conv-bn-relu, conv-bn, plus the shortcut, no final ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, pad: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(_conv_bn_2d(in_ch, out_ch, 3, stride, pad, dilation), nn.ReLU())
        self.conv2 = _conv_bn_2d(out_ch, out_ch, 3, 1, pad, dilation)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv2(self.conv1(x)) + shortcut


def _make_layer(in_ch: int, out_ch: int, blocks: int, stride: int, pad: int, dilation: int) -> nn.Sequential:
    layers = [BasicBlock(in_ch, out_ch, stride, pad, dilation)]
    layers += [BasicBlock(out_ch, out_ch, 1, pad, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class FeatureExtraction(nn.Module):
    """2D features at 1/4 resolution.

    Returns ``(gwc_feature, concat_feature)``: ``(N, 320, H/4, W/4)`` (layer2, layer3 and layer4
    concatenated) and ``(N, 12, H/4, W/4)``, or ``None`` without the concatenation volume.
    """

    def __init__(self, concat_feature: bool) -> None:
        super().__init__()
        self.firstconv = nn.Sequential(
            _conv_bn_2d(3, 32, 3, 2, 1, 1), nn.ReLU(),
            _conv_bn_2d(32, 32, 3, 1, 1, 1), nn.ReLU(),
            _conv_bn_2d(32, 32, 3, 1, 1, 1), nn.ReLU(),
        )  # fmt: skip
        self.layer1 = _make_layer(32, 32, 3, 1, 1, 1)
        self.layer2 = _make_layer(32, 64, 16, 2, 1, 1)
        self.layer3 = _make_layer(64, 128, 3, 1, 1, 1)
        self.layer4 = _make_layer(128, 128, 3, 1, 1, 2)
        self.lastconv: nn.Module | None = None
        if concat_feature:
            self.lastconv = nn.Sequential(
                _conv_bn_2d(320, 128, 3, 1, 1, 1), nn.ReLU(),
                nn.Conv2d(128, CONCAT_CHANNELS, 1, stride=1, padding=0, bias=False),
            )  # fmt: skip

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.layer1(self.firstconv(image))
        l2 = self.layer2(x)
        l3 = self.layer3(l2)
        l4 = self.layer4(l3)
        gwc_feature = torch.cat((l2, l3, l4), dim=1)
        concat_feature = None if self.lastconv is None else self.lastconv(gwc_feature)
        return gwc_feature, concat_feature


class Hourglass(nn.Module):
    """3D encoder-decoder: two stride-2 levels down, two transposed convolutions back up."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(_conv_bn_3d(ch, ch * 2, 3, 2, 1), nn.ReLU())
        self.conv2 = nn.Sequential(_conv_bn_3d(ch * 2, ch * 2, 3, 1, 1), nn.ReLU())
        self.conv3 = nn.Sequential(_conv_bn_3d(ch * 2, ch * 4, 3, 2, 1), nn.ReLU())
        self.conv4 = nn.Sequential(_conv_bn_3d(ch * 4, ch * 4, 3, 1, 1), nn.ReLU())
        self.conv5 = _deconv_bn_3d(ch * 4, ch * 2)
        self.conv6 = _deconv_bn_3d(ch * 2, ch)
        self.redir1 = _conv_bn_3d(ch, ch, 1, 1, 0)
        self.redir2 = _conv_bn_3d(ch * 2, ch * 2, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.conv2(self.conv1(x))
        quarter = self.conv4(self.conv3(half))
        half_up = F.relu(self.conv5(quarter) + self.redir2(half))
        return F.relu(self.conv6(half_up) + self.redir1(x))


def _cost_head() -> nn.Sequential:
    return nn.Sequential(_conv_bn_3d(32, 32, 3, 1, 1), nn.ReLU(), nn.Conv3d(32, 1, 3, padding=1, bias=False))


# --------------------------------------------------------------------------------------------------
# Cost volumes and regression
# --------------------------------------------------------------------------------------------------


def groupwise_correlation(left: torch.Tensor, right: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Mean of the channel products within each group: ``(N, C, H, W)`` x2 -> ``(N, G, H, W)``."""
    n, c, h, w = left.shape
    return (left * right).reshape(n, num_groups, c // num_groups, h, w).mean(dim=2)


def build_gwc_volume(left: torch.Tensor, right: torch.Tensor, num_disp: int, num_groups: int) -> torch.Tensor:
    """Group-wise correlation volume, all disparities at once (:func:`.volumes.banded_correlation`).

    Args:
        left, right: features ``(N, C, H, W)``; ``C`` divisible by ``num_groups``.
        num_disp: disparity levels at this resolution.
        num_groups: correlation groups.

    Returns:
        ``(N, num_groups, num_disp, H, W)``; entry ``d`` at column ``x`` correlates left ``x`` with
        right ``x - d`` (the mean of the products within the group, as :func:`groupwise_correlation`),
        and is 0 for ``x < d`` (no match inside the image).
    """
    return banded_correlation(left, right, num_disp, num_groups)


def build_concat_volume(left: torch.Tensor, right: torch.Tensor, num_disp: int) -> torch.Tensor:
    """Concatenation volume ``(N, 2C, num_disp, H, W)``: left features then shifted right features.

    Like the original, both halves are 0 for ``x < d``. The shifted copies come from one gather
    (:func:`.volumes.shifted_right`), whatever ``num_disp``.
    """
    width = left.shape[-1]
    left_levels = left.unsqueeze(3) * matched_columns(width, num_disp, left)  # (N, C, H, D, W)
    pair = torch.cat((left_levels, shifted_right(right, num_disp)), dim=1)
    return pair.permute(0, 1, 3, 2, 4)


def regress_disparity(cost: torch.Tensor, max_disp: int, height: int, width: int) -> torch.Tensor:
    """Cost ``(N, 1, D/4, H/4, W/4)`` to disparity ``(N, H, W)`` in pixels (soft-argmin).

    The cost is upsampled trilinearly (``align_corners=False``, as the original's ``F.upsample``) to
    one level per pixel of disparity, then the expectation of the disparity under its softmax.
    """
    cost = F.interpolate(cost, size=(max_disp, height, width), mode="trilinear", align_corners=False)
    probability = F.softmax(cost.squeeze(1), dim=1)
    disparity_levels = torch.arange(max_disp, dtype=probability.dtype, device=probability.device)
    return (probability * disparity_levels.view(1, max_disp, 1, 1)).sum(dim=1)


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class GwcNet(nn.Module):
    """GwcNet-g (``use_concat_volume=False``) or GwcNet-gc (``True``).

    Args:
        max_disp: disparity range, pixels; a positive multiple of 16 (the volume holds
            ``max_disp // 4`` levels and the hourglasses halve that twice).
        use_concat_volume: add the 12 + 12 channel concatenation volume (GwcNet-gc).

    Inputs of ``forward`` are ImageNet-normalised ``(N, 3, H, W)`` float tensors with ``H`` and ``W``
    multiples of 16. Eval mode returns the disparity ``(N, H, W)`` in pixels; training mode returns
    the list of the four heads' disparities, coarsest first.

    Examples:
        >>> net = GwcNet(max_disp=16).eval()
        >>> with torch.no_grad():
        ...     net(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 32, 32])
    """

    def __init__(self, max_disp: int = DEFAULT_MAX_DISP, use_concat_volume: bool = False) -> None:
        super().__init__()
        if isinstance(max_disp, bool) or not isinstance(max_disp, int) or max_disp <= 0 or max_disp % 16:
            above = -(-max_disp // 16) * 16 if isinstance(max_disp, int) and not isinstance(max_disp, bool) else 0
            raise SettingError(
                "max_disp",
                f"GwcNet needs a positive multiple of 16 (pixels), got {max_disp!r}; "
                f"round it up, for example to {above if above > 0 else 192}",
            )
        self.max_disp = max_disp
        self.use_concat_volume = use_concat_volume
        volume_channels = NUM_GROUPS + (2 * CONCAT_CHANNELS if use_concat_volume else 0)

        self.feature_extraction = FeatureExtraction(concat_feature=use_concat_volume)
        self.dres0 = nn.Sequential(
            _conv_bn_3d(volume_channels, 32, 3, 1, 1), nn.ReLU(),
            _conv_bn_3d(32, 32, 3, 1, 1), nn.ReLU(),
        )  # fmt: skip
        self.dres1 = nn.Sequential(_conv_bn_3d(32, 32, 3, 1, 1), nn.ReLU(), _conv_bn_3d(32, 32, 3, 1, 1))
        self.dres2 = Hourglass(32)
        self.dres3 = Hourglass(32)
        self.dres4 = Hourglass(32)
        self.classif0 = _cost_head()
        self.classif1 = _cost_head()
        self.classif2 = _cost_head()
        self.classif3 = _cost_head()
        self._init_weights()

    @property
    def architecture(self) -> str:
        """Registry name of this variant: ``gwcnet-g`` or ``gwcnet-gc``."""
        return "gwcnet-gc" if self.use_concat_volume else "gwcnet-g"

    @property
    def settings(self) -> dict[str, Any]:
        """The builder settings that recreate this network (stored in rtstereo checkpoints)."""
        return {"max_disp": self.max_disp}

    def _init_weights(self) -> None:
        he_normal_fan_out(self)  # as the original

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Disparity of the left image.

        Args:
            left, right: ImageNet-normalised ``(N, 3, H, W)`` float, ``H`` and ``W`` multiples of 16.

        Returns:
            Eval mode: disparity ``(N, H, W)``, pixels. Training mode: four such tensors, from the
            heads after ``dres1``, ``dres2``, ``dres3`` and ``dres4`` (coarsest first).
        """
        check_stereo_batch("GwcNet", left, right, SIZE_DIVISOR)
        height, width = left.shape[-2:]
        num_disp = self.max_disp // 4

        gwc_left, concat_left = self.feature_extraction(left)
        gwc_right, concat_right = self.feature_extraction(right)
        volume = build_gwc_volume(gwc_left, gwc_right, num_disp, NUM_GROUPS)
        if concat_left is not None and concat_right is not None:
            volume = torch.cat((volume, build_concat_volume(concat_left, concat_right, num_disp)), dim=1)

        cost0 = self.dres0(volume)
        cost0 = self.dres1(cost0) + cost0
        out1 = self.dres2(cost0)
        out2 = self.dres3(out1)
        out3 = self.dres4(out2)

        if not self.training:
            return regress_disparity(self.classif3(out3), self.max_disp, height, width)
        heads = (self.classif0(cost0), self.classif1(out1), self.classif2(out2), self.classif3(out3))
        return [regress_disparity(cost, self.max_disp, height, width) for cost in heads]


# --------------------------------------------------------------------------------------------------
# Registry entry points
# --------------------------------------------------------------------------------------------------


def build_gwcnet_g(settings: Mapping[str, Any]) -> GwcNet:
    """GwcNet-g (group-wise correlation volume only); ``settings["max_disp"]`` in pixels."""
    return GwcNet(max_disp=settings.get("max_disp", DEFAULT_MAX_DISP), use_concat_volume=False)


def build_gwcnet_gc(settings: Mapping[str, Any]) -> GwcNet:
    """GwcNet-gc (group-wise correlation + concatenation volume); ``settings["max_disp"]`` in pixels."""
    return GwcNet(max_disp=settings.get("max_disp", DEFAULT_MAX_DISP), use_concat_volume=True)


def load_gwcnet_checkpoint(module: GwcNet, path: str | Path) -> dict[str, Any]:
    """Load GwcNet weights: the original ``{"epoch", "model"}`` file or an rtstereo checkpoint.

    The original's ``module.`` (``DataParallel``) prefix is removed, as is ``torch.compile``'s
    ``_orig_mod.``. ``max_disp`` does not change any weight shape, so weights trained at one range load into a
    network built for another.

    Args:
        module: a :class:`GwcNet` of the variant the file holds.
        path: the weights file.

    Returns:
        Metadata: ``format`` (``"gwcnet"`` or ``"rtstereo"``), ``architecture``, ``epoch`` (or
        ``None``), and for rtstereo files the stored ``settings``.

    Raises:
        CheckpointError: the file is missing, damaged, not a checkpoint, or of the other variant.
    """
    obj, described = read_checkpoint_of(path, module.architecture)
    state_dict = strip_prefix(find_state_dict(obj, path, ("model", "state_dict")))
    file_variant = _variant_of(state_dict)
    if file_variant is not None and file_variant != module.architecture:
        raise CheckpointError(
            f"{path} holds {file_variant} weights (concatenation volume "
            f"{'present' if file_variant == 'gwcnet-gc' else 'absent'}), but the network is "
            f"{module.architecture}; load it with model '{file_variant}'"
        )
    # max_disp changes no weight: a mismatch is another file, never another setting
    load_into(module, state_dict, path, module.architecture, expected="the weights of xy-guo/GwcNet's network")

    metadata: dict[str, Any] = {
        "format": "rtstereo" if described else "gwcnet",
        "architecture": module.architecture,
        "epoch": obj.get("epoch"),
    }
    if described is not None:
        metadata["settings"] = described[1]
    return metadata


def _variant_of(state_dict: Mapping[str, Any]) -> str | None:
    """``gwcnet-g`` / ``gwcnet-gc`` judged from the keys, or ``None`` when it is no GwcNet at all."""
    found = identify_network(state_dict)  # PSMNet's files share dres0 and lastconv: no GwcNet variant of theirs
    return found if found in ("gwcnet-g", "gwcnet-gc") else None
