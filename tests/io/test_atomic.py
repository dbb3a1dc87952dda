"""Atomic writes: a file appears under its name only when complete."""

from __future__ import annotations

import numpy as np
import pytest

from rtstereo.errors import OutputError
from rtstereo.io import disparity
from rtstereo.io.atomic import atomic_path, publish, staging_folder
from rtstereo.sinks.files import save_single_file
from rtstereo.types import DisparityResult


def test_atomic_path_renames_on_success(tmp_path):
    with atomic_path(tmp_path / "a.pfm") as partial:
        assert partial.suffix == ".pfm" and partial.parent == tmp_path and partial.name.startswith(".a.partial-")
        partial.write_bytes(b"x")
        assert not (tmp_path / "a.pfm").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.pfm"]


def test_atomic_path_leaves_nothing_after_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(tmp_path / "a.png") as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_staging_folder_is_removed_and_publish_moves_files(tmp_path):
    with staging_folder(tmp_path / "out") as staging:
        (staging / "sub").mkdir()
        (staging / "sub" / "f.txt").write_text("done")
        final = publish(staging / "sub" / "f.txt", staging, tmp_path / "out")
    assert final == tmp_path / "out" / "sub" / "f.txt" and final.read_text() == "done"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub"]


def test_staging_folder_in_an_unwritable_place_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"), staging_folder(blocker / "out"):
        pass


def test_staging_folder_in_a_read_only_folder_says_it_cannot_write_into_it(tmp_path, monkeypatch):
    """A folder that exists but refuses new files was 'cannot create output folder', as if it were missing."""
    from pathlib import Path

    made = Path.mkdir

    def denied(self, *args, **kwargs):  # chmod 555 does not stop root, who runs these tests
        if self.parent == tmp_path:
            raise PermissionError(13, "Permission denied")
        return made(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(OutputError) as info, staging_folder(tmp_path):
        pass
    assert str(info.value) == f"cannot write into output folder {tmp_path}: Permission denied"


def test_publish_onto_a_folder_is_an_output_error(tmp_path):
    (tmp_path / "out" / "f.txt").mkdir(parents=True)  # a folder where the file should go
    with staging_folder(tmp_path / "out") as staging:
        (staging / "f.txt").write_text("x")
        with pytest.raises(OutputError) as info:
            publish(staging / "f.txt", staging, tmp_path / "out")
    assert str(info.value) == f"cannot write {tmp_path / 'out' / 'f.txt'}: a folder of that name is in the way"


def test_errors_name_the_users_path_never_the_temporary_one(tmp_path, monkeypatch):
    def refuse(path, array):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(disparity, "write_pfm", refuse)
    result = DisparityResult(np.ones((4, 6), np.float32))
    with pytest.raises(OutputError) as info:
        save_single_file(result, tmp_path / "d.pfm")
    assert str(info.value) == f"cannot write {tmp_path / 'd.pfm'}: Permission denied"
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    blocker = tmp_path / "taken.pfm"
    blocker.write_text("x")
    result = DisparityResult(np.ones((4, 6), np.float32))
    with pytest.raises(OutputError, match=f"cannot write .*: {blocker} is a file, not a folder"):
        save_single_file(result, blocker / "d.pfm")
    with pytest.raises(OutputError, match=f"cannot create output folder .*: {blocker} is a file, not a folder$"):
        with staging_folder(blocker / "out"):
            pass


def test_a_link_to_a_folder_that_is_gone_is_named_not_called_an_existing_file(tmp_path, capsys):
    """predict -o LINK/d.pfm (LINK to a folder deleted, or on a drive not mounted) said 'cannot write ...: File
    exists'."""
    from rtstereo.cli import main
    from rtstereo.io.atomic import folder_write_problem

    link, gone = tmp_path / "out", tmp_path / "gone"
    link.symlink_to(gone, target_is_directory=True)
    said = f"{link} is a link to {gone}, which does not exist"
    assert folder_write_problem(link) == said and folder_write_problem(link / "sub") == said
    left, right = tmp_path / "l.png", tmp_path / "r.png"
    left.write_bytes(b"")  # never read: the output is refused first
    right.write_bytes(b"")
    assert main(["predict", str(left), str(right), "-o", str(link / "d.pfm")]) == 2
    assert capsys.readouterr().err == f"rtstereo predict: error: cannot write {link / 'd.pfm'}: {said}\n"
    assert not gone.exists()


def test_a_map_too_large_for_a_png_keeps_its_error_and_leaves_no_folder(tmp_path):
    from rtstereo.errors import DisparityRangeError

    result = DisparityResult(np.full((4, 6), 300.0, np.float32))
    with pytest.raises(DisparityRangeError, match=r"300\.0 px does not fit a 16-bit PNG") as info:
        save_single_file(result, tmp_path / "new" / "d.png")
    assert info.value.max_disparity_px == 300.0
    assert list(tmp_path.iterdir()) == []


def _killed_mid_write(folder) -> None:
    """A process killed (SIGKILL) while it writes a pair's files in its staging folder and a partial file:
    its ``finally`` blocks never run, as with a Ray worker lost mid-write."""
    import signal
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from rtstereo.io.atomic import atomic_path, staging_folder\n"
        "with staging_folder(sys.argv[1]) as s, atomic_path(sys.argv[1] + '/d_00000.png') as p:\n"
        "    (s / 'a.pfm').write_bytes(b'half'); p.write_bytes(b'half')\n"
        "    print('writing', flush=True); time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)


def test_what_a_killed_writer_left_is_removed_and_a_live_or_remote_writers_kept(tmp_path):
    from rtstereo.io.atomic import remove_stale_partials

    _killed_mid_write(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(".partial-" in name for name in left), left
    remote = tmp_path / ".partial-12345-0123abcd@another-machine"
    remote.mkdir()
    with staging_folder(tmp_path) as live:
        removed = remove_stale_partials(tmp_path)
        assert sorted(p.name for p in removed) == left
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, remote.name])
    assert remove_stale_partials(tmp_path / "missing") == []


