/* Per-layer GEMM kernels side by side, one thread: mixq's bit-serial and int8 kernels against
 * oneDNN's int8 and fp32 matmul primitives and OpenBLAS sgemm, on the GEMM form of real layers.
 *
 * Shapes (M = output pixels x batch, N = output channels, K = C_in/groups x R x S):
 *   resnet20  the distinct conv shapes of mixq's resnet20 at 1x28x28 (mixq_model_hw_layer);
 *   vgg11     the distinct conv shapes of vgg11 at 3x32x32;
 *   kernels   7 reference layers used while designing the kernels (ResNet-20's stem and stages
 *             on 32x32, 64->64 on 64x64, 128->128 on 16x16, 256->256 on 8x8), per image.
 * Fully connected layers are left out. --batch multiplies M (a list runs one section per batch).
 *
 * Implementations, all on the same M, N, K, all timed single-threaded (mixq_set_threads(1):
 * OpenMP, oneDNN and OpenBLAS get one thread):
 *   s8 matmul   oneDNN matmul primitive, u8 src [M][K] (plain) x s8 weights -> s32 [M][N], the
 *               weights reordered once, outside the timing, to the layout the primitive picks
 *               (format_tag any). THE REFERENCE: every ratio is to it.
 *   mixq int8   the runtime's int8 path, mq_i8_matmul (src/kernels/int8.h): oneDNN's matmul
 *               primitive on weights reordered once at layer creation (outside the timing), a
 *               primitive cached per M, memory objects made per call.
 *   sgemm       OpenBLAS cblas_sgemm (fp32, C = A W^T).
 *   f32 matmul  oneDNN matmul primitive in fp32, weights pre-reordered as for s8.
 *   WxAy        mixq bit-serial, packing included, as the runtime packs the layer (rt_layer.c):
 *               convolutions with C_in a multiple of 64 by mq_bs_pack_conv, straight from the
 *               NHWC input codes [batch][H][W][C] (each code packed once, rows assembled from
 *               words; no im2col matrix); the others by mq_bs_pack_acts_ex from the im2col
 *               matrix uint8 [M][K] (the runtime's im2col copy is not timed, as it is not for
 *               the int8 peers, which also start from [M][K]). Then mq_bs_gemm_ex, on the tier
 *               mq_bs_tier_select picks (best, or MIXQ_BITSERIAL_TIER), 1 thread. Weights
 *               packed outside the timing. The kernel-only table times mq_bs_gemm_ex on
 *               pre-packed activations. The report marks the conv-packed shapes with "c".
 * Data: int8 peers get full-range u8 x s8 (the kernels' speed does not depend on values); fp32
 * peers the same values as floats; bit-serial WxAy gets a-bit unsigned activations and w-bit
 * weights (w = 1: +-1). Every implementation's output is checked against a direct dot product
 * on 256 sampled entries (exact for the integer ones, to float rounding for fp32) before its
 * time is accepted; a failure is reported and makes the exit status 1.
 *
 * Timing (as the peak loop below): CPU time of the calling thread (the machine is shared;
 * wall time would count slices spent descheduled). Two warm-up calls, then R timed runs (R = 5,
 * --quick 3), each repeating the call until >= 20 ms (--quick 5 ms); the median time per call
 * is used.
 *
 * Metrics: GOP/s = 2*M*N*K / time for every implementation (int8-equivalent for bit-serial);
 * ratio = (GOP/s) / (s8 matmul GOP/s) = s8 matmul time / time (> 1: faster than oneDNN int8);
 * % of ceiling (bit-serial) = useful bit pairs per second, M*N*K*w*a / time, over the tier's
 * ceiling: its AND+popcount instructions in a register-resident loop (below), re-measured next to
 * each configuration, and each cell is divided by the ceiling measured next to it (this shared
 * machine's clock moved between 3.3 and 3.6 GHz within one run: against the run's best ceiling a
 * slow stretch read as a slow kernel); the run's best is printed too; a cell above its ceiling
 * is a bench error (exit status 1). With --passes, times and ceilings are medians over passes.
 * ceil = the ceiling ratio 2*ceiling/(w*a) / s8 GOP/s: the speed-up over s8 a kernel running at
 * the ceiling would reach. The older peak loop (operands from L1) is printed for reference.
 *
 * CPU: the process is pinned to one CPU (--cpu N), by default (--cpu auto) the one of those it
 * may use where a probe (784 x 16 x 144 W2A2, bit-serial pack + GEMM) runs fastest: on the
 * 2-vCPU machine this was developed on, one vCPU ran the same code 17 % (GEMM) to 70 % (packer)
 * slower than the other for hours, with no steal time reported (a busy sibling hyperthread on
 * the host), and a process that the scheduler moved between them mixed both speeds. The ceiling,
 * the peers and the cells then all run on that CPU; the header gives the probe time of each CPU.
 * --cpu none leaves the placement to the scheduler.
 *
 * usage: bench_layers [--shapes resnet20|vgg11|kernels|all[,...]] [--batch B[,B...]]
 *                     [--passes P] [--quick] [--cpu auto|none|N] [--no-dir] [--out FILE]
 * --no-dir times the GEMM layouts where the runtime runs mq_bs_conv_dir ([d] cells).
 * The markdown report goes to stdout and, with --out, to FILE; progress goes to stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET: --cpu */
#endif
#include <cblas.h>
#include <dnnl.h>
#include <sched.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "kernels/bitserial.h"
#include "kernels/int8.h"
#include "quant/quant.h"
#include "bench_report.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#endif

static volatile uint64_t sink;


static double cpu_now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

/* ---------------------------------------------------------------- AND+popcount peaks
 * Per tier, the best rate of AND + popcount over two L1-resident bit arrays in that tier's
 * instructions (no packing, no tiling, no stores): scalar popcnt, the AVX2 nibble table, the
 * AVX-512BW carry-save tree, AVX-512 vpopcntq. The kernels' %peak is measured against it. */
enum { PW = 512 };
static uint64_t pa_[PW] __attribute__((aligned(64))), pb_[PW] __attribute__((aligned(64)));
static uint64_t pal_[PW] __attribute__((aligned(64))), pah_[PW] __attribute__((aligned(64)));
static uint64_t pbh_[PW] __attribute__((aligned(64)));
static uint64_t cl_a[8], cl_b[8]; /* the ceiling loops' operands (below): random words */

static uint64_t loop_scalar(int reps) {
    uint64_t s[8] = {0};
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < PW; i += 8)
            for (int u = 0; u < 8; u++)
                s[u] += (uint64_t)__builtin_popcountll(pa_[i + u] & pb_[i + u]);
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

#ifdef BENCH_X86
__attribute__((target("avx2"))) static uint64_t loop_avx2(int reps) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                         2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    __m256i q = _mm256_setzero_si256();
    for (int r = 0; r < reps; r++) {
        __m256i b[8];
        for (int u = 0; u < 8; u++) b[u] = _mm256_setzero_si256();
        for (int i = 0; i < PW; i += 32)
            for (int u = 0; u < 8; u++) {
                const int o = i + 4 * u;
                const __m256i lo = _mm256_and_si256(_mm256_load_si256((const void *)(pal_ + o)),
                                                    _mm256_load_si256((const void *)(pb_ + o)));
                const __m256i hi = _mm256_and_si256(_mm256_load_si256((const void *)(pah_ + o)),
                                                    _mm256_load_si256((const void *)(pbh_ + o)));
                b[u] = _mm256_add_epi8(b[u], _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                                                             _mm256_shuffle_epi8(lut, hi)));
            }
        for (int u = 0; u < 8; u++)
            q = _mm256_add_epi64(q, _mm256_sad_epu8(b[u], _mm256_setzero_si256()));
    }
    uint64_t o[4];
    _mm256_storeu_si256((void *)o, q);
    return o[0] + o[1] + o[2] + o[3];
}

/* The avx512 tier's instruction mix: a Harley-Seal carry-save tree (vpandq, vpternlogq) over
 * blocks of 8 vectors, one nibble-table popcount (vpshufb) of the "eights" vector per block into
 * byte counters, flushed with vpsadbw after 30 blocks per tree (<= 240: no overflow); four
 * independent trees hide the ternlog latency. As in the kernel, one operand is a broadcast
 * (there a 32-bit half word, here a 64-bit word: the same instructions): vector g of pb_ meets
 * word g of pa_ (8 x 64 bit pairs per vpandq). */
#define TGT_INLINE static inline __attribute__((always_inline, target("avx512f,avx512bw")))
#include "kernels/bitserial_csa.h"
#define PK_CSA MQ_BS_CSA
#define pk_popb mq_bs_popb
/* One tree u: state in named variables (o, t, f: carry-save bit vectors, c: byte counters);
 * PK_AW(u, j) is tree u's j-th AND of 8 (defined by each loop). */
