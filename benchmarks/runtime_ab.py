"""CPU no-regression check of the runtime: an earlier commit's Predictor against this tree's, in one process.

The earlier commit's ``src/rtstereo`` is extracted (``git archive``) and imported as ``rtstereo_old``
(the package imports itself relatively, so both live side by side). Each case builds the same
PyTorch module (same seed) behind both Predictors and alternates their calls, so both see the same
load on a shared machine; the ratio is median(new) / median(old). The maps must be equal.

    python benchmarks/runtime_ab.py --old 9eca6f2 -o benchmarks/results/runtime_ab
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import rtstereo  # noqa: E402
from rtstereo.bench import machine_info  # noqa: E402
from rtstereo.models import get_spec  # noqa: E402
from rtstereo.models.registry import import_object  # noqa: E402
from rtstereo.runtime.backends import TorchBackend  # noqa: E402
from rtstereo.runtime.predictor import Predictor  # noqa: E402

#: (model, settings, input size HxW); each runs without and with the left-border fill and edge refinement
NETWORK_CASES = (
    ("gwcnet-gc", {"max_disp": 32}, (96, 128)),
    ("anynet", {}, (192, 256)),
    ("rtnet", {"max_disp": 64}, (192, 256)),
)
# ONNX Runtime and OpenCV through load(); the baseline commit must know the name (rtnet-v5: from session 10 on)
LOADED_CASES = (("rtnet-v5", {"threads": 1}), ("sgbm", {}))


def import_old(commit: str, folder: Path):
    """``src/rtstereo`` of ``commit`` imported as the package ``rtstereo_old``."""
    archive = subprocess.run(["git", "archive", commit, "src/rtstereo"], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "src" / "rtstereo").rename(folder / "rtstereo_old")
    sys.path.insert(0, str(folder))
    import rtstereo_old

    return rtstereo_old


def interleaved(old, new, left: np.ndarray, right: np.ndarray, reps: int) -> dict[str, float | bool]:
    a, b = old.predict(left, right).disparity_px, new.predict(left, right).disparity_px
    same = bool(np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)]))
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(reps):
        for label, predictor in (("old", old), ("new", new)):
            start = time.perf_counter()
            predictor.predict(left, right)
            times[label].append(time.perf_counter() - start)
    old_ms, new_ms = (1e3 * float(np.median(times[k])) for k in ("old", "new"))
    return {"old_ms": old_ms, "new_ms": new_ms, "new_over_old": new_ms / old_ms, "same_map": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the commit to compare with")
    parser.add_argument("--reps", type=int, default=15, help="interleaved calls per side (gwcnet: a third)")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "benchmarks" / "results" / "runtime_ab")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        old_package = import_old(args.old, Path(tmp))
        from rtstereo_old.models import get_spec as old_get_spec
        from rtstereo_old.runtime.backends import TorchBackend as OldTorchBackend
        from rtstereo_old.runtime.predictor import Predictor as OldPredictor

        for name, settings, (height, width) in NETWORK_CASES:
            spec = get_spec(name)
            resolved = spec.resolve_settings(settings)
            torch.manual_seed(0)
            module = import_object(spec.builder)(resolved).eval()
            left = np.ascontiguousarray(image[:height, :width])
            right = np.ascontiguousarray(np.roll(left, -6, axis=1))
            old_spec = old_get_spec(name)
            for post in (False, True):
                switches = {"fill_left_border": post, "refine_edges": post}
                old = OldPredictor(old_spec, resolved, OldTorchBackend(module), **switches)
                new = Predictor(spec, resolved, TorchBackend(module), **switches)
                reps = max(3, args.reps // 3) if name == "gwcnet-gc" else args.reps
                label = f"{name} torch {'fill+refine' if post else 'plain'} {height}x{width}"
                rows[label] = interleaved(old, new, left, right, reps)
                print(label, rows[label], flush=True)
        right = np.ascontiguousarray(np.roll(image, -6, axis=1))
        for name, settings in LOADED_CASES:
            label = f"{name} (load) 192x256"
            old, new = old_package.load(name, settings=settings), rtstereo.load(name, settings=settings)
            rows[label] = interleaved(old, new, image, right, args.reps)
            print(label, rows[label], flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_info("cpu"), "old_commit": args.old, "threads": 1, "rows": rows}
    path = args.output / f"runtime_ab_vs_{args.old}.json"
    path.write_text(json.dumps(report, indent=1))
    lines = ["| case | old ms | new ms | new / old | same map |", "|---|---|---|---|---|"]
    for label, row in rows.items():
        lines.append(
            f"| {label} | {row['old_ms']:.1f} | {row['new_ms']:.1f} | {row['new_over_old']:.2f} | {row['same_map']} |"
        )
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("written:", path, path.with_suffix(".md"))


if __name__ == "__main__":
    main()
