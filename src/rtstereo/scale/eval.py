"""``rtstereo eval --engine ray``: the scenes of a dataset scored by a pool of Ray actors.

Each actor holds the predictors it needs (one, or one per disparity range when a classical method
searches each scene's own range), loads its scenes' images and ground truth, and returns the
metrics; the driver gathers them into the same :class:`~rtstereo.eval.EvalReport` as one process.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..batch.job import PredictorOptions, failure_reason
from ..datasets.readers import Sample
from ..eval import EvalInterrupted, EvalReport, SceneResult, check_max_gt_disp, score_sample
from ..io.atomic import interruption_cause, terminate_as_interrupt
from ..runtime.providers import limit_threads
from ..text import counted
from .session import (
    absolute_for_workers,
    actor_pool,
    cluster_pool,
    gathering,
    item_tries,
    needs_gpu,
    options_for_workers,
    ray_session,
    reissue_warnings,
    remote_args_allowed,
    retries_args,
    worker_died,
    worker_warnings,
)


class EvalActor:
    """Ray actor: scores the scenes it is given, with predictors built once and kept.

    Args:
        samples: the whole list (rows carry an index into it).
        options: the predictor to build.
        per_scene_range: classical methods search each scene's ``max_disp_hint_px``.
        threads: CPU threads for the model.
        max_gt_disp_px: ground truth of this many pixels or more left out (:func:`~rtstereo.eval.score_sample`).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        options: PredictorOptions,
        per_scene_range: bool,
        threads: int,
        max_gt_disp_px: float | None = None,
    ):
        limit_threads(threads)
        self.samples, self.options, self.per_scene_range, self.threads = samples, options, per_scene_range, threads
        self.max_gt_disp_px = max_gt_disp_px
        self.cache: dict[int | None, Any] = {}
        self.warmed: dict[Any, Any] = {}  # each worker's predictors warm up per size (OpenCV once), as in one process

    def predictor_for(self, sample: Sample):
        key = sample.max_disp_hint_px if self.per_scene_range else None
        if key not in self.cache:
            settings = {**self.options.settings, **({"max_disp": key} if key else {})}
            options = PredictorOptions(**{**self.options.__dict__, "settings": settings})
            self.cache[key] = options.load()
            limit_threads(self.threads)
        return self.cache[key]

    def __call__(self, batch: dict) -> dict[str, list]:
        rows: dict[str, list] = {"index": [], "scene": [], "error": [], "warnings": []}
        for index in batch["index"]:
            sample = self.samples[int(index)]
            scene, error = None, ""
            with worker_warnings() as found:  # said by the driver: resizing is never silent
                try:
                    scene = score_sample(self.predictor_for, sample, self.warmed, max_gt_disp_px=self.max_gt_disp_px)
                except Exception as exc:  # noqa: BLE001 - a bad scene is reported, the others go on
                    error = failure_reason(exc, sample.files())
            rows["index"].append(int(index))
            rows["scene"].append(json.dumps(scene.__dict__, default=_jsonable) if scene is not None else "")
            rows["error"].append(error)
            rows["warnings"].append(json.dumps(found))
        return rows


