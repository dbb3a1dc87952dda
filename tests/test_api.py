"""The Python API: load, predict, registry lookups, settings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import rtstereo
from rtstereo.models.registry import coerce_setting


def test_sgbm_recovers_constant_shift(textured_pair):
    left, right = textured_pair
    result = rtstereo.load("sgbm", max_disp=16, fill_holes=False).predict(left, right)
    d = result.disparity_px
    assert d.dtype == np.float32 and d.shape == left.shape[:2]
    interior = d[8:-8, 24:-8]
    assert np.nanmedian(interior) == pytest.approx(4.0, abs=0.1)
    assert set(result.timings_ms) == {"preprocess", "inference", "postprocess", "total"}
    assert result.model == "sgbm" and result.settings["max_disp"] == 16


def test_invalid_pixels_are_nan_without_filling(textured_pair):
    left, right = textured_pair
    d = rtstereo.load("sgbm", max_disp=16, fill_holes=False).predict(left, right).disparity_px
    assert np.isnan(d[:, :16]).all()  # the left band has no match in the right view
    filled = rtstereo.load("sgbm", max_disp=16).predict(left, right).disparity_px
    assert np.isfinite(filled).all()


def test_density_counts_finite_positive_disparities():
    disparity = np.array([[0.0, -1.0, np.nan, np.inf, 2.0, 0.25, 3.0, np.nan]], np.float32)
    result = rtstereo.DisparityResult(disparity)
    assert result.valid_mask.tolist() == [[False, False, False, False, True, True, True, False]]
    assert result.density == 3 / 8 and result.sidecar()["density"] == 0.375


def test_bm_recovers_constant_shift_from_grey_input(textured_pair):
    left, right = textured_pair
    r = rtstereo.load("bm", max_disp=16, block_size=5, fill_holes=False).predict(left[:, :, 0], right[:, :, 0])
    d = r.disparity_px
    assert d.dtype == np.float32 and d.shape == left.shape[:2]
    assert np.nanmedian(d[8:-8, 24:-8]) == pytest.approx(4.0, abs=0.1)
    # 16 px searched: the left band of 16 columns has no match in the right view, and the rest is matched
    assert np.isnan(d[:, :16]).all() and np.isfinite(d[8:-8, 17:-8]).all()


def test_a_grey_view_beside_a_colour_one_is_matched_in_grey_with_a_warning(textured_pair):
    import cv2

    left, right = textured_pair
    grey_left, grey_right = (cv2.cvtColor(v, cv2.COLOR_RGB2GRAY) for v in (left, right))
    model = rtstereo.load("sgbm", max_disp=16)
    both_grey = model.predict(grey_left, grey_right).disparity_px
    for pair in ((grey_left, right), (np.dstack([grey_left] * 3), right), (left, grey_right)):
        with pytest.warns(UserWarning, match="is grey and the .* in colour: both are matched in grey"):
            mixed = model.predict(*pair).disparity_px
        np.testing.assert_array_equal(mixed, both_grey)


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_a_colour_left_view_matched_in_grey_keeps_its_colours_in_the_result_and_its_cloud(textured_pair, model):
    """The result's left, and the point cloud coloured by it, were the grey view matched, not the colour one given."""
    import cv2

    from rtstereo.geometry import result_point_cloud

    left, right = textured_pair
    left = np.ascontiguousarray(np.dstack([left[:, :, 0], 255 - left[:, :, 0], left[:, :, 2]]))
    calibration = rtstereo.Calibration(100.0, 100.0, 31.5, 31.5, 23.5, 0.1, width_px=128, height_px=96)
    with pytest.warns(UserWarning) as caught:  # the calibration scaled too: a copy of the pair, with its colours
        result = rtstereo.load(model, max_disp=16).predict(left, cv2.cvtColor(right, cv2.COLOR_RGB2GRAY), calibration)
    said = " ".join(str(w.message) for w in caught)
    assert "matched in grey" in said and "scaled by 0.5000" in said, said
    np.testing.assert_array_equal(result.left, left)
    cloud = result_point_cloud(result, max_jump_rel=None)
    np.testing.assert_array_equal(cloud.colors, left.reshape(-1, 3)[cloud.pixel_index])


def test_a_stereo_pair_drops_left_colours_that_are_not_its_left_view(textured_pair):
    import dataclasses

    left, right = textured_pair
    grey_right = np.repeat(right[:, :, :1], 3, axis=2)
    with pytest.warns(UserWarning, match="matched in grey"):
        pair = rtstereo.StereoPair(left, grey_right)
    assert pair.left_colours is left and pair.coloured_left is left and pair.left.shape == left.shape
    assert dataclasses.replace(pair, name="copy").left_colours is left
    assert dataclasses.replace(pair, left=np.roll(pair.left, 3, axis=1)).left_colours is None  # e.g. rectified
    assert rtstereo.StereoPair(left, right).left_colours is None


def test_a_path_or_a_pil_image_given_for_an_array_says_how_to_make_one(textured_pair):
    from PIL import Image

    left, right = textured_pair
    model = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(rtstereo.InputError, match=r"got str \(a file name\? read it with rtstereo.io.read_image"):
        model.predict("left.png", right)
    with pytest.raises(rtstereo.InputError, match=r"right image: .* \(a PIL image\? np.asarray\(image.convert"):
        model.predict(left, Image.fromarray(right))


def test_the_none_cv2_imread_gives_for_a_file_it_cannot_read_is_named_so(textured_pair, tmp_path):
    """predict(cv2.imread("missing.png"), right) said "expected a numpy array, got NoneType", not that the read had
    failed, which cv2.imread does not say."""
    import cv2

    left, right = textured_pair
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load("sgbm", max_disp=16).predict(left, cv2.imread(str(tmp_path / "missing.png")))
    assert str(caught.value) == (
        "right image: expected a numpy array, got NoneType (cv2.imread gives None for a file it cannot read: check the "
        "path, or read it with rtstereo.io.read_image(path), which says why and gives RGB where cv2.imread gives BGR)"
    )


def test_a_torch_tensor_given_for_an_array_says_how_to_make_one(textured_pair):
    """It was "expected a numpy array, got Tensor", without a word of how; a tensor's layout is (C, H, W)."""

    class Tensor:  # what the hint looks for, without importing torch
        def detach(self): ...

        def numpy(self): ...

    left, right = textured_pair
    with pytest.raises(rtstereo.InputError) as info:
        rtstereo.load("sgbm", max_disp=16).predict(Tensor(), right)
    assert str(info.value) == (
        "left image: expected a numpy array, got Tensor (a torch tensor? image.cpu().numpy(), as uint8 (H, W, 3): "
        "image.permute(1, 2, 0) for a (C, H, W) one)"
    )


def test_default_alias_resolves():
    assert rtstereo.load().name == rtstereo.models.DEFAULT_ALIAS
    # get_spec too: it said "unknown model 'default'. Did you mean: default?"
    assert rtstereo.get_spec("default").name == rtstereo.models.DEFAULT_ALIAS


def test_list_models_and_pattern():
    names = rtstereo.list_models()
    assert {"sgbm", "bm", "gwcnet-g", "gwcnet-gc", "crestereo", "anynet"} <= set(names)
    assert rtstereo.list_models("gwcnet*") == ["gwcnet-g", "gwcnet-gc"]


def test_a_model_name_or_pattern_that_is_no_string_is_an_input_error():
    """list_models(5) raised AttributeError ('int' object has no attribute 'lower'), get_spec(5) a TypeError."""
    with pytest.raises(rtstereo.InputError, match="pattern: expected a str such as 'gwc\\*', got int 5"):
        rtstereo.list_models(5)
    with pytest.raises(rtstereo.InputError, match=r"model name: expected a str \(rtstereo.list_models\(\)\), got int"):
        rtstereo.get_spec(5)


def test_a_model_name_in_other_letters_is_the_model(tmp_path):
    """``--model SGBM`` was refused ("did you mean: sgbm?") while --pattern and --format ignore case."""
    from rtstereo.cli import main
    from rtstereo.models import DEFAULT_ALIAS, resolve_alias

    assert (resolve_alias("SGBM"), resolve_alias("Default"), resolve_alias("x/Model.ONNX")) == (
        "sgbm",
        DEFAULT_ALIAS,
        "x/Model.ONNX",
    )
    assert rtstereo.get_spec("RTNet-V5").name == "rtnet-v5"
    assert rtstereo.load("SGBM", max_disp=16).name == "sgbm"
    assert main(["models", "BM"]) == 0


def test_unknown_model_names_close_matches():
    with pytest.raises(rtstereo.ModelNotFoundError, match="Did you mean: sgbm"):
        rtstereo.load("sgmb")
    with pytest.raises(rtstereo.ModelNotFoundError, match=r"'GWCNET'\. Did you mean: gwcnet-g, gwcnet-gc, rtnet\?"):
        rtstereo.load("GWCNET")  # the close matches of a name in capitals (there were none)
    for typo in ("defualt", "DEFUALT"):  # the alias was neither offered nor listed
        with pytest.raises(rtstereo.ModelNotFoundError, match=r"Did you mean: default\?.*sgbm, and default \(or"):
            rtstereo.load(typo)


