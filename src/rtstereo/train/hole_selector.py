"""Fitting the hybrid's two selectors on rendered scenes: the hole selector
(:class:`rtstereo.runtime.hole_choice.HoleSelector`) and the check of SGBM's confident pixels
(:class:`rtstereo.runtime.confident_check.ConfidentSelector`).

Each rendered pair (exact ground truth, :func:`rtstereo.datasets.synthetic.render_batch`) goes through the
hybrid as at run time: SGBM's confident matches with the hybrid's settings, its network given them,
SGBM's row-wise fill. ``--which holes``: at the hole pixels where exactly one of the network and the fill
is within 2 px of the truth (the only ones where the choice changes bad-2), the measures of
:func:`~rtstereo.runtime.hole_choice.hole_candidates` are kept with the label "the fill is right".
``--which confident``: at the confident pixels where the network differs from SGBM by more than 1 px and
exactly one of the two is within 2 px, the measures of
:func:`~rtstereo.runtime.confident_check.check_candidates` with the label "the network is right". A random
subset per pair is kept; a one-hidden-layer perceptron is then fit by L-BFGS on the logistic loss
(deterministic on a CPU).

Usage::

    python -m rtstereo.train.hole_selector --pairs 640                       # the hole selector
    python -m rtstereo.train.hole_selector --which confident --pairs 640     # the confident check

No real image is used: the selection and report sets judge the result (training/hole_selector/).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..runtime.confident_check import ConfidentSelector, check_candidates, prepare_check
from ..runtime.hole_choice import HoleSelector, hole_candidates, prepare_holes

BAD_PX = 2.0  # the threshold the choice is fit for (Middlebury's bad-2)
SELECTORS = {"holes": HoleSelector, "confident": ConfidentSelector}


def decisive_measures(
    which: str,
    left: np.ndarray,
    right: np.ndarray,
    confident: np.ndarray,
    network: np.ndarray,
    truth: np.ndarray,
    search_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The measures and labels of one pair's decisive pixels: ``which="holes"``, hole pixels where
    exactly one of the network and the fill is right (label: the fill is); ``"confident"``, confident
    pixels where the network disagrees and exactly one of the two is right (label: the network is)."""
    if which == "holes":
        candidates = hole_candidates(left, right, confident, network, search_px)
        ys, xs = np.nonzero(candidates.holes)
        first = np.abs(candidates.fill[ys, xs] - truth[ys, xs]) <= BAD_PX
        second = np.abs(candidates.network[ys, xs] - truth[ys, xs]) <= BAD_PX
    else:
        prepared = prepare_check(right, prepare_holes(left, right, confident))
        candidates = check_candidates(network, prepared, search_px)
        at_truth = truth.reshape(-1).take(candidates.points)
        first = np.abs(candidates.network - at_truth) <= BAD_PX
        second = np.abs(candidates.sgbm - at_truth) <= BAD_PX
    decisive = np.flatnonzero(first != second)
    return candidates.features[decisive], first[decisive]


