"""ONNX export: golden parity of every published network, the file contract, fp16, external data,
failing parity, and the ``rtstereo export`` command.

Golden tests export the networks at the fixtures' sizes and check that ONNX Runtime reproduces the
original code's outputs (``../shared/fixtures/golden``) within 1e-3 px. Mechanics are tested on a
tiny convolutional network so that they take a second each.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from rtstereo.cli import build_parser, main  # noqa: E402
from rtstereo.errors import CheckpointError, ExportError, InputError, OutputError  # noqa: E402
from rtstereo.export import onnx_export  # noqa: E402
from rtstereo.export.onnx_export import ParityError, build_network, export_cached, export_onnx  # noqa: E402
from rtstereo.export.parity import ParityReport, Tolerance, compare, fit_to_size, parity_pair  # noqa: E402
from rtstereo.models import get_spec, list_models  # noqa: E402
from rtstereo.models.checkpoint import save_checkpoint  # noqa: E402
from rtstereo.models.registry import ModelSpec, import_object  # noqa: E402
from rtstereo.runtime.onnx import METADATA_KEY, OnnxContract, load_onnx  # noqa: E402

GOLDEN_TOLERANCE_PX = 1e-3
TOY_SPEC = ModelSpec(
    name="toy-net",
    summary="a toy",
    kind="network",
    builder="",
    defaults={"max_disp": 16},
    normalization="unit",
    size_divisor=8,
)


class ToyNet(torch.nn.Module):
    """Positive disparity from two convolutions over both images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(6, 16, 3, padding=1)  # 3.5 kB of weights: enough to go to external data
        self.head = torch.nn.Conv2d(16, 1, 1)

    def forward(self, left, right):
        features = torch.relu(self.conv(torch.cat((left, right), 1)))
        return 4 * torch.nn.functional.softplus(self.head(features))[:, 0]


def _export_toy(path: Path, **kwargs):
    return export_onnx(
        TOY_SPEC, {"max_disp": 16}, ToyNet().eval(), (32, 48), path, checkpoint_sha256="ab" * 32, **kwargs
    )


def _golden(shared, name: str):
    return np.load(shared("fixtures", "golden", name))


def _export_and_load(tmp_path, model, weights, settings, io, size_hw):
    spec, resolved, module, digest = build_network(model, weights, settings)
    return _export_prepared(tmp_path, spec, resolved, module, digest, io, size_hw)


def _export_prepared(tmp_path, spec, settings, module, digest, io, size_hw):
    result = export_onnx(
        spec,
        settings,
        module,
        size_hw,
        tmp_path / f"{spec.name}.onnx",
        checkpoint_sha256=digest,
        parity_inputs=(io["left"], io["right"]),
    )
    assert result.report is not None and result.report.passed
    return result, load_onnx(result.path)


# --- feature: golden parity of the published networks (fp32) ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gwcnet-g", "gwcnet-gc"])
def test_gwcnet_export_reproduces_the_original(shared, tmp_path, variant, undo_gwcnet_training_step):
    io = _golden(shared, f"{variant}_maxdisp48_io.npz")
    weights = shared("fixtures", "golden", f"{variant}_maxdisp48.ckpt")
    spec, settings, module, digest = build_network(variant, weights, {"max_disp": 48})
    undo_gwcnet_training_step(module, torch.from_numpy(io["left"]), torch.from_numpy(io["right"]))
    result, predictor = _export_prepared(tmp_path, spec, settings, module, digest, io, (64, 128))
    disparity = predictor.backend.run(io["left"], io["right"])
    error_px = float(np.abs(disparity - io["disp_eval"][0]).max())
    assert error_px <= GOLDEN_TOLERANCE_PX, f"max error {error_px} px"
    assert result.contract.settings == {"max_disp": 48}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gwcnet-g", "gwcnet-gc"])
def test_gwcnet_fp16_export_of_the_random_weight_fixtures_keeps_its_overflowing_nodes_float32(
    shared, tmp_path, variant
):
    """The fixtures' seeded weights and BatchNorm statistics drive the 3-D hourglasses to 6-7e5, past float16's
    65504: every pixel came out inf and the export failed its parity. The check was right (an fp16 model that
    gives inf is broken); the export was wrong to run those nodes in float16."""
    weights = shared("fixtures", "golden", f"{variant}_maxdisp48.ckpt")
    spec, settings, module, digest = build_network(variant, weights, {"max_disp": 48})
    with pytest.warns(UserWarning, match=r"fp16: \d+ of \d+ nodes kept in float32: their values on the parity pair"):
        result = export_onnx(spec, settings, module, (64, 128), tmp_path / "g16.onnx", fp16=True)
    assert result.passed and all(check.nonfinite == 0 for check in result.report.checks)
    assert result.report.to_json()["fp32_nodes"] > 0
    model = onnx.load(str(result.path))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)  # still an fp16 model


def _crestereo_golden_rgb(shared):
    """The CREStereo fixture with its images in RGB, as rtstereo feeds every network: the fixture's are in the
    order the original code feeds the weights (cv2.imread's BGR), which the exported graph makes of RGB."""
    io = dict(_golden(shared, "crestereo_io.npz"))
    for key in ("left", "right", "left_half", "right_half"):
        io[key] = np.ascontiguousarray(io[key][:, ::-1])
    return io


@pytest.mark.slow
def test_crestereo_single_pass_export_reproduces_the_original(shared, tmp_path):
    io = _crestereo_golden_rgb(shared)
    weights = shared("fixtures", "golden", "crestereo_random.pth")
    _, predictor = _export_and_load(tmp_path, "crestereo", weights, {"iters": 4}, io, (64, 128))
    error_px = float(np.abs(predictor.backend.run(io["left"], io["right"]) - io["flow_noinit"][0, 0]).max())
    assert error_px <= GOLDEN_TOLERANCE_PX, f"max error {error_px} px"


@pytest.mark.slow
def test_crestereo_two_pass_exports_the_public_pair_and_reproduces_the_original(shared, tmp_path):
    io = _crestereo_golden_rgb(shared)
    weights = shared("fixtures", "golden", "crestereo_random.pth")
    result, predictor = _export_and_load(tmp_path, "crestereo", weights, {"iters": 4, "two_pass": True}, io, (64, 128))
    assert result.path.name == "crestereo.onnx" and result.init_path.name == "crestereo_init.onnx"
    init = onnx.load(str(result.init_path))
    refine = onnx.load(str(result.path))
    assert [i.name for i in init.graph.input] == ["left", "right"]
    assert [o.name for o in init.graph.output] == ["flow_init"]
    assert [i.name for i in refine.graph.input] == ["left", "right", "flow_init"]
    assert [o.name for o in refine.graph.output] == ["disparity"]
    flow_half = predictor.backend.init(left=io["left_half"], right=io["right_half"])
    assert float(np.abs(flow_half - io["flow_half"]).max()) <= GOLDEN_TOLERANCE_PX
    error_px = float(np.abs(predictor.backend.run(io["left"], io["right"]) - io["flow_combined"][0, 0]).max())
    assert error_px <= GOLDEN_TOLERANCE_PX, f"max error {error_px} px"


