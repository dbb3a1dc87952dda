"""Online adaptation: the network learns from a stream while it serves it (the idea of MADNet, Tonioni
et al., CVPR 2019), behind ``rtstereo video --adapt`` and ``rtstereo live --adapt``.

::

    stream ──frames──> AdaptingPredictor (serves every frame with the weights it holds now)
       └── every N-th frame ──> one-slot buffer ──> [adapter thread: one step on a crop]
                                                        └── a copy of the new weights ──> waiting
    AdaptingPredictor, before its next frame: copies the waiting weights into the served network

Nothing waits for the adapter: :meth:`OnlineAdapter.offer` overwrites a one-slot buffer (a frame that
arrives while a step runs replaces the one waiting), and the step runs on a thread of its own. The
adapter trains its own copy of the network; after each step it publishes a copy of the weights, and
the predictor copies them into the served network in place, on the inference thread, between two
frames: a frame runs wholly on the old weights or wholly on the new ones, and whatever the backend
built around its module (channels-last layout, half-precision weights, recorded CUDA graphs, a
compiled graph) keeps working, since the tensors stay where they were.

On a CPU the adapter competes with capture and inference for the cores. It runs with one thread at
the lowest scheduling priority (``nice 19``, on Linux), so that it uses the cycles the stream leaves,
and by default in a child process (:mod:`rtstereo.train.online_process`). A thread of the stream's own
process (this module's :class:`OnlineAdapter` alone, ``worker="thread"``) shares the interpreter lock
with capture and inference, and a low-priority thread holding it can make them wait; on the shared
machine it was measured on, the two could not be told apart (see the README). The losses are those
of ``rtstereo adapt`` (:mod:`rtstereo.train.selfsup`) on a random crop of the frame; batch norms keep
their statistics (a batch of one crop would estimate them badly).
"""

from __future__ import annotations

import atexit
import copy
import logging
import numbers
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError, OutputError, RtStereoError, SettingError, require_number, require_whole
from ..io.atomic import os_reason
from ..pools import wait_for_event_through_interrupts
from ..runtime.predictor import ClosedBackend, Predictor
from ..runtime.providers import check_thread_count
from ..sinks.video import OutputFrame, Sink
from ..sources.base import LatestSlot
from ..text import counted, first_line
from ..types import StereoPair
from .adapt import ADAPT_LOSSES, AdaptConfig, Adapter, UserPair, adapting_optimizer, apply_step, fit_crop
from .adapt_network import AdaptableNetwork
from .proxy import proxy_disparity

if TYPE_CHECKING:
    from ..runtime.hybrid import HybridPredictor

log = logging.getLogger("rtstereo.stream")

ONLINE_LOSSES = ("photometric", "smoothness")  # no SGBM per step by default: it costs more than the step
LOWEST_PRIORITY = 19  # Unix nice value of the adapter thread
WORKERS = ("process", "thread")  # where the steps run (see rtstereo.train.online_process)
_WAIT_S = 0.1  # how often an idle adapter thread looks at the stop flag
SUMMARY_STEPS = 10  # steps averaged at each end for the loss before and after
# Non-finite tries before any step stop adaptation: a few are said and skipped.
NON_FINITE_LIMIT = 10
SAVE_SUFFIXES = (".pt", ".pth", ".ckpt")  # the checkpoints save() writes, as --adapt-save takes them
CLOSE_WAIT_S = 2.0  # at the end of a stream, how long a step under way may take to finish and be kept
THREADS_SET_WAIT_S = 5.0  # how long start() waits for the adapter thread to set its own CPU threads
# How long a freeze waits for the worker to finish deciding whether it starts a step (microseconds, unless a
# low-priority worker is descheduled there): it says whether one was under way, which it then keeps.
STEP_GATE_WAIT_S = 1.0


