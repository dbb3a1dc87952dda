"""Online adaptation: a background thread updates the served network while a stream runs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from adapt_helpers import sliding_frames, write_tiny_checkpoint, write_video
from tests.conftest import run_cli

import rtstereo
import rtstereo.train.adapt_network
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.sinks.video import OutputFrame, Sink
from rtstereo.sources.base import FrameSource
from rtstereo.stream import Stream
from rtstereo.train.online import LOWEST_PRIORITY, AdaptationSink, AdaptingPredictor, OnlineConfig, adapting_predictor
from rtstereo.types import StereoPair

# Quick steps on a loaded test machine; the thread worker unless a test is about the process.
SMALL = {"crop_hw": (64, 96), "every": 1, "low_priority": False, "worker": "thread"}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("net") / "tiny.pt")


@pytest.fixture(scope="module")
def frames():
    return sliding_frames(8)


class GeneratedStream(FrameSource):
    """Frames of ``frames``, round and round, until ``until()`` holds (then ``extra`` more), or a timeout."""

    def __init__(self, frames, until=lambda: True, extra: int = 2, delay_s: float = 0.0, timeout_s: float = 60.0):
        self.lefts, self.rights = frames
        self.until, self.extra, self.delay_s, self.timeout_s = until, extra, delay_s, timeout_s

    def _frames(self):
        deadline = time.monotonic() + self.timeout_s
        index, after = 0, 0
        while after < self.extra and time.monotonic() < deadline:
            after += 1 if self.until() else 0
            i = index % len(self.lefts)
            yield StereoPair(self.lefts[i], self.rights[i], name=f"frame{index:05d}", index=index)
            index += 1
            time.sleep(self.delay_s)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_served_weights_change_after_k_steps_and_then_freeze(tiny_checkpoint, frames):
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(steps=2, **SMALL))
    assert isinstance(predictor, AdaptingPredictor) and predictor.backend.module is not adapter.adapter.model
    before = _state(predictor.backend.module)
    sink = AdaptationSink(adapter)
    summary = Stream(GeneratedStream(frames, until=lambda: adapter.frozen, delay_s=0.01), predictor, sinks=[sink]).run()
    assert adapter.steps == 2 and adapter.frozen_by == "--adapt-steps 2 reached"
    assert summary.frames_written >= 3 and adapter.frames_seen == summary.frames_written
    # the stream's JSON said only "adapting online": the steps, a freeze or an error were kept nowhere without
    # --adapt-save
    recorded = json.loads(json.dumps(summary.to_dict()))["adaptation"]
    assert recorded["online"] and recorded["steps"] == 2 and recorded["frozen_by"] == "--adapt-steps 2 reached"
    assert recorded["frames_seen"] == summary.frames_written and "photometric" in recorded["loss_first_steps"]
    served = _state(predictor.backend.module)
    assert not _same(before, served)  # the frames after the steps ran on the new weights
    assert _same(served, _state(adapter.adapter.model))
    assert {"photometric", "smoothness", "total", "frame"} <= set(adapter.history[0])


def test_a_crop_larger_than_the_frame_is_said_once_with_the_size_used(tiny_checkpoint, frames, caplog):
    lefts, rights = frames
    config = OnlineConfig(**{**SMALL, "crop_hw": (512, 1024)})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    pair = StereoPair(lefts[0], rights[0], index=0)
    height, width = lefts[0].shape[:2]
    with caplog.at_level("WARNING", logger="rtstereo.stream"):
        for _ in range(3):
            left, _ = adapter.crop(pair)
    used = (height // 32 * 32, width // 32 * 32)
    assert left.shape[:2] == used
    said = [r.getMessage() for r in caplog.records if "--adapt-crop" in r.getMessage()]
    frame = f"{height}x{width}"
    assert said == [f"--adapt-crop 512x1024 is larger than the {frame} frame: steps train on {used[0]}x{used[1]} crops"]
    caplog.clear()
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**{**SMALL, "crop_hw": (32, 64)}))
    with caplog.at_level("WARNING", logger="rtstereo.stream"):
        assert adapter.crop(pair)[0].shape[:2] == (32, 64)
    assert not [r for r in caplog.records if "--adapt-crop" in r.getMessage()]  # a crop that fits: nothing to say


@pytest.mark.filterwarnings("ignore::rtstereo.runtime.predictor.SmallInputWarning")  # tiny frames on purpose
def test_a_slow_step_never_holds_the_stream_back(tiny_checkpoint):
    """A step that lasts until 30 small frames have gone through the whole pipeline after it began (it timed them
    against a 3 s step, with 2.5 s for the 30 frames, which a loaded 2-core machine could miss)."""
    config = OnlineConfig(crop_hw=(32, 64), every=1, worker="thread")
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    started, thirty_through = threading.Event(), threading.Event()
    released = []

    def slow_step(pair):
        started.set()
        released.append(thirty_through.wait(60.0))  # False: the frames waited for the step, which timed out
        return {}

    class AfterTheStepBegan(Sink):
        def __init__(self):
            self.frames = 0

        def write(self, frame: OutputFrame) -> None:
            self.frames += started.is_set()
            if self.frames >= 30:
                thirty_through.set()

        def close(self) -> None:
            pass

        @property
        def outputs(self) -> list[str]:
            return []

    adapter.step = slow_step
    source = GeneratedStream(sliding_frames(4, 32, 64), until=started.is_set, extra=30)
    Stream(source, predictor, sinks=[AfterTheStepBegan(), AdaptationSink(adapter)]).run()
    assert released and all(released), "the frames waited for the step"


def test_the_thread_worker_keeps_its_cpu_threads_to_itself(tiny_checkpoint, frames):
    """The adapter thread's torch.set_num_threads(1) became the count of every thread started after it: the stream's
    inference thread ran the served network on one thread, whatever --threads said."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL, threads=1))
    in_steps = []
    adapter.step = lambda pair: in_steps.append(torch.get_num_threads())
    try:
        adapter.start()
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))  # as the stream's inference
        thread.start()
        thread.join()
        adapter.offer(StereoPair(frames[0][0], frames[1][0], index=0))
        assert _wait(lambda: in_steps, timeout_s=30)
        assert later == [2] and in_steps == [1] and torch.get_num_threads() == 2, (later, in_steps)
    finally:
        adapter.close()
        torch.set_num_threads(threads)


