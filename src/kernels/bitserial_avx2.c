/* Bit-serial GEMM, AVX2 tier: activation packer, nibble-table micro-kernel (Haswell-class CPUs
 * without AVX-512) and, opt-in (MIXQ_BS_HS_MIN_KW; see mq_bs_avx2_hs_min_kw), a Harley-Seal
 * carry-save K loop.
 *
 * Buffers (layouts in bitserial.h):
 *   A      uint8_t  [M][K]                          activations, a_bits in 1..8
 *   acts   uint64_t [ceil(M/8)][a_bits][kw][8]      kw = ceil(K/64); rowsum int32_t [ceil(M/8)*8]
 *   wts    uint64_t panel p: [B_p][kw][16]          B_p in 1..8 (1 = +-1 panel)
 *   C      int32_t  [M][ldc]
 * Each 8 x 16 panel tile is computed as four 4-pixel x 8-channel sub-tiles:
 *   8 ymm byte counters  u8 [4 pixels][2 vectors][32 bytes]  (<= 8 per word, flushed with
 *                                                             vpsadbw every 31 words)
 *   8 ymm int64 accumulators [4 pixels][8 channels]          (Horner over s = i + j)
 * Per K word the sub-tile's weight vectors are split into the table indices' halves once (vpand,
 * vpsrlw/vpand: 6 µops for 8 channels, shared by the 4 pixels); per pixel one vpsrlw of the
 * broadcast word, then per 4-channel vector 2 vpand, 2 vpshufb, 2 vpaddb: 7.25 µops per 256 bit
 * pairs against 8 with the AND before the split (the ceiling loop's 6 has both operands split).
 * AMD Zen 5, bench_layers vgg11 + kernels shapes, batch 1, alternating builds: K >= 1152 at
 * 65-72 % of the tier's ceiling, was 61-67 %. Weights split at packing (a copy twice the planes'
 * size, both halves loaded per word) gained 0-3 points more and were not kept.
 *
 * The whole file is compiled for AVX2 with AVX-512 switched off (GCC: a target pragma placed
 * before <immintrin.h>, so the intrinsics inline; clang: target attributes). Under a global
 * -march=native on an AVX-512 machine the code therefore stays VEX-encoded, ymm0-15 only, and
 * measures what a real AVX2 CPU would run. Called only after mq_bs_tier_available(AVX2). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,no-avx512f")
#endif

#include "kernels/bitserial.h"

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <string.h>

#define TGT __attribute__((target("avx2")))
#define TGT_INLINE static inline __attribute__((always_inline, target("avx2")))

int mq_bs_avx2_compiled(void) { return 1; }

TGT int mq_bs_pack_rows_avx2(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    const int K = out->K, kw = out->kw, ab = out->a_bits;
    const __m256i himask = _mm256_set1_epi8((char)(0xffu << ab & 0xffu));
    const __m256i zero = _mm256_setzero_si256();
    int bad = 0;
    for (int m = m0; m < m1; m++) {
        const uint8_t *row = a + (size_t)m * (size_t)K;
        uint64_t *base =
            out->bits + (size_t)(m / MQ_BS_MR) * (size_t)ab * (size_t)kw * MQ_BS_MR + m % MQ_BS_MR;
        __m256i sum = zero;
        for (int w = 0; w < kw; w++) {
            const int n = K - 64 * w;
            __m256i x0, x1;
            if (n >= 64) {
                x0 = _mm256_loadu_si256((const __m256i *)(row + 64 * w));
                x1 = _mm256_loadu_si256((const __m256i *)(row + 64 * w + 32));
            } else {
                uint8_t tail[64] = {0};
                memcpy(tail, row + 64 * w, (size_t)n);
                x0 = _mm256_loadu_si256((const __m256i *)tail);
                x1 = _mm256_loadu_si256((const __m256i *)(tail + 32));
            }
            sum = _mm256_add_epi64(sum, _mm256_add_epi64(_mm256_sad_epu8(x0, zero),
                                                         _mm256_sad_epu8(x1, zero)));
            bad |= !_mm256_testz_si256(_mm256_or_si256(x0, x1), himask);
            for (int j = 0; j < ab; j++) {
                /* bit j of every byte to bit 7 (16-bit shifts: the bits that cross into the
                 * upper byte land below its bit 7), then one movemask per 32 bytes */
                const __m128i sh = _mm_cvtsi32_si128(7 - j);
                const uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_sll_epi16(x0, sh));
                const uint32_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_sll_epi16(x1, sh));
                base[((size_t)j * kw + (size_t)w) * MQ_BS_MR] = (uint64_t)lo | (uint64_t)hi << 32;
            }
        }
        const __m128i s2 =
            _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        out->rowsum[m] = (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1));
    }
    return bad;
}

