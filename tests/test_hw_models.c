/* The analytic back-ends and the table back-end (spec docs/hardware_models.md section 10):
 * T7 BISMO peaks, exec / fetch / result counts and the resource model, T8 through the `table`
 * back-end (.npy and CSV), T9 Stripes / Loom ratios over DaDianNao, the size and BitOps proxies,
 * monotonicity, per-kernel grouping, model -> layer mapping and bad files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"
#include "test.h"

#define HAQ_TABLE TEST_FIXTURES "hw/qmobilenetv2_imagenet100_batch16_latency_table.npy"

static mixq_hw *load(const char *name) {
    mixq_hw *hw = NULL;
    mixq_status st = mixq_hw_load(name, &hw);
    CHECKF(st == MIXQ_OK, "load %s: %s", name, mixq_last_error());
    return hw;
}

/* T7 */
static void test_bismo(void) {
    mixq_hw *pynq = load("bismo_pynq"), *u96 = load("bismo_ultra96");
    if (!pynq || !u96) goto out;
    double peak, luts, bram;
    mq_bismo_peak(pynq, &peak, &luts, &bram);
    CHECKF(peak == 6.5536e12, "PYNQ peak %.6g", peak);
    CHECKF(fabs(luts - 29678.08) < 1e-6 && bram == 128, "LUT %.2f BRAM %.0f", luts, bram);
    mq_bismo_peak(u96, &peak, &luts, &bram);
    CHECKF(peak == 1.536e13, "Ultra96 peak %.6g", peak);
    mixq_cost c22, c44;
    double exec, fetch, result;
    memset(&c22, 0, sizeof c22);
    memset(&c44, 0, sizeof c44);
    mq_bismo_matmul(pynq, 1024, 1024, 1024, 2, 2, &c22, &exec, &fetch, &result);
    CHECKF(exec == 262144 && fetch == 33816576 && result == 4194304, "exec %.0f fetch %.0f result %.0f",
           exec, fetch, result);
    CHECK(c22.flags & MIXQ_COST_MEMBOUND); /* the v2 schedule is fetch-bound here */
    double exec44;
    mq_bismo_matmul(pynq, 1024, 1024, 1024, 4, 4, &c44, &exec44, &fetch, NULL);
    CHECK(exec44 / exec == 4.0 && fetch == 16908288.0 * 4);
    for (int b = 1; b <= 8; b++) {
        mixq_cost c;
        memset(&c, 0, sizeof c);
        mq_bismo_matmul(pynq, 1024, 1024, 1024, b, b, &c, &exec, &fetch, NULL);
        CHECK(exec == 65536.0 * b * b && fetch == 16908288.0 * b);
    }
    /* exec-bound with weights resident: cycles(4,4)/cycles(2,2) = 4 up to fill/drain */
    mixq_hw *cloud = load("bismo_cloud");
    if (cloud) {
        mixq_hw_layer l = {.name = "c", .in_c = 256, .in_h = 14, .in_w = 14, .out_c = 256, .kh = 3,
                           .kw = 3, .stride = 1, .pad = 1};
        mixq_cost a, b;
        CHECK_OK(mixq_hw_cost(cloud, &l, 2, 2, &a));
        CHECK_OK(mixq_hw_cost(cloud, &l, 4, 4, &b));
        CHECK(b.compute_cycles == 4 * a.compute_cycles && !(b.flags & MIXQ_COST_MEMBOUND));
        CHECKF(fabs(b.cycles / a.cycles - 4) < 0.01, "ratio %.4f", b.cycles / a.cycles);
        CHECK(b.flags & MIXQ_COST_ESTIMATE && b.energy_j > a.energy_j && a.energy_j > 0);
        CHECK(fabs(b.e_compute_j + b.e_sram_j + b.e_dram_j - b.energy_j) <= 1e-12 * b.energy_j);
        /* depthwise: g matmuls with one output each */
        mixq_hw_layer dw = l, one = l;
        dw.groups = 256;
        one.in_c = one.out_c = 1;
        CHECK_OK(mixq_hw_cost(cloud, &dw, 4, 4, &a));
        CHECK_OK(mixq_hw_cost(cloud, &one, 4, 4, &b));
        CHECK(a.cycles == 256 * b.cycles);
        /* monotone in both operands (bit-serial: every bit costs) */
        for (int w = 1; w < 8; w++)
            for (int x = 1; x < 8; x++) {
                mixq_cost lo, hiw, hia;
                CHECK_OK(mixq_hw_cost(cloud, &l, w, x, &lo));
                CHECK_OK(mixq_hw_cost(cloud, &l, w + 1, x, &hiw));
                CHECK_OK(mixq_hw_cost(cloud, &l, w, x + 1, &hia));
                CHECK(lo.cycles <= hiw.cycles && lo.cycles <= hia.cycles);
                CHECK(lo.energy_j <= hiw.energy_j && lo.energy_j <= hia.energy_j);
            }
        CHECK(mixq_hw_cost(cloud, &l, 16, 8, &a) == MIXQ_ERR_UNSUPPORTED);
        /* kernel-wise bits: a group of RHS rows per bit width */
        int kb[256];
        for (int k = 0; k < 256; k++) kb[k] = k < 64 ? 8 : 2;
        mixq_cost ck, g8, g2;
        mixq_hw_layer s64 = l, s192 = l;
        s64.out_c = 64, s192.out_c = 192;
        CHECK_OK(mixq_hw_cost_kernels(cloud, &l, kb, 4, &ck));
        CHECK_OK(mixq_hw_cost(cloud, &s64, 8, 4, &g8));
        CHECK_OK(mixq_hw_cost(cloud, &s192, 2, 4, &g2));
        CHECK(ck.cycles == g8.cycles + g2.cycles);
        mixq_hw_free(cloud);
    }
    /* rhs_stationary never fetches more than v2 */
    mixq_hw *edge = load("bismo_edge");
    if (edge) {
        char json[2048];
        snprintf(json, sizeof json, "%s", mixq_hw_text(edge));
        char *p = strstr(json, "rhs_stationary\"");
        CHECK(p != NULL);
        if (p) memcpy(p, "v2\"            ", 15); /* same length, keeps the JSON valid */
        mixq_hw *v2 = NULL;
        CHECKF(mixq_hw_parse(json, strlen(json), "edge-v2", NULL, &v2) == MIXQ_OK, "%s", mixq_last_error());
        mixq_hw_layer l = {.name = "c", .in_c = 128, .in_h = 28, .in_w = 28, .out_c = 128, .kh = 3,
                           .kw = 3, .stride = 1, .pad = 1};
        mixq_cost a, b;
        if (v2) {
            CHECK_OK(mixq_hw_cost(edge, &l, 4, 4, &a));
            CHECK_OK(mixq_hw_cost(v2, &l, 4, 4, &b));
            CHECK(a.dram_read_bits < b.dram_read_bits && a.cycles <= b.cycles);
        }
        mixq_hw_free(v2);
        mixq_hw_free(edge);
    }
out:
    mixq_hw_free(pynq);
    mixq_hw_free(u96);
}

