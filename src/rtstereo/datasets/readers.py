"""Readers for the usual stereo datasets, detected from the files in a folder.

Each layout yields :class:`Sample` objects that know where their images, ground truth and masks are
and how to decode them. :func:`find_samples` walks a folder tree and lets every layout claim what it
recognises, so one call reads a single scene, a dataset, or a folder of several datasets. A scene or frame
with one of its images missing (its ground truth, or the other image, is there) is listed with the
:attr:`Sample.problem` that names the missing file, so that it fails alone rather than vanish from the count.

Layouts:

- Middlebury 2001/2003: ``im2/im6`` (tsukuba: ``im3/im4``, or ``scene1.row3.col3/col4`` as the 2001 page
  publishes it; map: ``im0/im1``) PNG/PPM/PGM with 8-bit ``disp2`` (``disp3`` or ``truedisp.row3.col3``; ``disp0``)
  ``.pgm/.png`` = disparity x scale: 2003 cones/teddy (1800, 900 or 450 px wide) 1 at full size, 2 at
  half, 4 at quarter; tsukuba (384x288, or its file names, or a folder named so) 16; the other 2001 scenes
  (venus, sawtooth, barn1, map...) 8. ``eval_masks/nonocc.png``, else ``nonocc.png`` in the scene folder
  (255 = non-occluded), when present.
- Middlebury 2005/2006: ``view1/view5``, ``disp1/disp5`` (value / scale: 1 full, 2 half, 3 third
  size), ``dmin.txt`` (disparity offset, for depth); a mask as for 2001/2003. The download of all views keeps them
  in ``Illum1-3/Exp0-2``: ``Illum2/Exp1``'s are read, the pair of the two-view download.
- Middlebury 2014 (MiddEval3) and ETH3D two-view: ``im0/im1``, ``disp0GT.pfm``, ``mask0nocc.png``
  (255 = non-occluded), ``calib.txt``; ETH3D's ground truth also in its own download's tree beside the
  images' (``two_view_training_gt/<scene>`` for ``two_view_training/<scene>``); the full-size Middlebury
  2014 and 2021 scenes (``Adirondack-perfect``) name their ground truth ``disp0.pfm`` and have no mask; a
  test folder (no ground truth: ``im0/im1`` and ``calib.txt``) is a scene without ground truth. A set of one's own
  in this layout may hold ``disp0GT.npy``, a 16-bit ``disp0GT.png`` or a floating-point ``disp0GT.tif`` instead.
- KITTI 2012 (``colored_0/1``, ``disp_occ``, ``disp_noc``) and 2015 (``image_2/3``,
  ``disp_occ_0``, ``disp_noc_0``): uint16 / 256, 0 = invalid; one sample per ``*_10.png`` frame (in a set of
  one's own in these folders without such frames, one per image, its ground truth the ``.png`` of its stem).
- SceneFlow: ``<images>/{left,right}/X.png`` with ``disparity/{left}/X.pfm`` beside ``<images>``
  (``<images>`` is ``RGB_cleanpass``, ``RGB_finalpass``, ``frames_cleanpass``, ``frames_finalpass``
  or ``images``), ``occlusion/left/X.png`` (255 = occluded) when present. A set of one's own in this layout may
  hold ``X.npy``, a 16-bit ``X.png`` (value / 256, 0 = invalid) or a floating-point ``X.tif`` instead.
  Nested SceneFlow trees (``frames_cleanpass/TRAIN/A/0000/left``) map onto ``disparity/TRAIN/A/0000/left``.
  The disparity range is 192 px, or the ``max_disp_px`` of the ``synth.json`` that ``rtstereo synth`` writes
  beside ``<images>``.
- The FlyingThings3D subset (the DispNet/FlowNet 2.0 download): ``train/image_clean/{left,right}/X.png``
  (or ``image_final``) with ``train/disparity/left/X.pfm``, which stores the left view's disparity
  negated, and ``train/disparity_occlusions/left/X.png`` (non-zero = occluded); ``val/`` alike.
- DrivingStereo: ``train-left-image/<sequence>/X.jpg`` with ``train-right-image/<sequence>/X.jpg`` and
  ``train-disparity-map/<sequence>/X.png`` (uint16 / 256, 0 = invalid, as KITTI's); the test split's
  ``test-left-image/left-image-half-size/<sequence>`` (or full size) alike. No mask.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError, InputError, RtStereoWarning, require_path, warn
from ..io.atomic import not_a_folder
from ..io.disparity import is_colour, read_disparity
from ..io.images import opened_with_pil, read_grey, read_image

# The suffixes of the formats every OpenCV build decodes (JPEG's .jpe and .jfif, the whole Netpbm family,
# Sun raster); JPEG 2000, AVIF and EXR depend on how OpenCV was built, PFM is read as disparity.
IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".ppm",
    ".pgm",
    ".pbm",
    ".pnm",
    ".pxm",
    ".bmp",
    ".dib",
    ".tif",
    ".tiff",
    ".webp",
    ".ras",
    ".sr",
)


@dataclass(frozen=True)
class Sample:
    """One stereo pair of a dataset with its ground truth.

    Attributes:
        name: scene / frame label, unique within a :func:`find_samples` call.
        dataset: layout name (``middlebury2001``, ``kitti2012``, ``sceneflow``...).
        left_path, right_path: the images.
        gt_path: ground-truth disparity of the left view (``None`` when absent).
        gt_scale: divisor for 8-bit ground truth files (``None`` for PFM / 16-bit PNG).
        nonocc_path: mask of non-occluded pixels, when the dataset has one.
        nonocc_value: pixel value meaning "non-occluded" in that mask (``None``: the mask marks
            occluded pixels with 255, SceneFlow style; ``-1``: valid pixels of a second disparity map).
        gt_negated: the file stores the left view's disparity negated (the FlyingThings3D subset's
            ``x_right - x_left``); it is read back positive. A map whose values are mostly positive
            already (converted by the user) is read as it is.
        max_disp_hint_px: the disparity range a classical method should search for this scene.
        calib_path: calibration file, when present.
        disparity_offset_px: Middlebury's ``doffs``/``dmin`` (for depth), 0 otherwise.
        extra: more that the layout tells: ``gt_expected``, the ground truth's path in the layout, of a scene
            without it (a test split's, or one of a set of one's own kept elsewhere), which eval names.
        problem: why the scene cannot be used (a damaged ``calib.txt`` or ``dmin.txt``, a missing image), ``None`` when
            nothing is known to be wrong. The search still lists such a scene, so that it fails alone:
            loading it raises :class:`~rtstereo.errors.DatasetError` with this reason.
    """

    name: str
    dataset: str
    left_path: Path
    right_path: Path
    gt_path: Path | None = None
    gt_scale: float | None = None
    gt_negated: bool = False
    nonocc_path: Path | None = None
    nonocc_value: int | None = 255
    max_disp_hint_px: int = 192
    calib_path: Path | None = None
    disparity_offset_px: float = 0.0
    extra: dict = field(default_factory=dict, compare=False)
    problem: str | None = None

    def files(self) -> tuple[Path, ...]:
        """The scene's files that it names: images, ground truth, mask and calibration (what its errors may quote)."""
        named = (self.left_path, self.right_path, self.gt_path, self.nonocc_path, self.calib_path)
        return tuple(path for path in named if path is not None)

    def _check(self) -> None:
        if self.problem is not None:
            raise DatasetError(self.problem)

    def load_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right as uint8 RGB ``(H, W, 3)``."""
        self._check()
        return read_image(self.left_path), read_image(self.right_path)

    def load_gt(self) -> np.ndarray | None:
        """Ground-truth disparity float32 ``(H, W)``, ``nan`` where unknown."""
        self._check()
        if self.gt_path is None:
            return None
        disparity = self._read_map(self.gt_path, self.gt_scale)
        if self.gt_negated and np.count_nonzero(disparity < 0) > np.count_nonzero(disparity > 0):
            disparity = -disparity
        return disparity

    def load_nonocc(self) -> np.ndarray | None:
        """Bool ``(H, W)``: True where the pixel is visible in both views; ``None`` without a mask."""
        if self.nonocc_path is None:
            return None
        if self.nonocc_value == -1:  # KITTI: the non-occluded GT map's valid pixels
            return np.isfinite(self._read_map(self.nonocc_path, None))
        mask = read_grey(self.nonocc_path)
        _check_mask_values(self.nonocc_path, mask, self.nonocc_value)
        if self.nonocc_value is None:  # SceneFlow occlusion maps: 255 = occluded
            return mask < 128
        return mask == self.nonocc_value

    def _read_map(self, path: Path, scale: float | None) -> np.ndarray:
        try:
            return read_disparity(path, scale=scale)
        except InputError:
            # read_disparity's advice for an 8-bit map, to give its scale, is one eval cannot take
            grey_png = path.suffix.lower() == ".png" and read_grey(path).dtype == np.uint8 and not is_colour(path)
            if scale is None and grey_png:
                raise DatasetError(
                    f"{path}: an 8-bit map where 16-bit ground truth belongs (KITTI's: value = disparity x 256, "
                    "0 = invalid): a converted or preview copy? Use the dataset's own maps"
                ) from None
            raise

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(left, right, gt_disparity, nonocc_mask)``."""
        left, right = self.load_images()
        return left, right, self.load_gt(), self.load_nonocc()


