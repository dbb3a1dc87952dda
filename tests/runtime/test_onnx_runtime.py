"""The ONNX Runtime backend: providers, exported files and their contract, two-pass pairs, on-the-fly exports.

Most tests use tiny hand-built ONNX graphs (no torch), whose outputs are known in closed form.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rtstereo
from rtstereo.errors import CheckpointError, InputError, OutputError
from rtstereo.models.registry import ModelSpec
from rtstereo.runtime import onnx as ort_backend
from rtstereo.runtime.onnx import (
    METADATA_KEY,
    HalfOnCpuWarning,
    OnnxContract,
    ProviderFallbackWarning,
    companion_path,
    load_onnx,
    load_packaged,
    open_session,
    parse_providers,
    provider_list,
    resize_align_corners,
)
from rtstereo.runtime.predictor import Predictor, ResizeWarning
from rtstereo.runtime.providers import limit_threads

SRC = Path(__file__).resolve().parents[2] / "src"
SIZE_HW = (16, 24)
SCALE_PX = 10.0  # toy disparity = SCALE_PX * mean colour (0..1) + 1


# --- tiny models ---------------------------------------------------------------------------------------


def _contract(size_hw=SIZE_HW, **changes) -> OnnxContract:
    fields = dict(
        model="toy-net",
        settings={"max_disp": 16},
        normalization="unit",
        size_divisor=8,
        fixed_size_hw=size_hw,
    )
    return OnnxContract(**{**fields, **changes})


def _save(graph, path: Path, contract: OnnxContract | None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if contract is not None:
        helper.set_model_props(model, {METADATA_KEY: contract.to_json()})
    onnx.save_model(model, str(path))
    return path


def _image(name: str, size_hw) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, *size_hw])


def toy_single(path: Path, size_hw=SIZE_HW, contract: OnnxContract | None = None, metadata: bool = True) -> Path:
    """disparity = SCALE_PX * mean over channels of ``left`` + 1 (``right`` is read and ignored)."""
    nodes = [
        helper.make_node("ReduceMean", ["left"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "one"], ["shifted"]),
        helper.make_node("ReduceMean", ["right"], ["unused"], keepdims=1),
        helper.make_node("Mul", ["unused", "zero"], ["nothing"]),
        helper.make_node("Add", ["shifted", "nothing"], ["disparity"]),
    ]
    initializers = [
        helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in (("scale", SCALE_PX), ("one", 1.0), ("zero", 0.0))
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [_image("left", size_hw), _image("right", size_hw)],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, *size_hw])],
        initializers,
    )
    return _save(graph, path, (contract or _contract(size_hw)) if metadata else None)


def toy_two_pass(path: Path, size_hw=(16, 32)) -> tuple[Path, Path]:
    """init: flow_init = channel means of left and right (half size); refine: disparity = mean(left) +
    mean(flow_init) over everything."""
    half_hw = (size_hw[0] // 2, size_hw[1] // 2)
    init = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["left"], ["a"], axes=[1], keepdims=1),
            helper.make_node("ReduceMean", ["right"], ["b"], axes=[1], keepdims=1),
            helper.make_node("Concat", ["a", "b"], ["flow_init"], axis=1),
        ],
        "init",
        [_image("left", half_hw), _image("right", half_hw)],
        [helper.make_tensor_value_info("flow_init", TensorProto.FLOAT, [1, 2, *half_hw])],
    )
    refine = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["left"], ["a"], axes=[1], keepdims=0),
            helper.make_node("ReduceMean", ["flow_init"], ["b"], keepdims=0),
            helper.make_node("ReduceMean", ["right"], ["c"], keepdims=0),
            helper.make_node("Mul", ["c", "zero"], ["d"]),
            helper.make_node("Add", ["a", "b"], ["e"]),
            helper.make_node("Add", ["e", "d"], ["disparity"]),
        ],
        "refine",
        [
            _image("left", size_hw),
            _image("right", size_hw),
            helper.make_tensor_value_info("flow_init", TensorProto.FLOAT, [1, 2, *half_hw]),
        ],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, *size_hw])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    init_path = companion_path(path)
    _save(init, init_path, _contract(half_hw, role="init"))
    _save(refine, path, _contract(size_hw, role="refine", companion=init_path.name))
    return path, init_path


def _gradient_pair(size_hw):
    height, width = size_hw
    ramp = np.linspace(20, 230, width, dtype=np.float32)[None, :, None] + np.linspace(0, 20, height)[:, None, None]
    left = np.repeat(ramp, 3, axis=2).astype(np.uint8)
    return left, np.ascontiguousarray(left[:, ::-1])


@pytest.fixture
def toy_path(tmp_path):
    return toy_single(tmp_path / "toy.onnx")


# --- providers -----------------------------------------------------------------------------------------


def test_cuda_device_orders_tensorrt_cuda_cpu_with_fp16_and_engine_cache(tmp_path):
    providers = provider_list("cuda:1", "fp16", engine_cache=tmp_path / "engines")
    assert [name for name, _ in providers] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    trt = providers[0][1]
    assert trt["trt_fp16_enable"] is True and trt["device_id"] == 1
    assert trt["trt_engine_cache_enable"] is True and trt["trt_engine_cache_path"] == str(tmp_path / "engines")
    assert providers[1][1] == {"device_id": 1}
    assert provider_list("cuda", "fp32")[0][1]["trt_fp16_enable"] is False


def test_explicit_provider_order_and_short_names():
    assert parse_providers(["cpu"]) == ["CPUExecutionProvider"]
    assert [n for n, _ in provider_list("cuda", "fp32", providers="cuda,cpu")] == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


@pytest.mark.parametrize("text, message", [("tpu", "unknown execution provider 'tpu'"), (" , ", "list is empty")])
def test_bad_provider_lists_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_providers(text)


@pytest.mark.parametrize(
    "option, message",
    [
        ({"engine_cache": 5}, r"^setting 'engine_cache': expected a folder \(str or Path\), got int 5$"),
        ({"engine_cache": ["a"]}, r"^setting 'engine_cache': expected a folder \(str or Path\), got list \['a'\]$"),
        ({"providers": 5}, r"^setting 'providers': expected a comma-separated str or a list of str .*, got int 5$"),
    ],
)
def test_onnx_runtime_options_of_the_wrong_type_are_input_errors(toy_path, option, message):
    """engine_cache=5 and providers=5 were bare TypeErrors from Path and iteration (on the first pair, for a network
    exported on first use)."""
    from rtstereo.models import get_spec

    with pytest.raises(InputError, match=message):
        rtstereo.load(str(toy_path), **option)
    with pytest.raises(InputError, match=message):
        ort_backend.predictor_from_export(get_spec("rtnet"), {}, lambda *args: None, **option)


def test_gpu_providers_with_device_cpu_are_refused(toy_path, monkeypatch):
    """--device cpu --set providers=cuda ran on GPU 0 of a GPU build (its results saying cpu); here, it was told to
    use --device cpu, which it had."""
    import onnxruntime

    with pytest.raises(InputError, match=r"^--device cpu and the providers CUDAExecutionProvider disagree"):
        provider_list("cpu", "fp32", providers="cuda,cpu")
    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    with pytest.raises(InputError, match="TensorrtExecutionProvider, CUDAExecutionProvider disagree"):
        rtstereo.load(str(toy_path), providers="tensorrt,cuda")
    assert [n for n, _ in provider_list("cpu", "fp32", providers="cpu")] == ["CPUExecutionProvider"]


def test_a_list_none_of_which_is_here_says_how_to_accept_the_cpu(toy_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA")
    with pytest.raises(
        InputError,
        match=r"accept the CPU \(--set providers=...,cpu; providers= in Python\), use --device cpu \(device=\)",
    ):
        open_session(toy_path, device="cuda", providers="tensorrt,cuda")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:²"])
def test_bad_device_is_refused(device):
    with pytest.raises(InputError, match="device must be cpu or cuda"):
        provider_list(device, "fp32")


def test_an_explicit_list_falls_back_to_the_cpu_with_a_warning(toy_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA: nothing to fall back from")
    with pytest.warns(ProviderFallbackWarning, match="TensorrtExecutionProvider, CUDAExecutionProvider not available"):
        session = open_session(toy_path, device="cuda", providers="tensorrt,cuda,cpu")
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_a_run_that_fell_back_to_the_cpu_records_the_cpu(toy_path, tmp_path):
    """--device cuda --set providers=cuda,cpu ran on the CPU provider and its results said "device": "cuda"."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA: nothing to fall back from")

    @dataclasses.dataclass(frozen=True)
    class Exported:
        path: Path
        init_path: Path | None = None

    spec = ModelSpec(name="toy", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    with pytest.warns(ProviderFallbackWarning):
        predictors = (
            rtstereo.load(str(toy_path), device="cuda", providers="cuda,cpu"),
            ort_backend.predictor_from_export(spec, {}, lambda *_: Exported(toy_path), "cuda", providers="cuda,cpu"),
        )
        for predictor in predictors:
            settings = predictor.predict(*_gradient_pair(SIZE_HW)).settings
            assert (settings["device"], settings["providers"]) == ("cpu", ["CPUExecutionProvider"])


def test_cuda_without_a_gpu_provider_is_refused_with_the_install_line(toy_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA: --device cuda is not refused")
    with pytest.raises(InputError, match="needs its CUDA or TensorRT provider.*pip install onnxruntime-gpu"):
        open_session(toy_path, device="cuda")
    with pytest.raises(InputError, match="needs its CUDA or TensorRT provider"):
        rtstereo.load(str(toy_path), device="cuda:0")


def test_no_available_provider_is_an_error(toy_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA")
    with pytest.raises(InputError, match="none of the execution providers CUDAExecutionProvider"):
        open_session(toy_path, device="cuda", providers="cuda")


def test_threads_come_from_the_argument_or_the_environment(toy_path, monkeypatch):
    with pytest.raises(InputError, match="threads must be >= 1, got 0"):
        open_session(toy_path, threads=0)
    with pytest.raises(InputError, match="threads: expected a whole number of threads >= 1, got float 1.5"):
        open_session(toy_path, threads=1.5)
    # a numpy integer is a whole number, as limit_threads and bench take it: it was refused as "got np.int64(1)"
    assert open_session(toy_path, threads=np.int64(1)).get_session_options().intra_op_num_threads == 1
    for value in ("two", "²"):  # "²" is a digit to str.isdigit, which int() refused with a bare ValueError
        monkeypatch.setenv("RTSTEREO_THREADS", value)
        with pytest.raises(InputError, match=f"RTSTEREO_THREADS must be a whole number >= 1, got '{value}'"):
            open_session(toy_path)
    monkeypatch.setenv("RTSTEREO_THREADS", "1")
    assert open_session(toy_path).get_providers() == ["CPUExecutionProvider"]


NOT_WHOLE = "threads: expected a whole number of threads >= 1"


@pytest.mark.parametrize(
    ("threads", "message"),
    [
        (0, "threads must be >= 1, got 0"),
        (-1, "threads must be >= 1, got -1"),
        (None, f"{NOT_WHOLE}, got NoneType None"),
        ("2", f"{NOT_WHOLE}, got str '2'"),
        (1.5, f"{NOT_WHOLE}, got float 1.5"),
        (True, f"{NOT_WHOLE}, got bool True"),
    ],
)
def test_limit_threads_refuses_what_is_no_thread_count_and_changes_nothing(threads, message, monkeypatch):
    """limit_threads(0) or (None) wrote "0" or "None" to $RTSTEREO_THREADS, and every model loaded after it was
    refused for that; limit_threads("2") set it, then failed in OpenCV with a bare TypeError."""
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)
    before = cv2.getNumThreads()
    with pytest.raises(InputError, match=rf"^{re.escape(message)}$"):
        limit_threads(threads)
    assert "RTSTEREO_THREADS" not in os.environ and cv2.getNumThreads() == before


def test_results_record_the_threads_onnx_runtime_was_given(toy_path, monkeypatch):
    """The settings of a result said nothing of them: two runs at 1 and 8 threads gave the same record."""
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)
    left, right = _gradient_pair(SIZE_HW)
    assert load_onnx(toy_path, threads=3).predict(left, right).settings["threads"] == 3
    assert load_onnx(toy_path, settings={"threads": "2"}).predict(left, right).settings["threads"] == 2
    monkeypatch.setenv("RTSTEREO_THREADS", "1")  # as --threads 1 sets it
    assert load_onnx(toy_path).predict(left, right).settings["threads"] == 1
    monkeypatch.delenv("RTSTEREO_THREADS")
    assert "threads" not in load_onnx(toy_path).predict(left, right).settings  # ONNX Runtime's own choice


def test_an_export_on_first_use_records_its_threads(toy_path, monkeypatch):
    """``backend="onnxruntime"`` for a registry network: its sessions' threads were left out of the settings."""
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)

    @dataclasses.dataclass(frozen=True)
    class Exported:
        path: Path
        init_path: Path | None = None

    spec = ModelSpec(name="toy", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    predictor = ort_backend.predictor_from_export(spec, {}, lambda *_: Exported(toy_path), threads=2)
    assert predictor.predict(*_gradient_pair((16, 24))).settings["threads"] == 2


def test_a_hybrid_records_its_networks_share_of_the_threads(textured_pair):
    """An unguided network runs beside SGBM on all threads but one; a guided one after it, on all."""
    left, right = textured_pair
    unguided = rtstereo.load("hybrid", max_disp=16, network="rtnet-v5", threads=3)
    assert unguided.predict(left, right).settings["threads"] == 2
    unguided.close()
    guided = rtstereo.load("hybrid", max_disp=16, threads=3)
    assert guided.predict(left, right).settings["threads"] == 3
    guided.close()


def test_a_hybrids_guided_network_opens_one_session(monkeypatch):
    """The guided network's file says it is guided: its session opens once, on every thread (it opened twice,
    first on all threads but SGBM's, about 60 ms more at each load of `default`)."""
    from rtstereo.runtime import providers

    opened, start = [], providers._start_session

    def counted(ort, path, options, chosen):
        opened.append((Path(path).name, options.intra_op_num_threads))
        return start(ort, path, options, chosen)

    monkeypatch.setattr(providers, "_start_session", counted)
    rtstereo.load("hybrid", max_disp=16, threads=3).close()
    assert opened == [("rtnet-guided.onnx", 3)]
    opened.clear()
    rtstereo.load("hybrid", max_disp=16, network="rtnet-v5", threads=3).close()
    assert opened == [("rtnet-v5.onnx", 2)]


def test_the_contract_is_read_from_the_file_as_a_session_reads_it(toy_path, tmp_path):
    assert ort_backend.file_contract(toy_path) == ort_backend.read_contract(open_session(toy_path), toy_path)
    packaged = ort_backend.packaged_path(rtstereo.models.get_spec("rtnet-guided"))
    assert ort_backend.file_contract(packaged).settings["guided"] is True
    # no rtstereo metadata, not ONNX, cut short, missing: unknown, for a session to find out
    assert ort_backend.file_contract(toy_single(tmp_path / "bare.onnx", metadata=False)) is None
    (tmp_path / "text.onnx").write_text("not a protocol buffer at all")
    (tmp_path / "short.onnx").write_bytes(toy_path.read_bytes()[:-7])
    for name in ("text.onnx", "short.onnx", "missing.onnx"):
        assert ort_backend.file_contract(tmp_path / name) is None


def test_cpu_threads_sleep_after_their_work_unless_asked_to_spin(toy_path, monkeypatch):
    from rtstereo.runtime.providers import cpu_spinning

    monkeypatch.delenv("RTSTEREO_ORT_SPIN", raising=False)
    assert cpu_spinning() is False
    spins = []
    real = onnxruntime_session_options()

    class Recording(real):
        def add_session_config_entry(self, key, value):
            spins.append((key, value))
            super().add_session_config_entry(key, value)

    monkeypatch.setattr("onnxruntime.SessionOptions", Recording)
    open_session(toy_path, threads=1)
    assert spins == [("session.intra_op.allow_spinning", "0")]
    monkeypatch.setenv("RTSTEREO_ORT_SPIN", "1")
    spins.clear()
    open_session(toy_path, threads=1)
    assert cpu_spinning() is True and spins == []
    monkeypatch.setenv("RTSTEREO_ORT_SPIN", "yes")
    with pytest.raises(InputError, match="RTSTEREO_ORT_SPIN must be 0 or 1"):
        open_session(toy_path)


def onnxruntime_session_options():
    import onnxruntime

    return onnxruntime.SessionOptions


# --- exported files ------------------------------------------------------------------------------------


def test_exported_file_loads_with_no_other_flag(toy_path):
    predictor = rtstereo.load(str(toy_path))
    left, right = _gradient_pair(SIZE_HW)
    result = predictor.predict(left, right)
    expected = SCALE_PX * left.astype(np.float32).mean(axis=2) / 255.0 + 1.0
    np.testing.assert_allclose(result.disparity_px, expected, atol=1e-4)
    assert predictor.name == "toy-net" and predictor.fixed_size_hw == SIZE_HW
    assert result.settings["backend"] == "onnxruntime" and result.settings["max_disp"] == 16
    assert result.settings["providers"] == ["CPUExecutionProvider"]


def test_another_input_size_is_resized_with_a_warning_and_rescaled(toy_path):
    predictor = load_onnx(toy_path)
    grey = np.full((32, 48, 3), 102, np.uint8)  # twice the export size
    with pytest.warns(ResizeWarning, match=r"resized and the disparity rescaled by 2.0000$"):
        result = predictor.predict(grey, grey)
    assert result.disparity_px.shape == (32, 48)
    np.testing.assert_allclose(result.disparity_px, 2 * (SCALE_PX * 102 / 255 + 1), rtol=1e-5)
    # twice as tall, as wide: disparity is horizontal, so only the width ratio (1) scales it; the stretch is said
    stretched = r"rescaled by 1.0000; the views are stretched \(aspect ratio W/H 0.75 run at 1.50\): an export at the"
    with pytest.warns(ResizeWarning, match=stretched):
        result = predictor.predict(grey[:, :24], grey[:, :24])
    with pytest.warns(ResizeWarning, match=r"rescaled by 1.0417$"):  # 5 % or less is no stretch worth a word
        predictor.predict(grey[:17, :25], grey[:17, :25])
    assert result.disparity_px.shape == (32, 24)
    np.testing.assert_allclose(result.disparity_px, SCALE_PX * 102 / 255 + 1, rtol=1e-5)


def test_a_fixed_size_map_records_its_scale_and_its_range_top_follows_it(tmp_path):
    """A fixed-size export run on a smaller pair is wider than its input, as a padded network is: the top of its
    range was taken in the network's pixels (11 px where the map, halved, held 5.5 px), so a map piled up
    there was not warned about."""
    from rtstereo.runtime.predictor import range_ceiling_share

    path = toy_single(tmp_path / "t.onnx", contract=_contract(settings={"max_disp": 12}))  # white: 11 px, the top
    predictor = load_onnx(path)
    for size_hw, scale in (((8, 12), 0.5), ((32, 48), 2.0), (SIZE_HW, 1.0)):
        white = np.full((*size_hw, 3), 255, np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResizeWarning)
            result = predictor.predict(white, white)
        assert result.disparity_scale == scale
        np.testing.assert_allclose(result.disparity_px, 11 * scale, rtol=1e-5)
        assert range_ceiling_share(result, predictor.max_disp_px) == (1.0, 11 * scale)


def test_invalid_pixels_of_a_fixed_size_map_are_not_interpolated_into_valid_ones(toy_path, monkeypatch):
    """Marked invalid after the resize, a 0 beside 10 px became a valid 5 px (then 10 px once rescaled)."""
    predictor = load_onnx(toy_path)
    network_map = np.full(SIZE_HW, 10.0, np.float32)
    network_map[:, : SIZE_HW[1] // 2] = 0.0  # the network found no match on the left half
    network_map[4, -3] = np.inf  # an fp16 overflow: invalid too
    monkeypatch.setattr(predictor.backend, "run", lambda left, right: network_map)
    grey = np.full((32, 48, 3), 102, np.uint8)  # twice the export size
    with pytest.warns(ResizeWarning):
        disparity = predictor.predict(grey, grey).disparity_px
    valid = np.isfinite(disparity)
    np.testing.assert_allclose(disparity[valid], 20.0, rtol=1e-5)  # every valid pixel is a rescaled 10 px
    assert not valid[:, :24].any() and valid[:, 26:].mean() > 0.9  # invalid spreads by at most the kernel
    assert not valid[8:10, -6:-4].any()  # the overflow's pixels too


def test_predict_command_needs_only_the_model_file(toy_path, tmp_path, capsys):
    from rtstereo.cli import main

    left, right = _gradient_pair(SIZE_HW)
    for name, image in (("l.png", left), ("r.png", right)):
        cv2.imwrite(str(tmp_path / name), image[:, :, ::-1])
    code = main(
        [
            "predict",
            "--model",
            str(toy_path),
            str(tmp_path / "l.png"),
            str(tmp_path / "r.png"),
            "-o",
            str(tmp_path / "d.npy"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    expected = SCALE_PX * left.astype(np.float32).mean(axis=2) / 255.0 + 1.0
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), expected, atol=1e-4)


def test_runtime_settings_are_accepted_and_model_settings_must_match(toy_path):
    assert load_onnx(toy_path, settings={"threads": "1", "providers": "cpu", "max_disp": "16"}).settings == {
        "max_disp": 16
    }
    with pytest.raises(InputError, match="exported with max_disp=16 and cannot run with max_disp=32"):
        load_onnx(toy_path, settings={"max_disp": 32})
    with pytest.raises(InputError, match="exported without a setting 'iters'"):
        load_onnx(toy_path, settings={"iters": 4})
    with pytest.raises(
        InputError,
        match=r"as every model, fill_left_border, refine_edges; runtime options: threads, .*"
        r"; did you mean threads\?",
    ):
        load_onnx(toy_path, settings={"thread": 4})


def test_fp16_on_an_fp32_file_needs_tensorrt_and_bf16_is_refused(toy_path):
    with pytest.raises(InputError, match="holds an fp32 model and only TensorRT can run it in fp16") as refused:
        load_onnx(toy_path, precision="fp16")
    # re-exporting is offered with what it needs (it said "export it with --fp16" as if that needed nothing)
    assert "export its PyTorch network again with --fp16 (rtstereo export ... --fp16, which needs torch)" in str(
        refused.value
    )
    with pytest.raises(InputError, match="runs fp32 or fp16 exports, not 'bf16'"):
        load_onnx(toy_path, precision="bf16")


def test_fp16_on_a_packaged_network_does_not_send_the_user_to_export_it():
    """--precision fp16 with the default model said "export it with --fp16": rtstereo export refuses a packaged
    network (ONNX only, no PyTorch network), and would need torch besides."""
    from rtstereo.models import get_spec

    with pytest.raises(InputError) as refused:
        ort_backend.load_packaged(get_spec("rtnet-v5"), precision="fp16")
    message = str(refused.value)
    assert "only TensorRT can run it in fp16 (--device cuda with onnxruntime-gpu's TensorRT provider)" in message
    assert "the packaged rtnet-v5 ships in fp32 only and cannot be exported again" in message
    assert message.endswith("use --precision fp32 (precision= in Python)") and "--fp16" not in message


def test_fp16_file_reports_fp16(tmp_path):
    path = toy_single(tmp_path / "t16.onnx", contract=_contract(precision="fp16"))
    with pytest.warns(HalfOnCpuWarning):
        assert load_onnx(path).backend.describe()["precision"] == "fp16"


def test_an_fp16_file_turns_on_tensorrts_fp16_mode_without_precision_fp16(tmp_path, toy_path, monkeypatch):
    """TensorRT builds fp16 engines only when its session is told to: an fp16 export loaded without --precision fp16
    was built in fp32 (the docs said it runs in fp16 whatever --precision says)."""
    import onnxruntime

    real_open, real = ort_backend.open_session, onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["TensorrtExecutionProvider", *real])
    opened = []

    def recording_open(path, device="cpu", precision="fp32", **kwargs):
        opened.append((Path(path).name, device, precision))
        return real_open(path)  # the CPU stands in for the GPU session

    monkeypatch.setattr(ort_backend, "open_session", recording_open)
    fp16 = toy_single(tmp_path / "t16.onnx", contract=_contract(precision="fp16"))
    with pytest.warns(HalfOnCpuWarning):
        load_onnx(fp16, device="cuda", settings={"parity": "off"})
    assert opened[-1] == ("t16.onnx", "cuda", "fp16")
    opened.clear()
    load_onnx(toy_path, device="cuda", settings={"parity": "off"})  # an fp32 file: as asked
    assert opened[-1] == ("toy.onnx", "cuda", "fp32")
    opened.clear()
    with pytest.warns(HalfOnCpuWarning):
        load_onnx(fp16, device="cuda", settings={"providers": "cuda,cpu", "parity": "off"})  # no TensorRT: no peek
    assert opened == [("t16.onnx", "cuda", "fp32")]


def test_int8_file_reports_int8(tmp_path):
    """An int8 export's results read "precision": "fp32" (the --precision default), and --precision fp16 on it
    said it held an fp32 model."""
    path = toy_single(tmp_path / "t8.onnx", contract=_contract(precision="int8"))
    predictor = load_onnx(path)
    assert predictor.backend.describe()["precision"] == "int8"
    left, right = _gradient_pair(SIZE_HW)
    assert predictor.predict(left, right).settings["precision"] == "int8"
    with pytest.raises(InputError, match="holds an int8 model and only TensorRT can run it in fp16"):
        load_onnx(path, precision="fp16")


def test_fp16_on_the_cpu_provider_says_it_runs_in_float32_behind_casts(tmp_path, toy_path):
    """An fp16 file, or --precision fp16 on --backend onnxruntime, ran on the CPU without a word: the CPU
    provider runs float16 operators it has no kernel for in float32, so the user got fp16's rounding and
    no speed."""
    path = toy_single(tmp_path / "t16.onnx", contract=_contract(precision="fp16"))
    with pytest.warns(
        HalfOnCpuWarning,
        match=r"t16.onnx is float16 and runs on ONNX Runtime's CPU provider.*"
        r"float32 behind casts.*use a file exported without --fp16",
    ):
        load_onnx(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HalfOnCpuWarning)
        load_onnx(toy_path)  # fp32: nothing to say

    @dataclasses.dataclass(frozen=True)
    class Exported:
        path: Path
        init_path: Path | None = None

    def export(size_hw, left, right):
        return Exported(toy_single(tmp_path / f"toy_{size_hw[0]}x{size_hw[1]}.onnx", size_hw))

    spec = ModelSpec(name="toy", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    for precision in ("fp16", "fp32"):
        predictor = ort_backend.predictor_from_export(spec, {}, export, precision=precision)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predictor.predict(*_gradient_pair((16, 24)))
            predictor.predict(*_gradient_pair((32, 24)))  # a second size: said once per predictor
        said = [str(w.message) for w in caught if w.category is HalfOnCpuWarning]
        assert said == (
            [
                "the network's fp16 export is float16 and runs on ONNX Runtime's CPU provider, which "
                "computes the float16 operators it has no kernel for in float32 behind casts: fp16's "
                "rounding without fp16's speed (often slower than fp32); on the CPU use --precision fp32 (precision= "
                "in Python); fp16 pays off with --device cuda (device= in Python)"
            ]
            if precision == "fp16"
            else []
        )


def test_a_load_failure_with_an_empty_message_names_its_type(tmp_path, monkeypatch):
    """A bare ``RuntimeError()`` of ONNX Runtime raised IndexError from ``str(exc).splitlines()[0]``."""
    import onnxruntime

    path = toy_single(tmp_path / "toy.onnx")

    def bare(*_args, **_kwargs):
        raise RuntimeError()

    monkeypatch.setattr(onnxruntime, "InferenceSession", bare)
    with pytest.raises(CheckpointError, match=r"ONNX Runtime cannot load .*toy\.onnx: RuntimeError\. Is it a complete"):
        load_onnx(path)


def test_missing_and_foreign_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="ONNX model not found"):
        load_onnx(tmp_path / "nope.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(CheckpointError, match="ONNX Runtime cannot load"):
        load_onnx(tmp_path / "text.onnx")
    bare = toy_single(tmp_path / "bare.onnx", metadata=False)
    with pytest.raises(CheckpointError, match="has no rtstereo metadata.*rtstereo export"):
        load_onnx(bare)


def test_damaged_metadata_is_a_checkpoint_error(tmp_path):
    model = onnx.load(str(toy_single(tmp_path / "t.onnx")))
    helper.set_model_props(model, {METADATA_KEY: '{"format": "rtstereo-onnx", "model": 3}'})
    onnx.save_model(model, str(tmp_path / "bad.onnx"))
    with pytest.raises(CheckpointError, match="metadata entry is damaged"):
        load_onnx(tmp_path / "bad.onnx")
    helper.set_model_props(model, {METADATA_KEY: _contract(role="middle").to_json()})
    onnx.save_model(model, str(tmp_path / "role.onnx"))
    with pytest.raises(CheckpointError, match="unknown export role 'middle'"):
        load_onnx(tmp_path / "role.onnx")


def test_wrong_input_or_output_names_are_reported(tmp_path):
    model = onnx.load(str(toy_single(tmp_path / "t.onnx")))
    model.graph.output[0].name = "depth"
    model.graph.node[-1].output[0] = "depth"
    onnx.save_model(model, str(tmp_path / "depth.onnx"))
    with pytest.raises(CheckpointError, match="has no output 'disparity' \\(it has: depth\\)"):
        load_onnx(tmp_path / "depth.onnx")


def test_a_model_without_the_expected_inputs_is_reported(tmp_path):
    model = onnx.load(str(toy_single(tmp_path / "t.onnx")))
    model.graph.input[0].name = "image_left"
    model.graph.node[0].input[0] = "image_left"
    onnx.save_model(model, str(tmp_path / "renamed.onnx"))
    with pytest.raises(CheckpointError, match="has no input 'left' \\(it has: image_left, right\\)"):
        load_onnx(tmp_path / "renamed.onnx")


def test_a_provider_that_fails_to_start_is_skipped_with_a_warning(toy_path, monkeypatch):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA starts on this machine")
    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = open_session(toy_path, device="cuda", providers="cuda,cpu")
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert any("could not start CUDAExecutionProvider" in str(w.message) for w in caught)


def test_a_gpu_provider_that_fails_to_start_leaves_the_others_their_options_and_stdout_alone(
    toy_path, monkeypatch, capsys
):
    """TensorRT failing to start (its libraries missing) set off ONNX Runtime's own fall-back: a banner on stdout,
    and CUDA retried without its options, so --device cuda:1 ran on GPU 0."""
    import onnxruntime

    real_session, real = onnxruntime.InferenceSession, onnxruntime.get_available_providers()
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", *real]
    )
    started = []

    class Session:  # ONNX Runtime as it behaves where TensorRT cannot start (its fall-back included)
        def __init__(self, path, sess_options=None, providers=None, **kwargs):
            names = [p[0] if isinstance(p, tuple) else p for p in providers]
            if names[0] == "TensorrtExecutionProvider":
                if int(kwargs.get("enable_fallback", 1)) == 0:
                    raise RuntimeError("libnvinfer.so.10: cannot open shared object file\nmore")
                print("*************** EP Error ***************")
                providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]  # ORT's retry: no options
            self.providers = providers
            started.append(providers)
            self.session = real_session(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

        def get_providers(self):
            return [p[0] if isinstance(p, tuple) else p for p in self.providers]

    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    with pytest.warns(ProviderFallbackWarning, match="could not start TensorrtExecutionProvider") as caught:
        session = open_session(toy_path, device="cuda:1")
    assert session.get_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert started[-1][0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert capsys.readouterr().out == ""
    assert "(TensorrtExecutionProvider: libnvinfer.so.10: cannot open shared object file)" in str(caught[0].message)


def test_cuda_on_a_gpu_that_is_not_there_says_onnx_runtimes_reason(toy_path, monkeypatch):
    """--device cuda:3 on a one-GPU machine: the error asked whether the CUDA libraries were installed, and ONNX
    Runtime's own reason (an invalid device ID) was printed on stdout by its fall-back, or lost."""
    import onnxruntime

    real_session, real = onnxruntime.InferenceSession, onnxruntime.get_available_providers()
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", *real]
    )

    def session(path, sess_options=None, providers=None, **kwargs):
        if providers[0][0] != "CPUExecutionProvider":
            raise RuntimeError("Invalid device ID: 3, must be between 0 (inclusive) and 1 (exclusive).")
        return real_session(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    with pytest.raises(
        InputError,
        match=r"could not start TensorrtExecutionProvider or CUDAExecutionProvider on "
        r"cuda:3 \(TensorrtExecutionProvider: Invalid device ID: 3, must be between 0 \(inclusive\) "
        r"and 1 \(exclusive\).; CUDAExecutionProvider: Invalid device ID: 3",
    ):
        open_session(toy_path, device="cuda:3")


def test_an_engine_cache_that_cannot_be_made_is_one_line(toy_path, tmp_path, monkeypatch):
    """--set engine_cache=FILE on TensorRT ended in a bare FileExistsError."""
    import onnxruntime

    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["TensorrtExecutionProvider", *real])
    taken = tmp_path / "taken"
    taken.write_text("x")
    for cache in (taken, taken / "engines"):
        with pytest.raises(
            OutputError,
            match=rf"^cannot make the TensorRT engine cache {re.escape(str(cache))}: .*"
            rf"{re.escape(str(taken))} is a file, not a folder; give a folder .* --set engine_cache=DIR",
        ):
            open_session(toy_path, device="cuda", providers="tensorrt,cpu", engine_cache=cache)


def test_unknown_model_name_in_a_file_still_loads_from_its_own_contract(toy_path):
    predictor = load_onnx(toy_path)
    assert predictor.spec.normalization == "unit" and predictor.spec.summary == "toy-net (ONNX export)"


# --- two-pass pairs ------------------------------------------------------------------------------------


def test_two_pass_export_runs_the_half_size_pass_first(tmp_path):
    path, _ = toy_two_pass(tmp_path / "cre.onnx")
    predictor = rtstereo.load(str(path))
    left, right = _gradient_pair((16, 32))
    result = predictor.predict(left, right)
    prepared = [x.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 for x in (left, right)]
    halves = [resize_align_corners(x, (8, 16)) for x in prepared]
    expected = prepared[0][0].mean(axis=0) + np.mean([h.mean() for h in halves])
    np.testing.assert_allclose(result.disparity_px, expected, atol=1e-5)
    assert result.settings["onnx_init"].endswith("cre_init.onnx")


def test_the_half_size_file_alone_is_refused_and_a_missing_companion_is_reported(tmp_path):
    path, init_path = toy_two_pass(tmp_path / "cre.onnx")
    with pytest.raises(InputError, match="half-size first pass of a two-pass export; load the refinement model"):
        load_onnx(init_path)
    init_path.unlink()
    with pytest.raises(CheckpointError, match="its half-size first pass .*cre_init.onnx is missing beside it"):
        load_onnx(path)


def test_an_upper_case_suffix_names_the_refinement_model_as_written(tmp_path, capsys):
    """`rtstereo models CRE_init.ONNX` advised `--model CRE_init.ONNX.onnx`, and predict's refusal named it too."""
    from rtstereo.cli import main

    path, init_path = toy_two_pass(tmp_path / "CRE.ONNX")
    assert init_path.name == "CRE_init.ONNX"
    assert main(["models", str(init_path)]) == 0
    assert capsys.readouterr().out.endswith(f"rtstereo predict LEFT RIGHT --model {path}\n")
    with pytest.raises(InputError, match=r"load the refinement model beside it \(CRE\.ONNX\), which runs both"):
        load_onnx(init_path)


def test_align_corners_resize_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(1, 3, 12, 20)).astype(np.float32)
    for size_hw in [(6, 10), (5, 7), (24, 40)]:
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=size_hw, mode="bilinear", align_corners=True
        ).numpy()
        np.testing.assert_allclose(resize_align_corners(x, size_hw), ref, atol=1e-5)


