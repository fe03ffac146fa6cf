"""Compute devices as bench names them ('cpu', 'cuda:N') and the few facts about them that workloads need."""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass
from typing import Any, Self

import psutil
import torch

ALL = "all"


def cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


#: How NVML and CUDA_VISIBLE_DEVICES name a MIG instance ('MIG-<uuid>' since driver R470; the older
#: 'MIG-GPU-<uuid>/<gi>/<ci>' starts the same way). A device name bench takes for a MIG instance it measures in a worker
#: process of its own.
MIG_PREFIX = "MIG-"


def is_mig_name(name: str | None) -> bool:
    return bool(name) and str(name).startswith(MIG_PREFIX)


def mig_lanes(visible: str | None = None, nvml_module: Any = None) -> list[str]:
    """The MIG instances bench measures itself, one worker process each started with CUDA_VISIBLE_DEVICES=<its MIG-
    UUID> (CUDA enumerates a single MIG instance per process, and reads CUDA_VISIBLE_DEVICES once, when it
    initialises): every instance NVML lists with its UUID, when this process was started without
    CUDA_VISIBLE_DEVICES (`visible`, default the environment's) - the node is bench's to share out. None when it was
    given one: the operator chose what this process sees (a Slurm step's, a container's), and bench doctor warns about
    what NVML lists beyond it."""
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return []
    from bench.hardware import nvml

    return nvml.mig_uuids(nvml.gpu_inventory(nvml_module))


def _torch_sees_mig(index: int) -> bool:
    """Whether torch's cuda:<index> is a MIG instance (torch names one "<GPU name> MIG <profile>")."""
    return " MIG " in f" {torch.cuda.get_device_properties(index).name} "


def default_devices() -> list[str]:
    """Every GPU when there are any (each MIG instance by its MIG- UUID: see mig_lanes), else the CPU. ValueError when
    the driver sees GPUs that torch does not: a torch built for a newer CUDA than the driver supports (PyPI's default
    build follows the newest CUDA) or a CPU build would otherwise turn a GPU node's benchmark into a CPU benchmark that
    reports 'complete'."""
    n = cuda_count()
    migs = mig_lanes() if n else []
    if n:
        # the one MIG instance this process's CUDA enumerates is measured through its own lane, never also here
        return [f"cuda:{i}" for i in range(n) if not (migs and _torch_sees_mig(i))] + migs
    from bench.hardware import nvml

    seen = nvml.gpu_count()
    if seen:
        raise ValueError(
            f"the driver sees {seen} GPU(s) but torch {torch.__version__} sees none (built for CUDA "
            f"{torch.version.cuda or 'none: a CPU-only build'}): install a torch built for a CUDA this driver supports "
            "(nvidia-smi shows the newest), or name --device cpu to measure the CPU on purpose")  # fmt: skip
    return ["cpu"]


def valid_names() -> list[str]:
    n = cuda_count()
    return ["cpu", *[f"cuda:{i}" for i in range(n)], *(mig_lanes() if n else []), ALL]


def resolve(name: str) -> list[str]:
    """Expand a device name to device ids; ValueError naming the valid ones when it is unknown or absent."""
    if name == ALL:
        return default_devices()
    if name in valid_names():
        return [name]
    raise ValueError(f"unknown or absent device {name!r}; valid here: {', '.join(valid_names())}")


