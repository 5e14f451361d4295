/* Bit-serial GEMM throughput (src/kernels/bitserial*.c), one thread, best tier (or
 * MIXQ_BITSERIAL_TIER), against this machine's AND+popcount peak and oneDNN's int8 GEMM.
 *
 * Buffers: A uint8_t [M][K] (a-bit activations), W int8_t [N][K] (w-bit weights, packed once,
 * untimed), C int32_t [M][N]; shapes are conv layers in GEMM form (M = batch x output pixels,
 * N = output channels, K = C_in x 3 x 3).
 *
 * Timing (thread CPU time, see cpu_now): "pack+gemm" = mq_bs_pack_acts_ex (uint8 -> bit
 * planes, into a reused buffer) followed by mq_bs_gemm_ex; "gemm" = the kernel alone. Two
 * warm-up calls, then 5 runs, each of as many calls as fill >= 20 ms; the median time per call
 * is reported. Every configuration's outputs
 * are checked against a direct dot product on 256 sampled entries before its time is accepted.
 *
 * Metrics:
 *   GOP/s        nominal int8-equivalent rate, 2*M*N*K / time (the same formula as for int8 or
 *                fp32 GEMMs: "as fast as an int8 GEMM doing this many GOP/s").
 *   Gbp/s        useful bit-pair AND+popcounts per second, M*N*K*w*a / time.
 *   %peak        Gbp/s of pack+gemm divided by the AND+popcount peak of the tier used, that
 *                peak re-measured just before each row (the shared machine's speed drifts).
 *   AND+popcount peak of a tier: bit pairs per second of a tight loop over L1-resident
 *                uint64 arrays (2 x 4 KiB of operands) doing AND, popcount and accumulate with
 *                8 independent accumulators, in that tier's instructions: scalar popcnt
 *                (and + popcnt + add per word); vpopcntq (vpandq + vpopcntq + vpaddq per 8
 *                words); the vpshufb nibble table on ymm / zmm, where the operand-only work
 *                (nibble masks and shifts) is precomputed into two more arrays, as the kernels
 *                hoist it across a tile, leaving vpand x2 + vpshufb x2 + vpaddb x2 per vector
 *                and one vpsadbw flush per pass. Median of 5 runs of >= 50 ms. It excludes
 *                broadcasts, the plane combine, the epilogue and packing: an upper bound for a
 *                kernel of that tier. "scalar" is the literal AND+POPCNT instruction peak.
 *   vs int8      pack+gemm GOP/s over oneDNN dnnl_gemm_u8s8s32 GOP/s on the same M, N, K with
 *                full-range u8 x s8 data (its GEMM API re-packs both operands on every call,
 *                which the pre-reordered matmul primitive avoids: about 10-50% faster there).
 * usage: bench_bitserial [quick]      ("quick": first shape only) */
#include <dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "kernels/bitserial.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#endif

static volatile uint64_t sink;

/* Seconds of CPU time of the calling thread: this machine is shared (other jobs), and wall time
 * would count the slices spent descheduled. oneDNN runs on the calling thread (1 thread). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- AND+popcount peaks */
/* Operands: x = pa_, y = pb_ (2 x 4 KiB, L1-resident). The table methods also read their
 * operand-only preprocessing, hoisted out of the loop as the micro-kernels hoist it across the
 * 8 pixels / 16 channels of a tile: xl = x & 0x0f.., xh = (x >> 4) & 0x0f.., yh = y >> 4. */
enum { PW = 512 };
static uint64_t pa_[PW] __attribute__((aligned(64))), pb_[PW] __attribute__((aligned(64)));
static uint64_t pal_[PW] __attribute__((aligned(64))), pah_[PW] __attribute__((aligned(64)));
static uint64_t pbh_[PW] __attribute__((aligned(64)));

static uint64_t loop_scalar(int reps) {
    uint64_t s[8] = {0};
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < PW; i += 8)
            for (int u = 0; u < 8; u++)
                s[u] += (uint64_t)__builtin_popcountll(pa_[i + u] & pb_[i + u]);
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

#ifdef BENCH_X86
/* Table methods: per vector lo = xl & y, hi = xh & yh, two vpshufb, two byte adds (6 ALU
 * uops, what the kernels' inner loops approach); byte counters flushed with vpsadbw once per
 * pass: 16 (ymm) or 8 (zmm) words per counter, at most 128 per byte. */
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

