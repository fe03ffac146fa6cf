import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Workloads set torch's thread count while they run; make sure no test leaks a change to the next."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _signing_key_in_tmp(tmp_path_factory, monkeypatch):
    """Tests never read or create the user's own key: BENCH_KEY points into a temporary directory."""
    monkeypatch.setenv("BENCH_KEY", str(tmp_path_factory.getbasetemp() / "keys" / "node_ed25519.pem"))


@pytest.fixture
def fake_cuda(monkeypatch):
    """make(count=..., props=...) installs tests/fakes/cuda.py's FakeCuda: CUDA's rules enforced on CPU tensors."""
    from tests.fakes.cuda import FakeCuda

    made = []

    def make(**kwargs):
        fake = FakeCuda(**kwargs).install(monkeypatch)
        made.append(fake)
        return fake

    yield make
    for fake in reversed(made):
        fake.uninstall()
