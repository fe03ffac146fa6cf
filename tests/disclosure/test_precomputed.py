"""dd.precomputed: every level's figures from its rows derived ahead, all levels at once by worker processes, and taken
by compute() only where its inputs are exactly those it was derived from (dd.inputs_key). Held to deriving each level
in place: the same documents byte for byte and the same findings; from_rows indifferent to the order of its leaves and
declarations (which the key sorts); and an entry derived from other inputs (each part of the key changed in turn)
never taken."""

import dataclasses
import datetime as dt
import json
import random
import shutil

import pytest

from bench.disclosure import declaration as decl
from bench.disclosure import document as dd
from bench.disclosure import tree
from bench.disclosure.leaves import Store, shared_merge
from bench.report import pool
from tests.disclosure import test_shared_merge as tsm
from tests.disclosure import world

SITES = (("North", "Alpha", "A1", [1, 2]), ("North", "Alpha", "A2", [3]), ("North", "Gamma", "G1", [7]),
         ("South", "Beta", "B1", [4, 5, 6]), ("South", "Beta", "B2", [8]))  # fmt: skip
CLAIMS = [{"text": "1 EFLOPS", "source": "synthetic", "date": "2024"}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return world.site_folders(tmp_path_factory.mktemp("ahead"), SITES)


def _counting(monkeypatch):
    """Counts of from_rows calls: all of them, and those made ahead (by dd.precomputed's tasks)."""
    counts = {"all": 0, "ahead": 0}
    real_rows, real_task = dd.from_rows, dd._rows_task

    def rows(**kw):
        counts["all"] += 1
        return real_rows(**kw)

    def task(t):
        counts["ahead"] += 1
        return real_task(t)

    monkeypatch.setattr(dd, "from_rows", rows)
    monkeypatch.setattr(dd, "_rows_task", task)
    return counts


@pytest.mark.parametrize("cores", [1, 2])
def test_a_tree_built_and_verified_with_levels_derived_ahead_is_the_one_derived_in_place(folder, tmp_path, monkeypatch,
                                                                                         cores):  # fmt: skip
    monkeypatch.setattr(pool, "usable_cores", lambda: cores)
    root = tmp_path / "in"
    shutil.copytree(folder / "in", root)
    out = {}
    for ahead in (True, False):
        if not ahead:
            monkeypatch.setattr(dd, "precomputed", _in_place)
        counts = _counting(monkeypatch) if cores == 1 else {}  # (workers' calls are not counted here)
        built = tree.build(root, policy=world.KEYS.policy(), as_of=world.AS_OF, write=world.write_disclosure,
                           output=tmp_path / f"out-{ahead}", now=world.NOW, claims_input=CLAIMS)  # fmt: skip
        out[ahead] = [b.doc.raw for b in built]
        data = json.loads(built[0].doc.raw)
        out[ahead, "findings"] = dd.verify(data, Store(tmp_path / f"out-{ahead}"), "country") + dd.verify(
            data, _with_leaves(tmp_path / f"out-{ahead}", root), "country"
        )
        out[ahead, "counts"] = dict(counts)
        monkeypatch.undo()
        monkeypatch.setattr(pool, "usable_cores", lambda: cores)
    assert out[True] == out[False]
    assert out[True, "findings"] == out[False, "findings"]
    assert out[True, "findings"]  # the first folder lacks the capacity reports: nothing ahead, the same findings
    if cores == 1:  # every call in this process: counted
        # built: the 6 roll-ups ahead, the 5 sites in place; verified with the capacity reports: the 11 levels ahead
        assert out[True, "counts"] == {"all": 6 + 5 + 11, "ahead": 6 + 11}
        assert out[False, "counts"] == {"all": 11 + 11, "ahead": 0}


def _in_place(levels, along=None):
    """dd.precomputed deriving nothing ahead: what is given along done here, in turn."""
    import contextlib

    fn, items = along or (None, [])
    return contextlib.nullcontext([fn(x) for x in items])


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def _with_leaves(out, root):
    store = Store(out)
    for path in root.rglob("capacity.json"):
        store.add(path)
    return store


def _declaration(path: tuple[str, ...], n: int) -> decl.Declaration:
    data = {"country": path[0], "region": path[1], "city": path[2], "site": path[3], "operator": f"op{n}",
            "contact": None, "clusters": [{"name": "main", "description": None}], "open_access": {"share": 0.1 * (n % 3),
            "how_to_request": "x"} if n % 2 else None, "networks": [], "planned": []}  # fmt: skip
    return decl.Declaration(data, f"text {n}", {"key_id": f"k{n}"}, f"k{n}")


def _inputs(r: random.Random):
    """from_rows' inputs for a randomized tree (tests/disclosure/test_shared_merge.py's: duplicates, clones, MIG
    slices, rows of several dtypes) at its country level."""
    leaves = tsm._tree(r)
    sites = sorted({lf.path for lf, _ in leaves})
    decls = [_declaration(p, i) for i, p in enumerate(sites)]
    policy = world.KEYS.policy(auditor_id=None, stale_after_s=3 * 86400.0)
    return {"level": "country", "name": "Land", "leaves": leaves, "declarations": decls, "proof_docs": [],
            "policy": policy, "as_of": tsm.AS_OF, "claims_input": [{"text": "1 EFLOPS", "source": "s", "date": "2026"}],
            "audit_input": None}  # fmt: skip


def _rows(kw):
    try:
        out = dd.from_rows(**kw)
    except Exception as exc:  # noqa: BLE001
        return repr(exc)
    out["refused"] = repr(out["refused"])
    return json.dumps(out, sort_keys=True, default=str)


@pytest.mark.parametrize("shared", [False, True])
def test_from_rows_is_indifferent_to_the_order_of_leaves_and_declarations(shared):
    r = random.Random(f"order {shared}")
    for _ in range(40):
        kw = _inputs(r)
        shuffled = {**kw, "leaves": r.sample(kw["leaves"], len(kw["leaves"])),
                    "declarations": r.sample(kw["declarations"], len(kw["declarations"]))}  # fmt: skip
        with (
            shared_merge(kw["leaves"], trusted_aggregator=True, as_of=kw["as_of"], stale_after=tsm.STALE)
            if shared
            else _nothing()
        ):
            assert _rows(shuffled) == _rows(kw)
            assert dd.inputs_key(**shuffled) == dd.inputs_key(**kw)


def _changes(kw, r):
    """kw with one part of dd.inputs_key changed, each in turn."""
    lf, rows = kw["leaves"][0]
    d = kw["declarations"][0]
    yield "leaves", {**kw, "leaves": kw["leaves"][1:] + [(dataclasses.replace(lf, digest="other"), rows)]}
    yield "leaf sha256", {**kw, "leaves": [(dataclasses.replace(lf, sha256="other"), rows), *kw["leaves"][1:]]}
    yield "declaration", {**kw, "declarations": [dataclasses.replace(d, text=d.text + " "), *kw["declarations"][1:]]}
    yield "signature", {**kw, "declarations": [dataclasses.replace(d, signature={"key_id": "x"}),
                                              *kw["declarations"][1:]]}  # fmt: skip
    yield "policy", {**kw, "policy": dataclasses.replace(kw["policy"], stale_after_s=86400.0)}
    yield "as_of", {**kw, "as_of": kw["as_of"] + dt.timedelta(days=1)}
    yield "claims", {**kw, "claims_input": []}
    yield "name", {**kw, "name": "Other"}


def test_an_entry_derived_from_other_inputs_is_never_taken():
    r = random.Random("other inputs")
    seen = set()
    for _ in range(30):
        kw = _inputs(r)
        if isinstance(_rows(kw), str) and _rows(kw).startswith("DisclosureError"):
            continue
        for what, changed in _changes(kw, r):
            assert dd.inputs_key(**changed) != dd.inputs_key(**kw), what
            seen.add(what)
    assert len(seen) == 8
