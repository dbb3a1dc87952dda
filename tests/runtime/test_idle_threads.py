"""Idle threads of the numeric libraries sleep after their work instead of spinning against the next stage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# cv2.gemm, which OpenCV's wheels run on a bundled, threaded OpenBLAS (the hybrid's perceptrons used it once).
AFTER_A_PRODUCT = """
import os, time
import rtstereo  # before OpenCV, as a program using the package imports it
import cv2, numpy as np
cv2.gemm(np.ones((32, 16), np.float32), np.ones((16, 16384), np.float32), 1.0, None, 0.0)
start = time.process_time()
time.sleep(0.1)
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"), (time.process_time() - start) * 1e3)
"""


def _after_a_product(**environment: str) -> tuple[str, float]:
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    env.update(PYTHONPATH=str(SRC), **environment)
    done = subprocess.run([sys.executable, "-c", AFTER_A_PRODUCT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    timeout, burnt_ms = done.stdout.split()
    return timeout, float(burnt_ms)


CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@pytest.mark.skipif(CORES < 2, reason="one core: OpenBLAS starts no thread to spin")
def test_openblas_threads_sleep_after_a_product_and_a_timeout_set_by_the_user_is_kept():
    timeout, burnt_ms = _after_a_product()
    # OpenBLAS's default (2^28 cycles) burnt 14-50 ms of CPU in the 100 ms after the product on 2 cores
    assert timeout == "4" and burnt_ms < 5.0, burnt_ms
    assert _after_a_product(OPENBLAS_THREAD_TIMEOUT="8")[0] == "8"
