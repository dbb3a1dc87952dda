"""Training throughput: pairs/s of scene rendering, augmentation, the train step and the whole loop.

For each training size (the recipe's crop from ``training/default.yaml`` and 256x512) and each batch
size, on ``--device cpu`` or ``cuda``, it measures in pairs per second:

- **render**: ``rtstereo.datasets.synthetic.render_batch`` at the crop size (what the training stream
  renders before augmenting);
- **augment**: ``rtstereo.train.augment.augment_batch`` on a rendered batch;
- **step**: the train step alone on a fixed batch (forward, loss, backward, clipping, AdamW), with
  the recipe's network and precision ``auto``;
- **end to end**: ``rtstereo.train.train`` itself (rendering, augmenting, stepping, logging), timed
  between two of its log lines, after as many warm-up steps as timed ones; for the current code also
  with the background batch thread switched the other way from its default (``--prefetch`` on a CPU,
  ``--no-prefetch`` on a GPU) and, with ``--compile``, under ``torch.compile`` (the step alone too);
- **ops per render**: tensor operations launched by one ``render_batch`` call at 128x256 for batch 1
  and 16 (``torch.profiler`` events whose name starts with ``aten::``, nested ones included,
  profiled with one torch thread so that the renderer runs on the calling thread).

``--baseline-commit REV`` measures an older version of the code in the same run: its ``src/`` is taken
out of git (``git archive``) into a temporary folder and run in a subprocess with ``PYTHONPATH``
pointing there, configuration by configuration, alternating with the current code (also run in a
subprocess), so that load from other processes hits both alike. Ratios are new / old.

Usage::

    PYTHONPATH=src python benchmarks/train_throughput.py --device cpu --batch-sizes 8 --baseline-commit edbc63b
    PYTHONPATH=src python benchmarks/train_throughput.py --device cuda --batch-sizes 32,128 \\
        --baseline-commit edbc63b --steps 20                   # a GPU machine: about 3-5 minutes
    PYTHONPATH=src python benchmarks/train_throughput.py --device cpu --compile  # torch.compile's effect too

Writes ``train_throughput_<device>_<UTC time>.json`` and ``.md`` to ``--output-dir`` (date, commit,
CPU/GPU, versions, every figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "train_throughput"
FIGURES = ("render", "augment", "step", "end_to_end")
VARIANT_FIGURES = ("end_to_end_prefetch", "end_to_end_no_prefetch", "step_compiled", "end_to_end_compiled")


# ------------------------------------------------------------------------------ the worker side
# Runs in a subprocess against whichever rtstereo PYTHONPATH names, the current one or a baseline's;
# it only uses what both have: render_batch, augment_batch, train(TrainConfig), and the train step.


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(run: Callable[[int], Any], calls: int, pairs_per_call: int, device: str, finish=None) -> dict[str, float]:
    """Pairs per second of ``calls`` calls of ``run(index)``.

    On a CPU every call is timed alone and the median call counts (this project's machines are shared:
    a median shrugs off the calls another process slowed down); ``best`` is the fastest call. On a GPU
    the calls run back to back with one synchronisation at the end, as training runs them.
    ``cpu`` is pairs per second of this process's CPU time (all its threads).
    """
    finish = finish or (lambda: None)
    if device.startswith("cuda"):
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(calls):
            run(index)
        finish()
        _sync(device)
        walls, cpus = [(time.perf_counter() - wall) / calls], [(time.process_time() - cpu) / calls]
    else:
        walls, cpus = [], []
        for index in range(calls):
            wall, cpu = time.perf_counter(), time.process_time()
            run(index)
            finish()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return rates(walls, cpus, pairs_per_call)


def rates(walls: list[float], cpus: list[float], pairs: int) -> dict[str, float]:
    """Pairs per second from the seconds each call took: median and best wall-clock, median CPU time."""
    return {
        "wall": _rate(pairs, statistics.median(walls)),
        "best": _rate(pairs, min(walls)),
        "cpu": _rate(pairs, statistics.median(cpus)),
    }


def _rate(pairs: int, seconds: float) -> float:
    return round(pairs / seconds, 3) if seconds > 0 else math.inf


def measure_render(job: dict, device: str) -> tuple[dict[str, float], Any]:
    from rtstereo.datasets.synthetic import render_batch
    from rtstereo.train.loop import render_settings

    config = _config(job)
    height, width = job["size"]
    batches = []

    def render(seed: int) -> None:
        batch = render_batch(
            job["batch"],
            height,
            width,
            seed=seed,
            device=device,
            max_disp_px=job["scene_max_disp"],
            settings=render_settings(config),
        )
        batches[:] = [batch]

    render(10_000)  # warm-up (texture banks, kernels)
    _sync(device)
    return timed(render, job["steps"], job["batch"], device), batches[0]


def measure_augment(job: dict, device: str, batch: dict) -> dict[str, float]:
    import torch

    from rtstereo.train.augment import augment_batch

    crop = tuple(job["size"])
    augment_batch(batch, torch.Generator().manual_seed(0), crop)
    _sync(device)
    return timed(
        lambda index: augment_batch(batch, torch.Generator().manual_seed(index + 1), crop),
        job["steps"],
        job["batch"],
        device,
    )


def measure_step(job: dict, device: str, batch: dict, compiled: bool = False) -> dict[str, float]:
    import torch

    from rtstereo.train import loop
    from rtstereo.train.augment import augment_batch

    config = _config(job)
    torch.manual_seed(0)
    model, spec, settings = loop.build_network(config.model, dict(config.settings))
    max_disp = float(settings.get("max_disp", 192))
    dtype = loop.autocast_dtype("auto", torch.device(device))
    batch = augment_batch(batch, torch.Generator().manual_seed(0), tuple(job["size"]))  # as training sees it
    batch = {key: value.to(device) for key, value in batch.items()}
    try:  # the current code: the lean step
        from rtstereo.train.step import TrainStep, make_optimizer
    except ImportError:  # a baseline from before it: one function per step
        model.to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)

        def step(index: int) -> None:
            loop._train_step(model, optimizer, None, batch, spec, config, index, dtype, max_disp)

        finish = None  # the old step read its loss every time: nothing is left queued
    else:
        model.to(device, memory_format=torch.channels_last).train()
        optimizer = make_optimizer(list(model.parameters()), config)
        network = torch.compile(model) if compiled else model
        lean = TrainStep(network, optimizer, None, spec, config, dtype, max_disp)
        step = lambda index: lean(batch, index)  # noqa: E731
        finish = lean.flush if device.startswith("cuda") else None  # on a CPU nothing is ever queued
    for index in range(job["warmup"]):
        step(index)
    _sync(device)
    return timed(lambda index: step(job["warmup"] + index), job["steps"], job["batch"], device, finish)


def measure_end_to_end(job: dict, device: str, **options: bool) -> dict[str, float]:
    """``train()`` itself, timed between its log lines after ``warmup`` steps.

    On a CPU it logs every step (reading the loss costs nothing there) and the median step counts;
    on a GPU it logs every ``steps`` steps, so that the loop never waits for the device in between,
    and the second window counts. ``options``: config fields only the current code has
    (``compile``, ``prefetch``).
    """
    from rtstereo.train import train

    steps, warmup = job["steps"], max(1, job["warmup"])
    gpu = device.startswith("cuda")
    every = steps if gpu else 1
    total = 2 * steps if gpu else warmup + steps
    config = _config(job).replace(
        out_dir=tempfile.mkdtemp(prefix="rtstereo-throughput-"),
        device=device,
        steps=total,
        log_every=every,
        val_every=10**9,
        checkpoint_every=10**9,
        val_size=1,
        val_hw=(64, 128),
        precision="auto",
        **options,
    )
    stamps: dict[int, tuple[float, float]] = {}

    def echo(line: str) -> None:
        match = re.match(r"step (\d+)/", line)
        if match:
            stamps[int(match.group(1))] = (time.perf_counter(), time.process_time())

    train(config, echo=echo)
    first = steps if gpu else warmup
    ends = list(range(first + every, total + 1, every))
    walls = [stamps[end][0] - stamps[end - every][0] for end in ends]
    cpus = [stamps[end][1] - stamps[end - every][1] for end in ends]
    return rates(walls, cpus, job["batch"] * every)


def count_render_ops(batch_size: int, device: str) -> int:
    """``aten::`` operations of one ``render_batch(batch_size, 128, 256)`` call (one torch thread)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from rtstereo.datasets.synthetic import render_batch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU renderer then renders every item on this thread
    try:
        render_batch(batch_size, 128, 256, seed=1, device=device, max_disp_px=64.0)  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            render_batch(batch_size, 128, 256, seed=0, device=device, max_disp_px=64.0)
            _sync(device)
    finally:
        torch.set_num_threads(threads)
    return sum(1 for event in prof.events() if event.name.startswith("aten::"))