def test_a_file_given_to_get_spec_is_sent_to_load_which_takes_files():
    """get_spec("x.onnx") advised "give the path of an exported .onnx file", which get_spec does not take."""
    with pytest.raises(rtstereo.ModelNotFoundError) as caught:
        rtstereo.models.get_spec("nets/x.onnx")
    assert str(caught.value).endswith(
        "and default (or load an exported .onnx file or an rtstereo checkpoint by its path: "
        "rtstereo.load('nets/x.onnx'), --model nets/x.onnx)"
    )
    with pytest.raises(
        rtstereo.ModelNotFoundError, match=r"checkpoint by its path: rtstereo.load\(PATH\), --model PATH\)$"
    ):
        rtstereo.models.get_spec("foo")


def test_a_folder_given_as_the_model_or_its_weights_is_called_a_folder_not_missing(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"weights file {tmp_path} is a folder: give the"):
        rtstereo.load("anynet", weights=tmp_path)  # was "weights file not found" for a folder that exists
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"model {tmp_path} is a folder: give a registry"):
        rtstereo.load(str(tmp_path))
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"model {tmp_path} is a folder"):
        rtstereo.load("hybrid", network=str(tmp_path))  # was "unknown model ... Did you mean: rtnet"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sgbm").mkdir()  # a folder named as a registry model does not hide the model
    assert rtstereo.load("sgbm").spec.name == "sgbm"


def test_a_model_path_may_be_a_pathlib_path(textured_pair):
    # as weights may: load(Path("m.onnx")) raised AttributeError: 'PosixPath' object has no attribute 'lower'
    packaged = Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx"
    left, right = textured_pair
    assert rtstereo.predict(left, right, packaged).disparity_px.shape == left.shape[:2]
    with pytest.raises(rtstereo.errors.CheckpointError, match="model file not found: runs/mycam.pt "):
        rtstereo.load(Path("runs/mycam.pt"))


def test_a_model_path_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    # was "ONNX model not found: ~/nets/m.onnx", where the shell would have found it
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "m.onnx").symlink_to(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert rtstereo.load("~/nets/m.onnx").backend.name == "onnxruntime"
    assert rtstereo.load(Path("~/nets/m.onnx")).backend.name == "onnxruntime"
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"model file not found: {tmp_path / 'mycam.pt'} "):
        rtstereo.load("~/mycam.pt")
    pytest.importorskip("torch")
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"weights file not found: {tmp_path / 'g.pt'}$"):
        rtstereo.load("gwcnet-g", weights="~/g.pt")


@pytest.mark.parametrize("url", ["https://h.org/nets/m.onnx", "file:///tmp/m.onnx", "https://h.org/mine.pt"])
def test_a_model_given_as_a_url_says_so(url):
    # was "ONNX model not found: https:/h.org/nets/m.onnx", a path made of the URL, never fetched
    with pytest.raises(rtstereo.InputError, match=f"model {url} is a URL: .* give its path"):
        rtstereo.load(url)
    with pytest.raises(rtstereo.InputError, match=f"^the hybrid's setting network={url} is a URL: .* give its path$"):
        rtstereo.load("hybrid", network=url)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model": 3}, r"model: expected a registry name .* got int 3"),
        ({"model": ""}, r"^model: an empty name; give a registry name .* or leave model out for the default$"),
        ({"model": "  "}, r"^model: an empty name; "),
        ({"settings": [("max_disp", 64)]}, r"settings: expected a dict of model settings .* got list"),
        (
            {"model": "anynet", "weights": 5},
            r"^weights: expected a checkpoint file \(str or Path\) or its URL, got int 5$",
        ),
        ({"weights": ["w.pt"]}, r"^weights: expected a checkpoint file .* got list \['w.pt'\]$"),
        ({"model": "anynet", "weights": ""}, r"^weights: an empty path; give the checkpoint file or its URL"),
    ],
)
def test_a_model_or_settings_of_another_type_is_an_input_error(arguments, message):
    with pytest.raises(rtstereo.InputError, match=message):  # were TypeError from deep inside
        rtstereo.load(**{"model": "sgbm", **arguments})


def test_a_loaded_model_given_as_the_model_is_told_to_predict_itself_in_a_short_line(textured_pair):
    """rtstereo.predict(left, right, m) named the predictor by its whole repr (its settings and backend), and did not
    say that a loaded model is called itself."""
    model = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(rtstereo.InputError) as info:
        rtstereo.predict(*textured_pair, model)
    message = str(info.value)
    assert message.endswith("; a model loaded already is called itself: model.predict(left, right)")
    assert "backend" not in message and len(message) < 300


@pytest.mark.parametrize("name", ["left.png", "pairs.csv", "empty.pt"])
def test_a_file_given_as_the_model_that_is_no_model_is_called_a_model_file(tmp_path, name):
    """An image given as the model was a "weights file" that "cannot be read", though no weights had been given."""
    pytest.importorskip("torch")
    path = tmp_path / name
    path.write_bytes(b"" if name == "empty.pt" else b"\x89PNG\r\n\x1a\n not a checkpoint")
    expected = (
        f"model file is empty: {path}"
        if name == "empty.pt"
        else f"cannot read model file {path}: a PNG image, not a PyTorch file; expected an rtstereo checkpoint or an "
        "exported .onnx file"
    )
    with pytest.raises(rtstereo.CheckpointError) as info:
        rtstereo.load(path)
    assert str(info.value) == expected


@pytest.mark.parametrize("missing", ["runs/mycam.pt", "mycam-guided.pt", "weights.ckpt"])
def test_a_missing_model_file_is_not_found_not_an_unknown_name(missing):
    # "unknown model 'mycam-guided.pt'. Did you mean: rtnet-guided?" sent a mistyped path to another network
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"model file not found: {missing} "):
        rtstereo.load(missing)
    with pytest.raises(rtstereo.errors.CheckpointError, match=f"model file not found: {missing} "):
        rtstereo.load("hybrid", network=missing)


def test_an_unknown_or_missing_hybrid_network_names_the_setting_it_came_from():
    """`--set network=rtnet-v4` said "unknown model 'rtnet-v4'", as if --model had been mistyped."""
    with pytest.raises(rtstereo.ModelNotFoundError, match=r"^the hybrid's setting network=rtnet-v4: unknown model"):
        rtstereo.load("hybrid", network="rtnet-v4")
    with pytest.raises(rtstereo.CheckpointError, match=r"^the hybrid's setting network=gone\.onnx: model file not"):
        rtstereo.load("hybrid", network="gone.onnx")
    # a URL was told to go in --weights, which the hybrid refuses for its network
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load("hybrid", network="https://example.org/m.onnx")
    assert str(caught.value).startswith("the hybrid's setting network=https://example.org/m.onnx is a URL:")
    assert "--weights" not in str(caught.value) and "give its path" in str(caught.value)


def test_a_loaded_model_given_as_the_hybrids_network_is_told_to_give_its_name():
    """network=rtstereo.load("rtnet-v5") was read as the text of its repr: "model file not found: Predictor('rtnet-v5',
    settings={...}, backend={...}) (...)", its repr twice in one message; a number was "unknown model '5'"."""
    said = "the hybrid's setting network: expected a registry name or the path of an .onnx file or rtstereo checkpoint"
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load("hybrid", network=rtstereo.load("sgbm"))
    assert str(caught.value) == (
        f"{said}, got Predictor; a loaded model is not taken: give the name or file it was loaded from "
        "(network='rtnet-v5', network='net.onnx')"
    )
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load("default", settings={"network": 5})
    assert str(caught.value) == f"{said}, got int"


def test_a_setting_given_both_ways_must_agree():
    with pytest.raises(rtstereo.InputError, match=r"settings\['max_disp'\]=64 and max_disp=32"):
        rtstereo.load("sgbm", settings={"max_disp": 64}, max_disp=32)
    assert rtstereo.load("sgbm", settings={"max_disp": "64"}, max_disp=64).settings["max_disp"] == 64
    # one value written two ways, as --max-disp 64 --set max_disp=64.0 takes it: was "given twice, differently"
    assert rtstereo.load("sgbm", settings={"max_disp": 64}, max_disp=64.0).settings["max_disp"] == 64
    assert rtstereo.load("sgbm", settings={"fill_holes": True}, fill_holes="true").settings["fill_holes"] is True
    with pytest.raises(rtstereo.InputError, match=r"settings\['fill_holes'\]=True and fill_holes='off'"):
        rtstereo.load("sgbm", settings={"fill_holes": True}, fill_holes="off")


