"""An installed package is whole: what verbs use by default ships inside it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import rtstereo
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


def test_the_package_is_marked_typed():
    """Without py.typed (PEP 561) mypy skipped an installed rtstereo: 'module is installed, but missing library stubs
    or py.typed marker', and checked nothing a user's code did with it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["rtstereo"]
    marker = REPO / "src" / "rtstereo" / "py.typed"
    assert marker.is_file() and marker in {p for pattern in globs for p in marker.parent.glob(pattern)}


def test_the_sdist_holds_the_package_and_its_data_and_no_partial_tests(tmp_path):
    """setuptools packed tests/test_*.py without tests/conftest.py, which they import (MANIFEST.in prunes tests);
    it deprecated pyproject.toml's ``license = { text = ... }``, which builds stop accepting in 2027-02."""
    pytest.importorskip("setuptools", minversion="77")  # the version pyproject.toml's build-system asks for
    code = (
        "import sys, tarfile, warnings\n"
        "from setuptools import build_meta\n"
        "from setuptools.warnings import SetuptoolsDeprecationWarning\n"
        "warnings.simplefilter('error', SetuptoolsDeprecationWarning)  # a deprecation ends in builds that fail\n"
        "folder = sys.argv[1]  # build_sdist rewrites sys.argv\n"
        "name = build_meta.build_sdist(folder)\n"
        "sdist = tarfile.open(f'{folder}/{name}')\n"
        "info = sdist.extractfile(f'{name[: -len(\".tar.gz\")]}/PKG-INFO').read().decode().splitlines()\n"
        "print(next(line for line in info if line.startswith('Version: ')))\n"
        "print('\\n'.join(sdist.getnames()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    version = next((line for line in done.stdout.splitlines() if line.startswith("Version: ")), done.stdout[-500:])
    assert version == f"Version: {rtstereo.__version__}", "pyproject.toml's version is rtstereo.__version__"
    names = {name.split("/", 1)[1] for name in done.stdout.split() if "/" in name}
    assert not {name for name in names if name.startswith("tests")}, "tests belong to the clone, not the sdist"
    shipped = {
        "README.md",
        "pyproject.toml",
        "src/rtstereo/__init__.py",
        "src/rtstereo/py.typed",
        "src/rtstereo/weights/rtnet-v5.onnx",
        "src/rtstereo/weights/rtnet-guided.onnx",
        "src/rtstereo/data/example/left.png",
    }
    assert shipped <= names, shipped - names


# Versions the extras must not admit, each seen failing (session 23, onnxruntime 1.32, torch 2.13): onnx 1.15 has
# no TensorProto.INT4, which onnxruntime.quantization reads on import (export --int8 stopped with a traceback);
# onnxslim 0.1.30-0.1.31 could not simplify rtnet, and 0.1.34-0.1.42 wrote rtnet graphs that failed the parity
# check (0.78 px mean), so that `rtstereo export` of an rtnet checkpoint stopped with exit code 1.
FAILING_VERSIONS = {"onnx": ["1.15.0"], "onnxslim": ["0.1.31", "0.1.34", "0.1.42"]}
# onnxruntime 1.17-1.18 were built for NumPy 1: beside NumPy 2 (which opencv-python-headless 5 requires, so that
# `pip install rtstereo` next to an onnxruntime 1.17 upgraded NumPy under it) every verb stopped ("_ARRAY_API not
# found"). 1.19.0 imports and runs the quick start.
# opencv-python-headless 4.8 and 4.9 were built for NumPy 1 too, and their metadata does not cap it: in a fresh
# environment `pip install rtstereo opencv-python-headless==4.8.0.76` installed NumPy 2.4 beside it, and every verb
# stopped with a traceback ("numpy.core.multiarray failed to import"). 4.10.0.84 imports beside NumPy 1 and 2.
FAILING_DEPENDENCIES = {"onnxruntime": ["1.17.0", "1.18.1"], "opencv-python-headless": ["4.8.0.76", "4.9.0.80"]}


def test_the_dependencies_admit_no_version_seen_failing():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    requirements = pytest.importorskip("packaging.requirements")

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {r.name: r for r in map(requirements.Requirement, listed)}
    for name, versions in FAILING_DEPENDENCIES.items():
        for version in versions:
            assert version not in found[name].specifier, f"{found[name]} admits {name} {version}"


def test_the_extras_admit_no_version_of_the_exporters_seen_failing():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    requirements = pytest.importorskip("packaging.requirements")

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    checked = 0
    for extra, listed in extras.items():
        for text in listed:
            requirement = requirements.Requirement(text)
            for version in FAILING_VERSIONS.get(requirement.name, []):
                checked += 1
                assert version not in requirement.specifier, f"[{extra}] {text} admits {requirement.name} {version}"
    assert checked == 3 * 4, "torch, export and dev each list onnx and onnxslim"


# The optional packages' versions seen failing (session 26, NumPy 2.4, OpenCV 5.1, Python 3.11), each installed beside
# the wheel as pip resolves it: matplotlib 3.7.0 and 3.8.3 were built for NumPy 1 (bench --data wrote no bench.png;
# 3.8.4 plots); trimesh 4.0.0-4.3.2 call ndarray.ptp, which NumPy 2 removed (--format glb stopped with a traceback;
# 4.4.0 writes it); pyarrow 14.0.2 and 15.0.2 were built for NumPy 1 (a Parquet manifest was refused; 16.0.0 reads it);
# rerun-sdk 0.20.0 caps NumPy below 2, so that pip put NumPy 1.26 under the newest pyarrow, which needs 2 (--view3d-save
# refused; 0.21.0 records); ray 2.9.0 and 2.9.3 have no override_num_blocks in ray.data.from_items (every --engine ray
# run stopped with a TypeError traceback; 2.10.0 runs predict, video and eval).
FAILING_EXTRAS = {
    "matplotlib": ["3.7.0", "3.8.3"],
    "trimesh": ["4.0.0", "4.3.2"],
    "pyarrow": ["14.0.2", "15.0.2"],
    "rerun-sdk": ["0.20.0", "0.20.3"],
    "ray": ["2.9.0", "2.9.3"],
    # not installed (no torch beside the tests' own): torch 2.3 is the first built for NumPy 2 (pytorch/pytorch#132179);
    # 2.1 and 2.2 stop at every torch.from_numpy with "RuntimeError: Numpy is not available"
    "torch": ["2.1.2", "2.2.2"],
}


def test_the_extras_admit_no_version_of_the_optional_packages_seen_failing():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    requirements = pytest.importorskip("packaging.requirements")

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    listed = set()
    for extra, texts in extras.items():
        for text in texts:
            requirement = requirements.Requirement(text)
            for version in FAILING_EXTRAS.get(requirement.name, []):
                listed.add((extra, requirement.name))
                assert version not in requirement.specifier, f"[{extra}] {text} admits {requirement.name} {version}"
    assert {name for _, name in listed} == set(FAILING_EXTRAS), "every package above is in an extra"
    assert ("viz", "matplotlib") in listed and ("scale", "ray") in listed and ("dev", "trimesh") in listed
    assert ("torch", "torch") in listed and ("export", "torch") in listed


def test_no_extra_but_dev_installs_trimesh_which_rtstereo_no_longer_imports():
    """The 3d extra installed trimesh, which GLB output stopped using (rtstereo's own writer): the extra stays, empty,
    so that `pip install 'rtstereo[3d]'` still installs; the tests read GLBs back with trimesh (dev)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["3d"] == []
    assert [name for name, texts in extras.items() if any(t.startswith("trimesh") for t in texts)] == ["dev"]
    importing = [
        p for p in (REPO / "src").rglob("*.py") if re.search(r"^\s*(import|from) trimesh\b", p.read_text(), re.M)
    ]
    assert importing == [], "a module imports trimesh: an extra must install it"


def test_the_mit_licence_pyproject_declares_is_a_file_it_ships():
    """pyproject.toml said "MIT" and the repository had no LICENSE: wheels and sdists carried no licence text."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the rtstereo contributors\n")
    assert "Permission is hereby granted, free of charge" in text and 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_the_smoke_test_builds_its_wheel_from_a_copy_of_the_source():
    """.ci/smoke_installed ran ``pip wheel "$repo"``: setuptools built in the tree and reused build/lib, where a module
    deleted from src/ since an earlier build stayed, and was shipped in the wheel the smoke test installed."""
    script = (REPO / ".ci" / "smoke_installed").read_text()
    builds = [line for line in script.splitlines() if line.startswith("pip wheel")]
    assert builds and not [line for line in builds if '"$repo"' in line], builds
    assert 'cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/LICENSE" "$repo/MANIFEST.in" "$repo/src"' in script


def test_the_classifiers_name_the_pythons_requires_python_admits():
    """The metadata had no classifiers: PyPI and pip's tools could not tell which Pythons rtstereo runs on, nor that it
    is typed. The versions named start at requires-python's floor, and there is no licence classifier (PEP 639)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    specifiers = pytest.importorskip("packaging.specifiers")

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    classifiers = project["classifiers"]
    prefix = "Programming Language :: Python :: 3."
    pythons = [f"3.{c.removeprefix(prefix)}" for c in classifiers if c.startswith(prefix)]
    admitted = specifiers.SpecifierSet(project["requires-python"])
    assert pythons and all(version in admitted for version in pythons), (pythons, admitted)
    assert f">={pythons[0]}" == project["requires-python"], "the oldest Python named is the oldest admitted"
    assert "Typing :: Typed" in classifiers and (REPO / "src" / "rtstereo" / "py.typed").is_file()
    assert not [c for c in classifiers if c.startswith("License ::")]
