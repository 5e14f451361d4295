/* BitFusion back-end against the original simulator (spec docs/hardware_models.md section 10):
 * T1 modes, T2 golden layers, T3 all 305 rows of tests/fixtures/hw/
 * bitfusion-eyeriss-sim-sweep.csv in all ten counters, T4 the Eyeriss comparison (3.925x /
 * 5.117x), T5 energy constants and area (the embedded CACTI rows against cacti_sweep.csv), T6
 * precision invariants, monotonicity, per-kernel grouping, the memo cache and bad hardware
 * files. The CSVs are the simulator's own (tests/fixtures/hw/README.md); a missing one skips its
 * test, which fails under CI=true. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"
#include "test.h"

#define BF_DIR TEST_FIXTURES "hw/"

/* The simulator's benchmark layers (bitfusion/src/benchmarks/benchmarks.py, WRPN variants as the
 * sweep uses them; batch 16): network, layer, K, O, S, IC, OC, a bits (the input tensor's),
 * w bits, im2col (fed by the graph input). */
typedef struct bench_layer {
    const char *net, *layer;
    int K, O, S, IC, OC, a, w, im2col;
} bench_layer;

static const bench_layer bench[] = {
    {"AlexNet", "conv1_a", 11, 55, 4, 3, 96, 8, 8, 1},
    {"AlexNet", "conv1_b", 11, 55, 4, 3, 96, 8, 8, 1},
    {"AlexNet", "conv2_a", 5, 27, 1, 96, 256, 4, 4, 0},
    {"AlexNet", "conv2_b", 5, 27, 1, 96, 256, 4, 4, 0},
    {"AlexNet", "conv3_a", 3, 13, 1, 512, 384, 4, 4, 0},
    {"AlexNet", "conv3_b", 3, 13, 1, 512, 384, 4, 4, 0},
    {"AlexNet", "conv4_a", 3, 13, 1, 384, 384, 4, 4, 0},
    {"AlexNet", "conv4_b", 3, 13, 1, 384, 384, 4, 4, 0},
    {"AlexNet", "conv5_a", 3, 13, 1, 384, 256, 4, 4, 0},
    {"AlexNet", "conv5_b", 3, 13, 1, 384, 256, 4, 4, 0},
    {"AlexNet", "fc1", 1, 1, 1, 18432, 8192, 4, 4, 0},
    {"AlexNet", "fc2", 1, 1, 1, 8192, 8192, 4, 4, 0},
    {"AlexNet", "fc3", 1, 1, 1, 8192, 1000, 8, 8, 0},
    {"SVHN", "conv0", 3, 32, 1, 3, 64, 8, 1, 1},
    {"SVHN", "conv1", 3, 32, 1, 64, 64, 1, 1, 0},
    {"SVHN", "conv2", 3, 16, 1, 64, 128, 1, 1, 0},
    {"SVHN", "conv3", 3, 16, 1, 128, 128, 1, 1, 0},
    {"SVHN", "conv4", 3, 8, 1, 128, 256, 1, 1, 0},
    {"SVHN", "conv5", 3, 8, 1, 256, 256, 1, 1, 0},
    {"SVHN", "fc6", 1, 1, 1, 4096, 1024, 1, 1, 0},
    {"SVHN", "fc7", 1, 1, 1, 1024, 1024, 1, 1, 0},
    {"SVHN", "fc8", 1, 1, 1, 1024, 10, 1, 1, 0},
    {"CIFAR10", "conv0", 3, 32, 1, 3, 128, 8, 8, 1},
    {"CIFAR10", "conv1", 3, 32, 1, 128, 128, 2, 2, 0},
    {"CIFAR10", "conv2", 3, 16, 1, 128, 256, 2, 2, 0},
    {"CIFAR10", "conv3", 3, 16, 1, 256, 256, 2, 2, 0},
    {"CIFAR10", "conv4", 3, 8, 1, 256, 512, 2, 2, 0},
    {"CIFAR10", "conv5", 3, 8, 1, 512, 512, 2, 2, 0},
    {"CIFAR10", "fc6", 1, 1, 1, 8192, 1024, 2, 2, 0},
    {"CIFAR10", "fc7", 1, 1, 1, 1024, 1024, 2, 2, 0},
    {"CIFAR10", "fc8", 1, 1, 1, 1024, 10, 2, 2, 0},
    {"LeNet-5", "conv0", 5, 32, 1, 1, 32, 2, 2, 1},
    {"LeNet-5", "conv1", 5, 16, 1, 32, 64, 2, 2, 0},
    {"LeNet-5", "fc1", 1, 1, 1, 4096, 512, 2, 2, 0},
    {"LeNet-5", "fc2", 1, 1, 1, 512, 10, 2, 2, 0},
    {"VGG-7", "conv1_a", 3, 32, 1, 3, 128, 2, 2, 1},
    {"VGG-7", "conv1_b", 3, 32, 1, 3, 128, 2, 2, 1},
    {"VGG-7", "conv2_a", 3, 16, 1, 128, 256, 2, 2, 0},
    {"VGG-7", "conv2_b", 3, 16, 1, 128, 256, 2, 2, 0},
    {"VGG-7", "conv3_a", 3, 8, 1, 256, 512, 2, 2, 0},
    {"VGG-7", "conv3_b", 3, 8, 1, 256, 512, 2, 2, 0},
    {"VGG-7", "fc1", 1, 1, 1, 8192, 1024, 2, 2, 0},
    {"RESNET-18", "conv1_a", 7, 112, 2, 3, 128, 8, 8, 1},
    {"RESNET-18", "conv2_1_a", 1, 56, 1, 128, 128, 4, 4, 0},
    {"RESNET-18", "conv2_1_b", 3, 56, 1, 128, 128, 4, 4, 0},
    {"RESNET-18", "conv2_2_a", 1, 56, 1, 128, 128, 4, 4, 0},
    {"RESNET-18", "conv2_2_b", 3, 56, 1, 128, 128, 4, 4, 0},
    {"RESNET-18", "conv3_1_a", 1, 28, 2, 128, 256, 4, 4, 0},
    {"RESNET-18", "conv3_1_b", 3, 28, 1, 256, 256, 4, 4, 0},
    {"RESNET-18", "conv3_2_a", 1, 28, 1, 256, 256, 4, 4, 0},
    {"RESNET-18", "conv3_2_b", 3, 28, 1, 256, 256, 4, 4, 0},
    {"RESNET-18", "conv4_1_a", 1, 14, 2, 256, 512, 4, 4, 0},
    {"RESNET-18", "conv4_1_b", 3, 14, 1, 512, 512, 4, 4, 0},
    {"RESNET-18", "conv4_2_a", 1, 14, 1, 512, 512, 4, 4, 0},
    {"RESNET-18", "conv4_2_b", 3, 14, 1, 512, 512, 4, 4, 0},
    {"RESNET-18", "conv5_1_a", 1, 7, 2, 512, 1024, 4, 4, 0},
    {"RESNET-18", "conv5_1_b", 3, 7, 1, 1024, 1024, 4, 4, 0},
    {"RESNET-18", "conv5_2_a", 1, 7, 1, 1024, 1024, 4, 4, 0},
    {"RESNET-18", "conv5_2_b", 3, 7, 1, 1024, 1024, 4, 4, 0},
    {"RNN", "matmul", 1, 1, 1, 4096, 4096, 4, 4, 0},
    {"LSTM", "matmul", 1, 1, 1, 3600, 3600, 4, 4, 0},
};
#define N_BENCH ((int)(sizeof bench / sizeof bench[0]))

