"""Decoding two videos: one after the other (left, then right) against at once (``TwoVideoSource``).

What it measures: pairs per second read from two generated mp4 files of the given size, nothing else
running in this process (the capture stage of ``rtstereo video`` when the model runs on a GPU and the
CPU is free for decoding). ``serial`` reads left then right with :class:`VideoReader`, as
``TwoVideoSource`` did before it decoded the right video on a second thread; ``at once`` iterates
``TwoVideoSource``. The two alternate, round by round, so that a shared machine's load falls on both.

Usage::

    python benchmarks/decode_two_videos.py                       # 1280x720, 60 frames, 5 rounds
    python benchmarks/decode_two_videos.py --size 480x640 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from stream_fps import render, write_video  # noqa: E402

from rtstereo.bench import machine_info  # noqa: E402
from rtstereo.sources.video import TwoVideoSource, VideoReader  # noqa: E402


def serial_pairs(left: Path, right: Path) -> int:
    readers = VideoReader(left), VideoReader(right)
    count = 0
    try:
        while readers[0].read() is not None and readers[1].read() is not None:
            count += 1
    finally:
        for reader in readers:
            reader.release()
    return count


def at_once_pairs(left: Path, right: Path) -> int:
    return sum(1 for _ in TwoVideoSource(left, right))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="720x1280", metavar="HxW", help="frame size (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=60, help="frames per video (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="alternations (default: %(default)s)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream"), help="folder for MD + JSON")
    args = parser.parse_args(argv)
    height, width = (int(n) for n in args.size.lower().split("x"))
    ways = {"serial": serial_pairs, "at once": at_once_pairs}
    rows = []
    with tempfile.TemporaryDirectory(prefix="decode_two_") as tmp:
        lefts, rights = render(args.frames, height=height, width=width)
        left, right = write_video(Path(tmp) / "l.mp4", lefts), write_video(Path(tmp) / "r.mp4", rights)
        for number in range(args.rounds):
            for way, read in ways.items():
                load = os.getloadavg()[0]
                started = time.perf_counter()
                pairs = read(left, right)
                rate = pairs / (time.perf_counter() - started)
                rows.append({"round": number + 1, "way": way, "pairs_per_s": round(rate, 1), "load": round(load, 2)})
                print(rows[-1], flush=True)
    median = {way: statistics.median(r["pairs_per_s"] for r in rows if r["way"] == way) for way in ways}
    ratios = [b["pairs_per_s"] / a["pairs_per_s"] for a, b in zip(rows[::2], rows[1::2])]
    machine = machine_info()
    report = {
        "machine": machine,
        "size_wh": [width, height],
        "frames": args.frames,
        "codec": "mp4v",
        "rows": rows,
        "median_pairs_per_s": median,
        "at_once_over_serial_per_round": [round(r, 3) for r in ratios],
    }
    lines = [
        f"# Decoding two {width}x{height} mp4v videos: one after the other vs at once",
        "",
        f"{machine['date']}, commit {machine['commit'][:10]}, {machine['cpu_count']} CPU cores, shared: load average "
        f"{min(r['load'] for r in rows):.1f}-{max(r['load'] for r in rows):.1f}. {args.frames} frames, "
        f"{args.rounds} alternated rounds; pairs per second, decoding only.",
        "",
        "| round | serial | at once | ratio |",
        "|---|---|---|---|",
    ]
    for a, b, ratio in zip(rows[::2], rows[1::2], ratios):
        lines.append(f"| {a['round']} | {a['pairs_per_s']:.1f} | {b['pairs_per_s']:.1f} | {ratio:.2f} |")
    lines += ["", f"Median: serial {median['serial']:.1f}, at once {median['at once']:.1f} pairs/s.", ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    (out / f"decode_two_videos_{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"decode_two_videos_{stamp}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