/* T9 */
static void test_serial(void) {
    mixq_hw *dadn = load("dadn"), *str = load("stripes"), *loom = load("loom");
    if (!dadn || !str || !loom) goto out;
    mixq_hw_layer conv = {.name = "c", .in_c = 256, .in_h = 16, .in_w = 16, .out_c = 256, .kh = 3,
                          .kw = 3, .stride = 1, .pad = 1}; /* Ho*Wo = 256, a multiple of 16 */
    mixq_hw_layer fc = {.name = "fc", .fc = 1, .in_c = 4096, .out_c = 1024};
    mixq_cost d, s, l;
    CHECK_OK(mixq_hw_cost(dadn, &conv, 8, 8, &d));
    CHECK(d.cycles == 256.0 * 1 * 9 * 16 && d.w_bits == 16 && (d.flags & MIXQ_COST_ROUNDED));
    for (int pa = 1; pa <= 16; pa++) {
        CHECK_OK(mixq_hw_cost(str, &conv, 8, pa, &s));
        CHECKF(fabs(d.cycles / s.cycles - 16.0 / pa) < 1e-12, "stripes p_a %d: %.4f", pa, d.cycles / s.cycles);
        CHECK(s.w_bits == 16 && s.a_bits == pa);
        mixq_cost s2;
        CHECK_OK(mixq_hw_cost(str, &conv, 2, pa, &s2)); /* weight bits do not matter */
        CHECK(s2.cycles == s.cycles);
    }
    CHECK_OK(mixq_hw_cost(str, &conv, 8, 8, &s));
    CHECK(d.cycles / s.cycles == 2.0);
    CHECK_OK(mixq_hw_cost(dadn, &fc, 8, 8, &d));
    for (int pa = 1; pa <= 16; pa++) {
        CHECK_OK(mixq_hw_cost(str, &fc, 8, pa, &s));
        CHECK(s.cycles == d.cycles);
    }
    CHECK_OK(mixq_hw_cost(dadn, &conv, 8, 8, &d));
    int pairs[][2] = {{8, 8}, {4, 4}, {2, 8}, {16, 16}, {1, 1}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int pw = pairs[i][0], pa = pairs[i][1];
        CHECK_OK(mixq_hw_cost(loom, &conv, pw, pa, &l));
        CHECKF(fabs(d.cycles / l.cycles - 256.0 / (pa * pw)) < 1e-9, "loom w%d a%d conv %.4f", pw, pa,
               d.cycles / l.cycles);
    }
    CHECK_OK(mixq_hw_cost(loom, &conv, 8, 8, &l));
    CHECK(d.cycles / l.cycles == 4.0);
    CHECK_OK(mixq_hw_cost(loom, &conv, 4, 4, &l));
    CHECK(d.cycles / l.cycles == 16.0);
    mixq_cost dfc;
    CHECK_OK(mixq_hw_cost(dadn, &fc, 8, 8, &dfc));
    for (int pw = 1; pw <= 16; pw *= 2) {
        CHECK_OK(mixq_hw_cost(loom, &fc, pw, 8, &l));
        CHECKF(fabs(dfc.cycles / l.cycles - 16.0 / pw) < 1e-12, "loom fc w%d %.4f", pw, dfc.cycles / l.cycles);
    }
    /* per-kernel bits cost nothing on Stripes (weights are bit-parallel); Loom groups them */
    int kb[256];
    for (int k = 0; k < 256; k++) kb[k] = k % 2 ? 2 : 8;
    mixq_cost sk, lk, l2, l8;
    CHECK_OK(mixq_hw_cost_kernels(str, &conv, kb, 8, &sk));
    CHECK_OK(mixq_hw_cost(str, &conv, 8, 8, &s));
    CHECK(sk.cycles == s.cycles);
    mixq_hw_layer half = conv;
    half.out_c = 128;
    CHECK_OK(mixq_hw_cost_kernels(loom, &conv, kb, 8, &lk));
    CHECK_OK(mixq_hw_cost(loom, &half, 2, 8, &l2));
    CHECK_OK(mixq_hw_cost(loom, &half, 8, 8, &l8));
    CHECK(lk.cycles == l2.cycles + l8.cycles);
    /* relative energy: Stripes at p_a = 8 spends 1.2229 / 2 of DaDN's energy on a conv */
    CHECK_OK(mixq_hw_cost(str, &conv, 8, 8, &s));
    CHECKF(fabs(s.energy_j / d.energy_j - 1.2229 / 2) < 1e-12, "energy ratio %.5f", s.energy_j / d.energy_j);
    CHECK(s.flags & MIXQ_COST_ESTIMATE);
    /* batch multiplies */
    mixq_hw_layer b4 = conv;
    b4.batch = 4;
    mixq_cost s4;
    CHECK_OK(mixq_hw_cost(str, &b4, 8, 8, &s4));
    CHECK(s4.cycles == 4 * s.cycles);
out:
    mixq_hw_free(dadn);
    mixq_hw_free(str);
    mixq_hw_free(loom);
}

