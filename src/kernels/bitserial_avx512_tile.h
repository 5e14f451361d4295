/* The 8 x 16 tile store shared by the two AVX-512 tiers (bitserial_avx512.c and
 * bitserial_vpopcnt.c). Included after the includer has defined TGT_INLINE with its own target
 * attribute, so each tier compiles it for its instruction set.
 *   q[MQ_BS_MR][2]: 64-bit sums of pixel rows m0..m0+7 x the panel's 16 slots
 *   C: int32 [M][ldc], slot c of panel pw goes to column w->col[pw * 16 + c] */
#ifndef MIXQ_KERNELS_BITSERIAL_AVX512_TILE_H
#define MIXQ_KERNELS_BITSERIAL_AVX512_TILE_H

/* Store the 8 x 16 tile: C[m0 + r][col[c]] = q (B_p == 1: 2 q - rowsum). */
TGT_INLINE void store_tile(__m512i q[MQ_BS_MR][2], const mq_bs_acts *a, const mq_bs_weights *w,
                           int pw, int m0, int32_t *C, int ldc) {
    const int mr = MQ_MIN(MQ_BS_MR, a->M - m0), nrows = w->rows[pw], one = w->bits[pw] == 1;
    const int32_t *col = w->col + (size_t)pw * MQ_BS_NR;
    if (w->contig[pw] && nrows == MQ_BS_NR) {
        /* a full panel of consecutive columns: the low dwords of both vectors merged by one
         * permute (exact: |C| < 2^31) and stored as one 64-byte row */
        const __m512i lo = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        for (int r = 0; r < mr; r++) {
            __m512i v0 = q[r][0], v1 = q[r][1];
            if (one) {
                const __m512i corr = _mm512_set1_epi64(a->rowsum[m0 + r]);
                v0 = _mm512_sub_epi64(_mm512_slli_epi64(v0, 1), corr);
                v1 = _mm512_sub_epi64(_mm512_slli_epi64(v1, 1), corr);
            }
            _mm512_storeu_si512((void *)(C + (size_t)(m0 + r) * (size_t)ldc + col[0]),
                                _mm512_permutex2var_epi32(v0, lo, v1));
        }
        return;
    }
    for (int r = 0; r < mr; r++) {
        int32_t *Crow = C + (size_t)(m0 + r) * (size_t)ldc;
        const __m512i corr = _mm512_set1_epi64(a->rowsum[m0 + r]);
        for (int v = 0; v < 2; v++) {
            __m512i val = q[r][v];
            if (one) val = _mm512_sub_epi64(_mm512_slli_epi64(val, 1), corr);
            const __m256i o = _mm512_cvtepi64_epi32(val);
            const int cnt = MQ_MIN(8, nrows - 8 * v);
            if (cnt <= 0) break;
            if (w->contig[pw]) {
                _mm256_mask_storeu_epi32(Crow + col[0] + 8 * v, (__mmask8)((1u << cnt) - 1), o);
            } else {
                int32_t tmp[8];
                _mm256_storeu_si256((__m256i *)tmp, o);
                for (int c = 0; c < cnt; c++) Crow[col[8 * v + c]] = tmp[c];
            }
        }
    }
}

#endif
