"""Auditor challenges: nonce-bound, seeded matrix products whose answers a CPU checks in O(n K), timed by the
auditor's own clock.

Protocol (docs/auditing.md, "Challenging a fleet"):
  1. issue    — the auditor signs {nonce, dtype, n, inner K, fold?, products per device, issue time, deadline, nodes?}
                (fold: float32's C_i is the exact sum of K / 64 float32 products of 64 terms, bench.challenge.fold).
  2. answer   — each node derives A_i (n x K), B_i (K x n) from (nonce, node, device UUID, i) with a counter-based
                generator (bench.challenge.generator, seeded by SHA-256) on each device, computes C_i = A_i.B_i (n x n:
                2 n^2 K FLOPs against n^2 outputs to copy and hash; K = n without the field), hashes C_i's rows
                into a Merkle root, and drops a small signed commitment (roots, UUIDs, inventory) as soon as the
                products exist; then it reveals the C_i themselves (gzip, dtype as computed) next to it, untimed.
  3. collect  — the auditor records, by its own clock, when each commitment arrived, in a signed receipt log.
  4. verify   — on a CPU: signatures and nonce; arrival before the deadline; each revealed C_i hashes to its committed
                root (so nothing computed after the commitment counts); Freivalds' check with the verifier's own secret
                vectors in float64 (bench.workloads.freivalds, tolerance from the dtype and K); every device UUID
                counted once; proven lower bound = verified FLOPs / (arrival - issue time), per node and for the fleet.

What it proves: that whoever answered had, at the time, at least that much throughput on matrices they could not have
prepared in advance. The bound includes input generation, transfers and hashing, and the commitment's transfer
time, so it is conservative.

The modules, by job: protocol (kinds, limits, operands, Merkle roots: what both sides compute alike), documents (the
files, issuing, signatures), node (warm, compute, commit, reveal: `answer`), auditor (`scan` for the collector,
`verify`). The names below are the package's public surface.
"""

from bench.challenge.auditor import Collected, Verdict, collect, device_ceiling, load_product, scan, verify
from bench.challenge.documents import (
    Challenge,
    check_kind,
    commit_name,
    commitment_problem,
    default_fold,
    default_inner,
    issue,
    load_challenge,
    read_document,
    read_json,
    receipts_doc,
    signature_problem,
)
from bench.challenge.node import (
    WARM_SIZES,
    Product,
    answer,
    commitment,
    compute,
    compute_all,
    fp32_pinned,
    fp32_refusal,
    operands,
    product,
    refusal,
    reveal,
    warm,
    warm_all,
)
from bench.challenge.protocol import (
    ARCHIVE_BYTES_PER_NAME,
    ARCHIVE_VERSIONS_PER_NAME,
    CHALLENGE_KIND,
    COMMIT_SUFFIX,
    COMMITMENT_KIND,
    DTYPES,
    MAX_COMMIT_BYTES,
    MAX_COMMIT_CONTAINERS,
    MAX_DEVICES,
    MAX_N,
    MAX_PRODUCTS,
    RECEIPTS_KIND,
    REVEAL_KIND,
    REVEAL_SUFFIX,
    SCHEMA_VERSION,
    ChallengeError,
    merkle_root,
    name_problem,
    operand,
    parse_utc,
    row_bytes,
    seed,
    utc,
)

__all__ = [
    "ARCHIVE_BYTES_PER_NAME",
    "ARCHIVE_VERSIONS_PER_NAME",
    "CHALLENGE_KIND",
    "COMMITMENT_KIND",
    "COMMIT_SUFFIX",
    "DTYPES",
    "MAX_COMMIT_BYTES",
    "MAX_COMMIT_CONTAINERS",
    "MAX_DEVICES",
    "MAX_N",
    "MAX_PRODUCTS",
    "RECEIPTS_KIND",
    "REVEAL_KIND",
    "REVEAL_SUFFIX",
    "SCHEMA_VERSION",
    "WARM_SIZES",
    "Challenge",
    "ChallengeError",
    "Collected",
    "Product",
    "Verdict",
    "answer",
    "check_kind",
    "collect",
    "commit_name",
    "commitment",
    "commitment_problem",
    "compute",
    "compute_all",
    "default_fold",
    "default_inner",
    "device_ceiling",
    "fp32_pinned",
    "fp32_refusal",
    "issue",
    "load_challenge",
    "load_product",
    "merkle_root",
    "name_problem",
    "operand",
    "operands",
    "parse_utc",
    "product",
    "read_document",
    "read_json",
    "receipts_doc",
    "refusal",
    "reveal",
    "row_bytes",
    "scan",
    "seed",
    "signature_problem",
    "utc",
    "verify",
    "warm",
    "warm_all",
]  # fmt: skip
