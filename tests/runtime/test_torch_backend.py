"""The PyTorch backend's GPU settings, checked on the CPU: channels-last, half-precision weights,
CUDA-graph policy and fall-back, torch.compile, their validation, and fp16/bf16-vs-fp32 parity.

The CUDA-only parts (graph recording, pinned copies) have their own tests that skip without CUDA.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rtstereo  # noqa: E402
from rtstereo.errors import InputError  # noqa: E402
from rtstereo.models import get_spec  # noqa: E402
from rtstereo.models.registry import ModelSpec, import_object  # noqa: E402
from rtstereo.runtime import cuda_graphs  # noqa: E402
from rtstereo.runtime.agreement import compare_maps, precision_parity  # noqa: E402
from rtstereo.runtime.backends import (  # noqa: E402
    TorchBackend,
    parse_compile_mode,
    parse_graph_mode,
    torch_runtime_options,
)
from rtstereo.runtime.cuda_graphs import CudaGraphWarning, GraphPolicy  # noqa: E402
from rtstereo.runtime.predictor import Predictor  # noqa: E402

NETWORKS = [name for name in rtstereo.list_models() if get_spec(name).kind == "network"]
SMALL = {"max_disp": 32, "iters": 2, "half_refinement": True, "full_refinement": True}


def _network(name: str):
    spec = get_spec(name)
    settings = spec.resolve_settings({k: v for k, v in SMALL.items() if k in spec.defaults})
    torch.manual_seed(0)
    return import_object(spec.builder)(settings).eval()


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    left = torch.from_numpy(rng.random((1, 3, 64, 96), dtype=np.float32))
    return left, torch.roll(left, 3, dims=-1)


# --- feature: the settings change speed, not results ---------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
def test_channels_last_gives_the_same_disparity(name, inputs):
    network = _network(name)
    expected = TorchBackend(network).forward(*inputs)
    actual = TorchBackend(network, channels_last=True).forward(*inputs)
    assert compare_maps(actual, expected, name).max_abs_px <= 1e-4


@pytest.mark.parametrize("name", NETWORKS)
def test_half_weights_equal_autocast_and_leave_the_given_module_alone(name, inputs):
    """bf16 on the CPU runs the code path of fp16 on CUDA: weights stored in half precision give what
    autocast gives by casting them at every call; norms stay float32; the caller's module is not cast."""
    network = _network(name)
    cast = TorchBackend(network, precision="bf16", half_weights=True)
    expected = TorchBackend(network, precision="bf16", half_weights=False).forward(*inputs)
    for _ in range(2):  # the first call finds the layers under autocast, the second runs them cast
        assert compare_maps(cast.forward(*inputs), expected, name).max_abs_px <= 1e-3
    dtypes = {p.dtype for p in network.parameters()}
    assert dtypes == {torch.float32}, f"the caller's module was cast: {dtypes}"
    layers = [m for m in cast.module.modules() if getattr(m, "weight", None) is not None]
    assert any(m.weight.dtype == torch.bfloat16 for m in layers if type(m).__name__.startswith(("Conv", "Linear")))
    assert all(m.weight.dtype == torch.float32 for m in layers if "Norm" in type(m).__name__)


def test_layers_run_in_full_precision_keep_float32_weights(inputs):
    """rtnet's sub-pixel stages run with autocast off: their convolutions must stay float32."""
    network = _network("rtnet")
    backend = TorchBackend(network, precision="bf16", half_weights=True)
    backend.forward(*inputs)
    stages = [network_part for network_part in (backend.module.half_refinement, backend.module.full_refinement)]
    assert all(p.dtype == torch.float32 for stage in stages for p in stage.parameters())
    assert backend.module.match is not None and any(p.dtype == torch.bfloat16 for p in backend.module.parameters())


def test_precision_parity_reports_bf16_against_fp32():
    spec = get_spec("gwcnet-g")
    settings = spec.resolve_settings({"max_disp": 16})
    network = _network("gwcnet-g")
    full = Predictor(spec, settings, TorchBackend(network))
    half = Predictor(spec, settings, TorchBackend(network, precision="bf16", half_weights=True))
    rng = np.random.default_rng(1)
    left = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    (agreement,) = precision_parity(half, full, [(left, np.roll(left, -4, axis=1))])
    assert agreement.name == "bf16 vs fp32" and agreement.nonfinite == agreement.nonfinite_reference
    assert 0 < agreement.mean_abs_px < 0.5
    assert agreement.line().startswith("bf16 vs fp32: max ")


class _Overflowing(torch.nn.Module):
    """inf and nan where a half-precision network would overflow."""

    def forward(self, left, right):
        out = 5.0 + 0.0 * left[:, 0] + 0.0 * right[:, 0]
        out[:, 0, 0], out[:, 0, 1] = float("inf"), float("nan")
        return out


