"""int8 versions of fp32 exports: ONNX Runtime static quantization, calibrated on generated scenes.

Weights become int8 per output channel and activations uint8 per tensor (QDQ format, which ONNX
Runtime fuses into integer convolutions on CPUs). The activation ranges come from pairs rendered by
rtstereo's synthetic scene generator, never from evaluation data. Whether the int8 model is worth
having is an accuracy question (``rtstereo eval`` on both files); this module only reports how far
its disparities are from the fp32 file's on one pair.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, ExportError, InputError, OutputError, require, warn
from ..runtime.agreement import compare_maps
from ..runtime.onnx import METADATA_KEY, OnnxContract, open_session, read_contract
from ..runtime.preprocess import normalize

CALIBRATION_SEED = 20261121  # the generator's stream seed for calibration scenes
QUANTIZED_OPS = ("Conv", "MatMul")
HEAD_CHANNELS = 9  # convolutions with this few outputs are disparity heads or fixed kernels


def float_nodes(proto: Any, depth: int = 3) -> list[str]:
    """Names of the convolutions and products that stay in float32.

    Two kinds: the heads with at most ``HEAD_CHANNELS`` outputs (disparity residuals, the soft-argmin's
    fixed ramp, the upsampler's neighbour gather), whose outputs are disparities in pixels where one
    uint8 step would be pixels wide; and every node whose output reaches an ``Exp`` within ``depth``
    nodes (matching logits, upsampling mask), where a quantization step becomes a relative error of
    the weights.
    """
    shapes = {init.name: list(init.dims) for init in proto.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def reaches_exp(node: Any, left: int) -> bool:
        if left == 0:
            return False
        for out in node.output:
            for nxt in consumers.get(out, []):
                if nxt.op_type == "Exp" or reaches_exp(nxt, left - 1):
                    return True
        return False

    kept = []
    for node in proto.graph.node:
        if node.op_type not in QUANTIZED_OPS:
            continue
        weight = shapes.get(node.input[1]) if len(node.input) > 1 else None
        if (weight and node.op_type == "Conv" and weight[0] <= HEAD_CHANNELS) or reaches_exp(node, depth):
            kept.append(node.name)
    return kept


@dataclasses.dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize_int8` wrote and how close it is to its fp32 source.

    Attributes:
        path: the int8 ``.onnx`` file.
        calibration: what the activation ranges were measured on.
        mean_abs_diff_px: mean ``|int8 - fp32|`` disparity on the check pair over the pixels finite in
            both, pixels (``inf`` when none is), as the fp32 parity check measures it.
        bad1_percent: share of pixels where they differ by more than 1 px, or where only one is finite.
        nonfinite: NaN/inf pixels of the int8 map; ``nonfinite_fp32``: of the fp32 map.
        size_bytes: file sizes ``{"fp32": ..., "int8": ...}``, bytes, with the fp32 file's external ``.data``.
        report_path: ``<stem>.parity.json`` beside the int8 file: these figures, and the fp32 source
            (whose own report holds its parity with PyTorch).
    """

    path: Path
    calibration: str
    mean_abs_diff_px: float
    bad1_percent: float
    size_bytes: dict[str, int]
    report_path: Path | None = None
    nonfinite: int = 0
    nonfinite_fp32: int = 0

    def summary(self) -> str:
        return (
            f"int8 vs fp32 on the check pair: mean |diff| {self.mean_abs_diff_px:.3f} px, "
            f"> 1 px on {self.bad1_percent:.2f} % of pixels, NaN/inf {self.nonfinite} (fp32 {self.nonfinite_fp32}); "
            f"calibration: {self.calibration}; "
            f"size {self.size_bytes['fp32'] / 1e6:.1f} MB -> {self.size_bytes['int8'] / 1e6:.1f} MB"
        )


def calibration_inputs(
    contract: OnnxContract, size_hw: tuple[int, int], pairs: int, max_disp_px: float
) -> list[dict[str, np.ndarray]]:
    """``pairs`` generated scenes at ``size_hw``, normalised as the model expects."""
    require("torch", "torch", "int8 calibration (it renders synthetic scenes)")
    from ..datasets.synthetic import render_batch

    batch = render_batch(pairs, *size_hw, seed=CALIBRATION_SEED, max_disp_px=max_disp_px)
    feeds = []
    for i in range(pairs):
        left, right = (
            (batch[key][i].permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
            for key in ("left", "right")
        )
        feeds.append(network_feed(contract, left, right))
    return feeds


def network_feed(contract: OnnxContract, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of an export for a uint8 RGB pair: both views normalised, and for a guided network (its
    ``left`` input has a fourth channel) SGBM's confident matches of the pair as the hybrid gives them, as
    the exporter checks parity with them (calibrated without them, it was refused: 3 channels, expected 4).
    """
    feed = {"left": normalize(left, contract.normalization), "right": normalize(right, contract.normalization)}
    if contract.settings.get("guided"):
        from ..models import get_spec
        from ..runtime.hybrid import confident_matches
        from ..runtime.predictor import hint_channel

        search_px = float(contract.settings.get("max_disp", 192))
        hints = confident_matches(left, right, get_spec("hybrid").defaults, search_px)
        feed["left"] = np.concatenate([feed["left"], hint_channel(hints, None, left.shape[:2])], axis=1)
    return feed


def quantize_int8(
    source: str | Path,
    output: str | Path,
    *,
    check_pair: tuple[np.ndarray, np.ndarray] | None = None,
    check_pair_text: str | None = None,
    pairs: int = 8,
    size_hw: tuple[int, int] | None = None,
) -> QuantizeResult:
    """Write an int8 copy of an fp32 rtstereo export.

    Args:
        source: an fp32 file written by ``rtstereo export`` (single pass).
        output: the ``.onnx`` file to write; it keeps the source's contract, with precision ``int8``.
        check_pair: uint8 RGB ``(left, right)`` the two files are compared on (at a size the source
            takes); default: the first calibration scene.
        check_pair_text: where ``check_pair`` came from, for the report (the export's parity pair).
        pairs: number of generated calibration scenes.
        size_hw: their size; default the source's fixed size, or 256x512 for a dynamic export.

    Returns:
        A :class:`QuantizeResult`.

    Raises:
        InputError: the source is not an fp32 single-pass export, or a bad output name.
        OutputError: the int8 file, its report or its folder cannot be written (checked before quantizing).
        ExportError: ONNX Runtime's quantizer failed.
    """
    # onnx first: ONNX Runtime's quantizer imports it, so without it the quantizer seemed the missing package
    onnx = require("onnx", "export", "int8 quantization")
    ort_quant = require("onnxruntime.quantization", None, "int8 quantization")

    source, output = Path(source), Path(output)
    if output.suffix.lower() != ".onnx":
        raise InputError(f"the int8 file must end in .onnx, got '{output}'")
    if source.resolve() == output.resolve():
        raise InputError(f"the int8 file must differ from its fp32 source ({source})")
    from .onnx_export import check_output_path

    # A folder in the way (or under a file) was found only after the quantization, as '[Errno 17] File exists'.
    check_output_path(output)
    session = open_session(source)
    contract = read_contract(session, source)
    if contract.role == "rt-stereo":  # "a fp32 rt-stereo export": it is no rtstereo export, and has a checkpoint
        from ..runtime.rt_stereo_onnx import from_its_checkpoint

        height, width = contract.fixed_size_hw or (0, 0)
        raise InputError(
            f"{source} is RT-Stereo's GwcNet-gc ONNX file, not an rtstereo export: int8 quantization starts from "
            f"the checkpoint it was exported from: rtstereo export {from_its_checkpoint(contract)} "
            f"--size {height}x{width} --int8 -o model_int8.onnx"
        )
    if contract.precision != "fp32" or contract.role != "single":
        raise InputError(
            f"{source} is an {contract.precision} {contract.role} export; int8 quantization takes a "
            "single-pass fp32 export"
        )
    size_hw = tuple(size_hw or contract.fixed_size_hw or (256, 512))
    max_disp = float(contract.settings.get("max_disp", 192))
    feeds = calibration_inputs(contract, size_hw, pairs, min(max_disp, size_hw[1] / 2))

    class Reader(ort_quant.CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    with tempfile.TemporaryDirectory(prefix="rtstereo-int8-") as tmp:
        staged = Path(tmp) / "int8.onnx"
        try:
            with quiet_root_logger():  # the quantizer's advice goes to the root logger, not to our users
                ort_quant.quantize_static(
                    str(source),
                    str(staged),
                    Reader(),
                    quant_format=ort_quant.QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=ort_quant.QuantType.QUInt8,
                    weight_type=ort_quant.QuantType.QInt8,
                    calibrate_method=ort_quant.CalibrationMethod.MinMax,
                    op_types_to_quantize=list(QUANTIZED_OPS),
                    nodes_to_exclude=float_nodes(onnx.load(str(source))),
                )
        except Exception as exc:  # the quantizer raises many types
            reason = " ".join(str(exc).split())  # ONNX Runtime's messages run over several lines
            raise ExportError(f"ONNX Runtime could not quantize {source}: {reason}") from exc
        proto = onnx.load(str(staged))
    contract = dataclasses.replace(
        contract,
        precision="int8",
        extra={**contract.extra, "int8_calibration": f"{pairs} generated scenes {size_hw[0]}x{size_hw[1]}"},
    )
    kept = {p.key: p.value for p in proto.metadata_props if p.key != METADATA_KEY}
    onnx.helper.set_model_props(proto, {**kept, METADATA_KEY: contract.to_json()})
    from ..io.atomic import atomic_path, interrupts_deferred, os_reason, partial_path

    # Checked under a hidden name, then published with its report: an earlier file or report under the name
    # (an int8 file, a failed fp32 one) never stands beside what this run wrote.
    staged = partial_path(output)
    try:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            onnx.save(proto, str(staged))
        except OSError as exc:  # its text names the hidden file
            raise OutputError(f"cannot write the int8 file {output}: {os_reason(exc, output)}") from None
        if check_pair is None:
            check = feeds[0]
        else:
            check = network_feed(contract, *check_pair)
        fp32 = _disparity(session, check)
        int8 = _disparity(open_session(staged), check)
        # As the fp32 parity check measures: a NaN or inf pixel made the mean NaN (or inf) and was never bad-1.
        measured = compare_maps(int8, fp32, "int8 vs fp32")
        result = QuantizeResult(
            path=output,
            calibration=contract.extra["int8_calibration"],
            mean_abs_diff_px=measured.mean_abs_px,
            bad1_percent=measured.bad1_pct,
            size_bytes={"fp32": _model_bytes(source), "int8": staged.stat().st_size},
            nonfinite=measured.nonfinite,
            nonfinite_fp32=measured.nonfinite_reference,
        )
        if measured.nonfinite > measured.nonfinite_reference:
            warn(
                f"the int8 model gives NaN/inf at {measured.nonfinite} pixels of the check pair (its fp32 source "
                f"at {measured.nonfinite_reference}): check it with `rtstereo eval` before using it"
            )
        report = {
            # the network's name and settings, as the fp32 report names them; the file is in "files", as there
            "model": contract.model,
            "settings": contract.settings,
            "files": [str(output)],
            "precision": "int8",
            "against": str(source),
            "source_report": str(source.with_name(f"{source.stem}.parity.json")),
            "pair": _check_pair_text(check_pair, check_pair_text, size_hw),
            # null when no pixel is finite in both (strict JSON has no Infinity)
            "mean_abs_diff_px": result.mean_abs_diff_px if np.isfinite(result.mean_abs_diff_px) else None,
            "bad1_percent": result.bad1_percent,
            "nonfinite": result.nonfinite,
            "nonfinite_fp32": result.nonfinite_fp32,
            "calibration": result.calibration,
            "size_bytes": result.size_bytes,
        }
        report_path = output.with_name(f"{output.stem}.parity.json")
        with interrupts_deferred():
            try:
                report_path.unlink(missing_ok=True)
                output.with_name(output.name + ".failed").unlink(missing_ok=True)  # an earlier export's
                staged.replace(output)
                with atomic_path(report_path, "the int8 report") as partial:
                    partial.write_text(json.dumps(report, indent=2) + "\n")
            except OSError as exc:  # its text names the hidden file
                in_way = next((p for p in (output, report_path) if p.is_dir()), None)
                reason = f"{in_way} is a folder" if in_way is not None else os_reason(exc, output)
                raise OutputError(f"cannot write the int8 file {output} and its report: {reason}") from None
    finally:
        staged.unlink(missing_ok=True)
    return dataclasses.replace(result, report_path=report_path)


def _model_bytes(path: Path) -> int:
    """The size of an export with its weights: those of an ``--external-data`` export (or one above 1.8 GB) are in
    ``<file>.data``, which the size of the .onnx file alone left out ("size 0.1 MB -> 1.6 MB")."""
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def _check_pair_text(
    check_pair: tuple[np.ndarray, np.ndarray] | None, text: str | None, calibration_hw: tuple[int, int]
) -> str:
    """What the int8 file was compared on, with its size: the report named only "the check pair given".

    Examples:
        >>> _check_pair_text(None, None, (256, 512))
        'the first calibration scene (256x512, HxW)'
    """
    if check_pair is None:
        return f"the first calibration scene ({calibration_hw[0]}x{calibration_hw[1]}, HxW)"
    height, width = check_pair[0].shape[:2]
    return text or f"the check pair given ({height}x{width}, HxW)"


def _disparity(session: Any, feed: dict[str, np.ndarray]) -> np.ndarray:
    try:
        return np.asarray(session.run(None, feed)[0], dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors carry the reason
        raise CheckpointError(f"ONNX Runtime could not run the model: {exc}") from exc


@contextlib.contextmanager
def quiet_root_logger():
    """Hold back what libraries log to the root logger below errors (ONNX Runtime's quantizer prints its
    advice there as ``WARNING:root:...``); the root logger is as it was afterwards."""
    root = logging.getLogger()
    level, silent = root.level, logging.NullHandler()  # a handler: logging.warning() then adds none of its own
    root.addHandler(silent)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(silent)
        root.setLevel(level)
