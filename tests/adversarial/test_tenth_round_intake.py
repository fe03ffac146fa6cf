"""Tenth round (issue 26): a dishonest operator or aggregator, who holds its key and writes its own files, against the
C fast paths that now read signed documents: version-3 record streams judged canonical by msgspec
(bench.model.canonical._parse_canonical_msgspec), version-2 node reports decoded and written back by msgspec
(bench.model.written.parse_node_report), and signed documents read with one json parse and one json write
(bench.model.written.parse_written: capacity reports, challenges, receipts).

The invariant: what a fast path accepts, the slow path (strict_json.parse_json, RFC 8785 via canonical/rfc8785, every
model check) accepts with the same figures; what the slow path refuses, the fast path refuses with the same words.
Each attack goes through the real entry points (`bench verify --json`, bench aggregate's per-report check
bench.report.pool._examine, bench.model.intake.read_json), once as shipped and once with every fast path switched off
(_slow), and the two must agree. Tests whose docstring says "Succeeded before its fix" were accepted on the fast path
(and refused on the slow one) before the fix landed with them; the others guard a defence that held."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.cli import main
from bench.model import intake, keys, records, written
from bench.model.strict_json import parse_json
from bench.report.store import dumps
from tests.report.fleet import node_report

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"tenth round node").digest())


def _slow_line(line: bytes, where: str, limit: int) -> tuple[object, None]:
    return parse_json(line, where, max_containers=limit), None


def _slow(m: pytest.MonkeyPatch) -> None:
    """Every fast path off: each stream line parsed strictly and each record canonicalized again, each document parsed
    strictly and canonicalized by bench.model.canonical."""
    m.setattr(records, "_parse_line", _slow_line)
    m.setattr(written, "parse_node_report", lambda raw, **kw: None)
    m.setattr(written, "parse_written", lambda raw, **kw: None)


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def _read(path: Path) -> str:
    """What intake.read_json makes of a file: its data, or the refusal's words."""
    try:
        return repr(intake.read_json(path).data)
    except intake.InputError as exc:
        return f"refused: {exc}"


# --- signed documents read by written.parse_written (json.loads of the bytes, then json's writer)


@pytest.fixture(scope="module")
def capacity(tmp_path_factory) -> tuple[Path, str]:
    """(folder of node reports, the capacity report `bench aggregate --key` signed over them, as text)."""
    root = tmp_path_factory.mktemp("capacity")
    (root / "nodes" / "n3").mkdir(parents=True)
    (root / "nodes" / "n3" / "report.json").write_text(dumps(node_report(3, [700.0, 701.0], KEY)))
    keys.create(root / "agg.pem")
    code, out = _cli("aggregate", str(root / "nodes"), "-o", str(root / "cap.json"), "--key", str(root / "agg.pem"))
    assert code == 0, out
    return root / "nodes", (root / "cap.json").read_text()


def _verify_capacity(tmp_path: Path, monkeypatch, raw: bytes, nodes: Path) -> tuple[str, str]:
    """(as shipped, every fast path off): what read_json and `bench verify --reports --json` make of a capacity report."""
    path = tmp_path / "cap.json"
    path.write_bytes(raw)

    def run() -> str:
        return repr((_read(path), _cli("verify", str(path), "--reports", str(nodes), "--json")))

    fast = run()
    with monkeypatch.context() as m:
        _slow(m)
        slow = run()
    return fast, slow


def _exit(result: str) -> int:
    found = re.search(r", \((\d+), ['\"]", result)
    assert found, result[:300]
    return int(found.group(1))


def test_an_honest_capacity_report_is_read_alike_and_takes_the_fast_path(tmp_path, monkeypatch, capacity):
    nodes, text = capacity
    fast, slow = _verify_capacity(tmp_path, monkeypatch, text.encode(), nodes)
    assert fast == slow and _exit(fast) == 0
    assert written.parse_written(text.encode()) is not None


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-be", "utf-32-le"])
def test_a_capacity_report_written_in_utf16_or_utf32_is_refused_alike(tmp_path, monkeypatch, capacity, encoding):
    """Succeeded before its fix (UTF-16 either way round, UTF-32 big-endian): parse_written took any bytes below 0x80
    for ASCII text and handed them to json.loads, which guesses UTF-16 or UTF-32 from where the NUL bytes fall. A
    capacity report re-encoded so (every byte below 0x80; no b'\\\\u' to see) was read, its signature checked and
    `bench verify --reports` passed it (exit 0), where strict_json reads the bytes as UTF-8 and refuses them ("not
    valid JSON"); the file's SHA-256, which disclosures cite, named other bytes than the report bench wrote."""
    nodes, text = capacity
    raw = text.encode(encoding)
    assert raw.isascii()
    fast, slow = _verify_capacity(tmp_path, monkeypatch, raw, nodes)
    assert fast == slow
    assert "refused" in fast and _exit(fast) == 1


def test_a_key_given_twice_behind_an_escaped_colon_in_utf16_is_refused_alike(tmp_path, monkeypatch, capacity):
    """Succeeded before its fix: in UTF-16 the fast path's b'\\\\u' test saw no escape, so a ':' written '\\\\u003a'
    in a string made json's writing hold one ':' more than the file, and a figure given twice (json keeps the last,
    a first-wins reader the first: 99999 TFLOPS) passed the ':' count meant to catch it. Signed as bench wrote it,
    verified (exit 0) on the fast path; refused on the slow one."""
    nodes, text = capacity
    figure = re.search(r'"mamf_tflops": [0-9.]+', text).group()
    forged = text.replace(figure, '"mamf_tflops": 99999.0, ' + figure, 1).replace("): who", ")\\u003a who", 1)
    assert forged != text and "\\u003a" in forged
    for raw in (forged.encode("utf-16-le"), forged.encode()):
        fast, slow = _verify_capacity(tmp_path, monkeypatch, raw, nodes)
        assert fast == slow
        assert "refused" in fast and _exit(fast) == 1