#define PK_TREE(u)                                                                              \
    do {                                                                                        \
        __m512i ta, tb, fa, fb, e;                                                              \
        PK_CSA(ta, o##u, PK_AW(u, 0), PK_AW(u, 1));                                             \
        PK_CSA(tb, o##u, PK_AW(u, 2), PK_AW(u, 3));                                             \
        PK_CSA(fa, t##u, ta, tb);                                                               \
        PK_CSA(ta, o##u, PK_AW(u, 4), PK_AW(u, 5));                                             \
        PK_CSA(tb, o##u, PK_AW(u, 6), PK_AW(u, 7));                                             \
        PK_CSA(fb, t##u, ta, tb);                                                               \
        PK_CSA(e, f##u, fa, fb);                                                                \
        c##u = _mm512_add_epi8(c##u, pk_popb(e, lut, m4));                                      \
    } while (0)
/* the peak loop's: word of pa_ broadcast, vector of pb_ loaded */
#define PK_AW(u, j)                                                                             \
    _mm512_and_si512(_mm512_set1_epi64((long long)pa_[(i + 64 * (u)) / 8 + (j)]),              \
                     _mm512_load_si512((const void *)(pb_ + i + 64 * (u) + 8 * (j))))
#define PK_END(u)                                                                               \
    do {                                                                                        \
        const __m512i p2 = pk_popb(t##u, lut, m4), p4 = pk_popb(f##u, lut, m4);                 \
        const __m512i p44 = _mm512_add_epi8(p4, p4);                                            \
        __m512i low = _mm512_add_epi8(pk_popb(o##u, lut, m4), _mm512_add_epi8(p2, p2));         \
        low = _mm512_add_epi8(low, _mm512_add_epi8(p44, p44));                                  \
        q = _mm512_add_epi64(q, _mm512_add_epi64(_mm512_sad_epu8(low, zero),                    \
                                                 _mm512_slli_epi64(_mm512_sad_epu8(c##u, zero), 3))); \
    } while (0)
__attribute__((target("avx512f,avx512bw"))) static uint64_t loop_avx512(int reps) {
    const __m512i lut =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i m4 = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    __m512i q = zero;
    for (int r = 0; r < reps; r += 15) { /* 15 passes = 30 blocks per tree between flushes */
        __m512i o0 = zero, t0 = zero, f0 = zero, c0 = zero, o1 = zero, t1 = zero, f1 = zero;
        __m512i c1 = zero, o2 = zero, t2 = zero, f2 = zero, c2 = zero, o3 = zero, t3 = zero;
        __m512i f3 = zero, c3 = zero;
        for (int pass = 0; pass < MQ_MIN(15, reps - r); pass++)
            for (int i = 0; i < PW; i += 256) { /* 4 trees x 8 vectors x 8 words */
                PK_TREE(0);
                PK_TREE(1);
                PK_TREE(2);
                PK_TREE(3);
            }
        PK_END(0);
        PK_END(1);
        PK_END(2);
        PK_END(3);
    }
    return (uint64_t)_mm512_reduce_add_epi64(q);
}
/* The ceilings' 8 register operands x0..x7 (cl_a's words in every lane), and the empty asm that
 * makes the compiler treat them as changed each iteration (so every AND is recomputed). */
#define CL_X8                                                                                   \
    __m512i x0 = _mm512_set1_epi64((long long)cl_a[0]), x1 = _mm512_set1_epi64((long long)cl_a[1]), \
            x2 = _mm512_set1_epi64((long long)cl_a[2]), x3 = _mm512_set1_epi64((long long)cl_a[3]), \
            x4 = _mm512_set1_epi64((long long)cl_a[4]), x5 = _mm512_set1_epi64((long long)cl_a[5]), \
            x6 = _mm512_set1_epi64((long long)cl_a[6]), x7 = _mm512_set1_epi64((long long)cl_a[7])
#define CL_LAUNDER8                                                                             \
    __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5), "+v"(x6), "+v"(x7))
/* The avx512 tier's ceiling (below): the same trees over 8 register operands x0..x7 and y0/y1. */
#undef PK_AW
#define PK_AW(u, j) _mm512_and_si512(x##j, y##u)
__attribute__((target("avx512f,avx512bw"))) static uint64_t ceil_avx512(int reps) {
    const __m512i lut =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i m4 = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    const __m512i y0 = _mm512_set1_epi64((long long)cl_b[0]), y1 = _mm512_set1_epi64((long long)cl_b[1]);
    CL_X8;
    __m512i q = zero;
    for (int r = 0; r < reps; r += 30) { /* <= 30 blocks per tree between flushes */
        __m512i o0 = zero, t0 = zero, f0 = zero, c0 = zero, o1 = zero, t1 = zero, f1 = zero, c1 = zero;
        for (int k = 0; k < MQ_MIN(30, reps - r); k++) {
            CL_LAUNDER8;
            PK_TREE(0);
            PK_TREE(1);
        }
        PK_END(0);
        PK_END(1);
    }
    return (uint64_t)_mm512_reduce_add_epi64(q) / 8; /* 8 lanes of the same words */
}

#undef PK_TREE
#undef PK_AW
#undef PK_END
#undef PK_CSA
#undef pk_popb
#undef TGT_INLINE

__attribute__((target("avx512f,avx512bw,avx512vpopcntdq"))) static uint64_t loop_vpopcnt(int reps) {
    __m512i q[8];
    for (int u = 0; u < 8; u++) q[u] = _mm512_setzero_si512();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < PW; i += 64)
            for (int u = 0; u < 8; u++)
                q[u] = _mm512_add_epi64(
                    q[u], _mm512_popcnt_epi64(_mm512_and_si512(
                              _mm512_load_si512((const void *)(pa_ + i + 8 * u)),
                              _mm512_load_si512((const void *)(pb_ + i + 8 * u)))));
    __m512i t = q[0];
    for (int u = 1; u < 8; u++) t = _mm512_add_epi64(t, q[u]);
    return (uint64_t)_mm512_reduce_add_epi64(t);
}
#endif

static void peak_init(void) {
    mq_rng rng;
    mq_rng_seed(&rng, 42);
    for (int i = 0; i < PW; i++) {
        pa_[i] = mq_rng_u64(&rng);
        pb_[i] = mq_rng_u64(&rng);
        pal_[i] = pa_[i] & 0x0f0f0f0f0f0f0f0full;
        pah_[i] = (pa_[i] >> 4) & 0x0f0f0f0f0f0f0f0full;
        pbh_[i] = pb_[i] >> 4;
    }
    for (int i = 0; i < 8; i++) cl_a[i] = mq_rng_u64(&rng), cl_b[i] = mq_rng_u64(&rng);
}

/* Calls of fn(reps) per second at a reps that runs >= min_s: median of 5. */
static double calls_per_s(uint64_t (*fn)(int), double min_s, int *reps_out) {
    int reps = 64;
    for (;;) {
        const double t0 = cpu_now();
        sink += fn(reps);
        if (cpu_now() - t0 > min_s) break;
        reps *= 2;
    }
    double r[5];
    for (int i = 0; i < 5; i++) {
        const double t0 = cpu_now();
        sink += fn(reps);
        r[i] = cpu_now() - t0;
    }
    qsort(r, 5, sizeof r[0], cmp_dbl);
    *reps_out = reps;
    return 1.0 / r[2];
}

/* The best peak-loop rate seen in this run: %peak is measured against it (a run slowed by
 * the shared machine would otherwise make a kernel look faster than the hardware allows). */
static double g_peak_best;

/* Bit pairs per second of the tier's loop, median of 5 runs of >= min_s (0 if absent). */
static double peak_bitpairs(mq_bs_tier t, double min_s) {
    if (!mq_bs_tier_available(t)) return 0;
    uint64_t (*fn)(int) = loop_scalar;
#ifdef BENCH_X86
    if (t == MQ_BS_TIER_AVX2) fn = loop_avx2;
    if (t == MQ_BS_TIER_AVX512) fn = loop_avx512;
    if (t == MQ_BS_TIER_VPOPCNT) fn = loop_vpopcnt;
#endif
    uint64_t ref = 0;
    for (int i = 0; i < PW; i++)
        ref += (uint64_t)__builtin_popcountll(
            pa_[t == MQ_BS_TIER_AVX512 ? i / 8 : i] & pb_[i]); /* avx512: broadcast words */
    if (fn(1000) != ref * 1000) {
        fprintf(stderr, "bench_layers: %s peak loop computes a wrong sum\n", mq_bs_tier_name(t));
        return 0;
    }
    int reps;
    const double v = calls_per_s(fn, min_s, &reps) * reps * 64.0 * PW;
    if (v > g_peak_best) g_peak_best = v;
    return v;
}

/* ---------------------------------------------------------------- instruction-level ceilings
 * The peak loops above read both operands from L1, so a kernel that keeps one operand in a
 * register (or broadcasts it) can pass them. The ceiling is the same instruction mix with every
 * operand in a register: independent chains (8 for the popcount tiers, 2 carry-save trees of 8
 * vectors for avx512), the operands "changed" by an empty asm each iteration so the compiler
 * must recompute every AND, and no loads or stores at all (avx2: 4 chains, its 16 registers). It is the most bit pairs per second
 * the tier's instructions can give on this core: a kernel cell above 100 % of it is a bench
 * error. Next to it, the core clock (a chain of dependent 1-cycle adds) turns it into bit pairs
 * per cycle, and vpopcntq's and vpternlogq's own throughput (12 independent chains) per cycle,
 * to check the ceiling against the instructions' issue rates. */

/* scalar: 6 chains (8 would not fit the general registers with their sums) */
static uint64_t ceil_scalar(int reps) {
    uint64_t x[6], s[6] = {0};
    const uint64_t y = cl_b[0];
    memcpy(x, cl_a, sizeof x);
    for (int r = 0; r < reps; r++) {
        __asm__ volatile("" : "+r"(x[0]), "+r"(x[1]), "+r"(x[2]), "+r"(x[3]), "+r"(x[4]), "+r"(x[5]));
        for (int u = 0; u < 6; u++) s[u] += (uint64_t)__builtin_popcountll(x[u] & y);
    }
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5];
}
/* sum over the first n words of cl_a of popcount(a & b) */
static uint64_t ceil_ref(int n, uint64_t b) {
    uint64_t v = 0;
    for (int u = 0; u < n; u++) v += (uint64_t)__builtin_popcountll(cl_a[u] & b);
    return v;
}

#ifdef BENCH_X86
/* avx2: 4 chains (16 ymm registers) of (low nibbles AND, high nibbles AND, two table lookups,
 * byte adds) = 256 bit pairs each; byte counters (<= 8 per step) flushed by vpsadbw every 31. */
#define C2_STEP(u)                                                                              \
    c##u = _mm256_add_epi8(c##u, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(l##u, yl)), \
                                                 _mm256_shuffle_epi8(lut, _mm256_and_si256(h##u, yh))))
#define C2_INIT(u)                                                                              \
    __m256i l##u = _mm256_and_si256(_mm256_set1_epi64x((long long)cl_a[u]), m4);               \
    __m256i h##u = _mm256_and_si256(_mm256_srli_epi16(_mm256_set1_epi64x((long long)cl_a[u]), 4), m4)
__attribute__((target("avx2"))) static uint64_t ceil_avx2(int reps) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                         2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    C2_INIT(0);
    C2_INIT(1);
    C2_INIT(2);
    C2_INIT(3);
    const __m256i yl = _mm256_and_si256(_mm256_set1_epi64x((long long)cl_b[0]), m4);
    const __m256i yh = _mm256_and_si256(_mm256_srli_epi16(_mm256_set1_epi64x((long long)cl_b[0]), 4), m4);
    __m256i q = zero;
    for (int r = 0; r < reps; r += 31) {
        __m256i c0 = zero, c1 = zero, c2 = zero, c3 = zero;
        for (int k = 0; k < MQ_MIN(31, reps - r); k++) {
            __asm__ volatile("" : "+x"(l0), "+x"(l1), "+x"(l2), "+x"(l3), "+x"(h0), "+x"(h1), "+x"(h2), "+x"(h3));
            C2_STEP(0);
            C2_STEP(1);
            C2_STEP(2);
            C2_STEP(3);
        }
        q = _mm256_add_epi64(q, _mm256_add_epi64(_mm256_add_epi64(_mm256_sad_epu8(c0, zero), _mm256_sad_epu8(c1, zero)),
                                                 _mm256_add_epi64(_mm256_sad_epu8(c2, zero), _mm256_sad_epu8(c3, zero))));
    }
    uint64_t o[4];
    _mm256_storeu_si256((void *)o, q);
    return (o[0] + o[1] + o[2] + o[3]) / 4; /* 4 lanes hold the same words */
}
#undef C2_STEP
#undef C2_INIT

/* vpopcnt: 8 chains of vpandq, vpopcntq, vpaddq, in named registers (gcc keeps arrays of
 * vectors that an asm touches in memory). */
#define CV_STEP(u) s##u = _mm512_add_epi64(s##u, _mm512_popcnt_epi64(_mm512_and_si512(x##u, y)))
__attribute__((target("avx512f,avx512vpopcntdq"))) static uint64_t ceil_vpopcnt(int reps) {
    const __m512i y = _mm512_set1_epi64((long long)cl_b[0]);
    CL_X8;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    for (int r = 0; r < reps; r++) {
        CL_LAUNDER8;
        CV_STEP(0);
        CV_STEP(1);
        CV_STEP(2);
        CV_STEP(3);
        CV_STEP(4);
        CV_STEP(5);
        CV_STEP(6);
        CV_STEP(7);
    }
    s0 = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)),
                          _mm512_add_epi64(_mm512_add_epi64(s4, s5), _mm512_add_epi64(s6, s7)));
    return (uint64_t)_mm512_reduce_add_epi64(s0) / 8;
}
#undef CV_STEP
#undef CL_X8
#undef CL_LAUNDER8

/* One instruction's throughput: 12 independent chains of it, in instructions per call. */
#define INSN_LOOP(name, tgt, expr)                                                              \
    __attribute__((target(tgt))) static uint64_t name(int reps) {                               \
        __m512i v[12];                                                                          \
        const __m512i k1 = _mm512_set1_epi64((long long)cl_b[0]), k2 = _mm512_set1_epi64(3);   \
        (void)k1, (void)k2;                                                                     \
        for (int u = 0; u < 12; u++) v[u] = _mm512_set1_epi64((long long)cl_a[u % 8] | 1);     \
        for (int r = 0; r < reps; r++)                                                          \
            for (int u = 0; u < 12; u++) v[u] = expr;                                           \
        __m512i t = v[0];                                                                       \
        for (int u = 1; u < 12; u++) t = _mm512_xor_si512(t, v[u]);                             \
        return (uint64_t)_mm512_reduce_add_epi64(t) & 1;                                        \
    }
INSN_LOOP(insn_vpopcntq, "avx512f,avx512vpopcntdq", _mm512_popcnt_epi64(v[u]))
INSN_LOOP(insn_vpternlogq, "avx512f", _mm512_ternarylogic_epi64(v[u], k1, k2, 0x96))
#undef INSN_LOOP
#endif

/* The core clock in Hz: a chain of dependent 1-cycle adds (the median of 5 runs of >= 20 ms). */
static double core_hz(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    double r[5];
    long n = 1 << 16;
    for (;;) {
        uint64_t x = 1;
        const double t0 = cpu_now();
        for (long i = 0; i < n; i++) __asm__ volatile(".rept 100\n\taddq %0, %0\n\t.endr" : "+r"(x));
        if (cpu_now() - t0 > 0.02) break;
        n *= 2;
    }
    for (int k = 0; k < 5; k++) {
        uint64_t x = 1;
        const double t0 = cpu_now();
        for (long i = 0; i < n; i++) __asm__ volatile(".rept 100\n\taddq %0, %0\n\t.endr" : "+r"(x));
        r[k] = cpu_now() - t0;
    }
    qsort(r, 5, sizeof r[0], cmp_dbl);
    return 100.0 * (double)n / r[2];
#else
    return 0;
#endif
}

/* The best ceiling seen in this run (bit pairs / s): every cell's % is measured against it. */
static double g_ceil_best;
static int g_over; /* a cell measured above the ceiling */

/* Bit pairs per second of the tier's register-resident loop (0 if absent or wrong). */
static double ceil_bitpairs(mq_bs_tier t, double min_s) {
    if (!mq_bs_tier_available(t)) return 0;
    uint64_t (*fn)(int) = ceil_scalar;
    double pairs = 6 * 64; /* bit pairs per rep */
    uint64_t want = ceil_ref(6, cl_b[0]); /* the sum per rep */
#ifdef BENCH_X86
    if (t == MQ_BS_TIER_AVX2) fn = ceil_avx2, pairs = 4 * 256, want = ceil_ref(4, cl_b[0]);
    if (t == MQ_BS_TIER_AVX512)
        fn = ceil_avx512, pairs = 2 * 8 * 512, want = ceil_ref(8, cl_b[0]) + ceil_ref(8, cl_b[1]);
    if (t == MQ_BS_TIER_VPOPCNT) fn = ceil_vpopcnt, pairs = 8 * 512, want = ceil_ref(8, cl_b[0]);
#endif
    want *= 1000;
    const uint64_t got = fn(1000);
    if (got != want) {
        fprintf(stderr, "bench_layers: %s ceiling loop computes a wrong sum (%llu, want %llu)\n",
                mq_bs_tier_name(t), (unsigned long long)got, (unsigned long long)want);
        return 0;
    }
    int reps;
    const double v = calls_per_s(fn, min_s, &reps) * reps * pairs;
    if (v > g_ceil_best) g_ceil_best = v;
    return v;
}

/* ---------------------------------------------------------------- timing */
static int g_runs = 5;
static double g_min_s = 0.02;

typedef int (*call_fn)(void *ctx); /* one call; nonzero on failure */

/* Median seconds per call over g_runs runs of >= g_min_s each, after two warm-up calls;
 * -1 if a call fails. */
static double time_call(call_fn f, void *ctx) {
    if (f(ctx) || f(ctx)) return -1;
    const double t0 = cpu_now();
    if (f(ctx)) return -1;
    const double one = cpu_now() - t0;
    const int n = one > g_min_s ? 1 : (int)(g_min_s / (one > 1e-7 ? one : 1e-7)) + 1;
    double r[16];
    for (int i = 0; i < g_runs; i++) {
        const double s = cpu_now();
        for (int k = 0; k < n; k++)
            if (f(ctx)) return -1;
        r[i] = (cpu_now() - s) / n;
    }
    qsort(r, (size_t)g_runs, sizeof r[0], cmp_dbl);
    return r[g_runs / 2];
}

/* ---------------------------------------------------------------- oneDNN matmul primitive */
static dnnl_engine_t eng;
static dnnl_stream_t strm;

typedef struct dn_mm {
    dnnl_primitive_t p;
    dnnl_memory_t src, wei, dst;
    char impl[64];
} dn_mm;

static void dn_mm_free(dn_mm *mm) {
    if (mm->p) dnnl_primitive_destroy(mm->p);
    if (mm->src) dnnl_memory_destroy(mm->src);
    if (mm->wei) dnnl_memory_destroy(mm->wei);
    if (mm->dst) dnnl_memory_destroy(mm->dst);
    memset(mm, 0, sizeof *mm);
}

#define DNT(call)                                                                      \
    do {                                                                               \
        dnnl_status_t s_ = (call);                                                     \
        if (s_ != dnnl_success) {                                                      \
            fprintf(stderr, "bench_layers: oneDNN %s failed (status %d)\n", #call, s_); \
            goto fail;                                                                 \
        }                                                                              \
    } while (0)

/* C[M][N] = A[M][K] x W[N][K]^T. a and c are used in place (plain row-major); w (row-major
 * [N][K], i.e. K x N in tag ba) is reordered once into the primitive's own weight layout. */
static int dn_mm_create(dn_mm *mm, int M, int N, int K, dnnl_data_type_t at, dnnl_data_type_t wt,
                        dnnl_data_type_t ct, void *a, void *w, void *c) {
    memset(mm, 0, sizeof *mm);
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t wuser = NULL;
    dnnl_memory_desc_t amd, wany, wusr, cmd;
    dnnl_dims_t ad = {M, K}, wd = {K, N}, cd = {M, N};
    DNT(dnnl_memory_desc_init_by_tag(&amd, 2, ad, at, dnnl_ab));
    DNT(dnnl_memory_desc_init_by_tag(&wany, 2, wd, wt, dnnl_format_tag_any));
    DNT(dnnl_memory_desc_init_by_tag(&wusr, 2, wd, wt, dnnl_ba));
    DNT(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, ct, dnnl_ab));
    dnnl_matmul_desc_t desc;
    DNT(dnnl_matmul_desc_init(&desc, &amd, &wany, NULL, &cmd));
    DNT(dnnl_primitive_desc_create(&pd, &desc, NULL, eng, NULL));
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(mm->impl, sizeof mm->impl, "%s", impl);
    DNT(dnnl_primitive_create(&mm->p, pd));
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    DNT(dnnl_memory_create(&mm->src, &amd, eng, a));
    DNT(dnnl_memory_create(&mm->dst, &cmd, eng, c));
    DNT(dnnl_memory_create(&mm->wei, wq, eng, DNNL_MEMORY_ALLOCATE));
    DNT(dnnl_memory_create(&wuser, &wusr, eng, w));
    DNT(dnnl_reorder_primitive_desc_create(&rpd, &wusr, eng, wq, eng, NULL));
    DNT(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, wuser}, {DNNL_ARG_TO, mm->wei}};
    DNT(dnnl_primitive_execute(reorder, strm, 2, rargs));
    DNT(dnnl_stream_wait(strm));
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(wuser);
    dnnl_primitive_desc_destroy(pd);
    return 0;
fail:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (wuser) dnnl_memory_destroy(wuser);
    if (pd) dnnl_primitive_desc_destroy(pd);
    dn_mm_free(mm);
    return 1;
}

static int call_dn_mm(void *ctx) {
    dn_mm *mm = ctx;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mm->src}, {DNNL_ARG_WEIGHTS, mm->wei},
                               {DNNL_ARG_DST, mm->dst}};
    if (dnnl_primitive_execute(mm->p, strm, 3, args) != dnnl_success) return 1;
    return dnnl_stream_wait(strm) != dnnl_success;
}

/* ---------------------------------------------------------------- the other calls */
struct shape;
static int pack_conv_shape(const struct shape *s, const uint8_t *codes, int ab, mq_bs_tier tier,
                           mq_bs_acts *pix, mq_bs_seg_scratch *seg, mq_bs_acts *out);
static int dir_conv_shape(const struct shape *s, const uint8_t *codes, int ab,
                          const mq_bs_weights *pw, mq_bs_tier tier, mq_bs_seg_scratch *seg, int32_t *c);

typedef struct gemm_ctx {
    int M, N, K;
    const uint8_t *a;
    const int8_t *w;
    const float *af, *wf;
    int32_t *c;
    float *cf;
    /* bit-serial */
    int ab;
    mq_bs_tier tier;
    mq_bs_acts *pa;
    const mq_bs_weights *pw;
    /* mq_bs_pack_conv path (geo != NULL): NHWC codes and the per-pixel scratch */
    const struct shape *geo;
    const uint8_t *codes;
    mq_bs_acts *pix;
    mq_bs_seg_scratch *seg; /* mq_bs_pack_conv_seg's and mq_bs_conv_dir's (conv_seg, conv_dir shapes) */
    int dir;                /* conv_dir: mq_bs_conv_dir, no separate packing */
    /* mixq int8 */
    mq_i8_weights *iw;
    mq_i8_thread *it;
} gemm_ctx;

static int call_i8(void *ctx) {
    gemm_ctx *g = ctx;
    return mq_i8_matmul(g->iw, g->a, g->M, g->c, &g->it) != MIXQ_OK;
}

static int call_sgemm(void *ctx) {
    const gemm_ctx *g = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->M, g->N, g->K, 1.0f, g->af, g->K,
                g->wf, g->K, 0.0f, g->cf, g->N);
    return 0;
}

static int call_bs(void *ctx) {
    const gemm_ctx *g = ctx;
    if (g->dir) return dir_conv_shape(g->geo, g->codes, g->ab, g->pw, g->tier, g->seg, g->c);
    if (g->geo) {
        if (pack_conv_shape(g->geo, g->codes, g->ab, g->tier, g->pix, g->seg, g->pa)) return 1;
    } else if (mq_bs_pack_acts_ex(g->a, g->ab, g->M, g->K, g->tier, g->pa)) {
        return 1;
    }
    return mq_bs_gemm_ex(g->pa, g->pw, g->c, g->N, g->tier, 1) != MIXQ_OK;
}

static int call_bs_gemm(void *ctx) {
    const gemm_ctx *g = ctx;
    return mq_bs_gemm_ex(g->pa, g->pw, g->c, g->N, g->tier, 1) != MIXQ_OK;
}

/* 256 sampled outputs against a direct dot product (c or cf; tol 0: exact). */
static int verify(const char *what, const uint8_t *a, const int8_t *w, const int32_t *c,
                  const float *cf, int M, int N, int K, mq_rng *rng) {
    for (int s = 0; s < 256; s++) {
        const int m = (int)mq_rng_below(rng, (uint32_t)M), n = (int)mq_rng_below(rng, (uint32_t)N);
        int64_t sum = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            const int64_t p = (int64_t)a[(size_t)m * K + k] * w[(size_t)n * K + k];
            sum += p;
            mag += p < 0 ? -p : p;
        }
        const double got = c ? (double)c[(size_t)m * N + n] : (double)cf[(size_t)m * N + n];
        const double tol = c ? 0 : 1e-4 * (double)mag + 1;
        if (fabs(got - (double)sum) > tol) {
            fprintf(stderr, "bench_layers: %s: C[%d][%d] = %.1f, want %lld\n", what, m, n, got,
                    (long long)sum);
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- shapes */
typedef struct shape {
    char name[80];
    char set[12];
    int M, N, K;
    int layers; /* layers of the network with this shape */
    /* convolution geometry (C == 0: none known); M = n*P*Q, K = R*S*C */
    int n, H, W, C, R, S, stride, pad;
} shape;

/* The runtime packs convolutions whose input channels fill whole 64-bit words from the codes
 * (conv_packed), and those with C a multiple of 16 whose kernel rows fit as few words in the
 * segment layout (conv_seg); the rest from the im2col matrix. */
static int conv_packed(const shape *s) { return s->C >= 64 && s->C % 64 == 0; }
static int conv_seg(const shape *s) { return s->C > 0 && mq_bs_conv_seg_pays(s->C, s->R, s->S, s->W); }
/* ... and, on the vpopcnt tier, 3x3 convolutions with C = 16 or 32 run mq_bs_conv_dir (conv_dir):
 * the whole layer from the codes, so its pack + GEMM time is the call and its "kernel only" time
 * the same call. */
static int g_no_dir; /* --no-dir */
static int conv_dir(const shape *s, mq_bs_tier tier) { /* the bench's widths are all <= 4 */
    return s->C > 0 && !g_no_dir && tier == MQ_BS_TIER_VPOPCNT &&
           mq_bs_conv_dir_pays(s->C, s->R, s->S, s->stride, s->W, 4);
}

static int pack_conv_shape(const shape *s, const uint8_t *codes, int ab, mq_bs_tier tier,
                           mq_bs_acts *pix, mq_bs_seg_scratch *seg, mq_bs_acts *out) {
    if (conv_seg(s))
        return mq_bs_pack_conv_seg(codes, s->n, s->H, s->W, s->C, s->R, s->S, s->stride, s->pad, 0,
                                   ab, tier, seg, out) != MIXQ_OK;
    return mq_bs_pack_conv(codes, s->n, s->H, s->W, s->C, s->R, s->S, s->stride, s->pad, 0, ab,
                           tier, pix, out) != MIXQ_OK;
}

static int dir_conv_shape(const shape *s, const uint8_t *codes, int ab, const mq_bs_weights *pw,
                          mq_bs_tier tier, mq_bs_seg_scratch *seg, int32_t *c) {
    return mq_bs_conv_dir(codes, s->n, s->H, s->W, s->C, s->R, s->S, s->stride, s->pad, 0, ab, pw,
                          tier, 1, seg, c, s->N) != MIXQ_OK;
}

/* The im2col matrix a [n*P*Q][R*S*C] ((r, s, c) order, padding taps 0) of NHWC codes. */
static void im2col_shape(const shape *s, const uint8_t *codes, uint8_t *a) {
    const int P = (s->H + 2 * s->pad - s->R) / s->stride + 1;
    const int Q = (s->W + 2 * s->pad - s->S) / s->stride + 1;
    for (int i = 0; i < s->n; i++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                uint8_t *row = a + (((size_t)i * P + p) * Q + q) * (size_t)s->K;
                for (int r = 0; r < s->R; r++)
                    for (int t = 0; t < s->S; t++) {
                        const int h = p * s->stride - s->pad + r, w = q * s->stride - s->pad + t;
                        uint8_t *d = row + ((size_t)r * s->S + t) * s->C;
                        if (h < 0 || h >= s->H || w < 0 || w >= s->W) memset(d, 0, (size_t)s->C);
                        else memcpy(d, codes + (((size_t)i * s->H + h) * s->W + w) * s->C, (size_t)s->C);
                    }
            }
}

enum { MAX_SHAPES = 128 };

static int add_shape(shape *sh, int *n, const char *set, const char *name, int M, int N, int K,
                     const shape *geo) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(sh[i].set, set) && sh[i].M == M && sh[i].N == N && sh[i].K == K) {
            sh[i].layers++;
            return 0;
        }
    if (*n >= MAX_SHAPES) return 1;
    shape *s = &sh[(*n)++];
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->set, sizeof s->set, "%s", set);
    s->M = M, s->N = N, s->K = K, s->layers = 1;
    if (geo) {
        s->n = geo->n, s->H = geo->H, s->W = geo->W, s->C = geo->C;
        s->R = geo->R, s->S = geo->S, s->stride = geo->stride, s->pad = geo->pad;
    }
    return 0;
}

static int model_shapes(const char *arch, int c, int h, int w, int batch, shape *sh, int *n) {
    mixq_model_config mc = {.arch = arch, .in_c = c, .in_h = h, .in_w = w, .classes = 10, .seed = 1};
    mixq_model *m = NULL;
    if (mixq_model_create(&mc, &m)) {
        fprintf(stderr, "bench_layers: %s: %s\n", arch, mixq_last_error());
        return 1;
    }
    const int L = mixq_model_hw_layer_count(m);
    for (int i = 0; i < L; i++) {
        mixq_hw_layer l;
        int node;
        if (mixq_model_hw_layer(m, i, &l, &node)) {
            mixq_model_free(m);
            return 1;
        }
        if (l.fc) continue;
        const int G = l.groups > 0 ? l.groups : 1;
        const int P = l.out_h > 0 ? l.out_h : (l.in_h + 2 * l.pad - l.kh) / l.stride + 1;
        const int Q = l.out_w > 0 ? l.out_w : (l.in_w + 2 * l.pad - l.kw) / l.stride + 1;
        if (G != 1) continue; /* grouped / depthwise: not a single GEMM (none in these nets) */
        char name[80];
        snprintf(name, sizeof name, "%s %d->%d %dx%d%s", l.name ? l.name : "?", l.in_c, l.out_c,
                 l.kh, l.kw, l.stride > 1 ? " s2" : "");
        const shape geo = {.n = batch, .H = l.in_h, .W = l.in_w, .C = l.in_c, .R = l.kh,
                           .S = l.kw, .stride = l.stride, .pad = l.pad};
        if (add_shape(sh, n, arch, name, batch * P * Q, l.out_c, l.in_c / G * l.kh * l.kw, &geo)) {
            mixq_model_free(m);
            return 1;
        }
    }
    mixq_model_free(m);
    return 0;
}

static int kernels_shapes(int batch, shape *sh, int *n) {
    /* 3x3 convolutions, stride 1, padding 1: M = batch * HW, K = 9 C */
    static const struct {
        const char *name;
        int HW, C, N;
    } k[] = {
        {"stem 3->16 32x32", 32, 3, 16},      {"stage1 16->16 32x32", 32, 16, 16},
        {"stage2 32->32 16x16", 16, 32, 32},  {"stage3 64->64 8x8", 8, 64, 64},
        {"64->64 64x64", 64, 64, 64},         {"128->128 16x16", 16, 128, 128},
        {"256->256 8x8", 8, 256, 256},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const shape geo = {.n = batch, .H = k[i].HW, .W = k[i].HW, .C = k[i].C, .R = 3, .S = 3,
                           .stride = 1, .pad = 1};
        if (add_shape(sh, n, "kernels", k[i].name, batch * k[i].HW * k[i].HW, k[i].N, 9 * k[i].C,
                      &geo))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- one shape */
enum { NPEER = 4, NBS = 5 };
static const int bs_cfg[NBS][2] = {{1, 1}, {1, 2}, {2, 2}, {3, 3}, {4, 4}};

typedef struct result {
    double peer_t[NPEER];   /* seconds per call; <= 0: not measured / failed */
    double bs_t[NBS];       /* pack + gemm */
    double bs_tg[NBS];      /* gemm only */
    double bs_peak[NBS];    /* bit pairs / s of the tier next to the measurement (raises
                               g_peak_best) */
    double bs_ceil[NBS];    /* the ceiling loop just before and just after it, the faster
                               (raises g_ceil_best) */
    char impl_s8[64], impl_f32[64];
} result;

static int run_shape(const shape *s, mq_bs_tier tier, int quick, result *r, mq_rng *rng) {
    const int M = s->M, N = s->N, K = s->K;
    int bad = 0;
    memset(r, 0, sizeof *r);
    /* 64-byte aligned, as the runtime's buffers are (mq_alloc_aligned): with malloc's 16-byte
     * alignment every 64-byte row store of a bit-serial tile split two cache lines (64 x 256 x
     * 1152 W1A1 2-6 % slower, Zen 5), and the peers get the same buffers */
    uint8_t *a = mq_alloc_aligned((size_t)M * K, "A");
    int8_t *w = mq_alloc_aligned((size_t)N * K, "W");
    float *af = mq_alloc_aligned(sizeof(float) * (size_t)M * K, "A f32");
    float *wf = mq_alloc_aligned(sizeof(float) * (size_t)N * K, "W f32");
    int32_t *c = mq_alloc_aligned(sizeof(int32_t) * (size_t)M * N, "C");
    float *cf = mq_alloc_aligned(sizeof(float) * (size_t)M * N, "C f32");
    int *rb = malloc(sizeof(int) * (size_t)N);
    const int dir = conv_dir(s, tier);
    const size_t ncodes = conv_packed(s) || conv_seg(s) || dir ? (size_t)s->n * s->H * s->W * s->C : 0;
    uint8_t *codes = ncodes ? mq_alloc_aligned(ncodes, "codes") : NULL;
    if (!a || !w || !af || !wf || !c || !cf || !rb || (ncodes && !codes)) {
        fprintf(stderr, "bench_layers: out of memory for %d x %d x %d\n", M, N, K);
        free(a), free(w), free(af), free(wf), free(c), free(cf), free(rb), free(codes);
        return 1;
    }
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (uint8_t)mq_rng_u64(rng);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (int8_t)(uint8_t)mq_rng_u64(rng);
    for (size_t i = 0; i < (size_t)M * K; i++) af[i] = (float)a[i];
    for (size_t i = 0; i < (size_t)N * K; i++) wf[i] = (float)w[i];
    gemm_ctx g = {.M = M, .N = N, .K = K, .a = a, .w = w, .af = af, .wf = wf, .c = c, .cf = cf};

    /* s8 matmul primitive (the reference) */
    dn_mm mm;
    if (dn_mm_create(&mm, M, N, K, dnnl_u8, dnnl_s8, dnnl_s32, a, w, c) == 0) {
        snprintf(r->impl_s8, sizeof r->impl_s8, "%s", mm.impl);
        memset(c, 0, sizeof(int32_t) * (size_t)M * N);
        r->peer_t[0] = time_call(call_dn_mm, &mm);
        if (r->peer_t[0] > 0 && verify("oneDNN s8 matmul", a, w, c, NULL, M, N, K, rng)) r->peer_t[0] = -1;
        dn_mm_free(&mm);
    } else {
        r->peer_t[0] = -1;
    }
    /* mixq int8 */
    if (mq_i8_available() && mq_i8_weights_create(w, N, K, &g.iw) == MIXQ_OK) {
        memset(c, 0, sizeof(int32_t) * (size_t)M * N);
        r->peer_t[1] = time_call(call_i8, &g);
        if (r->peer_t[1] > 0 && verify("mixq int8", a, w, c, NULL, M, N, K, rng)) r->peer_t[1] = -1;
        mq_i8_weights_free(g.iw);
        mq_i8_thread_free(g.it);
        g.iw = NULL;
        g.it = NULL;
    }
    /* OpenBLAS sgemm */
    memset(cf, 0, sizeof(float) * (size_t)M * N);
    r->peer_t[2] = time_call(call_sgemm, &g);
    if (r->peer_t[2] > 0 && verify("OpenBLAS sgemm", a, w, NULL, cf, M, N, K, rng)) r->peer_t[2] = -1;
    /* oneDNN f32 matmul */
    if (dn_mm_create(&mm, M, N, K, dnnl_f32, dnnl_f32, dnnl_f32, af, wf, cf) == 0) {
        snprintf(r->impl_f32, sizeof r->impl_f32, "%s", mm.impl);
        memset(cf, 0, sizeof(float) * (size_t)M * N);
        r->peer_t[3] = time_call(call_dn_mm, &mm);
        if (r->peer_t[3] > 0 && verify("oneDNN f32 matmul", a, w, NULL, cf, M, N, K, rng)) r->peer_t[3] = -1;
        dn_mm_free(&mm);
    } else {
        r->peer_t[3] = -1;
    }
    for (int p = 0; p < NPEER; p++)
        if (r->peer_t[p] < 0 && !(p == 1 && !mq_i8_available())) bad = 1;

    /* bit-serial */
    for (int ci = 0; ci < NBS; ci++) {
        const int wb = bs_cfg[ci][0], ab = bs_cfg[ci][1];
        int wlo, whi, amax; /* the quantizer's codes (time does not depend on the values) */
        mq_levels(wb, 1, &wlo, &whi);
        mq_levels(ab, 0, NULL, &amax);
        for (int n = 0; n < N; n++) rb[n] = wb;
        if (codes) { /* the runtime's conv packing: NHWC codes, their im2col for verify */
            for (size_t i = 0; i < ncodes; i++) codes[i] = (uint8_t)(mq_rng_u64(rng) % (uint64_t)(amax + 1));
            im2col_shape(s, codes, a);
        } else {
            for (size_t i = 0; i < (size_t)M * K; i++)
                a[i] = (uint8_t)(mq_rng_u64(rng) % (uint64_t)(amax + 1));
        }
        for (size_t i = 0; i < (size_t)N * K; i++) {
            const uint64_t v = mq_rng_u64(rng);
            w[i] = wb == 1 ? (v & 1 ? 1 : -1) : (int8_t)(wlo + (int)(v % (uint64_t)(whi - wlo + 1)));
        }
        mq_bs_weights pw;
        mq_bs_acts pa = {0}, pix = {0};
        mq_bs_seg_scratch seg;
        memset(&seg, 0, sizeof seg);
        if (dir ? mq_bs_pack_weights_dir(w, rb, N, s->C, s->R, s->S, &pw)
            : conv_seg(s) ? mq_bs_pack_weights_seg(w, rb, N, K, s->S * s->C, &pw)
                          : mq_bs_pack_weights(w, rb, N, K, &pw)) {
            fprintf(stderr, "bench_layers: W%dA%d pack: %s\n", wb, ab, mixq_last_error());
            r->bs_t[ci] = r->bs_tg[ci] = -1;
            bad = 1;
            continue;
        }
        g.ab = ab, g.tier = tier, g.pa = &pa, g.pw = &pw;
        g.geo = codes ? s : NULL, g.codes = codes, g.pix = &pix, g.seg = &seg, g.dir = dir;
        r->bs_peak[ci] = peak_bitpairs(tier, quick ? 0.005 : 0.02);
        r->bs_ceil[ci] = ceil_bitpairs(tier, quick ? 0.005 : 0.02);
        memset(c, 0, sizeof(int32_t) * (size_t)M * N);
        r->bs_t[ci] = time_call(call_bs, &g);
        { /* the ceiling again after the cell: the clock drifts over a run (Zen 4: the ceiling
             read 1148-1242 G bit pairs / s within one), and a cell timed at a faster moment
             than the ceiling before it read 101 % of that */
            const double ce = ceil_bitpairs(tier, quick ? 0.005 : 0.02);
            if (ce > r->bs_ceil[ci]) r->bs_ceil[ci] = ce;
        }
        char what[32];
        snprintf(what, sizeof what, "bit-serial W%dA%d", wb, ab);
        if (r->bs_t[ci] > 0 && verify(what, a, w, c, NULL, M, N, K, rng)) r->bs_t[ci] = -1;
        r->bs_tg[ci] = r->bs_t[ci] > 0 ? (dir ? r->bs_t[ci] : time_call(call_bs_gemm, &g)) : -1;
        if (r->bs_t[ci] < 0 || r->bs_tg[ci] < 0) {
            fprintf(stderr, "bench_layers: %s on %s failed: %s\n", what, s->name, mixq_last_error());
            bad = 1;
        }
        mq_bs_acts_free(&pa);
        mq_bs_acts_free(&pix);
        mq_bs_seg_scratch_free(&seg);
        mq_bs_weights_free(&pw);
    }
    free(a), free(w), free(af), free(wf), free(c), free(cf), free(rb), free(codes);
    return bad;
}

/* ---------------------------------------------------------------- report */
static double gops(const shape *s, double t) { return 2.0 * s->M * s->N * s->K / t * 1e-9; }

static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Summary by K: per implementation the median ratio to s8 matmul [min-max] over the shapes with
 * that K (or K >= 1152, or K <= 288), and for bit-serial the median %peak. */
static void summary(const shape *sh, const result *res, int ns) {
    int ks[MAX_SHAPES], nk = 0;
    for (int i = 0; i < ns; i++) {
        int seen = 0;
        for (int j = 0; j < nk; j++) seen |= ks[j] == sh[i].K;
        if (!seen) ks[nk++] = sh[i].K;
    }
    for (int i = 1; i < nk; i++) /* insertion sort */
        for (int j = i; j > 0 && ks[j - 1] > ks[j]; j--) {
            const int t = ks[j];
            ks[j] = ks[j - 1];
            ks[j - 1] = t;
        }
    emit("\nSummary by K: median ratio to oneDNN s8 matmul [min-max] over the shapes with that K; "
         "bit-serial (pack+gemm) also the median %% of the tier's ceiling and the median ceiling "
         "ratio (the speed-up over s8 a kernel at the ceiling would reach).\n\n");
    emit("| K | shapes | mixq int8 | sgemm | f32 matmul |");
    for (int c = 0; c < NBS; c++) emit(" W%dA%d |", bs_cfg[c][0], bs_cfg[c][1]);
    emit("\n|--:|--:|---|---|---|");
    for (int c = 0; c < NBS; c++) emit("---|");
    emit("\n");
    for (int kk = 0; kk <= nk + 1; kk++) {
        /* the last two rows: every K >= 1152, every K <= 288 (the two bars) */
        const int all_big = kk == nk, all_small = kk == nk + 1;
        int idx[MAX_SHAPES], n = 0;
        for (int i = 0; i < ns; i++)
            if (all_big ? sh[i].K >= 1152 : all_small ? sh[i].K <= 288 : sh[i].K == ks[kk]) idx[n++] = i;
        if (!n) continue;
        if (all_big) emit("| **>= 1152** | %d |", n);
        else if (all_small) emit("| **<= 288** | %d |", n);
        else emit("| %d | %d |", ks[kk], n);
        for (int col = 1; col < NPEER + NBS; col++) {
            double rat[MAX_SHAPES], pk[MAX_SHAPES], cr[MAX_SHAPES];
            int m = 0;
            for (int j = 0; j < n; j++) {
                const result *r = &res[idx[j]];
                const double t = col < NPEER ? r->peer_t[col] : r->bs_t[col - NPEER];
                if (t <= 0 || r->peer_t[0] <= 0) continue;
                rat[m] = r->peer_t[0] / t;
                if (col >= NPEER) {
                    const int c = col - NPEER;
                    const shape *s = &sh[idx[j]];
                    const double work = (double)s->M * s->N * s->K * bs_cfg[c][0] * bs_cfg[c][1];
                    const double ce = r->bs_ceil[c]; /* measured around the cell */
                    pk[m] = ce > 0 ? 100.0 * work / t / ce : 0;
                    cr[m] = ce * r->peer_t[0] / work;
                }
                m++;
            }
            if (!m) {
                emit(" - |");
                continue;
            }
            double lo = rat[0], hi = rat[0];
            for (int j = 1; j < m; j++) {
                lo = rat[j] < lo ? rat[j] : lo;
                hi = rat[j] > hi ? rat[j] : hi;
            }
            const double med = median_of(rat, m);
            if (m == 1) emit(" %.2fx", med);
            else emit(" %.2fx [%.2f-%.2f]", med, lo, hi);
            if (col >= NPEER) emit(", %.0f%%, ceil %.1fx", median_of(pk, m), median_of(cr, m));
            emit(" |");
        }
        emit("\n");
    }
}

static void report(const shape *sh, const result *res, int ns, int batch, mq_bs_tier tier) {
    emit("\n### Batch %d\n\n", batch);
    emit("GOP/s = 2*M*N*K / time (1 thread); (x) = ratio to oneDNN s8 matmul (> 1: faster); "
         "bit-serial cells: GOP/s (ratio, %% of the %s ceiling: the register-resident "
         "AND+popcount loop measured just before and just after the cell, the faster of the "
         "two (the best of the run: %.1f G bit-pairs/s); ceil = the ceiling ratio "
         "2*ceiling/(w*a)/s8 GOP/s), activation packing included: layers marked [c] and [s] are packed "
         "as the runtime packs them, from the NHWC input codes ([c]: mq_bs_pack_conv, C_in a "
         "multiple of 64; [s]: mq_bs_pack_conv_seg, C_in 16 with 3x3 kernels, in the segment layout: "
         "each kernel row's taps from a new 64-bit word), the others from the im2col matrix "
         "(mq_bs_pack_acts); layers marked [d] run mq_bs_conv_dir, the direct convolution on "
         "32-bit words (the vpopcnt tier, 3x3 with C_in 16 or 32: the whole layer from the codes, "
         "so their kernel-only time below is the same call). A cell over 100 %% is a bench "
         "error.\n\n",
         mq_bs_tier_name(tier), g_ceil_best * 1e-9);
    emit("| set | layer | M x N x K | s8 matmul | mixq int8 | sgemm | f32 matmul |");
    for (int c = 0; c < NBS; c++) emit(" W%dA%d |", bs_cfg[c][0], bs_cfg[c][1]);
    emit("\n|---|---|---|--:|---|---|---|");
    for (int c = 0; c < NBS; c++) emit("---|");
    emit("\n");
    for (int i = 0; i < ns; i++) {
        const shape *s = &sh[i];
        const result *r = &res[i];
        const double t0 = r->peer_t[0];
        emit("| %s | %s", s->set, s->name);
        if (s->layers > 1) emit(" (x%d)", s->layers);
        if (conv_packed(s)) emit(" [c]");
        else if (conv_dir(s, tier)) emit(" [d]");
        else if (conv_seg(s)) emit(" [s]");
        emit(" | %d x %d x %d |", s->M, s->N, s->K);
        if (t0 > 0) emit(" %.0f |", gops(s, t0));
        else emit(" failed |");
        for (int p = 1; p < NPEER; p++) {
            if (r->peer_t[p] > 0 && t0 > 0) emit(" %.0f (%.2fx) |", gops(s, r->peer_t[p]), t0 / r->peer_t[p]);
            else if (r->peer_t[p] > 0) emit(" %.0f |", gops(s, r->peer_t[p]));
            else emit(" %s |", p == 1 && !mq_i8_available() ? "n/a (no VNNI)" : "failed");
        }
        for (int c = 0; c < NBS; c++) {
            const double t = r->bs_t[c];
            if (t <= 0) {
                emit(" failed |");
                continue;
            }
            const double bp = (double)s->M * s->N * s->K * bs_cfg[c][0] * bs_cfg[c][1] / t;
            const double ce = r->bs_ceil[c]; /* measured around the cell */
            const double pc = ce > 0 ? 100 * bp / ce : 0;
            emit(" %.0f (%.2fx, %.0f%%%s, ceil %.1fx) |", gops(s, t), t0 > 0 ? t0 / t : 0, pc,
                 pc > 100 ? " BENCH ERROR" : "", t0 > 0 ? ce * t0 * 1e-9 / (bp * 1e-9 * t) : 0);
            if (pc > 100) g_over = 1;
        }
        emit("\n");
    }
    emit("\nBit-serial kernel only (activations pre-packed): GOP/s (ratio to s8 matmul).\n\n");
    emit("| set | layer | M x N x K |");
    for (int c = 0; c < NBS; c++) emit(" W%dA%d |", bs_cfg[c][0], bs_cfg[c][1]);
    emit("\n|---|---|---|");
    for (int c = 0; c < NBS; c++) emit("---|");
    emit("\n");
    for (int i = 0; i < ns; i++) {
        const shape *s = &sh[i];
        const result *r = &res[i];
        emit("| %s | %s | %d x %d x %d |", s->set, s->name, s->M, s->N, s->K);
        for (int c = 0; c < NBS; c++) {
            if (r->bs_tg[c] > 0 && r->peer_t[0] > 0)
                emit(" %.0f (%.2fx) |", gops(s, r->bs_tg[c]), r->peer_t[0] / r->bs_tg[c]);
            else emit(" failed |");
        }
        emit("\n");
    }
    summary(sh, res, ns);
    /* oneDNN implementations seen */
    char seen[8][64];
    int nseen = 0;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < 2; k++) {
            const char *im = k ? res[i].impl_f32 : res[i].impl_s8;
            int dup = 0;
            for (int j = 0; j < nseen; j++) dup |= !strcmp(seen[j], im);
            if (!dup && im[0] && nseen < 8) snprintf(seen[nseen++], 64, "%s", im);
        }
    emit("\noneDNN matmul implementations used:");
    for (int j = 0; j < nseen; j++) emit(" `%s`", seen[j]);
    emit("\n");
}

/* ---------------------------------------------------------------- main */
static void usage(FILE *f) {
    fprintf(f, "usage: bench_layers [--shapes resnet20|vgg11|kernels|all[,...]] [--batch B[,B...]] "
               "[--passes P] [--quick] [--cpu auto|none|N] [--no-dir] [--out FILE]\n"
               "  --passes P  time every shape P times, round-robin (a burst of load on a shared\n"
               "              machine then hits different shapes in each pass); each figure is\n"
               "              the median over the passes (default 1)\n"
               "  --cpu C     pin the process to CPU C; auto (default): to the CPU where a short\n"
               "              bit-serial probe runs fastest (vCPUs of a shared machine can differ\n"
               "              by tens of %%); none: no pinning\n"
               "  --no-dir    the GEMM layouts (segment or im2col packing) where the runtime runs the\n"
               "              direct convolution (vpopcnt tier, 3x3, C_in 16 or 32: [d] cells)\n");
}

/* out = the field-by-field median of np results (a failed or unmeasured figure, <= 0 in any
 * pass, stays <= 0: failures do not come and go with load); strings from the first pass. */
static void merge_passes(const result *in, int np, result *out) {
    *out = in[0];
    double *o = (double *)out;
    const size_t nd = offsetof(result, impl_s8) / sizeof(double); /* the doubles come first */
    _Static_assert(offsetof(result, impl_s8) == sizeof(double) * (NPEER + 4 * NBS),
                   "result: every figure a double, before the strings");
    for (size_t f = 0; f < nd; f++) {
        double v[64];
        int bad = 0;
        for (int p = 0; p < np; p++) {
            v[p] = ((const double *)&in[p])[f];
            if (v[p] <= 0) bad = 1;
        }
        if (bad) continue;
        qsort(v, (size_t)np, sizeof v[0], cmp_dbl);
        o[f] = np % 2 ? v[np / 2] : 0.5 * (v[np / 2 - 1] + v[np / 2]);
    }
}

static int want(const char *list, const char *set) {
    if (!strcmp(list, "all")) return 1;
    const size_t n = strlen(set);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((len == n && !strncmp(p, set, n)) || (len == 3 && !strncmp(p, "all", 3))) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static void read_first_line(const char *path, const char *key, char *out, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) {
            const char *p = strchr(line, ':');
            if (p) snprintf(out, n, "%s", p + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    fclose(f);
}

/* Seconds per call of the probe, a 784 x 16 x 144 W2A2 bit-serial pack + GEMM (the packer and
 * the kernel, which a busy sibling hyperthread slows by different amounts), timed as every cell
 * is (time_call of call_bs) on the current CPU; < 0 on failure. */
static double probe_s(mq_bs_tier tier) {
    enum { M = 784, N = 16, K = 144 };
    uint8_t *a = malloc((size_t)M * K);
    int8_t *w = malloc((size_t)N * K);
    int32_t *c = malloc((size_t)M * N * sizeof(int32_t));
    int rb[N];
    mq_bs_weights pw = {0};
    mq_bs_acts pa = {0};
    double t = -1;
    if (a && w && c) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (uint8_t)(i * 7 % 4);
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (int8_t)((int)(i * 5 % 4) - 2);
        for (int n = 0; n < N; n++) rb[n] = 2;
        if (!mq_bs_pack_weights(w, rb, N, K, &pw)) {
            gemm_ctx g = {.M = M, .N = N, .K = K, .a = a, .c = c, .ab = 2, .tier = tier,
                          .pa = &pa, .pw = &pw};
            t = time_call(call_bs, &g);
        }
    }
    mq_bs_acts_free(&pa);
    mq_bs_weights_free(&pw);
    free(a);
    free(w);
    free(c);
    return t;
}

/* Restrict the process to CPU cpu; 0 on success. */
static int pin_to(int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one);
}

/* --cpu: pin to CPU want (>= 0), or (want == -1) to the allowed CPU where the probe runs fastest
 * (each CPU probed twice, interleaved); note gets the header line. 0, or -1 with a message. */
static int pin_cpu(int want, mq_bs_tier tier, char *note, size_t nn) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed)) {
        snprintf(note, nn, "not pinned (sched_getaffinity failed)");
        return 0;
    }
    if (want >= 0) {
        if (want >= CPU_SETSIZE || !CPU_ISSET(want, &allowed)) {
            fprintf(stderr, "bench_layers: --cpu %d: not a CPU this process may run on\n", want);
            return -1;
        }
        if (pin_to(want)) {
            fprintf(stderr, "bench_layers: --cpu %d: sched_setaffinity failed\n", want);
            return -1;
        }
        snprintf(note, nn, "pinned to CPU %d (--cpu %d)", want, want);
        return 0;
    }
    int cpus[64], nc = 0;
    for (int i = 0; i < CPU_SETSIZE && nc < 64; i++)
        if (CPU_ISSET(i, &allowed)) cpus[nc++] = i;
    if (nc < 2) {
        snprintf(note, nn, "one CPU allowed (%d), not pinned", nc ? cpus[0] : -1);
        return 0;
    }
    double t[64];
    for (int i = 0; i < nc; i++) t[i] = -1;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < nc; i++) {
            if (pin_to(cpus[i])) continue;
            const double v = probe_s(tier);
            if (v > 0 && (t[i] < 0 || v < t[i])) t[i] = v;
        }
    int best = -1;
    for (int i = 0; i < nc; i++)
        if (t[i] > 0 && (best < 0 || t[i] < t[best])) best = i;
    if (best < 0) {
        sched_setaffinity(0, sizeof allowed, &allowed);
        snprintf(note, nn, "not pinned (the probe failed)");
        return 0;
    }
    if (pin_to(cpus[best])) {
        sched_setaffinity(0, sizeof allowed, &allowed);
        snprintf(note, nn, "not pinned (sched_setaffinity failed)");
        return 0;
    }
    size_t k = (size_t)snprintf(note, nn, "pinned to CPU %d, where a %s 784 x 16 x 144 W2A2 "
                                "pack + GEMM probe ran fastest (us per call:", cpus[best],
                                mq_bs_tier_name(tier));
    for (int i = 0; i < nc && k < nn; i++)
        k += (size_t)snprintf(note + k, nn - k, "%s CPU %d %.2f", i ? "," : "", cpus[i],
                              t[i] * 1e6);
    if (k < nn) snprintf(note + k, nn - k, ")");
    return 0;
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

int main(int argc, char **argv) {
    const char *shapes_arg = "all", *batch_arg = "1", *out_path = NULL;
    int quick = 0, passes = 1, want_cpu = -1;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-dir")) g_no_dir = 1;
        else if (!strcmp(argv[i], "--shapes") && v) shapes_arg = v, i++;
        else if (!strcmp(argv[i], "--batch") && v) batch_arg = v, i++;
        else if (!strcmp(argv[i], "--out") && v) out_path = v, i++;
        else if (!strcmp(argv[i], "--cpu") && v) {
            char *end = NULL;
            if (!strcmp(v, "auto")) want_cpu = -1;
            else if (!strcmp(v, "none")) want_cpu = -2;
            else if ((want_cpu = (int)strtol(v, &end, 10)) < 0 || !end || *end || end == v) {
                fprintf(stderr, "bench_layers: --cpu '%s': auto, none or a CPU number expected\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(argv[i], "--passes") && v) {
            passes = atoi(v), i++;
            if (passes < 1 || passes > 64) {
                fprintf(stderr, "bench_layers: --passes '%s': 1..64 expected\n", v);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!want(shapes_arg, "resnet20") && !want(shapes_arg, "vgg11") && !want(shapes_arg, "kernels")) {
        fprintf(stderr, "bench_layers: --shapes '%s': expected resnet20, vgg11, kernels or all\n",
                shapes_arg);
        return 2;
    }
    int batches[8], nb = 0;
    for (const char *p = batch_arg; p && *p && nb < 8;) {
        batches[nb] = atoi(p);
        if (batches[nb] < 1) {
            fprintf(stderr, "bench_layers: --batch '%s': positive integers expected\n", batch_arg);
            return 2;
        }
        nb++;
        p = strchr(p, ',');
        if (p) p++;
    }
    if (quick) g_runs = 3, g_min_s = 0.005;
    if (out_path) {
        out_file = fopen(out_path, "w");
        if (!out_file) {
            perror(out_path);
            return 1;
        }
    }
    if (mixq_set_threads(1)) return 1;
    mq_bs_tier tier;
    if (mq_bs_tier_select(&tier)) {
        fprintf(stderr, "bench_layers: %s\n", mixq_last_error());
        return 1;
    }
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&strm, eng, dnnl_stream_default_flags) != dnnl_success) {
        fprintf(stderr, "bench_layers: cannot create a oneDNN CPU engine\n");
        return 1;
    }
    peak_init();
    char pin[512] = "not pinned (--cpu none)";
    if (want_cpu != -2 && pin_cpu(want_cpu, tier, pin, sizeof pin)) return 2;

    char cpu[128] = "?";
    read_first_line("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    const dnnl_version_t *dv = dnnl_version();
    emit("## Per-layer GEMM kernels, 1 thread\n\n");
    emit("- CPU: %s; load average %.2f at start\n", cpu, loadavg());
    emit("- process %s\n", pin);
    emit("- mixq bit-serial tier: %s; int8 (VNNI) path: %s\n", mq_bs_tier_name(tier),
         mq_i8_available() ? "available" : "unavailable");
    emit("- oneDNN %d.%d.%d (%s); OpenBLAS %s (core %s)\n", dv->major, dv->minor, dv->patch,
         dv->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other runtime",
         openblas_get_config(), openblas_get_corename());
    emit("- timing: thread CPU time, median of %d runs of >= %.0f ms each, 2 warm-up calls%s",
         g_runs, g_min_s * 1e3, quick ? " (--quick)" : "");
    if (passes > 1) emit("; every figure the median of %d passes over all shapes, round-robin", passes);
    emit("\n");
    emit("\nAND+popcount peak loop of the tier (operands from L1): %.1f G bit-pairs/s\n",
         peak_bitpairs(tier, 0.05) * 1e-9);
    {
        const double hz = core_hz(), ce = ceil_bitpairs(tier, 0.05);
        emit("Ceiling of the tier (register-resident, the same instructions): %.1f G bit-pairs/s", ce * 1e-9);
        if (hz > 0) emit(" = %.0f bit pairs per cycle at %.2f GHz (measured: a chain of dependent adds)",
                         ce / hz, hz * 1e-9);
        emit("\n");
#ifdef BENCH_X86
        if (hz > 0 && mq_bs_tier_available(MQ_BS_TIER_VPOPCNT)) {
            int reps;
            const double p = calls_per_s(insn_vpopcntq, 0.05, &reps) * reps * 12 / hz;
            const double t = calls_per_s(insn_vpternlogq, 0.05, &reps) * reps * 12 / hz;
            emit("Instruction throughput (12 independent chains): vpopcntq zmm %.2f per cycle, "
                 "vpternlogq zmm %.2f per cycle\n", p, t);
        }
#endif
    }

    int status = 0;
    mq_rng rng;
    mq_rng_seed(&rng, 7);
    const double t_start = cpu_now();
    /* every batch's shapes first; then the passes, each over every batch and shape, so that a
     * burst of load on a shared machine hits different cells in each pass */
    shape(*shs)[MAX_SHAPES] = calloc((size_t)nb, sizeof *shs);
    int nss[8] = {0};
    if (!shs) return 1;
    for (int b = 0; b < nb; b++) {
        shape *sh = shs[b];
        int ns = 0;
        if (want(shapes_arg, "resnet20") && model_shapes("resnet20", 1, 28, 28, batches[b], sh, &ns)) return 1;
        if (want(shapes_arg, "vgg11") && model_shapes("vgg11", 3, 32, 32, batches[b], sh, &ns)) return 1;
        if (want(shapes_arg, "kernels") && kernels_shapes(batches[b], sh, &ns)) return 1;
        if (quick) { /* a few shapes of each set: the first, the largest K */
            shape q[MAX_SHAPES];
            int nq = 0;
            for (int i = 0; i < ns; i++) {
                int first = i == 0 || strcmp(sh[i].set, sh[i - 1].set), maxk = 1;
                for (int j = 0; j < ns; j++)
                    if (!strcmp(sh[j].set, sh[i].set) && (sh[j].K > sh[i].K || (sh[j].K == sh[i].K && j < i)))
                        maxk = 0;
                if (first || maxk) q[nq++] = sh[i];
            }
            memcpy(sh, q, sizeof(shape) * (size_t)nq);
            ns = nq;
        }
        nss[b] = ns;
    }
    /* pass p, batch b, shape i at res[(p * nb + b) * MAX_SHAPES + i] */
    result *res = calloc((size_t)passes * nb * MAX_SHAPES, sizeof *res);
    if (!res) return 1;
    for (int p = 0; p < passes; p++)
        for (int b = 0; b < nb; b++)
            for (int i = 0; i < nss[b]; i++) {
                const shape *s = &shs[b][i];
                fprintf(stderr, "bench_layers: batch %d, %s %s (%d x %d x %d), %d/%d, pass %d/%d\n",
                        batches[b], s->set, s->name, s->M, s->N, s->K, i + 1, nss[b], p + 1, passes);
                if (run_shape(s, tier, quick, &res[((size_t)p * nb + b) * MAX_SHAPES + i], &rng))
                    status = 1;
            }
    for (int b = 0; b < nb; b++) {
        result merged[MAX_SHAPES], per[64];
        for (int i = 0; i < nss[b]; i++) {
            for (int p = 0; p < passes; p++) per[p] = res[((size_t)p * nb + b) * MAX_SHAPES + i];
            merge_passes(per, passes, &merged[i]);
        }
        report(shs[b], merged, nss[b], batches[b], tier);
    }
    free(res);
    free(shs);
    if (g_over) fprintf(stderr, "bench_layers: a bit-serial cell measured above the tier's ceiling\n");
    emit("\nLoad average at end %.2f; %.0f s of CPU time.%s%s\n", loadavg(), cpu_now() - t_start,
         status ? " SOME MEASUREMENTS FAILED (see stderr)." : "",
         g_over ? " A CELL RAN ABOVE THE CEILING: a bench error." : "");
    if (g_over) status = 1;
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    if (out_file) fclose(out_file);
    return status;
}
