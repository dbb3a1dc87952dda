"""Wording of counts in messages: "1 frame", "2 frames", never "1 frame(s)"."""

from __future__ import annotations


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
