"""training/gpu_session.py: where a GPU session starts and what it asks of rtstereo train."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "training" / "gpu_session.py"


@pytest.fixture()
def session(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "GPU_STATE", tmp_path / "gpu" / "state.pt")
    monkeypatch.setattr(module, "GUIDED_GPU_STATE", tmp_path / "gpu" / "guided-state.pt")
    return module


def test_starts_from_the_packaged_state_then_resumes_what_a_gpu_session_brought_back(session, tmp_path):
    args = session.parse_args(["--out", str(tmp_path / "out")])
    assert session.starting_point(args) == ("--init", str(session.DEFAULT_STATE))
    session.GPU_STATE.parent.mkdir()
    session.GPU_STATE.write_bytes(b"state")
    assert session.starting_point(args) == ("--resume", str(session.GPU_STATE))
    args = session.parse_args(["--out", "o", "--init", "mine.pt"])
    assert session.starting_point(args) == ("--init", "mine.pt")


def test_trains_for_the_time_given_with_checkpoints_by_the_minute(session, tmp_path, capsys):
    (tmp_path / "pairs").mkdir()
    args = session.parse_args(["--out", "o", "--minutes", "7", "--unlabeled", str(tmp_path / "pairs")])
    command = session.train_command(args, tmp_path / "run")
    text = " ".join(command)
    assert "--device cuda" in text and "--time-limit 7" in text and "--checkpoint-minutes 1" in text
    assert f"--unlabeled {tmp_path / 'pairs'}" in text
    args = session.parse_args(["--out", "o", "--unlabeled", str(tmp_path / "missing")])
    command = session.train_command(args, tmp_path / "run")
    # rendered scenes only, said explicitly: a resumed state's own folder (another machine's) is dropped
    assert command[command.index("--unlabeled") + 1] == "" and "--unlabeled-per-batch" not in command
    assert "not here" in capsys.readouterr().err
    command = session.train_command(session.parse_args(["--out", "o"]), tmp_path / "run")
    assert command[command.index("--unlabeled") + 1] == ""


def test_a_resumed_state_whose_unlabeled_folder_is_elsewhere_trains_on_rendered_scenes(tmp_path, capsys):
    """What a GPU machine meets: the committed state names ../shared/data/unlabeled, absent there."""
    from rtstereo.cli import main
    from rtstereo.models.checkpoint import save_checkpoint
    from rtstereo.train.loop import build_network

    module, _, settings = build_network("rtnet", {"max_disp": 32})
    config = {"unlabeled": str(tmp_path / "not-here"), "unlabeled_per_batch": 1, "batch_size": 2}
    config.update(settings={"max_disp": 32}, data_max_disp=32)
    save_checkpoint(tmp_path / "state.pt", "rtnet", settings, module.state_dict(), step=3, config=config)
    common = ["train", "--resume", str(tmp_path / "state.pt"), "--device", "cpu", "--crop", "32x64", "--steps", "4"]
    common += ["--val-size", "1", "--val-every", "100", "--batch-size", "2"]
    assert main([*common, "-o", str(tmp_path / "a")]) == 2
    assert f"its run trained on --unlabeled {tmp_path / 'not-here'}, which is not found here" in capsys.readouterr().err
    assert main([*common, "-o", str(tmp_path / "b"), "--unlabeled", ""]) == 0
    assert (tmp_path / "b" / "last.pt").is_file()


def test_guided_starts_from_the_guided_network_and_resumes_its_own_state(session, tmp_path):
    args = session.parse_args(["--out", "o", "--guided", "--freeze", "encoder"])
    assert session.starting_point(args) == ("--init", str(session.GUIDED_STATE))
    text = " ".join(session.train_command(args, tmp_path / "run"))
    assert f"--init {session.GUIDED_STATE}" in text and "--set guided=true" in text and "--freeze encoder" in text
    session.GUIDED_GPU_STATE.parent.mkdir()
    session.GUIDED_GPU_STATE.write_bytes(b"state")
    assert session.starting_point(args) == ("--resume", str(session.GUIDED_GPU_STATE))
    assert "--set guided=true" not in session.train_command(args, tmp_path / "run")  # the state carries it
    unguided = session.parse_args(["--out", "o"])
    assert session.starting_point(unguided) == ("--init", str(session.DEFAULT_STATE))  # the other state is apart


def test_benchmark_first_is_capped_to_its_minutes(session, tmp_path):
    """--benchmark measures issue 18's figures before training; each configuration's share of the
    minutes caps it, so the whole fits the device call."""
    args = session.parse_args(["--out", "o", "--benchmark", "--benchmark-minutes", "5"])
    command = session.benchmark_command(args, tmp_path)
    text = " ".join(command)
    assert command[1].endswith("train_throughput.py") and "--device cuda" in text
    assert "--batch-sizes 64,256" in text and f"--output-dir {tmp_path / 'throughput'}" in text
    assert "--timeout 60" in text  # 2 sizes x 2 batch sizes + the op counts: 300 s / 5
    args = session.parse_args(["--out", "o", "--benchmark", "--benchmark-sizes", "64x128", "--device", "cpu"])
    text = " ".join(session.benchmark_command(args, tmp_path))
    assert "--sizes 64x128" in text and "--device cpu" in text and "--timeout 80" in text  # 240 s / 3
    assert session.parse_args(["--out", "o"]).benchmark is False
