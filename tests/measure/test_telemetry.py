import time

from bench.hardware import host, nvml
from bench.measure import telemetry
from tests.fakes.nvml import H100, FakeNvml, not_supported


def test_summary_of_levels_counters_and_bitmasks():
    samples = [
        {"t_s": 0.0, "sm_clock_mhz": 1980, "energy_j": 100.0, "throttle_reasons": 0},
        {"t_s": 1.0, "sm_clock_mhz": 1755, "energy_j": 400.0, "throttle_reasons": 4},
        {"t_s": 2.0, "sm_clock_mhz": 1800, "energy_j": 700.0, "throttle_reasons": 1, "power_w": None},
    ]
    out = telemetry.summarize(samples)
    assert out["samples"] == 3 and out["duration_s"] == 2.0
    assert out["sm_clock_mhz"] == {"min": 1755, "median": 1800, "max": 1980}
    assert out["energy_j"] == 600.0 and out["mean_power_w"] == 300.0
    assert out["throttle_reasons"] == 4  # the last sample's GpuIdle (1) is the window's edge, not the work
    assert "power_w" not in out  # never read: not invented


def test_sampler_reads_in_the_background_and_survives_reader_errors():
    calls = {"n": 0}

    def read():
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("sensor gone")
        return {"cpu_mhz": 2000.0 + calls["n"]}

    with telemetry.Sampler(read, interval_s=0.01) as s:
        time.sleep(0.08)
    assert len(s.samples) >= 4
    assert [x["t_s"] for x in s.samples] == sorted(x["t_s"] for x in s.samples)
    out = telemetry.summarize(s.samples)
    assert out["errors"] == ["OSError: sensor gone"] and out["cpu_mhz"]["min"] > 2000


def test_nvml_telemetry_reader_through_the_fake():
    fake = FakeNvml([H100])
    read, close = nvml.telemetry_reader(H100["uuid"], fake)
    first, second = read(), read()
    assert first["sm_clock_mhz"] == 1980 and first["power_w"] == 350.0 and first["temperature_c"] == 61
    assert second["energy_j"] - first["energy_j"] == 50.0
    close()
    assert fake.shutdown_called


def test_nvml_telemetry_field_failure_is_none_and_unknown_gpu_is_no_reader():
    fake = FakeNvml([H100], failing={(0, "power_now"): not_supported()})
    read, _ = nvml.telemetry_reader(H100["uuid"], fake)
    assert read()["power_w"] is None
    assert nvml.telemetry_reader("GPU-unknown", FakeNvml([H100])) is None


def test_cpu_telemetry_on_this_machine(monkeypatch, tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "energy_uj").write_text("5000000\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone: not added again
    monkeypatch.setattr(host, "POWERCAP", tmp_path)
    reading = host.cpu_telemetry()
    assert reading["energy_j"] == 5.0
    assert reading["cpu_mhz"] is None or reading["cpu_mhz"] > 0
    monkeypatch.setattr(host, "POWERCAP", tmp_path / "absent")
    assert host.cpu_telemetry()["energy_j"] is None
