"""Cost-volume building blocks shared by the networks: all disparities in a fixed number of operations.

A GPU pays a launch for every tensor operation, so a volume built by a Python loop over disparities
costs operations in proportion to ``max_disp``. The functions here build every disparity level at
once (an index gather along the row, or one batched matrix product), so the number of operations does
not depend on the disparity range. They trace to plain ONNX (``Pad``, ``Gather``, ``Concat``,
``MatMul``, ``Slice``, ``Reshape``), with sizes taken from the traced width, so dynamic-size exports
keep working.

Convention: level ``d`` at column ``x`` pairs left ``x`` with right ``x - d``; where ``x - d < 0``
the right image has no pixel and zeros stand in for it.
"""

from __future__ import annotations

from ..errors import torch_missing

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)


def shifted_right(right: torch.Tensor, num_disp: int) -> torch.Tensor:
    """Every disparity shift of the right features, gathered in one operation.

    Args:
        right: features ``(N, C, H, W)``.
        num_disp: disparity levels ``D`` (shifts ``0 .. D - 1`` columns).

    Returns:
        ``(N, C, H, D, W)`` with ``[..., d, x] = right[..., x - d]``, and 0 where ``x < d``.

    Examples:
        >>> row = torch.tensor([[[[1.0, 2.0, 3.0]]]])
        >>> shifted_right(row, 2)[0, 0, 0].tolist()
        [[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]]
    """
    n, c, h, w = right.shape
    padded = F.pad(right, (num_disp - 1, 0))  # zero columns stand in for "outside the image"
    columns = torch.arange(w, device=right.device).view(1, w)
    levels = torch.arange(num_disp, device=right.device).view(num_disp, 1)
    index = (columns - levels + (num_disp - 1)).reshape(-1)  # (D * W,), level-major
    return padded.index_select(3, index).view(n, c, h, num_disp, w)


def matched_columns(width: int, num_disp: int, like: torch.Tensor) -> torch.Tensor:
    """``(D, W)`` mask in ``like``'s dtype: 1 where column ``x`` has a match at level ``d`` (``x >= d``)."""
    columns = torch.arange(width, device=like.device).view(1, width)
    levels = torch.arange(num_disp, device=like.device).view(num_disp, 1)
    return (columns >= levels).to(like.dtype)


def banded_correlation(left: torch.Tensor, right: torch.Tensor, num_disp: int, num_groups: int) -> torch.Tensor:
    """Group-wise correlation at every disparity as one batched matrix product.

    Each row is cut into blocks of ``B = D`` left columns; block ``k`` needs the right columns
    ``kB - (D - 1) .. kB + B - 1``, a window of ``B + D - 1``. One ``matmul`` per (image, group, row,
    block) gives every left-right pair of the block, and the band ``x' = x - d`` is then read as a
    strided view of that product (no gather). Compared with one product per disparity this does about
    twice the multiply-adds, in a GEMM, and holds about twice the output in memory; it never
    materialises the ``(N, C, D, H, W)`` channel products.

    Args:
        left, right: features ``(N, C, H, W)``; ``C`` divisible by ``num_groups``.
        num_disp: disparity levels ``D``.
        num_groups: channel groups ``G``; the correlation is the mean of the channel products
            within each group.

    Returns:
        ``(N, G, D, H, W)``, contiguous when ``W`` is a multiple of ``D``; entry ``d`` at column ``x``
        correlates left ``x`` with right ``x - d`` and is 0 for ``x < d``.

    Examples:
        >>> left = torch.tensor([[[[1.0, 2.0, 3.0]]]])
        >>> banded_correlation(left, left, 2, 1)[0, 0, :, 0].tolist()
        [[1.0, 4.0, 9.0], [0.0, 2.0, 6.0]]
    """
    n, c, h, w = left.shape
    per_group = c // num_groups
    block = num_disp
    blocks = (w + block - 1) // block
    tail = blocks * block - w  # the last block is padded with zero columns, cut off at the end
    window = block + num_disp - 1

    # Left blocks (N, G, H, blocks, B, C/G); the 1/(C/G) of the mean is applied on this smaller tensor.
    left_blocks = F.pad(left * (1.0 / per_group), (0, tail))
    left_blocks = left_blocks.view(n, num_groups, per_group, h, blocks, block).permute(0, 1, 3, 4, 5, 2)

    # Right windows: block k of the padded row followed by the first D - 1 columns of block k + 1
    # (one Concat, no gather), then reversed so that the band below is a forward-strided view.
    padded = F.pad(right, (num_disp - 1, tail + block - num_disp + 1)).view(n, c, h, blocks + 1, block)
    windows = torch.cat((padded[..., :-1, :], padded[..., 1:, : num_disp - 1]), dim=4).flip(4)
    windows = windows.view(n, num_groups, per_group, h, blocks, window).permute(0, 1, 3, 4, 2, 5)

    pairs = torch.matmul(left_blocks, windows)  # (N, G, H, blocks, B, window), columns reversed
    # Left column i of a block meets right column x - d at reversed window position B - 1 - i + d,
    # flat offset i * (window - 1) + (B - 1) + d: rows of window - 1 starting at B - 1.
    skewed = pairs.reshape(n, num_groups, h, blocks, block * window)[..., block - 1 : block - 1 + block * (window - 1)]
    band = skewed.view(n, num_groups, h, blocks, block, window - 1)[..., :num_disp]
    # One copy into the layout the 3D convolutions read, then the padded tail columns cut off.
    volume = band.permute(0, 1, 5, 2, 3, 4).reshape(n, num_groups, num_disp, h, blocks * block)
    return volume[..., :w]
