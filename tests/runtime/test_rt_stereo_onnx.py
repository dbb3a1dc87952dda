"""RT-Stereo's own ``model.onnx`` (GwcNet-gc by its ``onnx_export.py``, no metadata), run as its scripts ran it.

The real files are made here as RT-Stereo makes them: the golden GwcNet-gc checkpoint traced by plain
``torch.onnx.export`` (opset 11, constant folding) with inputs ``left``, ``right`` and output ``output``; then, as
``polygraphy surgeon sanitize`` leaves it, with its constants as initializers; then as ``model_externalize.py`` writes
it, the weights in ``<name>.ext`` beside the graph. Tiny stand-ins with the same signature test the command line fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.conftest import run_cli, shared_path, undo_gwcnet_fixture_training_step

import rtstereo
from rtstereo.bench import run_bench
from rtstereo.errors import CheckpointError, InputError
from rtstereo.io import write_image
from rtstereo.runtime.rt_stereo_onnx import NoMetadataWarning, disparity_levels

GOLDEN_HW = (64, 128)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The golden README's bar for a faithful GwcNet (max |ours - reference| <= 1e-3 px, float32 kernels of two runtimes
# typically ~1e-5 apart). The fixture's random weights saturate the soft-argmin (17 distinct values on a random pair),
# so here the difference is 0.0, and a wrong input moves pixels by tens of pixels (46 for BGR fed as RGB)
GOLDEN_TOLERANCE_PX = 1e-3
TINY_HW = (16, 32)


# --- files made as RT-Stereo makes them -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_export(tmp_path_factory):
    """``(path, network, golden io)``: the golden GwcNet-gc exported as RT-Stereo's onnx_export.py exports it."""
    torch = pytest.importorskip("torch", reason="exporting a GwcNet as RT-Stereo does needs torch")
    from rtstereo.models.gwcnet import build_gwcnet_gc, load_gwcnet_checkpoint

    checkpoint = shared_path("fixtures", "golden", "gwcnet-gc_maxdisp48.ckpt")
    io = np.load(shared_path("fixtures", "golden", "gwcnet-gc_maxdisp48_io.npz"))
    net = build_gwcnet_gc({"max_disp": 48})
    load_gwcnet_checkpoint(net, checkpoint)
    undo_gwcnet_fixture_training_step(net, torch.from_numpy(io["left"]), torch.from_numpy(io["right"]))
    net.eval()
    path = tmp_path_factory.mktemp("seed") / "model.onnx"
    dummy = (torch.randn(1, 3, *GOLDEN_HW), torch.randn(1, 3, *GOLDEN_HW))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            net,
            dummy,
            str(path),
            export_params=True,
            opset_version=11,
            do_constant_folding=True,
            input_names=["left", "right"],
            output_names=["output"],
            dynamo=False,  # the TorchScript exporter, RT-Stereo's (torch 1.10 had no other)
        )
    assert not onnx.load(str(path), load_external_data=False).metadata_props  # no rtstereo metadata, as the seed's
    return path, net, io


def sanitized(path: Path, out: Path) -> Path:
    """The graph as ``polygraphy surgeon sanitize --fold-constants`` leaves it: Constant nodes made initializers."""
    model = onnx.load(str(path))
    constants = [node for node in model.graph.node if node.op_type == "Constant"]
    for node in constants:
        value = numpy_helper.to_array(helper.get_attribute_value(node.attribute[0]))
        model.graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        model.graph.node.remove(node)
    onnx.save_model(model, str(out))
    return out


def externalized(path: Path, out: Path, size_threshold: int = 1024) -> Path:
    """``model_externalize.py``'s output: the tensors over ``size_threshold`` bytes in ``<out>.ext`` beside it."""
    model = onnx.load(str(path))
    onnx.save_model(
        model,
        str(out),
        location=f"{out.name}.ext",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        size_threshold=size_threshold,
        convert_attribute=False,
    )
    return out


