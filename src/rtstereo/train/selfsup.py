"""Self-supervised stereo losses: what a network can learn from a user's pairs without ground truth.

- **Photometric reconstruction**: the right image, sampled at ``x - d`` along each row, should look
  like the left one. The error is ``0.85 * (1 - SSIM) / 2 + 0.15 * |L1|`` (Godard et al., CVPR 2017),
  computed after normalising the left image and the sampled right one, channel by channel, to zero mean
  and unit standard deviation over the pixels whose match is inside the right image (and in the mask):
  the two cameras of a real rig rarely share gain, offset and white balance, and a global affine change
  of brightness then costs nothing. Both are normalised over the same scene points, so at the true
  disparity their statistics agree (the whole views would not: each holds a band and occluded areas
  that the other lacks). SSIM compares the normalised images at a photograph's level and spread
  (mean 0.5, standard deviation 0.25): its luminance term is a ratio of local means, which on zero-mean
  images changes sign wherever they pass through 0.
- **Edge-aware smoothness**: horizontal and vertical disparity gradients weighted by
  ``exp(-|image gradient|)``, on the disparity divided by its image mean (otherwise shrinking every
  disparity would lower the loss). It is a prior, not a measure: the true disparity does not minimise it.
- **Left-right consistency**: the left view's disparity should equal the right view's disparity read
  at the match ``x - d``. rtnet predicts the left view only; :func:`right_view_disparity` gets the
  right view's by running the network on the mirrored, swapped pair.
- **Proxy labels**: SGBM's disparity where its left-right check and uniqueness test keep it
  (:func:`rtstereo.train.proxy.proxy_disparity`), learned with smooth-L1 like ground truth
  (:func:`proxy_loss`).

Every function takes whole batches: images ``(N, C, H, W)`` float in 0..1, disparities ``(N, H, W)``
in pixels of the left image, positive (``x_left - x_right``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import InputError

SSIM_WEIGHT = 0.85  # of the photometric error; the rest is L1 (Godard et al.'s weights)
_SSIM_C1 = 0.01**2  # SSIM's stabilising constants for a unit dynamic range (images in about 0..1)
_SSIM_C2 = 0.03**2
# Normalised images are seen by SSIM at this mean and standard deviation: in about 0..1, as its
# constants assume, and away from 0, where its luminance term (2 ab + C1) / (a^2 + b^2 + C1) breaks down.
_SSIM_LEVEL, _SSIM_SPREAD = 0.5, 0.25
_NORM_EPS = 1e-3
# The variance's floor under its square root: sqrt's gradient at 0 is infinite, so a uniform image (a grey or black
# frame, whose variance is 0) gave a finite loss and NaN gradients. (1e-6)^2: 1000 times below _NORM_EPS.
_VARIANCE_FLOOR = 1e-12


def _check_images(left: torch.Tensor, right: torch.Tensor) -> None:
    if left.dim() != 4 or left.shape != right.shape:
        raise InputError(
            f"expected left and right images of one shape (N, C, H, W), got {tuple(left.shape)} and "
            f"{tuple(right.shape)}"
        )


def _check_disparity(disparity_px: torch.Tensor, image: torch.Tensor, name: str = "disparity") -> None:
    expected = (image.shape[0], *image.shape[2:])
    if tuple(disparity_px.shape) != expected:
        raise InputError(f"{name}: expected shape (N, H, W) = {expected}, got {tuple(disparity_px.shape)}")


def _check_mask(mask: torch.Tensor | None, image: torch.Tensor) -> None:
    expected = (image.shape[0], *image.shape[2:])
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != expected):
        raise InputError(f"mask: expected a bool tensor of shape {expected}, got {mask.dtype} {tuple(mask.shape)}")


def warp_right_to_left(right: torch.Tensor, disparity_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The right image seen from the left view: ``right[y, x - d(y, x)]``, linearly interpolated.

    Args:
        right: ``(N, C, H, W)`` image (or any per-pixel quantity of the right view).
        disparity_px: ``(N, H, W)`` left-view disparity, pixels.

    Returns:
        ``(warped, inside)``: ``(N, C, H, W)`` and bool ``(N, H, W)``, where ``inside`` marks the
        pixels whose match falls inside the right image.

    Examples:
        >>> right = torch.arange(4.0).view(1, 1, 1, 4)
        >>> warped, inside = warp_right_to_left(right, torch.ones(1, 1, 4))
        >>> warped[0, 0, 0, 1:].tolist(), inside.tolist()
        ([0.0, 1.0, 2.0], [[[False, True, True, True]]])
    """
    if right.dim() != 4:
        raise InputError(f"right: expected (N, C, H, W), got {tuple(right.shape)}")
    _check_disparity(disparity_px, right)
    n, _, h, w = right.shape
    cols = torch.arange(w, device=right.device, dtype=disparity_px.dtype).view(1, 1, w)
    rows = torch.arange(h, device=right.device, dtype=disparity_px.dtype).view(1, h, 1).expand(n, h, w)
    source_x = cols - disparity_px
    # align_corners=True: -1 and 1 are the centres of the first and last pixels, so x maps exactly.
    grid = torch.stack([2.0 * source_x / max(w - 1, 1) - 1.0, 2.0 * rows / max(h - 1, 1) - 1.0], dim=-1)
    warped = F.grid_sample(right, grid.to(right.dtype), mode="bilinear", padding_mode="border", align_corners=True)
    inside = (source_x >= 0) & (source_x <= w - 1)
    return warped, inside