static void test_proxies(void) {
    mixq_hw *size = load("size"), *bops = load("bitops");
    if (!size || !bops) goto out;
    mixq_hw_layer l = {.name = "c", .in_c = 16, .in_h = 8, .in_w = 8, .out_c = 32, .kh = 3, .kw = 3,
                       .stride = 2, .pad = 1};
    mixq_cost c;
    CHECK_OK(mixq_hw_cost(size, &l, 4, 8, &c));
    CHECK(c.cycles == 32.0 * 16 * 9 * 4 && c.size_bits == c.cycles);
    CHECK_OK(mixq_hw_cost(bops, &l, 4, 8, &c));
    CHECK(c.macs == 32.0 * 16 * 9 * 16 && c.cycles == c.macs * 32 && c.bitops == c.cycles);
    CHECK_OK(mixq_hw_cost(size, &l, 32, 32, &c)); /* float layers are costed by proxies */
    int kb[32];
    for (int k = 0; k < 32; k++) kb[k] = k < 8 ? 8 : 3;
    CHECK_OK(mixq_hw_cost_kernels(size, &l, kb, 8, &c));
    CHECK(c.cycles == 16.0 * 9 * (8 * 8 + 24 * 3));
    mixq_hw_layer fc = {.name = "fc", .fc = 1, .in_c = 100, .out_c = 10, .batch = 3};
    CHECK_OK(mixq_hw_cost(bops, &fc, 2, 2, &c));
    CHECK(c.macs == 3000 && c.bitops == 12000);
out:
    mixq_hw_free(size);
    mixq_hw_free(bops);
}

