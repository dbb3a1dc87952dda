"""AnyNet: anytime coarse-to-fine stereo (Wang et al., ICRA 2019), faithful to the original.

The module tree and parameter names follow the released code, so its checkpoints
(``{"epoch", "state_dict", "optimizer"}`` with ``module.`` keys) load unchanged:

```
feature_extraction   small 2D U-Net; features at 1/16 (8 ch), 1/8 (4 ch) and 1/4 (2 ch)
volume_postprocess   one 3D net per stage over a one-channel cost volume
  stage 1            full L1 cost volume at 1/16, disparities 0..11 (0..176 px at full size)
  stages 2, 3        residual L1 volumes at 1/8 and 1/4, offsets -2..2 around the previous stage's
                     (downsampled) disparity, built by warping the right features
refine_spn           stage 4: gates from the left image and a 1 -> 8 -> 1 channel embedding of stage
                     3's disparity, combined by a spatial propagation network at 1/4 resolution
```

Each stage regresses a disparity (soft-argmin over its levels), upsamples it to full resolution and
adds it to the previous stage's output. The original's custom CUDA propagation op
(``GateRecurrent2dnoind``, one left-to-right scan) is :func:`propagate_left_to_right` here, plain
PyTorch that runs on the CPU and exports to ONNX (the column loop is unrolled for a fixed size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError, torch_missing

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .checkpoint import find_state_dict, load_into, read_checkpoint_of, strip_prefix
from .initialization import he_normal_fan_out
from .inputs import check_stereo_batch
from .volumes import shifted_right

ARCHITECTURE = "anynet"
SIZE_DIVISOR = 16
NUM_STAGES = 4  # three coarse-to-fine stages + the spatial propagation refinement
SPN_PREFIX = "refine_spn."

# Settings of every published checkpoint (the original's command-line defaults).
INIT_CHANNELS = 1
MAX_DISP_LIST = (12, 3, 3)
NUM_BLOCKS = 2
LAYERS_3D = 4
CHANNELS_3D = 4
GROWTH_RATE = (4, 1, 1)
SPN_CHANNELS = 8


# --------------------------------------------------------------------------------------------------
# Building blocks (Sequential layouts mirror the original so state_dict keys match)
# --------------------------------------------------------------------------------------------------


def _bn_relu_conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """Pre-activation 3x3 convolution: BatchNorm, ReLU, Conv (no bias)."""
    return nn.Sequential(
        nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
    )


class DepthStackedConv3d(nn.Conv3d):
    """A 3x3x3 ``Conv3d`` (stride 1, padding 1, no bias) computed as one 2D convolution.

    Each output depth slice is a 2D convolution of the three neighbouring input slices stacked along
    channels: the same function with the same parameters (and state-dict keys) as ``nn.Conv3d``, but
    PyTorch's CPU path for these small 3D convolutions is several times slower than its 2D one.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, D, H, W)`` -> ``(N, C_out, D, H, W)``, as ``nn.Conv3d``."""
        n, c, depth, height, width = x.shape
        slices = x.transpose(1, 2).reshape(n * depth, c, height, width)
        out = self.forward_slices(slices, depth)
        return out.view(n, depth, self.out_channels, height, width).transpose(1, 2)

    def forward_slices(self, slices: torch.Tensor, depth: int) -> torch.Tensor:
        """The same convolution on a volume stored as a batch of depth slices.

        Args:
            slices: ``(N * D, C_in, H, W)``, slice ``d`` of volume ``n`` at index ``n * D + d``.
            depth: ``D``.

        Returns:
            ``(N * D, C_out, H, W)`` in the same layout.
        """
        _, c, height, width = slices.shape
        volume = slices.reshape(-1, depth, c, height, width)
        padded = F.pad(volume, (0, 0, 0, 0, 0, 0, 1, 1))  # zero slices before the first and after the last
        neighbours = torch.stack([padded[:, k : k + depth] for k in range(3)], dim=2)  # (N, D, 3, C, H, W)
        # Static sizes (module attributes, not x.shape) keep the kernel shape known to the ONNX exporter.
        weight = self.weight.transpose(1, 2).reshape(self.out_channels, 3 * self.in_channels, 3, 3)
        return F.conv2d(neighbours.reshape(-1, 3 * c, height, width), weight, padding=1)


