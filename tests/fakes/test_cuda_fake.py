"""The fake refuses what CUDA refuses: each rule once, so a test that passes under it would not fail on a GPU for it."""

import pytest
import torch

from tests.fakes.cuda import Props, device_of


def test_tensors_keep_their_device_and_mixing_devices_raises(fake_cuda):
    fake_cuda(count=2)
    a = torch.ones(4, 4, device="cuda:1")
    assert a.device == torch.device("cuda:1") and a.is_cuda
    assert (a @ a).device == torch.device("cuda:1")
    assert a.to(torch.float64).device == torch.device("cuda:1")
    assert a.cpu().device == torch.device("cpu") and a.to("cpu").device.type == "cpu"
    with pytest.raises(RuntimeError, match="same device"):
        a @ torch.ones(4, 4)
    with pytest.raises(RuntimeError, match="same device"):
        a @ torch.ones(4, 4, device="cuda:0")
    assert (a * torch.tensor(2.0)).device == torch.device("cuda:1")  # a 0-dim CPU scalar mixes, as in torch


def test_absent_ordinal_and_current_device_per_thread(fake_cuda):
    fake_cuda(count=2)
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.ones(1, device="cuda:2")
    assert torch.ones(1, device="cuda").device == torch.device("cuda:0")
    torch.cuda.set_device(1)
    assert torch.ones(1, device="cuda").device == torch.device("cuda:1")
    seen = []
    import threading

    t = threading.Thread(target=lambda: seen.append(torch.cuda.current_device()))
    t.start()
    t.join()
    assert seen == [0]  # the CUDA runtime's current device is per thread


def test_generator_must_live_on_the_output_device(fake_cuda):
    fake_cuda()
    gen = torch.Generator(device="cuda:0").manual_seed(1)
    assert device_of(gen) == "cuda:0" and gen.device == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
        torch.randint(0, 2, (8,), generator=gen)
    assert torch.randint(0, 2, (8,), generator=gen, device="cuda:0").is_cuda
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        torch.rand(3, generator=torch.Generator(), device="cuda:0")


def test_events_need_a_synchronize_of_their_device(fake_cuda):
    fake_cuda(count=2)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.device(1):
        start.record()
        end.record()
    torch.cuda.synchronize(0)
    with pytest.raises(RuntimeError, match="device not ready"):
        start.elapsed_time(end)
    torch.cuda.synchronize(1)
    assert start.elapsed_time(end) >= 0