@dataclass(frozen=True)
class DeviceFacts:
    id: str
    kind: str  # 'cpu' or 'cuda'
    name: str
    #: GPU UUID as NVML prints it, or the host fingerprint for the CPU: what deduplicates capacity
    uuid: str | None
    l2_cache_bytes: int
    compute_capability: str | None
    #: CPU ISA flags present (the host inventory's FLOP flags); empty for GPUs
    isa_flags: tuple[str, ...] = ()
    #: GPUs: streaming multiprocessors torch sees (a MIG slice has a fraction of its GPU's)
    sm_count: int | None = None
    #: a MIG instance (a slice of a GPU), not a whole GPU: its peak is its share of the GPU's
    mig: bool = False
    #: a MIG instance bench binds itself (mig_lanes): the NVML index of its GPU, and its GPU instance id (what
    #: dcgm-exporter labels GPU_I_ID). Its worker process sees it alone, as cuda:0 (`id`); None otherwise
    parent_gpu: int | None = None
    gpu_instance_id: int | None = None

    @property
    def visible(self) -> str | None:
        """The CUDA_VISIBLE_DEVICES its worker process is started with: a MIG instance bench binds (its MIG- UUID);
        None for a device this process's CUDA already shows."""
        return self.uuid if self.mig and self.parent_gpu is not None else None

    @property
    def label(self) -> str:
        """How step labels and progress lines name it: a MIG instance bench binds by its MIG- UUID (in its own
        process every one of them is cuda:0), anything else by its id."""
        return self.visible or self.id

    @property
    def local_index(self) -> int:
        """N of 'cuda:N' (0 for the CPU)."""
        return int(self.id.split(":")[1]) if ":" in self.id else 0


def facts(device_id: str, host: dict | None = None) -> DeviceFacts:
    """Facts about `device_id`; for the CPU they come from the host inventory (model, fingerprint, ISA flags); for a
    MIG instance named by its MIG- UUID, from NVML (mig_facts: this process cannot see it; its worker probes it)."""
    if is_mig_name(device_id):
        return mig_facts(device_id)
    dev = torch.device(device_id)
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        uuid = getattr(p, "uuid", None)
        # torch names a MIG instance "<GPU name> MIG <profile>" (e.g. "NVIDIA A100-SXM4-40GB MIG 1g.5gb"), and NVML
        # prints its UUID as MIG-<uuid> where a whole GPU's is GPU-<uuid>
        mig = " MIG " in f" {p.name} "
        return DeviceFacts(
            id=device_id,
            kind="cuda",
            name=p.name,
            uuid=f"{'MIG' if mig else 'GPU'}-{uuid}" if uuid is not None else None,
            l2_cache_bytes=int(getattr(p, "L2_cache_size", 0)),
            compute_capability=f"{p.major}.{p.minor}",
            sm_count=int(getattr(p, "multi_processor_count", 0)) or None,
            mig=mig,
        )
    host = host or {}
    flags = tuple(sorted(f for f, present in (host.get("isa_flags") or {}).items() if present))
    return DeviceFacts(device_id, "cpu", host.get("cpu_model") or "cpu", host.get("fingerprint"), 0, None, flags)


def mig_facts(uuid: str, nvml_module: Any = None) -> DeviceFacts:
    """What NVML says of a MIG instance, for the plan made in this process (labels, lanes, the error record of a worker
    that died); its worker probes the device itself (probed). ValueError when NVML does not list it."""
    from bench.hardware import nvml

    for gpu in nvml.gpu_inventory(nvml_module).get("gpus") or []:
        for m in gpu.get("mig_devices") or []:
            if m.get("uuid") == uuid:
                return DeviceFacts(id="cuda:0", kind="cuda", name=f"{gpu.get('name') or 'GPU'} MIG", uuid=uuid,
                                   l2_cache_bytes=0, compute_capability=gpu.get("compute_capability"),
                                   sm_count=m.get("sm_count"), mig=True, parent_gpu=gpu.get("index"),
                                   gpu_instance_id=m.get("gpu_instance_id"))  # fmt: skip
    raise ValueError(f"NVML lists no MIG instance {uuid} (nvidia-smi -L lists them)")


def probed(planned: DeviceFacts) -> DeviceFacts:
    """In a worker process: the device `planned` names, with the facts its own CUDA gives (a MIG instance bench binds
    is cuda:0 there), keeping NVML's UUID, parent GPU and GPU instance id. Anything else is returned as planned.
    RuntimeError when CUDA shows a whole GPU where the plan has a MIG instance."""
    if planned.visible is None:
        return planned
    seen = facts("cuda:0")
    if not seen.mig:
        raise RuntimeError(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')} shows {seen.name!r}, not "
                           f"the MIG instance {planned.uuid}")  # fmt: skip
    return dataclasses.replace(seen, uuid=planned.uuid, parent_gpu=planned.parent_gpu,
                               gpu_instance_id=planned.gpu_instance_id)  # fmt: skip


