/* Direct convolution on 32-bit words, AVX-512 VPOPCNTDQ tier (mq_bs_conv_dir, bitserial.h):
 * 3x3 convolutions with 16 or 32 input channels read each output pixel's K straight from the
 * padded plane rows, with no K padding to 64-bit words and no row packing. Its own translation
 * unit: the unrolled copies (4 widths x 2 channel counts) compile as long as the GEMM's, and
 * in parallel with them.
 * Target attributes let this file build without -march flags; the kernel runs only after
 * mq_bs_tier_available(MQ_BS_TIER_VPOPCNT). */
#include "kernels/bitserial.h"

#include "core/core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "kernels/bitserial_vp.h"

/* ---------------------------------------------------------------- direct convolutions */
/* mq_bs_conv_dir (bitserial.h). The output pixels of a thread's rows go in chunks of whole rows
 * (DIR_CHUNK pixels or one row): per chunk, for every pixel its address in the plane rows, for
 * C = 16 its (r 0, s 2) | (r 1, s 2) << 16 word per plane (vp, two vpmovzxwd per 16 pixels), and
 * its row sum when a +-1 panel needs it (3x3 box sums of per-pixel popcounts); then per weight
 * panel blocks of PB pixels (across row ends): per plane j (high to low) every accumulator
 * doubles (Horner), then per word and pixel one broadcast and B vpandd + vpopcntd + vpaddd, one
 * per weight plane i (B accumulators per pixel, combined with their signs at the end). */
#define DIR_CHUNK 256

static size_t dir_xn(const mq_bs_seg_geo *g) { /* input pixels a row's row sums read, rounded to 16 */
    return ((size_t)(g->Q - 1) * (size_t)g->stride + 3 + 15) / 16 * 16;
}
static size_t dir_chunk(const mq_bs_seg_geo *g) { /* pixels per chunk: whole rows */
    return g->Q >= DIR_CHUNK ? (size_t)g->Q : (size_t)(DIR_CHUNK / g->Q) * (size_t)g->Q;
}

size_t mq_bs_dir_tmp_bytes(const mq_bs_seg_geo *g, int ab) {
    const size_t ch = dir_chunk(g) + dir_xn(g) + 16; /* the last row's vector stores run past it */
    return ch * (sizeof(const uint8_t *) + (size_t)ab * sizeof(uint32_t) + sizeof(int32_t)) + 3 * 64;
}

/* Keeps GCC from re-associating the accumulator chains (it would compute every popcount of the
 * unrolled block first and spill them). */
#define DIR_KEEP(x) __asm__("" : "+v"(x))

/* PB pixels of one weight panel. pa[p]: pixel p's plane 0 of kernel row 0 at its first tap; rs,
 * js: bytes to the next kernel row and plane; vp: pixel 0's vp words, chunk entries per plane;
 * out: pixel 0's output row. */