def test_a_post_processing_switch_given_as_none_is_the_models_default():
    """None is the default for every setting (``choose_by=None``), but ``refine_edges=None`` was "expected true or
    false, got 'None'"."""
    assert rtstereo.load("rtnet-v5", refine_edges=None, fill_left_border=None).refine_edges is True
    assert rtstereo.load("sgbm", settings={"fill_left_border": None}).fill_left_border is False


def test_unknown_setting_names_close_matches():
    with pytest.raises(rtstereo.InputError, match="did you mean max_disp"):
        rtstereo.load("sgbm", max_dsp=3)


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_a_calibration_given_to_load_is_sent_to_predict(model):
    """rtstereo.load("sgbm", calibration=cal) was refused as "has no setting 'calibration'" and no word of where a
    calibration goes."""
    calibration = rtstereo.Calibration(300, 300, 160, 160, 120, 0.1)
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load(model, calibration=calibration)
    assert str(caught.value).endswith(
        ": a calibration goes with the pairs, not the model: model.predict(left, right, calibration=...) (--calib FILE "
        "on the command line)"
    )


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({64: 1}, ": settings are named by text, got int 64"),  # a bare TypeError from difflib
        ({"MAX_DISP": 192}, "; did you mean max_disp?"),
        ({"calibration": "calib.txt"}, ": a calibration goes with the pairs, not the model: model.predict("),
    ],
)
def test_an_exported_files_unknown_setting_gets_the_registrys_hints(settings, hint):
    """An .onnx file's refusal of a setting it has not matched no capitals, named no calibration's place, and a setting
    named by a number failed inside difflib with "'int' object is not iterable", as the registry's once did."""
    from rtstereo.runtime.onnx import packaged_path

    path = str(packaged_path(rtstereo.models.get_spec("rtnet-v5")))
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load(path, settings=settings)
    assert str(caught.value).startswith(f"{path} was exported without a setting ") and hint in str(caught.value)


@pytest.mark.parametrize(("key", "hint"), [("MAX_DISP", "did you mean max_disp?"), ("THREADS", "CPU threads are")])
def test_a_setting_in_capitals_is_matched_in_small_letters(key, hint):
    """MAX_DISP=64, as a constant is written, was refused with no "did you mean max_disp?"."""
    with pytest.raises(rtstereo.InputError, match=hint):
        rtstereo.load("sgbm", **{key: 64})


@pytest.mark.parametrize("key", [64, None])
def test_a_setting_named_by_no_text_is_an_input_error(key):
    """settings={64: 1} failed inside difflib with a bare TypeError, "'int' object is not iterable"."""
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load("sgbm", settings={key: 1})
    assert str(caught.value).startswith(f"model 'sgbm' has no setting '{key}' (it has: block_size, ")
    assert str(caught.value).endswith(f"): settings are named by text, got {type(key).__name__} {key}")


@pytest.mark.parametrize(
    ("model", "typo", "meant"), [("hybrid", "thread", "threads"), ("rtnet-v5", "thread", "threads")]
)
def test_an_unknown_setting_is_matched_against_the_runtimes_settings_too(model, typo, meant):
    # the hybrid's "thread" suggested three_way alone, and neither message named the runtime's settings
    with pytest.raises(rtstereo.InputError, match=f"did you mean {meant}") as err:
        rtstereo.load(model, **{typo: 2})
    assert "of its runtime (onnxruntime), threads, providers" in str(err.value)
    with pytest.raises(rtstereo.InputError) as err:
        rtstereo.load("sgbm", thread=2)
    assert "of its runtime" not in str(err.value)  # OpenCV's threads are --threads alone


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [("true", False, True), ("off", True, False), ("64", 1, 64), ("0.5", 1.0, 0.5), ("x", "a", "x")],
)
def test_setting_coercion(value, default, expected):
    assert coerce_setting("k", value, default) == expected


@pytest.mark.parametrize(
    ("value", "default"),
    # numpy's booleans too: max_disp=np.True_ (a value taken from a mask) ran SGBM searching 16 px
    [("maybe", False), ("1.5", 1), ("abc", 1.0), (True, 1), (False, 1.0), (True, "a"), (np.True_, 1), (np.False_, 1.0)],
)
def test_setting_coercion_errors(value, default):
    with pytest.raises(rtstereo.InputError, match="setting 'k'"):
        coerce_setting("k", value, default)


def test_size_mismatch_is_refused(textured_pair):
    left, right = textured_pair
    with pytest.raises(rtstereo.InputError, match="differ in size"):
        rtstereo.load("sgbm", max_disp=16).predict(left, right[:-2])


@pytest.mark.parametrize("hw", [(1, 40), (40, 1)])
def test_an_image_one_pixel_high_or_wide_is_refused_with_the_least_size(hw):
    image = np.zeros((*hw, 3), np.uint8)
    with pytest.raises(
        rtstereo.InputError, match=rf"left image: image of shape \({hw[0]}, {hw[1]}, 3\) is too small: at least 2x2"
    ):
        rtstereo.load("sgbm", max_disp=16).predict(image, image)


def test_float_images_are_refused(textured_pair):
    left, right = textured_pair
    with pytest.raises(rtstereo.InputError, match="uint8"):
        rtstereo.load("sgbm", max_disp=16).predict(left / 255.0, right)


@pytest.mark.parametrize(
    "dtype, hint",
    [
        (np.uint16, "image // 257"),
        (np.int64, "check its range"),
        (bool, "a mask? (image * 255).astype(np.uint8) makes it black and white"),  # image.astype: 0 and 1, black
    ],
)
def test_the_dtype_error_gives_advice_for_that_dtype(textured_pair, dtype, hint):
    left, right = textured_pair
    with pytest.raises(rtstereo.InputError, match=f"got {np.dtype(dtype)}") as raised:
        rtstereo.load("sgbm", max_disp=16).predict(left.astype(dtype), right)
    assert hint in str(raised.value)
    if dtype is not bool:  # a mask's True is 1, brought to 255 so
        assert "* 255" not in str(raised.value)  # scaling by 255 turns a 16-bit image white


def test_a_float_image_is_told_how_to_convert_by_its_range(textured_pair):
    left, right = textured_pair
    sgbm = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(rtstereo.InputError, match="got float32") as raised:
        sgbm.predict((left / 255.0).astype(np.float32), right)
    assert "convert with (image * 255).clip(0, 255).astype(np.uint8) if it is a 0..1 float image" in str(raised.value)
    with pytest.raises(rtstereo.InputError, match="got float32") as raised:
        sgbm.predict(left.astype(np.float32), right)  # was told "(image * 255)...", which turns it white
    assert "a 0..255 float image converts with image.round().clip(0, 255).astype(np.uint8)" in str(raised.value)
    assert "* 255" not in str(raised.value)


def test_max_disp_wider_than_image_is_refused(textured_pair):
    left, right = textured_pair
    with pytest.raises(rtstereo.InputError, match="lower --max-disp"):
        rtstereo.load("sgbm", max_disp=192).predict(left, right)


def test_network_without_weights_says_what_to_pass():
    with pytest.raises(rtstereo.InputError, match="--weights"):
        rtstereo.load("gwcnet-gc")


def test_classical_on_torch_backend_is_refused():
    with pytest.raises(rtstereo.InputError, match="opencv backend"):
        rtstereo.load("sgbm", backend="torch")


@pytest.mark.parametrize(
    ("model", "backend", "names"),
    [
        ("rtnet-v5", "torch", "model 'rtnet-v5' is an ONNX file"),
        ("default", "opencv", "the hybrid's network 'rtnet-guided' is an ONNX file"),
    ],
)
def test_an_onnx_model_on_another_backend_is_refused_not_ignored(model, backend, names):
    with pytest.raises(rtstereo.InputError, match=names):
        rtstereo.load(model, backend=backend)
    assert rtstereo.load(model, backend="onnxruntime").backend.name == "onnxruntime"


