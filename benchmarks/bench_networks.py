"""The figures of issue 4: PyTorch eager vs ONNX Runtime per network, and AnyNet fp16 vs fp32 accuracy.

Benchmarks, not tests: every figure is measured in one run on this machine and written with the
date, commit, hardware and library versions (``rtstereo.bench``).

    # CPU, 2 threads, 480x640: every registry network, torch vs onnxruntime, SGBM as the baseline;
    # then GwcNet-gc at the seed's 480x672 / 192 levels
    python benchmarks/bench_networks.py cpu --threads 2 -o benchmarks/results

    # AnyNet (published KITTI 2012 weights) fp32 vs fp16 on ../shared/data/real, native resolution
    python benchmarks/bench_networks.py fp16-accuracy --threads 2 -o benchmarks/results

    # The GPU check of issue 20, under 5 minutes on an H200: the seed's table for GwcNet-gc (480x672
    # and 720p x 96/192 levels x fp16/fp32), the packaged network (its PyTorch state on torch and the
    # ONNX file on ONNX Runtime's CUDA provider; 480p, 720p, 1080p), the hybrid and `default`, AnyNet
    # and CREStereo at 480p and 720p, fp16-vs-fp32 parity, then the seed's table on ONNX Runtime;
    # gpu_check.md/.json put the issue's targets next to the measured FPS
    python benchmarks/bench_networks.py gpu -o DIR
    # the same code path on the CPU at tiny sizes, in seconds (bf16 stands in for fp16)
    python benchmarks/bench_networks.py gpu --device cpu --quick -o /tmp/gpu-dry

Weights come from ``../shared`` (``--shared``): the GwcNet and CREStereo golden checkpoints (their
values are random but speed does not depend on them; GwcNet's load at any max_disp), the published
AnyNet checkpoints; rtnet runs with random weights until a trained checkpoint is given (--rtnet); the
packaged network's PyTorch state is training/default/state.pt. A network without a file runs with
random weights (timing only), and the tables say which weights each row ran with. On the GPU machine
../shared is not there: carry the files in an ignored folder and pass it as --shared (README, "On a GPU").
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import cv2  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402

from rtstereo.bench import BenchReport, BenchRow, machine_info, run_bench  # noqa: E402
from rtstereo.models import PACKAGED_NETWORK, get_spec, list_models, resolve_alias  # noqa: E402
from rtstereo.runtime.cuda_graphs import AUTO_AFTER_CALLS  # noqa: E402
from rtstereo.train.adapt_network import packaged_network_source  # noqa: E402

CPU_SIZE_HW = (480, 640)
SEED_SIZE_HW = (480, 672)


def shared_weights(shared: Path, rtnet: str | None) -> dict[str, str]:
    golden = shared / "fixtures" / "golden"
    weights = {
        "gwcnet-g": golden / "gwcnet-g_maxdisp48.ckpt",
        "gwcnet-gc": golden / "gwcnet-gc_maxdisp48.ckpt",
        "crestereo": golden / "crestereo_random.pth",
        "anynet": shared / "weights" / "anynet" / "anynet_kitti2015.tar",
    }
    if rtnet:
        weights["rtnet"] = Path(rtnet)
    return {name: str(path) for name, path in weights.items() if Path(path).is_file()}


def progress(label: str) -> None:
    print(f"  {label}", file=sys.stderr, flush=True)


def save(report: BenchReport, folder: Path, stem: str) -> None:
    """The report's JSON and Markdown, with its notes (which weights each model ran with) under the table."""
    written = report.save(folder, stem)
    markdown = folder / f"{stem}.md"
    markdown.write_text(markdown.read_text() + "".join(f"\n{note}\n" for note in report.notes))
    print(report.table())
    print("written:", ", ".join(map(str, written)))


