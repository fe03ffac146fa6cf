"""Seventh round, node runs (issue 22): a dishonest operator (who holds the node key and controls files and timing)
and an unlucky ops team (crashes, kills, full disks) against schema v3 reports and the one-process-per-GPU lanes.

Each test is one attack. Those that succeeded before their fix say so in their docstring; the others guard a defence
that held."""

from __future__ import annotations

import base64
import errno
import functools
import json
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import asdict

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import runner
from bench.hardware import devices
from bench.model import canonical, intake, records, sign
from bench.model.reports import Measurement
from bench.report import store
from bench.report import verify as v
from bench.report.store import REPORT_NAME, ReportWriter, load_report
from tests.fakes.cuda import install_in_worker
from tests.report import synthetic as syn

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def write(folder, count=3, n=80, finish=True, key=KEY, seed=0):
    w = ReportWriter(syn.report([], end=None), folder, key)
    for i in range(count):
        w.add(syn.matmul("float32", syn.samples(1e-3, n, seed=seed + i)))
    if finish:
        w.finish()
    w.close()
    return w


def lines_of(path):
    return path.read_bytes().split(b"\n")[:-1]


def put(path, raw):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def codes(data):
    return {f.code for f in v.verify_node_report(data)}


def errors(data):
    return {f.code for f in v.errors(v.verify_node_report(data))}


# --- the file: cut, appended to, spliced --------------------------------------------------------------------------


def test_a_cut_at_every_byte_of_the_last_two_records_is_a_signed_partial_report(tmp_path):
    """Held: the last measurement and the end record cut at every byte: each cut reads as a signed partial report
    holding every whole measurement before the cut, and never claims to be complete."""
    w = write(tmp_path / "run")
    raw = w.path.read_bytes()
    ends = [i + 1 for i, b in enumerate(raw) if b == ord("\n")]
    cut = tmp_path / "cut" / REPORT_NAME
    for size in range(ends[-3], len(raw)):
        data = intake.read_json(put(cut, raw[:size])).data
        found = codes(data)
        assert not errors(data) and "partial" in found, (size, found)
        assert len(data["measurements"]) == (3 if size >= ends[-2] else 2), size
        assert data["end_utc"] is None and (("torn-record" in found) == (size not in ends)), size


@pytest.mark.parametrize("tail", [b"garbage after the end record", b"\x00" * 64, b'[{"record":{', b" " * 10,
                                  b'{"record":{"measurement":{'])  # fmt: skip
def test_bytes_appended_after_the_end_record_are_refused_not_dropped_as_a_torn_write(tmp_path, tail):
    """Succeeded before the fix: anything appended without a newline was dropped as 'a torn write' and the finished
    report still verified (a warning). A torn write is the start of a record line, and after the end record only an
    amendment can follow: anything else is an altered file, refused in one line."""
    w = write(tmp_path / "run")
    bad = put(tmp_path / "bad" / REPORT_NAME, w.path.read_bytes() + tail)
    with pytest.raises(intake.InputError, match="not the start of a record"):
        intake.read_json(bad)


