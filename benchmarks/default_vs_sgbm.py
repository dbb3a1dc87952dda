"""The figures of issue 6 in one run: the packaged network against SGBM, accuracy and speed.

Accuracy: ``rtstereo eval`` of each model on the real scenes with ground truth (by default
``../shared/data/real``; evaluation only, never used for training or tuning). The targets are the
mean bad-2 over the four Middlebury scenes (tsukuba, venus, cones, teddy) and D1 on KITTI 000070.
SGBM searches each scene's own disparity range (the reference settings); the networks search 192 px
everywhere, as they ship.

Speed: ``rtstereo bench`` at 640x480, max disparity 192, on ``--threads`` threads, every model timed
in alternation in the same run, as a ratio to SGBM's time.

Usage::

    python benchmarks/default_vs_sgbm.py --int8     # writes benchmarks/results/default_vs_sgbm/
    python benchmarks/default_vs_sgbm.py --models sgbm,rtnet-v5,my.onnx --data ../shared/data/real --runs 30

``--int8`` adds an int8 copy of the packaged network (``rtstereo.export.quantize``, calibrated on
generated scenes; needs torch), written to the output folder as ``<name>-int8.onnx``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
from pathlib import Path

from rtstereo.bench import git_commit, machine_info
from rtstereo.cli import main as rtstereo
from rtstereo.models import PACKAGED_NETWORK, get_spec
from rtstereo.runtime.onnx import packaged_path

HERE = Path(__file__).resolve().parent
MIDDLEBURY = ("tsukuba", "venus", "cones", "teddy")
KITTI = "000070"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default=f"sgbm,{PACKAGED_NETWORK}",
        help="registry names or .onnx files, comma-separated, SGBM first",
    )
    parser.add_argument("--int8", action="store_true", help=f"also an int8 copy of {PACKAGED_NETWORK} (needs torch)")
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "real"))
    parser.add_argument("--threads", type=int, default=2, help="threads of every method (default: 2)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per model (default: 20)")
    parser.add_argument("--output-dir", default=str(HERE / "results" / "default_vs_sgbm"))
    return parser.parse_args(argv)


def label(model: str) -> str:
    """How a model is named in tables and result files: a file by its stem."""
    return Path(model).stem if model.lower().endswith(".onnx") else model


def run_quietly(argv: list[str]) -> None:
    """Run an rtstereo command, keeping its table off the screen; fail loudly."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = rtstereo(argv)
    if code:
        sys.exit(f"rtstereo {' '.join(argv)} failed with status {code}:\n{out.getvalue()}")


def scene_metric(report: dict, scene: str, metric: str) -> float:
    for item in report["scenes"]:
        if item["name"] == scene or item["name"].endswith(f"/{scene}") or item["name"].startswith(f"{scene}"):
            return float(item["metrics"][metric])
    raise SystemExit(f"scene {scene} is not in the evaluation ({[s['name'] for s in report['scenes']]})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = Path(args.output_dir)
    if not Path(args.data).is_dir():
        sys.exit(f"no evaluation data at {args.data} (give --data)")
    if args.int8:
        from rtstereo.export.quantize import quantize_int8

        int8 = quantize_int8(packaged_path(get_spec(PACKAGED_NETWORK)), out / f"{PACKAGED_NETWORK}-int8.onnx")
        print(int8.summary(), file=sys.stderr)
        models.append(str(int8.path))

    rows = []
    for model in models:
        print(f"eval {model} on {args.data} ...", file=sys.stderr)
        run_quietly(["eval", "--model", model, args.data, "-o", str(out / "eval"), "--quiet"])
        # eval names an .onnx file's results after its runtime too (rtstereo.cli.eval._runtime_label)
        results = f"{label(model)}_backend=onnxruntime" if model.lower().endswith(".onnx") else label(model)
        report = json.loads((out / "eval" / f"{results}.json").read_text())
        rows.append(
            {
                "model": label(model),
                "source": model,
                "kitti_d1": scene_metric(report, KITTI, "d1"),
                "middlebury_bad2": statistics.fmean(scene_metric(report, s, "bad-2") for s in MIDDLEBURY),
                "mean_epe": statistics.fmean(float(s["metrics"]["epe"]) for s in report["scenes"]),
            }
        )

    print("bench ...", file=sys.stderr)
    run_quietly(
        [
            "bench",
            ",".join(models),
            "--sizes",
            "480x640",
            "--max-disp",
            "192",
            "--threads",
            str(args.threads),
            "--runs",
            str(args.runs),
            "--baseline",
            models[0],
            "-o",
            str(out / "bench"),
        ]
    )
    bench = json.loads((out / "bench" / "bench.json").read_text())
    for row in rows:
        timed = next(r for r in bench["rows"] if r["model"] == row["source"])
        row["ms"] = timed["median_ms"]
        row["x_sgbm_time"] = timed["vs_baseline"]

    lines = [
        f"| model | KITTI {KITTI} D1 % | Middlebury mean bad-2 % | mean EPE px (all scenes) "
        f"| ms per 640x480 pair, {args.threads} threads | x {models[0]} time |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row['x_sgbm_time']:.2f}" if row["x_sgbm_time"] is not None else "-"
        lines.append(
            f"| {row['model']} | {row['kitti_d1']:.2f} | {row['middlebury_bad2']:.2f} | {row['mean_epe']:.2f} "
            f"| {row['ms']:.0f} | {ratio} |"
        )
    table = "\n".join(lines)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(
        json.dumps({"commit": git_commit(), "machine": machine_info(), "rows": rows}, indent=2) + "\n"
    )
    print(f"written to {out}/summary.md and summary.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