def _check_mask_values(path: Path, mask: np.ndarray, nonocc_value: int | None) -> None:
    """Refuse a mask of another convention than its layout's: one saved as 0 and 1 (``mask.astype(np.uint8)``) had no
    pixel of Middlebury's 255 (non-occluded), so that its scene's noc columns were left empty, unsaid, and no pixel of
    SceneFlow's occluded values (128 and above), so that its noc columns were those of all pixels.

    Raises:
        DatasetError: naming the values found and the convention.
    """
    top = int(mask.max()) if mask.size else 0
    if nonocc_value == 255 and top not in (0, 128) and not (mask == 255).any():  # 0 and 128: every pixel occluded
        found = "its values are 0 and 1" if top == 1 else f"its largest value is {top}"
        raise DatasetError(
            f"{path}: no pixel of the mask is 255, the value of a non-occluded pixel ({found}): a mask saved as 0 and "
            "1? Save it as 255 where non-occluded (128 occluded, 0 unknown), as Middlebury's"
        )
    if nonocc_value is None and top == 1:
        raise DatasetError(
            f"{path}: an occlusion mask of 0 and 1, read as no pixel occluded (SceneFlow's occluded pixels are 255; "
            "128 and above count): save it as 0 and 255"
        )


Detector = Callable[[Path, list[str], list[str], Path], list[Sample]]
"""A detector sees a folder, its subfolders and files, and the root the search started from."""

# 8-bit ground-truth scale of the Middlebury 2001 scenes (disparity = value / scale): tsukuba stores whole-pixel
# disparities x 16 on 384x288 images, the others (284 to 435 px wide) x 8.
_TSUKUBA_SCALE = 16
_TSUKUBA_SIZE_WH = (384, 288)
_MB2001_DEFAULT_SCALE = 8
# Middlebury 2003 was published at these widths only (full, half, quarter size), its 8-bit divisor 1, 2 or 4.
_MB2003_SCALE_BY_WIDTH = {1800: 1, 900: 2, 450: 4}
# (left, right, ground truth) file stems of a Middlebury 2001/2003 scene: tsukuba's, as the evaluation's copy names
# them and as the 2001 page publishes them (views 3 and 4 of its 5x5 grid); the others'; map's, which has two views.
_MB2001_NAMES = (
    ("im3", "im4", "disp3"),
    ("scene1.row3.col3", "scene1.row3.col4", "truedisp.row3.col3"),
    ("im2", "im6", "disp2"),
    ("im0", "im1", "disp0"),
)
_TSUKUBA_NAMES = _MB2001_NAMES[:2]
# Middlebury 2005 full-size width; smaller versions scale disparity (and the 8-bit divisor).
_MB2005_FULL_WIDTH = 1390


