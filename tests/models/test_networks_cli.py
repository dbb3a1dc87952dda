"""The published networks through the one API and CLI: golden parity where the CLI normalises itself,
padding to the size divisor, weights from URLs, and AnyNet's real accuracy through `rtstereo eval`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import rtstereo
from rtstereo.cli import main
from rtstereo.io import read_disparity
from rtstereo.models import get_spec
from rtstereo.models.registry import import_object
from rtstereo.runtime.preprocess import normalize


def write_png(path, rgb):
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_anynet_golden_through_predict_on_png(capsys, tmp_path, shared, stage):
    io = np.load(shared("fixtures", "golden", "anynet_kitti2015_io.npz"))
    weights = shared("weights", "anynet", "anynet_kitti2015.tar")
    left = write_png(tmp_path / "l.png", io["left_rgb"])
    right = write_png(tmp_path / "r.png", io["right_rgb"])
    out = tmp_path / "d.pfm"
    cli(capsys, "predict", left, right, "-o", out, "--model", "anynet", "--weights", weights, "--set", f"stage={stage}")
    ours = read_disparity(out)
    golden = io[f"disp_stage{stage}"][0, 0]
    valid = np.isfinite(ours)
    assert valid.mean() > 0.99 and np.array_equal(valid, golden > 0)  # only the network's values <= 0 px are invalid
    assert np.abs(ours[valid] - golden[valid]).max() <= 1e-3


def _random_rgb(height, width, seed):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8), (width, height))
    return base, np.roll(base, -3, axis=1)


def _predicted(capsys, folder, left, right, *options):
    """``rtstereo predict`` of the pair, written as ``l.png`` and ``r.png`` in ``folder``, with ``options``: its map."""
    out = folder / "d.npy"
    cli(capsys, "predict", write_png(folder / "l.png", left), write_png(folder / "r.png", right), "-o", out, *options)
    return np.load(out)


def _direct(module, left, right, divisor, mode):
    """The network on the normalised, padded pair, cropped back: what the CLI must reproduce."""
    from rtstereo.runtime.preprocess import pad_to_divisor

    a, pad = pad_to_divisor(normalize(left, mode), divisor)
    b, _ = pad_to_divisor(normalize(right, mode), divisor)
    with torch.no_grad():
        d = module.eval()(torch.from_numpy(a), torch.from_numpy(b))[0].numpy()
    return d[: d.shape[0] - pad[0], : d.shape[1] - pad[1]]


@pytest.mark.parametrize("size_hw", [(64, 128), (52, 120)])  # the second needs padding
def test_gwcnet_predict_matches_the_module(capsys, tmp_path, shared, size_hw):
    from rtstereo.models.gwcnet import build_gwcnet_gc, load_gwcnet_checkpoint

    weights = shared("fixtures", "golden", "gwcnet-gc_maxdisp48.ckpt")
    left, right = _random_rgb(*size_hw, seed=1)
    ours = _predicted(capsys, tmp_path, left, right, "--model", "gwcnet-gc", "--weights", weights, "--max-disp", 48)
    module = build_gwcnet_gc({"max_disp": 48})
    load_gwcnet_checkpoint(module, weights)
    expected = _direct(module, left, right, 16, "imagenet")
    valid = np.isfinite(ours)
    assert ours.shape == size_hw and valid.mean() > 0.95
    assert np.array_equal(valid, expected > 0)  # only the network's own values <= 0 px are invalid
    assert np.abs(ours[valid] - expected[valid]).max() <= 1e-3


@pytest.mark.parametrize("two_pass", [False, True])
def test_crestereo_predict_matches_the_module(capsys, tmp_path, shared, two_pass):
    from rtstereo.models.crestereo import build_crestereo, load_crestereo_checkpoint

    weights = shared("fixtures", "golden", "crestereo_random.pth")
    left, right = _random_rgb(64, 128, seed=2)
    options = ["--model", "crestereo", "--weights", weights, "--iters", 4, "--set", f"two_pass={str(two_pass).lower()}"]
    ours = _predicted(capsys, tmp_path, left, right, *options)
    module = build_crestereo({"iters": 4, "two_pass": two_pass})
    load_crestereo_checkpoint(module, weights)
    expected = _direct(module, left, right, 32, "raw255")
    valid = np.isfinite(ours)
    assert np.abs(ours[valid] - expected[valid]).max() <= 1e-3
    assert np.array_equal(valid, expected > 0)


def _as_the_original_feeds(model, left_png, right_png):
    """The network input that the original project's evaluation code makes of two image files."""
    if model == "crestereo":  # megvii-research/CREStereo test.py: cv2.imread (BGR), float 0..255, unconverted
        images = [cv2.imread(str(path)).astype(np.float32) for path in (left_png, right_png)]
    else:  # xy-guo/GwcNet, mileyan/AnyNet: PIL .convert("RGB"), ToTensor (0..1), Normalize(ImageNet mean, std)
        from PIL import Image

        mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
        images = [
            (np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0 - mean) / std
            for path in (left_png, right_png)
        ]
    return [torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None])) for image in images]


