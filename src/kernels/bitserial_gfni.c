/* Activation packer for CPUs with GFNI, AVX512-VBMI and VPOPCNTDQ (Ice Lake and later, AMD Zen
 * 4 / 5): the vpopcnt tier's packer where the CPU has them (bitserial.c chooses; the AVX-512BW
 * packer in bitserial_avx512.c serves the rest and stays the avx512 tier's).
 *
 * Layout as bitserial.h says: row m, K word w, plane j -> bits[(m/8)][j][w][m%8], bit t of the
 * word = bit j of code 64 w + t. The transpose is gf2p8affineqb with the codes as the matrix and
 * byte i of every qword of the other operand = 1 << i: byte i of qword q becomes bit i of codes
 * 8q .. 8q+7, i.e. an 8 x 8 bit transpose per qword, for every plane at once; byte permutes then
 * put each plane's bytes together.
 *   Whole panels (pack_full): the 8 rows of a K word go through one gf2p8affineqb each, then a
 *     tree of two-source byte permutes (vpermt2b) gathers each plane's 8 row words into one
 *     64-byte line: one aligned store per plane; a second gf2p8affineqb per plane reverses the
 *     bits of each byte (the instruction reads the matrix's bytes in reverse order). Row sums
 *     from the planes (vpopcntq per plane line: lane r = row r's count).
 *   A partial panel (pack_panel, only a last short one): row by row, vpshufb (reverse each
 *     qword's bytes) + gf2p8affineqb + vpermb per 64 codes, one 8-byte store per plane.
 * The AVX-512BW packer spends a vptestmb, a mask-to-GPR move and a scattered 8-byte store per
 * plane and word; on Zen 5 the mask moves bound it (about 9 cycles per word at 4 bits). The range
 * check ORs the codes into one vector and tests it once per call. Measured (AMD Zen 5, one pinned
 * CPU, 784 x 144 codes, the im2col matrix of resnet20's 16->16 layers), AVX-512BW -> this:
 * 1 bit 2.7 -> 1.7 us, 2 bits 3.7 -> 1.9, 3 bits 5.4 -> 2.4, 4 bits 6.3 -> 2.8, 8 bits
 * 10.0 -> 3.7 (the row-by-row path for every panel: 2.3 / 2.5 / 2.8 / 3.1 / 6.2 us). */
#include "kernels/bitserial.h"

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define GF_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vpopcntdq,gfni"
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

/* Planes of the 64 codes x to d (plane j at d + j * ps); adds their sum to *sum (unless sum is
 * NULL) and ORs them into *any. ab is a constant after inlining. */
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
    if (sum) *sum = _mm512_add_epi64(*sum, _mm512_sad_epu8(x, _mm512_setzero_si512()));
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

/* Rows r0..r1-1 of pixel panel p (0 <= r0 < r1 <= 8), ab a constant after inlining; row by row. */
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

/* The byte permutes of a whole panel (pack_full); entry b of each as its comment says. */
typedef struct gf_tables {
    __m512i l1[2]; /* plane group g (planes 4g..4g+3) of a row pair: byte 16 j + 8 rr + q <-
                      row rr's affine output, byte 8 q + 4 g + j */
    __m512i l2[2]; /* planes 2h, 2h+1 (h % 2 picks) of a row quad: byte 32 jj + 8 r4 + q <-
                      row pair r4 / 2, byte 16 ((2 h + jj) % 4) + 8 (r4 % 2) + q */
    __m512i l3[2]; /* plane j (j % 2 picks) of the 8 rows: byte 8 r + q <- row quad r / 4,
                      byte 32 (j % 2) + 8 (r % 4) + q */
} gf_tables;

TGT_INLINE void gf_tables_init(gf_tables *t) {
    uint8_t b1[2][64], b2[2][64], b3[2][64];
    for (int g = 0; g < 2; g++)
        for (int b = 0; b < 64; b++) {
            const int q = b % 8;
            b1[g][b] = (uint8_t)((b / 8 % 2) << 6 | (8 * q + 4 * g + b / 16));
            const int jj = b / 32, r4 = b / 8 % 4;
            b2[g][b] = (uint8_t)((r4 / 2) << 6 | (16 * ((2 * g + jj) % 4) + 8 * (r4 % 2) + q));
            const int r = b / 8;
            b3[g][b] = (uint8_t)((r / 4) << 6 | (32 * g + 8 * (r % 4) + q));
        }
    for (int g = 0; g < 2; g++) {
        t->l1[g] = _mm512_loadu_si512((const void *)b1[g]);
        t->l2[g] = _mm512_loadu_si512((const void *)b2[g]);
        t->l3[g] = _mm512_loadu_si512((const void *)b3[g]);
    }
}

