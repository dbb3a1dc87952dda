"""``rtstereo video`` before and after a change to the stream pipeline, alternated in one run.

What it measures: the command line a user runs, ``rtstereo video LEFT RIGHT -o out.mp4 --model
MODEL``, on a generated clip (two 640x480 mp4 files of a moving textured scene, rendered as in
``stream_fps.py``), once with the source tree of the ``--before`` revision (checked out in a
temporary git worktree) and once with this checkout, in turn: before, after, before, after... Each
run's JSON summary gives the end-to-end FPS, each stage's own FPS (frames per second of its busy
time: capture = decode two videos + colour conversion, inference, write = preview + mp4) and the
limit; the command's wall time (Python start-up and model loading included) is measured here. The
machine may be shared, so each round's after/before ratio is taken in the same minutes, and the load
average is recorded before every run.

The serial estimate, ``1000 / sum(ms per frame of the stages)``, is the rate a loop doing the three
stages one after another would reach with the same stage times: the gain of the overlap.

Usage::

    python benchmarks/stream_overlap.py                      # before = the commit before the change
    python benchmarks/stream_overlap.py --before HEAD~1 --rounds 5 --frames 90 --model sgbm
    python benchmarks/stream_overlap.py --model sgbm --args="--max-disp 32"   # a fast model: I/O matters
    python benchmarks/stream_overlap.py --before none --clip-size 720x1280 --args="--device cuda"  # GPU check
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from stream_fps import render, write_video  # noqa: E402 - the same rendered scene as the stream figures

DEFAULT_BEFORE = "48abd41~1"  # the last commit before the live hand-over and the per-stage progress line
STAGES = ("capture", "inference", "write")


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def run_video(src: Path, left: Path, right: Path, out: Path, model: str, extra: list[str]) -> dict:
    """One ``rtstereo video`` run with the package from ``src``: its summary, wall time, last progress note."""
    summary_path = out.with_suffix(".json")
    command = [sys.executable, "-m", "rtstereo", "video", str(left), str(right), "-o", str(out)]
    command += ["--model", model, "--summary", str(summary_path), *extra]
    env = {**os.environ, "PYTHONPATH": str(src)}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"rtstereo video failed ({src}):\n{done.stderr[-2000:]}")
    summary = json.loads(summary_path.read_text())
    notes = [part.strip() for part in done.stderr.replace("\r", "\n").splitlines() if "limit:" in part]
    return {
        "end_to_end_fps": summary["throughput_fps"],
        "stages_fps": {name: summary["stages"][name]["fps"] for name in STAGES},
        "stages_ms_per_frame": {name: summary["stages"][name]["ms_per_frame"] for name in STAGES},
        "serial_estimate_fps": round(1e3 / sum(summary["stages"][n]["ms_per_frame"] for n in STAGES), 3),
        "limit": summary.get("bottleneck"),
        "frames": summary["frames_written"],
        "stream_wall_s": summary["wall_s"],
        "command_wall_s": round(wall_s, 3),
        "load_average_1min": round(load, 2),
        "progress_note": notes[-1] if notes else None,
        "report": done.stdout.strip(),
    }


def environment() -> dict:
    """The machine (:func:`rtstereo.bench.machine_info`) and the thread setting of the runs."""
    from rtstereo.bench import machine_info

    return {"machine": machine_info(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def markdown(report: dict) -> str:
    versions = list(report["median"])
    after = report["after"]["commit"][:10]
    title = f"# `rtstereo video` at {after}"
    if report["before"]["commit"]:
        title = f"# `rtstereo video` before ({report['before']['commit'][:10]}) and after ({after}), alternated"
    lines = [
        title,
        "",
        f"{report['machine']['date']}; {report['frames']} frames of two generated {report['size_wh'][0]}x"
        f"{report['size_wh'][1]} mp4 files; `--model {report['model']}{report['args'] and ' ' + report['args']}`, "
        "`-o out.mp4`; "
        f"{report['machine']['cpu_count']} CPU cores ({report['machine']['cpu']}), shared: load "
        f"average {min(report['load_averages']):.1f}-{max(report['load_averages']):.1f} during the runs.",
        "",
        "Stage FPS = frames per second of the stage's own busy time; serial estimate = 1000 / sum of the "
        "stages' ms per frame (the three stages one after another).",
        "",
        "| round | version | end to end fps | capture fps | inference fps | write fps | limit | serial estimate fps "
        "| command s | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, pair in enumerate(report["rounds"], 1):
        for version in versions:
            run = pair[version]
            stages = " | ".join(f"{run['stages_fps'][n]:.1f}" for n in STAGES)
            lines.append(
                f"| {number} | {version} | {run['end_to_end_fps']:.2f} | {stages} | {run['limit']} "
                f"| {run['serial_estimate_fps']:.2f} | {run['command_wall_s']:.1f} | {run['load_average_1min']:.1f} |"
            )
    median = report["median"]
    lines += [
        "",
        "| median | end to end fps | capture fps | inference fps | write fps | command s |",
        "|---|---|---|---|---|---|",
    ]
    for version in versions:
        m = median[version]
        stages = " | ".join(f"{m['stages_fps'][n]:.1f}" for n in STAGES)
        lines.append(f"| {version} | {m['end_to_end_fps']:.2f} | {stages} | {m['command_wall_s']:.1f} |")
    ratios = ", ".join(f"{r:.3f}" for r in report["end_to_end_ratio_per_round"])
    if ratios:
        lines += ["", f"End-to-end after/before per round: {ratios} (median {report['end_to_end_ratio_median']:.3f})."]
    lines += [
        "",
        f"End to end / slowest stage (after, median): {report['overlap_efficiency_after']:.0%}; "
        f"overlap gain over the serial estimate (after, median): {report['overlap_gain_after']:.2f}x.",
        "",
        "The last run's progress note and summary (after):",
        "",
        "```",
        str(report["rounds"][-1]["after"]["progress_note"]),
        report["rounds"][-1]["after"]["report"],
        "```",
        "",
    ]
    return "\n".join(lines)


def medians(runs: list[dict]) -> dict:
    return {
        "end_to_end_fps": statistics.median(r["end_to_end_fps"] for r in runs),
        "stages_fps": {n: statistics.median(r["stages_fps"][n] for r in runs) for n in STAGES},
        "serial_estimate_fps": statistics.median(r["serial_estimate_fps"] for r in runs),
        "command_wall_s": statistics.median(r["command_wall_s"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="git revision to compare with (default: %(default)s)")
    parser.add_argument("--model", default="default", help="model name (default: %(default)s)")
    parser.add_argument("--args", default="", help='more rtstereo video options, e.g. --args="--max-disp 32"')
    parser.add_argument("--clip-size", default="480x640", metavar="HxW", help="size of the clip (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the clip (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="before/after pairs (default: %(default)s)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream"), help="folder for MD + JSON")
    args = parser.parse_args(argv)

    height, width = (int(n) for n in args.clip_size.lower().split("x"))
    compare = args.before.lower() != "none"
    before_commit = git("rev-parse", args.before) if compare else None
    after_commit = git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain", "--", "src") else "")
    with tempfile.TemporaryDirectory(prefix="stream_overlap_") as tmp:
        tmp_path = Path(tmp)
        worktree = tmp_path / "before"
        if compare:
            git("worktree", "add", "--detach", str(worktree), before_commit)
        try:
            lefts, rights = render(args.frames, height=height, width=width)
            left = write_video(tmp_path / "left.mp4", lefts)
            right = write_video(tmp_path / "right.mp4", rights)
            trees = {"before": worktree / "src", "after": REPO / "src"} if compare else {"after": REPO / "src"}
            rounds = []
            for number in range(args.rounds):
                pair = {}
                for version, src in trees.items():
                    pair[version] = run_video(
                        src, left, right, tmp_path / f"{version}{number}.mp4", args.model, shlex.split(args.args)
                    )
                    print(
                        f"round {number + 1} {version}: {pair[version]['end_to_end_fps']:.2f} fps end to end, "
                        f"stages {pair[version]['stages_fps']}, limit {pair[version]['limit']}, "
                        f"load {pair[version]['load_average_1min']}",
                        flush=True,
                    )
                rounds.append(pair)
        finally:
            if compare:
                git("worktree", "remove", "--force", str(worktree))

    after_runs = [r["after"] for r in rounds]
    per_round = [r["after"]["end_to_end_fps"] / r["before"]["end_to_end_fps"] for r in rounds] if compare else []
    report = {
        **environment(),
        "model": args.model,
        "args": args.args,
        "frames": args.frames,
        "size_wh": [width, height],
        "before": {"revision": args.before, "commit": before_commit},
        "after": {"commit": after_commit},
        "rounds": rounds,
        "median": {version: medians([r[version] for r in rounds]) for version in rounds[0]},
        "end_to_end_ratio_per_round": [round(r, 3) for r in per_round],
        "end_to_end_ratio_median": round(statistics.median(per_round), 3) if per_round else None,
        "overlap_efficiency_after": round(
            statistics.median(r["end_to_end_fps"] / min(r["stages_fps"].values()) for r in after_runs), 3
        ),
        "overlap_gain_after": round(
            statistics.median(r["end_to_end_fps"] / r["serial_estimate_fps"] for r in after_runs), 3
        ),
        "load_averages": [run["load_average_1min"] for r in rounds for run in r.values()],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    json_path, md_path = out / f"stream_overlap_{stamp}.json", out / f"stream_overlap_{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    print(markdown(report))
    print(f"written: {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
