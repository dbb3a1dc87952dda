"""``rtstereo export MODEL --weights W --size HxW -o out.onnx``: a verified fixed-size ONNX model."""

from __future__ import annotations

import argparse
import sys

from .common import add_setting_args, size_arg

EPILOG = """examples:
  rtstereo export gwcnet-gc --weights sceneflow.ckpt --size 480x672 --max-disp 192 -o gwcnet.onnx
  rtstereo export gwcnet-gc --weights sceneflow.ckpt --size 480x672 --max-disp 192 --fp16 -o gwcnet16.onnx
  rtstereo export crestereo --weights crestereo_eth3d.pth --size 480x640 --iters 10 --set two_pass=true \\
      -o cre.onnx                              # writes cre.onnx (refinement) and cre_init.onnx (half size)
  rtstereo predict --model gwcnet.onnx left.png right.png -o out/   # no other flag needed

Every export is run in ONNX Runtime on a real pair and compared with PyTorch; the report is printed
and written beside the model (<stem>.parity.json). Outside the model's tolerance the command exits
with status 1 and the file is kept as <file>.failed.
"""

EXIT_PARITY = 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a network to ONNX at a fixed size, verified against PyTorch",
        description="Export a registry network (or an rtstereo checkpoint) to ONNX for one input size, "
        "clean it up, optionally convert it to fp16, and check it against PyTorch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="registry name (see `rtstereo models`) or an rtstereo checkpoint")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("--weights", "-w", help="weights file or URL (the published networks need it)")
    parser.add_argument(
        "--size",
        required=True,
        type=size_arg,
        metavar="HxW",
        help="input height x width, multiples of the model's size divisor (e.g. 480x640)",
    )
    add_setting_args(parser)
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="half-precision weights and arithmetic (inputs and outputs stay float32)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 16 (default: %(default)s)")
    parser.add_argument(
        "--external-data",
        action="store_true",
        help="weights in <file>.data beside the model (automatic above 1.8 GB)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        metavar=("LEFT", "RIGHT"),
        help="images to check parity on (default: the repository's examples/ pair)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.onnx_export import ParityError, build_network, export_onnx
    from ..export.parity import parity_pair
    from .common import settings_from_args

    spec, settings, module, digest = build_network(args.model, args.weights, settings_from_args(args))
    pair = parity_pair(args.size, *(args.pair or (None, None)))
    try:
        result = export_onnx(
            spec,
            settings,
            module,
            args.size,
            args.output,
            fp16=args.fp16,
            opset=args.opset,
            external_data=True if args.external_data else None,
            checkpoint_sha256=digest,
            pair=pair,
        )
    except ParityError as exc:
        report = exc.result.report
        if report is not None:
            print(report.summary())
        print(f"rtstereo export: error: {exc}", file=sys.stderr)
        return EXIT_PARITY
    assert result.report is not None, "a fresh export always has a report"
    print(result.report.summary())
    files = [result.path, *([result.init_path] if result.init_path else [])]
    extra = " (+ external .data)" if result.external_data else ""
    kept = f"; kept in float32: {', '.join(result.fp32_ops)}" if result.fp32_ops else ""
    print(f"wrote {', '.join(map(str, files))}{extra}{kept}; report {result.report_path}")
    return 0
