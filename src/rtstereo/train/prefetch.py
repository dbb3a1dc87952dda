"""Batches made one step ahead, in a background thread, while the current step trains.

Rendering and augmenting batch ``s + 1`` overlaps step ``s``: on a GPU the thread issues its work on
a side CUDA stream, so it runs beside the training kernels instead of queueing behind them; on a CPU
the renderer's many small operations (Python-bound, the GIL released inside each) fill the gaps of
the training step's large ones. Batch ``s`` is still a function of ``s`` alone: the thread only
changes when it is made, never what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

Batch = dict[str, torch.Tensor]


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
        cuda = device is not None and device.type == "cuda"
        self.side_stream = torch.cuda.Stream(device) if cuda else None
        self.threads = torch.get_num_threads()

    def __call__(self, step: int) -> Batch:
        if self.pending is not None and self.pending[0] == step:
            future = self.pending[1]
        else:  # the first call, or out of order: make it now
            self._drop()
            future = self.pool.submit(self._make, step)
        self.pending = None
        if self.last_step is None or step + 1 <= self.last_step:
            # Submitted before waiting, so that the thread starts on the next batch at once.
            self.pending = (step + 1, self.pool.submit(self._make, step + 1))
        batch, ready = future.result()
        if ready is not None:  # the training stream must not read the batch before the side stream wrote it
            current = torch.cuda.current_stream(self.side_stream.device)
            current.wait_event(ready)
            for value in batch.values():
                if isinstance(value, torch.Tensor) and value.is_cuda:
                    value.record_stream(current)  # the allocator must not reuse it while training reads it
        return batch

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
        """Wait for the batch being made and stop the thread."""
        self._drop()
        self.pool.shutdown(wait=True)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