def test_a_torn_amendment_after_the_end_record_is_still_a_torn_write(tmp_path):
    """Held (and kept by the fix): an amendment written after finish() and cut short is dropped as torn."""
    w = ReportWriter(syn.report([], end=None), tmp_path / "run", KEY)
    w.add(syn.matmul("float32", syn.samples(1e-3, 80)))
    w.finish()
    w.report.measurements[0].warnings.append({"code": "late", "message": "noted after the end"})
    w.save()
    w.close()
    raw = w.path.read_bytes()
    last = lines_of(w.path)[-1]
    cut = put(tmp_path / "cut" / REPORT_NAME, raw[: len(raw) - len(last) // 2])
    data = intake.read_json(cut).data
    assert not errors(data) and "torn-record" in codes(data) and data["measurements"][0]["warnings"] == []


def test_records_spliced_from_another_run_signed_by_the_same_key_are_refused(tmp_path):
    """Held: the first records of run A followed by the rest of run B (same key, renumbered or not): the hash chain
    breaks, so the last signature does not cover them."""
    a, b = lines_of(write(tmp_path / "a").path), lines_of(write(tmp_path / "b", seed=50).path)
    spliced = put(tmp_path / "s" / REPORT_NAME, b"\n".join([*a[:2], *b[2:]]) + b"\n")
    data = intake.read_json(spliced).data
    ok, why, _ = sign.inspect(data)
    assert not ok and "record 2 does not follow record 1" in why and "signature" in errors(data)


def test_a_duplicated_measurement_record_is_refused(tmp_path):
    """Held: a measurement record written twice (renumbered to fit) breaks the chain."""
    objs = [json.loads(x) for x in lines_of(write(tmp_path / "a").path)]
    objs.insert(2, json.loads(json.dumps(objs[1])))
    for i, o in enumerate(objs):
        o["record"]["seq"] = i
    data = intake.read_json(put(tmp_path / "d" / REPORT_NAME, b"".join(json.dumps(o).encode() + b"\n"
                                                                      for o in objs))).data  # fmt: skip
    assert "signature" in errors(data)


def _remalleate(text: str) -> str | None:
    """The same bytes in another base64 spelling (the unused low bits of the last character set), or None."""
    body = text.rstrip("=")
    pad = text[len(body) :]
    for flip in (1, 2, 3):
        other = body[:-1] + B64[B64.index(body[-1]) ^ flip] + pad
        if base64.b64decode(other) == base64.b64decode(text):
            return other
    return None


def test_a_signature_respelled_in_base64_does_not_give_the_report_a_second_name(tmp_path):
    """Succeeded before the fix: base64's unused bits in the last signature's final character could be set without
    changing the signature, so one signed report had several digests (the name proofs and capacity reports cite).
    Only the canonical spelling verifies now, in a stream as in a version-2 document."""
    w = write(tmp_path / "run")
    objs = [json.loads(x) for x in lines_of(w.path)]
    objs[-1]["signature"] = _remalleate(objs[-1]["signature"])
    line = canonical.canonical_bytes(objs[-1])
    raw = b"".join(x + b"\n" for x in [*lines_of(w.path)[:-1], line])
    data = intake.read_json(put(tmp_path / "m" / REPORT_NAME, raw)).data
    ok, why, _ = sign.inspect(data)
    assert not ok and "base64" in why

    doc = syn.node_report(1, [700.0], KEY)
    assert sign.check(doc) == (True, "valid")
    respelled = {**doc, "signature": {**doc["signature"], "signature": _remalleate(doc["signature"]["signature"])}}
    ok, why = sign.check(respelled)
    assert not ok and "base64" in why


def test_a_version_2_document_claiming_version_3_and_a_stream_claiming_version_2_are_refused(tmp_path):
    """Held: the forms do not mix. A document (no records) that says version 3, and a stream whose header (signed by
    the operator's own key) says version 2, are each refused in one line, never a traceback."""
    doc = syn.node_report(1, [700.0], KEY)
    doc3 = canonical.canonical_bytes({**doc, "schema_version": 3})
    data = intake.read_json(put(tmp_path / "d3" / REPORT_NAME, doc3)).data
    assert "signature" in errors(data)
    w = ReportWriter(syn.report([], end=None), tmp_path / "s2", KEY)
    w._chain = records.Chain(KEY)  # a writer whose header says version 2, signed by the node's own key
    rs = [{**records.header(w.report, w._chain.signer()), "schema_version": 2}]
    lines = [w._chain.line(rs[0])[0]]
    lines.append(w._chain.line({"type": records.MEASUREMENT,
                                "measurement": syn.matmul("float32", syn.samples(1e-3, 80)).to_record()})[0])  # fmt: skip
    data = intake.read_json(put(tmp_path / "s2b" / REPORT_NAME, b"".join(lines))).data
    found = v.errors(v.verify_node_report(data))
    assert found and all("\n" not in f.message for f in found)
    with pytest.raises(store.ReportError):
        load_report(tmp_path / "s2b" / REPORT_NAME)


def _verbs(path, tmp_path):
    good = write(tmp_path / "base").path
    return {"verify": ["verify", str(path)], "report": ["report", str(path)], "compare": ["compare", str(good), str(path)],
            "history": ["history", "--results-dir", str(tmp_path / "h"), "--add", str(path)],
            "export csv": ["export", "csv", str(path)], "export prometheus": ["export", "prometheus", str(path)],
            "aggregate": ["aggregate", "--output", str(tmp_path / "cap.json"), str(path)]}  # fmt: skip


@pytest.mark.parametrize("verb", ["verify", "report", "compare", "history", "export csv", "export prometheus",
                                  "aggregate"])  # fmt: skip
def test_every_reader_takes_a_torn_report_and_refuses_an_appended_one_alike(tmp_path, monkeypatch, verb):
    """Held (with the fix above): every verb that reads node reports reads a v3 report through the same door. A
    report whose end record was torn off reads as partial everywhere; the same report with bytes appended after its
    end record is refused everywhere, exit 1, with the one-line reason, never a traceback."""
    from click.testing import CliRunner

    from bench.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    raw = write(tmp_path / "run").path.read_bytes()
    torn = put(tmp_path / "torn" / REPORT_NAME, raw[:-40])
    res = CliRunner().invoke(main, _verbs(torn, tmp_path)[verb], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    appended = put(tmp_path / "appended" / REPORT_NAME, raw + b"appended")
    res = CliRunner().invoke(main, _verbs(appended, tmp_path)[verb], catch_exceptions=False)
    # (verify and aggregate show the reason in a table, wrapped: their verdict names the file unreadable)
    said = "not the start of a record" in res.output or "unreadable" in res.output
    assert res.exit_code == 1 and said and "Traceback" not in res.output, res.output


def _mutated_bytes(raw: bytes, rng) -> bytes:
    lines = raw.split(b"\n")[:-1]
    action = rng.choice(["flip", "delete", "insert", "cut", "dup-line", "swap-lines", "splice-b64"])
    if action == "flip":
        i = rng.randrange(len(raw))
        return raw[:i] + bytes([raw[i] ^ (1 << rng.randrange(8))]) + raw[i + 1 :]
    if action == "delete":
        i = rng.randrange(len(raw))
        return raw[:i] + raw[i + rng.randrange(1, 40) :]
    if action == "insert":
        i = rng.randrange(len(raw))
        return raw[:i] + rng.choice([b"\n", b"=", b"{", b'"', b"\x00", b"A" * 5, b"1e999"]) + raw[i:]
    if action == "cut":
        return raw[: rng.randrange(len(raw))]
    if action == "dup-line":
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif action == "swap-lines":
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:  # a base64 field's text replaced by another of the same length
        i = rng.randrange(1, len(lines))
        at = lines[i].find(b'"values":"')
        if at > 0:
            start = at + len(b'"values":"')
            end = lines[i].index(b'"', start)
            lines[i] = lines[i][:start] + bytes(rng.choice(B64.encode()) for _ in range(end - start)) + lines[i][end:]
    return b"".join(x + b"\n" for x in lines)


def _resigned(raw: bytes, rng) -> bytes:
    """The operator's forgery: one value of one record changed, the whole chain rebuilt and signed with the key."""
    rs = [json.loads(x)["record"] for x in raw.split(b"\n")[:-1]]
    r = rs[rng.randrange(len(rs))]
    paths, stack = [], [((), r)]
    while stack:
        path, node = stack.pop()
        for k, child in node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ():
            paths.append((*path, k))
            stack.append(((*path, k), child))
    path = rng.choice(paths)
    parent = r
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = rng.choice([None, True, -1, 0, 2**62, 1e-320, 1e308, "", "x", [], {}, [1.5, "a"], {"n": 3},
                                   "AAAA", {"codec": "f8-shuffle-zlib-b64", "n": 1, "values": ""}])  # fmt: skip
    chain = records.Chain(KEY)
    out = []
    for rec in rs:
        out.append(chain.line({k: v for k, v in rec.items() if k not in ("seq", "prev")})[0])
    return b"".join(out)


def test_600_random_mutations_of_a_stream_never_crash_a_reader(tmp_path):
    """Held: 300 byte-level mutations (a flipped bit, bytes deleted or inserted, a cut, a line duplicated or moved, a
    base64 block rewritten) and 300 forgeries re-chained and re-signed with the node key (one value of one record
    replaced by a hostile one): reading, verifying and loading each gives a one-line refusal or findings, never any
    other exception."""
    import random

    rng = random.Random(22)
    raw = write(tmp_path / "run", count=3, n=80).path.read_bytes()
    target = tmp_path / "m" / REPORT_NAME
    outcomes = {"refused": 0, "findings": 0, "clean": 0}
    for trial in range(600):
        try:
            mutated = _mutated_bytes(raw, rng) if trial < 300 else _resigned(raw, rng)
        except (ValueError, TypeError):  # a value RFC 8785 cannot write: no forgery to make
            continue
        put(target, mutated)
        try:
            data = intake.read_json(target).data
        except intake.InputError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
            continue
        findings = v.verify_node_report(data)
        assert all("\n" not in f.message for f in findings)
        try:
            load_report(target)
        except store.ReportError as exc:
            assert "\n" not in str(exc)
        outcomes["findings" if v.errors(findings) else "clean"] += 1
    assert outcomes["refused"] > 100 and outcomes["findings"] > 100, outcomes


# --- sample blocks signed by the operator's own key ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [5e-324, 2.2e-308 / 3])
def test_denormal_samples_signed_by_the_operator_do_not_make_an_infinite_figure(tmp_path, bad):
    """Held: denormal 'durations' (a forged timer) are finite and positive, so the codec takes them, but the figure
    re-derived from them is refused as impossible, never reported as infinite or counted."""
    w = ReportWriter(syn.report([], end=None), tmp_path / "d", KEY)
    m = syn.matmul("float32", syn.samples(1e-3, 40))
    m.samples_s = [1e-3] * 30 + [bad] * 10  # the summary (finite) is the operator's own; the samples say otherwise
    w.add(m)
    w.finish()
    w.close()
    data = intake.read_json(w.path).data
    assert errors(data), codes(data)


def test_a_block_whose_samples_disagree_with_the_signed_summary_is_refused(tmp_path):
    """Held: the operator re-signs a record whose samples block holds fewer, faster samples than its summary: the
    figures re-derived from the samples do not match the summary."""
    w = ReportWriter(syn.report([], end=None), tmp_path / "r", KEY)
    m = syn.matmul("float32", syn.samples(1e-3, 80))
    m.samples_s = syn.samples(0.5e-3, 40)  # the summary still says 80 samples at 1 ms
    w.add(m)
    w.finish()
    w.close()
    assert "figure-mismatch" in errors(intake.read_json(w.path).data)


# --- a full disk ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [0, 50])
def test_a_full_disk_mid_record_leaves_a_report_that_reads_with_every_finished_measurement(tmp_path, monkeypatch,
                                                                                         written):  # fmt: skip
    """Succeeded before the fix: the disk filled while a measurement's line was written (the kernel took `written`
    bytes of it, then ENOSPC), the run closed its report as interrupted once space came back (a log rotated), and the
    whole report was refused: the end record followed half a line, and the chain had moved on past the record that
    never reached the file. Now a failed append is undone (the file cut back, the chain not advanced)."""
    w = ReportWriter(syn.report([], end=None), tmp_path, KEY)
    for i in range(2):
        w.add(syn.matmul("float32", syn.samples(1e-3, 80, seed=i)))
    real, calls = os.write, []

    def full(fd, data):
        calls.append(len(data))
        if len(calls) == 1 and written:
            return real(fd, bytes(data)[:written])
        if len(calls) <= (2 if written else 1):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(store.os, "write", full)
    with pytest.raises(store.ReportError, match="No space left on device.*holds the 2 measurements"):
        w.add(syn.matmul("float32", syn.samples(1e-3, 80, seed=9)))
    w.finish(interrupted=True)
    w.close()
    monkeypatch.undo()
    data = intake.read_json(w.path).data
    assert not errors(data) and len(data["measurements"]) == 2 and data["interrupted"] is True
    assert len(w.report.measurements) == 2 and load_report(w.path).measurements == w.report.measurements


@pytest.mark.parametrize("where", ["after the chain moved on", "after the whole line was written"])
def test_ctrl_c_landing_inside_an_append_leaves_a_report_that_reads(tmp_path, monkeypatch, where):
    """Succeeded before the fix ("after the chain moved on"): a Ctrl-C or SIGTERM (raised as an exception between
    two bytecodes) landing after the record was chained but before its line was written left the chain one record
    ahead of the file; the run then closed the report as interrupted, and its end record named a record that is not
    there: the whole report refused. Landing after the write, the file held a measurement the writer's list did not
    (amendments after it would name the wrong measurement), until the full-disk fix above undid such a write. Now an
    append is undone whole, wherever it is interrupted."""
    w = ReportWriter(syn.report([], end=None), tmp_path, KEY)
    w.add(syn.matmul("float32", syn.samples(1e-3, 80)))
    if where == "after the chain moved on":
        line = w._chain.line

        def interrupted(record):
            line(record)
            raise KeyboardInterrupt

        monkeypatch.setattr(w._chain, "line", interrupted)
    else:
        real = os.write

        def interrupted(fd, data):
            real(fd, data)
            raise KeyboardInterrupt

        monkeypatch.setattr(store.os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        w.add(syn.matmul("float32", syn.samples(1e-3, 80, seed=5)))
    monkeypatch.undo()
    w.report.measurements[0].warnings.append({"code": "late", "message": "noted after the interrupt"})
    w.finish(interrupted=True)
    w.close()
    data = intake.read_json(w.path).data
    assert not errors(data) and len(data["measurements"]) == 1 and data["interrupted"] is True
    assert load_report(w.path).measurements == w.report.measurements


def test_a_results_folder_that_cannot_be_written_or_fills_up_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """Succeeded before the fix: a results folder that cannot be written (read-only, or a file where the folder
    should be) and a disk that filled during the run both ended bench membw in a traceback. Now: one line naming
    the report, exit 1, and a report filled before the disk did is a signed partial one."""
    from click.testing import CliRunner

    from bench.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    args = ["membw", "--device", "cpu", "--array-mib", "1", "--budget", "0.01", "--quiet"]
    (tmp_path / "a-file").write_text("")
    res = CliRunner().invoke(main, [*args, "--results-dir", str(tmp_path / "a-file" / "sub")], catch_exceptions=False)
    assert res.exit_code == 1 and "cannot write a report in" in res.output and "Traceback" not in res.output

    real, calls = os.write, []

    def fills(fd, data):  # the disk takes the first two records (the header is written by rename), then nothing
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(store.os, "write", fills)
    res = CliRunner().invoke(main, [*args, "--results-dir", str(tmp_path / "r")], catch_exceptions=False)
    monkeypatch.undo()
    assert res.exit_code == 1 and "No space left on device" in res.output and "Traceback" not in res.output
    (path,) = (tmp_path / "r").glob(f"*/{REPORT_NAME}")
    data = intake.read_json(path).data
    assert not errors(data) and "partial" in codes(data) and len(data["measurements"]) == 2


# --- lanes: a worker killed while it holds the node's host-copy lock ---------------------------------------------


FAST = {"count": 2, "launch_s": 0.0}


def _die_holding_copies():
    with devices.host_copies():
        os.kill(os.getpid(), signal.SIGKILL)


def _copy_after(delay_s, f):
    time.sleep(delay_s)
    t0 = time.monotonic()
    with devices.host_copies():
        waited = time.monotonic() - t0
    return Measurement("membw", {"kernel": "h2d"}, asdict(f), "skipped", "test", details={"waited_s": waited})


def test_a_worker_killed_while_copying_does_not_hang_the_other_lanes(fake_cuda, tmp_path):
    """Succeeded before the fix: a lane's worker killed (the OOM killer, SIGKILL) while it held the node's
    host<->device copy lock never released it, so every other lane's next copy waited forever and the run (with
    keep_going) never ended. The parent now releases the lock a dead worker held."""
    fake_cuda(**FAST)
    zero, one = devices.facts("cuda:0"), devices.facts("cuda:1")
    steps = [runner.Step("dies", _die_holding_copies, "membw", asdict(zero), "cuda:0"),
             runner.Step("copies", functools.partial(_copy_after, 1.0, one), "membw", asdict(one), "cuda:1")]  # fmt: skip
    writer = ReportWriter(syn.report([], end=None), tmp_path)
    box = {}

    def go():
        box["out"] = runner.execute(writer, steps, keep_going=True,
                                    worker_init=functools.partial(install_in_worker, **FAST))  # fmt: skip

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(60)
    hung = t.is_alive()
    if hung:
        for p in multiprocessing.active_children():
            p.kill()
    assert not hung, "the other lane waited forever for the copy lock the killed worker held"
    statuses = sorted((m.device["id"], m.status) for m in box["out"].measurements)
    assert statuses == [("cuda:0", "error"), ("cuda:1", "skipped")]


# --- TF32 answering a float32 challenge ---------------------------------------------------------------------------


def test_a_float32_challenge_answered_on_tf32_does_not_pass(tmp_path, monkeypatch):
    """Held: a node whose float32 products run on TF32 tensor cores (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 where the node
    did not refuse, or on purpose: TF32 runs at 7x float32's rate on an H100) answers a whole round that way:
    Freivalds' check or the exact-row check refuses it, no FLOPs proven. (3xTF32, as accurate as float32, passes by
    docs/proofs.md's definition of a proven bound: float32-accurate throughput.)"""
    scheme = "tf32"
    from tests.challenge import test_cheaper_arithmetic as cheaper

    monkeypatch.setitem(cheaper.DTYPE, scheme, "float32")
    verdict = cheaper._round(tmp_path, scheme, operands=2)
    assert verdict.fleet["verified_flops"] == 0
    found = cheaper._errors(verdict)
    assert any("exact-row check failed" in e or "Freivalds check failed" in e for e in found), found


# --- a job's spools on a shared results folder ----------------------------------------------------------------------


def test_a_crashed_jobs_spools_are_not_recovered_into_the_next_jobs_report(tmp_path, monkeypatch):
    """Succeeded before the fix: spools were named by launch.job_id, which repeats across jobs (torchrun's default
    --rdzv-id is 'none'; a master address and port are reused). A job whose rank died left its spool behind; the next
    job on that results folder, when one of its peers died, recovered the old job's measurements into its own signed
    report. Spools are now named with a token rank 0 draws for each job (orchestrate.job_name)."""
    import torch.distributed as dist

    from bench import launch, orchestrate
    from tests.cli.ranks import free_port

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    where = launch.Placement(0, 1, 0, 1, "127.0.0.1", 29500, "torchrun")
    assert launch.job_id(where) == "none"  # what both jobs derive
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        first, second = orchestrate.job_name(where), orchestrate.job_name(where)
    finally:
        dist.destroy_process_group()
    assert first != second and first.startswith("none-")
    old = runner.Spool(tmp_path, first, "fp-a", 1)  # the first job's rank 1 spooled a measurement, then died
    old.add(syn.matmul("float32", syn.samples(1e-3, 80)))
    assert runner.Spool(tmp_path, second, "fp-a", 0).recover() == []  # the next job's leader, its peer dead
    assert len(runner.Spool(tmp_path, first, "fp-a", 0).recover()) == 1  # (its own job's leader would find it)


def test_two_nodes_with_one_fingerprint_do_not_take_each_others_ranks():
    """Succeeded before the fix: a node leader took every gathered rank with its host fingerprint as its own, and
    named its spools by the fingerprint alone. Nodes installed from one image that kept one /etc/machine-id, with the
    same CPU and memory, share a fingerprint: each leader signed the other node's GPUs into its own report (and read
    its spools). A node is now its fingerprint and its host name."""
    from bench import orchestrate

    fp = "same-image-same-cpu-same-memory"
    gathered = [{"rank": r, "host": fp, "hostname": f"node{r // 2}", "measurements": [{"rank": r}]} for r in range(4)]
    assert [g["rank"] for g in orchestrate.node_peers(gathered, 0, fp, "node0")] == [1]
    assert [g["rank"] for g in orchestrate.node_peers(gathered, 2, fp, "node1")] == [3]
    assert orchestrate.node_key(fp, "node0")[:16] != orchestrate.node_key(fp, "node1")[:16]  # (Spool keeps 16)
