"""Data-parallel training under PyTorch's own launcher (``torchrun --nproc_per_node N -m rtstereo train``).

``torchrun`` starts one process per rank and tells each its place through environment variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). A run with a world of
one (a plain ``rtstereo train``) never touches ``torch.distributed``.

Each rank renders its own scenes (batch ``step * world_size + rank`` of the run's stream, see
:func:`global_batch_index`), so the global batch is ``world_size * batch_size`` distinct pairs;
gradients are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`. Only rank 0 writes
the log, the learning curve and the checkpoints, and only rank 0 validates.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..text import first_line

# What a rank's collective raises when another rank's process ended: gloo's "Connection closed by peer" (or reset),
# NCCL's aborted communicator.
PEER_LOST = ("closed by peer", "reset by peer", "communicator was aborted", "Broken pipe")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a data-parallel run.

    Attributes:
        rank: this process's number, 0 .. ``world_size - 1``; rank 0 writes the files.
        world_size: number of processes training together.
        local_rank: this process's number on its machine (the GPU it uses).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """Whether gradients are shared with other processes."""
        return self.world_size > 1

    @property
    def writer(self) -> bool:
        """Whether this process writes logs, curves and checkpoints (rank 0)."""
        return self.rank == 0


def ranks_from_environment(environ: dict[str, str] | None = None) -> Ranks:
    """The ranks ``torchrun`` set in the environment (a world of one when it did not).

    Examples:
        >>> ranks_from_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
        Ranks(rank=1, world_size=2, local_rank=1)
        >>> ranks_from_environment({}).distributed
        False

    Raises:
        InputError: values that are not whole numbers, or a rank outside the world.
    """
    environ = dict(os.environ if environ is None else environ)
    try:
        world_size = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (torchrun sets them); got "
            f"{environ.get('RANK')!r}, {environ.get('WORLD_SIZE')!r}, {environ.get('LOCAL_RANK')!r}"
        ) from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise InputError(f"rank {rank} (local {local_rank}) does not fit a world of {world_size} processes")
    return Ranks(rank=rank, world_size=world_size, local_rank=local_rank)


def global_batch_index(step: int, ranks: Ranks) -> int:
    """Index in the run's stream of the batch that ``ranks.rank`` trains on at ``step``.

    With one process it is the step itself, so a single-process run sees the same batches as before
    data-parallel training existed; with ``N`` processes, step ``s`` trains on batches
    ``s * N .. s * N + N - 1``, one per rank. Resuming with another ``N`` therefore changes the data
    that follows (never the data already seen).

    Examples:
        >>> [global_batch_index(3, Ranks(r, 2, r)) for r in range(2)]
        [6, 7]
    """
    return step * ranks.world_size + ranks.rank


def training_device(name: str, ranks: Ranks, environ: dict[str, str] | None = None) -> str:
    """The device of this rank: ``cuda`` becomes ``cuda:LOCAL_RANK`` in a data-parallel run.

    Raises:
        InputError: ``cuda:N`` with more than one process on this machine (``LOCAL_RANK`` above 0, or torchrun's
            ``LOCAL_WORLD_SIZE`` above 1): they would all train on GPU N, which NCCL refuses ("Duplicate GPU").
    """
    environ = dict(os.environ if environ is None else environ)
    if ranks.distributed and name == "cuda":
        return f"cuda:{ranks.local_rank}"
    local_world = environ.get("LOCAL_WORLD_SIZE", "1")
    shared = ranks.local_rank > 0 or (local_world.isascii() and local_world.isdigit() and int(local_world) > 1)
    if ranks.distributed and name.startswith("cuda:") and shared:
        raise InputError(
            f"--device {name} in a data-parallel run of several processes on one machine: each would train on that "
            "one GPU; give --device cuda, and each process takes the GPU of its LOCAL_RANK"
        )
    return name


def start(ranks: Ranks, device: torch.device) -> None:
    """Join the process group of a data-parallel run (nothing to do in a world of one).

    The backend is NCCL on CUDA and gloo on CPUs; the rendezvous address comes from ``torchrun``.

    Raises:
        InputError: ``torch.distributed`` missing from this torch build, or not started by a launcher.
    """
    if not ranks.distributed:
        return
    import torch.distributed as dist

    if not dist.is_available():
        raise InputError("this torch build has no torch.distributed; data-parallel training needs it")
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise InputError(
            f"WORLD_SIZE is {ranks.world_size} but MASTER_ADDR/MASTER_PORT are not set: start data-parallel "
            "runs with `torchrun --nproc_per_node N -m rtstereo train ...`"
        )
    if dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=ranks.rank, world_size=ranks.world_size, device_id=device)
    else:
        dist.init_process_group("gloo", rank=ranks.rank, world_size=ranks.world_size)


def stop(ranks: Ranks) -> None:
    """Leave the process group, at the end of this rank's run (no barrier: a rank that failed would leave the
    others waiting for gloo's 30-minute timeout; each rank's last collective is complete when its run ends)."""
    if not ranks.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """``model`` wrapped for gradient averaging across ranks (itself in a world of one).

    The wrapper broadcasts rank 0's weights when it is built, so every rank starts alike even when
    only rank 0 could read a file.
    """
    if not ranks.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Channels-last 1x1 kernels have strides DDP's buckets call mismatched; for dimensions of size 1
    # a stride means nothing, and the copy it warns about is of those few small kernels only.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    device_ids = [device.index if device.index is not None else ranks.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_ranks_sum(values: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """``values`` summed over the ranks (in place; the tensor itself in a world of one).

    On CPUs it returns once gloo's worker thread has let go of ``values`` as well (see :func:`_let_go_by_gloo`).
    """
    if ranks.distributed:
        import torch.distributed as dist

        held = _use_count(values)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        if values.device.type == "cpu":
            _let_go_by_gloo(values, held)
    return values


# How long a rank waits for gloo's worker thread to drop a finished collective's tensors (it takes microseconds;
# the bound only keeps a torch that counts references otherwise from stopping the run).
GLOO_LET_GO_S = 5.0


def _use_count(values: torch.Tensor) -> int | None:
    """How many C++ references ``values`` has (torch's private ``Tensor._use_count``; ``None`` where it is absent)."""
    count = getattr(values, "_use_count", None)
    return count() if callable(count) else None


def _let_go_by_gloo(values: torch.Tensor, held: int | None) -> None:
    """Wait until gloo's worker thread no longer holds ``values`` (its references are ``held`` again).

    gloo's collective is complete for the caller before the worker thread that ran it has dropped the work, and
    with it the work's references to ``values``, whose Python object that drop releases, under the GIL. A rank's
    last collective is its loss's sum at the last step; a rank with nothing to validate or write (rank 1) then
    left at once, and when the worker thread ran late, it asked for the GIL while Python was finalizing: Python
    ended that thread (``pthread_exit``) inside torch's C++ destructor, and the process aborted ("terminate called
    without an active exception", exit code -6; torchrun then stopped rank 0), 2 runs of 24 of the two-process
    test on a loaded 2-core machine. Once the worker has let go, the tensor is Python's alone.
    """
    if held is None:
        return
    deadline = time.monotonic() + GLOO_LET_GO_S
    while (_use_count(values) or 0) > held and time.monotonic() < deadline:
        time.sleep(0.0002)


def rank_failure(exc: BaseException, ranks: Ranks) -> str:
    """One line naming this rank and why it stopped, for a data-parallel run that failed.

    Each rank printed a traceback of its own (the rank that raised, and each rank whose exchange of gradients lost it
    then, in gloo's or NCCL's words), one after the other under torchrun's report.

    Examples:
        >>> rank_failure(RuntimeError("boom"), Ranks(1, 2, 1))
        'rank 1 of 2 failed: RuntimeError: boom'
        >>> rank_failure(RuntimeError("[pair.cc:553] Connection closed by peer [::1]:22450. This is"), Ranks(0, 2, 0))
        'rank 0 of 2 stopped: another rank ended (Connection closed by peer [::1]:22450); its line says why'
    """
    reason = re.sub(r"^\[[^\]]*\] ", "", first_line(exc)).rstrip(".")  # gloo's "[.../pair.cc:553] " source place
    where = f"rank {ranks.rank} of {ranks.world_size}"
    if any(words in reason for words in PEER_LOST):
        # gloo adds "This is typically caused by a remote worker crashing. Check the logs of the remote worker ..."
        return f"{where} stopped: another rank ended ({reason.split('. ')[0]}); its line says why"
    return f"{where} failed: {type(exc).__name__}: {reason}" if reason else f"{where} failed: {type(exc).__name__}"
