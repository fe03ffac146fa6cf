"""Every relative link in the README, docs/ and configs/README.md lands: on a file that exists and, when it names an
anchor, on a heading of that file (GitHub's anchors: lower case, punctuation dropped, spaces to hyphens)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "configs" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _without_code(text: str) -> str:
    """Text outside fenced blocks and inline code (a `# comment` in a block is no heading, `[x](y)` in code no link)."""
    text = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page, with -1, -2 ... for repeated headings."""
    text = re.sub(r"^\s*```.*?^\s*```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*#*$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for target in LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
                found.append((str(page.relative_to(ROOT)), target))
    return found


LINKS = links()


def test_the_pages_link_to_each_other():
    assert len(LINKS) >= 40 and any("#" in t for _, t in LINKS)


@pytest.mark.parametrize("page, target", LINKS, ids=[f"{p}->{t}" for p, t in LINKS])
def test_every_relative_link_lands_on_a_file_and_heading(page: str, target: str):
    path, _, anchor = target.partition("#")
    file = (ROOT / page).parent / path if path else ROOT / page
    assert file.exists(), f"{page}: {target}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}"
    if anchor:
        assert file.suffix == ".md", f"{page}: {target}: an anchor into a file that is not Markdown"
        assert anchor in anchors(file), f"{page}: {target}: {file.name} has no heading #{anchor}"


def test_a_broken_anchor_is_caught(tmp_path: Path):
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n## `bench run` — the suite\n\n```sh\n# not a heading\n```\n## Title\n")
    assert anchors(page) == {"title", "bench-run--the-suite", "title-1"}