/* T8 through the back-end */
static void test_table(void) {
    if (!test_need_file(HAQ_TABLE)) return;
    mixq_hw *t = load(HAQ_TABLE);
    mixq_hw *j = load("examples/hw/haq_mobilenetv2_cloud.json");
    if (!t || !j) goto out;
    mixq_hw_layer l = {.name = "first", .index = 0, .in_c = 3, .in_h = 224, .in_w = 224, .out_c = 32,
                       .kh = 3, .kw = 3, .stride = 2, .pad = 1};
    mixq_cost c;
    CHECK_OK(mixq_hw_cost(t, &l, 8, 8, &c));
    CHECK(c.cycles == 1620752);
    CHECK_OK(mixq_hw_cost(t, &l, 8, 7, &c));
    CHECK(c.cycles == 1419328); /* HAQ's first-layer quirk reads this entry */
    CHECK_OK(mixq_hw_cost(j, &l, 8, 8, &c));
    CHECK(c.cycles == 1620752 && fabs(c.latency_s - 1620752 / 2e8) < 1e-12);
    l.index = 52;
    CHECK_OK(mixq_hw_cost(t, &l, 1, 1, &c));
    CHECK(c.cycles == 5000);
    double s88 = 0, s44 = 0, s22 = 0;
    for (int i = 0; i < 53; i++) {
        l.index = i;
        CHECK_OK(mixq_hw_cost(j, &l, 8, 8, &c));
        s88 += c.cycles;
        CHECK_OK(mixq_hw_cost(j, &l, 4, 4, &c));
        s44 += c.cycles;
        CHECK_OK(mixq_hw_cost(j, &l, 2, 2, &c));
        s22 += c.cycles;
    }
    CHECK(s88 == 39624933);
    CHECKF(fabs(s44 / s88 - 0.39662) < 5e-6 && fabs(s22 / s88 - 0.17826) < 5e-6, "%.6f %.6f", s44 / s88, s22 / s88);
    l.index = 53;
    CHECK(mixq_hw_cost(t, &l, 8, 8, &c) == MIXQ_ERR_SHAPE);
    CHECK(strstr(mixq_last_error(), "53 layers") != NULL);
    l.index = 0;
    CHECK(mixq_hw_cost(t, &l, 9, 8, &c) == MIXQ_ERR_UNSUPPORTED);
    /* per-kernel on a table: entries weighed by the share of kernels */
    int kb[32];
    for (int k = 0; k < 32; k++) kb[k] = k < 8 ? 8 : 4;
    mixq_cost a, b;
    CHECK_OK(mixq_hw_cost_kernels(t, &l, kb, 8, &c));
    CHECK_OK(mixq_hw_cost(t, &l, 8, 8, &a));
    CHECK_OK(mixq_hw_cost(t, &l, 4, 8, &b));
    CHECK(fabs(c.cycles - (0.25 * a.cycles + 0.75 * b.cycles)) < 1e-6);
    /* CSV equivalent: write the .npy out as CSV and read it back */
    char csv[1024];
    snprintf(csv, sizeof csv, "%s/haq.csv", test_tmpdir());
    FILE *f = fopen(csv, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "layer,w_bits,a_bits,cost\n");
        for (int i = 0; i < 53; i++)
            for (int w = 1; w <= 8; w++)
                for (int x = 1; x <= 8; x++) {
                    l.index = i;
                    CHECK_OK(mixq_hw_cost(t, &l, w, x, &c));
                    fprintf(f, "%d,%d,%d,%.0f\n", i, w, x, c.cycles);
                }
        fclose(f);
        mixq_hw *tc = load(csv);
        if (tc) {
            l.index = 17;
            CHECK_OK(mixq_hw_cost(t, &l, 3, 5, &a));
            CHECK_OK(mixq_hw_cost(tc, &l, 3, 5, &b));
            CHECK(a.cycles == b.cycles);
        }
        mixq_hw_free(tc);
    }
