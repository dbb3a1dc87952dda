"""Progress bars that suit where stderr goes: tqdm's bar, redrawn in place, on a terminal; plain lines now and
then in a log file or a pipe, where each carriage-return redraw would pile up on one ever-growing line."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from tqdm import tqdm

LINE_EVERY_PERCENT = 10  # without a terminal: a line each time the count passes another 10 % of the total ...
LINE_EVERY_S = 30.0  # ... and at least this often while it moves (the only rule when the total is not known)


_SILENCED: list[bool] = [False]  # a verb's --quiet, for the bars of code that does not know of it (a download's)


@contextlib.contextmanager
def silenced(quiet: bool) -> Iterator[None]:
    """While it lasts, with ``quiet``, every :class:`progress_bar` is off: a verb's ``--quiet`` reaches the bars
    its arguments do not (a ``--rectify`` or ``--weights`` URL's download bar was drawn under ``-q``)."""
    before = _SILENCED[0]
    _SILENCED[0] = bool(quiet) or before
    try:
        yield
    finally:
        _SILENCED[0] = before


class progress_bar(tqdm):  # noqa: N801 - used as tqdm is, a function-like name
    """``tqdm``, line by line when its stream is not a terminal.

    On a terminal it is tqdm's bar. Elsewhere (``2> run.log``, a pipe, a job scheduler's log) it prints the
    bar's text as a line of its own at the start, each time the count passes another :data:`LINE_EVERY_PERCENT`
    of the total, at least every :data:`LINE_EVERY_S` seconds while it moves, and at the end; ``tqdm.write``
    lines come between them as they do beside the bar.

    Examples:
        >>> import io
        >>> log = io.StringIO()
        >>> with progress_bar(total=40, desc="predict", unit="pair", file=log, bar_format="{desc}: {n}/{total}") as bar:
        ...     for _ in range(40):
        ...         _ = bar.update()
        >>> log.getvalue().splitlines()
        ['predict: 0/40', 'predict: 4/40', 'predict: 8/40', 'predict: 12/40', 'predict: 16/40', 'predict: 20/40', \
'predict: 24/40', 'predict: 28/40', 'predict: 32/40', 'predict: 36/40', 'predict: 40/40']
        >>> "\\r" in log.getvalue()
        False
    """

    def __init__(self, *args, **kwargs):
        if _SILENCED[0]:
            kwargs["disable"] = True
        stream = kwargs.get("file") or sys.stderr
        isatty = getattr(stream, "isatty", None)
        try:
            self._lines = not (isatty is not None and isatty())
        except ValueError:  # a closed stream
            self._lines = True
        if self._lines:
            kwargs.setdefault("mininterval", 0)  # each update is looked at: a 10 % step is said when it is reached
        self._line_n: float | None = None  # the count the last line showed
        self._line_step = -1
        self._line_t = 0.0
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if not self._lines:
            return super().display(msg, pos)
        if msg == "":  # tqdm clearing the bar: nothing was drawn in place
            return False
        now = time.monotonic()
        step = int(self.n * 100 // self.total) // LINE_EVERY_PERCENT if self.total else -1
        due = self._line_n is None or step > self._line_step or now - self._line_t >= LINE_EVERY_S
        if self._line_n == self.n or not due:
            return False
        self._line_n, self._line_step, self._line_t = self.n, step, now
        self.fp.write(f"{self if msg is None else msg}\n")
        getattr(self.fp, "flush", lambda: None)()
        return True

    def clear(self, nolock=False):
        if not self._lines:
            super().clear(nolock)

    def close(self):
        if self._lines and not self.disable:
            if self._line_n != self.n:  # the end, when no 10 % step showed it
                self._line_t = -LINE_EVERY_S
                self.display()
            self.leave = False  # tqdm would draw the bar again and end its line
        super().close()
