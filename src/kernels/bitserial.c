/* Bit-serial GEMM: API, validation, packing, tier dispatch, the scalar tier and the reference.
 *
 * Buffers (full description in bitserial.h):
 *   A      uint8_t [M][K]   unsigned a_bits-bit activations (a_bits 1..8)
 *   W      int8_t  [N][K]   signed weights, row n two's complement in row_bits[n] bits (2..8) or
 *                           +-1 (1 bit, bit = 1 <=> +1)
 *   C      int32_t [M][ldc] C[m][n] = sum_k A[m][k] W[n][k], K <= 65536
 *   acts   uint64_t [ceil(M/8)][a_bits][ceil(K/64)][8]   + rowsum int32_t [ceil(M/8)*8]
 *   wts    uint64_t per 16-row panel p: [B_p][ceil(K/64)][16], B_p in 1..8
 * The scalar tier (tile 8 pixels x 16 channels, int64 accumulators, __builtin_popcountll) is the
 * fallback on every machine; mq_bs_gemm_ref is the plain-loop twin of all tiers. */
#include "kernels/bitserial.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "core/core.h"
#include "quant/quant.h"

/* ---------------------------------------------------------------- tiers */
/* One name per mq_bs_tier, in enum order. */
static const char *const tier_names[] = {
    "scalar",  /* MQ_BS_TIER_SCALAR */
    "avx2",    /* MQ_BS_TIER_AVX2 */
    "avx512",  /* MQ_BS_TIER_AVX512 */
    "vpopcnt", /* MQ_BS_TIER_VPOPCNT */
};
_Static_assert(MQ_COUNTOF(tier_names) == MQ_BS_TIER_COUNT, "tier_names: one name per mq_bs_tier");

const char *mq_bs_tier_name(mq_bs_tier t) {
    if ((int)t < 0 || t >= MQ_BS_TIER_COUNT) return "?";
    return tier_names[t];
}

/* CPU feature test; __builtin_cpu_supports also checks XCR0 (OS-saved ymm/zmm state). */
static int cpu_has(mq_bs_tier t) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    switch (t) {
    case MQ_BS_TIER_SCALAR: return 1;
    case MQ_BS_TIER_AVX2: return __builtin_cpu_supports("avx2") != 0;
    case MQ_BS_TIER_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    case MQ_BS_TIER_VPOPCNT:
#if defined(MQ_BS_EMULATE_VPOPCNT) /* development builds only, see bitserial_vpopcnt.c */
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vpopcntdq");
#endif
    default: return 0;
    }
#else
    return t == MQ_BS_TIER_SCALAR;
#endif
}

/* The vpopcnt tier's activation packer: the GFNI one (bitserial_gfni.c) where the CPU has GFNI,
 * AVX512-VBMI and VPOPCNTDQ (every VPOPCNTDQ CPU so far: Ice Lake and later, Zen 4 / 5), else the
 * AVX-512BW one. */
int mq_bs_gfni_available(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return mq_bs_gfni_compiled() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi") &&
           __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("gfni");
#else
    return 0;
#endif
}

int mq_bs_tier_available(mq_bs_tier t) {
    switch (t) {
    case MQ_BS_TIER_SCALAR: return 1;
    case MQ_BS_TIER_AVX2: return mq_bs_avx2_compiled() && cpu_has(t);
    case MQ_BS_TIER_AVX512: return mq_bs_avx512_compiled() && cpu_has(t);
    case MQ_BS_TIER_VPOPCNT: return mq_bs_vpopcnt_compiled() && cpu_has(t);
    default: return 0;
    }
}

mq_bs_tier mq_bs_tier_best(void) {
    for (int t = MQ_BS_TIER_COUNT - 1; t > 0; t--)
        if (mq_bs_tier_available((mq_bs_tier)t)) return (mq_bs_tier)t;
    return MQ_BS_TIER_SCALAR;
}

static void available_list(char *buf, size_t n) {
    buf[0] = 0;
    for (int t = MQ_BS_TIER_COUNT - 1; t >= 0; t--) {
        if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", len ? ", " : "", tier_names[t]);
    }
}

mixq_status mq_bs_tier_parse(const char *name, mq_bs_tier *out) {
    if (!name || !out) return mq_err(MIXQ_ERR_ARG, "bit-serial tier: NULL argument");
    if (strcmp(name, "auto") == 0) {
        *out = mq_bs_tier_best();
        return MIXQ_OK;
    }
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++)
        if (strcmp(name, tier_names[t]) == 0) {
            *out = (mq_bs_tier)t;
            return MIXQ_OK;
        }
    return mq_err(MIXQ_ERR_ARG,
                  "bit-serial tier '%s' unknown; hint: use vpopcnt, avx512, avx2, scalar or auto",
                  name);
}

int mq_bs_hs_min_kw(int dflt) {
    const char *e = getenv("MIXQ_BS_HS_MIN_KW");
    return e && *e ? atoi(e) : dflt;
}

static mixq_status need_tier(mq_bs_tier t, const char *origin) {
    if ((int)t < 0 || t >= MQ_BS_TIER_COUNT)
        return mq_err(MIXQ_ERR_ARG, "bit-serial tier %d out of range (%s)", (int)t, origin);
    if (mq_bs_tier_available(t)) return MIXQ_OK;
    char avail[64];
    available_list(avail, sizeof avail);
    return mq_err(MIXQ_ERR_UNSUPPORTED,
                  "bit-serial tier '%s' (%s) is not supported by this %s; hint: available here: %s",
                  tier_names[t], origin, cpu_has(t) ? "build" : "CPU", avail);
}