def test_sgbm_path_does_not_import_torch(textured_pair):
    import subprocess

    code = (
        "import sys, numpy as np, rtstereo; l = np.zeros((32, 64, 3), np.uint8); "
        "rtstereo.load('sgbm', max_disp=16).predict(l, l); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_packaged_models_and_what_a_result_is_saved_as_import_no_torch(tmp_path):
    """What the README's Python sections do with the models that ship (default, rtnet-v5): load, predict, the left-right
    check, depth, a point cloud, the map and the cloud written and read back, in a process of its own; only sgbm's
    path was checked. Inference must run on a plain `pip install rtstereo`, without torch."""
    import os
    import subprocess

    code = (
        "import sys, numpy as np, rtstereo\n"
        "from rtstereo.confidence import lr_check\n"
        "from rtstereo.geometry import depth_from_disparity, point_cloud\n"
        "from rtstereo.io import read_disparity, write_disparity\n"
        "from rtstereo.sinks.pointcloud import write_ply\n"
        "rng = np.random.default_rng(0)\n"
        "wide = rng.integers(0, 256, (48, 100, 3), dtype=np.uint8); left, right = wide[:, :96], wide[:, 4:]\n"
        "cal = rtstereo.Calibration(300, 300, 47.5, 47.5, 23.5, 0.1)\n"
        "for name in ('default', 'rtnet-v5'):\n"
        "    with rtstereo.load(name) as m:\n"
        "        r = m.predict(left, right, calibration=cal)\n"
        "        lr_check(m, rtstereo.StereoPair(left, right))\n"
        "    depth_from_disparity(r.disparity_px, cal)\n"
        "    write_disparity(sys.argv[1] + f'/{name}.pfm', r.disparity_px)\n"
        "    read_disparity(sys.argv[1] + f'/{name}.pfm')\n"
        "    write_ply(sys.argv[1] + f'/{name}.ply', point_cloud(r.disparity_px, cal, left))\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(rtstereo.__file__).parents[1])}
    argv = [sys.executable, "-c", code, str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["default.pfm", "default.ply", "rtnet-v5.pfm", "rtnet-v5.ply"]


@pytest.mark.parametrize("url", ["s3://bucket/nets/anynet.tar", "ftp://host/anynet.tar"])
def test_weights_at_a_url_of_a_scheme_not_read_are_refused_naming_it(url):
    """weights="s3://bucket/nets/anynet.tar" was "weights file not found: s3:/bucket/nets/anynet.tar", the URL made
    into a path, as image arguments once were."""
    scheme = url.split("://")[0]
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.load("anynet", weights=url)
    assert str(caught.value) == (
        f"weights {url}: {scheme}:// URLs are not read (only http://, https:// and file://); download the file and "
        "give its path"
    )


def test_a_network_without_torch_names_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with pytest.raises(rtstereo.MissingDependencyError, match=r"rtstereo\[torch\]"):
        rtstereo.load("anynet", weights=tmp_path / "w.tar")


@pytest.mark.parametrize(
    ("model", "why"),
    [
        ("sgbm", "a classical method has no weights"),
        ("default", "its network is a setting: --set network="),
        ("rtnet-v5", "it ships with its weights; other weights of the same network: --model rtnet --weights"),
        ("PACKAGED_ONNX", "an exported .onnx file carries its weights"),
    ],
)
def test_weights_for_a_model_that_takes_none_are_refused_not_ignored(model, why, tmp_path):
    if model == "PACKAGED_ONNX":  # the packaged network's file, given as an exported .onnx file
        model = str(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx")
    with pytest.raises(rtstereo.InputError, match=rf"takes no --weights \({why}.*leave out --weights .*mine\.pt"):
        rtstereo.load(model, weights=tmp_path / "mine.pt")


def test_errors_rtstereo_load_raises_name_the_python_argument_beside_the_option():
    """rtstereo.load('anynet') said "pass --weights FILE_OR_URL" alone: the command line's words for a Python user."""
    with pytest.raises(
        rtstereo.InputError, match=r"needs its weights: pass --weights FILE_OR_URL \(weights= in Python;"
    ):
        rtstereo.load("anynet")
    with pytest.raises(rtstereo.InputError, match=r"is a network: use --backend torch or onnxruntime \(backend= in Py"):
        rtstereo.load("anynet", backend="opencv")
    with pytest.raises(rtstereo.InputError, match=r"leave out --weights w\.pt \(weights= in Python\)$"):
        rtstereo.load("sgbm", weights="w.pt")
    with pytest.raises(rtstereo.InputError, match=r"rtstereo\.load\('rtnet', weights=FILE\) in Python"):
        rtstereo.load("rtnet-v5", weights="w.pt")
    with pytest.raises(rtstereo.InputError, match=r"use --precision fp32 \(precision= in Python\)$"):
        rtstereo.load("rtnet-v5", precision="bf16")
    with pytest.raises(rtstereo.InputError, match=r"--device cuda\[:N\] with them \(device= in Python\), or leave"):
        rtstereo.load("rtnet-v5", providers="cuda")


def test_errors_and_warnings_from_predict_name_the_python_argument_beside_the_option(monkeypatch):
    """A Python caller was told "lower --max-disp", "--model sgbm", "use --device cpu": the command line's words."""
    import types

    from rtstereo.runtime import providers

    narrow = np.zeros((32, 20, 3), np.uint8)
    with pytest.raises(rtstereo.InputError, match=r"lower --max-disp \(max_disp= in Python\)$"):
        rtstereo.load("sgbm", max_disp=32).predict(narrow, narrow)
    with pytest.raises(rtstereo.InputError, match=r"--model rtnet-v5, rtstereo\.load\('rtnet-v5'\) in Python\)$"):
        rtstereo.load("default").predict(narrow[:, :8], narrow[:, :8])
    # SGBM with a range it can search at this width: "--model sgbm" alone was refused as above
    advice = r"--model sgbm --max-disp 16, rtstereo\.load\('sgbm', max_disp=16\) in Python\)$"
    with pytest.warns(rtstereo.SmallInputWarning, match=advice):
        rtstereo.load("rtnet-v5").predict(narrow, narrow)
    rtstereo.load("sgbm", max_disp=16).predict(narrow, narrow)  # which runs
    monkeypatch.setattr(providers, "_ort", lambda: types.SimpleNamespace(get_available_providers=lambda: ["CPU"]))
    with pytest.raises(rtstereo.InputError, match=r"\(device='cpu', or providers='cuda,cpu', in Python\)$"):
        providers.check_gpu_build("cuda")


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_a_loaded_models_settings_are_read_not_changed(textured_pair, model):
    """m.settings["max_disp"] = 32 left SGBM searching 192 px while every result recorded max_disp 32; the hybrid took
    any value unchecked (median=4). The settings now read as a dict, copy and pickle as one, and refuse a change."""
    import copy
    import dataclasses
    import json
    import pickle

    left, right = textured_pair
    loaded = rtstereo.load(model, max_disp=16)
    for change in (
        lambda settings: settings.__setitem__("max_disp", 32),
        lambda settings: settings.update(median=4),
        lambda settings: settings.pop("max_disp"),
        lambda settings: settings.setdefault("new", 1),
    ):
        with pytest.raises(rtstereo.InputError, match=r"was built with its settings when it loaded"):
            change(loaded.settings)
    with pytest.raises(rtstereo.InputError) as caught:
        loaded.settings["max_disp"] = 32
    assert str(caught.value) == (
        f"{loaded.name} was built with its settings when it loaded (max_disp=16): load it again with the new one, "
        f"rtstereo.load('{loaded.name}', max_disp=32) (--set max_disp=32 on the command line)"
    )
    assert loaded.predict(left, right).settings["max_disp"] == 16
    for copied in (pickle.loads(pickle.dumps(loaded.settings)), copy.deepcopy(loaded.settings), dict(loaded.settings)):
        assert copied == loaded.settings and json.dumps(copied) == json.dumps(loaded.settings)

    @dataclasses.dataclass
    class Record:  # a dataclass holding them, as OnnxContract does: asdict remade them as type(them)(items)
        settings: dict

    assert dataclasses.asdict(Record(loaded.settings)) == {"settings": dict(loaded.settings)}


def test_a_torch_device_is_the_device_it_names_and_another_type_is_named(textured_pair):
    """device=torch.device("cpu") was refused as "device must be cpu or cuda[:N], got 'cpu'", and device=0 (PyTorch's
    way to name the first GPU) as "got '0'", neither naming what was wrong."""
    torch = pytest.importorskip("torch")
    left, right = textured_pair
    expected = rtstereo.load("rtnet-v5").predict(left, right)
    result = rtstereo.load("rtnet-v5", device=torch.device("cpu")).predict(left, right)
    assert result.settings["device"] == "cpu"
    assert np.array_equal(result.disparity_px, expected.disparity_px, equal_nan=True)
    for device, named in ((0, "int 0"), (None, "NoneType None")):
        with pytest.raises(rtstereo.InputError) as caught:
            rtstereo.load("sgbm", device=device)
        assert str(caught.value) == f"device: expected 'cpu' or 'cuda[:N]' (a str or a torch.device), got {named}"


@pytest.mark.parametrize("model", ["sgbm", "rtnet-v5", "default"])
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"device": "gpu"}, "device must be cpu or cuda\\[:N\\], got 'gpu'"),
        ({"device": "cuda:x"}, "device must be cpu or cuda\\[:N\\], got 'cuda:x'"),
        ({"device": "cuda:²"}, "device must be cpu or cuda\\[:N\\], got 'cuda:²'"),  # a digit int() refuses: crashed
        ({"precision": "fp64"}, "precision must be fp32, fp16 or bf16, got 'fp64'"),
    ],
)
def test_a_mistyped_device_or_precision_is_refused_for_every_model(model, option, message):
    with pytest.raises(rtstereo.InputError, match=message):
        rtstereo.load(model, **option)