def test_int8_and_fp8_layouts(fake_cuda):
    fake_cuda()
    a = torch.randint(-128, 128, (32, 64), dtype=torch.int8, device="cuda:0")
    b = torch.randint(-128, 128, (64, 32), dtype=torch.int8, device="cuda:0")
    with pytest.raises(RuntimeError, match="column-major"):
        torch._int_mm(a, b)
    assert torch._int_mm(a, b.t().contiguous().t()).dtype == torch.int32
    f = torch.ones(32, 32, device="cuda:0").to(torch.float8_e4m3fn)
    one = torch.ones((), device="cuda:0")
    with pytest.raises(RuntimeError, match="col_major"):
        torch._scaled_mm(f, f, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    torch._scaled_mm(f, f.t().contiguous().t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)


def test_scaled_mm_needs_ada_or_hopper(fake_cuda):
    fake_cuda(props=Props(name="NVIDIA A100-SXM4-80GB", major=8, minor=0))
    f = torch.ones(32, 32, device="cuda:0").to(torch.float8_e4m3fn)
    one = torch.ones((), device="cuda:0")
    with pytest.raises(RuntimeError, match="compute capability"):
        torch._scaled_mm(f, f.t().contiguous().t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)


def test_numpy_and_pinned_memory(fake_cuda):
    fake_cuda()
    with pytest.raises(TypeError, match="cuda:0 device type tensor to numpy"):
        torch.ones(2, device="cuda:0").numpy()
    host = torch.ones(2).pin_memory()
    assert host.is_pinned() and host.device.type == "cpu"


def test_caching_allocator_memory_is_not_free_to_mem_get_info(fake_cuda):
    fake = fake_cuda()
    fake.reserved[0], fake.allocated[0] = 100 * 10**9, 0
    free, total = torch.cuda.mem_get_info(0)
    assert total - free == 100 * 10**9
    assert torch.cuda.memory_reserved(0) - torch.cuda.memory_allocated(0) == 100 * 10**9


# --- what CUDA costs: the time model and memory capacity --------------------------------------------------------------


def _elapsed_s(start, end) -> float:
    return start.elapsed_time(end) / 1000.0


def test_a_kernel_takes_work_over_rate_queued_behind_the_previous_and_the_host_runs_ahead(fake_cuda):
    import time

    fake = fake_cuda(flops_per_s=2 * 32**3 / 50e-3)  # a 32^3 product: 50 ms on the fake's clock
    a = torch.ones(32, 32, device="cuda:0")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a @ a  # the stream is busy first: the events below are timed by the device, however late the host is
    start.record()
    t0 = time.perf_counter()
    for _ in range(5):
        a @ a
    end.record()
    assert time.perf_counter() < fake.streams["cuda:0"].clock  # launching returned long before the work is done
    torch.cuda.synchronize()
    assert time.perf_counter() >= fake.streams["cuda:0"].clock >= t0 + 5 * 50e-3  # synchronize waited for it
    assert _elapsed_s(start, end) == pytest.approx(5 * 50e-3, rel=1e-9)  # queued, one after another


def test_an_event_pair_times_the_stream_idle_while_the_host_is_late(fake_cuda):
    import time

    fake_cuda(flops_per_s=2 * 32**3 / 2e-3)  # 2 ms per product
    a = torch.ones(32, 32, device="cuda:0")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    time.sleep(0.02)  # the host is busy elsewhere; the stream has nothing to do
    a @ a
    end.record()
    torch.cuda.synchronize()
    assert _elapsed_s(start, end) >= 0.02 + 2e-3


def test_streams_are_per_device_and_memory_kernels_cost_bytes_over_bandwidth(fake_cuda):
    fake = fake_cuda(count=2, bytes_per_s=10**4 / 50e-3)  # 10 kB in 50 ms
    flush = torch.empty(10**4, dtype=torch.uint8, device="cuda:1")  # an allocation: no kernel
    assert fake.kernels == []
    flush.zero_()  # cuda:1's stream is busy first, so the pair below times the device, however late the host is
    events = {}
    for d in (0, 1):
        with torch.cuda.device(d):
            events[d] = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            events[d][0].record()
            if d == 1:
                flush.zero_()  # 10 kB: 50 ms, on cuda:1's stream only
            events[d][1].record()
    torch.cuda.synchronize(0)
    torch.cuda.synchronize(1)
    assert _elapsed_s(*events[1]) == pytest.approx(50e-3, rel=1e-9) and _elapsed_s(*events[0]) < 50e-3
    assert [k[:2] for k in fake.kernels] == [("zero_", "cuda:1")] * 2


def test_threads_of_one_process_launch_one_at_a_time(fake_cuda):
    import threading
    import time

    fake_cuda(count=2, launch_s=0.002)

    def launch(d):
        torch.cuda.set_device(d)
        e = torch.cuda.Event(enable_timing=True)
        for _ in range(10):
            e.record()

    threads = [threading.Thread(target=launch, args=(d,)) for d in (0, 1)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.perf_counter() - t0 >= 2 * 10 * 0.002  # the process's launch lock serialised the two devices


def test_a_copy_to_the_host_waits_for_the_stream(fake_cuda):
    import time

    fake = fake_cuda(flops_per_s=2 * 32**3 / 50e-3)  # 50 ms per product
    a = torch.ones(32, 32, device="cuda:0")
    for _ in range(5):
        a = a @ a / 100
    assert time.perf_counter() < fake.streams["cuda:0"].clock
    a.cpu()
    assert time.perf_counter() >= fake.streams["cuda:0"].clock
    a @ a
    torch.ones(1, device="cuda:0").mul_(2).item()
    assert time.perf_counter() >= fake.streams["cuda:0"].clock


def test_memory_runs_out_beyond_the_capacity_and_frees_with_the_last_tensor(fake_cuda):
    fake_cuda(props=Props(total_memory=2**20))
    x = torch.empty(2**19, dtype=torch.uint8, device="cuda:0")
    view = x[: 2**10]  # a view shares its storage: nothing more allocated
    y = torch.empty(2**19, dtype=torch.uint8, device="cuda:0")
    assert torch.cuda.memory_allocated(0) == 2**20
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory. Tried to allocate"):
        torch.empty(1, dtype=torch.uint8, device="cuda:0")
    del x
    assert torch.cuda.memory_allocated(0) == 2**20  # the view still holds the storage
    del view
    assert torch.cuda.memory_allocated(0) == 2**19
    assert torch.cuda.mem_get_info(0)[0] == 0  # the caching allocator keeps the freed block: not free to others
    torch.empty(2**19, dtype=torch.uint8, device="cuda:0")  # but torch reuses it
    del y
    torch.cuda.empty_cache()
    assert torch.cuda.mem_get_info(0)[0] == 2**20 - torch.cuda.memory_allocated(0)
