"""Why self-supervised adaptation makes a trained network worse: a probe on rendered pairs (issue 22).

Three measurements on rendered scenes with exact disparity (never real data):

1. **Where the photometric gradient points.** ``rtnet-v5`` (its PyTorch state,
   ``training/default/state.pt``) predicts a batch of rendered pairs; at its prediction, the gradient
   of :func:`rtstereo.train.selfsup.photometric_loss` with respect to each pixel's disparity is compared
   with the direction to the true disparity. Reported: the share of pixels where the descent direction
   points towards the truth, by size of the network's error. 50 % is a coin flip.
2. **Whether the truth scores lower, pixel by pixel.** The same per-pixel comparison a loss makes when
   it prefers one disparity to another: the share of pixels whose error at the true disparity is lower
   than at the network's, by the size of the network's error, for the photometric error and for a
   feature-metric one (the L1 distance of the network's own encoder features at 1/2 and 1/4
   resolution, upsampled and normalised per pixel; the frozen encoder of the network being adapted).
3. **What adapting does.** The same network is adapted with :func:`rtstereo.train.adapt.adapt` on eight
   of those pairs (their images only, photometric + smoothness, the ``adapt`` verb's defaults otherwise),
   then scored with the ground truth on those eight pairs and on six others: bad-2 and EPE before and after.

Both with and without sensor noise in the renders. Results: ``benchmarks/results/adapt/selfsup_probe.md``
and ``.json``. About two minutes on 2 CPU threads.

Usage::

    python benchmarks/selfsup_gradient_probe.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rtstereo.bench import machine_info
from rtstereo.datasets.synthetic import RenderSettings, render_batch
from rtstereo.train.adapt import AdaptConfig, Adapter, UserPair, adapt
from rtstereo.train.adapt_network import load_adaptable
from rtstereo.train.selfsup import photometric_error, photometric_loss, warp_right_to_left

HERE = Path(__file__).resolve().parent
HEIGHT, WIDTH = 96, 192
ERROR_BANDS_PX = ((0.25, 1.0), (1.0, 2.0), (2.0, 5.0), (5.0, 1000.0))
ADAPTED, HELD_OUT = range(0, 8), range(8, 14)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="adaptation steps (default: 150)")
    parser.add_argument("--lr", type=float, default=1e-4, help="adaptation learning rate (default: 1e-4, adapt's)")
    parser.add_argument("--seed", type=int, default=21, help="seed of the rendered pairs (default: 21)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    parser.add_argument("--output-dir", default=str(HERE / "results" / "adapt"))
    return parser.parse_args(argv)


def rendered(count: int, seed: int, noise: bool) -> dict:
    """Rendered pairs as uint8 RGB images (as a user's pairs arrive) with their exact disparity."""
    settings = RenderSettings(specular=False, noise=noise, blur=False)
    batch = render_batch(count, HEIGHT, WIDTH, seed=seed, max_disp_px=32.0, settings=settings)
    images = {k: (batch[k].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8) for k in ("left", "right")}
    matched = ~batch["occluded"] & (torch.arange(WIDTH) >= batch["disparity"])
    return {**images, "disparity": batch["disparity"], "matched": matched}


def as_tensors(pairs: dict, indices: range) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.from_numpy(pairs[k][list(indices)]).permute(0, 3, 1, 2).float() / 255 for k in ("left", "right"))


def scores(adapter: Adapter, pairs: dict, indices: range) -> dict[str, float]:
    """bad-2 (%) and EPE (px) over the matched pixels of the pairs ``indices``."""
    left, right = as_tensors(pairs, indices)
    error = (adapter.predict(left, right) - pairs["disparity"][list(indices)]).abs()
    error = error[pairs["matched"][list(indices)]]
    return {"bad2": float((error > 2).float().mean() * 100), "epe": float(error.mean())}


def gradient_agreement(adapter: Adapter, pairs: dict, indices: range) -> list[dict[str, float]]:
    """Per error band: pixels, and the share whose photometric descent direction points to the truth."""
    left, right = as_tensors(pairs, indices)
    prediction = adapter.predict(left, right).requires_grad_(True)
    photometric_loss(left, right, prediction).backward()
    descent = -prediction.grad
    towards_truth = pairs["disparity"][list(indices)] - prediction.detach()
    rows = []
    for low, high in ERROR_BANDS_PX:
        band = pairs["matched"][list(indices)] & (towards_truth.abs() > low) & (towards_truth.abs() <= high)
        band &= descent != 0
        agree = (descent[band].sign() == towards_truth[band].sign()).float().mean()
        rows.append({"error_px": f"{low:g}-{high:g}", "pixels": int(band.sum()), "towards_truth": float(agree)})
    return rows


def encoder_features(adapter: Adapter, image: torch.Tensor) -> torch.Tensor:
    """The network's own 1/2 and 1/4 features of RGB 0..1 ``image``, at its size, unit length per pixel."""
    was_training = adapter.model.training
    adapter.model.eval()  # running statistics, as the network predicts, and left unchanged
    try:
        with torch.no_grad():
            half, quarter = adapter.model.encoder.quarter(adapter.normalize(image))
    finally:
        adapter.model.train(was_training)
    size = image.shape[-2:]
    maps = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in (half, quarter)]
    return torch.cat([F.normalize(m, dim=1) for m in maps], 1)


