"""A real one-node Slurm cluster in a temporary directory (munged, slurmctld, slurmd), for tests run as root.

Generated slurm.conf: this host as the only node, ports chosen free, proctrack/linuxproc and task/none so no cgroup
set-up is needed. Everything lives under the directory given; stop() ends exactly the daemons start() began.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "srun", "sbatch", "sinfo")


def available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(b) for b in BINARIES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_munge(r: Path) -> Path:
    """A munged with its own key and socket under r/munge (path-based, so reachable from other network namespaces);
    returns the socket."""
    for d in ("state", "spool", "log", "munge"):
        (r / d).mkdir(parents=True, exist_ok=True)
    key = r / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    (r / "munge").chmod(0o700)
    sock = r / "munge" / "munge.sock"
    subprocess.run(["munged", f"--key-file={key}", f"--socket={sock}", f"--pid-file={r / 'munge' / 'munged.pid'}",
                    f"--log-file={r / 'log' / 'munged.log'}", f"--seed-file={r / 'munge' / 'seed'}", "--force"],
                   check=True, timeout=30)  # fmt: skip
    return sock


def slurm_conf(r: Path, controller: str, nodes: list[tuple[str, str | None, int]], sock: Path) -> str:
    """slurm.conf for `nodes` (name, address or None, CPUs) with everything under r; per-node slurmd files use %n, so
    several slurmd (one per namespaced node) share it. proctrack/linuxproc and task/none: no cgroup set-up."""
    lines = "\n".join(f"NodeName={name}{f' NodeAddr={addr}' if addr else ''} CPUs={cpus} State=UNKNOWN"
                       for name, addr, cpus in nodes)  # fmt: skip
    return f"""\
ClusterName=benchci
SlurmctldHost={controller}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={r / "state"}
SlurmdSpoolDir={r / "spool"}/%n
SlurmctldPidFile={r / "slurmctld.pid"}
SlurmdPidFile={r / "slurmd"}-%n.pid
SlurmctldLogFile={r / "log" / "slurmctld.log"}
SlurmdLogFile={r / "log" / "slurmd"}-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
{lines}
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: list[Path] = []

    def start(self, timeout: float = 60.0) -> None:
        r = self.root
        sock = start_munge(r)
        self.pids.append(r / "munge" / "munged.pid")
        self.conf.write_text(slurm_conf(r, self.host, [(self.host, None, os.cpu_count() or 1)], sock))
        (r / "spool" / self.host).mkdir(parents=True, exist_ok=True)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(self.conf)], check=True, env=self.env, timeout=30)
        self.pids += [r / "slurmctld.pid", r / f"slurmd-{self.host}.pid"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env, check=False)
            if out.stdout.strip() in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Slurm node did not come up: sinfo says {out.stdout.strip()!r} {out.stderr.strip()!r}; "
                           f"logs in {r / 'log'}")  # fmt: skip

    def stop(self) -> None:
        for pid_file in reversed(self.pids):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)
