"""``rtstereo.compare`` from Python: the arrays it takes, and one line for those it does not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rtstereo.compare import compare_disparities, compare_images
from rtstereo.errors import InputError


def _photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["grey", "grey (H, W, 1)", "RGBA"])
def test_compare_images_takes_grey_and_rgba_as_it_takes_rgb(layout):
    """A grey (H, W) image raised OpenCV's "Bad number of channels" error, not rtstereo's."""
    photo = _photo()
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    other = {
        "grey": grey,
        "grey (H, W, 1)": grey[:, :, None],
        "RGBA": np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]),
    }[layout]
    for a, b in ((photo, other), (other, photo)):
        result = compare_images(a, b)
        assert result.score < 1e-4 and result.metrics["mean_abs_diff"] < 0.5  # grey levels rounded to 8 bits


def test_compare_images_and_disparities_refuse_arrays_of_another_layout_in_one_line():
    with pytest.raises(InputError, match=r"^the second: expected an image \(H, W\), \(H, W, 3\) or \(H, W, 4\), got "):
        compare_images(_photo(), np.zeros((20, 30, 2), np.uint8))
    with pytest.raises(InputError, match=r"^the first map: expected a disparity map \(H, W\), got shape \(20, 30, 1\)"):
        compare_disparities(np.ones((20, 30, 1), np.float32), np.ones((20, 30), np.float32))
