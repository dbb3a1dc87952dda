"""rtstereo.pools: the thread pools that run torch or OpenCV are awaited through a second Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from rtstereo.pools import map_through_interrupts


def _second_ctrl_c_work():
    """Work for two items on two threads, and the event set when the slower has finished: the first to start
    raises Ctrl-C's interrupt (as main's wait on it receives Ctrl-C); the second sends Ctrl-C again while main
    waits for the pool, and finishes half a second later."""
    started, rendering, finished = [], threading.Event(), threading.Event()
    lock = threading.Lock()

    def work(*args, **kwargs):
        with lock:
            order = len(started)
            started.append(order)
        if order == 0:
            rendering.wait(5.0)
            raise KeyboardInterrupt
        rendering.set()
        time.sleep(0.2)  # the main thread is in the pool's wait by now
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C again
        time.sleep(0.3)
        finished.set()
        return np.zeros((4, 4), np.float32)

    return work, finished


def _proxy_labels(monkeypatch, work):
    from rtstereo.train import adapt

    monkeypatch.setenv("RTSTEREO_THREADS", "2")
    monkeypatch.setattr(adapt, "proxy_disparity", work)
    image = np.zeros((4, 4, 3), np.uint8)
    return lambda: adapt.proxy_labels([adapt.UserPair(name, image, image) for name in "ab"], 16.0)


def _pair_hints(monkeypatch, work):
    from rtstereo.train import adapt

    monkeypatch.setenv("RTSTEREO_THREADS", "2")
    monkeypatch.setattr(adapt, "runtime_hints", work)
    image = np.zeros((4, 4, 3), np.uint8)
    return lambda: adapt.pair_hints([adapt.UserPair(name, image, image) for name in "ab"], {})


def _proxy_stream(monkeypatch, work, tmp_path):
    from rtstereo.train import proxy

    monkeypatch.setattr(proxy, "match_workers", lambda: 2)
    monkeypatch.setattr(proxy, "_load_and_label", work)
    pairs = [proxy.UnlabeledPair(name, tmp_path / "l.png", tmp_path / "r.png") for name in "ab"]
    monkeypatch.setattr(proxy, "find_unlabeled_pairs", lambda root: pairs)
    return lambda: proxy.ProxyStream(tmp_path, 1, (4, 4), 16.0, 0, "cpu")


def _batch_hints(monkeypatch, work):
    from rtstereo.train import hints

    pool = ThreadPoolExecutor(2)
    monkeypatch.setattr(hints, "_match_pool", lambda: pool)
    monkeypatch.setattr(hints, "runtime_hints", work)
    images = torch.zeros(2, 3, 4, 4)
    return lambda: hints.tensor_runtime_hints(images, images, {})


@pytest.mark.parametrize("site", ["adapt proxy labels", "adapt pair hints", "train proxy stream", "train hints"])
def test_a_second_ctrl_c_waits_for_the_threads_in_opencv(monkeypatch, tmp_path, site):
    """Ctrl-C, then Ctrl-C again while the pool's threads were joined: the join was cut short with a thread still
    in OpenCV (SGBM), and the process could abort as Python finalized ("terminate called without an active
    exception"), as `rtstereo synth` did. The call now raises only once no thread is left in the work."""
    work, finished = _second_ctrl_c_work()
    call = {
        "adapt proxy labels": lambda: _proxy_labels(monkeypatch, work),
        "adapt pair hints": lambda: _pair_hints(monkeypatch, work),
        "train proxy stream": lambda: _proxy_stream(monkeypatch, work, tmp_path),
        "train hints": lambda: _batch_hints(monkeypatch, work),
    }[site]()
    with pytest.raises(KeyboardInterrupt):
        call()
    assert finished.is_set()


def test_map_through_interrupts_keeps_the_order_and_raises_a_worker_error():
    assert map_through_interrupts(ThreadPoolExecutor(2), lambda x: -x, range(5)) == [0, -1, -2, -3, -4]
    with pytest.raises(ZeroDivisionError):
        map_through_interrupts(ThreadPoolExecutor(2), lambda x: 1 / x, [1, 0, 2])
    shared = ThreadPoolExecutor(1)
    assert map_through_interrupts(shared, str, [1], own_pool=False) == ["1"]
    assert shared.submit(str, 2).result() == "2"  # a shared pool is left running


def test_work_not_begun_is_not_waited_for():
    """With more work than threads, Ctrl-C left work in the pool's queue, cancelled there, which ``wait`` counts as
    done only once a worker has picked it up: none did, and the wait hung for good."""
    ran: list[int] = []

    def work(item):
        ran.append(item)
        if item == 0:
            time.sleep(0.2)  # the others are queued behind it
            raise KeyboardInterrupt  # as main's wait on it receives Ctrl-C
        time.sleep(0.3)  # the last is still queued when the first has failed
        return item

    outcome: list[BaseException] = []

    def call():
        try:
            map_through_interrupts(ThreadPoolExecutor(1), work, range(3))
        except BaseException as exc:  # noqa: B036 - the outcome is the test's
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(10.0)
    assert not caller.is_alive(), "the wait for work not begun hung"
    assert isinstance(outcome[0], KeyboardInterrupt) and 2 not in ran
