"""Locks between rtstereo processes (a run folder, a cache entry) that a killed holder never leaves held.

The lock is the system's advisory lock (``flock``) on a hidden file: the system releases it when the process
holding it ends, however it ends (Ctrl-C, ``kill -9``, the memory killer), so a lock file left behind never blocks
the next run. The file holds the holder's ``PID@HOST``, which a refusal names, and is removed on release.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then not taken (every caller still works alone)
    fcntl = None  # type: ignore[assignment]

# flock's errors where the file system keeps no locks.
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP}


class FileLock:
    """An exclusive lock on ``path`` between processes (also between two holders in one process).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / ".lock"
        >>> first, second = FileLock(path), FileLock(path)
        >>> first.acquire(), second.acquire(), second.holder() == f"{os.getpid()}@{socket.gethostname()}"
        (True, False, True)
        >>> first.release(); second.acquire(), path.exists()
        (True, True)
        >>> second.release(); path.exists()
        False
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock; ``False`` when another holder has it and ``wait`` is off (with ``wait``: once it is free).

        Raises:
            OSError: the lock file cannot be made (its folder is missing or cannot be written).
        """
        if self._fd is not None or fcntl is None:
            return True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    os.close(fd)
                    return False
                except OSError as exc:
                    if exc.errno not in _NO_LOCKS:
                        raise
                    # A file system without locks (some network and FUSE mounts): the work goes on unguarded, as
                    # it did before there were locks, rather than stop every run there.
                    os.close(fd)
                    with contextlib.suppress(OSError):
                        self.path.unlink()
                    return True
                # The holder before this one removes the file as it releases: a lock on that removed file locks
                # nothing another process can see, so the file under the name is opened and locked again.
                try:
                    current = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    current = False
                if current:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}@{socket.gethostname()}".encode())
                    self._fd = fd
                    return True
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def release(self) -> None:
        """Give the lock up and remove its file (nothing when not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # removed while held, so that a waiting process locks a new file
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def holder(self) -> str:
        """The ``PID@HOST`` the holder wrote, or ``""`` (not written yet, or unreadable)."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""


def holder_text(holder: str) -> str:
    """``"process 123 on host"`` from a lock's ``123@host``; ``"another process"`` when it is not known.

    Examples:
        >>> holder_text("123@box"), holder_text("")
        ('process 123 on box', 'another process')
    """
    pid, _, host = holder.partition("@")
    if not pid.isdigit():
        return "another process"
    return f"process {pid} on {host}" if host else f"process {pid}"
