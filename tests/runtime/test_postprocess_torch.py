"""Post-processing in torch (for the GPU) equals the numpy/OpenCV one, and the predictor uses it.

Run on the CPU: the torch functions are the same code on CUDA. Tolerance 1e-3 px, ``nan`` at the
same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtstereo import confidence  # noqa: E402
from rtstereo.errors import InputError  # noqa: E402
from rtstereo.models.registry import ModelSpec  # noqa: E402
from rtstereo.models.sgbm import fill_holes_rowwise  # noqa: E402
from rtstereo.runtime import postprocess, postprocess_torch, refine  # noqa: E402
from rtstereo.runtime.backends import TorchBackend  # noqa: E402
from rtstereo.runtime.predictor import Predictor  # noqa: E402
from rtstereo.types import StereoPair  # noqa: E402

TOLERANCE_PX = 1e-3
BACKGROUND_PX, FOREGROUND_PX = 10, 25


def _assert_same_map(expected: np.ndarray, actual) -> None:
    actual = actual.cpu().numpy() if hasattr(actual, "cpu") else np.asarray(actual)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    finite = np.isfinite(expected)
    if finite.any():
        assert np.abs(actual[finite] - expected[finite]).max() <= TOLERANCE_PX


@pytest.fixture(scope="module")
def scene():
    """A textured pair (background 10 px, a 25 px box) and a noisy disparity with holes."""
    rng = np.random.default_rng(0)
    height, width = 60, 96
    texture = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 40, 3)).astype(np.uint8), (3, 3), 0)
    left = np.ascontiguousarray(texture[:, 20 : 20 + width])
    right = np.ascontiguousarray(texture[:, 20 - BACKGROUND_PX : 20 - BACKGROUND_PX + width])
    disparity = BACKGROUND_PX + rng.normal(0, 1.5, (height, width)).astype(np.float32)
    disparity[20:40, 30:60] = FOREGROUND_PX + rng.normal(0, 1, (20, 30)).astype(np.float32)
    disparity[rng.random((height, width)) < 0.03] = np.nan
    disparity[:, :3] = np.nan
    return left, right, disparity


def _tensors(*arrays):
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)


# --- feature: each step equals its numpy counterpart --------------------------------------------------


def test_fill_left_border_matches_numpy(scene):
    _, _, disparity = scene
    (d,) = _tensors(disparity)
    _assert_same_map(postprocess.fill_left_border(disparity), postprocess_torch.fill_left_border(d))
    unmatched = np.full((2, 5), 9.0, np.float32)  # no pixel matches: unchanged
    _assert_same_map(unmatched, postprocess_torch.fill_left_border(torch.from_numpy(unmatched)))
    at_margin = np.array([[7, 7, 7, 7, 7, 7, 7, 5, 4, 4]], np.float32)  # x - d = 2 first at x = 7: matched
    _assert_same_map(
        postprocess.fill_left_border(at_margin, 2), postprocess_torch.fill_left_border(torch.from_numpy(at_margin), 2)
    )


def test_photometric_cost_matches_opencv_exactly(scene):
    left, right, disparity = scene
    numpy_cost = refine.PhotometricCost(left, right)
    torch_cost = postprocess_torch.TorchPhotometricCost(*_tensors(left, right))
    np.testing.assert_array_equal(torch_cost.left.numpy(), numpy_cost.left.astype(np.float32))
    np.testing.assert_array_equal(torch_cost(torch.from_numpy(disparity)).numpy(), numpy_cost(disparity))


def test_each_refinement_step_matches_numpy(scene):
    left, right, disparity = scene
    (d,) = _tensors(disparity)
    propagated = refine.propagate_neighbours(refine.PhotometricCost(left, right), disparity)
    cost = postprocess_torch.TorchPhotometricCost(*_tensors(left, right))
    _assert_same_map(propagated, postprocess_torch.propagate_neighbours(cost, d))
    np.testing.assert_array_equal(postprocess_torch.occluded(d).numpy(), refine.occluded(disparity))
    _assert_same_map(fill_holes_rowwise(disparity), postprocess_torch.fill_holes_rowwise(d))
    _assert_same_map(refine.fill_occlusions(disparity), postprocess_torch.fill_occlusions(d))
    _assert_same_map(refine.median_valid(disparity), postprocess_torch.median_valid(d))
    complete = np.nan_to_num(disparity, nan=5.0)  # the median without any invalid pixel
    _assert_same_map(refine.median_valid(complete), postprocess_torch.median_valid(torch.from_numpy(complete)))


def test_refine_edges_matches_numpy_and_changes_the_map(scene):
    left, right, disparity = scene
    expected = refine.refine_edges(left, right, disparity)
    assert np.nansum(np.abs(expected - disparity) > 0.5) > 100  # the comparison is not vacuous
    _assert_same_map(expected, postprocess_torch.refine_edges(*_tensors(left, right, disparity)))


def test_refine_edges_matches_numpy_on_a_real_pair(shared):
    folder = shared("data", "real", "middlebury2001", "tsukuba")
    left, right = (cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB) for name in ("im3.png", "im4.png"))
    import rtstereo

    disparity = rtstereo.load("sgbm", max_disp=32, fill_holes=False).predict(left, right).disparity_px
    filled = postprocess.fill_left_border(disparity)
    _assert_same_map(
        refine.refine_edges(left, right, filled), postprocess_torch.refine_edges(*_tensors(left, right, filled))
    )


def test_lr_difference_and_mask_match_numpy(scene):
    _, _, disparity = scene
    right_map = disparity + np.random.default_rng(1).normal(0, 0.7, disparity.shape).astype(np.float32)
    left_t, right_t = _tensors(disparity, right_map)
    _assert_same_map(
        confidence.lr_difference_px(disparity, right_map), postprocess_torch.lr_difference_px(left_t, right_t)
    )
    np.testing.assert_array_equal(
        postprocess_torch.consistency_mask(left_t, right_t, 1.0).numpy(),
        confidence.consistency_mask(disparity, right_map, 1.0),
    )


# --- exceptions ---------------------------------------------------------------------------------------


def test_mismatched_shapes_are_refused(scene):
    left, right, disparity = scene
    with pytest.raises(InputError, match="expected two RGB images of one shape"):
        postprocess_torch.TorchPhotometricCost(*_tensors(left, right[:, :-1]))
    with pytest.raises(InputError, match="differ in size"):
        postprocess_torch.refine_edges(*_tensors(left, right, disparity[:, :-1]))


# --- the predictor on the device ----------------------------------------------------------------------


class _ShiftNet(torch.nn.Module):
    """Disparity from the mean colour of the left image (deterministic, no weights to load)."""

    def forward(self, left, right):
        return 8.0 + 12.0 * left.mean(dim=1) + 0.0 * right.mean(dim=1)


def _predictor(device_postprocess: bool) -> Predictor:
    spec = ModelSpec(name="shift-net", summary="toy", kind="network", builder="", normalization="unit", size_divisor=16)
    backend = TorchBackend(_ShiftNet(), device_postprocess=device_postprocess)
    return Predictor(spec, {}, backend, fill_left_border=True, refine_edges=True)


def test_cpu_backend_post_processes_in_numpy_by_default():
    assert TorchBackend(_ShiftNet()).device_postprocess is False


def test_predictor_on_the_device_gives_the_numpy_result(scene):
    left, right, _ = scene
    left, right = left[:50, :90], right[:50, :90]  # padded to 64x96 on the way in
    on_host = _predictor(device_postprocess=False).predict(left, right)
    on_device = _predictor(device_postprocess=True)
    result = on_device.predict(left, right)
    _assert_same_map(on_host.disparity_px, result.disparity_px)
    assert result.settings["fill_left_border"] and result.settings["refine_edges"]
    kept = on_device.predict_on_device(StereoPair(left, right))
    assert isinstance(kept, torch.Tensor)
    _assert_same_map(on_host.disparity_px, kept)
    with pytest.raises(InputError, match="does not post-process on a device"):
        _predictor(device_postprocess=False).predict_on_device(StereoPair(left, right))


def test_lr_check_on_the_device_gives_the_numpy_mask(scene):
    left, right, _ = scene
    pair = StereoPair(left, right)
    checked_host, mask_host = confidence.lr_check(_predictor(device_postprocess=False), pair, max_diff_px=1.0)
    checked_device, mask_device = confidence.lr_check(_predictor(device_postprocess=True), pair, max_diff_px=1.0)
    np.testing.assert_array_equal(mask_device, mask_host)
    _assert_same_map(checked_host.disparity_px, checked_device.disparity_px)
    assert 0 < mask_host.mean() < 1
    with pytest.raises(InputError, match="max_diff_px must be > 0"):
        confidence.lr_check(_predictor(device_postprocess=True), pair, checked_device, max_diff_px=0.0)
