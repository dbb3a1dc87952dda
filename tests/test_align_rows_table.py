"""benchmarks/align_rows_table.py: how it moves the right view (the table's runs need the selection set
and are too slow for tests)."""

from __future__ import annotations

import numpy as np

from .conftest import benchmark_script


def test_the_right_view_moves_down_by_the_shift_and_the_gap_repeats_the_top_row():
    shifted_down = benchmark_script("align_rows_table").shifted_down
    image = np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8)
    assert shifted_down(image, 0.0) is image
    one = shifted_down(image, 1.0)
    assert np.array_equal(one[1:], image[:-1]) and np.array_equal(one[0], image[0])
    half = shifted_down(image.astype(np.float32), 0.5)
    assert np.allclose(half[1:], (image[1:].astype(np.float32) + image[:-1]) / 2, atol=1e-3)
