"""What a live camera's frame costs to make usable, now paid only for the frames the model takes.

A camera's grabber thread reads every frame the camera delivers; the conversion to RGB views (colour
conversion, splitting a side-by-side frame, rectifying an OAK colour pair on the host) runs only for
the frames taken (``LiveSource._develop``). This measures that conversion per frame on this CPU, and
the CPU time it saves per second when a camera delivers ``--camera-fps`` frames and the model takes
``--model-fps`` of them.

Usage::

    python benchmarks/live_develop.py                          # 30 fps camera, 5 fps model
    python benchmarks/live_develop.py --camera-fps 60 --model-fps 10 --repeats 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rtstereo.bench import machine_info
from rtstereo.sources.cameras import UVCSource
from rtstereo.sources.oak import HostRectification, OakSource

REPO = Path(__file__).resolve().parents[1]


def median_ms(develop, raw, repeats: int) -> tuple[float, float]:
    """Median wall time and CPU time (all threads of this process: OpenCV's included), ms per frame."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        develop(raw)
        wall.append(1e3 * (time.perf_counter() - started))
        cpu.append(1e3 * (time.process_time() - started_cpu))
    return statistics.median(wall), statistics.median(cpu)


def oak_colour_source(width: int, height: int) -> OakSource:
    """An OakSource whose host rectification is a plausible one (no device is opened)."""
    source = OakSource.__new__(OakSource)
    camera = np.array([[0.8 * width, 0, width / 2], [0, 0.8 * width, height / 2], [0, 0, 1]])
    distortion = np.array([-0.1, 0.02, 0, 0, 0])
    rotation = cv2.Rodrigues(np.array([0.0, 0.01, 0.0]))[0]
    maps = [
        cv2.initUndistortRectifyMap(camera, distortion, r, camera, (width, height), cv2.CV_16SC2)
        for r in (rotation, rotation.T)
    ]
    source._rectification = HostRectification(maps[0], maps[1], calibration=None)
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera-fps", type=float, default=30.0)
    parser.add_argument("--model-fps", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    uvc = UVCSource("benchmark")
    cases = {
        "uvc side-by-side 2560x720 BGR": (uvc._develop, (rng.integers(0, 256, (720, 2560, 3), np.uint8), 0.0, 0)),
        "oak colour 1280x800 pair, host rectification": (
            oak_colour_source(1280, 800)._develop,
            (*(rng.integers(0, 256, (800, 1280, 3), np.uint8) for _ in range(2)), 0.0, 0),
        ),
    }
    skipped_per_s = max(0.0, args.camera_fps - args.model_fps)
    rows = {}
    load = os.getloadavg()[0]
    for label, (develop, raw) in cases.items():
        wall_ms, cpu_ms = median_ms(develop, raw, args.repeats)
        rows[label] = {
            "wall_ms_per_frame": round(wall_ms, 2),
            "cpu_ms_per_frame": round(cpu_ms, 2),
            "cpu_saved_ms_per_s": round(cpu_ms * skipped_per_s, 1),
        }
        print(
            f"{label}: {wall_ms:.2f} ms per frame ({cpu_ms:.2f} ms of CPU); "
            f"{cpu_ms * skipped_per_s:.0f} ms of CPU saved per second",
            flush=True,
        )
    report = {
        "machine": machine_info(),
        "load_average_1min": round(load, 2),
        "camera_fps": args.camera_fps,
        "model_fps": args.model_fps,
        "cases": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "live_develop.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
