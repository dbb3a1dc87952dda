"""Starting or joining Ray, and sizing the actor pool to the cluster.

Sizing: with ``N`` workers on ``C`` CPUs each actor runs ``C // N`` threads (actors x threads = cores),
and reserves three quarters of its share of CPUs in Ray's books, so the reading and decoding tasks
(:data:`DECODE_CPUS` each) always find room beside a full actor pool; Ray needs fractions below one
or whole numbers, hence the rounding down. With ``--device cuda`` each actor takes one GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import math
import os
import re
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..batch.job import first_line
from ..errors import SHOWN_WARNINGS, EngineError, InputError, RtStereoError, require, warn
from ..io.atomic import interruption_cause
from ..io.download import is_url
from ..io.quiet import native_lines_dropped

DECODE_CPUS = 0.25
ACTOR_CPU_SHARE = 0.75
CPUS_PER_DEFAULT_WORKER = 2
REACH_TIMEOUT_S = 10.0
# A line of Ray's C++ core below fatal, as its driver writes it on stderr besides its log file in Ray's session folder
# (python-core-driver-*.log): "[2026-12-06 13:11:15,472 E 26819 26819] core_worker.cc:2465: Actor with class ...".
RAY_NATIVE_LOG_LINE = re.compile(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWE] \d+ \d+\] \S+:\d+: ")
# Ray retries a task whose worker died (out of memory, a crash) without end by default: one pair that kills its
# worker every time held the whole run, restarting workers forever. It is tried this many times, then failed alone.
WORKER_TRIES = 3


def require_ray():
    """Import ``ray`` and ``ray.data``, or raise an error naming ``pip install 'rtstereo[scale]'``."""
    ray = require("ray", "scale", "--engine ray (Ray Data)")
    require("ray.data", "scale", "--engine ray (Ray Data)")
    return ray


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether Ctrl-C is behind ``exc``: Ray's row iterator, interrupted inside a lock of its result queue,
    can raise ``RuntimeError: release unlocked lock`` while it handles the ``KeyboardInterrupt``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def pipeline_stopped(exc: BaseException, progress: str, advice: str = "") -> EngineError:
    """The error that reports Ray's own failure ``exc`` (a worker died, a node was lost).

    Args:
        exc: what the row iterator raised.
        progress: how far the pipeline came (``"3 of 10 scenes"``).
        advice: what to do next, after a ``;`` (empty: nothing added).

    Examples:
        >>> str(pipeline_stopped(RuntimeError("a node was lost"), "0 of 2 scenes"))
        'the Ray pipeline stopped after 0 of 2 scenes: a node was lost'
    """
    first = first_line(exc) or type(exc).__name__
    return EngineError(f"the Ray pipeline stopped after {progress}: {first}" + (f"; {advice}" if advice else ""))


@dataclass
class Gathering:
    """How the gathering of a Ray pipeline's rows ended (:func:`gathering`): ``interrupted`` by Ctrl-C or SIGTERM
    (or by Ray's own error around one), and what raised it when known (``interrupted_by``)."""

    interrupted: bool = False
    interrupted_by: str | None = None


@contextlib.contextmanager
def gathering(progress: Callable[[], str], advice: str = "") -> Iterator[Gathering]:
    """The rows of a Ray pipeline gathered inside, as ``predict``, ``eval`` and ``video`` end it alike: an rtstereo
    error passes; Ctrl-C (a ``KeyboardInterrupt``, or Ray's own error around one: :func:`caused_by_interrupt`) ends
    it as interrupted, with what was gathered kept; any other error of Ray's (a worker died, a node was lost) is
    raised as :func:`pipeline_stopped`, after ``progress()`` rows (with ``advice``).

    Examples:
        >>> with gathering(lambda: "1 of 2 pairs") as ended:
        ...     raise KeyboardInterrupt
        >>> ended.interrupted
        True
    """
    ended = Gathering()
    try:
        yield ended
    except RtStereoError:
        raise
    except KeyboardInterrupt as exc:
        ended.interrupted, ended.interrupted_by = True, interruption_cause(exc)
    except Exception as exc:  # noqa: BLE001 - Ray's own failures (a worker died, a node was lost)
        if not caused_by_interrupt(exc):
            raise pipeline_stopped(exc, progress(), advice) from exc
        ended.interrupted = True


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator:
    """Ray, ready to run datasets: the session already open in this process, or one started here.

    Args:
        address: the cluster to join (``ray://head:10001``, ``auto``); ``None`` reads ``$RAY_ADDRESS``,
            else starts a local Ray on this machine. A session this function starts is shut down at the end.

    Yields:
        The ``ray`` module.

    Raises:
        MissingDependencyError: Ray is not installed.
        EngineError: Ray cannot be started or the cluster cannot be reached.
    """
    ray = require_ray()
    if os.environ.get("RAY_LOG_TO_STDERR") == "1":  # asked for on stderr: there, and in no log file
        with _ray_session(ray, address) as session:
            yield session
        return
    # On the command line, Ray's C++ lines stay in Ray's log files: its driver printed its own notices on stderr
    # too, marked as errors ("core_worker.cc: Actor ... has constructor arguments in the object store"), even with -q.
    # Ray's real failures reach rtstereo as exceptions, and are said in one line.
    with native_lines_dropped(RAY_NATIVE_LOG_LINE), _ray_session(ray, address) as session:
        yield session


@contextlib.contextmanager
def _ray_session(ray, address: str | None) -> Iterator:
    started = False
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or None
        _check_reachable(target)
        try:
            ray.init(address=target, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"the Ray cluster at {target}" if target else "a local Ray"
            first = first_line(exc) or type(exc).__name__
            raise EngineError(f"cannot start or reach {where}: {first} (check --ray-address / $RAY_ADDRESS)") from None
        started = True
    _quiet_ray_data(ray)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def refuse_unreachable(address: str | None) -> None:
    """Refuse the cluster ``--ray-address`` (else ``$RAY_ADDRESS``) names when nothing answers at its port, as
    :func:`ray_session` would, but before a command makes its output folder or loads a model. A Ray session
    already open in this process is the one used, whatever the address: then nothing is checked.

    Raises:
        EngineError: nothing accepts a connection at the address's host and port.

    Examples:
        >>> refuse_unreachable("auto")
    """
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        return
    _check_reachable(address or os.environ.get("RAY_ADDRESS") or None)


def _check_reachable(target: str | None, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Refuse a cluster address whose port does not answer, before Ray tries it.

    ``ray.init`` keeps retrying an address where nothing listens, printing a warning every few
    seconds, for many minutes, and Ctrl-C does not stop it; one TCP connection says the same at once.
    ``auto``, ``local`` and addresses without a port are left to Ray.

    Raises:
        EngineError: nothing accepts a connection at the address's host and port within ``timeout_s``.

    Examples:
        >>> _check_reachable(None), _check_reachable("auto"), _check_reachable("head:²")  # "²": Ray's to refuse
        (None, None, None)
    """
    if not target:
        return
    hostport = target.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()):  # "²" is a digit int() refuses
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise EngineError(
            f"cannot reach the Ray cluster at {target}: nothing answers at {host}:{port} ({reason}) "
            "(check --ray-address / $RAY_ADDRESS, and that the cluster is up: ray status)"
        ) from None


def _quiet_ray_data(ray) -> None:
    """Our own progress bar and failure lines replace Ray Data's bars, execution notices and errors (an item whose
    worker died is reported as failed, a pipeline that stopped as an :class:`~rtstereo.errors.EngineError`)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)


def item_tries(dataset):
    """``dataset``, set so that an item (a pair, a scene, a frame range) whose worker died on each of its
    :data:`WORKER_TRIES` tries is dropped from the results, for the driver to report as failed, instead of stopping
    the run (Ray Data's ``max_errored_blocks``; each item is a block of its own). Its tasks must be started with
    :func:`retries_args`."""
    dataset.context.max_errored_blocks = -1
    return dataset


def retries_args(actors: bool) -> dict[str, int]:
    """The Ray options that try a task :data:`WORKER_TRIES` times when its worker dies: an actor's (restarted each
    time), or a task's. Give them inside :func:`remote_args_allowed`.

    Examples:
        >>> retries_args(actors=True), retries_args(actors=False)
        ({'max_task_retries': 2}, {'max_retries': 2})
    """
    return {"max_task_retries" if actors else "max_retries": WORKER_TRIES - 1}


@contextlib.contextmanager
def remote_args_allowed() -> Iterator[None]:
    """Build a dataset with :func:`retries_args`: Ray Data has no named parameter for them, and warns that the
    ``**ray_remote_args`` that take them are deprecated (a warning the user can do nothing about)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        yield


def actor_pool(ray, workers: int):
    """Ray Data's pool of ``workers`` actors, each given one item at a time.

    Ray queued several items on each actor (``max_tasks_in_flight_per_actor``, 4 by default): when one item killed
    its worker, the items queued behind it died with it on each of its :data:`WORKER_TRIES` tries, and failed as if
    they had killed it too. One item in flight per actor makes a worker's death the failure of its own item only.
    """
    return ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1)


def worker_died(item: str) -> str:
    """The error of an item no result came back for: its worker died on each try (:func:`item_tries`).

    Examples:
        >>> worker_died("pair")
        'no result: the Ray worker given this pair died on each of its 3 tries (out of memory, or a crash)'
    """
    tries = f"{WORKER_TRIES} tries"
    return f"no result: the Ray worker given this {item} died on each of its {tries} (out of memory, or a crash)"


def needs_gpu(options, predictor) -> bool:
    """Whether each worker takes a GPU: ``--device cuda`` for a network. A classical method (SGBM) runs on the CPU
    whatever the device (one process warns so, and runs): its workers were refused on a cluster without GPUs, and
    took one GPU each on a cluster with them, as many workers as GPUs instead of one per 2 CPUs.

    Args:
        options: the :class:`~rtstereo.batch.job.PredictorOptions` the workers build.
        predictor: what ``options.load()`` gave on the driver.

    Raises:
        InputError: ``cuda:N`` with N >= 1: Ray shows each worker only the GPU it gave it (``CUDA_VISIBLE_DEVICES``),
            as ``cuda:0``, so every worker failed to load the model on a GPU it cannot see.
    """
    use_gpu = options.uses_gpu and getattr(getattr(predictor, "spec", None), "kind", None) != "classical"
    _, _, index = options.device.partition(":")
    if use_gpu and index and int(index) > 0:
        raise InputError(
            f"--device {options.device} with --engine ray: Ray chooses each worker's GPU and shows it that one only, "
            "as cuda:0; give --device cuda (device='cuda' in PredictorOptions)"
        )
    return use_gpu


@dataclass(frozen=True)
class PoolSize:
    """How many actors, and what each one reserves and runs.

    Attributes:
        workers: actors in the pool.
        threads: CPU threads each actor's model runs with.
        cpus: CPUs each actor reserves in Ray's books.
        gpus: GPUs each actor reserves (0 on CPU).
    """

    workers: int
    threads: int
    cpus: float
    gpus: float


def cluster_pool(ray: Any, workers: int | None, use_gpu: bool, items: int | None = None) -> PoolSize:
    """:func:`pool_size` on the connected cluster's resources; with ``items``, no more actors than items (fewer, with
    more threads each: no idle actors)."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1), resources.get("GPU", 0)
    size = pool_size(cpus, gpus, workers, use_gpu)
    if items is not None and size.workers > items:
        size = pool_size(cpus, gpus, items, use_gpu)
    return size


