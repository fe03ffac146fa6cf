"""Strict JSON: the one parse every document an auditor reads gets (bench.model.intake reads the file, once; a record
stream's lines, bench.model.records, are parsed here one by one).

Refused, each with an InputError of one line: duplicate keys (the stored bytes would differ from the view that was
signed), NaN and Infinity, numbers that overflow binary64, integers beyond 64 bits, nesting deeper than MAX_DEPTH and
more arrays and objects than a limit (counted before parsing).
"""

from __future__ import annotations

import json
from typing import Any

from bench.model.errors import ReportError

#: Deepest nesting of JSON arrays and objects accepted (a report nests about 6 levels).
MAX_DEPTH = 32
#: Most JSON arrays and objects in one document (each costs a Python object and a hook call: 16 MiB of '[],' took 18 s
#: and 1.2 GB to parse). A node report holds a few per measurement; a capacity report a few per device.
DEFAULT_MAX_CONTAINERS = 2**20
#: Integers beyond this magnitude are refused: no field needs them, and float() of one overflows downstream.
MAX_INT = 2**63


class InputError(ReportError):
    """A file that cannot be accepted as input; the message is one line naming the file."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # built in C, and a key seen twice leaves fewer entries than pairs (a country's capacity reports hold a million
    # objects: a Python loop per key was a third of reading them)
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(f"duplicate key {key!r} (a JSON reader would keep only one of them)")
            seen.add(key)
    return out


def _constant(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number")


def _check_values(data: Any) -> None:
    """What the parser lets through and the module docstring refuses: nesting deeper than MAX_DEPTH, a number that
    overflowed binary64 (parsed as infinity) and an integer beyond MAX_INT. One walk over the parsed values: hooks
    called by the parser for every number cost a third of reading a report."""
    stack: list[tuple[Any, int]] = [([data], 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"JSON nested deeper than {MAX_DEPTH} levels")
        for c in value.values() if type(value) is dict else value:
            t = type(c)
            if t is float:
                if c - c != 0.0:  # infinity (inf - inf is NaN); the parser refuses NaN itself
                    raise InputError(f"a number overflows binary64 (it reads as {c})")
            elif t is int:
                if c > MAX_INT or c < -MAX_INT:
                    text = str(c)
                    raise InputError(f"integer {text[:40]}{'...' if len(text) > 40 else ''} is beyond 64 bits")
            elif t is dict or t is list:
                stack.append((c, depth + 1))


def parse_json(raw: bytes, where: str, *, max_containers: int | None = None) -> Any:
    """Strictly parsed JSON (see the module docstring), with at most `max_containers` arrays and objects (counted
    before parsing: every '[' or '{', those inside strings too); InputError naming `where` otherwise."""
    limit = DEFAULT_MAX_CONTAINERS if max_containers is None else max_containers
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > limit:
        raise InputError(f"{where}: {containers} JSON arrays and objects, more than the limit of {limit}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
        _check_values(data)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise InputError(f"{where}: not valid JSON (truncated or corrupt?): {exc}") from None
    return data
