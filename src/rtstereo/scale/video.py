"""Long videos on Ray: the frames cut into ranges, each range streamed by an actor that holds one predictor.

Each range runs the single-process stream pipeline (:class:`~rtstereo.stream.Stream`) from its first
frame, and writes the same per-frame 16-bit PNGs, numbered as one process numbers them
(``PREFIX_00000.png`` is the first frame used). The temporal filter, when on, restarts at the first
frame of every range: it has no past there, so the first frames of a range flicker as the first
frames of a video do. So does the hybrid's exposure hysteresis (``sgbm_input=auto``). ``--align-rows`` is
measured once, by the driver, and handed to every range with the job's preparation.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..batch.job import PredictorOptions, failure_reason
from ..batch.outcome import DONE, FAILED
from ..errors import InputError
from ..io.atomic import remove_stale_partials, terminate_as_interrupt
from ..runtime.providers import limit_threads
from ..sinks.video import DisparityPngSink, numbered_pngs
from ..sources.base import FramePreparer, FrameSource
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

RANGES_PER_WORKER = 4
INTERRUPTED = "interrupted"  # a range stopped by Ctrl-C, or whose report never came back, with frames missing


@dataclass(frozen=True)
class FrameRange:
    """Frames ``first .. first + count - 1``, numbered among the frames used (after ``--start``/``--stride``)."""

    first: int
    count: int


def split_frames(total: int, pieces: int) -> list[FrameRange]:
    """Cut ``total`` frames into at most ``pieces`` consecutive ranges of near-equal length.

    Examples:
        >>> split_frames(10, 3)
        [FrameRange(first=0, count=4), FrameRange(first=4, count=3), FrameRange(first=7, count=3)]
    """
    pieces = max(1, min(pieces, total))
    base, extra = divmod(total, pieces)
    ranges, first = [], 0
    for i in range(pieces):
        count = base + (1 if i < extra else 0)
        ranges.append(FrameRange(first, count))
        first += count
    return ranges


class NumberedPngSink(DisparityPngSink):
    """Disparity PNGs numbered from ``offset``: a range's frames carry their place in the whole video."""

    def __init__(self, prefix: str | Path, offset: int):
        super().__init__(prefix)
        self.offset = offset
        self._earlier = set()  # the other ranges write beside this one at the same time: not an earlier run

    def path_for(self, number: int) -> Path:
        return super().path_for(number + self.offset)


