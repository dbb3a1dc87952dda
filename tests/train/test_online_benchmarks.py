"""The online-adaptation benchmarks (benchmarks/online_adapt_fps.py, online_adapt_quality.py): how the
rate runs are summed up (the runs themselves are too slow for tests), and the quality benchmark at a
tiny size."""

from __future__ import annotations

import numpy as np
from adapt_helpers import write_tiny_checkpoint
from tests.conftest import benchmark_script as _script


def _run(variant: str, round_: int, fps: float, steps: int | None = None) -> dict:
    row = {"variant": variant, "round": round_, "capture_fps": fps, "output_fps": fps}
    row.update(capture_stage_fps=500.0, inference_stage_fps=fps + 0.1)
    return row if steps is None else {**row, "adapt_steps": steps}


def test_each_round_is_compared_with_the_plain_run_of_the_same_round():
    script = _script("online_adapt_fps")
    rows = [_run("plain", 0, 12.0), _run("process-low", 0, 10.2, 30)]
    rows += [_run("process-low", 1, 9.9, 30), _run("plain", 1, 10.0)]  # a slow round for both
    means = script.summarise(rows, ["plain", "process-low"])
    low = means["process-low"]
    assert low["output_fps_ratio"] == round(((10.2 + 9.9) / 2) / 11.0, 3)  # mean over mean: 0.914
    assert low["round_ratios"] == {"median": 0.92, "min": 0.85, "max": 0.99, "under_0.9": 1}
    assert means["plain"]["round_ratios"]["median"] == 1.0
    result = {
        "frames": 300,
        "size": "192x320",
        "model": "state.pt",
        "rounds": 2,
        "cpu_threads": 2,
        "load_average_at_start": [0.1],
        "load_average_at_end": [0.2],
        "commit": "abc",
        "date": "today",
        "means": means,
        "runs": rows,
    }
    table = script.markdown(result)
    assert "| process-low | 10.05 | 0.914 | 10.05 | 0.914 |" in table and "0.920 (0.850-0.990), 1 | 30.0 |" in table


def test_frozen_and_adapting_runs_of_one_stream(tmp_path):
    script = _script("online_adapt_quality")
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