def run_ray_eval(
    samples: Sequence[Sample],
    options: PredictorOptions,
    model: str,
    *,
    per_scene_range: bool = False,
    workers: int | None = None,
    address: str | None = None,
    fail_fast: bool = False,
    progress: bool = False,
    max_gt_disp_px: float | None = None,
) -> EvalReport:
    """Score every sample on Ray; scenes that fail are listed in :attr:`EvalReport.failures`.

    Args:
        samples: from :func:`rtstereo.datasets.find_samples`.
        options: the predictor each actor builds (built once here first, so a bad model fails early).
        model: the name recorded in the report.
        per_scene_range: classical methods search each scene's own disparity range.
        workers: actors (default: one per 2 CPUs, or one per GPU).
        address: the Ray cluster (default: ``$RAY_ADDRESS``, else a local Ray).
        fail_fast: stop gathering after the first failed scene.
        progress: a progress bar (scenes/s) on stderr.
        max_gt_disp_px: ground truth of this many pixels or more left out (:func:`~rtstereo.eval.score_sample`).

    Returns:
        The report, scenes in the samples' order.

    Raises:
        EngineError: Ray cannot be reached, or the pipeline broke down.
        EvalInterrupted: Ctrl-C or SIGTERM; its ``report`` holds the scenes whose results had come back.
        InputError: a ``max_gt_disp_px`` that :func:`~rtstereo.eval.check_max_gt_disp` refuses.
    """
    from ..progress import progress_bar

    max_gt_disp_px = check_max_gt_disp(max_gt_disp_px)  # before Ray starts and the model loads
    use_gpu = needs_gpu(options, options.load())
    samples = list(samples)
    report = EvalReport(model=model, listed=len(samples), max_gt_disp_px=max_gt_disp_px)
    if not samples:
        return report
    # The workers' folder need not be this one (a Ray started elsewhere, a cluster): every file as an absolute path.
    sent = [_absolute_paths(sample) for sample in samples]
    options = options_for_workers(options)
    scored: dict[int, SceneResult] = {}
    failed: dict[int, dict[str, str]] = {}
    interrupted, interrupted_by = False, None  # Ray's own error around an interrupt does not say what raised it
    bar, complete = None, False
    try:
        with ray_session(address) as ray:
            size = cluster_pool(ray, workers, use_gpu, items=len(samples))
            items = [{"index": i} for i in range(len(samples))]
            with remote_args_allowed():
                dataset = item_tries(
                    ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                        EvalActor,
                        fn_constructor_kwargs={
                            "samples": sent,
                            "options": options,
                            "per_scene_range": per_scene_range,
                            "threads": size.threads,
                            "max_gt_disp_px": max_gt_disp_px,
                        },
                        batch_size=1,
                        compute=actor_pool(ray, size.workers),
                        num_cpus=size.cpus,
                        num_gpus=size.gpus,
                        **retries_args(actors=True),
                    )
                )
            bar = progress_bar(
                total=len(samples), desc="eval (ray)", unit="scene", file=sys.stderr, disable=not progress
            )
            said: set[str] = set()
            try:
                with gathering(lambda: f"{bar.n} of {counted(len(samples), 'scene')}") as ended:
                    with terminate_as_interrupt():  # Ray's own SIGTERM handler exits at once, with a stack dump
                        for row in dataset.iter_rows():
                            index = int(row["index"])
                            bar.update(1)
                            reissue_warnings(row.get("warnings"), said)
                            if row["error"]:
                                sample = samples[index]
                                failed[index] = {
                                    "name": sample.name,
                                    "left": str(sample.left_path),
                                    "error": row["error"],
                                }
                                if fail_fast:
                                    break
                            elif row["scene"]:
                                values = json.loads(row["scene"])
                                values["size_hw"] = tuple(values["size_hw"])
                                if values.get("ran_at_hw"):
                                    values["ran_at_hw"] = tuple(values["ran_at_hw"])
                                scored[index] = SceneResult(**values)
                                scored[index].left_path = str(samples[index].left_path)  # as given, as one process says
                        else:  # every row came back: a scene missing is one whose worker died on each try
                            for index, sample in enumerate(samples):
                                if index not in scored and index not in failed:
                                    bar.update(1)
                                    failed[index] = {
                                        "name": sample.name,
                                        "left": str(sample.left_path),
                                        "error": worker_died("scene"),
                                    }
                    complete = True
                interrupted, interrupted_by = ended.interrupted, ended.interrupted_by
            finally:
                bar.close()
    except KeyboardInterrupt as exc:
        if bar is None:  # Ray starting: nothing gathered yet
            raise
        # Ctrl-C while Ray shut down (seconds, after the bar reached its end): a run whose every scene came back is
        # complete, not interrupted.
        if not complete and not interrupted:
            interrupted, interrupted_by = True, interruption_cause(exc)
    report.scenes = [scored[i] for i in sorted(scored)]
    report.failures = [failed[i] for i in sorted(failed)]
    if interrupted:  # the scenes whose results came back are kept, as in one process
        report.interrupted, report.interrupted_by = True, interrupted_by
        raise EvalInterrupted(report)
    return report


def _absolute_paths(sample: Sample) -> Sample:
    """``sample`` with its files as absolute paths (its ``*_path`` fields), for workers that run in another folder."""
    paths = {
        field.name: absolute_for_workers(value)
        for field in dataclasses.fields(sample)
        if field.name.endswith("_path") and (value := getattr(sample, field.name)) is not None
    }
    return dataclasses.replace(sample, **paths)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
