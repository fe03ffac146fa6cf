import os

import pytest

from bench.report import keys


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
    text = f"# auditors' list\n{b64}  # node 1\n0123456789ABCDEF\n\n"
    assert keys.parse_trusted(text) == {kid, "0123456789abcdef"}
    with pytest.raises(keys.KeyFileError, match="line 2"):
        keys.parse_trusted("0123456789abcdef\nnot-a-key\n")
