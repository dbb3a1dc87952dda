"""Does online adaptation make a stream's maps better? (issue 22, item 3, measured on rendered video).

A stream of rendered frames with exact disparity: ``--scenes`` scenes, the camera panning 2 px a frame
over each, every frame optionally seen through another camera (``--shift``: gamma 2.2, a colour cast
and a slight blur, the same for both views, so the views still differ by geometry alone). The frames
are played in order through the adapting predictor of ``rtstereo video --adapt`` (the hybrid
``default`` with its guided network in PyTorch, or a network alone) and, beside it, through the same
model frozen. To make the comparison repeatable the steps run in line, not on the adapter's background
process: after frame ``t`` is predicted, every ``--every``-th frame trains one step on a random crop of
it, exactly what the adapter does with the frames it is offered; the next frame is predicted with the
new weights. Errors are end-point error and bad-2 (``rtstereo.metrics``) over all pixels with ground
truth, per frame; the table gives their means over the later frames (``--skip``: the first frames
give the adapter time) and over all frames.

Usage::

    python benchmarks/online_adapt_quality.py                        # default, shifted, 300 frames
    python benchmarks/online_adapt_quality.py --no-shift --name online_quality_plain
    python benchmarks/online_adapt_quality.py --model training/default/state.pt --name online_quality_v5

Results: ``benchmarks/results/adapt/<name>.json`` and ``.md`` (date, commit, machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rtstereo.bench import git_commit, machine_info
from rtstereo.datasets.synthetic import render_batch
from rtstereo.metrics import disparity_metrics
from rtstereo.train.online import OnlineConfig, adapting_predictor
from rtstereo.types import StereoPair

REPO = Path(__file__).resolve().parents[1]
GUIDED_STATE = REPO / "training" / "guided" / "state.pt"
CAST = (1.3, 0.8, 0.6)  # per-channel gain of the shifted camera
GAMMA = 2.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hybrid", help="hybrid (default's form) or a PyTorch network/checkpoint")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--size", default="192x320", help="HxW of each view (default: %(default)s)")
    parser.add_argument("--every", type=int, default=10, help="a step every N frames (default: 10, as --adapt)")
    parser.add_argument("--skip", type=int, default=100, help="frames left out of the 'later' means")
    parser.add_argument("--lr", type=float, default=OnlineConfig.lr, help="as --adapt-lr (default: %(default)s)")
    parser.add_argument(
        "--losses", default=",".join(OnlineConfig.losses), help="as --adapt-losses (default: %(default)s)"
    )
    parser.add_argument("--no-shift", dest="shift", action="store_false", help="the renderer's own camera")
    parser.add_argument("--seed", type=int, default=21, help="render seed (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "adapt"), help="results folder")
    parser.add_argument("--name", default="online_quality", help="results file name, without suffix")
    return parser.parse_args(argv)


def render_stream(frames: int, scenes: int, height: int, width: int, seed: int, shift: bool) -> list[dict]:
    """The frames in order: uint8 views and float32 disparity (``nan`` where there is no ground truth)."""
    per_scene = -(-frames // scenes)
    pan_px = 2 * per_scene
    batch = render_batch(scenes, height, width + pan_px, seed=seed, max_disp_px=width / 5)
    views = {}
    for key in ("left", "right"):
        image = batch[key]
        if shift:
            cast = torch.tensor(CAST).view(1, 3, 1, 1)
            image = F.avg_pool2d(F.pad(image**GAMMA * cast, (1, 1, 1, 1), mode="replicate"), 3, 1).clamp(0, 1)
        views[key] = (image.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    truth = batch["disparity"].numpy().astype(np.float32)
    stream = []
    for t in range(frames):
        scene, x0 = t // per_scene, 2 * (t % per_scene)
        window = (slice(None), slice(x0, x0 + width))
        # The right view is cropped at the same columns: a pixel's match may leave the crop (then it
        # lies left of column 0 of the right view, as at the left edge of any image).
        stream.append(
            {
                "left": np.ascontiguousarray(views["left"][scene][window]),
                "right": np.ascontiguousarray(views["right"][scene][window]),
                "truth": np.ascontiguousarray(truth[scene][window]),
            }
        )
    return stream


def play(
    stream: list[dict], model: str, settings: dict, every: int | None, config: OnlineConfig | None = None
) -> tuple[list[dict], int, float]:
    """Per-frame metrics of the model over the stream, adapting a step every ``every`` frames (None: frozen)
    with the adapter's ``config`` (default: ``--adapt``'s)."""
    config = dataclasses.replace(config or OnlineConfig(), worker="thread", every=1)
    predictor, adapter = adapting_predictor(model, settings=settings, config=config)
    rows, steps, step_s = [], 0, 0.0
    for t, frame in enumerate(stream):
        pair = StereoPair(frame["left"], frame["right"], index=t)
        disparity = predictor.predict_pair(pair).disparity_px
        metrics = disparity_metrics(disparity, frame["truth"])
        rows.append({"frame": t, "epe": metrics["epe"], "bad2": metrics["bad-2"]})
        if every is not None and t % every == 0:
            started = time.perf_counter()
            adapter.step(pair)  # the next frame is predicted with the new weights (apply_to)
            step_s += time.perf_counter() - started
            steps += 1
    return rows, steps, step_s


def means(rows: list[dict], skip: int) -> dict:
    later = rows[skip:] or rows
    return {
        "epe_later": round(float(np.mean([r["epe"] for r in later])), 4),
        "bad2_later": round(float(np.mean([r["bad2"] for r in later])), 3),
        "epe_all": round(float(np.mean([r["epe"] for r in rows])), 4),
        "bad2_all": round(float(np.mean([r["bad2"] for r in rows])), 3),
    }


def markdown(result: dict) -> str:
    seen = "seen through another camera (gamma 2.2, colour cast, blur)" if result["shift"] else "as rendered"
    lines = [
        "# Online adaptation: the maps of a rendered stream with and without it",
        "",
        f"{result['frames']} rendered {result['size']} frames ({result['scenes']} scenes, the camera panning 2 px a "
        f"frame), {seen}; "
        f"model `{result['model']}`; a step every {result['every']} frames, in line (see the script), learning rate "
        f"{result['lr']:g}, losses {result['losses']}. Means over "
        f"frames {result['skip']}-{result['frames'] - 1} ('later') and over all frames. Commit {result['commit']}, "
        f"{result['date']}, {result['threads']} CPU threads.",
        "",
        "| run | EPE px, later | bad-2 %, later | EPE px, all | bad-2 %, all | steps | step time s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in result["runs"].items():
        m = run["means"]
        lines.append(
            f"| {name} | {m['epe_later']:.3f} | {m['bad2_later']:.2f} | {m['epe_all']:.3f} | {m['bad2_all']:.2f} | "
            f"{run['steps']} | {run['step_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.lower().split("x"))
    settings = {"network": str(GUIDED_STATE)} if args.model == "hybrid" else {}
    stream = render_stream(args.frames, args.scenes, height, width, args.seed, args.shift)
    runs = {}
    config = OnlineConfig(lr=args.lr, losses=tuple(name for name in args.losses.split(",") if name))
    for name, every in (("frozen", None), ("adapting", args.every)):
        rows, steps, step_s = play(stream, args.model, settings, every, config)
        runs[name] = {"means": means(rows, args.skip), "steps": steps, "step_s": round(step_s, 1), "frames": rows}
        print(name, runs[name]["means"], f"{steps} steps", flush=True)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_info(),
        "model": args.model,
        "settings": settings,
        "frames": args.frames,
        "scenes": args.scenes,
        "size": f"{height}x{width}",
        "every": args.every,
        "lr": args.lr,
        "losses": args.losses,
        "skip": args.skip,
        "shift": args.shift,
        "seed": args.seed,
        "threads": args.threads,
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
