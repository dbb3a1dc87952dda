"""What the verbs print, on any terminal or pipe: names in any encoding, a stdout that is full or closed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import rtstereo
from rtstereo.cli import main

from ..batch.conftest import SGBM_ARGS, SGBM_RESULTS, write_kitti

ASCII_TERMINAL = {"PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C"}


def _rtstereo(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``rtstereo ARGV`` in a process of its own, on this checkout's code, with ``env`` added to the environment."""
    src = str(Path(rtstereo.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src, **(env or {})}
    command = [sys.executable, "-m", "rtstereo", *map(str, argv)]
    return subprocess.run(command, capture_output=True, env=env, timeout=120)


def test_a_name_the_terminal_cannot_encode_is_printed_escaped_not_a_traceback(tmp_path):
    # a scene folder `scènes` on an ASCII terminal: a UnicodeEncodeError traceback at the table, no results written
    data = write_kitti(tmp_path / "data" / "scènes", 1)
    done = _rtstereo("eval", data.parent, *SGBM_ARGS, "-o", tmp_path / "res", "-q", env=ASCII_TERMINAL)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert b"\nsc\\xe8nes/000000 " in done.stdout
    assert json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["scenes"][0]["name"] == "scènes/000000"


def test_every_verbs_stdout_takes_names_its_encoding_cannot_hold(monkeypatch, capsys, tmp_path, pair):
    # predict's "written:" line of a folder `sorties-é` on an ASCII pipe: a UnicodeEncodeError traceback, exit code 1
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["predict", *pair, *SGBM_ARGS, "-o", str(tmp_path / "sorties-é")]) == 0, capsys.readouterr().err
    assert "sorties-\\xe9" in stdout.buffer.getvalue().decode("ascii")
    assert stdout.errors == "strict"  # as it was: the command line's stream, not the program's that called main
    assert any((tmp_path / "sorties-é").iterdir())
