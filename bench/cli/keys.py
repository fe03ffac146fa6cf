"""`bench keys`: the Ed25519 key a node (or an aggregator) signs its reports with."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bench.cli.options import json_option, key_option
from bench.cli.output import fail


@click.group()
def keys_group() -> None:
    """Create and show the Ed25519 key that signs this node's reports."""


@keys_group.command("init")
@key_option
@click.option("--force", is_flag=True, help="Replace an existing key.")
def init(key_path: Path | None, force: bool) -> None:
    """Create a key pair: the private key (mode 0600) and KEY.pub."""
    from bench.model import keys

    path = key_path or keys.default_key_path()
    try:
        key = keys.create(path, force=force)
    except keys.KeyFileError as exc:
        fail(str(exc))
    click.echo(f"private key: {path}\npublic key:  {keys.public_b64(key.public_key())}")
    click.echo(f"key id:      {keys.key_id(keys.raw_public(key.public_key()))}")


@keys_group.command("show")
@key_option
@json_option("the public key and key id")
def show(key_path: Path | None, as_json: bool) -> None:
    """Print the public key and its key id (the fingerprint auditors put in a trust list)."""
    from bench.model import keys

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