#: Native matrix-multiply support per precision. CPU: ISA flags (as /proc/cpuinfo names them) of which any one gives
#: the BLAS libraries torch uses (MKL, oneDNN, OpenBLAS, Arm PL) a native kernel; without one they convert to float32
#: element by element (~0.2% of the float32 rate measured on an AVX2-only EPYC). No CPU shipping today multiplies fp8
#: natively (AMX-FP8 is announced). CUDA: minimum compute capability per NVIDIA's CUDA programming guide and the torch
#: kernels (bf16 and tf32 arrived with Ampere 8.0, fp16 arithmetic with 5.3, int8 tensor cores with Turing 7.5, fp8
#: with Ada 8.9), and what happens below it: 'emulated' (torch still runs it, slowly) or 'unsupported' (torch cannot).
CPU_NATIVE_FLAGS = {
    "bfloat16": ("avx512_bf16", "amx_bf16", "bf16"),
    "float16": ("avx512_fp16", "amx_fp16", "asimdhp"),
    "float8_e4m3": ("amx_fp8",),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8", "i8mm", "asimddp"),
}
CUDA_MIN_CAPABILITY = {
    "tf32": ((8, 0), "unsupported"),
    "bfloat16": ((8, 0), "emulated"),
    "float16": ((5, 3), "emulated"),
    "float8_e4m3": ((8, 9), "unsupported"),
    "int8": ((7, 5), "unsupported"),
}


def support(device: DeviceFacts, precision: str, cuda_only: bool) -> tuple[str, str | None]:
    """('native' | 'emulated' | 'unsupported', reason) for matrix products in `precision` on `device`."""
    if device.kind == "cpu":
        if cuda_only:
            return "unsupported", f"{precision} is a mode of NVIDIA tensor cores; the CPU has none"
        needed = CPU_NATIVE_FLAGS.get(precision)
        if needed and not set(needed) & set(device.isa_flags):
            return "emulated", f"no native {precision} on this CPU (none of the ISA flags {', '.join(needed)})"
        return "native", None
    rule = CUDA_MIN_CAPABILITY.get(precision)
    if rule and device.compute_capability:
        (major, minor), below = rule
        have = tuple(int(x) for x in device.compute_capability.split("."))
        if have < (major, minor):
            return (
                below,
                f"{precision} needs compute capability {major}.{minor}, {device.id} has {device.compute_capability}",
            )
    return "native", None


def sm_count(device_id: str) -> int:
    """Streaming multiprocessors of a CUDA device (the unit a wave of kernel tiles fills)."""
    return int(torch.cuda.get_device_properties(torch.device(device_id)).multi_processor_count)


def free_memory_bytes(device_id: str) -> int:
    """Bytes a new allocation can get. On CUDA that is what the driver has free plus what torch's caching allocator
    holds but no tensor uses (mem_get_info counts the cache as used; after large runs it can be most of the GPU)."""
    dev = torch.device(device_id)
    if dev.type == "cuda":
        cached = int(torch.cuda.memory_reserved(dev)) - int(torch.cuda.memory_allocated(dev))
        return int(torch.cuda.mem_get_info(dev)[0]) + max(cached, 0)
    return int(psutil.virtual_memory().available)


def local_device(local_rank: int, local_world_size: int) -> str:
    """The device of one rank of a job: 'cuda:LOCAL_RANK' when the node's ranks share the GPUs they all see (torchrun,
    srun without GPU binding); 'cuda:0' when each rank sees one GPU (srun --gpus-per-task=1 sets CUDA_VISIBLE_DEVICES
    per task); the CPU without GPUs. ValueError when neither fits (fewer GPUs than ranks, each seeing several)."""
    n = cuda_count()
    if n == 0:
        return "cpu"
    if local_world_size <= n and local_rank < n:
        return f"cuda:{local_rank}"
    if n == 1:
        return "cuda:0"
    raise ValueError(f"local rank {local_rank} of {local_world_size} sees {n} GPUs: give each rank its own GPU (one "
                     "rank per GPU, or CUDA_VISIBLE_DEVICES with one GPU per rank)")  # fmt: skip