def test_device_and_precision_are_taken_in_any_case_and_recorded_in_lower_case(recwarn):
    """device="CPU" and precision="FP32" were refused ("device must be cpu or cuda[:N], got 'CPU'"), while model names
    are taken in any case."""
    settings = rtstereo.load("rtnet-v5", device="CPU", precision="FP32").recorded_settings()
    assert (settings["device"], settings["precision"]) == ("cpu", "fp32")
    rtstereo.load("SGBM", max_disp=16, device="Cpu", precision="Fp32")  # the defaults: nothing to say for sgbm
    assert not [w for w in recwarn if "applies to networks only" in str(w.message)]
    with pytest.raises(rtstereo.InputError, match="^device must be cpu or cuda\\[:N\\], got 'GPU'"):  # as given
        rtstereo.load("sgbm", device="GPU")
    with pytest.raises(rtstereo.InputError, match="^precision must be fp32, fp16 or bf16, got 'FP64'"):
        rtstereo.load("sgbm", precision="FP64")


def test_backend_and_fit_are_taken_in_any_case_as_device_and_precision_are():
    """backend="OpenCV" was refused as "unknown backend 'OpenCV'", fit="Crop" as "fit: expected one of resize, crop"."""
    sgbm = rtstereo.load("sgbm", max_disp=16, backend="OpenCV", fit="Resize")
    assert (sgbm.recorded_settings()["backend"], sgbm.fit) == ("opencv", "resize")
    with pytest.raises(rtstereo.InputError, match=r"^unknown backend 'Open-CV' \(expected one of: torch, onnxruntime"):
        rtstereo.load("sgbm", backend="Open-CV")
    with pytest.raises(rtstereo.InputError, match="^fit: expected one of resize, crop, got 'Cut'"):
        rtstereo.load("sgbm", fit="Cut")


def test_hints_that_are_no_array_of_numbers_are_an_input_error(textured_pair):
    """A list of hints failed with AttributeError: 'list' object has no attribute 'shape'."""
    guided = rtstereo.load("rtnet-guided")
    pair = rtstereo.StereoPair(*textured_pair)
    hints = np.full(pair.size_hw, np.nan, np.float32)
    hints[10:20, 10:20] = 4.0
    expected = guided.predict_pair(pair, hints=hints).disparity_px
    assert np.array_equal(guided.predict_pair(pair, hints=hints.tolist()).disparity_px, expected, equal_nan=True)
    with pytest.raises(rtstereo.InputError, match=r"^hints: expected a float \(H, W\) array of disparities .* got str"):
        guided.predict_pair(pair, hints="hints.npy")


def test_a_guided_network_takes_hints_in_predict_as_its_unguided_warning_says(textured_pair):
    """load("rtnet-guided") warns "give it hints (predict(left, right, hints=...))", and predict failed with
    TypeError: unexpected keyword argument 'hints' (predict_pair alone took them)."""
    with pytest.warns(rtstereo.RtStereoWarning, match=r"predict\(left, right, hints=\.\.\.\)"):
        guided = rtstereo.load("rtnet-guided")
    left, right = textured_pair
    hints = np.full(left.shape[:2], np.nan, np.float32)
    hints[10:30, 10:40] = 4.0
    got = guided.predict(left, right, hints=hints).disparity_px
    expected = guided.predict_pair(rtstereo.StereoPair(left, right), hints=hints).disparity_px
    assert np.array_equal(got, expected, equal_nan=True)
    assert not np.array_equal(got, guided.predict(left, right).disparity_px, equal_nan=True)  # the hints are used
    with pytest.raises(rtstereo.InputError, match="sgbm takes no hints"):
        rtstereo.load("sgbm", max_disp=16).predict(left, right, hints=hints)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_hints_holding_inf_are_refused_before_the_network_runs(textured_pair, value):
    """A hint of inf (a PFM map's invalid pixels read as they are stored) failed inside ONNX Runtime with its own
    exception, "GatherElements op: Out of range value in index tensor"."""
    guided = rtstereo.load("rtnet-guided")
    pair = rtstereo.StereoPair(*textured_pair)
    hints = np.full(pair.size_hw, np.nan, np.float32)
    hints[10:12, 10:13] = value
    with pytest.raises(rtstereo.InputError) as caught:
        guided.predict_pair(pair, hints=hints)
    assert str(caught.value) == (
        "hints hold inf at 6 pixels: give nan where there is no hint (a PFM map's invalid pixels: "
        "rtstereo.io.read_disparity reads them as nan)"
    )


def test_hints_at_or_beyond_the_images_width_are_refused(textured_pair):
    """A hint of 1e30 px (a map in other units) gave a map of 1.8e26 px without a word; no match lies at or beyond
    the width. Hints just below it run."""
    guided = rtstereo.load("rtnet-guided")
    pair = rtstereo.StereoPair(*textured_pair)
    hints = np.full(pair.size_hw, np.nan, np.float32)
    width = pair.size_hw[1]
    hints[10:12, 10:13] = width
    with pytest.raises(rtstereo.InputError) as caught:
        guided.predict_pair(pair, hints=hints)
    assert str(caught.value) == (
        f"hints reach {width} px at 6 pixels, not below the images' width of {width} px, where no match lies: hints "
        "are disparities in pixels of these images (a map of another size or unit?), nan where there is none"
    )
    hints[10:12, 10:13] = width - 0.5
    assert np.isfinite(guided.predict_pair(pair, hints=hints).disparity_px).any()


def test_the_one_shot_predict_passes_hints_to_a_guided_network(textured_pair):
    """rtstereo.predict(left, right, "rtnet-guided", hints=...) was refused as "model 'rtnet-guided' has no setting
    'hints'": the keyword went to load() as a setting."""
    left, right = textured_pair
    hints = np.full(left.shape[:2], np.nan, np.float32)
    hints[10:30, 10:40] = 4.0
    with pytest.warns(rtstereo.RtStereoWarning, match="is a guided network"):
        got = rtstereo.predict(left, right, "rtnet-guided", hints=hints).disparity_px
    with pytest.warns(rtstereo.RtStereoWarning, match="is a guided network"):
        expected = rtstereo.load("rtnet-guided").predict(left, right, hints=hints).disparity_px
    assert np.array_equal(got, expected, equal_nan=True)
    with pytest.raises(rtstereo.InputError, match=r"^hybrid takes no hints \(only a guided network alone does"):
        rtstereo.predict(left, right, "default", hints=hints)


def test_a_result_given_for_its_disparity_map_says_where_the_map_is(textured_pair):
    """The error quoted the result's repr, cut off in the first row of its array."""
    from rtstereo.geometry import depth_from_disparity
    from rtstereo.io import write_disparity

    result = rtstereo.load("sgbm", max_disp=16).predict(*textured_pair)
    calibration = rtstereo.Calibration(100.0, 100.0, 31.5, 31.5, 23.5, 0.1)
    with pytest.raises(rtstereo.InputError, match=r"^disparity: .* got DisparityResult \(its map is \.disparity_px\)$"):
        depth_from_disparity(result, calibration)
    with pytest.raises(rtstereo.OutputError, match=r", got DisparityResult \(its map is \.disparity_px\)$"):
        write_disparity("d.pfm", result)


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_total_time_counts_the_conversion_of_the_images(textured_pair, model, monkeypatch):
    """Turning a grey or RGBA view into uint8 RGB, before the first stage, was in no stage: 19 and 38 ms of a grey
    and an RGBA 1920x1440 pair were missing from ``total``, which the README calls the whole call."""
    import time

    import rtstereo.types

    predictor = rtstereo.load(model, max_disp=16)
    grey_alike = rtstereo.types.grey_alike

    def slow_grey_alike(left, right):
        time.sleep(0.2)
        return grey_alike(left, right)

    monkeypatch.setattr(rtstereo.types, "grey_alike", slow_grey_alike)
    timings = predictor.predict(*textured_pair).timings_ms
    assert timings["total"] >= 200 and timings["preprocess"] >= 200, timings
    stages = sum(
        timings[name] for name in ("preprocess", "inference", "postprocess", "sgbm", "fusion") if name in timings
    )
    assert timings["total"] >= stages - 1e-6, timings


def test_results_pairs_and_clouds_compare_and_hash_as_objects(textured_pair):
    """``a == b`` of two results compared their arrays field by field and raised ValueError ("the truth value of an
    array ... is ambiguous"), as did ``result in results``; ``{result}`` raised TypeError (unhashable ndarray)."""
    from rtstereo.geometry import point_cloud

    model = rtstereo.load("sgbm", max_disp=16)
    first, second = (model.predict(*textured_pair) for _ in range(2))
    assert first == first and first != second and first not in [second] and len({first, second, first}) == 2
    pairs = [rtstereo.StereoPair(*(image.copy() for image in textured_pair)) for _ in range(2)]
    assert pairs[0] != pairs[1] and pairs.index(pairs[1]) == 1 and len(set(pairs)) == 2
    calibration = rtstereo.Calibration(100.0, 100.0, 31.5, 31.5, 23.5, 0.1)
    clouds = [point_cloud(result.disparity_px, calibration) for result in (first, second)]
    assert clouds[0] != clouds[1] and len(set(clouds)) == 2