@pytest.mark.parametrize(
    "model, weights, settings",
    [("gwcnet-gc", "gwcnet-gc_maxdisp48.ckpt", {"max_disp": 48}), ("crestereo", "crestereo_random.pth", {"iters": 2})],
)
def test_predict_feeds_each_network_the_channel_order_and_range_of_its_original_code(
    capsys, tmp_path, shared, model, weights, settings
):
    """rtstereo predict on PNG files gives what the original evaluation code gives on them, and would not with
    the colour channels reversed (AnyNet: test_anynet_golden_through_predict_on_png, with its real weights).
    CREStereo was fed RGB where megvii's code feeds cv2.imread's BGR."""
    weights = shared("fixtures", "golden", weights)
    left, right = _random_rgb(64, 128, seed=4)
    options = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    ours = _predicted(capsys, tmp_path, left, right, "--model", model, "--weights", weights, *options)
    left_png, right_png = tmp_path / "l.png", tmp_path / "r.png"  # the files predict read
    spec = get_spec(model)
    module = import_object(spec.builder)(spec.resolve_settings(settings)).eval()
    import_object(spec.checkpoint_loader)(module, weights)
    # the original network: GwcNet's module is its forward; CREStereo's core network is the port's Model
    network = (lambda a, b: module.net(a, b, 2)[:, 0]) if model == "crestereo" else module
    inputs = _as_the_original_feeds(model, left_png, right_png)
    with torch.no_grad():
        original = network(*inputs)[0].numpy()
        swapped = network(*(x.flip(1) for x in inputs))[0].numpy()
    valid = np.isfinite(ours)
    assert np.array_equal(valid, original > 0)  # the network's own map: only its values <= 0 px are invalid
    # The seeded random GwcNet weights are chaotic: rounding differences of 5e-7 in the normalised input move
    # about 10 of its 8192 pixels by up to 0.1 px; a swapped channel order moves most of them.
    assert np.mean(np.abs(ours[valid] - original[valid]) > 1e-3) < 0.01
    assert np.mean(np.abs(swapped - original) > 0.05) > 0.3, "the pair cannot tell a swapped channel order"


def test_weights_from_a_url_are_downloaded_once(tmp_path, shared, monkeypatch):
    import io

    from rtstereo.io import download

    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    checkpoint = shared("fixtures", "golden", "gwcnet-g_maxdisp48.ckpt")
    asked = []

    def urlopen(url, timeout):  # no network: the URL serves the fixture's bytes
        asked.append(url)
        response = io.BytesIO(checkpoint.read_bytes())
        response.headers = {}
        return response

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    url = "https://example.org/gwcnet-g_maxdisp48.ckpt"
    left, right = _random_rgb(32, 64, seed=3)
    first = rtstereo.load("gwcnet-g", weights=url, max_disp=48).predict(left, right).disparity_px
    cached = list((tmp_path / "cache" / "weights").glob("*.ckpt"))  # (beside each, its recorded sha256)
    assert len(cached) == 1 and asked == [url]
    stamp = cached[0].stat().st_mtime_ns
    second = rtstereo.load("gwcnet-g", weights=url, max_disp=48).predict(left, right).disparity_px
    assert cached[0].stat().st_mtime_ns == stamp and asked == [url]  # not asked again
    np.testing.assert_array_equal(first, second)
    # A file:// URL is read where it is (a stale copy would hide an edited file): nothing more is cached.
    rtstereo.load("gwcnet-g", weights=checkpoint.as_uri(), max_disp=48)
    assert len(list((tmp_path / "cache" / "weights").glob("*.ckpt"))) == 1


def test_bf16_on_cpu_runs_and_stays_close(shared):
    weights = shared("weights", "anynet", "anynet_kitti2012.tar")
    left, right = _random_rgb(64, 128, seed=4)
    fp32 = rtstereo.load("anynet", weights=weights).predict(left, right).disparity_px
    bf16 = rtstereo.load("anynet", weights=weights, precision="bf16").predict(left, right).disparity_px
    both = np.isfinite(fp32) & np.isfinite(bf16)
    assert both.mean() > 0.9 and np.median(np.abs(fp32[both] - bf16[both])) < 0.5


def test_fp16_on_cpu_and_missing_cuda_are_refused(shared):
    weights = shared("weights", "anynet", "anynet_kitti2012.tar")
    with pytest.raises(rtstereo.InputError, match="fp16 needs --device cuda"):
        rtstereo.load("anynet", weights=weights, precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(rtstereo.InputError, match="no CUDA GPU"):
            rtstereo.load("anynet", weights=weights, device="cuda")


def test_anynet_kitti2012_accuracy_through_eval(capsys, tmp_path, shared):
    """The original code gives D1 = 5.5 % on kitti2012/000070 with these weights, without SPN."""
    weights = shared("weights", "anynet", "anynet_kitti2012.tar")
    cli(
        capsys,
        "eval",
        "--model",
        "anynet",
        "--weights",
        weights,
        shared("data", "real", "kitti2012"),
        "-o",
        tmp_path,
        "-q",
    )
    d1 = json.loads((tmp_path / "anynet_weights=anynet_kitti2012.json").read_text())["scenes"][0]["metrics"]["d1"]
    assert d1 == pytest.approx(5.5, abs=0.3)
