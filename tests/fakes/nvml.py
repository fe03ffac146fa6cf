"""A small stand-in for the pynvml module: the calls bench makes, with per-GPU data and injectable failures.

Only the boundary is faked (what nvidia-ml-py exposes); bench's own code runs unchanged above it.
"""

from __future__ import annotations

from types import SimpleNamespace


class NVMLError(Exception):
    def __init__(self, value: int, text: str) -> None:
        super().__init__(text)
        self.value = value


def not_supported() -> NVMLError:
    return NVMLError(3, "Not Supported")


H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-6f0e1c2a-1111-2222-3333-444455556666",
    "serial": "1652123456789",
    "board_id": 6400,
    "mig": (0, 0),
    "cpus": (0, 1),
    "bus": "00000000:18:00.0",
    "memory": 85520809984,
    "sm_clock": 1980,
    "mem_clock": 2619,
    "power_mw": 700000,
    "ecc": (1, 1),
    "cc": (9, 0),
    "nvlinks": [1] * 18,
}


class FakeNvml:
    NVMLError = NVMLError
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_FEATURE_ENABLED = 1
    NVML_NVLINK_MAX_LINKS = 18
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus=(), init_error=None, driver="550.54.15", cuda=12040, failing=None, bytes_strings=False):
        self.gpus = [dict(g) for g in gpus]
        self.init_error = init_error
        self.driver, self.cuda = driver, cuda
        self.failing = failing or {}  # {(gpu index, call name): NVMLError}
        self.bytes_strings = bytes_strings
        self.shutdown_called = False
        self.inits = 0  # NVML counts nvmlInit calls; each needs its nvmlShutdown
        #: MIG instances by UUID: {uuid: parent GPU index}; their handles are ("mig", uuid)
        self.mig_instances = {}
        #: MIG instances as the inventory enumerates them: {uuid: (parent GPU index, slot, SMs, memory bytes)}
        self.mig_slots = {}
        #: GPU instance id of each MIG instance by UUID (differs from its slot index, as on real GPUs)
        self.mig_gi_ids = {}

    def _str(self, s):
        return s.encode() if self.bytes_strings else s

    def _get(self, handle, call, key):
        if isinstance(handle, tuple):  # a MIG instance: NVML refuses clocks, power, temperature and energy for it
            raise not_supported()
        err = self.failing.get((handle, call))
        if err is not None:
            raise err
        return self.gpus[handle][key]

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self):
        if self.inits <= 0:
            raise NVMLError(1, "Uninitialized")
        self.inits -= 1
        self.shutdown_called = True

    def nvmlSystemGetDriverVersion(self):
        return self._str(self.driver)

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        err = self.failing.get((i, "handle"))
        if err is not None:
            raise err
        return i

    def nvmlDeviceGetName(self, h):
        return self._str(self._get(h, "name", "name"))

    def nvmlDeviceGetUUID(self, h):
        if isinstance(h, tuple):
            err = self.failing.get((h, "uuid"))  # {(("mig", uuid), "uuid"): NVMLError}: a MIG instance's UUID unread
            if err is not None:
                raise err
            return self._str(h[1])
        return self._str(self._get(h, "uuid", "uuid"))

    def nvmlDeviceGetSerial(self, h):
        return self._str(self._get(h, "serial", "serial"))

    def nvmlDeviceGetBoardId(self, h):
        return self._get(h, "board_id", "board_id")

    def nvmlDeviceGetMigMode(self, h):
        return self._get(h, "mig", "mig")

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, i):
        for uuid, (parent, slot, _, _) in self.mig_slots.items():
            if parent == h and slot == i:
                return ("mig", uuid)
        raise NVMLError(6, "Not Found")

    def nvmlDeviceGetGpuInstanceId(self, h):
        # NVML answers only for a MIG device handle; a whole GPU has no GPU instance
        if not (isinstance(h, tuple) and h[0] == "mig"):
            raise NVMLError(3, "Not Supported")
        if h[1] not in self.mig_gi_ids:
            raise NVMLError(3, "Not Supported")
        return self.mig_gi_ids[h[1]]

    def nvmlDeviceGetAttributes(self, h):
        return SimpleNamespace(multiprocessorCount=self.mig_slots[h[1]][2])

    def nvmlDeviceGetCpuAffinity(self, h, words):
        mask = sum(1 << c for c in self._get(h, "cpus", "cpus"))
        return [(mask >> (64 * i)) & (2**64 - 1) for i in range(words)]

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=self._str(self._get(h, "pci", "bus")))

    def nvmlDeviceGetMemoryInfo(self, h):
        if isinstance(h, tuple):
            return SimpleNamespace(total=self.mig_slots[h[1]][3], free=0, used=0)
        return SimpleNamespace(total=self._get(h, "memory", "memory"), free=0, used=0)

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return self._get(h, "clock", "sm_clock" if clock == self.NVML_CLOCK_SM else "mem_clock")

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return self._get(h, "power", "power_mw")

    def nvmlDeviceGetEccMode(self, h):
        return self._get(h, "ecc", "ecc")

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return self._get(h, "cc", "cc")

    def nvmlDeviceGetNvLinkState(self, h, link):
        links = self._get(h, "nvlink", "nvlinks")
        if link >= len(links):
            raise NVMLError(2, "Invalid Argument")
        return links[link]

    # telemetry
    def nvmlDeviceGetHandleByUUID(self, uuid):
        if self.inits <= 0:
            raise NVMLError(1, "Uninitialized")
        if uuid in self.mig_instances:
            return ("mig", uuid)
        for i, g in enumerate(self.gpus):
            if g["uuid"] == uuid:
                return i
        raise NVMLError(13, "Not Found")

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, h):
        if not (isinstance(h, tuple) and h[0] == "mig"):
            raise NVMLError(2, "Invalid Argument")
        return self.mig_instances[h[1]]

    def nvmlDeviceGetClockInfo(self, h, clock):
        return self._get(h, "clock_now", "sm_clock")

    def nvmlDeviceGetPowerUsage(self, h):
        return self._get(h, "power_now", "power_mw") // 2

    def nvmlDeviceGetTemperature(self, h, sensor):
        return self._get(h, "temperature", "temperature_c") if "temperature_c" in self.gpus[h] else 61

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._get(h, "reasons", "reasons") if "reasons" in self.gpus[h] else 0

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self.energy_mj = getattr(self, "energy_mj", 1_000_000) + 50_000
        return self.energy_mj


# --- what bench doctor reads (bench.hardware.health) ---------------------------------------------------------------------


def _health_calls(cls):
    cls.NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    cls.NVML_VOLATILE_ECC = 0

    def read(self, h, call, default):
        self.gpus[h].setdefault(call, default)
        return self._get(h, call, call)  # raises what `failing` injects for (h, call)

    def processes(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in read(self, h, "processes", [])]

    def ecc_errors(self, h, kind, counter):
        return read(self, h, "ecc_errors", 0)

    def persistence(self, h):
        return read(self, h, "persistence", 1)

    cls.nvmlDeviceGetComputeRunningProcesses = processes
    cls.nvmlDeviceGetTotalEccErrors = ecc_errors
    cls.nvmlDeviceGetPersistenceMode = persistence
    return cls


_health_calls(FakeNvml)
