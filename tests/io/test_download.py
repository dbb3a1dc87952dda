"""URLs as inputs: ``file://`` read in place, http(s) downloads cached, and what a URL gave that is not
an image or a checkpoint not kept (no network: ``urlopen`` is replaced)."""

from __future__ import annotations

import io
import json
import re
import urllib.error
import warnings

import cv2
import numpy as np
import pytest

import rtstereo
from rtstereo.errors import CheckpointError, InputError
from rtstereo.io import download, read_image


class _Response(io.BytesIO):
    """What ``urllib.request.urlopen`` returns, enough for :func:`rtstereo.io.download.fetch`."""

    headers: dict = {}


@pytest.fixture
def served(monkeypatch, tmp_path):
    """``served[url] = bytes`` makes ``urlopen(url)`` return them; the cache is a fresh folder."""
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    pages: dict[str, bytes | Exception] = {}

    def urlopen(url, timeout):
        assert timeout == download.DOWNLOAD_TIMEOUT_S
        page = pages[url]
        if isinstance(page, Exception):
            raise page
        return _Response(page)

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    return pages


def _png(value: int) -> bytes:
    return cv2.imencode(".png", np.full((4, 6, 3), value, np.uint8))[1].tobytes()


def _cached(tmp_path) -> list[str]:
    folder = tmp_path / "cache" / "downloads"
    # each download's SHA-256, recorded beside it, is no cache entry of its own
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".sha256") if folder.is_dir() else []


def test_a_file_url_is_read_where_it_is_not_from_a_stale_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "my image ü.png"
    path.write_bytes(_png(10))
    assert read_image(path.as_uri())[0, 0, 0] == 10
    path.write_bytes(_png(200))  # the file changed: the next run reads the new one
    assert read_image(path.as_uri())[0, 0, 0] == 200
    assert not (tmp_path / "cache").exists()
    with pytest.raises(InputError, match="file not found"):
        read_image((tmp_path / "missing.png").as_uri())
    with pytest.raises(InputError, match=rf"{tmp_path} \(from {tmp_path.as_uri()}/?\) is a folder, not a file"):
        read_image(tmp_path.as_uri())  # it said "file not found" of the folder that is there


def test_a_file_url_with_two_slashes_names_a_host_and_is_refused_with_the_three_slash_url(tmp_path):
    path = tmp_path / "l.png"
    path.write_bytes(_png(10))
    first, rest = str(path).lstrip("/").split("/", 1)
    two_slashes = f"file://{first}/{rest}"  # the host is the path's first folder: it said "file not found: /rest"
    with pytest.raises(
        InputError, match=f"the host '{first}', not of this machine: .* three slashes \\(file://{path} "
    ):
        read_image(two_slashes)
    assert read_image(f"file://localhost{path}")[0, 0, 0] == 10  # this machine's name for itself


def test_an_http_url_is_downloaded_once(served, tmp_path):
    served["https://x.org/l.png"] = _png(7)
    assert read_image("https://x.org/l.png")[0, 0, 0] == 7
    served["https://x.org/l.png"] = _png(9)  # cached: the URL is not asked again
    assert read_image("https://x.org/l.png")[0, 0, 0] == 7
    assert len(_cached(tmp_path)) == 1


def test_a_url_that_gives_no_image_names_the_url_and_is_not_cached(served, tmp_path):
    served["https://x.org/l.png"] = b"<html>sign in first</html>"
    with pytest.raises(InputError, match=r"cannot read https://x.org/l.png: what it returned is not an image") as info:
        read_image("https://x.org/l.png")
    assert str(tmp_path) not in str(info.value)
    assert _cached(tmp_path) == []
    served["https://x.org/l.png"] = _png(5)  # fixed on the server: the rerun downloads it
    assert read_image("https://x.org/l.png")[0, 0, 0] == 5


def test_a_download_that_times_out_says_so_and_leaves_nothing(served, tmp_path):
    served["https://x.org/l.png"] = urllib.error.URLError(TimeoutError("timed out"))
    with pytest.raises(
        InputError,
        match=rf"cannot download https://x.org/l.png: no answer within "
        rf"{download.DOWNLOAD_TIMEOUT_S} s",
    ):
        read_image("https://x.org/l.png")
    assert _cached(tmp_path) == []


