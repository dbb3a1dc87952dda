"""``--threads N`` / ``$RTSTEREO_THREADS`` bound the threads the hybrid starts or wakes itself."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import rtstereo
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.runtime.hole_choice import PART_POINTS, _in_parts
from rtstereo.runtime.providers import default_threads

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"

# The log-odds of both perceptrons on as many columns as one part of the hole choice holds.
LOGITS = """
import hashlib
import numpy as np
from rtstereo.runtime.confident_check import ConfidentSelector
from rtstereo.runtime.hole_choice import PART_POINTS, HoleSelector
rng = np.random.default_rng(0)
for selector in (HoleSelector.packaged(), ConfidentSelector.packaged()):
    columns = rng.standard_normal((len(selector.FEATURES), PART_POINTS)).astype(np.float32)
    print(hashlib.sha256(selector.column_logits(columns).tobytes()).hexdigest())
"""


def _logits_digest(blas_threads: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENBLAS_NUM_THREADS": str(blas_threads)}
    done = subprocess.run([sys.executable, "-c", LOGITS], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return hashlib.sha256(done.stdout.encode()).hexdigest()


def test_perceptrons_use_no_blas_threads_and_give_the_same_logits_on_any_core_count():
    """cv2.gemm ran the perceptrons on OpenBLAS, which woke a thread per core whatever ``--threads`` said, and
    whose thread count changed the sums: the log-odds differed between 1 and 2 OpenBLAS threads."""
    assert _logits_digest(1) == _logits_digest(2)


def _threads_of_parts(count: int, **kwargs) -> set[int]:
    seen: set[int] = set()
    _in_parts(lambda part: seen.add(threading.get_ident()), count, **kwargs)
    return seen


def test_the_hole_choices_parts_run_on_no_more_threads_than_given(monkeypatch):
    """The parts ran on two threads of their own whatever ``--threads`` (``$RTSTEREO_THREADS``) or ``threads=`` said."""
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)
    count = 4 * PART_POINTS
    assert threading.get_ident() not in _threads_of_parts(count)  # two threads of their own, as before
    assert _threads_of_parts(count, threads=1) == {threading.get_ident()}
    monkeypatch.setenv("RTSTEREO_THREADS", "1")  # as --threads 1 sets it
    assert _threads_of_parts(count) == {threading.get_ident()}
    assert threading.get_ident() not in _threads_of_parts(count, threads=2)


def test_one_thread_runs_sgbm_before_an_unguided_network_and_gives_the_same_map(monkeypatch):
    """``threads=1`` (or ``--threads 1``): SGBM ran on a worker thread beside the network's own thread."""
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)
    rng = np.random.default_rng(3)
    right = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    left = np.roll(right, 6, axis=1)
    alone = rtstereo.load("hybrid", network="rtnet-v5", threads=1)
    assert alone.threads == 1
    one = alone.predict(left, right)
    assert alone._sgbm_thread is None  # no worker thread was made
    beside = rtstereo.load("hybrid", network="rtnet-v5", threads=2)
    two = beside.predict(left, right)
    assert beside._sgbm_thread is not None
    assert one.disparity_px.tobytes() == two.disparity_px.tobytes()
    monkeypatch.setenv("RTSTEREO_THREADS", "1")  # --threads 1
    from_environment = rtstereo.load("hybrid", network="rtnet-v5")
    from_environment.predict(left, right)
    assert from_environment._sgbm_thread is None


