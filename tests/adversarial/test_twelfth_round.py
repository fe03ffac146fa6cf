"""Twelfth round (issues 23, 25, 26): attacks on the morning's new code, driven through the real entry points.

(1) the node's register-blocked fold microkernel (bench/challenge/microfold_kernel.c, fold.py) against its exact
emulation on shapes the probe does not cover, and the auditor's independence from it; (2) the paired gate's
sequential sessions and its inputs (bench/report/paired.py, gates.py, bench/cli/gate.py); (3) the node-report and
disclosure fast paths against their strict paths. Attacks that held stay as tests; those that succeeded are fixed
alongside (each test names what it broke)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.challenge import fold, native
from bench.cli import main
from bench.report import gates, paired
from bench.report.store import dumps
from tests.report import synthetic as syn
from tests.report.test_drift_paired import BASE_S, NOISE, RUN_S, STEP_S, T0, _stamp

# --- (2) the paired gate ---------------------------------------------------------------------------------------------


def _run(slot: int, run_id: str, f32: float, f64: float | None, f64_status: str = "ok"):
    """A run at `slot` of a session (10 s apart) with float32 and (unless None) float64 matmul figures."""
    ms = [syn.matmul("float32", [BASE_S / f32] * 20)]
    if f64 is not None:
        ms.append(syn.matmul("float64", [2 * BASE_S / f64] * 20, status=f64_status))
    r = syn.report(ms, run_id=run_id)
    r.start_utc = _stamp(T0 + dt.timedelta(seconds=STEP_S * slot))
    r.end_utc = _stamp(T0 + dt.timedelta(seconds=STEP_S * slot + RUN_S))
    return r


def _session(pairs: int, cand_f64=1.0, cand_status: str = "ok", slowdown: float = 0.0):
    """(baseline runs, candidate runs) in the order A B B A ...; the candidate's float64 figure `cand_f64` (None:
    not measured) with status `cand_status`."""
    base, cand = [], []
    for slot in range(2 * pairs):
        speed = NOISE[slot]
        if paired.side_at(slot) == paired.BASELINE:
            base.append(_run(slot, f"b{slot:02d}", speed, speed))
        else:
            f64 = None if cand_f64 is None else cand_f64 * speed
            cand.append(_run(slot, f"c{slot:02d}", speed * (1 - slowdown), f64, cand_status))
    return base, cand


def test_unchanged_code_calm_session_passes():
    assert gates.paired_judgement(*_session(5), 0.05).outcome == paired.PASS


@pytest.mark.parametrize("how", ["fails its check", "not measured"])
def test_a_candidate_whose_workload_fails_or_vanishes_in_every_run_does_not_pass(how):
    """Attack: the candidate breaks one workload (its product check fails, or it no longer runs), in every run. The
    metric drops out of `common` (only valid metrics are paired) and the session passed on the others with a note:
    exit 0 for a candidate that broke a workload the baseline measured."""
    if how == "fails its check":
        base, cand = _session(5, cand_status="invalid")
    else:
        base, cand = _session(5, cand_f64=None)
    j = gates.paired_judgement(base, cand, 0.05)
    assert j.outcome != paired.PASS
    assert any("float64" in g.message for g in j.checks if not g.passed)


def _folders(tmp_path, base, cand):
    for side, runs in (("A", base), ("B", cand)):
        for r in runs:
            (tmp_path / side / r.run_id).mkdir(parents=True)
            (tmp_path / side / r.run_id / "report.json").write_text(dumps(r.to_dict()))
    return str(tmp_path / "A"), str(tmp_path / "B")


def test_a_baseline_run_whose_workload_failed_does_not_pass_the_candidate_unjudged():
    """Attack: a base run whose float64 product check failed dropped float64 from the pairs (only metrics every run
    measured validly are judged), and a candidate 30% slower there passed on float32 alone."""
    base, cand = _session(5, cand_f64=0.7)  # the candidate 30% slower at float64
    assert gates.paired_judgement(base, cand, 0.05).outcome == paired.REGRESSION
    base[2].measurements[1].status = "invalid"
    base[2].measurements[1].reason = "product check failed"
    base[2].measurements[1].validity = {"check": "freivalds", "passed": False}
    j = gates.paired_judgement(base, cand, 0.05)
    assert j.outcome == gates.FAILED and "baseline run b04" in j.checks[0].message


def test_a_metric_one_baseline_run_skipped_is_still_judged():
    """Attack: gates.paired_metrics judged only metrics every run measured validly; one baseline run that skipped a
    workload (status skipped, no error) left that metric a note, unjudged, and the session passed on the others
    whatever the candidate did there. Now each metric is judged on the pairs that hold it on both sides."""
    base, cand = _session(5, cand_f64=0.7)  # the candidate 30% slower at float64
    base[2].measurements[1].status = "skipped"
    base[2].measurements[1].reason = "not run"
    assert gates.paired_judgement(base, cand, 0.05).outcome != paired.PASS


def test_bench_gate_exits_1_with_a_well_formed_junit_case_for_a_broken_candidate_workload(tmp_path):
    import xml.etree.ElementTree as ET

    a, b = _folders(tmp_path, *_session(5, cand_status="invalid"))
    junit = tmp_path / "gate.xml"
    got = CliRunner().invoke(main, ["gate", a, b, "--junit", str(junit), "--json"])
    assert got.exit_code == 1, got.output
    out = json.loads(got.stdout)
    assert out["outcome"] == gates.FAILED and "float64" in out["reason"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("failures")) >= 1 and suite.find("properties/property").get("value") == gates.FAILED


@pytest.mark.parametrize("bad", ["\x01", "\x1b[31m", "\ud800", "\uffff"])
def test_junit_stays_well_formed_xml_whatever_a_report_names(tmp_path, bad):
    """Attack: a control character in a report's precision made the gate's JUnit file ill-formed (ElementTree writes
    it as it is), and a lone surrogate in a device id a UnicodeEncodeError traceback; bench run's JUnit alike."""
    import xml.etree.ElementTree as ET

    base, cand = _session(5)
    for r in base + cand:
        for m in r.measurements:
            m.spec["precision"] += bad
            m.device["id"] += bad
    a, b = _folders(tmp_path, base, cand)
    junit = tmp_path / "gate.xml"
    got = CliRunner().invoke(main, ["gate", a, b, "--junit", str(junit), "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["outcome"] == paired.PASS
    root = ET.parse(junit).getroot()
    names = [c.get("name") for c in root.iter("testcase")]
    assert len(names) == 2 and all(f"\\u{ord(bad[0]):04x}" in n for n in names)
    ET.fromstring(gates.junit(cand[0], gates.correctness(cand[0])).encode())


def _sequential_ratios(rng, slowdown, speed_of_slot, threshold=0.05):
    """A sequential session (paired.sequential) on ratios alone: slot speeds from speed_of_slot(slot, rng), the
    candidate `slowdown` slower; (outcome, pairs)."""
    ratios, speeds = [], {}

    def run(side):
        slot = sum(len(v) for v in speeds.values())
        speeds.setdefault(side, []).append(
            speed_of_slot(slot, rng) * ((1 - slowdown) if side == paired.CANDIDATE else 1)
        )
        if len(speeds.get(paired.BASELINE, [])) == len(speeds.get(paired.CANDIDATE, [])):
            ratios.append(speeds[paired.CANDIDATE][-1] / speeds[paired.BASELINE][-1])

    return paired.sequential(run, lambda: paired.session_outcome([paired.judge(ratios, threshold)]))


def _stretches(enter=0.1, leave=0.4, slow=0.75):
    """Disturbed stretches as the issue describes them (another process taking a core for a few runs): a Markov
    chain entering one with probability `enter` a run and leaving with `leave` (2.5 runs long on average, a fifth of
    the runs), the runs in it `slow` as fast, 1% noise otherwise."""
    state = {"in": False}

    def speed(slot, rng):
        state["in"] = rng.random() > leave if state["in"] else rng.random() < enter
        return (1 + rng.gauss(0, 0.01)) * (slow if state["in"] else 1)

    return speed


def test_peeking_after_every_pair_does_not_pass_a_slowdown_in_disturbed_stretches():
    """Held (measured, not proven): the sequential rule looks up to eight times and stops at the first conclusive
    look. With disturbed stretches that hit adjacent runs together (A B B A puts two baseline runs side by side, so a
    stretch of two can slow only the baseline), 10,000 sessions passed 26 10% slow-downs and 2 20% ones (0.26%,
    0.02%), against 0 of 3,000 under independent disturbances (tests/perf/paired_rule_sim.py); within the 1.1% the
    docs allow a look's false alarms. Here 1,000 sessions each way, seeded."""
    import random

    rng = random.Random(13)
    slow = [_sequential_ratios(rng, 0.10, _stretches()) for _ in range(1000)]
    same = [_sequential_ratios(rng, 0.0, _stretches()) for _ in range(1000)]
    assert sum(o == paired.PASS for o, _ in slow) <= 10
    assert sum(o == paired.REGRESSION for o, _ in same) <= 10
    assert sum(o == paired.REGRESSION for o, _ in slow) >= 900 and sum(o == paired.PASS for o, _ in same) >= 900


@pytest.mark.xfail(strict=True, reason="gap: paired.side_at's fixed A B B A order; a disturbance periodic in four "
                   "runs and in phase with the baseline's slots (0, 3, 4, 7, 8, ...) slows every baseline run and "
                   "hides a slow-down of its size (in phase with slots 1, 2, 5, 6: every unchanged candidate reads "
                   "as a regression). A random order per block of two pairs (A B B A or B A A B) is all pair_up's "
                   "balance rule allows (one coin a block), and measured here it still passed 5 of 50 such "
                   "sessions (all three blocks of five pairs in phase: 1 in 8): a fix needs more randomness than "
                   "that rule leaves")  # fmt: skip
def test_a_disturbance_in_phase_with_the_baselines_slots_does_not_hide_a_slowdown():
    import random

    def aligned(slot, rng):
        return (1 + rng.gauss(0, 0.01)) * (0.88 if slot % 4 in (0, 3) else 1)  # where A B B A runs A

    rng = random.Random(14)
    assert sum(_sequential_ratios(rng, 0.10, aligned)[0] == paired.PASS for _ in range(50)) <= 1


def test_a_run_that_ends_before_it_starts_is_bad_input(tmp_path):
    """Attack: a run file whose end precedes its start passed the pairing's overlap check (after.start < before.end)
    whatever ran beside it, and the session passed; now exit 2 naming the run."""
    base, cand = _session(5)
    cand[0].end_utc = "2026-12-07T05:00:00.000000Z"
    a, b = _folders(tmp_path, base, cand)
    got = CliRunner().invoke(main, ["gate", a, b])
    assert got.exit_code == 2 and "candidate run c01 ends" in got.stderr


@pytest.mark.parametrize("zero", ["0%", "0", "-0"])
def test_a_tolerance_of_zero_is_a_usage_error_not_a_traceback(tmp_path, zero):
    """Attack: --max-regression 0% with --json or --junit raised ValueError ('a threshold above 0', from
    pairs_needed) out of the command: a traceback, exit 1. Now exit 2 with one line."""
    a, b = _folders(tmp_path, *_session(5, slowdown=0.1))
    for extra in ([], ["--json"], ["--junit", str(tmp_path / "j.xml")]):
        got = CliRunner().invoke(main, ["gate", a, b, "--max-regression", zero, *extra])
        assert got.exit_code == 2 and "must be above 0%" in got.stderr, got.output


def test_folders_left_by_a_concluded_session_do_not_pass_a_candidate_never_run(tmp_path):
    """Attack: a runner that keeps its workspace leaves runs-A/ and runs-B/ of the last job's session (a pass); the
    next job's `bench gate runs-A/ runs-B/ --base-cmd ... --candidate-cmd ...` found five pairs already there,
    judged them without running either command (here each would fail) and passed whatever the new candidate was.
    Now exit 2: a session is continued only while inconclusive."""
    a, b = _folders(tmp_path, *_session(5))
    got = CliRunner().invoke(main, ["gate", a, b, "--base-cmd", "exit 9", "--candidate-cmd", "exit 9"])
    assert got.exit_code == 2 and "already hold a concluded session (pass over 5 pairs)" in got.stderr, got.output


def test_a_run_copied_twice_into_a_side_or_a_command_writing_into_the_other_side_is_refused(tmp_path):
    """Held: a folder holding one run twice (copied under another folder name, to outvote) is refused as a run
    named twice; a candidate command that also copies its reports into the baseline's folder is refused the same
    way at the first look (both exit 2), never judged."""
    import shlex
    import shutil

    from tests.report.test_paired_sequential import COPY_NEXT
    from tests.report.test_paired_sequential import _folders as numbered

    base, cand = _session(5)
    a, b = _folders(tmp_path / "dup", base, cand)
    shutil.copytree(Path(b, "c01"), Path(b, "c01-again"))
    got = CliRunner().invoke(main, ["gate", a, b])
    assert got.exit_code == 2 and "named twice: c01" in got.stderr
    src_a, src_b = numbered(tmp_path / "src", *_session(6, slowdown=0.10))
    stray = COPY_NEXT.format(src=shlex.quote(src_b)) + '; cp -r "$BENCH_GATE_RESULTS"/* ' + shlex.quote(
        str(tmp_path / "A")) + "/ 2>/dev/null; true"  # fmt: skip
    got = CliRunner().invoke(main, ["gate", str(tmp_path / "A"), str(tmp_path / "B"),
                                    "--base-cmd", COPY_NEXT.format(src=shlex.quote(src_a)), "--candidate-cmd", stray])  # fmt: skip
    assert got.exit_code == 2 and "named twice" in got.stderr, got.output


# --- (1) the node's fold microkernel -----------------------------------------------------------------------------------

MICRO_SOURCE = Path(fold.__file__).with_name("microfold_kernel.c")


def _micro_lib(tmp_path, mutate=None):
    """The microkernel compiled as prepare() compiles it, from its source changed by `mutate` (a text edit)."""
    if fold.prepare_micro() is not None:
        pytest.skip(f"no microkernel here: {fold.prepare_micro()}")
    src = MICRO_SOURCE.read_text()
    if mutate:
        changed = mutate(src)
        assert changed != src
        src = changed
    path = tmp_path / f"microfold_{abs(hash(src))}.c"
    path.write_text(src)
    lib, why = native.compile_library(path)
    assert lib is not None, why
    micro, _ = fold._KERNEL["micro"]
    for name in ("microfold_pack_a", "microfold_pack_b", "microfold_block"):  # the argtypes prepare() set
        getattr(lib, name).argtypes, getattr(lib, name).restype = (
            getattr(micro, name).argtypes,
            getattr(micro, name).restype,
        )
    return lib


def test_a_microkernel_wrong_only_at_the_blocks_a_product_uses_is_refused(tmp_path):
    """Attack: the probe ran at small blocks (chunks of at most 3 runs) on one worker; a product runs chunks of
    MICRO_BLOCKS["kc"] runs (4 when this attack was made, 3 since) on every core. A kernel whose chunk of that many
    runs is added slightly wrong (as a miscompile of the unrolled case could) passed the probe, was kept, and an
    honest node committed products that are not the stated order (here outside the fold's allowance too)."""
    kc = fold.MICRO_BLOCKS["kc"]
    lib = _micro_lib(
        tmp_path,
        lambda s: s.replace("+= (double)tmp[i][c];", f"+= (double)tmp[i][c] * (nruns == {kc} ? 1.0 + 0x1p-18 : 1.0);"),
    )
    a, b = torch.randn(20, 64 * 11), torch.randn(64 * 11, 150)
    assert not torch.equal(fold._micro_product(lib, a, b, 64, fold.GROUP, fold.MICRO_BLOCKS, 2), fold.emulate(a, b, 64))
    assert fold.micro_probe(lib) is not None


def test_the_kept_microkernel_is_its_stated_order_on_shapes_the_probe_does_not_cover():
    """Held: ragged rows and columns, one run, a partial group, transposed operands, more rows than a block, at the
    product's blocks and at one-wide blocks, through fold.product on two workers."""
    if fold.prepare_micro() is not None:
        pytest.skip("no microkernel here")
    g = torch.Generator().manual_seed(12)
    for n, runs, m in [(1, 1, 1), (7, 10, 300), (390, 2, 129), (6, 9, 32)]:
        a = torch.randn(64 * runs, n, generator=g).T
        b = torch.randn(m, 64 * runs, generator=g).T
        want = fold.emulate(a.contiguous(), b.contiguous(), 64)
        assert torch.equal(fold.product(a, b, 64, kernel="micro"), want)
        lib, _ = fold._KERNEL["micro"]
        assert torch.equal(fold._micro_product(lib, a, b, 64, fold.GROUP, {"mc": 1, "nc": 1, "kc": 1}, 2), want)


def test_an_empty_product_is_empty_on_every_path():
    """Attack: the microkernel path divided by zero (no rows) or stepped a range by zero (no columns) where the torch
    path gives an empty product."""
    for kernel in ("micro", "sgemm", False):
        if kernel and (fold.prepare_micro() if kernel == "micro" else fold.prepare_sgemm()):
            continue
        assert fold.product(torch.ones(0, 64), torch.ones(64, 5), 64, kernel=kernel).shape == (0, 5)
        assert fold.product(torch.ones(3, 64), torch.ones(64, 0), 64, kernel=kernel).shape == (3, 0)
        assert torch.equal(fold.product(torch.ones(3, 0), torch.ones(0, 5), 64, kernel=kernel), torch.zeros(3, 5))


def test_a_compiled_kernel_is_built_in_a_private_folder_and_never_kept_on_disk(tmp_path, monkeypatch):
    """Held: each process compiles its kernels afresh for the CPU it runs on (no .so cached where another host or
    user could hand it back): the build folder is the caller's own (mode 0700, under TMPDIR), and nothing is left
    there once the library is loaded."""
    import os
    import shutil
    import stat
    import tempfile

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(mode=0o777)
    os.chmod(tmp_path / "tmp", 0o777)  # a folder every user may write, as /tmp is
    modes = []
    real = native.subprocess.run

    def run(cmd, **kw):
        modes.append(stat.S_IMODE(os.stat(Path(cmd[cmd.index("-o") + 1]).parent).st_mode))
        return real(cmd, **kw)

    monkeypatch.setattr(native.subprocess, "run", run)
    source = tmp_path / "private_kernel.c"
    source.write_text(MICRO_SOURCE.read_text())
    lib, why = native.compile_library(source)
    assert lib is not None, why
    assert modes and set(modes) == {0o700} and list((tmp_path / "tmp").iterdir()) == []


def _fma32_exact(x: float, y: float, z: float):
    """fma(x, y, z) rounded once to float32, from the exact rational sum (IEEE 754: past FLT_MAX + half an ulp,
    inf; ties to even)."""
    from fractions import Fraction

    import numpy as np

    exact = Fraction(x) * Fraction(y) + Fraction(z)
    if abs(exact) >= Fraction(2**128 - 2**103):
        return np.float32(np.inf if exact > 0 else -np.inf)
    with np.errstate(over="ignore"):
        c = np.float32(float(exact))
    near = [v for v in (c, np.nextafter(c, np.float32(np.inf)), np.nextafter(c, np.float32(-np.inf))) if np.isfinite(v)]
    return min(near, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.array(v).view(np.int32)) & 1))


