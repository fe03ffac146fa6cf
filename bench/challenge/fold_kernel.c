/* One tile of a folded float32 product on a CPU (bench/challenge/fold.py, issue 23).

   out[r][c] = (float) sum over runs j of A_j B_j, each A_j B_j a float32 GEMM of inner dimension `run` computed by
   the BLAS sgemm passed in (MKL's, the one torch's own CPU matmul calls), `group` runs added in float32 by the GEMM
   itself (beta = 1: one rounding a run), each group's float32 partial converted to float64 exactly and added into
   a float64 accumulator, which is rounded to float32 once at the end. The same operations in the same order as
   fold.py's torch path (torch.mm / addmm_ into a float32 partial, acc += partial, out = acc), so the same bits.

   Why C: the loop over K / run GEMM calls and the float64 adds run without Python or the GIL. torch's float64 +=
   float32 (a type-promoting add) took about 1 ns an element, 15-27% of the fold at group 8; here the add is a
   vectorized loop over a tile whose float32 partial and float64 accumulator fit the core's L2 cache.

   Row-major operands: a (rows x inner, leading dimension lda), b (inner x cols, ldb), out (rows x cols, ldo).
   sgemm is column-major (Fortran), so each run computes part^T = b_j^T a_j^T, as torch calls it. part (rows x cols
   floats) and acc (rows x cols doubles) are the caller's scratch, reused from tile to tile: allocated per tile they
   were mapped afresh (page faults) about once a tile. Returns 0. */
#include <stddef.h>
#include <string.h>

typedef void (*sgemm_fn)(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                         const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                         const float *beta, float *c, const int *ldc);

int fold_tile(sgemm_fn sgemm, const float *a, int lda, const float *b, int ldb, float *out, int ldo, int rows,
              int cols, int inner, int run, int group, float *part, double *acc)
{
    const size_t size = (size_t)rows * (size_t)cols;
    const float one = 1.0f, zero = 0.0f;
    const int runs = inner / run;
    memset(acc, 0, size * sizeof(double));
    for (int j = 0; j < runs; j++) {
        sgemm("N", "N", &cols, &rows, &run, &one, b + (size_t)j * run * ldb, &ldb, a + (size_t)j * run, &lda,
              j % group == 0 ? &zero : &one, part, &cols);
        if (j % group == group - 1 || j == runs - 1)
            for (size_t i = 0; i < size; i++)
                acc[i] += (double)part[i]; /* exact conversion, one float64 rounding */
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            out[(size_t)r * ldo + c] = (float)acc[(size_t)r * cols + c]; /* the one rounding to float32 */
    return 0;
}