def test_rtstereo_threads_of_thousands_of_digits_is_one_line_and_exit_code_2(capsys, monkeypatch, tmp_path):
    """int() refuses more than 4300 digits: a traceback and exit code 1."""
    monkeypatch.setenv("RTSTEREO_THREADS", "9" * 5000)
    with pytest.raises(InputError, match=r"^RTSTEREO_THREADS 999999999\.\.\. \(5000 digits\) is more than this"):
        default_threads()
    left, right = REPO / "examples" / "left.png", REPO / "examples" / "right.png"
    code = main(["predict", str(left), str(right), "--model", "sgbm", "-o", str(tmp_path / "d.pfm")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "(5000 digits)" in err and len(err) < 300, err
    monkeypatch.setenv("RTSTEREO_THREADS", "0000000001")  # leading zeros are no digits of a huge number
    assert default_threads() == 1
    monkeypatch.setenv("RTSTEREO_THREADS", "00")
    with pytest.raises(InputError, match="RTSTEREO_THREADS must be a whole number >= 1, got '00'"):
        default_threads()


@pytest.mark.parametrize("value", ["yes", "2", "-1", "true"])
def test_a_bad_rtstereo_ort_spin_is_refused_whatever_the_model(capsys, monkeypatch, tmp_path, value):
    """``sgbm`` ran as if the variable were fine, and bench skipped every ONNX row for it, row by row (exit code 1)."""
    monkeypatch.setenv("RTSTEREO_ORT_SPIN", value)
    left, right = REPO / "examples" / "left.png", REPO / "examples" / "right.png"
    predict = ["predict", str(left), str(right), "--model", "sgbm", "-o", str(tmp_path / "d.pfm")]
    bench = ["bench", "rtnet-v5,sgbm", "--sizes", "48x64", "--runs", "1"]
    for argv in (predict, bench):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err == f"rtstereo {argv[0]}: error: RTSTEREO_ORT_SPIN must be 0 or 1, got '{value}'\n", err
    assert not (tmp_path / "d.pfm").exists()


@pytest.mark.parametrize("variable", ["RTSTEREO_ORT_SPIN", "RTSTEREO_KEEP_FREED_MEMORY"])
def test_a_long_bad_switch_is_echoed_shortened_as_rtstereo_threads_is(monkeypatch, variable):
    """A 300-digit RTSTEREO_ORT_SPIN or RTSTEREO_KEEP_FREED_MEMORY came back whole, a screenful, where RTSTEREO_THREADS
    and every setting echo a value over 40 characters shortened (1aad9bb1, 69ad1b30)."""
    from rtstereo.runtime import heap
    from rtstereo.runtime.providers import cpu_spinning

    monkeypatch.setenv(variable, "9" * 300)
    with pytest.raises(InputError, match=rf"^{variable} must be 0 or 1\b.*got '999999999\.\.\. \(300 digits\)'$"):
        cpu_spinning() if variable == "RTSTEREO_ORT_SPIN" else heap._keep_wanted()


def test_training_matches_hints_and_labels_on_no_more_threads_than_the_run_has(monkeypatch, tmp_path):
    """``train --threads 1`` (``adapt --threads 1``) matched a batch's hints, and labelled unlabeled pairs, with SGBM on
    one thread per core."""
    torch = pytest.importorskip("torch")
    from rtstereo.train import hints, proxy

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert hints.match_workers() == 1 and hints._match_pool()._max_workers == 1
        sizes = []

        class Pool(proxy.ThreadPoolExecutor):
            def __init__(self, workers):
                sizes.append(workers)
                super().__init__(workers)

        monkeypatch.setattr(proxy, "ThreadPoolExecutor", Pool)
        monkeypatch.setattr(proxy, "_load_and_label", lambda pair, max_disp: "unreadable")
        monkeypatch.setattr(proxy, "find_unlabeled_pairs", lambda root: [proxy.UnlabeledPair("a", tmp_path, tmp_path)])
        with pytest.raises(rtstereo.errors.DatasetError), pytest.warns(rtstereo.errors.RtStereoWarning):
            proxy.ProxyStream(tmp_path, 1, (4, 4), 16.0, 0, "cpu")
        assert sizes == [1]
        torch.set_num_threads(2)
        assert hints.match_workers() == min(2, len(os.sched_getaffinity(0)))
    finally:
        torch.set_num_threads(before)


def test_a_huge_thread_count_is_named_as_given():
    """A whole-number setting went through a float: threads=10**30 was refused as 1000000000000000019884624838656."""
    from rtstereo.models.registry import coerce_setting

    for given in (10**30, str(10**30 + 1)):
        with pytest.raises(InputError, match=f"^threads {given} is more than this machine can use"):
            rtstereo.load("rtnet-v5", threads=given)
    assert coerce_setting("max_disp", "9007199254740993", 128) == 9007199254740993  # 2**53 + 1, exactly
