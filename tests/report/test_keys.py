import os

import pytest

from bench.model import keys


def test_create_writes_a_0600_private_key_and_a_public_half(tmp_path):
    path = tmp_path / "sub" / "k.pem"
    key = keys.create(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert (tmp_path / "sub" / "k.pem.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = keys.load(path)
    assert keys.raw_public(loaded.public_key()) == keys.raw_public(key.public_key())
    with pytest.raises(keys.KeyFileError, match="exists"):
        keys.create(path)
    keys.create(path, force=True)


def test_loose_permissions_are_refused_with_the_fix(tmp_path):
    path = tmp_path / "k.pem"
    keys.create(path)
    path.chmod(0o644)
    with pytest.raises(keys.KeyFileError, match=r"readable by others \(mode 0644\); run `chmod 600"):
        keys.load(path)


def test_missing_and_garbage_keys(tmp_path):
    with pytest.raises(keys.KeyFileError, match="bench keys init"):
        keys.load(tmp_path / "none.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    junk.chmod(0o600)
    with pytest.raises(keys.KeyFileError, match="not an unencrypted PEM"):
        keys.load(junk)


def test_load_or_create(tmp_path):
    _, created = keys.load_or_create(tmp_path / "k.pem")
    _, again = keys.load_or_create(tmp_path / "k.pem")
    assert created and not again


def test_default_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(keys.KEY_ENV, str(tmp_path / "x.pem"))
    assert keys.default_key_path() == tmp_path / "x.pem"
    monkeypatch.delenv(keys.KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert keys.default_key_path() == tmp_path / "bench" / "node_ed25519.pem"


def test_trust_list_takes_ids_and_public_keys(tmp_path):
    key = keys.create(tmp_path / "k.pem")
    b64 = keys.public_b64(key.public_key())
    kid = keys.key_id(keys.raw_public(key.public_key()))
    text = f"# auditors' list\n{b64}  # node 1\n0123456789ABCDEF0123456789abcdef\n\n"
    assert keys.parse_trusted(text) == {kid, "0123456789abcdef0123456789abcdef"}
    assert len(kid) == 32  # 128 bits
    with pytest.raises(keys.KeyFileError, match="line 2"):
        keys.parse_trusted("0123456789abcdef0123456789abcdef\nnot-a-key\n")
    with pytest.raises(keys.KeyFileError, match="64-bit key id, too short"):
        keys.parse_trusted("0123456789abcdef\n")


def test_a_legacy_64_bit_id_in_a_signature_block_still_verifies():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench.model import sign

    key = Ed25519PrivateKey.generate()
    data = {"a": 1}
    data["signature"] = sign.sign(data, key)
    data["signature"]["key_id"] = keys.legacy_key_id(keys.raw_public(key.public_key()))
    assert sign.check(data) == (True, "valid")
    assert sign.signer(data) == keys.key_id(keys.raw_public(key.public_key()))


@pytest.mark.parametrize("planted", ["file", "symlink"])
def test_init_never_writes_through_a_planted_tmp_file_or_link(tmp_path, planted):
    path = tmp_path / "k.pem"
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    tmp = tmp_path / "k.pem.tmp"
    if planted == "file":
        tmp.write_text("x")
        tmp.chmod(0o644)
    else:
        tmp.symlink_to(victim)
    with pytest.raises(keys.KeyFileError, match="already exists"):
        keys.create(path)
    assert victim.read_text() == "keep me" and not path.exists()


def test_init_refuses_a_key_path_that_is_a_symlink(tmp_path):
    (tmp_path / "k.pem").symlink_to(tmp_path / "elsewhere.pem")
    with pytest.raises(keys.KeyFileError, match="symbolic link"):
        keys.create(tmp_path / "k.pem", force=True)
    assert not (tmp_path / "elsewhere.pem").exists()
