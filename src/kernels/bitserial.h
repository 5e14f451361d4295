/* Bit-serial (binary-decomposition) GEMM kernels for the mixed-precision CPU runtime.
 * Internal API (names mq_bs_*); not part of include/mixq/mixq.h.
 *
 * ---------------------------------------------------------------- what is computed
 *   C[m][n] = sum_{k<K} A[m][k] * W[n][k]          exact, int32
 *
 * Buffers, shapes and bitwidths (all row-major):
 *   A        uint8_t [M][K]   activations, unsigned a_bits-bit: 0 .. 2^a_bits - 1, a_bits in 1..8.
 *                             M = output pixels (im2col rows), K = C_in * R * S.
 *   W        int8_t  [N][K]   weights, row n (= output channel n) has its own width row_bits[n]
 *                             in 1..8 (AutoQ per-kernel bits):
 *                               b >= 2: two's complement, -(2^(b-1)) .. 2^(b-1) - 1;
 *                               b == 1: the values -1 and +1 only, encoded as one bit plane with
 *                                       bit = 1 <=> +1, i.e. value = 2*bit - 1 (0 is invalid).
 *   row_bits int     [N]
 *   C        int32_t [M][ldc] ldc >= N; only columns 0..N-1 of each row are written.
 *   1 <= K <= MQ_BS_MAX_K = 65536, so |C| <= 65536 * 255 * 128 < 2^31: no overflow anywhere.
 *
 * ---------------------------------------------------------------- decomposition
 *   A = sum_{j<a} 2^j A_j,  A_j in {0,1}              (activation bit planes)
 *   W = sum_{i<B} s_i 2^i W_i, W_i in {0,1}           (weight bit planes, B-bit two's complement:
 *                                                      s_i = +1 for i < B-1, s_{B-1} = -1)
 *   C[m][n] = sum_{i<B} sum_{j<a} s_i 2^(i+j) popcount(W_i[n] AND A_j[m])       (B >= 2)
 *   C[m][n] = 2 * sum_{j<a} 2^j popcount(W_0[n] AND A_j[m]) - rowsum[m]          (B == 1, +-1)
 *   with rowsum[m] = sum_k A[m][k]. The kernels evaluate the double sum by Horner's rule on
 *   s = i + j (highest first): acc = 2*acc, then add (or, for the sign plane, subtract) the
 *   popcounts of every pair with i + j = s. The combine step thus costs one shift of the
 *   accumulator tile per s, never O(K) work.
 *
 * ---------------------------------------------------------------- packed layouts
 * K is packed into 64-bit words: kw = ceil(K / 64) words per plane row; bit (k mod 64) of word
 * k / 64 holds element k. Bits for k >= K are zero, so padding contributes nothing.
 *
 * Activations (mq_bs_acts), in panels of MQ_BS_MR = 8 pixels:
 *   bits    uint64_t [panels][a_bits][kw][MR]   panels = ceil(M / MR), 64-byte aligned;
 *                                               word [p][j][w][r] = plane j of pixel p*MR + r,
 *                                               K bits 64w .. 64w+63; pixels >= M are all zero.
 *   rowsum  int32_t  [panels * MR]              sum_k A[m][k] (0 for padding pixels).
 * One 64-byte line holds the same K word of all 8 pixels of a panel, so the micro-kernels
 * broadcast one pixel's word against vectors of output channels.
 *
 * Weights (mq_bs_weights), in panels of MQ_BS_NR = 16 output channels:
 *   rows are sorted by (row_bits, row index) and cut into panels of 16 in that order, so a panel
 *   mixes widths only at a boundary between widths; panel p has B_p planes, B_p = the widest row
 *   in it. B_p == 1 only when every row of the panel is 1-bit (the +-1 encoding above); otherwise
 *   every row is written in B_p-bit two's complement (exact: a b-bit value sign-extends, and
 *   +-1 is 01 / 11 in two's complement).
 *   planes  uint64_t [sum_p B_p * kw * NR]      panel p at planes + off[p]: [B_p][kw][NR],
 *                                               word [i][w][c] = plane i of row col[p*NR + c];
 *                                               padding slots (col = -1) are all zero.
 *   col     int32_t  [panels][NR]               output column (original row n) of each slot.
 *   bits    int      [panels]                   B_p.
 *   contig  uint8_t  [panels]                   how the slots map to columns (vector stores):
 *                                               1: col[p*NR + c] = col[p*NR] + c for all valid
 *                                                  slots (a short last panel of consecutive rows);
 *                                               2: a full panel of 16 consecutive columns c0..,
 *                                                  interleaved: slot c < 8 holds column c0 + 2c,
 *                                                  slot 8 + c column c0 + 2c + 1, so the AVX-512
 *                                                  tiles' two 8-lane halves merge into column
 *                                                  order with one shift and one blend;
 *                                               0: any other order (per-element stores).
 *   rows    int      [panels]                   valid slots (1..16).
 *   tplanes  uint64_t                           a tier's own copy of the same bits, for the tier
 *                                               tplanes_tier (its kernel's operand layout), or
 *                                               NULL. Built by the packers when the tier
 *                                               mq_bs_tier_select() gives wants one for this kw
 *                                               (mq_bs_tier_copy_wanted); else mq_bs_gemm_ex makes
 *                                               one for the call. Costs memory (below). The one
 *                                               tier with a copy:
 *     avx512 (kw >= mq_bs_avx512_hs_min_kw(), 8, its carry-save tree), as uint32_t, panel p at
 *            (uint32_t *)(tplanes + off[p]): [B_p][kw][2][NR], word [i][w][h][l] = bits
 *            32h .. 32h+31 of plane i, word w of slot l, or for an interleaved panel (contig 2)
 *            of slot l / 2 + 8 (l odd): lane l is column col[p*NR] + l. One zmm is one half
 *            word of 16 channels, so a tree serves 16 outputs. As large as planes.
 *   Cost: a GEMM does sum_p 16 * B_p * a_bits * kw word-pair ANDs per 8 pixels.
 *
 * ---------------------------------------------------------------- tiers
 * Selected at run time (cpuid + xgetbv, through __builtin_cpu_supports, which checks that the OS
 * saves the zmm/ymm state):
 *   vpopcnt  AVX-512F/BW + VPOPCNTDQ: vpandq with a {1to8} broadcast, vpopcntq, vpaddq/vpsubq.
 *   avx512   AVX-512F/BW: from K >= 8 words a Harley-Seal carry-save tree (vpandd, vpternlogq)
 *            on its tplanes with one nibble-table popcount (vpshufb) per 8 half words, summed per
 *            32-bit lane (vpmaddubsw, vpmaddwd); below that the nibble table alone (vpternlogq +
 *            vpshufb) on the 64-bit layout, byte counters flushed with vpsadbw.
 *   avx2     AVX2: the same nibble-table method on 256-bit vectors (no EVEX code: the file is
 *            compiled for AVX2 with AVX-512 switched off); a carry-save tree like avx512's (full
 *            adders of 5 µops) from MIXQ_BS_HS_MIN_KW words on, off by default: it measured
 *            slower than the table on Zen 5 (bitserial_avx2.c says by how much).
 *   scalar   64-bit __builtin_popcountll; always available; also the tier of non-x86 builds.
 * Every tier computes exactly the same integers (tests check each against mq_bs_gemm_ref).
 * MIXQ_BITSERIAL_TIER=vpopcnt|avx512|avx2|scalar (or auto / unset) forces a tier for
 * mq_bs_tier_select, mq_bs_pack_acts and mq_bs_gemm; an unknown name is MIXQ_ERR_ARG and a tier
 * this CPU (or build) lacks is MIXQ_ERR_UNSUPPORTED, both returned, never a crash. */