def collect(
    pairs: int,
    which: str = "holes",
    height: int = 384,
    width: int = 512,
    max_disp_px: float = 128.0,
    seed: int = 1000,
    per_pair: int = 4000,
    batch_size: int = 8,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Measures and labels from ``pairs`` rendered scenes (seeds ``seed, seed + 1, ...`` of
    :func:`render_batch`, ``batch_size`` pairs each), through today's ``hybrid``, for the selector
    ``which`` (see :func:`decisive_measures`); at most ``per_pair`` pixels of each pair.

    Returns:
        ``(X, y)``: float32 ``(N, F)`` measures and bool ``(N,)`` labels.
    """

    import rtstereo
    from rtstereo.datasets.synthetic import render_batch
    from rtstereo.runtime.hybrid import confident_matches
    from rtstereo.train.hints import uint8_images
    from rtstereo.types import StereoPair

    hybrid = rtstereo.load("hybrid", max_disp=int(max_disp_px))
    measures, labels = [], []
    started, done = time.perf_counter(), 0
    for batch_seed in range(seed, seed + -(-pairs // batch_size)):
        batch = render_batch(min(batch_size, pairs - done), height, width, seed=batch_seed, max_disp_px=max_disp_px)
        images = dict(zip(("left", "right"), uint8_images(batch["left"], batch["right"]), strict=True))
        for index in range(len(batch["disparity"])):
            left, right = images["left"][index], images["right"][index]
            truth = batch["disparity"][index].numpy()
            confident = confident_matches(left, right, hybrid.settings, max_disp_px)
            network = hybrid.network.predict_pair(StereoPair(left, right), hints=confident).disparity_px
            features, label = decisive_measures(which, left, right, confident, network, truth, max_disp_px)
            rng = np.random.default_rng(done)
            keep = rng.choice(len(label), min(per_pair, len(label)), replace=False)
            measures.append(features[keep])
            labels.append(label[keep])
            done += 1
        if progress:
            print(f"  {done}/{pairs} pairs, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return np.concatenate(measures), np.concatenate(labels)


def fit(
    measures: np.ndarray,
    labels: np.ndarray,
    hidden: int = 32,
    steps: int = 300,
    seed: int = 0,
    kind: type[HoleSelector] = HoleSelector,
) -> HoleSelector:
    """A selector of class ``kind`` with ``hidden`` units fit to ``labels`` by L-BFGS (``steps`` iterations)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(measures, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    first = torch.nn.Linear(x.shape[1], hidden)
    second = torch.nn.Linear(hidden, 1)
    with torch.no_grad():  # initialised from the generator, not from torch's global one
        for layer in (first, second):
            bound = 1.0 / layer.in_features**0.5
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
    parameters = [*first.parameters(), *second.parameters()]
    optimiser = torch.optim.LBFGS(parameters, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        logits = second(torch.tanh(first(x))).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return kind(
            {
                "features": kind.FEATURES,
                "hidden_weight": first.weight.numpy().copy(),
                "hidden_bias": first.bias.numpy().copy(),
                "output_weight": second.weight[0].numpy().copy(),
                "output_bias": float(second.bias[0]),
            }
        )


def accuracy(selector: HoleSelector, measures: np.ndarray, labels: np.ndarray) -> float:
    """Share of the decisive pixels the selector gets right."""
    return float(np.mean((selector.logits(measures) > 0) == labels))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rtstereo.train.hole_selector",
        description="Fit one of the hybrid's selectors on rendered scenes: the hole selector "
        "(rtstereo.runtime.hole_choice) or the check of SGBM's confident pixels (rtstereo.runtime.confident_check).",
    )
    parser.add_argument(
        "--which", choices=tuple(SELECTORS), default="holes", help="which selector to fit (default: holes)"
    )
    parser.add_argument("--pairs", type=int, default=640, help="rendered pairs to fit on (default: 640)")
    parser.add_argument("--held-out", type=int, default=64, help="further pairs to score it on (default: 64)")
    parser.add_argument("--size", default="384x512", help="HxW of the rendered pairs (default: 384x512)")
    parser.add_argument("--max-disp", type=float, default=128.0, help="largest rendered and searched disparity, px")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units (default: 32)")
    parser.add_argument("--seed", type=int, default=1000, help="first render seed (default: 1000)")
    parser.add_argument("-o", "--output", default=None, help="where the JSON goes (default: the packaged one's file)")
    args = parser.parse_args(argv)
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size: expected HxW, got {args.size!r}")
    if args.pairs < 1 or args.held_out < 0 or args.hidden < 1:
        parser.error("--pairs and --hidden must be at least 1, --held-out at least 0")
    started = time.perf_counter()
    kind = SELECTORS[args.which]
    output = args.output or str(kind.PACKAGED_FILE)
    right = {"holes": "fill_right_share", "confident": "network_right_share"}[args.which]
    print(f"rendering and matching {args.pairs} pairs at {height}x{width} (HxW) ...", file=sys.stderr)
    common = dict(which=args.which, height=height, width=width, max_disp_px=args.max_disp, progress=True)
    measures, labels = collect(args.pairs, seed=args.seed, **common)
    print(f"fitting {args.hidden} hidden units on {len(labels)} decisive pixels ...", file=sys.stderr)
    selector = fit(measures, labels, hidden=args.hidden, kind=kind)
    meta = {
        "fit_on": f"{args.pairs} rendered pairs at {height}x{width} (HxW), max_disp {args.max_disp:g} px, "
        f"seeds from {args.seed}",
        "decisive_pixels": int(len(labels)),
        right: round(float(labels.mean()), 4),
        "train_accuracy": round(accuracy(selector, measures, labels), 4),
    }
    if args.held_out:
        held_seed = args.seed + -(-args.pairs // 8) + 1000
        held_measures, held_labels = collect(args.held_out, seed=held_seed, **common)
        meta["held_out"] = f"{args.held_out} pairs, seeds from {held_seed}"
        meta["held_out_accuracy"] = round(accuracy(selector, held_measures, held_labels), 4)
        meta[f"held_out_{right}"] = round(float(held_labels.mean()), 4)
        # The lower photometric cost over the window: measure 0 of both kinds is (the fill's or SGBM's
        # cost - the network's) / (sum + 1), and the label says the fill (holes) or the network (confident)
        cheaper_fill_or_network = held_measures[:, 0] < 0 if args.which == "holes" else held_measures[:, 0] > 0
        meta["held_out_cost_rule_accuracy"] = round(float(np.mean(cheaper_fill_or_network == held_labels)), 4)
    selector.meta.update(meta)
    selector.save(output)
    print(
        f"wrote {output} in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{key} {value}" for key, value in meta.items()),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
