"""A signed document as bench writes it (bench.report.store.dumps: json.dumps with a 2-space indent, sorted keys and
ASCII escapes), read with one C parse and one C write instead of a strict parse and a canonicalization walk.

A country's capacity reports are 3 MB each: the strict parse (bench.model.strict_json) and canonicalizing the signed
view (bench.model.canonical) walk every value in Python, most of what reading one costs. For a file bench wrote, the
same two answers come from the standard library's C code: `parse_written` parses the text, writes the value back in
the file's form minus its line breaks and indentation, and compares; where they are equal, the canonical bytes of
the signed view are that writing's compact form. Anything it is unsure of answers None, and the caller takes the
slow path, which accepts, refuses and words its refusals as before (tests/report/test_written_fast_path.py holds the
two to the same answers on valid, re-signed, tampered and malformed documents).
"""

from __future__ import annotations

import json
import re
from typing import Any

from bench.model.canonical import MAX_SAFE_INTEGER, SIGNATURE_FIELD
from bench.model.strict_json import DEFAULT_MAX_CONTAINERS, MAX_DEPTH

#: An integral float as json writes it ('700.0') between delimiters, in the compact form; RFC 8785 writes '700'.
_INTEGRAL = re.compile(r"([:,\[])(-?[0-9]+)\.0(?=[,\]}])")


class _Unsure(Exception):
    """The fast path cannot vouch for the answer: the caller parses and canonicalizes the slow way."""


def _refuse_constant(name: str) -> Any:
    raise _Unsure(name)


def _walk(root: Any) -> tuple[int, int]:
    """(keys, integral floats) in `root`; _Unsure for anything strict_json refuses or canonical_bytes writes another
    way than json's compact form with the integral floats respelled: nesting deeper than MAX_DEPTH, a float that
    overflowed or that json writes with an exponent, -0.0 (RFC 8785: '0'), an integer beyond 2^53."""
    keys = integral = 0
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Unsure
        if type(value) is dict:
            keys += len(value)
            items = value.values()
        else:
            items = value
        for c in items:
            t = type(c)
            if t is float:
                if c.is_integer():
                    if not -1e16 < c < 1e16 or (c == 0.0 and str(c)[0] == "-"):
                        raise _Unsure  # an exponent (1e+16) or -0.0
                    integral += 1
                elif not 1e-4 <= abs(c) < 1e16:
                    raise _Unsure  # an exponent, infinity (the parser refuses NaN)
            elif t is int:
                if c > MAX_SAFE_INTEGER or c < -MAX_SAFE_INTEGER:
                    raise _Unsure
            elif t is dict or t is list:
                stack.append((c, depth + 1))
    return keys, integral


def _write(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ": "), allow_nan=False)


def parse_written(raw: bytes, *, max_containers: int | None = None) -> tuple[dict[str, Any], bytes] | None:
    """(data, canonical bytes of its signed view) for a JSON object exactly as store.dumps writes it, give or take
    whitespace at line starts; None when unsure (then strict_json.parse_json and canonical.canonical decide).

    Why the answers are the slow path's: json.loads(raw) is `value`; json's C writer with store.dumps' separators
    (W) writes it back; raw less its line breaks and indentation equals W only if raw holds W's tokens in W's order:
    no key twice (W writes each once), keys sorted, no NaN (refused) and the same escapes, so strict_json parses raw
    to the same value. _walk refuses what else strict_json refuses (depth, overflow) and the values canonical_bytes
    spells otherwise. The signed view's canonical bytes are then W's (written member by member, less the signature
    member) with each key's ': ' made ':' and each integral float's '.0' dropped: each done only where the number of
    replacements equals the number of keys or integral floats _walk counted, so none of them lands inside a string.
    W written with ASCII escapes holding no '\\u' has no character the two escape differently."""
    limit = DEFAULT_MAX_CONTAINERS if max_containers is None else max_containers
    try:
        if not raw.isascii() or raw.count(b"[") + raw.count(b"{") > limit:
            return None
        value = json.loads(raw, parse_constant=_refuse_constant)
        if type(value) is not dict or not isinstance(value.get(SIGNATURE_FIELD), dict) or "measurements" in value:
            return None  # unsigned, or a node report's raw arrays (canonical.RAW_ARRAYS): canonical.signed_view decides
        members = {k: f"{json.dumps(k)}: {_write(v)}" for k, v in value.items()}
        # the whitespace store.dumps adds beyond json's (',', ': ') separators, each line break and the next line's
        # indent, taken out: JSON strings hold no raw line break (json.loads refuses control characters in them), so
        # every one lies between tokens, as does the indent after it
        if b"".join([line.lstrip(b" ") for line in raw.split(b"\n")]) != (
            "{" + ",".join(members[k] for k in sorted(members)) + "}"
        ).encode("ascii"):
            return None
        view = {k: v for k, v in value.items() if k != SIGNATURE_FIELD}
        _walk(value[SIGNATURE_FIELD])
        keys, integral = _walk(view)
        body = "{" + ",".join(members[k] for k in sorted(view)) + "}"
        if "\\u" in body or body.count('": ') != keys:
            return None
        body = body.replace('": ', '":')
        if integral:  # the pattern costs a step a character: only for a document holding integral floats
            body, respelled = _INTEGRAL.subn(r"\1\2", body)
            if respelled != integral:
                return None
        return value, body.encode("ascii")
    except (_Unsure, RecursionError, ValueError, TypeError):
        return None


__all__ = ["parse_written"]
