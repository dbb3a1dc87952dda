"""``rtstereo models [NAME | --model NAME]``: what the registry holds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError, ModelNotFoundError, install_command
from ..models import DEFAULT_ALIAS, get_spec, is_onnx_file, list_models
from ..models.registry import ModelSpec, matches_name
from ..runtime.postprocess import FILL_LEFT_BORDER, REFINE_EDGES
from .common import add_model_option, take_model_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models, or show one model's settings",
        description="List every registered model, or show one model's input "
        "contract, settings and defaults, licence and weights; or what an exported .onnx file or an rtstereo "
        "checkpoint says about itself.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="name",
        help="a model name, an exported .onnx file or an rtstereo checkpoint, to describe",
    )
    add_model_option(parser)
    parser.add_argument("--pattern", default="*", help="shell-style filter for the list, case ignored (default: all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import FAILED_EXPORT_SUFFIX, check_model_file, names_a_path, runtime_settings_by_backend

    take_model_option(args)
    if args.model and args.pattern != "*":  # a filter of the list, which a named model does not print
        raise InputError(
            f"--pattern filters the list of models: give it without a model name, or drop it for {args.model}"
        )
    if args.model and (is_onnx_file(args.model) or args.model.lower().endswith(FAILED_EXPORT_SUFFIX)):
        if not Path(args.model).is_dir():  # a URL, no such file: as predict says (not "http:/h/m.onnx: file not found")
            check_model_file(args.model)
        return describe_onnx(Path(args.model))
    if args.model and args.model not in list_models() and (Path(args.model).exists() or names_a_path(args.model)):
        check_model_file(args.model)  # as written: Path() drops the "/" that makes "runs/" a folder's name
        return describe_checkpoint(Path(args.model))
    if args.model and args.model not in list_models() and any(c in args.model for c in "*?["):
        raise InputError(f"'{args.model}' is a pattern, not a model name: rtstereo models --pattern '{args.model}'")
    if args.model:
        name = DEFAULT_ALIAS if args.model == "default" else args.model
        spec = get_spec(name)
        if args.model == "default":
            print(f"default -> {spec.name}")
        print(f"{spec.name}: {spec.summary}")
        print(f"  kind: {spec.kind}")
        if spec.kind == "hybrid":
            print(
                f"  runs: SGBM and {spec.network} (--set network=NAME_OR_FILE for another; a guided network gets "
                "SGBM's confident matches and runs after it, any other beside it); SGBM's confident matches replace "
                "the network's, except where check_confident finds the network the likelier right"
            )
        elif spec.kind != "classical":
            at_least = f", at least {spec.min_size_px} px" if spec.min_size_px > spec.size_divisor else ""
            order = (  # the order its weights take; the images given are RGB either way
                "BGR order (the RGB images reversed, as its original code feeds cv2.imread's)"
                if spec.channel_order == "bgr"
                else "RGB order"
            )
            print(
                f"  input: {spec.normalization} normalisation, {order}, size multiple of {spec.size_divisor}{at_least} "
                f"(padded, then cropped back)"
            )
        print(
            f"  weights: {'required (--weights FILE_OR_URL)' if spec.needs_weights else 'none needed'}; "
            f"official: {spec.weights_source}"
        )
        if spec.kind == "network":  # a PyTorch architecture: the packaged ONNX models and the hybrid run without it
            print(
                f"  torch: needed ({install_command('torch', 'torch')}); a machine without it runs the .onnx file "
                "that rtstereo export writes (--model FILE.onnx)"
            )
        print(f"  licence: {spec.licence}")
        print("  settings (--set KEY=VALUE):")
        # A hybrid's switches are its network's (they post-process the network's map before the fusion).
        post, whose = (get_spec(spec.network), " of its network's map, ") if spec.kind == "hybrid" else (spec, ", ")
        rows = [(key, value, spec.setting_help.get(key, "")) for key, value in spec.defaults.items()]
        rows += [
            (
                FILL_LEFT_BORDER,
                post.fill_left_border,
                f"fill each row's unmatched left band from its first matched pixel (post-processing{whose}any model)",
            ),
            (
                REFINE_EDGES,
                post.refine_edges,
                f"sharpen depth edges against the images, then fill occlusions (post-processing{whose}any model)",
            ),
        ]
        width = max(len(f"{key} = {value!r}") for key, value, _ in rows)
        for key, value, text in rows:
            print(f"    {f'{key} = {value!r}':<{width}}  {text}".rstrip())
        # Its backends' own settings, which --set takes too (listed so that none is found by a refusal only).
        runtimes = [
            f"{', '.join(keys)} ({backend}{', its default backend' if i == 0 else f', with --backend {backend}'})"
            for i, (backend, keys) in enumerate(runtime_settings_by_backend(spec.kind, None).items())
        ]
        if runtimes:
            print(f"  runtime settings (--set KEY=VALUE): {'; '.join(runtimes)}")
        return 0
    names = list_models(args.pattern)
    alias = matches_name("default", args.pattern)
    if not names and not alias:
        raise InputError(f"no model matches --pattern '{args.pattern}'{_part_of_names(args.pattern)}")
    width = max(len(n) for n in [*names, "default"])
    column = max(len(weights_column(get_spec(name))) for name in [*names, DEFAULT_ALIAS])
    for name in names:
        spec = get_spec(name)
        print(f"{name:<{width}}  {spec.kind:<9}  {weights_column(spec):<{column}}  {spec.summary}")
    if alias:
        weights = weights_column(get_spec(DEFAULT_ALIAS))
        print(f"{'default':<{width}}  {'alias':<9}  {weights:<{column}}  -> {DEFAULT_ALIAS}")
    return 0


def _part_of_names(pattern: str) -> str:
    """The end of the message of a pattern that matches no whole name: where it is part of some (``gwc``, which
    matched nothing, is in gwcnet-g and gwcnet-gc), the pattern that finds them; else where every model is listed.

    Examples:
        >>> _part_of_names("gwc")
        " (a pattern matches whole names: --pattern '*gwc*' lists gwcnet-g, gwcnet-gc)"
        >>> _part_of_names("zz*")
        ' (every model: rtstereo models)'
    """
    if any(c in pattern for c in "*?["):
        return " (every model: rtstereo models)"
    around = f"*{pattern}*"
    names = [*list_models(around), *(["default"] if matches_name("default", around) else [])]
    if not names:
        return " (every model: rtstereo models)"
    return f" (a pattern matches whole names: --pattern '{around}' lists {', '.join(names)})"


def weights_column(spec: ModelSpec) -> str:
    """The weights column of the list, as the README's table of methods says it: ``none`` (OpenCV), ``included``
    (inside the package) or ``your checkpoint`` (``--weights``, which a PyTorch network also needs torch for)."""
    if spec.needs_weights:
        return "your checkpoint"
    return "none" if spec.kind == "classical" else "included"


def describe_checkpoint(path: Path) -> int:
    """Print what a self-describing rtstereo checkpoint (``train``, ``adapt``) says about itself."""
    from ..api import check_model_file
    from ..models.checkpoint import read_self_describing

    check_model_file(str(path))
    obj, (model, settings) = read_self_describing(
        path,
        "it holds {network} weights, which go to --weights of that model (rtstereo models {network})",
        "a published network's own file goes to --weights of its model (rtstereo models NAME)",
    )
    step = f", step {obj['step']}" if obj.get("step") is not None else ""
    adapted = f", adapted from {obj['adapted_from']}" if obj.get("adapted_from") else ""
    print(f"{path}: an rtstereo checkpoint of {model}{step}{adapted}")
    if obj.get("best_epe") is not None:
        print(f"  best validation EPE: {obj['best_epe']:.3f} px at step {obj.get('best_step')}")
    if isinstance(obj.get("adaptation"), dict):  # rtstereo adapt, or video/live --adapt-save: its steps and verdict
        from ..train.adapt_network import describe_adaptation

        for line in describe_adaptation(obj["adaptation"]):
            print(f"  {line}")
        for record in reversed(obj.get("earlier_adaptations") or []):  # adapted again: the weights' earlier runs
            if isinstance(record, dict):
                source = f" (from {record['adapted_from']})" if record.get("adapted_from") else ""
                print(f"  before that, {describe_adaptation(record)[0]}{source}")
    if settings.get("guided"):  # as an export of it says: adapt --model default writes one, predict runs it unguided
        print("  guided: SGBM's confident matches are a fourth channel of its left input; alone it runs unguided")
    print("  settings (stored in the file):")
    for key, value in settings.items():
        print(f"    {key} = {value!r}")
    use = f"--model hybrid --set network={path}" if settings.get("guided") else f"--model {path}"
    print(f"  use it: rtstereo predict LEFT RIGHT {use}; the model's other settings: rtstereo models {model}")
    return 0


def _adaptation_beside(path: Path, checkpoint_sha256: str | None) -> list[str]:
    """What ``adapt -o FILE.onnx`` recorded of the adaptation (steps, held-out scores, the clearly-worse verdict) in
    the checkpoint it wrote beside the export, ``FILE.pt``, when that file is the one exported (same SHA-256): the
    export itself keeps none of it, and ``models FILE.onnx`` said nothing of a network that adapting made worse.
    Empty without torch, or when the file beside it is another one."""
    import hashlib

    from ..errors import RtStereoError

    beside = path.with_suffix(".pt")
    if not checkpoint_sha256 or not beside.is_file():
        return []
    digest = hashlib.sha256()
    with open(beside, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != checkpoint_sha256:
        return []
    try:
        from ..models.checkpoint import read_torch_file

        record = read_torch_file(beside).get("adaptation")
    except (RtStereoError, AttributeError):  # no torch, or not a checkpoint dict
        return []
    if not isinstance(record, dict):
        return []
    from ..train.adapt_network import describe_adaptation

    return [
        f"exported from {beside}, which records its adaptation:",
        *(f"  {line}" for line in describe_adaptation(record)),
    ]


def describe_onnx(path: Path) -> int:
    """Print the contract an exported file carries (``rtstereo export`` writes it into its metadata)."""
    from ..api import FAILED_EXPORT_SUFFIX, failed_export_advice
    from ..runtime.onnx import other_size_advice, read_contract, refinement_path
    from ..runtime.providers import open_session

    if not path.is_file():
        raise InputError(f"{path}: {'is a folder, not an ONNX file' if path.is_dir() else 'file not found'}")
    try:
        session = open_session(path)  # the CPU session every ONNX model of rtstereo runs in
    except CheckpointError as exc:
        if "keeps its weights in another file" in str(exc):  # the file is fine: its .data file is missing
            raise InputError(str(exc)) from None
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "unreadable"
        raise InputError(f"{path}: not an ONNX model ONNX Runtime can read ({cause})") from None
    contract = read_contract(session, path)
    size = (
        f"{contract.fixed_size_hw[0]}x{contract.fixed_size_hw[1]} (HxW); other sizes are resized to it (--fit crop: "
        f"their centred window of its aspect ratio), with a warning, and the disparity rescaled by the width ratio "
        f"({other_size_advice(contract)})"
        if contract.fixed_size_hw
        else f"any, padded to a multiple of {contract.size_divisor}"
    )
    if contract.role == "init" and contract.fixed_size_hw:  # it is never given a pair: its refinement model feeds it
        size = (
            f"{contract.fixed_size_hw[0]}x{contract.fixed_size_hw[1]} (HxW), half its refinement model's, which halves "
            f"each pair for it ({refinement_path(path).name} takes pairs of other sizes)"
        )
    order = ""
    if contract.role == "rt-stereo":
        made = f"its onnx_export.py; {contract.precision}; not an rtstereo export"
        print(f"{path}: an RT-Stereo GwcNet-gc ONNX model ({made})")
        order = " in RGB order"
        if "max_disp" not in contract.settings:
            print("  max_disp: unknown (the graph holds no soft-argmin levels 0..D-1 that rtstereo can read)")
    elif contract.role == "public":
        layout = contract.extra.get("layout")
        print(f"{path}: a public CREStereo ONNX model, {layout} ({contract.precision}; not an rtstereo export)")
        order = " in BGR order" + (", the half-size pair first" if layout == "combined" else "")
    else:
        print(f"{path}: an rtstereo export of {contract.model} ({contract.precision}, role {contract.role})")
        order = " in RGB order"  # rtstereo feeds every export RGB; weights trained on BGR get it reversed in the graph
        if _channel_order(contract.model) == "bgr":
            order += " (reversed to BGR inside the graph: the order its weights take, as a public CREStereo file's)"
    print(f"  input: {contract.normalization} normalisation{order}, size {size}")
    if contract.settings.get("guided"):
        print("  guided: SGBM's confident matches are a fourth channel of its left input; alone it runs unguided")
        print(f"  run it inside the hybrid: --model hybrid --set network={path}")
    print("  settings (fixed in the graph):")
    for key, value in contract.settings.items():
        print(f"    {key} = {value!r}")
    present = not contract.companion or path.with_name(contract.companion).is_file()
    mismatch = _companion_mismatch(contract, path) if contract.companion and present else None
    if contract.companion:
        missing = "" if present else " (missing beside it: this file does not run without it)"
        print(f"  companion (half-size pass): {contract.companion}{missing}")
    written = ", ".join(
        part
        for part in (
            f"rtstereo {contract.rtstereo_version}" if contract.rtstereo_version else "",
            f"opset {contract.opset}" if contract.opset else "",
            f"weights sha256 {contract.checkpoint_sha256[:12]}" if contract.checkpoint_sha256 else "",
        )
        if part
    )
    if written:
        print(f"  written by: {written}")
    for line in _adaptation_beside(path, contract.checkpoint_sha256):
        print(f"  {line}")
    if path.name.lower().endswith(FAILED_EXPORT_SUFFIX):  # kept by export to be looked at, refused by predict
        print(f"  use it: it does not run as it is: {failed_export_advice(path)}")
    elif not present:  # it said "use it: rtstereo predict ... --model FILE", which predict refuses without the pair
        print(
            f"  use it: it does not run as it is: its half-size first pass {contract.companion} is missing beside it: "
            "keep the two files together, or export again"
        )
    elif mismatch is not None:  # another export's half-size file beside it: predict refuses the pair
        print(f"  use it: it does not run as it is: {mismatch}")
    elif contract.role == "init":  # predict refuses the first pass alone: its refinement model runs both
        refinement = refinement_path(path)
        print(f"  use it: through the refinement model beside it, rtstereo predict LEFT RIGHT --model {refinement}")
    else:
        print(f"  use it: rtstereo predict LEFT RIGHT --model {path}")
    return 0


def _companion_mismatch(contract: Any, path: Path) -> str | None:
    """Why the half-size file beside a two-pass refinement model is not its export's own (as loading it refuses it),
    or ``None`` when it is."""
    from ..runtime.onnx import check_companion, read_contract
    from ..runtime.providers import open_session

    init_path = path.with_name(contract.companion)
    try:
        check_companion(contract, path, read_contract(open_session(init_path), init_path), init_path)
    except CheckpointError as exc:
        return str(exc)
    return None


def _channel_order(model: str) -> str | None:
    """The colour order the registry says ``model``'s weights take (``rgb``, ``bgr``), or ``None`` for a model it
    does not know (a file of a later version)."""
    try:
        return get_spec(model).channel_order
    except ModelNotFoundError:  # said as RGB alone, the order the file is fed
        return None
