"""The click options several verbs share, each declared once so that a name means one thing in every verb:
--json (the result as JSON on stdout), --quiet (no progress on stderr), -o/--output (the file a verb writes), --results-dir (with BENCH_RESULTS_DIR), --key
(this machine's signing key), --trusted-keys (the keys whose signatures count), --max-age, --device (which devices to
measure), --sequential and --timeout. A verb states only what is its own (what its JSON holds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bench.cli.output import fail
from bench.cli.params import DeviceParam, DurationParam, OneDeviceParam, SecondsParam

F = TypeVar("F", bound=Callable[..., Any])

#: Every --results-dir reads this variable when the option is not given, so results land in one place whatever the
#: current directory.
RESULTS_ENV = "BENCH_RESULTS_DIR"
#: The variable naming the signing key (bench.model.keys.KEY_ENV, restated so that --help loads no cryptography).
KEY_ENV = "BENCH_KEY"


def json_option(what: str = "the report") -> Callable[[F], F]:
    """--json: `what` as JSON on stdout (and nothing else there), instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout.")


quiet_option = click.option("--quiet", is_flag=True, help="No progress on stderr.")


def output_option(help_text: str = "Write to this file (default: stdout).", *, default: Path | None = None,
                  required: bool = False) -> Callable[[F], F]:  # fmt: skip
    """-o/--output: the one file a verb writes (a file, never a folder; `bench disclose` writes a folder of its own)."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=default,
                        show_default=default is not None, required=required, help=help_text)  # fmt: skip


def results_dir_option(help_text: str = "Where reports go: RESULTS_DIR/<run-id>/report.json.") -> Callable[[F], F]:
    return click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
                        envvar=RESULTS_ENV, show_envvar=True, show_default=True, help=help_text)  # fmt: skip


key_option = click.option(
    "--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Private signing key (default ${KEY_ENV}, else ~/.config/bench/node_ed25519.pem; created on first use).",
)  # fmt: skip


def signing_key(path: Path | None) -> Any:
    """The Ed25519 key to sign with, created on first use (and said so on stderr); exit 1 on an unusable key file."""
    from bench.model import keys

    path = path or keys.default_key_path()
    try:
        key, created = keys.load_or_create(path)
    except keys.KeyFileError as exc:
        fail(str(exc))
    if created:
        kid = keys.key_id(keys.raw_public(key.public_key()))
        click.echo(f"created signing key {path} (key id {kid}); its public half is {path}.pub", err=True)
    return key


def trusted_keys_option(help_text: str) -> Callable[[F], F]:
    """--trusted-keys FILE: key ids or base64 public keys, one per line ('#' comments), whose signatures count."""
    return click.option("--trusted-keys", "trusted_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, help=help_text)  # fmt: skip


def trusted_keys(path: Path | None, option: str = "--trusted-keys") -> set[str] | None:
    """The key ids listed in `path` (None without one); a malformed list is a usage error naming the option."""
    if path is None:
        return None
    from bench.model import keys

    try:
        return keys.parse_trusted(path.read_text(encoding="utf-8"))
    except (keys.KeyFileError, OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def trusted_names(path: Path | None, option: str = "--trusted-keys") -> dict[str, str] | None:
    """The node names the trust list at `path` binds to keys (name -> key id; None without a list)."""
    if path is None:
        return None
    from bench.model import keys

    try:
        return keys.parse_trust(path.read_text(encoding="utf-8"))[1]
    except (keys.KeyFileError, OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def auditor_key_option(help_text: str, *, required: bool = False, must_exist: bool = True) -> Callable[[F], F]:
    """--auditor-key FILE: the auditor's Ed25519 key (a key no node holds); private where the verb signs with it."""
    return click.option("--auditor-key", "auditor_path", type=click.Path(exists=must_exist, dir_okay=False, path_type=Path),
                        required=required, default=None, help=help_text)  # fmt: skip


def auditor_key_id(path: Path | None, trusted: set[str] | None) -> str | None:
    """The auditor's key id from its key file (private, or its .pub); refused when the node trust list holds it: a
    key the nodes' operator may hold cannot stand for the auditor."""
    if path is None:
        return None
    from bench.model import keys

    try:
        kid = keys.public_key_id(path)
    except keys.KeyFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--auditor-key") from None
    if trusted is not None and kid in trusted:
        raise click.BadParameter(f"key {kid} is in the node trust list: the auditor's key must be one no node holds",
                                 param_hint="--auditor-key")  # fmt: skip
    return kid


def max_age_option(help_text: str) -> Callable[[F], F]:
    return click.option("--max-age", type=DurationParam(), default=None, help=help_text)


def devices_option(
    help_text: str = "cpu, cuda:N or all (every GPU, else the CPU; the default). Repeatable.",
) -> Callable[[F], F]:
    """--device: the devices to measure, repeatable; each value cpu, cuda:N or all."""
    return click.option("--device", "device_lists", type=DeviceParam(), multiple=True, help=help_text)


def device_option(help_text: str) -> Callable[[F], F]:
    """--device for a verb where each rank measures one device: the same names as devices_option, refused when they
    name more than one device."""
    return click.option("--device", "device_name", type=OneDeviceParam(), default=None, help=help_text)


sequential_option = click.option(
    "--sequential", is_flag=True,
    help="Measure the GPUs one after another (default: all at once, each in its own process, as they run in production; "
         "each measurement records which devices ran alongside it).",
)  # fmt: skip

timeout_option = click.option(
    "--timeout", type=SecondsParam(1.0), default=300.0, show_default=True,
    help="Seconds to wait for the other ranks (joining, or in any collective) before failing.",
)  # fmt: skip


def chosen_devices(device_lists: tuple[list[str], ...]) -> list[str]:
    """The device ids the repeated --device options name, in order, each once; none given: every GPU, else the CPU.
    Exit 1 with the reason when the driver sees GPUs that torch does not (a torch built for a newer CUDA, or a CPU
    build), instead of measuring the CPU of a GPU node."""
    from bench.hardware import devices

    chosen = list(dict.fromkeys(d for ds in device_lists for d in ds))
    if chosen:
        return chosen
    try:  # every GPU, else the CPU; refused when the driver sees GPUs torch cannot use (bench doctor says why)
        return devices.default_devices()
    except ValueError as exc:
        fail(str(exc))
    raise AssertionError  # fail() exits
