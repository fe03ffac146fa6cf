"""Folded float32 challenges (bench.challenge.fold, issue 23): each product of inner dimension K is the exact sum of
K / 64 float32 products of inner dimension 64, committed once, and the exact-row check holds it to what those runs err
by. Honest folded answers verify; an unfolded long-K product, a fold in float32 at a long K and every cheaper scheme
fail through the verifier's own check; loosening the allowance to the whole K lets a cheaper scheme through."""

import ctypes
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import challenge as chl
from bench.challenge import exact_rows, fold, node, protocol
from bench.challenge.protocol import FOLD
from tests.adversarial import block_schemes
from tests.fakes.cuda import device_of
from tests.perf import precision_table as table
from tests.test_challenge import AUDITOR, _answer, _drop, _errors, _issue, _receipts, verify


def _round(tmp_path, n, inner, product=None, seed=0):
    """One node's answer to a folded float32 challenge of (n, inner), verified with fixed secrets."""
    path, ch = _issue(tmp_path, n=n, products=1, inner=inner, fold=FOLD)
    assert ch.fold == FOLD
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=product)
    return verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), rng=np.random.default_rng(seed),
                  generator=torch.Generator().manual_seed(seed))  # fmt: skip


def _operands(n, inner, seed=0):
    nonce = f"{seed:064x}"
    return tuple(chl.operand(nonce, "node", "GPU-x", 0, w, n, "float32", 3, inner=inner) for w in "AB")


def _score(a, b, c, run=FOLD, seed=0):
    """The verifier's own check (exact_rows.check) of c, folded in runs of `run` (None: not folded)."""
    return exact_rows.check(a, b, c, "float32", np.random.default_rng(seed), operands=3, fold=run)


def test_an_honest_folded_round_verifies_and_counts_every_flop(tmp_path):
    verdict = _round(tmp_path, 256, 512)
    assert _errors(verdict) == []
    assert verdict.fleet["verified_flops"] == 2 * 256 * 256 * 512
    assert verdict.to_dict()["fold"] == FOLD


def test_the_fold_is_the_exact_sum_of_float32_runs():
    """fold.product at group 1 is, bit for bit, the float64 sum of each run's float32 product rounded once (the torch
    path: each run torch's own product; the microkernel: each run a sequential FMA chain, fold.emulate); the
    default group (float32 sums of GROUP runs first) differs from it only at float32's rounding."""
    a, b = _operands(128, 1024)
    runs = sum((a[:, j : j + FOLD] @ b[j : j + FOLD]).double() for j in range(0, 1024, FOLD))
    assert torch.equal(fold.product(a, b, FOLD, group=1, kernel=False), runs.float())
    fmas = sum(fold.emulate(a[:, j : j + FOLD], b[j : j + FOLD], FOLD).double() for j in range(0, 1024, FOLD))
    if fold.prepare_micro() is None:
        assert torch.equal(fold.product(a, b, FOLD, group=1, kernel="micro"), fmas.float())
    exact = a.double() @ b.double()
    assert (fold.product(a, b, FOLD) - exact).abs().max() < 1e-4 * exact.abs().max()


@pytest.mark.parametrize("group", [1, fold.GROUP])
def test_the_nodes_fold_passes_with_margin(group):
    a, b = _operands(256, 2048)
    check = _score(a, b, fold.product(a, b, FOLD, group))
    assert check.passed and check.score < 0.75, check


def test_an_unfolded_long_k_product_fails_a_folded_challenge(tmp_path):
    """torch's own float32 GEMM over the whole K (MKL accumulates hundreds of terms in a register) errs as one long
    sequential sum: about 1.2x the folded allowance at n = 256, K = 512, and more as K grows. The protocol names the
    order; an honest node answers a folded challenge with fold.product."""
    verdict = _round(tmp_path, 256, 4096, product=lambda a, b: a @ b)
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


