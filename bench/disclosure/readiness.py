"""Readiness from the node reports a site's capacity reports counted: interconnect bus bandwidth per node class,
memory bandwidth, training MFU and measured TFLOPS per watt — figures a capacity report does not carry.

A node class is the node's accelerators ("8x NVIDIA H100 80GB HBM3"; a CPU-only node is its CPU model). Per node:
the best all-reduce bus bandwidth (nccl-tests' busbw) of its ok comm measurements, the best STREAM-style bandwidth of
its ok membw measurements, the best MFU of its ok training runs, and the median over its matmul devices of median TFLOPS over
the mean power the telemetry recorded while it ran. A site reports the median over the nodes of each class. Only node
reports whose digest a counted capacity report lists are used, and only when their signature verifies; all of this is
*reported* (signed by node keys). A roll-up combines its children's classes weighted by node count (stated in each
figure's derivation), so it is re-derivable from the level below.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from bench.disclosure.kpis import CATEGORY_OF
from bench.model import intake, sign

FIGURES = ("busbw_gbps", "membw_gbps", "train_mfu", "tflops_per_watt")


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1e12 else None


def node_class(data: dict[str, Any]) -> str:
    inventory = data.get("inventory") if isinstance(data.get("inventory"), dict) else {}
    nvml = inventory.get("nvml") if isinstance(inventory.get("nvml"), dict) else {}
    gpus = [g for g in nvml.get("gpus", []) if isinstance(g, dict)] if isinstance(nvml.get("gpus"), list) else []
    names = Counter(str(g.get("name")) for g in gpus if isinstance(g.get("name"), str))
    if names:
        (name, _), *_ = names.most_common(1)
        return f"{len(gpus)}x {name}"[:200]
    measured = [m.get("device") for m in data.get("measurements", []) if isinstance(m, dict)] \
        if isinstance(data.get("measurements"), list) else []  # fmt: skip
    cuda = {d.get("uuid"): d.get("name") for d in measured if isinstance(d, dict) and d.get("kind") == "cuda"
            and isinstance(d.get("name"), str)}  # fmt: skip
    if cuda:  # no NVML inventory: the GPUs it measured (a GPU node is never classed by its host CPU)
        (name, _), *_ = Counter(cuda.values()).most_common(1)
        return f"{len(cuda)}x {name}"[:200]
    host = inventory.get("host") if isinstance(inventory.get("host"), dict) else {}
    cpu = host.get("cpu_model")
    if not isinstance(cpu, str) or not cpu:  # no model in the inventory: the CPU device it measured, as counted
        cpu = next((d.get("name") for d in measured if isinstance(d, dict) and d.get("kind") == "cpu"
                    and isinstance(d.get("name"), str) and d.get("name")), None)  # fmt: skip
    return f"{CPU_PREFIX}{cpu}"[:200] if cpu else "CPU node"


#: The class of a CPU-only node: this prefix and its CPU model.
CPU_PREFIX = "CPU "


def check_classes(classes: list[dict[str, Any]], inventory: list[dict[str, Any]]) -> None:
    """Each CPU node class must name a CPU model the disclosure's inventory counts: the class is the host's
    self-described cpu_model, the inventory the model of the CPU device measured, and a node report whose two differ
    would put a CPU on the page that nobody measured. ValueError naming the class otherwise."""
    cpus = sorted(r["model"] for r in inventory if r.get("kind") == "cpu")
    for c in classes:
        name = str(c.get("node_class"))
        if name.startswith(CPU_PREFIX) and name[len(CPU_PREFIX) :] not in cpus:
            raise ValueError(f"readiness class {name!r} names no CPU model the inventory counts "
                             f"({', '.join(cpus) or 'no CPU'}): a CPU node's class must be the CPU it measured")  # fmt: skip


def node_figures(data: dict[str, Any]) -> dict[str, Any]:
    """A node report's readiness figures (None where it measured nothing of the kind)."""
    best: dict[str, float | None] = {"busbw_gbps": None, "membw_gbps": None, "train_mfu": None}
    per_watt: dict[str, list[float]] = {}
    for m in data.get("measurements", []) if isinstance(data.get("measurements"), list) else []:
        if not isinstance(m, dict) or m.get("status") != "ok" or not isinstance(m.get("summary"), dict):
            continue
        spec = m.get("spec") if isinstance(m.get("spec"), dict) else {}
        summary, workload = m["summary"], m.get("workload")
        value, key = None, None
        if workload == "comm" and spec.get("op") in ("all_reduce", "allreduce"):
            value, key = _number(summary.get("busbw_gbps")), "busbw_gbps"
        elif workload == "membw":
            value, key = _number(summary.get("gbps_median")), "membw_gbps"
        elif workload == "train":
            value, key = _number(summary.get("mfu")), "train_mfu"
        elif workload == "matmul" and not m.get("emulated"):
            details = m.get("details") if isinstance(m.get("details"), dict) else {}
            tel = details.get("telemetry") if isinstance(details.get("telemetry"), dict) else {}
            power = _number(tel.get("mean_power_w"))
            if power is None and isinstance(tel.get("power_w"), dict):
                power = _number(tel["power_w"].get("median"))
            tflops = _number(summary.get("tflops_median"))
            category = CATEGORY_OF.get(str(spec.get("precision")))
            if power and tflops and category:
                per_watt.setdefault(category, []).append(tflops / power)
        if key and value is not None and (best[key] is None or value > best[key]):
            best[key] = value
    return {**best, "tflops_per_watt": {c: statistics.median(v) for c, v in per_watt.items()}}