@pytest.mark.slow
def test_anynet_export_with_real_weights_reproduces_the_original(shared, tmp_path):
    io = _golden(shared, "anynet_kitti2015_io.npz")
    weights = shared("weights", "anynet", "anynet_kitti2015.tar")
    result, predictor = _export_and_load(tmp_path, "anynet", weights, {"stage": 3}, io, (256, 512))
    error_px = float(np.abs(predictor.backend.run(io["left"], io["right"]) - io["disp_stage3"][0, 0]).max())
    assert error_px <= GOLDEN_TOLERANCE_PX, f"max error {error_px} px"
    # The whole path from uint8 images: the Predictor normalises exactly as the fixture's inputs were.
    disparity = predictor.predict(io["left_rgb"], io["right_rgb"]).disparity_px
    assert float(np.nanmax(np.abs(disparity - io["disp_stage3"][0, 0]))) <= GOLDEN_TOLERANCE_PX
    assert result.contract.checkpoint_sha256 == onnx_export.sha256_of_file(weights)


# Small settings that keep every registry network's export quick; a network added later is exported
# with its defaults.
SMALL_SETTINGS = {
    "gwcnet-g": {"max_disp": 16},
    "gwcnet-gc": {"max_disp": 16},
    "crestereo": {"iters": 2, "two_pass": True},
    "anynet": {"stage": 4},
    "rtnet": {"max_disp": 32},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if get_spec(n).kind == "network"])
def test_every_registry_network_exports_within_its_tolerance(tmp_path, name):
    """Random weights (the architecture is what is exported); export_onnx itself fails on bad parity."""
    spec = get_spec(name)
    settings = spec.resolve_settings(SMALL_SETTINGS.get(name, {}))
    torch.manual_seed(0)
    module = import_object(spec.builder)(settings).eval()
    size_hw = (64, 64) if spec.size_divisor <= 32 else (2 * spec.size_divisor, 2 * spec.size_divisor)
    result = export_onnx(spec, settings, module, size_hw, tmp_path / f"{name}.onnx")
    assert result.passed and result.report.checks[0].nonfinite == 0
    assert load_onnx(result.path).fixed_size_hw == size_hw


# --- feature: the file and its report ------------------------------------------------------------------


def test_export_writes_named_graph_metadata_and_parity_report(tmp_path):
    result = _export_toy(tmp_path / "toy.onnx")
    model = onnx.load(str(result.path))
    assert [i.name for i in model.graph.input] == ["left", "right"]
    assert [o.name for o in model.graph.output] == ["disparity"]
    assert all(
        v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in [*model.graph.input, *model.graph.output]
    )
    contract = OnnxContract.from_json({p.key: p.value for p in model.metadata_props}[METADATA_KEY], result.path)
    assert (contract.model, contract.settings, contract.normalization) == (
        "toy-net",
        {"max_disp": 16},
        "unit",
    )
    assert (contract.fixed_size_hw, contract.size_divisor, contract.precision) == ((32, 48), 8, "fp32")
    assert contract.checkpoint_sha256 == "ab" * 32 and contract.rtstereo_version and contract.opset == 17
    assert datetime.datetime.fromisoformat(contract.extra["exported_at"]).utcoffset() is not None  # a time zone
    report = json.loads((tmp_path / "toy.parity.json").read_text())
    check = report["checks"][0]
    assert report["passed"] is True and check["name"] == "onnx fp32 vs pytorch"
    assert check["max_abs_px"] < 1e-4 and check["bad1_pct"] == 0 and check["nonfinite"] == 0
    assert "left.png" in report["pair"] and report["files"] == [str(result.path)]
    assert "parity ok" in result.report.summary()
    assert result.report.summary().startswith("parity of toy-net 32x48 (HxW) fp32 (max_disp=16)")


def test_fp16_export_keeps_float32_inputs_and_outputs_and_reports_against_fp32(tmp_path):
    result = _export_toy(tmp_path / "toy16.onnx", fp16=True)
    model = onnx.load(str(result.path))
    assert all(
        v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in [*model.graph.input, *model.graph.output]
    )
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    names = [c.name for c in result.report.checks]
    assert names == ["onnx fp32 vs pytorch", "onnx fp16 vs pytorch fp32", "onnx fp16 vs onnx fp32"]
    assert result.report.checks[1].mean_abs_px < 0.01
    assert result.contract.precision == "fp16"
    assert load_onnx(result.path).backend.describe()["precision"] == "fp16"
    assert result.report.to_json()["fp32_nodes"] == 0  # nothing overflows: every node in float16


def test_external_data_on_request_and_above_the_threshold(tmp_path, monkeypatch):
    result = _export_toy(tmp_path / "ext.onnx", external_data=True)
    assert result.external_data and (tmp_path / "ext.onnx.data").is_file()
    # Whoever may read the model may read its weights (onnx writes the .data file owner-only).
    assert (tmp_path / "ext.onnx.data").stat().st_mode & 0o777 == (tmp_path / "ext.onnx").stat().st_mode & 0o777
    # the report names every file the export wrote: the .data file was left out
    files = [str(tmp_path / "ext.onnx"), str(tmp_path / "ext.onnx.data")]
    assert result.report.files == files
    assert json.loads(result.report_path.read_text())["files"] == files
    grey = np.full((32, 48, 3), 90, np.uint8)
    assert np.isfinite(load_onnx(result.path).predict(grey, grey).disparity_px).all()
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_THRESHOLD_BYTES", 0)
    assert _export_toy(tmp_path / "auto.onnx").external_data and (tmp_path / "auto.onnx.data").is_file()


def test_a_model_moved_without_its_external_data_says_which_file_is_missing(tmp_path, cli, capsys, monkeypatch):
    """`rtstereo models` said only "not an ONNX model ONNX Runtime can read (Fail)"."""
    moved = tmp_path / "moved"
    moved.mkdir()
    result = _export_toy(tmp_path / "ext.onnx", external_data=True)
    result.path.replace(moved / "ext.onnx")
    monkeypatch.setattr("rtstereo.cli.VERBS", ["export", "models"])
    message = (
        f"{moved / 'ext.onnx'} keeps its weights in another file, {moved / 'ext.onnx.data'}, which is missing: copy "
        "or move that file together with the model, beside it under that name"
    )
    code, out, err = cli(capsys, "models", moved / "ext.onnx")
    assert (code, out, err) == (2, "", f"rtstereo models: error: {message}\n")
    with pytest.raises(CheckpointError) as caught:
        load_onnx(moved / "ext.onnx")
    assert str(caught.value) == message


