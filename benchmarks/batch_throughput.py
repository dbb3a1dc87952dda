"""Pairs per second of a batch: one process against Ray Data with 2 workers, and a throughput model.

What it measures (on this machine, in one run):

1. **single process**: ``rtstereo predict``'s local engine on 64 rendered 640x480 pairs (default
   outputs: 16-bit PNG, PFM, colour PNG, JSON), the model running on all cores;
2. **Ray**: the same pairs with ``--engine ray --workers 2`` (each actor one predictor with
   cores/2 threads, decoding in parallel tasks), timed once Ray is up, and Ray's start-up apart;
3. the inputs of a throughput model for N nodes: decoding time per pair (one thread), bytes read
   and written per pair, and the per-node rate; the model's predictions for 10 and 100 nodes
   (see docs/scale.md for the model and its assumptions).

Usage::

    PYTHONPATH=src python benchmarks/batch_throughput.py            # writes the JSON and Markdown below
    PYTHONPATH=src python benchmarks/batch_throughput.py --pairs 16 --json /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rtstereo.batch import BatchJob, PredictorOptions, run_local
from rtstereo.io import read_image
from rtstereo.sources.pairs import resolve_pairs

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

from stream_fps import environment as stream_environment  # noqa: E402

# Throughput-model assumptions (not measured here): see docs/scale.md.
SHARED_FS_GB_S = 1.0  # aggregate bandwidth of the shared file system the nodes read and write
DRIVER_ROWS_PER_S = 2000.0  # summary rows one Ray driver gathers per second (Ray Data task overhead)
NODES = (1, 10, 100)


def texture(height: int, width: int, rng: np.random.Generator, blob_px: int = 3) -> np.ndarray:
    coarse = rng.integers(0, 256, size=(height // blob_px + 2, width // blob_px + 2, 3), dtype=np.uint8)
    return cv2.resize(coarse, None, fx=blob_px, fy=blob_px, interpolation=cv2.INTER_CUBIC)[:height, :width]


def write_pairs(folder: Path, count: int, height: int, width: int) -> tuple[Path, Path]:
    """A textured background at 16 px and a textured rectangle at 48 px disparity, placed at random."""
    lefts, rights = folder / "left", folder / "right"
    lefts.mkdir(parents=True)
    rights.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        back, front = texture(height, width + 64, rng), texture(height // 2, width // 3 + 64, rng)
        left, right = back[:, :width].copy(), back[:, 16 : 16 + width].copy()
        y, x = int(rng.integers(0, height // 2)), int(rng.integers(64, width - width // 3))
        h, w = front.shape[0], width // 3
        left[y : y + h, x : x + w] = front[:, :w]
        right[y : y + h, x - 48 : x - 48 + w] = front[:, :w]
        cv2.imwrite(str(lefts / f"{i:04d}.png"), left)
        cv2.imwrite(str(rights / f"{i:04d}.png"), right)
    return lefts, rights


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".parquet"))


def measure(pairs: int, height: int, width: int, model: str, workers: int) -> dict:
    from rtstereo.scale.predict import run_ray
    from rtstereo.scale.session import ray_session

    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lefts, rights = write_pairs(folder / "in", pairs, height, width)
        sources = resolve_pairs(str(lefts), str(rights))
        t0 = time.perf_counter()
        for source in sources:
            read_image(source.left), read_image(source.right)
        decode_ms = (time.perf_counter() - t0) * 1000 / pairs

        options = PredictorOptions(model=model)
        predictor = options.load()
        local = run_local(BatchJob(output=folder / "local"), predictor, sources)
        assert local.counts["done"] == pairs, local.report()

        t0 = time.perf_counter()
        with ray_session() as ray:
            startup_s = time.perf_counter() - t0
            ray_cpus = ray.cluster_resources().get("CPU")
            remote = run_ray(BatchJob(output=folder / "ray"), options, sources, workers=workers)
        assert remote.counts["done"] == pairs, remote.report()
        same = sorted(p.name for p in (folder / "local").iterdir()) == sorted(
            p.name for p in (folder / "ray").iterdir() if not p.name.endswith(".parquet")
        )
        done = local.outcomes
        return {
            "pairs": pairs,
            "size_hw": [height, width],
            "model": predictor.name,
            "settings": {k: v for k, v in predictor.settings.items() if isinstance(v, (int, float, str, bool))},
            "single_process": {
                "pairs_per_s": round(local.pairs_per_s, 3),
                "elapsed_s": round(local.elapsed_s, 2),
                "read_ms": round(float(np.mean([o.read_ms for o in done])), 1),
                "predict_ms": round(float(np.mean([o.predict_ms for o in done])), 1),
                "write_ms": round(float(np.mean([o.write_ms for o in done])), 1),
            },
            "ray": {
                "workers": remote.workers,
                "cluster_cpus": ray_cpus,
                "pairs_per_s": round(remote.pairs_per_s, 3),
                "elapsed_s": round(remote.elapsed_s, 2),
                "startup_s": round(startup_s, 2),
                "pairs_per_s_with_startup": round(pairs / (remote.elapsed_s + startup_s), 3),
                "predict_ms": round(float(np.mean([o.predict_ms for o in remote.outcomes])), 1),
                "same_file_names_as_single_process": same,
            },
            "ratio_ray_to_single": round(remote.pairs_per_s / local.pairs_per_s, 3),
            "decode_ms_per_pair_one_thread": round(decode_ms, 1),
            "bytes_read_per_pair": folder_bytes(folder / "in") // pairs,
            "bytes_written_per_pair": folder_bytes(folder / "local") // pairs,
            # The machine is shared: other work running meanwhile slows both engines.
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }


def throughput_model(figures: dict) -> dict:
    """Predicted pairs/s for N nodes like this one: min(N x node rate, file-system limit, driver limit)."""
    node_rate = figures["ray"]["pairs_per_s"]  # a cluster runs Ray on every node: its per-node rate
    cores = os.cpu_count() or 1
    decode_limit = cores * 1000 / figures["decode_ms_per_pair_one_thread"]
    io_bytes = figures["bytes_read_per_pair"] + figures["bytes_written_per_pair"]
    fs_limit = SHARED_FS_GB_S * 1e9 / io_bytes
    predictions = {}
    for nodes in NODES:
        limits = {"compute": nodes * node_rate, "shared_fs": fs_limit, "driver": DRIVER_ROWS_PER_S}
        bound = min(limits, key=limits.get)
        predictions[str(nodes)] = {"pairs_per_s": round(limits[bound], 1), "bound_by": bound}
    return {
        "node_rate_pairs_per_s": node_rate,
        "node_decode_limit_pairs_per_s": round(decode_limit, 1),
        "shared_fs_gb_s_assumed": SHARED_FS_GB_S,
        "io_bytes_per_pair": io_bytes,
        "shared_fs_limit_pairs_per_s": round(fs_limit, 1),
        "driver_rows_per_s_assumed": DRIVER_ROWS_PER_S,
        "predictions": predictions,
    }


def environment() -> dict:
    """:func:`stream_fps.environment`, with Ray's version."""
    import ray

    return stream_environment(ray=ray.__version__)


