"""``rtstereo export MODEL --weights W --size HxW -o out.onnx``: a verified fixed-size ONNX model."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from ..errors import InputError, OutputError
from .common import WEIGHTS_URL_HELP, add_model_option, add_setting_args, output_path_arg, size_arg, take_model_option

EPILOG = """examples:
  rtstereo export gwcnet-gc --weights sceneflow.ckpt --size 480x672 --max-disp 192 -o gwcnet.onnx
  rtstereo export gwcnet-gc --weights sceneflow.ckpt --size 480x672 --max-disp 192 --fp16 -o gwcnet16.onnx
  rtstereo export crestereo --weights crestereo_eth3d.pth --size 480x640 --iters 10 --set two_pass=true \\
      -o cre.onnx                              # writes cre.onnx (refinement) and cre_init.onnx (half size)
  rtstereo export runs/rtnet/best.pt --size 480x640 --dynamic -o rtnet.onnx   # any size, multiple of 32
  rtstereo export runs/rtnet/best.pt --size 480x640 --dynamic --int8 -o rtnet8.onnx  # + rtnet8_fp32.onnx
  rtstereo predict --model gwcnet.onnx left.png right.png -o out/   # no other flag needed

Every export is run in ONNX Runtime on a real pair and compared with PyTorch; the report is printed
and written beside the model (<stem>.parity.json). Outside the model's tolerance the command exits
with status 1 and the file is kept as <file>.failed. The name holds only the latest export and its
report: a failed re-export removes the earlier <file>, a passing one an earlier <file>.failed.
"""

EXIT_PARITY = 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a network to ONNX (fixed or dynamic size), verified against PyTorch",
        # the epilog keeps its lines (raw), so the description is wrapped here
        description=textwrap.fill(
            "Export a registry network (or an rtstereo checkpoint) to ONNX for one input size (or any, with "
            "--dynamic), clean it up, optionally convert it to fp16 or int8, and check it against PyTorch.",
            width=80,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="?",  # required: or --model (the usage's [model] says only that it may come as --model)
        help="required, here or as --model: registry name (see `rtstereo models`) or an rtstereo checkpoint",
    )
    add_model_option(parser)
    parser.add_argument("-o", "--output", required=True, type=output_path_arg, help="the .onnx file to write")
    parser.add_argument(
        "--weights", "-w", help=f"weights file or URL (the published networks need it; {WEIGHTS_URL_HELP})"
    )
    parser.add_argument(
        "--size",
        required=True,
        type=size_arg,
        metavar="HxW",
        help="input height x width, multiples of the model's size divisor (e.g. 480x640); with "
        "--dynamic, the first size parity is checked at",
    )
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="any input size: the file takes multiples of the size divisor, and rtstereo pads other sizes to the "
        "next one and crops the map back (parity is checked at --size and at a second size); rtnet, gwcnet, "
        "anynet stages 1-3 and single-pass CREStereo (not AnyNet's stage 4 or two-pass CREStereo)",
    )
    add_setting_args(parser)
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="half-precision weights and arithmetic (inputs and outputs stay float32); fp16 arithmetic on a GPU: "
        "ONNX Runtime's CPU provider runs it in float32 behind casts (fp16's rounding, not its speed)",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="write an int8 model (ONNX Runtime static quantization, calibrated on generated scenes) "
        "after verifying the fp32 export; compare the two with `rtstereo eval` before using it",
    )
    parser.add_argument(
        "--opset", type=int, default=17, help="ONNX opset, 16 to the newest this PyTorch exports (default: %(default)s)"
    )
    parser.add_argument(
        "--external-data",
        action="store_true",
        help="weights in <file>.data beside the model (automatic above 1.8 GB); not with --int8, whose file holds "
        "its weights",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no notice on stderr before the export starts (the report, warnings and errors are still shown)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        metavar=("LEFT", "RIGHT"),
        help="images to check parity on (default: the example pair shipped with rtstereo)",
    )
    parser.set_defaults(func=run)


def int8_source_path(output: Path) -> Path:
    """The verified fp32 export an ``--int8`` one is quantized from, beside it, in the suffix's own case: ``-o m.ONNX``
    wrote ``m_fp32.onnx``.

    Examples:
        >>> int8_source_path(Path("out/m.onnx")).name, int8_source_path(Path("M.ONNX")).name
        ('m_fp32.onnx', 'M_fp32.ONNX')
    """
    return output.with_name(f"{output.stem}_fp32{output.suffix}")


def warn_size_too_small(model: str, size_hw: tuple[int, int], divisor: int, dynamic: bool) -> None:
    """Warn that a fixed export size leaves the network's coarsest level under two cells across: the file then runs
    every pair at a size where its map means nothing (``predict`` warns so of such a pair; of a fixed-size file it
    could not), and the parity check passes all the same, PyTorch's map being as meaningless. A dynamic export runs
    each pair at its own size, where ``predict`` warns."""
    from ..errors import warn
    from ..runtime.predictor import SmallInputWarning, too_small_for

    if dynamic or not too_small_for(size_hw, divisor):
        return
    height, width = size_hw
    larger = f"{max(height, 2 * divisor)}x{max(width, 2 * divisor)}"
    warn(
        f"{model} at {height}x{width} (HxW): its coarsest level (1/{divisor}) spans fewer than two cells, so every "
        f"pair this file runs gives a disparity that is not meaningful, whatever the parity check says (at least "
        f"{divisor + 1} px each way is needed: export at --size {larger} or more)",
        SmallInputWarning,
    )


def run(args: argparse.Namespace) -> int:
    from ..export.onnx_export import (
        ParityError,
        build_network,
        check_export_memory,
        check_opset,
        check_output_path,
        check_size,
        export_onnx,
    )
    from ..export.parity import parity_pair
    from ..models import list_models
    from .common import settings_from_args

    take_model_option(args)
    if args.model is None:
        raise InputError("give the network to export first, e.g. `rtstereo export anynet --weights W --size HxW -o F`")
    if Path(args.model).is_dir() and args.model not in list_models():  # was "unknown model 'runs/x'"
        from ..api import CHECKPOINT_SUFFIXES

        inside = sorted(p.name for p in Path(args.model).iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES)
        hint = f" (in it: {', '.join(inside[:4])}{', ...' if len(inside) > 4 else ''})" if inside else ""
        raise InputError(
            f"model {args.model} is a folder: give an rtstereo checkpoint{hint}, or a registry name with --weights"
        )
    if args.int8 and args.fp16:
        raise InputError("--int8 and --fp16 exclude each other; pick one")
    if args.int8 and args.external_data:  # the int8 file was written with its weights inside all the same, unsaid
        raise InputError(
            "--int8 writes a file that holds its weights, not a .data file beside it: drop --external-data, or "
            "export without --int8 for a file with one"
        )
    output = check_output_path(args.output)  # before the network is built: that can take a while
    if args.int8:  # the verified fp32 source is written first, beside it: found a folder, after the whole export
        fp32 = int8_source_path(output)
        names = (fp32.name, f"{fp32.stem}.parity.json", f"{fp32.name}.data", f"{fp32.name}.failed")
        for beside in (fp32.with_name(name) for name in names):
            if beside.is_dir():
                raise OutputError(
                    f"cannot write the export to {output}: {beside}, which --int8 writes beside it, is a folder"
                )
    check_opset(args.opset)
    spec, settings, module, digest = build_network(args.model, args.weights, settings_from_args(args))
    if args.int8 and settings.get("two_pass"):  # refused by the quantizer only after the whole fp32 export
        raise InputError(
            "--int8 quantizes a single-pass export, and a two-pass CREStereo export is a pair of models: export it "
            "without --int8, or single-pass (--set two_pass=false) with it"
        )
    # The parity pair is resized to the export size: --size 100000x100000 was OpenCV's allocation traceback there,
    # before the export's own checks of the size and its memory could refuse it in one line.
    check_size(spec, module, args.size)
    check_export_memory(spec, settings, args.size, args.dynamic)
    warn_size_too_small(spec.name, args.size, int(spec.size_divisor or 1), args.dynamic)
    pair = parity_pair(args.size, *(args.pair or (None, None)))
    # The int8 model is quantized from a verified fp32 export, written beside it (int8_source_path).
    fp32_output = int8_source_path(output) if args.int8 else output
    height, width = args.size
    precision = "fp16" if args.fp16 else "fp32 then int8" if args.int8 else "fp32"  # int8 said "fp32" alone
    form = ", ".join([precision, *(["any size"] if args.dynamic else [])])

    def announce() -> None:  # tracing, simplifying and checking a large network take minutes, silent otherwise
        if args.quiet:
            return
        print(
            f"rtstereo export: exporting {spec.name} at {height}x{width} (HxW; {form}), then checking it against "
            "PyTorch in ONNX Runtime: a few seconds for small networks and sizes, minutes for large ones",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = export_onnx(
            spec,
            settings,
            module,
            args.size,
            fp32_output,
            fp16=args.fp16,
            opset=args.opset,
            external_data=True if args.external_data else None,
            checkpoint_sha256=digest,
            pair=pair,
            dynamic=args.dynamic,
            on_start=announce,
        )
    except ParityError as exc:
        report = exc.result.report
        if report is not None:
            print(report.summary())
        if args.int8:  # an earlier int8 file under the name is not this export's: it goes, as its fp32 source did
            for earlier in (output, output.with_name(f"{output.stem}.parity.json")):
                earlier.unlink(missing_ok=True)
        print(f"rtstereo export: error: {exc}", file=sys.stderr)
        return EXIT_PARITY
    assert result.report is not None, "a fresh export always has a report"
    print(result.report.summary())
    files = [result.path, *([result.init_path] if result.init_path else [])]
    extra = " (+ external .data)" if result.external_data else ""
    kept = f"; kept in float32: {', '.join(result.fp32_ops)}" if result.fp32_ops else ""
    print(f"wrote {', '.join(map(str, files))}{extra}{kept}; report {result.report_path}")
    if args.int8:
        from ..export.quantize import quantize_int8

        # The earlier int8 file was quantized from the fp32 file just replaced: should quantizing now fail or be
        # interrupted, it would stay under the name beside a source it no longer describes.
        for earlier in (output, output.with_name(f"{output.stem}.parity.json")):
            earlier.unlink(missing_ok=True)
        quantized = quantize_int8(result.path, output, check_pair=pair[:2], check_pair_text=pair[2])
        print(quantized.summary())
        print(f"wrote {quantized.path} (int8); report {quantized.report_path}")
    return 0
