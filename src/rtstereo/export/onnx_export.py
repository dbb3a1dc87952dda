"""PyTorch network -> ONNX file fixed to one input size, cleaned up, optionally fp16, verified.

The steps of :func:`export_onnx`:

1. trace the module at the export size (TorchScript exporter, named inputs ``left``, ``right`` and
   ``flow_init`` for a CREStereo refinement pass, output ``disparity``);
2. clean up with **onnxslim**: constant folding, dead-node elimination and shape inference in one
   pure-Python package that is actively maintained and installs from PyPI everywhere. onnxsim
   needs a compiled wheel that often lags new Python versions, polygraphy comes from NVIDIA's
   index and pulls TensorRT-oriented tooling, and onnx-ir is a lower-level IR, not a simplifier;
3. write the ``rtstereo`` metadata (:class:`~rtstereo.runtime.onnx.OnnxContract`) so that the file
   loads with no other flag;
4. for ``fp16``: convert with ONNX Runtime's own float16 converter (it ships with onnxruntime, a
   core dependency), keeping float32 inputs and outputs; operators without an fp16 kernel in ONNX
   Runtime's CPU provider stay in float32 (found by opening the model, so the file always runs); when
   the fp16 model gives inf or NaN where the fp32 one does not, the nodes whose values on the parity
   pair pass 1/8 of float16's range stay in float32 too, joined without a float16 round trip
   (weights with huge activations: the random-weight GwcNet fixtures reach 7e5), with a warning;
5. store weights in a separate ``<file>.data`` when asked, or when they exceed
   :data:`EXTERNAL_DATA_THRESHOLD_BYTES` (protobuf cannot serialise a message over 2 GiB);
6. run the export in ONNX Runtime on a real pair and compare with PyTorch
   (:mod:`rtstereo.export.parity`); the report is printed by the CLI and written beside the model
   as ``<stem>.parity.json``. Outside tolerance the file is kept as ``<file>.failed`` and
   :class:`ParityError` is raised. Either way what an earlier export left under the name (its file,
   passing or ``.failed``, its ``.data``) is removed first: the name holds the latest export and its report.

CREStereo with ``two_pass`` exports as the pair the public ONNX releases use: ``out_init.onnx``
(half-size images in, ``flow_init`` out) and ``out.onnx`` (full-size images and ``flow_init`` in,
``disparity`` out); the loader runs them in turn.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    CheckpointError,
    ExportError,
    InputError,
    OutputError,
    RtStereoError,
    require,
    require_installed,
    warn,
)
from ..io.atomic import folder_write_problem, not_a_folder, remove_stale_partials, staging_folder
from ..io.lock import FileLock, holder_text
from ..io.quiet import native_output_held
from ..models.registry import ModelSpec, import_object
from ..runtime.onnx import (
    METADATA_KEY,
    OnnxContract,
    OnnxRuntimeBackend,
    TwoPassBackend,
    companion_path,
    open_session,
)
from ..runtime.preprocess import normalize
from ..text import first_line
from .parity import ParityReport, compare, fit_to_size, parity_pair, tolerance_for

torch = require("torch", "export", "exporting a network to ONNX")
onnx = require("onnx", "export", "exporting a network to ONNX")
# Checked now, not at the clean-up step: after the export's minutes, a missing onnxslim was a traceback.
require_installed("onnxslim", "export", "exporting a network to ONNX")

DEFAULT_OPSET = 17  # GridSample (CREStereo, AnyNet) needs >= 16; 17 is what TensorRT 8.6+ parses fully
MIN_OPSET = 16
# The newest opset this PyTorch's exporter writes: above it the exporter fails only after tracing, and prints the
# whole traced graph (thousands of lines) on its way out.
MAX_OPSET = int(getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", 20))
#: Above this many bytes of weights the file is written with external data: protobuf refuses
#: messages over 2 GiB, and 1.8 GB leaves room for the graph itself and for the fp16 cast nodes.
EXTERNAL_DATA_THRESHOLD_BYTES = 1_800_000_000
MAX_FP16_ROUNDS = 8


class ParityError(ExportError):
    """The export differs from PyTorch by more than the model's tolerance (file kept as ``.failed``)."""

    def __init__(self, message: str, result: ExportResult):
        super().__init__(message)
        self.result = result


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        path: the model file (the refinement model of a two-pass export); ``.failed`` when parity
            failed.
        init_path: the half-size model of a two-pass export, else ``None``.
        contract: the metadata stored in ``path``.
        report: the parity report (``None`` for a cache hit).
        report_path: where the report was written.
        external_data: whether weights are in ``<file>.data``.
        fp32_ops: operator types kept in float32 in an fp16 export.
        timings_s: seconds per step.
    """

    path: Path
    init_path: Path | None
    contract: OnnxContract
    report: ParityReport | None = None
    report_path: Path | None = None
    external_data: bool = False
    fp32_ops: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.report is None or self.report.passed


# --------------------------------------------------------------------------------------------------
# Building the network from a name and a weights file
# --------------------------------------------------------------------------------------------------


def sha256_of_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_network(
    model: str,
    weights: str | os.PathLike[str] | None,
    settings: Mapping[str, Any] | None = None,
    *,
    random_weights: bool = False,
) -> tuple[ModelSpec, dict[str, Any], Any, str | None]:
    """The PyTorch module of a registry network (or of a self-describing rtstereo checkpoint).

    Args:
        model: registry name, or the path of an rtstereo checkpoint (it names its model).
        weights: weights file or URL (needed by the published networks).
        settings: setting overrides (strings are parsed).
        random_weights: build without weights (timing only; the outputs mean nothing).

    Returns:
        ``(spec, resolved_settings, module_in_eval_mode, weights_sha256_or_None)``.

    Raises:
        InputError: a classical model, a URL as the model, an exported ``.onnx`` file as the model or the
            weights, a post-processing switch among the settings, or missing weights.
        CheckpointError: a checkpoint path that does not exist, or a file that is not one.
    """
    from ..api import changed_network_error, load_weights, names_a_path, warn_unread_settings
    from ..io.download import is_url
    from ..models import get_spec, is_onnx_file, list_models, resolve_alias
    from ..models.checkpoint import read_self_describing
    from ..runtime.backends import TORCH_RUNTIME_SETTINGS
    from ..runtime.onnx import RUNTIME_SETTINGS
    from ..runtime.postprocess import POSTPROCESS_SETTINGS

    overrides = dict(settings or {})
    name = resolve_alias(model)
    if is_url(name):  # as `predict --model URL`: only weights are fetched (a path made of the URL was "not found")
        raise InputError(
            f"model {name} is a URL: export takes a registry name or a local rtstereo checkpoint; download the "
            "checkpoint and give its path (a URL of a registry network's weights goes in --weights)"
        )
    path = Path(name)
    if is_onnx_file(name):
        from ..runtime.rt_stereo_onnx import from_its_checkpoint, rt_stereo_file

        contract = rt_stereo_file(name) if path.is_file() else None
        if contract is not None:  # its users have GwcNet's checkpoint: "an rtstereo checkpoint" named none they have
            size = "x".join(map(str, contract.fixed_size_hw or ("H", "W")))
            raise InputError(
                f"{name} is RT-Stereo's GwcNet-gc ONNX file: there is nothing to export from it (it runs as it is: "
                f"`rtstereo predict --model {name}`); export (--fp16, --int8) starts from the checkpoint it was "
                f"exported from: rtstereo export {from_its_checkpoint(contract)} --size {size}"
            )
        raise InputError(
            f"{name} is an exported ONNX model: there is nothing to export from it (run it with `rtstereo predict "
            f"--model {name}`, describe it with `rtstereo models {name}`); export starts from a registry name with "
            "--weights, or an rtstereo checkpoint"
        )
    if weights is not None and is_onnx_file(str(weights)):
        raise InputError(f"--weights {weights} is an exported ONNX model; give the PyTorch checkpoint it was made from")
    torch_only = sorted(k for k in overrides if k in TORCH_RUNTIME_SETTINGS)
    if torch_only:
        names = ", ".join(torch_only)
        raise InputError(f"--set {names}: how PyTorch runs a network; an ONNX export has no such setting")
    runtime = sorted(k for k in overrides if k in ("threads", *RUNTIME_SETTINGS))
    if runtime:  # the registry's message sent `--set threads=2` to a --threads option export does not have
        where = "--threads N" if runtime[0] == "threads" else f"--set {runtime[0]}=..."
        raise InputError(
            f"--set {', '.join(runtime)}: how ONNX Runtime runs a model, not part of the network; give it where the "
            f"export runs (rtstereo predict --model FILE.onnx {where})"
        )
    switches = sorted(k for k in overrides if k in POSTPROCESS_SETTINGS)
    if switches:
        raise InputError(
            f"--set {', '.join(switches)}: post-processing of the network's map, not part of the network; give it "
            f"where the export runs (rtstereo predict --model FILE.onnx --set {switches[0]}=...)"
        )
    if not path.is_file() and name not in list_models():
        if names_a_path(name):
            raise CheckpointError(f"checkpoint not found: {name}")
    # an rtstereo checkpoint given as the model: (its network, its settings)
    description: tuple[str, dict[str, Any]] | None = None
    if path.suffix and path.is_file():
        _, description = read_self_describing(
            path,
            "it holds {network} weights: rtstereo export {network} --weights {path}",
            "give the model name and --weights FILE for the published networks' own files",
            what="weights file",
        )
        if weights is not None:  # predict refuses them; here another file's weights went in under its settings
            raise InputError(
                f"model '{path}' takes no --weights (an rtstereo checkpoint carries its weights); leave out "
                f"--weights {weights}, or give them with the network's name ({description[0]} --weights FILE)"
            )
        name, saved = description
        given, overrides = overrides, {**saved, **overrides}
        weights = path
    spec = get_spec(name)
    if spec.kind != "network":
        raise InputError(_nothing_to_export(spec))
    resolved = spec.resolve_settings(overrides)
    if weights is None and spec.needs_weights and not random_weights:
        raise InputError(
            f"model '{spec.name}' needs its weights: pass --weights FILE_OR_URL (official weights: "
            f"{spec.weights_source})"
        )
    module = import_object(spec.builder)(resolved)
    digest = None
    if weights is not None:
        try:
            # a URL that gave no checkpoint: named (it was the cache's file) and not kept (a rerun read it again)
            metadata, local = load_weights(spec, module, weights)
        except CheckpointError:
            error = None if description is None else changed_network_error(path, *description, given)
            if error is None:
                raise
            raise error from None
        warn_unread_settings(weights, metadata, resolved, set(overrides))
        digest = sha256_of_file(local)
    return spec, resolved, module.eval(), digest


def _nothing_to_export(spec: ModelSpec) -> str:
    """Why a model that is not a PyTorch network is not exported; for a packaged ONNX network, where the PyTorch
    state it was exported from is (it said "nothing to export" alone: no way to a fixed-size, fp16 or int8 file)."""
    from ..models import PACKAGED_SOURCES, packaged_network_source

    if spec.name not in PACKAGED_SOURCES:
        return f"model '{spec.name}' is {spec.kind}, not a PyTorch network: there is nothing to export"
    source = packaged_network_source(spec.name)
    where = f"{source}" if source else f"PATH/TO/{PACKAGED_SOURCES[spec.name]}"
    origin = "" if source else f" ({PACKAGED_SOURCES[spec.name]} of the rtstereo source repository)"
    return (
        f"model '{spec.name}' ships as an ONNX file (any size, fp32), not a PyTorch network; an export of it at a "
        f"fixed size, in fp16 or int8, starts from the PyTorch state it was exported from{origin}: rtstereo export "
        f"{where} --size HxW -o FILE.onnx (and predict with --set fill_left_border=true --set refine_edges=true for "
        f"{spec.name}'s post-processing)"
    )


def weights_digest(module: Any) -> str:
    """SHA-256 over a module's state dict (names and bytes): the weights actually in it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# What is exported