def test_a_model_whose_external_data_is_cut_short_says_so(tmp_path, cli, capsys, monkeypatch):
    """A truncated .data file read as ONNX Runtime's message cut at 300 characters ("... FAIL : tenso."), and
    `rtstereo models` as "not an ONNX model ONNX Runtime can read (Fail)"."""
    result = _export_toy(tmp_path / "ext.onnx", external_data=True)
    data = tmp_path / "ext.onnx.data"
    whole = data.read_bytes()
    data.write_bytes(whole[: len(whole) // 2])
    renamed = result.path.replace(tmp_path / "renamed.onnx")  # the .data file keeps the name the model holds
    monkeypatch.setattr("rtstereo.cli.VERBS", ["export", "models"])
    with pytest.raises(CheckpointError) as caught:
        load_onnx(renamed)
    message = str(caught.value)
    assert re.fullmatch(
        rf"{re.escape(str(renamed))} keeps its weights in another file, {re.escape(str(data))}, which is cut short: "
        rf"it has {len(whole) // 2} bytes, and the model reads bytes \d+ to \d+ of it \(an interrupted copy or "
        r"download\?\); copy that file beside the model again",
        message,
    ), message
    code, out, err = cli(capsys, "models", renamed)
    assert (code, out, err) == (2, "", f"rtstereo models: error: {message}\n")


def test_export_outside_tolerance_keeps_a_failed_file_and_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(
        onnx_export, "tolerance_for", lambda *_: Tolerance(max_abs_px=-1.0, mean_abs_px=1.0, bad1_pct=0.0)
    )
    with pytest.raises(ParityError, match="beyond its tolerance .* kept as .*toy.onnx.failed") as caught:
        _export_toy(tmp_path / "toy.onnx")
    assert (tmp_path / "toy.onnx.failed").is_file() and not (tmp_path / "toy.onnx").exists()
    assert json.loads((tmp_path / "toy.parity.json").read_text())["passed"] is False
    assert "parity FAILED" in caught.value.result.report.summary()


def test_a_name_holds_only_the_latest_export_and_its_report(tmp_path, monkeypatch):
    """A failed re-export left the older, passing m.onnx (and its .data) beside a report that said failed; a
    later passing export left the m.onnx.failed behind. The name now holds the latest export alone."""
    _export_toy(tmp_path / "m.onnx", external_data=True)
    assert (tmp_path / "m.onnx.data").is_file()
    failing = Tolerance(max_abs_px=-1.0, mean_abs_px=1.0, bad1_pct=0.0)
    with monkeypatch.context() as patch:
        patch.setattr(onnx_export, "tolerance_for", lambda *_: failing)
        with pytest.raises(ParityError):
            _export_toy(tmp_path / "m.onnx")  # no external data this time: the old .data is the old model's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx.failed", "m.parity.json"]
    report = json.loads((tmp_path / "m.parity.json").read_text())
    assert report["passed"] is False and report["files"] == [str(tmp_path / "m.onnx.failed")]
    _export_toy(tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.parity.json"]
    report = json.loads((tmp_path / "m.parity.json").read_text())
    assert report["passed"] is True and report["files"] == [str(tmp_path / "m.onnx")]


def test_a_single_pass_re_export_removes_the_half_size_model_of_an_earlier_two_pass_one(tmp_path):
    """`export crestereo ... --set two_pass=true -o cre.onnx`, then without two_pass: cre_init.onnx stayed, and
    `rtstereo models cre_init.onnx` sent users to the new, unrelated cre.onnx. Another project's file stays."""
    init = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["left"], ["flow_init"])],
            "init",
            [onnx.helper.make_tensor_value_info("left", onnx.TensorProto.FLOAT, [1, 3, 16, 24])],
            [onnx.helper.make_tensor_value_info("flow_init", onnx.TensorProto.FLOAT, [1, 3, 16, 24])],
        )
    )
    foreign = copy.deepcopy(init)
    contract = OnnxContract("toy-net", {}, "unit", 8, (16, 24), role="init")
    onnx.helper.set_model_props(init, {METADATA_KEY: contract.to_json()})
    onnx.save(init, str(tmp_path / "t_init.onnx"))
    onnx.save(init, str(tmp_path / "t_init.onnx.failed"))
    onnx.save(foreign, str(tmp_path / "u_init.onnx"))
    _export_toy(tmp_path / "t.onnx")
    _export_toy(tmp_path / "u.onnx")
    assert not (tmp_path / "t_init.onnx").exists() and not (tmp_path / "t_init.onnx.failed").exists()
    assert (tmp_path / "u_init.onnx").exists(), "not an rtstereo export: not the exporter's to remove"


def test_cached_export_is_reused(tmp_path, monkeypatch):
    module = ToyNet().eval()
    first = export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=tmp_path)
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    again = export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=tmp_path)
    assert again.path == first.path and again.report is None
    with torch.no_grad():
        module.conv.bias.add_(1.0)  # other weights: another key
    assert onnx_export.weights_digest(module) != onnx_export.weights_digest(ToyNet())


@pytest.mark.parametrize("damage", ["empty", "cut short"])
def test_a_damaged_cached_export_is_exported_again(tmp_path, damage):
    """A cache file that did not load failed every later run ("ONNX Runtime cannot load ...") until deleted by hand."""
    module = ToyNet().eval()
    first = export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=tmp_path)
    whole = first.path.read_bytes()
    first.path.write_bytes(b"" if damage == "empty" else whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match=f"cached ONNX export {re.escape(str(first.path))} is damaged"):
        again = export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=tmp_path)
    assert again.path == first.path and again.report is not None and again.report.passed
    assert load_onnx(again.path).predict(*[np.full((32, 48, 3), 90, np.uint8)] * 2).disparity_px.shape == (32, 48)


def test_an_export_removes_the_working_folder_an_export_killed_midway_left(tmp_path, monkeypatch):
    """An export verifies its files in a hidden folder beside the output; one killed midway (kill -9, the memory
    killer) left it there for good, a whole model in it, under a name (.rtstereo-export-XXXX) nothing removed."""
    from rtstereo.io.atomic import _HOST, _TAG

    killed = tmp_path / f".partial-999999999-0123abcd@{_HOST}"
    killed.mkdir()
    (killed / "t.onnx").write_bytes(b"half a model")
    workdirs = []
    verify_and_write = onnx_export._verify_and_write

    def verify_and_write_in(*args):
        workdirs.append(args[7])
        return verify_and_write(*args)

    monkeypatch.setattr(onnx_export, "_verify_and_write", verify_and_write_in)
    _export_toy(tmp_path / "t.onnx")
    assert not killed.exists()
    match = _TAG.search(workdirs[0].name)  # this one's is tagged with its process, for the next export to judge
    assert match is not None and match.group(1) == str(os.getpid()), workdirs[0].name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.onnx", "t.parity.json"]


