"""An installed package is whole: what verbs use by default ships inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtstereo.data import example_pair_paths

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_example_pair_is_the_repository_pair():
    for shipped in example_pair_paths():
        assert shipped.read_bytes() == (REPO / "examples" / shipped.name).read_bytes()


def test_the_export_check_pair_comes_from_the_package(monkeypatch, tmp_path):
    from rtstereo.export.parity import parity_pair
    from rtstereo.io.images import read_image

    monkeypatch.chdir(tmp_path)  # not the source tree
    left, right, text = parity_pair((240, 320))
    assert (left == read_image(example_pair_paths()[0])).all() and (right == read_image(example_pair_paths()[1])).all()
    assert text.startswith("left.png + right.png")


def test_package_data_globs_cover_the_shipped_files():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["rtstereo"]
    package = REPO / "src" / "rtstereo"
    covered = {p for pattern in globs for p in package.glob(pattern)}
    assert set(example_pair_paths()) <= covered
    assert (package / "weights" / "rtnet-v5.onnx") in covered
