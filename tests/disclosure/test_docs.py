"""docs/disclosure.md is a region's guide: its example declaration is read by bench's own reader and shows every key
that reader accepts; the page's link to what each figure means lands on a heading that exists."""

import re
import tomllib
from pathlib import Path

from bench.disclosure import declaration as decl
from bench.disclosure import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "disclosure.md"


def _example() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1, "docs/disclosure.md should hold one example declaration"
    return blocks[0]


def test_the_example_declaration_is_read_by_the_real_reader():
    parsed = decl.parse(_example(), "docs/disclosure.md")
    assert parsed["contact"] and len(parsed["clusters"]) == 2 and parsed["open_access"]["share"] == 0.25


def test_the_example_shows_every_key_the_reader_accepts():
    raw = tomllib.loads(_example())
    assert set(raw) == set(decl.TOP_KEYS)
    for table, keys in decl.TABLE_KEYS.items():
        entries = raw[table] if isinstance(raw[table], list) else [raw[table]]
        shown = set().union(*(set(e) for e in entries))
        assert shown == set(keys), (table, set(keys) - shown)


def test_the_pages_link_to_the_figures_lands_on_a_heading():
    path, anchor = render.DOCS.split("#")
    assert path == "docs/disclosure.md"
    headings = re.findall(r"^#+ (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert anchor in {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
