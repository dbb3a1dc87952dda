"""GwcNet: faithfulness to the original (golden fixtures), input checks, checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtstereo.errors import CheckpointError, InputError  # noqa: E402
from rtstereo.models import get_spec  # noqa: E402
from rtstereo.models.checkpoint import save_checkpoint  # noqa: E402
from rtstereo.models.gwcnet import (  # noqa: E402
    GwcNet,
    build_gwcnet_g,
    build_gwcnet_gc,
    load_gwcnet_checkpoint,
)
from rtstereo.models.registry import import_object  # noqa: E402

TOLERANCE_PX = 1e-3
BUILDERS = {"gwcnet-g": build_gwcnet_g, "gwcnet-gc": build_gwcnet_gc}


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def _golden(shared, variant: str):
    """The fixture network (max_disp 48, original checkpoint loaded) and its inputs/outputs."""
    checkpoint = shared("fixtures", "golden", f"{variant}_maxdisp48.ckpt")
    io = np.load(shared("fixtures", "golden", f"{variant}_maxdisp48_io.npz"))
    net = BUILDERS[variant]({"max_disp": 48})
    metadata = load_gwcnet_checkpoint(net, checkpoint)
    return net, metadata, io, torch.from_numpy(io["left"]), torch.from_numpy(io["right"])


def _small_input(height: int = 32, width: int = 64):
    return torch.randn(1, 3, height, width), torch.randn(1, 3, height, width)


def _write_original_layout(path, net: GwcNet, epoch: int = 7) -> None:
    """A file in the original project's layout: ``{"epoch", "model"}`` with ``module.`` keys."""
    torch.save({"epoch": epoch, "model": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)


# --- feature: the golden fixtures of the original code ----------------------------------------------


@pytest.mark.parametrize("variant", ["gwcnet-g", "gwcnet-gc"])
def test_golden_training_outputs_match_original(shared, variant):
    net, metadata, io, left, right = _golden(shared, variant)
    assert metadata == {"format": "gwcnet", "architecture": variant, "epoch": 0}
    net.train()
    with torch.no_grad():
        outputs = net(left, right)
    assert isinstance(outputs, list) and len(outputs) == 4
    for index, output in enumerate(outputs):
        reference = io[f"disp_train_{index}"]
        assert output.shape == reference.shape
        error_px = float(np.abs(output.numpy() - reference).max())
        assert error_px <= TOLERANCE_PX, f"head {index}: max error {error_px} px"


@pytest.mark.parametrize("variant", ["gwcnet-g", "gwcnet-gc"])
def test_golden_eval_output_matches_original(shared, variant, undo_gwcnet_training_step):
    net, _, io, left, right = _golden(shared, variant)
    undo_gwcnet_training_step(net, left, right)
    net.eval()
    with torch.no_grad():
        disparity_px = net(left, right)
    assert disparity_px.shape == io["disp_eval"].shape
    error_px = float(np.abs(disparity_px.numpy() - io["disp_eval"]).max())
    assert error_px <= TOLERANCE_PX, f"max error {error_px} px"


# --- smoke / cardinality -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gwcnet-g", "gwcnet-gc"])
def test_registry_builders_make_the_variant(name):
    spec = get_spec(name)
    net = import_object(spec.builder)({"max_disp": 32})
    assert isinstance(net, GwcNet) and net.architecture == name and net.max_disp == 32
    assert net.use_concat_volume == (name == "gwcnet-gc")
    assert import_object(spec.checkpoint_loader) is load_gwcnet_checkpoint


def test_eval_returns_disparity_in_range_and_training_returns_four():
    net = build_gwcnet_gc({"max_disp": 16}).eval()
    left, right = _small_input(32, 32)
    with torch.no_grad():
        disparity_px = net(left, right)
    assert disparity_px.shape == (1, 32, 32)
    assert float(disparity_px.min()) >= 0 and float(disparity_px.max()) <= 15
    net.train()
    outputs = net(left, right)
    assert [tuple(o.shape) for o in outputs] == [(1, 32, 32)] * 4
    outputs[-1].mean().backward()  # the graph is differentiable end to end
    assert net.feature_extraction.firstconv[0][0].weight.grad is not None


# --- exceptions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_disp", [40, 0, -16, 47.5, True])
def test_max_disp_must_be_a_positive_multiple_of_16(max_disp):
    with pytest.raises(InputError, match="multiple of 16"):
        GwcNet(max_disp=max_disp)


def test_builder_rejects_bad_max_disp():
    with pytest.raises(InputError, match="got 100"):
        build_gwcnet_g({"max_disp": 100})


@pytest.mark.parametrize(("max_disp", "suggested"), [(40, 48), (100, 112), (0, 192), (-16, 192), (47.5, 192)])
def test_a_bad_max_disp_is_told_the_next_multiple_of_16(max_disp, suggested):
    with pytest.raises(InputError, match=f"round it up, for example to {suggested}$"):  # 40 was told 192
        GwcNet(max_disp=max_disp)


@pytest.mark.parametrize(
    ("left_shape", "right_shape", "message"),
    [
        ((1, 1, 32, 32), (1, 1, 32, 32), r"\(N, 3, H, W\)"),
        ((3, 32, 32), (3, 32, 32), r"\(N, 3, H, W\)"),
        ((1, 3, 32, 32), (1, 3, 32, 48), "same shape"),
        ((1, 3, 40, 32), (1, 3, 40, 32), "multiples of 16, got 40x32"),
    ],
)
def test_forward_rejects_bad_inputs(left_shape, right_shape, message):
    net = build_gwcnet_g({"max_disp": 16}).eval()
    with pytest.raises(InputError, match=message):
        net(torch.zeros(left_shape), torch.zeros(right_shape))


def test_g_fixture_into_gc_fails_clearly(shared):
    net = build_gwcnet_gc({"max_disp": 48})
    with pytest.raises(CheckpointError, match="holds gwcnet-g weights.*load it with model 'gwcnet-g'"):
        load_gwcnet_checkpoint(net, shared("fixtures", "golden", "gwcnet-g_maxdisp48.ckpt"))


def test_gc_file_into_g_fails_clearly(tmp_path):
    path = tmp_path / "gc.ckpt"
    _write_original_layout(path, build_gwcnet_gc({"max_disp": 16}))
    with pytest.raises(CheckpointError, match="holds gwcnet-gc weights"):
        load_gwcnet_checkpoint(build_gwcnet_g({"max_disp": 16}), path)


def test_self_describing_checkpoint_of_other_variant_fails_clearly(tmp_path):
    path = tmp_path / "g.pt"
    net = build_gwcnet_g({"max_disp": 16})
    save_checkpoint(path, net.architecture, net.settings, net.state_dict())
    with pytest.raises(CheckpointError, match="rtstereo checkpoint of 'gwcnet-g'.*network is 'gwcnet-gc'"):
        load_gwcnet_checkpoint(build_gwcnet_gc({"max_disp": 16}), path)


def test_text_file_fails_clearly(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("not a checkpoint\n")
    said = "notes.ckpt: a text file .it begins .not a checkpoint.., not a PyTorch file; expected a torch.save file"
    with pytest.raises(CheckpointError, match=said):
        load_gwcnet_checkpoint(build_gwcnet_g({"max_disp": 16}), path)


def test_torch_file_without_weights_fails_clearly(tmp_path):
    path = tmp_path / "optimizer.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.001}}, path)
    with pytest.raises(CheckpointError, match="expected a checkpoint with 'model'"):
        load_gwcnet_checkpoint(build_gwcnet_g({"max_disp": 16}), path)


def test_weights_of_another_network_fail_clearly(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": torch.nn.Conv2d(3, 8, 3).state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not hold gwcnet-g weights"):
        load_gwcnet_checkpoint(build_gwcnet_g({"max_disp": 16}), path)


# --- feature: checkpoint formats -------------------------------------------------------------------------


def test_self_describing_checkpoint_round_trip(tmp_path):
    trained = build_gwcnet_gc({"max_disp": 32}).eval()
    path = tmp_path / "gwcnet-gc.pt"
    save_checkpoint(path, trained.architecture, trained.settings, trained.state_dict(), step=12)

    fresh = build_gwcnet_gc({"max_disp": 32}).eval()
    metadata = load_gwcnet_checkpoint(fresh, path)
    assert metadata == {
        "format": "rtstereo",
        "architecture": "gwcnet-gc",
        "epoch": None,
        "settings": {"max_disp": 32},
    }
    left, right = _small_input()
    with torch.no_grad():
        np.testing.assert_array_equal(fresh(left, right).numpy(), trained(left, right).numpy())


def test_original_layout_loads_at_another_max_disp(tmp_path):
    path = tmp_path / "checkpoint_000007.ckpt"
    source = build_gwcnet_g({"max_disp": 32})
    _write_original_layout(path, source, epoch=7)
    target = build_gwcnet_g({"max_disp": 16})  # max_disp changes no weight shape
    assert load_gwcnet_checkpoint(target, path)["epoch"] == 7
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name


def test_a_range_beyond_the_width_is_warned_about_with_one_that_fits(shared):
    """--max-disp 336 on a 320-px pair searched 336 levels (10.7 s against 2.7 s at 48) without a word (SGBM refuses
    it); no disparity of the width or more has a match in the right view."""
    import warnings

    import rtstereo
    from rtstereo.models.sgbm import UnmatchedBandWarning

    from ..conftest import make_textured_pair

    weights = shared("fixtures", "golden", "gwcnet-g_maxdisp48.ckpt")
    pair = make_textured_pair(32, 40)
    said = (
        r"^gwcnet-g searches 64 px, beyond the 40-px width it runs at: .* lower --max-disp \(max_disp= in Python\), "
        r"e\.g\. 32$"
    )
    with pytest.warns(UnmatchedBandWarning, match=said):
        rtstereo.load("gwcnet-g", weights=weights, max_disp=64).predict(*pair)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnmatchedBandWarning)
        rtstereo.load("gwcnet-g", weights=weights, max_disp=32).predict(*pair)
        rtstereo.load("gwcnet-g", weights=weights, max_disp=48).predict(*make_textured_pair(32, 48))  # 0..47: fits