# --------------------------------------------------------------------------------------------------


class _DisparityOnly(torch.nn.Module):
    """``forward(left, right)`` -> ``(N, H, W)`` whatever channel layout the network returns."""

    def __init__(self, network: Any):
        super().__init__()
        self.network = network

    def forward(self, left: Any, right: Any) -> Any:
        out = self.network(left, right)
        return out[:, 0] if out.dim() == 4 else out


class _InitPass(torch.nn.Module):
    """CREStereo's first pass: half-size RGB images -> flow ``(N, 2, H/2, W/2)``."""

    def __init__(self, predictor: Any):
        super().__init__()
        self.predictor = predictor

    def forward(self, left: Any, right: Any) -> Any:
        return self.predictor.first_pass(left, right)


class _RefinePass(torch.nn.Module):
    """CREStereo's second pass: full-size RGB images and the first pass's flow -> disparity ``(N, H, W)``."""

    def __init__(self, predictor: Any):
        super().__init__()
        self.predictor = predictor

    def forward(self, left: Any, right: Any, flow_init: Any) -> Any:
        return self.predictor.refine_pass(left, right, flow_init)[:, 0]


@dataclass
class _Part:
    role: str
    module: Any
    args: tuple[Any, ...]
    input_names: tuple[str, ...]
    output_name: str


