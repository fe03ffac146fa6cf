"""bench.challenge.hostmem: the node's huge-page buffers are ordinary tensors (shape, dtype, contiguous, writable,
alive as long as a view is), and where the platform takes no advice they are torch.empty's."""

import gc
import mmap

import pytest
import torch

from bench.challenge import hostmem


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_huge_page_buffer_is_a_tensor_that_holds_its_mapping(dtype):
    t = hostmem.empty((300, 7000), dtype)
    assert t.shape == (300, 7000) and t.dtype == dtype and t.is_contiguous() and t.device.type == "cpu"
    view = t[299:]
    del t
    gc.collect()
    view.fill_(3)  # the mapping outlived the tensor it was made for
    assert float(view.float().sum()) == 3 * 7000


@pytest.mark.skipif(not hostmem.advisable(), reason="no MADV_HUGEPAGE on this platform")
def test_the_buffer_is_advised_for_huge_pages(monkeypatch):
    advised = []
    real = mmap.mmap

    class Spy(real):  # type: ignore[misc, valid-type]
        def madvise(self, option, *args):
            advised.append(option)
            return super().madvise(option, *args)

    monkeypatch.setattr(mmap, "mmap", Spy)
    hostmem.empty((1024, 1024))
    assert advised == [mmap.MADV_HUGEPAGE]


def test_without_the_advice_or_elements_it_is_torch_empty(monkeypatch):
    assert hostmem.empty((0, 5)).shape == (0, 5)
    monkeypatch.setattr(hostmem, "advisable", lambda: False)
    made = []
    real = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, **k: made.append(a) or real(*a, **k))
    t = hostmem.empty((64, 64))
    assert t.shape == (64, 64) and ((64, 64),) in made