#ifndef MIXQ_KERNELS_BITSERIAL_H
#define MIXQ_KERNELS_BITSERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "mixq/mixq.h"

#define MQ_BS_MR 8          /* pixels per activation panel */
#define MQ_BS_NR 16         /* output channels per weight panel */
#define MQ_BS_MAX_K 65536   /* largest K: keeps every result and partial sum inside int32 */
#define MQ_BS_MAX_BITS 8
/* X(r) for the MQ_BS_MR rows of a tile, each r a literal. The AVX-512 tiles index their
 * accumulators q[r][v] only this way: with rows in loops (even loops GCC unrolls) GCC judged q
 * "needs to live in memory" and kept a stack copy: 16 zeroing stores per tile and 16 stores after
 * every k loop (vpopcnt tier). */
#define MQ_BS_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
/* The 4 bytes at p as a little-endian word, any alignment (the direct convolution's loads; one
 * definition for the tier and its scalar twin). */
static inline uint32_t mq_bs_ld32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

typedef enum mq_bs_tier {
    MQ_BS_TIER_SCALAR = 0,
    MQ_BS_TIER_AVX2,
    MQ_BS_TIER_AVX512,
    MQ_BS_TIER_VPOPCNT,
    MQ_BS_TIER_COUNT
} mq_bs_tier;

