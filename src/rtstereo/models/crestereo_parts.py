"""Building blocks of CREStereo: feature encoder, LoFTR attention, adaptive group correlation, GRU update.

Module and parameter names mirror the widely used PyTorch port of CREStereo (itself a conversion of
the MegEngine original), so that its bare state dict loads unchanged into :class:`~.crestereo.CREStereo`.

Flow convention inside these blocks: ``flow[:, 0]`` is the horizontal offset from a left pixel to
its match in the right image, i.e. *minus* the disparity; ``flow[:, 1]`` is the vertical offset.
"""

from __future__ import annotations

import math

from ..errors import torch_missing

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

NUM_CORR_GROUPS = 4
SEARCH_POINTS = 9  # 1x9 (horizontal line) or 3x3 (square) window: 9 samples either way


# --------------------------------------------------------------------------------------------------
# Feature encoder: 1/4 resolution, 256 channels, instance normalisation
# --------------------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a 1x1 projection shortcut (present even when shapes agree)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1)
        self.norm1 = nn.InstanceNorm2d(out_ch, affine=False)
        self.norm2 = nn.InstanceNorm2d(out_ch, affine=False)
        self.downsample = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride), nn.InstanceNorm2d(out_ch, affine=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        return F.relu(self.downsample(x) + y)


class BasicEncoder(nn.Module):
    """RAFT's basic encoder: ``(N, 3, H, W)`` in ``[-1, 1]`` -> ``(N, 256, H/4, W/4)``."""

    def __init__(self, output_dim: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.norm1 = nn.InstanceNorm2d(64, affine=False)
        self.layer1 = nn.Sequential(ResidualBlock(64, 64, 1), ResidualBlock(64, 64, 1))
        self.layer2 = nn.Sequential(ResidualBlock(64, 96, 2), ResidualBlock(96, 96, 1))
        self.layer3 = nn.Sequential(ResidualBlock(96, 128, 1), ResidualBlock(128, 128, 1))
        self.conv2 = nn.Conv2d(128, output_dim, kernel_size=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.conv2(x)


# --------------------------------------------------------------------------------------------------
# LoFTR-style transformer with linear attention (used at 1/16)
# --------------------------------------------------------------------------------------------------


def position_encoding_sine(channels: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """LoFTR's 2D sinusoidal encoding ``(1, channels, height, width)``, as CREStereo was trained with it.

    Channels cycle through ``sin(x f), cos(x f), sin(y f), cos(y f)`` for ``channels // 4``
    frequencies, with positions counted from 1. The frequencies keep the original's operator
    precedence, ``-log(10000) / channels // 2`` = ``-1.0`` (LoFTR issue 41): the released weights
    were trained with it, so "fixing" it would change the outputs.
    """
    step = (-math.log(10000.0) / channels) // 2
    freqs = torch.exp(torch.arange(0, channels // 2, 2, dtype=torch.float32, device=like.device) * step)
    x_pos = torch.arange(1, width + 1, dtype=torch.float32, device=like.device).view(1, 1, width)
    y_pos = torch.arange(1, height + 1, dtype=torch.float32, device=like.device).view(1, height, 1)
    freqs = freqs.view(-1, 1, 1)
    x_phase = (x_pos * freqs).expand(-1, height, width)
    y_phase = (y_pos * freqs).expand(-1, height, width)
    pe = torch.stack((x_phase.sin(), x_phase.cos(), y_phase.sin(), y_phase.cos()), dim=1)
    return pe.reshape(1, channels, height, width).to(like.dtype)


def linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Linear attention ("Transformers are RNNs") with the ``elu + 1`` feature map.

    Args:
        query: ``(N, heads, L, D)``; key, value: ``(N, heads, S, D)``.

    Returns:
        ``(N, heads, L, D)``.
    """
    q = F.elu(query) + 1.0
    k = F.elu(key) + 1.0
    length = value.shape[2]
    kv = k.transpose(2, 3) @ (value / length)  # (N, heads, D, D); / length keeps fp16 in range
    normaliser = 1.0 / ((q * k.sum(dim=2, keepdim=True)).sum(dim=-1, keepdim=True) + eps)
    return (q @ kv) * normaliser * length


class LoFTREncoderLayer(nn.Module):
    """One attention layer: multi-head linear attention from ``source`` to ``x``, then an MLP."""

    def __init__(self, d_model: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.merge = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * d_model, 2 * d_model, bias=False),
            nn.ReLU(),
            nn.Linear(2 * d_model, d_model, bias=False),
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, channels = x.shape
        return x.view(n, length, self.num_heads, channels // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, L, C)`` tokens updated with messages from ``source``: ``(N, S, C)``."""
        n, length, channels = x.shape
        message = linear_attention(
            self._heads(self.q_proj(x)), self._heads(self.k_proj(source)), self._heads(self.v_proj(source))
        )
        message = self.norm1(self.merge(message.transpose(1, 2).reshape(n, length, channels)))
        message = self.norm2(self.mlp(torch.cat((x, message), dim=2)))
        return x + message


class LocalFeatureTransformer(nn.Module):
    """A stack of ``self`` / ``cross`` attention layers over the tokens of two images."""

    def __init__(self, layer_names: list[str], d_model: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        self.layer_names = list(layer_names)
        self.layers = nn.ModuleList(LoFTREncoderLayer(d_model, num_heads) for _ in self.layer_names)
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def forward(self, feat0: torch.Tensor, feat1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(N, L, C)`` of the left and right image, updated."""
        for layer, name in zip(self.layers, self.layer_names, strict=True):
            if name == "self":
                feat0, feat1 = layer(feat0, feat0), layer(feat1, feat1)
            else:
                # The right tokens attend to the already updated left ones, as in LoFTR.
                feat0 = layer(feat0, feat1)
                feat1 = layer(feat1, feat0)
        return feat0, feat1

    def forward_maps(self, fmap0: torch.Tensor, fmap1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as :meth:`forward` on feature maps ``(N, C, H, W)``."""
        n, c, h, w = fmap0.shape
        tokens0, tokens1 = (f.permute(0, 2, 3, 1).reshape(n, h * w, c) for f in (fmap0, fmap1))
        tokens0, tokens1 = self(tokens0, tokens1)
        return tuple(t.reshape(n, h, w, c).permute(0, 3, 1, 2) for t in (tokens0, tokens1))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# Adaptive group correlation
# --------------------------------------------------------------------------------------------------


def coords_grid(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates ``(batch, 2, height, width)``: channel 0 is x (column), 1 is y (row)."""
    ys = torch.arange(height, dtype=like.dtype, device=like.device).view(height, 1).expand(height, width)
    xs = torch.arange(width, dtype=like.dtype, device=like.device).view(1, width).expand(height, width)
    return torch.stack((xs, ys)).unsqueeze(0).expand(batch, 2, height, width)


def sample_at(image: torch.Tensor, coords_xy: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling at pixel coordinates, zeros outside (the port's ``bilinear_sampler``).

    Args:
        image: ``(N, C, H, W)``.
        coords_xy: ``(N, Hg, Wg, 2)`` pixel coordinates, x first.

    Returns:
        ``(N, C, Hg, Wg)``.
    """
    height, width = image.shape[-2:]
    # align_corners=True: -1 and 1 are the centres of the first and last pixels, so pixel x maps
    # to 2x/(W-1) - 1 exactly.
    x, y = coords_xy.unbind(dim=-1)
    grid = torch.stack((x * (2.0 / (width - 1)) - 1.0, y * (2.0 / (height - 1)) - 1.0), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _search_window(small_patch: bool) -> tuple[int, int]:
    """Half height and half width of the search window: 3x3 (2D) or 1x9 (1D, along the row)."""
    return (1, 1) if small_patch else (0, 4)


def _group_mean(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Channel-mean of ``left * right`` within each of the 4 channel groups: ``(N, 4, ...)``."""
    n, c = left.shape[:2]
    product = left * right
    return product.reshape(n, NUM_CORR_GROUPS, c // NUM_CORR_GROUPS, *product.shape[2:]).mean(dim=2)


def local_correlation(left: torch.Tensor, right_warped: torch.Tensor, small_patch: bool) -> torch.Tensor:
    """Group-wise correlation over a fixed window around each (already warped) right pixel.

    Used at 1/4. The right features are replicate-padded so that the window never leaves the image.

    Args:
        left, right_warped: ``(N, C, H, W)`` with ``C`` divisible by 4.
        small_patch: 3x3 window if true, else 1x9.

    Returns:
        ``(N, 36, H, W)``: group-major, then window position (row-major).
    """
    n, c, height, width = left.shape
    pad_y, pad_x = _search_window(small_patch)
    padded = F.pad(right_warped, (pad_x, pad_x, pad_y, pad_y), mode="replicate")
    # All 9 window positions gathered at once from the flattened padded map (one operation instead
    # of one product per position): index (position, y, x) -> (y + dy) * padded_width + x + dx.
    padded_width = width + 2 * pad_x
    dy = torch.arange(2 * pad_y + 1, device=left.device).view(-1, 1, 1, 1)
    dx = torch.arange(2 * pad_x + 1, device=left.device).view(1, -1, 1, 1)
    ys = torch.arange(height, device=left.device).view(1, 1, height, 1)
    xs = torch.arange(width, device=left.device).view(1, 1, 1, width)
    index = ((ys + dy) * padded_width + xs + dx).reshape(-1)  # row-major window positions
    windows = padded.flatten(2).index_select(2, index).view(n, c, SEARCH_POINTS, height, width)
    corr = _group_mean(left.unsqueeze(2), windows)  # (N, 4, 9, H, W)
    return corr.reshape(n, NUM_CORR_GROUPS * SEARCH_POINTS, height, width)


def offset_correlation(
    left: torch.Tensor, right: torch.Tensor, flow: torch.Tensor, extra_offset: torch.Tensor, small_patch: bool
) -> torch.Tensor:
    """Group-wise correlation over a deformable window: fixed grid + learned per-pixel offsets.

    Used at 1/16 and 1/8. The right image is sampled bilinearly (zeros outside) at
    ``pixel + flow + window offset + learned offset`` for each of the 9 window positions.

    Args:
        left, right: ``(N, C, H, W)`` with ``C`` divisible by 4.
        flow: ``(N, 2, H, W)`` current flow (pixels of this level).
        extra_offset: ``(N, 18, H, W)`` learned offsets, ``(dx, dy)`` per window position.
        small_patch: 3x3 window if true, else 1x9.

    Returns:
        ``(N, 36, H, W)``: group-major, then window position.
    """
    n, c, height, width = left.shape
    half_y, half_x = _search_window(small_patch)
    dy, dx = torch.meshgrid(
        torch.arange(-half_y, half_y + 1, dtype=flow.dtype, device=flow.device),
        torch.arange(-half_x, half_x + 1, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    window = torch.stack((dx, dy), dim=-1).reshape(1, SEARCH_POINTS, 1, 1, 2)
    learned = extra_offset.reshape(n, SEARCH_POINTS, 2, height, width).permute(0, 1, 3, 4, 2)
    centres = (coords_grid(n, height, width, flow) + flow).permute(0, 2, 3, 1).unsqueeze(1)
    coords = (centres + window + learned).reshape(n, SEARCH_POINTS * height, width, 2)
    # Every group uses the same window, so all channels are sampled in one call.
    sampled = sample_at(right, coords).reshape(n, c, SEARCH_POINTS, height, width)
    corr = _group_mean(left.unsqueeze(2), sampled)  # (N, 4, 9, H, W)
    return corr.reshape(n, NUM_CORR_GROUPS * SEARCH_POINTS, height, width)


# --------------------------------------------------------------------------------------------------
# Recurrent update (RAFT's separable ConvGRU) and convex upsampling
# --------------------------------------------------------------------------------------------------


class FlowHead(nn.Module):
    def __init__(self, input_dim: int = 128, hidden_dim: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class SepConvGRU(nn.Module):
    """ConvGRU run twice: with 1x5 kernels (horizontal), then 5x1 (vertical)."""

    def __init__(self, hidden_dim: int = 128, input_dim: int = 256) -> None:
        super().__init__()
        total = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(total, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(total, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(total, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(total, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(total, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(total, hidden_dim, (5, 1), padding=(2, 0))

    @staticmethod
    def _step(h: torch.Tensor, x: torch.Tensor, convz: nn.Module, convr: nn.Module, convq: nn.Module) -> torch.Tensor:
        hx = torch.cat((h, x), dim=1)
        z = torch.sigmoid(convz(hx))
        r = torch.sigmoid(convr(hx))
        q = torch.tanh(convq(torch.cat((r * h, x), dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self._step(h, x, self.convz1, self.convr1, self.convq1)
        return self._step(h, x, self.convz2, self.convr2, self.convq2)


class BasicMotionEncoder(nn.Module):
    """Correlation + current flow -> 128 motion features (the last 2 are the flow itself)."""

    def __init__(self, corr_channels: int) -> None:
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 256, 1)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 192, 128 - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        cor = F.relu(self.convc2(F.relu(self.convc1(corr))))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat((cor, flo), dim=1)))
        return torch.cat((out, flow), dim=1)


class BasicUpdateBlock(nn.Module):
    """One refinement step (new hidden state and flow update), plus the convex-upsampling mask.

    The same weights serve all three levels (1/16, 1/8, 1/4). The mask depends only on the hidden
    state, so it is computed by :meth:`upsample_mask` once, after a level's last step, rather than at
    every step as in the original (same result, about 10% less work per step).
    """

    def __init__(self, hidden_dim: int = 128, corr_channels: int = 36, mask_rate: int = 4) -> None:
        super().__init__()
        self.encoder = BasicMotionEncoder(corr_channels)
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=128 + hidden_dim)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=256)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 256, 3, padding=1), nn.ReLU(), nn.Conv2d(256, mask_rate**2 * 9, 1)
        )

    def forward(
        self, net: torch.Tensor, inp: torch.Tensor, corr: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(net, delta_flow)``: ``(N, 128, H, W)`` and ``(N, 2, H, W)``."""
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat((inp, motion), dim=1))
        return net, self.flow_head(net)

    def upsample_mask(self, net: torch.Tensor) -> torch.Tensor:
        """Convex-upsampling logits ``(N, 9 * rate**2, H, W)`` from the hidden state."""
        # 0.25 balances the mask's gradients (RAFT); kept because the weights were trained with it.
        return 0.25 * self.mask(net)


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, rate: int) -> torch.Tensor:
    """Upsample flow by ``rate``: each fine pixel is a softmax-weighted mix of the 3x3 coarse neighbours.

    Args:
        flow: ``(N, 2, H, W)`` in coarse pixels.
        mask: ``(N, 9 * rate * rate, H, W)`` logits.
        rate: upsampling factor.

    Returns:
        ``(N, 2, rate * H, rate * W)`` in fine pixels.
    """
    n, _, height, width = flow.shape
    weights = torch.softmax(mask.view(n, 1, 9, rate, rate, height, width), dim=2)
    # Zero padding and (row, column) neighbour order as F.unfold, written with slices for ONNX.
    padded = F.pad(rate * flow, (1, 1, 1, 1))
    neighbours = torch.stack(
        [padded[:, :, dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)], dim=2
    )
    up = (weights * neighbours.view(n, 2, 9, 1, 1, height, width)).sum(dim=2)  # (N, 2, r, r, H, W)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, rate * height, rate * width)
