/* Bit-serial GEMM kernels (src/kernels/bitserial*.c): every tier this machine has against the
 * plain-loop reference, bit-exact, on awkward sizes (M, N, K in {1, 3, 7, 63, 64, 65, 127, 129,
 * 200, 1155}), all (w, a) in 1..8 on a small shape and a selection on large ones, per-row mixed
 * weight bits, extreme values up to K = 65536, packer equivalence across tiers, buffer reuse,
 * thread-count independence, validation messages and the MIXQ_BITSERIAL_TIER override
 * (including a tier the CPU lacks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/bitserial.h"
#include "test.h"

/* ---------------------------------------------------------------- helpers */
static uint64_t rng_state;
static uint32_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static void fill_acts(uint8_t *a, size_t n, int bits) {
    for (size_t i = 0; i < n; i++) a[i] = (uint8_t)(rnd() & ((1u << bits) - 1));
}

static int8_t rand_weight(int b) {
    if (b == 1) return (rnd() & 1) ? 1 : -1;
    const int lo = -(1 << (b - 1));
    return (int8_t)(lo + (int)(rnd() % (1u << b)));
}

static void fill_weights(int8_t *w, const int *row_bits, int N, int K) {
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) w[(size_t)n * K + k] = rand_weight(row_bits[n]);
}

static int n_tiers_run;
static int only_tier = -1; /* check_all_tiers runs this tier alone when >= 0 */

/* Packs with every available tier, runs every available tier, compares with the reference.
 * Returns the number of mismatching tiers. */
static int check_all_tiers(const uint8_t *a, int ab, const int8_t *w, const int *row_bits, int M,
                           int N, int K, const char *label) {
    int32_t *ref = malloc((size_t)M * N * sizeof *ref);
    int32_t *C = malloc((size_t)M * N * sizeof *C);
    if (!ref || !C) {
        free(ref);
        free(C);
        CHECK(!"out of memory");
        return 1;
    }
    int bad = 0;
    CHECK_OK(mq_bs_gemm_ref(a, ab, w, row_bits, M, N, K, ref));
    mq_bs_weights pw;
    CHECK_OK(mq_bs_pack_weights(w, row_bits, N, K, &pw));
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        if (!mq_bs_tier_available((mq_bs_tier)t) || (only_tier >= 0 && t != only_tier)) continue;
        mq_bs_acts pa = {0};
        CHECK_OK(mq_bs_pack_acts_ex(a, ab, M, K, (mq_bs_tier)t, &pa));
        memset(C, 0x5a, (size_t)M * N * sizeof *C);
        CHECK_OK(mq_bs_gemm_ex(&pa, &pw, C, N, (mq_bs_tier)t, 1));
        size_t first = (size_t)-1, nbad = 0;
        for (size_t i = 0; i < (size_t)M * N; i++)
            if (C[i] != ref[i]) {
                if (first == (size_t)-1) first = i;
                nbad++;
            }
        CHECKF(nbad == 0, "%s tier %s M %d N %d K %d a %d: %zu mismatches, first C[%zu][%zu] = %d, "
               "want %d", label, mq_bs_tier_name((mq_bs_tier)t), M, N, K, ab, nbad,
               first / (size_t)N, first % (size_t)N, nbad ? C[first] : 0, nbad ? ref[first] : 0);
        bad += nbad != 0;
        n_tiers_run++;
        mq_bs_acts_free(&pa);
    }
    mq_bs_weights_free(&pw);
    free(ref);
    free(C);
    return bad;
}

/* Uniform weight bits wb, random values. */
static void run_case(int M, int N, int K, int wb, int ab, uint64_t seed, const char *label) {
    rng_state = seed;
    uint8_t *a = malloc((size_t)M * K);
    int8_t *w = malloc((size_t)N * K);
    int *rb = malloc((size_t)N * sizeof *rb);
    if (!a || !w || !rb) {
        CHECK(!"out of memory");
        free(a), free(w), free(rb);
        return;
    }
    for (int n = 0; n < N; n++) rb[n] = wb;
    fill_acts(a, (size_t)M * K, ab);
    fill_weights(w, rb, N, K);
    check_all_tiers(a, ab, w, rb, M, N, K, label);
    free(a), free(w), free(rb);
}

/* ---------------------------------------------------------------- tests */
static void test_tiers(void) {
    CHECK(mq_bs_tier_available(MQ_BS_TIER_SCALAR));
    CHECK(mq_bs_tier_available(mq_bs_tier_best()));
    CHECK(!mq_bs_tier_available(MQ_BS_TIER_COUNT));
    CHECK(strcmp(mq_bs_tier_name(MQ_BS_TIER_COUNT), "?") == 0);
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        mq_bs_tier p;
        CHECK_OK(mq_bs_tier_parse(mq_bs_tier_name((mq_bs_tier)t), &p));
        CHECK(p == (mq_bs_tier)t);
        if (mq_bs_tier_available((mq_bs_tier)t)) CHECK(mq_bs_tier_best() >= (mq_bs_tier)t);
    }
