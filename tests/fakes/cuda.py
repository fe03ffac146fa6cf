"""A CPU stand-in for CUDA that refuses what CUDA refuses.

The first wave's doubles of torch.cuda accepted anything, so every GPU matmul passed its tests and raised on a GPU. This
one runs the arithmetic on the CPU but keeps, for every tensor, the device it would live on, and enforces the rules
that torch, cuBLAS and the CUDA runtime enforce on real hardware:

- a tensor lives on one device; an op on tensors of two devices raises (0-dim CPU scalars excepted, as in torch), and
  `cuda:N` must be a device that exists (`invalid device ordinal`);
- a generator lives on one device: a CUDA generator handed to an op whose output is on the CPU raises exactly as
  torch does ("Expected a 'cpu' device type for generator but found 'cuda'"), and the reverse;
- the current device is per thread, starts at 0, and is what `device="cuda"`, events and `synchronize()` use;
- an event's time can be read only after a synchronize of the device it was recorded on (or of the event);
- `torch._int_mm` and `torch._scaled_mm` take the operand layouts and shape multiples cuBLAS(Lt) takes on CUDA:
  A row-major, B column-major ("TN"), fp8 dimensions multiples of 16, int8 M > 16 and K, N multiples of 8;
- a CUDA tensor cannot become a numpy array, and `pin_memory` works only when CUDA is there;
- the caching allocator: memory torch holds in its cache is not free to `mem_get_info`, but torch can reuse it;
- TF32: float32 products on a CUDA device run with their operands rounded to TF32 (10 mantissa bits) whenever torch's
  ONE process-wide switch says so (`torch.backends.cuda.matmul.fp32_precision == 'tf32'`, `allow_tf32` before 2.9),
  whichever thread set it, unless NVIDIA_TF32_OVERRIDE=0 forbids TF32 to NVIDIA's libraries, and
  TORCH_ALLOW_TF32_CUBLAS_OVERRIDE as each torch version treats it (tests/fakes/tf32.py);
- a node (`node=`, FakeGpu each) enumerates as CUDA enumerates it, from CUDA_VISIBLE_DEVICES as it is when CUDA
  initialises (the first torch.cuda call): unset, the whole GPUs and ONE MIG instance (CUDA enumerates a single MIG
  instance per process); `MIG-<uuid>`, that instance alone, as cuda:0 (its props, its UUID); indices or GPU- UUIDs,
  those whole GPUs, an unknown entry hiding the rest. Two entries with a MIG instance among them raise (real CUDA
  silently shows the first alone: a test would pass measuring one instance twice), and so does a torch.cuda call after
  CUDA_VISIBLE_DEVICES changed (real CUDA ignores the change: a worker that set it late would see the wrong device);
- memory runs out: a device holds `props.total_memory` bytes (less `used_elsewhere`); a CUDA tensor's storage is
  allocated when an op makes it and freed when its last tensor goes, and an allocation beyond the capacity raises
  `torch.OutOfMemoryError` as the caching allocator does.

And it costs what CUDA costs, in time (set `flops_per_s`, `bytes_per_s` and `launch_s`; all free by default):

- each device has one stream with its own clock (seconds on the host's perf_counter): a kernel (a product, costing
  2·M·N·K ÷ flops_per_s; a fill, copy, cast or random draw, costing its output's bytes ÷ bytes_per_s) starts when the
  stream is free and the host has launched it, max(stream clock, host time at launch), and ends that much later;
- an event records the stream's clock when the stream reaches it, so an event pair times everything between, the
  stream's idle time waiting for the host included; `elapsed_time` is their difference;
- `synchronize` (and a copy to the host, `.item()`) makes the host wait until the stream has drained;
- launching a kernel or recording an event costs the host `launch_s`, taken while holding ONE lock per process: the
  threads of one process launch one at a time (as under the interpreter lock), separate processes do not wait on each
  other, and a waiting host sleeps rather than burns a core.

Use it through the `fake_cuda` fixture (tests/conftest.py) or `FakeCuda(...).install(monkeypatch)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import torch
from torch.overrides import TorchFunctionMode

_ATTR = "_bench_fake_device"
_TRACKED = "_bench_fake_allocation"
_REAL_GENERATOR = torch.Generator

#: One per process, as the interpreter lock is: a host launches a kernel (and pays launch_s) holding it.
HOST_LOCK = threading.Lock()


@dataclass
class Props:
    """What torch.cuda.get_device_properties returns for one device."""

    name: str = "NVIDIA H200"
    major: int = 9
    minor: int = 0
    total_memory: int = 143 * 10**9
    multi_processor_count: int = 132
    L2_cache_size: int = 60 * 2**20
    uuid: str = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class FakeGpu:
    """One GPU of a fake node (FakeCuda(node=...)): whole, or in MIG mode with its instances as (MIG- UUID, props)."""

    uuid: str
    props: Props = field(default_factory=Props)
    mig: tuple[tuple[str, Props], ...] = ()


def enumerate_node(node: tuple[FakeGpu, ...], visible: str | None) -> list[Props]:
    """The devices CUDA shows a process of `node` given CUDA_VISIBLE_DEVICES=`visible`, as cuda:0, cuda:1, ... (each
    Props with the UUID torch reports: NVML's, without its GPU-/MIG- prefix)."""

    def whole(g: FakeGpu) -> Props:
        if g.mig:
            raise RuntimeError(f"fake CUDA: a GPU in MIG mode named whole ({g.uuid}) is not modelled")
        return dataclasses.replace(g.props, uuid=g.uuid.removeprefix("GPU-"))

    def instance(uuid: str, props: Props) -> Props:
        return dataclasses.replace(props, uuid=uuid.removeprefix("MIG-"))

    if visible is None:
        out: list[Props] = []
        for g in node:
            if not g.mig:
                out.append(whole(g))
            elif not any(" MIG " in f" {p.name} " for p in out):
                out.append(instance(*g.mig[0]))
        return out
    tokens = [t.strip() for t in visible.split(",")] if visible.strip() else []
    if len(tokens) > 1 and any(t.startswith("MIG-") for t in tokens):
        raise RuntimeError(f"fake CUDA: CUDA_VISIBLE_DEVICES={visible} names {len(tokens)} devices, a MIG instance "
                           "among them: CUDA enumerates a single MIG instance per process (the real one shows the "
                           "first alone, silently)")  # fmt: skip
    out = []
    for t in tokens:
        if t.startswith("MIG-"):
            found = [instance(u, p) for g in node for u, p in g.mig if u == t]
        elif t.isdigit():
            found = [whole(node[int(t)])] if int(t) < len(node) else []
        else:
            found = [whole(g) for g in node if g.uuid == t]
        if not found:
            break  # CUDA: an entry that names no device hides it and every entry after it
        out.append(found[0])
    return out


_UNSET = object()


def device_of(t: Any) -> str:
    """The device a tensor (or generator) lives on under the fake: 'cpu' or 'cuda:N'."""
    return getattr(t, _ATTR, "cpu")


def _tag(obj: Any, device: str) -> Any:
    if isinstance(obj, torch.Tensor):
        setattr(obj, _ATTR, device)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _tag(o, device)
    return obj


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


class FakeGenerator(_REAL_GENERATOR):
    """torch.Generator(device=...) under the fake: a CPU generator that remembers the device it stands for."""

    def __new__(cls, device: Any = "cpu") -> Self:
        return super().__new__(cls)

    def __init__(self, device: Any = "cpu") -> None:
        super().__init__()
        self._bench_fake_device = FakeCuda.active().normalize(device)

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device(self._bench_fake_device)


@dataclass
class Event:
    """torch.cuda.Event: recorded on the current device's stream, stamped with the stream's clock when the stream
    reaches it; readable once that device (or the event) is synchronized."""

    enable_timing: bool = False
    blocking: bool = False
    interprocess: bool = False
    device: str | None = None
    at: float | None = None
    done: bool = False

    def record(self, stream: Any = None) -> None:
        fake = FakeCuda.active()
        self.device, self.done = fake.current(), False
        self.at = fake.launch(self.device, 0.0)  # recording is a launch: host time, and a place in the queue
        fake.pending.setdefault(self.device, []).append(self)

    def synchronize(self) -> None:
        if self.at is not None:
            _sleep_until(self.at)
        self.done = True

    def query(self) -> bool:
        return self.done or (self.at is not None and time.perf_counter() >= self.at)

    def elapsed_time(self, end: Event) -> float:
        if not (self.enable_timing and end.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self.at is None or end.at is None:
            raise RuntimeError("CUDA error: device not ready (an event was never recorded)")
        if self.device != end.device:
            raise RuntimeError(
                f"CUDA error: invalid resource handle (events recorded on {self.device} and {end.device})"
            )
        if not (self.done and end.done):
            raise RuntimeError(
                f"CUDA error: device not ready (events on {self.device} read before it was synchronized)"
            )
        return (end.at - self.at) * 1000.0


def _sleep_until(t: float) -> None:
    """The host waits (asleep, not spinning) until perf_counter reaches t."""
    wait = t - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


@dataclass
class Stream:
    """A device's one stream: `clock` is when the work queued so far ends, in perf_counter seconds."""

    clock: float = 0.0


@dataclass
class FakeCuda:
    """N fake GPUs. `install(monkeypatch)` patches torch.cuda and torch.Generator and enters the tensor mode."""

    count: int = 1
    props: Props = field(default_factory=Props)
    #: bytes other processes (or the context) hold, per device: not free to anyone
    used_elsewhere: int = 0
    #: bytes torch's caching allocator holds per device; of those, `allocated` are live tensors
    reserved: dict[int, int] = field(default_factory=dict)
    allocated: dict[int, int] = field(default_factory=dict)
    #: every kernel the fake saw on a CUDA tensor: (name, device), for tests that check where work ran
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: devices synchronized, in order; and the use_fast_accum of every fp8 product
    synced: list[str] = field(default_factory=list)
    fast_accum: list[bool] = field(default_factory=list)
    #: copies of CUDA tensors to the host
    to_host: int = 0
    #: host pointers page-locked with cudaHostRegister (and not yet unregistered)
    registered: set[int] = field(default_factory=set)
    pending: dict[str, list[Event]] = field(default_factory=dict)
    #: the time model: device FLOP/s for products, bytes/s for memory kernels, host seconds per launch (None, 0: free)
    flops_per_s: float | None = None
    bytes_per_s: float | None = None
    launch_s: float = 0.0
    streams: dict[str, Stream] = field(default_factory=dict)
    #: a node to enumerate from CUDA_VISIBLE_DEVICES (enumerate_node); empty: `count` devices, each with `props`
    node: tuple[FakeGpu, ...] = ()
    #: kernels queued per device: (name, seconds it took on the device's clock)
    kernels: list[tuple[str, str, float]] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)
    _live: dict[int, dict[int, list[int]]] = field(default_factory=dict)
    #: CUDA_VISIBLE_DEVICES as CUDA read it when it initialised (node mode), and the devices it showed
    _visible: Any = _UNSET
    _seen: list[Props] = field(default_factory=list)

    _ACTIVE: Any = None

    @classmethod
    def active(cls) -> FakeCuda:
        if cls._ACTIVE is None:
            raise RuntimeError("no FakeCuda installed")
        return cls._ACTIVE

    # --- the device model ---------------------------------------------------------------------------------------

    def current(self) -> str:
        return f"cuda:{getattr(self._local, 'index', 0)}"

    def initialise(self) -> None:
        """CUDA's initialisation, at the first torch.cuda call: a node is enumerated from CUDA_VISIBLE_DEVICES, read
        this once. Later calls refuse to go on once the variable changed (real CUDA ignores the change)."""
        if not self.node:
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if self._visible is not _UNSET:
            if visible != self._visible:
                raise RuntimeError(f"fake CUDA: CUDA_VISIBLE_DEVICES is {visible!r} now, but CUDA initialised with "
                                   f"{self._visible!r}: CUDA reads it once (the real one ignores the change)")  # fmt: skip
            return
        self._seen = enumerate_node(self.node, visible)
        self._visible = visible
        self.count = len(self._seen)
        if self._seen:
            self.props = self._seen[0]

    def is_initialized(self) -> bool:
        return self._visible is not _UNSET

    def device_count(self) -> int:
        self.initialise()
        return self.count

    def device_props(self, index: int) -> Props:
        """The Props of cuda:<index> (a node's own device, else `props` with a UUID made from the index)."""
        if self.node:
            return self._seen[index]
        return Props(**{**self.props.__dict__, "uuid": f"{index:08x}-0000-0000-0000-{index:012x}"})

    def normalize(self, device: Any) -> str:
        """'cpu' or 'cuda:N' for any way torch names a device, refusing ordinals that do not exist."""
        if device is None:
            return "cpu"
        if isinstance(device, int):
            device = f"cuda:{device}"
        d = torch.device(device)
        if d.type == "cpu":
            return "cpu"
        if d.type != "cuda":
            raise RuntimeError(f"fake CUDA: unexpected device type {d.type!r}")
        index = d.index if d.index is not None else getattr(self._local, "index", 0)
        self.initialise()
        if not 0 <= index < self.count:
            raise RuntimeError("CUDA error: invalid device ordinal")
        return f"cuda:{index}"

    def _index(self, device: Any) -> int:
        name = self.current() if device is None else self.normalize(device)
        if name == "cpu":
            raise ValueError(f"Expected a cuda device, but got: {device}")
        return int(name.split(":")[1])

    # --- time and memory ----------------------------------------------------------------------------------------

    def launch(self, device: str, seconds: float) -> float:
        """Queue `seconds` of work on `device`'s stream. The host pays launch_s holding the process's lock; the work
        starts at max(stream clock, host time at launch). Returns that start (what an event there records)."""
        with HOST_LOCK:
            if self.launch_s:
                time.sleep(self.launch_s)
            now = time.perf_counter()
            stream = self.streams.setdefault(device, Stream())
            start = max(stream.clock, now)
            stream.clock = start + seconds
        return start

    def kernel_seconds(self, name: str, args: tuple, out: Any) -> float | None:
        """Device seconds of the kernel an op launches, or None for an op that launches none (a view, an empty
        allocation, metadata)."""
        if name in _MATMULS or name in ("_int_mm", "_scaled_mm"):
            a = args[1] if name == "addmm" else args[0]
            if not isinstance(out, torch.Tensor) or not isinstance(a, torch.Tensor):
                return None
            return 2 * out.numel() * a.shape[-1] / self.flops_per_s if self.flops_per_s else 0.0
        if name in _MEMORY_KERNELS:
            t = (
                out
                if isinstance(out, torch.Tensor)
                else (args[0] if args and isinstance(args[0], torch.Tensor) else None)
            )
            if t is None:
                return None
            return t.numel() * t.element_size() / self.bytes_per_s if self.bytes_per_s else 0.0
        return None

    def drain(self, device: str) -> None:
        """The host waits until `device`'s stream has run everything queued."""
        stream = self.streams.get(device)
        if stream is not None:
            _sleep_until(stream.clock)

    def allocate(self, t: torch.Tensor) -> None:
        """Count a CUDA tensor's storage against its device's memory (once per storage; freed with its last tensor).
        Beyond the capacity, torch.OutOfMemoryError, as the caching allocator raises it."""
        if getattr(t, _TRACKED, False):
            return
        index = int(device_of(t).split(":")[1])
        storage = t.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        live = self._live.setdefault(index, {})
        if key not in live:
            have = self.allocated.get(index, 0)
            total_memory = self.device_props(index).total_memory
            capacity = total_memory - self.used_elsewhere
            if have + nbytes > capacity:
                raise torch.OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate {nbytes / 2**30:.2f} GiB. GPU {index} has a total capacity "
                    f"of {total_memory / 2**30:.2f} GiB of which {(capacity - have) / 2**30:.2f} GiB is free."
                )
            live[key] = [nbytes, 0]
            self.allocated[index] = have + nbytes
            self.reserved[index] = max(self.reserved.get(index, 0), self.allocated[index])
        live[key][1] += 1
        setattr(t, _TRACKED, True)
        weakref.finalize(t, self._release, index, key)

    def _release(self, index: int, key: int) -> None:
        entry = self._live.get(index, {}).get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del self._live[index][key]
            self.allocated[index] = self.allocated.get(index, 0) - entry[0]

    # --- torch.cuda ----------------------------------------------------------------------------------------------

    def set_device(self, device: Any) -> None:
        self._local.index = self._index(device)
        self._local.set = True

    def current_device(self) -> int:
        return getattr(self._local, "index", 0)

    @contextlib.contextmanager
    def device(self, device: Any) -> Iterator[None]:
        old = getattr(self._local, "index", 0)
        self._local.index = self._index(device)
        try:
            yield
        finally:
            self._local.index = old

    def synchronize(self, device: Any = None) -> None:
        name = f"cuda:{self._index(device)}"
        self.drain(name)
        self.synced.append(name)
        for e in self.pending.pop(name, []):
            e.done = True

    def get_device_properties(self, device: Any) -> Props:
        return self.device_props(self._index(device))

    def mem_get_info(self, device: Any = None) -> tuple[int, int]:
        index = self._index(device)
        total = self.device_props(index).total_memory
        return total - self.used_elsewhere - self.reserved.get(index, 0), total

    def memory_reserved(self, device: Any = None) -> int:
        return self.reserved.get(self._index(device), 0)

    def memory_allocated(self, device: Any = None) -> int:
        return self.allocated.get(self._index(device), 0)

    def empty_cache(self) -> None:
        for index in list(self.reserved):
            self.reserved[index] = self.allocated.get(index, 0)

    def install(self, monkeypatch: Any) -> FakeCuda:
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: self.device_count() > 0 if self.node else True)
        monkeypatch.setattr(cuda, "device_count", self.device_count)
        monkeypatch.setattr(cuda, "is_initialized", self.is_initialized)
        for name in ("set_device", "current_device", "device", "synchronize", "get_device_properties", "mem_get_info",
                     "memory_reserved", "memory_allocated", "empty_cache"):  # fmt: skip
            monkeypatch.setattr(cuda, name, getattr(self, name))
        monkeypatch.setattr(cuda, "Event", Event)
        monkeypatch.setattr(cuda, "cudart", lambda: _Cudart(self))
        monkeypatch.setattr(cuda, "reset_peak_memory_stats", lambda device=None: self._index(device) and None)
        monkeypatch.setattr(
            cuda, "max_memory_allocated", lambda device=None: self.allocated.get(self._index(device), 0)
        )
        monkeypatch.setattr(torch, "Generator", FakeGenerator)
        monkeypatch.setattr(FakeCuda, "_ACTIVE", self)
        # torch function modes are per thread: threads started while the fake is installed (lanes, samplers) run
        # under it too, each with the CUDA runtime's per-thread current device (0 until the thread sets its own)
        real_run = threading.Thread.run
        fake = self

        def run(thread: threading.Thread) -> None:
            with _Mode(fake):
                real_run(thread)

        monkeypatch.setattr(threading.Thread, "run", run)
        self._mode = _Mode(self)
        self._mode.__enter__()
        return self

    def uninstall(self) -> None:
        """Leave the tensor mode (the `fake_cuda` fixture does this before monkeypatch restores torch.cuda)."""
        self._mode.__exit__(None, None, None)


