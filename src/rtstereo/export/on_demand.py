"""Registry networks on ``--backend onnxruntime``: exported on first use, once per padded input size.

The ONNX Runtime layer (:func:`rtstereo.runtime.onnx.predictor_from_export`) runs whatever export
function it is given and imports nothing from the exporter; this module, above both, hands it the
exporter's verified disk cache (:func:`.onnx_export.export_cached`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..models.registry import ModelSpec
from ..runtime.onnx import ExportedModel, predictor_from_export
from ..runtime.predictor import Predictor
from .onnx_export import export_cached


def predictor_from_module(
    spec: ModelSpec,
    settings: dict[str, Any],
    module: Any,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    cache: str | Path | None = None,
    **options: Any,
) -> Predictor:
    """A registry network run by ONNX Runtime, exported on first use at each padded input size.

    Each new size is exported once, checked against PyTorch on that very input and cached on disk
    (under the model, its settings, a hash of its weights, the size and the precision), so a second
    predictor of the same network finds the verified file.

    Args:
        spec: the registry entry (normalisation, size divisor).
        settings: resolved settings the module was built with.
        module: the PyTorch module with its weights loaded.
        device, precision: as for :func:`rtstereo.runtime.onnx.load_onnx`; ``fp16`` exports a
            half-precision model.
        cache: folder for the exports (default ``<rtstereo cache>/onnx``).
        options: ONNX Runtime options, passed on to :func:`rtstereo.runtime.onnx.predictor_from_export`
            (``threads``, ``providers``, ``engine_cache``, ``parity``).

    Returns:
        A :class:`~rtstereo.runtime.predictor.Predictor` that pads (not resizes) like the PyTorch one.

    Raises:
        InputError: a precision other than fp32/fp16, or a bad device.
    """
    frozen_settings = dict(settings)
    fp16 = precision == "fp16"

    def export(size_hw: tuple[int, int], left: np.ndarray, right: np.ndarray) -> ExportedModel:
        return export_cached(
            spec, frozen_settings, module, size_hw, fp16=fp16, parity_inputs=(left, right), cache=cache
        )

    return predictor_from_export(spec, frozen_settings, export, device=device, precision=precision, **options)