def test_a_download_refused_says_why_in_words_and_what_to_do(served, tmp_path):
    """It read 'cannot download URL: <urlopen error [Errno 111] Connection refused>', Python's repr of the error."""
    served["https://x.org/l.png"] = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(InputError) as info:
        read_image("https://x.org/l.png")
    assert str(info.value) == (
        "cannot download https://x.org/l.png: [Errno 111] Connection refused; check the address, or download the "
        "file yourself and give its path"
    )
    assert _cached(tmp_path) == []


@pytest.mark.parametrize("verb", ["load", "export"])
def test_weights_from_a_url_that_are_not_a_checkpoint_name_the_url_and_are_not_cached(served, tmp_path, verb):
    """`rtstereo export` (and adapt, which builds its network so) named the cache's file, and kept it: a rerun, once the
    server was fixed, read the same HTML page from the cache again."""
    pytest.importorskip("torch")
    from rtstereo.export.onnx_export import build_network

    served["https://x.org/state.pt"] = b"<html>not found</html>"
    with pytest.raises(CheckpointError) as info:
        if verb == "load":
            rtstereo.load("rtnet", weights="https://x.org/state.pt", max_disp=32)
        else:
            build_network("rtnet", "https://x.org/state.pt", {"max_disp": 32})
    assert "https://x.org/state.pt" in str(info.value) and str(tmp_path) not in str(info.value)
    assert not list((tmp_path / "cache" / "weights").iterdir())


def test_the_12bit_warning_names_the_url_not_the_cache_file(served, tmp_path, monkeypatch):
    from rtstereo.io import images

    monkeypatch.setattr(images.LOW_BIT_DEPTH_SAID, "said", False)
    served["https://x.org/raw.png"] = cv2.imencode(".png", np.full((4, 6), 4000, np.uint16))[1].tobytes()
    with pytest.warns(UserWarning, match=r"^https://x.org/raw.png is a 16-bit image"):
        read_image("https://x.org/raw.png")


# ---- a checksum, when one is known -------------------------------------------------------------


def test_a_url_with_its_sha256_is_checked_and_a_damaged_download_is_not_kept(served, tmp_path):
    import hashlib

    good = _png(7)
    digest = hashlib.sha256(good).hexdigest()
    served["https://x.org/w.png"] = _png(8)  # not the file the checksum belongs to
    with pytest.raises(
        InputError, match=rf"https://x.org/w.png: the file's sha256 is [0-9a-f]{{64}}, expected {digest}"
    ):
        download.fetch(f"https://x.org/w.png#sha256={digest}")
    assert _cached(tmp_path) == []
    served["https://x.org/w.png"] = good  # the URL asked without its fragment
    assert read_image(f"https://x.org/w.png#sha256={digest.upper()}")[0, 0, 0] == 7
    assert len(_cached(tmp_path)) == 1


def test_a_cached_file_that_is_not_the_known_one_is_fetched_again(served, tmp_path):
    import hashlib

    served["https://x.org/w.png"] = _png(8)
    stale = download.fetch("https://x.org/w.png")  # no checksum known: kept as it came
    served["https://x.org/w.png"] = good = _png(7)
    path = download.fetch("https://x.org/w.png", sha256=hashlib.sha256(good).hexdigest())
    assert path == stale and path.read_bytes() == good


@pytest.mark.parametrize("change", ["truncated", "replaced"])
def test_a_cached_download_changed_on_the_disk_is_downloaded_again_with_a_warning(served, tmp_path, change):
    """A cached checkpoint truncated on the disk failed as "cut short" under the URL's name (as if the server had
    sent it so), and another file in its place (another network's weights) was read without a word."""
    served["https://x.org/w.pth"] = b"the weights" * 100
    path = download.fetch("https://x.org/w.pth", subdir="weights")
    path.write_bytes(b"the wei" if change == "truncated" else b"other weights" * 100)
    with pytest.warns(UserWarning, match=r"x.org/w.pth: the cached copy .* is not the file that was downloaded"):
        again = download.fetch("https://x.org/w.pth", subdir="weights")
    assert again == path and path.read_bytes() == b"the weights" * 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert download.fetch("https://x.org/w.pth", subdir="weights") == path  # as downloaded: no warning


