"""Resolving LEFT/RIGHT command-line arguments into matched image pairs.

Each side may be a file, a folder (its images in sorted order, not its sub-folders'), a glob (its images,
as a folder's: ``**`` spans folders), or an http(s) URL. The two
sides are matched by position after sorting, and must have the same number of images; when the numbers
in the two names of a pair differ (``left_0012`` with ``right_0013``), a warning says so.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import posixpath
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..datasets.readers import IMAGE_SUFFIXES
from ..errors import InputError, missing_file_message, require_bool, warn
from ..io.download import file_url_path, is_url, refuse_data_uri, refuse_other_url
from ..io.images import ORIENTATION_TURNS, read_image_turned
from ..sinks.files import clashing_names
from ..text import counted, frame_order
from ..types import Calibration, StereoPair


@dataclass(frozen=True)
class PairSource:
    """Where the two images of one pair come from.

    Attributes:
        left, right: the images' paths or URLs.
        name: the pair's name (its output files' stem).
        listed_at: where a manifest lists the pair (``pairs.csv line 4``, ``pairs.parquet row 3``), for its
            errors; empty for pairs given on the command line.
    """

    left: str
    right: str
    name: str
    listed_at: str = ""

    def load(self, index: int = 0, calibration: Calibration | None = None) -> StereoPair:
        """Read the two images.

        Each image is turned upright by its own EXIF orientation tag; a warning says when the two tags differ.

        Raises:
            InputError: an image that cannot be read, or left and right naming one file (a manifest row
                that repeats its left cell: the disparity of an image with itself is no disparity).
        """
        if same_image(self.left, self.right):
            raise InputError(f"left and right are the same image {self.left}: a stereo pair needs its two views")
        (left, left_turn), (right, right_turn) = read_image_turned(self.left), read_image_turned(self.right)
        pair = StereoPair(left, right, name=self.name, index=index, calibration=calibration)
        if left_turn != right_turn:  # non-square views turned 90 degrees apart were refused above, by their sizes
            warn(turned_apart_message(left_turn, right_turn))
        return pair


def turned_apart_message(left_turn: int, right_turn: int) -> str:
    """The warning for a pair whose files' EXIF orientation tags differ (values 1 to 8, ``ORIENTATION_TURNS``):
    each view was turned upright by its own, and a rig's two views, stored alike, then lie turned against each
    other (upside down, or one mirrored) without a size that says so; no check of the map can tell.

    Examples:
        >>> "left file's EXIF orientation tag has it turned 180 degrees, the right file's as stored" in (
        ...     turned_apart_message(3, 1)
        ... )
        True
    """
    return (
        f"the two views were read turned differently: the left file's EXIF orientation tag has it "
        f"{ORIENTATION_TURNS[left_turn]}, the right file's {ORIENTATION_TURNS[right_turn]} (each view is read "
        "upright as its own tag says, as viewers show it); if the two cameras were held alike, one view now lies "
        "turned against the other and its disparity is meaningless: give both files the same orientation tag"
    )


def expand(argument: str, side: str) -> list[str]:
    """The images one command-line argument stands for, sorted."""
    folder = _file_url_folder(argument)
    if folder is not None:  # file:///data/left/ is the folder /data/left: its images (it was 'file not found')
        argument = folder
    elif is_url(argument):
        return [argument]
    refuse_data_uri(argument, f"{side} image")
    refuse_other_url(argument, f"{side} image")
    # A glob is quoted to keep it from the shell, which then leaves a leading "~" to us as well.
    argument = os.path.expanduser(argument)
    path = Path(argument)
    if path.is_dir():
        # Hidden files are left out, as a glob leaves them out: macOS's "._left.png" companions, partial files.
        with os.scandir(path) as found:  # the entries' kinds come with the listing: no stat per image
            entries = [e for e in found if not e.name.startswith(".")]
        # a link whose file is gone is listed, to fail as its pair: left out, it shifted every pair after it
        images = sorted(
            str(path / e.name)
            for e in entries
            if Path(e.name).suffix.lower() in IMAGE_SUFFIXES and (e.is_file() or _dangling(e.path))
        )
        if not images:
            inside = (
                " (its images are read, not its sub-folders': for all of them give a glob such as "
                f"'{path / '**' / '*.png'}')"
                if any(e.is_dir() for e in entries)
                else ""
            )
            files = sorted(e.name for e in entries if e.is_file())
            if files:  # a folder of .avif or .jp2 files, which OpenCV may read one by one, said "holds no images"
                shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
                raise InputError(
                    f"{side} folder {path} holds {counted(len(files), 'file')} ({shown}) but no images of the formats "
                    f"a folder lists ({', '.join(IMAGE_SUFFIXES)}): convert them (or, for predict, list them in a "
                    "--pairs manifest)"
                )
            raise InputError(f"{side} folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}){inside}")
        return images
    if path.is_file():
        return [str(path)]
    if glob.has_magic(argument):
        # "**" spans any number of folders, none included, as in a shell with globstar (Python's default
        # reads it as "*": 'cam0/**/*.png' would leave out cam0/*.png and anything two folders down).
        files = [p for p in glob.glob(caseless_glob(argument), recursive=True) if Path(p).is_file() or _dangling(p)]
        files = _outside_link_loops(files, argument, side)
        if not files:
            raise InputError(f"{side} pattern '{argument}' matches no files")
        # As a folder gives its images only: 'cam0/*' leaves out the notes.txt or calib.json beside them.
        images = sorted(p for p in files if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            shown = ", ".join(Path(p).name for p in sorted(files)[:3]) + (", ..." if len(files) > 3 else "")
            raise InputError(
                f"{side} pattern '{argument}' matches {counted(len(files), 'file')} ({shown}) but no images "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
        return images
    if argument == "-":  # standard input to other tools: it said "left image not found: -"
        raise InputError(
            f"{side} image -: images are read from files, not from standard input: save it to a file and give its path"
        )
    # "nodir/" named a folder: it said "left image not found: nodir/"
    what = "folder" if argument.endswith(("/", os.sep)) else "image"
    raise InputError(missing_file_message(f"{side} {what}", argument))


def _dangling(path: str) -> bool:
    """Whether ``path`` is a link to nothing (its file deleted, or on a drive not mounted)."""
    return os.path.islink(path) and not os.path.exists(path)


def _outside_link_loops(files: list[str], pattern: str, side: str) -> list[str]:
    """The files a glob found less those reached through a link to a folder above it (``ln -s .. loop``), with a
    warning naming such links. ``**`` follows links to folders, and through a loop it gave each image below the loop
    about 40 times over (``loop/a/loop/a/...``, until the system's limit on links), each pair written again under
    another name.

    Examples:
        >>> _outside_link_loops(["no_such/a.png", "no_such/b/c.png"], "no_such/**/*.png", "left")
        ['no_such/a.png', 'no_such/b/c.png']
    """
    fixed = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    start = len(fixed)  # the folders below the pattern's fixed start are those the glob went into
    real = functools.cache(os.path.realpath)

    @functools.cache
    def loop_link(folder: str) -> str | None:
        parts = Path(folder).parts
        seen = {real(str(Path(*parts[:start])))} if start else {real(".")}
        for end in range(start + 1, len(parts) + 1):
            place = str(Path(*parts[:end]))
            if real(place) in seen and os.path.islink(place):  # not 'cam/..', which only leads back
                return place
            seen.add(real(place))
        return None

    links = {file: loop_link(os.path.dirname(file)) for file in files}
    looped = sorted({link for link in links.values() if link is not None})
    if looped:
        skipped = sum(link is not None for link in links.values())
        shown = ", ".join(looped[:3]) + (", ..." if len(looped) > 3 else "")
        warn(
            f"{side} pattern '{pattern}': {shown} {'links' if len(looped) > 1 else 'is a link'} to a folder above "
            f"{'them' if len(looped) > 1 else 'it'} (a loop): the {counted(skipped, 'image')} found through "
            f"{'them' if len(looped) > 1 else 'it'} {'are' if skipped > 1 else 'is'} left out, each already found "
            "without it"
        )
    return [file for file in files if links[file] is None]


def caseless_glob(pattern: str) -> str:
    """The glob with its wildcard parts matching letters of either case (``*.png`` finds ``IMG_1.PNG``, as
    on Windows and macOS, and as a folder's images are found); parts without a wildcard are folders named as
    written. A letter already inside ``[...]`` is left as it is.

    Examples:
        >>> caseless_glob("Cam0/*.png"), caseless_glob("d/**/l_[0-9].Jp*")
        ('Cam0/*.[pP][nN][gG]', 'd/**/[lL]_[0-9].[jJ][pP]*')
    """
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if not glob.has_magic(part):
            continue
        out, inside = [], False
        for char in part:
            if char == "[" and not inside:
                inside = True
            elif char == "]" and inside:
                inside = False
            elif not inside and char.lower() != char.upper() and len(char.upper()) == 1:
                char = f"[{char.lower()}{char.upper()}]"
            out.append(char)
        parts[i] = "".join(out)
    return "/".join(parts)


def resolve_pairs(
    left: str | os.PathLike[str], right: str | os.PathLike[str], by_number: bool = True
) -> list[PairSource]:
    """Match the images of ``left`` and ``right`` into pairs, named after the left files.

    Args:
        left, right: a file, folder, glob or URL each (str or Path).
        by_number: sort each side in the order of the numbers in the names (:func:`frame_order`) before
            matching by position (the default), rather than by name: ``L_9.png``/``L_10.png`` beside
            ``R_09.png``/``R_10.png`` sort by name into ``L_10``, ``L_9`` against ``R_09``, ``R_10``, and each left
            image would meet the other's right view.

    Examples:
        >>> resolve_pairs("https://x/l.png", "https://x/r.png")[0].name
        'l'

    Raises:
        InputError: a side that is not a file, folder, glob or URL (str or Path), one that gives no image, the same
            images on both sides, or as many images on neither.
    """
    for side, value in (("left", left), ("right", right)):
        if not isinstance(value, (str, os.PathLike)):  # a list of files failed with a bare TypeError
            raise InputError(
                f"{side}: expected a file, folder, glob or URL (str or Path), got {type(value).__name__}; for lists of "
                "files write a manifest (rtstereo.sources.manifest.read_manifest)"
            )
    by_number = require_bool(by_number, "by_number")  # "no" is true: it sorted by number, the opposite of what it said
    lefts, rights = expand(os.fspath(left), "left"), expand(os.fspath(right), "right")
    sorting = "sorting by name"
    if by_number:
        lefts, rights = sorted(lefts, key=frame_order), sorted(rights, key=frame_order)
        sorting = "sorting by the numbers in the names"
    same = [a for a, b in zip(lefts, rights) if same_image(a, b)]
    if same:
        more = f" and {len(same) - 1} more" if len(same) > 1 else ""
        raise InputError(
            f"left and right give the same image {same[0]}{more}: a stereo pair needs its two views (two files, "
            "folders or globs, one per camera)"
        )
    if len(lefts) != len(rights):
        alone = _numbers_on_one_side(lefts, rights)
        raise InputError(
            f"left gives {counted(len(lefts), 'image')} and right gives {len(rights)}: pairs are matched by position "
            f"after {sorting}, so both sides need the same number{alone}"
        )
    odd = _unlike_pairs(lefts, rights)
    if odd:
        (a, b), (first_a, first_b), count = odd
        whose = counted(count, "pair's", "pairs'")
        warn(
            f"pairs are matched by position after {sorting}, and the numbers in {whose} names do not follow "
            f"the first pair's ({_base(first_a)} with {_base(first_b)}; e.g. {_base(a)} with {_base(b)}): check "
            "that no image is missing on one side"
        )
    return [PairSource(a, b, n) for a, b, n in zip(lefts, rights, unique_names(lefts))]


def would_list(argument: str, file: str | Path) -> bool:
    """Whether a folder or glob argument would give ``file`` as one of its images once it exists (as :func:`expand`
    lists them): an output written there is read as an input image by the next run over the same arguments.

    Examples:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> would_list(d, f"{d}/a_color.png"), would_list(d, f"{d}/a.pfm"), would_list(d, "a.png")
        (True, False, False)
        >>> would_list("cam0/*.PNG", "cam0/a.png"), would_list("cam0/*.png", "cam0/s/a.png")
        (True, False)
        >>> would_list("c/**/*.png", "c/a.png"), would_list("c/**/*.png", "c/s/t/a.png"), would_list("c/*", "d/a.png")
        (True, True, False)
    """
    return image_lister(argument)(file)


def image_lister(argument: str) -> Callable[[str | Path], bool]:
    """:func:`would_list` for one argument and many files: the argument is resolved once, and each folder of the files
    once (a batch's checks resolved both for each of its output files: 0.4 s for 2 000 pairs, before the first).

    Examples:
        >>> lists = image_lister("cam0/*.png")
        >>> lists("cam0/a.png"), lists("cam0/a.pfm"), lists("cam1/a.png")
        (True, False, False)
    """
    if is_url(argument):
        return lambda file: False
    folder = _file_url_folder(argument)
    argument = os.path.expanduser(folder if folder is not None else argument)
    if os.path.isdir(argument):
        listed, real_folder = os.path.realpath(argument), functools.lru_cache(maxsize=None)(os.path.realpath)

        def in_place(file: Path) -> bool:
            return real_folder(str(file.parent)) == listed
    elif glob.has_magic(argument):
        pattern = caseless_glob(os.path.abspath(argument)).split("/")

        def in_place(file: Path) -> bool:
            return _parts_match(pattern, os.path.abspath(file).split("/"))
    else:
        return lambda file: False

    def lists(file: str | Path) -> bool:
        file = Path(file)
        return not file.name.startswith(".") and file.suffix.lower() in IMAGE_SUFFIXES and in_place(file)

    return lists


def _parts_match(pattern: list[str], parts: list[str]) -> bool:
    """``parts`` of a path against a glob's parts, ``**`` spanning any number of them (none included)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_parts_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _parts_match(pattern[1:], parts[1:])


def names_one_image(argument: str) -> bool:
    """Whether a LEFT or RIGHT argument names one image (a file or a URL), not a folder or a glob of them.

    Examples:
        >>> names_one_image("https://example.org/l.png"), names_one_image("no/such/*.png")
        (True, False)
    """
    if _file_url_folder(argument) is not None:
        return False
    return is_url(argument) or Path(os.path.expanduser(argument)).is_file()


def _file_url_folder(argument: str) -> str | None:
    """The folder a ``file://`` URL names, read as that folder's images; ``None`` for any other argument."""
    path = file_url_path(argument)
    return path if path is not None and os.path.isdir(path) else None


def same_image(left: str, right: str) -> bool:
    """Whether two paths (or URLs) name one file: the same text, or one file reached two ways.

    Examples:
        >>> same_image("https://x/l.png", "https://x/l.png"), same_image("no/such/a.png", "no/such/b.png")
        (True, False)
    """
    if left == right:
        return True
    if is_url(left) or is_url(right):
        return False
    if os.path.abspath(left) == os.path.abspath(right):
        return True
    # Through a link to a folder (one file name in two folders that are one): the folders are asked, a few
    # of them for a whole batch, rather than every image.
    return os.path.basename(left) == os.path.basename(right) and _same_folder(
        os.path.dirname(os.path.abspath(left)), os.path.dirname(os.path.abspath(right))
    )


@functools.lru_cache(maxsize=64)
def _same_folder(left: str, right: str) -> bool:
    try:
        return os.path.samefile(left, right)
    except OSError:  # one is missing: reading its image says so
        return False


def _base(path: str) -> str:
    """The file name of a path or URL, as the user would write it (``my%20pair.png`` -> ``my pair.png``).

    Examples:
        >>> _base("https://x.org/cam/l%C3%A9ft%201.png?raw=1"), _base("a/b%20c.png")
        ('léft 1.png', 'b%20c.png')
    """
    if is_url(path):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(path).path)).name
    return Path(path).name


def _frame_numbers(path: str) -> tuple[int, ...]:
    """The numbers in a file's stem (``left_0012.png`` -> ``(12,)``): what pairs two views of one frame.

    Examples:
        >>> _frame_numbers("cam0/img_0012.png"), _frame_numbers("x/left.png")
        ((12,), ())
    """
    return tuple(int(n) for n in re.findall(r"\d+", Path(_base(path)).stem))


def _unlike_pairs(lefts: list[str], rights: list[str]) -> tuple | None:
    """Pairs whose names' numbers are not related as the first pair's are (``cam0_0001`` / ``cam1_0001`` and
    ``l_0001`` / ``r_0002`` keep one relation through a sequence; a missing image shifts it), as ``(first
    such pair, the first pair, how many)``; ``None`` when all agree or the names give no numbers to compare."""
    numbers = [(_frame_numbers(a), _frame_numbers(b)) for a, b in zip(lefts, rights)]
    if len(numbers) < 2 or any(not x or len(x) != len(y) or len(x) != len(numbers[0][0]) for x, y in numbers):
        return None
    relation = [tuple(q - p for p, q in zip(x, y)) for x, y in numbers]
    unlike = [i for i, r in enumerate(relation) if r != relation[0]]
    if not unlike:
        return None
    # A missing image shifts the relation from there on: runs of one relation each. Free-running
    # timestamps (1000/1001, 1033/1035, ...) change it back and forth: no warning for those, unless it moves by
    # whole frames (an image missing on each side: 1/1, 3/2, 4/4 holds as many images on each, and 3 met 2).
    changes = sum(a != b for a, b in zip(relation, relation[1:]))
    if changes != len(set(relation)) - 1 and not _shifted_by_whole_frames(numbers, relation):
        return None
    return (lefts[unlike[0]], rights[unlike[0]]), (lefts[0], rights[0]), len(unlike)


def _shifted_by_whole_frames(numbers: list[tuple[tuple[int, ...], tuple[int, ...]]], relation: list[tuple]) -> bool:
    """Whether every pair leaves the first pair's relation, if at all, by whole frames: in its frame number (the last
    number of the names) alone, by a multiple of the smallest step between two images of a side (1 for frame
    counters), as an image missing on one side shifts it. Free-running timestamps (1000/1001, 1033/1035) move by
    less than their step.

    Examples:
        >>> numbers = [((1,), (1,)), ((3,), (2,)), ((4,), (4,))]  # 2 missing on the left, 3 on the right
        >>> _shifted_by_whole_frames(numbers, [(0,), (-1,), (0,)])
        True
        >>> _shifted_by_whole_frames([((1000,), (1001,)), ((1033,), (1035,)), ((1066,), (1067,))], [(1,), (2,), (1,)])
        False
    """
    steps = [
        later[-1] - earlier[-1]
        for side in (0, 1)
        for earlier, later in zip((n[side] for n in numbers), (n[side] for n in numbers[1:]))
        if later[-1] > earlier[-1]
    ]
    if not steps:
        return False
    step, first = min(steps), relation[0]
    return all(r[:-1] == first[:-1] and (r[-1] - first[-1]) % step == 0 for r in relation)


def _numbers_on_one_side(lefts: list[str], rights: list[str]) -> str:
    """For the error of sides of different lengths: the first names whose numbers only one side has."""
    numbers = [{_frame_numbers(p)[-1:]: p for p in side} for side in (lefts, rights)]  # the frame: the last number
    if not all(key for side in numbers for key in side):
        return ""
    only = [
        (side, numbers[i][key])
        for i, side in enumerate(("left", "right"))
        for key in numbers[i]
        if key not in numbers[1 - i]
    ]
    if not only:
        return ""
    shown = ", ".join(f"{side} {_base(path)}" for side, path in only[:3])
    return f" (numbered on one side only: {shown}{', ...' if len(only) > 3 else ''})"


def unique_names(lefts: list[str]) -> list[str]:
    """Pair names from the left files' stems; when two stems collide (``seq1/0001.png``, ``seq2/0001.png``),
    or one pair's output files would be another's (``a.png`` and ``a_color.png``: the first one's preview is
    ``a_color.png``, the second one's 16-bit disparity), from their paths below the folder the left files
    share (``seq1/0001``: sub-folders of the output; for URLs, their paths below the address they share),
    which stay the same when images are added, so that a rerun finds each pair's own files. When those
    collide too (``x.png`` beside ``x.jpg``), the same paths keep their suffixes (``x.png``, written
    ``x.png.png``, ``x.png.pfm``, ...). Only when even these collide (URLs that differ in their query alone)
    are the names numbered by position.

    Examples:
        >>> unique_names(["a/x.png", "b/x.png"]), unique_names(["d/x.png", "d/x_color.png", "d/x.jpg"])
        (['a/x', 'b/x'], ['x.png', 'x_color.png', 'x.jpg'])
        >>> unique_names(["https://h.org/cam/0/l.png", "https://h.org/cam/1/l.png"])
        ['0/l', '1/l']
    """
    names = [Path(_base(p)).stem or f"pair{i:05d}" for i, p in enumerate(lefts)]
    if _distinct(names):
        return names
    for keep_suffix in (False, True):
        relative = _relative_names(lefts, keep_suffix)
        if relative is not None and _distinct(relative):
            return relative
    return [f"{i:05d}_{n}" for i, n in enumerate(names)]


def _distinct(names: list[str]) -> bool:
    """Whether every name is its own and no pair's output files are another's."""
    return len(set(names)) == len(names) and clashing_names(names) is None


def _relative_names(lefts: list[str], keep_suffix: bool = False) -> list[str] | None:
    """The left files' paths below the folder they share, without their suffixes (``seq1/0001``) unless
    ``keep_suffix``; for URLs, their paths below the address they share, as the user reads them. ``None``
    for files and URLs mixed, or a path with a hidden or empty part, which a pair name may not hold.

    Examples:
        >>> _relative_names(["d/seq1/0001.png", "d/seq2/img.0001.png"]), _relative_names(["d/a.png", "d/a.jpg"], True)
        (['seq1/0001', 'seq2/img.0001'], ['a.png', 'a.jpg'])
        >>> _relative_names(["https://x.org/c%200/a.png", "https://x.org/c1/a.png?raw=1"])
        ['c 0/a', 'c1/a']
    """
    urls = [is_url(p) for p in lefts]
    if any(urls):
        if not all(urls):
            return None
        # The host is the first folder: one file on two servers has two names.
        paths = []
        for url in lefts:
            parts = urllib.parse.urlparse(url)
            paths.append(posixpath.join("/", parts.netloc, urllib.parse.unquote(parts.path).lstrip("/")))
        dirname, relpath, commonpath = posixpath.dirname, posixpath.relpath, posixpath.commonpath
    else:
        paths = [os.path.abspath(p) for p in lefts]
        dirname, relpath, commonpath = os.path.dirname, os.path.relpath, os.path.commonpath
    try:
        root = commonpath([dirname(p) for p in paths])
    except ValueError:  # paths on different drives (Windows)
        return None
    relative = [Path(relpath(p, root)) for p in paths]
    names = [(n if keep_suffix else n.with_suffix("")).as_posix() for n in relative]
    if any(not part or part.startswith(".") for name in names for part in name.split("/")):
        return None
    return names
