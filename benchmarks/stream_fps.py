"""Streaming speed per stage, and the flicker the temporal filter removes, on rendered stereo videos.

What it measures (all on this machine, in one run):

1. **FPS per stage** of ``rtstereo video`` on two rendered 640x480 mp4 files for each model: the
   capture stage (decode two videos), inference, and writing (mp4 of left|colour disparity + 16-bit
   PNGs), each as frames per second of its own busy time, next to the end-to-end rate. The ratio
   end-to-end / slowest stage shows how well the stages overlap (1.0 = perfectly).
2. **Flicker** (mean ``|d_t - d_{t-1}|`` over pixels valid in both frames) on a static rendered scene
   with sensor noise, encoded as mp4, with and without ``--temporal``.

Models: ``sgbm`` (max disparity 192), ``default`` (whatever it stands for today), and ``rtnet`` with
untrained weights when torch is present (speed does not depend on the weights; its disparities mean
nothing, so it is left out of the flicker figures).

Usage::

    PYTHONPATH=src python benchmarks/stream_fps.py                 # 60 frames, writes the JSON below
    PYTHONPATH=src python benchmarks/stream_fps.py --frames 20 --json /tmp/stream.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import rtstereo
from rtstereo.models import resolve_alias
from rtstereo.sinks.video import ColourScale, DisparityPngSink, Sink, VideoSink
from rtstereo.sources.video import TwoVideoSource
from rtstereo.stream import Stream
from rtstereo.temporal import TemporalFilter, mean_flicker_px

REPO = Path(__file__).resolve().parents[1]


# -- rendered scenes -----------------------------------------------------------------------------


def texture(height: int, width: int, rng: np.random.Generator, blob_px: int = 4) -> np.ndarray:
    coarse = rng.integers(0, 256, size=(height // blob_px + 2, width // blob_px + 2, 3), dtype=np.uint8)
    return cv2.resize(coarse, None, fx=blob_px, fy=blob_px, interpolation=cv2.INTER_CUBIC)[:height, :width]


def render(
    frames: int, height: int = 480, width: int = 640, moving: bool = True, noise: float = 0.0, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured background at 24 px and a textured rectangle at 64 px disparity (moving if asked).

    The rectangle moves 4 px a frame to the right from a third of the width and bounces back at the
    edges, so it stays whole in both views however long the clip (86 px wide or more).
    """
    background_px, rectangle_px = 24, 64
    rng = np.random.default_rng(seed)
    background = texture(height, width + background_px, rng)
    patch = texture(height // 2, width // 4, rng)
    y0, (h, w) = height // 4, patch.shape[:2]
    # the left x0 at which the rectangle is whole in the left view and, shifted, in the right view
    lowest_x0, span = rectangle_px, width - w - rectangle_px
    if span < 0:
        raise ValueError(f"a {width} px wide clip is too narrow for the {rectangle_px} px rectangle (86 px or more)")
    lefts, rights = [], []
    for t in range(frames):
        # left x shows what right shows at x - d
        left = background[:, :width].copy()
        right = background[:, background_px:].copy()
        travel = (max(width // 3 - lowest_x0, 0) + (4 * t if moving else 0)) % (2 * span or 1)
        x0 = lowest_x0 + (travel if travel <= span else 2 * span - travel)
        left[y0 : y0 + h, x0 : x0 + w] = patch
        right[y0 : y0 + h, x0 - rectangle_px : x0 - rectangle_px + w] = patch
        if noise:
            left = np.clip(left + rng.normal(0, noise, left.shape), 0, 255).astype(np.uint8)
            right = np.clip(right + rng.normal(0, noise, right.shape), 0, 255).astype(np.uint8)
        lefts.append(left)
        rights.append(right)
    return lefts, rights


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class Keep(Sink):
    """Keeps every disparity in memory (for the flicker figures)."""

    def __init__(self):
        self.disparities: list[np.ndarray] = []

    def write(self, frame):
        self.disparities.append(frame.result.disparity_px)

    def close(self):
        pass

    @property
    def outputs(self):
        return []


# -- models --------------------------------------------------------------------------------------


def predictors(include_rtnet: bool) -> dict[str, rtstereo.runtime.predictor.Predictor]:
    models = {"sgbm (max disp 192)": rtstereo.load("sgbm", max_disp=192)}
    models[f"default (= {resolve_alias('default')})"] = rtstereo.load("default")
    if include_rtnet:
        try:
            from rtstereo.models import get_spec
            from rtstereo.models.registry import import_object
            from rtstereo.runtime.backends import TorchBackend
            from rtstereo.runtime.predictor import Predictor

            spec = get_spec("rtnet")
            settings = spec.resolve_settings({"max_disp": 192})
            module = import_object(spec.builder)(settings)
            models["rtnet (untrained, torch fp32 CPU)"] = Predictor(spec, settings, TorchBackend(module))
        except Exception as exc:  # noqa: BLE001 - the figure is optional
            print(f"rtnet skipped: {exc}", file=sys.stderr)
    return models


# -- measurements --------------------------------------------------------------------------------


def stage_fps(folder: Path, frames: int, models: dict) -> dict:
    lefts, rights = render(frames)
    left = write_video(folder / "left.mp4", lefts)
    right = write_video(folder / "right.mp4", rights)
    results = {}
    for label, predictor in models.items():
        out = folder / label.split()[0]
        sinks = [VideoSink(out / "out.mp4", fps=30), DisparityPngSink(out / "disp")]
        stream = Stream(TwoVideoSource(left, right), predictor, sinks=sinks, colour_scale=ColourScale(192))
        summary = stream.run()
        slowest = min(s["fps"] for s in summary.stages.values())
        serial_ms = sum(s["ms_per_frame"] for s in summary.stages.values())
        results[label] = {
            "stages": summary.stages,
            "end_to_end_fps": summary.throughput_fps,
            "slowest_stage_fps": slowest,
            "serial_fps": round(1e3 / serial_ms, 3),
            "overlap_efficiency": round(summary.throughput_fps / slowest, 3),
            "frames": summary.frames_written,
        }
        print(f"\n{label}:\n{summary.report()}")
    return results


def flicker(folder: Path, frames: int, predictor) -> dict:
    lefts, rights = render(frames, moving=False, noise=3.0, seed=1)
    left = write_video(folder / "static_left.mp4", lefts)
    right = write_video(folder / "static_right.mp4", rights)
    figures = {}
    for label, temporal in (("without --temporal", None), ("with --temporal", TemporalFilter())):
        keep = Keep()
        Stream(TwoVideoSource(left, right), predictor, sinks=[keep], temporal=temporal).run()
        valid = float(np.mean([np.isfinite(d).mean() for d in keep.disparities]))
        figures[label] = {
            "flicker_px": round(mean_flicker_px(keep.disparities), 4),
            "valid_fraction": round(valid, 4),
        }
    raw, filtered = (figures[k]["flicker_px"] for k in ("without --temporal", "with --temporal"))
    figures["reduction"] = round(1 - filtered / raw, 4)
    figures["temporal_settings"] = TemporalFilter().settings()
    return figures


def environment(**more_versions: str) -> dict:
    """Date, commit, hardware and versions of a benchmark's record (``more_versions``: of the libraries only that
    benchmark runs, such as ``ray``)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "rtstereo": rtstereo.__version__,
    }
    try:
        import torch

        versions["torch"] = torch.__version__
        versions["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    versions.update(more_versions)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "system": platform.platform(),
        },
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per video (default: %(default)s)")
    parser.add_argument("--flicker-frames", type=int, default=30, help="frames of the static scene")
    parser.add_argument("--no-rtnet", action="store_true", help="skip the untrained rtnet speed figure")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "stream_fps.json"))
    args = parser.parse_args(argv)
    models = predictors(include_rtnet=not args.no_rtnet)
    with tempfile.TemporaryDirectory() as tmp:
        speed = stage_fps(Path(tmp), args.frames, models)
        flicker_figures = flicker(Path(tmp), args.flicker_frames, models["sgbm (max disp 192)"])
    print("\nflicker, SGBM on a static noisy scene:", json.dumps(flicker_figures, indent=2))
    report = {
        **environment(),
        "size_wh": [640, 480],
        "frames": args.frames,
        "speed": speed,
        "flicker_sgbm_static_scene": flicker_figures,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
