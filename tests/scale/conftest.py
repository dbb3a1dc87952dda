"""One local Ray session (2 CPUs) shared by the Ray tests: starting Ray takes seconds."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray with 2 CPUs; the engine reuses it instead of starting its own."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def interrupted_in_rays_queue(self):
    """As Ray's row iterator does when Ctrl-C comes while it waits on its result queue."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise RuntimeError("release unlocked lock") from None


def ctrl_c_after_two_reports(monkeypatch, ray) -> None:
    """Ctrl-C while reports wait in Ray's queues: Ray Data's row iterator waits until the workers have done every
    item (and written its files), hands over two of their reports, then raises ``KeyboardInterrupt``."""
    original = ray.data.Dataset.iter_rows

    def interrupted(self):
        rows = list(original(self))
        yield from rows[:2]
        raise KeyboardInterrupt

    monkeypatch.setattr(ray.data.Dataset, "iter_rows", interrupted)


def ctrl_c_at_shutdown(monkeypatch, engine) -> None:
    """Ctrl-C while Ray shuts down after the last item: ``engine``'s ``ray_session`` (the module of a verb's Ray
    engine) raises ``KeyboardInterrupt`` once its session has ended."""
    session = engine.ray_session

    @contextlib.contextmanager
    def interrupted_at_shutdown(address=None):
        with session(address) as ray:
            yield ray
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "ray_session", interrupted_at_shutdown)


@contextlib.contextmanager
def printed_warnings():
    """Warnings printed on stderr as on the command line (pytest records them instead), once per location."""

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def alarm_after(seconds: int):
    """A run that would never end (Ray retrying a task without end) fails after ``seconds``, instead of hanging."""
    import signal

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
