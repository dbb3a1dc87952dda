"""``rtstereo adapt``: inputs as predict takes them, the rectification refusal, checkpoint and ONNX outputs."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest
import torch
from adapt_helpers import sliding_frames
from tests.conftest import run_cli

from rtstereo.cli import main
from rtstereo.datasets.synthetic import RenderSettings, render_batch
from rtstereo.io.images import write_image
from rtstereo.models.checkpoint import save_checkpoint
from rtstereo.train.loop import build_network

FAST = ["--steps", "1", "--crop", "64x96", "--batch-size", "1", "--synthetic-batch", "1", "--synthetic-pool", "1"]


def _rendered(count: int, height: int, width: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    batch = render_batch(count, height, width, seed=seed, max_disp_px=24.0, settings=RenderSettings.geometry_only())
    images = {k: (batch[k].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8) for k in ("left", "right")}
    return [(images["left"][i], images["right"][i]) for i in range(count)]


def _write_pairs(folder, pairs) -> tuple:
    (folder / "l").mkdir(parents=True)
    (folder / "r").mkdir()
    for i, (left, right) in enumerate(pairs):
        write_image(folder / "l" / f"p{i}.png", left)
        write_image(folder / "r" / f"p{i}.png", right)
    return folder / "l", folder / "r"


@pytest.fixture(scope="module")
def tiny_network(tmp_path_factory):
    """A small-range rtnet with random weights, as a self-describing checkpoint (quicker than rtnet-v4)."""
    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32})
    path = tmp_path_factory.mktemp("net") / "tiny.pt"
    save_checkpoint(path, spec.name, settings, module.state_dict())
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return _write_pairs(tmp_path_factory.mktemp("pairs"), _rendered(3, 64, 128, seed=2))


def test_quiet_leaves_out_the_note_on_the_networks_pytorch_source(capsys, tmp_path, folders, tiny_network, monkeypatch):
    """--help says --quiet shows only the scores, the result and warnings: the note was printed all the same."""
    import dataclasses

    from rtstereo.train import adapt_network

    load = adapt_network.load_adaptable
    note = "rtnet-v5 is adapted from its PyTorch source, training/rtnet_v5/state.pt"
    monkeypatch.setattr(adapt_network, "load_adaptable", lambda *a: dataclasses.replace(load(*a), note=note))
    argv = ("adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    code, _, err = run_cli(capsys, *argv, "-q")
    assert code == 0 and "note:" not in err, err
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and f"rtstereo adapt: note: {note}\n" in err, err


def test_adapt_writes_a_checkpoint_predict_uses_at_once(capsys, tmp_path, folders, tiny_network):
    out = tmp_path / "mine.pt"
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", out, "--quiet")
    assert code == 0, err
    assert "before (held-out pairs): photometric error" in stdout and "after  (held-out pairs)" in stdout
    assert f"wrote {out}" in stdout and out.is_file()
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["adapted_from"] == str(tiny_network) and checkpoint["adaptation"]["steps"] == 1
    # every term's weight, the defaults too (it recorded {}: only those given with --weight)
    weights = {"photometric": 1.0, "smoothness": 0.01, "proxy": 0.2, "synthetic": 0.02}
    assert checkpoint["adaptation"]["config"]["weights"] == weights, checkpoint["adaptation"]["config"]
    left = sorted(folders[0].iterdir())[0]
    right = sorted(folders[1].iterdir())[0]
    code, stdout, err = run_cli(capsys, "predict", left, right, "--model", out, "-o", tmp_path / "d.pfm")
    assert code == 0, err
    assert (tmp_path / "d.pfm").is_file()


def test_the_result_line_of_a_guided_network_says_to_run_it_inside_the_hybrid(capsys, tmp_path, folders):
    """adapt --model default writes the guided network alone, which predict --model OUT runs without its hints; with
    --quiet nothing said how to run it (the note at the start is left out)."""
    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32, "guided": True})
    guided = tmp_path / "guided.pt"
    save_checkpoint(guided, spec.name, settings, module.state_dict())
    out = tmp_path / "mine.pt"
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", guided, *FAST, "-o", out, "-q")
    assert code == 0, err
    assert re.search(
        rf"^adapted rtnet \(guided: the hybrid's network\) for 1 step .*; wrote {re.escape(str(out))} \(run it inside "
        rf"the hybrid: --model hybrid --set network={re.escape(str(out))}\)$",
        stdout,
        re.MULTILINE,
    ), stdout


def test_models_says_what_an_adapted_checkpoint_records_of_its_adaptation(capsys, tmp_path, folders, tiny_network):
    """`rtstereo models OUT` said only "adapted from ...": not the steps, the scores or the verdict the file keeps."""
    out = tmp_path / "mine.pt"
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", out, "--quiet")
    assert code == 0, err
    scores = [line for line in stdout.splitlines() if line.startswith(("before (", "after  ("))]
    code, described, err = run_cli(capsys, "models", out)
    assert code == 0, err
    assert "\n  adapted: 1 step on " in described and all(f"\n  {line}\n" in described for line in scores), described
    record = torch.load(out, weights_only=False)
    record["adaptation"].update(interrupted=True, scores_worse=["photometric error 0.0200 -> 0.5100 (+2450 %)"])
    torch.save(record, out)
    _, described, _ = run_cli(capsys, "models", out)
    assert ", interrupted before its budget\n" in described, described
    assert "\n  warning: the scores got clearly worse (photometric error 0.0200 -> 0.5100 (+2450 %))\n" in described


def test_a_checkpoint_adapted_again_keeps_where_its_weights_came_from(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """Resuming an interrupted run (--model mine.pt -o mine.pt) wrote "adapted from mine.pt", itself, and the last
    run's steps only: the network first adapted and the earlier steps were gone from the file."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", "mine.pt", "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", "mine.pt", *FAST[2:], "--steps", "2", "-o", "mine.pt")
    assert code == 0, err
    record = torch.load(tmp_path / "mine.pt", weights_only=True)
    assert record["adapted_from"] == str(tmp_path / "mine.pt") and record["adaptation"]["steps"] == 2
    [earlier] = record["earlier_adaptations"]
    assert earlier["adapted_from"] == str(tiny_network) and earlier["steps"] == 1 and "before" in earlier
    code, described, err = run_cli(capsys, "models", "mine.pt")
    assert code == 0, err
    assert "\n  adapted: 2 steps on 64x96 crops (" in described, described
    assert re.search(
        rf"\n  before that, adapted: 1 step on 64x96 crops \(\d+ s\) \(from {re.escape(str(tiny_network))}\)\n",
        described,
    )


