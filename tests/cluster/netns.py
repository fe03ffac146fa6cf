"""Several 'nodes' on this one machine: Linux network, UTS and mount namespaces, joined by veth pairs to a bridge.

Each node has its own host name, address, /etc/hosts and /etc/machine-id (so its host fingerprint is its own), and
reaches the others only through its veth, which a test can cut (`cut(i)`) to lose a link mid-run. The bridge lives
in a namespace of its own, so nothing is added to the host's network but for the moment each veth pair is created.
Addresses are in 10.231.X.0/24, inside these namespaces only. `stop()` kills every process in the nodes' namespaces,
then deletes them; `leftovers()` says what of this cluster still exists (a test checks it is nothing).

Needs root, `ip` (iproute2), and `unshare` and `nsenter` (util-linux), as CI has.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(b) for b in ("ip", "unshare", "nsenter"))


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class Node:
    index: int
    hostname: str
    namespace: str
    address: str
    machine_id: Path


class Cluster:
    def __init__(self, count: int, root: Path) -> None:
        self.root = root
        self.tag = f"b{os.getpid() % 100000:05d}{secrets.token_hex(1)}"  # interface names stay within 15 characters
        self.subnet = f"10.231.{os.getpid() % 250}"
        self.switch = f"{self.tag}sw"
        self.hosts = root / "hosts"
        self.nodes = [
            Node(i, f"node{i}", f"{self.tag}n{i}", f"{self.subnet}.{i + 1}", root / f"machine-id-{i}")
            for i in range(count)
        ]
        self.procs: list[subprocess.Popen[str]] = []
        self.cgroups: dict[int, Path] = {}

    # --- set-up and tear-down ---------------------------------------------------------------------------------

    def start(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost"] + [f"{n.address} {n.hostname}" for n in self.nodes]
        self.hosts.write_text("\n".join(lines) + "\n")
        subprocess.run(["ip", "netns", "add", self.switch], check=True, timeout=30)
        _ip("link", "add", f"{self.tag}br", "type", "bridge", ns=self.switch)
        _ip("link", "set", f"{self.tag}br", "up", ns=self.switch)
        for n in self.nodes:
            n.machine_id.write_text(secrets.token_hex(16) + "\n")
            subprocess.run(["ip", "netns", "add", n.namespace], check=True, timeout=30)
            inner, outer = f"{self.tag}v{n.index}", f"{self.tag}p{n.index}"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", n.namespace)
            _ip("link", "set", outer, "netns", self.switch)
            _ip("link", "set", outer, "master", f"{self.tag}br", ns=self.switch)
            _ip("link", "set", outer, "up", ns=self.switch)
            _ip("addr", "add", f"{n.address}/24", "dev", inner, ns=n.namespace)
            _ip("link", "set", inner, "up", ns=n.namespace)
            _ip("link", "set", "lo", "up", ns=n.namespace)

    def throttle(self, i: int, fraction: float) -> None:
        """Processes started on node i from now on get `fraction` of one CPU: a CFS quota in a cgroup of their own, with
        a 5 ms period (with the usual 100 ms, an iteration shorter than one burst runs at full speed). cgroup v1's cpu
        controller where mounted, else cgroup v2's cpu.max."""
        v1 = Path("/sys/fs/cgroup/cpu")
        group = (v1 if v1.is_dir() else Path("/sys/fs/cgroup")) / f"{self.tag}n{i}"
        group.mkdir()
        period = 5000
        if v1.is_dir():
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(int(period * fraction)))
        else:
            (group / "cpu.max").write_text(f"{int(period * fraction)} {period}")
        self.cgroups[i] = group

    def namespaces(self) -> list[str]:
        return [self.switch, *(n.namespace for n in self.nodes)]

    def stop(self) -> None:
        """Kill every process in the nodes' namespaces (and any started here), then delete the namespaces."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in self.namespaces():
            pids = subprocess.run(
                ["ip", "netns", "pids", ns],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        for ns in self.namespaces():
            while subprocess.run(
                ["ip", "netns", "pids", ns],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.split():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
        for group in self.cgroups.values():
            try:
                group.rmdir()
            except OSError:
                pass

    def leftovers(self) -> list[str]:
        """What of this cluster still exists: namespaces, interfaces in the host's namespace, live processes."""
        out = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
               if ns.startswith(self.tag)]  # fmt: skip
        out += [line for line in _ip("-o", "link").stdout.splitlines() if self.tag in line]
        out += [f"process {p.pid}" for p in self.procs if p.poll() is None]
        out += [str(g) for g in self.cgroups.values() if g.exists()]
        return out

    # --- running things on a node --------------------------------------------------------------------------------

    def popen(
        self, i: int, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[str]:
        """`argv` on node i: its network, host name, /etc/hosts and machine id; stdout and stderr captured."""
        n = self.nodes[i]
        script = ('hostname "$1" && mount --bind "$2" /etc/hosts && '
                  '{ [ ! -e /etc/machine-id ] || mount --bind "$3" /etc/machine-id; } && '
                  '{ [ -z "$4" ] || echo $$ > "$4"; } && shift 4 && exec "$@"')  # fmt: skip
        group = str(self.cgroups[i] / "cgroup.procs") if i in self.cgroups else ""
        # nsenter, not `ip netns exec`: that one mounts a new /sys, which hides the host's cgroups (slurmd needs them)
        cmd = ["nsenter", f"--net=/run/netns/{n.namespace}", "unshare", "--uts", "--mount", "--propagation", "private",
               "sh", "-c", script, "sh", n.hostname, str(self.hosts), str(n.machine_id), group, *argv]  # fmt: skip
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
        self.procs.append(p)
        return p

    def run(
        self, i: int, argv: list[str], timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        p = self.popen(i, argv, env=env)
        out, err = p.communicate(timeout=timeout)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def kill_node(self, i: int) -> None:
        """SIGKILL everything running on node i (a node that dies)."""
        pids = subprocess.run(
            ["ip", "netns", "pids", self.nodes[i].namespace], capture_output=True, text=True, check=False
        ).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cut(self, i: int) -> None:
        """Take node i's link down (at the switch side): its traffic stops, its processes live on."""
        _ip("link", "set", f"{self.tag}p{i}", "down", ns=self.switch)