def test_the_thread_workers_step_under_way_when_the_stream_ends_is_kept(tiny_checkpoint, frames):
    """close() waited up to 2 s for that step, then threw its result away (the process worker keeps it):
    a short stream ended with "0 step(s)" and --adapt-save wrote the starting weights."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    under_way = threading.Event()
    step_terms = adapter.adapter.user_terms

    def slow_terms(batch):
        under_way.set()
        time.sleep(0.5)  # the stream ends now
        return step_terms(batch)

    adapter.adapter.user_terms = slow_terms
    adapter.start()
    adapter.offer(StereoPair(frames[0][0], frames[1][0], index=0))
    assert under_way.wait(30.0)
    adapter.close(timeout_s=30.0)
    assert adapter.steps == 1 and adapter.version == 1 and len(adapter.history) == 1


def test_a_freeze_during_a_thread_workers_step_says_the_step_it_keeps(tiny_checkpoint, frames, caplog):
    """The key f during a step logged "frozen after 0 steps", then the stream's report said "1 step": the step under
    way is kept, as before, and the freeze now says so."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    under_way, go_on = threading.Event(), threading.Event()
    step_terms = adapter.adapter.user_terms

    def held_terms(batch):
        under_way.set()
        assert go_on.wait(30.0)
        return step_terms(batch)

    adapter.adapter.user_terms = held_terms
    adapter.start()
    try:
        adapter.offer(StereoPair(frames[0][0], frames[1][0], index=0))
        assert under_way.wait(30.0)
        with caplog.at_level("INFO", logger="rtstereo"):
            adapter.toggle_freeze()
        go_on.set()
        assert _wait(lambda: adapter.steps == 1, timeout_s=30.0)
    finally:
        go_on.set()
        adapter.close(timeout_s=30.0)
    said = "online adaptation frozen after 0 steps and one under way, which is kept (frozen by the key f)"
    assert said in caplog.text and adapter.steps == 1 and "1 step on" in adapter.describe()
    with caplog.at_level("INFO", logger="rtstereo"):
        adapter.resume()
        adapter.freeze("--adapt-steps 1 reached")  # idle: nothing under way
    assert "online adaptation frozen after 1 step (--adapt-steps 1 reached)" in caplog.text


@pytest.mark.parametrize(
    ("stepping_to", "version", "said"), [(1, 0, "0 steps and one under way, which is kept"), (0, 1, "1 step")]
)
def test_the_process_workers_freeze_counts_the_childs_steps_and_the_one_under_way(caplog, stepping_to, version, said):
    """--adapt-until (or the key f) while the child stepped logged "frozen after 0 steps", then "1 step" at the end:
    the count was the reports read so far, without the step under way, which the child keeps."""
    from rtstereo.train.online_process import ProcessAdapter

    adapter = object.__new__(ProcessAdapter)  # only its freeze is exercised, on the child's shared counts
    adapter._frozen, adapter._child_frozen, adapter._step_gate = threading.Event(), threading.Event(), threading.Lock()
    adapter._child_stepping, adapter._shared_version = (
        SimpleNamespace(value=stepping_to),
        SimpleNamespace(value=version),
    )
    adapter.steps, adapter.frozen_by = 0, None  # no report read yet
    with caplog.at_level("INFO", logger="rtstereo"):
        adapter.freeze("--adapt-until 2 s reached")
    assert adapter._child_frozen.is_set() and not adapter._step_gate.locked()
    assert f"online adaptation frozen after {said} (--adapt-until 2 s reached)" in caplog.text, caplog.text


def test_the_process_workers_resume_counts_the_childs_published_steps(caplog):
    """The key f twice, the second press after the step under way at the first had ended but before its report was
    read: "resumed after 0 steps", one low, where the freeze had said the step was kept."""
    from rtstereo.train.online_process import ProcessAdapter

    adapter = object.__new__(ProcessAdapter)  # only freeze and resume are exercised, on the child's shared counts
    adapter._frozen, adapter._child_frozen, adapter._step_gate = threading.Event(), threading.Event(), threading.Lock()
    adapter._child_stepping, adapter._shared_version = SimpleNamespace(value=1), SimpleNamespace(value=0)
    adapter.steps, adapter.frozen_by, adapter.error = 0, None, None  # no report read yet
    with caplog.at_level("INFO", logger="rtstereo"):
        adapter.toggle_freeze()
        adapter._child_stepping.value, adapter._shared_version.value = 0, 1  # the kept step published, unread
        adapter.toggle_freeze()
    assert "online adaptation frozen after 0 steps and one under way, which is kept" in caplog.text, caplog.text
    assert "online adaptation resumed after 1 step\n" in caplog.text + "\n", caplog.text
    assert not adapter._frozen.is_set() and not adapter._child_frozen.is_set()


@pytest.mark.skipif(
    rtstereo.train.adapt_network.packaged_network_source() is None, reason="needs training/default/state.pt"
)
def test_a_packaged_onnx_network_says_it_is_served_on_pytorch_while_it_adapts(caplog):
    """rtstereo video --model rtnet-v5 runs on ONNX Runtime (89 fps at 128x256 on 2 cores), with --adapt on
    PyTorch (28 fps): the switch went unsaid, and looked like the cost of adapting."""
    with caplog.at_level("INFO", logger="rtstereo.stream"):
        _, adapter = adapting_predictor("rtnet-v5", config=OnlineConfig(**SMALL))
    adapter.close()
    assert "--adapt serves rtnet-v5 on PyTorch (its ONNX export cannot take new weights)" in caplog.text


def test_a_loaded_predictor_or_a_number_as_the_model_or_a_dict_as_the_config_is_an_input_error():
    # the README's adapting_predictor(model), given what rtstereo.load returned: "'Predictor' object has no attribute
    # 'lower'", and for 5 "'int' object has no attribute 'lower'"
    with pytest.raises(InputError, match=r"model: expected the model's name or file, .* got a loaded Predictor"):
        adapting_predictor(rtstereo.load("sgbm", max_disp=16))
    with pytest.raises(InputError, match="model: expected a registry name .* got int 5"):
        adapting_predictor(5)
    with pytest.raises(InputError, match=r"config: expected an OnlineConfig \(.*\), got dict \{'every': 2\}"):
        adapting_predictor("sgbm", config={"every": 2})  # it failed with "'dict' object has no attribute 'worker'"


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_a_frame_too_small_to_crop_stops_the_adaptation_not_the_stream(tiny_checkpoint, caplog, worker):
    """With the process worker the stream itself stopped at its first frame ('error: pair frame is 24x48 ...'),
    nothing written; the thread worker said so and went on."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**{**SMALL, "worker": worker}))
    small = sliding_frames(1, 24, 48)
    try:
        with caplog.at_level("WARNING", logger="rtstereo.stream"):
            if worker == "thread":
                adapter.start()
            adapter.offer(StereoPair(small[0][0], small[1][0], index=0))
            assert _wait(lambda: adapter.frozen, timeout_s=30)
    finally:
        adapter.close()
    assert adapter.frozen_by == "error" and adapter.error.startswith("frame 0 is 24x48 (HxW) pixels: adapting needs")
    assert "online adaptation stopped after 0 steps" in caplog.text


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_steps_with_a_non_finite_loss_are_counted_and_all_of_them_stop_the_adaptation(
    tiny_checkpoint, tmp_path, caplog, worker
):
    """A step with a NaN loss or gradient made every weight NaN, and the stream's maps with them; a NaN loss's step
    was dropped without a word (the process worker counted it as a step). Weights so large (finite) that the network
    overflows give a NaN loss on every frame."""
    from rtstereo.train.online import NON_FINITE_LIMIT

    state = torch.load(tiny_checkpoint, weights_only=True)
    huge = {k: torch.full_like(v, 1e30) if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    torch.save({**state, "state_dict": huge}, tmp_path / "overflowing.pt")
    config = OnlineConfig(**{**SMALL, "worker": worker})
    _, adapter = adapting_predictor(str(tmp_path / "overflowing.pt"), config=config)
    grey = np.full((64, 128, 3), 128, np.uint8)
    try:
        with caplog.at_level("WARNING", logger="rtstereo.stream"):
            adapter.start()
            frames = itertools.count()

            def offered_until_frozen() -> bool:  # as a stream offers its frames (the process worker reports then)
                adapter.offer(StereoPair(grey, grey, index=next(frames)))
                time.sleep(0.02)
                return adapter.frozen

            assert _wait(offered_until_frozen, timeout_s=60)
    finally:
        adapter.close()
    assert adapter.steps == 0 and adapter.skipped == NON_FINITE_LIMIT and adapter.summary()["skipped_steps"] == 10
    assert adapter.error == (
        f"every step so far ({NON_FINITE_LIMIT}) had a non-finite loss or gradient and changed nothing: the network's "
        "predictions or the frames give NaN or infinity (weights so large that the network overflows do)"
    )
    if worker == "thread":  # no step changed the weights
        assert all(torch.equal(p, torch.full_like(p, 1e30)) for p in adapter.adapter.model.parameters())
    assert "online adaptation stopped after 0 steps: every step so far" in caplog.text
    assert "; 10 more steps skipped (non-finite loss or gradient)" in adapter.describe()


def test_uniform_frames_adapt_with_finite_gradients(tiny_checkpoint):
    """A uniform frame, grey or black, gave a finite loss and NaN gradients (the exposure normalisation's square root
    of a variance of 0): every step on one was skipped, and ten of them before the first stopped the adaptation."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    frames = itertools.count()

    def stepped_on(uniform: np.ndarray, steps: int) -> bool:
        adapter.offer(StereoPair(uniform, uniform, index=next(frames)))
        return adapter.steps > steps or adapter.frozen

    try:
        adapter.start()
        for value in (128, 0):  # grey, then black
            uniform, steps = np.full((64, 128, 3), value, np.uint8), adapter.steps
            assert _wait(lambda: stepped_on(uniform, steps)) and not adapter.frozen, adapter.error  # noqa: B023
    finally:
        adapter.close()
    assert adapter.skipped == 0 and adapter.error is None
    assert all(torch.isfinite(p).all() for p in adapter.adapter.model.parameters())


