"""A disclosure carries accelerator memory beyond 2^53 bytes exactly (a decimal string), at and across the boundary."""

import pytest

from bench.disclosure import document as dd
from bench.disclosure.leaves import Store
from bench.model.reports import read_count
from tests.disclosure import world

LIMIT = 2**53


@pytest.mark.parametrize(
    "per_gpu, gpus, total",
    [
        (LIMIT - 1, 1, LIMIT - 1),
        (2**51, 4, LIMIT),
        (85 * 10**14, 8, 68 * 10**15),  # 68 PB: the fleet benchmark's crash, here in one site
    ],
)
def test_memory_at_the_boundary_is_exact_and_the_disclosure_signs_and_verifies(tmp_path, per_gpu, gpus, total):
    store = Store()
    files = world.write_site(tmp_path, "North", "Alpha", "A1", [1], gpus=gpus, memory_bytes=per_gpu)
    doc = world.read(world.site_disclosure(tmp_path, files, store))
    assert doc["accelerator_memory_bytes"] == str(total) and read_count(doc["accelerator_memory_bytes"]) == total
    assert dd.verify(doc, Store(tmp_path)) == []


def test_one_past_the_boundary_across_two_sites_rolls_up_exactly(tmp_path):
    store = Store()
    a = world.write_site(tmp_path, "North", "Alpha", "A1", [1], gpus=1, memory_bytes=2**52)
    b = world.write_site(tmp_path, "North", "Alpha", "A2", [2], gpus=1, memory_bytes=2**52 + 1)
    city = world.rollup("city", "Alpha", [world.site_disclosure(tmp_path, a, store), world.site_disclosure(tmp_path, b, store)],
                        store, tmp_path / "alpha.json")  # fmt: skip
    doc = world.read(city)
    assert doc["accelerator_memory_bytes"] == str(LIMIT + 1)
    assert dd.verify(doc, Store(tmp_path)) == []
