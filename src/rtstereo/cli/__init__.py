"""The ``rtstereo`` console script: one program, one verb per job.

Each verb lives in ``rtstereo.cli.<verb>`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to the function that runs it (``func(args) -> int`` exit code). Library
errors (:class:`~rtstereo.errors.RtStereoError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import RtStereoError

# Verb modules, in the order `rtstereo --help` lists them.
VERBS = ["predict", "video", "live", "eval", "compare", "models", "export", "bench", "calibrate", "synth", "train"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that answers a mistyped verb or option with the close matches."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="rtstereo",
        description="Real-time deep-learning stereo: disparity, metric depth and point clouds "
        "from image pairs, videos and stereo cameras.",
    )
    parser.add_argument("--version", action="version", version=f"rtstereo {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb in VERBS:
        importlib.import_module(f"{__name__}.{verb}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except RtStereoError as exc:
        print(f"rtstereo {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (e.g. `| head`): not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print(f"rtstereo {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