/* A BitFusion target like the sweep's: 16 x M, buffers in bytes, DRAM bits per cycle. */
static mixq_hw *bf_target(int M, long wbuf, long obuf, long ibuf, int bw) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"mixq_hw\": 1, \"name\": \"bf16x%d\", \"backend\": \"bitfusion\", \"batch\": 16, "
             "\"freq_hz\": 5e8, \"bits\": {\"min\": 1, \"max\": 8}, \"bitfusion\": {\"rows\": 16, "
             "\"cols\": %d, \"pmax\": 8, \"pmin\": 2, \"wbuf_bytes\": %ld, \"ibuf_bytes\": %ld, "
             "\"obuf_bytes\": %ld, \"dram_bits_per_cycle\": %d}}",
             M, M, wbuf, ibuf, obuf, bw);
    mixq_hw *hw = NULL;
    mixq_status st = mixq_hw_parse(json, strlen(json), "test target", NULL, &hw);
    CHECKF(st == MIXQ_OK, "bf_target: %s", mixq_last_error());
    return hw;
}

static const bench_layer *find_layer(const char *net, const char *layer) {
    for (int i = 0; i < N_BENCH; i++)
        if (!strcmp(bench[i].net, net) && !strcmp(bench[i].layer, layer)) return &bench[i];
    return NULL;
}