def cpu(args: argparse.Namespace) -> None:
    """Every registry network at 480x640 on the CPU, torch vs onnxruntime, SGBM baseline."""
    weights = shared_weights(args.shared, args.rtnet)
    networks = [n for n in list_models() if get_spec(n).kind == "network"]
    common = {
        "precisions": ["fp32"],
        "backends": ["torch", "onnxruntime"],
        "weights": weights,
        "device": "cpu",
        "threads": args.threads,
        "warmup": args.warmup,
        "runs": args.runs,
        "baseline": "sgbm",
        "progress": progress,
    }
    report = run_bench(networks, [CPU_SIZE_HW], random_weights=True, **common)
    report.notes.append(f"weights: {weights}; networks without a file there ran with random weights")
    save(report, args.output, f"cpu_{args.threads}threads_480x640")
    seed = run_bench(
        ["gwcnet-gc"],
        [SEED_SIZE_HW],
        sweeps={"max_disp": [192]},
        random_weights="gwcnet-gc" not in weights,  # its rows were skipped without a file; timing needs none
        **common,
    )
    if "gwcnet-gc" not in weights:
        seed.notes.append(f"weights: {weights}; gwcnet-gc, without a file there, ran with random weights")
    save(seed, args.output, f"cpu_{args.threads}threads_gwcnet-gc_480x672_192")


@dataclass(frozen=True)
class GpuPlan:
    """Sizes, levels and precisions of the GPU check; ``--quick`` shrinks them for a dry run."""

    seed_sizes: tuple[tuple[int, int], ...] = (SEED_SIZE_HW, (720, 1280))
    levels: tuple[int, ...] = (96, 192)
    camera_sizes: tuple[tuple[int, int], ...] = ((480, 640), (720, 1280))
    full_hd: tuple[int, int] = (1080, 1920)
    warmup: int = AUTO_AFTER_CALLS + 1  # cuDNN's autotuning and the CUDA graph recorded at the 3rd call
    runs: int = 15
    crestereo_iters: int = 20
    #: SGBM's (and the hybrid's) search range; None: the model's (192)
    method_max_disp: int | None = None

    @classmethod
    def quick(cls) -> GpuPlan:
        """One tiny size for every figure, one level, one call each: the same path in seconds."""
        return cls(((32, 48), (32, 48)), (16,), ((32, 64), (32, 64)), (32, 64), 1, 1, 2, 16)

    def size_of(self, name: str) -> tuple[int, int]:
        """The plan's size standing for the issue's ``480p``, ``720p`` or ``1080p``."""
        return {"480p": self.camera_sizes[0], "720p": self.camera_sizes[1], "1080p": self.full_hd}[name]

    def sizes(self, *names: str) -> list[tuple[int, int]]:
        return list(dict.fromkeys(self.size_of(n) for n in names))


#: The issue's figures to reach (issue 20): what, model rows, size, levels ("most": the plan's most,
#: 192), precision ("half": fp16, or bf16 in a dry run; None: any), FPS.
TARGETS = (
    ("GwcNet-gc 480x672, 192 levels, fp16", "gwcnet-gc", "seed480", "most", "half", 100.0),
    ("GwcNet-gc 720p, 192 levels, fp16", "gwcnet-gc", "seed720", "most", "half", 40.0),
    ("default at 720p", "default", "720p", None, None, 200.0),
    ("rtnet at 1080p (the packaged network)", "packaged", "1080p", None, None, 100.0),
)


