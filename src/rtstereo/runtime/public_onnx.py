"""The public CREStereo ONNX files (PINTO model zoo 284, ``crestereo_combined_iter10_480x640.onnx`` ...).

They carry no rtstereo metadata, so their contract is read from the graph, as the scripts published
with them read it:

- ``init`` files (``crestereo_init_iterN_HxW.onnx``): two inputs, the left and right images
  ``(1, 3, H, W)``, one pass;
- ``combined`` files: four inputs, the half-size left and right images ``(1, 3, H/2, W/2)`` first,
  then the full-size ones ``(1, 3, H, W)``: the half-size pass initialises the full-size one
  (rtstereo's ``--set two_pass=true``).

Inputs are float 0..255 in the BGR order of ``cv2.imread``: the files are the PyTorch port's network traced
as it is, holding the released weights, which were trained on images read so and which megvii's ``test.py``
and the port's ``test_onnx_model.py`` feed unconverted. (The ONNX-CREStereo scripts, and the seed project
built on them, convert to RGB first: they swap the weights' colour channels.) The first output is
``(1, 2, H, W)`` with the disparity in channel 0. The iterations are in the file's name only (``iterN``).
The half-size images are made with the bilinear ``align_corners=True`` resize of the original two-pass code
(those scripts resize with ``cv2.resize``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .onnx import OnnxContract, _Checked, _Session, resize_align_corners

PUBLIC_ROLE = "public"


def _fixed_image_shape(arg: Any) -> tuple[int, int] | None:
    """``(H, W)`` of an input or output shaped ``(1, C, H, W)`` with fixed sizes, else ``None``."""
    shape = arg.shape
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
        return None
    return int(shape[2]), int(shape[3])


def public_crestereo_contract(session: Any, path: str | Path) -> OnnxContract | None:
    """The contract of a public CREStereo ONNX file, or ``None`` when the graph is not laid out as one.

    Args:
        session: an open ONNX Runtime session of the file.
        path: the file (its name gives the iterations, ``iterN``).

    Returns:
        A contract with role ``public``: model ``crestereo``, ``raw255`` normalisation, the file's fixed
        size, ``two_pass`` for a combined file and ``iters`` when the name says them.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) not in (2, 4) or not outputs:
        return None
    shapes = [_fixed_image_shape(arg) for arg in inputs]
    output_shape = outputs[0].shape
    if any(s is None or arg.shape[1] != 3 for s, arg in zip(shapes, inputs)) or len(output_shape) != 4:
        return None
    full_hw = shapes[-1]
    if shapes[-2] != full_hw or output_shape[1] != 2:
        return None
    combined = len(inputs) == 4
    if combined and not (shapes[0] == shapes[1] == (full_hw[0] // 2, full_hw[1] // 2)):  # type: ignore[index]
        return None
    settings: dict[str, Any] = {"two_pass": combined}
    iters = re.search(r"iter(\d+)", Path(path).name)
    if iters:
        settings = {"iters": int(iters.group(1)), **settings}
    half = any(arg.type == "tensor(float16)" for arg in inputs)
    return OnnxContract(
        model="crestereo",
        settings=settings,
        normalization="raw255",
        size_divisor=1,
        fixed_size_hw=full_hw,
        precision="fp16" if half else "fp32",
        role=PUBLIC_ROLE,
        extra={"layout": "combined" if combined else "init", "channel_order": "bgr"},
    )


class PublicCREStereoBackend(_Checked):
    """A public CREStereo file run as its own scripts run it: inputs by position, BGR, disparity in channel 0."""

    name = "onnxruntime"

    def __init__(self, session: Any, path: str | Path, device: str = "cpu", precision: str = "fp32"):
        inputs = tuple(arg.name for arg in session.get_inputs())  # by position: half-size pair first, if any
        self.model = _Session(session, Path(path), inputs, session.get_outputs()[0].name)
        self.device = device
        self.precision = precision

    def run(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        images = [left[:, ::-1], right[:, ::-1]]  # rtstereo's inputs are RGB; these files take BGR
        if len(self.model.dtypes) == 4:
            half_hw = (left.shape[-2] // 2, left.shape[-1] // 2)
            images = [resize_align_corners(np.ascontiguousarray(x), half_hw) for x in images] + images
        output = self.model(**dict(zip(self.model.dtypes, images)))
        return self.checked(output[0, 0], left, right)

    def describe(self) -> dict[str, Any]:
        return self._description(self.model)
