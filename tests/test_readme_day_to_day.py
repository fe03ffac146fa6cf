"""What the README's day-to-day blocks tell a new user works as written after `./run_bench.sh`."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _day_to_day() -> str:
    return README.split("## Day to day", 1)[1].split("\n## ", 1)[0]


def test_the_day_to_day_blocks_say_how_bench_gets_on_path_before_calling_it():
    """run_bench.sh installs bench into .venv, which is not on PATH: the section says so before its first bare
    `bench` command (the blocks called `bench`, which a new shell did not find)."""
    section = _day_to_day()
    first_command = re.search(r"^bench \w+", section, re.MULTILINE)
    assert first_command, "the day-to-day section shows no bench command"
    before = section[: first_command.start()]
    assert "source .venv/bin/activate" in before and ".venv/bin/bench" in before


def test_the_prometheus_textfile_goes_where_debians_node_exporter_reads():
    """Debian's and Ubuntu's prometheus-node-exporter package reads its textfile collector from
    /var/lib/prometheus/node-exporter (its README.textfile); every `bench export prometheus -o` example in the README and
    docs/ writes there."""
    text = "\n".join(d.read_text(encoding="utf-8") for d in DOCS)
    targets = re.findall(r"bench export prometheus \S+ -o (\S+)", text)
    assert targets and all(t.startswith("/var/lib/prometheus/node-exporter/") for t in targets), targets
