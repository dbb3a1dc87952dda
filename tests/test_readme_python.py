"""The README's Python blocks run as written, so that they cannot drift from the API.

Each block runs in a scratch folder holding what it names (the example pair under ``examples/``, a side-by-side video,
a rig's ``maps.npz``); the names a block leaves to the reader (``raw_left``, ``videos``, ``model``) are given first.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtstereo.io import read_image

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "src" / "rtstereo" / "data" / "example"


def _python_blocks() -> dict[str, str]:
    """The README's ```python blocks, each under the heading above it (numbered when a heading has several)."""
    blocks: dict[str, str] = {}
    heading, fence, code = "", False, []
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):  # a "# comment" inside any fenced block is no heading
            if fence and code is not None:
                key, number = heading, 2
                while key in blocks:
                    key, number = f"{heading} #{number}", number + 1
                blocks[key] = "\n".join(code) + "\n"
            fence, code = not fence, [] if not fence and line.strip() == "```python" else None
        elif fence and code is not None:
            code.append(line)
        elif not fence and re.match(r"#{1,6} ", line):
            heading = line.lstrip("#").strip()
    return blocks


def _example_pair(folder: Path) -> None:
    (folder / "examples").mkdir()
    for name in ("left.png", "right.png"):
        shutil.copy(EXAMPLE / name, folder / "examples" / name)


def _side_by_side_video(path: Path, frames: int = 3) -> None:
    left, right = (cv2.imread(str(EXAMPLE / name)) for name in ("left.png", "right.png"))
    both = np.hstack([left, right])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (both.shape[1], both.shape[0]))
    for _ in range(frames):
        writer.write(both)
    writer.release()


def _rig(folder: Path) -> None:
    """``rig/maps.npz`` of a rectified rig at the example's size (identity maps)."""
    from rtstereo.rectify import Rectifier
    from rtstereo.types import Calibration

    calibration = Calibration(300, 300, 159.5, 159.5, 119.5, 0.1, width_px=320, height_px=240)
    k = np.array([[300, 0, 159.5], [0, 300, 119.5], [0, 0, 1.0]])
    p1, p2 = np.hstack([k, np.zeros((3, 1))]), np.hstack([k, [[-30.0], [0], [0]]])
    Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p1, p2, (320, 240), calibration).save(
        folder / "rig" / "maps.npz"
    )


def _given_pair(folder: Path) -> dict:
    return {"raw_left": read_image(EXAMPLE / "left.png"), "raw_right": read_image(EXAMPLE / "right.png")}


def _given_videos(folder: Path) -> dict:
    """The loop over videos goes on from the block above it: its imports, some videos and a model."""
    import rtstereo
    from rtstereo.sinks.video import VideoSink
    from rtstereo.sources.video import SideBySideVideoSource
    from rtstereo.stream import Stream

    _side_by_side_video(folder / "a.mp4")
    return {
        "Stream": Stream,
        "SideBySideVideoSource": SideBySideVideoSource,
        "VideoSink": VideoSink,
        "videos": ["a.mp4"],
        "model": rtstereo.load("sgbm", max_disp=64),
    }


# heading -> (what the folder needs, the names the block takes as given, what it must leave there)
SETUPS = {
    "Python": (_example_pair, None, ["out/sgbm.pfm"]),
    "From Python": (lambda folder: _side_by_side_video(folder / "stereo_sbs.mp4"), None, ["out.mp4"]),
    "From Python #2": (None, _given_videos, ["a.mp4.disp.mp4"]),
    "From Python #3": (_rig, _given_pair, ["scene.ply"]),
}
RAY = "Batches, manifests, resume and Ray"


def _python_claims(namespace: dict, printed: str) -> None:
    """What the Python block's comments say of ``r`` and of the map read back: float32 (H, W) in pixels, positive, nan
    where invalid; the four stages of ``timings_ms``; the same map back from ``out/sgbm.pfm``."""
    from rtstereo.io import read_disparity

    result = namespace["r"]
    disparity = result.disparity_px
    assert disparity.dtype == np.float32 and disparity.shape == read_image(EXAMPLE / "left.png").shape[:2]
    assert np.all(disparity[np.isfinite(disparity)] > 0) and not np.isinf(disparity).any()
    assert list(result.timings_ms) == ["preprocess", "inference", "postprocess", "total"]
    assert result.timings_ms["total"] >= result.timings_ms["inference"] > 0
    assert np.array_equal(read_disparity("out/sgbm.pfm"), disparity, equal_nan=True)