/* T1 */
static void test_modes(void) {
    static const int cases[][3] = {{2, 2, 16}, {1, 1, 16}, {4, 2, 8}, {2, 4, 8}, {4, 4, 4},
                                   {3, 3, 4},  {8, 2, 4},  {8, 4, 2}, {5, 5, 1}, {8, 8, 1},
                                   {16, 8, 0}, {8, 16, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECKF(mq_bitfusion_perf_factor(8, 2, cases[i][0], cases[i][1]) == cases[i][2],
               "pf(%d,%d) = %d, expected %d", cases[i][0], cases[i][1],
               mq_bitfusion_perf_factor(8, 2, cases[i][0], cases[i][1]), cases[i][2]);
    /* validation mode (bits.max 8): 16-bit is an error, never a silent 0 */
    mixq_hw *hw = bf_target(32, 65536, 16384, 32768, 192);
    if (!hw) return;
    mixq_hw_layer l = {.name = "c", .in_c = 64, .in_h = 8, .in_w = 8, .out_c = 64, .kh = 3, .kw = 3,
                       .stride = 1, .pad = 1};
    mixq_cost c;
    CHECK(mixq_hw_cost(hw, &l, 16, 8, &c) == MIXQ_ERR_UNSUPPORTED);
    CHECK(strstr(mixq_last_error(), "w16/a8") != NULL);
    mixq_hw_free(hw);
    /* the preset runs 16-bit temporally: 4 passes of 8x8 */
    CHECK_OK(mixq_hw_load("bitfusion", &hw));
    if (!hw) return;
    mixq_cost c8, c16;
    CHECK_OK(mixq_hw_cost(hw, &l, 8, 8, &c8));
    CHECK_OK(mixq_hw_cost(hw, &l, 16, 16, &c16));
    CHECKF(c16.compute_cycles == 4 * c8.compute_cycles, "16-bit compute %.0f vs 8-bit %.0f",
           c16.compute_cycles, c8.compute_cycles);
    CHECK(!(c16.flags & MIXQ_COST_ROUNDED) && c16.w_bits == 16); /* 16-bit is a mode: 4 passes */
    CHECK(!(c8.flags & MIXQ_COST_ROUNDED));
    CHECK_OK(mixq_hw_cost(hw, &l, 3, 5, &c));
    CHECK(c.w_bits == 4 && c.a_bits == 8 && (c.flags & MIXQ_COST_ROUNDED));
    mixq_hw_free(hw);
}

/* T2: spec golden vectors (bf_e) */
static void test_golden(void) {
    static const struct { int t[9]; int64_t v[10]; } g[] = {
        {{11, 55, 4, 3, 96, 16, 8, 8, 1}, {3746423, 406823, 13493145600, 282624, 297369600, 297369600, 13493145600, 421660800, 570628224, 148684800}},
        {{5, 27, 1, 96, 256, 16, 4, 4, 0}, {5018849, 1249, 41104179200, 3276800, 411041792, 411041792, 41104179200, 462422016, 671219712, 205520896}},
        {{1, 1, 1, 18432, 8192, 16, 4, 4, 0}, {3545090, 2365442, 9663676416, 603979776, 75497472, 75497472, 9663676416, 1179648, 642908160, 37748736}},
        {{1, 1, 1, 8192, 1000, 16, 8, 8, 0}, {398679, 136535, 1073741824, 67108864, 8388608, 8388608, 1073741824, 1048576, 72351744, 4194304}},
        {{3, 32, 1, 64, 64, 16, 1, 1, 0}, {358316, 63404, 603979776, 49152, 67108864, 67108864, 603979776, 1638400, 35241984, 33554432}},
        {{1, 1, 1, 1024, 10, 16, 1, 1, 0}, {374, 310, 163840, 10240, 21504, 21504, 163840, 16384, 43008, 16384}},
        {{3, 32, 1, 3, 128, 16, 8, 8, 1}, {717654, 586582, 452984832, 32768, 134217728, 134217728, 452984832, 3538944, 70680576, 67108864}},
        {{3, 8, 1, 512, 512, 16, 2, 2, 0}, {510636, 215724, 4831838208, 4718592, 67108864, 67108864, 4831838208, 26214400, 64487424, 33554432}},
        {{5, 16, 1, 32, 64, 16, 2, 2, 0}, {205635, 835, 419430400, 131072, 16777216, 16777216, 419430400, 13107200, 21626880, 8388608}},
        {{3, 32, 1, 3, 128, 16, 2, 2, 1}, {704001, 638465, 113246208, 65536, 134217728, 134217728, 113246208, 884736, 68059136, 67108864}},
        {{1, 56, 1, 128, 128, 16, 4, 4, 0}, {2274988, 1873580, 3288334336, 65536, 411041792, 411041792, 3288334336, 25690112, 231276544, 205520896}},
        {{3, 14, 1, 512, 512, 16, 4, 4, 0}, {4330838, 718166, 29595009024, 9437184, 411041792, 411041792, 29595009024, 411041792, 625999872, 205520896}},
        {{3, 7, 1, 1024, 1024, 16, 4, 4, 0}, {3614180, 1508, 29595009024, 37748736, 411041792, 411041792, 29595009024, 169869312, 413138944, 205520896}},
        {{1, 1, 1, 3600, 3600, 16, 4, 4, 0}, {337175, 231383, 866648064, 54165504, 110231552, 110231552, 866648064, 6770688, 62836736, 1900544}},
    };
    mixq_hw *hw = bf_target(32, 65536, 16384, 32768, 192);
    if (!hw) return;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        const int *t = g[i].t;
        int64_t v[10];
        double e;
        CHECK_OK(mq_bitfusion_raw(hw, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], v, &e));
        for (int k = 0; k < 10; k++)
            CHECKF(v[k] == g[i].v[k], "golden %zu counter %d: %lld, expected %lld", i, k,
                   (long long)v[k], (long long)g[i].v[k]);
        if (i == 1) CHECKF(fabs(e - 17749972.9) < 0.1, "conv2_a energy %.2f nJ", e);
        if (i == 13) CHECKF(fabs(e - 1080038.2) < 0.1, "LSTM energy %.2f nJ", e);
    }
    /* the same layer through the public API: a conv of 27x27 SAME 5x5 */
    mixq_hw_layer l = {.name = "conv2_a", .in_c = 96, .in_h = 27, .in_w = 27, .out_c = 256, .kh = 5,
                       .kw = 5, .stride = 1, .pad = 2, .batch = 16};
    mixq_cost c;
    CHECK_OK(mixq_hw_cost(hw, &l, 4, 4, &c));
    CHECK(c.cycles == 5018849 && c.stall_cycles == 1249 && c.dram_read_bits == 671219712.0);
    CHECKF(fabs(c.energy_j * 1e9 - 17749972.9) < 0.1, "API energy %.3f nJ", c.energy_j * 1e9);
    CHECK(fabs(c.e_compute_j + c.e_sram_j + c.e_dram_j - c.energy_j) < 1e-12 * c.energy_j + 1e-15);
    CHECK(fabs(c.latency_s - 5018849 / 5e8) < 1e-12);
    CHECK(c.dram_bytes == (671219712.0 + 205520896.0) / 8);
    mixq_hw_free(hw);
}