def _config(job: dict):
    from rtstereo.train import TrainConfig

    recipe = job["recipe"]
    return TrainConfig(
        model=recipe["model"],
        settings=recipe["settings"],
        crop_hw=tuple(job["size"]),
        batch_size=job["batch"],
        data_max_disp=recipe.get("data_max_disp"),
        noise_scale=recipe.get("noise_scale", 1.0),
        loss_weights=tuple(recipe["loss_weights"]),
        lr=recipe.get("lr", 1e-3),
        warmup_steps=1,
        threads=job["threads"],
        seed=0,
    )


def worker(job: dict) -> dict:
    """Every figure of one configuration (``job``), as a dict; a failing figure is an error string."""
    import torch

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    device = job["device"]
    out: dict[str, Any] = {}
    if job.get("op_counts"):
        for batch_size in (1, 16):
            out[f"ops_batch_{batch_size}"] = _attempt(lambda b=batch_size: count_render_ops(b, device))
        return out
    if job.get("compile"):  # a job of its own: compiling can take minutes, and time out alone
        rendered = _attempt(lambda: measure_render({**job, "steps": 1}, device))
        if isinstance(rendered, tuple):
            out["step_compiled"] = _attempt(lambda: measure_step(job, device, rendered[1], compiled=True))
        out["end_to_end_compiled"] = _attempt(lambda: measure_end_to_end(job, device, compile=True))
        return out
    figures = job.get("figures") or FIGURES
    needs_batch = any(figure in figures for figure in ("augment", "step"))
    batch = None
    if "render" in figures or needs_batch:
        rendered = _attempt(lambda: measure_render(job if "render" in figures else {**job, "steps": 1}, device))
        if isinstance(rendered, tuple):
            rates_or_error, batch = rendered
        else:
            rates_or_error = rendered
        if "render" in figures:
            out["render"] = rates_or_error
    if batch is not None:
        if "augment" in figures:
            out["augment"] = _attempt(lambda: measure_augment(job, device, batch))
        if "step" in figures:
            out["step"] = _attempt(lambda: measure_step(job, device, batch))
    if "end_to_end" in figures:
        out["end_to_end"] = _attempt(lambda: measure_end_to_end(job, device))
        if job.get("variants"):  # the current code's switches, one at a time
            # The batch thread the other way from its default (rtstereo.train.prefetch.prefetch_wanted).
            if device.startswith("cuda"):
                out["end_to_end_no_prefetch"] = _attempt(lambda: measure_end_to_end(job, device, prefetch=False))
            else:
                out["end_to_end_prefetch"] = _attempt(lambda: measure_end_to_end(job, device, prefetch=True))
    return out