out:
    mixq_hw_free(t);
    mixq_hw_free(j);
}

static void bad_csv(const char *name, const char *text, const char *needle) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", test_tmpdir(), name);
    CHECK(test_write_file(p, text, strlen(text)) == 0);
    mixq_hw *hw = NULL;
    mixq_status st = mixq_hw_load(p, &hw);
    CHECKF(st == MIXQ_ERR_FORMAT && !hw, "%s: status %d", name, st);
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "%s: '%s' lacks '%s'", name, mixq_last_error(), needle);
}

static void expect_bad(const char *json, const char *needle) {
    mixq_hw *hw = NULL;
    mixq_status st = mixq_hw_parse(json, strlen(json), "bad.json", NULL, &hw);
    CHECKF(st == MIXQ_ERR_FORMAT && !hw, "status %d for %s", st, json);
    CHECKF(strstr(mixq_last_error(), needle) != NULL, "'%s' lacks '%s'", mixq_last_error(), needle);
}

static void test_bad_inputs(void) {
    bad_csv("h.csv", "l,w,a,c\n", "header");
    bad_csv("v.csv", "layer,w_bits,a_bits,cost\n0,9,1,5\n", "line 2");
    bad_csv("n.csv", "layer,w_bits,a_bits,cost\n0,1,1,-5\n", "line 2");
    bad_csv("m.csv", "layer,w_bits,a_bits,cost\n0,1,1,5\n", "missing");
    bad_csv("d.csv", "layer,w_bits,a_bits,cost\n0,1,1,5\n0,1,1,6\n", "twice");
    bad_csv("e.csv", "layer,w_bits,a_bits,cost\n", "no entries");
#define B "{\"mixq_hw\": 1, \"name\": \"b\", \"backend\": \"bismo\", \"batch\": 1, \"freq_hz\": 2e8, \"bits\": {\"min\": 1, \"max\": 8}, "
#define E "\"energy\": {\"binop_pj\": 0.004, \"sram_pj_per_bit\": 0.15, \"dram_pj_per_bit\": 15}"
    expect_bad(B E "}", "field 'bismo' is missing");
    expect_bad(B "\"bismo\": {\"dm\": 8, \"dn\": 8, \"dk\": 256, \"lhs_entries\": 1024, \"rhs_entries\": 1024, "
                 "\"read_bytes_per_cycle\": 8, \"write_bytes_per_cycle\": 8, \"fetch_policy\": \"lazy\"}, " E "}",
               "fetch_policy");
    expect_bad(B "\"bismo\": {\"dm\": 8, \"dn\": 8, \"dk\": 250, \"lhs_entries\": 1024, \"rhs_entries\": 1024, "
                 "\"read_bytes_per_cycle\": 8, \"write_bytes_per_cycle\": 8}, " E "}",
               "multiple of 8");
    expect_bad(B "\"bismo\": {\"dm\": 8, \"dn\": 8, \"dk\": 256, \"lhs_entries\": 1024, \"rhs_entries\": 1024, "
                 "\"read_bytes_per_cycle\": 8}, " E "}",
               "bismo.write_bytes_per_cycle' is missing");
    expect_bad(B "\"bismo\": {\"dm\": 8, \"dn\": 8, \"dk\": 256, \"lhs_entries\": 1024, \"rhs_entries\": 1024, "
                 "\"read_bytes_per_cycle\": 8, \"write_bytes_per_cycle\": 8}}",
               "field 'energy' is missing");
    expect_bad("{\"mixq_hw\": 1, \"name\": \"s\", \"backend\": \"loom\", \"batch\": 1, \"freq_hz\": 1e9, "
               "\"bits\": {\"min\": 1, \"max\": 16}, \"serial\": {\"tiles\": 16, \"filters\": 16, \"lanes\": 16, "
               "\"windows\": 16, \"pe_width\": 16}, \"energy\": {\"baseline_power_w\": 1, \"power_ratio\": 1}}",
               "serial.loom_parallel' is missing");
    expect_bad("{\"mixq_hw\": 1, \"name\": \"s\", \"backend\": \"stripes\", \"batch\": 1, \"freq_hz\": 1e9, "
               "\"bits\": {\"min\": 1, \"max\": 32}, \"serial\": {\"tiles\": 16, \"filters\": 16, \"lanes\": 16, "
               "\"windows\": 16, \"pe_width\": 16}, \"energy\": {\"baseline_power_w\": 1, \"power_ratio\": 1}}",
               "pe_width");
    expect_bad("{\"mixq_hw\": 1, \"name\": \"t\", \"backend\": \"table\", \"batch\": 1, \"freq_hz\": 1e9, "
               "\"bits\": {\"min\": 1, \"max\": 8}, \"table\": {}}",
               "table.file' is missing");
    mixq_hw *hw = NULL;
    const char *nofile = "{\"mixq_hw\": 1, \"name\": \"t\", \"backend\": \"table\", \"batch\": 1, \"freq_hz\": 1e9, "
                         "\"bits\": {\"min\": 1, \"max\": 8}, \"table\": {\"file\": \"/nonexistent/t.npy\"}}";
    CHECK(mixq_hw_parse(nofile, strlen(nofile), "t.json", NULL, &hw) == MIXQ_ERR_IO && !hw);
    CHECK(strstr(mixq_last_error(), "/nonexistent/t.npy") != NULL);
}