/* T3: every row of the sweep CSV */
static void test_sweep_csv(void) {
    const char *path = BF_DIR "bitfusion-eyeriss-sim-sweep.csv";
    if (!test_need_file(path)) return;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[1024];
    CHECK(fgets(line, sizeof line, f) != NULL);
    mixq_hw *hws[5] = {0};
    int keys[5][2] = {{0}}, nhw = 0, rows = 0, matched = 0;
    while (fgets(line, sizeof line, f)) {
        int n, m, pmax, pmin, bw, batch;
        char net[64], lay[128];
        long long v[10];
        long wb, ob, ib;
        int got = sscanf(line,
                         "%d,%d,%d,%d,%63[^,],%127[^,],%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,"
                         "%lld,%d,%ld,%ld,%ld,%d",
                         &n, &m, &pmax, &pmin, net, lay, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                         &v[6], &v[7], &v[8], &v[9], &bw, &wb, &ob, &ib, &batch);
        if (got != 21) continue;
        rows++;
        /* "module2/conv2_1_a/Convolution" -> "conv2_1_a" */
        char *slash = strrchr(lay, '/');
        if (slash) *slash = 0;
        char *base = strrchr(lay, '/');
        base = base ? base + 1 : lay;
        const bench_layer *bl = find_layer(net, base);
        CHECKF(bl != NULL, "no benchmark layer %s %s", net, base);
        if (!bl) continue;
        mixq_hw *hw = NULL;
        for (int i = 0; i < nhw; i++)
            if (keys[i][0] == m && keys[i][1] == bw) hw = hws[i];
        if (!hw && nhw < 5) {
            hw = hws[nhw] = bf_target(m, wb, ob, ib, bw);
            keys[nhw][0] = m, keys[nhw][1] = bw;
            nhw++;
        }
        if (!hw) continue;
        int64_t got_v[10];
        if (mq_bitfusion_raw(hw, bl->K, bl->O, bl->S, bl->IC, bl->OC, batch, bl->a, bl->w,
                             bl->im2col, got_v, NULL))
            continue;
        int ok = 1;
        for (int k = 0; k < 10; k++) ok &= got_v[k] == v[k];
        matched += ok;
        CHECKF(ok, "16x%d bw %d %s %s: cycles %lld (csv %lld), stall %lld (%lld), dram rd %lld (%lld)",
               m, bw, net, base, (long long)got_v[0], v[0], (long long)got_v[1], v[1],
               (long long)got_v[8], v[8]);
    }
    fclose(f);
    printf("  bitfusion sweep CSV: %d / %d rows matched in all ten counters\n", matched, rows);
    CHECK(rows == 305 && matched == 305);
    for (int i = 0; i < nhw; i++) mixq_hw_free(hws[i]);
}

/* T4: benchmark totals on bf_e and the geomean over Eyeriss */
static void test_eyeriss(void) {
    const char *path = BF_DIR "eyeriss_results.csv";
    if (!test_need_file(path)) return;
    static const char *nets[8] = {"AlexNet", "SVHN", "CIFAR10", "LeNet-5", "VGG-7", "RESNET-18", "RNN", "LSTM"};
    static const double bf_cyc[8] = {37666491, 1317523, 3293704, 410352, 2822491, 49079982, 394583, 337175};
    static const double bf_nj[8] = {131946378, 4220336, 11591383, 1141369, 9248803, 169665765, 1256873, 1080038};
    double ey_cyc[8] = {0}, ey_units[8] = {0};
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[512];
    CHECK(fgets(line, sizeof line, f) != NULL);
    while (fgets(line, sizeof line, f)) {
        char net[64], lay[64];
        double alu, dram, buf, arr, rf, t;
        if (sscanf(line, "%63[^,],%63[^,],%lf,%lf,%lf,%lf,%lf,%lf", net, lay, &alu, &dram, &buf, &arr, &rf, &t) != 8)
            continue;
        for (int i = 0; i < 8; i++)
            if (!strcmp(net, nets[i])) {
                ey_cyc[i] += t;
                ey_units[i] += alu + dram * 0.15 + buf + arr + rf;
            }
    }
    fclose(f);
    mixq_hw *hw = bf_target(32, 65536, 16384, 32768, 192);
    if (!hw) return;
    double e[8], area[4];
    CHECK_OK(mq_bitfusion_constants(hw, e, area));
    double lsp = 0, len = 0;
    for (int i = 0; i < 8; i++) {
        int64_t tot[10] = {0};
        for (int j = 0; j < N_BENCH; j++) {
            if (strcmp(bench[j].net, nets[i])) continue;
            int64_t v[10];
            const bench_layer *b = &bench[j];
            CHECK_OK(mq_bitfusion_raw(hw, b->K, b->O, b->S, b->IC, b->OC, 16, b->a, b->w, b->im2col, v, NULL));
            for (int k = 0; k < 10; k++) tot[k] += v[k];
        }
        /* energy of the summed counters, as the notebook computes it */
        double nj = (double)(tot[0] - tot[1]) * e[0];
        nj += (double)tot[2] * e[1];
        nj += (double)tot[3] * e[2];
        nj += (double)tot[6] * e[3];
        nj += (double)tot[7] * e[4];
        nj += (double)tot[4] * e[5];
        nj += (double)tot[5] * e[6];
        nj += (double)tot[8] * e[7];
        nj += (double)tot[9] * e[7];
        CHECKF((double)tot[0] == bf_cyc[i], "%s: %lld cycles, spec %.0f", nets[i], (long long)tot[0], bf_cyc[i]);
        CHECKF(fabs(nj - bf_nj[i]) < 1.0, "%s: %.1f nJ, spec %.0f", nets[i], nj, bf_nj[i]);
        double sp = ey_cyc[i] / (double)tot[0], er = ey_units[i] * 16 * 0.2e-3 / nj;
        lsp += log(sp), len += log(er);
    }
    double gsp = exp(lsp / 8), gen = exp(len / 8);
    printf("  BitFusion vs Eyeriss (geomean of 8 benchmarks): %.3fx speed-up, %.3fx energy reduction\n", gsp, gen);
    CHECKF(fabs(gsp - 3.925) < 0.001, "speed-up %.4f", gsp);
    CHECKF(fabs(gen - 5.117) < 0.001, "energy reduction %.4f", gen);
    mixq_hw_free(hw);
}