def _attempt(function):
    try:
        return function()
    except Exception as exc:  # noqa: BLE001 - one failing figure must not cost the others
        return f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


# ------------------------------------------------------------------------------ the driver side
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", type=_device, help="cpu or cuda (default: %(default)s)")
    parser.add_argument(
        "--batch-sizes", default=None, type=_whole_list, help="comma-separated (default: the recipe's batch size)"
    )
    parser.add_argument(
        "--sizes", default=None, type=size_list, help="comma-separated HxW (default: the recipe's crop and 256x512)"
    )
    parser.add_argument("--recipe", default=str(REPO / "training" / "default.yaml"), help="training recipe (YAML)")
    steps_help = "timed calls or steps per figure (default: %(default)s)"
    parser.add_argument("--steps", type=_whole(1), default=5, help=steps_help)
    parser.add_argument("--warmup", type=_whole(0), default=2, help="untimed train steps first (default: %(default)s)")
    parser.add_argument("--threads", type=_whole(0), default=2, help="torch threads on CPU, 0 = torch's (default: 2)")
    parser.add_argument("--baseline-commit", help="also measure this git revision's code (e.g. edbc63b)")
    parser.add_argument(
        "--baseline-steps",
        type=_whole(1),
        default=3,
        help="timed calls or steps of the baseline (default: %(default)s)",
    )
    parser.add_argument(
        "--figures",
        default=",".join(FIGURES),
        type=_figures,
        help="comma-separated subset of %(default)s (e.g. render: the renderer alone, in a minute or two)",
    )
    parser.add_argument("--compile", action="store_true", help="also measure the step and loop under torch.compile")
    parser.add_argument("--no-op-counts", dest="op_counts", action="store_false", help="skip the op counts")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per subprocess (default: %(default)s)")
    parser.add_argument("--output-dir", default=str(RESULTS), help="where the JSON and Markdown go")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one configuration, JSON in and out
    return parser.parse_args(argv)


