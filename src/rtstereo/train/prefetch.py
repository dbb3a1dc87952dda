"""Batches made one step ahead, in a background thread, while the current step trains.

Rendering and augmenting batch ``s + 1`` overlaps step ``s``: on a GPU the thread issues its work on
a side CUDA stream, so it runs beside the training kernels instead of queueing behind them; on a CPU
the renderer and the step compete for the same cores, and by default batches are made ahead on GPUs
only (:func:`prefetch_wanted`). Batch ``s`` is still a function of ``s`` alone: the thread only changes
when it is made, never what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ..pools import wait_through_interrupts

Batch = dict[str, torch.Tensor]


def prefetch_wanted(setting: bool | None, device: torch.device, world_size: int = 1) -> bool:
    """Whether a run makes its batches ahead: ``setting`` when it is given, else on CUDA devices and in
    data-parallel runs (``world_size`` > 1), not in a single process on a CPU.

    On a CPU the background batch and the step share the cores, and the renderer, which renders the
    parts of a batch on threads of their own at one torch thread each, lowers torch's thread count for
    the whole process while it runs (it is process-wide), so the step runs on one thread meanwhile. On
    this project's 2-core CPU the whole loop ran at 13.6 pairs/s with batches made ahead against 15.5
    without at 160x320, 6.04 against 6.36 at 256x512 (batch 8, 2 threads; medians of 6 and 4 alternated
    runs, ``benchmarks/train_prefetch_ab.py``, session 17). A data-parallel CPU run keeps the thread: without
    it, a process of a two-process ``torchrun`` run aborted ("terminate called without an active exception")
    in 1 to 3 runs of 10 under pytest, with it in none of 14 (session 17); the thread only made the abort rarer,
    whose cause was gloo's worker thread releasing the last sum's tensor as Python finalized (fixed in
    :func:`~rtstereo.train.distributed.all_ranks_sum`).

    Examples:
        >>> cpu = torch.device("cpu")
        >>> prefetch_wanted(None, cpu), prefetch_wanted(True, cpu), prefetch_wanted(None, cpu, world_size=2)
        (False, True, True)
    """
    if setting is not None:
        return setting
    return device.type == "cuda" or world_size > 1


class Prefetcher:
    """``prefetcher(step)`` returns ``make(step)``, having started ``make(step + 1)`` in the background.

    An exception raised while making a batch (also ``KeyboardInterrupt``) is raised by the call that
    asks for that batch, as it would be without prefetching. Use as a context manager, or call
    :meth:`close`.

    Args:
        make: the batch of a step (e.g. a training stream); called from one background thread.
        last_step: no batch after this step is made (``None``: no limit).
        device: the device the batches live on (a CUDA device gets a side stream).
    """

    def __init__(self, make: Callable[[int], Batch], last_step: int | None = None, device: torch.device | None = None):
        self.make, self.last_step = make, last_step
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rtstereo-prefetch")
        self.pending: tuple[int, Future] | None = None
        self.submitted: list[Future] = []  # the batches handed to the thread and not known to be done
        cuda = device is not None and device.type == "cuda"
        self.side_stream = torch.cuda.Stream(device) if cuda else None
        self.threads = torch.get_num_threads()

    def __call__(self, step: int) -> Batch:
        if self.pending is not None and self.pending[0] == step:
            future = self.pending[1]
        else:  # the first call, or out of order: make it now
            self._drop()
            future = self._submit(step)
        self.pending = None
        if self.last_step is None or step + 1 <= self.last_step:
            # Submitted before waiting, so that the thread starts on the next batch at once.
            self.pending = (step + 1, self._submit(step + 1))
        batch, ready = future.result()
        if ready is not None:  # the training stream must not read the batch before the side stream wrote it
            current = torch.cuda.current_stream(self.side_stream.device)
            current.wait_event(ready)
            for value in batch.values():
                if isinstance(value, torch.Tensor) and value.is_cuda:
                    value.record_stream(current)  # the allocator must not reuse it while training reads it
        return batch

    def _submit(self, step: int) -> Future:
        future = self.pool.submit(self._make, step)
        self.submitted = [*(f for f in self.submitted if not f.done()), future]
        return future

    def _make(self, step: int) -> tuple[Batch, torch.cuda.Event | None]:
        torch.set_num_threads(self.threads)  # a new thread starts with torch's default, not the run's
        if self.side_stream is None:
            return self.make(step), None
        torch.cuda.set_device(self.side_stream.device)  # the current GPU is a per-thread setting
        with torch.cuda.stream(self.side_stream):
            batch = self.make(step)
            ready = torch.cuda.Event()
            ready.record(self.side_stream)
        return batch, ready

    def _drop(self) -> None:
        if self.pending is not None:
            self.pending[1].cancel()
            try:
                self.pending[1].result()
            except BaseException:  # noqa: B036 - a batch nobody asked for; its failure is no one's
                pass
            self.pending = None

    def close(self) -> None:
        """Wait for the batch being made and stop the thread.

        A batch not begun is not made. The wait goes on through Ctrl-C, which is raised once the batch is done
        (:func:`~rtstereo.pools.wait_through_interrupts`): the pool's own join, cut short by a second Ctrl-C after
        the first stopped a step that waited for its batch, let the process end with the thread still in torch.
        """
        futures, self.submitted, self.pending = self.submitted, [], None
        wait_through_interrupts(futures, self.pool)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
