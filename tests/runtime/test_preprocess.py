"""Pre-processing against hand-computed values: the torch path is held to this one, so it needs its own anchor."""

from __future__ import annotations

import numpy as np
import pytest

from rtstereo.errors import InputError
from rtstereo.runtime.preprocess import normalize, pad_to_divisor

RGB = np.array([[[255, 0, 128]]], np.uint8)  # one pixel: red full, green none, blue half


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), red first
        ("imagenet", [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]),
        ("unit", [1.0, 0.0, 128 / 255]),
        ("raw255", [255.0, 0.0, 128.0]),
    ],
)
def test_normalize_gives_the_hand_computed_values_in_rgb_order(mode, expected):
    out = normalize(RGB, mode)
    assert out.dtype == np.float32 and out.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(out[0, :, 0, 0], expected, rtol=1e-6)


def test_an_unknown_normalization_is_refused():
    with pytest.raises(InputError, match="unknown normalization 'zscore'"):
        normalize(RGB, "zscore")


def test_padding_replicates_the_last_row_and_column():
    batch = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    padded, pad = pad_to_divisor(batch, 4)
    assert pad == (2, 1)
    assert padded[0, 0].tolist() == [[0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5], [3, 4, 5, 5]]


@pytest.mark.parametrize("mode", ["imagenet", "unit"])
def test_normalize_gives_the_same_bits_on_any_number_of_opencv_threads(mode):
    # cv2.addWeighted rounded the pixels its vector code left over otherwise, and which were left over
    # depended on the thread count: a network's map moved by up to 0.06 px between --threads 1 and 2
    import cv2

    image = np.random.default_rng(0).integers(0, 256, (383, 434, 3), dtype=np.uint8)
    # each level rounded once from float64, with the float32 mean and std the module holds
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    scale, offset = (1.0 / (255.0 * std), -mean / std) if mode == "imagenet" else (np.full(3, 1 / 255), np.zeros(3))
    expected = (image.astype(np.float64) * scale + offset).astype(np.float32).transpose(2, 0, 1)[None]
    threads = cv2.getNumThreads()
    try:
        for count in (1, 2, 3):
            cv2.setNumThreads(count)
            np.testing.assert_array_equal(normalize(image, mode), expected, err_msg=f"{count} OpenCV threads")
    finally:
        cv2.setNumThreads(threads)