def test_a_checkpoint_saved_after_an_error_before_the_first_step_names_the_error(tmp_path, tiny_checkpoint, caplog):
    """It said "no adaptation step was made before the stream ended", whatever the stream's length."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    small = sliding_frames(1, 24, 48)
    sink = AdaptationSink(adapter, tmp_path / "w.pt")
    adapter.offer(StereoPair(small[0][0], small[1][0], index=0))
    assert _wait(lambda: adapter.frozen, timeout_s=30)
    with caplog.at_level("WARNING", logger="rtstereo.stream"):
        sink.close()
    assert "no adaptation step was made before adaptation stopped (frame 0 is 24x48 (HxW) pixels" in caplog.text
    assert f"{tmp_path / 'w.pt'} holds the weights it started with" in caplog.text


def _wait(condition, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_the_process_worker_steps_publishes_freezes_and_saves(tmp_path, tiny_checkpoint, frames):
    """The default worker: steps in a child process, weights through shared memory, the same interface."""
    from rtstereo.train.online_process import ProcessAdapter

    config = OnlineConfig(**{**SMALL, "worker": "process", "steps": 2})
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    assert isinstance(adapter, ProcessAdapter)
    pair = StereoPair(frames[0][0], frames[1][0], index=0)
    before = _state(predictor.backend.module)
    adapter.start()
    try:
        assert _wait(lambda: (predictor.predict_pair(pair) is None) or adapter.steps >= 2, timeout_s=120)
        served = predictor.predict(pair.left, pair.right).disparity_px
        assert adapter.steps == 2 and adapter.frozen_by == "--adapt-steps 2 reached"
        assert not _same(before, _state(predictor.backend.module))
        path = adapter.save(tmp_path / "process.pt")
    finally:
        adapter.close()
    assert len(adapter.history) == 2 and {"photometric", "smoothness"} <= set(adapter.history[0])
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["adaptation"]["worker"] == "process" and checkpoint["adaptation"]["steps"] == 2
    reloaded = rtstereo.load(str(path)).predict(pair.left, pair.right).disparity_px
    np.testing.assert_allclose(reloaded, served, atol=1e-4, equal_nan=True)


def test_an_adapt_steps_budget_reached_as_the_stream_ends_is_recorded(tiny_checkpoint, frames):
    """The freeze that says "--adapt-steps N reached" came with the next frame: a stream that ended first recorded
    frozen_by None for the same N steps (a 30-frame video: 3 steps of --adapt-steps 3, no reason given)."""
    config = OnlineConfig(**{**SMALL, "worker": "process", "steps": 1})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    adapter.start()
    try:
        adapter.offer(StereoPair(frames[0][0], frames[1][0], index=0))
        assert _wait(lambda: adapter._steps_applied() >= 1, timeout_s=120)
    finally:
        adapter.close()
    assert adapter.steps == 1 and adapter.frozen_by == "--adapt-steps 1 reached"
    assert (
        adapter.summary()["frozen_by"] == "--adapt-steps 1 reached"
        and "; frozen: --adapt-steps 1" in adapter.describe()
    )


def test_the_process_workers_last_step_at_close_is_reported_as_its_weights_are_kept(
    tiny_checkpoint, frames, monkeypatch
):
    """The child cancelled its reports' queue when the stream stopped it: the report of the step it had just finished
    was lost as it exited, while its weights were kept (a checkpoint of 2 steps with the loss of one, "first" and
    "last" the same step, and no loss line). The child's loop runs here, in this process, on stand-in queues."""
    import queue

    from rtstereo.train import online_process

    class Reports:
        def __init__(self, stop):
            self.stop, self.items, self.calls = stop, [], []

        def put(self, item):
            self.items.append(item)
            self.calls.append("put")
            self.stop.set()  # the stream ends while the child finishes this step

        def __getattr__(self, name):  # close, join_thread, cancel_join_thread
            return lambda: self.calls.append(name)

    network = rtstereo.train.adapt_network.load_adaptable(str(tiny_checkpoint))
    shared = {k: v.detach().clone() for k, v in network.module.state_dict().items()}
    stop, ready, frozen = threading.Event(), threading.Event(), threading.Event()
    crops, reports, stepping = queue.Queue(), Reports(stop), _Stepping()
    crops.put((frames[0][0][:64, :96], frames[1][0][:64, :96], 0, 96))
    monkeypatch.setattr(online_process.signal, "signal", lambda *args: None)  # the child ignores Ctrl+C: not pytest
    threads = torch.get_num_threads()
    try:
        online_process._child_main(
            network.spec.name, network.settings, shared, None, None, OnlineConfig(**SMALL), "cpu",
            threading.Lock(), SimpleNamespace(value=0), crops, reports, stop, frozen, ready, threading.Lock(), stepping,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert len(reports.items) == 1 and "photometric" in reports.items[0]
    assert reports.calls[-2:] == ["close", "join_thread"] and "cancel_join_thread" not in reports.calls, reports.calls
    assert stepping.values == [1, 0]  # the step under way marked (for a freeze to say it) until it was published


class _Stepping:
    """The child's mark of the step under way, with every value it was given."""

    def __init__(self):
        self.values = []

    @property
    def value(self):
        return self.values[-1] if self.values else 0

    @value.setter
    def value(self, number):
        self.values.append(number)


def test_a_frozen_child_marks_no_step_under_way(tiny_checkpoint, frames, monkeypatch):
    import queue

    from rtstereo.train import online_process

    network = rtstereo.train.adapt_network.load_adaptable(str(tiny_checkpoint))
    shared = {k: v.detach().clone() for k, v in network.module.state_dict().items()}
    stop, ready, frozen = threading.Event(), threading.Event(), threading.Event()
    frozen.set()
    crops, stepping, reported = queue.Queue(), _Stepping(), []
    reports = SimpleNamespace(put=reported.append, close=lambda: None, join_thread=lambda: None)
    crops.put((frames[0][0][:64, :96], frames[1][0][:64, :96], 0, 96))
    threading.Timer(1.0, stop.set).start()
    monkeypatch.setattr(online_process.signal, "signal", lambda *args: None)
    threads = torch.get_num_threads()
    try:
        online_process._child_main(
            network.spec.name, network.settings, shared, None, None, OnlineConfig(**SMALL), "cpu",
            threading.Lock(), SimpleNamespace(value=0), crops, reports, stop, frozen, ready, threading.Lock(),
            stepping,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert crops.empty() and stepping.values == [] and reported == []  # the crop was taken, and no step made


class _SteppingChild:
    """A child process still in its last step at close: it copies its weights under the lock for a while."""

    def __init__(self, lock):
        self.lock, self.alive, self.killed_while_copying = lock, True, None
        self.copying = threading.Event()
        threading.Thread(target=self._copy, daemon=True).start()
        assert self.copying.wait(5.0)

    def _copy(self):
        with self.lock:
            self.copying.set()
            time.sleep(0.5)
            self.copying.clear()

    def join(self, timeout=None):
        pass

    def is_alive(self):
        return self.alive

    def terminate(self):
        self.killed_while_copying, self.alive = self.copying.is_set(), False


def test_a_child_still_stepping_at_close_is_not_killed_in_the_middle_of_copying_its_weights(tmp_path, tiny_checkpoint):
    """Killed holding the lock, it kept it for good: save() waited for ever and the stream never ended."""
    config = OnlineConfig(**{**SMALL, "worker": "process"})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    adapter._started_s = 0.0  # as if started; the child is a stand-in that copies when close() kills it
    adapter._process = child = _SteppingChild(adapter._shared_lock)
    adapter.close(timeout_s=0.0)
    assert child.killed_while_copying is False
    assert adapter.save(tmp_path / "w.pt").is_file()


def test_saving_weights_a_dead_child_left_locked_fails_instead_of_waiting_for_ever(
    tmp_path, monkeypatch, tiny_checkpoint
):
    from rtstereo.train import online_process

    monkeypatch.setattr(online_process, "KILL_LOCK_WAIT_S", 0.1, raising=False)
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**{**SMALL, "worker": "process"}))
    assert adapter._shared_lock.acquire(timeout=1.0)  # as a child killed in the middle of its copy left it
    with pytest.raises(OSError, match="stopped while it copied its weights"):
        adapter.save(tmp_path / "w.pt")
    assert not (tmp_path / "w.pt").exists()