def site_classes(nodes: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """[(node class, node_figures)] -> per class: nodes, and the median over its nodes of each figure."""
    by_class: dict[str, list[dict[str, Any]]] = {}
    for cls, figures in nodes:
        by_class.setdefault(cls, []).append(figures)
    out = []
    for cls, members in sorted(by_class.items()):
        row: dict[str, Any] = {"node_class": cls, "nodes": len(members), "tier": "reported",
                               "derivation": "median over the class's nodes of each node's best figure"}  # fmt: skip
        for key in ("busbw_gbps", "membw_gbps", "train_mfu"):
            values = [f[key] for f in members if f[key] is not None]
            row[key] = statistics.median(values) if values else None
            row[f"{key}_nodes"] = len(values)
        per_watt = {}
        for category in sorted({c for f in members for c in f["tflops_per_watt"]}):
            values = [f["tflops_per_watt"][category] for f in members if category in f["tflops_per_watt"]]
            per_watt[category] = statistics.median(values)
        row["tflops_per_watt"] = per_watt
        out.append(row)
    return out


def combine(children: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Children's classes merged: each figure the node-weighted mean of the children's medians."""
    by_class: dict[str, list[dict[str, Any]]] = {}
    for rows in children:
        for r in rows:
            by_class.setdefault(r["node_class"], []).append(r)
    out = []
    for cls, rows in sorted(by_class.items()):
        row: dict[str, Any] = {"node_class": cls, "nodes": sum(r["nodes"] for r in rows), "tier": "reported",
                               "derivation": "node-weighted mean of the medians of the level below"}  # fmt: skip
        for key in ("busbw_gbps", "membw_gbps", "train_mfu"):
            pairs = [(r[key], r[f"{key}_nodes"]) for r in rows if r[key] is not None and r[f"{key}_nodes"]]
            n = sum(w for _, w in pairs)
            row[key] = sum(x * w for x, w in pairs) / n if n else None
            row[f"{key}_nodes"] = n
        per_watt: dict[str, list[tuple[float, int]]] = {}
        for r in rows:
            for category, x in r["tflops_per_watt"].items():
                per_watt.setdefault(category, []).append((x, r["nodes"]))
        row["tflops_per_watt"] = {
            c: sum(x * w for x, w in v) / sum(w for _, w in v) for c, v in sorted(per_watt.items())
        }
        out.append(row)
    return out


def from_reports(
    docs: list[intake.Document], counted_digests: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The site's classes from node report documents, using only those a counted capacity input names by digest and
    whose signature verifies; and the inputs used ({sha256, digest}), sorted."""
    nodes, used = [], []
    seen_digests: set[str] = set()
    seen_hosts: set[str] = set()

    # the newest report of a host first (then by bytes, so the choice never depends on the order given): one signed
    # report is one node however many files hold it (re-indented copies have other bytes, one digest), and a host is
    # one node however many reports it wrote
    def newest_first(doc: intake.Document) -> tuple[str, str]:
        end = doc.data.get("end_utc") if isinstance(doc.data, dict) else None
        return (str(end) if isinstance(end, str) else "", doc.sha256)

    ordered = sorted(docs, key=lambda d: d.sha256)
    ordered.sort(key=lambda d: newest_first(d)[0], reverse=True)
    for doc in ordered:
        if not isinstance(doc.data, dict):
            continue
        valid, _, digest = sign.inspect(doc.data)
        if not valid or digest not in counted_digests or digest in seen_digests:
            continue
        inventory = doc.data.get("inventory") if isinstance(doc.data.get("inventory"), dict) else {}
        host = inventory.get("host") if isinstance(inventory.get("host"), dict) else {}
        fingerprint = host.get("fingerprint")
        if isinstance(fingerprint, str) and fingerprint:
            if fingerprint in seen_hosts:
                continue
            seen_hosts.add(fingerprint)
        seen_digests.add(digest)
        nodes.append((node_class(doc.data), node_figures(doc.data)))
        used.append({"sha256": doc.sha256, "digest": digest})
    return site_classes(nodes), sorted(used, key=lambda u: u["sha256"])
