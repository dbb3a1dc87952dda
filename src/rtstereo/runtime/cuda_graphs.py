"""CUDA graphs for a network that keeps one input shape (video, live, a folder of one camera's images).

A graph records every kernel of one forward once; a replay launches them all in one call, which
removes the per-operation launch cost that dominates small stereo networks on a fast GPU. The graph
holds fixed input and output buffers, so it serves one shape: :class:`GraphPolicy` decides when to
record (``on``: at the first call of a shape; ``auto``: once the same shape has come
:data:`AUTO_AFTER_CALLS` times in a row, as video and live frames do), keeps one graph at a time,
checks each new graph against the eager forward on the inputs it was recorded with, and falls
back to the eager network, with a :class:`CudaGraphWarning`, when recording fails or the replay
disagrees.

The recording itself (:func:`capture`) needs CUDA; the policy takes it as an argument, so its
decisions and fall-backs are tested on the CPU with a stand-in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import RtStereoWarning, warn
from ..text import first_line
from .agreement import compare_maps

#: Same-shape calls before ``auto`` records a graph (the first ones also warm up cuDNN's autotuner).
AUTO_AFTER_CALLS = 3
#: A replay must reproduce the eager map to this mean difference (float rounding only), pixels.
REPLAY_TOLERANCE_PX = 1e-3
#: ... and differ by more than 1 px on at most this percent of pixels (a different cuDNN algorithm can flip a
#: soft-argmin between two near-equal matches; the exporter allows the same)
REPLAY_BAD1_PCT = 0.01
GRAPH_MODES = ("auto", "on", "off")

Forward = Callable[[Any, Any], Any]


class CudaGraphWarning(RtStereoWarning):
    """A CUDA graph could not be recorded or did not reproduce the network: it runs eagerly."""


def capture(forward: Forward, left: Any, right: Any, warmup: int = 2) -> Forward:
    """Record ``forward`` on CUDA for the shapes of ``left`` and ``right``.

    The warm-up runs on a side stream (as PyTorch requires before capture) so that lazy
    initialisation and cuDNN's autotuning happen outside the graph.

    Returns:
        A function of ``(left, right)`` that copies them into the graph's input buffers, replays it
        and returns a copy of its output (the buffer is overwritten by the next replay).
    """
    import torch

    static_left, static_right = left.clone(), right.clone()
    with torch.cuda.device(left.device):  # the graph and its streams on the inputs' GPU, not GPU 0
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                forward(static_left, static_right)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = forward(static_left, static_right)

    def replay(a: Any, b: Any) -> Any:
        static_left.copy_(a, non_blocking=True)
        static_right.copy_(b, non_blocking=True)
        graph.replay()
        return static_out.clone()

    return replay


class GraphPolicy:
    """When to record a graph, which one is live, and the fall-back to the eager network.

    Args:
        mode: ``on``, ``auto`` or ``off`` (see the module docstring).
        capture_fn: records a graph (:func:`capture`; a stand-in in the CPU tests).
    """

    def __init__(self, mode: str, capture_fn: Callable[[Forward, Any, Any], Forward] = capture):
        if mode not in GRAPH_MODES:
            raise ValueError(f"mode must be one of {GRAPH_MODES}, got {mode!r}")
        self.mode = mode
        self.capture_fn = capture_fn
        self.shape: tuple[Any, ...] | None = None
        self.calls = 0
        self.graph: Forward | None = None
        self.failed: set[tuple[Any, ...]] = set()
        # One call at a time: a graph reads fixed input buffers, so a thread whose inputs were copied in just
        # after another's got the other's map; and a recording must not see other threads' kernels.
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether the last call replayed a graph."""
        return self.graph is not None

    def run(self, forward: Forward, left: Any, right: Any) -> Any:
        """``forward(left, right)``, through a graph when one is recorded for this shape (one thread at a time)."""
        with self._lock:
            return self._run(forward, left, right)

    def _run(self, forward: Forward, left: Any, right: Any) -> Any:
        shape = (tuple(left.shape), tuple(right.shape), left.dtype, left.device)
        if shape != self.shape:
            self.shape, self.calls, self.graph = shape, 0, None  # one graph at a time: its memory is freed
        self.calls += 1
        if self.graph is not None:
            return self.graph(left, right)
        eager = forward(left, right)
        due = self.calls >= (1 if self.mode == "on" else AUTO_AFTER_CALLS)
        if self.mode != "off" and due and shape not in self.failed:
            self.graph = self._record(forward, left, right, eager, shape)
        return eager

    def _record(self, forward: Forward, left: Any, right: Any, eager: Any, shape: tuple[Any, ...]) -> Forward | None:
        size = "x".join(str(s) for s in shape[0][-2:])
        try:
            graph = self.capture_fn(forward, left, right)
            replayed = graph(left, right)
        except Exception as exc:  # capture raises many kinds (unsupported op, sync inside, memory)
            self.failed.add(shape)
            reason = f"{type(exc).__name__}: {first_line(exc)[:200]}" if first_line(exc) else type(exc).__name__
            warn(
                f"CUDA graph for {size} could not be recorded ({reason}); the network runs without it", CudaGraphWarning
            )
            return None
        agreement = compare_maps(replayed, eager, "CUDA graph vs eager")
        if not agreement.within(REPLAY_TOLERANCE_PX, REPLAY_BAD1_PCT):
            self.failed.add(shape)
            warn(
                f"CUDA graph for {size} does not reproduce the network ({agreement.line()}); it runs without it",
                CudaGraphWarning,
            )
            return None
        return graph
