"""`bench challenge`: auditor-issued, nonce-bound work whose answer proves a lower bound on throughput."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from bench.cli.choices import CHALLENGE_DTYPES
from bench.cli.options import (
    auditor_key_option,
    chosen_devices,
    devices_option,
    json_option,
    key_option,
    output_option,
    signing_key,
    trusted_keys,
    trusted_keys_option,
    trusted_names,
)
from bench.cli.output import fail, stdout
from bench.cli.params import DurationParam, SecondsParam

auditor_option = auditor_key_option(
    "The auditor's own private key (create one with `bench keys init --key auditor.pem`): it signs the challenge and "
    "the receipts, and must be a key no node holds.", required=True, must_exist=False,
)  # fmt: skip
node_trust_option = trusted_keys_option(
    "The nodes' key ids or public keys (one per line, each optionally followed by the node names it alone may answer "
    "for): commitments must be signed by one of them, and the auditor's key must not be among them."
)


def auditor_signing_key(path: Path, trusted: set[str] | None) -> Any:
    """The auditor's key, refused when it is also a node's: listed in the node trust list, or the key this machine's
    node runs sign with (BENCH_KEY / the default path)."""
    from bench.model import keys

    if not path.exists():
        fail(f"no auditor key at {path}; create one with `bench keys init --key {path}` (not a node key)", 2)
    key = signing_key(path)
    kid = keys.key_id(keys.raw_public(key.public_key()))
    if trusted is not None and kid in trusted:
        fail(
            f"--auditor-key {path} (key {kid}) is in the node trust list: the auditor's key must be one no node holds",
            2,
        )
    node_default = keys.default_key_path()
    try:
        same = node_default.exists() and keys.public_key_id(node_default) == kid
    except keys.KeyFileError:
        same = False
    if same:
        fail(f"--auditor-key {path} is this machine's node key ({node_default}): use a key no node holds", 2)
    return key


def _challenge(path: Path) -> Any:
    from bench import challenge as chl

    try:
        return chl.load_challenge(path)
    except chl.ChallengeError as exc:
        fail(str(exc), 2)
    raise AssertionError  # fail() exits


def _await(path: Path, wait: float) -> None:
    """Return once `path` exists (it is written atomically), polling for up to `wait` seconds; else exit 2."""
    give_up = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() >= give_up:
            fail(f"{path}: no such challenge file" + (f" after waiting {wait:g} s" if wait else ""), 2)
        time.sleep(0.02)


@click.group("challenge")
def challenge_group() -> None:
    """Challenge nodes with fresh, seeded matrix products and prove a throughput lower bound from their answers.

    \b
    auditor:  bench keys init --key auditor.pem                 (once; a key no node holds)
    auditor:  bench challenge collect /shared/drop --challenge /shared/ch.json -o receipts.json --wait 600 \
                  --auditor-key auditor.pem &
    node:     bench challenge answer /shared/ch.json --drop /shared/drop --wait 600   (every node, ready and waiting)
    auditor:  bench challenge issue -o ch.json --size 8192 --window 10m --auditor-key auditor.pem
              (keep ch.json; copy it to /shared/ch.json for the nodes)
    auditor:  bench challenge verify ch.json /shared/drop --receipts receipts.json --auditor-key auditor.pem \
                  --trusted-keys nodes.keys --proof proof.json
    """


@challenge_group.command("issue")
@output_option("Challenge file to write.", required=True)
@click.option(
    "--dtype",
    type=click.Choice(CHALLENGE_DTYPES),
    default="float32",
    show_default=True,
    help="Precision of the matrices and products.",
)
@click.option(
    "--size",
    "n",
    type=click.IntRange(min=2, max=65536),
    default=4096,
    show_default=True,
    help="Size N of each product C (N x N), as matmul's --size; with --inner K each product is 2*N^2*K FLOPs.",
)
@click.option(
    "--n",
    "n_old",
    type=click.IntRange(min=2, max=65536),
    default=None,
    hidden=True,
    deprecated="use --size (matmul's --n is a grid range)",
)
@click.option(
    "--inner",
    type=click.IntRange(min=2, max=1 << 20),
    default=None,
    help="Inner dimension K of each product, A (N x K) times B (K x N): 2*N^2*K FLOPs against N^2 outputs the node "
    "copies and hashes. Default: 2 x N for float32 and float64, 16 x N for bfloat16 and float16 (at most 16384 and "
    "8192, or N: honest tensor cores truncate, an error growing with K). float32 folds K into runs of 64 (--fold).",
)
@click.option(
    "--fold/--no-fold",
    default=True,
    show_default=True,
    help="float32: each product is the exact sum of K/64 float32 products of inner dimension 64, held to their "
    "accuracy (K a multiple of 64 above it). --no-fold: one product of inner dimension K, judged as one sequential "
    "float32 sum, so that a longer K lets six int8 products pass as float32; its default K is then 64.",
)
@click.option(
    "--products", type=click.IntRange(min=1, max=1000), default=2, show_default=True, help="Products per device."
)
@click.option(
    "--window",
    type=DurationParam(),
    default="10m",
    show_default=True,
    help="Time from issue to the deadline: seconds, or a number with s, m, h, d or w (10m).",
)
@click.option(
    "--node", "nodes", multiple=True, help="Host names challenged (repeatable). Default: any node may answer."
)
@auditor_option
@node_trust_option
@json_option("the challenge")
def issue_cmd(output: Path, dtype: str, n: int, n_old: int | None, inner: int | None, fold: bool, products: int, window: dt.timedelta,
              nodes: tuple[str, ...], auditor_path: Path, trusted_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Write a challenge signed by the auditor's key: a fresh 256-bit nonce, dtype, n, inner K, products per device, the issue
    time and the deadline. Keep this copy: verify works from it, not from the one the nodes were sent."""
    from bench import challenge as chl
    from bench.challenge.exact_rows import MIN_ROW_WIDTH
    from bench.challenge.protocol import ACCURACY_INNER, FOLD
    from bench.report.store import dumps, write_atomic

    n = n if n_old is None else n_old
    key = auditor_signing_key(auditor_path, trusted_keys(trusted_path))
    inner = chl.default_inner(dtype, n, fold) if inner is None else inner
    run = chl.default_fold(dtype, inner, n) if fold else None
    accurate = ACCURACY_INNER.get(dtype)
    if accurate is not None and run is None and inner > accurate:  # an unfolded long K: int8 x3 and bf16x3 pass it
        if fold:
            raise click.UsageError(f"--inner {inner} cannot be folded into runs of {FOLD} (a multiple of "
                                   f"{FOLD} above it can, at --size {MIN_ROW_WIDTH} or more): pick one, or --no-fold for an unfolded challenge, which "
                                   f"proves {dtype}-accurate throughput, not {dtype}")  # fmt: skip
        click.echo(f"warning: unfolded {dtype} at K = {inner} > {accurate}: this challenge proves {dtype}-accurate "
                   f"throughput (int8 x3 and bf16x3 pass it), not {dtype} (docs/proofs.md)", err=True)  # fmt: skip
    data = chl.issue(key, dtype=dtype, n=n, products=products, window=window, nodes=list(nodes) or None, inner=inner,
                     fold=run)  # fmt: skip
    write_atomic(output, dumps(data))
    if as_json:
        click.echo(dumps(data), nl=False)
        return
    click.echo(f"challenge {data['nonce'][:12]}: {products} x {n}x{data['inner']}x{n} {dtype}"
               f"{f' folded in runs of {run}' if run else ''} per device, deadline {data['deadline_utc']}"
               f" -> {output}")  # fmt: skip


