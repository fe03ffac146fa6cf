"""pool.frozen_heap keeps the collector off the objects that exist when a block starts, and always lets them go."""

import gc

import pytest

from bench.report.pool import frozen_heap


def test_frozen_while_the_block_runs_and_released_after_it_even_on_error():
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("a hostile document")
    assert gc.get_freeze_count() == 0

    @frozen_heap()
    def inside() -> int:
        return gc.get_freeze_count()

    assert inside() > 0 and inside() > 0 and gc.get_freeze_count() == 0


def test_a_nested_block_asks_the_mark_not_the_collector(monkeypatch):
    """Inside a block (and in a process forked inside one), a nested block knows the heap is frozen from the module's
    mark: gc.get_freeze_count() walks every frozen object (tens of ms in a country's worker, once per level)."""
    asked = []
    real = gc.get_freeze_count

    def counting():
        asked.append(1)
        return real()

    monkeypatch.setattr(gc, "get_freeze_count", counting)
    with frozen_heap():
        asked.clear()
        with frozen_heap():
            assert real() > 0
        assert asked == [] and real() > 0  # not asked, and the outer freeze still in place
    assert real() == 0
