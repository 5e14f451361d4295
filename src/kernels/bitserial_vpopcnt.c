/* Bit-serial GEMM, AVX-512 VPOPCNTDQ tier (Ice Lake and later, Zen 4/5). Activations are packed
 * by the AVX-512BW packer (bitserial_avx512.c); this file holds the micro-kernel only.
 *
 * Buffers (layouts in bitserial.h):
 *   acts   uint64_t [ceil(M/8)][a_bits][kw][8]      kw = ceil(K/64), a_bits in 1..8;
 *                                                   rowsum int32_t [ceil(M/8)*8]
 *   wts    uint64_t panel p: [B_p][kw][16]          B_p in 1..8 (1 = +-1 panel)
 *   C      int32_t  [M][ldc]
 * Micro-tile 8 pixels x 16 channels: 16 zmm int64 accumulators [8 pixels][2 x 8 channels].
 * Per K word and pixel: vpandq (one weight vector, the pixel's word broadcast {1to8}), vpopcntq,
 * vpaddq (vpsubq for the two's complement sign plane) for each of the 2 vectors: 3 vector uops
 * per 512 bit pairs. Horner over s = i + j: one vpsllq per accumulator and s.
 * Target attributes let this file build without -march flags (and with a -march=native that
 * lacks VPOPCNTDQ); the kernel runs only after mq_bs_tier_available(MQ_BS_TIER_VPOPCNT). */
#include "kernels/bitserial.h"

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "kernels/bitserial_vp.h"

int mq_bs_vpopcnt_compiled(void) { return 1; }

/* Pixels 0..mr-1 of the panel only (the padding pixels of a short last panel are skipped). */
TGT_INLINE void kloop(const uint64_t *Aj, const uint64_t *Wi, int kw, __m512i q[MQ_BS_MR][2],
                      int neg, int mr) {
    for (int w = 0; w < kw; w++) {
        const __m512i wa = _mm512_load_si512((const void *)(Wi + (size_t)w * MQ_BS_NR));
        const __m512i wb = _mm512_load_si512((const void *)(Wi + (size_t)w * MQ_BS_NR + 8));
#define MQ_KLOOP_ROW(r)                                                                            \
    if (r < mr) {                                                                                  \
        const __m512i x = _mm512_set1_epi64((long long)Aj[(size_t)w * MQ_BS_MR + (r)]);            \
        const __m512i c0 = popcnt64(_mm512_and_si512(wa, x));                                      \
        const __m512i c1 = popcnt64(_mm512_and_si512(wb, x));                                      \
        if (neg) {                                                                                 \
            q[r][0] = _mm512_sub_epi64(q[r][0], c0);                                               \
            q[r][1] = _mm512_sub_epi64(q[r][1], c1);                                               \
        } else {                                                                                   \
            q[r][0] = _mm512_add_epi64(q[r][0], c0);                                               \
            q[r][1] = _mm512_add_epi64(q[r][1], c1);                                               \
        }                                                                                          \
    }
        MQ_BS_ROWS(MQ_KLOOP_ROW) /* literal rows: bitserial.h says why */
#undef MQ_KLOOP_ROW
    }
}

/* The k loop the shared tile code (bitserial_avx512_tile.h) runs; hs is the AVX-512BW tier's. */
TGT_INLINE void tile_kloop(const uint64_t *Aj, const uint64_t *Wi, int kw, __m512i q[MQ_BS_MR][2],
                           int neg, int mr, int hs) {
    (void)hs;
    kloop(Aj, Wi, kw, q, neg, mr);
}

#define MQ_TILE_SHORT_CONST 1 /* layers of 1-4 output pixels (batch 1, 2x2 maps): 2-8 % faster */
#define MQ_TILE_SHAPE_PATHS 1
#include "kernels/bitserial_avx512_tile.h"

TGT void mq_bs_gemm_panels_vpopcnt(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C,
                                   int ldc, int p0, int p1) {
    gemm_panels(a, w, C, ldc, p0, p1, 0);
}

#else /* not x86-64 GCC/clang */

int mq_bs_vpopcnt_compiled(void) { return 0; }
void mq_bs_gemm_panels_vpopcnt(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C,
                               int ldc, int p0, int p1) {
    (void)a, (void)w, (void)C, (void)ldc, (void)p0, (void)p1;
}
#endif