def test_emulate_rounds_each_fma_once_up_to_float32s_overflow_threshold():
    """Attack on fold.emulate's claim ('float32 FMA rounded once'): where float64 rounded x y + z onto FLT_MAX + half
    an ulp (the overflow threshold) from below, _fma32 gave inf (the other neighbour was nextafter(inf, nan)) where
    FMA gives FLT_MAX: x = (1 - 2^-23) 2^52, y = (1 + 2^-23) 2^51, z = FLT_MAX. Held elsewhere: ties of double
    rounding far from overflow, against exact rationals."""
    import numpy as np

    from bench.challenge.fold import _fma32

    rng = np.random.default_rng(23)
    n = 3000
    sig = lambda: 1 + rng.integers(0, 2**23, n) / 2**23
    x = (sig() * 2.0 ** rng.integers(40, 64, n) * rng.choice([-1, 1], n)).astype(np.float32)
    y = (sig() * 2.0 ** rng.integers(40, 64, n) * rng.choice([-1, 1], n)).astype(np.float32)
    z = (sig() * 2.0 ** rng.integers(120, 128, n) * rng.choice([-1, 1], n)).astype(np.float32)
    small = rng.standard_normal(n).astype(np.float32)  # ties: x y half an ulp of z
    halves = (np.spacing(small) / 2 / small).astype(np.float32)
    edge = [np.float32((1 - 2**-23) * 2.0**52)], [np.float32((1 + 2**-23) * 2.0**51)], [np.finfo(np.float32).max]
    xs, ys, zs = (np.concatenate(v).astype(np.float32) for v in ((x, small, edge[0]), (y, halves, edge[1]),
                                                                 (z, small, edge[2])))  # fmt: skip
    got = _fma32(xs.astype(np.float64), ys.astype(np.float64), zs.astype(np.float64)).astype(np.float32)
    want = np.array([_fma32_exact(float(a), float(b), float(c)) for a, b, c in zip(xs, ys, zs, strict=True)])
    assert got[-1] == np.finfo(np.float32).max
    assert np.array_equal(got, want)


