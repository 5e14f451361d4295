/* Activation packer for CPUs with GFNI and AVX512-VBMI (Ice Lake and later, AMD Zen 4 / 5): the
 * vpopcnt tier's packer where the CPU has both (bitserial.c chooses; the AVX-512BW packer in
 * bitserial_avx512.c serves the rest and stays the avx512 tier's).
 *
 * Layout as bitserial.h says: row m, K word w, plane j -> bits[(m/8)][j][w][m%8], bit t of the
 * word = bit j of code 64 w + t. Per 64 codes (one zmm x):
 *   vpshufb   reverse the 8 bytes of each qword;
 *   gf2p8affineqb with the data as the matrix and byte i of every qword of the other operand =
 *             1 << i: byte i of qword q becomes bit i of codes 8q .. 8q+7 (an 8 x 8 bit
 *             transpose per qword; the instruction reads the matrix's bytes in reverse, which the
 *             vpshufb undoes);
 *   vpermb    byte transpose: qword i = plane i's 64-bit word;
 *   then one 8-byte store per plane (movq / movhps from the 128-bit lanes).
 * Three vector shuffles per 64 codes for any width, where the AVX-512BW packer spends a vptestmb,
 * a mask-to-GPR move and a store per plane: on Zen 5 the mask moves bound it (about 9 cycles per
 * word at 4 bits). The row sum is a vpsadbw per word; the range check ORs the codes into one
 * vector and tests it once per call. Measured (AMD Zen 5, one pinned CPU, 784 x 144 codes,
 * the im2col matrix of resnet20's 16->16 layers): 1 bit 2.7 -> 2.3 us, 2 bits 3.7 -> 2.5 us,
 * 3 bits 5.4 -> 2.8 us, 4 bits 6.3 -> 3.1 us. */
#include "kernels/bitserial.h"

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define GF_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,gfni"
#define TGT __attribute__((target(GF_TARGET)))
#define TGT_INLINE static inline __attribute__((always_inline, target(GF_TARGET)))

int mq_bs_gfni_compiled(void) { return 1; }

TGT_INLINE void st_lo(uint64_t *p, __m128i v) { _mm_storel_epi64((__m128i *)(void *)p, v); }
TGT_INLINE void st_hi(uint64_t *p, __m128i v) {
    _mm_storeh_pd((double *)(void *)p, _mm_castsi128_pd(v));
}

/* The 8 row sums of a panel from their vpsadbw vectors (8 qword partials each): lane r of the
 * result is row r's total (3 add stages, 21 vector ops for 8 rows; a reduction per row took 7). */
TGT_INLINE __m512i sum8(const __m512i s[MQ_BS_MR]) {
    const __m512i t01 = _mm512_add_epi64(_mm512_unpacklo_epi64(s[0], s[1]),
                                         _mm512_unpackhi_epi64(s[0], s[1]));
    const __m512i t23 = _mm512_add_epi64(_mm512_unpacklo_epi64(s[2], s[3]),
                                         _mm512_unpackhi_epi64(s[2], s[3]));
    const __m512i t45 = _mm512_add_epi64(_mm512_unpacklo_epi64(s[4], s[5]),
                                         _mm512_unpackhi_epi64(s[4], s[5]));
    const __m512i t67 = _mm512_add_epi64(_mm512_unpacklo_epi64(s[6], s[7]),
                                         _mm512_unpackhi_epi64(s[6], s[7]));
    /* 128-bit lane l of t01: (row 0, row 1) partial l; pair lanes (0, 2) with (1, 3) */
    const __m512i u = _mm512_add_epi64(_mm512_shuffle_i64x2(t01, t23, 0x88),
                                       _mm512_shuffle_i64x2(t01, t23, 0xdd));
    const __m512i v = _mm512_add_epi64(_mm512_shuffle_i64x2(t45, t67, 0x88),
                                       _mm512_shuffle_i64x2(t45, t67, 0xdd));
    return _mm512_add_epi64(_mm512_shuffle_i64x2(u, v, 0x88), _mm512_shuffle_i64x2(u, v, 0xdd));
}

/* Planes of the 64 codes x to d (plane j at d + j * ps); adds their sum to *sum and ORs them
 * into *any. ab is a constant after inlining. */
