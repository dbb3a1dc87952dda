"""Writing one result as a set of files, by format name.

Formats (``--format``): ``png16`` 16-bit KITTI PNG (d*256, 0 = invalid), ``pfm`` (inf = invalid),
``npy`` (float32, nan = invalid), ``color`` colourised preview PNG, ``json`` sidecar (model,
settings, sizes, per-stage timings, and how each map file written beside it reads back as numbers:
``encodings``). Other modules add formats with :func:`register_format`.

Every file is written atomically (a temporary name, then a rename; see :mod:`rtstereo.io.atomic`), so
a file under its final name is always complete, and :func:`outputs_complete` can tell which pairs of
an interrupted batch are done.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DisparityRangeError, InputError, OutputError, require_path, warn
from ..io.atomic import atomic_path, interrupts_deferred, os_reason, publish, staging_folder
from ..io.disparity import colorize, preview_top_px, write_disparity
from ..io.images import write_image
from ..text import frame_order
from ..types import DisparityResult

Writer = Callable[[DisparityResult, Path], Path]
"""A writer takes the result and the output stem (folder / pair name) and returns the file written."""

DEFAULT_FORMATS = ("png16", "pfm", "color", "json")
FILE_SUFFIXES = {".png": "png16", ".pfm": "pfm", ".npy": "npy"}


def _named(stem: Path, suffix: str) -> Path:
    """``stem`` with ``suffix`` added: a pair name may hold dots (``img.0001``), which ``with_suffix`` would
    replace, so that ``img.0001`` and ``img.0002`` both became ``img.png``."""
    return stem.parent / f"{stem.name}{suffix}"


def _png16(result: DisparityResult, stem: Path) -> Path:
    path = _named(stem, ".png")
    write_disparity(path, result.disparity_px)
    return path


def _pfm(result: DisparityResult, stem: Path) -> Path:
    path = _named(stem, ".pfm")
    write_disparity(path, result.disparity_px)
    return path


def _npy(result: DisparityResult, stem: Path) -> Path:
    path = _named(stem, ".npy")
    write_disparity(path, result.disparity_px)
    return path


def _color(result: DisparityResult, stem: Path, top_px: float | None = None) -> Path:
    """The preview spans 0 to the map's own 99th percentile (``top_px`` where the caller has it): against the model's
    whole search range (192 px for ``default``) a pair of nearer disparities came out in one colour. (A video keeps
    one range for all frames, so that colours do not flicker.)"""
    path = stem.parent / f"{stem.name}_color.png"
    write_image(path, colorize(result.disparity_px, top_px))
    return path


def _json(result: DisparityResult, stem: Path, formats: Iterable[str] = (), top_px: float | None = None) -> Path:
    """The sidecar, with ``encodings``: for each map file of ``formats`` written beside it, what it holds and how
    its values read back (a 16-bit PNG's value / 256 is the disparity in pixels, 0 is invalid): without it, a
    reader of ``left.png`` had to know KITTI's convention, and of ``left_depth_mm.png`` that it is millimetres."""
    path = _named(stem, ".json")
    sidecar = result.sidecar()
    sidecar["encodings"] = {
        f: {"file": FORMAT_FILES[f].format(name=stem.name), **FORMAT_ENCODINGS[f]}
        for f in formats
        if f in FORMAT_ENCODINGS and f in FORMAT_FILES
    }
    if "color" in formats:  # the preview's scale: without it, which disparity a colour shows could not be known
        sidecar["color_preview"] = {
            "file": FORMAT_FILES["color"].format(name=stem.name),
            "colour_map": "turbo",
            "range_px": [0.0, preview_top_px(result.disparity_px) if top_px is None else top_px],
            "invalid": "black",
        }
    try:
        path.write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    except OSError as exc:  # the system's reason, as for the maps: "[Errno 28]" is no words for a user
        raise OutputError(f"cannot write {path}: {os_reason(exc, path)}") from None
    return path


FORMATS: dict[str, Writer] = {"png16": _png16, "pfm": _pfm, "npy": _npy, "color": _color, "json": _json}
# The file each format writes, relative to the output folder: what a rerun looks for to skip a pair.
FORMAT_FILES: dict[str, str] = {
    "png16": "{name}.png",
    "pfm": "{name}.pfm",
    "npy": "{name}.npy",
    "color": "{name}_color.png",
    "json": "{name}.json",
}
# What each map format's file holds and how its values read back: value / divide_by, in unit; "invalid" is the
# value that marks a pixel without a match (the text "inf" or "nan" for floating-point files). Written into the
# JSON sidecar for the formats of its pair.
FORMAT_ENCODINGS: dict[str, dict[str, Any]] = {
    "png16": {"holds": "disparity", "unit": "px", "dtype": "uint16", "divide_by": 256, "invalid": 0},
    "pfm": {"holds": "disparity", "unit": "px", "dtype": "float32", "divide_by": 1, "invalid": "inf"},
    "npy": {"holds": "disparity", "unit": "px", "dtype": "float32", "divide_by": 1, "invalid": "nan"},
}
# The note written instead of a format's file when the result cannot be held by it (a disparity over 256 px in a
# 16-bit PNG): its one-line reason. The pair is complete with it, so a rerun skips the pair instead of redoing it.
NOT_WRITTEN_NOTES: dict[str, str] = {"png16": "{name}.png-not-written.txt"}


def register_format(
    name: str, writer: Writer, filename: str | None = None, encoding: Mapping[str, Any] | None = None
) -> None:
    """Add an output format (for example ``depth`` or ``ply``).

    Args:
        name: the ``--format`` name.
        writer: writes the result given the output stem, returns the file written.
        filename: the file it writes, as a template of the pair ``{name}`` (``"{name}_depth.pfm"``);
            without it, a rerun cannot tell whether the format's output is complete and redoes the pair.
        encoding: for a map file, what it holds and how its values read back, as in :data:`FORMAT_ENCODINGS`
            (``{"holds": "depth", "unit": "m", "dtype": "uint16", "divide_by": 1000, "invalid": 0}``): the
            JSON sidecar gives it (with ``filename``).
    """
    FORMATS[name] = writer
    if filename is not None:
        FORMAT_FILES[name] = filename
    else:
        FORMAT_FILES.pop(name, None)
    if encoding is not None:
        FORMAT_ENCODINGS[name] = dict(encoding)
    else:
        FORMAT_ENCODINGS.pop(name, None)


def made_with_file(folder: str | Path, name: str) -> Path:
    """The hidden file beside a pair's outputs that records the options they were made with (``made_with`` of
    :func:`save_result`), for a rerun to tell them from this run's.

    Examples:
        >>> made_with_file("out", "seq1/000001").as_posix()
        'out/seq1/.000001.made-with.json'
    """
    path = Path(folder) / name
    return path.parent / f".{path.name}.made-with.json"


def read_made_with(folder: str | Path, name: str) -> dict[str, Any] | None:
    """What :func:`made_with_file` records for the pair ``name``; ``None`` when nothing readable does (outputs of an
    earlier version, or written without ``made_with``)."""
    try:
        recorded = json.loads(made_with_file(folder, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def vouching_record(
    made_with: Mapping[str, Any], formats: Iterable[str], earlier: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The record :func:`save_result` writes beside a pair: ``made_with`` and the ``formats`` whose files it vouches
    for, those written now and, when ``earlier`` (the pair's record before) names the same options, those it vouched
    for. Files of the pair left from a run with other options are not vouched for: a record of the new options alone
    let a rerun of them skip the pair and keep the other options' maps.

    Examples:
        >>> vouching_record({"model": "bm"}, ["color"], {"model": "sgbm", "formats": ["png16", "color"]})
        {'model': 'bm', 'formats': ['color']}
        >>> vouching_record({"model": "bm"}, ["color"], {"model": "bm", "formats": ["png16"]})
        {'model': 'bm', 'formats': ['color', 'png16']}
    """
    options = {key: value for key, value in made_with.items() if key != "formats"}
    vouched = list(dict.fromkeys(formats))
    if earlier is not None and {k: v for k, v in earlier.items() if k != "formats"} == options:
        before = earlier.get("formats")
        if not isinstance(before, list):  # an earlier version's record, which vouched for every file of the pair
            return options
        vouched += [f for f in before if isinstance(f, str) and f not in vouched]
    return {**options, "formats": vouched}


def vouches_for(record: Mapping[str, Any] | None, formats: Iterable[str]) -> bool:
    """Whether a pair's record (:func:`read_made_with`) vouches for the files of ``formats``: one without ``formats``
    (an earlier version's), or none at all, vouches for every file.

    Examples:
        >>> vouches_for({"model": "bm", "formats": ["color"]}, ["png16", "color"]), vouches_for(None, ["png16"])
        (False, True)
    """
    vouched = None if record is None else record.get("formats")
    return not isinstance(vouched, list) or set(formats) <= set(vouched)


def output_files(folder: str | Path, name: str, formats: Iterable[str]) -> list[Path] | None:
    """The files :func:`save_result` writes for one pair, or ``None`` when a format does not say.

    Examples:
        >>> [p.name for p in output_files("out", "a", ["png16", "color"])]
        ['a.png', 'a_color.png']
    """
    templates = [FORMAT_FILES.get(f) for f in formats]
    if None in templates:
        return None
    return [Path(folder) / t.format(name=name) for t in templates if t is not None]


def clashing_names(names: Iterable[str], formats: Iterable[str] | None = None) -> tuple[str, str, str] | None:
    """Two pair names whose outputs would be one file, as ``(name, other name, file)``: pair ``a``'s preview
    ``a_color.png`` is pair ``a_color``'s 16-bit disparity, which would replace it. ``None`` when every pair's
    files are its own (a name given twice is another matter: the callers refuse or number repeats).

    Args:
        names: the pairs' names.
        formats: the formats written (default: every registered one, for names chosen before the formats).

    Examples:
        >>> clashing_names(["a", "a_color"])
        ('a', 'a_color', 'a_color.png')
        >>> clashing_names(["a", "a_color"], ["pfm", "json"]) is None
        True
    """
    chosen = FORMAT_FILES if formats is None else tuple(formats)
    templates = [FORMAT_FILES[f] for f in chosen if f in FORMAT_FILES]
    templates += [NOT_WRITTEN_NOTES[f] for f in chosen if f in NOT_WRITTEN_NOTES]
    owners: dict[str, str] = {}
    for name in names:
        for template in templates:
            file = template.format(name=name)
            owner = owners.setdefault(file, name)
            if owner != name:
                return owner, name, file
    return None


def outputs_complete(folder: str | Path, name: str, formats: Iterable[str]) -> bool:
    """Whether every output of the pair ``name`` exists (complete, since files appear only by rename).

    A format left out on purpose counts when its note is there instead (:func:`not_written_notes`).
    A name the file system cannot hold (too long) has no outputs: the pair then fails when it is written,
    with the reason, instead of the whole batch stopping here.
    """
    formats = tuple(formats)
    files = output_files(folder, name, formats)
    if files is None:
        return False
    notes = {f: Path(folder) / NOT_WRITTEN_NOTES[f].format(name=name) for f in formats if f in NOT_WRITTEN_NOTES}
    return all(_is_file(path) or (f in notes and _is_file(notes[f])) for f, path in zip(formats, files))


def other_pairs(folder: str | Path, names: Iterable[str], formats: Iterable[str]) -> list[str]:
    """The pairs, other than ``names``, whose complete outputs of ``formats`` are in ``folder``: an earlier
    run's, which a rerun over fewer pairs leaves beside its own (in the order of the numbers in their names; hidden
    files are not looked at).

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for file in ("a.png", "a_color.png", "b.png", "b_color.png", "c.png", "notes.png"):
        ...     _ = (folder / file).write_bytes(b"")
        >>> other_pairs(folder, ["a"], ["png16", "color"])  # c lacks its colour map; notes is no pair
        ['b']
        >>> other_pairs(folder, ["a"], ["png16"])  # b_color.png is b's preview, not a pair b_color
        ['b', 'c', 'notes']
    """
    folder, formats = Path(folder), tuple(formats)
    templates = [FORMAT_FILES.get(f) for f in formats]
    if not formats or None in templates:
        return []
    ending = templates[0].replace("{name}", "")  # every pair has this file (or its not-written note)
    ours = {str(Path(name)) for name in names}
    # A file of another format of a pair (pair a's preview a_color.png, after a run with --format png16) is
    # no pair a_color of its own. This run's files are known without looking: its previews are not candidates
    # (each was looked for as a pair's files, 2 stat calls per pair of the run). The names are normalised, as
    # str(Path(...)) gives them, and so are the names the templates make of them.
    ours_files = {template.format(name=base) for base in ours for template in FORMAT_FILES.values()}
    found = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if file.startswith(".") or not file.endswith(ending) or file == ending:
                continue
            name = str((Path(root) / file[: len(file) - len(ending)]).relative_to(folder))
            if name in ours or templates[0].format(name=name) in ours_files:
                continue
            if outputs_complete(folder, name, formats):
                found.add(name)
    owners: dict[str, set[str]] = {}
    for base in found:
        for template in FORMAT_FILES.values():
            owners.setdefault(template.format(name=base), set()).add(base)
    # in the order of the numbers in the names, as the pairs of a folder are (p2 before p10)
    return sorted((name for name in found if owners[templates[0].format(name=name)] == {name}), key=frame_order)


def not_written_notes(folder: str | Path, name: str, formats: Iterable[str]) -> list[str]:
    """The reasons recorded for the pair's formats that were left out (a disparity a 16-bit PNG cannot hold).

    Examples:
        >>> not_written_notes("no_such_folder", "a", ["png16", "pfm"])
        []
    """
    notes = [Path(folder) / NOT_WRITTEN_NOTES[f].format(name=name) for f in formats if f in NOT_WRITTEN_NOTES]
    reasons = []
    for note in notes:
        try:
            reasons.append(note.read_text(encoding="utf-8", errors="surrogateescape").strip())
        except (OSError, UnicodeDecodeError):
            continue
    return [r for r in reasons if r]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # ENAMETOOLONG and the like: pathlib only swallows "not found" kinds
        return False


def check_pair_name(name: str) -> str:
    """Refuse a pair name that would write outside the output folder.

    A name may hold sub-folders (``seq1/000001``), which keeps large collections out of one folder.

    Returns:
        The name in its one written form (``seq1//a/`` -> ``seq1/a``), so that two spellings of the same
        files compare equal.

    Raises:
        InputError: an empty or absolute name, or one with ``..`` or hidden parts.

    Examples:
        >>> check_pair_name("seq1/000001"), check_pair_name("seq1//000001/")
        ('seq1/000001', 'seq1/000001')
    """
    parts = Path(name).parts
    if not name.strip() or Path(name).is_absolute() or not parts or any(p in ("..", ".") for p in parts):
        raise InputError(
            f"pair name '{name}' would not stay inside the output folder: give a relative name without '..'"
        )
    if any(p.startswith(".") for p in parts):
        raise InputError(f"pair name '{name}' has a part starting with '.', which is kept for temporary files")
    return "/".join(parts)


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``"png16,color"`` -> ``("png16", "color")``, refusing unknown names and a list that names none;
    a name given twice is written once. Names are read in any case, as file suffixes are (``PFM`` is ``pfm``).

    Examples:
        >>> parse_formats("pfm, color,PFM")
        ('pfm', 'color')
        >>> parse_formats("Pfm,png")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rtstereo.errors.InputError: unknown output format png (known: ...); did you mean png16?
    """
    if text is None:
        return DEFAULT_FORMATS
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not names:  # `--format ""` too: it wrote the default set, which it does not name
        raise InputError(f"--format '{text}' names no output (known: {', '.join(sorted(FORMATS))})")
    _refuse_unknown_formats(names, FORMATS)
    return names


def _refuse_unknown_formats(names: Iterable[str], known: Mapping[str, Writer]) -> None:
    """Refuse format names that are not in ``known``, with the close ones. The 3D formats (``ply``, ``depth``...) are
    registered when :mod:`rtstereo.sinks.pointcloud` is imported, which the command line does: from Python they were
    unknown until then, so it is imported before a name is called unknown.

    Raises:
        InputError: a name that no writer has.
    """
    if all(n in known for n in names):
        return
    from . import pointcloud  # noqa: F401 (registers the 3D formats)

    known = {**FORMATS, **known}
    unknown = [n for n in names if n not in known]
    if unknown:
        close = [m for n in unknown for m in difflib.get_close_matches(n.lower(), sorted(known), n=1, cutoff=0.6)]
        hint = f"; did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
        kind = "format" if len(unknown) == 1 else "formats"
        raise InputError(f"unknown output {kind} {', '.join(unknown)} (known: {', '.join(sorted(known))}){hint}")


def save_result(
    result: DisparityResult,
    folder: str | Path,
    name: str,
    formats: Iterable[str] = DEFAULT_FORMATS,
    writers: Mapping[str, Writer] | None = None,
    made_with: Mapping[str, Any] | None = None,
    colour_top_px: float | None = None,
) -> list[Path]:
    """Write ``result`` into ``folder`` as ``<name>.<ext>`` for each format; returns the files.

    ``colour_top_px`` is the disparity at the top of the ``color`` preview's colours (the range the user gave,
    :func:`~rtstereo.io.disparity.given_range_top_px`; values above it take the top colour, in the preview only);
    ``None`` takes the map's own 99th percentile.

    ``made_with``, the options the files depend on, is recorded beside them in a hidden file
    (:func:`made_with_file`), published with them, so that a rerun can tell outputs made with other options from its
    own; without it, such a record of an earlier run is removed (it would describe other files).

    ``writers`` replaces registered writers for this call (e.g. point clouds with a run's cleaning
    options) without changing the registry. Every file is first written in a hidden staging folder; then
    all are renamed into ``folder`` with Ctrl-C held back, so an interrupted run leaves all of a pair's
    files or none.

    A disparity beyond what a 16-bit PNG holds (256 px) leaves the ``png16`` file out with a warning
    and writes the other formats, and ``<name>.png-not-written.txt`` with the reason in its place (so that
    a rerun counts the pair as complete); with ``png16`` alone it raises
    :class:`~rtstereo.errors.DisparityRangeError`. Whichever of the file and the note is written, the other
    one left by an earlier run is removed.

    Raises:
        InputError: a name that would write outside ``folder`` or hide its files (:func:`check_pair_name`); formats
            that are not a sequence of known format names (a bare ``KeyError`` before, and a str was read letter by
            letter).
    """
    require_result(result)
    folder = require_path(folder, "folder")
    if not isinstance(name, str):  # an int failed in pathlib with a bare TypeError
        raise InputError(
            f"name: expected a str (the pair's name, its files' stem), got {type(name).__name__} {name!r:.80}"
        )
    # "../a" wrote beside the folder, "/tmp/a" wrote there and then failed with a bare ValueError
    name = check_pair_name(name)
    given = None if isinstance(formats, (str, bytes)) or not hasattr(formats, "__iter__") else tuple(formats)
    if given is None or not all(isinstance(f, str) for f in given):
        raise InputError(
            f"formats: expected a tuple of format names such as ('png16', 'json'), got {type(formats).__name__} "
            f"{formats!r:.80}"
        )
    formats = tuple(dict.fromkeys(given))  # one file per format: a second write would find it moved away
    _refuse_unknown_formats(formats, {**FORMATS, **(writers or {})})
    table = {**FORMATS, **(writers or {})}
    stale: list[Path] = []
    left_out: list[str] = []  # formats whose file the result cannot be held by (their note is written instead)
    # The preview's range, which the sidecar gives: the map's percentile once, not once for each (5 ms at 640x480,
    # 20 ms at 1080p, per pair)
    top_px = colour_top_px
    if top_px is None:
        top_px = _preview_top_or_none(result.disparity_px) if "color" in formats else None
    with staging_folder(folder) as staging:
        staged: dict[str, Path | None] = {}
        # The sidecar last: it describes the map files written beside it, and a PNG left out is none of them (it
        # described left.png, which a disparity over 256 px had left unwritten).
        for f in sorted(formats, key=lambda f: table[f] is _json):
            kept = tuple(f for f in formats if f not in left_out)
            writer = table[f]
            if writer is _json:
                writer = functools.partial(_json, formats=kept, top_px=top_px)
            elif writer is _color:
                writer = functools.partial(_color, top_px=top_px)
            try:
                staged[f] = writer(result, staging / name)
            except DisparityRangeError as exc:
                if f != "png16":
                    raise
                reason = _png16_out_of_range(exc, name, alone=len(formats) == 1)
                note = NOT_WRITTEN_NOTES[f].format(name=name)
                staged[f] = _write_note(staging / note, reason, shown=folder / note)
                left_out.append(f)
                stale.append(folder / FORMAT_FILES[f].format(name=name))
            except OutputError as exc:  # a full disk: name the file asked for, not the hidden staging copy
                raise OutputError(str(exc).replace(str(staging), str(folder))) from None
            else:
                if f in NOT_WRITTEN_NOTES:
                    stale.append(folder / NOT_WRITTEN_NOTES[f].format(name=name))
        in_order = [staged[f] for f in formats]  # the files returned in the order of the formats
        record = made_with_file(staging, name)
        if made_with is not None:
            try:
                document = vouching_record(made_with, formats, read_made_with(folder, name))
                record.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
            except OSError as exc:  # a full disk: named as the maps' are, by the file asked for
                shown = made_with_file(folder, name)
                raise OutputError(f"cannot write {shown}: {os_reason(exc, shown)}") from None
        else:
            stale.append(made_with_file(folder, name))
        for path in in_order:  # found at its own rename, after the pair's other files were in place: all or none
            target = folder / path.relative_to(staging) if path is not None else None
            if target is not None and target.is_dir():
                raise OutputError(f"cannot write {target}: a folder of that name is in the way")
        for path in stale:  # as a folder at a file's place: found before the pair's new files are in place
            if path.is_dir():
                raise OutputError(f"cannot remove {path}, left by an earlier run: it is a folder")
        with interrupts_deferred():
            written = [publish(path, staging, folder) for path in in_order if path is not None]
            if made_with is not None:  # last: the record of a pair says what its files are once they are all in place
                publish(record, staging, folder)
            for path in stale:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    reason = os_reason(exc, path)
                    raise OutputError(f"cannot remove {path}, left by an earlier run: {reason}") from None
            return written


def _preview_top_or_none(disparity_px: Any) -> float | None:
    """:func:`preview_top_px`, or ``None`` for what is no map: the writers then say what is wrong with it."""
    try:
        return preview_top_px(disparity_px)
    except Exception:  # noqa: BLE001 - colorize and write_disparity check the map and name the problem
        return None


def _write_note(path: Path, reason: str, shown: Path) -> Path:
    """Write the note at ``path`` (in the staging folder); an error names ``shown``, the file the user will look for."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(reason + "\n", encoding="utf-8", errors="surrogateescape")  # a name in bytes stays so
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {os_reason(exc, path)}") from None
    return path


def _png16_out_of_range(exc: DisparityRangeError, name: str, alone: bool) -> str:
    """A 16-bit PNG cannot hold the map: refused (not clipped); the pair's other formats are still written.

    Returns:
        The reason, also given as a warning.
    """
    what = (
        f"{name}: disparity up to {exc.max_disparity_px:.1f} px does not fit a 16-bit PNG (max 255.99 px at "
        f"d*256): {name}.png not written"
    )
    if alone:
        raise DisparityRangeError(f"{what}; choose --format pfm or npy", exc.max_disparity_px) from None
    reason = f"{what}, the other formats are (--format without png16, e.g. pfm,color,json, leaves it out)"
    warn(reason)
    return reason


def require_result(result: Any) -> DisparityResult:
    """``result`` when it is a :class:`~rtstereo.types.DisparityResult`, else an :class:`InputError` that says what to
    do with a bare map (a map given for a result failed with an ``AttributeError``: no attribute 'disparity_px')."""
    if not isinstance(result, DisparityResult):
        bare = (
            "; a bare map is written with rtstereo.io.write_disparity(path, map)"
            if isinstance(result, np.ndarray)
            else ""
        )
        raise InputError(
            f"result: expected a DisparityResult (what predict() returns), got {type(result).__name__}{bare}"
        )
    return result


def save_single_file(result: DisparityResult, path: str | Path, made_with: Mapping[str, Any] | None = None) -> Path:
    """Write the disparity to one file whose suffix picks the format (.png, .pfm, .npy).

    ``made_with`` (the options the map depends on: model, settings, calibration, ...) is recorded beside it in the
    hidden ``.FILE.made-with.json`` (:func:`made_with_file` of the file's name), as a folder's pairs record theirs:
    ``-o disp.pfm --calib calib.txt`` kept no word of the calibration. Without it, an earlier record there is removed.
    """
    require_result(result)
    path = require_path(path, "output file", "a .png, .pfm or .npy file name (str or Path)")
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise OutputError(f"output file {path} must end in .png, .pfm or .npy (or name a folder)")
    with atomic_path(path) as partial:  # write_disparity makes the folder once the map is known to fit
        write_disparity(partial, result.disparity_px)
    record = made_with_file(path.parent, path.name)
    try:
        if made_with is None:
            record.unlink(missing_ok=True)  # it would speak of another map
        else:
            with atomic_path(record) as partial:
                partial.write_text(json.dumps(dict(made_with), indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {record}: {os_reason(exc, record)}") from None
    return path