OCCLUSION_TOLERANCE_PX = 0.5  # px: how far a nearer point must reach past a pixel's match to hide it


def visible_in_right(disparity_px: torch.Tensor, tolerance_px: float = OCCLUSION_TOLERANCE_PX) -> torch.Tensor:
    """Left pixels that the right camera sees, by the disparity itself (bool ``(N, H, W)``).

    A left pixel ``x`` lands at ``x - d(x)`` in the right view. A point further right in the left
    view, ``x' > x``, that lands at or left of it is nearer (its disparity is larger) and hides it. So
    a pixel is occluded where the smallest landing position of the pixels to its right is more than
    ``tolerance_px`` left of its own: one reverse running minimum per row, no loop. Their photometric
    error measures nothing (the true match is hidden), so the loss leaves them out. The map carries no
    gradient.

    Args:
        disparity_px: ``(N, H, W)`` left-view disparity, pixels.
        tolerance_px: slack for noise in the disparity (a wobble below it hides nothing).

    Examples:
        >>> d = torch.tensor([[[1.0, 1.0, 1.0, 4.0, 4.0, 4.0]]])  # a near surface from x = 3
        >>> visible_in_right(d).tolist()  # x = 1, 2 land where x = 3..5 land (at -1..1): hidden
        [[[True, False, False, True, True, True]]]
    """
    if disparity_px.dim() != 3:
        raise InputError(f"disparity: expected (N, H, W), got {tuple(disparity_px.shape)}")
    d = disparity_px.detach().float()
    landing = torch.arange(d.shape[-1], device=d.device, dtype=d.dtype) - d
    # Smallest landing position over x' > x: running minimum from the right, shifted by one pixel.
    from_right = landing.flip(-1).cummin(dim=-1).values.flip(-1)
    beyond = F.pad(from_right[..., 1:], (0, 1), value=float("inf"))
    return beyond >= landing - tolerance_px