mixq_status mq_bs_tier_select(mq_bs_tier *out) {
    if (!out) return mq_err(MIXQ_ERR_ARG, "bit-serial tier: NULL argument");
    const char *env = getenv("MIXQ_BITSERIAL_TIER");
    if (!env || !env[0]) {
        *out = mq_bs_tier_best();
        return MIXQ_OK;
    }
    mq_bs_tier t = MQ_BS_TIER_SCALAR;
    if (mq_bs_tier_parse(env, &t) != MIXQ_OK)
        return mq_err(MIXQ_ERR_ARG,
                      "MIXQ_BITSERIAL_TIER='%s' is not a tier; hint: use vpopcnt, avx512, avx2, "
                      "scalar or auto",
                      env);
    mixq_status s = need_tier(t, "forced by MIXQ_BITSERIAL_TIER");
    if (s) return s;
    *out = t;
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- validation */
static mixq_status check_dims(int M, int N, int K, const char *what) {
    if (M < 1 || N < 1)
        return mq_err(MIXQ_ERR_ARG, "%s: M = %d, N = %d; hint: both must be >= 1", what, M, N);
    if (K < 1 || K > MQ_BS_MAX_K)
        return mq_err(MIXQ_ERR_ARG, "%s: K = %d out of range 1..%d (int32 results)", what, K,
                      MQ_BS_MAX_K);
    return MIXQ_OK;
}

/* The b-bit two's complement range of a weight row: the quantizer's symmetric levels
 * (mq_levels) and the one code below them; 1-bit rows hold +-1 only. */
static void weight_range(int b, int *lo, int *hi) {
    mq_levels(b, 1, lo, hi);
    if (b > 1) *lo -= 1;
}

static int weight_ok(int v, int b) {
    if (b == 1) return v == -1 || v == 1;
    int lo, hi;
    weight_range(b, &lo, &hi);
    return v >= lo && v <= hi;
}

static mixq_status check_weights(const int8_t *w, const int *row_bits, int N, int K,
                                 const char *what) {
    if (!w || !row_bits) return mq_err(MIXQ_ERR_ARG, "%s: NULL weights or row_bits", what);
    for (int n = 0; n < N; n++) {
        int b = row_bits[n];
        if (b < 1 || b > MQ_BS_MAX_BITS)
            return mq_err(MIXQ_ERR_ARG, "%s: row %d has %d weight bits; hint: use 1..8", what, n,
                          b);
        const int8_t *row = w + (size_t)n * (size_t)K;
        for (int k = 0; k < K; k++)
            if (!weight_ok(row[k], b)) {
                int lo, hi;
                weight_range(b, &lo, &hi);
                if (b == 1)
                    return mq_err(MIXQ_ERR_ARG,
                                  "%s: row %d element %d is %d, but 1-bit weights must be -1 or "
                                  "+1 (bit 1 = +1, bit 0 = -1)",
                                  what, n, k, row[k]);
                return mq_err(MIXQ_ERR_ARG,
                              "%s: row %d element %d is %d, outside the %d-bit two's complement "
                              "range %d..%d",
                              what, n, k, row[k], b, lo, hi);
            }
    }
    return MIXQ_OK;
}

static mixq_status bad_act(const uint8_t *a, int a_bits, int M, int K, const char *what) {
    int maxv;
    mq_levels(a_bits, 0, NULL, &maxv);
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            int v = a[(size_t)m * (size_t)K + (size_t)k];
            if (v > maxv)
                return mq_err(MIXQ_ERR_ARG,
                              "%s: activation row %d element %d is %d, above the %d-bit maximum "
                              "%d; hint: clamp or requantize to a_bits",
                              what, m, k, v, a_bits, maxv);
        }
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- weights */
void mq_bs_weights_free(mq_bs_weights *w) {
    if (!w) return;
    free(w->bits);
    free(w->rows);
    free(w->contig);
    free(w->off);
    free(w->col);
    free(w->planes);
    free(w->tplanes);
    free(w->row_bits);
    memset(w, 0, sizeof *w);
}

/* mq_bs_pack_weights_dir's word and bit of element k = (r, s, c) (bitserial.h). */
static void dir_pos(int dir, int k, int *word, int *bit) {
    if (dir == MQ_BS_DIR_C32) {
        *word = k / 32, *bit = k % 32;
        return;
    }
    const int r = k / 48, s = k / 16 % 3, c = k % 16;
    if (s < 2) *word = r, *bit = s * 16 + c;
    else if (r < 2) *word = 3, *bit = r * 16 + c;
    else *word = 4, *bit = c;
}

/* The weight layouts: element k of a row at bit (k / seg) * segw * 64 + k % seg of the packed
 * row, segw = ceil(seg / 64); plain (seg == K): bit k, and K stays K (segmented: kw * 64, as
 * mq_bs_pack_conv_seg's activations have it); dir != 0: mq_bs_pack_weights_dir's layout (kw
 * words of 32 bits at dir_pos, slots in column order). */
static mixq_status pack_weights(const int8_t *w, const int *row_bits, int N, int K, int seg,
                                int plain, int dir, mq_bs_weights *out) {
    const char *what = "bit-serial weight packing";
    if (!out) return mq_err(MIXQ_ERR_ARG, "%s: NULL output", what);
    memset(out, 0, sizeof *out);
    mixq_status s = check_dims(1, N, K, what);
    if (s) return s;
    if (seg < 1 || K % seg)
        return mq_err(MIXQ_ERR_ARG, "%s: segment of %d elements does not divide K = %d", what,
                      seg, K);
    const int segw = (seg + 63) / 64;
    if ((int64_t)(K / seg) * segw * 64 > MQ_BS_MAX_K)
        return mq_err(MIXQ_ERR_ARG, "%s: K = %d in segments of %d pads to %lld > %d", what, K, seg,
                      (long long)(K / seg) * segw * 64, MQ_BS_MAX_K);
    s = check_weights(w, row_bits, N, K, what);
    if (s) return s;

    const int kw = dir ? (dir == MQ_BS_DIR_C16 ? 5 : K / 32) : K / seg * segw;
    const int panels = (N + MQ_BS_NR - 1) / MQ_BS_NR;
    /* rows sorted by (bits, index): counting sort over the widths */
    int *order = mq_malloc((size_t)N, sizeof *order, "bit-serial row order");
    if (!order) return MIXQ_ERR_NOMEM;
    int cnt = 0;
    for (int b = 1; b <= MQ_BS_MAX_BITS; b++)
        for (int n = 0; n < N; n++)
            if (row_bits[n] == b) order[cnt++] = n;

    out->N = N;
    out->K = plain || dir ? K : kw * 64;
    out->kw = kw;
    out->dir = dir;
    out->panels = panels;
    out->bits = mq_malloc((size_t)panels, sizeof *out->bits, "bit-serial panel bits");
    out->rows = mq_malloc((size_t)panels, sizeof *out->rows, "bit-serial panel rows");
    out->contig = mq_malloc((size_t)panels, 1, "bit-serial panel flags");
    out->off = mq_malloc((size_t)panels, sizeof *out->off, "bit-serial panel offsets");
    out->col = mq_malloc((size_t)panels * MQ_BS_NR, sizeof *out->col, "bit-serial columns");
    out->row_bits = mq_malloc((size_t)N, sizeof *out->row_bits, "bit-serial row bits");
    if (!out->bits || !out->rows || !out->contig || !out->off || !out->col || !out->row_bits) {
        free(order);
        mq_bs_weights_free(out);
        return MIXQ_ERR_NOMEM;
    }
    memcpy(out->row_bits, row_bits, (size_t)N * sizeof *row_bits);

    size_t words = 0;
    for (int p = 0; p < panels; p++) {
        int nrows = MQ_MIN(MQ_BS_NR, N - p * MQ_BS_NR), B = 1, contig = 1;
        for (int c = 0; c < MQ_BS_NR; c++) {
            int n = c < nrows ? order[p * MQ_BS_NR + c] : -1;
            out->col[p * MQ_BS_NR + c] = n;
            if (n >= 0) {
                B = MQ_MAX(B, row_bits[n]);
                if (n != out->col[p * MQ_BS_NR] + c) contig = 0;
            }
        }
        if (contig && nrows == MQ_BS_NR && !dir) { /* interleave the full panel (layout above) */
            const int c0 = out->col[p * MQ_BS_NR];
            for (int c = 0; c < MQ_BS_NR / 2; c++) {
                out->col[p * MQ_BS_NR + c] = c0 + 2 * c;
                out->col[p * MQ_BS_NR + MQ_BS_NR / 2 + c] = c0 + 2 * c + 1;
            }
            contig = 2;
        }
        out->bits[p] = B;
        out->rows[p] = nrows;
        out->contig[p] = (uint8_t)contig;
        out->off[p] = words;
        words += (size_t)B * (size_t)kw * MQ_BS_NR / (dir ? 2 : 1);
        out->plane_rows += (int64_t)MQ_BS_NR * B;
    }
    free(order);
    out->planes = mq_alloc_aligned(words * sizeof(uint64_t), "bit-serial weight planes");
    if (!out->planes) {
        mq_bs_weights_free(out);
        return MIXQ_ERR_NOMEM;
    }
    for (int p = 0; p < panels; p++) {
        const int B = out->bits[p];
        uint64_t *P = out->planes + out->off[p];
        for (int c = 0; c < out->rows[p]; c++) {
            const int8_t *row = w + (size_t)out->col[p * MQ_BS_NR + c] * (size_t)K;
            for (int k = 0; k < K; k++) {
                /* B == 1: bit = (v == +1); B >= 2: the low B bits of the two's complement byte */
                const unsigned v = B == 1 ? (row[k] > 0) : (unsigned)(uint8_t)row[k];
                if (dir) {
                    int word, bit;
                    dir_pos(dir, k, &word, &bit);
                    uint32_t *P32 = (uint32_t *)P;
                    for (int i = 0; i < B; i++)
                        if ((v >> i) & 1u) P32[((size_t)i * kw + (size_t)word) * MQ_BS_NR + c] |= (uint32_t)1 << bit;
                    continue;
                }
                const int pos = k / seg * segw * 64 + k % seg;
                const uint64_t bit = (uint64_t)1 << (pos & 63);
                for (int i = 0; i < B; i++)
                    if ((v >> i) & 1u) P[((size_t)i * kw + (size_t)(pos >> 6)) * MQ_BS_NR + c] |= bit;
            }
        }
    }
    return MIXQ_OK;
}

int mq_bs_avx512_hs_min_kw(void) { return mq_bs_hs_min_kw(MQ_BS_AVX512_HS_MIN_KW); }
int mq_bs_avx2_hs_min_kw(void) { return mq_bs_hs_min_kw(INT_MAX); }

int mq_bs_tier_copy_wanted(mq_bs_tier t, int kw) {
    if (t == MQ_BS_TIER_AVX512) return kw >= mq_bs_avx512_hs_min_kw();
    return 0;
}

uint64_t *mq_bs_weights_tier_copy(const mq_bs_weights *w, mq_bs_tier t) {
    if (!mq_bs_tier_copy_wanted(t, w->kw) || !w->planes) {
        mq_err(MIXQ_ERR_STATE, "bit-serial weights: the %s tier has no copy of its own at kw = %d",
               mq_bs_tier_name(t), w->kw);
        return NULL;
    }
    const size_t words = (size_t)w->plane_rows * (size_t)w->kw; /* as planes */
    uint64_t *o =
        mq_alloc_aligned(MQ_MAX(words, 1) * sizeof(uint64_t), "bit-serial weight planes (tier copy)");
    if (!o) return NULL;
    for (int p = 0; p < w->panels; p++) { /* the avx512 tier's: the only one there is */
        const uint64_t *P = w->planes + w->off[p];
        const size_t n = (size_t)w->bits[p] * (size_t)w->kw;
        uint32_t *O = (uint32_t *)(o + w->off[p]);
        const int il = w->contig[p] == 2; /* lane l = slot l / 2 (+ 8 for odd l): column c0 + l */
        for (size_t x = 0; x < n; x++)
            for (int l = 0; l < MQ_BS_NR; l++) {
                const uint64_t v = P[x * MQ_BS_NR + (il ? (l & 1) * (MQ_BS_NR / 2) + l / 2 : l)];
                O[x * 2 * MQ_BS_NR + l] = (uint32_t)v;
                O[x * 2 * MQ_BS_NR + MQ_BS_NR + l] = (uint32_t)(v >> 32);
            }
    }
    return o;
}

/* The GEMM layouts, plus the tier copy where the tier this process runs wants one. */
static mixq_status pack_gemm_weights(const int8_t *w, const int *row_bits, int N, int K, int seg,
                                     int plain, mq_bs_weights *out) {
    mixq_status s = pack_weights(w, row_bits, N, K, seg, plain, 0, out);
    mq_bs_tier t;
    if (s || mq_bs_tier_select(&t) != MIXQ_OK || !mq_bs_tier_copy_wanted(t, out->kw)) return s;
    out->tplanes = mq_bs_weights_tier_copy(out, t);
    out->tplanes_tier = (int)t;
    if (!out->tplanes) {
        mq_bs_weights_free(out);
        return MIXQ_ERR_NOMEM;
    }
    return MIXQ_OK;
}

mixq_status mq_bs_pack_weights(const int8_t *w, const int *row_bits, int N, int K,
                               mq_bs_weights *out) {
    return pack_gemm_weights(w, row_bits, N, K, K, 1, out);
}

mixq_status mq_bs_pack_weights_seg(const int8_t *w, const int *row_bits, int N, int K, int seg,
                                   mq_bs_weights *out) {
    return pack_gemm_weights(w, row_bits, N, K, seg, 0, out);
}

int mq_bs_conv_dir_ok(int C, int R, int S, int stride, int W) {
    return (C == 16 || C == 32) && R == 3 && S == 3 && (stride == 1 || stride == 2) && W >= 1 &&
           (int64_t)(W + 2) * C <= MQ_BS_MAX_K;
}

int mq_bs_conv_dir_pays(int C, int R, int S, int stride, int W, int max_wbits) {
    return mq_bs_conv_dir_ok(C, R, S, stride, W) && max_wbits >= 1 && max_wbits <= 4;
}

mixq_status mq_bs_pack_weights_dir(const int8_t *w, const int *row_bits, int N, int C, int R,
                                   int S, mq_bs_weights *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!mq_bs_conv_dir_ok(C, R, S, 1, 1))
        return mq_err(MIXQ_ERR_ARG, "bit-serial weight packing (direct): C %d, %dx%d kernel; hint: "
                      "3x3 with C = 16 or 32 (mq_bs_conv_dir_ok)", C, R, S);
    return pack_weights(w, row_bits, N, R * S * C, R * S * C, 0,
                        C == 16 ? MQ_BS_DIR_C16 : MQ_BS_DIR_C32, out);
}