TGT_INLINE void dir_tile(const int c16, const int B, const int PB, const int ab,
                         const uint8_t *const *pa, size_t rs, size_t js, const uint32_t *vp,
                         size_t chunk, const uint32_t *W32, const int32_t *rsum, int32_t *out,
                         int ldc, const int32_t *col, int nrows, int contig) {
    const int NW = c16 ? 5 : 9;
    if (B < 1 || B > 8 || PB < 1 || PB > 8) __builtin_unreachable(); /* panels: 1..8 bits */
    __m512i acc[8][8];
    const uint8_t *ap[8];
    _Pragma("GCC unroll 8") for (int p = 0; p < PB; p++) ap[p] = pa[p];
    _Pragma("GCC unroll 8") for (int i = 0; i < B; i++)
        _Pragma("GCC unroll 8") for (int p = 0; p < PB; p++) acc[i][p] = _mm512_setzero_si512();
    for (int j = ab - 1; j >= 0; j--) {
        if (j < ab - 1)
            _Pragma("GCC unroll 8") for (int i = 0; i < B; i++)
                _Pragma("GCC unroll 8") for (int p = 0; p < PB; p++) acc[i][p] = _mm512_slli_epi32(acc[i][p], 1);
        const size_t jo = (size_t)j * js;
        const uint32_t *vj = vp + (size_t)j * chunk;
        _Pragma("GCC unroll 9") for (int w = 0; w < NW; w++) {
            _Pragma("GCC unroll 8") for (int p = 0; p < PB; p++) {
                uint32_t a;
                if (!c16) a = mq_bs_ld32(ap[p] + jo + (size_t)(w / 3) * rs + (size_t)(w % 3) * 4);
                else if (w < 3) a = mq_bs_ld32(ap[p] + jo + (size_t)w * rs);
                else if (w == 3) a = vj[p];
                else a = mq_bs_ld32(ap[p] + jo + 2 * rs + 4);
                const __m512i av = _mm512_set1_epi32((int)a);
                _Pragma("GCC unroll 8") for (int i = 0; i < B; i++) {
                    const __m512i wv = _mm512_load_si512((const void *)(W32 + ((size_t)i * NW + (size_t)w) * MQ_BS_NR));
                    acc[i][p] = _mm512_add_epi32(acc[i][p], popcnt32(_mm512_and_si512(wv, av)));
                    DIR_KEEP(acc[i][p]);
                }
            }
        }
    }
    _Pragma("GCC unroll 8") for (int p = 0; p < PB; p++) {
        __m512i v;
        if (B == 1) {
            v = _mm512_sub_epi32(_mm512_slli_epi32(acc[0][p], 1), _mm512_set1_epi32(rsum[p]));
        } else {
            v = _mm512_sub_epi32(_mm512_setzero_si512(), acc[B - 1][p]);
            _Pragma("GCC unroll 8") for (int i = B - 2; i >= 0; i--)
                v = _mm512_add_epi32(_mm512_slli_epi32(v, 1), acc[i][p]);
        }
        int32_t *o = out + (size_t)p * (size_t)ldc;
        if (contig && nrows == MQ_BS_NR) {
            _mm512_storeu_si512((void *)(o + col[0]), v);
        } else if (contig) {
            _mm512_mask_storeu_epi32((void *)(o + col[0]), (__mmask16)((1u << nrows) - 1), v);
        } else {
            int32_t t[MQ_BS_NR];
            _mm512_storeu_si512((void *)t, v);
            for (int c = 0; c < nrows; c++) o[col[c]] = t[c];
        }
    }
}

/* One panel over a chunk's np pixels: blocks of PB, then single pixels. */
TGT_INLINE void dir_panel(const int c16, const int B, int ab, int np, const uint8_t *const *pa,
                          size_t rs, size_t js, const uint32_t *vp, size_t chunk,
                          const uint32_t *W32, const int32_t *rsum, int32_t *out, int ldc,
                          const int32_t *col, int nrows, int contig) {
    const int PB = B <= 2 ? 8 : 4;
    int x = 0;
    for (; x + PB <= np; x += PB)
        dir_tile(c16, B, PB, ab, pa + x, rs, js, vp + x, chunk, W32, rsum + x,
                 out + (size_t)x * ldc, ldc, col, nrows, contig);
    for (; x < np; x++)
        dir_tile(c16, B, 1, ab, pa + x, rs, js, vp + x, chunk, W32, rsum + x,
                 out + (size_t)x * ldc, ldc, col, nrows, contig);
}