def normalize_exposure(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Each image and channel to zero mean and unit standard deviation over its pixels (or ``mask``'s).

    Args:
        image: ``(N, C, H, W)``.
        mask: optional bool ``(N, H, W)``: the pixels whose statistics count (all of the image is
            normalised; an image with no such pixel is only divided by a small constant).

    Examples:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> bool(torch.allclose(normalize_exposure(x), normalize_exposure(0.5 * x + 0.2), atol=1e-2))
        True
    """
    if mask is None:
        mean = image.mean(dim=(2, 3), keepdim=True)
        variance = image.var(dim=(2, 3), keepdim=True)
    else:
        weight = mask[:, None].to(image.dtype)
        count = weight.sum(dim=(2, 3), keepdim=True)
        mean = (image * weight).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
        variance = ((image - mean) * weight).square().sum(dim=(2, 3), keepdim=True) / (count - 1).clamp(min=1)
    std = variance.clamp(min=_VARIANCE_FLOOR).sqrt()
    return (image - mean) / (std + _NORM_EPS)


def ssim_dissimilarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(1 - SSIM) / 2`` over 3x3 windows, averaged over channels: ``(N, H, W)`` in 0..1."""
    a, b = (F.pad(x, (1, 1, 1, 1), mode="reflect") for x in (a, b))
    mu_a, mu_b = F.avg_pool2d(a, 3, 1), F.avg_pool2d(b, 3, 1)
    var_a = F.avg_pool2d(a * a, 3, 1) - mu_a**2
    var_b = F.avg_pool2d(b * b, 3, 1) - mu_b**2
    cov = F.avg_pool2d(a * b, 3, 1) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    )
    return ((1.0 - ssim) / 2.0).clamp(0.0, 1.0).mean(dim=1)


def photometric_error(
    left: torch.Tensor,
    right: torch.Tensor,
    disparity_px: torch.Tensor,
    ssim_weight: float = SSIM_WEIGHT,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel photometric error of reconstructing the left image from the right one.

    Args:
        left, right: ``(N, C, H, W)`` images (any brightness scale: each is normalised, see the module notes).
        disparity_px: ``(N, H, W)`` left-view disparity, pixels.
        ssim_weight: weight of the SSIM term; ``1 - ssim_weight`` goes to L1.
        mask: optional bool ``(N, H, W)``: with the pixels whose match is inside the right image, those
            whose statistics normalise the two images (e.g. not occluded).

    Returns:
        ``(error, inside)``: float ``(N, H, W)`` and bool ``(N, H, W)`` (match inside the right image).
    """
    _check_images(left, right)
    _check_mask(mask, left)
    if not 0.0 <= ssim_weight <= 1.0:
        raise InputError(f"ssim_weight must lie in 0..1, got {ssim_weight}")
    # Sampling is linear, so normalising the sampled right image equals sampling the normalised one;
    # only the pixels the statistics come from differ: the scene points both views show.
    warped, inside = warp_right_to_left(right.float(), disparity_px.float())
    shared = inside if mask is None else inside & mask
    left_n, warped_n = normalize_exposure(left.float(), shared), normalize_exposure(warped, shared)
    l1 = (left_n - warped_n).abs().mean(dim=1)
    ssim = ssim_dissimilarity(*(_SSIM_LEVEL + _SSIM_SPREAD * x for x in (left_n, warped_n)))
    error = ssim_weight * ssim + (1.0 - ssim_weight) * l1
    return error, inside


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds; 0 with a gradient when no pixel does."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def photometric_loss(
    left: torch.Tensor,
    right: torch.Tensor,
    disparity_px: torch.Tensor,
    mask: torch.Tensor | None = None,
    ssim_weight: float = SSIM_WEIGHT,
) -> torch.Tensor:
    """Mean photometric error over the pixels whose match is inside the right image (and ``mask``).

    Args:
        left, right: ``(N, C, H, W)`` images.
        disparity_px: ``(N, H, W)`` left-view disparity, pixels.
        mask: optional bool ``(N, H, W)``: the pixels to count (e.g. not occluded), and whose statistics
            normalise the images.
        ssim_weight: see :func:`photometric_error`.

    Returns:
        Scalar.
    """
    _check_images(left, right)
    _check_disparity(disparity_px, left)
    _check_mask(mask, left)
    error, inside = photometric_error(left, right, disparity_px, ssim_weight, mask)
    keep = inside if mask is None else inside & mask
    return _masked_mean(error, keep)


def smoothness_loss(disparity_px: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of the mean-normalised disparity.

    Args:
        disparity_px: ``(N, H, W)`` disparity, pixels.
        image: ``(N, C, H, W)`` the view it belongs to (its gradients relax the penalty at edges).

    Returns:
        Scalar; 0 for a disparity constant over each image.

    Examples:
        >>> float(smoothness_loss(torch.full((1, 4, 4), 3.0), torch.rand(1, 3, 4, 4)))
        0.0
    """
    if image.dim() != 4:
        raise InputError(f"image: expected (N, C, H, W), got {tuple(image.shape)}")
    _check_disparity(disparity_px, image)
    d = disparity_px.float()
    d = d / d.mean(dim=(1, 2), keepdim=True).abs().clamp(min=1e-3)
    image = image.float()
    weight_x = torch.exp(-(image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=1))
    weight_y = torch.exp(-(image[..., 1:, :] - image[..., :-1, :]).abs().mean(dim=1))
    grad_x = (d[..., :, 1:] - d[..., :, :-1]).abs()
    grad_y = (d[..., 1:, :] - d[..., :-1, :]).abs()
    return (grad_x * weight_x).mean() + (grad_y * weight_y).mean()


def consistency_error(
    left_disparity_px: torch.Tensor, right_disparity_px: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``|d_left(x) - d_right(x - d_left(x))|`` per pixel, and where the match is inside the image.

    Args:
        left_disparity_px: ``(N, H, W)`` disparity of the left view, pixels.
        right_disparity_px: ``(N, H, W)`` disparity of the right view (``x_left - x_right`` at the right
            view's pixel, positive), pixels.

    Returns:
        ``(error_px, inside)``: float and bool ``(N, H, W)``.
    """
    if left_disparity_px.dim() != 3 or left_disparity_px.shape != right_disparity_px.shape:
        raise InputError(
            "left and right disparities: expected one shape (N, H, W), got "
            f"{tuple(left_disparity_px.shape)} and {tuple(right_disparity_px.shape)}"
        )
    back, inside = warp_right_to_left(right_disparity_px.unsqueeze(1).float(), left_disparity_px.float())
    return (left_disparity_px.float() - back.squeeze(1)).abs(), inside


def consistency_loss(
    left_disparity_px: torch.Tensor, right_disparity_px: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean left-right disagreement (pixels) where the match is inside the right image (and ``mask``).

    Examples:
        >>> d = torch.full((1, 2, 6), 2.0)
        >>> float(consistency_loss(d, d)), float(consistency_loss(d + 1.0, d))
        (0.0, 1.0)
    """
    error, inside = consistency_error(left_disparity_px, right_disparity_px)
    if mask is not None and (mask.dtype != torch.bool or mask.shape != error.shape):
        raise InputError(
            f"mask: expected a bool tensor of shape {tuple(error.shape)}, got {mask.dtype} {tuple(mask.shape)}"
        )
    keep = inside if mask is None else inside & mask
    return _masked_mean(error, keep)


def right_view_disparity(
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], left: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """The right view's disparity from a network that predicts the left view's only.

    Mirrored, the right image becomes a left one (its points lie further right than in the mirrored
    left image), so the network's left-view disparity of ``(mirror(right), mirror(left))``, mirrored
    back, is the right view's.

    Args:
        predict: ``predict(left, right) -> (N, H, W)`` disparity of the left view, pixels.
        left, right: ``(N, C, H, W)`` as ``predict`` takes them.

    Returns:
        ``(N, H, W)`` right-view disparity, pixels, positive.
    """
    _check_images(left, right)
    return predict(right.flip(-1), left.flip(-1)).flip(-1)


def proxy_loss(disparity_px: torch.Tensor, proxy_px: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 against proxy labels on the pixels that have one (finite and > 0).

    Args:
        disparity_px: ``(N, H, W)`` prediction, pixels.
        proxy_px: ``(N, H, W)`` proxy disparity (from :func:`rtstereo.train.proxy.proxy_disparity`);
            ``nan`` or 0 where there is no label.

    Returns:
        Scalar (0 with a gradient when no pixel is labelled).

    Examples:
        >>> labels = torch.tensor([[[2.0, float("nan")]]])
        >>> float(proxy_loss(torch.tensor([[[2.0, 9.0]]]), labels))
        0.0
    """
    if disparity_px.shape != proxy_px.shape or disparity_px.dim() != 3:
        raise InputError(
            f"prediction {tuple(disparity_px.shape)} and proxy labels {tuple(proxy_px.shape)}: expected one "
            "shape (N, H, W)"
        )
    labelled = torch.isfinite(proxy_px) & (proxy_px > 0)
    target = torch.where(labelled, proxy_px, torch.zeros_like(proxy_px))
    error = F.smooth_l1_loss(disparity_px.float(), target.float(), reduction="none")
    return _masked_mean(error, labelled)
