"""Methods on the selection set as it is and with the right camera exposing differently.

Real rigs rarely expose both views alike: auto-exposure per camera, different gains, white balance,
vignetting. The scenes of ``../shared/data/validation`` were mostly taken with matched cameras, so
this benchmark also scores every method with each scene's right view changed: ``clip(gain *
white_balance * right ** gamma)`` on 0..1 values, the gain, the gamma and the three white-balance
factors drawn per scene from a seeded generator (scenes in name order), then rounded to 8 bits. The
left view and the ground truth are untouched. Scoring is ``rtstereo eval``'s code, grouped as
``benchmarks/validation_table.py`` groups the selection set (bad-2 for Middlebury, bad-1 for ETH3D).

Usage::

    python benchmarks/exposure_stress.py     # writes benchmarks/results/exposure_stress/
    python benchmarks/exposure_stress.py --models sgbm,rtnet-v5 --data ../shared/data/validation/middlebury2001

The changed images live in a temporary folder for the run; nothing is written next to the data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rtstereo.bench import git_commit, machine_info
from rtstereo.datasets import find_samples
from rtstereo.datasets.readers import Sample

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import validation_table as table  # noqa: E402  (the selection set's grouping and scoring)

# every form named: plain "hybrid" is whatever default's setting is at the time
DEFAULT_MODELS = "sgbm,hybrid:sgbm_input=raw,hybrid:sgbm_input=normalized,hybrid:sgbm_input=auto"


@dataclasses.dataclass(frozen=True)
class Exposure:
    """How one scene's right view is changed."""

    gain: float
    gamma: float
    white_balance: tuple[float, float, float]  # R, G, B factors

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The changed uint8 RGB image."""
        x = rgb.astype(np.float32) / 255.0
        factors = np.asarray(self.white_balance, np.float32) * np.float32(self.gain)
        out = np.clip(np.power(x, np.float32(self.gamma)) * factors, 0.0, 1.0)
        return (out * 255.0).round().astype(np.uint8)


def draw_exposures(
    names: list[str], seed: int, gain: tuple[float, float], gamma: tuple[float, float], white_balance: float
) -> dict[str, Exposure]:
    """One :class:`Exposure` per scene name, drawn in sorted name order from ``seed``."""
    rng = np.random.default_rng(seed)
    drawn = {}
    for name in sorted(names):
        drawn[name] = Exposure(
            gain=float(rng.uniform(*gain)),
            gamma=float(rng.uniform(*gamma)),
            white_balance=tuple(float(v) for v in rng.uniform(1 - white_balance, 1 + white_balance, 3)),
        )
    return drawn


def stressed_samples(samples: list[Sample], exposures: dict[str, Exposure], folder: Path) -> list[Sample]:
    """The samples with their right views changed, written as PNG files into ``folder``."""
    out = []
    for index, sample in enumerate(samples):
        _, right = sample.load_images()
        path = folder / f"{index:03d}_right.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(exposures[sample.name].apply(right), cv2.COLOR_RGB2BGR)):
            raise SystemExit(f"could not write {path}")
        out.append(dataclasses.replace(sample, right_path=path))
    return out


def pair(text: str) -> tuple[float, float]:
    low, high = (float(v) for v in text.split(","))
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with 0 < LOW <= HIGH, got {text!r}")
    return low, high


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help="as validation_table.py takes them; the first is the baseline (default: %(default)s)",
    )
    parser.add_argument(
        "--data", default=str(table.DATA / "validation"), help="dataset folder (default: the selection set)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed of the exposures (default: %(default)s)")
    parser.add_argument("--gain", type=pair, default=(0.6, 1.5), help="range of the gain (default: 0.6,1.5)")
    parser.add_argument("--gamma", type=pair, default=(0.75, 1.33), help="range of the gamma (default: 0.75,1.33)")
    parser.add_argument(
        "--white-balance", type=float, default=0.07, help="each colour's factor is 1 +- this (default: %(default)s)"
    )
    parser.add_argument("--output-dir", default=str(HERE / "results" / "exposure_stress"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if len(models) < 2:
        sys.exit(f"give a baseline and at least one other model (--models), got {models}")
    if not Path(args.data).is_dir():
        sys.exit(f"no data at {args.data} (give --data)")
    samples = sorted(find_samples(args.data), key=lambda s: s.name)
    if not samples:
        sys.exit(f"no scenes with ground truth found under {args.data}")
    exposures = draw_exposures([s.name for s in samples], args.seed, args.gain, args.gamma, args.white_balance)
    names = [table.label(m) for m in models]
    out = Path(args.output_dir)
    sections, summary = [], {}
    with tempfile.TemporaryDirectory(prefix="rtstereo-exposure-") as tmp:
        variants = (
            ("as_taken", "as taken", samples),
            ("re_exposed", "right view re-exposed", stressed_samples(samples, exposures, Path(tmp))),
        )
        for key, variant, scenes in variants:
            reports = {}
            for model in models:
                print(f"eval {model} ({variant}) ...", file=sys.stderr)
                reports[table.label(model)] = report = table.run_eval(model, scenes)
                report.save(out / "eval" / key, table.label(model))
            scene_rows, group_rows = table.summarise("validation", reports, names[0])
            sections.append(f"## {variant}\n\n" + table.markdown(scene_rows, group_rows, names).replace("## ", "### "))
            summary[key] = {"groups": group_rows, "scenes": scene_rows}
    lines = [
        f"# {', '.join(names[1:])} against {names[0]}, with the right camera exposing differently",
        "",
        f"Data `{os.path.relpath(args.data, HERE.parent)}`; right views changed with seed {args.seed}, "
        f"gain {args.gain[0]}-{args.gain[1]}, gamma {args.gamma[0]}-{args.gamma[1]}, "
        f"white balance 1 +- {args.white_balance}.",
        "",
        *sections,
        "## The exposures",
        "",
        "| scene | gain | gamma | white balance (R, G, B) |",
        "|---|---|---|---|",
        *(
            f"| {name} | {e.gain:.2f} | {e.gamma:.2f} | {', '.join(f'{v:.2f}' for v in e.white_balance)} |"
            for name, e in exposures.items()
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    record = {
        "commit": git_commit(),
        "machine": machine_info(),
        "models": names,
        "data": os.path.relpath(args.data, HERE.parent),
        "seed": args.seed,
        "gain": args.gain,
        "gamma": args.gamma,
        "white_balance": args.white_balance,
        "exposures": {name: dataclasses.asdict(e) for name, e in exposures.items()},
        **summary,
    }
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out}/summary.md and summary.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