def synchronize(device_id: str) -> None:
    dev = torch.device(device_id)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def show_only(mig_uuid: str) -> None:
    """Make this process's CUDA show the MIG instance `mig_uuid` alone (CUDA_VISIBLE_DEVICES), before CUDA initialises:
    CUDA reads the variable once, then, and enumerates a single MIG instance per process. RuntimeError when this
    process's CUDA is initialised already with another view (setting the variable then would change nothing)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == mig_uuid:
        return
    if torch.cuda.is_initialized():
        raise RuntimeError(f"cannot show {mig_uuid} alone: this process initialised CUDA already (with "
                           f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}); a MIG instance needs a "
                           "process started for it")  # fmt: skip
    os.environ["CUDA_VISIBLE_DEVICES"] = mig_uuid


def bind_process(device_id: str) -> None:
    """Make `device_id` this worker process's current CUDA device, first thing, so that no call made without a device
    (events, streams, synchronize, device='cuda' tensors) creates a context on another GPU. The ids stay those of the
    parent's plan (torchrun's ranks bind the same way, cuda:LOCAL_RANK); a MIG instance's lane (its MIG- UUID) is shown
    alone (show_only) and bound as cuda:0. Nothing to do for the CPU."""
    if is_mig_name(device_id):
        show_only(device_id)
        device_id = "cuda:0"
    dev = torch.device(device_id)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)


#: Held while a GPU copies between host and device, so that a node's copies take turns (GPUs behind one PCIe switch
#: would each see a fraction of their link). A thread lock within one process; the runner hands each lane's worker
#: process the node's one multiprocessing lock (share_host_copies).
_HOST_COPIES: Any = threading.Lock()


def host_copies() -> Any:
    """The node's host<->device copy lock (a context manager)."""
    return _HOST_COPIES


class SharedCopies:
    """The node's copy lock as the lanes' worker processes share it, with the pid of the process holding it. A
    POSIX semaphore is not released when its holder dies: a worker killed mid-copy (the out-of-memory killer, a
    SIGKILL) would leave every other lane waiting for its next copy forever. The parent, told a worker died, releases
    the lock if that worker held it (release_if_held_by). `ctx` is the workers' multiprocessing context."""

    def __init__(self, ctx: Any) -> None:
        self.lock = ctx.Lock()
        self.holder = ctx.Value("q", 0, lock=False)  # written only by whoever holds the lock

    def __enter__(self) -> Self:
        self.lock.acquire()
        self.holder.value = os.getpid()
        return self

    def __exit__(self, *exc: object) -> None:
        self.holder.value = 0
        self.lock.release()

    def release_if_held_by(self, pid: int | None) -> bool:
        """Release the lock if the (dead) process `pid` held it; True if it did."""
        if not pid or self.holder.value != pid:
            return False
        self.holder.value = 0
        self.lock.release()
        return True


def share_host_copies(lock: Any) -> None:
    """Use `lock` (a multiprocessing lock every lane's worker shares) as this process's host_copies()."""
    global _HOST_COPIES
    _HOST_COPIES = lock


def physical_cores() -> int:
    """Threads for CPU measurements: physical cores, as BLAS libraries gain nothing from SMT siblings, and never more
    than the CPUs this process may run on (its affinity: a container's cpuset, taskset). Why the cap: in a container
    allowed 2 CPUs of a 32-core host, the all-core figure ran 32 threads on 2 CPUs, each GEMM waiting on preempted
    threads, so `bench gate`'s all-core figure of unchanged code read as noise or a regression
    (tests/adversarial/test_thirteenth_round.py)."""
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        cores = min(cores, len(os.sched_getaffinity(0)) or cores)
    return cores


def is_oom(exc: BaseException) -> bool:
    """True for the ways torch and Python report running out of host or device memory."""
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