_UNDER_ASAN = """
import torch
from bench.challenge import fold
assert fold.prepare_micro() is None, fold.prepare_micro()
lib, _ = fold._KERNEL["micro"]
g = torch.Generator().manual_seed(5)
for n, runs, m in [(1, 1, 1), (7, 10, 300), (13, 2, 161), (6, 1, 32), (385, 1, 33)]:
    a, b = torch.randn(n, 64 * runs, generator=g), torch.randn(64 * runs, m, generator=g)
    for blocks in (fold.MICRO_BLOCKS, {"mc": 6, "nc": 1, "kc": 1}, {"mc": 12, "nc": 40, "kc": 3}):
        fold._PACKED = type(fold._PACKED)()  # exact-size packed buffers, so that a read past them is caught
        assert torch.equal(fold._micro_product(lib, a, b, 64, 8, blocks, 2), fold.emulate(a, b, 64)), (n, runs, m)
print("clean")
"""


def test_the_microkernel_reads_and_writes_only_inside_its_buffers_under_asan_and_ubsan():
    """Held: the kernel built with -fsanitize=address,undefined (through CC, as an operator would steer it) and
    driven through fold's own driver on ragged shapes at three blockings: no read or write past any operand, packed
    buffer or scratch (torch's allocations get ASan's red zones), no undefined behaviour. A deliberate one-past read
    in pack_b was caught this way when this test was written."""
    import os
    import shutil
    import subprocess
    import sys

    gcc = shutil.which("gcc")
    if gcc is None or fold.prepare_micro() is not None:
        pytest.skip("needs gcc and a CPU the microkernel runs on")
    libs = [subprocess.run([gcc, f"-print-file-name={n}"], check=False, capture_output=True, text=True).stdout.strip()
            for n in ("libasan.so", "libubsan.so")]  # fmt: skip
    if not all(os.path.isabs(p) and os.path.exists(p) for p in libs):
        pytest.skip("no libasan/libubsan")
    env = {**os.environ, "CC": f"{gcc} -fsanitize=address,undefined -fno-sanitize-recover=all -g",
           "LD_PRELOAD": " ".join(libs), "ASAN_OPTIONS": "detect_leaks=0", "PYTHONPATH": str(Path(fold.__file__).parents[2])}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_ASAN], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "clean" in done.stdout, done.stderr[-2000:]


