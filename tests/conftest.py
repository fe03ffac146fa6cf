import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Workloads set torch's thread count while they run; make sure no test leaks a change to the next."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
