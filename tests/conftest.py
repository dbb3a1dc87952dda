"""Shared test fixtures: where ../shared is, and small generated stereo data."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTSTEREO_SHARED", REPO.parent / "shared"))


def pytest_configure(config):  # noqa: ARG001 - pytest's hook signature
    """Ctrl-C as Python sets it up in a terminal, also where the suite was started with SIGINT ignored (a shell
    without job control ignores it in commands it starts with ``&``, and ``nohup`` keeps that): the tests of
    Ctrl-C send SIGINT and expect Python's ``default_int_handler`` to turn it into ``KeyboardInterrupt``."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data beside the repository; set RTSTEREO_SHARED)")
    return path


BENCHMARKS = REPO / "benchmarks"


def benchmark_script(name: str):
    """``benchmarks/<name>.py`` as a module named ``<name>_under_test`` (``benchmarks/`` on ``sys.path``: the scripts
    import their neighbours by name)."""
    import importlib.util

    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``rtstereo ARGV...`` in this process, every verb registered: ``(exit code, stdout, stderr)``."""
    from rtstereo.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(name="run_cli")
def fixture_run_cli(capsys) -> Callable[..., tuple[int, str, str]]:
    """:func:`run_cli` with ``capsys`` given, as a fixture: ``run_cli("video", ...)`` returns ``(exit code, stdout,
    stderr)`` (the stream tests', and test_fit_crop's for video and live)."""
    return functools.partial(run_cli, capsys)


@pytest.fixture
def cli(monkeypatch, capsys):
    """``rtstereo bench`` in this process, for test_bench.py and test_bench_reference.py: ``cli("bench", ...)`` returns
    ``(exit code, stdout, stderr)``. Only the bench verb is registered, so its parser is built without the other
    verbs' imports. (A test module with a ``cli`` fixture of its own, as export's, uses that one.)"""
    from rtstereo.cli import main

    monkeypatch.setattr("rtstereo.cli.VERBS", ["bench"])

    def run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def shared():
    """Callable fixture: ``shared("data", "real")`` returns the path or skips."""
    return shared_path


def refuse_json_writes(monkeypatch, code: int) -> None:
    """Make ``Path.write_text`` of every ``.json`` file fail with the ``OSError`` of ``code`` (``errno.ENOSPC``: a
    full disk; ``errno.EDQUOT``: a quota), as results files meet a full disk; other files are written."""
    write_text = Path.write_text

    def refused(path, *args, **kwargs):
        if ".json" in path.name:
            raise OSError(code, os.strerror(code), str(path))
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", refused)


HOLD_LOCK = """
import sys
from rtstereo.io.lock import FileLock
lock = FileLock(sys.argv[1])
assert lock.acquire(), "the lock is held already"
print("held", flush=True)
sys.stdin.read()  # until the test closes it
"""


@contextlib.contextmanager
def lock_held_elsewhere(path: str | Path) -> Iterator[int]:
    """A second Python process holds the :class:`rtstereo.io.lock.FileLock` on ``path`` while the block runs (its
    process id is given); it has taken the lock before the block starts, and lets it go when the block ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert holder.stdout.readline() == b"held\n", "the second process did not take the lock"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


@contextlib.contextmanager
def sigterm_stand_in() -> Iterator[None]:
    """SIGTERM handled, in the block, by a stand-in that raises (the default action would end pytest); at the
    block's end, the check that the code under test put that handler back."""

    def reached(number, frame):
        raise RuntimeError("SIGTERM reached the process's own handler")

    previous = signal.signal(signal.SIGTERM, reached)
    try:
        yield
        assert signal.getsignal(signal.SIGTERM) is reached, "the process's own SIGTERM handler was not put back"
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm_at_call(monkeypatch, owner, name: str, call: int = 3) -> None:
    """``owner.name`` (a function of a module, or a method of a class) sends this process SIGTERM at its
    ``call``-th call, then does its work."""
    original, calls = getattr(owner, name), []

    def terminating(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, terminating)


