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

import msgspec
import rfc8785

from bench.model.canonical import (
    _ASTRAL_UTF8,
    _DIGIT_RUNS,
    _LONG_INTEGER,
    _MSGSPEC_SORTED,
    MAX_SAFE_INTEGER,
    RAW_ARRAYS,
    SIGNATURE_FIELD,
    plain_small,
)
from bench.model.strict_json import DEFAULT_MAX_CONTAINERS, MAX_DEPTH, MAX_INT


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

    Why the answers are the slow path's: json.loads(raw) is what strict_json parses (as text: given bytes, json.loads
    would guess UTF-16 or UTF-32 from NUL bytes), unless raw holds what strict_json
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
        # parsed as text, as strict_json parses it: given bytes, json.loads guesses UTF-16 or UTF-32 from where NUL
        # bytes fall, and bytes below 0x80 may be either (then no b'\\u' shows an escape either)
        value = json.loads(raw.decode("ascii"), parse_constant=_refuse_constant)
        if type(value) is not dict or not isinstance(value.get(SIGNATURE_FIELD), dict) or "measurements" in value:
            return None  # unsigned, or a node report's raw arrays (canonical.RAW_ARRAYS): canonical.signed_view decides
        view = {k: v for k, v in value.items() if k != SIGNATURE_FIELD}
        _walk(value[SIGNATURE_FIELD], 2)
        integral = _walk(view, 1)
        members = {k: json.dumps(k, ensure_ascii=False) + ":" + _write(v) for k, v in value.items()}
        if raw.count(b":") != sum(m.count(":") for m in members.values()):
            return None  # a key given twice
        body = "{" + ",".join(members[k] for k in sorted(view)) + "}"
        if integral:
            # json writes an integral float 'N.0' and no other float ending so: as many '.0' before one of ',]}' as
            # integral floats leaves none inside a string, and each is dropped by str.replace (a pattern whose
            # replacement names groups costs a Python call a match: 3x the slow path on a document of them)
            if body.count(".0,") + body.count(".0]") + body.count(".0}") != integral:
                return None
            for end in (",", "]", "}"):
                body = body.replace(".0" + end, end)
        return value, body.encode("ascii")
    except (_Unsure, RecursionError, ValueError, TypeError):
        return None