def test_a_second_process_waits_for_the_export_of_the_same_network_and_uses_it(tmp_path, monkeypatch):
    """Two processes that found no export in the cache both exported it (minutes each for a large network on a
    CPU), and each replaced the other's files as it finished: the second now waits, says for what, and uses the
    first one's export."""
    import shutil
    import threading

    from tests.conftest import lock_held_elsewhere

    module = ToyNet().eval()
    made = export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=tmp_path / "made")
    cache = tmp_path / "cache"
    cache.mkdir()
    said, messages, results = threading.Event(), [], []
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: pytest.fail("exported again"))
    monkeypatch.setattr(onnx_export, "warn", lambda message: (messages.append(message), said.set()))

    def second() -> None:
        results.append(export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=cache))

    with lock_held_elsewhere(cache / f".{made.path.name}.lock") as pid:
        waiting = threading.Thread(target=second)
        waiting.start()
        for _ in range(1200):  # a minute at most: it says it waits at once
            if said.wait(0.05) or not waiting.is_alive():
                break
        assert said.is_set() and waiting.is_alive(), "it did not wait for the export under way"
        shutil.copy(made.path, cache / made.path.name)  # the first process publishes its export, then ends
    waiting.join(60)
    assert [r.path for r in results] == [cache / made.path.name] and results[0].report is None
    assert messages[0].startswith(f"process {pid} on ") and messages[0].endswith(
        f"is exporting toy-net at 32x48 into the cache ({cache / made.path.name}): waiting to use its export"
    )
    assert sorted(p.name for p in cache.iterdir()) == [made.path.name]  # no lock file left


def test_cached_export_key_holds_a_bgr_networks_channel_order(tmp_path, monkeypatch):
    """CREStereo's exports were fed RGB until its module reversed the channels, under the same rtstereo version:
    --backend onnxruntime found such a file in the cache and ran it, colour channels swapped."""
    import dataclasses

    made = []
    monkeypatch.setattr(onnx_export, "export_onnx", lambda spec, settings, module, size, path, **k: made.append(path))
    module = ToyNet().eval()
    bgr = dataclasses.replace(TOY_SPEC, channel_order="bgr")
    export_cached(TOY_SPEC, {"max_disp": 16}, module, (32, 48), cache=tmp_path)
    made[0].write_bytes(b"an export made when the network was fed RGB")
    export_cached(bgr, {"max_disp": 16}, module, (32, 48), cache=tmp_path)
    assert len(made) == 2 and made[1] != made[0]


# --- exceptions ------------------------------------------------------------------------------------------


def test_a_dynamic_export_pads_as_the_pytorch_predictor_does(tmp_path):
    """CREStereo's module takes multiples of 16 but its predictor pads to 32: a dynamic export recorded 16, ran a
    240x320 pair at 240 rows where PyTorch ran 256, and their maps differed on 3 % of the pixels."""
    from rtstereo.runtime.backends import TorchBackend
    from rtstereo.runtime.predictor import Predictor

    module = ToyNet().eval()
    module.size_divisor = 4  # finer than the registry's 8, as CREStereo's 16 is finer than its 32
    result = export_onnx(TOY_SPEC, {"max_disp": 16}, module, (32, 48), tmp_path / "d.onnx", dynamic=True)
    assert result.contract.size_divisor == 8
    rng = np.random.default_rng(1)
    left, right = (rng.integers(0, 256, (36, 44, 3), dtype=np.uint8) for _ in range(2))
    exported = load_onnx(result.path).predict(left, right)
    eager = Predictor(TOY_SPEC, {"max_disp": 16}, TorchBackend(module)).predict(left, right)
    assert exported.network_size_hw == eager.network_size_hw == (40, 48)
    np.testing.assert_allclose(exported.disparity_px, eager.disparity_px, atol=1e-4)


def test_size_must_be_a_multiple_of_the_divisor(tmp_path):
    with pytest.raises(InputError, match="multiples of 8, got 30x48 .*--size 32x48"):
        export_onnx(TOY_SPEC, {}, ToyNet(), (30, 48), tmp_path / "t.onnx")


def test_a_size_beyond_the_memory_budget_is_refused_before_any_work(tmp_path, monkeypatch):
    """--size 8192x8192 ran PyTorch at that size: a traceback from its allocator, or the memory killer."""
    from rtstereo.runtime.memory import MemoryBudgetError

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1M")  # the toy network is modelled at 2048 B/px: 3 MB at 32x48
    with pytest.raises(
        MemoryBudgetError,
        match=r"^toy-net at 32x48 \(HxW\) needs about 3 MB for one PyTorch pass, more than the 1 MB budget",
    ):
        export_onnx(TOY_SPEC, {}, ToyNet(), (32, 48), tmp_path / "t.onnx")
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "4M")  # 32x48 fits; a dynamic export's second size, 40x64, does not
    second = r"^toy-net at 40x64 \(HxW, where a --dynamic export of 32x48 is checked second\) needs about 5 MB for one"
    with pytest.raises(MemoryBudgetError, match=second):  # it named a size that was never given, unexplained
        export_onnx(TOY_SPEC, {}, ToyNet(), (32, 48), tmp_path / "t.onnx", dynamic=True)
    assert list(tmp_path.iterdir()) == []


def test_output_suffix_and_opset_are_checked(tmp_path):
    with pytest.raises(InputError, match="must end in .onnx"):
        export_onnx(TOY_SPEC, {}, ToyNet(), (32, 48), tmp_path / "t.pt")
    with pytest.raises(InputError, match="--opset must be a whole number from 16 .* got 13"):
        export_onnx(TOY_SPEC, {}, ToyNet(), (32, 48), tmp_path / "t.onnx", opset=13)
    with pytest.raises(InputError, match=f"from 16 .* to {onnx_export.MAX_OPSET} .* got {onnx_export.MAX_OPSET + 1}"):
        export_onnx(TOY_SPEC, {}, ToyNet(), (32, 48), tmp_path / "t.onnx", opset=onnx_export.MAX_OPSET + 1)


def test_exporter_failure_becomes_an_export_error(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match="could not export the single model to ONNX opset 17: Unsupported"):
        _export_toy(tmp_path / "t.onnx")


def test_failures_with_an_empty_message_name_their_type_not_an_index_error(tmp_path, monkeypatch):
    """A bare ``AssertionError()`` of the exporter (or of ONNX Runtime) raised IndexError from ``splitlines()[0]``."""
    import onnxruntime

    def bare(*_args, **_kwargs):
        raise AssertionError()

    monkeypatch.setattr(torch.onnx, "export", bare)
    with pytest.raises(ExportError, match=r"opset 17: AssertionError\. Try another --opset"):
        _export_toy(tmp_path / "t.onnx")
    monkeypatch.setattr(onnxruntime, "InferenceSession", bare)
    with pytest.raises(ExportError, match="^ONNX Runtime cannot load the fp16 model: AssertionError$"):
        onnx_export._missing_kernel(tmp_path / "m.onnx")


def test_cleanup_failure_warns_and_keeps_the_exact_graph(tmp_path, monkeypatch):
    import onnxslim

    def broken(_model):
        raise ValueError("cannot fold")

    monkeypatch.setattr(onnxslim, "slim", broken)
    with pytest.warns(UserWarning, match="onnxslim could not simplify the graph"):
        assert _export_toy(tmp_path / "t.onnx").passed