class _Cudart:
    """torch.cuda.cudart(): cudaHostRegister / cudaHostUnregister (0 is cudaSuccess; registering twice fails)."""

    def __init__(self, fake: FakeCuda) -> None:
        self.fake = fake

    def cudaHostRegister(self, ptr: int, size: int, flags: int) -> int:
        if ptr in self.fake.registered:
            return 712  # cudaErrorHostMemoryAlreadyRegistered
        self.fake.registered.add(ptr)
        return 0

    def cudaHostUnregister(self, ptr: int) -> int:
        if ptr not in self.fake.registered:
            return 713  # cudaErrorHostMemoryNotRegistered
        self.fake.registered.discard(ptr)
        return 0


# --- kernels with layout rules on CUDA ---------------------------------------------------------------------------


def _row_major(t: torch.Tensor) -> bool:
    return t.stride(1) == 1 and t.stride(0) >= max(1, t.shape[1])


def _col_major(t: torch.Tensor) -> bool:
    return t.stride(0) == 1 and t.stride(1) >= max(1, t.shape[0])


def _check_int_mm(a: torch.Tensor, b: torch.Tensor) -> None:
    # aten/src/ATen/native/cuda/Blas.cpp (_int_mm_out_cuda) and cuBLASLt's IMMA kernels (TN layout)
    if a.size(0) <= 16:
        raise RuntimeError(f"self.size(0) needs to be greater than 16, but got {a.size(0)}")
    if a.size(1) % 8 or b.size(1) % 8:
        raise RuntimeError("self.size(1) and mat2.size(1) need to be multiples of 8")
    if not (_row_major(a) and _col_major(b)):
        raise RuntimeError("CUBLAS_STATUS_NOT_SUPPORTED when calling cublasLtMatmul for int8: A must be row-major "
                           "and B column-major (TN)")  # fmt: skip