def _write(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: A number msgspec writes otherwise than RFC 8785, in a piece of its compact writing that lies outside every string:
#: with an exponent ('3.1e-6', '1e16') or integral ('700.0', '-0.0'), a whole token (after no digit or point).
_RESPELLED = re.compile(rb"(?<![0-9.])-?[0-9]+(?:\.[0-9]+)?e[-+]?[0-9]+|(?<![0-9.])-?[0-9]+\.0(?=[,\]}])")
#: An integral float as msgspec writes it ends in '.0' before one of ',]}' ('700.0', '-0.0'; from 1e15 its 16 digits
#: send the report to the slow path), and outside the strings nothing else does: RFC 8785 writes the digits without it
#: (_drop_integral_points), and -0.0 as '0' (_NEGATIVE_ZERO, after it). Not through _respell: a report may hold
#: millions, and a Python call each cost 4-5x the slow path.
_NEGATIVE_ZERO = re.compile(rb"(?<![0-9.e])-0(?=[,\]}])")
#: Every byte but the brackets, deleted to leave a writing's nesting.
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_BRACKETS_AS_LISTS = bytes.maketrans(b"{}", b"[]")


def _drop_integral_points(piece: bytes) -> bytes:
    """A piece of msgspec's writing outside the strings with each integral float's '.0' dropped ('700.0' -> '700')."""
    for end in (b",", b"]", b"}"):
        piece = piece.replace(b".0" + end, end)
    return piece


def _respell(match: re.Match[bytes]) -> bytes:
    """RFC 8785's spelling of a float msgspec wrote with an exponent or as integral ('700.0', '3.1e-6', '1e16')."""
    return rfc8785.dumps(float(match.group()))


#: A float as msgspec writes it with a negative exponent, a whole token ('3.1e-06'); the digits that end one.
_SMALL_FLOAT = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?e-[0-9]+")
_DIGITS = re.compile(rb"[0-9]*")


def _respell_small(written: bytes, expected: int) -> bytes | None:
    """written (no backslash in it: every '"' opens or closes a string) with each float outside the strings that
    msgspec wrote with a negative exponent respelled by canonical.plain_small; None unless exactly `expected` were
    found, `expected` being how many 'e-' lie outside the strings.

    Each 'e-' is taken as a token's when it lies in a whole number token (so after a digit: one after anything else,
    as in 'node-report', is passed over at once): after the last of ':,[' before it (at most
    24 bytes back: msgspec writes at most 17 significant digits, a point and a sign), matching _SMALL_FLOAT up to
    the 'e-' and through its exponent's digits, and followed by one of ',]}'. Every 'e-' outside the strings is one
    (compact JSON puts a delimiter on either side of a number), so the tokens found are the `expected` ones plus any
    that a string holds (':1e-5,' in a string looks like one); as many as `expected` found means none lay in a string.
    Where a quote count per 'e-' walked the writing in Python, this asks C for each token's ends."""
    out: list[bytes] = []
    done = found = 0
    at = written.find(b"e-")
    while at >= 0:
        if not at or not 48 <= written[at - 1] <= 57:  # no digit before the 'e' ('node-report'): not a token's
            at = written.find(b"e-", at + 2)
            continue
        back = max(0, at - 24)
        start = max(written.rfind(b":", back, at), written.rfind(b",", back, at), written.rfind(b"[", back, at)) + 1
        end = _DIGITS.match(written, at + 2).end()  # type: ignore[union-attr]
        if (
            start
            and end > at + 2
            and written[end : end + 1] in _CLOSERS
            and _SMALL_FLOAT.fullmatch(written, start, end)
        ):
            if start < done:
                return None
            out += (written[done:start], plain_small(written[start:end]))
            done = end
            found += 1
        at = written.find(b"e-", at + 2)
    return b"".join(out) + written[done:] if found == expected else None


_CLOSERS = (b",", b"]", b"}")


def _odd(piece: bytes) -> bool:
    """Whether a piece of the writing outside the strings may hold a float _RESPELLED matches: an 'e' beyond those of
    true and false, or '.0' before a delimiter."""
    if b".0," in piece or b".0]" in piece or b".0}" in piece:
        return True
    return b"e" in piece and piece.count(b"e") != piece.count(b"true") + piece.count(b"false")


def _within_depth(skeleton: bytes, max_depth: int) -> bool:
    """Whether no container lies deeper than max_depth (the outermost at 0) in a JSON writing without its strings."""
    brackets = skeleton.translate(_BRACKETS_AS_LISTS, _NOT_BRACKETS)
    for _ in range(max_depth + 1):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"")
    return not brackets


#: The types a raw-sample array may hold (constants: a set display is built anew at each call).
_FLOAT_ONLY, _FLOAT_INT = frozenset({float}), frozenset({float, int})


def _scalars(values: Any) -> bool:
    """Whether a raw-sample array holds only numbers strict_json accepts (no container, no integer beyond 64 bits)."""
    if type(values) is not list:
        return False
    kinds = set(map(type, values))
    if kinds <= _FLOAT_ONLY:
        return True
    return kinds <= _FLOAT_INT and -MAX_INT <= min(values) and max(values) <= MAX_INT


def _decoded(raw: bytes, max_containers: int | None) -> Any:
    """msgspec's reading of `raw`, or None when the fast paths are unsure before decoding: more containers than the
    strict parser allows, or a ':' spelled as an escape (the ':' count below would miss it), or what msgspec
    refuses."""
    limit = DEFAULT_MAX_CONTAINERS if max_containers is None else max_containers
    # a container takes a byte at least: a file no longer than the limit holds no more (two passes over it spared)
    if len(raw) > limit and count_byte(raw, b"[") + count_byte(raw, b"{") > limit:
        return None
    if b"\\" in raw and (b"\\u003a" in raw or b"\\u003A" in raw):  # memchr for the one byte first
        return None
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError, ValueError):
        return None


def _signature_colons(value: dict[str, Any]) -> int | None:
    """The ':' a signed document's signature member holds (its key's and its block's), or None when the block is
    not an object of strings."""
    block = value.get(SIGNATURE_FIELD)
    if type(block) is not dict or not all(type(v) is str for v in block.values()):
        return None
    return 1 + _MSGSPEC_SORTED.encode(block).count(b":")