@pytest.mark.filterwarnings("ignore::rtstereo.runtime.predictor.SmallInputWarning")  # a toy network on 8x16
@pytest.mark.parametrize("on_device", [False, True])
def test_inf_and_nan_from_the_network_are_invalid_pixels(on_device):
    spec = ModelSpec(name="overflow", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)
    predictor = Predictor(spec, {}, TorchBackend(_Overflowing(), device_postprocess=on_device))
    disparity = predictor.predict(*(np.zeros((8, 16, 3), np.uint8),) * 2).disparity_px
    assert np.isnan(disparity[0, :2]).all() and np.isfinite(disparity[0, 2:]).all()


# --- CUDA graphs: the policy with a stand-in recorder -----------------------------------------------


class _Recorder:
    """Stands in for cuda_graphs.capture: 'replays' by calling the network again, counts recordings."""

    def __init__(
        self, fail: bool = False, offset: float = 0.0, error: str = "operation not permitted when stream is capturing"
    ):
        self.recorded, self.replays, self.fail, self.offset, self.error = 0, 0, fail, offset, error

    def __call__(self, forward, left, right):
        if self.fail:
            raise RuntimeError(self.error)
        self.recorded += 1

        def replay(a, b):
            self.replays += 1
            return forward(a, b) + self.offset

        return replay


def _double(a, b):
    return 2 * a[0, 0] + b[0, 0]


def test_auto_records_once_a_shape_repeats_and_a_new_shape_starts_over():
    recorder = _Recorder()
    policy = GraphPolicy("auto", capture_fn=recorder)
    a, b = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    for _ in range(cuda_graphs.AUTO_AFTER_CALLS):
        assert torch.equal(policy.run(_double, a, b), 2 * a[0, 0])
    assert recorder.recorded == 1 and policy.active  # recorded at the third call, checked by one replay
    policy.run(_double, a, b)
    assert recorder.replays == 2
    policy.run(_double, torch.ones(1, 3, 8, 4), torch.ones(1, 3, 8, 4))
    assert not policy.active and recorder.recorded == 1


def test_on_records_at_the_first_call_and_off_never():
    on, off = _Recorder(), _Recorder()
    a = torch.ones(1, 3, 4, 4)
    GraphPolicy("on", capture_fn=on).run(_double, a, a)
    policy = GraphPolicy("off", capture_fn=off)
    for _ in range(5):
        policy.run(_double, a, a)
    assert on.recorded == 1 and off.recorded == 0


