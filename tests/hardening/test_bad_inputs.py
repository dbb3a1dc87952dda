"""Every verb on a corpus of bad inputs: the right exit code, rtstereo's line first, never a traceback.

The cases run in this process through ``rtstereo.cli.main`` with file descriptors 1 and 2 captured, so
what C libraries print (libpng, FFmpeg, DepthAI) counts as output too. The table of what each case
printed is in the report of issue 23; ``python -m tests.hardening.corpus DIR`` prints it again.
"""

from __future__ import annotations

import importlib.util

import pytest

from .corpus import build, run_case


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {(c.name, c.verb): c for c in build(tmp_path_factory.mktemp("corpus"))}


def _case_ids() -> list[tuple[str, str]]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:  # the list of cases, built once at collection
        return [(c.name, c.verb) for c in build(Path(folder))]


@pytest.mark.parametrize("key", _case_ids(), ids=lambda key: f"{key[1]}-{key[0].replace(' ', '_')}")
def test_bad_input(corpus, key):
    case = corpus[key]
    if case.torch and importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch (extra torch)")
    outcome = run_case(case)
    assert "Traceback" not in outcome.stderr + outcome.stdout, outcome.stderr
    assert outcome.exit_code == case.exit_code, outcome.stderr
    if case.exit_code:
        assert outcome.stdout.strip() == "" or case.verb == "eval", f"stdout carries results only: {outcome.stdout}"
        lines = [line for line in outcome.stderr.splitlines() if line.strip()]
        assert lines, "a failure says why"
        assert lines[0].startswith(f"rtstereo {case.verb}: "), f"first line is not rtstereo's: {lines[0]}"
        assert case.first_line in lines[0], lines[0]
    else:
        noise = [line for line in outcome.stderr.splitlines() if line.strip() and not line.startswith("rtstereo")]
        assert noise == [], f"only rtstereo lines on stderr: {noise}"
