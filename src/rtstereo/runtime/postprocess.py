"""Post-processing of a predicted disparity map, applied by the :class:`~.predictor.Predictor`.

Pure numpy: the ONNX Runtime path uses it without torch.

The left border band. A left-view pixel at column ``x`` with disparity ``d`` is seen by the right
camera at ``x - d``; where that falls left of the right image there is nothing to match, and a network
can only guess (rtnet guesses low: it under-reads that band by a few pixels). Classical matchers leave
the band invalid and fill it from the first matched pixel of the row (OpenCV's SGBM marks the first
``numDisparities`` columns invalid, and :func:`~rtstereo.models.sgbm.fill_holes_rowwise` fills them).
:func:`fill_left_border` does the same for a network: each row's band takes the disparity of the row's
first pixel whose match lies at least ``margin_px`` inside the right image.

The margin (8 px) was chosen on generated scenes (two fixed sets of 24 and 48 pairs, 256x512), before
measuring on real data; see ``training/default/README.md``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

BORDER_MARGIN_PX = 8.0
# The setting that turns the fill on or off for any model (``--set fill_left_border=false``); it is
# applied by the predictor, never baked into a model or an export.
FILL_LEFT_BORDER = "fill_left_border"
# The same for the edge refinement (:func:`rtstereo.runtime.refine.refine_edges`).
REFINE_EDGES = "refine_edges"
POSTPROCESS_SETTINGS = (FILL_LEFT_BORDER, REFINE_EDGES)


def fill_left_border(disparity_px: np.ndarray, margin_px: float = BORDER_MARGIN_PX) -> np.ndarray:
    """Give each row's unmatched left band the disparity of the row's first matched pixel.

    Args:
        disparity_px: float ``(H, W)`` disparity of the left view, ``nan`` where invalid.
        margin_px: a pixel counts as matched when ``x - d >= margin_px`` (its match lies that far
            inside the right image); the pixels left of a row's first such pixel are filled.

    Returns:
        A float32 copy; rows without a matched pixel are unchanged.

    Examples:
        >>> row = np.array([[1.0, 1.0, 2.0, np.nan, 4.0, 2.0, 2.0]], np.float32)
        >>> fill_left_border(row, margin_px=2).tolist()
        [[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]]
        >>> fill_left_border(np.full((1, 3), 9.0, np.float32)).tolist()  # nothing matched: unchanged
        [[9.0, 9.0, 9.0]]
    """
    d = np.asarray(disparity_px, dtype=np.float32)
    if d.ndim != 2:
        raise InputError(f"disparity must be (H, W), got shape {d.shape}")
    height, width = d.shape
    cols = np.arange(width, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        matched = cols[None, :] - d >= margin_px  # nan compares False: never a match
    rows = np.arange(height)
    first = matched.argmax(axis=1)
    first = np.where(matched[rows, first], first, 0)  # 0: no match in the row, nothing to fill
    out = d.copy()
    limit = int(first.max(initial=0))
    if limit:
        band = cols[None, :limit] < first[:, None]
        out[:, :limit] = np.where(band, d[rows, first][:, None], d[:, :limit])
    return out