def gpu(args: argparse.Namespace) -> None:
    """The GPU check of issue 20, in priority order within ``--budget-s``; one folder of results.

    1. the seed's table for GwcNet-gc on PyTorch: 480x672 and 720p x 96 and 192 levels x fp16 and fp32;
    2. the packaged network (its PyTorch state on torch, fp16 and fp32; the packaged ONNX file on ONNX
       Runtime's CUDA provider) at 480p, 720p and 1080p, the hybrid and ``default`` at 480p and 720p,
       AnyNet and CREStereo (fp16 and fp32) at 480p and 720p;
    3. fp16 against fp32 of every network with weights (gpu_fp16_vs_fp32.json);
    4. the seed's table on ONNX Runtime (on-the-fly exports; the slowest part, so last).

    Each part is saved as soon as it is measured; a part that would start after ``--budget-s`` is
    left out and said so. ``gpu_check.md``/``.json`` hold the issue's targets next to the measured FPS.
    """
    started = time.perf_counter()
    quick = args.quick
    plan = GpuPlan.quick() if quick else GpuPlan()
    device = args.device
    on_gpu = device.startswith("cuda")
    # fp16 needs CUDA for PyTorch; the dry run on a CPU takes bf16 in its place (same code path)
    half = "fp16" if on_gpu else "bf16"
    warmup, runs = max(args.warmup or 0, plan.warmup), args.runs or plan.runs
    weights = shared_weights(args.shared, args.rtnet)
    state = packaged_network_source()
    # TensorRT builds an engine per shape (minutes); the CUDA provider starts at once. Without a GPU
    # provider no list is given: the rows are then refused, and say why, rather than run on the CPU.
    gpu_build = on_gpu and bool(set(onnxruntime.get_available_providers()) & GPU_PROVIDERS)
    ort = {"providers": ["tensorrt,cuda,cpu" if args.tensorrt else "cuda,cpu"]} if gpu_build else {}
    common = {"device": device, "threads": args.threads, "warmup": warmup, "runs": runs, "progress": progress}
    check = GpuCheck(args.output, device, plan, weights, state, started, args.budget_s)

    def seed(backends: list[str], precisions: list[str], sweeps: dict[str, list], sizes: Any = None) -> Any:
        return run_bench(
            ["gwcnet-gc"],
            sizes or list(dict.fromkeys(plan.seed_sizes)),
            sweeps={"max_disp": list(plan.levels), **sweeps},
            precisions=precisions,
            backends=backends,
            weights=weights,
            random_weights="gwcnet-gc" not in weights,  # with a file, "--random-weights does not apply" was noted
            **common,
        )

    check.part("seed table, PyTorch", "gpu_gwcnet-gc_seed_table", lambda: [seed(["torch"], [half, "fp32"], {})])

    # Without a GPU provider the packaged ONNX network and the hybrid run on ONNX Runtime's CPU
    # provider (every core), in rows marked so: a figure of this machine rather than none.
    ort_common = {**common, "device": device if gpu_build or not on_gpu else "cpu"}
    if ort_common["device"] != device:
        check.note(
            f"onnxruntime {onnxruntime.__version__} has no GPU provider (it has: "
            f"{', '.join(onnxruntime.get_available_providers())}): the packaged ONNX network and the hybrid ran on "
            f"its CPU provider, {args.threads} threads (backend 'onnxruntime (CPU)'); install onnxruntime-gpu "
            "for their GPU figures"
        )

    def networks() -> list[Any]:
        sizes = plan.sizes("480p", "720p", "1080p")
        methods = list(dict.fromkeys(["hybrid", resolve_alias("default")]))
        search = {"max_disp": [plan.method_max_disp]} if plan.method_max_disp else {}
        both = {"precisions": [half, "fp32"], "weights": weights, **common}
        camera = plan.sizes("480p", "720p")
        runs: list[tuple[str, Callable[[], Any]]] = [
            (
                "the packaged network's PyTorch state",
                lambda: run_bench([str(state)], sizes, precisions=both["precisions"], **common),
            ),
            ("the packaged ONNX network", lambda: run_bench([PACKAGED_NETWORK], sizes, sweeps=ort, **ort_common)),
            ("the hybrid and default", lambda: run_bench(methods, camera, sweeps={**ort, **search}, **ort_common)),
            ("AnyNet", lambda: run_bench(["anynet"], camera, random_weights="anynet" not in weights, **both)),
            (
                "CREStereo",
                lambda: run_bench(
                    ["crestereo"],
                    camera,
                    sweeps={"iters": [plan.crestereo_iters]},
                    random_weights="crestereo" not in weights,
                    **both,
                ),
            ),
        ]
        if state is None:
            check.note("training/default/state.pt is not here: the packaged network's PyTorch state was not timed")
            runs = runs[1:]
        reports = []
        for what, measure in runs:
            if check.over_budget():
                check.note(f"networks: {what} and after left out (budget)")
                break
            report = measure()
            if ort_common["device"] != device:
                for row in report.rows:
                    if row.case.backend == "onnxruntime":
                        row.case = dataclasses.replace(row.case, backend="onnxruntime (CPU)")
            reports.append(report)
        return reports

    check.part("networks", "gpu_networks", networks)
    check.part("fp16 vs fp32", None, lambda: half_vs_full(args, weights, state, plan, half))

    def seed_onnxruntime() -> list[Any]:
        """One configuration at a time (each exports the network), none started after the budget."""
        reports = []
        # the dry run exports one tiny configuration: the same path, in seconds
        levels = plan.levels[:1] if quick else plan.levels
        for size_hw, max_disp in itertools.product(dict.fromkeys(plan.seed_sizes), levels):
            if check.over_budget():
                check.note(f"seed table, ONNX Runtime: {size_hw} x {max_disp} levels and after left out (budget)")
                break
            precisions = ["fp32"] if quick else ["fp16", "fp32"]
            reports.append(seed(["onnxruntime"], precisions, {**ort, "max_disp": [max_disp]}, [size_hw]))
        return reports

    if gpu_build or quick:
        check.part("seed table, ONNX Runtime", "gpu_gwcnet-gc_seed_table_onnxruntime", seed_onnxruntime)
    else:
        check.parts.append({"part": "seed table, ONNX Runtime", "status": "left out: no GPU provider in onnxruntime"})
    check.finish()


