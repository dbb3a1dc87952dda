"""rtstereo.train.hints: SGBM's confident matches as a guided network's third input, in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_loop import records, tiny_config

from rtstereo.datasets.synthetic import render_batch
from rtstereo.models.checkpoint import read_torch_file
from rtstereo.models.sgbm import confident_disparity, normalize_local_contrast, resolved_sgbm_input
from rtstereo.train import train
from rtstereo.train.hints import RIGHT_PX, HintedStream, sgbm_hints, thin_wrong_hints


@pytest.fixture(scope="module")
def scenes():
    return render_batch(2, 96, 192, seed=4, max_disp_px=32.0)


def test_hints_are_sgbms_confident_matches_of_each_pair_over_the_whole_range(scenes):
    hints = sgbm_hints(scenes["left"], scenes["right"], 32.0)
    assert hints.shape == (2, 1, 96, 192) and hints.dtype == torch.float32
    for i in range(2):
        left, right = ((scenes[side][i].permute(1, 2, 0) * 255).round().byte().numpy() for side in ("left", "right"))
        if resolved_sgbm_input("auto", left, right) == "normalized":  # the hybrid's default, sgbm_input=auto
            left, right = normalize_local_contrast(left), normalize_local_contrast(right)
        expected = confident_disparity(
            left, right, 32.0, 10, mirrored_check=False, quarter_width_cap=False, three_way=True
        )  # the hybrid's settings, without its range cap
        np.testing.assert_array_equal(hints[i, 0].numpy(), np.nan_to_num(expected, nan=0.0))
    assert 0.2 < float((hints > 0).float().mean()) < 0.95


def test_thinning_keeps_every_right_hint_and_wrong_ones_up_to_their_share(scenes):
    hints = sgbm_hints(scenes["left"], scenes["right"], 32.0)
    gt = scenes["disparity"]
    thinned = thin_wrong_hints(hints, gt, torch.Generator().manual_seed(0))
    right = (hints[:, 0] > 0) & ((hints[:, 0] - gt).abs() <= RIGHT_PX)
    torch.testing.assert_close(thinned[:, 0][right], hints[:, 0][right])
    wrong_before = (hints[:, 0] > 0) & ~right
    assert float(wrong_before.float().sum()) > 0.1 * float((hints > 0).float().sum())  # SGBM errs on these scenes
    kept = thinned[:, 0] > 0
    for i in range(2):
        share = float((kept[i] & ~right[i]).float().sum() / kept[i].float().sum())
        assert 0.02 < share < 0.08, share  # WRONG_SHARE = 5 %, drawn at random
    again = thin_wrong_hints(hints, gt, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, thinned)


def test_a_hinted_stream_adds_hints_to_every_batch(scenes):
    stream = HintedStream(lambda step: {key: scenes[key] for key in ("left", "right", "disparity")}, 32.0)
    batch = stream(0)
    assert set(batch) == {"left", "right", "disparity", "hints"}
    assert "with SGBM's confident matches as hints (5% of them wrong at most)" in stream.describe()
    torch.testing.assert_close(stream(3)["hints"], stream(3)["hints"])  # the thinning depends on the step only
    assert not torch.equal(stream(3)["hints"], stream(4)["hints"])  # ... and does depend on it
    # the batches' hints are thinned: at most about WRONG_SHARE wrong (SGBM's own are over 10 % wrong here)
    hints, gt = batch["hints"][:, 0], scenes["disparity"]
    wrong = (hints > 0) & ((hints - gt).abs() > RIGHT_PX)
    assert float(wrong.sum()) < 0.08 * float((hints > 0).sum())


def test_thinning_by_hand_keeps_hints_where_the_truth_is_unknown():
    hints = torch.tensor([[[[5.0, 5.0, 9.0, 7.0, 0.0, 8.0]]]])
    gt = torch.tensor([[[5.0, 6.0, 5.0, 0.0, 3.0, 5.0]]])  # right, right (1 px off), wrong, unknown, none, wrong
    thinned = thin_wrong_hints(hints, gt, torch.Generator().manual_seed(0), wrong_share=0.0)
    assert thinned.flatten().tolist() == [5.0, 5.0, 0.0, 7.0, 0.0, 0.0]
    # a share as large as the right ones: keep probability 0.5 / 0.5 * 2 right / 2 wrong = 1, all kept
    kept = thin_wrong_hints(hints, gt, torch.Generator().manual_seed(0), wrong_share=0.5)
    torch.testing.assert_close(kept, hints)


def test_a_guided_network_trains_and_validates_with_hints(tmp_path):
    lines = []
    train(tiny_config(tmp_path, settings={"max_disp": 32, "guided": True}, steps=2, val_every=2), echo=lines.append)
    assert any("with SGBM's confident matches as hints" in line for line in lines)
    state = read_torch_file(tmp_path / "last.pt")
    assert state["settings"]["guided"] is True
    trained = state["state_dict"]["guidance.to_cost.weight"]
    assert float(trained.abs().max()) > 0  # zero at the start: the hints reached the loss
    assert len(records(tmp_path, "val")) == 2


def test_guided_training_refuses_crops_no_wider_than_the_range_before_making_the_run(tmp_path):
    from rtstereo.errors import InputError

    config = tiny_config(tmp_path / "run", settings={"max_disp": 128, "guided": True})  # 64x128 crops
    with pytest.raises(InputError, match=r"SGBM's hints, which search its whole range \(128 px\): .* got 128 px"):
        train(config)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------- the hybrid's hints, for adapting
def _uint8_pair(scenes, i: int = 0):
    return [(scenes[side][i].permute(1, 2, 0) * 255).round().byte().numpy() for side in ("left", "right")]


def test_runtime_hints_are_the_hybrids_confident_matches_of_a_whole_frame(scenes):
    from rtstereo.train.hints import hybrid_hint_settings, runtime_hints

    left, right = _uint8_pair(scenes)
    settings = hybrid_hint_settings({"uniqueness": 20, "network": "ignored.onnx"})
    assert settings["uniqueness"] == 20 and settings["three_way"] is True  # the registry's, with the override
    # what HybridPredictor._confident computes with these settings (192 px, capped at a quarter of the width)
    expected = confident_disparity(left, right, 192, 20, 1.0, mirrored_check=False, three_way=True)
    np.testing.assert_array_equal(runtime_hints(left, right, settings), expected)
    # MODE_SGBM (three_way false) finds other matches: the setting reaches OpenCV
    other = runtime_hints(left, right, {**settings, "three_way": False})
    assert not np.array_equal(np.isfinite(other), np.isfinite(expected))


def test_runtime_hints_of_a_crop_search_as_far_as_on_the_whole_frame(scenes):
    from rtstereo.models.sgbm import confident_disparity
    from rtstereo.train.hints import hybrid_hint_settings, runtime_hints

    left, right = _uint8_pair(scenes)  # 96x192, disparities up to 32 px
    settings = hybrid_hint_settings()
    wide = runtime_hints(left, right, settings, frame_width=640)  # a 640-px frame: 160 px searched
    expected = confident_disparity(left, right, 160, 10, mirrored_check=False, quarter_width_cap=False, three_way=True)
    np.testing.assert_array_equal(wide, expected)
    alone = runtime_hints(left, right, settings)  # a quarter of its own width: 48 px
    small = runtime_hints(left, right, settings, frame_width=64)  # a quarter of 64: 16 px
    assert np.nanmax(alone) > 16 >= np.nanmax(small)
    narrow = runtime_hints(left[:, :16], right[:, :16], settings)
    assert narrow.shape == (96, 16) and not np.isfinite(narrow).any()  # too narrow for OpenCV: no hints


def test_tensor_runtime_hints_batch_the_pairs(scenes):
    from rtstereo.train.hints import hybrid_hint_settings, runtime_hints, tensor_runtime_hints

    settings = hybrid_hint_settings()
    hints = tensor_runtime_hints(scenes["left"], scenes["right"], settings)
    assert hints.shape == (2, 1, 96, 192)
    for i in range(2):
        expected = np.nan_to_num(runtime_hints(*_uint8_pair(scenes, i), settings), nan=0.0)
        np.testing.assert_array_equal(hints[i, 0].numpy(), expected)
