"""Work a country repeats, done once: the site folders nested in one another found by their parents (tree.find_sites),
a declaration accepted before (declaration._ACCEPTED) and the schema's validator built once (document._validator),
each held to the plain form on randomized inputs."""

import copy
import gc
import json
import random

import jsonschema
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.disclosure import declaration as decl
from bench.disclosure import document as dd
from bench.disclosure import leaves, tree
from bench.disclosure.leaves import DisclosureError
from tests.disclosure import world

K = world.KEYS
TEXT = world.DECLARATION.format(region="North", city="Alpha", site="A1")


def _answer(fn, *args, **kw):
    """What a check gives: ('ok', data, text, signature, key id) or ('refused', its message)."""
    try:
        d = fn(*args, **kw)
    except (decl.DeclarationError, DisclosureError) as exc:
        return ("refused", str(exc))
    return ("ok", json.dumps(d.data, sort_keys=True, default=str), d.text, d.signature, d.key_id)


def _variants(rng):
    """Declarations and signatures, honest and not: other texts, keys, trust lists, signature fields retyped."""
    texts = [TEXT, TEXT.replace("share = 0.25", "share = 0.5"), TEXT.replace('site = "A1"', 'site = "A2"'),
             TEXT + "\nbogus = 1\n"]  # fmt: skip
    keys = [K.operator, K.node, Ed25519PrivateKey.from_private_bytes(bytes(range(32)))]
    for _ in range(60):
        text = rng.choice(texts)
        signed = text if rng.random() < 0.8 else rng.choice(texts)
        sig = decl.sign_text(signed.encode(), rng.choice(keys), world.NOW)
        r = rng.random()
        if r < 0.1:
            sig["schema_version"] = 1.0  # equal to 1 in Python, written otherwise
        elif r < 0.2:
            sig["schema_version"] = True
        elif r < 0.3:
            sig["kind"] = "bench.other"
        ops = rng.choice([None, {K.kid("operator")}, {K.kid("node")}, set()])
        nodes = rng.choice([None, {K.kid("node")}, {K.kid("operator")}])
        yield text, sig, ops, nodes


def test_a_declaration_check_answers_as_the_plain_check_whatever_was_accepted_before():
    rng = random.Random(20261207)
    decl._ACCEPTED.clear()
    cases = list(_variants(rng))
    seen_hit = False
    for text, sig, ops, nodes in cases * 2 + rng.sample(cases, len(cases)):
        hit = decl._accepted_key(text, sig, ops, nodes) in decl._ACCEPTED
        seen_hit |= hit
        plain = _answer(decl._check, text, copy.deepcopy(sig), operator_ids=ops, node_ids=nodes, where="here")
        fast = _answer(decl.check, text, sig, operator_ids=ops, node_ids=nodes, where="here")
        assert fast[:2] == plain[:2] and fast[2:] == plain[2:], (text, sig, ops, nodes)
        if fast[0] == "ok":
            got = decl.check(text, sig, operator_ids=ops, node_ids=nodes)
            assert got.signature is sig and got.text is text  # the caller's own objects, not a held one's
    assert seen_hit and decl._ACCEPTED  # the held path was taken


def test_a_held_declaration_is_not_changed_by_its_callers():
    decl._ACCEPTED.clear()
    sig = decl.sign_text(TEXT.encode(), K.operator, world.NOW)
    first = decl.check(TEXT, sig, operator_ids={K.kid("operator")}, node_ids=None)
    first.data["open_access"]["share"] = 0.99
    first.data["site"] = "elsewhere"
    again = decl.check(TEXT, sig, operator_ids={K.kid("operator")}, node_ids=None)
    assert again.data["open_access"]["share"] == 0.25 and again.path[-1] == "A1"


def test_a_refused_declaration_is_never_held():
    decl._ACCEPTED.clear()
    sig = decl.sign_text(TEXT.encode(), K.node, world.NOW)
    for _ in range(2):
        with pytest.raises(decl.DeclarationError, match="node key"):
            decl.check(TEXT, sig, operator_ids=None, node_ids={K.kid("node")})
    assert not decl._ACCEPTED


def _mutations(doc, rng):
    """A valid document changed at a random place: a key dropped, a value retyped, an item added."""
    out = copy.deepcopy(doc)
    paths = []

    def walk(x, at):
        if isinstance(x, dict):
            for k, y in x.items():
                paths.append((*at, k))
                walk(y, (*at, k))
        elif isinstance(x, list):
            for i, y in enumerate(x[:3]):
                paths.append((*at, i))
                walk(y, (*at, i))

    walk(out, ())
    path = rng.choice(paths)
    parent = out
    for p in path[:-1]:
        parent = parent[p]
    r = rng.random()
    if r < 0.3 and isinstance(parent, dict):
        del parent[path[-1]]
    elif r < 0.6:
        parent[path[-1]] = rng.choice(["x", -1, 1.5, None, [], {}, True])
    elif isinstance(parent, dict):
        parent["unexpected_" + str(rng.randrange(9))] = 1
    else:
        parent.append({"x": 1})
    return out


