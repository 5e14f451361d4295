/* The body of mq_bs_conv_seg_rows_avx512 / mq_bs_conv_seg_rows_gfni (bitserial.h), one text
 * for both, included by bitserial_avx512.c (SEG_BYTES 0: vpermw, nibble-table row sums; the
 * avx512 tier, and the vpopcnt tier on CPUs without VBMI) and bitserial_gfni.c (SEG_BYTES 1:
 * vpermb, vpopcntq row sums). The includer defines SEG_NAME, TGT and SEG_BYTES.
 *
 * Output row by output row, in chunks: the row's pixels that share an 8-row panel of out (the
 * first and last chunk of a row may hold fewer than 8 lanes, from lane l0 on). Lane l of a chunk
 * starting at pixel q0 reads its segment word at byte (l - l0) * d of the chunk's first segment
 * (d = stride * C / 8 <= 8): one 64-byte load and one permute per kernel row and plane gather the
 * chunk's words, the permute's zeroing mask dropping the pieces past the segment, and a store
 * masked to the chunk's lanes (the rest of a shared panel line belongs to the next or previous
 * output row). */
/* One chunk: lanes l0 .. l0+take-1 of the panel at dst / rsum, from src (lane l at byte l * d);
 * R a constant after inlining (the kernel-row loop unrolled). */
#define SEG_CAT2(a, b) a##b
#define SEG_CAT(a, b) SEG_CAT2(a, b)
#define SEG_CHUNK SEG_CAT(SEG_NAME, _chunk)
#if SEG_BYTES
#define SEG_KMASK __mmask64
#else
#define SEG_KMASK __mmask32
#endif
TGT_INLINE void SEG_CHUNK(const uint8_t *src, size_t rstep, size_t jstep, int ab, const int R,
                          SEG_KMASK km, __m512i idx, __mmask8 lanes, int full, uint64_t *dst,
                          int kw, int32_t *rsum) {
#if !SEG_BYTES
    const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i nib = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
#endif
    __m512i sum = _mm512_setzero_si512();
    for (int j = ab - 1; j >= 0; j--) { /* Horner over the planes */
        __m512i cj = _mm512_setzero_si512();
        for (int r = 0; r < R; r++) {
            const __m512i x = _mm512_loadu_si512((const void *)(src + (size_t)r * rstep + (size_t)j * jstep));
#if SEG_BYTES
            const __m512i line = _mm512_maskz_permutexvar_epi8(km, idx, x);
            cj = _mm512_add_epi64(cj, _mm512_popcnt_epi64(line));
#else
            const __m512i line = _mm512_maskz_permutexvar_epi16(km, idx, x);
            cj = _mm512_add_epi64(cj, _mm512_sad_epu8(
                _mm512_add_epi8(_mm512_shuffle_epi8(lut, _mm512_and_si512(line, nib)),
                                _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(line, 4), nib))),
                zero));
#endif
            uint64_t *dl = dst + ((size_t)j * kw + (size_t)r) * MQ_BS_MR;
            if (full) _mm512_store_si512((void *)dl, line);
            else _mm512_mask_store_epi64((void *)dl, lanes, line);
        }
        sum = _mm512_add_epi64(_mm512_add_epi64(sum, sum), cj);
    }
    const __m256i v = _mm512_cvtepi64_epi32(sum);
    if (full) _mm256_store_si256((__m256i *)rsum, v);
    else /* a blend, not a masked store: GCC makes that a masked vpmovqd to memory, slow on Zen */
        _mm256_store_si256((__m256i *)rsum, _mm256_mask_blend_epi32(lanes, _mm256_load_si256((const __m256i *)rsum), v));
}

TGT void SEG_NAME(const mq_bs_seg_geo *g, const uint64_t *rows, mq_bs_acts *out) {
    const int ab = out->a_bits, kw = out->kw, R = g->R, Q = g->Q, stride = g->stride;
    const size_t RW = (size_t)g->RW, HP = (size_t)g->HP;
    const int d = stride * g->C / 8; /* bytes from one output pixel's segment to the next's */
    const size_t os = (size_t)ab * kw * MQ_BS_MR, rstep = (size_t)ab * RW * sizeof(uint64_t);
    const size_t jstep = RW * sizeof(uint64_t);
#if SEG_BYTES /* byte elements: 8 per lane */
    typedef SEG_KMASK kmask;
    enum { EL = 8, EB = 1 };
    int8_t ix[64];
    const kmask kval = (g->seg >= 64 ? 0xffu : (1u << g->seg / 8) - 1) * 0x0101010101010101ull;
#else /* 16-bit elements: 4 per lane */
    typedef SEG_KMASK kmask;
    enum { EL = 4, EB = 2 };
    int16_t ix[32];
    const kmask kval = (g->seg >= 64 ? 0xfu : (1u << g->seg / 16) - 1) * 0x11111111u;
#endif
    for (int e = 0; e < 8 * EL; e++) ix[e] = (int8_t)(e / EL * (d / EB) + e % EL);
    const __m512i idx = _mm512_loadu_si512((const void *)ix);
    kmask kmt[MQ_BS_MR][MQ_BS_MR + 1]; /* [l0][take]: the permute's mask of lanes l0 .. l0+take-1 */
    for (int l0 = 0; l0 < MQ_BS_MR; l0++)
        for (int t = 0; t <= MQ_BS_MR - l0; t++)
            kmt[l0][t] = kval & (kmask)((l0 + t == 8 ? ~(uint64_t)0 : ((uint64_t)1 << (EL * (l0 + t))) - 1) &
                                        ~(((uint64_t)1 << (EL * l0)) - 1));
    int64_t m = 0;
    for (int i = 0; i < g->n; i++)
        for (int p = 0; p < g->P; p++) {
            /* kernel row 0, plane 0 of this output row's input rows */
            const uint8_t *src = (const uint8_t *)(rows + ((size_t)i * HP + (size_t)p * stride) * ab * RW);
            int l0 = (int)(m % MQ_BS_MR);
            uint64_t *dst = out->bits + (size_t)(m / MQ_BS_MR) * os;
            int32_t *rsum = out->rowsum + (m - l0);
            /* lane l at byte l * d: the load starts l0 segments early (inside the buffer: l0 > 0
             * only past the first output pixel, and the plane rows of every earlier input row
             * lie before) */
            src -= (size_t)l0 * d;
            for (int q0 = 0; q0 < Q;) {
                const int take = MQ_MIN(MQ_BS_MR - l0, Q - q0);
                const kmask km = kmt[l0][take];
                const __mmask8 lanes = (__mmask8)(((1u << take) - 1) << l0);
                const int full = take == MQ_BS_MR;
                switch (R) { /* a constant R in each copy */
                case 1: SEG_CHUNK(src, rstep, jstep, ab, 1, km, idx, lanes, full, dst, kw, rsum); break;
                case 3: SEG_CHUNK(src, rstep, jstep, ab, 3, km, idx, lanes, full, dst, kw, rsum); break;
                default: SEG_CHUNK(src, rstep, jstep, ab, R, km, idx, lanes, full, dst, kw, rsum);
                }
                q0 += take;
                src += (size_t)(l0 + take) * d;
                m += take;
                if (l0 + take == MQ_BS_MR) dst += os, rsum += MQ_BS_MR;
                l0 = (l0 + take) % MQ_BS_MR;
            }
        }
}
#undef SEG_CHUNK
#undef SEG_KMASK
#undef SEG_CAT
#undef SEG_CAT2