def test_a_cached_download_without_a_record_is_used_and_forget_removes_its_record(served, tmp_path):
    """A download cached by an earlier version recorded no checksum: it is used as it was."""
    served["https://x.org/l.png"] = _png(7)
    path = download.fetch("https://x.org/l.png")
    record = path.with_name(path.name + ".sha256")
    assert record.is_file()
    record.unlink()
    path.write_bytes(_png(9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image("https://x.org/l.png")[0, 0, 0] == 9
    download.forget(download.fetch("https://x.org/l.png"))
    assert list(path.parent.iterdir()) == []


@pytest.mark.parametrize("size, shown", [(3 << 20, True), (1 << 19, False)])
def test_a_large_download_of_unannounced_size_shows_progress(served, tmp_path, monkeypatch, capsys, size, shown):
    """A server that announces no size (a chunked answer) downloaded a checkpoint for minutes without a word: the
    bar needed a Content-Length. It now opens once the download passes the size at which announced ones show one."""

    class Chunked(_Response):
        def read1(self, n=-1):
            return super().read(1 << 16)

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Chunked(b"w" * size))
    assert download.fetch("https://x.org/w.pth", subdir="weights").stat().st_size == size
    err = capsys.readouterr().err
    assert ("downloading w.pth" in err) == shown
    if shown:
        assert "3.15MB" in err.splitlines()[-1]  # all of it counted, the part before the bar opened included


@pytest.mark.parametrize("seconds_per_read, shown", [(1.0, True), (0.01, False)])
def test_a_slow_download_shows_progress_whatever_its_size(served, monkeypatch, capsys, seconds_per_read, shown):
    """Under 1 MiB no bar was drawn: a 0.6 MB AnyNet checkpoint from a slow server took minutes without a word."""
    clock = iter(range(10_000))
    monkeypatch.setattr(download.time, "monotonic", lambda: next(clock) * seconds_per_read)

    class Small(_Response):
        headers = {"Content-Length": str(600_000)}

        def read1(self, n=-1):
            return super().read(1 << 16)

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Small(b"w" * 600_000))
    download.fetch("https://x.org/anynet.tar", subdir="weights")
    err = capsys.readouterr().err
    assert ("downloading anynet.tar" in err) == shown
    if shown:
        assert "600k/600k" in err.splitlines()[-1]


def test_a_checksum_is_checked_for_a_file_url_and_must_be_one(tmp_path):
    path = tmp_path / "w.png"
    path.write_bytes(_png(3))
    with pytest.raises(InputError, match="the file's sha256 is"):
        download.fetch(path.as_uri() + "#sha256=" + "0" * 64)
    with pytest.raises(InputError, match=r"#sha256= must be 64 hexadecimal digits, got 'abc'"):
        download.fetch(path.as_uri() + "#sha256=abc")


def test_a_download_that_trickles_is_given_up_as_stalled_and_leaves_nothing(served, tmp_path, monkeypatch):
    """A server that sends a byte every few seconds never reached the socket's timeout: the run waited for ever."""
    clock = [0.0]

    class Trickle(_Response):
        def read(self, size=-1):  # a byte every 10 s, as long as it is asked
            clock[0] += 10.0
            return b"x" if clock[0] < 1e6 else b""

        read1 = read

    monkeypatch.setattr(download.time, "monotonic", lambda: clock[0])
    served["https://x.org/slow.png"] = b""
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Trickle())
    with pytest.raises(InputError, match=r"cannot download https://x.org/slow.png: the download stalled: 3 bytes in"):
        read_image("https://x.org/slow.png")
    assert clock[0] < 100  # given up after the first 30 s, not after the 100 000 bytes the server would send
    assert _cached(tmp_path) == []