def markdown(report: dict) -> str:
    f, m = report["figures"], report["model"]
    single, remote = f["single_process"], f["ray"]
    lines = [
        "# Batch throughput: one process against Ray Data",
        "",
        f"{f['pairs']} rendered pairs at {f['size_hw'][1]}x{f['size_hw'][0]}, model `{f['model']}`, default outputs "
        f"(16-bit PNG, PFM, colour PNG, JSON); {report['environment']['hardware']['cpu_count']} CPU cores, "
        f"{report['environment']['date']}, commit {report['environment']['commit'][:7]}. One run, on a shared "
        f"machine (1-minute load average {f['load_average_1min'][0]:g} before, {f['load_average_1min'][1]:g} after).",
        "",
        "| engine | pairs/s | wall s | model+checks ms/pair |",
        "|---|---:|---:|---:|",
        f"| single process (all cores) | {single['pairs_per_s']:.2f} | {single['elapsed_s']:.1f} | "
        f"{single['predict_ms']:.0f} |",
        f"| Ray, {remote['workers']} workers (after start-up) | {remote['pairs_per_s']:.2f} | "
        f"{remote['elapsed_s']:.1f} | {remote['predict_ms']:.0f} |",
        f"| Ray, with its {remote['startup_s']:.1f} s start-up | {remote['pairs_per_s_with_startup']:.2f} | "
        f"{remote['elapsed_s'] + remote['startup_s']:.1f} | |",
        "",
        f"Ratio Ray / single process: **{f['ratio_ray_to_single']:.2f}x**. Decoding a pair (one thread): "
        f"{f['decode_ms_per_pair_one_thread']:.1f} ms; bytes per pair: {f['bytes_read_per_pair'] / 1e6:.2f} MB read, "
        f"{f['bytes_written_per_pair'] / 1e6:.2f} MB written.",
        "",
        "## Throughput model (docs/scale.md)",
        "",
        f"rate(N) = min(N x {m['node_rate_pairs_per_s']:.2f} pairs/s per node, shared file system "
        f"{m['shared_fs_gb_s_assumed']:g} GB/s / {m['io_bytes_per_pair'] / 1e6:.2f} MB per pair = "
        f"{m['shared_fs_limit_pairs_per_s']:.0f} pairs/s, driver {m['driver_rows_per_s_assumed']:.0f} rows/s)",
        "",
        "| nodes | predicted pairs/s | bound by |",
        "|---:|---:|---|",
        *(f"| {n} | {p['pairs_per_s']:.1f} | {p['bound_by']} |" for n, p in m["predictions"].items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64, help="pairs in the batch (default: %(default)s)")
    parser.add_argument("--size", default="480x640", help="HEIGHTxWIDTH (default: %(default)s)")
    parser.add_argument("--model", default="default", help="model (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default: %(default)s)")
    parser.add_argument("--json", default=str(RESULTS / "batch_throughput.json"))
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    figures = measure(args.pairs, height, width, args.model, args.workers)
    report = {"environment": environment(), "figures": figures, "model": throughput_model(figures)}
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    json_path.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {json_path} {json_path.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
