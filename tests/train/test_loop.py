"""rtstereo.train: config, loss, the loop (checkpoints, resume, logs, curve, precision), the CLI verb."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rtstereo.cli import main
from rtstereo.errors import CheckpointError, DatasetError, InputError, OutputError
from rtstereo.models.checkpoint import read_torch_file, save_checkpoint
from rtstereo.models.rtnet import build_rtnet
from rtstereo.train import TrainConfig, loop, read_config_file, resolve_config, train
from rtstereo.train.config import config_from_dict
from rtstereo.train.losses import (
    batch_errors,
    left_band,
    multiscale_loss,
    summarize_errors,
    training_mask,
    valid_mask,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_config(out_dir, **changes) -> TrainConfig:
    """A run of well under a second per step on one CPU thread: 64x128 crops, disparity range 32.

    It validates at the start and at the end only (plotting the curve each time).
    """
    values = dict(
        out_dir=str(out_dir),
        settings={"max_disp": 32},
        steps=3,
        batch_size=2,
        crop_hw=(64, 128),
        val_size=2,
        val_hw=(64, 128),
        warmup_steps=1,
        log_every=1,
        val_every=100,
        checkpoint_every=1,
        precision="off",
        lr=1e-3,
        threads=1,
    )
    values.update(changes)
    return TrainConfig(**values)


def records(run_dir, kind=None):
    lines = loop.read_log(run_dir / "log.jsonl")
    return [r for r in lines if kind is None or r["kind"] == kind]


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def three_steps(tmp_path_factory):
    """An uninterrupted 3-step run."""
    out = tmp_path_factory.mktemp("three")
    summary = train(tiny_config(out, val_every=2), echo=quiet)
    return out, summary


# --------------------------------------------------------------------------------------- the loop
def test_the_validation_set_is_said_before_it_is_rendered(tmp_path):
    """`rtstereo train` with its defaults was silent for about 30 s on 2 cores while it rendered 16 scenes."""
    lines = []
    train(tiny_config(tmp_path, steps=1), echo=lines.append)
    assert lines[0] == "validation set: rendering 2 scenes of 64x128 ...", lines


def test_a_validation_folder_is_said_before_it_is_read(tmp_path):
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)
    lines = []
    train(tiny_config(tmp_path / "run", val_data=str(data), steps=1), echo=lines.append)
    assert lines[0] == f"validation set: 2 pairs of {data}, scored whole", lines


def test_run_writes_checkpoints_log_curve_and_config(three_steps):
    out, summary = three_steps
    assert summary["step"] == 3
    for name in ("last.pt", "best.pt", "log.jsonl", "curve.png", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "curve.png").read_bytes().startswith(PNG_SIGNATURE)
    kinds = [r["kind"] for r in records(out)]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("train") == 3
    assert [r["step"] for r in records(out, "val")] == [0, 2, 3]  # baseline, every 2 steps, the end
    train_record = records(out, "train")[0]
    assert train_record["pairs_per_s"] > 0 and math.isfinite(train_record["loss"])

    last = read_torch_file(out / "last.pt")
    assert last["format"] == "rtstereo-checkpoint" and last["model"] == "rtnet"
    assert last["settings"] == {"max_disp": 32, "half_refinement": False, "full_refinement": False, "guided": False}
    assert last["step"] == 3
    assert {"optimizer", "config", "best_epe", "best_step"} <= set(last)
    best = read_torch_file(out / "best.pt")
    assert "optimizer" not in best and best["step"] == summary["best"]["step"]
    assert json.loads((out / "config.json").read_text())["crop_hw"] == [64, 128]


def test_config_json_is_written_atomically(tmp_path, monkeypatch):
    # written in place, a run stopped while writing it left a truncated config.json under its real name
    write_text = Path.write_text

    def interrupted(path, data, *args, **kwargs):
        if "config" not in path.name:
            return write_text(path, data, *args, **kwargs)
        write_text(path, data[:10], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, steps=1), echo=quiet)
    assert not [p.name for p in tmp_path.iterdir() if "config" in p.name]


def test_resume_continues_at_the_saved_step_and_matches_an_uninterrupted_run(tmp_path, three_steps):
    first = train(tiny_config(tmp_path, steps=2), echo=quiet)
    assert first["step"] == 2 and read_torch_file(tmp_path / "last.pt")["step"] == 2

    config = resolve_config(flag_values={"resume": str(tmp_path / "last.pt"), "steps": 3})
    assert config.crop_hw == (64, 128)  # from the checkpoint
    assert config.settings == {"max_disp": 32, "half_refinement": False, "full_refinement": False, "guided": False}
    assert config.out_dir == str(tmp_path)
    summary = train(config, echo=quiet)
    assert summary["step"] == 3
    starts = records(tmp_path, "start")
    assert [s["step"] for s in starts] == [0, 2]
    assert [r["step"] for r in records(tmp_path, "train")] == [1, 2, 3]  # step 3 once, nothing repeated

    resumed = read_torch_file(tmp_path / "last.pt")["state_dict"]
    straight = read_torch_file(three_steps[0] / "last.pt")["state_dict"]
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-5, rtol=1e-4, msg=key)


def test_a_run_stopped_during_a_validation_scores_that_step_when_resumed(tmp_path, monkeypatch, three_steps):
    """Ctrl-C or kill while step 2 was being validated: the resumed run went on to step 3 without scoring step 2's
    network, so best.pt and its step could differ from an uninterrupted run's (a 40-step run: 59.05 px at step 35
    against 58.16 at step 28)."""
    scores = loop.validate

    def stopped_at_step_2(model, *args, **kwargs):
        if records(tmp_path, "train")[-1:] and records(tmp_path, "train")[-1]["step"] == 2:
            raise KeyboardInterrupt
        return scores(model, *args, **kwargs)

    monkeypatch.setattr(loop, "validate", stopped_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, val_every=2), echo=quiet)
    assert read_torch_file(tmp_path / "last.pt")["step"] == 2 and [r["step"] for r in records(tmp_path, "val")] == [0]
    monkeypatch.setattr(loop, "validate", scores)
    summary = train(resolve_config(flag_values={"resume": str(tmp_path / "last.pt")}), echo=quiet)
    straight_dir, straight = three_steps
    scored = [r["step"] for r in records(tmp_path, "val")]
    assert scored == [r["step"] for r in records(straight_dir, "val")] == [0, 2, 3]
    assert summary["best"]["step"] == straight["best"]["step"]
    assert summary["best"]["epe"] == pytest.approx(straight["best"]["epe"], rel=1e-4)
    assert read_torch_file(tmp_path / "last.pt")["validated_step"] == 3
    # resumed where the validation had ended: nothing scored twice
    train(resolve_config(flag_values={"resume": str(tmp_path / "last.pt"), "steps": 4}), echo=quiet)
    assert [r["step"] for r in records(tmp_path, "val")] == [0, 2, 3, 4]


def test_a_run_stopped_during_its_first_validation_can_be_resumed(tmp_path, monkeypatch, three_steps):
    """Ctrl-C while step 0 was scored left config.json and log.jsonl but no last.pt: the same command refused the
    folder as another run's, and there was nothing to --resume."""

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "validate", stopped)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, val_every=2), echo=lines.append)
    assert read_torch_file(tmp_path / "last.pt")["step"] == 0 and not records(tmp_path, "val")
    assert lines[-1].startswith("stopped at step 0 (Ctrl-C); state saved to")
    monkeypatch.undo()
    summary = train(resolve_config(flag_values={"resume": str(tmp_path / "last.pt")}), echo=quiet)
    straight_dir, straight = three_steps
    assert [r["step"] for r in records(tmp_path, "val")] == [r["step"] for r in records(straight_dir, "val")]
    assert summary["best"]["epe"] == pytest.approx(straight["best"]["epe"], rel=1e-4)


def _worse_validation(monkeypatch):
    """Every validation from now on scores worse than any before."""
    worse = {"epe": 1e6, "bad-1": 100.0, "bad-2": 100.0, "bad-3": 100.0}
    monkeypatch.setattr(loop, "validate", lambda *args, **kwargs: dict(worse))


def test_resume_from_best_pt_keeps_the_best_score_and_its_weights(tmp_path, monkeypatch):
    first = train(tiny_config(tmp_path, steps=1), echo=quiet)
    best = read_torch_file(tmp_path / "best.pt")
    assert best["best_epe"] == first["best"]["epe"] and best["best_step"] == first["best"]["step"]
    _worse_validation(monkeypatch)
    summary = train(resolve_config(flag_values={"resume": str(tmp_path / "best.pt"), "steps": 2}), echo=quiet)
    assert summary["step"] == 2 and summary["best"] == first["best"]
    kept = read_torch_file(tmp_path / "best.pt")
    assert kept["step"] == best["step"]
    for key, value in best["state_dict"].items():
        torch.testing.assert_close(kept["state_dict"][key], value, msg=key)


def test_a_checkpoint_without_the_best_score_takes_it_from_the_run_log(tmp_path, monkeypatch):
    first = train(tiny_config(tmp_path, steps=1), echo=quiet)
    best_weights = read_torch_file(tmp_path / "best.pt")["state_dict"]
    old = read_torch_file(tmp_path / "last.pt")  # as best.pt was written before it recorded the score
    del old["best_epe"], old["best_step"]
    torch.save(old, tmp_path / "old.pt")
    _worse_validation(monkeypatch)
    summary = train(resolve_config(flag_values={"resume": str(tmp_path / "old.pt"), "steps": 2}), echo=quiet)
    assert summary["best"] == first["best"]
    torch.testing.assert_close(read_torch_file(tmp_path / "best.pt")["state_dict"], best_weights)
    (tmp_path / "log.jsonl").unlink()  # no record of the run at all: the resumed network is scored first
    monkeypatch.undo()
    summary = train(resolve_config(flag_values={"resume": str(tmp_path / "old.pt"), "steps": 2}), echo=quiet)
    assert [r["step"] for r in records(tmp_path, "val")] == [1, 2] and summary["best"]["step"] in (1, 2)


def test_a_resumed_run_makes_batches_ahead_as_its_new_machine_does(tmp_path):
    train(tiny_config(tmp_path, steps=1, prefetch=True), echo=quiet)  # as a GPU run stores it
    last = str(tmp_path / "last.pt")
    assert read_torch_file(last)["config"]["prefetch"] is True
    assert resolve_config(flag_values={"resume": last}).prefetch is None  # on a CPU: none
    assert resolve_config(flag_values={"resume": last, "prefetch": True}).prefetch is True  # the flag wins


def test_a_refused_run_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(DatasetError, match=r"^dataset folder not found: .*absent$"):
        train(tiny_config(out, data=str(tmp_path / "absent")), echo=quiet)
    assert not out.exists()


def test_a_new_run_refuses_a_folder_that_holds_a_run(tmp_path, three_steps):
    out = three_steps[0]
    before = (out / "last.pt").read_bytes(), (out / "log.jsonl").read_text()
    with pytest.raises(OutputError, match=r"already holds a run \(last.pt, best.pt, log.jsonl\).*--resume"):
        train(tiny_config(out, steps=1), echo=quiet)
    assert ((out / "last.pt").read_bytes(), (out / "log.jsonl").read_text()) == before  # nothing overwritten


