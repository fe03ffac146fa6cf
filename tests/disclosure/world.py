"""A small synthetic country for disclosure tests: signed node reports per site, one capacity report per cluster
(signed by the aggregator), declarations signed by the operator, and disclosures built through bench's own functions."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.disclosure import declaration as decl
from bench.disclosure import document as dd
from bench.disclosure.leaves import Store
from bench.model import intake, sign
from bench.model.reports import NodeReport
from bench.report import aggregate as agg
from bench.report.store import dumps
from tests.report import synthetic
from tests.report.fleet import NOW, node_report
from tests.report.synthetic import gpu_uuid

AS_OF = NOW


@dataclass
class Keys:
    node: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    aggregator: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    operator: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    auditor: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    discloser: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def kid(self, name: str) -> str:
        key = getattr(self, name)
        return sign.signer({"signature": sign.sign({}, key)})

    def policy(self, **kw) -> dd.Policy:
        base = {"aggregator_ids": frozenset({self.kid("aggregator")}), "auditor_id": self.kid("auditor"),
                    "operator_ids": frozenset({self.kid("operator")}), "node_ids": frozenset({self.kid("node")})}  # fmt: skip
        return dd.Policy(**{**base, **kw})


KEYS = Keys()

#: The host of each GPU this world's node reports name (node n, GPU i: synthetic.gpu_uuid), for proofs' owners.
HOSTS = {gpu_uuid(n, i): f"node{n:05d}" for n in range(256) for i in range(8)}


def proven(device: str, tflops: float, keys: Keys = KEYS) -> dict:
    """A proof's device entry as `bench challenge verify` writes it: committed by the node key for the GPU's host."""
    return {"device": device, "key_id": keys.kid("node"), "host": HOSTS.get(device), "tflops_lower_bound": tflops}


DECLARATION = """\
country = "Freedonia"
region = "{region}"
city = "{city}"
site = "{site}"
operator = "Example Compute Co."

[[clusters]]
name = "a"

[open_access]
share = 0.25
how_to_request = "https://example.invalid/apply"

[[networks]]
name = "National Compute Network"
role = "member"
since = 2025-06-01

[[planned]]
date = 2027-06-30
pflops = 50.0
precision = "bf16"
"""


def write_site(tmp: Path, region: str, city: str, site: str, nodes: list[int], *, gpus: int = 4,
               keys: Keys = KEYS, tflops: float = 700.0, power_w: float | None = None,
               memory_bytes: int | None = None) -> dict[str, Path]:  # fmt: skip
    """Node reports, the cluster's capacity report (aggregator-signed) and the signed declaration of one site."""
    base = tmp / region / city / site
    (base / "nodes").mkdir(parents=True)
    for n in nodes:
        data = node_report(n, [tflops + g for g in range(gpus)], keys.node)
        if memory_bytes is not None:  # what NVML says each GPU holds
            for gpu in data["inventory"]["nvml"]["gpus"]:
                gpu["memory_bytes"] = memory_bytes
            data = {k: x for k, x in data.items() if k != "signature"}
            data["signature"] = sign.sign(data, keys.node)
        if power_w:  # the telemetry a GPU run records while the matmul runs
            for m in data["measurements"]:
                m["details"]["telemetry"] = {"samples": 10, "duration_s": 5.0, "mean_power_w": power_w}
            data = {k: x for k, x in data.items() if k != "signature"}
            data["signature"] = sign.sign(data, keys.node)
        (base / "nodes" / f"{n}.json").write_text(dumps(data))
    inputs = [(str(p), p) for p in sorted((base / "nodes").glob("*.json"))]
    cap = agg.aggregate(inputs, now=NOW, trusted={keys.kid("node")},
                        rules=agg.Rules(max_age_s=7 * 86400))  # fmt: skip
    cap["signature"] = sign.sign(cap, keys.aggregator)
    (base / "capacity.json").write_text(dumps(cap))
    text = DECLARATION.format(region=region, city=city, site=site)
    (base / "declaration.toml").write_text(text)
    sig = decl.sign_text(text.encode(), keys.operator, NOW)
    (base / "declaration.toml.sig.json").write_text(dumps(sig))
    return {"capacity": base / "capacity.json", "declaration": base / "declaration.toml", "nodes": base / "nodes"}


def cpu_report(n: int, *, host_model: str | None, device_model: str, keys: Keys = KEYS) -> dict:
    """A signed report of CPU-only node `n`: one float32 MAMF on its CPU (`device_model`, the model its capacity row
    and the inventory count), its host inventory naming `host_model` as the CPU (None: unknown)."""
    dev = {"id": "cpu", "kind": "cpu", "name": device_model, "uuid": f"host-{n}", "isa_flags": ["avx512f", "fma"]}
    m = synthetic.matmul_measurement(1024, "float32", synthetic.samples(0.01, seed=n), dev, role="final", mamf=True,
                                     timer="perf_counter", start_utc="2026-11-28T10:00:00.000000Z",
                                     end_utc="2026-11-28T10:00:05.000000Z")  # fmt: skip
    host = {"hostname": f"cpu{n:05d}", "fingerprint": f"host-{n}", "cpu_model": host_model, "physical_cores": 56,
            "unavailable": {}}  # fmt: skip
    report = NodeReport(run_id=f"cpu-{n}", tool={"name": "bench", "version": "0.1.0", "git_commit": None},
                        command_line=["bench", "matmul"], config={},
                        inventory={"host": host, "nvml": {"available": False, "gpus": []}},
                        start_utc="2026-11-28T10:00:00.000000Z", end_utc="2026-11-28T10:05:00.000000Z",
                        measurements=[m])  # fmt: skip
    data = report.to_dict()
    data["signature"] = sign.sign(data, keys.node)
    return data


