"""benchmarks/online_adapt_quality.py at a tiny size: the stream, the in-line steps, the means."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from adapt_helpers import write_tiny_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "online_adapt_quality.py"


def _script():
    spec = importlib.util.spec_from_file_location("online_adapt_quality_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frozen_and_adapting_runs_of_one_stream(tmp_path):
    script = _script()
    stream = script.render_stream(frames=6, scenes=2, height=64, width=128, seed=3, shift=True)
    assert len(stream) == 6 and stream[0]["left"].shape == (64, 128, 3) and stream[0]["truth"].shape == (64, 128)
    assert not np.array_equal(stream[0]["left"], stream[1]["left"])  # the camera pans
    plain = script.render_stream(frames=6, scenes=2, height=64, width=128, seed=3, shift=False)
    assert np.array_equal(plain[2]["truth"], stream[2]["truth"]) and not np.array_equal(
        plain[2]["left"], stream[2]["left"]
    )
    model = str(write_tiny_checkpoint(tmp_path / "tiny.pt"))
    frozen, steps, _ = script.play(stream, model, {}, every=None)
    again, _, _ = script.play(stream, model, {}, every=None)
    assert steps == 0 and [r["epe"] for r in frozen] == [r["epe"] for r in again]
    adapting, steps, _ = script.play(stream, model, {}, every=2)
    assert steps == 3  # frames 0, 2, 4
    assert adapting[0]["epe"] == frozen[0]["epe"]  # the first frame is predicted before any step
    assert adapting[-1]["epe"] != frozen[-1]["epe"]  # later frames run on the new weights
    means = script.means(adapting, skip=2)
    assert means["epe_later"] == round(float(np.mean([r["epe"] for r in adapting[2:]])), 4)
