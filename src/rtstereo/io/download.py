"""Fetching a URL that the user named, once, into a cache (never at import or in tests)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import InputError


def is_url(text: str) -> bool:
    """Whether ``text`` is an http(s) or file URL.

    Examples:
        >>> is_url("https://example.org/a.png"), is_url("a.png")
        (True, False)
    """
    return str(text).split("://", 1)[0].lower() in ("http", "https", "file") and "://" in str(text)


def cache_dir() -> Path:
    """``$RTSTEREO_CACHE`` or ``~/.cache/rtstereo``."""
    return Path(os.environ.get("RTSTEREO_CACHE", Path.home() / ".cache" / "rtstereo"))


def fetch(url: str, *, sha256: str | None = None, progress: bool = True, subdir: str = "downloads") -> Path:
    """Download ``url`` once into the cache and return the local file.

    Args:
        url: an http(s) or file URL.
        sha256: expected hex digest; a mismatch deletes the file and raises.
        progress: show a progress bar on stderr for large files.
        subdir: folder of the cache to use.

    Returns:
        Path of the cached file (named by a hash of the URL plus its original name).
    """
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = cache_dir() / subdir / f"{key}-{name}"
    if target.is_file() and (sha256 is None or _digest(target) == sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                _copy(response, tmp, total, progress and total > 1 << 20, name)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError(f"cannot download {url}: {exc}") from None
    if sha256 is not None and _digest(Path(tmp.name)) != sha256:
        os.unlink(tmp.name)
        raise InputError(f"download of {url} does not match its expected sha256 {sha256}")
    shutil.move(tmp.name, target)
    return target


def _copy(response, out, total: int, show: bool, name: str) -> None:
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}", file=sys.stderr)
    while chunk := response.read(1 << 16):
        out.write(chunk)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
