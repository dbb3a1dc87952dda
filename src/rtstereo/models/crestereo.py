"""CREStereo: cascaded recurrent stereo matching with adaptive correlation (Li et al., CVPR 2022).

Faithful to the widely used PyTorch port of the MegEngine original: its bare state dict
(``crestereo_eth3d.pth``) loads unchanged, and the outputs match it to ~1e-5 px.

```
fnet          RAFT basic encoder (instance norm): both images -> 256 channels at 1/4;
              the left features also give the GRU's hidden state (tanh) and context (relu)
pyramid       1/8 and 1/16 by average pooling; learned search offsets at both (conv_offset_8/16)
attention     at 1/16: sine position encoding, self attention, then cross attention (linear, LoFTR)
refinement    one shared ConvGRU update block; iters // 2 steps at 1/16, iters // 2 at 1/8, iters
              at 1/4; the search window alternates 1x9 (1D) and 3x3 (2D), deformed by the learned
              offsets at 1/16 and 1/8, fixed around the warped right features at 1/4
output        convex upsampling x4 of the 1/4 flow
```

With ``flow_init`` (the flow of a half-size pass) the 1/16 and 1/8 stages are skipped: the flow is
resized to 1/4 of the input and refined there for ``iters`` steps. That is the two-pass "combined"
mode of the public CREStereo ONNX models.

Sign conventions kept from the original: the internal flow is right-minus-left (negative
disparity); the returned flow is negated, so channel 0 is the positive disparity. The original also
negates when passing the 1/16 result to 1/8 and the 1/8 result to 1/4; the released weights were
trained with those flips, so they are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from .crestereo_parts import (
    SEARCH_POINTS,
    BasicEncoder,
    BasicUpdateBlock,
    LocalFeatureTransformer,
    convex_upsample,
    coords_grid,
    local_correlation,
    offset_correlation,
    position_encoding_sine,
    sample_at,
)
from .inputs import check_stereo_batch

ARCHITECTURE = "crestereo"
SIZE_DIVISOR = 16  # one pass: features at 1/16 of the input
TWO_PASS_SIZE_DIVISOR = 32  # the half-size pass needs its own input divisible by 16
MIN_SIZE_PX = 32  # sampling at 1/16 normalises by (size - 1), so that level needs 2 pixels
HIDDEN_DIM = 128
FEATURE_DIM = 256
DEFAULT_ITERS = 20


def rgb_to_bgr(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` images with their colour channels reversed: rtstereo's RGB in the BGR order the
    released weights take (megvii's ``test.py`` and training reader, and the PyTorch port's
    ``test_onnx_model.py``, load images with ``cv2.imread`` and feed them unconverted)."""
    return images.flip(1)


def _resize_flow(flow: torch.Tensor, size_hw: tuple[int, int], scale: float) -> torch.Tensor:
    """Bilinear resize (align_corners=True, as the original) with the values multiplied by ``scale``."""
    return scale * F.interpolate(flow, size=size_hw, mode="bilinear", align_corners=True)