__attribute__((target("avx512f,avx512bw"))) static uint64_t loop_avx512(int reps) {
    const __m512i lut =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    __m512i q = _mm512_setzero_si512();
    for (int r = 0; r < reps; r++) {
        __m512i b[8];
        for (int u = 0; u < 8; u++) b[u] = _mm512_setzero_si512();
        for (int i = 0; i < PW; i += 64)
            for (int u = 0; u < 8; u++) {
                const int o = i + 8 * u;
                const __m512i lo = _mm512_and_si512(_mm512_load_si512((const void *)(pal_ + o)),
                                                    _mm512_load_si512((const void *)(pb_ + o)));
                const __m512i hi = _mm512_and_si512(_mm512_load_si512((const void *)(pah_ + o)),
                                                    _mm512_load_si512((const void *)(pbh_ + o)));
                b[u] = _mm512_add_epi8(b[u], _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo),
                                                             _mm512_shuffle_epi8(lut, hi)));
            }
        for (int u = 0; u < 8; u++)
            q = _mm512_add_epi64(q, _mm512_sad_epu8(b[u], _mm512_setzero_si512()));
    }
    return (uint64_t)_mm512_reduce_add_epi64(q);
}

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

/* Bit pairs per second of the tier's loop, median of 5 runs of >= min_s seconds (0 if the tier
 * is absent here). */
static double peak_bitpairs(mq_bs_tier t, double min_s) {
    if (!mq_bs_tier_available(t)) return 0;
    uint64_t (*fn)(int) = loop_scalar;
#ifdef BENCH_X86
    if (t == MQ_BS_TIER_AVX2) fn = loop_avx2;
    if (t == MQ_BS_TIER_AVX512) fn = loop_avx512;
    if (t == MQ_BS_TIER_VPOPCNT) fn = loop_vpopcnt;
#endif
    uint64_t ref = 0;
    for (int i = 0; i < PW; i++) ref += (uint64_t)__builtin_popcountll(pa_[i] & pb_[i]);
    if (fn(1000) != ref * 1000) {
        fprintf(stderr, "bench_bitserial: %s peak loop computes a wrong sum\n", mq_bs_tier_name(t));
        return 0;
    }
    int reps = 100;
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
    return 64.0 * PW * reps / r[2];
}

/* ---------------------------------------------------------------- timing */
typedef struct {
    const uint8_t *a;
    int ab, M, N, K;
    mq_bs_tier tier;
    mq_bs_acts *pa;
    const mq_bs_weights *pw;
    int32_t *C;
    int pack; /* include activation packing */
} job;

static int run_job(const job *j) {
    if (j->pack && mq_bs_pack_acts_ex(j->a, j->ab, j->M, j->K, j->tier, j->pa)) return 1;
    return mq_bs_gemm_ex(j->pa, j->pw, j->C, j->N, j->tier, 1) != MIXQ_OK;
}

/* Median seconds per call over 5 runs of >= 20 ms each (after two warm-up calls); *best gets
 * the fastest run (the spread between the two shows how much the shared machine interfered). */
static double time_job(const job *j, double *best) {
    if (run_job(j) || run_job(j)) return -1;
    const double t0 = cpu_now();
    run_job(j);
    const double one = cpu_now() - t0;
    const int n = one > 0.02 ? 1 : (int)(0.02 / (one > 1e-7 ? one : 1e-7)) + 1;
    double r[5];
    for (int i = 0; i < 5; i++) {
        const double s = cpu_now();
        for (int k = 0; k < n; k++) run_job(j);
        r[i] = (cpu_now() - s) / n;
    }
    qsort(r, 5, sizeof r[0], cmp_dbl);
    if (best) *best = r[0];
    return r[2];
}

