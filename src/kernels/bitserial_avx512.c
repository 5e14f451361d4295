/* Bit-serial GEMM, AVX-512BW tier (no VPOPCNTDQ): activation packer (shared with the vpopcnt
 * tier) and the nibble-table micro-kernel.
 *
 * Buffers (layouts in bitserial.h):
 *   A      uint8_t  [M][K]                          activations, a_bits in 1..8
 *   acts   uint64_t [ceil(M/8)][a_bits][kw][8]      kw = ceil(K/64); rowsum int32_t [ceil(M/8)*8]
 *   wts    uint64_t panel p: [B_p][kw][16]          B_p in 1..8 (1 = +-1 panel)
 *   C      int32_t  [M][ldc]
 * Registers of the 8 x 16 micro-tile (8 pixels x 16 channels):
 *   16 zmm byte counters  u8 [8 pixels][2 vectors][64 bytes]  (<= 8 per word, flushed every 31
 *                                                               words: <= 248, no overflow)
 *   16 int64 accumulators i64 [8 pixels][16 channels]          (Horner over s = i + j)
 * Per K word, per pixel, per 8-channel vector: lo = W & a & 0x0f (vpternlogq), hi = (W >> 4) &
 * (a >> 4) & 0x0f (vpternlogq; both shifts hoisted), two vpshufb lookups, two byte adds.
 * The functions carry target attributes, so this file builds without -march flags; they are only
 * called after mq_bs_tier_available(MQ_BS_TIER_AVX512 or VPOPCNT) said yes. */
#include "kernels/bitserial.h"

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define BW_TARGET "avx512f,avx512bw,avx512vl,avx512dq,popcnt"
#define TGT __attribute__((target(BW_TARGET)))
#define TGT_INLINE static inline __attribute__((always_inline, target(BW_TARGET)))

int mq_bs_avx512_compiled(void) { return 1; }

TGT int mq_bs_pack_rows_avx512(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    const int K = out->K, kw = out->kw, ab = out->a_bits;
    const __m512i himask = _mm512_set1_epi8((char)(0xffu << ab & 0xffu));
    const __m512i zero = _mm512_setzero_si512();
    __mmask64 bad = 0;
    for (int m = m0; m < m1; m++) {
        const uint8_t *row = a + (size_t)m * (size_t)K;
        uint64_t *base =
            out->bits + (size_t)(m / MQ_BS_MR) * (size_t)ab * (size_t)kw * MQ_BS_MR + m % MQ_BS_MR;
        __m512i sum = zero;
        for (int w = 0; w < kw; w++) {
            const int n = K - 64 * w;
            const __mmask64 lm = n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
            const __m512i x = _mm512_maskz_loadu_epi8(lm, row + 64 * w);
            sum = _mm512_add_epi64(sum, _mm512_sad_epu8(x, zero));
            bad |= _mm512_test_epi8_mask(x, himask);
            for (int j = 0; j < ab; j++)
                base[((size_t)j * kw + (size_t)w) * MQ_BS_MR] =
                    (uint64_t)_mm512_test_epi8_mask(x, _mm512_set1_epi8((char)(1u << j & 0xffu)));
        }
        out->rowsum[m] = (int32_t)_mm512_reduce_add_epi64(sum);
    }
    return bad != 0;
}

/* Popcounts of one plane pair over words [w0, w1) (w1 - w0 <= 31) into q (added, or
 * subtracted for the sign plane). */
