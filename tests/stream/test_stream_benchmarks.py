"""The stream benchmarks (benchmarks/stream_fps.py, stream_overlap.py) at a tiny size: the rendered
clip stays whole however long it is, and ``stream_overlap.py`` runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import benchmark_script as _script


def test_the_moving_rectangle_stays_whole_in_a_long_clip():
    lefts, rights = _script("stream_fps").render(300, height=64, width=160)
    assert len(lefts) == len(rights) == 300
    assert all(frame.shape == (64, 160, 3) for frame in lefts + rights)
    assert not np.array_equal(lefts[0], lefts[1])  # it moves


def test_stream_overlap_runs_a_300_frame_clip(tmp_path):
    script = _script("stream_overlap")
    argv = ["--before", "none", "--rounds", "1", "--frames", "300", "--clip-size", "64x128"]
    argv += ["--model", "sgbm", "--args=--max-disp 16", "--out", str(tmp_path)]
    assert script.main(argv) == 0
    (json_path,) = tmp_path.glob("stream_overlap_*.json")
    report = json.loads(json_path.read_text())
    assert report["frames"] == 300
    assert report["rounds"][0]["after"]["frames"] == 300
    assert (tmp_path / json_path.name.replace(".json", ".md")).exists()


def test_the_batch_benchmark_records_its_machine_as_the_stream_benchmark_does_with_rays_version():
    """batch_throughput.py and stream_fps.py write one record of the machine (one function), Ray's version added."""
    pytest.importorskip("ray")
    stream, batch = _script("stream_fps").environment(), _script("batch_throughput").environment()
    assert set(batch) == set(stream) == {"date", "commit", "hardware", "versions"}
    assert batch["hardware"] == stream["hardware"] and batch["commit"] == stream["commit"]
    assert batch["versions"] == {**stream["versions"], "ray": batch["versions"]["ray"]} and batch["versions"]["ray"]