/* ---------------------------------------------------------------- activations */
void mq_bs_acts_free(mq_bs_acts *a) {
    if (!a) return;
    free(a->bits);
    free(a->rowsum);
    memset(a, 0, sizeof *a);
}

/* Scalar packer: 8 bytes at a time; the multiply gathers bit j of the 8 bytes into the top byte
 * (byte t lands on bit 56 + t; the partial products never overlap, so there are no carries). */
static int pack_rows_scalar(const uint8_t *a, int m0, int m1, mq_bs_acts *out) {
    const int K = out->K, kw = out->kw, ab = out->a_bits;
    const uint8_t hi = (uint8_t)(0xffu << ab & 0xffu);
    unsigned bad = 0;
    for (int m = m0; m < m1; m++) {
        const uint8_t *row = a + (size_t)m * (size_t)K;
        uint64_t *base = out->bits + (size_t)(m / MQ_BS_MR) * ab * kw * MQ_BS_MR + m % MQ_BS_MR;
        int32_t sum = 0;
        for (int w = 0; w < kw; w++) {
            uint8_t chunk[64] = {0};
            const int n = MQ_MIN(64, K - 64 * w);
            memcpy(chunk, row + 64 * w, (size_t)n);
            uint64_t x[8];
            for (int g = 0; g < 8; g++) {
                uint64_t v = 0;
                for (int t = 0; t < 8; t++) v |= (uint64_t)chunk[8 * g + t] << (8 * t);
                x[g] = v;
            }
            for (int t = 0; t < 64; t++) {
                sum += chunk[t];
                bad |= chunk[t] & hi;
            }
            for (int j = 0; j < ab; j++) {
                uint64_t word = 0;
                for (int g = 0; g < 8; g++)
                    word |= ((((x[g] >> j) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56)
                            << (8 * g);
                base[((size_t)j * kw + (size_t)w) * MQ_BS_MR] = word;
            }
        }
        out->rowsum[m] = sum;
    }
    return bad != 0;
}

/* A 64-byte aligned buffer *p of at least n elements of size bytes: reallocated (contents lost)
 * when its capacity *cap (elements) is smaller; what names it in an out-of-memory message. */
static mixq_status reserve_aligned(void **p, size_t *cap, size_t n, size_t size, const char *what) {
    if (n <= *cap) return MIXQ_OK;
    free(*p);
    *p = mq_alloc_aligned(n * size, what);
    *cap = *p ? n : 0;
    return *p ? MIXQ_OK : MIXQ_ERR_NOMEM;
}

mixq_status mq_bs_acts_reserve(mq_bs_acts *out, int M, int K, int a_bits) {
    const int kw = (K + 63) / 64, panels = (M + MQ_BS_MR - 1) / MQ_BS_MR;
    const size_t rows = (size_t)panels * MQ_BS_MR;
    const size_t per = (size_t)a_bits * (size_t)kw * MQ_BS_MR;
    if (per > SIZE_MAX / sizeof(uint64_t) / (size_t)panels)
        return mq_err(MIXQ_ERR_NOMEM, "bit-serial activation packing: %d x %d activations too "
                      "large", M, K);
    mixq_status s = reserve_aligned((void **)&out->bits, &out->cap_words, per * (size_t)panels,
                                    sizeof(uint64_t), "bit-serial activation planes");
    if (!s) s = reserve_aligned((void **)&out->rowsum, &out->cap_rows, rows, sizeof(int32_t),
                                "bit-serial activation sums");
    if (s) return s;
    out->M = M;
    out->K = K;
    out->a_bits = a_bits;
    out->kw = kw;
    out->panels = panels;
    return MIXQ_OK;
}

/* Padding pixels M.. of the last panel: zero planes, zero sums (the buffer may be reused). */
static void zero_pad_rows(mq_bs_acts *out) {
    const int M = out->M, kw = out->kw, ab = out->a_bits;
    if (M % MQ_BS_MR == 0) return;
    uint64_t *last = out->bits + (size_t)(out->panels - 1) * (size_t)ab * kw * MQ_BS_MR;
    const int r0 = M % MQ_BS_MR;
    /* a fixed 8-slot loop (a blend per line): with the loop starting at r0, GCC made each line a
     * rep stosq, ~35 cycles a line, 0.4 us for a 4-row K = 4608 layer (a tenth of its GEMM) */
    for (size_t jw = 0; jw < (size_t)ab * (size_t)kw; jw++) {
        uint64_t *line = last + jw * MQ_BS_MR;
        for (int r = 0; r < MQ_BS_MR; r++) line[r] = r < r0 ? line[r] : 0;
    }
    for (int m = M; m < out->panels * MQ_BS_MR; m++) out->rowsum[m] = 0;
}

mixq_status mq_bs_pack_acts_ex(const uint8_t *a, int a_bits, int M, int K, mq_bs_tier tier,
                               mq_bs_acts *out) {
    const char *what = "bit-serial activation packing";
    if (!out) return mq_err(MIXQ_ERR_ARG, "%s: NULL output", what);
    if (!a) return mq_err(MIXQ_ERR_ARG, "%s: NULL activations", what);
    mixq_status s = check_dims(M, 1, K, what);
    if (s) return s;
    if (a_bits < 1 || a_bits > MQ_BS_MAX_BITS)
        return mq_err(MIXQ_ERR_ARG, "%s: a_bits = %d; hint: use 1..8", what, a_bits);
    s = need_tier(tier, "activation packing");
    if (s) return s;

    s = mq_bs_acts_reserve(out, M, K, a_bits);
    if (s) return s;
    int bad;
    if (tier == MQ_BS_TIER_VPOPCNT && mq_bs_gfni_available())
        bad = mq_bs_pack_rows_gfni(a, 0, M, out);
    else if (tier == MQ_BS_TIER_AVX512 || tier == MQ_BS_TIER_VPOPCNT)
        bad = mq_bs_pack_rows_avx512(a, 0, M, out);
    else if (tier == MQ_BS_TIER_AVX2)
        bad = mq_bs_pack_rows_avx2(a, 0, M, out);
    else
        bad = pack_rows_scalar(a, 0, M, out);
    if (bad) return bad_act(a, a_bits, M, K, what);
    zero_pad_rows(out);
    return MIXQ_OK;
}

/* The rows of a convolution's packed im2col matrix from its packed input pixels (the scalar
 * twin of mq_bs_conv_rows_avx512; both as bitserial.h says). Output row by output row (image i,
 * row p: Q pixels), tap by tap: the taps of one kernel position (r, t) read input row h at
 * columns q * stride - pad + t, inside the image for q in [qlo, qhi) and padding outside, so the
 * bounds are worked out once per row and tap, not per pixel; each row's words then come from its
 * pixel of pix (or the padding panel padp). */
static void conv_rows_scalar(const mq_bs_conv_geo *g, const mq_bs_acts *pix, const uint64_t *padp,
                             int32_t padsum, mq_bs_acts *out) {
    const int n = g->n, H = g->H, W = g->W, R = g->R, S = g->S, stride = g->stride, pad = g->pad;
    const int P = g->P, Q = g->Q, cw = g->C / 64, kw = out->kw, ab = out->a_bits;
    const size_t pix_stride = (size_t)ab * cw * MQ_BS_MR; /* words per 8-pixel panel of pix */
    const size_t out_stride = (size_t)ab * kw * MQ_BS_MR; /* words per 8-row panel of out */
    for (int i = 0; i < n; i++)
        for (int p = 0; p < P; p++) {
            const int64_t mrow = ((int64_t)i * P + p) * Q;
            for (int q = 0; q < Q; q++) out->rowsum[mrow + q] = 0;
            for (int r = 0; r < R; r++) {
                const int h = p * stride - pad + r;
                const int hin = h >= 0 && h < H;
                for (int t = 0; t < S; t++) {
                    const size_t tapoff = (size_t)(r * S + t) * cw * MQ_BS_MR;
                    int qlo = 0, qhi = 0; /* 0 <= q * stride - pad + t < W */
                    if (hin && W - 1 + pad - t >= 0) {
                        qlo = pad - t > 0 ? (pad - t + stride - 1) / stride : 0;
                        qhi = MQ_MIN(Q, (W - 1 + pad - t) / stride + 1);
                        if (qlo > qhi) qlo = qhi;
                    }
                    const size_t rowpix = ((size_t)i * H + (size_t)(hin ? h : 0)) * W;
                    for (int q = 0; q < Q; q++) {
                        const int64_t m = mrow + q;
                        uint64_t *d = out->bits + (size_t)(m / MQ_BS_MR) * out_stride +
                                      (size_t)(m % MQ_BS_MR) + tapoff;
                        const uint64_t *src = padp;
                        int32_t rs = padsum;
                        if (q >= qlo && q < qhi) {
                            const size_t pp = rowpix + (size_t)(q * stride - pad + t);
                            src = pix->bits + (pp / MQ_BS_MR) * pix_stride + pp % MQ_BS_MR;
                            rs = pix->rowsum[pp];
                        }
                        for (int j = 0; j < ab; j++) {
                            uint64_t *dj = d + (size_t)j * kw * MQ_BS_MR;
                            const uint64_t *sj = src + (size_t)j * cw * MQ_BS_MR;
                            for (int c = 0; c < cw; c++) dj[(size_t)c * MQ_BS_MR] = sj[(size_t)c * MQ_BS_MR];
                        }
                        out->rowsum[m] += rs;
                    }
                }
            }
        }
}

/* The conv packers' common checks: activation width and padding code, kernel within the padded
 * input. */
static mixq_status check_conv_args(int a_bits, uint8_t pad_code, int H, int W, int R, int S,
                                   int pad, const char *what) {
    if (a_bits < 1 || a_bits > MQ_BS_MAX_BITS || pad_code >> a_bits)
        return mq_err(MIXQ_ERR_ARG, "%s: a_bits %d, padding code %d; hint: a_bits in 1..8 and a "
                      "padding code below 2^a_bits", what, a_bits, pad_code);
    if (H + 2 * pad < R || W + 2 * pad < S)
        return mq_err(MIXQ_ERR_ARG, "%s: a %dx%d kernel does not fit a %dx%d input padded by %d",
                      what, R, S, H, W, pad);
    return MIXQ_OK;
}

mixq_status mq_bs_pack_conv(const uint8_t *codes, int n, int H, int W, int C, int R, int S,
                            int stride, int pad, uint8_t pad_code, int a_bits, mq_bs_tier tier,
                            mq_bs_acts *pix, mq_bs_acts *out) {
    const char *what = "bit-serial convolution packing";
    if (!codes || !pix || !out) return mq_err(MIXQ_ERR_ARG, "%s: NULL argument", what);
    if (n < 1 || H < 1 || W < 1 || R < 1 || S < 1 || stride < 1 || pad < 0 || C < 64 || C % 64)
        return mq_err(MIXQ_ERR_ARG, "%s: n %d, H %d, W %d, C %d, R %d, S %d, stride %d, pad %d; "
                      "hint: C must be a positive multiple of 64", what, n, H, W, C, R, S, stride, pad);
    mixq_status cs = check_conv_args(a_bits, pad_code, H, W, R, S, pad, what);
    if (cs) return cs;
    const int P = (H + 2 * pad - R) / stride + 1, Q = (W + 2 * pad - S) / stride + 1;
    const int64_t npix = (int64_t)n * H * W, M = (int64_t)n * P * Q, K = (int64_t)R * S * C;
    if (npix > INT32_MAX - MQ_BS_MR || M > INT32_MAX || K > MQ_BS_MAX_K)
        return mq_err(MIXQ_ERR_ARG, "%s: %lld x %lld activations too large (K at most %d)", what,
                      (long long)M, (long long)K, MQ_BS_MAX_K);
    /* pix gets one extra panel past the packed pixels: the padding panel, every slot holding
     * pad_code's planes, so a padding tap is read like any pixel (no test per word) */
    mixq_status s = mq_bs_acts_reserve(pix, (int)npix + MQ_BS_MR, C, a_bits);
    if (s) return s;
    s = mq_bs_pack_acts_ex(codes, a_bits, (int)npix, C, tier, pix);
    if (s) return s;
    s = mq_bs_acts_reserve(out, (int)M, (int)K, a_bits);
    if (s) return s;
    const int cw = C / 64, ab = a_bits;
    uint64_t *padp = pix->bits + (size_t)pix->panels * (size_t)ab * cw * MQ_BS_MR;
    for (int j = 0; j < ab; j++)
        for (size_t k = 0; k < (size_t)cw * MQ_BS_MR; k++)
            padp[(size_t)j * cw * MQ_BS_MR + k] = (pad_code >> j & 1) ? ~(uint64_t)0 : 0;
    const int32_t padsum = (int32_t)pad_code * C;
    const mq_bs_conv_geo g = {n, H, W, C, R, S, stride, pad, P, Q};
    if (tier == MQ_BS_TIER_AVX512 || tier == MQ_BS_TIER_VPOPCNT)
        mq_bs_conv_rows_avx512(&g, pix, padp, padsum, out);
    else
        conv_rows_scalar(&g, pix, padp, padsum, out);
    zero_pad_rows(out);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- segment-aligned convs */
int mq_bs_conv_seg_ok(int C, int R, int S) {
    if (C < 16 || C % 16 || C % 64 == 0 || R < 1 || S < 1 || (int64_t)S * C > MQ_BS_MAX_K) return 0;
    const int64_t segw = ((int64_t)S * C + 63) / 64;
    return R * segw <= ((int64_t)R * S * C + 63) / 64;
}

int mq_bs_conv_seg_pays(int C, int R, int S, int W) {
    return R * S > 1 && mq_bs_conv_seg_ok(C, R, S) && W >= 1 && (int64_t)W * C <= MQ_BS_MAX_K;
}

void mq_bs_seg_scratch_free(mq_bs_seg_scratch *s) {
    if (!s) return;
    mq_bs_acts_free(&s->pix);
    free(s->rows);
    free(s->tmp);
    memset(s, 0, sizeof *s);
}

/* Set bits b0..b1-1 of the word row w. */
static void set_bits(uint64_t *w, int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1;) {
        const int lo = (int)(b & 63), n = (int)MQ_MIN(64 - lo, b1 - b);
        w[b >> 6] |= (n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1)) << lo;
        b += n;
    }
}

/* Scalar twin of mq_bs_conv_seg_rows_avx512 (bitserial.h): each row's segment words are unaligned
 * 64-bit loads from the padded plane rows, the bits past the segment masked off. */
static void conv_seg_rows_scalar(const mq_bs_seg_geo *g, const uint64_t *rows, mq_bs_acts *out) {
    const int ab = out->a_bits, kw = out->kw, segw = g->segw;
    const size_t os = (size_t)ab * kw * MQ_BS_MR;
    int64_t m = 0;
    for (int i = 0; i < g->n; i++)
        for (int p = 0; p < g->P; p++)
            for (int q = 0; q < g->Q; q++, m++) {
                uint64_t *d = out->bits + (size_t)(m / MQ_BS_MR) * os + (size_t)(m % MQ_BS_MR);
                int32_t rs = 0;
                for (int r = 0; r < g->R; r++) {
                    const uint64_t *row =
                        rows + ((size_t)i * g->HP + (size_t)p * g->stride + (size_t)r) * ab * g->RW;
                    const size_t byte = (size_t)q * g->stride * g->C / 8;
                    for (int j = 0; j < ab; j++)
                        for (int w = 0; w < segw; w++) {
                            uint64_t x;
                            memcpy(&x, (const uint8_t *)(row + (size_t)j * g->RW) + byte + 8 * (size_t)w, 8);
                            const int left = g->seg - 64 * w;
                            if (left < 64) x &= ((uint64_t)1 << left) - 1;
                            d[((size_t)j * kw + (size_t)r * segw + (size_t)w) * MQ_BS_MR] = x;
                            rs += __builtin_popcountll(x) << j;
                        }
                }
                out->rowsum[m] = rs;
            }
}

/* The geometry of mq_bs_pack_conv_seg and mq_bs_conv_dir (arguments already checked): P x Q
 * outputs, HP padded rows of RW words per plane (+ 1 word: a segment's or a direct word's last
 * load may pass the row's end), kernel rows of seg = S * C bits in segw words; an error if a
 * count outgrows int or K's bound. */
static mixq_status seg_geo_make(int n, int H, int W, int C, int R, int S, int stride, int pad,
                                const char *what, mq_bs_seg_geo *g) {
    const int P = (H + 2 * pad - R) / stride + 1, Q = (W + 2 * pad - S) / stride + 1;
    const int seg = S * C, segw = (seg + 63) / 64;
    const int64_t M = (int64_t)n * P * Q, rowbits = (int64_t)(W + 2 * pad) * C;
    if (M > INT32_MAX || (int64_t)n * (H + 2 * pad) > INT32_MAX || (int64_t)W * C > MQ_BS_MAX_K ||
        (int64_t)R * segw * 64 > MQ_BS_MAX_K)
        return mq_err(MIXQ_ERR_ARG, "%s: %lld output pixels, rows of %d x %d codes: too large", what,
                      (long long)M, W, C);
    *g = (mq_bs_seg_geo){n, H, W, C, R, S, stride, pad, P, Q, H + 2 * pad, (int)((rowbits + 63) / 64 + 1), seg, segw};
    return MIXQ_OK;
}

/* Steps 1 and 2 of mq_bs_pack_conv_seg (and mq_bs_conv_dir): the padded plane rows of the input
 * into sc->rows, [n][HP][a_bits][RW] words. */
static mixq_status seg_plane_rows(const uint8_t *codes, const mq_bs_seg_geo *gp, uint8_t pad_code,
                                  int a_bits, mq_bs_tier tier, mq_bs_seg_scratch *sc,
                                  const char *what) {
    const mq_bs_seg_geo g = *gp;
    const int n = g.n, H = g.H, W = g.W, C = g.C, pad = g.pad, HP = g.HP;
    const int64_t RW = g.RW, rowbits = (int64_t)(W + 2 * pad) * C;
    /* the plane rows of the padded image, [n][HP][a_bits][RW] words: image row h at padded row
     * h + pad, pixel x at bit (x + pad) * C; padding bits hold pad_code's planes. 64 bytes of
     * slack after the last row for the vector loads. */
    const size_t words = (size_t)n * HP * a_bits * (size_t)RW + 8;
    mixq_status s = reserve_aligned((void **)&sc->rows, &sc->rows_cap, words, sizeof(uint64_t),
                                    "bit-serial plane rows");
    if (s) return s;
    memset(sc->rows + words - 8, 0, 8 * sizeof(uint64_t));
    const int gfni = tier == MQ_BS_TIER_VPOPCNT && mq_bs_gfni_available();
    if (gfni) { /* 1. the image rows straight from the codes */
        if (mq_bs_seg_image_rows_gfni(codes, &g, pad_code, a_bits, sc->rows)) {
            const mixq_status b = bad_act(codes, a_bits, n * H * W, C, what);
            return b ? b : mq_err(MIXQ_ERR_STATE, "%s: the GFNI packer flagged a code in range (a bug)", what);
        }
    } else { /* 1. every image row's W * C codes packed as one row, then shifted into place */
        s = mq_bs_pack_acts_ex(codes, a_bits, n * H, W * C, tier, &sc->pix);
        if (s) { /* name the pixel and channel, not the packed row's element */
            const mixq_status b = bad_act(codes, a_bits, n * H * W, C, what);
            return b ? b : s;
        }
    }
    /* 2. the padding rows, and (without GFNI) the image rows from the packed ones */
    const int kw1 = (W * C + 63) / 64, off = pad * C / 64, sh = pad * C % 64;
    for (int i = 0; i < n; i++)
        for (int hh = 0; hh < HP; hh++) {
            const int h = hh - pad;
            if (gfni && h >= 0 && h < H) continue;
            for (int j = 0; j < a_bits; j++) {
                uint64_t *d = sc->rows + (((size_t)i * HP + hh) * a_bits + j) * (size_t)RW;
                const int vj = pad_code >> j & 1;
                if (h < 0 || h >= H) {
                    for (int64_t w = 0; w < RW; w++) d[w] = 0;
                    if (vj) set_bits(d, 0, rowbits);
                    continue;
                }
                const size_t m = (size_t)i * H + (size_t)h;
                const uint64_t *src = sc->pix.bits + (m / MQ_BS_MR) * (size_t)a_bits * kw1 * MQ_BS_MR +
                                      (size_t)j * kw1 * MQ_BS_MR + m % MQ_BS_MR;
                for (int w = 0; w < off; w++) d[w] = 0;
                uint64_t prev = 0; /* word w - 1 of the packed row */
                for (int w = 0; w < kw1; w++) {
                    const uint64_t x = src[(size_t)w * MQ_BS_MR];
                    d[w + off] = sh ? x << sh | prev >> (64 - sh) : x;
                    prev = x;
                }
                d[kw1 + off] = sh ? prev >> (64 - sh) : 0;
                for (int64_t w = kw1 + off + 1; w < RW; w++) d[w] = 0;
                if (vj) {
                    set_bits(d, 0, (int64_t)pad * C);
                    set_bits(d, (int64_t)(W + pad) * C, rowbits);
                }
            }
        }
    return MIXQ_OK;
}

mixq_status mq_bs_pack_conv_seg(const uint8_t *codes, int n, int H, int W, int C, int R, int S,
                                int stride, int pad, uint8_t pad_code, int a_bits, mq_bs_tier tier,
                                mq_bs_seg_scratch *sc, mq_bs_acts *out) {
    const char *what = "bit-serial convolution packing (segments)";
    if (!codes || !sc || !out) return mq_err(MIXQ_ERR_ARG, "%s: NULL argument", what);
    if (n < 1 || H < 1 || W < 1 || stride < 1 || pad < 0 || !mq_bs_conv_seg_ok(C, R, S))
        return mq_err(MIXQ_ERR_ARG, "%s: n %d, H %d, W %d, C %d, R %d, S %d, stride %d, pad %d; "
                      "hint: C a multiple of 16 (not of 64) whose kernel rows fit as few words as "
                      "the plain layout (mq_bs_conv_seg_ok)", what, n, H, W, C, R, S, stride, pad);
    mixq_status cs = check_conv_args(a_bits, pad_code, H, W, R, S, pad, what);
    if (cs) return cs;
    mq_bs_seg_geo g;
    mixq_status s = seg_geo_make(n, H, W, C, R, S, stride, pad, what, &g);
    if (s) return s;
    const int64_t M = (int64_t)n * g.P * g.Q;
    const int segw = g.segw;
    s = seg_plane_rows(codes, &g, pad_code, a_bits, tier, sc, what);
    if (s) return s;
    const int gfni = tier == MQ_BS_TIER_VPOPCNT && mq_bs_gfni_available();
    /* 3. the rows */
    s = mq_bs_acts_reserve(out, (int)M, (int)(R * segw * 64), a_bits);
    if (s) return s;
    const int vec = segw == 1 && stride * C <= 64;
    if (vec && gfni)
        mq_bs_conv_seg_rows_gfni(&g, sc->rows, out);
    else if (vec && (tier == MQ_BS_TIER_AVX512 || tier == MQ_BS_TIER_VPOPCNT))
        mq_bs_conv_seg_rows_avx512(&g, sc->rows, out);
    else
        conv_seg_rows_scalar(&g, sc->rows, out);
    zero_pad_rows(out);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- direct convolutions */
static uint32_t ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Scalar twin of mq_bs_conv_dir_rows_vpopcnt: output rows o0..o1-1, word by word. */
static void conv_dir_scalar(const mq_bs_seg_geo *g, const uint64_t *rows, int ab,
                            const mq_bs_weights *w, int32_t *out, int ldc, int o0, int o1) {
    const int kw = w->kw, c16 = w->dir == MQ_BS_DIR_C16, px = g->C / 8, st = g->stride;
    uint32_t A[MQ_BS_MAX_BITS][9];
    for (int o = o0; o < o1; o++) {
        const int i = o / g->P, y = o % g->P;
        for (int x = 0; x < g->Q; x++) {
            const uint8_t *row[3];
            int32_t rs = 0;
            for (int j = 0; j < ab; j++) {
                for (int r = 0; r < 3; r++)
                    row[r] = (const uint8_t *)(rows + (((size_t)i * g->HP + (size_t)(y * st + r)) * ab + j) * (size_t)g->RW) +
                             (size_t)x * st * px;
                for (int t = 0; t < kw; t++) {
                    uint32_t v, used = ~0u;
                    if (!c16) v = mq_bs_ld32(row[t / 3] + (t % 3) * px);
                    else if (t < 3) v = mq_bs_ld32(row[t]);
                    else if (t == 3) v = ld16(row[0] + 2 * px) | ld16(row[1] + 2 * px) << 16;
                    else v = mq_bs_ld32(row[2] + 2 * px), used = 0xffffu;
                    A[j][t] = v;
                    rs += __builtin_popcount(v & used) << j;
                }
            }
            int32_t *crow = out + ((size_t)o * g->Q + (size_t)x) * (size_t)ldc;
            for (int p = 0; p < w->panels; p++) {
                const int B = w->bits[p];
                const uint32_t *P32 = (const uint32_t *)(w->planes + w->off[p]);
                for (int c = 0; c < w->rows[p]; c++) {
                    int64_t v = 0;
                    for (int bi = 0; bi < B; bi++)
                        for (int j = 0; j < ab; j++) {
                            int32_t pc = 0;
                            for (int t = 0; t < kw; t++)
                                pc += __builtin_popcount(P32[((size_t)bi * kw + (size_t)t) * MQ_BS_NR + c] & A[j][t]);
                            const int64_t term = (int64_t)pc << (bi + j);
                            v += B > 1 && bi == B - 1 ? -term : term;
                        }
                    if (B == 1) v = 2 * v - rs;
                    crow[w->col[p * MQ_BS_NR + c]] = (int32_t)v;
                }
            }
        }
    }
}

/* Output rows o0..o1-1: the vpopcnt tier's kernel (vp; tmp its scratch) or conv_dir_scalar. */
static void conv_dir_rows(int vp, const mq_bs_seg_geo *g, const uint64_t *rows, int ab,
                          const mq_bs_weights *w, int32_t *out, int ldc, int o0, int o1,
                          uint8_t *tmp) {
    if (vp) mq_bs_conv_dir_rows_vpopcnt(g, rows, ab, w, out, ldc, o0, o1, tmp);
    else conv_dir_scalar(g, rows, ab, w, out, ldc, o0, o1);
}

mixq_status mq_bs_conv_dir(const uint8_t *codes, int n, int H, int W, int C, int R, int S,
                           int stride, int pad, uint8_t pad_code, int a_bits,
                           const mq_bs_weights *w, mq_bs_tier tier, int nthreads,
                           mq_bs_seg_scratch *sc, int32_t *out, int ldc) {
    const char *what = "bit-serial direct convolution";
    if (!codes || !w || !sc || !out) return mq_err(MIXQ_ERR_ARG, "%s: NULL argument", what);
    if (n < 1 || H < 1 || pad < 0 || !mq_bs_conv_dir_ok(C, R, S, stride, W))
        return mq_err(MIXQ_ERR_ARG, "%s: n %d, H %d, W %d, C %d, R %d, S %d, stride %d, pad %d; "
                      "hint: 3x3, C = 16 or 32, stride 1 or 2 (mq_bs_conv_dir_ok)", what, n, H, W,
                      C, R, S, stride, pad);
    if (!w->planes || w->dir != (C == 16 ? MQ_BS_DIR_C16 : MQ_BS_DIR_C32) || w->K != R * S * C)
        return mq_err(MIXQ_ERR_STATE, "%s: the weights are not packed by mq_bs_pack_weights_dir "
                      "for C = %d, %dx%d", what, C, R, S);
    mixq_status cs = check_conv_args(a_bits, pad_code, H, W, R, S, pad, what);
    if (cs) return cs;
    if (ldc < w->N) return mq_err(MIXQ_ERR_ARG, "%s: ldc = %d is less than N = %d", what, ldc, w->N);
    if (nthreads < 1) return mq_err(MIXQ_ERR_ARG, "%s: %d threads; hint: use >= 1", what, nthreads);
    mixq_status s = need_tier(tier, what);
    if (s) return s;
    mq_bs_seg_geo g;
    s = seg_geo_make(n, H, W, C, R, S, stride, pad, what, &g);
    if (s) return s;
    const int P = g.P;
    s = seg_plane_rows(codes, &g, pad_code, a_bits, tier, sc, what);
    if (s) return s;
    const int O = n * P, nt = MQ_MIN(nthreads, O);
    /* the vpopcnt tier's kernel, with tb bytes of scratch per thread; the others run its scalar
     * twin (conv_dir_rows), split over the threads the same way */
    const int vp = tier == MQ_BS_TIER_VPOPCNT;
    const size_t tb = vp ? (mq_bs_dir_tmp_bytes(&g, a_bits) + 63) / 64 * 64 : 0;
    if (vp && (s = reserve_aligned((void **)&sc->tmp, &sc->tmp_cap, tb * (size_t)nt, 1,
                                   "bit-serial direct rows")))
        return s;
    if (nt <= 1) {
        conv_dir_rows(vp, &g, sc->rows, a_bits, w, out, ldc, 0, O, sc->tmp);
    } else { /* contiguous blocks of output rows: each output is computed by the same code */
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), k = omp_get_num_threads();
            const int o0 = mq_split(O, t, k), o1 = mq_split(O, t + 1, k);
            if (o1 > o0)
                conv_dir_rows(vp, &g, sc->rows, a_bits, w, out, ldc, o0, o1,
                              vp ? sc->tmp + tb * (size_t)t : NULL);
        }
    }
    return MIXQ_OK;
}