# --- (3) the node-report fast path (bench.model.written) against the strict path ------------------------------------

#: pieces of what _respell_small looks for ('e-' tokens after ':,[' within 24 bytes, before ',]}'), the ':' count and
#: the vector count's threshold (written.count_byte)
_PIECES = [":", ",", "[", "]", "}", "{", "1.5e-07", "-3e-06", "e-", "7", ".", "0", "e", "-", " ", '"', "\\", "u003a",
           "1e16", "true", "9" * 17, "é", "\U0001f600"]  # fmt: skip


def test_look_alike_tokens_in_strings_and_keys_decide_as_the_strict_path():
    """Held: strings and keys built from what the fast path searches for (negative-exponent tokens inside strings,
    their delimiters at the edge of its 24-byte look-back, ':' escapes, quotes and backslashes), beside real small
    floats in the signed view, some pushing the file past count_byte's vector threshold; each document re-signed
    and also tampered by a duplicate key. The fast path gives the strict path's decision, words and canonical bytes
    (tests/report/test_node_document_fast_path._outcome asserts the bytes), or steps aside."""
    import random

    from bench.model import canonical, written
    from tests.report.test_node_document_fast_path import KEY, _outcome, _report, resign

    rng = random.Random(1212)
    taken = 0
    for i in range(120):
        doc = json.loads(json.dumps(_report(i % 5)))
        m = doc["measurements"][rng.randrange(len(doc["measurements"]))]
        for _ in range(rng.randrange(1, 4)):
            text = "".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 12)))
            target = rng.choice([doc["inventory"]["host"], m["details"], m["device"], doc["config"]])
            key = rng.choice(["note", text[:8], "zz"])
            target[key] = rng.choice([text, 3.1e-6, -1.5e-7, 2.5e-300, 1e-5])
        if i % 3 == 0:
            doc["config"]["pad"] = "x" * 4100  # past the vector count's threshold on its own
        try:
            doc = resign(doc, KEY)
        except canonical.UncarriableNumber:
            continue
        raw = dumps(doc).encode()
        assert _outcome(raw, fast=True) == _outcome(raw, fast=False), raw[:200]
        taken += written.parse_node_report(raw) is not None
        twice = raw.replace(b'"run_id": "', b'"run_id": "e-:1e-05,",\n  "run_id": "', 1)
        assert _outcome(twice, fast=True) == _outcome(twice, fast=False)
        assert written.parse_node_report(twice) is None or twice == raw
    assert taken > 10  # the fast path took some: the comparison was not of the slow path with itself


def test_the_auditor_verifies_a_folded_round_without_touching_the_nodes_fold(tmp_path, monkeypatch):
    """Held (117d40c's rule, for the fold): a folded round answered in this process by the node's fold (the
    microkernel kept here), then verified with every fold entry point raising: the auditor's check computes its
    rows from the operands alone, so it neither calls the node's kernels nor could be steered by one."""
    import numpy as np

    from bench.challenge.protocol import FOLD
    from tests.test_challenge import _answer, _drop, _errors, _issue, _receipts, verify

    path, ch = _issue(tmp_path, n=256, products=1, inner=2 * FOLD, fold=FOLD)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)

    def refuse(*args, **kwargs):
        raise AssertionError("the auditor called the node's fold")

    for name in ("product", "_micro_product", "_micro_items", "emulate", "_panel", "_tile", "prepare"):
        monkeypatch.setattr(fold, name, refuse)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), rng=np.random.default_rng(0),
                     generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] == 2 * 256 * 256 * 2 * FOLD