def seed_image(rgb: np.ndarray) -> np.ndarray:
    """What RT-Stereo's single_image.py makes of an RGB image: CHW, /255, ImageNet mean and std per channel."""
    image = (np.transpose(rgb, (2, 0, 1)) / 255).astype(np.float32)
    for channel in range(3):
        image[channel] = (image[channel] - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
    return image[None]


def _said_once(caught) -> str:
    """The one NoMetadataWarning among the warnings ``caught``."""
    said = [str(w.message) for w in caught if w.category is NoMetadataWarning]
    assert len(said) == 1, said
    return said[0]


def _load(path: Path, **kwargs):
    with pytest.warns(NoMetadataWarning) as caught:
        model = rtstereo.load(str(path), **kwargs)
    return model, _said_once(caught)


# --- feature: the seed's file reproduces the network -----------------------------------------------------------


@pytest.mark.slow
def test_the_seed_export_runs_as_it_is_and_reproduces_the_golden_output(seed_export):
    path, _, io = seed_export
    model, message = _load(path)
    assert model.fixed_size_hw == GOLDEN_HW and model.settings == {"max_disp": 48}
    assert "model.onnx has no rtstereo metadata; its graph is that of RT-Stereo's onnx_export.py" in message
    assert "RGB images scaled to 0..1 and ImageNet-normalised, 64x128 (HxW) fixed in the graph" in message
    assert "max disparity 48 px (the levels of its soft-argmin)" in message
    disparity_px = model.backend.run(io["left"], io["right"])
    error_px = float(np.abs(disparity_px - io["disp_eval"][0]).max())
    assert error_px <= GOLDEN_TOLERANCE_PX, f"max error {error_px} px"


@pytest.mark.slow
def test_images_are_fed_as_the_seed_scripts_feed_them(seed_export):
    """uint8 RGB images through rtstereo against the PyTorch network on single_image.py's preparation of them.

    The two normalisations differ in rounding only (rtstereo's is one multiply-add in float32, the script's /255 in
    float64 then two float32 steps): ~1e-7 on the inputs, well under the golden bar on the output. Feeding BGR, the
    mistake the check is there to catch, moves the output by pixels."""
    torch = pytest.importorskip("torch")
    path, net, _ = seed_export
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (*GOLDEN_HW, 3), dtype=np.uint8)
    left, right = base, np.roll(base, -3, axis=1)
    left[..., 2] //= 2  # channels that differ: a wrong colour order shows
    right[..., 2] //= 2
    model, _ = _load(path)
    ours = model.predict(left, right).disparity_px
    with torch.no_grad():
        reference = net(torch.from_numpy(seed_image(left)), torch.from_numpy(seed_image(right)))[0].numpy()
        swapped = net(torch.from_numpy(seed_image(left[..., ::-1])), torch.from_numpy(seed_image(right[..., ::-1])))
    error_px = float(np.abs(ours - reference).max())
    assert error_px <= GOLDEN_TOLERANCE_PX, f"max error {error_px} px"
    assert float(np.abs(ours - swapped[0].numpy()).max()) > 100 * GOLDEN_TOLERANCE_PX


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [1024, 128], ids=["model_externalize", "levels-external-too"])
def test_the_sanitized_and_externalized_file_runs_from_its_weights_beside_it(seed_export, tmp_path, threshold):
    """model_externalize.py's 1024-byte threshold leaves the soft-argmin's 48 levels (192 bytes) in the graph; with 128
    they are in the .ext file, and the range is read from there. (Lower still, ONNX Runtime itself refuses the file:
    it cannot infer shapes from the small shape constants kept outside.)"""
    path, _, io = seed_export
    folded = sanitized(path, tmp_path / "model_folded.onnx")
    external = externalized(folded, tmp_path / "model_external.onnx", size_threshold=threshold)
    assert (tmp_path / "model_external.onnx.ext").stat().st_size > external.stat().st_size
    model, message = _load(external)
    assert model.settings == {"max_disp": 48} and "max disparity 48 px" in message
    disparity_px = model.backend.run(io["left"], io["right"])
    assert float(np.abs(disparity_px - io["disp_eval"][0]).max()) <= GOLDEN_TOLERANCE_PX


# --- smoke: the command line on a tiny file of the same signature ----------------------------------------------