def _3d_claims(namespace: dict, printed: str) -> None:
    """What the 3D block's comments say: the misalignment printed well below 0.75 px, depth float32 (H, W) with nan
    where the map is invalid, the cloud within ``max_depth_m``, the left-right check's map nan where its mask says the
    views disagree."""
    assert float(printed.split()[0]) < 0.75
    disparity, depth = namespace["result"].disparity_px, namespace["depth_m"]
    assert depth.dtype == np.float32 and depth.shape == disparity.shape == namespace["left"].shape[:2]
    assert np.array_equal(np.isnan(depth), ~(disparity > 0))
    cloud = namespace["cloud"]
    assert 0 < len(cloud) and float(cloud.points_m[:, 2].max()) <= 10.0
    checked, consistent = namespace["checked"], namespace["consistent"]
    assert consistent.dtype == bool and np.array_equal(np.isfinite(checked.disparity_px), consistent)
    assert 0 < np.count_nonzero(~consistent) < consistent.size


# heading -> what its comments promise, checked after it ran (the namespace it left, what it printed)
CLAIMS = {"Python": _python_claims, "From Python #3": _3d_claims}


def test_every_python_block_of_the_readme_is_run_here():
    assert set(_python_blocks()) == {*SETUPS, RAY}


@pytest.mark.slow  # Ray's start: 10-20 s on 2 cores
def test_the_readme_ray_block_runs_as_written_and_reports_as_it_says(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    for side, name in (("lefts", "left.png"), ("rights", "right.png")):
        (tmp_path / side).mkdir()
        for pair in ("a", "b", "c"):
            shutil.copy(EXAMPLE / name, tmp_path / side / f"{pair}.png")
    (tmp_path / "lefts" / "b.png").write_bytes(b"not a png")
    rows = "".join(f"lefts/{pair}.png,rights/{pair}.png,{pair}\n" for pair in "abc")
    (tmp_path / "pairs.csv").write_text("left,right,name\n" + rows)
    exec(compile(_python_blocks()[RAY], f"README.md ({RAY})", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.startswith("3 pairs: 2 done, 0 skipped, 1 failed; ")
    assert (tmp_path / "out" / "summary.parquet").is_file() and (tmp_path / "out" / "a.png").is_file()


@pytest.mark.parametrize("heading", sorted(SETUPS))
def test_a_readme_python_block_runs_as_written(heading, tmp_path, monkeypatch, capsys):
    prepare, given, written = SETUPS[heading]
    monkeypatch.chdir(tmp_path)
    if prepare is not None:
        prepare(tmp_path)
    namespace = {"__name__": "__readme__", **(given(tmp_path) if given is not None else {})}
    exec(compile(_python_blocks()[heading], f"README.md ({heading})", "exec"), namespace)
    for name in written:
        assert (tmp_path / name).is_file(), name
    if heading in CLAIMS:  # what its comments say, beyond that it runs
        CLAIMS[heading](namespace, capsys.readouterr().out)


def test_the_python_block_leaves_the_quick_starts_outputs_as_they_were(tmp_path, monkeypatch):
    """A reader goes from the quick start to the Python block: its SGBM map must not replace ``out/left.pfm``, the
    default model's map that the quick start's ``rtstereo compare examples/disparity.pfm out/left.pfm`` scores."""
    monkeypatch.chdir(tmp_path)
    _example_pair(tmp_path)
    quick_start = [tmp_path / "out" / name for name in ("left.png", "left.pfm", "left_color.png", "left.json")]
    (tmp_path / "out").mkdir()
    for path in quick_start:
        path.write_bytes(b"the quick start's " + path.name.encode())
    exec(compile(_python_blocks()["Python"], "README.md (Python)", "exec"), {"__name__": "__readme__"})
    assert [path.read_bytes() for path in quick_start] == [b"the quick start's " + p.name.encode() for p in quick_start]
