"""Pairs listed in a manifest: a CSV or Parquet table of ``left,right[,name]`` paths or URLs.

For collections no folder layout describes (pairs spread over many folders, or named by a database).
Relative paths are taken from the manifest's own folder, so a manifest travels with its images. A
pair's ``name`` (default: the left file's stem, its path when two collide) names its output files and
may hold sub-folders (``seq1/000001``). In a CSV file, empty lines and lines starting with ``#`` are skipped,
and errors name the line.
"""

from __future__ import annotations

import csv
import difflib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError, RtStereoWarning, require, require_path, warn
from ..io.download import is_url, local_path_of
from ..sinks.files import check_pair_name
from .pairs import PairSource, unique_names

MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")
COLUMNS = ("left", "right", "name")


def _local_manifest(given: str | Path) -> str | Path:
    """The manifest's local path: a ``file://`` URL's path; a web URL is refused (as a path, ``https://h/p.csv`` was
    "manifest not found: https:/h/p.csv", the URL made into a path, which was never fetched).

    Raises:
        InputError: a URL of another scheme than ``file://``, or a ``file://`` URL of another host.

    Examples:
        >>> _local_manifest("file:///data/my%20pairs.csv"), _local_manifest("pairs.csv")
        ('/data/my pairs.csv', 'pairs.csv')
    """
    return local_path_of(
        given,
        lambda url: InputError(
            f"manifest {url}: a manifest is read from a local file, not from a URL: download it and give its path "
            "(or a file:///path URL); the pairs it lists may be http(s) URLs"
        ),
    )


def read_manifest(path: str | Path, rows_may_repeat: bool = False) -> list[PairSource]:
    """Read a manifest into pairs, in the manifest's order.

    Args:
        path: a ``.csv`` file with a header row, or a ``.parquet`` file (needs pyarrow), with the
            columns ``left`` and ``right`` and optionally ``name``. A CSV line starting with ``#`` is a
            comment (a file name starting with ``#`` is written in quotes).
        rows_may_repeat: a row that repeats an earlier one, its name and files, is no clash of names (for a caller
            that keeps each pair once and writes no files per name, as ``adapt``); it is still returned.

    Returns:
        One :class:`~rtstereo.sources.pairs.PairSource` per row.

    Raises:
        InputError: a missing or unreadable file, an unknown suffix, missing or repeated columns, empty cells,
            no rows, or names that repeat or leave the output folder; the message names the CSV line
            (``line 7``) or Parquet row (``row 6``).
        MissingDependencyError: a Parquet manifest without pyarrow installed.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "pairs.csv").write_text("left,right\\ncam0/a.png,cam1/a.png\\n")
        >>> [(p.left.endswith("cam0/a.png"), p.name) for p in read_manifest(folder / "pairs.csv")]
        [(True, 'a')]
    """
    path = require_path(_local_manifest(path), "manifest", "a .csv or .parquet file (str or Path)")  # Path(5)
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise InputError(f"manifest {path}: expected a .csv or .parquet file of left,right[,name] columns")
    if not path.is_file():  # a folder said "not found"
        raise InputError(f"manifest {'is a folder, not a file' if path.is_dir() else 'not found'}: {path}")
    rows = _read_parquet(path) if suffix in (".parquet", ".pq") else _read_csv(path)
    if not rows:
        raise InputError(f"manifest {path} lists no pairs")
    base = path.parent
    lefts, rights, given = [], [], []
    for where, row in rows:
        left, right = _cell(row, "left"), _cell(row, "right")
        if not left or not right:
            raise InputError(f"manifest {path}, {where}: the left and right cells must both name an image")
        lefts.append(_resolve(left, base))
        rights.append(_resolve(right, base))
        given.append(_cell(row, "name"))
    if any(given) and not all(given):
        blank = next(where for (where, _), name in zip(rows, given) if not name)
        raise InputError(
            f"manifest {path}: the name column is filled on some rows only (not on {blank}); fill it on all or none"
        )
    names = given if any(given) else unique_names(lefts)
    checked = []
    for (where, _), name in zip(rows, names):
        try:
            checked.append(check_pair_name(name))
        except InputError as exc:
            raise InputError(f"manifest {path}, {where}: {exc}") from None
    places: dict[str, list[str]] = {}
    files_of: dict[str, tuple[str, str]] = {}
    for (where, _), name, left, right in zip(rows, checked, lefts, rights):
        files = _pair_key(left, right)
        if rows_may_repeat and files_of.get(name) == files:  # the same row again: adapt keeps the pair once
            continue
        files_of.setdefault(name, files)
        places.setdefault(name, []).append(where)
    repeated = {name: wheres for name, wheres in places.items() if len(wheres) > 1}
    if repeated:
        shown = "; ".join(f"{name} ({', '.join(wheres[:3])})" for name, wheres in list(repeated.items())[:5])
        repeat = "pair name repeats" if len(repeated) == 1 else "pair names repeat"
        raise InputError(
            f"manifest {path}: {repeat}: {shown}; each pair needs its own name (it names the output files)"
        )
    _warn_of_pairs_listed_twice(path, rows, lefts, rights)
    return [PairSource(a, b, n, f"{path} {where}") for a, b, n, (where, _) in zip(lefts, rights, checked, rows)]


