/* A folded float32 product on a CPU by a register-blocked microkernel (bench/challenge/fold.py, issue 23).

   The fold's arithmetic, element by element: each run of `run` inner terms is a sequential float32 FMA chain from
   zero (s = fma(a_k, b_k, s), k in order), the runs of a group added in float32 one after another (one rounding a
   run: p = s_0, then p = p + s_j), each group's p converted to float64 exactly and added into a float64 accumulator,
   which is rounded to float32 once at the end. fold.py's probe holds the bits to an exact emulation of that order
   (fold.emulate) and the error to the fold's allowance; tests/challenge/test_fold.py holds both on ragged shapes.

   Why: the sgemm kernel (fold_kernel.c) calls MKL once a run, which loads and stores the tile's float32 partial every
   64 terms and packs its operands again each call: about 0.7 of MAMF at K = 2n, n = 4096. Here, as in a BLIS/Goto
   GEMM (Goto & van de Geijn, "Anatomy of high-performance matrix multiplication", 2008), B is packed once per
   product into slivers of NR columns (k-major), A once per block of rows into micro-panels of MR rows (k-major), and
   a micro-tile of MR x NR outputs keeps each run's sums in vector registers: memory sees the float32 partial only
   between chunks of runs and the float64 accumulator once a group.

   Blocking (the caller's): A and B packed once a product (all workers, split by panels and slivers); a work item, a
   block of `mc` rows by a range of columns, computes tiles of `nc` columns; for each tile, the K / run runs in chunks of at most `kc` runs that never cross a group; per chunk, each NR-column sliver of
   packed B (kc x run x NR floats: 24 KiB at kc = 3, NR = 32, in L1) meets every MR-row micro-panel of A (in L2). The
   tile's float32 partial and float64 accumulator (mc x nc x 12 bytes) stay in L2.

   Rows and columns past the operands' edges are packed as zeros and never written: each output's arithmetic is its
   own, so padding changes no bits. Compiled with -ffp-contract=off (bench.challenge.native): the only FMAs are the
   explicit ones. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define ISA 512
#define VL 16
typedef __m512 vec;
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_load_ps(p)
#define VSTORE(p, v) _mm512_store_ps(p, v)
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#ifndef MR
#define MR 8 /* 8 x 32: 16 zmm run sums (the group partials spill, once a run); 6 x 32 ran 0.03-0.05 of MAMF slower */
#endif
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ISA 256
#define VL 8
typedef __m256 vec;
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_load_ps(p)
#define VSTORE(p, v) _mm256_store_ps(p, v)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#ifndef MR
#define MR 6
#endif
#else /* portable: correct, slow; fold.py prefers the sgemm kernel where the ISA is 0 */
#define ISA 0
#define VL 1
typedef float vec;
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VBCAST(x) (x)
#define VFMA(a, b, c) fmaf(a, b, c)
#define VADD(a, b) ((a) + (b))
#ifndef MR
#define MR 4
#endif
#endif
#ifndef NV
#define NV 2 /* vectors a micro-tile row */
#endif
#define NR (NV * VL)
#ifndef PREFETCH
#define PREFETCH 1 /* software prefetch of the next B sliver's and A panel's chunk (fold_ratio.py --micro-shapes) */
#endif

int microfold_isa(void) { return ISA; }
int microfold_mr(void) { return MR; }
int microfold_nr(void) { return NR; }

/* Packed B: for each sliver s of NR columns, for each k of `inner`, NR floats (zeros past `cols`). Slivers
   [s0, s1) of b (inner x cols, row-major, leading dimension ldb): the caller splits the slivers across workers. */
void microfold_pack_b(const float *b, int ldb, int inner, int cols, int s0, int s1, float *packed)
{
    for (int s = s0; s < s1; s++) {
        float *dst = packed + (size_t)s * inner * NR;
        const int c0 = s * NR, w = cols - c0 < NR ? cols - c0 : NR;
        for (int k = 0; k < inner; k++) {
            const float *src = b + (size_t)k * ldb + c0;
            float *d = dst + (size_t)k * NR;
            for (int c = 0; c < w; c++)
                d[c] = src[c];
            for (int c = w; c < NR; c++)
                d[c] = 0.0f;
        }
    }
}

/* Packed A: for each micro-panel p of MR rows, for each k of `inner`, MR floats (zeros past `rows`). Panels [p0, p1)
   of a (rows x inner, row-major, leading dimension lda): the caller splits the panels across workers. */
void microfold_pack_a(const float *a, int lda, int inner, int rows, int p0, int p1, float *packed)
{
    for (int p = p0; p < p1; p++) {
        float *dst = packed + (size_t)p * inner * MR;
        const int r0 = p * MR, h = rows - r0 < MR ? rows - r0 : MR;
        for (int k = 0; k < inner; k++) {
            float *d = dst + (size_t)k * MR;
            for (int r = 0; r < h; r++)
                d[r] = a[(size_t)(r0 + r) * lda + k];
            for (int r = h; r < MR; r++)
                d[r] = 0.0f;
        }
    }
}

