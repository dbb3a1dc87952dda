"""rtstereo.train.proxy: unlabeled real pairs with SGBM proxy labels, mixed into rendered batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtstereo.cli import main
from rtstereo.datasets.synthetic import RenderSettings, render_batch
from rtstereo.errors import DatasetError, InputError
from rtstereo.io.images import write_image
from rtstereo.train import TrainConfig, train
from rtstereo.train.proxy import (
    MixedStream,
    ProxyStream,
    calibrated_range,
    find_unlabeled_pairs,
    proxy_disparity,
)

# The fixture's folder of three images is left out with a warning, which the tests of it catch themselves.
pytestmark = pytest.mark.filterwarnings("ignore:.*of images left out, holding not exactly two:UserWarning")


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).mul(255).round().byte().numpy()


@pytest.fixture(scope="module")
def rendered():
    """Textured rendered pairs (no sensor noise) with their exact disparity."""
    return render_batch(3, 96, 192, seed=5, max_disp_px=24.0, settings=RenderSettings(noise=False))


@pytest.fixture(scope="module")
def unlabeled_root(tmp_path_factory, rendered):
    """A folder of unlabeled pairs in two layouts (im0/im1, left/right), plus a folder that is no pair."""
    root = tmp_path_factory.mktemp("unlabeled")
    names = (("scene_a", "im0.png", "im1.png"), ("group/scene_b", "left.png", "right.png"))
    for index, (folder, left_name, right_name) in enumerate(names):
        (root / folder).mkdir(parents=True)
        write_image(root / folder / left_name, _to_uint8(rendered["left"][index]))
        write_image(root / folder / right_name, _to_uint8(rendered["right"][index]))
    (root / "scene_a" / "calib.txt").write_text("cam0=[1 0 0]\nndisp = 32\n")
    (root / "three").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        write_image(root / "three" / name, _to_uint8(rendered["left"][2]))
    return root


def test_hidden_files_are_not_images_of_a_pair(tmp_path, rendered):
    # a macOS "._im0.png" beside im0.png and im1.png made three images: the pair was left out
    (tmp_path / "scene").mkdir()
    write_image(tmp_path / "scene" / "im0.png", _to_uint8(rendered["left"][0]))
    write_image(tmp_path / "scene" / "im1.png", _to_uint8(rendered["right"][0]))
    (tmp_path / "scene" / "._im0.png").write_bytes(b"\x00\x05\x16\x07")
    pairs = find_unlabeled_pairs(tmp_path)
    assert [(p.name, p.left_path.name, p.right_path.name) for p in pairs] == [("scene", "im0.png", "im1.png")]


def test_pairs_are_leaf_folders_of_two_images_left_first(unlabeled_root):
    # "three" holds three images: left out, and said (a Middlebury 2014 scene, im0 im1 im1E im1L, was skipped unsaid)
    with pytest.warns(UserWarning, match=r"1 folder of images left out, holding not exactly two: three \(3 images\)"):
        pairs = find_unlabeled_pairs(unlabeled_root)
    assert [p.name for p in pairs] == ["group/scene_b", "scene_a"]
    assert [p.left_path.name for p in pairs] == ["left.png", "im0.png"]
    assert [p.right_path.name for p in pairs] == ["right.png", "im1.png"]


def test_links_to_pair_folders_are_followed_each_folder_once(unlabeled_root, tmp_path):
    """A folder of links to the pairs' folders held "no folder ... of two images": Path.rglob does not follow
    links to folders, where --data and eval do. A loop of links, or two links to one folder, reads it once."""
    root = tmp_path / "links"
    root.mkdir()
    (root / "a").symlink_to(unlabeled_root / "scene_a", target_is_directory=True)
    (root / "b").symlink_to(unlabeled_root / "group", target_is_directory=True)
    (root / "b_again").symlink_to(unlabeled_root / "group", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    pairs = find_unlabeled_pairs(root)
    assert [p.name for p in pairs] == ["a", "b/scene_b"]
    assert [p.left_path.name for p in pairs] == ["im0.png", "left.png"]


def test_missing_or_empty_folders_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="folder not found"):
        find_unlabeled_pairs(tmp_path / "nope")
    with pytest.raises(DatasetError, match="exactly two images"):
        find_unlabeled_pairs(tmp_path)
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene" / "im0.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"a right\); 1 folder of images left out, holding not exactly two: scene"):
        find_unlabeled_pairs(tmp_path)


def test_calibrated_range_reads_ndisp(unlabeled_root, tmp_path):
    assert calibrated_range(unlabeled_root / "scene_a") == 32.0
    assert calibrated_range(unlabeled_root / "group" / "scene_b") is None
    (tmp_path / "calib.txt").write_text("ndisp=many\n")
    assert calibrated_range(tmp_path) is None


def test_proxy_labels_are_far_more_often_right_than_sgbm_everywhere(rendered):
    import rtstereo

    sgbm = rtstereo.load("sgbm", max_disp=32)
    for index in range(3):
        left, right = _to_uint8(rendered["left"][index]), _to_uint8(rendered["right"][index])
        proxy = proxy_disparity(left, right, max_disp=32)
        gt = rendered["disparity"][index].numpy()
        kept = np.isfinite(proxy)
        assert 0.2 < kept.mean() < 1.0
        wrong_kept = float((np.abs(proxy[kept] - gt[kept]) > 2).mean())
        wrong_sgbm = float((np.abs(np.nan_to_num(sgbm.predict(left, right).disparity_px) - gt) > 2).mean())
        # Rendered scenes are harder than real ones (on ../shared/data/validation the kept labels are
        # ~5 % wrong against SGBM's ~20 %); here 8-18 % against SGBM's 32 %.
        assert wrong_kept < 0.6 * wrong_sgbm, (index, wrong_kept, wrong_sgbm)
        # Points that fall left of the right image have no match: never labelled.
        assert not kept[np.arange(gt.shape[1])[None, :] < gt - 1].any()


def test_proxy_stream_batches_are_deterministic_and_sparse(unlabeled_root):
    stream = ProxyStream(unlabeled_root, batch_size=3, crop_hw=(64, 128), max_disp=32, seed=1, device="cpu")
    first, again, other = stream(4), stream(4), stream(5)
    assert first["left"].shape == (3, 3, 64, 128) and first["disparity"].shape == (3, 64, 128)
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["left"], other["left"])
    labelled = first["disparity"] > 0
    assert 0.05 < float(labelled.float().mean()) < 1.0
    assert "2 unlabeled real pairs" in stream.describe()


def test_proxy_stream_labels_each_pair_searching_its_calibrated_range(unlabeled_root, rendered):
    """scene_a's calib.txt says ndisp = 32: SGBM searches 32 px there, and 48 (a quarter of the width,
    below max_disp = 64) on group/scene_b; the labels are those of the left view."""
    stream = ProxyStream(unlabeled_root, batch_size=1, crop_hw=(64, 128), max_disp=64, seed=0, device="cpu")
    assert [p.name for p in stream.pairs] == ["group/scene_b", "scene_a"]
    expected = []
    for (left, right, labels), index, search in zip(stream.samples, (1, 0), (64, 32)):
        truth_left, truth_right = _to_uint8(rendered["left"][index]), _to_uint8(rendered["right"][index])
        np.testing.assert_array_equal(left, truth_left)
        np.testing.assert_array_equal(right, truth_right)
        expected.append(proxy_disparity(truth_left, truth_right, search))
        np.testing.assert_array_equal(labels, expected[-1])
    assert not np.array_equal(expected[1], proxy_disparity(truth_left, truth_right, 64))  # the range mattered
    density = (np.isfinite(expected[0]).mean() + np.isfinite(expected[1]).mean()) / 2
    assert stream.label_density == pytest.approx(density)
    assert f"({100 * density:.0f} % of pixels)" in stream.describe()


def test_the_labelled_share_counts_pixels_over_all_pairs_not_a_mean_over_pairs(tmp_path, rendered):
    """A small pair counted as much as a large one: the "% of pixels" was a mean of each pair's share."""
    for folder, columns in (("large", slice(None)), ("small", slice(0, 64))):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "im0.png", _to_uint8(rendered["left"][0])[:, columns])
        write_image(tmp_path / folder / "im1.png", _to_uint8(rendered["right"][0])[:, columns])
    stream = ProxyStream(tmp_path, batch_size=1, crop_hw=(64, 64), max_disp=32, seed=0, device="cpu")
    maps = [labels for _, _, labels in stream.samples]
    assert [m.shape for m in maps] == [(96, 192), (96, 64)]
    by_hand = (np.isfinite(maps[0]).sum() + np.isfinite(maps[1]).sum()) / (96 * 192 + 96 * 64)
    assert abs(by_hand - np.mean([np.isfinite(m).mean() for m in maps])) > 0.01  # the two differ here
    assert stream.label_density == pytest.approx(by_hand)
    assert f"({100 * by_hand:.0f} % of pixels)" in stream.describe()


