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

void float32_block(const uint32_t *h, int rows, const uint32_t *g, int cols, uint32_t *out, long ldo)
{
    for (int r = 0; r < rows; r++) {
        const uint32_t hr = h[r];
        uint32_t *row = out + (size_t)r * (size_t)ldo;
        for (int c = 0; c < cols; c++) {
            const uint32_t w = lowbias32(hr ^ g[c]);
            row[c] = ((126u << 23) - ((w >> 4) & (15u << 23))) | (w & 0x807fffffu);
        }
    }
}
