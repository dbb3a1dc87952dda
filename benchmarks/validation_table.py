"""The accuracy table of the README: each method on the selection set and on the report set, per kind of scene.

``../shared/data/validation`` (22 Middlebury scenes and ETH3D terrace) is the set that chooses
``default``; ``../shared/data/real`` (8 scenes) is the report set, never used to choose. Every method
is scored by ``rtstereo eval``'s code (:func:`rtstereo.eval.evaluate`) over all pixels with ground
truth. Each kind of scene is judged on its usual metric (bad-2 for Middlebury, bad-1 for ETH3D, D1 for
KITTI, EPE for SceneFlow); a method is "better" on a scene when that figure is lower than the
baseline's (the first model).

Classical methods (and the hybrid's SGBM part) search each scene's own range hint, as ``rtstereo eval``
does, except on ETH3D (``CLASSICAL_RANGE_PX``); networks search the range they ship with.

Usage::

    python benchmarks/validation_table.py      # writes benchmarks/results/validation/
    python benchmarks/validation_table.py --models sgbm,rtnet-v5,my.onnx --output-dir /tmp/table
    python benchmarks/validation_table.py --models sgbm,hybrid,hybrid:network=g.onnx --sets validation

``NAME:KEY=VALUE[:KEY=VALUE...]`` gives a registered method settings (``hybrid:network=FILE`` runs
the hybrid with another network); it is labelled ``NAME[VALUE-stems]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import rtstereo
from rtstereo.bench import git_commit, machine_info
from rtstereo.datasets import find_samples
from rtstereo.datasets.readers import Sample
from rtstereo.eval import EvalReport, evaluate
from rtstereo.models import PACKAGED_NETWORK, get_spec, is_onnx_file

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

# ETH3D's calib.txt gives ndisp as a loose bound (713 on terrace: its whole width, more than SGBM can
# search); 64 px is the range of the reference SGBM figures in ../shared/data/README.md.
CLASSICAL_RANGE_PX = {"eth3d": 64}


@dataclass(frozen=True)
class Group:
    """Scenes summarised together: those whose reader ``dataset`` is in ``datasets``."""

    label: str
    datasets: frozenset[str]
    metric: str  # the figure the group is judged on; lower is better


def group(label: str, metric: str, *datasets: str) -> Group:
    return Group(label, frozenset(datasets), metric)


MIDDLEBURY_VALIDATION = ("middlebury2014", "middlebury2005", "middlebury2001")
# Per set, the groups of the table; a scene's own metric is that of the first group holding it.
SETS: dict[str, tuple[Group, ...]] = {
    "validation": (
        group("Middlebury 2014, quarter size", "bad-2", "middlebury2014"),
        # The reader names the layout of the 2005 and 2006 scenes middlebury2005; these are 2006 scenes.
        group("Middlebury 2006, third size", "bad-2", "middlebury2005"),
        group("Middlebury 2001", "bad-2", "middlebury2001"),
        group("Middlebury, all", "bad-2", *MIDDLEBURY_VALIDATION),
        group("ETH3D", "bad-1", "eth3d"),
    ),
    "real": (
        group("Middlebury 2001/2003", "bad-2", "middlebury2001", "middlebury2003"),
        group("KITTI 2012", "d1", "kitti2012"),
        group("SceneFlow", "epe", "sceneflow"),
    ),
}
UNITS = {"epe": "EPE px", "d1": "D1 %"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default=f"sgbm,{PACKAGED_NETWORK}",
        help="registry names or .onnx files, comma-separated; the first is the baseline (default: %(default)s)",
    )
    parser.add_argument("--validation", default=str(DATA / "validation"), help="the selection set")
    parser.add_argument("--real", default=str(DATA / "real"), help="the report set")
    parser.add_argument("--output-dir", default=str(HERE / "results" / "validation"))
    parser.add_argument(
        "--sets",
        default="validation,real",
        help="which sets to score, comma-separated: validation (chooses) and real (reported once the choice "
        "is made) (default: %(default)s)",
    )
    return parser.parse_args(argv)


def split_settings(model: str) -> tuple[str, dict[str, str]]:
    """``NAME:KEY=VALUE:...`` to ``(NAME, {KEY: VALUE})``; a file or a plain name has no settings."""
    if Path(model).exists() or ":" not in model or "=" not in model.split(":", 1)[1]:
        return model, {}
    name, *pairs = model.split(":")
    settings = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    if len(settings) != len(pairs):
        sys.exit(f"--models: expected NAME:KEY=VALUE[:KEY=VALUE...], got {model!r}")
    return name, settings


def label(model: str) -> str:
    """How a model is named in tables and result files: a file by its stem, settings by their values'
    stems in brackets."""
    name, settings = split_settings(model)
    if settings:
        return f"{name}[{','.join(Path(v).stem for v in settings.values())}]"
    return Path(model).stem if is_onnx_file(name) else model


def range_px(model: str, sample: Sample) -> int | None:
    """The disparity range a method searches on a scene; ``None``: the one it ships with (the hybrid's
    SGBM part searches like SGBM; its network keeps its own range)."""
    name, _ = split_settings(model)
    if is_onnx_file(name) or get_spec(name).kind not in ("classical", "hybrid"):
        return None
    return CLASSICAL_RANGE_PX.get(sample.dataset, sample.max_disp_hint_px)


def run_eval(model: str, samples: list[Sample]) -> EvalReport:
    """``rtstereo eval`` of one method, with one predictor per searched range."""
    predictors: dict[int | None, rtstereo.Predictor] = {}
    name, settings = split_settings(model)

    def predictor_for(sample: Sample) -> rtstereo.Predictor:
        key = range_px(model, sample)
        if key not in predictors:
            predictors[key] = rtstereo.load(name, **settings, **({"max_disp": key} if key else {}))
        return predictors[key]

    return evaluate(predictor_for, samples, model=label(model))


def figure(value: float, metric: str, digits: int = 1) -> str:
    """A figure as shown: percentages to ``digits`` decimals, EPE always to two."""
    return f"{value:.2f}" if metric == "epe" else f"{value:.{digits}f}"


def summarise(set_name: str, reports: dict[str, EvalReport], baseline: str) -> tuple[list[dict], list[dict]]:
    """Per-scene rows and per-group rows (means and wins against the baseline) of one set."""
    groups = SETS[set_name]
    metrics = {(m, scene.name): scene.metrics for m, report in reports.items() for scene in report.scenes}
    scene_rows = []
    for scene in reports[baseline].scenes:
        own = next((g for g in groups if scene.dataset in g.datasets), None)
        if own is None:
            sys.exit(f"{set_name}: scene {scene.name} ({scene.dataset}) belongs to no group of SETS; add one")
        scene_rows.append(
            {
                "set": set_name,
                "scene": scene.name,
                "dataset": scene.dataset,
                "group": own.label,
                "metric": own.metric,
                "values": {m: metrics[m, scene.name][own.metric] for m in reports},
                "epe": {m: metrics[m, scene.name]["epe"] for m in reports},
            }
        )
    order = [g.label for g in groups]
    scene_rows.sort(key=lambda row: order.index(row["group"]))  # stable: the reader's order within a group
    group_rows = []
    for g in groups:
        members = [r for r in scene_rows if r["dataset"] in g.datasets]
        if not members:
            continue
        values = {m: [metrics[m, r["scene"]][g.metric] for r in members] for m in reports}
        group_rows.append(
            {
                "set": set_name,
                "group": g.label,
                "metric": g.metric,
                "scenes": len(members),
                "mean": {m: statistics.fmean(v) for m, v in values.items()},
                "mean_epe": {m: statistics.fmean(r["epe"][m] for r in members) for m in reports},
                "better_than_baseline": {
                    m: sum(a < b for a, b in zip(v, values[baseline], strict=True))
                    for m, v in values.items()
                    if m != baseline
                },
                "worse_than_baseline": {
                    m: sum(a > b for a, b in zip(v, values[baseline], strict=True))
                    for m, v in values.items()
                    if m != baseline
                },
            }
        )
    return scene_rows, group_rows


def markdown(scene_rows: list[dict], group_rows: list[dict], models: list[str]) -> str:
    baseline, others = models[0], models[1:]
    metric_name = lambda metric: UNITS.get(metric, f"{metric} %")  # noqa: E731
    lines = [
        "## Per kind (mean over the scenes)",
        "",
        "| set | scenes | metric | "
        + " | ".join(models)
        + " | "
        + " | ".join(f"{m} better / worse on" for m in others)
        + " | mean EPE px ("
        + ", ".join(models)
        + ") |",
        "|---|---|---|" + "---|" * (len(models) + len(others) + 1),
    ]
    for row in group_rows:
        lines.append(
            f"| {row['set']}: {row['group']} | {row['scenes']} | {metric_name(row['metric'])} | "
            + " | ".join(figure(row["mean"][m], row["metric"], digits=2) for m in models)
            + " | "
            + " | ".join(
                f"{row['better_than_baseline'][m]} / {row['worse_than_baseline'][m]} of {row['scenes']}" for m in others
            )
            + " | "
            + " / ".join(f"{row['mean_epe'][m]:.2f}" for m in models)
            + " |"
        )
    lines += [
        "",
        f"## Per scene (better: lower than {baseline}'s)",
        "",
        "| set | scene | kind | metric | " + " | ".join(models) + " | EPE px (" + ", ".join(models) + ") |",
        "|---|---|---|---|" + "---|" * (len(models) + 1),
    ]
    for row in scene_rows:
        cells = []
        for m in models:
            text = figure(row["values"][m], row["metric"])
            cells.append(f"**{text}**" if m != baseline and row["values"][m] < row["values"][baseline] else text)
        lines.append(
            f"| {row['set']} | {row['scene']} | {row['group']} | {metric_name(row['metric'])} | "
            + " | ".join(cells)
            + " | "
            + " / ".join(f"{row['epe'][m]:.2f}" for m in models)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if len(models) < 2:
        sys.exit(f"give a baseline and at least one other model (--models), got {models}")
    labels = [label(m) for m in models]
    clashes = sorted({name for name in labels if labels.count(name) > 1})
    if clashes:  # their result files and table columns would overwrite each other
        sys.exit(
            f"--models: {', '.join(clashes)} would name more than one model (a file is named by its stem, "
            "settings by their values); give the files distinct names"
        )
    out = Path(args.output_dir)
    scene_rows: list[dict] = []
    group_rows: list[dict] = []
    wanted = {name.strip() for name in args.sets.split(",") if name.strip()}
    if not wanted or wanted - {"validation", "real"}:
        sys.exit(f"--sets takes validation and/or real, got {args.sets!r}")
    sets = tuple(
        (name, root) for name, root in (("validation", args.validation), ("real", args.real)) if name in wanted
    )
    for set_name, root in sets:
        if not Path(root).is_dir():
            sys.exit(f"no {set_name} data at {root} (give --{set_name})")
        samples = find_samples(root)
        reports = {}
        for model in models:
            print(f"eval {model} on {root} ...", file=sys.stderr)
            reports[label(model)] = report = run_eval(model, samples)
            report.save(out / "eval" / set_name, label(model))
        scenes, groups = summarise(set_name, reports, label(models[0]))
        scene_rows += scenes
        group_rows += groups

    names = [label(m) for m in models]
    table = markdown(scene_rows, group_rows, names)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    title = f"# {', '.join(names[1:])} against {names[0]}: validation (selection) and real (report) sets\n\n"
    (out / "summary.md").write_text(title + table)
    summary = {
        "commit": git_commit(),
        "machine": machine_info(),
        "models": names,
        "baseline": names[0],
        # relative to the repository root, as the README names them (../shared/data/...)
        "sets": {name: os.path.relpath(root, HERE.parent) for name, root in sets},
        "classical_range_px": CLASSICAL_RANGE_PX,
        "groups": group_rows,
        "scenes": scene_rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {out}/summary.md and summary.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
