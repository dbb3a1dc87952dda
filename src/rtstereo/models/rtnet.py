"""rtnet: rtstereo's own real-time stereo network, designed for CPU inference.

Only 2D convolutions, one matrix product per image row and a gather (the correlation), so it exports
to plain ONNX (opset 17) and runs fast in ONNX Runtime on a laptop CPU: 1.0 M parameters, 2.9 GFLOP
per 640x480 pair, about a third of the time of OpenCV SGBM on the same 2 threads
(``benchmarks/rtnet_vs_sgbm.py``); the optional 1/2-resolution stage adds 3 k parameters and about
8 ms, the optional full-resolution stage another 3 k and about 10 ms (``training/default/README.md``).
Shapes below are for a ``480x640`` pair and ``max_disp = 192`` (``D = max_disp / 4 = 48`` disparity
levels at quarter resolution):

============  ========================================================================  =================
stage         what it does                                                              output
============  ========================================================================  =================
encoder       MobileNet-style features shared by both images down to 1/4; the left      (N, 32, 120, 160)
              image goes on to 1/8, 1/16 and 1/32 to guide the aggregation
correlation   cosine similarity of the 1/4 features at each of the ``D`` disparities    (N, 48, 120, 160)
              (disparity as channels)
aggregation   2D hourglass 1/4 -> 1/32 -> 1/4 over the cost, excited at every scale by   (N, 48, 120, 160)
              the left image's features (CoEx-style guidance)
regression    soft-argmin over the ``D`` levels, and the peak probability               (N, 1, 120, 160)
refinement    residual from the aggregation state, disparity and confidence (dilated    (N, 1, 120, 160)
              depthwise convolutions)
upsampling    convex combination of 3x3 quarter-resolution neighbours (RAFT-style)      (N, 480, 640)
1/2 stage     optional (``half_refinement``): the right 1/2 features warped by the      (N, 480, 640)
              disparity and compared with the left ones at 5 half-pixel offsets; a
              residual per full-resolution pixel
full stage    optional (``full_refinement``): the right image warped by the disparity    (N, 480, 640)
              and compared with the left one, per colour, at 5 one-pixel offsets; read
              at 1/2 by a stride-2 convolution; a residual per full-resolution pixel
============  ========================================================================  =================

Several operations are spelled out in a form ONNX Runtime runs fast on CPUs (softmax as exp and a
1x1 convolution, the correlation as a GEMM); each says why where it happens.

Disparities are kept in pixels of the full-resolution input at every stage (the quarter-resolution
maps hold values 4x their own pixel shifts), so no stage has to rescale them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError, SettingError, torch_missing

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .checkpoint import describe, find_state_dict, load_into, read_torch_file, strip_prefix
from .inputs import check_stereo_batch

MODEL_NAME = "rtnet"
DOWNSAMPLE = 4  # the cost volume is built at quarter resolution
SIZE_DIVISOR = 32  # the encoder and the hourglass go down to 1/32
REFINEMENT_STAGES = ("half_refinement", "full_refinement")  # optional stages, settings of the same name


# ----------------------------------------------------------------------------------------- blocks
def conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int = 1,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    relu: bool = True,
) -> nn.Sequential:
    """Convolution (no bias) + batch norm (+ ReLU); batch norm folds into the convolution at export."""
    padding = dilation * (kernel - 1) // 2
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SeparableBlock(nn.Module):
    """Residual depthwise-separable block: depthwise 3x3 (dilated) then pointwise, same width.

    The cheapest way to grow the receptive field at high resolution: ``9 + C`` multiply-adds per
    pixel and channel instead of ``9 C`` for a dense 3x3 convolution.
    """

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.depthwise = conv_bn(channels, channels, 3, groups=channels, dilation=dilation, relu=False)
        self.pointwise = conv_bn(channels, channels, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.pointwise(self.depthwise(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block (expand, depthwise 3x3, project) for the low resolutions.

    Used at 1/16 and 1/32 where pixels are few: the expansion adds capacity almost for free.
    """

    def __init__(self, channels: int, expansion: int = 2):
        super().__init__()
        hidden = channels * expansion
        self.body = nn.Sequential(
            conv_bn(channels, hidden, 1),
            conv_bn(hidden, hidden, 3, groups=hidden),
            conv_bn(hidden, channels, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def down(in_ch: int, out_ch: int) -> nn.Sequential:
    """Halve the resolution: strided depthwise 3x3, then pointwise to the new width."""
    return nn.Sequential(conv_bn(in_ch, in_ch, 3, stride=2, groups=in_ch, relu=False), conv_bn(in_ch, out_ch, 1))


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Double the resolution (bilinear; half-pixel centres, matching the strided convolutions)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------- encoder
class Encoder(nn.Module):
    """Feature encoder shared by both images: to 1/4, and for the left image on to 1/32.

    Widths per scale: 1/2 16, 1/4 32, 1/8 64, 1/16 128, 1/32 192. Low resolutions get the width (and
    the parameters): they cost few operations and carry the context that weak texture needs.
    """

    widths = (16, 32, 64, 128, 192)

    def __init__(self):
        super().__init__()
        w2, w4, w8, w16, w32 = self.widths
        self.to_half = conv_bn(3, w2, 3, stride=2)
        self.to_quarter = nn.Sequential(down(w2, w4), SeparableBlock(w4), SeparableBlock(w4))
        self.to_eighth = nn.Sequential(down(w4, w8), SeparableBlock(w8), SeparableBlock(w8))
        self.to_16th = nn.Sequential(down(w8, w16), SeparableBlock(w16), InvertedResidual(w16))
        self.to_32nd = nn.Sequential(down(w16, w32), InvertedResidual(w32), InvertedResidual(w32))

    def quarter(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, H, W)`` normalised image to ``(N, 16, H/2, W/2)`` and ``(N, 32, H/4, W/4)`` features."""
        half = self.to_half(image)
        return half, self.to_quarter(half)

    def context(self, quarter: torch.Tensor) -> list[torch.Tensor]:
        """The left image's guidance pyramid ``[1/8, 1/16, 1/32]`` from its 1/4 features."""
        eighth = self.to_eighth(quarter)
        sixteenth = self.to_16th(eighth)
        return [eighth, sixteenth, self.to_32nd(sixteenth)]


# ------------------------------------------------------------------------------------ correlation
def correlation(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """Cosine-similarity cost volume with disparity as channels.

    Args:
        left: ``(N, C, h, w)`` left features.
        right: ``(N, C, h, w)`` right features.
        levels: number of disparities ``D`` (0 .. D-1 at this resolution).

    Returns:
        ``(N, D, h, w)``; channel ``d`` compares left pixel ``x`` with right pixel ``x - d`` and is 0
        where ``x - d`` falls outside the image.
    """
    n, _, h, w = left.shape
    left = F.normalize(left, dim=1)
    right = F.normalize(right, dim=1)
    # One matrix product per image row compares every left pixel with every right pixel; on CPUs
    # that GEMM plus one gather of the band x' = x - d is several times faster than D shifted
    # products each reduced over channels.
    rows = torch.matmul(left.permute(0, 2, 3, 1), right.permute(0, 2, 1, 3))  # (N, h, x, x')
    x = torch.arange(w, device=left.device).view(w, 1)
    d = torch.arange(levels, device=left.device).view(1, levels)
    index = (x - d).clamp(min=0).view(1, 1, w, levels).expand(n, h, w, levels)
    band = torch.gather(rows, 3, index) * (x >= d).to(left.dtype)  # (N, h, x, d), 0 outside the image
    return band.permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------ aggregation
class GuidedHourglass(nn.Module):
    """2D hourglass over the cost volume (disparity as channels), guided by left-image features.

    At 1/4 the cost is fused with the left features; at 1/8, 1/16 and 1/32 it is multiplied by a
    sigmoid gate computed from the left features of that scale, so that the image's edges and
    surfaces decide where matching evidence spreads (guided cost excitation, Bangunharcana et al.
    2021).
    """

    widths = (48, 64, 128, 192)

    def __init__(self, levels: int, feature_widths: tuple[int, ...]):
        super().__init__()
        c4, c8, c16, c32 = self.widths
        f4, f8, f16, f32 = feature_widths
        # A 1x1 convolution of the concatenation, written as a sum of two (no Concat copy at run time).
        self.entry_cost = nn.Conv2d(levels, c4, 1, bias=False)
        self.entry_image = nn.Conv2d(f4, c4, 1, bias=False)
        self.entry = nn.Sequential(nn.BatchNorm2d(c4), nn.ReLU(), SeparableBlock(c4))
        self.down8 = down(c4, c8)
        self.down16 = down(c8, c16)
        self.down32 = down(c16, c32)
        self.gate8 = nn.Conv2d(f8, c8, 1)
        self.gate16 = nn.Conv2d(f16, c16, 1)
        self.gate32 = nn.Conv2d(f32, c32, 1)
        self.blocks8 = nn.Sequential(SeparableBlock(c8), SeparableBlock(c8, dilation=2))
        self.blocks16 = nn.Sequential(SeparableBlock(c16), InvertedResidual(c16))
        self.blocks32 = nn.Sequential(InvertedResidual(c32), InvertedResidual(c32))
        # Channel reduction happens before upsampling, where it costs 4x less.
        self.reduce32 = conv_bn(c32, c16, 1)
        self.reduce16 = conv_bn(c16, c8, 1)
        self.reduce8 = conv_bn(c8, c4, 1)
        self.up16 = SeparableBlock(c16)
        self.up8 = SeparableBlock(c8)
        self.up4 = SeparableBlock(c4)
        self.logits = nn.Conv2d(c4, levels, 1)

    def forward(
        self,
        cost: torch.Tensor,
        quarter: torch.Tensor,
        context: list[torch.Tensor],
        guidance: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate the cost.

        Args:
            cost: ``(N, D, h, w)`` correlation at 1/4.
            quarter: ``(N, 32, h, w)`` left features at 1/4.
            context: left features ``[1/8, 1/16, 1/32]``.
            guidance: optional ``(N, 48, h, w)`` term added at the entry (:class:`Guidance`).

        Returns:
            ``(N, D, h, w)`` matching logits and the ``(N, 48, h, w)`` hidden state they come from.
        """
        eighth, sixteenth, thirty_second = context
        entry = self.entry_cost(cost) + self.entry_image(quarter)
        if guidance is not None:
            entry = entry + guidance
        x4 = self.entry(entry)
        x8 = self.blocks8(self.down8(x4) * torch.sigmoid(self.gate8(eighth)))
        x16 = self.blocks16(self.down16(x8) * torch.sigmoid(self.gate16(sixteenth)))
        x32 = self.blocks32(self.down32(x16) * torch.sigmoid(self.gate32(thirty_second)))
        y16 = self.up16(upsample2(self.reduce32(x32)) + x16)
        y8 = self.up8(upsample2(self.reduce16(y16)) + x8)
        y4 = self.up4(upsample2(self.reduce8(y8)) + x4)
        return self.logits(y4), y4


def soft_argmin(logits: torch.Tensor, step_px: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected disparity under ``softmax(logits)`` over channels, and the peak probability.

    Args:
        logits: ``(N, D, h, w)`` matching scores, level ``d`` is disparity ``d * step_px``.
        step_px: disparity between levels, pixels of the full-resolution image.

    Returns:
        ``(N, 1, h, w)`` disparity in pixels and ``(N, 1, h, w)`` confidence in 0..1.
    """
    # Written as exp + one 1x1 convolution instead of Softmax: ONNX Runtime's Softmax over the
    # channel axis of an NCHW tensor is ~40x slower than this on CPUs, and its transpose optimiser
    # turns a channels-last Softmax back into that form.
    levels = logits.shape[1]
    weights = torch.exp(logits - logits.amax(1, keepdim=True).detach())  # the shift cancels out
    ramp = torch.arange(levels, device=logits.device, dtype=logits.dtype) * step_px
    kernel = torch.stack([torch.ones_like(ramp), ramp]).view(2, levels, 1, 1)
    sums = F.conv2d(weights, kernel)  # (N, 2, h, w): sum of weights, weighted sum of disparities
    total = sums[:, :1]
    return sums[:, 1:] / total, 1.0 / total  # peak weight is exp(0) = 1, so 1 / total = max prob


# ------------------------------------------------------------------------- refinement, upsampling
class Refinement(nn.Module):
    """Residual correction of the quarter-resolution disparity, and the convex upsampling weights.

    It reads the aggregation's last hidden state (which knows the image and the matching evidence)
    plus the disparity and its confidence; dilated depthwise blocks see ~30 quarter pixels around
    each pixel: enough to carry a confident disparity across a weakly textured patch or to snap it
    to an image edge.
    """

    width = 32

    def __init__(self, hidden_width: int, max_disp: int):
        super().__init__()
        self.max_disp = max_disp
        c = self.width
        self.entry_hidden = nn.Conv2d(hidden_width, c, 1)
        # Disparity and confidence enter through a per-channel affine map (a 1x1 convolution of two
        # channels, written as broadcasts, which run faster than a two-channel convolution).
        self.cue_weights = nn.Parameter(torch.randn(2, c, 1, 1) * 0.1)
        self.blocks = nn.Sequential(SeparableBlock(c), SeparableBlock(c, 2), SeparableBlock(c, 4), SeparableBlock(c, 8))
        self.residual = nn.Conv2d(c, 1, 3, padding=1)
        self.mask = nn.Conv2d(c, 9 * DOWNSAMPLE * DOWNSAMPLE, 1)
        # Start as "no correction, plain averaging upsampler" so early training is driven by matching.
        for layer in (self.residual, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        disparity_px: torch.Tensor,
        confidence: torch.Tensor,
        hidden: torch.Tensor,
        guidance: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Refine.

        Args:
            disparity_px: ``(N, 1, h, w)`` disparity at 1/4, full-resolution pixels.
            confidence: ``(N, 1, h, w)`` its peak probability.
            hidden: ``(N, 48, h, w)`` aggregation state.
            guidance: optional ``(N, 32, h, w)`` term added to the cues (:class:`Guidance`).

        Returns:
            Refined ``(N, 1, h, w)`` disparity (pixels) and ``(N, 9 * 16, h, w)`` upsampling mask logits.
        """
        # Disparity enters scaled to 0..1 so that the weights do not depend on the pixel range.
        cues = disparity_px / self.max_disp * self.cue_weights[0] + confidence * self.cue_weights[1]
        if guidance is not None:
            cues = cues + guidance
        state = self.blocks(F.relu(self.entry_hidden(hidden) + cues))
        refined_px = F.relu(disparity_px + self.residual(state) * (self.max_disp / 16))
        return refined_px, self.mask(state)


def convex_upsample(disparity_px: torch.Tensor, mask_logits: torch.Tensor, factor: int) -> torch.Tensor:
    """Upsample by a learned convex combination of each pixel's 3x3 neighbours (RAFT-style).

    Args:
        disparity_px: ``(N, 1, h, w)`` disparity, full-resolution pixels.
        mask_logits: ``(N, 9 * factor**2, h, w)``: block ``k`` of ``factor**2`` channels scores
            neighbour ``k`` (row-major in the 3x3 window) for every fine sub-pixel of the cell.
        factor: upsampling factor.

    Returns:
        ``(N, h * factor, w * factor)`` disparity in pixels.
    """
    cell = factor * factor
    # The 3x3 neighbours as 9 channels; edge replication keeps border pixels from mixing in zeros.
    eye = torch.eye(9, device=disparity_px.device, dtype=disparity_px.dtype).view(9, 1, 3, 3)
    neighbours = F.conv2d(F.pad(disparity_px, (1, 1, 1, 1), mode="replicate"), eye)  # (N, 9, h, w)
    # Softmax over the 9 neighbours spelled out over channel blocks: elementwise ops only, which
    # ONNX Runtime runs much faster than a Softmax over a short axis. The blocks come from one split,
    # not 9 slices: a slice's gradient is a zero-filled copy of the whole input (9 of them were 10 % of
    # a training step on a CPU).
    scores = torch.split(mask_logits, cell, dim=1)
    peak = scores[0]
    for score in scores[1:]:
        peak = torch.maximum(peak, score)
    peak = peak.detach()  # the shift cancels out
    numerator = torch.zeros_like(peak)
    denominator = torch.zeros_like(peak)
    for score, neighbour in zip(scores, torch.split(neighbours, 1, dim=1), strict=True):
        weight = torch.exp(score - peak)
        numerator = numerator + weight * neighbour
        denominator = denominator + weight
    return F.pixel_shuffle(numerator / denominator, factor).squeeze(1)


# ------------------------------------------------------------------- half-resolution refinement
def warp_right(right: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """The right features seen from the left view: right linearly interpolated at ``x - disparity``.

    Args:
        right: ``(N, C, h, w)`` right-image features.
        disparity: ``(N, 1, h, w)`` disparity of the left view, pixels of this resolution.

    Returns:
        ``(N, C, h, w)``; 0 where ``x - disparity`` falls outside the image.
    """
    n, c, h, w = right.shape
    position = torch.arange(w, device=right.device, dtype=right.dtype).view(1, 1, 1, w) - disparity
    base = torch.floor(position)
    fraction = position - base
    # Two gathers along the row (GatherElements in ONNX) instead of GridSample: exact, and fast on CPUs.
    index = base.clamp(0, w - 1).long().expand(n, c, h, w)
    next_index = (base + 1).clamp(0, w - 1).long().expand(n, c, h, w)
    warped = torch.gather(right, 3, index) * (1 - fraction) + torch.gather(right, 3, next_index) * fraction
    return warped * ((position >= 0) & (position <= w - 1)).to(right.dtype)


def shift_columns(x: torch.Tensor, offset: int) -> torch.Tensor:
    """``y[..., i] = x[..., i + offset]``, zero where ``i + offset`` is outside the row."""
    if offset == 0:
        return x
    if offset > 0:
        return F.pad(x[..., offset:], (0, offset))
    return F.pad(x[..., :offset], (-offset, 0))


def sub_pixel_head(width: int) -> tuple[nn.Sequential, nn.Conv2d]:
    """The trunk and last layer of a sub-pixel stage, which works at 1/2 resolution.

    The trunk (dilated depthwise blocks) sees about 15 pixels of 1/2 resolution around each pixel.
    The last layer gives the 2x2 full-resolution pixels of each 1/2 pixel their own residual (pixel
    shuffle follows): a one-channel bilinear upsampling would run in a 16-channel padded layout,
    several times slower. It starts at zero, so a stage bolted onto a trained network first changes
    nothing.
    """
    trunk = nn.Sequential(
        nn.BatchNorm2d(width), nn.ReLU(), SeparableBlock(width), SeparableBlock(width, 2), SeparableBlock(width, 4)
    )
    last = nn.Conv2d(width, 4, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return trunk, last


class HalfResolutionRefinement(nn.Module):
    """Sub-pixel correction at 1/2 resolution from a local comparison around the current disparity.

    The quarter-resolution cost volume places its levels 4 px apart. This stage warps the right
    image's 1/2-resolution features to the left view with the current disparity (linear
    interpolation, so fractional disparities are exact), compares them with the left features at the
    estimate and ``radius`` half-pixels to each side (channel-wise products, which the next
    convolution weighs as it learns), and a small network turns that local evidence plus the left
    image's features into a residual. Its last layer starts at zero: bolted onto a trained network it
    first changes nothing.
    """

    radius = 2
    match_width = 8
    width = 16  # ONNX Runtime's blocked convolution layout pads channels to multiples of 8 or 16

    def __init__(self, image_width: int):
        super().__init__()
        c, m = self.width, self.match_width
        self.features = nn.Sequential(
            conv_bn(image_width, image_width, 3, groups=image_width, relu=False), nn.Conv2d(image_width, m, 1)
        )
        self.entry_cost = nn.Conv2d((2 * self.radius + 1) * m, c, 1, bias=False)
        self.entry_image = nn.Conv2d(image_width, c, 1, bias=False)
        self.blocks, self.residual = sub_pixel_head(c)

    def forward(self, disparity_px: torch.Tensor, left_half: torch.Tensor, right_half: torch.Tensor) -> torch.Tensor:
        """Refine.

        Args:
            disparity_px: ``(N, H, W)`` disparity, full-resolution pixels.
            left_half, right_half: ``(N, 16, H/2, W/2)`` image features at 1/2.

        Returns:
            ``(N, H, W)`` refined disparity, pixels.
        """
        estimate_px = F.avg_pool2d(disparity_px.unsqueeze(1), 2).detach()  # (N, 1, H/2, W/2)
        left = self.features(left_half)
        warped = warp_right(self.features(right_half), estimate_px / 2)
        evidence = torch.cat([left * shift_columns(warped, k) for k in range(-self.radius, self.radius + 1)], dim=1)
        state = self.blocks(self.entry_cost(evidence) + self.entry_image(left_half))
        correction_px = F.pixel_shuffle(self.residual(state) * 2, 2).squeeze(1)
        return F.relu(disparity_px + correction_px)


class FullResolutionRefinement(nn.Module):
    """Sub-pixel correction from the full-resolution images, computed at 1/2 resolution.

    The same idea as :class:`HalfResolutionRefinement`, with the evidence taken one octave finer:
    the right image itself is warped to the left view by the current disparity and compared with the
    left image, colour channel by colour channel (absolute differences), at the estimate and
    ``radius`` pixels to each side. That evidence sees what every coarser stage averaged away (thin
    structures, the exact column of a depth edge, fine texture that pins a disparity to a fraction
    of a pixel). It is folded into channels at 1/2 resolution (each 1/2 pixel holds its 2x2 full
    pixels), where a small network with the left 1/2 features turns it into one residual per full
    pixel. Full-resolution tensors keep 3 channels: at 640x480 every extra full-resolution channel
    costs about as much time as a convolution at 1/2 resolution. Its last layer starts at zero.
    """

    radius = 2
    width = 16

    def __init__(self, image_width: int):
        super().__init__()
        c = self.width
        # A 2x2 convolution with stride 2 reads each 1/2 pixel's 2x2 full pixels: the same as folding
        # them into channels and a 1x1 convolution, without the 6-D transpose that folding costs.
        self.entry_cost = nn.Conv2d(3 * (2 * self.radius + 1), c, 2, stride=2, bias=False)
        self.entry_image = nn.Conv2d(image_width, c, 1, bias=False)
        self.blocks, self.residual = sub_pixel_head(c)

    def forward(
        self,
        disparity_px: torch.Tensor,
        left_image: torch.Tensor,
        right_image: torch.Tensor,
        left_half: torch.Tensor,
    ) -> torch.Tensor:
        """Refine.

        Args:
            disparity_px: ``(N, H, W)`` disparity, pixels.
            left_image, right_image: ``(N, 3, H, W)`` normalised images.
            left_half: ``(N, 16, H/2, W/2)`` left image features at 1/2.

        Returns:
            ``(N, H, W)`` refined disparity, pixels.
        """
        warped = warp_right(right_image, disparity_px.unsqueeze(1).detach())
        evidence = torch.cat(
            [(left_image - shift_columns(warped, k)).abs() for k in range(-self.radius, self.radius + 1)],
            dim=1,
        )
        state = self.blocks(self.entry_cost(evidence) + self.entry_image(left_half))
        correction_px = F.pixel_shuffle(self.residual(state), 2).squeeze(1)
        return F.relu(disparity_px + correction_px)


def full_precision(like: torch.Tensor):
    """A context that turns autocast off on ``like``'s device (a no-op outside autocast)."""
    return torch.autocast(like.device.type, enabled=False)


# ------------------------------------------------------------------------------------- guidance
HINT_SIGMA_PX = 4.0  # width of a hint's bump over the disparity levels (one level at 1/4)


class Guidance(nn.Module):
    """Sparse disparities known in advance (SGBM's confident matches) as evidence for the network.

    Guided stereo matching (Poggi et al., CVPR 2019) lets a few known disparities reshape a network's
    cost volume so that the aggregation carries them into their surroundings. Here the hints enter
    as two learned terms, both zero at initialisation (a guided network starts as the plain one, and
    behaves as it wherever there is no hint):

    - at the aggregation's entry, a 1x1 convolution of a bump over the ``D`` levels centred on each
      quarter pixel's mean hint, scaled by the fraction of its 4x4 pixels that have one;
    - in the refinement's cues, the mean hint (scaled to 0..1) and that fraction.

    Hints are ``(N, 1, H, W)`` pixels of the full-resolution input, 0 (or less) where there is none.
    """

    def __init__(self, levels: int, max_disp: int):
        super().__init__()
        self.max_disp = max_disp
        self.to_cost = nn.Conv2d(levels, GuidedHourglass.widths[0], 1, bias=False)
        self.cue_weights = nn.Parameter(torch.zeros(2, Refinement.width, 1, 1))
        nn.init.zeros_(self.to_cost.weight)
        self.register_buffer(
            "centres", torch.arange(levels, dtype=torch.float32).view(1, levels, 1, 1) * DOWNSAMPLE, persistent=False
        )

    def forward(self, hints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The aggregation's ``(N, 48, h, w)`` and the refinement's ``(N, 32, h, w)`` terms."""
        hints = hints.float()
        present = (hints > 0).float()
        share = F.avg_pool2d(present, DOWNSAMPLE)  # fraction of each 4x4 block with a hint
        mean = F.avg_pool2d(hints * present, DOWNSAMPLE) / share.clamp(min=1.0 / DOWNSAMPLE**2)
        bump = share * torch.exp(-0.5 * ((self.centres - mean) / HINT_SIGMA_PX) ** 2)
        cues = mean / self.max_disp * self.cue_weights[0] + share * self.cue_weights[1]
        return self.to_cost(bump), cues


# ---------------------------------------------------------------------------------------- network
class RTNet(nn.Module):
    """rtstereo's real-time network.

    Args:
        max_disp: largest disparity searched, pixels of the input; a multiple of 32.
        half_refinement: add the 1/2-resolution sub-pixel stage.
        full_refinement: add the full-resolution sub-pixel stage (after the 1/2 stage if both).
        guided: take a third input, sparse disparities known in advance (:class:`Guidance`).

    Inputs are ``(N, 3, H, W)`` float32, ImageNet-normalised, ``H`` and ``W`` multiples of 32. In eval
    mode ``forward`` returns the disparity ``(N, H, W)`` in pixels; in training mode it returns the
    list ``[coarse, upsampled, (1/2 stage), (full stage)]`` of ``(N, H, W)`` disparities (finest last)
    for a multi-scale loss.
    """

    def __init__(
        self, max_disp: int = 192, half_refinement: bool = False, full_refinement: bool = False, guided: bool = False
    ):
        super().__init__()
        if isinstance(max_disp, bool) or not isinstance(max_disp, int) or max_disp <= 0 or max_disp % 32:
            up = -(-max_disp // 32) * 32 if isinstance(max_disp, int) and not isinstance(max_disp, bool) else 0
            raise SettingError(
                "max_disp",
                f"rtnet needs a positive multiple of 32 pixels, got {max_disp!r}; "
                f"round it up to the next multiple of 32 ({up if up > 0 else 'e.g. 192'})",
            )
        self.max_disp = max_disp
        self.levels = max_disp // DOWNSAMPLE
        self.encoder = Encoder()
        self.match = nn.Conv2d(Encoder.widths[1], Encoder.widths[1], 1)
        self.aggregation = GuidedHourglass(self.levels, Encoder.widths[1:])
        self.refinement = Refinement(GuidedHourglass.widths[0], max_disp)
        self.half_refinement = HalfResolutionRefinement(Encoder.widths[0]) if half_refinement else None
        self.full_refinement = FullResolutionRefinement(Encoder.widths[0]) if full_refinement else None
        self.guidance = Guidance(self.levels, max_disp) if guided else None

    def forward(
        self, left: torch.Tensor, right: torch.Tensor, hints: torch.Tensor | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Disparity of the left view (see the class); ``hints`` ``(N, 1, H, W)`` pixels, 0 where none,
        for a ``guided`` network (without them it runs unguided). A guided network also takes them as
        a fourth channel of ``left``: the form of its ONNX export, whose inputs stay two."""
        if hints is None and left.dim() == 4 and left.shape[1] == 4 and self.guidance is not None:
            left, hints = left[:, :3], left[:, 3:]
        check_stereo_batch("rtnet", left, right, SIZE_DIVISOR)
        guide_cost = guide_cues = None
        if hints is not None:
            if self.guidance is None:
                raise InputError("rtnet: hints were given to a network built without guided=true")
            if hints.shape != (left.shape[0], 1, *left.shape[2:]):
                raise InputError(f"rtnet: hints must be (N, 1, H, W) like the images, got {tuple(hints.shape)}")
            with full_precision(left):
                guide_cost, guide_cues = self.guidance(hints)
        left_half, left_quarter = self.encoder.quarter(left)
        right_half, right_quarter = self.encoder.quarter(right)
        context = self.encoder.context(left_quarter)

        cost = correlation(self.match(left_quarter), self.match(right_quarter), self.levels)
        logits, hidden = self.aggregation(cost, left_quarter, context, guide_cost)
        # Disparities are computed in fp32 even under bf16/fp16 autocast: 8 mantissa bits would
        # round a 150 px disparity to steps of 0.5 px.
        with full_precision(logits):
            coarse_px, confidence = soft_argmin(logits.float(), float(DOWNSAMPLE))
        refined_px, mask_logits = self.refinement(coarse_px, confidence, hidden, guide_cues)
        with full_precision(refined_px):
            upsampled_px = convex_upsample(refined_px.float(), mask_logits.float(), DOWNSAMPLE)
        predictions = [upsampled_px]
        with full_precision(upsampled_px):
            if self.half_refinement is not None:
                predictions.append(self.half_refinement(predictions[-1], left_half.float(), right_half.float()))
            if self.full_refinement is not None:
                predictions.append(
                    self.full_refinement(predictions[-1], left.float(), right.float(), left_half.float())
                )
        if not self.training:
            return predictions[-1]
        coarse_full_px = F.interpolate(
            coarse_px, scale_factor=float(DOWNSAMPLE), mode="bilinear", align_corners=False
        ).squeeze(1)
        return [coarse_full_px, *predictions]


# ------------------------------------------------------------------------------- registry entries
def build_rtnet(settings: dict[str, Any] | None = None) -> RTNet:
    """Registry builder: an untrained :class:`RTNet` from its settings (``max_disp``)."""
    settings = dict(settings or {})
    max_disp = settings.pop("max_disp", 192)
    stages = {name: settings.pop(name, False) for name in (*REFINEMENT_STAGES, "guided")}
    if settings:
        raise InputError(
            f"rtnet: unknown settings {sorted(settings)} (it has: max_disp, {', '.join(REFINEMENT_STAGES)}, guided)"
        )
    for name, value in stages.items():
        if not isinstance(value, bool):
            raise InputError(f"rtnet: {name} must be true or false, got {value!r}")
    return RTNet(max_disp=max_disp, **stages)


def settings_of(module: RTNet) -> dict[str, Any]:
    """The settings that rebuild ``module`` (what its checkpoints record)."""
    settings = {"max_disp": module.max_disp, **{name: getattr(module, name) is not None for name in REFINEMENT_STAGES}}
    if module.guidance is not None:  # recorded only when on: checkpoints of plain networks stay as they were
        settings["guided"] = True
    return settings


def load_rtnet_checkpoint(module: RTNet, path: str | Path) -> dict[str, Any]:
    """Registry loader: load rtstereo's self-describing checkpoint (or a bare state dict) into ``module``.

    Args:
        module: an :class:`RTNet` built with the checkpoint's settings.
        path: the checkpoint file.

    Returns:
        Metadata: ``model``, ``settings``, and the training ``step`` when the file holds one.

    Raises:
        CheckpointError: missing/damaged file, another architecture, or other settings.
    """
    obj = read_torch_file(path)
    described = describe(obj)
    if described is not None:
        model, settings = described
        if model != MODEL_NAME:
            raise CheckpointError(
                f"{path} holds a '{model}' checkpoint, not {MODEL_NAME}; load it with --model {model}"
            )
        # Every setting that differs is named at once: one run per mismatch would be a guessing game.
        built = {"max_disp": module.max_disp, **settings_of(module)}
        trained = {"max_disp": settings.get("max_disp", module.max_disp)}
        trained.update({name: bool(settings.get(name, False)) for name in (*REFINEMENT_STAGES, "guided")})
        differ = [name for name in trained if trained[name] != built.get(name, False)]
        if differ:
            was, now = ({n: str(values.get(n, False)).lower() for n in differ} for values in (trained, built))
            # the Python words too: rtstereo.load('rtnet', weights=...) was told of --set alone
            keywords = ", ".join(f"{n}={trained[n]!r}" for n in differ)
            raise CheckpointError(
                f"{path} was trained with {', '.join(f'{n}={v}' for n, v in was.items())}, but the network was "
                f"built with {', '.join(f'{n}={v}' for n, v in now.items())}; build it with "
                f"{' '.join(f'--set {n}={v}' for n, v in was.items())} ({keywords} in Python), or give the checkpoint "
                f"as the model (--model {path}; rtstereo export {path} ...) and leave these settings out: it reads "
                f"them from the file (rtstereo.load({str(path)!r}) in Python)"
            )
    state_dict = strip_prefix(find_state_dict(obj, path, ("state_dict", "model")))
    load_into(module, state_dict, path, MODEL_NAME)
    meta: dict[str, Any] = {"model": MODEL_NAME, "settings": settings_of(module)}
    if isinstance(obj, dict) and "step" in obj:
        meta["step"] = int(obj["step"])
    return meta
