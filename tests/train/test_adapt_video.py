"""``rtstereo adapt`` on videos: two files or one side-by-side file, frames sampled evenly, as ``video`` reads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adapt_helpers import sliding_frames, write_tiny_checkpoint, write_video
from tests.conftest import run_cli

from rtstereo.errors import InputError
from rtstereo.sources.video import SideBySideVideoSource, TwoVideoSource
from rtstereo.train.video_pairs import sample_video_pairs, sampling_stride

FRAMES = 12
FAST = ["--steps", "1", "--crop", "64x96", "--batch-size", "1", "--synthetic-batch", "0", "--holdout", "0"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    lefts, rights = sliding_frames(FRAMES)
    left, right = write_video(folder / "left.mp4", lefts), write_video(folder / "right.mp4", rights)
    swapped = write_video(folder / "rl.mp4", [np.concatenate([r, lf], axis=1) for lf, r in zip(lefts, rights)])
    return {"left": left, "right": right, "sbs_swapped": swapped, "lefts": lefts, "rights": rights}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("net") / "tiny.pt")


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


def test_adapt_on_two_videos_writes_a_checkpoint(capsys, tmp_path, videos, tiny_checkpoint):
    out = tmp_path / "cam.pt"
    argv = ["adapt", videos["left"], videos["right"], "--model", tiny_checkpoint, "--max-pairs", "3", *FAST, "-o", out]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "3 pairs from the video: frame00000 to frame00008" in err
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["adaptation"]["train_pairs"] == ["frame00000", "frame00004", "frame00008"]


def test_a_mistyped_model_is_refused_before_any_pair_is_read(capsys, monkeypatch, tmp_path, videos):
    """It was refused only after every pair of the video was read and checked (seconds on a long video)."""
    import rtstereo.cli.adapt

    def read(*args, **kwargs):
        raise AssertionError("the pairs were read before the model was checked")

    monkeypatch.setattr(rtstereo.cli.adapt, "_video_pairs", read)
    monkeypatch.setattr(rtstereo.cli.adapt, "load_user_pairs", read)
    argv = ["adapt", videos["left"], videos["right"], "--model", "rtnte", "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("rtstereo adapt: error: unknown model 'rtnte'. Did you mean: rtnet"), err


def test_adapt_on_a_side_by_side_video_with_swap(capsys, tmp_path, videos, tiny_checkpoint):
    out = tmp_path / "cam.pt"
    argv = [
        "adapt",
        "--sbs",
        videos["sbs_swapped"],
        "--swap",
        "--every",
        "4",
        "--start",
        "1",
        "--model",
        tiny_checkpoint,
    ]
    code, _, err = run_cli(capsys, *argv, *FAST, "-o", out, "-q")
    assert code == 0, err
    assert "from the video" not in err  # --quiet: the scores, the result and warnings only
    assert torch.load(out, weights_only=True)["adaptation"]["train_pairs"] == ["frame00001", "frame00005", "frame00009"]


@pytest.fixture(scope="module")
def textured_videos(tmp_path_factory):
    """Videos of a rendered pair with features enough for the rectification check: left, right, right|left."""
    from rtstereo.datasets.synthetic import RenderSettings, render_batch

    batch = render_batch(2, 160, 256, seed=7, max_disp_px=24.0, settings=RenderSettings.geometry_only())
    left, right = ((batch[k][1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for k in ("left", "right"))
    folder = tmp_path_factory.mktemp("textured")
    return {
        "left": write_video(folder / "left.mp4", [left] * 3),
        "right": write_video(folder / "right.mp4", [right] * 3),
        "sbs_swapped": write_video(folder / "rl.mp4", [np.concatenate([right, left], axis=1)] * 3),
    }


@pytest.mark.parametrize(
    "inputs, extra, hint",
    [
        (["sbs_swapped"], ["--sbs"], "add --swap (a cross-eye video stores right|left)"),
        (["right", "left"], [], "give the left video first, or add --swap"),
        (["left", "right"], ["--swap"], "leave out --swap"),
    ],
)
def test_swapped_videos_are_refused_with_the_flag_that_fixes_them(
    capsys, tmp_path, textured_videos, tiny_checkpoint, inputs, extra, hint
):
    videos = [textured_videos[name] for name in inputs]
    argv = ["adapt", *extra, *videos, "--model", tiny_checkpoint, *FAST, "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "left and right look swapped" in err and err.rstrip().endswith(hint), err


@pytest.mark.parametrize(
    "inputs, extra, message",
    [
        (["left", "images/"], [], "expected two videos (LEFT_VIDEO RIGHT_VIDEO), one side-by-side video with --sbs"),
        # It read "... got a video and images", with no images given.
        (["left"], [], "give the right camera's video after it, or --sbs if it is a side-by-side video"),
        (["left", "right"], ["--sbs"], "--sbs takes one side-by-side video"),
        (["left", "right"], ["--every", "0"], "--every must be >= 1"),
        (["left", "right"], ["--start", "99"], "--start 99 is past the end of the videos (12 frames)"),
        (["images/", "images/"], ["--every", "2"], "--swap, --start, --every and --max-pairs apply to videos"),
        (["images/", "images/"], ["--max-pairs", "5"], "--swap, --start, --every and --max-pairs apply to videos"),
        # video's --stride: "unrecognized arguments" under a heading "videos (as rtstereo video takes them)"
        (["images/", "images/"], ["--stride", "2"], "--swap, --start, --every and --max-pairs apply to videos"),
        (["left", "right"], ["--stride", "0"], "--every must be >= 1"),
    ],
)
def test_video_input_errors_are_one_line(capsys, tmp_path, videos, tiny_checkpoint, inputs, extra, message):
    names = {"left": videos["left"], "right": videos["right"], "images/": tmp_path}
    argv = ["adapt", *(names[i] for i in inputs), *extra, "--model", tiny_checkpoint, *FAST, "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err, err
    assert err.startswith("rtstereo adapt: error: ") and err.count("\n") == 1


def test_videos_of_two_lengths_are_said_once_as_adapt_says_things(capsys, tmp_path, videos, tiny_checkpoint):
    """The stride needs the length, so the videos open twice: the warning came twice, unprefixed, even with -q."""
    short = write_video(tmp_path / "short.mp4", videos["rights"][:8])
    argv = ["adapt", videos["left"], short, "--max-pairs", "2", "--model", tiny_checkpoint, *FAST]
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "m.pt", "-q")
    assert code == 0, err
    warning = "rtstereo adapt: warning: the two videos differ in length (left 12 frames, right 8): stopping"
    assert err.count(warning) == 1 and err.count("differ in length") == 1, err


def test_a_stride_past_the_shorter_video_adds_no_second_warning(capsys, tmp_path, videos, tiny_checkpoint):
    """Every 3rd frame of 8 (0, 3, 6): the skip past frame 7 ended the stream, and a second warning followed the
    first, naming the longer video's position: "the right video ended at frame 9", of a video of 8 frames."""
    short = write_video(tmp_path / "short.mp4", videos["rights"][:8])
    argv = ["adapt", videos["left"], short, "--every", "3", "--model", tiny_checkpoint, *FAST]
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "m.pt", "-q")
    assert code == 0, err
    assert err.count("differ in length") == 1 and "ended at frame" not in err, err
