"""rtstereo: real-time deep-learning stereo reconstruction.

>>> import rtstereo
>>> m = rtstereo.load("sgbm")           # or "default", a network name, an .onnx file
>>> # r = m.predict(left_rgb_uint8, right_rgb_uint8); r.disparity_px  -> float32 (H, W), nan = invalid
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    DatasetError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
    OutputError,
    RtStereoError,
)

__version__ = "0.1.0"

# The public names that need NumPy, OpenCV or the model registry, and the module of each. They are
# imported on first use (PEP 562), so that importing the package is quick: the console script
# starts answering Ctrl-C with one line, not a traceback, before those libraries load.
_LAZY = {
    "load": "api",
    "predict": "api",
    "get_spec": "models",
    "list_models": "models",
    "Predictor": "runtime.predictor",
    "Calibration": "types",
    "DisparityResult": "types",
    "StereoPair": "types",
}

if TYPE_CHECKING:
    from .api import load, predict
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule, as `import rtstereo` once loaded them
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