#define DIR_PANEL_ARGS ab, np, pa, rs, js, vp, chunk, W32, rsum, out, ldc, col, nrows, contig
#define DIR_PANEL_FN(name, c16)                                                                    \
    static TGT __attribute__((noinline)) void name(                                                \
        int B, int ab, int np, const uint8_t *const *pa, size_t rs, size_t js, const uint32_t *vp, \
        size_t chunk, const uint32_t *W32, const int32_t *rsum, int32_t *out, int ldc,             \
        const int32_t *col, int nrows, int contig) {                                               \
        switch (B) { /* a constant width in each copy */                                           \
        case 1: dir_panel(c16, 1, DIR_PANEL_ARGS); break;                                          \
        case 2: dir_panel(c16, 2, DIR_PANEL_ARGS); break;                                          \
        case 3: dir_panel(c16, 3, DIR_PANEL_ARGS); break;                                          \
        case 4: dir_panel(c16, 4, DIR_PANEL_ARGS); break;                                          \
        default: dir_panel(c16, B, DIR_PANEL_ARGS); break; /* 5..8: rare, B a loop bound */      \
        }                                                                                          \
    }
DIR_PANEL_FN(dir_panel_c16, 1)
DIR_PANEL_FN(dir_panel_c32, 0)
#undef DIR_PANEL_FN
#undef DIR_PANEL_ARGS

/* Output row (a0: its plane 0 of kernel row 0, input pixel 0) into the chunk at pixel m: the
 * pixels' addresses, vp words (C = 16) and row sums (need_rs). The vector stores write up to
 * dir_xn past the row's Q pixels, which the next row then overwrites. */
TGT_INLINE void dir_row_prep(const mq_bs_seg_geo *g, int c16, int ab, const uint8_t *a0, size_t rs,
                             size_t js, size_t m, size_t chunk, const uint8_t **pa, uint32_t *vp,
                             int32_t *rsum, int need_rs) {
    const int st = g->stride, Q = g->Q, px = c16 ? 2 : 4;
    const size_t xn = dir_xn(g);
    { /* pa[m + x] = a0 + x * st * px, 8 at a time (up to 7 past the row: the next row's) */
        const long long d = (long long)st * px;
        __m512i v = _mm512_add_epi64(_mm512_set1_epi64((long long)(uintptr_t)a0),
                                     _mm512_set_epi64(7 * d, 6 * d, 5 * d, 4 * d, 3 * d, 2 * d, d, 0));
        const __m512i step = _mm512_set1_epi64(8 * d);
        for (int x = 0; x < Q; x += 8, v = _mm512_add_epi64(v, step))
            _mm512_storeu_si512((void *)(pa + m + (size_t)x), v);
    }
    if (c16) /* vp[j][x] = row 0 | row 1 << 16 at input pixel x * st + 2 */
        for (int j = 0; j < ab; j++)
            for (int x = 0; x < Q; x += 16) {
                const uint8_t *p0 = a0 + (size_t)j * js + 2 * ((size_t)x * st + 2);
                __m512i lo, hi;
                if (st == 1) {
                    lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p0));
                    hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p0 + rs)));
                } else { /* the even pixels of 32: the low halves of 16 dwords */
                    lo = _mm512_and_si512(_mm512_loadu_si512((const void *)p0), _mm512_set1_epi32(0xffff));
                    hi = _mm512_loadu_si512((const void *)(p0 + rs));
                }
                _mm512_storeu_si512((void *)(vp + (size_t)j * chunk + m + (size_t)x),
                                    _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
            }
    if (!need_rs) return;
    /* row sums: 3x3 box sums of h[xx], the codes' sum over the 3 kernel rows at input pixel xx,
     * in registers: box chunk k from h chunks k and k + 1 (valignd for the taps 1 and 2);
     * stride 2 keeps the even lanes of two box chunks */
    __m512i prev = _mm512_setzero_si512(), even = _mm512_setzero_si512();
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int32_t *rs_row = rsum + m;
    for (size_t xx = 0, k = 0; xx <= xn; xx += 16, k++) {
        __m512i h = _mm512_setzero_si512();
        if (xx < xn)
            for (int j = 0; j < ab; j++)
                for (int r = 0; r < 3; r++) {
                    const uint8_t *p0 = a0 + (size_t)r * rs + (size_t)j * js + (size_t)px * xx;
                    const __m512i v = c16 ? _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p0))
                                          : _mm512_loadu_si512((const void *)p0);
                    h = _mm512_add_epi32(h, _mm512_slli_epi32(popcnt32(v), (unsigned)j));
                }
        if (k > 0) { /* box chunk k - 1 */
            const __m512i box = _mm512_add_epi32(_mm512_add_epi32(prev, _mm512_alignr_epi32(h, prev, 1)),
                                                 _mm512_alignr_epi32(h, prev, 2));
            if (st == 1) _mm512_storeu_si512((void *)(rs_row + xx - 16), box);
            else if (k % 2 == 0) _mm512_storeu_si512((void *)(rs_row + (xx - 32) / 2),
                                                     _mm512_permutex2var_epi32(even, evens, box));
            else even = box;
        }
        prev = h;
    }
    if (st == 2 && (xn / 16) % 2 == 1) /* the last box chunk had no partner */
        _mm512_storeu_si512((void *)(rs_row + (xn - 16) / 2),
                            _mm512_permutex2var_epi32(even, evens, _mm512_setzero_si512()));
}

