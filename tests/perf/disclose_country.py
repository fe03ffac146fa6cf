"""Benchmark, not a test: a synthetic country of signed node reports rolls up to a verified national disclosure.

    .venv/bin/python tests/perf/disclose_country.py [--nodes 100000] [--sites 200] [--gpus 8] [--cache /tmp/...]
        [--format v3|v2] [--out FOLDER]

A country of `--nodes` nodes (8 H100s each, as tests/report/fleet.py builds them) in `--sites` sites, 10 sites to a
city and 5 cities to a region. Generating the signed node reports is slow and not counted: they are cached under
--cache (default /tmp/bench-country-<nodes>-<sites>-<gpus>-v3, without -v3 for --format v2) with their node key and
reused by later runs. The node reports are what `bench run` writes, version-3 record streams checked over their bytes
(the default, --format v3), or version-2 documents (--format v2: what bench run wrote before, still read); the first
line printed after generation says which.
Timed, in this order:
  1. aggregate: every site's node reports verified (signature, re-derivation, peaks, inventory) and aggregated into a
     capacity report, signed by the aggregator: as `bench aggregate --jobs 1` per site, one site per core at once;
  2. disclose, as `bench disclose tree` builds a region (bench.disclosure.tree.build: one store of documents): the
     capacity reports read and their signatures checked by worker processes, the operators' signed declarations
     (written into the site folders beforehand, not timed) read, a disclosure per site, then city, region and country
     roll-ups, each recomputed from the capacity reports with every device counted once across the tree, the
     documents of each level built by worker processes (under disclosures/);
  3. verify: the national disclosure re-derived from a fresh read of the folder (Store(folder), read by worker
     processes as `bench verify --from` reads it), and each level below it (the children of the first level that
     branches re-derived by worker processes).
Prints each phase's time and the peak memory (ru_maxrss) of this process and of the largest worker; a forked worker's
figure counts the pages it still shares with this process, so it overstates what the worker added. For disclose and
verify, where the wall went (Stages): reading the files (workers parse, this process unpickles), the whole tree's merge
(this process alone, one core idle), every level's figures (workers), the roll-ups' documents (disclose) or the walk
of the levels below the first that branches (verify) in workers, and the rest (this process alone); then each
stage's CPU, this process's and its workers' (their system time apart).
Goal (issue 26): verify + aggregate + disclose in at most 120 s and 3 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import gc
import hashlib
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.disclosure import declaration as decl
from bench.disclosure import document as dd
from bench.disclosure import leaves, tree
from bench.disclosure.leaves import Store
from bench.model import sign
from bench.report import aggregate as agg
from bench.report.pool import usable_cores
from bench.report.store import dumps, signed_dumps

# tests.report.synthetic, not fleet: fleet's real-node builder imports torch (+186 MB in every process)
from tests.report.synthetic import NOW, node_report, node_stream

SITES_PER_CITY, CITIES_PER_REGION = 10, 5
#: What each --format names, as the header line says it.
FORMATS = {"v3": "version-3 record streams, as bench run writes them", "v2": "version-2 documents (not what bench run "
           "writes: it writes version-3 record streams)"}  # fmt: skip
DECLARATION = """country = "Freedonia"
region = "{region}"
city = "{city}"
site = "{site}"
operator = "Operator {site}"

[[clusters]]
name = "main"

[open_access]
share = 0.1
how_to_request = "https://example.invalid/{site}"

