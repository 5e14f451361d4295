/* The 8 x 16 tile code shared by the two AVX-512 tiers (bitserial_avx512.c and
 * bitserial_vpopcnt.c): the panel loops, the Horner sum over s = i + j and the store. Included
 * after the includer has defined TGT_INLINE with its own target attribute and its k loop,
 *   TGT_INLINE void tile_kloop(const uint64_t *Aj, const uint64_t *Wi, int kw,
 *                              __m512i q[MQ_BS_MR][2], int neg, int mr, int hs)
 * (add, or for neg subtract, the popcounts of plane pair (Aj, Wi) for pixels 0..mr-1 into q; hs
 * is the includer's own flag), MQ_TILE_SHORT_CONST (1: a short last pixel panel also runs
 * with its own constant row count; 0: with a runtime one) and MQ_TILE_SHAPE_PATHS (1: W1A1,
 * WxA1 and W1Ax tiles get loops of their own; 0: every width runs the general Horner loops), so
 * each tier compiles it for its instruction set.
 *   q[MQ_BS_MR][2]: 64-bit sums of pixel rows m0..m0+7 x the panel's 16 slots
 *   mr: valid rows, MQ_MIN(MQ_BS_MR, a->M - m0) (a constant where the caller can make it one)
 *   C: int32 [M][ldc], slot c of panel pw goes to column w->col[pw * 16 + c] */
#ifndef MIXQ_KERNELS_BITSERIAL_AVX512_TILE_H
#define MIXQ_KERNELS_BITSERIAL_AVX512_TILE_H

/* Store the 8 x 16 tile: C[m0 + r][col[c]] = q (B_p == 1: 2 q - rowsum). */
TGT_INLINE void store_tile(__m512i q[MQ_BS_MR][2], int mr, const mq_bs_acts *a,
                           const mq_bs_weights *w, int pw, int m0, int32_t *C, int ldc) {
    const int nrows = w->rows[pw], one = w->bits[pw] == 1;
    const int32_t *col = w->col + (size_t)pw * MQ_BS_NR;
    const int32_t *const rs = a->rowsum + m0;
    if (w->contig[pw] == 2) {
        /* a full interleaved panel (bitserial.h): lane l of q[r][0] holds column c0 + 2l and of
         * q[r][1] column c0 + 2l + 1, so the low dwords (exact: |C| < 2^31) merged by one shift
         * and one blend are the 16 columns in order: one 64-byte store per row; for a +-1 panel
         * (q >= 0, 2 q - rowsum < 2^31) the correction is done once on the merged dwords */
        int32_t *const Cp = C + (size_t)m0 * (size_t)ldc + col[0]; /* col may alias C: read once */
#define MQ_STORE_ROW2(r)                                                                           \
    if (r < mr) {                                                                                  \
        __m512i v = _mm512_mask_blend_epi32((__mmask16)0xAAAA, q[r][0],                            \
                                            _mm512_slli_epi64(q[r][1], 32));                       \
        if (one) v = _mm512_sub_epi32(_mm512_add_epi32(v, v), _mm512_set1_epi32(rs[r]));           \
        _mm512_storeu_si512((void *)(Cp + (size_t)(r) * (size_t)ldc), v);                          \
    }
        MQ_BS_ROWS(MQ_STORE_ROW2)
#undef MQ_STORE_ROW2
        return;
    }
    /* short or out-of-order panels (not hot): through a copy, so that q itself is only ever
     * indexed by literals */
    __m512i t[MQ_BS_MR][2];
#define MQ_COPY_ROW(r) t[r][0] = q[r][0], t[r][1] = q[r][1];
    MQ_BS_ROWS(MQ_COPY_ROW)
#undef MQ_COPY_ROW
    for (int r = 0; r < mr; r++) {
        int32_t *Crow = C + (size_t)(m0 + r) * (size_t)ldc;
        for (int v = 0; v < 2 && nrows > 8 * v; v++) {
            __m512i val = t[r][v];
            if (one) val = _mm512_sub_epi64(_mm512_slli_epi64(val, 1), _mm512_set1_epi64(rs[r]));
            const __m256i o = _mm512_cvtepi64_epi32(val);
            const int cnt = MQ_MIN(8, nrows - 8 * v);
            if (w->contig[pw] == 1) {
                _mm256_mask_storeu_epi32(Crow + col[0] + 8 * v, (__mmask8)((1u << cnt) - 1), o);
            } else {
                int32_t tmp[8];
                _mm256_storeu_si256((__m256i *)tmp, o);
                for (int c = 0; c < cnt; c++) Crow[col[8 * v + c]] = tmp[c];
            }
        }
    }
}

/* One 8 x 16 tile: the Horner sum over s = i + j of weight panel Wp (B planes) against pixel
 * panel Ap (ab planes), then the store. gemm_panels calls it with a constant mr (8 for full pixel
 * panels; a short panel's own count where MQ_TILE_SHORT_CONST): after inlining every index of q
 * is a constant, so the 16 accumulators stay in registers from the zeroing to the store. With a
 * runtime mr GCC kept q on the stack and reloaded it around every k loop (vpopcnt tier, AMD Zen 5,
 * 64 x 256 x 1152 W1A1: 79.5 -> 82 % of the ceiling; 196 x 32 x 288: 43 -> 47.5 %). */
