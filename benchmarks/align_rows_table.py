"""The README's ``--align-rows`` table: what aligning the rows is worth on the design scenes, by how far
the right view is off.

The 9 Middlebury 2001 and 2014 scenes of ``../shared/data/validation`` (the project's design scenes) are
scored with ``default`` (the hybrid, its SGBM part searching each scene's own range as ``rtstereo eval``
does), over all pixels with ground truth, with the right view shifted down by 0, 0.5, 1.0 and 1.5 px
(``cv2.warpAffine``, bilinear, edge rows repeated), as taken and after
:func:`rtstereo.rectify.align_rows`. Reported: mean bad-2 per shift. A check of what the row alignment
and the rectification check do; it chooses nothing.

Usage::

    python benchmarks/align_rows_table.py      # writes benchmarks/results/align_rows/
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import cv2
import numpy as np

import rtstereo
from rtstereo.bench import machine_info
from rtstereo.datasets import find_samples
from rtstereo.metrics import disparity_metrics
from rtstereo.rectify import align_rows

HERE = Path(__file__).resolve().parent
VALIDATION = HERE.parent.parent / "shared" / "data" / "validation"
SHIFTS_PX = (0.0, 0.5, 1.0, 1.5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validation", default=str(VALIDATION), help="the selection set")
    parser.add_argument("--output-dir", default=str(HERE / "results" / "align_rows"))
    return parser.parse_args(argv)


def shifted_down(image: np.ndarray, shift_px: float) -> np.ndarray:
    """``image`` moved down by ``shift_px`` (bilinear; the top row repeated into the gap)."""
    if not shift_px:
        return image
    move = np.float32([[1, 0, 0], [0, 1, shift_px]])
    return cv2.warpAffine(image, move, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(args.validation)
    samples = find_samples(root / "middlebury2001", root / "middlebury2014")
    predictors: dict[int, rtstereo.Predictor] = {}
    rows = []
    for shift in SHIFTS_PX:
        bad2 = {"as taken": [], "aligned": []}
        for sample in samples:
            hint = sample.max_disp_hint_px
            if hint not in predictors:
                predictors[hint] = rtstereo.load("default", max_disp=hint)
            left, right, gt, _ = sample.load()
            right = shifted_down(right, shift)
            for form, view in (("as taken", right), ("aligned", align_rows(left, right)[0])):
                disparity = predictors[hint].predict(left, view).disparity_px
                bad2[form].append(disparity_metrics(disparity, gt)["bad-2"])
        rows.append({"shift_px": shift, **{form: statistics.fmean(values) for form, values in bad2.items()}})
        print(f"shift {shift:g} px: {rows[-1]['as taken']:.2f} % as taken, {rows[-1]['aligned']:.2f} % aligned")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine_info(), "scenes": [s.name for s in samples], "rows": rows}
    (out / "align_rows.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = [
        f"# default with the right view shifted down: mean bad-2 over {len(samples)} design scenes",
        "",
        f"Commit {result['machine'].get('commit', '?')}; scenes: {', '.join(result['scenes'])}.",
        "",
        "| right view shifted by | " + " | ".join(f"{r['shift_px']:g} px" for r in rows) + " |",
        "|---|" + "---|" * len(rows),
        "| `default` | " + " | ".join(f"{r['as taken']:.2f} %" for r in rows) + " |",
        "| `default` with `--align-rows` | " + " | ".join(f"{r['aligned']:.2f} %" for r in rows) + " |",
    ]
    (out / "align_rows.md").write_text("\n".join(table) + "\n", encoding="utf-8")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