def test_one_unlabeled_pair_is_described_in_the_singular(tmp_path, unlabeled_root):
    """The run's first line read "... + 1 per batch of 1 unlabeled real pairs from ..."."""
    (tmp_path / "one").symlink_to(unlabeled_root / "scene_a", target_is_directory=True)
    stream = ProxyStream(tmp_path, batch_size=1, crop_hw=(64, 128), max_disp=32, seed=0, device="cpu")
    assert stream.describe().startswith(f"1 unlabeled real pair from {tmp_path} with SGBM proxy labels ("), stream


def test_a_damaged_unlabeled_pair_is_left_out_with_a_warning_naming_it(tmp_path, unlabeled_root):
    import shutil

    root = tmp_path / "pairs"
    shutil.copytree(unlabeled_root, root)
    (root / "broken").mkdir()
    for name in ("im0.png", "im1.png"):
        (root / "broken" / name).write_bytes(b"not a png")
    with pytest.warns(UserWarning, match=r"1 unlabeled pair left out: broken \(cannot read .*im0.png"):
        stream = ProxyStream(root, batch_size=2, crop_hw=(64, 128), max_disp=32, seed=1, device="cpu")
    assert [p.name for p in stream.pairs] == ["group/scene_b", "scene_a"]
    assert "2 unlabeled real pairs" in stream.describe()
    assert stream(0)["left"].shape == (2, 3, 64, 128)
    only_broken = tmp_path / "only"
    shutil.copytree(root / "broken", only_broken / "broken")
    with pytest.raises(DatasetError, match="none of the 1 pair"), pytest.warns(UserWarning, match="left out"):
        ProxyStream(only_broken, batch_size=1, crop_hw=(64, 128), max_disp=32, seed=1, device="cpu")