/* Packed activations. Zero-initialise ({0}) before the first pack; a later pack into the same
 * struct reuses its buffers (grown when needed). Free with mq_bs_acts_free. */
typedef struct mq_bs_acts {
    int M, K, a_bits;
    int kw;                 /* ceil(K / 64) */
    int panels;             /* ceil(M / MQ_BS_MR) */
    uint64_t *bits;         /* [panels][a_bits][kw][MR] */
    int32_t *rowsum;        /* [panels * MR] */
    size_t cap_words;       /* allocated words in bits */
    size_t cap_rows;        /* allocated entries in rowsum */
} mq_bs_acts;

/* Packed weights (see the layout above). Free with mq_bs_weights_free. */
typedef struct mq_bs_weights {
    int N, K, kw;
    int panels;             /* number of 16-row panels */
    int *bits;              /* [panels] planes per panel (B_p) */
    int *rows;              /* [panels] valid slots */
    uint8_t *contig;        /* [panels] 0, 1 (consecutive) or 2 (interleaved), above */
    size_t *off;            /* [panels] word offset of the panel in planes */
    int32_t *col;           /* [panels * NR] output column per slot, -1 = padding */
    uint64_t *planes;       /* all panels, 64-byte aligned */
    uint64_t *tplanes;      /* tier tplanes_tier's copy of planes (above), or NULL */
    int tplanes_tier;
    int *row_bits;          /* [N] copy of the widths */
    int64_t plane_rows;     /* sum_p 16 * B_p: weight plane rows the kernel runs (with padding) */
    int dir;                /* 0: the GEMM layouts above; else mq_bs_pack_weights_dir's layout
                               (mq_bs_conv_dir only): panel p is [B_p][kw][16] uint32 words, kw
                               = the kernel's words per pixel, slots in column order (contig
                               0 or 1, never 2); dir = the kernel kind (MQ_BS_DIR_*) */
} mq_bs_weights;

/* ---------------------------------------------------------------- tiers */
/* "scalar", "avx2", "avx512", "vpopcnt"; "?" for an invalid value. */
const char *mq_bs_tier_name(mq_bs_tier t);
/* 1 if this build has the tier and this CPU and OS support it. Scalar is always available. */
int mq_bs_tier_available(mq_bs_tier t);
/* The fastest available tier. */
mq_bs_tier mq_bs_tier_best(void);
/* Parse a tier name (as mq_bs_tier_name, or "auto" = best available). MIXQ_ERR_ARG otherwise. */
mixq_status mq_bs_tier_parse(const char *name, mq_bs_tier *out);
/* The tier to use: MIXQ_BITSERIAL_TIER if set and not empty, else the best one.
 * Unknown name: MIXQ_ERR_ARG; a tier this machine lacks: MIXQ_ERR_UNSUPPORTED. */
mixq_status mq_bs_tier_select(mq_bs_tier *out);

/* ---------------------------------------------------------------- packing */
/* Pack W[N][K] (int8, row n with row_bits[n] bits). Validates N >= 1, 1 <= K <= MQ_BS_MAX_K,
 * widths 1..8 and every value against its row's range (MIXQ_ERR_ARG naming row and element).
 * On failure *out is left empty (safe to free). Offline, tier-independent. */
