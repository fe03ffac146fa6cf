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


def test_buffers_are_carved_from_reserved_memory_without_overlapping():
    """reserve() maps and touches memory before a challenge; empty() carves buffers from it (on huge-page
    boundaries, none sharing a byte) until it is spent, then maps new ones."""
    hostmem.release()
    try:
        hostmem.reserve(5 * hostmem.ALIGN - 1)
        assert hostmem.reserved() == 5 * hostmem.ALIGN
        a = hostmem.empty((hostmem.ALIGN // 4 + 1,))  # one float over a huge page: two pages carved
        b = hostmem.empty((hostmem.ALIGN // 8, 2), torch.bfloat16)
        assert hostmem.reserved() == 2 * hostmem.ALIGN
        c = hostmem.empty((3, hostmem.ALIGN // 4))  # more than is left: a new mapping
        assert hostmem.reserved() == 2 * hostmem.ALIGN
        a.fill_(1), b.fill_(2), c.fill_(3)
        assert bool((a == 1).all()) and bool((b == 2).all()) and bool((c == 3).all())
        assert a.data_ptr() % hostmem.ALIGN == 0 and b.data_ptr() - a.data_ptr() == 2 * hostmem.ALIGN
    finally:
        hostmem.release()


def test_the_node_reserves_what_a_cpu_answer_writes(tmp_path):
    """node.host_bytes: one A and one B (each product's operands are written into the previous one's) and every
    product's C; a round answered from that reserve maps nothing new (reserved() ends at 0), and an unfolded
    product written into reserved memory (torch.mm's out) is a @ b's bits, float32 and bfloat16."""
    from bench import challenge as chl
    from bench.challenge import fold, node
    from bench.challenge.protocol import FOLD
    from tests.test_challenge import _issue

    _, ch = _issue(tmp_path, n=512, products=3, inner=1024, fold=FOLD)
    mib = 1 << 20
    kept = dict(fold._KERNEL)
    fold._KERNEL.update({"fold": "off (a test)", "micro": "off (a test)"})  # the torch path: no packed operands
    try:
        assert node.host_bytes(ch) == 2 * 2 * mib + 3 * 2 * mib  # 2 MiB each, on huge-page boundaries
    finally:
        fold._KERNEL.clear()
        fold._KERNEL.update(kept)
    assert node.host_bytes(ch, "cuda") == 0
    fold._KERNEL.update({"fold": "off (a test)", "micro": "off (a test)"})
    hostmem.release()
    try:
        hostmem.reserve(node.host_bytes(ch))
        products = chl.compute_all(ch, "node-a", {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"})
        assert hostmem.reserved() == 0 and len(products) == 3
        assert products[2].root == chl.merkle_root(chl.row_bytes(products[2].c))
    finally:
        hostmem.release()
        fold._KERNEL.clear()
        fold._KERNEL.update(kept)

    a, b = torch.randn(300, 200), torch.randn(200, 170)
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        got = node.multiply({"id": "cpu", "kind": "cpu"}, x, y)
        assert got.dtype == dtype and torch.equal(
            got.view(torch.int16 if dtype == torch.bfloat16 else torch.int32),
            (x @ y).view(torch.int16 if dtype == torch.bfloat16 else torch.int32),
        )


def test_the_reserve_holds_the_microkernels_packed_operands(tmp_path, monkeypatch):
    """Where the microkernel answers a folded challenge, node.host_bytes also counts its packed A and B
    (fold.packed_bytes), and a round answered from that reserve maps no memory afresh: the packed operands, allocated
    by the first product, come from the reserve (touched before the challenge) too. Without them in host_bytes the
    first product mapped 2 x 2 MiB here (256 MiB at n = 4096, K = 8192: about 0.6 s of system time in the window)."""
    from bench import challenge as chl
    from bench.challenge import fold, node
    from bench.challenge.protocol import FOLD
    from tests.test_challenge import _issue

    why = fold.prepare_micro()
    if why:
        pytest.skip(f"no microkernel here: {why}")
    monkeypatch.setattr(fold, "_KERNEL", {"fold": "off (a test)", "micro": fold._KERNEL["micro"]})
    monkeypatch.setattr(fold, "_PACKED", type(fold._PACKED)())  # no packed buffers left from other tests
    _, ch = _issue(tmp_path, n=512, products=3, inner=1024, fold=FOLD)
    mib = 1 << 20
    assert fold.kernel_name() == "micro" and fold.packed_bytes(512, 1024) == [2 * mib, 2 * mib]
    assert node.host_bytes(ch) == (2 * 2 + 3 * 2 + 2 * 2) * mib
    mapped: list[int] = []  # buffers the reserve could not hold (empty() maps them afresh)
    real = hostmem._carve

    def carve(size, dtype):
        got = real(size, dtype)
        if got is None:
            mapped.append(size)
        return got

    hostmem.release()
    try:
        hostmem.reserve(node.host_bytes(ch))
        monkeypatch.setattr(hostmem, "_carve", carve)
        products = chl.compute_all(ch, "node-a", {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"})
        assert not mapped and hostmem.reserved() == 0 and len(products) == 3
        assert products[2].root == chl.merkle_root(chl.row_bytes(products[2].c))
    finally:
        hostmem.release()
