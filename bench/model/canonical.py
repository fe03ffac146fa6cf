"""Canonical JSON: the RFC 8785 bytes a signature covers, and the signed view of a document (what it leaves out).

Canonical JSON comes from the `rfc8785` package (sorted keys, shortest round-trip numbers, no whitespace), so any
verifier in any language that implements RFC 8785 gets the same bytes; a fast path through the standard library's C
encoder gives the same bytes where it can (tests/report/test_canonical.py holds the two together). Pure: nothing here
knows keys or reports, so the model, the stream records and signing all stand on it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
import rfc8785

#: The key under which a document keeps its signature block, which its canonical bytes leave out.
SIGNATURE_FIELD = "signature"


#: Per-measurement arrays that the signed bytes cover through their digest (samples_sha256) rather than verbatim:
#: canonicalizing thousands of floats in pure Python would make verifying a fleet slow, and hashing their binary64
#: bytes is exact, fast and just as binding (changing a sample means finding a SHA-256 preimage).
RAW_ARRAYS = ("warmup_s", "samples_s")


def signed_view(data: dict[str, Any]) -> dict[str, Any]:
    """What the signature covers: the document without its signature block, with each measurement's raw arrays left
    out (their samples_sha256, which stays in, binds them)."""
    view = {k: v for k, v in data.items() if k != SIGNATURE_FIELD}
    if isinstance(view.get("measurements"), list):
        view["measurements"] = [
            {k: v for k, v in m.items() if k not in RAW_ARRAYS} if isinstance(m, dict) else m
            for m in view["measurements"]
        ]
    return view


#: RFC 8785 writes numbers as IEEE-754 binary64, so it carries integers exactly only up to this magnitude; a larger
#: count must be written in a larger unit (GiB, PFLOP) or as a decimal string (see exact_count).
MAX_SAFE_INTEGER = 2**53 - 1


class UncarriableNumber(ValueError):
    """A document holds an integer RFC 8785 cannot carry exactly; the message names the field."""


def _uncarriable(obj: Any, path: str) -> tuple[str, int] | None:
    """(JSON path, value) of the first integer beyond MAX_SAFE_INTEGER in obj, depth first in key order."""
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        return (path or "(document)", obj) if abs(obj) > MAX_SAFE_INTEGER else None
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            found = _uncarriable(obj[k], f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, x in enumerate(obj):
            found = _uncarriable(x, f"{path}[{i}]")
            if found:
                return found
    return None


class _Slow(Exception):
    """A value the fast path does not handle: the rfc8785 package canonicalizes the document instead."""


_PLACEHOLDER = re.compile(r'"\\u0000(\d+)\\u0000"')


def _fast_canonical(view: Any) -> bytes | None:
    """The RFC 8785 bytes of `view` through the standard library's C JSON encoder, or None where that could differ
    from the rfc8785 package (which then does the work: it is exact, and about 5x slower on a large document).

    The encoder already writes what RFC 8785 asks for with sorted keys, ',' and ':' separators and no ASCII escaping:
    the same string escapes (the two tables are the same), integers in decimal, true/false/null. What differs is
    handled here: a float whose shortest repr has no exponent is RFC 8785's form too, except that an integral one
    ('700.0') is written as an integer ('700'); a float with an exponent is written by rfc8785 itself (through a
    placeholder string replaced afterwards). Keys sort by UTF-16 code units in RFC 8785 and by code points in Python,
    the same order unless a key holds a character beyond U+FFFF; such a key, an exact-type mismatch (a dict or float
    subclass), a NUL in any string (it could collide with a placeholder), a non-finite float or an integer beyond 2^53
    take the slow path. tests/report/test_canonical.py holds the two to the same bytes on fuzzed and real documents."""
    floats: list[str] = []

    def num(o: float) -> Any:
        # repr writes no exponent from 1e-4 up to (not including) 1e16: there an integral float is written as an
        # integer and any other as repr has it, without building repr
        if o.is_integer():
            if -1e16 < o < 1e16:
                return int(o)
        elif 1e-4 <= abs(o) < 1e16:
            return o
        if not math.isfinite(o):
            raise _Slow
        text = repr(o)
        if "e" in text:
            floats.append(rfc8785.dumps(o).decode("ascii"))
            return f"\x00{len(floats) - 1}\x00"
        return int(o) if text.endswith(".0") else o

    def conv(o: Any) -> Any:
        # scalars are handled inline in the container loops (a device row is a dict of scalars, a country holds a
        # million): a call per value was most of the time
        t = type(o)
        if t is dict:
            out = {}
            for k, x in o.items():
                if type(k) is not str or "\x00" in k or (not k.isascii() and max(map(ord, k)) > 0xFFFF):
                    raise _Slow
                tx = type(x)
                if tx is str:
                    if "\x00" in x:
                        raise _Slow
                    out[k] = x
                elif tx is float:
                    out[k] = num(x)
                elif tx is int:
                    if abs(x) > MAX_SAFE_INTEGER:
                        raise _Slow
                    out[k] = x
                elif x is None or tx is bool:
                    out[k] = x
                else:
                    out[k] = conv(x)
            return out
        if t is list or t is tuple:
            items = []
            for x in o:
                tx = type(x)
                if tx is float:
                    items.append(num(x))
                elif tx is str:
                    if "\x00" in x:
                        raise _Slow
                    items.append(x)
                elif tx is int:
                    if abs(x) > MAX_SAFE_INTEGER:
                        raise _Slow
                    items.append(x)
                elif x is None or tx is bool:
                    items.append(x)
                else:
                    items.append(conv(x))
            return items
        if t is str:
            if "\x00" in o:
                raise _Slow
            return o
        if t is float:
            return num(o)
        if t is int:
            if abs(o) > MAX_SAFE_INTEGER:
                raise _Slow
            return o
        if o is None or t is bool:
            return o
        raise _Slow

    try:
        text = json.dumps(conv(view), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if floats:
            text = _PLACEHOLDER.sub(lambda m: floats[int(m.group(1))], text)
        return text.encode("utf-8")
    except (_Slow, RecursionError, UnicodeEncodeError, TypeError, ValueError):
        return None


#: The exact types plain_values takes: JSON's scalars and containers, no subclass (an IntEnum, a str subclass, an
#: array('d')), nothing json or msgspec would write its own way.
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), dict, list, tuple})
_PLAIN_CONTAINERS = frozenset({dict, list, tuple})
#: Deeper than this, plain_values leaves a document to the writers that bound their own recursion.
PLAIN_MAX_DEPTH = 128


def plain_values(root: Any, max_int: int) -> int | None:
    """The number of integral floats in `root`, or None unless every value is one that msgspec's C encoder writes as
    both the standard library's json (float repr) and RFC 8785 write it, apart from an integral float's '.0': exact
    JSON types (_PLAIN_TYPES) with str keys, nested at most PLAIN_MAX_DEPTH deep, integers within +-max_int, and
    floats finite and written without an exponent by all three, i.e. integral within +-1e16 but not -0.0 (RFC 8785
    writes '0'), or of magnitude from 1e-4 up to 1e16 (msgspec writes 9.99e-05 as '0.0000999', repr with an
    exponent). What it says nothing of, the strings, the callers read from the writing (a backslash, a byte beyond
    ASCII). One pass of C calls per container (the types of its keys and values as sets); a Python loop only over
    a container holding floats or integers (a capacity report's device rows: about 2 us each)."""
    integral = 0
    stack: list[tuple[Any, int]] = [(root, 0) if type(root) in _PLAIN_CONTAINERS else ([root], 0)]
    while stack:
        value, depth = stack.pop()
        if depth > PLAIN_MAX_DEPTH:
            return None
        if type(value) is dict:
            if value and set(map(type, value)) != _STR_TYPE:
                return None
            items: Any = value.values()
        else:
            items = value
        types = set(map(type, items))
        if not types <= _PLAIN_TYPES:
            return None
        if float in types:
            for x in items:
                if type(x) is float:
                    if x.is_integer():
                        if not -1e16 < x < 1e16 or (x == 0.0 and math.copysign(1.0, x) < 0):
                            return None
                        integral += 1
                    elif not 1e-4 <= abs(x) < 1e16:  # NaN and the infinities fail here too
                        return None
        if int in types:
            for x in items:
                if type(x) is int and not -max_int <= x <= max_int:
                    return None
        if not types.isdisjoint(_PLAIN_CONTAINERS):
            stack.extend((x, depth + 1) for x in items if type(x) in _PLAIN_CONTAINERS)
    return integral


_STR_TYPE = {str}


def _msgspec_canonical(view: Any) -> bytes | None:
    """RFC 8785 bytes of `view` from msgspec's C encoder (sorted keys, compact; 5-10x faster than the standard
    library's with sort_keys on a capacity report's device rows), or None where they could differ: a value
    plain_values refuses (integers beyond 2^53 included), a backslash in the writing (a string holding a quote, a
    backslash or a control character: the escapes are left to the other writers), a character beyond U+FFFF (keys
    sort by UTF-16 code units in RFC 8785). What remains is written alike but for the integral floats, 'N.0' in
    msgspec and 'N' in RFC 8785: each is followed by one of ',]}', so when as many '.0' stand before one of those as
    plain_values counted integral floats, none stands inside a string and dropping them all is exact."""
    integral = plain_values(view, MAX_SAFE_INTEGER)
    if integral is None:
        return None
    try:
        written = _MSGSPEC_SORTED.encode(view)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None
    if b"\\" in written or (not written.isascii() and _ASTRAL_UTF8.search(written)):
        return None
    if integral:
        if written.count(b".0,") + written.count(b".0]") + written.count(b".0}") != integral:
            return None
        for end in (b",", b"]", b"}"):
            written = written.replace(b".0" + end, end)
    return written


def canonical(data: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the signed view of `data`. UncarriableNumber, naming the field, for an integer beyond
    ±MAX_SAFE_INTEGER (RFC 8785 would change its value or, in the rfc8785 package, raise IntegerDomainError)."""
    return canonical_bytes(signed_view(data))


def canonical_bytes(view: Any) -> bytes:
    """RFC 8785 bytes of `view` itself (canonical() takes a document's signed view first); UncarriableNumber as
    there."""
    fast = _msgspec_canonical(view)
    if fast is None:
        fast = _fast_canonical(view)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(view)
    except rfc8785.IntegerDomainError:
        found = _uncarriable(view, "")
        where, value = found if found else ("a field", None)
        raise UncarriableNumber(
            f"{where} = {value} is beyond the integers a signed document can carry exactly (RFC 8785: up to 2^53 - 1 "
            "= 9007199254740991); write it in a larger unit or as a decimal string"
        ) from None


def block_bytes(block: Any) -> bytes:
    """rfc8785.dumps(block) for a signature block (what names a signed report with its body): for an object of ASCII
    strings, written by the standard library's C encoder with sorted keys, which spells those exactly as RFC 8785
    does (the same escapes; no character beyond U+FFFF, so code-point order is UTF-16 order); by rfc8785 otherwise."""
    if type(block) is dict and all(
        type(k) is str and type(v) is str and k.isascii() and v.isascii() for k, v in block.items()
    ):
        return json.dumps(block, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("ascii")
    return rfc8785.dumps(block)


class _NotCanonical(Exception):
    """Raised by parse_canonical's hooks: the text is not the canonical form of what it holds."""


def _float_spelling(token: str) -> str:
    """canonical_bytes' spelling of the float json writes as `token` (its repr, with an exponent)."""
    value = float(token)
    if 1e-6 <= abs(value) < 1e-4:  # RFC 8785 writes these plainly, with the digits repr gives them (d.ddd e-5 or e-6)
        mantissa, exponent = token.split("e")
        return ("-" if value < 0 else "") + "0." + "0" * (-int(exponent) - 1) + mantissa.lstrip("-").replace(".", "")
    return canonical_bytes(value).decode("ascii")


#: A float as json writes it with an exponent (repr's form below 1e-4 and from 1e16), as a whole token of json's
#: compact output: after one of ':,[' and before one of ',]}'.
_EXPONENT_FLOAT = re.compile(r"([:,\[])(-?[0-9]+(?:\.[0-9]+)?e[-+][0-9]+)(?=[,\]}])")


#: Most 'e-' and 'e+' (floats with an exponent, or those characters in strings) a text may hold for parse_canonical to
#: respell the floats among them (a Python call each); a text holding more (no honest record does: a measurement holds
#: a few) is left to canonicalizing, so that a string full of float look-alikes costs no more than the slow path.
_MAX_EXPONENT_MARKS = 256


#: Characters from an exponent's 'e' to either end of a float json writes (repr: at most 17 digits, a sign, a point,
#: a three-digit exponent, and the delimiter before it).
_TOKEN_REACH = 32


def _marks(text: str, mark: str) -> list[int]:
    found = []
    at = text.find(mark)
    while at >= 0:
        found.append(at)
        at = text.find(mark, at + 2)
    return found


def _respell_exponents(written: str) -> str:
    """json's compact output with each float written with an exponent respelled as canonical_bytes spells it. In that
    output a number starts after one of ':,[' and ends before one of ',]}' (_EXPONENT_FLOAT). Each 'e-' and 'e+' is
    found by str.find, and the pattern is matched only within _TOKEN_REACH of it, where every float json writes lies
    whole: linear in the text (the caller bounds the marks: _MAX_EXPONENT_MARKS), where the pattern run over the
    whole text cost a regular-expression step a character, most of reading an honest record's line. A token inside a
    string that looks like such a float may be respelled too (or not, when longer than the reach): see
    parse_canonical for why that can only make the comparison fail."""
    if "e-" not in written and "e+" not in written:
        return written
    out: list[str] = []
    done = 0
    for at in sorted(_marks(written, "e-") + _marks(written, "e+")):
        if at < done:
            continue
        for m in _EXPONENT_FLOAT.finditer(written, max(done, at - _TOKEN_REACH), at + _TOKEN_REACH):
            if m.start(2) <= at < m.end(2):
                out += (written[done : m.start(2)], _float_spelling(m.group(2)))
                done = m.end(2)
                break
    return "".join(out) + written[done:] if out else written


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: no JSON number, canonical or not


def _safe_integer(token: str) -> int:
    value = int(token)
    if len(token) > 15 and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(token)  # canonical_bytes refuses it: no text holding it is canonical
    return value


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
#: Keeps only brackets, each object's as a list's: in valid JSON they pair up alike, and one kind lets one replace a
#: round empty exactly one level (emptying '[]' then '{}' in one round took '{[]}' two levels at once).
_BRACKETS = str.maketrans("{}", "[]", "".join(chr(c) for c in range(128) if chr(c) not in "[]{}"))


def _depth_within(text: str, max_depth: int) -> bool:
    """Whether no container in the JSON `text` (valid) lies deeper than max_depth, the outermost at depth 0: the
    brackets outside its strings, emptied pair by pair, one level each round. Strings are found by splitting at '"'
    once the escapes that hold a backslash or a quote are taken out ('\\\\' first, then '\\"': a run of backslashes in
    JSON starts at an escape), so that an escaped quote does not turn the rest of the text inside out."""
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    skeleton = "".join(text.split('"')[0::2])
    if not skeleton.isascii():
        skeleton = "".join(c for c in skeleton if c in "[]{}")
    brackets = skeleton.translate(_BRACKETS)
    for _ in range(max_depth + 1):
        if not brackets:
            return True
        brackets = brackets.replace("[]", "")
    return not brackets


def _parse_canonical_stdlib(text: str, max_depth: int = 1 << 30) -> tuple[bool, Any]:
    """(True, json.loads(text)) when `text` is exactly the canonical form of the JSON object it holds, that is when
    canonical_bytes(json.loads(text)) == text.encode("utf-8"), and no container in it lies deeper than max_depth (the
    object at depth 0); (False, None) otherwise, or when unsure (then canonicalize and compare). Costs a parse and a
    write by the standard library's C JSON code, where canonicalizing walks every value in Python.

    How: json writes the parsed value back with sorted keys, ',' and ':' and no escaping beyond JSON's own (D); the
    text must equal D once D's floats written with an exponent are spelled as canonical_bytes spells them. D differs
    from canonical_bytes(value) only where canonical.py's fast path adjusts the C encoder's output (_fast_canonical):
    - floats: the C encoder writes repr; canonical_bytes writes repr too from 1e-4 to 1e16 unless integral, an
      integral float as an integer, and the others through rfc8785. So D holding '.0' before one of ',]}' (an
      integral float, or those characters in a string) answers False, and each float D writes with an exponent is
      replaced by canonical_bytes' spelling of it (_respell_exponents) before comparing;
    - integers: both write str(); one beyond MAX_SAFE_INTEGER (which canonical_bytes refuses) answers False;
    - keys: json sorts by code point, RFC 8785 by UTF-16 code unit: the same order unless a key holds a character
      beyond U+FFFF, so a text holding one answers False;
    - strings: the two escape alike (the tables in _fast_canonical's docstring); a NUL, which the fast path leaves to
      rfc8785, is escaped by both as \u0000.
    A respelling can land inside a string of D (its characters: digits, '.', '-', '+', 'e'). Where it changes that
    string, D' parses to another value than the text does, so D' == text is impossible: a respelling inside a string
    can only turn a True into a False. Anything the text holds that D does not write back (whitespace, another escape
    or number spelling, a key given twice, keys out of order) makes the two differ. NaN and Infinity are refused; a
    number that overflows binary64 makes json refuse to write D. So what strict_json refuses besides depth never
    answers True, and depth is checked here. tests/report/test_canonical.py holds the answer to canonical_bytes on
    fuzzed and mutated texts."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_safe_integer)
        written = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (RecursionError, ValueError):
        return False, None
    if type(value) is not dict or ".0," in written or ".0]" in written or ".0}" in written:
        return False, None
    if not text.isascii() and _ASTRAL.search(text):
        return False, None
    if written.count("e-") + written.count("e+") > _MAX_EXPONENT_MARKS:  # unsure: canonicalize instead
        return False, None
    if _respell_exponents(written) != text:
        return False, None
    # a container per '[' or '{' at most, those inside strings included: only a text holding many is walked
    if text.count("[") + text.count("{") > max_depth and not _depth_within(text, max_depth):
        return False, None
    return True, value


class _Unsure(Exception):
    """Raised while parsing: the msgspec check cannot vouch for its answer (the standard library's check decides)."""


def _plain_float(token: str) -> float:
    """msgspec's float_hook: the float a JSON number token holds, parsed as json.loads parses it (float()); _Unsure for
    one msgspec writes otherwise than RFC 8785 in every position: integral ('700.0', '-0.0', RFC 8785 '700', '0'),
    from 1e16 on ('1e16', RFC 8785 '10000000000000000' or '1e+21') and overflowing (inf)."""
    value = float(token)
    if value.is_integer() or not -1e16 < value < 1e16:
        raise _Unsure
    return value


_MSGSPEC_DECODER = msgspec.json.Decoder(float_hook=_plain_float)
_MSGSPEC_SORTED = msgspec.json.Encoder(order="sorted")
#: bytes.translate table for finding long integers: each digit becomes '9', '.' stays, every other byte a space, so
#: that an integer token of 16 digits or more (from 10^15, which takes in everything beyond MAX_SAFE_INTEGER and 2^63)
#: reads ' 9999999999999999' (after ':', ',', '[' or '-'), where a float's digits after its point follow a '.'.
_DIGIT_RUNS = bytes(
    ord("9") if chr(c).isdigit() and c < 128 else ord(".") if c == ord(".") else ord(" ") for c in range(256)
)
_LONG_INTEGER = b" " + b"9" * 16
#: A UTF-8 lead byte of a character beyond U+FFFF (four bytes).
_ASTRAL_UTF8 = re.compile(rb"[\xf0-\xf4]")


def plain_small(token: bytes) -> bytes:
    """RFC 8785's spelling of a float msgspec wrote with a negative exponent ('3.14e-6'): plain from 1e-6 on
    ('0.00000314', the same shortest digits), msgspec's own below (RFC 8785 writes '1.5e-7' as msgspec does)."""
    mantissa, exponent = token.split(b"e")
    power = -int(exponent)
    if power > 6:
        return token
    sign = b"-" if mantissa[:1] == b"-" else b""
    return sign + b"0." + b"0" * (power - 1) + mantissa.lstrip(b"-").replace(b".", b"")


def _respell_negative_exponents(written: bytes) -> bytes:
    """msgspec's compact writing with each float written with a negative exponent, a whole token between one of
    ':,[' and one of ',]}', respelled by plain_small. A token inside a string that looks like one may be respelled
    too: compared with the text read, that can only turn a True into a False (see _parse_canonical_stdlib)."""
    out: list[bytes] = []
    done = 0
    at = written.find(b"e-")
    while at >= 0:
        # the token's mantissa: the run of digits, points and signs that ends at the 'e', asked of C over the bytes
        # before it (msgspec writes a mantissa in 19 bytes at most: a longer run lies in a string, left as it is there)
        before = written[max(done, at - _MANTISSA_MAX) : at]
        start = at - len(before) + len(before.rstrip(_MANTISSA_BYTES))
        end = _EXPONENT_DIGITS.match(written, at + 2).end()  # type: ignore[union-attr]
        if start < at and end > at + 2 and written[start - 1 : start] in (b":", b",", b"[") and written[
                end : end + 1] in (b",", b"]", b"}"):  # fmt: skip
            out += (written[done:start], plain_small(written[start:end]))
            done = end
        at = written.find(b"e-", at + 2)
    return b"".join(out) + written[done:] if out else written


#: _respell_negative_exponents' token ends: what a number msgspec writes with an exponent is made of before its 'e'
#: (digits, a point and a sign), how far back it is looked for, and the exponent's digits.
_MANTISSA_BYTES = b"0123456789.-"
_MANTISSA_MAX = 32
_EXPONENT_DIGITS = re.compile(rb"[0-9]*")


def _parse_canonical_msgspec(raw: bytes, max_depth: int) -> tuple[bool, Any] | None:
    """parse_canonical through msgspec's C decoder and encoder (a fifth of the standard library's cost on a record):
    (True, value) when raw is the canonical form of the object it holds, (False, None) when it is not, None when
    unsure (the standard library's check then answers).

    Why a True is right: msgspec decodes raw to `value` (floats through _plain_float, that is float(), as json.loads
    reads them; anything that is not JSON, bytes that are not UTF-8, a lone surrogate, NaN or a number that overflows
    make it refuse: unsure). E, msgspec's compact writing of value with sorted keys, is standard JSON of value, so
    E == raw says raw parses (json.loads too) to value. E is canonical_bytes(value) when:
    - floats: msgspec writes the shortest round-trip digits, as repr and RFC 8785 do, and places the point as RFC
      8785 does for every float _plain_float lets through (not integral, below 1e16 in magnitude), except that it
      writes an exponent ('3.14e-6') where RFC 8785 writes 1e-6 <= |x| < 1e-5 plainly: each float written with 'e-'
      is respelled as canonical_bytes spells it (_respell_negative_exponents: a respelling inside a string can only
      turn a True into a False, see _parse_canonical_stdlib);
    - integers: both write str(); a token of 16 digits or more (beyond MAX_SAFE_INTEGER, which canonical_bytes
      refuses, and beyond 2^63, which strict_json refuses) is looked for in raw, a run of digits not after '.':
      unsure;
    - keys: msgspec sorts by code point, RFC 8785 by UTF-16 code unit: the same order unless a key holds a character
      beyond U+FFFF: raw holding one is unsure;
    - strings: msgspec escapes '"', '\\' and the controls below U+0020 (\\b \\t \\n \\f \\r short, the rest \\u00xx in
      lower case) and writes everything else as UTF-8, as RFC 8785 does.
    tests/report/test_canonical.py holds the answers to canonical_bytes on fuzzed and mutated texts."""
    try:
        value = _MSGSPEC_DECODER.decode(raw)
    except (_Unsure, msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError):
        return None
    if type(value) is not dict:
        return False, None
    if _LONG_INTEGER in raw.translate(_DIGIT_RUNS) or (not raw.isascii() and _ASTRAL_UTF8.search(raw)):
        return None
    written = _MSGSPEC_SORTED.encode(value)
    if b"e-" in written:
        if written.count(b"e-") > _MAX_EXPONENT_MARKS:
            return None
        written = _respell_negative_exponents(written)
    if written != raw:
        return False, None
    # a container per '[' or '{' at most, those inside strings included: only a text holding many is walked
    if raw.count(b"[") + raw.count(b"{") > max_depth and not _depth_within(raw.decode("utf-8"), max_depth):
        return False, None
    return True, value


def parse_canonical(text: str | bytes, max_depth: int = 1 << 30) -> tuple[bool, Any]:
    """(True, json.loads(text)) when `text` (str, or its UTF-8 bytes) is exactly the canonical form of the JSON object
    it holds, that is when canonical_bytes(json.loads(text)) == text.encode("utf-8"), and no container in it lies
    deeper than max_depth (the object at depth 0); (False, None) otherwise, or when unsure (then canonicalize and
    compare). msgspec answers first (_parse_canonical_msgspec); where it is unsure or says False, the standard
    library's check (_parse_canonical_stdlib) answers, so a True from either is exact and no text the standard
    library check accepted is turned away."""
    raw = text if isinstance(text, bytes) else None
    if raw is None:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: canonical_bytes cannot write it
            return False, None
    answer = _parse_canonical_msgspec(raw, max_depth)
    if answer is not None and answer[0]:
        return answer
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return False, None
    return _parse_canonical_stdlib(text, max_depth)