def test_progress_shows_the_loss_terms_and_scores_on_stderr(capsys, tmp_path, folders, tiny_network):
    out = tmp_path / "m.pt"
    code, stdout, err = run_cli(
        capsys, "adapt", *folders, "--model", tiny_network, *FAST, "--losses", "photometric", "-o", out
    )
    assert code == 0, err
    assert "rtstereo adapt: step 1 " in err and "photometric " in err and "synthetic " in err and "proxy" not in err
    assert "rtstereo adapt: before: photometric error" in err and "rtstereo adapt: after:  photometric error" in err
    # stdout carries the results only: the scores and the file written, as with --quiet
    lines = stdout.splitlines()
    assert len(lines) == 3, stdout
    assert lines[0].startswith("before (held-out pairs): photometric error") and lines[1].startswith("after  (held")
    assert lines[2].startswith("adapted rtnet") and lines[2].endswith(f"wrote {out}")


def test_a_manifest_lists_the_pairs(capsys, tmp_path, folders, tiny_network):
    manifest = tmp_path / "pairs.csv"
    rows = [f"{left},{right}" for left, right in zip(sorted(folders[0].iterdir()), sorted(folders[1].iterdir()))]
    manifest.write_text("left,right\n" + "\n".join(rows) + "\n")
    code, _, err = run_cli(
        capsys, "adapt", "--pairs", manifest, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt"
    )
    assert code == 0, err


def test_onnx_output_is_exported_with_its_parity_report(capsys, tmp_path, folders, tiny_network):
    out = tmp_path / "mine.onnx"
    code, stdout, err = run_cli(
        capsys, "adapt", *folders, "--model", tiny_network, *FAST, "--export-size", "64x96", "-o", out, "-q"
    )
    assert code == 0, err
    assert out.is_file() and (tmp_path / "mine.pt").is_file() and (tmp_path / "mine.parity.json").is_file()
    # The report names the pair and its sizes as export's does (it read "on p0 fitted to (64, 96)").
    assert re.search(r"on your pair p\d \(64x128 fitted to 64x96, HxW\)", stdout), stdout
    left = sorted(folders[0].iterdir())[0]
    right = sorted(folders[1].iterdir())[0]
    code, _, err = run_cli(capsys, "predict", left, right, "--model", out, "-o", tmp_path / "d.pfm")
    assert code == 0, err
    # `models OUT` said nothing of the adaptation (its scores, a clearly-worse verdict): FILE.pt beside it keeps them
    scores = [line for line in stdout.splitlines() if line.startswith(("before (", "after  ("))]
    code, described, err = run_cli(capsys, "models", out)
    assert code == 0, err
    assert (
        f"\n  exported from {tmp_path / 'mine.pt'}, which records its adaptation:\n    adapted: 1 step on " in described
    )
    assert all(f"\n    {line}\n" in described for line in scores), described
    save_checkpoint(tmp_path / "mine.pt", "rtnet", {"max_disp": 32}, {})  # another file now: not the one exported
    code, described, err = run_cli(capsys, "models", out)
    assert code == 0 and "exported from" not in described and "adapted" not in described, described


def test_a_failed_parity_check_exits_with_1(capsys, tmp_path, folders, tiny_network, monkeypatch):
    from rtstereo.export import onnx_export

    def fail(*_args, **_kwargs):
        raise onnx_export.ParityError("ONNX and PyTorch differ by 3 px", onnx_export.ExportResult(tmp_path, None, None))

    monkeypatch.setattr(onnx_export, "export_onnx", fail)
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.onnx", "-q")
    assert code == 1 and err.strip() == "rtstereo adapt: error: ONNX and PyTorch differ by 3 px"


# ------------------------------------------------------------------------------------ rectification
@pytest.fixture(scope="module")
def textured():
    """A 160x256 rendered pair with enough features for the rectification check."""
    return _rendered(2, 160, 256, seed=7)[1]


def test_unrectified_pairs_are_refused_in_one_line(capsys, tmp_path, textured, tiny_network):
    left, right = textured
    folders = _write_pairs(tmp_path, [(left, np.roll(right, 4, axis=0))] * 2)
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "rtstereo adapt: error: the pairs are not rectified (2 of 2 checked" in err
    code, _, err = run_cli(
        capsys, "adapt", *folders, "--model", tiny_network, *FAST, "--no-rectification-check", "-o", tmp_path / "m.pt"
    )
    assert code == 0, err


def test_the_refusal_counts_the_judged_pairs_apart_from_the_checked_ones(capsys, tmp_path, textured, tiny_network):
    """Two pairs off and one too plain to be judged read "2 of 2 checked": three were checked."""
    left, right = textured
    grey = np.full_like(left, 100), np.full_like(right, 101)  # no features: cannot be judged
    folders = _write_pairs(tmp_path, [(left, np.roll(right, 4, axis=0))] * 2 + [grey])
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    assert code == 2 and "error: the pairs are not rectified (2 of the 2 judged, of 3 checked; pair p0: " in err, err


def test_swapped_pairs_are_refused(capsys, tmp_path, textured, tiny_network):
    left, right = textured
    folders = _write_pairs(tmp_path, [(right, left)])
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    assert code == 2 and "left and right look swapped" in err