def test_a_fold_in_float32_fails_at_a_long_k():
    """Every run's float32 result added in float32 (a blocked GEMM with kc = 64): the fold's own roundings grow with
    K / 64 and exceed the allowance from about K = 16384 at n = 256, where fold.product (group 8) passes."""
    a, b = _operands(256, 16384)
    acc = torch.zeros(256, 256)
    for j in range(0, 16384, FOLD):
        acc += a[:, j : j + FOLD] @ b[j : j + FOLD]
    bad, good = _score(a, b, acc), _score(a, b, fold.product(a, b, FOLD))
    assert not bad.passed and good.passed, (bad, good)


@pytest.mark.parametrize(("name", "scheme", "margin"),
                         [("bf16x3", table.CHEAPER["bf16x3"], 10),
                          ("int8 row x3", table.CHEAPER["int8 row x3"], 3),
                          ("int8 block32 x3", block_schemes.SCHEMES["int8 block32 x3"], 3)])  # fmt: skip
def test_cheaper_arithmetic_over_the_whole_k_fails_by_its_margin(name, scheme, margin):
    """A cheater need not fold: bf16x3 or int8 x3 over the whole K, with exact (int32) accumulation where it has it,
    errs by a fixed share of t whatever K, as does the folded allowance: the margins measured at K = 64 hold at
    K = 4096 (bf16x3 about 17, int8 x3 about 3.7 with block scales, 5.7 with row scales; tests/perf/fold_ratio.py).
    Judged against the whole K instead (fold dropped from the check: the allowance 8x looser here), int8 x3 passes:
    the check's fold is what refuses it."""
    n, inner = 256, 4096
    got = table.scores("float32", n, operands=3, schemes={name: scheme}, inner=inner, fold=FOLD)[name]
    assert got > margin
    if name.startswith("int8"):
        assert table.scores("float32", n, operands=3, schemes={name: scheme}, inner=inner)[name] < 1


def test_cheaper_arithmetic_is_refused_in_a_folded_round(tmp_path):
    """Through the auditor: at K = 4096 the unfolded allowance is 8x the folded one, so a verifier that forgot the
    challenge's fold would pass this int8 x3 answer (and torch's unfolded product, above)."""
    product = lambda a, b: torch.from_numpy(block_schemes.SCHEMES["int8 block32 x3"](a, b, "float32")).float()
    verdict = _round(tmp_path, 256, 4096, product=product)
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


@pytest.mark.parametrize(("dtype", "inner", "run"), [("float32", 512, 32), ("bfloat16", 512, FOLD),
                                                     ("float32", 96, FOLD), ("float32", FOLD, FOLD),
                                                     ("float32", 512, True)])  # fmt: skip
def test_a_fold_the_check_was_not_measured_for_is_refused(dtype, inner, run):
    with pytest.raises(chl.ChallengeError, match="fold must be"):
        chl.issue(AUDITOR, dtype=dtype, n=256, products=1, window=dt.timedelta(minutes=5), nodes=None, inner=inner,
                  fold=run)  # fmt: skip


def test_challenge_issue_folds_float32_by_default():
    """K = 2n folded in runs of 64 where 2n is a multiple of 64 above it; otherwise the unfolded K = 64 (at most n)."""
    assert (chl.default_inner("float32", 4096), chl.default_fold("float32", 8192)) == (8192, FOLD)
    assert chl.default_inner("float32", 48) == 48 and chl.default_fold("float32", 48) is None
    assert chl.default_inner("float32", 4096, fold=False) == 64
    assert chl.default_fold("bfloat16", 8192) is None


def test_one_panel_as_a_gpu_computes_it_passes_alike():
    """Off the CPU, fold.product runs the whole matrix as one panel (_panel): the same runs, added the same way, so
    the same bits as the CPU's torch path (the CPU's kernels: test_the_cpu_kernel..., test_the_microkernel...)."""
    a, b = _operands(256, 1024)
    whole = torch.empty(256, 256)
    fold._panel(a, b, whole, slice(0, 256), FOLD, fold.GROUP)
    assert torch.equal(whole, fold.product(a, b, FOLD, kernel=False))
    assert _score(a, b, whole).passed