@challenge_group.command("answer")
@click.argument("challenge_path", metavar="CHALLENGE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--drop",
    "drop",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Drop directory the auditor collects from (a shared filesystem, or copy the files there at once).",
)
@devices_option()
@click.option("--node", "node_name", default=None, help="This node's name (default: its host name).")
@click.option(
    "--wait",
    type=SecondsParam(),
    default=0.0,
    show_default=True,
    help="Seconds to wait for CHALLENGE to appear, ready (key, inventory, devices loaded) — start it on every "
    "node before the auditor issues, so start-up is not counted against the node.",
)
@click.option(
    "--reserve-mib",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Host memory (MiB) to map and touch before the wait, from which a CPU answer's operands and products are "
    "taken (bench.challenge.hostmem; node.host_bytes says what a challenge needs): memory touched for the first time "
    "inside the window cost a round's first product up to 0.8 s on a VM.",
)
@trusted_keys_option("The auditor's key id or public key: a challenge signed by any other key is refused.")
@key_option
@json_option("a summary of the answer")
def answer_cmd(challenge_path: Path, drop: Path, device_lists: tuple[list[str], ...], node_name: str | None, wait: float,
               reserve_mib: int, trusted_path: Path | None, key_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Compute the challenge's products on every device at once, commit to them (a signed file of Merkle roots, written
    the moment the products exist), then reveal the products next to the commitment."""
    from bench import challenge as chl
    from bench.hardware import devices
    from bench.hardware.inventory import collect as inventory
    from bench.report.store import dumps

    trusted = trusted_keys(trusted_path)
    key = signing_key(key_path)
    inv = inventory()
    node = node_name or inv["host"].get("hostname") or "node"
    bad = chl.name_problem(node, "node name")
    if bad:
        fail(f"{bad}; name this node with --node", 2)
    ids = chosen_devices(device_lists)
    devs = [asdict(devices.facts(d, inv["host"])) for d in ids]
    warmed = chl.warm_all(devs)  # every device in every dtype, before the wait: start-up is not the node's answer
    if reserve_mib:
        from bench.challenge import hostmem

        try:
            warmed += hostmem.reserve(reserve_mib << 20)
        except (OSError, OverflowError, MemoryError) as exc:  # more than this host maps: the operator's number
            fail(f"--reserve-mib {reserve_mib}: this host cannot map that much memory ({exc})", 2)
    click.echo(f"ready: {len(devs)} device(s) warmed in {warmed:.1f} s; waiting for {challenge_path}", err=True)
    _await(challenge_path, wait)
    ch = _challenge(challenge_path)
    bad = chl.refusal(ch, node, trusted)
    if bad:
        fail(bad)
    try:
        summary = chl.answer(ch, node, inv, devs, drop, key)
    except chl.ChallengeError as exc:  # e.g. float32 forced onto TF32 (node.fp32_refusal): nothing is committed
        fail(str(exc))
    if as_json:
        click.echo(dumps(summary), nl=False)
    else:
        click.echo(f"committed {summary['products']} products ({summary['flops'] / 1e9:.1f} GFLOP) in "
                   f"{summary['seconds_to_commit']:.2f} s by this node's clock ({summary['node_gflops']:.1f} GFLOPS); "
                   f"revealed in {summary['reveal']}")  # fmt: skip


@challenge_group.command("collect")
@click.argument("drop", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--challenge",
    "challenge_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The challenge file the nodes answer (the collector may start before it exists: see --wait).",
)
@output_option(
    "Receipt log to write (keep it outside the drop directory; it is re-signed after every arrival).", required=True
)
@click.option("--expect", type=click.IntRange(min=1), default=None, help="Stop after this many commitments.")
@click.option(
    "--grace",
    type=SecondsParam(),
    default=5.0,
    show_default=True,
    help="Seconds to keep watching after the deadline (late files are recorded, and not counted).",
)
@click.option("--interval", type=SecondsParam(0.01), default=0.1, show_default=True, help="Polling period (s).")
@click.option(
    "--wait",
    type=SecondsParam(),
    default=0.0,
    show_default=True,
    help="Seconds to wait for the challenge file to appear: start the collector before issuing.",
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the bytes of every commitment recorded (default: OUTPUT.commitments/).",
)
@auditor_option
@node_trust_option
@json_option("the signed receipt log, at the end,")
def collect_cmd(drop: Path, challenge_path: Path, output: Path, expect: int | None, grace: float, interval: float,
                wait: float, archive: Path | None, auditor_path: Path, trusted_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Watch DROP and record, by this machine's clock, when each commitment arrives, in a receipt log signed by the
    auditor's key; each file is read once and the bytes hashed are archived. Stops at --expect *valid* commitments
    (signed answers to this challenge: junk files are recorded but never counted) or the deadline plus --grace; Ctrl-C
    stops early, keeping what was recorded."""
    from bench import challenge as chl
    from bench.model import keys

    trusted = trusted_keys(trusted_path)
    key = auditor_signing_key(auditor_path, trusted)
    auditor = keys.key_id(keys.raw_public(key.public_key()))
    _await(challenge_path, wait)
    ch = _challenge(challenge_path)
    bad = chl.signature_problem(ch.data, {auditor}, "challenge")
    if bad:
        fail(f"{bad}: it was not issued with this --auditor-key")
    archive = archive or output.with_name(output.name + ".commitments")

    def show(r: dict[str, Any]) -> None:
        click.echo(
            f"{r['arrived_utc']} {r['file']}" + ("" if r["accepted"] else f" (not counted: {r['why']})"), err=True
        )

    log = chl.collect(drop, ch, output, key, archive=archive, trusted=trusted, auditor=auditor, expect=expect,
                      names=trusted_names(trusted_path),
                      until=ch.deadline + dt.timedelta(seconds=grace), interval=interval, on_receipt=show)  # fmt: skip
    if log.stopped:
        click.echo("stopped; the receipts so far are kept", err=True)
    if as_json:
        click.echo(output.read_text(encoding="utf-8"), nl=False)
    else:
        click.echo(f"{log.valid} commitments recorded in {output} ({log.others} other files not counted or logged)")


