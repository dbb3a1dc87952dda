"""Data-parallel training: ``torchrun --nproc_per_node 2 -m rtstereo train`` on this CPU (gloo)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from rtstereo.errors import InputError
from rtstereo.models.checkpoint import read_torch_file
from rtstereo.train import distributed, loop
from rtstereo.train.distributed import Ranks, ranks_from_environment

TINY_RUN = [
    "--batch-size", "2", "--crop", "32x64", "--max-disp", "32", "--data-max-disp", "16",
    "--val-size", "2", "--val-hw", "32x64", "--threads", "1", "--warmup-steps", "1",
    "--log-every", "1", "--val-every", "100", "--checkpoint-every", "2", "--precision", "off",
]  # fmt: skip


def torchrun(*args: str, program: tuple[str, ...] = ("-m", "rtstereo")) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 -m rtstereo train ARGS`` (a free port of its own)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += [*program, "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow  # two launches of two processes: about 20 s on 2 cores
def test_torchrun_two_processes_train_log_once_and_resume(tmp_path):
    started = time.perf_counter()
    first = torchrun("-o", str(tmp_path), "--steps", "3", *TINY_RUN)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("done: step 3") == 1  # rank 0 reports for both

    records = loop.read_log(tmp_path / "log.jsonl")
    starts = [r for r in records if r["kind"] == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2  # one writer
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "config.json", "curve.png", "last.pt", "log.jsonl"]
    last = read_torch_file(tmp_path / "last.pt")
    assert last["step"] == 3
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in last["state_dict"])  # unwrapped weights

    resumed = torchrun("--resume", str(tmp_path / "last.pt"), "--steps", "5")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = loop.read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in records if r["kind"] == "start"] == [0, 3]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    assert read_torch_file(tmp_path / "last.pt")["step"] == 5
    print(f"two torchrun launches: {time.perf_counter() - started:.1f} s")


def test_a_rank_that_fails_says_so_in_one_line_and_the_others_too(tmp_path):
    """Rank 1 raising printed its traceback, and rank 0, whose exchange of gradients lost it, gloo's; each rank now
    says in one line which it is and why it stopped (torchrun's own report follows, naming rank 1 the root cause)."""
    failing = str(Path(__file__).with_name("failing_rank.py"))
    run = torchrun("-o", str(tmp_path), "--steps", "3", *TINY_RUN, program=(failing,))
    assert run.returncode == 1 and "[rank0]:" not in run.stderr and "[rank1]:" not in run.stderr, run.stderr[-3000:]
    assert "rtstereo train: error: rank 1 of 2 failed: RuntimeError: boom on rank 1\n" in run.stderr, run.stderr
    said = "rtstereo train: error: rank 0 of 2 stopped: another rank ended (Connection closed by peer"
    assert said in run.stderr and "); its line says why\n" in run.stderr, run.stderr


def test_each_rank_trains_on_batches_of_its_own(tmp_path):
    config = loop.TrainConfig(out_dir=str(tmp_path), settings={"max_disp": 32}, crop_hw=(32, 64), batch_size=1)
    stream = loop.SyntheticStream(config, torch.device("cpu"), 16.0)
    ranks = [Ranks(rank, 2, rank) for rank in range(2)]
    batches = [stream(distributed.global_batch_index(5, r))["left"] for r in ranks]
    assert not torch.equal(*batches)
    assert torch.equal(batches[1], stream(11)["left"])  # step 5 of rank 1 is batch 11 of the run's stream
    assert distributed.global_batch_index(5, Ranks()) == 5  # one process: the stream as before


def test_a_sum_returns_once_gloos_worker_thread_has_let_go_of_the_tensor(monkeypatch):
    """gloo's collective was complete before its worker thread dropped the work's references to the tensor; a rank
    that left at once had that thread ask for the GIL while Python was finalizing, and aborted ("terminate called
    without an active exception"). A fake all_reduce whose thread holds the tensor 50 ms after completing it."""
    import torch.distributed as dist

    threads = []

    def all_reduce(values, op=None):  # noqa: ARG001 - torch.distributed's signature
        values.mul_(2)
        # A C++ reference to the tensor, as the work's (the graph of a product saves it), dropped by the thread
        # after the caller has its sum.
        held = [torch.ones(1, requires_grad=True) * values]
        threads.append(threading.Thread(target=lambda: (time.sleep(0.05), held.clear())))
        threads[-1].start()

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    values = torch.ones(3)
    assert distributed.all_ranks_sum(values, Ranks(0, 2, 0)) is values
    assert values._use_count() == 1  # Python's own reference alone: nothing left for a C++ thread to release
    assert values.tolist() == [2.0, 2.0, 2.0]
    threads[0].join()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RANK": "one", "WORLD_SIZE": "2"}, "whole numbers"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "does not fit"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "does not fit"),
    ],
)
def test_bad_launcher_environments_are_refused(environ, message):
    with pytest.raises(InputError, match=message):
        ranks_from_environment(environ)


def test_a_world_without_a_rendezvous_address_is_refused(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(InputError, match="torchrun --nproc_per_node"):
        distributed.start(Ranks(0, 2, 0), torch.device("cpu"))


def test_cuda_ranks_get_their_own_gpu(monkeypatch):
    assert distributed.training_device("cuda", Ranks(1, 2, 1)) == "cuda:1"
    assert distributed.training_device("cuda", Ranks()) == "cuda"
    assert distributed.training_device("cpu", Ranks(1, 2, 1)) == "cpu"
    # torchrun --nproc_per_node 2 ... --device cuda:0: both processes on GPU 0, which NCCL refused with a traceback
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    with pytest.raises(InputError, match=r"^--device cuda:0 in a data-parallel run of several processes on one "):
        distributed.training_device("cuda:0", Ranks(1, 2, 1))
    assert distributed.training_device("cuda:1", Ranks()) == "cuda:1"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(InputError, match="give --device cuda, and each process takes the GPU of its LOCAL_RANK"):
        distributed.training_device("cuda:0", Ranks(0, 2, 0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert distributed.training_device("cuda:0", Ranks(1, 2, 0)) == "cuda:0"  # one process on each of two machines