def test_a_data_uri_is_refused_in_a_short_line_and_a_file_named_so_is_read(tmp_path, monkeypatch, capsys):
    """It was 'image not found: data:image/png;base64,...' with the whole inlined image in the message."""
    import base64

    from rtstereo.cli import main

    uri = "data:image/png;base64," + base64.b64encode(_png(7)).decode()
    with pytest.raises(
        InputError, match=r"^image data:image/png;base64,\S{18}\.\.\. \(\d+ characters\): data: URIs are"
    ):
        read_image(uri)
    code = main(["predict", uri, str(tmp_path / "r.png"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "error: left image data:image/png;base64," in err and "data: URIs are not read" in err
    assert uri not in err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data:l.png").write_bytes(_png(9))  # a file of that name is a file
    assert read_image("data:l.png")[0, 0, 0] == 9


def test_a_video_given_as_an_image_is_named_a_video_and_not_downloaded_or_read(served, tmp_path, monkeypatch):
    """It was read whole into memory (or downloaded first), then 'not an image OpenCV can decode, or damaged'."""
    video = tmp_path / "left.MP4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: pytest.fail("the video was read"))
    for source in (video, "https://x.org/rig/left.mkv?raw=1"):  # served has no page: fetching would fail otherwise
        with pytest.raises(InputError, match=r"a video file, not an image; `rtstereo video LEFT RIGHT`"):
            read_image(source)
    assert _cached(tmp_path) == []


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\x00\x00\x00\x18ftypmp42", "MP4/QuickTime"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "Matroska/WebM"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "AVI"),
    ],
)
def test_a_video_saved_under_an_image_s_name_is_called_a_video(served, tmp_path, head, container):
    """A video named left.png (or a URL without a suffix giving one) said 'not an image OpenCV can decode, or the
    file is damaged' / 'a web page, or damaged'."""
    video = tmp_path / "left.png"
    video.write_bytes(head + bytes(64))
    served["https://x.org/rig/left"] = head + bytes(64)
    for source in (video, "https://x.org/rig/left"):
        said = f"cannot read {source}: a video file ({container}), not an image, whatever its name says; `rtstereo v"
        with pytest.raises(InputError, match=re.escape(said)):
            read_image(source)
    assert _cached(tmp_path) == []  # the download is not kept, as another file that is no image
    avif = tmp_path / "still.png"  # an image in an ISO media file, which this OpenCV may not decode: not a video
    avif.write_bytes(b"\x00\x00\x00\x1cftypavif" + bytes(64))
    with pytest.raises(InputError, match="not an image OpenCV can decode, or the file is damaged"):
        read_image(avif)


def test_a_checksum_must_be_hexadecimal_and_agree_with_the_urls(tmp_path):
    path = tmp_path / "w.png"
    path.write_bytes(_png(3))
    with pytest.raises(InputError, match=f"must be 64 hexadecimal digits, got '{'g' * 64}'"):
        download.fetch(path.as_uri() + "#sha256=" + "g" * 64)  # 64 characters, not all hexadecimal
    with pytest.raises(InputError, match=f"two checksums given, {'0' * 64} in the URL and {'1' * 64}"):
        download.fetch(path.as_uri() + "#sha256=" + "0" * 64, sha256="1" * 64)


@pytest.mark.parametrize(
    ("stop", "raised"),
    [(TimeoutError("timed out"), InputError), (KeyboardInterrupt(), KeyboardInterrupt)],
    ids=["timeout", "ctrl-c"],
)
def test_a_download_stopped_halfway_leaves_no_partial_file_in_the_cache(served, tmp_path, monkeypatch, stop, raised):
    class Halfway(_Response):
        def read(self, size=-1):
            if self.tell():
                raise stop
            return super().read(4)

        read1 = read  # what the download reads with (one read of the socket at a time)

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Halfway(_png(7)))
    with pytest.raises(raised):
        download.fetch("https://x.org/l.png")
    assert _cached(tmp_path) == []


def test_a_download_the_server_cut_short_is_refused_and_not_cached(served, tmp_path, monkeypatch):
    """A server that closed the connection after 300 of the 1000 bytes it announced: read1 ends without an error
    there, and the start of the file was cached as the whole of it, read by every later run."""

    class CutShort(_Response):
        headers = {"Content-Length": "1000"}

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: CutShort(b"x" * 300))
    with pytest.raises(InputError) as info:
        download.fetch("https://x.org/w.pth")
    assert str(info.value).startswith(
        "cannot download https://x.org/w.pth: the connection closed after 300 of its 1000 bytes; "
    )
    assert _cached(tmp_path) == []
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: CutShort(b"x" * 1000))
    assert download.fetch("https://x.org/w.pth").read_bytes() == b"x" * 1000  # all of it: kept


def test_a_chunked_download_cut_short_is_an_input_error_and_not_cached(served, tmp_path, monkeypatch):
    """http.client's IncompleteRead (a chunked answer cut short) is no OSError: it came out as its traceback."""
    import http.client

    class Chunked(_Response):
        def read1(self, size=-1):
            if self.tell():
                raise http.client.IncompleteRead(b"", 10)
            return super().read(4)

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Chunked(_png(7)))
    with pytest.raises(InputError, match=r"^cannot download https://x.org/l.png: IncompleteRead"):
        download.fetch("https://x.org/l.png")
    assert _cached(tmp_path) == []