def tiny_seed(path: Path, levels: int | None = 48, output_rank: int = 3, names=("left", "right", "output")) -> Path:
    """The seed's signature: disparity = mean over channels of (left - right) x 10, plus nothing from the soft-argmin
    levels ``0 .. levels - 1`` the graph holds (as an initializer, where polygraphy puts them)."""
    left, right, output = names
    nodes = [
        helper.make_node("Sub", [left, right], ["diff"]),
        helper.make_node("ReduceMean", ["diff"], ["mean"], axes=[1], keepdims=output_rank == 4),
        helper.make_node("Mul", ["mean", "ten"], ["scaled"]),
    ]
    initializers = [helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0])]
    if levels is not None:
        nodes += [
            helper.make_node("ReduceSum", ["levels"], ["levels_sum"], keepdims=0),
            helper.make_node("Mul", ["levels_sum", "zero"], ["nothing"]),
            helper.make_node("Add", ["scaled", "nothing"], [output]),
        ]
        initializers += [
            numpy_helper.from_array(np.arange(levels, dtype=np.float32).reshape(1, levels, 1, 1), "levels"),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ]
    else:
        nodes[-1].output[0] = output
    shape = [1, *TINY_HW] if output_rank == 3 else [1, 1, *TINY_HW]
    graph = helper.make_graph(
        nodes,
        "seed",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, *TINY_HW]) for n in (left, right)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def _pair_files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    left = np.full((*TINY_HW, 3), (200, 100, 50), np.uint8)
    right = np.full((*TINY_HW, 3), (100, 90, 110), np.uint8)
    write_image(folder / "left.png", left)
    write_image(folder / "right.png", right)
    return folder / "left.png", folder / "right.png"


def _tiny_expected_px() -> float:
    """The tiny graph's output for :func:`_pair_files`'s pair, by hand: ImageNet-normalised differences, x 10."""
    diff = [(200 - 100) / 255 / IMAGENET_STD[0], (100 - 90) / 255 / IMAGENET_STD[1], (50 - 110) / 255 / IMAGENET_STD[2]]
    return 10 * sum(diff) / 3


def test_predict_runs_a_seed_file_with_one_warning(tmp_path, capsys):
    path = tiny_seed(tmp_path / "model.onnx")
    left, right = _pair_files(tmp_path / "pair")
    with pytest.warns(NoMetadataWarning) as caught:
        code, _, err = run_cli(capsys, "predict", left, right, "--model", path, "-o", tmp_path / "out.pfm")
    assert code == 0, err
    assert "max disparity 48 px" in _said_once(caught)
    np.testing.assert_allclose(rtstereo.io.read_disparity(tmp_path / "out.pfm"), _tiny_expected_px(), rtol=1e-5)


def test_a_folder_of_pairs_is_warned_about_once(tmp_path, capsys):
    path = tiny_seed(tmp_path / "model.onnx")
    for name in ("a", "b"):
        left, right = _pair_files(tmp_path / "pairs" / name)
        (tmp_path / "lefts").mkdir(exist_ok=True)
        (tmp_path / "rights").mkdir(exist_ok=True)
        left.rename(tmp_path / "lefts" / f"{name}.png")
        right.rename(tmp_path / "rights" / f"{name}.png")
    with pytest.warns(NoMetadataWarning) as caught:
        code, _, err = run_cli(
            capsys, "predict", tmp_path / "lefts", tmp_path / "rights", "--model", path, "-o", tmp_path / "out/"
        )
    assert code == 0, err
    _said_once(caught)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.pfm")) == ["a.pfm", "b.pfm"]


def test_another_max_disp_is_refused_and_the_file_is_described(tmp_path, capsys):
    path = tiny_seed(tmp_path / "model.onnx")
    left, right = _pair_files(tmp_path / "pair")
    code, _, err = run_cli(capsys, "predict", left, right, "--model", path, "--max-disp", "192")
    assert code == 2
    assert "model.onnx was exported with max_disp=48 and cannot run with max_disp=192: the value is fixed" in err
    code, out, err = run_cli(capsys, "models", path)
    assert code == 0, err
    assert "an RT-Stereo GwcNet-gc ONNX model (its onnx_export.py; fp32; not an rtstereo export)" in out
    assert "imagenet normalisation in RGB order, size 16x32 (HxW)" in out and "max_disp = 48" in out
    assert "export its checkpoint at that size: rtstereo export gwcnet-gc --weights CKPT --size HxW" in out