def test_predict_pair_refuses_what_is_not_a_stereo_pair(textured_pair):
    left, right = textured_pair
    for model in ("sgbm", "default"):
        with pytest.raises(rtstereo.InputError, match=r"expected a StereoPair, got tuple: predict_pair\(StereoPair"):
            rtstereo.load(model, max_disp=16).predict_pair((left, right))


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": 5}, "name: expected a str .* got int 5"),
        ({"index": "3"}, "index: expected a whole frame number, got str '3'"),
        ({"index": 1.5}, "index: expected a whole frame number, got float 1.5"),
        ({"timestamp_s": "0.5"}, "timestamp_s: expected a capture time in seconds, or None, got str '0.5'"),
    ],
)
def test_a_stereo_pair_refuses_a_label_of_the_wrong_type(textured_pair, field, message):
    # taken as given before: a stream's progress bar and numbered files then failed with a bare TypeError
    left, right = textured_pair
    with pytest.raises(rtstereo.InputError, match=message):
        rtstereo.StereoPair(left, right, **field)
    pair = rtstereo.StereoPair(left, right, "a", np.int64(2), np.float32(0.5))
    assert (pair.name, pair.index, pair.timestamp_s) == ("a", 2, 0.5)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"index": -1}, "index: expected a whole frame number >= 0, got -1"),
        (
            {"timestamp_s": float("inf")},
            "timestamp_s: expected a finite capture time in seconds, or None (unknown), got inf",
        ),
        (
            {"timestamp_s": np.float32("nan")},
            "timestamp_s: expected a finite capture time in seconds, or None (unknown), got nan",
        ),
    ],
)
def test_a_stereo_pair_refuses_a_negative_index_and_a_timestamp_that_is_no_time(textured_pair, field, message):
    """StereoPair(l, l, index=-1, timestamp_s=float("inf")) was taken as given."""
    left, right = textured_pair
    with pytest.raises(rtstereo.InputError) as caught:
        rtstereo.StereoPair(left, right, **field)
    assert str(caught.value) == message
    assert rtstereo.StereoPair(left, right, index=0, timestamp_s=-0.5).timestamp_s == -0.5  # before a clock's zero


def test_a_calibration_that_is_not_a_calibration_is_an_input_error(textured_pair):
    left, right = textured_pair
    values = {"fx_px": 100.0, "fy_px": 100.0, "cx0_px": 10.0, "cx1_px": 10.0, "cy_px": 10.0, "baseline_m": 0.1}
    model = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(
        rtstereo.InputError, match=r"expected an rtstereo Calibration or None, got dict .*Calibration\(\*\*values\)"
    ):
        model.predict(left, right, calibration=values)
    with pytest.raises(
        rtstereo.InputError, match=r"expected an rtstereo Calibration or None, got str .*read_calibration"
    ):
        rtstereo.StereoPair(left, right, calibration="calib.txt")


@pytest.mark.parametrize(
    "options, said",
    [
        ({"device": "cuda"}, "device 'cuda' applies to networks only"),  # not "and precision 'fp32'", the default
        ({"precision": "bf16"}, "precision 'bf16' applies to networks only"),
        ({"device": "cuda", "precision": "fp16"}, "device 'cuda' and precision 'fp16' apply to networks only"),
    ],
)
def test_a_classical_method_says_that_device_and_precision_do_not_apply_to_it(options, said):
    with pytest.warns(UserWarning, match="sgbm runs on the CPU in OpenCV's own arithmetic") as caught:
        rtstereo.load("sgbm", **options)
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [said]


def test_every_warning_predict_gives_is_an_rtstereo_warning_that_one_filter_silences(textured_pair):
    """They were plain UserWarnings, attributed to the caller's line: neither a category nor a module filter told
    rtstereo's apart from others."""
    import warnings

    left, right = textured_pair
    grey = np.ascontiguousarray(left[:, :, 0])
    calibration = rtstereo.Calibration(100.0, 100.0, 63.5, 63.5, 47.5, 0.1, width_px=128, height_px=96)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = rtstereo.load("sgbm", max_disp=48, device="cuda")  # device does not apply to SGBM
        model.predict(grey, right, calibration=calibration)  # grey beside colour, calibration scaled, band
    assert {w.category for w in caught} >= {rtstereo.CalibrationWarning, rtstereo.UnmatchedBandWarning}
    assert len(caught) == 4 and all(issubclass(w.category, rtstereo.RtStereoWarning) for w in caught), caught
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=rtstereo.RtStereoWarning)
        rtstereo.load("sgbm", max_disp=48, device="cuda").predict(grey, right, calibration=calibration)
    assert caught == []
    for name in ("CalibrationWarning", "ResizeWarning", "SmallInputWarning", "UnmatchedBandWarning"):
        assert name in rtstereo.__all__ and issubclass(getattr(rtstereo, name), rtstereo.RtStereoWarning)
    assert issubclass(rtstereo.RtStereoWarning, UserWarning)  # filters on UserWarning still take them


def test_every_error_class_of_rtstereo_errors_is_importable_from_rtstereo():
    """ExportError and EngineError (run_ray's, in the README) were RtStereoErrors only rtstereo.errors had."""
    import rtstereo.errors as errors

    own = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.RtStereoError) and value.__module__ == errors.__name__
    }
    refined = {"SettingError", "DisparityRangeError"}  # an InputError and an OutputError with an attribute of their own
    assert own - refined <= set(rtstereo.__all__), own - refined - set(rtstereo.__all__)
    assert all(getattr(rtstereo, name) is getattr(errors, name) for name in own - refined)


def test_every_warning_category_of_rtstereo_derives_from_rtstereo_warning():
    import re

    source = Path(rtstereo.__file__).parent
    own = [
        f"{path.relative_to(source)}: {match.group(0)}"
        for path in sorted(source.rglob("*.py"))
        for match in re.finditer(r"^class \w+\((UserWarning|RuntimeWarning|Warning)\)", path.read_text(), re.M)
    ]
    assert own == ["errors.py: class RtStereoWarning(UserWarning)"]


def test_an_existing_checkpoint_without_a_suffix_is_loaded(tmp_path):
    from pathlib import Path

    state = Path(__file__).resolve().parents[1] / "training" / "default" / "state.pt"
    if not state.is_file():
        pytest.skip("needs training/default/state.pt")
    pytest.importorskip("torch")
    plain = tmp_path / "best"
    plain.write_bytes(state.read_bytes())
    assert rtstereo.load(str(plain)).name == rtstereo.load(str(state)).name


def test_a_warning_names_the_line_of_the_callers_code_not_rtstereos():
    from rtstereo.runtime.predictor import SmallInputWarning

    tiny = np.zeros((30, 36, 3), np.uint8)
    network = rtstereo.load("rtnet-v5")
    with pytest.warns(SmallInputWarning) as caught:
        network.predict(tiny, tiny)  # several calls deep inside rtstereo, attributed here
    assert [w.filename for w in caught] == [__file__]


def test_a_warning_from_a_stereo_pairs_own_init_names_the_callers_line_too(textured_pair):
    # StereoPair's __init__ is written by dataclasses, in a file called "<string>": the grey view's warning was said
    # at "<string>:9", which neither points at the caller nor lets a filter by module reach it
    left, right = textured_pair
    grey = np.repeat(left[:, :, :1], 3, axis=2)
    with pytest.warns(rtstereo.RtStereoWarning, match="matched in grey") as caught:
        rtstereo.StereoPair(grey, right)
    assert [w.filename for w in caught] == [__file__]


@pytest.mark.parametrize("model, settings", [("sgbm", {"max_disp": 16}), ("rtnet-v5", {})])
def test_a_predictor_closes_in_a_with_block_and_then_refuses_to_predict(textured_pair, model, settings):
    left, right = textured_pair
    with rtstereo.load(model, **settings) as predictor:  # was: TypeError, no context manager protocol
        inside = predictor.predict(left, right).disparity_px
    assert inside.shape == left.shape[:2]
    with pytest.raises(rtstereo.InputError, match=f"the {model} predictor was closed; load the model again"):
        predictor.predict(left, right)
    predictor.close()  # twice: harmless
    assert "'closed': True" in repr(predictor)


@pytest.mark.parametrize("model, settings", [("sgbm", {"max_disp": 16}), ("hybrid", {"max_disp": 16})])
def test_a_closed_predictor_refuses_a_with_block_at_once(model, settings):
    """`m.close(); with m:` was entered; the error came only at the block's first predict."""
    predictor = rtstereo.load(model, **settings)
    predictor.close()
    entered = False
    with pytest.raises(rtstereo.InputError, match=f"^the {model} predictor was closed; load the model again"):
        with predictor:
            entered = True
    assert not entered


