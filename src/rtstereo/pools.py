"""Thread pools whose workers run in torch or OpenCV, awaited also when Ctrl-C comes again.

A pool's own wait (``with ThreadPoolExecutor(...)``, ``shutdown(wait=True)``) joins its threads, and a join
that Ctrl-C cuts short marks the thread as ended while it runs on (Python 3.11's
``Thread._wait_for_tstate_lock``): a second Ctrl-C then let the process exit while a thread was still inside
torch or OpenCV, which asked for the GIL as Python was finalizing, and the process aborted ("terminate called
without an active exception"; ``rtstereo synth``, 1 of 8 runs). Futures can be waited for again; once each is
done, its thread has left the library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")


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