def ab_parser(description: str, threads: int) -> argparse.ArgumentParser:
    """The options the A/B benchmarks beside this one share (device, crop, batch, recipe, output folder);
    each adds its own rounds, steps and warm-up."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--size", default="160x320", help="training crop HxW (default: 160x320, the recipe's)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step (default: 8)")
    parser.add_argument("--threads", type=int, default=threads, help=f"torch threads on a CPU (default: {threads})")
    parser.add_argument("--recipe", default=str(Path(__file__).resolve().parents[1] / "training" / "default.yaml"))
    parser.add_argument("--output-dir", default=str(Path(__file__).resolve().parent / "results" / "train_throughput"))
    return parser


def write_ab_report(output_dir: str, stem: str, report: dict, lines: list[str]) -> None:
    """An A/B benchmark's record, ``STEM.json``, and its tables, ``STEM.md``, in ``output_dir`` (made if missing);
    the tables printed."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out / stem}.json and .md")


def read_recipe(path: str) -> dict:
    import yaml

    recipe = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    recipe.setdefault("model", "rtnet")
    recipe.setdefault("settings", {})
    recipe.setdefault("loss_weights", [0.5, 1.0])
    return recipe


def size_list(text: str) -> list[tuple[int, int]]:
    """``"160x320,256x512"`` as ``[(160, 320), (256, 512)]``; anything else is a usage error (exit code 2)."""
    sizes = []
    for item in filter(None, (item.strip() for item in text.split(","))):
        sides = item.lower().split("x")
        if len(sides) != 2 or not all(side.strip().isdigit() and int(side) > 0 for side in sides):
            raise argparse.ArgumentTypeError(f"expected sizes HxW such as 160x320, got {item!r}")
        sizes.append((int(sides[0]), int(sides[1])))
    if not sizes:
        raise argparse.ArgumentTypeError(f"expected sizes HxW such as 160x320, got {text!r}")
    return sizes


def _whole(low: int):
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        value = int(text) if text.strip().lstrip("-").isdigit() else None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}")
        return value

    return parse


def _whole_list(text: str) -> list[int]:
    values = [item.strip() for item in text.split(",") if item.strip()]
    if not values or not all(value.isdigit() and int(value) > 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated batch sizes >= 1, got {text!r}")
    return [int(value) for value in values]


def _figures(text: str) -> list[str]:
    figures = [figure.strip() for figure in text.split(",") if figure.strip()]
    if not figures or set(figures) - set(FIGURES):
        raise argparse.ArgumentTypeError(f"expected a subset of {','.join(FIGURES)}, got {text!r}")
    return figures


def _device(text: str) -> str:
    if text != "cpu" and not re.fullmatch(r"cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text


def extract_source(revision: str, folder: Path) -> Path:
    """``src/`` of ``revision`` under ``folder`` (``git archive``: no checkout, no worktree to clean up)."""
    archive = folder / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", revision, "src"], cwd=REPO, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    (folder / "commit").write_text(commit)
    return folder / "src"


def run_worker(job: dict, source: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir()
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1])


def ratio(new: Any, old: Any) -> float | None:
    if isinstance(new, (int, float)) and isinstance(old, (int, float)) and old > 0:
        return round(new / old, 2)
    return None


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# Training throughput, {report['device']} ({machine['gpu'] or machine['cpu']})",
        "",
        f"{machine['date']}, commit {machine['commit']}, torch {machine['versions'].get('torch')}, "
        f"{report['threads'] or 'default'} torch threads on {machine['cpu_count']} CPUs ({machine['cpu']}); "
        f"recipe {report['recipe']}; {report['steps']} timed steps per figure"
        + (f", baseline {report['baseline']} with {report['baseline_steps']}" if report.get("baseline") else "")
        + "."
        + (f" OMP_WAIT_POLICY {report['omp_wait_policy']}." if report.get("omp_wait_policy") else "")
        + (
            f" Load average (1, 5, 15 min) {report['load_average']} at the start, "
            f"{report.get('load_average_end')} at the end."
            if report.get("load_average")
            else ""
        ),
        "",
        "Pairs per second (higher is better). CPU: median call or step (in brackets: the fastest one); "
        "GPU: back to back, one synchronisation at the end. "
        "JSON also holds pairs per second of the process's CPU time.",
        "",
    ]
    old_label = f"old ({report['baseline']})" if report.get("baseline") else None
    header = "| size | batch | figure | new |" + (f" {old_label} | new / old |" if old_label else "")
    lines += [header, "|---" * (header.count("|") - 1) + "|"]
    for row in report["rows"]:
        for figure in (*FIGURES, *VARIANT_FIGURES):
            if figure not in row["new"] and figure not in row.get("old", {}):
                continue
            new = row["new"].get(figure, "-")
            cells = [f"{row['size'][0]}x{row['size'][1]}", str(row["batch"]), figure.replace("_", " "), _rates(new)]
            if old_label:
                old = row.get("old", {}).get(figure, "-")
                cells += [_rates(old), _rates({k: ratio(_get(new, k), _get(old, k)) for k in ("wall", "best")})]
            lines.append("| " + " | ".join(cells) + " |")
    if report.get("op_counts"):
        lines += ["", "Tensor operations (`aten::` profiler events) per `render_batch` call at 128x256:", ""]
        lines += ["| code | batch 1 | batch 16 | 16 / 1 |", "|---|---|---|---|"]
        for code, counts in report["op_counts"].items():
            one, sixteen = counts.get("ops_batch_1"), counts.get("ops_batch_16")
            lines.append(f"| {code} | {_cell(one)} | {_cell(sixteen)} | {_cell(ratio(sixteen, one))} |")
    return "\n".join(lines) + "\n"


