"""CREStereo: faithfulness to the PyTorch port (golden fixtures), two-pass mode, checks, checkpoints."""

from __future__ import annotations

import functools
import warnings

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtstereo.errors import CheckpointError, InputError  # noqa: E402
from rtstereo.models import get_spec  # noqa: E402
from rtstereo.models.checkpoint import save_checkpoint  # noqa: E402
from rtstereo.models.crestereo import (  # noqa: E402
    CREStereo,
    CREStereoPredictor,
    build_crestereo,
    load_crestereo_checkpoint,
)
from rtstereo.models.registry import import_object  # noqa: E402

TOLERANCE_PX = 1e-3
ITERS = 4  # the fixture's setting


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@functools.lru_cache(maxsize=1)
def _golden_run(checkpoint: str, io_file: str):
    """Our outputs for the fixture's cases, computed once per session (each forward takes seconds)."""
    model = build_crestereo({"iters": ITERS, "two_pass": True}).eval()
    load_crestereo_checkpoint(model, checkpoint)
    with np.load(io_file) as io:
        tensors = {key: torch.from_numpy(io[key]) for key in io.files}
    with torch.no_grad():
        ours = {
            "flow_noinit": model.net(tensors["left"], tensors["right"], ITERS),
            "flow_half": model.net(tensors["left_half"], tensors["right_half"], ITERS),
            "flow_combined": model.net(tensors["left"], tensors["right"], ITERS, flow_init=tensors["flow_half"]),
            # the predictor takes RGB; the fixture's images are in the order the port was fed (BGR)
            "two_pass_disparity": model(tensors["left"].flip(1), tensors["right"].flip(1)),
        }
    return ours, tensors


def _golden(shared):
    checkpoint = shared("fixtures", "golden", "crestereo_random.pth")
    io_file = shared("fixtures", "golden", "crestereo_io.npz")
    return _golden_run(str(checkpoint), str(io_file))


def _max_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} vs reference {tuple(reference.shape)}"
    return float((ours - reference).abs().max())


def _rgb255(height: int = 32, width: int = 64, batch: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width) * 255.0


def _scene_bgr(height: int, width: int) -> np.ndarray:
    """A uint8 colour image whose channels differ (as cv2.imread returns a photo): smooth random blobs."""
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    small[..., 0] //= 4  # little blue, much red: reversing the channels changes the image
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _original_two_pass(net, left_bgr, right_bgr, iters):
    """megvii's test.py ``inference``: half-size pass (bilinear, align_corners=True), then the full-size pass."""
    half = (left_bgr.shape[2] // 2, left_bgr.shape[3] // 2)
    left_dw2 = torch.nn.functional.interpolate(left_bgr, size=half, mode="bilinear", align_corners=True)
    right_dw2 = torch.nn.functional.interpolate(right_bgr, size=half, mode="bilinear", align_corners=True)
    flow_dw2 = net(left_dw2, right_dw2, iters)
    return net(left_bgr, right_bgr, iters, flow_init=flow_dw2)[:, 0]


# --------------------------------------------------------------------------------------------------
# feature: the port's outputs, full 2-channel flow
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["flow_noinit", "flow_half", "flow_combined"])
def test_reproduces_port_outputs(shared, case):
    """No init (full and half size, iters=4: 2 + 2 + 4 steps) and half-size init (4 steps at 1/4)."""
    ours, io = _golden(shared)
    error = _max_error(ours[case], io[case])
    assert error <= TOLERANCE_PX, f"{case}: max |ours - port| = {error:.3g} px"


def test_two_pass_predictor_gives_combined_disparity(shared):
    ours, io = _golden(shared)
    error = _max_error(ours["two_pass_disparity"], io["flow_combined"][:, 0])
    assert error <= TOLERANCE_PX, f"two-pass disparity: max |ours - port| = {error:.3g} px"


def test_two_pass_half_size_inputs_match_fixture(shared):
    """The predictor's half-size resize is the one the fixture was made with."""
    _, io = _golden(shared)
    half = torch.nn.functional.interpolate(io["left"], scale_factor=0.5, mode="bilinear", align_corners=True)
    assert _max_error(half, io["left_half"]) <= 1e-4


# --------------------------------------------------------------------------------------------------
# smoke / cardinality
# --------------------------------------------------------------------------------------------------


def test_shapes_batch_and_iteration_counts():
    net = CREStereo().eval()
    left, right = _rgb255(batch=2), _rgb255(batch=2)
    with torch.no_grad():
        flow = net(left, right, iters=3)
        refined = net(left, right, iters=1, flow_init=flow[:, :, ::2, ::2])
        first = net(left[:1], right[:1], iters=3)
    assert flow.shape == (2, 2, 32, 64) and refined.shape == (2, 2, 32, 64)
    assert torch.isfinite(flow).all() and torch.isfinite(refined).all()
    # instance normalisation is per sample, so batching changes nothing
    assert _max_error(flow[:1], first) <= 1e-4


