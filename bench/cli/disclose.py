"""`bench disclose`: a signed disclosure of a site's, city's, region's or country's measured compute (issue 17).

    bench disclose sign-declaration site.toml --key operator.pem      # the operator signs what it declares
    bench disclose site --declaration site.toml --capacity a=cap-a.json ... -o out/
    bench disclose rollup --level city --name Alpha --from DIR site1/disclosure.json site2/disclosure.json -o out/
    bench disclose sample disclosure.json --from DIR --nonce N --size 60 --precision bfloat16
    bench verify disclosure.json --from DIR                           # re-derive it from the level below

Every input is hostile: a file that cannot be accepted ends the command with exit 2 and one line saying why.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from bench.cli import choices
from bench.cli.options import (
    auditor_key_id,
    auditor_key_option,
    json_option,
    key_option,
    signing_key,
    trusted_keys,
    trusted_keys_option,
)
from bench.cli.output import fail
from bench.cli.params import DurationParam
from bench.model import canonical

# bench.disclosure loads pandas and jsonschema: imported inside each command, so `bench disclose --help` stays fast.


def _refused() -> tuple[type[Exception], ...]:
    """The errors that refuse an input (exit 2 with one line)."""
    from bench.disclosure import claims as cl
    from bench.disclosure import declaration as decl
    from bench.disclosure import sampling
    from bench.disclosure.leaves import DisclosureError

    return (DisclosureError, decl.DeclarationError, cl.ClaimError, sampling.SamplingError, canonical.UncarriableNumber)


def _ids(path: Path | None, option: str) -> frozenset[str] | None:
    found = trusted_keys(path, option)
    return None if found is None else frozenset(found)


def policy_options(fn: Any) -> Any:
    options = [
        click.option("--aggregator-keys", "aggregator_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Key ids of the aggregators whose capacity reports count. Without it no figure is more than "
                          "'reported'."),
        click.option("--operator-keys", "operator_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Key ids of the operators whose declarations are accepted."),
        trusted_keys_option("The node trust list: a declaration signed by one of these keys is refused."),
        auditor_key_option("The auditor's key (private or .pub): the only key whose proofs count."),
        click.option("--proof", "proof_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="A challenge proof (bench challenge verify --proof). Repeatable."),
        click.option("--claims", "claims_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="TOML of [[claim]] tables (text, source, date) to check against the disclosure."),
        click.option("--as-of", "as_of", default=None, help="The disclosure date (ISO 8601 with a time zone; default now)."),
        click.option("--stale-after", type=DurationParam(), default="30d", show_default=True,
                     help="A device measured longer ago than this is stale (reported tier at most)."),
        click.option("--audit-request", "audit_request", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The auditor's signed audit request (`bench disclose sample --request`, signed by "
                          "--auditor-key): its nonce draws the sample, its size, precision and confidence bound it."),
        key_option,
        click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("disclosure"),
                     show_default=True, help="Folder for disclosure.json, disclosure.md and disclosure.html."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _common(kw: dict[str, Any]) -> dict[str, Any]:
    from bench.disclosure import claims as cl
    from bench.disclosure import document as dd
    from bench.model import intake
    from bench.report import verify as v

    node_ids = _ids(kw["trusted_path"], "--trusted-keys")
    auditor = auditor_key_id(kw["auditor_path"], set(node_ids) if node_ids is not None else None)
    policy = dd.Policy(_ids(kw["aggregator_path"], "--aggregator-keys"), auditor, _ids(kw["operator_path"], "--operator-keys"),
                       node_ids, kw["stale_after"].total_seconds())  # fmt: skip
    try:
        as_of = v.parse_utc(kw["as_of"]) if kw["as_of"] else dt.datetime.now(dt.UTC).replace(microsecond=0)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None
    claims_input: list[dict[str, str]] = []
    if kw["claims_path"]:
        try:
            text = intake.read_bytes(kw["claims_path"], max_bytes=1 << 20).decode("utf-8")
            claims_input = cl.read_entries(text, str(kw["claims_path"]))
        except (intake.InputError, UnicodeDecodeError, cl.ClaimError) as exc:
            fail(str(exc), 2)
    audit = None
    if kw["audit_request"] is not None:
        try:
            req = intake.read_json(kw["audit_request"]).data
        except intake.InputError as exc:
            fail(str(exc), 2)
        if not isinstance(req, dict):
            fail(f"{kw['audit_request']}: not an audit request", 2)
        audit = {k: req.get(k) for k in ("nonce", "size", "confidence", "precision")} | {"request": req}
    return {"policy": policy, "as_of": as_of, "claims_input": claims_input, "audit_input": audit}


def _write(doc: dict[str, Any], kw: dict[str, Any], out: Path | None = None, *, echo: bool = True) -> bytes:
    """Sign `doc` with --key and write disclosure.{json,md,html} into `out` (default --output); the JSON's bytes."""
    from bench.disclosure import render
    from bench.model import sign
    from bench.report.store import dumps, write_atomic

    doc["signature"] = sign.sign(doc, signing_key(kw["key_path"]))
    out = out if out is not None else kw["output"]
    raw = dumps(doc).encode("utf-8")
    write_atomic(out / "disclosure.json", raw)
    write_atomic(out / "disclosure.md", render.markdown(doc))
    write_atomic(out / "disclosure.html", render.page(doc))
    if echo:
        head = next((c for c in doc["capacity"] if c["category"] == "bf16/fp16"), None)
        f = render.flops
        click.echo(f"{doc['level']} {doc['name']}: " + (f"bf16/fp16 {f(head['reported_pflops'])} reported, "
                   f"{f(head['bounded_pflops'])} bounded, {f(head['proven_pflops'])} proven; " if head and head["devices"] else "")
                   + f"written to {out}/disclosure.{{json,md,html}}")  # fmt: skip
    return raw