def _first(folder: Path, stems: tuple[str, ...], files: set[str]) -> Path | None:
    for stem in stems:
        for suffix in IMAGE_SUFFIXES:
            if stem + suffix in files:
                return folder / (stem + suffix)
    return None


def _pair(folder: Path, left_stem: str, right_stem: str, files: set[str]) -> tuple[Path, Path, str | None, bool]:
    """A scene's two images: ``(left, right, problem, any_found)``.

    A missing image gets the path it would have (with the other's suffix, or ``.png``) and ``problem`` names
    it, so that a detector can list the scene and it fails alone, by name, rather than vanish from the count.
    """
    left, right = _first(folder, (left_stem,), files), _first(folder, (right_stem,), files)
    suffix = (left or right).suffix if (left or right) else ".png"
    left_path, right_path = left or folder / (left_stem + suffix), right or folder / (right_stem + suffix)
    return left_path, right_path, _missing_images(left_path, right_path), bool(left or right)


def image_width_px(path: Path) -> int:
    """Width of an image file in pixels, from its header (the pixels are not decoded)."""
    return image_size_wh(path)[0]


def image_size_wh(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file in pixels, from its header (the pixels are not decoded).

    Raises:
        InputError: over PIL's own pixel limit (:func:`~rtstereo.io.images.opened_with_pil`; below it, PIL's
            decompression-bomb warning on the user's own large image is not passed on).
    """
    with opened_with_pil(path) as im:
        return im.size


def _size_scale(left_path: Path, full_width_px: int) -> int:
    """How many times smaller than full size a Middlebury image is (1 when its header cannot be read: the
    scene then fails when its images are loaded, with the reason)."""
    try:
        return max(1, round(full_width_px / image_width_px(left_path)))
    except Exception:  # noqa: BLE001 - reported when the scene is loaded, not while datasets are searched
        return 1


def _number(text: str, what: str) -> float:
    """A finite number from a dataset's text file, or :class:`DatasetError` naming ``what``."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise DatasetError(f"{what} '{text}' is not a number")
    return value


def _nonocc(folder: Path, files: set[str]) -> Path | None:
    mask = folder / "eval_masks" / "nonocc.png"
    return mask if mask.is_file() else (folder / "nonocc.png" if "nonocc.png" in files else None)


def detect_middlebury_2001_2003(folder: Path, dirs: list[str], names: list[str], root: Path) -> list[Sample]:
    files = set(names)
    # (left, right, ground truth) conventions: tsukuba im3/im4/disp3 or scene1.row3.col3/col4 and truedisp.row3.col3,
    # the others im2/im6/disp2, map im0/im1/disp0. A complete scene first; else ground truth beside one of its
    # images: a scene with the other missing.
    scenes = []
    for stems in _MB2001_NAMES:
        left, right, gt = stems
        left_path, right_path, problem, any_image = _pair(folder, left, right, files)
        gt_path = _first(folder, (gt,), files)
        if any_image and gt_path:
            scenes.append((problem is not None, stems in _TSUKUBA_NAMES, left_path, right_path, gt_path, problem))
    if not scenes:
        return []
    _, tsukuba_names, left_path, right_path, gt_path, problem = min(scenes, key=lambda scene: scene[0])
    present = left_path if left_path.is_file() else right_path  # both views have the image size that tells the scale
    dataset, scale = _middlebury_2001_2003_scale(folder, present, gt_path, tsukuba_names=tsukuba_names)
    # An 8-bit map with divisor s holds disparities below 256 / s: the natural search range.
    return [
        Sample(
            name=folder.name,
            dataset=dataset,
            left_path=left_path,
            right_path=right_path,
            gt_path=gt_path,
            gt_scale=float(scale),
            nonocc_path=_nonocc(folder, files),
            nonocc_value=255,
            max_disp_hint_px=256 // scale,
            problem=problem,
        )
    ]


def _middlebury_2001_2003_scale(folder: Path, left_path: Path, gt_path: Path, tsukuba_names: bool) -> tuple[str, int]:
    """``(dataset, 8-bit divisor)`` of a Middlebury 2001/2003 scene, from what its files show.

    The image size decides, not the folder name or the file type (a renamed copy of tsukuba, or 2001 ground
    truth converted to PNG, keeps its scale): tsukuba's 384x288 (or its file names, ``im3/im4/disp3`` or
    ``scene1.row3.col3/col4`` and ``truedisp.row3.col3``, or its folder name) means x 16; a 2003 width (1800, 900,
    450 px) means 2003 at that size; anything else is a 2001 scene at x 8. The ground truth's values are then
    checked against the choice (:func:`_check_2001_values`).
    """
    try:
        width, height = image_size_wh(left_path)
    except Exception:  # noqa: BLE001 - the scene fails when it is loaded, with the reason
        width = height = None
    if tsukuba_names or folder.name.lower() == "tsukuba" or (width, height) == _TSUKUBA_SIZE_WH:
        dataset, scale = "middlebury2001", _TSUKUBA_SCALE
    elif width in _MB2003_SCALE_BY_WIDTH:
        return "middlebury2003", _MB2003_SCALE_BY_WIDTH[width]
    elif width is None and gt_path.suffix.lower() != ".pgm":
        return "middlebury2003", 1  # unreadable: the scene fails when loaded, whatever the scale
    else:
        dataset, scale = "middlebury2001", _MB2001_DEFAULT_SCALE
    _check_2001_values(folder, gt_path, scale)
    return dataset, scale


def _check_2001_values(folder: Path, gt_path: Path, scale: int) -> None:
    """Warn when a Middlebury 2001 map's values disagree with its divisor.

    Tsukuba's map holds whole-pixel disparities x 16, so every value is a multiple of 16; the x 8 maps hold
    eighths of a pixel, and few of their values are. A map read with the other divisor would be scored at
    half or twice its disparities.
    """
    try:
        raw = read_grey(gt_path)
    except Exception:  # noqa: BLE001 - reported when the scene is loaded
        return
    values = raw[raw > 0]
    if raw.dtype != np.uint8 or np.unique(values).size < 4:  # too few levels to tell
        return
    whole_x16 = bool((values % _TSUKUBA_SCALE == 0).all())
    if scale != _TSUKUBA_SCALE and whole_x16:
        warnings.warn(
            f"{folder.name}: every value of {gt_path} is a multiple of 16, as in tsukuba's ground truth (whole-pixel "
            f"disparities x 16), but the scene is read as disparity = value / {scale} (it is not 384x288 nor named "
            "tsukuba): if it is tsukuba, name its folder tsukuba",
            RtStereoWarning,
            stacklevel=2,
        )
    elif scale == _TSUKUBA_SCALE and not whole_x16:
        warnings.warn(
            f"{folder.name}: the scene is read as tsukuba (disparity = value / 16) but {gt_path} holds values that "
            "are not multiples of 16, unlike tsukuba's whole-pixel ground truth: if it is another Middlebury 2001 "
            "scene (value / 8), rename its folder and files (im2/im6/disp2)",
            RtStereoWarning,
            stacklevel=2,
        )


# Middlebury 2005/2006's download of all views keeps them under Illum1-3/Exp0-2 beside the ground truth; its
# two-view download's view1 and view5 are those of the middle illumination and exposure.
_MB2005_ALL_VIEWS_PAIR = ("Illum2", "Exp1")


def detect_middlebury_2005(folder: Path, dirs: list[str], names: list[str], root: Path) -> list[Sample]:
    files = set(names)
    gt_path = _first(folder, ("disp1",), files)
    images, image_files = folder, files
    lit = folder.joinpath(*_MB2005_ALL_VIEWS_PAIR)
    if gt_path and _first(folder, ("view1", "view5"), files) is None and lit.is_dir():
        images, image_files = lit, _files_in(lit)
    left_path, right_path, problem, any_image = _pair(images, "view1", "view5", image_files)
    if not (any_image and gt_path):
        return []
    scale = _size_scale(left_path, _MB2005_FULL_WIDTH)
    offset = 0.0
    if "dmin.txt" in files and problem is None:
        dmin = folder / "dmin.txt"
        try:
            words = _read_text(dmin).split()
            offset = _number(words[0] if words else "", f"{dmin}: dmin")
        except DatasetError as exc:
            problem = str(exc)
    return [
        Sample(
            name=folder.name,
            dataset="middlebury2005",
            left_path=left_path,
            right_path=right_path,
            gt_path=gt_path,
            gt_scale=float(scale),
            nonocc_path=_nonocc(folder, files),
            max_disp_hint_px=256 // scale,
            disparity_offset_px=offset,
            problem=problem,
        )
    ]


def _read_text(path: Path) -> str:
    """A dataset's small text file, or :class:`DatasetError` naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a Windows editor's byte-order mark is not part of the text
    except UnicodeDecodeError:
        raise DatasetError(f"cannot read {path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_calib_txt(path: Path) -> dict[str, str]:
    values = {}
    for line in _read_text(path).splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# MiddEval3's and ETH3D's ground truth (or a set's own map of that name, :func:`_own_map`), and the full-size
# Middlebury 2014 (and 2021) scenes' (not disp0.png: Middlebury 2001's map scene names its 8-bit map so).
_TWO_VIEW_GT_STEM, _FULL_SIZE_GT_NAME = "disp0GT", "disp0.pfm"


# The datasets' own maps are PFM (SceneFlow's, MiddEval3's disp0GT); a set of the user's own in their layouts may hold
# the other maps read_disparity reads (those predict writes, .npy and 16-bit PNG, and a floating-point TIFF): the first
# found, in this order.
_OWN_MAP_SUFFIXES = (".pfm", ".npy", ".png", ".tif", ".tiff")


def _own_map(disparity_dir: Path, stem: str, files: set[str]) -> tuple[Path | None, str | None]:
    """``(ground truth, problem)`` of a frame or scene whose map is ``disparity_dir/stem.pfm`` (SceneFlow's ``X.pfm``,
    MiddEval3's ``disp0GT.pfm``) or another format read (:data:`_OWN_MAP_SUFFIXES`), else ``(None, None)``.

    A map of that name in a format eval does not read (``X.exr``, ``disp0GT.jpg``) is its ground truth with a
    problem naming the formats read, so that the scene fails by name: it was left out as a scene without ground
    truth, and a set of them stopped with "none with a disparity map to score against".
    """
    named = {os.path.splitext(name)[1].lower(): name for name in _visible(files) if os.path.splitext(name)[0] == stem}
    for suffix in _OWN_MAP_SUFFIXES:  # X.PFM too, as read_disparity reads it
        if suffix in named:
            return disparity_dir / named[suffix], None
    other = next(iter(sorted(named.values())), None)
    if other is None:
        return None, None
    return disparity_dir / other, (
        f"ground truth {disparity_dir / other}: not a format eval reads; expected {stem}.pfm, {stem}.npy, a 16-bit "
        f"{stem}.png (value / 256, 0 = invalid) or a floating-point {stem}.tif"
    )


# ETH3D's ground truth is a download of its own, unpacked beside the images' (the layout RAFT-Stereo and most
# stereo code read): two_view_training/<scene> holds im0, im1 and calib.txt, two_view_training_gt/<scene>
# disp0GT.pfm and mask0nocc.png.
_GT_TREE_SUFFIX = "_gt"


def _files_in(folder: Path) -> set[str]:
    try:
        return {entry.name for entry in os.scandir(folder) if entry.is_file()}
    except OSError:
        return set()


def _two_view_folders(folder: Path, files: set[str]) -> tuple[Path, set[str], Path, set[str]]:
    """``(images folder, its files, ground-truth folder, its files)`` of a two-view scene: the folder itself
    for both, unless the images or the ground truth it lacks are in the twin folder of ETH3D's separate ground
    truth tree (``two_view_training`` and ``two_view_training_gt``)."""
    split = folder.parent
    if split.name.endswith(_GT_TREE_SUFFIX):
        twin = split.parent / split.name[: -len(_GT_TREE_SUFFIX)] / folder.name
        if _first(folder, ("im0", "im1"), files) is None and twin.is_dir():
            return twin, _files_in(twin), folder, files
    elif _two_view_gt(folder, files) == (None, None):
        twin = split.parent / f"{split.name}{_GT_TREE_SUFFIX}" / folder.name
        if twin.is_dir():
            return folder, files, twin, _files_in(twin)
    return folder, files, folder, files


def _two_view_gt(folder: Path, files: set[str]) -> tuple[Path | None, str | None]:
    """``(ground truth, problem)`` of a two-view scene's folder, as :func:`_own_map` gives them."""
    gt, problem = _own_map(folder, _TWO_VIEW_GT_STEM, files)
    if gt is None and _FULL_SIZE_GT_NAME in files:
        return folder / _FULL_SIZE_GT_NAME, None
    return gt, problem


def detect_middlebury_2014_eth3d(folder: Path, dirs: list[str], names: list[str], root: Path) -> list[Sample]:
    images, files, truth, truth_files = _two_view_folders(folder, set(names))
    left_path, right_path, missing, any_image = _pair(images, "im0", "im1", files)
    # A test split (MiddEval3 testF/H/Q, ETH3D two_view_test) has no disp0GT.pfm: its calib.txt still marks
    # the layout, and its scenes are named as having no ground truth rather than as an unknown layout. Ground
    # truth, or calib.txt beside an image, with an image missing is a scene that fails by name.
    gt_path, gt_problem = _two_view_gt(truth, truth_files)
    if not (gt_path or (any_image and "calib.txt" in files)):
        return []
    calib = images / "calib.txt" if "calib.txt" in files else None
    values: dict[str, str] = {}
    hint, offset, problem = 192, 0.0, missing or gt_problem
    # A damaged calib.txt makes its scene fail when it is loaded, not the search of every dataset.
    try:
        values = _read_calib_txt(calib) if calib else {}
        if "ndisp" in values:
            hint = int(_number(values["ndisp"], f"{calib}: ndisp"))
            if hint < 0:  # a range searched as given would fail every method, or worse, be taken
                raise DatasetError(f"{calib}: ndisp '{values['ndisp']}' is negative, not a disparity range")
        if "doffs" in values:
            offset = _number(values["doffs"], f"{calib}: doffs")
    except DatasetError as exc:
        problem = str(exc)
    # Only folder names from the search root down count: a parent folder says nothing of the layout.
    # ETH3D's own folders are two_view_training and two_view_test; its calib.txt may give ndisp as MiddEval3's does.
    below_root = str(folder.relative_to(root.parent)).lower()
    is_eth3d = "eth3d" in below_root or "two_view" in below_root or "ndisp" not in values
    # A scene given by its own folder has no such folder name. Middlebury's calib.txt always has vmin and vmax (the
    # bounds of its ground truth) and a doffs other than 0 (its two principal points differ); ETH3D's (terrace:
    # cam0, cam1, doffs=0, baseline, width, height, ndisp) has neither.
    is_eth3d = is_eth3d or ("doffs" in values and offset == 0 and not {"vmin", "vmax"} & values.keys())
    return [
        Sample(
            name=folder.name,
            dataset="eth3d" if is_eth3d else "middlebury2014",
            left_path=left_path,
            right_path=right_path,
            gt_path=gt_path,
            extra=_looked_for(gt_path, truth / f"{_TWO_VIEW_GT_STEM}.pfm"),
            nonocc_path=truth / "mask0nocc.png" if "mask0nocc.png" in truth_files else None,
            nonocc_value=255,
            max_disp_hint_px=hint,
            calib_path=calib,
            disparity_offset_px=offset,
            problem=problem,
        )
    ]


_KITTI_LAYOUTS = (
    # dataset, left dir, right dir, all-pixels GT dir, non-occluded GT dir
    ("kitti2015", "image_2", "image_3", "disp_occ_0", "disp_noc_0"),
    ("kitti2012", "colored_0", "colored_1", "disp_occ", "disp_noc"),
    ("kitti2012", "image_0", "image_1", "disp_occ", "disp_noc"),
)
_KITTI_FRAME = re.compile(r"^(\d+)_10\.png$")


def detect_kitti(folder: Path, dirs: list[str], names: list[str], root: Path) -> list[Sample]:
    present = set(dirs)
    layout = next((lay for lay in _KITTI_LAYOUTS if {lay[1], lay[2]} <= present), None)
    if layout is None:
        return []
    dataset, left_dir, right_dir, occ_dir, noc_dir = layout
    samples = []
    # Frames of either view: one whose left image is missing is listed too, and fails by name.
    images = _visible({*os.listdir(folder / left_dir), *os.listdir(folder / right_dir)})
    frames = [(name, match.group(1)) for name in images if (match := _KITTI_FRAME.match(name))]
    if not frames:  # a set of one's own in KITTI's folders, its frames named otherwise (0001.png): it was no layout
        stems = [os.path.splitext(name) for name in images]
        frames = [(stem + suffix, stem) for stem, suffix in stems if suffix.lower() in IMAGE_SUFFIXES]
    truth_files, nonocc_files = _files_in(folder / occ_dir), _files_in(folder / noc_dir)
    for frame, number in frames:
        stem = os.path.splitext(frame)[0]
        gt, gt_problem = _kitti_map(folder / occ_dir, stem, truth_files)
        noc, noc_problem = _kitti_map(folder / noc_dir, stem, nonocc_files)
        calib = folder / "calib" / f"{number}.txt"
        calib_2015 = folder / "calib_cam_to_cam" / f"{number}.txt"
        label = folder.name if folder.name == number else f"{folder.name}/{number}"
        samples.append(
            Sample(
                name=label,
                dataset=dataset,
                left_path=folder / left_dir / frame,
                right_path=folder / right_dir / frame,
                gt_path=gt,
                extra=_looked_for(gt, folder / occ_dir / f"{stem}.png"),
                nonocc_path=noc,
                nonocc_value=-1,
                max_disp_hint_px=192,
                calib_path=calib if calib.is_file() else (calib_2015 if calib_2015.is_file() else None),
                problem=_missing_images(folder / left_dir / frame, folder / right_dir / frame)
                or gt_problem
                or noc_problem,
            )
        )
    return samples


def _kitti_map(disparity_dir: Path, stem: str, files: set[str]) -> tuple[Path | None, str | None]:
    """``(map, problem)`` of a KITTI-layout frame (KITTI's, DrivingStereo's): ``stem.png`` as KITTI stores it (uint16
    / 256, 0 invalid), read first as before; else a set's own map in another format eval reads (:func:`_own_map`:
    ``.pfm``, ``.npy``, a float ``.tif``), which was "without ground truth"; one in a format it does not read fails
    the frame by name."""
    if f"{stem}.png" in files:
        return disparity_dir / f"{stem}.png", None
    return _own_map(disparity_dir, stem, files)


def _looked_for(gt_path: Path | None, expected: Path) -> dict[str, Path]:
    """:attr:`Sample.extra` of a scene: where its ground truth would be, when it has none (``gt_expected``)."""
    return {} if gt_path is not None else {"gt_expected": expected}


def _missing_images(left: Path, right: Path) -> str | None:
    """The problem of a pair whose left or right image is missing (listed, so that it fails alone and is named)."""
    missing = [
        f"the {side} image {path} is missing" for side, path in (("left", left), ("right", right)) if not path.is_file()
    ]
    return "; ".join(missing) or None


_SCENEFLOW_IMAGE_DIRS = ("RGB_cleanpass", "RGB_finalpass", "frames_cleanpass", "frames_finalpass", "images")
# The FlyingThings3D subset: its own image folders, negated disparity, occlusion masks of its own name.
_FT3D_SUBSET_IMAGE_DIRS = ("image_clean", "image_final")


def detect_sceneflow(folder: Path, dirs: list[str], names: list[str], root: Path) -> list[Sample]:
    if not {"left", "right"} <= set(dirs):
        return []
    parts = folder.parts
    first_own = len(root.parts) - 1
    image_dirs = (*_SCENEFLOW_IMAGE_DIRS, *_FT3D_SUBSET_IMAGE_DIRS)
    anchors = [i for i, part in enumerate(parts) if part in image_dirs]
    # The root's own name may be the image folder. A parent's counts only where its disparity tree is there too: a
    # sequence given alone (frames_cleanpass/TRAIN/A/0000) was no known layout, but data kept under a folder named
    # "images" is no SceneFlow.
    own = [i for i in anchors if i >= first_own]
    above = [i for i in anchors if i < first_own and _sceneflow_disparity_dir(parts, i).is_dir()]
    if not (own or above):
        return []
    anchor = (own or above)[-1]
    subset = parts[anchor] in _FT3D_SUBSET_IMAGE_DIRS
    root = Path(*parts[:anchor])
    tail = Path(*parts[anchor + 1 :]) if anchor + 1 < len(parts) else Path()
    disparity_dir = _sceneflow_disparity_dir(parts, anchor)
    occlusion_dir = root / ("disparity_occlusions" if subset else "occlusion") / tail / "left"
    max_disp_px = _synth_max_disp_px(root)
    truth_files = _files_in(disparity_dir)
    samples = []
    for image in _visible({*os.listdir(folder / "left"), *os.listdir(folder / "right")}):
        stem, suffix = os.path.splitext(image)
        if suffix.lower() not in IMAGE_SUFFIXES:
            continue
        gt, gt_problem = _own_map(disparity_dir, stem, truth_files)
        occ = occlusion_dir / f"{stem}.png"
        scene = root.name if len(parts) - anchor == 1 else f"{root.name}/{tail}"
        samples.append(
            Sample(
                name=f"{scene}/{stem}",
                dataset="sceneflow",
                left_path=folder / "left" / image,
                right_path=folder / "right" / image,
                gt_path=gt,
                extra=_looked_for(gt, disparity_dir / f"{stem}.pfm"),
                gt_negated=subset,
                nonocc_path=occ if occ.is_file() else None,
                nonocc_value=0 if subset else None,  # the subset's masks: 0 visible, 1 or 255 occluded
                max_disp_hint_px=max_disp_px,
                problem=_missing_images(folder / "left" / image, folder / "right" / image) or gt_problem,
            )
        )
    return samples


def _sceneflow_disparity_dir(parts: tuple[str, ...], anchor: int) -> Path:
    """The left disparity folder of a SceneFlow image folder ``parts``, whose ``parts[anchor]`` is the image tree."""
    return Path(*parts[:anchor], "disparity", *parts[anchor + 1 :], "left")


# DrivingStereo: <split>-left-image/<sequence>/<frame>.jpg, its test split a level deeper
# (test-left-image/left-image-half-size/<sequence>); the right views and the ground truth in the twin trees named
# right-image and disparity-map, the ground truth as KITTI's (uint16 / 256, 0 = invalid).
_DRIVINGSTEREO_LEFT = "left-image"
_DRIVINGSTEREO_SPLIT = re.compile(r"(train|test)-left-image")


def detect_drivingstereo(folder: Path, dirs: list[str], names: list[str], root: Path) -> list[Sample]:
    parts = folder.parts
    # the split's folder may be above the one given (a sequence given alone): its right twin tells it is DrivingStereo
    splits = [i for i, part in enumerate(parts) if _DRIVINGSTEREO_SPLIT.fullmatch(part)]
    if not splits:
        return []

    def twin(what: str) -> Path:
        split = splits[-1]
        return Path(*parts[:split], *(part.replace(_DRIVINGSTEREO_LEFT, what) for part in parts[split:]))

    right_dir, truth_dir = twin("right-image"), twin("disparity-map")
    if not right_dir.is_dir():
        return []
    samples = []
    truth_files = _files_in(truth_dir)
    # Frames of either view: one whose left image is missing is listed too, and fails by name.
    for image in _visible({*names, *_files_in(right_dir)}):
        stem, suffix = os.path.splitext(image)
        if suffix.lower() not in IMAGE_SUFFIXES:
            continue
        gt, gt_problem = _kitti_map(truth_dir, stem, truth_files)
        samples.append(
            Sample(
                name=stem,  # the frame's name holds its sequence's
                dataset="drivingstereo",
                left_path=folder / image,
                right_path=right_dir / image,
                gt_path=gt,
                extra=_looked_for(gt, truth_dir / f"{stem}.png"),
                nonocc_path=None,
                max_disp_hint_px=192,
                problem=_missing_images(folder / image, right_dir / image) or gt_problem,
            )
        )
    return samples


def _synth_max_disp_px(root: Path) -> int:
    """The disparity range of a SceneFlow-layout folder: ``rtstereo synth --max-disp`` from its ``synth.json``
    (rounded up), else SceneFlow's 192 px. A set rendered over 0-32 px is not searched over 192, nor one of
    0-300 px over 192 only."""
    try:
        recorded = json.loads((root / "synth.json").read_text(encoding="utf-8")).get("max_disp_px")
    except (OSError, ValueError, AttributeError):
        return 192
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)) or not 0 < recorded < math.inf:
        return 192
    return math.ceil(recorded)