TGT_INLINE void kloop(const uint64_t *Aj, const uint64_t *Wi, int w0, int w1,
                      __m512i q[MQ_BS_MR][2], int neg) {
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i b[MQ_BS_MR][2];
    for (int r = 0; r < MQ_BS_MR; r++) b[r][0] = b[r][1] = _mm512_setzero_si512();
    for (int w = w0; w < w1; w++) {
        const __m512i wa = _mm512_load_si512((const void *)(Wi + (size_t)w * MQ_BS_NR));
        const __m512i wb = _mm512_load_si512((const void *)(Wi + (size_t)w * MQ_BS_NR + 8));
        const __m512i wah = _mm512_srli_epi16(wa, 4), wbh = _mm512_srli_epi16(wb, 4);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
#endif
        for (int r = 0; r < MQ_BS_MR; r++) {
            const __m512i x = _mm512_set1_epi64((long long)Aj[(size_t)w * MQ_BS_MR + r]);
            const __m512i xh = _mm512_srli_epi16(x, 4);
            const __m512i lo0 = _mm512_ternarylogic_epi64(wa, x, m4, 0x80);
            const __m512i hi0 = _mm512_ternarylogic_epi64(wah, xh, m4, 0x80);
            const __m512i lo1 = _mm512_ternarylogic_epi64(wb, x, m4, 0x80);
            const __m512i hi1 = _mm512_ternarylogic_epi64(wbh, xh, m4, 0x80);
            b[r][0] = _mm512_add_epi8(b[r][0], _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo0),
                                                               _mm512_shuffle_epi8(lut, hi0)));
            b[r][1] = _mm512_add_epi8(b[r][1], _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo1),
                                                               _mm512_shuffle_epi8(lut, hi1)));
        }
    }
    const __m512i zero = _mm512_setzero_si512();
    for (int r = 0; r < MQ_BS_MR; r++)
        for (int v = 0; v < 2; v++) {
            const __m512i t = _mm512_sad_epu8(b[r][v], zero);
            q[r][v] = neg ? _mm512_sub_epi64(q[r][v], t) : _mm512_add_epi64(q[r][v], t);
        }
}

#include "kernels/bitserial_avx512_tile.h"

TGT void mq_bs_gemm_panels_avx512(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C,
                                  int ldc, int p0, int p1) {
    const int kw = a->kw, ab = a->a_bits;
    for (int pa = p0; pa < p1; pa++) {
        const uint64_t *Ap = a->bits + (size_t)pa * ab * kw * MQ_BS_MR;
        for (int pw = 0; pw < w->panels; pw++) {
            const int B = w->bits[pw], smax = (B - 1) + (ab - 1);
            const uint64_t *Wp = w->planes + w->off[pw];
            __m512i q[MQ_BS_MR][2];
            for (int r = 0; r < MQ_BS_MR; r++) q[r][0] = q[r][1] = _mm512_setzero_si512();
            for (int s = smax; s >= 0; s--) {
                if (s < smax)
                    for (int r = 0; r < MQ_BS_MR; r++) {
                        q[r][0] = _mm512_slli_epi64(q[r][0], 1);
                        q[r][1] = _mm512_slli_epi64(q[r][1], 1);
                    }
                for (int i = MQ_MAX(0, s - (ab - 1)); i <= MQ_MIN(B - 1, s); i++) {
                    const uint64_t *Aj = Ap + (size_t)(s - i) * kw * MQ_BS_MR;
                    const uint64_t *Wi = Wp + (size_t)i * kw * MQ_BS_NR;
                    const int neg = B >= 2 && i == B - 1;
                    for (int w0 = 0; w0 < kw; w0 += 31) {
                        const int w1 = MQ_MIN(kw, w0 + 31);
                        if (neg) kloop(Aj, Wi, w0, w1, q, 1);
                        else kloop(Aj, Wi, w0, w1, q, 0);
                    }
                }
            }
            store_tile(q, a, w, pw, pa * MQ_BS_MR, C, ldc);
        }
    }
}

#else /* not x86-64 GCC/clang: the tier does not exist in this build */

int mq_bs_avx512_compiled(void) { return 0; }
int mq_bs_pack_rows_avx512(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    (void)a, (void)m0, (void)m1, (void)out;
    return 1;
}
void mq_bs_gemm_panels_avx512(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                              int p0, int p1) {
    (void)a, (void)w, (void)C, (void)ldc, (void)p0, (void)p1;
}

#endif
