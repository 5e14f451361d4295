/* Bit-serial GEMM, AVX-512BW tier (no VPOPCNTDQ): activation packer (shared with the vpopcnt
 * tier) and the micro-kernels: a Harley-Seal carry-save tree over K on the weights' 32-bit layout,
 * or for short K the nibble table alone on the 64-bit one.
 *
 * Buffers (layouts in bitserial.h):
 *   A      uint8_t  [M][K]                          activations, a_bits in 1..8
 *   acts   uint64_t [ceil(M/8)][a_bits][kw][8]      kw = ceil(K/64); rowsum int32_t [ceil(M/8)*8]
 *   wts    uint64_t panel p: [B_p][kw][16]          B_p in 1..8 (1 = +-1 panel)
 *          uint32_t tplanes panel p: [B_p][kw][2][16] (kw >= mq_bs_avx512_hs_min_kw())
 *   C      int32_t  [M][ldc]
 * The micro-tile is 8 pixels x 16 channels. Two K loops fill it, chosen by K:
 *   kloop_nib (kw < 8), 64-bit layout: i64 accumulators [8 pixels][2 vectors of 8 channels]
 *     (Horner over s = i + j, bitserial_avx512_tile.h); 16 zmm byte counters (<= 8 per word,
 *     flushed every 31 words); per K word, pixel and 8-channel vector: lo = W & a & 0x0f,
 *     hi = (W >> 4) & (a >> 4) & 0x0f (vpternlogq; shifts hoisted), two vpshufb, two byte adds.
 *   kloop_hs32 (kw >= 8), tplanes: i32 accumulators [8 pixels] of 16 channels (tile32); per
 *     pixel a carry-save tree over the 2 kw 32-bit half words; per 8 halves: 8 vpandd, 14
 *     vpternlogq, one nibble-table popcount (details above kloop_hs32).
 * Both loops run only the panel's valid pixels (M - 8 p, at most 8): with a few output pixels
 * (batch 1 on a 1x1 or 3x3 map) the padding pixels would otherwise cost as much as real ones.
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

/* The 64 codes at p (n of them valid, the rest read as 0): a plain load for a whole word, a
 * masked one only for the last, short word (a mask register write costs a port the tests need). */
TGT_INLINE __m512i load_codes(const uint8_t *p, int n) {
    return n >= 64 ? _mm512_loadu_si512((const void *)p)
                   : _mm512_maskz_loadu_epi8(((__mmask64)1 << n) - 1, p);
}

