"""Counting the tensor operations a piece of code launches (``torch.profiler``).

A GPU pays a launch for every tensor operation, whatever its size, so code on a hot path (the scene
renderer, cost volumes) must issue a number of operations that does not grow with the batch size or
the scene content. :func:`count_operations` measures it on any device, the CPU included.

Examples:
    >>> import torch
    >>> count = count_operations(lambda: torch.ones(4).mul(2).add(1))
    >>> count.launched
    3
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

# Operations that only make a new view of existing memory or read metadata: no kernel is launched.
VIEW_OPERATIONS = frozenset(
    "aten::" + name
    for name in (
        "alias as_strided broadcast_tensors chunk contiguous detach detach_ expand expand_as flatten lift_fresh "
        "narrow numpy_T permute reshape resolve_conj resolve_neg result_type select size slice split squeeze t "
        "transpose unbind unflatten unsqueeze view view_as _unsafe_view _reshape_alias"
    ).split()
)


@dataclass(frozen=True)
class OperationCount:
    """Top-level tensor operations of one call (operations that other operations call are not counted).

    Attributes:
        total: every top-level ``aten::`` operation.
        launched: those that compute something (``total`` less views and metadata reads).
        by_name: ``{"aten::mul": 12, ...}`` over ``total``.
    """

    total: int
    launched: int
    by_name: dict[str, int]


def count_operations(fn: Callable[[], object]) -> OperationCount:
    """Run ``fn()`` once under ``torch.profiler`` and count the tensor operations it issued.

    Only operations called from Python (or from non-tensor code) count: an ``aten::`` event whose
    parent is another ``aten::`` event is part of that operation.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    names = [
        event.name
        for event in prof.events()
        if event.name.startswith("aten::")
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    ]
    by_name = Counter(names)
    launched = sum(count for name, count in by_name.items() if name not in VIEW_OPERATIONS)
    return OperationCount(total=len(names), launched=launched, by_name=dict(by_name))