def test_a_setting_a_seed_file_has_not_is_not_said_to_be_left_out_of_an_export(tmp_path):
    path = tiny_seed(tmp_path / "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoMetadataWarning)  # a file refused is not also warned about
        with pytest.raises(InputError, match=r"model.onnx is an RT-Stereo GwcNet file, which has no setting 'iters' "):
            rtstereo.load(str(path), iters=5)
        with pytest.raises(InputError, match=r"holds an fp32 model and only TensorRT can run it in fp16"):
            rtstereo.load(str(path), precision="fp16")
    with pytest.warns(NoMetadataWarning):
        assert rtstereo.load(str(path), max_disp=48).settings["max_disp"] == 48  # its own value is no conflict


def test_a_seed_file_whose_range_cannot_be_read_says_so(tmp_path, capsys):
    path = tiny_seed(tmp_path / "model.onnx", levels=None)
    assert disparity_levels(path) is None
    model, message = _load(path)
    assert model.settings == {} and "max disparity unknown" in message
    with pytest.raises(InputError, match=r"model.onnx: this RT-Stereo file's disparity range is fixed in its graph"):
        rtstereo.load(str(path), max_disp=192)
    with pytest.raises(InputError, match=r"leave --max-disp out \(max_disp= in Python\)$"):  # a Python caller's words
        rtstereo.load(str(path), max_disp=192)
    code, out, err = run_cli(capsys, "models", path)
    assert code == 0 and "  max_disp: unknown (the graph holds no soft-argmin levels 0..D-1" in out, err


@pytest.mark.parametrize(
    "layout",
    [
        {"output_rank": 4},  # an rtstereo-like (1, 1, H, W) output: not the seed's
        {"names": ("left", "right", "disparity")},
        {"names": ("input0", "input1", "output")},
    ],
    ids=["rank-4-output", "output-named-disparity", "other-input-names"],
)
def test_other_files_without_metadata_are_still_refused(tmp_path, layout):
    path = tiny_seed(tmp_path / "other.onnx", **layout)
    with pytest.raises(CheckpointError, match="has no rtstereo metadata .* cannot know how to feed it"):
        rtstereo.load(str(path))


def test_a_seed_file_is_benched_at_its_own_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short name: a skipped row's reason is cut at 160 characters
    path = tiny_seed(Path("model.onnx")).name
    with pytest.warns(NoMetadataWarning):
        report = run_bench([path], [TINY_HW, (32, 64)], warmup=1, runs=1, threads=1)
    assert [row.status for row in report.rows] == ["ok", "skipped"]
    assert "fixed at 16x32 (HxW): bench it with --sizes 16x32, or export its checkpoint at that size" in (
        report.rows[1].reason
    )


def test_a_seed_file_moved_without_its_ext_file_names_that_file(tmp_path, capsys):
    """It said "copy or move the .data file `rtstereo export` wrote beside it": RT-Stereo's model_externalize.py
    wrote model_external.onnx.ext, and rtstereo wrote nothing."""
    path = externalized(tiny_seed(tmp_path / "model.onnx"), tmp_path / "model_external.onnx", size_threshold=0)
    (tmp_path / "model_external.onnx.ext").unlink()
    left, right = _pair_files(tmp_path / "pair")
    code, out, err = run_cli(capsys, "predict", left, right, "--model", path)
    assert code == 2 and out == ""
    assert err == (
        f"rtstereo predict: error: {path} keeps its weights in another file, {tmp_path / 'model_external.onnx.ext'}, "
        "which is missing: copy or move that file together with the model, beside it under that name\n"
    )


def test_export_int8_and_a_torch_backend_name_the_checkpoint_a_seed_file_was_exported_from(tmp_path, capsys):
    """``export --int8`` of a seed file was refused as "a fp32 rt-stereo export" (quantize_int8) or as an export
    whose "rtstereo checkpoint" is the way (export), and ``--backend torch`` sent its users to "its rtstereo
    checkpoint": they have GwcNet's own ``sceneflow.ckpt``, which ``--model gwcnet-gc --weights`` takes."""
    from rtstereo.export.quantize import quantize_int8

    path = tiny_seed(tmp_path / "model.onnx")
    left, right = _pair_files(tmp_path / "pair")
    code, out, err = run_cli(capsys, "export", path, "--int8", "--size", "16x32", "-o", tmp_path / "q.onnx")
    assert code == 2 and out == "", err
    assert f"{path} is RT-Stereo's GwcNet-gc ONNX file: there is nothing to export from it" in err
    assert "rtstereo export --model gwcnet-gc --weights sceneflow.ckpt --max-disp 48 --size 16x32\n" in err
    code, _, err = run_cli(capsys, "predict", left, right, "--model", path, "--backend", "torch")
    assert code == 2 and "rtstereo checkpoint" not in err, err
    assert "give the checkpoint it was exported from: --model gwcnet-gc --weights sceneflow.ckpt --max-disp 48" in err
    with pytest.raises(InputError) as refused:
        quantize_int8(path, tmp_path / "q8.onnx")
    assert "RT-Stereo's GwcNet-gc ONNX file, not an rtstereo export" in str(refused.value)
    assert "rtstereo export --model gwcnet-gc --weights sceneflow.ckpt --max-disp 48 --size 16x32 --int8" in str(
        refused.value
    )
    assert not (tmp_path / "q.onnx").exists() and not (tmp_path / "q8.onnx").exists()
