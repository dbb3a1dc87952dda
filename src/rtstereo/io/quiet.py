"""Holding back what C libraries print while a call that may fail runs.

libpng (``libpng error: ...``), FFmpeg (``moov atom not found``), OpenCV's logger and DepthAI write
straight to the process's file descriptors 1 and 2, out of Python's reach. Around such a call,
:func:`native_output_held` points both descriptors at a temporary file. When the call fails, its
noise is dropped: the error rtstereo raises says what happened in one line. When it succeeds, the
noise is written to stderr (never stdout, which carries results only).

Holding is off until the command line turns it on (:func:`hold_native_output`): a program that
imports rtstereo as a library keeps its descriptors untouched. Holds are serialised by a lock,
because descriptors are shared by all threads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_LOCK = threading.RLock()
_ENABLED = False


def hold_native_output(enabled: bool) -> bool:
    """Turn holding on or off for the whole process; returns the previous setting."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, enabled
    return previous


class HeldOutput:
    """What a held call printed; :meth:`discard` drops it although the call returned normally.

    Attributes:
        text: the captured bytes, decoded (filled when the block ends).
    """

    def __init__(self) -> None:
        self.text = ""
        self.discarded = False

    def discard(self) -> None:
        """Drop the noise: for calls that report failure by their return value (``imdecode`` -> ``None``)."""
        self.discarded = True


@contextlib.contextmanager
def native_output_held() -> Iterator[HeldOutput]:
    """Capture descriptors 1 and 2 while the block runs (when holding is on); see the module docstring.

    Yields:
        A :class:`HeldOutput`; after the block its ``text`` holds what was printed.
    """
    held = HeldOutput()
    if not _ENABLED:
        yield held
        return
    with _LOCK, tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = os.dup(1), os.dup(2)
        failed = True
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield held
            failed = False
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            held.text = sink.read().decode(errors="replace")
            if held.text and not failed and not held.discarded:
                sys.stderr.write(held.text)
                sys.stderr.flush()