#: Why prepare() may find no kernel on a machine without the tools (a CI runner without a C compiler, a torch build
#: without MKL): only these skip the kernel's tests; any other reason (its bits differ) fails them.
NO_TOOLS = ("no C compiler", "torch's CPU build has no MKL", "no sgemm_")


def _kernel_or_skip():
    why = fold.prepare_sgemm()
    if why and why.startswith(NO_TOOLS):
        pytest.skip(f"no compiled fold kernel here: {why}")
    assert why is None and fold.in_use("sgemm"), why


#: Why prepare_micro() may find no microkernel: no compiler, or a CPU without the vector units it is written for.
NO_MICRO = ("no C compiler", "the microkernel found neither")


def _micro_or_skip():
    why = fold.prepare_micro()
    if why and why.startswith(NO_MICRO):
        pytest.skip(f"no microkernel here: {why}")
    assert why is None and fold.in_use("micro"), why


@pytest.mark.parametrize("group", [1, fold.GROUP])
@pytest.mark.parametrize("blocks", [{"mc": 24, "nc": 40, "kc": 3}, fold.MICRO_BLOCKS])
def test_the_microkernel_is_its_stated_order_bit_for_bit_on_ragged_shapes(monkeypatch, group, blocks):
    """The microkernel (microfold_kernel.c) on 190 x 150 (rows and columns no micro-tile, block or tile divides: 190
    = 31 x 6 + 4, 150 = 4 x 32 + 22) and K / 64 = 19 runs (two groups of 8 and a partial one; chunks of 3 runs that
    start and end mid-group) gives, bit for bit, fold.emulate's exact emulation of its stated order, on one worker
    and two; and passes the verifier's check with the margin of the other honest folds."""
    _micro_or_skip()
    monkeypatch.setattr(fold, "MICRO_BLOCKS", blocks)
    a, b = _operands(256, 19 * FOLD)
    a, b = a[:190].contiguous(), b[:, :150].contiguous()
    want = fold.emulate(a, b, FOLD, group)
    assert torch.equal(fold.product(a, b, FOLD, group, kernel="micro"), want)
    lib = fold._KERNEL["micro"][0]
    assert torch.equal(fold._micro_product(lib, a, b, FOLD, group, blocks, workers=1), want)
    scores = exact_rows.scores(a.double().numpy(), b, want.double().numpy(), "float32", 3, FOLD)
    assert scores.max() < 0.5, scores.max()


@pytest.mark.parametrize("isa", [256, 0])
def test_the_microkernels_other_paths_are_its_stated_order_too(tmp_path, isa):
    """Where a CPU has no AVX-512 the microkernel builds for AVX2 with FMA (256-bit vectors, micro-tiles of 6 x 16),
    and without either its portable loop (fmaf; prepare() refuses it as slower than the sgemm kernel): each, compiled
    here with the wider units' macros undefined, passes the same probe and is fold.emulate's order bit for bit."""
    _micro_or_skip()
    undef = "#undef __AVX512F__\n" + ("#undef __AVX2__\n" if isa == 0 else "")
    (tmp_path / f"micro{isa}.c").write_text(undef + fold.MICRO_SOURCE.read_text())
    lib, why = fold._micro_compile(tmp_path / f"micro{isa}.c", portable=True)
    assert why is None and lib.microfold_isa() == isa, why
    assert fold.micro_probe(lib) is None
    a, b = _operands(128, 11 * FOLD)
    a, b = a[:70].contiguous(), b[:, :45].contiguous()
    blocks = {"mc": 18, "nc": 20, "kc": 3}
    assert torch.equal(fold._micro_product(lib, a, b, FOLD, 8, blocks, 2), fold.emulate(a, b, FOLD, 8))