@dataclass(frozen=True)
class OnlineConfig:
    """How to adapt while a stream runs.

    Attributes:
        every: offer every N-th frame to the adapter (it takes the newest offered one when it is free).
        steps: freeze after this many steps (``None``: no limit).
        until_s: freeze this many seconds after the adapter started (``None``: no limit).
        losses: terms from ``rtstereo.train.adapt.ADAPT_LOSSES``; ``proxy`` runs SGBM on each frame used.
        weights: weight of each term (missing ones: ``rtstereo.train.adapt.DEFAULT_WEIGHTS``).
        crop_hw: crop of the frame a step trains on, pixels (rounded down to the frame and the network's
            size divisor).
        lr: Adam learning rate.
        threads: CPU threads of the adapter's own operations.
        low_priority: run the adapter at the lowest CPU priority (where the OS allows it).
        worker: ``process`` (:class:`~rtstereo.train.online_process.ProcessAdapter`: a child process,
            which never holds the stream's interpreter lock) or ``thread`` (:class:`OnlineAdapter`).
        seed: crops depend on it only.
    """

    every: int = 10
    steps: int | None = None
    until_s: float | None = None
    losses: tuple[str, ...] = ONLINE_LOSSES
    weights: dict[str, float] = field(default_factory=dict)
    crop_hw: tuple[int, int] = (128, 256)
    lr: float = 5e-5
    threads: int = 1
    low_priority: bool = True
    worker: str = "process"
    seed: int = 0

    def __post_init__(self) -> None:
        # From Python a string or 1.5 frames failed with a bare TypeError, or passed and ran every 1.5th frame.
        require_whole(self.every, "--adapt-every", "a whole number of frames >= 1")
        if self.steps is not None:
            require_whole(self.steps, "--adapt-steps", "a whole number of steps >= 1, or None")
        if self.until_s is not None:
            require_number(self.until_s, "--adapt-until", "seconds > 0, or None")
        check_thread_count(self.threads, "--adapt-threads")  # 99999 was given to torch.set_num_threads
        require_number(self.lr, "--adapt-lr", "a learning rate > 0")
        if not (
            isinstance(self.crop_hw, (tuple, list))
            and len(self.crop_hw) == 2
            and all(
                isinstance(side, numbers.Integral) and not isinstance(side, bool) and side > 0 for side in self.crop_hw
            )
        ):
            raise InputError(f"--adapt-crop: expected (height, width) in whole pixels > 0, got {self.crop_hw!r}")
        if self.every < 1:
            raise InputError(f"--adapt-every must be >= 1 (frames between steps), got {self.every}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--adapt-steps must be >= 1, got {self.steps}")
        if self.until_s is not None and not self.until_s > 0:
            raise InputError(f"--adapt-until must be > 0 seconds, got {self.until_s}")
        if self.worker not in WORKERS:
            raise InputError(f"--adapt-worker: expected one of {', '.join(WORKERS)}, got '{self.worker}'")
        if "synthetic" in self.weights:  # the offline loop's error named its synthetic_batch, which this has not
            raise InputError(
                f"weights: synthetic={self.weights['synthetic']!r:.40} weighs rendered pairs, which online adaptation "
                f"does not mix in: weigh only its terms ({', '.join(ADAPT_LOSSES)})"
            )
        try:
            self.step_config()  # checks the losses, weights and learning rate
        except SettingError as exc:
            option = {"losses": "--adapt-losses", "lr": "--adapt-lr"}.get(exc.setting)
            if option is None:
                raise
            raise InputError(f"{option}: {exc.detail}") from None

    def step_config(self) -> AdaptConfig:
        """The settings of one step, in the offline loop's terms: one crop, no rendered pairs."""
        return AdaptConfig(
            losses=self.losses,
            weights=dict(self.weights),
            steps=1,
            minutes=None,
            batch_size=1,
            synthetic_batch=0,
            crop_hw=self.crop_hw,
            lr=self.lr,
            holdout=0.0,
            seed=self.seed,
        )