def test_fp16_operators_without_a_cpu_kernel_stay_float32(tmp_path, monkeypatch):
    answers = iter(["Softplus", None])  # as if the CPU provider had no fp16 Softplus
    monkeypatch.setattr(onnx_export, "_missing_kernel", lambda _path: next(answers))
    result = _export_toy(tmp_path / "t.onnx", fp16=True)
    assert result.fp32_ops == ["Softplus"] and result.report.to_json()["fp32_ops"] == ["Softplus"]
    monkeypatch.setattr(onnx_export, "_missing_kernel", lambda path: "Conv")
    with pytest.raises(ExportError, match="still cannot run the model with Conv kept in float32"):
        _export_toy(tmp_path / "u.onnx", fp16=True)


def test_fp16_model_that_onnxruntime_cannot_load_is_an_export_error(tmp_path, monkeypatch):
    import onnxruntime

    def refuse(*_args, **_kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH : broken\ndetails")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    with pytest.raises(ExportError, match="cannot load the fp16 model: .*INVALID_GRAPH : broken$"):
        onnx_export._missing_kernel(tmp_path / "m.onnx")


def test_unwritable_report_is_an_output_error(tmp_path):
    report = ParityReport(model="toy-net", settings={}, size_hw=(8, 8), precision="fp32", pair="x")
    path = tmp_path / "missing" / "r.parity.json"
    with pytest.raises(OutputError) as info:
        report.save(path)
    assert str(info.value) == f"cannot write the parity report {path}: No such file or directory"


def test_parity_report_of_a_map_with_no_finite_pixel_is_strict_json(tmp_path):
    """An fp16 export that overflows everywhere has no pixel finite in both maps: its max and mean are not finite."""
    reference = np.ones((4, 4), np.float32)
    check = compare(np.full((4, 4), np.inf, np.float32), reference, Tolerance(None, 0.25, 2.0), "onnx fp16")
    report = ParityReport(model="toy-net", settings={}, size_hw=(4, 4), precision="fp16", pair="x", checks=[check])
    saved = json.loads(report.save(tmp_path / "r.parity.json").read_text(), parse_constant=pytest.fail)
    assert saved["checks"][0]["max_abs_px"] is None and saved["checks"][0]["mean_abs_px"] is None
    assert saved["checks"][0]["bad1_pct"] == 100.0 and saved["passed"] is False
    assert "max inf px" in report.summary()


def test_parity_comparison_counts_nan_and_shape_errors():
    reference = np.ones((4, 4), np.float32)
    candidate = reference.copy()
    candidate[0, 0] = np.nan
    candidate[1, 1] = 3.0
    check = compare(candidate, reference, Tolerance(None, 10.0, 50.0), "fp16")
    assert (check.nonfinite, check.max_abs_px, check.bad1_pct, check.passed) == (1, 2.0, 12.5, False)
    with pytest.raises(InputError, match=r"candidate \(2, 2\) and reference \(4, 4\) differ"):
        compare(np.zeros((2, 2)), reference, Tolerance(None, 1, 1), "x")


def test_parity_pair_is_fitted_and_its_errors_are_clear(tmp_path, monkeypatch):
    left, right, text = parity_pair((64, 128))
    # Sizes read HEIGHTxWIDTH, as --size is given (the shipped pair is 240 rows by 320 columns).
    assert left.shape == right.shape == (64, 128, 3) and "(240x320 fitted to 64x128, HxW)" in text
    assert fit_to_size(np.zeros((100, 50, 3), np.uint8), (40, 40)).shape == (40, 40, 3)
    with pytest.raises(InputError, match="needs both a left and a right image"):
        parity_pair((64, 128), left=tmp_path / "l.png")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((10, 14, 3), np.uint8))
    with pytest.raises(InputError, match="parity pair: left .* and right .* differ in size"):
        parity_pair((8, 8), tmp_path / "a.png", tmp_path / "b.png")
    monkeypatch.setattr("rtstereo.data.EXAMPLE_DIR", tmp_path / "missing")
    with pytest.raises(InputError, match="shipped with rtstereo .* is missing .* give one with --pair LEFT RIGHT"):
        parity_pair((64, 128))


def test_the_parity_pair_fitted_to_a_long_thin_size_resizes_only_the_window_it_keeps(monkeypatch):
    """--size 32x65536 resized the whole 240x320 pair to 49152x65536 before cutting its centre: OpenCV's traceback
    "Failed to allocate 9663676416 bytes" (the export's own memory check had passed)."""
    from rtstereo.export import parity

    resized, cv2_resize = [], cv2.resize

    def resize(image, dsize, **kwargs):
        resized.append(dsize)
        return cv2_resize(image, dsize, **kwargs)

    monkeypatch.setattr(parity.cv2, "resize", resize)
    image = np.arange(240 * 320 * 3, dtype=np.uint32).reshape(240, 320, 3).astype(np.uint8)
    assert fit_to_size(image, (8, 4096)).shape == (8, 4096, 3)
    assert resized == [(4096, 8)]  # (W, H): the target itself, not (4096, 3072)
    square = fit_to_size(image, (240, 240))  # the centred 240x240 window, at its own size
    np.testing.assert_array_equal(square, image[:, 40:280])


def test_parity_inputs_of_another_size_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"parity inputs must be \(1, 3, 32, 48\)"):
        _export_toy(tmp_path / "t.onnx", parity_inputs=(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 8, 8))))
    with pytest.raises(InputError, match="the parity pair must be 48x32"):
        _export_toy(tmp_path / "t.onnx", pair=(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), "x"))


def test_build_network_errors(tmp_path):
    with pytest.raises(InputError, match="model 'sgbm' is classical, not a PyTorch network"):
        build_network("sgbm", None)
    with pytest.raises(InputError, match="model 'anynet' needs its weights: pass --weights"):
        build_network("anynet", None)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="is not an rtstereo checkpoint"):
        build_network(str(tmp_path / "plain.pt"), None)
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    with pytest.raises(InputError, match=r"m.onnx is an exported ONNX model: there is nothing to export from it"):
        build_network(str(tmp_path / "m.onnx"), None)
    with pytest.raises(InputError, match=r"--weights .*m.onnx is an exported ONNX model; give the PyTorch checkpoint"):
        build_network("anynet", tmp_path / "m.onnx")
    with pytest.raises(CheckpointError, match=r"^checkpoint not found: .*typo.pt$"):
        build_network(str(tmp_path / "typo.pt"), None)
    with pytest.raises(InputError, match=r"--set refine_edges: post-processing of the network's map, not part of"):
        build_network("anynet", None, {"refine_edges": "true"})
    # an rtstereo checkpoint carries its weights: another file's went in under its settings, with no word of it
    save_checkpoint(tmp_path / "best.pt", "anynet", {"stage": 2}, {"w": torch.zeros(1)})
    with pytest.raises(InputError, match=r"^model '.*best.pt' takes no --weights \(an rtstereo checkpoint carries"):
        build_network(str(tmp_path / "best.pt"), tmp_path / "other.tar")