def test_a_download_removes_what_a_download_killed_midway_left_and_is_readable_as_any_file(served, tmp_path):
    """A download killed midway (kill -9) left its temporary file (tmpXXXXXXXX) in the cache for good, and what was
    downloaded was readable by its owner alone (0600), so other users of a shared cache could not read it."""
    import os
    import stat

    from rtstereo.io.atomic import _HOST

    folder = tmp_path / "cache" / "downloads"
    folder.mkdir(parents=True)
    killed = folder / f".0123456789abcdef-l.partial-999999999-0123abcd@{_HOST}.png"
    killed.write_bytes(b"half an image")
    served["https://x.org/l.png"] = _png(7)
    path = download.fetch("https://x.org/l.png")
    assert _cached(tmp_path) == [path.name]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_cached_download_keeps_its_name_and_upper_case_schemes_are_urls(served, tmp_path):
    served["HTTPS://x.org/dir/l.png"] = _png(7)
    assert download.is_url("HTTPS://x.org/dir/l.png") and download.is_url("File:///tmp/l.png")
    assert read_image("HTTPS://x.org/dir/l.png")[0, 0, 0] == 7
    (name,) = _cached(tmp_path)
    assert name.endswith("-l.png")  # named by the file, which the suffix a reader picks by is part of


@pytest.mark.parametrize("stem", ["a" * 300, "ü" * 200])
def test_a_url_whose_name_is_longer_than_a_file_name_is_cached_under_a_shorter_one(served, tmp_path, stem):
    """It ended in a traceback, "OSError: [Errno 36] File name too long", from the cache entry's name."""
    served[f"https://x.org/{stem}.png"] = _png(7)
    served[f"https://x.org/{stem}b.png"] = _png(9)  # the same once cut: kept apart by the URL's hash
    assert read_image(f"https://x.org/{stem}.png")[0, 0, 0] == 7
    assert read_image(f"https://x.org/{stem}b.png")[0, 0, 0] == 9
    names = _cached(tmp_path)
    assert len(names) == 2 and all(len(name.encode()) <= 140 and name.endswith(".png") for name in names)


def test_forget_leaves_files_outside_the_cache_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's own file")
    download.forget(mine)
    assert mine.exists()
    cached = tmp_path / "cache" / "downloads" / "k-l.png"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a download")
    download.forget(cached)
    assert not cached.exists()


def test_a_cache_folder_that_cannot_be_made_is_said_in_words(tmp_path, monkeypatch):
    """It said "cannot create the cache folder .../downloads: [Errno 17] File exists: '.../cache'"."""
    (tmp_path / "cache").write_text("a file where the cache should be")
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError) as info:
        download.fetch("https://x.org/l.png")
    folder = tmp_path / "cache" / "downloads"
    expected = f"cannot create the cache folder {folder}: {tmp_path / 'cache'} is a file, not a folder"
    assert str(info.value) == f"cannot download https://x.org/l.png: {expected}"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_cache_variable_is_the_default_cache_not_the_current_folder(tmp_path, monkeypatch, value):
    """RTSTEREO_CACHE= (set, empty) was Path(""): downloads landed in whatever folder the command ran in."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RTSTEREO_CACHE", value)
    assert download.cache_dir() == tmp_path / "home" / ".cache" / "rtstereo"


def test_a_tilde_in_the_cache_variable_is_the_home_folder(tmp_path, monkeypatch):
    """A value the shell did not expand (quoted, or from a .env file) made a folder named '~' in the current one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RTSTEREO_CACHE", "~/rtstereo cache")
    assert download.cache_dir() == tmp_path / "home" / "rtstereo cache"


def _denied():
    raise PermissionError(13, "Permission denied")