class GpuCheck:
    """The parts of the GPU check, their reports, the time budget, and the targets table."""

    def __init__(
        self,
        folder: Path,
        device: str,
        plan: GpuPlan,
        weights: dict[str, str],
        state: Path | None,
        started: float,
        budget_s: float,
    ):
        self.folder, self.device, self.plan, self.weights, self.state = folder, device, plan, weights, state
        self.started, self.budget_s = started, budget_s
        self.rows: list[BenchRow] = []
        self.parts: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def over_budget(self) -> bool:
        return time.perf_counter() - self.started > self.budget_s

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text, file=sys.stderr)

    def part(self, title: str, stem: str | None, measure: Callable[[], list[BenchReport] | None]) -> None:
        elapsed = time.perf_counter() - self.started
        if elapsed > self.budget_s:
            self.parts.append({"part": title, "status": f"left out: {elapsed:.0f} s > --budget-s {self.budget_s:g}"})
            print(f"{title}: left out (time budget)", file=sys.stderr)
            return
        progress(f"== {title}")
        t0 = time.perf_counter()
        try:
            reports = measure() or []
        except Exception as exc:  # a part that breaks ends that part, not the check
            traceback.print_exc()
            self.parts.append({"part": title, "status": f"failed: {exc.__class__.__name__}: {exc}"[:300]})
            return
        rows = [self._relabel(row) for report in reports for row in report.rows]
        entry: dict[str, Any] = {"part": title, "status": "measured", "seconds": round(time.perf_counter() - t0, 1)}
        if reports:
            merged = BenchReport(
                rows=rows,
                options={**reports[0].options, "models": [m for r in reports for m in r.options["models"]]},
                machine=reports[0].machine,
                notes=[n for r in reports for n in r.notes] + [self.weights_line(rows)],
            )
            save(merged, self.folder, stem)
            entry["files"] = [f"{stem}.md", f"{stem}.json"]
            self.rows += rows
        self.parts.append(entry)

    def _relabel(self, row: BenchRow) -> BenchRow:
        if self.state is not None and row.case.model == str(self.state):
            row.case = dataclasses.replace(row.case, model=STATE_LABEL)
        return row

    def weights_line(self, rows: list[BenchRow]) -> str:
        models = dict.fromkeys(r.case.model for r in rows)
        return "weights: " + "; ".join(f"{m}: {self.weights_of(m)}" for m in models)

    def weights_of(self, model: str) -> str:
        if model == STATE_LABEL:
            return "trained (training/default/state.pt)"
        if model in self.weights:
            random = model in ("gwcnet-g", "gwcnet-gc", "crestereo")  # the golden checkpoints hold random values
            return f"{Path(self.weights[model]).name}" + (" (random values: timing only)" if random else "")
        spec = get_spec(model)
        if spec.kind == "network":
            return "random (timing only)"
        return "packaged" if spec.kind in ("onnx", "hybrid") else "none (classical)"

    def targets(self) -> list[dict[str, Any]]:
        """Each target of the issue with the fastest measured row that stands for it."""
        plan = self.plan
        sizes = {"seed480": plan.seed_sizes[0], "seed720": plan.seed_sizes[1]}
        models = {"default": {resolve_alias("default")}, "packaged": {PACKAGED_NETWORK, STATE_LABEL}}
        out = []
        for what, model, size, levels, precision, fps in TARGETS:
            size_hw = sizes.get(size) or plan.size_of(size)
            wanted_precisions = {"fp16", "bf16"} if precision == "half" else None
            candidates = [
                r
                for r in self.rows
                if r.case.model in models.get(model, {model})
                and r.case.size_hw == size_hw
                and (levels is None or dict(r.case.settings).get("max_disp") == max(plan.levels))
                and (wanted_precisions is None or r.case.precision in wanted_precisions)
            ]
            ok = [r for r in candidates if r.status == "ok"]
            best = max(ok, key=lambda r: r.fps) if ok else None
            out.append(
                {
                    "target": what,
                    "size_hw": list(size_hw),
                    "required_fps": fps,
                    "measured_fps": round(best.fps, 1) if best else None,
                    "met": bool(best and best.fps >= fps),
                    "row": (best.case.label + _provider(best)) if best else None,
                    "why_none": None
                    if best
                    else "; ".join(f"{r.case.label}: {r.reason}" for r in candidates) or "not measured",
                }
            )
        return out

    def finish(self) -> None:
        targets = self.targets()
        quick = self.plan != GpuPlan()
        lines = [
            f"# GPU check (issue 20){' - DRY RUN at tiny sizes, not the figures' if quick else ''}",
            "",
            "| target | size | required FPS | measured FPS | met | fastest row |",
            "|---|---|---|---|---|---|",
        ]
        for t in targets:
            measured = f"{t['measured_fps']:.1f}" if t["measured_fps"] is not None else "-"
            row = t["row"] or t["why_none"]
            size = f"{t['size_hw'][1]}x{t['size_hw'][0]}"
            met = "yes" if t["met"] else "no"
            lines.append(f"| {t['target']} | {size} | {t['required_fps']:g} | {measured} | {met} | {row} |")
        lines += ["", "FPS: 1000 / the median of the whole `predict` call. Parts:", ""]
        lines += [
            f"- {p['part']}: {p['status']}" + (f" ({p['seconds']} s)" if "seconds" in p else "") for p in self.parts
        ]
        lines += [f"- {note}" for note in self.notes]
        total_s = time.perf_counter() - self.started
        lines += ["", f"Total {total_s:.0f} s on {self.device}; {machine_info(self.device).get('gpu') or 'no GPU'}."]
        text = "\n".join(lines) + "\n"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "gpu_check.md").write_text(text)
        summary = {
            "machine": machine_info(self.device),
            "dry_run": quick,
            "total_s": round(total_s, 1),
            "targets": targets,
            "parts": self.parts,
            "notes": self.notes,
            "plan": dataclasses.asdict(self.plan),
        }
        (self.folder / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        print(text)
        print("written:", self.folder / "gpu_check.md", self.folder / "gpu_check.json")


STATE_LABEL = f"{PACKAGED_NETWORK} (PyTorch state)"
GPU_PROVIDERS = {"TensorrtExecutionProvider", "CUDAExecutionProvider"}


def _provider(row: BenchRow) -> str:
    """`` on <provider>`` for an ONNX Runtime row (a GPU list may have fallen back to the CPU)."""
    providers = row.describe.get("providers")
    return f" on {providers[0]}" if providers else ""


def half_vs_full(
    args: argparse.Namespace, weights: dict[str, str], state: Path | None, plan: GpuPlan, half: str
) -> None:
    """fp16 against fp32 (PyTorch), each network with weights and the packaged network's state, on the
    example pair at 480p (``half`` is bf16 in the CPU dry run)."""
    import rtstereo
    from rtstereo.data import example_pair_paths
    from rtstereo.export.parity import fit_to_size
    from rtstereo.io import read_image
    from rtstereo.runtime.agreement import precision_parity

    size_hw = plan.size_of("480p")
    pair = tuple(fit_to_size(read_image(path), size_hw) for path in example_pair_paths())
    settings = {"gwcnet-gc": {"max_disp": max(plan.levels)}, "crestereo": {"iters": plan.crestereo_iters}}
    networks = {
        name: (name, weights[name]) for name in ("gwcnet-gc", "anynet", "crestereo", "rtnet") if name in weights
    }
    if state is not None:
        networks[STATE_LABEL] = (str(state), None)
    rows = []
    for label, (name, file) in networks.items():
        progress(f"{label} {half} vs fp32")
        load = {"weights": file, "device": args.device, "settings": settings.get(name, {})}
        try:
            (agreement,) = precision_parity(
                rtstereo.load(name, precision=half, **load), rtstereo.load(name, precision="fp32", **load), [pair]
            )
        except Exception as exc:  # one network that cannot run here does not end the comparison
            rows.append({"model": label, "failed": f"{exc.__class__.__name__}: {exc}"[:300]})
            print(f"{label}: {rows[-1]['failed']}")
            continue
        rows.append({"model": label, **{k: v for k, v in vars(agreement).items() if k != "name"}})
        print(f"{label}: {agreement.line()}")
    path = args.output / "gpu_fp16_vs_fp32.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.device)
    path.write_text(json.dumps({"machine": machine, "size_hw": size_hw, "half": half, "rows": rows}, indent=1))
    means = {r["model"]: round(r["mean_abs_px"], 4) for r in rows if "mean_abs_px" in r}
    print("written:", path, f"mean |{half} - fp32| px:", means)


def fp16_accuracy(args: argparse.Namespace) -> None:
    """AnyNet (real weights) on every scene of ../shared/data/real: torch fp32, onnxruntime fp32 and fp16."""
    import rtstereo
    from rtstereo.datasets import find_samples
    from rtstereo.eval import evaluate

    weights = args.shared / "weights" / "anynet" / f"anynet_{args.anynet_weights}.tar"
    samples = find_samples(args.shared / "data" / "real")
    runs = {}
    for backend, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16")):
        progress(f"anynet {backend} {precision}")
        predictor = rtstereo.load(
            "anynet", weights=weights, backend=backend, precision=precision, settings={"stage": 3}
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = evaluate(lambda _sample, p=predictor: p, samples, f"anynet {backend} {precision}")
        runs[f"{backend} {precision}"] = report
        print(report.table(markdown=True), "\n")
    d1 = {name: report.mean["d1"] for name, report in runs.items()}
    per_scene = {
        scene.name: {name: round(report.scenes[i].metrics["d1"], 3) for name, report in runs.items()}
        for i, scene in enumerate(runs["torch fp32"].scenes)
    }
    summary = {
        **machine_info("cpu"),
        "weights": str(weights),
        "threads": args.threads,
        "mean_d1_pct": d1,
        "d1_difference_fp16_minus_fp32_points": d1["onnxruntime fp16"] - d1["onnxruntime fp32"],
        "per_scene_d1_pct": per_scene,
        "mean": {name: report.mean for name, report in runs.items()},
        "note": "native resolution of each scene (padded to 16); D1 = % |d-gt| > 3 px and > 5 % of gt "
        "over all pixels with ground truth, invalid predictions count as errors",
    }
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"anynet_{args.anynet_weights}_fp16_vs_fp32.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    # No time column: the ONNX Runtime runs include one on-the-fly export per scene size (see `cpu`).
    lines = ["| run | mean D1 % | mean EPE px |", "|---|---|---|"]
    lines += [f"| anynet {name} | {r.mean['d1']:.2f} | {r.mean['epe']:.3f} |" for name, r in runs.items()]
    lines.append(
        f"\nD1 difference fp16 - fp32 (ONNX Runtime): {summary['d1_difference_fp16_minus_fp32_points']:+.3f} points"
    )
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("written:", path, path.with_suffix(".md"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", choices=["cpu", "gpu", "fp16-accuracy"])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="../shared (weights, data)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: 2; gpu: every core)")
    parser.add_argument("--warmup", type=int, help="untimed calls (default: 1; gpu: 4, covering the CUDA graph)")
    parser.add_argument("--runs", type=int, help="timed calls (default: 3; gpu: 15)")
    parser.add_argument("--device", default="cuda", help="gpu: cuda[:N], or cpu for a dry run (with --quick)")
    parser.add_argument("--quick", action="store_true", help="gpu: tiny sizes and levels, 2 runs (a dry run)")
    parser.add_argument("--budget-s", type=float, default=240, help="gpu: no part starts after this (seconds)")
    parser.add_argument("--tensorrt", action="store_true", help="gpu: ONNX Runtime tries TensorRT before CUDA")
    parser.add_argument("--rtnet", help="a trained rtnet checkpoint (default: random weights, timing only)")
    parser.add_argument("--anynet-weights", default="kitti2012", choices=["kitti2012", "kitti2015", "sceneflow"])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    if args.threads is None:
        args.threads = (os.cpu_count() or 2) if args.preset == "gpu" else 2
    if args.preset != "gpu":
        args.warmup, args.runs = args.warmup or 1, args.runs or 3
    os.environ["RTSTEREO_THREADS"] = str(args.threads)  # ONNX Runtime sessions opened by rtstereo.load
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    {"cpu": cpu, "gpu": gpu, "fp16-accuracy": fp16_accuracy}[args.preset](args)


if __name__ == "__main__":
    main()
