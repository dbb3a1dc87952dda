"""Does making the next batch in a background thread (``rtstereo train --prefetch``) pay on this machine?

``rtstereo.train.train`` end to end (rendering, augmenting, stepping) with the batch thread on and off,
the two alternated round by round (the order flips every round) in one process, so that load from
other processes hits both alike; pairs per second as ``benchmarks/train_throughput.py`` measures its
"end to end" figure (median step between log lines, after warm-up steps). The default it informs is
:func:`rtstereo.train.prefetch.prefetch_wanted`.

Usage::

    PYTHONPATH=src python benchmarks/train_prefetch_ab.py --size 160x320 --rounds 6
    PYTHONPATH=src python benchmarks/train_prefetch_ab.py --size 256x512 --rounds 4 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train_throughput  # noqa: E402  (the benchmark next to this one)

from rtstereo.bench import git_commit, machine_info  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = train_throughput.ab_parser(__doc__.split("\n\n")[0], threads=2)
    parser.add_argument("--rounds", type=int, default=6, help="runs of each setting, alternated (default: 6)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run (default: 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    height, width = train_throughput.size_list(args.size)[0]
    job = {
        "recipe": train_throughput.read_recipe(args.recipe),
        "size": [height, width],
        "batch": args.batch_size,
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    runs: list[dict] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    for round_index in range(args.rounds):
        for prefetch in (True, False) if round_index % 2 == 0 else (False, True):
            rate = train_throughput.measure_end_to_end(job, args.device, prefetch=prefetch)["wall"]
            runs.append({"round": round_index, "prefetch": prefetch, "pairs_per_s": rate, "load": os.getloadavg()[0]})
            print(f"round {round_index}: prefetch {'on ' if prefetch else 'off'} {rate:.2f} pairs/s", flush=True)
    medians = {
        setting: statistics.median(run["pairs_per_s"] for run in runs if run["prefetch"] == setting)
        for setting in (True, False)
    }
    wins = sum(
        on["pairs_per_s"] > off["pairs_per_s"]
        for on, off in zip(
            (run for run in runs if run["prefetch"]), (run for run in runs if not run["prefetch"]), strict=True
        )
    )
    report = {
        "started": started,
        "commit": git_commit(),
        "machine": machine_info(),
        "device": args.device,
        "threads": args.threads,
        "size": [height, width],
        "batch_size": args.batch_size,
        "runs": runs,
        "median_pairs_per_s": {"prefetch": medians[True], "no_prefetch": medians[False]},
        "rounds_prefetch_faster": wins,
    }
    lines = [
        f"# The batch thread on and off, {args.device}, {height}x{width}, batch {args.batch_size}",
        "",
        f"{started}, commit {report['commit']}, {args.threads} torch threads; `rtstereo train` end to end, "
        f"median step of {args.steps} after {args.warmup} warm-up, settings alternated over {args.rounds} rounds.",
        "",
        "| prefetch | median pairs/s | runs |",
        "|---|---|---|",
    ]
    for setting, label in ((True, "on"), (False, "off")):
        rates = ", ".join(f"{run['pairs_per_s']:.2f}" for run in runs if run["prefetch"] == setting)
        lines.append(f"| {label} | {medians[setting]:.2f} | {rates} |")
    lines += ["", f"On / off: {medians[True] / medians[False]:.3f}; on faster in {wins} of {args.rounds} rounds."]
    stem = f"prefetch_ab_{args.device}_{height}x{width}_{time.strftime('%Y%m%dT%H%M%S')}"
    train_throughput.write_ab_report(args.output_dir, stem, report, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