DETECTORS: tuple[Detector, ...] = (
    detect_kitti,
    detect_sceneflow,
    detect_drivingstereo,
    detect_middlebury_2014_eth3d,
    detect_middlebury_2005,
    detect_middlebury_2001_2003,
)
LAYOUTS = (
    "middlebury2001",
    "middlebury2003",
    "middlebury2005",
    "middlebury2014",
    "eth3d",
    "kitti2012",
    "kitti2015",
    "sceneflow",
    "drivingstereo",
)


def _visible(names: Iterable[str]) -> list[str]:
    """``names`` without hidden ones, sorted: macOS's "._000001.png" companions (AppleDouble files that are no
    image), partial downloads, ".ipynb_checkpoints" copies.

    Examples:
        >>> _visible(["b.png", "._a.png", "a.png", ".DS_Store"])
        ['a.png', 'b.png']
    """
    return sorted(name for name in names if not name.startswith("."))


def walk_following_links(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` that follows symbolic links to folders, each real folder once (no loops), hidden folders and
    files left out (as a folder given to predict leaves them out)."""
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up (a loop) or a second link to a folder already read
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = _visible(dirs)
        yield Path(folder), dirs, _visible(names)


# Archives datasets are downloaded as (MiddEval3-data-Q.zip, data_scene_flow.zip, ETH3D's .7z, SceneFlow's .tar)
ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def _layout_above(path: Path, levels: int = 2) -> tuple[Path, str] | None:
    """The folder just above ``path`` (up to ``levels`` folders up) that a layout claims with a view or ground truth
    under ``path``, and that layout: one view's folder of a dataset (KITTI's ``image_2``, SceneFlow's
    ``images/left``) was said to hold no known layout, with no word of the dataset it belongs to. Only each folder's
    own listing is read, not its tree."""
    for folder in list(path.parents)[:levels]:
        try:
            entries = list(os.scandir(folder))
            dirs = _visible([e.name for e in entries if e.is_dir()])
            names = _visible([e.name for e in entries if not e.is_dir()])
            with warnings.catch_warnings():  # what a detector warns about is said when that folder is searched
                warnings.simplefilter("ignore")
                claimed = [sample for detector in DETECTORS for sample in detector(folder, dirs, names, folder)]
        except Exception:  # a courtesy: a folder above that cannot be read, or that fails a detector, says nothing
            return None
        files = [file for sample in claimed for file in (sample.left_path, sample.right_path, sample.gt_path) if file]
        if any(_is_below(file, path) for file in files):
            return folder, claimed[0].dataset
    return None


def _is_below(file: Path, folder: Path) -> bool:
    return os.path.realpath(file).startswith(os.path.realpath(folder) + os.sep)


def find_samples(*paths: str | Path, unreadable: list[tuple[str, str]] | None = None) -> list[Sample]:
    """All samples under the given folders, each layout detected from its files.

    Symbolic links to folders are followed; a folder reached twice (a loop of links, two links to one
    scene, or overlapping paths such as ``A`` and ``A/sub``) is read once. A folder holding the files of
    two layouts (a Middlebury 2001 scene and a MiddEval3 one) gives a sample of each.

    Args:
        *paths: dataset folders (a scene, a dataset root, or a folder of several datasets).
        unreadable: where given, a folder of several paths that holds no known layout is added to it as ``(path,
            reason)`` and the others are searched, as a batch goes on past a bad pair (eval scores the others and
            reports it); without it, or when no path holds a scene, it raises.

    Returns:
        Samples sorted by folder order, with unique names.

    Raises:
        DatasetError: a path is empty, missing or not a folder, a URL other than ``file://``, or nothing under it has
            a known layout.
        InputError: a path that is not a ``str`` or ``os.PathLike``.
    """
    samples: list[Sample] = []
    read: set[tuple[str, str]] = set()  # the real paths of each pair already found
    searched: dict[str, str] = {}  # the real path of each folder searched, and how it was given first
    repeated: list[str] = []
    for given in paths:
        given = _folder_of_url(given)
        path = require_path(given, "dataset folder").absolute()
        if str(given) == "":  # an unset shell variable ("$DATA"): Path("") is the current folder, searched whole
            raise DatasetError("dataset folder: the path is empty")
        if not path.exists():
            raise DatasetError(f"dataset folder not found: {path}")
        if not path.is_dir():
            if path.name.lower().endswith(ARCHIVE_SUFFIXES):  # a download not unpacked yet
                raise DatasetError(
                    f"{not_a_folder(path)}: an archive, which is not read as it is: unpack it and give the folder it "
                    "unpacks to"
                )
            raise DatasetError(
                f"{not_a_folder(path)}: give the folder of a scene or of a dataset "
                "(e.g. the folder holding im0.png, im1.png and disp0GT.pfm)"
            )
        real = os.path.realpath(path)
        if real in searched:  # `eval D D` read D once without a word: the user may have meant another folder
            repeated.append(f"{given}" if str(given) == searched[real] else f"{given} (as {searched[real]})")
            continue
        searched[real] = str(given)
        found: list[Sample] = []
        files_seen = False
        for folder, dirs, names in walk_following_links(path):
            files_seen = files_seen or bool(names)
            claimed = [sample for detector in DETECTORS for sample in detector(folder, dirs, names, path)]
            if claimed:
                found.extend(claimed)
                dirs[:] = []  # a claimed folder is not searched further
        if not found:
            # an empty folder (a download not unpacked there, a mount not mounted) was said to hold an unknown layout
            empty = "" if files_seen else ": the folder is empty (no file in it or in its folders)"
            above = _layout_above(path) if files_seen else None
            problem = DatasetError(
                f"no stereo dataset of a known layout under {path} (known: {', '.join(LAYOUTS)}){empty}; "
                + (
                    f"it is part of the {above[1]} dataset in {above[0]}: give that folder"
                    if above
                    else "see `rtstereo eval --help` for the expected files"
                )
            )
            if unreadable is None or len(paths) == 1:
                raise problem
            unreadable.append((str(given), str(problem)))
            continue
        for sample in found:  # a scene under two of the paths is scored once, not counted twice in the mean
            pair = (os.path.realpath(sample.left_path), os.path.realpath(sample.right_path))
            if pair not in read:
                read.add(pair)
                samples.append(sample)
    if unreadable and not samples:  # no path held a scene: the run has nothing to go on with
        raise DatasetError(unreadable[0][1])
    if repeated:
        folders = "folder " if len(repeated) == 1 else "folders "
        warn(f"dataset {folders}{', '.join(repeated)} given more than once: read once", RtStereoWarning)
    return _unique_names(samples)


def _folder_of_url(given: object) -> object:
    """A ``file://`` URL as the folder it names, as predict's inputs and ``train --data`` take one (it was "dataset
    folder not found: /cwd/file:/data/kitti", the URL made into a path); another URL (``https://``, ``s3://``) refused
    in one line: a dataset is read where it lies, not downloaded. A folder of that name is read as one.

    Examples:
        >>> _folder_of_url("file:///data/my%20sets"), _folder_of_url("kitti/")
        ('/data/my sets', 'kitti/')
    """
    from ..io.download import local_path_of

    return local_path_of(
        given,
        lambda url: DatasetError(
            f"dataset folder {url}: datasets are read from local folders, not from URLs: download and unpack it, "
            "then give its folder (or a file:///path URL)"
        ),
    )


def _unique_names(samples: list[Sample]) -> list[Sample]:
    """Prefix repeated names with their dataset; names that still repeat (a scene at two sizes, SceneFlow's
    clean and final passes, two copies of one scene) get the nearest folder that tells them apart,
    ``Teddy (trainingH)``, or else their left image's file name where that does (``a (a.jpg)``), or else a number,
    ``name#2``."""
    if len({s.name for s in samples}) != len(samples):
        samples = [dataclasses.replace(s, name=f"{s.dataset}/{s.name}") for s in samples]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.name, []).append(i)
    names = [s.name for s in samples]
    for indices in groups.values():
        if len(indices) == 1:
            continue
        labels = _telling_folders([samples[i].left_path for i in indices])
        files = [samples[i].left_path.name for i in indices]
        if labels is None and len(set(files)) == len(files):  # one frame as a.png and a.jpg: "a" and "a#2"
            labels = files
        for number, i in enumerate(indices, 1):
            if labels is not None:
                names[i] = f"{names[i]} ({labels[number - 1]})"
            elif number > 1:
                names[i] = f"{names[i]}#{number}"
    return [s if s.name == name else dataclasses.replace(s, name=name) for s, name in zip(samples, names)]


def _telling_folders(left_paths: list[Path]) -> list[str] | None:
    """The folder nearest to these images in which their paths part; ``None`` when it does not tell them
    all apart.

    Examples:
        >>> _telling_folders([Path("/d/trainingQ/Teddy/im0.png"), Path("/e/trainingH/Teddy/im0.png")])
        ['trainingQ', 'trainingH']
        >>> apart_at_a_and_b = [Path("/x/a/T/im0.png"), Path("/y/a/T/im0.png"), Path("/x/b/T/im0.png")]
        >>> _telling_folders(apart_at_a_and_b) is None
        True
    """
    folders = [path.parent.parts[::-1] for path in left_paths]  # nearest folder first
    depth = min(len(parts) for parts in folders)
    first = next((i for i in range(depth) if len({parts[i] for parts in folders}) > 1), None)
    if first is None:
        return None
    labels = [parts[first] for parts in folders]
    return labels if len(set(labels)) == len(labels) else None