#if defined(__x86_64__) && defined(__GNUC__)
    CHECK(mq_bs_tier_available(MQ_BS_TIER_AVX2) == (__builtin_cpu_supports("avx2") != 0));
    CHECK(mq_bs_tier_available(MQ_BS_TIER_AVX512) ==
          (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")));
#endif
    printf("  tiers here:");
    for (int t = MQ_BS_TIER_COUNT - 1; t >= 0; t--)
        printf(" %s=%s", mq_bs_tier_name((mq_bs_tier)t),
               mq_bs_tier_available((mq_bs_tier)t) ? "yes" : "no");
    printf(" (best %s)\n", mq_bs_tier_name(mq_bs_tier_best()));
}

/* One test per tier, so that a tier this CPU lacks shows as a CPU skip by name (the sweeps below
 * run every available tier): the tier against the reference on awkward sizes, all bit pairs. */
static void tier_sweep(mq_bs_tier t, const char *feature) {
    if (!mq_bs_tier_available(t)) {
        test_skip_cpu("the %s tier needs %s, which this CPU (or build) lacks", mq_bs_tier_name(t),
                      feature);
        return;
    }
    static const int Ms[] = {1, 7, 17}, Ns[] = {1, 16, 33}, Ks[] = {1, 63, 64, 65, 1153};
    int runs = n_tiers_run;
    only_tier = (int)t;
    for (int wb = 1; wb <= 8; wb += 3)
        for (int ab = 1; ab <= 8; ab += 2)
            for (size_t i = 0; i < 5; i++)
                run_case(Ms[i % 3], Ns[(i + wb) % 3], Ks[i], wb, ab, 77 + (uint64_t)(wb * 8 + ab),
                         mq_bs_tier_name(t));
    only_tier = -1;
    CHECK(n_tiers_run == runs + 3 * 4 * 5);
}
static void test_tier_scalar(void) { tier_sweep(MQ_BS_TIER_SCALAR, "nothing"); }
static void test_tier_avx2(void) { tier_sweep(MQ_BS_TIER_AVX2, "AVX2"); }
static void test_tier_avx512(void) { tier_sweep(MQ_BS_TIER_AVX512, "AVX-512 F+BW"); }
static void test_tier_vpopcnt(void) { tier_sweep(MQ_BS_TIER_VPOPCNT, "AVX-512 VPOPCNTDQ"); }

static void test_env_override(void) {
    enum { M = 9, N = 17, K = 70 };
    uint8_t a[M * K];
    int8_t w[N * K];
    int rb[N];
    int32_t C[M * N], ref[M * N];
    rng_state = 77;
    for (int n = 0; n < N; n++) rb[n] = 1 + n % 8;
    fill_acts(a, sizeof a, 3);
    fill_weights(w, rb, N, K);
    CHECK_OK(mq_bs_gemm_ref(a, 3, w, rb, M, N, K, ref));
    mq_bs_weights pw;
    CHECK_OK(mq_bs_pack_weights(w, rb, N, K, &pw));
    char *saved = test_env_swap("MIXQ_BITSERIAL_TIER", NULL);

    mq_bs_tier t;
    CHECK_OK(mq_bs_tier_select(&t));
    CHECK(t == mq_bs_tier_best());
    setenv("MIXQ_BITSERIAL_TIER", "auto", 1);
    CHECK_OK(mq_bs_tier_select(&t));
    CHECK(t == mq_bs_tier_best());

    /* every available tier through the variable: pack + gemm via the env-selected entry points */
    for (int i = 0; i < MQ_BS_TIER_COUNT; i++) {
        if (!mq_bs_tier_available((mq_bs_tier)i)) continue;
        setenv("MIXQ_BITSERIAL_TIER", mq_bs_tier_name((mq_bs_tier)i), 1);
        CHECK_OK(mq_bs_tier_select(&t));
        CHECK(t == (mq_bs_tier)i);
        mq_bs_acts pa = {0};
        CHECK_OK(mq_bs_pack_acts(a, 3, M, K, &pa));
        memset(C, 0, sizeof C);
        CHECK_OK(mq_bs_gemm(&pa, &pw, C));
        CHECKF(memcmp(C, ref, sizeof C) == 0, "env tier %s differs", mq_bs_tier_name(t));
        mq_bs_acts_free(&pa);
    }

    /* unknown name: an argument error, from select, pack and gemm alike */
    setenv("MIXQ_BITSERIAL_TIER", "sse9", 1);
    CHECK(mq_bs_tier_select(&t) == MIXQ_ERR_ARG);
    CHECK(strstr(mixq_last_error(), "sse9") != NULL);
    mq_bs_acts pa = {0};
    CHECK(mq_bs_pack_acts(a, 3, M, K, &pa) == MIXQ_ERR_ARG);

    /* a tier this CPU lacks: MIXQ_ERR_UNSUPPORTED naming it, no crash */
    int missing = -1;
    for (int i = MQ_BS_TIER_COUNT - 1; i >= 0; i--)
        if (!mq_bs_tier_available((mq_bs_tier)i)) missing = i;
    if (missing >= 0) {
        const char *name = mq_bs_tier_name((mq_bs_tier)missing);
        setenv("MIXQ_BITSERIAL_TIER", name, 1);
        CHECK(mq_bs_tier_select(&t) == MIXQ_ERR_UNSUPPORTED);
        CHECKF(strstr(mixq_last_error(), name) != NULL, "message: %s", mixq_last_error());
        CHECK(mq_bs_pack_acts(a, 3, M, K, &pa) == MIXQ_ERR_UNSUPPORTED);
        unsetenv("MIXQ_BITSERIAL_TIER");
        CHECK_OK(mq_bs_pack_acts(a, 3, M, K, &pa));
        setenv("MIXQ_BITSERIAL_TIER", name, 1);
        CHECK(mq_bs_gemm(&pa, &pw, C) == MIXQ_ERR_UNSUPPORTED);
        CHECK(mq_bs_gemm_ex(&pa, &pw, C, N, (mq_bs_tier)missing, 1) == MIXQ_ERR_UNSUPPORTED);
        CHECK(mq_bs_pack_acts_ex(a, 3, M, K, (mq_bs_tier)missing, &pa) == MIXQ_ERR_UNSUPPORTED);
        printf("  unavailable tier '%s': %s\n", name, mixq_last_error());
    } else {
        printf("  every tier is available here: the unavailable-tier error is not exercised\n");
    }
    mq_bs_acts_free(&pa);
    free(test_env_swap("MIXQ_BITSERIAL_TIER", saved));
    free(saved);
    mq_bs_weights_free(&pw);
}

static void test_all_bits_small(void) {
    for (int wb = 1; wb <= 8; wb++)
        for (int ab = 1; ab <= 8; ab++)
            run_case(13, 19, 77, wb, ab, 1000u + 10u * wb + ab, "small");
}

static const int sizes[] = {1, 3, 7, 63, 64, 65, 127, 129, 200, 1155};
enum { NSIZES = (int)(sizeof sizes / sizeof sizes[0]) };
static const int sel_bits[][2] = {{1, 1}, {1, 2}, {2, 2}, {3, 3}, {4, 4}, {8, 8}, {2, 5},
                                  {8, 1}, {1, 8}, {5, 7}};

static void test_awkward_sizes(void) {
    int c = 0;
    /* each of M, N, K runs through the whole set, the other two varied over a few values */
    static const int few[] = {1, 7, 65, 129};
    for (int i = 0; i < NSIZES; i++)
        for (int f = 0; f < 4; f++) {
            const int x = sizes[i], y = few[f], z = few[(f + i) % 4];
            const int *bits = sel_bits[c++ % 10];
            run_case(x, y, z, bits[0], bits[1], 2000u + (unsigned)c, "M sweep");
            bits = sel_bits[c++ % 10];
            run_case(y, x, z, bits[0], bits[1], 2000u + (unsigned)c, "N sweep");
            bits = sel_bits[c++ % 10];
            run_case(z, y, x, bits[0], bits[1], 2000u + (unsigned)c, "K sweep");
        }
}

static void test_large(void) {
    static const int shapes[][3] = {{200, 129, 1155}, {129, 200, 1155}, {1155, 65, 129},
                                    {65, 1155, 200}, {127, 63, 1155}};
    for (int s = 0; s < 5; s++)
        for (int b = 0; b < 10; b += 2) {
            const int *bits = sel_bits[(b + s) % 10];
            run_case(shapes[s][0], shapes[s][1], shapes[s][2], bits[0], bits[1],
                     3000u + 16u * s + b, "large");
        }
}

/* The carry-save trees (avx512 and avx2 tiers): K (in 64-bit words) through every path of the K loop:
 * avx2: whole 8-word blocks, a 4-word block, 0..3 single words, chunks of 248 words; avx512 (on
 * 32-bit half words of its weight copy, 2 per word): 8-half blocks, then 4, 2 or both (kw % 4),
 * passes of 120 words; then with the tree forced for every K (MIXQ_BS_HS_MIN_KW=1), so short K
 * runs it too. M = 9..29 gives a last panel of every size 1..7 (pixel quads, pairs, then a lone pixel). */
static void test_carry_save_paths(void) {
    static const int kws[] = {16, 17, 18, 19, 20, 23, 24, 28, 31, 119, 120, 121, 122,
                              241, 248, 249, 252, 255, 497};
    const int nk = (int)(sizeof kws / sizeof kws[0]);
    /* 16: the avx2 tree's usual minimum (opt-in) */
    char *saved = test_env_swap("MIXQ_BS_HS_MIN_KW", "16");
    for (int i = 0; i < nk; i++) {
        const int *bits = sel_bits[i % 10];
        run_case(9 + i % 21, 17 + 2 * i, 64 * kws[i] - (i % 3) * 21, bits[0], bits[1], 5000u + i,
                 "tree K");
    }
    setenv("MIXQ_BS_HS_MIN_KW", "1", 1);
    for (int kw = 1; kw <= 15; kw++) {
        const int *bits = sel_bits[kw % 10];
        run_case(11, 21, 64 * kw - (kw % 2) * 17, bits[0], bits[1], 5100u + kw, "tree forced");
    }
    free(test_env_swap("MIXQ_BS_HS_MIN_KW", saved));
    free(saved);
}

/* A tier's own copy of the weight planes (tplanes, bitserial.h): the avx512 tier's 32-bit halves
 * in column order (its carry-save tree, kw >= 8). Built by the packer where the selected tier
 * wants one for this kw, not otherwise; the GEMM gives the reference's products with the
 * packer's copy, with one made per call (none, or another tier's), and where the tier wants
 * none (a view without it). */
static void test_tier_copy(void) {
    const mq_bs_tier t = MQ_BS_TIER_AVX512;
    if (!mq_bs_tier_available(t)) {
        test_skip_cpu("no AVX-512BW: the avx512 tier does not run here");
        return;
    }
    char *tier = test_env_swap("MIXQ_BITSERIAL_TIER", mq_bs_tier_name(t));
    char *hs = test_env_swap("MIXQ_BS_HS_MIN_KW", NULL);
    const int M = 13, N = 37, K = 64 * 18 - 5;
    rng_state = 6100;
    uint8_t *a = malloc((size_t)M * K);
    int8_t *w = malloc((size_t)N * K);
    int *rb = malloc((size_t)N * sizeof *rb);
    int32_t *ref = malloc((size_t)M * N * sizeof *ref), *C = malloc((size_t)M * N * sizeof *C);
    mq_bs_weights pw = {0}, small = {0};
    mq_bs_acts pa = {0};
    if (!a || !w || !rb || !ref || !C) {
        CHECK(!"out of memory");
        goto done;
    }
    for (int n = 0; n < N; n++) rb[n] = n < 32 ? 2 : 1 + n % 3; /* 2 interleaved panels, 1 mixed */
    fill_acts(a, (size_t)M * K, 2);
    fill_weights(w, rb, N, K);
    CHECK_OK(mq_bs_gemm_ref(a, 2, w, rb, M, N, K, ref));
    CHECK_OK(mq_bs_pack_weights(w, rb, N, K, &pw));
    CHECK_OK(mq_bs_pack_acts_ex(a, 2, M, K, t, &pa));
    CHECK(pw.tplanes != NULL && pw.tplanes_tier == (int)t);
    if (!pw.tplanes) goto done;
    for (int p = 0; p < pw.panels; p++)
        for (int l = 0; l < MQ_BS_NR; l++) {
            const size_t x = (size_t)pw.kw + 3; /* plane 1, word 3 */
            /* lane l: column col[0] + l (contig 2), else slot l */
            const int slot = pw.contig[p] == 2 ? (l % 2) * 8 + l / 2 : l;
            const uint64_t v = pw.planes[pw.off[p] + x * MQ_BS_NR + slot];
            const uint32_t *h = (const uint32_t *)(pw.tplanes + pw.off[p]) + x * 2 * MQ_BS_NR;
            CHECKF(h[l] == (uint32_t)v && h[MQ_BS_NR + l] == (uint32_t)(v >> 32),
                   "panel %d lane %d", p, l);
            if (pw.contig[p] == 2) CHECK(pw.col[p * MQ_BS_NR + slot] == pw.col[p * MQ_BS_NR] + l);
        }
    /* the packer's copy; none (made per call); another tier's (made per call); the tier wanting
     * none at this kw (the tree from 19 words) */
    for (int run = 0; run < 4; run++) {
        uint64_t *keep = pw.tplanes;
        if (run == 1) pw.tplanes = NULL;
        if (run == 2) pw.tplanes_tier = MQ_BS_TIER_AVX2;
        if (run == 3) setenv("MIXQ_BS_HS_MIN_KW", "19", 1);
        CHECK(mq_bs_tier_copy_wanted(t, pw.kw) == (run < 3));
        memset(C, 0x5a, (size_t)M * N * sizeof *C);
        CHECK_OK(mq_bs_gemm_ex(&pa, &pw, C, N, t, 2));
        CHECKF(memcmp(C, ref, (size_t)M * N * sizeof *C) == 0, "tier copy run %d differs", run);
        pw.tplanes = keep;
        pw.tplanes_tier = (int)t;
    }
    unsetenv("MIXQ_BS_HS_MIN_KW");
    for (int n = 0; n < N; n++) rb[n] = 8; /* any byte: w read as N rows of 448 */
    CHECK_OK(mq_bs_pack_weights(w, rb, N, 64 * 7, &small)); /* kw 7 */
    CHECK(small.tplanes == NULL); /* the nibble table, on planes */
done:
    mq_bs_weights_free(&pw);
    mq_bs_weights_free(&small);
    mq_bs_acts_free(&pa);
    free(a), free(w), free(rb), free(ref), free(C);
    free(test_env_swap("MIXQ_BITSERIAL_TIER", tier));
    free(test_env_swap("MIXQ_BS_HS_MIN_KW", hs));
    free(tier), free(hs);
}

/* A convolution test case: random a_bits codes [n][H][W][C], their im2col matrix col [M][K]
 * ((r, s, c) order, padding taps = padc), N weight rows of widths rb and the reference
 * C1 = col x w^T (mq_bs_gemm_ref); C2 is scratch of the same size. */
typedef struct conv_case {
    int n, H, W, C, R, S, st, pad, ab, P, Q, M, K, N;
    uint8_t padc;
    uint8_t *codes, *col;
    int8_t *w;
    int *rb;
    int32_t *C1, *C2;
} conv_case;

static void conv_case_free(conv_case *cc) {
    free(cc->codes), free(cc->col), free(cc->w), free(cc->rb), free(cc->C1), free(cc->C2);
}

/* cfg: n, H, W, C, R, S, stride, pad, a_bits; rb[k] = 1 + (k + rb_off) % 8. 0 on success. */
static int conv_case_make(conv_case *cc, const int cfg[9], int N, uint8_t padc, int rb_off) {
    memset(cc, 0, sizeof *cc);
    cc->n = cfg[0], cc->H = cfg[1], cc->W = cfg[2], cc->C = cfg[3], cc->R = cfg[4], cc->S = cfg[5];
    cc->st = cfg[6], cc->pad = cfg[7], cc->ab = cfg[8], cc->N = N, cc->padc = padc;
    cc->P = (cc->H + 2 * cc->pad - cc->R) / cc->st + 1, cc->Q = (cc->W + 2 * cc->pad - cc->S) / cc->st + 1;
    cc->M = cc->n * cc->P * cc->Q, cc->K = cc->R * cc->S * cc->C;
    const int M = cc->M, K = cc->K, C = cc->C, H = cc->H, W = cc->W;
    cc->codes = malloc((size_t)cc->n * H * W * C), cc->col = malloc((size_t)M * K);
    cc->w = malloc((size_t)N * K);
    cc->rb = malloc(N * sizeof *cc->rb);
    cc->C1 = malloc((size_t)M * N * sizeof *cc->C1), cc->C2 = malloc((size_t)M * N * sizeof *cc->C2);
    if (!cc->codes || !cc->col || !cc->w || !cc->rb || !cc->C1 || !cc->C2) {
        CHECK(!"out of memory");
        conv_case_free(cc);
        return 1;
    }
    fill_acts(cc->codes, (size_t)cc->n * H * W * C, cc->ab);
    for (int m = 0; m < M; m++) { /* im2col, (r, s, c) */
        const int i = m / (cc->P * cc->Q), p = m / cc->Q % cc->P, q = m % cc->Q;
        for (int r = 0; r < cc->R; r++)
            for (int t = 0; t < cc->S; t++) {
                const int h = p * cc->st - cc->pad + r, x = q * cc->st - cc->pad + t;
                uint8_t *o = cc->col + (size_t)m * K + (size_t)(r * cc->S + t) * C;
                if (h < 0 || h >= H || x < 0 || x >= W) memset(o, padc, (size_t)C);
                else memcpy(o, cc->codes + (((size_t)i * H + h) * W + x) * C, (size_t)C);
            }
    }
    for (int k = 0; k < N; k++) cc->rb[k] = 1 + (k + rb_off) % 8;
    fill_weights(cc->w, cc->rb, N, K);
    CHECK_OK(mq_bs_gemm_ref(cc->col, cc->ab, cc->w, cc->rb, M, N, K, cc->C1));
    return 0;
}

/* cc's codes packed by mq_bs_pack_conv / mq_bs_pack_conv_seg on tier t. */
static mixq_status pack_conv_case(const conv_case *cc, int t, mq_bs_acts *pix, mq_bs_acts *out) {
    return mq_bs_pack_conv(cc->codes, cc->n, cc->H, cc->W, cc->C, cc->R, cc->S, cc->st, cc->pad,
                           cc->padc, cc->ab, (mq_bs_tier)t, pix, out);
}
static mixq_status pack_conv_seg_case(const conv_case *cc, int t, mq_bs_seg_scratch *sc,
                                      mq_bs_acts *out) {
    return mq_bs_pack_conv_seg(cc->codes, cc->n, cc->H, cc->W, cc->C, cc->R, cc->S, cc->st,
                               cc->pad, cc->padc, cc->ab, (mq_bs_tier)t, sc, out);
}

/* The GEMM on got (tier t, nthreads) equals cc's reference, and reused (the same packing into
 * buffers reused from config to config) holds got's words and sums. */
static void check_gemm_reuse(conv_case *cc, const mq_bs_acts *got, const mq_bs_weights *pw, int t,
                             int nthreads, const mq_bs_acts *reused, int ci) {
    const size_t words = (size_t)got->panels * got->a_bits * got->kw * MQ_BS_MR;
    memset(cc->C2, 0x5a, (size_t)cc->M * cc->N * sizeof *cc->C2);
    CHECK_OK(mq_bs_gemm_ex(got, pw, cc->C2, cc->N, (mq_bs_tier)t, nthreads));
    CHECKF(!memcmp(cc->C1, cc->C2, (size_t)cc->M * cc->N * sizeof *cc->C1),
           "config %d tier %s: GEMM differs", ci, mq_bs_tier_name((mq_bs_tier)t));
    CHECKF(reused->M == got->M && !memcmp(reused->bits, got->bits, words * sizeof(uint64_t)) &&
               !memcmp(reused->rowsum, got->rowsum, (size_t)got->panels * MQ_BS_MR * 4),
           "config %d tier %s: packing into reused buffers differs", ci,
           mq_bs_tier_name((mq_bs_tier)t));
}

/* mq_bs_pack_conv against im2col (r, s, c order, padding taps = pad_code) + the row packer:
 * identical words and sums on every tier, over odd images, strides, paddings and widths; then
 * the GEMM on it equals the reference on the im2col matrix; then its argument checks. */
static void test_pack_conv(void) {
    static const int cfg[][9] = {/* n, H, W, C, R, S, stride, pad, a_bits */
                                 {1, 5, 7, 64, 3, 3, 1, 1, 1},  {3, 7, 5, 128, 3, 3, 2, 1, 2},
                                 {2, 1, 1, 64, 3, 3, 1, 1, 3},  {1, 6, 6, 192, 1, 1, 2, 0, 8},
                                 {2, 4, 9, 64, 3, 1, 1, 2, 4},  {1, 3, 3, 256, 3, 3, 1, 0, 1},
                                 {5, 2, 3, 64, 2, 2, 1, 1, 5},  {2, 3, 16, 64, 3, 3, 1, 1, 2},
                                 {1, 9, 8, 128, 3, 3, 1, 1, 3}, {3, 2, 10, 64, 1, 3, 1, 0, 1},
                                 {2, 6, 17, 64, 3, 3, 1, 1, 1}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    /* per tier, buffers reused from config to config (grown, shrunk): as the runtime reuses them */
    mq_bs_acts rpix[MQ_BS_TIER_COUNT] = {{0}}, rout[MQ_BS_TIER_COUNT] = {{0}};
    for (int ci = 0; ci < ncfg; ci++) {
        rng_state = 8000u + (unsigned)ci;
        conv_case cc;
        if (conv_case_make(&cc, cfg[ci], 19, (uint8_t)(rnd() & ((1u << cfg[ci][8]) - 1)), 0)) return;
        const int ab = cc.ab, M = cc.M, K = cc.K;
        mq_bs_weights pw;
        CHECK_OK(mq_bs_pack_weights(cc.w, cc.rb, cc.N, K, &pw));
        for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
            if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
            mq_bs_acts ref = {0}, got = {0}, pix = {0};
            CHECK_OK(mq_bs_pack_acts_ex(cc.col, ab, M, K, (mq_bs_tier)t, &ref));
            CHECK_OK(pack_conv_case(&cc, t, &pix, &got));
            const size_t words = (size_t)ref.panels * ab * ref.kw * MQ_BS_MR;
            CHECKF(got.M == M && got.K == K && got.kw == ref.kw && got.panels == ref.panels,
                   "config %d: shape %d x %d, want %d x %d", ci, got.M, got.K, M, K);
            if (got.M == M && got.K == K && got.panels == ref.panels) {
                CHECKF(!memcmp(got.bits, ref.bits, words * sizeof(uint64_t)) &&
                           !memcmp(got.rowsum, ref.rowsum, (size_t)ref.panels * MQ_BS_MR * 4),
                       "config %d tier %s: packed words differ from im2col + pack", ci,
                       mq_bs_tier_name((mq_bs_tier)t));
                CHECK_OK(pack_conv_case(&cc, t, &rpix[t], &rout[t]));
                check_gemm_reuse(&cc, &got, &pw, t, 1, &rout[t], ci);
            }
            mq_bs_acts_free(&ref);
            mq_bs_acts_free(&got);
            mq_bs_acts_free(&pix);
        }
        mq_bs_weights_free(&pw);
        conv_case_free(&cc);
    }
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        mq_bs_acts_free(&rpix[t]);
        mq_bs_acts_free(&rout[t]);
    }
    /* bad arguments: an error, never a crash */
    uint8_t codes[2 * 2 * 64] = {0};
    mq_bs_acts pix = {0}, out = {0};
    CHECK(mq_bs_pack_conv(codes, 1, 2, 2, 48, 1, 1, 1, 0, 0, 2, MQ_BS_TIER_SCALAR, &pix, &out) ==
          MIXQ_ERR_ARG); /* C not a multiple of 64 */
    CHECK(mq_bs_pack_conv(codes, 1, 2, 2, 64, 1, 1, 1, 0, 4, 2, MQ_BS_TIER_SCALAR, &pix, &out) ==
          MIXQ_ERR_ARG); /* padding code above 2 bits */
    CHECK(mq_bs_pack_conv(codes, 1, 2, 2, 64, 5, 5, 1, 0, 0, 2, MQ_BS_TIER_SCALAR, &pix, &out) ==
          MIXQ_ERR_ARG); /* kernel larger than the input */
    codes[77] = 9;
    CHECK(mq_bs_pack_conv(codes, 1, 2, 2, 64, 1, 1, 1, 0, 0, 2, MQ_BS_TIER_SCALAR, &pix, &out) ==
          MIXQ_ERR_ARG); /* a code above 2 bits */
    mq_bs_acts_free(&pix);
    mq_bs_acts_free(&out);
}

