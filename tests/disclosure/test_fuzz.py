"""Hostile disclosures: 300 seeded random mutations of a real city disclosure, each re-signed by the discloser's key
(so the signature is no defence), never end verification with a traceback: each is a finding."""

import copy
import random

import pytest

from bench.disclosure import document as dd
from bench.disclosure.leaves import Store
from bench.model import canonical
from tests.disclosure import world

JUNK = [None, True, -1, 0, 1.5, 1e308, 2**53, "", "x" * 300, [], {}, [1, "a"], {"a": 1}, "2026-13-45T99:99:99Z"]


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, x in doc.items():
            yield from _paths(x, (*prefix, k))
    elif isinstance(doc, list):
        for i, x in enumerate(doc):
            yield from _paths(x, (*prefix, i))


def _mutate(doc, r):
    doc = copy.deepcopy(doc)
    path = r.choice([p for p in _paths(doc) if p and p[0] != "signature"])
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    action = r.randrange(3)
    if action == 0:
        parent[path[-1]] = r.choice(JUNK)
    elif action == 1 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        value = parent[path[-1]]
        parent[path[-1]] = value * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else [value]
    return doc


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    store = Store()
    sites = [
        world.site_disclosure(tmp, world.write_site(tmp, "North", "Alpha", s, [n]), store)
        for s, n in (("A1", 1), ("A2", 2))
    ]
    return tmp, world.read(world.rollup("city", "Alpha", sites, store, tmp / "alpha.json"))


def test_mutated_and_re_signed_disclosures_are_findings_never_tracebacks(city):
    tmp, doc = city
    store = Store(tmp)
    assert dd.verify(doc, store) == []
    r = random.Random("disclosure fuzz")
    caught = 0
    for _ in range(300):
        try:
            mutated = world.resign_doc(_mutate(doc, r))
        except canonical.UncarriableNumber:  # 2^53 cannot be signed at all: nothing to verify
            caught += 1
            continue
        findings = dd.verify(mutated, store, "fuzzed")
        caught += bool(findings)
        assert all(f.severity == "error" and f.message and "\n" not in f.message for f in findings)
    assert caught >= 270  # the rest changed nothing derived (e.g. a label text in an input the schema allows)
