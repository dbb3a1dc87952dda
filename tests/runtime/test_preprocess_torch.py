"""Pre-processing in torch (for the GPU) equals the numpy/OpenCV one, and the device path uses it.

Run on the CPU: the torch functions are the same code on CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtstereo.errors import InputError  # noqa: E402
from rtstereo.models.registry import ModelSpec  # noqa: E402
from rtstereo.runtime import preprocess, preprocess_torch  # noqa: E402
from rtstereo.runtime.backends import TorchBackend  # noqa: E402
from rtstereo.runtime.predictor import Predictor  # noqa: E402


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["imagenet", "unit", "raw255"])
def test_normalize_matches_numpy(image, mode):
    expected = preprocess.normalize(image, mode)
    actual = preprocess_torch.normalize(torch.from_numpy(image), mode)
    assert actual.dtype == torch.float32 and tuple(actual.shape) == expected.shape
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("divisor, min_size", [(1, 0), (8, 0), (16, 0), (32, 0), (32, 64)])
def test_pad_matches_numpy(image, divisor, min_size):
    batch = preprocess.normalize(image, "unit")
    expected, expected_pad = preprocess.pad_to_divisor(batch, divisor, min_size)
    actual, pad = preprocess_torch.pad_to_divisor(torch.from_numpy(batch), divisor, min_size)
    assert pad == expected_pad
    if min_size:  # the 37x53 image: 64x64, the smallest multiple of 32 of at least 64 each way
        assert tuple(actual.shape[-2:]) == (64, 64)
    np.testing.assert_array_equal(actual.numpy(), expected)


def test_bad_images_and_modes_are_refused(image):
    with pytest.raises(InputError, match=r"expected a uint8 \(H, W, 3\) image tensor, got \(37, 53\)"):
        preprocess_torch.normalize(torch.from_numpy(image[:, :, 0]), "unit")
    with pytest.raises(InputError, match="unknown normalization 'zscore'"):
        preprocess_torch.normalize(torch.from_numpy(image), "zscore")


class _ColourNet(torch.nn.Module):
    """Disparity from a weighted sum of the normalised channels (sensitive to mean/std and padding)."""

    def forward(self, left, right):
        weights = torch.tensor([3.0, 5.0, 7.0]).view(1, 3, 1, 1)
        return 20.0 + (left * weights).sum(dim=1) + 0.0 * right.sum(dim=1)


def test_the_device_path_gives_the_host_result(image):
    """The same Predictor with the data kept on the device (here the CPU) and in numpy."""
    spec = ModelSpec(
        name="colour", summary="toy", kind="network", builder="", normalization="imagenet", size_divisor=16
    )
    host = Predictor(spec, {}, TorchBackend(_ColourNet(), device_postprocess=False))
    device = Predictor(spec, {}, TorchBackend(_ColourNet(), device_postprocess=True))
    right = np.ascontiguousarray(image[:, ::-1])
    expected, actual = host.predict(image, right), device.predict(image, right)
    np.testing.assert_allclose(actual.disparity_px, expected.disparity_px, rtol=0, atol=1e-4)
    assert actual.network_size_hw == expected.network_size_hw == (48, 64)
    assert set(actual.timings_ms) == {"preprocess", "inference", "postprocess", "total"}
    assert all(t >= 0 for t in actual.timings_ms.values())


def test_upload_and_download_round_trip_on_the_cpu(image):
    backend = TorchBackend(_ColourNet())
    uploaded = backend.upload(image[:, ::-1])  # a strided view is made contiguous
    assert uploaded.dtype == torch.uint8 and uploaded.is_contiguous()
    np.testing.assert_array_equal(backend.download(uploaded), image[:, ::-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (pinned upload and download)")
def test_pinned_upload_and_download_on_cuda(image):
    backend = TorchBackend(_ColourNet(), device="cuda")
    uploaded = backend.upload(image)
    assert uploaded.device.type == "cuda"
    np.testing.assert_array_equal(backend.download(uploaded), image)
