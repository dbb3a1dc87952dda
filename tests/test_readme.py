"""The README's links: each ``#anchor`` names a heading (as GitHub spells it) and each relative path exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than ``-`` dropped, spaces as ``-``, repeats numbered."""
    seen: dict[str, int] = {}
    anchors, in_code = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_every_readme_link_names_a_heading_or_a_file():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    anchors = _anchors(text)
    assert {"quick-start", "development", "licence"} <= anchors
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    broken = [
        target
        for target in targets
        if not target.startswith(("http://", "https://"))
        and (target[1:] not in anchors if target.startswith("#") else not (REPO / target.split("#")[0]).exists())
    ]
    assert not broken, broken