/* One plane pair over words [w0, w1) (<= 31) for pixels rh*4.. and channels ch*8.. */
TGT_INLINE void kloop(const uint64_t *Aj, const uint64_t *Wi, int w0, int w1, int rh, int ch,
                      __m256i q[4][2], int neg) {
    const __m256i lut =
        _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                         1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i b[4][2];
    for (int r = 0; r < 4; r++) b[r][0] = b[r][1] = _mm256_setzero_si256();
    for (int w = w0; w < w1; w++) {
        const uint64_t *Wk = Wi + (size_t)w * MQ_BS_NR + 8 * ch;
        const __m256i wa = _mm256_load_si256((const __m256i *)Wk);
        const __m256i wb = _mm256_load_si256((const __m256i *)(Wk + 4));
        /* the weights' nibbles, split once for the 4 pixels */
        const __m256i wal = _mm256_and_si256(wa, m4);
        const __m256i wah = _mm256_and_si256(_mm256_srli_epi16(wa, 4), m4);
        const __m256i wbl = _mm256_and_si256(wb, m4);
        const __m256i wbh = _mm256_and_si256(_mm256_srli_epi16(wb, 4), m4);
        for (int r = 0; r < 4; r++) {
            const __m256i x = _mm256_set1_epi64x((long long)Aj[(size_t)w * MQ_BS_MR + 4 * rh + r]);
            const __m256i xh = _mm256_srli_epi16(x, 4); /* neighbour bits land where wah is 0 */
            const __m256i la = _mm256_shuffle_epi8(lut, _mm256_and_si256(wal, x));
            const __m256i ha = _mm256_shuffle_epi8(lut, _mm256_and_si256(wah, xh));
            const __m256i lb = _mm256_shuffle_epi8(lut, _mm256_and_si256(wbl, x));
            const __m256i hb = _mm256_shuffle_epi8(lut, _mm256_and_si256(wbh, xh));
            b[r][0] = _mm256_add_epi8(b[r][0], _mm256_add_epi8(la, ha));
            b[r][1] = _mm256_add_epi8(b[r][1], _mm256_add_epi8(lb, hb));
        }
    }
    const __m256i zero = _mm256_setzero_si256();
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < 2; v++) {
            const __m256i t = _mm256_sad_epu8(b[r][v], zero);
            q[r][v] = neg ? _mm256_sub_epi64(q[r][v], t) : _mm256_add_epi64(q[r][v], t);
        }
}

/* Harley-Seal carry-save counting for long K (the AVX-512BW tier's method on 256-bit vectors;
 * AVX2 has no vpternlogq, so a full adder is 5 µops: l' = l ^ a ^ b, h = (l & a) | ((l ^ a) & b)).
 * One pixel (row r of the panel) against 4 channels (vector vec of the panel) over words
 * [w0, w1) (w1 - w0 <= MQ_BS_HS2_CHUNK), added to (or, for the sign plane, subtracted from) q:
 * the bit vectors ones, twos, fours (o, t, f) hold the running sum in carry-save form;
 * every 8 words give one "eights" vector whose byte popcounts (nibble table) go into the byte
 * counters c (<= 31 additions of <= 8 per chunk), a 4-word remainder goes into fours, the last
 * 0..3 words straight into s. At the end s + pop(o) + 2 pop(t) + 4 pop(f) <= 24 + 8 + 16 + 32 fits
 * a byte. Per 8 words and vector: 8 vpand + 7 x 5 (adders) + 6 (one byte popcount) = 49 µops,
 * against 8 x 8 = 64 for the nibble table alone. One accumulator (pixel, 4-channel vector) at a
 * time: two would not fit AVX2's 16 registers. */
