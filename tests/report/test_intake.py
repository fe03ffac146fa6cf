"""The one reader of hostile documents: regular files only, capped, read once, strict JSON."""

import gzip
import os

import pytest

from bench.model import intake


def test_reads_once_and_hashes_the_parsed_bytes(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'{"a": [1, 2.5, "x"]}')
    doc = intake.read_json(path)
    assert doc.data == {"a": [1, 2.5, "x"]}
    import hashlib

    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"a": 1, "a": 2}', "duplicate key 'a'"), ('{"a": NaN}', "NaN is not a JSON number"),
     ('{"a": -Infinity}', "-Infinity"), ('{"a": 1e400}', "overflows"), ('{"a": ' + "9" * 30 + "}", "beyond 64 bits"),
     ("[" * 5000 + "]" * 5000, "nested deeper"), ("[" * 40 + "]" * 40, "nested deeper"), ('{"a": ', "not valid JSON"),
     (b"\xff\xfe", "not UTF-8")],
)  # fmt: skip
def test_strict_json(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(intake.InputError, match=message):
        intake.read_json(path)


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    with pytest.raises(intake.InputError, match="not a regular file"):
        intake.read_json(fifo)


def test_a_symlink_to_a_device_or_outside_the_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    zero = tmp_path / "d" / "report.json"
    zero.symlink_to("/dev/zero")
    with pytest.raises(intake.InputError, match="symbolic link"):
        intake.read_json(zero)
    with pytest.raises(intake.InputError, match="outside"):
        intake.read_json(zero, root=tmp_path / "d")
    (tmp_path / "d" / "real.json").write_text("{}")
    inside = tmp_path / "d" / "link.json"
    inside.symlink_to(tmp_path / "d" / "real.json")
    assert intake.read_json(inside, root=tmp_path / "d").data == {}


def test_size_cap_is_documented_and_overridable(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text('{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(intake.InputError, match="more than the limit of 1000"):
        intake.read_json(path, max_bytes=1000)
    monkeypatch.setenv(intake.MAX_BYTES_ENV, "100")
    with pytest.raises(intake.InputError, match=intake.MAX_BYTES_ENV):
        intake.read_json(path)
    monkeypatch.setenv(intake.MAX_BYTES_ENV, "100000")
    assert intake.read_json(path).data["a"].startswith("x")


def test_gzip_output_is_capped_at_the_expected_bytes(tmp_path):
    bomb = tmp_path / "c.bin.gz"
    with gzip.open(bomb, "wb") as fh:
        fh.write(b"\0" * (8 << 20))  # 8 MB of zeros: a few kB compressed
    with pytest.raises(intake.InputError, match="more than the expected 1024 bytes"):
        intake.read_gzip(bomb, 1024)
    ok = tmp_path / "ok.bin.gz"
    with gzip.open(ok, "wb") as fh:
        fh.write(b"\1" * 1024)
    assert intake.read_gzip(ok, 1024) == b"\1" * 1024
    with pytest.raises(intake.InputError, match="fewer"):
        intake.read_gzip(ok, 2048)