def _check_scaled_mm(fake: FakeCuda, a: torch.Tensor, b: torch.Tensor, kwargs: dict[str, Any], args: tuple) -> None:
    if (fake.props.major, fake.props.minor) < (8, 9):
        raise RuntimeError("torch._scaled_mm is only supported on CUDA devices with compute capability >= 9.0 or 8.9")
    if not _row_major(a):
        raise RuntimeError("mat1 must be row_major")
    if not _col_major(b):
        raise RuntimeError("mat2 must be col_major")
    if any(d % 16 for d in (*a.shape, b.shape[1])):
        raise RuntimeError(f"Expected both dimensions of mat1 and mat2 to be divisble by 16 but got {tuple(a.shape)} and "
                           f"{tuple(b.shape)}")  # fmt: skip
    for scale in (kwargs.get("scale_a"), kwargs.get("scale_b"), *args[2:4]):
        if isinstance(scale, torch.Tensor) and scale.dtype != torch.float32:
            raise RuntimeError("scale_a and scale_b must both be float (fp32) tensors.")


_MATMULS = {"matmul", "mm", "__matmul__", "bmm", "addmm", "linear"}
#: ops that launch a memory-bound kernel on the device (fills, copies, casts, elementwise arithmetic, random draws):
#: each costs its output's bytes / bytes_per_s on the stream. Ops not named here (views, empty allocations, metadata)
#: launch nothing.
_MEMORY_KERNELS = {"zero_", "fill_", "copy_", "clone", "contiguous", "to", "cuda", "zeros", "ones", "full", "zeros_like",
                   "ones_like", "full_like", "rand", "randn", "randint", "normal_", "uniform_", "random_", "mul", "mul_",
                   "add", "add_", "sub", "sub_", "div", "div_", "neg", "abs", "sum", "mean", "amax", "max", "min",
                   "__mul__", "__add__", "__sub__", "__truediv__", "__rmul__", "__radd__", "__rsub__", "__iadd__",
                   "__isub__", "__imul__", "sqrt", "exp", "where", "eq", "ne", "lt", "le", "gt", "ge", "__eq__",
                   "__lt__", "__le__", "__gt__", "__ge__", "all", "any", "isfinite"}  # fmt: skip