#define MQ_BS_HS2_CHUNK 248
#define CSA2(h, l, a, b)                                                                        \
    do {                                                                                        \
        const __m256i u_ = _mm256_xor_si256((l), (a));                                          \
        (h) = _mm256_or_si256(_mm256_and_si256((l), (a)), _mm256_and_si256(u_, (b)));           \
        (l) = _mm256_xor_si256(u_, (b));                                                        \
    } while (0)

TGT_INLINE __m256i popb2(__m256i v, __m256i lut, __m256i m4) {
    const __m256i lo = _mm256_and_si256(v, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* word w + k of the pixel ANDed with the weight vector (4 channels) */
#define HS2_AW(k)                                                                               \
    _mm256_and_si256(_mm256_set1_epi64x((long long)Aw[(size_t)(k) * MQ_BS_MR]),                \
                     _mm256_load_si256((const __m256i *)(Wk + (size_t)(k) * MQ_BS_NR)))
#define HS2_PAIR(h, l, k)                                                                       \
    do {                                                                                        \
        const __m256i a0 = HS2_AW(k), a1 = HS2_AW((k) + 1);                                     \
        CSA2(h, l, a0, a1);                                                                     \
    } while (0)

/* One vector: the pixel's words against 4 channels (Wi + 4 * vec, stride MQ_BS_NR). Registers:
 * 5 of state, the table, the mask and a few temporaries: within AVX2's 16. */
TGT_INLINE void kloop_hs(const uint64_t *Aj, const uint64_t *Wi, int w0, int w1, int r, int vec,
                         __m256i *q, int neg) {
    const __m256i lut =
        _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                         1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    __m256i o = zero, t = zero, f = zero, c = zero, s = zero;
    const uint64_t *Ar = Aj + r, *Wv = Wi + 4 * vec;
    int w = w0;
    for (; w + 8 <= w1; w += 8) {
        const uint64_t *Wk = Wv + (size_t)w * MQ_BS_NR, *Aw = Ar + (size_t)w * MQ_BS_MR;
        __m256i ta, tb, fa, fb, e;
        HS2_PAIR(ta, o, 0);
        HS2_PAIR(tb, o, 2);
        CSA2(fa, t, ta, tb);
        HS2_PAIR(ta, o, 4);
        HS2_PAIR(tb, o, 6);
        CSA2(fb, t, ta, tb);
        CSA2(e, f, fa, fb);
        c = _mm256_add_epi8(c, popb2(e, lut, m4));
    }
    if (w + 4 <= w1) {
        const uint64_t *Wk = Wv + (size_t)w * MQ_BS_NR, *Aw = Ar + (size_t)w * MQ_BS_MR;
        __m256i ta, tb, fa;
        HS2_PAIR(ta, o, 0);
        HS2_PAIR(tb, o, 2);
        CSA2(fa, t, ta, tb);
        c = _mm256_add_epi8(c, popb2(_mm256_and_si256(f, fa), lut, m4));
        f = _mm256_xor_si256(f, fa);
        w += 4;
    }
    for (; w < w1; w++) {
        const uint64_t *Wk = Wv + (size_t)w * MQ_BS_NR, *Aw = Ar + (size_t)w * MQ_BS_MR;
        s = _mm256_add_epi8(s, popb2(HS2_AW(0), lut, m4));
    }
    const __m256i p2 = popb2(t, lut, m4), p4 = popb2(f, lut, m4);
    __m256i low = _mm256_add_epi8(s, popb2(o, lut, m4));
    low = _mm256_add_epi8(low, _mm256_add_epi8(p2, p2));
    const __m256i p44 = _mm256_add_epi8(p4, p4);
    low = _mm256_add_epi8(low, _mm256_add_epi8(p44, p44));
    const __m256i sum = _mm256_add_epi64(_mm256_sad_epu8(low, zero),
                                         _mm256_slli_epi64(_mm256_sad_epu8(c, zero), 3));
    *q = neg ? _mm256_sub_epi64(*q, sum) : _mm256_add_epi64(*q, sum);
}
#undef HS2_AW
#undef HS2_PAIR
#undef CSA2

TGT_INLINE void store_sub(__m256i q[4][2], const mq_bs_acts *a, const mq_bs_weights *w, int pw,
                          int m0, int ch, int32_t *C, int ldc) {
    const int mr = MQ_MIN(4, a->M - m0), cnt = MQ_MIN(8, w->rows[pw] - 8 * ch);
    const int one = w->bits[pw] == 1;
    if (mr <= 0 || cnt <= 0) return;
    const int32_t *col = w->col + (size_t)pw * MQ_BS_NR + 8 * ch;
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), lanes);
    for (int r = 0; r < mr; r++) {
        __m256i v0 = q[r][0], v1 = q[r][1];
        if (one) {
            const __m256i corr = _mm256_set1_epi64x(a->rowsum[m0 + r]);
            v0 = _mm256_sub_epi64(_mm256_slli_epi64(v0, 1), corr);
            v1 = _mm256_sub_epi64(_mm256_slli_epi64(v1, 1), corr);
        }
        if (w->contig[pw] == 2) {
            /* an interleaved full panel (bitserial.h): lane l of half ch holds column
             * c0 + 2 (4v + l) + ch, i.e. the low dword of each 64-bit lane already sits at its
             * column's position among c0 .. c0 + 15 for ch = 0, and one dword higher for ch = 1.
             * Half 0 stores its vectors whole (its high dwords land on the odd columns, which
             * half 1, run next for the same rows, overwrites); half 1 blends them in. */
            int32_t *d = C + (size_t)(m0 + r) * (size_t)ldc + (col[0] - ch);
            if (ch == 0) {
                _mm256_storeu_si256((__m256i *)d, v0);
                _mm256_storeu_si256((__m256i *)(d + 8), v1);
            } else {
                const __m256i *d0 = (const __m256i *)d, *d1 = (const __m256i *)(d + 8);
                _mm256_storeu_si256((__m256i *)d, _mm256_blend_epi32(_mm256_loadu_si256(d0),
                                                                     _mm256_slli_epi64(v0, 32), 0xAA));
                _mm256_storeu_si256((__m256i *)(d + 8),
                                    _mm256_blend_epi32(_mm256_loadu_si256(d1),
                                                       _mm256_slli_epi64(v1, 32), 0xAA));
            }
            continue;
        }
        /* int64 -> int32 (exact: |C| < 2^31): the low dwords of both vectors */
        const __m128i lo = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v0, idx));
        const __m128i hi = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v1, idx));
        const __m256i o = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
        int32_t *Crow = C + (size_t)(m0 + r) * (size_t)ldc;
        if (w->contig[pw] == 1) {
            if (cnt == 8) _mm256_storeu_si256((__m256i *)(Crow + col[0]), o);
            else _mm256_maskstore_epi32(Crow + col[0], mask, o);
        } else {
            int32_t tmp[8];
            _mm256_storeu_si256((__m256i *)tmp, o);
            for (int c = 0; c < cnt; c++) Crow[col[c]] = tmp[c];
        }
    }
}

