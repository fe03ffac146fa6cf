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