mixq_status mq_bs_pack_acts(const uint8_t *a, int a_bits, int M, int K, mq_bs_acts *out) {
    mq_bs_tier t = MQ_BS_TIER_SCALAR;
    mixq_status s = mq_bs_tier_select(&t);
    if (s) return s;
    return mq_bs_pack_acts_ex(a, a_bits, M, K, t, out);
}

/* ---------------------------------------------------------------- scalar tier */
/* One 8 x 16 tile: Horner over s = i + j of the plane pairs (see bitserial.h). */
static void tile_scalar(const uint64_t *Ap, int ab, const uint64_t *Wp, int B, int kw,
                        int64_t acc[MQ_BS_MR][MQ_BS_NR]) {
    memset(acc, 0, sizeof(int64_t) * MQ_BS_MR * MQ_BS_NR);
    const int smax = (B - 1) + (ab - 1);
    for (int s = smax; s >= 0; s--) {
        if (s < smax)
            for (int r = 0; r < MQ_BS_MR; r++)
                for (int c = 0; c < MQ_BS_NR; c++) acc[r][c] *= 2;
        for (int i = MQ_MAX(0, s - (ab - 1)); i <= MQ_MIN(B - 1, s); i++) {
            const int j = s - i;
            const uint64_t *Aj = Ap + (size_t)j * kw * MQ_BS_MR;
            const uint64_t *Wi = Wp + (size_t)i * kw * MQ_BS_NR;
            int64_t pc[MQ_BS_MR][MQ_BS_NR] = {{0}};
            for (int w = 0; w < kw; w++)
                for (int r = 0; r < MQ_BS_MR; r++) {
                    const uint64_t av = Aj[w * MQ_BS_MR + r];
                    for (int c = 0; c < MQ_BS_NR; c++)
                        pc[r][c] += __builtin_popcountll(av & Wi[w * MQ_BS_NR + c]);
                }
            const int neg = B >= 2 && i == B - 1;
            for (int r = 0; r < MQ_BS_MR; r++)
                for (int c = 0; c < MQ_BS_NR; c++) acc[r][c] += neg ? -pc[r][c] : pc[r][c];
        }
    }
}