class RepeatedPairWarning(RtStereoWarning):
    """A manifest lists a pair (its two files) again under another name (:func:`read_manifest`)."""


def _warn_of_pairs_listed_twice(path: Path, rows: list[tuple[str, dict]], lefts: list[str], rights: list[str]) -> None:
    """Say which rows list a pair (its two files) that an earlier row lists under another name: it is done once for
    each name, its files written twice, without a word before (a row copied to fix its name, the old one kept)."""
    first: dict[tuple[str, str], str] = {}
    twice: list[str] = []
    for (where, _), left, right in zip(rows, lefts, rights):
        earlier = first.setdefault(_pair_key(left, right), where)
        if earlier != where:
            twice.append(f"{where} (as {earlier})")
    if twice:
        shown = ", ".join(twice[:3]) + (f" and {len(twice) - 3} more" if len(twice) > 3 else "")
        warn(
            f"manifest {path}: {shown} {'lists a pair' if len(twice) == 1 else 'list pairs'} again under another "
            "name: each name gets its own files of the same pair",
            RepeatedPairWarning,
        )


def _pair_key(left: str, right: str) -> tuple[str, str]:
    """A pair's two files, the same for ``./L/a.png``, ``L//a.png`` and links to it (URLs as they are)."""
    if is_url(left) or is_url(right):
        return left, right
    return os.path.realpath(left), os.path.realpath(right)


def _cell(row: dict, column: str) -> str:
    """A cell as text; empty only when it is (a Parquet name column of numbers holds 0, which is a name)."""
    value = row.get(column)
    if isinstance(value, (bytes, bytearray)):  # a Parquet binary column: b'L/a.png' was the path "b'L/a.png'"
        value = os.fsdecode(bytes(value))
    return "" if value is None else str(value).strip()


def _resolve(cell: str, base: Path) -> str:
    """A cell's path: a URL as it is, ``~`` the home folder (as on the command line; it was taken as a folder
    named ``~`` beside the manifest), a relative path from the manifest's folder; a path written with Windows'
    backslashes (``cam0\\a.png``) as the file it names here (``cam0/a.png``) when that one is there.

    Examples:
        >>> _resolve("~/a.png", Path("/m")) == os.path.expanduser("~/a.png"), _resolve("a.png", Path("/m"))
        (True, '/m/a.png')
    """
    if is_url(cell):
        return cell
    cell = os.path.expanduser(cell)
    path = cell if Path(cell).is_absolute() else str(base / cell)
    if "\\" in cell and os.sep == "/" and not os.path.lexists(path):
        # A manifest written on Windows (cam0\a.png): each of its pairs failed, "image not found". A file name
        # holding a backslash, which this system allows, is read as written when it is there.
        posix = cell.replace("\\", "/")
        translated = posix if Path(posix).is_absolute() else str(base / posix)
        if os.path.lexists(translated):
            return translated
    return path


