"""Helpers for tests that start real bench processes as the ranks of one job (no launcher, plain variables)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_rank(rank: int, port: int, args: list[str], world: int = 2) -> subprocess.Popen:
    """`bench ARGS...` as rank `rank` of `world`, rendezvous on 127.0.0.1:port."""
    env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
           "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
    return subprocess.Popen(
        [str(BIN / "bench"), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_rank_1(args: list[str], after_s: float) -> tuple[int, str, float]:
    """Start ranks 0 and 1, SIGKILL rank 1 after `after_s`, and return rank 0's exit code, stderr, and the seconds it
    took to exit after the kill."""
    port = free_port()
    procs = [launch_rank(r, port, args) for r in (0, 1)]
    try:
        time.sleep(after_s)
        procs[1].send_signal(signal.SIGKILL)
        start = time.monotonic()
        _, err = procs[0].communicate(timeout=120)
        return procs[0].returncode, err, time.monotonic() - start
    finally:
        for p in procs:
            p.kill()


def failed_cleanly(code: int, err: str) -> bool:
    """Rank 0 exited 1 with a line naming itself, whether rank 1 died before joining or after."""
    return code == 1 and ("rank 0:" in err or "rank 0 could not join" in err)