TGT_INLINE void tile(const uint64_t *Ap, const uint64_t *Wp, int kw, int ab, int B, int mr, int hs,
                     const mq_bs_acts *a, const mq_bs_weights *w, int pw, int m0, int32_t *C,
                     int ldc) {
    const int smax = (B - 1) + (ab - 1);
    __m512i q[MQ_BS_MR][2];
#define MQ_ZERO_ROW(r) q[r][0] = q[r][1] = _mm512_setzero_si512();
#define MQ_SHIFT_ROW(r)                                                                            \
    q[r][0] = _mm512_slli_epi64(q[r][0], 1);                                                       \
    q[r][1] = _mm512_slli_epi64(q[r][1], 1);
    MQ_BS_ROWS(MQ_ZERO_ROW)
#if MQ_TILE_SHAPE_PATHS
    /* The common shapes get loops of their own: with the general Horner loops below, a W1A1 tile
     * took ~30 cycles more than its k loop (vpopcnt tier, Zen 5: 64 x 256 x 1152 9.3 -> 8.5 us,
     * 196 x 32 x 288 1.45 -> 1.13 us) */
    if (smax == 0) {
        tile_kloop(Ap, Wp, kw, q, 0, mr, hs);
        store_tile(q, mr, a, w, pw, m0, C, ldc);
        return;
    }
    if (mr == MQ_BS_MR && ab == 1) { /* weight planes, highest (the sign plane) first */
        for (int i = B - 1; i >= 0; i--) {
            if (i < B - 1) {
                MQ_BS_ROWS(MQ_SHIFT_ROW)
                tile_kloop(Ap, Wp + (size_t)i * kw * MQ_BS_NR, kw, q, 0, mr, hs);
            } else {
                tile_kloop(Ap, Wp + (size_t)i * kw * MQ_BS_NR, kw, q, 1, mr, hs);
            }
        }
        store_tile(q, mr, a, w, pw, m0, C, ldc);
        return;
    }
    if (mr == MQ_BS_MR && B == 1) { /* activation planes */
        for (int j = ab - 1; j >= 0; j--) {
            if (j < ab - 1) {
                MQ_BS_ROWS(MQ_SHIFT_ROW)
            }
            tile_kloop(Ap + (size_t)j * kw * MQ_BS_MR, Wp, kw, q, 0, mr, hs);
        }
        store_tile(q, mr, a, w, pw, m0, C, ldc);
        return;
    }
    /* W2A2 straight: (1,1) - ; (1,0) -, (0,1) + ; (0,0) +. Through the general loops (runtime
     * pair bounds) its GEMM took 14 % longer (vpopcnt tier, Zen 5, pinned, alternating builds:
     * 784 x 16 x 144 5.74 -> 5.03 us) */
    if (mr == MQ_BS_MR && B == 2 && ab == 2) {
        const uint64_t *A1 = Ap + (size_t)kw * MQ_BS_MR, *W1 = Wp + (size_t)kw * MQ_BS_NR;
        tile_kloop(A1, W1, kw, q, 1, mr, hs);
        MQ_BS_ROWS(MQ_SHIFT_ROW)
        tile_kloop(Ap, W1, kw, q, 1, mr, hs);
        tile_kloop(A1, Wp, kw, q, 0, mr, hs);
        MQ_BS_ROWS(MQ_SHIFT_ROW)
        tile_kloop(Ap, Wp, kw, q, 0, mr, hs);
        store_tile(q, mr, a, w, pw, m0, C, ldc);
        return;
    }
#endif
    for (int s = smax; s >= 0; s--) {
        if (s < smax) {
            MQ_BS_ROWS(MQ_SHIFT_ROW)
        }
        for (int i = MQ_MAX(0, s - (ab - 1)); i <= MQ_MIN(B - 1, s); i++) {
            const uint64_t *Aj = Ap + (size_t)(s - i) * kw * MQ_BS_MR;
            const uint64_t *Wi = Wp + (size_t)i * kw * MQ_BS_NR;
            if (B >= 2 && i == B - 1) tile_kloop(Aj, Wi, kw, q, 1, mr, hs);
            else tile_kloop(Aj, Wi, kw, q, 0, mr, hs);
        }
    }
    store_tile(q, mr, a, w, pw, m0, C, ldc);
#undef MQ_ZERO_ROW
#undef MQ_SHIFT_ROW
}

/* Pixel panels p0..p1-1 against every weight panel. */
TGT_INLINE void gemm_panels(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                            int p0, int p1, int hs) {
    const int kw = a->kw, ab = a->a_bits;
    for (int pa = p0; pa < p1; pa++) {
        const uint64_t *Ap = a->bits + (size_t)pa * ab * kw * MQ_BS_MR;
        const int m0 = pa * MQ_BS_MR, mr = MQ_MIN(MQ_BS_MR, a->M - m0);
        for (int pw = 0; pw < w->panels; pw++) {
            const uint64_t *Wp = w->planes + w->off[pw];
            const int B = w->bits[pw];
#if MQ_TILE_SHORT_CONST
            switch (mr) { /* a constant mr in each case: see tile() */
#define MQ_TILE_CASE(k)                                                                            \
    case k: tile(Ap, Wp, kw, ab, B, k, hs, a, w, pw, m0, C, ldc); break;
                MQ_TILE_CASE(1) MQ_TILE_CASE(2) MQ_TILE_CASE(3) MQ_TILE_CASE(4)
                MQ_TILE_CASE(5) MQ_TILE_CASE(6) MQ_TILE_CASE(7)
                default: tile(Ap, Wp, kw, ab, B, MQ_BS_MR, hs, a, w, pw, m0, C, ldc);
#undef MQ_TILE_CASE
            }
#else
            if (mr == MQ_BS_MR) tile(Ap, Wp, kw, ab, B, MQ_BS_MR, hs, a, w, pw, m0, C, ldc);
            else tile(Ap, Wp, kw, ab, B, mr, hs, a, w, pw, m0, C, ldc);
#endif
        }
    }
}

#endif