TGT void mq_bs_conv_dir_rows_vpopcnt(const mq_bs_seg_geo *g, const uint64_t *rows, int ab,
                                     const mq_bs_weights *w, int32_t *C, int ldc, int o0, int o1,
                                     uint8_t *tmp) {
    const int c16 = w->dir == MQ_BS_DIR_C16, Q = g->Q;
    const size_t js = (size_t)g->RW * 8, rs = (size_t)ab * js, chunk = dir_chunk(g);
    const size_t cap = chunk + dir_xn(g) + 16; /* entries per buffer */
    const uint8_t **pa = (const uint8_t **)(void *)tmp;
    uint32_t *vp = (uint32_t *)(tmp + (cap * sizeof *pa + 63) / 64 * 64);
    int32_t *rsum = (int32_t *)((uint8_t *)vp + ((size_t)ab * cap * 4 + 63) / 64 * 64);
    const int need_rs = w->bits[0] == 1; /* panels are sorted by width: +-1 panels come first */
    const int rows_per = (int)(chunk / (size_t)Q);
    for (int oc = o0; oc < o1; oc += rows_per) {
        const int oe = oc + rows_per < o1 ? oc + rows_per : o1;
        int i = oc / g->P, y = oc % g->P; /* image and output row of o */
        for (int o = oc; o < oe; o++) {
            const uint8_t *a0 = (const uint8_t *)(rows + ((size_t)i * g->HP + (size_t)y * g->stride) * ab * (size_t)g->RW);
            dir_row_prep(g, c16, ab, a0, rs, js, (size_t)(o - oc) * (size_t)Q, cap, pa, vp, rsum, need_rs);
            if (++y == g->P) y = 0, i++;
        }
        const int np = (oe - oc) * Q;
        int32_t *out = C + (size_t)oc * (size_t)Q * (size_t)ldc;
        for (int p = 0; p < w->panels; p++) {
            const uint32_t *W32 = (const uint32_t *)(w->planes + w->off[p]);
            const int32_t *col = w->col + (size_t)p * MQ_BS_NR;
            (c16 ? dir_panel_c16 : dir_panel_c32)(w->bits[p], ab, np, pa, rs, js, vp, cap, W32, rsum,
                                                  out, ldc, col, w->rows[p], w->contig[p]);
        }
    }
}

#else /* not x86-64 GCC/clang */

size_t mq_bs_dir_tmp_bytes(const mq_bs_seg_geo *g, int ab) {
    (void)g, (void)ab;
    return 0;
}
void mq_bs_conv_dir_rows_vpopcnt(const mq_bs_seg_geo *g, const uint64_t *rows, int ab,
                                 const mq_bs_weights *w, int32_t *C, int ldc, int o0, int o1,
                                 uint8_t *tmp) {
    (void)g, (void)rows, (void)ab, (void)w, (void)C, (void)ldc, (void)o0, (void)o1, (void)tmp;
}

#endif