class CostNet(nn.Sequential):
    """A stage's 3D net over its one-channel cost volume: ``(N, D, H, W)`` -> ``(N, D, H, W)``.

    Blocks of BatchNorm3d, ReLU and a 3x3x3 convolution (the original's layout and keys). The volume
    stays a batch of depth slices ``(N * D, C, H, W)`` throughout, which avoids reordering it around
    every convolution; a BatchNorm3d on the ``(N * D, C, 1, H, W)`` view normalises each channel over
    the same elements as on ``(N, C, D, H, W)``, in training too.
    """

    def __init__(self, layers: int, channels: int) -> None:
        widths = [1] + [channels] * (layers + 1) + [1]
        super().__init__(
            *(
                nn.Sequential(nn.BatchNorm3d(in_ch), nn.ReLU(), DepthStackedConv3d(in_ch, out_ch))
                for in_ch, out_ch in zip(widths[:-1], widths[1:], strict=True)
            )
        )

    def forward(self, cost: torch.Tensor) -> torch.Tensor:
        n, depth, height, width = cost.shape
        x = cost.reshape(n * depth, 1, height, width)
        for norm, relu, conv in self:
            x = relu(norm(x.unsqueeze(2)).squeeze(2))
            x = conv.forward_slices(x, depth)
        return x.view(n, depth, height, width)


def _down_block(in_ch: int, out_ch: int, num_blocks: int) -> nn.Sequential:
    """Halve the resolution (max-pool), then ``num_blocks`` pre-activation convolutions."""
    layers: list[nn.Module] = [nn.MaxPool2d(2, 2), _bn_relu_conv(in_ch, out_ch)]
    layers += [_bn_relu_conv(out_ch, out_ch) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)


class UpBlock(nn.Module):
    """U-Net decoder step: upsample the coarse map x2, concatenate after the skip, two convolutions."""

    def __init__(self, coarse_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_bn_relu_conv(out_ch + coarse_ch, out_ch), _bn_relu_conv(out_ch, out_ch))

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        # The original uses nn.UpsamplingBilinear2d, which is align_corners=True (unlike F.upsample).
        upsampled = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat((skip, upsampled), dim=1))


class FeatureUNet(nn.Module):
    """The feature extractor: a 2D U-Net with outputs at 1/16, 1/8 and 1/4 resolution.

    Args:
        init_channels: channels of the full-resolution stem; each level doubles them.
        num_blocks: convolutions per encoder level.
    """

    def __init__(self, init_channels: int, num_blocks: int) -> None:
        super().__init__()
        c = init_channels
        stem = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1), _bn_relu_conv(c, c, stride=2))
        self.block0 = nn.Sequential(stem, _down_block(c, 2 * c, num_blocks))  # 1/4
        self.blocks = nn.ModuleList(
            [_down_block(2 * c, 4 * c, num_blocks), _down_block(4 * c, 8 * c, num_blocks)]  # 1/8, 1/16
        )
        self.upblocks = nn.ModuleList([UpBlock(8 * c, 4 * c), UpBlock(4 * c, 2 * c)])

    def forward(self, image: torch.Tensor, num_levels: int = 3) -> list[torch.Tensor]:
        """Features of ``image`` ``(N, 3, H, W)``, coarsest first.

        Args:
            image: normalised image ``(N, 3, H, W)``, ``H`` and ``W`` multiples of 16.
            num_levels: how many of the outputs (1/16, 1/8, 1/4) to compute; the decoder steps that
                only finer levels need are skipped.

        Returns:
            ``num_levels`` tensors: ``(N, 8c, H/16, W/16)``, ``(N, 4c, H/8, W/8)``, ``(N, 2c, H/4, W/4)``.
        """
        quarter = self.block0(image)
        eighth = self.blocks[0](quarter)
        sixteenth = self.blocks[1](eighth)
        levels = [sixteenth]
        if num_levels >= 2:
            eighth = self.upblocks[0](eighth, sixteenth)
            levels.append(eighth)
        if num_levels >= 3:
            levels.append(self.upblocks[1](quarter, eighth))
        return levels


# --------------------------------------------------------------------------------------------------
# Cost volumes, warping and regression
# --------------------------------------------------------------------------------------------------