/* mq_bs_conv_dir (the direct convolution on 32-bit words) against im2col + mq_bs_gemm_ref, on
 * every tier (the vpopcnt tier's kernel, the others its scalar twin): C = 16 and 32, strides 1
 * and 2, paddings 0-2 with padding codes, 1-8 activation bits, output rows shorter and longer
 * than a pixel block and than 16 (the vector row sums), one pixel images; per config four weight
 * sets: mixed widths 1-8 (panels of mixed widths, slots out of column order), all +-1, all 2-bit
 * (full panels stored whole) and 5 rows of one width (a short panel); 1 and 2 threads, ldc > N,
 * scratch reused across configs; then which shapes it takes and the argument checks. */
static void test_conv_dir(void) {
    static const int cfg[][9] = {/* n, H, W, C, R, S, stride, pad, a_bits */
                                 {1, 28, 28, 16, 3, 3, 1, 1, 2}, {2, 7, 5, 16, 3, 3, 2, 1, 3},
                                 {3, 3, 3, 16, 3, 3, 1, 1, 1},   {1, 9, 11, 16, 3, 3, 1, 0, 4},
                                 {2, 5, 6, 16, 3, 3, 1, 2, 8},   {1, 8, 8, 32, 3, 3, 1, 1, 2},
                                 {2, 9, 7, 32, 3, 3, 2, 1, 5},   {1, 14, 14, 32, 3, 3, 2, 1, 1},
                                 {2, 1, 1, 16, 3, 3, 1, 1, 6},   {1, 3, 40, 32, 3, 3, 1, 1, 3},
                                 {1, 4, 37, 16, 3, 3, 1, 1, 1},  {1, 6, 35, 16, 3, 3, 2, 2, 7},
                                 {1, 5, 28, 16, 3, 3, 2, 1, 2},  {1, 4, 30, 32, 3, 3, 2, 0, 2}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]), N = 32, ldc = N + 3;
    mq_bs_seg_scratch rsc[MQ_BS_TIER_COUNT];
    memset(rsc, 0, sizeof rsc);
    for (int ci = 0; ci < ncfg; ci++) {
        rng_state = 9500u + (unsigned)ci;
        conv_case cc;
        if (conv_case_make(&cc, cfg[ci], N, (uint8_t)(ci % 2 ? rnd() & ((1u << cfg[ci][8]) - 1) : 0), ci))
            return;
        CHECKF(mq_bs_conv_dir_ok(cc.C, cc.R, cc.S, cc.st, cc.W), "config %d: not taken", ci);
        int32_t *got = malloc((size_t)cc.M * ldc * sizeof *got);
        if (!got) { CHECK(!"out of memory"); conv_case_free(&cc); return; }
        for (int v = 0; v < 4; v++) {
            int n_used = N;
            if (v > 0) { /* uniform widths; the reference again */
                const int b = v == 1 ? 1 : v == 2 ? 2 : 1 + ci % 8;
                if (v == 3) n_used = 5;
                for (int k = 0; k < N; k++) cc.rb[k] = b;
                fill_weights(cc.w, cc.rb, N, cc.K);
                CHECK_OK(mq_bs_gemm_ref(cc.col, cc.ab, cc.w, cc.rb, cc.M, N, cc.K, cc.C1));
            }
            mq_bs_weights pw;
            CHECK_OK(mq_bs_pack_weights_dir(cc.w, cc.rb, n_used, cc.C, cc.R, cc.S, &pw));
            for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
                if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
                memset(got, 0x5a, (size_t)cc.M * ldc * sizeof *got);
                CHECK_OK(mq_bs_conv_dir(cc.codes, cc.n, cc.H, cc.W, cc.C, cc.R, cc.S, cc.st, cc.pad,
                                        cc.padc, cc.ab, &pw, (mq_bs_tier)t, 1 + (t + v) % 2, &rsc[t],
                                        got, ldc));
                int bad = 0;
                for (int m = 0; m < cc.M; m++) {
                    for (int c = 0; c < n_used; c++)
                        bad += got[(size_t)m * ldc + c] != cc.C1[(size_t)m * N + c];
                    for (int c = n_used; c < ldc; c++) bad += got[(size_t)m * ldc + c] != 0x5a5a5a5a;
                }
                CHECKF(!bad, "config %d weights %d tier %s: %d outputs differ from im2col + the "
                       "reference GEMM", ci, v, mq_bs_tier_name((mq_bs_tier)t), bad);
                n_tiers_run++;
            }
            mq_bs_weights_free(&pw);
        }
        free(got);
        conv_case_free(&cc);
    }
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) mq_bs_seg_scratch_free(&rsc[t]);
    /* which shapes take it */
    CHECK(mq_bs_conv_dir_ok(16, 3, 3, 1, 28) && mq_bs_conv_dir_ok(32, 3, 3, 2, 28) &&
          mq_bs_conv_dir_ok(16, 3, 3, 2, 4000));
    CHECK(!mq_bs_conv_dir_ok(64, 3, 3, 1, 8) && !mq_bs_conv_dir_ok(16, 1, 1, 1, 8) &&
          !mq_bs_conv_dir_ok(32, 3, 3, 3, 8) && !mq_bs_conv_dir_ok(48, 3, 3, 1, 8) &&
          !mq_bs_conv_dir_ok(16, 3, 3, 1, 5000) && !mq_bs_conv_dir_ok(32, 3, 2, 1, 8));
    CHECK(mq_bs_conv_dir_pays(16, 3, 3, 1, 28, 4) && mq_bs_conv_dir_pays(32, 3, 3, 2, 14, 1) &&
          !mq_bs_conv_dir_pays(16, 3, 3, 1, 28, 5) && !mq_bs_conv_dir_pays(64, 3, 3, 1, 8, 2));
    /* bad arguments: an error, never a crash */
    uint8_t codes[3 * 3 * 16] = {0};
    int8_t wt[2 * 288] = {0};
    for (int k = 0; k < 2 * 288; k++) wt[k] = 1;
    int rb2[2] = {2, 2};
    mq_bs_seg_scratch sc;
    memset(&sc, 0, sizeof sc);
    int32_t out[9 * 2];
    mq_bs_weights pw, pg;
    CHECK(mq_bs_pack_weights_dir(wt, rb2, 2, 64, 3, 3, &pw) == MIXQ_ERR_ARG && !pw.planes);
    CHECK_OK(mq_bs_pack_weights_dir(wt, rb2, 2, 16, 3, 3, &pw));
    CHECK_OK(mq_bs_pack_weights(wt, rb2, 2, 144, &pg));
    CHECK(mq_bs_conv_dir(codes, 1, 3, 3, 16, 3, 3, 1, 1, 0, 2, &pg, MQ_BS_TIER_SCALAR, 1, &sc, out, 2) ==
          MIXQ_ERR_STATE); /* weights in the GEMM layout */
    CHECK(mq_bs_conv_dir(codes, 1, 3, 3, 32, 3, 3, 1, 1, 0, 2, &pw, MQ_BS_TIER_SCALAR, 1, &sc, out, 2) ==
          MIXQ_ERR_STATE); /* C 32 with C 16 weights (checked before any code is read) */
    CHECK(mq_bs_conv_dir(codes, 1, 3, 3, 16, 3, 3, 1, 1, 4, 2, &pw, MQ_BS_TIER_SCALAR, 1, &sc, out, 2) ==
          MIXQ_ERR_ARG); /* padding code above 2 bits */
    CHECK(mq_bs_conv_dir(codes, 1, 3, 3, 16, 3, 3, 1, 1, 0, 2, &pw, MQ_BS_TIER_SCALAR, 1, &sc, out, 1) ==
          MIXQ_ERR_ARG); /* ldc < N */
    CHECK(mq_bs_conv_dir(codes, 1, 3, 3, 16, 3, 3, 1, 1, 0, 2, &pw, MQ_BS_TIER_SCALAR, 0, &sc, out, 2) ==
          MIXQ_ERR_ARG); /* no threads */
    CHECK(mq_bs_conv_dir(codes, 1, 1, 1, 16, 3, 3, 1, 0, 0, 2, &pw, MQ_BS_TIER_SCALAR, 1, &sc, out, 2) ==
          MIXQ_ERR_ARG); /* kernel larger than the input */
    mq_bs_acts acts = {0};
    CHECK_OK(mq_bs_pack_acts_ex(codes, 2, 1, 144, MQ_BS_TIER_SCALAR, &acts));
    CHECK(mq_bs_gemm_ex(&acts, &pw, out, 2, MQ_BS_TIER_SCALAR, 1) == MIXQ_ERR_STATE); /* not a GEMM layout */
    codes[2 * 16 + 5] = 9; /* pixel 2, channel 5: a code above 2 bits, on every tier */
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
        CHECK(mq_bs_conv_dir(codes, 1, 3, 3, 16, 3, 3, 1, 1, 0, 2, &pw, (mq_bs_tier)t, 1, &sc, out, 2) ==
              MIXQ_ERR_ARG);
        CHECKF(strstr(mixq_last_error(), "row 2 element 5") != NULL, "tier %s: message: %s",
               mq_bs_tier_name((mq_bs_tier)t), mixq_last_error());
    }
    mq_bs_acts_free(&acts);
    mq_bs_weights_free(&pw);
    mq_bs_weights_free(&pg);
    mq_bs_seg_scratch_free(&sc);
}

