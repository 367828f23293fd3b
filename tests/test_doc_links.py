"""Every relative link in README, docs/ and the benchmark tables reaches a file, and every `#anchor` a heading of it
(as GitHub names headings), so that a renamed section shows up here and not as a dead link on the front page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "benchmarks/results").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def heading_slug(text: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to
    hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, a repeated one numbered as GitHub numbers it."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.*)", line)):
            slug = heading_slug(match.group(1))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def test_heading_slug_is_githubs() -> None:
    assert heading_slug("civc's defaults now: frames at 0.6, half the new clips small") == (
        "civcs-defaults-now-frames-at-06-half-the-new-clips-small"
    )
    assert heading_slug("Widths in whole blocks of 16 (`student.channel_multiple: 16`)") == (
        "widths-in-whole-blocks-of-16-studentchannel_multiple-16"
    )
    assert heading_slug("CIVC on the embedded motion videos — targets missed") == (
        "civc-on-the-embedded-motion-videos--targets-missed"
    )


def test_a_repeated_heading_is_numbered(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Results\n## Setup\n```\n# not a heading\n```\n## Setup\n", encoding="utf-8")
    assert anchors(page) == {"results", "setup", "setup-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_their_file_and_heading(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            dead.append(f"{target} (no such file)")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            dead.append(f"{target} (no such heading)")
    assert not dead, f"{page.relative_to(ROOT)}: " + ", ".join(dead)
