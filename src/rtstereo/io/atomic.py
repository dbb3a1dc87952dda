"""Atomic outputs: every file is written under a temporary name, then renamed onto its real name.

A rename within one folder is atomic on POSIX file systems (and on NTFS), so a reader, or a rerun
that skips complete outputs, never sees a half-written file under a final name: an interrupted run
leaves at most a hidden ``.partial`` file or folder behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError

PARTIAL_MARK = ".partial-"
# The machine in a tag: its host name's first label, in letters, digits and "-" (no "." or "@", which part it).
_HOST_NAME = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def _pid_namespace() -> str:
    """The number of this process's PID namespace (Linux), or ``""`` where there is none to read."""
    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid"))
    except OSError:
        return ""


def _machine_tag(host_name: str, pid_namespace: str) -> str:
    """Where a writer's process number means something: its host and PID namespace. Containers sharing the host's
    name (``docker run --network host``) number their processes apart: one's writer, alive, was another's
    nonexistent process, and its staging folder was removed under it.

    Examples:
        >>> _machine_tag("box", "4026531836"), _machine_tag("box", "")
        ('box-pidns4026531836', 'box')
    """
    return f"{host_name}-pidns{pid_namespace}" if pid_namespace else host_name


_HOST = _machine_tag(_HOST_NAME, _pid_namespace())
# ``.partial-PID-HEX@HOST`` (``@HOST`` missing in the tags of earlier versions, taken as this machine's).
_TAG = re.compile(re.escape(PARTIAL_MARK) + r"(\d+)-[0-9a-f]{8}(?:@([A-Za-z0-9-]+))?")


def _partial_tag() -> str:
    # The writer's process and machine, so that what a killed writer left can be told from what a live one writes.
    return f"{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}@{_HOST}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by another user
        return True
    return True


def remove_stale_partials(folder: str | Path) -> list[Path]:
    """Remove what writers that no longer run left in ``folder``: hidden staging folders
    (:func:`staging_folder`) and partial files (:func:`atomic_path`) whose writer was killed before its
    ``finally`` could remove them (``kill -9``, a Ray worker lost mid-write, the machine's memory killer).

    Only this machine's are judged (the process named in the tag no longer exists); another machine's (or another
    PID namespace's: a container's), and a live writer's, are left alone, so a run beside this one in the same
    folder is not disturbed.

    Args:
        folder: the output folder (its own entries only; a missing folder holds none).

    Returns:
        The paths removed.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / ".partial-999999999-0123abcd@elsewhere").mkdir()  # another machine's: kept
        >>> remove_stale_partials(folder), len(list(folder.iterdir()))
        ([], 1)
    """
    folder = Path(folder)
    removed = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return removed
    for entry in entries:
        match = _TAG.search(entry.name)
        # A tag of the host name alone: an earlier version's, judged here as it was then.
        if match is None or (match.group(2) or _HOST) not in (_HOST, _HOST_NAME) or _process_alive(int(match.group(1))):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _remove(path)
        if not path.exists():
            removed.append(path)
    return removed


RUN_MARK = ".rtstereo-run"