/* mq_bs_pack_conv_seg + mq_bs_pack_weights_seg: the GEMM equals the reference on the im2col
 * matrix, every tier writes the scalar tier's words and the im2col row sums, over strides,
 * paddings (padding codes), widths, output rows shorter than a panel and the vector path's limits
 * (stride * C = 64; above it and two-word segments: the scalar rows); then the argument checks. */
static void test_pack_conv_seg(void) {
    static const int cfg[][9] = {/* n, H, W, C, R, S, stride, pad, a_bits */
                                 {1, 28, 28, 16, 3, 3, 1, 1, 2}, {2, 7, 5, 16, 3, 3, 2, 1, 3},
                                 {3, 3, 3, 16, 3, 3, 1, 1, 1},   {1, 9, 11, 16, 3, 3, 1, 0, 4},
                                 {2, 5, 6, 16, 3, 3, 1, 2, 8},   {1, 12, 10, 16, 3, 4, 1, 1, 2},
                                 {2, 8, 8, 32, 1, 1, 2, 0, 2},   {1, 6, 9, 32, 1, 2, 1, 0, 5},
                                 {1, 7, 13, 16, 3, 3, 4, 1, 2},  {2, 9, 9, 32, 1, 1, 3, 0, 3},
                                 {1, 4, 5, 80, 1, 1, 1, 0, 2},   {2, 1, 1, 16, 3, 3, 1, 1, 6},
                                 {1, 10, 17, 48, 1, 1, 1, 0, 1}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    mq_bs_seg_scratch rsc[MQ_BS_TIER_COUNT];
    mq_bs_acts rout[MQ_BS_TIER_COUNT] = {{0}};
    memset(rsc, 0, sizeof rsc);
    for (int ci = 0; ci < ncfg; ci++) {
        CHECKF(mq_bs_conv_seg_ok(cfg[ci][3], cfg[ci][4], cfg[ci][5]), "config %d: not segment-aligned", ci);
        rng_state = 9000u + (unsigned)ci;
        conv_case cc;
        if (conv_case_make(&cc, cfg[ci], 21, (uint8_t)(ci % 2 ? rnd() & ((1u << cfg[ci][8]) - 1) : 0), ci))
            return;
        const int ab = cc.ab, M = cc.M, K = cc.K;
        mq_bs_acts ref = {0}, scal = {0};
        mq_bs_seg_scratch ssc;
        memset(&ssc, 0, sizeof ssc);
        CHECK_OK(mq_bs_pack_acts_ex(cc.col, ab, M, K, MQ_BS_TIER_SCALAR, &ref));
        CHECK_OK(pack_conv_seg_case(&cc, MQ_BS_TIER_SCALAR, &ssc, &scal)); /* the other tiers' twin */
        mq_bs_weights pw;
        CHECK_OK(mq_bs_pack_weights_seg(cc.w, cc.rb, cc.N, K, cc.S * cc.C, &pw));
        const int segw = (cc.S * cc.C + 63) / 64;
        CHECKF(pw.kw == cc.R * segw && pw.K == 64 * cc.R * segw, "config %d: weights kw %d K %d", ci,
               pw.kw, pw.K);
        for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
            if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
            mq_bs_seg_scratch sc;
            memset(&sc, 0, sizeof sc);
            mq_bs_acts got = {0};
            CHECK_OK(pack_conv_seg_case(&cc, t, &sc, &got));
            CHECKF(got.M == M && got.K == pw.K && got.kw == pw.kw, "config %d tier %s: %d x %d, kw %d",
                   ci, mq_bs_tier_name((mq_bs_tier)t), got.M, got.K, got.kw);
            if (got.M == M && got.K == pw.K) {
                const size_t words = (size_t)got.panels * ab * got.kw * MQ_BS_MR;
                CHECKF(!memcmp(got.rowsum, ref.rowsum, (size_t)ref.panels * MQ_BS_MR * 4),
                       "config %d tier %s: row sums differ from im2col's", ci, mq_bs_tier_name((mq_bs_tier)t));
                if (t != MQ_BS_TIER_SCALAR)
                    CHECKF(scal.bits && !memcmp(got.bits, scal.bits, words * sizeof(uint64_t)),
                           "config %d tier %s: packed words differ from the scalar tier's", ci,
                           mq_bs_tier_name((mq_bs_tier)t));
                CHECK_OK(pack_conv_seg_case(&cc, t, &rsc[t], &rout[t]));
                check_gemm_reuse(&cc, &got, &pw, t, 1 + t % 2, &rout[t], ci);
            }
            mq_bs_acts_free(&got);
            mq_bs_seg_scratch_free(&sc);
        }
        mq_bs_acts_free(&ref);
        mq_bs_acts_free(&scal);
        mq_bs_seg_scratch_free(&ssc);
        mq_bs_weights_free(&pw);
        conv_case_free(&cc);
    }
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        mq_bs_seg_scratch_free(&rsc[t]);
        mq_bs_acts_free(&rout[t]);
    }
    /* which shapes take it */
    CHECK(mq_bs_conv_seg_ok(16, 3, 3) && mq_bs_conv_seg_ok(32, 1, 1) && mq_bs_conv_seg_ok(16, 1, 1));
    CHECK(mq_bs_conv_seg_pays(16, 3, 3, 28) && !mq_bs_conv_seg_pays(32, 1, 1, 28) &&
          !mq_bs_conv_seg_pays(16, 1, 1, 28) && mq_bs_conv_seg_pays(16, 3, 3, 4096) &&
          !mq_bs_conv_seg_pays(16, 3, 3, 4097));
    CHECK(!mq_bs_conv_seg_ok(64, 3, 3) && !mq_bs_conv_seg_ok(32, 3, 3) && !mq_bs_conv_seg_ok(8, 3, 3) &&
          !mq_bs_conv_seg_ok(24, 1, 1) && !mq_bs_conv_seg_ok(16, 3, 1) && !mq_bs_conv_seg_ok(48, 3, 3));
    /* bad arguments: an error, never a crash */
    uint8_t codes[3 * 3 * 32] = {0};
    int8_t wt[2 * 144] = {0};
    int rb2[2] = {2, 2};
    mq_bs_seg_scratch sc;
    memset(&sc, 0, sizeof sc);
    mq_bs_acts out = {0};
    mq_bs_weights pw;
    CHECK(mq_bs_pack_conv_seg(codes, 1, 3, 3, 32, 3, 3, 1, 1, 0, 2, MQ_BS_TIER_SCALAR, &sc, &out) ==
          MIXQ_ERR_ARG); /* 3x3 with C 32: more words than the plain layout */
    CHECK(mq_bs_pack_conv_seg(codes, 1, 3, 3, 16, 3, 3, 1, 1, 4, 2, MQ_BS_TIER_SCALAR, &sc, &out) ==
          MIXQ_ERR_ARG); /* padding code above 2 bits */
    CHECK(mq_bs_pack_conv_seg(codes, 1, 1, 1, 16, 3, 3, 1, 0, 0, 2, MQ_BS_TIER_SCALAR, &sc, &out) ==
          MIXQ_ERR_ARG); /* kernel larger than the input */
    codes[2 * 16 + 5] = 9; /* pixel 2, channel 5: a code above 2 bits, on every tier's packer */
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
        CHECK(mq_bs_pack_conv_seg(codes, 1, 3, 3, 16, 3, 3, 1, 1, 0, 2, (mq_bs_tier)t, &sc, &out) ==
              MIXQ_ERR_ARG);
        CHECKF(strstr(mixq_last_error(), "row 2 element 5") != NULL, "tier %s: message: %s",
               mq_bs_tier_name((mq_bs_tier)t), mixq_last_error());
    }
    CHECK(mq_bs_pack_weights_seg(wt, rb2, 2, 144, 50, &pw) == MIXQ_ERR_ARG); /* 50 does not divide 144 */
    mq_bs_weights_free(&pw);
    mq_bs_seg_scratch_free(&sc);
    mq_bs_acts_free(&out);
}