@dataclass(frozen=True)
class VideoJob:
    """What every range does: open the source at its first frame, prepare, predict, filter, write.

    Attributes:
        source: the opened video source (files every worker can read), used as a template.
        prefix: the ``--output-prefix`` of the PNGs.
        options: how each actor builds its predictor.
        prepare: rectification, calibration and resizing of each frame.
        temporal: the temporal filter's ``(alpha, reset_px, confirm_frames)``, or ``None``.
    """

    source: FrameSource
    prefix: str
    options: PredictorOptions
    prepare: FramePreparer = field(default_factory=FramePreparer)
    temporal: tuple[float, float, int] | None = None

    def run_range(self, predictor, frames: FrameRange) -> dict[str, Any]:
        """Stream one range; a failure becomes the row's error (what was written before it stays valid)."""
        from ..stream import Stream
        from ..temporal import TemporalFilter

        source = copy.copy(self.source)
        source.start = self.source.start + frames.first * self.source.stride
        source.start_given = frames.first == 0  # a later range's first frame is no --start of the user's
        temporal = TemporalFilter(*self.temporal) if self.temporal is not None else None
        sink = NumberedPngSink(self.prefix, frames.first)
        stream = Stream(
            source,
            predictor,
            sinks=[sink],
            prepare=copy.copy(self.prepare),
            temporal=temporal,
            max_frames=frames.count,
            progress=False,
        )
        row = {**asdict(frames), "written": 0, "status": DONE, "error": "", "wall_s": 0.0}
        started = time.perf_counter()
        with worker_warnings() as found:  # said by the driver: resizing is never silent
            try:
                stream.run(raise_interrupt=False)  # an interrupted range is a row, below
            except Exception as exc:  # noqa: BLE001 - a bad range is reported, the others go on
                row.update(status=FAILED, error=failure_reason(exc))
        row["warnings"] = json.dumps(found)
        row["written"] = len(sink.written)
        interrupted = stream.summary is not None and stream.summary.stopped_by == "interrupt"
        # frames of the range passed over because they did not decode (damaged) are no frames missing
        damaged = stream.summary.source_stats.get("damaged_frames", []) if stream.summary is not None else []
        damaged = [index for index in damaged if (index - source.start) // source.stride < frames.count]
        row["damaged_frames"] = json.dumps(damaged)  # as text, as the warnings: a column of lists of any length
        # what the one-process summary names: the model the alias stands for, and its settings as run
        summary = stream.summary
        row["model"] = summary.model if summary is not None else ""
        row["settings"] = json.dumps(summary.settings, default=str) if summary is not None else ""
        # the window --fit crop cut from the frames, which the PNGs are maps of ("" without)
        crop = summary.preparation.get("crop") if summary is not None else None
        row["crop"] = json.dumps(crop) if crop is not None else ""
        passed = len(damaged)
        if row["status"] == DONE and interrupted and row["written"] + passed < frames.count:
            # Ctrl-C reached the range's stream, which stops as a one-process run does: not a video that ended
            # early, nor a failed range (as the driver counts a range whose report never came back).
            row.update(
                status=INTERRUPTED,
                error=f"interrupted with {row['written']} of {counted(frames.count, 'frame')} written",
            )
        elif row["status"] == DONE and row["written"] + passed < frames.count:
            row.update(
                status=FAILED, error=f"the video ended after {row['written']} of {counted(frames.count, 'frame')}"
            )
        row["wall_s"] = time.perf_counter() - started
        return row


class RangeActor:
    """Ray actor: one predictor, streaming the ranges it is given."""

    def __init__(self, job: VideoJob, threads: int):
        limit_threads(threads)
        remove_stale_partials(Path(job.prefix).parent)  # PNGs a killed worker on this machine left half-written
        self.job = job
        self.predictor = job.options.load()
        limit_threads(threads)

    def __call__(self, batch: dict) -> dict[str, list]:
        rows = [
            self.job.run_range(self.predictor, FrameRange(int(first), int(count)))
            for first, count in zip(batch["first"], batch["count"])
        ]
        return {key: [r[key] for r in rows] for key in rows[0]}


def job_for_workers(job: VideoJob) -> VideoJob:
    """``job`` with its source's local files, its output prefix and its model's files as absolute paths: Ray's workers
    run in the folder Ray started in (a cluster's, or one started elsewhere in this process), not the caller's."""
    return replace(
        job,
        source=job.source.for_workers(),
        prefix=absolute_for_workers(job.prefix),
        options=options_for_workers(job.options),
    )


def written_unreported(
    prefix: str | Path, frames: FrameRange, before: dict[str, tuple[int, int]], now: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """The row of a range whose report never came back (Ctrl-C while workers wrote on), as
    :meth:`VideoJob.run_range` gives it, from the PNGs on disk.

    Args:
        prefix: the PNGs' ``--output-prefix``.
        frames: the range.
        before, now: :func:`~rtstereo.sinks.video.numbered_pngs` before the run and after it; a PNG this run
            wrote was renamed into place (another file), so an earlier run's PNG of the same number is not
            taken for it.

    Returns:
        The row: ``done`` when every frame's PNG is this run's, else ``interrupted``; its ``wall_s`` is lost (0).
    """
    name = Path(prefix).name
    numbers = range(frames.first, frames.first + frames.count)
    written = sum(1 for n in numbers if (png := f"{name}_{n:05d}.png") in now and now[png] != before.get(png))
    complete = written == frames.count
    error = "" if complete else f"interrupted with {written} of {counted(frames.count, 'frame')} written"
    row = {**asdict(frames), "written": written, "status": DONE if complete else INTERRUPTED, "error": error}
    return {**row, "wall_s": 0.0}


def run_ray_video(
    job: VideoJob,
    total_frames: int,
    *,
    workers: int | None = None,
    address: str | None = None,
    progress: bool = False,
    on_range: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[dict[str, Any]], float, bool]:
    """Predict every frame of a video on Ray, in ranges.

    Args:
        job: what each range does; its relative paths are taken from the current folder (:func:`job_for_workers`).
        total_frames: frames to use (after ``--start``, ``--stride`` and ``--max-frames``).
        workers: actors (default: one per 2 CPUs, or one per GPU).
        address: the Ray cluster (default: ``$RAY_ADDRESS``, else a local Ray).
        progress: a progress bar in frames (frames/s) on stderr.
        on_range: called with each range's row as it finishes.

    Returns:
        ``(rows, wall_s, interrupted)``: one row per range (``first``, ``count``, ``written``, ``status``,
        ``error``, ``wall_s``) in frame order, the run's wall time, and whether Ctrl-C stopped it. After
        Ctrl-C the ranges whose reports had not come back are counted from the PNGs the workers wrote
        (:func:`written_unreported`): ``done`` when all are there, else ``interrupted``.

    Raises:
        InputError: no frames.
        EngineError: Ray cannot be reached, or the pipeline broke down.
    """
    from ..progress import progress_bar

    if total_frames < 1:
        raise InputError("the video gives no frames to process (check --start, --stride and --max-frames)")
    started = time.perf_counter()
    job = job_for_workers(job)
    use_gpu = needs_gpu(job.options, job.options.load())  # a model that cannot load fails here, before Ray starts
    rows: list[dict[str, Any]] = []
    before = numbered_pngs(job.prefix)
    interrupted = False
    bar, complete = None, False
    try:
        with ray_session(address) as ray:
            size = cluster_pool(ray, workers, use_gpu)
            ranges = split_frames(total_frames, size.workers * RANGES_PER_WORKER)
            size = cluster_pool(ray, workers, use_gpu, items=len(ranges))
            with remote_args_allowed():
                dataset = item_tries(
                    ray.data.from_items([asdict(r) for r in ranges], override_num_blocks=len(ranges)).map_batches(
                        RangeActor,
                        fn_constructor_kwargs={"job": job, "threads": size.threads},
                        batch_size=1,
                        compute=actor_pool(ray, size.workers),
                        num_cpus=size.cpus,
                        num_gpus=size.gpus,
                        **retries_args(actors=True),
                    )
                )
            bar = progress_bar(
                total=total_frames, desc="video (ray)", unit="frame", file=sys.stderr, disable=not progress
            )
            said: set[str] = set()
            try:
                with gathering(lambda: f"{len(rows)} of {len(ranges)} frame ranges") as ended:
                    with terminate_as_interrupt():  # Ray's own SIGTERM handler exits at once, without the count
                        for row in dataset.iter_rows():
                            row = {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
                            reissue_warnings(row.pop("warnings", None), said)
                            row["damaged_frames"] = json.loads(row.get("damaged_frames") or "[]")
                            rows.append(row)
                            bar.update(row["count"])
                            if on_range is not None:
                                on_range(row)
                        # Every row came back: a range missing is one whose worker died on each try.
                        reported, now = {row["first"] for row in rows}, numbered_pngs(job.prefix)
                        for frames in ranges:
                            if frames.first not in reported:
                                row = written_unreported(job.prefix, frames, before, now)
                                if row["status"] != DONE:
                                    written = f"{row['written']} of {counted(frames.count, 'frame')} written"
                                    row.update(status=FAILED, error=f"{worker_died('frame range')}; {written}")
                                rows.append(row)
                                bar.update(row["count"])
                                if on_range is not None:
                                    on_range(row)
                    complete = True
                interrupted = ended.interrupted
            finally:
                bar.close()
                remove_stale_partials(Path(job.prefix).parent)  # a worker killed mid-write never removed its file
    except KeyboardInterrupt:
        if bar is None:  # Ray starting: nothing gathered yet
            raise
        # Ctrl-C while Ray shut down (seconds, after the bar reached its end): a video whose every range came back
        # is complete, not interrupted.
        interrupted = interrupted or not complete
    if interrupted:
        # Workers go on writing while their reports wait in Ray's queues: the frames written count as written.
        reported = {row["first"] for row in rows}
        now = numbered_pngs(job.prefix)
        rows += [written_unreported(job.prefix, r, before, now) for r in ranges if r.first not in reported]
    rows.sort(key=lambda r: r["first"])
    return rows, time.perf_counter() - started, interrupted
