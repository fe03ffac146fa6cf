import pytest

from bench.hardware import nvml
from tests.fakes.nvml import H100, FakeNvml, NVMLError, not_supported


def test_no_driver_is_one_clear_reason_not_an_error():
    fake = FakeNvml(init_error=NVMLError(12, "NVML Shared Library Not Found"))
    inv = nvml.gpu_inventory(fake)
    assert inv == {"available": False, "reason": "NVML unavailable: NVML Shared Library Not Found", "gpus": []}


def test_binding_not_installed(monkeypatch):
    monkeypatch.setattr(nvml, "load_nvml", lambda: None)
    inv = nvml.gpu_inventory()
    assert not inv["available"] and "not installed" in inv["reason"]


def test_driver_without_gpus():
    inv = nvml.gpu_inventory(FakeNvml())
    assert not inv["available"] and inv["gpus"] == [] and inv["driver_version"] == "550.54.15"


def test_every_field_of_every_gpu():
    second = {**H100, "uuid": "GPU-aaaa", "serial": "2", "bus": "00000000:2A:00.0", "nvlinks": [1] * 16 + [0, 0]}
    fake = FakeNvml([H100, second])
    inv = nvml.gpu_inventory(fake)
    assert inv["available"] and inv["reason"] is None
    assert inv["driver_version"] == "550.54.15" and inv["cuda_driver_version"] == "12.4"
    g0, g1 = inv["gpus"]
    assert g0 == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-6f0e1c2a-1111-2222-3333-444455556666",
        "serial": "1652123456789",
        "board_id": 6400,
        "pci_bus_id": "00000000:18:00.0",
        "memory_bytes": 85520809984,
        "max_sm_clock_mhz": 1980,
        "max_memory_clock_mhz": 2619,
        "power_limit_w": 700.0,
        "ecc_enabled": True,
        "compute_capability": "9.0",
        "nvlink_links_up": 18,
        "mig_enabled": False,
        "unavailable": {},
    }
    assert g1["nvlink_links_up"] == 16 and g1["uuid"] == "GPU-aaaa"
    assert fake.shutdown_called


def test_bytes_from_old_bindings_are_decoded():
    inv = nvml.gpu_inventory(FakeNvml([H100], bytes_strings=True))
    assert inv["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3" and inv["driver_version"] == "550.54.15"


@pytest.mark.parametrize(
    "call, field",
    [("serial", "serial"), ("power", "power_limit_w"), ("ecc", "ecc_enabled"), ("nvlink", "nvlink_links_up")],
)
def test_one_failing_call_marks_one_field_unavailable(call, field):
    inv = nvml.gpu_inventory(FakeNvml([H100], failing={(0, call): not_supported()}))
    gpu = inv["gpus"][0]
    assert gpu[field] is None
    assert gpu["unavailable"] == {field: "NVMLError: Not Supported"}
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"


def test_gpu_without_handle_is_listed_with_reasons():
    inv = nvml.gpu_inventory(FakeNvml([H100, H100], failing={(1, "handle"): NVMLError(15, "GPU is lost")}))
    lost = inv["gpus"][1]
    assert lost["index"] == 1 and lost["uuid"] is None
    assert lost["unavailable"]["uuid"] == "no handle: GPU is lost"
    assert inv["gpus"][0]["uuid"] == H100["uuid"]


def test_gpu_without_nvlink_counts_zero_links_up():
    inv = nvml.gpu_inventory(FakeNvml([{**H100, "nvlinks": [0] * 4}]))
    assert inv["gpus"][0]["nvlink_links_up"] == 0


def test_the_real_binding_without_a_driver_does_not_crash():
    inv = nvml.gpu_inventory()
    assert isinstance(inv["available"], bool)
    if not inv["available"]:
        assert inv["reason"]


def test_telemetry_of_a_mig_instance_reads_its_parent_gpu():
    """Issue 16.8: NVML refuses clocks, power and temperature for a MIG instance; reading them from its own handle
    gave a reader whose every field was silently None."""
    fake = FakeNvml([H100])
    fake.mig_instances["MIG-1234"] = 0
    read, close = nvml.telemetry_reader("MIG-1234", fake)
    sample = read()
    close()
    assert sample["sm_clock_mhz"] == 1980 and sample["power_w"] == 350.0
    assert sample["scope"].startswith("parent GPU")
    assert fake.inits == 0


def test_a_failed_uuid_lookup_shuts_nvml_down_again():
    fake = FakeNvml([H100])
    assert nvml.telemetry_reader("GPU-not-here", fake) is None
    assert fake.inits == 0  # every nvmlInit matched by an nvmlShutdown


def test_cpu_affinity_from_nvml():
    fake = FakeNvml([{**H100, "cpus": (1, 3)}])
    assert nvml.cpu_affinity(H100["uuid"], fake) == [1, 3]
    assert nvml.cpu_affinity("GPU-other", fake) is None and fake.inits == 0


def test_a_gpu_in_mig_mode_lists_its_instances():
    """Measurements of a MIG instance name its MIG- UUID: the inventory must list it, or verify cannot place it."""
    fake = FakeNvml([{**H100, "mig": (1, 1)}])
    fake.mig_slots = {"MIG-aaaa": (0, 0, 60, 40 * 2**30), "MIG-bbbb": (0, 3, 16, 10 * 2**30)}
    gpu = nvml.gpu_inventory(fake)["gpus"][0]
    assert gpu["mig_enabled"] is True
    assert [(d["index"], d["uuid"], d["sm_count"], d["memory_bytes"]) for d in gpu["mig_devices"]] == [
        (0, "MIG-aaaa", 60, 40 * 2**30), (3, "MIG-bbbb", 16, 10 * 2**30)]  # fmt: skip
    assert "mig_devices" not in nvml.gpu_inventory(FakeNvml([H100]))["gpus"][0]


def test_a_mig_instance_records_its_gpu_instance_id_not_its_slot():
    """dcgm-exporter labels a MIG instance's series GPU_I_ID = its GPU instance id; NVML's handle slot is another number."""
    fake = FakeNvml([{**H100, "mig": (1, 1)}])
    fake.mig_slots = {"MIG-aaaa": (0, 0, 60, 40 * 2**30), "MIG-bbbb": (0, 3, 16, 10 * 2**30)}
    fake.mig_gi_ids = {"MIG-aaaa": 1, "MIG-bbbb": 13}
    migs = nvml.gpu_inventory(fake)["gpus"][0]["mig_devices"]
    assert [(d["index"], d["gpu_instance_id"]) for d in migs] == [(0, 1), (3, 13)]
    fake.mig_gi_ids = {}  # an NVML that does not answer: the instance is still listed, without the id
    assert [d["uuid"] for d in nvml.gpu_inventory(fake)["gpus"][0]["mig_devices"]] == ["MIG-aaaa", "MIG-bbbb"]
    migs = nvml.gpu_inventory(fake)["gpus"][0]["mig_devices"]
    assert all(d["gpu_instance_id"] is None and "gpu_instance_id" in d["unavailable"] for d in migs)


def test_throttle_reasons_fall_back_to_the_older_call():
    """A binding with the R535 name on an older driver: the symbol is missing, every read failed."""
    fake = FakeNvml([{**H100, "reasons": 4}])

    def missing(h):
        raise NVMLError(13, "Function Not Found")

    fake.nvmlDeviceGetCurrentClocksEventReasons = missing
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 4
    read, close = nvml.telemetry_reader(H100["uuid"], fake)
    assert read()["throttle_reasons"] == 4
    close()