@pytest.mark.parametrize(
    "recorder, message",
    [
        (_Recorder(fail=True), "could not be recorded \\(RuntimeError: operation not permitted"),
        # an error whose text begins with a line break read "(RuntimeError: )"
        (
            _Recorder(fail=True, error="\nnot permitted\nmore"),
            "could not be recorded \\(RuntimeError: not permitted\\)",
        ),
        (_Recorder(fail=True, error=""), "could not be recorded \\(RuntimeError\\)"),
        (_Recorder(offset=0.5), "does not reproduce the network \\(CUDA graph vs eager: max 0.5 px"),
    ],
)
def test_a_graph_that_fails_or_disagrees_falls_back_to_the_eager_network(recorder, message):
    policy = GraphPolicy("on", capture_fn=recorder)
    a = torch.ones(1, 3, 4, 4)
    with pytest.warns(CudaGraphWarning, match=message):
        assert torch.equal(policy.run(_double, a, a), 3 * a[0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second attempt, no second warning for this shape
        assert torch.equal(policy.run(_double, a, a), 3 * a[0, 0])
    assert not policy.active


def test_the_predictor_gives_the_same_map_through_a_graph():
    spec = ModelSpec(name="double", summary="toy", kind="network", builder="", normalization="unit", size_divisor=8)

    class Net(torch.nn.Module):
        def forward(self, left, right):
            return 4.0 + 3.0 * left.mean(dim=1) + 0.0 * right.mean(dim=1)

    eager = Predictor(spec, {}, TorchBackend(Net(), device_postprocess=True))
    graphed_backend = TorchBackend(Net(), device_postprocess=True)
    recorder = _Recorder()
    graphed_backend.graphs = GraphPolicy("on", capture_fn=recorder)
    graphed = Predictor(spec, {}, graphed_backend)
    image = np.random.default_rng(2).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    for _ in range(2):
        np.testing.assert_array_equal(
            graphed.predict(image, image).disparity_px, eager.predict(image, image).disparity_px
        )
    assert recorder.recorded == 1 and recorder.replays == 2


def test_threads_sharing_a_graph_each_get_their_own_map():
    """A graph reads fixed input buffers (cuda_graphs.capture): a thread whose inputs were copied in while
    another's replay was under way got the other thread's map."""
    import threading
    import time

    def static_recorder(forward, left, right):
        static_left, static_right = left.clone(), right.clone()

        def replay(a, b):
            static_left.copy_(a)
            static_right.copy_(b)
            time.sleep(0.05)  # the GPU's time: another thread's inputs may land in the buffers meanwhile
            return forward(static_left, static_right).clone()

        return replay

    policy = GraphPolicy("on", capture_fn=static_recorder)
    inputs = [torch.full((1, 3, 4, 4), float(value)) for value in (1, 2)]
    policy.run(_double, inputs[0], inputs[0])
    start, maps = threading.Barrier(2), {}

    def run(index):
        start.wait()
        maps[index] = policy.run(_double, inputs[index], inputs[index])

    threads = [threading.Thread(target=run, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert policy.active
    for index in (0, 1):
        assert torch.equal(maps[index], 3 * inputs[index][0, 0]), (index, maps[index][0, 0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to record a graph")
def test_a_real_cuda_graph_reproduces_the_network(inputs):
    backend = TorchBackend(_network("gwcnet-g"), device="cuda", cuda_graphs="on")
    a, b = (x.cuda() for x in inputs)
    eager = TorchBackend(_network("gwcnet-g"), device="cuda", cuda_graphs="off").forward(a, b)
    for _ in range(2):
        assert compare_maps(backend.forward(a, b), eager, "graph").mean_abs_px <= cuda_graphs.REPLAY_TOLERANCE_PX
    assert backend.graphs is not None and backend.graphs.active


# --- settings and their errors ---------------------------------------------------------------------


def test_runtime_settings_are_parsed_and_removed_from_the_model_settings():
    settings = {"max_disp": 64, "cuda_graphs": "auto", "compile": "yes", "channels_last": "1", "cudnn_benchmark": "0"}
    options = torch_runtime_options(settings)
    assert options == {"cuda_graphs": "auto", "compile": "default", "channels_last": True, "cudnn_benchmark": False}
    assert settings == {"max_disp": 64}
    assert parse_graph_mode(True) == "on" and parse_compile_mode("max-autotune") == "max-autotune"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cuda_graphs": "true"}, "cuda_graphs=true needs --device cuda"),
        ({"cuda_graphs": "always"}, "setting 'cuda_graphs': expected true, false or auto, got 'always'"),
        ({"compile": "fast"}, "setting 'compile': expected false, true or one of off, default, reduce-overhead"),
        ({"cuda_graphs": "on", "compile": "reduce-overhead"}, "use compile=reduce-overhead, which records CUDA"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        TorchBackend(torch.nn.Identity(), **kwargs)


def test_a_gpu_index_beyond_those_present_is_refused_in_one_line(monkeypatch):
    # cuda:3 on a one-GPU machine went on to torch's own traceback at the first copy to the device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"^--device cuda:3: PyTorch sees 1 CUDA GPU, cuda:0 \(device= in Python\)$"):
        TorchBackend(torch.nn.Identity(), device="cuda:3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(InputError, match=r"PyTorch sees 2 CUDA GPUs, cuda:0 to cuda:1 "):
        TorchBackend(torch.nn.Identity(), device="cuda:2")
    for spelling in ("cuda:01", "cudax", "cuda:"):  # "cuda:01" passed rtstereo.load's check, then torch.device raised
        with pytest.raises(InputError, match=rf"^device must be cpu or cuda\[:N\], got '{spelling}'$"):
            TorchBackend(torch.nn.Identity(), device=spelling)


def test_no_gpu_on_pytorchs_cpu_build_says_what_to_install(monkeypatch):
    """PyTorch's CPU-only build sees no GPU whatever the machine has: 'PyTorch sees no CUDA GPU' alone left a user
    with a GPU wondering why; the message names the build and the line that installs one built for CUDA, the CPU
    build uninstalled first (``pip install torch --index-url ...`` beside it said "Requirement already satisfied")."""
    from rtstereo.train.loop import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    cpu_build = rf"sees no CUDA GPU\b.*: this PyTorch \({re.escape(torch.__version__)}\) is its CPU-only build; "
    cpu_build += (
        r"install one built for CUDA \(pip uninstall -y torch && pip install torch --index-url "
        r"https://download.pytorch.org/whl/cu124\); use "
    )
    with pytest.raises(InputError, match=cpu_build + r"--device cpu \(device='cpu' in Python\)$"):
        TorchBackend(torch.nn.Identity(), device="cuda")
    with pytest.raises(InputError, match=cpu_build + "--device cpu$"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.4")  # a CUDA build: the driver or the machine lacks the GPU
    with pytest.raises(InputError, match=r"^--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device"):
        TorchBackend(torch.nn.Identity(), device="cuda")
    with pytest.raises(InputError, match=r"^device 'cuda' requested but torch sees no CUDA GPU here; use --device cpu"):
        resolve_device("cuda")


def test_settings_travel_through_load_and_are_recorded(tmp_path):
    from rtstereo.models.checkpoint import save_checkpoint

    checkpoint = tmp_path / "gwcnet.pt"
    save_checkpoint(checkpoint, "gwcnet-g", {"max_disp": 16}, _network("gwcnet-g").state_dict())
    predictor = rtstereo.load(str(checkpoint), settings={"cuda_graphs": "false", "channels_last": "true"})
    assert predictor.settings == {"max_disp": 16}
    assert predictor.backend.channels_last and predictor.backend.graphs is None
    by_name = rtstereo.load("gwcnet-g", weights=checkpoint, settings={"max_disp": 16, "compile": "false"})
    assert by_name.backend.compile_mode == "off"
    with pytest.raises(InputError, match="cuda_graphs=true needs --device cuda"):
        rtstereo.load(str(checkpoint), settings={"cuda_graphs": "true"})
    with pytest.raises(InputError, match="model 'gwcnet-g' has no setting 'providers'") as refused:
        rtstereo.load(str(checkpoint), settings={"providers": "cuda"})  # an ONNX Runtime setting on torch
    # the settings of the backend it could run on are named, and where the key is one of them (they were not)
    assert str(refused.value).endswith(
        "of its runtime (torch), channels_last, cuda_graphs, compile, cudnn_benchmark; with --backend onnxruntime, "
        "threads, providers, engine_cache, parity): providers is a setting of the onnxruntime backend, add "
        "--backend onnxruntime (backend= in Python)"
    )
    with pytest.raises(InputError, match="cuda_graphs is a setting of the torch backend, add --backend torch"):
        rtstereo.load(str(checkpoint), backend="onnxruntime", settings={"cuda_graphs": "false"})
    with pytest.raises(
        InputError,
        match=r"'threads' .*: CPU threads are an option of their own, --threads N \(from Python: "
        r"rtstereo.runtime.providers.limit_threads\(N\) before loading\)$",
    ):
        rtstereo.load(str(checkpoint), settings={"threads": "2"})
    on_ort = rtstereo.load(
        str(checkpoint), backend="onnxruntime", settings={"parity": "off", "threads": "1", "engine_cache": tmp_path}
    )
    assert (on_ort.backend.parity, on_ort.backend.threads, on_ort.backend.engine_cache) == ("off", 1, tmp_path)


def test_the_command_line_reports_a_bad_setting_in_one_line(tmp_path, capsys, monkeypatch):
    import cv2
    import onnxruntime

    from rtstereo.cli import main
    from rtstereo.models.checkpoint import save_checkpoint

    checkpoint = tmp_path / "gwcnet.pt"
    save_checkpoint(checkpoint, "gwcnet-g", {"max_disp": 16}, _network("gwcnet-g").state_dict())
    left, right = tmp_path / "l.png", tmp_path / "r.png"  # two files: one image twice is refused first
    for image in (left, right):
        cv2.imwrite(str(image), np.full((32, 48, 3), 90, np.uint8))
    command = ["predict", "--model", str(checkpoint), str(left), str(right), "-o", str(tmp_path / "out")]
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))  # where an on-the-fly export would go
    assert main([*command, "--set", "cuda_graphs=true"]) != 0
    assert "cuda_graphs=true needs --device cuda" in capsys.readouterr().err
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        # refused before the network is exported for the first pair
        assert main([*command, "--backend", "onnxruntime", "--device", "cuda"]) != 0
        assert "needs its CUDA or TensorRT provider" in capsys.readouterr().err
        assert not list(tmp_path.rglob("*.onnx"))


def test_auto_graphs_and_cudnn_autotuning_are_off_on_the_cpu():
    backend = TorchBackend(torch.nn.Identity())
    assert backend.graphs is None and not backend.cudnn_benchmark and not backend.channels_last
    assert backend.describe() == {"backend": "torch", "device": "cpu", "precision": "fp32"}


def test_compile_wraps_the_network_with_the_mode(monkeypatch, inputs):
    seen = {}

    def fake_compile(module, mode):
        seen["mode"] = mode
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    network = _network("gwcnet-g")
    backend = TorchBackend(network, compile="reduce-overhead")
    assert seen == {"mode": "reduce-overhead"} and backend.describe()["compile"] == "reduce-overhead"
    expected = TorchBackend(network).forward(*inputs)
    assert torch.equal(backend.forward(*inputs), expected)
