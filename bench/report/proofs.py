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

from bench.model import intake, sign
from bench.model.reports import ReportError, parse_timestamp
from bench.report import verify as v

PROOF_KIND = "bench.challenge-proof"
#: Who committed a proven device's answer: (the node key id that signed the commitment, the host name it committed).
Owner = tuple[str | None, str | None]
SCHEMA_VERSION = 1
#: The longest float32 sum the exact-row check holds tight (bench.challenge.protocol.ACCURACY_INNER["float32"] and
#: FOLD, repeated here so that reading a proof does not import torch; tests/adversarial/test_ninth_round_proofs.py
#: checks they agree): a float32 proof at a longer K proves float32 only when its challenge was folded in runs of it.
FLOAT32_RUN = 64


def float32_accurate_only(data: dict[str, Any]) -> bool:
    """Whether a proof's challenge was float32 at an unfolded K above FLOAT32_RUN (`challenge issue --no-fold
    --inner`, the square form, or the former default K = 2n): int8 x3 and bf16x3 pass its precision check (docs/
    proofs.md), so it proves float32-accurate throughput, not float32's. A proof without "inner" is square (K = n)."""
    inner = data.get("inner", data.get("n"))
    return data.get("dtype") == "float32" and isinstance(inner, int) and inner > FLOAT32_RUN and (
        data.get("fold") != FLOAT32_RUN)  # fmt: skip