static double time_dnnl(const uint8_t *a, const int8_t *w, int32_t *C, int M, int N, int K) {
    const int32_t co = 0;
    /* row-major C[M][N] = A[M][K] x W[N][K]^T */
#define DNNL_CALL dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, a, K, 0, w, K, 0, 0.0f, C, N, &co)
    if (DNNL_CALL != dnnl_success || DNNL_CALL != dnnl_success) return -1;
    const double t0 = cpu_now();
    DNNL_CALL;
    const double one = cpu_now() - t0;
    const int n = one > 0.02 ? 1 : (int)(0.02 / (one > 1e-7 ? one : 1e-7)) + 1;
    double r[5];
    for (int i = 0; i < 5; i++) {
        const double s = cpu_now();
        for (int k = 0; k < n; k++) DNNL_CALL;
        r[i] = (cpu_now() - s) / n;
    }
#undef DNNL_CALL
    qsort(r, 5, sizeof r[0], cmp_dbl);
    return r[2];
}

/* 256 sampled outputs against a direct dot product. */
static int verify(const uint8_t *a, const int8_t *w, const int32_t *C, int M, int N, int K,
                  mq_rng *rng) {
    for (int s = 0; s < 256; s++) {
        const int m = (int)mq_rng_below(rng, (uint32_t)M), n = (int)mq_rng_below(rng, (uint32_t)N);
        int64_t sum = 0;
        for (int k = 0; k < K; k++) sum += (int64_t)a[(size_t)m * K + k] * w[(size_t)n * K + k];
        if (sum != C[(size_t)m * N + n]) {
            fprintf(stderr, "bench_bitserial: C[%d][%d] = %d, want %lld\n", m, n,
                    C[(size_t)m * N + n], (long long)sum);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    const int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    if (mixq_set_threads(1)) return 1; /* one thread for oneDNN and OpenBLAS as well */
    mq_bs_tier tier;
    if (mq_bs_tier_select(&tier)) {
        fprintf(stderr, "bench_bitserial: %s\n", mixq_last_error());
        return 1;
    }
    mq_rng rng;
    mq_rng_seed(&rng, 42);
    for (int i = 0; i < PW; i++) {
        pa_[i] = mq_rng_u64(&rng);
        pb_[i] = mq_rng_u64(&rng);
        pal_[i] = pa_[i] & 0x0f0f0f0f0f0f0f0full;
        pah_[i] = (pa_[i] >> 4) & 0x0f0f0f0f0f0f0f0full;
        pbh_[i] = pb_[i] >> 4;
    }

    char cpu[128] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                const char *p = strchr(line, ':');
                if (p) snprintf(cpu, sizeof cpu, "%s", p + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(f);
    }
    double load = -1;
    f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    printf("bit-serial GEMM bench: %s, 1 thread, tier %s, load average %.2f\n", cpu,
           mq_bs_tier_name(tier), load);

    printf("\nAND+popcount peak (tight loop on L1-resident uint64 arrays, 8 accumulators; see the "
           "file comment):\n");
    double peaks[MQ_BS_TIER_COUNT];
    for (int t = MQ_BS_TIER_COUNT - 1; t >= 0; t--) {
        peaks[t] = peak_bitpairs((mq_bs_tier)t, 0.05);
        if (peaks[t] > 0)
            printf("  %-8s %7.1f G bit-pairs/s  (= %.1f G 64-bit AND+popcount+add per s)\n",
                   mq_bs_tier_name((mq_bs_tier)t), peaks[t] * 1e-9, peaks[t] / 64 * 1e-9);
        else
            printf("  %-8s not available on this machine\n", mq_bs_tier_name((mq_bs_tier)t));
    }

    static const struct {
        const char *name;
        int M, N, K;
    } shapes[] = {
        {"resnet20 layer2 32->32 16x16 b16", 4096, 32, 288},
        {"vgg11 128->256 8x8 b16", 1024, 256, 1152},
        {"vgg11 256->256 8x8 b16", 1024, 256, 2304},
        {"vgg11 256->512 4x4 b16", 256, 512, 2304},
    };
    static const int cfg[][2] = {{1, 1}, {1, 2}, {2, 2}, {3, 3}, {4, 4}};
    const int nshapes = quick ? 1 : (int)(sizeof shapes / sizeof shapes[0]);

    printf("\n%-34s %-5s %11s %9s %9s %6s %7s %11s %11s %8s\n", "layer (M x N x K)", "WxA",
           "pack+gemm", "GOP/s", "Gbp/s", "peak", "%peak", "(fastest)", "gemm only", "vs int8");
    int status = 0;
    for (int s = 0; s < nshapes; s++) {
        const int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        uint8_t *a = malloc((size_t)M * K);
        int8_t *w = malloc((size_t)N * K);
        int32_t *C = malloc((size_t)M * N * sizeof *C);
        int *rb = malloc((size_t)N * sizeof *rb);
        if (!a || !w || !C || !rb) return 1;
        /* int8 reference on full-range data */
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (uint8_t)mq_rng_u64(&rng);
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (int8_t)(uint8_t)mq_rng_u64(&rng);
        const double t8 = time_dnnl(a, w, C, M, N, K);
        if (t8 < 0 || verify(a, w, C, M, N, K, &rng)) {
            fprintf(stderr, "bench_bitserial: oneDNN u8s8s32 failed or was inexact\n");
            status = 1;
        }
        const double gops = 2.0 * M * N * K;
        char t8s[32];
        snprintf(t8s, sizeof t8s, "%.1f us", t8 * 1e6);
        printf("%-34s %-5s %11s %9.1f %9s %6s %7s %11s %11s %8s   (oneDNN u8s8s32 GEMM API)\n",
               shapes[s].name, "int8", t8s, gops / t8 * 1e-9, "", "", "", "", "", "1.00x");
        char dims[64];
        snprintf(dims, sizeof dims, "  %d x %d x %d", M, N, K);
        for (int c = 0; c < 5; c++) {
            const int wb = cfg[c][0], ab = cfg[c][1];
            for (int n = 0; n < N; n++) rb[n] = wb;
            for (size_t i = 0; i < (size_t)M * K; i++)
                a[i] = (uint8_t)(mq_rng_u64(&rng) & ((1u << ab) - 1));
            for (size_t i = 0; i < (size_t)N * K; i++) {
                const uint64_t r = mq_rng_u64(&rng);
                w[i] = wb == 1 ? (r & 1 ? 1 : -1)
                               : (int8_t)(-(1 << (wb - 1)) + (int)(r % (1u << wb)));
            }
            mq_bs_weights pw;
            mq_bs_acts pa = {0};
            if (mq_bs_pack_weights(w, rb, N, K, &pw)) return 1;
            job j = {a, ab, M, N, K, tier, &pa, &pw, C, 1};
            /* the machine is shared and its speed drifts: the peak is re-measured next to each
             * configuration, and %peak uses that local value */
            const double peak = peak_bitpairs(tier, 0.02);
            double tbest = 0;
            const double tp = time_job(&j, &tbest);
            const int bad = tp < 0 || verify(a, w, C, M, N, K, &rng);
            j.pack = 0;
            const double tg = time_job(&j, NULL);
            if (bad || tg < 0) {
                fprintf(stderr, "bench_bitserial: W%dA%d on %s failed: %s\n", wb, ab,
                        shapes[s].name, mixq_last_error());
                status = 1;
            }
            const double bp = (double)M * N * K * wb * ab / tp;
            char wa[16], tps[32], tbs[32], tgs[32];
            snprintf(wa, sizeof wa, "W%dA%d", wb, ab);
            snprintf(tps, sizeof tps, "%.1f us", tp * 1e6);
            snprintf(tbs, sizeof tbs, "%.1f us", tbest * 1e6);
            snprintf(tgs, sizeof tgs, "%.1f us", tg * 1e6);
            printf("%-34s %-5s %11s %9.1f %9.1f %6.0f %6.1f%% %11s %11s %7.2fx\n",
                   c == 0 ? dims : "", wa, tps, gops / tp * 1e-9, bp * 1e-9, peak * 1e-9,
                   peak > 0 ? 100 * bp / peak : 0, tbs, tgs, t8 / tp);
            mq_bs_acts_free(&pa);
            mq_bs_weights_free(&pw);
        }
        free(a), free(w), free(C), free(rb);
    }
    printf("\nTimes are thread CPU time per call, median of 5 runs (fastest run in brackets).\n");
    printf("GOP/s = 2*M*N*K / time (int8-equivalent); Gbp/s = M*N*K*w*a / time (useful bit "
           "pairs);\n");
    printf("peak = the %s AND+popcount peak (Gbp/s) re-measured just before the row; %%peak = "
           "Gbp/s / peak;\n", mq_bs_tier_name(tier));
    printf("'gemm only' = kernel with activations pre-packed; vs int8 = oneDNN GEMM time / "
           "pack+gemm time (> 1: bit-serial faster).\n");
    return status;
}