# --- packaging and imports -----------------------------------------------------------------------------


def test_packaged_model_errors_name_the_problem():
    spec = ModelSpec(name="shipped", summary="s", kind="onnx", builder="", onnx_file="not-shipped.onnx")
    with pytest.raises(CheckpointError, match="packaged model file .*not-shipped.onnx is missing"):
        load_packaged(spec)
    with pytest.raises(CheckpointError, match="names no onnx_file"):
        load_packaged(ModelSpec(name="shipped", summary="s", kind="onnx", builder=""))


def test_onnx_inference_path_runs_without_torch(toy_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now raises ImportError
        "import numpy as np, rtstereo\n"
        f"m = rtstereo.load({str(toy_path)!r})\n"
        "r = m.predict(np.full((16, 24, 3), 51, np.uint8), np.full((16, 24, 3), 51, np.uint8))\n"
        "print(round(float(r.disparity_px.mean()), 3))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3.0"


def test_runtime_imports_nothing_from_the_exporter():
    """The exporter depends on the runtime, never the reverse (no import circle)."""
    code = (
        "import sys, rtstereo.runtime.onnx, rtstereo.runtime.backends, rtstereo.runtime.predictor\n"
        "print(sorted(m for m in sys.modules if m.startswith('rtstereo.export')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # Imports inside functions only run when called: read every runtime module's imports too.
    for path in sorted((SRC / "rtstereo" / "runtime").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                targets = ["." * node.level + (node.module or "")]
                targets += [f"{targets[0]}.{alias.name}".replace("...", "..") for alias in node.names]
                for target in targets:
                    assert not re.match(r"(\.\.|rtstereo\.)export\b", target), f"{path.name} imports {target}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("rtstereo.export") for a in node.names), path.name


def test_export_function_is_called_once_per_padded_size(toy_path):
    """The runtime runs whatever export function the layer above hands it, once per size."""
    calls = []

    @dataclasses.dataclass(frozen=True)
    class Exported:
        path: Path
        init_path: Path | None = None

    def export(size_hw, left, right):
        calls.append((size_hw, left.shape, left.dtype))
        return Exported(toy_path)

    spec = ModelSpec(name="toy", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    predictor = ort_backend.predictor_from_export(spec, {}, export)
    for _ in range(2):
        predictor.predict(*_gradient_pair((16, 24)))
    assert calls == [((16, 24), (1, 3, 16, 24), np.float32)]
    assert predictor.backend.exports[(16, 24)].path == toy_path


def test_an_export_on_first_use_is_timed_apart_from_the_model(toy_path, capsys):
    """The first pair's inference was the export's time (1.9 s for AnyNet, against 2 ms), and so was the
    batch's mean per pair in the model."""
    import time

    from rtstereo.batch import BatchJob, run_local
    from rtstereo.sources.pairs import PairSource

    @dataclasses.dataclass(frozen=True)
    class Exported:
        path: Path
        init_path: Path | None = None

    def slow_export(size_hw, left, right):
        time.sleep(0.3)
        return Exported(toy_path)

    spec = ModelSpec(name="toy", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    predictor = ort_backend.predictor_from_export(spec, {}, slow_export)
    first, second = (predictor.predict(*_gradient_pair((16, 24))) for _ in range(2))
    assert first.timings_ms["export"] >= 300 and first.timings_ms["inference"] < 200
    assert first.timings_ms["total"] < 250 and "export" not in second.timings_ms
    predictor = ort_backend.predictor_from_export(spec, {}, slow_export)
    folder = toy_path.parent / "batch"
    folder.mkdir(exist_ok=True)
    sources = []
    for i in range(2):
        left, right = _gradient_pair((16, 24))
        for side, image in (("l", left), ("r", right)):
            cv2.imwrite(str(folder / f"{side}{i}.png"), image[:, :, ::-1])
        sources.append(PairSource(str(folder / f"l{i}.png"), str(folder / f"r{i}.png"), f"p{i}"))
    summary = run_local(BatchJob(output=folder / "out", formats=("pfm",)), predictor, sources)
    assert [o.export_ms >= 300 for o in summary.outcomes] == [True, False]
    assert all(o.model_ms < 250 for o in summary.outcomes)
    assert "s of it for the network's ONNX exports (once per size and worker)" in summary.report()


def test_threads_sharing_an_export_on_first_use_predictor_export_once_and_time_their_own(toy_path):
    """Two threads with a new size exported it twice, and the first to finish took both exports' time as
    its own: an inference time of about -300 ms."""
    import threading
    import time

    calls = []

    @dataclasses.dataclass(frozen=True)
    class Exported:
        path: Path
        init_path: Path | None = None

    def slow_export(size_hw, left, right):
        calls.append(size_hw)
        time.sleep(0.3)
        return Exported(toy_path)

    spec = ModelSpec(name="toy", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    predictor = ort_backend.predictor_from_export(spec, {}, slow_export)
    pair = _gradient_pair((16, 24))
    start, results = threading.Barrier(2), []

    def predict():
        start.wait()
        results.append(predictor.predict(*pair))

    threads = [threading.Thread(target=predict) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [(16, 24)]
    for result in results:
        assert result.timings_ms["inference"] >= 0 and result.timings_ms["total"] >= 0, result.timings_ms
        assert result.timings_ms["export"] >= 250, result.timings_ms  # the one exporting, or waiting for it
    np.testing.assert_array_equal(results[0].disparity_px, results[1].disparity_px)


# --- registry networks exported on the fly -------------------------------------------------------------


@pytest.fixture
def toy_network():
    torch = pytest.importorskip("torch")

    class ToyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(6, 1, 3, padding=1)

        def forward(self, left, right):
            return 4 * torch.nn.functional.softplus(self.conv(torch.cat((left, right), 1)))[:, 0]

    spec = ModelSpec(
        name="toy-net",
        summary="toy",
        kind="network",
        builder="",
        defaults={"max_disp": 16},
        normalization="unit",
        size_divisor=8,
    )
    return spec, ToyNet().eval()


def test_onnxruntime_backend_exports_once_per_padded_size_and_matches_torch(toy_network, tmp_path, monkeypatch):
    from rtstereo.export import on_demand, onnx_export
    from rtstereo.runtime.backends import TorchBackend
    from rtstereo.runtime.predictor import Predictor

    spec, module = toy_network
    calls = []
    real_export = onnx_export.export_onnx
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: calls.append(a[3]) or real_export(*a, **k))
    predictor = on_demand.predictor_from_module(spec, {"max_disp": 16}, module, cache=tmp_path)
    reference = Predictor(spec, {"max_disp": 16}, TorchBackend(module))
    left, right = _gradient_pair((20, 30))  # padded to 24x32
    for _ in range(2):
        result = predictor.predict(left, right)
    np.testing.assert_allclose(result.disparity_px, reference.predict(left, right).disparity_px, atol=1e-4)
    assert calls == [(24, 32)]
    assert predictor.predict(*_gradient_pair((16, 16))).disparity_px.shape == (16, 16)
    assert calls == [(24, 32), (16, 16)]
    again = on_demand.predictor_from_module(spec, {"max_disp": 16}, module, cache=tmp_path)
    again.predict(left, right)
    assert len(calls) == 2, "the second predictor found the verified export in the cache"
    assert Path(again.backend.describe()["onnx"]).parent == tmp_path


def test_onnxruntime_backend_refuses_bf16_and_bad_devices(toy_network):
    from rtstereo.export import on_demand

    spec, module = toy_network
    with pytest.raises(InputError, match="runs fp32 or fp16, not 'bf16'"):
        on_demand.predictor_from_module(spec, {}, module, precision="bf16")
    with pytest.raises(InputError, match="device must be cpu or cuda"):
        on_demand.predictor_from_module(spec, {}, module, device="tpu")


@pytest.mark.slow
def test_registry_network_on_the_onnxruntime_backend(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from rtstereo.models.anynet import build_anynet
    from rtstereo.models.checkpoint import save_checkpoint

    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    module = build_anynet({"stage": 2})
    save_checkpoint(tmp_path / "anynet.ckpt", "anynet", {"stage": 2}, module.state_dict())
    left, right = _gradient_pair((32, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ort_result = rtstereo.load(str(tmp_path / "anynet.ckpt"), backend="onnxruntime").predict(left, right)
        torch_result = rtstereo.load(str(tmp_path / "anynet.ckpt")).predict(left, right)
    assert ort_result.settings["backend"] == "onnxruntime"
    np.testing.assert_allclose(
        np.nan_to_num(ort_result.disparity_px), np.nan_to_num(torch_result.disparity_px), atol=1e-2
    )


# --- GPU providers: the check against the CPU provider (run on the CPU with a stand-in GPU session) ---


class _GpuStandIn:
    """A CPU session that says it runs on a GPU provider and adds ``offset_px`` to its output."""

    def __init__(self, session, provider: str, offset_px: float):
        self.session, self.provider, self.offset_px = session, provider, offset_px

    def __getattr__(self, name):
        return getattr(self.session, name)

    def get_providers(self):
        return [self.provider, "CPUExecutionProvider"]

    def run(self, names, feed):
        return [out + np.float32(self.offset_px) for out in self.session.run(names, feed)]


def _checked_predictor(toy_path, tmp_path, offset_px, parity="warn", provider="CUDAExecutionProvider", engines=None):
    cache = tmp_path / "engines"
    session = _GpuStandIn(open_session(toy_path), provider, offset_px)
    backend = ort_backend.OnnxRuntimeBackend(session, toy_path, "cuda", "fp32")
    before = ort_backend.engine_files(cache) if engines is None else engines
    ort_backend._check_provider(backend, session, toy_path, None, "fp32", 1, parity, cache, before)
    return Predictor(_contract().spec(), {}, backend, fixed_size_hw=SIZE_HW)


def test_a_gpu_provider_is_checked_against_the_cpu_once_and_reported(toy_path, tmp_path):
    predictor = _checked_predictor(toy_path, tmp_path, offset_px=0.01)
    left, right = _gradient_pair(SIZE_HW)
    result = predictor.predict(left, right)
    parity = result.settings["provider_parity"]
    assert parity["mean_abs_px"] == pytest.approx(0.01, abs=1e-4) and parity["bad1_pct"] == 0.0
    assert predictor.backend.check.pending is False  # later pairs are not checked again


@pytest.mark.parametrize("parity", ["warn", "refuse"])
def test_a_gpu_provider_beyond_the_tolerance_warns_or_is_refused(toy_path, tmp_path, parity):
    from rtstereo.runtime.agreement import ParityWarning
    from rtstereo.runtime.providers import ProviderParityError

    predictor = _checked_predictor(toy_path, tmp_path, offset_px=2.0, parity=parity)
    left, right = _gradient_pair(SIZE_HW)
    if parity == "refuse":
        with pytest.raises(ProviderParityError, match="CUDAExecutionProvider vs CPUExecutionProvider: max 2 px"):
            predictor.predict(left, right)
    else:
        with pytest.warns(ParityWarning, match="bad-1 100 %.*beyond the tolerance"):
            predictor.predict(left, right)


def test_parity_off_and_the_cpu_provider_are_not_checked(toy_path, tmp_path):
    off = _checked_predictor(toy_path, tmp_path, offset_px=2.0, parity="off")
    left, right = _gradient_pair(SIZE_HW)
    assert "provider_parity" not in off.predict(left, right).settings
    on_cpu = load_onnx(toy_path, settings={"parity": "refuse"})
    assert on_cpu.backend.check is None and "provider_parity" not in on_cpu.predict(left, right).settings


def test_tensorrt_is_checked_when_it_built_an_engine_not_when_it_found_one(toy_path, tmp_path):
    left, right = _gradient_pair(SIZE_HW)
    trt = "TensorrtExecutionProvider"
    cached = _checked_predictor(toy_path, tmp_path, offset_px=0.02, provider=trt)
    assert "provider_parity" not in cached.predict(left, right).settings  # no new engine file
    built = _checked_predictor(toy_path, tmp_path, offset_px=0.02, provider=trt)
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "toy.engine").write_bytes(b"engine")
    assert built.predict(left, right).settings["provider_parity"]["mean_abs_px"] == pytest.approx(0.02, abs=1e-4)


def test_engine_cache_and_parity_settings(toy_path, tmp_path):
    predictor = load_onnx(toy_path, settings={"engine_cache": str(tmp_path / "e"), "parity": "off"})
    assert predictor.settings == {"max_disp": 16}
    with pytest.raises(InputError, match="setting 'parity': expected one of warn, refuse, off, got 'maybe'"):
        load_onnx(toy_path, settings={"parity": "maybe"})
    providers = provider_list("cuda", "fp16", engine_cache=tmp_path / "e")
    assert providers[0][1]["trt_engine_cache_path"] == str(tmp_path / "e")
    assert ort_backend.engine_cache_dir().name == "tensorrt"


def test_a_real_gpu_provider_reports_its_parity(toy_path, tmp_path):
    import onnxruntime

    if not set(ort_backend.GPU_PROVIDERS) & set(onnxruntime.get_available_providers()):
        pytest.skip("needs onnxruntime-gpu (CUDA or TensorRT provider); this build has the CPU only")
    predictor = load_onnx(toy_path, device="cuda", engine_cache=tmp_path / "engines")
    left, right = _gradient_pair(SIZE_HW)
    result = predictor.predict(left, right)
    assert result.settings["providers"][0] in ort_backend.GPU_PROVIDERS
    assert result.settings["provider_parity"]["mean_abs_px"] < 0.05


def test_a_network_warns_on_an_input_too_small_for_its_coarsest_level():
    from rtstereo.runtime.predictor import SmallInputWarning

    examples = Path(__file__).resolve().parents[2] / "examples"
    left, right = (cv2.imread(str(examples / f"{side}.png"))[:, :, ::-1] for side in ("left", "right"))
    network = rtstereo.load("rtnet-v5")
    tiny = [np.ascontiguousarray(cv2.resize(im, (36, 30), interpolation=cv2.INTER_AREA)) for im in (left, right)]
    with pytest.warns(SmallInputWarning, match=r"rtnet-v5 on 30x36 \(HxW\): at least 33 px each way .* not meaningful"):
        network.predict(*tiny)
    small = [np.ascontiguousarray(cv2.resize(im, (45, 37), interpolation=cv2.INTER_AREA)) for im in (left, right)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallInputWarning)
        network.predict(*small)
        rtstereo.load("default", max_disp=8).predict(*tiny)  # the hybrid's maps there are mostly SGBM's


def test_models_on_a_fixed_size_file_says_other_sizes_are_resized(toy_path, capsys):
    """It read "size 16x24 (HxW) only", as if other sizes were refused: predict resizes them (with a warning)."""
    from rtstereo.cli import main

    assert main(["models", str(toy_path)]) == 0
    assert (
        "  input: unit normalisation in RGB order, size 16x24 (HxW); other sizes are resized to it (--fit crop: their "
        "centred window of its aspect ratio), with a warning, and the disparity rescaled by the width ratio (export it "
        "with --dynamic for any size)\n"
    ) in capsys.readouterr().out


def test_models_on_the_half_size_file_says_to_run_its_refinement_model(tmp_path, capsys):
    """`rtstereo models cre_init.onnx` ended "use it: rtstereo predict LEFT RIGHT --model cre_init.onnx", which
    predict refuses (the first pass alone): it names the refinement model beside it."""
    from rtstereo.cli import main

    path, init_path = toy_two_pass(tmp_path / "cre.onnx")
    assert main(["models", str(init_path)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"  use it: through the refinement model beside it, rtstereo predict LEFT RIGHT --model {path}\n"
    )
    # It said "other sizes are resized to it ... with a warning", of a file that is only ever given the half-size
    # pair its refinement model makes.
    assert "size 8x16 (HxW), half its refinement model's, which halves each pair for it (cre.onnx takes pairs" in out
    assert "other sizes are resized to it" not in out
    assert main(["models", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"  use it: rtstereo predict LEFT RIGHT --model {path}\n")
    # It said "export with --dynamic for any size", which a two-pass CREStereo export refuses.
    assert "(re-export it at that size: a two-pass CREStereo export has fixed sizes)\n" in out
    assert "--dynamic" not in out


def test_a_two_pass_file_beside_another_exports_half_size_model_is_refused_when_loaded(tmp_path, capsys):
    """Another export's first pass of another size in the place of cre_init.onnx was ONNX Runtime's traceback
    ("Got invalid dimensions for input") on the first pair; one of another model ran as the refinement's input."""
    path, init_path = toy_two_pass(tmp_path / "cre.onnx")
    _, other_init = toy_two_pass(tmp_path / "other.onnx", size_hw=(24, 32))
    init_path.write_bytes(other_init.read_bytes())
    with pytest.raises(CheckpointError) as caught:
        rtstereo.load(str(path))
    assert str(caught.value) == (
        f"{init_path}, beside {path}, is not the half-size first pass of its two-pass export (size 12x16 (HxW), not "
        "8x16 (HxW)): keep the two files of one export together, or export again"
    )
    from rtstereo.cli import main

    assert main(["models", str(path)]) == 0  # it ended "use it: rtstereo predict LEFT RIGHT --model cre.onnx"
    assert capsys.readouterr().out.endswith(f"  use it: it does not run as it is: {caught.value}\n")
    toy_single(init_path)  # a single-pass export of the toy network
    with pytest.raises(CheckpointError, match=r"\(role single, not init; size 16x24 \(HxW\), not 8x16 \(HxW\)\): keep"):
        rtstereo.load(str(path))
    path, init_path = toy_two_pass(tmp_path / "cre.onnx")  # the export's own pair runs
    assert rtstereo.load(str(path)).predict(*[np.full((16, 32, 3), 90, np.uint8)] * 2).disparity_px.shape == (16, 32)


def test_a_file_fixed_below_two_cells_of_its_coarsest_level_is_warned_about_when_loaded(tmp_path):
    """An export at 8x8 of a network whose coarsest level is 1/8 gave meaningless maps without a word: the predictor
    warns of a pair it runs at its own size only, and a fixed-size file runs every pair at its own."""
    from rtstereo.runtime.predictor import SmallInputWarning

    path = toy_single(tmp_path / "tiny.onnx", size_hw=(8, 16))
    with pytest.warns(SmallInputWarning) as caught:
        rtstereo.load(str(path))
    assert [str(w.message) for w in caught if w.category is SmallInputWarning] == [
        f"{path} is fixed at 8x16 (HxW), where toy-net's coarsest level (1/8) spans fewer than two cells: every map "
        "it gives is not meaningful; export it at 16x16 or more"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallInputWarning)
        rtstereo.load(str(toy_single(tmp_path / "fine.onnx", size_hw=(16, 16))))


def test_a_two_pass_file_without_its_half_size_model_says_so(tmp_path, capsys):
    """It said "ONNX model not found: cre_init.onnx" alone, a file the user had not named."""
    from rtstereo.cli import main

    path, init_path = toy_two_pass(tmp_path / "cre.onnx")
    init_path.unlink()
    with pytest.raises(CheckpointError) as caught:
        rtstereo.load(str(path))
    assert str(caught.value) == (
        f"{path} is the refinement model of a two-pass export, and its half-size first pass {init_path} is missing "
        "beside it: keep the two files together, or export again"
    )
    assert main(["models", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  companion (half-size pass): {init_path.name} (missing beside it" in out
    # It ended "use it: rtstereo predict LEFT RIGHT --model cre.onnx", which predict refuses without the first pass.
    assert out.endswith(
        f"  use it: it does not run as it is: its half-size first pass {init_path.name} is missing beside it: keep "
        "the two files together, or export again\n"
    ), out


def test_bench_of_a_two_pass_file_at_another_size_advises_a_re_export_not_dynamic(tmp_path):
    from rtstereo.bench import run_bench

    path, _ = toy_two_pass(tmp_path / "cre.onnx")
    (row,) = run_bench([str(path)], [(40, 40)], warmup=1, runs=1, threads=1).rows
    assert row.status == "skipped" and row.reason.endswith(
        ", or re-export it at that size: a two-pass CREStereo export has fixed sizes"
    )


def test_a_failed_export_is_described_and_refused_as_one(toy_path, tmp_path, capsys):
    """`--model m.onnx.failed` (what export keeps when parity fails) was read as a PyTorch checkpoint: "cannot
    read weights file ...: not a PyTorch file"."""
    from rtstereo.bench import run_bench
    from rtstereo.cli import main

    failed = tmp_path / "m.onnx.failed"
    failed.write_bytes(toy_path.read_bytes())
    advice = (
        f"{failed} failed its parity check against PyTorch (report: {tmp_path / 'm.parity.json'}): re-export it, "
        "or rename it to end in .onnx to run it all the same"
    )
    with pytest.raises(InputError) as caught:
        rtstereo.load(str(failed))
    assert str(caught.value) == f"model {advice}"
    with pytest.raises(InputError, match="failed its parity check"):
        run_bench([str(failed)], [(16, 24)], warmup=1, runs=1)
    assert main(["models", str(failed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{failed}: an rtstereo export of toy-net")
    assert out.endswith(f"does not run as it is: {advice}\n")


def test_a_stream_summary_records_how_an_export_ran(toy_path, tmp_path):
    """video's summary (frames.json, out.json) recorded the model's settings only: an int8 or fp16 file's run, or
    one on another device, read as the fp32 one's, and no file was named."""
    import cv2

    from rtstereo.sources.sequence import ImageSequenceSource
    from rtstereo.stream import Stream

    for side in ("L", "R"):
        (tmp_path / side).mkdir()
        for index in range(2):
            cv2.imwrite(str(tmp_path / side / f"f{index}.png"), np.full((16, 24, 3), 60 + index, np.uint8))
    source = ImageSequenceSource(str(tmp_path / "L"), str(tmp_path / "R"))
    summary = Stream(source, rtstereo.load(str(toy_path), threads=1), sinks=[]).run()
    assert summary.frames_processed == 2
    settings = summary.settings
    assert (settings["backend"], settings["precision"], settings["onnx"], settings["threads"]) == (
        "onnxruntime",
        "fp32",
        str(toy_path),
        1,
    )


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (
            ("fp16", "fp32", []),
            r"precision_parity: half must be a predictor \(rtstereo.load\(NAME, precision=...\)\), got str",
        ),
        ((None, "model", []), r"half must be a predictor .*got NoneType"),
        (("model", 3, []), r"full must be a predictor .*got int"),
        (("model", "model", "pairs.txt"), r"pairs must be a list of \(left, right\) images, got str"),
        (("model", "model", ["left"]), r"pairs\[0\] must be a \(left, right\) pair of images, got str"),
        (("model", "model", [np.zeros((8, 8, 3), np.uint8)]), r"pairs\[0\] .*got an array of shape \(8, 8, 3\)"),
    ],
)
def test_precision_parity_of_other_arguments_is_one_input_error(arguments, match):
    """The README's Speed section names it; non-predictors were AttributeError: 'str' has no attribute 'backend'."""
    from rtstereo.runtime.agreement import precision_parity

    model = rtstereo.load("sgbm", max_disp=16)
    arguments = tuple(model if a == "model" else a for a in arguments)
    with pytest.raises(InputError, match=match):
        precision_parity(*arguments)


def test_a_map_cut_off_by_an_exported_files_range_is_told_to_export_again_not_to_raise_max_disp(tmp_path):
    """ "Search further with a larger --max-disp" sent an exported file to a refusal: its max_disp is in its graph."""
    from rtstereo.cli import main
    from rtstereo.io import write_image
    from rtstereo.runtime.predictor import RangeCeilingWarning

    contract = _contract((16, 64), settings={"max_disp": 12})
    path = toy_single(tmp_path / "toy.onnx", (16, 64), contract)  # disparity = 10 x grey / 255 + 1: 11 px at 255
    write_image(tmp_path / "l.png", np.full((16, 64, 3), 255, np.uint8))
    write_image(tmp_path / "r.png", np.full((16, 64, 3), 200, np.uint8))  # read and ignored
    with pytest.warns(RangeCeilingWarning) as caught:
        assert main(["predict", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--model", str(path), "-q"]) == 0
    assert [str(w.message) for w in caught if w.category is RangeCeilingWarning] == [
        "l: 100.0 % of the map sits at the top of the searched range (10-11 px; --max-disp 12, fixed in toy.onnx): "
        "nearer points lie beyond it and are cut off there; export the network again with a larger --max-disp "
        "(rtstereo export toy-net ... --max-disp 32)"
    ]


def test_a_second_ctrl_c_waits_for_sgbm_beside_the_network(textured_pair, monkeypatch):
    """Ctrl-C while an unguided hybrid's network ran, then Ctrl-C again while SGBM's match was awaited: raised at
    once, it let the process end with SGBM's thread still in OpenCV, which could abort it as Python finalized
    ("terminate called without an active exception"), as `rtstereo synth` did."""
    import signal
    import threading
    import time

    left, right = textured_pair
    hybrid = rtstereo.load("hybrid", max_disp=16, network="rtnet-v5", threads=2)
    matching, finished = threading.Event(), threading.Event()

    def confident(*args):
        matching.set()
        time.sleep(0.2)  # the main thread waits for this match by now
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C again
        time.sleep(0.3)
        finished.set()
        raise RuntimeError("not used: the interrupt ends the call")

    def network(*args, **kwargs):
        matching.wait(5.0)
        raise KeyboardInterrupt  # Ctrl-C as the network runs

    monkeypatch.setattr(hybrid, "_confident", confident)
    monkeypatch.setattr(hybrid.network, "predict_pair", network)
    try:
        with pytest.raises(KeyboardInterrupt):
            hybrid.predict(left, right)
        assert finished.is_set()
    finally:
        monkeypatch.undo()
        hybrid.close()