class _FullDisk(io.BytesIO):
    def write(self, data):
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize(
    "open_partial, reason",
    [
        (_denied, "Permission denied"),
        (_FullDisk, "No space left on device"),
    ],
)
def test_a_cache_that_cannot_be_written_is_said_so_not_blamed_on_the_address(
    served, tmp_path, monkeypatch, open_partial, reason
):
    """A cache folder the user cannot write, or a full disk, said "cannot download URL: [Errno 13] Permission
    denied: '<the hidden partial file>'; check the address": the URL was blamed for the disk."""
    import pathlib

    real_open = pathlib.Path.open

    def open_(path, mode="r", *args, **kwargs):
        return open_partial() if ".partial-" in path.name and "w" in mode else real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_)
    served["https://x.org/w.pth"] = b"x" * 1000
    with pytest.raises(InputError) as info:
        download.fetch("https://x.org/w.pth", subdir="weights")
    folder = tmp_path / "cache" / "weights"
    assert str(info.value) == (
        f"cannot download https://x.org/w.pth: cannot write in the cache folder {folder}: {reason} (RTSTEREO_CACHE "
        "chooses another folder)"
    )
    assert list(folder.iterdir()) == []


def test_compare_reads_file_and_http_urls_as_predict_does(served, tmp_path, capsys):
    """`rtstereo compare URL B` was "file not found: http://..." (a file URL's too): it reads URLs as predict does."""
    from rtstereo.cli import main

    (tmp_path / "b.png").write_bytes(_png(7))
    served["https://x.org/a.png"] = _png(7)
    assert main(["compare", "https://x.org/a.png", (tmp_path / "b.png").as_uri(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == 0.0
    assert len(_cached(tmp_path)) == 1
    (tmp_path / "wide.png").write_bytes(cv2.imencode(".png", np.zeros((4, 12, 3), np.uint8))[1].tobytes())
    assert main(["compare", "https://x.org/a.png", str(tmp_path / "wide.png")]) == 2  # named by its URL, not its copy
    assert capsys.readouterr().err.startswith("rtstereo compare: error: https://x.org/a.png is 6x4 and ")
    assert main(["compare", "ftp://x.org/a.png", str(tmp_path / "b.png")]) == 2
    assert "rtstereo compare: error: file ftp://x.org/a.png: ftp:// URLs are not read" in capsys.readouterr().err


def test_a_calibration_is_read_from_file_and_http_urls_as_images_are(served, tmp_path):
    """--calib URL was "calibration file not found: http:/x.org/calib.txt", the URL made into a path."""
    from rtstereo.io.calibration import read_calibration

    text = "cam0=[300 0 160; 0 300 120; 0 0 1]\ncam1=[300 0 160; 0 300 120; 0 0 1]\ndoffs=0\nbaseline=100\n"
    served["https://x.org/calib.txt"] = text.encode()
    (tmp_path / "calib.txt").write_text(text)
    for source in ("https://x.org/calib.txt", (tmp_path / "calib.txt").as_uri()):
        calibration = read_calibration(source)
        assert (calibration.fx_px, calibration.baseline_m) == (300.0, 0.1), source
    assert len(_cached(tmp_path)) == 1
    with pytest.raises(InputError, match=r"^calibration file ftp://x.org/c.txt: ftp:// URLs are not read"):
        read_calibration("ftp://x.org/c.txt")


def test_a_warning_while_reading_a_calibration_url_names_the_url_not_the_cache(served, tmp_path):
    """A focal length under 1 px and a baseline in millimetres were said of the cache's file, never given."""
    from rtstereo.io.calibration import CalibrationUnitWarning, read_calibration

    text = "cam0=[0.8 0 0.5; 0 0.8 0.5; 0 0 1]\ncam1=[0.8 0 0.5; 0 0.8 0.5; 0 0 1]\ndoffs=0\nbaseline=100\n"
    served["https://x.org/calib.txt"] = text.encode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_calibration("https://x.org/calib.txt")
    said = [str(w.message) for w in caught if issubclass(w.category, CalibrationUnitWarning)]
    assert said and all(m.startswith("https://x.org/calib.txt: ") for m in said), said
    assert not any(str(tmp_path) in m for m in said), said


def test_a_calibration_url_that_gives_no_calibration_names_the_url_and_is_not_cached(served, tmp_path):
    """A web page in place of calib.txt was "<the cache's file>: unknown calibration format", and it stayed in the
    cache: once the server was fixed, a rerun read the same page again."""
    from rtstereo.io.calibration import read_calibration

    served["https://x.org/calib.txt"] = b"<html>sign in first</html>"
    with pytest.raises(InputError, match=r"^https://x.org/calib.txt: unknown calibration format") as info:
        read_calibration("https://x.org/calib.txt")
    assert str(tmp_path) not in str(info.value)
    assert _cached(tmp_path) == []
    served["https://x.org/calib.txt"] = b"cam0=[300 0 160; 0 300 120; 0 0 1]\ncam1=[300 0 160; 0 300 120; 0 0 1]\n"
    served["https://x.org/calib.txt"] += b"doffs=0\nbaseline=100\n"
    assert read_calibration("https://x.org/calib.txt").fx_px == 300.0


def test_quiet_hides_the_download_progress_bar_as_it_hides_the_others(served, tmp_path, capsys):
    """`rtstereo predict URL URL --quiet` ("no progress bar or summary") drew the download's progress bar."""
    from rtstereo.cli import main

    noise = np.random.default_rng(0).integers(0, 256, (640, 640, 3), np.uint8)
    served["https://x.org/l.png"] = cv2.imencode(".png", noise)[1].tobytes()
    served["https://x.org/r.png"] = cv2.imencode(".png", np.roll(noise, -4, axis=1))[1].tobytes()
    assert len(served["https://x.org/l.png"]) > download.LARGE_DOWNLOAD_BYTES
    url_pair = ["https://x.org/l.png", "https://x.org/r.png", "--model", "sgbm", "--max-disp", "16"]
    assert main(["predict", *url_pair, "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert "downloading" not in capsys.readouterr().err
    served["https://x.org/l2.png"] = served["https://x.org/l.png"]
    assert main(["predict", "https://x.org/l2.png", *url_pair[1:], "-o", str(tmp_path / "out2")]) == 0
    assert "downloading l2.png" in capsys.readouterr().err


def test_rectification_maps_are_read_from_file_and_http_urls_as_a_calibration_is(served, tmp_path, capfd):
    """--rectify URL was "rectification file not found: http:/x.org/maps.npz" (a file URL's too), and --calib URL of a
    stereo.yaml had OpenCV print "[ERROR:...] Can't open file: 'http:/x.org/stereo.yaml'" on stderr as it was checked
    for raw cameras, whose hint it then never gave."""
    from rtstereo.cli.rectification import raw_rig_hint
    from rtstereo.io.calibration import write_opencv
    from rtstereo.rectify import Rectifier
    from rtstereo.types import Calibration

    k = np.array([[300, 0, 159.5], [0, 300, 119.5], [0, 0, 1.0]])
    p1, p2 = np.hstack([k, np.zeros((3, 1))]), np.hstack([k, [[-30.0], [0], [0]]])
    calibration = Calibration(300, 300, 159.5, 159.5, 119.5, 0.1, width_px=320, height_px=240)
    rig = Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p1, p2, (320, 240), calibration)
    rig.save(tmp_path / "maps.npz")
    served["https://x.org/maps.npz"] = (tmp_path / "maps.npz").read_bytes()
    for source in ("https://x.org/maps.npz", (tmp_path / "maps.npz").as_uri()):
        assert Rectifier.from_file(source).calibration.baseline_m == pytest.approx(0.1), source
    with pytest.raises(InputError, match=r"^rectification file ftp://x.org/m.npz: ftp:// URLs are not read"):
        Rectifier.from_file("ftp://x.org/m.npz")
    cameras = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "P1": p1, "P2": p2}
    write_opencv(tmp_path / "stereo.yaml", cameras, 320, 240)
    served["https://x.org/stereo.yaml"] = (tmp_path / "stereo.yaml").read_bytes()
    capfd.readouterr()
    hint = raw_rig_hint("https://x.org/stereo.yaml")
    assert hint is not None and hint.startswith("https://x.org/stereo.yaml also holds the raw cameras (K1, D1, K2, D2)")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", ["maps.npz", "stereo.yaml"])
def test_rectification_maps_url_that_gives_none_names_the_url_and_is_not_cached(served, tmp_path, name):
    """--rectify URL of a web page named the cache's file ("cannot read rectification maps <cache>/...-maps.npz") and
    kept it, so a rerun read the same page again, where --calib URL did neither."""
    from rtstereo.rectify import Rectifier
    from rtstereo.types import Calibration

    url = f"https://x.org/{name}"
    served[url] = b"<html>sign in first</html>"
    with pytest.raises(InputError) as info:
        Rectifier.from_file(url)
    assert url in str(info.value) and str(tmp_path) not in str(info.value), str(info.value)
    assert _cached(tmp_path) == [] and not list((tmp_path / "cache" / "downloads").iterdir())
    k = np.array([[300, 0, 159.5], [0, 300, 119.5], [0, 0, 1.0]])
    p1, p2 = np.hstack([k, np.zeros((3, 1))]), np.hstack([k, [[-30.0], [0], [0]]])
    calibration = Calibration(300, 300, 159.5, 159.5, 119.5, 0.1, width_px=320, height_px=240)
    rig = Rectifier.from_matrices(k, np.zeros(5), k, np.zeros(5), np.eye(3), np.eye(3), p1, p2, (320, 240), calibration)
    if name == "maps.npz":
        rig.save(tmp_path / name)
    else:
        from rtstereo.io.calibration import write_opencv

        rig_matrices = {"K1": k, "D1": np.zeros(5), "K2": k, "D2": np.zeros(5), "R": np.eye(3), "T": [-0.1, 0, 0]}
        write_opencv(tmp_path / name, rig_matrices, 320, 240)
    served[url] = (tmp_path / name).read_bytes()  # the server fixed: the rerun downloads the file
    assert Rectifier.from_file(url).calibration.baseline_m == pytest.approx(0.1)


class _SizedResponse(io.BytesIO):
    """A response that says its length, as servers do: a download over 1 MiB then draws a progress bar."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_turns_off_the_bar_of_a_download_too(monkeypatch, tmp_path, capsys, quiet):
    """`predict URL URL -q` drew 'downloading l.png: 100%|...' for images over 1 MiB: --quiet reached the verb's own
    bars only."""
    from rtstereo.cli import main

    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    noise = np.random.default_rng(0).integers(0, 256, (600, 808, 3), dtype=np.uint8)
    views = {"l": noise[:, 8:], "r": noise[:, :-8]}  # the right view 8 px to the left: a pair, not one picture twice
    pages = {f"https://x.org/{side}.png": cv2.imencode(".png", view)[1].tobytes() for side, view in views.items()}
    assert all(len(page) > 1 << 20 for page in pages.values())
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: _SizedResponse(pages[url]))
    argv = ["predict", *pages, "--model", "bm", "--max-disp", "16", "--no-rectification-check", "-o", f"{tmp_path}/o/"]
    assert main([*argv, *(["-q"] if quiet else [])]) == 0
    assert ("downloading l.png" in capsys.readouterr().err) != quiet


@pytest.mark.parametrize("name", ["a.png", "a.pfm", "a.npy"])
def test_a_compare_url_that_gives_no_image_or_map_names_the_url_and_is_not_cached(served, tmp_path, capsys, name):
    """A web page in place of an image or a map was named by its cache file and kept: once the server was fixed, a
    rerun compared the same page again; predict, export, adapt and --calib forget such a download."""
    from rtstereo.cli import main
    from rtstereo.io import write_disparity

    url, good = f"https://x.org/{name}", tmp_path / f"b{name[1:]}"
    (tmp_path / "b.png").write_bytes(_png(7))
    write_disparity(tmp_path / "b.pfm", np.full((4, 6), 7.0, np.float32))
    np.save(tmp_path / "b.npy", np.full((4, 6), 7.0, np.float32))
    served[url] = b"<html>sign in first</html>"
    assert main(["compare", url, str(good)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtstereo compare: error: ") and url in err and str(tmp_path / "cache") not in err, err
    assert _cached(tmp_path) == []
    served[url] = good.read_bytes()  # the server fixed: the next run downloads it again
    assert main(["compare", url, str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == 0.0


def test_two_good_compare_downloads_of_other_sizes_are_kept(served, tmp_path, capsys):
    """Each file is good on its own: the size mismatch is the pair's, so neither download is thrown away."""
    from rtstereo.cli import main

    served["https://x.org/a.png"] = _png(7)
    served["https://x.org/wide.png"] = cv2.imencode(".png", np.zeros((4, 12, 3), np.uint8))[1].tobytes()
    assert main(["compare", "https://x.org/a.png", "https://x.org/wide.png"]) == 2
    assert "another aspect ratio" in capsys.readouterr().err
    assert len(_cached(tmp_path)) == 2