TGT_INLINE void pack_word(__m512i x, uint64_t *d, size_t ps, const int ab, __m512i *sum,
                          __m512i *any) {
    const __m512i rev = _mm512_set_epi64(0x08090a0b0c0d0e0fll, 0x0001020304050607ll,
                                         0x08090a0b0c0d0e0fll, 0x0001020304050607ll,
                                         0x08090a0b0c0d0e0fll, 0x0001020304050607ll,
                                         0x08090a0b0c0d0e0fll, 0x0001020304050607ll);
    const __m512i sel = _mm512_set1_epi64((long long)0x8040201008040201ull);
    /* destination byte 8 i + q <- source byte 8 q + i */
    const __m512i tr = _mm512_set_epi64(0x3f372f271f170f07ll, 0x3e362e261e160e06ll,
                                        0x3d352d251d150d05ll, 0x3c342c241c140c04ll,
                                        0x3b332b231b130b03ll, 0x3a322a221a120a02ll,
                                        0x3931292119110901ll, 0x3830282018100800ll);
    *any = _mm512_or_si512(*any, x);
    *sum = _mm512_add_epi64(*sum, _mm512_sad_epu8(x, _mm512_setzero_si512()));
    const __m512i t = _mm512_gf2p8affine_epi64_epi8(sel, _mm512_shuffle_epi8(x, rev), 0);
    const __m512i y = _mm512_permutexvar_epi8(tr, t);
    const __m128i l0 = _mm512_castsi512_si128(y);
    st_lo(d, l0);
    if (ab > 1) st_hi(d + ps, l0);
    if (ab > 2) {
        const __m128i l1 = _mm512_extracti32x4_epi32(y, 1);
        st_lo(d + 2 * ps, l1);
        if (ab > 3) st_hi(d + 3 * ps, l1);
    }
    if (ab > 4) {
        const __m128i l2 = _mm512_extracti32x4_epi32(y, 2);
        st_lo(d + 4 * ps, l2);
        if (ab > 5) st_hi(d + 5 * ps, l2);
    }
    if (ab > 6) {
        const __m128i l3 = _mm512_extracti32x4_epi32(y, 3);
        st_lo(d + 6 * ps, l3);
        if (ab > 7) st_hi(d + 7 * ps, l3);
    }
}

/* Rows r0..r1-1 of pixel panel p (0 <= r0 < r1 <= 8), ab a constant after inlining; row by row
 * (the 8 rows unrolled word by word was as fast at 1-2 bits and 15-40 % slower at 3-4 on Zen 5). */
TGT_INLINE __m512i pack_panel(const uint8_t *a, int K, int kw, int p, int r0, int r1, const int ab,
                              uint64_t *bits, int32_t *rowsum, __m512i any) {
    const size_t ps = (size_t)kw * MQ_BS_MR; /* words from one plane to the next */
    const __m512i zero = _mm512_setzero_si512();
    const int full = K / 64, tail = K % 64;
    const __mmask64 tmask = ((__mmask64)1 << tail) - 1;
    uint64_t *const pbase = bits + (size_t)p * (size_t)ab * ps;
    __m512i s[MQ_BS_MR];
    for (int r = 0; r < MQ_BS_MR; r++) {
        s[r] = zero;
        if (r < r0 || r >= r1) continue;
        const uint8_t *row = a + ((size_t)p * MQ_BS_MR + (size_t)r) * (size_t)K;
        uint64_t *d = pbase + r;
        __m512i sum = zero;
        for (int w = 0; w <= full; w++, d += MQ_BS_MR) {
            __m512i x;
            if (w < full) x = _mm512_loadu_si512((const void *)(row + 64 * w));
            else if (tail) x = _mm512_maskz_loadu_epi8(tmask, row + 64 * w);
            else break;
            pack_word(x, d, ps, ab, &sum, &any);
        }
        s[r] = sum;
    }
    const __mmask8 live = (__mmask8)((0xffu << r0) & (0xffu >> (MQ_BS_MR - r1)));
    _mm256_mask_storeu_epi32(rowsum + (size_t)p * MQ_BS_MR, live, _mm512_cvtepi64_epi32(sum8(s)));
    return any;
}

TGT int mq_bs_pack_rows_gfni(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    const int K = out->K, kw = out->kw, ab = out->a_bits;
    __m512i any = _mm512_setzero_si512();
    for (int m = m0; m < m1;) {
        const int p = m / MQ_BS_MR, r0 = m % MQ_BS_MR;
        const int r1 = MQ_MIN(MQ_BS_MR, m1 - p * MQ_BS_MR);
        switch (ab) { /* a constant width in each copy */
#define MQ_PACK_CASE(b)                                                                                case b: any = pack_panel(a, K, kw, p, r0, r1, b, out->bits, out->rowsum, any); break;
            MQ_PACK_CASE(1) MQ_PACK_CASE(2) MQ_PACK_CASE(3) MQ_PACK_CASE(4)
            MQ_PACK_CASE(5) MQ_PACK_CASE(6) MQ_PACK_CASE(7) MQ_PACK_CASE(8)
#undef MQ_PACK_CASE
            default: return 1;
        }
        m = p * MQ_BS_MR + r1;
    }
    const __m512i himask = _mm512_set1_epi8((char)(0xffu << ab & 0xffu));
    return _mm512_test_epi8_mask(any, himask) != 0;
}

#else /* not x86-64 GCC/clang */

int mq_bs_gfni_compiled(void) { return 0; }
int mq_bs_pack_rows_gfni(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    (void)a, (void)m0, (void)m1, (void)out;
    return 0;
}

#endif