def test_a_partial_file_of_a_process_owned_by_another_user_is_kept(tmp_path, monkeypatch):
    """os.kill(pid, 0) on another user's live process fails with EPERM: that writer is alive."""
    import os

    from rtstereo.io.atomic import _HOST, remove_stale_partials

    def not_permitted(pid, number):
        raise PermissionError(1, "Operation not permitted")

    (tmp_path / f".d.partial-12345-0123abcd@{_HOST}.png").write_bytes(b"half")
    monkeypatch.setattr(os, "kill", not_permitted)
    assert remove_stale_partials(tmp_path) == [] and len(list(tmp_path.iterdir())) == 1


def test_a_partial_of_a_writer_in_another_pid_namespace_of_this_host_is_kept(tmp_path, monkeypatch):
    """Containers that share the host's name (docker run --network host) number their processes apart: a live
    writer in one was a process that did not exist in the other, whose next run removed its files under it."""
    from rtstereo.io import atomic

    namespace = atomic._pid_namespace()
    if not namespace:
        pytest.skip("no PID namespace to read here (/proc/self/ns/pid)")
    with monkeypatch.context() as inside:  # the other container's writer, alive there
        inside.setattr(atomic, "_HOST", atomic._machine_tag(atomic._HOST_NAME, str(int(namespace) + 1)))
        inside.setattr(atomic.os, "getpid", lambda: 999999999)
        theirs = atomic.partial_path(tmp_path / "d.png")
    theirs.write_bytes(b"being written")
    killed = tmp_path / f".e.partial-999999999-0123abcd@{atomic._HOST}.png"  # this namespace's, its writer gone
    killed.write_bytes(b"half")
    earlier = tmp_path / f".f.partial-999999999-0123abcd@{atomic._HOST_NAME}.png"  # an earlier version's tag
    earlier.write_bytes(b"half")
    assert sorted(atomic.remove_stale_partials(tmp_path)) == [killed, earlier]
    assert [p.name for p in tmp_path.iterdir()] == [theirs.name]


def _sigterm() -> str | None:
    """Send this process SIGTERM: what the KeyboardInterrupt it raised says stopped it, ``None`` if none was
    raised (caught here, as pytest would end the session on one)."""
    import os
    import signal

    from rtstereo.io.atomic import interruption_cause

    try:
        os.kill(os.getpid(), signal.SIGTERM)
    except KeyboardInterrupt as exc:
        return interruption_cause(exc)
    return None


def test_sigterm_raises_once_when_asked_and_the_handler_is_put_back():
    import signal

    from rtstereo.io.atomic import terminate_as_interrupt

    def reached(number, frame):  # not the default action, which would end pytest
        raise RuntimeError("SIGTERM reached the process's own handler")

    previous = signal.signal(signal.SIGTERM, reached)
    try:
        with terminate_as_interrupt(once=True):
            assert _sigterm() == "SIGTERM"
            assert _sigterm() is None  # a second one, while the state is written: ignored
        assert signal.getsignal(signal.SIGTERM) is reached
        with terminate_as_interrupt(unless=lambda: False):
            assert _sigterm() == "SIGTERM" and _sigterm() == "SIGTERM"
        with terminate_as_interrupt(unless=lambda: True):
            assert _sigterm() is None  # ignored while the caller says so
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_ignored_sigterm_stays_ignored_in_a_run():
    """A run started with SIGTERM ignored was stopped by one ("interrupted", exit code 130): the command line took
    the ignored signal over for the whole run."""
    import signal

    from rtstereo.io.atomic import terminate_as_interrupt

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            assert _sigterm() is None
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_full_disk_in_a_folder_names_the_users_file_never_the_staging_one(tmp_path, monkeypatch):
    from rtstereo.sinks.files import save_result

    def full(path, array):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(disparity, "write_pfm", full)
    with pytest.raises(OutputError) as info:
        save_result(DisparityResult(np.ones((4, 6), np.float32)), tmp_path / "out", "seq/p", ("png16", "pfm"))
    assert str(info.value) == f"cannot write {tmp_path / 'out' / 'seq' / 'p.pfm'}: No space left on device"
    assert list((tmp_path / "out").iterdir()) == []
