"""One short session of training the default network on a borrowed GPU, resumable across sessions.

The project's GPU time comes in short loans (minutes, starts included). This script spends one loan:

1. picks the starting point: the state a previous GPU session brought back
   (``training/gpu/state.pt``, committed), otherwise the packaged network's state
   (``training/default/state.pt``), or ``--init``; with ``--guided``, the hybrid's guided network
   instead (``training/gpu/guided-state.pt``, otherwise ``training/guided/state.pt``), trained with
   SGBM's confident matches of every pair as hints (``rtstereo.train.hints``; the GPU machine's CPU
   cores match them while the GPU trains);
2. trains with the recipe (``training/default.yaml`` plus the flags below) for ``--minutes``, writing
   ``last.pt`` every minute (``--checkpoint-minutes``), with unlabeled real pairs mixed in when their
   folder is there (``--unlabeled``; carry it to the GPU machine, it is not in git);
3. leaves in ``--out``: ``state.pt`` (compact: weights, step, run config; commit it as
   ``training/gpu/state.pt``, or ``training/gpu/guided-state.pt`` with ``--guided``), ``best.pt``
   (lowest synthetic validation EPE), ``log.jsonl``, ``curve.png`` and ``session.json`` (what ran,
   how long, how far).

Usage on the device machine (from the repository root, no install needed)::

    OUT=$OUT PYTHONPATH=src python training/gpu_session.py --minutes 9 --out "$OUT" \\
        --unlabeled .gpu-data/unlabeled
    OUT=$OUT PYTHONPATH=src python training/gpu_session.py --guided --minutes 9 --out "$OUT"
    OUT=$OUT PYTHONPATH=src python training/gpu_session.py --benchmark --minutes 4.5 --out "$OUT"

(``--benchmark`` first measures issue 18's throughput figures, ``benchmarks/train_throughput.py``, into
``$OUT/throughput``, each configuration capped so that it takes at most ``--benchmark-minutes``.)

and here, to try it on the CPU for a few seconds::

    PYTHONPATH=src python training/gpu_session.py --device cpu --minutes 0.2 --batch-size 2 \\
        --crop 64x128 --out runs/gpu-try
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GPU_STATE = REPO / "training" / "gpu" / "state.pt"
DEFAULT_STATE = REPO / "training" / "default" / "state.pt"
GUIDED_GPU_STATE = REPO / "training" / "gpu" / "guided-state.pt"
GUIDED_STATE = REPO / "training" / "guided" / "state.pt"
RECIPE = REPO / "training" / "default.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the state, logs and curve brought back")
    parser.add_argument("--minutes", type=float, default=9.0, help="training time (default: 9)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--batch-size", type=int, default=64, help="pairs per step (default: 64)")
    parser.add_argument("--crop", default="256x512", help="training crop HxW (default: 256x512)")
    parser.add_argument("--data-max-disp", type=float, default=192.0, help="scene disparity range (default: 192)")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default: 2e-4)")
    parser.add_argument("--steps", type=int, default=200_000, help="schedule length of the whole run (default: 200000)")
    parser.add_argument("--unlabeled", help="folder of unlabeled real pairs to mix in (skipped when missing)")
    parser.add_argument("--unlabeled-per-batch", type=int, default=0, help="real pairs per batch (0: a quarter)")
    parser.add_argument("--init", help="start from this checkpoint instead of the committed state")
    parser.add_argument(
        "--guided",
        action="store_true",
        help="train the hybrid's guided network (rtnet-guided) with SGBM's hints, not the unguided default",
    )
    parser.add_argument("--freeze", help="parts not trained, as rtstereo train --freeze takes them (e.g. encoder)")
    parser.add_argument("--checkpoint-minutes", type=float, default=1.0, help="minutes between last.pt writes")
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="first measure training throughput (benchmarks/train_throughput.py) into OUT/throughput",
    )
    parser.add_argument(
        "--benchmark-batch-sizes", default="64,256", help="batch sizes of the benchmark (default: %(default)s)"
    )
    parser.add_argument("--benchmark-sizes", default=None, help="HxW list of the benchmark (default: its own)")
    parser.add_argument(
        "--benchmark-minutes", type=float, default=4.0, help="the most the benchmark may take (default: 4)"
    )
    return parser.parse_args(argv)


def benchmark_command(args: argparse.Namespace, out: Path) -> list[str]:
    """``benchmarks/train_throughput.py`` for this device, each configuration capped so the whole fits."""
    sizes = len(args.benchmark_sizes.split(",")) if args.benchmark_sizes else 2  # its own: the recipe's crop, 256x512
    configurations = sizes * len(args.benchmark_batch_sizes.split(",")) + 1  # + the op counts
    command = [sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), "--device", args.device]
    command += ["--batch-sizes", args.benchmark_batch_sizes, "--steps", "10", "--output-dir", str(out / "throughput")]
    command += ["--timeout", f"{args.benchmark_minutes * 60 / configurations:.0f}"]
    if args.benchmark_sizes:
        command += ["--sizes", args.benchmark_sizes]
    return command


def run_benchmark(args: argparse.Namespace, out: Path) -> dict:
    """Run the throughput benchmark; what it did, for session.json (its tables are in OUT/throughput)."""
    import subprocess

    command = benchmark_command(args, out)
    print(" ".join(command), flush=True)
    started = time.time()
    try:
        done = subprocess.run(command, cwd=REPO, timeout=args.benchmark_minutes * 60 + 60)
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = "timed out"
    return {"command": command, "exit_code": code, "seconds": round(time.time() - started, 1)}


def starting_point(args: argparse.Namespace) -> tuple[str, str]:
    """``("--resume" | "--init", path)``: where this session starts."""
    if args.init:
        return "--init", args.init
    resumable, packaged = (GUIDED_GPU_STATE, GUIDED_STATE) if args.guided else (GPU_STATE, DEFAULT_STATE)
    if resumable.is_file():
        return "--resume", str(resumable)
    return "--init", str(packaged)


def train_command(args: argparse.Namespace, run: Path) -> list[str]:
    """The ``rtstereo train`` arguments of this session."""
    how, source = starting_point(args)
    command = ["train", "-c", str(RECIPE), how, source, "-o", str(run), "--device", args.device]
    command += ["--batch-size", str(args.batch_size), "--crop", args.crop, "--data-max-disp", f"{args.data_max_disp:g}"]
    command += ["--lr", f"{args.lr:g}", "--steps", str(args.steps), "--time-limit", f"{args.minutes:g}"]
    # Checkpoints by the clock, validation at the end (the time limit validates): no step counts to guess.
    command += ["--checkpoint-minutes", f"{args.checkpoint_minutes:g}", "--checkpoint-every", "1000000"]
    command += ["--val-every", "1000000", "--log-every", "20"]
    if args.guided and how == "--init":  # a guided state carries the setting; an unguided one gains it here
        command += ["--set", "guided=true"]
    if args.freeze:
        command += ["--freeze", args.freeze]
    if args.unlabeled and Path(args.unlabeled).is_dir():
        command += ["--unlabeled", args.unlabeled, "--unlabeled-per-batch", str(args.unlabeled_per_batch)]
    else:
        # Said explicitly: a resumed state names the folder of the machine it was trained on, which this
        # one may not have (rtstereo train would stop: "folder not found").
        command += ["--unlabeled", ""]
        if args.unlabeled:
            print(f"note: {args.unlabeled} is not here; training on rendered scenes only", file=sys.stderr)
    return command


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rtstereo.cli import main as rtstereo_main
    from rtstereo.train.loop import compact_checkpoint

    out = Path(args.out)
    run = out / "run"
    source = starting_point(args)[1]
    benchmark = run_benchmark(args, out) if args.benchmark else None
    command = train_command(args, run)
    print("rtstereo " + " ".join(command), flush=True)
    started = time.time()
    code = rtstereo_main(command)
    session = {"command": command, "exit_code": code, "seconds": round(time.time() - started, 1), "from": source}
    if benchmark is not None:
        session["benchmark"] = benchmark
    if (run / "last.pt").is_file():
        compact_checkpoint(run / "last.pt", out / "state.pt")
        import torch

        session["step"] = int(torch.load(out / "state.pt", map_location="cpu", weights_only=True)["step"])
        for name in ("best.pt", "log.jsonl", "curve.png"):
            if (run / name).is_file():
                shutil.copy(run / name, out / name)
        (run / "last.pt").unlink()  # 3x the compact state (optimiser moments): only the compact one goes back
    (out / "session.json").write_text(json.dumps(session, indent=2) + "\n")
    print(json.dumps(session), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