static void test_mixed_row_bits(void) {
    static const int shapes[][3] = {{7, 1, 65}, {9, 17, 64}, {33, 40, 129}, {64, 100, 300},
                                    {129, 63, 1155}, {3, 200, 7}};
    for (int s = 0; s < 6; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        rng_state = 4000u + s;
        int *rb = malloc((size_t)N * sizeof *rb);
        uint8_t *a = malloc((size_t)M * K);
        int8_t *w = malloc((size_t)N * K);
        if (!rb || !a || !w) {
            CHECK(!"out of memory");
            free(rb), free(a), free(w);
            return;
        }
        for (int n = 0; n < N; n++) rb[n] = 1 + (int)(rnd() % 8);
        if (s == 1) /* 1-bit rows next to 2-bit ones inside one panel */
            for (int n = 0; n < N; n++) rb[n] = 1 + (n % 3 == 0);
        for (int ab = 1; ab <= 8; ab += (s < 3 ? 1 : 3)) {
            fill_acts(a, (size_t)M * K, ab);
            fill_weights(w, rb, N, K);
            check_all_tiers(a, ab, w, rb, M, N, K, "mixed rows");
        }
        /* the packed panels: widths ascend, each panel as wide as its widest row */
        mq_bs_weights pw;
        CHECK_OK(mq_bs_pack_weights(w, rb, N, K, &pw));
        int64_t need = 0;
        for (int p = 0; p < pw.panels; p++) {
            if (p) CHECK(pw.bits[p] >= pw.bits[p - 1]);
            int maxb = 0;
            for (int c = 0; c < pw.rows[p]; c++) maxb = MQ_MAX(maxb, rb[pw.col[p * MQ_BS_NR + c]]);
            CHECK(pw.bits[p] == maxb);
            need += (int64_t)MQ_BS_NR * maxb;
        }
        CHECK(pw.plane_rows == need);
        mq_bs_weights_free(&pw);
        free(rb), free(a), free(w);
    }
}

