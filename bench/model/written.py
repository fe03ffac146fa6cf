"""A signed document as bench writes it (bench.report.store.dumps: json.dumps with a 2-space indent, sorted keys and
ASCII escapes), read with one C parse and one C write instead of a strict parse and a canonicalization walk.

A country's capacity reports are 3 MB each: the strict parse (bench.model.strict_json) and canonicalizing the signed
view (bench.model.canonical) walk every value in Python through hooks and conversions, most of what reading one
costs. For a document in ASCII without '\\u' escapes, the same two answers come from the standard library's C code:
`parse_written` parses the text, writes the value back compact with sorted keys, counts what tells a key given twice,
and takes that writing (less the signature member, integral floats respelled) as the canonical bytes. Anything it is unsure of answers None, and the caller takes the
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


def _walk(root: Any, depth: int) -> int:
    """The number of integral floats in `root`, a container at `depth` as strict_json counts it (the document at 1);
    _Unsure for anything strict_json refuses or canonical_bytes writes another
    way than json's compact form with the integral floats respelled: nesting deeper than MAX_DEPTH, a float that
    overflowed or that json writes with an exponent, -0.0 (RFC 8785: '0'), an integer beyond 2^53."""
    integral = 0
    stack: list[tuple[Any, int]] = [(root, depth)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Unsure
        for c in value.values() if type(value) is dict else value:
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
    return integral


def parse_written(raw: bytes, *, max_containers: int | None = None) -> tuple[dict[str, Any], bytes] | None:
    """(data, canonical bytes of its signed view) for a signed JSON object in ASCII with no '\\u' escape (as
    store.dumps writes a document of ASCII text); None when unsure (then strict_json.parse_json and
    canonical.canonical decide).

    Why the answers are the slow path's: json.loads(raw) is what strict_json parses, unless raw holds what strict_json
    refuses: NaN and Infinity (refused here too), a key twice, and what _walk refuses (depth, overflow, integers
    beyond 2^53, floats RFC 8785 spells otherwise than json). A key twice: json's C writer writes the value back (W);
    every ':' in raw is a key's or a character of a string, and with no '\\u' escape each string's ':' are its
    value's, which W writes as they are; so raw holds as many ':' as W when and only when no member was dropped.
    The canonical bytes of the signed view are then W's (sorted keys, compact; written member by member, less the
    signature member), with each integral float's '.0' dropped: done only where the number of replacements equals
    the number of integral floats _walk counted, so that none lands inside a string. Strings parsed from ASCII with no
    '\\u' hold ASCII with no control character but the five JSON writes short ('\\b\\f\\n\\r\\t', as RFC 8785 does):
    json without ASCII escapes writes them as RFC 8785 does (DEL, which ASCII escapes would write '\\u007f', included)."""
    limit = DEFAULT_MAX_CONTAINERS if max_containers is None else max_containers
    try:
        if not raw.isascii() or b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > limit:
            return None
        value = json.loads(raw, parse_constant=_refuse_constant)
        if type(value) is not dict or not isinstance(value.get(SIGNATURE_FIELD), dict) or "measurements" in value:
            return None  # unsigned, or a node report's raw arrays (canonical.RAW_ARRAYS): canonical.signed_view decides
        view = {k: v for k, v in value.items() if k != SIGNATURE_FIELD}
        _walk(value[SIGNATURE_FIELD], 2)
        integral = _walk(view, 1)
        members = {k: json.dumps(k, ensure_ascii=False) + ":" + _write(v) for k, v in value.items()}
        if raw.count(b":") != sum(m.count(":") for m in members.values()):
            return None  # a key given twice
        body = "{" + ",".join(members[k] for k in sorted(view)) + "}"
        if integral:  # the pattern costs a step a character: only for a document holding integral floats
            body, respelled = _INTEGRAL.subn(r"\1\2", body)
            if respelled != integral:
                return None
        return value, body.encode("ascii")
    except (_Unsure, RecursionError, ValueError, TypeError):
        return None


def _write(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


__all__ = ["parse_written"]
