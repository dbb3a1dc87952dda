"""rtnet: shapes, output forms, building blocks against naive versions, ONNX parity, checkpoints."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtstereo.errors import CheckpointError, InputError
from rtstereo.models import get_spec
from rtstereo.models.checkpoint import save_checkpoint
from rtstereo.models.registry import import_object
from rtstereo.models.rtnet import (
    RTNet,
    build_rtnet,
    convex_upsample,
    correlation,
    load_rtnet_checkpoint,
    settings_of,
    shift_columns,
    soft_argmin,
    warp_right,
)
from rtstereo.runtime.preprocess import pad_to_divisor


def randomized(model: RTNet, seed: int = 0) -> RTNet:
    """Every weight and batch-norm statistic random, so no path hides behind a zero initialisation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(0.5 + values if name.endswith("running_var") else (values - 0.5) * 0.4)
    return model


@pytest.fixture(scope="module")
def small_model():
    return randomized(build_rtnet({"max_disp": 32})).eval()


@pytest.fixture(scope="module")
def small_half_model():
    return randomized(build_rtnet({"max_disp": 32, "half_refinement": True}), seed=3).eval()


@pytest.fixture(scope="module")
def small_full_model():
    settings = {"max_disp": 32, "half_refinement": True, "full_refinement": True}
    return randomized(build_rtnet(settings), seed=5).eval()


# ----------------------------------------------------------------------------------- cardinality
@pytest.mark.parametrize("size_hw", [(37, 71), (64, 64), (33, 97)])
def test_odd_sizes_run_after_padding(small_model, size_hw):
    image = np.random.default_rng(0).random((1, 3, *size_hw), dtype=np.float32)
    padded, (pad_h, pad_w) = pad_to_divisor(image, get_spec("rtnet").size_divisor)
    assert padded.shape[-2] % 32 == 0 and padded.shape[-1] % 32 == 0
    with torch.no_grad():
        out = small_model(torch.from_numpy(padded), torch.from_numpy(padded))
    assert out.shape == (1, *padded.shape[-2:])
    cropped = out[:, : size_hw[0], : size_hw[1]]
    assert cropped.shape == (1, *size_hw)
    assert torch.isfinite(cropped).all() and (cropped >= 0).all()


def test_training_mode_returns_coarse_and_fine_predictions():
    model = build_rtnet({"max_disp": 32}).train()
    left, right = torch.randn(2, 3, 64, 96), torch.randn(2, 3, 64, 96)
    outputs = model(left, right)
    assert isinstance(outputs, list) and len(outputs) == 2
    assert all(o.shape == (2, 64, 96) for o in outputs)
    sum(o.mean() for o in outputs).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_eval_mode_returns_one_disparity_map():
    with torch.no_grad():
        out = build_rtnet({"max_disp": 64}).eval()(torch.randn(1, 3, 64, 128), torch.randn(1, 3, 64, 128))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 64, 128)
    assert float(out.max()) <= 64 * 1.01


def test_parameter_count_in_budget():
    parameters = sum(p.numel() for p in build_rtnet().parameters())
    assert 0.5e6 <= parameters <= 3e6, parameters


def test_registry_entry_builds_the_default_range():
    spec = get_spec("rtnet")
    model = import_object(spec.builder)(spec.resolve_settings({}))
    assert isinstance(model, RTNet) and model.max_disp == 192 and model.levels == 48


# ------------------------------------------------------------------------------------- exceptions
@pytest.mark.parametrize("max_disp", [100, 0, -32, 48, True, 64.0])
def test_max_disp_must_be_a_multiple_of_32(max_disp):
    with pytest.raises(InputError, match="multiple of 32"):
        build_rtnet({"max_disp": max_disp})


@pytest.mark.parametrize(
    ("left_shape", "right_shape", "message"),
    [
        ((1, 3, 48, 64), (1, 3, 48, 64), "multiples of 32"),
        ((1, 3, 64, 64), (1, 3, 64, 96), "the same shape"),
        ((1, 1, 64, 64), (1, 1, 64, 64), r"left as \(N, 3, H, W\)"),
    ],
)
def test_inputs_of_the_wrong_shape_are_refused(small_model, left_shape, right_shape, message):
    with pytest.raises(InputError, match=message):
        small_model(torch.zeros(left_shape), torch.zeros(right_shape))


