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