def absolute_for_workers(path: Any) -> Any:
    """A local path (file, folder, glob) as an absolute one, of the same type; a URL or ``None`` as it is.

    Ray's workers run in the folder Ray was started in, which need not be the caller's: with a Ray started elsewhere
    (``ray.init()`` in another folder, a cluster), a relative path was looked for, and written, in the wrong folder.

    Examples:
        >>> absolute_for_workers("https://x/l.png"), absolute_for_workers(None), absolute_for_workers("/d/*.png")
        ('https://x/l.png', None, '/d/*.png')
    """
    if not isinstance(path, (str, os.PathLike)) or is_url(str(path)):
        return path
    local = os.path.abspath(os.path.expanduser(os.fspath(path)))
    return type(path)(local) if isinstance(path, os.PathLike) else local


def options_for_workers(options: Any) -> Any:
    """Predictor options whose model and weights, where they name local files, are absolute paths
    (:func:`absolute_for_workers`); a registry name (``default``, ``sgbm``) stays as it is."""

    def local_file(value: Any) -> Any:
        exists = isinstance(value, (str, os.PathLike)) and os.path.exists(os.path.expanduser(os.fspath(value)))
        return absolute_for_workers(value) if exists else value

    return dataclasses.replace(options, model=local_file(options.model), weights=local_file(options.weights))