static void gemm_panels_scalar(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                               int p0, int p1) {
    const int kw = a->kw, ab = a->a_bits;
    int64_t acc[MQ_BS_MR][MQ_BS_NR];
    for (int pa = p0; pa < p1; pa++) {
        const uint64_t *Ap = a->bits + (size_t)pa * ab * kw * MQ_BS_MR;
        const int m0 = pa * MQ_BS_MR, mr = MQ_MIN(MQ_BS_MR, a->M - m0);
        for (int pw = 0; pw < w->panels; pw++) {
            const int B = w->bits[pw];
            tile_scalar(Ap, ab, w->planes + w->off[pw], B, kw, acc);
            const int32_t *col = w->col + pw * MQ_BS_NR;
            for (int r = 0; r < mr; r++) {
                const int64_t corr = B == 1 ? a->rowsum[m0 + r] : 0;
                int32_t *Crow = C + (size_t)(m0 + r) * (size_t)ldc;
                for (int c = 0; c < w->rows[pw]; c++)
                    Crow[col[c]] = (int32_t)(B == 1 ? 2 * acc[r][c] - corr : acc[r][c]);
            }
        }
    }
}

/* ---------------------------------------------------------------- GEMM driver */
typedef void (*panels_fn)(const mq_bs_acts *, const mq_bs_weights *, int32_t *, int, int, int);

