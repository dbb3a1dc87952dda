"""Wording in messages: counts ("1 frame", "2 frames", never "1 frame(s)"), durations, shares, exceptions' first lines,
file names that are not UTF-8, and the order of numbered names (``frame9`` before ``frame10``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours and the like, as Ray puts in its errors
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f]")  # control characters: a line break, a tab, an escape


def counted(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun in the number it calls for.

    Args:
        count: how many.
        noun: the singular ("frame").
        nouns: the plural where it is not the singular + "s".

    Returns:
        "1 frame", "0 frames", "3 frames".

    Examples:
        >>> counted(1, "frame"), counted(0, "frame"), counted(2, "pixel"), counted(2, "PNG")
        ('1 frame', '0 frames', '2 pixels', '2 PNGs')
    """
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def first_few(values: Sequence[object], few: int = 5) -> str:
    """A list for a terminal line: all of a short one, else its first ``few`` and how many in all (the full
    list goes into a JSON summary).

    Examples:
        >>> first_few([4]), first_few(range(3, 10))
        ('4', '3, 4, 5, 6, 7, ... (7 in all)')
    """
    values = list(values)
    head = ", ".join(map(str, values[:few]))
    return head if len(values) <= few else f"{head}, ... ({len(values)} in all)"


def duration(seconds: float) -> str:
    """A time left or taken, as a progress line says it: seconds up to 90, minutes up to 90, then hours.

    Examples:
        >>> duration(42.4), duration(600), duration(7500), duration(90 * 3600)
        ('42 s', '10 min', '2 h 05 min', '90 h 00 min')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def distance(metres: float) -> str:
    """A depth or length in metres at a precision that shows it: metres down to 1 m, then centimetres, then
    millimetres (``f"{metres:.2f} m"`` said "0.00 m" for anything under 5 mm).

    Examples:
        >>> distance(12.345), distance(0.42), distance(0.0042), distance(0.0000042)
        ('12.35 m', '42.0 cm', '4.20 mm', '0.0042 mm')
    """
    if abs(metres) >= 1:
        return f"{metres:.2f} m"
    if abs(metres) >= 0.01:
        return f"{metres * 100:.1f} cm"
    return f"{metres * 1000:.3g} mm" if abs(metres) < 1e-5 else f"{metres * 1000:.2f} mm"


def share(fraction: float) -> str:
    """A fraction as a percentage with one decimal that never rounds to 100.0 or 0.0 % unless it is exactly so.

    Examples:
        >>> share(1.0), share(7 / 76800), share(1 - 7 / 76800), share(0.5), share(0.0)
        ('100.0 %', '0.01 %', '99.99 %', '50.0 %', '0.0 %')
    """
    percent = fraction * 100
    digits = 1
    while digits < 6 and 0 < fraction < 1 and f"{percent:.{digits}f}" in (f"{0:.{digits}f}", f"{100:.{digits}f}"):
        digits += 1  # a map with 7 holes in 76800 pixels read "density 100.0 %", as a complete one does
    return f"{percent:.{digits}f} %"


def first_line(exc: BaseException, names: Sequence[object] = ()) -> str:
    """The first line of an exception's text, without terminal colour codes ("" when it has none: a bare
    ``RuntimeError()`` made ``str(exc).splitlines()[0]`` raise IndexError); each of ``names`` (the files it may be
    about) that holds a line break is kept whole, escaped (:func:`on_one_line`), not cut at it.

    Examples:
        >>> first_line(RuntimeError("\\x1b[36mray::MapWorker\\x1b[39m failed\\ndetails")), first_line(RuntimeError())
        ('ray::MapWorker failed', '')
        >>> first_line(RuntimeError("cannot read L/c\\nd.png\\ndetails"), ["L/c\\nd.png"])
        'cannot read L/c\\\\nd.png'
    """
    text = str(exc)
    for name in map(str, names):
        if _LINE_BREAKING.search(name):
            text = text.replace(name, on_one_line(name))
    text = _TERMINAL_CODES.sub("", text).strip()
    return text.splitlines()[0].strip() if text else ""


def on_one_line(name: object) -> str:
    """``name`` (a path or text) with its control characters written as escapes (``\\n``, ``\\t``, ``\\x1b``): a
    file name may hold a line break, which cut a one-line message at it ("cannot read L/c" of ``L/c<newline>d.png``).

    Examples:
        >>> on_one_line("L/c\\nd.png"), on_one_line("a\\tb\\x1b.png"), on_one_line("plain.png")
        ('L/c\\\\nd.png', 'a\\\\tb\\\\x1b.png', 'plain.png')
    """
    return _LINE_BREAKING.sub(lambda m: repr(m.group())[1:-1], str(name))


def is_utf8(name: object) -> bool:
    """Whether ``name`` (a path or text) is UTF-8 text, as OpenCV needs a file name to be: a Linux name is
    bytes, and the bytes of one in another encoding reach Python as surrogate escapes, on which OpenCV's
    readers and writers crashed the process (a segmentation fault).

    Examples:
        >>> is_utf8("seq/caf\\u00e9.png"), is_utf8("seq/a\\udcff.png")
        (True, False)
    """
    try:
        str(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: object) -> str:
    """``name`` (a path or text) printable: the bytes of a name that is not UTF-8 written as ``\\xNN``.

    Examples:
        >>> shown("seq/a\\udcff.png"), shown("caf\\u00e9")
        ('seq/a\\\\xff.png', 'café')
    """
    return str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


LONGEST_SHOWN = 40  # characters of a value a message echoes whole; a longer one is cut, with its length


def shortened(value: object, limit: int = LONGEST_SHOWN) -> str:
    """``value`` as a message echoes it: whole up to ``limit`` characters, else its start and its length (a
    5000-digit ``--set threads=...`` came back whole, a screenful of digits).

    Examples:
        >>> shortened(192), shortened("9" * 5000), shortened("x" * 50)
        ('192', '999999999... (5000 digits)', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (50 characters)')
    """
    text = shown(value)
    if len(text) <= limit:
        return text
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return f"{text[:9]}... ({len(text.lstrip('+-'))} digits)"
    return f"{text[:30]}... ({len(text)} characters)"


def frame_order(path: str) -> list[str | int]:
    """Sort key putting numbered files in the order of their numbers (``frame9`` before ``frame10``, and
    ``R_09`` between them as ``R_9`` would be: the key does not see leading zeros).

    Examples:
        >>> sorted(["f10.png", "f9.png", "f1.png"], key=frame_order), sorted(["R_10.png", "R_09.png"], key=frame_order)
        (['f1.png', 'f9.png', 'f10.png'], ['R_09.png', 'R_10.png'])
    """
    # re.split with a group alternates text and digit runs, so the keys compare str with str and int with int.
    return [int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", path))]