def test_the_process_worker_is_ready_before_the_stream_begins(tiny_checkpoint):
    """start() returns once the child has built its network: its start (torch's import, 1-2 CPU-seconds)
    does not run beside the stream's first frames."""
    config = OnlineConfig(**{**SMALL, "worker": "process"})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    assert adapter.ready_s is None
    adapter.start()
    try:
        assert adapter._child_ready.is_set() and adapter.ready_s is not None and adapter.ready_s > 0
    finally:
        adapter.close()


def test_until_counts_from_when_the_child_is_ready(tiny_checkpoint):
    """The child's start (1-2 s) came out of --adapt-until: --adapt-until 1 froze before the first frame."""
    config = OnlineConfig(**{**SMALL, "worker": "process", "until_s": 1.0})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    before = time.monotonic()
    adapter.start()
    try:
        assert adapter.ready_s is not None and adapter._started_s - before >= adapter.ready_s
    finally:
        adapter.close()


def test_a_child_that_fails_to_start_does_not_hold_the_stream(tiny_checkpoint, caplog):
    """A child that dies while starting: start() says so and returns at once; the stream goes on."""
    config = OnlineConfig(**{**SMALL, "worker": "process"})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    adapter._process._args = ("no-such-network", *adapter._process._args[1:])  # the child cannot build it
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="rtstereo.stream"):
        adapter.start()
    try:
        assert time.monotonic() - started < 30 and adapter.ready_s is None
        assert "ended before it was ready" in caplog.text
        assert adapter.frozen and adapter.error.startswith("the adaptation process ended before it was ready")
    finally:
        adapter.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs Unix signals")
def test_a_child_that_ends_without_a_report_stops_the_adaptation_and_says_so(tiny_checkpoint, frames, caplog):
    """A child killed (out of memory, a signal) sends no report: the stream went on offering crops to no one,
    and never said that adaptation had stopped."""
    config = OnlineConfig(**{**SMALL, "worker": "process"})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    adapter.start()
    try:
        os.kill(adapter._process.pid, signal.SIGKILL)
        adapter._process.join(30)
        with caplog.at_level("WARNING", logger="rtstereo.stream"):
            adapter.offer(StereoPair(frames[0][0], frames[1][0], index=0))
        assert adapter.frozen and adapter.error == "the adaptation process ended (exit code -9)"
        assert "online adaptation stopped after 0 steps: the adaptation process ended (exit code -9)" in caplog.text
    finally:
        adapter.close()


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs Unix signals")
def test_ctrl_c_leaves_the_child_to_the_stream(tiny_checkpoint, capfd):
    """Ctrl+C reaches the whole process group: the child must not die of it with a traceback of its own
    (the stream's process stops it and saves the weights)."""
    config = OnlineConfig(**{**SMALL, "worker": "process"})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    adapter.start()
    try:
        os.kill(adapter._process.pid, signal.SIGINT)
        time.sleep(1.0)
        assert adapter._process.is_alive()
    finally:
        adapter.close()
    assert "KeyboardInterrupt" not in capfd.readouterr().err


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="needs Unix process priorities")
def test_a_low_priority_child_is_lowered_at_once_before_its_own_start(tiny_checkpoint):
    """The child's start (a fresh interpreter importing torch) must not run at the stream's priority."""
    config = OnlineConfig(**{**SMALL, "worker": "process", "low_priority": True})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    adapter.start()
    try:
        assert os.getpriority(os.PRIO_PROCESS, adapter._process.pid) == LOWEST_PRIORITY
    finally:
        adapter.close()


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"every": 1.5}, "--adapt-every: expected a whole number of frames >= 1, got float 1.5"),
        ({"steps": "2"}, "--adapt-steps: expected a whole number of steps >= 1, or None, got str '2'"),
        ({"until_s": "60"}, "--adapt-until: expected seconds > 0, or None, got str"),
        ({"threads": 1.0}, "--adapt-threads: expected a whole number of threads >= 1, got float"),
        ({"threads": 99999}, "--adapt-threads 99999 is more than this machine can use"),
        ({"lr": "1e-4"}, "--adapt-lr: expected a learning rate > 0, got str '1e-4'"),
        ({"crop_hw": (64,)}, r"--adapt-crop: expected \(height, width\) in whole pixels > 0, got \(64,\)"),
        ({"losses": "photometric"}, r"--adapt-losses: expected a tuple of term names, .* got str 'photometric'"),
        ({"weights": {"photometric": "1"}}, r"weights: expected a number for each term, got photometric='1'"),
        # It read "... none are mixed in (synthetic_batch 0)", a setting online adaptation has not
        ({"weights": {"synthetic": 0.5}}, r"weights: synthetic=0.5 weighs rendered pairs, which online adaptation"),
    ],
)
def test_online_settings_of_the_wrong_type_are_input_errors(setting, match):
    """From Python: a bare TypeError from a comparison, or every=1.5 and crop_hw=(64,) taken as they were."""
    with pytest.raises(InputError, match=match):
        OnlineConfig(**setting)


