"""ONNX export with verified parity: fixed size, onnxslim clean-up, external data, fp16.

``rtstereo.export.parity`` is plain numpy; the exporter itself (``rtstereo.export.onnx_export``)
needs torch and onnx (``pip install 'rtstereo[export]'``) and is imported on first use of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .parity import ParityCheck, ParityReport, Tolerance, compare, tolerance_for

if TYPE_CHECKING:  # for type checkers, which do not see __getattr__ below (it made every name here Any to them)
    from .onnx_export import ExportResult, ParityError, build_network, export_cached, export_onnx

__all__ = [
    "ExportResult",
    "ParityError",
    "build_network",
    "export_onnx",
    "export_cached",
    "ParityCheck",
    "ParityReport",
    "Tolerance",
    "compare",
    "tolerance_for",
]

_LAZY = {"ExportResult", "ParityError", "build_network", "export_onnx", "export_cached"}


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            from . import onnx_export

            return getattr(onnx_export, name)
        raise AttributeError(f"module 'rtstereo.export' has no attribute '{name}'")