def test_the_schema_check_finds_what_a_new_validator_finds(tmp_path):
    docs = [world.read(p) for p in world.country(tmp_path).values()]
    rng = random.Random(7)
    refused = 0
    for _ in range(150):
        data = _mutations(rng.choice(docs), rng)
        fresh = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(dd.schema()).iter_errors(data))
        try:
            dd.check(data, "d")
            got = None
        except DisclosureError as exc:
            got = str(exc)
        if fresh is not None:
            refused += 1
            at = "/".join(map(str, fresh.absolute_path)) or "(document)"
            assert got == f"d: schema: at {at}: {fresh.message[:300]}"
        else:
            assert got is None or "schema" not in got
    assert refused > 50


def _pairwise_outer(sites):
    """find_sites' plain form: every pair of site folders tested, the first outer one in path order named."""
    for folder in sites:
        outer = [f for f in sites if f != folder and tree._inside(folder, f)]
        if outer:
            return f"{folder}: a site folder inside site folder {outer[0]}"
    return None


def test_a_site_folder_inside_another_is_named_as_testing_every_pair_names_it(tmp_path):
    rng = random.Random(11)
    names = ["a", "b", "ab", "a b", "z", "a.b", "a-1"]
    for trial in range(40):
        root = tmp_path / f"t{trial}"
        folders = set()
        for _ in range(rng.randrange(1, 9)):
            depth = rng.randrange(1, 4)
            folders.add(root.joinpath(*(rng.choice(names) for _ in range(depth))))
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "site.toml").write_text("x = 1\n")
            (folder / f"site.toml{decl.SIGNATURE_SUFFIX}").write_text("{}")
        expected = _pairwise_outer(sorted(folders))
        try:
            found = tree.find_sites(root)
            got = None
        except DisclosureError as exc:
            got = str(exc)
            found = None
        assert got == expected, (sorted(folders), got, expected)
        if found is not None:
            assert [s.folder for s in found] == sorted(folders)


def test_building_and_verifying_a_tree_leave_the_collector_as_they_found_it(tmp_path):
    """tree.build and verify freeze the heap (pool.frozen_heap) while they work; it is unfrozen after, refused or not."""
    from bench.disclosure.leaves import Store
    from bench.report import pool

    world.site_folders(tmp_path, (("North", "Alpha", "A1", [1, 2]), ("South", "Beta", "B1", [3])))
    built = tree.build(tmp_path / "in", policy=K.policy(), as_of=world.AS_OF, write=world.write_disclosure,
                       output=tmp_path / "out", now=world.NOW)  # fmt: skip
    assert gc.get_freeze_count() == 0 and not pool._FROZEN
    assert dd.verify(built[0].doc.data, Store(tmp_path), "d") == []
    assert gc.get_freeze_count() == 0 and not pool._FROZEN
    (tmp_path / "in" / "North" / "Alpha" / "A1" / "capacity.json").unlink()
    with pytest.raises(DisclosureError):
        tree.build(tmp_path / "in", policy=K.policy(), as_of=world.AS_OF, write=world.write_disclosure,
                   output=tmp_path / "out2", now=world.NOW)  # fmt: skip
    assert gc.get_freeze_count() == 0 and not pool._FROZEN


def _random_rows(rng, n):
    """Device rows whose columns infer differing dtypes from leaf to leaf (None or a number, an int or a float)."""
    rows = []
    for i in range(n):
        row = {}
        for key, types in leaves._ROW_TYPES.items():
            kinds = [t for t in types if t is not bool]
            kind = rng.choice(kinds) if rng.random() < 0.3 else kinds[0]
            if kind is str:
                row[key] = rng.choice(["a", "b", f"dev{i}", "2026-11-28T10:05:00Z"])
            elif kind is int:
                row[key] = rng.randrange(10**6)
            elif kind is float:
                row[key] = rng.random() * 1000
            else:
                row[key] = None
        rows.append(row)
    return rows


def test_the_leaves_columns_joined_at_once_are_those_joined_field_by_field():
    rng = random.Random(5)
    for _ in range(60):
        frames = [leaves.Rows(_random_rows(rng, rng.randrange(1, 6))).frame() for _ in range(rng.randrange(1, 7))]
        plain = {key: pd.concat([f[key] for f in frames], ignore_index=True) for key in leaves._ROW_TYPES
                 if len({str(f[key].dtype) for f in frames}) == 1}  # fmt: skip
        fast = leaves._joined(frames)
        assert list(fast) == list(plain)
        for key, column in plain.items():
            pd.testing.assert_series_equal(fast[key], column)
        assert leaves._uniform(frames) == list(plain)