def test_pairs_whose_two_views_are_one_picture_are_left_out_or_refused(capsys, tmp_path, textured, tiny_network):
    """One folder given twice (or a copy) passed the rectification check, its rows aligned, and adapted the network
    to a disparity of 0."""
    left, right = textured
    folders = _write_pairs(tmp_path / "all", [(left, left.copy())] * 2)
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    assert (code, stdout) == (2, "") and err.count("\n") == 1, err
    assert "error: left and right are the same picture in all 2 pairs (identical pixels: one file, folder or" in err
    assert not (tmp_path / "m.pt").exists()
    folders = _write_pairs(tmp_path / "one", [(left, right), (left, left.copy()), (left, right)])
    argv = ["adapt", *folders, "--model", tiny_network, *FAST, "--holdout", "0", "-o", tmp_path / "m.pt", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "rtstereo adapt: warning: 1 pair left out: p1: left and right are the same picture (identical" in err


def test_one_pair_off_among_rectified_ones_is_a_warning(capsys, tmp_path, textured, tiny_network):
    left, right = textured
    folders = _write_pairs(tmp_path, [(left, np.roll(right, 4, axis=0)), (left, right), (left, right)])
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt", "-q")
    assert code == 0, err
    assert "rtstereo adapt: warning: pair p0: rows off by up to" in err
    # one pair swapped among the others: it taught negative disparities without a word
    folders = _write_pairs(tmp_path / "swapped", [(left, right), (right, left), (left, right)])
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "s.pt", "-q")
    assert code == 0, err
    assert "rtstereo adapt: warning: pair p1: left and right look swapped (features lie " in err, err


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "m.txt"], "-o m.txt: the adapted network goes to a checkpoint"),
        (["--weight", "proxy"], "--weight expects TERM=NUMBER"),
        (["--weight", "proxy=lots"], "--weight expects TERM=NUMBER"),
        # predict, export and bench take --weight FILE as short for --weights FILE
        (["--weight", "best.pt"], "got 'best.pt'; the network's weights file is --weights FILE"),
        (["--weight", "smooth=1"], "unknown term(s) smooth"),
        (["--losses", "photometric,depth"], "--losses: expected one or more of photometric, smoothness,"),
        (["--lr", "-1"], "--lr: expected a learning rate > 0 and finite, got -1"),
        (["--lr", "nan"], "--lr: expected a learning rate > 0 and finite, got nan"),
        (["--weight", "proxy=-1"], "--weight: expected finite weights >= 0"),
        (["--synthetic-pool", "0"], "--synthetic-pool: expected >= 1, got 0"),
        # a MemoryError traceback at the first step, after the pairs were read and labelled
        (["--batch-size", "1000000000000"], "--batch-size: 1000000000000 crops of 64x96 need at least"),
        # rendered for minutes, growing until the memory ran out, after the pairs were read and labelled
        (
            ["--synthetic-pool", "1000000000000"],
            "--synthetic-pool: rendered pairs: 1000000000000 crops of 64x96 need at least",
        ),
        (
            ["--synthetic-batch", "1000000000000"],
            "--synthetic-batch: rendered pairs: 1000000000000 crops of 64x96 need at least",
        ),
        # FAST gives --synthetic-pool 1: with no rendered pair mixed in it was taken and ignored
        (
            ["--synthetic-batch", "0"],
            "--synthetic-pool 1 sets how many rendered pairs the steps draw from, but --synthetic-batch 0 mixes none",
        ),
        (["--weight", "synthetic=0"], "but --weight synthetic=0 turns their term off: give --synthetic-batch N"),
        (["--weight", "consistency=0.1"], "--weight: consistency=0.1 weighs a term that is not among the losses"),
        (["--max-disp", "0"], "--max-disp: expected the proxy labels' disparity range > 0 pixels"),
        (
            ["--losses", "photometric,smoothness", "--max-disp", "64"],
            "--max-disp bounds the SGBM proxy labels, which --losses photometric,smoothness leaves out: add proxy",
        ),
        (["--threads", "0"], "--threads must be >= 1, got 0 (leave it out for torch's own choice)"),
        (["--threads", "99999"], "--threads 99999 is more than this machine can use"),
        (["--holdout", "1"], "--holdout: expected a fraction"),
        # the default --model, rtnet-v5: "'rtnet-v5' is a packaged ONNX model ...; adapt a network: --model rtnet-v5"
        (
            ["--model", "rtnet-v5", "--weights", "best.pt"],
            "rtnet-v5 takes no --weights: it is adapted from its own PyTorch state; to adapt the weights of best.pt, "
            "name their network: --model rtnet --weights best.pt (or --model best.pt, an rtstereo checkpoint)",
        ),
        # an OverflowError traceback at the first progress line, after the pairs were read and labelled
        (["--minutes", "inf"], "--minutes: expected a finite number > 0, got inf (no time limit: give steps alone)"),
        (["--seed", "-1"], "--seed: expected an integer from 0 to 2^64 - 1, got -1"),
        # a ValueError's traceback ("Overflow when unpacking long long"), after the pairs were read and labelled
        (["--seed", str(1 << 64)], "--seed: expected an integer from 0 to 2^64 - 1, got 18446744073709551616"),
        (["--export-size", "64x64"], "--export-size is the parity check's size of an exported model: it applies to"),
        (["--device", "nonsense"], "nonsense"),
        (["--model", "sgbm"], "'sgbm' is a classical method"),
        # It said "'default' stands for hybrid, a packaged ONNX model with no trainable weights"
        (
            ["--model", "default", "--weights", "g.pt"],
            "model 'hybrid' takes no --weights (its network is a setting, the one adapted): --model default --set "
            "network=g.pt",
        ),
        (["--set", "uniqueness"], "--set expects KEY=VALUE, got 'uniqueness'"),
        (["--set", "nonsense=1"], "has no setting 'nonsense'"),
        (["--crop", "16x64"], "--crop 16x64: rtnet takes crops of at least 32x32"),  # it read "crop 16x64: ..."
    ],
)
def test_bad_options_are_refused_in_one_line(capsys, tmp_path, folders, tiny_network, argv, message):
    full = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt", *argv]
    code, _, err = run_cli(capsys, *full)
    assert code == 2 and message in err, err
    assert err.startswith("rtstereo adapt: error: ") and err.count("\n") == 1