def test_single_pass_predictor_returns_channel_zero():
    model = CREStereoPredictor(iters=2).eval()
    left, right = _rgb255(), _rgb255()
    with torch.no_grad():
        assert torch.equal(model(left, right), model.net(left.flip(1), right.flip(1), 2)[:, 0])


@pytest.mark.parametrize("two_pass", [False, True])
def test_predictor_feeds_the_network_bgr_as_the_original_code(shared, two_pass):
    """megvii's test.py (and the port's test_model.py) feed ``cv2.imread``'s BGR unconverted, and the weights were
    trained on images read so: rtstereo's RGB is reversed before the network. It was fed RGB, the colour channels
    of the released weights swapped."""
    assert get_spec("crestereo").channel_order == "bgr"  # what `rtstereo models crestereo` says
    model = build_crestereo({"iters": 2, "two_pass": two_pass}).eval()
    load_crestereo_checkpoint(model, shared("fixtures", "golden", "crestereo_random.pth"))
    rgb = torch.from_numpy(cv2.cvtColor(_scene_bgr(64, 64), cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None].float()
    right = torch.roll(rgb, -3, dims=3)
    left_bgr, right_bgr = rgb.flip(1), right.flip(1)  # what cv2.imread gives the original
    with torch.no_grad():
        ours = model(rgb, right)
        if two_pass:
            original = _original_two_pass(model.net, left_bgr, right_bgr, 2)
        else:
            original = model.net(left_bgr, right_bgr, 2)[:, 0]
        swapped = model(left_bgr, right_bgr)
    assert _max_error(ours, original) <= TOLERANCE_PX
    assert _max_error(swapped, original) > 100 * TOLERANCE_PX  # the test sees a swap


def test_builder_and_registry_contract():
    spec = get_spec("crestereo")
    assert import_object(spec.builder) is build_crestereo
    assert import_object(spec.checkpoint_loader) is load_crestereo_checkpoint
    settings = spec.resolve_settings({"two_pass": "true", "iters": "2"})
    model = build_crestereo(settings)
    assert isinstance(model, CREStereoPredictor) and isinstance(model.net, CREStereo)
    assert model.settings == {"iters": 2, "two_pass": True}
    assert model.architecture == "crestereo"
    assert model.size_divisor == spec.size_divisor == 32
    with torch.no_grad():
        disparity_px = model.eval()(_rgb255(64, 64), _rgb255(64, 64))
    assert disparity_px.shape == (1, 64, 64)


# --------------------------------------------------------------------------------------------------
# exceptions: inputs
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left_shape", "right_shape", "kwargs", "match"),
    [
        ((1, 1, 32, 64), (1, 1, 32, 64), {}, r"\(N, 3, H, W\)"),
        ((1, 3, 32, 64), (1, 3, 32, 48), {}, "same shape"),
        ((1, 3, 40, 64), (1, 3, 40, 64), {}, "multiples of 16"),
        ((1, 3, 16, 64), (1, 3, 16, 64), {}, "at least 32"),
        ((1, 3, 32, 64), (1, 3, 32, 64), {"iters": 1}, ">= 2"),
        ((1, 3, 32, 64), (1, 3, 32, 64), {"iters": 0, "flow_init": torch.zeros(1, 2, 16, 32)}, ">= 1"),
        ((1, 3, 32, 64), (1, 3, 32, 64), {"flow_init": torch.zeros(1, 1, 16, 32)}, r"\(N, 2, h, w\)"),
    ],
)
def test_input_errors(left_shape, right_shape, kwargs, match):
    kwargs = {"iters": 2, **kwargs}
    with pytest.raises(InputError, match=match):
        CREStereo()(torch.zeros(left_shape), torch.zeros(right_shape), **kwargs)


@pytest.mark.parametrize("size_hw", [(48, 64), (32, 64)])
def test_two_pass_needs_multiples_of_32_and_64_px(size_hw):
    model = CREStereoPredictor(iters=2, two_pass=True)
    with pytest.raises(InputError, match="multiples of 32 and at least 64"):
        model(_rgb255(*size_hw), _rgb255(*size_hw))


@pytest.mark.parametrize("iters", [1, 2.5, True])
def test_bad_iters_setting(iters):
    with pytest.raises(InputError, match="iters"):
        build_crestereo({"iters": iters})


# --------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------


def test_loads_port_state_dict_into_core_or_predictor(shared):
    path = shared("fixtures", "golden", "crestereo_random.pth")
    core = CREStereo()
    assert load_crestereo_checkpoint(core, path) == {
        "format": "crestereo-pytorch",
        "architecture": "crestereo",
    }
    predictor = CREStereoPredictor(iters=2)
    load_crestereo_checkpoint(predictor, path)
    for key, value in core.state_dict().items():
        assert torch.equal(predictor.net.state_dict()[key], value), key