def parse_node_report(raw: bytes, *, max_containers: int | None = None) -> tuple[dict[str, Any], bytes] | None:
    """(data, canonical bytes of its signed view) for a signed version-2 node report, read by msgspec's C decoder and
    written back by its C encoder; None when unsure (then strict_json.parse_json and canonical.canonical decide, with
    their words for any refusal). A node report's raw samples (canonical.RAW_ARRAYS) are outside its signed view,
    which parse_written does not take apart; and at 23 kB an eight-GPU report took 1.3 ms to parse strictly and
    canonicalize in Python, where this takes about a tenth.

    Why `data` is what strict_json.parse_json gives: msgspec parses JSON as json.loads does (UTF-8 only, floats
    correctly rounded, integers of any size) and refuses what it refuses (bytes that are not UTF-8, a BOM, NaN and
    Infinity, control characters in strings, lone surrogates, which json.loads would take: unsure), plus numbers that
    overflow binary64 (unsure). What strict_json refuses besides, and json.loads and msgspec take, is checked here:
    - more containers than the limit: counted in raw as strict_json counts them;
    - a key given twice (msgspec keeps the last): every ':' in raw is a member's or a character of a string, and with
      no '\\u003a' escape each is written back by msgspec as a ':' too; so raw holds as many ':' as the signed view's
      writing E, the signature block's, the 'signature' member's and the raw arrays' keys' when and only when no
      member was dropped (each raw array holding only numbers: no ':' of its own);
    - nesting deeper than MAX_DEPTH: the brackets outside E's strings (E has no backslash, so every '"' in it opens or
      closes a string: E.split('"') alternates between what lies outside strings and their contents), emptied pair
      by pair; the signature block must hold only strings and each raw array only numbers (at depth 4);
    - integers beyond 64 bits: a run of 16 digits or more outside E's strings (canonical.parse_canonical's test), and
      each raw array's minimum and maximum.
    Why the bytes are canonical.canonical(data): E is msgspec's compact writing of signed_view(data) with sorted keys
    (unsure when a key could hold a character beyond U+FFFF: UTF-16 order differs), which RFC 8785 writes alike
    except where noted. Strings: E holding a backslash (a string with a quote, backslash or control character) is
    unsure; other strings both write as they are. Integers: both write str(); one beyond MAX_SAFE_INTEGER (which
    canonical refuses) makes it unsure. Floats: msgspec writes the shortest round-trip digits as RFC 8785 does,
    and places the point alike except for three kinds, found outside the strings (E.split('"'), even pieces):
    integral ('700.0', '-0.0': '.0' before a delimiter), from 1e16 on ('1e16': an 'e' not followed by '-'), and
    a negative exponent where RFC 8785 writes 1e-6 <= |x| < 1e-5 plainly ('3.1e-6'). The usual case, only the last
    kind, is respelled by canonical.plain_small at each 'e-' whose count of '"' before it is even, exactly as many
    as outside the strings (_respell_small); otherwise each token of the three kinds in an even piece is respelled
    by rfc8785 itself (msgspec's spelling reads back as the same float). tests/report/test_canonical.py holds
    msgspec's spelling of every other float to rfc8785's; tests/report/test_node_document_fast_path.py holds the two
    paths to the same decisions and words on valid, re-signed, tampered and malformed reports."""
    value = _decoded(raw, max_containers)
    if type(value) is not dict or type(value.get("measurements")) is not list:
        return None
    colons = _signature_colons(value)
    if colons is None:
        return None
    # the signed view (canonical.signed_view: no signature member, no raw arrays) built as the arrays are checked
    measurements = []
    for m in value["measurements"]:
        if type(m) is dict:
            kept = m.copy()
            for key in RAW_ARRAYS:
                if key in kept:
                    if not _scalars(kept.pop(key)):
                        return None
                    colons += 1
            m = kept
        measurements.append(m)
    view = value.copy()
    del view[SIGNATURE_FIELD]
    view["measurements"] = measurements
    written = _MSGSPEC_SORTED.encode(view)
    canonical = _respelled(written, raw, colons)
    return None if canonical is None else (value, canonical)


def parse_signed(raw: bytes, *, max_containers: int | None = None) -> tuple[dict[str, Any], bytes] | None:
    """parse_node_report for a signed document without raw samples (a capacity report): (data, canonical bytes of its
    signed view, the document less its signature member) through msgspec, or None when unsure. The same reasons hold,
    with no raw array among the ':' counted (a 'measurements' member: unsure, parse_node_report's or the slow path's).
    A country's capacity reports are 3 MB each: parse_written's C parse and C write took 60 ms of a quiet core's time
    each, this a third of it (tests/report/test_signed_fast_path.py holds it to the slow path)."""
    value = _decoded(raw, max_containers)
    if type(value) is not dict or "measurements" in value:
        return None
    colons = _signature_colons(value)
    if colons is None:
        return None
    canonical = _respelled(
        _MSGSPEC_SORTED.encode({k: v for k, v in value.items() if k != SIGNATURE_FIELD}), raw, colons
    )
    return None if canonical is None else (value, canonical)