@contextlib.contextmanager
def folder_claimed(folder: str | Path, verb: str = "predict") -> Iterator[None]:
    """Hold ``folder`` for one batch: a hidden ``.rtstereo-run.partial-PID-HEX@HOST`` file in it says a run writes
    there, and a run that finds another's refuses to start. Two runs into one folder each did every pair, and with
    other options (a calibration, a model) a pair could be left with one run's map beside the other's sidecar.

    The file is removed when the block ends; one that a killed run left (``kill -9``) names a process of this machine
    that no longer exists and is passed over (and removed, as :func:`remove_stale_partials` removes a staging folder).
    A folder that cannot be written is not held: its pairs' writes say why. A folder made here is removed again when
    the block leaves it empty.

    Raises:
        InputError: another run, alive on this machine or of another machine, holds the folder.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with folder_claimed(folder):
        ...     try:
        ...         with folder_claimed(folder):
        ...             pass
        ...     except InputError as exc:
        ...         print(str(exc).split(" (process")[0].replace(str(folder), "FOLDER"))
        FOLDER is being written by another rtstereo run
        >>> list(folder.iterdir())
        []
    """
    folder = Path(folder)
    made = not os.path.lexists(folder)
    marker = folder / f"{RUN_MARK}{_partial_tag()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        marker.touch(exist_ok=False)
    except OSError:
        marker = None
    try:
        if marker is not None:
            other = _other_run(folder, marker)
            if other is not None:
                raise InputError(other)
        yield
    finally:
        if marker is not None:
            _remove(marker)
            if made:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _other_run(folder: Path, own: Path) -> str | None:
    """What :func:`folder_claimed` says of another run holding ``folder``, or ``None`` when none does."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TAG.search(entry.name)
            if not entry.name.startswith(RUN_MARK) or match is None or entry.name == own.name:
                continue
            pid, host = int(match.group(1)), match.group(2) or _HOST
            if host in (_HOST, _HOST_NAME):
                if not _process_alive(pid):
                    _remove(Path(entry.path))  # a killed run's
                    continue
                whose = f"process {pid} of this machine"
            else:  # its process cannot be looked at from here
                whose = f"process {pid} on {host}; if no run goes on there, remove {Path(entry.path)}"
            return (
                f"{folder} is being written by another rtstereo run ({whose}): wait for it to end, or give -o another "
                "folder (two runs into one folder would each do every pair, and with other options leave pairs with "
                "files of both)"
            )
    return None


def partial_path(path: str | Path) -> Path:
    """A hidden temporary name beside ``path``, with the suffix kept (writers pick formats by it) and the
    writer's tag, so that :func:`remove_stale_partials` removes it if this process is killed before its
    ``finally`` runs.

    Examples:
        >>> name = partial_path("out/video.mp4").name
        >>> name.startswith(".video.partial-") and name.endswith(".mp4") and _TAG.search(name) is not None
        True
    """
    path = Path(path)
    return path.with_name(f".{path.stem}{_partial_tag()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` that becomes ``path`` when the block ends without an error.

    The temporary name keeps the suffix, so writers that pick the format by suffix work unchanged.
    On an error the temporary file is removed and the error propagates.

    Args:
        path: the final file.
        what: what it holds, for the error (``"the parity report"``: "cannot write the parity report PATH: ...").

    Yields:
        The temporary path to write.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "a.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> sorted(p.name for p in folder.iterdir())
        ['a.txt']
    """
    path = Path(path)
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    except OutputError as exc:  # the writer's message names the temporary file: name the user's instead
        _remove(partial)
        exc.args = tuple(a.replace(str(partial), str(path)) if isinstance(a, str) else a for a in exc.args)
        raise
    except OSError as exc:
        _remove(partial)
        raise OutputError(f"cannot write {what + ' ' if what else ''}{path}: {os_reason(exc, path)}") from None
    except BaseException:
        _remove(partial)
        raise


