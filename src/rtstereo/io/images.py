"""Reading images into the public format (uint8 RGB) and writing them.

BGR exists only inside this module's OpenCV calls.
"""

from __future__ import annotations

import contextlib
import io
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import InputError, OutputError, missing_file_message, require_path, warn
from .atomic import atomic_path, make_parent, os_reason
from .download import fetch, forget, is_url, refuse_data_uri, refuse_other_url
from .quiet import native_output_held

# Any bit depth and any channel count (alpha dropped), and turned upright as the file's EXIF orientation says,
# as viewers show it (IMREAD_UNCHANGED would keep a phone's portrait JPEG lying on its side).
IMREAD_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
# A 16-bit image whose values all stay below this most likely holds a 10-, 12- or 14-bit sensor's values.
LOW_BIT_DEPTH_LIMIT = 1 << 14
# A 16-bit image that keeps no more than this many of the 256 grey levels once divided by 257 is said to lose most of
# its levels: 14-bit data keeps 64, 12-bit data 16; values spanning 30000..31000 kept 4, unsaid.
FEW_LEVELS = 64
# OpenCV refuses to decode more pixels than this (its CV_IO_MAX_IMAGE_PIXELS, unless OPENCV_IO_MAX_IMAGE_PIXELS says).
OPENCV_MAX_PIXELS = 1 << 30
# The formats OpenCV writes in 16 bits; the others (.jpg, .webp, .bmp) clipped a uint16 image to 255, unsaid
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".jp2")
# Files with these suffixes are videos, which `rtstereo video` reads: read as an image, such a file was loaded whole
# into memory (gigabytes for a long one) and then said to be "not an image OpenCV can decode, or damaged".
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
# The first bytes of a TIFF (and a BigTIFF) file, in either byte order.
TIFF_HEADS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# EXIF's Orientation tag, and how each of its values turns the stored pixels to show them upright (1: as stored).
EXIF_ORIENTATION = 0x0112
ORIENTATION_TURNS = {
    1: "as stored",
    2: "mirrored left to right",
    3: "turned 180 degrees",
    4: "mirrored top to bottom",
    5: "mirrored across its diagonal",
    6: "turned 90 degrees clockwise",
    7: "mirrored across its other diagonal",
    8: "turned 90 degrees counter-clockwise",
}


class SaidOnce:
    """Whether a warning that a run says once (every image of a run could give it) has been said.

    ``rtstereo.cli.main`` starts each run with :meth:`reset`; a read ahead whose warnings are dropped (``predict``
    checking a batch's first pair) runs inside :meth:`unspent`, so that the read the run reports still says it.

    Examples:
        >>> once = SaidOnce()
        >>> with once.unspent():
        ...     first = once.take()
        >>> first, once.take(), once.take()
        (True, True, False)
    """

    def __init__(self) -> None:
        self.said = False

    def take(self) -> bool:
        """True the first time (say it now), then False until :meth:`reset`."""
        first, self.said = not self.said, True
        return first

    def reset(self) -> None:
        self.said = False

    @contextlib.contextmanager
    def unspent(self) -> Iterator[None]:
        """What the block says is not counted: the warning stays as said or unsaid as it was before it."""
        said = self.said
        try:
            yield
        finally:
            self.said = said


# 16-bit images that keep FEW_LEVELS grey levels or fewer at 8 bits: said for the first such image of a run.
LOW_BIT_DEPTH_SAID = SaidOnce()


def _warn_few_levels(path: str | Path, smallest: int, largest: int) -> None:
    """Say once per run that a 16-bit image keeps few grey levels at 8 bits: data of fewer bits (it turns dark),
    or values in a narrow band (the division by 257 merges them into a few levels)."""
    if not LOW_BIT_DEPTH_SAID.take():
        return
    if largest < LOW_BIT_DEPTH_LIMIT:
        warn(
            f"{path} is a 16-bit image whose values stay at or below {largest} (10-, 12- or 14-bit camera data?): "
            f"read as 16 bits (divided by 257) it keeps at most {largest // 257 + 1} of 256 grey levels and matching "
            "suffers; convert such images to 8 bits with their own bit depth first (12-bit: value >> 4, 14-bit: "
            "value >> 6). Said once for this run."
        )
        return
    levels = largest // 257 - smallest // 257 + 1
    warn(
        f"{path} is a 16-bit image whose values span only {smallest}..{largest}: read at 8 bits (divided by 257) it "
        f"keeps only {levels} of 256 grey levels and matching suffers; stretch that band to the whole range first, "
        "the same for both views. Said once for this run."
    )


