"""rtstereo: real-time deep-learning stereo reconstruction.

>>> import rtstereo
>>> m = rtstereo.load("sgbm")           # or "default", a network name, an .onnx file
>>> # r = m.predict(left_rgb_uint8, right_rgb_uint8); r.disparity_px  -> float32 (H, W), nan = invalid
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import load, predict
from .errors import (
    CheckpointError,
    DatasetError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
    OutputError,
    RtStereoError,
)
from .models import get_spec, list_models
from .runtime.predictor import Predictor
from .types import Calibration, DisparityResult, StereoPair

__all__ = [
    "__version__",
    "load",
    "predict",
    "list_models",
    "get_spec",
    "Predictor",
    "Calibration",
    "DisparityResult",
    "StereoPair",
    "RtStereoError",
    "InputError",
    "ModelNotFoundError",
    "CheckpointError",
    "DatasetError",
    "OutputError",
    "MissingDependencyError",
]
