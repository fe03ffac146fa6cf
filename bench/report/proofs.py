"""Challenge proofs: what `bench challenge verify` proved, per device, signed by the auditor's key.

A proof is the only source of the 'proven' tier. It is written by the auditor's own verifier after checking every
answer (bench.challenge.verify), signed with the auditor's key (never a node key), and read back here only when that
key is the one the reader names: a proof signed by any other key proves nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import intake, sign
from bench.report import verify as v
from bench.report.model import ReportError, parse_timestamp

PROOF_KIND = "bench.challenge-proof"
SCHEMA_VERSION = 1


def document(challenge: dict[str, Any], devices: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    """A signed proof: the challenge it answers (digest, nonce, dtype, n, issue time) and, per device UUID counted,
    its verified FLOPs, the elapsed time by the auditor's clock and the lower bound in TFLOPS."""
    data = {"kind": PROOF_KIND, "schema_version": SCHEMA_VERSION, "challenge_digest": sign.digest(challenge),
            "nonce": challenge["nonce"], "dtype": challenge["dtype"], "n": challenge["n"],
            "issued_utc": challenge["issued_utc"], "devices": devices}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


@dataclass
class Proven:
    """Per precision, per device UUID: the largest proven lower bound (TFLOPS) among the proofs read."""

    tflops: dict[str, dict[str, float]] = field(default_factory=dict)
    findings: list[v.Finding] = field(default_factory=list)

    def add(self, precision: str, device: str, tflops: float) -> None:
        per = self.tflops.setdefault(precision, {})
        per[device] = max(per.get(device, 0.0), tflops)

    def totals(self, counted: dict[str, set[str]] | None = None) -> dict[str, float]:
        """Sum per precision, over the devices in `counted` (precision -> UUIDs) when given."""
        return {p: sum(t for d, t in per.items() if counted is None or d in counted.get(p, set()))
                for p, per in self.tflops.items()}  # fmt: skip


def _check(data: Any, where: str, auditor_ids: set[str], max_age: dt.timedelta | None, now: dt.datetime) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("kind") != PROOF_KIND:
        raise ReportError(f"{where}: not a bench challenge proof")
    version = data.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise ReportError(f"{where}: unsupported proof schema_version {version!r}")
    valid, why = sign.check(data)
    if not valid:
        raise ReportError(f"{where}: {why}")
    kid = sign.signer(data)
    if kid not in auditor_ids:
        raise ReportError(f"{where}: signed by key {kid}, which is not the auditor's key: it proves nothing")
    if not isinstance(data.get("issued_utc"), str) or not isinstance(data.get("dtype"), str):
        raise ReportError(f"{where}: issued_utc and dtype should be strings")
    issued = parse_timestamp(data["issued_utc"], f"{where}: issued_utc")
    if issued > now + v.CLOCK_SKEW:
        raise ReportError(f"{where}: issued {issued.isoformat()}, in the future")
    if max_age is not None and now - issued > max_age:
        raise ReportError(f"{where}: the challenge is {now - issued} old, more than --max-age {max_age}")
    devices = data.get("devices")
    if not isinstance(devices, list):
        raise ReportError(f"{where}: devices should be a list")
    for i, d in enumerate(devices):
        ok = (isinstance(d, dict) and isinstance(d.get("device"), str) and isinstance(d.get("tflops_lower_bound"), (int, float))
              and not isinstance(d.get("tflops_lower_bound"), bool) and math.isfinite(d["tflops_lower_bound"])
              and d["tflops_lower_bound"] >= 0)  # fmt: skip
        if not ok:
            raise ReportError(f"{where}: devices[{i}] needs a device UUID and a finite, non-negative tflops_lower_bound")
    return devices


def read(paths: list[Path], auditor_ids: set[str], *, max_age: dt.timedelta | None = None,
         now: dt.datetime | None = None) -> Proven:  # fmt: skip
    """The proven lower bounds in `paths`; a proof that cannot be accepted is an error finding and adds nothing."""
    now = now or dt.datetime.now(dt.UTC)
    proven = Proven()
    for path in paths:
        try:
            data = intake.read_json(path).data
            devices = _check(data, str(path), auditor_ids, max_age, now)
        except ReportError as exc:
            proven.findings.append(v.Finding(v.ERROR, "proof", str(exc), str(path)))
            continue
        for d in devices:
            proven.add(data["dtype"], d["device"], float(d["tflops_lower_bound"]))
    return proven
