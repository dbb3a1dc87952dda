"""Online adaptation in a separate, low-priority process (``--adapt-worker process``).

A thread of the stream's own process shares the interpreter lock with capture and inference: at the
lowest CPU priority it is often descheduled while it holds that lock, and the stream's threads then
wait for it (a priority inversion). A process shares nothing but what it is given:

::

    stream process                                   adapter process (nice 19, one thread)
    offer(): every N-th frame, a random crop ──queue (1)──> one step on the crop
    apply_to(): before a frame, if a new version <──shared memory + version──  weights copied in, version += 1

The weights travel through tensors in shared memory, under a lock, and the predictor copies them into
the served network between two frames, as with the thread (:mod:`rtstereo.train.online`). At the
lowest priority the adapter uses the cycles the stream and the other programs leave: on a saturated
CPU it steps rarely, and the stream keeps its rate.

:meth:`ProcessAdapter.start` waits until the child has imported torch and built its network (1-2
CPU-seconds) before the stream begins, so the adapter can step from the stream's first offered frame
(on 2 cores it stepped on 30 of 30 offered frames, against 24-25 when it started beside the stream; the
stream's rate was the same either way) and a child that cannot start is reported before the stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..errors import InputError, RtStereoError
from ..text import counted, first_line
from ..types import StereoPair
from .adapt_network import AdaptableNetwork
from .online import (
    LOWEST_PRIORITY,
    STEP_GATE_WAIT_S,
    OnlineAdapter,
    OnlineConfig,
    checkpoint_path,
    log,
    lower_own_priority,
)

_WAIT_S = 0.1
READY_TIMEOUT_S = 60.0  # the longest start() waits for the child to be ready before the stream begins
KILL_LOCK_WAIT_S = 10.0  # at close, the longest a child still stepping may take to finish copying its weights


class ProcessAdapter(OnlineAdapter):
    """:class:`~rtstereo.train.online.OnlineAdapter` whose steps run in a child process.

    The same interface: :meth:`offer`, :meth:`apply_to`, :meth:`start`, :meth:`close`, freezing,
    :meth:`save`. ``steps``, ``history`` and ``busy_s`` follow the child's reports (read when the
    stream calls :meth:`offer` or :meth:`apply_to`).
    """

    def __init__(
        self,
        network: AdaptableNetwork,
        config: OnlineConfig = OnlineConfig(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(network, config, clock)
        context = torch.multiprocessing.get_context("spawn")  # fork is unsafe once OpenMP threads exist
        self.shared = {k: v.detach().cpu().clone().share_memory_() for k, v in network.module.state_dict().items()}
        self._shared_lock = context.Lock()
        self._shared_version = context.Value("i", 0)
        self._child_stop = context.Event()
        self._child_frozen = context.Event()
        self._child_ready = context.Event()
        # the step the child has started (the version it will publish), else 0; set under the gate (see freeze)
        self._step_gate = context.Lock()
        self._child_stepping = context.Value("i", 0)
        self.ready_s: float | None = None  # how long the child took to be ready (None: not ready yet)
        self._crops = context.Queue(maxsize=1)
        self._records = context.Queue()
        device = str(next(network.module.parameters()).device)
        self._process = context.Process(
            target=_child_main,
            args=(
                network.spec.name,
                network.settings,
                self.shared,
                network.loss_weights,
                network.hint_settings,
                config,
                device,
                self._shared_lock,
                self._shared_version,
                self._crops,
                self._records,
                self._child_stop,
                self._child_frozen,
                self._child_ready,
                self._step_gate,
                self._child_stepping,
            ),
            name="rtstereo-adapt",
            daemon=True,
        )

    def start(self) -> None:
        if self._started_s is None:
            self._started_s = self.clock()
            with _sigint_ignored():  # inherited: the child ignores Ctrl+C from its first instruction
                self._process.start()
            if self.config.low_priority:
                # At once, from here: the child's own start (a fresh interpreter importing torch and
                # building the network, a few CPU-seconds) would otherwise run at the stream's priority.
                with contextlib.suppress(OSError, AttributeError):
                    os.setpriority(os.PRIO_PROCESS, self._process.pid, LOWEST_PRIORITY)
            self._wait_ready(READY_TIMEOUT_S)
            self._started_s = self.clock()  # --adapt-until counts the stream's seconds, not the child's start

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait (before the stream begins) until the child has built its network, has failed, or ``timeout_s``."""
        started = time.perf_counter()
        while not self._child_ready.wait(_WAIT_S):
            if not self._process.is_alive():
                self._collect()
                reason = self.error or f"exit code {self._process.exitcode}"
                log.warning("the online adaptation process ended before it was ready (%s)", reason)
                self.error = self.error or f"the adaptation process ended before it was ready ({reason})"
                self.freeze("error")  # offer() would otherwise crop frames for a child that is gone
                return
            if time.perf_counter() - started > timeout_s:
                log.warning("the online adaptation process is not ready after %.0f s: the stream goes on", timeout_s)
                return
        self.ready_s = time.perf_counter() - started
        log.info("online adaptation process ready in %.1f s", self.ready_s)

    def offer(self, pair: StereoPair) -> None:
        self.frames_seen += 1
        self._collect()
        self._check_alive()
        if self._budget_spent() or (self.frames_seen - 1) % self.config.every:
            return
        try:
            left, right = self.crop(pair)
        except InputError as exc:  # a frame too small to crop: it stopped the stream, not only its adaptation
            self._stop_on_error(exc)
            return
        with contextlib.suppress(queue.Full):  # the child is busy: this frame is skipped
            frame = pair.index if pair.index is not None else self.frames_seen
            self._crops.put_nowait((left, right, frame, pair.size_hw[1]))

    def _check_alive(self) -> None:
        """Say so, and freeze, when the child has ended without a report (killed: out of memory, a signal)."""
        if self.error is not None or self._frozen.is_set() or self._started_s is None or self._stop.is_set():
            return
        if self._process.is_alive():
            return
        self._collect()  # the reports it sent before it ended, its error among them
        if self.error is None:
            self._stop_on_error(RtStereoError(f"the adaptation process ended (exit code {self._process.exitcode})"))

    def freeze(self, reason: str = "frozen by request") -> None:
        # the child reads this one: set under the gate, a step it has not marked as under way does not start
        held = self._step_gate.acquire(timeout=STEP_GATE_WAIT_S)
        try:
            self._child_frozen.set()
        finally:
            if held:
                self._step_gate.release()
        super().freeze(reason)

    def _steps_at_freeze(self) -> tuple[int, bool]:
        # the child's own counts: the stream's are those of the reports it has read
        stepping_to = self._child_stepping.value
        steps = self._steps_applied()
        return steps, stepping_to > steps

    def _steps_applied(self) -> int:
        # the child's count: "resumed after" right after a freeze, before the kept step's report is read, was one low
        return self._shared_version.value

    def resume(self) -> None:
        super().resume()
        if not self._frozen.is_set():
            self._child_frozen.clear()

    def apply_to(self, served: torch.nn.Module) -> bool:
        if self._shared_version.value == self._applied_version:
            return False
        # Never wait: a low-priority child may be descheduled while it holds the lock; try at the next frame.
        if not self._shared_lock.acquire(block=False):
            return False
        try:
            with torch.no_grad():
                for key, tensor in served.state_dict().items():
                    tensor.copy_(self.shared[key])
            self._applied_version = self._shared_version.value
        finally:
            self._shared_lock.release()
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._child_stop.set()
        # A crop the child never took must not keep this process from exiting (the queue's feeder thread).
        self._crops.cancel_join_thread()
        if self._started_s is not None:
            self._join_reading(timeout_s)
            if self._process.is_alive():
                # Never while it copies its weights under the lock: killed there, it would hold the lock for
                # good (save() waited on it for ever) and leave the shared weights half of one step, half of
                # the next. Holding the lock, it is between two copies.
                held = self._shared_lock.acquire(timeout=KILL_LOCK_WAIT_S)
                try:
                    self._process.terminate()
                    self._process.join(1.0)
                finally:
                    if held:
                        self._shared_lock.release()
        self._collect()
        self._note_budget_reached()

    def _join_reading(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the child to end, taking its reports meanwhile: it flushes them before it
        exits, which a full pipe no one read would hold up."""
        deadline = time.perf_counter() + timeout_s
        while self._process.is_alive() and time.perf_counter() < deadline:
            self._process.join(min(_WAIT_S, max(0.0, deadline - time.perf_counter())))
            self._collect()

    def _collect(self) -> None:
        """Take the child's step reports (and its error, if any)."""
        while True:
            try:
                record = self._records.get_nowait()
            except (queue.Empty, OSError, ValueError):
                break
            if "error" in record:
                self.error = record["error"]
                # the child's count: the reports of its steps before the error may be read in this same call
                steps = self._shared_version.value
                log.warning("online adaptation stopped after %s: %s", counted(steps, "step"), self.error)
                self.freeze("error")
                continue
            self.busy_s += record.pop("busy_s", 0.0)
            if "skipped" in record:
                self.skipped += 1
                continue
            self.history.append(record)
        self.steps = self.version = self._shared_version.value

    def save(self, path: Any) -> Any:
        from ..models.checkpoint import save_checkpoint

        path = checkpoint_path(path)
        self._collect()
        if not self._shared_lock.acquire(timeout=KILL_LOCK_WAIT_S):  # a child stopped in the middle of a copy
            raise OSError("the adaptation process stopped while it copied its weights, which are incomplete")
        try:
            state = {key: value.clone() for key, value in self.shared.items()}
        finally:
            self._shared_lock.release()
        save_checkpoint(
            path,
            self.network.spec.name,
            self.network.settings,
            state,
            **self.network.provenance(),
            adaptation={"online": True, "worker": "process", **self.summary()},
        )
        return path


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while a child process is started, so that it inherits the disposition.

    Ctrl+C in a terminal reaches every process of the foreground group: the child would die of it with
    a KeyboardInterrupt traceback in the middle of the stream's last lines. The stream's process stops
    it (``close``) however the stream ends, and saves the weights it published.
    """
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are the main thread's; the child ignores it itself
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _child_main(
    name: str,
    settings: dict[str, Any],
    shared: dict[str, torch.Tensor],
    loss_weights: Any,
    hint_settings: Any,
    config: OnlineConfig,
    device: str,
    lock: Any,
    version: Any,
    crops: Any,
    records: Any,
    stop: Any,
    frozen: Any,
    ready: Any,
    step_gate: Any,
    stepping: Any,
) -> None:
    """The adapter process: build the network from the shared weights, then step on each crop it gets."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stream's process stops it (see _sigint_ignored)
    lower_own_priority(config.low_priority)  # this thread, and the threads it starts inherit it
    torch.set_num_threads(config.threads)
    from .loop import build_network

    module, spec, resolved = build_network(name, settings)
    module.load_state_dict({key: value.clone() for key, value in shared.items()})
    module.to(torch.device(device))
    network = AdaptableNetwork(spec, resolved, module, "", loss_weights, hint_settings=hint_settings)
    adapter = OnlineAdapter(network, dataclasses.replace(config, low_priority=False))
    ready.set()
    while not stop.is_set():
        try:
            item = crops.get(timeout=_WAIT_S)
        except queue.Empty:
            continue
        with step_gate:  # a freeze then knows whether a step is under way (ProcessAdapter.freeze)
            if frozen.is_set() or (config.steps is not None and version.value >= config.steps):
                continue
            stepping.value = version.value + 1
        left, right, frame, frame_width = item
        started = time.perf_counter()
        skipped = adapter.skipped
        try:
            record = adapter.train_on(left, right, frame, frame_width)
        except Exception as exc:  # noqa: BLE001 - reported to the stream, which goes on
            stepping.value = 0  # not kept
            if adapter.skipped > skipped:  # the non-finite try that ended it counts too
                records.put({"skipped": 1, "busy_s": time.perf_counter() - started})
            records.put({"error": first_line(exc) or type(exc).__name__})
            # Sent before this process exits (put() only hands them to a feeder thread, which exit does not
            # wait for once cancelled): on a loaded CPU they were lost, and the stream never learned that
            # adaptation had stopped.
            records.close()
            records.join_thread()
            return
        if adapter.skipped > skipped:  # a non-finite loss: nothing changed, nothing to share
            stepping.value = 0
            records.put({"skipped": 1, "busy_s": time.perf_counter() - started})
            continue
        with lock, torch.no_grad():
            for key, tensor in module.state_dict().items():
                shared[key].copy_(tensor)
            version.value += 1
        stepping.value = 0
        records.put({**record, "busy_s": time.perf_counter() - started})
    # Stopped by the stream: the reports are flushed before this process exits. Cancelled, the report of the step
    # finished as the stream ended was lost while its weights were kept (a checkpoint of 2 steps with the loss of one);
    # the stream reads them while it waits for this process (ProcessAdapter.close), which it ends if they stall.
    records.close()
    records.join_thread()