class CREStereo(nn.Module):
    """The CREStereo network (PyTorch port layout).

    ``forward(left, right, iters, flow_init=None)`` takes float BGR images in ``0..255``,
    ``(N, 3, H, W)`` with ``H`` and ``W`` multiples of 16, and returns the flow ``(N, 2, H, W)``
    whose channel 0 is the disparity of the left image in pixels (positive).

    Examples:
        >>> net = CREStereo().eval()
        >>> with torch.no_grad():
        ...     net(torch.zeros(1, 3, 32, 64), torch.zeros(1, 3, 32, 64), iters=2).shape
        torch.Size([1, 2, 32, 64])
    """

    def __init__(self) -> None:
        super().__init__()
        self.fnet = BasicEncoder(output_dim=FEATURE_DIM)
        self.update_block = BasicUpdateBlock(hidden_dim=HIDDEN_DIM, corr_channels=4 * SEARCH_POINTS, mask_rate=4)
        self.self_att_fn = LocalFeatureTransformer(["self"], d_model=FEATURE_DIM, num_heads=8)
        self.cross_att_fn = LocalFeatureTransformer(["cross"], d_model=FEATURE_DIM, num_heads=8)
        self.conv_offset_16 = nn.Conv2d(FEATURE_DIM, 2 * SEARCH_POINTS, kernel_size=3, padding=1)
        self.conv_offset_8 = nn.Conv2d(FEATURE_DIM, 2 * SEARCH_POINTS, kernel_size=3, padding=1)
        # Learned offsets are squashed to (-range, range) pixels of their level.
        self.offset_range_16 = 1.0
        self.offset_range_8 = 1.0

    def forward(
        self, left: torch.Tensor, right: torch.Tensor, iters: int, flow_init: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Flow from the left to the right image, negated: channel 0 is the disparity.

        Args:
            left, right: ``(N, 3, H, W)`` float BGR in ``0..255``; ``H``, ``W`` multiples of 16, at least 32.
            iters: refinement steps at 1/4 (and ``iters // 2`` at each of 1/16 and 1/8 when there is
                no ``flow_init``).
            flow_init: optional ``(N, 2, h, w)`` output of a pass at another size (usually half);
                it is resized to 1/4 of the input and its values rescaled by the height ratio.

        Returns:
            ``(N, 2, H, W)`` float: disparity (pixels, positive) and vertical flow.
        """
        _check_inputs(left, right, iters, flow_init)
        images = 2.0 * (torch.cat((left, right), dim=0) / 255.0) - 1.0  # to [-1, 1]
        fmap1, fmap2 = self.fnet(images).chunk(2, dim=0)
        net, inp = torch.split(fmap1, [HIDDEN_DIM, HIDDEN_DIM], dim=1)
        net, inp = torch.tanh(net), F.relu(inp)
        size_dw4 = (fmap1.shape[2], fmap1.shape[3])

        if flow_init is None:
            flow = self._coarse_to_quarter(fmap1, fmap2, net, inp, iters)
        else:
            # An output (positive disparity) of a pass at another size: back to the internal sign,
            # and to pixels of the 1/4 level (the scale is the height ratio, as in the original).
            flow = _resize_flow(flow_init, size_dw4, -fmap1.shape[2] / flow_init.shape[2])

        # 1/4: fixed window around the right features warped by the current flow.
        coords = coords_grid(fmap1.shape[0], size_dw4[0], size_dw4[1], fmap1)
        for step in range(iters):
            right_warped = sample_at(fmap2, (coords + flow).permute(0, 2, 3, 1))
            corr = local_correlation(fmap1, right_warped, small_patch=step % 2 == 1)
            net, delta = self.update_block(net, inp, corr, flow)
            flow = flow + delta
        return -convex_upsample(flow, self.update_block.upsample_mask(net), rate=4)

    def _coarse_to_quarter(
        self, fmap1: torch.Tensor, fmap2: torch.Tensor, net: torch.Tensor, inp: torch.Tensor, iters: int
    ) -> torch.Tensor:
        """The 1/16 and 1/8 stages from zero flow; returns the flow at 1/4 (internal sign)."""
        fmap1_dw8, fmap2_dw8 = F.avg_pool2d(fmap1, 2, stride=2), F.avg_pool2d(fmap2, 2, stride=2)
        offset_dw8 = self.offset_range_8 * (torch.sigmoid(self.conv_offset_8(fmap1_dw8)) - 0.5) * 2.0
        net_dw8, inp_dw8 = F.avg_pool2d(net, 2, stride=2), F.avg_pool2d(inp, 2, stride=2)

        fmap1_dw16, fmap2_dw16 = F.avg_pool2d(fmap1, 4, stride=4), F.avg_pool2d(fmap2, 4, stride=4)
        offset_dw16 = self.offset_range_16 * (torch.sigmoid(self.conv_offset_16(fmap1_dw16)) - 0.5) * 2.0
        net_dw16, inp_dw16 = F.avg_pool2d(net, 4, stride=4), F.avg_pool2d(inp, 4, stride=4)

        pe = position_encoding_sine(FEATURE_DIM, fmap1_dw16.shape[2], fmap1_dw16.shape[3], fmap1_dw16)
        fmap1_dw16, fmap2_dw16 = self.self_att_fn.forward_maps(fmap1_dw16 + pe, fmap2_dw16 + pe)
        # The original applies the cross attention inside every 1/16 correlation call, always to
        # these same features; applying it once gives identical results.
        fmap1_dw16, fmap2_dw16 = self.cross_att_fn.forward_maps(fmap1_dw16, fmap2_dw16)

        # 1/16 from zero flow; the convex upsampling gives the flow at 1/4.
        flow_dw16 = torch.zeros_like(fmap1_dw16[:, :2])
        flow = self._offset_stage(fmap1_dw16, fmap2_dw16, offset_dw16, net_dw16, inp_dw16, flow_dw16, iters // 2)

        # 1/8, started from the 1/16 result with the original's sign flip; upsampled to 1/2.
        size_dw8 = (fmap1_dw8.shape[2], fmap1_dw8.shape[3])
        flow_dw8 = _resize_flow(flow, size_dw8, -size_dw8[0] / flow.shape[2])
        flow = self._offset_stage(fmap1_dw8, fmap2_dw8, offset_dw8, net_dw8, inp_dw8, flow_dw8, iters // 2)

        size_dw4 = (fmap1.shape[2], fmap1.shape[3])
        return _resize_flow(flow, size_dw4, -size_dw4[0] / flow.shape[2])

    def _offset_stage(
        self,
        fmap1: torch.Tensor,
        fmap2: torch.Tensor,
        offset: torch.Tensor,
        net: torch.Tensor,
        inp: torch.Tensor,
        flow: torch.Tensor,
        steps: int,
    ) -> torch.Tensor:
        """``steps`` updates of ``flow`` at one coarse level (correlation at learned offsets); returns it
        convex-upsampled by 4 (internal sign)."""
        for step in range(steps):
            corr = offset_correlation(fmap1, fmap2, flow, offset, small_patch=step % 2 == 1)
            net, delta = self.update_block(net, inp, corr, flow)
            flow = flow + delta
        return convex_upsample(flow, self.update_block.upsample_mask(net), rate=4)


def _check_inputs(left: torch.Tensor, right: torch.Tensor, iters: int, flow_init: torch.Tensor | None) -> None:
    """Checks at the public boundary (static shapes and Python ints: they trace to nothing in an export)."""
    check_stereo_batch("CREStereo", left, right, SIZE_DIVISOR)
    height, width = int(left.shape[-2]), int(left.shape[-1])
    if height < MIN_SIZE_PX or width < MIN_SIZE_PX:
        raise InputError(
            f"CREStereo expects H and W of at least {MIN_SIZE_PX} (2 pixels at 1/16, where it interpolates), "
            f"got {height}x{width}; pad the images"
        )
    minimum = 1 if flow_init is not None else 2
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < minimum:
        raise InputError(
            f"CREStereo iters must be a whole number >= {minimum} "
            f"({'with' if flow_init is not None else 'without'} flow_init), got {iters!r}"
        )
    if flow_init is not None and (
        flow_init.dim() != 4 or flow_init.shape[0] != left.shape[0] or flow_init.shape[1] != 2
    ):
        raise InputError(
            f"CREStereo flow_init must be (N, 2, h, w) with N = {left.shape[0]}, got {tuple(flow_init.shape)}"
        )


class CREStereoPredictor(nn.Module):
    """The registry's view of CREStereo: ``forward(left, right)`` -> disparity ``(N, H, W)``.

    It takes RGB, as every rtstereo network does, and hands :attr:`net` the BGR order that the released
    weights were trained on and that the original code feeds (:func:`rgb_to_bgr`).

    Args:
        iters: refinement steps per pass.
        two_pass: first run the network on the pair resized by 0.5 (bilinear, align_corners=True),
            then initialise the full-size pass with that flow.

    The core network is :attr:`net` (BGR in); an exporter can export the two passes as separate models
    taking RGB: :meth:`first_pass` on the half-size pair and :meth:`refine_pass` with its ``flow_init``.

    Examples:
        >>> model = CREStereoPredictor(iters=2, two_pass=True).eval()
        >>> with torch.no_grad():
        ...     model(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 64, 64])
    """

    def __init__(self, iters: int = DEFAULT_ITERS, two_pass: bool = False) -> None:
        super().__init__()
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 2:
            raise InputError(f"CREStereo setting 'iters' must be a whole number >= 2, got {iters!r}")
        self.net = CREStereo()
        self.iters = iters
        self.two_pass = bool(two_pass)

    @property
    def architecture(self) -> str:
        """Registry name: ``crestereo``."""
        return ARCHITECTURE

    @property
    def settings(self) -> dict[str, Any]:
        """The builder settings that recreate this module (stored in rtstereo checkpoints)."""
        return {"iters": self.iters, "two_pass": self.two_pass}

    @property
    def size_divisor(self) -> int:
        """Input ``H`` and ``W`` must be multiples of this: 32 in two-pass mode, else 16 (and at least
        :attr:`min_size_px`)."""
        return TWO_PASS_SIZE_DIVISOR if self.two_pass else SIZE_DIVISOR

    @property
    def min_size_px(self) -> int:
        """Input ``H`` and ``W`` must be at least this: 64 in two-pass mode, else 32."""
        return 2 * MIN_SIZE_PX if self.two_pass else MIN_SIZE_PX

    def first_pass(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """The flow ``(N, 2, H, W)`` of one pass without initialisation (RGB ``0..255`` in)."""
        return self.net(rgb_to_bgr(left), rgb_to_bgr(right), self.iters)

    def refine_pass(self, left: torch.Tensor, right: torch.Tensor, flow_init: torch.Tensor) -> torch.Tensor:
        """The flow ``(N, 2, H, W)`` of a pass initialised by ``flow_init`` (RGB ``0..255`` in)."""
        return self.net(rgb_to_bgr(left), rgb_to_bgr(right), self.iters, flow_init=flow_init)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Disparity of the left image.

        Args:
            left, right: ``(N, 3, H, W)`` float RGB in ``0..255``; ``H``, ``W`` multiples of
                :attr:`size_divisor`.

        Returns:
            ``(N, H, W)`` disparity, pixels (positive).
        """
        if not self.two_pass:
            return self.first_pass(left, right)[:, 0]
        height, width = int(left.shape[-2]), int(left.shape[-1])
        divisor, minimum = TWO_PASS_SIZE_DIVISOR, 2 * MIN_SIZE_PX
        if left.dim() != 4 or height % divisor or width % divisor or min(height, width) < minimum:
            raise InputError(
                f"CREStereo in two-pass mode expects (N, 3, H, W) with H and W multiples of {divisor} "
                f"and at least {minimum}, got shape {tuple(left.shape)}; pad the images"
            )
        half = (height // 2, width // 2)
        left_half = F.interpolate(left, size=half, mode="bilinear", align_corners=True)
        right_half = F.interpolate(right, size=half, mode="bilinear", align_corners=True)
        flow_init = self.first_pass(left_half, right_half)
        return self.refine_pass(left, right, flow_init)[:, 0]


def build_crestereo(settings: Mapping[str, Any]) -> CREStereoPredictor:
    """Registry builder: settings ``iters`` (int, default 20) and ``two_pass`` (bool, default false)."""
    return CREStereoPredictor(
        iters=settings.get("iters", DEFAULT_ITERS), two_pass=bool(settings.get("two_pass", False))
    )


def load_crestereo_checkpoint(module: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load CREStereo weights: the PyTorch port's bare state dict, or an rtstereo checkpoint.

    Args:
        module: a :class:`CREStereoPredictor` (weights go into its ``net``) or a :class:`CREStereo`.
        path: the weights file.

    Returns:
        Metadata: ``format`` (``"crestereo-pytorch"`` or ``"rtstereo"``), ``architecture``, and for
        rtstereo files the stored ``settings``.

    Raises:
        CheckpointError: the file is missing, damaged, not a checkpoint, or of another network.
    """
    core = module.net if isinstance(module, CREStereoPredictor) else module
    if not isinstance(core, CREStereo):
        raise CheckpointError(f"load_crestereo_checkpoint needs a CREStereo module, got {type(module).__name__}")
    obj, described = read_checkpoint_of(path, ARCHITECTURE)
    state_dict = find_state_dict(obj, path, ("state_dict", "model"))
    # rtstereo checkpoints of the predictor hold "net."-prefixed keys; DataParallel adds "module.",
    # torch.compile "_orig_mod.".
    state_dict = strip_prefix(strip_prefix(state_dict), "net.")
    # iters and two_pass change no weight: a mismatch is another file, never another setting
    load_into(core, state_dict, path, "CREStereo", expected="the state dict of the CREStereo PyTorch port")

    metadata: dict[str, Any] = {
        "format": "rtstereo" if described else "crestereo-pytorch",
        "architecture": ARCHITECTURE,
    }
    if described is not None:
        metadata["settings"] = described[1]
    return metadata
