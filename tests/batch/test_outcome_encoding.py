"""The summary table is UTF-8 whatever the locale: pairs named in another script must not fail it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import sys
from rtstereo.batch.outcome import BatchSummary, PairOutcome
folder = sys.argv[1]
name = "caf\u00e9_\u6771\u4eac"  # escaped: the command line itself is ASCII under this locale
summary = BatchSummary([PairOutcome(0, name, f"l/{name}.png", f"r/{name}.png", status="done")], listed=1)
summary.write_table(folder + "/summary.csv")
"""


def test_the_summary_is_utf8_under_an_ascii_locale(tmp_path):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "café_東京" in (tmp_path / "summary.csv").read_text(encoding="utf-8")
