"""The public CREStereo ONNX files (PINTO model zoo 284): run as their own scripts run them.

The graphs here are tiny stand-ins with the files' layout (inputs by position, BGR, output ``(1, 2, H, W)``),
whose outputs are known in closed form; one is the CREStereo port's network traced as the public files were.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rtstereo
from rtstereo.bench import run_bench
from rtstereo.cli import main
from rtstereo.errors import CheckpointError, InputError
from rtstereo.io import write_image
from rtstereo.runtime.predictor import ResizeWarning

SIZE_HW = (16, 32)
HALF_HW = (8, 16)
LEFT_RGB, RIGHT_RGB = (10, 20, 30), (1, 2, 3)


def _image(name: str, size_hw) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, *size_hw])


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))  # no rtstereo metadata, as the public files
    return path


def _first_channel(name: str, out: str) -> list[onnx.NodeProto]:
    return [helper.make_node("Slice", [name, "c0", "c1", "axis1"], [out])]


def _channel_tensors() -> list[onnx.TensorProto]:
    return [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("c0", 0), ("c1", 1), ("axis1", 1))]


def public_init(path: Path) -> Path:
    """``crestereo_init`` layout: disparity (channel 0) = first channel of the left input + that of the right."""
    nodes = [
        *_first_channel("left", "l0"),
        *_first_channel("right", "r0"),
        helper.make_node("Add", ["l0", "r0"], ["d"]),
        helper.make_node("Concat", ["d", "r0"], ["flow"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "init",
        [_image("left", SIZE_HW), _image("right", SIZE_HW)],
        [helper.make_tensor_value_info("flow", TensorProto.FLOAT, [1, 2, *SIZE_HW])],
        _channel_tensors(),
    )
    return _save(graph, path)


def public_combined(path: Path) -> Path:
    """``crestereo_combined`` layout, half-size pair first: disparity = first channel of the full-size left
    + 2 x that of the half-size right (upsampled)."""
    nodes = [
        *_first_channel("left_full", "l0"),
        *_first_channel("right_half", "r0"),
        helper.make_node("Resize", ["r0", "", "scales"], ["r0_up"], mode="nearest"),
        helper.make_node("Mul", ["r0_up", "two"], ["r0_twice"]),
        helper.make_node("Add", ["l0", "r0_twice"], ["d"]),
        helper.make_node("Concat", ["d", "l0"], ["flow"], axis=1),
    ]
    extra = [
        helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2]),
        helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "combined",
        [
            _image("left_half", HALF_HW),
            _image("right_half", HALF_HW),
            _image("left_full", SIZE_HW),
            _image("right_full", SIZE_HW),
        ],
        [helper.make_tensor_value_info("flow", TensorProto.FLOAT, [1, 2, *SIZE_HW])],
        [*_channel_tensors(), *extra],
    )
    return _save(graph, path)


def _pair() -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.full((*SIZE_HW, 3), colour, np.uint8) for colour in (LEFT_RGB, RIGHT_RGB))  # type: ignore[return-value]


def test_a_public_init_file_runs_with_bgr_inputs_and_channel_0_as_disparity(tmp_path):
    model = rtstereo.load(str(public_init(tmp_path / "crestereo_init_iter5_16x32.onnx")))
    result = model.predict(*_pair())
    np.testing.assert_allclose(result.disparity_px, 30 + 3)  # the blue channels: BGR's first
    assert result.settings["iters"] == 5 and result.settings["two_pass"] is False


def test_a_public_combined_file_takes_the_half_size_pair_first(tmp_path):
    model = rtstereo.load(str(public_combined(tmp_path / "crestereo_combined_iter10_16x32.onnx")))
    result = model.predict(*_pair())
    np.testing.assert_allclose(result.disparity_px, 30 + 2 * 3, rtol=1e-6)
    assert result.settings["iters"] == 10 and result.settings["two_pass"] is True


def test_a_pair_stretched_to_a_public_file_is_not_told_to_export_with_dynamic(tmp_path):
    """The warning advised "an export at the pair's aspect ratio, or --dynamic": a public file has no export to redo."""
    model = rtstereo.load(str(public_init(tmp_path / "crestereo_init_iter5_16x32.onnx")))
    wide = [np.repeat(image, 3, axis=1) for image in _pair()]  # 16x96: three times the file's aspect ratio
    with pytest.warns(ResizeWarning) as caught:
        model.predict(*wide)
    message = str(caught[0].message)
    assert message.endswith(
        "run at 2.00): the public file made at the pair's aspect ratio (its name says its HxW) keeps it; or --fit crop "
        "(predict, video, live; fit='crop' in Python) runs their centred window of the network's aspect ratio"
    )
    assert "--dynamic" not in message


def test_a_public_file_refuses_other_iterations_and_is_described(tmp_path, capsys):
    path = public_combined(tmp_path / "crestereo_combined_iter10_16x32.onnx")
    left, right = _pair()
    write_image(tmp_path / "l.png", left)
    write_image(tmp_path / "r.png", right)
    assert (
        main(["predict", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--model", str(path), "--iters", "5"]) == 2
    )
    err = capsys.readouterr().err
    assert "made with iters=10 and cannot run with iters=5: the value is fixed in the graph; use the public file" in err
    assert main(["models", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "a public CREStereo ONNX model, combined" in out
        and "16x32 (HxW); other sizes are resized to it" in out
        and "normalisation in BGR order, the half-size pair first, size 16x32 (HxW)" in out
        and "(the public file made at that size, whose name says its HxW)\n" in out
    )
    assert (
        main(
            [
                "predict",
                str(tmp_path / "l.png"),
                str(tmp_path / "r.png"),
                "--model",
                str(path),
                "-o",
                str(tmp_path / "out/"),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(rtstereo.io.read_disparity(tmp_path / "out" / "l.pfm"), 36, rtol=1e-6)


def test_iters_on_a_public_file_renamed_without_them_says_they_are_unknown(tmp_path):
    """It said the file "was exported without a setting 'iters'", as if CREStereo had none."""
    path = public_init(tmp_path / "mine.onnx")
    with pytest.raises(InputError, match=r"mine.onnx: a public CREStereo file's iterations are .* from its name only"):
        rtstereo.load(str(path), settings={"iters": 5})
    assert "iters" not in rtstereo.load(str(path)).predict(*_pair()).settings


def test_a_setting_a_public_file_has_not_is_not_said_to_be_left_out_of_an_export(tmp_path):
    """--max-disp with a public file said it "was exported without a setting 'max_disp'": rtstereo exported nothing."""
    path = public_init(tmp_path / "crestereo_init_iter5_16x32.onnx")
    with pytest.raises(InputError, match=r"16x32.onnx is a public CREStereo file, which has no setting 'max_disp' "):
        rtstereo.load(str(path), max_disp=64)


def test_another_onnx_file_without_metadata_is_still_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["left", "right"], ["disparity"])],
        "other",
        [_image("left", SIZE_HW), _image("right", SIZE_HW)],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, 3, *SIZE_HW])],
    )
    path = _save(graph, tmp_path / "other.onnx")
    with pytest.raises(CheckpointError, match="has no rtstereo metadata.*public CREStereo"):
        rtstereo.load(str(path))


def test_a_public_file_is_benched_at_its_own_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short name: a skipped row's reason is cut at 160 characters
    path = public_init(Path("crestereo_init_iter2_16x32.onnx")).name
    report = run_bench([path], [SIZE_HW, (32, 64)], warmup=1, runs=1, threads=1)
    assert [row.status for row in report.rows] == ["ok", "skipped"]
    assert report.rows[0].describe["two_pass"] is False
    assert (
        "fixed at 16x32 (HxW): bench it with --sizes 16x32, or the public file made at that size"
        in report.rows[1].reason
    )


def test_bench_says_a_swept_setting_the_file_has_not_is_not_fixed_in_it(tmp_path, monkeypatch):
    """--max-disp with a public CREStereo file said "max_disp is fixed in it": CREStereo has no disparity range."""
    monkeypatch.chdir(tmp_path)
    path = public_init(Path("crestereo_init_iter2_16x32.onnx")).name
    report = run_bench([path], [SIZE_HW], sweeps={"max_disp": [32], "iters": [2]}, warmup=1, runs=1, threads=1)
    assert [n for n in report.notes if path in n] == [
        f"{path} is an exported file without a setting max_disp (its settings: iters, two_pass): max_disp is not swept",
        f"{path} is an exported file: iters is fixed in it, not swept",
    ]


@pytest.mark.slow
def test_the_port_network_as_a_public_file_agrees_with_rtstereo_crestereo(tmp_path, shared):
    """A public file is the port's network traced as it is (PINTO's conversion: BGR in, as megvii's test.py feeds).
    Run by rtstereo, it gives what rtstereo's own CREStereo gives on the same RGB pair: both feed the weights BGR.
    They disagreed when the PyTorch network was fed RGB."""
    torch = pytest.importorskip("torch")
    from rtstereo.models.crestereo import CREStereo, load_crestereo_checkpoint

    weights = shared("fixtures", "golden", "crestereo_random.pth")
    net = CREStereo().eval()
    load_crestereo_checkpoint(net, weights)

    class Init(torch.nn.Module):  # the public init layout: left, right -> flow (1, 2, H, W)
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, left, right):
            return self.net(left, right, 2)

    path = tmp_path / "crestereo_init_iter2_64x128.onnx"
    example = torch.zeros(1, 3, 64, 128)  # at least 64 px: the size rtstereo pads CREStereo to
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the (static) shape checks
        torch.onnx.export(Init(), (example, example), path, opset_version=17, dynamo=False)
    rng = np.random.default_rng(5)
    left = cv2.resize(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8), (128, 64))
    left[..., 2] //= 4  # channels that differ, so that their order matters
    right = np.roll(left, -2, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: maps a real scene would not give
        public = rtstereo.load(str(path)).predict(left, right).disparity_px
        ours = rtstereo.load("crestereo", weights=weights, settings={"iters": 2}).predict(left, right).disparity_px
    valid = np.isfinite(ours)
    assert np.array_equal(valid, np.isfinite(public))
    assert float(np.abs(public[valid] - ours[valid]).max()) <= 1e-3
