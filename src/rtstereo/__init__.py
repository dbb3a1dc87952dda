"""rtstereo: real-time deep-learning stereo reconstruction.

>>> import rtstereo
>>> m = rtstereo.load("sgbm")           # or "default", a network name, an .onnx file
>>> # r = m.predict(left_rgb_uint8, right_rgb_uint8); r.disparity_px  -> float32 (H, W), nan = invalid
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    DatasetError,
    EngineError,
    ExportError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
    OutputError,
    RtStereoError,
    RtStereoWarning,
)

__version__ = "0.1.0"

# OpenBLAS (bundled with OpenCV's wheels for cv2.gemm; NumPy's own) keeps its idle threads spinning for 2^28
# cycles after each product: on 2 cores the hybrid's next SGBM and network ran beside a spinning thread while
# cv2.gemm ran its perceptrons (default at 640x480, streams of 5 pairs on a loaded machine: 186 ms of CPU and
# 205 ms per pair, against 171 and 195). They now use np.einsum, no BLAS; the timeout still serves a program's own
# products. 2^4 cycles lets them sleep at once; the numbers are the same (the thread count is not changed). Read
# when the library loads: set here, before anything of this package imports OpenCV or NumPy.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# The public names that need NumPy, OpenCV or the model registry, and the module of each. They are
# imported on first use (PEP 562), so that importing the package is quick: the console script
# starts answering Ctrl-C with one line, not a traceback, before those libraries load.
_LAZY = {
    "load": "api",
    "predict": "api",
    "get_spec": "models",
    "list_models": "models",
    "Predictor": "runtime.predictor",
    "HybridPredictor": "runtime.hybrid",  # what load("default") and the other hybrids return
    "Calibration": "types",
    "DisparityResult": "types",
    "StereoPair": "types",
    # the warning categories predict() gives; every one derives from RtStereoWarning
    "CalibrationWarning": "geometry",
    "ResizeWarning": "runtime.predictor",
    "SmallInputWarning": "runtime.predictor",
    "UnmatchedBandWarning": "models.sgbm",
}

if TYPE_CHECKING:
    # The submodules `import rtstereo` gives on first use (rtstereo.io.read_image), named here for type checkers,
    # which do not see __getattr__ below: a module __getattr__ made every attribute of the package Any to them, so
    # that a misspelt rtstereo.lod("sgbm") passed mypy.
    from . import (  # noqa: F401 (for type checkers alone)
        api,
        batch,
        bench,
        bench_reference,
        cli,
        compare,
        confidence,
        data,
        datasets,
        errors,
        eval,
        export,
        geometry,
        io,
        metrics,
        models,
        pools,
        profiling,
        progress,
        rectify,
        runtime,
        scale,
        sinks,
        sources,
        stream,
        temporal,
        text,
        train,
        types,
        viewer,
    )
    from .api import load, predict
    from .geometry import CalibrationWarning
    from .models import get_spec, list_models
    from .models.sgbm import UnmatchedBandWarning
    from .runtime.hybrid import HybridPredictor
    from .runtime.predictor import Predictor, ResizeWarning, SmallInputWarning
    from .types import Calibration, DisparityResult, StereoPair

__all__ = [
    "__version__",
    "load",
    "predict",
    "list_models",
    "get_spec",
    "Predictor",
    "HybridPredictor",
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
    "EngineError",
    "ExportError",
    "RtStereoWarning",
    "CalibrationWarning",
    "ResizeWarning",
    "SmallInputWarning",
    "UnmatchedBandWarning",
]


if not TYPE_CHECKING:  # type checkers read the imports above instead

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
    # What the package offers, not what its own code imports (os, importlib, Any, annotations): the public names,
    # the dunders and the submodules; pkgutil reads the folder and imports none of them.
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    dunders = {name for name in globals() if name.startswith("__") and name.endswith("__")}
    return sorted({*__all__, *dunders, *submodules})