@pytest.mark.parametrize("source", ["predictor", "core"])
def test_rtstereo_checkpoint_round_trip(tmp_path, source):
    original = CREStereoPredictor(iters=3, two_pass=True)
    state_dict = original.state_dict() if source == "predictor" else original.net.state_dict()
    path = tmp_path / "crestereo.ckpt"
    save_checkpoint(path, "crestereo", original.settings, state_dict, step=5)

    torch.manual_seed(1)
    restored = CREStereoPredictor(iters=3, two_pass=True)
    metadata = load_crestereo_checkpoint(restored, path)
    assert metadata == {
        "format": "rtstereo",
        "architecture": "crestereo",
        "settings": {"iters": 3, "two_pass": True},
    }
    for key, value in original.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


def test_other_network_weights(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 3, 3, 3)}, path)
    with pytest.raises(CheckpointError, match="does not hold CREStereo weights"):
        load_crestereo_checkpoint(CREStereo(), path)


def test_wrong_shapes(tmp_path):
    state_dict = CREStereo().state_dict()
    state_dict["conv_offset_8.bias"] = torch.zeros(9)
    path = tmp_path / "shapes.pth"
    torch.save(state_dict, path)
    with pytest.raises(CheckpointError, match="another shape"):
        load_crestereo_checkpoint(CREStereo(), path)


def test_rtstereo_checkpoint_of_another_model(tmp_path):
    path = tmp_path / "gwc.ckpt"
    save_checkpoint(path, "gwcnet-g", {"max_disp": 192}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="load it with model 'gwcnet-g'"):
        load_crestereo_checkpoint(CREStereo(), path)


def test_not_a_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_crestereo_checkpoint(CREStereo(), path)


def test_loader_needs_a_crestereo_module():
    with pytest.raises(CheckpointError, match="needs a CREStereo module"):
        load_crestereo_checkpoint(torch.nn.Linear(1, 1), "unused.pth")


# --------------------------------------------------------------------------------------------------
# export: the two-pass mode as two ONNX models (init at half size, refinement with flow_init)
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_export_of_both_passes_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = CREStereo().eval()

    class InitPass(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, left, right):
            return self.net(left, right, 2)

    class RefinePass(InitPass):
        def forward(self, left, right, flow_init):
            return self.net(left, right, 2, flow_init=flow_init)

    left, right = _rgb255(64, 64), _rgb255(64, 64)
    left_half, right_half = left[:, :, ::2, ::2].contiguous(), right[:, :, ::2, ::2].contiguous()
    with torch.no_grad():
        flow_half = net(left_half, right_half, 2)
        flow = net(left, right, 2, flow_init=flow_half)
    cases = [
        (InitPass(), (left_half, right_half), ["left", "right"], flow_half),
        (RefinePass(), (left, right, flow_half), ["left", "right", "flow_init"], flow),
    ]
    for index, (module, args, names, expected) in enumerate(cases):
        path = tmp_path / f"pass{index}.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about the (static) shape checks
            torch.onnx.export(module, args, path, opset_version=17, dynamo=False, input_names=names)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {name: arg.numpy() for name, arg in zip(names, args, strict=True)})
        np.testing.assert_allclose(output, expected.numpy(), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------------------
# small inputs: the Predictor pads to the network's smallest size and crops back
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("two_pass", [True, False])
def test_predictor_pads_a_small_pair_to_64_px_and_crops_back(tmp_path, two_pass):
    """A 24x60 pair pads to 32x64 at the divisor, below two-pass's 64 px: it used to fail with
    "pad the images", which a user of `rtstereo predict` cannot do; now it pads to 64x64 itself."""
    import rtstereo

    weights = tmp_path / "cre.pth"
    torch.save(CREStereo().state_dict(), weights)
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (24, 60, 3), dtype=np.uint8)
    right = np.roll(left, -3, axis=1)
    model = rtstereo.load("crestereo", weights=weights, settings={"iters": 2, "two_pass": two_pass})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # too small to be meaningful: said, and beside the point here
        result = model.predict(left, right)
        by_hand = model.predict(*(np.pad(im, ((0, 40), (0, 4), (0, 0)), mode="edge") for im in (left, right)))
    assert result.disparity_px.shape == (24, 60) and result.network_size_hw == (64, 64)
    np.testing.assert_array_equal(result.disparity_px, by_hand.disparity_px[:24, :60])


def test_export_size_below_the_two_pass_minimum_is_refused_with_one_that_works():
    from rtstereo.export.onnx_export import check_size

    spec = get_spec("crestereo")
    with pytest.raises(
        InputError, match=r"multiples of 32 of at least 64, got 32x64 \(HxW\); use for example --size 64x64"
    ):
        check_size(spec, build_crestereo({"iters": 2, "two_pass": True}), (32, 64))
    with pytest.raises(
        InputError, match=r"multiples of 16 of at least 32, got 16x48 \(HxW\); use for example --size 32x48"
    ):
        check_size(spec, build_crestereo({"iters": 2}), (16, 48))
    assert check_size(spec, build_crestereo({"iters": 2}), (48, 80)) == (48, 80)