class OnlineAdapter:
    """Trains a network on frames offered by a stream, on a background thread, and publishes its weights.

    Args:
        network: the trainable network (:func:`rtstereo.train.adapt_network.load_adaptable`); trained in place.
        config: the settings.
        clock: seconds, for ``until_s`` (tests pass a fake one).

    Examples:
        >>> from rtstereo.train.loop import build_network
        >>> module, spec, settings = build_network("rtnet", {"max_disp": 32})
        >>> adapter = OnlineAdapter(AdaptableNetwork(spec, settings, module, "random", None), OnlineConfig(every=1))
        >>> image = np.random.default_rng(0).integers(0, 255, (32, 64, 3), dtype=np.uint8)
        >>> adapter.step(StereoPair(image, image))["photometric"] >= 0, adapter.steps, adapter.version
        (True, 1, 1)
    """

    def __init__(
        self,
        network: AdaptableNetwork,
        config: OnlineConfig = OnlineConfig(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.network, self.config, self.clock = network, config, clock
        self.adapter = Adapter(
            network.module,
            network.spec,
            network.settings,
            config.step_config(),
            network.loss_weights,
            network.hint_settings,
        )
        divisor = self.adapter.divisor
        if min(config.crop_hw) < divisor:  # said before the stream starts, not at its first step
            raise InputError(
                f"--adapt-crop {config.crop_hw[0]}x{config.crop_hw[1]}: the network takes crops of at least "
                f"{divisor}x{divisor}"
            )
        self.optimizer = adapting_optimizer(network.module, config.lr)
        self._rng = np.random.default_rng([config.seed, 0x0411])
        self._crop_said = False  # whether the crop made smaller than asked was said
        self._slot = LatestSlot()
        self._stop = threading.Event()
        self._closed = threading.Event()  # close() has stopped waiting: a step still under way is not kept
        self._frozen = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()  # the thread has left its loop, and PyTorch with it
        self._started_s: float | None = None
        self.frames_seen = 0  # frames the stream offered (every one, before ``every`` picks)
        self.steps = 0
        self.skipped = 0  # tries whose loss or gradients were not finite: not applied, not in ``steps``
        self.busy_s = 0.0  # time spent in steps
        self.history: list[dict[str, float]] = []
        self.frozen_by: str | None = None
        self.error: str | None = None
        self.version = 0  # weights published (one per step)
        self._published: dict[str, torch.Tensor] | None = None  # the newest weights, never changed once made
        self._applied_version = 0
        self._lock = threading.Lock()
        # Held while the worker decides whether to start a step and marks it (the step it starts, as steps + 1): a
        # freeze that takes it knows whether a step is under way, which it then keeps.
        self._step_gate: Any = threading.Lock()
        self._stepping_to = 0

    # -- the stream's side --------------------------------------------------------------------

    def offer(self, pair: StereoPair) -> None:
        """Hand a frame over (never blocks): every ``config.every``-th one goes to the one-slot buffer."""
        self.frames_seen += 1
        if self._frozen.is_set() or (self.frames_seen - 1) % self.config.every:
            return
        self._slot.put(pair)

    @property
    def frozen(self) -> bool:
        return self._frozen.is_set()

    def freeze(self, reason: str = "frozen by request") -> None:
        """Stop updating the weights (the network keeps those it has, and a step under way is kept); :meth:`resume`
        undoes it."""
        if not self._frozen.is_set():
            self.frozen_by = reason
            held = self._step_gate.acquire(timeout=STEP_GATE_WAIT_S)
            try:
                self._frozen.set()
                steps, under_way = self._steps_at_freeze()
            finally:
                if held:
                    self._step_gate.release()
            # A step under way is kept: it read "frozen after 0 steps", then the stream's report "1 step".
            log.info(
                "online adaptation frozen after %s%s (%s)",
                counted(steps, "step"),
                " and one under way, which is kept" if under_way else "",
                reason,
            )

    def _steps_at_freeze(self) -> tuple[int, bool]:
        """The steps applied, and whether one is under way (read first: a step that ends between the two is
        counted once)."""
        stepping_to = self._stepping_to
        steps = self._steps_applied()
        return steps, stepping_to > steps

    def _steps_applied(self) -> int:
        """The steps whose weights are published so far (the process worker's are ahead of the reports read)."""
        return self.steps

    def resume(self) -> None:
        if self._frozen.is_set() and self.error is None:
            self.frozen_by = None
            self._frozen.clear()
            log.info("online adaptation resumed after %s", counted(self._steps_applied(), "step"))

    def toggle_freeze(self) -> None:
        """Freeze, or resume when frozen (the window's key)."""
        if self._frozen.is_set():
            self.resume()
        else:
            self.freeze("frozen by the key f")

    # -- the background thread ----------------------------------------------------------------

    def start(self) -> None:
        """Start the adapter thread (once)."""
        if self._thread is not None:
            return
        self._started_s = self.clock()
        stream_threads, own_threads_set = torch.get_num_threads(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(own_threads_set,), name="rtstereo-adapt", daemon=True)
        self._thread.start()
        # A daemon thread still inside PyTorch as Python finalizes aborts the process ("terminate called without an
        # active exception", exit code 134): a process that exits without close() waits for the step too.
        atexit.register(self._close_at_exit)
        own_threads_set.wait(THREADS_SET_WAIT_S)
        # torch.set_num_threads also sets the count every thread started afterwards takes: the stream's inference
        # thread ran the served network on the adapter's one thread. Set back, once the adapter has made its own.
        torch.set_num_threads(stream_threads)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread: a step under way finishes (up to ``timeout_s``) and is kept, as the process worker
        keeps it; no new one starts. A step that outlives the wait skips what it has not begun of its update, and
        is waited for (said on the log): a daemon thread left inside PyTorch aborted the process as it exited."""
        self._stop.set()
        self._slot.close()
        if self._thread is not None:

            def give_up_the_step() -> None:
                self._closed.set()
                log.info(
                    "online adaptation: waiting for the step under way to end (it is not kept unless it has "
                    "reached its update)"
                )

            try:
                wait_for_event_through_interrupts(self._ended, timeout_s, give_up_the_step)
            finally:
                atexit.unregister(self._close_at_exit)
        self._closed.set()
        self._note_budget_reached()

    def _close_at_exit(self) -> None:
        self.close(CLOSE_WAIT_S)

    def _note_budget_reached(self) -> None:
        """Record a ``steps`` budget reached as the stream ended: the freeze that says it comes with the next frame,
        and a stream that ended first recorded no reason (``frozen_by`` None), or did, by timing alone."""
        if self.frozen_by is None and self.config.steps is not None and self.steps >= self.config.steps:
            self.frozen_by = f"--adapt-steps {self.config.steps} reached"

    def _run(self, own_threads_set: threading.Event | None = None) -> None:
        lower_own_priority(self.config.low_priority)
        # This thread's own count (PyTorch makes it at a thread's first call), then set: start() sets the count of
        # the threads started later back to the stream's, and this thread keeps its own.
        torch.get_num_threads()
        torch.set_num_threads(self.config.threads)
        if own_threads_set is not None:
            own_threads_set.set()
        try:
            self._loop()
        finally:
            self._ended.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pair = self._slot.take(_WAIT_S)
            except TimeoutError:
                pair = False
            if pair is None:  # the stream ended
                return
            if self._budget_spent() or pair is False:
                continue
            with self._step_gate:
                if self._frozen.is_set():
                    continue
                self._stepping_to = self.steps + 1
            try:
                self.step(pair)
            except _StepDropped:
                return
            except Exception as exc:  # noqa: BLE001 - the stream goes on with the weights it has
                self._stepping_to = 0  # not kept: the freeze that follows says none under way
                self._stop_on_error(exc)
                return
            self._stepping_to = 0

    def _stop_on_error(self, exc: Exception) -> None:
        """Say why adaptation stopped, and freeze: the stream goes on with the weights it has."""
        self.error = first_line(exc) or type(exc).__name__
        log.warning("online adaptation stopped after %s: %s", counted(self.steps, "step"), self.error)
        self.freeze("error")

    def _budget_spent(self) -> bool:
        """Freeze (and say so) once ``steps`` or ``until_s`` is reached."""
        if self._frozen.is_set():
            return True
        if self.config.steps is not None and self.steps >= self.config.steps:
            self.freeze(f"--adapt-steps {self.config.steps} reached")
            return True
        started = self._started_s if self._started_s is not None else self.clock()
        if self.config.until_s is not None and self.clock() - started >= self.config.until_s:
            self.freeze(f"--adapt-until {self.config.until_s:g} s reached")
            return True
        return False

    # -- one step -----------------------------------------------------------------------------

    def step(self, pair: StereoPair) -> dict[str, float]:
        """One optimiser step on a random crop of ``pair``, then publish the weights; returns the terms."""
        left, right = self.crop(pair)
        return self.train_on(left, right, pair.index if pair.index is not None else self.frames_seen, pair.size_hw[1])

    def crop(self, pair: StereoPair) -> tuple[np.ndarray, np.ndarray]:
        """A random crop of the pair (``config.crop_hw`` fitted to the frame and the size divisor)."""
        asked = self.adapter.config.crop_hw
        # Named as the stream counts its frames (it read "pair frame is 24x48 ..."), from 0.
        name = str(pair.index if pair.index is not None else self.frames_seen)
        height, width = fit_crop(asked, [UserPair(name, pair.left, pair.right)], self.adapter.divisor, "frame")
        if (height, width) != tuple(asked) and not self._crop_said:
            self._crop_said = True  # once: every frame of a stream has the same size
            frame_h, frame_w = pair.left.shape[:2]
            why = (
                f"is larger than the {frame_h}x{frame_w} frame"
                if asked[0] > frame_h or asked[1] > frame_w
                else f"is not a multiple of the network's {self.adapter.divisor} px"
            )
            log.warning("--adapt-crop %dx%d %s: steps train on %dx%d crops", *asked, why, height, width)
        y0 = int(self._rng.integers(pair.left.shape[0] - height + 1))
        x0 = int(self._rng.integers(pair.left.shape[1] - width + 1))
        window = (slice(y0, y0 + height), slice(x0, x0 + width))
        return np.ascontiguousarray(pair.left[window]), np.ascontiguousarray(pair.right[window])

    def train_on(
        self, left: np.ndarray, right: np.ndarray, frame: int = 0, frame_width: int | None = None
    ) -> dict[str, float]:
        """One optimiser step on a uint8 RGB crop pair, then publish the weights; returns the terms.

        A guided network trains with the hints the hybrid gives it, made from the crop with SGBM's
        range capped as on the whole frame (``frame_width``: its width; default: the crop's)."""
        started = time.perf_counter()
        adapter, config = self.adapter, self.adapter.config
        self._drop_if_closed()
        batch = {
            key: torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255.0).to(adapter.device)
            for key, image in (("left", left), ("right", right))
        }
        if "proxy" in config.losses:
            labels = torch.from_numpy(np.nan_to_num(proxy_disparity(left, right, adapter.max_disp), nan=0.0))
            batch["disparity"] = labels[None].to(adapter.device)
        if adapter.guided:
            batch["hints"] = adapter.hints_of(batch["left"], batch["right"], frame_width)
        self._drop_if_closed()  # between the parts of a step: close() waits for the one under way
        terms = adapter.user_terms(batch)
        total = sum(
            (config.weight(name) * value for name, value in terms.items()), torch.zeros((), device=adapter.device)
        )
        record = {name: float(value.detach()) for name, value in {**terms, "total": total}.items()}
        record["frame"] = float(frame)
        if not self._closed.is_set():
            self.optimizer.zero_grad(set_to_none=True)
            if apply_step(total, adapter.model, self.optimizer):
                self.steps += 1
                self.publish()
                self.history.append(record)
            else:
                self.skipped += 1
        self.busy_s += time.perf_counter() - started
        if self.steps == 0 and self.skipped >= NON_FINITE_LIMIT:
            raise RtStereoError(
                f"every step so far ({self.skipped}) had a non-finite loss or gradient and changed nothing: the "
                "network's predictions or the frames give NaN or infinity (weights so large that the network "
                "overflows do)"
            )
        if self.steps == 1 or self.steps % 10 == 0:
            log.debug("online adaptation step %d: %s", self.steps, record)
        return record

    def _drop_if_closed(self) -> None:
        """On the adapter's thread, once close() has given up on the step under way: the rest is not done."""
        if self._closed.is_set() and threading.current_thread() is self._thread:
            raise _StepDropped

    def publish(self) -> None:
        """Make a copy of the trained weights the one :meth:`apply_to` hands out next."""
        state = {key: value.detach().clone() for key, value in self.adapter.model.state_dict().items()}
        with self._lock:
            self._published = state
            self.version += 1

    def apply_to(self, served: torch.nn.Module) -> bool:
        """Copy the newest published weights into ``served`` in place, if it has not got them yet.

        Call it from the thread that runs ``served``, between two of its calls (the predictor does).

        Returns:
            Whether the weights changed.
        """
        with self._lock:
            state, version = self._published, self.version
        if state is None or version == self._applied_version:
            return False
        with torch.no_grad():
            for key, tensor in served.state_dict().items():
                tensor.copy_(state[key])  # in place: same storage, so graphs recorded on it stay valid
        self._applied_version = version
        return True

    # -- results ------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Steps, frames, time and the loss of the first and last steps (mean of up to 10 each, never the same ones)."""
        first, last = _first_and_last(self.history)
        return {
            "steps": self.steps,
            "skipped_steps": self.skipped,
            "weights_version": self.version,
            "frames_seen": self.frames_seen,
            "step_busy_s": round(self.busy_s, 2),
            "frozen_by": self.frozen_by,
            "error": self.error,
            "loss_first_steps": _mean_terms(first),
            "loss_last_steps": _mean_terms(last),
            # every term's weight, defaults too (it recorded {} unless some were given), as adapt's checkpoints do
            "config": {
                **asdict(self.config),
                "crop_hw": list(self.config.crop_hw),
                "weights": {term: self.config.step_config().weight(term) for term in self.config.losses},
            },
        }

    def describe(self) -> str:
        """One line for the terminal."""
        steps, frames = counted(self.steps, "step"), counted(self.frames_seen, "frame")
        text = f"online adaptation: {steps} on {frames} ({self.busy_s:.1f} s busy)"
        if self.skipped:
            text += f"; {counted(self.skipped, 'more step')} skipped (non-finite loss or gradient)"
        first_steps, last_steps = _first_and_last(self.history)
        first, last = _mean_terms(first_steps), _mean_terms(last_steps)
        if "photometric" in first and len(self.history) > 1:
            text += (
                f"; photometric loss {first['photometric']:.4f} -> {last['photometric']:.4f} "
                f"(mean of the first/last {counted(len(first_steps), 'step')})"
            )
        return text + (f"; frozen: {self.frozen_by}" if self.frozen_by else "")

    def save(self, path: str | Path) -> Path:
        """Write the newest published weights as a self-describing checkpoint (``rtstereo predict --model PATH``)."""
        from ..models.checkpoint import save_checkpoint

        path = checkpoint_path(path)
        with self._lock:
            state = self._published
        if state is None:  # no step yet: the weights it started from
            state = {key: value.detach().clone() for key, value in self.adapter.model.state_dict().items()}
        save_checkpoint(
            path,
            self.network.spec.name,
            self.network.settings,
            {key: value.cpu() for key, value in state.items()},
            **self.network.provenance(),
            adaptation={"online": True, **self.summary()},
        )
        return path


class _StepDropped(Exception):
    """The stream has closed the adapter while a step ran: the rest of the step is not done."""


def checkpoint_path(path: str | Path) -> Path:
    """``path`` of :meth:`OnlineAdapter.save` as a ``Path``, when it names a PyTorch checkpoint.

    Raises:
        InputError: another suffix (``save("mycam.onnx")`` wrote a PyTorch file that no ONNX reader opens, which
            ``--adapt-save`` refuses), or no path at all.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError(f"path: expected a checkpoint file (str or Path), got {type(path).__name__} {path!r:.80}")
    path = Path(path)
    if path.suffix.lower() not in SAVE_SUFFIXES:
        raise InputError(
            f"{path}: the adapted weights go to a PyTorch checkpoint ({', '.join(SAVE_SUFFIXES)}); export it "
            "afterwards with rtstereo export FILE.pt"
        )
    return path


def _first_and_last(history: list[dict[str, float]]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The first and last steps compared: up to ``SUMMARY_STEPS`` each, and never the same steps (with 3
    steps the first 10 and the last 10 would be one set, and the loss would seem not to change).

    Examples:
        >>> _first_and_last([{"i": i} for i in range(3)])
        ([{'i': 0}], [{'i': 2}])
    """
    count = min(SUMMARY_STEPS, len(history) // 2) if len(history) > 1 else len(history)
    return history[:count], history[len(history) - count :]


def _mean_terms(records: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in (records[0] if records else {}) if k != "frame"]
    return {k: round(float(np.mean([r[k] for r in records])), 5) for k in keys}


def lower_own_priority(enabled: bool = True) -> bool:
    """Give the calling thread the lowest CPU priority (Linux: per thread); False where the OS does not allow it."""
    if not enabled or not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError:
        return False
    return True


def adapting_predictor(
    model: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    settings: dict[str, Any] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    config: OnlineConfig = OnlineConfig(),
) -> tuple[AdaptingPredictor | HybridPredictor, OnlineAdapter]:
    """A predictor serving a trainable network, and the adapter that updates its weights.

    Args:
        model: a network with trainable PyTorch weights: ``rtnet-v5`` (its PyTorch state in a source
            checkout), an rtstereo checkpoint, or a registry network with ``weights``; or the hybrid
            (``default``), whose network adapts while SGBM's confident matches keep replacing its own.
            A name, or a file as a str or a Path.
        weights: weights file (str or Path) or URL of a registry network.
        settings: model settings, and the post-processing switches ``load`` takes.
        device, precision: of the serving backend (the adapter trains in float32 on the same device).
        config: the adaptation settings.

    Returns:
        ``(predictor, adapter)``: feed frames to ``adapter.offer`` after predicting them, and call
        ``adapter.start()`` first and ``adapter.close()`` at the end.

    Raises:
        InputError: a classical or ONNX-only model (nothing to train), a bad setting, or a ``model`` that is no name
            or path (a predictor from ``rtstereo.load`` failed with "'Predictor' object has no attribute 'lower'"), or a
            ``config`` that is no :class:`OnlineConfig`.
    """
    from ..api import _model_argument
    from ..models import resolve_alias
    from ..models.registry import coerce_setting
    from ..runtime.backends import TorchBackend, cpu_build_note
    from ..runtime.postprocess import POSTPROCESS_SETTINGS
    from .adapt_network import PACKAGED_SOURCES, hybrid_spec, load_adaptable

    if callable(getattr(model, "predict_pair", None)):
        raise InputError(
            f"model: expected the model's name or file, as rtstereo.load takes it, got a loaded "
            f"{type(model).__name__}: adapting_predictor builds its own predictor, on PyTorch, whose weights the "
            "adapter updates"
        )
    if not isinstance(config, OnlineConfig):  # a dict of its fields: "'dict' object has no attribute 'worker'"
        raise InputError(
            f"config: expected an OnlineConfig (rtstereo.train.online.OnlineConfig(every=10, ...)), got "
            f"{type(config).__name__} {config!r:.80}"
        )
    model_name = _model_argument(model)
    overrides = dict(settings or {})
    switches = {name: overrides.pop(name) for name in POSTPROCESS_SETTINGS if name in overrides}
    hybrid = hybrid_spec(model_name) if weights is None else None
    # A hybrid's network adapts (with the hints it is served with); SGBM's matches keep replacing its own.
    network = load_adaptable(model_name, weights, overrides)
    hybrid_settings = network.hint_settings or {}
    if hybrid is not None:
        model_name = hybrid_settings["network"]
    if network.note:
        log.info("%s", network.note)
    if weights is None and resolve_alias(model_name) in PACKAGED_SOURCES:
        # Without --adapt the same name runs its ONNX export on ONNX Runtime: on a CPU several times faster.
        log.info(
            "--adapt serves %s on PyTorch (its ONNX export cannot take new weights): frames run at PyTorch's "
            "speed, not at ONNX Runtime's as without --adapt",
            model_name,
        )
    if device.startswith("cuda") and not torch.cuda.is_available():  # it said "Torch not compiled with CUDA enabled"
        raise InputError(f"--device {device}: PyTorch sees no CUDA GPU{cpu_build_note(torch)}; use --device cpu")
    try:
        network.module.to(torch.device(device))
    except (RuntimeError, AssertionError) as exc:
        raise InputError(f"--device {device}: {first_line(exc) or type(exc).__name__}") from None
    backend = TorchBackend(copy.deepcopy(network.module).requires_grad_(False), device=device, precision=precision)
    if config.worker == "process":
        from .online_process import ProcessAdapter

        adapter: OnlineAdapter = ProcessAdapter(network, config)
    else:
        adapter = OnlineAdapter(network, config)
    predictor = AdaptingPredictor(
        network.spec, network.settings, backend, adapter, name=f"{model_name} (adapting online)"
    )
    for name, value in switches.items():
        setattr(predictor, name, coerce_setting(name, value, False))
    if hybrid is not None:
        from ..runtime.hybrid import HybridPredictor

        served = HybridPredictor(hybrid, {**hybrid_settings, "network": predictor.name}, predictor)
        served.name = f"{hybrid.name} (its network adapting online)"
        return served, adapter
    return predictor, adapter


class AdaptingPredictor(Predictor):
    """A :class:`~rtstereo.runtime.predictor.Predictor` on a PyTorch backend whose weights an
    :class:`OnlineAdapter` updates: before each pair it takes the newest weights, after it offers the pair.

    Args:
        spec, settings, backend, name: as for :class:`~rtstereo.runtime.predictor.Predictor`
            (``backend.module`` is the served network).
        adapter: trains a separate copy of the network.
    """

    def __init__(
        self, spec: Any, settings: dict[str, Any], backend: Any, adapter: OnlineAdapter, name: str | None = None
    ):
        super().__init__(spec, settings, backend, name=name)
        self.adapter = adapter

    def predict_pair(self, pair: StereoPair, hints: Any = None, cost: Any = None) -> Any:
        """Predict with the newest weights (``hints`` for a guided network, ``cost``: see :class:`Predictor`),
        then offer the pair to the adapter (which makes a guided network's hints of its crop itself)."""
        if isinstance(self.backend, ClosedBackend):  # it has no network to take the weights
            self.backend.refuse()
        self.adapter.apply_to(self.backend.module)
        result = super().predict_pair(pair, hints=hints, cost=cost)
        self.adapter.offer(pair)
        return result


class AdaptationSink(Sink):
    """Online adaptation's start and end, as one more output of a stream: the adapter starts with the
    sink; closing it (on every way a stream ends) stops the adapter, reports, and saves the weights.

    Args:
        adapter: started here, or by :meth:`start`.
        save_path: checkpoint written at the end (``--adapt-save``), or ``None``.
        start: start the adapter now (False: call :meth:`start` once the stream's other outputs are
            made, so that a bad output is reported before the adapter's process starts).
    """

    def __init__(self, adapter: OnlineAdapter, save_path: str | Path | None = None, start: bool = True) -> None:
        self.adapter = adapter
        self.save_path = Path(save_path) if save_path is not None else None
        self._outputs: list[str] = []
        if start:
            adapter.start()

    def start(self) -> None:
        """Start the adapter (once; a process worker returns when it is ready)."""
        self.adapter.start()

    def write(self, frame: OutputFrame) -> None:
        pass  # the predictor offers the frames (an AdaptingPredictor): the sink only starts, stops and saves

    def close(self) -> None:
        self.adapter.close(timeout_s=CLOSE_WAIT_S)
        log.info("%s", self.adapter.describe())
        if self.save_path is not None:
            try:
                self._outputs.append(str(self.adapter.save(self.save_path)))
            except OSError as exc:  # its text names the temporary file
                in_way = self.save_path.is_dir()
                reason = "a folder of that name is in the way" if in_way else os_reason(exc, self.save_path)
                raise OutputError(f"cannot write the adapted checkpoint {self.save_path}: {reason}") from None
            if self.adapter.steps == 0:
                # An error before the first step is the cause to name, not the stream's length.
                why = f"adaptation stopped ({self.adapter.error})" if self.adapter.error else "the stream ended"
                log.warning(
                    "no adaptation step was made before %s: %s holds the weights it started with", why, self.save_path
                )

    def adaptation(self) -> dict[str, Any]:
        """What the adapter did, for the stream's summary (:class:`~rtstereo.stream.StreamSummary`)."""
        return {"online": True, **self.adapter.summary()}

    @property
    def outputs(self) -> list[str]:
        return list(self._outputs)
