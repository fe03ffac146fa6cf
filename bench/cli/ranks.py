"""What the multi-rank verbs (train, comm) share: where this process sits in the job, and its device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from bench.cli.output import fail


def place(device_name: str | None) -> tuple[Any, str, str]:
    """(placement, device id, device kind). A malformed launcher environment exits 2 naming the variable; an
    unknown --device is a usage error. Default device: the local rank's GPU when there are GPUs, else the CPU."""
    from bench import launch
    from bench.hardware import devices

    try:
        where = launch.placement()
    except launch.LaunchError as exc:
        fail(str(exc), 2)
    try:
        if device_name is None:
            device_name = devices.local_device(where.local_rank, where.local_world_size)
        devices.resolve(device_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    return where, device_name, "cuda" if device_name.startswith("cuda") else "cpu"


@contextlib.contextmanager
def rank_job(where: Any, writer: Any) -> Iterator[None]:
    """Run a multi-rank body: Ctrl-C closes the report as interrupted (exit 130); any failure, a vanished peer's
    included, ends this rank with one line naming it (exit 1) instead of hanging; the process group is always left."""
    from bench import launch, orchestrate, runner

    try:
        yield
    except KeyboardInterrupt:
        if writer:
            writer.finish(interrupted=True)
        fail("interrupted; finished measurements are saved", 130)
    except runner.Terminated:
        if writer:
            writer.finish(interrupted=True)
        fail(f"rank {where.rank}: terminated (SIGTERM); finished measurements are saved")
    except Exception as exc:  # noqa: BLE001 - whatever failed, the job must end with a clear line, never hang
        if writer:  # the report says why it ends here (a lost peer, a timeout), as an error record, then closes
            orchestrate.record_job_failure(writer, where, exc)
        fail(f"rank {where.rank}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
    finally:
        launch.leave()