def test_a_packaged_onnx_network_names_the_pytorch_state_to_export_from(monkeypatch):
    """`rtstereo export rtnet-v5 --fp16` said "model 'rtnet-v5' is onnx, not a PyTorch network: there is nothing to
    export" alone: no way to a fixed-size, fp16 or int8 file of the packaged network."""
    from rtstereo.models import packaged_network_source

    source = packaged_network_source("rtnet-v5")
    if source is not None:  # a source checkout: the file itself is named
        said = f"the PyTorch state it was exported from: rtstereo export {source} --size HxW"
        with pytest.raises(InputError, match=re.escape(said)):
            build_network("rtnet-v5", None)
    monkeypatch.setattr("rtstereo.models.packaged_network_source", lambda name: None)
    with pytest.raises(InputError) as caught:
        build_network("rtnet-guided", None)
    assert str(caught.value) == (
        "model 'rtnet-guided' ships as an ONNX file (any size, fp32), not a PyTorch network; an export of it at a "
        "fixed size, in fp16 or int8, starts from the PyTorch state it was exported from (training/guided/state.pt of "
        "the rtstereo source repository): rtstereo export PATH/TO/training/guided/state.pt --size HxW -o FILE.onnx "
        "(and predict with --set fill_left_border=true --set refine_edges=true for rtnet-guided's post-processing)"
    )
    with pytest.raises(InputError, match=r"^model 'hybrid' is hybrid, not a PyTorch network: there is nothing to"):
        build_network("default", None)


# --- the command -----------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr("rtstereo.cli.VERBS", ["predict", "export"])

    def run(capsys, *argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def anynet_checkpoint(tmp_path):
    torch.manual_seed(0)
    from rtstereo.models.anynet import build_anynet

    module = build_anynet({"stage": 1})
    path = tmp_path / "anynet.ckpt"
    save_checkpoint(path, "anynet", {"stage": 1}, module.state_dict())
    return path


def test_export_quiet_leaves_out_the_notice_but_not_the_report(cli, capsys, tmp_path, anynet_checkpoint):
    """export had no -q, which the verbs that say things about their work on stderr take."""
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "32x64", "-o", tmp_path / "a.onnx", "-q")
    assert code == 0 and err == "", err
    assert "parity ok" in out and "wrote" in out


def test_export_command_then_predict_with_the_file_alone(cli, capsys, tmp_path, anynet_checkpoint):
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "32x64", "-o", tmp_path / "a.onnx")
    assert code == 0, err
    assert "parity ok" in out and "wrote" in out and (tmp_path / "a.parity.json").is_file()
    # the long part is announced before it starts, on stderr as every line rtstereo says about its work
    announced = "rtstereo export: exporting anynet at 32x64 (HxW; fp32), then checking it against PyTorch"
    assert err.startswith(announced), err
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "30x60", "-o", tmp_path / "b.onnx")
    assert code == 2 and len(err.splitlines()) == 1 and "rtstereo export: error:" in err, err  # bad input: one line
    predictor = load_onnx(tmp_path / "a.onnx")
    assert predictor.settings == {"stage": 1} and predictor.fixed_size_hw == (32, 64)
    left, right, _ = parity_pair((32, 64))
    for name, image in (("l.png", left), ("r.png", right)):
        cv2.imwrite(str(tmp_path / name), image[:, :, ::-1])
    code, out, err = cli(
        capsys,
        "predict",
        "--model",
        tmp_path / "a.onnx",
        tmp_path / "l.png",
        tmp_path / "r.png",
        "-o",
        tmp_path / "d.npy",
    )
    assert code == 0, err
    assert np.load(tmp_path / "d.npy").shape == (32, 64)


@pytest.mark.parametrize("url", ["https://example.invalid/runs/best.pt", "file:///tmp/best.pt"])
def test_export_of_a_model_url_is_refused_as_predict_refuses_it(cli, capsys, tmp_path, monkeypatch, url):
    """It was "checkpoint not found: https://...", a path made of the URL, which was never fetched."""

    def no_network(*args, **kwargs):
        raise AssertionError("export fetched the model URL")

    monkeypatch.setattr("rtstereo.io.download.fetch", no_network)
    code, out, err = cli(capsys, "export", url, "--size", "32x64", "-o", tmp_path / "a.onnx")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"rtstereo export: error: model {url} is a URL: export takes a registry name or a local rtstereo" in err
    assert "goes in --weights" in err and list(tmp_path.iterdir()) == []


def test_export_command_exits_1_on_failed_parity(cli, capsys, tmp_path, anynet_checkpoint, monkeypatch):
    monkeypatch.setattr(onnx_export, "tolerance_for", lambda *_: Tolerance(-1.0, 1.0, 0.0))
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "32x64", "-o", tmp_path / "a.onnx")
    assert code == 1
    assert "parity FAILED" in out and "kept as" in err and (tmp_path / "a.onnx.failed").is_file()


def test_a_failed_int8_export_removes_the_earlier_int8_file(cli, capsys, tmp_path, anynet_checkpoint, monkeypatch):
    """The fp32 source failed its parity: the int8 file of an earlier export stayed under the name asked for."""
    for earlier in ("a.onnx", "a.parity.json"):
        (tmp_path / earlier).write_text("an earlier int8 export\n")
    monkeypatch.setattr(onnx_export, "tolerance_for", lambda *_: Tolerance(-1.0, 1.0, 0.0))
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "32x64", "--int8", "-o", tmp_path / "a.onnx")
    assert code == 1 and "parity FAILED" in out, err
    assert sorted(p.name for p in tmp_path.glob("a*")) == ["a_fp32.onnx.failed", "a_fp32.parity.json", "anynet.ckpt"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, ExportError("ONNX Runtime could not quantize")])
def test_an_int8_step_that_stops_leaves_no_earlier_int8_file_beside_the_new_source(
    cli, capsys, tmp_path, anynet_checkpoint, monkeypatch, stop
):
    """The fp32 source was replaced, then quantizing it was interrupted (or failed): the earlier int8 file and its
    report stayed under the name, as if made from the new source."""
    from rtstereo.export import quantize

    for earlier in ("a.onnx", "a.parity.json"):
        (tmp_path / earlier).write_text("an earlier int8 export\n")

    def stopped(*_args, **_kwargs):
        raise stop

    monkeypatch.setattr(quantize, "quantize_int8", stopped)
    argv = ["export", anynet_checkpoint, "--size", "32x64", "--int8", "-o", tmp_path / "a.onnx"]
    assert cli(capsys, *argv)[0] == (130 if stop is KeyboardInterrupt else 2)
    assert sorted(p.name for p in tmp_path.glob("a*")) == ["a_fp32.onnx", "a_fp32.parity.json", "anynet.ckpt"]