def test_fma32_rounds_once_where_float64_would_round_twice():
    """fold.emulate's float32 FMA: correctly rounded against exact rational arithmetic on random operands over the
    challenge's exponent range, and on a sum that float64 rounds onto a float32 halfway point (1 + 2^-23 - 2^-24
    + 2^-70: rounding the float64 sum to float32 gives 1, the correct rounding 1 + 2^-23)."""
    from fractions import Fraction

    def exact32(q: Fraction) -> float:
        r = np.float32(float(q))
        near = [r, np.nextafter(r, np.float32(np.inf)), np.nextafter(r, np.float32(-np.inf))]
        return float(min(near, key=lambda v: (abs(Fraction(float(v)) - q), int(np.float32(v).view(np.int32)) & 1)))

    rng = np.random.default_rng(0)
    x, y, z = (np.ldexp(rng.uniform(-1, 1, 2000), rng.integers(-20, 2, 2000)).astype(np.float32).astype(np.float64)
               for _ in range(3))  # fmt: skip
    got = fold._fma32(x, y, z)
    assert all(got[i] == exact32(Fraction(x[i]) * Fraction(y[i]) + Fraction(z[i])) for i in range(2000))
    x, y, z = (np.array([v]) for v in (1 + 2.0**-23, -(1 - 2.0**-23) * 2.0**-24, 1 + 2.0**-23))
    assert float(np.float32(x[0] * y[0] + z[0])) == 1.0  # float64, then float32: the halfway point, to even
    assert fold._fma32(x, y, z)[0] == 1 + 2.0**-23


def test_a_microkernel_with_one_wrong_lane_is_refused(monkeypatch, tmp_path):
    """prepare() keeps the microkernel only where its probe gives fold.emulate's bits: one output lane of a
    micro-tile (its last row, last column) folded a hair off (one part in 10^7) is refused, and products fall back
    to the sgemm kernel, else the torch path."""
    _micro_or_skip()
    src = fold.MICRO_SOURCE.read_text()
    line = "acc[(size_t)i * ldacc + c] += (double)tmp[i][c];"
    assert line in src
    bad = line.replace("(double)tmp[i][c];", "(double)tmp[i][c] * (i == MR - 1 && c == NR - 1 ? 1.0000001 : 1.0);")
    (tmp_path / "bad.c").write_text(src.replace(line, bad))
    monkeypatch.setattr(fold, "MICRO_SOURCE", tmp_path / "bad.c")
    monkeypatch.setattr(fold, "_KERNEL", {})
    assert "differ" in fold.prepare_micro()
    assert not fold.in_use("micro")
    fold.prepare()
    assert fold.kernel_name() in ("sgemm", "torch")
    a, b = _operands(128, 512)
    assert torch.equal(fold.product(a, b, FOLD), fold.product(a, b, FOLD, kernel=False))
    with pytest.raises(ValueError, match="not in use"):
        fold.product(a, b, FOLD, kernel="micro")


def test_without_a_compiler_the_fold_falls_back_to_the_torch_path(monkeypatch):
    """A CI runner without a C compiler: neither kernel compiles, prepare() says why, and products are the torch
    path's."""
    monkeypatch.setattr(fold, "_KERNEL", {})
    monkeypatch.setattr(fold.native, "compile_library", lambda source: (None, "no C compiler (a test)"))
    why = fold.prepare()
    assert why and "no C compiler" in why and fold.kernel_name() == "torch"
    a, b = _operands(128, 512)
    whole = torch.empty(128, 128)
    fold._panel(a, b, whole, slice(0, 128), FOLD, fold.GROUP)
    assert torch.equal(fold.product(a, b, FOLD), whole)


@pytest.mark.parametrize("group", [1, fold.GROUP])
def test_the_cpu_kernel_gives_the_torch_paths_bits_on_ragged_tiles(monkeypatch, group):
    """The compiled kernel (fold_kernel.c) on tiles that do not divide C (190 x 150 in tiles of 48 x 80) and K / 64 =
    19 runs (two groups of 8 and a partial one) gives, bit for bit, the torch path's folded sums: the whole matrix as
    one panel (what a GPU computes) and the CPU's row panels."""
    _kernel_or_skip()
    monkeypatch.setattr(fold, "TILE", (48, 80))
    a, b = _operands(256, 19 * FOLD)
    a, b = a[:190], b[:, :150]
    whole = torch.empty(190, 150)
    fold._panel(a, b, whole, slice(0, 190), FOLD, group)
    assert torch.equal(fold.product(a, b, FOLD, group, kernel="sgemm"), whole)
    assert torch.equal(fold.product(a, b, FOLD, group, kernel=False), whole)
    if group == 1:  # and the definition: the float64 sum of each run's float32 product, rounded once
        runs = sum((a[:, j : j + FOLD] @ b[j : j + FOLD]).double() for j in range(0, 19 * FOLD, FOLD))
        assert torch.equal(whole, runs.float())


