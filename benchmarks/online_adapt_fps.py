"""Does online adaptation slow a stream down? ``rtstereo video`` with and without ``--adapt`` (issue 22).

A 300-frame stereo video is rendered (moving rendered scenes, two mp4 files) and played through
``rtstereo video`` with rtnet-v5's PyTorch state (``training/default/state.pt``, the same network and
backend in every run), in rounds that alternate the variants in the same minutes (the machine is
shared, so only ratios taken side by side mean anything):

- ``plain``: no adaptation;
- ``process-low``: ``--adapt`` with a step every 10 frames in a child process (one CPU thread) at the
  lowest CPU priority (``--adapt-worker process --adapt-priority low``: the defaults);
- ``process-normal``: the same at normal priority; ``process-low-every30``: low, a step every 30 frames;
- ``process-frozen``, ``thread-frozen``: frozen from the start (``--adapt-until 0.001``): the
  machinery alone, the child process's start included, no steps;
- ``thread-low``, ``thread-normal``: the steps on a thread of the stream's process (``--adapt-worker
  thread``), at the lowest or normal priority; ``thread-normal-every30``: a step every 30 frames.

Per run: the capture stage's frames per wall-clock second (frames read / wall time) and its own rate
(frames per busy second), the inference stage's own rate, the output rate (frames written per
wall-clock second, end to end), and for the adapting runs the steps done. The wall time is the frames'
(from the start to the last frame written): the outputs' closing after it (the adapter's shutdown and
save) is recorded apart, as ``closing_s``. Results:
``benchmarks/results/adapt/online_fps.json`` and ``.md`` with date, commit, hardware and load.

Usage::

    python benchmarks/online_adapt_fps.py                         # 300 frames 192x320, 3 rounds
    python benchmarks/online_adapt_fps.py --frames 60 --rounds 1 --out /tmp/online
    python benchmarks/online_adapt_fps.py --model hybrid --set network=training/guided/state.pt \\
        --variants plain,process-low,process-frozen --name online_fps_default    # default's form
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from rtstereo.bench import git_commit, machine_info
from rtstereo.datasets.synthetic import render_batch

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / "training" / "default" / "state.pt"
VARIANTS = {
    "plain": [],
    "process-low": ["--adapt", "--adapt-worker", "process", "--adapt-priority", "low", "--adapt-every", "10"],
    "process-normal": ["--adapt", "--adapt-worker", "process", "--adapt-priority", "normal", "--adapt-every", "10"],
    "process-low-every30": ["--adapt", "--adapt-worker", "process", "--adapt-priority", "low", "--adapt-every", "30"],
    "process-frozen": ["--adapt", "--adapt-worker", "process", "--adapt-until", "0.001"],
    "thread-frozen": ["--adapt", "--adapt-worker", "thread", "--adapt-until", "0.001"],
    "thread-low": ["--adapt", "--adapt-worker", "thread", "--adapt-priority", "low", "--adapt-every", "10"],
    "thread-normal": ["--adapt", "--adapt-worker", "thread", "--adapt-priority", "normal", "--adapt-every", "10"],
    "thread-normal-every30": [
        "--adapt",
        "--adapt-worker",
        "thread",
        "--adapt-priority",
        "normal",
        "--adapt-every",
        "30",
    ],
}
DEFAULT_VARIANTS = "plain,process-low,process-normal,thread-low"
SCENES = 10  # rendered scenes; the camera pans over each for frames/SCENES frames


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="192x320", help="HxW of each view (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="times each variant runs, alternated")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated, from " + ", ".join(VARIANTS))
    parser.add_argument("--model", default=str(STATE), help="a PyTorch network (default: rtnet-v5's state)")
    parser.add_argument(
        "--set",
        dest="set_values",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model setting for every variant, repeatable: `--model hybrid --set network=training/guided/state.pt` "
        "is default's hybrid with its guided network in PyTorch, plain or adapting",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "adapt"), help="results folder")
    parser.add_argument("--name", default="online_fps", help="results file name, without suffix (default: %(default)s)")
    return parser.parse_args(argv)


def render_video(folder: Path, frames: int, height: int, width: int) -> tuple[Path, Path]:
    """Two mp4 files: the camera pans 2 px a frame over each of ``SCENES`` rendered scenes in turn."""
    per_scene = -(-frames // SCENES)
    pan_px = 2 * per_scene
    batch = render_batch(SCENES, height, width + pan_px, seed=7, max_disp_px=width / 5)
    views = {k: (batch[k].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8) for k in ("left", "right")}
    paths = {}
    for key, images in views.items():
        paths[key] = folder / f"{key}.mp4"
        writer = cv2.VideoWriter(str(paths[key]), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
        for t in range(frames):
            x0 = 2 * (t % per_scene)
            writer.write(
                cv2.cvtColor(np.ascontiguousarray(images[t // per_scene][:, x0 : x0 + width]), cv2.COLOR_RGB2BGR)
            )
        writer.release()
    return paths["left"], paths["right"]


def run_variant(
    name: str, videos: tuple[Path, Path], model: str, folder: Path, index: int, settings: list[str] = ()
) -> dict:
    summary = folder / f"{name}-{index}.json"
    saved = folder / f"{name}-{index}.pt"
    command = [sys.executable, "-m", "rtstereo", "video", *map(str, videos), "--model", model, "-q"]
    command += [part for item in settings for part in ("--set", item)]
    command += ["--summary", str(summary), *VARIANTS[name]]
    if VARIANTS[name]:
        command += ["--adapt-save", str(saved)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    process_s = time.perf_counter() - started
    stream = json.loads(summary.read_text())
    stages = stream["stages"]
    row = {
        "variant": name,
        "round": index,
        "frames": stream["frames_written"],
        # The stream's time ends with its last frame written: the outputs' closing (with --adapt, the adapter's
        # shutdown and the save of --adapt-save) is closing_s, apart; runs before 6b1f3fa counted it in wall_s.
        "wall_s": stream["wall_s"],
        "closing_s": stream.get("closing_s"),
        "process_s": round(process_s, 2),
        "capture_fps": round(stream["frames_read"] / stream["wall_s"], 3),
        "capture_stage_fps": stages["capture"]["fps"],
        "inference_stage_fps": stages["inference"]["fps"],
        "output_fps": stream["throughput_fps"],
        "load_average_1min": round(load, 2),
    }
    if VARIANTS[name]:
        adaptation = torch.load(saved, weights_only=True)["adaptation"]
        row.update(
            adapt_steps=adaptation["steps"],
            adapt_busy_s=adaptation["step_busy_s"],
            photometric_first=adaptation["loss_first_steps"].get("photometric"),
            photometric_last=adaptation["loss_last_steps"].get("photometric"),
        )
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: list[dict], names: list[str]) -> dict:
    """Per variant: the mean of each rate over rounds, and its ratio to ``plain``."""
    means = {}
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        means[name] = {
            key: round(float(np.mean([r[key] for r in mine])), 3)
            for key in ("capture_fps", "capture_stage_fps", "inference_stage_fps", "output_fps", "adapt_steps")
            if key in mine[0]
        }
    if "plain" in means:
        plain = {r["round"]: r["output_fps"] for r in rows if r["variant"] == "plain"}
        for name in names:
            for key in ("capture_fps", "output_fps", "inference_stage_fps"):
                means[name][f"{key}_ratio"] = round(means[name][key] / means["plain"][key], 3)
            # Each round's output rate over the plain run's of the same round: single runs on a shared
            # machine spread by several per cent, so the spread is reported beside the mean's ratio.
            ratios = [r["output_fps"] / plain[r["round"]] for r in rows if r["variant"] == name and r["round"] in plain]
            if ratios:
                means[name]["round_ratios"] = {
                    "median": round(float(np.median(ratios)), 3),
                    "min": round(min(ratios), 3),
                    "max": round(max(ratios), 3),
                    "under_0.9": sum(ratio < 0.9 for ratio in ratios),
                }
    return means


def markdown(result: dict) -> str:
    lines = [
        "# Online adaptation: stream rate with and without `--adapt`",
        "",
        f"{result['frames']} frames of a rendered {result['size']} two-file video through `rtstereo video` "
        f"with `{Path(result['model']).name}`"
        + "".join(f" `--set {item}`" for item in result.get("settings", []))
        + f" (torch backend), {result['rounds']} alternated round(s) per variant. "
        f"{result['cpu_threads']} CPU threads of a shared machine, load average {result['load_average_at_start']} "
        f"at the start and {result['load_average_at_end']} at the end. Commit {result['commit']}, {result['date']}. "
        "Rates over the frames' wall time (start to last frame written), without the outputs' closing (closing_s).",
        "",
        "| variant | capture fps (read/wall) | ratio | output fps (end to end) | ratio | inference stage fps "
        "| ratio | output ratio per round: median (range), rounds under 0.9 | adapter steps |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, m in result["means"].items():
        spread = m.get("round_ratios")
        per_round = "-"
        if spread:
            per_round = f"{spread['median']:.3f} ({spread['min']:.3f}-{spread['max']:.3f}), {spread['under_0.9']}"
        lines.append(
            f"| {name} | {m['capture_fps']:.2f} | {m.get('capture_fps_ratio', 1):.3f} | {m['output_fps']:.2f} | "
            f"{m.get('output_fps_ratio', 1):.3f} | {m['inference_stage_fps']:.2f} | "
            f"{m.get('inference_stage_fps_ratio', 1):.3f} | {per_round} | {m.get('adapt_steps', '-')} |"
        )
    lines += ["", "Every run:", "", "```"] + [json.dumps(r) for r in result["runs"]] + ["```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    height, width = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        videos = render_video(folder, args.frames, height, width)
        for index in range(args.rounds):
            for name in names if index % 2 == 0 else names[::-1]:  # alternate the order too
                rows.append(run_variant(name, videos, args.model, folder, index, args.set_values))
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_info(),
        "cpu_threads": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_before],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "frames": args.frames,
        "size": f"{height}x{width}",
        "rounds": args.rounds,
        "model": args.model,
        "settings": args.set_values,
        "variants": {name: VARIANTS[name] for name in names},
        "runs": rows,
        "means": summarise(rows, names),
    }
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