def _read_csv(path: Path) -> list[tuple[str, dict]]:
    """The rows of a CSV manifest as ``("line N", cells by column)``, N the row's (first) line in the file (as
    an editor counts them); empty lines and lines starting with ``#`` (comments) are skipped."""
    header: list[str] | None = None
    rows, extra = [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(_without_comments(f))
            first_line = 1  # of the row read next: a row with a quoted cell over several lines ends further down
            for cells in reader:
                where, first_line = f"line {first_line}", reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                if header is None:
                    header = [h.strip().lower() for h in cells]
                    _check_separator(path, header)
                    _check_columns(path, header)
                    continue
                rows.append((where, dict(zip(header, cells))))
                # Cells beyond the header: an unquoted comma in a file name, or a shifted row. Empty ones (a
                # trailing comma, as spreadsheets write) say nothing.
                if any(c.strip() for c in cells[len(header) :]):
                    extra.append(where)
    except UnicodeDecodeError as exc:  # its byte position is in a block the decoder read, not in the file: the line
        raise InputError(
            f"cannot read manifest {path}: {_first_line_not_utf8(path)} is not UTF-8 text ({exc.reason}, byte "
            f"0x{exc.object[exc.start]:02x}): save the manifest as UTF-8"
        ) from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    if header is None:
        _check_columns(path, [])
    if extra:
        warn(
            f"manifest {path}: {', '.join(extra[:5])} {'have' if len(extra) > 1 else 'has'} more cells than the "
            "header's columns; the extra cells are ignored (a comma in a file name must be quoted)"
        )
    return rows


def _first_line_not_utf8(path: Path) -> str:
    """``line N``, the first line of ``path`` that UTF-8 cannot decode (as an editor counts them)."""
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return f"line {number}"
    return "a line"  # not reached: some line failed


def _check_separator(path: Path, header: list[str]) -> None:
    """Refuse a header of one cell that is ``left;right`` or ``left<TAB>right`` (a spreadsheet's export in a locale
    whose decimal mark is the comma): it said "no left or right column (found: left;right)". Cells themselves may
    hold ``;`` (file names do), so the separator is not guessed."""
    for separator, called in ((";", "semicolon"), ("\t", "tab")):
        if len(header) == 1 and {"left", "right"} <= {h.strip() for h in header[0].split(separator)}:
            raise InputError(
                f"manifest {path} looks {called}-separated (its header is {header[0]!r}): manifests are "
                "comma-separated (left,right[,name]); save it as CSV with commas"
            )


def _without_comments(lines: Iterable[str]) -> Iterator[str]:
    """The lines of a CSV file with comments (``#`` first, after any spaces) emptied rather than dropped, so that
    the reader's line numbers stay the file's. A file name starting with ``#`` is written in quotes.

    A line inside a quoted cell that spans lines is the cell's text, not a comment: emptied, it lost
    the cell's closing quote, and the rows after it became part of the cell (pairs silently missing).

    Examples:
        >>> list(_without_comments(['a,b,"note\\n', '# still the note"\\n', "# a comment\\n"]))
        ['a,b,"note\\n', '# still the note"\\n', '\\n']
    """
    quoted = False  # inside a quoted cell at the start of the line
    for line in lines:
        if not quoted and line.lstrip().startswith("#"):
            yield "\n"
            continue
        quoted = _ends_quoted(line, quoted)
        yield line


def _ends_quoted(line: str, quoted: bool) -> bool:
    """Whether a quoted cell is still open at the end of ``line`` (csv's default dialect: a quote opens a
    cell only as its first character, ``""`` inside one is a quote).

    Examples:
        >>> _ends_quoted('a,"b\\n', False), _ends_quoted('x""y",c\\n', True), _ends_quoted('a"b,c\\n', False)
        (True, False, False)
    """
    field_start = not quoted
    index = 0
    while index < len(line):
        char = line[index]
        if quoted:
            if char == '"':
                if line[index + 1 : index + 2] == '"':
                    index += 1  # an escaped quote
                else:
                    quoted = False
        elif char == '"' and field_start:
            quoted = True
        field_start = not quoted and char in ",\r\n"
        index += 1
    return quoted


def _read_parquet(path: Path) -> list[tuple[str, dict]]:
    parquet = require("pyarrow.parquet", "scale", "a Parquet manifest")
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own family (ArrowInvalid, OSError)
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    header = [c.lower() for c in table.column_names]
    _check_columns(path, header)
    table = table.rename_columns(header)
    records = table.select([c for c in COLUMNS if c in header]).to_pylist()
    return [(f"row {number}", record) for number, record in enumerate(records, start=1)]


def _check_columns(path: Path, header: list[str]) -> None:
    missing = [c for c in ("left", "right") if c not in header]
    if missing:
        raise InputError(
            f"manifest {path} has no {' or '.join(missing)} column (found: {', '.join(header) or 'nothing'}); "
            "expected a header row left,right[,name]"
        )
    # Other columns are the user's own (a timestamp, notes) and are ignored; one that looks like a
    # misspelt column of ours is said, since its values are ignored too.
    typos = {c: m[0] for c in header if c not in COLUMNS and (m := difflib.get_close_matches(c, COLUMNS, 1, 0.7))}
    if typos:
        guesses = ", ".join(f"{c} (did you mean {m}?)" for c, m in typos.items())
        warn(f"manifest {path}: column {guesses} is ignored; the columns read are left, right and name")
    repeated = [c for c in COLUMNS if header.count(c) > 1]
    if repeated:
        raise InputError(
            f"manifest {path} has {' and '.join(repeated)} more than once (columns: {', '.join(header)}; names "
            "are read without regard to case): keep one of each"
        )