def test_unlabeled_pairs_smaller_than_the_crop_are_said(unlabeled_root):
    with pytest.warns(
        UserWarning,
        match=r"training pair group/scene_b is 96x192, smaller than the 128x256 crop "
        r"\(and 1 other pair\): its crops are padded with pixels that have no label \(44 %",
    ):
        ProxyStream(unlabeled_root, batch_size=1, crop_hw=(128, 256), max_disp=32, seed=0, device="cpu")


def test_mixed_stream_concatenates_rendered_and_real(unlabeled_root):
    real = ProxyStream(unlabeled_root, batch_size=1, crop_hw=(64, 128), max_disp=32, seed=0, device="cpu")

    class Rendered:
        def describe(self):
            return "rendered"

        def __call__(self, step):
            return {
                "left": torch.zeros(2, 3, 64, 128),
                "right": torch.zeros(2, 3, 64, 128),
                "disparity": torch.full((2, 64, 128), 5.0),
                "occluded": torch.zeros(2, 64, 128, dtype=torch.bool),
            }

    batch = MixedStream(Rendered(), real)(0)
    assert batch["left"].shape[0] == 3 and batch["disparity"].shape == (3, 64, 128)
    assert torch.equal(batch["disparity"][:2], torch.full((2, 64, 128), 5.0))


@pytest.mark.parametrize("real_per_batch", [1, 2])  # 2 of 3: more real pairs than rendered ones
def test_training_mixes_unlabeled_pairs_into_rendered_batches(tmp_path, unlabeled_root, real_per_batch):
    config = TrainConfig(
        out_dir=str(tmp_path / "run"),
        settings={"max_disp": 32},
        steps=1,
        batch_size=3,
        unlabeled=str(unlabeled_root),
        unlabeled_per_batch=real_per_batch,
        crop_hw=(64, 128),
        val_size=2,
        val_hw=(64, 128),
        warmup_steps=1,
        log_every=1,
        checkpoint_every=1,
        precision="off",
        threads=1,
    )
    lines: list[str] = []
    summary = train(config, echo=lines.append)
    assert summary["step"] == 1
    assert lines[0] == f"proxy labels: SGBM on the unlabeled pairs of {unlabeled_root} ..."  # before the wait
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert "2 unlabeled real pairs" in log


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"unlabeled": "x", "data": "y"}, "not into 'data'"),
        ({"unlabeled": "x", "unlabeled_per_batch": 4}, "leaves no rendered scene"),
        ({"unlabeled_per_batch": -1}, "unlabeled_per_batch"),
    ],
)
def test_bad_unlabeled_options_are_refused(changes, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(batch_size=4, **changes)


def test_a_batch_of_one_with_unlabeled_pairs_names_the_batch_size(capsys, unlabeled_root):
    """It named 'unlabeled_per_batch', which the user had not given: "training config 'unlabeled_per_batch': 1 of
    a batch of 1 leaves no rendered scene"."""
    with pytest.raises(InputError, match="'batch_size': 1 leaves no rendered scene beside the unlabeled pair"):
        TrainConfig(batch_size=1, unlabeled="x")
    code = main(["train", "--batch-size", "1", "--unlabeled", str(unlabeled_root), "-o", "never-made"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rtstereo train: error: --batch-size: 1 leaves no rendered scene"), err


def test_a_quarter_of_the_batch_by_default_at_least_one_as_the_help_says(capsys):
    assert TrainConfig(batch_size=8, unlabeled="x").unlabeled_share == 2
    assert TrainConfig(batch_size=7, unlabeled="x").unlabeled_share == 1
    assert TrainConfig(batch_size=2, unlabeled="x").unlabeled_share == 1
    assert TrainConfig(batch_size=8).unlabeled_share == 0
    with pytest.raises(SystemExit):  # it said "a quarter of the batch": 0 of a batch of 2
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: a quarter of the batch, rounded down, at least 1)" in help_text