def write_cpu_site(tmp: Path, region: str, city: str, site: str, nodes: list[int], *, host_model: str | None,
                   device_model: str = "Intel Xeon Platinum 8480+", keys: Keys = KEYS) -> dict[str, Path]:  # fmt: skip
    """write_site's files for a site of CPU-only nodes (cpu_report)."""
    base = tmp / region / city / site
    (base / "nodes").mkdir(parents=True)
    for n in nodes:
        (base / "nodes" / f"{n}.json").write_text(dumps(cpu_report(n, host_model=host_model, device_model=device_model,
                                                                   keys=keys)))  # fmt: skip
    inputs = [(str(p), p) for p in sorted((base / "nodes").glob("*.json"))]
    cap = agg.aggregate(inputs, now=NOW, trusted={keys.kid("node")}, rules=agg.Rules(max_age_s=7 * 86400))
    cap["signature"] = sign.sign(cap, keys.aggregator)
    (base / "capacity.json").write_text(dumps(cap))
    text = DECLARATION.format(region=region, city=city, site=site)
    (base / "declaration.toml").write_text(text)
    (base / "declaration.toml.sig.json").write_text(dumps(decl.sign_text(text.encode(), keys.operator, NOW)))
    return {"capacity": base / "capacity.json", "declaration": base / "declaration.toml", "nodes": base / "nodes"}


def site_disclosure(tmp: Path, files: dict[str, Path], store: Store, *, keys: Keys = KEYS, policy: dd.Policy | None = None,
                    claims: list | None = None, audit: dict | None = None, proofs: list[Path] = (),
                    node_reports: bool = False) -> Path:  # fmt: skip
    policy = policy or keys.policy()
    d = decl.read(files["declaration"], operator_ids=policy.operator_ids, node_ids=policy.node_ids)
    doc = dd.site(d, [("a", store.add(files["capacity"]))], store, policy=policy,
                  proof_docs=[store.add(p) for p in proofs], as_of=AS_OF, claims_input=claims or [],
                  audit_input=audit, now=NOW,
                  node_docs=[store.add(p) for p in sorted(files["nodes"].glob("*.json"))] if node_reports else None)  # fmt: skip
    doc["signature"] = sign.sign(doc, keys.discloser)
    out = files["capacity"].parent / "disclosure.json"
    out.write_text(dumps(doc))
    store.add(out)
    return out


def rollup(level: str, name: str, children: list[Path], store: Store, out: Path, *, keys: Keys = KEYS,
           claims: list | None = None, audit: dict | None = None) -> Path:  # fmt: skip
    doc = dd.rollup(level, name, [store.add(c) for c in children], store, policy=keys.policy(), proof_docs=[],
                    as_of=AS_OF, claims_input=claims or [], audit_input=audit, now=NOW)  # fmt: skip
    doc["signature"] = sign.sign(doc, keys.discloser)
    out.write_text(dumps(doc))
    store.add(out)
    return out


def read(path: Path) -> dict:
    return intake.read_json(path).data


def country(tmp: Path) -> dict[str, Path]:
    """Freedonia: region North (city Alpha: sites A1, A2), region South (city Beta: site B1)."""
    store = Store()
    sites = {
        "A1": write_site(tmp, "North", "Alpha", "A1", [1, 2]),
        "A2": write_site(tmp, "North", "Alpha", "A2", [3]),
        "B1": write_site(tmp, "South", "Beta", "B1", [4, 5, 6]),
    }
    d = {k: site_disclosure(tmp, f, store) for k, f in sites.items()}
    d["Alpha"] = rollup("city", "Alpha", [d["A1"], d["A2"]], store, tmp / "alpha.json")
    d["Beta"] = rollup("city", "Beta", [d["B1"]], store, tmp / "beta.json")
    d["North"] = rollup("region", "North", [d["Alpha"]], store, tmp / "north.json")
    d["South"] = rollup("region", "South", [d["Beta"]], store, tmp / "south.json")
    d["Freedonia"] = rollup("country", "Freedonia", [d["North"], d["South"]], store, tmp / "freedonia.json")
    return d


def resign_doc(doc: dict, key: Ed25519PrivateKey | None = None) -> dict:
    doc = {k: v for k, v in doc.items() if k != "signature"}
    doc["signature"] = sign.sign(doc, key or KEYS.discloser)
    return doc


def write_disclosure(doc: dict, folder: Path) -> bytes:
    """tree.build's writer for tests: sign `doc` with the test discloser's key and write folder/disclosure.json; the
    bytes written."""
    doc["signature"] = sign.sign(doc, KEYS.discloser)
    raw = dumps(doc).encode("utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "disclosure.json").write_bytes(raw)
    return raw


def site_folders(tmp: Path, sites) -> Path:
    """tmp/in/REGION/CITY/SITE folders holding each site's capacity report and signed declaration alone (no node
    reports), for (region, city, site, nodes) in `sites`; returns tmp."""
    for region, city, site, nodes in sites:
        files = write_site(tmp / "raw", region, city, site, nodes)
        dest = tmp / "in" / region / city / site
        dest.mkdir(parents=True)
        for name in ("capacity.json", "declaration.toml", "declaration.toml.sig.json"):
            shutil.copy(files["capacity"].parent / name, dest / name)
    return tmp