/* T5 */
static void test_constants(void) {
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_load("bitfusion", &hw));
    if (!hw) return;
    double e[8], area[4];
    CHECK_OK(mq_bitfusion_constants(hw, e, area));
    CHECKF(fabs(e[0] * 1e3 - 235.104) < 1e-9, "E_core %.6f pJ", e[0] * 1e3);
    CHECKF(fabs(e[1] * 1e3 - 0.021366) < 1e-6, "WBUF read %.7f pJ/bit", e[1] * 1e3);
    CHECKF(fabs(e[4] * 1e3 - 0.113704) < 1e-6, "IBUF write %.7f pJ/bit", e[4] * 1e3);
    CHECK(fabs(e[7] - 0.015) < 1e-15);
    double sum = area[0] + area[1] + area[2] + area[3];
    CHECKF(fabs(sum - 2.14099) < 1e-5, "area %.6f mm2", sum);
    CHECK(fabs(area[0] - 0.888091) < 1e-6 && fabs(area[1] - 0.767478) < 1e-6);
    CHECK(fabs(area[2] - 0.242112) < 1e-6 && fabs(area[3] - 0.243306) < 1e-6);
    CHECK(!strcmp(mixq_hw_backend(hw), "bitfusion") && mixq_hw_batch(hw) == 16);
    mixq_hw_free(hw);
}

/* T6 and monotonicity */
/* Splits one CSV line (double-quoted fields may hold commas) into at most max fields, in place. */
static int csv_split(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        int q = 0;
        for (; *p && (q || (*p != ',' && *p != '\n' && *p != '\r')); p++)
            if (*p == '"') q = !q;
        if (*p != ',') {
            *p = 0;
            break;
        }
        *p++ = 0;
    }
    return n;
}

/* T5: the CACTI rows embedded in bitfusion.c are the simulator's cacti_sweep.csv, value for value */
static void test_cacti_rows(void) {
    const char *path = BF_DIR "cacti_sweep.csv";
    if (!test_need_file(path)) return;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char line[8192];
    char *fld[160];
    int col_size = -1, col_rw = -1, col_rd = -1, col_wr = -1, col_area = -1, nh = 0, rows = 0;
    if (fgets(line, sizeof line, f)) {
        nh = csv_split(line, fld, 160);
        for (int i = 0; i < nh; i++) {
            if (!strcmp(fld[i], "size (bytes)")) col_size = i;
            if (!strcmp(fld[i], "read-write port")) col_rw = i;
            if (!strcmp(fld[i], "read_energy_nJ")) col_rd = i;
            if (!strcmp(fld[i], "write_energy_nJ")) col_wr = i;
            if (!strcmp(fld[i], "area_mm^2")) col_area = i;
        }
    }
    CHECKF(col_size >= 0 && col_rw >= 0 && col_rd >= 0 && col_wr >= 0 && col_area >= 0,
           "%s: expected columns missing from the header", path);
    double b, rd, wr, area;
    int rw;
    const int n = mq_bitfusion_cacti(-1, &b, &rw, &rd, &wr, &area);
    int found[64] = {0};
    while (col_area >= 0 && fgets(line, sizeof line, f)) {
        if (csv_split(line, fld, 160) != nh) continue;
        rows++;
        const double cb = atof(fld[col_size]), crd = atof(fld[col_rd]), cwr = atof(fld[col_wr]),
                     ca = atof(fld[col_area]);
        const int crw = atoi(fld[col_rw]);
        int hit = 0;
        for (int i = 0; i < n && i < 64; i++) {
            mq_bitfusion_cacti(i, &b, &rw, &rd, &wr, &area);
            if (b == cb && rw == crw) {
                hit = 1;
                found[i]++;
                CHECKF(rd == crd && wr == cwr && area == ca,
                       "CACTI %g bytes rw %d: embedded %.17g/%.17g/%.17g, csv %.17g/%.17g/%.17g", cb,
                       crw, rd, wr, area, crd, cwr, ca);
            }
        }
        CHECKF(hit, "CACTI row %g bytes rw %d is not embedded", cb, crw);
    }
    fclose(f);
    CHECKF(rows == n, "%s: %d rows, %d embedded", path, rows, n);
    for (int i = 0; i < n && i < 64; i++) CHECKF(found[i] == 1, "embedded CACTI row %d matched %d csv rows", i, found[i]);
}

