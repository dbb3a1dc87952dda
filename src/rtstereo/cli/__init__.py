"""The ``rtstereo`` console script: one program, one verb per job.

Each verb lives in ``rtstereo.cli.<verb>`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to the function that runs it (``func(args) -> int`` exit code). Library
errors (:class:`~rtstereo.errors.RtStereoError`) become one line on stderr and exit code 2, or 1 for a full disk
or quota (a failure of the run, as a batch's failed pair is, not of its arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import functools
import importlib
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import SHOWN_WARNINGS, MissingDependencyError, RtStereoError, disk_full_reason

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

EXIT_FAILED = 1  # the run failed (a full disk, a batch with a failed pair): running it again may succeed
EXIT_USAGE = 2  # the arguments or inputs are wrong: the same command fails again
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a program stopped by Ctrl-C

# Verbs whose arguments may be '' but for those named: train's flags override its --config file and a resumed
# run's settings, and '' clears one there (`--resume state.pt --unlabeled ''` trains on rendered scenes only).
# Every argument of the other verbs refuses ''.
EMPTY_REFUSED_ONLY = {"train": ("out_dir",)}


# ONNX Runtime's execution providers have no option of their own: `--provider cuda` got "unrecognized arguments" alone.
PROVIDERS_HINT = (
    "; ONNX Runtime's providers are a setting, --set providers=tensorrt,cuda,cpu (tried in that order), and "
    "--device cuda tries TensorRT, then CUDA"
)
# bench sweeps a --set list, one row per value: the providers tried in order are not a list of its
BENCH_PROVIDERS_HINT = (
    "; ONNX Runtime's providers are a setting, swept as the others: --device cuda --set providers=tensorrt,cuda,cpu "
    "times each on its own row (without --set providers, --device cuda tries TensorRT, then CUDA)"
)


# export traces and checks on the CPU in fp32: how the file then runs is predict's (and the other verbs') options
EXPORT_RUNTIME_HINT = (
    "; export writes fp16 with --fp16 and int8 with --int8, and checks the file on the CPU: --device, --precision and "
    "--threads go where it runs (rtstereo predict --model FILE.onnx --device cuda)"
)

# RT-Stereo's onnx_export.py (the GwcNet seed) took the size and the disparity levels as three options of its own
EXPORT_SEED_HINT = (
    "; export takes the input size as --size HEIGHTxWIDTH (--size 480x672 for --width 672 --height 480) and the "
    "disparity levels as --max-disp (--disparity 192: --max-disp 192)"
)

# train --data DIR, eval DIR: the folders eval scores are its positional arguments
EVAL_DATA_HINT = (
    "; eval takes the dataset folders themselves, without an option: rtstereo eval --model MODEL DIR [DIR ...]"
)

# Other tools' names of the stream options (`--every 2`, ffmpeg's and OpenCV scripts' `--fps` for a camera): each got
# "unrecognized arguments" alone, as no option is spelled close to it; offered where the verb has the option meant.
STREAM_OPTION_SYNONYMS = {
    "--every": "--stride",
    "--step": "--stride",
    "--skip": "--stride",
    "--limit": "--max-frames",  # --frames, --num-frames: close enough to --max-frames for difflib
    "--start-frame": "--start",
    "--first-frame": "--start",
    "--fps": "--camera-fps",
}
# live has no --stride or --start: a camera's newest frame is always the one processed
LIVE_NO_STRIDE_HINT = (
    "; a live camera has no --stride or --start: its newest frame is always the one processed (a slow model skips "
    "the others); --max-frames N stops after N frames"
)

# a batch resumes by being run again: `--resume`, as other tools spell it, got "unrecognized arguments" alone
PREDICT_RESUME_HINT = (
    "; predict resumes without an option: the same command run again skips the pairs whose outputs are all there "
    "(--overwrite redoes them)"
)


_NUMBER = {"int": "a whole number", "float": "a number"}  # what argparse's type=int and type=float take


class _Parser(argparse.ArgumentParser):
    """argparse that answers a mistyped verb or option with the close matches."""

    verb_parsers: dict[str, _Parser]  # the top-level parser's: each verb's own

    def error(self, message: str):  # noqa: D102 - argparse hook
        # type=int and type=float options in the words of the others' (--max-disp: "expected a whole number, got 'x'"),
        # not argparse's "invalid int value: 'x'", which names a Python type
        message = re.sub(
            r"invalid (int|float) value: ('.*')$", lambda m: f"expected {_NUMBER[m[1]]}, got {m[2]}", message
        )
        # One line, like every other error of ours; the usage is one --help away.
        self.exit(
            EXIT_USAGE, f"{self.prog}: error: {message}{self._close_matches(message)} (see `{self.prog} --help`)\n"
        )

    def _print_message(self, message: str, file: Any = None) -> None:
        """argparse's own, but for a stdout that refuses ``--help`` or ``--version``: argparse let its failure pass,
        and ``rtstereo predict --help > /dev/full`` printed nothing with exit code 0."""
        if not message:
            return
        file = sys.stderr if file is None else file
        try:
            file.write(message)
            file.flush()
        except OSError as exc:
            if file is not sys.stdout:  # stderr: nowhere left to say it
                return
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the flush at exit would fail again, with a traceback
            if not isinstance(exc, BrokenPipeError):  # `--help | head -1`: the reader has what it wanted
                self.exit(EXIT_FAILED, f"{self.prog}: error: cannot write to stdout: {exc.strerror or exc}\n")

    def _close_matches(self, message: str) -> str:
        """``; did you mean ...?`` for a mistyped verb (argparse's invalid choice) or option (an unrecognized one)."""
        choice = re.match(r"argument \S+: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            words, candidates = [choice.group(1)], re.findall(r"'([^']*)'", choice.group(2))
        elif message.startswith("unrecognized arguments: "):
            given = message.partition("; ")[0]  # not the hint after it, whose own options were offered back
            words = [word.partition("=")[0] for word in given.split()[2:] if word.startswith("--")]
            candidates = [option for action in self._actions for option in action.option_strings]
            if {"--provider", "--providers"} & set(words) and "--backend" in candidates:  # one that runs ONNX Runtime
                return BENCH_PROVIDERS_HINT if self.prog.endswith(" bench") else PROVIDERS_HINT
            if self.prog.endswith(" export") and {"--precision", "--device", "--threads", "--backend"} & set(words):
                return EXPORT_RUNTIME_HINT
            if self.prog.endswith(" export") and {"--width", "--height", "--disparity"} & set(words):
                return EXPORT_SEED_HINT
            if self.prog.endswith(" eval") and {"--data", "--val-data"} & set(words):
                return EVAL_DATA_HINT
            if self.prog.endswith(" predict") and {"--resume", "--skip-existing", "--continue"} & set(words):
                return PREDICT_RESUME_HINT
            if self.prog.endswith(" live") and {"--stride", "--start", "--every", "--step", "--skip"} & set(words):
                return LIVE_NO_STRIDE_HINT
        else:
            return ""
        meant = [STREAM_OPTION_SYNONYMS[word] for word in words if STREAM_OPTION_SYNONYMS.get(word) in candidates]
        # 0.75: close enough to be a slip of the keys (at 0.7, --version was offered --precision)
        close = meant + [
            match for word in words for match in difflib.get_close_matches(word, candidates, n=2, cutoff=0.75)
        ]
        return f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""


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
    parser.verb_parsers = subparsers.choices  # for main's own error line
    return parser


