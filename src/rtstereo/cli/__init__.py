"""The ``rtstereo`` console script: one program, one verb per job.

Each verb lives in ``rtstereo.cli.<verb>`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to the function that runs it (``func(args) -> int`` exit code). Library
errors (:class:`~rtstereo.errors.RtStereoError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import re
import sys
import warnings
from collections.abc import Iterator

from ..errors import RtStereoError

# Verb modules, in the order `rtstereo --help` lists them.
VERBS = [
    "predict",
    "video",
    "live",
    "eval",
    "compare",
    "models",
    "export",
    "bench",
    "calibrate",
    "synth",
    "train",
    "adapt",
]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that answers a mistyped verb or option with the close matches."""

    verb_parsers: dict[str, _Parser]  # the top-level parser's: each verb's own

    def error(self, message: str):  # noqa: D102 - argparse hook
        # One line, like every other error of ours; the usage is one --help away.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{_close_choices(message)} (see `{self.prog} --help`)\n")

    def unrecognized(self, extras: list[str]) -> None:
        """Refuse arguments this verb does not take, naming the options close to a mistyped one."""
        options = [option for action in self._actions for option in action.option_strings]
        typed = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
        close = [match for option in typed for match in difflib.get_close_matches(option, options, n=2, cutoff=0.75)]
        hint = f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def _close_choices(message: str) -> str:
    """For argparse's "invalid choice: 'x' (choose from ...)", the choices close to ``x``."""
    found = re.match(r"argument .*: invalid choice: '(.*)' \(choose from (.*)\)$", message)
    if not found:
        return ""
    choices = re.findall(r"'([^']*)'", found.group(2))
    close = difflib.get_close_matches(found.group(1), choices, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def build_parser() -> _Parser:
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
    parser.verb_parsers = subparsers.choices  # for the unknown options of a verb (main); not in the namespace
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # the verb's own parser names them, with its name and the options close to a mistyped one
        verb_parser = parser.verb_parsers.get(args.verb) if args.verb else None
        (verb_parser or parser).unrecognized(extras)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with one_voice(args.verb):
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


@contextlib.contextmanager
def one_voice(verb: str) -> Iterator[None]:
    """While a verb runs, everything on stderr is rtstereo's, one line each.

    Python warnings (rtstereo's and its libraries') are printed as ``rtstereo VERB: warning: ...``
    lines without source paths (only their formatting changes: code that records warnings, such as
    ``pytest.warns``, still receives them); OpenCV logs errors only; what C libraries print during a
    call that fails is held back (:mod:`rtstereo.io.quiet`), so the user's first line is the error
    that explains it.
    """
    import cv2

    from ..io.quiet import hold_native_output

    def one_line(message, category, filename, lineno, line=None):  # noqa: ARG001 - warnings' signature
        text = " ".join(str(message).split())
        return f"rtstereo {verb}: warning: {text}\n"

    level = cv2.utils.logging.getLogLevel()
    # Errors only: OpenCV's warnings about a damaged file come with our own error.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    previous = hold_native_output(True)
    previous_format = warnings.formatwarning
    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = previous_format
        hold_native_output(previous)
        cv2.utils.logging.setLogLevel(level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
