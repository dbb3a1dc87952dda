"""One voice across the verbs: the same situation gets the same words and exit code in each verb that meets it."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from rtstereo.cli import main

from ..conftest import run_cli


def _scene(tmp_path, pair):
    """A Middlebury 2001 scene of the pair, for eval."""
    scene = tmp_path / "scene"
    scene.mkdir()
    for name, path in zip(("im2.png", "im6.png"), pair):
        shutil.copy(path, scene / name)
    cv2.imwrite(str(scene / "disp2.png"), np.full((48, 72), 8 * 4, np.uint8))
    return scene


# Each verb with --device, at its cheapest: the device is checked before any work.
DEVICE_VERBS = {
    "predict": lambda tmp, pair: ["predict", *pair, "--model", "rtnet-v5"],
    "video": lambda tmp, pair: ["video", tmp / "l*.png", tmp / "r*.png", "--model", "rtnet-v5"],  # sequences
    "eval": lambda tmp, pair: ["eval", _scene(tmp, pair), "--model", "rtnet-v5", "-o", tmp / "ev"],
    "bench": lambda tmp, pair: ["bench", "rtnet-v5", "--sizes", "32x64"],
    "synth": lambda tmp, pair: ["synth", "1", "--size", "32x64", "-o", tmp / "synth"],
    "train": lambda tmp, pair: ["train", "--steps", "1", "--out-dir", tmp / "run"],
    "adapt": lambda tmp, pair: ["adapt", *pair, "--steps", "1", "-o", tmp / "m.pt"],
}


@pytest.mark.parametrize("device", ["gpu0", "mps", "cuda:x"])
@pytest.mark.parametrize("verb", DEVICE_VERBS)
def test_every_verb_refuses_an_unknown_device_in_the_same_words(capsys, tmp_path, pair, verb, device):
    """synth, train and adapt said "unknown device 'gpu0': expected cpu, cuda or cuda:N", and of mps "training runs on
    cpu or cuda" (synth renders scenes), where predict, video, eval and bench say what their --help says."""
    pytest.importorskip("torch")
    code, out, err = run_cli(capsys, *DEVICE_VERBS[verb](tmp_path, pair), "--device", device, "-q")
    assert (code, out) == (2, ""), err
    assert err == f"rtstereo {verb}: error: device must be cpu or cuda[:N], got '{device}'\n"


def _help_text(capsys, monkeypatch, verb: str) -> str:
    """A verb's ``--help``, on one line of single spaces (200 columns wide, so that no option's text is cut)."""
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("verb", DEVICE_VERBS)
def test_every_verb_describes_device_in_the_same_words(capsys, monkeypatch, verb):
    text = _help_text(capsys, monkeypatch, verb)
    assert "--device DEVICE cpu or cuda[:N] (default: cpu)" in text


# Each verb that takes a model, at its cheapest: the model file is checked before any work.
MODEL_VERBS = {
    "predict": lambda tmp, pair, model: ["predict", *pair, "--model", model],
    "video": lambda tmp, pair, model: ["video", tmp / "l*.png", tmp / "r*.png", "--model", model],
    "eval": lambda tmp, pair, model: ["eval", _scene(tmp, pair), "--model", model, "-o", tmp / "ev"],
    "bench": lambda tmp, pair, model: ["bench", model, "--sizes", "32x64"],
    "models": lambda tmp, pair, model: ["models", model],
}


@pytest.mark.parametrize("name", ["nope.onnx", "nope.pt"])
@pytest.mark.parametrize("verb", MODEL_VERBS)
def test_every_verb_says_a_missing_model_file_in_the_same_words(capsys, tmp_path, pair, verb, name):
    """predict, video and eval said "ONNX model not found: nope.onnx", and models "nope.onnx: file not found", where
    bench (and all of them for nope.pt) said what the file should be and where the registry names are."""
    model = tmp_path / name
    code, out, err = run_cli(capsys, *MODEL_VERBS[verb](tmp_path, pair, model))
    assert (code, out) == (2, ""), err
    assert err == (
        f"rtstereo {verb}: error: model file not found: {model} (an rtstereo checkpoint or an exported .onnx file; "
        "registry names: rtstereo models)\n"
    )


@pytest.mark.parametrize("url", ["https://h.org/nets/m.onnx", "file:///tmp/m.onnx", "https://h.org/mine.pt"])
@pytest.mark.parametrize("verb", MODEL_VERBS)
def test_every_verb_says_a_model_given_as_a_url_is_one(capsys, tmp_path, pair, verb, url):
    """models said "https:/h.org/nets/m.onnx: file not found" of an .onnx URL, a path made of it."""
    code, out, err = run_cli(capsys, *MODEL_VERBS[verb](tmp_path, pair, url))
    assert (code, out) == (2, ""), err
    assert err.startswith(f"rtstereo {verb}: error: model {url} is a URL: a model is a registry name or a local file")
    if url.startswith("file:"):  # it said "download the .onnx file" of a file of this machine
        assert err.endswith(": give its path, /tmp/m.onnx\n"), err


# Each verb that takes --weights, for a network that needs them.
WEIGHTS_VERBS = {
    "predict": lambda tmp, pair: ["predict", *pair, "--model", "gwcnet-gc"],
    "video": lambda tmp, pair: ["video", tmp / "l*.png", tmp / "r*.png", "--model", "gwcnet-gc"],
    "eval": lambda tmp, pair: ["eval", _scene(tmp, pair), "--model", "gwcnet-gc", "-o", tmp / "ev"],
    "bench": lambda tmp, pair: ["bench", "gwcnet-gc,sgbm", "--sizes", "32x64", "--runs", "1", "--warmup", "1"],
    "export": lambda tmp, pair: ["export", "gwcnet-gc", "--size", "32x64", "-o", tmp / "g.onnx"],
    "adapt": lambda tmp, pair: ["adapt", *pair, "--model", "gwcnet-gc", "--steps", "1", "-o", tmp / "m.pt"],
}


@pytest.mark.parametrize("verb", WEIGHTS_VERBS)
def test_every_verb_stops_at_once_on_a_weights_url_that_cannot_be_downloaded(capsys, monkeypatch, tmp_path, pair, verb):
    """bench tried the URL in each row of the network, each skipped saying so, timed the others and exited with 1 (or
    0 beside another model's rows); the other verbs stop in one line with exit code 2, as for a missing file."""
    pytest.importorskip("torch")
    import urllib.error

    from rtstereo.io import download

    def refused(url, timeout):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(download.urllib.request, "urlopen", refused)
    url = "https://x.org/w.ckpt"
    code, out, err = run_cli(capsys, *WEIGHTS_VERBS[verb](tmp_path, pair), "--weights", url, "-q")
    assert (code, out) == (2, ""), out + err
    assert err.startswith(f"rtstereo {verb}: error: ") and err.count("\n") == 1, err
    assert f"cannot download {url}: [Errno 111] Connection refused; check the address" in err


@pytest.mark.parametrize("verb", ["predict", "video", "live", "eval", "bench"])
def test_every_verb_describes_threads_in_the_same_words(capsys, monkeypatch, verb):
    """bench said "CPU threads for PyTorch, ONNX Runtime and OpenCV" of the same option; none named the hybrid's own
    threads (SGBM beside the network, the hole choice), which --threads bounds too."""
    text = _help_text(capsys, monkeypatch, verb)
    assert (
        "--threads N CPU threads of ONNX Runtime, OpenCV, PyTorch and the hybrid's own (default: $RTSTEREO_THREADS"
        in text
    )