@click.group("disclose")
def disclose_group() -> None:
    """Disclose a site's, city's, region's or country's measured compute: one signed document per level, each figure
    with its tier (reported / bounded / proven), declared figures kept apart, a claims ledger and audit by sampling."""


@disclose_group.command("sign-declaration")
@click.argument("declaration", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@key_option
def sign_declaration(declaration: Path, key_path: Path | None) -> None:
    """Sign a declaration TOML with the operator's key: writes DECLARATION.sig.json over its exact bytes."""
    from bench.disclosure import declaration as decl
    from bench.model import intake
    from bench.report.store import dumps, write_atomic

    try:
        raw = intake.read_bytes(declaration, max_bytes=decl.MAX_BYTES)
        decl.parse(raw.decode("utf-8"), str(declaration))
    except (intake.InputError, decl.DeclarationError) as exc:
        fail(str(exc), 2)
    except UnicodeDecodeError:
        fail(f"{declaration}: not UTF-8 text", 2)
    out = declaration.with_name(declaration.name + decl.SIGNATURE_SUFFIX)
    write_atomic(out, dumps(decl.sign_text(raw, signing_key(key_path))))
    click.echo(f"signed {declaration}: {out}")


@disclose_group.command("site")
@click.option(
    "--declaration",
    "declaration_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The site's declaration TOML; its signature is read from DECLARATION.sig.json.",
)
@click.option(
    "--capacity",
    "capacities",
    multiple=True,
    required=True,
    metavar="CLUSTER=FILE",
    help="The capacity report of one declared cluster. Repeatable.",
)
@click.option("--reports", "reports_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The node reports: readiness per node class (busbw, memory bandwidth, MFU, TFLOPS/W) from those the "
                   "capacity reports counted.")  # fmt: skip
@policy_options
def site_cmd(declaration_path: Path, capacities: tuple[str, ...], reports_dir: Path | None, **kw: Any) -> None:
    """A site's disclosure from its declaration and the capacity report of each of its clusters."""
    from bench.disclosure import declaration as decl
    from bench.disclosure import document as dd
    from bench.disclosure.leaves import DisclosureError, Store

    common = _common(kw)
    policy: dd.Policy = common["policy"]
    store = Store()
    try:
        d = decl.read(declaration_path, operator_ids=policy.operator_ids, node_ids=policy.node_ids)
        pairs = []
        for item in capacities:
            cluster, sep, file = item.partition("=")
            if not sep or not cluster or not file:
                raise DisclosureError(f"--capacity {item!r}: expected CLUSTER=FILE")
            pairs.append((cluster, store.add(Path(file))))
        node_docs = None
        if reports_dir:
            node_store = Store(reports_dir)
            node_docs = [doc for doc in (node_store.get(h) for h in node_store.paths) if doc is not None]
        doc = dd.site(d, pairs, store, proof_docs=[store.add(p) for p in kw["proof_paths"]], node_docs=node_docs,
                      **common)  # fmt: skip
    except _refused() as exc:
        fail(str(exc), 2)
    _write(doc, kw)


@disclose_group.command("rollup")
@click.argument("children", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--level", type=click.Choice(choices.DISCLOSURE_LEVELS[:-1]), required=True, help="The level of this disclosure."
)
@click.option("--name", required=True, help="Its name (the city, region or country every child sits in).")
@click.option(
    "--from",
    "from_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder holding the capacity reports (and proofs) the children cite.",
)
@policy_options
def rollup_cmd(children: tuple[Path, ...], level: str, name: str, from_dir: Path, **kw: Any) -> None:
    """A city, region or country from the disclosures of the level below, every figure recomputed from their capacity
    reports and each device counted once across them all."""
    from bench.disclosure import document as dd
    from bench.disclosure.leaves import Store

    common = _common(kw)
    try:
        store = Store(from_dir)
        docs = [store.add(c) for c in children]
        doc = dd.rollup(level, name, docs, store, proof_docs=[store.add(p) for p in kw["proof_paths"]], **common)
    except _refused() as exc:
        fail(str(exc), 2)
    _write(doc, kw)


@disclose_group.command("tree")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--aggregate-key", "aggregate_key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The aggregator's private key: a cluster with node reports but no capacity report is aggregated "
                   "here (node keys --trusted-keys, maximum age --stale-after, at --as-of) and its capacity report "
                   "signed with this key, written beside the site's disclosure.")  # fmt: skip