def test_a_device_refusal_and_a_stop_whose_error_has_no_first_line_still_say_something(tiny_checkpoint, monkeypatch):
    """``str(exc).splitlines()[0]`` raised IndexError on a bare ``RuntimeError()``, and the stop said "" for an
    error whose text begins with a line break."""

    def refused(self, *args, **kwargs):
        raise RuntimeError()

    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.Module, "to", refused)
        with pytest.raises(InputError, match="^--device cpu: RuntimeError$"):
            adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    try:
        adapter._stop_on_error(RuntimeError("\nthe step failed\ndetails"))
    finally:
        adapter.close()
    assert adapter.frozen_by == "error" and adapter.error == "the step failed"


def test_cuda_on_pytorchs_cpu_build_says_what_to_install(tiny_checkpoint, monkeypatch):
    """--adapt --device cuda on PyTorch's CPU-only build said "Torch not compiled with CUDA enabled" alone."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(
        InputError,
        match=r"^--device cuda: PyTorch sees no CUDA GPU: this PyTorch .* is its CPU-only "
        r"build; install one built for CUDA \(pip uninstall -y torch && pip install torch .*\); use --device cpu$",
    ):
        adapting_predictor(str(tiny_checkpoint), device="cuda")


def test_a_closed_adapting_predictor_refuses_to_predict(tiny_checkpoint, frames):
    """It raised AttributeError: 'ClosedBackend' object has no attribute 'module'."""
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    predictor.close()
    with pytest.raises(InputError, match="predictor was closed; load the model again"):
        predictor.predict(frames[0][0], frames[1][0])
    assert adapter.frames_seen == 0


def test_freeze_stops_updates_until_resumed(tiny_checkpoint, frames):
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    pair = StereoPair(frames[0][0], frames[1][0], index=0)
    adapter.start()
    try:
        adapter.toggle_freeze()
        assert adapter.frozen and adapter.frozen_by == "frozen by the key f"
        for _ in range(5):
            predictor.predict_pair(pair)
        time.sleep(0.3)
        assert adapter.steps == 0 and adapter.version == 0
        adapter.toggle_freeze()
        assert not adapter.frozen
        before = _state(predictor.backend.module)
        assert _wait(lambda: (predictor.predict_pair(pair) is None) or adapter.steps >= 1)
        predictor.predict_pair(pair)  # takes the new weights before predicting
        assert not _same(before, _state(predictor.backend.module))
    finally:
        adapter.close()


def test_until_freezes_after_its_seconds(tiny_checkpoint, frames):
    now = [0.0]
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(until_s=5.0, **SMALL))
    adapter.clock = lambda: now[0]
    adapter.start()
    try:
        now[0] = 6.0
        predictor.predict_pair(StereoPair(frames[0][0], frames[1][0]))
        assert _wait(lambda: adapter.frozen)
        assert adapter.frozen_by == "--adapt-until 5 s reached" and adapter.steps == 0
    finally:
        adapter.close()


def test_saved_weights_predict_what_the_stream_served(tmp_path, tiny_checkpoint, frames):
    predictor, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    left, right = frames[0][0], frames[1][0]
    adapter.step(StereoPair(left, right))
    adapter.step(StereoPair(left, right))
    served = predictor.predict(left, right).disparity_px  # applies the newest weights first
    path = adapter.save(tmp_path / "online.pt")
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["adaptation"]["online"] and checkpoint["adaptation"]["steps"] == 2
    assert checkpoint["adapted_from"] == str(tiny_checkpoint)
    reloaded = rtstereo.load(str(path)).predict(left, right).disparity_px
    np.testing.assert_allclose(reloaded, served, atol=1e-4, equal_nan=True)
    original = rtstereo.load(str(tiny_checkpoint)).predict(left, right).disparity_px
    assert np.nanmax(np.abs(original - served)) > 1e-3


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_save_refuses_a_file_that_is_no_checkpoint(tmp_path, tiny_checkpoint, worker):
    """adapter.save("mycam.onnx") wrote a PyTorch file no ONNX reader opens (--adapt-save refuses it), save(None) a
    bare TypeError."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**{**SMALL, "worker": worker}))
    message = r"mycam.onnx: the adapted weights go to a PyTorch checkpoint \(.pt, .pth, .ckpt\); export it afterwards"
    with pytest.raises(InputError, match=message):
        adapter.save(tmp_path / "mycam.onnx")
    with pytest.raises(InputError, match="path: expected a checkpoint file .str or Path., got NoneType None"):
        adapter.save(None)
    assert list(tmp_path.iterdir()) == []
    assert adapter.save(tmp_path / "mycam.PT").is_file()


