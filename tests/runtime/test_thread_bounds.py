"""``--threads N`` / ``$RTSTEREO_THREADS`` bound the threads the hybrid starts or wakes itself."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

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