@pytest.mark.parametrize("model, settings", [("sgbm", {"max_disp": 16}), ("hybrid", {"max_disp": 16})])
def test_a_closed_predictor_on_the_device_says_it_was_closed(textured_pair, model, settings):
    """It said "the opencv backend does not post-process on a device", as if the backend were the matter."""
    left, right = textured_pair
    predictor = rtstereo.load(model, **settings)
    predictor.close()
    with pytest.raises(rtstereo.InputError, match=f"the {model} predictor was closed; load the model again"):
        predictor.predict_on_device(rtstereo.StereoPair(left, right))


def test_closing_the_hybrid_stops_its_sgbm_thread_and_closes_its_network():
    import threading

    from .conftest import make_textured_pair

    left, right = make_textured_pair(64, 96)
    hybrid = rtstereo.load("hybrid", max_disp=16, network="rtnet-v5")  # an unguided network: SGBM beside it
    hybrid.predict(left, right)
    workers = [t for t in threading.enumerate() if t.name.startswith("rtstereo-sgbm")]
    assert workers and all(t.is_alive() for t in workers)
    hybrid.close()
    assert not any(t.is_alive() for t in workers)
    with pytest.raises(rtstereo.InputError, match="the hybrid predictor was closed"):
        hybrid.predict(left, right)
    hybrid.close()


@pytest.mark.parametrize("network", ["rtnet-v5", "rtnet-guided"])
def test_a_hybrid_closed_by_another_thread_during_a_pair_says_it_was_closed(monkeypatch, network):
    """Closed while a pair ran, the hybrid said "the rtnet-guided predictor was closed" (its network's name), and beside
    an unguided network it made a new SGBM worker thread after close() had stopped its own."""
    import threading

    from rtstereo.runtime import hybrid as hybrid_module

    from .conftest import make_textured_pair

    left, right = make_textured_pair(64, 96)
    hybrid = rtstereo.load("hybrid", max_disp=16, network=network, threads=2)
    decide = hybrid_module.resolved_sgbm_input

    def closed_meanwhile(*args):  # what another thread's close() does once this pair has started
        hybrid.close()
        return decide(*args)

    monkeypatch.setattr(hybrid_module, "resolved_sgbm_input", closed_meanwhile)
    with pytest.raises(rtstereo.InputError) as caught:
        hybrid.predict(left, right)
    assert str(caught.value) == "the hybrid predictor was closed; load the model again (rtstereo.load)"
    assert hybrid._sgbm_thread is None
    assert not [t for t in threading.enumerate() if t.name.startswith("rtstereo-sgbm") and t.is_alive()]


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_a_loaded_model_given_to_another_process_says_to_load_it_there(model):
    """A predictor given to a multiprocessing pool (pickled) failed with "TypeError: cannot pickle 'mappingproxy'
    object", a word of its registry entry, nothing of what to do."""
    import copy
    import pickle

    loaded = rtstereo.load(model)
    said = (
        f"a loaded {loaded.name} model cannot be pickled or copied (its ONNX Runtime sessions, OpenCV matcher and "
        f"threads stay in this process): load it where it runs, rtstereo.load('{loaded.name}', ...) in each process (a "
        "multiprocessing pool's initializer), or share this one between threads, which it allows"
    )
    for send in (pickle.dumps, copy.deepcopy):
        with pytest.raises(rtstereo.InputError) as caught:
            send(loaded)
        assert str(caught.value) == said


def test_threads_sharing_predictors_get_the_maps_of_serial_calls():
    """As the README says: one predictor (and two) called from several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import make_textured_pair

    pairs = [make_textured_pair(64, 96, disparity_px=d, seed=d) for d in (3, 6)]
    hybrid, sgbm = rtstereo.load("default", max_disp=16), rtstereo.load("sgbm", max_disp=16)
    jobs = [(model, pair) for model in (hybrid, sgbm) for pair in pairs] * 2
    serial = [model.predict(*pair).disparity_px for model, pair in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda job: job[0].predict(*job[1]).disparity_px, jobs))
    for one, other in zip(serial, threaded):
        np.testing.assert_array_equal(one, other)


@pytest.mark.parametrize("model", ["bm", "sgbm"])
def test_threads_sharing_an_opencv_matcher_get_the_maps_of_serial_calls(model):
    """OpenCV's StereoBM and StereoSGBM keep their work buffers in the matcher: two threads computing with one at once
    corrupted each other's maps (bm on pairs of two sizes: thousands of pixels off). Each thread has its own."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import make_textured_pair

    pairs = [make_textured_pair(120, 200, disparity_px=5, seed=1), make_textured_pair(90, 150, disparity_px=9, seed=2)]
    predictor = rtstereo.load(model, max_disp=32)
    serial = [predictor.predict(*pair).disparity_px for pair in pairs]
    barrier = threading.Barrier(4)

    def run(job: int) -> tuple[int, np.ndarray, object]:
        barrier.wait()  # the four threads match at once
        which = job % 2
        maps = [predictor.predict(*pairs[which]).disparity_px for _ in range(6)]
        return which, maps, predictor.backend.matcher.matcher

    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(run, range(4)))
    assert len({id(matcher) for _, _, matcher in threaded}) == 4  # a matcher of each thread's own
    for which, maps, _ in threaded:
        for disparity in maps:
            np.testing.assert_array_equal(disparity, serial[which])


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_the_results_left_image_is_not_the_callers_array(textured_pair, model):
    """result.left was the caller's own array: changing it afterwards (a reused camera buffer) changed the result."""
    left, right = textured_pair
    kept = left.copy()
    with rtstereo.load(model, max_disp=16) as predictor:
        result = predictor.predict(left, right)
    left[:] = 0
    np.testing.assert_array_equal(result.left, kept)


def test_loads_annotation_names_every_kind_of_predictor_it_returns():
    """load() was annotated -> Predictor, but returns a HybridPredictor, no subclass of it, for default."""
    import typing

    from rtstereo import api
    from rtstereo.runtime.hybrid import HybridPredictor

    hints = typing.get_type_hints(api.load, {**vars(api), "HybridPredictor": HybridPredictor})
    kinds = typing.get_args(hints["return"]) or (hints["return"],)
    for model in ("sgbm", "default"):
        with api.load(model) as predictor:
            assert isinstance(predictor, kinds), (model, type(predictor), kinds)


def test_every_predictor_type_load_returns_is_exported_from_rtstereo():
    """load("default") returns a HybridPredictor, which rtstereo did not export: a typed caller could not name it."""
    import rtstereo.api as api

    returned = [name.strip() for name in api.load.__annotations__["return"].split("|")]
    assert returned == ["Predictor", "HybridPredictor"], returned
    for name in returned:
        assert name in rtstereo.__all__ and getattr(rtstereo, name).__name__ == name
    with rtstereo.load("default") as model:
        assert isinstance(model, rtstereo.HybridPredictor)


def test_the_reprs_of_results_pairs_and_clouds_name_their_arrays_without_their_values(textured_pair):
    """print(result) gave some 60 lines of the disparity's and the left image's values, a pair over a hundred."""
    from rtstereo.geometry import result_point_cloud

    left, right = textured_pair
    calibration = rtstereo.Calibration(100, 100, 31.5, 31.5, 23.5, 0.1, width_px=64, height_px=48)
    result = rtstereo.load("sgbm", max_disp=16).predict(left, right, calibration=calibration)
    text = repr(result)
    assert "\n" not in text and "array(" not in text
    assert text.startswith("DisparityResult(model='sgbm', disparity_px=float32 (48, 64), density=")
    assert f"total_ms={result.timings_ms['total']:.1f}" in text and "left=uint8 (48, 64, 3)" in text
    assert repr(rtstereo.StereoPair(left, right, name="a")) == (
        "StereoPair(left=uint8 (48, 64, 3), right=uint8 (48, 64, 3), name='a', index=0, timestamp_s=None, "
        "calibration=None)"
    )
    cloud = result_point_cloud(result)
    assert repr(cloud) == (
        f"PointCloud(points_m=float32 ({len(cloud)}, 3), colors=uint8 ({len(cloud)}, 3), "
        f"pixel_index=int64 ({len(cloud)},), size_hw=(48, 64))"
    )


