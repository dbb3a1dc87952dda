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
    assert "--unlabeled" not in session.train_command(args, tmp_path / "run")
    assert "not here" in capsys.readouterr().err


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