/* model -> layers */
static void test_model_layers(void) {
    mixq_model_config mc = {.arch = "resnet20", .in_c = 3, .in_h = 32, .in_w = 32, .classes = 10, .seed = 1};
    mixq_model *m = NULL;
    CHECK_OK(mixq_model_create(&mc, &m));
    if (!m) return;
    int n = mixq_model_hw_layer_count(m);
    CHECK(n == 22);
    mixq_hw_layer l;
    int node;
    CHECK_OK(mixq_model_hw_layer(m, 0, &l, &node));
    CHECK(l.is_first && !l.fc && l.in_c == 3 && l.out_c == 16 && l.out_h == 32 && l.kh == 3);
    CHECK_OK(mixq_model_hw_layer(m, 1, &l, &node));
    CHECK(!l.is_first && l.index == 1);
    CHECK_OK(mixq_model_hw_layer(m, n - 1, &l, &node));
    CHECK(l.fc && l.in_c == 64 && l.out_c == 10);
    CHECK(mixq_model_hw_layer(m, n, &l, &node) == MIXQ_ERR_ARG);
    /* every preset costs every layer of resnet20 at W4A4 */
    for (const char *const *p = mixq_hw_presets(); *p; p++) {
        mixq_hw *hw = load(*p);
        if (!hw) continue;
        double total = 0;
        for (int i = 0; i < n; i++) {
            mixq_cost c;
            CHECK_OK(mixq_model_hw_layer(m, i, &l, &node));
            CHECKF(mixq_hw_cost(hw, &l, 4, 4, &c) == MIXQ_OK, "%s %s: %s", *p, l.name, mixq_last_error());
            CHECK(c.cycles > 0 && c.latency_s > 0 && c.macs > 0 && isfinite(c.energy_j));
            total += c.cycles;
        }
        CHECK(total > 0);
        mixq_hw_free(hw);
    }
    mixq_model_free(m);
}

int main(void) {
    TEST_RUN(test_bismo);
    TEST_RUN(test_serial);
    TEST_RUN(test_proxies);
    TEST_RUN(test_table);
    TEST_RUN(test_bad_inputs);
    TEST_RUN(test_model_layers);
    return test_summary();
}