#: From this many bytes on, count_byte asks numpy (a vector compare) rather than bytes.count.
_VECTOR_COUNT_FROM = 4096


def count_byte(data: bytes, byte: bytes) -> int:
    """data.count(byte) for a single byte, the same number: bytes.count walks a byte at a time (6 instructions a byte,
    under callgrind); on a long buffer numpy's vectorized compare and count take a tenth of that, numpy's calls
    included. numpy is imported on first use (reading a document must not import it up front)."""
    if len(data) < _VECTOR_COUNT_FROM:
        return data.count(byte)
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte[0]))


#: From this many bytes on, _outside_strings asks numpy.
_VECTOR_OUTSIDE_FROM = 65536


def _outside_strings(written: bytes) -> bytes:
    """What lies outside the strings of a writing without backslashes (every '"' opens or closes one): the even pieces
    of written.split(b'"') joined, the same bytes. A country's capacity report (3 MB, 260,000 pieces) took 11-18 ms
    to split and join, half of reading one; from _VECTOR_OUTSIDE_FROM bytes on numpy gathers the same bytes from the
    quotes' positions in a few (tests/report/test_signed_fast_path.py holds the two alike on randomized writings)."""
    if len(written) < _VECTOR_OUTSIDE_FROM:
        return b"".join(written.split(b'"')[0::2])
    import numpy as np

    data = np.frombuffer(written, dtype=np.uint8)
    quotes = np.flatnonzero(data == ord('"'))
    if len(quotes) % 2:  # a string left open: as the split leaves it
        return b"".join(written.split(b'"')[0::2])
    starts = np.concatenate(([0], quotes[1::2] + 1))  # each even piece's [start, end): between a string and the next
    lengths = np.concatenate((quotes[0::2], [len(data)])) - starts
    before = np.cumsum(lengths) - lengths  # where each piece begins in the output
    return data[np.repeat(starts - before, lengths) + np.arange(int(lengths.sum()))].tobytes()


def _respelled(written: bytes, raw: bytes, colons: int) -> bytes | None:
    """msgspec's sorted compact writing of a signed view (`written`) as RFC 8785 writes it, or None when unsure: raw
    (the file) must hold as many ':' as `written` and the `colons` outside it (no member dropped), and `written` no
    backslash, no key beyond U+FFFF, no integer beyond 64 bits, no nesting beyond MAX_DEPTH (parse_node_report)."""
    if b"\\" in written or count_byte(raw, b":") != colons + count_byte(written, b":"):
        return None
    return rfc8785_writing(written, MAX_DEPTH - 1)


def rfc8785_writing(written: bytes, max_depth: int) -> bytes | None:
    """msgspec's sorted compact writing of a value (`written`) as RFC 8785 writes that value, or None when unsure:
    `written` holding a backslash (a string with a quote, backslash or control character), a key that could hold a
    character beyond U+FFFF (UTF-16 order differs), an integer of 16 digits or more (beyond 2^53, which RFC 8785
    refuses, or 2^63, which strict_json refuses), or a container deeper than max_depth (the outermost at 0; what
    strict_json refuses). Floats are respelled as parse_node_report's docstring says."""
    if b"\\" in written or (not written.isascii() and _ASTRAL_UTF8.search(written)):
        return None
    outside = _outside_strings(written)
    if _LONG_INTEGER in outside.translate(_DIGIT_RUNS) or not _within_depth(outside, max_depth):
        return None
    # floats msgspec spells otherwise: with an exponent (an 'e' outside the strings beyond those of true and false),
    # or integral ('700.0'); the usual ones, a negative exponent ('3.1e-6'), found by their 'e-' alone
    exponents = count_byte(outside, b"e") - outside.count(b"true") - outside.count(b"false")
    if b".0," in outside or b".0]" in outside or b".0}" in outside or exponents != outside.count(b"e-"):
        parts = written.split(b'"')
        for i in range(0, len(parts), 2):
            if _odd(parts[i]):
                piece = _drop_integral_points(parts[i])
                if b"-0" in piece:  # msgspec writes no integer '-0': it was '-0.0'
                    piece = _NEGATIVE_ZERO.sub(b"0", piece)
                parts[i] = _RESPELLED.sub(_respell, piece) if b"e" in piece else piece
        written = b'"'.join(parts)
    elif exponents:
        respelled = _respell_small(written, exponents)
        if respelled is None:
            return None
        written = respelled
    return written


__all__ = ["parse_node_report", "parse_signed", "parse_written", "rfc8785_writing"]
