"""Fetching a URL that the user named, once, into a cache (never at import or in tests)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import InputError, read_as, warn
from .atomic import os_reason, partial_path, remove_stale_partials

T = TypeVar("T")

# Seconds without an answer before a download gives up (a network that drops packets would otherwise
# keep a run silent for a minute per URL).
DOWNLOAD_TIMEOUT_S = 30
# A server that keeps answering, a few bytes at a time, never reaches that timeout: a download that gets less
# than this many bytes in DOWNLOAD_TIMEOUT_S seconds is given up as stalled.
STALLED_BYTES = 1024
# Downloads larger than this show a progress bar (when their size is not announced, once they pass it) ...
LARGE_DOWNLOAD_BYTES = 1 << 20
# ... and so does any download still going after this many seconds (a slow server or link).
SLOW_DOWNLOAD_S = 2.0


def is_url(text: str) -> bool:
    """Whether ``text`` is an http(s) or file URL.

    Examples:
        >>> is_url("https://example.org/a.png"), is_url("a.png")
        (True, False)
    """
    return str(text).split("://", 1)[0].lower() in ("http", "https", "file") and "://" in str(text)


def refuse_data_uri(text: str, what: str, python_call: str = "rtstereo.load(...).predict(left, right)") -> None:
    """Refuse a ``data:`` URI (an image inlined as base64), which is not read, in a line that does not repeat the
    whole URI; a file whose name starts with ``data:`` is read as a file. ``python_call`` is what takes the decoded
    array from Python.

    Raises:
        InputError: ``text`` is a ``data:`` URI and names no file.

    Examples:
        >>> refuse_data_uri("left.png", "image")
        >>> refuse_data_uri("data:image/png;base64," + "A" * 60, "image")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: image data:image/png;base64,AAAAAAAAAAAAAAAAAA... (82 characters): data: URIs ...
    """
    text = str(text)
    if text[:5].lower() != "data:" or os.path.exists(text):
        return
    shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
    raise InputError(
        f"{what} {shown}: data: URIs are not read; save it to a file and give its path (from Python, decode it and "
        f"pass the array to {python_call})"
    )


def refuse_other_url(text: str, what: str) -> None:
    """Refuse a URL of a scheme that is not read (``ftp://``, ``s3://``, ``gs://``...) in one line naming it: as a
    path, ``ftp://x/l.png`` was "image not found: ftp:/x/l.png", the URL made into a path. A file or folder of
    that name is read as one.

    Raises:
        InputError: ``text`` is a URL of another scheme than http, https and file.

    Examples:
        >>> refuse_other_url("https://example.org/l.png", "image")
        >>> refuse_other_url("ftp://example.org/l.png", "image")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: image ftp://example.org/l.png: ftp:// URLs are not read (only http://, https:// \
and file://); download the file and give its path
    """
    text = str(text)
    scheme = text.split("://", 1)[0]
    # one letter is a Windows drive (C://data/l.png), not a scheme
    if "://" not in text or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+", scheme) or is_url(text):
        return
    if os.path.exists(text):
        return
    raise InputError(
        f"{what} {text}: {scheme}:// URLs are not read (only http://, https:// and file://); download the file and "
        "give its path"
    )


def file_url_path(text: str) -> str | None:
    """The local path a ``file://`` URL names (``%20`` decoded), ``None`` for anything else.

    Examples:
        >>> file_url_path("file:///data/my%20pairs/l.png"), file_url_path("https://example.org/l.png")
        ('/data/my pairs/l.png', None)
    """
    if not is_url(text):
        return None
    parsed = urllib.parse.urlparse(str(text))
    return urllib.request.url2pathname(parsed.path) if parsed.scheme.lower() == "file" else None


def local_path_of(given: T, refusal: Callable[[str], Exception]) -> T | str:
    """``given`` as the local path it names, for a reader of local files only (a manifest, a dataset folder): a
    ``file://`` URL of this machine as its path; a path, or a file or folder named like a URL, as it is. A URL it
    cannot read (``https://``, ``s3://``, a ``file://`` URL of another host) is refused with ``refusal(given)``, in
    the caller's words (as a path, ``https://h/p.csv`` was "not found: https:/h/p.csv", the URL made into a path).

    Examples:
        >>> local_path_of("file:///data/my%20pairs.csv", ValueError), local_path_of("C://d/p.csv", ValueError)
        ('/data/my pairs.csv', 'C://d/p.csv')
        >>> local_path_of(None, ValueError), local_path_of("pairs.csv", ValueError)
        (None, 'pairs.csv')
        >>> local_path_of("https://example.org/p.csv", ValueError)
        Traceback (most recent call last):
        ...
        ValueError: https://example.org/p.csv
    """
    if not isinstance(given, str) or os.path.exists(given):
        return given
    path = file_url_path(given)
    if path is not None and urllib.parse.urlparse(given).netloc.lower() in ("", "localhost"):
        return path
    scheme = given.split("://", 1)[0]
    if "://" in given and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+", scheme):  # one letter: a Windows drive, C://
        raise refusal(given)
    return given


def cache_dir() -> Path:
    """``$RTSTEREO_CACHE`` or ``~/.cache/rtstereo``.

    An empty ``RTSTEREO_CACHE`` is unset (it was ``Path("")``, the current folder: downloads landed wherever the
    command ran), and a ``~`` in it is the home folder, as a shell would make it (a value quoted in a shell, or
    set in a ``.env`` file or a container's environment, made a folder named ``~`` in the current one).
    """
    folder = os.environ.get("RTSTEREO_CACHE", "")
    return Path(os.path.expanduser(folder)) if folder.strip() else Path.home() / ".cache" / "rtstereo"


def split_checksum(url: str) -> tuple[str, str | None]:
    """``url`` without a ``#sha256=HEX`` fragment (pip's way of naming a file's checksum), and that checksum.

    Raises:
        InputError: a ``sha256=`` fragment that is not 64 hexadecimal digits.

    Examples:
        >>> split_checksum("https://x.org/w.pth#sha256=" + "AB" * 32)
        ('https://x.org/w.pth', 'abababababababababababababababababababababababababababababababab')
        >>> split_checksum("https://x.org/w.pth")
        ('https://x.org/w.pth', None)
    """
    base, sep, fragment = str(url).partition("#")
    if not sep or not fragment.lower().startswith("sha256="):
        return str(url), None
    digest = fragment[len("sha256=") :].strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InputError(f"{url}: the checksum after #sha256= must be 64 hexadecimal digits, got '{digest}'")
    return base, digest


def fetch(url: str, *, progress: bool = True, subdir: str = "downloads", sha256: str | None = None) -> Path:
    """Download ``url`` once into the cache and return the local file, checked against its checksum when one is
    known (``sha256``, or a ``#sha256=HEX`` fragment of the URL).

    A ``file://`` URL is the file itself, read where it is (a cached copy would go stale when the file
    changes).

    Args:
        url: an http(s) or file URL, optionally ending in ``#sha256=HEX``.
        progress: show a progress bar on stderr for large files.
        subdir: folder of the cache to use.
        sha256: the file's SHA-256 in hexadecimal, when known (the URL's fragment otherwise).

    Returns:
        Path of the cached file (named by a hash of the URL plus its original name), or for a
        ``file://`` URL the file it names.

    Raises:
        InputError: the download failed; a ``file://`` URL names no file; the file's checksum is not the
            known one (a download whose checksum differs is not kept; a cached copy that differs is fetched
            again).
    """
    url, known = split_checksum(url)
    if sha256 is not None:
        sha256 = split_checksum(f"#sha256={sha256}")[1]
        if known is not None and known != sha256:
            raise InputError(f"{url}: two checksums given, {known} in the URL and {sha256}")
        known = sha256
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme.lower() == "file":
        if parsed.netloc.lower() not in ("", "localhost"):
            # file://tmp/l.png (two slashes) names the host "tmp": it said "file not found: /l.png", the path without
            # its first folder
            raise InputError(
                f"{url}: a file URL of the host '{parsed.netloc}', not of this machine: a local file's URL has three "
                f"slashes (file:///{parsed.netloc}{parsed.path} for the path /{parsed.netloc}{parsed.path})"
            )
        local = Path(urllib.request.url2pathname(parsed.path))
        if local.is_dir():  # it said "file not found" of a folder that is there
            raise InputError(f"{local} (from {url}) is a folder, not a file: name one file in it")
        if not local.is_file():
            raise InputError(f"file not found: {local} (from {url})")
        _check_sha256(local, known, url)
        return local
    name = Path(parsed.path).name or "download"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = cache_dir() / subdir / f"{key}-{_shortened(name)}"
    if target.is_file():
        recorded = _recorded_sha256(target)
        if known is None and recorded is None:  # a download of an earlier version, which recorded nothing
            return target
        actual = _sha256(target)
        if actual == (known or recorded):
            return target
        if known is None:
            # Truncated or replaced on the disk after it was downloaded: a truncated checkpoint failed as "cut short"
            # under the URL's name, and another file in its place (another checkpoint) was read without a word.
            warn(
                f"{url}: the cached copy {target} is not the file that was downloaded (its sha256 is {actual}, "
                f"{recorded} when downloaded): downloading it again"
            )
        _remove(target)  # an earlier download of another file at this URL, or damaged since: fetched again and checked
        _remove(_record_path(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = os_reason(exc, target)
        raise InputError(f"cannot download {url}: cannot create the cache folder {target.parent}: {reason}") from None
    # A download killed midway (kill -9, a lost machine) left its temporary file in the cache for good, and
    # NamedTemporaryFile's was readable by its owner alone (a cache shared by several users could not read it):
    # the partial file is tagged with its process (removed here once that is gone) and made as any file is.
    remove_stale_partials(target.parent)
    partial = partial_path(target)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            try:
                tmp = partial.open("wb")
            except OSError as exc:
                raise _CacheWriteError(exc) from None
            with tmp:
                received = _copy(response, tmp, total, progress, name)
        if total and received != total:
            # read1 ends without an error where the server closes the connection early: the start of the file, cached
            # as the whole of it, failed every later run that read it ("damaged checkpoint", "not an image")
            raise InputError(f"the connection closed after {received} of its {total} bytes")
    except TimeoutError:
        _remove(partial)
        raise InputError(f"cannot download {url}: no answer within {DOWNLOAD_TIMEOUT_S} s") from None
    except _CacheWriteError as exc:
        # a cache folder the user cannot write, or a full disk: it said "[Errno 13] Permission denied: '<the hidden
        # partial file>'; check the address", which blamed the URL
        _remove(partial)
        raise InputError(
            f"cannot download {url}: cannot write in the cache folder {target.parent}: "
            f"{os_reason(exc.error, partial)} (RTSTEREO_CACHE chooses another folder)"
        ) from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:  # IncompleteRead of a chunk
        _remove(partial)
        if isinstance(getattr(exc, "reason", None), TimeoutError):
            raise InputError(f"cannot download {url}: no answer within {DOWNLOAD_TIMEOUT_S} s") from None
        # URLError's own text is "<urlopen error [Errno 111] Connection refused>": its reason says it plainly.
        plain = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
        reason = exc.reason if plain else exc
        raise InputError(
            f"cannot download {url}: {reason}; check the address, or download the file yourself and give its path"
        ) from None
    except BaseException:  # Ctrl-C halfway: no half-downloaded file left in the cache
        _remove(partial)
        raise
    try:
        _check_sha256(partial, known, url)
    except InputError:
        _remove(partial)
        raise
    _record_sha256(partial, target)
    shutil.move(partial, target)
    return target


def _record_path(target: Path) -> Path:
    """Where the SHA-256 of a cached download, as downloaded, is kept: beside it."""
    return target.with_name(f"{target.name}.sha256")


def _recorded_sha256(target: Path) -> str | None:
    """The SHA-256 recorded when ``target`` was downloaded, ``None`` when none was (or it cannot be read)."""
    try:
        digest = _record_path(target).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def _record_sha256(partial: Path, target: Path) -> None:
    """Record the downloaded file's SHA-256 beside its cache entry (written before the file is, under a temporary
    name renamed onto the record's, so that a record never belongs to a half-written file), or none if it cannot be
    written: the entry is then trusted as the downloads of earlier versions are."""
    record = _record_path(target)
    staged = partial_path(record)
    try:
        staged.write_text(_sha256(partial) + "\n", encoding="ascii")
        os.replace(staged, record)
    except OSError:
        _remove(staged)
        _remove(record)


# The longest file name in bytes that a cache entry takes from its URL: with the key before it, and the temporary
# name's tag or the record's ".sha256" after it, within the 255 bytes most file systems allow.
CACHED_NAME_BYTES = 120


def _shortened(name: str) -> str:
    """``name`` cut to :data:`CACHED_NAME_BYTES` bytes, its suffix kept (readers pick formats by it): a URL whose last
    part was longer than a file name ended in a traceback, "[Errno 36] File name too long" (the hash of the
    whole URL before it keeps two such URLs apart).

    Examples:
        >>> _shortened("w.pth"), len(_shortened("a" * 300 + ".pth")), _shortened("a" * 300 + ".pth")[-5:]
        ('w.pth', 120, 'a.pth')
    """
    if len(name.encode()) <= CACHED_NAME_BYTES:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix.encode()) <= 16 else ""
    room = CACHED_NAME_BYTES - len(suffix.encode())
    return name[: len(name) - len(suffix)].encode()[:room].decode(errors="ignore") + suffix


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: Path, known: str | None, url: str) -> None:
    """Refuse a file whose SHA-256 is not the known one (nothing to check when none is known)."""
    if known is None:
        return
    actual = _sha256(path)
    if actual != known:
        raise InputError(
            f"{url}: the file's sha256 is {actual}, expected {known}: not the file the checksum belongs to (a damaged "
            "download, or the file at that address changed); check the address and the checksum"
        )


def read_downloaded(
    url: str, read: Callable[[Path], T], *, subdir: str = "downloads", refused: type[Exception] = InputError
) -> T:
    """``read`` of the file ``url`` is downloaded to (:func:`fetch`). A download that ``read`` refuses with ``refused``
    (a web page in place of the file) is not kept in the cache, so that a rerun downloads it again, and the error
    names the URL, not the cache's file: the one way a calibration, rectification maps and weights from a URL are
    read (``--rectify URL`` of a web page named the cache's file and kept it, where ``--calib URL`` did neither).
    So do the warnings ``read`` gives (a focal length under 1 px named the cache's file).
    """
    local = fetch(url, subdir=subdir)
    try:
        with read_as(local, url):
            return read(local)
    except refused as exc:
        forget(local)
        raise refused(str(exc).replace(str(local), url)) from None


def forget(path: Path) -> None:
    """Remove a downloaded file from the cache, so that the next run downloads it again (what a URL gave
    that is not what was expected: an HTML page, a damaged file). Files outside the cache, such as those
    ``file://`` URLs name, are left alone."""
    if cache_dir().resolve() in Path(path).resolve().parents:
        _remove(Path(path))
        _remove(_record_path(Path(path)))


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


class _CacheWriteError(Exception):
    """Writing the download into the cache failed (told apart from the network's errors, which are OSErrors too)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _copy(response, out, total: int, show: bool, name: str) -> int:
    """Copy ``response`` into ``out``; the number of bytes copied. ``show``: a progress bar on stderr for a large
    download, from the start when its size ``total`` is announced, else once it has passed that size (a server that
    announces none, as a chunked answer does, downloaded a checkpoint for minutes without a word); and for a slow
    one, once it has taken :data:`SLOW_DOWNLOAD_S` (a 0.6 MB AnyNet checkpoint at 5 kB/s took two silent minutes).

    Raises:
        _CacheWriteError: ``out`` could not be written (a full disk).
    """

    def open_bar(done: int):
        from ..progress import progress_bar

        return progress_bar(
            total=total or None, initial=done, unit="B", unit_scale=True, desc=f"downloading {name}", file=sys.stderr
        )

    bar = open_bar(0) if show and total > LARGE_DOWNLOAD_BYTES else None
    # read1 returns what one read of the socket gave: read(n) waits for all n bytes, and a server that sends a
    # byte every few seconds kept it waiting for ever (each byte within the socket's timeout).
    read = getattr(response, "read1", response.read)
    started = window_start = time.monotonic()
    window_bytes, copied = 0, 0
    try:
        while chunk := read(1 << 16):
            try:
                out.write(chunk)
            except OSError as exc:
                raise _CacheWriteError(exc) from None
            copied += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            elif show and (
                (not total and copied > LARGE_DOWNLOAD_BYTES) or time.monotonic() - started >= SLOW_DOWNLOAD_S
            ):
                bar = open_bar(copied)
            window_bytes += len(chunk)
            if time.monotonic() - window_start >= DOWNLOAD_TIMEOUT_S:
                if window_bytes < STALLED_BYTES:
                    raise InputError(
                        f"the download stalled: {window_bytes} bytes in the last {DOWNLOAD_TIMEOUT_S} s (at least "
                        f"{STALLED_BYTES} expected)"
                    )
                window_start, window_bytes = time.monotonic(), 0
        try:
            out.flush()  # what the buffer holds fails here, not unguarded when the file closes
        except OSError as exc:
            raise _CacheWriteError(exc) from None
    finally:
        if bar is not None:
            bar.close()
    return copied