mixq_status mq_bs_gemm_ex(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C, int ldc,
                          mq_bs_tier tier, int nthreads) {
    const char *what = "bit-serial GEMM";
    if (!a || !w || !C) return mq_err(MIXQ_ERR_ARG, "%s: NULL argument", what);
    if (!a->bits || a->M < 1) return mq_err(MIXQ_ERR_STATE, "%s: activations not packed", what);
    if (!w->planes || w->N < 1) return mq_err(MIXQ_ERR_STATE, "%s: weights not packed", what);
    if (w->dir)
        return mq_err(MIXQ_ERR_STATE, "%s: the weights are in the direct convolution's layout "
                      "(mq_bs_conv_dir only)", what);
    if (a->K != w->K)
        return mq_err(MIXQ_ERR_SHAPE, "%s: activations have K = %d, weights K = %d", what, a->K,
                      w->K);
    if (ldc < w->N)
        return mq_err(MIXQ_ERR_ARG, "%s: ldc = %d is less than N = %d", what, ldc, w->N);
    if (nthreads < 1)
        return mq_err(MIXQ_ERR_ARG, "%s: %d threads; hint: use >= 1", what, nthreads);
    mixq_status s = need_tier(tier, what);
    if (s) return s;

    panels_fn fn = gemm_panels_scalar;
    if (tier == MQ_BS_TIER_VPOPCNT) fn = mq_bs_gemm_panels_vpopcnt;
    else if (tier == MQ_BS_TIER_AVX512) fn = mq_bs_gemm_panels_avx512;
    else if (tier == MQ_BS_TIER_AVX2) /* the environment read once, not per thread */
        fn = a->kw >= mq_bs_avx2_hs_min_kw() ? mq_bs_gemm_panels_avx2_hs : mq_bs_gemm_panels_avx2;
    /* the kernel gets tplanes exactly when its tier wants a copy for this kw: the packer's, or
     * one made for this call (weights packed while another tier was selected, or the minimum
     * changed); else a view without it */
    mq_bs_weights view;
    uint64_t *own = NULL;
    const int want = mq_bs_tier_copy_wanted(tier, a->kw);
    const int usable = w->tplanes && w->tplanes_tier == (int)tier;
    if (want ? !usable : w->tplanes != NULL) {
        view = *w;
        view.tplanes = NULL;
        if (want) {
            own = view.tplanes = mq_bs_weights_tier_copy(w, tier);
            view.tplanes_tier = (int)tier;
            if (!own) return MIXQ_ERR_NOMEM;
        }
        w = &view;
    }
    const int panels = a->panels, nt = MQ_MIN(nthreads, panels);
    if (nt <= 1) {
        fn(a, w, C, ldc, 0, panels);
    } else {
        /* contiguous blocks of activation panels; every output is computed by the same code,
         * so results do not depend on the thread count */
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num(), n = omp_get_num_threads();
            const int p0 = mq_split(panels, t, n), p1 = mq_split(panels, t + 1, n);
            if (p1 > p0) fn(a, w, C, ldc, p0, p1);
        }
    }
    free(own);
    return MIXQ_OK;
}