def _shown_path(path: str) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if REPO in resolved.parents else path


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _rates(value: Any) -> str:
    if isinstance(value, dict):
        return f"{_cell(value.get('wall'))} ({_cell(value.get('best'))})"
    return _cell(value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value if value is not None else "-")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    from rtstereo.bench import machine_info

    recipe = read_recipe(args.recipe)
    sizes = args.sizes or list(dict.fromkeys([tuple(recipe["crop_hw"]), (256, 512)]))
    batch_sizes = args.batch_sizes or [int(recipe["batch_size"])]
    figures = args.figures  # argparse parses a string default with the option's type too
    scene_max_disp = float(min(recipe.get("data_max_disp") or 192, recipe["settings"].get("max_disp", 192)))
    report: dict[str, Any] = {
        "machine": machine_info(args.device),
        "device": args.device,
        "threads": args.threads,
        "recipe": str(
            Path(args.recipe).resolve().relative_to(REPO)
            if REPO in Path(args.recipe).resolve().parents
            else args.recipe
        ),
        "steps": args.steps,
        # OpenMP threads spin while they wait unless this says passive: on a busy CPU it matters.
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "load_average": [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "rows": [],
    }
    codes = {"new": REPO / "src"}
    with tempfile.TemporaryDirectory(prefix="rtstereo-baseline-") as tmp:
        if args.baseline_commit:
            codes["old"] = extract_source(args.baseline_commit, Path(tmp))
            report["baseline"] = (Path(tmp) / "commit").read_text()
            report["baseline_steps"] = args.baseline_steps
        common = {"device": args.device, "threads": args.threads, "recipe": recipe, "scene_max_disp": scene_max_disp}
        common["figures"] = figures
        for size in sizes:
            for batch in batch_sizes:
                row: dict[str, Any] = {"size": list(size), "batch": batch}
                for code, source in codes.items():
                    steps = args.steps if code == "new" else args.baseline_steps
                    job = {**common, "size": list(size), "batch": batch, "steps": steps, "warmup": args.warmup}
                    job["variants"] = code == "new"
                    row[code] = run_worker(job, source, args.timeout)
                    print(f"{size[0]}x{size[1]} batch {batch} {code}: {row[code]}", flush=True)
                    if args.compile and code == "new":
                        row[code].update(run_worker({**job, "compile": True}, source, args.timeout))
                        print(f"{size[0]}x{size[1]} batch {batch} {code}, compiled: {row[code]}", flush=True)
                report["rows"].append(row)
        if args.op_counts:
            report["op_counts"] = {}
            for code, source in codes.items():
                label = code if code == "new" else f"old ({report['baseline']})"
                report["op_counts"][label] = run_worker({**common, "op_counts": True}, source, args.timeout)
                print(f"ops per render call, {label}: {report['op_counts'][label]}", flush=True)
    report["load_average_end"] = [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None
    text = markdown(report)
    print("\n" + text)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    stem = out / f"train_throughput_{args.device.replace(':', '')}_{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
