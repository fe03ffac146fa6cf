"""`bench keys`: the Ed25519 key a node (or an aggregator) signs its reports with."""

from __future__ import annotations

import json
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.cli.output import fail
from bench.report import keys

key_option = click.option(
    "--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Private signing key (default ${keys.KEY_ENV}, else ~/.config/bench/node_ed25519.pem; created on first use).",
)  # fmt: skip


def signing_key(path: Path | None) -> Ed25519PrivateKey:
    """The key to sign with, created on first use (and said so on stderr); exit 1 on an unusable key file."""
    path = path or keys.default_key_path()
    try:
        key, created = keys.load_or_create(path)
    except keys.KeyFileError as exc:
        fail(str(exc))
    if created:
        kid = keys.key_id(keys.raw_public(key.public_key()))
        click.echo(f"created signing key {path} (key id {kid}); its public half is {path}.pub", err=True)
    return key


@click.group()
def keys_group() -> None:
    """Create and show the Ed25519 key that signs this node's reports."""


@keys_group.command("init")
@key_option
@click.option("--force", is_flag=True, help="Replace an existing key.")
def init(key_path: Path | None, force: bool) -> None:
    """Create a key pair: the private key (mode 0600) and KEY.pub."""
    path = key_path or keys.default_key_path()
    try:
        key = keys.create(path, force=force)
    except keys.KeyFileError as exc:
        fail(str(exc))
    click.echo(f"private key: {path}\npublic key:  {keys.public_b64(key.public_key())}")
    click.echo(f"key id:      {keys.key_id(keys.raw_public(key.public_key()))}")


@keys_group.command("show")
@key_option
@click.option("--json", "as_json", is_flag=True, help="Print {public_key, key_id} as JSON.")
def show(key_path: Path | None, as_json: bool) -> None:
    """Print the public key and its key id (the fingerprint auditors put in a trust list)."""
    path = key_path or keys.default_key_path()
    try:
        key = keys.load(path)
    except keys.KeyFileError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps({"public_key": keys.public_b64(key.public_key()),
                               "key_id": keys.key_id(keys.raw_public(key.public_key()))}))  # fmt: skip
        return
    click.echo(f"public key: {keys.public_b64(key.public_key())}")
    click.echo(f"key id:     {keys.key_id(keys.raw_public(key.public_key()))}")