/* All-max / all-min operands, up to K = 65536 where W8A8 all-min reaches -2139095040. */
static void test_extremes(void) {
    static const int Ks[] = {1, 64, 1155, MQ_BS_MAX_K};
    /* the carry-save trees of both tiers that have one (avx2's is opt-in) on the long K */
    char *saved = test_env_swap("MIXQ_BS_HS_MIN_KW", "16");
    for (int ki = 0; ki < 4; ki++) {
        enum { M = 9, N = 17 };
        const int K = Ks[ki];
        uint8_t *a = malloc((size_t)M * K);
        int8_t *w = malloc((size_t)N * K);
        int rb[N];
        if (!a || !w) {
            CHECK(!"out of memory");
            free(a), free(w);
            break;
        }
        static const int bl[][2] = {{8, 8}, {1, 8}, {8, 1}, {1, 1}, {2, 3}, {5, 2}};
        for (int bi = 0; bi < 6; bi++) {
            const int wb = bl[bi][0], ab = bl[bi][1];
            if (K == MQ_BS_MAX_K && bi >= 3) break; /* keep the run short */
            memset(a, (1 << ab) - 1, (size_t)M * K);
            for (int n = 0; n < N; n++) {
                rb[n] = wb;
                /* rows alternate: all max, all min, mixed extremes */
                const int mx = wb == 1 ? 1 : (1 << (wb - 1)) - 1;
                const int mn = wb == 1 ? -1 : -(1 << (wb - 1));
                for (int k = 0; k < K; k++)
                    w[(size_t)n * K + k] =
                        (int8_t)(n % 3 == 0 ? mx : n % 3 == 1 ? mn : (k & 1 ? mx : mn));
            }
            check_all_tiers(a, ab, w, rb, M, N, K, "extremes");
            if (K == MQ_BS_MAX_K && wb == 8 && ab == 8) {
                int32_t ref[M * N];
                CHECK_OK(mq_bs_gemm_ref(a, ab, w, rb, M, N, K, ref));
                CHECK(ref[1] == -2139095040); /* 65536 * 255 * -128 */
                CHECK(ref[0] == 65536 * 255 * 127);
            }
        }
        free(a), free(w);
    }
    free(test_env_swap("MIXQ_BS_HS_MIN_KW", saved));
    free(saved);
}