def test_an_int8_export_keeps_the_case_of_the_output_suffix_in_its_fp32_source(
    cli, capsys, tmp_path, anynet_checkpoint, monkeypatch
):
    """-o a.ONNX --int8 wrote its verified fp32 source as a_fp32.onnx, in lower case."""
    from rtstereo.export import quantize

    def stopped(*_args, **_kwargs):
        raise ExportError("stopped after the fp32 export")

    monkeypatch.setattr(quantize, "quantize_int8", stopped)
    argv = ["export", anynet_checkpoint, "--size", "32x64", "--int8", "-o", tmp_path / "a.ONNX"]
    assert cli(capsys, *argv)[0] == 2
    assert sorted(p.name for p in tmp_path.glob("a*")) == ["a_fp32.ONNX", "a_fp32.parity.json", "anynet.ckpt"]


@pytest.mark.parametrize(
    "where, message",
    [
        ("file/a.onnx", r"cannot write the export to .*file/a.onnx: .*file is a file, not a folder"),
        ("folder.onnx", r"cannot write the export to .*folder.onnx: it is a folder; give a file name ending in .onnx"),
        # it wrote the file n.onnx, where predict's `-o x/` is a folder
        ("n.onnx/", r"cannot write the export to .*n.onnx/: it ends with a folder separator, which names a folder; .*"),
        ("m.onnx", r"cannot write the export to .*m.onnx: .*m.parity.json, which it writes beside it, is a folder"),
        # found after the export: "[Errno 21] Is a directory" naming the hidden folder the files were checked in
        ("f.onnx", r"cannot write the export to .*f.onnx: .*f.onnx.failed, which it writes beside it, is a folder"),
        (
            "q.onnx --int8",
            r"cannot write the export to .*q.onnx: .*q_fp32.onnx, which --int8 writes beside it, is a folder",
        ),
        (
            "Q.ONNX --int8",
            r"cannot write the export to .*Q.ONNX: .*Q_fp32.ONNX, which --int8 writes beside it, is a folder",
        ),
        (
            "g.onnx --int8",
            r"cannot write the export to .*g.onnx: .*g_fp32.onnx.failed, which --int8 writes beside it, is a folder",
        ),
    ],
)
def test_export_command_refuses_an_unwritable_output_before_building(
    cli, capsys, tmp_path, anynet_checkpoint, monkeypatch, where, message
):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "m.parity.json").mkdir()  # found after the export, it left m.onnx without its report
    (tmp_path / "q_fp32.onnx").mkdir()  # found after the fp32 export
    (tmp_path / "Q_fp32.ONNX").mkdir()
    (tmp_path / "f.onnx.failed").mkdir()
    (tmp_path / "g_fp32.onnx.failed").mkdir()
    monkeypatch.setattr(onnx_export, "build_network", lambda *_: pytest.fail("built before the output was checked"))
    name, *more = where.split()
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "32x64", *more, "-o", f"{tmp_path}/{name}")
    assert code == 2 and out == "" and re.fullmatch(f"rtstereo export: error: {message}\n", err), err


def test_export_command_names_the_checkpoints_of_a_folder_given_as_the_model(cli, capsys, tmp_path, monkeypatch):
    """`rtstereo export runs/x` said "unknown model 'runs/x'", listing registry names; predict names the files."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "last.pt", "log.jsonl"):
        (run / name).write_text("")
    monkeypatch.setattr(onnx_export, "build_network", lambda *_: pytest.fail("built from a folder"))
    code, out, err = cli(capsys, "export", run, "--size", "32x64", "-o", tmp_path / "m.onnx")
    assert code == 2 and out == ""
    assert err == (
        f"rtstereo export: error: model {run} is a folder: give an rtstereo checkpoint (in it: best.pt, last.pt), or "
        "a registry name with --weights\n"
    )


def test_export_command_refuses_an_opset_pytorch_cannot_write_before_building(
    cli, capsys, tmp_path, anynet_checkpoint, monkeypatch
):
    """PyTorch's exporter failed on such an opset only after tracing, printing the whole traced graph."""
    monkeypatch.setattr(onnx_export, "build_network", lambda *_: pytest.fail("built before the opset was checked"))
    too_new = onnx_export.MAX_OPSET + 1
    code, out, err = cli(
        capsys, "export", anynet_checkpoint, "--size", "32x64", "--opset", too_new, "-o", tmp_path / "a.onnx"
    )
    assert code == 2 and out == ""
    assert err == (
        f"rtstereo export: error: --opset must be a whole number from 16 (GridSample needs it) to "
        f"{onnx_export.MAX_OPSET} (the newest PyTorch {torch.__version__} exports), got {too_new}\n"
    )


def test_export_command_holds_back_what_a_failing_exporter_prints(cli, capfd, tmp_path, anynet_checkpoint, monkeypatch):
    """A failing TorchScript export prints the traced graph from C++ on descriptor 2 (thousands of lines)."""

    def failing(*_args, **_kwargs):
        os.write(2, b"Torch IR graph at exception: graph(%input.1 : Float(1, 3, 32, 64), ...\n" * 50)
        raise RuntimeError("Unsupported: ONNX export of operator foo")

    monkeypatch.setattr(torch.onnx, "export", failing)
    code, out, err = cli(capfd, "export", anynet_checkpoint, "--size", "32x64", "-o", tmp_path / "a.onnx")
    assert code == 2 and out == "" and "Torch IR graph" not in err
    assert err.splitlines()[-1].startswith("rtstereo export: error: PyTorch could not export the single model")


@pytest.mark.parametrize(
    "argv, said",
    [
        (
            ["--set", "threads=2"],
            "--set threads: how ONNX Runtime runs a model, not part of the network; give it where the export runs "
            "(rtstereo predict --model FILE.onnx --threads N)",
        ),
        (["--set", "channels_last=true"], "--set channels_last: how PyTorch runs a network; an ONNX export has no"),
        (["--threads", "2"], "unrecognized arguments: --threads 2; export writes fp16 with --fp16 and int8"),
        (["--precision", "fp16"], "unrecognized arguments: --precision fp16; export writes fp16 with --fp16"),
    ],
)
def test_export_command_says_where_runtime_options_go(cli, capsys, tmp_path, anynet_checkpoint, argv, said):
    """`--set threads=2` was told to use "--threads N", which export refuses as an unrecognized argument."""
    try:
        code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "32x64", *argv, "-o", tmp_path / "a.onnx")
    except SystemExit as exc:  # argparse's own errors
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and err.startswith(f"rtstereo export: error: {said}") and len(err.splitlines()) == 1, err


