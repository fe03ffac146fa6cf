"""The operator's declaration: strict TOML, a detached signature over its exact bytes, the operator's key only."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.disclosure import declaration as decl
from tests.disclosure import world

TEXT = world.DECLARATION.format(region="North", city="Alpha", site="A1")
K = world.KEYS


def _check(text=TEXT, key=None, signed=None, **kw):
    signature = decl.sign_text((signed or text).encode(), key or K.operator, world.NOW)
    kw.setdefault("operator_ids", {K.kid("operator")})
    kw.setdefault("node_ids", {K.kid("node")})
    return decl.check(text, signature, **kw)


def test_an_honest_declaration_reads_with_its_place_and_declared_figures():
    d = _check()
    assert d.path == ["Freedonia", "North", "Alpha", "A1"] and d.key_id == K.kid("operator")
    assert d.data["open_access"]["share"] == 0.25 and d.data["networks"][0]["since"] == "2025-06-01"
    assert d.data["planned"] == [{"date": "2027-06-30", "pflops": 50.0, "precision": "bf16", "note": None}]


def test_attack_a_declaration_signed_by_a_node_key_is_refused():
    with pytest.raises(decl.DeclarationError, match="node key"):
        _check(key=K.node, operator_ids=None)


def test_attack_a_declaration_signed_by_a_key_outside_the_operator_list_is_refused():
    with pytest.raises(decl.DeclarationError, match="not in the operator trust list"):
        _check(key=Ed25519PrivateKey.generate())


def test_attack_a_declaration_edited_after_signing_is_refused():
    with pytest.raises(decl.DeclarationError, match="edited after signing"):
        _check(text=TEXT.replace("share = 0.25", "share = 0.95"), signed=TEXT)


def test_an_unsigned_or_forged_signature_document_is_refused():
    with pytest.raises(decl.DeclarationError, match="not a bench declaration signature"):
        decl.check(TEXT, {"kind": "x"}, operator_ids=None, node_ids=None)
    sig = decl.sign_text(TEXT.encode(), K.operator)
    sig["declaration_sha256"] = "0" * 64
    with pytest.raises(decl.DeclarationError, match="signature"):
        decl.check(TEXT, sig, operator_ids=None, node_ids=None)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t + "\nbogus = 1\n", "unknown key"),
        (lambda t: t.replace('site = "A1"', 'site = ""'), "site"),
        (lambda t: t.replace("share = 0.25", "share = 2.5"), "share"),
        (lambda t: t.replace("share = 0.25", 'share = "a lot"'), "share"),
        (lambda t: t.replace("date = 2027-06-30", 'date = "soon"'), "date"),
        (lambda t: t.replace("pflops = 50.0", "pflops = nan"), "pflops"),
        (lambda t: t.replace('[[clusters]]\nname = "a"\n', ""), "clusters"),
        (lambda t: t + '\n[[clusters]]\nname = "a"\n', "unique"),
        (lambda t: t + "\n[[[\n", "not valid TOML"),
    ],
)
def test_a_malformed_declaration_is_one_line_naming_the_key(edit, match):
    with pytest.raises(decl.DeclarationError, match=match):
        decl.parse(edit(TEXT), "site.toml")


def test_a_declaration_file_that_is_not_a_regular_file_is_refused(tmp_path):
    import os

    fifo = tmp_path / "d.toml"
    os.mkfifo(fifo)
    with pytest.raises(decl.DeclarationError, match="not a regular file"):
        decl.read(fifo, operator_ids=None, node_ids=None)