static void test_precision(void) {
    mixq_hw *hw = bf_target(32, 65536, 16384, 32768, 192);
    if (!hw) return;
    int64_t v[10];
    struct { int w, a; int64_t cycles; } t6[] = {{3, 3, 3613492}, {4, 4, 3613708}, {5, 5, 14451153},
                                                 {8, 8, 14451270}, {2, 2, 1678678}};
    for (size_t i = 0; i < sizeof t6 / sizeof t6[0]; i++) {
        CHECK_OK(mq_bitfusion_raw(hw, 3, 28, 1, 256, 256, 16, t6[i].a, t6[i].w, 0, v, NULL));
        CHECKF(v[0] == t6[i].cycles, "w%d a%d: %lld cycles, expected %lld", t6[i].w, t6[i].a,
               (long long)v[0], (long long)t6[i].cycles);
    }
    /* compute cycles scale exactly by pf: 4/4 compute = 8/8 compute / 4 = 3 612 672 */
    mixq_hw_layer l = {.name = "c", .in_c = 256, .in_h = 28, .in_w = 28, .out_c = 256, .kh = 3,
                       .kw = 3, .stride = 1, .pad = 1, .batch = 16};
    mixq_cost c44, c88;
    CHECK_OK(mixq_hw_cost(hw, &l, 4, 4, &c44));
    CHECK_OK(mixq_hw_cost(hw, &l, 8, 8, &c88));
    CHECK(c44.compute_cycles == 3612672 && c88.compute_cycles == 4 * 3612672);
    /* cycles never rise when bits fall between supported modes (2, 4, 8), for a conv, a
     * strided conv, a depthwise conv and an FC layer at batch 1 and 16 */
    mixq_hw_layer ls[4] = {
        {.name = "conv", .in_c = 64, .in_h = 16, .in_w = 16, .out_c = 128, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
        {.name = "strided", .in_c = 32, .in_h = 32, .in_w = 32, .out_c = 64, .kh = 3, .kw = 3, .stride = 2, .pad = 1},
        {.name = "dw", .in_c = 64, .in_h = 16, .in_w = 16, .out_c = 64, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 64},
        {.name = "fc", .fc = 1, .in_c = 1024, .out_c = 1000},
    };
    static const int modes[3] = {2, 4, 8};
    for (int li = 0; li < 4; li++)
        for (int batch = 1; batch <= 16; batch += 15) {
            ls[li].batch = batch;
            for (int wi = 0; wi < 3; wi++)
                for (int ai = 0; ai < 3; ai++) {
                    mixq_cost hi, lo_w, lo_a;
                    CHECK_OK(mixq_hw_cost(hw, &ls[li], modes[wi], modes[ai], &hi));
                    if (wi) {
                        CHECK_OK(mixq_hw_cost(hw, &ls[li], modes[wi - 1], modes[ai], &lo_w));
                        CHECKF(lo_w.compute_cycles <= hi.compute_cycles, "%s b%d: compute rises w%d->w%d",
                               ls[li].name, batch, modes[wi], modes[wi - 1]);
                    }
                    if (ai) {
                        CHECK_OK(mixq_hw_cost(hw, &ls[li], modes[wi], modes[ai - 1], &lo_a));
                        CHECKF(lo_a.compute_cycles <= hi.compute_cycles, "%s b%d: compute rises a%d->a%d",
                               ls[li].name, batch, modes[ai], modes[ai - 1]);
                    }
                    CHECK(hi.cycles >= hi.compute_cycles && hi.energy_j > 0 && hi.dram_bytes > 0);
                }
        }
    /* the documented exception: FC 1024->1000 at batch 1 is DRAM-bound and 8/2 picks another
     * tiling, costing more than 8/8 (spec 3.9) */
    mixq_hw_layer fc = {.name = "fc", .fc = 1, .in_c = 1024, .out_c = 1000, .batch = 1};
    mixq_cost f88, f22, f82;
    CHECK_OK(mixq_hw_cost(hw, &fc, 8, 8, &f88));
    CHECK_OK(mixq_hw_cost(hw, &fc, 2, 2, &f22));
    CHECK_OK(mixq_hw_cost(hw, &fc, 8, 2, &f82));
    CHECKF(f88.cycles == 43051 && f22.cycles == 11275 && f82.cycles == 44043,
           "FC b1: 8/8 %.0f, 2/2 %.0f, 8/2 %.0f", f88.cycles, f22.cycles, f82.cycles);
    CHECK(f88.flags & MIXQ_COST_MEMBOUND);
    mixq_hw_free(hw);
}

/* Monotonicity over all (w, a) in 1..8: with wider_modes (the preset) cycles never rise when
 * bits fall; the original simulator's cost (wider_modes off) may rise a little, through its
 * per-precision tiling choice and the weight tile padded to N*pf input channels (spec 3.9). */
static void test_monotone(void) {
    mixq_hw *wide = NULL, *sim = bf_target(32, 65536, 16384, 32768, 192);
    CHECK_OK(mixq_hw_load("bitfusion", &wide));
    if (!wide || !sim) goto out;
    mixq_hw_layer ls[] = {
        {.name = "c16", .in_c = 16, .in_h = 28, .in_w = 28, .out_c = 16, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
        {.name = "c64s2", .in_c = 32, .in_h = 14, .in_w = 14, .out_c = 64, .kh = 3, .kw = 3, .stride = 2, .pad = 1},
        {.name = "c256", .in_c = 256, .in_h = 7, .in_w = 7, .out_c = 256, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
        {.name = "pw", .in_c = 128, .in_h = 14, .in_w = 14, .out_c = 256, .kh = 1, .kw = 1, .stride = 1},
        {.name = "first", .in_c = 3, .in_h = 32, .in_w = 32, .out_c = 64, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .is_first = 1},
        {.name = "fc_b1", .fc = 1, .in_c = 1024, .out_c = 1000, .batch = 1},
    };
    double worst = 1;
    int rises = 0;
    for (size_t li = 0; li < sizeof ls / sizeof ls[0]; li++) {
        double cw[9][9], cs[9][9];
        for (int w = 1; w <= 8; w++)
            for (int a = 1; a <= 8; a++) {
                mixq_cost c;
                CHECK_OK(mixq_hw_cost(wide, &ls[li], w, a, &c));
                cw[w][a] = c.cycles;
                CHECK_OK(mixq_hw_cost(sim, &ls[li], w, a, &c));
                cs[w][a] = c.cycles;
                CHECK(cw[w][a] <= cs[w][a]); /* wider modes only add options */
            }
        for (int w = 1; w <= 8; w++)
            for (int a = 1; a <= 8; a++) {
                if (w > 1) {
                    CHECKF(cw[w - 1][a] <= cw[w][a], "%s: cycles rise w%d->w%d at a%d", ls[li].name, w, w - 1, a);
                    if (cs[w - 1][a] > cs[w][a]) rises++, worst = fmax(worst, cs[w - 1][a] / cs[w][a]);
                }
                if (a > 1) {
                    CHECKF(cw[w][a - 1] <= cw[w][a], "%s: cycles rise a%d->a%d at w%d", ls[li].name, a, a - 1, w);
                    if (cs[w][a - 1] > cs[w][a]) rises++, worst = fmax(worst, cs[w][a - 1] / cs[w][a]);
                }
            }
    }
    printf("  original simulator: %d one-bit steps down raise cycles, by at most %.2f%%\n", rises,
           100 * (worst - 1));
    CHECK(rises > 0 && worst < 1.05); /* the documented exception exists and is small */
out:
    mixq_hw_free(wide);
    mixq_hw_free(sim);
}

/* depthwise = groups convolutions of one channel; per-kernel grouping; the memo cache */
static void test_groups_kernels_cache(void) {
    mixq_hw *hw = NULL;
    CHECK_OK(mixq_hw_load("bitfusion", &hw));
    if (!hw) return;
    mixq_hw_layer dw = {.name = "dw", .in_c = 32, .in_h = 14, .in_w = 14, .out_c = 32, .kh = 3,
                        .kw = 3, .stride = 1, .pad = 1, .groups = 32};
    mixq_hw_layer one = dw;
    one.in_c = one.out_c = 1, one.groups = 1;
    mixq_cost cd, c1;
    CHECK_OK(mixq_hw_cost(hw, &dw, 4, 4, &cd));
    CHECK_OK(mixq_hw_cost(hw, &one, 4, 4, &c1));
    CHECK(cd.cycles == 32 * c1.cycles && cd.dram_bytes == 32 * c1.dram_bytes);
    CHECK(cd.macs == 16.0 * 14 * 14 * 32 * 9);
    /* per-kernel bits: 48 kernels at 2 bits and 16 at 8 = a 48-kernel layer + a 16-kernel one */
    mixq_hw_layer cv = {.name = "cv", .in_c = 64, .in_h = 16, .in_w = 16, .out_c = 64, .kh = 3,
                        .kw = 3, .stride = 1, .pad = 1};
    int kb[64];
    for (int k = 0; k < 64; k++) kb[k] = k % 4 == 0 ? 8 : 2;
    mixq_cost ck, a, b;
    CHECK_OK(mixq_hw_cost_kernels(hw, &cv, kb, 4, &ck));
    mixq_hw_layer s48 = cv, s16 = cv;
    s48.out_c = 48, s16.out_c = 16;
    CHECK_OK(mixq_hw_cost(hw, &s48, 2, 4, &a));
    CHECK_OK(mixq_hw_cost(hw, &s16, 8, 4, &b));
    CHECK(ck.cycles == a.cycles + b.cycles && fabs(ck.energy_j - a.energy_j - b.energy_j) < 1e-15);
    CHECK(ck.size_bits == 9.0 * 64 * (48 * 2 + 16 * 8) && ck.w_bits == 8);
    for (int k = 0; k < 64; k++) kb[k] = 4;
    mixq_cost u, u2;
    CHECK_OK(mixq_hw_cost_kernels(hw, &cv, kb, 4, &u));
    CHECK_OK(mixq_hw_cost(hw, &cv, 4, 4, &u2));
    CHECK(u.cycles == u2.cycles);
    kb[3] = 0;
    CHECK(mixq_hw_cost_kernels(hw, &cv, kb, 4, &u) == MIXQ_ERR_ARG);
    /* cached answers are identical and fast */
    mixq_hw_layer big = {.name = "big", .in_c = 256, .in_h = 28, .in_w = 28, .out_c = 256, .kh = 3,
                         .kw = 3, .stride = 1, .pad = 1};
    mixq_cost first, again;
    double t0 = mq_now();
    CHECK_OK(mixq_hw_cost(hw, &big, 4, 4, &first));
    double t1 = mq_now();
    for (int i = 0; i < 10000; i++) CHECK_OK(mixq_hw_cost(hw, &big, 4, 4, &again));
    double t2 = mq_now();
    CHECK(!memcmp(&first, &again, sizeof first));
    printf("  bitfusion: first query %.2f ms, cached %.3f us/query\n", (t1 - t0) * 1e3,
           (t2 - t1) / 10000 * 1e6);
    CHECK((t2 - t1) / 10000 < (t1 - t0));
    mixq_hw_free(hw);
}

/* the shared memo cache under threads gives what a serial pass gives */
static void test_threads(void) {
    mixq_hw *a = NULL, *b = NULL;
    CHECK_OK(mixq_hw_load("bitfusion", &a));
    CHECK_OK(mixq_hw_load("bitfusion", &b));
    if (!a || !b) goto out;
    mixq_hw_layer l = {.name = "c", .in_c = 64, .in_h = 16, .in_w = 16, .out_c = 64, .kh = 3, .kw = 3,
                       .stride = 1, .pad = 1};
    static mixq_cost ser[2][64], par[2][64];
    for (int q = 0; q < 128; q++) CHECK_OK(mixq_hw_cost(a, &l, 1 + q % 64 / 8, 1 + q % 8, &ser[q / 64][q % 64]));
    int fails = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(4) reduction(+ : fails)
    for (int q = 0; q < 128; q++)
        fails += mixq_hw_cost(b, &l, 1 + q % 64 / 8, 1 + q % 8, &par[q / 64][q % 64]) != MIXQ_OK;
    CHECK(fails == 0);
    CHECK(!memcmp(ser, par, sizeof ser));
out:
    mixq_hw_free(a);
    mixq_hw_free(b);
}

static void expect_bad_hw(const char *json, mixq_status want, const char *needle) {
    mixq_hw *hw = NULL;
    mixq_status st = mixq_hw_parse(json, strlen(json), "bad.json", NULL, &hw);
    CHECKF(st == want && hw == NULL, "status %d (want %d) for %s", st, want, json);
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "'%s' lacks '%s'", mixq_last_error(), needle);
    mixq_hw_free(hw);
}

#define HDR "{\"mixq_hw\": 1, \"name\": \"x\", \"backend\": \"bitfusion\", \"batch\": 16, \"freq_hz\": 5e8, "
#define BITS "\"bits\": {\"min\": 1, \"max\": 8}, "
#define ARR "\"bitfusion\": {\"rows\": 16, \"cols\": 32, \"pmax\": 8, \"pmin\": 2, \"wbuf_bytes\": 65536, \"ibuf_bytes\": 32768, \"obuf_bytes\": 16384"

static void test_bad_files(void) {
    expect_bad_hw(HDR BITS ARR "}}", MIXQ_ERR_FORMAT, "bitfusion.dram_bits_per_cycle' is missing");
    expect_bad_hw(HDR BITS ARR ", \"dram_bits_per_cycle\": -4}}", MIXQ_ERR_FORMAT, "bitfusion.dram_bits_per_cycle' is -4; it must be an integer in [1, ");
    expect_bad_hw(HDR BITS ARR ", \"dram_bits_per_cycle\": 192, \"rowz\": 3}}", MIXQ_ERR_FORMAT, "unknown field 'bitfusion.rowz'");
    expect_bad_hw(HDR ARR ", \"dram_bits_per_cycle\": 192}}", MIXQ_ERR_FORMAT, "field 'bits' is missing");
    expect_bad_hw(HDR "\"bits\": {\"min\": 1, \"max\": 16}, " ARR ", \"dram_bits_per_cycle\": 192}}",
                  MIXQ_ERR_FORMAT, "temporal_16bit");
    expect_bad_hw("{\"mixq_hw\": 1, \"name\": \"x\", \"backend\": \"tpu\", \"batch\": 1, \"freq_hz\": 1, " BITS "\"x\": 1}",
                  MIXQ_ERR_FORMAT, "unknown field 'x'");
    expect_bad_hw("{\"mixq_hw\": 1, \"name\": \"x\", \"backend\": \"tpu\", \"batch\": 1, \"freq_hz\": 1, " BITS "\"_note\": 1}",
                  MIXQ_ERR_FORMAT, "unknown back-end 'tpu'");
    expect_bad_hw("{\"mixq_hw\": 2}", MIXQ_ERR_FORMAT, "not a version");
    expect_bad_hw("{\"mixq_hw\": 1,\n \"name\": \"x\",,}", MIXQ_ERR_FORMAT, "line 2");
    expect_bad_hw("[1, 2]", MIXQ_ERR_FORMAT, "top level");
    expect_bad_hw(HDR "\"bits\": {\"min\": 4, \"max\": 2}, " ARR ", \"dram_bits_per_cycle\": 192}}", MIXQ_ERR_FORMAT, "min 4 > max 2");
    /* buffers whose banks are not in the CACTI table need explicit energies */
    expect_bad_hw(HDR BITS "\"bitfusion\": {\"rows\": 16, \"cols\": 32, \"pmax\": 8, \"pmin\": 2, \"wbuf_bytes\": 100000, "
                  "\"ibuf_bytes\": 32768, \"obuf_bytes\": 16384, \"dram_bits_per_cycle\": 192}}",
                  MIXQ_ERR_FORMAT, "CACTI");
    expect_bad_hw(HDR BITS ARR ", \"dram_bits_per_cycle\": 192}, \"energy\": {\"core_pj_per_cycle\": 1}}",
                  MIXQ_ERR_FORMAT, "energy.wbuf_read_pj_per_bit' is missing");
    mixq_hw *hw = NULL;
    CHECK(mixq_hw_load("no_such_target", &hw) == MIXQ_ERR_NOTFOUND && !hw);
    CHECK(strstr(mixq_last_error(), "bitfusion") != NULL); /* the hint lists the presets */
    CHECK(mixq_hw_load("/nonexistent/x.json", &hw) == MIXQ_ERR_IO && !hw);
    /* a bad layer */
    CHECK_OK(mixq_hw_load("bitfusion", &hw));
    if (!hw) return;
    mixq_hw_layer l = {.name = "bad", .in_c = 6, .in_h = 8, .in_w = 8, .out_c = 4, .kh = 3, .kw = 3, .groups = 4};
    mixq_cost c;
    CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_SHAPE);
    l.groups = 1, l.kh = 9, l.in_h = 4;
    CHECK(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_ERR_SHAPE);
    mixq_hw_free(hw);
    mixq_hw_free(NULL);
}

static void test_presets_parse(void) {
    const char *const *p = mixq_hw_presets();
    int n = 0;
    for (; p[n]; n++) {
        mixq_hw *hw = NULL;
        CHECKF(mixq_hw_load(p[n], &hw) == MIXQ_OK, "preset %s: %s", p[n], mixq_last_error());
        if (hw) CHECK(!strcmp(mixq_hw_name(hw), p[n]) && strlen(mixq_hw_text(hw)) > 50);
        mixq_hw_free(hw);
    }
    CHECK(n >= 11);
}

int main(void) {
    TEST_RUN(test_modes);
    TEST_RUN(test_golden);
    TEST_RUN(test_sweep_csv);
    TEST_RUN(test_eyeriss);
    TEST_RUN(test_constants);
    TEST_RUN(test_cacti_rows);
    TEST_RUN(test_precision);
    TEST_RUN(test_monotone);
    TEST_RUN(test_groups_kernels_cache);
    TEST_RUN(test_threads);
    TEST_RUN(test_bad_files);
    TEST_RUN(test_presets_parse);
    return test_summary();
}