mixq_status mq_bs_pack_weights(const int8_t *w, const int *row_bits, int N, int K,
                               mq_bs_weights *out);
void mq_bs_weights_free(mq_bs_weights *w);

/* Pack A[M][K] (uint8, a_bits bits) into out, reusing its buffers. Uses the tier of
 * mq_bs_tier_select (every tier writes identical bytes). Values above 2^a_bits - 1 are
 * MIXQ_ERR_ARG naming the first such row and element. */
mixq_status mq_bs_pack_acts(const uint8_t *a, int a_bits, int M, int K, mq_bs_acts *out);
mixq_status mq_bs_pack_acts_ex(const uint8_t *a, int a_bits, int M, int K, mq_bs_tier tier,
                               mq_bs_acts *out);
void mq_bs_acts_free(mq_bs_acts *a);
/* Size out for M x K at a_bits (buffers grown when needed; contents undefined). */
mixq_status mq_bs_acts_reserve(mq_bs_acts *out, int M, int K, int a_bits);

/* Packed activations of a convolution straight from its NHWC codes, with no im2col copy:
 *   codes  uint8_t [n][H][W][C]    a_bits-bit codes, C a multiple of 64, one group
 *   out    the packing of the im2col matrix [n*P*Q][R*S*C] in (r, s, c) K order, byte for byte
 *          what im2col + mq_bs_pack_acts_ex would write (taps outside the image read pad_code)
 *   pix    caller-owned scratch (zero-initialise, reuse, free with mq_bs_acts_free): each input
 *          pixel's C codes packed once, [ceil(nHW/8)][a_bits][C/64][8], then one more panel of
 *          pad_code's planes (read by the padding taps)
 * Every input code is packed once (not R*S times); the rows are then assembled from whole
 * 64-bit words, since each tap's C channels fill C/64 words exactly: 8 rows at a time, so each
 * destination line (one K word of a panel's 8 rows) is written whole. Errors as
 * mq_bs_pack_acts_ex, MIXQ_ERR_ARG for C % 64 != 0 or a pad_code above 2^a_bits - 1. */
mixq_status mq_bs_pack_conv(const uint8_t *codes, int n, int H, int W, int C, int R, int S,
                            int stride, int pad, uint8_t pad_code, int a_bits, mq_bs_tier tier,
                            mq_bs_acts *pix, mq_bs_acts *out);

/* Segment-aligned packing of a convolution whose C (a multiple of 16, not of 64) does not fill
 * whole words: the K of each kernel row r (its S taps' S * C codes, a "segment", (s, c) order)
 * starts a new 64-bit word, so a row's words are unaligned loads from the packed input rows
 * (each input code packed once, no im2col copy), with no shifting to join the segments:
 *   K layout  R * segw words, segw = ceil(S * C / 64); element (r, s, c) at bit
 *             r * segw * 64 + s * C + c; the bits between segments are zero.
 * Same word count as the plain layout where mq_bs_conv_seg_ok(C, R, S) (e.g. 3x3, C = 16: 3
 * words of 48 bits, against ceil(144 / 64) = 3), which it requires. The weights must be packed
 * the same way: mq_bs_pack_weights_seg(w, row_bits, N, R * S * C, S * C, ...) (w in the usual
 * (r, s, c) K order); out->K and w->K are then both R * segw * 64. The products are those of
 * im2col + mq_bs_pack_acts_ex + mq_bs_gemm (padding taps read pad_code). Errors as
 * mq_bs_pack_conv. sc: caller-owned scratch (zero-initialise, reuse, mq_bs_seg_scratch_free). */