def document(challenge: dict[str, Any], devices: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    """A signed proof: the challenge it answers (digest, nonce, dtype, n, inner K: n without the field, fold: the
    float32 run length or null, operands: the generator's version, issue time; fold and operands say how strict the
    precision check was: an unfolded float32 K above 64 lets int8 x3 pass, docs/proofs.md) and, per device UUID counted, who committed its answer (key_id: the node key that signed the commitment; host:
    the host name it committed), its verified FLOPs, the elapsed time by the auditor's clock and the lower bound in
    TFLOPS."""
    data = {"kind": PROOF_KIND, "schema_version": SCHEMA_VERSION, "challenge_digest": sign.digest(challenge),
            "nonce": challenge["nonce"], "dtype": challenge["dtype"], "n": challenge["n"],
            "inner": challenge.get("inner", challenge["n"]), "fold": challenge.get("fold"),
            "operands": challenge.get("operands", 1),
            "issued_utc": challenge["issued_utc"], "devices": devices}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


@dataclass
class Proven:
    """Per precision, per proof (its digest), per device UUID: the proven lower bound (TFLOPS). Bounds of different
    proofs are never added, not even of one challenge: one machine can answer challenge 1 as one device and
    challenge 2 as another, and within one challenge the operator decides which answers each verify run sees (by
    holding back reveals), so that each run credits another device over a shorter elapsed time. A fleet total is
    the largest total of any one proof."""

    tflops: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    findings: list[v.Finding] = field(default_factory=list)
    #: (precision, proof digest, device UUID) -> (key id, host name) that committed the answer: whose bound it is
    owners: dict[tuple[str, str, str], Owner] = field(default_factory=dict)

    def add(self, precision: str, device: str, tflops: float, challenge: str = "", owner: Owner | None = None) -> None:
        per = self.tflops.setdefault(precision, {}).setdefault(challenge, {})
        k = (precision, challenge, device)
        if owner is not None:  # one proof naming a device twice, for two owners: it belongs to neither
            self.owners[k] = owner if self.owners.get(k, owner) == owner else (None, None)
        per[device] = max(per.get(device, 0.0), tflops)

    def owned(self, reporters: dict[str, dict[str, set[Owner]]]) -> tuple[Proven, list[v.Finding]]:
        """Only the bounds that belong to the node reports counting each device: `reporters` is precision -> {device
        UUID -> the (signing key id, host name) of the node reports that counted it}. A bound counts only when the key
        that committed the challenge answer signed a report naming that device, for the host that committed it: a
        proof is no one else's to cite. Every bound left out has a finding that says why."""
        kept = Proven(findings=self.findings)
        out = []
        for precision, challenges in self.tflops.items():
            for digest, per in challenges.items():
                for device, t in per.items():
                    found = reporters.get(precision, {}).get(device)
                    if not found:
                        continue
                    owner = self.owners.get((precision, digest, device))
                    if owner is not None and owner[0] is not None and owner[1] is not None and owner in found:
                        kept.add(precision, device, t, digest, owner)
                        continue
                    theirs = ", ".join(f"key {k} for host {h!r}" for k, h in sorted(found, key=str))
                    why = ("names no committing key and host, so it cannot be held to an owner" if owner is None
                           or owner[0] is None or owner[1] is None
                           else f"was committed by key {owner[0]} for host {owner[1]!r}")  # fmt: skip
                    out.append(v.Finding(v.ERROR, "proof-owner", f"{device} {precision}: proof {digest[:16]} {why}; "
                                         f"the report counting it is signed by {theirs}: its bound counts nothing",
                                         f"proof {digest[:16]}"))  # fmt: skip
        return kept, out

    def bounds(self, precision: str, device: str) -> list[float]:
        return [per[device] for per in self.tflops.get(precision, {}).values() if device in per]

    def totals(
        self, counted: dict[str, set[str]] | dict[str, dict[str, float | None]] | None = None
    ) -> dict[str, float]:
        """Per precision, the largest sum over one challenge's devices; only over the devices in `counted` (precision
        -> UUIDs, or -> {UUID: the device's peak TFLOPS by bench's table, or None}) when given, each bound capped at
        that peak, and a device without a peak not counted (nothing bounds what it could have done)."""
        out = {}
        for precision, challenges in self.tflops.items():
            sums = []
            for per in challenges.values():
                total = 0.0
                for device, t in per.items():
                    if counted is None:
                        total += t
                        continue
                    allowed = counted.get(precision, set())
                    if device not in allowed:
                        continue
                    peak = allowed.get(device) if isinstance(allowed, dict) else math.inf
                    if peak is not None and not math.isnan(peak):
                        total += min(t, peak)
                sums.append(total)
            out[precision] = max(sums, default=0.0)
        return out

    def excess(self, counted: dict[str, dict[str, float | None]]) -> list[v.Finding]:
        """A finding for each proven bound above its device's peak (by bench's table, for the model the node reports
        name) or for a device whose peak bench does not know: the excess is not counted."""
        out = []
        for precision, peaks in counted.items():
            for device, peak in sorted(peaks.items()):
                bounds = self.bounds(precision, device)
                if not bounds:
                    continue
                if peak is None or math.isnan(peak):
                    out.append(v.Finding(v.ERROR, "proof-no-peak", f"{device} {precision}: proven {max(bounds):.4g} "
                                         "TFLOPS, but bench has no peak for it in the node reports: not counted"))  # fmt: skip
                elif max(bounds) > peak * (1 + 1e-9):
                    out.append(v.Finding(v.ERROR, "proof-above-peak", f"{device} {precision}: proven {max(bounds):.4g} "
                                         f"TFLOPS, above its peak of {peak:.4g} TFLOPS by bench's table: counted at the "
                                         "peak (the challenge was answered by other hardware, or a clock is wrong)"))  # fmt: skip
        return out


def _check(
    data: Any, where: str, auditor_ids: set[str], max_age: dt.timedelta | None, now: dt.datetime
) -> list[dict[str, Any]]:
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
    if not all(isinstance(data.get(k), str) for k in ("issued_utc", "dtype", "challenge_digest")):
        raise ReportError(f"{where}: issued_utc, dtype and challenge_digest should be strings")
    if float32_accurate_only(data):
        raise ReportError(f"{where}: a float32 proof of an unfolded K = {data.get('inner', data.get('n'))} challenge: "
                          "int8 x3 and bf16x3 pass it, so it proves float32-accurate throughput, not float32")  # fmt: skip
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
            raise ReportError(
                f"{where}: devices[{i}] needs a device UUID and a finite, non-negative tflops_lower_bound"
            )
        if not all(isinstance(d.get(k), (str, type(None))) for k in ("key_id", "host")):
            raise ReportError(f"{where}: devices[{i}]: key_id and host should be strings")
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
        digest = sign.digest(data)
        for d in devices:
            proven.add(data["dtype"], d["device"], float(d["tflops_lower_bound"]), digest,
                       (d.get("key_id"), d.get("host")))  # fmt: skip
    return proven