def test_models_says_how_an_online_checkpoint_was_adapted(tmp_path, tiny_checkpoint, frames, capsys):
    """`rtstereo models FILE` said only "adapted from ...", not the steps and frames the checkpoint records."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL, steps=1))
    adapter.offer(StereoPair(frames[0][0], frames[1][0]))
    adapter.step(StereoPair(frames[0][0], frames[1][0]))
    adapter.freeze("--adapt-steps 1 reached")
    path = adapter.save(tmp_path / "online.pt")
    assert main(["models", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\n  adapted online: 1 step on 1 frame; frozen: --adapt-steps 1 reached\n" in out, out


def test_bad_settings_and_untrainable_models_are_refused(tmp_path):
    with pytest.raises(InputError, match="--adapt-every must be >= 1"):
        OnlineConfig(every=0)
    with pytest.raises(InputError, match="--adapt-until must be > 0"):
        OnlineConfig(until_s=0)
    with pytest.raises(InputError, match="--adapt-worker: expected one of process, thread"):
        OnlineConfig(worker="fork")
    with pytest.raises(InputError, match="--adapt-losses: expected one or more of photometric, smoothness"):
        OnlineConfig(losses=("depth",))
    with pytest.raises(InputError, match="--adapt-lr: expected a learning rate > 0 and finite, got -1"):
        OnlineConfig(lr=-1.0)
    with pytest.raises(InputError, match="a classical method with no trainable weights"):
        adapting_predictor("sgbm")
    with pytest.raises(InputError, match="exported ONNX file"):
        adapting_predictor(str(tmp_path / "m.onnx"))


# ------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def videos(tmp_path_factory, frames):
    folder = tmp_path_factory.mktemp("videos")
    lefts, rights = sliding_frames(24)
    sbs = [np.concatenate([a, b], axis=1) for a, b in zip(lefts, rights)]
    return (
        write_video(folder / "l.mp4", lefts),
        write_video(folder / "r.mp4", rights),
        write_video(folder / "s.mp4", sbs),
    )


ADAPT = ["--adapt", "--adapt-every", "1", "--adapt-crop", "64x96", "--adapt-priority", "normal"]
THREAD = ["--adapt-worker", "thread"]


def test_video_adapt_saves_a_checkpoint_predict_loads(capsys, tmp_path, videos, tiny_checkpoint, frames):
    saved = tmp_path / "online.pt"
    code, out, err = run_cli(
        capsys,
        "video",
        *videos[:2],
        "--model",
        tiny_checkpoint,
        *ADAPT,
        "--adapt-save",
        saved,
        "-o",
        tmp_path / "o.mp4",
    )
    assert code == 0, err
    assert "(adapting online)" in err and "online adaptation: " in err and f"{saved}" in out
    assert torch.load(saved, weights_only=True)["adaptation"]["frames_seen"] == 24
    from rtstereo.io.images import write_image

    write_image(tmp_path / "l.png", frames[0][0])
    write_image(tmp_path / "r.png", frames[1][0])
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "l.png", tmp_path / "r.png", "--model", saved, "-o", tmp_path / "d.pfm"
    )
    assert code == 0, err


def test_live_adapt_on_a_side_by_side_file(capsys, tmp_path, videos, tiny_checkpoint):
    code, _, err = run_cli(capsys, "live", "--camera", f"uvc:{videos[2]}", "--model", tiny_checkpoint, *ADAPT, *THREAD)
    assert code == 0, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--adapt", "--model", "sgbm"], "--adapt: 'sgbm' is a classical method with no trainable weights"),
        (["--adapt", "--model", "m.onnx"], "--adapt: m.onnx is an exported ONNX file"),
        (["--adapt", "--model", "TINY", "--backend", "onnxruntime"], "--adapt trains the PyTorch network"),
        (["--adapt-save", "x.pt"], "--adapt-save: online adaptation options; add --adapt"),
        (["--adapt-every", "5"], "--adapt-every: online adaptation options; add --adapt"),
        (["--adapt-worker", "thread", "--adapt-lr", "1e-4"], "--adapt-lr, --adapt-worker: online adaptation options"),
        (["--adapt", "--model", "TINY", "--adapt-every", "0"], "--adapt-every must be >= 1"),
        (["--adapt", "--model", "TINY", "--adapt-threads", "0"], "--adapt-threads must be >= 1"),
        (["--adapt", "--model", "TINY", "--adapt-losses", "depth"], "--adapt-losses: expected one or more of photo"),
        (["--adapt", "--model", "TINY", "--adapt-lr", "-1"], "--adapt-lr: expected a learning rate > 0 and finite"),
        (["--adapt", "--model", "TINY", "--adapt-crop", "16x16"], "--adapt-crop 16x16: the network takes crops of"),
        (["--adapt", "--model", "TINY", "--engine", "ray", "--output-prefix", "p"], "not --adapt"),
        (["--engine", "ray", "--output-prefix", "p", "--adapt-every", "3"], "--adapt-every: online adaptation options"),
    ],
)
def test_adapt_errors_are_one_line(capsys, videos, tiny_checkpoint, argv, message):
    argv = [str(tiny_checkpoint) if a == "TINY" else a for a in argv]
    code, _, err = run_cli(capsys, "video", *videos[:2], *argv)
    assert code == 2 and message in err, err
    assert err.startswith("rtstereo video: error: ") and err.count("\n") == 1


def test_a_bad_output_is_said_before_the_adapter_starts(capsys, monkeypatch, tmp_path, videos, tiny_checkpoint):
    """The adapter's process (1-2 s to be ready) starts only once the outputs are made."""
    from rtstereo.train.online_process import ProcessAdapter

    started = []
    monkeypatch.setattr(ProcessAdapter, "start", lambda self: started.append(self))
    code, _, err = run_cli(capsys, "video", *videos[:2], "--model", tiny_checkpoint, "--adapt", "-o", tmp_path / "o")
    assert code == 2 and "expected a .mp4, .m4v, .mov file name" in err and not started


@pytest.mark.parametrize(
    "save, message",
    [
        ("w.onnx", "--adapt-save TMP/w.onnx: the adapted weights go to a PyTorch checkpoint (.pt, .pth, .ckpt)"),
        ("in.mp4", "--adapt-save TMP/in.mp4: the adapted weights go to a PyTorch checkpoint"),
        ("folder.pt", "--adapt-save TMP/folder.pt: a folder; give the file to write"),
        ("afile/w.pt", "--adapt-save TMP/afile/w.pt: TMP/afile is a file, not a folder"),
        # the stream ran, then wrote the file w.pt: a trailing separator names a folder
        ("w.pt/", "--adapt-save TMP/w.pt/: ends with a folder separator, which names a folder"),
    ],
)
def test_an_adapt_save_that_cannot_be_written_is_refused_before_the_model_loads(
    capsys, monkeypatch, tmp_path, videos, tiny_checkpoint, save, message
):
    """Said at once, not after the whole stream (and an input video is never replaced by a checkpoint)."""
    import rtstereo.train.online as online

    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "in.mp4").write_bytes(b"video")
    loaded = []
    monkeypatch.setattr(online, "adapting_predictor", lambda *a: loaded.append(a))
    code, _, err = run_cli(
        capsys, "video", *videos[:2], "--model", tiny_checkpoint, "--adapt", "--adapt-save", f"{tmp_path}/{save}"
    )
    assert code == 2 and message.replace("TMP", str(tmp_path)) in err and not loaded, err
    assert err.count("\n") == 1 and (tmp_path / "in.mp4").read_bytes() == b"video"


def test_a_summary_naming_the_adapt_save_checkpoint_is_refused_before_the_model_loads(
    capsys, monkeypatch, tmp_path, videos, tiny_checkpoint
):
    """Written after it at the stream's end, the summary replaced the adapted checkpoint ("written: w.pt, w.pt")."""
    import rtstereo.train.online as online

    loaded = []
    monkeypatch.setattr(online, "adapting_predictor", lambda *a: loaded.append(a))
    save = tmp_path / "w.pt"
    argv = ["video", *videos[:2], "--model", tiny_checkpoint, "--adapt", "--adapt-save", save, "--summary", save]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and not loaded, err
    assert f"--summary {save} is the --adapt-save checkpoint: the summary would replace the adapted weights" in err