/* A whole panel (8 rows), ab a constant after inlining. Per K word: one gf2p8affineqb per row
 * (byte i of qword q = bit i of the row's codes 8q .. 8q+7, bit t from code 8q + 7 - t), a tree
 * of two-source byte permutes gathering each plane's 8 rows into one 64-byte line (4, 2 and 1
 * vpermt2b per group of 4 planes, plane pair and plane), one more gf2p8affineqb per plane to
 * reverse the bits of each byte, one aligned store per plane. The row sums come from the
 * planes: lane r of vpopcntq(plane j) is row r's count of bit j. */
TGT_INLINE __m512i pack_full(const uint8_t *a, int K, int kw, int p, const int ab, uint64_t *bits,
                             int32_t *rowsum, __m512i any, const gf_tables *tb) {
    const __m512i sel = _mm512_set1_epi64((long long)0x8040201008040201ull);
    const __m512i brev = _mm512_set1_epi64((long long)0x8040201008040201ull);
    const size_t ps = (size_t)kw * MQ_BS_MR;
    const int full = K / 64, tail = K % 64;
    const __mmask64 tmask = ((__mmask64)1 << tail) - 1;
    uint64_t *const pbase = bits + (size_t)p * (size_t)ab * ps;
    const uint8_t *const prow = a + (size_t)p * MQ_BS_MR * (size_t)K;
    __m512i rs = _mm512_setzero_si512();
    for (int w = 0; w < kw; w++) {
        __m512i t[MQ_BS_MR];
        for (int r = 0; r < MQ_BS_MR; r++) {
            const uint8_t *src = prow + (size_t)r * (size_t)K + 64 * (size_t)w;
            const __m512i x = w < full ? _mm512_loadu_si512((const void *)src)
                                       : _mm512_maskz_loadu_epi8(tmask, src);
            any = _mm512_or_si512(any, x);
            t[r] = _mm512_gf2p8affine_epi64_epi8(sel, x, 0);
        }
        __m512i u[2][4], v[4][2];
        for (int g = 0; g < (ab + 3) / 4; g++)
            for (int pr = 0; pr < 4; pr++)
                u[g][pr] = _mm512_permutex2var_epi8(t[2 * pr], tb->l1[g], t[2 * pr + 1]);
        for (int h = 0; h < (ab + 1) / 2; h++)
            for (int qd = 0; qd < 2; qd++)
                v[h][qd] = _mm512_permutex2var_epi8(u[h / 2][2 * qd], tb->l2[h % 2],
                                                    u[h / 2][2 * qd + 1]);
        for (int j = 0; j < ab; j++) {
            const __m512i o = _mm512_gf2p8affine_epi64_epi8(
                _mm512_permutex2var_epi8(v[j / 2][0], tb->l3[j % 2], v[j / 2][1]), brev, 0);
            _mm512_store_si512((void *)(pbase + (size_t)j * ps + (size_t)w * MQ_BS_MR), o);
            rs = _mm512_add_epi64(rs, _mm512_slli_epi64(_mm512_popcnt_epi64(o), (unsigned)j));
        }
    }
    _mm256_storeu_si256((__m256i *)(void *)(rowsum + (size_t)p * MQ_BS_MR),
                        _mm512_cvtepi64_epi32(rs));
    return any;
}

/* 1 if a code ORed into any exceeds ab bits: the packers' one range test per call. */
TGT_INLINE int over_bits(__m512i any, int ab) {
    return _mm512_test_epi8_mask(any, _mm512_set1_epi8((char)(0xffu << ab & 0xffu))) != 0;
}

TGT int mq_bs_pack_rows_gfni(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    const int K = out->K, kw = out->kw, ab = out->a_bits;
    __m512i any = _mm512_setzero_si512();
    gf_tables tb;
    gf_tables_init(&tb);
    for (int m = m0; m < m1;) {
        const int p = m / MQ_BS_MR, r0 = m % MQ_BS_MR;
        const int r1 = MQ_MIN(MQ_BS_MR, m1 - p * MQ_BS_MR);
        const int whole = r0 == 0 && r1 == MQ_BS_MR;
        switch (ab) { /* a constant width in each copy */
#define MQ_PACK_CASE(b)                                                                            \
    case b:                                                                                        \
        any = whole ? pack_full(a, K, kw, p, b, out->bits, out->rowsum, any, &tb)                  \
                    : pack_panel(a, K, kw, p, r0, r1, b, out->bits, out->rowsum, any);             \
        break;
            MQ_PACK_CASE(1) MQ_PACK_CASE(2) MQ_PACK_CASE(3) MQ_PACK_CASE(4)
            MQ_PACK_CASE(5) MQ_PACK_CASE(6) MQ_PACK_CASE(7) MQ_PACK_CASE(8)
#undef MQ_PACK_CASE
            default: return 1;
        }
        m = p * MQ_BS_MR + r1;
    }
    return over_bits(any, ab);
}