def pool_size(cluster_cpus: float, cluster_gpus: float, workers: int | None, use_gpu: bool) -> PoolSize:
    """Size the actor pool: threads per actor so that actors x threads = cores.

    Args:
        cluster_cpus: CPUs of the Ray cluster (``ray.cluster_resources()["CPU"]``).
        cluster_gpus: GPUs of the cluster.
        workers: asked for (``--workers``); ``None``: one per 2 CPUs, or one per GPU.
        use_gpu: each actor needs a GPU (``--device cuda``).

    Raises:
        InputError: a GPU run on a cluster without GPUs, or with more than 100 workers per GPU; more than 75
            workers per CPU.

    Examples:
        >>> pool_size(2, 0, 2, False)
        PoolSize(workers=2, threads=1, cpus=0.75, gpus=0)
        >>> pool_size(32, 0, None, False)
        PoolSize(workers=16, threads=2, cpus=1, gpus=0)
    """
    cpus = max(float(cluster_cpus), 1.0)
    if use_gpu:
        if cluster_gpus < 1:
            raise InputError("--device cuda with --engine ray: the Ray cluster has no GPU (ray status lists them)")
        workers = workers or int(cluster_gpus)
        # Rounded down: 6 actors of round(1 / 6, 2) = 0.17 GPU ask for 1.02 GPUs, and Ray never places the last.
        gpus: float = 1 if workers <= cluster_gpus else math.floor(100 * cluster_gpus / workers) / 100
        if gpus == 0:  # Ray would start them with no GPU at all
            raise InputError(
                f"--workers {workers} with --device cuda: the Ray cluster's {cluster_gpus:g} GPU(s) take at most "
                f"{math.floor(100 * cluster_gpus)} workers (a hundredth of a GPU each)"
            )
    else:
        workers = workers or max(1, int(cpus) // CPUS_PER_DEFAULT_WORKER)
        gpus = 0
    share = cpus / workers
    wanted = share * ACTOR_CPU_SHARE
    # Rounded down too: 200 actors of round(0.0075, 2) = 0.01 CPU on 2 CPUs reserved both, and the decoding tasks
    # never found room (the run hung); 400 reserved round(0.00375, 2) = 0, and Ray placed them all at once.
    actor_cpus: float = math.floor(wanted) if wanted >= 1 else math.floor(100 * wanted + 1e-9) / 100
    if actor_cpus == 0:
        raise InputError(
            f"--workers {workers}: the Ray cluster's {cpus:g} CPU(s) take at most "
            f"{math.floor(100 * ACTOR_CPU_SHARE * cpus + 1e-9)} workers (a hundredth of a CPU each, "
            f"a quarter of the CPUs left to reading the images)"
        )
    return PoolSize(workers=workers, threads=max(1, int(share)), cpus=actor_cpus, gpus=gpus)


@contextlib.contextmanager
def worker_warnings() -> Iterator[list[list[str]]]:
    """Record what a Ray worker's model warns about, for the driver to say (:func:`reissue_warnings`).

    A worker's Python warnings (a fixed-size network's resized input, a calibration scaled, a lower-resolution
    pass for the memory budget) stayed in the worker: ``eval`` and ``video`` with ``--engine ray`` resized
    without a word, where one process says so.

    Yields:
        A list that holds ``[category module, category name, message]`` of each warning once the block ends.
    """
    found: list[list[str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield found
        finally:
            found.extend([w.category.__module__, w.category.__qualname__, str(w.message)] for w in caught)


def reissue_warnings(recorded: str | list | None, seen: set[str]) -> None:
    """Say on the driver, once per message, the warnings a worker recorded (:func:`worker_warnings`, as JSON text
    or a list), each in its own category when that can be imported; one the command line has printed already
    (the driver's own, on the first frame) is not said again.

    Examples:
        >>> import warnings
        >>> seen = set()
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     reissue_warnings('[["builtins", "UserWarning", "resized"]]', seen)
        ...     reissue_warnings('[["builtins", "UserWarning", "resized"]]', seen)
        >>> [str(w.message) for w in caught]
        ['resized']
    """
    entries = json.loads(recorded) if isinstance(recorded, str) else list(recorded or [])
    for module, name, message in entries:
        if message in seen or message in SHOWN_WARNINGS:
            continue
        seen.add(message)
        warn(message, _warning_category(module, name))


def _warning_category(module: str, name: str) -> type[Warning]:
    try:
        category = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return UserWarning
    return category if isinstance(category, type) and issubclass(category, Warning) else UserWarning
