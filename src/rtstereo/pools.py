"""Thread pools whose workers run in torch or OpenCV, awaited also when Ctrl-C comes again.

A pool's own wait (``with ThreadPoolExecutor(...)``, ``shutdown(wait=True)``) joins its threads, and a join
that Ctrl-C cuts short marks the thread as ended while it runs on (Python 3.11's
``Thread._wait_for_tstate_lock``): a second Ctrl-C then let the process exit while a thread was still inside
torch or OpenCV, which asked for the GIL as Python was finalizing, and the process aborted ("terminate called
without an active exception"; ``rtstereo synth``, 1 of 8 runs). Futures can be waited for again; once each is
done, its thread has left the library.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
_POLL_S = 0.1  # how often a wait through interrupts looks again


def wait_through_interrupts(
    futures: Iterable[Future], pool: ThreadPoolExecutor | None = None, cancel: bool = True
) -> None:
    """Cancel the ``futures`` not begun and wait for the others, also when Ctrl-C comes meanwhile, then raise its
    interrupt.

    Args:
        futures: the work handed to the pool.
        pool: a pool of the caller's own, shut down without a join (its threads end by themselves); ``None`` for
            a pool shared between calls, which is left running.
        cancel: ``False``: the work not begun is not cancelled but waited for too (its result is wanted).
    """
    futures = list(futures)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=cancel)
    for future in futures if cancel else ():
        future.cancel()  # a no-op for work begun or done
    # A future cancelled in the pool's queue is never picked up, and ``wait`` counts it as done only once a worker
    # has: waited for, it hung for good (a Ctrl-C with more work than threads).
    futures = [future for future in futures if not future.cancelled()]
    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            wait(futures)
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
    if interrupted is not None:
        raise interrupted


def map_through_interrupts(
    pool: ThreadPoolExecutor, work: Callable[[Any], T], items: Iterable[Any], *, own_pool: bool = True
) -> list[T]:
    """``[work(item) for item in items]`` on the ``pool``'s threads; on an error or Ctrl-C, the work begun is
    awaited (:func:`wait_through_interrupts`) before it is raised.

    Args:
        pool: where the work runs; shut down at the end when ``own_pool`` (use it for this call only), else
            left running for later calls.

    Examples:
        >>> map_through_interrupts(ThreadPoolExecutor(2), lambda x: x * x, [1, 2, 3])
        [1, 4, 9]
    """
    futures: list[Future] = []
    try:
        for item in items:
            futures.append(pool.submit(work, item))
        return [future.result() for future in futures]
    finally:
        wait_through_interrupts(futures, pool if own_pool else None)


def wait_for_event_through_interrupts(
    event: threading.Event, said_after_s: float | None = None, say: Callable[[], None] | None = None
) -> None:
    """Wait until ``event`` is set (by a thread as it leaves its work), also when Ctrl-C comes meanwhile, then raise
    its interrupt.

    An event, not ``Thread.join``: a join that Ctrl-C cuts short can mark the thread as ended while it runs on (see
    the module's docstring).

    Args:
        event: set by the thread awaited.
        said_after_s, say: ``say()`` is called once when the event is not set after ``said_after_s`` seconds, or at
            a Ctrl-C before (what the wait is for, and what it gives up).

    Examples:
        >>> done = threading.Event()
        >>> wait_for_event_through_interrupts(done, 0.0, done.set)
        >>> done.is_set()
        True
    """
    deadline = None if said_after_s is None else time.monotonic() + said_after_s
    interrupted: KeyboardInterrupt | None = None
    while not event.is_set():
        try:
            if say is not None and (interrupted is not None or (deadline is not None and time.monotonic() >= deadline)):
                said, say = say, None
                said()
            event.wait(_POLL_S)
        except KeyboardInterrupt as exc:
            interrupted = exc
    if interrupted is not None:
        raise interrupted
