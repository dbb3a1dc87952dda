"""The lean training step (device-side skip of non-finite steps, no reads of device values), the
batch prefetcher, and training without matplotlib."""

from __future__ import annotations

import math
import sys
import threading

import pytest
import torch

from rtstereo.models.registry import get_spec
from rtstereo.train import TrainConfig, train
from rtstereo.train.prefetch import Prefetcher
from rtstereo.train.step import TrainStep, make_optimizer


class TwoScales(torch.nn.Module):
    """A stand-in network: two predictions ``(N, H, W)``; ``nan`` ones when ``broken`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 1, 3, padding=1)
        self.broken = False

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> list[torch.Tensor]:
        out = self.conv(torch.cat([left, right], 1))[:, 0] * 10
        if self.broken:
            out = out * math.nan
        return [out, out]


def make_step(**config) -> tuple[TwoScales, TrainStep]:
    torch.manual_seed(0)
    model = TwoScales()
    values = dict(lr=0.1, warmup_steps=0, steps=10, grad_clip=1.0, **config)
    cfg = TrainConfig(**values)
    optimizer = make_optimizer(list(model.parameters()), cfg)
    return model, TrainStep(model, optimizer, None, get_spec("rtnet"), cfg, None, 32.0)


def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {
        "left": torch.rand(2, 3, 16, 24, generator=generator),
        "right": torch.rand(2, 3, 16, 24, generator=generator),
        "disparity": torch.rand(2, 16, 24, generator=generator) * 20 + 1,
    }


def test_a_step_with_a_non_finite_loss_changes_nothing_and_is_counted():
    model, step = make_step()
    step(batch(), 0)
    after_one = {k: v.clone() for k, v in model.state_dict().items()}
    moments = step.optimizer.state[model.conv.weight]["exp_avg"].clone()
    model.broken = True
    step(batch(), 1)
    for key, value in model.state_dict().items():
        assert torch.equal(value, after_one[key]), key
    state = step.optimizer.state[model.conv.weight]
    assert torch.equal(state["exp_avg"], moments) and float(state["step"]) == 1  # the skipped update left no trace
    loss, skipped = step.flush()
    assert math.isfinite(loss) and skipped == 1

    model.broken = False
    step(batch(), 2)
    assert not torch.equal(model.conv.weight, after_one["conv.weight"])
    assert step.flush()[1] == 0
    model.broken = True
    step(batch(), 3)
    loss, skipped = step.flush()
    assert math.isnan(loss) and skipped == 1  # a window of skipped steps only


def test_the_step_reads_no_value_back_from_the_device(monkeypatch):
    """Reading a device tensor from Python (float, bool, item, tolist) would wait for a GPU every step."""
    _, step = make_step()
    step(batch(), 0)  # first step: the optimiser creates its state

    def refuse(*_args, **_kwargs):
        raise AssertionError("the training step read a tensor's value on the host")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    for number in range(1, 4):
        step(batch(), number)
    monkeypatch.undo()
    loss, skipped = step.flush()
    assert math.isfinite(loss) and skipped == 0


def test_prefetched_batches_are_the_batches_of_their_steps():
    calls: list[tuple[int, str]] = []

    def make(step: int) -> dict[str, torch.Tensor]:
        calls.append((step, threading.current_thread().name))
        return {"left": torch.full((1,), float(step))}

    with Prefetcher(make, last_step=3) as batches:
        values = [float(batches(step)["left"]) for step in range(4)]
    assert values == [0.0, 1.0, 2.0, 3.0]
    assert [step for step, _ in calls] == [0, 1, 2, 3]  # nothing past the last step
    assert all(name.startswith("rtstereo-prefetch") for _, name in calls)


def test_a_failure_making_a_batch_surfaces_when_that_batch_is_asked_for():
    def make(step: int) -> dict[str, torch.Tensor]:
        if step == 2:
            raise KeyboardInterrupt
        return {"left": torch.zeros(1)}

    with Prefetcher(make) as batches:
        batches(0)
        batches(1)  # batch 2 failed in the background meanwhile: not yet anyone's concern
        with pytest.raises(KeyboardInterrupt):
            batches(2)


def test_a_second_ctrl_c_waits_for_the_batch_being_made():
    """Ctrl-C while a step waited for its batch, then Ctrl-C again while the prefetcher closed: its pool's join was
    cut short with the thread still making the batch in torch, and the process could abort as Python finalized
    ("terminate called without an active exception"), as `rtstereo synth` did."""
    import signal
    import time

    finished = threading.Event()

    def make(step: int) -> dict[str, torch.Tensor]:
        if step == 0:
            time.sleep(0.1)  # the step waits for this batch by now
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C as the step waits
            time.sleep(0.2)  # the prefetcher is closing by now
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C again
            time.sleep(0.3)
            finished.set()
        return {"left": torch.zeros(1)}

    with pytest.raises(KeyboardInterrupt), Prefetcher(make) as batches:
        batches(0)
    assert finished.is_set()


def test_training_runs_without_matplotlib_and_says_so_once(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    lines: list[str] = []
    config = TrainConfig(
        out_dir=str(tmp_path),
        settings={"max_disp": 32},
        steps=2,
        batch_size=1,
        crop_hw=(32, 64),
        val_size=1,
        val_hw=(32, 64),
        val_every=1,
        log_every=1,
        threads=1,
        precision="off",
    )
    summary = train(config, echo=lines.append)
    assert summary["step"] == 2 and (tmp_path / "last.pt").is_file()
    assert not (tmp_path / "curve.png").exists()
    notes = [line for line in lines if "matplotlib is not installed" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")  # the CLI prefixes "rtstereo train: "


def test_compile_wraps_the_network_and_the_checkpoint_keeps_plain_names(tmp_path, monkeypatch):
    from rtstereo.models.checkpoint import read_torch_file

    compiled = []

    class Compiled(torch.nn.Module):  # stands in for torch.compile's wrapper (minutes to build on a CPU)
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self._orig_mod = module

        def forward(self, *inputs):
            compiled.append(len(inputs))
            return self._orig_mod(*inputs)

    monkeypatch.setattr(torch, "compile", Compiled)
    config = TrainConfig(
        out_dir=str(tmp_path),
        settings={"max_disp": 32},
        steps=1,
        batch_size=1,
        crop_hw=(32, 64),
        val_size=1,
        val_hw=(32, 64),
        threads=1,
        precision="off",
        compile=True,
    )
    train(config, echo=lambda _line: None)
    assert compiled == [2]  # the training step ran through the wrapper; validation did not
    names = read_torch_file(tmp_path / "last.pt")["state_dict"]
    assert names and not any(name.startswith("_orig_mod.") for name in names)