def read_image(source: str | Path) -> npt.NDArray[np.uint8]:
    """Read an image file or URL as uint8 RGB ``(H, W, 3)``.

    Grey images are repeated to three channels, alpha is dropped, 16-bit images are scaled to 8 bits (divided
    by 257; a warning, once per run (:data:`LOW_BIT_DEPTH_SAID`), when that leaves 64 grey levels or fewer: a 10-,
    12- or 14-bit sensor's data, or values in a narrow band).
    An image whose EXIF orientation tag says it is stored rotated or mirrored (photos from phones and
    cameras) is turned upright, as viewers show it.

    Args:
        source: a path, a ``file://`` URL, or an http(s) URL (downloaded once into the cache; a download
            that is not an image is not kept).

    Returns:
        uint8 RGB array ``(H, W, 3)``.

    Raises:
        InputError: missing, unreadable or corrupt file.
    """
    return read_image_turned(source)[0]


def read_image_turned(source: str | Path) -> tuple[npt.NDArray[np.uint8], int]:
    """:func:`read_image`, and the EXIF orientation (1 to 8, :data:`ORIENTATION_TURNS`) by which it turned the
    file's pixels upright: 1 for a file read as stored. Only a JPEG's tag is reported, the one OpenCV applies in
    every version (it applies a PNG's or WebP's in some, a TIFF's in none): another file gives 1.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "side.jpg"
        >>> exif = Image.Exif()
        >>> exif[EXIF_ORIENTATION] = 6
        >>> Image.new("RGB", (4, 2)).save(path, exif=exif.tobytes())
        >>> image, turn = read_image_turned(path)
        >>> image.shape, ORIENTATION_TURNS[turn]
        ((4, 2, 3), 'turned 90 degrees clockwise')

    Raises:
        InputError: as :func:`read_image`.
    """
    image, where, turn = _decode_turned(source)
    if image.dtype == np.uint16:
        smallest, largest = int(image.min()), int(image.max())
        # An all-black image says nothing of the bit depth, nor a blank one (one value) of a band.
        narrow = smallest < largest and largest // 257 - smallest // 257 < FEW_LEVELS
        if 0 < largest < LOW_BIT_DEPTH_LIMIT or narrow:
            _warn_few_levels(where, smallest, largest)
        image = (image // 257).astype(np.uint8)
    return _to_rgb(image), turn


def read_image_levels(source: str | Path) -> np.ndarray:
    """Read an image file or URL as float32 RGB ``(H, W, 3)`` in 0..1 at its own bit depth: a 16-bit file's
    65 536 levels are kept (:func:`read_image` rounds them to 256), for comparing images that differ by less
    than one 8-bit level. Orientation, channels and errors as :func:`read_image`.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "grey16.png"
        >>> _ = cv2.imwrite(str(path), np.array([[5000, 5100]], np.uint16))
        >>> read_image(path)[0, :, 0].tolist(), (read_image_levels(path)[0, :, 0] * 65535).round().tolist()
        ([19, 19], [5000.0, 5100.0])
    """
    image, _ = _decode(source)
    return _to_rgb(image).astype(np.float32) / np.iinfo(image.dtype).max


def _decode(source: str | Path) -> tuple[np.ndarray, str | Path]:
    """The image as OpenCV decodes it (uint8 or uint16, BGR or grey, upright), and what messages call it."""
    image, where, _ = _decode_turned(source)
    return image, where


def _decode_turned(source: str | Path) -> tuple[np.ndarray, str | Path, int]:
    """:func:`_decode`, and the EXIF orientation the decoding applied (:func:`read_image_turned`)."""
    hint = (
        "; arrays go to rtstereo.load(...).predict(left, right) as they are" if isinstance(source, np.ndarray) else ""
    )
    path = require_path(source, "image", "a path or URL (str or Path)", hint)  # "~" expanded
    refuse_data_uri(str(source), "image")
    refuse_other_url(str(source), "image")
    url = str(source) if is_url(str(source)) else None
    named = Path(urllib.parse.urlparse(url).path) if url is not None else path
    if named.suffix.lower() in VIDEO_SUFFIXES and (url is not None or named.is_file()):  # before a download
        raise InputError(
            f"cannot read {url or named}: a video file, not an image; `rtstereo video LEFT RIGHT` (or --sbs VIDEO) "
            "computes the disparity of a video's frames"
        )
    path = fetch(url) if url is not None else path
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image: name an image file in it")
    if not path.is_file():
        raise InputError(missing_file_message("image", path))
    data = np.fromfile(path, dtype=np.uint8)
    with native_output_held() as noise:  # libpng / OpenCV print their own lines about a damaged file
        try:
            image = cv2.imdecode(data, IMREAD_FLAGS) if data.size else None
        except cv2.error as exc:  # an assertion, a traceback: OpenCV decodes at most 2**30 pixels
            if "CV_IO_MAX_IMAGE_PIXELS" not in str(exc):
                raise
            raise InputError(
                f"cannot read {url or path}: the image has more than the {OPENCV_MAX_PIXELS} pixels OpenCV decodes "
                "(the environment variable OPENCV_IO_MAX_IMAGE_PIXELS raises that limit; the memory budget still "
                "applies)"
            ) from None
        noise.discard()  # a failure is rtstereo's error below; a success's lines become a warning naming the file
    said = "; ".join(dict.fromkeys(line.strip() for line in noise.text.splitlines() if line.strip()))
    if image is not None and said:  # libjpeg decodes damaged data ("Corrupt JPEG data: bad Huffman code") anyway
        warn(
            f"{url or path}: the image library warned while decoding it ({said}); read as decoded: where the file is "
            "damaged, the image and its disparity are wrong"
        )
    if image is None:
        container = _video_container(data[:16].tobytes())
        if container is not None:  # a video saved under an image's name said "not an image ..., or damaged"
            if url is not None and url.split("://", 1)[0].lower() != "file":
                forget(path)
            raise InputError(
                f"cannot read {url or path}: a video file ({container}), not an image, whatever its name says; "
                "`rtstereo video LEFT RIGHT` (or --sbs VIDEO) computes the disparity of a video's frames"
            )
        if url is not None and url.split("://", 1)[0].lower() != "file":
            forget(path)  # not kept in the cache: a rerun downloads it again
            raise InputError(
                f"cannot read {url}: what it returned is not an image OpenCV can decode (a web page, or damaged)"
            )
        if not data.size:  # an interrupted copy or download, most often
            raise InputError(f"cannot read {path}: the file is empty (0 bytes)")
        if path.suffix.lower() in (".npy", ".npz"):  # valid, and not damaged: arrays go through the Python API
            raise InputError(
                f"cannot read {path}: a numpy array file is not read as an image; save it as a PNG or TIFF, or pass "
                "the arrays (uint8 RGB) to rtstereo.load(...).predict(left, right)"
            )
        raise InputError(f"cannot read {path}: not an image OpenCV can decode, or the file is damaged")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{url or path}: unsupported image depth {image.dtype} (expected 8 or 16 bit)")
    _warn_of_more_frames(url or path, data)
    return image, url or path, _jpeg_orientation(data)


def _warn_of_more_frames(where: str | Path, data: np.ndarray) -> None:
    """Say that only the first frame of an animated GIF, or the first page of a multi-page TIFF, is read (OpenCV
    decodes that one): the others were left without a word."""
    head = data[:4].tobytes()
    if head == b"GIF8":
        what, unit = "an animated GIF", "frame"
    elif head in TIFF_HEADS:
        what, unit = "a multi-page TIFF", "page"
    else:
        return
    try:  # PIL counts them from their headers; OpenCV would decode every one to count them
        with opened_with_pil(io.BytesIO(data.tobytes())) as opened:
            count = int(getattr(opened, "n_frames", 1))
    except Exception:  # noqa: BLE001 - what PIL cannot parse, OpenCV decoded: one image, as read
        return
    if count > 1:
        warn(
            f"{where} is {what} of {count} {unit}s: only its first {unit} is read; to read another, save that {unit} "
            "as an image of its own (a PNG)"
        )


# The brands of ISO media files (an "ftyp" box at byte 4) that hold still images (HEIF, AVIF), not a video.
IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def _video_container(head: bytes) -> str | None:
    """The video container the first bytes of a file announce (MP4/QuickTime, Matroska/WebM, AVI, FLV), or ``None``.

    Examples:
        >>> _video_container(b"\\x00\\x00\\x00\\x1cftypisom"), _video_container(b"\\x89PNG\\r\\n\\x1a\\n")
        ('MP4/QuickTime', None)
        >>> _video_container(b"\\x00\\x00\\x00\\x1cftypavif")  # an AVIF image
    """
    if head[4:8] == b"ftyp" and head[8:12] not in IMAGE_BRANDS:
        return "MP4/QuickTime"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:3] == b"FLV":
        return "FLV"
    return None


