"""``rtstereo adapt`` on videos: two files or one side-by-side file, frames sampled evenly, as ``video`` reads them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.models.checkpoint import save_checkpoint
from rtstereo.sources.video import SideBySideVideoSource, TwoVideoSource
from rtstereo.train.loop import build_network
from rtstereo.train.video_pairs import sample_video_pairs, sampling_stride

FRAMES = 12
FAST = ["--steps", "1", "--crop", "64x96", "--batch-size", "1", "--synthetic-batch", "0", "--holdout", "0"]


def _frames(count: int = FRAMES, height: int = 64, width: int = 128, disparity_px: int = 5):
    """Blob-textured pairs (coarse enough to survive mp4), the texture sliding 2 px per frame."""
    rng = np.random.default_rng(1)
    coarse = rng.integers(
        0, 256, size=(height // 4 + 1, (width + disparity_px + 2 * count) // 4 + 1, 3), dtype=np.uint8
    )
    wide = cv2.resize(coarse, (coarse.shape[1] * 4, coarse.shape[0] * 4), interpolation=cv2.INTER_LINEAR)[:height]
    lefts = [np.ascontiguousarray(wide[:, 2 * t : 2 * t + width]) for t in range(count)]
    rights = [np.ascontiguousarray(wide[:, 2 * t + disparity_px : 2 * t + disparity_px + width]) for t in range(count)]
    return lefts, rights


def _write(path, frames):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    lefts, rights = _frames()
    left, right = _write(folder / "left.mp4", lefts), _write(folder / "right.mp4", rights)
    swapped = _write(folder / "rl.mp4", [np.concatenate([r, lf], axis=1) for lf, r in zip(lefts, rights)])
    return {"left": left, "right": right, "sbs_swapped": swapped, "lefts": lefts, "rights": rights}


@pytest.fixture(scope="module")
def tiny_network(tmp_path_factory):
    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32})
    path = tmp_path_factory.mktemp("net") / "tiny.pt"
    save_checkpoint(path, spec.name, settings, module.state_dict())
    return path


def _nearest(image: np.ndarray, frames: list[np.ndarray]) -> int:
    """Which of ``frames`` a decoded (mp4-compressed) image is."""
    return int(np.argmin([np.abs(image.astype(np.float32) - f.astype(np.float32)).mean() for f in frames]))


def test_frames_are_spread_over_the_video(videos):
    pairs = sample_video_pairs(lambda stride: TwoVideoSource(videos["left"], videos["right"], stride=stride), 4)
    assert [p.name for p in pairs] == ["frame00000", "frame00003", "frame00006", "frame00009"]
    assert _nearest(pairs[1].left, videos["lefts"]) == 3 and _nearest(pairs[1].right, videos["rights"]) == 3
    every = sample_video_pairs(lambda stride: TwoVideoSource(videos["left"], videos["right"], stride=stride), 3, 5)
    assert [p.name for p in every] == ["frame00000", "frame00005", "frame00010"]


def test_a_swapped_side_by_side_video_gives_left_first(videos):
    pairs = sample_video_pairs(lambda s: SideBySideVideoSource(videos["sbs_swapped"], swap=True, stride=s), 2)
    assert [p.name for p in pairs] == ["frame00000", "frame00006"]
    frames = videos["lefts"] + videos["rights"]
    assert _nearest(pairs[1].left, frames) == 6 and _nearest(pairs[1].right, frames) == FRAMES + 6


def test_sampling_errors():
    assert sampling_stride(299, 100) == 3
    with pytest.raises(InputError, match="--max-pairs must be >= 1"):
        sampling_stride(10, 0)
    with pytest.raises(InputError, match="--every must be >= 1"):
        sampling_stride(10, 5, every=0)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_adapt_on_two_videos_writes_a_checkpoint(capsys, tmp_path, videos, tiny_network):
    out = tmp_path / "cam.pt"
    argv = ["adapt", videos["left"], videos["right"], "--model", tiny_network, "--max-pairs", "3", *FAST, "-o", out]
    code, stdout, err = run_cli(capsys, *argv, "-q")
    assert code == 0, err
    assert "3 pair(s) from the video: frame00000 to frame00008" in err
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["adaptation"]["train_pairs"] == ["frame00000", "frame00004", "frame00008"]


def test_adapt_on_a_side_by_side_video_with_swap(capsys, tmp_path, videos, tiny_network):
    out = tmp_path / "cam.pt"
    argv = ["adapt", "--sbs", videos["sbs_swapped"], "--swap", "--every", "4", "--start", "1", "--model", tiny_network]
    code, _, err = run_cli(capsys, *argv, *FAST, "-o", out, "-q")
    assert code == 0, err
    assert torch.load(out, weights_only=True)["adaptation"]["train_pairs"] == ["frame00001", "frame00005", "frame00009"]


@pytest.mark.parametrize(
    "inputs, extra, message",
    [
        (["left", "images/"], [], "expected two videos (LEFT_VIDEO RIGHT_VIDEO), one side-by-side video with --sbs"),
        (["left", "right"], ["--sbs"], "--sbs takes one side-by-side video"),
        (["left", "right"], ["--every", "0"], "--every must be >= 1"),
        (["left", "right"], ["--start", "99"], "--start 99 is past the end of the videos (12 frames)"),
        (["images/", "images/"], ["--every", "2"], "--swap, --start and --every apply to videos"),
    ],
)
def test_video_input_errors_are_one_line(capsys, tmp_path, videos, tiny_network, inputs, extra, message):
    names = {"left": videos["left"], "right": videos["right"], "images/": tmp_path}
    argv = ["adapt", *(names[i] for i in inputs), *extra, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err, err
    assert err.startswith("rtstereo adapt: error: ") and err.count("\n") == 1