def _is_two_pass(spec: ModelSpec, settings: Mapping[str, Any]) -> bool:
    return spec.name == "crestereo" and bool(settings.get("two_pass"))


def _parts(spec: ModelSpec, settings: Mapping[str, Any], module: Any, left: Any, right: Any) -> list[_Part]:
    if not _is_two_pass(spec, settings):
        return [_Part("single", _DisparityOnly(module).eval(), (left, right), ("left", "right"), "disparity")]
    half_hw = (left.shape[-2] // 2, left.shape[-1] // 2)
    # The same resize as CREStereoPredictor's two-pass forward (bilinear, corners aligned).
    left_half, right_half = (
        torch.nn.functional.interpolate(x, size=half_hw, mode="bilinear", align_corners=True) for x in (left, right)
    )
    with torch.inference_mode():
        flow_half = module.first_pass(left_half, right_half)
    return [
        _Part("init", _InitPass(module).eval(), (left_half, right_half), ("left", "right"), "flow_init"),
        _Part(
            "refine",
            _RefinePass(module).eval(),
            (left, right, flow_half.clone()),
            ("left", "right", "flow_init"),
            "disparity",
        ),
    ]


def padding_divisor(spec: ModelSpec, module: Any) -> int:
    """What a dynamic export's predictor pads each side to a multiple of: the registry's divisor, as the PyTorch
    predictor pads, and the module's own. CREStereo's single pass takes multiples of 16, but ``predict`` pads it to
    32: an export padding to 16 ran 240 rows where PyTorch ran 256, and their maps differed on 3 % of the pixels.

    Examples:
        >>> from rtstereo.models import get_spec
        >>> padding_divisor(get_spec("crestereo"), type("M", (), {"size_divisor": 16})())
        32
    """
    return math.lcm(int(spec.size_divisor or 1), int(getattr(module, "size_divisor", spec.size_divisor) or 1))


def check_size(spec: ModelSpec, module: Any, size_hw: tuple[int, int], option: str = "--size") -> tuple[int, int]:
    """The export size, checked against the network's size divisor and smallest size (``option``: the
    command-line option that gives it, named in the error).

    Raises:
        InputError: a size that is not a positive multiple of the divisor, or below the network's smallest
            (the message proposes one).
    """
    divisor = int(getattr(module, "size_divisor", spec.size_divisor) or 1)
    smallest = max(divisor, int(getattr(module, "min_size_px", spec.min_size_px) or 0))
    height, width = (int(v) for v in size_hw)
    if height < smallest or width < smallest or height % divisor or width % divisor:
        up = (max(smallest, -(-height // divisor) * divisor), max(smallest, -(-width // divisor) * divisor))
        at_least = f" of at least {smallest}" if smallest > divisor else ""
        raise InputError(
            f"{spec.name} needs an export size whose height and width are multiples of {divisor}{at_least}, got "
            f"{height}x{width} (HxW); use for example {option} {up[0]}x{up[1]}"
        )
    return height, width


# --------------------------------------------------------------------------------------------------
# Trace, clean up, convert
# --------------------------------------------------------------------------------------------------


def check_export_memory(
    spec: ModelSpec, settings: Mapping[str, Any], size_hw: tuple[int, int], dynamic: bool = False, flag: str = "--size"
) -> None:
    """Refuse an export size whose PyTorch pass (the reference the export is checked against) does not fit the memory
    budget, as ``predict`` refuses such a pair: ``--size 8192x8192`` ended in a traceback from PyTorch's allocator,
    or in the memory killer. A dynamic export is checked one divisor taller and two wider (:func:`_second_size_check`).
    ``flag`` is the option that gave the size (``rtstereo adapt``'s ``--export-size``).

    Raises:
        MemoryBudgetError: the estimate (:func:`rtstereo.runtime.memory.estimate_peak_bytes`) is over the budget.
    """
    from ..runtime.memory import BUDGET_ENV, MemoryBudgetError, estimate_peak_bytes, format_bytes_apart, memory_budget

    height, width = size_hw
    divisor = int(spec.size_divisor or 1)
    checked_hw = (height + divisor, width + 2 * divisor) if dynamic else (height, width)
    budget = memory_budget()
    estimate = estimate_peak_bytes(spec.name, spec.kind, settings.get("max_disp"), checked_hw, size_divisor=divisor)
    if estimate > budget.bytes:
        needed, allowed = format_bytes_apart(estimate, budget.bytes)
        # the size a dynamic export is checked at second, which the user never typed, is said as such
        second = f", where a --dynamic export of {height}x{width} is checked second" if dynamic else ""
        raise MemoryBudgetError(
            f"{spec.name} at {checked_hw[0]}x{checked_hw[1]} (HxW{second}) needs about {needed} for one PyTorch pass, "
            f"more than the {allowed} budget ({budget.source}): export at a smaller {flag} (a --dynamic export runs at "
            f"any size), or set {BUDGET_ENV} if the machine has more memory"
        )


def _dynamic_axes(part: _Part, output_rank: int) -> dict[str, dict[int, str]]:
    """Height and width of every input and of the output as named dynamic axes."""
    axes = {name: {2: "height", 3: "width"} for name in part.input_names}
    axes[part.output_name] = {output_rank - 2: "height", output_rank - 1: "width"}
    return axes


def _trace(part: _Part, opset: int, dynamic_rank: int | None = None) -> Any:
    with tempfile.TemporaryDirectory(prefix="rtstereo-trace-") as tmp:
        path = Path(tmp) / "traced.onnx"
        with warnings.catch_warnings():
            # Tracing at one fixed size is the point: the warnings about Python values frozen into the
            # graph are expected, and the parity check below catches any that matter.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            try:
                # A failing export prints the whole traced graph on stderr from C++ (thousands of lines): held
                # back where the command line holds native output, the error below says what failed.
                with native_output_held():
                    torch.onnx.export(
                        part.module,
                        part.args,
                        str(path),
                        dynamo=False,
                        opset_version=opset,
                        input_names=list(part.input_names),
                        output_names=[part.output_name],
                        dynamic_axes=_dynamic_axes(part, dynamic_rank) if dynamic_rank else None,
                        do_constant_folding=False,
                    )  # onnxslim folds, in half the time
            except RtStereoError:
                raise
            except Exception as exc:  # the exporter raises many types (SymbolicValueError, RuntimeError...)
                raise ExportError(
                    f"PyTorch could not export the {part.role} model to ONNX opset {opset}: "
                    f"{(first_line(exc) or type(exc).__name__)[:300]}. Try another --opset (>= {MIN_OPSET})"
                ) from exc
        part.module.eval()  # the exporter restores the wrapper's mode, which would reach the network
        return onnx.load(str(path))


def _slim(proto: Any) -> Any:
    onnxslim = require("onnxslim", "export", "exporting a network to ONNX")

    try:
        return onnxslim.slim(proto)
    except Exception as exc:  # a clean-up failure is not fatal: the unsimplified graph is still exact
        warn(f"onnxslim could not simplify the graph ({exc.__class__.__name__}: {exc}); writing it unsimplified")
        return proto


def _initializer_bytes(proto: Any) -> int:
    return sum(len(t.raw_data) + 4 * len(t.float_data) for t in proto.graph.initializer)


def _to_fp16(proto: Any, probe_dir: Path, name: str, fp32_nodes: list[str] | None = None) -> tuple[Any, list[str]]:
    """fp16 copy with float32 inputs/outputs; operators the CPU provider cannot run stay fp32, and so do the
    nodes named in ``fp32_nodes`` (:func:`_nodes_beyond_fp16`)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    kept: list[str] = []
    probe = probe_dir / name
    for _ in range(MAX_FP16_ROUNDS):
        converted = convert_float_to_float16(
            copy.deepcopy(proto),
            keep_io_types=True,
            op_block_list=[*DEFAULT_OP_BLOCK_LIST, *kept],
            node_block_list=list(fp32_nodes or []),
            disable_shape_infer=_initializer_bytes(proto) > EXTERNAL_DATA_THRESHOLD_BYTES,
        )
        if fp32_nodes:
            _drop_fp16_round_trips(converted)
        _save(converted, probe, external=_initializer_bytes(converted) > EXTERNAL_DATA_THRESHOLD_BYTES)
        missing = _missing_kernel(probe)
        _remove(probe)
        if missing is None:
            return converted, kept
        if missing in kept:
            break
        kept.append(missing)
    raise ExportError(
        f"fp16 conversion: ONNX Runtime still cannot run the model with {', '.join(kept)} kept "
        "in float32; export in fp32"
    )


FP16_MAX = 65504.0  # the largest finite float16
# A node stays float32 when a tensor it reads or writes reached this on the parity pair: another input can
# go a few times further, and a sum inside the operator further still.
FP16_SAFE_ABS = FP16_MAX / 8


def _drop_fp16_round_trips(proto: Any) -> int:
    """Join float32 nodes directly: the converter casts every float32 node's output to float16 and back for
    the next float32 node (``Cast(to=FLOAT16) -> Cast(to=FLOAT)``), which overflows the values they were kept
    in float32 for. Returns the round trips removed.

    Examples:
        >>> from onnx import helper
        >>> nodes = [helper.make_node("Cast", ["x"], ["h"], to=10), helper.make_node("Cast", ["h"], ["y"], to=1),
        ...          helper.make_node("Relu", ["y"], ["z"])]
        >>> model = helper.make_model(helper.make_graph(nodes, "g", [], []))
        >>> _drop_fp16_round_trips(model), [(n.op_type, list(n.input)) for n in model.graph.node]
        (1, [('Relu', ['x'])])
    """
    import onnx

    graph = proto.graph

    def cast_to(node: Any) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((attribute.i for attribute in node.attribute if attribute.name == "to"), None)

    nodes = list(graph.node)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(index)
    outputs = {output.name for output in graph.output}
    renamed: dict[str, str] = {}
    dropped: set[int] = set()
    for index, down in enumerate(nodes):
        if cast_to(down) != onnx.TensorProto.FLOAT16:
            continue
        readers = consumers.get(down.output[0], [])
        back = [i for i in readers if cast_to(nodes[i]) == onnx.TensorProto.FLOAT]
        for i in back:
            renamed[nodes[i].output[0]] = down.input[0]
            dropped.add(i)
        if len(back) == len(readers) and down.output[0] not in outputs:
            dropped.add(index)
    if not renamed:
        return 0
    kept = [copy.deepcopy(node) for index, node in enumerate(nodes) if index not in dropped]
    for node in kept:
        for index, tensor in enumerate(node.input):
            node.input[index] = renamed.get(tensor, tensor)
    del graph.node[:]
    graph.node.extend(kept)
    return len(renamed)


def _name_nodes(proto: Any) -> None:
    """Give every node a name (onnxslim leaves some without): the fp16 converter keeps nodes by name."""
    taken = {node.name for node in proto.graph.node if node.name}
    for index, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
            while node.name in taken:
                node.name += "_"
            taken.add(node.name)


def _nodes_beyond_fp16(proto: Any, feeds: dict[str, np.ndarray], probe: Path) -> tuple[list[str], float]:
    """The nodes of a float32 model that read or write values beyond what float16 holds safely
    (:data:`FP16_SAFE_ABS`) on ``feeds``, and the largest ``|value|`` met.

    Every float tensor is made an output of a copy of the model, which runs once in ONNX Runtime (CPU).
    Weights whose activations grow past 65504 (seeded random ones with random BatchNorm statistics reach
    6e5 in GwcNet's 3-D hourglasses) give ``inf`` in float16 from that node on, whatever the converter does.
    """
    import onnx
    import onnxruntime as ort

    _name_nodes(proto)
    inferred = onnx.shape_inference.infer_shapes(copy.deepcopy(proto))
    float_type = onnx.TensorProto.FLOAT
    floats = [info.name for info in inferred.graph.value_info if info.type.tensor_type.elem_type == float_type]
    probing = copy.deepcopy(proto)
    present = {output.name for output in probing.graph.output}
    for tensor in floats:
        if tensor not in present:
            probing.graph.output.append(onnx.helper.make_tensor_value_info(tensor, float_type, None))
    _save(probing, probe, external=_initializer_bytes(probing) > EXTERNAL_DATA_THRESHOLD_BYTES)
    try:
        session = ort.InferenceSession(str(probe), providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        values = session.run(names, feeds)
    finally:
        _remove(probe)
    peaks = {name: float(np.abs(value[np.isfinite(value)]).max(initial=0.0)) for name, value in zip(names, values)}
    peaks.update({name: float(np.abs(value).max(initial=0.0)) for name, value in feeds.items()})
    beyond = [
        node.name
        for node in proto.graph.node
        if any(peaks.get(tensor, 0.0) > FP16_SAFE_ABS for tensor in (*node.input, *node.output))
    ]
    return beyond, max(peaks.values(), default=0.0)


def _missing_kernel(path: Path) -> str | None:
    """The operator type ONNX Runtime's CPU provider has no kernel for, or ``None`` if it loads."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # NOT_IMPLEMENTED and friends
        match = re.search(r"implementation for (\w+)\(", str(exc))
        if match is None:
            reason = (first_line(exc) or type(exc).__name__)[:300]
            raise ExportError(f"ONNX Runtime cannot load the fp16 model: {reason}") from exc
        return match.group(1)
    return None


def _save(proto: Any, path: Path, external: bool) -> None:
    """Write the model (and its ``.data`` file) in a hidden staging folder, then rename them into place."""
    from ..io.atomic import interrupts_deferred, publish, staging_folder

    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + ".data")
    _remove(path)
    with staging_folder(path.parent) as staging:
        staged = staging / path.name
        if external:
            proto = copy.deepcopy(proto)  # saving with external data strips the tensors from the proto
            onnx.save_model(
                proto,
                str(staged),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data.name,
                size_threshold=1024,
            )
        else:
            onnx.save_model(proto, str(staged))
        if (staging / data.name).exists():  # onnx creates it owner-only (0600): readable as the model is
            (staging / data.name).chmod(staged.stat().st_mode & 0o777)
        with interrupts_deferred():  # the weights first: a model file under its name always has them
            if (staging / data.name).exists():
                publish(staging / data.name, staging, path.parent)
            publish(staged, staging, path.parent)


def _remove(path: Path) -> None:
    for item in (path, path.with_name(path.name + ".data")):
        item.unlink(missing_ok=True)


def _stamp(proto: Any, contract: OnnxContract, summary: str) -> None:
    from .. import __version__

    proto.producer_name = "rtstereo"
    proto.producer_version = __version__
    proto.doc_string = summary
    onnx.helper.set_model_props(proto, {METADATA_KEY: contract.to_json()})


# --------------------------------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------------------------------


def check_output_path(output: str | Path) -> Path:
    """Refuse an export file that cannot be written, before anything is built or traced.

    A temporary file is made and removed in its folder (:func:`~rtstereo.io.atomic.folder_write_problem`).

    Args:
        output: the ``.onnx`` file to write.

    Returns:
        ``output`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: the name does not end in ``.onnx``.
        OutputError: it (or its report, weights file or ``.failed`` file beside it) names a folder, or ends with a
            folder separator, or its folder cannot be created or written.
    """
    if os.fspath(output).endswith(("/", os.sep)):  # `-o m.onnx/` wrote the file m.onnx: Path drops the separator
        raise OutputError(
            f"cannot write the export to {os.fspath(output)}: it ends with a folder separator, which names a folder; "
            "give a file name ending in .onnx"
        )
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise InputError(f"the export file must end in .onnx, got '{output}'")
    if output.is_dir():
        raise OutputError(f"cannot write the export to {output}: it is a folder; give a file name ending in .onnx")
    # The files written beside it: found to be folders only after the export, they would fail it half-written
    # (<name>.failed: written when parity fails, removed when it passes).
    beside_names = (f"{output.stem}.parity.json", output.name + ".data", output.name + ".failed")
    for beside in (output.with_name(name) for name in beside_names):
        if beside.is_dir():
            raise OutputError(f"cannot write the export to {output}: {beside}, which it writes beside it, is a folder")
    blocking = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputError(f"cannot write the export to {output}: {not_a_folder(blocking)}")
    problem = folder_write_problem(output.parent)  # the export makes the folder when it writes
    if problem is not None:
        raise OutputError(
            f"cannot write the export to {output}: its folder {output.parent} is not writable ({problem})"
        )
    return output


def check_opset(opset: Any) -> int:
    """The ONNX opset to export with, refused before anything is traced when this PyTorch cannot write it.

    Raises:
        InputError: not a whole number from :data:`MIN_OPSET` (GridSample needs it) to :data:`MAX_OPSET`.
    """
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(
            f"--opset must be a whole number from {MIN_OPSET} (GridSample needs it) to {MAX_OPSET} (the newest "
            f"PyTorch {torch.__version__} exports), got {opset!r}"
        )
    return opset


def export_onnx(
    spec: ModelSpec,
    settings: Mapping[str, Any],
    module: Any,
    size_hw: tuple[int, int],
    output: str | Path,
    *,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    external_data: bool | None = None,
    checkpoint_sha256: str | None = None,
    pair: tuple[np.ndarray, np.ndarray, str] | None = None,
    parity_inputs: tuple[np.ndarray, np.ndarray] | None = None,
    dynamic: bool = False,
    on_start: Callable[[], None] | None = None,
) -> ExportResult:
    """Export a network at a fixed size (or any size), verify it against PyTorch, and write it.

    Args:
        spec: the registry entry (normalisation, size divisor).
        settings: resolved settings the module was built with (stored in the file).
        module: the PyTorch module, weights loaded (moved to the CPU, eval mode).
        size_hw: ``(H, W)`` of the inputs; multiples of the size divisor.
        output: the ``.onnx`` file to write (for two-pass CREStereo also ``<stem>_init.onnx``).
        fp16: convert to half precision (inputs and outputs stay float32).
        opset: ONNX opset, :data:`MIN_OPSET` to :data:`MAX_OPSET`.
        external_data: weights in ``<file>.data``; ``None``: only above the size threshold.
        checkpoint_sha256: hash of the source weights file, stored in the metadata.
        pair: uint8 RGB ``(left, right, description)`` of the export size to check parity on;
            default: the repository's example pair fitted to the size.
        parity_inputs: already prepared float32 ``(1, 3, H, W)`` inputs instead of ``pair``.
        dynamic: height and width become free (any multiple of the size divisor); parity is then
            checked at ``size_hw`` and at a second size, one divisor taller and two wider. Not for
            two-pass CREStereo.
        on_start: called once the inputs are checked, before the long part (the command line says what
            it is about to do there).

    Returns:
        An :class:`ExportResult`.

    Raises:
        ParityError: outside the model's tolerance (the files are kept with a ``.failed`` suffix).
        ExportError: the exporter or ONNX Runtime failed.
        InputError / OutputError: bad size, opset or output path.
    """
    from .. import __version__

    output = check_output_path(output)
    check_opset(opset)
    module = module.to("cpu").eval()
    size_hw = check_size(spec, module, size_hw)
    settings = dict(settings)
    check_export_memory(spec, settings, size_hw, dynamic)
    timings: dict[str, float] = {}
    two_pass = _is_two_pass(spec, settings)
    if dynamic and two_pass:
        raise InputError("a two-pass CREStereo export has fixed sizes; export it without --dynamic")
    if dynamic and spec.name == "anynet" and settings.get("stage") == 4:  # it failed parity at the second size
        raise InputError(
            "AnyNet's stage 4 has a fixed size (its SPN scans the columns one by one, unrolled for one width); "
            "export it without --dynamic, or stage 1, 2 or 3 with it"
        )
    if two_pass:  # found to be a folder only when the files are moved into place, after the whole export
        init_output = companion_path(output)
        for beside in (init_output, init_output.with_name(init_output.name + ".data")):
            if beside.is_dir():
                raise OutputError(
                    f"cannot write the export to {output}: {beside}, which a two-pass export writes beside it, is a "
                    "folder"
                )
    if on_start is not None:
        on_start()

    started = time.perf_counter()
    left, right, pair_text = _prepared_inputs(spec, size_hw, pair, parity_inputs, _guided(module))
    left_t, right_t = torch.from_numpy(left), torch.from_numpy(right)
    with torch.inference_mode():
        reference = _disparity_hw(module(left_t, right_t).float().numpy())
    timings["pytorch"] = time.perf_counter() - started

    second = _second_size_check(spec, module, size_hw, pair) if dynamic else None
    precision = "fp16" if fp16 else "fp32"
    init_output = companion_path(output) if two_pass else None
    contracts: dict[str, OnnxContract] = {}
    protos: dict[str, Any] = {}
    started = time.perf_counter()
    for part in _parts(spec, settings, module, left_t, right_t):
        proto = _slim(_trace(part, opset, reference.ndim + 1 if dynamic else None))
        part_hw = None if dynamic else tuple(int(v) for v in part.args[0].shape[-2:])
        contract = OnnxContract(
            model=spec.name,
            settings=settings,
            normalization=spec.normalization,
            size_divisor=padding_divisor(spec, module),
            fixed_size_hw=part_hw,
            precision=precision,
            role=part.role,
            companion=init_output.name if (part.role == "refine" and init_output) else None,
            checkpoint_sha256=checkpoint_sha256,
            rtstereo_version=__version__,
            opset=opset,
            extra={
                "exported_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "torch": torch.__version__,
                "onnx": onnx.__version__,
            },
        )
        _stamp(proto, contract, spec.summary)
        contracts[part.role], protos[part.role] = contract, proto
    timings["export"] = time.perf_counter() - started

    main_role = "refine" if two_pass else "single"
    names = {main_role: output.name, **({"init": init_output.name} if init_output else {})}
    # The working folders of exports killed midway (kill -9, the memory killer), each holding a whole model, stayed
    # for good: this one's is tagged with its process, which the next export here removes once it is gone.
    remove_stale_partials(output.parent)
    with staging_folder(output.parent) as workdir:
        result = _verify_and_write(
            spec,
            settings,
            size_hw,
            protos,
            contracts,
            names,
            output,
            workdir,
            main_role,
            fp16,
            external_data,
            left,
            right,
            reference,
            pair_text,
            timings,
            second,
        )
    if not result.passed:
        raise ParityError(
            f"the ONNX export of {spec.name} differs from PyTorch beyond its tolerance "
            f"(see {result.report_path}); "
            f"the file is kept as {result.path}",
            result,
        )
    return result


def _guided(module: Any) -> bool:
    """A guided rtnet: its ``left`` input carries SGBM's confident matches as a fourth channel."""
    return getattr(module, "guidance", None) is not None


def _prepared_inputs(
    spec: ModelSpec,
    size_hw: tuple[int, int],
    pair: tuple[np.ndarray, np.ndarray, str] | None,
    parity_inputs: tuple[np.ndarray, np.ndarray] | None,
    guided: bool = False,
) -> tuple[np.ndarray, np.ndarray, str]:
    channels = 4 if guided else 3
    if parity_inputs is not None:
        left, right = (np.ascontiguousarray(x, dtype=np.float32) for x in parity_inputs)
        if left.shape != (1, channels, *size_hw) or right.shape != (1, 3, *size_hw):
            raise InputError(
                f"parity inputs must be (1, {channels}, {size_hw[0]}, {size_hw[1]}) and (1, 3, {size_hw[0]}, "
                f"{size_hw[1]}), got {left.shape}, {right.shape}"
            )
        return left, right, "the first input pair"
    left_rgb, right_rgb, text = pair if pair is not None else parity_pair(size_hw)
    if left_rgb.shape[:2] != tuple(size_hw) or right_rgb.shape != left_rgb.shape:
        raise InputError(f"the parity pair must be {size_hw[1]}x{size_hw[0]} (WxH), got {left_rgb.shape[:2][::-1]}")
    left, right = normalize(left_rgb, spec.normalization), normalize(right_rgb, spec.normalization)
    if guided:  # the hints the hybrid would give: SGBM's confident matches of the same pair
        from ..models import get_spec
        from ..runtime.hybrid import confident_matches
        from ..runtime.predictor import hint_channel

        search_px = float(spec.defaults.get("max_disp", 192))
        hints = confident_matches(left_rgb, right_rgb, get_spec("hybrid").defaults, search_px)
        left = np.concatenate([left, hint_channel(hints, None, size_hw)], axis=1)
        text += ", with SGBM's confident matches as hints"
    return left, right, text


def _second_size_check(
    spec: ModelSpec,
    module: Any,
    size_hw: tuple[int, int],
    pair: tuple[np.ndarray, np.ndarray, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Inputs and the PyTorch disparity at a second size, to prove a dynamic export really is one.

    The pair of the first check (``--pair``'s, fitted again to the second size) when one was given: the
    report names one pair for both checks; else the example pair.
    """
    divisor = int(getattr(module, "size_divisor", spec.size_divisor) or 1)
    other_hw = (size_hw[0] + divisor, size_hw[1] + 2 * divisor)
    if pair is not None:
        pair = (fit_to_size(pair[0], other_hw), fit_to_size(pair[1], other_hw), pair[2])
    left, right, _ = _prepared_inputs(spec, other_hw, pair, None, _guided(module))
    with torch.inference_mode():
        reference = _disparity_hw(module(torch.from_numpy(left), torch.from_numpy(right)).float().numpy())
    return left, right, reference, other_hw


def _disparity_hw(output: np.ndarray) -> np.ndarray:
    return output[0, 0] if output.ndim == 4 else output[0]


def _run_files(paths: dict[str, Path], main_role: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Disparity of the written files in ONNX Runtime on the CPU (the reference provider)."""
    main = paths[main_role]
    if main_role == "refine":
        backend = TwoPassBackend(open_session(paths["init"]), paths["init"], open_session(main), main)
    else:
        backend = OnnxRuntimeBackend(open_session(main), main)
    return backend.run(left, right)


def _verify_and_write(
    spec: ModelSpec,
    settings: dict[str, Any],
    size_hw: tuple[int, int],
    protos: dict[str, Any],
    contracts: dict[str, OnnxContract],
    names: dict[str, str],
    output: Path,
    workdir: Path,
    main_role: str,
    fp16: bool,
    external_data: bool | None,
    left: np.ndarray,
    right: np.ndarray,
    reference: np.ndarray,
    pair_text: str,
    timings: dict[str, float],
    second: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]] | None = None,
) -> ExportResult:
    import onnxruntime

    started = time.perf_counter()
    fp32_ops: list[str] = []
    final = dict(protos)
    if fp16:  # convert before anything is saved: saving with external data empties the proto
        for role, proto in protos.items():
            final[role], kept = _to_fp16(proto, workdir, f"probe-{role}.onnx")
            fp32_ops += [op for op in kept if op not in fp32_ops]
        timings["fp16"] = time.perf_counter() - started

    def write(models: dict[str, Any], folder: Path) -> tuple[dict[str, Path], bool]:
        external = bool(external_data) or any(
            _initializer_bytes(p) > EXTERNAL_DATA_THRESHOLD_BYTES for p in models.values()
        )
        paths = {role: folder / names[role] for role in models}
        for role, proto in models.items():
            _save(proto, paths[role], external)
        return paths, external

    started = time.perf_counter()
    fp32_paths, external = write(protos, workdir / "fp32") if fp16 else write(protos, workdir)
    fp32_disparity = _run_files(fp32_paths, main_role, left, right)
    checks = [compare(fp32_disparity, reference, tolerance_for(spec.name, "fp32"), "onnx fp32 vs pytorch")]
    if second is not None:
        left2, right2, reference2, (h2, w2) = second
        checks.append(
            compare(
                _run_files(fp32_paths, main_role, left2, right2),
                reference2,
                tolerance_for(spec.name, "fp32"),
                f"onnx fp32 vs pytorch at {h2}x{w2} (dynamic size)",
            )
        )
    fp32_nodes: list[str] = []
    if fp16:
        paths, external = write(final, workdir)
        fp16_disparity = _run_files(paths, main_role, left, right)
        overflowed = int((~np.isfinite(fp16_disparity)).sum()) > int((~np.isfinite(fp32_disparity)).sum())
        if overflowed and list(protos) == [main_role]:
            # Values past float16's range give inf whatever the converter does: those nodes stay float32.
            fp32_nodes, peak = _nodes_beyond_fp16(
                protos[main_role], {"left": left, "right": right}, workdir / "probe-ranges.onnx"
            )
            if fp32_nodes:
                final[main_role], kept = _to_fp16(protos[main_role], workdir, "probe-ranges.onnx", fp32_nodes)
                fp32_ops += [op for op in kept if op not in fp32_ops]
                paths, external = write(final, workdir)
                fp16_disparity = _run_files(paths, main_role, left, right)
                warn(
                    f"fp16: {len(fp32_nodes)} of {len(protos[main_role].graph.node)} nodes kept in float32: their "
                    f"values on the parity pair reach {peak:.3g}, beyond float16's {FP16_MAX:g} (with a margin of "
                    f"{FP16_MAX / FP16_SAFE_ABS:g}x); these weights' activations are unusually large (random "
                    "weights?), and another input could still overflow the float16 nodes"
                )
        tolerance = tolerance_for(spec.name, "fp16")
        checks += [
            compare(fp16_disparity, reference, tolerance, "onnx fp16 vs pytorch fp32"),
            compare(fp16_disparity, fp32_disparity, tolerance, "onnx fp16 vs onnx fp32", enforced=False),
        ]
        if second is not None:  # the file written is the fp16 one: it too must take the second size
            left2, right2, reference2, (h2, w2) = second
            checks.append(
                compare(
                    _run_files(paths, main_role, left2, right2),
                    reference2,
                    tolerance,
                    f"onnx fp16 vs pytorch fp32 at {h2}x{w2} (dynamic size)",
                )
            )
    else:
        paths = fp32_paths
    timings["parity"] = time.perf_counter() - started

    report = ParityReport(
        model=spec.name,
        settings=settings,
        size_hw=size_hw,
        precision="fp16" if fp16 else "fp32",
        pair=pair_text,
        checks=checks,
        extra={
            "reference": "PyTorch fp32 on the CPU",
            "runtime": f"onnxruntime {onnxruntime.__version__} CPU",
            "fp32_ops": fp32_ops,
            "fp32_nodes": len(fp32_nodes),
            "external_data": external,
            "checkpoint_sha256": contracts[main_role].checkpoint_sha256,
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
        },
    )
    report.files = [str(output.with_name(names[role] + ("" if report.passed else ".failed"))) for role in paths]
    # an --external-data export's weights, under the name its model refers to them by (which _publish keeps)
    report.files += [
        str(output.with_name(path.name + ".data"))
        for path in paths.values()
        if path.with_name(path.name + ".data").exists()
    ]
    report_path = output.with_name(f"{output.stem}.parity.json")
    from ..io.atomic import interrupts_deferred

    with interrupts_deferred():  # the files and their report are replaced together
        moved = _publish(paths, names, output, report.passed)
        report.save(report_path)
    return ExportResult(
        path=moved[main_role],
        init_path=moved.get("init"),
        contract=contracts[main_role],
        report=report,
        report_path=report_path,
        external_data=external,
        fp32_ops=fp32_ops,
        timings_s=timings,
    )


def _publish(paths: dict[str, Path], names: dict[str, str], output: Path, passed: bool) -> dict[str, Path]:
    """Move the verified files into place: ``<name>`` when parity passed, ``<name>.failed`` when not.

    Under one export name there is only ever the latest export, with the report that describes it: what
    an earlier export left there (a passing ``m.onnx`` beside a failed re-export, a ``m.onnx.failed``
    beside a passing one, a ``.data`` file the new model does not use) and its report go first, so a
    failed re-export no longer leaves the older model under the name beside a report that says failed.
    """
    suffix, earlier = ("", ".failed") if passed else (".failed", "")
    try:
        output.with_name(f"{output.stem}.parity.json").unlink(missing_ok=True)
        for name in names.values():
            for leftover in (name + earlier, name + ".data"):
                output.with_name(leftover).unlink(missing_ok=True)
        if "init" not in names:  # a two-pass export's half-size model left beside a single-pass one under its name
            init = companion_path(output)
            for leftover in (init, init.with_name(init.name + ".failed")):
                if leftover.is_file() and _role_of(leftover) == "init":
                    leftover.unlink()
                    init.with_name(init.name + ".data").unlink(missing_ok=True)
        moved: dict[str, Path] = {}
        for role, path in paths.items():
            target = output.with_name(names[role] + suffix)
            data = path.with_name(path.name + ".data")
            if data.exists():  # the data file keeps its name: the model refers to it by that name
                data.replace(output.with_name(data.name))
            path.replace(target)
            moved[role] = target
    except OSError as exc:  # its text names the hidden folder the files were verified in
        from ..io.atomic import os_reason

        where = Path(exc.filename2 or exc.filename or output)  # a rename's target, or the file removed
        reason = f"{where} is a folder" if where.is_dir() else os_reason(exc, where)
        raise OutputError(f"cannot write the export into {output.parent}: {reason}") from None
    return moved


# --------------------------------------------------------------------------------------------------
# The on-the-fly export used by ``--backend onnxruntime``
# --------------------------------------------------------------------------------------------------


def _role_of(path: Path) -> str | None:
    """The role an rtstereo export records in its metadata (``single``, ``init``, ``refine``), else ``None``."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
        text = next(p.value for p in proto.metadata_props if p.key == METADATA_KEY)
        return OnnxContract.from_json(text, path).role
    except Exception:  # noqa: BLE001 - not an rtstereo export (or not a model): not ours to remove
        return None


def _intact(path: Path) -> bool:
    """Whether an exported file parses as a whole model: a graph, and the metadata written after it (a file cut
    short loses it)."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends: whatever it is, it is not a model
        return False
    return len(proto.graph.node) > 0 and any(p.key == METADATA_KEY for p in proto.metadata_props)


def export_cached(
    spec: ModelSpec,
    settings: Mapping[str, Any],
    module: Any,
    size_hw: tuple[int, int],
    *,
    fp16: bool = False,
    parity_inputs: tuple[np.ndarray, np.ndarray] | None = None,
    cache: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    """The export of ``module`` at ``size_hw`` from the cache, or made (and verified) now.

    The cache key covers the model name, its settings, the size, the precision, the opset, the
    rtstereo and torch versions and a hash of the weights in the module.

    Args:
        parity_inputs: prepared float32 ``(1, 3, H, W)`` inputs to verify a new export on.
        cache: folder (default ``<rtstereo cache>/onnx``).
    """
    from .. import __version__
    from ..io.download import cache_dir

    folder = Path(cache) if cache is not None else cache_dir() / "onnx"
    key_text = json.dumps(
        {
            "model": spec.name,
            "settings": dict(settings),
            "size_hw": list(size_hw),
            "fp16": fp16,
            "opset": opset,
            "rtstereo": __version__,
            "torch": torch.__version__,
            # CREStereo was exported fed RGB before it was fed BGR, under the same version: such a file must
            # not be found; RGB networks keep the key they had, and their cached files.
            **({"channel_order": spec.channel_order} if spec.channel_order != "rgb" else {}),
        },
        sort_keys=True,
    )
    key = hashlib.sha256((key_text + weights_digest(module)).encode()).hexdigest()[:16]
    path = folder / f"{spec.name}-{size_hw[0]}x{size_hw[1]}-{'fp16' if fp16 else 'fp32'}-{key}.onnx"
    init_path = companion_path(path) if _is_two_pass(spec, settings) else None
    contract = OnnxContract(
        model=spec.name,
        settings=dict(settings),
        normalization=spec.normalization,
        size_divisor=spec.size_divisor,
        fixed_size_hw=size_hw,
        precision="fp16" if fp16 else "fp32",
    )
    entry = [p for p in (path, init_path) if p is not None]
    if all(p.is_file() and _intact(p) for p in entry):  # published whole (renamed into place): no lock to take
        return ExportResult(path=path, init_path=init_path, contract=contract)
    # Made first: the check's probe removes the folders it made, where another process may be making its lock file.
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    check_output_path(path)  # a cache folder that cannot be written is refused in words before the lock file
    height, width = size_hw
    lock = FileLock(folder / f".{path.name}.lock")
    try:
        # Two processes exported the same network at once, each replacing the other's files as it finished (the
        # second one's minutes of exporting for nothing): the second now waits, then finds the first one's export.
        if not lock.acquire():
            warn(
                f"{holder_text(lock.holder())} is exporting {spec.name} at {height}x{width} into the cache ({path}): "
                "waiting to use its export"
            )
            lock.acquire(wait=True)
    except OSError as exc:  # the lock file: the folder was writable a moment ago
        from ..io.atomic import os_reason

        raise OutputError(f"cannot write the export to {path}: {os_reason(exc, path)}") from None
    try:
        damaged = [p for p in entry if p.is_file() and not _intact(p)]
        if damaged:  # a cache entry that cannot load failed every later run, until one found and deleted it
            warn(
                f"the cached ONNX export {damaged[0]} is damaged (it does not load as a whole model); exporting it "
                "again"
            )
            for item in entry:
                _remove(item)
        if all(p.is_file() for p in entry):
            return ExportResult(path=path, init_path=init_path, contract=contract)
        return export_onnx(spec, settings, module, size_hw, path, fp16=fp16, opset=opset, parity_inputs=parity_inputs)
    finally:
        lock.release()