/* hs: from mq_bs_avx2_hs_min_kw() words (mq_bs_gemm_ex picks the copy below) the carry-save tree
 * runs instead of the nibble tables: by default never. Measured on AMD EPYC (Zen 5) under this
 * tier (bench_layers, vgg11 shapes, batch 1), the tree ran at 0.82-0.93x of the nibble table at K
 * = 1152..4608 (a 16-word variant at 0.75-0.91x): with four 256-bit pipes that all run vpshufb,
 * the table's 8 µops per word and vector are not the bound, and the tree adds a weight load per
 * pixel. On CPUs where vpshufb has one port (Intel Haswell to Comet Lake) it should win; no such
 * machine was at hand, so it is opt-in: MIXQ_BS_HS_MIN_KW=16 turns it on from 16 words. (The table
 * was measured before it split each weight word once per sub-tile; it is faster now.) */
TGT_INLINE void gemm_panels(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                            int p0, int p1, const int hs) {
    const int kw = a->kw, ab = a->a_bits;
    for (int pa = p0; pa < p1; pa++) {
        const uint64_t *Ap = a->bits + (size_t)pa * ab * kw * MQ_BS_MR;
        const int rhn = a->M - pa * MQ_BS_MR > 4 ? 2 : 1; /* skip an all-padding half */
        const int mr = MQ_MIN(MQ_BS_MR, a->M - pa * MQ_BS_MR);
        for (int pw = 0; pw < w->panels; pw++) {
            const int B = w->bits[pw], smax = (B - 1) + (ab - 1);
            const uint64_t *Wp = w->planes + w->off[pw];
            const int chn = w->rows[pw] > 8 ? 2 : 1;
            for (int rh = 0; rh < rhn; rh++)
                for (int ch = 0; ch < chn; ch++) {
                    __m256i q[4][2];
                    for (int r = 0; r < 4; r++) q[r][0] = q[r][1] = _mm256_setzero_si256();
                    for (int s = smax; s >= 0; s--) {
                        if (s < smax)
                            for (int r = 0; r < 4; r++) {
                                q[r][0] = _mm256_slli_epi64(q[r][0], 1);
                                q[r][1] = _mm256_slli_epi64(q[r][1], 1);
                            }
                        for (int i = MQ_MAX(0, s - (ab - 1)); i <= MQ_MIN(B - 1, s); i++) {
                            const uint64_t *Aj = Ap + (size_t)(s - i) * kw * MQ_BS_MR;
                            const uint64_t *Wi = Wp + (size_t)i * kw * MQ_BS_NR;
                            const int neg = B >= 2 && i == B - 1;
                            if (hs) {
                                for (int r = 0; r < 4 && 4 * rh + r < mr; r++)
                                    for (int w0 = 0; w0 < kw; w0 += MQ_BS_HS2_CHUNK) {
                                        const int w1 = MQ_MIN(kw, w0 + MQ_BS_HS2_CHUNK);
                                        for (int v = 0; v < 2; v++) {
                                            if (neg) kloop_hs(Aj, Wi, w0, w1, 4 * rh + r, 2 * ch + v, &q[r][v], 1);
                                            else kloop_hs(Aj, Wi, w0, w1, 4 * rh + r, 2 * ch + v, &q[r][v], 0);
                                        }
                                    }
                                continue;
                            }
                            for (int w0 = 0; w0 < kw; w0 += 31) {
                                const int w1 = MQ_MIN(kw, w0 + 31);
                                if (neg) kloop(Aj, Wi, w0, w1, rh, ch, q, 1);
                                else kloop(Aj, Wi, w0, w1, rh, ch, q, 0);
                            }
                        }
                    }
                    store_sub(q, a, w, pw, pa * MQ_BS_MR + 4 * rh, ch, C, ldc);
                }
        }
    }
}

/* The two copies, hs decided once per GEMM by the caller (mq_bs_gemm_ex). */
TGT void mq_bs_gemm_panels_avx2(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                                int p0, int p1) {
    gemm_panels(a, w, C, ldc, p0, p1, 0);
}
TGT void mq_bs_gemm_panels_avx2_hs(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C,
                                   int ldc, int p0, int p1) {
    gemm_panels(a, w, C, ldc, p0, p1, 1);
}

#else /* not x86-64 GCC/clang */

int mq_bs_avx2_compiled(void) { return 0; }
int mq_bs_pack_rows_avx2(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    (void)a, (void)m0, (void)m1, (void)out;
    return 1;
}
void mq_bs_gemm_panels_avx2(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                            int p0, int p1) {
    (void)a, (void)w, (void)C, (void)ldc, (void)p0, (void)p1;
}
void mq_bs_gemm_panels_avx2_hs(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                               int p0, int p1) {
    (void)a, (void)w, (void)C, (void)ldc, (void)p0, (void)p1;
}

#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
