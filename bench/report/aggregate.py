"""Fleet aggregation, split by job (issue 13); this module re-exports the names callers and tests import:

- bench.report.rules     the thresholds a capacity report is built under (Rules, load_rules)
- bench.report.devices   per-device figures of one node report (device_rows: the one definition of a device's MAMF)
- bench.report.pool      verification workers (examine_all) and the auditor's policy (apply_policy)
- bench.report.capacity  the capacity report: build, aggregate, audit_capacity / verify_capacity
- bench.report.claims    claims parsed strictly and held against the tiers
"""

from __future__ import annotations

from bench.model.reports import CAPACITY_KIND, CAPACITY_READABLE, CAPACITY_SCHEMA_VERSION, CapacityReport
from bench.report.capacity import (
    IDENTITIES,
    RECOMPUTED,
    aggregate,
    audit_capacity,
    build,
    verify_capacity,
)
from bench.report.claims import ALIASES, KNOWN_PRECISIONS, UNITS, check_claim, parse_claim
from bench.report.devices import COLUMNS, SAMPLES_IDENTITY_MIN_DISTINCT, device_rows
from bench.report.pool import (
    PARALLEL_FROM,
    Examined,
    _examine,  # noqa: F401 - tests examine one input the way a worker does
    apply_policy,
    examine_all,
)
from bench.report.rules import DEFAULT_TOLERANCE, MAX_AGE_LIMIT_S, Baseline, Rules, RulesError, load_rules

__all__ = [
    "ALIASES", "CAPACITY_KIND", "CAPACITY_READABLE", "CAPACITY_SCHEMA_VERSION", "COLUMNS", "DEFAULT_TOLERANCE",
    "IDENTITIES", "KNOWN_PRECISIONS", "MAX_AGE_LIMIT_S", "PARALLEL_FROM", "RECOMPUTED", "SAMPLES_IDENTITY_MIN_DISTINCT", "UNITS",
    "Baseline", "CapacityReport", "Examined", "Rules", "RulesError", "aggregate", "apply_policy", "audit_capacity", "build",
    "check_claim", "device_rows", "examine_all", "load_rules", "parse_claim", "verify_capacity",
]  # fmt: skip
