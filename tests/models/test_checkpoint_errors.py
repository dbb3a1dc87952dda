"""A published network given a file it cannot load: one line that names the file and what it holds or lacks."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtstereo.errors import CheckpointError  # noqa: E402
from rtstereo.models.anynet import AnyNet, load_anynet_checkpoint  # noqa: E402
from rtstereo.models.checkpoint import identify_network, network_of_file, save_checkpoint  # noqa: E402
from rtstereo.models.crestereo import CREStereo, load_crestereo_checkpoint  # noqa: E402
from rtstereo.models.gwcnet import build_gwcnet_g, build_gwcnet_gc, load_gwcnet_checkpoint  # noqa: E402


def _gwcnet_g():
    return build_gwcnet_g({"max_disp": 16})


def _original_files(tmp_path):
    """Each network's weights in its original project's layout."""
    files = {
        "gwcnet-g": ({"epoch": 1, "model": {f"module.{k}": v for k, v in _gwcnet_g().state_dict().items()}}),
        "crestereo": CREStereo().state_dict(),
        "anynet": {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in AnyNet().state_dict().items()}},
    }
    paths = {}
    for name, obj in files.items():
        paths[name] = tmp_path / f"{name}.pth"
        torch.save(obj, paths[name])
    return paths


LOADERS = {
    "gwcnet-g": (load_gwcnet_checkpoint, _gwcnet_g, "gwcnet-g"),
    "crestereo": (load_crestereo_checkpoint, CREStereo, "CREStereo"),
    "anynet": (load_anynet_checkpoint, AnyNet, "anynet"),
}


@pytest.mark.parametrize("network", LOADERS)
def test_a_missing_empty_or_cut_short_file_is_refused_by_each_loader(tmp_path, network):
    load, build, _ = LOADERS[network]
    whole = _original_files(tmp_path)[network].read_bytes()  # in its project's own layout
    for name, content, said in (
        ("absent.pth", None, "weights file not found: "),
        ("empty.pth", b"", "weights file is empty: "),
        ("cut.pth", whole[: len(whole) // 2], "cannot read weights file "),
    ):
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=re.escape(f"{said}{tmp_path / name}")):
            load(build(), tmp_path / name)


@pytest.mark.parametrize(
    "network, holder",
    [("crestereo", "gwcnet-g"), ("anynet", "gwcnet-g"), ("gwcnet-g", "crestereo"), ("crestereo", "anynet")],
)
def test_another_networks_file_is_named(tmp_path, network, holder):
    load, build, shown = LOADERS[network]
    path = _original_files(tmp_path)[holder]
    with pytest.raises(CheckpointError) as info:
        load(build(), path)
    assert str(info.value) == f"{path} holds {holder} weights, not {shown}; load it with model '{holder}'"


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
def test_an_extra_or_missing_key_blames_the_file_not_a_setting(tmp_path, network):
    load, build, shown = LOADERS[network]
    state_dict = build().state_dict()
    first = next(iter(state_dict))
    for edit, count in (("extra", "1 unexpected (e.g. added.weight)"), ("missing", f"1 missing (e.g. {first})")):
        edited = dict(state_dict)
        if edit == "extra":
            edited["added.weight"] = torch.zeros(1)
        else:
            del edited[first]
        path = tmp_path / f"{edit}.pth"
        torch.save(edited, path)
        with pytest.raises(CheckpointError) as info:
            load(build(), path)
        message = str(info.value)
        assert message.startswith(f"{path} does not hold {shown} weights: {count}; expected "), message
        assert "max_disp" not in message and "settings" not in message  # none of these settings changes a weight


def test_a_truncated_legacy_file_is_said_to_be_cut_short(tmp_path):
    """AnyNet's released files are in torch's pre-1.6 (tar) format, whose truncation torch reports as an EOF."""
    whole = tmp_path / "whole.tar"
    torch.save({"state_dict": AnyNet().state_dict()}, whole, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size - 1000])
    with pytest.raises(CheckpointError, match=r"cut\.tar: cut short \(the file ends before its last tensor\)"):
        load_anynet_checkpoint(AnyNet(), cut)


@pytest.mark.parametrize("network", ["gwcnet-g", "anynet"])
def test_a_file_with_changed_bytes_is_said_to_be_damaged(tmp_path, network):
    """torch.load reads a torch.save zip without checking its checksums: 64 bytes zeroed inside one tensor's data
    loaded, with that tensor wrong and no word of it."""
    load, build, _ = LOADERS[network]
    path = _original_files(tmp_path)[network]
    state_dict = torch.load(path, weights_only=True)["model" if network == "gwcnet-g" else "state_dict"]
    tensor = next(value for value in state_dict.values() if value.numel() >= 64)
    data = bytearray(path.read_bytes())
    start = data.find(tensor.numpy().tobytes())
    assert start > 0
    data[start : start + 64] = bytes(64)
    path.write_bytes(bytes(data))
    expected = rf"{network}\.pth: damaged: the bytes of its entry \S+/data/\d+ do not match the checksum stored"
    with pytest.raises(CheckpointError, match=expected):
        load(build(), path)


@pytest.mark.parametrize("network", ["gwcnet-g", "anynet"])
def test_a_file_without_batchnorms_step_counters_loads(tmp_path, network):
    """BatchNorm's num_batches_tracked (PyTorch 0.4.1) is absent from older and some converted files; PyTorch's
    load_state_dict fills it in, and GwcNet's loader refused such a file for 87 missing keys."""
    load, build, _ = LOADERS[network]
    source = build()
    weights = {k: v for k, v in source.state_dict().items() if not k.endswith(".num_batches_tracked")}
    torch.save({"model": {f"module.{k}": v for k, v in weights.items()}}, tmp_path / "old.pth")
    module = build()
    load(module, tmp_path / "old.pth")
    loaded = module.state_dict()
    assert len(weights) < len(loaded)
    for key, value in weights.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_with_nan_or_inf_are_refused(tmp_path, network, value):
    """A NaN weight loaded, and every map came out empty (density 0 %, exit code 0) with no word of why."""
    load, build, shown = LOADERS[network]
    state_dict = build().state_dict()
    name = next(k for k, v in state_dict.items() if k.endswith(".weight") and v.dim() == 4)
    state_dict[name].view(-1)[0] = value
    torch.save({"state_dict": state_dict}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        load(build(), tmp_path / "bad.pth")
    assert str(info.value) == (
        f"{tmp_path / 'bad.pth'} holds nan or inf values in 1 of its {shown} weights (e.g. {name}): a training that "
        "diverged, or a conversion that overflowed (float16 stops at 65504)"
    )


@pytest.mark.parametrize(
    "change, said",
    [
        (lambda t: 5, "1 not a tensor (e.g. {name}: int)"),  # crashed with AttributeError: 'int' has no 'shape'
        (lambda t: t.tolist(), "1 not a tensor (e.g. {name}: list)"),
        (lambda t: t.to(torch.int32), "1 not of a float type (e.g. {name}: file int32)"),  # loaded, its values cut
    ],
    ids=["int", "list", "int32"],
)
def test_a_weight_that_is_no_float_tensor_is_named(tmp_path, change, said):
    state_dict = _gwcnet_g().state_dict()
    name = next(k for k in state_dict if k.endswith(".weight"))
    state_dict[name] = change(state_dict[name])
    torch.save({"model": state_dict}, tmp_path / "odd.ckpt")
    with pytest.raises(CheckpointError) as info:
        load_gwcnet_checkpoint(_gwcnet_g(), tmp_path / "odd.ckpt")
    assert str(info.value) == f"{tmp_path / 'odd.ckpt'} does not hold gwcnet-g weights: {said.format(name=name)}"


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_file_cut_anywhere_is_said_to_be_cut_short(tmp_path, zipped):
    """Cut at some points, a file gave torch's reader's own words: "IndexError: index out of range", "error: unpack
    requires a buffer of 4 bytes", "OSError: [Errno 22] Invalid argument" (which reads as a fault of the disk)."""
    whole = tmp_path / "whole.pth"
    torch.save({"state_dict": AnyNet().state_dict()}, whole, _use_new_zipfile_serialization=zipped)
    data = whole.read_bytes()
    cut = tmp_path / "cut.pth"
    said = set()
    for size in [1, 512, 1000, 3000, 5000, 10000, 30000, len(data) // 10, len(data) // 2, len(data) - 1]:
        cut.write_bytes(data[:size])
        with pytest.raises(CheckpointError) as info:
            load_anynet_checkpoint(AnyNet(), cut)
        said.add(str(info.value).removeprefix(f"cannot read weights file {cut}: ").split(";")[0])
    assert all("cut short" in reason or "damaged" in reason for reason in said), said


def test_a_psmnet_file_is_not_called_gwcnet(tmp_path):
    """PSMNet shares GwcNet's dres0..4, classif1..3 and feature_extraction.lastconv, not its classif0: its file was
    "gwcnet-gc weights; load it with model 'gwcnet-gc'", which then refused it for its shapes."""
    gwcnet = build_gwcnet_gc({"max_disp": 16}).state_dict()
    psmnet = {f"module.{k}": v for k, v in gwcnet.items() if not k.startswith("classif0.")}
    psmnet["module.feature_extraction.branch1.1.0.weight"] = torch.zeros(32, 128, 1, 1)  # its pyramid pooling
    path = tmp_path / "pretrained_sceneflow.tar"
    torch.save({"epoch": 10, "state_dict": psmnet}, path)
    assert network_of_file(torch.load(path, weights_only=True)) is None
    for load, build, shown in [LOADERS["anynet"], LOADERS["gwcnet-g"]]:
        with pytest.raises(CheckpointError) as info:
            load(build(), path)
        assert str(info.value).startswith(f"{path} does not hold {shown} weights: "), str(info.value)


@pytest.mark.parametrize(
    "obj, said",
    [
        ({"model": "anynet", "settings": {}}, "holds no 'state_dict' (found: format, model, settings)"),  # KeyError
        ({"settings": {}, "state_dict": {}}, "holds no 'model' (found: format, settings, state_dict)"),
        ({"model": "anynet", "settings": [1], "state_dict": {}}, "its 'settings' is a list, not a dict"),  # TypeError
        ({"model": "anynet", "state_dict": [1]}, "its 'state_dict' is a list, not a dict"),
        ({"model": "psmnet", "state_dict": {}}, "names a model this rtstereo does not know, 'psmnet' (written by"),
        (
            {"model": "sgbm", "state_dict": {}},
            "names 'sgbm', which is no PyTorch network that weights go into (its kind: classical)",
        ),
        ({"model": "rtnet-v5", "state_dict": {}}, "names 'rtnet-v5', which is no PyTorch network"),
    ],
    ids=["no-weights", "no-model", "settings-list", "weights-list", "unknown-model", "classical", "packaged"],
)
def test_an_incomplete_rtstereo_checkpoint_is_refused_in_one_line(tmp_path, capsys, obj, said):
    import rtstereo
    from rtstereo.cli import main

    path = tmp_path / "odd.pt"
    torch.save({"format": "rtstereo-checkpoint", **obj}, path)
    expected = f"{path} is tagged as an rtstereo checkpoint but {said}"
    for attempt in (lambda: rtstereo.load(path), lambda: rtstereo.load("anynet", weights=path)):
        with pytest.raises(CheckpointError) as info:
            attempt()
        assert str(info.value).startswith(expected)
    assert main(["models", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"rtstereo models: error: {expected}")


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
def test_weights_under_another_key_load_when_no_other_key_holds_tensors(tmp_path, network):
    """PyTorch's tutorial saves {"model_state_dict", "optimizer_state_dict", "epoch"}: it was "expected a checkpoint
    with 'model' or 'state_dict', found keys: model_state_dict, ..."."""
    load, build, _ = LOADERS[network]
    source = build()
    optimizer = {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]}
    path = tmp_path / "tutorial.pt"
    torch.save({"epoch": 3, "model_state_dict": source.state_dict(), "optimizer_state_dict": optimizer}, path)
    assert network_of_file(torch.load(path, weights_only=True)) == network
    module = build()
    load(module, path)
    for key, value in source.state_dict().items():
        assert torch.equal(module.state_dict()[key], value), key


def test_a_file_saved_without_checksums_loads(tmp_path):
    """torch.serialization.set_crc32_options(False) stores 0 for every checksum: such a file is not damaged."""
    source = AnyNet()
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({"state_dict": source.state_dict()}, tmp_path / "fast.pth")
    finally:
        torch.serialization.set_crc32_options(True)
    module = AnyNet()
    load_anynet_checkpoint(module, tmp_path / "fast.pth")
    assert all(torch.equal(module.state_dict()[k], v) for k, v in source.state_dict().items())


def test_an_empty_dict_is_said_to_be_empty(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({}, path)
    expected = r"empty\.pth: expected a checkpoint with 'model' or 'state_dict', found an empty dict$"
    with pytest.raises(CheckpointError, match=expected):
        load_gwcnet_checkpoint(_gwcnet_g(), path)


def test_identify_network_knows_the_rtnet_and_both_gwcnets():
    from rtstereo.models.gwcnet import build_gwcnet_gc
    from rtstereo.models.rtnet import build_rtnet

    assert identify_network(build_rtnet({}).state_dict()) == "rtnet"
    assert identify_network(build_gwcnet_gc({"max_disp": 16}).state_dict()) == "gwcnet-gc"
    assert identify_network({f"net.{k}": v for k, v in CREStereo().state_dict().items()}) == "crestereo"


def test_a_checkpoint_that_cannot_be_written_raises_oserror_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """torch.save's own open raised RuntimeError, which the CLIs' OSError handlers let through as a traceback."""
    from rtstereo.models import checkpoint

    taken = tmp_path / ".blocked.partial"
    taken.mkdir()
    with monkeypatch.context() as patch:  # the partial file's place is taken: it cannot be opened
        patch.setattr(checkpoint, "partial_path", lambda path: taken)
        with pytest.raises(OSError):
            save_checkpoint(tmp_path / "blocked.pt", "rtnet", {}, {"w": torch.zeros(2)})
    taken.rmdir()
    folder = tmp_path / "folder.pt"
    folder.mkdir()  # the checkpoint's place is a folder: written, then not moved there
    with pytest.raises(OSError):
        save_checkpoint(folder, "rtnet", {}, {"w": torch.zeros(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["folder.pt"]


def test_a_checkpoint_is_written_under_a_hidden_tagged_name_not_over_a_users_file(tmp_path, monkeypatch):
    """It was written as w.pt.tmp, then renamed: a file of the user's under that name was replaced (gone), and a run
    killed mid-write left w.pt.tmp beside the checkpoint, which no later run removed."""
    from rtstereo.io.atomic import _TAG

    mine = tmp_path / "w.pt.tmp"
    mine.write_text("the user's")
    opened = []
    saved = torch.save
    monkeypatch.setattr(
        torch, "save", lambda payload, handle: (opened.append(Path(handle.name)), saved(payload, handle))
    )
    save_checkpoint(tmp_path / "w.pt", "rtnet", {}, {"w": torch.zeros(2)})
    assert opened[0].parent == tmp_path and opened[0].name.startswith(".w.partial-") and _TAG.search(opened[0].name)
    assert mine.read_text() == "the user's" and sorted(p.name for p in tmp_path.iterdir()) == ["w.pt", "w.pt.tmp"]


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
def test_an_rtstereo_checkpoint_of_another_network_reads_alike(tmp_path, network):
    """The three loaders word this refusal alike (CREStereo's once said "not 'crestereo'" in its own words)."""
    load, build, _ = LOADERS[network]
    holder = "rtnet"
    path = tmp_path / "rtnet.ckpt"
    save_checkpoint(path, holder, {}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError) as info:
        load(build(), path)
    assert str(info.value) == (
        f"{path} is an rtstereo checkpoint of '{holder}', but the network is '{network}'; load it with model '{holder}'"
    )


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
def test_a_published_file_given_as_the_model_names_the_model_that_loads_it(tmp_path, capsys, network):
    """`rtstereo models sceneflow.ckpt` (and predict/export/bench with it as the model) said only "not an rtstereo
    checkpoint ... --model NAME": the file's keys say which network it is, so the line names it."""
    from rtstereo.cli import main

    path = _original_files(tmp_path)[network]
    pair = [tmp_path / "l.png", tmp_path / "r.png"]
    for image in pair:
        cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    for verb, args, advice in (
        ("models", [path], f"{network} weights, which go to --weights of that model (rtstereo models {network})"),
        ("predict", [*pair, "--model", path], f"it holds {network} weights: pass --model {network} --weights {path}"),
        ("export", [path, "--size", "64x64", "-o", tmp_path / "x.onnx"], f"rtstereo export {network} --weights {path}"),
        ("bench", [path, "--sizes", "64x64"], f"it holds {network} weights: bench {network} with --weights {path}"),
    ):
        code = main([verb, *map(str, args)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"{path} is not an rtstereo checkpoint (it does not name its model); " in err and advice in err, err
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    assert main(["models", str(tmp_path / "plain.pt")]) == 2
    assert "(rtstereo models NAME)" in capsys.readouterr().err
    import rtstereo

    with pytest.raises(CheckpointError) as info:  # inside the hybrid, the way in is an export of that model
        rtstereo.load("hybrid", network=str(path))
    assert f"rtstereo export {network} --weights FILE" in str(info.value)


def test_a_file_that_does_not_name_its_model_gets_the_callers_advice_with_the_network_it_holds(tmp_path):
    """One reader serves predict, export, bench and `rtstereo models`: each gives its own advice, filled in with
    the network the file holds and the path as given (braces in a folder name stay as they are)."""
    from rtstereo.models.checkpoint import NotSelfDescribing, read_self_describing

    folder = tmp_path / "{run}"
    folder.mkdir()
    published = folder / "anynet.tar"
    torch.save(
        {"state_dict": {"feature_extraction.w": torch.zeros(1), "volume_postprocess.w": torch.zeros(1)}}, published
    )
    torch.save({"weights": torch.zeros(1)}, folder / "plain.pt")
    save_checkpoint(folder / "own.pt", "rtnet", {"max_disp": 96}, {"w": torch.zeros(1)})
    for path, network, advice in (
        (published, "anynet", f"load({'anynet'!r}, weights={str(published)!r}) or {published}"),
        (folder / "plain.pt", None, "no network known"),
    ):
        with pytest.raises(NotSelfDescribing) as info:
            read_self_describing(path, "load({network!r}, weights={path!r}) or {path}", "no network known")
        assert str(info.value) == f"{path} is not an rtstereo checkpoint (it does not name its model); {advice}"
        assert info.value.network == network and isinstance(info.value, CheckpointError)
    obj, description = read_self_describing(folder / "own.pt", "unused", "unused")
    assert description == ("rtnet", {"max_disp": 96}) and obj["model"] == "rtnet"


def test_an_exported_onnx_file_as_weights_is_named_as_such(tmp_path):
    """`--model gwcnet-g --weights g.onnx` said "not a PyTorch file (a plain pickle, or damaged)" of a sound export."""
    import rtstereo
    from rtstereo.errors import InputError

    (tmp_path / "g.onnx").write_bytes(b"an export")
    with pytest.raises(InputError) as info:
        rtstereo.load("gwcnet-g", weights=tmp_path / "g.onnx")
    assert str(info.value) == (
        f"--weights {tmp_path / 'g.onnx'} is an exported ONNX model, which carries its weights: run it as the model "
        f"(--model {tmp_path / 'g.onnx'}, or rtstereo.load({str(tmp_path / 'g.onnx')!r})) without weights, or give as "
        "weights (--weights, weights= in Python) the PyTorch checkpoint it was made from"
    )


def test_an_exported_onnx_url_as_weights_says_to_download_it_not_to_give_the_url_as_the_model(tmp_path):
    """It advised "--model URL", which is refused: a URL is no model."""
    import rtstereo
    from rtstereo.errors import InputError

    url = "https://example.org/nets/g.onnx"
    with pytest.raises(InputError) as info:
        rtstereo.load("gwcnet-g", weights=url)
    assert str(info.value) == (
        f"--weights {url} is an exported ONNX model, which carries its weights: download it and run the file as the "
        "model (--model FILE, or rtstereo.load(FILE)) without weights, or give as weights (--weights, weights= in "
        "Python) the PyTorch checkpoint it was made from"
    )
    with pytest.raises(InputError) as info:  # a file of this machine: its path is the model, not a download
        rtstereo.load("gwcnet-g", weights=(tmp_path / "g.onnx").as_uri())
    said = f"carries its weights: run it as the model (--model {tmp_path / 'g.onnx'}, or rtstereo.load("
    assert said in str(info.value)


def _packed(folder, kind):
    """A checkpoint as downloads sometimes come: inside a tar, zip or gzip file."""
    import gzip
    import tarfile
    import zipfile

    inner = folder / "checkpoint.tar"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, inner)
    packed = folder / f"packed.{kind}"
    if kind == "tar":
        with tarfile.open(packed, "w") as archive:
            archive.add(inner, arcname="checkpoint.tar")
    elif kind == "zip":
        with zipfile.ZipFile(packed, "w") as archive:
            archive.write(inner, arcname="checkpoint.tar")
    elif kind == "gz":
        packed.write_bytes(gzip.compress(inner.read_bytes()))
    elif kind in ("safetensors", "pth"):  # safetensors' layout: the JSON header's length, the header, the data
        header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
        packed.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    elif kind == "npz":
        np.savez(packed, w=np.zeros(2), b=np.ones(2))
    elif kind == "h5":
        packed.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    elif kind == "bin":  # an exported network under another name (the packaged one's first bytes)
        import rtstereo

        packed.write_bytes((Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx").read_bytes()[:4096])
    elif kind == "npy":
        np.save(packed, np.zeros(2))
    else:  # torch.save's own tar layout of before PyTorch 0.4
        with tarfile.open(packed, "w") as archive:
            for name in ("sys_info", "pickle", "storages", "tensors"):
                (folder / name).write_bytes(b"x")
                archive.add(folder / name, arcname=name)
    return packed


@pytest.mark.parametrize(
    "kind, reason",
    [
        (
            "tar",
            "a tar archive, not a torch.save file: extract it and give the checkpoint inside (it holds checkpoint.tar)",
        ),
        (
            "zip",
            "a zip archive, not a torch.save file: extract it and give the checkpoint inside (it holds checkpoint.tar)",
        ),
        ("gz", "a gzip-compressed file, not a torch.save file: decompress it (gunzip) and give the file inside"),
        ("old", "saved in PyTorch's tar format of before version 0.4, which cannot be read without running its code"),
        # torch's own words cut at 120 characters, "... Please install safetensors with: pip install saf"
        (
            "safetensors",
            "a safetensors file, not a torch.save file: convert it (torch.save(safetensors.torch.load_file",
        ),
        ("pth", "a safetensors file, not a torch.save file"),  # "not a PyTorch file (a plain pickle, or damaged)"
        ("npz", "a NumPy .npz file of arrays (w.npy, b.npy), not a torch.save file"),  # "extract it": no checkpoint
        ("h5", "an HDF5 file (as Keras and TensorFlow save weights), not a PyTorch one"),
        # both were "not a PyTorch file (a plain pickle, or damaged)"
        (
            "bin",
            "an exported ONNX model, which carries its weights, not a PyTorch file: give it a name ending in .onnx "
            "and run it as the model",
        ),
        ("npy", "a NumPy .npy array file, not a torch.save file"),
    ],
)
def test_a_checkpoint_packed_in_an_archive_is_said_to_be_one(tmp_path, kind, reason):
    """A tar or zip around the checkpoint gave torch's "Cannot use ``weights_only=True`` with files saved in the legacy
    .tar format. In PyTorch 2.6, we changed the default valu" (cut there) or "[enforce fail at inline_container.cc]"."""
    path = _packed(tmp_path, kind)
    with pytest.raises(CheckpointError) as info:
        load_anynet_checkpoint(AnyNet(), path)
    assert str(info.value).startswith(f"cannot read weights file {path}: {reason}"), str(info.value)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_an_rtstereo_checkpoint_as_weights_says_when_its_settings_are_not_those_run(tmp_path):
    """`--model gwcnet-g --weights best.pt` of a network trained at max_disp=32 ran it at 192 without a word: max_disp
    changes no GwcNet weight, so nothing failed."""
    import warnings

    import rtstereo

    path = tmp_path / "best.pt"
    save_checkpoint(path, "gwcnet-g", {"max_disp": 32}, _gwcnet_g().state_dict())
    with pytest.warns(UserWarning) as caught:
        assert rtstereo.load("gwcnet-g", weights=path).settings["max_disp"] == 192
    assert [str(w.message) for w in caught] == [
        f"{path} is an rtstereo checkpoint saved with max_disp=32 (runs with 192): as --weights (weights=) its "
        "settings are not read; give them (--set KEY=VALUE, KEY=VALUE in Python), or the file itself in place of the "
        f"model name ({path})"
    ]
    from rtstereo.export.onnx_export import build_network

    with pytest.warns(UserWarning, match=r"saved with max_disp=32 \(runs with 192\)"):
        build_network("gwcnet-g", path)  # export reads the file alike
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rtstereo.load("gwcnet-g", weights=path, max_disp=64)  # asked for: no warning
        rtstereo.load("gwcnet-g", weights=path, max_disp=32)
        assert rtstereo.load(path).settings["max_disp"] == 32
        # the file as the model, another range asked for: its settings were read, not left unread as --weights
        assert rtstereo.load(path, max_disp=64).settings["max_disp"] == 64


def test_the_original_megengine_crestereo_file_is_named(tmp_path):
    """CREStereo's own release, `crestereo_eth3d.mge`, was "not a PyTorch file (a plain pickle, or damaged)"."""
    import pickle

    path = tmp_path / "crestereo_eth3d.mge"
    path.write_bytes(pickle.dumps({"state_dict": {"fnet.conv1.weight": np.zeros(3)}}))
    with pytest.raises(CheckpointError) as info:
        load_crestereo_checkpoint(CREStereo(), path)
    assert str(info.value).startswith(
        f"cannot read weights file {path}: a MegEngine file (as the original CREStereo release), not a PyTorch one: "
        "use the PyTorch conversion of its weights (crestereo_eth3d.pth)"
    )


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
@pytest.mark.parametrize("layout", ["bare", "model", "state_dict"])
def test_tensors_keyed_by_numbers_are_refused_in_one_line(tmp_path, network, layout):
    """A dict of tensors keyed by numbers (an optimizer's state, say) ended in AttributeError: 'int' object has no
    attribute 'startswith'."""
    load, build, _ = LOADERS[network]
    tensors = {0: torch.zeros(2), 1: torch.ones(3)}
    torch.save(tensors if layout == "bare" else {layout: tensors}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError) as info:
        load(build(), tmp_path / "w.pth")
    assert str(info.value) == (
        f"{tmp_path / 'w.pth'}: expected a state dict keyed by parameter names, found a key of type int (0); "
        "save the network's model.state_dict()"
    )


@pytest.mark.parametrize("network", ["gwcnet-g", "crestereo", "anynet"])
@pytest.mark.parametrize("prefix", ["_orig_mod.", "module._orig_mod.", "_orig_mod.module."])
def test_a_compiled_networks_keys_load(tmp_path, network, prefix):
    """Weights saved from a `torch.compile`d network (keys under `_orig_mod.`, also inside DataParallel) gave
    "does not hold ... weights: N missing ..., N unexpected (e.g. _orig_mod....)"."""
    load, build, _ = LOADERS[network]
    source = build()
    torch.save({"state_dict": {prefix + k: v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    target = build()
    load(target, tmp_path / "w.pth")
    for name, tensor in source.state_dict().items():
        assert torch.equal(tensor, target.state_dict()[name]), name
    assert identify_network({prefix + k: v for k, v in source.state_dict().items()}) == network


GOLDEN = {
    "gwcnet-g": ("gwcnet-g_maxdisp48.ckpt", load_gwcnet_checkpoint, lambda: build_gwcnet_g({"max_disp": 48})),
    "gwcnet-gc": ("gwcnet-gc_maxdisp48.ckpt", load_gwcnet_checkpoint, lambda: build_gwcnet_gc({"max_disp": 48})),
    "crestereo": ("crestereo_random.pth", load_crestereo_checkpoint, CREStereo),
}


@pytest.mark.parametrize("network", list(GOLDEN))
@pytest.mark.parametrize("prefix", ["model.", "model._orig_mod.", "module.model."])
def test_a_lightning_checkpoint_of_a_published_network_loads(shared, tmp_path, network, prefix):
    """A PyTorch Lightning module keeps the network as ``self.model``: its ``.ckpt`` holds every key under
    ``model.`` (inside the wrappers or around them), which gave "N missing ..., N unexpected (e.g. model....)" and was
    not recognised as the network's file. Built from the golden fixtures, loaded as the originals load."""
    name, load, build = GOLDEN[network]
    original = shared("fixtures", "golden", name)
    obj = torch.load(original, map_location="cpu", weights_only=True)
    weights = {key.removeprefix("module."): value for key, value in obj.get("model", obj).items()}
    lightning = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {prefix + key: value for key, value in weights.items()},
    }
    torch.save(lightning, tmp_path / "last.ckpt")
    reference, ours = build(), build()
    load(reference, original)
    load(ours, tmp_path / "last.ckpt")
    for key, tensor in reference.state_dict().items():
        assert torch.equal(tensor, ours.state_dict()[key]), key
    assert network_of_file(lightning) == network


def test_a_model_prefix_on_some_keys_only_is_a_modules_name_and_kept(tmp_path):
    weights = {f"model.{k}" if k.startswith("feature") else k: v for k, v in _gwcnet_g().state_dict().items()}
    torch.save({"model": weights}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"unexpected \(e\.g\. model\.feature"):
        load_gwcnet_checkpoint(_gwcnet_g(), tmp_path / "w.pth")


def test_a_weights_folder_names_the_checkpoints_in_it(tmp_path):
    """`--weights weights/anynet` said "is a folder: give the checkpoint file inside it" and named none of them."""
    from rtstereo.models.checkpoint import read_torch_file

    for name in ("b.tar", "a.pth", "notes.txt", "c.ckpt", "d.pt", "e.bin"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(CheckpointError) as caught:
        read_torch_file(tmp_path)
    assert str(caught.value) == (
        f"weights file {tmp_path} is a folder: give the checkpoint file inside it (a.pth, b.tar, c.ckpt, d.pt, ...)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"is a folder: give the checkpoint file inside it \(it holds none\)$"):
        read_torch_file(empty, "model file")
