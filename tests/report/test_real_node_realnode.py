"""realnode (issue 26): tests.report.fleet's real node report (what `bench run` writes on an H100 node, every search
run by matmul_search.search itself) is what bench's verifier counts, and has the search's shape: candidates sampled up
to the sampler's cap, finals up to FINAL_MAX_ITERATIONS, one MAMF, one MSMF window."""

import hashlib
from collections import Counter

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import pool
from bench.workloads import matmul_search as ms
from tests.report.fleet import NOW, real_kernel_s, real_node_measurements, real_node_stream

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"realnode").digest())


def test_a_real_node_report_is_counted(tmp_path):
    path = tmp_path / "report.json"
    path.write_bytes(real_node_stream(3, KEY, gpus=1, precisions=("bfloat16",)))
    entry, _ = pool._examine((str(path), path), now=NOW)
    assert entry["status"] == "counted", entry.get("reasons")


def test_its_searches_have_the_shape_the_code_gives():
    measured = list(real_node_measurements(0, gpus=2, precisions=("float32", "bfloat16")))
    roles = Counter((m.device["id"], m.spec["precision"], m.details["search"]["role"]) for m in measured)
    for gpu in ("cuda:0", "cuda:1"):
        for precision in ("float32", "bfloat16"):
            assert roles[gpu, precision, "final"] == ms.FINAL_PER_BACKEND
            assert roles[gpu, precision, "msmf"] == 1
            assert roles[gpu, precision, "candidate"] > 100  # the coarse sweep over ~160 shapes, and the refines
    finals = [m for m in measured if m.details["search"]["role"] == "final"]
    assert sum(m.details["search"]["mamf"] for m in finals) == 4  # one MAMF per GPU x precision
    assert max(len(m.samples_s) for m in finals) == ms.FINAL_MAX_ITERATIONS  # bf16's finals reach the cap
    coarse = [m for m in measured if m.details["search"].get("phase") == "coarse"]
    assert max(len(m.samples_s) for m in coarse) == ms.CANDIDATE_MAX_ITERATIONS  # the search's candidate cap
    # timings as CUDA events give them: float32 milliseconds / 1000, near the modelled kernel time
    m = finals[0]
    assert all(float(np.float32(x * 1000)) / 1000 == x for x in m.samples_s[:100])
    shape = (m.spec["m"], m.spec["n"], m.spec["k"])
    assert 0.98 < m.summary["median_s"] / real_kernel_s(shape, m.spec["precision"]) < 1.04
    # the GPUs differ (no two devices' samples alike)
    assert measured[0].samples_s != measured[len(measured) // 2].samples_s