def test_unknown_setting_is_refused():
    with pytest.raises(InputError, match="unknown settings"):
        build_rtnet({"max_disp": 64, "iters": 3})
    with pytest.raises(InputError, match="half_refinement must be true or false"):
        build_rtnet({"max_disp": 64, "half_refinement": "yes"})
    with pytest.raises(InputError, match="full_refinement must be true or false"):
        build_rtnet({"max_disp": 64, "full_refinement": 1})


def test_half_refinement_adds_a_third_training_prediction():
    model = build_rtnet({"max_disp": 32, "half_refinement": True}).train()
    outputs = model(torch.randn(2, 3, 64, 96), torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outputs] == [(2, 64, 96)] * 3


@pytest.mark.parametrize("half", [True, False])
def test_full_refinement_adds_a_prediction_and_trains(half):
    model = randomized(build_rtnet({"max_disp": 32, "half_refinement": half, "full_refinement": True})).train()
    outputs = model(torch.randn(2, 3, 64, 96), torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outputs] == [(2, 64, 96)] * (4 if half else 3)
    outputs[-1].mean().backward()
    assert model.full_refinement.residual.weight.grad.abs().sum() > 0
    assert model.full_refinement.entry_cost.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- building blocks
def test_warp_right_interpolates_linearly_and_is_zero_outside_the_image():
    right = torch.arange(10.0).view(1, 1, 1, 10).repeat(1, 2, 3, 1) * torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)
    disparity = torch.full((1, 1, 3, 10), 2.25)
    warped = warp_right(right, disparity)
    columns = torch.arange(10.0) - 2.25  # the right image's values are their own column numbers
    expected = torch.where(columns >= 0, columns, torch.zeros(()))
    torch.testing.assert_close(warped[0, 0, 1], expected)
    torch.testing.assert_close(warped[0, 1, 1], -2 * expected)
    # Integer disparities reproduce a plain shift of the features.
    features = torch.randn(1, 4, 5, 12)
    torch.testing.assert_close(warp_right(features, torch.full((1, 1, 5, 12), 3.0))[..., 3:], features[..., :-3])


def test_shift_columns_moves_content_and_pads_with_zeros():
    x = torch.arange(1.0, 6.0).view(1, 1, 1, 5)
    assert shift_columns(x, 2).flatten().tolist() == [3, 4, 5, 0, 0]
    assert shift_columns(x, -1).flatten().tolist() == [0, 1, 2, 3, 4]
    assert shift_columns(x, 0) is x


def test_half_refinement_starts_as_the_identity(small_model):
    """Added to a trained network (zero last layer), the stage first changes nothing."""
    model = build_rtnet({"max_disp": 32, "half_refinement": True}).eval()
    model.load_state_dict(small_model.state_dict(), strict=False)
    inputs = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs), small_model(*inputs))
        model.half_refinement.residual.bias.fill_(0.25)  # 0.25 half-pixel = 0.5 px everywhere
        torch.testing.assert_close(model(*inputs), F.relu(small_model(*inputs) + 0.5))


def test_full_refinement_starts_as_the_identity(small_half_model):
    """Added to a trained network (zero last layer), the full-resolution stage first changes nothing."""
    model = build_rtnet({"max_disp": 32, "half_refinement": True, "full_refinement": True}).eval()
    model.load_state_dict(small_half_model.state_dict(), strict=False)
    inputs = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs), small_half_model(*inputs))
        model.full_refinement.residual.bias.fill_(0.5)
        torch.testing.assert_close(model(*inputs), F.relu(small_half_model(*inputs) + 0.5))


def test_full_refinement_reads_the_full_resolution_images():
    """Its evidence is |left - right warped by d, shifted by k| per colour, so it tells apart right
    images that differ only within 2x2 blocks, which every 1/2-resolution stage averages first."""
    stage = randomized(build_rtnet({"max_disp": 32, "full_refinement": True}), seed=2).full_refinement.eval()
    generator = torch.Generator().manual_seed(0)
    left = torch.randn(1, 3, 32, 64, generator=generator)
    right = torch.randn(1, 3, 32, 64, generator=generator)
    checker = (torch.arange(64).view(1, 64) + torch.arange(32).view(32, 1)) % 2 * 2.0 - 1.0
    disparity = torch.full((1, 32, 64), 3.0)
    features = torch.randn(1, 16, 16, 32, generator=generator)
    with torch.no_grad():
        plain = stage(disparity, left, right, features)
        textured = stage(disparity, left, right + checker, features)
    assert not torch.allclose(plain, textured)
    assert F.avg_pool2d(checker.view(1, 1, 32, 64), 2).abs().max() == 0  # invisible at 1/2