def header_size_hw(source: str | Path) -> tuple[int, int] | None:
    """``(H, W)`` of the image :func:`read_image` reads from a local file or ``file://`` URL, from the file's header
    (the pixels are not decoded; a JPEG's EXIF turn by 90 degrees swaps the two); ``None`` when the header does not
    tell (an http(s) URL, a file PIL cannot open).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.png"
        >>> _ = cv2.imwrite(str(path), np.zeros((2, 5), np.uint8))
        >>> header_size_hw(path), header_size_hw(path.as_uri()), header_size_hw("https://example.org/a.png")
        ((2, 5), (2, 5), None)
    """
    from PIL import UnidentifiedImageError

    url = str(source) if isinstance(source, (str, Path)) and is_url(str(source)) else None
    if url is not None and url.split("://", 1)[0].lower() != "file":
        return None
    try:
        path = fetch(url) if url is not None else require_path(source, "image")
        with opened_with_pil(path) as im:
            width, height = im.size
            sideways = im.format == "JPEG" and im.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8)
    except (UnidentifiedImageError, OSError, InputError):  # read_image says what is wrong with it
        return None
    return (width, height) if sideways else (height, width)


def _jpeg_orientation(data: np.ndarray) -> int:
    """The EXIF orientation (1 to 8) of a JPEG file's bytes, which OpenCV applies as it decodes them; 1 for a JPEG
    without one, or any other file."""
    if data[:3].tobytes() != b"\xff\xd8\xff":
        return 1
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:  # the markers only: the pixels are not decoded
            turn = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a tag PIL cannot read is one OpenCV does not apply either
        return 1
    return turn if isinstance(turn, int) and turn in ORIENTATION_TURNS else 1


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """RGB ``(H, W, 3)`` of the decoded image's depth: grey repeated, alpha dropped."""
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@contextlib.contextmanager
def opened_with_pil(path: Path) -> Iterator[Any]:
    """``PIL.Image.open(path)`` for the user's own files, without PIL's guard against decompression bombs (images
    sent by strangers): a 90 MP disparity map was warned to be one ("could be decompression bomb DOS attack"), and
    one over 179 MP stopped ``compare`` with a traceback.

    Raises:
        InputError: over PIL's own pixel limit, which it refuses to open.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError:
            limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
            raise InputError(f"cannot read {path}: the image has more than the {limit} pixels PIL opens") from None
    with image:
        yield image


def read_grey(path: str | Path) -> np.ndarray:
    """Read a single-channel image (masks, 8-bit disparity) as stored; palette PNGs as 8-bit grey."""
    from PIL import UnidentifiedImageError

    path = require_path(path, "file")
    if not path.is_file():
        raise InputError(missing_file_message("file", path))
    try:
        with opened_with_pil(path) as im:
            if im.mode in ("I;16", "I;16B", "I"):
                return np.array(im).astype(np.uint16)
            deep = _grey_of_16bit_colour(path) if im.mode in ("RGB", "RGBA") else None
            return deep if deep is not None else np.array(im.convert("L"))
    except UnidentifiedImageError:  # PIL's own message named the file a second time
        empty = path.stat().st_size == 0
        reason = "the file is empty (0 bytes)" if empty else "not an image file, or the file is damaged"
        raise InputError(f"cannot read {path}: {reason}") from None
    except OSError as exc:  # a truncated file, or one the disk cannot give back
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def grey_dtype(path: str | Path) -> np.dtype:
    """The dtype :func:`read_grey` gives ``path``, from the file's header where it tells (a grey or palette file): the
    question "is this an 8-bit map?" decoded a whole 16-bit map first, and then again to read it (1.2 s for a 12 MP
    PNG). A three- or four-channel file's bit depth is found as :func:`read_grey` finds it.

    Raises:
        InputError: as :func:`read_grey`.
    """
    with contextlib.suppress(Exception):  # read_grey says what is wrong with a file PIL cannot open
        with opened_with_pil(require_path(path, "file")) as im:
            if im.mode in ("I;16", "I;16B", "I"):
                return np.dtype(np.uint16)
            if im.mode not in ("RGB", "RGBA"):
                return np.dtype(np.uint8)
    return read_grey(path).dtype


def _grey_of_16bit_colour(path: Path) -> np.ndarray | None:
    """The uint16 grey level of a 16-bit file stored with three or four channels (a KITTI map saved as RGB),
    ``None`` for an 8-bit one. PIL opens such a file as 8-bit RGB, its high bytes only: a disparity of 2 px
    (512 in KITTI's x 256) read as 2, and one below 1 px as 0, unknown.

    Raises:
        InputError: the channels differ (a colour image, not a map).
    """
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None or image.dtype != np.uint16 or image.ndim != 3:
        return None
    grey = image[:, :, 0]
    if (image[:, :, 1:3] != grey[:, :, None]).any():
        raise InputError(
            f"{path}: a 16-bit colour image, not a disparity map or mask (those have one grey level per pixel)"
        )
    return np.ascontiguousarray(grey)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 RGB ``(H, W, 3)`` (or grey / uint16 ``(H, W)``) to a file OpenCV knows by suffix, atomically
    (under a temporary name, then renamed).

    Raises:
        InputError: not a uint8 or uint16 array of shape ``(H, W)`` or ``(H, W, 3)`` (OpenCV would write
            a float image as 8 bits, a 0..1 image black), or a uint16 one to a format of 8 bits (``.jpg``).
        OutputError: the file cannot be written.
    """
    path = require_path(path, "image file to write")
    if not isinstance(image, np.ndarray):
        raise InputError(f"image to write: expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(
            f"image to write: expected dtype uint8 (or uint16), got {image.dtype}; for a 0..1 float image "
            "write (image * 255).clip(0, 255).astype(np.uint8), for disparity rtstereo.io.write_disparity"
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise InputError(f"image to write: expected shape (H, W, 3) or (H, W), got {image.shape}")
    if image.size == 0:  # OpenCV's assertion text ('!_src.empty()') before, a bare cv2.error for RGB
        raise InputError(f"image to write: expected at least 1x1 pixels, got shape {image.shape}")
    if image.dtype == np.uint16 and path.suffix.lower() not in SIXTEEN_BIT_SUFFIXES:
        raise InputError(
            f"image to write: a 16-bit image cannot be written as '{path.suffix}' (8 bits: its values over 255 would "
            "be clipped); write .png or .tif, or convert it with (image // 257).astype(np.uint8)"
        )
    out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    make_parent(path)
    # Encoded here and written by Python: cv2.imwrite crashed the process (a segmentation fault) on a path that is
    # not valid UTF-8, which Linux allows (a file copied from an old camera card or archive), and its bare False
    # hid why a write failed (a full disk, a name too long), which the OSError names.
    try:
        ok, encoded = cv2.imencode(path.suffix, out)
    except cv2.error as exc:
        reason = f"OpenCV has no encoder for '{path.suffix}' files" if "encoder" in str(exc) else str(exc)
        raise OutputError(f"cannot write {path}: {reason}") from None
    if not ok:
        raise OutputError(f"cannot write {path}: OpenCV could not encode the image as '{path.suffix}'")
    # Under a temporary name, then renamed: an interrupted write leaves no truncated image under the real name.
    with atomic_path(path) as partial:
        try:
            _write_bytes(partial, encoded.tobytes())
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {os_reason(exc, path)}") from None


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (one place, which tests interrupt halfway)."""
    with path.open("wb") as f:
        f.write(data)