def test_a_kernel_whose_bits_differ_is_not_used(monkeypatch, tmp_path):
    """prepare() keeps the compiled kernel only if a probe gives the torch path's bits: a kernel that adds each
    group's partial a hair off (one part in 10^7) is refused, and products fall back to the torch path's sums."""
    _kernel_or_skip()
    src = fold.KERNEL_SOURCE.read_text()
    assert "acc[i] += (double)part[i];" in src
    (tmp_path / "bad.c").write_text(src.replace("acc[i] += (double)part[i];", "acc[i] += (double)part[i] * 1.0000001;"))
    monkeypatch.setattr(fold, "KERNEL_SOURCE", tmp_path / "bad.c")
    monkeypatch.setattr(fold, "_KERNEL", {"micro": "off: this test holds the sgemm kernel"})
    assert "differ" in fold.prepare_sgemm()
    assert "differ" in fold.prepare() and not fold.in_use()
    a, b = _operands(128, 512)
    whole = torch.empty(128, 128)
    fold._panel(a, b, whole, slice(0, 128), FOLD, fold.GROUP)
    assert torch.equal(fold.product(a, b, FOLD), whole)


def test_each_fold_worker_runs_its_gemms_on_one_thread(monkeypatch):
    """OpenMP's and MKL's thread counts are per thread, and a worker calling the kernel through ctypes never passes
    through torch's per-thread initialization: without its own setting, MKL ran each of its GEMMs on the process's
    default threads (two here: four threads on two cores). Every tile runs where MKL's threads are 1 (asked of MKL
    itself, before any torch call on that thread), and the caller's torch threads are restored after."""
    _kernel_or_skip()
    mkl = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so")).mkl_get_max_threads
    seen = []
    real = fold._tile
    monkeypatch.setattr(fold, "_tile", lambda *args: (seen.append(mkl()), real(*args)))
    before = torch.get_num_threads()
    a, b = _operands(256, 512)
    fold.product(a, b, FOLD, kernel="sgemm")
    assert seen and set(seen) == {1}, seen
    assert torch.get_num_threads() == before


def test_the_cuda_path_folds_on_the_device_with_the_cpus_bits(fake_cuda):
    """On a CUDA device (the fake: CPU arithmetic, CUDA's device rules) fold.product computes one panel by torch
    ops, on the device (nothing copied to the host), and its sums are the CPU's, bit for bit (here the fake's
    arithmetic is the CPU's: a real GPU's GEMM sums each run in its own order, within the fold's error)."""
    fake_cuda(count=1)
    a, b = _operands(256, 19 * FOLD)
    a, b = a[:190], b[:, :150]
    got = fold.product(a.to("cuda:0"), b.to("cuda:0"), FOLD)
    assert device_of(got) == "cuda:0"
    assert torch.equal(got.cpu(), fold.product(a, b, FOLD, kernel=False))


def test_the_node_generates_each_products_operands_into_the_previous_ones(tmp_path, monkeypatch):
    """On a CPU, compute_all writes product i + 1's A and B into product i's (no longer needed; their pages are
    mapped, where a fresh 128 MiB operand cost about 60 ms of page faults), the first product's into buffers it
    made (hostmem's huge pages), and the products are the same bits as from fresh operands."""
    _, ch = _issue(tmp_path, n=256, products=3, inner=512, fold=FOLD)
    device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}
    made = []
    real = node.operand
    monkeypatch.setattr(node, "operand", lambda *a, **k: made.append((k.get("out"), real(*a, **k))) or made[-1][1])
    products = chl.compute_all(ch, "node-a", device)
    monkeypatch.undo()
    assert [out is None for out, _ in made] == [False] * 6
    assert [tuple(out.shape) for out, _ in made[:2]] == [(256, 512), (512, 256)]
    assert made[0][0] is made[0][1] and made[1][0] is made[1][1]
    assert made[2][0] is made[0][1] and made[3][0] is made[1][1] and made[4][0] is made[2][1]
    for p in products:
        assert torch.equal(p.c, chl.compute(ch, "node-a", device, p.index).c)


