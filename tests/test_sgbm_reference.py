"""SGBM through `rtstereo eval` reproduces the reference figures of ../shared/data/README.md."""

from __future__ import annotations

import pytest

import rtstereo
from rtstereo.datasets import find_samples
from rtstereo.eval import evaluate

# scene -> (bad-2 %, D1 %, EPE px), from ../shared/data/README.md
REFERENCE = {
    "tsukuba": (4.8, 3.2, 0.36),
    "venus": (1.9, 1.5, 0.33),
    "cones": (11.1, 9.9, 1.24),
    "teddy": (16.1, 12.5, 1.43),
    "000070": (17.2, 13.4, 2.03),
    "FlyingThings3D_A-0032-0006/A-0032-0006": (45.0, 36.2, 8.40),
}


def test_sgbm_reproduces_reference_table(shared):
    samples = [s for s in find_samples(shared("data", "real")) if s.name in REFERENCE]
    assert len(samples) == len(REFERENCE)
    cache = {}

    def predictor_for(sample):
        hint = sample.max_disp_hint_px
        return cache.setdefault(hint, rtstereo.load("sgbm", max_disp=hint))

    report = evaluate(predictor_for, samples, model="sgbm")
    for scene in report.scenes:
        bad2, d1, epe = REFERENCE[scene.name]
        assert scene.metrics["bad-2"] == pytest.approx(bad2, abs=0.1), scene.name
        assert scene.metrics["d1"] == pytest.approx(d1, abs=0.1), scene.name
        assert scene.metrics["epe"] == pytest.approx(epe, abs=0.01), scene.name
