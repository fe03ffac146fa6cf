"""Examining node reports asks the kernel for each input's file READ_AHEAD inputs ahead (bench.report.pool._read_ahead):
only regular files, opened as intake opens them (a FIFO does not block, a symbolic link is not followed), and the
examination's answers are the same as without it."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import pool
from bench.report.store import dumps
from tests.report.fleet import NOW, node_report

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"read ahead").digest())


def _folder(tmp_path: Path) -> list[tuple[str, Path]]:
    for n in range(pool.READ_AHEAD + 6):
        (tmp_path / f"node{n:03d}.json").write_text(dumps(node_report(n, [700.0, 701.0], KEY)))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    outside.write_text(dumps(node_report(99, [700.0], KEY)))
    (tmp_path / "node500-link.json").symlink_to(outside)
    os.mkfifo(tmp_path / "node501-fifo.json")
    (tmp_path / "node502-dir.json").mkdir()
    return [(p.name, p) for p in sorted(tmp_path.iterdir())]


class Stuck(BaseException):
    """An open blocked (a FIFO opened without O_NONBLOCK?): no handler of OSError or Exception may swallow it."""


def _stuck(signum: int, frame: object) -> None:
    raise Stuck


def test_read_ahead_advises_regular_files_only_and_changes_no_answer(tmp_path, monkeypatch):
    items = _folder(tmp_path)
    previous = signal.signal(signal.SIGALRM, _stuck)
    signal.alarm(20)
    try:
        _check(items, monkeypatch)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(items: list[tuple[str, Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    advised: list[int] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append(os.fstat(fd).st_ino)
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    done, _ = pool.examine_all(items, now=NOW, jobs=1)
    regular = {p.stat().st_ino for _, p in items if p.is_file() and not p.is_symlink()}
    assert sorted(advised) == sorted(regular)  # each regular file once; not the link's target, the FIFO or the folder
    assert done == [pool._examine(item, now=NOW) for item in items]
    statuses = {name: entry["status"] for name, (entry, _) in zip((n for n, _ in items), done, strict=True)}
    assert statuses["node000.json"] == "counted"
    assert {statuses[n] for n in ("node500-link.json", "node501-fifo.json", "node502-dir.json")} == {"rejected"}


def test_read_ahead_leaves_what_is_not_a_path_alone():
    for item in [("a", {"kind": "x"}), ("a", "/etc/passwd"), ("a", Path("/nonexistent/x.json")), object(), ("a",)]:
        pool._read_ahead(item)  # no error, nothing read