def test_correlation_matches_shifted_products():
    generator = torch.Generator().manual_seed(0)
    left, right = torch.randn(2, 8, 5, 20, generator=generator), torch.randn(2, 8, 5, 20, generator=generator)
    levels = 7
    cost = correlation(left, right, levels)
    unit_left, unit_right = F.normalize(left, dim=1), F.normalize(right, dim=1)
    expected = torch.zeros(2, levels, 5, 20)
    for d in range(levels):
        expected[:, d, :, d:] = (unit_left[..., d:] * unit_right[..., : 20 - d]).sum(1)
    torch.testing.assert_close(cost, expected, atol=1e-5, rtol=1e-5)


def test_correlation_peaks_at_the_true_shift():
    features = torch.randn(1, 16, 4, 40)
    shift = 3
    right = torch.roll(features, -shift, dims=3)  # right view: content moved left by the disparity
    cost = correlation(features, right, 8)
    assert (cost[0, :, :, shift:-shift].argmax(0) == shift).all()


def test_soft_argmin_is_the_softmax_expectation():
    logits = torch.randn(2, 12, 3, 5) * 3
    disparity, confidence = soft_argmin(logits, 4.0)
    probability = torch.softmax(logits, 1)
    expected = (probability * (torch.arange(12.0) * 4).view(1, -1, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(disparity, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(confidence, probability.amax(1, keepdim=True), atol=1e-6, rtol=1e-5)


def test_convex_upsample_matches_softmax_over_unfolded_neighbours():
    factor, h, w = 4, 3, 5
    disparity = torch.rand(2, 1, h, w) * 20
    mask = torch.randn(2, 9 * factor * factor, h, w)
    out = convex_upsample(disparity, mask, factor)
    weights = torch.softmax(mask.view(2, 9, factor, factor, h, w), 1)
    neighbours = F.unfold(F.pad(disparity, (1, 1, 1, 1), mode="replicate"), 3).view(2, 9, 1, 1, h, w)
    fine = (weights * neighbours).sum(1)  # (2, factor, factor, h, w)
    expected = fine.permute(0, 3, 1, 4, 2).reshape(2, h * factor, w * factor)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_convex_upsample_keeps_a_constant_map():
    out = convex_upsample(torch.full((1, 1, 4, 4), 7.5), torch.randn(1, 9 * 4, 4, 4), 2)
    torch.testing.assert_close(out, torch.full((1, 8, 8), 7.5))


# --------------------------------------------------------------------------------------- export
@pytest.mark.parametrize("model_fixture", ["small_model", "small_half_model", "small_full_model"])
def test_onnx_export_matches_torch(request, model_fixture):
    ort = pytest.importorskip("onnxruntime")
    small_model = request.getfixturevalue(model_fixture)
    generator = torch.Generator().manual_seed(1)
    left, right = (
        torch.randn(1, 3, 64, 128, generator=generator),
        torch.randn(1, 3, 64, 128, generator=generator),
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            small_model,
            (left, right),
            buffer,
            opset_version=17,
            dynamo=False,
            input_names=["left", "right"],
            output_names=["disparity"],
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"left": left.numpy(), "right": right.numpy()})
    with torch.no_grad():
        torch_out = small_model(left, right).numpy()
    assert onnx_out.shape == (1, 64, 128)
    np.testing.assert_allclose(onnx_out, torch_out, atol=2e-3, rtol=1e-4)
    assert torch_out.std() > 0.01  # a meaningful comparison, not two constant maps


# ---------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path, small_model):
    path = tmp_path / "rtnet.pt"
    save_checkpoint(path, "rtnet", {"max_disp": 32}, small_model.state_dict(), step=17)
    fresh = build_rtnet({"max_disp": 32}).eval()
    meta = load_rtnet_checkpoint(fresh, path)
    settings = {"max_disp": 32, "half_refinement": False, "full_refinement": False}
    assert meta == {"model": "rtnet", "settings": settings, "step": 17}
    inputs = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(*inputs), small_model(*inputs))


def test_bare_state_dict_loads(tmp_path, small_model):
    path = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in small_model.state_dict().items()}, path)
    assert load_rtnet_checkpoint(build_rtnet({"max_disp": 32}), path)["model"] == "rtnet"


