"""Which bench produced a report: its version and, when run from a git checkout, the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import bench

CHECKOUT = Path(bench.__file__).resolve().parent.parent


def git_commit(checkout: Path = CHECKOUT) -> str | None:
    """HEAD of the checkout bench runs from, suffixed '-dirty' when tracked files differ; None outside a checkout."""
    if not (checkout / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def tool_info() -> dict[str, Any]:
    return {"name": "bench", "version": bench.__version__, "git_commit": git_commit()}