@pytest.mark.parametrize("where", ["load", "start"])
def test_ctrl_c_before_the_stream_says_the_adapt_save_checkpoint_is_not_written(
    capsys, monkeypatch, tmp_path, videos, tiny_checkpoint, where
):
    """Ctrl-C while the adapter's process started (or the model loaded) said only "rtstereo video: interrupted"."""
    import rtstereo.cli.video
    from rtstereo.train.online import OnlineAdapter

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "start":
        monkeypatch.setattr(OnlineAdapter, "start", interrupt)
    else:
        monkeypatch.setattr(rtstereo.cli.video, "stream_predictor", interrupt)
    save = tmp_path / "w.pt"
    argv = ["video", *videos[:2], "--model", tiny_checkpoint, *ADAPT, *THREAD, "--adapt-save", save]
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "o.mp4")
    assert code == 130 and err == (
        f"rtstereo video: interrupted before the stream started: --adapt-save {save} not written (nothing was "
        "adapted)\n"
    )
    assert not save.exists()
    code, _, err = run_cli(capsys, *argv[:-2], "-o", tmp_path / "o.mp4")  # without --adapt-save: as it was
    assert code == 130 and err == "rtstereo video: interrupted\n"


def test_the_stream_starts_the_adapter_once(capsys, monkeypatch, tmp_path, videos, tiny_checkpoint):
    """The CLI makes the adaptation sink unstarted and starts it after the outputs: exactly once."""
    from rtstereo.train.online import OnlineAdapter

    started = []
    original = OnlineAdapter.start

    def start(self):
        started.append(self)
        original(self)

    monkeypatch.setattr(OnlineAdapter, "start", start)
    argv = ["video", *videos[:2], "--model", tiny_checkpoint, *ADAPT, *THREAD, "-o", tmp_path / "o.mp4"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert len(started) == 1 and started[0]._thread is not None


def test_the_window_key_f_freezes_and_resumes(monkeypatch, tiny_checkpoint):
    import cv2

    from rtstereo.cli.stream_adapt import bind_freeze_key
    from rtstereo.sinks.video import OpenCVWindow

    monkeypatch.setattr(cv2, "namedWindow", lambda *args: None)
    monkeypatch.setattr(cv2, "waitKeyEx", lambda wait_ms: ord("f"))
    window = OpenCVWindow()
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    sink = AdaptationSink(adapter)
    bind_freeze_key(window, sink)
    try:
        assert window.poll() is False and adapter.frozen
        assert window.poll() is False and not adapter.frozen
    finally:
        sink.close()


def test_default_the_hybrid_adapts_its_network_and_keeps_sgbm_beside_it(frames):
    from rtstereo.train import adapt_network

    if adapt_network.packaged_network_source() is None:
        pytest.skip("needs training/default/state.pt (a source checkout)")
    from rtstereo.runtime.hybrid import HybridPredictor

    predictor, adapter = adapting_predictor(
        "default", settings={"uniqueness": 20}, config=OnlineConfig(steps=1, **SMALL)
    )
    assert isinstance(predictor, HybridPredictor) and isinstance(predictor.network, AdaptingPredictor)
    assert predictor.settings["uniqueness"] == 20 and predictor.name.startswith("hybrid")
    before = _state(predictor.network.backend.module)
    sink = AdaptationSink(adapter)
    summary = Stream(GeneratedStream(frames, until=lambda: adapter.frozen, delay_s=0.01), predictor, sinks=[sink]).run()
    assert adapter.steps == 1 and adapter.frames_seen == summary.frames_written
    assert not _same(before, _state(predictor.network.backend.module))  # the network served is the adapted one
    result = predictor.predict(frames[0][0], frames[1][0])
    assert result.settings["network"].endswith("(adapting online)") and "sgbm" in result.timings_ms


def test_the_loss_before_and_after_never_averages_the_same_steps(tiny_checkpoint, frames):
    """With 3 steps the first 10 and the last 10 were one set: 'loss 0.1488 -> 0.1488', as if nothing changed."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    adapter.history = [{"photometric": value, "total": value, "frame": 0.0} for value in (0.3, 0.2, 0.1)]
    summary = adapter.summary()
    assert summary["loss_first_steps"]["photometric"] == 0.3 and summary["loss_last_steps"]["photometric"] == 0.1
    assert "photometric loss 0.3000 -> 0.1000 (mean of the first/last 1 step)" in adapter.describe()
    adapter.history = [{"photometric": float(i), "frame": 0.0} for i in range(25)]
    summary = adapter.summary()
    assert summary["loss_first_steps"]["photometric"] == 4.5 and summary["loss_last_steps"]["photometric"] == 19.5


def test_a_checkpoint_saved_without_a_step_says_so(tmp_path, tiny_checkpoint, caplog):
    """A stream shorter than one step: --adapt-save still writes (the starting weights), and says it."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    sink = AdaptationSink(adapter, tmp_path / "none.pt", start=False)
    with caplog.at_level("WARNING", logger="rtstereo.stream"):
        sink.close()
    assert sink.outputs == [str(tmp_path / "none.pt")]
    assert f"no adaptation step was made before the stream ended: {tmp_path / 'none.pt'}" in caplog.text


def test_a_failed_adaptation_process_counts_its_steps_in_words(caplog):
    """The process-based adapter said "stopped after 1 step(s)" where the in-process one says "1 step"."""
    import queue
    from types import SimpleNamespace

    from rtstereo.train.online_process import ProcessAdapter

    adapter = object.__new__(ProcessAdapter)  # only its report of the child's records is exercised
    adapter._records, adapter._shared_version = queue.Queue(), SimpleNamespace(value=1)
    adapter.steps, adapter.busy_s, adapter.history, adapter.error = 1, 0.0, [], None
    adapter.freeze = lambda reason: None
    adapter._records.put({"error": "out of memory"})
    with caplog.at_level("WARNING", logger="rtstereo"):
        adapter._collect()
    assert "online adaptation stopped after 1 step: out of memory" in caplog.text
    # its last step's report read in the same call as its error: it said "stopped after 0 steps", then "1 step"
    adapter._shared_version.value, adapter.steps, adapter.error = 2, 1, None
    adapter._records.put({"photometric": 0.1, "total": 0.1})
    adapter._records.put({"error": "out of memory"})
    with caplog.at_level("WARNING", logger="rtstereo"):
        adapter._collect()
    assert "online adaptation stopped after 2 steps: out of memory" in caplog.text and adapter.steps == 2


def test_a_step_crops_both_views_at_one_window(tiny_checkpoint):
    """The crop of the right view must be the left one's window: a match moved by the crop offset is a wrong one."""
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=OnlineConfig(**SMALL))
    rows, cols = np.mgrid[0:80, 0:128]
    left = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)  # each pixel names its place
    right = left.copy()
    right[..., 2] = 7
    seen = set()
    for _ in range(12):
        crop_left, crop_right = adapter.crop(StereoPair(left, right))
        assert crop_left.shape == crop_right.shape == (64, 96, 3)
        y0, x0 = int(crop_left[0, 0, 0]), int(crop_left[0, 0, 1])
        np.testing.assert_array_equal(crop_left, left[y0 : y0 + 64, x0 : x0 + 96])
        np.testing.assert_array_equal(crop_right, right[y0 : y0 + 64, x0 : x0 + 96])
        seen.add((y0, x0))
    assert len({y for y, _ in seen}) > 1 and len({x for _, x in seen}) > 1  # drawn at random, on both axes