typedef struct mq_bs_seg_scratch {
    mq_bs_acts pix;      /* the input's image rows packed, W * C codes each */
    uint64_t *rows;      /* [n][H + 2 pad][a_bits][RW] plane rows of the padded input */
    size_t rows_cap;     /* words */
    uint8_t *tmp;        /* mq_bs_conv_dir: per-thread row buffers */
    size_t tmp_cap;      /* bytes */
} mq_bs_seg_scratch;
int mq_bs_conv_seg_ok(int C, int R, int S);
/* Where the runtime (and bench_layers, as it) uses the segment layout: mq_bs_conv_seg_ok, not
 * 1x1, and an input row of W * C codes within MQ_BS_MAX_K (mq_bs_pack_conv_seg's limit; wider
 * rows take im2col). A 1x1 conv's im2col is its codes (stride 1) or the used pixels (stride 2); packing every
 * input row instead measured slower (resnet20's 1x1 stride-2 shortcuts, AMD Zen 5: 32->64 W1A1
 * 14 -> 6 % of the ceiling). The 3x3 16-channel layers gain (bench_layers, batch 1, median of
 * the 3 K = 144 shapes, % of the ceiling, im2col + GFNI packer -> this, alternating runs on one
 * CPU): W1A1 22 -> 29, W1A2 31 -> 37, W2A2 41 -> 49-51, W3A3 51 -> 55, W4A4 57 -> 60-62 (with the
 * W2A2 tile of bitserial_avx512_tile.h); with the AVX2 and scalar tiers too (784 x 16 x 144
 * W2A2 pack + GEMM 23.8 -> 21.6 and 48.0 -> 46.9 us, the scalar rows). */
int mq_bs_conv_seg_pays(int C, int R, int S, int W);
mixq_status mq_bs_pack_weights_seg(const int8_t *w, const int *row_bits, int N, int K, int seg,
                                   mq_bs_weights *out);
mixq_status mq_bs_pack_conv_seg(const uint8_t *codes, int n, int H, int W, int C, int R, int S,
                                int stride, int pad, uint8_t pad_code, int a_bits, mq_bs_tier tier,
                                mq_bs_seg_scratch *sc, mq_bs_acts *out);
void mq_bs_seg_scratch_free(mq_bs_seg_scratch *s);

/* Direct convolution on 32-bit words (vpopcnt tier), for C = 16 or 32: no activation packing
 * beyond the padded plane rows of mq_bs_pack_conv_seg (each input code packed once). Each output
 * pixel's K is a few 32-bit words read straight from those rows, and a zmm holds one word of the
 * 16 output channels of a weight panel, so per word and pixel the kernel runs vpandd (the
 * pixel's word broadcast {1to16}), vpopcntd, vpaddd over 16 channels: 3 vector uops per 512
 * bit pairs, as the GEMM, but with no K padding to 64-bit words:
 *   MQ_BS_DIR_C16  C = 16, 3x3: 5 words per pixel and plane (144 of 160 bits used; the GEMM
 *                  layouts spend 3 x 64 = 192): for kernel row r < 3 the taps s = 0, 1 as one
 *                  word (one unaligned load), then (r 0, s 2) | (r 1, s 2) << 16 (built per
 *                  output row), then (r 2, s 2) with a zero upper half in the weights;
 *   MQ_BS_DIR_C32  C = 32, 3x3: 9 words, tap (r, s) in word r * 3 + s (all 288 bits used).
 * Strides 1 and 2, any padding and pad code, any widths (per-channel weight bits included).
 * Weights: mq_bs_pack_weights_dir(w, row_bits, N, C, R, S, out), w [N][R*S*C] in (r, s, c)
 * order. mq_bs_conv_dir: C[M][ldc] for the n*P*Q output pixels of the NHWC codes, exactly
 * im2col + mq_bs_gemm_ref (padding taps read pad_code); nthreads threads over output rows (the
 * results do not depend on it). Other tiers run conv_dir_scalar (bitserial.c), the twin, on the
 * same rows and threads. mq_bs_conv_dir_ok(C, R, S, stride, W): the shapes it takes. */
#define MQ_BS_DIR_C16 1
#define MQ_BS_DIR_C32 2
int mq_bs_conv_dir_ok(int C, int R, int S, int stride, int W);
/* Where the runtime (and bench_layers) runs it: mq_bs_conv_dir_ok and weights of at most 4 bits
 * (wider panels run the tile with B a loop bound, slower than the GEMM layouts' unrolled tiles). */
int mq_bs_conv_dir_pays(int C, int R, int S, int stride, int W, int max_wbits);
mixq_status mq_bs_pack_weights_dir(const int8_t *w, const int *row_bits, int N, int C, int R,
                                   int S, mq_bs_weights *out);
