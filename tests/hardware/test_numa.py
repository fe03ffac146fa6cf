"""Page placement as the kernel reports it (move_pages(2) in query mode) against the nodes sysfs gives each CPU."""

import numpy as np
import pytest

from bench.hardware import numa

HAS_NODES = bool(numa.cpu_nodes())


def test_cpulists_parse_as_the_kernel_writes_them():
    assert numa.parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert numa.parse_cpulist("") == set()


def fake_topology(tmp_path, lists):
    for node, cpus in lists.items():
        (tmp_path / f"node{node}").mkdir()
        (tmp_path / f"node{node}" / "cpulist").write_text(cpus + "\n")
    return tmp_path


def test_nodes_of_cpus_from_a_two_socket_topology(tmp_path):
    root = fake_topology(tmp_path, {0: "0-7,16-23", 1: "8-15,24-31"})
    assert numa.nodes_of([9], root) == {1} and numa.nodes_of([0, 31], root) == {0, 1} and not numa.nodes_of([99], root)


@pytest.mark.skipif(not HAS_NODES, reason="no NUMA nodes in sysfs here")
def test_untouched_pages_are_absent_and_touched_ones_are_on_a_node():
    region = numa.mmap.mmap(-1, 2**23)  # 8 MiB of fresh anonymous memory: no page touched yet (a malloc could
    buf = np.frombuffer(region, dtype=np.float64)  # reuse heap pages an earlier test touched)
    assert set(numa.page_nodes(buf.ctypes.data, buf.nbytes)) == {-2}  # ENOENT: not present
    buf.fill(1.0)
    found = numa.page_nodes(buf.ctypes.data, buf.nbytes)
    assert len(found) >= buf.nbytes // numa.mmap.PAGESIZE - 1  # every whole page (8 MiB is under MAX_PAGES_CHECKED)
    assert set(found) <= set(numa.cpu_nodes())


@pytest.mark.skipif(not HAS_NODES, reason="no NUMA nodes in sysfs here")
def test_placement_is_on_node_only_when_every_page_checked_is_there(tmp_path, monkeypatch):
    buf = np.ones(2**18)
    cpu = min(next(iter(numa.cpu_nodes().values())))
    assert numa.placement(buf.ctypes.data, buf.nbytes, [cpu])["on_node"]
    # the same pages, judged against a topology that puts this CPU on another node
    other = fake_topology(tmp_path, {0: str(cpu + 1), 7: str(cpu)})
    where = numa.placement(buf.ctypes.data, buf.nbytes, [cpu], other)
    assert not where["on_node"] and where["expected_nodes"] == [7] and "off the bound" in where["why"]
    monkeypatch.setattr(numa, "page_nodes", lambda *a, **k: (_ for _ in ()).throw(OSError("seccomp")))
    assert not numa.placement(buf.ctypes.data, buf.nbytes, [cpu])["on_node"]  # unknown is never 'bound'
