"""The figures of issue 4: PyTorch eager vs ONNX Runtime per network, and AnyNet fp16 vs fp32 accuracy.

Benchmarks, not tests: every figure is measured in one run on this machine and written with the
date, commit, hardware and library versions (``rtstereo.bench``).

    # CPU, 2 threads, 480x640: every registry network, torch vs onnxruntime, SGBM as the baseline;
    # then GwcNet-gc at the seed's 480x672 / 192 levels
    python benchmarks/bench_networks.py cpu --threads 2 -o benchmarks/results

    # AnyNet (published KITTI 2012 weights) fp32 vs fp16 on ../shared/data/real, native resolution
    python benchmarks/bench_networks.py fp16-accuracy --threads 2 -o benchmarks/results

    # On a CUDA machine: the seed's table (480p/720p x 96/192 x half/full) for GwcNet-gc, then
    # fp16-vs-fp32 parity of every network with weights (gpu_fp16_vs_fp32.json)
    python benchmarks/bench_networks.py gpu -o benchmarks/results

Weights come from ``../shared`` (``--shared``): the GwcNet and CREStereo golden checkpoints (their
values are random but speed does not depend on them; GwcNet's load at any max_disp), the published
AnyNet checkpoints; rtnet runs with random weights until a trained checkpoint is given (--rtnet).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import cv2  # noqa: E402
import torch  # noqa: E402

from rtstereo.bench import BenchReport, machine_info, run_bench  # noqa: E402
from rtstereo.models import get_spec, list_models  # noqa: E402
from rtstereo.runtime.cuda_graphs import AUTO_AFTER_CALLS  # noqa: E402

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
    written = report.save(folder, stem)
    print(report.table())
    print("written:", ", ".join(map(str, written)))


def cpu(args: argparse.Namespace) -> None:
    """Every registry network at 480x640 on the CPU, torch vs onnxruntime, SGBM baseline."""
    weights = shared_weights(args.shared, args.rtnet)
    networks = [n for n in list_models() if get_spec(n).kind == "network"]
    report = run_bench(
        networks,
        [CPU_SIZE_HW],
        precisions=["fp32"],
        backends=["torch", "onnxruntime"],
        weights=weights,
        device="cpu",
        threads=args.threads,
        warmup=args.warmup,
        runs=args.runs,
        baseline="sgbm",
        random_weights=True,
        progress=progress,
    )
    report.notes.append(f"weights: {weights}; networks without a file there ran with random weights")
    save(report, args.output, f"cpu_{args.threads}threads_480x640")
    seed = run_bench(
        ["gwcnet-gc"],
        [SEED_SIZE_HW],
        sweeps={"max_disp": [192]},
        precisions=["fp32"],
        backends=["torch", "onnxruntime"],
        weights=weights,
        device="cpu",
        threads=args.threads,
        warmup=args.warmup,
        runs=args.runs,
        baseline="sgbm",
        progress=progress,
    )
    save(seed, args.output, f"cpu_{args.threads}threads_gwcnet-gc_480x672_192")


def gpu(args: argparse.Namespace) -> None:
    """The seed's table for GwcNet-gc on CUDA: 480p/720p x 96/192 x half/full, torch and onnxruntime."""
    weights = shared_weights(args.shared, args.rtnet)
    report = run_bench(
        ["gwcnet-gc"],
        [SEED_SIZE_HW, (720, 1280)],
        sweeps={"max_disp": [96, 192]},
        precisions=["fp16", "fp32"],
        backends=["torch", "onnxruntime"],
        weights=weights,
        device="cuda",
        # the warm-up covers cuDNN's autotuning and the CUDA graph recorded at the AUTO_AFTER_CALLS-th call
        warmup=max(args.warmup, AUTO_AFTER_CALLS),
        runs=args.runs,
        progress=progress,
    )
    save(report, args.output, "gpu_gwcnet-gc_seed_table")
    half_vs_full(args, weights)


def half_vs_full(args: argparse.Namespace, weights: dict[str, str]) -> None:
    """fp16 against fp32 on CUDA (PyTorch), each network with weights, on the example pair at 480x640."""
    import rtstereo
    from rtstereo.data import example_pair_paths
    from rtstereo.export.parity import fit_to_size
    from rtstereo.io import read_image
    from rtstereo.runtime.agreement import precision_parity

    pair = tuple(fit_to_size(read_image(path), CPU_SIZE_HW) for path in example_pair_paths())
    settings = {"gwcnet-gc": {"max_disp": 192}, "crestereo": {"iters": 20}, "rtnet": {"max_disp": 192}}
    rows = []
    for name in ("gwcnet-gc", "anynet", "crestereo", "rtnet"):
        if name not in weights:
            continue
        progress(f"{name} fp16 vs fp32")
        load = {"weights": weights[name], "device": "cuda", "settings": settings.get(name, {})}
        (agreement,) = precision_parity(
            rtstereo.load(name, precision="fp16", **load), rtstereo.load(name, precision="fp32", **load), [pair]
        )
        rows.append({"model": name, **{k: v for k, v in vars(agreement).items() if k != "name"}})
        print(f"{name}: {agreement.line()}")
    path = args.output / "gpu_fp16_vs_fp32.json"
    path.write_text(json.dumps({"machine": machine_info("cuda"), "size_hw": CPU_SIZE_HW, "rows": rows}, indent=1))
    print("written:", path, "mean |fp16 - fp32| px:", {r["model"]: round(r["mean_abs_px"], 4) for r in rows})


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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtnet", help="a trained rtnet checkpoint (default: random weights, timing only)")
    parser.add_argument("--anynet-weights", default="kitti2012", choices=["kitti2012", "kitti2015", "sceneflow"])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    os.environ["RTSTEREO_THREADS"] = str(args.threads)  # ONNX Runtime sessions opened by rtstereo.load
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    {"cpu": cpu, "gpu": gpu, "fp16-accuracy": fp16_accuracy}[args.preset](args)


if __name__ == "__main__":
    main()
