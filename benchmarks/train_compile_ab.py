"""Does ``torch.compile`` make the training step faster on this machine?

The train step alone (``rtstereo.train.step.TrainStep``: forward, loss, backward, clipping, AdamW) on
one rendered and augmented batch, eager and under ``torch.compile`` (inductor), both built from the same
seed in one process and alternated step by step (the order flips every round), so that load from other
processes hits both alike. Each step is timed in wall-clock seconds and in seconds of this process's CPU
time; on a shared CPU the CPU time is the steadier figure (it leaves out the time other processes held
the cores). Compiling happens first and is timed apart.

Usage::

    PYTHONPATH=src python benchmarks/train_compile_ab.py --size 160x320 --rounds 6 --threads 1
    PYTHONPATH=src python benchmarks/train_compile_ab.py --device cuda --batch-size 32 --size 256x512
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train_throughput  # noqa: E402  (the benchmark next to this one)

from rtstereo.bench import git_commit, machine_info  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = train_throughput.ab_parser(__doc__.split("\n\n")[0], threads=1)
    parser.add_argument("--rounds", type=int, default=6, help="timed steps of each form, alternated (default: 6)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each form first (default: 2)")
    return parser.parse_args(argv)


def build_step(job: dict, device: str, compiled: bool):
    """A lean train step of the recipe's network (weights from seed 0), eager or compiled."""
    import torch

    from rtstereo.train import loop
    from rtstereo.train.step import TrainStep, make_optimizer

    config = train_throughput._config(job)
    torch.manual_seed(0)
    model, spec, settings = loop.build_network(config.model, dict(config.settings))
    model.to(device, memory_format=torch.channels_last).train()
    optimizer = make_optimizer(list(model.parameters()), config)
    network = torch.compile(model) if compiled else model
    dtype = loop.autocast_dtype("auto", torch.device(device))
    return TrainStep(network, optimizer, None, spec, config, dtype, float(settings.get("max_disp", 192)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from rtstereo.datasets.synthetic import render_batch
    from rtstereo.train.augment import augment_batch

    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    height, width = train_throughput.size_list(args.size)[0]
    recipe = train_throughput.read_recipe(args.recipe)
    job = {"recipe": recipe, "size": [height, width], "batch": args.batch_size, "threads": args.threads}
    batch = render_batch(
        args.batch_size, height, width, seed=1, max_disp_px=float(recipe.get("data_max_disp") or 192.0)
    )
    batch = augment_batch(batch, torch.Generator().manual_seed(0), (height, width))
    batch = {key: value.to(args.device) for key, value in batch.items()}
    forms = {"eager": build_step(job, args.device, False), "compiled": build_step(job, args.device, True)}

    def timed_step(form: str, index: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        forms[form](batch, index)
        train_throughput._sync(args.device)
        return time.perf_counter() - wall, time.process_time() - cpu

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    compile_s = sum(timed_step("compiled", index)[0] for index in range(args.warmup))
    for index in range(args.warmup):
        timed_step("eager", index)
    print(f"compiling and {args.warmup} warm-up steps: {compile_s:.1f} s", flush=True)
    runs: list[dict] = []
    for round_index in range(args.rounds):
        for form in ("eager", "compiled") if round_index % 2 == 0 else ("compiled", "eager"):
            wall, cpu = timed_step(form, args.warmup + round_index)
            runs.append({"round": round_index, "form": form, "wall_s": wall, "cpu_s": cpu})
            print(f"round {round_index}: {form:8s} {wall:.3f} s wall, {cpu:.3f} s CPU", flush=True)
    medians = {
        form: {key: statistics.median(run[key] for run in runs if run["form"] == form) for key in ("wall_s", "cpu_s")}
        for form in forms
    }
    report = {
        "started": started,
        "commit": git_commit(),
        "machine": machine_info(args.device),
        "device": args.device,
        "threads": args.threads,
        "size": [height, width],
        "batch_size": args.batch_size,
        "compile_and_warmup_s": compile_s,
        "runs": runs,
        "medians": medians,
    }
    lines = [
        f"# The train step eager and under torch.compile, {args.device}, {height}x{width}, batch {args.batch_size}",
        "",
        f"{started}, commit {report['commit']}, torch {torch.__version__}, {args.threads} torch threads; "
        f"the step alone on one batch, {args.rounds} steps of each form alternated after {args.warmup} warm-up "
        f"steps each; compiling and the compiled warm-up took {compile_s:.0f} s.",
        "",
        "| form | median s per step, wall | median s per step, CPU | CPU seconds of each step |",
        "|---|---|---|---|",
    ]
    for form in forms:
        cpus = ", ".join(f"{run['cpu_s']:.3f}" for run in runs if run["form"] == form)
        lines.append(f"| {form} | {medians[form]['wall_s']:.3f} | {medians[form]['cpu_s']:.3f} | {cpus} |")
    ratio = medians["eager"]["cpu_s"] / medians["compiled"]["cpu_s"]
    lines += ["", f"Eager / compiled, median CPU time: {ratio:.3f} (above 1: compiling pays)."]
    stem = f"compile_ab_{args.device}_{height}x{width}_{time.strftime('%Y%m%dT%H%M%S')}"
    train_throughput.write_ab_report(args.output_dir, stem, report, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