[[planned]]
date = 2027-12-31
pflops = 100.0
precision = "bf16"
"""


def place(site: int) -> tuple[str, str, str]:
    city = site // SITES_PER_CITY
    return f"R{city // CITIES_PER_REGION:02d}", f"C{city:03d}", f"S{site:04d}"


def _build(args: tuple[bytes, int, int, int, Path, str]) -> None:
    pem, start, stop, gpus, directory, form = args
    key = load_pem_private_key(pem, password=None)
    for n in range(start, stop):
        path = directory / f"node{n:06d}.json"
        tflops = [700.0 + (n * 7 + g) % 11 for g in range(gpus)]
        if form == "v3":  # the signed record stream `bench run` writes
            path.write_bytes(node_stream(n, tflops, key))
        else:
            path.write_text(dumps(node_report(n, tflops, key)))


def generate(cache: Path, nodes: int, sites: int, gpus: int, form: str = "v2") -> Ed25519PrivateKey:
    done = cache / "complete"
    if done.exists():
        return load_pem_private_key((cache / "node.pem").read_bytes(), password=None)
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (cache / "node.pem").write_bytes(pem)
    per_site = nodes // sites
    chunks = []
    for s in range(sites):
        d = cache / f"site{s:04d}"
        d.mkdir()
        start, stop = s * per_site, (s + 1) * per_site if s < sites - 1 else nodes
        chunks += [(pem, a, min(a + 250, stop), gpus, d, form) for a in range(start, stop, 250)]
    t0 = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor() as pool:
        list(pool.map(_build, chunks))
    done.write_text("ok\n")
    print(f"generated {nodes} signed node reports in {time.perf_counter() - t0:.0f} s under {cache} (cached)")
    return key


def _aggregate_site(task: tuple[Path, Path, bytes, str, agg.Rules]) -> tuple[Path, float, float]:
    """One site's capacity report, built, signed and written in this worker (its node reports verified here, jobs=1);
    with the CPU seconds of its two parts: verifying and aggregating the node reports, and signing and writing."""
    site_dir, path, pem, node_kid, rules = task
    start = time.process_time()
    files = sorted(site_dir.glob("*.json"))
    cap = agg.aggregate([(str(f), f) for f in files], rules=rules, trusted={node_kid}, now=NOW, jobs=1)
    built = time.process_time()
    text = signed_dumps(cap, load_pem_private_key(pem, password=None))  # as bench aggregate signs and writes it
    path.parent.mkdir()
    path.write_text(text)
    return path, built - start, time.process_time() - built


def interpreter() -> str:
    """Which Python runs the benchmark, and how it was built as far as this process can see: libpython linked into
    the executable (as distributions ship CPython, built with PGO and LTO) or loaded as a shared library (as pyenv
    builds it by default); the same code reads about a tenth apart on the two (docs/disclosure.md)."""
    try:
        with open("/proc/self/maps") as maps:
            shared = "/libpython" in maps.read()
        build = "libpython shared" if shared else "libpython linked in"
    except OSError:
        build = "build unknown"
    return f"{sys.implementation.name} {platform.python_version()} ({build}) at {sys.executable}"


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and of every worker it has waited for: less disturbed than wall
    time by other work on a shared machine."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def peak_mb() -> tuple[float, float]:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)  # fmt: skip


class Stages:
    """Wall seconds this process spends in each stage of disclose and verify, timed by wrapping (only while `timing`)
    the functions that do them: reading files (leaves.read_many), the whole tree's merge (leaves._merge, in this
    process), every level's figures by workers (document.map_forked of precomputed's tasks), the verify walk's and the
    roll-ups' workers (document.map_forked of verify's children, tree.map_forked). The rest of a phase is this
    process's own work (signing, writing, checking, comparing) and freeing what it held. Beside each stage's wall, the
    CPU seconds this process spent in it and those of the workers it reaped in it (a stage's pool is shut down, its
    workers reaped, before it returns), the workers' system time apart (page faults, copies of inherited pages): on
    two cores a stage whose CPU is under twice its wall left a core idle."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, tuple[float, float, float]] = {}

    def _wrap(self, module: object, name: str, label: object) -> None:
        inner = getattr(module, name)
        pid = os.getpid()

        @functools.wraps(inner)
        def timed(*args: object, **kwargs: object) -> object:
            start, was = time.perf_counter(), os.times()
            try:
                return inner(*args, **kwargs)
            finally:
                if os.getpid() == pid:  # not in a worker (which would time it into its own copy)
                    key = label(*args) if callable(label) else label
                    self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start
                    now, (mine, theirs, system) = os.times(), self.cpu.get(key, (0.0, 0.0, 0.0))
                    self.cpu[key] = (mine + now.user + now.system - was.user - was.system,
                                     theirs + now.children_user + now.children_system - was.children_user
                                     - was.children_system, system + now.children_system - was.children_system)  # fmt: skip

        setattr(module, name, timed)
        self._undo.append((module, name, inner))

    @contextlib.contextmanager
    def timing(self) -> object:
        self.seconds, self.cpu, self._undo = {}, {}, []
        self._wrap(leaves, "read_many", "reading files")
        self._wrap(leaves, "_merge", "merge")
        self._wrap(dd, "map_forked", lambda fn, *_: "levels' figures" if isinstance(fn, functools.partial)
                   else "the walk's workers")  # fmt: skip
        self._wrap(tree, "map_forked", "roll-ups' workers")
        try:
            yield self
        finally:
            for module, name, inner in reversed(self._undo):
                setattr(module, name, inner)

    def line(self, wall: float) -> str:
        parts = [f"{k} {x:.1f} s" for k, x in self.seconds.items()]
        return ", ".join([*parts, f"the rest {wall - sum(self.seconds.values()):.1f} s"])

    def cpu_line(self) -> str:
        return ", ".join(f"{k} {max(mine, 0.0):.1f} here + {max(theirs, 0.0):.1f} in workers ({max(system, 0.0):.1f} system)"
                         for k, (mine, theirs, system) in self.cpu.items())  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="keep the documents in this new folder (default: removed)")
    ap.add_argument("--format", choices=("v2", "v3"), default="v3",
                    help="node reports as the version-3 record streams bench run writes (the default), or as "
                    "version-2 documents (what bench run wrote before; bench still reads them)")  # fmt: skip
    args = ap.parse_args()
    suffix = "-v3" if args.format == "v3" else ""
    cache = args.cache or Path(tempfile.gettempdir()) / f"bench-country-{args.nodes}-{args.sites}-{args.gpus}{suffix}"
    node_key = generate(cache, args.nodes, args.sites, args.gpus, args.format)
    held = "v3" if (cache / "site0000" / "node000000.json").read_bytes().startswith(b'{"record":') else "v2"
    if held != args.format:  # a cache named by --cache holds what it was generated as, whatever --format says
        ap.error(f"--cache {cache} holds {held} node reports, not --format {args.format}")
    print(f"node reports: {FORMATS[args.format]} (--format {args.format}), {args.nodes} nodes of {args.gpus} GPUs in "
          f"{args.sites} sites, cached under {cache}")  # fmt: skip
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} CPUs"
    )
    print(f"interpreter: {interpreter()}")
    # fixed keys (Ed25519 signs deterministically): two runs over the same cache write the same bytes, so a change
    # can be held to the documents written before it (--out, then cmp -r)
    aggregator, operator, discloser = (Ed25519PrivateKey.from_private_bytes(hashlib.sha256(role).digest())
                                       for role in (b"aggregator", b"operator", b"discloser"))  # fmt: skip

    def kid(key: Ed25519PrivateKey) -> str:
        return sign.signer({"signature": sign.sign({}, key)})

    if args.out is not None:
        if args.out.exists():
            ap.error(f"--out {args.out}: exists already; name a new folder")
        args.out.mkdir(parents=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-disclose-"))
    policy = dd.Policy(frozenset({kid(aggregator)}), None, frozenset({kid(operator)}), frozenset({kid(node_key)}))
    as_of = NOW
    rules = agg.Rules(max_age_s=7 * 86400)

    t0 = time.perf_counter()
    c0 = cpu_s()
    # each site aggregated as `bench aggregate --jobs 1 site/` would, as many at once as there are cores (one site's
    # aggregation leaves the cores idle while it builds, signs and writes its capacity report)
    pem = aggregator.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tasks = [(cache / f"site{s:04d}", out / f"site{s:04d}" / "capacity.json", pem, kid(node_key), rules)
             for s in range(args.sites)]  # fmt: skip
    with concurrent.futures.ProcessPoolExecutor(usable_cores()) as pool:
        done = list(pool.map(_aggregate_site, tasks))
    t_aggregate, c_aggregate = time.perf_counter() - t0, cpu_s() - c0
    capacities = {s: path for s, (path, _, _) in enumerate(done)}
    c_built, c_written = sum(d[1] for d in done), sum(d[2] for d in done)
    print(f"aggregate ({args.sites} capacity reports, every node report verified, {usable_cores()} at once): "
          f"{t_aggregate:.1f} s wall, {c_aggregate:.1f} s CPU ({c_aggregate / args.nodes * 1e3:.2f} ms a node report: "
          f"verified and aggregated {c_built / args.nodes * 1e3:.2f}, signed and written {c_written / args.nodes * 1e3:.2f}, "
          f"the rest pool and parent); peak memory {peak_mb()[0]:.0f} MB (largest worker {peak_mb()[1]:.0f} MB)")  # fmt: skip

    # each site folder gets its operator's signed declaration (written before, as an operator would: not timed)
    for s, path in capacities.items():
        region, city, site = place(s)
        text = DECLARATION.format(region=region, city=city, site=site).encode()
        (path.parent / "site.toml").write_bytes(text)
        (path.parent / f"site.toml{decl.SIGNATURE_SUFFIX}").write_text(dumps(decl.sign_text(text, operator, NOW)))

    def write(doc: dict, folder: Path) -> bytes:
        doc["signature"] = sign.sign(doc, discloser)
        raw = dumps(doc).encode("utf-8")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "disclosure.json").write_bytes(raw)
        return raw

    stages = Stages()
    t0 = time.perf_counter()
    c0 = cpu_s()
    # `bench disclose tree`: the capacity reports read (their signatures checked by worker processes), then every site,
    # city, region and the country built from them in one store, each level's documents by worker processes
    with stages.timing():
        built = tree.build(out, policy=policy, as_of=as_of, write=write, output=out / "disclosures", now=NOW,
                           claims_input=[{"text": "788 EFLOPS", "source": "synthetic", "date": "2024"}])  # fmt: skip
    t_disclose, c_disclose = time.perf_counter() - t0, cpu_s() - c0
    disclose_stages = stages.line(t_disclose)
    disclose_cpu = stages.cpu_line()
    national = built[0].path
    levels = [b.level for b in built]
    data = Store().add(national).data
    head = next(c for c in data["capacity"] if c["category"] == "bf16/fp16")
    print(f"disclose ({levels.count('site')} sites in {levels.count('city')} cities, {levels.count('region')} regions, "
          f"{levels.count('country')} country): {t_disclose:.1f} s wall, {c_disclose:.1f} s CPU; peak memory "
          f"{peak_mb()[0]:.0f} MB; national bf16/fp16 {head['reported_pflops']:.1f} PFLOPS reported, "
          f"{head['bounded_pflops']:.1f} bounded, {head['devices']} devices, memory {data['accelerator_memory_bytes']} B")  # fmt: skip
    print(f"  disclose's wall: {disclose_stages}")
    print(f"  disclose's CPU by stage: {disclose_cpu}")
    del built

    gc.collect()  # the builder's documents freed: verify starts from the folder alone, as `bench verify --from` does
    t0 = time.perf_counter()
    c0 = cpu_s()
    with stages.timing():
        findings = dd.verify(data, Store(out), str(national))
    t_verify, c_verify = time.perf_counter() - t0, cpu_s() - c0
    print(
        f"verify national disclosure --from (every level re-derived): {t_verify:.1f} s wall, {c_verify:.1f} s CPU; findings: {findings or 'none'}"
    )
    print(f"  verify's wall: {stages.line(t_verify)}")
    print(f"  verify's CPU by stage: {stages.cpu_line()}")
    self_mb, workers_mb = peak_mb()
    total, cpu = t_aggregate + t_disclose + t_verify, c_aggregate + c_disclose + c_verify
    print(f"total verify + aggregate + disclose: {total:.1f} s wall (goal 120 s), {cpu:.1f} s CPU on {usable_cores()} "
          f"cores; peak memory {self_mb:.0f} MB in this "
          f"process, {workers_mb:.0f} MB in the largest worker (goal 3072 MB)")  # fmt: skip
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(f"as of {as_of.isoformat()}; output under {out}" + ("" if args.out else " (removed)"))
    if args.out is None:
        shutil.rmtree(out)
    if findings:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