def _tf32_on() -> bool:
    """torch's TF32 switch as the torch version being modelled treats it (tests/fakes/tf32.py)."""
    from tests.fakes import tf32

    return tf32.on()


def _to_tf32(obj: Any) -> Any:
    """float32 tensors rounded to TF32's 10 mantissa bits (round to nearest on the 13 bits dropped)."""
    if isinstance(obj, torch.Tensor) and obj.dtype == torch.float32:
        bits = obj.contiguous().view(torch.int32)
        return _tag(((bits + 0x1000) & ~0x1FFF).view(torch.float32).reshape(obj.shape), device_of(obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to_tf32(o) for o in obj)
    return obj


_RANDOM = {"rand", "randn", "randint", "randperm", "normal", "random_", "uniform_", "normal_", "bernoulli", "multinomial",
           "rand_like", "randn_like", "randint_like", "exponential_", "bernoulli_"}  # fmt: skip


class _Mode(TorchFunctionMode):
    def __init__(self, fake: FakeCuda) -> None:
        super().__init__()
        self.fake = fake

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        owner = getattr(func, "__self__", None)
        if owner is torch.Tensor.device:
            return torch.device(device_of(args[0]))
        if owner is torch.Tensor.is_cuda:
            return device_of(args[0]).startswith("cuda")
        name = getattr(func, "__name__", "")
        if name == "is_pinned":
            return bool(getattr(args[0], "_bench_pinned", False)) or args[0].data_ptr() in self.fake.registered
        if name in ("to", "cuda", "cpu") and args and isinstance(args[0], torch.Tensor):
            return self._move(func, name, args, kwargs)
        if name == "pin_memory":
            out = args[0].clone()
            out._bench_pinned = True
            return _tag(out, "cpu")
        if name in ("item", "tolist") and args and device_of(args[0]) != "cpu":
            self.fake.drain(device_of(args[0]))  # a copy to the host waits for the stream
        if name == "numpy" and device_of(args[0]) != "cpu":
            raise TypeError(f"can't convert {device_of(args[0])} device type tensor to numpy. Use Tensor.cpu() to copy "
                            "the tensor to host memory first.")  # fmt: skip
        if name == "copy_":  # copies between devices are what copy_ is for
            where = device_of(args[0])
            if where == "cpu" and device_of(args[1]) != "cpu":
                self.fake.drain(device_of(args[1]))
            return self._ran(name, args, _tag(func(*args, **kwargs), where), where)
        target = self._target(name, args, kwargs)
        gen = kwargs.get("generator")
        if gen is not None and device_of(gen).split(":")[0] != target.split(":")[0]:
            raise RuntimeError(f"Expected a '{target.split(':')[0]}' device type for generator but found "
                               f"'{device_of(gen).split(':')[0]}'")  # fmt: skip
        if target != "cpu":
            self.fake.calls.append((name, target))
            if name == "_int_mm":
                _check_int_mm(args[0], args[1])
            elif name == "_scaled_mm":
                _check_scaled_mm(self.fake, args[0], args[1], kwargs, args)
                self.fake.fast_accum.append(bool(kwargs.get("use_fast_accum", False)))
            elif name in _MATMULS and _tf32_on():
                args = _to_tf32(args)
        return self._ran(name, args, _tag(func(*args, **kwargs), target), target)

    def _ran(self, name: str, args: tuple, out: Any, target: str) -> Any:
        """Count the output's memory on the device and queue the op's kernel on its stream."""
        if target == "cpu":
            return out
        for t in _tensors(out):
            if device_of(t) == target:
                self.fake.allocate(t)
        seconds = self.fake.kernel_seconds(name, args, out)
        if seconds is not None:
            self.fake.launch(target, seconds)
            self.fake.kernels.append((name, target, seconds))
        return out

    def _target(self, name: str, args: tuple, kwargs: dict[str, Any]) -> str:
        """Where the op runs: the `device=` it names, else the one device of its tensors; two devices raise."""
        if "device" in kwargs:
            target = self.fake.normalize(kwargs["device"])
            kwargs["device"] = "cpu"
            return target
        found = {device_of(t) for t in _tensors((args, kwargs)) if not (t.dim() == 0 and device_of(t) == "cpu")}
        if not found:
            found = {device_of(t) for t in _tensors((args, kwargs))} or {"cpu"}
        if len(found) > 1:
            a, b = sorted(found)[:2]
            raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, {b} and "
                               f"{a}! ({name})")  # fmt: skip
        return found.pop()

    def _move(self, func: Any, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        t = args[0]
        if device_of(t) != "cpu":
            self.fake.drain(device_of(t))  # torch's copies to the host are synchronous: the host waits for the stream
        if name == "cpu":
            out = func(*args, **kwargs)
            self.fake.to_host += device_of(t) != "cpu"
            return _tag(out.clone() if out is t and device_of(t) != "cpu" else out, "cpu")
        if name == "cuda":
            where = args[1] if len(args) > 1 else kwargs.pop("device", None)
            target = self.fake.normalize(where if where is not None else "cuda")
            return self._ran(name, args, _tag(t.clone(), target), target)
        target = device_of(t)
        rest = list(args[1:])
        for i, a in enumerate(rest):
            if isinstance(a, (str, torch.device)):
                target, rest[i] = self.fake.normalize(a), "cpu"
            elif isinstance(a, torch.Tensor):
                target = device_of(a)
        if "device" in kwargs:
            target, kwargs["device"] = self.fake.normalize(kwargs["device"]), "cpu"
        out = func(t, *rest, **kwargs)
        if out is t and target != device_of(t):
            out = t.clone()
        self.fake.to_host += target == "cpu" and device_of(t) != "cpu"
        return self._ran(name, args, _tag(out, target), target) if out is not t else _tag(out, target)


def install_in_worker(lane: str, **kwargs: Any) -> None:
    """runner.execute's worker_init for tests (pass functools.partial(install_in_worker, count=..., ...)): the
    worker process's torch.cuda becomes a FakeCuda(**kwargs), as the parent's is. Never undone: the worker ends with
    its lane. The fake's real arithmetic runs on one CPU thread: a worker stands for a GPU, not for the host's cores."""
    import pytest

    torch.set_num_threads(1)
    FakeCuda(**kwargs).install(pytest.MonkeyPatch())