mixq_status mq_bs_conv_dir(const uint8_t *codes, int n, int H, int W, int C, int R, int S,
                           int stride, int pad, uint8_t pad_code, int a_bits,
                           const mq_bs_weights *w, mq_bs_tier tier, int nthreads,
                           mq_bs_seg_scratch *sc, int32_t *out, int ldc);

/* ---------------------------------------------------------------- GEMM */
/* C[M][N] (ldc = N) from packed operands, on the tier of mq_bs_tier_select and mq_threads()
 * threads. a->K must equal w->K (MIXQ_ERR_SHAPE). */
mixq_status mq_bs_gemm(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C);
/* Same with an explicit row stride (ldc >= N), tier and thread count (>= 1). Results are
 * identical for every tier and thread count. */
mixq_status mq_bs_gemm_ex(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                          mq_bs_tier tier, int nthreads);

/* Reference: plain integer loops over the unpacked values, with the same validation as the
 * packers (widths, ranges, K limit). C[M][N]. */
mixq_status mq_bs_gemm_ref(const uint8_t *a, int a_bits, const int8_t *w, const int *row_bits,
                           int M, int N, int K, int32_t *C);

/* ---------------------------------------------------------------- tier entry points
 * Internal to src/kernels/bitserial*.c; declared here so each tier can live in its own
 * translation unit. *_compiled() says whether the build has real code for the tier (x86-64 with
 * GCC or clang); the others must only be called when mq_bs_tier_available says so.
 *   pack: rows m0..m1-1 of A into out (which already has M, K, a_bits, kw, buffers set);
 *         writes every word of those pixels (including K padding) and rowsum; returns nonzero
 *         if some value exceeds a_bits (out is then unspecified).
 *   gemm: activation panels p0..p1-1 against every weight panel. */
typedef struct mq_bs_conv_geo { /* a convolution as mq_bs_pack_conv takes it; P x Q output */
    int n, H, W, C, R, S, stride, pad, P, Q;
} mq_bs_conv_geo;
/*   conv rows: the rows of out (already reserved: M = n*P*Q, K = R*S*C) from pix (the input
 *         pixels packed, C bits per plane, then one padding panel at padp whose every slot holds
 *         pad_code's planes; padsum = pad_code * C): every word and rowsum of rows 0..M-1 (the
 *         padding rows of a last short panel are left to the caller). The AVX-512 one serves
 *         the avx512 and vpopcnt tiers; bitserial.c holds the scalar twin. */
void mq_bs_conv_rows_avx512(const mq_bs_conv_geo *g, const mq_bs_acts *pix, const uint64_t *padp,
                            int32_t padsum, mq_bs_acts *out);
/* mq_bs_pack_conv_seg's geometry: HP = H + 2 pad padded rows of RW words per plane (pixel x of
 * the padded row at bit x * C), seg = S * C bits in segw words per kernel row. */
typedef struct mq_bs_seg_geo {
    int n, H, W, C, R, S, stride, pad, P, Q, HP, RW, seg, segw;
} mq_bs_seg_geo;
/*   dir rows: mq_bs_conv_dir's output rows o0..o1-1 (o = i * P + y) from the plane rows; tmp:
 *         mq_bs_dir_tmp_bytes(g, ab) bytes, 64-byte aligned (bitserial_dir.c). */
size_t mq_bs_dir_tmp_bytes(const mq_bs_seg_geo *g, int ab);
void mq_bs_conv_dir_rows_vpopcnt(const mq_bs_seg_geo *g, const uint64_t *rows, int ab,
                                 const mq_bs_weights *w, int32_t *C, int ldc, int o0, int o1,
                                 uint8_t *tmp);
/*   seg rows: every word and rowsum of rows 0..M-1 of out (reserved: K = R * 64) from the plane
 *         rows, for segw == 1 and stride * C <= 64 (8 rows' loads within 64 bytes of the first);
 *         AVX-512BW (avx512 and vpopcnt tiers; one body, bitserial_seg_rows.h);
 *         conv_seg_rows_scalar in bitserial.c is their twin. */
