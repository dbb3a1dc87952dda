"""Files shipped inside the package, so that an installed rtstereo needs no source checkout.

``example/left.png`` and ``example/right.png`` are the example pair of the repository's ``examples/``
folder (rendered by ``examples/make_example.py``, which writes both copies): the default pair that
``rtstereo export`` checks an export on.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent / "example"


def example_pair_paths() -> tuple[Path, Path]:
    """The shipped example pair: ``(left.png, right.png)``, 320x240 RGB, disparities 6..31 px.

    Examples:
        >>> [p.name for p in example_pair_paths()]
        ['left.png', 'right.png']
    """
    return EXAMPLE_DIR / "left.png", EXAMPLE_DIR / "right.png"