def truth_scores_lower(adapter: Adapter, pairs: dict, indices: range) -> dict[str, list[dict[str, float]]]:
    """Per measure and error band: the share of pixels whose error is lower at the true disparity than
    at the network's."""
    left, right = as_tensors(pairs, indices)
    prediction = adapter.predict(left, right)
    truth = pairs["disparity"][list(indices)]
    features = [encoder_features(adapter, image) for image in (left, right)]

    def feature_error(disparity: torch.Tensor) -> torch.Tensor:
        warped, _ = warp_right_to_left(features[1], disparity)
        return (features[0] - warped).abs().mean(dim=1)

    measures = {
        "photometric": lambda disparity: photometric_error(left, right, disparity)[0],
        "own features": feature_error,
    }
    result = {}
    for name, error_of in measures.items():
        with torch.no_grad():
            lower = error_of(truth) < error_of(prediction)
        rows = []
        for low, high in ERROR_BANDS_PX:
            off = (truth - prediction).abs()
            band = pairs["matched"][list(indices)] & (off > low) & (off <= high)
            rows.append(
                {
                    "error_px": f"{low:g}-{high:g}",
                    "pixels": int(band.sum()),
                    "truth_lower": float(lower[band].float().mean()),
                }
            )
        result[name] = rows
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"machine": machine_info(), "steps": args.steps, "lr": args.lr, "seed": args.seed, "runs": []}
    for noise in (True, False):
        pairs = rendered(len(ADAPTED) + len(HELD_OUT), args.seed, noise)
        network = load_adaptable("rtnet-v5")
        torch.manual_seed(0)
        config = AdaptConfig(
            losses=("photometric", "smoothness"),
            steps=args.steps,
            minutes=None,
            batch_size=2,
            synthetic_batch=0,
            crop_hw=(HEIGHT, WIDTH),
            lr=args.lr,
            holdout=0.0,
            log_every=10**9,
        )
        adapter = Adapter(network.module, network.spec, network.settings, config, loss_weights=network.loss_weights)
        run = {"noise": noise, "gradient": gradient_agreement(adapter, pairs, ADAPTED)}
        run["truth_lower"] = truth_scores_lower(adapter, pairs, ADAPTED)
        run["before"] = {"adapted": scores(adapter, pairs, ADAPTED), "held_out": scores(adapter, pairs, HELD_OUT)}
        users = [UserPair(f"p{i}", pairs["left"][i], pairs["right"][i]) for i in ADAPTED]
        start = time.perf_counter()
        adapt(adapter, users, echo=lambda _line: None)
        run["adapt_s"] = time.perf_counter() - start
        run["after"] = {"adapted": scores(adapter, pairs, ADAPTED), "held_out": scores(adapter, pairs, HELD_OUT)}
        results["runs"].append(run)
        print(json.dumps(run))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "selfsup_probe.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "selfsup_probe.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    lines = [
        "# Self-supervised adaptation of rtnet-v5 on rendered pairs: where its gradient points, what it does",
        "",
        f"Commit {results['machine'].get('commit', '?')}; {HEIGHT}x{WIDTH} rendered pairs (seed {results['seed']}), "
        f"photometric + smoothness, {results['steps']} steps at lr {results['lr']:g}, batch 2.",
        "",
        "| sensor noise | network's error (px) | pixels | descent direction towards the truth |",
        "|---|---|---|---|",
    ]
    for run in results["runs"]:
        for row in run["gradient"]:
            noise = "on" if run["noise"] else "off"
            lines.append(f"| {noise} | {row['error_px']} | {row['pixels']} | {row['towards_truth'] * 100:.0f} % |")
    lines += [
        "",
        "Share of pixels whose error is lower at the true disparity than at the network's "
        "(50 %: no better than a coin):",
        "",
        "| sensor noise | network's error (px) | photometric | the network's own features (1/2, 1/4) |",
        "|---|---|---|---|",
    ]
    for run in results["runs"]:
        noise = "on" if run["noise"] else "off"
        for photo, feat in zip(run["truth_lower"]["photometric"], run["truth_lower"]["own features"]):
            shares = f"{photo['truth_lower'] * 100:.0f} % | {feat['truth_lower'] * 100:.0f} %"
            lines.append(f"| {noise} | {photo['error_px']} | {shares} |")
    lines += ["", "| sensor noise | pairs | bad-2 before | after | EPE before | after |", "|---|---|---|---|---|---|"]
    for run in results["runs"]:
        for which in ("adapted", "held_out"):
            b, a = run["before"][which], run["after"][which]
            noise = "on" if run["noise"] else "off"
            lines.append(
                f"| {noise} | {which.replace('_', '-')} | {b['bad2']:.2f} % | {a['bad2']:.2f} % | "
                f"{b['epe']:.3f} | {a['epe']:.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
