"""rtstereo.io.lock: a lock between processes that a killed holder never leaves held."""

from __future__ import annotations

import errno
import os
import threading

from tests.conftest import lock_held_elsewhere

from rtstereo.io import lock as lock_module
from rtstereo.io.lock import FileLock, holder_text


def test_a_lock_another_process_holds_is_refused_and_names_it(tmp_path):
    path = tmp_path / ".lock"
    with lock_held_elsewhere(path) as pid:
        mine = FileLock(path)
        assert not mine.acquire() and not mine.held
        assert holder_text(mine.holder()).startswith(f"process {pid} on ")
    assert mine.acquire() and mine.holder().startswith(f"{os.getpid()}@")
    mine.release()
    assert not path.exists()


def test_a_lock_file_its_killed_holder_left_does_not_block(tmp_path):
    path = tmp_path / ".lock"
    path.write_text("999999999@elsewhere")  # kill -9 leaves the file; the system released the lock
    mine = FileLock(path)
    assert mine.acquire()
    mine.release()


def test_a_waiting_process_gets_the_lock_under_the_name_when_the_holder_ends(tmp_path):
    """The holder removes the file as it releases: the waiter, which had locked that removed file, locks the one
    under the name again, so that a third process is refused rather than let in beside it."""
    path = tmp_path / ".lock"
    waiter = FileLock(path)
    with lock_held_elsewhere(path):
        done = threading.Thread(target=waiter.acquire, kwargs={"wait": True})
        done.start()
    done.join(60)
    assert waiter.held and path.exists()
    assert not FileLock(path).acquire()
    waiter.release()


def test_a_file_system_without_locks_lets_the_work_go_on(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    assert FileLock(tmp_path / ".lock").acquire()
    assert list(tmp_path.iterdir()) == []