mixq_status mq_bs_gemm(const mq_bs_acts *a, const mq_bs_weights *w, int32_t *C) {
    mq_bs_tier t = MQ_BS_TIER_SCALAR;
    mixq_status s = mq_bs_tier_select(&t);
    if (s) return s;
    if (!w) return mq_err(MIXQ_ERR_ARG, "bit-serial GEMM: NULL weights");
    return mq_bs_gemm_ex(a, w, C, w->N, t, mq_threads());
}

/* ---------------------------------------------------------------- reference */
mixq_status mq_bs_gemm_ref(const uint8_t *a, int a_bits, const int8_t *w, const int *row_bits,
                           int M, int N, int K, int32_t *C) {
    const char *what = "bit-serial reference GEMM";
    if (!a || !C) return mq_err(MIXQ_ERR_ARG, "%s: NULL argument", what);
    mixq_status s = check_dims(M, N, K, what);
    if (s) return s;
    if (a_bits < 1 || a_bits > MQ_BS_MAX_BITS)
        return mq_err(MIXQ_ERR_ARG, "%s: a_bits = %d; hint: use 1..8", what, a_bits);
    s = check_weights(w, row_bits, N, K, what);
    if (s) return s;
    s = bad_act(a, a_bits, M, K, what);
    if (s) return s;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            const uint8_t *ar = a + (size_t)m * (size_t)K;
            const int8_t *wr = w + (size_t)n * (size_t)K;
            int64_t sum = 0;
            for (int k = 0; k < K; k++) sum += (int64_t)ar[k] * wr[k];
            C[(size_t)m * (size_t)N + (size_t)n] = (int32_t)sum;
        }
    return MIXQ_OK;
}
