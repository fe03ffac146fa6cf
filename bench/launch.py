"""Where this process sits in a distributed job: rank, world size, local rank and rendezvous address, from the
variables torchrun, Slurm's srun or a hand-rolled launcher set. One place, used by every multi-rank workload."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import psutil
import torch
import torch.distributed as torch_dist

DEFAULT_PORT = 29500
#: Timeout of the control group (object gathers and barriers between phases): a phase where ranks work on their own
#: (each GPU's searches before the gather, rank 0's single-rank training baseline) must not count against the collective
#: timeout. A dead peer still ends the wait at once (gloo sees its connection close). BENCH_CONTROL_TIMEOUT_S overrides.
CONTROL_TIMEOUT_S = 6 * 3600.0
#: What the NCCL watchdog does when a collective times out: 2 aborts the communicator and lets the process go on, so
#: the next collective raises and the rank ends with one line and a closed report. PyTorch's default (3) tears the
#: process down from the watchdog thread, and nothing of ours runs. An explicit setting in the environment wins.
NCCL_ERROR_HANDLING = "2"

_control: object | None = None


class LaunchError(RuntimeError):
    """The environment describes a distributed job that cannot be joined; the message says which variable."""


@dataclass(frozen=True)
class Placement:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int
    source: str  # 'torchrun', 'slurm', 'env' or 'single'

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: 'gpu[03-05,09],cpu1' -> 'gpu03'."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise LaunchError(f"cannot read the Slurm node list {nodelist!r}")
    prefix, ranges = match.group(1), match.group(2)
    return prefix + ranges.split(",")[0].split("-")[0] if ranges else prefix


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise LaunchError(f"{name}={env[name]!r} is not an integer") from None


def placement(env: Mapping[str, str] | None = None) -> Placement:
    """torchrun / plain RANK and WORLD_SIZE first, then Slurm's SLURM_* variables, else a single process."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        source = "torchrun" if "TORCHELASTIC_RUN_ID" in env else "env"
        rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
        local_world = _int(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else world
        if world > 1 and "MASTER_ADDR" not in env:
            raise LaunchError("RANK and WORLD_SIZE are set but MASTER_ADDR is not")
        addr = env.get("MASTER_ADDR", "127.0.0.1")
        port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else DEFAULT_PORT
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        source = "slurm"
        rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
        local = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
        per_node = env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE", "1")
        local_world = int(re.match(r"\d+", per_node).group(0)) if re.match(r"\d+", per_node) else 1
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "127.0.0.1"
        addr = env.get("MASTER_ADDR") or first_host(nodelist)
        job = _int(env, "SLURM_JOB_ID") if "SLURM_JOB_ID" in env else 0
        port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else DEFAULT_PORT + job % 1000
    else:
        return Placement(0, 1, 0, 1, "127.0.0.1", DEFAULT_PORT, "single")
    if not 0 <= rank < world or not 0 <= local < max(local_world, 1):
        raise LaunchError(f"rank {rank} (local {local}) is outside world size {world} (local {local_world})")
    return Placement(rank, world, local, max(local_world, 1), addr, port, source)


def join(p: Placement, backend: str, timeout_s: float, device: str | None = None) -> None:
    """Join the process group; a rank that never arrives makes this raise within `timeout_s`, and so does every
    later collective when a rank dies.

    With NCCL, `device` (this rank's 'cuda:N') becomes the current device first: NCCL binds each rank to the current
    device, and object collectives and barriers place their tensors there, so without it every rank of a node
    would use cuda:0. A gloo control group (CONTROL_TIMEOUT_S) carries the gathers of results and the barriers
    between phases on the host, whatever the backend."""
    global _control
    if backend == "nccl":
        if device is None or not device.startswith("cuda"):
            raise LaunchError(f"rank {p.rank}: NCCL needs this rank's GPU, got {device!r}")
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", NCCL_ERROR_HANDLING)
        torch.cuda.set_device(torch.device(device))
    # gloo reads GLOO_SOCKET_IFNAME when its groups are made: set for that moment only (an in-process caller, a test
    # say, must not carry this job's interface into the next job)
    interface = None if "GLOO_SOCKET_IFNAME" in os.environ else gloo_interface(p)
    try:
        if interface:
            os.environ["GLOO_SOCKET_IFNAME"] = interface
        torch_dist.init_process_group(
            backend, init_method=f"tcp://{p.master_addr}:{p.master_port}", rank=p.rank, world_size=p.world_size,
            timeout=dt.timedelta(seconds=timeout_s),
        )  # fmt: skip
        control_s = float(os.environ.get("BENCH_CONTROL_TIMEOUT_S") or CONTROL_TIMEOUT_S)
        _control = control_group(timeout_s, max(timeout_s, control_s))
    except Exception as exc:  # noqa: BLE001 - torch raises several types here; all mean the job cannot start
        raise LaunchError(f"rank {p.rank} could not join {p.world_size} ranks at {p.master_addr}:{p.master_port} "
                          f"within {timeout_s:g} s: {(str(exc).splitlines() or [''])[0]}") from None  # fmt: skip
    finally:
        if interface:
            del os.environ["GLOO_SOCKET_IFNAME"]


def control_group(join_s: float, control_s: float) -> object:
    """The gloo control group, joined within `join_s` and then given `control_s` for its gathers and barriers.

    Made with the long timeout, a rank that died after the default group formed but before this group connected
    (gloo's full mesh waits on the store for every rank's address) left the others waiting `control_s`, six hours by
    default, instead of failing within the join timeout: a CI run hung here once. So the group is made, and a barrier
    on it proves every rank connected, under `join_s`; only then is its timeout raised (torch's _set_pg_timeout)."""
    group = torch_dist.new_group(backend="gloo", timeout=dt.timedelta(seconds=join_s))
    torch_dist.barrier(group=group)
    if control_s > join_s:
        torch_dist.distributed_c10d._set_pg_timeout(dt.timedelta(seconds=control_s), group)
    return group


def gloo_interface(p: Placement) -> str | None:
    """The network interface this host reaches MASTER_ADDR through, for gloo (the control group, and CPU jobs). Left
    alone, gloo binds to whatever the host name resolves to: 127.0.1.1 on Debian-style hosts, which other nodes
    cannot reach. None when it cannot be told, or when it is loopback while the job spans several nodes."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((p.master_addr, p.master_port or DEFAULT_PORT))  # UDP: picks the route, sends nothing
            local = s.getsockname()[0]
    except OSError:
        return None
    if ipaddress.ip_address(local).is_loopback and p.world_size > p.local_world_size:
        return None
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == local for a in addresses):
            return name
    return None


def job_id(p: Placement, env: Mapping[str, str] | None = None) -> str:
    """A name for this job that every rank derives alike: torchrun's run id, Slurm's job and step, else the
    rendezvous address."""
    env = os.environ if env is None else env
    if env.get("TORCHELASTIC_RUN_ID"):
        raw = env["TORCHELASTIC_RUN_ID"]
    elif env.get("SLURM_JOB_ID"):
        raw = f"slurm-{env['SLURM_JOB_ID']}-{env.get('SLURM_STEP_ID', '0')}"
    else:
        raw = f"{p.master_addr}-{p.master_port}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)[:80]


def control() -> object | None:
    """The host-side group for gathering Python objects and for barriers between phases (None: the default group)."""
    return _control


def leave() -> None:
    global _control
    _control = None
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