@pytest.mark.parametrize(("took", "chosen"), [({"sgemm": 1.0, "micro": 2.0}, "sgemm"),
                                              ({"sgemm": 2.0, "micro": 1.0}, "micro"),
                                              ({"sgemm": 1.0, "micro": 1.0}, "sgemm")])  # fmt: skip
def test_prepare_keeps_the_kernel_that_measures_faster(monkeypatch, took, chosen):
    """fold.prepare keeps both kernels where both pass their probes and answers on the one calibrate() measured
    faster (a tie: the sgemm kernel); default products run on it. Where the sgemm kernel is refused, the microkernel
    answers without a calibration."""
    _kernel_or_skip()
    _micro_or_skip()
    kept = {k: fold._KERNEL[k] for k in ("fold", "micro")}
    calls: list[int] = []
    real = fold._micro_product
    monkeypatch.setattr(fold, "_micro_product", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(fold, "calibrate", lambda: dict(took))
    a, b = _operands(128, 512)

    monkeypatch.setattr(fold, "_KERNEL", dict(kept))
    assert fold.prepare() is None and fold.kernel_name() == chosen and fold.calibration() == took
    fold.product(a, b, FOLD)
    assert bool(calls) == (chosen == "micro")

    calls.clear()
    monkeypatch.setattr(fold, "calibrate", lambda: pytest.fail("calibrated with one kernel"))
    monkeypatch.setattr(fold, "_KERNEL", {"fold": "refused (a test)", "micro": kept["micro"]})
    assert fold.prepare() is None and fold.kernel_name() == "micro" and fold.calibration() is None
    fold.product(a, b, FOLD)
    assert calls  # the default product ran on the microkernel


def test_calibrate_times_both_kernels_on_one_worker(monkeypatch):
    """calibrate() runs each kernel (each called, on one torch thread) and returns CPU seconds for both, restoring
    torch's thread count."""
    _kernel_or_skip()
    _micro_or_skip()
    monkeypatch.setattr(fold, "CALIBRATION", {"rows": 70, "cols": 150, "inner": 3 * FOLD, "reps": 1})
    seen: list[tuple[object, int]] = []
    real = fold.product
    monkeypatch.setattr(fold, "product", lambda *a, **k: seen.append((k["kernel"], torch.get_num_threads()))
                        or real(*a, **k))  # fmt: skip
    threads = torch.get_num_threads()
    took = fold.calibrate()
    assert set(took) == {"sgemm", "micro"} and all(0 <= t < float("inf") for t in took.values())
    assert sorted({k for k, _ in seen}) == ["micro", "sgemm"] and {t for _, t in seen} == {1}
    assert torch.get_num_threads() == threads


def test_the_sgemm_probe_refuses_a_kernel_wrong_at_a_tile_edge(monkeypatch, tmp_path):
    """The sgemm kernel's probe compares it with the torch path on its own tiles (a BLAS may order a run by the call's
    shape), on a product with a partial tile each way: a kernel that leaves each tile's last column unwritten is
    refused, and products fall back to a kernel that is right."""
    _kernel_or_skip()
    src = fold.KERNEL_SOURCE.read_text()
    edge = "for (int c = 0; c < cols; c++)"
    assert src.count(edge) == 1
    (tmp_path / "edge.c").write_text(src.replace(edge, "for (int c = 0; c < cols - 1; c++)"))
    monkeypatch.setattr(fold, "KERNEL_SOURCE", tmp_path / "edge.c")
    monkeypatch.setattr(fold, "_KERNEL", {"micro": "off: this test holds the sgemm kernel"})
    assert "differ" in fold.prepare_sgemm() and not fold.in_use()
    a, b = _operands(128, 512)
    whole = torch.empty(128, 128)
    fold._panel(a, b, whole, slice(0, 128), FOLD, fold.GROUP)
    assert torch.equal(fold.product(a, b, FOLD), whole)


def test_the_sgemm_kernel_is_the_torch_paths_calls_on_its_tiles(monkeypatch):
    """What the sgemm probe holds it to: on 190 x 150 in tiles of 48 x 80 and 19 runs, its bits equal the torch
    path's on the same tiles (fold._tiles), at group 1 and 8."""
    _kernel_or_skip()
    monkeypatch.setattr(fold, "TILE", (48, 80))
    a, b = _operands(256, 19 * FOLD)
    a, b = a[:190].contiguous(), b[:, :150].contiguous()
    for group in (1, fold.GROUP):
        assert torch.equal(fold.product(a, b, FOLD, group, kernel="sgemm"), fold._tiles(a, b, FOLD, group))


@pytest.mark.parametrize("kernel", ["sgemm", "micro", False])
def test_each_block_of_rows_is_reported_once_and_only_when_final(monkeypatch, kernel):
    """fold.product's rows_done (what the node hashes C's rows by, inside the fold workers): on ragged blocks (190 rows
    in tiles of 48 x 80, micro blocks of 24 rows by column ranges, panels of 64), on two workers, every row is reported
    exactly once, and what the callback sees then is the row's final value (the last work item of a block reports it;
    reported when its first item finished, a block still being written by the other worker would differ)."""
    if kernel == "sgemm":
        _kernel_or_skip()
        monkeypatch.setattr(fold, "TILE", (48, 80))
    elif kernel == "micro":
        _micro_or_skip()
        monkeypatch.setattr(fold, "MICRO_BLOCKS", {"mc": 24, "nc": 40, "kc": 3})
    a, b = _operands(256, 19 * FOLD)
    a, b = a[:190].contiguous(), b[:, :150].contiguous()
    out = torch.full((190, 150), float("nan"))
    seen: list[tuple[int, int, torch.Tensor]] = []
    got = fold.product(a, b, FOLD, kernel=kernel, out=out, rows_done=lambda f, s: seen.append((f, s, out[f:s].clone())))
    assert got is out
    assert sorted(r for f, s, _ in seen for r in range(f, s)) == list(range(190))
    whole = torch.empty(190, 150)
    fold._panel(a, b, whole, slice(0, 190), FOLD, fold.GROUP)
    if kernel == "micro":
        whole = fold.emulate(a, b, FOLD, fold.GROUP)
    assert torch.equal(got, whole)
    for first, stop, rows in seen:
        assert torch.equal(rows, whole[first:stop]), (first, stop)


def test_the_node_hashes_a_folded_products_rows_in_the_fold_and_commits_the_same_root(tmp_path):
    """compute_all on a CPU hashes each folded product's C inside the fold workers (node.multiply's `hashed`): the
    committed root is merkle_root of C's rows, as the auditor computes it, on a C that no tile divides evenly, and the
    leaves come in row order (a shuffled order is another root)."""
    _, ch = _issue(tmp_path, n=300, products=2, inner=640, fold=FOLD)
    device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}
    products = chl.compute_all(ch, "node-a", device)
    for p in products:
        assert p.root == chl.merkle_root(chl.row_bytes(p.c))
        assert torch.equal(p.c, chl.compute(ch, "node-a", device, p.index).c)
    hashed: list[bytes] = []
    a, b = node.operands(ch, "node-a", device, 0)
    c = node.multiply(device, a, b, FOLD, hashed)
    assert len(hashed) == 300 and protocol.root_of_leaves(hashed) == chl.merkle_root(chl.row_bytes(c))
    assert protocol.root_of_leaves(hashed[1:] + hashed[:1]) != products[0].root