/* One micro-tile over `nruns` runs of one group: ap (k-major, MR a k) and bp (k-major, NR a k) at the chunk's first
   term; part (MR x NR floats) holds the group's partial between chunks; with `first` the chunk starts the group (the
   partial is the first run's sum), with `last` it ends it (acc, MR rows of NR doubles at leading dimension ldacc,
   += the partial). */
static inline void micro(const float *restrict ap, const float *restrict bp, int nruns, int run, float *restrict part,
                         int first, int last, double *restrict acc, int ldacc)
{
    vec p[MR][NV];
    if (!first)
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++)
                p[i][v] = VLOAD(part + i * NR + v * VL);
    for (int j = 0; j < nruns; j++) {
        vec s[MR][NV];
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++)
                s[i][v] = VZERO();
        for (int k = 0; k < run; k++) {
            vec bv[NV];
            for (int v = 0; v < NV; v++)
                bv[v] = VLOAD(bp + v * VL);
            for (int i = 0; i < MR; i++) {
                const vec x = VBCAST(ap[i]);
                for (int v = 0; v < NV; v++)
                    s[i][v] = VFMA(x, bv[v], s[i][v]);
            }
            ap += MR;
            bp += NR;
        }
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++)
                p[i][v] = (first && j == 0) ? s[i][v] : VADD(p[i][v], s[i][v]);
    }
    if (!last) {
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++)
                VSTORE(part + i * NR + v * VL, p[i][v]);
        return;
    }
    float tmp[MR][NR] __attribute__((aligned(64)));
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++)
            VSTORE(&tmp[i][v * VL], p[i][v]);
    for (int i = 0; i < MR; i++)
        for (int c = 0; c < NR; c++)
            acc[(size_t)i * ldacc + c] += (double)tmp[i][c]; /* exact conversion, one float64 rounding */
}

/* Rows [0, rows) x columns [c0, c1) of the folded product: apacked (microfold_pack_a's panels from the block's first
   row on), bpacked (microfold_pack_b's, all slivers), out at the block's first row (leading dimension ldo). c0 a
   multiple of NR. Scratch from the caller, 64-byte aligned: part (ceil(rows / MR) x MR x ceil(nc / NR) x NR floats),
   acc (as many doubles). nc, kc: tile columns and runs a chunk. Returns 0, or -1 for a shape it cannot take. */
int microfold_block(const float *apacked, const float *bpacked, float *out, int ldo, int rows, int c0, int c1,
                    int inner, int run, int group, int nc, int kc, float *part, double *acc)
{
    if (rows <= 0 || c0 < 0 || c0 % NR || c1 <= c0 || run <= 0 || inner % run || group <= 0 || nc <= 0 || kc <= 0)
        return -1;
    const int runs = inner / run, panels = (rows + MR - 1) / MR;
    const int ncr = (nc + NR - 1) / NR * NR, ldacc = ncr;
    for (int t0 = c0; t0 < c1; t0 += ncr) { /* tiles of whole slivers */
        const int w = c1 - t0 < ncr ? c1 - t0 : ncr, slivers = (w + NR - 1) / NR;
        memset(acc, 0, sizeof(double) * (size_t)panels * MR * ldacc);
        for (int j0 = 0; j0 < runs;) {
            const int in_group = group - j0 % group, left = runs - j0;
            int nr = kc < in_group ? kc : in_group;
            nr = nr < left ? nr : left;
            const int first = j0 % group == 0, last = (j0 + nr) % group == 0 || j0 + nr == runs;
            const size_t k0 = (size_t)j0 * run;
            const size_t blines = (size_t)nr * run * NR * sizeof(float) / 64, alines = (size_t)nr * run * MR * sizeof(float) / 64;
            const size_t bper = (blines + panels - 1) / panels;
            for (int s = 0; s < slivers; s++) {
                const float *bp = bpacked + ((size_t)(t0 / NR + s) * inner + k0) * NR;
                const char *bnext = s + 1 < slivers ? (const char *)(bp + (size_t)inner * NR) : NULL;
                for (int p = 0; p < panels; p++) {
                    const float *ap = apacked + ((size_t)p * inner + k0) * MR;
                    if (PREFETCH && bnext) /* the next sliver's chunk into L2, a share a micro-tile */
                        for (size_t l = p * bper; l < (p + 1) * bper && l < blines; l++)
                            __builtin_prefetch(bnext + 64 * l, 0, 2);
                    if (PREFETCH && s == 0 && p + 1 < panels) /* the next panel's chunk of A: not contiguous */
                        for (size_t l = 0; l < alines; l++)
                            __builtin_prefetch((const char *)(ap + (size_t)inner * MR) + 64 * l, 0, 2);
                    micro(ap, bp, nr, run, part + ((size_t)p * slivers + s) * MR * NR, first, last,
                          acc + (size_t)p * MR * ldacc + (size_t)s * NR, ldacc);
                }
            }
            j0 += nr;
        }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < w; c++)
                out[(size_t)r * ldo + t0 + c] = (float)acc[(size_t)r * ldacc + c]; /* the one rounding to float32 */
    }
    return 0;
}