@pytest.mark.parametrize("model", ["sgbm", "default"])
def test_the_post_processing_switches_read_false_as_load_reads_it(textured_pair, model):
    """predictor.refine_edges = "false" turned the refinement on (bool("false") is True); load(refine_edges="false")
    turned it off. Both read the value alike now, and refuse what is neither."""
    left, right = textured_pair
    off = rtstereo.load(model, max_disp=16, refine_edges=False, fill_left_border=False)
    switched = rtstereo.load(model, max_disp=16, refine_edges=True, fill_left_border=True)
    switched.refine_edges, switched.fill_left_border = "false", "no"
    assert switched.refine_edges is False and switched.fill_left_border is False
    np.testing.assert_array_equal(switched.predict(left, right).disparity_px, off.predict(left, right).disparity_px)
    with pytest.raises(rtstereo.InputError, match="setting 'refine_edges': expected true or false, got 'maybe'"):
        switched.refine_edges = "maybe"


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((2, 48, 64, 3), "got (2, 48, 64, 3); a batch of 2 images? one pair at a time: (left[i], right[i])"),
        ((3, 48, 64), "got (3, 48, 64); channels first (C, H, W)? image.transpose(1, 2, 0)"),
        ((48, 64, 2), "got (48, 64, 2); grey with alpha (PIL's mode LA)? image[:, :, 0]"),  # said nothing of it
    ],
)
def test_a_batch_or_a_channels_first_image_is_refused_with_what_to_do(shape, hint):
    """A batch of images, or a tensor's (C, H, W) layout, was refused without a word of what it looked like."""
    image = np.zeros(shape, np.uint8)
    with pytest.raises(rtstereo.InputError) as info:
        rtstereo.load("sgbm", max_disp=16).predict(image, image)
    assert str(info.value) == f"left image: expected shape (H, W, 3) or (H, W), {hint}"


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # NumPy's word on np.matrix
def test_an_array_subclass_is_read_as_the_plain_array_it_holds(textured_pair):
    """A grey view given as np.matrix (what np.asmatrix or scipy's .todense() give) failed with a bare ValueError,
    "shape too large to be a matrix", and a strided one (np.asmatrix(left[:, :, 0])) aborted the process, "double free
    or corruption" (NumPy 2.4's repeat of a matrix); a masked array is taken as its data, as before."""
    left, right = (np.ascontiguousarray(view[:, :, 0]) for view in textured_pair)
    model = rtstereo.load("sgbm", max_disp=16)
    expected = model.predict(left, right).disparity_px
    for wrap in (np.asmatrix, np.ma.masked_array):
        got = model.predict(wrap(left), wrap(right)).disparity_px
        assert type(got) is np.ndarray and np.array_equal(got, expected, equal_nan=True), wrap


@pytest.mark.parametrize(
    ("category", "case"),
    [
        ("ResizeWarning", "memory budget"),  # also given for a pair too large for the budget
        ("UnmatchedBandWarning", "a network over its whole width"),  # also given for networks
        ("CalibrationWarning", "principal point far from their centre"),  # also given for a calibration not scaled
    ],
)
def test_the_help_of_each_warning_category_names_every_case_predict_gives_it_for(category, case):
    """help(rtstereo.ResizeWarning) spoke of fixed-shape models alone, UnmatchedBandWarning's of OpenCV's matchers
    alone, CalibrationWarning's of scaling alone; the README and predict give each for more."""
    assert case in " ".join(getattr(rtstereo, category).__doc__.split())


def test_the_advice_for_10_and_12_bit_data_gives_arrays_predict_takes():
    """ "image >> 2 or image >> 4" left the data uint16, which predict refused again."""
    data = np.full((32, 48, 3), 1000, np.uint16)  # 10-bit values
    model = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(rtstereo.InputError) as info:
        model.predict(data, data)
    advice = str(info.value).split("10- or 12-bit data held in 16 bits: ")[1].removesuffix(")").split(" or ")
    for expression in advice:
        converted = eval(expression, {"np": np, "image": data})  # noqa: S307 - the message's own code, on our array
        assert model.predict(converted, converted).disparity_px.shape == (32, 48)


def test_a_model_loaded_for_the_cpu_keeps_freed_memory_for_reuse(monkeypatch):
    """The hybrid's temporaries were mapped and zeroed anew by the kernel for each pair: 13-15 k page faults per
    640x480 pair, about a tenth of its CPU time; loading a model for the CPU now tells malloc to keep them."""
    import rtstereo.api

    calls = []
    monkeypatch.setattr(rtstereo.api, "keep_freed_memory", lambda: calls.append(True) or True)
    rtstereo.load("sgbm", max_disp=16)
    assert calls == [True]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keeping_freed_memory_spares_the_page_faults_of_each_pair(tmp_path):
    import platform
    import subprocess

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc")
    # a process of its own: the setting is process-wide, and whether an earlier test made it must not matter
    script = (
        "import resource, numpy as np, rtstereo\n"
        "model = rtstereo.load('default', threads=1)\n"
        "rng = np.random.default_rng(0)\n"
        "left = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)\n"
        "right = np.ascontiguousarray(np.roll(left, -6, axis=1))\n"
        "for _ in range(2):\n"
        "    model.predict(left, right)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "model.predict(left, right)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    faults = int(done.stdout.split()[-1])
    # about 2 000 before (the pages of every temporary mapped and zeroed again at each pair), 8 since
    assert faults < 500, faults


def test_an_exports_external_data_file_given_as_the_model_names_the_model(tmp_path, cli, monkeypatch):
    """`--model m.onnx.data` (a shell's completion stops there) was read as a PyTorch checkpoint: "not a PyTorch
    file", or, without torch, "reading a PyTorch checkpoint needs the Python package 'torch'"."""
    data = tmp_path / "m.onnx.data"
    data.write_bytes(b"\x00" * 64)
    message = (
        f"{data} holds the weights of an exported model, which `rtstereo export` writes beside it (external data), "
        "and is no model itself: give the model, m.onnx"
    )
    monkeypatch.setitem(sys.modules, "torch", None)  # a deployment without torch: it was asked for
    with pytest.raises(rtstereo.errors.InputError) as caught:
        rtstereo.load(str(data))
    assert str(caught.value) == message
    code, out, err = cli("bench", data, "--sizes", "32x64")
    assert (code, out, err) == (2, "", f"rtstereo bench: error: {message}\n")


def test_a_guided_network_given_as_the_model_warns_that_it_runs_unguided(recwarn):
    """An export or checkpoint of a guided network (what `adapt --model default` writes) ran alone without its hints,
    a poorer map, and said nothing; so did the registry's rtnet-guided (the hybrid's network) named alone. Inside the
    hybrid it says nothing."""
    from rtstereo.runtime.onnx import packaged_path

    guided = str(packaged_path(rtstereo.models.get_spec("rtnet-guided")))
    for model in (guided, "rtnet-guided"):
        with pytest.warns(rtstereo.RtStereoWarning, match="is a guided network") as caught:
            rtstereo.load(model)
        assert str(caught[0].message).startswith(f"{model} is a guided network, which alone gets none of SGBM's ")
        assert f"--model hybrid --set network={model}" in str(caught[0].message)
    recwarn.clear()
    rtstereo.load("hybrid", network=guided)
    rtstereo.load("hybrid")
    rtstereo.load("rtnet-v5")
    assert not [w for w in recwarn if "guided network" in str(w.message)]


def test_the_hybrids_guided_network_called_directly_warns_that_it_runs_unguided(recwarn):
    """rtstereo.load("default").network.predict(L, R) ran the guided network unguided without a word, where
    rtstereo.load("rtnet-guided") warns; the hybrid's own pairs, and pairs given hints, say nothing."""
    from .conftest import make_textured_pair

    left, right = make_textured_pair(64, 96)
    hybrid = rtstereo.load("default")
    hybrid.predict(left, right)
    hybrid.network.predict(left, right, hints=np.full(left.shape[:2], np.nan, np.float32))
    assert not [w for w in recwarn if "guided network" in str(w.message)]
    with pytest.warns(rtstereo.RtStereoWarning, match="is a guided network") as caught:
        hybrid.network.predict(left, right)
    assert str(caught[0].message).startswith("rtnet-guided is a guided network, which alone gets none of SGBM's ")
    assert [w.filename for w in caught] == [__file__]
    recwarn.clear()
    hybrid.network.predict(left, right)  # once, as load() warns once
    hybrid.predict(left, right)
    assert not [w for w in recwarn if "guided network" in str(w.message)]


def test_the_registrys_guided_network_named_alone_on_the_command_line_warns(tmp_path):
    """`--model rtnet-guided` ran unguided without a word, where --model FILE of a guided network warns (a process of
    its own: the command line's warnings are lines on stderr, which pytest's capture of warnings would take)."""
    import os
    import subprocess

    import cv2

    from .conftest import make_textured_pair

    paths = [str(tmp_path / "l.png"), str(tmp_path / "r.png")]
    for path, image in zip(paths, make_textured_pair(48, 96)):
        cv2.imwrite(path, image)
    argv = [sys.executable, "-m", "rtstereo", "predict", *paths, "--model", "rtnet-guided", "-o", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": str(Path(rtstereo.__file__).parents[1])}
    done = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "rtstereo predict: warning: rtnet-guided is a guided network, which alone gets none of SGBM's" in done.stderr