def test_an_online_step_weighs_its_terms_and_labels_the_proxy_term_by_sgbm(tiny_checkpoint, frames):
    from rtstereo.train.proxy import proxy_disparity

    weights = {"photometric": 2.0, "smoothness": 0.5, "proxy": 0.25}
    config = OnlineConfig(**SMALL, losses=("photometric", "smoothness", "proxy"), weights=weights)
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    left, right = frames[0][0][:64, :96], frames[1][0][:64, :96]
    seen = {}
    user_terms = adapter.adapter.user_terms

    def spy(batch):
        seen.update(batch)
        return user_terms(batch)

    adapter.adapter.user_terms = spy
    record = adapter.train_on(left, right)
    assert record["total"] == pytest.approx(sum(w * record[name] for name, w in weights.items()), rel=1e-5)
    labels = np.nan_to_num(proxy_disparity(left, right, adapter.adapter.max_disp), nan=0.0)
    assert (labels > 0).any()
    np.testing.assert_array_equal(seen["disparity"][0].numpy(), labels)


@pytest.mark.parametrize("problem", ["folder", "full"])
def test_an_adapted_checkpoint_that_cannot_be_written_says_why_in_words(tmp_path, monkeypatch, problem):
    """It said "[Errno 21] Is a directory: 'w.pt.tmp' -> 'w.pt'" (a folder made there during the stream) and
    "[Errno 28] No space left on device: 'w.pt.tmp'", naming the temporary file."""
    from rtstereo.errors import OutputError
    from rtstereo.models.checkpoint import save_checkpoint

    save = tmp_path / "w.pt"

    class Adapter:  # what the sink asks of an OnlineAdapter at the end
        steps, error = 1, None

        def close(self, timeout_s):
            pass

        def describe(self):
            return "adapted"

        def save(self, path):
            save_checkpoint(path, "rtnet", {}, {"w": torch.zeros(1)})
            return path

    if problem == "folder":
        save.mkdir()
        reason = "a folder of that name is in the way"
    else:

        def full(payload, handle):
            raise OSError(28, "No space left on device", handle.name)

        monkeypatch.setattr(torch, "save", full)
        reason = "No space left on device"
    with pytest.raises(OutputError) as info:
        AdaptationSink(Adapter(), save, start=False).close()
    assert str(info.value) == f"cannot write the adapted checkpoint {save}: {reason}"
    assert [p.name for p in tmp_path.iterdir()] == (["w.pt"] if problem == "folder" else [])


# A step in PyTorch (native code, the interpreter lock released between its calls) until close() has given up on it,
# then TAIL_S more: the stream's process reached its exit meanwhile, and a daemon thread inside PyTorch as Python
# finalized aborted it ("terminate called without an active exception", exit code 134).
_SLOW_STEP = """
import sys, threading, time
import torch
from rtstereo.train import online
from rtstereo.train.adapt import Adapter

TAIL_S = 2.0
online.CLOSE_WAIT_S = 0.1
under_way = threading.Event()
adapters = []
original_start, original_terms = online.OnlineAdapter.start, Adapter.user_terms

def start(self):
    adapters.append(self)
    original_start(self)

def slow_terms(self, batch):
    under_way.set()
    square = torch.rand(300, 300)
    while not adapters[0]._closed.is_set():
        torch.mm(square, square)
    until = time.perf_counter() + TAIL_S
    while time.perf_counter() < until:
        torch.mm(square, square)
    return original_terms(self, batch)

online.OnlineAdapter.start, Adapter.user_terms = start, slow_terms
"""

_SLOW_STEP_IN_A_STREAM = (
    _SLOW_STEP
    + """
from rtstereo.cli import main

original_predict = online.AdaptingPredictor.predict_pair

def predict_pair(self, pair, *args, **kwargs):
    result = original_predict(self, pair, *args, **kwargs)
    if pair.index == 0:
        assert under_way.wait(60.0)  # the step has begun: the stream may end
    return result

online.AdaptingPredictor.predict_pair = predict_pair
sys.exit(main(sys.argv[1:]))
"""
)

_SLOW_STEP_NEVER_CLOSED = (
    _SLOW_STEP
    + """
import numpy as np
from rtstereo.train.online import OnlineConfig, adapting_predictor
from rtstereo.types import StereoPair

config = OnlineConfig(crop_hw=(64, 96), every=1, low_priority=False, worker="thread")
_, adapter = adapting_predictor(sys.argv[1], config=config)
adapter.start()
image = np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8)
adapter.offer(StereoPair(image, image, index=0))
assert under_way.wait(60.0)
print("leaving without close()", flush=True)
"""
)


def _child(script: str, *argv) -> subprocess.CompletedProcess:
    from pathlib import Path

    paths = [str(Path(rtstereo.__file__).parents[1]), str(Path(__file__).parent)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True, env=env, timeout=180
    )


def test_a_thread_workers_step_that_outlives_the_close_wait_ends_before_the_process_exits(
    tmp_path, videos, tiny_checkpoint
):
    """The stream's end waited 2 s for the step under way, then left it running in PyTorch: the summary was printed,
    then the process aborted (exit code 134). It now waits for the step, and says so."""
    saved = tmp_path / "online.pt"
    argv = ["video", *videos[:2], "--model", tiny_checkpoint, *ADAPT, *THREAD, "--adapt-save", saved]
    done = _child(_SLOW_STEP_IN_A_STREAM, *argv)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert "terminate called" not in done.stderr
    assert "online adaptation: waiting for the step under way to end" in done.stderr
    assert "online adaptation: 0 steps on 24 frames" in done.stderr and "24 frames in " in done.stdout
    assert f"written: {saved}" in done.stdout and saved.is_file()


def test_a_thread_worker_never_closed_is_waited_for_at_exit(tiny_checkpoint):
    """From Python, a process that ended without adapter.close() left the daemon thread inside PyTorch (exit 134)."""
    done = _child(_SLOW_STEP_NEVER_CLOSED, tiny_checkpoint)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert done.stdout == "leaving without close()\n" and "terminate called" not in done.stderr


def test_the_summary_records_every_terms_weight_defaults_too(tiny_checkpoint):
    """config.weights was {} unless weights were given: the record did not say what the steps were trained with."""
    config = OnlineConfig(**{**SMALL, "weights": {"smoothness": 0.5}})
    _, adapter = adapting_predictor(str(tiny_checkpoint), config=config)
    try:
        assert adapter.summary()["config"]["weights"] == {"photometric": 1.0, "smoothness": 0.5}
    finally:
        adapter.close()