def _remove(path: Path) -> None:
    """Delete a temporary file if there is one (its folder may not even exist)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


INTERRUPTED_SUFFIX = ".interrupted"


def interrupted_results_stem(
    folder: str | Path, stem: str, suffix: str = INTERRUPTED_SUFFIX, partial_keys: tuple[str, ...] = ("interrupted",)
) -> str:
    """The stem an interrupted run's results (``<stem>.json`` and its companions) are written under in ``folder``:
    ``stem`` unless ``<stem>.json`` is there and is not itself a partial run's (one of ``partial_keys`` true,
    ``"interrupted": true`` by default), then ``<stem><suffix>`` (``<stem>.interrupted``), so that a partial run
    never replaces a complete one of the same name.

    Examples:
        >>> import json, tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> interrupted_results_stem(root, "bench")
        'bench'
        >>> _ = (root / "bench.json").write_text(json.dumps({"interrupted": False}))
        >>> interrupted_results_stem(root, "bench")
        'bench.interrupted'
        >>> _ = (root / "bench.json").write_text(json.dumps({"interrupted": True}))
        >>> interrupted_results_stem(root, "bench")
        'bench'
    """
    import json

    earlier = Path(folder) / f"{stem}.json"
    if not earlier.exists():
        return stem
    try:
        document = json.loads(earlier.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):  # not ours to judge: kept
        document = None
    if isinstance(document, dict) and any(document.get(key) is True for key in partial_keys):
        return stem
    return stem + suffix


def remove_interrupted_results(
    folder: str | Path, stem: str, suffixes: tuple[str, ...], partial_suffixes: tuple[str, ...] = (INTERRUPTED_SUFFIX,)
) -> list[Path]:
    """Delete ``<stem>.interrupted<suffix>`` (each of ``partial_suffixes``) in ``folder``, an earlier interrupted
    run's partial results, once a complete run has written ``<stem>.*``: kept, they would read as this run's, or as a
    run cut short after it.

    Returns:
        The files removed.

    Raises:
        OutputError: one of them cannot be removed.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "bench.interrupted.json").write_text("{}")
        >>> [p.name for p in remove_interrupted_results(root, "bench", (".json", ".md"))], list(root.iterdir())
        (['bench.interrupted.json'], [])
    """
    removed = []
    for partial, suffix in [(partial, suffix) for partial in partial_suffixes for suffix in suffixes]:
        stale = Path(folder) / f"{stem}{partial}{suffix}"
        if not stale.is_file():
            continue
        try:
            stale.unlink()
        except OSError as exc:
            raise OutputError(f"cannot remove {stale}, an earlier partial run's: {os_reason(exc, stale)}") from None
        removed.append(stale)
    return removed


def folder_write_problem(folder: str | Path) -> str | None:
    """Why files cannot be written in ``folder``, or ``None`` when they can: it (and any missing parent) is
    made and a temporary file created there, and the folders made to find out are removed again, so
    that a command refused afterwards leaves nothing behind.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> folder_write_problem(root / "new" / "deeper"), (root / "new").exists()
        (None, False)
        >>> _ = (root / "taken").write_text("x")
        >>> folder_write_problem(root / "taken" / "sub").endswith("taken is a file, not a folder")
        True
    """
    folder = Path(folder)
    chain = [folder, *folder.parents]
    made = chain[: next((i for i, path in enumerate(chain) if path.exists()), len(chain))]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return os_reason(exc, folder / "probe")
    finally:
        for path in made:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
    return None


def name_length_problem(path: str | Path) -> str | None:
    """Why the file system cannot hold ``path``: one of its names is longer than it takes (``None`` when none is).

    Checked before any work: Python's ``Path.is_dir`` and ``is_file`` raise on such a name rather than answer,
    and ``-o`` or ``--output-prefix`` with one ended in a traceback.

    Examples:
        >>> name_length_problem("out/" + "a" * 300 + ".pfm")
        'File name too long (a name of 304 bytes; the file system takes at most 255)'
        >>> name_length_problem("out/left.pfm") is None
        True
    """
    path = Path(path)
    existing = Path(".")
    for folder in (path, *path.parents):
        try:
            if folder.exists():
                existing = folder
                break
        except OSError:  # the name too long itself
            continue
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no answer
        limit = 255
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if limit is None or limit <= 0 or longest <= limit:
        return None
    return f"File name too long (a name of {longest} bytes; the file system takes at most {limit})"


def os_reason(exc: OSError, path: str | Path) -> str:
    """Why writing ``path`` failed, in words that name no temporary file: the file in the way when a
    folder above ``path`` is one, else the system's reason (``Permission denied``).

    Examples:
        >>> import tempfile
        >>> blocker = Path(tempfile.mkdtemp()) / "taken"
        >>> _ = blocker.write_text("x")
        >>> os_reason(FileExistsError(17, "File exists"), blocker / "out").endswith("taken is a file, not a folder")
        True
    """
    blocker = file_in_the_way(path)
    if blocker is not None:
        return not_a_folder(blocker)
    if exc.errno in (errno.EEXIST, errno.ENOENT):  # mkdir said "File exists" of a link to a folder that is gone
        dangling = next((p for p in (Path(path), *Path(path).parents) if p.is_symlink() and not p.exists()), None)
        if dangling is not None:
            return f"{dangling} is a link to {os.readlink(dangling)}, which does not exist"
    return exc.strerror or str(exc)


def make_parent(path: Path) -> None:
    """Make the folder ``path`` is to be written in, where missing.

    Raises:
        OutputError: it cannot be made (``cannot write PATH: ...``, naming a file in its way, :func:`os_reason`).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_reason(exc, path)}") from None


def not_a_folder(path: str | Path) -> str:
    """``PATH is a file, not a folder``, with a device, a pipe or a socket called so (:func:`kind_of_file`): the one
    way every command says that a path it needs as a folder is none (``/dev/null`` was "a file" in several).

    Examples:
        >>> not_a_folder("/dev/null")
        '/dev/null is a device, not a folder'
    """
    return f"{path} is {kind_of_file(path)}, not a folder"


