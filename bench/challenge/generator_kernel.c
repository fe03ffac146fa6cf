/* float32 challenge operands on a CPU (bench/challenge/generator.py, issue 23): the bit patterns of rows h x
   columns g, element (r, c) from w = lowbias32(h[r] ^ g[c]) as generator.values() defines it for float32
   (sign = bit 31 of w, exponent field (bias - 1 - e) << 23 with e = bits 27..30, significand = the low 23 bits).

   Why C: torch.compile's kernel for this formula ran at several ns an element on this CPU, generation a fifth of a
   folded float32 proof's window at n = 4096; this loop is about 20 unsigned 32-bit ops an element, which the compiler
   vectorizes. Unsigned arithmetic wraps mod 2^32 and shifts are logical: the same bits as the torch formula's int32
   ops with masked shifts (generator.fuse's probe and tests/challenge/test_generator.py hold them equal). */
#include <stddef.h>
#include <stdint.h>

static inline uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static inline uint32_t element(uint32_t hr, uint32_t gc)
{
    const uint32_t w = lowbias32(hr ^ gc);
    return ((126u << 23) - ((w >> 4) & (15u << 23))) | (w & 0x807fffffu);
}

#if defined(__AVX512F__)
#include <immintrin.h>
/* lowbias32(hr ^ g[i]) for 16 lanes at once: the same unsigned ops lane by lane (vpmulld keeps the low 32 bits, vpsrld
   is logical). Shared by the float32 and the paired (bfloat16/float16) rows. */
static inline __m512i lowbias32_x16(__m512i hv, const uint32_t *g)
{
    __m512i x = _mm512_xor_si512(hv, _mm512_loadu_si512(g));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
    return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}
/* AVX-512: 16 elements a step, the same unsigned ops lane by lane (vpmulld keeps the low 32 bits, vpsrld is logical),
   stored with non-temporal stores from each row's first 64-byte boundary: an operand (128 MiB at n = 4096,
   K = 8192) does not fit a core's caches, and a plain store first reads the line it writes. Measured on this CPU
   (one thread, 4096 x 8192): 0.30 ns an element against 0.54 for the compiler's own vectorized loop of element(). */
static void row_avx512(uint32_t hr, const uint32_t *g, int cols, uint32_t *row)
{
    int c = 0;
    for (; c < cols && ((uintptr_t)(row + c) & 63); c++)
        row[c] = element(hr, g[c]);
    const __m512i expo = _mm512_set1_epi32(126u << 23), field = _mm512_set1_epi32(15u << 23);
    const __m512i keep = _mm512_set1_epi32((int)0x807fffffu), hv = _mm512_set1_epi32((int)hr);
    for (; c + 16 <= cols; c += 16) {
        const __m512i x = lowbias32_x16(hv, g + c);
        const __m512i v = _mm512_or_si512(_mm512_sub_epi32(expo, _mm512_and_si512(_mm512_srli_epi32(x, 4), field)),
                                          _mm512_and_si512(x, keep));
        _mm512_stream_si512((void *)(row + c), v);
    }
    for (; c < cols; c++)
        row[c] = element(hr, g[c]);
}
#endif

/* The vector unit float32_block was built for: 512 (AVX-512's path above) or 0 (the compiler's loop of element()). */
int float32_isa(void)
{
#if defined(__AVX512F__)
    return 512;
#else
    return 0;
#endif
}

void float32_block(const uint32_t *h, int rows, const uint32_t *g, int cols, uint32_t *out, long ldo)
{
    for (int r = 0; r < rows; r++) {
        uint32_t *row = out + (size_t)r * (size_t)ldo;
#if defined(__AVX512F__)
        row_avx512(h[r], g, cols, row);
#else
        for (int c = 0; c < cols; c++)
            row[c] = element(h[r], g[c]);
#endif
    }
#if defined(__AVX512F__)
    _mm_sfence(); /* the non-temporal stores visible before the caller's threads read the operand */
#endif
}