static void test_packers_identical(void) {
    static const int shapes[][2] = {{1, 1}, {7, 63}, {9, 64}, {17, 65}, {65, 129}, {3, 1155}};
    for (int s = 0; s < 6; s++)
        for (int ab = 1; ab <= 8; ab++) {
            const int M = shapes[s][0], K = shapes[s][1];
            rng_state = 5000u + 8u * s + ab;
            uint8_t *a = malloc((size_t)M * K);
            if (!a) {
                CHECK(!"out of memory");
                return;
            }
            fill_acts(a, (size_t)M * K, ab);
            mq_bs_acts ref = {0};
            CHECK_OK(mq_bs_pack_acts_ex(a, ab, M, K, MQ_BS_TIER_SCALAR, &ref));
            /* spot-check the documented layout on the scalar packer */
            for (int m = 0; m < M; m++)
                for (int k = 0; k < K; k += 1 + K / 7)
                    for (int j = 0; j < ab; j++) {
                        const size_t row = ((size_t)(m / MQ_BS_MR) * ab + j) * ref.kw;
                        const uint64_t word =
                            ref.bits[(row + (size_t)(k / 64)) * MQ_BS_MR + m % MQ_BS_MR];
                        CHECK((int)(word >> (k % 64) & 1) == (a[(size_t)m * K + k] >> j & 1));
                    }
            const size_t words = (size_t)ref.panels * ab * ref.kw * MQ_BS_MR;
            for (int t = 1; t < MQ_BS_TIER_COUNT; t++) {
                if (!mq_bs_tier_available((mq_bs_tier)t)) continue;
                mq_bs_acts p = {0};
                CHECK_OK(mq_bs_pack_acts_ex(a, ab, M, K, (mq_bs_tier)t, &p));
                CHECKF(memcmp(p.bits, ref.bits, words * 8) == 0 &&
                           memcmp(p.rowsum, ref.rowsum, (size_t)ref.panels * MQ_BS_MR * 4) == 0,
                       "tier %s packs M %d K %d a %d differently", mq_bs_tier_name((mq_bs_tier)t),
                       M, K, ab);
                mq_bs_acts_free(&p);
            }
            mq_bs_acts_free(&ref);
            free(a);
        }
}

/* The row packers themselves on row ranges that start and end inside a panel, every width, K
 * with and without a short last word: the rows in range match the scalar packer's, the others
 * are left untouched. The GFNI packer (the vpopcnt tier's where the CPU has GFNI and
 * AVX512-VBMI) is its own test so that a CPU without it shows as a CPU skip. */
typedef int (*rows_fn)(const uint8_t *, int, int, mq_bs_acts *);
static void packer_ranges(rows_fn fn, const char *name) {
    static const int Ks[] = {1, 63, 64, 144, 200, 1152};
    static const int ranges[][2] = {{0, 19}, {3, 5}, {5, 16}, {8, 17}, {1, 19}};
    enum { M = 19 };
    for (int ki = 0; ki < 6; ki++)
        for (int ab = 1; ab <= 8; ab++) {
            const int K = Ks[ki];
            rng_state = 9000u + 8u * (unsigned)ki + (unsigned)ab;
            uint8_t *a = malloc((size_t)M * K);
            if (!a) {
                CHECK(!"out of memory");
                return;
            }
            fill_acts(a, (size_t)M * K, ab);
            mq_bs_acts ref = {0}, p = {0};
            CHECK_OK(mq_bs_pack_acts_ex(a, ab, M, K, MQ_BS_TIER_SCALAR, &ref));
            CHECK_OK(mq_bs_acts_reserve(&p, M, K, ab));
            const size_t per = (size_t)ab * ref.kw * MQ_BS_MR; /* words per panel */
            for (int ri = 0; ri < 5; ri++) {
                const int m0 = ranges[ri][0], m1 = ranges[ri][1];
                memset(p.bits, 0xa5, (size_t)p.panels * per * 8);
                for (int m = 0; m < p.panels * MQ_BS_MR; m++) p.rowsum[m] = -7;
                CHECKF(fn(a, m0, m1, &p) == 0, "%s packer flags valid %d-bit codes", name, ab);
                int bad = 0;
                for (int m = 0; m < M; m++) {
                    const int in = m >= m0 && m < m1;
                    bad += p.rowsum[m] != (in ? ref.rowsum[m] : -7);
                    for (size_t jw = 0; jw < (size_t)ab * ref.kw; jw++) {
                        const size_t at = (size_t)(m / MQ_BS_MR) * per + jw * MQ_BS_MR + m % MQ_BS_MR;
                        bad += p.bits[at] != (in ? ref.bits[at] : 0xa5a5a5a5a5a5a5a5ull);
                    }
                }
                CHECKF(bad == 0, "%s packer, K %d, a %d, rows %d..%d: %d words or sums differ",
                       name, K, ab, m0, m1 - 1, bad);
            }
            if (ab < 8) { /* a code past the width, in the last row's last word, is flagged */
                a[(size_t)M * K - 1] = (uint8_t)(1u << ab);
                CHECKF(fn(a, 0, M, &p) != 0, "%s packer misses a %d-bit code at 2^%d", name, ab, ab);
            }
            mq_bs_acts_free(&ref);
            mq_bs_acts_free(&p);
            free(a);
        }
}

static void test_packer_ranges(void) {
    if (mq_bs_tier_available(MQ_BS_TIER_AVX512)) packer_ranges(mq_bs_pack_rows_avx512, "AVX-512BW");
    if (mq_bs_tier_available(MQ_BS_TIER_AVX2)) packer_ranges(mq_bs_pack_rows_avx2, "AVX2");
}

static void test_packer_gfni(void) {
    if (!mq_bs_gfni_available()) {
        test_skip_cpu("the GFNI packer needs GFNI and AVX512-VBMI, which this CPU (or build) lacks");
        return;
    }
    packer_ranges(mq_bs_pack_rows_gfni, "GFNI");
}

/* Re-packing into a used struct (bigger, then smaller with pad pixels): no stale bits. */
static void test_reuse_threads_ldc(void) {
    enum { N = 21, K = 130, M1 = 40, M2 = 11, LDC = 29 };
    int rb[N];
    int8_t w[N * K];
    uint8_t a1[M1 * K], a2[M2 * K];
    rng_state = 6000;
    for (int n = 0; n < N; n++) rb[n] = n % 2 ? 3 : 1;
    fill_weights(w, rb, N, K);
    fill_acts(a1, sizeof a1, 8);
    fill_acts(a2, sizeof a2, 2);
    mq_bs_weights pw;
    CHECK_OK(mq_bs_pack_weights(w, rb, N, K, &pw));
    int32_t ref[M1 * N], C[M1 * LDC];
    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        if (!mq_bs_tier_available((mq_bs_tier)t) || (only_tier >= 0 && t != only_tier)) continue;
        mq_bs_acts pa = {0};
        /* 255s everywhere first, so a stale pad pixel or word would show */
        uint8_t ones[M1 * K];
        memset(ones, 255, sizeof ones);
        CHECK_OK(mq_bs_pack_acts_ex(ones, 8, M1, K, (mq_bs_tier)t, &pa));
        CHECK_OK(mq_bs_pack_acts_ex(a2, 2, M2, K, (mq_bs_tier)t, &pa));
        /* the layout promise: padding pixels are all-zero words with a zero sum */
        int pad_ok = 1;
        for (int m = M2; m < pa.panels * MQ_BS_MR; m++) {
            pad_ok &= pa.rowsum[m] == 0;
            for (int j = 0; j < 2; j++)
                for (int kk = 0; kk < pa.kw; kk++)
                    pad_ok &= pa.bits[(((size_t)(m / MQ_BS_MR) * 2 + j) * pa.kw + kk) * MQ_BS_MR +
                                      m % MQ_BS_MR] == 0;
        }
        CHECKF(pad_ok, "tier %s: stale padding pixels after re-pack",
               mq_bs_tier_name((mq_bs_tier)t));
        CHECK_OK(mq_bs_gemm_ref(a2, 2, w, rb, M2, N, K, ref));
        for (int i = 0; i < M1 * LDC; i++) C[i] = -7;
        CHECK_OK(mq_bs_gemm_ex(&pa, &pw, C, LDC, (mq_bs_tier)t, 1));
        int ok = 1;
        for (int m = 0; m < M1; m++)
            for (int c = 0; c < LDC; c++) {
                const int want = m < M2 && c < N ? ref[m * N + c] : -7; /* ldc gap untouched */
                ok &= C[m * LDC + c] == want;
            }
        CHECKF(ok, "tier %s: re-pack / ldc", mq_bs_tier_name((mq_bs_tier)t));
        /* thread counts 1, 2, 3 give identical results */
        CHECK_OK(mq_bs_pack_acts_ex(a1, 8, M1, K, (mq_bs_tier)t, &pa));
        int32_t C1[M1 * N], C2[M1 * N];
        CHECK_OK(mq_bs_gemm_ex(&pa, &pw, C1, N, (mq_bs_tier)t, 1));
        for (int nt = 2; nt <= 3; nt++) {
            memset(C2, 0, sizeof C2);
            CHECK_OK(mq_bs_gemm_ex(&pa, &pw, C2, N, (mq_bs_tier)t, nt));
            CHECK(memcmp(C1, C2, sizeof C1) == 0);
        }
        CHECK_OK(mq_bs_gemm_ref(a1, 8, w, rb, M1, N, K, ref));
        CHECK(memcmp(C1, ref, sizeof C1) == 0);
        mq_bs_acts_free(&pa);
    }
    mq_bs_weights_free(&pw);
}