_CTRL_C = threading.Event()  # set by main's SIGINT handler, _ctrl_c
_CTRL_C_LOST = threading.Event()  # set when Python could not raise a Ctrl-C (see _interrupt_lost)


def _ctrl_c(signum, frame):  # noqa: ARG001 - a signal handler's signature
    """Python's own answer to Ctrl-C, remembered: a C extension being imported at that moment (NumPy,
    onnxruntime) turns the KeyboardInterrupt into an ImportError ("import numpy failed", "initialization
    failed"), which read as a traceback or as a missing package ("needs the Python package 'onnxruntime'")."""
    _CTRL_C.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    SIGTERM (``kill PID``, a job scheduler's stop) is Ctrl-C from start to end, also while the model loads or a
    single pair runs: one "interrupted" line and exit code 130, not a silent exit with code 143 (the verbs that
    count what they wrote install their own handler around that work).
    """
    own_handler = threading.current_thread() is threading.main_thread()
    own_handler = own_handler and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous_hook = sys.unraisablehook
    atomic = sys.modules.get("rtstereo.io.atomic")  # not imported here: rtstereo.io imports NumPy (see _main)
    if atomic is not None:
        atomic.TERMINATED.clear()  # an earlier run's SIGTERM, in this process
    if own_handler:
        _CTRL_C.clear()
        signal.signal(signal.SIGINT, _ctrl_c)
        _CTRL_C_LOST.clear()
        sys.unraisablehook = functools.partial(_interrupt_lost, previous_hook)
    try:
        with _any_encoding():
            return _main(argv)
    except ImportError:
        if not _interrupted():
            raise
        print(f"rtstereo{_verb_in(argv)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if own_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.unraisablehook = previous_hook


@contextlib.contextmanager
def _any_encoding() -> Iterator[None]:
    """stdout and stderr print what their encoding cannot hold as ``\\xe8``: a scene folder ``scènes`` printed on
    an ASCII terminal or pipe (``LANG=C``, ``PYTHONIOENCODING=ascii``) ended the run in a UnicodeEncodeError
    traceback, before its results were written."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(OSError, ValueError):  # a full or closed stream: its own failure is told later
                stream.reconfigure(errors="backslashreplace")
                changed.append(stream)
    try:
        yield
    finally:
        for stream in changed:
            with contextlib.suppress(OSError, ValueError):
                stream.reconfigure(errors="strict")


def _interrupted() -> bool:
    """Whether Ctrl-C (:data:`_CTRL_C`) or a SIGTERM (``rtstereo.io.atomic.TERMINATED``) was raised as an interruption
    in this run: an import it cut short reads as an ``ImportError`` or a missing package."""
    atomic = sys.modules.get("rtstereo.io.atomic")
    return _CTRL_C.is_set() or (atomic is not None and atomic.TERMINATED.is_set())


def _interrupt_lost(previous_hook: Callable[[Any], object], unraisable: Any) -> None:
    """``sys.unraisablehook`` while :func:`main` runs: Ctrl-C that Python could not raise is remembered.

    Ctrl-C while a callback ran where Python cannot raise (the import system's weakref callback of a module lock,
    ``_get_module_lock.<locals>.cb``, as the verbs were imported at start-up) was printed as "Exception ignored in:
    ..." with a traceback, and the run went on. Sending the signal again from here would raise it in here, where it
    is lost again: :func:`_run` acts on it once the verbs are imported (:data:`_CTRL_C_LOST`).
    """
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _CTRL_C_LOST.set()
    previous_hook(unraisable)


def _verb_in(argv: list[str] | None) -> str:
    """`` VERB`` when the command line names one, else ``""``: for messages before the parser has read it."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    return f" {words[0]}" if words and words[0] in VERBS else ""


def _main(argv: list[str] | None) -> int:
    with contextlib.ExitStack() as sigterm_as_ctrl_c:
        try:
            from ..io.atomic import terminate_as_interrupt  # rtstereo.io imports NumPy: here, where Ctrl-C is answered

            sigterm_as_ctrl_c.enter_context(terminate_as_interrupt())
        except KeyboardInterrupt:
            print(f"rtstereo{_verb_in(argv)}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        # Building the parser imports every verb (NumPy, OpenCV, the models: the slow part of the
        # start), so Ctrl-C there is answered like Ctrl-C in the verb's work.
        parser = build_parser()
        # tqdm too, here: imported below, SIGTERM as it loaded ended the start in a traceback
        from ..progress import silenced  # noqa: F401 - loaded here, used by _run_verb

        if _CTRL_C_LOST.is_set():  # Ctrl-C while a module was imported, which Python could not raise there
            raise KeyboardInterrupt
        args, extra = parser.parse_known_args(argv)
    except KeyboardInterrupt:
        print(f"rtstereo{_verb_in(argv)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if extra:  # argparse's own parse_args names the program alone: say whose arguments they are not
        verb_parser = parser.verb_parsers.get(args.verb, parser) if args.verb else parser
        verb_parser.error(f"unrecognized arguments: {' '.join(extra)}{_expanded_glob_hint(args, extra)}")
    if not getattr(args, "func", None):  # a usage error like any other: one line on stderr, stdout left empty
        parser.error(f"expected a verb: {', '.join(VERBS)}")
    verb_parser = parser.verb_parsers[args.verb]
    empty = _empty_argument(verb_parser, args, EMPTY_REFUSED_ONLY.get(args.verb))
    if empty is not None:  # "$UNSET" in a script: '' read as no option, or as the current folder
        verb_parser.error(f"argument {empty}: an empty value")
    stdout = sys.stdout = _Output(sys.stdout)
    sys.stderr = _Output(sys.stderr)  # `2>&1 | head -1`: the closed pipe ended a batch at its first progress line
    try:
        code = _run_verb(args)
        if stdout.lost is not None and not isinstance(stdout.lost, BrokenPipeError):
            # `--json > result.json` on a full disk: the run failed, as a full disk does (a closed pipe, `| head -1`,
            # is the reader going away: not an error of ours)
            reason = stdout.lost.strerror or stdout.lost
            print(f"rtstereo {args.verb}: error: cannot write the result to stdout: {reason}", file=sys.stderr)
            code = code or EXIT_FAILED
        return code
    finally:
        sys.stdout, sys.stderr = (s.stream if isinstance(s, _Output) else s for s in (sys.stdout, sys.stderr))
        if stdout.lost is not None:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the flush at exit would fail again, with a traceback


def _run_verb(args: argparse.Namespace) -> int:
    """Run the verb the command line names; its errors, as one line on stderr and the exit code."""
    from ..progress import silenced  # imported by _run already, where SIGTERM is answered

    try:
        with one_voice(args.verb), silenced(getattr(args, "quiet", False) is True):
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # what is still buffered fails here, in the verb's name, not at exit with a traceback
            return code
    except RtStereoError as exc:
        if _interrupted() and isinstance(exc, MissingDependencyError):  # an import that Ctrl-C or SIGTERM cut short
            print(f"rtstereo {args.verb}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"rtstereo {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED if disk_full_reason(str(exc)) or _camera_lost(exc) else EXIT_USAGE
    except BrokenPipeError:  # the reader went away, met past sys.stdout (its buffer): not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # A path no file can have (--calib, --rectify, --model with a name over the file system's limit): Path.exists()
        # and is_file() raise on it rather than answer, and the run ended in a traceback wherever one was asked
        from ..text import shortened

        named = f" {shortened(exc.filename, 500)}" if exc.filename is not None else ""
        print(f"rtstereo {args.verb}: error:{named}: no file can have this name ({exc.strerror})", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"rtstereo {args.verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


class StdoutUnwritable(OSError):
    """stdout refused a write that is not a closed pipe (a full disk under ``> result.json``, a device error)."""


class _Output:
    """``sys.stdout`` or ``sys.stderr`` while a verb runs: a write or flush that fails does not end the verb, whose
    files are its results as much as what it prints (a full disk under ``eval ... > result.txt`` ended the run at the
    table, before its results were saved; a closed pipe, ``2>&1 | head -1``, at the first progress line of a batch).
    The first failure is kept in :attr:`lost` and what is printed after it goes nowhere; :func:`_run` tells stdout's
    once the verb is done: a closed pipe is not an error of ours, anything else is one line and exit code 1."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.lost: OSError | None = None

    def write(self, text: str) -> int:
        if self._writable():
            try:
                return self.stream.write(text)
            except OSError as exc:
                self.lost = exc
        return len(text)

    def writelines(self, lines: Any) -> None:
        if self._writable():
            try:
                self.stream.writelines(lines)
            except OSError as exc:
                self.lost = exc

    def flush(self) -> None:
        if self._writable():
            try:
                self.stream.flush()
            except OSError as exc:
                self.lost = exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def _writable(self) -> bool:
        if self.stream is None and self.lost is None:
            # `rtstereo models >&-`: Python has no stdout, and print() failed with AttributeError (`2>&-`: printed
            # on stdout what was meant for stderr)
            self.lost = StdoutUnwritable(errno.EBADF, "it is closed")
        return self.lost is None


def _camera_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a camera lost mid-stream (unplugged, stalled): a run that failed, not a usage error."""
    from ..sources.base import CameraLostError  # imported with the verbs that open cameras

    return isinstance(exc, CameraLostError)


def _empty_argument(
    parser: argparse.ArgumentParser, args: argparse.Namespace, only: Iterable[str] | None = None
) -> str | None:
    """The first argument given as an empty string, named as argparse names it, or ``None``; ``only``: the
    destinations looked at, when not all are (see :data:`EMPTY_REFUSED_ONLY`).

    Each was read as something else, with exit code 0: ``-o ''`` as no output (predict, bench) or the
    current folder (eval); ``eval ''`` scored the current folder, ``--model ''`` ran ``default``, ``--calib ''`` was
    no calibration.
    """
    for action in parser._actions:
        if only is not None and action.dest not in only:
            continue
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        values = [v for item in values for v in (item if isinstance(item, list) else [item])]  # append + nargs
        if "" in values:
            return "/".join(action.option_strings) or action.metavar or action.dest
    return None


def _expanded_glob_hint(args: argparse.Namespace, extra: list[str]) -> str:
    """What to do when ``predict`` is given more image files than LEFT RIGHT, or ``calibrate`` more than one after
    ``--left`` and ``--right``: the shell expanded an unquoted pattern (``L/*.png R/*.png``), whose first files became
    the arguments and the rest unrecognized ones."""
    if args.verb not in ("predict", "calibrate"):
        return ""
    if not all(os.path.isfile(word or "") for word in (args.left, args.right, *extra)):
        return ""
    if args.verb == "calibrate":
        return (
            f"; {len(extra) + 2} files came in place of --left PATTERN --right PATTERN: the shell expanded them, so "
            "quote each for rtstereo to match it (--left 'L/*.png' --right 'R/*.png'), or give the folders"
        )
    return (
        f"; {len(extra) + 2} files came in place of LEFT RIGHT: the shell expanded a pattern, so quote it "
        "for rtstereo to match it ('L/*.png' 'R/*.png'), or give the folders"
    )


@contextlib.contextmanager
def one_voice(verb: str) -> Iterator[None]:
    """While a verb runs, everything on stderr is rtstereo's, one line each.

    Python warnings (rtstereo's and its libraries') are printed as ``rtstereo VERB: warning: ...``
    lines without source paths, each message once (only their formatting changes: code that records warnings, such as
    ``pytest.warns``, still receives them); OpenCV logs errors only; what C libraries print during a
    call that fails is held back (:mod:`rtstereo.io.quiet`), so the user's first line is the error
    that explains it.
    """
    import cv2

    from ..io.images import LOW_BIT_DEPTH_SAID
    from ..io.quiet import FFMPEG_DEBUG, FFMPEG_LOGLEVEL, FFMPEG_QUIET, hold_native_output

    def one_line(message, category, filename, lineno, line=None):  # noqa: ARG001 - warnings' signature
        # Said once per run: Python's own "once per place" forgets what it said whenever a `catch_warnings`
        # block ends (bench warned of each row's unmatched band when timing it and again when scoring it).
        if str(message) in SHOWN_WARNINGS:
            return ""
        SHOWN_WARNINGS.add(str(message))
        text = " ".join(str(message).split())
        return f"rtstereo {verb}: warning: {text}\n"

    SHOWN_WARNINGS.clear()
    LOW_BIT_DEPTH_SAID.reset()  # said once per run, and a run in this process is a new one

    logging, error_level = _opencv_logging(cv2)
    level = logging.getLogLevel()
    # Errors only: OpenCV's warnings about a damaged file come with our own error.
    logging.setLogLevel(error_level)
    quiet_ffmpeg = FFMPEG_LOGLEVEL not in os.environ and FFMPEG_DEBUG not in os.environ
    if quiet_ffmpeg:
        # FFmpeg's own lines (hundreds of "[mpeg4 @ 0x...] marker does not match f_code" for one damaged frame)
        # off; what they mean is said once by rtstereo: a file it cannot open, or whose frames end before its
        # header's count. OpenCV reads the variable when it first opens a video; set it to 16 to see them again.
        os.environ[FFMPEG_LOGLEVEL] = FFMPEG_QUIET
    previous = hold_native_output(True)
    previous_format = warnings.formatwarning
    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = previous_format
        hold_native_output(previous)
        logging.setLogLevel(level)
        if quiet_ffmpeg:
            os.environ.pop(FFMPEG_LOGLEVEL, None)


def _opencv_logging(cv2) -> tuple[object, int]:
    """What sets OpenCV's log level, and the level of errors only: ``cv2.utils.logging`` from OpenCV 4.13 on;
    ``cv2`` itself in 4.10 to 4.12 (which pyproject.toml allows; 4.8 and 4.9 too), whose levels are plain numbers."""
    logging = getattr(cv2.utils, "logging", None)
    if logging is not None:
        return logging, logging.LOG_LEVEL_ERROR
    return cv2, 2  # cv::utils::logging::LOG_LEVEL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