def test_a_two_pass_export_refuses_a_folder_in_the_place_of_its_half_size_model_before_exporting(tmp_path, monkeypatch):
    """Found when the files were moved into place, after the whole export: "[Errno 21] Is a directory"."""
    from rtstereo.models.crestereo import build_crestereo

    (tmp_path / "c_init.onnx").mkdir()
    monkeypatch.setattr(onnx_export, "_trace", lambda *_a, **_k: pytest.fail("traced before the output was checked"))
    module = build_crestereo({"iters": 2, "two_pass": True})
    with pytest.raises(
        OutputError, match=r"c.onnx: .*c_init.onnx, which a two-pass export writes beside it, is a folder"
    ):
        export_onnx(get_spec("crestereo"), {"iters": 2, "two_pass": True}, module, (64, 64), tmp_path / "c.onnx")


def test_export_command_refuses_int8_of_a_two_pass_crestereo_before_exporting(cli, capsys, tmp_path, monkeypatch):
    """It exported and checked both fp32 files (minutes at real sizes), then the quantizer refused them."""
    from rtstereo.models.crestereo import build_crestereo

    checkpoint = tmp_path / "cre.pt"
    save_checkpoint(checkpoint, "crestereo", {"iters": 2, "two_pass": True}, build_crestereo({"iters": 2}).state_dict())
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *_a, **_k: pytest.fail("exported before refusing"))
    code, out, err = cli(capsys, "export", checkpoint, "--size", "64x64", "--int8", "-o", tmp_path / "c.onnx")
    assert (code, out) == (2, "") and err.startswith("rtstereo export: error: --int8 quantizes a single-pass export")


def test_export_command_refuses_a_bad_size(cli, capsys, tmp_path):
    with pytest.raises(SystemExit) as caught:
        cli(capsys, "export", "anynet", "--size", "480", "-o", tmp_path / "a.onnx")
    assert caught.value.code == 2
    assert "size '480' not understood: expected HEIGHTxWIDTH in pixels, e.g. 480x640" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["32x63", "4096x4096"])
def test_export_command_refuses_a_size_before_fitting_the_parity_pair_to_it(
    cli, capsys, tmp_path, anynet_checkpoint, monkeypatch, size
):
    """--size 100000x100000 was OpenCV's allocation traceback: the pair was resized to it before the size's checks."""

    def fitted(*_args, **_kwargs):
        raise AssertionError("the parity pair was fitted to a size that is refused")

    monkeypatch.setattr("rtstereo.export.parity.parity_pair", fitted)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "100M")
    code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", size, "-o", tmp_path / "a.onnx")
    assert (code, out) == (2, "") and len(err.splitlines()) == 1, err
    said = "needs an export size whose height" if size == "32x63" else "at 4096x4096 (HxW) needs about"
    assert err.startswith(f"rtstereo export: error: anynet {said}"), err


def test_export_command_warns_of_a_fixed_size_too_small_for_the_networks_coarsest_level(
    cli, capsys, tmp_path, anynet_checkpoint
):
    """--size 16x16 for AnyNet (1/16 at its coarsest) wrote a file whose every map was meaningless, unsaid: its
    parity passed, and predict warns so only of a pair it runs at that size, not of a fixed-size file."""
    from rtstereo.runtime.predictor import SmallInputWarning

    with pytest.warns(SmallInputWarning) as caught:
        code, out, err = cli(capsys, "export", anynet_checkpoint, "--size", "16x32", "-o", tmp_path / "a.onnx", "-q")
    assert code == 0 and "parity ok" in out, err
    assert [str(w.message) for w in caught if w.category is SmallInputWarning] == [
        "anynet at 16x32 (HxW): its coarsest level (1/16) spans fewer than two cells, so every pair this file runs "
        "gives a disparity that is not meaningful, whatever the parity check says (at least 17 px each way is needed: "
        "export at --size 32x32 or more)"
    ]
    with warnings.catch_warnings():  # a dynamic file runs each pair at its own size, where predict says so
        warnings.simplefilter("error", SmallInputWarning)
        code, out, err = cli(
            capsys, "export", anynet_checkpoint, "--size", "16x32", "--dynamic", "-o", tmp_path / "d.onnx"
        )
    assert code == 0, err


def test_export_command_reports_a_bad_setting_in_one_line(cli, capsys, tmp_path):
    code, _, err = cli(
        capsys,
        "export",
        "anynet",
        "--weights",
        tmp_path / "w.tar",
        "--size",
        "32x64",
        "--set",
        "stage=9",
        "-o",
        tmp_path / "a.onnx",
    )
    assert code == 2 and err.startswith("rtstereo export: error: AnyNet stage must be 1, 2, 3")


def test_export_verb_registers_its_options(monkeypatch):
    monkeypatch.setattr("rtstereo.cli.VERBS", ["export"])
    args = build_parser().parse_args(
        [
            "export",
            "gwcnet-gc",
            "--weights",
            "w.ckpt",
            "--size",
            "480x672",
            "--max-disp",
            "192",
            "--fp16",
            "--opset",
            "18",
            "--external-data",
            "-o",
            "m.onnx",
        ]
    )
    assert (args.size, args.max_disp, args.fp16, args.opset, args.external_data) == (
        (480, 672),
        192,
        True,
        18,
        True,
    )


def test_export_help_says_what_fp16_does_on_the_cpu(monkeypatch):
    """--help promised half-precision arithmetic; ONNX Runtime's CPU provider runs such a file in float32."""
    monkeypatch.setattr("rtstereo.cli.VERBS", ["export"])
    parser = build_parser()
    verb = next(a for a in parser._actions if a.dest == "verb").choices["export"]
    fp16 = next(a for a in verb._actions if "--fp16" in a.option_strings)
    assert "CPU provider runs it in float32 behind casts" in fp16.help


def test_export_help_says_a_dynamic_file_runs_any_size(monkeypatch):
    """--dynamic's help said the file takes "a multiple of the size divisor": any size runs, padded and cropped back."""
    monkeypatch.setattr("rtstereo.cli.VERBS", ["export"])
    parser = build_parser()
    verb = next(a for a in parser._actions if a.dest == "verb").choices["export"]
    dynamic = next(a for a in verb._actions if "--dynamic" in a.option_strings)
    assert dynamic.help.startswith("any input size: ") and "pads other sizes" in dynamic.help


def test_a_folder_in_the_way_of_the_published_files_is_named(tmp_path):
    """A folder where a failed export's ``m.onnx.failed`` goes said "[Errno 21] Is a directory:
    '.rtstereo-export-.../m.onnx' -> 'm.onnx.failed'", naming the hidden folder the files were checked in;
    one where a passing export removes the earlier ``.failed`` file said "[Errno 21] Is a directory"."""
    checked = tmp_path / ".rtstereo-export-abc"
    checked.mkdir()
    (checked / "m.onnx").write_text("model")
    in_way = tmp_path / "m.onnx.failed"
    in_way.mkdir()
    for passed in (False, True):
        with pytest.raises(OutputError) as info:
            onnx_export._publish({"single": checked / "m.onnx"}, {"single": "m.onnx"}, tmp_path / "m.onnx", passed)
        assert str(info.value) == f"cannot write the export into {tmp_path}: {in_way} is a folder"