static void test_validation(void) {
    enum { M = 4, N = 5, K = 70 };
    int rb[N] = {2, 2, 1, 8, 4};
    int8_t w[N * K];
    uint8_t a[M * K];
    int32_t C[M * N];
    rng_state = 7000;
    fill_weights(w, rb, N, K);
    fill_acts(a, sizeof a, 2);
    mq_bs_weights pw;

    w[3 * K + 5] = 2; /* row 0..: row 3 is 8-bit, fine */
    w[1 * K + 9] = 2; /* 2-bit row 1: range -2..1 */
    CHECK(mq_bs_pack_weights(w, rb, N, K, &pw) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "row 1 element 9") != NULL, "%s", mixq_last_error());
    CHECK(pw.planes == NULL);
    mq_bs_weights_free(&pw);
    CHECK(mq_bs_gemm_ref(a, 2, w, rb, M, N, K, C) == MIXQ_ERR_ARG);
    w[1 * K + 9] = -2;
    w[2 * K + 4] = 0; /* 1-bit row: only -1 / +1 */
    CHECK(mq_bs_pack_weights(w, rb, N, K, &pw) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "row 2 element 4") != NULL, "%s", mixq_last_error());
    w[2 * K + 4] = -1;
    w[4 * K + 69] = -9; /* 4-bit: -8..7 */
    CHECK(mq_bs_pack_weights(w, rb, N, K, &pw) == MIXQ_ERR_ARG);
    CHECKF(strstr(mixq_last_error(), "row 4 element 69") != NULL, "%s", mixq_last_error());
    w[4 * K + 69] = -8;
    rb[0] = 0;
    CHECK(mq_bs_pack_weights(w, rb, N, K, &pw) == MIXQ_ERR_ARG);
    rb[0] = 9;
    CHECK(mq_bs_pack_weights(w, rb, N, K, &pw) == MIXQ_ERR_ARG);
    rb[0] = 2;
    CHECK(mq_bs_pack_weights(w, rb, N, 0, &pw) == MIXQ_ERR_ARG);
    CHECK(mq_bs_pack_weights(w, rb, 0, K, &pw) == MIXQ_ERR_ARG);
    CHECK(mq_bs_pack_weights(w, rb, N, MQ_BS_MAX_K + 1, &pw) == MIXQ_ERR_ARG);
    CHECK(mq_bs_pack_weights(NULL, rb, N, K, &pw) == MIXQ_ERR_ARG);
    CHECK_OK(mq_bs_pack_weights(w, rb, N, K, &pw));

    for (int t = 0; t < MQ_BS_TIER_COUNT; t++) {
        if (!mq_bs_tier_available((mq_bs_tier)t) || (only_tier >= 0 && t != only_tier)) continue;
        mq_bs_acts pa = {0};
        a[2 * K + 66] = 4; /* 2-bit activations: 0..3 */
        CHECK(mq_bs_pack_acts_ex(a, 2, M, K, (mq_bs_tier)t, &pa) == MIXQ_ERR_ARG);
        CHECKF(strstr(mixq_last_error(), "row 2 element 66") != NULL, "tier %s: %s",
               mq_bs_tier_name((mq_bs_tier)t), mixq_last_error());
        CHECK_OK(mq_bs_pack_acts_ex(a, 3, M, K, (mq_bs_tier)t, &pa)); /* fine at 3 bits */
        /* 2-bit codes at 1 bit (the AVX-512 packer's own path for 1-2 bits) */
        CHECK(mq_bs_pack_acts_ex(a, 1, M, K, (mq_bs_tier)t, &pa) == MIXQ_ERR_ARG);
        a[2 * K + 66] = 3;
        CHECK(mq_bs_pack_acts_ex(a, 0, M, K, (mq_bs_tier)t, &pa) == MIXQ_ERR_ARG);
        CHECK(mq_bs_pack_acts_ex(a, 9, M, K, (mq_bs_tier)t, &pa) == MIXQ_ERR_ARG);
        CHECK(mq_bs_pack_acts_ex(a, 2, 0, K, (mq_bs_tier)t, &pa) == MIXQ_ERR_ARG);
        CHECK(mq_bs_pack_acts_ex(NULL, 2, M, K, (mq_bs_tier)t, &pa) == MIXQ_ERR_ARG);
        CHECK_OK(mq_bs_pack_acts_ex(a, 2, M, K - 1, (mq_bs_tier)t, &pa));
        CHECK(mq_bs_gemm_ex(&pa, &pw, C, N, (mq_bs_tier)t, 1) == MIXQ_ERR_SHAPE);
        CHECK_OK(mq_bs_pack_acts_ex(a, 2, M, K, (mq_bs_tier)t, &pa));
        CHECK(mq_bs_gemm_ex(&pa, &pw, C, N - 1, (mq_bs_tier)t, 1) == MIXQ_ERR_ARG);
        CHECK(mq_bs_gemm_ex(&pa, &pw, C, N, (mq_bs_tier)t, 0) == MIXQ_ERR_ARG);
        CHECK(mq_bs_gemm_ex(&pa, &pw, NULL, N, (mq_bs_tier)t, 1) == MIXQ_ERR_ARG);
        CHECK(mq_bs_gemm_ex(&pa, &pw, C, N, MQ_BS_TIER_COUNT, 1) == MIXQ_ERR_ARG);
        CHECK_OK(mq_bs_gemm_ex(&pa, &pw, C, N, (mq_bs_tier)t, 1));
        mq_bs_acts_free(&pa);
        mq_bs_acts empty = {0};
        CHECK(mq_bs_gemm_ex(&empty, &pw, C, N, (mq_bs_tier)t, 1) == MIXQ_ERR_STATE);
    }
    mq_bs_tier t;
    CHECK(mq_bs_tier_parse("AVX512", &t) == MIXQ_ERR_ARG);
    CHECK(mq_bs_gemm_ref(a, 2, w, rb, M, N, MQ_BS_MAX_K + 1, C) == MIXQ_ERR_ARG);
    mq_bs_weights_free(&pw);
    mq_bs_weights_free(NULL);
    mq_bs_acts_free(NULL);
}

int main(void) {
    TEST_RUN(test_tiers);
    TEST_RUN(test_tier_scalar);
    TEST_RUN(test_tier_avx2);
    TEST_RUN(test_tier_avx512);
    TEST_RUN(test_tier_vpopcnt);
    TEST_RUN(test_env_override);
    TEST_RUN(test_all_bits_small);
    TEST_RUN(test_awkward_sizes);
    TEST_RUN(test_large);
    TEST_RUN(test_carry_save_paths);
    TEST_RUN(test_tier_copy);
    TEST_RUN(test_pack_conv);
    TEST_RUN(test_pack_conv_seg);
    TEST_RUN(test_conv_dir);
    TEST_RUN(test_mixed_row_bits);
    TEST_RUN(test_extremes);
    TEST_RUN(test_packers_identical);
    TEST_RUN(test_packer_ranges);
    TEST_RUN(test_packer_gfni);
    TEST_RUN(test_reuse_threads_ldc);
    TEST_RUN(test_validation);
    printf("  %d tier runs compared with the reference\n", n_tiers_run);
    return test_summary();
}