def test_loader_refuses_missing_and_damaged_files(tmp_path):
    model = build_rtnet({"max_disp": 32})
    with pytest.raises(CheckpointError, match="not found"):
        load_rtnet_checkpoint(model, tmp_path / "absent.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_rtnet_checkpoint(model, damaged)


def test_loader_refuses_another_architecture(tmp_path, small_model):
    path = tmp_path / "other.pt"
    save_checkpoint(path, "gwcnet-g", {"max_disp": 32}, small_model.state_dict())
    with pytest.raises(CheckpointError, match="'gwcnet-g' checkpoint"):
        load_rtnet_checkpoint(build_rtnet({"max_disp": 32}), path)


def test_loader_refuses_other_settings(tmp_path, small_model):
    path = tmp_path / "wide.pt"
    save_checkpoint(path, "rtnet", {"max_disp": 32}, small_model.state_dict())
    with pytest.raises(CheckpointError, match="max_disp=32"):
        load_rtnet_checkpoint(build_rtnet({"max_disp": 64}), path)


def test_loader_refuses_a_checkpoint_with_another_stage_set(tmp_path, small_half_model):
    path = tmp_path / "half.pt"
    save_checkpoint(path, "rtnet", {"max_disp": 32, "half_refinement": True}, small_half_model.state_dict())
    with pytest.raises(CheckpointError, match="half_refinement=true"):
        load_rtnet_checkpoint(build_rtnet({"max_disp": 32}), path)
    assert load_rtnet_checkpoint(build_rtnet({"max_disp": 32, "half_refinement": True}), path)["settings"] == {
        "max_disp": 32,
        "half_refinement": True,
        "full_refinement": False,
    }


def test_loader_names_the_full_stage_setting(tmp_path, small_full_model):
    path = tmp_path / "full.pt"
    settings = {"max_disp": 32, "half_refinement": True, "full_refinement": True}
    save_checkpoint(path, "rtnet", settings, small_full_model.state_dict())
    with pytest.raises(CheckpointError, match="--set full_refinement=true"):
        load_rtnet_checkpoint(build_rtnet({"max_disp": 32, "half_refinement": True}), path)
    assert load_rtnet_checkpoint(build_rtnet(settings), path)["settings"] == settings


def test_loader_names_every_setting_that_differs_at_once(tmp_path, small_full_model):
    """`--model rtnet --weights training/default/state.pt` (README, Methods) failed once per setting."""
    path = tmp_path / "full.pt"
    settings = {"max_disp": 32, "half_refinement": True, "full_refinement": True}
    save_checkpoint(path, "rtnet", settings, small_full_model.state_dict())
    with pytest.raises(CheckpointError) as info:
        load_rtnet_checkpoint(build_rtnet({"max_disp": 64}), path)
    message = str(info.value)
    assert "--set max_disp=32 --set half_refinement=true --set full_refinement=true" in message
    assert f"--model {path}" in message
    # given as the model already, with --max-disp 64: "give the checkpoint as the model" alone was no way out
    assert f"--model {path}; rtstereo export {path} ...) and leave these settings out: it reads them" in message


def test_the_settings_a_checkpoint_needs_are_named_in_python_too(tmp_path, small_full_model):
    """rtstereo.load("rtnet", weights=...) was told "--set half_refinement=true ... --model PATH", the command line's
    words alone."""
    path = tmp_path / "full.pt"
    save_checkpoint(path, "rtnet", {"max_disp": 32, "half_refinement": True, "full_refinement": True}, {})
    with pytest.raises(CheckpointError) as info:
        load_rtnet_checkpoint(build_rtnet({"max_disp": 32}), path)
    message = str(info.value)
    assert "(half_refinement=True, full_refinement=True in Python), or give the checkpoint" in message
    assert message.endswith(f"it reads them from the file (rtstereo.load('{path}') in Python)")


def test_a_setting_given_with_the_checkpoint_as_the_model_is_named_to_leave_out(tmp_path, small_full_model):
    """`--model FILE --max-disp 64` was told to "give the checkpoint as the model", which it had done."""
    import rtstereo
    from rtstereo.export.onnx_export import build_network

    path = tmp_path / "full.pt"
    settings = {"max_disp": 32, "half_refinement": True, "full_refinement": True}
    save_checkpoint(path, "rtnet", settings, small_full_model.state_dict())
    said = rf"{path} holds rtnet weights built with max_disp=32; max_disp=64 would be another .*: leave max_disp out"
    with pytest.raises(InputError, match=said):
        rtstereo.load(str(path), max_disp=64)
    with pytest.raises(InputError, match=said):
        build_network(str(path), None, {"max_disp": 64})
    with pytest.raises(InputError, match="half_refinement=False would be .*: leave half_refinement out"):
        rtstereo.load(str(path), half_refinement=False)
    assert rtstereo.load(str(path), max_disp=32.0).settings["max_disp"] == 32  # the file's own value is fine


@pytest.mark.parametrize("max_disp, up", [(100, "128"), (20, "32"), (-5, "e.g. 192")])
def test_a_max_disp_off_the_grid_names_the_next_multiple_of_32(max_disp, up):
    with pytest.raises(InputError, match=rf"got {max_disp}; round it up to the next multiple of 32 \({up}\)"):
        build_rtnet({"max_disp": max_disp})  # 100 said "(e.g. 192)"


def test_loader_refuses_mismatched_weights(tmp_path, small_model):
    path = tmp_path / "bare.pt"
    torch.save(small_model.state_dict(), path)  # no settings inside: only the shapes can tell
    with pytest.raises(CheckpointError, match="another shape"):
        load_rtnet_checkpoint(build_rtnet({"max_disp": 64}), path)


# --------------------------------------------------------------------------------------- guidance
def guided_pair(size_hw: tuple[int, int] = (64, 96)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    left, right = (torch.randn(1, 3, *size_hw, generator=generator) for _ in range(2))
    hints = torch.rand(1, 1, *size_hw, generator=generator) * 30
    hints[..., ::3, :] = 0  # a third of the rows without hints
    return left, right, hints


def test_a_guided_network_starts_as_the_plain_one():
    plain = randomized(build_rtnet({"max_disp": 32}), seed=7).eval()
    guided = build_rtnet({"max_disp": 32, "guided": True}).eval()
    missing = set(guided.load_state_dict(plain.state_dict(), strict=False).missing_keys)
    assert missing == {"guidance.to_cost.weight", "guidance.cue_weights"}
    left, right, hints = guided_pair()
    with torch.no_grad():
        reference = plain(left, right)
        torch.testing.assert_close(guided(left, right), reference)
        torch.testing.assert_close(guided(left, right, hints), reference)  # zero-initialised: no effect yet


def test_hints_change_a_trained_guided_network_and_also_come_as_a_fourth_channel():
    guided = randomized(build_rtnet({"max_disp": 32, "guided": True}), seed=9).eval()
    left, right, hints = guided_pair()
    with torch.no_grad():
        unguided, with_hints = guided(left, right), guided(left, right, hints)
        fourth_channel = guided(torch.cat([left, hints], 1), right)
    assert (with_hints - unguided).abs().mean() > 1e-3
    torch.testing.assert_close(fourth_channel, with_hints)


def test_the_guidance_bump_peaks_at_the_hinted_level_and_scales_with_the_share_of_hints():
    guided = build_rtnet({"max_disp": 32, "guided": True})
    guidance = guided.guidance
    with torch.no_grad():
        guidance.to_cost.weight.zero_()
        guidance.to_cost.weight[0, :, 0, 0] = torch.arange(guidance.centres.shape[1]) == 3  # reads level 3
        hints = torch.zeros(1, 1, 8, 8)
        hints[..., :4, :4] = 12.0  # level 3 (12 px) on the whole first 4x4 block
        hints[..., :4, 4:6] = 12.0  # half of the second block
        cost, _ = guidance(hints)
    assert cost[0, 0, 0, 0] == pytest.approx(1.0)
    assert cost[0, 0, 0, 1] == pytest.approx(0.5)
    assert cost[0, 0, 1, 0] == 0.0


def test_hints_are_refused_by_a_plain_network_and_checked_for_shape(small_model):
    left, right, hints = guided_pair()
    with pytest.raises(InputError, match="built without guided=true"):
        small_model(left, right, hints)
    guided = build_rtnet({"max_disp": 32, "guided": True}).eval()
    with pytest.raises(InputError, match=r"hints must be \(N, 1, H, W\)"):
        guided(left, right, hints[..., :32])


def test_guided_is_recorded_only_when_on():
    assert "guided" not in settings_of(build_rtnet({"max_disp": 32}))
    assert settings_of(build_rtnet({"max_disp": 32, "guided": True}))["guided"] is True
    with pytest.raises(InputError, match="guided must be true or false"):
        build_rtnet({"guided": "yes"})
