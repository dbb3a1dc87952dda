"""False alarms and detections of the rectification check (:func:`rtstereo.rectify.check_rectification`).

Rectified pairs: rendered scenes (``render_batch``, all view-dependent effects on, some with 2x sensor noise,
some geometry only), the example pair, and, when present, the real rectified pairs of
``../shared/data/unlabeled``; each with its right view as taken and 0.7-1.4x as bright. Counted: false alarms
(a rows warning), ``--align-rows`` resampling (:func:`~rtstereo.rectify.row_alignment_maps` not ``None``),
and the largest misalignment read. Off pairs: the rendered scenes and the example pair with the right view
shifted down by 1 and 1.5 px or rolled by 0.5 degrees: detected (a rows warning) and the error of the
measured offset. Also the check's time at 640x480. It chooses nothing.

Usage::

    python benchmarks/rectification_check.py [--scenes 24] [--seed 100] [--output results/rectification_check.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from rtstereo.bench import machine_info
from rtstereo.io.images import read_image
from rtstereo.rectify import check_rectification, row_alignment_maps

HERE = Path(__file__).resolve().parent
UNLABELED = HERE.parent.parent / "shared" / "data" / "unlabeled"
GAINS = (0.7, 1.0, 1.2, 1.35, 1.4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=24, help="rendered scenes (a third each of three settings)")
    parser.add_argument("--seed", type=int, default=100, help="render seeds seed, seed + 1, seed + 2")
    parser.add_argument("--unlabeled", default=str(UNLABELED), help="real rectified pairs ('' to skip)")
    parser.add_argument("--output", default=None, help="JSON file for the figures")
    parser.add_argument("--verbose", action="store_true", help="print every false alarm")
    return parser.parse_args(argv)


def brighter(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def moved(image: np.ndarray, dy_px: float = 0.0, roll_degrees: float = 0.0) -> np.ndarray:
    """``image`` rolled about its centre and moved down by ``dy_px`` (bilinear, border reflected)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), roll_degrees, 1.0)
    matrix[1, 2] += dy_px
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def rendered_pairs(count: int, seed: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from rtstereo.datasets.synthetic import RenderSettings, render_batch

    settings = {
        "all": RenderSettings(),
        "noisy": RenderSettings(noise_scale=2.0),
        "geometry": RenderSettings.geometry_only(),
    }
    pairs = {}
    per = max(1, count // len(settings))
    for index, (name, setting) in enumerate(settings.items()):
        batch = render_batch(per, 480, 640, seed=seed + index, settings=setting)
        for i in range(per):
            left, right = (
                (batch[key][i].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
                for key in ("left", "right")
            )
            pairs[f"{name}-{i}"] = (left, right)
    return pairs


def real_pairs(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    pairs = {}
    for folder in sorted({p.parent for p in root.rglob("*.png")}):
        images = sorted(folder.glob("*.png"))
        if len(images) != 2:
            continue
        names = [p.name.lower() for p in images]
        # the left view first: im0/im1, *_L/*_R, left*/right*, hr0/hr1, im40/im41
        if names[0].startswith("right") or "_r." in names[0]:
            images = images[::-1]
        left, right = read_image(images[0]), read_image(images[1])
        if left.shape != right.shape:
            continue
        scale = min(1.0, 640 / left.shape[1])  # checked at most 640 px wide, as a live camera gives them
        if scale < 1:
            left, right = (
                cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for im in (left, right)
            )
        pairs[str(folder.relative_to(root))] = (left, right)
    return pairs


def rectified_figures(pairs: dict, gains: tuple[float, ...], verbose: bool) -> dict:
    judged = alarms = resampled = 0
    worst = 0.0
    for name, (left, right) in pairs.items():
        for gain in gains:
            check = check_rectification(left, brighter(right, gain) if gain != 1.0 else right)
            if not check.conclusive:
                continue
            judged += 1
            alarm = check.warning() is not None and "swapped" not in check.warning()
            resample = row_alignment_maps(check, *left.shape[:2]) is not None
            alarms += alarm
            resampled += resample
            worst = max(worst, check.measured_misalignment_px)
            if verbose and (alarm or resample):
                print(
                    f"  {name} x{gain}: measured {check.measured_misalignment_px:.2f} corners "
                    f"{check.misalignment_px:.2f} offset {check.offset_px:.2f} matches {check.matches}"
                    f"{' ALARM' if alarm else ''}{' RESAMPLED' if resample else ''}"
                )
    return {"judged": judged, "false_alarms": alarms, "resampled": resampled, "worst_measured_px": round(worst, 3)}


def offset_figures(pairs: dict, verbose: bool) -> dict:
    judged = detected = 0
    errors = []
    for name, (left, right) in pairs.items():
        for dy, roll in ((1.0, 0.0), (-1.0, 0.0), (1.5, 0.0), (0.0, 0.5)):
            for gain in (1.0, 1.35):
                check = check_rectification(left, brighter(moved(right, dy, roll), gain))
                if not check.conclusive:
                    continue
                judged += 1
                found = check.warning() is not None
                detected += found
                if dy:
                    errors.append(abs(check.offset_px + dy))  # dy = y_left - y_right
                if verbose and (not found or (dy and abs(check.offset_px + dy) > 0.25)):
                    print(f"  {name} dy {dy} roll {roll} x{gain}: offset {check.offset_px:.2f} found {found}")
    return {
        "judged": judged,
        "detected": detected,
        "offset_error_median_px": round(float(np.median(errors)), 3) if errors else None,
        "offset_error_max_px": round(float(np.max(errors)), 3) if errors else None,
    }


def check_time_ms(left: np.ndarray, right: np.ndarray, repeats: int = 10) -> float:
    check_rectification(left, right)
    start = time.perf_counter()
    for _ in range(repeats):
        check_rectification(left, right)
    return (time.perf_counter() - start) / repeats * 1000


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cv2.setNumThreads(1)
    examples = HERE.parent / "examples"
    example = {"example": (read_image(examples / "left.png"), read_image(examples / "right.png"))}
    rendered = rendered_pairs(args.scenes, args.seed)
    results = {
        "rendered_rectified": rectified_figures(rendered, GAINS, args.verbose),
        "example_rectified": rectified_figures(example, (*GAINS, 1.25, 1.3), args.verbose),
        "rendered_off": offset_figures(rendered, args.verbose),
        "example_off": offset_figures(example, args.verbose),
    }
    if args.unlabeled and Path(args.unlabeled).is_dir():
        results["unlabeled_rectified"] = rectified_figures(real_pairs(Path(args.unlabeled)), (1.0,), args.verbose)
    left, right = next(iter(rendered.values()))
    results["check_ms_640x480"] = round(check_time_ms(left, right), 1)
    for key, value in results.items():
        print(f"{key}: {value}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        document = {"machine": machine_info(), "scenes": args.scenes, "seed": args.seed, "results": results}
        Path(args.output).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