@policy_options
def tree_cmd(root: Path, aggregate_key: Path | None, **kw: Any) -> None:
    """Every level of a region in one process: from ROOT's site folders (each a signed declaration NAME.toml with
    NAME.toml.sig.json, capacity.json or capacity-CLUSTER.json per declared cluster, and optionally its node reports
    for readiness) a disclosure per site, then per city, region and country, written as
    OUTPUT/COUNTRY/REGION/CITY/SITE/disclosure.{json,md,html}. With --aggregate-key, a cluster that has node reports
    but no capacity report is aggregated on the way (NAME/ holds a cluster's node reports in a site of several). Every input file is read once; the documents are those
    `disclose site` and `disclose rollup` build. --claims and --audit-request apply to the country; OUTPUT (default
    ROOT/disclosure) must lie inside ROOT, so that `bench verify --from ROOT` finds each level beside its inputs."""
    from bench.disclosure import tree

    if kw["output"] == Path("disclosure"):  # the option's default: inside ROOT
        kw["output"] = root / "disclosure"
    output = kw["output"].resolve()
    if not output.is_relative_to(root.resolve()):
        raise click.BadParameter(f"{kw['output']} is not inside {root}: `bench verify --from {root}` must find the "
                                 "disclosures beside the inputs they cite", param_hint="-o/--output")  # fmt: skip
    common = _common(kw)
    try:
        built = tree.build(root, policy=common["policy"], as_of=common["as_of"], output=kw["output"],
                           write=lambda doc, folder: _write(doc, kw, folder, echo=doc["level"] != "site"),
                           proof_paths=list(kw["proof_paths"]), claims_input=common["claims_input"],
                           audit_input=common["audit_input"],
                           aggregator_key=signing_key(aggregate_key) if aggregate_key else None)  # fmt: skip
    except _refused() as exc:
        fail(str(exc), 2)
    levels = [b.level for b in built]
    click.echo(", ".join(f"{levels.count(lv)} {lv}" for lv in ("country", "region", "city", "site")) +
               f" disclosures written under {kw['output']}; check one with: bench verify "
               f"{built[0].path} --from {root}" + (" --auditor-key AUDITOR.pub" if common["policy"].auditor_id else ""))  # fmt: skip


