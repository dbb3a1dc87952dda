"""benchmarks/online_adapt_fps.py: how its runs are summed up (the runs themselves are too slow for tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "online_adapt_fps.py"


def _script():
    spec = importlib.util.spec_from_file_location("online_adapt_fps_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(variant: str, round_: int, fps: float, steps: int | None = None) -> dict:
    row = {"variant": variant, "round": round_, "capture_fps": fps, "output_fps": fps}
    row.update(capture_stage_fps=500.0, inference_stage_fps=fps + 0.1)
    return row if steps is None else {**row, "adapt_steps": steps}


def test_each_round_is_compared_with_the_plain_run_of_the_same_round():
    script = _script()
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