TGT int mq_bs_pack_rows_avx512(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    const int K = out->K, kw = out->kw, ab = out->a_bits;
    const __m512i himask = _mm512_set1_epi8((char)(0xffu << ab & 0xffu));
    const __m512i zero = _mm512_setzero_si512();
    __mmask64 bad = 0;
    for (int m = m0; m < m1; m++) {
        const uint8_t *row = a + (size_t)m * (size_t)K;
        uint64_t *base =
            out->bits + (size_t)(m / MQ_BS_MR) * (size_t)ab * (size_t)kw * MQ_BS_MR + m % MQ_BS_MR;
        if (ab <= 2) { /* the row sum from the planes' popcounts: cheaper than a byte sum here */
            int64_t rs = 0;
            for (int w = 0; w < kw; w++) {
                const __m512i x = load_codes(row + 64 * w, K - 64 * w);
                bad = _kor_mask64(bad, _mm512_test_epi8_mask(x, himask)); /* stays in a k reg */
                const uint64_t b0 = (uint64_t)_mm512_test_epi8_mask(x, _mm512_set1_epi8(1));
                base[(size_t)w * MQ_BS_MR] = b0;
                rs += __builtin_popcountll(b0);
                if (ab == 2) {
                    const uint64_t b1 = (uint64_t)_mm512_test_epi8_mask(x, _mm512_set1_epi8(2));
                    base[((size_t)kw + (size_t)w) * MQ_BS_MR] = b1;
                    rs += 2 * __builtin_popcountll(b1);
                }
            }
            out->rowsum[m] = (int32_t)rs;
            continue;
        }
        __m512i sum = zero;
        for (int w = 0; w < kw; w++) {
            const __m512i x = load_codes(row + 64 * w, K - 64 * w);
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

/* The conv rows (bitserial.h) eight at a time, one output panel per step: per kernel tap the 8
 * rows' source pixels are computed in vector lanes (h = p*stride - pad + r, w = q*stride - pad + t,
 * inside-the-image mask, pixel index and its word offset in pix), then every plane word of the
 * tap is one masked 64-bit gather (lanes outside the image keep the padding word) and one aligned
 * 64-byte store: the destination line of a panel holds the same K word of its 8 rows. The row
 * sums are gathered the same way. Positions (image, p, q) of the 8 rows are walked in scalar code
 * once per panel; rows past M get the padding values (the caller zeroes them). */
TGT void mq_bs_conv_rows_avx512(const mq_bs_conv_geo *g, const mq_bs_acts *pix,
                                const uint64_t *padp, int32_t padsum, mq_bs_acts *out) {
    const int H = g->H, W = g->W, R = g->R, S = g->S, stride = g->stride, pad = g->pad;
    const int P = g->P, Q = g->Q, cw = g->C / 64, kw = out->kw, ab = out->a_bits;
    const long long ps = (long long)ab * cw * MQ_BS_MR; /* words per 8-pixel panel of pix */
    const size_t os = (size_t)ab * kw * MQ_BS_MR;       /* words per 8-row panel of out */
    const int64_t M = out->M;
    const __m256i vH = _mm256_set1_epi32(H), vW = _mm256_set1_epi32(W);
    const __m512i vps = _mm512_set1_epi64(ps), seven = _mm512_set1_epi64(7);
    const __m256i vpadsum = _mm256_set1_epi32(padsum);
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    __m512i padv[MQ_BS_MAX_BITS];
    for (int j = 0; j < ab; j++) padv[j] = _mm512_set1_epi64((long long)padp[(size_t)j * cw * MQ_BS_MR]);
    int ii = 0, pp_ = 0, qq = 0; /* position of the next row */
    for (int64_t m0 = 0; m0 < M; m0 += MQ_BS_MR) {
        const int mr = (int)MQ_MIN((int64_t)MQ_BS_MR, M - m0);
        int32_t li[MQ_BS_MR] = {0}, lh[MQ_BS_MR] = {0}, lw[MQ_BS_MR] = {0};
        /* stride 1, the 8 rows in one output row: lane x reads pixel a + x (a = lane 0's pixel,
         * inside the image or not), two aligned lines of pix and a permute instead of a gather */
        const int row1 = stride == 1 && mr == MQ_BS_MR && qq + MQ_BS_MR <= Q;
        for (int x = 0; x < mr; x++) {
            li[x] = ii * H, lh[x] = pp_ * stride - pad, lw[x] = qq * stride - pad;
            if (++qq == Q) {
                qq = 0;
                if (++pp_ == P) pp_ = 0, ii++;
            }
        }
        const __mmask8 live = (__mmask8)((1u << mr) - 1);
        const __m256i vi = _mm256_loadu_si256((const __m256i *)li);
        const __m256i h0 = _mm256_loadu_si256((const __m256i *)lh);
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)lw);
        __m256i sum = _mm256_setzero_si256();
        uint64_t *dst = out->bits + (size_t)(m0 / MQ_BS_MR) * os;
        for (int r = 0; r < R; r++) {
            const __m256i h = _mm256_add_epi32(h0, _mm256_set1_epi32(r));
            const __mmask8 mh = live & _mm256_cmpge_epi32_mask(h, _mm256_setzero_si256()) &
                                _mm256_cmplt_epi32_mask(h, vH);
            const __m256i rowpix = _mm256_mullo_epi32(_mm256_add_epi32(vi, h), vW);
            for (int t = 0; t < S; t++) {
                const __m256i w = _mm256_add_epi32(w0, _mm256_set1_epi32(t));
                const __mmask8 mv = mh & _mm256_cmpge_epi32_mask(w, _mm256_setzero_si256()) &
                                    _mm256_cmplt_epi32_mask(w, vW);
                sum = _mm256_mask_add_epi32(sum, (__mmask8)(live & ~mv), sum, vpadsum);
                uint64_t *d = dst + (size_t)(r * S + t) * cw * MQ_BS_MR;
                if (!mv) { /* every row reads padding */
                    for (int j = 0; j < ab; j++)
                        for (int c = 0; c < cw; c++)
                            _mm512_store_si512((void *)(d + ((size_t)j * kw + c) * MQ_BS_MR), padv[j]);
                    continue;
                }
                /* lane 0's pixel */
                const int64_t a2 = ((int64_t)li[0] + lh[0] + r) * W + lw[0] + t;
                if (row1 && a2 >= 0) {
                    sum = _mm256_mask_add_epi32(sum, mv, sum,
                                                _mm256_maskz_loadu_epi32(mv, pix->rowsum + a2));
                    /* lanes of mv read pixels a2 + x < npix, so panel a2/8 + 1 is at most the
                     * padding panel: both lines are inside pix */
                    const uint64_t *la = pix->bits + (size_t)(a2 / MQ_BS_MR) * (size_t)ps;
                    const __m512i idx = _mm512_add_epi64(_mm512_set1_epi64(a2 % MQ_BS_MR), lane);
                    for (int j = 0; j < ab; j++)
                        for (int c = 0; c < cw; c++) {
                            const uint64_t *l = la + ((size_t)j * cw + c) * MQ_BS_MR;
                            const __m512i v = _mm512_permutex2var_epi64(
                                _mm512_load_si512((const void *)l), idx,
                                _mm512_load_si512((const void *)(l + ps)));
                            _mm512_store_si512((void *)(d + ((size_t)j * kw + c) * MQ_BS_MR),
                                               _mm512_mask_blend_epi64(mv, padv[j], v));
                        }
                    continue;
                }
                /* any lanes: gathers, from each row's pixel pp (valid lanes: 0 <= pp < npix) at
                 * word offset (pp / 8) * ps + pp % 8 of pix */
                const __m256i pp = _mm256_add_epi32(rowpix, w);
                const __m512i pq = _mm512_cvtepi32_epi64(pp);
                const __m512i off = _mm512_add_epi64(
                    _mm512_mullo_epi64(_mm512_srli_epi64(pq, 3), vps), _mm512_and_si512(pq, seven));
                sum = _mm256_mask_add_epi32(
                    sum, mv, sum,
                    _mm256_mmask_i32gather_epi32(_mm256_setzero_si256(), mv, pp, pix->rowsum, 4));
                for (int j = 0; j < ab; j++)
                    for (int c = 0; c < cw; c++) {
                        const long long *base =
                            (const long long *)(pix->bits + ((size_t)j * cw + c) * MQ_BS_MR);
                        const __m512i v = _mm512_mask_i64gather_epi64(padv[j], mv, off, base, 8);
                        _mm512_store_si512((void *)(d + ((size_t)j * kw + c) * MQ_BS_MR), v);
                    }
            }
        }
        _mm256_mask_storeu_epi32(out->rowsum + m0, live, sum);
    }
}

/* Popcounts of one plane pair over words [w0, w1) (w1 - w0 <= 31) for the panel's pixels
 * 0..mr-1 into q (added, or subtracted for the sign plane), by the nibble table alone: cheaper than the carry-save tree
 * below when K is short (its end-of-row cost is not amortized). */
TGT_INLINE void kloop_nib(const uint64_t *Aj, const uint64_t *Wi, int w0, int w1,
                      __m512i q[MQ_BS_MR][2], int neg, int mr) {
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
        for (int r = 0; r < mr; r++) {
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
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 2; v++) {
            const __m512i t = _mm512_sad_epu8(b[r][v], zero);
            q[r][v] = neg ? _mm512_sub_epi64(q[r][v], t) : _mm512_add_epi64(q[r][v], t);
        }
}

#include "kernels/bitserial_csa.h"
#define CSA MQ_BS_CSA

/* ---------------------------------------------------------------- carry-save tree (kw >= 8)
 * On the tier's 32-bit copy of the weights (tplanes, bitserial.h): a zmm holds one 32-bit half
 * of a K word for all 16 channels of a panel, so each accumulator (one pixel) covers the whole
 * panel and a tree's end cost (three nibble-table popcounts and the sums) is paid once per 16 outputs, not
 * per 8 as on the 64-bit layout. Step j of a pass is half j & 1 of word j / 2: the pixel's
 * 32-bit half broadcast {1to16}, ANDed with the 16 channels' halves at W32 + 16 j. Per
 * accumulator the bit vectors o, t, f (ones, twos, fours) hold the running sum in carry-save
 * form; every 8 steps produce one "eights" vector whose byte popcounts go into the byte counters
 * c (weight 8). 4 steps go through a 4-input tree into f, 2 through one full adder and two
 * half adders; the last step count is even (2 per word). c gets <= 8 per byte per event and a
 * pass has <= 31 events (HS32_CHUNK words: 30 blocks of 8, a shorter last pass <= 29 + 2), so
 * <= 248 per byte. The end: o + 2 t + 4 f per byte (<= 8 + 16 + 32, through tables of 1, 2, 4
 * times the popcounts) plus 8 c, summed per 32-bit lane (vpmaddubsw, vpmaddwd) into q.
 * Per 8 steps and accumulator: 8 vpandd + 14 vpternlogq + one byte popcount. Four pixels at a
 * time (16 registers of state), then pairs, then one. Against the 64-bit layout's tree (two
 * accumulators per pixel), AMD Zen 5, 1 thread, W1A1 / W2A2 / W4A4 64 x 256 x 1152: 1.09-1.22x /
 * 1.19-1.22x / 1.25x, 16 x 512 x 4608 W1A1 1.05-1.09x (same process, alternating). */
#define HS32_CHUNK 120

#define popw mq_bs_popb /* per byte: lut[lo nibble] + lut[hi nibble] (bitserial_csa.h) */
/* Step jj (a constant offset from the block's first step j) of pixel r of the group. */
#define AW32(jj, r)                                                                             \
    _mm512_and_si512(_mm512_set1_epi32((int)pa_[(jj) / 2 * 2 * MQ_BS_MR + 2 * (r) + ((jj) & 1)]), \
                     _mm512_load_si512((const void *)(pw_ + (size_t)(jj) * MQ_BS_NR)))
#define HS32_ACC(r) __m512i o##r = zero, t##r = zero, f##r = zero, c##r = zero
#define HS32_B8(r)                                                                              \
    do {                                                                                        \
        __m512i ta, tb, fa, fb, e;                                                              \
        CSA(ta, o##r, AW32(0, r), AW32(1, r));                                                  \
        CSA(tb, o##r, AW32(2, r), AW32(3, r));                                                  \
        CSA(fa, t##r, ta, tb);                                                                  \
        CSA(ta, o##r, AW32(4, r), AW32(5, r));                                                  \
        CSA(tb, o##r, AW32(6, r), AW32(7, r));                                                  \
        CSA(fb, t##r, ta, tb);                                                                  \
        CSA(e, f##r, fa, fb);                                                                   \
        c##r = _mm512_add_epi8(c##r, popw(e, lut, m4));                                         \
    } while (0)
#define HS32_B4(r)                                                                              \
    do {                                                                                        \
        __m512i ta, tb, fa;                                                                     \
        CSA(ta, o##r, AW32(0, r), AW32(1, r));                                                  \
        CSA(tb, o##r, AW32(2, r), AW32(3, r));                                                  \
        CSA(fa, t##r, ta, tb);                                                                  \
        const __m512i e = _mm512_and_si512(f##r, fa);                                           \
        f##r = _mm512_xor_si512(f##r, fa);                                                      \
        c##r = _mm512_add_epi8(c##r, popw(e, lut, m4));                                         \
    } while (0)
#define HS32_B2(r)                                                                              \
    do {                                                                                        \
        __m512i ta;                                                                             \
        CSA(ta, o##r, AW32(0, r), AW32(1, r));                                                  \
        const __m512i fa = _mm512_and_si512(t##r, ta);                                          \
        t##r = _mm512_xor_si512(t##r, ta);                                                      \
        const __m512i e = _mm512_and_si512(f##r, fa);                                           \
        f##r = _mm512_xor_si512(f##r, fa);                                                      \
        c##r = _mm512_add_epi8(c##r, popw(e, lut, m4));                                         \
    } while (0)
#define HS32_END(r)                                                                             \
    do {                                                                                        \
        __m512i low = _mm512_add_epi8(popw(o##r, lut, m4), popw(t##r, lut2, m4));               \
        low = _mm512_add_epi8(low, popw(f##r, lut4, m4));                                       \
        const __m512i x = _mm512_add_epi16(_mm512_maddubs_epi16(low, one8),                     \
                                           _mm512_maddubs_epi16(c##r, eight8));                 \
        const __m512i sum = _mm512_madd_epi16(x, one16);                                        \
        q[r0 + r] = neg ? _mm512_sub_epi32(q[r0 + r], sum) : _mm512_add_epi32(q[r0 + r], sum);  \
    } while (0)
#define HS32_G4(X) X(0); X(1); X(2); X(3)
#define HS32_G2(X) X(0); X(1)
#define HS32_G1(X) X(0)
/* pa_, pw_: the pixel group's and the weights' first step of the block */
#define HS32_PTRS                                                                               \
    const uint32_t *pa_ = A32 + (size_t)(j / 2) * 2 * MQ_BS_MR + 2 * r0;                       \
    const uint32_t *pw_ = W32 + (size_t)j * MQ_BS_NR
#define HS32_KLOOP(G)                                                                           \
    do {                                                                                        \
        int j = 0;                                                                              \
        for (; j + 8 <= ns; j += 8) {                                                           \
            HS32_PTRS;                                                                          \
            G(HS32_B8);                                                                         \
        }                                                                                       \
        if (j + 4 <= ns) {                                                                      \
            HS32_PTRS;                                                                          \
            G(HS32_B4);                                                                         \
            j += 4;                                                                             \
        }                                                                                       \
        if (j < ns) {                                                                           \
            HS32_PTRS;                                                                          \
            G(HS32_B2);                                                                         \
        }                                                                                       \
        G(HS32_END);                                                                            \
    } while (0)

/* One pass: ns (even, <= 2 HS32_CHUNK) steps of plane pair (A32, W32) for pixels 0..mr-1 of the
 * panel into q (added, or subtracted for the sign plane). */
TGT_INLINE void kloop_hs32(const uint32_t *A32, const uint32_t *W32, int ns, __m512i q[MQ_BS_MR],
                           int neg, int mr) {
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i lut2 = _mm512_add_epi8(lut, lut), lut4 = _mm512_add_epi8(lut2, lut2);
    const __m512i m4 = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    const __m512i one8 = _mm512_set1_epi8(1), eight8 = _mm512_set1_epi8(8);
    const __m512i one16 = _mm512_set1_epi16(1);
    int r0 = 0;
    for (; r0 + 4 <= mr; r0 += 4) {
        HS32_G4(HS32_ACC);
        HS32_KLOOP(HS32_G4);
    }
    for (; r0 + 2 <= mr; r0 += 2) {
        HS32_G2(HS32_ACC);
        HS32_KLOOP(HS32_G2);
    }
    if (r0 < mr) {
        HS32_G1(HS32_ACC);
        HS32_KLOOP(HS32_G1);
    }
}
#undef AW32
#undef HS32_ACC
#undef HS32_B8
#undef HS32_B4
#undef HS32_B2
#undef HS32_END
#undef HS32_G4
#undef HS32_G2
#undef HS32_G1
#undef HS32_PTRS
#undef HS32_KLOOP

/* Plane pair (Aj: [kw][8] words, Wi: [kw][2][16] halves), every word, in passes of HS32_CHUNK. */
TGT_INLINE void kloop32(const uint64_t *Aj, const uint32_t *Wi, int kw, __m512i q[MQ_BS_MR],
                        int neg, int mr) {
    for (int w0 = 0; w0 < kw; w0 += HS32_CHUNK)
        kloop_hs32((const uint32_t *)(Aj + (size_t)w0 * MQ_BS_MR), Wi + (size_t)w0 * 2 * MQ_BS_NR,
                   2 * (MQ_MIN(kw, w0 + HS32_CHUNK) - w0), q, neg, mr);
}

/* One 8 x 16 tile on tplanes: Horner over s = i + j (bitserial.h) on 32-bit sums (exact: the
 * result fits int32 and every step is an add, a subtract or a doubling, so intermediate wraps
 * cancel), then the store: lane l is column c0 + l for an interleaved panel (contig 2), else
 * slot l. */
static TGT void tile32(const uint64_t *Ap, const uint32_t *Wp, int kw, int ab, int B, int mr,
                       const mq_bs_acts *a, const mq_bs_weights *w, int pw, int m0, int32_t *C,
                       int ldc) {
    const int smax = (B - 1) + (ab - 1);
    __m512i q[MQ_BS_MR];
    for (int r = 0; r < MQ_BS_MR; r++) q[r] = _mm512_setzero_si512();
    for (int s = smax; s >= 0; s--) {
        if (s < smax)
            for (int r = 0; r < MQ_BS_MR; r++) q[r] = _mm512_slli_epi32(q[r], 1);
        for (int i = MQ_MAX(0, s - (ab - 1)); i <= MQ_MIN(B - 1, s); i++)
            kloop32(Ap + (size_t)(s - i) * kw * MQ_BS_MR, Wp + (size_t)i * kw * 2 * MQ_BS_NR, kw, q,
                    B >= 2 && i == B - 1, mr);
    }
    const int32_t *col = w->col + (size_t)pw * MQ_BS_NR;
    const int contig = w->contig[pw], nrows = w->rows[pw];
    for (int r = 0; r < mr; r++) {
        __m512i v = q[r];
        if (B == 1)
            v = _mm512_sub_epi32(_mm512_add_epi32(v, v), _mm512_set1_epi32(a->rowsum[m0 + r]));
        int32_t *Crow = C + (size_t)(m0 + r) * (size_t)ldc;
        if (contig) { /* 2: 16 columns from col[0] (lane order); 1: nrows consecutive slots */
            _mm512_mask_storeu_epi32(Crow + col[0], (__mmask16)((1u << nrows) - 1), v);
        } else {
            int32_t t[MQ_BS_NR];
            _mm512_storeu_si512((void *)t, v);
            for (int c = 0; c < nrows; c++) Crow[col[c]] = t[c];
        }
    }
}

/* short K: the nibble table on the 64-bit layout (the shared tile code) */
TGT_INLINE void tile_kloop(const uint64_t *Aj, const uint64_t *Wi, int kw, __m512i q[MQ_BS_MR][2],
                           int neg, int mr, int hs) {
    (void)hs;
    for (int w0 = 0; w0 < kw; w0 += 31) kloop_nib(Aj, Wi, w0, MQ_MIN(kw, w0 + 31), q, neg, mr);
}

/* short panels keep a runtime row count here, and every width the general Horner loops: eight
 * constant copies of the nibble loop, or three more per row count, made the function too large
 * for GCC's variable tracking (debug info) */
#define MQ_TILE_SHORT_CONST 0
#define MQ_TILE_SHAPE_PATHS 0
#include "kernels/bitserial_avx512_tile.h"

TGT void mq_bs_gemm_panels_avx512(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C,
                                  int ldc, int p0, int p1) {
    if (!w->tplanes) { /* kw below mq_bs_avx512_hs_min_kw() (mq_bs_gemm_ex decides) */
        gemm_panels(a, w, C, ldc, p0, p1, 0);
        return;
    }
    const int kw = a->kw, ab = a->a_bits;
    for (int pa = p0; pa < p1; pa++) {
        const uint64_t *Ap = a->bits + (size_t)pa * ab * kw * MQ_BS_MR;
        const int m0 = pa * MQ_BS_MR, mr = MQ_MIN(MQ_BS_MR, a->M - m0);
        for (int pw = 0; pw < w->panels; pw++)
            tile32(Ap, (const uint32_t *)(w->tplanes + w->off[pw]), kw, ab, w->bits[pw], mr, a, w,
                   pw, m0, C, ldc);
    }
}
#undef CSA
#undef popw

/* mq_bs_conv_seg_rows_avx512: vpermw, nibble-table row sums (bitserial_seg_rows.h) */
#define SEG_NAME mq_bs_conv_seg_rows_avx512
#define SEG_BYTES 0
#include "kernels/bitserial_seg_rows.h"
#undef SEG_NAME
#undef SEG_BYTES

#else /* not x86-64 GCC/clang: the tier does not exist in this build */

int mq_bs_avx512_compiled(void) { return 0; }
void mq_bs_conv_rows_avx512(const mq_bs_conv_geo *g, const mq_bs_acts *pix, const uint64_t *padp,
                            int32_t padsum, mq_bs_acts *out) {
    (void)g, (void)pix, (void)padp, (void)padsum, (void)out;
}
void mq_bs_conv_seg_rows_avx512(const mq_bs_seg_geo *g, const uint64_t *rows, mq_bs_acts *out) {
    (void)g, (void)rows, (void)out;
}
int mq_bs_pack_rows_avx512(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    (void)a, (void)m0, (void)m1, (void)out;
    return 1;
}
void mq_bs_gemm_panels_avx512(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                              int p0, int p1) {
    (void)a, (void)w, (void)C, (void)ldc, (void)p0, (void)p1;
}

#endif