def test_an_output_with_a_trailing_separator_is_refused_as_a_folder(capsys, tmp_path, folders, tiny_network):
    """`-o m.onnx/` wrote the file m.onnx (and m.pt), where predict's `-o x/` is a folder."""
    for option, name in (("-o", "m.onnx"), ("-o", "m.pt")):
        given = f"{tmp_path / name}/"
        code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, option, given)
        assert code == 2 and err == (
            f"rtstereo adapt: error: -o {given}: ends with a folder separator, which names a folder; give the file to "
            f"write, e.g. -o {tmp_path / name}\n"
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_before_any_pair_is_read(capsys, tmp_path, folders, tiny_network):
    """It said torch's "Torch not compiled with CUDA enabled", after reading and labelling every pair."""
    full = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt", "--device", "cuda"]
    code, stdout, err = run_cli(capsys, *full)
    assert code == 2 and stdout == "", stdout
    assert err.startswith("rtstereo adapt: error: device 'cuda' requested but torch sees no CUDA GPU here")
    assert err.endswith("; use --device cpu\n") and err.count("\n") == 1, err


def test_a_device_refusal_with_an_empty_message_is_one_line(capsys, monkeypatch, tmp_path, folders, tiny_network):
    """``str(exc).splitlines()[0]`` raised IndexError on a bare ``RuntimeError()`` from ``module.to``."""

    def refused(self, *args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(torch.nn.Module, "to", refused)
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    assert code == 2 and err == "rtstereo adapt: error: --device cpu: RuntimeError\n", err


def test_a_bad_export_size_is_refused_before_adapting(capsys, tmp_path, folders, tiny_network):
    argv = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.onnx", "--export-size", "64x100"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert "multiples of 32, got 64x100 (HxW); use for example --export-size 64x128" in err
    assert "before" not in stdout and not (tmp_path / "m.pt").exists()  # nothing trained, scored or written


@pytest.mark.parametrize("where", ["file/m.pt", "file/sub/m.pt", "folder.pt"])
def test_an_output_that_cannot_be_written_is_refused_before_training(capsys, tmp_path, folders, tiny_network, where):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder.pt").mkdir()
    full = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / where]
    code, stdout, err = run_cli(capsys, *full)
    assert code == 2 and err.startswith(f"rtstereo adapt: error: -o {tmp_path / where}: ") and err.count("\n") == 1
    assert "before" not in stdout  # refused before any pair was read or scored


def test_an_onnx_output_whose_checkpoint_beside_it_is_a_folder_is_refused_before_training(
    capsys, tmp_path, folders, tiny_network
):
    """-o m.onnx writes m.pt beside it: a folder of that name stopped the command after the whole budget."""
    (tmp_path / "m.pt").mkdir()
    full = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.onnx"]
    code, stdout, err = run_cli(capsys, *full)
    assert code == 2 and err.count("\n") == 1, err
    assert (
        f"-o {tmp_path / 'm.onnx'}: the adapted checkpoint is written beside it, to {tmp_path / 'm.pt'}, which is a "
        in err
    )
    assert "before" not in stdout  # refused before any pair was read or scored


@pytest.mark.parametrize("beside", ["m.parity.json", "m.onnx.data"])
def test_an_onnx_output_whose_report_beside_it_is_a_folder_is_refused_before_training(
    capsys, tmp_path, folders, tiny_network, beside
):
    """-o m.onnx with a folder m.parity.json: the export failed after the whole budget (the checkpoint kept)."""
    (tmp_path / beside).mkdir()
    full = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.onnx"]
    code, stdout, err = run_cli(capsys, *full)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / beside}, which it writes beside it, is a folder" in err
    assert "before" not in stdout and not (tmp_path / "m.pt").exists()  # refused before any pair was read


def test_an_onnx_output_does_not_replace_the_checkpoint_adapted_from(capsys, tmp_path, folders, tiny_network):
    """-o mine.onnx with --model mine.pt replaced mine.pt, the weights adapted from, without a word."""
    source = tmp_path / "mine.pt"
    source.write_bytes(tiny_network.read_bytes())
    for model in (["--model", source], ["--model", "rtnet", "--weights", source, "--set", "max_disp=32"]):
        code, stdout, err = run_cli(capsys, "adapt", *folders, *model, *FAST, "-o", tmp_path / "mine.onnx")
        assert code == 2 and err.count("\n") == 1, err
        assert "which is the checkpoint adapted from and would be replaced; give -o another name, e.g. " in err
        assert "before" not in stdout and source.read_bytes() == tiny_network.read_bytes()