@challenge_group.command("verify")
@click.argument("challenge_path", metavar="CHALLENGE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("drop", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--receipts",
    "receipts_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The signed receipt log from `collect`: without it no arrival time, so no bound, is proven.",
)
@auditor_key_option(
    "The auditor's key (private, or its .pub): the challenge and receipts must carry its signature. "
    "Without it nothing is proven."
)
@node_trust_option
@click.option(
    "--proof",
    "proof_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write what was proven, per device, signed by --auditor-key (a private key), for `bench verify --proof`.",
)
@json_option("the verdict")
def verify_cmd(challenge_path: Path, drop: Path, receipts_path: Path | None, auditor_path: Path | None,
               trusted_path: Path | None, proof_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Check every answer in DROP on this CPU against the auditor's own copy of CHALLENGE and state the proven lower
    bound on throughput: verified FLOPs (2 n^2 K per product that matches its commitment, passes Freivalds' check with
    this verifier's secret vectors and the exact-row precision check; each device UUID counted once, exactly the
    products asked) / (arrival by the receipt log - issue time). Exit 1 when any check fails, 2 when CHALLENGE itself
    is malformed; a malformed answer is one failed entry."""
    from rich.table import Table

    from bench import challenge as chl
    from bench.model import keys
    from bench.report import proofs
    from bench.report.store import dumps, write_atomic

    trusted = trusted_keys(trusted_path)
    auditor = None
    if auditor_path is not None:
        try:
            auditor = keys.public_key_id(auditor_path)
        except keys.KeyFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--auditor-key") from None
    if proof_path is not None and auditor_path is None:
        raise click.UsageError("--proof needs --auditor-key (the private key) to sign it")
    try:
        verdict = chl.verify(challenge_path, drop, receipts_path, trusted, auditor=auditor,
                             names=trusted_names(trusted_path))  # fmt: skip
    except chl.ChallengeError as exc:
        fail(str(exc), 2)
    if proof_path is not None:
        try:
            key = keys.load(auditor_path)
        except keys.KeyFileError as exc:
            fail(f"--proof needs the auditor's private key: {exc}", 2)
        write_atomic(proof_path, dumps(proofs.document(verdict.challenge.data, verdict.devices, key)))
    if as_json:
        click.echo(dumps(verdict.to_dict()), nl=False)
    else:
        out = stdout()
        t = Table(title=f"challenge {verdict.challenge.nonce[:12]}: {verdict.challenge.n}^3 {verdict.challenge.dtype} "
                  "(tier: proven, for what verified)")  # fmt: skip
        for col in ("node", "arrived (auditor clock)", "products", "verified", "failed", "verified GFLOP", "elapsed s",
                    "proven GFLOPS >="):  # fmt: skip
            t.add_column(col, justify="left" if col in ("node", "arrived (auditor clock)") else "right")
        for n in verdict.nodes:
            bound = n["gflops_lower_bound"]
            t.add_row(n["node"], n["arrived_utc"] or "-", str(n["products"]), str(n["verified"]), str(len(n["failed"])),
                      f"{n['verified_flops'] / 1e9:.1f}", f"{n.get('elapsed_s', 0):.2f}" if n.get("elapsed_s") else "-",
                      f"{bound:.2f}" if bound else "-")  # fmt: skip
        f = verdict.fleet
        t.add_row("fleet", "", "", "", "", f"{f['verified_flops'] / 1e9:.1f}", f"{f['elapsed_s']:.2f}" if f["elapsed_s"] else "-",
                  f"{f['gflops_lower_bound']:.2f}" if f["gflops_lower_bound"] else "-", style="bold")  # fmt: skip
        out.print(t)
        for finding in verdict.findings:
            out.print(f"{finding.severity}: {finding.code}: {finding.where}: {finding.message}", highlight=False)
        if proof_path is not None:
            out.print(f"proof of {len(verdict.devices)} devices: {proof_path}")
    errors = [x for x in verdict.findings if x.severity == "error"]
    if errors:
        fail(f"{len(errors)} checks failed; what failed is not counted")