void mq_bs_conv_seg_rows_avx512(const mq_bs_seg_geo *g, const uint64_t *rows, mq_bs_acts *out);
/* The same with vpermb and vpopcntq (bitserial_gfni.c): the vpopcnt tier's where
 * mq_bs_gfni_available(). */
void mq_bs_conv_seg_rows_gfni(const mq_bs_seg_geo *g, const uint64_t *rows, mq_bs_acts *out);
/*   seg image rows (GFNI): the plane rows of the image rows (padded rows pad .. pad + H - 1,
 *         every word, the pad columns holding pad_code) straight from the codes [n][H][W * C],
 *         the vpopcnt tier's where mq_bs_gfni_available(); nonzero if a code exceeds ab bits.
 *         Elsewhere mq_bs_pack_conv_seg packs the image rows with mq_bs_pack_acts_ex and shifts
 *         them into place (bitserial.c). */
int mq_bs_seg_image_rows_gfni(const uint8_t *codes, const mq_bs_seg_geo *g, uint8_t pad_code,
                              int ab, uint64_t *rows);
/* The shortest K (in 64-bit words) from which a tier's carry-save tree runs: MIXQ_BS_HS_MIN_KW
 * if set and not empty (benchmarks, tests), else the tier's default dflt. */
int mq_bs_hs_min_kw(int dflt);
/* The avx512 tier's: its carry-save tree (on tplanes) from this many words, the nibble table
 * below. AMD Zen 5, 1 thread, 256 x 64 GEMMs W1A1 / W2A2, the tree against the table: kw 5
 * 0.94x / 0.99x, kw 6 1.02-1.06x / 1.12x, kw 7 1.0x / 0.91x (three partial blocks), kw 8
 * 1.18-1.21x / 1.26x, kw 9 1.09x / 1.17x, kw 12 1.31x / 1.39x. (On the 64-bit layout, whose
 * tree ends cost twice as much, a Cascade Lake Xeon had the tree lose 25 % at K = 288, tie at
 * 768 and win from 1152: its minimum was 16.) */
#define MQ_BS_AVX512_HS_MIN_KW 8
int mq_bs_avx512_hs_min_kw(void);
/* The avx2 tier's carry-save tree from this many words: off unless MIXQ_BS_HS_MIN_KW is set
 * (bitserial_avx2.c says why); below it, the nibble tables. Both on planes. */
int mq_bs_avx2_hs_min_kw(void);
/* 1 if the tier's kernel for K of kw words runs on its own copy of the planes (tplanes). */
int mq_bs_tier_copy_wanted(mq_bs_tier t, int kw);
/* Tier t's copy of w's planes (layouts above), allocated; NULL if out of memory (error set) or
 * the tier has none (mq_bs_tier_copy_wanted). */
uint64_t *mq_bs_weights_tier_copy(const mq_bs_weights *w, mq_bs_tier t);
int mq_bs_avx2_compiled(void);
int mq_bs_avx512_compiled(void);
int mq_bs_vpopcnt_compiled(void);
int mq_bs_pack_rows_avx2(const uint8_t *a, int m0, int m1, mq_bs_acts *out);
int mq_bs_pack_rows_avx512(const uint8_t *a, int m0, int m1, mq_bs_acts *out);
/* GFNI + AVX512-VBMI + VPOPCNTDQ packer (bitserial_gfni.c), the vpopcnt tier's where
 * mq_bs_gfni_available() says the CPU has all three; same contract as the others. */
int mq_bs_gfni_compiled(void);
int mq_bs_gfni_available(void);
int mq_bs_pack_rows_gfni(const uint8_t *a, int m0, int m1, mq_bs_acts *out);
void mq_bs_gemm_panels_avx2(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                            int p0, int p1);
/* The same with the carry-save tree (kw >= mq_bs_avx2_hs_min_kw()). */
void mq_bs_gemm_panels_avx2_hs(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                               int p0, int p1);
void mq_bs_gemm_panels_avx512(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                              int p0, int p1);
void mq_bs_gemm_panels_vpopcnt(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C,
                               int ldc, int p0, int p1);

#endif