def test_a_folder_of_a_run_killed_before_its_first_last_pt_says_to_resume_from_best_pt(tmp_path, three_steps):
    """best.pt resumes too; the refusal said only to give another folder or remove this one."""
    (tmp_path / "best.pt").write_bytes((three_steps[0] / "best.pt").read_bytes())
    (tmp_path / "log.jsonl").write_text("")
    with pytest.raises(OutputError, match=f"continue it with --resume {tmp_path / 'best.pt'}, give another folder"):
        train(tiny_config(tmp_path, steps=1), echo=quiet)


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_run_folder_that_is_a_file_is_refused_in_one_line(tmp_path, capsys, below):
    from rtstereo.cli import main

    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / below if below else tmp_path / "file"
    assert main(["train", "-o", str(out), "--steps", "1", "--crop", "64x128", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtstereo train: error: run folder") and "is a file" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--init", "a.pt", "--resume", "b.pt"], "--init and --resume: --init starts a new run"),
        (["--unlabeled", "u", "--data", "d"], "--unlabeled and --data: --unlabeled pairs are mixed into rendered"),
    ],
)
def test_flags_that_exclude_each_other_are_named(tmp_path, capsys, flags, said):
    """They were refused naming config keys the user had not typed ("training config: give either 'init' ...")."""
    assert main(["train", "-o", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtstereo train: error: {said}") and err.endswith(": give one of them\n"), err


def test_a_batch_no_memory_holds_is_refused_in_one_line_before_the_run_folder(tmp_path, capsys):
    """--batch-size 1000000000000 ended in a traceback at the first step, leaving the run folder behind."""
    out = tmp_path / "run"
    argv = ["train", "-o", str(out), "--steps", "1", "--crop", "64x128", "--batch-size", "1000000000000"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtstereo train: error: --batch-size: 1000000000000 crops of 64x128 need at least ")
    assert err.count("\n") == 1 and "budget" in err and not out.exists(), err


def test_a_disparity_range_no_memory_holds_is_refused_in_one_line_before_the_network_is_built(
    tmp_path, capsys, monkeypatch
):
    """--max-disp 1000000000 ended in a traceback from the allocator while the network was built (its first layer
    grows with the range). A 1 GB budget holds 3 B per pixel and disparity level of 8 crops of 64x128 up to 5461
    levels: 5440, rounded down to rtnet's multiple of 32."""
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1G")
    monkeypatch.setattr(loop, "build_network", lambda *_a: pytest.fail("built a network no memory holds"))
    out = tmp_path / "run"
    argv = ["train", "-o", str(out), "--steps", "1", "--crop", "64x128", "--batch-size", "8", "--val-size", "1"]
    assert main([*argv, "--val-hw", "64x128", "--max-disp", "1e9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtstereo train: error: --max-disp: rtnet with max_disp 1000000000 on 8 crops of 64x128 ")
    assert err.endswith(
        "(RTSTEREO_MEMORY_BUDGET=1G): a max_disp of at most 5440 fits, or give fewer or smaller crops\n"
    )
    assert err.count("\n") == 1 and not out.exists(), err
    # At the network's own range only the crops are to blame (8 MB holds the batch itself, 1.8 MB, not 37.7).
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "8M")
    assert main([*argv, "--val-hw", "64x128"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtstereo train: error: --batch-size: rtnet with max_disp 192 on 8 crops of 64x128 ")
    assert err.endswith("(RTSTEREO_MEMORY_BUDGET=8M): give fewer or smaller crops\n") and not out.exists(), err


def test_a_validation_set_no_memory_holds_is_refused_in_one_line_before_it_is_rendered(tmp_path, capsys, monkeypatch):
    """--val-size 100000 rendered the synthetic validation set, held for the run, for hours past the memory budget.
    100000 scenes of 64x96 at 28 B per pixel: 16.0 GB; 100 MB holds 609 of them. A folder's pairs are read at each
    validation, not held: --val-data is not bounded so."""
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "100M")
    monkeypatch.setattr(loop, "validation_batches", lambda *_a: pytest.fail("rendered a set no memory holds"))
    out = tmp_path / "run"
    argv = ["train", "-o", str(out), "--steps", "1", "--crop", "64x96", "--batch-size", "1", "--val-hw", "64x96"]
    assert main([*argv, "--val-size", "100000"]) == 2
    assert capsys.readouterr().err == (
        "rtstereo train: error: --val-size: the synthetic validation set, held for the run: 100000 scenes of 64x96 "
        "need at least 16.0 GB, more than the 100 MB budget (RTSTEREO_MEMORY_BUDGET=100M): give at most 609\n"
    )
    assert not out.exists()
    loop._check_validation_memory(tiny_config(out, val_size=100000, val_data=str(tmp_path)), torch.device("cpu"))


def test_the_batch_bound_counts_what_each_stream_holds_at_least(tmp_path, monkeypatch):
    """Rendered scenes: two float32 RGB views and a float32 disparity, 28 B per pixel of each crop; crops read from
    files, cut and then stacked on the host: twice that. A 64x128 crop: 229376 and 458752 bytes."""
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", str(4 * 229376))
    with pytest.raises(InputError, match=r"'batch_size': 5 crops of 64x128 .*: give at most 4$"):
        train(tiny_config(tmp_path / "a", batch_size=5), echo=quiet)
    data = str(_write_kitti_like(tmp_path / "kitti", 1))
    with pytest.raises(InputError, match=r"'batch_size': 3 crops of 64x128 .*: give at most 2$"):
        train(tiny_config(tmp_path / "b", batch_size=3, data=data), echo=quiet)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # On a GPU rendered scenes are made there: its memory bounds them, and the host holds none of them.
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: argparse.Namespace(total_memory=4 * 229376))
    gpu = torch.device("cuda", 0)
    loop._check_batch_memory(tiny_config(tmp_path / "c", batch_size=4), gpu)
    with pytest.raises(
        InputError, match=r"5 crops of 64x128 need at least 1 MB on cuda:0, .* \(the memory of cuda:0\)"
    ):
        loop._check_batch_memory(tiny_config(tmp_path / "c", batch_size=5), gpu)


@pytest.mark.parametrize("option", ["--data", "--val-data"])
def test_a_dataset_folder_not_found_names_its_option(tmp_path, capsys, monkeypatch, option):
    """It said "dataset folder not found: X", not which of --data and --val-data X was given to."""
    import rtstereo.train.loop as loop
    from rtstereo.cli import main

    monkeypatch.setattr(loop, "train", lambda *_a, **_k: pytest.fail("trained with a folder that is not there"))
    absent = tmp_path / "absent"
    argv = ["train", "-o", str(tmp_path / "run"), "--steps", "1", "--crop", "64x128", option, str(absent)]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"rtstereo train: error: {option}: dataset folder not found: {absent}\n"
    assert not (tmp_path / "run").exists()


def test_a_setting_the_step_refuses_stops_and_says_how_to_go_on(tmp_path, monkeypatch):
    """The folder then holds a run, which a new run there refuses: the line says to resume with the setting
    corrected (a plain resume stops again) or to remove the folder; it said only 'fix the setting'."""
    import rtstereo.train.loop as loop

    # The count is checked before the folder is made; a network whose count differs in its steps gets here.
    monkeypatch.setattr(loop, "training_prediction_count", lambda *args: 3)
    lines: list[str] = []
    with pytest.raises(InputError, match="training config 'loss_weights': 3 weights, but the network returns 2"):
        train(tiny_config(tmp_path, loss_weights=[0.5, 0.7, 1.0]), echo=lines.append)
    assert "fix the setting the error names" in lines[-1], lines[-1]
    assert f"--resume {tmp_path / 'last.pt'} and the corrected option (a plain --resume stops again)" in lines[-1]
    assert f"or remove {tmp_path} and start over" in lines[-1]


def test_resume_after_the_last_step_does_nothing_and_says_so(tmp_path, three_steps):
    config = resolve_config(flag_values={"resume": str(three_steps[0] / "last.pt"), "out_dir": str(tmp_path)})
    lines = []
    summary = train(config, echo=lines.append)
    assert summary["step"] == 3 and records(tmp_path, "train") == []
    assert "nothing to train: the run is at step 3 and --steps is 3; give a larger --steps to go on" in lines


def test_a_run_folder_that_cannot_be_written_is_refused_before_the_validation_set(tmp_path, monkeypatch):
    """It was found by make(), after the validation set was rendered (30 s by default) and unlabeled pairs were
    labelled (a second a pair)."""
    import tempfile

    from rtstereo.io import atomic

    made, run = tempfile.TemporaryFile, tmp_path / "run"

    def denied(*args, dir=None, **kwargs):  # chmod 555 does not stop root, who runs these tests
        if dir is not None and Path(dir) == run:
            raise PermissionError(13, "Permission denied")
        return made(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "TemporaryFile", denied)
    lines = []
    with pytest.raises(OutputError, match=f"^cannot write in run folder {re.escape(str(run))}: Permission denied"):
        train(tiny_config(run, steps=1), echo=lines.append)
    assert lines == [] and not run.exists()


def test_resume_into_a_folder_holding_another_run_is_refused(tmp_path, capsys, three_steps):
    """`--resume A/last.pt -o B`, B holding another run, overwrote B's last.pt and best.pt and appended to its log."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "log.jsonl").write_text('{"kind": "start", "step": 0}\n')
    (other / "best.pt").write_bytes(b"another run's weights")
    source = three_steps[0] / "last.pt"
    code = main(["train", "--resume", str(source), "--steps", "4", "-o", str(other)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"run folder {other} already holds another run (best.pt, log.jsonl) than the one of {source}" in err, err
    assert f"leave out -o to continue in {three_steps[0]}" in err
    assert sorted(p.name for p in other.iterdir()) == ["best.pt", "log.jsonl"]
    assert (other / "best.pt").read_bytes() == b"another run's weights"
    # Its own folder, named another way, is its run: it goes on there.
    config = resolve_config(flag_values={"resume": str(source), "out_dir": str(three_steps[0] / "." / "")})
    loop.RunFiles(Path(config.out_dir)).check_usable(config.resume)


def test_resume_of_a_run_whose_unlabeled_folder_is_gone_says_how_to_go_on(tmp_path, capsys, three_steps):
    """It read "unlabeled pairs: folder not found: DIR", a folder the command had not named."""
    checkpoint = torch.load(three_steps[0] / "last.pt", map_location="cpu", weights_only=False)
    checkpoint["config"]["unlabeled"] = str(tmp_path / "gone")
    torch.save(checkpoint, tmp_path / "last.pt")
    code = main(["train", "--resume", str(tmp_path / "last.pt"), "--steps", "4"])
    err = capsys.readouterr().err
    said = (
        f"--resume {tmp_path / 'last.pt'}: its run trained on --unlabeled {tmp_path / 'gone'}, which is not found "
        "here: give --unlabeled with where that folder is now, or --unlabeled '' to go on with rendered scenes only"
    )
    assert code == 2 and err == f"rtstereo train: error: {said}\n", err


def test_train_quiet_leaves_out_the_progress_but_not_what_to_know(tmp_path, capsys, three_steps):
    """train had no -q, which every other verb that reports its work on stderr takes (an unrecognized argument)."""
    for name in ("last.pt", "best.pt", "log.jsonl", "config.json"):
        (tmp_path / name).write_bytes((three_steps[0] / name).read_bytes())
    code = main(["train", "--resume", str(tmp_path / "last.pt"), "--steps", "4", "-q"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("done: step 4,"), err
    assert err == "", err  # without -q: "training rtnet ...", "step 4/4: loss ...", "step 4: validation EPE ..."
    code = main(["train", "--resume", str(tmp_path / "last.pt"), "--steps", "4", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and err.startswith("rtstereo train: nothing to train: the run is at step 4"), err


def test_a_run_on_relative_folders_records_them_absolute_and_resumes_from_any_folder(tmp_path, monkeypatch):
    """config.json held "kitti" as typed: resumed from another folder, the run looked for /elsewhere/kitti."""
    data = tmp_path / "kitti"
    _write_kitti_like(data)
    monkeypatch.chdir(tmp_path)
    train(tiny_config(tmp_path / "run", data="kitti", val_data="./kitti", steps=1), echo=quiet)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"] == config["val_data"] == str(data)
    monkeypatch.chdir(tmp_path / "run")
    resume = ["train", "--resume", str(tmp_path / "run" / "last.pt")]
    assert main([*resume, "--steps", "2"]) == 0
    assert main([*resume, "--steps", "3", "--val-data", "../kitti/"]) == 0
    monkeypatch.chdir(tmp_path)
    train(tiny_config(tmp_path / "tuned", init="run/last.pt", steps=1), echo=quiet)
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert config["init"] == str(tmp_path / "run" / "last.pt")
    monkeypatch.chdir(tmp_path / "run")  # the run again, from its config.json
    assert main(["train", "-c", str(tmp_path / "tuned" / "config.json"), "-o", str(tmp_path / "again")]) == 0


def test_an_older_run_on_a_relative_validation_folder_resumes_with_the_folder_given(tmp_path, monkeypatch, capsys):
    """Its --val-data spelled another way (the path from another folder) was refused as another validation set."""
    data = tmp_path / "kitti"
    _write_kitti_like(data)
    (tmp_path / "kitti2").mkdir()
    train(tiny_config(tmp_path / "run", val_data=str(data), steps=1), echo=quiet)
    checkpoint = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    checkpoint["config"]["val_data"] = "kitti"  # as runs recorded it before
    torch.save(checkpoint, tmp_path / "run" / "last.pt")
    monkeypatch.chdir(tmp_path / "run")
    resume = ["train", "--resume", str(tmp_path / "run" / "last.pt"), "--steps", "2"]
    assert main(resume) == 2
    said = "its run validated on --val-data kitti, which is not found here: give --val-data with where that folder"
    assert said in capsys.readouterr().err
    assert main([*resume, "--val-data", str(tmp_path / "kitti2")]) == 2
    assert "validates on another set than the run" in capsys.readouterr().err
    assert main([*resume, "--val-data", "../kitti"]) == 0


@pytest.mark.parametrize(
    ("flag", "what"),
    [
        ("--init", "checkpoint"),
        ("--resume", "checkpoint"),
        ("--data", "dataset folder"),
        ("--val-data", "dataset folder"),
    ],
)
def test_an_empty_path_is_refused_not_read_as_none(tmp_path, capsys, flag, what):
    """--init "$CKPT" with the variable unset trained a network from scratch; --data "$DIR" on rendered scenes."""
    code = main(["train", "--steps", "1", flag, "", "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err
    said = f"rtstereo train: error: {flag}: the path is empty (an unset shell variable?): give a {what}\n"
    assert code == 2 and err == said, err
    assert not (tmp_path / "run").exists()


def test_resume_with_fewer_steps_than_reached_is_refused_and_leaves_the_run_alone(tmp_path, capsys, three_steps):
    """It said "nothing to train" but wrote --steps into last.pt and config.json: a plain --resume of the
    run afterwards went no further than that smaller number."""
    for name in ("last.pt", "best.pt", "log.jsonl", "config.json"):
        (tmp_path / name).write_bytes((three_steps[0] / name).read_bytes())
    before = {name: (tmp_path / name).read_bytes() for name in ("last.pt", "log.jsonl", "config.json")}
    code = main(["train", "--resume", str(tmp_path / "last.pt"), "--steps", "2"])
    err = capsys.readouterr().err
    said = f"rtstereo train: error: --steps: 2 is below step 3, where {tmp_path / 'last.pt'} stopped"
    assert code == 2 and err.startswith(said), err
    assert before == {name: (tmp_path / name).read_bytes() for name in before}


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_ctrl_c_or_a_crash_saves_the_state_and_reraises(tmp_path, monkeypatch, error):
    render = loop.SyntheticStream.__call__

    def fail_at_step_2(self, step):
        if step == 2:
            raise error
        return render(self, step)

    monkeypatch.setattr(loop.SyntheticStream, "__call__", fail_at_step_2)
    with pytest.raises(error):
        train(tiny_config(tmp_path, checkpoint_every=100), echo=quiet)
    assert read_torch_file(tmp_path / "last.pt")["step"] == 2
    end = records(tmp_path, "end")[-1]
    assert end["interrupted"] is True and end["step"] == 2 and end["reason"] == error.__name__
    assert (tmp_path / "curve.png").is_file()


def test_sigterm_saves_the_state_as_ctrl_c_does(tmp_path, monkeypatch):
    """kill, a job scheduler or torchrun stopping its workers send SIGTERM: the steps done are kept."""
    render = loop.SyntheticStream.__call__

    def terminated_at_step_2(self, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return render(self, step)

    monkeypatch.setattr(loop.SyntheticStream, "__call__", terminated_at_step_2)
    previous = signal.getsignal(signal.SIGTERM)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, checkpoint_every=100), echo=said.append)
    assert signal.getsignal(signal.SIGTERM) is previous  # the process's own handler is back
    assert read_torch_file(tmp_path / "last.pt")["step"] == 2
    end = records(tmp_path, "end")[-1]
    assert end["interrupted"] is True and end["step"] == 2 and end["reason"] == "Terminated"
    # named as the other verbs name it (bench's "interrupted_by"): the line said "(Terminated)", a class's name
    assert f"stopped at step 2 (SIGTERM); state saved to {tmp_path / 'last.pt'}" in said[-1], said


def test_sigterm_after_ctrl_c_does_not_cut_the_saving_short(tmp_path, monkeypatch):
    """torchrun answers Ctrl+C by sending its workers SIGTERM while they write last.pt."""
    render, save = loop.SyntheticStream.__call__, loop._Run.save

    def interrupted_at_step_2(self, step):
        if step == 2:
            raise KeyboardInterrupt
        return render(self, step)

    def terminated_while_saving(self, path, training_state=True):
        if self.stopping:
            os.kill(os.getpid(), signal.SIGTERM)
        save(self, path, training_state)

    monkeypatch.setattr(loop.SyntheticStream, "__call__", interrupted_at_step_2)
    monkeypatch.setattr(loop._Run, "save", terminated_while_saving)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, checkpoint_every=100), echo=said.append)
    assert read_torch_file(tmp_path / "last.pt")["step"] == 2
    assert records(tmp_path, "end")[-1]["reason"] == "KeyboardInterrupt"
    assert "stopped at step 2 (Ctrl-C); state saved" in said[-1], said  # it said "(KeyboardInterrupt)"


def test_ctrl_c_again_while_last_pt_is_written_says_the_state_was_not_saved(tmp_path, monkeypatch):
    """A second Ctrl-C while train wrote last.pt stopped the write, and only "interrupted" was said: the older
    last.pt stayed, with nothing saying that the steps since were lost."""
    render, save = loop.SyntheticStream.__call__, loop._Run.save

    def interrupted_at_step_3(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return render(self, step)

    def interrupted_again_while_saving(self, path, training_state=True):
        if self.stopping:
            raise KeyboardInterrupt  # the second Ctrl-C, as the checkpoint is written
        save(self, path, training_state)

    monkeypatch.setattr(loop.SyntheticStream, "__call__", interrupted_at_step_3)
    monkeypatch.setattr(loop._Run, "save", interrupted_again_while_saving)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, steps=4, checkpoint_every=2), echo=said.append)
    last = tmp_path / "last.pt"
    assert read_torch_file(last)["step"] == 2
    assert said[-1] == (
        f"stopped at step 3 (Ctrl-C) without saving its state: {last} holds step 2 "
        f"(continue from there with --resume {last})"
    ), said


def _signalled_after_the_forward_pass(monkeypatch, step, times=1):
    """Ctrl-C (``times`` over) between the forward pass and the update of 0-based ``step``."""
    from rtstereo.train import step as step_module

    loss, calls = step_module.multiscale_loss, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == step + 1:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return loss(*args, **kwargs)

    monkeypatch.setattr(step_module, "multiscale_loss", interrupted)


def test_ctrl_c_during_a_step_ends_it_before_stopping_so_a_resumed_run_is_the_uninterrupted_one(
    tmp_path, monkeypatch, three_steps
):
    """Ctrl-C after step 2's forward pass: last.pt held step 1 with the batch-norm statistics step 2 had moved, and
    the resumed run trained step 2 again (one more update of each statistic than the uninterrupted run)."""
    _signalled_after_the_forward_pass(monkeypatch, step=1)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, val_every=2, checkpoint_every=100), echo=quiet)
    assert read_torch_file(tmp_path / "last.pt")["step"] == 2  # the step was finished, then the run stopped
    monkeypatch.undo()
    train(resolve_config(flag_values={"resume": str(tmp_path / "last.pt")}), echo=quiet)
    resumed = read_torch_file(tmp_path / "last.pt")["state_dict"]
    straight = read_torch_file(three_steps[0] / "last.pt")["state_dict"]
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-5, rtol=1e-4, msg=key)


def test_a_second_ctrl_c_cuts_a_step_short(tmp_path, monkeypatch):
    _signalled_after_the_forward_pass(monkeypatch, step=1, times=2)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, checkpoint_every=100), echo=quiet)
    assert read_torch_file(tmp_path / "last.pt")["step"] == 1
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_checkpoint_the_disk_cannot_hold_stops_the_run_in_one_line(tmp_path, monkeypatch, capsys):
    """A full disk at the write of last.pt was a traceback, twice over (the state is written again as the run stops)."""
    import errno

    save = loop.save_checkpoint

    def full(path, *args, **kwargs):
        if Path(path).name == "last.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        save(path, *args, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", full)
    out = tmp_path / "run"
    argv = ["train", "-o", str(out), "--steps", "2", "--crop", "64x128", "--batch-size", "2", "--max-disp", "32"]
    argv += ["--val-size", "2", "--val-hw", "64x128", "--threads", "1", "--checkpoint-every", "1", "--val-every", "5"]
    assert main(argv) == 1  # a full disk, not a usage error
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == [
        "rtstereo train: stopped at step 1 (OutputError) without saving its state",
        f"rtstereo train: error: cannot write the checkpoint {out / 'last.pt'}: No space left on device",
    ], err
    (tmp_path / "log.jsonl").mkdir()
    with pytest.raises(OutputError, match="^cannot write the run's log .*log.jsonl: Is a directory$"):
        loop._append_log(tmp_path / "log.jsonl", {"kind": "val"})


def test_compile_on_a_cpu_without_a_cpp_compiler_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    """It failed in the first step, a minute later, with inductor's traceback and a run folder to resume."""
    from torch._inductor import cpp_builder, exc

    def no_compiler():
        raise exc.InvalidCxxCompiler

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    code = main(["train", "-o", str(tmp_path / "run"), "--steps", "1", "--crop", "64x96", "--compile"])
    err = capsys.readouterr().err
    said = "--compile: torch.compile on a CPU builds C++ kernels, and no working C++ compiler was found"
    assert code == 2 and err.startswith(f"rtstereo train: error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("prefetch", [None, True])
def test_batches_are_made_ahead_on_a_cpu_only_when_asked(tmp_path, monkeypatch, prefetch):
    """On a CPU the batch thread competes with the step for the cores (rtstereo.train.prefetch): by
    default there is none; asked for, every batch is made on it."""
    makers: list[str] = []
    stream_batch = loop._Run.batch

    def batch(self, step):
        makers.append(threading.current_thread().name)
        return stream_batch(self, step)

    monkeypatch.setattr(loop._Run, "batch", batch)
    lines: list[str] = []
    train(tiny_config(tmp_path, prefetch=prefetch), echo=lines.append)
    ahead = prefetch is True
    assert len(makers) == 3 and all(name.startswith("rtstereo-prefetch") == ahead for name in makers), makers
    assert records(tmp_path, "start")[0]["prefetch"] is ahead
    header = next(line for line in lines if line.startswith("training "))
    assert ("batches made ahead" in header) is ahead, header


def test_bf16_autocast_runs_on_cpu(tmp_path):
    summary = train(tiny_config(tmp_path, steps=1, precision="bf16"), echo=quiet)
    assert summary["step"] == 1
    assert records(tmp_path, "start")[0]["precision"] == "bf16"
    weights = read_torch_file(tmp_path / "last.pt")["state_dict"]
    # A step whose bf16 gradients came out non-finite is skipped: the weights stay finite either way.
    assert all(torch.isfinite(v).all() for v in weights.values() if v.dtype.is_floating_point)


def test_init_fine_tunes_with_the_checkpoint_architecture(tmp_path, three_steps):
    source = three_steps[0] / "best.pt"
    config = tiny_config(tmp_path, init=str(source), settings={}, model="anynet", steps=1)
    train(config, echo=quiet)
    start = records(tmp_path, "start")[0]
    assert start["step"] == 0 and start["model"] == "rtnet"  # the file names the architecture
    assert start["settings"] == {"max_disp": 32, "half_refinement": False, "full_refinement": False, "guided": False}
    source_epe = {r["step"]: r["epe"] for r in records(three_steps[0], "val")}[three_steps[1]["best"]["step"]]
    assert records(tmp_path, "val")[0]["epe"] == pytest.approx(source_epe, rel=1e-5)


@pytest.mark.parametrize("flag", ["--init", "--resume"])
def test_cli_refuses_a_model_other_than_the_checkpoints(tmp_path, capsys, three_steps, flag):
    """The architecture comes from the checkpoint: --model anynet trained rtnet without a word."""
    source = three_steps[0] / ("best.pt" if flag == "--init" else "last.pt")
    code = main(["train", flag, str(source), "--model", "anynet", "-o", str(tmp_path / "run"), "--steps", "9"])
    err = capsys.readouterr().err
    said = f"--model anynet: {flag} {source} is a checkpoint of rtnet, and the run takes the architecture from it"
    assert code == 2 and err.startswith(f"rtstereo train: error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_init_with_a_setting_the_weights_cannot_take_fails(tmp_path, three_steps):
    config = tiny_config(tmp_path, init=str(three_steps[0] / "best.pt"), settings={"max_disp": 64}, steps=1)
    with pytest.raises(CheckpointError, match="another shape"):
        train(config, echo=quiet)


def test_init_adds_a_stage_and_trains_only_the_unfrozen_weights(tmp_path, three_steps):
    source = three_steps[0] / "best.pt"
    frozen = ("encoder", "match", "aggregation", "refinement")
    config = tiny_config(
        tmp_path,
        init=str(source),
        settings={"half_refinement": True},
        freeze=",".join(frozen),
        loss_weights=(0.0, 0.0, 1.0),
        steps=2,
    )
    lines = []
    train(config, echo=lines.append)
    assert any("no weights for half_refinement" in line for line in lines)
    before = read_torch_file(source)["state_dict"]
    after = read_torch_file(tmp_path / "last.pt")
    assert after["settings"] == {"max_disp": 32, "half_refinement": True, "full_refinement": False, "guided": False}
    assert after["config"]["freeze"] == list(frozen)
    state = after["state_dict"]
    for name, tensor in before.items():  # weights and batch-norm statistics alike
        torch.testing.assert_close(state[name], tensor, msg=f"frozen {name} changed")
    fresh = build_rtnet({"max_disp": 32, "half_refinement": True}).state_dict()
    trained = [k for k in state if k.startswith("half_refinement.") and not torch.equal(state[k], fresh[k])]
    assert "half_refinement.residual.weight" in trained


@pytest.mark.parametrize(
    "freeze, message",
    [
        ("encoder,decoder", "no parameter of the network starts with 'decoder'"),
        ("encoder,match,aggregation,refinement", "nothing would train"),
        ([3], "prefixes"),
    ],
)
def test_freeze_must_name_some_but_not_all_weights(tmp_path, freeze, message):
    with pytest.raises(InputError, match=message):
        train(tiny_config(tmp_path, freeze=freeze, steps=1), echo=quiet)


def _write_kitti_like(folder, count=2, height=40, width=70):
    rng = np.random.default_rng(0)
    for sub in ("colored_0", "colored_1", "disp_occ", "disp_noc"):
        (folder / sub).mkdir(parents=True)
    for i in range(count):
        name = f"{i:06d}_10.png"
        wide = rng.integers(0, 256, (height, width + 6, 3), np.uint8)
        cv2.imwrite(str(folder / "colored_0" / name), wide[:, 6:])
        cv2.imwrite(str(folder / "colored_1" / name), wide[:, :width])
        gt = np.full((height, width), 6 * 256, np.uint16)
        gt[:, :10] = 0  # unknown
        cv2.imwrite(str(folder / "disp_occ" / name), gt)
        cv2.imwrite(str(folder / "disp_noc" / name), gt)


def test_trains_and_validates_on_a_dataset_folder(tmp_path):
    data = tmp_path / "kitti"
    _write_kitti_like(data)
    cv2.imwrite(str(data / "colored_0" / "000009_10.png"), np.zeros((40, 60, 3), np.uint8))  # no right image
    with pytest.warns(UserWarning, match=r"1 pair left out: kitti/000009 \(the right image .* is missing\)"):
        summary = train(tiny_config(tmp_path / "run", data=str(data), val_data=str(data), steps=1), echo=quiet)
    assert summary["step"] == 1
    assert "2 pairs from" in records(tmp_path / "run", "start")[0]["data"]
    assert records(tmp_path / "run", "val")[0]["pixels"] == 2 * 40 * 60


def test_pairs_without_ground_truth_are_left_out_with_a_word(tmp_path):
    """A frame whose disparity map is missing was dropped unsaid: "2 pairs from" a folder of 3."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=3)
    for sub in ("disp_occ", "disp_noc"):
        (data / sub / "000001_10.png").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(tiny_config(tmp_path / "run", data=str(data), val_data=str(data), steps=1), echo=quiet)
    said = [str(w.message) for w in caught if "without ground truth" in str(w.message)]
    assert said == [f"{data}: 1 pair without ground truth left out: kitti/000001"] * 2, said  # training, validation
    assert "2 pairs from" in records(tmp_path / "run", "start")[0]["data"]


def test_a_training_folder_without_ground_truth_says_where_such_pairs_go(tmp_path):
    """A folder of real pairs without ground truth said only 'fine-tuning needs it': --unlabeled takes them."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)
    for path in data.glob("disp_*/*.png"):
        path.unlink()
    said = rf"^no pairs with ground-truth disparity under {re.escape(str(data))}; --data needs it: its 2 pairs "
    with pytest.raises(DatasetError, match=said + "without it can train as --unlabeled pairs, which SGBM labels"):
        train(tiny_config(tmp_path / "run", data=str(data), steps=1), echo=quiet)


def test_a_crop_larger_than_the_training_pairs_is_said_once(tmp_path):
    data = tmp_path / "kitti"
    _write_kitti_like(data, height=40, width=70)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(tiny_config(tmp_path / "run", data=str(data), steps=2), echo=quiet)
    said = [str(w.message) for w in caught if "smaller than the" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("training pair kitti/0000")
    assert (
        "is 40x70, smaller than the 64x128 crop: its crops are padded with pixels that have no label (66 %" in said[0]
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*smaller than the")
        train(tiny_config(tmp_path / "fits", data=str(data), steps=1, crop_hw=(32, 64)), echo=quiet)


def test_a_folder_of_damaged_training_pairs_stops_the_run_naming_the_pair_not_a_setting(tmp_path):
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=1)
    (data / "colored_0" / "000000_10.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    lines = []
    said = r"^training pair kitti/000000: cannot read .*colored_0.*; no training pair under .*kitti can be read$"
    with pytest.raises(DatasetError, match=said):
        train(tiny_config(tmp_path / "run", data=str(data), steps=1), echo=lines.append)
    assert "repair or remove the pair the error names, then continue with --resume" in lines[-1]


def test_a_damaged_training_pair_is_left_out_with_a_word_and_the_run_goes_on(tmp_path):
    """One damaged image stopped the run when its turn came, at any step of a run of days."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=3)
    (data / "colored_0" / "000001_10.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    config = tiny_config(tmp_path / "run", data=str(data), steps=4, crop_hw=(32, 64), checkpoint_every=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train(config, echo=quiet)["step"] == 4
    said = [str(w.message) for w in caught if "left out of this run" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("training pair kitti/000001: cannot read "), said
    assert said[0].endswith("; left out of this run, its crops taken from the next pair")
    stream = loop.FolderStream(config, torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = [stream(step)["disparity"] for step in range(4)]
        again = loop.FolderStream(config, torch.device("cpu"))  # a resumed run: the same crops in its place
        assert all(torch.equal(again(step)["disparity"], batch) for step, batch in reversed(list(enumerate(batches))))


def test_a_training_pair_whose_maps_differ_in_size_is_left_out_naming_the_file(tmp_path):
    """A disparity map cut shorter than its image: a traceback of torch.stack mid-run, naming no file."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)
    cv2.imwrite(str(data / "disp_occ" / "000001_10.png"), np.full((30, 70), 6 * 256, np.uint16))
    said = r"^training pair kitti/000001: ground truth .*disp_occ.000001_10.png is 30x70 but the left image .* is 40x70"
    with pytest.warns(UserWarning, match=said):
        train(tiny_config(tmp_path / "run", data=str(data), steps=4, crop_hw=(32, 64)), echo=quiet)


def test_a_validation_pair_whose_views_differ_in_size_is_refused_before_the_run(tmp_path):
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)
    cv2.imwrite(str(data / "colored_1" / "000000_10.png"), np.zeros((40, 60, 3), np.uint8))
    said = r"^validation pair kitti/000000: right image .*colored_1.000000_10.png is 40x60 but the left image .* 40x70"
    with pytest.raises(DatasetError, match=said):
        train(tiny_config(tmp_path / "run", val_data=str(data), steps=1), echo=quiet)
    assert not (tmp_path / "run").exists()


def test_a_validation_folder_without_a_pixel_to_score_is_refused(tmp_path):
    """Ground truth unknown (0) everywhere, or beyond the network's range: every validation scored EPE 0.000."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)
    for path in data.glob("disp_*/*.png"):
        cv2.imwrite(str(path), np.full((40, 70), 40 * 256, np.uint16))  # 40 px, beyond max_disp 32
    cv2.imwrite(str(data / "disp_occ" / "000000_10.png"), np.zeros((40, 70), np.uint16))
    said = rf"^no pixel of the ground truth under {re.escape(str(data))} is known and inside the network's disparity "
    with pytest.raises(DatasetError, match=said + r"range \(0 to 32 px\): there is nothing to validate on$"):
        train(tiny_config(tmp_path / "run", val_data=str(data), steps=1), echo=quiet)
    assert not (tmp_path / "run").exists()


def test_ground_truth_beyond_the_network_range_is_said_for_validation_and_training(tmp_path):
    """--max-disp below the data's disparities: the loss and the validation left those pixels out unsaid, and the
    validation EPE was not eval's on the same folder (a run at 64 px said 15.8 px where eval said 52.4)."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)  # 6 px, unknown in the first 10 columns
    gt = np.full((40, 70), 6 * 256, np.uint16)
    gt[:, :10], gt[:, 60:] = 0, 40 * 256  # 10 of 60 known columns at 40 px, beyond max_disp 32
    cv2.imwrite(str(data / "disp_occ" / "000001_10.png"), gt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(tiny_config(tmp_path / "run", data=str(data), val_data=str(data), steps=2), echo=quiet)
    said = [str(w.message) for w in caught if "beyond" in str(w.message)]
    assert said[0] == (
        f"{data}: 8.3 % of the known ground-truth pixels lie at or beyond the network's range (32 px); validation "
        "leaves them out (eval scores them)"
    )
    assert said[1:] == [
        "training pair kitti/000001: 16.7 % of its known disparities lie at or beyond the network's range (32 px), "
        "which the loss leaves out, in this pair and every other"
    ], said


def test_a_warm_up_longer_than_the_run_is_said(tmp_path):
    """--steps 200 of fine-tuning with the default 500 warm-up steps trained at 40 % of --lr at most, unsaid."""
    with pytest.warns(
        UserWarning,
        match=r"^--warmup-steps 5 is more than --steps 2: the learning rate rises for the "
        r"whole run and reaches 0.0004, not --lr 0.001; give fewer warm-up steps to train at --lr$",
    ):
        train(tiny_config(tmp_path / "long", steps=2, warmup_steps=5), echo=quiet)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*warmup")
        train(tiny_config(tmp_path / "fits", steps=2, warmup_steps=2), echo=quiet)


def test_a_training_pair_without_a_known_disparity_is_named_once(tmp_path):
    """Maps of zeros (or x_right - x_left, or beyond the range): a loss of 0 at every step, unsaid."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=3)
    cv2.imwrite(str(data / "disp_occ" / "000001_10.png"), np.zeros((40, 70), np.uint16))
    cv2.imwrite(str(data / "disp_occ" / "000002_10.png"), np.full((40, 70), 40 * 256, np.uint16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(tiny_config(tmp_path / "run", data=str(data), steps=6, crop_hw=(32, 64)), echo=quiet)
    said = sorted(str(w.message) for w in caught if "teaches nothing" in str(w.message))
    assert said == [
        f"training pair kitti/000001: its ground truth {data / 'disp_occ' / '000001_10.png'} has no known disparity "
        "above 0 (0 or unknown everywhere, or negative: x_right - x_left?), so it teaches nothing",
        f"training pair kitti/000002: its ground truth {data / 'disp_occ' / '000002_10.png'} has no known disparity "
        "inside the network's range (below 32 px), so it teaches nothing",
    ]


def test_a_learning_curve_of_zero_losses_is_drawn_without_a_warning(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"kind": "train", "step": s, "loss": 0.0}) + "\n" for s in (1, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loop.plot_learning_curve(log, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes().startswith(PNG_SIGNATURE)


def test_validation_pairs_are_read_at_each_validation_not_held_for_the_run(tmp_path):
    """Held as tensors on the training device for the whole run, a KITTI split took 2.6 GB of it."""
    data = tmp_path / "kitti"
    _write_kitti_like(data, count=2)
    batches = loop.validation_batches(TrainConfig(val_data=str(data)), torch.device("cpu"), 32.0)
    assert len(batches) == 2 and float(next(iter(batches))["disparity"].nan_to_num().max()) == 6.0
    cv2.imwrite(str(data / "disp_occ" / "000000_10.png"), np.full((40, 70), 9 * 256, np.uint16))
    assert [float(b["disparity"].nan_to_num().max()) for b in batches] == [9.0, 6.0]
    (data / "colored_1" / "000001_10.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    with pytest.raises(DatasetError, match=r"^validation pair kitti/000001: cannot read .*colored_1"):
        list(batches)


def test_random_crop_pads_small_images_with_unknown_disparity():
    left = np.zeros((10, 20, 3), np.uint8)
    gt = np.full((10, 20), 5.0, np.float32)
    gt[0, 0] = np.nan
    crop = loop.random_crop(left, left, gt, None, (16, 32), np.random.default_rng(0))
    assert crop["left"].shape == (3, 16, 32) and crop["disparity"].shape == (16, 32)
    assert float(crop["disparity"][10:, :].abs().sum()) == 0 and float(crop["disparity"][0, 0]) == 0
    assert float(crop["disparity"][5, 5]) == 5.0 and not crop["occluded"].any()


def test_random_crop_cuts_every_map_at_one_window():
    rows, cols = np.mgrid[0:40, 0:60]
    left = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)  # each pixel names its place
    right = left.copy()
    right[..., 2] = 7
    gt = (1 + rows + cols / 100).astype(np.float32)
    nonocc = (rows + cols) % 3 != 0
    hints = (2 + cols + rows / 100).astype(np.float32)
    seen = set()
    for seed in range(8):
        crop = loop.random_crop(left, right, gt, nonocc, (16, 24), np.random.default_rng(seed), hints)
        y0, x0 = round(float(crop["left"][0, 0, 0]) * 255), round(float(crop["left"][1, 0, 0]) * 255)
        window = (slice(y0, y0 + 16), slice(x0, x0 + 24))
        torch.testing.assert_close(crop["right"], torch.from_numpy(right[window]).permute(2, 0, 1).float() / 255)
        assert torch.equal(crop["disparity"], torch.from_numpy(gt[window]))
        assert torch.equal(crop["occluded"], torch.from_numpy(~nonocc[window]))
        assert torch.equal(crop["hints"], torch.from_numpy(hints[window])[None])
        seen.add((y0, x0))
    assert len({y for y, _ in seen}) > 1 and len({x for _, x in seen}) > 1


# ------------------------------------------------------------------------------------ exceptions
@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--val-hw", "96x128"], "--val-hw: 96x128 validates on another set than the run of {} did (64x128)"),
        (["--noise-scale", "0.5"], "--noise-scale: 0.5 validates on another set than the run of {} did (1)"),
        (["--loss-region", "matchable"], "--loss-region: matchable validates on another set than the run of {} did"),
        (["--set", "half_refinement=true"], "--set half_refinement: True would change the network of {}"),
        (["--max-disp", "64"], "--max-disp: 64 would change the network of {} (max_disp 32 there)"),
    ],
)
def test_resume_refuses_another_validation_set_or_settings_that_would_change_the_network(
    tmp_path, capsys, three_steps, flags, said
):
    """best.pt was kept only if it beat a score measured on the run's own validation set, now another one; settings
    of the network were dropped without a word, and the run went on with the checkpoint's network."""
    source = three_steps[0] / "last.pt"
    code = main(["train", "--resume", str(source), "--steps", "4", "-o", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"rtstereo train: error: {said.format(source)}"), err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--init", "--resume"])
def test_a_registry_name_for_init_or_resume_says_where_its_weights_are(tmp_path, capsys, monkeypatch, flag):
    """`--init rtnet-v5` read "weights file not found: rtnet-v5"; adapt takes that name, train takes its state file."""
    monkeypatch.chdir(tmp_path)  # no file of that name here
    code = main(["train", flag, "rtnet-v5", "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err
    said = "rtnet-v5 is a registry name, not a checkpoint file; --init and --resume take checkpoints written by"
    assert code == 2 and err.startswith(f"rtstereo train: error: {said}"), err
    assert "rtnet-v5's PyTorch state is " in err and err.rstrip().endswith(str(Path("training", "default", "state.pt")))
    code = main(["train", flag, "no-such-name", "-o", str(tmp_path / "run")])
    assert code == 2 and "weights file not found: no-such-name" in capsys.readouterr().err


def test_resume_needs_a_training_step(tmp_path):
    from rtstereo.models.checkpoint import save_checkpoint

    path = tmp_path / "weights.pt"
    save_checkpoint(path, "rtnet", {"max_disp": 32}, build_rtnet({"max_disp": 32}).state_dict())
    config = tiny_config(tmp_path, resume=str(path))
    with pytest.raises(CheckpointError, match="no training step"):
        train(config, echo=quiet)


def test_resume_from_a_compact_state_restarts_only_the_optimiser(tmp_path):
    from rtstereo.train.loop import compact_checkpoint

    train(tiny_config(tmp_path, steps=2), echo=quiet)
    state = compact_checkpoint(tmp_path / "last.pt", tmp_path / "kept" / "state.pt")
    kept = read_torch_file(state)
    assert "optimizer" not in kept and kept["step"] == 2
    assert state.stat().st_size < (tmp_path / "last.pt").stat().st_size / 2
    notes = []
    config = resolve_config(flag_values={"resume": str(state), "steps": 3, "out_dir": str(tmp_path / "next")})
    summary = train(config, echo=notes.append)
    assert summary["step"] == 3 and any("moments restart at step 2" in n for n in notes)
    assert [r["step"] for r in records(tmp_path / "next", "train")] == [3]


def test_init_needs_an_rtstereo_checkpoint(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(build_rtnet({"max_disp": 32}).state_dict(), path)
    with pytest.raises(CheckpointError, match="not an rtstereo checkpoint"):
        train(tiny_config(tmp_path, init=str(path)), echo=quiet)


@pytest.mark.parametrize("flag", ["init", "resume"])
def test_an_onnx_file_to_start_from_is_named_as_one(tmp_path, flag):
    """It was called "not a PyTorch file (a plain pickle, or damaged)", as if the user's file were broken."""
    onnx = Path(__file__).parents[2] / "src" / "rtstereo" / "weights" / "rtnet-v5.onnx"
    with pytest.raises(CheckpointError, match="rtnet-v5.onnx: an ONNX model, made for inference, not a PyTorch file"):
        train(resolve_config(flag_values={flag: str(onnx), "out_dir": str(tmp_path / "run")}), echo=quiet)


def test_init_with_weights_of_other_shapes_fails(tmp_path):
    path = tmp_path / "wrong.pt"
    save_checkpoint(path, "rtnet", {"max_disp": 32}, {"encoder.to_half.0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="missing"):
        train(tiny_config(tmp_path, init=str(path)), echo=quiet)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crop_hw": (60, 128)}, "multiples of 32"),
        ({"precision": "fp16"}, "needs a CUDA device"),
        ({"device": "tpu"}, "unknown device|cpu or cuda"),
        ({"model": "sgbm"}, "classical"),
        ({"loss_weights": (1.0,)}, "returns 2 predictions"),
    ],
)
def test_bad_run_options_are_refused(tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        train(tiny_config(tmp_path, **changes), echo=quiet)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused(tmp_path):
    with pytest.raises(InputError, match="no CUDA GPU"):
        train(tiny_config(tmp_path, device="cuda"), echo=quiet)


def test_a_gpu_index_beyond_those_present_is_refused(monkeypatch):
    # train, adapt and synth resolve their --device here; cuda:1 on a one-GPU machine was accepted
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"^--device cuda:1: PyTorch sees 1 CUDA GPU, cuda:0$"):
        loop.resolve_device("cuda:1")
    assert loop.resolve_device("cuda:0") == torch.device("cuda:0")
    assert loop.resolve_device("cuda") == torch.device("cuda")


def test_auto_precision_on_a_gpu_is_bf16_from_compute_capability_8_of_the_runs_gpu(monkeypatch):
    """torch.cuda.is_bf16_supported() asks the current GPU (not cuda:1), and is true on a V100 or T4 too, where bf16
    is emulated: auto picked bf16 there, where the docstring promises fp16."""
    asked = []
    capabilities = {0: (9, 0), 1: (7, 5)}  # an H100 beside a T4

    def capability(device):
        asked.append(device)
        return capabilities[torch.device(device).index]

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert loop.autocast_dtype("auto", torch.device("cuda:1")) == torch.float16
    assert loop.autocast_dtype("auto", torch.device("cuda:0")) == torch.bfloat16
    assert asked == [torch.device("cuda:1"), torch.device("cuda:0")]
    assert loop.autocast_dtype("auto", torch.device("cpu")) is None


def test_dataset_folder_without_a_known_layout_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"^no stereo dataset of a known layout under .*empty \(known: "):
        train(tiny_config(tmp_path, data=str(tmp_path / "empty")), echo=quiet)


# ------------------------------------------------------------------------------- configuration
def test_config_files_yaml_and_json(tmp_path):
    (tmp_path / "c.yaml").write_text("steps: 7\ncrop_hw: [64, 128]\nsettings: {max_disp: 64}\n")
    (tmp_path / "c.json").write_text(json.dumps({"steps": 7, "crop_hw": "64x128", "settings": {"max_disp": 64}}))
    yaml_config = resolve_config(read_config_file(tmp_path / "c.yaml"))
    json_config = resolve_config(read_config_file(tmp_path / "c.json"))
    assert yaml_config == json_config
    assert yaml_config.steps == 7 and yaml_config.crop_hw == (64, 128) and yaml_config.settings == {"max_disp": 64}
    (tmp_path / "empty.yaml").write_text("")
    assert resolve_config(read_config_file(tmp_path / "empty.yaml")) == TrainConfig()


def test_a_yaml_config_reads_numbers_with_an_exponent_as_the_flags_do(tmp_path):
    """PyYAML reads YAML 1.1, where `lr: 1e-3` is text: the config was refused ("got '1e-3'") while --lr 1e-3 is
    taken. Quoted values stay text, and are refused as before."""
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 5E-5\ngrad_clip: 1.5e0\nsteps: 7\n")
    config = resolve_config(read_config_file(tmp_path / "c.yaml"))
    assert (config.lr, config.weight_decay, config.grad_clip, config.steps) == (1e-3, 5e-5, 1.5, 7)
    (tmp_path / "q.yaml").write_text("lr: '1e-3'\n")
    with pytest.raises(InputError, match="'lr': expected a finite number >= 0, got '1e-3'"):
        resolve_config(read_config_file(tmp_path / "q.yaml"))


def test_train_takes_fp32_as_the_other_verbs_do_and_precision_off_from_a_yaml_file(tmp_path):
    """`train --precision fp32`, the word of predict, bench and the rest for full precision, was an invalid choice;
    `precision: off` in a YAML file, the value train's --help names, was read as false and refused."""
    from rtstereo.cli import build_parser
    from rtstereo.cli.train import flag_values

    args = build_parser().parse_args(["train", "--precision", "fp32"])
    assert resolve_config({}, flag_values(args)).precision == "off"
    (tmp_path / "c.yaml").write_text("precision: off\n")
    assert resolve_config(read_config_file(tmp_path / "c.yaml")).precision == "off"
    assert TrainConfig(precision="fp32") == TrainConfig(precision="off")
    with pytest.raises(InputError, match="'precision': expected one of auto, off, bf16, fp16, got True"):
        TrainConfig(precision=True)  # YAML's `on`: no precision of its own


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        (
            "c.yaml",
            "steps: 3\nlr: 0.1\nsteps: 4\n",
            "c.yaml: not valid YAML: 'steps' is given twice, the second time at line 3",
        ),
        ("c.yaml", "settings: {max_disp: 64, max_disp: 32}\n", "'max_disp' is given twice, the second time at line 1"),
        ("c.json", '{"steps": 3, "steps": 4}', "c.json: not valid JSON: 'steps' is given twice"),
    ],
)
def test_a_config_file_giving_a_key_twice_is_refused(tmp_path, name, text, said):
    """The last value was taken without a word, and one of the two is a mistake."""
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=re.escape(said)):
        read_config_file(tmp_path / name)


def test_a_yaml_merge_key_may_be_overridden(tmp_path):
    (tmp_path / "c.yaml").write_text("base: &b {steps: 3, lr: 0.1}\nrun:\n  <<: *b\n  steps: 4\n")
    assert read_config_file(tmp_path / "c.yaml")["run"] == {"steps": 4, "lr": 0.1}


def test_a_yaml_config_without_pyyaml_names_the_extra(tmp_path, monkeypatch):
    # was an InputError saying 'pip install pyyaml': a missing dependency names rtstereo's extra, as the others do
    import sys

    from rtstereo.errors import MissingDependencyError

    (tmp_path / "c.yaml").write_text("steps: 7\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"'yaml'.*pip install 'rtstereo\[torch\]', or give a .json"):
        read_config_file(tmp_path / "c.yaml")


def test_every_path_key_of_a_config_takes_a_file_url_as_the_command_line_does(tmp_path, three_steps, capsys):
    """A config's ``out_dir: file:///...`` was taken as a plain path (a folder named ``file:``), though ``-o`` turns a
    file URL into its path; ``data``, ``val_data``, ``init``... took none either, on the command line or in a file."""
    paths = {key: tmp_path / f"my {key}" for key in ("out_dir", "init", "data", "val_data")}
    config = resolve_config({key: path.as_uri() for key, path in paths.items()})
    assert {key: getattr(config, key) for key in paths} == {key: str(path) for key, path in paths.items()}
    config = resolve_config({}, {"unlabeled": f"file://localhost{tmp_path}/pairs", "out_dir": None})
    assert config.unlabeled == f"{tmp_path}/pairs" and config.out_dir == "runs/rtnet"
    last = three_steps[0] / "last.pt"
    config = resolve_config({"resume": last.as_uri()})
    assert config.resume == str(last) and config.out_dir == str(three_steps[0])
    with pytest.raises(InputError, match=r"^training config 'data': https://x.org/kitti: training reads and writes "):
        resolve_config({"data": "https://x.org/kitti"})
    with pytest.raises(InputError, match=r"^training config 'resume': file://host/r/last.pt: training reads"):
        resolve_config({"resume": "file://host/r/last.pt"})
    with pytest.raises(InputError, match=r"^training config 'init': file://: the URL names no path"):
        resolve_config({"init": "file://"})
    # the command line's flags alike, named as typed
    assert main(["train", "--steps", "1", "--data", "http://x.org/kitti", "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "rtstereo train: error: --data: http://x.org/kitti: training reads and writes local files, not URLs: give a "
        "path (or a file:///path URL)\n"
    ), err
    missing = tmp_path / "absent set"
    assert main(["train", "--steps", "1", "--data", missing.as_uri(), "-o", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"rtstereo train: error: --data: dataset folder not found: {missing}\n"


def test_flags_override_the_config_file():
    config = resolve_config({"steps": 7, "lr": 0.1}, {"steps": 9, "lr": None})
    assert config.steps == 9 and config.lr == 0.1


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("steps: [", ".yaml", "not valid YAML: expected the node content, .* at line 1, column 9"),
        ("{", ".json", "not valid JSON"),
        ("[1, 2]", ".json", "mapping"),
    ],
)
def test_bad_config_files_are_refused(tmp_path, text, suffix, message):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as refused:
        read_config_file(path)
    assert "\n" not in str(refused.value), str(refused.value)  # PyYAML's message spans several lines


def test_a_config_file_that_is_not_text_is_refused_in_one_line(tmp_path):
    """A binary file raised UnicodeDecodeError: a traceback, not a usage error."""
    (tmp_path / "c.yaml").write_bytes(b"\xff\xfe\x00 binary")
    with pytest.raises(InputError, match="c.yaml: cannot read the training config as UTF-8 text"):
        read_config_file(tmp_path / "c.yaml")


def test_missing_config_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_config_file(tmp_path / "absent.yaml")
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_config_file(tmp_path)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00steps: 1")
    with pytest.raises(InputError, match="cannot read the training config as UTF-8 text"):
        read_config_file(tmp_path / "binary.yaml")


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(InputError, match="did you mean batch_size"):
        resolve_config({"batch_sise": 4})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": 0}, "'steps'"),
        ({"batch_size": 2.5}, "'batch_size'"),
        ({"crop_hw": "64x"}, "'crop_hw'"),
        ({"crop_hw": [64, 128, 3]}, "'crop_hw'"),
        ({"lr": 0}, "'lr'"),
        ({"weight_decay": -1}, "'weight_decay'"),
        ({"seed": -1}, "'seed'"),
        ({"seed": 2**30}, r"'seed': expected a whole number below 2\^30 \(1073741824\), got 1073741824: the training"),
        ({"precision": "fp8"}, "'precision'"),
        ({"loss_weights": [0, 0]}, "'loss_weights'"),
        ({"loss_weights": "a,b"}, "'loss_weights'"),
        ({"data_max_disp": 0}, "'data_max_disp'"),
        ({"noise_scale": -1}, "'noise_scale'"),
        ({"settings": 192}, "'settings'"),
        ({"init": "a.pt", "resume": "b.pt"}, "not both"),
        ({"loss_region": "visible"}, "'loss_region'"),
        ({"prefetch": "yes"}, "'prefetch'"),
        ({"out_dir": 2024}, "'out_dir': expected a non-empty text"),
        ({"model": 3}, "'model'"),
        ({"device": 0}, "'device'"),
        ({"data": 3}, "'data': expected a path"),
        ({"val_hw": "10x10"}, r"'val_hw': at least 16 px each way, got 10x10"),
        ({"val_data": ["a"]}, "'val_data'"),
        ({"lr": math.inf}, "'lr'"),
        ({"noise_scale": math.nan}, "'noise_scale'"),
        ({"weight_decay": math.inf}, "'weight_decay'"),
        ({"data_max_disp": math.inf}, "'data_max_disp'"),
        ({"loss_weights": [math.nan, 1.0]}, "'loss_weights'"),
        ({"loss_weights": "inf,1"}, "'loss_weights'"),
    ],
)
def test_bad_option_values_are_refused(values, message):
    with pytest.raises(InputError, match=message):
        config_from_dict(values)


def test_a_resume_path_of_the_wrong_type_is_refused():
    with pytest.raises(InputError, match="'resume': expected a path"):
        resolve_config({"resume": 3})


# ----------------------------------------------------------------------------- losses, metrics
def test_loss_learns_only_from_valid_pixels():
    gt = torch.tensor([[[4.0, float("nan"), 40.0, 0.0]]])
    valid = valid_mask(gt, 32.0)
    assert valid.tolist() == [[[True, False, False, False]]]
    prediction = torch.tensor([[[6.0, 100.0, 100.0, 100.0]]], requires_grad=True)
    loss = multiscale_loss([prediction, prediction], gt, valid, [0.5, 1.0])
    assert float(loss.detach()) == pytest.approx(1.5 * 1.5)  # smooth-L1 of an error of 2 px is 1.5
    loss.backward()
    assert prediction.grad[0, 0, 1:].abs().sum() == 0


def test_matchable_region_leaves_out_the_left_band_only():
    gt = torch.tensor([[[3.0, 3.0, 3.0, 3.0, 9.0, 0.0, 4.0]]])  # x < d at x = 0, 1, 2 and at x = 4 (9 px)
    assert left_band(gt).tolist() == [[[True, True, True, False, True, False, False]]]
    assert training_mask(gt, 32.0).tolist() == valid_mask(gt, 32.0).tolist()
    assert training_mask(gt, 32.0, "matchable").tolist() == [[[False, False, False, True, False, False, True]]]
    with pytest.raises(InputError, match="loss region"):
        training_mask(gt, 32.0, "visible")


def test_validation_scores_the_loss_region():
    net = build_rtnet({"max_disp": 32})
    gt = torch.full((1, 64, 128), 20.0)
    batch = {"left": torch.rand(1, 3, 64, 128), "right": torch.rand(1, 3, 64, 128), "disparity": gt}
    spec = loop.get_spec("rtnet")
    everywhere = loop.validate(net, [batch], spec, 32.0)
    matchable = loop.validate(net, [batch], spec, 32.0, "matchable")
    assert everywhere["pixels"] == 64 * 128 and matchable["pixels"] == 64 * (128 - 20)


def test_loss_region_flag_reaches_the_config(tmp_path):
    from rtstereo.cli.train import flag_values

    args = _parser().parse_args(["train", "--loss-region", "matchable"])
    assert resolve_config(flag_values=flag_values(args)).loss_region == "matchable"
    assert resolve_config().loss_region == "all"
    summary = train(tiny_config(tmp_path, steps=1, loss_region="matchable"), echo=quiet)
    assert 0 < summary["last"]["pixels"] < 2 * 64 * 128  # the validation left the band out too
    assert json.loads((tmp_path / "config.json").read_text())["loss_region"] == "matchable"


def test_loss_refuses_mismatched_shapes():
    gt = torch.ones(1, 4, 4)
    with pytest.raises(InputError, match="differ in shape"):
        multiscale_loss([torch.ones(1, 4, 5)], gt, gt > 0, [1.0])


def test_metrics_count_broken_predictions_as_wrong():
    gt = torch.full((1, 2, 2), 10.0)
    prediction = torch.tensor([[[10.0, 11.5], [13.0, float("nan")]]])
    metrics = summarize_errors(batch_errors(prediction, gt, valid_mask(gt, 32.0)))
    assert metrics["epe"] == math.inf and metrics["bad-2"] == 50.0 and metrics["bad-1"] == 75.0
    assert metrics["bad-3"] == 25.0  # an error of exactly 3 px is not over 3 px; the nan is
    finite = summarize_errors(batch_errors(prediction[..., :1], gt[..., :1], valid_mask(gt[..., :1], 32.0)))
    assert finite["epe"] == pytest.approx(1.5) and finite["pixels"] == 2


def test_learning_rate_warms_up_then_decays_to_five_percent():
    config = TrainConfig(lr=1.0, warmup_steps=10, steps=110)
    assert loop.learning_rate(0, config) == pytest.approx(0.1)
    assert loop.learning_rate(10, config) == pytest.approx(1.0)
    assert loop.learning_rate(110, config) == pytest.approx(0.05)


def test_stream_seeds_are_distinct_and_apart_from_validation_seeds():
    seeds = {loop.stream_seed(seed, step) for seed in range(3) for step in range(1000)}
    assert len(seeds) == 3000 and min(seeds) >= 2**47 and max(seeds) < 2**48
    # run seeds 2**15 apart used to train on the same scenes
    wide = {loop.stream_seed(seed, step) for seed in (0, 2**15, 2**16, 2**30 - 1) for step in (0, 7)}
    assert len(wide) == 8 and max(wide) < 2**63
    # beyond 2**30 the streams repeat (seed 2**30 trained on the scenes of seed 0): such seeds are refused
    assert loop.stream_seed(2**30, 5) == loop.stream_seed(0, 5)


def test_learning_curve_survives_a_truncated_log(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"kind": "train", "step": 1, "loss": 3.0}\n{"kind": "val", "step": 1, "epe": 2.0, "bad-2": 30.0}\n{"kind": "tr'
    )
    loop.plot_learning_curve(log, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes().startswith(PNG_SIGNATURE)


def test_learning_curve_of_a_resumed_run_drops_the_steps_it_trained_again(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda self, path: drawn.append(self) or path.write_bytes(b""))
    lines = [
        {"kind": "start", "step": 0},
        *({"kind": "train", "step": s, "loss": 1.0} for s in (1, 2, 3)),
        {"kind": "val", "step": 3, "epe": 2.0, "bad-2": 30.0},  # then a crash; last.pt was written at step 2
        {"kind": "start", "step": 2},
        *({"kind": "train", "step": s, "loss": 0.5} for s in (3, 4)),
        {"kind": "val", "step": 4, "epe": 1.0, "bad-2": 20.0},
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    loop.plot_learning_curve(log, tmp_path / "curve.png")
    loss_axes, val_axes = drawn[0].axes[:2]
    assert list(loss_axes.lines[0].get_xdata()) == [1, 2, 3, 4] and list(loss_axes.lines[0].get_ydata())[2] == 0.5
    assert list(val_axes.lines[0].get_xdata()) == [4]


# ---------------------------------------------------------------------------------------- CLI
def _parser():
    from rtstereo.cli import train as train_verb

    parser = argparse.ArgumentParser()
    train_verb.register(parser.add_subparsers(dest="verb"))
    return parser


def test_cli_trains_from_a_config_file_and_flags(tmp_path, capsys):
    config = tiny_config(tmp_path / "run", steps=5).to_dict()
    (tmp_path / "train.json").write_text(json.dumps(config))
    args = _parser().parse_args(["train", "--config", str(tmp_path / "train.json"), "--steps", "1", "--crop", "64x96"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    # stdout carries the result line only; progress goes to stderr, each line named by the verb
    assert captured.out.startswith("done: step 1") and len(captured.out.splitlines()) == 1, captured.out
    assert "rtstereo train: training rtnet" in captured.err and "rtstereo train: step 1/1: loss" in captured.err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["crop_hw"] == [64, 96]


@pytest.mark.parametrize(
    ("flags", "said"), [(["--val-hw", "64x64"], "--val-hw shapes"), (["--val-size", "3"], "--val-size shapes")]
)
def test_cli_refuses_synthetic_validation_options_with_val_data(tmp_path, flags, said):
    argv = ["train", "-o", str(tmp_path / "run"), "--val-data", str(tmp_path), *flags]
    args = _parser().parse_args(argv)
    with pytest.raises(InputError, match=f"{said} the synthetic validation set, which --val-data .* replaces"):
        args.func(args)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--noise-scale", "0.5"], "--noise-scale shapes"),
        (["--data-max-disp", "10", "--noise-scale", "1"], "--data-max-disp and --noise-scale shape"),
    ],
)
def test_cli_refuses_rendering_options_when_no_scene_is_rendered(tmp_path, flags, said):
    """With --data and --val-data both, --noise-scale and --data-max-disp were taken and ignored."""
    argv = ["train", "-o", str(tmp_path / "run"), "--data", str(tmp_path), "--val-data", str(tmp_path), *flags]
    args = _parser().parse_args(argv)
    with pytest.raises(InputError, match=f"{said} the rendered scenes, and with --data .* none is rendered"):
        args.func(args)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--steps", "0"], "--steps: expected a positive whole number, got 0"),
        (["--crop", "64x100"], "--crop: rtnet trains on sizes that are multiples of 32, got 64x100; use e.g. 64x128"),
        (["--time-limit", "-1"], "--time-limit: expected a finite number >= 0, got -1.0"),
        (["--val-hw", "3"], "--val-hw: expected (height, width) in pixels, e.g. 256x512, got '3'"),
        (["--loss-weights", "a,b"], "--loss-weights: expected numbers, e.g. 0.5,1.0, got 'a,b'"),
        # as adapt --threads 0 (and predict's): torch's choice is the flag left out, not 0
        (["--threads", "0"], "--threads must be >= 1, got 0 (leave it out for torch's own choice)"),
        # as predict's: it was "rtnet: max_disp must be a positive multiple of 32 pixels, got 0", the registry's name
        (["--max-disp", "0"], "--max-disp must be >= 1, got 0"),
        (["--set", "max_disp=-32"], "--set max_disp must be >= 1, got -32"),
        (
            ["--max-disp", "64", "--set", "max_disp=96"],
            "--max-disp 64 and --set max_disp=96 disagree: give one of them",
        ),
        # refused by the network when it is built: the flag typed is named too
        (
            ["--max-disp", "40"],
            "--max-disp: rtnet needs a positive multiple of 32 pixels, got 40; round it up to the next "
            "multiple of 32 (64)",
        ),
        (
            ["--set", "max_disp=40"],
            "--set max_disp: rtnet needs a positive multiple of 32 pixels, got 40; round it up to "
            "the next multiple of 32 (64)",
        ),
        (
            ["--freeze", "nothing"],
            "--freeze: no parameter of the network starts with 'nothing' (it has: aggregation, encoder, match, "
            "refinement)",
        ),
    ],
)
def test_cli_errors_name_the_flag_typed_not_the_config_key(tmp_path, capsys, flags, said):
    code = main(["train", "-o", str(tmp_path / "run"), "--steps", "1", "--crop", "64x96", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err == f"rtstereo train: error: {said}\n", err


def test_cli_names_the_flag_of_a_setting_the_first_step_refuses(tmp_path, capsys):
    config = tiny_config(tmp_path / "run", steps=1).to_dict()
    (tmp_path / "train.json").write_text(json.dumps(config))
    code = main(["train", "-c", str(tmp_path / "train.json"), "--loss-weights", "1"])
    last = capsys.readouterr().err.splitlines()[-1]
    said = "--loss-weights: 1 weight, but the network returns 2 predictions in training mode; give 2 weights"
    assert code == 2 and last.startswith(f"rtstereo train: error: {said}"), last


def test_default_loss_weights_that_do_not_fit_an_init_network_say_they_are_the_default(tmp_path, capsys):
    """`--init` of a network with more predictions (a sub-pixel stage) read "training config 'loss_weights': 2 weights
    given", weights the user had given nowhere."""
    settings = {"max_disp": 32, "half_refinement": True}
    source = tmp_path / "half.pt"
    save_checkpoint(source, "rtnet", settings, build_rtnet(settings).state_dict())
    code = main(["train", "--init", str(source), "-o", str(tmp_path / "run"), "--steps", "1", "--crop", "64x96"])
    err = capsys.readouterr().err
    said = "--loss-weights left out, so its default 0.5,1.0: 2 weights, but the network returns 3 predictions"
    assert code == 2 and err.startswith(f"rtstereo train: error: {said}"), err
    assert not (tmp_path / "run").exists()


def test_a_wrong_count_of_loss_weights_is_refused_before_the_run_folder_is_made(tmp_path, capsys):
    """It was refused by the first step, after the run folder, its config and last.pt were written, with
    advice to resume from that last.pt."""
    code = main(["train", "-o", str(tmp_path / "run"), "--steps", "1", "--crop", "64x96", "--loss-weights", "1"])
    err = capsys.readouterr().err
    said = "--loss-weights: 1 weight, but the network returns 2 predictions in training mode; give 2 weights"
    assert code == 2 and err.startswith(f"rtstereo train: error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
    from rtstereo.train.loop import training_prediction_count

    class TwoViews(torch.nn.Module):  # batch norm and dropout: what a training-mode pass could disturb
        def __init__(self):
            super().__init__()
            self.norm, self.drop = torch.nn.BatchNorm2d(3), torch.nn.Dropout(0.5)

        def forward(self, left, right):
            return [self.drop(self.norm(left + right + 1.0))[:, 0]] * 3

    model = TwoViews().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    assert training_prediction_count(model, (8, 8), torch.device("cpu")) == 3
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), "the run's statistics moved"
    drawn = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(drawn, torch.rand(1)), "the pass drew from the run's random stream"


def test_a_crop_that_leaves_batch_norm_one_value_is_refused_in_one_line_and_a_batch_of_two_takes_it(tmp_path, capsys):
    """--crop 32x32: the probe of the predictions ran one pair, whose 1x1 coarsest level ended the run in torch's
    traceback ('Expected more than 1 value per channel when training'), at --batch-size 2 too, which trains."""
    from rtstereo.models.rtnet import build_rtnet
    from rtstereo.train.config import ConfigSettingError
    from rtstereo.train.loop import training_prediction_count

    code = main(["train", "-o", str(tmp_path / "run"), "--steps", "1", "--crop", "32x32", "--batch-size", "1"])
    err = capsys.readouterr().err
    said = "--crop: 32x32 at a batch of 1 pair leaves one value per channel at the network's coarsest level"
    assert code == 2 and err.startswith(f"rtstereo train: error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
    model = build_rtnet().train()
    assert training_prediction_count(model, (32, 32), torch.device("cpu"), batch_size=8) == 2
    with pytest.raises(ConfigSettingError, match="give a larger crop"):
        training_prediction_count(model, (32, 32), torch.device("cpu"))


def test_cli_errors_about_a_config_file_value_name_its_key(tmp_path, capsys):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"steps": 0}))
    code = main(["train", "-c", str(config), "-o", str(tmp_path / "run")])
    said = "error: training config 'steps': expected a positive whole number, got 0"
    assert code == 2 and said in capsys.readouterr().err
    # The file's crop refused by the network (after the config was read) keeps the key too; a flag's names the flag.
    config.write_text(json.dumps({"steps": 1, "crop_hw": [64, 100]}))
    code = main(["train", "-c", str(config), "-o", str(tmp_path / "run")])
    assert code == 2 and "error: training config 'crop_hw': rtnet trains on sizes" in capsys.readouterr().err
    code = main(["train", "-c", str(config), "--steps", "-3", "-o", str(tmp_path / "run")])
    assert code == 2 and "error: --steps: expected a positive whole number, got -3" in capsys.readouterr().err


def test_cli_last_line_names_only_the_files_written(tmp_path, capsys):
    config = tiny_config(tmp_path / "run", steps=1).to_dict()
    (tmp_path / "train.json").write_text(json.dumps(config))
    args = _parser().parse_args(["train", "--config", str(tmp_path / "train.json")])
    assert args.func(args) == 0
    run = tmp_path / "run"
    assert f"checkpoints {run / 'last.pt'} and {run / 'best.pt'}" in capsys.readouterr().out
    # Resumed into another folder with nothing left to train: last.pt is written there, best.pt is not.
    args = _parser().parse_args(["train", "--resume", str(run / "last.pt"), "-o", str(tmp_path / "other")])
    assert args.func(args) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.endswith(f"; checkpoint {tmp_path / 'other' / 'last.pt'}"), last_line
    assert not (tmp_path / "other" / "best.pt").exists()


def test_help_examples_show_a_continued_command_on_two_lines(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--help"])
    out = capsys.readouterr().out
    assert "--freeze encoder,match,aggregation,refinement \\\n      --loss-weights 0,0,1" in out


def test_help_states_the_defaults_the_config_has():
    """--crop said only "e.g. 256x512"; every default --help states is TrainConfig's."""
    (verb,) = _parser()._subparsers._group_actions[0].choices.values()
    config, checked = TrainConfig(), set()
    for action in verb._actions:
        said = (
            re.match(r"(\S+?)[);]", action.help.split("(default: ")[1]) if "(default: " in (action.help or "") else None
        )
        if said is None or not hasattr(config, action.dest):
            continue
        value, text = getattr(config, action.dest), said.group(1)
        if isinstance(value, tuple):
            expected = tuple(type(value[0])(v) for v in re.split("[x,]", text))
        else:
            expected = type(value)(text)
        assert expected == value, f"{action.option_strings[0]}: --help says {text}, TrainConfig has {value}"
        checked.add(action.dest)
    assert {"crop_hw", "val_hw", "lr", "steps", "loss_weights", "out_dir", "seed"} <= checked, checked


def test_unlabeled_per_batch_without_unlabeled_pairs_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "train", lambda *args, **kwargs: pytest.fail("the run should not start"))
    args = _parser().parse_args(["train", "-o", str(tmp_path / "run"), "--unlabeled-per-batch", "2"])
    with pytest.raises(InputError, match="--unlabeled-per-batch takes pairs from --unlabeled DIR"):
        args.func(args)
    assert not (tmp_path / "run").exists()


def test_noise_scale_flag_reaches_the_config():
    args = _parser().parse_args(["train", "--noise-scale", "0.35"])
    from rtstereo.cli.train import flag_values

    assert flag_values(args)["noise_scale"] == 0.35
    assert resolve_config(flag_values={"noise_scale": 0.35}).noise_scale == 0.35
    assert resolve_config().noise_scale == 1.0


def test_cli_set_values_become_model_settings():
    from rtstereo.cli.train import flag_values

    args = _parser().parse_args(["train", "--set", "max_disp=96", "--set", "half_refinement=true"])
    assert flag_values(args)["settings"] == {"max_disp": "96", "half_refinement": "true"}
    args = _parser().parse_args(["train", "--max-disp", "64", "--set", "max_disp=64"])  # one value, said twice
    assert flag_values(args)["settings"] == {"max_disp": "64"}
    args = _parser().parse_args(["train", "--max-disp", "64", "--set", "max_disp=96"])  # --set won, unsaid
    with pytest.raises(InputError, match="--max-disp 64 and --set max_disp=96 disagree"):
        flag_values(args)
    args = _parser().parse_args(["train", "--set", "max_disp"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        flag_values(args)


def test_time_limit_stops_at_a_log_step_with_the_state_saved(tmp_path, monkeypatch):
    clock = iter(range(0, 10_000, 30))  # every reading of the clock: 30 s later
    monkeypatch.setattr(loop, "_now", lambda: float(next(clock)))
    config = tiny_config(tmp_path / "run", steps=50, time_limit_min=1.0, checkpoint_every=1000, prefetch=False)
    summary = train(config, echo=quiet)
    assert 1 <= summary["step"] < 50
    assert read_torch_file(tmp_path / "run" / "last.pt")["step"] == summary["step"]
    assert records(tmp_path / "run", "val")[-1]["step"] == summary["step"]
    assert records(tmp_path / "run", "end")[-1]["interrupted"] is False


def test_progress_lines_say_the_time_left(tmp_path, monkeypatch):
    """They gave the step, the loss and pairs/s, nothing of how long a run of hours still had to go."""
    now = [100.0]
    monkeypatch.setattr(loop, "_now", lambda: now[0])
    clock = loop._Clock(tiny_config(tmp_path, steps=100), step=20)  # resumed at step 20
    now[0] += 40.0  # steps 20 to 30 took 40 s, validations and checkpoints included
    assert clock.seconds_left(30) == 280.0
    assert clock.seconds_left(100) is None and clock.seconds_left(20) is None
    limited = loop._Clock(tiny_config(tmp_path, steps=100, time_limit_min=1.0), step=0)
    now[0] += 20.0
    assert limited.seconds_left(10) == 40.0  # the time limit comes first

    monkeypatch.undo()
    lines = []
    train(tiny_config(tmp_path / "run", steps=2), echo=lines.append)
    progress = [line for line in lines if line.startswith("step ") and "loss" in line]
    assert progress[0].startswith("step 1/2: loss ") and progress[0].endswith(" left"), progress
    assert " left" not in progress[1]


def test_checkpoints_by_the_minute(tmp_path, monkeypatch):
    clock = iter(range(0, 10_000, 40))
    monkeypatch.setattr(loop, "_now", lambda: float(next(clock)))
    saves = []
    original = loop._Run.save
    monkeypatch.setattr(
        loop._Run, "save", lambda self, path, **kw: (saves.append(self.step), original(self, path, **kw))
    )
    train(
        tiny_config(tmp_path / "run", steps=6, checkpoint_every=1000, checkpoint_minutes=1.0, prefetch=False),
        echo=quiet,
    )
    assert len([s for s in saves if s < 6]) >= 2  # besides the final save


@pytest.mark.parametrize("name", ["time_limit_min", "checkpoint_minutes"])
def test_negative_minutes_are_refused(name):
    with pytest.raises(InputError, match=name):
        TrainConfig(**{name: -1})


def test_a_crash_inside_a_training_step_writes_last_pt(tmp_path, monkeypatch):
    """README: last.pt is written "on failure": here the failure is in the step itself (forward/backward)."""
    from rtstereo.train import step as step_module

    run_step = step_module.TrainStep.__call__

    def crash_at_step_2(self, batch, step):
        if step == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return run_step(self, batch, step)

    monkeypatch.setattr(step_module.TrainStep, "__call__", crash_at_step_2)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        train(tiny_config(tmp_path, checkpoint_every=100, prefetch=False), echo=quiet)
    state = read_torch_file(tmp_path / "last.pt")
    assert state["step"] == 2 and state["format"] == "rtstereo-checkpoint"
    end = records(tmp_path, "end")[-1]
    assert end["interrupted"] is True and end["reason"] == "RuntimeError"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the checkpoint was renamed into place


def test_a_run_folder_that_a_file_took_meanwhile_names_the_file(tmp_path):
    """A file made above the run folder after the checks said "cannot make run folder taken/run: File exists"."""
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        loop.RunFiles(blocker / "run").make()
    assert str(info.value) == f"cannot make run folder {blocker / 'run'}: {blocker} is a file, not a folder"


# ------------------------------------------------------------------------------- two runs, one folder
def test_a_run_folder_another_run_trains_in_is_refused_and_its_files_left_alone(tmp_path, capsys, three_steps):
    """A second `train --resume run/last.pt` while the first still trained there passed every check: both wrote
    last.pt, best.pt and log.jsonl, each replacing the other's checkpoints, their steps mixed in one log."""
    from tests.conftest import lock_held_elsewhere

    run = tmp_path / "run"
    run.mkdir()
    for name in ("last.pt", "best.pt", "log.jsonl"):
        (run / name).write_bytes((three_steps[0] / name).read_bytes())
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with lock_held_elsewhere(run / ".rtstereo-train.lock") as pid:
        code = main(["train", "--resume", str(run / "last.pt"), "--steps", "5", "--threads", "1"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith(
            f"rtstereo train: error: run folder {run} is in use by another training run (process {pid}"
        )
        assert err.rstrip().endswith("wait for it to end, or give another folder with -o"), err
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".rtstereo-train.lock"} == before


def test_two_runs_started_at_once_into_one_folder_the_second_is_refused_when_it_makes_the_folder(tmp_path):
    """Both passed check_usable on the empty folder (the validation set takes about 30 s to render in between)."""
    from tests.conftest import lock_held_elsewhere

    files = loop.RunFiles(tmp_path / "run")
    files.check_usable()
    with lock_held_elsewhere(tmp_path / "run.lock"):  # the folder does not exist yet: the other run makes it now
        files.folder.mkdir()
        (tmp_path / "run.lock").rename(files.lock)
        with pytest.raises(OutputError, match="is in use by another training run"):
            files.make()
    # The other one has finished meanwhile: its files are there, which a new run must not overwrite.
    files.log.write_text('{"kind": "start", "step": 0}\n')
    with pytest.raises(OutputError, match="already holds a run"):
        files.make()
    assert not files.lock.exists()


def test_a_lock_file_a_killed_run_left_does_not_block_the_next_run(tmp_path):
    """kill -9 leaves the lock file; the system released its lock with the process."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".rtstereo-train.lock").write_text("999999999@elsewhere")
    summary = train(tiny_config(run, steps=1), echo=quiet)
    assert summary["step"] == 1 and not (run / ".rtstereo-train.lock").exists()


def test_a_run_removes_the_half_written_checkpoint_a_killed_run_left(tmp_path, three_steps):
    """save_checkpoint writes a hidden tagged file for remove_stale_partials to remove, which train never called:
    the partial checkpoint of a run killed while saving stayed beside last.pt for good."""
    from rtstereo.io.atomic import _HOST

    run = tmp_path / "run"
    run.mkdir()
    for name in ("last.pt", "log.jsonl"):
        (run / name).write_bytes((three_steps[0] / name).read_bytes())
    left = run / f".last.partial-999999999-0123abcd@{_HOST}.pt"
    left.write_bytes(b"half a checkpoint")
    config = resolve_config(flag_values={"resume": str(run / "last.pt"), "steps": 3})
    train(config, echo=quiet)
    assert not left.exists()


def test_a_model_named_in_other_letters_is_recorded_by_its_own_name(tmp_path):
    """--model RTNET trains rtnet (names ignore case): its config.json and checkpoints record 'rtnet', not 'RTNET'."""
    train(tiny_config(tmp_path, model="RTNET", steps=1), echo=quiet)
    assert json.loads((tmp_path / "config.json").read_text())["model"] == "rtnet"
    assert read_torch_file(tmp_path / "last.pt")["model"] == "rtnet"