def test_a_crop_larger_than_the_images_is_said(capsys, tmp_path, folders, tiny_network):
    argv = ["adapt", *folders, "--model", tiny_network, *FAST, "--crop", "500x130", "-o", tmp_path / "m.pt"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "crops 64x128, not 500x130: at most the smallest training image (64x128)\n" in err
    assert "for 1 step on 64x128 crops" in stdout
    assert torch.load(tmp_path / "m.pt", weights_only=True)["adaptation"]["crop_hw"] == [64, 128]


@pytest.mark.parametrize(
    ("crop", "said"),
    [
        ("40x100", "crops 32x96, not 40x100: in multiples of 32, the network's size divisor\n"),
        ("500x100", "crops 64x96, not 500x100: at most the smallest training image (64x128), in multiples of 32, "),
    ],
)
def test_a_crop_rounded_to_the_size_divisor_says_so(capsys, tmp_path, folders, tiny_network, crop, said):
    """A crop within the images but not a multiple of 32 was said to be cut to the smallest image (64x128)."""
    argv = ["adapt", *folders, "--model", tiny_network, *FAST, "--crop", crop, "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and said in err, err


@pytest.mark.parametrize(
    ("size_hw", "budget", "advice"),
    [
        ((256, 512), "8M", "resize the pairs to at most 128x288 (HxW), or set RTSTEREO_MEMORY_BUDGET if the machine"),
        ((64, 128), "500K", "give smaller pairs, or set RTSTEREO_MEMORY_BUDGET if the machine has more memory"),
    ],
)
def test_a_pair_too_large_to_score_within_the_memory_budget_is_refused_before_training(
    capsys, tmp_path, tiny_network, monkeypatch, size_hw, budget, advice
):
    """The held-out pairs were scored whole, without the budget predict applies: a very large pair could exhaust the
    memory, after the labels and the whole training."""
    rng = np.random.default_rng(0)
    noise = [tuple(rng.integers(0, 256, (*size_hw, 3), dtype=np.uint8) for _ in range(2)) for _ in range(2)]
    pairs = _write_pairs(tmp_path / "big", noise)
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", budget)
    code, stdout, err = run_cli(capsys, "adapt", *pairs, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt")
    assert code == 2 and err.endswith("\n") and err.splitlines()[-1].startswith("rtstereo adapt: error: pair p"), err
    said = f"cannot be scored whole, as adapt scores its pairs: rtnet on a {size_hw[0]}x{size_hw[1]} (HxW) pair needs"
    assert said in err and advice in err, err
    assert "before" not in stdout and "proxy labels" not in err and not (tmp_path / "m.pt").exists()


def test_an_export_size_too_large_for_the_memory_budget_is_refused_before_training(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """-o FILE.onnx --export-size 64000x64000 trained the whole budget and wrote FILE.pt, then resized a pair to that
    size (12 GB) for the parity check, which the export refused only after."""
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1G")
    argv = ["adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "m.onnx", "--export-size", "8192x8192"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        "rtstereo adapt: error: rtnet at 8224x8256 (HxW, where a --dynamic export of 8192x8192 is checked second) "
        "needs about "
    )
    assert "export at a smaller --export-size (a --dynamic export runs at any size)" in err, err
    assert stdout == "" and not (tmp_path / "m.pt").exists() and not (tmp_path / "m.onnx").exists()


def test_inputs_are_refused_as_predict_refuses_them(capsys, tmp_path, folders, tiny_network):
    out = ["--model", tiny_network, "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, "adapt", folders[0], *out)  # it said "expected LEFT RIGHT" of the LEFT it had
    assert code == 2 and f"expected RIGHT after LEFT {folders[0]}: a pair is two images" in err, err
    code, _, err = run_cli(capsys, "adapt", *out)
    assert code == 2 and "expected LEFT RIGHT (files, folders, globs or URLs), or --pairs MANIFEST.csv" in err, err
    code, _, err = run_cli(capsys, "adapt", *folders, "--pairs", tmp_path / "p.csv", *out)
    assert code == 2 and "not both" in err
    code, _, err = run_cli(capsys, "adapt", folders[0], tmp_path / "nothing", *out)
    assert code == 2 and "right image not found" in err


def test_a_pair_too_small_for_the_network_among_others_is_left_out_with_a_warning(capsys, tmp_path, tiny_network):
    """One 16-px-high pair among 64x128 ones stopped the run: "pair p1 is 16x128 (HxW) pixels: adapting needs ..."."""
    pairs = _rendered(3, 64, 128, seed=2)
    pairs[1] = (pairs[1][0][:16], pairs[1][1][:16])
    left, right = _write_pairs(tmp_path, pairs)
    argv = ["adapt", left, right, "--model", tiny_network, *FAST, "--holdout", "0", "--no-rectification-check"]
    code, stdout, err = run_cli(capsys, *argv, "-o", tmp_path / "m.pt")
    assert code == 0, err
    said = "rtstereo adapt: warning: 1 pair left out: p1: smaller than the network's 32x32 pixels (the first: 16x128"
    assert said in err, err
    assert torch.load(tmp_path / "m.pt", weights_only=True)["adaptation"]["train_pairs"] == ["p0", "p2"]
    left, right = _write_pairs(tmp_path / "all", [pairs[1]])  # all of them: the error, as before
    code, _, err = run_cli(capsys, "adapt", left, right, "--model", tiny_network, *FAST, "-o", tmp_path / "n.pt")
    assert code == 2 and "pair p0 is 16x128 (HxW) pixels: adapting needs images of at least 32x32" in err, err


def test_unreadable_or_mismatched_pairs_are_named(capsys, tmp_path, tiny_network):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    write_image(tmp_path / "r.png", np.zeros((64, 96, 3), np.uint8))
    write_image(tmp_path / "wide.png", np.zeros((64, 128, 3), np.uint8))
    out = ["--model", tiny_network, "-o", tmp_path / "m.pt"]
    code, _, err = run_cli(capsys, "adapt", tmp_path / "bad.png", tmp_path / "r.png", *out)
    assert code == 2 and "none of the 1 pair can be read: pair bad:" in err
    code, _, err = run_cli(capsys, "adapt", tmp_path / "wide.png", tmp_path / "r.png", *out)
    assert code == 2 and "pair wide: left and right images differ in size" in err


def test_a_damaged_pair_among_good_ones_is_left_out_with_a_warning(capsys, tmp_path, tiny_network):
    left, right = _write_pairs(tmp_path, _rendered(3, 64, 128, seed=2))
    (left / "p1.png").write_bytes(b"not a png")
    argv = ["adapt", left, right, "--model", tiny_network, *FAST, "--holdout", "0", "-o", tmp_path / "m.pt"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert f"rtstereo adapt: warning: 1 pair left out: p1: cannot read {left / 'p1.png'}" in err
    assert (tmp_path / "m.pt").is_file()
    # A manifest's pair is named once, with its line, as predict names it (it read "b (m.csv line 3) (pair b
    # (m.csv line 3): ..."); several: the first one's reason
    (left / "p2.png").write_bytes(b"not a png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("left,right\n" + "".join(f"{left / f'p{i}.png'},{right / f'p{i}.png'}\n" for i in range(3)))
    argv = ["adapt", "--pairs", manifest, "--model", tiny_network, *FAST, "--holdout", "0", "-o", tmp_path / "m2.pt"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert (
        f"rtstereo adapt: warning: 2 pairs left out: p1 ({manifest} line 3), p2 ({manifest} line 4) (the first: "
        f"cannot read {left / 'p1.png'}"
    ) in err


def test_sigterm_keeps_the_weights_reached_as_ctrl_c_does(capsys, tmp_path, folders, tiny_network, monkeypatch):
    """`kill PID` (a job scheduler's stop) ended the process at once: the steps done, and the weights, were lost."""
    from tests.conftest import sigterm_at_call, sigterm_stand_in

    from rtstereo.train.adapt import Adapter

    sigterm_at_call(monkeypatch, Adapter, "user_terms", 3)  # at the third step
    argv = [*folders, "--model", tiny_network, *FAST[2:], "--steps", "50", "--holdout", "0"]
    out = tmp_path / "stopped.pt"
    with sigterm_stand_in():  # and the process's own handler is back after
        code, _, err = run_cli(capsys, "adapt", *argv, "-o", out)
    assert code == 130, err
    assert f"rtstereo adapt: interrupted after 3 steps, before the budget; {out} holds the weights reached" in err
    assert torch.load(out, weights_only=True)["adaptation"]["steps"] == 3


def test_ctrl_c_keeps_the_weights_reached_and_a_second_one_stops_at_once(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    import os
    import signal

    from rtstereo.train.adapt import Adapter

    calls = []
    user_terms = Adapter.user_terms

    def interrupted_at_the_third_step(self, batch):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl+C: the step under way finishes, then it stops
        return user_terms(self, batch)

    monkeypatch.setattr(Adapter, "user_terms", interrupted_at_the_third_step)
    argv = [*folders, "--model", tiny_network, *FAST[2:], "--steps", "50", "--holdout", "0"]
    out = tmp_path / "stopped.pt"
    code, stdout, err = run_cli(capsys, "adapt", *argv, "-o", out)
    assert code == 130, err
    assert "interrupted at step 3: scoring and keeping the weights reached" in err
    assert "rtstereo adapt: step 3 " in err  # the short last group of progress is printed too
    assert f"rtstereo adapt: interrupted after 3 steps, before the budget; {out} holds the weights reached" in err
    adaptation = torch.load(out, weights_only=True)["adaptation"]
    assert adaptation["steps"] == 3 and adaptation["interrupted"] is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the usual Ctrl+C again afterwards

    calls.clear()

    def interrupted_twice(self, batch):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return user_terms(self, batch)

    monkeypatch.setattr(Adapter, "user_terms", interrupted_twice)
    code, _, err = run_cli(capsys, "adapt", *argv, "-o", tmp_path / "twice.pt")
    assert code == 130 and not (tmp_path / "twice.pt").exists()
    # a bare "rtstereo adapt: interrupted" left the user to look for the weights
    assert err.endswith(
        f"rtstereo adapt: interrupted: {tmp_path / 'twice.pt'} not written (the weights reached are kept when Ctrl+C "
        "comes once, after the first step)\n"
    ), err


def test_ctrl_c_before_the_first_step_says_nothing_was_written(capsys, tmp_path, folders, tiny_network, monkeypatch):
    """Ctrl+C while the pairs were read or labelled said a bare "interrupted": nothing of the -o file."""
    from rtstereo.train import adapt as adapt_module

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(adapt_module, "proxy_labels", interrupted)
    out = tmp_path / "m.pt"
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", out)
    assert (code, stdout) == (130, "") and not out.exists()
    assert err.endswith(
        f"rtstereo adapt: interrupted: {out} not written (the weights reached are kept when Ctrl+C "
        "comes once, after the first step)\n"
    ), err


def test_ctrl_c_during_the_export_says_the_checkpoint_holds_the_weights(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """Ctrl+C in the export of -o FILE.onnx, after FILE.pt was written, said only "rtstereo adapt: interrupted"."""
    from rtstereo.cli import adapt as adapt_cli

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(adapt_cli, "_export", interrupted)
    out = tmp_path / "mine.onnx"
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", out)
    assert code == 130 and (tmp_path / "mine.pt").is_file(), err
    assert err.endswith(
        f"rtstereo adapt: interrupted during the export to {out}: {tmp_path / 'mine.pt'} holds the adapted weights; "
        f"export them with rtstereo export {tmp_path / 'mine.pt'} --dynamic --size 256x320 -o {out}\n"
    ), err


def test_ctrl_c_in_the_last_step_is_a_finished_run(capsys, tmp_path, folders, tiny_network, monkeypatch):
    import os
    import signal

    from rtstereo.train.adapt import Adapter

    calls = []
    user_terms = Adapter.user_terms

    def interrupted_in_the_last_step(self, batch):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return user_terms(self, batch)

    monkeypatch.setattr(Adapter, "user_terms", interrupted_in_the_last_step)
    out = tmp_path / "done.pt"
    argv = [*folders, "--model", tiny_network, *FAST[2:], "--steps", "3", "--holdout", "0", "-o", out]
    code, _, err = run_cli(capsys, "adapt", *argv)
    assert code == 0 and "interrupted" not in err
    assert torch.load(out, weights_only=True)["adaptation"]["interrupted"] is False


def test_ctrl_c_while_the_adapted_network_is_scored_keeps_the_weights(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """After the whole budget, a first Ctrl+C during the last scoring (a minute on large held-out pairs)
    stopped the command at once and wrote nothing: the budget was lost."""
    import os
    import signal

    from rtstereo.train.adapt import Adapter

    scores = []
    score = Adapter.score

    def interrupted_while_scoring_after(self, pairs, presses=1):
        scores.append(1)
        if len(scores) == 2:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return score(self, pairs)

    monkeypatch.setattr(Adapter, "score", interrupted_while_scoring_after)
    out = tmp_path / "done.pt"
    argv = [*folders, "--model", tiny_network, *FAST[2:], "--steps", "2", "--holdout", "0", "-o", out]
    code, stdout, err = run_cli(capsys, "adapt", *argv)
    assert code == 0 and out.is_file(), err
    assert "Ctrl+C: the steps are over; scoring and keeping the weights reached (Ctrl+C again stops at once)" in err
    assert "after  (training pairs, none held out)" in stdout
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    scores.clear()
    monkeypatch.setattr(Adapter, "score", lambda self, pairs: interrupted_while_scoring_after(self, pairs, 2))
    code, _, err = run_cli(capsys, "adapt", *argv[:-1], tmp_path / "twice.pt")
    assert code == 130 and not (tmp_path / "twice.pt").exists()


def test_a_collapse_is_said_in_one_warning_line_at_the_end_and_recorded(capsys, tmp_path):
    """Blob-textured pairs, photometric and smoothness only: 200 steps took the held-out photometric error of
    rtnet-v5 from 0.022 to 0.51 (an untrained network's) and nothing said so. A high learning rate does it in
    ten steps."""
    from rtstereo.train import adapt_network

    if adapt_network.packaged_network_source() is None:
        pytest.skip("rtnet-v5's PyTorch state is in a source checkout only")
    lefts, rights = sliding_frames(4, 64, 128, disparity_px=5)
    folders = _write_pairs(tmp_path / "blobs", list(zip(lefts, rights)))
    out = tmp_path / "collapsed.pt"
    argv = ["--losses", "photometric,smoothness", "--synthetic-batch", "0", "--crop", "64x128", "--batch-size", "1"]
    argv += ["--steps", "10", "--lr", "1e-2", "--holdout", "0.25", "--no-rectification-check", "-q", "-o", out]
    code, stdout, err = run_cli(capsys, "adapt", *folders, *argv)
    assert code == 0 and out.is_file(), err  # written all the same: the user decides
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"rtstereo adapt: warning: the held-out scores got clearly worse \(photometric error 0\.0\d+ -> 0\.[1-9]\d+ "
        r"\(\+\d+ %\); left-right disagreement .* px\): adapting made the network worse on your images "
        r"\(it can collapse\); keep the original network \(rtnet-v5\) rather than this one",
        last,
    ), err
    adaptation = torch.load(out, weights_only=True)["adaptation"]
    assert adaptation["scores_worse"][0].startswith("photometric error 0.0")
    assert "more than 10%" in adaptation["scores_worse_rule"]


def test_clearly_worse_scores_do_not_advise_keeping_a_checkpoint_the_run_replaced(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """-o naming the checkpoint adapted from replaces it; the warning said "keep the original network (mine.pt)
    rather than this one", the file that then held the worse weights."""
    import shutil

    from rtstereo.train import adapt as adapt_module

    monkeypatch.setattr(adapt_module, "worse_scores", lambda before, after: ["photometric error 0.0200 -> 0.5000"])
    mine = tmp_path / "mine.pt"
    shutil.copy(tiny_network, mine)
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", mine, *FAST, "-o", mine, "-q")
    assert code == 0, err
    last = err.strip().splitlines()[-1]
    assert "keep the original network" not in last, last
    assert last.endswith(
        f"the original network was {mine}, which this run replaced: restore it from a copy if you have one (next "
        "time give -o another name)"
    ), last
    code, _, err = run_cli(capsys, "adapt", *folders, "--model", mine, *FAST, "-o", tmp_path / "other.pt", "-q")
    assert code == 0, err
    assert err.strip().splitlines()[-1].endswith(f"keep the original network ({mine}) rather than this one"), err


def test_the_last_line_says_whether_the_scores_can_tell(capsys, tmp_path, folders, tiny_network, monkeypatch):
    from rtstereo.train import adapt as adapt_module

    monkeypatch.setattr(adapt_module, "worse_scores", lambda before, after: [])
    monkeypatch.setattr(adapt_module, "risen_scores", lambda before, after: [])
    argv = [*folders, "--model", tiny_network, *FAST]
    code, _, err = run_cli(capsys, "adapt", *argv, "--holdout", "0", "-o", tmp_path / "a.pt")
    assert code == 0, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rtstereo adapt: note: no pair was held out (--holdout 0 or a single pair): nothing unseen")
    code, _, err = run_cli(capsys, "adapt", *argv, "-o", tmp_path / "b.pt")
    assert code == 0, err
    assert err.strip().splitlines()[-1] == (
        "rtstereo adapt: the held-out scores did not get clearly worse (no ground truth: check with rtstereo eval if "
        "you can)"
    )
    assert torch.load(tmp_path / "b.pt", weights_only=True)["adaptation"]["scores_worse"] == []


def test_scores_that_rose_by_less_than_the_rule_are_said_to_have_risen(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """The held-out left-right disagreement went 0.96 -> 1.09 px (+13 %, under the rule's 0.25 px) and the last
    line said only "the held-out scores did not get clearly worse": a worse score was hidden."""
    from rtstereo.train import adapt as adapt_module

    scores = iter(
        [
            {"photometric": 0.2150, "lr_disagreement_px": 0.96, "lr_bad1": 29.4},
            {"photometric": 0.2144, "lr_disagreement_px": 1.09, "lr_bad1": 30.1},
        ]
    )
    monkeypatch.setattr(adapt_module.Adapter, "score", lambda self, pairs: next(scores))
    code, stdout, err = run_cli(capsys, "adapt", *folders, "--model", tiny_network, *FAST, "-o", tmp_path / "a.pt")
    assert code == 0, err
    assert "after  (held-out pairs): photometric error 0.2144, left-right disagreement 1.09 px" in stdout
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "rtstereo adapt: the held-out scores did not get clearly worse, but they rose (left-right disagreement "
        "0.96 -> 1.09 px (+14 %)), by less than the rule (photometric error up by more than 10% of its value"
    ), last
    assert last.endswith("adapting did not help them (no ground truth: check with rtstereo eval if you can)"), last
    assert torch.load(tmp_path / "a.pt", weights_only=True)["adaptation"]["scores_worse"] == []


def test_the_summary_counts_the_steps_skipped_for_a_non_finite_loss(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    from rtstereo.train.adapt import Adapter

    calls = []
    user_terms = Adapter.user_terms

    def nan_at_the_first_step(self, batch):
        calls.append(1)
        terms = user_terms(self, batch)
        return {k: v * float("nan") for k, v in terms.items()} if len(calls) == 1 else terms

    monkeypatch.setattr(Adapter, "user_terms", nan_at_the_first_step)
    out = tmp_path / "m.pt"
    argv = [*folders, "--model", tiny_network, *FAST[2:], "--steps", "2", "-o", out]
    code, stdout, err = run_cli(capsys, "adapt", *argv)
    assert code == 0, err
    assert "rtstereo adapt: step 2 " in err and "total nan" not in err
    assert "(1 of 2 steps skipped: non-finite loss or gradient; the means leave out this line's 1)" in err
    assert "for 2 steps, 1 of them skipped (non-finite loss or gradient) on 64x96 crops" in stdout
    assert torch.load(out, weights_only=True)["adaptation"]["skipped_steps"] == 1


def test_the_synthetic_pool_default_of_the_help_is_the_configs():
    from rtstereo.cli.adapt import DEFAULT_SYNTHETIC_POOL
    from rtstereo.train.adapt import AdaptConfig

    assert AdaptConfig.synthetic_pool == DEFAULT_SYNTHETIC_POOL


def test_the_help_says_what_judges_the_scores(capsys):
    from rtstereo.train.adapt import WORSE_DISAGREEMENT_PX, WORSE_PHOTOMETRIC, WORSE_RELATIVE

    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "only the before/after scores, the result and warnings" in text
    assert (
        f"photometric error up by more than {WORSE_RELATIVE:.0%} and {WORSE_PHOTOMETRIC:g}".replace("%", " %") in text
        and f"{WORSE_DISAGREEMENT_PX:g} px" in text
    )


def test_the_cli_defaults_are_adapt_configs():
    """The CLI cannot import torch at start-up, so it repeats AdaptConfig's defaults (--synthetic-pool's among
    them): this keeps the two from drifting apart."""
    from rtstereo.cli import adapt as adapt_verb
    from rtstereo.cli import build_parser
    from rtstereo.train.adapt import AdaptConfig

    args = build_parser().parse_args(["adapt", "l", "r", "-o", "m.pt"])
    config = AdaptConfig()
    assert adapt_verb.DEFAULT_SYNTHETIC_POOL == config.synthetic_pool
    assert adapt_verb.DEFAULT_MINUTES == config.minutes
    assert adapt_verb.DEFAULT_PROXY_MAX_DISP == config.max_disp
    assert tuple(args.losses.split(",")) == config.losses
    fields = {"batch_size": "batch_size", "synthetic_batch": "synthetic_batch", "crop": "crop_hw", "lr": "lr"}
    fields |= {"holdout": "holdout", "seed": "seed"}
    assert {field: getattr(args, option) for option, field in fields.items()} == {
        field: getattr(config, field) for field in fields.values()
    }


def test_threads_bound_opencv_and_the_labelling_threads_too(capsys, tmp_path, monkeypatch, folders, tiny_network):
    """--threads 2 set PyTorch's threads only: SGBM labelled the pairs on one thread per core, each with
    OpenCV's own threads, and the export's parity check ran ONNX Runtime on every core."""
    import concurrent.futures

    import cv2

    from rtstereo.train import adapt as adapt_loop

    pools = []

    class Recording(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, max_workers=None, *args, **kwargs):
            pools.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(adapt_loop, "ThreadPoolExecutor", Recording)
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)  # restored (unset) after the test, as are the libraries
    opencv, pytorch = cv2.getNumThreads(), torch.get_num_threads()
    try:
        argv = ["adapt", *folders, "--model", tiny_network, *FAST, "--threads", "1", "-o", tmp_path / "m.pt"]
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert pools == [1] and cv2.getNumThreads() == 1 and torch.get_num_threads() == 1
        assert os.environ["RTSTEREO_THREADS"] == "1"
    finally:
        cv2.setNumThreads(opencv)
        torch.set_num_threads(pytorch)


def test_adapt_and_train_check_threads_alike():
    """One check of --threads for the two PyTorch verbs (each once held its own copy of it)."""
    from rtstereo.cli import adapt as adapt_verb
    from rtstereo.cli import common
    from rtstereo.cli import train as train_verb
    from rtstereo.errors import InputError

    assert adapt_verb.check_torch_threads is common.check_torch_threads
    assert train_verb.check_torch_threads is common.check_torch_threads
    with pytest.raises(InputError, match=r"^--threads must be >= 1, got 0 \(leave it out for torch's own choice\)$"):
        common.check_torch_threads(0)
    common.check_torch_threads(None)
    common.check_torch_threads(1)


def test_a_pair_listed_twice_is_kept_once_so_it_cannot_be_trained_on_and_scored_as_unseen(
    capsys, tmp_path, folders, tiny_network, monkeypatch
):
    """A manifest listing one pair twice (here by two paths) put it in both the training and the held-out pairs."""
    import rtstereo.train.adapt

    manifest = tmp_path / "pairs.csv"
    lefts, rights = sorted(folders[0].iterdir()), sorted(folders[1].iterdir())
    rows = [f"{left},{right}" for left, right in zip(lefts, rights)]
    again = f"{lefts[0].parent}/./{lefts[0].name},{rights[0]}"
    manifest.write_text("left,right\n" + "\n".join([*rows, again]) + "\n")
    seen = {}
    original = rtstereo.train.adapt.adapt

    def adapt(adapter, pairs, **kwargs):
        seen["names"] = [pair.name for pair in pairs]
        return original(adapter, pairs, **kwargs)

    monkeypatch.setattr(rtstereo.train.adapt, "adapt", adapt)
    argv = ["adapt", "--pairs", manifest, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt"]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert len(seen["names"]) == 3, seen
    # predict's warning, "each name gets its own files of the same pair", is not adapt's: adapt's own line says it
    assert [str(w.message) for w in said if "own files" in str(w.message)] == [], [str(w.message) for w in said]
    assert (
        f"rtstereo adapt: warning: 1 pair left out: 00003_p0 ({manifest} line 5): the same files as a pair listed "
        f"before (the first: 00003_p0 ({manifest} line 5) repeats 00000_p0 ({manifest} line 2))"
    ) in err


def test_the_same_command_twice_writes_the_same_weights(capsys, tmp_path, folders, tiny_network):
    """The README says two runs with the same --seed, --threads and --steps give the same weights, the checkpoints
    differing only in the seconds they record."""
    records = []
    for name in ("a.pt", "b.pt"):
        argv = (
            "adapt",
            *folders,
            "--model",
            tiny_network,
            *FAST,
            "--steps",
            "2",
            "--threads",
            "1",
            "-o",
            tmp_path / name,
        )
        code, _, err = run_cli(capsys, *argv, "-q")
        assert code == 0, err
        records.append(torch.load(tmp_path / name, weights_only=False))
    first, second = records
    assert all(torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])
    differ = {k for k in first["adaptation"] if first["adaptation"][k] != second["adaptation"][k]}
    assert differ <= {"seconds"}, differ


def test_a_manifest_row_listed_twice_with_its_name_is_kept_once(capsys, tmp_path, folders, tiny_network):
    """A row copied whole (name column too) was refused: "pair name repeats ... (it names the output files)", which
    adapt does not write; the README says a pair listed twice is kept once. One name on two pairs is still refused."""
    lefts, rights = sorted(folders[0].iterdir()), sorted(folders[1].iterdir())
    rows = [f"{left},{right},p{i}" for i, (left, right) in enumerate(zip(lefts, rights))]
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right,name\n" + "\n".join([*rows, rows[0]]) + "\n")
    argv = ["adapt", "--pairs", manifest, "--model", tiny_network, *FAST, "-o", tmp_path / "m.pt", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert f"warning: 1 pair left out: p0 ({manifest} line 5): the same files as a pair listed before" in err, err
    manifest.write_text("left,right,name\n" + "\n".join([*rows, f"{lefts[1]},{rights[1]},p0"]) + "\n")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "pair name repeats: p0 (line 2, line 5)" in err, err