/* Version 3's bfloat16 and float16 operands (generator.paired_words): one word w = lowbias32(h[r] ^ g[j]) makes
   columns 2j (its low 16 bits) and 2j + 1 (its high 16 bits), both halves mapped at once: both signs and
   significands kept (keep), both exponent fields (bias - 1 - e) << bits one subtraction from a constant holding
   bias - 1 in both halves (no borrow crosses: e < bias - 1), e the bits above the significand's shifted into place
   (shift = 11 - bits, masked by field in both halves; a logical shift here, arithmetic in torch: the mask never keeps
   the bits where they differ). Why C: torch.compile's kernel for this made a fresh operand each product (about
   142,000 page faults and 4% of a bfloat16 round's window at n = 4096, K = 16384); here each row is written into
   the caller's buffer (a node's previous operands, or its reserve), 16 words a step with AVX-512. */
static inline uint32_t paired(uint32_t hr, uint32_t gj, uint32_t keep, uint32_t expo, uint32_t field, int shift)
{
    const uint32_t w = lowbias32(hr ^ gj);
    return (w & keep) | (expo - ((w >> shift) & field));
}

#if defined(__AVX512F__)
static void paired_row_avx512(uint32_t hr, const uint32_t *g, int pairs, uint32_t *row, uint32_t keep, uint32_t expo,
                              uint32_t field, int shift)
{
    int j = 0;
    for (; j < pairs && ((uintptr_t)(row + j) & 63); j++)
        row[j] = paired(hr, g[j], keep, expo, field, shift);
    const __m512i kv = _mm512_set1_epi32((int)keep), ev = _mm512_set1_epi32((int)expo);
    const __m512i fv = _mm512_set1_epi32((int)field), hv = _mm512_set1_epi32((int)hr);
    for (; j + 16 <= pairs; j += 16) {
        const __m512i x = lowbias32_x16(hv, g + j);
        const __m512i v = _mm512_or_si512(_mm512_and_si512(x, kv),
                                          _mm512_sub_epi32(ev, _mm512_and_si512(_mm512_srl_epi32(x, _mm_cvtsi32_si128(shift)), fv)));
        _mm512_stream_si512((void *)(row + j), v);
    }
    for (; j < pairs; j++)
        row[j] = paired(hr, g[j], keep, expo, field, shift);
}
#endif

/* Rows h (rows of them) x `width` 16-bit elements from `pairs` = ceil(width / 2) column keys g, into out (leading
   dimension ldo elements). bits, bias, binades: the dtype's (generator.LAYOUT, EXPONENT_BINADES). A row whose start
   is 4-byte aligned and whose width is even is written as words (the vector path where built); otherwise element by
   element (an odd width's last word gives its low half only). */
void paired_block(const uint32_t *h, int rows, const uint32_t *g, int pairs, int width, uint16_t *out, long ldo,
                  int bits, int bias, int binades)
{
    const uint32_t both = 0x10001u, keep = 0x80008000u | ((1u << bits) - 1u) * both;
    const uint32_t expo = ((uint32_t)(bias - 1) << bits) * both, field = ((uint32_t)(binades - 1) << bits) * both;
    const int shift = 11 - bits;
    for (int r = 0; r < rows; r++) {
        uint16_t *row = out + (size_t)r * (size_t)ldo;
        if (width % 2 == 0 && ((uintptr_t)row & 3) == 0) {
#if defined(__AVX512F__)
            paired_row_avx512(h[r], g, pairs, (uint32_t *)row, keep, expo, field, shift);
#else
            for (int j = 0; j < pairs; j++)
                ((uint32_t *)row)[j] = paired(h[r], g[j], keep, expo, field, shift);
#endif
            continue;
        }
        for (int j = 0; j < pairs; j++) {
            const uint32_t w = paired(h[r], g[j], keep, expo, field, shift);
            row[2 * j] = (uint16_t)(w & 0xffffu);
            if (2 * j + 1 < width)
                row[2 * j + 1] = (uint16_t)(w >> 16);
        }
    }
#if defined(__AVX512F__)
    _mm_sfence();
#endif
}