/* The plane rows of mq_bs_pack_conv_seg's padded input (bitserial.h) straight from the codes:
 * word w of a padded row holds its codes 64 w .. 64 w + 63, i.e. the image row's codes from
 * 64 w - pad * C on, a masked load with pad_code blended into the lanes outside the row; then
 * pack_word with the row's planes RW words apart. Rows of padding are left to the caller.
 * Returns nonzero if a code exceeds ab bits. */
TGT_INLINE __m512i seg_image_rows(const uint8_t *codes, const mq_bs_seg_geo *g, uint8_t pad_code,
                                  const int ab, uint64_t *rows, __m512i any) {
    const int WC = g->W * g->C, padc = g->pad * g->C, RW = g->RW;
    const int nw = (int)(((int64_t)(g->W + 2 * g->pad) * g->C + 63) / 64);
    const __m512i padv = _mm512_set1_epi8((char)pad_code);
    for (int i = 0; i < g->n; i++)
        for (int h = 0; h < g->H; h++) {
            const uint8_t *row = codes + ((size_t)i * g->H + (size_t)h) * (size_t)WC;
            uint64_t *d = rows + (((size_t)i * g->HP + (size_t)(h + g->pad)) * ab) * (size_t)RW;
            for (int w = 0; w < nw; w++) {
                const int c0 = 64 * w - padc; /* the first code of the word, in the image row */
                __m512i x;
                if (c0 >= 0 && c0 + 64 <= WC) {
                    x = _mm512_loadu_si512((const void *)(row + c0));
                } else { /* lanes t with 0 <= c0 + t < WC from the row, the rest pad_code */
                    const int lo = MQ_MAX(0, -c0), hi = MQ_MIN(64, WC - c0);
                    const __mmask64 in = hi > lo ? (hi == 64 ? ~(__mmask64)0 : ((__mmask64)1 << hi) - 1) &
                                                       ~(((__mmask64)1 << lo) - 1)
                                                 : 0;
                    /* masked lanes are not read: the address may lie before the row */
                    x = _mm512_mask_loadu_epi8(padv, in, (const void *)((uintptr_t)row + (uintptr_t)(intptr_t)c0));
                }
                pack_word(x, d + w, (size_t)RW, ab, NULL, &any); /* row sums: the rows stage's */
            }
            for (int j = 0; j < ab; j++)
                for (int w = nw; w < RW; w++) d[(size_t)j * RW + (size_t)w] = 0;
        }
    return any;
}

TGT int mq_bs_seg_image_rows_gfni(const uint8_t *codes, const mq_bs_seg_geo *g, uint8_t pad_code,
                                  int ab, uint64_t *rows) {
    __m512i any = _mm512_setzero_si512();
    switch (ab) { /* a constant width in each copy */
#define MQ_SEG_CASE(b)                                                                                 case b: any = seg_image_rows(codes, g, pad_code, b, rows, any); break;
        MQ_SEG_CASE(1) MQ_SEG_CASE(2) MQ_SEG_CASE(3) MQ_SEG_CASE(4)
        MQ_SEG_CASE(5) MQ_SEG_CASE(6) MQ_SEG_CASE(7) MQ_SEG_CASE(8)
#undef MQ_SEG_CASE
        default: return 1;
    }
    return over_bits(any, ab);
}

/* mq_bs_conv_seg_rows_gfni: vpermb, vpopcntq row sums (bitserial_seg_rows.h) */
#define SEG_NAME mq_bs_conv_seg_rows_gfni
#define SEG_BYTES 1
#include "kernels/bitserial_seg_rows.h"
#undef SEG_NAME
#undef SEG_BYTES

#else /* not x86-64 GCC/clang */

int mq_bs_gfni_compiled(void) { return 0; }
void mq_bs_conv_seg_rows_gfni(const mq_bs_seg_geo *g, const uint64_t *rows, mq_bs_acts *out) {
    (void)g, (void)rows, (void)out;
}
int mq_bs_seg_image_rows_gfni(const uint8_t *codes, const mq_bs_seg_geo *g, uint8_t pad_code,
                              int ab, uint64_t *rows) {
    (void)codes, (void)g, (void)pad_code, (void)ab, (void)rows;
    return 1;
}
int mq_bs_pack_rows_gfni(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    (void)a, (void)m0, (void)m1, (void)out;
    return 0;
}

#endif