def warp_right_to_left(right, disparity):
    """The right views, float ``(N, C, H, W)``, sampled at ``(x - d, y)`` for ``disparity`` ``(N, H, W)`` (bilinear,
    the border repeated beyond it): the left views as the right ones see them."""
    import torch
    import torch.nn.functional as F

    _, _, height, width = right.shape
    xs = torch.arange(width, dtype=torch.float32)[None, None] - disparity
    ys = torch.arange(height, dtype=torch.float32)[None, :, None].expand_as(xs)
    grid = torch.stack([2 * xs / (width - 1) - 1, 2 * ys / (height - 1) - 1], -1)
    return F.grid_sample(right, grid, mode="bilinear", padding_mode="border", align_corners=True)


def write_middlebury_scene(scene: Path, left: np.ndarray, right: np.ndarray, disparity_px: float) -> Path:
    """A Middlebury-2014-style scene folder (made with its parents): ``im0.png`` and ``im1.png`` of the uint8 RGB
    views, and ``disp0GT.pfm``, ``disparity_px`` everywhere. Returns the folder."""
    import cv2

    from rtstereo.io.pfm import write_pfm

    scene.mkdir(parents=True)
    cv2.imwrite(str(scene / "im0.png"), left[:, :, ::-1])
    cv2.imwrite(str(scene / "im1.png"), right[:, :, ::-1])
    write_pfm(scene / "disp0GT.pfm", np.full(left.shape[:2], disparity_px, np.float32))
    return scene


def make_textured_pair(height: int = 48, width: int = 64, disparity_px: int = 4, seed: int = 0):
    """A random-texture pair whose right view is the left shifted by a constant disparity."""
    rng = np.random.default_rng(seed)
    wide = rng.integers(0, 256, size=(height, width + disparity_px, 3), dtype=np.uint8)
    # left x shows wide[x]; right x shows wide[x + d]: so left x matches right x - d (positive disparity)
    left = wide[:, :width]
    right = wide[:, disparity_px:]
    return np.ascontiguousarray(left), np.ascontiguousarray(right)


@pytest.fixture
def textured_pair():
    return make_textured_pair()


def undo_gwcnet_fixture_training_step(net, left, right) -> None:
    """Restore the BatchNorm running statistics from before the checkpoint's one training pass.

    The fixture files were written after the training-mode forward that produced ``disp_train_*``
    (``num_batches_tracked`` is 1 in the 3D layers, 2 in the feature trunk which sees left and right),
    while ``disp_eval`` was computed before it. A training pass of our own yields the same batch
    statistics, so the momentum updates (running = 0.9 running + 0.1 batch, variance unbiased) are
    undone exactly, newest first.
    """
    import torch  # only the GwcNet tests need it

    if int(net.dres0[0][1].num_batches_tracked) == 0:
        return
    batch_stats: dict = {}

    def record(module, inputs, _output):
        x = inputs[0]
        dims = [0, *range(2, x.dim())]
        batch_stats.setdefault(module, []).append((x.mean(dims), x.var(dims, unbiased=True)))

    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d)]
    saved = {name: value.clone() for name, value in net.state_dict().items()}
    hooks = [m.register_forward_hook(record) for m in norms]
    net.train()
    with torch.no_grad():
        net(left, right)
    for hook in hooks:
        hook.remove()
    net.load_state_dict(saved)
    for module in norms:
        momentum = module.momentum
        for mean, var in reversed(batch_stats[module]):
            module.running_mean.copy_((module.running_mean - momentum * mean) / (1 - momentum))
            module.running_var.copy_((module.running_var - momentum * var) / (1 - momentum))
    net.eval()


@pytest.fixture
def undo_gwcnet_training_step():
    """The GwcNet golden checkpoints' BatchNorm statistics as they were when ``disp_eval`` was made."""
    return undo_gwcnet_fixture_training_step
