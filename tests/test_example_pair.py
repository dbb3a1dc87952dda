"""``examples/make_example.py`` renders the example pair again, exactly, and says truly where it wrote it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run_copy(root: Path) -> subprocess.CompletedProcess:
    (root / "examples").mkdir()
    shutil.copy(REPO / "examples" / "make_example.py", root / "examples")
    return subprocess.run(
        [sys.executable, str(root / "examples" / "make_example.py")], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("with_package", [False, True])
def test_make_example_renders_the_shipped_pair_and_names_only_the_folders_it_wrote(tmp_path, with_package):
    shipped = tmp_path / "src" / "rtstereo" / "data" / "example"
    if with_package:
        shipped.mkdir(parents=True)
    done = _run_copy(tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("left.png", "right.png", "disparity.pfm"):
        assert (tmp_path / "examples" / name).read_bytes() == (REPO / "examples" / name).read_bytes(), name
    if with_package:
        assert f"and {shipped}" in done.stdout
        assert (shipped / "left.png").read_bytes() == (REPO / "examples" / "left.png").read_bytes()
    else:  # a copy outside a clone: it had printed "and .../src/rtstereo/data/example", which it never wrote
        assert f"not {shipped}: no such folder" in done.stdout and not shipped.exists()
