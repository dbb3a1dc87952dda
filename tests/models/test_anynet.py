"""AnyNet: the original's outputs on a real KITTI crop, the plain-PyTorch SPN, building and loading."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtstereo.errors import CheckpointError, InputError  # noqa: E402
from rtstereo.models.anynet import (  # noqa: E402
    AnyNet,
    AnyNetStage,
    DepthStackedConv3d,
    build_anynet,
    load_anynet_checkpoint,
    normalize_gates,
    propagate_left_to_right,
)
from rtstereo.models.checkpoint import save_checkpoint  # noqa: E402
from rtstereo.runtime.preprocess import normalize  # noqa: E402

FIXTURE = ("fixtures", "golden", "anynet_kitti2015_io.npz")
WEIGHTS_2015 = ("weights", "anynet", "anynet_kitti2015.tar")
GT_DISP = ("data", "real", "kitti2012", "000070", "disp_occ", "000070_10.png")
CROP_ROWS, CROP_COLS = slice(120, 376), slice(300, 812)  # where the fixture's crop comes from


@functools.lru_cache(maxsize=1)
def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@functools.lru_cache(maxsize=1)
def _outputs_on_fixture(fixture_path: str, weights_path: str) -> tuple[np.ndarray, ...]:
    """All four stage outputs ``(256, 512)`` of the given weights on the fixture crop (run once)."""
    golden = _load_npz(fixture_path)
    net = AnyNet().eval()
    load_anynet_checkpoint(net, weights_path)
    with torch.no_grad():
        outputs = net(torch.from_numpy(golden["left"]), torch.from_numpy(golden["right"]))
    return tuple(output[0].numpy() for output in outputs)


@pytest.fixture
def golden(shared):
    return _load_npz(str(shared(*FIXTURE)))


@pytest.fixture
def kitti2015_outputs(shared):
    return _outputs_on_fixture(str(shared(*FIXTURE)), str(shared(*WEIGHTS_2015)))


def _d1_percent(disparity_px: np.ndarray, gt_px: np.ndarray) -> float:
    """KITTI D1: % of valid ground-truth pixels off by more than 3 px and 5 %."""
    valid = gt_px > 0
    error = np.abs(disparity_px - gt_px)
    return 100.0 * float(((error > 3) & (error > 0.05 * gt_px))[valid].mean())


def _random_pair(height: int = 32, width: int = 64, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    left = torch.randn(1, 3, height, width, generator=generator)
    return left, torch.randn(1, 3, height, width, generator=generator)


# --------------------------------------------------------------------------------------------------
# Faithfulness to the original (real weights, real image)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_stages_reproduce_the_original(golden, kitti2015_outputs, stage):
    reference = golden[f"disp_stage{stage}"][0, 0]
    np.testing.assert_allclose(kitti2015_outputs[stage - 1], reference, rtol=0, atol=1e-3)


def test_imagenet_normalisation_matches_the_fixture_input(golden):
    # The CLI path (uint8 RGB -> normalize) must feed the network what the original was fed.
    for side in ("left", "right"):
        ours = normalize(golden[f"{side}_rgb"], "imagenet")
        np.testing.assert_allclose(ours, golden[side], rtol=0, atol=1e-5)


def test_spn_with_real_weights_keeps_d1_reasonable(kitti2015_outputs, shared):
    from PIL import Image

    gt_px = np.asarray(Image.open(shared(*GT_DISP)), dtype=np.float32)[CROP_ROWS, CROP_COLS] / 256.0
    d1_stage3 = _d1_percent(kitti2015_outputs[2], gt_px)
    d1_spn = _d1_percent(kitti2015_outputs[3], gt_px)
    change_px = np.abs(kitti2015_outputs[3] - kitti2015_outputs[2]).mean()
    # Measured: stage 3 7.6 %, SPN 8.2 %, mean change 0.42 px. The SPN must act, but stay close.
    assert d1_stage3 < 9.0
    assert d1_spn < 10.0 and d1_spn < d1_stage3 + 1.5, (d1_stage3, d1_spn)
    assert 0.1 < change_px < 1.5


# --------------------------------------------------------------------------------------------------
# Spatial propagation against an obviously correct reference
# --------------------------------------------------------------------------------------------------


def _propagate_reference(x, g_up, g_mid, g_down):
    """Pixel by pixel, as the original CUDA kernel: gates read at (y, x), 0 where a neighbour is outside."""
    n_batch, channels, height, width = x.shape
    h = np.zeros_like(x)
    for n in range(n_batch):
        for c in range(channels):
            for col in range(width):
                for row in range(height):
                    total = 0.0
                    gate_sum = 0.0
                    for gate, dy in ((g_up, -1), (g_mid, 0), (g_down, 1)):
                        if col - 1 >= 0 and 0 <= row + dy < height:
                            g = gate[n, c, row, col]
                            total += g * h[n, c, row + dy, col - 1]
                            gate_sum += g
                    h[n, c, row, col] = (1.0 - gate_sum) * x[n, c, row, col] + total
    return h


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 1, 4), (1, 2, 6, 1)])
def test_propagation_matches_the_reference(shape):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=generator, dtype=torch.float64)
    raw_gates = torch.randn(shape[0], 3 * shape[1], *shape[2:], generator=generator, dtype=torch.float64)
    gates = normalize_gates(raw_gates, shape[1])
    ours = propagate_left_to_right(x, *gates).numpy()
    reference = _propagate_reference(x.numpy(), *(g.numpy() for g in gates))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)


def test_normalised_gates_sum_to_at_most_one():
    gates = normalize_gates(torch.randn(2, 12, 4, 5), 4)
    assert gates[0].shape == (2, 4, 4, 5)
    assert float(sum(g.abs() for g in gates).max()) <= 1.0 + 1e-6


def test_propagation_with_zero_gates_is_identity():
    x = torch.randn(1, 2, 4, 6)
    zero = torch.zeros_like(x)
    torch.testing.assert_close(propagate_left_to_right(x, zero, zero, zero), x)


def test_depth_stacked_conv3d_equals_conv3d():
    torch.manual_seed(0)
    ours = DepthStackedConv3d(3, 4)
    x = torch.randn(2, 3, 5, 6, 7)
    expected = torch.nn.functional.conv3d(x, ours.weight, padding=1)
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Building, stages and inputs
# --------------------------------------------------------------------------------------------------


def test_build_returns_each_stage_of_the_full_network():
    torch.manual_seed(0)
    full = AnyNet().eval()
    left, right = _random_pair(16, 32)
    with torch.no_grad():
        everything = full(left, right)
        assert len(everything) == 4
        for stage in (1, 2, 3, 4):
            net = build_anynet({"stage": stage}).eval()
            net.load_state_dict(full.state_dict())
            disparity = net(left, right)
            assert disparity.shape == (1, 16, 32)
            torch.testing.assert_close(disparity, everything[stage - 1])


def test_anynet_without_spn_returns_three_stages():
    with torch.no_grad():
        outputs = AnyNet(with_spn=False).eval()(*_random_pair(16, 32))
    assert [tuple(o.shape) for o in outputs] == [(1, 16, 32)] * 3


def test_the_range_models_anynet_names_is_the_one_each_stage_reaches(monkeypatch):
    """`rtstereo models anynet` named no range (it is no setting: --max-disp is refused), and KITTI's nearest
    points, beyond 200 px at full size, are out of its reach: every level at its top gives the figures it names."""
    import rtstereo
    from rtstereo.models import anynet

    def top_level(cost, first_level):  # the soft-argmin at its last level, everywhere
        return torch.full((cost.shape[0], 1, *cost.shape[-2:]), float(first_level + cost.shape[1] - 1))

    monkeypatch.setattr(anynet, "regress", top_level)
    with torch.no_grad():
        outputs = AnyNet(with_spn=False).eval()(*_random_pair(64, 128))
    reach = [float(output.max()) for output in outputs]
    assert reach == [176.0, 192.0, 200.0]
    said = rtstereo.get_spec("anynet").setting_help["stage"]
    assert said.endswith("stage 1 reaches 176 px, stage 2 192 px, stage 3 200 px (stage 4 refines its map)"), said


def test_build_defaults_to_stage_3():
    net = build_anynet({})
    assert isinstance(net, AnyNetStage) and net.stage == 3 and net.settings == {"stage": 3}


@pytest.mark.parametrize("stage", [0, 5, -1, 2.5, "3", True])
def test_build_rejects_a_stage_outside_1_to_4(stage):
    with pytest.raises(InputError, match="stage must be 1, 2, 3"):
        build_anynet({"stage": stage})


def test_build_rejects_unknown_settings():
    with pytest.raises(InputError, match="no setting"):
        build_anynet({"stage": 3, "max_disp": 192})


def test_forward_stages_rejects_a_stage_outside_1_to_4():
    with pytest.raises(InputError, match="stages 1 to 4"):
        AnyNet().forward_stages(*_random_pair(16, 16), last_stage=5)


def test_anynet_rejects_wrong_stage_lists():
    with pytest.raises(InputError, match="three stages"):
        AnyNet(max_disp_list=(12, 3))


@pytest.mark.parametrize(
    ("left_shape", "right_shape", "message"),
    [
        ((1, 1, 32, 32), (1, 1, 32, 32), r"\(N, 3, H, W\)"),
        ((1, 3, 32, 32), (1, 3, 32, 48), "same shape"),
        ((1, 3, 40, 64), (1, 3, 40, 64), "multiples of 16"),
    ],
)
def test_forward_rejects_bad_inputs(left_shape, right_shape, message):
    net = build_anynet({"stage": 1})
    with pytest.raises(InputError, match=message):
        net(torch.zeros(left_shape), torch.zeros(right_shape))


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------


def test_original_checkpoint_loads_with_its_metadata(shared):
    metadata = load_anynet_checkpoint(build_anynet({"stage": 4}), shared(*WEIGHTS_2015))
    assert metadata == {"format": "anynet", "architecture": "anynet", "epoch": 299, "has_spn": True}


def test_rtstereo_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    source = build_anynet({"stage": 4})
    path = tmp_path / "anynet.ckpt"
    save_checkpoint(path, "anynet", source.settings, source.state_dict(), step=7)

    target = build_anynet({"stage": 4})
    metadata = load_anynet_checkpoint(target, path)
    assert metadata["format"] == "rtstereo" and metadata["settings"] == {"stage": 4}
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)


def test_file_without_spn_loads_for_stages_1_to_3_only(tmp_path):
    torch.manual_seed(0)
    source = AnyNet()
    without_spn = {f"module.{k}": v for k, v in source.state_dict().items() if "refine_spn" not in k}
    path = tmp_path / "no_spn.tar"
    torch.save({"epoch": 3, "state_dict": without_spn}, path)

    metadata = load_anynet_checkpoint(build_anynet({"stage": 3}), path)
    assert metadata["has_spn"] is False
    with pytest.raises(CheckpointError, match="without the SPN"):
        load_anynet_checkpoint(build_anynet({"stage": 4}), path)


def test_loader_rejects_a_file_of_another_layout(tmp_path):
    path = tmp_path / "other.tar"
    torch.save({"epoch": 1, "weights": [1, 2, 3]}, path)
    with pytest.raises(CheckpointError, match="expected a checkpoint with 'state_dict'"):
        load_anynet_checkpoint(AnyNet(), path)


def test_loader_rejects_another_architecture(tmp_path):
    path = tmp_path / "gwc.ckpt"
    save_checkpoint(path, "gwcnet-g", {"max_disp": 192}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="checkpoint of 'gwcnet-g'"):
        load_anynet_checkpoint(AnyNet(), path)


def test_loader_rejects_weights_of_other_shapes(tmp_path):
    state_dict = AnyNet().state_dict()
    state_dict["volume_postprocess.0.0.2.weight"] = torch.zeros(8, 1, 3, 3, 3)
    path = tmp_path / "other_shapes.tar"
    torch.save({"state_dict": state_dict}, path)
    with pytest.raises(CheckpointError, match="of another shape"):
        load_anynet_checkpoint(AnyNet(), path)


# --------------------------------------------------------------------------------------------------
# ONNX export
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stage", [3, 4])
def test_onnx_export_matches_pytorch(tmp_path, stage):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = build_anynet({"stage": stage}).eval()
    left, right = _random_pair(32, 64)
    path = tmp_path / "anynet.onnx"
    torch.onnx.export(net, (left, right), path, opset_version=17, input_names=["left", "right"], dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {"left": left.numpy(), "right": right.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(ours, net(left, right).numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_results_record_the_weights_file(tmp_path, monkeypatch, backend):
    """The published files of one network (SceneFlow, KITTI 2012, KITTI 2015) differ only in their values:
    without the file's name a result's record cannot say which of them made it."""
    import rtstereo

    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
        monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))  # exported on first use
    path = tmp_path / "kitti2012.tar"
    torch.save({"epoch": 1, "state_dict": AnyNet().state_dict()}, path)
    model = rtstereo.load("anynet", weights=path, backend=backend, settings={"stage": 1})
    image = np.random.default_rng(0).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    result = model.predict(image, image)
    assert result.settings["weights"] == str(path) and result.settings["backend"] == backend
    assert "weights" not in model.settings  # a record, not a setting a model could be built with