def full_cost_volume(left: torch.Tensor, right: torch.Tensor, num_disp: int) -> torch.Tensor:
    """L1 matching cost over disparities ``0 .. num_disp - 1``.

    Args:
        left, right: features ``(N, C, H, W)``.
        num_disp: disparity levels at this resolution.

    Returns:
        ``(N, num_disp, H, W)``: level ``d`` at column ``x`` is ``sum_c |left(x) - right(x - d)|``;
        for ``x < d`` the right pixel is taken as 0 (the cost is ``sum_c |left(x)|``), as in the original.
    """
    # All shifted copies from one gather (zeros where x < d), so the operation count does not
    # depend on num_disp.
    shifted = shifted_right(right, num_disp)  # (N, C, H, D, W)
    return (left.unsqueeze(3) - shifted).abs().sum(dim=1).permute(0, 2, 1, 3)


def warp_right(right: torch.Tensor, disparity_px: torch.Tensor) -> torch.Tensor:
    """Sample the right features at ``x - disparity`` (bilinear, zeros outside).

    Args:
        right: features ``(N, C, H, W)``.
        disparity_px: ``(N, K, H, W)`` disparities in pixels of this resolution, one map per level.

    Returns:
        ``(N, C, K, H, W)`` warped features.
    """
    n, c, height, width = right.shape
    k = disparity_px.shape[1]
    xs = torch.arange(width, dtype=right.dtype, device=right.device).view(1, 1, 1, width)
    ys = torch.arange(height, dtype=right.dtype, device=right.device).view(1, 1, height, 1)
    # Normalised with (size - 1) and sampled with align_corners=True: the original's grid_sample
    # semantics (PyTorch <= 1.2 default), so a grid value lands exactly on pixel centres.
    grid_x = 2.0 * (xs - disparity_px) / max(width - 1, 1) - 1.0
    grid_y = (2.0 * ys / max(height - 1, 1) - 1.0).expand(n, k, height, width)
    grid = torch.stack((grid_x, grid_y), dim=-1).reshape(n, k * height, width, 2)
    warped = F.grid_sample(right, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped.view(n, c, k, height, width)


def residual_cost_volume(
    left: torch.Tensor, right: torch.Tensor, disparity_px: torch.Tensor, radius: int
) -> torch.Tensor:
    """L1 cost around a disparity estimate, for offsets ``-(radius - 1) .. radius - 1``.

    Args:
        left, right: features ``(N, C, H, W)``.
        disparity_px: ``(N, 1, H, W)`` current estimate in pixels of this resolution.
        radius: ``maxdisplist`` entry of the stage (3 gives 5 levels, offsets -2..2).

    Returns:
        ``(N, 2 * radius - 1, H, W)``; level ``k`` compares left with right warped by
        ``disparity - (k - radius + 1)``. The regression then gives that level the residual value
        ``+(k - radius + 1)``: the opposite sign of the shift, exactly as in the original, whose
        released weights were trained with this pairing.
    """
    offsets = torch.arange(-radius + 1, radius, dtype=left.dtype, device=left.device).view(1, -1, 1, 1)
    warped = warp_right(right, disparity_px - offsets)
    return (left.unsqueeze(2) - warped).abs().sum(dim=1)


def regress(cost: torch.Tensor, first_level: int) -> torch.Tensor:
    """Soft-argmin: ``(N, D, H, W)`` cost -> ``(N, 1, H, W)`` expected level.

    Level ``k`` has the value ``first_level + k``; low cost means likely (softmax of ``-cost``).
    """
    levels = torch.arange(cost.shape[1], dtype=cost.dtype, device=cost.device) + first_level
    probability = F.softmax(-cost, dim=1)
    return (probability * levels.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    # F.upsample(mode="bilinear") of the original: align_corners=False, no antialiasing.
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------------------------------
# Spatial propagation (stage 4)
# --------------------------------------------------------------------------------------------------


def propagate_left_to_right(
    x: torch.Tensor, gate_up: torch.Tensor, gate_mid: torch.Tensor, gate_down: torch.Tensor
) -> torch.Tensor:
    """Three-way linear propagation along rows, from the left column to the right one.

    The original's ``GateRecurrent2dnoind(horizontal=True, reverse=False)``: column by column,

        h(y, x) = (1 - g_up - g_mid - g_down) * x(y, x)
                  + g_up * h(y - 1, x - 1) + g_mid * h(y, x - 1) + g_down * h(y + 1, x - 1)

    with each gate taken at ``(y, x)`` and set to 0 where its neighbour lies outside the image (so the
    first column is copied, and the top/bottom rows mix only two neighbours).

    Args:
        x: input ``(N, C, H, W)``.
        gate_up, gate_mid, gate_down: gates ``(N, C, H, W)``, normally with ``|g_up| + |g_mid| +
            |g_down| <= 1`` for stability.

    Returns:
        ``h`` ``(N, C, H, W)``.
    """
    width = x.shape[-1]
    # Zero the gates whose neighbour is outside the image: row 0 has no upper, row H-1 no lower,
    # column 0 no left neighbour at all.
    gate_up = F.pad(gate_up[:, :, 1:, 1:], (1, 0, 1, 0))
    gate_mid = F.pad(gate_mid[..., 1:], (1, 0))
    gate_down = F.pad(gate_down[:, :, :-1, 1:], (1, 0, 0, 1))
    base = (1.0 - gate_up - gate_mid - gate_down) * x

    # Columns first and contiguous, so that each step reads one dense (N, C, H) slab.
    base_cols = base.permute(3, 0, 1, 2).contiguous()
    up_cols = gate_up.permute(3, 0, 1, 2).contiguous()
    mid_cols = gate_mid.permute(3, 0, 1, 2).contiguous()
    down_cols = gate_down.permute(3, 0, 1, 2).contiguous()

    hidden = base_cols[0]
    columns = [hidden]
    for col in range(1, width):
        padded = F.pad(hidden, (1, 1))  # padded[y] = hidden[y - 1]; padded[y + 2] = hidden[y + 1]
        hidden = torch.addcmul(base_cols[col], mid_cols[col], hidden)
        hidden = torch.addcmul(hidden, up_cols[col], padded[..., :-2])
        hidden = torch.addcmul(hidden, down_cols[col], padded[..., 2:])
        columns.append(hidden)
    return torch.stack(columns, dim=-1)


def normalize_gates(gates: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(N, 3C, H, W)`` into three gates and divide by ``|g1| + |g2| + |g3| + 1e-8``.

    The division keeps the propagation stable (the sum of absolute gate values is at most 1).
    """
    g_up, g_mid, g_down = gates[:, :channels], gates[:, channels : 2 * channels], gates[:, 2 * channels :]
    total = g_up.abs() + g_mid.abs() + g_down.abs() + 1e-8
    return g_up / total, g_mid / total, g_down / total


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class AnyNet(nn.Module):
    """AnyNet with the published architecture settings.

    Args:
        init_channels: channels of the feature U-Net's stem (1 in every release).
        max_disp_list: stage 1 levels at 1/16, then the residual radius of stages 2 and 3.
        num_blocks: convolutions per U-Net encoder level.
        layers_3d: hidden layers of each stage's 3D net.
        channels_3d: base channels of the 3D nets, multiplied per stage by ``growth_rate``.
        growth_rate: channel multiplier of each stage's 3D net.
        spn_channels: channels of the propagation (``spn_init_channels`` of the original).
        with_spn: whether ``forward`` also returns the SPN-refined output (its weights always exist).

    Inputs are ImageNet-normalised ``(N, 3, H, W)`` float tensors with ``H`` and ``W`` multiples of 16.

    Examples:
        >>> net = AnyNet().eval()
        >>> with torch.no_grad():
        ...     outputs = net(torch.zeros(1, 3, 32, 64), torch.zeros(1, 3, 32, 64))
        >>> [tuple(o.shape) for o in outputs]
        [(1, 32, 64), (1, 32, 64), (1, 32, 64), (1, 32, 64)]
    """

    def __init__(
        self,
        init_channels: int = INIT_CHANNELS,
        max_disp_list: Sequence[int] = MAX_DISP_LIST,
        num_blocks: int = NUM_BLOCKS,
        layers_3d: int = LAYERS_3D,
        channels_3d: int = CHANNELS_3D,
        growth_rate: Sequence[int] = GROWTH_RATE,
        spn_channels: int = SPN_CHANNELS,
        with_spn: bool = True,
    ) -> None:
        super().__init__()
        if len(max_disp_list) != 3 or len(growth_rate) != 3:
            raise InputError(
                f"AnyNet has three stages: expected 3 values in max_disp_list and growth_rate, got "
                f"{list(max_disp_list)} and {list(growth_rate)}"
            )
        self.max_disp_list = tuple(int(v) for v in max_disp_list)
        self.spn_channels = spn_channels
        self.with_spn = with_spn

        c = spn_channels
        self.refine_spn = nn.ModuleList(
            [
                nn.Sequential(  # gates from the (1/4 size) left image
                    nn.Conv2d(3, 2 * c, 3, 1, 1, bias=False),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(2 * c, 2 * c, 3, 1, 1, bias=False),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(2 * c, 2 * c, 3, 1, 1, bias=False),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(2 * c, 3 * c, 3, 1, 1, bias=False),
                ),
                nn.Conv2d(1, c, 3, 1, 1, bias=False),  # disparity -> propagated channels
                nn.Conv2d(c, 1, 3, 1, 1, bias=False),  # propagated channels -> disparity
            ]
        )
        self.feature_extraction = FeatureUNet(init_channels, num_blocks)
        self.volume_postprocess = nn.ModuleList([CostNet(layers_3d, channels_3d * growth) for growth in growth_rate])
        self._init_weights()

    @property
    def architecture(self) -> str:
        """Registry name: ``anynet``."""
        return ARCHITECTURE

    def _init_weights(self) -> None:
        he_normal_fan_out(self)  # as the original

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> list[torch.Tensor]:
        """All stage outputs.

        Args:
            left, right: ImageNet-normalised ``(N, 3, H, W)`` float, ``H`` and ``W`` multiples of 16.

        Returns:
            Disparities ``(N, H, W)`` in pixels of stages 1, 2, 3 and, with ``with_spn``, the SPN
            refinement of stage 3.
        """
        return self.forward_stages(left, right, NUM_STAGES if self.with_spn else 3)

    def forward_stages(self, left: torch.Tensor, right: torch.Tensor, last_stage: int) -> list[torch.Tensor]:
        """Stage outputs ``1 .. last_stage`` (4 = SPN), computing nothing that later stages need.

        Returns:
            ``last_stage`` disparities ``(N, H, W)`` in pixels, coarsest first.
        """
        if last_stage not in range(1, NUM_STAGES + 1):
            raise InputError(f"AnyNet has stages 1 to {NUM_STAGES}, got last_stage={last_stage!r}")
        check_stereo_batch("AnyNet", left, right, SIZE_DIVISOR)
        height = left.shape[-2]
        full_size = left.shape[-2:]
        num_levels = min(last_stage, 3)
        feats_left = self.feature_extraction(left, num_levels)
        feats_right = self.feature_extraction(right, num_levels)

        outputs: list[torch.Tensor] = []
        for stage in range(num_levels):
            feat_left, feat_right = feats_left[stage], feats_right[stage]
            level_height = feat_left.shape[-2]
            span = self.max_disp_list[stage]  # stage 1: levels 0..span-1, then offsets -(span-1)..span-1
            if stage == 0:
                cost = full_cost_volume(feat_left, feat_right, span)
                first_level = 0
            else:
                # The previous full-resolution estimate, resized and rescaled to this level's pixels.
                previous_px = _resize(outputs[-1], feat_left.shape[-2:]) * level_height / height
                cost = residual_cost_volume(feat_left, feat_right, previous_px, span)
                first_level = -span + 1
            cost = self.volume_postprocess[stage](cost)
            disparity_px = _resize(regress(cost, first_level) * height / level_height, full_size)
            outputs.append(disparity_px if stage == 0 else disparity_px + outputs[-1])

        if last_stage == NUM_STAGES:
            outputs.append(self.refine(left, outputs[-1]))
        return [output.squeeze(1) for output in outputs]

    def refine(self, left: torch.Tensor, disparity_px: torch.Tensor) -> torch.Tensor:
        """Stage 4: propagate an embedding of ``disparity_px`` guided by the left image, at 1/4 size.

        Args:
            left: ImageNet-normalised left image ``(N, 3, H, W)``.
            disparity_px: stage 3 output ``(N, 1, H, W)``, pixels.

        Returns:
            Refined disparity ``(N, 1, H, W)``, pixels.
        """
        full_size = left.shape[-2:]
        quarter_size = (left.shape[-2] // 4, left.shape[-1] // 4)
        gates = normalize_gates(self.refine_spn[0](_resize(left, quarter_size)), self.spn_channels)
        # Only the spatial size changes: the values stay in full-resolution pixels, as in the original.
        embedded = self.refine_spn[1](_resize(disparity_px, quarter_size))
        propagated = propagate_left_to_right(embedded, *gates)
        return _resize(self.refine_spn[2](propagated), full_size)


class AnyNetStage(AnyNet):
    """AnyNet that returns one stage's disparity ``(N, H, W)`` and runs only the stages it needs.

    Args:
        stage: 1, 2, 3 (coarse to fine) or 4 (stage 3 refined by the SPN).

    Its parameters are those of :class:`AnyNet` (the same state-dict keys).
    """

    def __init__(self, stage: int = 3) -> None:
        if isinstance(stage, bool) or not isinstance(stage, int) or not 1 <= stage <= NUM_STAGES:
            raise InputError(
                f"AnyNet stage must be 1, 2, 3 (coarse to fine) or 4 (stage 3 + SPN refinement), got {stage!r}"
            )
        super().__init__(with_spn=stage == NUM_STAGES)
        self.stage = stage

    @property
    def settings(self) -> dict[str, Any]:
        """The builder settings that recreate this network (stored in rtstereo checkpoints)."""
        return {"stage": self.stage}

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Disparity ``(N, H, W)`` in pixels of the chosen stage; inputs as :meth:`AnyNet.forward`."""
        return self.forward_stages(left, right, self.stage)[-1]


# --------------------------------------------------------------------------------------------------
# Registry entry points
# --------------------------------------------------------------------------------------------------


def build_anynet(settings: Mapping[str, Any]) -> AnyNetStage:
    """AnyNet returning the disparity of ``settings["stage"]`` (1..4, default 3; 4 = stage 3 + SPN).

    Raises:
        InputError: an unknown setting or a stage outside 1..4.
    """
    unknown = sorted(set(settings) - {"stage"})
    if unknown:
        raise InputError(f"AnyNet has no setting(s) {', '.join(unknown)} (it has: stage)")
    return AnyNetStage(stage=settings.get("stage", 3))


def load_anynet_checkpoint(module: AnyNet, path: str | Path) -> dict[str, Any]:
    """Load AnyNet weights: the original ``{"state_dict": ...}`` file or an rtstereo checkpoint.

    The original's ``module.`` (``DataParallel``) prefix is removed, as is ``torch.compile``'s
    ``_orig_mod.``. A file trained without the SPN (no ``refine_spn.*`` weights) loads into a network that does
    not use the SPN.

    Args:
        module: an :class:`AnyNet` (or :class:`AnyNetStage`).
        path: the weights file.

    Returns:
        Metadata: ``format`` (``"anynet"`` or ``"rtstereo"``), ``architecture``, ``epoch`` (or
        ``None``), ``has_spn`` (whether the file holds SPN weights), and for rtstereo files the stored
        ``settings``.

    Raises:
        CheckpointError: the file is missing, damaged, not a checkpoint, not AnyNet, or lacks the SPN
            weights that the network needs.
    """
    obj, described = read_checkpoint_of(path, ARCHITECTURE)
    # under "model" as well, so that another network's file (GwcNet's) is named rather than refused for its layout
    state_dict = strip_prefix(find_state_dict(obj, path, ("state_dict", "model")))
    has_spn = any(key.startswith(SPN_PREFIX) for key in state_dict)
    if not has_spn and any(key.startswith("volume_postprocess.") for key in state_dict):
        if module.with_spn:
            raise CheckpointError(
                f"{path} holds AnyNet weights without the SPN refinement (no '{SPN_PREFIX}*' keys), "
                "but stage 4 needs them; use stage 1, 2 or 3 with this file"
            )
        # The unused SPN keeps its initial weights so that the strict load below still applies.
        state_dict.update({k: v for k, v in module.state_dict().items() if k.startswith(SPN_PREFIX)})
    load_into(module, state_dict, path, ARCHITECTURE, expected="the weights of mileyan/AnyNet's network")

    metadata: dict[str, Any] = {
        "format": "rtstereo" if described else "anynet",
        "architecture": ARCHITECTURE,
        "epoch": obj.get("epoch"),
        "has_spn": has_spn,
    }
    if described is not None:
        metadata["settings"] = described[1]
    return metadata
