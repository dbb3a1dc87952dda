"""Values that travel through the pipeline: stereo pairs, calibration and disparity results.

Conventions (see DESIGN.md, "Contracts"):

- images are ``uint8`` RGB arrays of shape ``(H, W, 3)``;
- disparity is ``float32`` ``(H, W)`` in pixels of the image it belongs to, positive
  (``x_left - x_right``), ``nan`` where invalid.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InputError, RtStereoWarning, made_by_rtstereo, require_number, require_whole, warn


def as_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check an image at the public boundary and bring it to ``uint8`` RGB ``(H, W, 3)``.

    Grey images ``(H, W)`` or ``(H, W, 1)`` are repeated to three channels; RGBA drops alpha. An array subclass
    (``np.matrix``, a masked array) is read as the plain array it holds.
    Anything else (float images, wrong rank) is refused rather than guessed at.

    Args:
        image: the array to check.
        name: how the caller calls it, for the error message.

    Returns:
        A contiguous ``uint8`` array of shape ``(H, W, 3)``.

    Examples:
        >>> as_rgb_uint8(np.zeros((4, 5), np.uint8)).shape
        (4, 5, 3)
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name}: expected a numpy array, got {type(image).__name__}{_array_hint(image)}")
    if image.dtype != np.uint8:
        raise InputError(f"{name}: expected dtype uint8 (RGB 0..255), got {image.dtype}; {_uint8_hint(image)}")
    # A subclass as a plain array (no copy): np.matrix stays 2-D under image[:, :, None] ("shape too large to be a
    # matrix"), and NumPy 2.4's repeat of a strided one aborted the process ("double free or corruption").
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise InputError(f"{name}: expected shape (H, W, 3) or (H, W), got {image.shape}{_shape_hint(image.shape)}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"{name}: image of shape {image.shape} is too small: at least 2x2 pixels")
    return np.ascontiguousarray(image)


def _shape_hint(shape: tuple[int, ...]) -> str:
    """What an image of another shape may be: a batch (one pair per call), channels first (a tensor's layout), or
    grey with alpha (PIL's mode LA, whose alpha is dropped as an RGBA image's is: the grey channel alone).

    Examples:
        >>> _shape_hint((2, 48, 64, 3))
        '; a batch of 2 images? one pair at a time: (left[i], right[i])'
        >>> _shape_hint((3, 48, 64)), _shape_hint((48, 64, 5))
        ('; channels first (C, H, W)? image.transpose(1, 2, 0)', '')
        >>> _shape_hint((48, 64, 2))
        "; grey with alpha (PIL's mode LA)? image[:, :, 0]"
    """
    if len(shape) == 4:
        return f"; a batch of {shape[0]} images? one pair at a time: (left[i], right[i])"
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] > 4:
        return "; channels first (C, H, W)? image.transpose(1, 2, 0)"
    if len(shape) == 3 and shape[2] == 2:
        return "; grey with alpha (PIL's mode LA)? image[:, :, 0]"
    return ""


def _array_hint(image: Any) -> str:
    """How to turn what was given instead of an array into one: a path is read, a PIL image or a torch tensor converted.

    Examples:
        >>> _array_hint("left.png")
        ' (a file name? read it with rtstereo.io.read_image(path))'
    """
    if isinstance(image, (str, os.PathLike)):
        return " (a file name? read it with rtstereo.io.read_image(path))"
    if image is None:  # what cv2.imread gives for a file it cannot read, without a word of why
        return (
            " (cv2.imread gives None for a file it cannot read: check the path, or read it with "
            "rtstereo.io.read_image(path), which says why and gives RGB where cv2.imread gives BGR)"
        )
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL
        return " (a PIL image? np.asarray(image.convert('RGB')))"
    if hasattr(image, "detach") and hasattr(image, "numpy"):  # a torch tensor, without importing torch
        return " (a torch tensor? image.cpu().numpy(), as uint8 (H, W, 3): image.permute(1, 2, 0) for a (C, H, W) one)"
    return ""


def _channels_equal(image: np.ndarray) -> bool:
    """Whether an RGB image's three channels are one (a grey image repeated to three channels)."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def grey_alike(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn the colour view grey when the other one is grey (a mono and a colour camera, one file saved in grey).

    Matched as they are, each colour channel would be compared with the grey level, which none of them is:
    SGBM's mean error on the example pair went from 0.54 px to 4.53 px, the default's from 0.49 to 2.47.
    Two colour views or two grey ones are returned as they are; the check looks at every 8th pixel first,
    so colour pairs cost next to nothing.

    Args:
        left, right: uint8 RGB ``(H, W, 3)`` of one size.

    Returns:
        The two views; the colour one made grey (repeated to three channels) when the other one is grey.

    Examples:
        >>> import warnings
        >>> grey, colour = np.full((4, 4, 3), 9, np.uint8), np.full((4, 4, 3), (9, 18, 27), np.uint8)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     _, right = grey_alike(grey, colour)
        >>> right[0, 0].tolist(), grey_alike(colour, colour)[1][0, 0].tolist()
        ([16, 16, 16], [9, 18, 27])
    """
    sampled = _channels_equal(left[::8, ::8]), _channels_equal(right[::8, ::8])
    if sampled[0] == sampled[1]:
        return left, right
    grey_side = 0 if sampled[0] else 1
    if not _channels_equal((left, right)[grey_side]):
        return left, right
    import cv2

    colour = (left, right)[1 - grey_side]
    turned = np.ascontiguousarray(np.repeat(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2))
    sides = ("left", "right") if grey_side == 0 else ("right", "left")
    warn(
        f"the {sides[0]} image is grey and the {sides[1]} one in colour: both are matched in grey (a grey level "
        "compared with colour channels matches badly)"
    )
    return (left, turned) if grey_side == 0 else (turned, right)


def _uint8_hint(image: np.ndarray) -> str:
    """How to bring ``image`` to uint8: the advice differs by dtype (scaling a 16-bit image by 255, as for a
    0..1 float one, turns it white) and, for a float image, by its range (a 0..255 float image, as
    ``image.astype(np.float32)`` makes, was told to multiply by 255 first).

    Examples:
        >>> _uint8_hint(np.full((2, 2), 200.0))
        'its values reach 200: a 0..255 float image converts with image.round().clip(0, 255).astype(np.uint8)'
    """
    dtype = image.dtype
    if dtype == np.uint16:
        # the shifts with their cast: "image >> 2" alone stayed uint16, refused again
        return (
            "for 16-bit data convert with (image // 257).astype(np.uint8) or (image >> 8).astype(np.uint8) "
            "(10- or 12-bit data held in 16 bits: (image >> 2).astype(np.uint8) or (image >> 4).astype(np.uint8))"
        )
    if np.issubdtype(dtype, np.floating):
        finite = image[np.isfinite(image)]
        top = float(finite.max()) if finite.size else 0.0
        if top > 1.0:
            return (
                f"its values reach {top:g}: a 0..255 float image converts with "
                "image.round().clip(0, 255).astype(np.uint8)"
            )
        return "convert with (image * 255).clip(0, 255).astype(np.uint8) if it is a 0..1 float image (check its range)"
    if dtype == np.bool_:  # image.astype(np.uint8), as advised below, gave 0 and 1: an image black to the eye
        return "a mask? (image * 255).astype(np.uint8) makes it black and white"
    return "check its range and bring it to 0..255 first (image.astype(np.uint8) only if it already is 0..255)"


PLAUSIBLE_BASELINE_M = 5.0  # wider rigs exist, but a larger figure is usually millimetres read as metres


class CalibrationUnitWarning(RtStereoWarning):
    """A baseline so long that the file's lengths are probably not in the unit assumed."""


def warn_if_baseline_in_millimetres(baseline_m: float, source: str) -> None:
    """Warn (:class:`CalibrationUnitWarning`) of a ``baseline_m`` longer than :data:`PLAUSIBLE_BASELINE_M`, probably
    millimetres: the one check of a :class:`Calibration` made in Python and of one read from rtstereo's JSON."""
    if baseline_m > PLAUSIBLE_BASELINE_M:
        warn(
            f"{source}: baseline_m = {baseline_m:.4g} m; if it is in millimetres, write it in metres "
            f"({baseline_m / 1000:.4g})",
            CalibrationUnitWarning,
        )


@dataclass(frozen=True)
class Calibration:
    """Rectified stereo calibration; every field carries its unit in its name.

    Depth follows from disparity as ``depth_m = baseline_m * fx_px / (d + cx1_px - cx0_px)``.

    Attributes:
        fx_px: focal length along x, pixels.
        fy_px: focal length along y, pixels.
        cx0_px: principal point x of the left camera, pixels.
        cx1_px: principal point x of the right camera, pixels (differs from ``cx0_px`` for
            Middlebury, whose ``doffs = cx1 - cx0``).
        cy_px: principal point y (shared after rectification), pixels.
        baseline_m: distance between the optical centres, metres.
        width_px: image width the intrinsics belong to, pixels (0 when unknown).
        height_px: image height the intrinsics belong to, pixels (0 when unknown).
    """

    fx_px: float
    fy_px: float
    cx0_px: float
    cx1_px: float
    cy_px: float
    baseline_m: float
    width_px: int = 0
    height_px: int = 0

    def __post_init__(self) -> None:
        # Stored as Python numbers: numpy scalars (K[0, 0] of a float32 matrix) would make the result's
        # JSON sidecar unwritable.
        for name in ("fx_px", "fy_px", "cx0_px", "cx1_px", "cy_px", "baseline_m", "width_px", "height_px"):
            shape = getattr(getattr(self, name), "shape", ())
            if shape:  # NumPy before 2.4 took np.array([300.]) as 300.0 with a DeprecationWarning; 2.4 refuses it
                raise InputError(
                    f"calibration: {name} must be a number, got an array of shape {tuple(shape)}: give its element "
                    "(e.g. K[0, 0], not K[0, :1])"
                )
        for name in ("fx_px", "fy_px", "cx0_px", "cx1_px", "cy_px", "baseline_m"):
            value = getattr(self, name)
            try:
                number = None if isinstance(value, (str, bool)) else float(value)
            except (TypeError, ValueError, OverflowError):  # 10**400: "int too large to convert to float"
                number = None
            if number is None:
                raise InputError(f"calibration: {name} must be a finite number, got {value!r}")
            if not math.isfinite(number):  # nan or inf would make every depth nan or inf without a word
                raise InputError(f"calibration: {name} must be a finite number, got {number}")
            object.__setattr__(self, name, number)
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            try:
                whole = not isinstance(value, (str, bool)) and value >= 0 and int(value) == value
            except (TypeError, ValueError, OverflowError):
                whole = False
            if not whole:
                raise InputError(
                    f"calibration: {name} must be a whole number of pixels >= 0 (0: unknown), got {value!r}"
                )
            object.__setattr__(self, name, int(value))
        if (self.width_px == 0) != (self.height_px == 0):
            # one side alone was taken for no size: images resized from it were not scaled to, depth off unsaid
            raise InputError(
                f"calibration: width_px and height_px go together (both 0 when the size is unknown), got "
                f"width_px={self.width_px}, height_px={self.height_px}"
            )
        if not (self.fx_px > 0 and self.fy_px > 0):
            raise InputError(f"calibration: focal lengths must be > 0, got fx={self.fx_px}, fy={self.fy_px}")
        if not self.baseline_m > 0:
            raise InputError(f"calibration: baseline_m must be > 0 metres, got {self.baseline_m}")
        if not made_by_rtstereo():  # a reader says it naming its file; a scaled copy was said of already
            warn_if_baseline_in_millimetres(self.baseline_m, "calibration")

    @property
    def doffs_px(self) -> float:
        """Difference of the principal points, ``cx1_px - cx0_px`` (Middlebury's ``doffs``)."""
        return self.cx1_px - self.cx0_px

    def scaled(self, sx: float, sy: float | None = None) -> Calibration:
        """The calibration of the same cameras after resizing the images by ``(sx, sy)``.

        Pixel-centre convention: a pixel centre at ``x`` moves to ``(x + 0.5) * sx - 0.5``.

        Raises:
            InputError: a scale factor that is not a finite number > 0.
        """
        sx = _scale_factor(sx, "sx")
        sy = sx if sy is None else _scale_factor(sy, "sy")
        return dataclasses.replace(
            self,
            fx_px=self.fx_px * sx,
            fy_px=self.fy_px * sy,
            cx0_px=(self.cx0_px + 0.5) * sx - 0.5,
            cx1_px=(self.cx1_px + 0.5) * sx - 0.5,
            cy_px=(self.cy_px + 0.5) * sy - 0.5,
            width_px=round(self.width_px * sx),
            height_px=round(self.height_px * sy),
        )

    def cropped(self, x0_px: int, y0_px: int, width_px: int | None = None, height_px: int | None = None) -> Calibration:
        """The calibration after cropping both images at ``(x0_px, y0_px)``.

        Args:
            x0_px, y0_px: the crop's left column and top row in the images, pixels.
            width_px, height_px: the crop's size; ``None`` (the default) takes the rest of the images the calibration
                records (their width less ``x0_px``, their height less ``y0_px``), or no size when it records none.
                (They were 0, no size, by default: a crop of a calibration that records its size lost it, so that
                the crop resized was no longer scaled to.)

        Raises:
            InputError: a corner or size that is no whole number of pixels, a corner below 0, a crop that starts
                beyond the images the calibration records, or one whose size runs past them (a calibration of another
                size: scale it to the images first, :meth:`scaled`).

        Examples:
            >>> cal = Calibration(700, 700, 319.5, 329.5, 239.5, 0.1, width_px=640, height_px=480)
            >>> crop = cal.cropped(100, 50)
            >>> crop.cx0_px, crop.cy_px, crop.width_px, crop.height_px
            (219.5, 189.5, 540, 430)
        """
        x0_px = require_number(x0_px, "x0_px", "the crop's left column, pixels")
        y0_px = require_number(y0_px, "y0_px", "the crop's top row, pixels")
        if x0_px < 0 or y0_px < 0:  # it moved the principal point the other way, and recorded a size over the images'
            raise InputError(f"a crop at ({x0_px:g}, {y0_px:g}) starts before the images' top-left corner (0, 0)")
        sizes = {"width_px": width_px, "height_px": height_px}
        sizes = {k: None if v is None else require_number(v, k, "the crop's size, pixels") for k, v in sizes.items()}
        width_px, height_px = sizes["width_px"], sizes["height_px"]
        # images have no half columns: 10.5 made a calibration recording a width of 629.5, refused then in its terms
        for name, value in {"x0_px": x0_px, "y0_px": y0_px, **sizes}.items():
            if value is not None and not value.is_integer():
                raise InputError(f"{name}: a crop is of whole pixels, got {value:g}")
        if self.width_px and self.height_px:
            if not (x0_px < self.width_px and y0_px < self.height_px):
                raise InputError(
                    f"a crop at ({x0_px:g}, {y0_px:g}) starts beyond the {self.height_px}x{self.width_px} (HxW) images "
                    "the calibration records"
                )
            width_px = self.width_px - x0_px if width_px is None else width_px
            height_px = self.height_px - y0_px if height_px is None else height_px
            if x0_px + width_px > self.width_px or y0_px + height_px > self.height_px:
                raise InputError(
                    f"a {height_px:g}x{width_px:g} (HxW) crop at ({x0_px:g}, {y0_px:g}) runs past the "
                    f"{self.height_px}x{self.width_px} images the calibration records (a calibration of another "
                    "size: scale it to the images first, Calibration.scaled)"
                )
        width_px = 0 if width_px is None else width_px
        height_px = 0 if height_px is None else height_px
        return dataclasses.replace(
            self,
            cx0_px=self.cx0_px - x0_px,
            cx1_px=self.cx1_px - x0_px,
            cy_px=self.cy_px - y0_px,
            width_px=width_px,
            height_px=height_px,
        )


def _scale_factor(value: Any, name: str) -> float:
    """A scale factor of :meth:`Calibration.scaled`: a finite number > 0 (a string failed with a bare TypeError, nan
    and inf with a ValueError and an OverflowError from ``round``, and 0 or less as "focal lengths must be > 0").

    Examples:
        >>> _scale_factor(0.5, "sx")
        0.5
        >>> _scale_factor(0, "sx")
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: sx: expected a scale factor > 0 (a finite number), got 0.0
    """
    factor = require_number(value, name, "a scale factor > 0")
    if not (math.isfinite(factor) and factor > 0):
        raise InputError(f"{name}: expected a scale factor > 0 (a finite number), got {factor}")
    return factor


def _calibration_hint(value: Any) -> str:
    """What was given instead of a :class:`Calibration`, and how to make one."""
    how = "read a file with rtstereo.io.calibration.read_calibration(PATH)"
    if isinstance(value, dict):
        how = "make one with Calibration(**values) or " + how
    return f"{type(value).__name__} ({how})"


def require_calibration_type(calibration: Any) -> Calibration:
    """``calibration`` itself if it is a :class:`Calibration`, else an :class:`InputError` that says how to
    make one (a dict or ``None`` would otherwise fail deep inside with an ``AttributeError``)."""
    if not isinstance(calibration, Calibration):
        if calibration is None:
            raise InputError(
                "a calibration is needed (focal length, baseline): read one with "
                "rtstereo.io.calibration.read_calibration(PATH) or make one with Calibration(...)"
            )
        raise InputError(f"calibration: expected an rtstereo Calibration, got {_calibration_hint(calibration)}")
    return calibration


def views_size_problem(left_hw: tuple[int, ...], right_hw: tuple[int, ...]) -> str | None:
    """Why views of ``left_hw`` and ``right_hw`` (``(H, W)``) make no stereo pair, or ``None`` when they have one size:
    said by :class:`StereoPair`, and by a batch from the files' headers before it decodes them (a 20000x20000 left
    view beside a small right one was decoded, gigabytes, to be refused for its size).

    Examples:
        >>> views_size_problem((48, 64), (48, 64)) is None
        True
        >>> views_size_problem((48, 64), (48, 60))
        'left and right images differ in size: left 64x48, right 60x48 (WxH); a rectified pair has one size'
    """
    if tuple(left_hw) == tuple(right_hw):
        return None
    # one view on its side: an EXIF orientation tag on one of two phone photos (read_image turns it upright,
    # as viewers do), or the other's tag lost by an editor
    turned = (
        "; one view is turned by 90 degrees against the other (an EXIF orientation tag that one of the two "
        "files has and the other has not?): turn it to match the other"
        if tuple(left_hw) == tuple(right_hw)[::-1]
        else ""
    )
    return (
        f"left and right images differ in size: left {left_hw[1]}x{left_hw[0]}, "
        f"right {right_hw[1]}x{right_hw[0]} (WxH); a rectified pair has one size{turned}"
    )


# eq=False: equal when they are the same object; field by field, ``==`` compared arrays and raised ValueError ("the
# truth value of an array ... is ambiguous") for two results, as did ``result in results``; hashing raised TypeError.
@dataclass(frozen=True, eq=False)
class StereoPair:
    """A rectified stereo pair.

    Attributes:
        left: ``uint8`` RGB ``(H, W, 3)`` (an array given in that form is held as it is, not copied).
        right: ``uint8`` RGB ``(H, W, 3)``, same shape as ``left``.
        name: a label for outputs (file stem, frame name).
        index: position in a sequence (frame number), 0 for a single pair.
        timestamp_s: capture time in seconds, when known.
        calibration: the pair's calibration, when known.
        left_colours: the left view in colour where it was turned grey to be matched with a grey right view
            (:func:`grey_alike`), else ``None``; the result's ``left``, and so the colours of its point cloud, come
            from it. Set by the pair itself; one given that is not ``left`` in colour (``left`` replaced: give the
            colours resampled alike with it) is dropped.
    """

    left: np.ndarray
    right: np.ndarray
    name: str = "pair"
    index: int = 0
    timestamp_s: float | None = None
    calibration: Calibration | None = None
    left_colours: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # each checked here: index="3" passed, and a stream's progress and its numbered files failed with a TypeError
        if not isinstance(self.name, str):
            raise InputError(
                f"name: expected a str (a label for outputs), got {type(self.name).__name__} {self.name!r:.80}"
            )
        if require_whole(self.index, "index", "a whole frame number") < 0:  # -1 was taken, and numbered files by it
            raise InputError(f"index: expected a whole frame number >= 0, got {self.index}")
        if self.timestamp_s is not None:
            timestamp_s = require_number(self.timestamp_s, "timestamp_s", "a capture time in seconds, or None")
            if not math.isfinite(timestamp_s):  # inf and nan were taken, and a stream's frame rate made of them
                raise InputError(
                    f"timestamp_s: expected a finite capture time in seconds, or None (unknown), got {timestamp_s}"
                )
        if self.calibration is not None and not isinstance(self.calibration, Calibration):
            raise InputError(
                f"calibration: expected an rtstereo Calibration or None, got {_calibration_hint(self.calibration)}"
            )
        left = as_rgb_uint8(self.left, "left image")
        right = as_rgb_uint8(self.right, "right image")
        problem = views_size_problem(left.shape[:2], right.shape[:2])
        if problem is not None:
            raise InputError(problem)
        matched, right = grey_alike(left, right)
        # The colour view turned grey is matched so, but shown in colour: the point cloud of a colour left camera
        # beside a mono right one came out grey.
        colours = left if matched is not left else _colours_of(self.left_colours, matched)
        object.__setattr__(self, "left", matched)
        object.__setattr__(self, "right", right)
        object.__setattr__(self, "left_colours", colours)

    @property
    def size_hw(self) -> tuple[int, int]:
        return self.left.shape[0], self.left.shape[1]

    @property
    def coloured_left(self) -> np.ndarray:
        """The left view as it is shown: :attr:`left_colours` where it was turned grey for matching, else ``left``."""
        return self.left if self.left_colours is None else self.left_colours

    def __repr__(self) -> str:
        # the views by dtype and shape: the dataclass's repr printed their pixels, over a hundred lines a pair
        return (
            f"StereoPair(left={array_summary(self.left)}, right={array_summary(self.right)}, name={self.name!r}, "
            f"index={self.index!r}, timestamp_s={self.timestamp_s!r}, calibration={self.calibration!r})"
        )


def _colours_of(colours: Any, grey_left: np.ndarray) -> np.ndarray | None:
    """``colours`` when :func:`grey_alike` turns them into ``grey_left`` (a pair copied with ``dataclasses.replace``,
    or both resampled alike: rectified or resized, whose rounding moves a grey level by 1 at most), else ``None``
    (``left`` was replaced, by a view whose colours these are not)."""
    if colours is None or not grey_left.shape == np.shape(colours):
        return None
    import cv2

    colours = as_rgb_uint8(colours, "left_colours")
    grey = cv2.cvtColor(colours, cv2.COLOR_RGB2GRAY)
    return colours if int(cv2.absdiff(grey, grey_left[:, :, 0]).max()) <= 1 else None


def array_summary(array: Any) -> str:
    """An array as a repr names it, by dtype and shape, rather than by its values (a whole image's rows).

    Examples:
        >>> array_summary(np.zeros((4, 6, 3), np.uint8)), array_summary(None)
        ('uint8 (4, 6, 3)', 'None')
    """
    if array is None:
        return "None"
    shape = getattr(array, "shape", None)
    dtype = getattr(array, "dtype", None)
    if shape is None or dtype is None:
        return f"{type(array).__name__}"
    return f"{dtype} {tuple(shape)}"


@dataclass(frozen=True, eq=False)  # equal when the same object, as StereoPair
class DisparityResult:
    """What a predictor returns for one pair.

    Attributes:
        disparity_px: ``float32`` ``(H, W)``, pixels of the input left image, ``nan`` where invalid.
        timings_ms: per-stage wall times in milliseconds (``preprocess``, ``inference``,
            ``postprocess``, ``total``: the whole call; the hybrid adds ``sgbm`` and ``fusion``, and an
            ONNX export made on first use at this size is ``export``, left out of the others).
        model: the model name.
        settings: the settings the model ran with (max disparity, iterations, backend...).
        input_size_hw: ``(H, W)`` of the input pair (with ``fit="crop"``, of the window cut from it: ``preparation``).
        network_size_hw: ``(H, W)`` the network actually ran at (after padding or resizing).
        disparity_scale: what the network's disparities were multiplied by to be in the input's pixels:
            input width / the width it ran at when the pair was resized (a fixed-size export, a memory
            budget), 1.0 when it ran at the input's size or was only padded.
        calibration: the pair's calibration, when known (enables depth and point clouds).
        preparation: what was done to the pair before the model that its files record (``--rectify``: ``{"rectify":
            {"file": ..., "raw_size_hw": [H, W]}}``, the map being of the rectified view; ``predict --align-rows``:
            ``{"align_rows": {"applied": ..., "misalignment_px": ..., "row_shift_px": ...}}``; ``--fit crop``:
            ``{"crop": {"input_size_hw": [H, W], "x0_px": ..., "y0_px": ..., "width_px": ..., "height_px": ...}}``,
            the window of the pair the map covers); empty otherwise.
        left: the left image, kept for colour point clouds and overlays (may be ``None``): from ``predict(left,
            right)`` a copy, which the caller's later changes to its array leave alone (a camera's reused buffer);
            from ``predict_pair(pair)`` the pair's own ``left``, which :class:`StereoPair` holds as given.
    """

    disparity_px: npt.NDArray[np.float32]
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    input_size_hw: tuple[int, int] = (0, 0)
    network_size_hw: tuple[int, int] = (0, 0)
    calibration: Calibration | None = None
    left: npt.NDArray[np.uint8] | None = None
    disparity_scale: float = 1.0
    preparation: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # the maps by dtype and shape, the settings left to the predictor's repr: the dataclass's repr printed the
        # disparity's and the left image's values, some 60 lines a result
        total = self.timings_ms.get("total")
        try:
            density = f"{self.density:.3f}"
        except (TypeError, ValueError):  # a result made by hand around something else than a map
            density = "None"
        return (
            f"DisparityResult(model={self.model!r}, disparity_px={array_summary(self.disparity_px)}, "
            f"density={density}, input_size_hw={self.input_size_hw!r}, "
            f"network_size_hw={self.network_size_hw!r}, disparity_scale={self.disparity_scale:g}, "
            f"total_ms={'None' if total is None else f'{total:.1f}'}, calibration={self.calibration!r}, "
            f"left={array_summary(self.left)})"
        )

    @property
    def valid_mask(self) -> npt.NDArray[np.bool_]:
        """Boolean ``(H, W)``: where the disparity is finite and positive."""
        d = self.disparity_px
        return np.isfinite(d) & (d > 0)

    @property
    def density(self) -> float:
        """Fraction of all pixels with a valid disparity (finite and above 0, :attr:`valid_mask`), 0..1; ``eval``'s
        and ``compare``'s density is another figure: percent of the pixels with ground truth where the prediction is
        finite, 0 and below included (:func:`~rtstereo.metrics.disparity_metrics`)."""
        return float(self.valid_mask.mean())

    def sidecar(self) -> dict[str, Any]:
        """The JSON-serialisable description written next to saved outputs."""
        return {
            "model": self.model,
            "settings": self.settings,
            "input_size_hw": list(self.input_size_hw),
            "network_size_hw": list(self.network_size_hw),
            "disparity_scale": self.disparity_scale,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "density": round(self.density, 6),
            "calibration": dataclasses.asdict(self.calibration) if self.calibration else None,
            "preparation": self.preparation,
        }


def with_own_left(result: DisparityResult, given: np.ndarray) -> DisparityResult:
    """``result`` with a copy of its left image when that is the array the caller gave (``given``), so that
    changing that array afterwards leaves the result as it was. A grey or RGBA image was converted into a new
    array already: no second copy.

    Examples:
        >>> image = np.zeros((4, 6, 3), np.uint8)
        >>> with_own_left(DisparityResult(np.ones((4, 6), np.float32), left=image), image).left is image
        False
    """
    if result.left is None or not np.may_share_memory(result.left, given):
        return result
    return dataclasses.replace(result, left=result.left.copy())