@disclose_group.command("sample")
@click.argument("disclosure", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--from", "from_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--nonce",
    default=None,
    help="The auditor's nonce (16 to 256 printable ASCII characters), fixed after "
    "the disclosure; default: a fresh random one (printed, and written into --request).",
)
@click.option("--size", type=click.IntRange(1, 1_000_000), default=60, show_default=True, help="Units to draw.")
@click.option("--precision", default="bfloat16", show_default=True, help="The precision whose devices are drawn.")
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Confidence of the audit's lower bound (written into the request).",
)
@click.option(
    "--request",
    "request_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the audit request (nonce, population digest, size, precision, confidence) signed by --key, "
    "the AUDITOR's key: `bench disclose ... --audit-request` counts an audit only with it.",
)
@key_option
@json_option("the draw")
def sample_cmd(disclosure: Path, from_dir: Path, nonce: str | None, size: int, precision: str, confidence: float,
               request_path: Path | None, key_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """The devices to challenge: drawn from the auditor's nonce over the disclosure's counted devices (capacity
    weighted; docs/disclosure.md). Anyone can re-derive the draw from the same disclosure, folder and nonce. With --request, the
    auditor signs the nonce together with the population it samples: the discloser can neither choose the nonce nor
    re-cut the population after seeing it."""
    import secrets

    from bench.disclosure import document as dd
    from bench.disclosure import sampling
    from bench.disclosure.leaves import Store, merge
    from bench.report import verify as v

    if request_path is not None and key_path is None:
        raise click.UsageError("--request needs --key: the auditor's own key signs the request")
    nonce = nonce if nonce is not None else secrets.token_hex(32)
    try:
        data = dd.load(disclosure)
        store = Store(from_dir)
        found = dd.inputs_of(data, store, str(disclosure))
        counted, _ = merge(found["leaves"], trusted_aggregator=found["policy"].aggregator_ids is not None,
                           as_of=v.parse_utc(data["as_of_utc"]), stale_after=dt.timedelta(seconds=found["policy"].stale_after_s))  # fmt: skip
        rows = counted[counted["precision"] == precision]
        pop = sampling.population(list(zip(rows["device"], rows["mamf_tflops"].astype(float), strict=True)))
        devices = sampling.sample_devices(nonce, pop, size)
    except (*_refused(), ValueError) as exc:
        fail(str(exc), 2)
    if request_path is not None:
        from bench.report.store import dumps, write_atomic

        write_atomic(request_path, dumps(sampling.request(signing_key(key_path), nonce=nonce, population_digest=pop["digest"],
                                                          precision=precision, size=size, confidence=confidence)))  # fmt: skip
    if as_json:
        click.echo(json.dumps({"nonce": nonce, "population_digest": pop["digest"], "unit_gflops": pop["unit_gflops"],
                               "population_units": pop["total_units"], "devices": devices}, indent=2))  # fmt: skip
    else:
        click.echo(f"{len(devices)} devices to challenge for nonce {nonce} (population {pop['digest'][:16]}, "
                   f"{pop['total_units']:,} units of {pop['unit_gflops']} GFLOPS):")  # fmt: skip
        for d in devices:
            click.echo(d)


@disclose_group.command("schema")
def schema_cmd() -> None:
    """Print the published JSON Schema of a disclosure document."""
    from bench.disclosure import document as dd

    click.echo(json.dumps(dd.schema(), indent=2))
