"""rtnet in ONNX Runtime against OpenCV SGBM, on the same pair, in the same run, on the same threads.

The network is exported untrained (speed does not depend on the weights) to ONNX (opset 17, fixed
size) and run with ``--threads`` intra-op threads; SGBM runs with ``cv2.setNumThreads(--threads)`` and
the project's reference parameters (numDisparities 192, blockSize 5, P1 8*3*25, P2 32*3*25,
disp12MaxDiff 1, uniquenessRatio 10, speckleWindowSize 100, speckleRange 2). The two are timed in
alternation after a warm-up, so that load from other processes hits both alike; wall-clock and
process CPU time medians are reported, with their ratio (network / SGBM: below 1 = faster).

Usage::

    PYTHONPATH=src python benchmarks/rtnet_vs_sgbm.py                   # synthetic 640x480 pair
    PYTHONPATH=src python benchmarks/rtnet_vs_sgbm.py --left l.png --right r.png --repeats 50

Writes ``benchmarks/results/rtnet_vs_sgbm_<UTC time>.json`` (date, commit, CPU, versions, numbers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch

from rtstereo.bench import cpu_name, git_commit
from rtstereo.models.rtnet import build_rtnet
from rtstereo.runtime.preprocess import normalize

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--left", help="left image (default: a synthetic pair rendered by rtstereo)")
    parser.add_argument("--right", help="right image")
    parser.add_argument("--size", default="480x640", help="HxW the pair is brought to (default: %(default)s)")
    parser.add_argument("--max-disp", type=int, default=192, help="disparity range of both methods, px")
    parser.add_argument("--threads", type=int, default=2, help="threads of both methods (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs of each first")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs of each")
    parser.add_argument("--output-dir", default=str(RESULTS), help="where the JSON goes (default: %(default)s)")
    return parser.parse_args(argv)


def load_pair(args: argparse.Namespace, height: int, width: int) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 RGB left/right at ``height x width`` and a description of where they came from."""
    if args.left and args.right:
        pair = []
        for path in (args.left, args.right):
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                sys.exit(f"cannot read image {path}")
            pair.append(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1])
        return np.ascontiguousarray(pair[0]), np.ascontiguousarray(pair[1]), f"{args.left} (resized)"
    from rtstereo.datasets.synthetic import render_batch

    batch = render_batch(1, height, width, seed=0, max_disp_px=float(args.max_disp))
    to_uint8 = lambda t: np.ascontiguousarray((t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))  # noqa: E731
    return to_uint8(batch["left"]), to_uint8(batch["right"]), "synthetic scene, seed 0"


def export_onnx(model: torch.nn.Module, height: int, width: int, path: Path) -> None:
    example = (torch.zeros(1, 3, height, width), torch.zeros(1, 3, height, width))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            example,
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["left", "right"],
            output_names=["disparity"],
        )


def time_alternating(run_a, run_b, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Wall and CPU milliseconds of ``run_a`` and ``run_b`` called in alternation."""
    for _ in range(warmup):
        run_a()
        run_b()
    times: dict[str, list[float]] = {"a_wall": [], "a_cpu": [], "b_wall": [], "b_cpu": []}
    for _ in range(repeats):
        for key, run in (("a", run_a), ("b", run_b)):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[f"{key}_cpu"].append((time.process_time() - cpu) * 1e3)
            times[f"{key}_wall"].append((time.perf_counter() - wall) * 1e3)
    return times


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    left, right, source = load_pair(args, height, width)
    load_before = os.getloadavg()

    model = build_rtnet({"max_disp": args.max_disp}).eval()
    parameters = sum(p.numel() for p in model.parameters())
    feed = {"left": normalize(left, "imagenet"), "right": normalize(right, "imagenet")}
    with torch.no_grad():
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            torch_out = model(torch.from_numpy(feed["left"]), torch.from_numpy(feed["right"])).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "rtnet.onnx"
        export_onnx(model, height, width, onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, feed)[0]

    sgbm = cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=args.max_disp,
        blockSize=5,
        P1=8 * 3 * 25,
        P2=32 * 3 * 25,
        disp12MaxDiff=1,
        uniquenessRatio=10,
        speckleWindowSize=100,
        speckleRange=2,
    )
    left_bgr, right_bgr = np.ascontiguousarray(left[:, :, ::-1]), np.ascontiguousarray(right[:, :, ::-1])
    times = time_alternating(
        lambda: session.run(None, feed), lambda: sgbm.compute(left_bgr, right_bgr), args.warmup, args.repeats
    )
    median = {key: statistics.median(values) for key, values in times.items()}
    result = {
        "benchmark": "rtnet (ONNX Runtime, untrained) vs OpenCV SGBM",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "settings": {
            "size_hw": [height, width],
            "max_disp": args.max_disp,
            "threads": args.threads,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "pair": source,
            "opset": 17,
        },
        "rtnet": {
            "parameters": parameters,
            "gflop": round(counter.get_total_flops() / 1e9, 3),
            "onnx_vs_torch_max_abs_diff_px": float(np.abs(onnx_out - torch_out).max()),
            "median_wall_ms": round(median["a_wall"], 2),
            "median_cpu_ms": round(median["a_cpu"], 2),
        },
        "sgbm": {"median_wall_ms": round(median["b_wall"], 2), "median_cpu_ms": round(median["b_cpu"], 2)},
        "ratio_wall": round(median["a_wall"] / median["b_wall"], 3),
        "ratio_cpu": round(median["a_cpu"] / median["b_cpu"], 3),
    }
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "").split("+")[0]
    out_path = out_dir / f"rtnet_vs_sgbm_{stamp}.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(
        f"pair: {source}, {width}x{height}, max disparity {args.max_disp}, {args.threads} threads, "
        f"load average {load_before[0]:.1f}"
    )
    print(f"rtnet  {parameters / 1e6:.2f} M parameters, {result['rtnet']['gflop']:.2f} GFLOP")
    print(f"{'':8s}{'wall ms':>10s}{'CPU ms':>10s}")
    print(f"{'rtnet':8s}{median['a_wall']:10.1f}{median['a_cpu']:10.1f}")
    print(f"{'SGBM':8s}{median['b_wall']:10.1f}{median['b_cpu']:10.1f}")
    print(f"{'ratio':8s}{result['ratio_wall']:10.2f}{result['ratio_cpu']:10.2f}   (rtnet / SGBM; < 1 = rtnet faster)")
    print(f"written: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