def kind_of_file(path: str | Path) -> str:
    """What an existing path that is no folder is, in words: ``-o /dev/null`` was "is a file, not a folder".

    Examples:
        >>> kind_of_file("/dev/null")
        'a device'
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file"


def file_in_the_way(path: str | Path) -> Path | None:
    """The file where a folder above ``path`` should be (the nearest of them that exists), or ``None``.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "taken").write_text("x")
        >>> file_in_the_way(root / "taken" / "a" / "b") == root / "taken", file_in_the_way(root / "free" / "b")
        (True, None)
    """
    existing = next((folder for folder in Path(path).parents if folder.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


@contextlib.contextmanager
def staging_folder(folder: str | Path) -> Iterator[Path]:
    """A hidden folder inside ``folder`` to write into before files are renamed into ``folder``.

    The staging folder is removed when the block ends, also after an error.

    Raises:
        OutputError: ``folder`` cannot be created or written.
    """
    folder = Path(folder)
    staging = folder / _partial_tag()
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        doing = "write into" if folder.is_dir() else "create"  # a folder there already, read-only
        raise OutputError(f"cannot {doing} output folder {folder}: {os_reason(exc, staging)}") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staged: Path, staging: Path, folder: Path) -> Path:
    """Rename a file written inside ``staging`` to the same relative place in ``folder``.

    Returns:
        The final path.
    """
    final = folder / staged.relative_to(staging)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
    except OSError as exc:
        reason = "a folder of that name is in the way" if final.is_dir() else os_reason(exc, final)
        raise OutputError(f"cannot write {final}: {reason}") from None
    return final


_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def handlers_to_take(numbers: tuple[int, ...]) -> dict[int, Any]:
    """The handlers in place for ``numbers`` that a block may take over and put back, by signal.

    An ignored signal stays ignored: a shell without job control starts its ``&`` jobs with SIGINT ignored, so that
    the Ctrl-C which stops the script does not stop them (and what they start inherits that). A handler not set
    from Python (``getsignal`` gives ``None``) could not be put back: that signal is left alone as well.

    Args:
        numbers: the signals asked for (``signal.SIGINT``, ``signal.SIGTERM``).

    Returns:
        The handler in place of each of ``numbers`` that may be taken over; the others left out.

    Examples:
        >>> previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        >>> handlers_to_take((signal.SIGINT,))
        {}
        >>> _ = signal.signal(signal.SIGINT, previous)
    """
    handlers = {number: signal.getsignal(number) for number in numbers}
    return {number: handler for number, handler in handlers.items() if handler not in (None, signal.SIG_IGN)}


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while the block runs (a few renames, a training step), then send them again to
    the handlers that were in place (Ctrl-C raises ``KeyboardInterrupt``): a set of files is all or none, a step is
    done or not begun; they are sent also when the block raised. A second signal during the block acts at once (a
    block that hangs). A signal the process ignores stays ignored.

    Only the main thread receives signals, so elsewhere the block simply runs.

    Examples:
        >>> with interrupts_deferred():
        ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = handlers_to_take(_DEFERRED_SIGNALS)
    caught: list[int] = []

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def hold(number: int, frame: Any) -> None:  # noqa: ARG001 - a signal handler's signature
        caught.append(number)
        if len(caught) > 1:  # the second: the block is cut short
            restore()
            _send_again(caught)

    for number in previous:
        signal.signal(number, hold)
    try:
        yield
    finally:  # also after an error: a batch goes on past a pair it could not write, and lost the Ctrl-C
        restore()
        _send_again(caught)


def _send_again(caught: list[int]) -> None:
    """Send the signals held back, in the order they came, to the handlers now in place (the first that raises ends
    it), each once."""
    while caught:
        signal.raise_signal(caught.pop(0))


def interruption_cause(exc: BaseException) -> str:
    """What a ``KeyboardInterrupt`` stands for: the signal's name (``SIGTERM``) where :func:`terminate_as_interrupt`
    raised it, else ``Ctrl-C`` (Python raises it for SIGINT).

    Examples:
        >>> interruption_cause(KeyboardInterrupt())
        'Ctrl-C'
    """
    return getattr(exc, "signal_name", None) or "Ctrl-C"


TERMINATED = threading.Event()
"""Set when :func:`terminate_as_interrupt` raises for a SIGTERM: a C extension being imported at that moment
(onnxruntime, NumPy) turns the interruption into an ``ImportError``, which the command line then tells from a
missing package (as it tells a Ctrl-C so). Cleared by the command line as it starts."""


@contextlib.contextmanager
def terminate_as_interrupt(
    error: type[KeyboardInterrupt] = KeyboardInterrupt, unless: Callable[[], bool] | None = None, once: bool = False
) -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler's stop) raises ``KeyboardInterrupt`` while the block runs, so that a
    batch ends as after Ctrl-C: between two pairs' files, with the pairs written counted and its summary table
    written (Ray's own handler, in place after ``ray.init``, exits at once). Elsewhere than in the main thread,
    where SIGTERM is ignored (it stays so), or where the handler in place was not set from Python, the block simply
    runs.

    Args:
        error: what a SIGTERM raises (a ``KeyboardInterrupt`` type, so that it ends the work as Ctrl-C does).
        unless: a SIGTERM while this says True is ignored (a run already writing its state after Ctrl-C).
        once: only the first SIGTERM raises; later ones are ignored (the state being written is not cut short).

    Examples:
        >>> with terminate_as_interrupt():
        ...     pass
    """
    if threading.current_thread() is not threading.main_thread() or not handlers_to_take((signal.SIGTERM,)):
        yield
        return
    raised = False

    def stop(number, frame):
        nonlocal raised
        if (once and raised) or (unless is not None and unless()):
            return
        raised = True
        TERMINATED.set()
        interrupt = error(f"signal {number}")
        interrupt.signal_name = signal.Signals(number).name  # what a report says stopped it (see interruption_cause)
        raise interrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
